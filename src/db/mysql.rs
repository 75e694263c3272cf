//! Every conversation with the MySQL/MariaDB server: connecting (with errors that say
//! what failed and how to fix it), introspection through `information_schema` (every
//! column aliased: MySQL 8 returns upper-case labels), snapshots and streaming.
//! SQL text lives here; value formatting does not (see `codec`).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

use crate::config::{Engine, ServerConfig, SslMode};
use crate::db::catalog::{
    KeyLiteral, KeyRange, Read, ReadColumn, ReadFrom, Snapshot, SourceColumn, SourceTable,
};
use crate::db::long_values::Long;
use crate::db::mysql_long;
use crate::db::sql::my::{ident as quote_ident, qualified};
use crate::db::{binlog_status, tls};
use crate::hint::with_hint;

/// The snapshot every reader works in; the manifest records these same values.
const ISOLATION: &str = "REPEATABLE READ, consistent snapshot, read only";
const TIME_ZONE: &str = "+00:00";
const CHARSET: &str = "utf8mb4";

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

/// Tables, columns and primary keys of `db`, in name order.
pub async fn read_catalog(conn: &mut Conn, db: &str) -> Result<Vec<SourceTable>> {
    let ctx = || format!("reading information_schema for database `{db}`");
    // MySQL 8 caches TABLES statistics (AUTO_INCREMENT included) for a day by default;
    // MariaDB has no such variable (error 1193) and is always current.
    match conn
        .query_drop("SET SESSION information_schema_stats_expiry = 0")
        .await
    {
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => {}
        other => other.map_err(error).with_context(ctx)?,
    }
    let tables: Vec<(String, String, u64, Option<u64>)> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COALESCE(ENGINE, '') AS engine, \
                    COALESCE(TABLE_ROWS, 0) AS table_rows, AUTO_INCREMENT AS auto_increment \
             FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    type ColumnRow = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    );
    let columns: Vec<ColumnRow> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, \
                    DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, \
                    IS_NULLABLE AS is_nullable, EXTRA AS extra, \
                    CHARACTER_SET_NAME AS character_set_name \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let keys: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let json_columns = mariadb_json_columns(conn, db).await.with_context(ctx)?;
    let mut next_ids = Vec::new();
    let mut out: Vec<SourceTable> = tables
        .into_iter()
        .map(|(name, engine, rows, next)| {
            next_ids.push(next);
            SourceTable {
                name,
                engine,
                estimated_rows: rows,
                columns: Vec::new(),
                primary_key: Vec::new(),
                auto_increment: None,
                partitions: None,
            }
        })
        .collect();
    let index: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    for (table, name, data_type, column_type, nullable, extra, charset) in columns {
        if let Some(&i) = index.get(&table) {
            let extra = extra.to_ascii_uppercase();
            if extra.contains("AUTO_INCREMENT")
                && let Some(next) = next_ids[i]
            {
                out[i].auto_increment = Some((name.clone(), next));
            }
            let is_json = json_columns.contains(&(table.clone(), name.clone()));
            out[i].columns.push(SourceColumn {
                data_type: if is_json {
                    "json".into()
                } else {
                    data_type.to_ascii_lowercase()
                },
                column_type: column_type.to_ascii_lowercase(),
                nullable: nullable.eq_ignore_ascii_case("YES"),
                generated: [
                    "VIRTUAL GENERATED",
                    "STORED GENERATED",
                    "PERSISTENT GENERATED",
                ]
                .iter()
                .any(|g| extra.contains(g)),
                charset: charset.map(|c| c.to_ascii_lowercase()),
                labels: Vec::new(),
                name,
            });
        }
    }
    for (table, column) in keys {
        if let Some(&i) = index.get(&table) {
            out[i].primary_key.push(column);
        }
    }
    Ok(out)
}

