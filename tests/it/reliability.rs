//! What pgconverge guarantees under attack, crashes and damage (README "Reliability"):
//! each test here failed before the fix it covers. Tampering, hostile names, swapped
//! files, non-regular files, oversized records, lost connections, signals.

use std::path::{Path, PathBuf};

use crate::export::{export_dir, load};
use crate::harness::*;

fn export(w: &World, out: &str) -> PathBuf {
    let o = w.run(&["export", &w.db, "--out", out]);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

fn import(w: &World, dir: &Path, extra: &[&str]) -> std::process::Output {
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
fn small_world(name: &str) -> (World, PathBuf) {
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
fn an_edited_row_count_is_refused_before_any_write() {
    let (w, dir) = small_world("rel_row_count");
    edit_manifest(&dir, |v| {
        v["tables"]["t"]["rows"] = serde_json::json!(4);
    });
    let before = w.fingerprint();
    let o = import(&w, &dir, &[]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("t.csv holds 3 records but the manifest says 4 rows"),
        "{err}"
    );
    assert!(!err.contains("TRUNCATE"), "{err}");
    assert_eq!(w.fingerprint(), before);
    // No transaction was opened: the run log says failed, not rolled back.
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "failed");
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
    // With the manifest made to agree on the size, the pre-pass reads on, and stops at
    // the first record longer than any the export wrote: memory stays bounded.
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
        err.contains("record 1 is longer than the longest the export wrote"),
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
    // The import checks every file, then waits at its prompt: swap the file there.
    let bin = env!("CARGO_BIN_EXE_pgconverge");
    let mut script = std::process::Command::new("script");
    script
        .args([
            "-qec",
            &format!("{bin} import {} --quiet", dir.display()),
            "/dev/null",
        ])
        .current_dir(w.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in w.cmd().get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script.spawn().unwrap();
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
        rest.contains("changed after it was checked") && rest.contains("rolled back"),
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
