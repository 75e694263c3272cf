//! PURE: which transactions a PostgreSQL snapshot sees (`pg_current_snapshot()`:
//! `xmin:xmax:xip,...`), for the 32-bit transaction ids logical decoding reports. A
//! delta's end snapshot, and how far the slot may move once the delta is sealed.

/// A snapshot's transaction bounds, as 64-bit (epoch-qualified) ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XidSnapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
}

impl XidSnapshot {
    /// `pg_current_snapshot()`'s text: `xmin:xmax:xip1,xip2`.
    pub fn parse(text: &str) -> Option<XidSnapshot> {
        let mut parts = text.trim().splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        (xmin <= xmax).then_some(XidSnapshot { xmin, xmax, xip })
    }

    /// Did this transaction (a 32-bit id, taken as the full id nearest `xmax`: the
    /// transactions a slot decodes are recent) commit before the snapshot was taken?
    /// Only asked of committed transactions.
    pub fn sees(&self, xid: u32) -> bool {
        const HALF: u64 = 1 << 31;
        let mut full = (self.xmax & !0xFFFF_FFFF) | u64::from(xid);
        if full > self.xmax.saturating_add(HALF) && full >= 1 << 32 {
            full -= 1 << 32;
        } else if full.saturating_add(HALF) < self.xmax {
            full += 1 << 32;
        }
        full < self.xmin || (full < self.xmax && !self.xip.contains(&full))
    }
}

/// How far a delta's slot may move: through the commits, in the order the slot streams
/// them, up to the first transaction the end snapshot did not see (that one and every
/// later one are read again by the next delta).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Horizon {
    /// The end of the last commit before the first unseen one.
    last_seen_commit: Option<u64>,
    /// Transactions the snapshot did not see.
    pub unseen: u64,
}

impl Horizon {
    /// A transaction's commit, ending at `end`, seen by the snapshot or not.
    pub fn commit(&mut self, end: u64, seen: bool) {
        if !seen {
            self.unseen += 1;
        } else if self.unseen == 0 {
            self.last_seen_commit = Some(end);
        }
    }

    /// Where the slot moves, given the position `upto` the changes were read to (every
    /// transaction committed before it is in the stream): `upto` when the snapshot saw
    /// them all; else the end of the last commit before the first unseen one; `None`
    /// when that is the first transaction (the slot stays).
    pub fn end(&self, upto: u64) -> Option<u64> {
        if self.unseen == 0 {
            Some(upto)
        } else {
            self.last_seen_commit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_moves_up_to_the_first_transaction_the_snapshot_did_not_see() {
        for (commits, end) in [
            (vec![], Some(500)),
            (vec![(10, true), (20, true)], Some(500)),
            (vec![(10, true), (20, false), (30, true)], Some(10)),
            (vec![(10, false), (20, true)], None),
            (vec![(10, true), (20, true), (30, false)], Some(20)),
        ] {
            let mut h = Horizon::default();
            for (lsn, seen) in &commits {
                h.commit(*lsn, *seen);
            }
            assert_eq!(h.end(500), end, "{commits:?}");
        }
    }

    #[test]
    fn a_snapshot_sees_what_committed_before_it() {
        let s = XidSnapshot::parse("100:105:100,103").unwrap();
        for (xid, seen) in [
            (99, true),
            (100, false),
            (101, true),
            (103, false),
            (104, true),
            (105, false),
            (200, false),
        ] {
            assert_eq!(s.sees(xid), seen, "{xid}");
        }
        assert_eq!(
            XidSnapshot::parse("738:738:").unwrap().xip,
            Vec::<u64>::new()
        );
        // Across an epoch: xmax 2^32 + 5, so 32-bit id 4294967290 is of the epoch before.
        let wrap = XidSnapshot::parse("4294967280:4294967301:").unwrap();
        assert!(wrap.sees(4294967290));
        assert!(wrap.sees(3));
        assert!(!wrap.sees(6));
        for bad in ["", "1:2", "3:2:", "a:b:", "1:2:x"] {
            assert_eq!(XidSnapshot::parse(bad), None, "{bad}");
        }
    }
}
