//! The only modules that talk to servers (`mysql`, `postgres`, `docker`, with `tls` for
//! both databases; `binlog` reads a MySQL source's binary log and `binlog_status` asks
//! about it, `delta_keys` holds a delta's changed keys in its snapshot, `state` is the
//! target's `pgconverge.state`; `pgsource` reads PostgreSQL as a source, `pglog`
//! its logical decoding and `pgkeys` its unique keys and replica identities, and `source` puts either
//! engine behind the export's one interface), and the pure shapes they hand out
//! (`catalog`, `position`), quote with (`sql`), read SQL text with (`lex`) and read long
//! values in pieces with (`long_values`).

pub mod binlog;
pub mod binlog_status;
pub mod catalog;
pub mod delta_keys;
pub mod docker;
pub mod lex;
pub mod long_values;
pub mod mysql;
pub mod mysql_keys;
pub mod mysql_long;
pub mod mysql_typed;
pub mod pg_long;
pub mod pgindex;
pub mod pgkeys;
pub mod pglog;
pub mod pgsource;
pub mod position;
pub mod postgres;
pub mod source;
pub mod sql;
pub mod state;
pub mod tls;
