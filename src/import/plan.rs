//! PURE: the import plan. Matches the export's tables and CSV header columns to the
//! target catalog by exact name, decides per table how rows travel (binary COPY where
//! every column has an exact converter, else CSV, and why), and spells out the import as
//! ONE list of [`Statement`]s. `--dry-run` prints that list, the journal records it as it
//! runs, and the executor runs it: what a dry run shows is what a real run does.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::codec::adapt::Adapt;
use crate::codec::csv::NullStyle;
use crate::codec::pgbinary::BinType;
use crate::db::catalog::{Catalog, ForeignKey, PgTable};
use crate::db::sql::pg::{ident, literal, qualified};
use crate::import::compute::{self, Answer, Kind, Question};
use crate::import::{adapt, checks, order};
use crate::mapping::Mapping;
use crate::mapping::file::quote_key;
use crate::store::manifest::{FileSpec, TableSpec};

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
    /// Drop secondary indexes before the load and rebuild them after (same transaction).
    pub rebuild_indexes: bool,
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
    pub type_sql: String,
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
    /// Loaded with the target's triggers and foreign-key checks (`triggers = "fire"`).
    pub fire: bool,
    /// `COPY <into> (<columns>)`.
    copy_head: String,
    freeze: bool,
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
    /// (table, DROP, CREATE) for each secondary index rebuilt around the load.
    pub indexes: Vec<(String, String, String)>,
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
    /// The mapping's steps, in words, for `--dry-run` and the journal.
    pub mapping_steps: Vec<String>,
}

/// A foreign key to check before COMMIT, with the child's primary key to name rows by.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanCheck {
    pub fk: ForeignKey,
    pub keys: Vec<String>,
}

/// How a COPY's data is fed from its file.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// The file's bytes as they are (`FORMAT csv`).
    Csv,
    /// Each record re-encoded as CSV after these adaptations, shaped (`FORMAT csv`).
    Rewrite(Vec<Adapt>, Shape),
    /// Each record adapted, shaped, then converted to a binary tuple (`FORMAT binary`).
    Binary(Vec<BinType>, Vec<Adapt>, Shape),
}

/// One COPY of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub dataset: String,
    /// The target table (what progress and messages name).
    pub table: String,
    pub file: String,
    /// What the manifest says of the file: the feeder hashes the bytes it sends and
    /// refuses a file that changed after the pre-pass, and bounds a record's length.
    pub sha256: Option<String>,
    pub longest: Option<u64>,
    pub sql: String,
    pub feed: Feed,
    /// The last file of its dataset: its rows are then checked and reported.
    pub last: bool,
    /// Rows the whole dataset must have received (the manifest's count).
    pub expected_rows: Option<u64>,
    /// The CSV header's columns, and the positions of the primary key among them: an
    /// error names a row by its key, a value by its column.
    pub columns: Vec<String>,
    pub key: Vec<usize>,
    /// A partitioned target's partitions, to name when a row fits none.
    pub partitions: Vec<String>,
    /// Into a staging table: the dataset is reported once its INSERT has run.
    pub staged: bool,
}

/// One step of the import, in order. The transaction is opened by `Begin` and ends with
/// `Commit`; everything between runs inside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Begin,
    /// SQL run as it is; `context` says what it is for in an error.
    Sql {
        sql: String,
        context: String,
        /// Said when the server answers "permission denied" (SQLSTATE 42501).
        hint_if_denied: Option<&'static str>,
    },
    /// Evaluate a `set` constant once (`Plan::constants[slot]`).
    Evaluate {
        slot: usize,
        constant: Constant,
    },
    Copy(Copy),
    /// Move a staged dataset into its target, computing the `set` columns per row.
    Insert {
        dataset: String,
        table: String,
        sql: String,
        expected_rows: Option<u64>,
    },
    /// Count the loaded tables after hooks and fired triggers, to record how many rows
    /// they added or removed.
    CountRows {
        schema: String,
        tables: Vec<String>,
    },
    /// Count a foreign key's orphan rows; any refuses the COMMIT unless `allow`.
    CheckOrphans {
        check: OrphanCheck,
        allow: bool,
    },
    /// Record the transaction's id and backend pid: if the connection is lost during
    /// COMMIT, they let the import ask the server what became of it.
    RecordXid,
    Commit,
    /// The end of a rehearsal (`--rehearse`): everything ran, nothing is kept.
    Rollback,
}

impl Statement {
    /// The statement as printed by `--dry-run` and written to the journal.
    pub fn text(&self) -> String {
        match self {
            Statement::Begin => "BEGIN".into(),
            Statement::Sql { sql, .. } => sql.clone(),
            Statement::Evaluate { constant, .. } => format!(
                "{}  -- set {}.{} once",
                constant.sql, constant.table, constant.column
            ),
            Statement::Copy(c) => format!("{}  -- from {}", c.sql, c.file),
            Statement::Insert { sql, .. } => sql.clone(),
            Statement::CountRows { tables, .. } => {
                format!(
                    "SELECT count(*) ...  -- rows of {} after hooks and triggers",
                    tables.join(", ")
                )
            }
            Statement::CheckOrphans { check, .. } => check.fk.orphan_count_sql(),
            Statement::RecordXid => "SELECT txid_current(), pg_backend_pid()".into(),
            Statement::Commit => "COMMIT".into(),
            Statement::Rollback => "ROLLBACK  -- a rehearsal: nothing is kept".into(),
        }
    }

    fn sql(sql: impl Into<String>, context: impl Into<String>) -> Statement {
        Statement::Sql {
            sql: sql.into(),
            context: context.into(),
            hint_if_denied: None,
        }
    }
}

/// Statements run before the COPYs, in the transaction, with what each is for.
const SESSION: [(&str, &str); 3] = [
    (
        "SET LOCAL session_replication_role = replica",
        "loading without triggers and foreign-key checks",
    ),
    // The export wrote MySQL TIMESTAMP values in UTC; timestamptz columns must read them so.
    ("SET LOCAL TimeZone = 'UTC'", "reading timestamps as UTC"),
    // Index rebuilds (--rebuild-indexes) sort in memory rather than on disk.
    (
        "SET LOCAL maintenance_work_mem = '256MB'",
        "setting maintenance_work_mem",
    ),
];

const ORIGIN: &str = "SET LOCAL session_replication_role = origin";
const REPLICA: &str = "SET LOCAL session_replication_role = replica";

