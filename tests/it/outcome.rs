//! What the import says is what the target holds (issue 25, findings 1-4 and 11). Hooks
//! that would end the import's transaction are refused before any write; the backstop
//! stops an import whose transaction a hook ended anyway and says what was committed;
//! once COMMIT is sent the outcome is the server's answer (a proxy holds COMMIT's answer,
//! another forwards COMMIT and then refuses every connection); the audit trail is
//! required; exit code 3 and the run-log statuses `unknown` and `partially_committed`.
//! Each fault test checks the target, the report and the run log.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;
use crate::proxy::{CutAt, Proxy};
use crate::reliability::{export, import, last_status, signal, small_world, wait_for_statement};

/// The port of the test PostgreSQL, which the proxies forward to.
pub fn upstream() -> u16 {
    postgres_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.split(['/', '?']).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432)
}

/// The binary, configured as `w.cmd()`, but reaching PostgreSQL through `proxy`.
pub fn through(w: &World, proxy: &Proxy) -> Command {
    let mut c = w.cmd();
    c.env(
        "POSTGRES_URL",
        format!(
            "postgres://postgres@127.0.0.1:{}?sslmode=disable",
            proxy.port
        ),
    );
    c
}

/// A running command whose stderr is read as it comes.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: String,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pgconverge");
        let err = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stderr: String::new(),
        }
    }

    /// Wait (up to 120 s, against a hang) until stderr holds `want`.
    pub fn wait_for(&mut self, want: &str) {
        while !self.stderr.contains(want) {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                }
                Err(_) => panic!("never saw {want:?} on stderr:\n{}", self.stderr),
            }
        }
    }

    /// Wait for the end: exit code, stdout, the whole stderr.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        (status.code(), out, self.stderr)
    }
}

/// The transaction id in `pg_xact_status('<xid>')` of a message.
pub fn asked_xid(text: &str) -> String {
    let rest = text
        .split("pg_xact_status('")
        .nth(1)
        .unwrap_or_else(|| panic!("no pg_xact_status in {text}"));
    rest.chars().take_while(char::is_ascii_digit).collect()
}

fn rows_of_t(w: &World) -> Option<String> {
    w.pg_value("SELECT string_agg(v, ',' ORDER BY id) FROM t")
}

fn write_map(w: &World, name: &str, text: &str) -> String {
    std::fs::write(w.path().join(name), text).unwrap();
    name.to_string()
}

