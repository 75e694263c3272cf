//! PURE: the import plan. Matches the export's tables and CSV header columns to the
//! target catalog by exact name, decides per table how rows travel (binary COPY where
//! every column has an exact converter, else CSV, and why), and spells out the import as
//! ONE list of [`Statement`]s. `--dry-run` prints that list, the journal records it as it
//! runs, and the executor runs it: what a dry run shows is what a real run does.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::codec::csv::NullStyle;
use crate::codec::pgbinary::BinType;
use crate::db::catalog::{Catalog, ForeignKey, PgTable};
use crate::db::sql::pg::{ident, literal, qualified};
use crate::import::checks;
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

/// A serial/identity sequence to set after the load.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceReset {
    pub column: String,
    pub sequence: String,
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
    pub expected_rows: Option<u64>,
    pub bytes: Option<u64>,
    /// The converter of each CSV column when the table loads as binary COPY.
    pub binary_types: Option<Vec<BinType>>,
    /// Why the table loads as CSV (`None` when binary).
    pub csv_reason: Option<String>,
    pub sequences: Vec<SequenceReset>,
    /// (DROP, CREATE) for each secondary index rebuilt around the load.
    pub indexes: Vec<(String, String)>,
    binary_sql: String,
    csv_sql: String,
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
    /// Each record converted to a binary tuple with these converters (`FORMAT binary`).
    Binary(Vec<BinType>),
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
            let (sql, feed) = match binary {
                Some(types) => (&t.binary_sql, Feed::Binary(types.clone())),
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
        for t in &self.tables {
            for seq in &t.sequences {
                out.push(Statement::sql(
                    &seq.sql,
                    format!("setting sequence {} of `{}`", seq.sequence, t.table),
                ));
            }
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
                    sequences: t.sequences.iter().map(|q| q.sequence.clone()).collect(),
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
        plan.tables.push(table_load(input, target, opts));
    }
    let imported: Vec<String> = plan.tables.iter().map(|t| t.table.clone()).collect();
    plan.cascade = checks::cascade_reach(&cat.foreign_keys, &opts.schema, &imported);
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
        match BinType::for_pg(&col.binary_type) {
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
    let sequences = target
        .sequences
        .iter()
        .map(|(column, sequence)| {
            let seq = format!("{}::regclass", literal(sequence));
            SequenceReset {
                column: column.clone(),
                sequence: sequence.clone(),
                sql: format!(
                    "SELECT setval({seq}, COALESCE(max({c})::bigint, \
                     (SELECT seqstart FROM pg_sequence WHERE seqrelid = {seq})), \
                     max({c}) IS NOT NULL) FROM {t}",
                    c = ident(column),
                    t = qualified(&opts.schema, table),
                ),
            }
        })
        .collect();
    TableLoad {
        table: table.clone(),
        files: input.spec.files.clone(),
        columns: input.header.clone(),
        key: input
            .spec
            .primary_key
            .iter()
            .filter_map(|k| input.header.iter().position(|h| h == k))
            .collect(),
        expected_rows: input.spec.rows,
        bytes: input.spec.files.iter().map(|f| f.bytes).sum(),
        binary_types,
        csv_reason,
        sequences,
        indexes,
        binary_sql,
        csv_sql,
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
            },
            header: header.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub(crate) fn catalog(tables: Vec<PgTable>) -> Catalog {
        Catalog {
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            foreign_keys: vec![],
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
        let cat = catalog(vec![table("a", "timestamptz"), table("b", "numeric")]);
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
            Some("column `v` is numeric (no exact binary converter)")
        );
        // A table forced to CSV (after a value outside the converters' forms).
        let forced = p.statements(&BTreeSet::from(["a".to_string()]));
        assert!(forced.iter().any(|s| matches!(s, Statement::Copy(c) if c.table == "a" && c.feed == Feed::Csv && c.sql.contains("FORMAT csv"))));
        let off = build(&inputs, &cat, &plain(), &opts());
        assert!(off.tables.iter().all(|t| t.binary_types.is_none()));
    }

    #[test]
    fn sql_quotes_every_identifier_and_uses_the_null_marker() {
        let cat = catalog(vec![PgTable {
            name: "user".into(),
            columns: vec![col("id", "int4", true), col("nameID", "text", false)],
            sequences: vec![("id".into(), "public.user_id_seq".into())],
            secondary_indexes: vec![(
                "user_name".into(),
                r#"CREATE INDEX user_name ON public."user" USING btree ("nameID")"#.into(),
            )],
            ..PgTable::default()
        }]);
        let user = [input("user", &["id", "nameID"], vec![])];
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
        assert!(
            p.tables[0].sequences[0]
                .sql
                .starts_with("SELECT setval('public.user_id_seq'::regclass")
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
