//! `scripts/demo.sh`, the README's main-job command, runs green.

use crate::harness::*;

#[test]
fn the_demo_script_runs_the_whole_job() {
    let w = World::new("demo_script");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh");
    let o = std::process::Command::new("bash")
        .arg(script)
        .current_dir(w.path())
        .env("DEMO_DB", &w.db)
        .env("DEMO_DIR", w.path())
        .env("DEMO_USERS", "50")
        .env("PGCONVERGE_BIN", env!("CARGO_BIN_EXE_pgconverge"))
        .env_remove("MYSQL_URL")
        .env_remove("POSTGRES_URL")
        .env_remove("PGCONVERGE_RUN_LOG")
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("verify: OK, 5 tables"), "{out}");
    assert!(out.contains("import: committed"), "{out}");
    let log = std::fs::read_to_string(w.path().join("migration_log.jsonl")).unwrap();
    let statuses: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses.first().unwrap(), "started");
    assert_eq!(statuses.last().unwrap(), "completed");
    assert!(
        !statuses.iter().any(|s| s == "failed" || s == "rolled_back"),
        "{statuses:?}"
    );
}
