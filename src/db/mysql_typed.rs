//! `verify --deep --source` against MySQL: a session on one snapshot, and a dataset's
//! rows through the BINARY protocol (typed values, not the export's text), long values
//! set aside and read in pieces (`db::mysql_long`).

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::config::ServerConfig;
use crate::db::catalog::{ReadFrom, Typed};
use crate::db::mysql::{connect, dataset_name, error, from_clause, prepare_reader, start_snapshot};
use crate::db::mysql_long;
use crate::db::sql::my::ident as quote_ident;

/// A session for `verify --deep --source`: the export's settings (UTC, utf8mb4) and one
/// consistent read-only snapshot.
pub async fn open_verifier(cfg: &ServerConfig, db: &str) -> Result<Conn> {
    let mut conn = connect(cfg, Some(db)).await?;
    prepare_reader(&mut conn).await?;
    start_snapshot(&mut conn).await?;
    Ok(conn)
}

/// Stream the given columns of a dataset (a table with its filter, or a query) through
/// the BINARY protocol — typed values, not the text the export reads — into `on_row`.
/// `bytes` columns are read as their stored bytes (`CAST(c AS BINARY)`).
pub async fn stream_typed<F>(
    conn: &mut Conn,
    db: &str,
    from: ReadFrom<'_>,
    columns: &[(&str, bool)],
    checks: &[(usize, &str)],
    long: Option<&mysql_long::TypedLong>,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Typed<'_>], &[usize]) -> Result<()>,
{
    use mysql_async::Value;
    let mut cols: Vec<String> = columns
        .iter()
        .map(|&(c, bytes)| read_expr(c, bytes))
        .collect();
    // Whether each checked value survives the conversion to utf8mb4 and back, as the
    // export asked: a value that does not reads `?` through the conversion.
    let checks: Vec<usize> = checks
        .iter()
        .filter(|(_, cs)| cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        .map(|&(i, cs)| {
            let q = quote_ident(columns[i].0);
            cols.push(format!(
                "CAST(CONVERT(CONVERT({q} USING utf8mb4) USING {cs}) AS BINARY) = CAST({q} AS BINARY)"
            ));
            i
        })
        .collect();
    let flags = match long {
        Some(l) => l.wrap(&mut cols, columns),
        None => Vec::new(),
    };
    cols.extend(flags);
    let table = from_clause(db, from);
    let mut sql = format!("SELECT {} FROM {table}", cols.join(", "));
    if let ReadFrom::Table {
        filter: Some(f), ..
    } = from
    {
        sql.push_str(&format!(" WHERE ({f})"));
    }
    let name = dataset_name(from).to_string();
    let mut aside: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut result = conn
        .exec_iter(sql, ())
        .await
        .map_err(error)
        .with_context(|| format!("reading `{name}` for verify"))?;
    while let Some(row) = result
        .next()
        .await
        .map_err(error)
        .with_context(|| format!("reading `{name}` for verify"))?
    {
        if let Some(l) = long
            && (0..l.long.columns.len()).any(|k| {
                matches!(
                    row.as_ref(columns.len() + checks.len() + k),
                    Some(Value::Bytes(_))
                )
            })
        {
            aside.push(l.key_of(&row)?);
            continue;
        }
        let (typed, lossy) = typed_row(&row, columns.len(), &checks);
        on_row(&typed, &lossy)?;
    }
    drop(result);
    match long {
        Some(l) if !aside.is_empty() => {
            let read = mysql_long::TypedAside {
                table: &name,
                from: &table,
                select: &cols,
                columns,
                long: l,
                checks: &checks,
            };
            read.rows(conn, aside, &mut on_row).await
        }
        _ => Ok(()),
    }
}

/// How a typed read selects a column: as its stored bytes (`CAST(c AS BINARY)`) or as
/// it is; the pieces of its long values are cut from the same expression.
pub(crate) fn read_expr(column: &str, bytes: bool) -> String {
    match bytes {
        true => format!("CAST({} AS BINARY)", quote_ident(column)),
        false => quote_ident(column),
    }
}

/// A row of the binary protocol as typed values, and the checked columns whose
/// conversion was lossy.
pub(crate) fn typed_row<'r>(
    row: &'r mysql_async::Row,
    n: usize,
    checks: &[usize],
) -> (Vec<Typed<'r>>, Vec<usize>) {
    use mysql_async::Value;
    {
        let mut typed = Vec::with_capacity(n);
        for i in 0..n {
            typed.push(match row.as_ref(i) {
                None | Some(Value::NULL) => Typed::Null,
                Some(Value::Bytes(b)) => Typed::Bytes(b),
                Some(Value::Int(v)) => Typed::Int(*v),
                Some(Value::UInt(v)) => Typed::UInt(*v),
                Some(Value::Float(v)) => Typed::F32(*v),
                Some(Value::Double(v)) => Typed::F64(*v),
                Some(Value::Date(y, m, d, h, mi, s, us)) => {
                    Typed::Date(*y, *m, *d, *h, *mi, *s, *us)
                }
                Some(Value::Time(neg, days, h, m, s, us)) => {
                    Typed::Time(*neg, *days, *h, *m, *s, *us)
                }
            });
        }
        let lossy: Vec<usize> = checks
            .iter()
            .enumerate()
            .filter(|(k, _)| match row.as_ref(n + k) {
                Some(Value::Int(0)) | Some(Value::UInt(0)) => true,
                Some(Value::Bytes(b)) => b.as_slice() == b"0",
                _ => false,
            })
            .map(|(_, &i)| i)
            .collect();
        (typed, lossy)
    }
}
