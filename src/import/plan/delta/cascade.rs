//! PURE: the source's foreign-key actions (CASCADE, SET NULL) applied to the rows only the
//! target holds, parents first; round after round when they form a cycle.

use std::collections::BTreeMap;

use crate::db::sql::pg::{ident, literal, qualified};
use crate::mapping::Mapping;
use crate::store::chain::{self, Cascade, HOW_COLUMN};

use super::{CascadeStep, DeltaTable, Touch, cols, equal};

/// The source's foreign-key actions on the rows only the target holds: target rows of the
/// child that reference a removed parent key and that this delta did not write. CASCADE
/// deletes them (and records them as gone, for the child's own children), SET NULL clears
/// their columns. Those within a cycle run as one block, round after round; every other
/// once, parents first (`chain::cascade_groups`).
pub(super) fn cascade_plan(
    cascades: &[Cascade],
    tables: &[DeltaTable],
    mapping: &Mapping,
    schema: &str,
) -> Vec<CascadeStep> {
    let mut out = Vec::new();
    for group in chain::cascade_groups(cascades) {
        match group {
            chain::CascadeGroup::Once(i) => {
                out.extend(cascade_steps(cascades, &[i], tables, mapping, schema))
            }
            chain::CascadeGroup::Rounds(fks) => {
                let steps = cascade_steps(cascades, &fks, tables, mapping, schema);
                if !steps.is_empty() {
                    out.push(until_nothing_changes(&steps));
                }
            }
        }
    }
    out
}

/// The steps of the foreign keys `which` (indexes into `cascades`), in that order.
fn cascade_steps(
    cascades: &[Cascade],
    which: &[usize],
    tables: &[DeltaTable],
    mapping: &Mapping,
    schema: &str,
) -> Vec<CascadeStep> {
    let by_dataset: BTreeMap<&str, &DeltaTable> =
        tables.iter().map(|t| (t.dataset.as_str(), t)).collect();
    let mut out = Vec::new();
    for &i in which {
        let fk = &cascades[i];
        let (Some(child), Some(parent)) = (
            by_dataset.get(fk.child.as_str()),
            by_dataset.get(fk.parent.as_str()),
        ) else {
            continue;
        };
        let Some(gone) = &parent.gone else {
            continue;
        };
        if child.whole.is_some() {
            continue;
        }
        let child_cols: Vec<String> = fk
            .child_columns
            .iter()
            .map(|c| mapping.target_column(&fk.child, c))
            .collect();
        let parent_cols: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|c| mapping.target_column(&fk.parent, c))
            .collect();
        let into = qualified(schema, &child.table);
        let not_written = match &child.upsert {
            Some((stage, _, _)) => format!(
                " AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})",
                ident(stage),
                equal("s", &child.key, "c", &child.key)
            ),
            None => String::new(),
        };
        for how in [chain::HOW_DELETE, chain::HOW_UPDATE] {
            let Some(delete) = chain::action(fk, how) else {
                continue;
            };
            let matched = format!(
                "r.{} = {} AND {}{not_written}",
                ident(HOW_COLUMN),
                literal(how),
                equal("c", &child_cols, "r", &parent_cols)
            );
            let what = format!(
                "{} of `{}` for `{}` rows whose parent was removed ({how}; {})",
                if delete { "deleting" } else { "clearing" },
                fk.name,
                child.table,
                if delete { "CASCADE" } else { "SET NULL" }
            );
            let sql = if !delete {
                let set: Vec<String> = child_cols
                    .iter()
                    .map(|c| format!("{} = NULL", ident(c)))
                    .collect();
                format!(
                    "UPDATE {into} c SET {} FROM {} r WHERE {matched}",
                    set.join(", "),
                    ident(&gone.temp)
                )
            } else {
                let deleted = format!(
                    "DELETE FROM {into} c USING {} r WHERE {matched}",
                    ident(&gone.temp)
                );
                match &child.gone {
                    Some(child_gone) => {
                        let ret: Vec<String> = child
                            .key
                            .iter()
                            .map(|k| format!("c.{}", ident(k)))
                            .collect();
                        // A row deleted here is one the source no longer has under its
                        // key: moved with its parent's new key when the reference is
                        // part of its key (ON UPDATE CASCADE changed its key), else
                        // deleted (a moved row that stays would have been written).
                        let moved = how == chain::HOW_UPDATE
                            && child_cols.iter().all(|c| child.key.contains(c));
                        let went = if moved {
                            chain::HOW_UPDATE
                        } else {
                            chain::HOW_DELETE
                        };
                        format!(
                            "WITH gone AS ({deleted} RETURNING {}) INSERT INTO {} ({}, {}) \
                             SELECT {}, {} FROM gone",
                            ret.join(", "),
                            ident(&child_gone.temp),
                            cols(&child.key),
                            ident(HOW_COLUMN),
                            cols(&child.key),
                            literal(went)
                        )
                    }
                    None => deleted,
                }
            };
            let touch = match delete {
                true => Touch::Cascaded,
                false => Touch::Cleared,
            };
            out.push(CascadeStep {
                what,
                sql,
                counted: Some((child.table.clone(), touch)),
                tally: None,
            });
        }
    }
    out
}

/// The table a cycle's block records what each of its steps counted in, read and
/// emptied by the tally that follows the block.
const ROUNDS: &str = "pgconverge_rounds";

/// Cascades that form a cycle (a tree's self-reference, or a -> b -> a): every step
/// again, in one block, until a whole round deletes or clears nothing (each round's deleted rows
/// are removed keys the next round follows; a row cleared or deleted once no longer
/// matches, so the rounds end). Each step's rows are summed over the rounds and recorded
/// per table and touch for the tally.
fn until_nothing_changes(steps: &[CascadeStep]) -> CascadeStep {
    let body: String = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}; GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n; c{i} := c{i} + n; ",
                s.sql
            )
        })
        .collect();
    let counters: String = (0..steps.len())
        .map(|i| format!("c{i} bigint := 0; "))
        .collect();
    let recorded: Vec<String> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.counted.as_ref().map(|(table, touch)| {
                format!("({}, {}, c{i})", literal(table), literal(touch.name()))
            })
        })
        .collect();
    CascadeStep {
        what: format!(
            "applying the source's foreign-key actions round after round (they form a cycle): {}",
            steps
                .iter()
                .map(|s| s.what.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        sql: format!(
            "DO {}",
            crate::db::sql::pg::dollar_quoted(&format!(
                "DECLARE n bigint; changed bigint; {counters}BEGIN LOOP changed := 0; {body}\
                 EXIT WHEN changed = 0; END LOOP; \
                 CREATE TEMP TABLE IF NOT EXISTS {ROUNDS} (tbl text, touch text, n bigint) \
                 ON COMMIT DROP; INSERT INTO {ROUNDS} VALUES {}; END",
                recorded.join(", ")
            ))
        ),
        counted: None,
        tally: Some(format!("DELETE FROM {ROUNDS} RETURNING tbl, touch, n")),
    }
}
