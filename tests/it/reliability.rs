//! What pgconverge guarantees under attack, crashes and damage (docs/reliability.md):
//! each test here failed before the fix it covers. Tampering, hostile names, swapped
//! files, non-regular files, oversized records, lost connections, signals.

use std::path::{Path, PathBuf};

use crate::export::{export_dir, load};
use crate::harness::*;

pub(crate) fn export(w: &World, out: &str) -> PathBuf {
    let o = w.run(&["export", &w.db, "--out", out]);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

pub(crate) fn import(w: &World, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["import", dir.to_str().unwrap(), "--yes"];
    args.extend_from_slice(extra);
    w.run(&args)
}

/// Edit the manifest's JSON with `f`.
fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("migration_manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A small world: table `t` with a few rows on both sides.
pub(crate) fn small_world(name: &str) -> (World, PathBuf) {
    let w = World::new(name);
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (9, 'old');");
    let dir = export(&w, "out");
    (w, dir)
}

#[test]
fn hostile_table_names_never_name_a_file_outside_the_export() {
    let w = World::new("rel_hostile_names");
    let victim = w.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let escape = format!("{}/x", victim.display());
    w.mysql(&format!(
        "CREATE TABLE `../../../escape` (id INT PRIMARY KEY); INSERT INTO `../../../escape` VALUES (1);
         CREATE TABLE `{escape}` (id INT PRIMARY KEY); INSERT INTO `{escape}` VALUES (2);
         CREATE TABLE `.hidden` (id INT PRIMARY KEY); INSERT INTO `.hidden` VALUES (3);"
    ));
    let dir = export(&w, "out");
    // Nothing outside the export directory, nothing hidden inside it.
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    assert!(!w.path().join("escape.csv").exists());
    let m = load(&dir);
    for t in m.tables.values() {
        assert!(
            !t.file.contains('/') && !t.file.starts_with('.'),
            "{}",
            t.file
        );
        assert!(dir.join(&t.file).is_file(), "{}", t.file);
    }
    let names: Vec<&String> = m.tables.keys().collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // The same names load into PostgreSQL tables of those names.
    w.pg(&format!(
        r#"CREATE TABLE "../../../escape" (id integer PRIMARY KEY);
           CREATE TABLE "{escape}" (id integer PRIMARY KEY);
           CREATE TABLE ".hidden" (id integer PRIMARY KEY);"#
    ));
    assert_exit(&import(&w, &dir, &[]), 0);
    assert_eq!(
        w.pg_value(&format!(r#"SELECT id::text FROM "{escape}""#)),
        Some("2".into())
    );
}

#[test]
fn a_downgraded_manifest_does_not_skip_the_checksums() {
    let (w, dir) = small_world("rel_downgrade");
    // A tampered file behind a manifest stripped of its version (or with a bogus one).
    std::fs::write(dir.join("t.csv"), "id,v\n1,evil\n").unwrap();
    let before = w.fingerprint();
    for version in [
        None,
        Some(serde_json::json!("1")),
        Some(serde_json::json!(1.0)),
    ] {
        edit_manifest(&dir, |v| match &version {
            None => {
                v.as_object_mut().unwrap().remove("format_version");
            }
            Some(x) => v["format_version"] = x.clone(),
        });
        let o = import(&w, &dir, &["--accept-unverified"]);
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains("not a positive integer") || err.contains("no `format_version`"),
            "{version:?}: {err}"
        );
        assert_eq!(w.fingerprint(), before);
    }
}

#[test]
fn an_edited_row_count_is_refused_and_nothing_is_kept() {
    let (w, dir) = small_world("rel_row_count");
    edit_manifest(&dir, |v| {
        v["tables"]["t"]["rows"] = serde_json::json!(4);
    });
    let before = w.fingerprint();
    // The file is read once, as it is sent: COPY's count refuses it before COMMIT.
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(
            "COPY stored 3 rows of t.csv, but the manifest says it holds 4 records (its bytes match the manifest's sha256)"
        ) && err.contains("or the manifest or the file was changed after the export"),
        "{err}"
    );
    assert_eq!(w.fingerprint(), before);
    assert_eq!(w.run_log_statuses().last().unwrap(), "rolled_back");
    // --dry-run reads every file ahead: refused before any transaction.
    let o = import(&w, &dir, &["--dry-run"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("t.csv holds 3 records but the manifest says 4 rows"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_fifo_manifest_or_csv_is_refused_not_waited_on() {
    let (w, dir) = small_world("rel_fifo");
    let fifo = |p: &Path| {
        std::fs::remove_file(p).unwrap();
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let csv = dir.join("t.csv");
    let saved = std::fs::read(&csv).unwrap();
    fifo(&csv);
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("is not a regular file"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_file(&csv).unwrap();
    std::fs::write(&csv, saved).unwrap();
    fifo(&dir.join("migration_manifest.json"));
    // Without the check this would block forever on the FIFO: the harness would hang.
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("is not a regular file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unterminated_quote_in_a_huge_file_is_refused_in_bounded_memory() {
    let (w, dir) = small_world("rel_unterminated");
    // 100 MB: a header, then a quote that never closes.
    let path = dir.join("t.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"id,v\n1,\"").unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&block).unwrap();
        }
    }
    let before = w.fingerprint();
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("bytes but the manifest says 17"),
        "{}",
        stderr(&o)
    );
    // With the manifest made to agree on the size, the import reads on as it sends, and
    // stops at the first record longer than any the export wrote: memory stays bounded.
    let bytes = std::fs::metadata(&path).unwrap().len();
    edit_manifest(&dir, |v| {
        v["tables"]["t"]["bytes"] = serde_json::json!(bytes)
    });
    let o = std::process::Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M", env!("CARGO_BIN_EXE_pgconverge")])
        .args(["import", dir.to_str().unwrap(), "--yes"])
        .current_dir(w.path())
        .envs(w.cmd().get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(
        err.contains("t.csv holds a record longer than the longest the export wrote"),
        "{err}"
    );
    let rss: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss < 64 * 1024, "peak RSS {rss} kB");
    assert_eq!(w.fingerprint(), before);
    // --dry-run's pre-pass stops there too, before any write.
    let o = import(&w, &dir, &["--dry-run"]);
    assert!(
        stderr(&o).contains("record 1 is longer than the longest the export wrote"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_swapped_after_the_checks_is_refused_before_commit() {
    let (w, dir) = small_world("rel_swapped");
    let before = w.fingerprint();
    let path = dir.join("t.csv");
    let original = std::fs::read(&path).unwrap();
    // Same size, other rows: only the bytes actually sent can tell.
    let swapped = String::from_utf8(original.clone())
        .unwrap()
        .replace("1,a", "7,z");
    assert_eq!(swapped.len(), original.len());
    // The import checks every file's presence and size, then waits at its prompt: swap
    // the file there.
    let mut child = w
        .in_terminal(&format!("import {} --quiet", dir.display()))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    {
        use std::io::Read;
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("Continue? [y/N]") {
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    }
    std::fs::write(&path, swapped).unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    }
    let mut rest = String::new();
    {
        use std::io::Read;
        stdout.read_to_string(&mut rest).unwrap();
    }
    child.wait().unwrap();
    assert!(
        rest.contains("t.csv is not the file the export wrote") && rest.contains("rolled back"),
        "{rest}"
    );
    assert_eq!(w.fingerprint(), before);
}

#[test]
fn a_malformed_url_is_refused_not_read_as_localhost() {
    let w = World::new("rel_malformed_url");
    for url in [
        "postgres:/app:pw-not-shown@prod-db.example.com:5432",
        "postgres://app:pw-not-shown@prod-db.example.com:5432/db/extra",
        "postgres://app:pw-not-shown@prod-db.example.com:5432?sslmod=require",
    ] {
        let o = w
            .cmd()
            .env("POSTGRES_URL", url)
            .arg("check")
            .output()
            .unwrap();
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(err.contains("reading POSTGRES_URL"), "{url}: {err}");
        assert!(!err.contains("127.0.0.1"), "{url}: {err}");
        assert!(
            !err.contains("pw-not-shown") && !stdout(&o).contains("pw-not-shown"),
            "{url}: {err}"
        );
    }
}

/// A world whose table `big` takes a while to export and to load.
fn big_world(name: &str) -> World {
    let w = World::new(name);
    w.mysql("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(250));");
    w.mysql(&mysql_fill_sql(
        "big",
        "id, pad",
        "seq.n, REPEAT('s', 250)",
        300_000,
    ));
    w.pg(
        "CREATE TABLE big (id integer PRIMARY KEY, pad text); CREATE INDEX big_pad ON big (pad);
          INSERT INTO big VALUES (-1, 'before');",
    );
    w
}

pub(crate) fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Wait (up to 60 s) until a statement starting with `prefix` runs in the world's
/// PostgreSQL database.
pub(crate) fn wait_for_statement(w: &World, prefix: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "never saw `{prefix}...` run"
        );
        let running = w.pg_value(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '{prefix}%'",
            w.db
        ));
        if running.as_deref() != Some("0") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub(crate) fn last_status(w: &World) -> String {
    w.run_log_statuses().pop().expect("a run-log entry")
}

#[test]
fn sigterm_mid_import_rolls_back_says_so_and_exits_2() {
    let w = big_world("rel_sigterm_import");
    let dir = export(&w, "out");
    let before = w.fingerprint();
    let child = w
        .cmd()
        .args(["import", dir.to_str().unwrap(), "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_statement(&w, "COPY");
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("interrupted (SIGTERM)") && err.contains("rolled back"),
        "{err}"
    );
    assert_eq!(last_status(&w), "rolled_back");
    assert_eq!(w.fingerprint(), before);
}

#[test]
fn sighup_mid_export_keeps_nothing_and_logs_the_failure() {
    let w = big_world("rel_sighup_export");
    let child = w
        .cmd()
        .args(["export", &w.db, "--out", "out", "--jobs", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let parent = w.path().join("out").join(&w.db);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    'wait: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "export never started writing"
        );
        for d in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if std::fs::metadata(d.path().join("big.csv")).is_ok_and(|m| m.len() > 1 << 20) {
                break 'wait;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    signal(&child, "HUP");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("interrupted (SIGHUP)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
    assert_eq!(last_status(&w), "failed");
}

/// `export <db> --out out` with files limited to `kb` kB (SIGXFSZ ignored, so a write
/// past it fails with EFBIG: the disk is "full" for this process): its output, once it
/// has been checked to fail (exit 2) and leave no export directory behind, with the run
/// log saying it failed.
fn export_with_file_limit(w: &World, kb: u32) -> std::process::Output {
    let mut sh = std::process::Command::new("bash");
    sh.args([
        "-c",
        "trap '' XFSZ; ulimit -f $KB; exec \"$PGC\" export \"$DB\" --out out",
    ])
    .current_dir(w.path())
    .env("PGC", env!("CARGO_BIN_EXE_pgconverge"))
    .env("DB", &w.db)
    .env("KB", kb.to_string());
    for (k, v) in w.cmd().get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let o = sh.output().unwrap();
    assert_exit(&o, 2);
    assert_eq!(
        std::fs::read_dir(w.path().join("out").join(&w.db))
            .unwrap()
            .count(),
        0,
        "{kb} kB"
    );
    assert_eq!(last_status(w), "failed");
    o
}

#[test]
fn a_failure_writing_the_manifest_is_logged_and_leaves_nothing() {
    let w = World::new("rel_manifest_write");
    // Many columns: a tiny CSV but a manifest of several kB.
    let cols: Vec<String> = (0..60).map(|i| format!("c{i} INT")).collect();
    w.mysql(&format!(
        "CREATE TABLE t (id INT PRIMARY KEY, {}); INSERT INTO t (id) VALUES (1);",
        cols.join(", ")
    ));
    let err = stderr(&export_with_file_limit(&w, 8));
    assert!(
        err.contains("migration_manifest.json") && err.contains("File too large"),
        "{err}"
    );
}

/// A data file that cannot grow (the disk "full" at an aligned and at an unaligned size,
/// for O_DIRECT and for the buffered writes it falls back to): the export names the
/// file, keeps nothing, and the run log says it failed.
#[test]
fn a_failure_writing_a_data_file_is_logged_and_leaves_nothing() {
    let w = World::new("rel_data_write");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT);
         INSERT INTO t SELECT seq, REPEAT('x', 1000) FROM seq_1_to_2000;",
    );
    for kb in [64, 65] {
        let err = stderr(&export_with_file_limit(&w, kb));
        assert!(
            err.contains("t.csv") && err.contains("File too large"),
            "{kb} kB: {err}"
        );
    }
    // Without the limit the same export is whole.
    assert_exit(&w.run(&["export", &w.db, "--out", "out"]), 0);
}

#[test]
fn exports_and_imports_in_the_same_second_never_share_a_name() {
    let (w, _) = small_world("rel_same_second");
    let spawn = |args: &[&str]| {
        w.cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["export", &w.db, "--out", "same", "--json"]);
    let b = spawn(&["export", &w.db, "--out", "same", "--json"]);
    let dirs: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert_exit(&o, 0);
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            v["export_dir"].as_str().unwrap().to_string()
        })
        .collect();
    assert_ne!(dirs[0], dirs[1]);
    for d in &dirs {
        assert!(
            w.path().join(d).join("migration_manifest.json").is_file(),
            "{d}"
        );
    }
    let imports: Vec<_> = dirs
        .iter()
        .map(|d| spawn(&["import", d, "--yes"]))
        .collect();
    for c in imports {
        assert_exit(&c.wait_with_output().unwrap(), 0);
    }
    let journals = std::fs::read_dir(w.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("import_") && n.ends_with(".log")
        })
        .count();
    assert_eq!(journals, 2);
}

#[test]
fn leftovers_of_dead_exports_are_listed_and_removed_on_request_only() {
    let (w, _) = small_world("rel_clean_partials");
    let parent = w.path().join("out").join(&w.db);
    // A process that is gone, and one that runs (this test).
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let dead_dir = parent.join(format!(".20240101_000000.partial-{dead}"));
    let live_dir = parent.join(format!(".20240101_000001.partial-{}", std::process::id()));
    for d in [&dead_dir, &live_dir] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("t.csv"), vec![b'x'; 3000]).unwrap();
    }
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains(&format!(
            ".20240101_000000.partial-{dead} (2.93 KiB) is left from an interrupted export"
        )) && stderr(&o).contains("--clean-partials"),
        "{}",
        stderr(&o)
    );
    assert!(dead_dir.exists());
    // In --json too, where a machine reads it.
    let o = w.run(&["export", &w.db, "--out", "out", "--json"]);
    assert_exit(&o, 0);
    let warnings =
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            ".20240101_000000.partial-{dead} (2.93 KiB) is left"
        )),
        "{warnings}"
    );
    // And when the command then fails: the failure's --json carries what was warned.
    let o = w.run(&[
        "export", &w.db, "--out", "out", "--json", "--tables", "nosuch",
    ]);
    assert_exit(&o, 2);
    let failure = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap();
    assert_eq!(failure["status"], "failed");
    assert!(
        failure["warnings"].to_string().contains(&format!(
            ".20240101_000000.partial-{dead} (2.93 KiB) is left"
        )),
        "{failure}"
    );
    // migrate says so too (its export goes beside them), in --json too.
    let o = w.run(&["migrate", &w.db, "--out", "out", "--yes", "--json"]);
    assert_exit(&o, 0);
    let warnings =
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            ".20240101_000000.partial-{dead} (2.93 KiB) is left"
        )),
        "{warnings}"
    );
    assert!(
        stderr(&o).contains(&format!(
            ".20240101_000000.partial-{dead} (2.93 KiB) is left from an interrupted export"
        )),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["export", &w.db, "--out", "out", "--clean-partials"]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
    assert!(!dead_dir.exists());
    assert!(
        live_dir.exists(),
        "a running export's directory was removed"
    );
}

