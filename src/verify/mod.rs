//! `verify`: proof that the target holds what the export holds. `counts` judges row
//! counts and orphan rows (pure); `run` reads them from the servers. `--deep` compares
//! every value: `canon` puts each in one form (pure), `deep_plan` decides what is compared
//! and how (pure), `deep` buckets, narrows and names the differences (pure), `deep_run`
//! streams both sides (`deep_read` reads each; `files` the export's side), and `computed`
//! evaluates the mapping's IMMUTABLE `set` expressions again over the target's rows.

pub mod canon;
pub mod canon_json;
pub mod computed;
pub mod counts;
pub mod deep;
pub mod deep_plan;
mod deep_read;
mod deep_run;
pub mod files;
pub mod run;

pub use run::{Job, verify};
