//! PostgreSQL as the SOURCE (an application moving between two PostgreSQL schema
//! versions), read the way pgcopydb reads one: the catalog from `pg_catalog` (quoted
//! mixed-case names such as Prisma's `"User"`; a partitioned table once through its
//! parent; views, materialized views and foreign tables not exported; generated columns
//! listed and skipped), ONE REPEATABLE READ, READ ONLY snapshot exported with
//! `pg_export_snapshot()` and shared by the parallel readers (`SET TRANSACTION
//! SNAPSHOT`), and each dataset read with `COPY (SELECT ...) TO STDOUT` in ISO, UTC,
//! shortest-exact floats and hex bytea.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use crate::config::{Engine, ServerConfig};
use crate::db::catalog::{
    KeyLiteral, KeyRange, ReadColumn, ReadFrom, Snapshot, SourceColumn, SourceTable,
};
use crate::db::long_values::Long;
use crate::db::pg_long;
use crate::db::postgres::{connect, error};
use crate::db::sql::pg::{VALUE_FORMS, ident, qualified, set_all};

/// The engine recorded for a partitioned table (a PostgreSQL table has no engine).
pub const PARTITIONED: &str = "partitioned";

/// The session settings every reader uses: values in the forms the CSV and the import
/// expect, whatever the server's defaults.
fn session() -> String {
    format!(
        "{}; SET TimeZone = 'UTC'; SET client_encoding = 'UTF8'",
        set_all(&VALUE_FORMS, false)
    )
}