/// Which of `charsets` (non-UTF-8 character sets of the source's columns) convert every
/// value to utf8mb4 and back unchanged on this server, so that their columns need no
/// per-value check. Only a single-byte set can be proven so, by its 256 byte values, and
/// the server is asked rather than trusted from a list: on MariaDB 10.11 every byte of
/// latin1, latin2, koi8r, cp850, macroman ... round-trips, while cp1251 (0x98), ascii
/// (0x80-0xFF) and tis620 do not. Multi-byte sets (gbk, big5, ucs2 ...) are always checked.
pub async fn lossless_charsets(
    conn: &mut Conn,
    charsets: &std::collections::BTreeSet<String>,
) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for cs in charsets {
        if !cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            continue;
        }
        let maxlen: Option<u64> = conn
            .exec_first(
                "SELECT MAXLEN AS maxlen FROM information_schema.CHARACTER_SETS \
                 WHERE CHARACTER_SET_NAME = ?",
                (cs,),
            )
            .await
            .map_err(error)
            .with_context(|| format!("reading character set `{cs}`"))?;
        if maxlen != Some(1) {
            continue;
        }
        let lossy: Option<u64> = conn
            .query_first(format!(
                "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 255) \
                 SELECT COUNT(*) FROM n WHERE CAST(CONVERT(CONVERT(CONVERT(CHAR(i USING binary) \
                 USING {cs}) USING utf8mb4) USING {cs}) AS BINARY) <> CHAR(i USING binary)"
            ))
            .await
            .map_err(error)
            .with_context(|| format!("probing character set `{cs}`"))?;
        if lossy == Some(0) {
            out.insert(cs.clone());
        }
    }
    Ok(out)
}

/// MariaDB's JSON is LONGTEXT with `CHECK (json_valid(col))`; find those columns so they
/// get the JSON checks. MySQL 8 has a real `json` type, and its CHECK_CONSTRAINTS has no
/// TABLE_NAME (error 1054); MySQL 5.7 has no such view (1109): both mean none.
async fn mariadb_json_columns(conn: &mut Conn, db: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = match conn
        .exec(
            "SELECT TABLE_NAME AS table_name, CHECK_CLAUSE AS check_clause \
             FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?",
            (db,),
        )
        .await
    {
        Ok(r) => r,
        Err(mysql_async::Error::Server(e)) if e.code == 1054 || e.code == 1109 => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(error(e)).context("reading CHECK constraints (MariaDB JSON columns)"),
    };
    Ok(rows
        .into_iter()
        .filter_map(|(table, clause)| {
            let c = clause.trim();
            let inner = c.strip_prefix("json_valid(")?.strip_suffix(')')?;
            Some((table, inner.trim_matches('`').replace("``", "`")))
        })
        .collect())
}

/// Session settings every reading connection gets: UTC, utf8mb4, long network timeouts
/// (a slow disk on our side must not make the server drop a long stream).
pub async fn prepare_reader(conn: &mut Conn) -> Result<()> {
    conn.query_drop(format!(
        "SET SESSION time_zone = '{TIME_ZONE}'; SET NAMES {CHARSET}; \
         SET SESSION net_write_timeout = 3600; SET SESSION net_read_timeout = 3600; \
         SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    ))
    .await
    .map_err(error)
    .context("preparing a reading session (time_zone, NAMES, isolation)")
}

pub(crate) async fn start_snapshot(conn: &mut Conn) -> Result<()> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(error)
        .context("starting a consistent read-only snapshot")
}

/// Reading connections that all see one snapshot of the database.
pub struct Readers {
    pub conns: Vec<Conn>,
    /// What the manifest records of the snapshot.
    pub snapshot: Snapshot,
    /// Said to the user when fewer readers than asked could be synchronised.
    pub note: Option<String>,
    /// The binary log position the snapshot is consistent with (file, offset), when
    /// asked for (a delta chain's base).
    pub position: Option<(String, u64)>,
}

fn snapshot(readers: usize, synchronized_by: String) -> Snapshot {
    Snapshot {
        isolation: ISOLATION.into(),
        time_zone: TIME_ZONE.into(),
        charset: CHARSET.into(),
        readers,
        synchronized_by,
    }
}

/// Open `wanted` readers on one snapshot. With more than one, the exported tables are
/// locked `READ` (so no write can commit on them) while every reader starts its
/// snapshot, then unlocked — mydumper's `--lock-all-tables` approach, which needs only
/// the LOCK TABLES privilege. If the lock cannot be had, one reader is used instead.
pub async fn open_readers(
    cfg: &ServerConfig,
    db: &str,
    tables: &[String],
    wanted: usize,
    position: bool,
) -> Result<Readers> {
    let wanted = wanted.max(1);
    let single = |mut conn: Conn, note: Option<String>| async move {
        prepare_reader(&mut conn).await?;
        start_snapshot(&mut conn).await?;
        let position = match position {
            true => binlog_status::snapshot_position(&mut conn).await?,
            false => None,
        };
        Ok::<_, anyhow::Error>(Readers {
            conns: vec![conn],
            snapshot: snapshot(1, "one connection, one snapshot".into()),
            note,
            position,
        })
    };
    if wanted <= 1 || tables.len() <= 1 {
        let mut conn = connect(cfg, Some(db)).await?;
        // MySQL has no snapshot position: its position is read under the lock below.
        if !position || is_mariadb(&mut conn).await? {
            return single(conn, None).await;
        }
        let _ = conn.disconnect().await;
    }
    let mut locker = connect(cfg, Some(db)).await?;
    let mut conns = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let mut c = connect(cfg, Some(db)).await?;
        prepare_reader(&mut c).await?;
        conns.push(c);
    }
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{} READ", qualified(db, t)))
        .collect();
    let locked = async {
        locker
            .query_drop("SET SESSION lock_wait_timeout = 30")
            .await?;
        locker
            .query_drop(format!("LOCK TABLES {}", list.join(", ")))
            .await
    }
    .await;
    if let Err(e) = locked {
        let note = format!(
            "could not lock the tables to synchronise {wanted} readers ({e}); \
             exporting with one reader on one snapshot"
        );
        let _ = locker.disconnect().await;
        let mut first = conns.swap_remove(0);
        for c in conns {
            let _ = c.disconnect().await;
        }
        if position && !is_mariadb(&mut first).await? {
            return Err(with_hint(
                anyhow!(
                    "{note}: a chain's base on MySQL needs the lock to read its exact log position"
                ),
                "grant LOCK TABLES on the database, or take the base on MariaDB (whose snapshot knows its position)",
            ));
        }
        return single(first, Some(note)).await;
    }
    for c in &mut conns {
        start_snapshot(c).await?;
    }
    // The log position every snapshot is consistent with: MariaDB says it of a snapshot
    // exactly; MySQL's is read while the lock holds every write to the exported tables.
    let position = match position {
        false => None,
        true => match binlog_status::snapshot_position(&mut conns[0]).await? {
            Some(p) => Some(p),
            None => Some(binlog_status::current_position(&mut locker).await?),
        },
    };
    locker
        .query_drop("UNLOCK TABLES")
        .await
        .map_err(error)
        .context("unlocking the tables after starting the snapshots")?;
    let _ = locker.disconnect().await;
    Ok(Readers {
        conns,
        snapshot: snapshot(
            wanted,
            format!("{wanted} connections started their snapshots under LOCK TABLES ... READ"),
        ),
        note: None,
        position,
    })
}