#[test]
fn hooks_that_would_end_the_transaction_are_refused_before_any_write() {
    let (w, dir) = small_world("out_hooks_refused");
    let before = w.fingerprint();
    let logged = w.run_log_statuses();
    for (hooks, key, said) in [
        (
            r#"before = ["COMMIT"]"#,
            "[import] before #1",
            "`COMMIT` ends the import's transaction",
        ),
        (
            r#"after = ["COMMIT"]"#,
            "[import] after #1",
            "`COMMIT` ends the import's transaction",
        ),
        (
            r#"before = ["END; DELETE FROM t; BEGIN"]"#,
            "[import] before #1",
            "`END` ends the import's transaction",
        ),
        (
            r#"after = ["INSERT INTO t VALUES (50, 'x');  Commit  "]"#,
            "[import] after #1",
            "`Commit` ends the import's transaction",
        ),
        (
            r#"before = ["SET LOCAL session_replication_role = origin"]"#,
            "[import] before #1",
            "changes session_replication_role",
        ),
        (
            r#"require = ["SELECT true; ROLLBACK PREPARED 'x'"]"#,
            "[import] require #1",
            "holds 2 statements",
        ),
    ] {
        let map = write_map(&w, "hooks.toml", &format!("[import]\n{hooks}\n"));
        for rehearse in [false, true] {
            let mut args = vec!["--map", map.as_str()];
            if rehearse {
                args.push("--rehearse");
            }
            let o = import(&w, &dir, &args);
            assert_exit(&o, 2);
            let err = stderr(&o);
            assert!(
                err.contains(key) && err.contains(said) && err.contains("hint:"),
                "{hooks} (rehearse {rehearse}): {err}"
            );
            assert!(!err.contains("the target is unchanged"), "{err}");
            assert_eq!(w.fingerprint(), before, "{hooks}");
        }
        // The same mapping is refused by export and migrate before anything is read.
        let o = w.run(&["export", &w.db, "--out", "again", "--map", &map]);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
        assert!(!w.path().join("again").exists());
        let o = w.run(&["migrate", &w.db, "--out", "again", "--map", &map, "--yes"]);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
        assert_eq!(w.fingerprint(), before, "{hooks}");
    }
    // A second statement in a source's `where` or `query` (MySQL runs several in one
    // query) is refused before the source is read.
    for table in [
        r#"where = "id > 0; DELETE FROM t""#,
        r#"where = "id > 0 /*! ; DELETE FROM t */""#,
        r#"query = "SELECT id, v FROM t; DELETE FROM t""#,
    ] {
        let map = write_map(&w, "source.toml", &format!("[tables.t]\n{table}\n"));
        let o = w.run(&["export", &w.db, "--out", "again", "--map", &map]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("[tables.t]") && stderr(&o).contains("holds a `;`"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            mysql_rows(&w.db, "SELECT COUNT(*) FROM t")[0][0].as_deref(),
            Some(&b"3"[..])
        );
    }
    // A DO block's COMMIT, a string and a comment are not the import's transaction control.
    let map = write_map(
        &w,
        "fine.toml",
        r#"[import]
before = ["DO $$ BEGIN IF false THEN COMMIT; END IF; END $$", "SELECT 'COMMIT' /* END */"]
"#,
    );
    let o = import(&w, &dir, &["--map", &map, "--rehearse"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("rehearsal passed") && stdout(&o).contains("the target is unchanged"),
        "{}",
        stdout(&o)
    );
    assert_eq!(w.fingerprint(), before);
    // Nothing was started by the refused runs: the run log holds the export and the
    // rehearsal only (rolled back: nothing it loaded was kept).
    let mut want = logged;
    want.extend(["started".to_string(), "rolled_back".to_string()]);
    assert_eq!(w.run_log_statuses(), want);
}

/// Import `dir` through the library with `edit` applied to the plan first: a hook put
/// past the mapping's checks, as one that ended the transaction where no lexer can see
/// it would run. Returns the state and the error.
fn import_with_plan(
    w: &World,
    dir: &Path,
    edit: impl FnOnce(&mut pgconverge::import::plan::Plan),
) -> (
    pgconverge::import::transaction::TxState,
    anyhow::Error,
    PathBuf,
) {
    use pgconverge::cli::{Cli, Command};
    use pgconverge::import::load::Env;
    use pgconverge::import::transaction::TxState;
    use pgconverge::store::export_dir::ExportDir;
    use pgconverge::store::journal::Journal;
    use pgconverge::store::open;
    let cli = <Cli as clap::Parser>::parse_from(["pgconverge", "import", "x", "--yes"]);
    let Command::Import(args) = cli.command else {
        unreachable!()
    };
    let layers = pgconverge::config::Layers::default();
    let target = pgconverge::config::postgres(
        &pgconverge::cli::PostgresArgs {
            postgres_url: Some(format!("{}?sslmode=disable", postgres_url())),
            ..Default::default()
        },
        &layers,
    )
    .unwrap();
    let export = ExportDir::at(dir);
    let manifest = open::manifest(&export).unwrap();
    let mapping = pgconverge::mapping::Mapping::stored(
        &manifest.profile(),
        &manifest.source_database(),
        open::mapping(&export, &manifest).unwrap(),
        &layers,
    )
    .unwrap();
    let options = pgconverge::cmd::load_options(&args.load, &mapping, false);
    let job = pgconverge::import::Job {
        dir: export,
        manifest,
        mapping,
        target,
        target_db: w.db.clone(),
        options,
        prepass: false,
        manifest_sha256: String::new(),
    };
    let progress = pgconverge::progress::Progress::new(true);
    let mut journal = Journal::create(&w.run_log(), "backstop").unwrap();
    let journal_path = journal.log_path.clone();
    let mut state = TxState::default();
    let err = block(async {
        let mut prepared = pgconverge::import::prepare(&job, &progress).await.unwrap();
        edit(&mut prepared.plan);
        let mut env = Env {
            dir: &job.dir,
            progress: &progress,
            journal: &mut journal,
            pipeline: None,
            diagnosis: false,
        };
        pgconverge::import::execute(&job, &mut prepared, &mut env, &mut state)
            .await
            .expect_err("the backstop must stop this import")
    });
    (state, err, journal_path)
}

#[test]
fn the_backstop_stops_an_import_whose_transaction_a_hook_ended_and_says_what_was_kept() {
    use pgconverge::import::guard::Escaped;
    use pgconverge::import::outcome::Verdict;
    let (w, dir) = small_world("out_backstop");
    type Edit = fn(&mut pgconverge::import::plan::Plan);
    let cases: [(&str, Edit, Verdict, Option<&str>); 3] = [
        // Rolled back, then a new transaction: the import's is aborted, the hook's
        // INSERT (in a transaction the backstop rolls back) is not kept either.
        (
            "after: ROLLBACK; BEGIN; INSERT",
            |p| p.after = vec!["ROLLBACK; BEGIN; INSERT INTO t VALUES (100, 'hook')".into()],
            Verdict::Unknown,
            Some("old"),
        ),
        // COMMIT after the load: the rows are in, before any orphan check.
        (
            "after: COMMIT",
            |p| p.after = vec!["COMMIT".into()],
            Verdict::PartiallyCommitted,
            Some("a,b,c"),
        ),
        // END commits the TRUNCATE; the DELETE runs on its own; nothing is loaded.
        (
            "before: END; DELETE FROM t; BEGIN",
            |p| p.before = vec!["END; DELETE FROM t; BEGIN".into()],
            Verdict::PartiallyCommitted,
            None,
        ),
    ];
    for (what, edit, verdict, rows) in cases {
        let (state, err, journal) = import_with_plan(&w, &dir, edit);
        let escaped = err
            .downcast_ref::<Escaped>()
            .unwrap_or_else(|| panic!("{what}: not stopped by the backstop: {err:#}"));
        assert_eq!(Verdict::of(&state), verdict, "{what}: {err:#}");
        assert!(verdict.needs_attention());
        let text = format!("{err:#}");
        assert!(
            text.contains("ended the import's transaction"),
            "{what}: {text}"
        );
        assert_eq!(
            escaped.committed(),
            verdict == Verdict::PartiallyCommitted,
            "{what}"
        );
        if escaped.committed() {
            assert!(text.contains("COMMITTED"), "{what}: {text}");
        }
        assert_eq!(rows_of_t(&w).as_deref(), rows, "{what}");
        let log = std::fs::read_to_string(journal).unwrap();
        assert!(log.contains("STOPPED: [import]"), "{what}: {log}");
        // What each verdict says never claims an unchanged target.
        assert!(!verdict.words("import", state.xid).contains("is unchanged"));
    }
}

#[test]
fn a_hook_cannot_change_how_the_rest_of_the_data_is_read() {
    let w = World::new("out_settings");
    w.mysql(
        "SET time_zone = '+00:00';
         CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMP NULL, name VARCHAR(20));
         INSERT INTO ev VALUES (1, '2024-01-01 10:00:00', 'café');",
    );
    w.pg("CREATE TABLE ev (id integer PRIMARY KEY, at timestamptz, name text);");
    let dir = export(&w, "out");
    let map = write_map(
        &w,
        "settings.toml",
        r#"[import]
before = ["SET TimeZone = 'America/New_York'", "SET client_encoding = 'LATIN1'", "SET DateStyle = 'SQL, DMY'"]
"#,
    );
    // As CSV, so that the server reads every value with the session's settings.
    let o = import(&w, &dir, &["--map", &map, "--copy-format", "csv"]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_value(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '|' || name FROM ev"
        )
        .as_deref(),
        Some("2024-01-01 10:00:00|café")
    );
    assert_eq!(last_status(&w), "completed");
    // Said, and journaled as the statements that set them back: a replay of the
    // journal reads the rest as the import did.
    let err = stderr(&o);
    assert!(
        err.contains("hook #1 (SET TimeZone = 'America/New_York') set TimeZone to 'America/New_York': set back to 'UTC'"),
        "{err}"
    );
    assert!(err.contains("set DateStyle to 'SQL, DMY'"), "{err}");
    let journal = w.journal_sql();
    for sql in [
        "SELECT set_config('TimeZone', 'UTC', true);",
        "SELECT set_config('client_encoding', 'UTF8', true);",
        "SELECT set_config('DateStyle', 'ISO, MDY', true);",
    ] {
        assert!(journal.contains(sql), "{sql}: {journal}");
    }
}

/// Run `args` with PostgreSQL behind a proxy that holds COMMIT's answer, and send
/// `sig` once COMMIT has reached the server; returns when the command says it waits.
pub fn signalled_during_commit(w: &World, args: &[&str], sig: &str) -> (Proxy, Running) {
    let proxy = Proxy::start(upstream(), CutAt::HoldAnswer);
    let mut cmd = through(w, &proxy);
    cmd.args(args);
    let mut run = Running::start(cmd);
    proxy.wait_for_commit();
    signal(&run.child, sig);
    run.wait_for("while the answer to COMMIT is awaited: waiting for it");
    (proxy, run)
}

#[test]
fn a_signal_while_commit_is_answered_waits_for_the_answer_and_reports_committed() {
    let (w, dir) = small_world("out_commit_signal_once");
    let (proxy, run) =
        signalled_during_commit(&w, &["import", dir.to_str().unwrap(), "--yes"], "INT");
    proxy.release();
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("import: committed into"), "{out}");
    assert!(!err.contains("rolled back"), "{err}");
    assert_eq!(rows_of_t(&w).as_deref(), Some("a,b,c"));
    assert_eq!(last_status(&w), "completed");
}

