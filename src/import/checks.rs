//! PURE: the refusals an import makes before it writes anything. Every CSV column must
//! land in a writable target column, every NOT NULL target column without a default must
//! get values, and the manifest's facts (NULLs written, non-UUID values) must fit the
//! target's columns; and what `TRUNCATE ... CASCADE` would reach beyond the import.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::catalog::{ForeignKey, PgTable};
use crate::store::manifest::{ColumnEntry, TableSpec};

/// Check one table's columns (its CSV `header`, its manifest facts) against its target;
/// problems are appended to `errors`.
pub fn columns(spec: &TableSpec, header: &[String], target: &PgTable, errors: &mut Vec<String>) {
    let t = &spec.name;
    let facts: BTreeMap<&str, &ColumnEntry> =
        spec.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    for h in header {
        let Some(col) = target.columns.iter().find(|c| &c.name == h) else {
            errors.push(format!(
                "table `{t}`: the CSV column `{h}` has no column of that name in the target \
                 (names are case-sensitive; the target has: {})",
                target
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        if col.generated {
            errors.push(format!(
                "table `{t}`, column `{h}`: a generated column in the target, which COPY cannot fill"
            ));
        }
        let Some(f) = facts.get(h.as_str()) else {
            continue;
        };
        let s = &f.stats;
        if col.not_null && s.nulls_written > 0 {
            let mut why = Vec::new();
            if s.empty_uuid_to_null > 0 {
                why.push(format!("{} were '' in char(36)", s.empty_uuid_to_null));
            }
            if s.zero_date_to_null > 0 {
                why.push(format!("{} were zero dates", s.zero_date_to_null));
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
                "table `{t}`, column `{h}`: {} NULLs in the export{why} but the target column is NOT NULL{samples}",
                s.nulls_written
            ));
        }
    }
    for col in &target.columns {
        let fillable = col.has_default || col.generated || !col.identity.is_empty();
        if col.not_null && !fillable && !header.contains(&col.name) {
            errors.push(format!(
                "table `{t}`, column `{}`: NOT NULL without a default in the target, and the export has no values for it",
                col.name
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
