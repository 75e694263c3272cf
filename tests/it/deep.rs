//! `verify --deep`: every value compared, against the export's files and against the
//! live source (read through MySQL's binary protocol, not the export's encoder). A clean
//! import of every type verifies clean in both modes; each single-value corruption is
//! caught and named by table, key, column and both values.

use crate::export::export_dir;
use crate::harness::*;
use crate::import::{PG_SCHEMA, fixture_for_round_trip};

const EXTRA_MYSQL: &str = r#"
CREATE TABLE extra (
  id INT PRIMARY KEY, j LONGTEXT CHECK (json_valid(j)), jb JSON, b BLOB, s VARCHAR(50),
  ts DATETIME(6), f FLOAT, d DOUBLE, n DECIMAL(10,3), flag TINYINT(1), c CHAR(5), big BIGINT UNSIGNED,
  ts3 DATETIME(6)
);
INSERT INTO extra VALUES
 (1, '{"a": 1, "a": 2, "s": "q\\"x\\\\y\\u00e9"}', '{"k": [1, 2.50], "k2": {"z": null}}', x'', 'tail ',
  '2024-01-01 00:00:00.000001', 1.5, 1e-300, 12.345, 1, 'ab', 18446744073709551615, '2024-01-01 10:00:00.123456'),
 (2, NULL, NULL, NULL, '\\N', '1999-12-31 23:59:59.999999', -0.0, 0.1, -0.001, 0, 'x', 0, '2024-01-01 10:00:00.999600'),
 (3, '[]', '"😀"', x'00', 'cr\r\nlf 😀', '2024-02-29 12:00:00', 3.40282e38, -1.7976931348623157e308, 0, 1, '', 1, NULL);