#[test]
fn migrate_waits_for_commit_s_answer_after_a_signal_then_stops_before_verify() {
    let (w, _) = small_world("out_migrate_commit_signal");
    let (proxy, run) = signalled_during_commit(
        &w,
        &["migrate", &w.db, "--out", "migrated", "--yes"],
        "TERM",
    );
    proxy.release();
    // Committed; the signal then ends the run before its verify, and says both.
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("migrate COMMITTED the import into")
            && err.contains("verify did not finish: interrupted (SIGTERM)")
            && err.contains("pgconverge verify"),
        "{err}"
    );
    assert!(!err.contains("rolled back"), "{err}");
    assert_eq!(rows_of_t(&w).as_deref(), Some("a,b,c"));
    let entries = w.run_log_entries();
    let last = entries.last().unwrap();
    assert!(
        last["message"].as_str().unwrap().contains("COMMITTED"),
        "{last}"
    );
}

#[test]
fn a_second_signal_while_commit_is_answered_is_an_unknown_outcome_with_the_sql() {
    let (w, dir) = small_world("out_commit_signal_twice");
    let (proxy, run) = signalled_during_commit(
        &w,
        &["import", dir.to_str().unwrap(), "--yes", "--json"],
        "INT",
    );
    signal(&run.child, "TERM");
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(3), "{out}\n{err}");
    // --json: the failure object says the outcome is unknown, with exit 3.
    let failure: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(failure["status"], "failed", "{failure}");
    assert_eq!(failure["outcome"], "unknown", "{failure}");
    assert_eq!(failure["exit_code"], 3, "{failure}");
    assert!(
        err.contains("import outcome UNKNOWN") && err.contains("interrupted again"),
        "{err}"
    );
    assert!(!err.contains("rolled back"), "{err}");
    let xid = asked_xid(&err);
    // The server did commit: the answer was only held back.
    assert_eq!(rows_of_t(&w).as_deref(), Some("a,b,c"));
    assert_eq!(
        w.pg_value(&format!("SELECT pg_xact_status('{xid}')"))
            .as_deref(),
        Some("committed")
    );
    let entries = w.run_log_entries();
    let last = entries.last().unwrap();
    assert_eq!(last["status"], "unknown");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pg_xact_status('{xid}')")),
        "{last}"
    );
    proxy.release();
}

