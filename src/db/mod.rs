//! The only modules that talk to servers (`mysql`, `postgres`, `docker`, with `tls` for
//! both databases), and the pure shapes they hand out (`catalog`) and quote with (`sql`).

pub mod catalog;
pub mod docker;
pub mod mysql;
pub mod postgres;
pub mod sql;
pub mod tls;
