//! PURE: the import plan. Matches the export's tables and CSV header columns to the
//! target catalog by exact name, decides per table how rows travel (binary COPY where
//! every column has an exact converter, else CSV, and why), and spells out the import as
//! ONE list of [`Statement`]s. `--dry-run` prints that list, the journal records it as it
//! runs, and the executor runs it: what a dry run shows is what a real run does.
//!
//! This file owns the plan's types and `build`; one idea per file beside it:
//! `dataset` (one dataset against its target table), `staging` (where `set` values are
//! computed), `sequences` (the resets after the load), `statements` (the plan as SQL, in
//! order), `indexes` (which tables' indexes are rebuilt around their COPY, and how),
//! `report` (the plan in words and as `--dry-run --json`) and `delta` (a delta applied by
//! key).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::codec::adapt::Adapt;
use crate::codec::csv::NullStyle;
use crate::codec::pgbinary::BinType;
use crate::db::catalog::{Catalog, ForeignKey};
use crate::import::compute::{Answer, Kind, Question};
use crate::import::{checks, order};
use crate::mapping::Mapping;
use crate::store::manifest::{FileSpec, TableSpec};

pub mod collisions;
mod dataset;
pub mod delta;
pub mod indexes;
pub mod keymap;
mod locks;
mod report;
pub mod rowsearch;
mod sequences;
mod staging;
mod statements;
#[cfg(test)]
mod tests;

pub use indexes::{BuildCheck, IndexChoice, IndexStep, Rebuild};
pub use report::{PlanReport, TableReport, index_lines, shorten};
pub use statements::{Clash, Copy, Feed, RECORD_XID, STILL_OURS, Statement, Touch};

/// How to obtain the right to set `session_replication_role`.
pub const REPLICATION_ROLE_HINT: &str = "run as a superuser, or (PostgreSQL 15+) have one run: \
    GRANT SET ON PARAMETER session_replication_role TO <role>";

/// One table of the export with the column names of its CSV header.
#[derive(Debug, Clone)]
pub struct TableInput {
    pub spec: TableSpec,
    pub header: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub schema: String,
    pub strict: bool,
    /// Drop a table's indexes right before its COPY and build them right after it, in
    /// the same transaction: per table by its size (`auto`), always, or never.
    pub rebuild_indexes: Rebuild,
    /// `maintenance_work_mem` for the index builds, in kB (`--maintenance-work-mem`);
    /// None: sized from the server (`indexes::build_memory_kb`).
    pub maintenance_work_mem_kb: Option<u64>,
    /// Rows per dataset as the source's catalog estimates them (`migrate` plans before
    /// the rows are counted); the index choice uses them where given.
    pub row_estimates: BTreeMap<String, u64>,
    /// A delta: rows applied to tables that keep their others; indexes always stay.
    pub delta: bool,
    /// Files written by the old shell scripts: NULL is an unquoted empty field.
    pub legacy: bool,
    /// Convert CSV to binary COPY on the client where every column has an exact
    /// converter (`--copy-format auto`); false loads everything as CSV.
    pub binary: bool,
    /// Commit even when a foreign key has orphan rows (they are reported).
    pub allow_orphans: bool,
    /// ANALYZE the loaded tables before COMMIT (`--no-analyze` turns it off).
    pub analyze: bool,
    /// Run everything, then ROLLBACK instead of COMMIT (`--rehearse`).
    pub rehearse: bool,
}

/// A sequence set after the load: past the greatest value of every column that takes
/// values from it, and past the source's AUTO_INCREMENT - 1, so ids the source never
/// handed out or deleted are not issued again.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceReset {
    pub sequence: String,
    /// (table, column) of every column whose default or identity uses it.
    pub columns: Vec<(String, String)>,
    /// The source's next AUTO_INCREMENT value, when one of those columns had one.
    pub auto_increment: Option<u64>,
    /// The importing role owns the sequence: the reset is ALTER SEQUENCE (transactional).
    pub owned: bool,
    pub sql: String,
}

