//! PURE: `migration_manifest.json`: serde types, versioning and validation (the file is
//! read by `store::open`). Keeps the old shell scripts' fields (`export_info`,
//! `tables{<name>:{rows, columns}}`, `summary`) so runbooks using `jq .summary.total_rows`
//! keep working, and loads exports made by those scripts as `Loaded::Legacy`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::codec::encode::{ColumnStats, DOMAIN_MAX, DomainValue, SAMPLES};
use crate::db::catalog::Snapshot;
use crate::hint::WithHint;
use crate::memory::{at_most, some_at_most};

/// The format this build writes, and the newest it reads (it reads every older one).
/// Format 2 added `parts` (a table exported as several key-range files); format 3 adds
/// each file's longest record, which bounds the import's memory.
pub const FORMAT_VERSION: u32 = 3;

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
    /// Format 2: the table was read as key ranges, one file each, in key order. Then
    /// `file` is the first part and `sha256` is empty: each part carries its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartEntry>,
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
    if n > FORMAT_VERSION as u64 {
        return Err(anyhow::anyhow!(
            "manifest format_version {n} is newer than this pgconverge understands ({FORMAT_VERSION})"
        ))
        .hint("import it with the pgconverge version that exported it, or a newer one");
    }
    let m: Manifest = serde_json::from_str(text)
        .with_context(|| format!("manifest does not match format {n}"))?;
    for (k, t) in &m.tables {
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
