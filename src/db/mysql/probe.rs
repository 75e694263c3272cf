//! The mapping's own SQL asked of the source before anything is read: a `where` is
//! prepared, a `query` is materialised empty and described.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::db::catalog::SourceColumn;
use crate::db::sql::my::qualified;

use super::{error, trim_statement};

/// A mapping's `where` is checked before anything is read: the server prepares the
/// filtered select (a wrong column or a syntax error is named with the table).
pub async fn check_filter(conn: &mut Conn, db: &str, table: &str, filter: &str) -> Result<()> {
    conn.query_drop(format!(
        "SELECT 1 FROM {} WHERE ({filter}) LIMIT 0",
        qualified(db, table)
    ))
    .await
    .map_err(error)
    .with_context(|| format!("the mapping's `where` for table `{table}` ({filter})"))
}

/// The columns a mapping's `query` returns, with their types: the query is materialised
/// empty (`CREATE TEMPORARY TABLE ... AS SELECT ... LIMIT 0`) and described, so its
/// columns get the same encoding rules and facts as a table's. Run on a connection
/// outside the read-only snapshot (MariaDB refuses it inside one); needs the CREATE
/// TEMPORARY TABLES privilege.
pub async fn probe_query(conn: &mut Conn, dataset: &str, query: &str) -> Result<Vec<SourceColumn>> {
    let context = || format!("the mapping's `query` for `{dataset}`");
    let tmp = "pgconverge_query_probe";
    conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE {tmp} AS SELECT * FROM ({}) AS q LIMIT 0",
        trim_statement(query)
    ))
    .await
    .map_err(error)
    .with_context(context)?;
    let rows: Vec<mysql_async::Row> = conn
        .query(format!("SHOW FULL COLUMNS FROM {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    let mut out = Vec::new();
    for row in rows {
        let text = |name: &str| -> Option<String> {
            let i = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
            match row.as_ref(i)? {
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            }
        };
        let name = text("Field").unwrap_or_default();
        let column_type = text("Type").unwrap_or_default().to_ascii_lowercase();
        let data_type = column_type
            .split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let charset = match text("Collation") {
            Some(collation) => conn
                .exec_first::<String, _, _>(
                    "SELECT CHARACTER_SET_NAME AS cs FROM information_schema.COLLATIONS \
                     WHERE COLLATION_NAME = ?",
                    (collation,),
                )
                .await
                .map_err(error)
                .with_context(context)?
                .map(|c| c.to_ascii_lowercase()),
            None => None,
        };
        out.push(SourceColumn {
            nullable: text("Null").is_some_and(|n| n.eq_ignore_ascii_case("YES")),
            name,
            data_type,
            column_type,
            generated: false,
            charset,
            labels: Vec::new(),
        });
    }
    conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    Ok(out)
}
