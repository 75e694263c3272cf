//! PURE: where a source's log stands (MySQL/MariaDB: binary log file, position, and
//! MariaDB's GTID for people; PostgreSQL: the logical replication slot and its LSN), and
//! whose log it is (the server's identity). Recorded by a delta chain's
//! exports (manifest format 4) and by the target's `pgconverge.state`; compared before a
//! delta reads anything.

use serde::{Deserialize, Serialize};

/// A point in the source's binary log, with the identity of the server that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogPosition {
    /// `mysql` or `postgresql`.
    pub engine: String,
    /// The binary log file (MySQL/MariaDB); empty for PostgreSQL.
    pub file: String,
    /// The offset in `file`; for PostgreSQL the LSN as a number.
    pub position: u64,
    /// PostgreSQL: the logical replication slot the chain reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// PostgreSQL: the LSN as PostgreSQL writes it (`0/16B3748`), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<String>,
    /// MariaDB: `BINLOG_GTID_POS(file, position)`; MySQL: `@@gtid_executed` when GTIDs
    /// are on. For people and logs: the file and position are what is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    pub server: ServerIdentity,
}

/// Whose log a position belongs to. A file name and offset are only meaningful on the
/// server that wrote them: after a failover or a restore they point at other events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerIdentity {
    pub server_id: u32,
    /// MySQL's `@@server_uuid` (MariaDB has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_uuid: Option<String>,
    /// The time stamp (seconds since 1970) of the position's binlog file's
    /// Format_description event: when that file was created (0 for PostgreSQL).
    pub file_created: u32,
    /// PostgreSQL: the cluster's `system_identifier` (pg_control_system()).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
}

impl LogPosition {
    /// `bin.000003:1234 (GTID 0-1-55)`; `slot pgconverge_app_x at 0/16B3748`.
    pub fn describe(&self) -> String {
        if let Some(slot) = &self.slot {
            return format!(
                "slot {slot} at {}",
                self.lsn.clone().unwrap_or_else(|| lsn_text(self.position))
            );
        }
        match &self.gtid {
            Some(g) if !g.is_empty() => format!("{}:{} (GTID {g})", self.file, self.position),
            _ => format!("{}:{}", self.file, self.position),
        }
    }

    /// Is `other` at or past this position in the same log? Binlog file names end in a
    /// sequence number of fixed width, so they order as text.
    pub fn not_after(&self, other: &LogPosition) -> bool {
        (self.file.as_str(), self.position) <= (other.file.as_str(), other.position)
    }
}

/// An LSN as PostgreSQL writes it: `0/16B3748`.
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// An LSN from PostgreSQL's text form.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= 0xFFFF_FFFF && lo <= 0xFFFF_FFFF).then_some((hi << 32) | lo)
}

impl ServerIdentity {
    /// Why `live` is not the server this identity was recorded from, if it is not. The
    /// file's creation time is compared apart, once the log is read (`file_created` of
    /// `live` is 0 here when not known yet).
    pub fn differs(&self, live: &ServerIdentity) -> Option<String> {
        if let (Some(a), Some(b)) = (&self.system_identifier, &live.system_identifier)
            && a != b
        {
            return Some(format!("system_identifier {b}, the chain's is {a}"));
        }
        if let (Some(a), Some(b)) = (&self.server_uuid, &live.server_uuid)
            && a != b
        {
            return Some(format!("server_uuid {b}, the chain's is {a}"));
        }
        if self.server_uuid.is_some() != live.server_uuid.is_some() {
            return Some("a server of another kind (MySQL vs MariaDB)".into());
        }
        if self.server_id != live.server_id {
            return Some(format!(
                "server_id {}, the chain's is {}",
                live.server_id, self.server_id
            ));
        }
        if live.file_created != 0 && live.file_created != self.file_created {
            return Some(format!(
                "its binlog file was created at {} (Unix time), the chain's at {}",
                live.file_created, self.file_created
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, position: u64) -> LogPosition {
        LogPosition {
            engine: "mysql".into(),
            file: file.into(),
            position,
            gtid: Some("0-1-5".into()),
            server: ServerIdentity {
                server_id: 1,
                server_uuid: None,
                file_created: 100,
                system_identifier: None,
            },
            ..Default::default()
        }
    }

    #[test]
    fn positions_order_and_identities_compare() {
        assert!(at("bin.000001", 900).not_after(&at("bin.000002", 4)));
        assert!(!at("bin.000002", 5).not_after(&at("bin.000002", 4)));
        assert_eq!(at("bin.000001", 4).describe(), "bin.000001:4 (GTID 0-1-5)");
        let id = at("b", 4).server;
        assert_eq!(id.differs(&id), None);
        let other = ServerIdentity {
            server_id: 2,
            ..id.clone()
        };
        assert!(id.differs(&other).unwrap().contains("server_id 2"));
        let recreated = ServerIdentity {
            file_created: 200,
            ..id.clone()
        };
        assert!(id.differs(&recreated).unwrap().contains("created"));
        let unknown_yet = ServerIdentity {
            file_created: 0,
            ..id.clone()
        };
        assert_eq!(id.differs(&unknown_yet), None);
        let mysql = ServerIdentity {
            server_uuid: Some("u".into()),
            ..id.clone()
        };
        assert!(id.differs(&mysql).is_some());
        let pg = |sys: &str| ServerIdentity {
            system_identifier: Some(sys.into()),
            ..Default::default()
        };
        assert_eq!(pg("7").differs(&pg("7")), None);
        assert!(
            pg("7")
                .differs(&pg("8"))
                .unwrap()
                .contains("system_identifier 8")
        );
    }

    #[test]
    fn lsns_read_and_write_as_postgresql_does() {
        for (text, n) in [
            ("0/0", 0u64),
            ("0/16B3748", 0x16B3748),
            ("1/0", 1 << 32),
            ("FFFFFFFF/FFFFFFFF", u64::MAX),
        ] {
            assert_eq!(parse_lsn(text), Some(n), "{text}");
            assert_eq!(lsn_text(n), text);
        }
        for bad in ["", "16B3748", "0/x", "100000000/0", "0/100000000"] {
            assert_eq!(parse_lsn(bad), None, "{bad}");
        }
        let p = LogPosition {
            engine: "postgresql".into(),
            position: 0x16B3748,
            slot: Some("pgconverge_app_1".into()),
            lsn: Some("0/16B3748".into()),
            ..Default::default()
        };
        assert_eq!(p.describe(), "slot pgconverge_app_1 at 0/16B3748");
    }
}
