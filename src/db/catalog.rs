//! PURE: what the servers' catalogs say, as plain data shared by export, import and
//! verify. Read by `db::mysql` and `db::postgres`; nothing here talks to a server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Engine;
use crate::db::sql::pg;

/// One column of a source table, as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumn {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
    /// VIRTUAL/STORED/PERSISTENT GENERATED (not MySQL 8's DEFAULT_GENERATED).
    pub generated: bool,
    /// The character set of a string column (`CHARACTER_SET_NAME`).
    pub charset: Option<String>,
    /// An enum's labels, when the catalog lists them apart (PostgreSQL); MySQL's are read
    /// from `COLUMN_TYPE`.
    pub labels: Vec<String>,
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
    /// The AUTO_INCREMENT column and the next value the server would hand out.
    pub auto_increment: Option<(String, u64)>,
    /// A PostgreSQL partitioned table's partitions (`schema.name`, sorted; every level).
    pub partitions: Option<Vec<String>>,
}

/// What a reader selects from: a table, filtered or not (the mapping's `where`), or a
/// derived dataset (the mapping's `query`, read as `(query) AS q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom<'a> {
    Table {
        name: &'a str,
        filter: Option<&'a str>,
    },
    Query(&'a str),
}

impl ReadFrom<'_> {
    /// ` WHERE ...` of a read: the table's filter (parenthesised) and the key range,
    /// both when both apply; empty when neither does.
    pub fn where_clause(&self, range: Option<&KeyRange>, engine: Engine) -> String {
        let mut conditions = Vec::new();
        if let ReadFrom::Table {
            filter: Some(f), ..
        } = self
        {
            conditions.push(format!("({f})"));
        }
        if let Some(r) = range {
            conditions.push(r.condition(engine));
        }
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        }
    }
}

