//! Every conversation with PostgreSQL: connecting (with errors that say what failed and
//! how to fix it), catalog reads, the COPY wire, counts. Errors are formatted from
//! `DbError` (code, message, detail, hint, where) because the driver's Display alone
//! loses them. What is fed to a COPY (files, conversion) is the importer's business.
//!
//! This file owns connecting, the error text and the server's own facts; one idea per
//! file beside it: `catalog` (what the target holds: tables, columns, keys, counts),
//! `sequences` (where they stand, put back after a rollback), `probe` (the mapping's
//! `require` and `set` asked of the target before any write) and `copy` (the COPY wire).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, NoTls};

use crate::config::{ServerConfig, SslMode};
use crate::db::tls;
use crate::hint::with_hint;

mod catalog;
mod copy;
mod probe;
mod sequences;

pub use catalog::{count_orphans, count_rows, has_rows, read_catalog};
pub use copy::{
    Chunk, FeedStopped, RawValue, copy_in, copy_out_rows, copy_text_rows, verify_session,
};
pub use probe::{probe_sets, requirements};
pub use sequences::{SequencePositions, positions_of, restore_sequences, sequence_positions};

/// The first words of a server's error: `ERROR (22012): division by zero`.
pub fn headline(db: &tokio_postgres::error::DbError) -> String {
    format!("{} ({}): {}", db.severity(), db.code().code(), db.message())
}

/// A driver error as text with SQLSTATE, detail and where; the server's hint becomes a `Hint`.
pub fn error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let mut text = headline(db);
            if let Some(d) = db.detail() {
                text.push_str(&format!("; detail: {d}"));
            }
            if let Some(w) = db.where_() {
                text.push_str(&format!("; where: {w}"));
            }
            let err = anyhow!(text);
            match (db.hint(), db.code().code()) {
                (Some(h), _) => with_hint(err, h),
                (None, "55P03") => with_hint(err, LOCK_TIMEOUT_HINT),
                (None, "57014") if db.message().contains("statement timeout") => {
                    with_hint(err, STATEMENT_TIMEOUT_HINT)
                }
                (None, _) => err,
            }
        }
        None if e.is_closed() => anyhow!(
            "the connection to PostgreSQL was closed: the server ended the session (terminated \
             by an administrator, a restart or a crash) or the network failed"
        ),
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

/// A statement that waited longer than `lock_timeout` for a lock another session holds.
pub const LOCK_TIMEOUT_HINT: &str = "another session holds a lock this statement waited \
     for longer than lock_timeout (pg_locks and pg_stat_activity show which): stop the \
     application's sessions for the window and run again, or raise lock_timeout for the \
     importing role";

/// A statement the role's or database's `statement_timeout` cancelled.
pub const STATEMENT_TIMEOUT_HINT: &str = "a statement_timeout stopped it (set for the role \
     or the database, or by a hook): raise it for the role that runs pgconverge (ALTER ROLE \
     name SET statement_timeout = 0), or take it out of the hook, and run again";

/// What to do about a target database that does not exist.
pub const MISSING_DATABASE_HINT: &str =
    "create it and run the application's migrations first, or pass --target-db";

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
    pg.ssl_mode(match cfg.tls.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    // Errors of the connection task surface on the next client call.
    let client = match tls::client_config(&cfg.tls)? {
        None => {
            let (client, conn) = pg.connect(NoTls).await.map_err(|e| explain(e, cfg, db))?;
            tokio::spawn(conn);
            client
        }
        Some(tls) => {
            let (client, conn) = pg
                .connect(tls::PgTls(tls))
                .await
                .map_err(|e| explain(e, cfg, db))?;
            tokio::spawn(conn);
            client
        }
    };
    Ok(client)
}

/// Ask the server to cancel whatever `client`'s session is running (a new connection
/// carries the request, as libpq's PQcancel does).
pub async fn cancel(client: &Client, cfg: &ServerConfig) -> Result<()> {
    let token = client.cancel_token();
    match tls::client_config(&cfg.tls)? {
        None => token.cancel_query(NoTls).await,
        Some(t) => token.cancel_query(tls::PgTls(t)).await,
    }
    .map_err(error)
    .context("cancelling the import's running statement")
}

fn explain(e: tokio_postgres::Error, cfg: &ServerConfig, db: &str) -> anyhow::Error {
    let place = format!("PostgreSQL at {}", cfg.display());
    if let Some(dbe) = e.as_db_error() {
        let code = dbe.code().code();
        let msg = dbe.message().to_string();
        return match code {
            "28000" if msg.contains("no encryption") => with_hint(
                anyhow!("{place} refused the login: {msg}"),
                "the server accepts this login over TLS only: set POSTGRES_SSLMODE to require \
                 (or verify-full with POSTGRES_SSLROOTCERT) instead of disable",
            ),
            "28P01" | "28000" => with_hint(
                anyhow!("{place} refused the login: {msg}"),
                "check POSTGRES_USER and POSTGRES_PASSWORD (flag, environment or .env)",
            ),
            "3D000" => with_hint(
                anyhow!("{place}: database `{db}` does not exist"),
                MISSING_DATABASE_HINT,
            ),
            _ => anyhow!("connecting to {place}: {}", error(e)),
        };
    }
    let cause = root_cause(&e);
    let tls_mode = cfg.tls.mode.name();
    if cause.contains("does not support TLS") {
        return with_hint(
            anyhow!(
                "{place} does not offer TLS, and the TLS mode is {tls_mode} (POSTGRES_SSLMODE, or sslmode= in the URL)"
            ),
            "enable ssl on the server, or set POSTGRES_SSLMODE=prefer (or disable; sslmode= in the URL) for a trusted network",
        );
    }
    if cause.contains("certificate") || cause.contains("Certificate") {
        return with_hint(
            anyhow!(
                "{place}: the server's TLS certificate was not accepted ({cause}; the TLS mode is {tls_mode}: POSTGRES_SSLMODE, or sslmode= in the URL)"
            ),
            "give the certificate authority that signed it with POSTGRES_SSLROOTCERT (sslrootcert= in the URL), \
             or use verify-ca when the certificate does not name this host",
        );
    }
    with_hint(
        anyhow!("cannot reach {place}: {cause}"),
        "is the server running? scripts/dev-services.sh starts a local one; check POSTGRES_HOST and POSTGRES_PORT",
    )
}

/// The innermost message of an error's chain (the operating system's or the TLS
/// library's own words), without the layers that repeat it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
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

/// The TLS version this session uses, or None when it is not encrypted.
pub async fn tls_in_use(client: &Client) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the session's TLS state")?;
    Ok(row.map(|r| r.get(0)))
}

/// The cluster's `system_identifier`, when this role may read `pg_control_system()`.
pub async fn system_identifier(client: &Client) -> Result<Option<String>> {
    let allowed: bool = client
        .query_one(
            "SELECT has_function_privilege('pg_control_system()', 'EXECUTE')",
            &[],
        )
        .await
        .map_err(error)?
        .get(0);
    if !allowed {
        return Ok(None);
    }
    let row = client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the server's system identifier")?;
    Ok(Some(row.get(0)))
}

/// `txid_status(xid)`: `committed`, `aborted`, `in progress`, or None when too old.
pub async fn txid_status(client: &Client, xid: i64) -> Result<Option<String>> {
    let row = client
        .query_one("SELECT txid_status($1)", &[&xid])
        .await
        .map_err(error)
        .context("asking what became of the transaction")?;
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
