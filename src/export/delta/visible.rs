//! PURE: which transactions a PostgreSQL snapshot sees (`pg_current_snapshot()`:
//! `xmin:xmax:xip,...`), for the 32-bit transaction ids logical decoding reports. A
//! delta's end snapshot must see every transaction whose changes it takes from the slot.

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

#[cfg(test)]
mod tests {
    use super::*;

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
