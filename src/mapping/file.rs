//! PURE: the mapping file (TOML) as written: its keys, parsed strictly (an unknown key is
//! an error naming its line), and the checks that need nothing but the file itself.
//! Which names exist is checked against the source at export (`mapping::check_source`)
//! and against the target at import (`import::plan`).

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::codec::adapt::UuidOrder;
use crate::codec::encode::Override;
use crate::hint::WithHint;
use crate::mapping::sqlcheck;

/// A mapping file. Every key is optional; an empty file is the identity mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// The source database (default: the export argument; a built-in profile's variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_db: Option<String>,
    /// The target database (default: the source database's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_db: Option<String>,
    /// The target schema (default `public`; `import --schema` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A PostgreSQL source's schema (default `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_schema: Option<String>,
    /// `snake_case`: every table and column not renamed explicitly is renamed so
    /// (Prisma's `"createdAt"` -> `created_at`, `"User"` -> `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename: Option<Rename>,
    /// Source tables never exported (the target's schema tool owns them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_copy: Vec<String>,
    /// Target tables quietly skipped at import when the target lacks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_if_absent: Vec<String>,
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub import: Hooks,
    /// `[with]`: named source SQL (`name = "SELECT ..."`) every `query` may read as a
    /// common table expression, so one computation is written once.
    #[serde(default, rename = "with", skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, String>,
    /// Per dataset (a source table, or a `query`), by its SOURCE name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableMap>,
}

/// How names not renamed explicitly are renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rename {
    SnakeCase,
}

/// `createdAt` -> `created_at`, `User` -> `user`, `HTTPServer` -> `http_server`,
/// `userID` -> `user_id`; digits stay with what precedes them (`line2Id` -> `line2_id`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `[import]`: SQL run on the target around the load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Each returns one boolean; false (or an error) refuses the import before any write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// In the import transaction, after TRUNCATE, before the first COPY.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// In the transaction, after the last COPY and the sequence resets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// A delta's import: before its deletes (`before` never runs for a delta).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta_before: Vec<String>,
    /// A delta's import: after its upserts, cascades and sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta_after: Vec<String>,
    /// Target tables recognised as a framework's migration history that are copied all
    /// the same (by default the target's own history is kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_history: Vec<String>,
    /// Target tables the `after` hooks rewrite on purpose: deep verify compares them by
    /// count only, and says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_by_hooks: Vec<String>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.require.is_empty()
            && self.before.is_empty()
            && self.after.is_empty()
            && self.delta_before.is_empty()
            && self.delta_after.is_empty()
            && self.copy_history.is_empty()
            && self.changed_by_hooks.is_empty()
    }
}

/// `[tables.X]`: how one dataset travels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMap {
    /// Neither exported nor imported.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip: bool,
    /// A source-dialect row filter, applied at export.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// A source-dialect query exported instead of the table (a derived dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A `query` dataset's key columns, recorded as its primary key: its rows are named
    /// by them, and `key_of` finds them by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Source columns not exported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
    /// Export-side overrides of the encoding rule, per source column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encode: BTreeMap<String, Override>,
    /// The target table (default: the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Column renames, source -> target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// Target columns computed by PostgreSQL, by target name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// `fire`: load with the target's own triggers and foreign-key checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Triggers>,
    /// The byte order of 16-byte source columns headed for `uuid`, per source column:
    /// `straight` (the default) or `swapped` (MySQL 8's `UUID_TO_BIN(x, 1)`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uuid_bytes: BTreeMap<String, UuidOrder>,
    /// Source columns whose values may be rounded to the target column's precision or
    /// scale (refused before any write otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub round: Vec<String>,
    /// Counting rules: a name per boolean expression (the source's SQL), evaluated at
    /// export over the dataset's rows; each count goes to the manifest, the reports and
    /// the run log.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub count: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Triggers {
    /// `session_replication_role = origin` for this table's load.
    Fire,
    /// The default: loaded as a replica (no triggers, no foreign-key checks).
    Off,
}

/// The keys that decide what the export reads: two mappings with the same source side
/// read the same data, so an import may swap one for the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSide {
    pub source_schema: Option<String>,
    pub never_copy: Vec<String>,
    pub tables: BTreeMap<String, SourceTableSide>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceTableSide {
    pub skip: bool,
    pub filter: Option<String>,
    pub query: Option<String>,
    pub key: Vec<String>,
    pub drop: Vec<String>,
    pub encode: BTreeMap<String, Override>,
}

impl TableMap {
    /// Whether `column` is a helper: dropped, but named by one of the `set` expressions
    /// (still exported for them to read, never inserted).
    pub fn helper(&self, column: &str) -> bool {
        self.drop.iter().any(|d| d == column)
            && self
                .set
                .values()
                .any(|e| super::idents::mentions(e, column))
    }
}