/// The base tables (and partitioned parents, not their partitions) of `schema`, their
/// columns, primary keys, row estimates, and for a column fed by a sequence (serial or
/// identity) the next value that sequence would hand out.
pub async fn read_catalog(client: &Client, schema: &str) -> Result<Vec<SourceTable>> {
    let ctx = || format!("reading the catalog of schema `{schema}` of the PostgreSQL source");
    let tables = client
        .query(
            "SELECT c.relname::text, c.relkind = 'p', GREATEST(c.reltuples, 0)::int8,
                    c.reltuples < 0 OR (c.reltuples = 0 AND c.relpages = 0)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let mut out: Vec<SourceTable> = tables
        .iter()
        .map(|r| SourceTable {
            name: r.get(0),
            engine: if r.get::<_, bool>(1) {
                PARTITIONED.into()
            } else {
                String::new()
            },
            estimated_rows: r.get::<_, i64>(2) as u64,
            columns: Vec::new(),
            primary_key: Vec::new(),
            auto_increment: None,
            partitions: None,
        })
        .collect();
    // A partitioned table's partitions, every level.
    let parts = client
        .query(
            "SELECT r.relname::text, cn.nspname::text || '.' || c.relname::text
             FROM pg_class c JOIN pg_namespace cn ON cn.oid = c.relnamespace
             JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
             JOIN pg_namespace rn ON rn.oid = r.relnamespace
             WHERE c.relispartition AND rn.nspname = $1
             ORDER BY 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for t in out.iter_mut().filter(|t| t.engine == PARTITIONED) {
        t.partitions = Some(
            parts
                .iter()
                .filter(|r| r.get::<_, String>(0) == t.name)
                .map(|r| r.get(1))
                .collect(),
        );
    }
    // A table never analysed (nor vacuumed) has no row count in pg_class: ask the
    // planner, which estimates from the table's size on disk, so that `--split-rows`
    // and the progress bars still see it as large when it is.
    for (t, r) in out.iter_mut().zip(&tables) {
        if r.get::<_, bool>(3) {
            t.estimated_rows = planner_rows(client, schema, &t.name)
                .await
                .with_context(ctx)?;
        }
    }
    // Per column: the base type's name through a domain (`enum` for enums, `array` for
    // arrays), format_type, nullability, generated, and an enum's labels.
    let cols = client
        .query(
            "SELECT c.relname::text, a.attname::text,
                    CASE WHEN b.typtype = 'e' THEN 'enum'
                         WHEN b.typcategory = 'A' THEN 'array'
                         ELSE b.typname::text END,
                    format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, a.attgenerated <> '',
                    ARRAY(SELECT l.enumlabel::text FROM pg_enum l WHERE l.enumtypid = b.oid
                          ORDER BY l.enumsortorder)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in cols {
        let table: String = r.get(0);
        if let Some(t) = out.iter_mut().find(|t| t.name == table) {
            t.columns.push(SourceColumn {
                name: r.get(1),
                data_type: r.get(2),
                column_type: r.get(3),
                nullable: r.get(4),
                generated: r.get(5),
                charset: None,
                labels: r.get(6),
            });
        }
    }
    let keys = client
        .query(
            "SELECT c.relname::text, a.attname::text
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE n.nspname = $1 AND i.indisprimary
             ORDER BY c.relname, k.ord",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in keys {
        let table: String = r.get(0);
        if let Some(t) = out.iter_mut().find(|t| t.name == table) {
            t.primary_key.push(r.get(1));
        }
    }
    // Serial and identity columns: the next value of their sequence, so that the target's
    // sequence continues after it (never reissuing an id the source handed out).
    let seqs = client
        .query(
            "SELECT c.relname::text, a.attname::text, format('%I.%I', sn.nspname, s.relname)
             FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             JOIN pg_class c ON c.oid = d.refobjid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
             WHERE n.nspname = $1 AND d.classid = 'pg_class'::regclass
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let names: Vec<String> = seqs.iter().map(|r| r.get(2)).collect();
    let positions = crate::db::postgres::positions_of(client, &names)
        .await
        .with_context(ctx)?;
    for r in &seqs {
        let table: String = r.get(0);
        let column: String = r.get(1);
        let seq: String = r.get(2);
        let Some(&(_, last, called)) = positions.iter().find(|(n, ..)| *n == seq) else {
            continue;
        };
        let next = if called { last + 1 } else { last };
        if let Some(t) = out.iter_mut().find(|t| t.name == table)
            && next > 0
        {
            t.auto_increment = Some((column, next as u64));
        }
    }
    Ok(out)
}

/// `schema.table`, or `(query) AS q`.
fn from_clause(schema: &str, from: ReadFrom<'_>) -> String {
    match from {
        ReadFrom::Table { name, .. } => qualified(schema, name),
        ReadFrom::Query(q) => format!("({}) AS q", crate::db::mysql::trim_statement(q)),
    }
}

/// One reading connection, in the reader session settings.
pub async fn connect_reader(cfg: &ServerConfig, db: &str) -> Result<Client> {
    let client = connect(cfg, db).await?;
    client
        .batch_execute(&session())
        .await
        .map_err(error)
        .context("preparing a reading session")?;
    Ok(client)
}

/// Open `wanted` readers on ONE snapshot: the first exports it (`pg_export_snapshot()`),
/// the others import it; every one is REPEATABLE READ, READ ONLY.
pub async fn open_readers(
    cfg: &ServerConfig,
    db: &str,
    wanted: usize,
) -> Result<(Vec<Client>, Snapshot)> {
    let first = connect_reader(cfg, db).await?;
    first
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(error)
        .context("starting the snapshot")?;
    let id: String = first
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(error)
        .context("exporting the snapshot")?
        .get(0);
    let mut conns = vec![first];
    for _ in 1..wanted.max(1) {
        let c = connect_reader(cfg, db).await?;
        c.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            crate::db::sql::pg::literal(&id)
        ))
        .await
        .map_err(error)
        .context("joining the exported snapshot")?;
        conns.push(c);
    }
    let n = conns.len();
    Ok((
        conns,
        Snapshot {
            isolation: "REPEATABLE READ".into(),
            time_zone: "UTC".into(),
            charset: "UTF8".into(),
            readers: n,
            synchronized_by: format!("pg_export_snapshot() {id}, imported by {n} readers"),
        },
    ))
}

/// Stream a dataset out with `COPY (SELECT ...) TO STDOUT`, one row of fields at a time.
pub async fn stream_table<F>(
    client: &Client,
    schema: &str,
    from: ReadFrom<'_>,
    columns: &[ReadColumn<'_>],
    range: Option<&KeyRange>,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    let long = Long::of(columns, from);
    let mut cols: Vec<String> = columns.iter().map(|c| ident(c.name)).collect();
    let flags = match &long {
        Some(l) => pg_long::wrap(&mut cols, columns, l),
        None => Vec::new(),
    };
    cols.extend(flags);
    let table = from_clause(schema, from);
    let sql = format!(
        "COPY (SELECT {} FROM {table}{}) TO STDOUT",
        cols.join(", "),
        from.where_clause(range, Engine::Postgresql)
    );
    let what = match from {
        ReadFrom::Table { name, .. } => format!("reading table `{name}`"),
        ReadFrom::Query(_) => "reading a query".to_string(),
    };
    let n = columns.len();
    let mut aside = Vec::new();
    let context = || what.clone();
    crate::db::postgres::copy_text_rows(client, &sql, &context, |row| {
        if let Some(l) = &long
            && row[n..].iter().any(Option::is_some)
        {
            aside.push(l.key_of(row)?);
            return Ok(());
        }
        on_row(&row[..n], &[])
    })
    .await?;
    match (long, from) {
        (Some(l), ReadFrom::Table { name, .. }) if !aside.is_empty() => {
            let read = pg_long::SetAside {
                table: name,
                from: &table,
                select: &cols,
                columns,
                long: &l,
            };
            read.rows(client, aside, &mut on_row).await
        }
        _ => Ok(()),
    }
}

/// The columns a mapping's `query` returns, with their types, from its result shape
/// (prepared, never run).
pub async fn probe_query(client: &Client, dataset: &str, query: &str) -> Result<Vec<SourceColumn>> {
    let context = || format!("the mapping's `query` for `{dataset}`");
    let stmt = client
        .prepare(&format!(
            "SELECT * FROM ({}) AS q",
            crate::db::mysql::trim_statement(query)
        ))
        .await
        .map_err(error)
        .with_context(context)?;
    let mut out = Vec::new();
    for c in stmt.columns() {
        let oid = c.type_().oid() as i64;
        let row = client
            .query_one(
                "SELECT CASE WHEN b.typtype = 'e' THEN 'enum' WHEN b.typcategory = 'A' THEN 'array'
                             ELSE b.typname::text END,
                        format_type(t.oid, NULL),
                        ARRAY(SELECT l.enumlabel::text FROM pg_enum l WHERE l.enumtypid = b.oid
                              ORDER BY l.enumsortorder)
                 FROM pg_type t
                 JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
                 WHERE t.oid = $1::int8::oid",
                &[&oid],
            )
            .await
            .map_err(error)
            .with_context(context)?;
        out.push(SourceColumn {
            name: c.name().to_string(),
            data_type: row.get(0),
            column_type: row.get(1),
            nullable: true,
            generated: false,
            charset: None,
            labels: row.get(2),
        });
    }
    Ok(out)
}

/// A mapping's `where`, prepared by the server before anything is read.
pub async fn check_filter(client: &Client, schema: &str, table: &str, filter: &str) -> Result<()> {
    client
        .prepare(&format!(
            "SELECT 1 FROM {} WHERE ({filter}) LIMIT 0",
            qualified(schema, table)
        ))
        .await
        .map(|_| ())
        .map_err(error)
        .with_context(|| format!("the mapping's `where` for table `{table}` ({filter})"))
}

/// The planner's row estimate for a whole table (`EXPLAIN (FORMAT JSON)`'s `Plan Rows`).
async fn planner_rows(client: &Client, schema: &str, table: &str) -> Result<u64> {
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {}",
        qualified(schema, table)
    );
    let text = client
        .simple_query(&sql)
        .await
        .map_err(error)?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    Ok(plan_rows(&text).unwrap_or(0))
}

/// `Plan Rows` of the top node of an `EXPLAIN (FORMAT JSON)` (pure).
fn plan_rows(explain: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(explain).ok()?;
    v.get(0)?
        .get("Plan")?
        .get("Plan Rows")?
        .as_f64()
        .map(|r| r.max(0.0) as u64)
}

/// `parts - 1` boundaries cutting a table into about equal key ranges (each read inside
/// the snapshot; the ranges cover every key exactly once, in the column's own order).
pub async fn split_points(
    client: &Client,
    schema: &str,
    table: &str,
    column: &str,
    integer: bool,
    estimated_rows: u64,
    parts: u64,
) -> Result<Vec<KeyLiteral>> {
    let mut out: Vec<KeyLiteral> = Vec::new();
    for i in 1..parts {
        let offset = (estimated_rows * i / parts) as i64;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {c}::text FROM {} ORDER BY {c} LIMIT 1 OFFSET $1",
                    qualified(schema, table),
                    c = ident(column)
                ),
                &[&offset],
            )
            .await
            .map_err(error)
            .with_context(|| format!("finding key ranges of `{table}`"))?;
        let Some(row) = row else { break };
        let Some(v): Option<String> = row.get(0) else {
            break;
        };
        let Some(lit) = KeyLiteral::new(integer, v.as_bytes()) else {
            break;
        };
        if out.last() != Some(&lit) {
            out.push(lit);
        }
    }
    Ok(out)
}

