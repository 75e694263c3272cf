//! A PostgreSQL source's logical decoding, through its SQL functions (no replication
//! protocol): the prerequisites, pgconverge's replication slots (create, read, peek,
//! advance, drop, list) and the flush position a delta ends at.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio_postgres::Client;

use crate::db::position::parse_lsn;
use crate::db::postgres::error;
use crate::db::sql::pg::literal;
use crate::hint::with_hint;

/// Every slot pgconverge creates starts with this.
pub const SLOT_PREFIX: &str = "pgconverge_";
/// How long creating a slot may wait for the transactions running when it started, by
/// default (`PGCONVERGE_SLOT_WAIT`, seconds, changes it).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait for this run: `PGCONVERGE_SLOT_WAIT` seconds, else `CREATE_TIMEOUT`.
pub fn create_timeout() -> Duration {
    std::env::var("PGCONVERGE_SLOT_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(CREATE_TIMEOUT)
}

/// What logical decoding needs of the source.
#[derive(Debug, Clone)]
pub struct LogicalSettings {
    pub wal_level: String,
    pub in_recovery: bool,
    pub may_replicate: bool,
    pub max_slots: i64,
    pub used_slots: i64,
}

impl LogicalSettings {
    /// What is missing, each with its fix.
    pub fn missing(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.wal_level != "logical" {
            out.push((
                format!("wal_level is {}", self.wal_level),
                "set wal_level = logical (postgresql.conf or ALTER SYSTEM) and restart the server"
                    .into(),
            ));
        }
        if self.in_recovery {
            out.push((
                "the server is a standby".into(),
                "read the chain from the primary (a standby of PostgreSQL 15 cannot decode)".into(),
            ));
        }
        if !self.may_replicate {
            out.push((
                "the role has neither REPLICATION nor superuser".into(),
                "ALTER ROLE <user> REPLICATION".into(),
            ));
        }
        if self.used_slots >= self.max_slots {
            out.push((
                format!(
                    "all {} replication slots are in use (max_replication_slots)",
                    self.max_slots
                ),
                "raise max_replication_slots and restart, or drop a slot no one reads".into(),
            ));
        }
        out
    }
}

pub async fn settings(client: &Client) -> Result<LogicalSettings> {
    let r = client
        .query_one(
            "SELECT current_setting('wal_level'), pg_is_in_recovery(),
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
                    current_setting('max_replication_slots')::int8,
                    (SELECT count(*) FROM pg_replication_slots)",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the source's logical decoding settings")?;
    Ok(LogicalSettings {
        wal_level: r.get(0),
        in_recovery: r.get(1),
        may_replicate: r.get::<_, Option<bool>>(2).unwrap_or(false),
        max_slots: r.get(3),
        used_slots: r.get(4),
    })
}

/// A slot's name for a chain of `profile` started at `timestamp` (`20261205_142740`):
/// lowercase letters, digits and `_`, at most 63 bytes, ending in the time stamp.
pub fn slot_name(profile: &str, timestamp: &str) -> String {
    let clean: String = profile
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    let room = 63 - SLOT_PREFIX.len() - 1 - timestamp.len();
    let clean: String = clean.chars().take(room).collect();
    format!("{SLOT_PREFIX}{clean}_{timestamp}")
}

/// When a slot named by `slot_name` was created (UTC), from its name.
pub fn slot_created(name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let stamp = name.get(name.len().checked_sub(15)?..)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Create the chain's slot on this (otherwise idle) session; its consistent point. Waits
/// at most `create_timeout()` (the session's statement_timeout) for the transactions
/// running now, then names them (read on `observer`).
pub async fn create_slot(client: &Client, observer: &Client, name: &str) -> Result<u64> {
    let wait = create_timeout();
    client
        .batch_execute(&format!("SET statement_timeout = '{}s'", wait.as_secs()))
        .await
        .map_err(error)?;
    let sql = format!(
        "SELECT lsn::text FROM pg_create_logical_replication_slot({}, 'test_decoding')",
        literal(name)
    );
    let made = client.query_one(&sql, &[]).await;
    let _ = client.batch_execute("RESET statement_timeout").await;
    let row = match made {
        Ok(r) => r,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
            let blocking = blockers(observer).await.unwrap_or_default();
            return Err(with_hint(
                anyhow!(
                    "creating the logical replication slot `{name}` waited {} s for the \
                     transactions running on the source; still open:\n{}",
                    wait.as_secs(),
                    if blocking.is_empty() {
                        "  (none visible to this role)".to_string()
                    } else {
                        blocking.join("\n")
                    }
                ),
                "a slot starts only once every transaction open when it was asked for has \
                 ended: end or cancel those sessions (pg_cancel_backend(pid)), then export again",
            ));
        }
        Err(e) => {
            return Err(error(e)).with_context(|| {
                format!("creating the logical replication slot `{name}` on the source")
            });
        }
    };
    let text: String = row.get(0);
    parse_lsn(&text).ok_or_else(|| anyhow!("the slot's consistent point `{text}` is not an LSN"))
}

/// The sessions with an open transaction that holds a transaction id or a snapshot.
async fn blockers(client: &Client) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''), \
                    coalesce(state, ''), coalesce(xact_start::text, '') \
             FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL \
               AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) \
               AND query NOT LIKE '%pg_create_logical_replication_slot%' \
             ORDER BY xact_start",
            &[],
        )
        .await
        .map_err(error)?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "  - pid {} (user {}, application {}, {}) in a transaction since {}",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                crate::escape::quoted(&r.get::<_, String>(2)),
                r.get::<_, String>(3),
                r.get::<_, String>(4)
            )
        })
        .collect())
}