/// A target column the mapping's `set` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct SetColumn {
    pub column: String,
    pub expr: String,
    /// What the result is cast to (`compute::CastTo::of` the column).
    pub cast: crate::import::compute::CastTo,
    pub kind: Kind,
    /// It replaces a column the CSV supplies.
    pub replaces: bool,
}

/// A value evaluated once, after the `before` hooks, and sent with every row of a
/// dataset (`Plan::constants[slot]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    pub table: String,
    pub column: String,
    pub expr: String,
    pub sql: String,
    /// The target column is NOT NULL: a NULL result refuses the import.
    pub not_null: bool,
}

/// How the CSV columns reach a COPY: which are sent (a column a `set` replaces is not),
/// and the constants appended to every row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    pub keep: Vec<bool>,
    /// Slots in `Plan::constants`.
    pub constants: Vec<usize>,
}

impl Shape {
    /// Every CSV column sent as it is, nothing added.
    pub fn is_identity(&self) -> bool {
        self.constants.is_empty() && self.keep.iter().all(|k| *k)
    }
}

/// Loading one dataset of the export into its target table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLoad {
    /// The export's dataset (a source table, or a `query`).
    pub dataset: String,
    /// The target table.
    pub table: String,
    /// Loaded in this order with one COPY each (several for a split table).
    pub files: Vec<FileSpec>,
    /// The CSV header's columns (source names).
    pub columns: Vec<String>,
    /// Each CSV column's target name (after the mapping's renames).
    pub target_columns: Vec<String>,
    /// Positions of the export's primary key among `columns`.
    pub key: Vec<usize>,
    /// The target's partitions (`name FOR VALUES ...`) when it is partitioned.
    pub partitions: Vec<String>,
    pub expected_rows: Option<u64>,
    pub bytes: Option<u64>,
    /// The converter of each CSV column when the dataset loads as binary COPY.
    pub binary_types: Option<Vec<BinType>>,
    /// Why the dataset loads as CSV (`None` when binary).
    pub csv_reason: Option<String>,
    /// The adaptation of each CSV column (all `None` when no value needs one).
    pub adapts: Vec<Adapt>,
    /// The columns that adapt, with how many values change (for the plan and journal).
    pub adaptations: Vec<(String, Adapt, u64)>,
    /// The mapping's `set` columns.
    pub sets: Vec<SetColumn>,
    /// Which CSV columns are sent, and the constants added.
    pub shape: Shape,
    /// (staging table, CREATE, INSERT ... SELECT) when a `set` reads the row.
    pub staging: Option<(String, String, String)>,
    /// The staging INSERT that also writes each row's dataset, source key and record
    /// number: the collision listing's (`collisions`).
    pub traced: Option<String>,
    /// The staged INSERT's parts, to write it again when other datasets follow this one.
    pub(super) insert_parts: Option<keymap::InsertParts>,
    /// Loaded with the target's triggers and foreign-key checks (`triggers = "fire"`).
    pub fire: bool,
    /// `COPY <into> (<columns>)`.
    pub(super) copy_head: String,
    pub(super) freeze: bool,
}

