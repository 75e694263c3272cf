//! `verify --deep` proves the mapping's computed columns (issue 26, section 5): a `set`
//! that calls only IMMUTABLE functions and reads no table is evaluated again over each
//! target row and compared; one that reads a dropped column, is volatile or STABLE stays
//! "not compared", saying why.

use crate::export::export_dir;
use crate::harness::*;

#[test]
fn immutable_sets_are_evaluated_again_and_a_changed_value_is_named() {
    let w = World::new("computed");
    w.mysql(
        "CREATE TABLE person (id INT PRIMARY KEY, first VARCHAR(20), last VARCHAR(20),
           email VARCHAR(50), score INT);
         INSERT INTO person VALUES (1, 'Ada', 'Lovelace', 'Ada@Example.org', 90),
           (2, 'Alan', 'Turing', 'ALAN@example.org', 40), (3, 'Grace', NULL, NULL, NULL);",
    );
    w.pg(
        "CREATE TABLE person (id integer PRIMARY KEY, first text, email text, full_name text,
           email_lower text, band text, token uuid, seen timestamptz, code text);",
    );
    let map = w.path().join("m.toml");
    std::fs::write(
        &map,
        "[tables.person]\ndrop = [\"last\", \"score\"]\n\
         set = { full_name = \"first || ' ' || last\", email_lower = \"lower(email)\", \
         band = \"CASE WHEN first < 'B' THEN 'a' ELSE 'z' END\", token = \"gen_random_uuid()\", \
         seen = \"now()\", code = \"(100 / length(first))::text\" }\n",
    )
    .unwrap();
    let map = map.to_str().unwrap();
    let o = w.run(&["export", &w.db, "--out", "out", "--map", map]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes", "--map", map]), 0);

    let deep = |more: &[&str]| {
        let mut args = vec!["verify", d, "--deep", "--json", "--map", map];
        args.extend_from_slice(more);
        let o = w.run(&args);
        let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (o, r)
    };
    for mode in [&[][..], &["--source"][..]] {
        let (o, r) = deep(mode);
        assert_exit(&o, 0);
        let t = &r["deep"][0];
        let compared = t["compared_columns"].to_string();
        let not = t["not_compared"].to_string();
        for c in [
            "email_lower (set, evaluated again)",
            "band (set, evaluated again)",
            "code (set, evaluated again)",
        ] {
            assert!(compared.contains(c), "{mode:?}: {c} in {compared} / {not}");
        }
        for c in [
            "full_name (computed by the mapping's set from `last`, which the target does not hold)",
            "token (computed by the mapping's set, which calls something not IMMUTABLE",
            "seen (computed by the mapping's set, which calls something not IMMUTABLE",
        ] {
            assert!(not.contains(c), "{mode:?}: {c} in {not}");
        }
        assert!(!not.contains("email_lower"), "{not}");
    }

    w.pg(
        "UPDATE person SET email_lower = 'alan@example.com' WHERE id = 2;
          UPDATE person SET first = '' WHERE id = 3",
    );
    let (o, r) = deep(&["--source"]);
    assert_exit(&o, 1);
    let not = r["deep"][0]["not_compared"].to_string();
    assert!(
        not.contains("code (computed by the mapping's set; evaluating it again failed: ")
            && not.contains("division by zero"),
        "{not}"
    );
    let diffs = r["differences"].to_string();
    assert!(
        diffs.contains("table `person`, id=2, column `email_lower`")
            && diffs.contains("alan@example.org (= lower(email))"),
        "{diffs}"
    );
}

/// A table none of whose columns can be compared (every one computed by a volatile
/// `set`, the one column kept read only by a `set`) is compared by its count only, and says so: its rows are not reported equal,
/// matched on nothing.
#[test]
fn a_table_with_no_column_to_compare_is_compared_by_count_only() {
    let w = World::new("computed_none");
    w.mysql(
        "CREATE TABLE person (id INT PRIMARY KEY, v INT);
         INSERT INTO person VALUES (1, 10), (2, 20), (3, 30);",
    );
    w.pg("CREATE TABLE person (token uuid, seen timestamptz);");
    let map = w.path().join("m.toml");
    std::fs::write(
        &map,
        "[tables.person]\ndrop = [\"id\", \"v\"]\n\
         set = { token = \"gen_random_uuid()\", seen = \"now() + v::int * interval '1 s'\" }\n",
    )
    .unwrap();
    let map = map.to_str().unwrap();
    let o = w.run(&["export", &w.db, "--out", "out", "--map", map]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes", "--map", map]), 0);
    let deep = |more: &[&str]| {
        let mut args = vec!["verify", d, "--deep", "--json", "--map", map];
        args.extend_from_slice(more);
        let o = w.run(&args);
        let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (o, r)
    };
    for mode in [&[][..], &["--source"][..]] {
        let (o, r) = deep(mode);
        assert_exit(&o, 0);
        let t = &r["deep"][0];
        assert_eq!(t["matched_by"], "(count only)", "{mode:?}: {t}");
        assert_eq!(
            (t["equal"].as_u64(), t["target_rows"].as_u64()),
            (Some(0), Some(3)),
            "{t}"
        );
        let not = t["not_compared"].to_string();
        assert!(not.contains("token (") && not.contains("seen ("), "{not}");
        assert!(
            stderr(&o).contains("deep `person`: no column compared, counts only"),
            "{}",
            stderr(&o)
        );
    }
    w.pg("DELETE FROM person WHERE ctid = (SELECT min(ctid) FROM person)");
    let (o, _) = deep(&[]);
    assert_exit(&o, 1);
    // Every column dropped and none read by a `set`: refused before reading (it was a
    // SELECT of no column, and MySQL's syntax error).
    let bare = w.path().join("bare.toml");
    std::fs::write(
        &bare,
        "[tables.person]\ndrop = [\"id\", \"v\"]\nset = { token = \"gen_random_uuid()\" }\n",
    )
    .unwrap();
    let o = w.run(&[
        "export",
        &w.db,
        "--out",
        "out",
        "--map",
        bare.to_str().unwrap(),
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o)
            .contains("`drop` names every column of `person` (id, v): no value would be read"),
        "{}",
        stderr(&o)
    );
}

/// A `set` whose result fits its `varchar(n)` only once PostgreSQL drops the blanks past
/// n (as storing does) is stored so and compared as stored: no false difference.
#[test]
fn a_set_that_fits_after_trailing_blanks_are_dropped_compares_equal() {
    let w = World::new("computed_blanks");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(20));
         INSERT INTO t VALUES (1, 'abcdef'), (2, 'x');",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, s text, x varchar(3), k varchar(3));");
    let map = w.path().join("m.toml");
    std::fs::write(
        &map,
        "[tables.t]\nset = { x = \"left(s, 2) || '    '\", k = \"'ab    '\" }\n",
    )
    .unwrap();
    let map = map.to_str().unwrap();
    let o = w.run(&["export", &w.db, "--out", "out", "--map", map]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes", "--map", map]), 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(x || '|' || k, ',' ORDER BY id) FROM t")
            .as_deref(),
        Some("ab |ab ,x  |ab ")
    );
    let o = w.run(&["verify", d, "--deep", "--json", "--map", map]);
    assert_exit(&o, 0);
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let compared = r["deep"][0]["compared_columns"].to_string();
    assert!(
        compared.contains("x (set, evaluated again)")
            && compared.contains("k (set, evaluated again)"),
        "{compared}"
    );
}
