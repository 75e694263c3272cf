//! `export`: the source, read from one snapshot, into CSV files and a manifest. `plan`
//! decides per table what is read and how (pure), `run` does the reading and writing,
//! `assemble` turns what was written into the manifest and the report (pure);
//! `delta` makes a delta chain's exports.

pub mod assemble;
pub mod delta;
pub mod plan;
pub mod run;

pub use run::{Exported, Job, export};
