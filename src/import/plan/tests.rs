//! The plan, built from hand-made catalogs and manifests: what is refused, how each
//! dataset travels, and the statements in order.

use super::statements::{ORIGIN, REPLICA};
use super::*;
use crate::codec::encode::ColumnStats;
use crate::config::Layers;
use crate::db::catalog::{PgColumn, PgTable};
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
        domain_base: None,
        sized_inside: false,
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
        json_nul_samples: vec![],
        infinite_samples: vec![],
        range: None,
        byte_lengths: None,
        longest_chars: None,
        longest_trimmed: None,
        integer_digits: None,
        fraction_digits: None,
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
            helpers: Vec::new(),
            counts: Default::default(),
        },
        header: header.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) fn catalog(tables: Vec<PgTable>) -> Catalog {
    Catalog {
        tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
        foreign_keys: vec![],
        sequences: vec![],
        build: Default::default(),
        lock_room: Default::default(),
    }
}

pub(crate) fn opts() -> Options {
    Options {
        schema: "public".into(),
        strict: false,
        rebuild_indexes: Rebuild::Auto,
        maintenance_work_mem_kb: None,
        row_estimates: Default::default(),
        delta: false,
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
    assert!(on[n - 2].starts_with("ANALYZE "), "{on:?}");
    assert!(on[n - 2].contains(r#""public"."Mixed""#), "{on:?}");
    assert!(on[n - 2].contains(r#""public"."a""#), "{on:?}");
    assert_eq!(on[n - 1], "COMMIT");
    // The transaction's id is taken right after BEGIN and the session's settings, before
    // anything is written.
    let at = |prefix: &str| on.iter().position(|s| s.starts_with(prefix)).unwrap();
    assert!(at("SET LOCAL TimeZone") < at("SELECT txid_current(), pg_backend_pid()"));
    assert!(at("SELECT txid_current(), pg_backend_pid()") < at("TRUNCATE"));
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
        "ROLLBACK  -- nothing is kept (a rehearsal, or a listing of what breaks a constraint)"
    );
    assert!(!r.iter().any(|s| s == "COMMIT" || s.starts_with("ANALYZE")));
    // The backstop guards a rehearsal too: its transaction id is taken as well.
    assert!(
        r.iter()
            .any(|s| s.starts_with("SELECT txid_current(), pg_backend_pid()"))
    );
}

#[test]
fn sql_quotes_every_identifier_and_uses_the_null_marker() {
    let mut cat = catalog(vec![PgTable {
        name: "user".into(),
        columns: vec![col("id", "int4", true), col("nameID", "text", false)],
        indexes: vec![crate::db::catalog::PgIndex {
            name: "user_name".into(),
            schema: "public".into(),
            table: "user".into(),
            def: r#"CREATE INDEX user_name ON public."user" USING btree ("nameID")"#.into(),
            valid: true,
            owned: true,
            ..Default::default()
        }],
        owned: true,
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
    // Two rows: `auto` keeps the index; `always` rebuilds it around the COPY.
    assert_eq!(p.indexes[0].choice, "keep", "{:?}", p.indexes);
    assert!(!texts(&p).iter().any(|s| s.contains("INDEX")));
    let rebuilt = build(
        &user,
        &cat,
        &plain(),
        &Options {
            rebuild_indexes: Rebuild::Always,
            ..opts()
        },
        &[],
    );
    assert_eq!(rebuilt.indexes[0].choice, "rebuild");
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
        "table `t`, column `id`: 2 NULLs in the export (1 was '' in char(36)) but the target column is NOT NULL; e.g. id=3",
        "column `owner`: 1 value is not a UUID but the target column is uuid; e.g. id=5",
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
    let m =
        mapped("[tables.teachers]\ntarget = \"person\"\n[tables.person]\ntarget = \"person\"\n");
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
    // After every hook: still the import's transaction?
    for hook in ["INSERT INTO tenant", "REFRESH"] {
        assert!(
            script[at(hook) + 1].starts_with("SELECT txid_current_if_assigned()  -- still the import's transaction after [import]"),
            "{script:#?}"
        );
    }
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
