//! A delta chain's exports (MySQL/MariaDB): `changes` (what the log says changed, pure),
//! `checks` (what a chain can follow, pure) and `run` (the delta export itself: keys from
//! the log, values from a snapshot).

pub mod changes;
pub mod checks;