/// A live MySQL value as the binary protocol delivers it (`verify --deep --source`
/// reads typed values, not the export's text), mirroring the driver's type so that the
/// pure comparison needs no driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Typed<'a> {
    Null,
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    Bytes(&'a [u8]),
    /// Bytes given as their hex digits in lower case (a long value read in pieces).
    Hex(&'a [u8]),
    /// A long value read in pieces, given as its digest form (`long_values::Gathered`):
    /// compared as it is.
    Digest(&'a [u8]),
    /// Year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// Negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

/// A primary-key value used as a range boundary (`--split-rows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLiteral {
    /// An integer key's digits.
    Int(String),
    /// A string key's bytes (UTF-8 as the server sent them).
    Str(Vec<u8>),
}

impl KeyLiteral {
    /// From the text form of a key value; None if it cannot be a boundary.
    pub fn new(integer: bool, value: &[u8]) -> Option<KeyLiteral> {
        if integer {
            let ok = !value.is_empty()
                && value
                    .iter()
                    .enumerate()
                    .all(|(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-'));
            ok.then(|| KeyLiteral::Int(String::from_utf8_lossy(value).into_owned()))
        } else {
            Some(KeyLiteral::Str(value.to_vec()))
        }
    }

    /// As SQL text that compares under the column's own collation. MySQL: digits, or
    /// `_utf8mb4 X'…'` — MySQL 8 compares a bare `X'…'` (a binary string) with a column
    /// byte by byte, so ranges would stop following `ORDER BY` in a case-insensitive
    /// collation; MariaDB 10.11 converts it to the column's collation either way (checked).
    /// PostgreSQL: digits, or a quoted literal (compared under the column's collation).
    pub fn sql(&self, engine: Engine) -> String {
        match (self, engine) {
            (KeyLiteral::Int(d), _) => d.clone(),
            (KeyLiteral::Str(v), Engine::Mysql) => format!("_utf8mb4 X'{}'", hex::encode(v)),
            (KeyLiteral::Str(v), Engine::Postgresql) => pg::literal(&String::from_utf8_lossy(v)),
        }
    }
}

/// `[from, to)` over one key column; an open end is None.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub column: String,
    pub from: Option<KeyLiteral>,
    pub to: Option<KeyLiteral>,
}

impl KeyRange {
    /// The WHERE condition, e.g. `` `id` >= 100 AND `id` < 200 ``.
    pub fn condition(&self, engine: Engine) -> String {
        let c = match engine {
            Engine::Mysql => crate::db::sql::my::ident(&self.column),
            Engine::Postgresql => pg::ident(&self.column),
        };
        match (&self.from, &self.to) {
            (None, None) => "TRUE".into(),
            (Some(f), None) => format!("{c} >= {}", f.sql(engine)),
            (None, Some(t)) => format!("{c} < {}", t.sql(engine)),
            (Some(f), Some(t)) => format!("{c} >= {} AND {c} < {}", f.sql(engine), t.sql(engine)),
        }
    }
}

/// One column as a reader fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadColumn<'a> {
    pub name: &'a str,
    pub read: Read,
    /// For a string column in a character set other than UTF-8: that set, whose values
    /// are checked to survive the conversion to utf8mb4 unchanged.
    pub check_conversion_from: Option<&'a str>,
    /// Its values may be long enough to be read in pieces (`db::long_values`), and how.
    pub long: Option<crate::db::long_values::LongForm>,
    /// A primary-key column: how its value finds the row again (None: it cannot).
    pub key: Option<crate::db::long_values::KeyForm>,
    /// A long value read in pieces is given as its digest form
    /// (`long_values::Gathered`): verify compares it so, and nothing else reads it.
    pub digest: bool,
}

impl<'a> ReadColumn<'a> {
    /// A column read whole, never a key for long values.
    pub fn whole(name: &'a str, read: Read, check_conversion_from: Option<&'a str>) -> Self {
        ReadColumn {
            name,
            read,
            check_conversion_from,
            long: None,
            key: None,
            digest: false,
        }
    }
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgColumn {
    pub name: String,
    /// `format_type` text, e.g. `character varying(255)`.
    pub type_sql: String,
    /// The type's name, e.g. `uuid`, `int4`.
    pub type_name: String,
    /// The `pg_catalog` base type (through a domain) whose binary form the import
    /// writes, `enum` for enums, or empty for anything else.
    pub binary_type: String,
    /// `pg_type.typcategory` of the base type: `S` string, `N` numeric, `B` boolean,
    /// `D` date/time, `E` enum, `A` array, `U` user-defined (uuid, bytea, json), ...
    pub category: char,
    /// For an array: its element's base type name (`text`, `int4`, `enum`, ...), when a
    /// `pg_catalog` base type or an enum.
    pub element: Option<String>,
    /// For an array: its element type's OID (written in binary arrays).
    pub element_oid: u32,
    /// The labels of an enum column, or of an enum array's elements, in order.
    pub enum_labels: Vec<String>,
    pub not_null: bool,
    pub has_default: bool,
    /// `GENERATED ALWAYS AS (...) STORED`: PostgreSQL computes it.
    pub generated: bool,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) identity, else empty.
    pub identity: String,
    /// For a domain: `format_type` of its base type with the domain's own size, e.g.
    /// `character varying(5)` for `CREATE DOMAIN code AS varchar(5)`.
    pub domain_base: Option<String>,
    /// Its type (through a domain) may have sizes inside it: a composite, or an array of
    /// a composite or of a domain. An explicit cast to it cuts a field or an element that
    /// is too long (a `set` computing it is warned of).
    pub sized_inside: bool,
}

impl PgColumn {
    /// The `format_type` text that says what the column holds: through a domain, its
    /// base type with the domain's size (what a value must fit).
    pub fn declared_sql(&self) -> &str {
        self.domain_base.as_deref().unwrap_or(&self.type_sql)
    }

    /// The column's type in words: `code (a domain over character varying(5))`.
    pub fn type_shown(&self) -> String {
        match &self.domain_base {
            Some(base) => format!("{} (a domain over {base})", self.type_sql),
            None => self.type_sql.clone(),
        }
    }
}

/// A table of the target schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgTable {
    pub name: String,
    pub columns: Vec<PgColumn>,
    /// The primary key's columns, in key order (empty without one).
    pub primary_key: Vec<String>,
    /// Partitioned tables take no `COPY ... FREEZE` and keep their indexes.
    pub partitioned: bool,
    /// A partitioned table's partitions: `name FOR VALUES ...`.
    pub partitions: Vec<String>,
    /// Every index of the table, and of its partitions when it is partitioned, as the
    /// import drops and rebuilds them (`--rebuild-indexes`).
    pub indexes: Vec<PgIndex>,
    /// The importing role owns the table (or is a member of its owner): it may drop
    /// and create its indexes.
    pub owned: bool,
    /// Enabled row triggers that run BEFORE INSERT (user ones, not the system's).
    pub insert_triggers: Vec<String>,
    /// It has a TOAST table (and so a TOAST index), which a TRUNCATE locks too.
    pub toast: bool,
    /// Triggers on INSERT or TRUNCATE that fire even with the target's triggers off
    /// (`session_replication_role = replica`): `name (ENABLE ALWAYS)`, `(ENABLE REPLICA)`.
    pub replica_triggers: Vec<String>,
    /// CHECK constraints: (name, `pg_get_constraintdef`), for listing every row that
    /// breaks one (`import::plan::collisions`).
    pub checks: Vec<(String, String)>,
}

/// One index of a target table or of one of its partitions, with everything a rebuild
/// must put back as it was.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgIndex {
    pub name: String,
    /// The schema and table the index is on (a partition, for a partition's index).
    pub schema: String,
    pub table: String,
    /// `pg_get_indexdef`: names, method, opclasses, collations, ordering, INCLUDE,
    /// NULLS NOT DISTINCT, storage parameters, predicate; not the tablespace.
    pub def: String,
    /// The access method (`btree`, `gin`, `gist`, `brin`, `hash`, ...).
    pub method: String,
    pub unique: bool,
    /// `indisvalid`: false for a leftover of a failed `CREATE INDEX CONCURRENTLY`.
    pub valid: bool,
    /// `CLUSTER ON` this index.
    pub clustered: bool,
    /// `REPLICA IDENTITY USING INDEX` this index.
    pub replica_identity: bool,
    /// A tablespace other than the database's default.
    pub tablespace: Option<String>,
    pub comment: Option<String>,
    /// Storage parameters (`fillfactor=70`), already part of `def`.
    pub options: Vec<String>,
    /// Statistics targets set on expression columns: (column number, target).
    pub statistics: Vec<(i16, i32)>,
    /// The key columns' expressions (names for plain columns), for naming duplicates.
    pub keys: Vec<String>,
    /// The predicate of a partial index.
    pub predicate: Option<String>,
    /// The partitioned index this partition's index is attached to.
    pub parent: Option<String>,
    /// The table's owner is the importing role (or one of its roles).
    pub owned: bool,
    /// The PRIMARY KEY, UNIQUE or EXCLUDE constraint this index backs.
    pub constraint: Option<IndexConstraint>,
    /// Foreign keys that reference this index (through its constraint, or a plain
    /// unique index): they go and come back with it.
    pub referenced_by: Vec<DependentKey>,
    /// Other objects that depend on the index or its constraint (a view grouping by
    /// the primary key, ...), described: they keep the index in place.
    pub dependents: Vec<String>,
    /// md5 of what a rebuild puts back, as read (`pgindex::fingerprint`).
    pub fingerprint: String,
}