/// A table of the export that is not loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub table: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub schema: String,
    /// The datasets, in load order (parents first).
    pub tables: Vec<TableLoad>,
    /// The target tables loaded, in load order, each once.
    pub targets: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// Reasons to refuse before any write.
    pub errors: Vec<String>,
    /// Target tables kept as they are: a framework's migration history.
    pub kept_history: Vec<String>,
    /// What a mapping could do about the data's refusals (the refusal's hint).
    pub fixes: Vec<crate::import::fixes::MappingFix>,
    /// `schema.table` of tables outside the import that TRUNCATE ... CASCADE reaches.
    pub cascade: Vec<(String, String)>,
    /// Sequences set after the load, one statement each.
    pub sequences: Vec<SequenceReset>,
    /// Binary COPY was allowed (`--copy-format auto`).
    pub binary: bool,
    /// How NULL is spelled in the files.
    pub nulls: NullStyle,
    /// Foreign keys checked for orphan rows before COMMIT: every one that involves an
    /// imported table, as child or parent (the replica role skipped their checks).
    pub orphan_checks: Vec<OrphanCheck>,
    pub allow_orphans: bool,
    /// ANALYZE the loaded tables before COMMIT, so the first queries have statistics.
    pub analyze: bool,
    /// End with ROLLBACK: a rehearsal of the whole load.
    pub rehearse: bool,
    /// Per target table (in load order), what happens to its indexes and why.
    pub indexes: Vec<IndexChoice>,
    /// `maintenance_work_mem` for the index builds (kB), when any table rebuilds.
    pub build_memory_kb: Option<u64>,
    /// The most parallel workers a b-tree build gets (`indexes::build_workers`).
    pub build_workers: Option<u32>,
    /// The mapping's `[import] before` and `after` hooks.
    pub before: Vec<String>,
    pub after: Vec<String>,
    /// `set` values evaluated once.
    pub constants: Vec<Constant>,
    /// Foreign-key cycles broken to order the load, in words.
    pub cycles: Vec<String>,
    /// A fired table loads before a parent through a DEFERRABLE key: checks wait for
    /// COMMIT (`SET CONSTRAINTS ALL DEFERRED`).
    pub deferred: bool,
    /// Hooks or fired triggers may add or remove rows: the loaded tables are counted
    /// after them, and the difference recorded for verify.
    pub count_after: bool,
    /// Planned by `migrate` from the source's estimates: a table whose files are
    /// complete loads while an earlier one is still being exported.
    pub follows_export: bool,
    /// The mapping's steps, in words, for `--dry-run` and the journal.
    pub mapping_steps: Vec<String>,
    /// A delta chain's statements recording where the target now stands
    /// (`pgconverge.state`), run last before COMMIT; empty for a plain export.
    pub record_state: Vec<String>,
    /// A delta: applied by key instead of truncated and reloaded.
    pub delta: Option<delta::DeltaPlan>,
    /// Per loaded table, its constraints as a failed load's diagnosis lists who breaks
    /// them (`Plan::diagnosis`).
    pub collisions: Vec<collisions::TableRules>,
    /// The datasets other datasets follow through `key_of`, whose keys are recorded.
    pub key_maps: Vec<keymap::KeyMap>,
    /// The DEFERRABLE unique and exclusion constraints of the loaded tables, checked
    /// before COMMIT: (what, SQL) (`collisions::deferred_checks`).
    pub deferred_checks: Vec<(String, String)>,
}

/// A foreign key to check before COMMIT, with the child's primary key to name rows by.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanCheck {
    pub fk: ForeignKey,
    pub keys: Vec<String>,
    /// Only the child rows this condition (on `c`) selects: a delta checks the keys it
    /// touched. None: every row.
    pub within: Option<String>,
}

impl OrphanCheck {
    /// The count of orphan rows this check runs (and the journal shows).
    pub fn count_sql(&self) -> String {
        self.fk.orphan_count_sql_within(self.within.as_deref())
    }
}

impl Plan {
    /// The sequences that columns of `table` take values from.
    pub fn sequences_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a SequenceReset> {
        self.sequences
            .iter()
            .filter(move |q| q.columns.iter().any(|(t, _)| t == table))
    }
}

/// Build the plan. `inputs` in manifest order; `answers`: the target's answers about the
/// mapping's `set` expressions (`compute::Question`s put by `questions`).
pub fn build(
    inputs: &[TableInput],
    cat: &Catalog,
    mapping: &Mapping,
    opts: &Options,
    answers: &[Answer],
) -> Plan {
    build_part(inputs, cat, mapping, opts, answers, true)
}