/// Is the server MariaDB (whose consistent snapshots know their log position)?
async fn is_mariadb(conn: &mut Conn) -> Result<bool> {
    Ok(server_version(conn)
        .await?
        .to_ascii_lowercase()
        .contains("mariadb"))
}

/// `parts - 1` boundaries that cut `db.table` into about equal key ranges, read from the
/// primary-key index (`ORDER BY key LIMIT 1 OFFSET n`). Fewer when the table is smaller
/// than its estimate. Any values would do for correctness: each range is read inside the
/// snapshot and the ranges cover every key exactly once.
pub async fn split_points(
    conn: &mut Conn,
    db: &str,
    table: &str,
    column: &str,
    integer: bool,
    estimated_rows: u64,
    parts: u64,
) -> Result<Vec<KeyLiteral>> {
    let mut out: Vec<KeyLiteral> = Vec::new();
    for i in 1..parts {
        let offset = estimated_rows * i / parts;
        let row: Option<mysql_async::Row> = conn
            .query_first(format!(
                "SELECT {c} FROM {} ORDER BY {c} LIMIT 1 OFFSET {offset}",
                qualified(db, table),
                c = quote_ident(column)
            ))
            .await
            .map_err(error)
            .with_context(|| format!("finding key ranges of `{table}`"))?;
        let Some(row) = row else { break };
        let Some(mysql_async::Value::Bytes(v)) = row.as_ref(0) else {
            break;
        };
        let Some(lit) = KeyLiteral::new(integer, v) else {
            break;
        };
        if out.last() != Some(&lit) {
            out.push(lit);
        }
    }
    Ok(out)
}

