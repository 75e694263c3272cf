//! `log-run` and `runs`.

use crate::harness::*;

fn world() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn cmd(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pgconverge"));
    c.current_dir(dir).env_remove("PGCONVERGE_RUN_LOG");
    c
}

#[test]
fn bogus_status_exits_2_naming_the_valid_ones() {
    let dir = world();
    let o = cmd(dir.path()).args(["log-run", "bogus"]).output().unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    for s in [
        "started",
        "in_progress",
        "completed",
        "rolled_back",
        "failed",
    ] {
        assert!(err.contains(s), "{err}");
    }
    assert!(!dir.path().join("migration_log.jsonl").exists());
}

#[test]
fn entries_carry_the_documented_fields() {
    let dir = world();
    let o = cmd(dir.path())
        .args(["log-run", "completed", "kratos migrated"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let text = std::fs::read_to_string(dir.path().join("migration_log.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["message"], "kratos migrated");
    assert_eq!(v["tool_version"], env!("CARGO_PKG_VERSION"));
    for k in ["host", "user", "command"] {
        assert!(v[k].is_string(), "{k} missing in {v}");
    }
    let ts = v["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
        "{ts}"
    );
}

#[test]
fn run_log_path_from_flag_and_env() {
    let dir = world();
    let o = cmd(dir.path())
        .env("PGCONVERGE_RUN_LOG", "logs/env.jsonl")
        .args(["log-run", "started"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(dir.path().join("logs/env.jsonl").exists());
    let o = cmd(dir.path())
        .env("PGCONVERGE_RUN_LOG", "logs/env.jsonl")
        .args(["--run-log", "flag.jsonl", "log-run", "started"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(dir.path().join("flag.jsonl").exists());
}

#[test]
fn twenty_processes_append_1000_whole_lines() {
    let dir = world();
    let bin = env!("CARGO_BIN_EXE_pgconverge");
    let children: Vec<_> = (0..20)
        .map(|w| {
            std::process::Command::new("sh")
                .current_dir(dir.path())
                .env_remove("PGCONVERGE_RUN_LOG")
                .arg("-c")
                .arg(format!(
                    "i=0; while [ $i -lt 50 ]; do i=$((i+1)); \"{bin}\" log-run in_progress \"w{w} n$i $(printf 'x%.0s' $(seq 1 $((i*7))))\" 2>/dev/null || exit 1; done"
                ))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(dir.path().join("migration_log.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1000);
    let mut seen = std::collections::HashSet::new();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let msg = v["message"].as_str().unwrap();
        let key: Vec<&str> = msg.split(' ').take(2).collect();
        assert!(seen.insert(key.join(" ")), "duplicate {msg}");
    }
    assert_eq!(seen.len(), 1000);
}

#[test]
fn runs_reads_the_log_and_the_legacy_file() {
    let dir = world();
    std::fs::write(
        dir.path().join("migration_log.json"),
        r#"{"migration_runs":[{"timestamp":"2024-03-01T09:00:00Z","status":"completed","message":"legacy alkemio run"}]}"#,
    )
    .unwrap();
    assert_exit(
        &cmd(dir.path())
            .args(["log-run", "failed", "new style"])
            .output()
            .unwrap(),
        0,
    );
    let o = cmd(dir.path()).args(["runs", "--json"]).output().unwrap();
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["message"], "legacy alkemio run");
    assert_eq!(arr[0]["source"], "legacy");
    assert_eq!(arr[1]["status"], "failed");
    let o = cmd(dir.path()).args(["runs"]).output().unwrap();
    let table = stdout(&o);
    assert!(
        table.contains("legacy alkemio run") && table.contains("new style"),
        "{table}"
    );
}

/// One long message neither pads every other row nor runs past one line: it is cut with
/// an ellipsis (the JSON keeps it whole).
#[test]
fn runs_keeps_a_long_message_to_one_short_line() {
    let dir = world();
    let long = format!("start {} end", "x".repeat(300));
    for msg in ["short one", &long] {
        let o = cmd(dir.path())
            .args(["log-run", "in_progress", msg])
            .output()
            .unwrap();
        assert_exit(&o, 0);
    }
    let o = cmd(dir.path()).args(["runs"]).output().unwrap();
    assert_exit(&o, 0);
    let table = stdout(&o);
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 200, "a row of {widest} characters:\n{table}");
    let short = table.lines().find(|l| l.contains("short one")).unwrap();
    assert!(short.trim_end().ends_with("short one"), "{short}");
    assert!(
        table.contains("start xxx") && table.contains('…'),
        "{table}"
    );
    assert!(!table.contains(" end"), "{table}");
    let o = cmd(dir.path()).args(["runs", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[1]["message"], long.as_str());
    // A global option before the subcommand: the command column still names the command.
    let o = cmd(dir.path())
        .args(["-q", "log-run", "in_progress", "quiet one"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let o = cmd(dir.path()).args(["runs"]).output().unwrap();
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains("quiet one"))
        .unwrap()
        .to_string();
    assert!(row.contains(" log-run ") && !row.contains(" -q "), "{row}");
}

#[test]
fn the_run_log_names_the_os_user_even_without_user_set() {
    let w = World::new("log_run_os_user");
    let o = w
        .cmd()
        .env_remove("USER")
        .env_remove("LOGNAME")
        .args(["log-run", "started", "no $USER here"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8(me.stdout).unwrap().trim().to_string();
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(entry["user"], me.as_str());
}

#[test]
fn a_command_that_fails_at_login_logs_its_end() {
    let w = World::new("log_run_login_failure");
    let o = w
        .cmd()
        .env("MYSQL_URL", "mysql://nobody:wrong@127.0.0.1:3306")
        .args(["export", &w.db, "--out", "out"])
        .output()
        .unwrap();
    assert_exit(&o, 2);
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    assert_eq!(w.run_log_statuses(), ["started", "failed"], "{log}");
    assert!(!log.contains("wrong"), "no password in the run log: {log}");
}
