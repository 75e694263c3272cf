//! `import`: an export loaded into an existing PostgreSQL schema, all or nothing. `files`
//! reads what the import needs of the export before any write (headers, the pre-pass);
//! `plan` and `checks` decide, purely, what will run and what is refused; `load` runs it (`copy` feeds each COPY;
//! `transaction` is what its caller knows of the transaction),
//! `guard` watches its transaction, `collisions` lists every row that breaks a
//! constraint when one stopped the load, `outcome` says what became of it; `delta` checks a
//! chain's place in the target before a delta is planned.

pub mod adapt;
pub mod builds;
pub mod checks;
pub mod clash;
pub mod collisions;
pub mod compute;
pub mod copy;
pub mod culprit;
pub mod delta;
pub mod files;
pub mod fixes;
pub mod guard;
pub mod history;
pub mod load;
pub mod loaded;
pub mod order;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod rebuild;
pub mod run;
pub mod transaction;

pub use run::{Job, Prepared, execute, prepare};
