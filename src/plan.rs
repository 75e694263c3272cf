//! PURE: the import plan. Matches the export's tables and CSV header columns to the
//! target catalog by exact name, checks the manifest's per-column facts against the
//! target before anything is written, works out what `TRUNCATE ... CASCADE` would reach
//! beyond the import, and spells out every SQL statement the import will run, so that
//! `--dry-run` prints exactly what a real run executes.

use std::collections::{BTreeMap, BTreeSet};

use crate::encode::pgbinary::BinType;
use crate::manifest::{ColumnEntry, TableSpec};
use crate::postgres::{Catalog, ForeignKey, PgTable, qualified, quote_ident, quote_literal};
use crate::profile::Profile;

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
pub struct Step {
    pub table: String,
    /// Loaded in this order with one COPY each (several for a split table).
    pub files: Vec<String>,
    pub columns: Vec<String>,
    pub expected_rows: Option<u64>,
    pub bytes: Option<u64>,
    /// The COPY a run starts with: binary when `binary_types` is set, else `csv_copy_sql`.
    pub copy_sql: String,
    /// The CSV COPY of DESIGN.md, also the fallback when a value is outside the binary
    /// converters' exact forms.
    pub csv_copy_sql: String,
    /// The converter of each CSV column, when the table loads as binary COPY.
    pub binary_types: Option<Vec<BinType>>,
    /// Why the table loads as CSV (`None` when binary).
    pub csv_reason: Option<String>,
    pub sequences: Vec<SequenceReset>,
    /// (DROP, CREATE) for each secondary index rebuilt around the load.
    pub indexes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub schema: String,
    pub steps: Vec<Step>,
    /// (table, reason) for tables of the export not loaded.
    pub skipped: Vec<(String, String)>,
    pub warnings: Vec<String>,
    /// Reasons to refuse before any write.
    pub errors: Vec<String>,
    /// `schema.table` of tables outside the import that TRUNCATE ... CASCADE reaches.
    pub cascade: Vec<(String, String)>,
    /// Binary COPY was allowed (`--copy-format auto`).
    pub binary: bool,
}

/// Statements run before the COPYs, in the transaction.
pub const SESSION_SQL: [&str; 3] = [
    "SET LOCAL session_replication_role = replica",
    // The export wrote MySQL TIMESTAMP values in UTC; timestamptz columns must read them so.
    "SET LOCAL TimeZone = 'UTC'",
    // Index rebuilds (--rebuild-indexes) sort in memory rather than on disk.
    "SET LOCAL maintenance_work_mem = '256MB'",
];

impl Plan {
    pub fn truncate_sql(&self) -> Option<String> {
        if self.steps.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .steps
            .iter()
            .map(|s| qualified(&self.schema, &s.table))
            .collect();
        Some(format!("TRUNCATE {} CASCADE", list.join(", ")))
    }

    /// The whole script, as executed (COPY data comes from the files).
    pub fn script(&self) -> Vec<String> {
        let mut out = vec!["BEGIN".to_string()];
        out.extend(SESSION_SQL.iter().map(|s| s.to_string()));
        if let Some(t) = self.truncate_sql() {
            out.push(t);
        }
        for s in &self.steps {
            out.extend(s.indexes.iter().map(|(drop, _)| drop.clone()));
        }
        for s in &self.steps {
            for f in &s.files {
                out.push(format!("{}  -- from {f}", s.copy_sql));
            }
        }
        for s in &self.steps {
            out.extend(s.indexes.iter().map(|(_, create)| create.clone()));
        }
        for s in &self.steps {
            out.extend(s.sequences.iter().map(|q| q.sql.clone()));
        }
        out.push("COMMIT".into());
        out
    }
}

