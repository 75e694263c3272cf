//! PURE: the plan in words (the mapping's steps, for `--dry-run` and the journal) and as
//! `--dry-run --json` prints it.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::import::compute::Kind;

use super::{IndexChoice, Plan, Skipped, Statement, TableInput};

/// At most `n` characters of `s` on one line, for messages.
pub fn shorten(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

/// The plan as `--dry-run --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub target_database: String,
    pub schema: String,
    pub tables: Vec<TableReport>,
    pub skipped: Vec<Skipped>,
    pub cascade: Vec<String>,
    pub mapping: Vec<String>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Per target table: its indexes rebuilt around its COPY or kept, and why.
    pub indexes: Vec<IndexChoice>,
    /// `maintenance_work_mem` of the index builds, in kB (when any table rebuilds).
    pub build_memory_kb: Option<u64>,
    /// The most parallel workers a b-tree build gets (when any table rebuilds).
    pub build_workers: Option<u32>,
    pub sql: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub dataset: String,
    pub table: String,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub files: Vec<String>,
    pub columns: Vec<String>,
    pub copy_format: &'static str,
    pub csv_reason: Option<String>,
    pub sequences: Vec<String>,
    pub triggers: &'static str,
}

impl Plan {
    /// What `--dry-run --json` prints.
    pub fn report(&self, target_db: &str) -> PlanReport {
        PlanReport {
            target_database: target_db.to_string(),
            schema: self.schema.clone(),
            tables: self
                .tables
                .iter()
                .map(|t| TableReport {
                    dataset: t.dataset.clone(),
                    table: t.table.clone(),
                    rows: t.expected_rows,
                    bytes: t.bytes,
                    files: t.files.iter().map(|f| f.file.clone()).collect(),
                    columns: t.target_columns.clone(),
                    copy_format: if t.binary_types.is_some() {
                        "binary"
                    } else {
                        "csv"
                    },
                    csv_reason: t.csv_reason.clone(),
                    sequences: self
                        .sequences_of(&t.table)
                        .map(|q| q.sequence.clone())
                        .collect(),
                    triggers: if t.fire { "fire" } else { "off" },
                })
                .collect(),
            skipped: self.skipped.clone(),
            cascade: self
                .cascade
                .iter()
                .map(|(s, t)| format!("{s}.{t}"))
                .collect(),
            mapping: self.mapping_steps.clone(),
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
            indexes: self.indexes.clone(),
            build_memory_kb: self.build_memory_kb,
            build_workers: self.build_workers,
            sql: self
                .statements(&BTreeSet::new())
                .iter()
                .map(Statement::terminated)
                .collect(),
        }
    }
}

/// Each table's index choice in words, for `--dry-run`, the plan note and the journal.
pub fn index_lines(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for c in plan.indexes.iter().filter(|c| c.choice != "none") {
        let what = match c.choice {
            "rebuild" => format!(
                "{} dropped before the COPY and built after it",
                c.rebuilt.join(", ")
            ),
            _ => "kept during the load".to_string(),
        };
        out.push(format!("indexes: `{}`: {what} ({})", c.table, c.reason));
        if c.choice == "rebuild" {
            for k in &c.kept {
                out.push(format!(
                    "indexes: `{}`: {} stays: {}",
                    c.table, k.index, k.reason
                ));
            }
            if !c.foreign_keys.is_empty() {
                out.push(format!(
                    "indexes: `{}`: foreign keys dropped and added back with it, validated: {}",
                    c.table,
                    c.foreign_keys.join(", ")
                ));
            }
        }
    }
    if let Some(kb) = plan.build_memory_kb {
        const WHY: &str = "(max_parallel_maintenance_workers, 32 MB of that memory each)";
        let workers = match plan.build_workers {
            Some(0) | None => "b-tree builds without parallel workers \
                               (max_parallel_maintenance_workers is 0, or the memory gives \
                               no worker its 32 MB)"
                .to_string(),
            Some(1) => format!("b-tree builds with up to 1 parallel worker {WHY}"),
            Some(n) => format!("b-tree builds with up to {n} parallel workers {WHY}"),
        };
        out.push(format!(
            "indexes: built with maintenance_work_mem = {} MB; {workers}",
            kb / 1024
        ));
    }
    out
}

/// The mapping's steps in words, for `--dry-run` and the journal.
pub(super) fn mapping_steps(plan: &Plan, inputs: &[TableInput]) -> Vec<String> {
    let mut out = Vec::new();
    for t in &plan.tables {
        let spec = inputs
            .iter()
            .find(|i| i.spec.name == t.dataset)
            .map(|i| &i.spec);
        let from = match spec {
            Some(s) if s.query.is_some() => format!(
                "query `{}` ({})",
                t.dataset,
                shorten(s.query.as_deref().unwrap_or_default(), 60)
            ),
            _ => format!("`{}`", t.dataset),
        };
        if t.dataset != t.table || spec.is_some_and(|s| s.query.is_some()) {
            out.push(format!("map: {from} -> table `{}`", t.table));
        }
        if let Some(filter) = spec.and_then(|s| s.filter.as_deref()) {
            out.push(format!(
                "where: `{}` was exported with WHERE {filter}",
                t.dataset
            ));
        }
        for (rule, n) in spec.map(|s| &s.counts).into_iter().flatten() {
            out.push(format!(
                "count: `{}` rule `{rule}` held for {n} exported rows",
                t.dataset
            ));
        }
        for (c, to) in t.columns.iter().zip(&t.target_columns) {
            if c != to {
                out.push(format!(
                    "rename: `{}`.`{c}` -> `{}`.`{to}`",
                    t.dataset, t.table
                ));
            }
        }
        for s in &t.sets {
            let how = match (s.kind, &t.staging) {
                (Kind::Once, None) => {
                    "evaluated once, after the before hooks, sent with every row".to_string()
                }
                (Kind::OverRows, Some((stage, _, _))) => format!(
                    "per row, over all the dataset's rows together (a window function), \
                     through staging table `{stage}`"
                ),
                (_, Some((stage, _, _))) => format!("per row, through staging table `{stage}`"),
                (_, None) => "per row".to_string(),
            };
            let replaces = if s.replaces {
                "; replaces the CSV value"
            } else {
                ""
            };
            out.push(format!(
                "set: `{}`.`{}` = {} ({how}{replaces})",
                t.table,
                s.column,
                shorten(&s.expr, 80)
            ));
        }
        if t.fire {
            out.push(format!(
                "triggers: `{}` loads with its triggers and foreign-key checks (triggers = \"fire\")",
                t.table
            ));
        }
    }
    if plan.targets.len() > 1 {
        out.push(match plan.follows_export {
            false => format!("load order (parents first): {}", plan.targets.join(", ")),
            // docs/DESIGN.md: migrate loads a table whose files are complete while an
            // earlier one is still being exported.
            true => format!(
                "load order (parents first, unless a later table's files are complete \
                 while an earlier one is still being exported): {}",
                plan.targets.join(", ")
            ),
        });
    }
    for c in &plan.cycles {
        out.push(format!("cycle broken: {c}"));
    }
    if plan.deferred {
        out.push("foreign-key checks of the cycle deferred to COMMIT (DEFERRABLE)".into());
    }
    out
}
