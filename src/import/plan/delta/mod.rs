//! PURE: a delta applied by key. The plan of the delta's upserted rows is built as for any
//! export (`build`: columns, adaptations, binary or CSV, `set`, sequences); this turns it
//! into the delta's statements: the chain's guard, the deleted keys copied into temporary
//! tables and deleted by key, the upserted rows copied into staging tables and merged with
//! `INSERT ... ON CONFLICT (key) DO UPDATE`, a table without a key emptied with DELETE and
//! reloaded, the source's foreign-key actions applied to the rows only the target still
//! holds, sequences moved forward, foreign keys checked for the touched keys, the chain's
//! new state. No TRUNCATE, no index rebuild, no ANALYZE.
//!
//! This file owns the delta's types and `apply`; one idea per file beside it: `table`
//! (one dataset: its keys deleted, its rows upserted), `cascade` (the source's
//! foreign-key actions), `orphans` (foreign keys checked for the touched keys) and
//! `statements` (the delta as statements, in order).

use std::collections::BTreeSet;

use crate::db::catalog::Catalog;
use crate::db::sql::pg::ident;
use crate::mapping::Mapping;
use crate::store::manifest::Manifest;

use super::{Clash, Copy, Plan, TableLoad, Touch, sequences};

mod cascade;
mod orphans;
mod statements;
mod table;
#[cfg(test)]
mod tests;

use cascade::cascade_plan;
use orphans::orphan_checks;
use table::delta_table;

/// The chain's SQL for this import, from `db::state`: the guard run first in the
/// transaction, and the record of the new state run last.
pub struct StateSql {
    pub guard: Vec<String>,
    pub record: Vec<String>,
}

/// A delta's keys file loaded into a temporary table.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysLoad {
    pub temp: String,
    pub create: String,
    pub copy: Copy,
}

/// One dataset of a delta.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaTable {
    pub dataset: String,
    pub table: String,
    pub upserts: u64,
    pub deletes: u64,
    /// Copied whole (and why): DELETE, then COPY.
    pub whole: Option<String>,
    /// The target's key columns rows are matched on.
    pub key: Vec<String>,
    /// The deleted keys, and the DELETE that applies them.
    pub delete: Option<(KeysLoad, String)>,
    /// The keys the log removed (a cascading parent) and those removed here by a cascade.
    pub gone: Option<KeysLoad>,
    /// The staging table of the upserted rows: (name, CREATE, INSERT ... ON CONFLICT).
    pub upsert: Option<(String, String, String)>,
    /// The target has unique constraints besides its key: what the upsert does when
    /// they clash half-way.
    pub clash: Option<Clash>,
    /// Its rows' load (into the staging table, or the target for a whole copy).
    pub load: TableLoad,
}

/// A delta's part of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPlan {
    pub guard: Vec<String>,
    /// In load order (parents first).
    pub tables: Vec<DeltaTable>,
    /// The source's foreign-key actions, parents first.
    pub cascades: Vec<CascadeStep>,
}

/// One of the source's foreign-key actions applied to the rows only the target holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeStep {
    pub what: String,
    pub sql: String,
    /// The child table and what the step does to its rows, counted; None for the rounds
    /// of a cycle (one block that loops until nothing changes), which `tally` reads.
    pub counted: Option<(String, Touch)>,
    /// The query that reads (and clears) what the block counted, per table and touch.
    pub tally: Option<String>,
}

/// Turn `plan` (built from the delta's upserted rows) into the delta's. Problems go to
/// `plan.errors`, as every refusal of a plan.
pub fn apply(plan: &mut Plan, m: &Manifest, cat: &Catalog, mapping: &Mapping, state: StateSql) {
    let schema = plan.schema.clone();
    let mut tables = Vec::new();
    for (n, load) in plan.tables.iter().enumerate() {
        let Some(d) = m.tables.get(&load.dataset).and_then(|e| e.delta.as_ref()) else {
            plan.errors.push(format!(
                "dataset `{}` of the delta has no delta entry",
                load.dataset
            ));
            continue;
        };
        match delta_table(n, load, d, &schema, cat, mapping) {
            Ok(t) => tables.push(t),
            Err(e) => plan.errors.push(e),
        }
    }
    let cascades = m
        .delta
        .as_ref()
        .map(|i| cascade_plan(&i.cascades, &tables, mapping, &schema))
        .unwrap_or_default();
    let touched: BTreeSet<&str> = tables
        .iter()
        .filter(|t| t.upserts > 0 || t.whole.is_some())
        .map(|t| t.table.as_str())
        .collect();
    // A sequence moves forward when its table was written, or when the source's
    // AUTO_INCREMENT says so: ids drawn and deleted inside the delta leave no row to
    // write, but the source will not issue them again.
    plan.sequences.retain(|s| {
        s.columns.iter().any(|(t, _)| touched.contains(t.as_str()))
            || s.auto_increment.is_some_and(|n| n > 1)
    });
    for s in plan.sequences.iter_mut() {
        s.sql = sequences::forward_sql(s, &schema);
    }
    plan.orphan_checks = orphan_checks(plan, &tables, cat, m);
    plan.cascade.clear();
    plan.indexes.clear();
    plan.analyze = false;
    plan.before = mapping.hooks().delta_before.clone();
    plan.after = mapping.hooks().delta_after.clone();
    plan.count_after = !plan.before.is_empty() || !plan.after.is_empty();
    plan.record_state = state.record;
    plan.delta = Some(DeltaPlan {
        guard: state.guard,
        tables,
        cascades,
    });
}

/// A target column list, quoted.
fn cols(names: &[String]) -> String {
    names
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a.x = b.x AND ...` over pairs of columns.
fn equal(a: &str, a_cols: &[String], b: &str, b_cols: &[String]) -> String {
    a_cols
        .iter()
        .zip(b_cols)
        .map(|(x, y)| format!("{a}.{} = {b}.{}", ident(x), ident(y)))
        .collect::<Vec<_>>()
        .join(" AND ")
}
