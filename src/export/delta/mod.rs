//! A delta chain's exports: `base` (the export that starts a chain),
//! `changes` (what the log says changed, pure),
//! `checks` (what a chain can follow, pure) and `run` (the delta export itself: keys from
//! the log, values from a snapshot) and `write` (its files, table by table), for
//! MySQL/MariaDB; `pg` and `pgwrite` the same for a PostgreSQL source (logical
//! decoding), with `visible` (which transactions its end snapshot sees, pure).

pub mod base;
pub mod changes;
pub mod checks;
pub mod pg;
pub mod pgwrite;
pub mod run;
pub mod visible;
pub mod write;