impl PgIndex {
    /// What a unique index holds unique: its key expressions, parenthesised, and the
    /// conditions of the rows it covers (its predicate; each key NOT NULL, since NULLs
    /// are distinct unless NULLS NOT DISTINCT).
    pub fn unique_scope(&self) -> (Vec<String>, Vec<String>) {
        let exprs: Vec<String> = self.keys.iter().map(|k| format!("({k})")).collect();
        let mut filter: Vec<String> = self.predicate.iter().map(|p| format!("({p})")).collect();
        if !self.def.contains(" NULLS NOT DISTINCT") {
            filter.extend(exprs.iter().map(|e| format!("{e} IS NOT NULL")));
        }
        (exprs, filter)
    }
}

/// The kind of constraint an index backs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Exclude,
}

/// A constraint backed by an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConstraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef` (for EXCLUDE, which is added back from it).
    pub def: String,
    pub deferrable: bool,
    pub deferred: bool,
    pub comment: Option<String>,
}

/// A foreign key that references an index (the parent's key), as it must be added back.
#[derive(Debug, Clone, PartialEq)]
pub struct DependentKey {
    pub name: String,
    pub schema: String,
    pub table: String,
    /// `pg_get_constraintdef`: columns, referenced table and columns, MATCH, ON DELETE
    /// and ON UPDATE, deferrability, and NOT VALID when it was not validated.
    pub def: String,
    pub comment: Option<String>,
    /// The importing role owns the referencing table.
    pub owned: bool,
    /// The referencing table is partitioned or a partition (the key has clones).
    pub partitioned: bool,
}

