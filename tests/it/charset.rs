//! Columns in character sets other than UTF-8 (latin1, cp1251, gbk, ucs2, utf8mb3, and a
//! binary collation): every value the server can convert arrives exactly; a value it
//! cannot convert without loss (it would read `?`) stops the export naming table, column
//! and key, or with `--on-invalid fix` is kept as converted and counted.

use crate::export::{export_dir, load, read_csv};
use crate::harness::*;

const TABLE: &str = "CREATE TABLE cs (
  id INT PRIMARY KEY,
  l1 VARCHAR(20) CHARACTER SET latin1, cy VARCHAR(20) CHARACTER SET cp1251,
  gb VARCHAR(20) CHARACTER SET gbk, u2 VARCHAR(20) CHARACTER SET ucs2,
  u3 VARCHAR(20) CHARACTER SET utf8mb3, bn VARCHAR(20) COLLATE utf8mb4_bin
)";

#[test]
fn every_charset_arrives_exactly() {
    let w = World::new("charset_exact");
    w.mysql(&format!(
        "{TABLE};
         INSERT INTO cs VALUES (1, 'café €', 'Привет', '中文', 'Ωmega', 'é', 'Bin');
         INSERT INTO cs (id, l1) VALUES (2, _latin1 X'81');"
    ));
    w.pg("CREATE TABLE cs (id integer PRIMARY KEY, l1 text, cy text, gb text, u2 text, u3 text, bn text);");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    let charset = |c: &str| {
        m.tables["cs"]
            .columns
            .iter()
            .find(|x| x.name == c)
            .unwrap()
            .charset
            .clone()
    };
    assert_eq!(charset("gb").as_deref(), Some("gbk"));
    assert_eq!(charset("cy").as_deref(), Some("cp1251"));
    assert_eq!(charset("u3"), None, "utf8mb3 always converts");
    // The server maps all 256 latin1 bytes (it was asked): no per-value check.
    assert_eq!(charset("l1"), None);
    assert_exit(&w.run(&["import", dir.to_str().unwrap(), "--yes"]), 0);
    // What PostgreSQL holds is MySQL's own conversion of each value.
    let mine = mysql_rows(
        &w.db,
        "SELECT CONVERT(l1 USING utf8mb4), CONVERT(cy USING utf8mb4), CONVERT(gb USING utf8mb4),
                CONVERT(u2 USING utf8mb4), u3, bn FROM cs ORDER BY id",
    );
    let theirs = w.pg_rows("SELECT l1, cy, gb, u2, u3, bn FROM cs ORDER BY id");
    for (m, p) in mine.iter().zip(&theirs) {
        let m: Vec<Option<String>> = m
            .iter()
            .map(|v| v.as_ref().map(|b| String::from_utf8(b.clone()).unwrap()))
            .collect();
        assert_eq!(&m, p);
    }
    assert_eq!(theirs[0][2].as_deref(), Some("中文"));
    assert_eq!(theirs[1][0].as_deref(), Some("\u{81}"));
}

