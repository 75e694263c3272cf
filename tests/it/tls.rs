//! TLS against servers that require it, each started by the test with a throwaway CA:
//! every sslmode does what libpq's does, on PostgreSQL and MySQL alike, and a whole
//! export and import run encrypted.

use crate::export::export_dir;
use crate::harness::*;
use crate::servers::{Certs, TlsMariaDb, TlsPostgres};

fn check(w: &World, env: &[(&str, String)]) -> std::process::Output {
    let mut c = w.cmd();
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("check").output().unwrap()
}

/// The `tls` column of one server's line of `check`.
fn tls_of(out: &str, server: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(server) && l.contains('@'))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn postgres_sslmodes_behave_as_libpq_s() {
    let w = World::new("tls_postgres_modes");
    let certs = Certs::new();
    let pg = TlsPostgres::start(&certs);
    let url = |host: &str, query: &str| {
        (
            "POSTGRES_URL",
            format!("postgres://postgres@{host}:{}/postgres?{query}", pg.port),
        )
    };
    let ca = certs.ca().display().to_string();

    // The server refuses plain connections; require encrypts without checking.
    let o = check(&w, &[url("127.0.0.1", "sslmode=disable")]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("over TLS only"), "{}", stderr(&o));
    for mode in ["prefer", "require"] {
        let o = check(&w, &[url("127.0.0.1", &format!("sslmode={mode}"))]);
        assert_exit(&o, 0);
        assert!(
            tls_of(&stdout(&o), "postgres").starts_with("TLSv1."),
            "{}",
            stdout(&o)
        );
    }
    // verify-full: an unknown CA is refused; the right CA file makes it work.
    let o = check(&w, &[url("127.0.0.1", "sslmode=verify-full")]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("certificate was not accepted") && stderr(&o).contains("SSLROOTCERT"),
        "{}",
        stderr(&o)
    );
    let o = check(
        &w,
        &[url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )],
    );
    assert_exit(&o, 0);
    // The certificate names 127.0.0.1, not localhost: verify-full refuses the name,
    // verify-ca accepts the chain.
    let o = check(
        &w,
        &[url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )],
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not valid for name \"localhost\""),
        "{}",
        stderr(&o)
    );
    let o = check(
        &w,
        &[url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        )],
    );
    assert_exit(&o, 0);
    // The same through the separate variables.
    let o = check(
        &w,
        &[
            (
                "POSTGRES_URL",
                format!("postgres://postgres@127.0.0.1:{}", pg.port),
            ),
            ("POSTGRES_SSLMODE", "verify-full".into()),
            ("POSTGRES_SSLROOTCERT", ca.clone()),
        ],
    );
    assert_exit(&o, 0);
}

#[test]
fn an_import_runs_over_verified_tls() {
    let w = World::new("tls_import");
    let certs = Certs::new();
    let pg = TlsPostgres::start(&certs);
    w.mysql("CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'secret'), (2, NULL);");
    pg.sql("postgres", &format!("CREATE DATABASE \"{}\"", w.db));
    pg.sql(&w.db, "CREATE TABLE t (id integer PRIMARY KEY, v text)");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let url = format!(
        "postgres://postgres@127.0.0.1:{}?sslmode=verify-full&sslrootcert={}",
        pg.port,
        certs.ca().display()
    );
    let o = w
        .cmd()
        .env("POSTGRES_URL", &url)
        .args(["import", dir.to_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let o = w
        .cmd()
        .env("POSTGRES_URL", &url)
        .args(["verify", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("verify: OK, 1 table, 2 rows"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn mysql_ssl_modes_behave_alike() {
    let w = World::new("tls_mysql_modes");
    let certs = Certs::new();
    let my = TlsMariaDb::start(&certs);
    let url = |query: &str| {
        (
            "MYSQL_URL",
            format!("mysql://tls:pw@127.0.0.1:{}?{query}", my.port),
        )
    };
    let ca = certs.ca().display().to_string();
    // The user must use TLS: plain is refused; prefer and require encrypt.
    let o = check(&w, &[url("ssl-mode=DISABLED")]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("refused the login"), "{}", stderr(&o));
    for mode in ["PREFERRED", "require"] {
        let o = check(&w, &[url(&format!("ssl-mode={mode}"))]);
        assert_exit(&o, 0);
        assert!(
            tls_of(&stdout(&o), "mysql").starts_with("TLSv1."),
            "{}",
            stdout(&o)
        );
    }
    let o = check(&w, &[url("ssl-mode=VERIFY_IDENTITY")]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("not accepted"), "{}", stderr(&o));
    let o = check(&w, &[url(&format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"))]);
    assert_exit(&o, 0);
    // A server without TLS (the shared one): require says so; prefer falls back.
    let o = check(&w, &[("MYSQL_SSL_MODE", "require".into())]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("does not offer TLS"), "{}", stderr(&o));
    let o = check(&w, &[]);
    assert_exit(&o, 0);
    assert_eq!(tls_of(&stdout(&o), "mysql"), "off");
}
