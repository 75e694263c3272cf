//! PURE: the refusals an import makes before it writes anything. Every CSV column must
//! land in a writable target column, every NOT NULL target column without a default must
//! get values, and the manifest's facts (NULLs written, non-UUID values) must fit the
//! target's columns; and what `TRUNCATE ... CASCADE` would reach beyond the import.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::catalog::{ForeignKey, PgTable};
use crate::import::fixes::{MappingFix, Problem};
use crate::store::manifest::{ColumnEntry, TableSpec};

/// One dataset's columns as they meet their target table.
pub struct Columns<'a> {
    pub dataset: &'a str,
    pub table: &'a str,
    pub spec: &'a TableSpec,
    /// The CSV header (source names) and each column's target name.
    pub header: &'a [String],
    pub targets: &'a [String],
    /// Whether each CSV column is written as it is (false: a `set` replaces it).
    pub keep: &'a [bool],
    /// Target columns the mapping's `set` computes.
    pub computed: &'a [String],
    /// Loaded with the target's triggers firing (`triggers = "fire"`).
    pub fire: bool,
}

/// Check one dataset's columns (its CSV header under target names, its manifest facts,
/// the mapping's `set` columns) against its target table; problems go to `errors`.
pub fn columns(
    c: &Columns<'_>,
    target: &PgTable,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
    fixes: &mut Vec<MappingFix>,
) {
    let t = c.table;
    let facts: BTreeMap<&str, &ColumnEntry> = c
        .spec
        .columns
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    for ((h, name), keep) in c.header.iter().zip(c.targets).zip(c.keep) {
        if c.spec.helpers.contains(h) {
            // Exported for a `set` to read; never inserted.
            continue;
        }
        let shown = if h == name {
            format!("`{h}`")
        } else {
            format!("`{h}` (renamed `{name}`)")
        };
        let Some(col) = target.columns.iter().find(|x| &x.name == name) else {
            let cut = crate::db::sql::pg::truncated_identifier(name)
                .filter(|cut| target.columns.iter().any(|x| x.name == *cut))
                .map(|cut| format!("; PostgreSQL cut it to `{cut}` (63 bytes)"))
                .unwrap_or_default();
            errors.push(format!(
                "table `{t}`: the CSV column {shown} has no column of that name in the target \
                 (names are case-sensitive; the target has: {}){cut}; rename it with \
                 [tables.{}] columns = {{ {} = \"...\" }}, or leave it out with drop",
                target
                    .columns
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                crate::mapping::file::quote_key(c.dataset),
                crate::mapping::file::quote_key(h),
            ));
            continue;
        };
        if !keep {
            // A `set` computes it: the expression answers for NULLs and types.
            continue;
        }
        if col.generated {
            errors.push(format!(
                "table `{t}`, column `{name}`: a generated column in the target, which COPY cannot fill"
            ));
        }
        let Some(f) = facts.get(h.as_str()) else {
            continue;
        };
        let s = &f.stats;
        if col.not_null && s.nulls_written > 0 {
            let mut why = Vec::new();
            if s.empty_uuid_to_null > 0 {
                why.push(format!(
                    "{} in char(36)",
                    match s.empty_uuid_to_null {
                        1 => "1 was ''".to_string(),
                        n => format!("{n} were ''"),
                    }
                ));
                fixes.push(MappingFix {
                    dataset: c.dataset.to_string(),
                    source_column: h.clone(),
                    target_column: name.clone(),
                    rows: s.empty_uuid_to_null,
                    problem: Problem::EmptyIntoUuid,
                });
            }
            if s.zero_date_to_null > 0 {
                why.push(match s.zero_date_to_null {
                    1 => "1 was a zero date".to_string(),
                    n => format!("{n} were zero dates"),
                });
                fixes.push(MappingFix {
                    dataset: c.dataset.to_string(),
                    source_column: h.clone(),
                    target_column: name.clone(),
                    rows: s.zero_date_to_null,
                    problem: Problem::ZeroDate,
                });
            }
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join(", "))
            };
            let samples = if f.null_samples.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", f.null_samples.join("; "))
            };
            errors.push(format!(
                "table `{t}`, column `{name}`: {} in the export{why} but the target column is NOT NULL{samples}",
                crate::report::count(s.nulls_written, "NULL")
            ));
        }
    }
    if !c.fire && !target.replica_triggers.is_empty() {
        let (what, fires, it) = match target.replica_triggers.len() {
            1 => ("trigger", "fires", "it changes or adds"),
            _ => ("triggers", "fire", "they change or add"),
        };
        let w = format!(
            "table `{t}`: {what} {} {fires} while it loads, though the import turns the \
             target's triggers off (session_replication_role = replica): what {it} is not \
             the export's (`verify --deep` compares the values; `ALTER TABLE {} \
             DISABLE TRIGGER name` for the load if it should not run)",
            target.replica_triggers.join(", "),
            crate::db::sql::pg::ident(t),
        );
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    for col in &target.columns {
        let fillable = col.has_default || col.generated || !col.identity.is_empty();
        let given = c.targets.contains(&col.name) || c.computed.contains(&col.name);
        // A BEFORE INSERT trigger that fires may fill it (a tsvector, an audit column);
        // if it does not, the COPY fails and nothing is kept.
        let by_trigger = c.fire && !target.insert_triggers.is_empty();
        if col.not_null && !fillable && !given && by_trigger {
            warnings.push(format!(
                "table `{t}`, column `{}`: NOT NULL without a default and no values in the \
                 export: left to trigger {} (triggers = \"fire\"); if it does not fill it, \
                 the COPY fails and nothing is kept",
                col.name,
                target.insert_triggers.join(", ")
            ));
        }
        if col.not_null && !fillable && !given && !by_trigger {
            errors.push(format!(
                "table `{t}`, column `{}`: NOT NULL without a default in the target, and the \
                 export has no values for it (give it one with [tables.{}] set)",
                col.name, c.dataset
            ));
        }
    }
}

/// Tables outside `imported` (in any schema) that `TRUNCATE ... CASCADE` of the imported
/// tables would also empty: everything that references them, transitively.
pub fn cascade_reach(
    fks: &[ForeignKey],
    schema: &str,
    imported: &[String],
) -> Vec<(String, String)> {
    let mut reached: BTreeSet<(String, String)> = imported
        .iter()
        .map(|t| (schema.to_string(), t.clone()))
        .collect();
    loop {
        let mut grew = false;
        for fk in fks {
            let parent = (fk.parent_schema.clone(), fk.parent.clone());
            let child = (fk.child_schema.clone(), fk.child.clone());
            if reached.contains(&parent) && !reached.contains(&child) {
                reached.insert(child);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    reached
        .into_iter()
        .filter(|(s, t)| !(s == schema && imported.contains(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            name: format!("{child}_{parent}_fk"),
            child_schema: "public".into(),
            child: child.into(),
            child_columns: vec!["pid".into()],
            parent_schema: "public".into(),
            parent: parent.into(),
            parent_columns: vec!["id".into()],
            deferrable: false,
        }
    }

    #[test]
    fn cascade_follows_references_transitively() {
        let fks = vec![
            fk("child", "parent"),
            fk("grandchild", "child"),
            fk("other", "unrelated"),
        ];
        let reach = cascade_reach(&fks, "public", &["parent".to_string()]);
        assert_eq!(
            reach,
            vec![
                ("public".to_string(), "child".to_string()),
                ("public".to_string(), "grandchild".to_string())
            ]
        );
        assert!(
            cascade_reach(
                &fks,
                "public",
                &["parent".into(), "child".into(), "grandchild".into()]
            )
            .is_empty()
        );
    }
}
