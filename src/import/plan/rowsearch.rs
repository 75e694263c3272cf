//! PURE: finding the row a staged INSERT failed on. The `set` columns of a staged
//! dataset are computed by one `INSERT ... SELECT` over millions of rows; PostgreSQL's
//! error (`division by zero`, `value too long`) names no row. The import runs the
//! INSERT again over halves of the staging table's pages, each attempt rolled back to a
//! savepoint, then over one page's rows, and names the row by the dataset's key
//! (`import::culprit` runs it; this file writes its SQL and its words).

use crate::db::sql::pg::{ident, literal, qualified};
use crate::import::compute::{CastTo, insert_sql};

use super::TableLoad;
use super::keymap::InsertParts;

/// What the search needs of one staged dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSearch {
    pub dataset: String,
    pub schema: String,
    pub table: String,
    pub parts: InsertParts,
    /// The dataset's key columns, by their names in the staging table (empty: the row
    /// is named by its place in the files).
    pub key: Vec<String>,
}

/// A row of the staging table, by its `ctid` (page, line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tid(pub u32, pub u16);

impl Tid {
    fn sql(self) -> String {
        format!("'({},{})'::tid", self.0, self.1)
    }

    /// Read back from `ctid::text`: `(page,line)`.
    pub fn parse(text: &str) -> Option<Tid> {
        let (page, line) = text.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
        Some(Tid(page.parse().ok()?, line.parse().ok()?))
    }
}

impl TableLoad {
    /// The search of this dataset's staged INSERT, when it has one.
    pub(super) fn row_search(&self, schema: &str) -> Option<RowSearch> {
        let parts = self.insert_parts.clone()?;
        Some(RowSearch {
            dataset: self.dataset.clone(),
            schema: schema.to_string(),
            table: self.table.clone(),
            parts,
            key: self
                .key
                .iter()
                .filter_map(|&p| self.target_columns.get(p).cloned())
                .collect(),
        })
    }
}

/// The errors a row's values cause while its `set`s are computed and stored: data
/// exceptions, a subquery's second row, a function's own. Not a broken constraint (the
/// import lists every violation by key instead, `diagnose` in `import::load`), nor what no row
/// causes (a lost connection, a cancel, a lock).
pub fn searchable(sqlstate: &str) -> bool {
    matches!(
        sqlstate.get(..2),
        Some("21" | "22" | "2F" | "38" | "39" | "P0")
    )
}

impl RowSearch {
    fn insert(&self) -> String {
        insert_sql(
            &self.parts.stage,
            &self.schema,
            &self.table,
            &self.parts.kept,
            &self.parts.sets,
            self.parts.overriding,
        )
    }

    /// The staging table's size in pages.
    pub fn pages_sql(&self) -> String {
        format!(
            "SELECT (pg_relation_size({}::regclass) / current_setting('block_size')::bigint)::bigint",
            literal(&ident(&self.parts.stage))
        )
    }

    /// The INSERT over the rows of pages `from..to`.
    pub fn insert_pages(&self, from: u32, to: u32) -> String {
        format!(
            "{} WHERE ctid >= {} AND ctid < {}",
            self.insert(),
            Tid(from, 0).sql(),
            Tid(to, 0).sql()
        )
    }

    /// The rows of one page, in order.
    pub fn rows_of_page(&self, page: u32) -> String {
        format!(
            "SELECT ctid::text FROM {} WHERE ctid >= {} AND ctid < {} ORDER BY ctid",
            ident(&self.parts.stage),
            Tid(page, 0).sql(),
            Tid(page + 1, 0).sql()
        )
    }

    /// The INSERT of one row.
    pub fn insert_row(&self, row: Tid) -> String {
        format!("{} WHERE ctid = {}", self.insert(), row.sql())
    }

    /// One `set` alone over one row, stored in a column of its target's type (the
    /// column's own assignment rule: a value too long for it fails here too).
    pub fn one_set(&self, set: &(String, String, CastTo), row: Tid) -> [String; 2] {
        let (column, expr, cast) = set;
        [
            format!(
                "CREATE TEMP TABLE pgconverge_one_set AS SELECT {} FROM {} WITH NO DATA",
                ident(column),
                qualified(&self.schema, &self.table)
            ),
            format!(
                "INSERT INTO pgconverge_one_set SELECT {} FROM {} WHERE ctid = {}",
                cast.apply(expr),
                ident(&self.parts.stage),
                row.sql()
            ),
        ]
    }

    /// The row's key as text (a key-less dataset: its place among the staged rows,
    /// which were copied in the order of the files).
    pub fn name_sql(&self, row: Tid) -> String {
        match self.key.is_empty() {
            true => format!(
                "SELECT (count(*) + 1)::text FROM {} WHERE ctid < {}",
                ident(&self.parts.stage),
                row.sql()
            ),
            false => format!(
                "SELECT {} FROM {} WHERE ctid = {}",
                self.key
                    .iter()
                    .map(|k| format!("{}::text", ident(k)))
                    .collect::<Vec<_>>()
                    .join(", "),
                ident(&self.parts.stage),
                row.sql()
            ),
        }
    }

