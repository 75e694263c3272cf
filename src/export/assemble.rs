//! PURE: from what the readers wrote to the manifest. A table's parts (one, or one per key
//! range) are summed into its entry, in key order; warnings are worded here; the summary
//! the command prints (`--json` included) is derived from the manifest, never assembled
//! twice.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::codec::encode::{ColumnFacts, ColumnStats, Facts, Rule};
use crate::db::catalog::Snapshot;
use crate::export::plan::TablePlan;
use crate::store::manifest::{self, ColumnEntry, Manifest, PartEntry, TableEntry};

/// What one unit of reading wrote: a whole table, or one key range of it.
#[derive(Debug)]
pub struct PartWritten {
    pub table: String,
    /// 1-based; parts are put back in this order.
    pub part: usize,
    pub file: String,
    /// The key range, for people (empty for a whole table).
    pub range: String,
    pub facts: Facts,
    pub bytes: u64,
    pub sha256: String,
    /// The mapping's `count` rules over this part, in the plan's order (empty: none).
    pub counts: Vec<u64>,
}

/// Does the export's snapshot cover a table of this engine? InnoDB's do, and every
/// PostgreSQL table's (no engine, or a partitioned table's marker); MyISAM, Aria, MEMORY
/// and the other MySQL engines without transactions do not.
fn snapshot_covers(engine: &str) -> bool {
    engine.is_empty()
        || engine.eq_ignore_ascii_case("InnoDB")
        || engine == crate::db::pgsource::PARTITIONED
}

/// The manifest entry of a table from its part(s).
pub fn table_entry(plan: &TablePlan, mut parts: Vec<PartWritten>) -> TableEntry {
    parts.sort_by_key(|p| p.part);
    // The first part's facts, with every other part's added (a domain survives only if
    // every part kept one).
    let mut facts: Vec<ColumnFacts> = parts
        .first()
        .map(|p| p.facts.columns.clone())
        .unwrap_or_else(|| vec![ColumnFacts::default(); plan.columns.len()]);
    for p in parts.iter().skip(1) {
        for (sum, part) in facts.iter_mut().zip(&p.facts.columns) {
            sum.add(part);
        }
    }
    let mut warnings = Vec::new();
    if !snapshot_covers(&plan.engine) {
        warnings.push(format!(
            "engine {} is not transactional: its rows are not covered by the snapshot",
            plan.engine
        ));
    }
    let mut columns = Vec::new();
    for (c, f) in plan.columns.iter().zip(facts) {
        let s = &f.stats;
        if c.rule == Rule::Uuid36 && s.non_uuid > 0 {
            warnings.push(format!(
                "column `{}` (char(36)): {} values are neither empty nor a UUID and will fail a uuid column, e.g. {}",
                c.name,
                s.non_uuid,
                f.non_uuid_samples.join("; ")
            ));
        }
        let fixed =
            s.nul_stripped + s.invalid_utf8_replaced + s.json_nul_dropped + s.unconvertible_kept;
        if fixed > 0 {
            warnings.push(format!(
                "column `{}`: {fixed} values changed by --on-invalid fix",
                c.name
            ));
        }
        columns.push(ColumnEntry {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            column_type: c.column_type.clone(),
            nullable: c.nullable,
            rule: c.rule.name().into(),
            stats: f.stats,
            non_uuid_samples: f.non_uuid_samples,
            null_samples: f.null_samples,
            empty_samples: f.empty_samples,
            domain: f.domain,
            labels: c.labels.clone(),
            geometry: f.geometry,
            srids: f.srids,
            charset: c.check_conversion_from.clone(),
            json_nul_samples: f.json_nul_samples,
            infinite_samples: f.infinite_samples,
            range: f.range,
            byte_lengths: f.byte_lengths,
            longest_chars: f.longest_chars,
            longest_trimmed: f.longest_trimmed,
            integer_digits: f.integer_digits,
            fraction_digits: f.fraction_digits,
        });
    }
    let rows = parts.iter().map(|p| p.facts.rows).sum();
    let bytes = parts.iter().map(|p| p.bytes).sum();
    let longest = parts.iter().map(|p| p.facts.longest).max();
    let (sha256, part_entries) = if parts.len() == 1 && parts[0].range.is_empty() {
        (parts[0].sha256.clone(), Vec::new())
    } else {
        (
            String::new(),
            parts
                .iter()
                .map(|p| PartEntry {
                    file: p.file.clone(),
                    rows: p.facts.rows,
                    bytes: p.bytes,
                    sha256: p.sha256.clone(),
                    longest_record: Some(p.facts.longest),
                    range: p.range.clone(),
                })
                .collect(),
        )
    };
    TableEntry {
        name: plan.name.clone(),
        file: parts.first().map(|p| p.file.clone()).unwrap_or_default(),
        rows,
        bytes,
        sha256,
        longest_record: longest,
        engine: plan.engine.clone(),
        partitions: plan.partitions.clone(),
        columns,
        primary_key: plan.primary_key.clone(),
        generated_columns: plan.generated.clone(),
        auto_increment: plan.auto_increment.as_ref().map(|(column, next)| {
            manifest::AutoIncrement {
                column: column.clone(),
                next: *next,
            }
        }),
        warnings,
        filter: plan.filter.clone(),
        query: plan.query.clone(),
        dropped_columns: plan.dropped.clone(),
        helper_columns: plan.helpers.clone(),
        parts: part_entries,
        delta: None,
        counts: plan
            .counts
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let n = parts.iter().filter_map(|p| p.counts.get(i)).sum();
                (name.clone(), n)
            })
            .filter(|_| parts.iter().all(|p| p.counts.len() == plan.counts.len()))
            .collect(),
    }
}

