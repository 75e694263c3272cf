//! PURE: `migration_manifest.json`: serde types, versioning and validation (the file is
//! read by `store::open`). Keeps the old shell scripts' fields (`export_info`,
//! `tables{<name>:{rows, columns}}`, `summary`) so runbooks using `jq .summary.total_rows`
//! keep working, and loads exports made by those scripts as `Loaded::Legacy`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::codec::encode::{ColumnStats, DOMAIN_MAX, DomainValue, Extremes, Largest, SAMPLES};
use crate::db::catalog::Snapshot;
use crate::hint::WithHint;
use crate::memory::{at_most, some_at_most};

/// The format a plain export writes. Format 2 added `parts` (a table exported as several
/// key-range files); format 3 adds each file's longest record, which bounds the import's
/// memory.
pub const FORMAT_VERSION: u32 = 3;

/// The format of a delta chain's exports (a base and its deltas), and the newest this
/// build reads (it reads every older one). A binary that reads at most 3 refuses it: it
/// would import a delta as a whole export, or a base without recording the chain.
pub const CHAIN_FORMAT_VERSION: u32 = 4;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: Tool,
    /// `alkemio`, `kratos`, or the database name.
    pub profile: String,
    /// Format 3: the mapping the export used, stored beside the CSV files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<MappingRef>,
    pub source: Source,
    pub started_at: String,
    pub finished_at: String,
    pub snapshot: Snapshot,
    pub csv: Dialect,
    /// The old scripts' block.
    pub export_info: ExportInfo,
    pub tables: BTreeMap<String, TableEntry>,
    /// Tables of the source not exported, with the reason.
    #[serde(default)]
    pub excluded_tables: BTreeMap<String, String>,
    pub summary: Summary,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Format 4: `full` (a chain's base) or `delta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Format 4: this export's id, as the target's `pgconverge.state` records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
    /// Format 4: the source's log position the snapshot is consistent with (a delta's
    /// end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<crate::db::position::LogPosition>,
    /// Format 4, a delta: what it follows and where it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::store::chain::DeltaInfo>,
    /// Format 4: the chain copies tables it cannot follow by key whole
    /// (`--delta-full-copy` at its base); its deltas keep doing so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delta_full_copy: bool,
    /// Format 4, a chain's base: the source's foreign keys with an action when it was
    /// taken (a delta records its own in `delta.cascades`); absent in older bases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascades: Option<Vec<crate::store::chain::Cascade>>,
}

/// The mapping file an export stored (`mapping.toml`), with its sha256.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MappingRef {
    pub file: String,
    pub sha256: String,
    /// Where it came from: a built-in profile, or the file given with --map.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Where the data came from; never a password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub server_version: String,
    #[serde(default)]
    pub container: Option<String>,
    /// Format 3, a PostgreSQL source: the schema read, and the cluster's identity, so
    /// that an import into the very tables it was read from is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dialect {
    pub encoding: String,
    pub delimiter: String,
    pub quote: String,
    pub null: String,
    pub header: bool,
    pub line_end: String,
}

