//! pgconverge as a library: the binary (`main.rs`) is a thin shell over `cmd::run`, and
//! the integration tests read exports with the same CSV reader and manifest types.
//!
//! Layers, from the top: `cmd` (one module per subcommand) over the domain modules
//! `export`, `import`, `verify` and `mapping`, which use the pure `codec` and the I/O of
//! `store` (files) and `db` (servers). See ARCHITECTURE.md.

pub mod cli;
pub mod cmd;
pub mod codec;
pub mod config;
pub mod db;
pub mod escape;
pub mod export;
pub mod hint;
pub mod import;
pub mod mapping;
pub mod memory;
pub mod out;
pub mod progress;
pub mod redact;
pub mod report;
pub mod store;
pub mod verify;
