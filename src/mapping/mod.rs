//! PURE: how a source maps onto a target. A [`Mapping`] is a mapping file (TOML, see
//! `file`) resolved for one run: a built-in profile (`builtin`), a file given with
//! `--map`, the copy an export stored (`mapping.toml`), or nothing at all (a plain
//! database: the identity mapping). Source-side keys act at export, target-side keys at
//! import; the names each refers to are checked against its side before any read or
//! write (`check_source` here, the import plan for the target).

pub mod builtin;
pub mod file;
pub mod hookfiles;
pub mod idents;
pub mod keys;
pub mod sqlcheck;
pub mod with;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow};

use crate::codec::encode::Override;
use crate::config::Layers;
use crate::hint::WithHint;
pub use file::{Hooks, MappingFile, SourceSide, TableMap, Triggers};

/// The name of the mapping file an export stores beside its CSV files.
pub const STORED: &str = "mapping.toml";

/// A mapping resolved for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The export's name: a built-in profile's, or the database's.
    pub name: String,
    pub source_db: String,
    pub target_db: String,
    pub file: MappingFile,
    /// The TOML as given, stored in the export; None for a plain database.
    pub text: Option<String>,
    /// Where it came from, for messages.
    pub origin: String,
    /// A built-in profile: tables it names may be absent from the source (an older
    /// schema of the same application), which is then only noted.
    pub builtin: bool,
}

/// The tables an export takes, and why the others are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tables: Vec<String>,
    pub excluded: BTreeMap<String, String>,
}

impl Mapping {
    /// The mapping for an export of `name`: the file given with `--map` (which replaces a
    /// built-in profile entirely), else the built-in profile of that name, else the
    /// identity mapping of database `name`.
    pub fn resolve(name: &str, map: Option<(&str, String)>, layers: &Layers) -> Result<Mapping> {
        let builtin = builtin::find(name);
        let profile_db = builtin.map(|b| layers.get_or(None, b.variable, b.default_db).0);
        match (map, builtin) {
            (Some((origin, text)), _) => {
                let file = MappingFile::parse(&text, origin)?;
                let source_db = file
                    .source_db
                    .clone()
                    .or(profile_db)
                    .unwrap_or_else(|| name.to_string());
                Ok(Mapping::new(
                    name,
                    source_db,
                    file,
                    Some(text),
                    origin,
                    false,
                ))
            }
            (None, Some(b)) => {
                let origin = format!("built-in profile `{}`", b.name);
                let file = MappingFile::parse(b.toml, &origin)?;
                let db = profile_db.unwrap_or_else(|| b.default_db.to_string());
                Ok(Mapping::new(
                    name,
                    db,
                    file,
                    Some(b.toml.into()),
                    &origin,
                    true,
                ))
            }
            (None, None) => Ok(Mapping::new(
                name,
                name.to_string(),
                MappingFile::default(),
                None,
                "no mapping",
                false,
            )),
        }
    }

    /// The mapping an export used, as the import reads it: `stored` is the export's
    /// `mapping.toml` (None for an export that has none: a plain database, or a build
    /// from before mapping files, whose built-in profile is then taken by name).
    pub fn stored(
        name: &str,
        source_db: &str,
        stored: Option<String>,
        layers: &Layers,
    ) -> Result<Mapping> {
        let Some(text) = stored else {
            let mut m = Mapping::resolve(name, None, layers)?;
            if m.text.is_none() {
                m.source_db = source_db.to_string();
                m.target_db = source_db.to_string();
            }
            return Ok(m);
        };
        let origin = format!("{STORED} of the export");
        let file = MappingFile::parse(&text, &origin)?;
        let builtin = builtin::find(name).filter(|b| b.toml == text);
        // A built-in profile's target is its variable's database, read now.
        let target_default = builtin.map(|b| layers.get_or(None, b.variable, b.default_db).0);
        let mut m = Mapping::new(
            name,
            source_db.to_string(),
            file,
            Some(text),
            &origin,
            builtin.is_some(),
        );
        if m.file.target_db.is_none()
            && let Some(db) = target_default
        {
            m.target_db = db;
        }
        Ok(m)
    }

