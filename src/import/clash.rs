//! A delta's upsert into a table with other unique or exclusion constraints
//! (`plan::Clash`): under a savepoint, and run again with the staged keys' rows set
//! aside when those constraints clash half-way.

use anyhow::Context;

use crate::db::postgres;
use crate::import::copy::Failure;
use crate::store::journal::Journal;

/// A delta's upsert under a savepoint: when the target's other unique or exclusion
/// constraints clash half-way (two rows swapping a unique value), rolled back to it and
/// run again with the staged keys' rows set aside and deleted first (`Clash`). The
/// result is the upsert's: its row count, or the error of its last try.
pub(super) async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    sql: &str,
    clash: &crate::import::plan::Clash,
    journal: &mut Journal,
) -> Result<Result<u64, tokio_postgres::Error>, Failure> {
    const SAVEPOINT: &str = "pgconverge_clash";
    let run = |sql: String, what: String| async move {
        tx.batch_execute(&sql)
            .await
            .map_err(postgres::error)
            .with_context(|| what)
    };
    let what = || format!("upserting the delta's rows of `{table}`");
    journal.sql_with(
        format!("SAVEPOINT {SAVEPOINT}"),
        Some("other unique constraints may clash half-way"),
    );
    run(format!("SAVEPOINT {SAVEPOINT}"), what()).await?;
    journal.sql(sql);
    let first = tx.execute(sql, &[]).await;
    let clashed = match &first {
        Err(e) => e
            .as_db_error()
            .filter(|d| matches!(d.code().code(), "23505" | "23P01"))
            .map(|d| d.constraint().unwrap_or_default().to_string()),
        Ok(_) => None,
    };
    let Some(constraint) = clashed else {
        if first.is_ok() {
            journal.sql(format!("RELEASE SAVEPOINT {SAVEPOINT}"));
            run(format!("RELEASE SAVEPOINT {SAVEPOINT}"), what()).await?;
        }
        return Ok(first);
    };
    let why = format!(
        "table `{table}`: the upsert clashed with `{constraint}` half-way: the staged keys' \
         rows are set aside, deleted and inserted again"
    );
    journal.line(&why);
    journal.sql_with(format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"), Some(&why));
    run(format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"), what()).await?;
    for step in &clash.before {
        journal.sql(step);
        run(step.clone(), what()).await?;
    }
    journal.sql(sql);
    let second = tx.execute(sql, &[]).await;
    if second.is_ok() {
        for step in &clash.after {
            journal.sql(step);
            run(step.clone(), what()).await?;
        }
        journal.sql(format!("RELEASE SAVEPOINT {SAVEPOINT}"));
        run(format!("RELEASE SAVEPOINT {SAVEPOINT}"), what()).await?;
    }
    Ok(second)
}
