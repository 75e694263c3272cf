//! Everything pgconverge keeps on disk, each in one place: the export directory's paths
//! (`export_dir`), a table's CSV file (`csvfile`), the manifest (a delta chain's part of
//! it in `chain`), publishing an export
//! atomically (`publish`), the import journal and the append-only run log.

pub mod behind;
pub mod chain;
pub mod csvfile;
pub mod direct;
pub mod export_dir;
pub mod file;
pub mod journal;
pub mod manifest;
pub mod open;
pub mod publish;
pub mod runlog;