    /// `import --map FILE` in place of the export's own mapping: allowed only when it
    /// reads the same data (identical source-side keys).
    pub fn replace_for_import(&self, origin: &str, text: String) -> Result<Mapping> {
        let file = MappingFile::parse(&text, origin)?;
        if file.source_side() != self.file.source_side() {
            let mine = serde_json::to_string(&self.file.source_side()).unwrap_or_default();
            let theirs = serde_json::to_string(&file.source_side()).unwrap_or_default();
            return Err(anyhow!(
                "mapping file {origin} reads different data than the export was made with \
                 ({}): its source-side keys (skip, where, query, drop, encode, never_copy) \
                 differ\n  export: {mine}\n  {origin}: {theirs}",
                self.origin
            ))
            .hint(format!(
                "export again with --map {origin}, or change only target-side keys \
                 (target, columns, set, triggers, hooks, target_db, schema, skip_if_absent)"
            ));
        }
        // It replaces the stored mapping entirely: its own target_db, or the default.
        Ok(Mapping::new(
            &self.name,
            self.source_db.clone(),
            file,
            Some(text),
            origin,
            false,
        ))
    }

    /// What to say when the source URL names database `url_db` and it is not the one the
    /// export is named after (`export v1 --source-url postgres://.../v2` files under `v1/`
    /// what it reads from `v2`). A built-in profile's name is not a database's, so it is
    /// never said for one.
    pub fn url_database_mismatch(&self, url_db: &str) -> Option<String> {
        if self.builtin || (url_db == self.name && url_db == self.source_db) {
            return None;
        }
        let mapped = if self.source_db != self.name {
            format!(" (the mapping's source_db is `{}`)", self.source_db)
        } else {
            String::new()
        };
        Some(format!(
            "the source URL names database `{url_db}`, which is read, but the export is named \
             `{}`{mapped}: its files go under `{}/` (hint: name the export after the database, \
             or remove the database from the URL)",
            self.name, self.name
        ))
    }

    fn new(
        name: &str,
        source_db: String,
        file: MappingFile,
        text: Option<String>,
        origin: &str,
        builtin: bool,
    ) -> Mapping {
        Mapping {
            name: name.to_string(),
            target_db: file.target_db.clone().unwrap_or_else(|| source_db.clone()),
            source_db,
            file,
            text,
            origin: origin.to_string(),
            builtin,
        }
    }

    pub fn never_copy(&self) -> &[String] {
        &self.file.never_copy
    }

    pub fn skip_if_absent(&self) -> &[String] {
        &self.file.skip_if_absent
    }

    pub fn hooks(&self) -> &Hooks {
        &self.file.import
    }

    /// The target schema: `flag` (`--schema`), else the mapping's `schema`, else public.
    pub fn target_schema(&self, flag: Option<&str>) -> String {
        flag.or(self.file.schema.as_deref())
            .unwrap_or("public")
            .to_string()
    }

    /// The `[tables.X]` section of a dataset, if there is one.
    pub fn table(&self, dataset: &str) -> Option<&TableMap> {
        self.file.tables.get(dataset)
    }

    /// The encoding override of one source column, if the mapping has one.
    pub fn override_for(&self, dataset: &str, column: &str) -> Option<Override> {
        self.table(dataset)?.encode.get(column).copied()
    }

    /// The target table a dataset loads into: its `target`, else its name (in
    /// snake_case under `rename = "snake_case"`).
    /// The datasets some `set` follows through `key_of` (their keys are in key maps).
    pub fn followed_datasets(&self) -> BTreeSet<String> {
        self.file
            .tables
            .values()
            .flat_map(|t| t.set.values())
            .flat_map(|e| keys::followed(e))
            .collect()
    }

    pub fn target_table(&self, dataset: &str) -> String {
        self.table(dataset)
            .and_then(|t| t.target.clone())
            .unwrap_or_else(|| self.renamed(dataset))
    }

