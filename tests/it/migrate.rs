//! `migrate`: export, import and verify in one run, tables loading while later ones are
//! still being exported, in one transaction. A refusal the facts call for stops the
//! import before that table's COPY and leaves the target unchanged; a structural one is
//! found before anything is read; `--wait-for-require` waits for the schema Job.

use crate::harness::*;

const SOURCE: &str = "
CREATE TABLE author (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);
CREATE TABLE book (id INT AUTO_INCREMENT PRIMARY KEY, author_id INT NOT NULL, title VARCHAR(100), tag CHAR(36));
INSERT INTO author VALUES (1, 'Ada'), (2, 'Alan');
INSERT INTO book (author_id, title, tag) VALUES (1, 'Notes', ''), (2, 'Computing', '0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01');
INSERT INTO book (author_id, title) SELECT 1 + seq % 2, CONCAT('t', seq) FROM seq_1_to_2000;
";

const TARGET: &str = "
CREATE TABLE author (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE book (id serial PRIMARY KEY, author_id integer NOT NULL REFERENCES author (id), title text, tag uuid);
";

fn summary(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn migrate_exports_imports_and_verifies_in_one_run() {
    let w = World::new("migrate_all");
    w.mysql(SOURCE);
    w.pg(TARGET);
    w.pg("INSERT INTO author VALUES (9, 'stale')");
    let o = w.run(&[
        "migrate", &w.db, "--out", "out", "--yes", "--deep", "--json",
    ]);
    assert_exit(&o, 0);
    let s = summary(&o);
    assert_eq!(s["exported_rows"], 2004);
    assert_eq!(
        (&s["ok"], &s["verify"]["ok"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    assert!(
        s["verify"]["deep"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["different"] == 0)
    );
    // The export is kept as the audit trail, complete, and importable on its own.
    let dir = w.path().join(s["export_dir"].as_str().unwrap());
    assert!(
        dir.join("migration_manifest.json").exists(),
        "{}",
        dir.display()
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM book").as_deref(),
        Some("2002")
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(name, ',' ORDER BY id) FROM author")
            .as_deref(),
        Some("Ada,Alan")
    );
    // '' in char(36) -> NULL for the uuid column, decided from the facts of the export.
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM book WHERE tag IS NULL")
            .as_deref(),
        Some("2001")
    );
    // The sequence continues where MySQL's AUTO_INCREMENT would (InnoDB reserves ids
    // for bulk inserts, so that is past the last row).
    let next = mysql_rows(
        &w.db,
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'book'",
    )[0][0]
        .clone()
        .map(|b| String::from_utf8(b).unwrap());
    assert_eq!(w.pg_value("SELECT nextval('book_id_seq')::text"), next);
    let entries = w.run_log_entries();
    assert_eq!(entries.first().unwrap()["status"], "started");
    assert_eq!(entries.last().unwrap()["status"], "completed");
    assert!(
        entries.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("verified value by value")
    );
    // The same export verifies on its own too.
    assert_exit(
        &w.run(&["verify", dir.to_str().unwrap(), "--source", "--deep"]),
        0,
    );
}

#[test]
fn a_refusal_the_facts_call_for_rolls_back_and_keeps_the_export() {
    let w = World::new("migrate_refusal");
    w.mysql(SOURCE);
    w.mysql("INSERT INTO book (author_id, title, tag) VALUES (1, 'bad', 'not-a-uuid-at-all');");
    w.pg(TARGET);
    w.pg("INSERT INTO author VALUES (9, 'stale')");
    let before = w.fingerprint();
    let o = w.run(&["migrate", &w.db, "--out", "out", "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("import refused before loading `book`"),
        "{err}"
    );
    assert!(
        err.contains("1 value is not a UUID but the target column is uuid"),
        "{err}"
    );
    assert!(err.contains("the target is unchanged"), "{err}");
    assert!(err.contains("the export is kept"), "{err}");
    assert_eq!(w.fingerprint(), before);
    let kept: Vec<_> = std::fs::read_dir(w.path().join("out").join(&w.db))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1, "one published export");
}

#[test]
fn a_target_that_cannot_take_the_source_is_refused_before_anything_is_read() {
    let w = World::new("migrate_structure");
    w.mysql(SOURCE);
    w.pg("CREATE TABLE author (id integer PRIMARY KEY);
          CREATE TABLE book (id serial PRIMARY KEY, author_id integer NOT NULL, title text, tag uuid);");
    let o = w.run(&["migrate", &w.db, "--out", "out", "--yes"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("the CSV column `name` has no column of that name"),
        "{}",
        stderr(&o)
    );
    assert!(!w.path().join("out").exists(), "nothing exported");
}

#[test]
fn wait_for_require_waits_for_the_schema_job() {
    let w = World::new("migrate_wait");
    w.mysql(SOURCE);
    w.pg(TARGET);
    w.pg("CREATE TABLE schema_migrations (version text); INSERT INTO schema_migrations VALUES ('1');");
    std::fs::write(
        w.path().join("m.toml"),
        "[import]\nrequire = [\"SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = '2')\"]\n",
    )
    .unwrap();
    // Without waiting: refused at once, naming the requirement; nothing read.
    let o = w.run(&["migrate", &w.db, "--map", "m.toml", "--out", "out", "--yes"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("[import] require does not hold on the target"),
        "{}",
        stderr(&o)
    );
    assert!(!w.path().join("out").exists());
    // The schema Job arrives 2 s later: the migrate started beside it waits, then runs.
    let db = w.db.clone();
    let schema_job = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(2));
        pg_exec(&db, "INSERT INTO schema_migrations VALUES ('2')");
    });
    let o = w.run(&[
        "migrate",
        &w.db,
        "--map",
        "m.toml",
        "--out",
        "out",
        "--yes",
        "--wait-for-require",
        "60s",
    ]);
    schema_job.join().unwrap();
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("waiting for the target's schema"),
        "{}",
        stderr(&o)
    );
}

/// Every bar `migrate` draws names its phase, and none shows a total that is not true:
/// the import's bar over all tables counts rows against the source's estimate, as the
/// export's does (it used to start full at `0 B/0 B`, later show `153.75 MiB/0 B`, and
/// then a byte total that grew as the files were written).
#[test]
fn migrate_draws_one_bar_per_phase_with_true_totals() {
    let w = World::new("migrate_bars");
    w.mysql(
        "CREATE TABLE wide (id INT PRIMARY KEY, body VARCHAR(200));
         CREATE TABLE small (id INT PRIMARY KEY);
         INSERT INTO small VALUES (1);",
    );
    w.mysql(&mysql_fill_sql(
        "wide",
        "id, body",
        "n, REPEAT('x', 150)",
        400_000,
    ));
    w.pg("CREATE TABLE wide (id integer PRIMARY KEY, body text); CREATE TABLE small (id integer PRIMARY KEY);");
    let o = w
        .in_terminal(&format!("migrate {} --out out --yes", w.db))
        .output()
        .expect("run migrate on a terminal");
    let screen = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{screen}");
    assert!(
        screen.contains("export: all tables") && screen.contains("import: all tables"),
        "a bar per phase, named by its phase: {screen}"
    );
    assert!(
        !screen.contains("/0 B "),
        "a bar with a total of zero bytes: {screen}"
    );
    for line in screen.split(['\r', '\n']) {
        assert!(
            !line.contains(" all tables") || line.contains("export:") || line.contains("import:"),
            "an unnamed all-tables bar: {line}"
        );
        assert!(
            !line.contains("import: all tables") || line.contains(" rows (~"),
            "the import's bar over all tables counts rows against the estimate: {line}"
        );
    }
    // It moves while the big table is sent, not only when a table is done.
    let midway = screen.split(['\r', '\n']).any(|line| {
        line.contains("import: all tables")
            && line
                .split_whitespace()
                .filter_map(|w| w.replace(',', "").parse::<u64>().ok())
                .any(|n| (1_000..400_000).contains(&n))
    });
    assert!(
        midway,
        "the import's bar moved midway through `wide`: {screen}"
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM wide").as_deref(),
        Some("400000")
    );
}

/// migrate plans before any file is written: a table it planned as binary COPY whose
/// files then hold a record past the binary converter's bound goes as CSV, and the run
/// says so; the plan marks the guess, and the last line says what the time covers.
#[test]
fn a_table_planned_binary_that_goes_as_csv_is_said_so() {
    let w = World::new("migrate_as_csv");
    w.mysql(
        "CREATE TABLE doc (id INT PRIMARY KEY, body LONGTEXT);
         INSERT INTO doc VALUES (1, REPEAT('x', 5000000)), (2, 'short');",
    );
    w.pg("CREATE TABLE doc (id integer PRIMARY KEY, body text)");
    let o = w.run(&["migrate", &w.db, "--yes", "--deep"]);
    assert_exit(&o, 0);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("binary*"), "{err}");
    assert!(
        err.contains(
            "binary*: binary COPY, or CSV for a table whose files hold a record past 4.00 MiB"
        ),
        "{err}"
    );
    assert!(
        err.contains("as CSV: `doc`: doc.csv holds a record of 5000003 bytes, longer than the binary converter takes (4194304 bytes)"),
        "{err}"
    );
    assert!(out.contains(", verified value by value: "), "{out}");
    assert_eq!(
        w.pg_value("SELECT length(body)::text FROM doc WHERE id = 1"),
        Some("5000000".into())
    );
}

/// Read in several parts, the long record in the last: the line names that part and
/// its record, not the first part's.
#[test]
fn the_as_csv_line_names_the_part_that_holds_the_long_record() {
    let w = World::new("migrate_as_csv_parts");
    w.mysql(
        "CREATE TABLE doc (id INT PRIMARY KEY, body LONGTEXT);
         INSERT INTO doc SELECT seq, 'short' FROM seq_1_to_3000;
         INSERT INTO doc VALUES (9000, REPEAT('x', 5000000));",
    );
    w.pg("CREATE TABLE doc (id integer PRIMARY KEY, body text)");
    let o = w.run(&[
        "migrate",
        &w.db,
        "--yes",
        "--deep",
        "--split-rows",
        "1000",
        "--jobs",
        "4",
    ]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("as CSV: `doc`:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("doc.part-004.csv holds a record of 5000006 bytes"),
        "{line}"
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM doc").as_deref(),
        Some("3001")
    );
}

/// migrate plans before the export has counted anything: what a table's load does to
/// its values is said once its files are complete, as import's plan says it.
#[test]
fn what_a_load_does_to_the_values_is_said_once_the_files_are_complete() {
    let w = World::new("migrate_adapt_said");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, tag VARCHAR(40));
         INSERT INTO t VALUES (1, ''), (2, '0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01');",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, tag uuid)");
    let o = w.run(&["migrate", &w.db, "--out", "out", "--yes", "--deep"]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("adapt: `t`.`tag`: '' -> NULL (1 value was '')"),
        "{err}"
    );
    let log = std::fs::read_dir(w.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    assert!(log.contains("adapt: `t`.`tag`: '' -> NULL"), "{log}");
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM t WHERE tag IS NULL")
            .as_deref(),
        Some("1")
    );
}
