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
/// their columns. Parents first.
pub(super) fn cascade_steps(
    cascades: &[Cascade],
    tables: &[DeltaTable],
    mapping: &Mapping,
    schema: &str,
) -> Vec<CascadeStep> {
    let by_dataset: BTreeMap<&str, &DeltaTable> =
        tables.iter().map(|t| (t.dataset.as_str(), t)).collect();
    let mut out = Vec::new();
    for i in chain::cascade_order(cascades) {
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
            });
        }
    }
    out
}

/// Cascades that form a cycle (a tree's self-reference, or a -> b -> a): every step
/// again, in one block, until a whole round deletes or clears nothing (each round's deleted rows
/// are removed keys the next round follows; a row cleared or deleted once no longer
/// matches, so the rounds end).
pub(super) fn until_nothing_changes(steps: &[CascadeStep]) -> CascadeStep {
    let body: String = steps
        .iter()
        .map(|s| {
            format!(
                "{}; GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n; ",
                s.sql
            )
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
                "DECLARE n bigint; changed bigint; BEGIN LOOP changed := 0; {body}\
                 EXIT WHEN changed = 0; END LOOP; END"
            ))
        ),
        counted: None,
    }
}
