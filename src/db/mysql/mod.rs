//! Every conversation with the MySQL/MariaDB server: connecting (with errors that say
//! what failed and how to fix it), introspection through `information_schema` (every
//! column aliased: MySQL 8 returns upper-case labels), snapshots and streaming.
//! SQL text lives here; value formatting does not (see `codec`).
//!
//! This file owns connecting, the error text and the server's own facts; one idea per
//! file beside it: `catalog` (tables, columns, keys, character sets), `snapshot` (readers
//! on one consistent snapshot), `stream` (a dataset's rows, streamed; its key ranges),
//! `counts` (exact counts and `count` rules) and `probe` (the mapping's `where` and
//! `query` checked by the server).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

use crate::config::{ServerConfig, SslMode};
use crate::db::tls;
use crate::hint::with_hint;

mod catalog;
mod counts;
mod probe;
mod snapshot;
mod stream;

pub use catalog::{lossless_charsets, read_catalog};
pub use counts::{count_matching, count_rows};
pub use probe::{check_filter, probe_query};
pub(crate) use snapshot::start_snapshot;
pub use snapshot::{open_readers, prepare_reader};
pub(crate) use stream::{dataset_name, from_clause};
pub use stream::{select_list, split_points, stream_sql, stream_table, trim_statement};

/// What to do about a source database that does not exist.
pub const UNKNOWN_DATABASE_HINT: &str =
    "list them with SHOW DATABASES; set ALKEMIO_DB / KRATOS_DB or name the database";

/// Connect, optionally to a database, with a 15 s limit. Under `prefer`, a server that
/// offers no TLS is connected to in plain TCP.
pub async fn connect(cfg: &ServerConfig, db: Option<&str>) -> Result<Conn> {
    let ssl = tls::mysql_ssl_opts(&cfg.tls);
    match attempt(cfg, db, ssl.clone()).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if cfg.tls.mode == SslMode::Prefer =>
        {
            attempt(cfg, db, None).await
        }
        other => other,
    }
    .map_err(|e| explain(e, cfg, db))
}

async fn attempt(
    cfg: &ServerConfig,
    db: Option<&str>,
    ssl: Option<mysql_async::SslOpts>,
) -> mysql_async::Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(cfg.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(db.map(str::to_string))
        .prefer_socket(false)
        .ssl_opts(ssl);
    match tokio::time::timeout(Duration::from_secs(15), Conn::new(opts)).await {
        Ok(r) => r,
        Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 15 s"),
        ))),
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
            UNKNOWN_DATABASE_HINT,
        ),
        E::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => with_hint(
            anyhow!(
                "{place} does not offer TLS, and MYSQL_SSL_MODE is {}",
                cfg.tls.mode.name()
            ),
            "enable TLS on the server, or set MYSQL_SSL_MODE=prefer (or disable) for a trusted network",
        ),
        E::Io(io) if io.to_string().contains("certificate") => with_hint(
            anyhow!(
                "{place}: the server's TLS certificate was not accepted ({io}; MYSQL_SSL_MODE is {})",
                cfg.tls.mode.name()
            ),
            "give the certificate authority that signed it with MYSQL_SSL_CA (ssl-ca= in the URL), \
             or use verify-ca when the certificate does not name this host",
        ),
        E::Io(io) => with_hint(
            anyhow!("cannot reach {place}: {}", io_cause(io)),
            "is the server running? scripts/dev-services.sh starts a local one; check MYSQL_HOST and MYSQL_PORT",
        ),
        _ => anyhow!("connecting to {place}: {e}"),
    }
}

/// A driver error as one line in the server's own words: `MySQL said: Query execution
/// was interrupted (error 1317, SQLSTATE 70100)`, or that the connection was lost (the
/// driver's own text repeats its cause: `Server error: `ERROR 1317 ...': ERROR 1317 ...`).
pub fn error(e: mysql_async::Error) -> anyhow::Error {
    use mysql_async::Error as E;
    match &e {
        E::Server(se) => anyhow!(
            "MySQL said: {} (error {}, SQLSTATE {})",
            se.message,
            se.code,
            se.state
        ),
        E::Io(io) => {
            let cause = io_cause(io);
            if cause.contains("bytes remaining on stream") || cause.contains("broken pipe") {
                anyhow!(
                    "the connection to MySQL was closed in the middle of a result (the \
                     session was killed, or the server stopped)"
                )
            } else if cause.contains("connection closed") {
                // Closed between two packets: the same event, seen at another moment.
                anyhow!(
                    "the connection to MySQL was closed by the server (the session was \
                     killed, or the server stopped)"
                )
            } else {
                anyhow!("the connection to MySQL failed: {cause}")
            }
        }
        _ => anyhow!("{e}"),
    }
}

/// The operating system's words for an I/O failure, once (the driver wraps it twice:
/// `Input/output error: Input/output error: Connection refused`).
fn io_cause(e: &mysql_async::IoError) -> String {
    match e {
        mysql_async::IoError::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// `SELECT VERSION()`.
pub async fn server_version(conn: &mut Conn) -> Result<String> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION() AS version")
        .await
        .map_err(error)
        .context("reading the MySQL server version")?;
    Ok(v.unwrap_or_default())
}

/// The TLS version this session uses, or None when it is not encrypted.
pub async fn tls_in_use(conn: &mut Conn) -> Result<Option<String>> {
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_version'")
        .await
        .map_err(error)
        .context("reading the session's TLS state")?;
    Ok(row.map(|(_, v)| v).filter(|v| !v.is_empty()))
}

/// Does the schema exist?
pub async fn database_exists(conn: &mut Conn, name: &str) -> Result<bool> {
    let found: Option<String> = conn
        .exec_first(
            "SELECT SCHEMA_NAME AS schema_name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await
        .map_err(error)
        .with_context(|| format!("looking up database `{name}`"))?;
    Ok(found.is_some())
}