/// A slot as the server describes it.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub database: String,
    pub plugin: String,
    pub active: bool,
    /// The session reading it, when one is.
    pub active_pid: Option<i32>,
    pub confirmed_flush: Option<u64>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: String,
    /// WAL the slot keeps from being removed, in bytes.
    pub retained_bytes: i64,
}

const SLOTS: &str = "SELECT slot_name::text, coalesce(database::text, ''), coalesce(plugin::text, ''), \
    active, confirmed_flush_lsn::text, coalesce(wal_status, ''), \
    coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
        ELSE pg_current_wal_lsn() END, restart_lsn), 0)::int8, active_pid \
    FROM pg_replication_slots";

fn slot_of(r: &tokio_postgres::Row) -> Slot {
    Slot {
        name: r.get(0),
        database: r.get(1),
        plugin: r.get(2),
        active: r.get(3),
        confirmed_flush: r.get::<_, Option<String>>(4).and_then(|t| parse_lsn(&t)),
        wal_status: r.get(5),
        retained_bytes: r.get(6),
        active_pid: r.get(7),
    }
}

pub async fn slot(client: &Client, name: &str) -> Result<Option<Slot>> {
    let rows = client
        .query(&format!("{SLOTS} WHERE slot_name = $1"), &[&name])
        .await
        .map_err(error)
        .context("reading the source's replication slots")?;
    Ok(rows.first().map(slot_of))
}

/// pgconverge's slots on the source (every database).
pub async fn slots(client: &Client) -> Result<Vec<Slot>> {
    let rows = client
        .query(
            &format!("{SLOTS} WHERE slot_name LIKE 'pgconverge\\_%' ORDER BY slot_name"),
            &[],
        )
        .await
        .map_err(error)
        .context("reading the source's replication slots")?;
    Ok(rows.iter().map(slot_of).collect())
}

/// Where the WAL is flushed to now: every change committed before it can be decoded.
pub async fn flush_lsn(client: &Client) -> Result<u64> {
    let text: String = client
        .query_one("SELECT pg_current_wal_flush_lsn()::text", &[])
        .await
        .map_err(error)
        .context("reading the source's WAL position")?
        .get(0);
    parse_lsn(&text).ok_or_else(|| anyhow!("`{text}` is not an LSN"))
}

/// Where the next WAL record will be written: every transaction that committed before
/// this was read wrote its commit record before it.
pub async fn insert_lsn(client: &Client) -> Result<u64> {
    let text: String = client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(error)
        .context("reading the source's WAL insert position")?
        .get(0);
    parse_lsn(&text).ok_or_else(|| anyhow!("`{text}` is not an LSN"))
}