    /// The target name of a source column of a dataset: its `columns` rename, else its
    /// name (in snake_case under `rename = "snake_case"`).
    pub fn target_column(&self, dataset: &str, column: &str) -> String {
        self.table(dataset)
            .and_then(|t| t.columns.get(column).cloned())
            .unwrap_or_else(|| self.renamed(column))
    }

    fn renamed(&self, name: &str) -> String {
        match self.file.rename {
            Some(file::Rename::SnakeCase) => file::snake_case(name),
            None => name.to_string(),
        }
    }

    /// A PostgreSQL source's schema.
    pub fn source_schema(&self) -> &str {
        self.file.source_schema.as_deref().unwrap_or("public")
    }

    /// The derived datasets (`query`), by name, each with the `[with]` entries it reads.
    pub fn queries(&self) -> impl Iterator<Item = (&str, String)> {
        self.file.tables.iter().filter_map(|(name, t)| {
            t.query
                .as_deref()
                .filter(|_| !t.skip)
                .map(|q| (name.as_str(), self.composed(q)))
        })
    }

    /// Dataset `dataset`'s `query` as the source runs it (with its `[with]` entries).
    pub fn query(&self, dataset: &str) -> Option<String> {
        self.table(dataset)
            .and_then(|t| t.query.as_deref())
            .map(|q| self.composed(q))
    }

    /// A cycle among the `[with]` entries is refused when the file is read.
    fn composed(&self, query: &str) -> String {
        with::compose(&self.file.with, query).unwrap_or_else(|_| query.to_string())
    }

    /// Whether a dataset loads with the target's triggers firing.
    /// The byte order of a 16-byte source column headed for `uuid` (`uuid_bytes`).
    pub fn uuid_order(&self, dataset: &str, column: &str) -> crate::codec::adapt::UuidOrder {
        self.table(dataset)
            .and_then(|t| t.uuid_bytes.get(column).copied())
            .unwrap_or_default()
    }

    /// Whether the mapping accepts that a source column's values are rounded to the
    /// target's precision or scale (`round`).
    pub fn rounds(&self, dataset: &str, column: &str) -> bool {
        self.table(dataset)
            .is_some_and(|t| t.round.iter().any(|c| c == column))
    }

    pub fn fires(&self, dataset: &str) -> bool {
        self.table(dataset)
            .is_some_and(|t| t.triggers == Some(Triggers::Fire))
    }

    /// Apply `--tables` (each must exist), `skip`, `never_copy` and `--exclude` to the
    /// source's tables and the mapping's queries.
    pub fn select(
        &self,
        available: &[String],
        only: &[String],
        exclude: &[String],
    ) -> Result<Selection> {
        let mut datasets: Vec<String> = available.to_vec();
        for (name, _) in self.queries() {
            if !datasets.iter().any(|d| d == name) {
                datasets.push(name.to_string());
            }
        }
        for t in only {
            if !datasets.contains(t) {
                return Err(anyhow!(
                    "table `{t}` (from --tables) does not exist in database `{}`",
                    self.source_db
                ))
                .hint("table names are case-sensitive; list them with SHOW TABLES");
            }
        }
        let mut sel = Selection {
            tables: Vec::new(),
            excluded: BTreeMap::new(),
        };
        for t in datasets {
            if !only.is_empty() && !only.contains(&t) {
                continue;
            }
            let derived = self.table(&t).is_some_and(|m| m.query.is_some());
            if self.never_copy().contains(&t) && !derived {
                sel.excluded.insert(
                    t.clone(),
                    format!(
                        "{}: never copied (the target's schema tool owns it)",
                        self.origin
                    ),
                );
            } else if self.table(&t).is_some_and(|m| m.skip) {
                sel.excluded
                    .insert(t.clone(), format!("{}: skip = true", self.origin));
            } else if exclude.contains(&t) {
                sel.excluded.insert(t.clone(), "--exclude".into());
            } else {
                sel.tables.push(t);
            }
        }
        Ok(sel)
    }

