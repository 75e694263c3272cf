//! PURE: what the servers' catalogs say, as plain data shared by export, import and
//! verify. Read by `db::mysql` and `db::postgres`; nothing here talks to a server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One column of a source table, as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumn {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
    /// VIRTUAL/STORED/PERSISTENT GENERATED (not MySQL 8's DEFAULT_GENERATED).
    pub generated: bool,
}

/// One base table of the source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTable {
    pub name: String,
    pub engine: String,
    /// InnoDB's estimate: for progress bars and work order only, never for counts.
    pub estimated_rows: u64,
    pub columns: Vec<SourceColumn>,
    pub primary_key: Vec<String>,
}

/// How a reader fetches one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The server's text form in the session's character set.
    Text,
    /// The stored bytes (`CAST(c AS BINARY)`), bypassing character-set conversion.
    Bytes,
    /// As a double (`CAST(c AS DOUBLE)`): a single-precision FLOAT's exact value (every
    /// float is a double), where its own text form has only six significant digits.
    Double,
}

/// One column of a target table.
#[derive(Debug, Clone, PartialEq)]
pub struct PgColumn {
    pub name: String,
    /// `format_type` text, e.g. `character varying(255)`.
    pub type_sql: String,
    /// The type's name, e.g. `uuid`, `int4`.
    pub type_name: String,
    /// The `pg_catalog` base type (through a domain) whose binary form the import
    /// writes, `enum` for enums, or empty for anything else.
    pub binary_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// `GENERATED ALWAYS AS (...) STORED`: PostgreSQL computes it.
    pub generated: bool,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) identity, else empty.
    pub identity: String,
}

/// A table of the target schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgTable {
    pub name: String,
    pub columns: Vec<PgColumn>,
    /// (column, sequence as `pg_get_serial_sequence` names it) for serial and identity.
    pub sequences: Vec<(String, String)>,
    /// Partitioned tables take no `COPY ... FREEZE` and keep their indexes.
    pub partitioned: bool,
    /// Secondary indexes that back no constraint: (name, `pg_get_indexdef`), which
    /// `--rebuild-indexes` drops before the load and recreates after it.
    pub secondary_indexes: Vec<(String, String)>,
}

/// A foreign key anywhere in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub name: String,
    pub child_schema: String,
    pub child: String,
    pub child_columns: Vec<String>,
    pub parent_schema: String,
    pub parent: String,
    pub parent_columns: Vec<String>,
}

/// What import and verify need to know about the target.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, PgTable>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// The snapshot an export read, as recorded in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub isolation: String,
    pub time_zone: String,
    pub charset: String,
    pub readers: usize,
    /// How the readers' snapshots were made identical.
    pub synchronized_by: String,
}
