//! Every conversation with PostgreSQL: connecting (with errors that say what failed and
//! how to fix it), catalog reads, COPY, counts. Errors are formatted from `DbError`
//! (code, message, detail, hint, where) because the driver's Display alone loses them.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, NoTls};

use crate::config::ServerConfig;
use crate::hint::with_hint;

/// Quote an identifier for PostgreSQL: double quotes, embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a string literal for PostgreSQL (standard_conforming_strings is on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// A driver error as text with SQLSTATE, detail and where; the server's hint becomes a `Hint`.
pub fn error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                text.push_str(&format!("; detail: {d}"));
            }
            if let Some(w) = db.where_() {
                text.push_str(&format!("; where: {w}"));
            }
            let err = anyhow!(text);
            match db.hint() {
                Some(h) => with_hint(err, h),
                None => err,
            }
        }
        None => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            anyhow!(text)
        }
    }
}

/// Connect to a database; the connection task runs in the background until the client drops.
pub async fn connect(cfg: &ServerConfig, db: &str) -> Result<Client> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&cfg.host)
        .port(cfg.port)
        .user(&cfg.user)
        .dbname(db)
        .application_name("pgconverge")
        .connect_timeout(Duration::from_secs(15));
    if let Some(p) = &cfg.password {
        pg.password(p.expose());
    }
    let (client, connection) = pg.connect(NoTls).await.map_err(|e| explain(e, cfg, db))?;
    tokio::spawn(async move {
        // Errors surface on the next client call; nothing to report here.
        let _ = connection.await;
    });
    Ok(client)
}

fn explain(e: tokio_postgres::Error, cfg: &ServerConfig, db: &str) -> anyhow::Error {
    let place = format!("PostgreSQL at {}", cfg.display());
    if let Some(dbe) = e.as_db_error() {
        let code = dbe.code().code();
        let msg = dbe.message().to_string();
        return match code {
            "28P01" | "28000" => with_hint(
                anyhow!("{place} refused the login: {msg}"),
                "check POSTGRES_USER and POSTGRES_PASSWORD (flag, environment or .env)",
            ),
            "3D000" => with_hint(
                anyhow!("{place}: database `{db}` does not exist"),
                "create it with the application's migrations first, or pass --target-db",
            ),
            _ => anyhow!("connecting to {place}: {}", error(e)),
        };
    }
    with_hint(
        anyhow!("cannot reach {place}: {}", error(e)),
        "is the server running? scripts/dev-services.sh starts a local one; check POSTGRES_HOST and POSTGRES_PORT",
    )
}

/// `SHOW server_version`.
pub async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(error)
        .context("reading the PostgreSQL server version")?;
    Ok(row.get(0))
}

/// Does the database exist?
pub async fn database_exists(client: &Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(error)
        .with_context(|| format!("looking up database `{name}`"))?;
    Ok(row.is_some())
}

/// Whether this role may `SET session_replication_role`, and why (tried, then rolled back).
pub async fn replication_role_check(client: &mut Client) -> Result<(bool, String)> {
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(error)?
        .get(0);
    let tx = client.transaction().await.map_err(error)?;
    let outcome = tx
        .batch_execute("SET LOCAL session_replication_role = replica")
        .await;
    tx.rollback().await.map_err(error)?;
    Ok(match outcome {
        Ok(()) if superuser => (true, "superuser".into()),
        Ok(()) => (true, "granted".into()),
        Err(e) => (false, format!("{:#}", error(e))),
    })
}

/// The two ways to obtain the right to set `session_replication_role`.
pub const REPLICATION_ROLE_HINT: &str = "run as a superuser, or (PostgreSQL 15+) have one run: \
    GRANT SET ON PARAMETER session_replication_role TO <role>";
