//! `export` against the real MariaDB: every type and nasty value read back field by
//! field, profiles, refusals, the snapshot under a concurrent writer, and SIGKILL.

use std::path::{Path, PathBuf};

use pgconverge::codec::csv::{Field, NullStyle, read_all};
use pgconverge::store::export_dir::ExportDir;
use pgconverge::store::manifest::{Loaded, Manifest};
use pgconverge::store::open;

use crate::fixture;
use crate::harness::*;

/// The export directory printed as the last stdout line.
pub fn export_dir(o: &std::process::Output, cwd: &Path) -> PathBuf {
    let out = stdout(o);
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("export: "))
        .unwrap_or_else(|| panic!("no `export:` line in\n{out}\n{}", stderr(o)));
    cwd.join(line)
}

pub fn load(dir: &Path) -> Manifest {
    match open::manifest(&ExportDir::at(dir)).unwrap() {
        Loaded::Current(m) => *m,
        Loaded::Legacy { .. } => panic!("legacy manifest"),
    }
}

/// Header and records of one CSV file.
pub fn read_csv(dir: &Path, table: &str) -> (Vec<String>, Vec<Vec<Field>>) {
    let data = std::fs::read(dir.join(format!("{table}.csv"))).unwrap();
    let mut recs = read_all(&data, NullStyle::Marker).unwrap();
    let header = recs
        .remove(0)
        .into_iter()
        .map(|f| String::from_utf8(f.unwrap()).unwrap())
        .collect();
    (header, recs)
}

fn s(v: &str) -> Field {
    Some(v.as_bytes().to_vec())
}