#[test]
fn a_lost_commit_with_no_server_to_ask_is_an_unknown_outcome_not_a_rollback() {
    let (w, dir) = small_world("out_commit_unreachable");
    let proxy = Proxy::start(upstream(), CutAt::AfterCommitThenRefuse);
    let o = through(&w, &proxy)
        .args(["import", dir.to_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("the connection was lost during COMMIT")
            && err.contains("no server could say what became of it")
            && err.contains("import outcome UNKNOWN"),
        "{err}"
    );
    assert!(!err.contains("rolled back"), "{err}");
    let xid = asked_xid(&err);
    assert!(proxy.commit_sent());
    assert_eq!(rows_of_t(&w).as_deref(), Some("a,b,c"));
    assert_eq!(
        w.pg_value(&format!("SELECT pg_xact_status('{xid}')"))
            .as_deref(),
        Some("committed")
    );
    assert_eq!(last_status(&w), "unknown");
}

#[test]
fn no_run_log_no_import() {
    let (w, dir) = small_world("out_no_run_log");
    let before = w.fingerprint();
    // The run log's path is a directory: nothing can be appended to it.
    let log_dir = w.path().join("logs");
    std::fs::create_dir_all(log_dir.join("migration_log.jsonl")).unwrap();
    for args in [
        vec!["import", dir.to_str().unwrap(), "--yes"],
        vec!["migrate", &w.db, "--out", "again", "--yes"],
    ] {
        let o = w
            .cmd()
            .env("PGCONVERGE_RUN_LOG", log_dir.join("migration_log.jsonl"))
            .args(&args)
            .output()
            .unwrap();
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains("refused before") && err.contains("its run log cannot be written"),
            "{args:?}: {err}"
        );
        assert_eq!(w.fingerprint(), before, "{args:?}");
    }
    // No journal was begun either.
    assert_eq!(std::fs::read_dir(&log_dir).unwrap().count(), 1);
    assert!(!w.path().join("again").exists());
}