/// Stream every row of `db.table` (the given columns, each read as its `Read` says)
/// into `on_row`, one row at a time: nothing is buffered beyond the driver's packet.
/// `Read::Bytes` columns bypass the connection's character-set conversion, which would
/// otherwise rewrite bytes kept in a text column (latin1 0x9C would arrive as UTF-8 `œ`).
/// For a column with `check_conversion_from`, the server also says whether the value
/// survives the conversion to utf8mb4 and back unchanged; `on_row` gets the positions of
/// the columns where it does not (gbk `A3 80` has no Unicode equivalent: it reads `?`).
pub async fn stream_table<F>(
    conn: &mut Conn,
    db: &str,
    from: ReadFrom<'_>,
    columns: &[ReadColumn<'_>],
    range: Option<&KeyRange>,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    let long = Long::of(columns, from);
    let (mut cols, checks, checked) = select_list(columns, "");
    let flags = match &long {
        Some(l) => mysql_long::wrap(&mut cols, columns, l),
        None => Vec::new(),
    };
    cols.extend(checks);
    cols.extend(flags);
    let sql_from = from_clause(db, from);
    let mut sql = format!("SELECT {} FROM {sql_from}", cols.join(", "));
    sql.push_str(&from.where_clause(range, Engine::Mysql));
    let table = dataset_name(from);
    let mut aside = Vec::new();
    stream_rows(
        conn,
        sql,
        columns.len(),
        &checked,
        table,
        long.as_ref().map(|l| (l, &mut aside)),
        &mut on_row,
    )
    .await?;
    match long {
        Some(l) if !aside.is_empty() => {
            let read = mysql_long::SetAside {
                table,
                from: &sql_from,
                select: &cols,
                columns,
                long: &l,
                checked: &checked,
            };
            read.rows(conn, aside, &mut on_row).await
        }
        _ => Ok(()),
    }
}

/// The select list of a read: each column in its read form, `qualifier` (empty, or
/// `` `db`.`t`. ``) before its name; then the conversion checks of the columns in a
/// non-UTF-8 character set, and the positions they check.
pub fn select_list(
    columns: &[ReadColumn<'_>],
    qualifier: &str,
) -> (Vec<String>, Vec<String>, Vec<usize>) {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = format!("{qualifier}{}", quote_ident(c.name));
            match c.read {
                Read::Text => q,
                Read::Bytes => format!("CAST({q} AS BINARY)"),
                Read::Double => format!("CAST({q} AS DOUBLE)"),
            }
        })
        .collect();
    let mut checks = Vec::new();
    let checked: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let cs = c.check_conversion_from?;
            // A charset name goes into SQL unquoted: only a plain name.
            cs.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                .then(|| {
                    let q = format!("{qualifier}{}", quote_ident(c.name));
                    checks.push(format!(
                        "CAST(CONVERT(CONVERT({q} USING utf8mb4) USING {cs}) AS BINARY) = CAST({q} AS BINARY)"
                    ));
                    i
                })
        })
        .collect();
    (cols, checks, checked)
}

/// Stream the rows of `sql`, whose first `n` columns are values and whose next ones are
/// the conversion checks of the values at `checked`, into `on_row` (values; positions
/// whose conversion was lossy), one row at a time.
pub async fn stream_sql<F>(
    conn: &mut Conn,
    sql: String,
    n: usize,
    checked: &[usize],
    table: &str,
    mut on_row: F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    stream_rows(conn, sql, n, checked, table, None, &mut on_row).await
}

/// [`stream_sql`]; with `long`, the columns after the checks are long-value flags, and
/// a flagged row is not given to `on_row` but its key set aside.
async fn stream_rows<F>(
    conn: &mut Conn,
    sql: String,
    n: usize,
    checked: &[usize],
    table: &str,
    mut long: Option<(&Long, &mut Vec<Vec<Vec<u8>>>)>,
    on_row: &mut F,
) -> Result<()>
where
    F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
{
    let mut result = conn
        .query_iter(sql)
        .await
        .map_err(error)
        .with_context(|| format!("reading table `{table}`"))?;
    let mut lossy = Vec::new();
    while let Some(row) = result
        .next()
        .await
        .map_err(error)
        .with_context(|| format!("reading table `{table}`"))?
    {
        let values: Vec<Option<&[u8]>> = (0..n)
            .map(|i| match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
                _ => None,
            })
            .collect();
        if let Some((l, aside)) = long.as_mut() {
            let flagged = (0..l.columns.len()).any(|k| {
                matches!(
                    row.as_ref(n + checked.len() + k),
                    Some(mysql_async::Value::Bytes(_))
                )
            });
            if flagged {
                aside.push(l.key_of(&values)?);
                continue;
            }
        }
        lossy.clear();
        for (k, &column) in checked.iter().enumerate() {
            if let Some(mysql_async::Value::Bytes(b)) = row.as_ref(n + k)
                && b.as_slice() == b"0"
            {
                lossy.push(column);
            }
        }
        on_row(&values, &lossy)?;
    }
    Ok(())
}

/// `db.table`, or `(query) AS q`.
pub(crate) fn from_clause(db: &str, from: ReadFrom<'_>) -> String {
    match from {
        ReadFrom::Table { name, .. } => qualified(db, name),
        ReadFrom::Query(q) => format!("({}) AS q", trim_statement(q)),
    }
}

/// The name used in messages: the table, or `query`.
pub(crate) fn dataset_name(from: ReadFrom<'_>) -> &str {
    match from {
        ReadFrom::Table { name, .. } => name,
        ReadFrom::Query(_) => "(query)",
    }
}

