//! The delta plan end to end: a delta built and applied over a small catalog, its
//! statements checked in order.

use super::*;
use crate::config::Layers;
use crate::db::catalog::{ForeignKey, PgTable};
use crate::import::plan::tests::{catalog, col, input, opts};
use crate::import::plan::{Options, Statement, build};

fn table(name: &str, columns: &[&str], pk: &[&str]) -> PgTable {
    PgTable {
        name: name.into(),
        columns: columns.iter().map(|c| col(c, "text", false)).collect(),
        primary_key: pk.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn entry(name: &str, key: &[&str], deleted: u64, removed: bool, whole: bool) -> serde_json::Value {
    let keys = |file: String, rows: u64| serde_json::json!({"file": file, "rows": rows, "bytes": 9, "sha256": "s", "longest_record": 9});
    let mut d = serde_json::json!({
        "key": key, "deleted": keys(format!("{name}.deleted.csv"), deleted),
        "source_rows": 5, "changed_keys": 3,
    });
    if removed {
        d["removed"] = keys(format!("{name}.removed.csv"), 1);
    }
    if whole {
        d["full_copy"] = "no key".into();
    }
    serde_json::json!({"name": name, "file": format!("{name}.csv"), "rows": 2, "bytes": 9,
        "sha256": "s", "engine": "InnoDB", "columns": [], "primary_key": key, "delta": d})
}

fn manifest() -> Manifest {
    let position = serde_json::json!({"engine": "mysql", "file": "bin.000001", "position": 9,
        "server": {"server_id": 1, "file_created": 5}});
    let v = serde_json::json!({
        "format_version": 4, "kind": "delta", "tool": {"name": "pgconverge", "version": "0"},
        "profile": "app", "source": {"kind": "mysql", "host": "h", "port": 1, "user": "u",
            "database": "app", "server_version": "v"},
        "started_at": "", "finished_at": "",
        "snapshot": {"isolation": "", "time_zone": "", "charset": "", "readers": 1, "synchronized_by": ""},
        "csv": {"encoding": "UTF-8", "delimiter": ",", "quote": "\"", "null": "\\N", "header": true, "line_end": "\n"},
        "export_info": {"timestamp": "", "source_database": "app", "source_type": "mysql"},
        "tables": {"p": entry("p", &["id"], 1, true, false), "c": entry("c", &["id"], 0, false, false),
                   "w": entry("w", &[], 0, false, true)},
        "summary": {"total_tables": 3, "total_rows": 6},
        "position": position.clone(),
        "delta": {"base": {"export_id": "b", "manifest_sha256": "bb", "dir": "d"}, "from": position,
            "cascades": [{"name": "c_p", "child": "c", "child_columns": ["p_id"], "parent": "p",
                "parent_columns": ["id"], "on_delete": "CASCADE", "on_update": "SET NULL"}]}
    });
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_delta_deletes_and_upserts_by_key_in_one_transaction() {
    let mut cat = catalog(vec![
        table("p", &["id", "name"], &["id"]),
        table("c", &["id", "p_id"], &["id"]),
        table("w", &["msg"], &[]),
    ]);
    cat.foreign_keys.push(ForeignKey {
        name: "c_p".into(),
        child_schema: "public".into(),
        child: "c".into(),
        child_columns: vec!["p_id".into()],
        parent_schema: "public".into(),
        parent: "p".into(),
        parent_columns: vec!["id".into()],
        deferrable: false,
    });
    let inputs = vec![
        input("p", &["id", "name"], vec![]),
        input("c", &["id", "p_id"], vec![]),
        input("w", &["msg"], vec![]),
    ];
    let opts = Options {
        rebuild_indexes: crate::import::plan::Rebuild::Always,
        ..opts()
    };
    let mapping = Mapping::resolve("app", None, &Layers::default()).unwrap();
    let mut plan = build(&inputs, &cat, &mapping, &opts, &[]);
    let state = StateSql {
        guard: vec!["LOCK TABLE pgconverge.state".into()],
        record: vec!["INSERT INTO pgconverge.state".into()],
    };
    apply(&mut plan, &manifest(), &cat, &mapping, state);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let texts: Vec<String> = plan
        .statements(&BTreeSet::new())
        .iter()
        .map(Statement::text)
        .collect();
    let at = |needle: &str| {
        texts
            .iter()
            .position(|t| t.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {texts:#?}"))
    };
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("TRUNCATE") || t.contains("ANALYZE"))
    );
    assert!(at("session_replication_role = replica") < at("LOCK TABLE pgconverge.state"));
    assert!(
        at("LOCK TABLE") < at(r#"DELETE FROM "public"."w""#),
        "the guard first"
    );
    assert!(
        at(r#"DELETE FROM "public"."p" t USING "pgconverge_delete_0" d WHERE t."id" = d."id""#) > 0
    );
    assert!(at("COPY \"pgconverge_gone_0\"") < at("INSERT INTO \"public\".\"p\""));
    assert!(
        at(
            r#"INSERT INTO "public"."p" ("id", "name") SELECT "id", "name" FROM "pgconverge_upsert_0" ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name""#
        ) < at(r#"INSERT INTO "public"."c""#),
        "parents first"
    );
    assert!(at(r#"COPY "public"."w""#) > at(r#"DELETE FROM "public"."w""#));
    // The source's actions: CASCADE on delete, SET NULL on update, for rows not written.
    let cascade = &texts[at(r#"DELETE FROM "public"."c" c USING "pgconverge_gone_0" r"#)];
    assert!(
        cascade.contains("'delete'")
            && cascade.contains("NOT EXISTS (SELECT 1 FROM \"pgconverge_upsert_1\" s")
    );
    let set_null = &texts[at(r#"UPDATE "public"."c" c SET "p_id" = NULL"#)];
    assert!(set_null.contains("'update'"));
    assert!(at("UPDATE \"public\".\"c\" c SET") < at("SELECT count(*) FROM \"public\".\"c\" c"));
    // The foreign key checked for the touched keys only.
    let check = plan.orphan_checks[0].within.clone().unwrap();
    assert!(
        check.contains(r#"(c."id") IN (SELECT "id" FROM "pgconverge_upsert_1")"#),
        "{check}"
    );
    assert!(check.contains(r#"(c."p_id") IN (SELECT "id" FROM "pgconverge_delete_0" UNION ALL SELECT "id" FROM "pgconverge_gone_0")"#), "{check}");
    // The journal shows the check that runs, with its keys.
    assert!(
        texts[at(r#"SELECT count(*) FROM "public"."c" c"#)].ends_with(&format!(" AND ({check})"))
    );
    // The transaction's id is taken before anything is written; the state last.
    assert!(at("SELECT txid_current()") < at("LOCK TABLE pgconverge.state"));
    assert_eq!(
        texts[texts.len() - 2].as_str(),
        "INSERT INTO pgconverge.state",
        "{texts:?}"
    );
    assert_eq!(texts.last().map(String::as_str), Some("COMMIT"));
    assert!(plan.indexes.is_empty(), "no index rebuild in a delta");
}

#[test]
fn the_target_key_must_be_the_deltas() {
    let cat = catalog(vec![
        table("p", &["id", "name"], &["name"]),
        table("c", &["id", "p_id"], &["id"]),
        table("w", &["msg"], &[]),
    ]);
    let inputs = vec![
        input("p", &["id", "name"], vec![]),
        input("c", &["id", "p_id"], vec![]),
        input("w", &["msg"], vec![]),
    ];
    let opts = Options {
        schema: "public".into(),
        strict: false,
        rebuild_indexes: crate::import::plan::Rebuild::Never,
        maintenance_work_mem_kb: None,
        row_estimates: Default::default(),
        delta: true,
        legacy: false,
        binary: false,
        allow_orphans: false,
        analyze: true,
        rehearse: false,
    };
    let mapping = Mapping::resolve("app", None, &Layers::default()).unwrap();
    let mut plan = build(&inputs, &cat, &mapping, &opts, &[]);
    let state = StateSql {
        guard: vec![],
        record: vec![],
    };
    apply(&mut plan, &manifest(), &cat, &mapping, state);
    assert!(
        plan.errors
            .iter()
            .any(|e| e.contains("primary key is (name)")),
        "{:?}",
        plan.errors
    );
}
