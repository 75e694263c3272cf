//! A dataset's rows streamed out of the source, one at a time (long values set aside and
//! read in pieces, lossy conversions flagged), and the key ranges that cut it for
//! parallel readers.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::config::Engine;
use crate::db::catalog::{KeyLiteral, KeyRange, Read, ReadColumn, ReadFrom};
use crate::db::long_values::Long;
use crate::db::mysql_long;
use crate::db::sql::my::{ident as quote_ident, qualified};

use super::error;

/// `parts - 1` boundaries that cut `db.table` into about equal key ranges, read from the
/// primary-key index (`ORDER BY key LIMIT 1 OFFSET n`). Fewer when the table is smaller
/// than its estimate. Any values would do for correctness: each range is read inside the
/// snapshot and the ranges cover every key exactly once.
pub async fn split_points(
    conn: &mut Conn,
    db: &str,
    table: &str,
    column: &str,
    integer: bool,
    estimated_rows: u64,
    parts: u64,
) -> Result<Vec<KeyLiteral>> {
    let mut out: Vec<KeyLiteral> = Vec::new();
    for i in 1..parts {
        let offset = estimated_rows * i / parts;
        let row: Option<mysql_async::Row> = conn
            .query_first(format!(
                "SELECT {c} FROM {} ORDER BY {c} LIMIT 1 OFFSET {offset}",
                qualified(db, table),
                c = quote_ident(column)
            ))
            .await
            .map_err(error)
            .with_context(|| format!("finding key ranges of `{table}`"))?;
        let Some(row) = row else { break };
        let Some(mysql_async::Value::Bytes(v)) = row.as_ref(0) else {
            break;
        };
        let Some(lit) = KeyLiteral::new(integer, v) else {
            break;
        };
        if out.last() != Some(&lit) {
            out.push(lit);
        }
    }
    Ok(out)
}

/// Stream every row of `db.table` (the given columns, each read as its `Read` says)
/// into `on_row`, one row at a time: nothing is buffered beyond the driver's packet.
/// `Read::Bytes` columns bypass the connection's character-set conversion, which would
/// otherwise rewrite bytes kept in a text column (latin1 0x9C would arrive as UTF-8 `œ`).
/// For a column with `check_conversion_from`, the server also says whether the value
/// survives the conversion to utf8mb4 and back unchanged; `on_row` gets the positions of
/// the columns where it does not (gbk `A3 80` has no Unicode equivalent: it reads `?`).
pub async fn stream_table<F>(
    conn: &mut Conn,
    db: &str,
    from: ReadFrom<'_>,
    columns: &[ReadColumn<'_>],
    range: Option<&KeyRange>,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    let long = Long::of(columns, from);
    let (mut cols, checks, checked) = select_list(columns, "");
    let flags = match &long {
        Some(l) => mysql_long::wrap(&mut cols, columns, l),
        None => Vec::new(),
    };
    cols.extend(checks);
    cols.extend(flags);
    let sql_from = from_clause(db, from);
    let mut sql = format!("SELECT {} FROM {sql_from}", cols.join(", "));
    sql.push_str(&from.where_clause(range, Engine::Mysql));
    let table = dataset_name(from);
    let mut aside = Vec::new();
    stream_rows(
        conn,
        sql,
        columns.len(),
        &checked,
        table,
        long.as_ref().map(|l| (l, &mut aside)),
        &mut on_row,
    )
    .await?;
    match long {
        Some(l) if !aside.is_empty() => {
            let read = mysql_long::SetAside {
                table,
                from: &sql_from,
                select: &cols,
                columns,
                long: &l,
                checked: &checked,
            };
            read.rows(conn, aside, &mut on_row).await
        }
        _ => Ok(()),
    }
}

/// The select list of a read: each column in its read form, `qualifier` (empty, or
/// `` `db`.`t`. ``) before its name; then the conversion checks of the columns in a
/// non-UTF-8 character set, and the positions they check.
pub fn select_list(
    columns: &[ReadColumn<'_>],
    qualifier: &str,
) -> (Vec<String>, Vec<String>, Vec<usize>) {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = format!("{qualifier}{}", quote_ident(c.name));
            match c.read {
                Read::Text => q,
                Read::Bytes => format!("CAST({q} AS BINARY)"),
                Read::Double => format!("CAST({q} AS DOUBLE)"),
            }
        })
        .collect();
    let mut checks = Vec::new();
    let checked: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let cs = c.check_conversion_from?;
            // A charset name goes into SQL unquoted: only a plain name.
            cs.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                .then(|| {
                    let q = format!("{qualifier}{}", quote_ident(c.name));
                    checks.push(format!(
                        "CAST(CONVERT(CONVERT({q} USING utf8mb4) USING {cs}) AS BINARY) = CAST({q} AS BINARY)"
                    ));
                    i
                })
        })
        .collect();
    (cols, checks, checked)
}

/// Stream the rows of `sql`, whose first `n` columns are values and whose next ones are
/// the conversion checks of the values at `checked`, into `on_row` (values; positions
/// whose conversion was lossy), one row at a time.
pub async fn stream_sql<F>(
    conn: &mut Conn,
    sql: String,
    n: usize,
    checked: &[usize],
    table: &str,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    stream_rows(conn, sql, n, checked, table, None, &mut on_row).await
}

/// [`stream_sql`]; with `long`, the columns after the checks are long-value flags, and
/// a flagged row is not given to `on_row` but its key set aside.
async fn stream_rows<F>(
    conn: &mut Conn,
    sql: String,
    n: usize,
    checked: &[usize],
    table: &str,
    mut long: Option<(&Long, &mut Vec<Vec<Vec<u8>>>)>,
    on_row: &mut F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    let mut result = conn
        .query_iter(sql)
        .await
        .map_err(error)
        .with_context(|| format!("reading table `{table}`"))?;
    let mut lossy = Vec::new();
    while let Some(row) = result
        .next()
        .await
        .map_err(error)
        .with_context(|| format!("reading table `{table}`"))?
    {
        let values: Vec<Option<&[u8]>> = (0..n)
            .map(|i| match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
                _ => None,
            })
            .collect();
        if let Some((l, aside)) = long.as_mut() {
            let flagged = (0..l.columns.len()).any(|k| {
                matches!(
                    row.as_ref(n + checked.len() + k),
                    Some(mysql_async::Value::Bytes(_))
                )
            });
            if flagged {
                aside.push(l.key_of(&values)?);
                continue;
            }
        }
        lossy.clear();
        for (k, &column) in checked.iter().enumerate() {
            if let Some(mysql_async::Value::Bytes(b)) = row.as_ref(n + k)
                && b.as_slice() == b"0"
            {
                lossy.push(column);
            }
        }
        on_row(&values, &lossy)?;
    }
    Ok(())
}

/// `db.table`, or `(query) AS q`.
pub(crate) fn from_clause(db: &str, from: ReadFrom<'_>) -> String {
    match from {
        ReadFrom::Table { name, .. } => qualified(db, name),
        ReadFrom::Query(q) => format!("({}) AS q", trim_statement(q)),
    }
}

/// The name used in messages: the table, or `query`.
pub(crate) fn dataset_name(from: ReadFrom<'_>) -> &str {
    match from {
        ReadFrom::Table { name, .. } => name,
        ReadFrom::Query(_) => "(query)",
    }
}

/// A statement without its trailing `;` and blanks, to be used as a subquery.
pub fn trim_statement(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}