#[test]
fn orphans_of_a_partial_export_refuse_the_commit() {
    let w = World::new("rel_orphans");
    w.mysql(
        "CREATE TABLE post (id INT PRIMARY KEY);
         CREATE TABLE tag (id INT PRIMARY KEY, post_id INT, label VARCHAR(10));
         INSERT INTO post VALUES (1), (2);
         INSERT INTO tag VALUES (10, 1, 'a'), (11, 2, 'b'), (12, NULL, 'c');",
    );
    w.pg("CREATE TABLE post (id integer PRIMARY KEY);
          CREATE TABLE tag (id integer PRIMARY KEY,
                            post_id integer CONSTRAINT tag_post_fk REFERENCES post(id),
                            label text);
          INSERT INTO post VALUES (1);");
    // Only `tag` is exported: its rows point at posts the target does not have.
    let o = w.run(&["export", &w.db, "--out", "out", "--tables", "tag"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let before = w.fingerprint();
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(
            "foreign key `tag_post_fk` (tag.post_id -> post.id): 1 row with no parent row, e.g. id=11 (post_id=2): refusing to COMMIT"
        ) && err.contains("--allow-orphans"),
        "{err}"
    );
    assert_eq!(w.fingerprint(), before);
    // Verify checks the same set: with the orphans committed on purpose, it finds them.
    let o = import(&w, &dir, &["--allow-orphans"]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("warning: foreign key `tag_post_fk`"),
        "{}",
        stderr(&o)
    );
    let o = w.run(&["verify", dir.to_str().unwrap()]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o)
            .contains("foreign key `tag_post_fk` (tag.post_id -> post.id): 1 row with no parent"),
        "{}",
        stdout(&o)
    );
}

/// Import `small_world`'s export through a proxy that cuts the connection at COMMIT.
fn import_through(cut: crate::proxy::CutAt, name: &str) -> (World, std::process::Output) {
    let (w, dir) = small_world(name);
    let upstream: u16 = postgres_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432);
    let proxy = crate::proxy::Proxy::start(upstream, cut);
    let o = w
        .cmd()
        .env(
            "POSTGRES_URL",
            format!(
                "postgres://postgres@127.0.0.1:{}?sslmode=disable",
                proxy.port
            ),
        )
        .args(["import", dir.to_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    (w, o)
}

#[test]
fn a_commit_whose_answer_is_lost_is_reported_committed() {
    let (w, o) = import_through(crate::proxy::CutAt::AfterCommit, "rel_commit_lost_after");
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("the connection was lost during COMMIT")
            && err.contains("the server reports it committed"),
        "{err}"
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(v, ',' ORDER BY id) FROM t"),
        Some("a,b,c".into())
    );
    assert_eq!(last_status(&w), "completed");
}

#[test]
fn a_commit_that_never_arrived_is_reported_rolled_back() {
    let (w, o) = import_through(crate::proxy::CutAt::BeforeCommit, "rel_commit_lost_before");
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("import rolled back: the target is unchanged")
            && err.contains("the server reports it rolled back"),
        "{err}"
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(v, ',') FROM t"),
        Some("old".into())
    );
    assert_eq!(last_status(&w), "rolled_back");
}

