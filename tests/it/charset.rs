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