/// A statement without its trailing `;` and blanks, to be used as a subquery.
pub fn trim_statement(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// Exact `count(*)` of a table (with its filter), or of a query's rows.
pub async fn count_rows(conn: &mut Conn, db: &str, from: ReadFrom<'_>) -> Result<u64> {
    let mut sql = format!("SELECT COUNT(*) FROM {}", from_clause(db, from));
    if let ReadFrom::Table {
        filter: Some(f), ..
    } = from
    {
        sql.push_str(&format!(" WHERE ({f})"));
    }
    let n: Option<u64> = conn
        .query_first(sql)
        .await
        .map_err(error)
        .with_context(|| format!("counting rows of `{}` in MySQL", dataset_name(from)))?;
    Ok(n.unwrap_or(0))
}

/// How many rows of a dataset part (its filter and key range) make each of `exprs` true
/// (the mapping's `count` rules), in the reader's snapshot.
pub async fn count_matching(
    conn: &mut Conn,
    db: &str,
    from: ReadFrom<'_>,
    range: Option<&KeyRange>,
    exprs: &[&str],
) -> Result<Vec<u64>> {
    let sums: Vec<String> = exprs
        .iter()
        .map(|e| format!("CAST(COALESCE(SUM(CASE WHEN ({e}) THEN 1 ELSE 0 END), 0) AS UNSIGNED)"))
        .collect();
    let sql = format!(
        "SELECT {} FROM {}{}",
        sums.join(", "),
        from_clause(db, from),
        from.where_clause(range, Engine::Mysql)
    );
    let row: Option<mysql_async::Row> = conn
        .query_first(sql)
        .await
        .map_err(error)
        .with_context(|| format!("evaluating the `count` rules of `{}`", dataset_name(from)))?;
    let row = row.context("no row")?;
    Ok((0..exprs.len())
        .map(|i| row.get::<Option<u64>, _>(i).flatten().unwrap_or(0))
        .collect())
}

/// A mapping's `where` is checked before anything is read: the server prepares the
/// filtered select (a wrong column or a syntax error is named with the table).
pub async fn check_filter(conn: &mut Conn, db: &str, table: &str, filter: &str) -> Result<()> {
    conn.query_drop(format!(
        "SELECT 1 FROM {} WHERE ({filter}) LIMIT 0",
        qualified(db, table)
    ))
    .await
    .map_err(error)
    .with_context(|| format!("the mapping's `where` for table `{table}` ({filter})"))
}

/// The columns a mapping's `query` returns, with their types: the query is materialised
/// empty (`CREATE TEMPORARY TABLE ... AS SELECT ... LIMIT 0`) and described, so its
/// columns get the same encoding rules and facts as a table's. Run on a connection
/// outside the read-only snapshot (MariaDB refuses it inside one); needs the CREATE
/// TEMPORARY TABLES privilege.
pub async fn probe_query(conn: &mut Conn, dataset: &str, query: &str) -> Result<Vec<SourceColumn>> {
    let context = || format!("the mapping's `query` for `{dataset}`");
    let tmp = "pgconverge_query_probe";
    conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE {tmp} AS SELECT * FROM ({}) AS q LIMIT 0",
        trim_statement(query)
    ))
    .await
    .map_err(error)
    .with_context(context)?;
    let rows: Vec<mysql_async::Row> = conn
        .query(format!("SHOW FULL COLUMNS FROM {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    let mut out = Vec::new();
    for row in rows {
        let text = |name: &str| -> Option<String> {
            let i = row
                .columns_ref()
                .iter()
                .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
            match row.as_ref(i)? {
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            }
        };
        let name = text("Field").unwrap_or_default();
        let column_type = text("Type").unwrap_or_default().to_ascii_lowercase();
        let data_type = column_type
            .split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let charset = match text("Collation") {
            Some(collation) => conn
                .exec_first::<String, _, _>(
                    "SELECT CHARACTER_SET_NAME AS cs FROM information_schema.COLLATIONS \
                     WHERE COLLATION_NAME = ?",
                    (collation,),
                )
                .await
                .map_err(error)
                .with_context(context)?
                .map(|c| c.to_ascii_lowercase()),
            None => None,
        };
        out.push(SourceColumn {
            nullable: text("Null").is_some_and(|n| n.eq_ignore_ascii_case("YES")),
            name,
            data_type,
            column_type,
            generated: false,
            charset,
            labels: Vec::new(),
        });
    }
    conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {tmp}"))
        .await
        .map_err(error)
        .with_context(context)?;
    Ok(out)
}
