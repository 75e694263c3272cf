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
        // A window function's value depends on the other rows: over part of them it is
        // another value, so running the INSERT over halves proves nothing.
        if self
            .sets
            .iter()
            .any(|s| s.kind == crate::import::compute::Kind::OverRows)
        {
            return None;
        }
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

    /// "the row of `d` with id=7" (named as every message names a row:
    /// `codec::encode::row_key`) / "row 12 of `d` (in the order of its files)", from
    /// what [`Self::name_sql`] read.
    pub fn row_words(&self, values: &[Option<String>]) -> String {
        if self.key.is_empty() {
            let n = values.first().cloned().flatten().unwrap_or_default();
            return format!("row {n} of `{}` (in the order of its files)", self.dataset);
        }
        let values: Vec<Option<&[u8]>> = values
            .iter()
            .map(|v| v.as_deref().map(str::as_bytes))
            .collect();
        let positions: Vec<usize> = (0..self.key.len()).collect();
        let key = crate::codec::encode::row_key(&values, &positions, &self.key, 0);
        format!("the row of `{}` with {key}", self.dataset)
    }

    /// What fails on that row: the `set` of `column` (the error's own column, else the
    /// one set that fails alone), a column the error names, or the INSERT as a whole.
    pub fn what(&self, column: Option<&str>) -> String {
        match column.and_then(|c| self.parts.sets.iter().find(|s| s.0 == c)) {
            Some((c, expr, _)) => format!("set `{c}` = {expr}"),
            None => match column {
                Some(c) => format!("column `{c}`"),
                None => "the INSERT".to_string(),
            },
        }
    }

    /// The error's words: PostgreSQL's (the INSERT as it failed), then what running it
    /// again found (`found`: the row's own error when its words differ).
    pub fn words(
        &self,
        failed: &str,
        column: Option<&str>,
        row: &str,
        found: Option<&str>,
    ) -> String {
        format!(
            "table `{}`: moving `{}` from its staging table: {failed}; run again over the \
             staged rows, {} fails on {row}{}",
            self.table,
            self.dataset,
            self.what(column),
            found.map(|f| format!(": {f}")).unwrap_or_default()
        )
    }

    /// The hint: nothing was written; for a `set` that fails alone, the dataset's `set`
    /// line with that expression guarded (the others as they are).
    pub fn hint(&self, column: Option<&str>) -> String {
        let Some(failing) = column.filter(|c| self.parts.sets.iter().any(|s| s.0 == *c)) else {
            return "nothing was written. No one `set` fails alone on that row: its values make \
                    the INSERT fail (a trigger, a generated column, a CHECK, or several `set`s \
                    together): change that row at the source, or what the target runs on it"
                .to_string();
        };
        let entries: Vec<String> = self
            .parts
            .sets
            .iter()
            .map(|(c, expr, _)| {
                let expr = match c == failing {
                    true => format!("CASE WHEN <that row's case> THEN <a value> ELSE {expr} END"),
                    false => expr.clone(),
                };
                format!(
                    "{} = {}",
                    crate::mapping::file::quote_key(c),
                    crate::import::fixes::toml_string(&expr)
                )
            })
            .collect();
        format!(
            "nothing was written. Change that row at the source, or make the mapping's \
             expression give it a value (when it fails on every row, the expression itself \
             is wrong), e.g.:\n    [tables.{}]\n    set = {{ {} }}",
            crate::mapping::file::quote_key(&self.dataset),
            entries.join(", ")
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
        // Keys are shown escaped, as everywhere: a newline, an empty string.
        assert_eq!(
            search(&["id", "k"]).row_words(&[Some("a\nb".into()), Some(String::new())]),
            "the row of `person` with (id=a\\nb, k='')"
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
        assert_eq!(keyless.what(None), "the INSERT");
        assert!(
            !keyless.hint(None).contains("e.g."),
            "{}",
            keyless.hint(None)
        );
        assert_eq!(
            keyless.words(
                "ERROR (22012): division by zero",
                Some("code"),
                "row 3 of `person` (in the order of its files)",
                None
            ),
            "table `person`: moving `person` from its staging table: ERROR (22012): division by zero; run again over the staged rows, set `code` = (100 / score)::text fails on row 3 of `person` (in the order of its files)"
        );
        assert!(
            keyless.hint(Some("code")).contains(
                r#"set = { code = "CASE WHEN <that row's case> THEN <a value> ELSE (100 / score)::text END" }"#
            ),
            "{}",
            keyless.hint(Some("code"))
        );
    }
}