/// Build the plan. `inputs` in manifest order.
pub fn build(inputs: &[TableInput], cat: &Catalog, profile: &Profile, opts: &Options) -> Plan {
    let mut plan = Plan {
        schema: opts.schema.clone(),
        binary: opts.binary,
        ..Plan::default()
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
                plan.skipped.push((
                    name.clone(),
                    format!("absent in the target (profile `{}` skips it)", profile.name),
                ));
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
                plan.skipped
                    .push((name.clone(), "absent in the target".into()));
            }
            continue;
        };
        check_columns(input, target, &mut plan.errors);
        plan.steps.push(step(input, target, opts));
    }
    let imported: Vec<String> = plan.steps.iter().map(|s| s.table.clone()).collect();
    plan.cascade = cascade_reach(&cat.foreign_keys, &opts.schema, &imported);
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

fn step(input: &TableInput, target: &PgTable, opts: &Options) -> Step {
    let table = &input.spec.name;
    let cols: Vec<String> = input.header.iter().map(|c| quote_ident(c)).collect();
    let null = if opts.legacy { "" } else { ", NULL E'\\\\N'" };
    // The table is truncated in this transaction, so its rows may be written frozen:
    // a little faster, and no anti-wraparound vacuum has to visit them later.
    let freeze = if target.partitioned {
        ""
    } else {
        ", FREEZE true"
    };
    let csv_copy_sql = format!(
        "COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true{null}{freeze})",
        qualified(&opts.schema, table),
        cols.join(", ")
    );
    let (binary_types, csv_reason) = binary_types(input, target, opts);
    let copy_sql = match binary_types {
        Some(_) => format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary{freeze})",
            qualified(&opts.schema, table),
            cols.join(", ")
        ),
        None => csv_copy_sql.clone(),
    };
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
            let seq = format!("{}::regclass", quote_literal(sequence));
            SequenceReset {
                column: column.clone(),
                sequence: sequence.clone(),
                sql: format!(
                    "SELECT setval({seq}, COALESCE(max({c})::bigint, \
                     (SELECT seqstart FROM pg_sequence WHERE seqrelid = {seq})), \
                     max({c}) IS NOT NULL) FROM {t}",
                    c = quote_ident(column),
                    t = qualified(&opts.schema, table),
                ),
            }
        })
        .collect();
    Step {
        table: table.clone(),
        files: input.spec.files.iter().map(|f| f.file.clone()).collect(),
        columns: input.header.clone(),
        expected_rows: input.spec.rows,
        bytes: input.spec.files.iter().map(|f| f.bytes).sum(),
        copy_sql,
        csv_copy_sql,
        binary_types,
        csv_reason,
        sequences,
        indexes,
    }
}

/// Every CSV column must land in a writable target column, every NOT NULL target column
/// without a default must get values, and the manifest's facts must fit the target.
fn check_columns(input: &TableInput, target: &PgTable, errors: &mut Vec<String>) {
    let t = &input.spec.name;
    let facts: BTreeMap<&str, &ColumnEntry> = input
        .spec
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for h in &input.header {
        let Some(col) = target.columns.iter().find(|c| &c.name == h) else {
            errors.push(format!(
                "table `{t}`: the CSV column `{h}` has no column of that name in the target \
                 (names are case-sensitive; the target has: {})",
                target
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        if col.generated {
            errors.push(format!(
                "table `{t}`, column `{h}`: a generated column in the target, which COPY cannot fill"
            ));
        }
        let Some(f) = facts.get(h.as_str()) else {
            continue;
        };
        let s = &f.stats;
        if col.not_null && s.nulls_written > 0 {
            let mut why = Vec::new();
            if s.empty_uuid_to_null > 0 {
                why.push(format!("{} were '' in char(36)", s.empty_uuid_to_null));
            }
            if s.zero_date_to_null > 0 {
                why.push(format!("{} were zero dates", s.zero_date_to_null));
            }
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join(", "))
            };
            let samples = if f.null_samples.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", f.null_samples.join("; "))
            };
            errors.push(format!(
                "table `{t}`, column `{h}`: {} NULLs in the export{why} but the target column is NOT NULL{samples}",
                s.nulls_written
            ));
        }
        if col.type_name == "uuid" && s.non_uuid > 0 {
            errors.push(format!(
                "table `{t}`, column `{h}`: {} values are not UUIDs but the target column is uuid; e.g. {}",
                s.non_uuid,
                f.non_uuid_samples.join("; ")
            ));
        }
    }
    for col in &target.columns {
        let fillable = col.has_default || col.generated || !col.identity.is_empty();
        if col.not_null && !fillable && !input.header.contains(&col.name) {
            errors.push(format!(
                "table `{t}`, column `{}`: NOT NULL without a default in the target, and the export has no values for it",
                col.name
            ));
        }
    }
}

