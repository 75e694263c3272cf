//! `scripts/demo.sh`, the README's main-job command, runs green.

use crate::harness::*;

/// The demo as a new user runs it: the script builds through cargo and asks cargo where
/// the binary is. The target directory is reached through a symbolic link set in
/// CARGO_TARGET_DIR, so a script that guessed `<repo>/target/...` would not find it.
/// The cargo command is `test --no-run` instead of `build --release`: the test run has
/// just done exactly that, so it builds nothing and the binary the other tests run is not
/// replaced under them.
#[test]
fn the_demo_script_runs_the_whole_job() {
    let w = World::new("demo_script");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pgconverge"));
    let target_dir = bin.parent().and_then(|p| p.parent()).unwrap();
    let link = w.path().join("elsewhere-target");
    std::os::unix::fs::symlink(target_dir, &link).unwrap();
    let mut cmd = std::process::Command::new("bash");
    // What the test runner exports for the test process is not the user's shell.
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") || k.starts_with("NEXTEST") {
            cmd.env_remove(k);
        }
    }
    let o = cmd
        .arg(script)
        .current_dir(w.path())
        // DEMO_DB is the world's database, which carries the prefix already.
        .env("DEMO_DB", &w.db)
        .env_remove("PGCONVERGE_TEST_PREFIX")
        .env("DEMO_DIR", w.path())
        .env("DEMO_USERS", "50")
        .env("CARGO_TARGET_DIR", &link)
        .env("DEMO_CARGO_BUILD", "test --no-run")
        .env_remove("PGCONVERGE_BIN")
        .env_remove("MYSQL_URL")
        .env_remove("POSTGRES_URL")
        .env_remove("PGCONVERGE_RUN_LOG")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let err = stderr(&o);
    let used = link.join("debug").join("pgconverge");
    assert!(
        err.contains(&format!("== using {}", used.display())),
        "{err}"
    );
    let out = stdout(&o);
    assert!(out.contains("verify: OK, 5 tables"), "{out}");
    assert!(out.contains("import: committed"), "{out}");
    let statuses = w.run_log_statuses();
    assert_eq!(statuses.first().unwrap(), "started");
    assert_eq!(statuses.last().unwrap(), "completed");
    assert!(
        !statuses.iter().any(|s| s == "failed" || s == "rolled_back"),
        "{statuses:?}"
    );
}
