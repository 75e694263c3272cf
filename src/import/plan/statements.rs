//! PURE: the plan spelled out as SQL, in the order it runs: BEGIN, the session settings,
//! TRUNCATE, the hooks, each table's index drops, its datasets' COPYs (or staging and
//! INSERT) and its index builds, the sequence resets, the checks, COMMIT. One list that `--dry-run` prints, the journal records and the
//! executor runs; nothing here decides what is loaded (that is `build`'s).

use std::collections::BTreeSet;

use crate::codec::adapt::Adapt;
use crate::codec::csv::NullStyle;
use crate::codec::pgbinary::BinType;
use crate::db::sql::pg::{ident, qualified};

use super::rowsearch::RowSearch;
use super::{
    Constant, IndexStep, OrphanCheck, Plan, REPLICATION_ROLE_HINT, Shape, TableLoad, shorten,
};

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
    /// The file's records, as the manifest counts them.
    pub rows: Option<u64>,
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

/// A delta's upsert that may clash with the target's other unique (or exclusion)
/// constraints half-way: rows are upserted one after another, so two rows that swap a
/// unique value collide although the result holds it once. The upsert runs under a
/// savepoint; on such a clash it is rolled back to it, the target's rows of the staged
/// keys are set aside and deleted (`before`, under `session_replication_role = replica`,
/// so nothing cascades), the upsert runs again (every row now an insert), and the
/// columns the delta does not write are put back from the rows set aside (`after`).
#[derive(Debug, Clone, PartialEq)]
pub struct Clash {
    pub before: Vec<String>,
    pub after: Vec<String>,
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
    /// A delta's statement whose rows are counted: a DELETE by key or of a table copied
    /// whole (the keys a delta lists may hold rows the target never had), or one of the
    /// source's foreign-key actions on the rows only the target held.
    Counted {
        table: String,
        sql: String,
        context: String,
        touch: Touch,
    },
    /// A step of a table's index rebuild: a drop right before its first COPY, or a
    /// build right after its last one (timed as the table's index time).
    Index(IndexStep),
    /// Move a staged dataset into its target, computing the `set` columns per row.
    Insert {
        dataset: String,
        table: String,
        sql: String,
        expected_rows: Option<u64>,
        /// Its keys are recorded in `pgconverge.key_map` (other datasets follow it).
        keyed: bool,
        /// A delta's upsert into a table with other unique constraints: what to do when
        /// they clash half-way (two rows swapping a unique value).
        clash: Option<Clash>,
        /// How to find the row when a row's value fails it (`import::culprit`).
        search: Option<RowSearch>,
    },
    /// Read what a block of counted statements counted: rows of (table, touch, n), each
    /// touch a [`Touch::name`].
    Tally {
        sql: String,
        context: String,
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
    /// Take the transaction's id and backend pid, right after BEGIN, and read the
    /// session settings the load relies on (`import::guard`): the id tells a hook that
    /// ended the transaction, and lets the import ask the server what became of it if
    /// the connection is lost during COMMIT.
    RecordXid,
    /// After a hook: is the session still in the import's transaction? Then its
    /// settings are set again, with `session_replication_role` as the hooks run (`role`).
    CheckTransaction {
        hook: String,
        role: &'static str,
    },
    /// List every row that breaks a constraint (`collisions`): the diagnosis's last
    /// step, with each dataset's source key names.
    Collisions {
        rules: Vec<super::collisions::Rule>,
        /// Constraints the listing cannot ask, named in its report.
        unchecked: Vec<String>,
        keys: std::collections::BTreeMap<String, Vec<String>>,
    },
    Commit,
    /// The end of a rehearsal (`--rehearse`): everything ran, nothing is kept.
    Rollback,
}

/// What a counted statement of a delta did to its table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Touch {
    /// Deleted by the delta's keys, or emptied for a whole copy.
    Deleted,
    /// Deleted by the source's ON DELETE / ON UPDATE CASCADE.
    Cascaded,
    /// Their reference cleared by the source's SET NULL.
    Cleared,
}

