//! Delta chains against the MariaDB with its binary log on (TEST_MYSQL_BINLOG_URL,
//! started by scripts/dev-services.sh; these tests fail when it does not answer): a base
//! exported under a concurrent writer, deltas taken and imported, the target compared
//! with the source table by table and by `verify --deep --source`; every refusal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::export::{export_dir, load};
use crate::harness::*;

/// `export <db> --delta-base` (extra flags after), its directory.
pub fn base(w: &World, extra: &[&str]) -> PathBuf {
    let mut args = vec!["export", w.db.as_str(), "--delta-base", "-q"];
    args.extend_from_slice(extra);
    let o = w.run(&args);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

/// `export <db> --delta-from <from>`, its directory.
pub fn delta(w: &World, from: &Path, extra: &[&str]) -> PathBuf {
    let o = delta_run(w, from, extra);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

pub fn delta_run(w: &World, from: &Path, extra: &[&str]) -> std::process::Output {
    let from = from.to_str().unwrap();
    let mut args = vec!["export", w.db.as_str(), "--delta-from", from, "-q"];
    args.extend_from_slice(extra);
    w.run(&args)
}

pub fn import(w: &World, dir: &Path) -> std::process::Output {
    w.run(&["import", dir.to_str().unwrap(), "--yes", "-q"])
}

/// The chain's schema: a parent with a column of every kind the writer changes, a child
/// following it by ON DELETE/ON UPDATE CASCADE, and a tag table whose key holds the
/// parent's key (a parent's new key moves those rows to a new key of their own).
const MYSQL_SCHEMA: &str = "
    CREATE TABLE parent (
        id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, note TEXT, amount DECIMAL(12,4),
        at DATETIME(3), doc JSON, data MEDIUMBLOB, uid CHAR(36), kind ENUM('a','b','c'),
        n BIGINT UNSIGNED
    ) ENGINE=InnoDB;
    CREATE TABLE child (
        id INT PRIMARY KEY, parent_id INT NOT NULL, label VARCHAR(20),
        FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE
    ) ENGINE=InnoDB;
    CREATE TABLE tag (
        parent_id INT NOT NULL, tag VARCHAR(10) NOT NULL, PRIMARY KEY (parent_id, tag),
        FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE
    ) ENGINE=InnoDB;";

const PG_SCHEMA: &str = "
    CREATE TABLE parent (
        id int PRIMARY KEY, name varchar(50) NOT NULL, note text, amount numeric(12,4),
        at timestamp(3), doc jsonb, data bytea, uid uuid, kind text, n numeric(20)
    );
    CREATE TABLE child (
        id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id), label varchar(20)
    );
    CREATE TABLE tag (
        parent_id int NOT NULL REFERENCES parent (id), tag varchar(10) NOT NULL,
        PRIMARY KEY (parent_id, tag)
    );";

fn schema(w: &World) {
    w.mysql(MYSQL_SCHEMA);
    w.pg(PG_SCHEMA);
}

/// A parent row's values, varied by `i` and `v` over every column.
fn parent_values(id: i64, v: u64) -> String {
    let uid = match v % 3 {
        0 => "''".to_string(),
        1 => "NULL".to_string(),
        _ => format!("'{:08x}-0000-4000-8000-{:012x}'", v as u32, id),
    };
    let doc = match v % 4 {
        0 => format!("'{{\"v\": {v}, \"s\": \"é\\\\u00e9\", \"a\": [1, null]}}'"),
        1 => "'{\"\": 0}'".to_string(),
        2 => "NULL".to_string(),
        _ => format!("'[{v}, \"x\", {{\"k\": true}}]'"),
    };
    let data = match v % 5 {
        0 => "NULL".to_string(),
        1 => "''".to_string(),
        _ => format!("REPEAT(x'00ff{:02x}', {})", v % 256, 1 + v % 50),
    };
    format!(
        "({id}, 'name {v} ''q''', {}, {}.{:04}, '2024-{:02}-{:02} 01:02:03.{:03}', {doc}, {data}, {uid}, '{}', {})",
        if v % 7 == 0 {
            "NULL".to_string()
        } else {
            format!("'note\\n{v}'")
        },
        (v % 100_000) as i64 - 50_000,
        v % 10_000,
        1 + v % 12,
        1 + v % 28,
        v % 1000,
        ["a", "b", "c"][(v % 3) as usize],
        if v % 6 == 0 { u64::MAX } else { v }
    )
}

/// A tiny deterministic generator (the writer's and the workloads' choices).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// One random statement (or transaction) of the workload, on parent ids below `top`.
fn workload_step(rng: &mut Lcg, top: &mut i64) -> String {
    let id = 1 + rng.next(*top as u64) as i64;
    let v = rng.next(1_000_000);
    match rng.next(10) {
        0 | 1 => {
            *top += 1;
            let new = *top + 1_000_000;
            format!(
                "INSERT INTO parent VALUES {}; INSERT INTO child VALUES ({new}, {new}, 'c{v}'); \
                 INSERT IGNORE INTO tag VALUES ({new}, 't{}');",
                parent_values(new, v),
                v % 3
            )
        }
        2 | 3 => format!(
            "UPDATE parent SET name = 'u{v}', note = CONCAT(COALESCE(note, ''), 'x'), amount = {v}.5, \
             at = '2025-01-01 00:00:00.{:03}', doc = JSON_OBJECT('u', {v}), data = REPEAT('b', {}), \
             uid = {}, kind = '{}', n = {} WHERE id = {id} OR id = {}",
            v % 1000,
            v % 300,
            if v % 2 == 0 {
                "''".to_string()
            } else {
                format!("'{:08x}-1111-4000-8000-000000000000'", v as u32)
            },
            ["a", "b", "c"][(v % 3) as usize],
            v * 1000,
            id + 1_000_000
        ),
        // A key change: children follow by ON UPDATE CASCADE, unlogged.
        4 => format!(
            "UPDATE parent SET id = id + 2000000 WHERE id = {id} OR id = {}",
            id + 1_000_000
        ),
        // A delete: children go by ON DELETE CASCADE, unlogged.
        5 => format!(
            "DELETE FROM parent WHERE id = {id} OR id = {}",
            id + 2_000_000
        ),
        6 => format!(
            "START TRANSACTION; UPDATE parent SET name = 'rolled back' WHERE id = {id}; \
             DELETE FROM child WHERE parent_id = {id}; ROLLBACK"
        ),
        7 => format!(
            "UPDATE child SET label = 'l{v}' WHERE id = {id}; INSERT IGNORE INTO tag VALUES ({id}, 'w{}')",
            v % 5
        ),
        8 => {
            // Inserted and deleted again before any delta sees it.
            let gone = 5_000_000 + v as i64;
            format!(
                "INSERT IGNORE INTO parent VALUES {}; INSERT IGNORE INTO child VALUES ({gone}, {gone}, 'g'); \
                 DELETE FROM parent WHERE id = {gone}",
                parent_values(gone, v)
            )
        }
        _ => format!(
            "DELETE FROM tag WHERE parent_id = {id}; DELETE FROM child WHERE id = {}",
            id + 1
        ),
    }
}

fn seed(w: &World, parents: i64) {
    let mut sql = String::new();
    for id in 1..=parents {
        sql.push_str(&format!(
            "INSERT INTO parent VALUES {}; INSERT INTO child VALUES ({id}, {id}, 'c{id}'), ({}, {id}, 'd');
             INSERT INTO tag VALUES ({id}, 'a'), ({id}, 'b');",
            parent_values(id, id as u64 * 7919),
            id + 100_000
        ));
    }
    w.mysql(&sql);
}

/// The source and the target, table by table, as comparable text (JSON compared by
/// meaning: jsonb keeps its own spacing and key order).
fn assert_same(w: &World) {
    let queries = [
        (
            "parent",
            "SELECT CAST(id AS CHAR), name, note, CAST(amount AS CHAR), DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f'), \
             doc, LOWER(HEX(data)), NULLIF(uid, ''), CAST(kind AS CHAR), CAST(n AS CHAR) FROM parent ORDER BY id",
            "SELECT id::text, name, note, amount::text, to_char(at, 'YYYY-MM-DD HH24:MI:SS.US'), doc::text, \
             encode(data, 'hex'), uid::text, kind, n::text FROM parent ORDER BY parent.id",
        ),
        (
            "child",
            "SELECT CAST(id AS CHAR), CAST(parent_id AS CHAR), label FROM child ORDER BY id",
            "SELECT id::text, parent_id::text, label FROM child ORDER BY child.id",
        ),
        (
            "tag",
            "SELECT CAST(parent_id AS CHAR), tag FROM tag ORDER BY parent_id, tag",
            "SELECT parent_id::text, tag FROM tag ORDER BY tag.parent_id, tag.tag",
        ),
    ];
    for (table, my, pg) in queries {
        let source: Vec<Vec<Option<String>>> = w
            .mysql_rows(my)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.map(|b| String::from_utf8(b).unwrap()))
                    .collect()
            })
            .collect();
        let target = w.pg_rows(pg);
        assert_eq!(source.len(), target.len(), "rows of `{table}`");
        for (s, t) in source.iter().zip(&target) {
            for (i, (a, b)) in s.iter().zip(t).enumerate() {
                let same = match (table, i, a, b) {
                    ("parent", 5, Some(a), Some(b)) => {
                        serde_json::from_str::<serde_json::Value>(a).unwrap()
                            == serde_json::from_str::<serde_json::Value>(b).unwrap()
                    }
                    _ => a == b,
                };
                let short = |r: &[Option<String>]| -> Vec<String> {
                    r.iter()
                        .map(|v| v.as_deref().unwrap_or("NULL").chars().take(40).collect())
                        .collect()
                };
                assert!(
                    same,
                    "`{table}` row {:?}\n  target {:?}: column #{i} differs",
                    short(s),
                    short(t)
                );
            }
        }
    }
}

