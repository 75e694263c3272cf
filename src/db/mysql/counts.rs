//! Exact counts in the source: a dataset's rows, and how many rows make each of the
//! mapping's `count` rules true.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::config::Engine;
use crate::db::catalog::{KeyRange, ReadFrom};

use super::{dataset_name, error, from_clause};

/// Exact `count(*)` of a table (with its filter), or of a query's rows.
pub async fn count_rows(conn: &mut Conn, db: &str, from: ReadFrom<'_>) -> Result<u64> {
    let mut sql = format!("SELECT COUNT(*) FROM {}", from_clause(db, from));
    if let ReadFrom::Table {
        filter: Some(f), ..
    } = from
    {
        sql.push_str(&format!(" WHERE ({f})"));
    }
    let n: Option<u64> = conn
        .query_first(sql)
        .await
        .map_err(error)
        .with_context(|| format!("counting rows of `{}` in MySQL", dataset_name(from)))?;
    Ok(n.unwrap_or(0))
}

/// How many rows of a dataset part (its filter and key range) make each of `exprs` true
/// (the mapping's `count` rules), in the reader's snapshot.
pub async fn count_matching(
    conn: &mut Conn,
    db: &str,
    from: ReadFrom<'_>,
    range: Option<&KeyRange>,
    exprs: &[&str],
) -> Result<Vec<u64>> {
    let sums: Vec<String> = exprs
        .iter()
        .map(|e| format!("CAST(COALESCE(SUM(CASE WHEN ({e}) THEN 1 ELSE 0 END), 0) AS UNSIGNED)"))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}{}",
        sums.join(", "),
        from_clause(db, from),
        from.where_clause(range, Engine::Mysql)
    );
    let row: Option<mysql_async::Row> = conn
        .query_first(sql)
        .await
        .map_err(error)
        .with_context(|| format!("evaluating the `count` rules of `{}`", dataset_name(from)))?;
    let row = row.context("no row")?;
    Ok((0..exprs.len())
        .map(|i| row.get::<Option<u64>, _>(i).flatten().unwrap_or(0))
        .collect())
}