#[test]
fn a_killed_mysql_reader_is_one_clear_line() {
    let w = big_world("rel_mysql_killed");
    for (kill, want) in [
        (
            "KILL QUERY",
            "reading table `big`: MySQL said: Query execution was interrupted (error 1317, SQLSTATE 70100)",
        ),
        (
            "KILL",
            // In the middle of a result, or between two of its packets.
            "reading table `big`: the connection to MySQL was closed",
        ),
    ] {
        let child = w
            .cmd()
            .args(["export", &w.db, "--out", "out", "--jobs", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let id = loop {
            assert!(std::time::Instant::now() < deadline, "never saw the SELECT");
            let rows = mysql_rows(
                &w.db,
                &format!(
                    "SELECT ID FROM information_schema.PROCESSLIST
                     WHERE DB = '{}' AND INFO LIKE 'SELECT%`big`%' AND INFO NOT LIKE '%PROCESSLIST%'",
                    w.db
                ),
            );
            if let Some(r) = rows.first() {
                break String::from_utf8(r[0].clone().unwrap()).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        mysql_exec(None, &format!("{kill} {id}"));
        let o = child.wait_with_output().unwrap();
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(want), "{kill}: {err}");
        assert_eq!(
            err.matches("1317").count(),
            usize::from(kill == "KILL QUERY"),
            "{err}"
        );
        assert!(!err.contains("Input/output error"), "{err}");
    }
}

/// A MySQL table with ids 100 and 200 exported, a target `t` made by `target_sql`, and an
/// import started with `before` hooks and a 60 s `after` hook that it is now running
/// (after the sequence reset, before COMMIT). Returns the world, the target's fingerprint
/// and sequence position before the import, and the running import.
#[allow(clippy::type_complexity)]
fn import_held_after_the_sequence_reset(
    name: &str,
    target_sql: &str,
    before_hooks: &str,
) -> (
    World,
    Vec<(String, String)>,
    Vec<Vec<Option<String>>>,
    std::process::Child,
) {
    let w = World::new(name);
    w.mysql(
        "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
         INSERT INTO t (id, v) VALUES (100, 1), (200, 2);",
    );
    w.pg(target_sql);
    let dir = export(&w, "out");
    std::fs::write(
        w.path().join("slow.toml"),
        format!("[import]\nbefore = [{before_hooks}]\nafter = [\"SELECT pg_sleep(60)\"]\n"),
    )
    .unwrap();
    let (before, before_seq) = (w.fingerprint(), sequence_position(&w));
    let child = w
        .cmd()
        .args([
            "import",
            dir.to_str().unwrap(),
            "--yes",
            "--map",
            "slow.toml",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_statement(&w, "SELECT pg_sleep");
    (w, before, before_seq, child)
}

fn sequence_position(w: &World) -> Vec<Vec<Option<String>>> {
    w.pg_rows("SELECT last_value::text, is_called::text FROM t_id_seq")
}

/// SIGTERM after the sequences were set (during an `after` hook) and before COMMIT:
/// the transaction rolls back, and so do the resets; a value a `before` hook drew with
/// nextval, which ROLLBACK does not undo, is put back too.
#[test]
fn sigterm_after_the_sequence_reset_puts_the_sequences_back() {
    let (w, before, before_seq, child) = import_held_after_the_sequence_reset(
        "rel_sigterm_sequences",
        "CREATE TABLE t (id serial PRIMARY KEY, v integer); INSERT INTO t (v) VALUES (7);",
        "\"SELECT nextval('t_id_seq')\"",
    );
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 2);
    assert_eq!(last_status(&w), "rolled_back");
    assert_eq!(w.fingerprint(), before);
    assert_eq!(sequence_position(&w), before_seq, "{}", stderr(&o));
    // They were put back, and no warning says otherwise.
    assert!(
        !stderr(&o).contains("could not be put back"),
        "{}",
        stderr(&o)
    );
}

/// kill -9 after the sequences were reset and before COMMIT, then the server drops the
/// dead client's session: nothing in the client can put anything back, so the reset
/// itself must roll back. Here the target holds higher ids than the export, so a reset
/// that outlived the rollback would hand out ids that already exist.
#[test]
fn kill_9_after_the_sequence_reset_leaves_the_sequences_where_they_stood() {
    let (w, before, before_seq, mut child) = import_held_after_the_sequence_reset(
        "rel_kill9_sequences",
        "CREATE TABLE t (id serial PRIMARY KEY, v integer);
         INSERT INTO t (v) SELECT g FROM generate_series(1, 1000) g;",
        "",
    );
    signal(&child, "KILL");
    child.wait().unwrap();
    // The server notices a dead client only when it next writes to it; end the session
    // as it would then end, and wait until it is gone.
    let sleeping = format!(
        "FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'SELECT pg_sleep%'",
        w.db
    );
    w.pg(&format!("SELECT pg_terminate_backend(pid) {sleeping}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while w
        .pg_value(&format!("SELECT count(*) {sleeping}"))
        .as_deref()
        != Some("0")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(w.fingerprint(), before);
    assert_eq!(sequence_position(&w), before_seq);
    assert_eq!(
        w.pg_value("INSERT INTO t (v) VALUES (0) RETURNING id::text")
            .as_deref(),
        Some("1001")
    );
}
