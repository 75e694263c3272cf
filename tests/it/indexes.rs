//! Index-aware load against the real servers: every kind of index (and the constraints
//! and foreign keys around them) dropped before its table's COPY and built after it comes
//! back exactly as it was, by the whole index catalog before and after; a partitioned
//! table; a duplicate under a rebuilt unique index and an orphan under a foreign key
//! added back roll everything back and name the rows; `never`, `auto` and
//! `--allow-orphans` keep what they must; an invalid index comes back valid.

use std::path::{Path, PathBuf};

use crate::export::export_dir;
use crate::harness::*;

fn export(w: &World) -> PathBuf {
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

fn import(w: &World, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", dir.to_str().unwrap(), "--yes"];
    args.extend_from_slice(extra);
    w.run(&args)
}

/// The plan's index choices (`--dry-run --json`), by table.
fn choices(w: &World, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["import", dir.to_str().unwrap(), "--dry-run", "--json"];
    args.extend_from_slice(extra);
    let o = w.run(&args);
    assert_exit(&o, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let mut by_table = serde_json::Map::new();
    for c in plan["indexes"].as_array().expect("indexes in the plan") {
        by_table.insert(c["table"].as_str().unwrap().to_string(), c.clone());
    }
    serde_json::Value::Object(by_table)
}

/// The statements the last import ran (its `.sql` journal).
fn journal(w: &World) -> String {
    w.journal_sql()
}

/// A tablespace in a fresh directory the server owns, dropped after the test's
/// databases (declare it before the `World`).
struct Tablespace {
    name: String,
    _dir: tempfile::TempDir,
}

impl Tablespace {
    fn new(name: &str) -> Tablespace {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres", dir.path().to_str().unwrap()])
            .status()
            .expect("chown");
        assert!(status.success(), "chown of the tablespace directory");
        let name = format!("{name}_{}", std::process::id());
        pg_exec(
            "postgres",
            &format!(
                "CREATE TABLESPACE {name} LOCATION '{}'",
                dir.path().display()
            ),
        );
        Tablespace { name, _dir: dir }
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::panic::catch_unwind(|| {
            pg_exec("postgres", &format!("DROP TABLESPACE IF EXISTS {name}"))
        });
    }
}

const SOURCE: &str = "
    CREATE TABLE item (id INT PRIMARY KEY, code VARCHAR(20), grp INT NOT NULL, parent_id INT,
      name VARCHAR(50) NOT NULL, doc JSON, created DATETIME NOT NULL, span VARCHAR(20) NOT NULL,
      ext CHAR(36) NOT NULL);
    INSERT INTO item VALUES
      (1, 'a', 1, NULL, 'Alpha', '{\"k\": 1}', '2024-01-01 10:00:00', '[1,2)', '00000000-0000-4000-8000-000000000001'),
      (2, 'b', 2, 1, 'beta', '{\"k\": 2}', '2024-01-02 10:00:00', '[2,3)', '00000000-0000-4000-8000-000000000002'),
      (3, NULL, 2, 1, 'Gamma', NULL, '2024-01-03 10:00:00', '[3,4)', '00000000-0000-4000-8000-000000000003'),
      (4, 'd', 3, 2, 'delta', '[1, 2]', '2024-01-04 10:00:00', '[4,5)', '00000000-0000-4000-8000-000000000004');
    CREATE TABLE child (id INT PRIMARY KEY, item_id INT, item_code VARCHAR(20), item_ext CHAR(36), note VARCHAR(20));
    INSERT INTO child VALUES (1, 1, 'a', '00000000-0000-4000-8000-000000000001', 'x'),
      (2, 2, 'b', '00000000-0000-4000-8000-000000000002', NULL), (3, 4, NULL, NULL, 'z');
    CREATE TABLE tag (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL);
    INSERT INTO tag VALUES (1, 'one'), (2, 'two');";

/// Every kind of index the target can have, in a schema and under names that need
/// quoting: constraints (a primary key, a deferrable UNIQUE, an EXCLUDE over a range),
/// plain unique, partial, expression (with a statistics target), INCLUDE, DESC NULLS
/// LAST, collation, opclass, GIN, GiST, BRIN, hash, storage parameters, a tablespace,
/// comments, CLUSTER ON, REPLICA IDENTITY USING INDEX, foreign keys of another table
/// (ON DELETE/UPDATE, MATCH FULL, DEFERRABLE, NOT VALID) and of the table itself.
fn target(ts: &str) -> String {
    format!(
        r#"
    CREATE EXTENSION IF NOT EXISTS btree_gist;
    CREATE SCHEMA "App";
    SET search_path = "App";
    CREATE TABLE item (
      id integer CONSTRAINT "Item_PK" PRIMARY KEY,
      code text CONSTRAINT item_code_key UNIQUE,
      grp integer NOT NULL,
      parent_id integer CONSTRAINT item_parent_fk REFERENCES item(id),
      name text NOT NULL,
      doc jsonb,
      created timestamp NOT NULL,
      span int4range NOT NULL,
      ext uuid NOT NULL,
      CONSTRAINT item_name_grp UNIQUE (name, grp) DEFERRABLE INITIALLY DEFERRED,
      CONSTRAINT item_span_excl EXCLUDE USING gist (grp WITH =, span WITH &&) WHERE (grp > 0)
    );
    CREATE UNIQUE INDEX "Item_Ext_idx" ON item (ext) WITH (fillfactor = 70);
    CREATE INDEX item_grp_partial ON item (grp) WHERE grp > 1;
    CREATE INDEX item_lower_name ON item (lower(name) text_pattern_ops);
    ALTER INDEX item_lower_name ALTER COLUMN 1 SET STATISTICS 500;
    CREATE INDEX item_name_incl ON item (name DESC NULLS LAST) INCLUDE (grp);
    CREATE INDEX item_doc ON item USING gin (doc jsonb_path_ops);
    CREATE INDEX item_span_gist ON item USING gist (span);
    CREATE INDEX item_created_brin ON item USING brin (created) WITH (pages_per_range = 16);
    CREATE INDEX item_code_hash ON item USING hash (code);
    CREATE INDEX item_name_c ON item (name COLLATE "C");
    CREATE UNIQUE INDEX item_code_lower ON item (lower(code)) WHERE code IS NOT NULL;
    CREATE INDEX item_created_ts ON item (created) TABLESPACE {ts} WHERE grp > 0;
    CREATE UNIQUE INDEX item_grp_id ON item (grp, id);
    ALTER TABLE item REPLICA IDENTITY USING INDEX item_grp_id;
    ALTER TABLE item CLUSTER ON item_name_incl;
    COMMENT ON INDEX item_doc IS 'documents, by path';
    COMMENT ON CONSTRAINT "Item_PK" ON item IS 'the key';
    CREATE TABLE child (
      id integer PRIMARY KEY,
      item_id integer CONSTRAINT child_item_fk REFERENCES item(id) ON DELETE CASCADE DEFERRABLE,
      item_code text CONSTRAINT child_code_fk REFERENCES item(code) ON UPDATE SET NULL,
      item_ext uuid CONSTRAINT child_ext_fk REFERENCES item(ext) MATCH FULL,
      note text
    );
    ALTER TABLE child ADD CONSTRAINT child_item_nv FOREIGN KEY (item_id) REFERENCES item(id) NOT VALID;
    COMMENT ON CONSTRAINT child_item_fk ON child IS 'child of item';
    CREATE INDEX child_item ON child (item_id);
    CREATE TABLE tag (id integer PRIMARY KEY, label text NOT NULL);
    CREATE INDEX tag_label ON tag (label);
    CREATE VIEW tag_by_id AS SELECT id, label FROM tag GROUP BY id;
    "#
    )
}

#[test]
fn every_kind_of_index_is_rebuilt_exactly_as_it_was() {
    let ts = Tablespace::new("pgc_ix_every");
    let w = World::new("indexes_every_kind");
    w.mysql(SOURCE);
    w.pg(&target(&ts.name));
    let dir = export(&w);
    let before = w.index_catalog();
    assert!(
        before
            .iter()
            .any(|l| l.contains("item_created_ts") && l.contains(&ts.name)),
        "{before:#?}"
    );

    // The plan says what happens to each table's indexes, and why.
    let plan = choices(&w, &dir, &["--schema", "App", "--rebuild-indexes"]);
    // ... and what the builds get: memory, and the parallel workers a b-tree build may
    // have, as the server gives them (max_parallel_maintenance_workers).
    let workers = w
        .pg_value(
            "SELECT least(current_setting('max_parallel_maintenance_workers')::bigint, \
             greatest(pg_size_bytes(current_setting('maintenance_work_mem')), \
                      pg_size_bytes(current_setting('shared_buffers'))) / (32 * 1024 * 1024) - 1)",
        )
        .unwrap();
    let o = w.run(&[
        "import",
        dir.to_str().unwrap(),
        "--dry-run",
        "--json",
        "--schema",
        "App",
        "--rebuild-indexes",
    ]);
    let whole: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(whole["build_workers"].to_string(), workers, "{whole:#}");
    let o = w.run(&[
        "import",
        dir.to_str().unwrap(),
        "--dry-run",
        "--schema",
        "App",
        "--rebuild-indexes",
    ]);
    let said = match workers.as_str() {
        "0" => "b-tree builds without parallel workers".to_string(),
        "1" => "b-tree builds with up to 1 parallel worker".to_string(),
        n => format!("b-tree builds with up to {n} parallel workers"),
    };
    assert!(stdout(&o).contains(&said), "{said}: {}", stdout(&o));
    assert_eq!(plan["item"]["choice"], "rebuild", "{plan:#}");
    assert_eq!(plan["item"]["reason"], "--rebuild-indexes always");
    let rebuilt: Vec<&str> = plan["item"]["rebuilt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for i in [
        "Item_PK",
        "item_code_key",
        "item_span_excl",
        "Item_Ext_idx",
        "item_doc",
    ] {
        assert!(rebuilt.contains(&i), "{i} not rebuilt: {plan:#}");
    }
    let fks = plan["item"]["foreign_keys"].to_string();
    for k in [
        "child.child_item_fk",
        "child.child_ext_fk",
        "item.item_parent_fk",
        // Added back as it was, and said so (not "validated").
        "child.child_item_nv (NOT VALID, as it was)",
    ] {
        assert!(fks.contains(k), "{k}: {plan:#}");
    }
    // A view grouping by tag's key depends on it: that key stays, tag_label does not.
    assert_eq!(plan["tag"]["choice"], "rebuild", "{plan:#}");
    assert_eq!(plan["tag"]["kept"][0]["index"], "tag_pkey", "{plan:#}");
    assert!(
        plan["tag"]["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(r#"view "App".tag_by_id"#),
        "{plan:#}"
    );

    for round in 0..2 {
        let o = import(
            &w,
            &dir,
            &["--schema", "App", "--rebuild-indexes", "--json"],
        );
        assert_exit(&o, 0);
        assert_eq!(w.index_catalog(), before, "round {round}");
        assert_eq!(
            w.pg_value(r#"SELECT count(*) FROM "App".item WHERE grp > 1"#)
                .unwrap(),
            "3"
        );
        // Index time is reported apart from COPY time.
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let item = report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "item")
            .unwrap();
        assert!(item["index_seconds"].as_f64().unwrap() > 0.0, "{report:#}");
        assert!(item["copy_seconds"].as_f64().unwrap() > 0.0, "{report:#}");
        // A table's COPY seconds are its COPYs' own: not the builds of the table loaded
        // before it (their sum was once the COPYs' and the builds' together).
        let copies: f64 = report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["copy_seconds"].as_f64().unwrap())
            .sum();
        let copy_step = report["steps"]["copy"].as_f64().unwrap();
        assert!(
            copies <= copy_step + 1e-6,
            "{copies} > {copy_step}: {report:#}"
        );
    }
    // Dropped right before the table's COPY, built right after it, constraints attached
    // once each, never through USING INDEX for what it cannot take.
    let sql = journal(&w);
    let at = |s: &str| sql.find(s).unwrap_or_else(|| panic!("{s} not in\n{sql}"));
    assert!(at(r#"DROP INDEX "App"."item_doc""#) > at("TRUNCATE"));
    assert!(at(r#"DROP INDEX "App"."item_doc""#) < at(r#"COPY "App"."item""#));
    assert!(at("CREATE INDEX item_doc ON \"App\".item") > at(r#"COPY "App"."item""#));
    assert!(at("CREATE INDEX item_doc ON \"App\".item") < at(r#"COPY "App"."child""#));
    assert_eq!(
        sql.matches("ADD CONSTRAINT \"Item_PK\" PRIMARY KEY USING INDEX")
            .count(),
        1
    );
    assert_eq!(
        sql.matches(r#"ADD CONSTRAINT "item_span_excl" EXCLUDE USING gist"#)
            .count(),
        1
    );
    for plain in [
        "item_code_lower",
        "item_grp_id",
        "Item_Ext_idx",
        "item_name_incl",
    ] {
        assert!(
            !sql.contains(&format!("UNIQUE USING INDEX \"{plain}\"")),
            "{plain}"
        );
        assert_eq!(
            sql.matches(&format!("INDEX {plain} ON")).count()
                + sql.matches(&format!("INDEX \"{plain}\" ON")).count(),
            1,
            "{plain}"
        );
    }
    assert!(
        sql.contains(&format!("TABLESPACE \"{}\" WHERE (grp > 0)", ts.name)),
        "{sql}"
    );
}

#[test]
fn a_partitioned_table_gets_its_indexes_back_on_every_partition() {
    let w = World::new("indexes_partitioned");
    w.mysql(
        "CREATE TABLE measure (id INT NOT NULL, at DATE NOT NULL, v VARCHAR(10), PRIMARY KEY (id, at));
         INSERT INTO measure VALUES (1, '2023-03-01', 'a'), (2, '2023-05-01', NULL),
           (50, '2024-02-01', 'b'), (150, '2024-03-01', 'c'), (151, '2024-04-01', NULL);",
    );
    w.pg(r#"
        CREATE TABLE measure (id integer NOT NULL, at date NOT NULL, v text, PRIMARY KEY (id, at))
          PARTITION BY RANGE (at);
        CREATE TABLE measure_2023 PARTITION OF measure FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
        CREATE TABLE measure_2024 PARTITION OF measure FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
          PARTITION BY RANGE (id);
        CREATE TABLE measure_2024_lo PARTITION OF measure_2024 FOR VALUES FROM (MINVALUE) TO (100);
        CREATE TABLE measure_2024_hi PARTITION OF measure_2024 FOR VALUES FROM (100) TO (MAXVALUE);
        CREATE INDEX measure_v ON measure (v);
        CREATE INDEX measure_at_brin ON measure USING brin (at);
        ALTER INDEX measure_2023_v_idx RENAME TO "m2023 v";
        CREATE INDEX measure_2023_only ON measure_2023 (id) WHERE v IS NULL;
        COMMENT ON INDEX measure_2024_lo_v_idx IS 'low ids';
    "#);
    let dir = export(&w);
    let before = w.index_catalog();
    let plan = choices(&w, &dir, &["--rebuild-indexes", "always"]);
    assert_eq!(plan["measure"]["choice"], "rebuild", "{plan:#}");
    let kept = plan["measure"]["kept"].to_string();
    assert!(
        kept.contains("measure_pkey") && kept.contains("partitioned"),
        "{plan:#}"
    );
    let o = import(&w, &dir, &["--rebuild-indexes", "always"]);
    assert_exit(&o, 0);
    assert_eq!(w.index_catalog(), before);
    assert_eq!(
        w.pg_value("SELECT count(*) FROM measure_2024_hi").unwrap(),
        "2"
    );
    let sql = journal(&w);
    assert!(
        sql.contains("CREATE INDEX measure_v ON ONLY public.measure"),
        "{sql}"
    );
    assert!(
        sql.contains(r#"ALTER INDEX "public"."measure_v" ATTACH PARTITION "public"."m2023 v""#),
        "{sql}"
    );
}

#[test]
fn a_duplicate_under_a_rebuilt_unique_index_rolls_back_and_names_the_rows() {
    let w = World::new("indexes_duplicate");
    w.mysql(
        "CREATE TABLE item (id INT PRIMARY KEY, code VARCHAR(10), parent_id INT);
         INSERT INTO item VALUES (1, 'a', NULL), (2, 'b', 1), (3, 'b', 1), (4, 'c', NULL);",
    );
    w.pg(
        "CREATE TABLE item (id integer PRIMARY KEY, code text CONSTRAINT item_code_key UNIQUE,
                            parent_id integer CONSTRAINT item_parent_fk REFERENCES item(id));
         CREATE INDEX item_parent ON item (parent_id);
         INSERT INTO item VALUES (7, 'x', NULL);",
    );
    let dir = export(&w);
    let (catalog, rows) = (w.index_catalog(), w.fingerprint());
    let o = import(&w, &dir, &["--rebuild-indexes=always"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    // The failed build is followed by the diagnosis, which lists every violation.
    assert!(
        err.contains(
            r#"`item` UNIQUE "item_code_key" (code): 2 rows share 1 value; e.g. 'b' from item id=2 and item id=3"#
        ),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(w.index_catalog(), catalog);
    assert_eq!(w.fingerprint(), rows);
    assert_eq!(w.run_log_statuses().last().unwrap(), "rolled_back");

    // A foreign key of the table itself, added back over a row without a parent: named
    // by key, and nothing kept.
    w.mysql(
        "UPDATE item SET code = 'e' WHERE id = 3; UPDATE item SET parent_id = 99 WHERE id = 4;",
    );
    let dir = export(&w);
    let o = import(&w, &dir, &["--rebuild-indexes=always"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(
            "foreign key `item_parent_fk` (item.parent_id -> item.id): 1 row with no parent \
             row, e.g. id=4 (parent_id=99): the foreign key cannot be added back"
        ),
        "{err}"
    );
    assert_eq!(w.index_catalog(), catalog);
    assert_eq!(w.fingerprint(), rows);
}

#[test]
fn never_and_auto_and_allow_orphans_keep_what_they_must() {
    let w = World::new("indexes_never_auto");
    w.mysql(&format!(
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL);
         CREATE TABLE small (id INT PRIMARY KEY, big_id INT, v VARCHAR(10));
         INSERT INTO small VALUES (1, 1, 'a'), (2, 2, 'b');
         {}",
        mysql_fill_sql("big", "id, v", "seq.n + 1, CONCAT('v', seq.n % 97)", 12_000)
    ));
    w.pg("CREATE TABLE big (id integer PRIMARY KEY, v text NOT NULL);
         CREATE INDEX big_v ON big (v);
         CREATE TABLE small (id integer PRIMARY KEY, big_id integer REFERENCES big(id), v text);
         CREATE INDEX small_v ON small (v);
         CREATE INDEX small_big ON small (big_id);
         INSERT INTO big VALUES (1, 'x'), (2, 'y'), (3, 'z');");
    // A build that fails on the rows there leaves an invalid index behind.
    let failed = pg_try(
        &w.db,
        "CREATE INDEX CONCURRENTLY big_v_invalid ON big ((1 / (length(v) - 1)))",
    );
    assert!(failed.is_err_and(|e| e.contains("division by zero")));
    let dir = export(&w);
    let invalid = w.index_catalog();
    let flags = |l: &String| l.starts_with("flags | big_v_invalid |").then(|| l.clone());
    let line = invalid
        .iter()
        .find_map(flags)
        .expect("big_v_invalid's flags");
    assert_eq!(
        line.split(" | ").nth(7),
        Some("f"),
        "the failed CONCURRENTLY build left an invalid index: {line}"
    );
    // The import's TRUNCATE rebuilds it, valid (as REINDEX would): the plan warns.
    let before: Vec<String> = invalid
        .iter()
        .map(
            |l| match l.strip_prefix("flags | big_v_invalid | f | f | f | t | f | f | f |") {
                Some(rest) => format!("flags | big_v_invalid | f | f | f | t | f | t | t |{rest}"),
                None => l.clone(),
            },
        )
        .collect();
    assert_ne!(before, invalid);

    // auto (the default): the big table is rebuilt, the small one keeps its indexes.
    let plan = choices(&w, &dir, &[]);
    assert_eq!(plan["big"]["choice"], "rebuild", "{plan:#}");
    assert_eq!(plan["big"]["rows"], 12_000);
    assert!(
        plan["big"]["reason"]
            .as_str()
            .unwrap()
            .contains("at least 10000")
    );
    // Its key, with the foreign key on it, is rebuilt only from 100,000 rows.
    assert_eq!(plan["big"]["kept"][0]["index"], "big_pkey", "{plan:#}");
    assert!(
        plan["big"]["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("from 100000 rows"),
        "{plan:#}"
    );
    assert_eq!(
        plan["big"]["rebuilt"],
        serde_json::json!(["big_v", "big_v_invalid"])
    );
    assert_eq!(plan["small"]["choice"], "keep", "{plan:#}");
    assert!(
        plan["small"]["reason"]
            .as_str()
            .unwrap()
            .contains("fewer than 10000")
    );
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("index `big_v_invalid` of `big` is not valid"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.index_catalog(), before);
    let sql = journal(&w);
    assert!(sql.contains(r#"DROP INDEX "public"."big_v""#), "{sql}");
    assert!(!sql.contains("small_v"), "{sql}");

    // --allow-orphans: the key a foreign key references stays, the rest is rebuilt.
    let plan = choices(&w, &dir, &["--allow-orphans", "--rebuild-indexes"]);
    assert_eq!(plan["big"]["choice"], "rebuild", "{plan:#}");
    let kept = plan["big"]["kept"].to_string();
    assert!(
        kept.contains("big_pkey") && kept.contains("--allow-orphans"),
        "{plan:#}"
    );
    assert_eq!(plan["big"]["foreign_keys"], serde_json::json!([]));

    // never: today's behaviour, every index in place during the load.
    let o = import(&w, &dir, &["--rebuild-indexes", "never"]);
    assert_exit(&o, 0);
    let sql = journal(&w);
    assert!(
        !sql.contains("DROP INDEX") && !sql.contains("DROP CONSTRAINT"),
        "{sql}"
    );
    assert!(!sql.contains("maintenance_work_mem"), "{sql}");
    assert_eq!(w.index_catalog(), before);
    assert_eq!(w.pg_value("SELECT count(*) FROM big").unwrap(), "12000");
}

/// A `before` hook (or another session) that changes an index the import rebuilds: the
/// rebuild would put back what the plan read, undoing the change without a word. The
/// import refuses it by the index's name, with a hint, before dropping anything; an index
/// the hook adds, which the plan never drops, is no such change.
#[test]
fn an_index_a_hook_changes_is_refused_not_put_back_as_it_was() {
    let w = World::new("indexes_hook_changes");
    w.mysql(
        "CREATE TABLE item (id INT PRIMARY KEY, code VARCHAR(10), grp INT);
         INSERT INTO item VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 2);",
    );
    w.pg(
        "CREATE TABLE item (id integer PRIMARY KEY, code text, grp integer, tsv tsvector,
                            CONSTRAINT item_id_code UNIQUE (id, code));
         CREATE TABLE ext (a integer, b text, CONSTRAINT ext_fk FOREIGN KEY (a, b)
                           REFERENCES item (id, code) ON DELETE SET NULL);
         CREATE INDEX item_tsv ON item USING gist (tsv);
         CREATE INDEX item_code ON item (code);
         CREATE INDEX item_grp ON item (grp) WITH (fillfactor = 70);
         CREATE UNIQUE INDEX item_code_u ON item (code);
         COMMENT ON INDEX item_code IS 'as made';
         INSERT INTO item VALUES (9, 'z', 9);",
    );
    let dir = export(&w);
    let (catalog, rows) = (w.index_catalog(), w.fingerprint());
    let map = w.path().join("hook.toml");
    for (hook, index) in [
        (
            "COMMENT ON INDEX item_code IS 'changed by the hook'",
            "`item_code`",
        ),
        ("ALTER INDEX item_grp SET (fillfactor = 50)", "`item_grp`"),
        ("DROP INDEX item_code", "`item_code`"),
        ("ALTER INDEX item_grp RENAME TO item_grp2", "`item_grp`"),
        // Made again the same but for NULLS NOT DISTINCT (a column of newer servers).
        (
            "DROP INDEX item_code_u; CREATE UNIQUE INDEX item_code_u ON item (code) NULLS NOT DISTINCT",
            "`item_code_u`",
        ),
        // An opclass parameter; a foreign key on the key, made again but for the columns
        // its ON DELETE sets NULL (both columns of newer servers' catalogs).
        (
            "DROP INDEX item_tsv; CREATE INDEX item_tsv ON item USING gist (tsv tsvector_ops (siglen = 100))",
            "`item_tsv`",
        ),
        (
            "ALTER TABLE ext DROP CONSTRAINT ext_fk, ADD CONSTRAINT ext_fk FOREIGN KEY (a, b) REFERENCES item (id, code) ON DELETE SET NULL (b)",
            "`item_id_code`",
        ),
    ] {
        std::fs::write(&map, format!("[import]\nbefore = [\"{hook}\"]\n")).unwrap();
        let o = import(
            &w,
            &dir,
            &[
                "--map",
                map.to_str().unwrap(),
                "--rebuild-indexes=always",
                "--json",
            ],
        );
        assert_exit(&o, 2);
        let failure: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let error = failure["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!(
                "table `item`: index {index} changed after the plan read it"
            )),
            "{hook}: {failure:#}"
        );
        assert!(
            failure["hint"]
                .as_str()
                .unwrap_or_default()
                .contains("`after` hook"),
            "{hook}: {failure:#}"
        );
        assert_eq!(w.index_catalog(), catalog, "{hook}");
        assert_eq!(w.fingerprint(), rows, "{hook}");
        assert_eq!(crate::reliability::last_status(&w), "rolled_back", "{hook}");
    }
    // An index the hook adds is not the plan's: it stays, maintained by the COPY.
    std::fs::write(
        &map,
        "[import]\nbefore = [\"CREATE INDEX item_code_grp ON item (code, grp)\"]\n",
    )
    .unwrap();
    let o = import(
        &w,
        &dir,
        &["--map", map.to_str().unwrap(), "--rebuild-indexes=always"],
    );
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_value(
            "SELECT obj_description('item_code'::regclass, 'pg_class') || ' ' || count(*) FROM item"
        )
        .unwrap(),
        "as made 3"
    );
    assert_eq!(
        w.pg_value("SELECT count(*) FROM pg_indexes WHERE indexname = 'item_code_grp'")
            .unwrap(),
        "1"
    );
}

/// Rows that conflict under an EXCLUDE constraint added back after the COPY: the import
/// rolls back and says which constraint, with a hint; the listing that follows cannot ask
/// an exclusion over an expression, and says so rather than that no row breaks it.
#[test]
fn rows_conflicting_under_a_rebuilt_exclusion_are_refused_with_a_hint() {
    let w = World::new("indexes_exclusion");
    w.mysql(
        "CREATE TABLE booking (id INT PRIMARY KEY, t_from DATETIME, t_to DATETIME);
         INSERT INTO booking VALUES (1, '2024-01-01 10:00', '2024-01-01 12:00'),
                                    (2, '2024-01-01 11:00', '2024-01-01 13:00');",
    );
    w.pg(
        "CREATE TABLE booking (id integer PRIMARY KEY, t_from timestamp, t_to timestamp,
           CONSTRAINT booking_no_overlap EXCLUDE USING gist (tsrange(t_from, t_to) WITH &&));",
    );
    let dir = export(&w);
    let (catalog, rows) = (w.index_catalog(), w.fingerprint());
    let o = import(&w, &dir, &["--rebuild-indexes=always"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("exclusion constraint `booking_no_overlap` cannot be added back"),
        "{err}"
    );
    assert!(err.contains("hint: fix the conflicting rows"), "{err}");
    assert!(!err.contains("no row breaks one"), "{err}");
    assert_eq!(w.index_catalog(), catalog);
    assert_eq!(w.fingerprint(), rows);
    assert_eq!(crate::reliability::last_status(&w), "rolled_back");
}
