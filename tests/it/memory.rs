//! Memory does not grow with table size or record size beyond the documented bounds
//! (docs/reliability.md): each command's own `peak_rss_bytes` (`--json`, the kernel's
//! VmHWM) on rows of ~15 MB (a 9 MB text and a 6 MB blob each, as large as the
//! server's 16 MB max_allowed_packet lets a row be). The import streams
//! every record (<= 64 MB whatever its size); export and deep verify hold the row the
//! driver delivers, and stay within the bound the docs state.

use crate::harness::*;

const MB: u64 = 1024 * 1024;

fn peak(o: &std::process::Output) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)));
    v["peak_rss_bytes"].as_u64().expect("peak_rss_bytes")
}

#[test]
fn large_records_move_in_bounded_memory() {
    let w = World::new("memory_large_records");
    w.mysql(
        "CREATE TABLE big (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB);
         INSERT INTO big SELECT n, REPEAT(CONCAT('x', n), 4 * 1024 * 1024 + 512 * 1024),
                                REPEAT(UNHEX('00FF'), 3 * 1024 * 1024)
         FROM (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) s;",
    );
    w.pg("CREATE TABLE big (id integer PRIMARY KEY, t text, b bytea)");
    let row = 15 * MB;
    let o = w.run(&["export", &w.db, "--json"]);
    assert_exit(&o, 0);
    let export = peak(&o);
    let dir = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["export_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let o = w.run(&["import", &dir, "--yes", "--json"]);
    assert_exit(&o, 0);
    let import = peak(&o);
    let o = w.run(&["verify", &dir, "--deep", "--json"]);
    assert_exit(&o, 0);
    let deep = peak(&o);
    eprintln!(
        "peak RSS: export {} MB, import {} MB, verify --deep {} MB (rows of {} MB)",
        export / MB,
        import / MB,
        deep / MB,
        row / MB
    );
    assert!(import < 64 * MB, "import peak {} MB", import / MB);
    // Values past 4 MB are read in pieces and held once.
    assert!(export < 64 * MB, "export peak {} MB", export / MB);
    // Each canonical value is hashed as it is made, and a table of long records is read
    // one side after the other: what remains is each side's reader.
    assert!(
        deep < 64 * MB + 3 * row,
        "verify --deep peak {} MB",
        deep / MB
    );
}

/// A 50 MB text and a 50 MB blob, each alone in its row (the binary-log MariaDB, whose
/// `max_allowed_packet` is 1 GB: `scripts/dev-services.sh`): every reader takes them in
/// pieces: the export holds each once (within 64 MB plus the value), the export from
/// PostgreSQL within 64 MB plus the value as it is written there (a blob's hex is twice
/// its bytes), deep verify hashes them as they come (their size does not count) and finds one
/// changed character. The values arrive whole (the servers' own digests), and the
/// PostgreSQL export writes the rows the MySQL export wrote.
#[test]
fn long_values_are_read_in_pieces_and_held_once() {
    let w = World::binlog("memory_long_value");
    let packet = w.mysql_rows("SELECT @@max_allowed_packet")[0][0]
        .clone()
        .unwrap();
    let packet: u64 = String::from_utf8(packet).unwrap().parse().unwrap();
    assert!(
        packet >= 128 * MB,
        "the binary-log MariaDB's max_allowed_packet is {packet}: start it with \
         scripts/dev-services.sh (--max-allowed-packet=1G)"
    );
    let value = 50 * MB;
    w.mysql(&format!(
        "CREATE TABLE big (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB, j JSON);
         INSERT INTO big VALUES (1, CONCAT('é', REPEAT('x', {value} - 3), 'z'), NULL, '[1]'),
                                (2, NULL, REPEAT(UNHEX('00FF'), {value} / 2), NULL),
                                (3, 'short', UNHEX('00'), '{{\"a\": 1}}');"
    ));
    w.pg("CREATE TABLE big (id integer PRIMARY KEY, t text, b bytea, j jsonb)");
    let o = w.run(&["export", &w.db, "--json"]);
    assert_exit(&o, 0);
    let export = peak(&o);
    eprintln!(
        "peak RSS: export {} MB (values of {} MB)",
        export / MB,
        value / MB
    );
    assert!(export < 64 * MB + value, "export peak {} MB", export / MB);
    let dir = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["export_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let o = w.run(&["import", &dir, "--yes", "--json"]);
    assert_exit(&o, 0);
    assert!(peak(&o) < 64 * MB, "import peak {} MB", peak(&o) / MB);
    // Every value arrived whole: the server's own digests on both sides.
    let mysql: Vec<Option<String>> = w
        .mysql_rows("SELECT CONCAT_WS(' ', id, MD5(t), MD5(b), MD5(j)) FROM big ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone().map(|v| String::from_utf8(v).unwrap()))
        .collect();
    let pg: Vec<Option<String>> = w
        .pg_rows("SELECT concat_ws(' ', id, md5(t), md5(b), md5(j::text)) FROM big ORDER BY id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(mysql[..2], pg[..2]);
    // Deep verify, against the files and against the live source: every side hashes
    // a long value's pieces as they come (the files' records field by field) and never
    // holds it.
    let deep = |args: &[&str], code: i32| {
        let mut cmd = vec!["verify", dir.as_str(), "--json"];
        cmd.extend_from_slice(args);
        let o = w.run(&cmd);
        assert_exit(&o, code);
        eprintln!("peak RSS: verify {args:?} {} MB", peak(&o) / MB);
        // 64 MB, and the drivers' buffers of the pieces in flight (up to 4 MB each).
        assert!(
            peak(&o) < 80 * MB,
            "verify {args:?} peak {} MB",
            peak(&o) / MB
        );
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    for args in [&["--deep"][..], &["--deep", "--source"]] {
        deep(args, 0);
    }
    // One character of each long value changed in the target: found and named, the
    // values shown by length and digest.
    w.pg(
        "UPDATE big SET t = overlay(t placing 'y' from length(t)) WHERE id = 1;
         UPDATE big SET b = overlay(b placing '\\x01'::bytea from octet_length(b)) WHERE id = 2",
    );
    for args in [&["--deep"][..], &["--deep", "--source"]] {
        let report = deep(args, 1);
        let diffs = report["differences"].to_string();
        for want in [
            "table `big`, id=1, column `t`: source \\\"(52428800 bytes, sha256 ",
            "table `big`, id=2, column `b`: source \\\"(52428800 bytes as 104857600 hex digits, sha256 ",
        ] {
            assert!(diffs.contains(want), "{want} in {diffs}");
        }
        assert_eq!(
            report["differences"].as_array().unwrap().len(),
            2,
            "{diffs}"
        );
    }
    w.pg(
        "UPDATE big SET t = overlay(t placing 'z' from length(t)) WHERE id = 1;
         UPDATE big SET b = overlay(b placing '\\xff'::bytea from octet_length(b)) WHERE id = 2",
    );
    // The loaded target read back as a PostgreSQL source: its long values in pieces too,
    // held once as PostgreSQL writes them (a bytea's hex: twice its bytes); the same rows.
    let url = format!("{}/{}", postgres_url(), w.db);
    let o = w.run(&["export", &w.db, "--source-url", &url, "--json"]);
    assert_exit(&o, 0);
    let pg_export = peak(&o);
    eprintln!("peak RSS: export from PostgreSQL {} MB", pg_export / MB);
    assert!(
        pg_export < 64 * MB + 2 * value,
        "export from PostgreSQL peak {} MB",
        pg_export / MB
    );
    let pg_dir = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["export_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = |d: &str| {
        let text = std::fs::read_to_string(w.path().join(d).join("big.csv")).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert!(rows(&dir) == rows(&pg_dir), "the two exports differ");
}

/// Forty rows of 3 MB values, every one changed in the target: the rows of the differing
/// buckets are kept to be compared by key, within a budget per side (`deep::KEPT_BYTES`,
/// 64 MB); past it, buckets are counted as not itemised rather than held (all forty:
/// about 480 MB, values and how they read, both sides).
#[test]
fn rows_kept_to_name_differences_stay_within_their_budget() {
    let w = World::new("memory_kept_rows");
    w.mysql(
        "CREATE TABLE doc (id INT PRIMARY KEY, t LONGTEXT);
         INSERT INTO doc SELECT n, REPEAT(CONCAT('x', n % 10), 1536 * 1024)
         FROM (WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 40)
               SELECT n FROM s) q;",
    );
    w.pg("CREATE TABLE doc (id integer PRIMARY KEY, t text)");
    let o = w.run(&["export", &w.db, "--json"]);
    assert_exit(&o, 0);
    let dir = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["export_dir"]
        .as_str()
        .unwrap()
        .to_string();
    assert_exit(&w.run(&["import", &dir, "--yes", "--json"]), 0);
    w.pg("UPDATE doc SET t = overlay(t placing 'y' from length(t))");
    let o = w.run(&["verify", &dir, "--deep", "--json"]);
    assert_exit(&o, 1);
    let peak = peak(&o);
    eprintln!("peak RSS: verify --deep {} MB", peak / MB);
    assert!(
        peak < 64 * MB + 2 * 64 * MB + 48 * MB,
        "verify --deep peak {} MB",
        peak / MB
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let deep = &v["deep"][0];
    let (different, aside) = (
        deep["different"].as_u64().unwrap(),
        deep["buckets_not_itemised"].as_u64().unwrap(),
    );
    assert!(different > 0 && aside > 0, "{deep}");
    assert_eq!(deep["equal"].as_u64().unwrap(), 0, "{deep}");
    assert!(
        v["differences"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .unwrap()
            .contains("more buckets of rows that differ, not itemised")),
        "{v}"
    );
}
