//! Where the target's sequences stand, and putting them back: `setval` and `nextval`
//! outlive a ROLLBACK, so an import that rolls back (or rehearses) restores them.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::error;

/// Where a sequence stands: `(last_value, is_called)`, as `setval` takes them back.
pub type SequencePositions = Vec<(String, i64, bool)>;

/// Every sequence of the database this role may read, with its position. `setval` and
/// `nextval` are not undone by ROLLBACK, so an import that rolls back (or rehearses)
/// puts them back from this.
pub async fn sequence_positions(client: &Client) -> Result<SequencePositions> {
    let names: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_temp%' \
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') END \
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(error)
        .context("listing the target's sequences")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    positions_of(client, &names)
        .await
        .context("reading the target's sequence positions")
}

/// The position of each named sequence (`schema.name`, quoted as needed), in one query
/// per 200.
pub async fn positions_of(client: &Client, names: &[String]) -> Result<SequencePositions> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(200) {
        let sql = chunk
            .iter()
            .map(|n| {
                format!(
                    "SELECT {}::text, last_value, is_called FROM {n}",
                    crate::db::sql::pg::literal(n)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for r in client.query(&sql, &[]).await.map_err(error)? {
            out.push((r.get(0), r.get(1), r.get(2)));
        }
    }
    Ok(out)
}

/// Put back every sequence that moved since `before`; returns how many moved. A cancel
/// request sent for the statement that ran before (an interruption cancels it) may reach
/// the server late and cancel one of these statements instead: they are then run once
/// more, since a cancel request cancels at most one statement.
pub async fn restore_sequences(client: &Client, before: &SequencePositions) -> Result<usize> {
    match put_back(client, before).await {
        Err(e) if is_canceled(&e) => put_back(client, before).await,
        other => other,
    }
}

/// The SQLSTATE of a statement cancelled on request (or by statement_timeout).
const QUERY_CANCELED: &str = "57014";

/// Was this error (as `error` words it) a cancelled statement?
fn is_canceled(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains(&format!("({QUERY_CANCELED})"))
}

async fn put_back(client: &Client, before: &SequencePositions) -> Result<usize> {
    let now = sequence_positions(client).await?;
    let mut moved = 0;
    for (name, value, called) in before {
        if now
            .iter()
            .any(|(n, v, c)| n == name && (v, c) == (value, called))
        {
            continue;
        }
        client
            .query_one(
                &format!(
                    "SELECT setval({}::regclass, $1, $2)",
                    crate::db::sql::pg::literal(name)
                ),
                &[value, called],
            )
            .await
            .map_err(error)
            .with_context(|| format!("putting sequence {name} back at {value}"))?;
        moved += 1;
    }
    Ok(moved)
}
