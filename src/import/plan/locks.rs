//! PURE: how many objects the import's one transaction keeps locked until COMMIT, set
//! against the room the server guarantees for them. PostgreSQL's shared lock table holds
//! `max_locks_per_transaction × (max_connections + max_prepared_transactions)` objects
//! (plus whatever shared memory is left over); a load past it fails with "out of shared
//! memory" and rolls back, after everything before it was loaded. Said before any write.

use crate::db::catalog::{Catalog, LockRoom};

use super::IndexChoice;

/// The objects one emptied and loaded table keeps locked: itself, its TOAST table and
/// TOAST index, each index (a partitioned table: each partition with its own TOAST pair
/// and indexes, which `indexes` already lists), and each index dropped and built again
/// once more (the old one stays locked until COMMIT).
pub fn estimate(targets: &[String], cat: &Catalog, choices: &[IndexChoice]) -> u64 {
    let mut n = 0;
    for t in targets.iter().filter_map(|t| cat.tables.get(t)) {
        let rebuilt = choices
            .iter()
            .find(|c| c.table == t.name)
            .map_or(0, |c| c.rebuilt.len());
        n += 1
            + 2 * u64::from(t.toast)
            + 3 * t.partitions.len() as u64
            + t.indexes.len() as u64
            + rebuilt as u64;
    }
    n + cat.sequences.len() as u64
}

/// The warning when `locks` exceed the room the server guarantees, with the setting
/// that makes room (None: it fits).
pub fn warning(locks: u64, room: &LockRoom) -> Option<String> {
    let slots = room.connections + room.prepared;
    if slots == 0 || locks <= room.per_transaction * slots {
        return None;
    }
    let needed = locks.div_ceil(slots);
    Some(format!(
        "the import keeps about {locks} objects (tables, indexes, TOAST tables) locked in \
         its one transaction, and the server guarantees room for {} (max_locks_per_transaction \
         {} × (max_connections {} + max_prepared_transactions {})); past what its spare shared \
         memory holds, PostgreSQL stops the load with \"out of shared memory\" and it rolls back \
         (hint: set max_locks_per_transaction = {} or more and restart the server, or export \
         and import fewer tables at a time (export --tables); --rebuild-indexes never locks \
         fewer)",
        room.per_transaction * slots,
        room.per_transaction,
        room.connections,
        room.prepared,
        needed.next_multiple_of(64),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{PgIndex, PgTable};

    fn table(name: &str, toast: bool, indexes: usize, partitions: usize) -> PgTable {
        PgTable {
            name: name.into(),
            toast,
            indexes: (0..indexes)
                .map(|i| PgIndex {
                    name: format!("{name}_{i}"),
                    ..PgIndex::default()
                })
                .collect(),
            partitions: (0..partitions).map(|p| format!("{name}_p{p}")).collect(),
            ..PgTable::default()
        }
    }

    /// Counted as measured on PostgreSQL 15 (an `after` hook counting the distinct
    /// relations in pg_locks): a table with TOAST and two indexes holds 5, 7 when both
    /// indexes are rebuilt.
    #[test]
    fn locks_are_counted_per_table_as_the_server_holds_them() {
        let mut cat = Catalog::default();
        for t in [
            table("a", true, 2, 0),
            table("b", false, 1, 0),
            table("p", true, 4, 2),
        ] {
            cat.tables.insert(t.name.clone(), t);
        }
        let targets: Vec<String> = ["a", "b", "p", "missing"].map(String::from).to_vec();
        let rebuild = |t: &str, n: usize| IndexChoice {
            table: t.into(),
            rows: None,
            choice: "rebuild",
            reason: String::new(),
            rebuilt: (0..n).map(|i| i.to_string()).collect(),
            kept: Vec::new(),
            foreign_keys: Vec::new(),
            drops: Vec::new(),
            builds: Vec::new(),
        };
        assert_eq!(estimate(&targets[..1], &cat, &[]), 5);
        assert_eq!(estimate(&targets[..1], &cat, &[rebuild("a", 2)]), 7);
        // b: 1 + 1 index; p: 1 + TOAST 2 + partitions 3 × 2 + 4 indexes.
        assert_eq!(estimate(&targets, &cat, &[]), 5 + 2 + 13);
    }

    #[test]
    fn a_load_past_the_guaranteed_room_is_said_with_the_setting_that_fits() {
        let room = LockRoom {
            per_transaction: 64,
            connections: 100,
            prepared: 0,
        };
        assert_eq!(warning(6400, &room), None);
        let w = warning(14_002, &room).unwrap();
        assert!(w.contains("about 14002 objects"), "{w}");
        assert!(w.contains("room for 6400 (max_locks_per_transaction 64 × (max_connections 100 + max_prepared_transactions 0))"), "{w}");
        assert!(w.contains("max_locks_per_transaction = 192 or more"), "{w}");
        assert_eq!(warning(10, &LockRoom::default()), None);
    }
}
