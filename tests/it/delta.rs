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
pub const MYSQL_SCHEMA: &str = "
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

pub fn schema(w: &World) {
    w.mysql(MYSQL_SCHEMA);
    w.pg(PG_SCHEMA);
}

/// A parent row's values, varied by `i` and `v` over every column.
pub fn parent_values(id: i64, v: u64) -> String {
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
        if v.is_multiple_of(7) {
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
        if v.is_multiple_of(6) { u64::MAX } else { v }
    )
}

/// A tiny deterministic generator (the writer's and the workloads' choices).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// One random statement (or transaction) of the workload, on parent ids below `top`.
pub fn workload_step(rng: &mut Lcg, top: &mut i64) -> String {
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
            if v.is_multiple_of(2) {
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

pub fn seed(w: &World, parents: i64) {
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
pub fn assert_same(w: &World) {
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

pub fn deep_verify(w: &World, dir: &Path) {
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
    // The target holds the source as it stood at d1's end: the counts d1 recorded.
    assert_exit(&w.run(&["verify", d1.to_str().unwrap()]), 0);
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

/// kill -9 while a delta's transaction runs (in its delta_before hook): the target and its
/// chain stay at the base, the run log holds the start only, and the delta imports again.
#[test]
fn a_killed_delta_import_leaves_the_chain_where_it_stood() {
    let w = World::binlog("delta_killed");
    schema(&w);
    seed(&w, 5);
    std::fs::write(
        w.path().join("map.toml"),
        "[import]\ndelta_before = [\"SELECT pg_sleep(2)\"]\n",
    )
    .unwrap();
    let b = base(&w, &["--map", "map.toml"]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("UPDATE parent SET name = 'k' WHERE id = 1; DELETE FROM parent WHERE id = 2");
    let d = delta(&w, &b, &[]);
    let before = w.fingerprint();
    let base_id = load(&b).export_id;
    let mut child = w
        .cmd()
        .args(["import", d.to_str().unwrap(), "--yes", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sleeping = || {
        w.pg_value(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()",
        )
        .as_deref()
            == Some("1")
    };
    let mut waited = 0;
    while !sleeping() {
        assert!(waited < 300, "the delta's hook never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The server rolls the transaction back once the hook ends and the client is gone.
    let mut waited = 0;
    while w
        .pg_value("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .as_deref()
        != Some("0")
    {
        assert!(waited < 500, "the killed import's session never ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
    }
    assert_eq!(w.fingerprint(), before, "nothing of the delta was kept");
    assert_eq!(
        w.pg_value("SELECT export_id FROM pgconverge.state"),
        base_id,
        "the chain stands at the base"
    );
    assert_eq!(
        w.run_log_statuses().last().map(String::as_str),
        Some("started"),
        "kill -9 leaves the start of the import in the run log, and nothing after it"
    );
    assert_exit(&import(&w, &d), 0);
    assert_same(&w);
}

#[test]
fn deltas_apply_once_and_in_order() {
    let w = World::binlog("delta_order");
    schema(&w);
    seed(&w, 10);
    let b = base(&w, &[]);
    // A delta before its base was imported anywhere.
    let early = {
        w.mysql("UPDATE parent SET name = 'one' WHERE id = 1");
        delta(&w, &b, &[])
    };
    let o = import(&w, &early);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("no delta chain"), "{}", stderr(&o));
    assert_exit(&import(&w, &b), 0);
    w.mysql("UPDATE parent SET name = 'two' WHERE id = 2");
    let d1 = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d1), 0);
    let after_d1 = w.fingerprint();
    // The same delta twice.
    let o = import(&w, &d1);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("already applied"), "{}", stderr(&o));
    assert_eq!(w.fingerprint(), after_d1, "a refused delta writes nothing");
    // A delta of the base, after the target moved on to d1: the wrong base.
    let o = import(&w, &early);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not at this delta's base"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.fingerprint(), after_d1);
    // The run log says so.
    assert_eq!(
        w.run_log_statuses().last().map(String::as_str),
        Some("failed")
    );
    // The next delta, from d1, applies.
    let d2 = delta(&w, &d1, &[]);
    assert_exit(&import(&w, &d2), 0);
    assert_same(&w);
}

#[test]
fn ddl_since_the_previous_export_is_refused_and_truncate_copies_whole() {
    let w = World::binlog("delta_ddl");
    schema(&w);
    seed(&w, 10);
    let b = base(&w, &[]);
    w.mysql("ALTER TABLE parent ADD COLUMN extra INT");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("schema changed") && stderr(&o).contains("column `extra` was added"),
        "{}",
        stderr(&o)
    );
    // Put back: the catalog matches again, but the log holds the DDL.
    w.mysql("ALTER TABLE parent DROP COLUMN extra");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("DDL on exported tables") && stderr(&o).contains("ALTER TABLE parent"),
        "{}",
        stderr(&o)
    );
    // A new chain after the schema change; a TRUNCATE in it reloads the table whole.
    let b2 = base(&w, &[]);
    assert_exit(&import(&w, &b2), 0);
    w.mysql("TRUNCATE tag; INSERT INTO tag VALUES (1, 'x'), (2, 'y')");
    let d = delta(&w, &b2, &[]);
    let tag = load(&d).tables["tag"].delta.clone().unwrap();
    assert!(tag.full_copy.unwrap().contains("TRUNCATE"));
    assert_exit(&import(&w, &d), 0);
    assert_same(&w);
}

/// Key columns of every type a delta follows, beside columns it only skips: a zero
/// DATETIME(4) and negative TIME(2) values (mysql_common's row decoder panics on those).
#[test]
fn keys_of_every_type_are_followed() {
    let w = World::binlog("delta_keys");
    w.mysql(
        "CREATE TABLE k (
            u BIGINT UNSIGNED, d DECIMAL(20,4), b BINARY(4), c CHAR(5) CHARACTER SET latin1,
            dt DATETIME(6), ts TIMESTAMP(3) NOT NULL DEFAULT '2000-01-01', e ENUM('x','y','z'),
            y YEAR, bt BIT(10), dd DATE, s SET('p','q','r'), z DATETIME(4), t TIME(2),
            v VARCHAR(20), PRIMARY KEY (u, d, b, c, dt, ts, e, y, bt, dd, s)
         ) ENGINE=InnoDB;
         SET SESSION sql_mode = '', time_zone = '+00:00';
         INSERT INTO k VALUES
           (18446744073709551615, -0.0001, x'01000000', 'é', '2024-01-02 03:04:05.000001',
            '2024-01-02 03:04:05.123', '', 0, b'1000000001', '2024-02-29', 'p,r',
            '0000-00-00 00:00:00.0000', '-838:59:59.99', 'one'),
           (0, -99999999.9999, x'00000000', '', '1000-01-01 00:00:00', '1970-01-01 00:00:01',
            'z', 2155, b'0', '9999-12-31', '', '2024-01-01 00:00:00.0001', '838:59:59', 'two'),
           (4294967296, 12.5, x'ff', 'a b', '2024-01-02 03:04:05', '2038-01-19 03:14:07.999',
            'x', 1901, b'1111111111', '2000-01-01', 'q', NULL, '-00:00:00.01', 'three');",
    );
    w.pg(
        "CREATE TABLE k (u numeric(20), d numeric(20,4), b bytea, c varchar(5), dt timestamp(6),
            ts timestamptz(3), e text, y int, bt varchar(10), dd date, s text, z timestamp(4),
            t interval, v varchar(20), PRIMARY KEY (u, d, b, c, dt, ts, e, y, bt, dd, s))",
    );
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    // Every row changes: a value, a key, a delete; and one row is new.
    w.mysql(
        "SET SESSION sql_mode = '', time_zone = '+00:00';
         UPDATE k SET v = 'changed' WHERE u = 18446744073709551615;
         UPDATE k SET d = d - 1 WHERE u = 0;
         DELETE FROM k WHERE u = 4294967296;
         INSERT INTO k VALUES (1, 0, x'', 'z', '2024-01-01', '2024-01-01', 'y', 2000, b'1', '2024-01-01', 'p,q,r',
           '0000-00-00', '-12:00:00', 'new');",
    );
    let d = delta(&w, &b, &[]);
    let entry = &load(&d).tables["k"];
    let kd = entry.delta.clone().unwrap();
    assert_eq!((entry.rows, kd.deleted.rows), (3, 2), "upserts and deletes");
    assert_exit(&import(&w, &d), 0);
    deep_verify(&w, &d);
    assert_eq!(
        w.pg_rows("SELECT u::text, v FROM k ORDER BY k.u"),
        vec![
            vec![Some("0".into()), Some("two".into())],
            vec![Some("1".into()), Some("new".into())],
            vec![Some("18446744073709551615".into()), Some("changed".into())],
        ]
    );
}

#[test]
fn a_table_without_a_key_is_refused_unless_copied_whole() {
    let w = World::binlog("delta_nokey");
    w.mysql(
        "CREATE TABLE log (msg VARCHAR(20), n INT);
         CREATE TABLE code (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code));
         INSERT INTO log VALUES ('same', 1), ('same', 1), ('other', 2);
         INSERT INTO code VALUES ('a', 1), ('b', 2);",
    );
    w.pg("CREATE TABLE log (msg varchar(20), n int);
         CREATE TABLE code (code varchar(10) PRIMARY KEY, v int);");
    let o = w.run(&["export", &w.db, "--delta-base"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("table `log`") && err.contains("--delta-full-copy"),
        "{err}"
    );
    assert!(
        !err.contains("table `code`"),
        "a unique NOT NULL key is followed: {err}"
    );
    let b = base(&w, &["--delta-full-copy"]);
    assert_exit(&import(&w, &b), 0);
    // Deleting one of two identical rows leaves exactly one.
    w.mysql("DELETE FROM log WHERE msg = 'same' LIMIT 1; UPDATE code SET v = 9 WHERE code = 'b'");
    let d = delta(&w, &b, &[]);
    let m = load(&d);
    assert!(m.tables["log"].delta.as_ref().unwrap().full_copy.is_some());
    assert_eq!(m.tables["code"].delta.as_ref().unwrap().key, ["code"]);
    let o = w.run(&["import", d.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 0);
    // The table copied whole is emptied (its 3 rows deleted) and loaded again (2).
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("log "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>()[..3],
        ["log", "2", "3"],
        "{out}"
    );
    assert!(
        out.contains("deleted: 3 rows in 1 table (the delta listed 0 keys; a table copied whole is emptied and loaded again)"),
        "{out}"
    );
    assert_eq!(
        w.pg_value("SELECT count(*) FROM log WHERE msg = 'same'")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        w.pg_value("SELECT v FROM code WHERE code = 'b'").as_deref(),
        Some("9")
    );
    deep_verify(&w, &d);
}

#[test]
fn a_row_image_other_than_full_is_refused() {
    let w = World::binlog("delta_minimal");
    schema(&w);
    seed(&w, 3);
    let b = base(&w, &[]);
    w.mysql("SET SESSION binlog_row_image = 'MINIMAL'; UPDATE parent SET name = 'm' WHERE id = 2");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("not FULL"), "{}", stderr(&o));
}

#[test]
fn check_verify_and_delta_end_know_the_chain() {
    let w = World::binlog("delta_check");
    schema(&w);
    seed(&w, 5);
    let o = w.run(&["check", &w.db]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("delta chains (export --delta-base): ready"),
        "{}",
        stdout(&o)
    );
    // The shared server keeps its binary log off: check names each fix.
    let off = World::new("delta_check_off");
    let o = off.run(&["check", &off.db]);
    assert!(stdout(&o).contains("log_bin=ON"), "{}", stdout(&o));
    drop(off);
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("DELETE FROM parent WHERE id = 1; INSERT INTO parent VALUES (77, 'n', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
    let d = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d), 0);
    let o = w.run(&["check", &w.db]);
    assert!(
        stdout(&o).contains("delta chain of schema `public`: at"),
        "{}",
        stdout(&o)
    );
    // Verify counts at the delta's end; --deep alone has no files to compare with.
    let o = w.run(&["verify", d.to_str().unwrap(), "--json"]);
    assert_exit(&o, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let parent = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "parent")
        .unwrap();
    assert_eq!(parent["manifest_rows"], 5, "{parent}");
    let o = w.run(&["verify", d.to_str().unwrap(), "--deep"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--deep --source"), "{}", stderr(&o));
    // delta-end forgets the chain, and the schema once empty.
    let o = w.run(&["delta-end", &w.db]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("ended"), "{}", stdout(&o));
    assert_eq!(
        w.pg_value("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgconverge'")
            .as_deref(),
        Some("0")
    );
    let o = import(&w, &d);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("no delta chain"), "{}", stderr(&o));
}

#[test]
fn two_deltas_read_the_log_at_once() {
    let w = World::binlog("delta_two_readers");
    schema(&w);
    seed(&w, 5);
    let b = base(&w, &[]);
    w.mysql("UPDATE parent SET name = 'x'");
    let spawn = |out: &str| {
        w.cmd()
            .args([
                "export",
                &w.db,
                "--delta-from",
                b.to_str().unwrap(),
                "--out",
                out,
                "-q",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn("one"), spawn("two"));
    for child in [one, two] {
        let o = child.wait_with_output().unwrap();
        assert_exit(&o, 0);
    }
}

mod workloads {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

        /// Random workloads between a base and two deltas leave the target equal to the
        /// source.
        #[test]
        fn random_workloads_converge(seed_value in any::<u64>(), first in 3usize..30, second in 3usize..30) {
            let w = World::binlog("delta_random");
            schema(&w);
            seed(&w, 12);
            let b = base(&w, &[]);
            assert_exit(&import(&w, &b), 0);
            let mut rng = Lcg(seed_value);
            let mut top = 10_000;
            let mut from = b;
            for steps in [first, second] {
                for _ in 0..steps {
                    w.mysql(&workload_step(&mut rng, &mut top));
                }
                let d = delta(&w, &from, &[]);
                assert_exit(&import(&w, &d), 0);
                from = d;
            }
            assert_same(&w);
            // The counts the last delta recorded at its end are the source's.
            assert_exit(&w.run(&["verify", from.to_str().unwrap()]), 0);
        }
    }
}

/// A row the log says exists but the snapshot lacks (deleted with the log off): the
/// delta stops, naming the key, and writes nothing.
#[test]
fn changes_made_with_the_log_off_stop_the_delta() {
    let w = World::binlog("delta_log_off");
    schema(&w);
    seed(&w, 3);
    let b = base(&w, &[]);
    w.mysql(&format!(
        "INSERT INTO parent VALUES {}",
        parent_values(42, 1)
    ));
    w.mysql("SET SESSION sql_log_bin = 0; DELETE FROM parent WHERE id = 42");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("the snapshot has no row for them: id=42"),
        "{err}"
    );
    assert!(err.contains("sql_log_bin=0"), "{err}");
}

/// A delta through a mapping: a `where` (a row that stops matching is deleted), a
/// dropped column, a rename, a `set` computed per row (through its staging table), and
/// the delta hooks (a full import's `after` hook does not run for a delta).
#[test]
fn a_delta_follows_the_mappings_rules() {
    let w = World::binlog("delta_mapping");
    w.mysql(
        "CREATE TABLE item (id INT PRIMARY KEY, title VARCHAR(20), secret VARCHAR(20), active TINYINT NOT NULL);
         INSERT INTO item VALUES (1, 'one', 's1', 1), (2, 'two', 's2', 1), (3, 'three', 's3', 0);",
    );
    w.pg(
        "CREATE TABLE item (id int PRIMARY KEY, name varchar(20), label text, active smallint);
         CREATE TABLE audit (note text);",
    );
    std::fs::write(
        w.path().join("map.toml"),
        "[tables.item]\nwhere = \"active = 1\"\ndrop = [\"secret\"]\ncolumns = { title = \"name\" }\n\
         set = { label = \"upper(name)\" }\n\n[import]\n\
         after = [\"INSERT INTO audit (note) VALUES ('full import')\"]\n\
         delta_after = [\"INSERT INTO audit (note) VALUES ('delta applied')\"]\n",
    )
    .unwrap();
    let b = base(&w, &["--map", "map.toml"]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "UPDATE item SET title = 'uno' WHERE id = 1; UPDATE item SET active = 0 WHERE id = 2;
         INSERT INTO item VALUES (4, 'four', 's4', 1), (5, 'five', 's5', 0);",
    );
    let d = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_rows("SELECT id::text, name, label FROM item ORDER BY item.id"),
        vec![
            vec![Some("1".into()), Some("uno".into()), Some("UNO".into())],
            vec![Some("4".into()), Some("four".into()), Some("FOUR".into())],
        ]
    );
    assert_eq!(
        w.pg_rows("SELECT note FROM audit ORDER BY note"),
        vec![
            vec![Some("delta applied".into())],
            vec![Some("full import".into())]
        ]
    );
    deep_verify(&w, &d);
}

/// `migrate --online`: base and catch-up deltas under a running writer, the cutover when
/// the file appears (the writer stopped first, as the application would be), the final
/// delta, verify and delta-end; the target equals the source and the window is logged.
#[test]
fn migrate_online_follows_a_writer_until_the_cutover_file() {
    let w = World::binlog("delta_online");
    schema(&w);
    seed(&w, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(&w, stop.clone(), 11);
    let cut = w.path().join("cutover");
    let child = w
        .cmd()
        .args([
            "migrate",
            &w.db,
            "--online",
            "--yes",
            "--json",
            "--deep",
            "--cutover-file",
        ])
        .arg(&cut)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start migrate --online");
    // The base is loaded while the writer runs; then the application "stops".
    let waited = std::time::Instant::now();
    // Two imports completed: the base and the first catch-up delta.
    let imports = || {
        std::fs::read_to_string(w.run_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| {
                e["status"] == "completed"
                    && e["message"].as_str().unwrap_or("").starts_with("imported")
            })
            .count()
    };
    while imports() < 2 {
        assert!(waited.elapsed().as_secs() < 120, "no delta was imported");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    let writes = writing.join().unwrap();
    assert!(writes > 0);
    std::fs::write(&cut, "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    assert_eq!(s["verify"], "ok", "{s}");
    assert!(s["window_seconds"].as_f64().unwrap() > 0.0, "{s}");
    assert!(!s["deltas"].as_array().unwrap().is_empty(), "{s}");
    assert_same(&w);
    // delta-end ran: the target no longer holds the chain.
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM pg_namespace WHERE nspname = 'pgconverge'")
            .as_deref(),
        Some("0")
    );
    let last = w.run_log_entries().last().cloned().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("window"),
        "{last}"
    );
}

/// Nothing can signal the cutover without a terminal or a cutover file: refused before
/// anything is read.
#[test]
fn migrate_online_without_a_cutover_signal_is_refused_before_anything_starts() {
    let w = World::binlog("delta_online_refused");
    schema(&w);
    let o = w
        .cmd()
        .args(["migrate", &w.db, "--online", "--yes"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--cutover-file"), "{}", stderr(&o));
    assert!(!w.path().join("csv_exports").exists());
}

/// From MySQL too: rows that swap a unique value between two exports clash half-way
/// through the upsert, which runs again with their rows set aside; the target ends
/// equal to the source.
#[test]
fn rows_that_swap_a_unique_value_arrive_from_mysql() {
    let w = World::binlog("delta_swap");
    w.mysql(
        "CREATE TABLE person (id INT PRIMARY KEY, email VARCHAR(50) NOT NULL UNIQUE, n INT);
         INSERT INTO person VALUES (1, 'a@x', 1), (2, 'b@x', 2), (3, 'c@x', 3);",
    );
    w.pg("CREATE TABLE person (id integer PRIMARY KEY, email text NOT NULL UNIQUE, n integer)");
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "UPDATE person SET email = 'tmp' WHERE id = 1;
         UPDATE person SET email = 'a@x' WHERE id = 2;
         UPDATE person SET email = 'b@x', n = 10 WHERE id = 1;",
    );
    let d = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d), 0);
    // The journal holds the retry as it ran: the savepoint, the first upsert, the
    // rollback to it with why, the rows set aside, the upsert again, the release.
    let sql = w.journal_sql();
    let at = |needle: &str| {
        sql.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in {sql}"))
    };
    assert!(
        at("SAVEPOINT pgconverge_clash;  -- other unique constraints may clash half-way")
            < at(
                "ROLLBACK TO SAVEPOINT pgconverge_clash;  -- table `person`: the upsert clashed with `person_email_key` half-way"
            )
            && at("ROLLBACK TO SAVEPOINT") < at("RELEASE SAVEPOINT pgconverge_clash;"),
        "{sql}"
    );
    assert_eq!(
        sql.matches("INSERT INTO \"public\".\"person\"").count(),
        2,
        "{sql}"
    );
    assert_eq!(
        w.pg_value(
            "SELECT string_agg(id || ':' || email || ':' || n, ',' ORDER BY id) FROM person"
        )
        .as_deref(),
        Some("1:b@x:10,2:a@x:2,3:c@x:3")
    );
}

/// A middle row the log updated and an unlogged InnoDB cascade then deleted (its parent's
/// DELETE was logged, its own removal was not): its children, which only the target
/// still holds, go with it, as they did at the source.
#[test]
fn a_cascade_through_a_row_the_log_only_updated_reaches_its_children() {
    let w = World::binlog("delta_cascade_updated");
    w.mysql(
        "CREATE TABLE a (id INT PRIMARY KEY);
         CREATE TABLE b (id INT PRIMARY KEY, a_id INT NOT NULL, v INT,
           FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE);
         CREATE TABLE c (id INT PRIMARY KEY, b_id INT NOT NULL,
           FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE);
         INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (10, 1, 0), (20, 2, 0);
         INSERT INTO c VALUES (100, 10), (200, 20);",
    );
    w.pg(
        "CREATE TABLE a (id integer PRIMARY KEY);
         CREATE TABLE b (id integer PRIMARY KEY, a_id integer NOT NULL REFERENCES a ON DELETE CASCADE, v integer);
         CREATE TABLE c (id integer PRIMARY KEY, b_id integer NOT NULL REFERENCES b ON DELETE CASCADE);",
    );
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("UPDATE b SET v = 1 WHERE id = 10; DELETE FROM a WHERE id = 1;");
    let d = delta(&w, &base_dir, &[]);
    let o = import(&w, &d);
    assert_exit(&o, 0);
    // The summary's rows are the upserts; the deletes are said apart, with the row the
    // source's cascade reached in the target alone (c 100).
    assert!(
        stdout(&o).contains(
            "deleted: 3 rows in 3 tables (the delta listed 2 keys; the source's foreign-key \
             actions (CASCADE) deleted 1 row only the target held)"
        ),
        "{}",
        stdout(&o)
    );
    for (t, want) in [("a", "2"), ("b", "20"), ("c", "200")] {
        assert_eq!(
            w.pg_value(&format!(
                "SELECT string_agg(id::text, ',' ORDER BY id) FROM {t}"
            ))
            .as_deref(),
            Some(want),
            "table {t}"
        );
    }
}

/// A row an unlogged cascade deleted and the same delta inserted again under its key: the
/// old row's children that only the target holds go, as at the source.
#[test]
fn a_key_deleted_by_a_cascade_and_inserted_again_loses_its_old_children() {
    let w = World::binlog("delta_cascade_reinsert");
    w.mysql(
        "CREATE TABLE a (id INT PRIMARY KEY);
         CREATE TABLE b (id INT PRIMARY KEY, a_id INT NOT NULL,
           FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE);
         CREATE TABLE c (id INT PRIMARY KEY, b_id INT NOT NULL,
           FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE);
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (10, 1); INSERT INTO c VALUES (100, 10);",
    );
    w.pg(
        "CREATE TABLE a (id integer PRIMARY KEY);
         CREATE TABLE b (id integer PRIMARY KEY, a_id integer NOT NULL REFERENCES a ON DELETE CASCADE);
         CREATE TABLE c (id integer PRIMARY KEY, b_id integer NOT NULL REFERENCES b ON DELETE CASCADE);",
    );
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("DELETE FROM a WHERE id = 1; INSERT INTO a VALUES (1); INSERT INTO b VALUES (10, 1);");
    let d = delta(&w, &base_dir, &[]);
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM c").as_deref(),
        Some("0")
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM b").as_deref(),
        Some("1")
    );
}

/// A row moved by ON UPDATE CASCADE and then deleted with its parent's new key: it is
/// gone as deleted, so its own children (ON DELETE CASCADE only) go too.
#[test]
fn a_row_moved_then_deleted_by_cascades_takes_its_children() {
    let w = World::binlog("delta_cascade_moved");
    w.mysql(
        "CREATE TABLE b (id INT PRIMARY KEY);
         CREATE TABLE c (id INT PRIMARY KEY, b_id INT NOT NULL,
           FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE ON UPDATE CASCADE);
         CREATE TABLE d (id INT PRIMARY KEY, c_id INT NOT NULL,
           FOREIGN KEY (c_id) REFERENCES c (id) ON DELETE CASCADE);
         INSERT INTO b VALUES (10); INSERT INTO c VALUES (100, 10); INSERT INTO d VALUES (1000, 100);",
    );
    w.pg(
        "CREATE TABLE b (id integer PRIMARY KEY);
         CREATE TABLE c (id integer PRIMARY KEY, b_id integer NOT NULL REFERENCES b ON DELETE CASCADE ON UPDATE CASCADE);
         CREATE TABLE d (id integer PRIMARY KEY, c_id integer NOT NULL REFERENCES c ON DELETE CASCADE);",
    );
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("UPDATE b SET id = 15 WHERE id = 10; DELETE FROM b WHERE id = 15;");
    let d = delta(&w, &base_dir, &[]);
    assert_exit(&import(&w, &d), 0);
    for t in ["b", "c", "d"] {
        assert_eq!(
            w.pg_value(&format!("SELECT count(*)::text FROM {t}"))
                .as_deref(),
            Some("0"),
            "table {t}"
        );
    }
}

/// A tree (parent_id -> id ON DELETE CASCADE): deleting its root deletes the whole
/// subtree, however deep, and a table pointing into it with ON DELETE SET NULL is
/// cleared for every deleted node.
#[test]
fn a_self_referencing_cascade_goes_down_the_whole_subtree() {
    let w = World::binlog("delta_cascade_tree");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, parent_id INT NULL,
           FOREIGN KEY (parent_id) REFERENCES t (id) ON DELETE CASCADE);
         CREATE TABLE n (id INT PRIMARY KEY, t_id INT NULL,
           FOREIGN KEY (t_id) REFERENCES t (id) ON DELETE SET NULL);
         INSERT INTO t VALUES (1, NULL), (2, 1), (3, 2), (4, 3), (9, NULL);
         INSERT INTO n VALUES (6, 4), (7, 9);",
    );
    w.pg(
        "CREATE TABLE t (id integer PRIMARY KEY, parent_id integer REFERENCES t ON DELETE CASCADE);
         CREATE TABLE n (id integer PRIMARY KEY, t_id integer REFERENCES t ON DELETE SET NULL);",
    );
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("DELETE FROM t WHERE id = 1;");
    let d = delta(&w, &base_dir, &[]);
    let o = import(&w, &d);
    assert_exit(&o, 0);
    // The rounds of the cycle run as one block, which counts them too (the tree's rows
    // only the target held: 2, 3, 4 under the deleted 1); the SET NULL on `n`, outside
    // the cycle, runs after them.
    assert!(
        stdout(&o).contains(
            "deleted: 4 rows in 1 table (the delta listed 1 key; the source's foreign-key \
             actions (CASCADE) deleted 3 rows only the target held)"
        ) && stdout(&o).contains("cleared: 1 reference in `n`"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM t")
            .as_deref(),
        Some("9")
    );
    assert_eq!(
        w.pg_value(
            "SELECT string_agg(id || ':' || coalesce(t_id::text, 'null'), ',' ORDER BY id) FROM n"
        )
        .as_deref(),
        Some("6:null,7:9")
    );
}

/// Cascades in a cycle through two tables (a -> b -> a): deleting the first row deletes
/// the whole chain that hangs from it, round after round.
#[test]
fn a_cascade_cycle_through_two_tables_goes_all_the_way() {
    let w = World::binlog("delta_cascade_cycle");
    w.mysql(
        "CREATE TABLE a (id INT PRIMARY KEY, b_id INT NULL);
         CREATE TABLE b (id INT PRIMARY KEY, a_id INT NOT NULL,
           FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE;
         INSERT INTO a VALUES (1, NULL); INSERT INTO b VALUES (10, 1);
         INSERT INTO a VALUES (2, 10); INSERT INTO b VALUES (20, 2);
         INSERT INTO a VALUES (3, 20); INSERT INTO a VALUES (9, NULL);",
    );
    w.pg(
        "CREATE TABLE a (id integer PRIMARY KEY, b_id integer);
         CREATE TABLE b (id integer PRIMARY KEY, a_id integer NOT NULL REFERENCES a ON DELETE CASCADE);
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b ON DELETE CASCADE;",
    );
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("DELETE FROM a WHERE id = 1;");
    assert_eq!(
        w.mysql_rows("SELECT GROUP_CONCAT(id ORDER BY id) FROM a"),
        vec![vec![Some(b"9".to_vec())]],
        "the source's own cascade"
    );
    let d = delta(&w, &base_dir, &[]);
    let o = import(&w, &d);
    assert_exit(&o, 0);
    // a 1 by its key; b 10, a 2, b 20, a 3 by the rounds.
    assert!(
        stdout(&o).contains(
            "deleted: 5 rows in 2 tables (the delta listed 1 key; the source's foreign-key \
             actions (CASCADE) deleted 4 rows only the target held)"
        ),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM a")
            .as_deref(),
        Some("9")
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM b").as_deref(),
        Some("0")
    );
}

/// A key changed and changed back within one delta (p 3 -> 8 -> 3), which ON UPDATE
/// CASCADE carried through a child keyed by the reference: the grandchild's ON UPDATE
/// SET NULL, which ran at the source, runs in the target too.
#[test]
fn a_key_changed_and_changed_back_clears_set_null_grandchildren() {
    let w = World::binlog("delta_cascade_restored");
    w.mysql(
        "CREATE TABLE p (id INT PRIMARY KEY);
         CREATE TABLE c (p_id INT NOT NULL, n VARCHAR(5) NOT NULL, PRIMARY KEY (p_id, n),
           FOREIGN KEY (p_id) REFERENCES p (id) ON UPDATE CASCADE);
         CREATE TABLE h (id INT PRIMARY KEY, p_id INT NULL, n VARCHAR(5) NULL,
           FOREIGN KEY (p_id, n) REFERENCES c (p_id, n) ON UPDATE SET NULL);
         INSERT INTO p VALUES (3); INSERT INTO c VALUES (3, 'x'); INSERT INTO h VALUES (30, 3, 'x');",
    );
    w.pg("CREATE TABLE p (id integer PRIMARY KEY);
         CREATE TABLE c (p_id integer NOT NULL REFERENCES p ON UPDATE CASCADE, n text NOT NULL,
           PRIMARY KEY (p_id, n));
         CREATE TABLE h (id integer PRIMARY KEY, p_id integer, n text,
           FOREIGN KEY (p_id, n) REFERENCES c (p_id, n) ON UPDATE SET NULL);");
    let base_dir = base(&w, &[]);
    assert_exit(&import(&w, &base_dir), 0);
    w.mysql("UPDATE p SET id = 8 WHERE id = 3; UPDATE p SET id = 3 WHERE id = 8;");
    let d = delta(&w, &base_dir, &[]);
    let o = import(&w, &d);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(
            "cleared: 1 reference in `h` (set to NULL as the source's foreign-key actions did"
        ),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        w.pg_value(
            "SELECT id || ':' || coalesce(p_id::text, 'null') || ':' || coalesce(n, 'null') FROM h"
        )
        .as_deref(),
        Some("30:null:null")
    );
    assert_eq!(w.pg_value("SELECT p_id || n FROM c").as_deref(), Some("3x"));
}

/// A full import or `migrate` of an export that starts no chain, into a target that
/// follows one, is refused before any write (the chain's record would vouch for data the
/// target no longer holds, and the next delta would be applied onto it); after
/// `delta-end` it loads. Ids the source drew and deleted inside a delta move the
/// target's sequence past them, as a full import does.
#[test]
fn a_plain_import_into_a_chained_target_is_refused_and_sequences_pass_drawn_ids() {
    let w = World::binlog("delta_plain_on_chain");
    w.mysql(
        "CREATE TABLE item (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB;
         INSERT INTO item (v) VALUES (1), (2);",
    );
    w.pg("CREATE TABLE item (id serial PRIMARY KEY, v int);");
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("INSERT INTO item (v) VALUES (3), (4), (5); DELETE FROM item WHERE id > 2;");
    let d = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_value("SELECT nextval('item_id_seq')::text").as_deref(),
        Some("6")
    );
    let o = w.run(&["export", &w.db, "--out", "plain", "-q"]);
    assert_exit(&o, 0);
    let plain = export_dir(&o, w.path());
    let before = w.fingerprint();
    for o in [
        import(&w, &plain),
        w.run(&["migrate", &w.db, "--yes", "-q"]),
    ] {
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("follows a delta chain")
                && stderr(&o).contains("hint: end the chain first (`pgconverge delta-end"),
            "{}",
            stderr(&o)
        );
        assert_eq!(w.fingerprint(), before);
        assert_eq!(w.run_log_statuses().last().unwrap(), "failed");
    }
    assert_exit(&w.run(&["delta-end", &w.db]), 0);
    assert_exit(&import(&w, &plain), 0);
}

/// A key that changes only as a case-insensitive, PAD SPACE collation cannot tell
/// (`Key-One` -> `KEY-ONE`, `pad` -> `pad `): the old key reads as gone and is deleted,
/// the new one is written, with its children (ON UPDATE CASCADE); no stale row stays.
#[test]
fn a_key_changed_only_in_case_or_trailing_blanks_moves_exactly() {
    let w = World::binlog("delta_key_case");
    w.mysql(
        "CREATE TABLE tag (id VARCHAR(36) NOT NULL PRIMARY KEY, v INT)
           ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
         CREATE TABLE note (id INT PRIMARY KEY, tag_id VARCHAR(36) NOT NULL,
           FOREIGN KEY (tag_id) REFERENCES tag (id) ON UPDATE CASCADE ON DELETE CASCADE)
           ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
         INSERT INTO tag VALUES ('Key-One', 1), ('key-two', 2), ('pad', 3);
         INSERT INTO note VALUES (1, 'Key-One'), (2, 'pad');",
    );
    w.pg("CREATE TABLE tag (id varchar(36) PRIMARY KEY, v int);
         CREATE TABLE note (id int PRIMARY KEY, tag_id varchar(36) NOT NULL REFERENCES tag (id));");
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("UPDATE tag SET id = 'KEY-ONE', v = 10 WHERE id = 'Key-One'; UPDATE tag SET id = 'pad ' WHERE id = 'pad';");
    let d = delta(&w, &b, &[]);
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_rows("SELECT id || '|' || v FROM tag ORDER BY id"),
        w.mysql_rows("SELECT CONCAT(id, '|', v) FROM tag ORDER BY BINARY id")
            .into_iter()
            .map(|r| r
                .into_iter()
                .map(|v| v.map(|v| String::from_utf8(v).unwrap()))
                .collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        w.pg_rows("SELECT id::text || '|' || tag_id FROM note ORDER BY id"),
        vec![
            vec![Some("1|KEY-ONE".to_string())],
            vec![Some("2|pad ".to_string())]
        ]
    );
    deep_verify(&w, &d);
}

/// A foreign key's action changed with the log off (`sql_log_bin = 0`, no DDL in the log)
/// is refused: the delta would apply the new action to a delete made under the old one
/// (a SET NULL child deleted by an inferred CASCADE). The base records the actions.
#[test]
fn a_foreign_key_action_changed_without_the_log_is_refused() {
    let w = World::binlog("delta_fk_action");
    w.mysql(
        "CREATE TABLE child (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE gc (id INT PRIMARY KEY, child_id INT,
           CONSTRAINT fk_gc FOREIGN KEY (child_id) REFERENCES child (id) ON DELETE SET NULL)
           ENGINE=InnoDB;
         INSERT INTO child VALUES (1), (2); INSERT INTO gc VALUES (10, 1), (20, 2);",
    );
    w.pg("CREATE TABLE child (id int PRIMARY KEY);
         CREATE TABLE gc (id int PRIMARY KEY, child_id int REFERENCES child (id));");
    let b = base(&w, &[]);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("migration_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["cascades"][0]["on_delete"], "SET NULL",
        "{}",
        m["cascades"]
    );
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "DELETE FROM child WHERE id = 2;
         SET SESSION sql_log_bin = 0;
         ALTER TABLE gc DROP FOREIGN KEY fk_gc;
         ALTER TABLE gc ADD CONSTRAINT fk_gc FOREIGN KEY (child_id) REFERENCES child (id) ON DELETE CASCADE;
         SET SESSION sql_log_bin = 1;",
    );
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("the source's foreign-key actions changed since")
            && stderr(&o)
                .contains("foreign key `fk_gc` (gc.child_id -> child.id, ON DELETE CASCADE")
            && stderr(&o)
                .contains("was foreign key `fk_gc` (gc.child_id -> child.id, ON DELETE SET NULL"),
        "{}",
        stderr(&o)
    );
}