impl Dialect {
    pub fn current() -> Dialect {
        Dialect {
            encoding: "UTF-8".into(),
            delimiter: ",".into(),
            quote: "\"".into(),
            null: "\\N".into(),
            header: true,
            line_end: "\n".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExportInfo {
    pub timestamp: String,
    pub source_database: String,
    pub source_type: String,
    #[serde(default)]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableEntry {
    pub name: String,
    pub file: String,
    /// Exact rows written (not information_schema's estimate).
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// Format 3: bytes of the longest record of the table's file(s), header included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_record: Option<u64>,
    pub engine: String,
    /// A PostgreSQL partitioned table's partitions (`schema.name`, every level): a delta
    /// refuses a partition attached or detached since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<String>>,
    pub columns: Vec<ColumnEntry>,
    pub primary_key: Vec<String>,
    /// Generated columns of the source: not exported (PostgreSQL computes or rejects them).
    #[serde(default)]
    pub generated_columns: Vec<String>,
    /// Format 3: the AUTO_INCREMENT column and the next value the source would hand out
    /// (the target's sequence continues after it, so deleted ids are not reissued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_increment: Option<AutoIncrement>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Format 3: the mapping's `where`, applied at export.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Format 3: the mapping's `query`: this dataset is its result, not a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Format 3: source columns the mapping's `drop` left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_columns: Vec<String>,
    /// Format 3 (optional): dropped columns that a `set` of the dataset names, exported so
    /// that the `set` can read them; the import never inserts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helper_columns: Vec<String>,
    /// Format 2: the table was read as key ranges, one file each, in key order. Then
    /// `file` is the first part and `sha256` is empty: each part carries its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartEntry>,
    /// Format 4, a delta: the deleted (and removed) keys, the count at the end. Then
    /// `file` holds the upserted rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::store::chain::TableDelta>,
    /// Format 3 (optional): the mapping's `count` rules, each with the number of exported
    /// rows it held for (evaluated in the export's snapshot; a delta records none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoIncrement {
    pub column: String,
    pub next: u64,
}

/// One key range of a split table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartEntry {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// Format 3: bytes of the longest record of this file, header included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_record: Option<u64>,
    /// The key range, for people: `id >= 'b…' AND id < 'f…'`.
    pub range: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnEntry {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
    /// The encoding rule applied (`encode::Rule::name`).
    pub rule: String,
    #[serde(flatten)]
    pub stats: ColumnStats,
    /// Up to a few primary keys of non-UUID values in a `char(36)` column.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "at_most::<SAMPLES, _, _>"
    )]
    pub non_uuid_samples: Vec<String>,
    /// Up to a few primary keys of rows where NULL was written.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "at_most::<SAMPLES, _, _>"
    )]
    pub null_samples: Vec<String>,
    /// Format 3: up to a few primary keys of rows holding `''` (string columns).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "at_most::<SAMPLES, _, _>"
    )]
    pub empty_samples: Vec<String>,
    /// Format 3: the column's distinct values with their counts and a few keys, when it
    /// has at most 64 (string columns); absent when it has more.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_at_most::<DOMAIN_MAX, _, _>"
    )]
    pub domain: Option<Vec<DomainValue>>,
    /// Format 3: ENUM and SET labels, from `COLUMN_TYPE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Format 3: a spatial column's kinds of geometry, each with count and keys.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_at_most::<DOMAIN_MAX, _, _>"
    )]
    pub geometry: Option<Vec<DomainValue>>,
    /// Format 3: a spatial column's SRIDs (up to a few).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "at_most::<SAMPLES, _, _>"
    )]
    pub srids: Vec<u32>,
    /// Format 3: the column's character set, when it is not UTF-8 and its values were
    /// checked one by one for a lossless conversion (a set whose every byte converts, as
    /// latin1 does, is not checked and not named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// Format 3 (optional): up to a few keys of rows whose JSON holds `\u0000`, kept as
    /// it is (`json_nul_kept` counts them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_nul_samples: Vec<String>,
    /// Format 4 (optional): up to a few keys of rows holding `Infinity` or `-Infinity`
    /// (a PostgreSQL source's float or numeric).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infinite_samples: Vec<String>,
    /// Format 3 (optional): an integer column's smallest and largest value, each with
    /// the key of a row holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Extremes>,
    /// Format 3 (optional): a bytes column's shortest and longest value, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_lengths: Option<Extremes>,
    /// Format 4 (optional): a string column's longest value in characters, with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_chars: Option<Largest>,
    /// Format 4 (optional): the same without trailing blanks (what a `char(n)` holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_trimmed: Option<Largest>,
    /// Format 4 (optional): a decimal column's most digits before the point, with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer_digits: Option<Largest>,
    /// Format 3 (optional): temporal and decimal columns, the count (and keys) of values
    /// per number of fraction digits used (`"3"`: values like `.123` or `.120`... with
    /// trailing zeros dropped); absent means none recorded (an older export).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_at_most::<DOMAIN_MAX, _, _>"
    )]
    pub fraction_digits: Option<Vec<DomainValue>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub total_tables: u64,
    pub total_rows: u64,
    #[serde(default)]
    pub total_bytes: u64,
}

/// One CSV file to load, with what the manifest says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    pub file: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    /// Data records the file holds.
    pub rows: Option<u64>,
    /// Bytes of its longest record: no record of an intact file is longer.
    pub longest: Option<u64>,
}

/// What `import` and `verify` need of one table, from any manifest format.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub name: String,
    /// In load order; one, or the parts of a split table.
    pub files: Vec<FileSpec>,
    pub rows: Option<u64>,
    /// Column facts (current format only).
    pub columns: Vec<ColumnEntry>,
    pub primary_key: Vec<String>,
    pub auto_increment: Option<AutoIncrement>,
    /// The mapping's `where` and `query` the dataset was exported with.
    pub filter: Option<String>,
    pub query: Option<String>,
    /// Columns of the files that only a `set` reads (`helper_columns`): never inserted.
    pub helpers: Vec<String>,
    /// The mapping's `count` rules as the export evaluated them.
    pub counts: BTreeMap<String, u64>,
}

