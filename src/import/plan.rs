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
use crate::import::{adapt, checks};
use crate::mapping::Profile;
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
}

/// A sequence set after the load: past the greatest value of every column that takes
/// values from it (in any table), and past the source's AUTO_INCREMENT - 1, so ids the
/// source never handed out or deleted are not issued again.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceReset {
    pub sequence: String,
    /// (table, column) of every column whose default or identity uses it.
    pub columns: Vec<(String, String)>,
    /// The source's next AUTO_INCREMENT value, when one of those columns had one.
    pub auto_increment: Option<u64>,
    pub sql: String,
}

/// Loading one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLoad {
    pub table: String,
    /// Loaded in this order with one COPY each (several for a split table).
    pub files: Vec<FileSpec>,
    pub columns: Vec<String>,
    /// Positions of the export's primary key among `columns`.
    pub key: Vec<usize>,
    /// The target's partitions (`name FOR VALUES ...`) when it is partitioned.
    pub partitions: Vec<String>,
    pub expected_rows: Option<u64>,
    pub bytes: Option<u64>,
    /// The converter of each CSV column when the table loads as binary COPY.
    pub binary_types: Option<Vec<BinType>>,
    /// Why the table loads as CSV (`None` when binary).
    pub csv_reason: Option<String>,
    /// The adaptation of each CSV column (all `None` when no value needs one).
    pub adapts: Vec<Adapt>,
    /// The columns that adapt, with how many values change (for the plan and journal).
    pub adaptations: Vec<(String, Adapt, u64)>,
    /// (DROP, CREATE) for each secondary index rebuilt around the load.
    pub indexes: Vec<(String, String)>,
    binary_sql: String,
    csv_sql: String,
    /// The CSV COPY of a rewritten stream (always in pgconverge's dialect).
    rewrite_sql: String,
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
    pub tables: Vec<TableLoad>,
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
    /// Each record re-encoded as CSV after these adaptations (`FORMAT csv`).
    Rewrite(Vec<Adapt>),
    /// Each record adapted, then converted to a binary tuple (`FORMAT binary`).
    Binary(Vec<BinType>, Vec<Adapt>),
}

/// One COPY of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub table: String,
    pub file: String,
    /// What the manifest says of the file: the feeder hashes the bytes it sends and
    /// refuses a file that changed after the pre-pass, and bounds a record's length.
    pub sha256: Option<String>,
    pub longest: Option<u64>,
    pub sql: String,
    pub feed: Feed,
    /// The last file of its table: the table's rows are then checked and reported.
    pub last: bool,
    /// Rows the whole table must have received (the manifest's count).
    pub expected_rows: Option<u64>,
    /// The CSV header's columns, and the positions of the primary key among them: an
    /// error names a row by its key, a value by its column.
    pub columns: Vec<String>,
    pub key: Vec<usize>,
    /// A partitioned target's partitions, to name when a row fits none.
    pub partitions: Vec<String>,
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
    Copy(Copy),
    /// Count a foreign key's orphan rows; any refuses the COMMIT unless `allow`.
    CheckOrphans {
        check: OrphanCheck,
        allow: bool,
    },
    /// Record the transaction's id and backend pid: if the connection is lost during
    /// COMMIT, they let the import ask the server what became of it.
    RecordXid,
    Commit,
}