impl Plan {
    /// The whole import, as executed. `as_csv` names datasets that must load as CSV even
    /// though they have binary converters (a value outside the converters' exact forms
    /// was found in an earlier attempt).
    pub fn statements(&self, as_csv: &BTreeSet<String>) -> Vec<Statement> {
        let mut out = vec![Statement::Begin];
        for (i, (sql, context)) in SESSION.iter().enumerate() {
            out.push(Statement::Sql {
                sql: sql.to_string(),
                context: context.to_string(),
                hint_if_denied: (i == 0).then_some(REPLICATION_ROLE_HINT),
            });
        }
        if let Some(sql) = crate::db::sql::pg::search_path(&self.schema) {
            out.push(Statement::sql(
                sql,
                "putting the target schema first (hooks and set expressions name its tables unqualified)",
            ));
        }
        if self.deferred {
            out.push(Statement::sql(
                "SET CONSTRAINTS ALL DEFERRED",
                "deferring foreign-key checks of a cycle to COMMIT",
            ));
        }
        if !self.targets.is_empty() {
            out.push(Statement::sql(
                format!("TRUNCATE {} CASCADE", self.target_list()),
                "truncating the imported tables",
            ));
        }
        for (table, drop, _) in &self.indexes {
            out.push(Statement::sql(
                drop,
                format!("dropping an index of `{table}` for the rebuild"),
            ));
        }
        hooks(&mut out, "before", &self.before, true);
        for (slot, c) in self.constants.iter().enumerate() {
            out.push(Statement::Evaluate {
                slot,
                constant: c.clone(),
            });
        }
        for t in &self.tables {
            if t.fire {
                out.push(Statement::sql(
                    ORIGIN,
                    format!(
                        "loading `{}` with its triggers (triggers = \"fire\")",
                        t.table
                    ),
                ));
            }
            if let Some((_, create, _)) = &t.staging {
                out.push(Statement::sql(
                    create,
                    format!("creating the staging table of `{}`", t.dataset),
                ));
            }
            out.extend(
                t.copies(as_csv, self.nulls)
                    .into_iter()
                    .map(Statement::Copy),
            );
            if let Some((stage, _, insert)) = &t.staging {
                out.push(Statement::Insert {
                    dataset: t.dataset.clone(),
                    table: t.table.clone(),
                    sql: insert.clone(),
                    expected_rows: t.expected_rows,
                });
                out.push(Statement::sql(
                    format!("DROP TABLE {}", ident(stage)),
                    format!("dropping the staging table of `{}`", t.dataset),
                ));
            }
            if t.fire {
                out.push(Statement::sql(
                    REPLICA,
                    format!("back to loading without triggers after `{}`", t.table),
                ));
            }
        }
        for (table, _, create) in &self.indexes {
            out.push(Statement::sql(
                create,
                format!("rebuilding an index of `{table}`"),
            ));
        }
        for seq in &self.sequences {
            out.push(Statement::sql(
                &seq.sql,
                format!("setting sequence {}", seq.sequence),
            ));
        }
        hooks(&mut out, "after", &self.after, false);
        if self.count_after {
            out.push(Statement::CountRows {
                schema: self.schema.clone(),
                tables: self.targets.clone(),
            });
        }
        for check in &self.orphan_checks {
            out.push(Statement::CheckOrphans {
                check: check.clone(),
                allow: self.allow_orphans,
            });
        }
        if self.rehearse {
            out.push(Statement::Rollback);
            return out;
        }
        if self.analyze && !self.targets.is_empty() {
            out.push(Statement::sql(
                format!("ANALYZE {}", self.target_list()),
                "analysing the loaded tables",
            ));
        }
        out.push(Statement::RecordXid);
        out.push(Statement::Commit);
        out
    }

    /// Every loaded target table, schema-qualified and quoted, comma-separated (what
    /// TRUNCATE and ANALYZE name).
    fn target_list(&self) -> String {
        let list: Vec<String> = self
            .targets
            .iter()
            .map(|t| qualified(&self.schema, t))
            .collect();
        list.join(", ")
    }

    /// The sequences that columns of `table` take values from.
    pub fn sequences_of<'a>(&'a self, table: &'a str) -> impl Iterator<Item = &'a SequenceReset> {
        self.sequences
            .iter()
            .filter(move |q| q.columns.iter().any(|(t, _)| t == table))
    }

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
            sql: self
                .statements(&BTreeSet::new())
                .iter()
                .map(Statement::text)
                .collect(),
        }
    }
}

/// The `[import]` hooks of one kind, with the target's triggers and checks on (they are
/// the application's own statements); `back` returns to loading without them.
fn hooks(out: &mut Vec<Statement>, kind: &str, list: &[String], back: bool) {
    if list.is_empty() {
        return;
    }
    out.push(Statement::sql(
        ORIGIN,
        format!("running the {kind} hooks with triggers on"),
    ));
    for (i, sql) in list.iter().enumerate() {
        out.push(Statement::sql(
            sql,
            format!("[import] {kind} hook #{} ({})", i + 1, shorten(sql, 80)),
        ));
    }
    if back {
        out.push(Statement::sql(
            REPLICA,
            format!("back to loading without triggers after the {kind} hooks"),
        ));
    }
}

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

/// Build the plan. `inputs` in manifest order; `answers`: the target's answers about the
/// mapping's `set` expressions (`compute::Question`s put by `questions`).
pub fn build(
    inputs: &[TableInput],
    cat: &Catalog,
    mapping: &Mapping,
    opts: &Options,
    answers: &[Answer],
) -> Plan {
    let mut plan = Plan {
        schema: opts.schema.clone(),
        tables: Vec::new(),
        targets: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
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
        before: mapping.hooks().before.clone(),
        after: mapping.hooks().after.clone(),
        constants: Vec::new(),
        cycles: Vec::new(),
        deferred: false,
        count_after: false,
        mapping_steps: Vec::new(),
    };
    let mut loads = Vec::new();
    for input in inputs {
        if let Some(load) = dataset_load(input, cat, mapping, opts, answers, &mut plan) {
            loads.push(load);
        }
    }
    check_shared_targets(&loads, mapping, &mut plan.errors);

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

    if opts.rebuild_indexes {
        for t in &plan.targets {
            if let Some(pg) = cat.tables.get(t) {
                for (name, def) in &pg.secondary_indexes {
                    plan.indexes.push((
                        t.clone(),
                        format!("DROP INDEX {}", qualified(&opts.schema, name)),
                        def.clone(),
                    ));
                }
            }
        }
    }
    plan.count_after =
        !plan.before.is_empty() || !plan.after.is_empty() || plan.tables.iter().any(|t| t.fire);
    plan.mapping_steps = mapping_steps(&plan, inputs);
    plan.cascade = checks::cascade_reach(&cat.foreign_keys, &opts.schema, &plan.targets);
    plan.sequences = sequence_resets(cat, &opts.schema, &plan.tables, inputs, mapping);
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

/// What planning one dataset again needs, once its real facts are known (`migrate`
/// plans the whole import before the export has read anything, then each dataset's COPY
/// from its finished files).
#[derive(Debug, Clone)]
pub struct Replan {
    pub catalog: Catalog,
    pub mapping: Mapping,
    pub options: Options,
    pub answers: Vec<Answer>,
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
    ) -> Result<Vec<Copy>, Vec<String>> {
        let single = build(
            std::slice::from_ref(input),
            &self.catalog,
            &self.mapping,
            &self.options,
            &self.answers,
        );
        if !single.errors.is_empty() {
            return Err(single.errors);
        }
        let Some(t) = single.tables.first() else {
            return Ok(Vec::new());
        };
        let mut t = t.clone();
        for slot in t.shape.constants.iter_mut() {
            let c = &single.constants[*slot];
            *slot = full
                .constants
                .iter()
                .position(|f| f.table == c.table && f.column == c.column)
                .unwrap_or(*slot);
        }
        Ok(t.copies(as_csv, full.nulls))
    }
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
                let t = mapping.target_column(dataset, h);
                let replaced = map.set.contains_key(&t);
                (t, replaced)
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
                expr: expr.clone(),
                type_sql: col.type_sql.clone(),
                stage: stage.clone(),
            });
        }
    }
    out
}

