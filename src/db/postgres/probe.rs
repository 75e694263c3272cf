//! The mapping's questions to the target before anything is written: its `require`
//! statements, and what each `set` expression is (once, per row, or wrong). Every answer
//! is read in a transaction that is rolled back.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::error;

/// The mapping's `[import] require` statements, each run in a READ ONLY transaction of
/// its own before anything is written: each must return one boolean. Returns, per
/// statement, true, false, or what went wrong.
pub async fn requirements(
    client: &mut Client,
    schema: &str,
    sqls: &[String],
) -> Vec<Result<bool, String>> {
    let mut out = Vec::new();
    for sql in sqls {
        let answer = async {
            let tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(|e| format!("{:#}", error(e)))?;
            if let Some(path) = crate::db::sql::pg::search_path(schema) {
                tx.batch_execute(&path)
                    .await
                    .map_err(|e| format!("{:#}", error(e)))?;
            }
            let rows = tx
                .query(sql.as_str(), &[])
                .await
                .map_err(|e| format!("{:#}", error(e)))?;
            let _ = tx.rollback().await;
            match rows.as_slice() {
                [row] if row.len() == 1 => row
                    .try_get::<_, Option<bool>>(0)
                    .map(|b| b.unwrap_or(false))
                    .map_err(|_| "it does not return a boolean".to_string()),
                _ => Err(format!(
                    "it returned {} rows; it must return one boolean",
                    rows.len()
                )),
            }
        }
        .await;
        out.push(answer);
    }
    out
}

/// Whether the probe view calls anything VOLATILE: the function oids of its parse tree
/// (`pg_rewrite.ev_action`: `:funcid`, `:opfuncid`, `:aggfnoid`, `:winfnoid`, and each
/// `:opno`'s function), looked up in `pg_proc`. An oid that names no function counts as
/// volatile (when in doubt, per row).
const VOLATILE_PROBE: &str = "
    WITH called AS (
      SELECT m[1] AS kind, m[2]::oid AS oid
      FROM pg_rewrite r,
           regexp_matches(r.ev_action::text, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) ([0-9]+)', 'g') m
      WHERE r.ev_class = 'pgconverge_set_probe'::regclass
    ), funcs AS (
      SELECT CASE WHEN c.kind = 'opno' THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = c.oid)
                  ELSE c.oid END AS oid
      FROM called c
      WHERE c.oid <> 0
    )
    SELECT EXISTS (
      SELECT 1 FROM funcs f LEFT JOIN pg_proc p ON p.oid = f.oid
      WHERE f.oid IS NULL OR p.oid IS NULL OR p.provolatile = 'v')";

/// Whether the probe view's own query (the first `Query` node of its parse tree: a
/// subquery's come later) computes over several rows: (aggregates, window functions).
/// A `set` that does either is no constant, whatever it calls.
const OVER_ROWS_PROBE: &str = "
    SELECT coalesce(substring(r.ev_action::text from ':hasAggs ([a-z]+)') = 'true', true),
           coalesce(substring(r.ev_action::text from ':hasWindowFuncs ([a-z]+)') = 'true', true)
    FROM pg_rewrite r WHERE r.ev_class = 'pgconverge_set_probe'::regclass";