impl MappingFile {
    /// Parse and check a mapping file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<MappingFile> {
        let file: MappingFile = toml::from_str(text)
            .map_err(|e| anyhow!("mapping file {origin}: {}", e.to_string().trim_end()))
            .hint("the keys are listed under \"Reference\" in docs/mapping.md")?;
        file.check()
            .map_err(|e| anyhow!("mapping file {origin}: {e}"))
            .hint("the keys are listed under \"Reference\" in docs/mapping.md")?;
        file.check_sql()
            .map_err(|e| anyhow!("mapping file {origin}: {e}"))
            .hint(
                "pgconverge runs the import in one transaction and commits it itself, after \
                 every check: hooks must not begin, end or change it (to load a table with its \
                 triggers, use triggers = \"fire\"); `set` and `where` are one expression and \
                 `query` one SELECT, without `;`",
            )?;
        Ok(file)
    }

    /// The SQL the file holds, judged before anything runs (`sqlcheck`): every problem,
    /// each naming its key and statement.
    fn check_sql(&self) -> Result<()> {
        let mut problems = Vec::new();
        for (what, list) in [
            ("require", &self.import.require),
            ("before", &self.import.before),
            ("after", &self.import.after),
            ("delta_before", &self.import.delta_before),
            ("delta_after", &self.import.delta_after),
        ] {
            for (i, sql) in list.iter().enumerate() {
                if let Err(e) = sqlcheck::hook(sql, what == "require") {
                    problems.push(format!("[import] {what} #{}: {e}", i + 1));
                }
            }
        }
        for (name, sql) in &self.with {
            if let Err(e) = sqlcheck::source_query(sql) {
                problems.push(format!("[with] {}: {e}", quote_key(name)));
            }
        }
        if let Err(e) = super::with::check(&self.with) {
            problems.push(e);
        }
        for (name, t) in &self.tables {
            let here = format!("[tables.{}]", quote_key(name));
            if let Some(Err(e)) = t.filter.as_deref().map(sqlcheck::source_expression) {
                problems.push(format!("{here} where: {e}"));
            }
            if let Some(Err(e)) = t.query.as_deref().map(sqlcheck::source_query) {
                problems.push(format!("{here} query: {e}"));
            }
            for (rule, expr) in &t.count {
                if rule.is_empty()
                    || !rule
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    problems.push(format!(
                        "{here} count `{rule}`: a rule's name is lowercase letters, digits and `_`"
                    ));
                }
                if let Err(e) = sqlcheck::source_expression(expr) {
                    problems.push(format!("{here} count `{rule}`: {e}"));
                }
            }
            for (col, expr) in &t.set {
                if let Err(e) = sqlcheck::target_expression(expr) {
                    problems.push(format!("{here} set `{col}`: {e}"));
                }
            }
        }
        match problems.len() {
            0 => Ok(()),
            _ => Err(anyhow!("{}", problems.join("; "))),
        }
    }

    /// What the file alone can tell is wrong.
    fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        let blank = |s: &str| s.trim().is_empty();
        for (what, list) in [
            ("require", &self.import.require),
            ("before", &self.import.before),
            ("after", &self.import.after),
            ("delta_before", &self.import.delta_before),
            ("delta_after", &self.import.delta_after),
        ] {
            if list.iter().any(|s| blank(s)) {
                problems.push(format!("[import] {what}: an empty statement"));
            }
        }
        for (name, t) in &self.tables {
            let here = format!("[tables.{}]", quote_key(name));
            if t.query.is_some() && t.filter.is_some() {
                problems.push(format!(
                    "{here}: `query` and `where` together; put the condition in the query"
                ));
            }
            if !t.key.is_empty() && t.query.is_none() {
                problems.push(format!(
                    "{here}: `key` names a `query` dataset's key; a table's is its primary key"
                ));
            }
            if t.query.as_deref().is_some_and(blank) || t.filter.as_deref().is_some_and(blank) {
                problems.push(format!("{here}: an empty `query` or `where`"));
            }
            for c in &t.drop {
                if t.columns.contains_key(c) {
                    problems.push(format!("{here}: column `{c}` is both dropped and renamed"));
                }
                if t.encode.contains_key(c) {
                    problems.push(format!("{here}: column `{c}` is both dropped and encoded"));
                }
            }
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for (from, to) in &t.columns {
                if let Some(other) = seen.insert(to, from) {
                    problems.push(format!(
                        "{here}: columns `{other}` and `{from}` are both renamed to `{to}`"
                    ));
                }
            }
            for (col, expr) in &t.set {
                if blank(expr) {
                    problems.push(format!("{here}: set `{col}` is empty"));
                }
            }
            if t.target.as_deref().is_some_and(blank) {
                problems.push(format!("{here}: an empty `target`"));
            }
        }
        match problems.len() {
            0 => Ok(()),
            _ => Err(anyhow!("{}", problems.join("; "))),
        }
    }

    /// The source-side keys (see [`SourceSide`]).
    pub fn source_side(&self) -> SourceSide {
        let mut never_copy = self.never_copy.clone();
        never_copy.sort();
        never_copy.dedup();
        SourceSide {
            source_schema: self.source_schema.clone(),
            never_copy,
            tables: self
                .tables
                .iter()
                .map(|(name, t)| {
                    let mut drop = t.drop.clone();
                    drop.sort();
                    (
                        name.clone(),
                        SourceTableSide {
                            skip: t.skip,
                            filter: t.filter.clone(),
                            query: t.query.as_ref().map(|q| {
                                super::with::compose(&self.with, q).unwrap_or_else(|_| q.clone())
                            }),
                            key: t.key.clone(),
                            drop,
                            encode: t.encode.clone(),
                        },
                    )
                })
                .filter(|(_, s)| {
                    s.skip
                        || s.filter.is_some()
                        || s.query.is_some()
                        || !s.drop.is_empty()
                        || !s.encode.is_empty()
                })
                .collect(),
        }
    }
}