/// Exact `count(*)` of a dataset (with its filter), or of a query's rows.
pub async fn count_rows(client: &Client, schema: &str, from: ReadFrom<'_>) -> Result<u64> {
    let mut sql = format!("SELECT count(*) FROM {}", from_clause(schema, from));
    if let ReadFrom::Table {
        filter: Some(f), ..
    } = from
    {
        sql.push_str(&format!(" WHERE ({f})"));
    }
    let n: i64 = client
        .query_one(&sql, &[])
        .await
        .map_err(error)
        .context("counting rows in the PostgreSQL source")?
        .get(0);
    Ok(n as u64)
}

/// How many rows of a dataset part (its filter and key range) make each of `exprs` true
/// (the mapping's `count` rules), in the reader's snapshot.
pub async fn count_matching(
    client: &Client,
    schema: &str,
    from: ReadFrom<'_>,
    range: Option<&KeyRange>,
    exprs: &[&str],
) -> Result<Vec<u64>> {
    let sums: Vec<String> = exprs
        .iter()
        .map(|e| format!("count(*) FILTER (WHERE ({e}))::int8"))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}{}",
        sums.join(", "),
        from_clause(schema, from),
        from.where_clause(range, Engine::Postgresql)
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(error)
        .context("evaluating the mapping's `count` rules")?;
    Ok((0..exprs.len())
        .map(|i| row.get::<_, i64>(i) as u64)
        .collect())
}

/// The source cluster's identity and the database, to refuse an import into the very
/// tables being read.
pub async fn identity(client: &Client) -> Result<(Option<String>, String)> {
    let sysid = crate::db::postgres::system_identifier(client).await?;
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(error)?
        .get(0);
    Ok((sysid, db))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_planner_s_estimate_is_read_from_explain() {
        let explain =
            r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 2550, "Plan Width": 4}}]"#;
        assert_eq!(super::plan_rows(explain), Some(2550));
        assert_eq!(super::plan_rows("[]"), None);
        assert_eq!(super::plan_rows("not json"), None);
    }
}
