//! The only modules that talk to servers (`mysql`, `postgres`, `docker`, with `tls` for
//! both databases; `pgsource` reads PostgreSQL as a source, and `source` puts either
//! engine behind the export's one interface), and the pure shapes they hand out
//! (`catalog`), quote with (`sql`) and read SQL text with (`lex`).

pub mod catalog;
pub mod docker;
pub mod lex;
pub mod mysql;
pub mod pgindex;
pub mod pgsource;
pub mod postgres;
pub mod source;
pub mod sql;
pub mod tls;
