//! Every constraint violation at once (docs/DESIGN.md "Collisions, all at once"): when a
//! load breaks a constraint of the target, the import (and `--rehearse`, and `migrate`)
//! lists every row that breaks any PRIMARY KEY, UNIQUE, EXCLUDE, CHECK or NOT NULL of
//! the loaded tables, by dataset and source key, and the target keeps what it had.

use crate::export::export_dir;
use crate::harness::*;

/// V1's three person tables and an admin table, folded the natural way (one dataset per
/// table into "User"): emails collide across tables, ids collide between a staged and a
/// directly copied dataset, a blank email breaks a CHECK and missing ones a NOT NULL.
const V1: &str = "
CREATE TABLE Teacher (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL, school VARCHAR(40));
CREATE TABLE Parent (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL);
CREATE TABLE Student (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL, grade INT);
CREATE TABLE Admin (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL);
INSERT INTO Teacher VALUES (1, 'Jane@X.org', 'Jane Doe', 'North'), (2, NULL, 'Tom', 'South'), (3, 'tim@x.org', 'Tim', 'East');
INSERT INTO Parent VALUES (1, 'jane@x.org', 'Jane Doe'), (2, ' ', 'Ann Lee Park'), (3, 'TIM@x.org', 'Tim Senior');
INSERT INTO Student VALUES (1, 'JANE@x.org', 'Jane Junior', 3), (2, NULL, 'Bo Lee', 5);
INSERT INTO Admin VALUES (1, 'root@x.org', 'Root');
";

const V2: &str = r#"
CREATE TABLE "User" (id integer PRIMARY KEY, email text NOT NULL UNIQUE CHECK (email LIKE '%@%'),
  first_name text, role text NOT NULL);
INSERT INTO "User" VALUES (999, 'kept@x.org', 'Kept', 'admin');
"#;

const MAP: &str = r#"
[tables.Teacher]
target = "User"
drop = ["school"]
columns = { name = "first_name" }
set = { email = "lower(email)", role = "'teacher'" }

[tables.Parent]
target = "User"
columns = { name = "first_name" }
set = { id = "id::integer + 100000", email = "lower(email)", role = "'parent'" }

[tables.Student]
target = "User"
drop = ["grade"]
columns = { name = "first_name" }
set = { id = "id::integer + 200000", email = "lower(email)", role = "'student'" }

# Copied as it is (a constant is not a per-row `set`): its id 1 is also Teacher's.
[tables.Admin]
target = "User"
columns = { name = "first_name" }
set = { role = "'admin'" }
"#;

const LINES: [&str; 5] = [
    r#"`User` PRIMARY KEY "User_pkey" (id): 2 rows share 1 value; e.g. 1 from Admin id=1 and Teacher id=1"#,
    r#"`User` UNIQUE "User_email_key" (email): 5 rows share 2 values; e.g. 'jane@x.org' from Parent id=1, Student id=1 and Teacher id=1; 'tim@x.org' from Parent id=3 and Teacher id=3"#,
    r#"`User` CHECK "User_email_check" ((email ~~ '%@%'::text)): 1 row; e.g. Parent id=2"#,
    r#"`User` NOT NULL "email": 2 rows; e.g. Student id=2; Teacher id=2"#,
    "the rows loaded break 4 constraints of the target",
];

fn assert_listed(err: &str) {
    for line in LINES {
        assert!(err.contains(line), "missing:\n{line}\nin:\n{err}");
    }
    for hint in [
        r#"hint: rows that share a key need their own values: e.g. `[tables.Teacher]` `set = { email = "..." }` gives its rows others"#,
        r#"`[tables.Student]` `set = { email = "COALESCE(email, ...)" }` gives it a value where it has none"#,
        "a row a CHECK refuses: a `set` in `[tables.Parent]` makes its value one the CHECK accepts",
    ] {
        assert!(err.contains(hint), "missing:\n{hint}\nin:\n{err}");
    }
}

