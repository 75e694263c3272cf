//! Exact temporal and decimal values (issue 26, section 5): a source value with more
//! fraction digits than its target column keeps is refused before any write, with the
//! count and the keys, unless the mapping accepts the rounding (`round`); and deep
//! verify compares the exact value each side holds, so a target moved by a microsecond
//! is a difference whatever the source column's own precision.

use crate::export::export_dir;
use crate::harness::*;

const MYSQL: &str = r#"
CREATE TABLE ev (
  id INT PRIMARY KEY, created_at TIMESTAMP(0) NULL, seen DATETIME(6), amount DECIMAL(12,4)
);
INSERT INTO ev VALUES
 (1, '2024-01-01 10:00:00', '2024-01-01 10:00:00.250000', 1.2345),
 (2, '2024-01-02 11:00:00', '2024-01-02 11:00:00', 2.5000),
 (3, NULL, '2024-01-03 12:00:00.999999', 3.1000),
 (4, '2024-01-04 13:00:00', NULL, -7.0050);
"#;

const PG: &str = r#"
CREATE TABLE ev (
  id integer PRIMARY KEY, created_at timestamptz(6), seen timestamp(0), amount numeric(12,2)
);
"#;

fn deep(w: &World, dir: &str, more: &[&str]) -> (std::process::Output, Vec<String>) {
    let mut args = vec!["verify", dir, "--deep", "--json"];
    args.extend_from_slice(more);
    let o = w.run(&args);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_default();
    let diffs = report["differences"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    (o, diffs)
}

#[test]
fn rounding_is_refused_before_any_write_unless_accepted_and_verify_is_exact() {
    let w = World::new("rounding");
    w.mysql(MYSQL);
    w.pg(PG);
    w.pg("INSERT INTO ev VALUES (99, now(), now(), 0)");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();

    // Refused at plan time, both columns named with counts and keys, nothing written.
    let o = w.run(&["import", d, "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    for want in [
        "table `ev`, column `seen`: 2 values have more fraction digits (up to 6) than timestamp(0) without time zone keeps (0), e.g. id=1; id=3",
        "table `ev`, column `amount`: 2 values have more fraction digits (up to 4) than numeric(12,2) keeps (2), e.g. id=1; id=4",
        "round = [\"seen\"]",
        "round = [\"amount\"]",
    ] {
        assert!(err.contains(want), "missing `{want}` in\n{err}");
    }
    assert!(!err.contains("column `created_at`"), "{err}");
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',') FROM ev"),
        Some("99".into())
    );

    // Accepted: loaded, rounded as PostgreSQL rounds, and verified against the rounding.
    let map = w.path().join("round.toml");
    std::fs::write(&map, "[tables.ev]\nround = [\"seen\", \"amount\"]\n").unwrap();
    let map = map.to_str().unwrap();
    let o = w.run(&["import", d, "--yes", "--map", map]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("rounded, as the mapping's `round` accepts"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        w.pg_rows("SELECT amount::text, seen::text FROM ev ORDER BY id"),
        vec![
            vec![Some("1.23".into()), Some("2024-01-01 10:00:00".into())],
            vec![Some("2.50".into()), Some("2024-01-02 11:00:00".into())],
            vec![Some("3.10".into()), Some("2024-01-03 12:00:01".into())],
            vec![Some("-7.01".into()), None],
        ]
    );
    for mode in [&["--map", map][..], &["--source", "--map", map][..]] {
        let (o, diffs) = deep(&w, d, mode);
        assert_exit(&o, 0);
        assert!(diffs.is_empty(), "{mode:?}: {diffs:?}");
    }
    // migrate says it too, once the export's facts are known (its plan came before);
    // both say it in --json.
    for args in [
        vec!["import", d, "--yes", "--map", map, "--json"],
        vec![
            "migrate",
            &w.db,
            "--yes",
            "--map",
            map,
            "--out",
            "out_migrate",
            "--json",
        ],
    ] {
        let o = w.run(&args);
        assert_exit(&o, 0);
        assert!(
            stderr(&o).contains("rounded, as the mapping's `round` accepts"),
            "{}",
            stderr(&o)
        );
        let warnings =
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["warnings"].to_string();
        assert!(
            warnings.contains("rounded, as the mapping's `round` accepts"),
            "{args:?}: {warnings}"
        );
    }

    // A TIMESTAMP(0) value moved by one microsecond in a timestamptz(6) column is a
    // difference (it used to be compared at the lower precision, and pass).
    w.pg(
        "UPDATE ev SET created_at = created_at + interval '1 microsecond' WHERE id = 2;
          UPDATE ev SET seen = seen + interval '1 second' WHERE id = 1",
    );
    for mode in [&["--map", map][..], &["--source", "--map", map][..]] {
        let (o, diffs) = deep(&w, d, mode);
        assert_exit(&o, 1);
        let all = diffs.join("\n");
        assert!(
            all.contains("table `ev`, id=2, column `created_at`"),
            "{mode:?}: {all}"
        );
        assert!(
            all.contains("table `ev`, id=1, column `seen`"),
            "{mode:?}: {all}"
        );
        assert_eq!(diffs.len(), 2, "{mode:?}: {all}");
    }
}

/// A float or double into a `numeric(p, s)` is rounded by PostgreSQL like a decimal:
/// refused before any write, counted and named, unless the mapping accepts it; and then
/// loaded rounded. A value with no more digits than the scale goes through as it is.
#[test]
fn floats_rounded_by_a_numeric_column_are_refused_unless_accepted() {
    let w = World::new("rounding_floats");
    w.mysql(
        "CREATE TABLE m (id INT PRIMARY KEY, d DOUBLE, f FLOAT, ok DOUBLE);
         INSERT INTO m VALUES (1, 1.2345, 1.5, 1.25), (2, 2.5, 2.25, 1e-2);",
    );
    w.pg("CREATE TABLE m (id integer PRIMARY KEY, d numeric(10,2), f numeric(10,2), ok numeric(10,2));");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let before = w.fingerprint();
    let o = w.run(&["import", d, "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("column `d`: 1 value has more fraction digits (up to 4) than numeric(10,2) keeps (2), e.g. id=1"),
        "{err}"
    );
    assert!(
        !err.contains("column `f`") && !err.contains("column `ok`"),
        "{err}"
    );
    assert_eq!(w.fingerprint(), before);
    std::fs::write(w.path().join("r.toml"), "[tables.m]\nround = [\"d\"]\n").unwrap();
    let o = w.run(&["import", d, "--yes", "--map", "r.toml"]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_rows("SELECT d::text, f::text, ok::text FROM m ORDER BY id"),
        vec![
            vec![
                Some("1.23".into()),
                Some("1.50".into()),
                Some("1.25".into())
            ],
            vec![
                Some("2.50".into()),
                Some("2.25".into()),
                Some("0.01".into())
            ],
        ]
    );
}

/// Rounding the mapping accepts can carry a value past the column's digits before the
/// point (`999.96` into `numeric(4, 1)` is `1000.0`): the plan says so beside the
/// rounding, naming the widest value, and PostgreSQL's refusal then keeps nothing.
#[test]
fn a_rounding_that_may_carry_past_the_precision_is_said() {
    let w = World::new("rounding_carry");
    w.mysql(
        "CREATE TABLE m (id INT PRIMARY KEY, r DOUBLE, dd DECIMAL(6,2), fine DECIMAL(6,2));
         INSERT INTO m VALUES (1, 999.96, 999.96, 12.34), (2, 1.25, 5.55, 0.05);",
    );
    w.pg("CREATE TABLE m (id integer PRIMARY KEY, r numeric(4,1), dd numeric(4,1), fine numeric(6,1));");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    std::fs::write(
        w.path().join("r.toml"),
        "[tables.m]\nround = [\"r\", \"dd\", \"fine\"]\n",
    )
    .unwrap();
    let before = w.fingerprint();
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes", "--map", "r.toml"]);
    assert_exit(&o, 2);
    assert_eq!(w.fingerprint(), before);
    let err = stderr(&o);
    for column in ["r", "dd"] {
        let want = format!(
            "column `{column}`: 2 values have more fraction digits (up to 2) than numeric(4,1) keeps (1), e.g. id=1; id=2; rounded, as the mapping's `round` accepts (a value with 3 digits before the point, e.g. id=1, may round up past what numeric(4,1) holds"
        );
        assert!(err.contains(&want), "{want}\n{err}");
    }
    assert!(err.contains("column `fine`: 2 values have more fraction digits (up to 2) than numeric(6,1) keeps (1), e.g. id=1; id=2; rounded, as the mapping's `round` accepts\n"), "{err}");
}
