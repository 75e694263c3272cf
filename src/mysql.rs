//! Every conversation with the MySQL/MariaDB server: connecting (with errors that say
//! what failed and how to fix it), introspection through `information_schema` (every
//! column aliased: MySQL 8 returns upper-case labels), snapshots and streaming.
//! SQL text lives here; value formatting does not (see `encode`).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

use crate::config::ServerConfig;
use crate::hint::with_hint;

/// Quote an identifier for MySQL: backticks, with embedded backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Connect, optionally to a database, with a 15 s limit.
pub async fn connect(cfg: &ServerConfig, db: Option<&str>) -> Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(cfg.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(db.map(str::to_string))
        .prefer_socket(false);
    let attempt = tokio::time::timeout(Duration::from_secs(15), Conn::new(opts)).await;
    match attempt {
        Err(_) => Err(with_hint(
            anyhow!("MySQL at {} did not answer within 15 s", cfg.display()),
            "check MYSQL_HOST and MYSQL_PORT, and that a firewall lets the connection through",
        )),
        Ok(Err(e)) => Err(explain(e, cfg, db)),
        Ok(Ok(conn)) => Ok(conn),
    }
}

/// Turn a connection error into one line naming what failed, plus a hint.
fn explain(e: mysql_async::Error, cfg: &ServerConfig, db: Option<&str>) -> anyhow::Error {
    use mysql_async::Error as E;
    let place = format!("MySQL at {}", cfg.display());
    match &e {
        E::Server(se) if se.code == 1045 || se.code == 1698 => with_hint(
            anyhow!("{place} refused the login: {}", se.message),
            "check MYSQL_USER and MYSQL_PASSWORD (flag, environment or .env)",
        ),
        E::Server(se) if se.code == 1049 => with_hint(
            anyhow!(
                "{place}: database `{}` does not exist",
                db.unwrap_or_default()
            ),
            "list them with SHOW DATABASES; set ALKEMIO_DB / KRATOS_DB or name the database",
        ),
        E::Io(_) => with_hint(
            anyhow!("cannot reach {place}: {e}"),
            "is the server running? scripts/dev-services.sh starts a local one; check MYSQL_HOST and MYSQL_PORT",
        ),
        _ => anyhow!("connecting to {place}: {e}"),
    }
}

/// `SELECT VERSION()`.
pub async fn server_version(conn: &mut Conn) -> Result<String> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION() AS version")
        .await
        .context("reading the MySQL server version")?;
    Ok(v.unwrap_or_default())
}

/// Does the schema exist?
pub async fn database_exists(conn: &mut Conn, name: &str) -> Result<bool> {
    let found: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME AS schema_name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await
        .with_context(|| format!("looking up database `{name}`"))?;
    Ok(found.is_some())
}
