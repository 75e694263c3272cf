//! PURE: every byte-level rule between a source value and what PostgreSQL reads. `csv` is
//! the dialect (the one writer and the one tokenizer), `rules` the named MySQL quirks,
//! `encode` the source value -> CSV field pipeline (`facts` what it learns of each
//! column), `geometry` MySQL's
//! stored geometries, `adapt` the rewrites a target column needs, and `pgbinary` the CSV
//! field -> binary COPY value converters; `rewrite` the streaming CSV rewrite an import
//! sends when records change on the way; `pgtext` reads COPY's text output; `binlog_row`
//! takes the keys out of the binary log's row images. Nothing here does I/O or knows a server.

pub mod adapt;
pub mod binlog_row;
pub mod csv;
pub mod csv_pieces;
pub mod encode;
pub mod facts;
pub mod geometry;
pub mod pgbinary;
pub mod pgtext;
pub mod rewrite;
pub mod rules;
pub mod test_decoding;