impl TableSpec {
    /// What import and verify need of one manifest entry.
    pub fn from_entry(t: &TableEntry) -> TableSpec {
        TableSpec {
            name: t.name.clone(),
            files: if t.parts.is_empty() {
                vec![FileSpec {
                    file: t.file.clone(),
                    bytes: Some(t.bytes),
                    sha256: Some(t.sha256.clone()),
                    rows: Some(t.rows),
                    longest: t.longest_record,
                }]
            } else {
                t.parts
                    .iter()
                    .map(|p| FileSpec {
                        file: p.file.clone(),
                        bytes: Some(p.bytes),
                        sha256: Some(p.sha256.clone()),
                        rows: Some(p.rows),
                        longest: p.longest_record,
                    })
                    .collect()
            },
            rows: Some(t.rows),
            columns: t.columns.clone(),
            primary_key: t.primary_key.clone(),
            auto_increment: t.auto_increment.clone(),
            filter: t.filter.clone(),
            query: t.query.clone(),
            helpers: t.helper_columns.clone(),
            counts: t.counts.clone(),
        }
    }
}

/// A manifest as found on disk.
#[derive(Debug, Clone)]
pub enum Loaded {
    Current(Box<Manifest>),
    /// Written by the old shell scripts: no format_version, no checksums, NULL as an
    /// unquoted empty field.
    Legacy {
        source_database: String,
        tables: Vec<TableSpec>,
    },
}

impl Loaded {
    pub fn tables(&self) -> Vec<TableSpec> {
        match self {
            Loaded::Current(m) => m.tables.values().map(TableSpec::from_entry).collect(),
            Loaded::Legacy { tables, .. } => tables.clone(),
        }
    }

    /// The profile (or database) name the export was made for.
    pub fn profile(&self) -> String {
        match self {
            Loaded::Current(m) => m.profile.clone(),
            Loaded::Legacy {
                source_database, ..
            } => source_database.clone(),
        }
    }

    /// Where the export was read (None for the old scripts' exports).
    pub fn source(&self) -> Option<&Source> {
        match self {
            Loaded::Current(m) => Some(&m.source),
            Loaded::Legacy { .. } => None,
        }
    }

    /// The source's engine as recorded (`mysql`, `postgresql`); the old scripts' were MySQL.
    pub fn source_kind(&self) -> String {
        match self {
            Loaded::Current(m) => m.source.kind.clone(),
            Loaded::Legacy { .. } => "mysql".into(),
        }
    }

    pub fn source_database(&self) -> String {
        match self {
            Loaded::Current(m) => m.source.database.clone(),
            Loaded::Legacy {
                source_database, ..
            } => source_database.clone(),
        }
    }

    /// The mapping the export stored, if it stored one.
    pub fn mapping(&self) -> Option<&MappingRef> {
        match self {
            Loaded::Current(m) => m.mapping.as_ref(),
            Loaded::Legacy { .. } => None,
        }
    }

    pub fn is_legacy(&self) -> bool {
        matches!(self, Loaded::Legacy { .. })
    }

    /// The manifest, unless the old scripts wrote it.
    pub fn current(&self) -> Option<&Manifest> {
        match self {
            Loaded::Current(m) => Some(m),
            Loaded::Legacy { .. } => None,
        }
    }

    /// A delta: its chain facts.
    pub fn delta(&self) -> Option<&crate::store::chain::DeltaInfo> {
        self.current().and_then(|m| m.delta.as_ref())
    }

    /// The log position of a chain's export (a base or a delta).
    pub fn position(&self) -> Option<&crate::db::position::LogPosition> {
        self.current().and_then(|m| m.position.as_ref())
    }
}

