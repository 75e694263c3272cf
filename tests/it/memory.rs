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
    // The driver delivers a whole row (and holds its packet): two copies at most.
    assert!(export < 64 * MB + 2 * row, "export peak {} MB", export / MB);
    // Each canonical value is hashed as it is made, and a table of long records is read
    // one side after the other: what remains is each side's reader.
    assert!(
        deep < 64 * MB + 3 * row,
        "verify --deep peak {} MB",
        deep / MB
    );
}
