//! Reading connections on one consistent snapshot: each session's settings, the
//! snapshot started on every reader (under LOCK TABLES when there are several), and the
//! binary log position it is consistent with.

use anyhow::{Context, Result, anyhow};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::config::ServerConfig;
use crate::db::binlog_status;
use crate::db::catalog::Snapshot;
use crate::db::sql::my::qualified;
use crate::hint::with_hint;

use super::{connect, error, server_version};

/// The snapshot every reader works in; the manifest records these same values.
const ISOLATION: &str = "REPEATABLE READ, consistent snapshot, read only";
const TIME_ZONE: &str = "+00:00";
const CHARSET: &str = "utf8mb4";

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
