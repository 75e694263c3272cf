//! Profiles are data, not code paths: each names a source database, a target database,
//! tables never to copy, tables to skip when the target lacks them, and per-column
//! overrides of the encoding rules. Any other name is a plain database with no rules.
//! Pure: the database names come from `Layers` passed in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::encode::Override;
use crate::config::Layers;
use crate::hint::WithHint;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnOverride {
    pub table: String,
    pub column: String,
    pub rule: Override,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// `alkemio`, `kratos`, or the database name for a plain database.
    pub name: String,
    pub source_db: String,
    pub target_db: String,
    /// Owned by the target's own schema tool: never exported.
    pub never_copy: Vec<String>,
    /// Skipped at import (not an error, not a warning) when the target lacks them.
    pub skip_if_absent: Vec<String>,
    pub column_overrides: Vec<ColumnOverride>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Profile {
    /// `alkemio` and `kratos` are the known profiles; anything else is a database name.
    pub fn resolve(name: &str, layers: &Layers) -> Profile {
        match name {
            "alkemio" => {
                let db = layers.get_or(None, "ALKEMIO_DB", "alkemio").0;
                Profile {
                    name: name.into(),
                    source_db: db.clone(),
                    target_db: db,
                    never_copy: strings(&["migrations_typeorm", "query-result-cache"]),
                    skip_if_absent: strings(&["challenge", "opportunity"]),
                    column_overrides: vec![
                        ColumnOverride {
                            table: "whiteboard".into(),
                            column: "content".into(),
                            rule: Override::Base64,
                        },
                        ColumnOverride {
                            table: "callout_contribution_defaults".into(),
                            column: "whiteboardContent".into(),
                            rule: Override::Base64,
                        },
                    ],
                }
            }
            "kratos" => {
                let db = layers.get_or(None, "KRATOS_DB", "kratos").0;
                Profile {
                    name: name.into(),
                    source_db: db.clone(),
                    target_db: db,
                    never_copy: strings(&[
                        "schema_migration",
                        "schema_migration_pop_legacy",
                        "_kratos_migrations",
                    ]),
                    skip_if_absent: vec![],
                    column_overrides: vec![],
                }
            }
            db => Profile {
                name: db.into(),
                source_db: db.into(),
                target_db: db.into(),
                never_copy: vec![],
                skip_if_absent: vec![],
                column_overrides: vec![],
            },
        }
    }

    /// The override for one column, if the profile has one.
    pub fn override_for(&self, table: &str, column: &str) -> Option<Override> {
        self.column_overrides
            .iter()
            .find(|o| o.table == table && o.column == column)
            .map(|o| o.rule)
    }
}

/// The tables an export takes, and why the others are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tables: Vec<String>,
    pub excluded: BTreeMap<String, String>,
}

impl Profile {
    /// Apply `--tables` (each must exist), the profile's never-copy list and `--exclude`
    /// to the source's tables. Pure.
    pub fn select(
        &self,
        available: &[String],
        only: &[String],
        exclude: &[String],
    ) -> anyhow::Result<Selection> {
        for t in only {
            if !available.contains(t) {
                return Err(anyhow::anyhow!(
                    "table `{t}` (from --tables) does not exist in database `{}`",
                    self.source_db
                ))
                .hint("table names are case-sensitive; list them with SHOW TABLES");
            }
        }
        let candidates: Vec<&String> = if only.is_empty() {
            available.iter().collect()
        } else {
            available.iter().filter(|t| only.contains(t)).collect()
        };
        let mut sel = Selection {
            tables: Vec::new(),
            excluded: BTreeMap::new(),
        };
        for t in candidates {
            if self.never_copy.contains(t) {
                sel.excluded.insert(
                    t.clone(),
                    format!(
                        "profile `{}`: never copied (the target's schema tool owns it)",
                        self.name
                    ),
                );
            } else if exclude.contains(t) {
                sel.excluded.insert(t.clone(), "--exclude".into());
            } else {
                sel.tables.push(t.clone());
            }
        }
        Ok(sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_profiles_read_their_database_variables() {
        let mut layers = Layers::default();
        layers
            .dotenv
            .insert("ALKEMIO_DB".into(), "alkemio_prod".into());
        let p = Profile::resolve("alkemio", &layers);
        assert_eq!(p.source_db, "alkemio_prod");
        assert!(p.never_copy.contains(&"query-result-cache".to_string()));
        assert_eq!(
            p.override_for("whiteboard", "content"),
            Some(Override::Base64)
        );
        assert_eq!(p.override_for("whiteboard", "id"), None);
        let k = Profile::resolve("kratos", &layers);
        assert_eq!(k.source_db, "kratos");
        assert!(k.never_copy.contains(&"schema_migration".to_string()));
        let plain = Profile::resolve("shop", &layers);
        assert_eq!(plain.source_db, "shop");
        assert!(plain.never_copy.is_empty() && plain.column_overrides.is_empty());
    }

    #[test]
    fn selection_applies_only_never_copy_and_exclude() {
        let p = Profile::resolve("alkemio", &Layers::default());
        let avail: Vec<String> = ["user", "space", "migrations_typeorm", "query-result-cache"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let s = p.select(&avail, &[], &["space".into()]).unwrap();
        assert_eq!(s.tables, vec!["user".to_string()]);
        assert_eq!(s.excluded.len(), 3);
        assert_eq!(s.excluded["space"], "--exclude");
        let s = p
            .select(&avail, &["user".into(), "migrations_typeorm".into()], &[])
            .unwrap();
        assert_eq!(s.tables, vec!["user".to_string()]);
        assert!(p.select(&avail, &["nope".into()], &[]).is_err());
    }
}