fn deep_verify(w: &World, dir: &Path) {
    let o = w.run(&["verify", dir.to_str().unwrap(), "--deep", "--source"]);
    assert_exit(&o, 0);
}

/// A writer on its own connection until stopped: inserts, updates of every column, key
/// changes and deletes that cascade, a rolled-back transaction, rows inserted and
/// deleted again, a 1 MB blob now and then.
fn writer(w: &World, stop: Arc<AtomicBool>, seed: u64) -> std::thread::JoinHandle<u64> {
    let url = w.mysql_url.clone();
    let db = w.db.clone();
    std::thread::spawn(move || {
        let mut rng = Lcg(seed);
        let mut top = 10_000;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let sql = match rng.next(40) {
                0 => format!(
                    "UPDATE parent SET data = REPEAT(x'5a00', 524288) WHERE id = {}",
                    1 + rng.next(200)
                ),
                _ => workload_step(&mut rng, &mut top),
            };
            mysql_exec_at(&url, Some(&db), &sql);
            n += 1;
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        n
    })
}

#[test]
fn a_chain_follows_a_concurrent_writer_to_an_identical_target() {
    let w = World::binlog("delta_writer");
    schema(&w);
    seed(&w, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(&w, stop.clone(), 7);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let b = base(&w, &["--jobs", "2"]);
    let m = load(&b);
    assert_eq!(m.format_version, 4);
    assert_eq!(m.kind.as_deref(), Some("full"));
    assert!(m.position.is_some());
    assert_exit(&import(&w, &b), 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The first delta while the writer still writes.
    let d1 = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d1), 0);
    stop.store(true, Ordering::SeqCst);
    let statements = writing.join().unwrap();
    assert!(statements > 20, "the writer ran ({statements} statements)");
    // Between the deltas: rows inserted and deleted again, a key swap in one
    // transaction, a key change of a row inserted in the same transaction, and the
    // cascades that follow them.
    w.mysql(&format!(
        "INSERT INTO parent VALUES {}; DELETE FROM parent WHERE id = 900001;
         START TRANSACTION; UPDATE parent SET id = -1 WHERE id = 3; UPDATE parent SET id = 3 WHERE id = 4;
           UPDATE parent SET id = 4 WHERE id = -1; COMMIT;
         START TRANSACTION; INSERT INTO parent VALUES {}; UPDATE parent SET id = 900003 WHERE id = 900002; COMMIT;
         INSERT INTO child VALUES (900003, 900003, 'new'); UPDATE parent SET id = id + 1000 WHERE id = 5;
         DELETE FROM parent WHERE id = 6;",
        parent_values(900_001, 1),
        parent_values(900_002, 2)
    ));
    let d2 = delta(&w, &d1, &[]);
    let m2 = load(&d2);
    assert_eq!(m2.kind.as_deref(), Some("delta"));
    assert_eq!(
        m2.delta.as_ref().unwrap().from,
        load(&d1).position.unwrap(),
        "each delta starts where the previous one ended"
    );
    assert_exit(&import(&w, &d2), 0);
    assert_same(&w);
    deep_verify(&w, &d2);
    // The target's chain stands at the last delta.
    let stands =
        w.pg_value("SELECT export_id FROM pgconverge.state WHERE target_schema = 'public'");
    assert_eq!(stands, m2.export_id);
}