/// A dataset's manifest entry before it is read (`migrate` plans the import from it):
/// its files, columns and rules, with no facts and no counts yet.
pub fn provisional_entry(plan: &TablePlan, files: Vec<String>) -> TableEntry {
    let empty = PartWritten {
        table: plan.name.clone(),
        part: 1,
        file: files.first().cloned().unwrap_or_default(),
        range: String::new(),
        facts: Facts {
            columns: plan
                .columns
                .iter()
                .map(|c| ColumnFacts {
                    geometry: (c.check == crate::codec::encode::Check::Geometry).then(Vec::new),
                    ..ColumnFacts::default()
                })
                .collect(),
            ..Facts::default()
        },
        bytes: 0,
        sha256: String::new(),
        counts: Vec::new(),
    };
    let mut entry = table_entry(plan, vec![empty]);
    entry.longest_record = None;
    if files.len() > 1 {
        entry.parts = files
            .iter()
            .map(|f| PartEntry {
                file: f.clone(),
                rows: 0,
                bytes: 0,
                sha256: String::new(),
                longest_record: None,
                range: String::new(),
            })
            .collect();
    }
    entry
}

/// Everything about the export that is not a table.
#[derive(Debug, Clone)]
pub struct About {
    pub profile: String,
    pub mapping: Option<manifest::MappingRef>,
    pub source: manifest::Source,
    pub container: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub timestamp: String,
    pub snapshot: Snapshot,
    pub excluded: BTreeMap<String, String>,
}

/// The manifest of a finished export.
pub fn manifest(about: About, entries: Vec<TableEntry>) -> Manifest {
    let mut tables = BTreeMap::new();
    let mut warnings = Vec::new();
    for t in entries {
        for w in &t.warnings {
            warnings.push(format!("table `{}`: {w}", t.name));
        }
        tables.insert(t.name.clone(), t);
    }
    let total_rows = tables.values().map(|t: &TableEntry| t.rows).sum();
    let total_bytes = tables.values().map(|t: &TableEntry| t.bytes).sum();
    Manifest {
        format_version: manifest::FORMAT_VERSION,
        tool: manifest::Tool {
            name: "pgconverge".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        profile: about.profile,
        mapping: about.mapping,
        export_info: manifest::ExportInfo {
            timestamp: about.timestamp,
            source_database: about.source.database.clone(),
            source_type: about.source.kind.clone(),
            container: about.container,
        },
        source: about.source,
        started_at: about.started_at,
        finished_at: about.finished_at,
        snapshot: about.snapshot,
        csv: manifest::Dialect::current(),
        summary: manifest::Summary {
            total_tables: tables.len() as u64,
            total_rows,
            total_bytes,
        },
        tables,
        excluded_tables: about.excluded,
        warnings,
        kind: None,
        export_id: None,
        position: None,
        delta: None,
        delta_full_copy: false,
        cascades: None,
    }
}

/// What `export` reports (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub export_dir: String,
    pub format_version: u32,
    pub profile: String,
    pub source_database: String,
    pub tables: Vec<TableReport>,
    pub excluded_tables: BTreeMap<String, String>,
    pub total_rows: u64,
    pub total_bytes: u64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub parts: usize,
    pub warnings: Vec<String>,
    /// Values rewritten by the encoding rules: (what, how many), non-zero only.
    #[serde(skip)]
    pub rewrites: Vec<(&'static str, u64)>,
    /// The mapping's `count` rules: how many exported rows each held for.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

pub fn report(export_dir: &str, m: &Manifest) -> Report {
    Report {
        export_dir: export_dir.to_string(),
        format_version: m.format_version,
        profile: m.profile.clone(),
        source_database: m.source.database.clone(),
        tables: m
            .tables
            .values()
            .map(|t| {
                let sum =
                    |f: fn(&ColumnStats) -> u64| t.columns.iter().map(|c| f(&c.stats)).sum::<u64>();
                let rewrites = [
                    ("''→NULL uuid", sum(|s| s.empty_uuid_to_null)),
                    ("zero date→NULL", sum(|s| s.zero_date_to_null)),
                    (
                        "fixed",
                        sum(|s| {
                            s.nul_stripped
                                + s.invalid_utf8_replaced
                                + s.json_nul_dropped
                                + s.unconvertible_kept
                        }),
                    ),
                ]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect();
                TableReport {
                    table: t.name.clone(),
                    rows: t.rows,
                    bytes: t.bytes,
                    parts: t.parts.len().max(1),
                    warnings: t.warnings.clone(),
                    rewrites,
                    counts: t.counts.clone(),
                }
            })
            .collect(),
        excluded_tables: m.excluded_tables.clone(),
        total_rows: m.summary.total_rows,
        total_bytes: m.summary.total_bytes,
        warnings: m.warnings.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_covers_innodb_and_every_postgresql_table() {
        for (engine, covered) in [
            ("InnoDB", true),
            ("innodb", true),
            ("", true),
            ("partitioned", true),
            ("MyISAM", false),
            ("Aria", false),
            ("MEMORY", false),
        ] {
            assert_eq!(snapshot_covers(engine), covered, "{engine}");
        }
    }
}