/// [`build`] of the whole import (`whole`), or of one dataset of it (`Replan`: what is
/// planned across datasets, the key maps, is the whole plan's).
fn build_part(
    inputs: &[TableInput],
    cat: &Catalog,
    mapping: &Mapping,
    opts: &Options,
    answers: &[Answer],
    whole: bool,
) -> Plan {
    let mut plan = Plan {
        schema: opts.schema.clone(),
        tables: Vec::new(),
        targets: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        fixes: Vec::new(),
        kept_history: Vec::new(),
        cascade: Vec::new(),
        sequences: Vec::new(),
        binary: opts.binary,
        nulls: if opts.legacy {
            NullStyle::EmptyUnquoted
        } else {
            NullStyle::Marker
        },
        orphan_checks: Vec::new(),
        allow_orphans: opts.allow_orphans,
        analyze: opts.analyze,
        rehearse: opts.rehearse,
        indexes: Vec::new(),
        build_memory_kb: None,
        build_workers: None,
        before: mapping.hooks().before.clone(),
        after: mapping.hooks().after.clone(),
        constants: Vec::new(),
        cycles: Vec::new(),
        deferred: false,
        count_after: false,
        follows_export: false,
        mapping_steps: Vec::new(),
        record_state: Vec::new(),
        delta: None,
        collisions: Vec::new(),
        key_maps: Vec::new(),
        deferred_checks: Vec::new(),
    };
    let mut loads = Vec::new();
    for input in inputs {
        if let Some(load) = dataset::dataset_load(input, cat, mapping, opts, answers, &mut plan) {
            loads.push(load);
        }
    }
    dataset::check_shared_targets(&loads, mapping, &mut plan.errors);

    // Parents first; datasets of one target together, in manifest order.
    let mut targets: Vec<String> = Vec::new();
    for l in &loads {
        if !targets.contains(&l.table) {
            targets.push(l.table.clone());
        }
    }
    let order = order::load_order(&targets, &cat.foreign_keys, &opts.schema);
    plan.cycles = order.cycles.clone();
    let fired: BTreeSet<&str> = loads
        .iter()
        .filter(|l| l.fire)
        .map(|l| l.table.as_str())
        .collect();
    for fk in &order.early_children {
        if !fired.contains(fk.child.as_str()) {
            continue;
        }
        if fk.deferrable {
            plan.deferred = true;
        } else {
            plan.errors.push(format!(
                "table `{}` loads with its triggers (triggers = \"fire\") but a foreign-key \
                 cycle makes it load before its parent `{}`, and {} is not DEFERRABLE: its \
                 check would fail",
                fk.child,
                fk.parent,
                fk.describe()
            ));
        }
    }
    let mut ordered = Vec::new();
    for t in &order.tables {
        ordered.extend(loads.iter().filter(|l| &l.table == t).cloned());
    }
    plan.tables = ordered;
    plan.targets = order.tables;

    plan.indexes = index_choices(&plan, cat, opts);
    if !opts.delta {
        let held = locks::estimate(&plan.targets, cat, &plan.indexes);
        plan.warnings.extend(locks::warning(held, &cat.lock_room));
    }
    plan.collisions = plan
        .targets
        .iter()
        .filter_map(|t| cat.tables.get(t))
        .map(|t| collisions::rules(t, &opts.schema))
        .collect();
    plan.deferred_checks = plan
        .targets
        .iter()
        .filter_map(|t| cat.tables.get(t))
        .flat_map(|t| collisions::deferred_checks(t, &opts.schema))
        .collect();
    for t in plan.targets.iter().filter(|_| !opts.delta) {
        for i in cat.tables.get(t).iter().flat_map(|t| &t.indexes) {
            if !i.valid {
                plan.warnings.push(format!(
                    "index `{}` of `{t}` is not valid (a failed CREATE INDEX CONCURRENTLY?): \
                     the import's TRUNCATE builds it anew, valid, as REINDEX would",
                    i.name
                ));
            }
        }
    }
    if plan.indexes.iter().any(|c| !c.builds.is_empty()) {
        let kb = indexes::build_memory_kb(&cat.build, opts.maintenance_work_mem_kb);
        plan.build_memory_kb = Some(kb);
        plan.build_workers = Some(indexes::build_workers(&cat.build, kb));
    }
    plan.follows_export = !opts.row_estimates.is_empty();
    plan.count_after =
        !plan.before.is_empty() || !plan.after.is_empty() || plan.tables.iter().any(|t| t.fire);
    plan.mapping_steps = report::mapping_steps(&plan, inputs);
    if whole {
        keymap::plan_maps(&mut plan, cat, mapping, &opts.schema);
    }
    plan.cascade = checks::cascade_reach(&cat.foreign_keys, &opts.schema, &plan.targets);
    plan.sequences = sequences::sequence_resets(cat, &opts.schema, &plan.tables, inputs, mapping);
    for seq in plan.sequences.iter().filter(|s| !s.owned) {
        plan.warnings.push(format!(
            "sequence {} is not owned by the importing role: it is reset with setval, which a \
             rollback does not undo; the import puts it back if it fails, but not after kill -9 \
             or a lost connection (hint: import as the owner, or ALTER SEQUENCE ... OWNER TO)",
            seq.sequence
        ));
    }
    plan.orphan_checks = cat
        .foreign_keys
        .iter()
        .filter(|fk| fk.touches(&opts.schema, &plan.targets))
        .map(|fk| OrphanCheck {
            within: None,
            keys: cat
                .tables
                .get(&fk.child)
                .filter(|_| fk.child_schema == opts.schema)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default(),
            fk: fk.clone(),
        })
        .collect();
    plan
}