/// Wait until the WAL is flushed to `lsn` (logical decoding reads only flushed WAL): at
/// once with synchronous commits, within `wal_writer_delay` otherwise.
pub async fn wait_flushed(client: &Client, lsn: u64) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let flushed = flush_lsn(client).await?;
        if flushed >= lsn {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the source's WAL was not flushed to {} within 30 s (flushed to {})",
                crate::db::position::lsn_text(lsn),
                crate::db::position::lsn_text(flushed)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every change the slot holds up to `upto` (transactions committed before it), without
/// consuming them, streamed: `on_change(lsn, xid, line)` per line (a `COMMIT` line's LSN
/// is the end of its commit record).
pub async fn peek<F>(client: &Client, slot: &str, upto: u64, mut on_change: F) -> Result<u64>
where
    F: FnMut(u64, u32, &str) -> Result<()>,
{
    use futures_util::StreamExt;
    let sql = format!(
        "SELECT lsn::text, xid::text::int8, data FROM pg_logical_slot_peek_changes({}, \
         {}::pg_lsn, NULL, 'skip-empty-xacts', '1')",
        literal(slot),
        literal(&crate::db::position::lsn_text(upto))
    );
    let what = || format!("reading the changes of slot `{slot}`");
    let stream = client
        .query_raw(&sql, std::iter::empty::<&str>())
        .await
        .map_err(error)
        .with_context(what)?;
    futures_util::pin_mut!(stream);
    let mut n = 0;
    while let Some(row) = stream.next().await {
        let row = row.map_err(error).with_context(what)?;
        let lsn: &str = row.get(0);
        let lsn = parse_lsn(lsn).ok_or_else(|| anyhow!("`{lsn}` is not an LSN"))?;
        let xid: i64 = row.get(1);
        let data: &str = row.get(2);
        on_change(lsn, xid as u32, data)?;
        n += 1;
    }
    Ok(n)
}

/// Move the slot to `to`: the server may remove the WAL before it.
pub async fn advance(client: &Client, slot: &str, to: u64) -> Result<()> {
    client
        .query_one(
            &format!(
                "SELECT pg_replication_slot_advance({}, {}::pg_lsn)::text",
                literal(slot),
                literal(&crate::db::position::lsn_text(to))
            ),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("moving slot `{slot}` forward"))?;
    Ok(())
}

/// Take the session lock that makes one delta at a time read and move a chain's slot
/// (an advisory lock on the slot's name, released when the session ends, so also when
/// pgconverge is killed): false when another session holds it.
pub async fn lock_chain(client: &Client, slot: &str) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&slot],
        )
        .await
        .map_err(error)
        .with_context(|| format!("locking the chain of slot `{slot}`"))?
        .get(0))
}

/// The session holding [`lock_chain`]'s lock, if any.
pub async fn chain_locked_by(client: &Client, slot: &str) -> Result<Option<i32>> {
    Ok(client
        .query_opt(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
               AND ((classid::int8 << 32) | objid::int8) = hashtextextended($1, 0) LIMIT 1",
            &[&slot],
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading who locks the chain of slot `{slot}`"))?
        .map(|r| r.get(0)))
}

/// Drop a slot; false when there was none.
pub async fn drop_slot(client: &Client, name: &str) -> Result<bool> {
    if slot(client, name).await?.is_none() {
        return Ok(false);
    }
    client
        .execute(
            &format!("SELECT pg_drop_replication_slot({})", literal(name)),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("dropping replication slot `{name}`"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid_and_carry_their_time() {
        let n = slot_name("Alkemio-App", "20261205_142740");
        assert_eq!(n, "pgconverge_alkemio_app_20261205_142740");
        let long = slot_name(&"x".repeat(100), "20261205_142740");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("_20261205_142740"));
        assert_eq!(
            slot_created(&n).unwrap().to_rfc3339(),
            "2026-12-05T14:27:40+00:00"
        );
        assert_eq!(slot_created("pgconverge_other"), None);
    }

    #[test]
    fn missing_settings_are_each_named() {
        let ok = LogicalSettings {
            wal_level: "logical".into(),
            in_recovery: false,
            may_replicate: true,
            max_slots: 10,
            used_slots: 1,
        };
        assert!(ok.missing().is_empty());
        let bad = LogicalSettings {
            wal_level: "replica".into(),
            in_recovery: true,
            may_replicate: false,
            used_slots: 10,
            ..ok
        };
        let m = bad.missing();
        assert_eq!(m.len(), 4);
        assert!(m[0].0.contains("wal_level is replica"));
    }
}