#[test]
fn a_journal_that_cannot_be_written_rolls_the_import_back() {
    let (w, dir) = small_world("out_journal_full");
    let before = w.fingerprint();
    // A hook longer than the 4 kB a file may grow to here: writing it to the journal
    // fails (the disk is "full" for this process: RLIMIT_FSIZE, SIGXFSZ ignored).
    let map = write_map(
        &w,
        "long.toml",
        &format!(
            "[import]\nbefore = [\"SELECT 1 /* {} */\"]\n",
            "x".repeat(8192)
        ),
    );
    let run_log = w.path().join("audit").join("migration_log.jsonl");
    let mut sh = Command::new("bash");
    sh.args([
        "-c",
        "trap '' XFSZ; ulimit -f 4; exec \"$PGC\" import \"$DIR\" --yes --map \"$MAP\"",
    ])
    .current_dir(w.path())
    .env("PGC", env!("CARGO_BIN_EXE_pgconverge"))
    .env("DIR", &dir)
    .env("MAP", &map);
    for (k, v) in w.cmd().get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.env("PGCONVERGE_RUN_LOG", &run_log);
    let o = sh.output().unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("writing the journal")
            && err.contains("File too large")
            && err.contains("import rolled back: the target is unchanged"),
        "{err}"
    );
    assert_eq!(w.fingerprint(), before);
    let statuses: Vec<String> = std::fs::read_to_string(&run_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].to_string())
        .collect();
    assert_eq!(statuses, ["\"started\"", "\"rolled_back\""]);
}

/// A session holding an advisory lock until the gate is opened.
struct Gate {
    open: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Gate {
    fn close(db: &str, key: i64) -> Gate {
        let (ready, held) = mpsc::channel();
        let (open, opened) = mpsc::channel::<()>();
        let db = db.to_string();
        let thread = std::thread::spawn(move || {
            block(async move {
                let (client, conn) = pg_config(&db).connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
                    .await
                    .unwrap();
                ready.send(()).unwrap();
                tokio::task::spawn_blocking(move || opened.recv())
                    .await
                    .unwrap()
                    .ok();
                client
                    .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
                    .await
                    .unwrap();
            })
        });
        held.recv().unwrap();
        Gate { open, thread }
    }

    fn open(self) {
        self.open.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

#[test]
fn an_audit_trail_lost_after_commit_is_exit_3_saying_it_committed() {
    let (w, dir) = small_world("out_audit_after_commit");
    let map = write_map(
        &w,
        "gate.toml",
        "[import]\nafter = [\"SELECT pg_advisory_xact_lock(4242)\"]\n",
    );
    let gate = Gate::close(&w.db, 4242);
    let child = w
        .cmd()
        .args(["import", dir.to_str().unwrap(), "--yes", "--map", &map])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_statement(&w, "SELECT pg_advisory_xact_lock");
    // The run log becomes unwritable while the import waits before its COMMIT.
    let moved = w.path().join("moved.jsonl");
    std::fs::rename(w.run_log(), &moved).unwrap();
    std::fs::create_dir(w.run_log()).unwrap();
    gate.open();
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("import COMMITTED into")
            && err.contains("its audit trail could not be written"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("import: committed into"),
        "{}",
        stdout(&o)
    );
    assert_eq!(rows_of_t(&w).as_deref(), Some("a,b,c"));
    let last = std::fs::read_to_string(&moved)
        .unwrap()
        .lines()
        .last()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].clone())
        .unwrap();
    assert_eq!(last, "started");
}

/// Where `t_id_seq` stands.
fn sequence(w: &World) -> Option<String> {
    w.pg_value("SELECT last_value || ':' || is_called FROM t_id_seq")
}

#[test]
fn a_failed_import_puts_the_sequences_back_once_without_a_spurious_warning() {
    let w = World::new("out_seq_failed");
    w.mysql(
        "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
         INSERT INTO t (id, v) VALUES (100, 1), (200, 2);",
    );
    w.pg("CREATE TABLE t (id serial PRIMARY KEY, v integer); INSERT INTO t (v) VALUES (7);");
    let dir = export(&w, "out");
    let map = write_map(
        &w,
        "fail.toml",
        "[import]\nbefore = [\"SELECT nextval('t_id_seq')\", \"SELECT 1/0\"]\n",
    );
    let before = sequence(&w);
    // Before the fix, 2 in 30 such imports warned that the sequences could not be put
    // back (their own late cancel hit the second putting back).
    for i in 0..10 {
        let o = import(&w, &dir, &["--map", &map]);
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(err.contains("division by zero"), "{err}");
        assert!(!err.contains("could not be put back"), "run {i}: {err}");
        assert_eq!(sequence(&w), before, "run {i}");
    }
    // The load put them back itself; nothing was cancelled.
    let journal = newest_journal(w.path());
    assert_eq!(
        journal
            .matches("1 sequence put back where it stood")
            .count(),
        1,
        "{journal}"
    );
    assert!(!journal.contains("cancelling"), "{journal}");
}

fn newest_journal(dir: &Path) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("import_") && n.ends_with(".log")
        })
        .collect();
    logs.sort();
    std::fs::read_to_string(logs.last().expect("a journal")).unwrap()
}

