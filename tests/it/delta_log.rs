//! Delta chains against what a real binary log goes through: a server of the test's own
//! (purged, restarted, killed, rotated by hand and by size, a second server), a
//! transaction of many rows with a large value, rows changed and deleted again inside one
//! delta, and the GTID recorded beside each position.

use std::path::PathBuf;

use crate::delta::*;
use crate::export::load;
use crate::harness::*;

/// A MariaDB of a test's own with the binary log on: purging the log, restarting or
/// killing the server must not disturb the shared one other tests read. Stopped (and
/// its data removed) when dropped.
pub struct PrivateServer {
    child: Option<std::process::Child>,
    pub url: String,
    port: u16,
    server_id: u32,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl PrivateServer {
    /// Install a data directory and start the server; `extra`: more server options.
    pub fn start(server_id: u32, extra: &[&str]) -> PrivateServer {
        let dir = tempfile::tempdir().unwrap();
        // A temporary directory of its own: private servers installed at once must not
        // meet in /tmp.
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let install = std::process::Command::new("mariadb-install-db")
            .env("TMPDIR", dir.path().join("tmp"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--user=root", "--auth-root-authentication-method=normal"])
            .output()
            .expect("mariadb-install-db (scripts/dev-services.sh installs MariaDB)");
        assert!(
            install.status.success(),
            "{}",
            String::from_utf8_lossy(&install.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = PrivateServer {
            child: None,
            url: format!("mysql://root@127.0.0.1:{port}"),
            port,
            server_id,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        };
        server.spawn();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start mariadbd on the data directory and wait until it answers (a readiness
    /// probe, up to 60 s).
    fn spawn(&mut self) {
        let data = self.data();
        let child = std::process::Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.dir.path().join("s").display()))
            .arg(format!(
                "--tmpdir={}",
                self.dir.path().join("tmp").display()
            ))
            .arg(format!("--log-bin={}", data.join("bin").display()))
            .args([
                "--binlog-format=ROW",
                "--binlog-row-image=FULL",
                "--user=root",
            ])
            .arg(format!("--server-id={}", self.server_id))
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mariadbd");
        self.child = Some(child);
        for _ in 0..240 {
            let ok = block(async {
                let opts = mysql_async::Opts::from_url(&self.url).unwrap();
                match mysql_async::Conn::new(opts).await {
                    Ok(c) => {
                        let _ = c.disconnect().await;
                        true
                    }
                    Err(_) => false,
                }
            });
            if ok {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("the private MariaDB did not start within 60 s");
    }

    /// A clean shutdown (the log's file ends with a Stop event), then a start on the same
    /// data (a new log file).
    pub fn restart(&mut self) {
        mysql_exec_at(&self.url, None, "SHUTDOWN");
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(status.success(), "mariadbd shut down with {status}");
        self.spawn();
    }

    /// kill -9, then a start on the same data: crash recovery of the log.
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.spawn();
    }

    /// The server's binary-log files, oldest first.
    pub fn log_files(&self, w: &World) -> Vec<String> {
        w.mysql_rows("SHOW BINARY LOGS")
            .into_iter()
            .map(|r| String::from_utf8(r[0].clone().unwrap()).unwrap())
            .collect()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A private server: a base, then a delta pointed at another server, a compressed log,
/// and a log purged past the chain's position, each refused naming what it found.
#[test]
fn a_purged_log_and_another_server_are_refused() {
    let server = PrivateServer::start(7, &[]);
    let w = World::on("delta_purged", server.url.clone());
    schema(&w);
    seed(&w, 5);
    let b = base(&w, &[]);
    let saved = load(&b).position.unwrap();
    assert_eq!(saved.server.server_id, 7);
    // Another server with a database of that name: its log is not the chain's.
    mysql_exec_at(
        &mysql_binlog_url(),
        None,
        &format!("CREATE DATABASE IF NOT EXISTS `{}`", w.db),
    );
    mysql_exec_at(&mysql_binlog_url(), Some(&w.db), MYSQL_SCHEMA);
    let elsewhere = w
        .cmd()
        .env("MYSQL_URL", mysql_binlog_url())
        .args(["export", &w.db, "--delta-from", b.to_str().unwrap()])
        .output()
        .unwrap();
    mysql_exec_at(
        &mysql_binlog_url(),
        None,
        &format!("DROP DATABASE `{}`", w.db),
    );
    assert_exit(&elsewhere, 2);
    assert!(
        stderr(&elsewhere).contains("is not the server this chain was exported from"),
        "{}",
        stderr(&elsewhere)
    );
    // A compressed binary log: refused before a base is taken, and compressed events
    // written while it was on are refused by the delta, never skipped.
    w.mysql("SET GLOBAL log_bin_compress = ON; SET GLOBAL log_bin_compress_min_len = 10");
    let o = w.run(&["export", &w.db, "--delta-base"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("log_bin_compress=OFF"),
        "{}",
        stderr(&o)
    );
    w.mysql("UPDATE parent SET note = REPEAT('z', 300) WHERE id = 2");
    w.mysql("SET GLOBAL log_bin_compress = OFF");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("compressed events"), "{}", stderr(&o));
    // The log purged past the saved position: both positions are named.
    w.mysql("FLUSH BINARY LOGS; UPDATE parent SET name = 'after' WHERE id = 1; FLUSH BINARY LOGS");
    let newest = w.mysql_rows("SHOW MASTER STATUS")[0][0].clone().unwrap();
    let newest = String::from_utf8(newest).unwrap();
    w.mysql(&format!("PURGE BINARY LOGS TO '{newest}'"));
    // MariaDB keeps a file its binlog checkpoint still needs: the oldest is what it lists.
    let oldest =
        String::from_utf8(w.mysql_rows("SHOW BINARY LOGS")[0][0].clone().unwrap()).unwrap();
    assert_ne!(oldest, saved.file, "the saved file was purged");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("saved {}:{}", saved.file, saved.position)),
        "{err}"
    );
    assert!(
        err.contains(&format!("oldest available {oldest}:4")),
        "{err}"
    );
    assert!(err.contains("start a new chain"), "{err}");
    assert!(
        !w.path()
            .join("csv_exports")
            .join(&w.db)
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with('.') }),
        "no partial directory is left"
    );
    drop(w);
}

/// The same server with a new log (RESET MASTER, or a restore from a backup): the file
/// of the chain's position exists again under its name, written past its offset, but it
/// is another log. The delta is refused by the file's creation time, naming both.
#[test]
fn a_log_reset_under_the_same_server_id_is_refused() {
    let server = PrivateServer::start(15, &[]);
    let w = World::on("delta_reset", server.url.clone());
    schema(&w);
    seed(&w, 5);
    let b = base(&w, &[]);
    let saved = load(&b).position.unwrap();
    // The creation time is in seconds: the new log must be younger by at least one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.mysql("RESET MASTER");
    for i in 0..40 {
        w.mysql(&format!(
            "UPDATE parent SET note = REPEAT('r', {}) WHERE id = 1",
            100 + i
        ));
    }
    let status = w.mysql_rows("SHOW MASTER STATUS");
    let file = String::from_utf8(status[0][0].clone().unwrap()).unwrap();
    let pos: u64 = String::from_utf8(status[0][1].clone().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(file, saved.file, "the saved file's name is in use again");
    assert!(pos > saved.position, "written past the saved offset: {pos}");
    let o = delta_run(&w, &b, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(
            "is not the server this chain was exported from: its binlog file was created at"
        ),
        "{err}"
    );
    assert!(err.contains("start a new chain"), "{err}");
    drop(w);
}

/// `n` random workload statements (inserts, updates of every column, key changes and
/// deletes that cascade, rolled-back transactions).
fn steps(w: &World, rng: &mut Lcg, top: &mut i64, n: usize) {
    for _ in 0..n {
        w.mysql(&workload_step(rng, top));
    }
}

/// A chain across a log rotated by hand and by size, a clean restart (a Stop event and a
/// new file) and a killed server (crash recovery): each delta reads every file in
/// between, and the target ends equal to the source.
#[test]
fn a_restarted_server_and_rotated_logs_are_followed() {
    let mut server = PrivateServer::start(9, &[]);
    let w = World::on("delta_restart", server.url.clone());
    schema(&w);
    seed(&w, 20);
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    let (mut rng, mut top) = (Lcg(11), 10_000);
    steps(&w, &mut rng, &mut top, 10);
    w.mysql("FLUSH BINARY LOGS");
    // From here on every few statements start a new file (the global resets at restart).
    w.mysql("SET GLOBAL max_binlog_size = 4096");
    steps(&w, &mut rng, &mut top, 15);
    server.restart();
    steps(&w, &mut rng, &mut top, 10);
    let d1 = delta(&w, &b, &[]);
    let (from, to) = (load(&b).position.unwrap(), load(&d1).position.unwrap());
    let files = server.log_files(&w);
    let crossed = files
        .iter()
        .filter(|f| **f >= from.file && **f <= to.file)
        .count();
    assert!(crossed >= 4, "the delta read {crossed} files: {files:?}");
    assert_exit(&import(&w, &d1), 0);
    assert_same(&w);
    // kill -9 between two deltas.
    steps(&w, &mut rng, &mut top, 10);
    server.crash_and_restart();
    steps(&w, &mut rng, &mut top, 10);
    let d2 = delta(&w, &d1, &[]);
    assert_exit(&import(&w, &d2), 0);
    assert_same(&w);
    deep_verify(&w, &d2);
    drop(w);
}

/// A row updated and then deleted, changed in its key and deleted in one transaction,
/// inserted, updated and deleted, or deleted with children changed first: the delta
/// deletes each key the target holds and upserts none of them.
#[test]
fn rows_changed_and_deleted_inside_one_delta_are_deleted() {
    let w = World::binlog("delta_then_deleted");
    schema(&w);
    seed(&w, 6);
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(&format!(
        "UPDATE parent SET name = 'x' WHERE id = 1; DELETE FROM parent WHERE id = 1;
         START TRANSACTION; UPDATE parent SET name = 'y' WHERE id = 2;
           UPDATE parent SET id = 20 WHERE id = 2; DELETE FROM parent WHERE id = 20; COMMIT;
         INSERT INTO parent VALUES {}; UPDATE parent SET name = 'z' WHERE id = 30;
           DELETE FROM parent WHERE id = 30;
         UPDATE child SET label = 'gone' WHERE parent_id = 3; DELETE FROM parent WHERE id = 3;",
        parent_values(30, 3)
    ));
    let d = delta(&w, &b, &[]);
    let m = load(&d);
    let parent = &m.tables["parent"];
    assert_eq!(parent.rows, 0, "no parent row is upserted");
    // Keys 1, 2, 20 (its key changed, then deleted), 30 (inserted, then deleted) and 3.
    assert_eq!(
        parent.delta.as_ref().unwrap().deleted.rows,
        5,
        "{:?}",
        parent.delta
    );
    let o = w.run(&["import", d.to_str().unwrap(), "--yes", "--json"]);
    assert_exit(&o, 0);
    // The report counts the rows the deletes removed: 1, 2 and 3 of the five keys the
    // delta lists for `parent` (20 and 30 never reached the target).
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let parent_deleted: Vec<&serde_json::Value> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["table"] == "parent")
        .map(|t| &t["deleted"])
        .collect();
    assert_eq!(parent_deleted, [&serde_json::json!(3)], "{report}");
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM parent")
            .as_deref(),
        Some("4,5,6")
    );
    assert_eq!(
        w.pg_value("SELECT count(*) FROM child WHERE parent_id IN (1, 2, 3)")
            .as_deref(),
        Some("0"),
        "the cascaded children go too"
    );
    assert_same(&w);
    deep_verify(&w, &d);
}

/// Each position of a chain carries MariaDB's GTID of that point of the log (what
/// BINLOG_GTID_POS says of its file and offset), in the manifests and in the target's
/// pgconverge.state; a delta starts at its base's.
#[test]
fn positions_carry_the_gtid_of_their_point_in_the_log() {
    let w = World::binlog("delta_gtid");
    schema(&w);
    seed(&w, 3);
    let gtid_at = |file: &str, pos: u64| -> Option<String> {
        w.mysql_rows(&format!("SELECT BINLOG_GTID_POS('{file}', {pos})"))[0][0]
            .clone()
            .map(|g| String::from_utf8(g).unwrap())
    };
    let b = base(&w, &[]);
    let from = load(&b).position.unwrap();
    assert!(
        from.gtid.as_deref().is_some_and(|g| !g.is_empty()),
        "{from:?}"
    );
    assert_eq!(from.gtid, gtid_at(&from.file, from.position));
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "UPDATE parent SET name = 'g1' WHERE id = 1; UPDATE parent SET name = 'g2' WHERE id = 2",
    );
    let d = delta(&w, &b, &[]);
    let m = load(&d);
    let to = m.position.clone().unwrap();
    assert_eq!(m.delta.as_ref().unwrap().from, from);
    assert_eq!(to.gtid, gtid_at(&to.file, to.position));
    assert_ne!(to.gtid, from.gtid, "two transactions later");
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_value("SELECT position->>'gtid' FROM pgconverge.state"),
        to.gtid
    );
}

/// One transaction that updates 30,000 rows and writes a 20 MB value (a rows event far
/// over the client's default packet size): every row arrives, on a server of the
/// test's own that accepts such a value.
#[test]
fn a_large_transaction_and_a_large_value_are_followed() {
    let server = PrivateServer::start(11, &["--max-allowed-packet=256M"]);
    let w = World::on("delta_large", server.url.clone());
    w.mysql(
        "CREATE TABLE big (id INT PRIMARY KEY, v INT NOT NULL, b LONGBLOB) ENGINE=InnoDB;
         INSERT INTO big (id, v) SELECT seq, seq FROM seq_1_to_30000;",
    );
    w.pg("CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, b bytea)");
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "START TRANSACTION; UPDATE big SET v = v + 1;
         UPDATE big SET b = REPEAT(x'01fe', 10485760) WHERE id = 7;
         DELETE FROM big WHERE id > 29990; COMMIT",
    );
    let d = delta(&w, &b, &[]);
    let entry = &load(&d).tables["big"];
    assert_eq!(
        (entry.rows, entry.delta.as_ref().unwrap().deleted.rows),
        (29_990, 10)
    );
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_rows("SELECT count(*)::text, sum(v)::text, max(length(b))::text FROM big"),
        vec![vec![
            Some("29990".into()),
            Some(((1..=29_990u64).sum::<u64>() + 29_990).to_string()),
            Some("20971520".into())
        ]]
    );
    deep_verify(&w, &d);
    drop(w);
}

