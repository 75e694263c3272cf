//! What a MySQL/MariaDB server says about its binary log, over an ordinary connection:
//! the settings a delta chain needs (and the fix for each one missing), the user's
//! replication privileges, the log's files, the position of a consistent snapshot, and
//! MariaDB's GTID at a position. The log itself is read by `db::binlog`.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::db::mysql::error;
use crate::db::position::ServerIdentity;

/// The binary-log settings and privileges a delta chain depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub mariadb: bool,
    pub log_bin: bool,
    pub format: String,
    pub row_image: String,
    /// MariaDB's `log_bin_compress`.
    pub compress: bool,
    /// MySQL's `binlog_row_value_options` (`PARTIAL_JSON` logs JSON diffs).
    pub row_value_options: String,
    pub server_id: u32,
    pub server_uuid: Option<String>,
    pub replication_slave: bool,
    pub replication_client: bool,
}

impl LogSettings {
    /// Every missing prerequisite as (what is wrong, the setting that fixes it).
    pub fn missing(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |ok: bool, what: String, fix: &str| {
            if !ok {
                out.push((what, fix.to_string()));
            }
        };
        need(
            self.log_bin,
            "the binary log is off (log_bin=OFF)".into(),
            "start the server with --log-bin (log_bin=ON) and --server-id",
        );
        need(
            self.format.eq_ignore_ascii_case("ROW"),
            format!("binlog_format is {}", self.format),
            "binlog_format=ROW (SET GLOBAL binlog_format='ROW', and in the server's configuration)",
        );
        need(
            self.row_image.eq_ignore_ascii_case("FULL"),
            format!("binlog_row_image is {}", self.row_image),
            "binlog_row_image=FULL",
        );
        need(
            !self.compress,
            "the binary log is compressed (log_bin_compress=ON)".into(),
            "log_bin_compress=OFF",
        );
        need(
            !self
                .row_value_options
                .to_ascii_uppercase()
                .contains("PARTIAL_JSON"),
            format!("binlog_row_value_options is {}", self.row_value_options),
            "binlog_row_value_options='' (no partial JSON updates)",
        );
        need(
            self.replication_slave,
            "the user lacks REPLICATION SLAVE (reading the log)".into(),
            "GRANT REPLICATION SLAVE ON *.* TO <user>",
        );
        need(
            self.replication_client,
            "the user lacks REPLICATION CLIENT (listing the log's files)".into(),
            if self.mariadb {
                "GRANT BINLOG MONITOR ON *.* TO <user> (REPLICATION CLIENT)"
            } else {
                "GRANT REPLICATION CLIENT ON *.* TO <user>"
            },
        );
        out
    }

    /// The server's identity, without the file creation time (read with the log).
    pub fn identity(&self) -> ServerIdentity {
        ServerIdentity {
            server_id: self.server_id,
            server_uuid: self.server_uuid.clone(),
            file_created: 0,
            system_identifier: None,
        }
    }
}

/// A global variable's value as text; None when the server has no such variable.
async fn variable(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    match conn
        .query_first::<Option<String>, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
    {
        Ok(v) => Ok(v.flatten()),
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => Ok(None),
        Err(e) => Err(error(e)).with_context(|| format!("reading @@{name}")),
    }
}

/// The log's settings and the connected user's replication privileges.
pub async fn settings(conn: &mut Conn) -> Result<LogSettings> {
    let version: String = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(error)
        .context("reading the server version")?
        .unwrap_or_default();
    let on = |v: Option<String>| v.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
    let grants: Vec<String> = conn
        .query("SHOW GRANTS")
        .await
        .map_err(error)
        .context("reading the user's privileges (SHOW GRANTS)")?;
    let (replication_slave, replication_client) = replication_grants(&grants);
    Ok(LogSettings {
        mariadb: version.to_ascii_lowercase().contains("mariadb"),
        log_bin: on(variable(conn, "log_bin").await?),
        format: variable(conn, "binlog_format").await?.unwrap_or_default(),
        row_image: variable(conn, "binlog_row_image")
            .await?
            .unwrap_or_else(|| "FULL".into()),
        compress: on(variable(conn, "log_bin_compress").await?),
        row_value_options: variable(conn, "binlog_row_value_options")
            .await?
            .unwrap_or_default(),
        server_id: variable(conn, "server_id")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        server_uuid: variable(conn, "server_uuid").await?,
        replication_slave,
        replication_client,
    })
}

/// REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR) on `*.*`, from
/// SHOW GRANTS' lines.
pub fn replication_grants(grants: &[String]) -> (bool, bool) {
    let (mut slave, mut client) = (false, false);
    for g in grants {
        let upper = g.to_ascii_uppercase();
        let Some((privs, rest)) = upper.split_once(" ON ") else {
            continue;
        };
        if !rest.trim_start().starts_with("*.*") {
            continue;
        }
        let all = privs.contains("ALL PRIVILEGES");
        slave |= all || privs.contains("REPLICATION SLAVE");
        client |= all || privs.contains("REPLICATION CLIENT") || privs.contains("BINLOG MONITOR");
    }
    (slave, client)
}

/// The log's files, oldest first, with their sizes (SHOW BINARY LOGS).
pub async fn binary_logs(conn: &mut Conn) -> Result<Vec<(String, u64)>> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(error)
        .context("listing the binary log's files (SHOW BINARY LOGS)")?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let name: String = r.get(0)?;
            let size: u64 = r.get(1).unwrap_or(0);
            Some((name, size))
        })
        .collect())
}

/// MariaDB: the log position of this session's consistent snapshot
/// (`binlog_snapshot_file` / `binlog_snapshot_position`, exact for the snapshot whatever
/// else commits). None on MySQL, which has no such status.
pub async fn snapshot_position(conn: &mut Conn) -> Result<Option<(String, u64)>> {
    let rows: Vec<(String, String)> = conn
        .query("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(error)
        .context("reading the snapshot's binary log position")?;
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
        (Some(f), Some(p)) if !f.is_empty() => Ok(p.parse().ok().map(|p| (f, p))),
        _ => Ok(None),
    }
}

/// The log's current end (MySQL 8.4: SHOW BINARY LOG STATUS; before: SHOW MASTER STATUS).
pub async fn current_position(conn: &mut Conn) -> Result<(String, u64)> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW BINARY LOG STATUS").await {
        Ok(r) => r,
        Err(mysql_async::Error::Server(e)) if e.code == 1064 => conn
            .query_first("SHOW MASTER STATUS")
            .await
            .map_err(error)
            .context("reading the binary log position (SHOW MASTER STATUS)")?,
        Err(e) => return Err(error(e)).context("reading the binary log position"),
    };
    let row = row.context("the server reports no binary log position (is log_bin on?)")?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or(0);
    Ok((file, pos))
}

/// MariaDB's GTID position at a log position (`BINLOG_GTID_POS`); None on MySQL or when
/// the file is gone.
pub async fn gtid_at(
    conn: &mut Conn,
    mariadb: bool,
    file: &str,
    pos: u64,
) -> Result<Option<String>> {
    if !mariadb {
        return Ok(None);
    }
    let v: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
        .await
        .map_err(error)
        .context("reading the GTID at a binary log position")?;
    Ok(v.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_privileges_from_grants() {
        let g = |lines: &[&str]| {
            replication_grants(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            g(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]),
            (true, true)
        );
        assert_eq!(
            g(&["GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%`"]),
            (true, true)
        );
        assert_eq!(
            g(&[
                "GRANT USAGE ON *.* TO `u`@`%`",
                "GRANT ALL PRIVILEGES ON `app`.* TO `u`@`%`"
            ]),
            (false, false),
            "privileges on one database are not replication privileges"
        );
        let s = LogSettings {
            mariadb: true,
            log_bin: false,
            format: "MIXED".into(),
            row_image: "MINIMAL".into(),
            compress: true,
            row_value_options: String::new(),
            server_id: 1,
            server_uuid: None,
            replication_slave: false,
            replication_client: true,
        };
        let missing: Vec<String> = s.missing().into_iter().map(|(w, _)| w).collect();
        assert_eq!(missing.len(), 5, "{missing:?}");
        assert!(missing.iter().any(|m| m.contains("MINIMAL")));
    }
}