    /// "the row of `d` with id=7" (the key as other messages name rows) / "row 12 of `d` (in the order of its files)",
    /// from what [`Self::name_sql`] read.
    pub fn row_words(&self, values: &[Option<String>]) -> String {
        if self.key.is_empty() {
            let n = values.first().cloned().flatten().unwrap_or_default();
            return format!("row {n} of `{}` (in the order of its files)", self.dataset);
        }
        let pairs: Vec<String> = self
            .key
            .iter()
            .zip(values)
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NULL")))
            .collect();
        let key = match pairs.len() {
            1 => pairs.concat(),
            _ => format!("({})", pairs.join(", ")),
        };
        format!("the row of `{}` with {key}", self.dataset)
    }

    /// What failed on that row: the `set` of `column` (the error's own column for a
    /// NOT NULL, else the one set that fails alone), or the row as a whole.
    pub fn what(&self, column: Option<&str>) -> String {
        match column.and_then(|c| self.parts.sets.iter().find(|s| s.0 == c)) {
            Some((c, expr, _)) => format!("set `{c}` = {expr}"),
            None => match column {
                Some(c) => format!("column `{c}`"),
                None => "the INSERT of its `set` columns".to_string(),
            },
        }
    }

    /// The hint: nothing was written; the mapping lines that give the row a value.
    pub fn hint(&self, column: Option<&str>) -> String {
        let set = column.and_then(|c| self.parts.sets.iter().find(|s| s.0 == c));
        let example = match set {
            Some((c, expr, _)) => format!(
                "\n    [tables.{}]\n    set = {{ {} = {} }}",
                crate::mapping::file::quote_key(&self.dataset),
                crate::mapping::file::quote_key(c),
                crate::import::fixes::toml_string(&format!(
                    "CASE WHEN <that row's case> THEN <a value> ELSE {expr} END"
                ))
            ),
            None => String::new(),
        };
        format!(
            "nothing was written. Change that row at the source, or make the mapping's \
             expression give it a value, e.g.:{example}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(key: &[&str]) -> RowSearch {
        RowSearch {
            dataset: "person".into(),
            schema: "app".into(),
            table: "person".into(),
            parts: InsertParts {
                stage: "pgconverge_stage_1".into(),
                kept: vec!["id".into()],
                sets: vec![("code".into(), "(100 / score)::text".into(), "text".into())],
                overriding: false,
            },
            key: key.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn only_errors_a_row_can_cause_are_searched() {
        for (code, searched) in [
            ("22012", true),
            ("22001", true),
            ("22003", true),
            ("23502", false),
            ("23514", false),
            ("21000", true),
            ("P0001", true),
            ("23505", false),
            ("23503", false),
            ("23P01", false),
            ("57014", false),
            ("40P01", false),
            ("53100", false),
            ("08006", false),
            ("", false),
        ] {
            assert_eq!(searchable(code), searched, "{code}");
        }
    }

    #[test]
    fn the_search_narrows_the_same_insert_by_ctid() {
        let s = search(&["id"]);
        assert_eq!(
            s.insert_pages(4, 8),
            r#"INSERT INTO "app"."person" ("id", "code") SELECT "id", CAST(((100 / score)::text) AS text) FROM "pgconverge_stage_1" WHERE ctid >= '(4,0)'::tid AND ctid < '(8,0)'::tid"#
        );
        assert!(
            s.insert_row(Tid(7, 12))
                .ends_with("WHERE ctid = '(7,12)'::tid")
        );
        assert_eq!(
            s.pages_sql(),
            r#"SELECT (pg_relation_size('"pgconverge_stage_1"'::regclass) / current_setting('block_size')::bigint)::bigint"#
        );
        assert_eq!(
            s.one_set(&s.parts.sets[0], Tid(0, 3))[1],
            r#"INSERT INTO pgconverge_one_set SELECT CAST(((100 / score)::text) AS text) FROM "pgconverge_stage_1" WHERE ctid = '(0,3)'::tid"#
        );
        assert_eq!(Tid::parse("(12,7)"), Some(Tid(12, 7)));
        assert_eq!(Tid::parse("12,7"), None);
    }

    #[test]
    fn the_row_is_named_by_its_key_or_its_place() {
        assert_eq!(
            search(&["id", "k"]).row_words(&[Some("2718".into()), None]),
            "the row of `person` with (id=2718, k=NULL)"
        );
        let keyless = search(&[]);
        assert!(keyless.name_sql(Tid(3, 1)).contains("count(*) + 1"));
        assert_eq!(
            search(&["id"]).row_words(&[Some("2718".into())]),
            "the row of `person` with id=2718"
        );
        assert_eq!(
            keyless.row_words(&[Some("1999".into())]),
            "row 1999 of `person` (in the order of its files)"
        );
        assert_eq!(
            keyless.what(Some("code")),
            "set `code` = (100 / score)::text"
        );
        assert_eq!(keyless.what(Some("label")), "column `label`");
        assert!(
            keyless.hint(Some("code")).contains(
                r#"set = { code = "CASE WHEN <that row's case> THEN <a value> ELSE (100 / score)::text END" }"#
            ),
            "{}",
            keyless.hint(Some("code"))
        );
    }
}
