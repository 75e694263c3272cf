//! pgconverge as a library: the binary (`main.rs`) is a thin shell over `cmd::run`, and
//! the integration tests read exports with the same CSV reader and manifest types.

pub mod cli;
pub mod cmd;
pub mod compare;
pub mod config;
pub mod csvfile;
pub mod docker;
pub mod encode;
pub mod hint;
pub mod journal;
pub mod layout;
pub mod manifest;
pub mod mysql;
pub mod plan;
pub mod postgres;
pub mod profile;
pub mod progress;
pub mod report;
pub mod runlog;