/// A `set` on a key column given only to the delta's import (the export had no mapping)
/// is refused before any write: a computed key is new each time, so the delta's rows
/// would be inserted beside the ones they update.
#[test]
fn a_set_on_a_key_column_is_refused_at_the_delta_s_import() {
    let w = World::binlog("delta_key_set");
    w.mysql(
        "CREATE TABLE p (id INT PRIMARY KEY, v VARCHAR(5));
         CREATE TABLE k (a INT, b INT, v INT, PRIMARY KEY (a, b));
         INSERT INTO p VALUES (5, 'z'); INSERT INTO k VALUES (1, 2, 3);",
    );
    w.pg("CREATE TABLE p (id integer PRIMARY KEY, v varchar(5));
         CREATE TABLE k (a integer, b integer, v integer, PRIMARY KEY (a, b));");
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("UPDATE p SET v = 'zz' WHERE id = 5; UPDATE k SET v = 4;");
    let d = delta(&w, &b, &[]);
    let before = w.fingerprint();
    for (table, set) in [
        ("p", "id = \"id::int + 100\""),
        ("k", "b = \"b::int + 100\""),
    ] {
        std::fs::write(
            w.path().join("m.toml"),
            format!("[tables.{table}]\nset = {{ {set} }}\n"),
        )
        .unwrap();
        let o = w.run(&[
            "import",
            d.to_str().unwrap(),
            "--yes",
            "-q",
            "--map",
            "m.toml",
        ]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains(
                "a `set` on a key column generates keys, which a delta cannot match again"
            ),
            "{}",
            stderr(&o)
        );
        assert_eq!(w.fingerprint(), before, "{table}");
    }
    assert_exit(&import(&w, &d), 0);
}