/// One dataset's load, or None when it is skipped or its target is missing.
fn dataset_load(
    input: &TableInput,
    cat: &Catalog,
    mapping: &Mapping,
    opts: &Options,
    answers: &[Answer],
    plan: &mut Plan,
) -> Option<TableLoad> {
    let dataset = &input.spec.name;
    let map = mapping.table(dataset);
    let here = format!("{}: [tables.{}]", mapping.origin, quote_key(dataset));
    if map.is_some_and(|m| m.skip) {
        plan.skipped.push(Skipped {
            table: dataset.clone(),
            reason: format!("{}: skip = true", mapping.origin),
        });
        return None;
    }
    let table = mapping.target_table(dataset);
    let explicit = map.and_then(|m| m.target.as_ref()).is_some();
    let Some(target) = cat.tables.get(&table) else {
        // Names are matched exactly; say so when only the case differs, or when
        // PostgreSQL cut the name to 63 bytes (MySQL allows 64).
        let near = cat
            .tables
            .keys()
            .find(|t| t.eq_ignore_ascii_case(&table))
            .map(|t| format!(" (the target has `{t}`: names are case-sensitive)"))
            .or_else(|| {
                let cut = truncated_identifier(&table)?;
                cat.tables.contains_key(cut).then(|| {
                    format!(
                        " (the target has `{cut}`: PostgreSQL cuts names to 63 bytes; map it \
                         with [tables.{}] target = \"{cut}\")",
                        quote_key(dataset)
                    )
                })
            })
            .unwrap_or_default();
        if mapping.skip_if_absent().contains(&table) {
            plan.skipped.push(Skipped {
                table: dataset.clone(),
                reason: format!("absent in the target ({} skips it)", mapping.origin),
            });
        } else if explicit {
            plan.errors.push(format!(
                "{here}: target = `{table}`, but schema `{}` of the target has no such table{near}",
                opts.schema
            ));
        } else if opts.strict {
            plan.errors.push(format!(
                "table `{table}` of the export does not exist in schema `{}` of the target{near} (--strict)",
                opts.schema
            ));
        } else {
            plan.warnings.push(format!(
                "table `{table}` does not exist in schema `{}` of the target{near}: skipped",
                opts.schema
            ));
            plan.skipped.push(Skipped {
                table: dataset.clone(),
                reason: "absent in the target".into(),
            });
        }
        return None;
    };

    let target_columns: Vec<String> = input
        .header
        .iter()
        .map(|h| mapping.target_column(dataset, h))
        .collect();
    let sets_named: BTreeMap<String, String> = map.map(|m| m.set.clone()).unwrap_or_default();
    let has = |c: &str| target.columns.iter().any(|t| t.name == c);
    if let Some(m) = map {
        for (from, to) in &m.columns {
            if !input.header.contains(from) {
                plan.errors.push(format!(
                    "{here}: columns renames `{from}`, which the export does not hold"
                ));
            } else if !has(to) {
                plan.errors.push(format!(
                    "{here}: columns renames `{from}` to `{to}`, but table `{table}` of the \
                     target has no column `{to}` (it has: {})",
                    column_list(target)
                ));
            }
        }
        for col in m.set.keys() {
            if !has(col) {
                plan.errors.push(format!(
                    "{here}: set names `{col}`, but table `{table}` of the target has no \
                     column `{col}` (it has: {})",
                    column_list(target)
                ));
            }
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (h, t) in input.header.iter().zip(&target_columns) {
        if let Some(other) = seen.insert(t, h) {
            plan.errors.push(format!(
                "table `{table}`: the CSV columns `{other}` and `{h}` both go to column `{t}`"
            ));
        }
    }
    let keep: Vec<bool> = target_columns
        .iter()
        .map(|t| !sets_named.contains_key(t))
        .collect();
    checks::columns(
        &checks::Columns {
            dataset,
            table: &table,
            spec: &input.spec,
            header: &input.header,
            targets: &target_columns,
            keep: &keep,
            computed: &sets_named.keys().cloned().collect::<Vec<_>>(),
            fire: mapping.fires(dataset),
        },
        target,
        &mut plan.errors,
        &mut plan.warnings,
    );

    // The `set` columns, as the target answered.
    let mut sets = Vec::new();
    for (column, expr) in &sets_named {
        let Some(col) = target.columns.iter().find(|c| &c.name == column) else {
            continue;
        };
        let kind = match answers
            .iter()
            .find(|a| &a.dataset == dataset && &a.column == column)
        {
            Some(a) => match &a.kind {
                Ok(k) => *k,
                Err(e) => {
                    plan.errors.push(format!(
                        "{here}: set `{column}` = {expr}: PostgreSQL rejects it: {e}"
                    ));
                    continue;
                }
            },
            None => {
                plan.errors.push(format!(
                    "{here}: set `{column}` = {expr}: not checked against the target"
                ));
                continue;
            }
        };
        if col.generated {
            plan.errors.push(format!(
                "{here}: set `{column}`: a generated column in the target, which cannot be written"
            ));
        }
        sets.push(SetColumn {
            column: column.clone(),
            expr: expr.clone(),
            type_sql: col.type_sql.clone(),
            kind,
            replaces: target_columns.contains(column),
        });
    }
    let staged = sets.iter().any(|s| s.kind == Kind::PerRow);
    let stage_name = format!(
        "pgconverge_stage_{}",
        plan.tables.len() + plan.skipped.len()
    );
    let mut load = table_load(input, target, &table, &target_columns, opts, staged, &keep);
    load.fire = mapping.fires(dataset);
    if staged {
        let stage_cols: Vec<(String, bool)> = target_columns
            .iter()
            .zip(&keep)
            .map(|(c, k)| (c.clone(), !k))
            .collect();
        let kept: Vec<String> = target_columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        let exprs: Vec<(String, String, String)> = sets
            .iter()
            .map(|s| (s.column.clone(), s.expr.clone(), s.type_sql.clone()))
            .collect();
        let identity = kept.iter().chain(exprs.iter().map(|(c, _, _)| c)).any(|c| {
            target
                .columns
                .iter()
                .any(|t| &t.name == c && t.identity == "a")
        });
        load.staging = Some((
            stage_name.clone(),
            compute::stage_create_sql(&stage_name, &opts.schema, &table, &stage_cols),
            compute::insert_sql(&stage_name, &opts.schema, &table, &kept, &exprs, identity),
        ));
        load.set_copy_target(&ident(&stage_name), &target_columns, &[]);
    } else {
        load.shape.keep = keep.clone();
        let mut extra = Vec::new();
        for s in &sets {
            let not_null = target
                .columns
                .iter()
                .any(|c| c.name == s.column && c.not_null);
            load.shape.constants.push(plan.constants.len());
            plan.constants.push(Constant {
                table: table.clone(),
                column: s.column.clone(),
                expr: s.expr.clone(),
                sql: compute::evaluate_sql(&s.expr, &s.type_sql),
                not_null,
            });
            extra.push(s.column.clone());
        }
        let sent: Vec<String> = target_columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        load.set_copy_target(&qualified(&opts.schema, &table), &sent, &extra);
    }
    load.sets = sets;
    for (i, name) in input.header.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let src = input.spec.columns.iter().find(|c| &c.name == name);
        let dst = target.columns.iter().find(|c| c.name == target_columns[i]);
        if let (Some(src), Some(dst)) = (src, dst) {
            let d = adapt::decide(&table, src, dst);
            plan.errors.extend(d.refusals);
            plan.warnings.extend(d.warnings);
            if d.adapt != Adapt::None {
                load.adapts[i] = d.adapt;
                load.adaptations.push((name.clone(), d.adapt, d.changed));
            }
        }
    }
    Some(load)
}

/// The name PostgreSQL keeps of an identifier longer than 63 bytes (NAMEDATALEN - 1),
/// cut at a character boundary as it does; None when it fits.
pub fn truncated_identifier(name: &str) -> Option<&str> {
    if name.len() <= 63 {
        return None;
    }
    let mut end = 63;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Some(&name[..end])
}

fn column_list(t: &PgTable) -> String {
    t.columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Several datasets loading into one table must each say so (`target =`): a dataset
/// landing in a table by name alone next to another one is most likely a mistake.
fn check_shared_targets(loads: &[TableLoad], mapping: &Mapping, errors: &mut Vec<String>) {
    let mut by_target: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in loads {
        by_target.entry(&l.table).or_default().push(&l.dataset);
    }
    for (table, datasets) in by_target {
        if datasets.len() < 2 {
            continue;
        }
        let implicit: Vec<&str> = datasets
            .iter()
            .filter(|d| mapping.table(d).and_then(|m| m.target.as_ref()).is_none())
            .copied()
            .collect();
        if !implicit.is_empty() {
            errors.push(format!(
                "datasets {} all load into table `{table}`; each must say `target = \"{table}\"` \
                 in its [tables.X] section (missing for {})",
                datasets
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                implicit
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

/// The mapping's steps in words, for `--dry-run` and the journal.
fn mapping_steps(plan: &Plan, inputs: &[TableInput]) -> Vec<String> {
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
                (_, Some((stage, _, _))) => format!("per row, through staging table `{stage}`"),
                (Kind::PerRow, None) => "per row".to_string(),
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
        out.push(format!(
            "load order (parents first): {}",
            plan.targets.join(", ")
        ));
    }
    for c in &plan.cycles {
        out.push(format!("cycle broken: {c}"));
    }
    if plan.deferred {
        out.push("foreign-key checks of the cycle deferred to COMMIT (DEFERRABLE)".into());
    }
    out
}

/// ONE setval per sequence that a column of an imported table uses: the greatest of
/// every column (any table of the schema) that takes values from it and of the
/// source's AUTO_INCREMENT - 1 (mapped through the renames); back to its start when all
/// are empty.
fn sequence_resets(
    cat: &Catalog,
    schema: &str,
    loads: &[TableLoad],
    inputs: &[TableInput],
    mapping: &Mapping,
) -> Vec<SequenceReset> {
    let imported: Vec<&str> = loads.iter().map(|l| l.table.as_str()).collect();
    let mut by_sequence: BTreeMap<&str, Vec<&crate::db::catalog::SequenceUse>> = BTreeMap::new();
    for u in &cat.sequences {
        by_sequence.entry(&u.sequence).or_default().push(u);
    }
    by_sequence
        .into_iter()
        .filter(|(_, uses)| uses.iter().any(|u| imported.contains(&u.table.as_str())))
        .map(|(sequence, uses)| {
            let auto_increment = uses
                .iter()
                .filter_map(|u| {
                    loads
                        .iter()
                        .filter(|l| l.table == u.table)
                        .filter_map(|l| inputs.iter().find(|i| i.spec.name == l.dataset))
                        .filter_map(|i| i.spec.auto_increment.as_ref().map(|a| (i, a)))
                        .filter(|(i, a)| mapping.target_column(&i.spec.name, &a.column) == u.column)
                        .map(|(_, a)| a.next)
                        .max()
                })
                .max();
            let mut values: Vec<String> = uses
                .iter()
                .map(|u| {
                    format!(
                        "(SELECT max({})::bigint FROM {})",
                        ident(&u.column),
                        qualified(schema, &u.table)
                    )
                })
                .collect();
            if let Some(next) = auto_increment.filter(|n| *n > 1) {
                values.push((next - 1).to_string());
            }
            let sql = sequence_reset_sql(sequence, &values.join(", "));
            SequenceReset {
                sequence: sequence.to_string(),
                columns: uses
                    .iter()
                    .map(|u| (u.table.clone(), u.column.clone()))
                    .collect(),
                auto_increment,
                owned: uses.iter().all(|u| u.owned),
                sql,
            }
        })
        .collect()
}

/// The statement that puts `sequence` past `greatest` (an SQL expression, NULL when
/// every column is empty), or back to its start. `ALTER SEQUENCE ... RESTART` is
/// transactional, so a rollback for any reason (an error, a signal, kill -9, a lost
/// connection) leaves the sequence where it stood; `setval` is not. `setval` remains
/// only where ALTER cannot be used: a role that does not own the sequence, a descending
/// sequence, or a greatest value at the sequence's maximum (the import's own restore of
/// sequence positions covers those while the client lives).
fn sequence_reset_sql(sequence: &str, greatest: &str) -> String {
    let body = format!(
        " DECLARE seq regclass := {}::regclass; m bigint := GREATEST({greatest}); s pg_sequence; owner boolean;\n\
         BEGIN SELECT * INTO s FROM pg_sequence WHERE seqrelid = seq; \
         owner := pg_has_role((SELECT relowner FROM pg_class WHERE oid = seq), 'USAGE');\n  \
         IF m IS NULL OR m < s.seqmin THEN IF owner THEN EXECUTE format('ALTER SEQUENCE %s RESTART', seq); \
         ELSE PERFORM setval(seq, s.seqstart, false); END IF;\n  \
         ELSIF owner AND s.seqincrement > 0 AND m <= s.seqmax - s.seqincrement \
         THEN EXECUTE format('ALTER SEQUENCE %s RESTART WITH %s', seq, m + s.seqincrement);\n  \
         ELSE PERFORM setval(seq, m, true); END IF; END ",
        literal(sequence)
    );
    format!("DO {}", dollar_quoted(&body))
}

/// `body` as a dollar-quoted literal whose tag it does not contain (a quoted identifier
/// may hold `$`).
fn dollar_quoted(body: &str) -> String {
    let mut tag = "$pgc$".to_string();
    let mut n = 0;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$pgc{n}$");
    }
    format!("{tag}{body}{tag}")
}

/// The binary converter of every CSV column, or why the dataset loads as CSV. A column
/// a `set` replaces travels as text (into the staging table) or not at all.
fn binary_types(
    header: &[String],
    targets: &[String],
    replaced: &[bool],
    target: &PgTable,
    opts: &Options,
) -> (Option<Vec<BinType>>, Option<String>) {
    if !opts.binary {
        return (None, Some("--copy-format csv".into()));
    }
    let mut types = Vec::with_capacity(header.len());
    for ((name, t), replaced) in header.iter().zip(targets).zip(replaced) {
        if *replaced {
            types.push(BinType::Text);
            continue;
        }
        let Some(col) = target.columns.iter().find(|c| &c.name == t) else {
            return (None, Some(format!("column `{name}` is not in the target")));
        };
        match BinType::for_pg(&col.binary_type, col.element.as_deref(), col.element_oid) {
            Some(t) => types.push(t),
            None => {
                return (
                    None,
                    Some(format!(
                        "column `{name}` is {} (no exact binary converter)",
                        col.type_sql
                    )),
                );
            }
        }
    }
    (Some(types), None)
}

fn table_load(
    input: &TableInput,
    target: &PgTable,
    table: &str,
    target_columns: &[String],
    opts: &Options,
    staged: bool,
    keep: &[bool],
) -> TableLoad {
    let replaced: Vec<bool> = keep.iter().map(|k| !k).collect();
    let (mut binary_types, mut csv_reason) =
        binary_types(&input.header, target_columns, &replaced, target, opts);
    // PostgreSQL's interval output (`1 day 02:00:00`, `3 mons`) is not the MySQL TIME
    // form the binary converter reads: a PostgreSQL source's intervals go as CSV.
    if binary_types.is_some()
        && let Some(c) = input
            .spec
            .columns
            .iter()
            .find(|c| c.data_type == "interval" && input.header.contains(&c.name))
    {
        binary_types = None;
        csv_reason = Some(format!(
            "column `{}` is an interval from PostgreSQL (read by PostgreSQL itself)",
            c.name
        ));
    }
    let mut load = TableLoad {
        dataset: input.spec.name.clone(),
        table: table.to_string(),
        files: input.spec.files.clone(),
        columns: input.header.clone(),
        target_columns: target_columns.to_vec(),
        partitions: target.partitions.clone(),
        key: input
            .spec
            .primary_key
            .iter()
            .filter_map(|k| input.header.iter().position(|h| h == k))
            .collect(),
        expected_rows: input.spec.rows,
        bytes: input.spec.files.iter().map(|f| f.bytes).sum(),
        adapts: vec![Adapt::None; input.header.len()],
        adaptations: Vec::new(),
        binary_types,
        csv_reason,
        sets: Vec::new(),
        shape: Shape {
            keep: vec![true; input.header.len()],
            constants: Vec::new(),
        },
        staging: None,
        fire: false,
        copy_head: String::new(),
        // The table is truncated (or the staging table created) in this transaction, so
        // its rows may be written frozen: a little faster, and no anti-wraparound vacuum
        // has to visit them later. Not through a partitioned parent.
        freeze: staged || !target.partitioned,
    };
    load.set_copy_target(&qualified(&opts.schema, table), target_columns, &[]);
    load
}

impl TableLoad {
    /// One COPY per file of the dataset, binary or CSV as decided (`as_csv`: datasets
    /// forced to CSV after a value outside the binary converters' forms).
    pub fn copies(&self, as_csv: &BTreeSet<String>, nulls: NullStyle) -> Vec<Copy> {
        let binary = self
            .binary_types
            .as_ref()
            .filter(|_| !as_csv.contains(&self.dataset));
        let adapted = self.adapts.iter().any(|a| *a != Adapt::None) || !self.shape.is_identity();
        let (sql, feed) = match binary {
            Some(types) => (
                self.binary_sql(),
                Feed::Binary(types.clone(), self.adapts.clone(), self.shape.clone()),
            ),
            None if adapted => (
                self.rewrite_sql(),
                Feed::Rewrite(self.adapts.clone(), self.shape.clone()),
            ),
            None => (self.csv_sql(nulls == NullStyle::EmptyUnquoted), Feed::Csv),
        };
        self.files
            .iter()
            .enumerate()
            .map(|(i, file)| Copy {
                dataset: self.dataset.clone(),
                table: self.table.clone(),
                file: file.file.clone(),
                sha256: file.sha256.clone(),
                longest: file.longest,
                sql: sql.clone(),
                feed: feed.clone(),
                last: i + 1 == self.files.len(),
                expected_rows: self.expected_rows,
                columns: self.columns.clone(),
                key: self.key.clone(),
                partitions: self.partitions.clone(),
                staged: self.staging.is_some(),
            })
            .collect()
    }

    /// COPY into `into` (a qualified table, or a staging table) with the columns sent
    /// and the constants added.
    fn set_copy_target(&mut self, into: &str, sent: &[String], extra: &[String]) {
        let cols: Vec<String> = sent.iter().chain(extra).map(|c| ident(c)).collect();
        self.copy_head = format!("COPY {into} ({})", cols.join(", "));
    }

    fn freeze(&self) -> &'static str {
        if self.freeze { ", FREEZE true" } else { "" }
    }

    fn binary_sql(&self) -> String {
        format!(
            "{} FROM STDIN (FORMAT binary{})",
            self.copy_head,
            self.freeze()
        )
    }

    /// The file as it is: in the old scripts' dialect NULL is an unquoted empty field.
    fn csv_sql(&self, legacy: bool) -> String {
        let null = if legacy { "" } else { ", NULL E'\\\\N'" };
        format!(
            "{} FROM STDIN (FORMAT csv, HEADER true{null}{})",
            self.copy_head,
            self.freeze()
        )
    }

    /// A rewritten stream, always in pgconverge's dialect.
    fn rewrite_sql(&self) -> String {
        format!(
            "{} FROM STDIN (FORMAT csv, HEADER true, NULL E'\\\\N'{})",
            self.copy_head,
            self.freeze()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode::ColumnStats;
    use crate::config::Layers;
    use crate::db::catalog::PgColumn;
    use crate::store::manifest::ColumnEntry;

    pub(crate) fn col(name: &str, ty: &str, not_null: bool) -> PgColumn {
        PgColumn {
            name: name.into(),
            type_sql: ty.into(),
            type_name: ty.into(),
            binary_type: ty.into(),
            category: 'S',
            element: None,
            element_oid: 0,
            enum_labels: vec![],
            not_null,
            has_default: false,
            generated: false,
            identity: String::new(),
        }
    }

    pub(crate) fn fact(name: &str, stats: ColumnStats) -> ColumnEntry {
        ColumnEntry {
            name: name.into(),
            data_type: "char".into(),
            column_type: "char(36)".into(),
            nullable: true,
            rule: "uuid36".into(),
            stats,
            non_uuid_samples: vec!["id=5".into()],
            null_samples: vec!["id=3".into()],
            empty_samples: vec![],
            domain: None,
            labels: vec![],
            geometry: None,
            srids: vec![],
            charset: None,
        }
    }

    pub(crate) fn input(name: &str, header: &[&str], facts: Vec<ColumnEntry>) -> TableInput {
        TableInput {
            spec: TableSpec {
                name: name.into(),
                files: vec![FileSpec {
                    file: format!("{name}.csv"),
                    bytes: Some(10),
                    sha256: None,
                    rows: Some(2),
                    longest: None,
                }],
                rows: Some(2),
                columns: facts,
                primary_key: vec![],
                auto_increment: None,
                filter: None,
                query: None,
            },
            header: header.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub(crate) fn catalog(tables: Vec<PgTable>) -> Catalog {
        Catalog {
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            foreign_keys: vec![],
            sequences: vec![],
        }
    }

    fn opts() -> Options {
        Options {
            schema: "public".into(),
            strict: false,
            rebuild_indexes: false,
            legacy: false,
            binary: false,
            allow_orphans: false,
            analyze: true,
            rehearse: false,
        }
    }

    fn plain() -> Mapping {
        Mapping::resolve("x", None, &Layers::default()).unwrap()
    }

    fn mapped(text: &str) -> Mapping {
        Mapping::resolve("x", Some(("m.toml", text.into())), &Layers::default()).unwrap()
    }

    fn texts(p: &Plan) -> Vec<String> {
        p.statements(&BTreeSet::new())
            .iter()
            .map(Statement::text)
            .collect()
    }

    #[test]
    fn binary_copy_only_when_every_column_has_an_exact_converter() {
        let table = |name: &str, ty: &str| PgTable {
            name: name.into(),
            columns: vec![col("id", "uuid", true), col("v", ty, false)],
            ..PgTable::default()
        };
        let cat = catalog(vec![table("a", "timestamptz"), table("b", "inet")]);
        let inputs = [
            input("a", &["id", "v"], vec![]),
            input("b", &["id", "v"], vec![]),
        ];
        let on = Options {
            binary: true,
            ..opts()
        };
        let p = build(&inputs, &cat, &plain(), &on, &[]);
        let copies = texts(&p);
        assert!(copies.contains(
            &r#"COPY "public"."a" ("id", "v") FROM STDIN (FORMAT binary, FREEZE true)  -- from a.csv"#
                .to_string()
        ));
        assert_eq!(
            p.tables[0].binary_types,
            Some(vec![BinType::Uuid, BinType::Timestamp])
        );
        assert_eq!(p.tables[1].binary_types, None);
        assert_eq!(
            p.tables[1].csv_reason.as_deref(),
            Some("column `v` is inet (no exact binary converter)")
        );
        // A table forced to CSV (after a value outside the converters' forms).
        let forced = p.statements(&BTreeSet::from(["a".to_string()]));
        assert!(forced.iter().any(|s| matches!(s, Statement::Copy(c) if c.table == "a" && c.feed == Feed::Csv && c.sql.contains("FORMAT csv"))));
        let off = build(&inputs, &cat, &plain(), &opts(), &[]);
        assert!(off.tables.iter().all(|t| t.binary_types.is_none()));
    }

    #[test]
    fn the_loaded_tables_are_analysed_last_before_commit_unless_turned_off() {
        let table = |name: &str| PgTable {
            name: name.into(),
            columns: vec![col("id", "int4", true)],
            ..PgTable::default()
        };
        let cat = catalog(vec![table("a"), table("Mixed")]);
        let inputs = [input("a", &["id"], vec![]), input("Mixed", &["id"], vec![])];
        let on = texts(&build(&inputs, &cat, &plain(), &opts(), &[]));
        let n = on.len();
        assert!(on[n - 3].starts_with("ANALYZE "), "{on:?}");
        assert!(on[n - 3].contains(r#""public"."Mixed""#), "{on:?}");
        assert!(on[n - 3].contains(r#""public"."a""#), "{on:?}");
        assert_eq!(on[n - 2], "SELECT txid_current(), pg_backend_pid()");
        assert_eq!(on[n - 1], "COMMIT");
        let off = Options {
            analyze: false,
            ..opts()
        };
        let off = texts(&build(&inputs, &cat, &plain(), &off, &[]));
        assert!(!off.iter().any(|s| s.starts_with("ANALYZE")), "{off:?}");
        // A rehearsal checks everything a COMMIT would, then rolls back.
        let rehearse = Options {
            rehearse: true,
            ..opts()
        };
        let r = texts(&build(&inputs, &cat, &plain(), &rehearse, &[]));
        assert_eq!(
            r.last().unwrap(),
            "ROLLBACK  -- a rehearsal: nothing is kept"
        );
        assert!(!r.iter().any(|s| s == "COMMIT" || s.starts_with("ANALYZE")));
        assert!(!r.iter().any(|s| s.contains("txid_current")));
    }

    #[test]
    fn the_dollar_quote_tag_never_occurs_in_the_body() {
        for (body, want) in [
            ("SELECT 1", "$pgc$SELECT 1$pgc$"),
            (r#"max("a$pgc$b")"#, r#"$pgc1$max("a$pgc$b")$pgc1$"#),
            ("$pgc$ $pgc1$", "$pgc2$$pgc$ $pgc1$$pgc2$"),
        ] {
            assert_eq!(dollar_quoted(body), want);
        }
    }

    #[test]
    fn sql_quotes_every_identifier_and_uses_the_null_marker() {
        let mut cat = catalog(vec![PgTable {
            name: "user".into(),
            columns: vec![col("id", "int4", true), col("nameID", "text", false)],
            secondary_indexes: vec![(
                "user_name".into(),
                r#"CREATE INDEX user_name ON public."user" USING btree ("nameID")"#.into(),
            )],
            ..PgTable::default()
        }]);
        cat.sequences.push(crate::db::catalog::SequenceUse {
            table: "user".into(),
            column: "id".into(),
            sequence: r#"public."user_id_seq""#.into(),
            owned: true,
        });
        let mut user = [input("user", &["id", "nameID"], vec![])];
        user[0].spec.auto_increment = Some(crate::store::manifest::AutoIncrement {
            column: "id".into(),
            next: 42,
        });
        let p = build(&user, &cat, &plain(), &opts(), &[]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let script = texts(&p);
        assert_eq!(script.first().unwrap(), "BEGIN");
        assert_eq!(script.last().unwrap(), "COMMIT");
        for want in [
            r#"COPY "public"."user" ("id", "nameID") FROM STDIN (FORMAT csv, HEADER true, NULL E'\\N', FREEZE true)  -- from user.csv"#,
            r#"TRUNCATE "public"."user" CASCADE"#,
        ] {
            assert!(script.contains(&want.to_string()), "{script:#?}");
        }
        let reset = &p.sequences[0].sql;
        for want in [
            r#"seq regclass := 'public."user_id_seq"'::regclass;"#,
            r#"m bigint := GREATEST((SELECT max("id")::bigint FROM "public"."user"), 41);"#,
            "EXECUTE format('ALTER SEQUENCE %s RESTART WITH %s', seq, m + s.seqincrement);",
        ] {
            assert!(reset.contains(want), "{reset}");
        }
        assert!(
            reset.starts_with("DO $pgc$") && reset.ends_with("$pgc$"),
            "{reset}"
        );
        let legacy = build(
            &user,
            &cat,
            &plain(),
            &Options {
                legacy: true,
                ..opts()
            },
            &[],
        );
        assert!(
            texts(&legacy)
                .iter()
                .any(|s| s.contains("(FORMAT csv, HEADER true, FREEZE true)"))
        );
        assert!(p.indexes.is_empty());
        let rebuilt = build(
            &user,
            &cat,
            &plain(),
            &Options {
                rebuild_indexes: true,
                ..opts()
            },
            &[],
        );
        let script = texts(&rebuilt).join(";\n");
        let drop = script.find(r#"DROP INDEX "public"."user_name""#).unwrap();
        let copy = script.find("COPY").unwrap();
        let create = script.find("CREATE INDEX user_name").unwrap();
        assert!(drop < copy && copy < create, "{script}");
    }

    #[test]
    fn refusals_before_any_write() {
        let mut gen_col = col("g", "int4", false);
        gen_col.generated = true;
        let cat = catalog(vec![PgTable {
            name: "t".into(),
            columns: vec![
                col("id", "uuid", true),
                col("owner", "uuid", false),
                gen_col,
                col("must", "text", true),
            ],
            ..PgTable::default()
        }]);
        let stats = ColumnStats {
            nulls_written: 2,
            empty_uuid_to_null: 1,
            non_uuid: 1,
            ..Default::default()
        };
        let p = build(
            &[input(
                "t",
                &["id", "owner", "g", "nope"],
                vec![fact("id", stats.clone()), fact("owner", stats)],
            )],
            &cat,
            &plain(),
            &opts(),
            &[],
        );
        let all = p.errors.join("\n");
        for want in [
            "column `nope` has no column",
            "column `g`: a generated column",
            "table `t`, column `id`: 2 NULLs in the export (1 were '' in char(36)) but the target column is NOT NULL; e.g. id=3",
            "column `owner`: 1 values are not UUIDs but the target column is uuid; e.g. id=5",
            "column `must`: NOT NULL without a default",
        ] {
            assert!(all.contains(want), "missing `{want}` in\n{all}");
        }
        assert!(!all.contains("column `owner`: 2 NULLs"), "{all}");
    }

    #[test]
    fn absent_tables_skip_warn_or_fail() {
        let cat = catalog(vec![]);
        let alk = Mapping::resolve("alkemio", None, &Layers::default()).unwrap();
        let p = build(
            &[
                input("challenge", &["id"], vec![]),
                input("space", &["id"], vec![]),
            ],
            &cat,
            &alk,
            &opts(),
            &[],
        );
        assert_eq!(p.skipped.len(), 2);
        assert_eq!(
            p.warnings.len(),
            1,
            "challenge is skipped quietly: {:?}",
            p.warnings
        );
        let strict = build(
            &[input("space", &["id"], vec![])],
            &cat,
            &alk,
            &Options {
                strict: true,
                ..opts()
            },
            &[],
        );
        assert_eq!(strict.errors.len(), 1);
        let cased = catalog(vec![PgTable {
            name: "Space".into(),
            ..PgTable::default()
        }]);
        let c = build(
            &[input("space", &["id"], vec![])],
            &cased,
            &alk,
            &opts(),
            &[],
        );
        assert!(
            c.warnings[0].contains("the target has `Space`"),
            "{:?}",
            c.warnings
        );
    }

    fn answer(dataset: &str, column: &str, kind: Result<Kind, String>) -> Answer {
        Answer {
            dataset: dataset.into(),
            column: column.into(),
            kind,
        }
    }

    #[test]
    fn renames_sets_and_targets_shape_the_copy() {
        let cat = catalog(vec![PgTable {
            name: "article".into(),
            columns: vec![
                col("id", "int4", true),
                col("content", "text", false),
                col("tenant_id", "int4", true),
                col("search", "text", true),
            ],
            ..PgTable::default()
        }]);
        let m = mapped(
            r#"
[tables.post]
target = "article"
columns = { body = "content" }
set = { tenant_id = "(SELECT 1)" }
"#,
        );
        let inputs = [input("post", &["id", "body", "search"], vec![])];
        let once = [answer("post", "tenant_id", Ok(Kind::Once))];
        let p = build(
            &inputs,
            &cat,
            &m,
            &Options {
                binary: true,
                ..opts()
            },
            &once,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let t = &p.tables[0];
        assert_eq!((t.dataset.as_str(), t.table.as_str()), ("post", "article"));
        assert_eq!(t.target_columns, ["id", "content", "search"]);
        assert_eq!(t.shape.constants, [0]);
        assert_eq!(
            p.constants[0].sql,
            "SELECT v, v::text FROM (SELECT CAST(((SELECT 1)) AS int4) AS v) AS x"
        );
        let script = texts(&p);
        assert!(script.contains(&r#"COPY "public"."article" ("id", "content", "search", "tenant_id") FROM STDIN (FORMAT binary, FREEZE true)  -- from post.csv"#.to_string()), "{script:#?}");
        assert!(
            p.mapping_steps
                .contains(&"rename: `post`.`body` -> `article`.`content`".to_string()),
            "{:?}",
            p.mapping_steps
        );
        // The constant is evaluated before the COPY that sends it.
        let eval = script
            .iter()
            .position(|s| s.starts_with("SELECT v, v::text"))
            .unwrap();
        let copy = script.iter().position(|s| s.starts_with("COPY")).unwrap();
        assert!(eval < copy);

        // Per row: through a staging table; the replaced column is seen as text.
        let m = mapped(
            r#"
[tables.post]
target = "article"
columns = { body = "content" }
set = { tenant_id = "(SELECT 1)", search = "upper(content || search)" }
"#,
        );
        let answers = [
            answer("post", "tenant_id", Ok(Kind::Once)),
            answer("post", "search", Ok(Kind::PerRow)),
        ];
        let p = build(&inputs, &cat, &m, &opts(), &answers);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let script = texts(&p).join(";\n");
        for want in [
            r#"CREATE TEMP TABLE "pgconverge_stage_0" ON COMMIT DROP AS SELECT "id", "content", NULL::text AS "search" FROM "public"."article" WITH NO DATA"#,
            r#"COPY "pgconverge_stage_0" ("id", "content", "search") FROM STDIN"#,
            r#"INSERT INTO "public"."article" ("id", "content", "search", "tenant_id") SELECT "id", "content", CAST((upper(content || search)) AS text), CAST(((SELECT 1)) AS int4) FROM "pgconverge_stage_0""#,
            r#"DROP TABLE "pgconverge_stage_0""#,
        ] {
            assert!(script.contains(want), "missing {want} in\n{script}");
        }
        assert!(p.constants.is_empty());
    }

    #[test]
    fn mapping_mistakes_on_the_target_side_are_refused() {
        let cat = catalog(vec![PgTable {
            name: "person".into(),
            columns: vec![col("id", "int4", true), col("name", "text", false)],
            ..PgTable::default()
        }]);
        let m = mapped(
            r#"
[tables.users]
target = "person"
columns = { full = "fullname" }
set = { nope = "1", name = "bad(" }
[tables.teachers]
[tables.ghost]
target = "nowhere"
"#,
        );
        let inputs = [
            input("users", &["id", "full"], vec![]),
            input("teachers", &["id", "name"], vec![]),
            input("ghost", &["id"], vec![]),
        ];
        let answers = [answer(
            "users",
            "name",
            Err("syntax error at end of input".into()),
        )];
        // `teachers` has no target of its own name: it is skipped with a warning.
        let p = build(&inputs, &cat, &m, &opts(), &answers);
        let all = p.errors.join("\n");
        for want in [
            "[tables.users]: columns renames `full` to `fullname`, but table `person` of the target has no column `fullname`",
            "[tables.users]: set names `nope`, but table `person` of the target has no column `nope`",
            "[tables.users]: set `name` = bad(: PostgreSQL rejects it: syntax error at end of input",
            "[tables.ghost]: target = `nowhere`, but schema `public` of the target has no such table",
        ] {
            assert!(all.contains(want), "missing `{want}` in\n{all}");
        }
        // Two datasets into one table must both say so.
        let cat2 = catalog(vec![PgTable {
            name: "person".into(),
            columns: vec![col("id", "int4", true)],
            ..PgTable::default()
        }]);
        let m = mapped("[tables.teachers]\ntarget = \"person\"\n");
        let p = build(
            &[
                input("person", &["id"], vec![]),
                input("teachers", &["id"], vec![]),
            ],
            &cat2,
            &m,
            &opts(),
            &[],
        );
        assert!(
            p.errors.join("\n").contains("datasets `person`, `teachers` all load into table `person`; each must say `target = \"person\"` in its [tables.X] section (missing for `person`)"),
            "{:?}",
            p.errors
        );
        let m = mapped(
            "[tables.teachers]\ntarget = \"person\"\n[tables.person]\ntarget = \"person\"\n",
        );
        let p = build(
            &[
                input("person", &["id"], vec![]),
                input("teachers", &["id"], vec![]),
            ],
            &cat2,
            &m,
            &opts(),
            &[],
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.targets, ["person"]);
        let script = texts(&p);
        assert_eq!(
            script.iter().filter(|s| s.starts_with("TRUNCATE")).count(),
            1
        );
        assert_eq!(script.iter().filter(|s| s.starts_with("COPY")).count(), 2);
    }

    #[test]
    fn fired_tables_hooks_and_the_count_after_them() {
        let cat = catalog(vec![PgTable {
            name: "film".into(),
            columns: vec![col("id", "int4", true)],
            ..PgTable::default()
        }]);
        let m = mapped(
            r#"
[import]
before = ["INSERT INTO tenant VALUES (1) ON CONFLICT DO NOTHING"]
after = ["REFRESH MATERIALIZED VIEW stats"]
[tables.film]
triggers = "fire"
"#,
        );
        let p = build(&[input("film", &["id"], vec![])], &cat, &m, &opts(), &[]);
        let script = texts(&p);
        let at = |s: &str| {
            script
                .iter()
                .position(|x| x.starts_with(s))
                .unwrap_or(usize::MAX)
        };
        assert!(at("TRUNCATE") < at("INSERT INTO tenant"));
        assert!(at("INSERT INTO tenant") < at("COPY"));
        assert!(at("COPY") < at("REFRESH"));
        assert!(at("REFRESH") < at("SELECT count(*)"));
        let origin: Vec<usize> = script
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_str() == ORIGIN)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            origin.len(),
            3,
            "before hooks, the fired COPY, after hooks: {script:#?}"
        );
        assert_eq!(script[at("COPY") - 1], ORIGIN);
        assert_eq!(script[at("COPY") + 1], REPLICA);
        assert!(p.count_after);
        assert!(
            p.mapping_steps
                .iter()
                .any(|s| s.starts_with("triggers: `film`"))
        );
    }
}
