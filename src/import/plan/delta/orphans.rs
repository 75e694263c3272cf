//! PURE: the foreign keys a delta checks before COMMIT, each for the keys it touched only
//! where it can be, else whole.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::catalog::Catalog;
use crate::db::sql::pg::ident;
use crate::import::plan::{OrphanCheck, Plan};
use crate::store::manifest::Manifest;

use super::{DeltaTable, cols};

/// Foreign keys checked for the touched keys only: the rows a delta wrote must have their
/// parents, and no row may reference a key it deleted or removed. A whole copy, a parent
/// referenced through columns other than its key, or a child a cascade may have changed
/// is checked whole.
pub(super) fn orphan_checks(
    plan: &Plan,
    tables: &[DeltaTable],
    cat: &Catalog,
    m: &Manifest,
) -> Vec<OrphanCheck> {
    let by_table: BTreeMap<&str, &DeltaTable> =
        tables.iter().map(|t| (t.table.as_str(), t)).collect();
    let cascaded: BTreeSet<&str> = m
        .delta
        .iter()
        .flat_map(|d| &d.cascades)
        .filter_map(|c| tables.iter().find(|t| t.dataset == c.child))
        .map(|t| t.table.as_str())
        .collect();
    let mut out = Vec::new();
    for fk in &cat.foreign_keys {
        let mine = |schema: &str, t: &str| schema == plan.schema && by_table.contains_key(t);
        let child = mine(&fk.child_schema, &fk.child).then(|| by_table[fk.child.as_str()]);
        let parent = mine(&fk.parent_schema, &fk.parent).then(|| by_table[fk.parent.as_str()]);
        let mut whole = false;
        let mut within = Vec::new();
        if let Some(c) = child {
            if c.whole.is_some() {
                whole = true;
            } else if let Some((stage, _, _)) = &c.upsert {
                within.push(format!(
                    "({}) IN (SELECT {} FROM {})",
                    c.key
                        .iter()
                        .map(|k| format!("c.{}", ident(k)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    cols(&c.key),
                    ident(stage)
                ));
            }
        }
        if let Some(p) = parent {
            let removes =
                p.delete.is_some() || p.gone.is_some() || cascaded.contains(p.table.as_str());
            let mut sorted_refs = fk.parent_columns.clone();
            sorted_refs.sort();
            let mut sorted_key = p.key.clone();
            sorted_key.sort();
            if p.whole.is_some() || (sorted_refs != sorted_key && (removes || p.upserts > 0)) {
                whole = true;
            } else if cascaded.contains(p.table.as_str()) && p.gone.is_none() {
                // Rows a cascade deleted here are recorded only where a gone table exists.
                whole = true;
            } else if removes {
                // The parent's key columns in the order the foreign key references them.
                let mut sources = Vec::new();
                if let Some((keys, _)) = &p.delete {
                    sources.push(format!(
                        "SELECT {} FROM {}",
                        cols(&fk.parent_columns),
                        ident(&keys.temp)
                    ));
                }
                if let Some(gone) = &p.gone {
                    sources.push(format!(
                        "SELECT {} FROM {}",
                        cols(&fk.parent_columns),
                        ident(&gone.temp)
                    ));
                }
                if !sources.is_empty() {
                    within.push(format!(
                        "({}) IN ({})",
                        fk.child_columns
                            .iter()
                            .map(|k| format!("c.{}", ident(k)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        sources.join(" UNION ALL ")
                    ));
                }
            }
        }
        if !whole && within.is_empty() {
            continue;
        }
        out.push(OrphanCheck {
            fk: fk.clone(),
            keys: cat
                .tables
                .get(&fk.child)
                .filter(|_| fk.child_schema == plan.schema)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default(),
            within: (!whole).then(|| within.join(" OR ")),
        });
    }
    out
}