-- String keys: MySQL's collation and PostgreSQL's order them differently (data-diff #762).
CREATE TABLE strkey (k VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
INSERT INTO strkey VALUES ('a', 1), ('B', 2), ('é', 3), ('Z', 4), ('_x', 5);
-- No primary key: compared as a multiset, duplicates included.
CREATE TABLE nokey (a INT, b VARCHAR(5));
INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (2, 'y');
"#;

const EXTRA_PG: &str = r#"
CREATE TABLE extra (
  id integer PRIMARY KEY, j json, jb jsonb, b bytea, s text, ts timestamp(6), f real,
  d double precision, n numeric(10,3), flag boolean, c char(5), big numeric(20,0),
  ts3 timestamp(3)
);
CREATE TABLE strkey (k text PRIMARY KEY, v integer);
CREATE TABLE nokey (a integer, b text);
"#;

fn verify(w: &World, dir: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", dir, "--deep", "--json"];
    args.extend_from_slice(more);
    w.run(&args)
}

/// The world's database exported and imported, and verified equal value by value: the
/// export's directory.
fn exported_imported_and_equal(w: &World) -> std::path::PathBuf {
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes"]), 0);
    assert_exit(&verify(w, d, &[]), 0);
    dir
}

/// `extra.ts3` (DATETIME(6) into timestamp(3)) holds values the target rounds: the import
/// refuses that unless a mapping accepts it, and verify compares what was accepted.
fn accept_rounding(w: &World) -> String {
    let map = w.path().join("round.toml");
    std::fs::write(&map, "[tables.extra]\nround = [\"ts3\"]\n").unwrap();
    map.display().to_string()
}

#[test]
fn a_clean_import_verifies_clean_and_every_corruption_is_named() {
    let w = World::new("deep_verify");
    fixture_for_round_trip(&w);
    w.mysql(EXTRA_MYSQL);
    w.pg(PG_SCHEMA);
    w.pg(EXTRA_PG);
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let refused = w.run(&["import", d, "--yes"]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains(
            "table `extra`, column `ts3`: 2 values have more fraction digits (up to 6) than timestamp(3) without time zone keeps (3)"
        ) && stderr(&refused).contains("round = [\"ts3\"]"),
        "{}",
        stderr(&refused)
    );
    let map = accept_rounding(&w);
    assert_exit(&w.run(&["import", d, "--yes", "--map", &map]), 0);

    for mode in [&["--map", &map][..], &["--source", "--map", &map][..]] {
        let o = verify(&w, d, mode);
        assert_exit(&o, 0);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let deep = report["deep"].as_array().unwrap();
        let every = deep.iter().find(|t| t["table"] == "every_type").unwrap();
        assert_eq!(every["equal"], 5, "{mode:?}: {every}");
        assert_eq!(every["matched_by"], "id");
        let extra = deep.iter().find(|t| t["table"] == "extra").unwrap();
        assert_eq!(extra["equal"], 3, "{mode:?}: {extra}");
        let nokey = deep.iter().find(|t| t["table"] == "nokey").unwrap();
        assert_eq!(
            (nokey["equal"].clone(), nokey["matched_by"].clone()),
            (3.into(), "(whole row)".into())
        );
        assert!(
            every["not_compared"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c.as_str().unwrap().starts_with("gen_v")),
            "{every}"
        );
    }

    // One corruption per value, each in its own row or column.
    w.pg(
        "UPDATE extra SET s = s || ' ' WHERE id = 1;
         UPDATE extra SET ts = ts + interval '1 microsecond' WHERE id = 2;
         UPDATE every_type SET lb = set_byte(lb, 0, 255) WHERE id = 2;
         UPDATE every_type SET vc = NULL WHERE id = 3;
         UPDATE extra SET n = 12.346 WHERE id = 1;
         UPDATE \"user\" SET \"accountID\" = '33333333-3333-3333-3333-333333333334' WHERE \"nameID\" = 'bob';
         UPDATE extra SET jb = '{\"k\": [1, 2.51], \"k2\": {\"z\": null}}' WHERE id = 1;
         UPDATE every_type SET bool1 = NOT bool1 WHERE id = 1;
         UPDATE extra SET d = 1.0000000000000002e-300 WHERE id = 1;
         UPDATE \"order\" SET id = 99 WHERE id = 2;
         UPDATE strkey SET v = 30 WHERE k = 'é';
         DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE a = 1);
         INSERT INTO nokey VALUES (3, 'z');",
    );
    for mode in [&["--map", &map][..], &["--source", "--map", &map][..]] {
        let o = verify(&w, d, mode);
        assert_exit(&o, 1);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let diffs: Vec<String> = report["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let all = diffs.join("\n");
        for want in [
            r#"table `extra`, id=1, column `s`: source "tail ", target "tail  ""#,
            r#"table `extra`, id=2, column `ts`: source "#,
            r#"table `every_type`, id=2, column `lb`: source "#,
            r#"table `every_type`, id=3, column `vc`: source "", target NULL"#,
            r#"table `extra`, id=1, column `n`: source "12.345", target "12.346""#,
            r#"table `user`, id=22222222-2222-2222-2222-222222222222, column `accountID`: source "33333333-3333-3333-3333-333333333333", target "33333333-3333-3333-3333-333333333334""#,
            r#"table `extra`, id=1, column `jb`: source "#,
            r#"table `every_type`, id=1, column `bool1`: source "#,
            r#"table `extra`, id=1, column `d`: source "#,
            "table `order`, id=2: only in the source",
            "table `order`, id=99: only in the target",
            r#"table `strkey`, k=é, column `v`: source "3", target "30""#,
            "table `nokey`, (a=1, b=x): only in the source",
            "table `nokey`, (a=3, b=z): only in the target",
        ] {
            assert!(all.contains(want), "{mode:?}: missing `{want}` in\n{all}");
        }
        assert_eq!(diffs.len(), 14, "{mode:?}: {all}");
        let order = report["deep"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "order")
            .unwrap();
        assert_eq!(
            (order["source_rows"].clone(), order["target_rows"].clone()),
            (2.into(), 2.into()),
            "the counts agree; only --deep sees the changed id"
        );
    }
    // Counts alone see nothing.
    assert_exit(&w.run(&["verify", d]), 0);
}

#[test]
fn max_diffs_caps_the_listing_not_the_count() {
    let w = World::new("deep_max_diffs");
    w.mysql("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t SELECT seq, seq FROM seq_1_to_500;");
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, v integer);");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes"]), 0);
    w.pg("UPDATE t SET v = v + 1 WHERE id % 10 = 0");
    let o = verify(&w, d, &["--max-diffs", "3"]);
    assert_exit(&o, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let t = &report["deep"][0];
    assert_eq!(
        (t["different"].clone(), t["equal"].clone()),
        (50.into(), 450.into())
    );
    assert_eq!(t["differences"].as_array().unwrap().len(), 3);
    let last = report["differences"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        last,
        "table `t`: 0 rows only in the source, 0 only in the target, 50 with different values (3 listed; --max-diffs shows more)"
    );
}