/// Tables outside `imported` (in any schema) that `TRUNCATE ... CASCADE` of the imported
/// tables would also empty: everything that references them, transitively.
pub fn cascade_reach(
    fks: &[ForeignKey],
    schema: &str,
    imported: &[String],
) -> Vec<(String, String)> {
    let mut reached: BTreeSet<(String, String)> = imported
        .iter()
        .map(|t| (schema.to_string(), t.clone()))
        .collect();
    loop {
        let mut grew = false;
        for fk in fks {
            let parent = (fk.parent_schema.clone(), fk.parent.clone());
            let child = (fk.child_schema.clone(), fk.child.clone());
            if reached.contains(&parent) && !reached.contains(&child) {
                reached.insert(child);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    reached
        .into_iter()
        .filter(|(s, t)| !(s == schema && imported.contains(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;
    use crate::encode::ColumnStats;
    use crate::postgres::PgColumn;

    fn col(name: &str, ty: &str, not_null: bool) -> PgColumn {
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

    fn fact(name: &str, stats: ColumnStats) -> ColumnEntry {
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

    fn input(name: &str, header: &[&str], facts: Vec<ColumnEntry>) -> TableInput {
        TableInput {
            spec: TableSpec {
                name: name.into(),
                files: vec![crate::manifest::FileSpec {
                    file: format!("{name}.csv"),
                    bytes: Some(10),
                    sha256: None,
                }],
                rows: Some(2),
                columns: facts,
                primary_key: vec![],
            },
            header: header.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn catalog(tables: Vec<PgTable>, fks: Vec<ForeignKey>) -> Catalog {
        Catalog {
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            foreign_keys: fks,
        }
    }

    fn opts() -> Options {
        Options {
            schema: "public".into(),
            strict: false,
            rebuild_indexes: false,
            legacy: false,
            binary: false,
        }
    }

    #[test]
    fn binary_copy_only_when_every_column_has_an_exact_converter() {
        let table = |name: &str, ty: &str| PgTable {
            name: name.into(),
            columns: vec![col("id", "uuid", true), col("v", ty, false)],
            ..PgTable::default()
        };
        let cat = catalog(
            vec![table("a", "timestamptz"), table("b", "numeric")],
            vec![],
        );
        let inputs = [
            input("a", &["id", "v"], vec![]),
            input("b", &["id", "v"], vec![]),
        ];
        let on = Options {
            binary: true,
            ..opts()
        };
        let p = build(
            &inputs,
            &cat,
            &Profile::resolve("x", &Layers::default()),
            &on,
        );
        assert_eq!(
            p.steps[0].copy_sql,
            r#"COPY "public"."a" ("id", "v") FROM STDIN (FORMAT binary, FREEZE true)"#
        );
        assert_eq!(
            p.steps[0].binary_types,
            Some(vec![BinType::Uuid, BinType::Timestamp])
        );
        assert!(p.steps[0].csv_copy_sql.contains("FORMAT csv"));
        assert_eq!(p.steps[1].copy_sql, p.steps[1].csv_copy_sql);
        assert_eq!(p.steps[1].binary_types, None);
        assert_eq!(
            p.steps[1].csv_reason.as_deref(),
            Some("column `v` is numeric (no exact binary converter)")
        );
        let off = build(
            &inputs,
            &cat,
            &Profile::resolve("x", &Layers::default()),
            &opts(),
        );
        assert!(off.steps.iter().all(|s| s.binary_types.is_none()));
    }

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            name: format!("{child}_{parent}_fk"),
            child_schema: "public".into(),
            child: child.into(),
            child_columns: vec!["pid".into()],
            parent_schema: "public".into(),
            parent: parent.into(),
            parent_columns: vec!["id".into()],
        }
    }

    #[test]
    fn sql_quotes_every_identifier_and_uses_the_null_marker() {
        let cat = catalog(
            vec![PgTable {
                name: "user".into(),
                columns: vec![col("id", "int4", true), col("nameID", "text", false)],
                sequences: vec![("id".into(), "public.user_id_seq".into())],
                secondary_indexes: vec![(
                    "user_name".into(),
                    r#"CREATE INDEX user_name ON public."user" USING btree ("nameID")"#.into(),
                )],
                ..PgTable::default()
            }],
            vec![],
        );
        let p = build(
            &[input("user", &["id", "nameID"], vec![])],
            &cat,
            &Profile::resolve("x", &Layers::default()),
            &opts(),
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            p.steps[0].copy_sql,
            r#"COPY "public"."user" ("id", "nameID") FROM STDIN (FORMAT csv, HEADER true, NULL E'\\N', FREEZE true)"#
        );
        assert_eq!(
            p.truncate_sql().unwrap(),
            r#"TRUNCATE "public"."user" CASCADE"#
        );
        assert!(
            p.steps[0].sequences[0]
                .sql
                .starts_with("SELECT setval('public.user_id_seq'::regclass")
        );
        let script = p.script();
        assert_eq!(script.first().unwrap(), "BEGIN");
        assert_eq!(script.last().unwrap(), "COMMIT");
        let legacy = build(
            &[input("user", &["id", "nameID"], vec![])],
            &cat,
            &Profile::resolve("x", &Layers::default()),
            &Options {
                legacy: true,
                ..opts()
            },
        );
        assert!(
            legacy.steps[0]
                .copy_sql
                .ends_with("(FORMAT csv, HEADER true, FREEZE true)")
        );
        assert!(p.steps[0].indexes.is_empty());
        let rebuilt = build(
            &[input("user", &["id", "nameID"], vec![])],
            &cat,
            &Profile::resolve("x", &Layers::default()),
            &Options {
                rebuild_indexes: true,
                ..opts()
            },
        );
        let script = rebuilt.script().join(";\n");
        let drop = script.find(r#"DROP INDEX "public"."user_name""#).unwrap();
        let copy = script.find("COPY").unwrap();
        let create = script.find("CREATE INDEX user_name").unwrap();
        assert!(drop < copy && copy < create, "{script}");
    }

    #[test]
    fn refusals_before_any_write() {
        let mut gen_col = col("g", "int4", false);
        gen_col.generated = true;
        let cat = catalog(
            vec![PgTable {
                name: "t".into(),
                columns: vec![
                    col("id", "uuid", true),
                    col("owner", "uuid", false),
                    gen_col,
                    col("must", "text", true),
                ],
                ..PgTable::default()
            }],
            vec![],
        );
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
            &Profile::resolve("x", &Layers::default()),
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
        let cat = catalog(vec![], vec![]);
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
        let cased = catalog(
            vec![PgTable {
                name: "Space".into(),
                ..PgTable::default()
            }],
            vec![],
        );
        let c = build(&[input("space", &["id"], vec![])], &cased, &alk, &opts());
        assert!(
            c.warnings[0].contains("the target has `Space`"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn cascade_follows_references_transitively() {
        let fks = vec![
            fk("child", "parent"),
            fk("grandchild", "child"),
            fk("other", "unrelated"),
        ];
        let reach = cascade_reach(&fks, "public", &["parent".to_string()]);
        assert_eq!(
            reach,
            vec![
                ("public".to_string(), "child".to_string()),
                ("public".to_string(), "grandchild".to_string())
            ]
        );
        assert!(
            cascade_reach(
                &fks,
                "public",
                &["parent".into(), "child".into(), "grandchild".into()]
            )
            .is_empty()
        );
    }
}