/// `--rehearse`, `import` and `migrate` list every violation of the natural fold at once
/// (a staged dataset's source key, a copied one's, a CHECK, a NOT NULL), and the target
/// keeps its row; the run log records the failure with the list.
#[test]
fn a_colliding_fold_lists_every_violation_at_once_on_every_path() {
    let w = World::new("collisions_fold");
    w.mysql(V1);
    w.pg(V2);
    let map = w.path().join("natural.toml");
    std::fs::write(&map, MAP).unwrap();
    let map = map.to_str().unwrap();
    let o = w.run(&["export", &w.db, "--map", map, "--out", "fold"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let kept = || w.pg_rows(r#"SELECT string_agg(id || ' ' || email, ',') FROM "User""#);
    let before = kept();

    let o = w.run(&["import", d, "--map", map, "--rehearse"]);
    assert_exit(&o, 2);
    assert_listed(&stderr(&o));
    assert!(stderr(&o).contains("rehearsal"), "{}", stderr(&o));
    assert_eq!(kept(), before);

    let o = w.run(&["import", d, "--map", map, "--yes", "--json"]);
    assert_exit(&o, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let json = format!(
        "{}\nhint: {}",
        v["error"].as_str().unwrap_or_default(),
        v["hint"].as_str().unwrap_or_default()
    );
    assert_listed(&json);
    assert_eq!(kept(), before);
    let last = w.run_log_entries().pop().unwrap();
    assert_eq!(last["status"], "rolled_back", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains(LINES[1]),
        "{last}"
    );

    let o = w.run(&[
        "migrate",
        &w.db,
        "--map",
        map,
        "--out",
        "fold_migrate",
        "--yes",
    ]);
    assert_exit(&o, 2);
    assert_listed(&stderr(&o));
    assert_eq!(kept(), before);

    // Each import's journal (beside the run log) shows the diagnosis and what it found.
    let journals: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            (name.starts_with("import_") && name.ends_with(".log"))
                .then(|| std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    assert_eq!(journals.len(), 3);
    for j in &journals {
        assert!(
            j.contains("DIAGNOSIS: the rows loaded break 4 constraints"),
            "{j}"
        );
    }
}

/// An exclusion constraint lists its conflicting pairs; a partial unique index sees only
/// the rows of its predicate; a key of two columns names both.
#[test]
fn exclusions_partial_indexes_and_composite_keys_are_listed_as_the_target_sees_them() {
    let w = World::new("collisions_kinds");
    w.mysql(
        "CREATE TABLE booking (room INT, day INT, seq INT, active TINYINT(1), code VARCHAR(10),
                               PRIMARY KEY (room, seq));
         INSERT INTO booking VALUES (1, 5, 1, 1, 'a'), (1, 5, 2, 1, 'b'), (2, 5, 1, 0, 'x'),
                                    (2, 6, 2, 0, 'x'), (3, 7, 1, 1, 'y'), (3, 8, 2, 1, 'y');",
    );
    w.pg("CREATE EXTENSION IF NOT EXISTS btree_gist;
         CREATE TABLE booking (room integer, day integer, seq integer, active boolean, code text,
           PRIMARY KEY (room, seq), EXCLUDE USING gist (room WITH =, day WITH =));
         CREATE UNIQUE INDEX booking_code ON booking (code) WHERE active;");
    let o = w.run(&["export", &w.db, "--out", "kinds"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let o = w.run(&["import", dir.to_str().unwrap(), "--rehearse"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    for line in [
        r#"`booking` EXCLUDE "booking_room_day_excl" (room WITH =, day WITH =): 1 pair in conflict; e.g. booking (room=1, seq=1) and booking (room=1, seq=2)"#,
        r#"`booking` UNIQUE INDEX "booking_code" (code): 2 rows share 1 value; e.g. 'y' from booking (room=3, seq=1) and booking (room=3, seq=2)"#,
    ] {
        assert!(err.contains(line), "missing:\n{line}\nin:\n{err}");
    }
    assert!(!err.contains("'x'"), "{err}");
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM booking").as_deref(),
        Some("0")
    );
}

/// A DEFERRABLE unique constraint is checked by a trigger the replica role never fires:
/// the import checks it itself before COMMIT, refuses duplicates, and lists them.
#[test]
fn a_deferrable_unique_constraint_is_checked_before_commit() {
    let w = World::new("collisions_deferred");
    w.mysql(
        "CREATE TABLE dd (id INT PRIMARY KEY, code VARCHAR(5));
         INSERT INTO dd VALUES (1, 'x'), (2, 'x'), (3, 'y');",
    );
    w.pg("CREATE TABLE dd (id integer PRIMARY KEY, code text,
            CONSTRAINT dd_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED);
          INSERT INTO dd VALUES (9, 'kept');");
    let o = w.run(&["export", &w.db, "--out", "deferred"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    for args in [vec!["--rehearse"], vec!["--yes"]] {
        let mut all = vec!["import", dir.to_str().unwrap()];
        all.extend(args);
        let o = w.run(&all);
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains(r#"`dd` UNIQUE "dd_code" (code): 2 rows share 1 value; e.g. 'x' from dd id=1 and dd id=2"#),
            "{err}"
        );
        assert_eq!(
            w.pg_value("SELECT string_agg(id || code, ',') FROM dd")
                .as_deref(),
            Some("9kept")
        );
    }
    assert_eq!(w.run_log_statuses().last().unwrap(), "rolled_back");
    // Without the duplicate it loads, the constraint as it was.
    w.mysql("UPDATE dd SET code = 'z' WHERE id = 2");
    let o = w.run(&["export", &w.db, "--out", "deferred_ok"]);
    assert_exit(&o, 0);
    let o = w.run(&[
        "import",
        export_dir(&o, w.path()).to_str().unwrap(),
        "--yes",
    ]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(id || code, ',' ORDER BY id) FROM dd")
            .as_deref(),
        Some("1x,2z,3y")
    );
}

/// Every shape of DEFERRABLE constraint is checked by the server itself before COMMIT
/// (an exclusion over an expression, NULLS NOT DISTINCT, a name holding the DO block's
/// quote), and a table named like the listing's own aliases is listed too.
#[test]
fn deferrable_constraints_of_every_shape_refuse_and_odd_names_are_listed() {
    let w = World::new("collisions_shapes");
    w.pg("CREATE EXTENSION IF NOT EXISTS btree_gist");
    // (source table, rows, target DDL, what the error must say)
    w.pg("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)");
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "CREATE TABLE bk (id INT PRIMARY KEY, room INT, s INT, e INT)",
            "INSERT INTO bk VALUES (1, 1, 1, 5), (2, 1, 3, 8)",
            "CREATE TABLE bk (id integer PRIMARY KEY, room integer, s integer, e integer,
               CONSTRAINT bk_overlap EXCLUDE USING gist (room WITH =, int4range(s, e) WITH &&)
               DEFERRABLE INITIALLY DEFERRED)",
            r#"rows break DEFERRABLE constraint "bk_overlap" of "bk""#,
        ),
        (
            "CREATE TABLE nn (id INT PRIMARY KEY, code VARCHAR(5))",
            "INSERT INTO nn VALUES (1, NULL), (2, NULL), (3, 'a')",
            "CREATE TABLE nn (id integer PRIMARY KEY, code text,
               CONSTRAINT nn_code UNIQUE NULLS NOT DISTINCT (code) DEFERRABLE)",
            r#"`nn` UNIQUE "nn_code" (code): 2 rows share 1 value; e.g. NULL from nn id=1 and nn id=2"#,
        ),
        (
            "CREATE TABLE `c$pgconverge$d` (id INT PRIMARY KEY, code VARCHAR(5))",
            "INSERT INTO `c$pgconverge$d` VALUES (1, 'x'), (2, 'x'), (3, 'y')",
            r#"CREATE TABLE "c$pgconverge$d" (id integer PRIMARY KEY, code text,
               CONSTRAINT cd_code UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)"#,
            r#"`c$pgconverge$d` UNIQUE "cd_code" (code): 2 rows share 1 value"#,
        ),
        (
            "CREATE TABLE e (id INT PRIMARY KEY, code VARCHAR(5))",
            "INSERT INTO e VALUES (1, 'x'), (2, 'x')",
            "CREATE TABLE e (id integer PRIMARY KEY, code text UNIQUE)",
            r#"`e` UNIQUE "e_code_key" (code): 2 rows share 1 value; e.g. 'x' from e id=1 and e id=2"#,
        ),
        // A unique index under a case-insensitive collation: 'x' and 'X' are one key.
        (
            "CREATE TABLE ci_t (id INT PRIMARY KEY, d VARCHAR(5))",
            "INSERT INTO ci_t VALUES (1, 'x'), (2, 'X'), (3, 'y')",
            "CREATE TABLE ci_t (id integer PRIMARY KEY, d text); CREATE UNIQUE INDEX ci_t_d ON ci_t ((d COLLATE ci))",
            r#"`ci_t` UNIQUE INDEX "ci_t_d" (d COLLATE public.ci): 2 rows share 1 value"#,
        ),
        // A partition's own unique index, attached to nothing of the parent's.
        (
            "CREATE TABLE pt (id INT PRIMARY KEY, day DATE, code VARCHAR(5))",
            "INSERT INTO pt VALUES (1, '2024-02-01', 'x'), (2, '2024-03-01', 'x')",
            "CREATE TABLE pt (id integer, day date, code text) PARTITION BY RANGE (day);
             CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE UNIQUE INDEX pt1_code ON pt1 (code)",
            r#"`pt` UNIQUE INDEX "pt1_code" of partition "pt1" (code): 2 rows share 1 value; e.g. 'x' from pt id=1 and pt id=2"#,
        ),
    ];
    for (n, (source, rows, target, want)) in cases.iter().enumerate() {
        let table = source.split_whitespace().nth(2).unwrap().trim_matches('`');
        w.mysql(&format!("{source}; {rows};"));
        w.pg(target);
        let o = w.run(&[
            "export",
            &w.db,
            "--out",
            &format!("shape_{n}"),
            "--tables",
            table,
        ]);
        assert_exit(&o, 0);
        let o = w.run(&[
            "import",
            export_dir(&o, w.path()).to_str().unwrap(),
            "--yes",
        ]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains(want),
            "case {n}: {want}\n{}",
            stderr(&o)
        );
        let count = format!(
            "SELECT count(*)::text FROM \"{}\"",
            table.replace('"', "\"\"")
        );
        assert_eq!(w.pg_value(&count).as_deref(), Some("0"), "case {n}");
    }
}

/// The listing meets a table the binary path cannot take exactly (` 12` into an integer,
/// which the first load never reached): it loads that table as CSV, as the load does,
/// and lists the violations; the journal reads as SQL, every rolled-back transaction
/// ended by its ROLLBACK with why.
#[test]
fn the_listing_loads_as_csv_what_the_binary_path_cannot_take() {
    let w = World::new("collisions_csv");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(20));
         INSERT INTO t VALUES (1, 'abc'), (2, 'toolong'), (3, 'waytoolong');
         CREATE TABLE t2 (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO t2 VALUES (1, ' 12'), (2, '7');",
    );
    w.pg(
        "CREATE TABLE t (id integer PRIMARY KEY, s text CHECK (length(s) < 5));
         CREATE TABLE t2 (id integer PRIMARY KEY, v integer);",
    );
    let o = w.run(&["export", &w.db, "--out", "out", "-q"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let before = w.fingerprint();
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("`t` CHECK \"t_s_check\" ((length(s) < 5)): 2 rows; e.g. t id=2; t id=3"),
        "{err}"
    );
    assert!(!err.contains("could not list every violation"), "{err}");
    assert_eq!(w.fingerprint(), before);
    let sql = w.journal_sql();
    assert!(
        sql.contains("\nROLLBACK;  -- loading table `t` from t.csv at row id=2: ERROR (23514)"),
        "{sql}"
    );
    assert!(
        sql.contains("\nROLLBACK;  -- the listing: table `t2`, t2.csv: row 1, column `v`")
            && sql.contains("starting over with `t2` loaded as CSV"),
        "{sql}"
    );
    assert_eq!(
        sql.matches("ROLLBACK;  -- the listing of what breaks a constraint")
            .count(),
        1,
        "{sql}"
    );
    assert!(
        sql.ends_with("-- import rolled back: the target is unchanged\n"),
        "{sql}"
    );
    // Every comment follows its statement's `;`.
    for line in sql.lines().filter(|l| l.contains("  -- ")) {
        assert!(line.contains(";  -- ") || line.starts_with("-- "), "{line}");
    }
}