/// What happens to each target's indexes: its rows are the sum of its datasets' (the
/// manifest's counts, or the source's estimates where `migrate` gave them).
fn index_choices(plan: &Plan, cat: &Catalog, opts: &Options) -> Vec<IndexChoice> {
    plan.targets
        .iter()
        .filter_map(|t| {
            let table = cat.tables.get(t)?;
            let loads: Vec<&TableLoad> = plan.tables.iter().filter(|l| &l.table == t).collect();
            let rows = loads
                .iter()
                .map(|l| {
                    opts.row_estimates
                        .get(&l.dataset)
                        .copied()
                        .or(l.expected_rows)
                })
                .sum::<Option<u64>>();
            Some(indexes::choose(
                table,
                &indexes::Load {
                    rows,
                    fired: loads.iter().any(|l| l.fire),
                    mode: opts.rebuild_indexes,
                    delta: opts.delta,
                    allow_orphans: opts.allow_orphans,
                    cat,
                },
            ))
        })
        .collect()
}

/// What planning one dataset again needs, once its real facts are known (`migrate`
/// plans the whole import before the export has read anything, then each dataset's COPY
/// from its finished files).
#[derive(Debug, Clone)]
pub struct Replan {
    pub catalog: Catalog,
    pub mapping: Mapping,
    pub options: Options,
    pub answers: Vec<Answer>,
    /// The source's SQL, for the mapping lines a refusal's hint shows.
    pub dialect: crate::import::fixes::Dialect,
}

/// A dataset's refusals once its facts are known, with what a mapping could do.
#[derive(Debug, Clone)]
pub struct Refused {
    pub errors: Vec<String>,
    pub fixes: Vec<crate::import::fixes::MappingFix>,
}

impl TableLoad {
    /// What the load does to this table's values, a line each (`adapt: ...`), as the
    /// plan and the journal say it.
    pub fn adaptation_lines(&self) -> Vec<String> {
        self.adaptations
            .iter()
            .map(|(column, adapt, changed)| {
                let count = adapt
                    .counted(*changed)
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                format!(
                    "adapt: `{}`.`{column}`: {}{count}",
                    self.table,
                    adapt.describe()
                )
            })
            .collect()
    }
}

