//! The only modules that talk to servers (`mysql`, `postgres`, `docker`, with `tls` for
//! both databases; `pgsource` reads PostgreSQL as a source, and `source` puts either
//! engine behind the export's one interface), and the pure shapes they hand out
//! (`catalog`) and quote with (`sql`).

pub mod catalog;
pub mod docker;
pub mod mysql;
pub mod pgindex;
pub mod pgsource;
pub mod postgres;
pub mod source;
pub mod sql;
pub mod tls;