/// Parse manifest text (pure). A manifest states its `format_version` as a positive
/// integer no newer than this build's; only a manifest of exactly the old shell
/// scripts' shape may lack it (and then carries no checksums: see `Loaded::Legacy`).
/// Anything else is refused, so that a manifest cannot be downgraded to skip the checks.
pub fn parse(text: &str) -> Result<Loaded> {
    /// The version alone, read without building the document: a manifest is parsed
    /// straight into its types (a JSON tree would take several times its size).
    #[derive(Deserialize)]
    struct Version {
        /// Absent is None; `null` is a value (a wrong one).
        #[serde(default, deserialize_with = "present")]
        format_version: Option<serde_json::Value>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<serde_json::Value>, D::Error> {
        serde_json::Value::deserialize(d).map(Some)
    }
    let version: Version = serde_json::from_str(text).context("not valid JSON")?;
    let n = match version.format_version {
        None => {
            // The shell era's manifests are small, and have no version.
            let v: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
            if is_legacy_shape(&v) {
                return parse_legacy(&v);
            }
            return Err(anyhow::anyhow!(
                "manifest has no `format_version`, and it is not an export of the old shell \
                 scripts either (those hold only export_info, tables{{rows, columns}} and summary)"
            ))
            .hint("the manifest was changed or damaged: export again");
        }
        Some(f) => match f.as_u64() {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(anyhow::anyhow!(
                    "manifest `format_version` is {f}, not a positive integer"
                ))
                .hint("the manifest was changed or damaged: export again");
            }
        },
    };
    if n > CHAIN_FORMAT_VERSION as u64 {
        return Err(anyhow::anyhow!(
            "manifest format_version {n} is newer than this pgconverge understands ({CHAIN_FORMAT_VERSION})"
        ))
        .hint("import it with the pgconverge version that exported it, or a newer one");
    }
    let m: Manifest = serde_json::from_str(text)
        .with_context(|| format!("manifest does not match format {n}"))?;
    check_chain(&m, n)?;
    for (k, t) in &m.tables {
        if let Some(d) = &t.delta {
            check_file_name(&d.deleted.file)?;
            if let Some(r) = &d.removed {
                check_file_name(&r.file)?;
            }
        }
        if k != &t.name {
            bail!("manifest table key `{k}` names table `{}`", t.name);
        }
        check_file_name(&t.file)?;
        if let Some(mr) = &m.mapping {
            check_file_name(&mr.file)?;
        }
        for p in &t.parts {
            check_file_name(&p.file)?;
        }
        let part_rows: u64 = t.parts.iter().map(|p| p.rows).sum();
        if !t.parts.is_empty() && part_rows != t.rows {
            bail!(
                "manifest table `{k}`: its parts hold {part_rows} rows, the table {}",
                t.rows
            );
        }
    }
    Ok(Loaded::Current(Box::new(m)))
}

/// Format 4 is a chain's, and only format 4 carries a chain's fields.
fn check_chain(m: &Manifest, n: u64) -> Result<()> {
    use crate::store::chain::{KIND_DELTA, KIND_FULL};
    let chain = m.kind.is_some() || m.position.is_some() || m.delta.is_some();
    match (n, m.kind.as_deref()) {
        (4, Some(KIND_FULL)) if m.delta.is_none() && m.position.is_some() => Ok(()),
        (4, Some(KIND_DELTA)) if m.delta.is_some() && m.position.is_some() => {
            match m.tables.values().find(|t| t.delta.is_none()) {
                Some(t) => bail!("delta manifest: table `{}` has no delta entry", t.name),
                None => Ok(()),
            }
        }
        (4, kind) => bail!(
            "manifest format 4 must be a delta chain's: kind `full` with a position, or `delta` with its base and positions (found kind {kind:?})"
        ),
        (_, _) if chain => bail!(
            "manifest format {n} carries a delta chain's fields (kind, position, delta), which only format 4 has"
        ),
        _ => Ok(()),
    }
}

/// Exactly what the old scripts wrote: `export_info`, `tables{<name>:{rows, columns}}`,
/// `summary`, and nothing else.
fn is_legacy_shape(v: &serde_json::Value) -> bool {
    let Some(top) = v.as_object() else {
        return false;
    };
    let known = |k: &String| matches!(k.as_str(), "export_info" | "tables" | "summary");
    let tables_ok = top
        .get("tables")
        .and_then(|t| t.as_object())
        .is_some_and(|t| {
            t.values().all(|e| {
                e.as_object()
                    .is_some_and(|e| e.keys().all(|k| k == "rows" || k == "columns"))
            })
        });
    top.keys().all(known) && tables_ok
}

fn parse_legacy(v: &serde_json::Value) -> Result<Loaded> {
    let tables = v
        .get("tables")
        .and_then(|t| t.as_object())
        .context("no `tables` object: not a pgconverge or legacy export manifest")?;
    let source_database = v
        .pointer("/export_info/source_database")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    let mut out = Vec::new();
    for (name, t) in tables {
        let file = format!("{name}.csv");
        check_file_name(&file)?;
        out.push(TableSpec {
            name: name.clone(),
            files: vec![FileSpec {
                file,
                bytes: None,
                sha256: None,
                rows: None,
                longest: None,
            }],
            rows: t.get("rows").and_then(|r| r.as_u64()),
            columns: Vec::new(),
            primary_key: Vec::new(),
            auto_increment: None,
            filter: None,
            query: None,
            helpers: Vec::new(),
            counts: BTreeMap::new(),
        });
    }
    Ok(Loaded::Legacy {
        source_database,
        tables: out,
    })
}