/// What the target server allows index builds (`SHOW`, in kB and counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildSettings {
    pub maintenance_work_mem_kb: u64,
    pub shared_buffers_kb: u64,
    pub max_parallel_maintenance_workers: u32,
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
    /// DEFERRABLE: its checks may wait until COMMIT (`SET CONSTRAINTS ALL DEFERRED`).
    pub deferrable: bool,
}

impl ForeignKey {
    /// `c.<child>` rows whose key columns are all set (MATCH SIMPLE: a NULL in any key
    /// column exempts the row, as the constraint itself does) and have no parent row;
    /// `within`: a further condition on `c` (a delta checks only the rows it touched).
    fn orphans_from(&self, within: Option<&str>) -> String {
        let set: Vec<String> = self
            .child_columns
            .iter()
            .map(|c| format!("c.{} IS NOT NULL", pg::ident(c)))
            .collect();
        let join: Vec<String> = self
            .child_columns
            .iter()
            .zip(&self.parent_columns)
            .map(|(c, p)| format!("p.{} = c.{}", pg::ident(p), pg::ident(c)))
            .collect();
        format!(
            "FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {}){}",
            pg::qualified(&self.child_schema, &self.child),
            set.join(" AND "),
            pg::qualified(&self.parent_schema, &self.parent),
            join.join(" AND "),
            within.map(|w| format!(" AND ({w})")).unwrap_or_default()
        )
    }

    /// `SELECT count(*)` of the orphan rows.
    pub fn orphan_count_sql(&self) -> String {
        self.orphan_count_sql_within(None)
    }

    /// `SELECT count(*)` of the orphan rows among those `within` selects.
    pub fn orphan_count_sql_within(&self, within: Option<&str>) -> String {
        format!("SELECT count(*) {}", self.orphans_from(within))
    }

    /// Up to `limit` orphan rows as text: the `keys` columns (the child's primary key),
    /// then the foreign key's own columns.
    pub fn orphan_sample_sql(&self, keys: &[String], limit: usize) -> String {
        self.orphan_sample_sql_within(keys, limit, None)
    }

    /// [`Self::orphan_sample_sql`] among the rows `within` selects.
    pub fn orphan_sample_sql_within(
        &self,
        keys: &[String],
        limit: usize,
        within: Option<&str>,
    ) -> String {
        let cols: Vec<String> = keys
            .iter()
            .chain(&self.child_columns)
            .map(|c| format!("c.{}::text", pg::ident(c)))
            .collect();
        format!(
            "SELECT {} {} LIMIT {limit}",
            cols.join(", "),
            self.orphans_from(within)
        )
    }

    /// `constraint (child.cols -> parent.cols)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "foreign key `{}` ({}.{} -> {}.{})",
            self.name,
            self.child,
            self.child_columns.join(","),
            self.parent,
            self.parent_columns.join(",")
        )
    }

    /// Does it involve `table` of `schema`, as child or as parent?
    pub fn touches(&self, schema: &str, tables: &[String]) -> bool {
        (self.child_schema == schema && tables.contains(&self.child))
            || (self.parent_schema == schema && tables.contains(&self.parent))
    }
}

/// How one orphan row of a sample reads: `id=5 (tag_id=99)`.
pub fn orphan_row(keys: &[String], fk: &ForeignKey, values: &[Option<String>]) -> String {
    let show = |names: &[String], vals: &[Option<String>]| {
        names
            .iter()
            .zip(vals)
            .map(|(n, v)| format!("{n}={}", v.as_deref().unwrap_or("NULL")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let refs = show(&fk.child_columns, &values[keys.len().min(values.len())..]);
    if keys.is_empty() {
        refs
    } else {
        format!("{} ({refs})", show(keys, &values[..keys.len()]))
    }
}

/// A sequence a column takes its values from (its default calls `nextval`, owned or
/// not, or it is an identity column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceUse {
    pub table: String,
    pub column: String,
    /// `"schema"."name"`, quoted as needed.
    pub sequence: String,
    /// The connected role owns it (or is a member of its owner): it may ALTER it, so
    /// the import's reset is transactional.
    pub owned: bool,
}

/// What import and verify need to know about the target.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, PgTable>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Sequence uses of the schema's columns, by sequence.
    pub sequences: Vec<SequenceUse>,
    /// The server's settings for index builds.
    pub build: BuildSettings,
    /// The room the server's lock table guarantees.
    pub lock_room: LockRoom,
}

/// The settings that size PostgreSQL's shared lock table: it holds `per_transaction ×
/// (connections + prepared)` locked objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockRoom {
    pub per_transaction: u64,
    pub connections: u64,
    pub prepared: u64,
}