/// Keys whose binary-log form takes more than one byte or group: an ENUM of 300 members
/// (two bytes), a SET of 12 members (two bytes), DECIMAL(65,30) values across its 9-digit
/// groups, negative and tiny. Updated and deleted by key through a delta.
#[test]
fn wide_enum_set_and_decimal_keys_are_followed() {
    let w = World::binlog("delta_wide_keys");
    let members: Vec<String> = (1..=300).map(|i| format!("'m{i}'")).collect();
    let flags: Vec<String> = (1..=12).map(|i| format!("'f{i}'")).collect();
    w.mysql(&format!(
        "CREATE TABLE wk (e ENUM({}) NOT NULL, s SET({}) NOT NULL, d DECIMAL(65,30) NOT NULL,
            v VARCHAR(10), PRIMARY KEY (e, s, d)) ENGINE=InnoDB;
         INSERT INTO wk VALUES
           ('m1', 'f1', 0, 'a'),
           ('m280', 'f9,f12', -12345678901234567890123456789012345.123456789012345678901234567891, 'b'),
           ('m300', 'f1,f8,f9', -0.000000000000000000000000000001, 'c'),
           ('m256', 'f10', 999999999.999999999, 'd'),
           ('m255', '', 123456789012345678.000000001, 'e');",
        members.join(","),
        flags.join(",")
    ));
    w.pg(
        "CREATE TABLE wk (e text, s text, d numeric(65,30), v varchar(10), PRIMARY KEY (e, s, d))",
    );
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(
        "UPDATE wk SET v = 'B' WHERE e = 'm280'; DELETE FROM wk WHERE e = 'm300';
         UPDATE wk SET v = 'D' WHERE e = 'm256'; DELETE FROM wk WHERE e = 'm255';",
    );
    let d = delta(&w, &b, &[]);
    let entry = &load(&d).tables["wk"];
    assert_eq!(
        (entry.rows, entry.delta.as_ref().unwrap().deleted.rows),
        (2, 2)
    );
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_rows("SELECT e, s, d::text, v FROM wk ORDER BY v"),
        vec![
            vec![
                Some("m280".into()),
                Some("f9,f12".into()),
                Some("-12345678901234567890123456789012345.123456789012345678901234567891".into()),
                Some("B".into())
            ],
            vec![
                Some("m256".into()),
                Some("f10".into()),
                Some("999999999.999999999000000000000000000000".into()),
                Some("D".into())
            ],
            vec![
                Some("m1".into()),
                Some("f1".into()),
                Some("0.000000000000000000000000000000".into()),
                Some("a".into())
            ],
        ]
    );
    deep_verify(&w, &d);
}