/// A manifest must not point outside its directory.
fn check_file_name(f: &str) -> Result<()> {
    if f.is_empty() || f.contains('/') || f.contains('\\') || f == "." || f == ".." {
        bail!("manifest names file `{f}`, which is not a plain file name in the export directory");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_are_refused() {
        let err = parse(r#"{"format_version": 99, "tables": {}}"#).unwrap_err();
        assert!(format!("{err:#}").contains("newer"), "{err:#}");
    }

    #[test]
    fn a_manifest_cannot_be_downgraded_to_skip_its_checks() {
        let current = r#""tool":{"name":"pgconverge","version":"0"},"tables":{},"summary":{"total_tables":0,"total_rows":0}"#;
        for version in [r#""1""#, "1.0", "99.5", "null", "-1", "0", "true", "[1]"] {
            let err = parse(&format!(r#"{{"format_version": {version}, {current}}}"#)).unwrap_err();
            assert!(
                format!("{err:#}").contains("not a positive integer"),
                "{version}: {err:#}"
            );
        }
        // Without format_version, only the old scripts' exact shape is legacy.
        let err = parse(&format!("{{{current}}}")).unwrap_err();
        assert!(
            format!("{err:#}").contains("no `format_version`"),
            "{err:#}"
        );
        let err = parse(r#"{"tables":{"t":{"rows":1,"sha256":"x"}}}"#).unwrap_err();
        assert!(
            format!("{err:#}").contains("no `format_version`"),
            "{err:#}"
        );
    }

    /// A minimal current manifest of `format_version`, with `extra` fields.
    fn minimal(version: u32, extra: &str) -> String {
        format!(
            r#"{{"format_version": {version}, "tool": {{"name": "pgconverge", "version": "0"}},
               "profile": "app", "source": {{"kind": "mysql", "host": "h", "port": 1, "user": "u",
               "database": "app", "server_version": "v"}}, "started_at": "", "finished_at": "",
               "snapshot": {{"isolation": "", "time_zone": "", "charset": "", "readers": 1,
               "synchronized_by": ""}}, "csv": {{"encoding": "UTF-8", "delimiter": ",", "quote": "\"",
               "null": "\\N", "header": true, "line_end": "\n"}}, "export_info": {{"timestamp": "",
               "source_database": "app", "source_type": "mysql"}}, "tables": {{}},
               "summary": {{"total_tables": 0, "total_rows": 0}}{extra}}}"#
        )
    }

    #[test]
    fn a_chain_is_format_4_and_only_format_4_carries_one() {
        let position = r#", "position": {"engine": "mysql", "file": "bin.000001", "position": 4,
            "server": {"server_id": 1, "file_created": 5}}"#;
        assert!(parse(&minimal(3, "")).is_ok());
        let base = parse(&minimal(4, &format!(r#", "kind": "full"{position}"#))).unwrap();
        assert_eq!(base.position().map(|p| p.position), Some(4));
        assert!(base.delta().is_none());
        for (version, extra, why) in [
            (4, String::new(), "format 4 must be"),
            (
                4,
                format!(r#", "kind": "delta"{position}"#),
                "format 4 must be",
            ),
            (4, r#", "kind": "full""#.to_string(), "format 4 must be"),
            (3, format!(r#", "kind": "full"{position}"#), "only format 4"),
            (
                5,
                format!(r#", "kind": "full"{position}"#),
                "newer than this pgconverge",
            ),
        ] {
            let err = parse(&minimal(version, &extra)).unwrap_err();
            assert!(
                format!("{err:#}").contains(why),
                "{version} {extra}: {err:#}"
            );
        }
    }

    #[test]
    fn legacy_manifests_load() {
        let l = parse(
            r#"{"export_info":{"timestamp":"20240101_000000","source_database":"alkemio","source_type":"mysql"},
                "tables":{"user":{"rows":3,"columns":"id,name"},"space":{"rows":0,"columns":2}},
                "summary":{"total_tables":2,"total_rows":3}}"#,
        )
        .unwrap();
        assert!(l.is_legacy());
        assert_eq!(l.source_database(), "alkemio");
        let t = l.tables();
        assert_eq!(t.len(), 2);
        assert!(
            t.iter()
                .any(|t| t.name == "user" && t.rows == Some(3) && t.files[0].file == "user.csv")
        );
    }

    #[test]
    fn files_outside_the_directory_are_refused() {
        assert!(check_file_name("../etc/passwd").is_err());
        assert!(check_file_name("query-result-cache.csv").is_ok());
        assert!(parse(r#"{"tables":{"../x":{"rows":1}}}"#).is_err());
    }
}