/// A foreign key of the source, with its actions (what a delta must follow, since
/// InnoDB does not log what an action did); a delta's manifest lists those it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceForeignKey {
    pub name: String,
    pub child: String,
    pub child_columns: Vec<String>,
    pub parent: String,
    /// The parent's columns, in the order the child's columns reference them.
    pub parent_columns: Vec<String>,
    /// `CASCADE`, `SET NULL`, `RESTRICT`, `NO ACTION`, `SET DEFAULT`.
    pub on_delete: String,
    pub on_update: String,
}

impl SourceForeignKey {
    /// Does either action change the children (anything but RESTRICT / NO ACTION)?
    pub fn has_action(&self) -> bool {
        let acts = |r: &str| !matches!(r, "RESTRICT" | "NO ACTION");
        acts(&self.on_delete) || acts(&self.on_update)
    }
}

/// A unique index of a source table other than its primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
    /// Some column is indexed by a prefix only: not a key of whole values.
    pub prefix: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_queries_quote_and_exempt_nulls() {
        let fk = ForeignKey {
            name: "tag_post".into(),
            child_schema: "public".into(),
            child: "tag".into(),
            child_columns: vec!["postId".into()],
            parent_schema: "public".into(),
            parent: "post".into(),
            parent_columns: vec!["id".into()],
            deferrable: false,
        };
        assert_eq!(
            fk.orphan_count_sql(),
            r#"SELECT count(*) FROM "public"."tag" c WHERE c."postId" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "public"."post" p WHERE p."id" = c."postId")"#
        );
        assert!(
            fk.orphan_sample_sql(&["id".into()], 5)
                .starts_with(r#"SELECT c."id"::text, c."postId"::text FROM"#)
        );
        assert_eq!(
            orphan_row(&["id".into()], &fk, &[Some("7".into()), Some("99".into())]),
            "id=7 (postId=99)"
        );
        assert!(fk.touches("public", &["post".into()]) && !fk.touches("other", &["post".into()]));
    }

    #[test]
    fn key_ranges_compare_under_the_column_collation() {
        let m = Engine::Mysql;
        assert_eq!(KeyLiteral::new(true, b"-42").unwrap().sql(m), "-42");
        assert!(KeyLiteral::new(true, b"1; DROP").is_none());
        assert_eq!(
            KeyLiteral::new(false, b"b'c").unwrap().sql(m),
            "_utf8mb4 X'622763'"
        );
        assert_eq!(
            KeyLiteral::new(false, b"b'c")
                .unwrap()
                .sql(Engine::Postgresql),
            "'b''c'"
        );
        let r = KeyRange {
            column: "id".into(),
            from: KeyLiteral::new(true, b"10"),
            to: KeyLiteral::new(true, b"20"),
        };
        assert_eq!(r.condition(m), "`id` >= 10 AND `id` < 20");
        assert_eq!(
            r.condition(Engine::Postgresql),
            "\"id\" >= 10 AND \"id\" < 20"
        );
        let open = KeyRange {
            to: None,
            ..r.clone()
        };
        assert_eq!(open.condition(m), "`id` >= 10");
        // A read's WHERE: the filter parenthesised, then the range.
        let table = |filter| ReadFrom::Table { name: "t", filter };
        let cases = [
            (table(None), None, ""),
            (table(Some("a = 1 OR b")), None, " WHERE (a = 1 OR b)"),
            (table(None), Some(&open), " WHERE `id` >= 10"),
            (
                table(Some("a = 1 OR b")),
                Some(&r),
                " WHERE (a = 1 OR b) AND `id` >= 10 AND `id` < 20",
            ),
            (
                ReadFrom::Query("SELECT 1"),
                Some(&open),
                " WHERE `id` >= 10",
            ),
        ];
        for (from, range, want) in cases {
            assert_eq!(from.where_clause(range, m), want, "{from:?}");
        }
    }
}
