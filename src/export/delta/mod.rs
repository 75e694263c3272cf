//! A delta chain's exports (MySQL/MariaDB): `base` (the export that starts a chain),
//! `changes` (what the log says changed, pure),
//! `checks` (what a chain can follow, pure) and `run` (the delta export itself: keys from
//! the log, values from a snapshot) and `write` (its files, table by table).

pub mod base;
pub mod changes;
pub mod checks;
pub mod run;
pub mod write;
