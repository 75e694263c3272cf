//! `migrate` loads a table while the export still writes its file (`import::follow`):
//! the source is reached through a relay that slows it (`throttle`), so the import
//! always gets there first. What was sent is held against the finished export; a table
//! whose facts call for another load starts over; an export cut half-way leaves the
//! target unchanged, said by the report and the run log.

use crate::harness::*;
use crate::throttle::Throttle;

const FOLLOWED: &str = "`event`: loading while the export writes its files";

/// 40,000 rows of about 100 bytes: 4 MB, two to three seconds through the relay.
fn source(w: &World, tag: &str) {
    w.mysql(&format!(
        "CREATE TABLE event (id INT PRIMARY KEY, tag VARCHAR(40), body VARCHAR(100));
         INSERT INTO event SELECT seq, {tag}, REPEAT(CHAR(97 + seq % 26), 60 + seq % 40)
           FROM seq_1_to_40000;"
    ));
    w.pg("CREATE TABLE event (id integer PRIMARY KEY, tag uuid, body text)");
}

fn migrate_through(w: &World, relay: &Throttle) -> std::process::Output {
    w.cmd()
        .env("MYSQL_URL", relay.url(&w.mysql_url))
        .args([
            "migrate", &w.db, "--out", "out", "--yes", "--deep", "--json",
        ])
        .output()
        .unwrap()
}

#[test]
fn a_table_is_loaded_while_its_export_still_writes_it() {
    let w = World::new("follow_loads");
    source(&w, "CAST(UUID() AS CHAR(36))");
    let relay = Throttle::start(&w.mysql_url, 1_500_000, None);
    let o = migrate_through(&w, &relay);
    assert_exit(&o, 0);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["ok"], true, "{s}");
    // Every value compared with the live source.
    assert!(
        s["verify"]["deep"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["different"] == 0 && t["only_in_source"] == 0 && t["only_in_target"] == 0),
        "{s}"
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM event").as_deref(),
        Some("40000")
    );
    // It was followed, and the journal says so before its COPY.
    // The time the COPY waited for the export is counted as waiting, not as loading
    // (the relay makes the export take about three seconds; the COPY, a fraction).
    let waited = s["steps"]["waiting_for_export"].as_f64().unwrap();
    assert!(waited > 1.0, "{s}");
    let journal = w.journal_sql();
    let said = journal.find(FOLLOWED).expect(&journal);
    let copied = journal.find("COPY \"public\".\"event\"").expect(&journal);
    assert!(said < copied, "{journal}");
}

/// The plan made before the export knows nothing of the values: '' in a varchar
/// headed for uuid is only known to need NULL once the export has counted it. The
/// followed load meets it, the finished export calls for another load, and the attempt
/// starts over with the file complete.
#[test]
fn a_followed_table_whose_finished_export_calls_for_another_load_starts_over() {
    let w = World::new("follow_replan");
    source(&w, "IF(seq = 39000, '', CAST(UUID() AS CHAR(36)))");
    let relay = Throttle::start(&w.mysql_url, 1_500_000, None);
    let o = migrate_through(&w, &relay);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("`event` was loaded while its files were written, but its finished export calls for another load"),
        "{err}"
    );
    // What the finished export's plan does to the values is said, as import's plan
    // says it.
    assert!(
        err.contains("adapt: `event`.`tag`: '' -> NULL (1 value was '')"),
        "{err}"
    );
    assert_eq!(
        w.pg_value("SELECT id::text FROM event WHERE tag IS NULL")
            .as_deref(),
        Some("39000")
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM event").as_deref(),
        Some("40000")
    );
    let journal = w.journal_sql();
    assert!(journal.contains(FOLLOWED), "{journal}");
    assert!(
        journal.contains("ROLLBACK;  -- `event` was loaded"),
        "{journal}"
    );
}

/// The source's connection is cut while the import follows the file: nothing of it is
/// kept, the error names the table and the cause, the run log says failed.
#[test]
fn an_export_cut_while_its_file_is_followed_leaves_the_target_unchanged() {
    let w = World::new("follow_cut");
    source(&w, "CAST(UUID() AS CHAR(36))");
    w.pg("INSERT INTO event VALUES (1, NULL, 'stale')");
    let relay = Throttle::start(&w.mysql_url, 1_500_000, Some(1_000_000));
    let o = migrate_through(&w, &relay);
    assert_exit(&o, 2);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("the target is unchanged") && error.contains("exporting table `event`"),
        "{s}"
    );
    assert_eq!(s["outcome"], "unchanged", "{s}");
    assert_eq!(
        w.pg_value("SELECT string_agg(id || ':' || body, ',') FROM event")
            .as_deref(),
        Some("1:stale")
    );
    assert_eq!(w.run_log_statuses().last().unwrap(), "rolled_back");
    let journal = w.journal_sql();
    assert!(journal.contains(FOLLOWED), "{journal}");
    assert!(
        journal
            .trim_end()
            .ends_with("-- migrate rolled back: the target is unchanged"),
        "{journal}"
    );
    // Nothing is left behind: no export was published.
    let out = w.path().join("out").join(&w.db);
    let kept: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(kept.is_empty(), "{kept:?}");
}

/// Two tables written at once (one reader each), the larger first in load order: the
/// smaller is followed first, so the load is not held to the larger one's reader while
/// the smaller completes beside it.
#[test]
fn of_the_tables_being_written_the_smaller_is_followed_first() {
    let w = World::new("follow_order");
    w.mysql(
        "CREATE TABLE big (id INT PRIMARY KEY, body VARCHAR(100));
         INSERT INTO big SELECT seq, REPEAT('b', 90) FROM seq_1_to_40000;
         CREATE TABLE small (id INT PRIMARY KEY, big_id INT, body VARCHAR(100));
         INSERT INTO small SELECT seq, seq, REPEAT('s', 90) FROM seq_1_to_15000;",
    );
    w.pg(
        "CREATE TABLE big (id integer PRIMARY KEY, body text);
         CREATE TABLE small (id integer PRIMARY KEY, big_id integer REFERENCES big (id), body text);",
    );
    let relay = Throttle::start(&w.mysql_url, 1_500_000, None);
    let o = w
        .cmd()
        .env("MYSQL_URL", relay.url(&w.mysql_url))
        .args([
            "migrate", &w.db, "--out", "out", "--yes", "--jobs", "2", "--json",
        ])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let journal = w.journal_sql();
    let small = journal
        .find("`small`: loading while the export writes its files")
        .expect(&journal);
    let big = journal
        .find("`big`: loading while the export writes its files")
        .unwrap_or(usize::MAX);
    assert!(small < big, "{journal}");
    assert_eq!(
        w.pg_value("SELECT (SELECT count(*) FROM big) || ',' || (SELECT count(*) FROM small)")
            .as_deref(),
        Some("40000,15000")
    );
}