/// [`OVER_ROWS_PROBE`]'s answer: (aggregates, window functions).
async fn over_rows(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<(bool, bool), tokio_postgres::Error> {
    let row = tx.query_one(OVER_ROWS_PROBE, &[]).await?;
    Ok((row.get(0), row.get(1)))
}

/// The view whose parse tree the probes read: the `set` over `from` (its staging
/// table), or over nothing (a constant, or a column the row would give).
fn probe_view(q: &crate::import::compute::Question, from: Option<&str>) -> String {
    format!(
        "CREATE TEMP VIEW pgconverge_set_probe AS SELECT {} AS v{}",
        q.cast.apply(&q.expr),
        from.map(|f| format!(" FROM {}", crate::db::sql::pg::ident(f)))
            .unwrap_or_default()
    )
}

/// Ask the target about each `set` expression, in one transaction that is rolled back
/// (nothing is kept): one that references no column and calls nothing volatile is
/// evaluated once; any other is checked against its staging shape (the INSERT ...
/// SELECT that will move the rows is prepared), so a type error or a typo is reported
/// before any write.
pub async fn probe_sets(
    client: &mut Client,
    schema: &str,
    questions: &[crate::import::compute::Question],
) -> Result<Vec<crate::import::compute::Answer>> {
    use crate::import::compute::{self, Answer, Kind};
    let mut out = Vec::new();
    if questions.is_empty() {
        return Ok(out);
    }
    let tx = client
        .transaction()
        .await
        .map_err(error)
        .context("checking the mapping's set expressions")?;
    if let Some(path) = crate::db::sql::pg::search_path(schema) {
        tx.batch_execute(&path).await.map_err(error)?;
    }
    // `key_of` reads the map the import creates: here too (rolled back with the probe).
    if questions
        .iter()
        .any(|q| q.expr.contains(crate::mapping::keys::FUNCTION))
    {
        tx.batch_execute(crate::import::plan::keymap::SETUP)
            .await
            .map_err(error)
            .context("creating pgconverge.key_of to check the set expressions that call it")?;
    }
    for q in questions {
        tx.batch_execute("SAVEPOINT pgconverge_probe")
            .await
            .map_err(error)?;
        let kind = match tx.batch_execute(&probe_view(q, None)).await {
            Ok(()) => {
                // Anything volatile it calls makes it per row: gen_random_uuid() must
                // differ from row to row. What it calls is read from the view's own
                // parse tree (pg_depend has no row for a built-in function): every
                // function, operator, aggregate and window function node.
                let volatile: bool = tx
                    .query_one(VOLATILE_PROBE, &[])
                    .await
                    .map_err(error)?
                    .get(0);
                // An aggregate or a window function is marked IMMUTABLE in pg_proc, yet
                // evaluated once it would give every row the value of a one-row set.
                let (aggregate, window) = over_rows(&tx).await.map_err(error)?;
                match (aggregate, window, volatile) {
                    (true, _, _) => Ok(Kind::Aggregate),
                    (_, true, _) => Ok(Kind::OverRows),
                    (_, _, true) => Ok(Kind::PerRow),
                    _ => Ok(Kind::Once),
                }
            }
            // It reads a column of the row.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN) => {
                Ok(Kind::PerRow)
            }
            Err(e) => Err(format!("{:#}", error(e))),
        };
        tx.batch_execute("ROLLBACK TO SAVEPOINT pgconverge_probe")
            .await
            .map_err(error)?;
        let kind = match kind {
            Ok(first @ (Kind::PerRow | Kind::OverRows)) => {
                let stage = "pgconverge_stage_probe";
                let create = compute::stage_create_sql(stage, schema, &q.table, &q.stage);
                let kept: Vec<String> = q
                    .stage
                    .iter()
                    .filter(|(_, replaced)| !replaced)
                    .map(|(c, _)| c.clone())
                    .collect();
                let insert = compute::insert_sql(
                    stage,
                    schema,
                    &q.table,
                    &kept,
                    &[(q.column.clone(), q.expr.clone(), q.cast.clone())],
                    false,
                );
                // Over the staging table, the expression's own query says whether it
                // calls a window function (the row's columns are there to be read). The
                // flags first: an aggregate makes the INSERT fail on GROUP BY, in words
                // about the probe's own table.
                let checked = async {
                    tx.batch_execute(&create).await?;
                    tx.batch_execute(&probe_view(q, Some(stage))).await?;
                    let (aggregate, window) = over_rows(&tx).await?;
                    if !aggregate {
                        tx.prepare(&insert).await?;
                    }
                    Ok::<(bool, bool), tokio_postgres::Error>((aggregate, window))
                }
                .await;
                tx.batch_execute("ROLLBACK TO SAVEPOINT pgconverge_probe")
                    .await
                    .map_err(error)?;
                match checked {
                    Ok((true, _)) => Ok(Kind::Aggregate),
                    Ok((_, window)) if window || first == Kind::OverRows => Ok(Kind::OverRows),
                    Ok(_) => Ok(Kind::PerRow),
                    Err(e) => Err(format!("{:#}", error(e))),
                }
            }
            other => other,
        };
        out.push(Answer {
            dataset: q.dataset.clone(),
            column: q.column.clone(),
            kind,
        });
    }
    tx.rollback().await.map_err(error)?;
    Ok(out)
}