/// A table name as a TOML key: bare when it can be, else quoted.
pub fn quote_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
source_db = "shop_v2"
target_db = "shop_v3"
schema = "app"
never_copy = ["migrations"]
skip_if_absent = ["legacy"]

[import]
require = ["SELECT true"]
before = ["INSERT INTO tenant VALUES (1)"]
after = ["REFRESH MATERIALIZED VIEW stats"]

[tables.cache]
skip = true

[tables.post]
where = "deleted = 0"
drop = ["old"]
encode = { blob = "base64" }
target = "article"
columns = { body = "content" }
set = { tenant_id = "1" }
triggers = "fire"

[tables.teachers]
query = "SELECT id, name FROM teacher"
target = "person"
"#;

    #[test]
    fn every_key_parses() {
        let m = MappingFile::parse(FULL, "test").unwrap();
        assert_eq!(m.source_db.as_deref(), Some("shop_v2"));
        assert_eq!(m.schema.as_deref(), Some("app"));
        assert_eq!(m.import.after, ["REFRESH MATERIALIZED VIEW stats"]);
        let post = &m.tables["post"];
        assert_eq!(post.filter.as_deref(), Some("deleted = 0"));
        assert_eq!(post.encode["blob"], Override::Base64);
        assert_eq!(post.columns["body"], "content");
        assert_eq!(post.triggers, Some(Triggers::Fire));
        assert!(m.tables["cache"].skip);
        // Written back, it reads the same.
        let again = MappingFile::parse(&toml::to_string(&m).unwrap(), "again").unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn mistakes_are_refused_naming_the_line_or_the_table() {
        let cases = [
            ("sourcedb = \"x\"\n", "line 1"),
            ("[tables.t]\nwher = \"x\"\n", "line 2"),
            ("[tables.t]\nwher = \"x\"\n", "unknown field `wher`"),
            ("[import]\nafter = \"not a list\"\n", "line 2"),
            ("[tables.t]\ntriggers = \"maybe\"\n", "line 2"),
            ("[tables.t]\nencode = { c = \"hex\" }\n", "line 2"),
            (
                "[tables.t]\nquery = \"SELECT 1\"\nwhere = \"x\"\n",
                "[tables.t]: `query` and `where` together",
            ),
            (
                "[tables.t]\ndrop = [\"a\"]\ncolumns = { a = \"b\" }\n",
                "column `a` is both dropped and renamed",
            ),
            (
                "[tables.t]\ncolumns = { a = \"c\", b = \"c\" }\n",
                "columns `a` and `b` are both renamed to `c`",
            ),
            (
                "[import]\nbefore = [\" \"]\n",
                "[import] before: an empty statement",
            ),
            (
                "[tables.\"a b\"]\nset = { x = \"\" }\n",
                "[tables.\"a b\"]: set `x` is empty",
            ),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", MappingFile::parse(text, "m.toml").unwrap_err());
            assert!(err.contains(want), "{text:?}: missing {want:?} in {err}");
            assert!(err.contains("mapping file m.toml"), "{err}");
        }
    }

    #[test]
    fn source_side_ignores_target_keys_and_order() {
        let a = MappingFile::parse(FULL, "a").unwrap();
        let mut b = a.clone();
        b.target_db = Some("elsewhere".into());
        b.import.before.clear();
        b.tables.get_mut("post").unwrap().columns.clear();
        b.tables.get_mut("post").unwrap().set.clear();
        assert_eq!(a.source_side(), b.source_side());
        b.tables.get_mut("post").unwrap().filter = Some("deleted = 1".into());
        assert_ne!(a.source_side(), b.source_side());
        let mut c = a.clone();
        c.tables.get_mut("teachers").unwrap().query = Some("SELECT 1".into());
        assert_ne!(a.source_side(), c.source_side());
    }

    #[test]
    fn snake_case_as_prisma_schemas_need() {
        for (from, to) in [
            ("createdAt", "created_at"),
            ("User", "user"),
            ("userID", "user_id"),
            ("HTTPServer", "http_server"),
            ("already_snake", "already_snake"),
            ("line2Id", "line2_id"),
            ("_prismaMigrations", "_prisma_migrations"),
            ("TeacherOnCourse", "teacher_on_course"),
        ] {
            assert_eq!(snake_case(from), to, "{from}");
        }
    }
}
