//! `verify`: proof that the target holds what the export holds. `counts` judges row
//! counts and orphan rows (pure); `run` reads them from the servers.

pub mod counts;
pub mod run;

pub use run::{Job, verify};