#[test]
fn a_value_without_a_utf8_equivalent_stops_the_export_or_is_counted() {
    let w = World::new("charset_lossy");
    // gbk A3 80 (pgloader's `funny_string`) and cp1251 98 have no Unicode mapping: MySQL
    // converts them to `?`. A lone surrogate in ucs2 becomes invalid UTF-8.
    w.mysql(&format!(
        "{TABLE};
         INSERT INTO cs (id, gb) VALUES (1, '中文'), (2, _gbk X'A380');
         INSERT INTO cs (id, cy) VALUES (3, _cp1251 X'98');
         INSERT INTO cs (id, u2) VALUES (4, _ucs2 X'D800');"
    ));
    let o = w.run(&["export", &w.db, "--out", "out", "--tables", "cs"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("table `cs`, column `gb`, row id=2: a value with no UTF-8 equivalent"),
        "{err}"
    );
    assert!(err.contains("--on-invalid fix"), "{err}");
    let o = w.run(&["export", &w.db, "--out", "out", "--on-invalid", "fix"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    let stats = |c: &str| {
        m.tables["cs"]
            .columns
            .iter()
            .find(|x| x.name == c)
            .unwrap()
            .stats
            .clone()
    };
    assert_eq!(stats("gb").unconvertible_kept, 1);
    assert_eq!(stats("cy").unconvertible_kept, 1);
    assert_eq!(stats("u2").invalid_utf8_replaced, 1);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("column `gb`: 1 values changed by --on-invalid fix")),
        "{:?}",
        m.warnings
    );
    let (header, recs) = read_csv(&dir, "cs");
    let gb = header.iter().position(|h| h == "gb").unwrap();
    let row2 = recs.iter().find(|r| r[0].as_deref() == Some(b"2")).unwrap();
    assert_eq!(row2[gb].as_deref(), Some(&b"?"[..]));
}

/// `export --on-invalid fix` changed values on purpose: deep verify lists them as
/// accepted changes (count and keys, per column), never silently as equal, exits 0 when
/// the live source shows as many as the export counted, and 1 when it does not.
#[test]
fn values_the_fix_changed_are_accepted_changes_in_deep_verify() {
    let w = World::new("charset_accepted");
    w.mysql(&format!(
        "{TABLE};
         INSERT INTO cs (id, gb, bn) VALUES (1, _gbk X'A380', CONCAT('a', CHAR(0), 'b')),
                                         (2, '中文', 'plain'),
                                         (3, NULL, CONCAT(CHAR(0), 'x'));
         INSERT INTO cs (id, u2) VALUES (4, _ucs2 X'D800');"
    ));
    w.pg("CREATE TABLE cs (id integer PRIMARY KEY, l1 text, cy text, gb text, u2 text, u3 text, bn text);");
    let o = w.run(&["export", &w.db, "--out", "out", "--on-invalid", "fix"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["import", d, "--yes"]), 0);
    assert_eq!(
        w.pg_value("SELECT bn FROM cs WHERE id = 1"),
        Some("ab".into())
    );

    let accepted = |o: &std::process::Output| -> Vec<serde_json::Value> {
        let r: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
        r["deep"][0]["accepted_changes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // Against the live source: the two NULs are seen again, as the export counted them.
    let o = w.run(&["verify", d, "--deep", "--source", "--json"]);
    assert_exit(&o, 0);
    let a = accepted(&o);
    let bn = a.iter().find(|c| c["column"] == "bn").expect("bn listed");
    assert_eq!(
        (
            bn["counted_by_export"].as_u64(),
            bn["seen_in_source"].as_u64()
        ),
        (Some(2), Some(2)),
        "{bn}"
    );
    assert_eq!(bn["keys"], serde_json::json!(["id=1", "id=3"]));
    let gb = a.iter().find(|c| c["column"] == "gb").expect("gb listed");
    assert_eq!(
        (
            gb["unconvertible_kept"].as_u64(),
            gb["seen_in_source"].as_u64()
        ),
        (Some(1), Some(1)),
        "{gb}"
    );
    assert_eq!(gb["keys"], serde_json::json!(["id=1"]));
    let o = w.run(&["verify", d, "--deep", "--source"]);
    assert_exit(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains("accepted changes in `cs`: column `bn`: 2 values changed by --on-invalid fix (2 NULs")
            && text.contains("e.g. id=1; id=3")
            && text.contains("column `gb`: 1 values changed by --on-invalid fix (0 NULs stripped, invalid UTF-8 replaced or JSON \\u0000 dropped; 1 `?` for a character UTF-8 has no equivalent of); the live source shows 1, e.g. id=1"),
        "{text}"
    );
    // Against the files, which hold the fixed values: the export's counts, listed.
    let o = w.run(&["verify", d, "--deep", "--json"]);
    assert_exit(&o, 0);
    let a = accepted(&o);
    let bn = a.iter().find(|c| c["column"] == "bn").unwrap();
    assert_eq!(
        (
            bn["counted_by_export"].as_u64(),
            bn["seen_in_source"].as_u64()
        ),
        (Some(2), None)
    );

    // A third NUL in the source since the export: more changes than were accepted.
    w.mysql("UPDATE cs SET bn = CONCAT('plain', CHAR(0)) WHERE id = 2");
    let o = w.run(&["verify", d, "--deep", "--source"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("the live source shows 3")
            && stdout(&o).contains("differs from the export's count"),
        "{}",
        stdout(&o)
    );
}