impl Touch {
    /// Its name in SQL (a block's tally) and in words.
    pub fn name(self) -> &'static str {
        match self {
            Touch::Deleted => "deleted",
            Touch::Cascaded => "cascaded",
            Touch::Cleared => "cleared",
        }
    }

    pub fn from_name(name: &str) -> Option<Touch> {
        [Touch::Deleted, Touch::Cascaded, Touch::Cleared]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

impl Statement {
    /// The statement as printed by `--dry-run`: each part, with what it is for after
    /// `  -- `, parts joined by `;` and a line break.
    pub fn text(&self) -> String {
        self.parts()
            .into_iter()
            .map(|(sql, comment)| match comment {
                Some(c) => format!("{sql}  -- {c}"),
                None => sql,
            })
            .collect::<Vec<_>>()
            .join(";\n")
    }

    /// The statement as the journal and `--dry-run` write it: each part ended by its
    /// `;`, what it is for in a comment after it.
    pub fn terminated(&self) -> String {
        self.parts()
            .into_iter()
            .map(|(sql, comment)| crate::db::sql::pg::terminated(&sql, comment.as_deref()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The statement's SQL, as parts (one but for the collision queries), each with what
    /// it is for: what the journal writes, each part ended by its `;`.
    pub fn parts(&self) -> Vec<(String, Option<String>)> {
        let one = |sql: String, comment: Option<String>| vec![(sql, comment)];
        match self {
            Statement::Begin => one("BEGIN".into(), None),
            Statement::Sql { sql, .. }
            | Statement::Counted { sql, .. }
            | Statement::Tally { sql, .. } => one(sql.clone(), None),
            Statement::Evaluate { constant, .. } => one(
                constant.sql.clone(),
                Some(format!("set {}.{} once", constant.table, constant.column)),
            ),
            Statement::Copy(c) => one(c.sql.clone(), Some(format!("from {}", c.file))),
            Statement::Index(step) => one(step.sql.clone(), None),
            Statement::Insert { sql, .. } => one(sql.clone(), None),
            Statement::CountRows { schema, tables } => tables
                .iter()
                .map(|t| {
                    (
                        format!("SELECT count(*) FROM {}", qualified(schema, t)),
                        Some(format!("rows of `{t}` after hooks and triggers")),
                    )
                })
                .collect(),
            Statement::CheckOrphans { check, .. } => one(check.count_sql(), None),
            Statement::RecordXid => one(
                RECORD_XID.into(),
                Some("the import's transaction, and its settings".into()),
            ),
            Statement::CheckTransaction { hook, .. } => one(
                STILL_OURS.into(),
                Some(format!(
                    "still the import's transaction after {hook}? (then its settings again)"
                )),
            ),
            Statement::Collisions { rules, .. } => rules
                .iter()
                .map(|r| {
                    (
                        r.sql.clone(),
                        Some(format!("who breaks {} of `{}`", r.label, r.table)),
                    )
                })
                .collect(),
            Statement::Commit => one("COMMIT".into(), None),
            Statement::Rollback => one(
                "ROLLBACK".into(),
                Some(
                    "nothing is kept (a rehearsal, or a listing of what breaks a constraint)"
                        .into(),
                ),
            ),
        }
    }

    pub(super) fn sql(sql: impl Into<String>, context: impl Into<String>) -> Statement {
        Statement::Sql {
            sql: sql.into(),
            context: context.into(),
            hint_if_denied: None,
        }
    }
}

/// Statements run before the COPYs, in the transaction, with what each is for.
const SESSION: [(&str, &str); 2] = [
    (
        "SET LOCAL session_replication_role = replica",
        "loading without triggers and foreign-key checks",
    ),
    // The export wrote MySQL TIMESTAMP values in UTC; timestamptz columns must read them so.
    ("SET LOCAL TimeZone = 'UTC'", "reading timestamps as UTC"),
];

pub(super) const ORIGIN: &str = "SET LOCAL session_replication_role = origin";

/// Takes the transaction's id (`txid_current()` is `pg_current_xact_id()` under its
/// pre-13 name) and the backend's pid.
pub const RECORD_XID: &str = "SELECT txid_current(), pg_backend_pid()";
/// The session's transaction id, if it has one (NULL outside a transaction).
pub const STILL_OURS: &str = "SELECT txid_current_if_assigned()";
pub(super) const REPLICA: &str = "SET LOCAL session_replication_role = replica";

impl Plan {
    /// The whole import, as executed. `as_csv` names datasets that must load as CSV even
    /// though they have binary converters (a value outside the converters' exact forms
    /// was found in an earlier attempt).
    pub fn statements(&self, as_csv: &BTreeSet<String>) -> Vec<Statement> {
        if let Some(delta) = &self.delta {
            return delta.statements(self, as_csv);
        }
        let mut out = self.opening();
        out.extend(self.key_map_setup());
        for (slot, c) in self.constants.iter().enumerate() {
            out.push(Statement::Evaluate {
                slot,
                constant: c.clone(),
            });
        }
        for (n, t) in self.tables.iter().enumerate() {
            // A table's indexes go right before its first dataset loads (the before
            // hooks saw them) and come back right after its last one.
            let first = n == 0 || self.tables[n - 1].table != t.table;
            let last = self
                .tables
                .get(n + 1)
                .is_none_or(|next| next.table != t.table);
            let choice = self.indexes.iter().find(|c| c.table == t.table);
            if first && let Some(c) = choice {
                out.extend(c.drops.iter().cloned().map(Statement::Index));
            }
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
                    keyed: self.key_maps.iter().any(|k| k.dataset == t.dataset),
                    clash: None,
                    search: t.row_search(&self.schema),
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
            if last && let Some(c) = choice {
                out.extend(c.builds.iter().cloned().map(Statement::Index));
            }
        }
        for seq in &self.sequences {
            out.push(Statement::sql(
                &seq.sql,
                format!("setting sequence {}", seq.sequence),
            ));
        }
        hooks(&mut out, "after", &self.after, false);
        self.end(&mut out);
        out
    }

    /// A full load's opening (the import's and its diagnosis'): BEGIN and the session
    /// settings, the TRUNCATE, the `before` hooks.
    pub(super) fn opening(&self) -> Vec<Statement> {
        let mut out = self.begin();
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
        hooks(&mut out, "before", &self.before, true);
        out
    }

    /// BEGIN and the session settings (a full import's and a delta's).
    pub(super) fn begin(&self) -> Vec<Statement> {
        let mut out = vec![Statement::Begin];
        for (i, (sql, context)) in SESSION.iter().enumerate() {
            out.push(Statement::Sql {
                sql: sql.to_string(),
                context: context.to_string(),
                hint_if_denied: (i == 0).then_some(REPLICATION_ROLE_HINT),
            });
        }
        // A value the target prints (a `set` evaluated once, sent as text on the CSV
        // path) must read back as itself, whatever the database's own settings.
        out.push(Statement::sql(
            crate::db::sql::pg::set_all(&crate::db::sql::pg::VALUE_FORMS, true),
            "printing values as they read back",
        ));
        // A role's or database's timeouts are for the application's queries: a COPY or an
        // index build may take minutes, and under `migrate` the transaction waits, idle,
        // for the next table's files (pg_restore clears them the same way). lock_timeout
        // stays: a lock held elsewhere is then named rather than waited for forever.
        out.push(Statement::sql(
            "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0"
                .to_string(),
            "clearing the role's statement and idle timeouts for the import's transaction",
        ));
        // Index builds sort in memory rather than on disk, with parallel workers.
        if let Some(kb) = self.build_memory_kb {
            out.push(Statement::sql(
                format!("SET LOCAL maintenance_work_mem = '{kb}kB'"),
                "sizing the memory of the index builds",
            ));
        }
        if let Some(sql) = crate::db::sql::pg::search_path(&self.schema) {
            out.push(Statement::sql(
                sql,
                "putting the target schema first (hooks and set expressions name its tables unqualified)",
            ));
        }
        // Before anything is written: the transaction's id, the settings as set above.
        out.push(Statement::RecordXid);
        out
    }

    /// After the last hook: the recount, the orphan checks, then ROLLBACK for a rehearsal,
    /// or ANALYZE, the chain's state and COMMIT (a full import's and a delta's).
    pub(super) fn end(&self, out: &mut Vec<Statement>) {
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
        for (what, sql) in &self.deferred_checks {
            out.push(Statement::sql(
                sql,
                format!("checking {what} (loaded as a replica, its recheck trigger never ran)"),
            ));
        }
        if self.rehearse {
            out.push(Statement::Rollback);
            return;
        }
        if self.analyze && !self.targets.is_empty() {
            out.push(Statement::sql(
                format!("ANALYZE {}", self.target_list()),
                "analysing the loaded tables",
            ));
        }
        for sql in &self.record_state {
            out.push(Statement::sql(
                sql,
                "recording where the target stands (pgconverge.state)",
            ));
        }
        out.push(Statement::Commit);
    }

    /// Every loaded target table, schema-qualified and quoted, comma-separated (what
    /// TRUNCATE and ANALYZE name).
    pub(super) fn target_list(&self) -> String {
        let list: Vec<String> = self
            .targets
            .iter()
            .map(|t| qualified(&self.schema, t))
            .collect();
        list.join(", ")
    }
}

/// The `[import]` hooks of one kind, with the target's triggers and checks on (they are
/// the application's own statements); `back` returns to loading without them.
pub(super) fn hooks(out: &mut Vec<Statement>, kind: &str, list: &[String], back: bool) {
    if list.is_empty() {
        return;
    }
    out.push(Statement::sql(
        ORIGIN,
        format!("running the {kind} hooks with triggers on"),
    ));
    for (i, sql) in list.iter().enumerate() {
        let hook = format!("[import] {kind} hook #{} ({})", i + 1, shorten(sql, 80));
        out.push(Statement::sql(sql, &hook));
        out.push(Statement::CheckTransaction {
            hook,
            role: "origin",
        });
    }
    if back {
        out.push(Statement::sql(
            REPLICA,
            format!("back to loading without triggers after the {kind} hooks"),
        ));
    }
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
                rows: file.rows,
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
    pub(super) fn set_copy_target(&mut self, into: &str, sent: &[String], extra: &[String]) {
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
