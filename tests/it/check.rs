//! `check` against the real servers.

use crate::harness::*;

#[test]
fn prints_both_versions_and_the_databases() {
    let w = World::new("check_versions");
    let o = w.run(&["check", &w.db]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("MariaDB") || out.contains("mysql"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("postgres")), "{out}");
    assert!(out.contains("session_replication_role: allowed"), "{out}");
    let o = w.run(&["check", &w.db, "--json"]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["databases"][0]["source_exists"], true);
    assert_eq!(v["databases"][0]["target_exists"], true);
    assert!(!v["servers"][1]["version"].as_str().unwrap().is_empty());
}

#[test]
fn wrong_password_is_one_line_with_a_hint_and_no_password() {
    let w = World::new("check_wrong_password");
    let o = w
        .cmd()
        .env("MYSQL_PASSWORD", "s3cret-never-shown")
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("refused the login"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("s3cret-never-shown") && !stdout(&o).contains("s3cret-never-shown"));
    // The same through a URL.
    let o = w
        .cmd()
        .env(
            "MYSQL_URL",
            "mysql://root:s3cret-never-shown@127.0.0.1:3306",
        )
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 2);
    assert!(!stderr(&o).contains("s3cret-never-shown"), "{}", stderr(&o));
}

#[test]
fn unreachable_host_and_unknown_database_have_hints() {
    let w = World::new("check_unreachable");
    let o = w
        .cmd()
        .env("POSTGRES_PORT", "1")
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach PostgreSQL") && err.contains("hint:"),
        "{err}"
    );

    let o = w.run(&["check", "pgc_no_such_database_anywhere"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("`pgc_no_such_database_anywhere` does not exist"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn without_names_only_the_servers_are_checked() {
    let w = World::new("check_no_names");
    let o = w.run(&["check"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(!out.contains("source (mysql)"), "{out}");
    assert!(out.contains("name profiles or databases"), "{out}");
}

#[test]
fn a_failed_login_still_shows_where_each_setting_came_from() {
    let w = World::new("check_settings_on_failure");
    let o = w
        .cmd()
        .env("POSTGRES_URL", "postgres://nobody_here@127.0.0.1:5432")
        .arg("check")
        .output()
        .unwrap();
    assert_exit(&o, 2);
    let out = stdout(&o);
    let user_line = out
        .lines()
        .find(|l| l.starts_with("postgres") && l.contains(" user "))
        .unwrap_or_else(|| panic!("no settings table:\n{out}"));
    assert!(
        user_line.contains("nobody_here") && user_line.ends_with("environment"),
        "{user_line}"
    );
    assert!(
        out.contains("postgres: PostgreSQL at nobody_here@127.0.0.1:5432 refused the login"),
        "{out}"
    );
    assert!(stderr(&o).contains("hint:"), "{}", stderr(&o));
}

#[test]
fn every_help_shows_examples_and_groups_the_options() {
    let bin = env!("CARGO_BIN_EXE_pgconverge");
    let help = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).output().unwrap();
        assert_exit(&o, 0);
        stdout(&o)
    };
    for cmd in [
        &[][..],
        &["export"],
        &["import"],
        &["verify"],
        &["migrate"],
        &["check"],
        &["log-run"],
        &["runs"],
        &["profile"],
        &["profile", "show"],
        &["profile", "list"],
    ] {
        for flag in ["-h", "--help"] {
            let args: Vec<&str> = cmd.iter().copied().chain([flag]).collect();
            let out = help(&args);
            assert!(
                out.contains("Examples"),
                "{args:?} shows no example:\n{out}"
            );
            assert!(out.contains("pgconverge "), "{args:?}:\n{out}");
        }
    }
    // check: the connection options under their own headings, after its own options.
    let out = help(&["check", "--help"]);
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in:\n{out}"));
    assert!(at("Options:") < at("Output:"), "{out}");
    assert!(at("Output:") < at("MySQL connection:"), "{out}");
    assert!(at("MySQL connection:") < at("PostgreSQL connection (the target):"));
    assert!(at("PostgreSQL connection (the target):") < at("Global:"));
    assert!(at("--json") > at("Output:") && at("--json") < at("MySQL connection:"));
    assert!(at("--mysql-user") > at("MySQL connection:"));
    assert!(at("--postgres-user") > at("PostgreSQL connection (the target):"));
}

/// A MySQL source URL naming another database than the one named: `check` says so in
/// the words `export` refuses it with, instead of only "does not exist".
#[test]
fn a_mysql_url_naming_another_database_is_said() {
    let w = World::new("check_url_db");
    w.mysql("CREATE TABLE t (id INT PRIMARY KEY)");
    let url = format!("{}/{}", w.mysql_url.trim_end_matches('/'), w.db);
    let o = w.run(&["check", "pgc_other_name", "--source-url", &url]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "the source database is `pgc_other_name`, but the connection URL names database `{}`",
            w.db
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: remove the database from the URL"),
        "{err}"
    );
}
