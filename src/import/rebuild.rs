//! Running one step of a table's index rebuild inside the import's transaction. A build
//! the data can fail (a unique index over duplicate keys, a foreign key added back over
//! rows without a parent) runs under a savepoint: when the server refuses it, the
//! savepoint is rolled back and the rows are looked up, so the error names them by key;
//! the import then rolls back as a whole. The savepoint is released before the next
//! COPY, which needs the truncation to belong to the running (sub)transaction.

use anyhow::{Context, Result};

use crate::db::catalog::orphan_row;
use crate::db::postgres;
use crate::hint::with_hint;
use crate::import::plan::{BuildCheck, IndexStep, OrphanCheck};

const SAVEPOINT: &str = "pgconverge_index_build";

/// Run the step; a refusal the check explains comes back naming the rows.
pub async fn run(tx: &tokio_postgres::Transaction<'_>, step: &IndexStep) -> Result<()> {
    if let Some(BuildCheck::Unchanged) = &step.check {
        return unchanged(tx, step).await;
    }
    let Some(check) = &step.check else {
        return tx
            .batch_execute(&step.sql)
            .await
            .map_err(postgres::error)
            .with_context(|| step.context.clone());
    };
    let savepoint = |sql: String| async move {
        tx.batch_execute(&sql)
            .await
            .map_err(postgres::error)
            .with_context(|| format!("{sql} around {}", step.context))
    };
    savepoint(format!("SAVEPOINT {SAVEPOINT}")).await?;
    let refused = match tx.batch_execute(&step.sql).await {
        Ok(()) => return savepoint(format!("RELEASE SAVEPOINT {SAVEPOINT}")).await,
        Err(e) => postgres::error(e).context(step.context.clone()),
    };
    savepoint(format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}")).await?;
    let (found, hint) = match check {
        BuildCheck::Duplicates(d) => {
            let rows = tx
                .query(d.sql.as_str(), &[])
                .await
                .map_err(postgres::error)
                .with_context(|| format!("looking for the rows index `{}` refuses", d.index))?;
            let rows: Vec<Vec<Option<String>>> = rows
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                .collect();
            let found = (!rows.is_empty()).then(|| {
                format!(
                    "table `{}`: unique index `{}` cannot be built: rows share a key: {}",
                    d.table,
                    d.index,
                    d.describe(&rows)
                )
            });
            (
                found,
                "the target's unique index refuses rows the export holds twice: fix them at \
                 the source (or with the mapping) and export again; keeping the index during \
                 the load (--rebuild-indexes never) refuses the same rows",
            )
        }
        BuildCheck::Unchanged => (None, ""),
        BuildCheck::Conflicts(name) => (
            Some(format!(
                "table `{}`: exclusion constraint `{name}` cannot be added back: rows of the \
                 export conflict under it (the server's detail gives two of them by their values)",
                step.table
            )),
            "fix the conflicting rows at the source (or leave them out with the mapping's \
             `where`) and export again; keeping the constraint during the load \
             (--rebuild-indexes never) refuses the same rows",
        ),
        // Named with the other foreign keys' orphans once those are checked (the load
        // goes on without this key: the savepoint took its ADD back).
        BuildCheck::Orphans(check) => match orphans(tx, check).await? {
            Some(orphans) => {
                return Err(anyhow::Error::new(Orphaned {
                    fk: check.fk.clone(),
                    said: format!("{orphans}: the foreign key cannot be added back"),
                }));
            }
            None => (None, ""),
        },
    };
    Err(match found {
        Some(found) => with_hint(refused.context(found), hint),
        None => refused,
    })
}

/// A foreign key a rebuild could not add back for rows without a parent, worded with a
/// few of their keys: the import goes on to its orphan checks and refuses the COMMIT
/// naming every foreign key with orphans.
#[derive(Debug, Clone)]
pub struct Orphaned {
    pub fk: crate::db::catalog::ForeignKey,
    pub said: String,
}

impl std::fmt::Display for Orphaned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.said)
    }
}

impl std::error::Error for Orphaned {}

/// The indexes a rebuild would put back other than they are now, refused by name.
async fn unchanged(tx: &tokio_postgres::Transaction<'_>, step: &IndexStep) -> Result<()> {
    let rows = tx
        .query(step.sql.as_str(), &[])
        .await
        .map_err(postgres::error)
        .with_context(|| step.context.clone())?;
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = rows
        .iter()
        .map(|r| format!("`{}`", r.get::<_, String>(0)))
        .collect();
    let (which, them) = match names.len() {
        1 => ("index", "it"),
        _ => ("indexes", "them"),
    };
    Err(with_hint(
        anyhow::anyhow!(
            "table `{}`: {which} {} changed after the plan read {them} (a `before` hook or \
             another session altered, dropped or renamed {them}, its constraint or a foreign \
             key on {them}): rebuilding would put back what the plan read",
            step.table,
            names.join(", ")
        ),
        "make that change in an `after` hook or before the import (then run it again), or \
         keep this table's indexes in place during the load with --rebuild-indexes never",
    ))
}

/// A foreign key's orphan rows, worded with a few of their keys; None when there are none.
pub(crate) async fn orphans(
    tx: &tokio_postgres::Transaction<'_>,
    check: &OrphanCheck,
) -> Result<Option<String>> {
    let fk = &check.fk;
    let context = || format!("checking {} for rows without a parent", fk.describe());
    let n: i64 = tx
        .query_one(&check.count_sql(), &[])
        .await
        .map_err(postgres::error)
        .with_context(context)?
        .get(0);
    if n == 0 {
        return Ok(None);
    }
    let rows = tx
        .query(
            &fk.orphan_sample_sql_within(&check.keys, 5, check.within.as_deref()),
            &[],
        )
        .await
        .map_err(postgres::error)
        .with_context(context)?;
    let samples: Vec<String> = rows
        .iter()
        .map(|r| {
            let values: Vec<Option<String>> = (0..r.len()).map(|i| r.get(i)).collect();
            orphan_row(&check.keys, fk, &values)
        })
        .collect();
    Ok(Some(format!(
        "{}: {} with no parent row, e.g. {}",
        fk.describe(),
        crate::report::count(n.max(0) as u64, "row"),
        samples.join("; ")
    )))
}