#[test]
fn every_type_and_nasty_value_comes_out_exactly() {
    let w = World::new("export_every_type");
    w.mysql(fixture::MYSQL);
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    assert!(
        dir.starts_with(w.path().join("out").join(&w.db)),
        "{}",
        dir.display()
    );
    let m = load(&dir);

    // Files, counts and checksums.
    let mut names: Vec<&String> = m.tables.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "empty_table",
            "every_type",
            "order",
            "query-result-cache",
            "user"
        ]
    );
    for t in m.tables.values() {
        let scanned =
            pgconverge::store::csvfile::scan(&dir.join(&t.file), NullStyle::Marker, None, |_| {})
                .unwrap();
        assert_eq!(
            (scanned.bytes, scanned.sha256.as_str(), scanned.records),
            (t.bytes, t.sha256.as_str(), t.rows),
            "{}",
            t.name
        );
        let (_, recs) = read_csv(&dir, &t.name);
        assert_eq!(recs.len() as u64, t.rows, "{}", t.name);
    }
    assert_eq!(m.summary.total_rows, 5 + 2 + 2 + 1);
    assert_eq!(m.export_info.source_database, w.db);
    assert_eq!(m.export_info.source_type, "mysql");

    // Generated columns are not exported but listed.
    let et = &m.tables["every_type"];
    assert_eq!(et.generated_columns, ["gen_v", "gen_s"]);
    let (header, recs) = read_csv(&dir, "every_type");
    assert!(!header.iter().any(|h| h.starts_with("gen_")));
    assert_eq!(header.len(), 36);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = |id: &str| {
        recs.iter()
            .find(|r| r[0] == s(id))
            .unwrap_or_else(|| panic!("row {id}"))
    };

    // Verbatim and text columns equal MySQL's own text form, byte for byte.
    let mysql_cols = [
        "ti",
        "ti_u",
        "si",
        "mi",
        "i",
        "i_u",
        "bi",
        "bi_u",
        "dec65",
        "CAST(f AS DOUBLE)",
        "d",
        "tm",
        "yr",
        "c10",
        "vc",
        "tt",
        "tx",
        "mt",
        "lt",
        "bool1",
        "en",
        "st",
        "js",
    ];
    let source = mysql_rows(
        &w.db,
        &format!(
            "SELECT id, {} FROM every_type ORDER BY id",
            mysql_cols.join(", ")
        ),
    );
    assert_eq!(source.len(), 5);
    for srow in &source {
        let id = String::from_utf8(srow[0].clone().unwrap()).unwrap();
        for (k, c) in mysql_cols.iter().enumerate() {
            let c = c
                .trim_start_matches("CAST(")
                .trim_end_matches(" AS DOUBLE)");
            assert_eq!(row(&id)[col(c)], srow[k + 1], "row {id} column {c}");
        }
    }

    // The explicit nasty cases.
    let cases: &[(&str, &str, Field)] = &[
        ("2", "bi_u", s("18446744073709551615")),
        ("1", "bi", s("-9223372036854775808")),
        (
            "2",
            "dec65",
            s("99999999999999999999999999999999999.999999999999999999999999999999"),
        ),
        ("3", "dec65", s("0.000000000000000000000000000001")),
        ("1", "ts", s("1970-01-01 00:00:01.000000")),
        ("2", "ts", s("2038-01-19 03:14:07.999999")),
        ("2", "dtm", s("9999-12-31 23:59:59.999999")),
        ("5", "dt", None),
        ("5", "dtm", None),
        ("5", "ts", None),
        ("3", "uuid", None),
        ("1", "uuid", s("6f9619ff-8b86-d011-b42d-00cf4fc964ff")),
        ("5", "uuid", s("not-a-uuid")),
        ("4", "uuid", None),
        ("3", "vc", s("")),
        ("4", "vc", None),
        ("3", "tt", s("\\N")),
        ("5", "tt", s("\\.")),
        ("3", "tx", s("say \"hi\", then\r\nleave")),
        ("3", "mt", s("tab\there\\back\\\\slash")),
        ("3", "lt", s("emoji 😀 𝄞 é")),
        ("5", "c10", s(" padded")),
        ("5", "vc", s(" lead and trail ")),
        ("5", "lt", s("line1\nline2")),
        ("1", "vb", s("\\x")),
        ("4", "vb", None),
        ("1", "bn", s("\\x00000000")),
        ("2", "vb", s("\\x00ff00ff00ff00ff00ff00ff00ff00ff")),
        ("5", "bn", s("\\x0a0d2c22")),
        ("5", "vb", s("\\x5c4e")),
        ("3", "lb", s("\\x")),
        ("2", "lb", s("\\xdeadbeef")),
        ("1", "b1", s("0")),
        ("2", "b1", s("1")),
        ("2", "b10", s("1111111111")),
        ("3", "b10", s("1000000101")),
        ("5", "b10", s("0000000001")),
        ("4", "b10", None),
        ("3", "bool1", s("2")),
        ("3", "en", s("")),
        ("2", "st", s("x,y,z")),
    ];
    for (id, c, want) in cases {
        assert_eq!(&row(id)[col(c)], want, "row {id} column {c}");
    }
    assert_eq!(row("2")[col("bl")].as_ref().unwrap().len(), 2 + 4000);

    // Rewrites are counted per column; non-UUIDs are reported with their key.
    let stats = |c: &str| et.columns.iter().find(|x| x.name == c).unwrap();
    assert_eq!(stats("uuid").stats.empty_uuid_to_null, 1);
    assert_eq!(stats("uuid").stats.non_uuid, 1);
    assert_eq!(stats("uuid").non_uuid_samples, ["id=5"]);
    assert_eq!(stats("uuid").stats.nulls_written, 2);
    assert_eq!(stats("dt").stats.zero_date_to_null, 1);
    assert_eq!(stats("vc").stats.nulls_written, 1);
    assert_eq!(stats("uuid").rule, "uuid36");
    assert_eq!(stats("lb").rule, "hex");
    assert_eq!(stats("js").rule, "json");
    assert!(
        et.warnings
            .iter()
            .any(|w| w.contains("`uuid`") && w.contains("id=5"))
    );

    // Reserved words, camelCase, '' in char(36), an empty table.
    let (uh, urecs) = read_csv(&dir, "user");
    assert_eq!(
        uh,
        ["id", "nameID", "firstName", "accountID", "createdDate"]
    );
    let alice = urecs.iter().find(|r| r[1] == s("alice")).unwrap();
    assert_eq!(alice[3], None);
    assert_eq!(m.tables["user"].primary_key, ["id"]);
    assert_eq!(
        std::fs::read(dir.join("empty_table.csv")).unwrap(),
        b"id,note\n"
    );
    assert_eq!(m.tables["empty_table"].rows, 0);
    assert_eq!(read_csv(&dir, "order").1.len(), 2);

    // Run log: started and completed, with the directory and counts.
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.first().unwrap()["status"], "started");
    let done = entries.last().unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["rows"], 10);
    assert_eq!(done["tables"], 5);
}