impl Replan {
    /// The COPYs of one dataset from its finished files and facts, within `full` (the
    /// plan being run: its constants keep their slots); or the refusals its facts call
    /// for, before anything of it is written.
    pub fn copies(
        &self,
        input: &TableInput,
        full: &Plan,
        as_csv: &BTreeSet<String>,
    ) -> Result<Replanned, Refused> {
        let single = build_part(
            std::slice::from_ref(input),
            &self.catalog,
            &self.mapping,
            &self.options,
            &self.answers,
            false,
        );
        if !single.errors.is_empty() {
            return Err(Refused {
                errors: single.errors,
                fixes: single.fixes,
            });
        }
        let Some(t) = single.tables.first() else {
            return Ok(Replanned::default());
        };
        let mut t = t.clone();
        // A per-row `set` loads through the staging table the running plan created (its
        // name counts the datasets planned before it, which a plan of one cannot know).
        if let Some(planned) = full.tables.iter().find(|f| f.dataset == t.dataset)
            && let (Some((mine, ..)), Some((theirs, ..))) = (&t.staging, &planned.staging)
        {
            let (mine, theirs) = (
                crate::db::sql::pg::ident(mine),
                crate::db::sql::pg::ident(theirs),
            );
            t.copy_head = t.copy_head.replacen(&mine, &theirs, 1);
            t.staging = planned.staging.clone();
        }
        for slot in t.shape.constants.iter_mut() {
            let c = &single.constants[*slot];
            *slot = full
                .constants
                .iter()
                .position(|f| f.table == c.table && f.column == c.column)
                .unwrap_or(*slot);
        }
        Ok(Replanned {
            copies: t.copies(as_csv, full.nulls),
            adaptations: t.adaptation_lines(),
            // What only the facts could tell (values rounded as `round` accepts, ...):
            // the plan before them said the others already.
            warnings: single
                .warnings
                .into_iter()
                .filter(|w| !full.warnings.contains(w))
                .collect(),
        })
    }
}

/// A dataset's COPYs planned from its finished files, and what they do to its values
/// (`adapt:` lines, which the plan made before the export could not know).
#[derive(Debug, Clone, Default)]
pub struct Replanned {
    pub copies: Vec<Copy>,
    pub adaptations: Vec<String>,
    /// The plan's warnings the facts called for, which the plan before them lacked.
    pub warnings: Vec<String>,
}

/// The `set` expressions of every dataset whose target exists, for the target to
/// answer before the plan is made (`db::postgres::probe_sets`).
pub fn questions(inputs: &[TableInput], cat: &Catalog, mapping: &Mapping) -> Vec<Question> {
    let mut out = Vec::new();
    for input in inputs {
        let dataset = &input.spec.name;
        let Some(map) = mapping.table(dataset) else {
            continue;
        };
        let table = mapping.target_table(dataset);
        let Some(target) = cat.tables.get(&table) else {
            continue;
        };
        let stage: Vec<(String, bool)> = input
            .header
            .iter()
            .map(|h| {
                if input.spec.helpers.contains(h) {
                    return (h.clone(), true);
                }
                let t = mapping.target_column(dataset, h);
                // A CSV column the target lacks is seen as text, its raw value (the
                // missing column is refused on its own, with its fix).
                let as_text =
                    map.set.contains_key(&t) || !target.columns.iter().any(|c| c.name == t);
                (t, as_text)
            })
            .collect();
        for (column, expr) in &map.set {
            let Some(col) = target.columns.iter().find(|c| &c.name == column) else {
                continue;
            };
            out.push(Question {
                dataset: dataset.clone(),
                table: table.clone(),
                column: column.clone(),
                expr: crate::mapping::keys::qualify(expr, &mapping.target_schema(None)),
                cast: crate::import::compute::CastTo::of(col),
                stage: stage.clone(),
            });
        }
    }
    out
}