/// Long values compared by digest: a latin1 text encoded as base64 (read as its stored
/// bytes, in pieces cut by bytes, as its length counts them), a latin1 text (its pieces
/// arrive converted: twice its stored bytes), a long JSON document, a long text and a
/// long blob export, and verify clean against the files and the live source, and a value
/// changed at its last byte is found in each.
#[test]
fn long_values_are_compared_by_digest_on_every_side() {
    let w = World::new("deep_long_values");
    let n = 4_300_000;
    w.mysql(&format!(
        "CREATE TABLE doc (id INT PRIMARY KEY, l LONGTEXT CHARACTER SET latin1,
                           t LONGTEXT, b LONGBLOB, j JSON, k LONGTEXT CHARACTER SET latin1);
         INSERT INTO doc VALUES
           (1, REPEAT(_latin1 X'E9', {n}), CONCAT(REPEAT('é', {n} / 2), 'z'),
            REPEAT(UNHEX('00FF'), {n} / 2), CONCAT('[', REPEAT('1,', {n} / 2), '1]'),
            REPEAT(_latin1 X'E9', {n})),
           (2, 'short', 'short', UNHEX('01'), '[]', 'short');"
    ));
    w.pg("CREATE TABLE doc (id integer PRIMARY KEY, l text, t text, b bytea, j json, k text)");
    let map = w.path().join("map.toml");
    std::fs::write(&map, "[tables.doc]\nencode = { l = \"base64\" }\n").unwrap();
    let map = map.display().to_string();
    let o = w.run(&["export", &w.db, "--out", "out", "--map", &map]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes", "--map", &map]), 0);
    for more in [&["--map", &map][..], &["--source", "--map", &map]] {
        let o = verify(&w, d, more);
        assert_exit(&o, 0);
    }
    w.pg("UPDATE doc SET l = overlay(l placing 'A' from length(l)),
                        t = overlay(t placing 'y' from length(t)),
                        b = overlay(b placing '\\x01'::bytea from octet_length(b)),
                        j = (left(j::text, -2) || '2]')::json,
                        k = overlay(k placing 'e' from length(k))
         WHERE id = 1");
    for more in [&["--map", &map][..], &["--source", "--map", &map]] {
        let o = verify(&w, d, more);
        assert_exit(&o, 1);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let diffs = report["differences"].to_string();
        for column in ["l", "t", "b", "j", "k"] {
            assert!(
                diffs.contains(&format!("table `doc`, id=1, column `{column}`: source ")),
                "{column} in {diffs}"
            );
        }
        assert_eq!(report["deep"][0]["different"], 1, "{report}");
    }
}

/// A record with a field more or less than the header is not what the export wrote:
/// deep verify refuses the file and names the record, whichever reader reads it (the
/// whole-record one, and the field-by-field one of a file with a record past 4 MB).
#[test]
fn a_record_with_another_number_of_fields_is_refused() {
    let w = World::new("deep_field_count");
    w.mysql(
        "CREATE TABLE small (id INT PRIMARY KEY, v TEXT, w TEXT);
         INSERT INTO small VALUES (1, 'a', NULL), (2, NULL, NULL), (3, 'c', 'd');
         CREATE TABLE big (id INT PRIMARY KEY, v LONGTEXT, w TEXT);
         INSERT INTO big VALUES (1, REPEAT('x', 5000000), NULL), (2, NULL, NULL), (3, 'c', 'd');",
    );
    w.pg(
        "CREATE TABLE small (id integer PRIMARY KEY, v text, w text);
         CREATE TABLE big (id integer PRIMARY KEY, v text, w text);",
    );
    let dir = exported_imported_and_equal(&w);
    let d = dir.to_str().unwrap();
    for table in ["small", "big"] {
        let file = dir.join(format!("{table}.csv"));
        let original = std::fs::read(&file).unwrap();
        let text = String::from_utf8(original.clone()).unwrap();
        // Of the same size as the record replaced, so that the file's size (checked
        // before any of it is read) does not give it away first.
        for (edit, fields) in [("2,a,b,c\n", "4 fields"), ("2,aaaaa\n", "2 fields")] {
            std::fs::write(&file, text.replace("2,\\N,\\N\n", edit)).unwrap();
            let o = verify(&w, d, &[]);
            assert_exit(&o, 2);
            let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            let error = report["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!("{table}.csv: record "))
                    && error.contains(&format!("has {fields} where the header has 3")),
                "{table} {edit:?}: {report}"
            );
        }
        std::fs::write(&file, original).unwrap();
    }
}

/// The files are compared only as the export wrote them: a file changed after the
/// export (here exactly as the target was changed, so every value would compare equal)
/// is refused by its sha256, read as the values are, never compared.
#[test]
fn a_file_changed_after_the_export_is_refused_not_compared() {
    let w = World::new("deep_file_sha");
    w.mysql(
        "CREATE TABLE small (id INT PRIMARY KEY, v TEXT);
         INSERT INTO small VALUES (1, 'apple'), (2, 'pear');
         CREATE TABLE big (id INT PRIMARY KEY, v LONGTEXT);
         INSERT INTO big VALUES (1, CONCAT('apple', REPEAT('x', 5000000))), (2, 'pear');",
    );
    w.pg("CREATE TABLE small (id integer PRIMARY KEY, v text);
         CREATE TABLE big (id integer PRIMARY KEY, v text);");
    let dir = exported_imported_and_equal(&w);
    let d = dir.to_str().unwrap();
    for table in ["small", "big"] {
        // The same change, of the same length, in the file and in the target.
        let file = dir.join(format!("{table}.csv"));
        let original = std::fs::read(&file).unwrap();
        let text = String::from_utf8(original.clone()).unwrap();
        // Of another size: refused by it before any of it is read.
        std::fs::write(&file, text.replacen("1,apple", "1,apples", 1)).unwrap();
        let o = verify(&w, d, &[]);
        assert_exit(&o, 2);
        assert!(
            stdout(&o).contains("bytes where the manifest says"),
            "{table}: {}",
            stdout(&o)
        );
        // Of the same size, a quote that never closes: refused at the longest record the
        // export wrote (or at the end of the file), never held to the end.
        std::fs::write(&file, text.replacen("1,apple", "1,\"pple", 1)).unwrap();
        let o = verify(&w, d, &[]);
        assert_exit(&o, 2);
        assert!(
            stdout(&o).contains(&format!("{table}.csv")),
            "{}",
            stdout(&o)
        );
        std::fs::write(&file, text.replacen("1,apple", "1,APPLE", 1)).unwrap();
        w.pg(&format!(
            "UPDATE {table} SET v = 'APPLE' || substr(v, 6) WHERE id = 1"
        ));
        let o = verify(&w, d, &[]);
        assert_exit(&o, 2);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let error = report["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("{table}.csv is not the file the export wrote"))
                && error.contains("do not match the manifest's sha256")
                && error.contains("not compared"),
            "{table}: {report}"
        );
        // The live source still tells the truth: the target differs from it.
        let o = verify(&w, d, &["--source"]);
        assert_exit(&o, 1);
        assert!(stdout(&o).contains("id=1, column `v`"), "{}", stdout(&o));
        std::fs::write(&file, original).unwrap();
        w.pg(&format!(
            "UPDATE {table} SET v = 'apple' || substr(v, 6) WHERE id = 1"
        ));
        assert_exit(&verify(&w, d, &[]), 0);
    }
}

/// jsonb keeps a number exactly (a numeric, printed without an exponent): numbers
/// written with one compare by their exact value, never as doubles (which took
/// 1.00000000000000001e0 for 1, and 1e20 for a difference).
#[test]
fn jsonb_numbers_with_an_exponent_compare_exactly() {
    let w = World::new("deep_jsonb_exponent");
    w.mysql(
        r#"CREATE TABLE j (id INT PRIMARY KEY, v LONGTEXT);
           INSERT INTO j VALUES (1, '{"price": 1.00000000000000001e0}'),
                                (2, '[1e20, 1E-7, -2.5e+3, 1.23456789012345678e0]');"#,
    );
    w.pg("CREATE TABLE j (id integer PRIMARY KEY, v jsonb)");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes"]), 0);
    for more in [&[][..], &["--source"]] {
        assert_exit(&verify(&w, d, more), 0);
    }
    // PostgreSQL says these differ: so must verify.
    w.pg(r#"UPDATE j SET v = '{"price": 1}' WHERE id = 1"#);
    for more in [&[][..], &["--source"]] {
        let o = verify(&w, d, more);
        assert_exit(&o, 1);
        assert!(stdout(&o).contains("id=1, column `v`"), "{}", stdout(&o));
    }
}
