//! PURE: the delta's plan as statements, in the order they run: guard, deletes children
//! first, upserts and whole copies parents first, cascades, sequences, the new state.

use std::collections::BTreeSet;

use crate::db::sql::pg::qualified;
use crate::import::plan::statements::{ORIGIN, REPLICA, hooks};
use crate::import::plan::{Plan, Statement, Touch};

use super::{DeltaPlan, KeysLoad};

impl DeltaPlan {
    /// The delta's statements, in the order they run.
    pub fn statements(&self, plan: &Plan, as_csv: &BTreeSet<String>) -> Vec<Statement> {
        let mut out = plan.begin();
        for sql in &self.guard {
            out.push(Statement::sql(
                sql,
                "checking that the target stands at this delta's base (pgconverge.state)",
            ));
        }
        hooks(&mut out, "delta_before", &plan.before, true);
        for (slot, c) in plan.constants.iter().enumerate() {
            out.push(Statement::Evaluate {
                slot,
                constant: c.clone(),
            });
        }
        // Children first: deletes by key, and the tables copied whole emptied.
        for t in self.tables.iter().rev() {
            if t.whole.is_some() {
                out.push(Statement::Counted {
                    touch: Touch::Deleted,
                    table: t.table.clone(),
                    sql: format!("DELETE FROM {}", qualified(&plan.schema, &t.table)),
                    context: format!(
                        "emptying `{}` (copied whole: {})",
                        t.table,
                        t.whole.as_deref().unwrap_or("")
                    ),
                });
            } else if let Some((keys, delete)) = &t.delete {
                keys_statements(&mut out, keys, &t.table, "deleted");
                out.push(Statement::Counted {
                    touch: Touch::Deleted,
                    table: t.table.clone(),
                    sql: delete.clone(),
                    context: format!("deleting {} keys of `{}`", t.deletes, t.table),
                });
            }
        }
        for t in &self.tables {
            if let Some(gone) = &t.gone {
                keys_statements(&mut out, gone, &t.table, "removed");
            }
        }
        // Parents first: upserts, and the whole copies loaded.
        for t in &self.tables {
            if t.whole.is_none() && t.upsert.is_none() {
                continue;
            }
            if t.load.fire {
                out.push(Statement::sql(
                    ORIGIN,
                    format!(
                        "loading `{}` with its triggers (triggers = \"fire\")",
                        t.table
                    ),
                ));
            }
            if let Some((_, create, _)) = &t.upsert {
                out.push(Statement::sql(
                    create,
                    format!("creating the staging table of `{}`", t.dataset),
                ));
            }
            let mut copies = t.load.copies(as_csv, plan.nulls);
            if t.upsert.is_some() {
                for c in copies.iter_mut() {
                    c.staged = true;
                }
            }
            out.extend(copies.into_iter().map(Statement::Copy));
            if let Some((_, _, insert)) = &t.upsert {
                out.push(Statement::Insert {
                    dataset: t.dataset.clone(),
                    table: t.table.clone(),
                    sql: insert.clone(),
                    expected_rows: Some(t.upserts),
                    keyed: false,
                    clash: t.clash.clone(),
                    search: None,
                });
            }
            if t.load.fire {
                out.push(Statement::sql(
                    REPLICA,
                    format!("back to loading without triggers after `{}`", t.table),
                ));
            }
        }
        for step in &self.cascades {
            out.push(match &step.counted {
                Some((table, touch)) => Statement::Counted {
                    table: table.clone(),
                    sql: step.sql.clone(),
                    context: step.what.clone(),
                    touch: *touch,
                },
                None => Statement::sql(&step.sql, &step.what),
            });
            if let Some(sql) = &step.tally {
                out.push(Statement::Tally {
                    sql: sql.clone(),
                    context: "reading what the rounds of the foreign-key actions counted".into(),
                });
            }
        }
        for seq in &plan.sequences {
            out.push(Statement::sql(
                &seq.sql,
                format!("moving sequence {} forward", seq.sequence),
            ));
        }
        hooks(&mut out, "delta_after", &plan.after, false);
        plan.end(&mut out);
        out
    }

    /// Rows the delta upserts and keys it deletes, over all tables.
    pub fn totals(&self) -> (u64, u64) {
        self.tables
            .iter()
            .fold((0, 0), |(u, d), t| (u + t.upserts, d + t.deletes))
    }
}

fn keys_statements(out: &mut Vec<Statement>, keys: &KeysLoad, table: &str, what: &str) {
    out.push(Statement::sql(
        &keys.create,
        format!("creating the table of {what} keys of `{table}`"),
    ));
    out.push(Statement::Copy(keys.copy.clone()));
}