impl Statement {
    /// The statement as printed by `--dry-run` and written to the journal.
    pub fn text(&self) -> String {
        match self {
            Statement::Begin => "BEGIN".into(),
            Statement::Sql { sql, .. } => sql.clone(),
            Statement::Copy(c) => format!("{}  -- from {}", c.sql, c.file),
            Statement::CheckOrphans { check, .. } => check.fk.orphan_count_sql(),
            Statement::RecordXid => "SELECT txid_current(), pg_backend_pid()".into(),
            Statement::Commit => "COMMIT".into(),
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

impl Plan {
    /// The whole import, as executed. `as_csv` names tables that must load as CSV even
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
        if !self.tables.is_empty() {
            let list: Vec<String> = self
                .tables
                .iter()
                .map(|t| qualified(&self.schema, &t.table))
                .collect();
            out.push(Statement::sql(
                format!("TRUNCATE {} CASCADE", list.join(", ")),
                "truncating the imported tables",
            ));
        }
        for t in &self.tables {
            for (drop, _) in &t.indexes {
                out.push(Statement::sql(
                    drop,
                    format!("dropping an index of `{}` for the rebuild", t.table),
                ));
            }
        }
        for t in &self.tables {
            let binary = t
                .binary_types
                .as_ref()
                .filter(|_| !as_csv.contains(&t.table));
            let adapted = t.adapts.iter().any(|a| *a != Adapt::None);
            let (sql, feed) = match binary {
                Some(types) => (&t.binary_sql, Feed::Binary(types.clone(), t.adapts.clone())),
                None if adapted => (&t.rewrite_sql, Feed::Rewrite(t.adapts.clone())),
                None => (&t.csv_sql, Feed::Csv),
            };
            for (i, file) in t.files.iter().enumerate() {
                out.push(Statement::Copy(Copy {
                    table: t.table.clone(),
                    file: file.file.clone(),
                    sha256: file.sha256.clone(),
                    longest: file.longest,
                    sql: sql.clone(),
                    feed: feed.clone(),
                    last: i + 1 == t.files.len(),
                    expected_rows: t.expected_rows,
                    columns: t.columns.clone(),
                    key: t.key.clone(),
                    partitions: t.partitions.clone(),
                }));
            }
        }
        for t in &self.tables {
            for (_, create) in &t.indexes {
                out.push(Statement::sql(
                    create,
                    format!("rebuilding an index of `{}`", t.table),
                ));
            }
        }
        for seq in &self.sequences {
            out.push(Statement::sql(
                &seq.sql,
                format!("setting sequence {}", seq.sequence),
            ));
        }
        for check in &self.orphan_checks {
            out.push(Statement::CheckOrphans {
                check: check.clone(),
                allow: self.allow_orphans,
            });
        }
        out.push(Statement::RecordXid);
        out.push(Statement::Commit);
        out
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
                    table: t.table.clone(),
                    rows: t.expected_rows,
                    bytes: t.bytes,
                    files: t.files.iter().map(|f| f.file.clone()).collect(),
                    columns: t.columns.clone(),
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
                })
                .collect(),
            skipped: self.skipped.clone(),
            cascade: self
                .cascade
                .iter()
                .map(|(s, t)| format!("{s}.{t}"))
                .collect(),
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

/// The plan as `--dry-run --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub target_database: String,
    pub schema: String,
    pub tables: Vec<TableReport>,
    pub skipped: Vec<Skipped>,
    pub cascade: Vec<String>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub sql: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub files: Vec<String>,
    pub columns: Vec<String>,
    pub copy_format: &'static str,
    pub csv_reason: Option<String>,
    pub sequences: Vec<String>,
}

/// Build the plan. `inputs` in manifest order.
pub fn build(inputs: &[TableInput], cat: &Catalog, profile: &Profile, opts: &Options) -> Plan {
    let mut plan = Plan {
        schema: opts.schema.clone(),
        tables: Vec::new(),
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
    };
    for input in inputs {
        let name = &input.spec.name;
        let Some(target) = cat.tables.get(name) else {
            // Names are matched exactly; say so when only the case differs.
            let near = cat
                .tables
                .keys()
                .find(|t| t.eq_ignore_ascii_case(name))
                .map(|t| format!(" (the target has `{t}`: names are case-sensitive)"))
                .unwrap_or_default();
            if profile.skip_if_absent.contains(name) {
                plan.skipped.push(Skipped {
                    table: name.clone(),
                    reason: format!("absent in the target (profile `{}` skips it)", profile.name),
                });
            } else if opts.strict {
                plan.errors.push(format!(
                    "table `{name}` of the export does not exist in schema `{}` of the target{near} (--strict)",
                    opts.schema
                ));
            } else {
                plan.warnings.push(format!(
                    "table `{name}` does not exist in schema `{}` of the target{near}: skipped",
                    opts.schema
                ));
                plan.skipped.push(Skipped {
                    table: name.clone(),
                    reason: "absent in the target".into(),
                });
            }
            continue;
        };
        checks::columns(&input.spec, &input.header, target, &mut plan.errors);
        let mut load = table_load(input, target, opts);
        for (i, name) in input.header.iter().enumerate() {
            let src = input.spec.columns.iter().find(|c| &c.name == name);
            let dst = target.columns.iter().find(|c| &c.name == name);
            if let (Some(src), Some(dst)) = (src, dst) {
                let d = adapt::decide(name_of(input), src, dst);
                plan.errors.extend(d.refusals);
                plan.warnings.extend(d.warnings);
                if d.adapt != Adapt::None {
                    load.adapts[i] = d.adapt;
                    load.adaptations.push((name.clone(), d.adapt, d.changed));
                }
            }
        }
        plan.tables.push(load);
    }
    let imported: Vec<String> = plan.tables.iter().map(|t| t.table.clone()).collect();
    plan.cascade = checks::cascade_reach(&cat.foreign_keys, &opts.schema, &imported);
    plan.sequences = sequence_resets(cat, &opts.schema, &imported, inputs);
    plan.orphan_checks = cat
        .foreign_keys
        .iter()
        .filter(|fk| fk.touches(&opts.schema, &imported))
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

fn name_of(input: &TableInput) -> &str {
    &input.spec.name
}

/// ONE setval per sequence that a column of an imported table uses: the greatest of
/// every column (any table of the schema) that takes values from it and of the
/// source's AUTO_INCREMENT - 1; back to its start when all are empty.
fn sequence_resets(
    cat: &Catalog,
    schema: &str,
    imported: &[String],
    inputs: &[TableInput],
) -> Vec<SequenceReset> {
    let mut by_sequence: BTreeMap<&str, Vec<&crate::db::catalog::SequenceUse>> = BTreeMap::new();
    for u in &cat.sequences {
        by_sequence.entry(&u.sequence).or_default().push(u);
    }
    by_sequence
        .into_iter()
        .filter(|(_, uses)| uses.iter().any(|u| imported.contains(&u.table)))
        .map(|(sequence, uses)| {
            let auto_increment = uses
                .iter()
                .filter_map(|u| {
                    inputs
                        .iter()
                        .filter(|i| imported.contains(&i.spec.name) && i.spec.name == u.table)
                        .filter_map(|i| i.spec.auto_increment.as_ref())
                        .find(|a| a.column == u.column)
                        .map(|a| a.next)
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
            let sql = format!(
                "SELECT CASE WHEN x.m IS NULL OR x.m < s.seqmin \
                 THEN setval(s.seqrelid, s.seqstart, false) ELSE setval(s.seqrelid, x.m, true) END \
                 FROM pg_sequence s, (SELECT GREATEST({}) AS m) x WHERE s.seqrelid = {}::regclass",
                values.join(", "),
                literal(sequence)
            );
            SequenceReset {
                sequence: sequence.to_string(),
                columns: uses
                    .iter()
                    .map(|u| (u.table.clone(), u.column.clone()))
                    .collect(),
                auto_increment,
                sql,
            }
        })
        .collect()
}

/// The binary converter of every CSV column, or why the table loads as CSV.
fn binary_types(
    input: &TableInput,
    target: &PgTable,
    opts: &Options,
) -> (Option<Vec<BinType>>, Option<String>) {
    if !opts.binary {
        return (None, Some("--copy-format csv".into()));
    }
    let mut types = Vec::with_capacity(input.header.len());
    for name in &input.header {
        let Some(col) = target.columns.iter().find(|c| &c.name == name) else {
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

fn table_load(input: &TableInput, target: &PgTable, opts: &Options) -> TableLoad {
    let table = &input.spec.name;
    let cols: Vec<String> = input.header.iter().map(|c| ident(c)).collect();
    let null = if opts.legacy { "" } else { ", NULL E'\\\\N'" };
    // The table is truncated in this transaction, so its rows may be written frozen:
    // a little faster, and no anti-wraparound vacuum has to visit them later.
    let freeze = if target.partitioned {
        ""
    } else {
        ", FREEZE true"
    };
    let into = format!(
        "COPY {} ({})",
        qualified(&opts.schema, table),
        cols.join(", ")
    );
    let csv_sql = format!("{into} FROM STDIN (FORMAT csv, HEADER true{null}{freeze})");
    let rewrite_sql = format!("{into} FROM STDIN (FORMAT csv, HEADER true, NULL E'\\\\N'{freeze})");
    let binary_sql = format!("{into} FROM STDIN (FORMAT binary{freeze})");
    let (binary_types, csv_reason) = binary_types(input, target, opts);
    let indexes = if opts.rebuild_indexes {
        target
            .secondary_indexes
            .iter()
            .map(|(name, def)| {
                (
                    format!("DROP INDEX {}", qualified(&opts.schema, name)),
                    def.clone(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    TableLoad {
        table: table.clone(),
        files: input.spec.files.clone(),
        columns: input.header.clone(),
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
        indexes,
        binary_sql,
        csv_sql,
        rewrite_sql,
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
        }
    }

    fn plain() -> Profile {
        Profile::resolve("x", &Layers::default())
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
        let p = build(&inputs, &cat, &plain(), &on);
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
        let off = build(&inputs, &cat, &plain(), &opts());
        assert!(off.tables.iter().all(|t| t.binary_types.is_none()));
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
        });
        let mut user = [input("user", &["id", "nameID"], vec![])];
        user[0].spec.auto_increment = Some(crate::store::manifest::AutoIncrement {
            column: "id".into(),
            next: 42,
        });
        let p = build(&user, &cat, &plain(), &opts());
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
        assert_eq!(
            p.sequences[0].sql,
            r#"SELECT CASE WHEN x.m IS NULL OR x.m < s.seqmin THEN setval(s.seqrelid, s.seqstart, false) ELSE setval(s.seqrelid, x.m, true) END FROM pg_sequence s, (SELECT GREATEST((SELECT max("id")::bigint FROM "public"."user"), 41) AS m) x WHERE s.seqrelid = 'public."user_id_seq"'::regclass"#
        );
        let legacy = build(
            &user,
            &cat,
            &plain(),
            &Options {
                legacy: true,
                ..opts()
            },
        );
        assert!(
            texts(&legacy)
                .iter()
                .any(|s| s.contains("(FORMAT csv, HEADER true, FREEZE true)"))
        );
        assert!(p.tables[0].indexes.is_empty());
        let rebuilt = build(
            &user,
            &cat,
            &plain(),
            &Options {
                rebuild_indexes: true,
                ..opts()
            },
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
        let alk = Profile::resolve("alkemio", &Layers::default());
        let p = build(
            &[
                input("challenge", &["id"], vec![]),
                input("space", &["id"], vec![]),
            ],
            &cat,
            &alk,
            &opts(),
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
        );
        assert_eq!(strict.errors.len(), 1);
        let cased = catalog(vec![PgTable {
            name: "Space".into(),
            ..PgTable::default()
        }]);
        let c = build(&[input("space", &["id"], vec![])], &cased, &alk, &opts());
        assert!(
            c.warnings[0].contains("the target has `Space`"),
            "{:?}",
            c.warnings
        );
    }
}
