//! A staged INSERT that a row's value fails (a `set` dividing by zero, a value too long
//! for its column) is run inside a savepoint; on such an error the import rolls back to
//! it and finds the row (`plan::rowsearch`: halves of the staging table's pages, then
//! one page's rows, each attempt rolled back: about the INSERT's own time again), so the error names the row by its key
//! and the `set` that failed. The import still fails and writes nothing; sequences an
//! attempt drew are put back with the rest (`transaction::put_sequences_back`).

use anyhow::{Context, Result, anyhow};

use crate::db::postgres;
use crate::hint::with_hint;
use crate::import::copy::Failure;
use crate::import::plan::rowsearch::{RowSearch, Tid, searchable};
use crate::progress::Progress;
use crate::store::journal::Journal;

const SAVEPOINT: &str = "pgconverge_rows";
const PROBE: &str = "pgconverge_probe";

/// Run the staged INSERT `sql`; when a row's value fails it, the error names the row.
/// Other outcomes are returned as they came, for the caller's own handling.
pub(super) async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    search: &RowSearch,
    journal: &mut Journal,
    progress: &Progress,
) -> Result<Result<u64, tokio_postgres::Error>, Failure> {
    let what = || format!("moving `{}` into `{}`", search.dataset, search.table);
    journal.sql_with(
        format!("SAVEPOINT {SAVEPOINT}"),
        Some("a row a `set` fails on is then found by its key"),
    );
    run(tx, &format!("SAVEPOINT {SAVEPOINT}"))
        .await
        .with_context(what)?;
    journal.sql(sql);
    let failed = match tx.execute(sql, &[]).await {
        Ok(n) => {
            journal.sql(format!("RELEASE SAVEPOINT {SAVEPOINT}"));
            run(tx, &format!("RELEASE SAVEPOINT {SAVEPOINT}"))
                .await
                .with_context(what)?;
            return Ok(Ok(n));
        }
        Err(e) => e,
    };
    let code = failed.as_db_error().map(|d| d.code().code().to_string());
    if !code.as_deref().is_some_and(searchable) {
        return Ok(Err(failed));
    }
    let started = std::time::Instant::now();
    journal.line(format!(
        "`{}`: finding the row the INSERT failed on (each attempt rolled back)",
        search.dataset
    ));
    progress.note(format!(
        "`{}`: the INSERT failed; finding the row it failed on, by running it again over \
         parts of the staged rows (about its time again; interrupting stops the search, \
         and nothing is written either way)",
        search.dataset
    ));
    if run(tx, &format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
        .await
        .is_err()
    {
        return Ok(Err(failed));
    }
    match find(tx, search, &failed).await {
        Ok(Some(found)) => {
            journal.line(format!(
                "found in {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                found.words
            ));
            Err(with_hint(anyhow!("{}", found.words), found.hint).into())
        }
        // Not reproduced row by row (the error needs several rows together):
        // PostgreSQL's own words, as before.
        Ok(None) => {
            journal.line("no row fails alone: the error is PostgreSQL's own");
            Ok(Err(failed))
        }
        // The search itself was stopped (a cancel, the connection lost): said, with
        // the INSERT's own error.
        Err(e) => {
            journal.line(format!("finding the row stopped: {e:#}"));
            Err(e
                .context(format!(
                    "table `{}`: moving `{}` from its staging table: {}; finding the row it \
                     failed on stopped",
                    search.table,
                    search.dataset,
                    postgres::error(failed)
                ))
                .into())
        }
    }
}

/// What the search found.
struct Found {
    words: String,
    hint: String,
}

async fn find(
    tx: &tokio_postgres::Transaction<'_>,
    search: &RowSearch,
    failed: &tokio_postgres::Error,
) -> Result<Option<Found>> {
    let pages: i64 = tx
        .query_one(&search.pages_sql(), &[])
        .await
        .map_err(postgres::error)?
        .get(0);
    let pages = u32::try_from(pages.max(1)).unwrap_or(u32::MAX);
    // The first failing page: the lower half tried on its own, the upper one taken
    // when it passes. The whole INSERT failed already; when that needed rows of both
    // halves (or a commit elsewhere undid it), the last page's rows all pass alone.
    let (mut from, mut to) = (0, pages);
    while to - from > 1 {
        let mid = from + (to - from) / 2;
        match attempt(tx, &search.insert_pages(from, mid)).await? {
            Some(_) => to = mid,
            None => from = mid,
        }
    }
    let mut row = None;
    let tids = tx
        .query(&search.rows_of_page(from), &[])
        .await
        .map_err(postgres::error)?;
    for tid in tids {
        let Some(tid) = Tid::parse(tid.get(0)) else {
            continue;
        };
        if let Some(e) = attempt(tx, &search.insert_row(tid)).await? {
            row = Some((tid, e));
            break;
        }
    }
    let Some((tid, error)) = row else {
        return Ok(None);
    };
    // Which `set`: the error's own column, else the one that fails alone.
    let mut column = error
        .as_db_error()
        .and_then(|d| d.column())
        .map(str::to_string);
    // Of several that fail alone, the one whose error is the row's (its SQLSTATE);
    // else the first that fails.
    if column.is_none() {
        let code = |e: &tokio_postgres::Error| e.as_db_error().map(|d| d.code().clone());
        let mut first = None;
        for set in &search.parts.sets {
            let [create, insert] = search.one_set(set, tid);
            if let Some(e) = attempt(tx, &format!("{create}; {insert}")).await? {
                if code(&e) == code(&error) {
                    first = Some(set.0.clone());
                    break;
                }
                first.get_or_insert_with(|| set.0.clone());
            }
        }
        column = first;
    }
    let named = tx
        .query_one(&search.name_sql(tid), &[])
        .await
        .map_err(postgres::error)?;
    let values: Vec<Option<String>> = (0..named.len()).map(|i| named.get(i)).collect();
    // The row's own error, when its words differ from the INSERT's (run again, the rows
    // an expression reads in other tables may have changed meanwhile).
    let same = |a: &tokio_postgres::Error, b: &tokio_postgres::Error| match (
        a.as_db_error(),
        b.as_db_error(),
    ) {
        (Some(a), Some(b)) => a.code() == b.code() && a.message() == b.message(),
        _ => false,
    };
    let pg_hint = error
        .as_db_error()
        .and_then(|d| d.hint())
        .map(str::to_string);
    let found = (!same(&error, failed)).then(|| format!("{:#}", postgres::error(error)));
    let failed_text = match failed.as_db_error() {
        Some(d) => postgres::headline(d),
        None => failed.to_string(),
    };
    let words = search.words(
        &failed_text,
        column.as_deref(),
        &search.row_words(&values),
        found.as_deref(),
    );
    let hint = search.hint(column.as_deref());
    Ok(Some(Found {
        words,
        hint: match pg_hint {
            Some(h) => format!("{h}\n{hint}"),
            None => hint,
        },
    }))
}

/// Run `sql` inside a savepoint and roll it back: the error it met, if any.
async fn attempt(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
) -> Result<Option<tokio_postgres::Error>> {
    run(tx, &format!("SAVEPOINT {PROBE}")).await?;
    let outcome = tx.batch_execute(sql).await.err();
    run(
        tx,
        &format!("ROLLBACK TO SAVEPOINT {PROBE}; RELEASE SAVEPOINT {PROBE}"),
    )
    .await?;
    match outcome {
        None => Ok(None),
        Some(e) if e.as_db_error().is_some_and(|d| searchable(d.code().code())) => Ok(Some(e)),
        // Not a row's doing (a cancel, a lost connection): the search stops.
        Some(e) => Err(postgres::error(e)),
    }
}

async fn run(tx: &tokio_postgres::Transaction<'_>, sql: &str) -> Result<()> {
    tx.batch_execute(sql).await.map_err(postgres::error)
}