#[test]
fn profile_alkemio_excludes_and_base64s_whiteboards() {
    let w = World::new("export_profile_alkemio");
    w.mysql(
        "CREATE TABLE whiteboard (id CHAR(36) PRIMARY KEY, content LONGTEXT CHARACTER SET latin1);
         INSERT INTO whiteboard VALUES ('11111111-1111-1111-1111-111111111111', UNHEX('789C4B4C4A0600024D0127')),
                                       ('22222222-2222-2222-2222-222222222222', NULL);
         CREATE TABLE callout_contribution_defaults (id CHAR(36) PRIMARY KEY, `whiteboardContent` TEXT CHARACTER SET latin1);
         INSERT INTO callout_contribution_defaults VALUES ('11111111-1111-1111-1111-111111111111', UNHEX('00FF'));
         CREATE TABLE migrations_typeorm (id INT PRIMARY KEY);
         CREATE TABLE `query-result-cache` (id INT PRIMARY KEY);
         CREATE TABLE space (id CHAR(36) PRIMARY KEY);",
    );
    let o = w
        .cmd()
        .env("ALKEMIO_DB", &w.db)
        .args(["export", "alkemio"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    assert!(
        dir.starts_with(w.path().join("csv_exports/alkemio")),
        "{}",
        dir.display()
    );
    let m = load(&dir);
    assert_eq!(m.profile, "alkemio");
    let mut names: Vec<&String> = m.tables.keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["callout_contribution_defaults", "space", "whiteboard"]
    );
    assert!(m.excluded_tables.contains_key("migrations_typeorm"));
    assert!(m.excluded_tables.contains_key("query-result-cache"));
    assert!(!dir.join("migrations_typeorm.csv").exists());

    use base64::Engine;
    let (_, recs) = read_csv(&dir, "whiteboard");
    let b64 = recs
        .iter()
        .find(|r| r[0] == s("11111111-1111-1111-1111-111111111111"))
        .unwrap()[1]
        .clone()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    assert_eq!(hex::encode_upper(bytes), "789C4B4C4A0600024D0127");
    assert!(recs.iter().any(|r| r[1].is_none()));
    let (_, recs) = read_csv(&dir, "callout_contribution_defaults");
    assert_eq!(recs[0][1], s("AP8="));
    let col = m.tables["whiteboard"]
        .columns
        .iter()
        .find(|c| c.name == "content")
        .unwrap();
    assert_eq!((col.rule.as_str(), col.stats.base64), ("base64", 1));
}

#[test]
fn a_value_postgres_refuses_stops_the_export_naming_table_column_and_key() {
    let w = World::new("export_refuses_nul");
    w.mysql(
        "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(50), doc JSON);
         INSERT INTO notes VALUES (1, 'fine', '[]'), (7, CONCAT('a', CHAR(0), 'b'), '[]'), (8, 'ok', '[\"x\\\\u0000y\"]');",
    );
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("table `notes`, column `body`, row id=7"),
        "{err}"
    );
    assert!(
        err.contains("hint:") && err.contains("--on-invalid fix"),
        "{err}"
    );
    // Nothing is kept: no final directory, no partial one.
    let parent = w.path().join("out").join(&w.db);
    let left: Vec<_> = std::fs::read_dir(&parent).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    assert!(log.lines().last().unwrap().contains("\"failed\""));

    let o = w.run(&["export", &w.db, "--out", "out", "--on-invalid", "fix"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    let body = m.tables["notes"]
        .columns
        .iter()
        .find(|c| c.name == "body")
        .unwrap();
    assert_eq!(body.stats.nul_stripped, 1);
    let doc = m.tables["notes"]
        .columns
        .iter()
        .find(|c| c.name == "doc")
        .unwrap();
    assert_eq!((doc.rule.as_str(), doc.stats.json_nul_dropped), ("json", 1));
    let (_, recs) = read_csv(&dir, "notes");
    let r7 = recs.iter().find(|r| r[0] == s("7")).unwrap();
    assert_eq!(r7[1], s("ab"));
    let r8 = recs.iter().find(|r| r[0] == s("8")).unwrap();
    assert_eq!(r8[2], s("[\"xy\"]"));
    assert!(m.warnings.iter().any(|w| w.contains("--on-invalid fix")));
}

#[test]
fn passwords_never_reach_output_manifest_or_run_log() {
    let w = World::new("export_password");
    let user = format!(
        "{}u_{}",
        test_prefix(),
        &w.db[w.db.len().saturating_sub(20)..]
    );
    let secret = "Pw-never-shown-91";
    mysql_exec(
        None,
        &format!(
            "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}';
             GRANT SELECT, LOCK TABLES ON `{}`.* TO '{user}'@'%';",
            w.db
        ),
    );
    struct DropUser(String);
    impl Drop for DropUser {
        fn drop(&mut self) {
            let _ = std::panic::catch_unwind(|| {
                mysql_exec(None, &format!("DROP USER IF EXISTS '{}'@'%'", self.0))
            });
        }
    }
    let _guard = DropUser(user.clone());
    w.mysql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);");
    let o = w
        .cmd()
        .env(
            "MYSQL_URL",
            format!("mysql://{user}:{secret}@127.0.0.1:3306"),
        )
        .args(["export", &w.db, "--out", "out", "--mysql-password", secret])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let manifest = std::fs::read_to_string(dir.join("migration_manifest.json")).unwrap();
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    for (what, text) in [
        ("stdout", stdout(&o)),
        ("stderr", stderr(&o)),
        ("manifest", manifest),
        ("run log", log),
    ] {
        assert!(!text.contains(secret), "password in {what}:\n{text}");
    }
}

#[test]
fn a_concurrent_writer_does_not_change_what_the_export_contains() {
    let w = World::new("export_snapshot");
    w.mysql(
        "CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, txn INT NOT NULL, pad VARCHAR(200));
         CREATE TABLE a (txn INT PRIMARY KEY, pad VARCHAR(200));
         CREATE TABLE b (txn INT PRIMARY KEY, pad VARCHAR(200));",
    );
    // Padding (txn <= 0) makes each table take a while to read, so that reading them at
    // different moments would show: big first on one reader, a then b on the other.
    w.mysql(&mysql_fill_sql(
        "big",
        "txn, pad",
        "0, REPEAT('p', 200)",
        200_000,
    ));
    w.mysql(&mysql_fill_sql(
        "a",
        "txn, pad",
        "-seq.n, REPEAT('p', 200)",
        100_000,
    ));
    w.mysql(&mysql_fill_sql(
        "b",
        "txn, pad",
        "-seq.n, REPEAT('p', 200)",
        100_000,
    ));
    w.mysql("ANALYZE TABLE a; ANALYZE TABLE b");
    w.mysql("ANALYZE TABLE big");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let db = w.db.clone();
    let stop2 = stop.clone();
    let died = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let died2 = died.clone();
    let writer = std::thread::spawn(move || {
        block(async move {
            use mysql_async::prelude::*;
            let opts = mysql_async::OptsBuilder::from_opts(
                mysql_async::Opts::from_url(&mysql_url()).unwrap(),
            )
            .db_name(Some(db))
            .prefer_socket(false);
            let mut conn = mysql_async::Conn::new(opts).await?;
            let mut k = 0u32;
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                k += 1;
                loop {
                    let r = conn
                        .query_drop(format!(
                            "START TRANSACTION; INSERT INTO a VALUES ({k}, 'w'); INSERT INTO b VALUES ({k}, 'w');
                             INSERT INTO big (txn, pad) VALUES ({k}, 'w'); COMMIT;"
                        ))
                        .await;
                    match r {
                        Ok(()) => break,
                        // The export's LOCK TABLES can make this transaction the victim
                        // of a metadata-lock deadlock: retry it, as an application would.
                        Err(mysql_async::Error::Server(e)) if e.code == 1213 => {
                            conn.query_drop("ROLLBACK").await?;
                        }
                        Err(e) => {
                            *died2.lock().unwrap() = Some(e.to_string());
                            return Err(e);
                        }
                    }
                }
            }
            Ok::<u32, mysql_async::Error>(k)
        })
    });
    // Let the writer get going, export while it writes, let it write some more.
    let count_a = |w: &World| -> u64 {
        let r = mysql_rows(&w.db, "SELECT COUNT(*) FROM a WHERE txn > 0");
        String::from_utf8(r[0][0].clone().unwrap())
            .unwrap()
            .parse()
            .unwrap()
    };
    let wait_for = |n: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while count_a(&w) < n {
            assert!(std::time::Instant::now() < deadline, "the writer stalled");
            if writer.is_finished() {
                panic!("the writer died: {:?}", died.lock().unwrap());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for(20);
    let o = w.run(&["export", &w.db, "--out", "out", "--jobs", "2"]);
    let after_export = count_a(&w);
    wait_for(after_export + 20);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let total = writer.join().unwrap().expect("writer") as usize;
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    assert_eq!(m.snapshot.readers, 2, "{:?}", m.snapshot);

    let txns = |t: &str, col: usize| -> std::collections::BTreeSet<String> {
        read_csv(&dir, t)
            .1
            .into_iter()
            .map(|r| String::from_utf8(r[col].clone().unwrap()).unwrap())
            .filter(|v| v != "0" && !v.starts_with('-'))
            .collect()
    };
    let a = txns("a", 0);
    let b = txns("b", 0);
    let big = txns("big", 1);
    assert!(
        !a.is_empty() && a.len() < total,
        "a={} total={total}",
        a.len()
    );
    assert_eq!(a, b, "tables a and b come from different moments");
    assert_eq!(a, big, "tables a and big come from different moments");
}

#[test]
fn sigkill_mid_export_leaves_nothing_importable() {
    let w = World::new("export_sigkill");
    w.mysql(
        "CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(250));
         CREATE TABLE small (id INT PRIMARY KEY); INSERT INTO small VALUES (1);",
    );
    w.mysql(&mysql_fill_sql("big", "pad", "REPEAT('k', 250)", 400_000));
    let mut child = w
        .cmd()
        .args(["export", &w.db, "--out", "out", "--jobs", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent = w.path().join("out").join(&w.db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the big table's CSV has data on disk, then SIGKILL.
    'wait: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "export never started writing"
        );
        if let Ok(dirs) = std::fs::read_dir(&parent) {
            for d in dirs.flatten() {
                let csv = d.path().join("big.csv");
                if std::fs::metadata(&csv).is_ok_and(|m| m.len() > 1 << 20) {
                    break 'wait;
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("export finished before it could be killed: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let dirs: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let name = dirs[0].file_name().unwrap().to_str().unwrap();
    assert!(pgconverge::store::export_dir::is_partial(name), "{name}");
    assert!(!dirs[0].join("migration_manifest.json").exists());
    let o = w.run(&["import", dirs[0].to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("manifest"), "{}", stderr(&o));
}

#[test]
fn a_big_table_is_read_as_key_ranges_with_every_row_exactly_once() {
    let w = World::new("export_split");
    w.mysql(
        "CREATE TABLE by_uuid (id CHAR(36) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
         CREATE TABLE by_int (id INT PRIMARY KEY, v INT);
         CREATE TABLE small (id INT PRIMARY KEY); INSERT INTO small VALUES (1), (2);",
    );
    // Mixed-case keys under a case-insensitive collation, negative integer keys.
    w.mysql(&mysql_fill_sql(
        "by_uuid",
        "id, v",
        "IF(seq.n % 7 = 0, UPPER(CAST(UUID() AS CHAR(36))), CAST(UUID() AS CHAR(36))), seq.n",
        30_000,
    ));
    w.mysql(&mysql_fill_sql(
        "by_int",
        "id, v",
        "seq.n - 10000, seq.n",
        20_000,
    ));
    w.mysql("ANALYZE TABLE by_uuid, by_int, small");
    let o = w.run(&[
        "export",
        &w.db,
        "--out",
        "out",
        "--jobs",
        "2",
        "--split-rows",
        "1000",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    assert_eq!(m.format_version, 3);
    assert!(m.tables["small"].parts.is_empty());
    for (table, total) in [("by_uuid", 30_000usize), ("by_int", 20_000)] {
        let t = &m.tables[table];
        assert!(t.parts.len() >= 2, "{table}: {:?}", t.parts);
        let mut ids = std::collections::BTreeSet::new();
        let mut rows = 0;
        for p in &t.parts {
            let data = std::fs::read(dir.join(&p.file)).unwrap();
            let recs = read_all(&data, NullStyle::Marker).unwrap();
            assert_eq!(recs.len() - 1, p.rows as usize, "{}", p.file);
            for r in &recs[1..] {
                assert!(
                    ids.insert(r[0].clone().unwrap()),
                    "{table}: a key in two parts"
                );
                rows += 1;
            }
        }
        assert_eq!((rows, t.rows as usize), (total, total), "{table}");
        let source: std::collections::BTreeSet<Vec<u8>> =
            mysql_rows(&w.db, &format!("SELECT id FROM {table}"))
                .into_iter()
                .map(|r| r[0].clone().unwrap())
                .collect();
        assert_eq!(ids, source, "{table}: the parts are not the table");
    }
    // The parts load as one table, in one transaction.
    w.pg("CREATE TABLE by_uuid (id uuid PRIMARY KEY, v integer);
         CREATE TABLE by_int (id integer PRIMARY KEY, v integer);
         CREATE TABLE small (id integer PRIMARY KEY);");
    assert_exit(&w.run(&["import", dir.to_str().unwrap(), "--yes"]), 0);
    assert_eq!(w.pg_value("SELECT count(*) FROM by_uuid").unwrap(), "30000");
    assert_eq!(
        w.pg_value("SELECT sum(v) FROM by_int").unwrap(),
        "199990000"
    );
    assert_exit(&w.run(&["verify", dir.to_str().unwrap(), "--source"]), 0);
}

#[test]
fn kratos_profile_and_table_selection() {
    let w = World::new("export_kratos_select");
    w.mysql(
        "CREATE TABLE identities (id CHAR(36) PRIMARY KEY); INSERT INTO identities VALUES ('6f9619ff-8b86-d011-b42d-00cf4fc964ff');
         CREATE TABLE sessions (id CHAR(36) PRIMARY KEY);
         CREATE TABLE schema_migration (version VARCHAR(48) PRIMARY KEY); INSERT INTO schema_migration VALUES ('20240101');
         CREATE TABLE schema_migration_pop_legacy (version VARCHAR(48) PRIMARY KEY);",
    );
    let o = w
        .cmd()
        .env("KRATOS_DB", &w.db)
        .args(["export", "kratos", "--out", "out"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    assert!(
        dir.starts_with(w.path().join("out/kratos")),
        "{}",
        dir.display()
    );
    let m = load(&dir);
    let names: Vec<&String> = m.tables.keys().collect();
    assert_eq!(names, ["identities", "sessions"]);
    assert!(m.excluded_tables["schema_migration"].contains("never copied"));

    let o = w.run(&[
        "export",
        &w.db,
        "--out",
        "sel",
        "--tables",
        "identities,schema_migration",
    ]);
    assert_exit(&o, 0);
    let m = load(&export_dir(&o, w.path()));
    assert_eq!(
        m.tables.keys().collect::<Vec<_>>(),
        ["identities", "schema_migration"]
    );
    let o = w.run(&["export", &w.db, "--out", "exc", "--exclude", "sessions"]);
    assert_exit(&o, 0);
    let m = load(&export_dir(&o, w.path()));
    assert!(!m.tables.contains_key("sessions"));
    assert_eq!(m.excluded_tables["sessions"], "--exclude");
    let o = w.run(&["export", &w.db, "--out", "bad", "--tables", "Identities"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("table `Identities` (from --tables) does not exist"),
        "{}",
        stderr(&o)
    );
}