    /// Check the names the mapping gives for the source side against what the source
    /// has: `columns` holds each table's (or query's) column names. Returns the errors
    /// and, for a built-in profile naming a table this source lacks, notes.
    pub fn check_source(
        &self,
        columns: &BTreeMap<String, Vec<String>>,
    ) -> (Vec<String>, Vec<String>) {
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        for (name, t) in &self.file.tables {
            if t.skip {
                continue;
            }
            let here = format!("{}: [tables.{}]", self.origin, file::quote_key(name));
            let Some(cols) = columns.get(name) else {
                if t.query.is_none() {
                    if self.builtin {
                        notes.push(format!(
                            "{here}: the source has no table `{name}`; its rules do not apply"
                        ));
                    } else {
                        errors.push(format!(
                            "{here}: the source database `{}` has no table `{name}` \
                             (a derived dataset needs `query`)",
                            self.source_db
                        ));
                    }
                }
                continue;
            };
            let known: BTreeSet<&str> = cols.iter().map(String::as_str).collect();
            let mut named: Vec<(&str, &str)> = Vec::new();
            named.extend(t.drop.iter().map(|c| ("drop", c.as_str())));
            named.extend(t.encode.keys().map(|c| ("encode", c.as_str())));
            named.extend(t.columns.keys().map(|c| ("columns", c.as_str())));
            // A dropped column a `set` names is still read (a helper column).
            let read = |c: &String| !t.drop.contains(c) || t.helper(c);
            if !cols.is_empty() && !cols.iter().any(read) {
                errors.push(format!(
                    "{here}: `drop` names every column of `{name}` ({}): no value would be \
                     read (keep at least one, or leave the table out with `skip = true`)",
                    cols.join(", ")
                ));
            }
            for (key, c) in named {
                if !known.contains(c) {
                    let what = if t.query.is_some() {
                        "its query returns no column"
                    } else {
                        "the source table has no column"
                    };
                    errors.push(format!(
                        "{here}: `{key}` names `{c}`, but {what} `{c}` (it has: {})",
                        cols.join(", ")
                    ));
                }
            }
        }
        (errors, notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_url_naming_another_database_is_said_unless_a_profile() {
        let layers = Layers::default();
        let plain = Mapping::resolve("v1v2_zz", None, &layers).unwrap();
        let said = plain.url_database_mismatch("v1v2_src").unwrap();
        assert!(
            said.contains("`v1v2_src`") && said.contains("`v1v2_zz/`"),
            "{said}"
        );
        assert_eq!(plain.url_database_mismatch("v1v2_zz"), None);
        let profile = Mapping::resolve("alkemio", None, &layers).unwrap();
        assert_eq!(profile.url_database_mismatch("alkemio_prod_copy"), None);
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn built_in_profiles_are_mapping_files_reading_their_database_variables() {
        let mut layers = Layers::default();
        layers
            .dotenv
            .insert("ALKEMIO_DB".into(), "alkemio_prod".into());
        let p = Mapping::resolve("alkemio", None, &layers).unwrap();
        assert!(p.builtin);
        assert_eq!(p.source_db, "alkemio_prod");
        assert_eq!(p.target_db, "alkemio_prod");
        assert!(p.never_copy().contains(&"query-result-cache".to_string()));
        assert_eq!(
            p.override_for("whiteboard", "content"),
            Some(Override::Base64)
        );
        assert_eq!(
            p.override_for("callout_contribution_defaults", "whiteboardContent"),
            Some(Override::Base64)
        );
        assert_eq!(p.override_for("whiteboard", "id"), None);
        assert_eq!(p.skip_if_absent(), ["challenge", "opportunity"]);
        let k = Mapping::resolve("kratos", None, &layers).unwrap();
        assert_eq!(k.source_db, "kratos");
        assert!(k.never_copy().contains(&"schema_migration".to_string()));
        let plain = Mapping::resolve("shop", None, &layers).unwrap();
        assert_eq!(plain.source_db, "shop");
        assert!(plain.text.is_none() && plain.file == MappingFile::default());
    }

    #[test]
    fn a_map_file_replaces_the_profile() {
        let layers = Layers::default();
        let m = Mapping::resolve(
            "alkemio",
            Some(("m.toml", "target_db = \"v3\"\n".into())),
            &layers,
        )
        .unwrap();
        assert!(!m.builtin);
        assert_eq!(
            (m.source_db.as_str(), m.target_db.as_str()),
            ("alkemio", "v3")
        );
        assert!(m.never_copy().is_empty());
        let m = Mapping::resolve(
            "x",
            Some(("m.toml", "source_db = \"shop\"\n".into())),
            &layers,
        )
        .unwrap();
        assert_eq!(
            (m.source_db.as_str(), m.target_db.as_str()),
            ("shop", "shop")
        );
    }

    #[test]
    fn selection_applies_only_skip_never_copy_exclude_and_adds_queries() {
        let text = r#"
never_copy = ["migrations_typeorm"]
[tables.cache]
skip = true
[tables.teachers]
query = "SELECT 1 AS id"
"#;
        let m = Mapping::resolve("x", Some(("m", text.into())), &Layers::default()).unwrap();
        let avail = strings(&["user", "space", "migrations_typeorm", "cache"]);
        let s = m.select(&avail, &[], &strings(&["space"])).unwrap();
        assert_eq!(s.tables, strings(&["user", "teachers"]));
        assert_eq!(s.excluded.len(), 3);
        assert_eq!(s.excluded["space"], "--exclude");
        assert_eq!(s.excluded["cache"], "m: skip = true");
        let s = m
            .select(&avail, &strings(&["user", "migrations_typeorm"]), &[])
            .unwrap();
        assert_eq!(s.tables, strings(&["user"]));
        assert!(m.select(&avail, &strings(&["nope"]), &[]).is_err());
    }

    #[test]
    fn source_names_are_checked_and_a_profile_may_name_absent_tables() {
        let text = r#"
[tables.post]
drop = ["old", "gone"]
columns = { body = "content" }
[tables.nothere]
where = "x = 1"
[tables.q]
query = "SELECT 1 AS id"
encode = { blob = "base64" }
[tables.bare]
drop = ["id", "v"]
"#;
        let m = Mapping::resolve("x", Some(("m.toml", text.into())), &Layers::default()).unwrap();
        let mut cols = BTreeMap::new();
        cols.insert("post".to_string(), strings(&["id", "old", "body"]));
        cols.insert("q".to_string(), strings(&["id"]));
        cols.insert("bare".to_string(), strings(&["id", "v"]));
        let (errors, notes) = m.check_source(&cols);
        let all = errors.join("\n");
        assert!(notes.is_empty());
        assert!(all.contains("[tables.post]: `drop` names `gone`, but the source table has no column `gone` (it has: id, old, body)"), "{all}");
        assert!(
            all.contains("[tables.nothere]: the source database `x` has no table `nothere`"),
            "{all}"
        );
        assert!(
            all.contains(
                "[tables.q]: `encode` names `blob`, but its query returns no column `blob`"
            ),
            "{all}"
        );
        // A SELECT of no column: refused before reading, naming the way out.
        assert!(
            all.contains("[tables.bare]: `drop` names every column of `bare` (id, v): no value would be read (keep at least one, or leave the table out with `skip = true`)"),
            "{all}"
        );
        assert_eq!(errors.len(), 4, "{all}");
        let alk = Mapping::resolve("alkemio", None, &Layers::default()).unwrap();
        let (errors, notes) = alk.check_source(&BTreeMap::new());
        assert!(errors.is_empty());
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn import_may_swap_the_mapping_only_for_one_reading_the_same_data() {
        let stored = "[tables.post]\nwhere = \"deleted = 0\"\n";
        let m = Mapping::stored("shop", "shop", Some(stored.into()), &Layers::default()).unwrap();
        let ok = m
            .replace_for_import(
                "new.toml",
                "target_db = \"v3\"\n[tables.post]\nwhere = \"deleted = 0\"\ntarget = \"article\"\n"
                    .into(),
            )
            .unwrap();
        assert_eq!(ok.target_table("post"), "article");
        assert_eq!(ok.target_db, "v3");
        let err = m
            .replace_for_import("new.toml", "[tables.post]\nwhere = \"true\"\n".into())
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("reads different data"),
            "{err:#}"
        );
    }
}