#[test]
fn a_late_cancel_that_hits_the_putting_back_is_answered_by_trying_again() {
    let w = World::new("out_seq_late_cancel");
    w.pg("CREATE SEQUENCE s");
    block(async {
        let connect = || async {
            let (client, conn) = pg_config(&w.db)
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        };
        let (a, b, c) = (connect().await, connect().await, connect().await);
        let before = pgconverge::db::postgres::sequence_positions(&a)
            .await
            .unwrap();
        a.batch_execute("SELECT nextval('s'); SELECT nextval('s')")
            .await
            .unwrap();
        let a_pid: i32 = a
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        // b holds a lock that setval waits for.
        b.batch_execute("BEGIN; ALTER SEQUENCE s INCREMENT BY 1")
            .await
            .unwrap();
        let waiting = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {a_pid} AND wait_event_type = 'Lock'"
        );
        let wait_until_blocked = || async {
            for _ in 0..24_000 {
                let n: i64 = c.query_one(&waiting, &[]).await.unwrap().get(0);
                if n == 1 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("setval never waited for the lock");
        };
        let restore = pgconverge::db::postgres::restore_sequences(&a, &before);
        tokio::pin!(restore);
        tokio::select! {
            r = &mut restore => panic!("setval did not wait for the lock: {r:?}"),
            () = wait_until_blocked() => {}
        }
        // A cancel meant for an earlier statement arrives now, and cancels setval.
        c.batch_execute(&format!("SELECT pg_cancel_backend({a_pid})"))
            .await
            .unwrap();
        // Tried again, it waits for the lock again: let it through.
        let restored = tokio::select! {
            r = &mut restore => r,
            () = async {
                wait_until_blocked().await;
                b.batch_execute("COMMIT").await.unwrap();
                std::future::pending::<()>().await
            } => unreachable!(),
        };
        assert_eq!(restored.unwrap(), 1);
    });
    assert_eq!(
        w.pg_value("SELECT last_value || ':' || is_called FROM s")
            .as_deref(),
        Some("1:false")
    );
}

#[test]
fn log_run_and_runs_take_the_statuses_of_exit_3() {
    let w = World::new("out_statuses");
    for status in ["unknown", "partially_committed"] {
        let o = w.run(&["log-run", status, "needs a look"]);
        assert_exit(&o, 0);
    }
    let o = w.run(&["runs", "--json"]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let statuses: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["unknown", "partially_committed"]);
    let o = w.run(&["runs"]);
    assert!(
        stdout(&o).contains("unknown") && stdout(&o).contains("partially_committed"),
        "{}",
        stdout(&o)
    );
}
