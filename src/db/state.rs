//! `pgconverge.state` in the target: where a delta chain stands, one row per target
//! schema (the export applied last: its id, kind, manifest sha256, log position, source,
//! time). The one thing pgconverge keeps in a target besides the data: written only by
//! the import of a chain's base or delta, in the import's own transaction, and removed by
//! `delta-end`. The SQL lives here; the plan runs the in-transaction statements built by
//! `record_sql` and `guard_sql` with everything else.

use anyhow::{Context, Result};
use serde::Serialize;
use tokio_postgres::Client;

use crate::db::postgres::error;
use crate::db::sql::pg::literal;

/// The schema pgconverge keeps its one table in.
pub const SCHEMA: &str = "pgconverge";
const TABLE: &str = "pgconverge.state";

/// Where a target schema's chain stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct State {
    pub target_schema: String,
    pub export_id: String,
    /// `full` (a base) or `delta`.
    pub kind: String,
    pub manifest_sha256: String,
    /// The log position as JSON text.
    pub position: String,
    pub source: String,
    pub applied_at: String,
}

/// The statements, run inside an import's transaction, that record `s` as where the
/// target schema now stands (creating the schema and table when missing).
pub fn record_sql(s: &State) -> Vec<String> {
    vec![
        format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (target_schema text PRIMARY KEY, export_id text NOT NULL, \
             kind text NOT NULL, manifest_sha256 text NOT NULL, position jsonb NOT NULL, \
             source text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ),
        format!(
            "INSERT INTO {TABLE} (target_schema, export_id, kind, manifest_sha256, position, source, applied_at) \
             VALUES ({}, {}, {}, {}, {}::jsonb, {}, now()) ON CONFLICT (target_schema) DO UPDATE SET \
             export_id = EXCLUDED.export_id, kind = EXCLUDED.kind, manifest_sha256 = EXCLUDED.manifest_sha256, \
             position = EXCLUDED.position, source = EXCLUDED.source, applied_at = EXCLUDED.applied_at",
            literal(&s.target_schema),
            literal(&s.export_id),
            literal(&s.kind),
            literal(&s.manifest_sha256),
            literal(&s.position),
            literal(&s.source)
        ),
    ]
}

/// The first statements of a delta's transaction: lock the chain's table (a second import
/// of the same chain waits, then fails here) and check that the target still stands at
/// the delta's base.
pub fn guard_sql(target_schema: &str, base_sha256: &str) -> Vec<String> {
    let message = format!(
        "the target schema {target_schema} no longer stands at this delta's base (manifest sha256 \
         {base_sha256}): another import changed it"
    );
    vec![
        format!("LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE"),
        format!(
            "DO $pgc$BEGIN IF NOT EXISTS (SELECT 1 FROM {TABLE} WHERE target_schema = {} AND \
             manifest_sha256 = {}) THEN RAISE EXCEPTION '%', {}; END IF; END$pgc$",
            literal(target_schema),
            literal(base_sha256),
            literal(&message)
        ),
    ]
}

/// Where `target_schema` stands; None when no chain was ever imported into it.
pub async fn read(client: &Client, target_schema: &str) -> Result<Option<State>> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&TABLE])
        .await
        .map_err(error)
        .context("looking for pgconverge.state")?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!(
                "SELECT target_schema, export_id, kind, manifest_sha256, position::text, source, \
                 to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                 FROM {TABLE} WHERE target_schema = $1"
            ),
            &[&target_schema],
        )
        .await
        .map_err(error)
        .context("reading pgconverge.state")?;
    Ok(row.map(|r| State {
        target_schema: r.get(0),
        export_id: r.get(1),
        kind: r.get(2),
        manifest_sha256: r.get(3),
        position: r.get(4),
        source: r.get(5),
        applied_at: r.get(6),
    }))
}

/// End the chain of `target_schema`: delete its row, and the table and the schema once
/// nothing else is left in them. Returns the row deleted, if there was one.
pub async fn forget(client: &mut Client, target_schema: &str) -> Result<Option<State>> {
    let Some(state) = read(client, target_schema).await? else {
        return Ok(None);
    };
    let tx = client.transaction().await.map_err(error)?;
    let context = "removing the chain from pgconverge.state";
    tx.execute(
        &format!("DELETE FROM {TABLE} WHERE target_schema = $1"),
        &[&target_schema],
    )
    .await
    .map_err(error)
    .context(context)?;
    let left: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {TABLE}"), &[])
        .await
        .map_err(error)
        .context(context)?
        .get(0);
    if left == 0 {
        tx.batch_execute(&format!("DROP TABLE {TABLE}"))
            .await
            .map_err(error)
            .context(context)?;
        let objects: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_class WHERE relnamespace = $1::text::regnamespace",
                &[&SCHEMA],
            )
            .await
            .map_err(error)
            .context(context)?
            .get(0);
        if objects == 0 {
            tx.batch_execute(&format!("DROP SCHEMA {SCHEMA}"))
                .await
                .map_err(error)
                .context(context)?;
        }
    }
    tx.commit().await.map_err(error).context(context)?;
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_statements_quote_every_value() {
        let s = State {
            target_schema: "app's".into(),
            export_id: "x@1".into(),
            kind: "delta".into(),
            manifest_sha256: "ab".into(),
            position: r#"{"file":"bin.000001"}"#.into(),
            source: "mysql://h/db".into(),
            applied_at: String::new(),
        };
        let sql = record_sql(&s);
        assert_eq!(sql.len(), 3);
        assert!(
            sql[2].contains("'app''s'") && sql[2].contains(r#"'{"file":"bin.000001"}'::jsonb"#)
        );
        let guard = guard_sql("app's", "ab");
        assert!(guard[0].starts_with("LOCK TABLE pgconverge.state"));
        assert!(guard[1].contains("target_schema = 'app''s' AND manifest_sha256 = 'ab'"));
    }
}
