//! PURE: the mapping lines that fix a refusal the data calls for, shown in its hint. A
//! value the target column cannot take (`''` in a uuid column that is NOT NULL, a value
//! that is no UUID, `''` or another label an enum lacks) can be left out at the export (`where`, in the source's
//! SQL) or given a value at the import (`set`, in PostgreSQL's), without touching the
//! source or the target schema: the hint prints both as TOML to paste.

use crate::db::sql::pg;
use crate::mapping::file::quote_key;

/// What a mapping can do about one column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `''` (or, from a `char(36)` column, the NULL it was exported as) headed for a
    /// NOT NULL uuid column.
    EmptyIntoUuid,
    /// Values that are not UUIDs (`''` too, when the column has both) headed for a uuid
    /// column: the `set` keeps every value that is one and draws a new one for the rest.
    NotUuid,
    /// Values an enum lacks (`''` is MySQL's invalid ENUM value); `labels` are the
    /// target's, one of which the `set` proposes.
    NotALabel {
        values: Vec<String>,
        labels: Vec<String>,
    },
    /// MySQL zero dates (exported as NULL) headed for a NOT NULL column: the `set`
    /// proposes a date the user should replace with theirs.
    ZeroDate,
}

/// The date a zero date's `set` proposes: a placeholder, said to be one.
const ZERO_DATE_STANDIN: &str = "1970-01-01 00:00:00";

/// One column's fix: the dataset (`[tables.X]`), its source column (what `where` reads),
/// the target column (what `set` names) and how many rows it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFix {
    pub dataset: String,
    pub source_column: String,
    pub target_column: String,
    pub rows: u64,
    pub problem: Problem,
}

/// The source's SQL dialect, for `where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Mysql,
    Postgres,
}

impl Dialect {
    /// From the manifest's `source.kind` (`mysql`, `mariadb`, `postgresql`).
    pub fn of_source(kind: &str) -> Dialect {
        if kind.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Mysql
        }
    }

    fn ident(self, name: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Postgres => pg::ident(name),
        }
    }
}

/// A SQL string literal, in either dialect (`''` doubling is read by both).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A TOML basic string holding `s`.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `where` that leaves the column's bad rows out (source SQL), and the `set`
/// expression that gives them a value instead (PostgreSQL; the column is its CSV text
/// there, see docs/mapping.md).
fn lines(fix: &MappingFix, dialect: Dialect) -> (String, String) {
    let col = dialect.ident(&fix.source_column);
    let csv = pg::ident(&fix.target_column);
    match &fix.problem {
        Problem::EmptyIntoUuid => (
            format!("{col} IS NOT NULL AND {col} <> ''"),
            format!("COALESCE(NULLIF({csv}::text, '')::uuid, gen_random_uuid())"),
        ),
        // What the export counts as a UUID (`codec::rules::is_uuid`): 36 characters,
        // hex digits with hyphens at 8, 13, 18 and 23.
        Problem::NotUuid => {
            const UUID: &str =
                "'^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'";
            let keep = match dialect {
                Dialect::Mysql => format!("{col} REGEXP {UUID}"),
                Dialect::Postgres => format!("{col}::text ~ {UUID}"),
            };
            (
                keep,
                format!(
                    "CASE WHEN {csv}::text ~ {UUID} THEN {csv}::text::uuid ELSE gen_random_uuid() END"
                ),
            )
        }
        Problem::NotALabel { values, labels } => {
            let list: Vec<String> = values.iter().map(|v| literal(v)).collect();
            let keep = format!("{col} NOT IN ({})", list.join(", "));
            let label = labels.first().map_or("LABEL".to_string(), |l| literal(l));
            let set = format!(
                "CASE WHEN {csv}::text IN ({}) THEN {label} ELSE {csv}::text END",
                list.join(", ")
            );
            (keep, set)
        }
        // MySQL reads a zero or partial-zero date's parts as 0; NULLs (which the NOT NULL
        // target refuses as well) are left out with them.
        Problem::ZeroDate => (
            match dialect {
                Dialect::Mysql => format!(
                    "{col} IS NOT NULL AND YEAR({col}) <> 0 AND MONTH({col}) <> 0 AND DAYOFMONTH({col}) <> 0"
                ),
                Dialect::Postgres => format!("{col} IS NOT NULL"),
            },
            format!("COALESCE({csv}::text, '{ZERO_DATE_STANDIN}')"),
        ),
    }
}

/// The hint's mapping part: per dataset, a `[tables.X]` block with one `where` for all
/// of its columns (export again) and one with their `set`s (import with `--map`). Empty
/// when there is nothing a mapping can fix.
pub fn render(fixes: &[MappingFix], dialect: Dialect) -> String {
    // A column's lines for values that are not UUIDs cover its '' too: one `set` each.
    let not_uuid = |f: &MappingFix| {
        f.problem == Problem::EmptyIntoUuid
            && fixes.iter().any(|o| {
                o.problem == Problem::NotUuid
                    && o.dataset == f.dataset
                    && o.target_column == f.target_column
            })
    };
    let fixes: Vec<MappingFix> = fixes.iter().filter(|f| !not_uuid(f)).cloned().collect();
    let fixes = fixes.as_slice();
    let mut datasets: Vec<&str> = fixes.iter().map(|f| f.dataset.as_str()).collect();
    datasets.dedup();
    let mut out = String::new();
    for dataset in datasets {
        let mine: Vec<&MappingFix> = fixes.iter().filter(|f| f.dataset == dataset).collect();
        let (keep, sets): (Vec<String>, Vec<String>) = mine
            .iter()
            .map(|f| {
                let (keep, set) = lines(f, dialect);
                (
                    keep,
                    format!("{} = {}", quote_key(&f.target_column), toml_string(&set)),
                )
            })
            .unzip();
        let counts: Vec<String> = mine
            .iter()
            .map(|f| {
                format!(
                    "{} ({})",
                    f.target_column,
                    crate::report::count(f.rows, "row")
                )
            })
            .collect();
        let label = mine.iter().find_map(|f| match &f.problem {
            Problem::NotALabel { labels, .. } => labels.first().map(|l| literal(l)),
            _ => None,
        });
        let date = mine
            .iter()
            .any(|f| f.problem == Problem::ZeroDate)
            .then(|| format!("a zero date gets '{ZERO_DATE_STANDIN}'"));
        let label = label.map(|l| format!("an enum gets {l}, its first label"));
        let picks: Vec<String> = label.into_iter().chain(date).collect();
        let pick = match picks.is_empty() {
            true => String::new(),
            false => format!(" ({}: pick yours)", picks.join("; ")),
        };
        let table = quote_key(dataset);
        out.push_str(&format!(
            "\n  to leave those rows out ({}; rows other tables reference would be refused as their \
             orphans), export again with:\n    [tables.{table}]\n    \
             where = {}\n  or to give them a value{pick}, import with:\n    [tables.{table}]\n    \
             set = {{ {} }}",
            counts.join(", "),
            toml_string(&keep.join(" AND ")),
            sets.join(", "),
        ));
    }
    out
}

/// The whole hint of a refusal before any write: the mapping's fix when there is one,
/// then the other ways out.
pub fn refusal_hint(fixes: &[MappingFix], dialect: Dialect, again: &str) -> String {
    let general = format!(
        "make the target schema match (it comes from the application's migrations), or fix \
         the data at the source and {again}"
    );
    if fixes.is_empty() {
        return general;
    }
    format!(
        "a mapping file (--map FILE) can fix the data on its way:{}\n  otherwise {general}",
        render(fixes, dialect)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(source: &str, target: &str, rows: u64, problem: Problem) -> MappingFix {
        MappingFix {
            dataset: "book".into(),
            source_column: source.into(),
            target_column: target.into(),
            rows,
            problem,
        }
    }

    #[test]
    fn each_fix_is_toml_that_parses_into_the_lines_meant() {
        let enum_problem = Problem::NotALabel {
            values: vec!["".into(), "it's".into()],
            labels: vec!["draft".into(), "live".into()],
        };
        // (fix, dialect, the where expected, the set expected)
        let cases = [
            (
                fix("tag", "tag", 2, Problem::EmptyIntoUuid),
                Dialect::Mysql,
                "`tag` IS NOT NULL AND `tag` <> ''",
                "COALESCE(NULLIF(\"tag\"::text, '')::uuid, gen_random_uuid())",
            ),
            (
                fix("Tag Id", "tag_id", 1, Problem::EmptyIntoUuid),
                Dialect::Postgres,
                "\"Tag Id\" IS NOT NULL AND \"Tag Id\" <> ''",
                "COALESCE(NULLIF(\"tag_id\"::text, '')::uuid, gen_random_uuid())",
            ),
            (
                fix("born", "born_on", 2, Problem::ZeroDate),
                Dialect::Mysql,
                "`born` IS NOT NULL AND YEAR(`born`) <> 0 AND MONTH(`born`) <> 0 AND DAYOFMONTH(`born`) <> 0",
                "COALESCE(\"born_on\"::text, '1970-01-01 00:00:00')",
            ),
            (
                fix("state", "status", 3, enum_problem.clone()),
                Dialect::Mysql,
                "`state` NOT IN ('', 'it''s')",
                "CASE WHEN \"status\"::text IN ('', 'it''s') THEN 'draft' ELSE \"status\"::text END",
            ),
        ];
        for (f, dialect, want_where, want_set) in cases {
            let text = render(std::slice::from_ref(&f), dialect);
            // The two indented blocks are TOML a user pastes: they must parse to the lines.
            let blocks: Vec<String> = text
                .split("  to leave")
                .nth(1)
                .unwrap()
                .split("  or to give")
                .map(|part| {
                    part.lines()
                        .filter(|l| l.starts_with("    "))
                        .map(|l| l.trim())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            let keep: toml::Table = toml::from_str(&blocks[0]).unwrap();
            let set: toml::Table = toml::from_str(&blocks[1]).unwrap();
            assert_eq!(keep["tables"]["book"]["where"].as_str(), Some(want_where));
            assert_eq!(
                set["tables"]["book"]["set"][f.target_column.as_str()].as_str(),
                Some(want_set),
                "{text}"
            );
            assert!(text.contains(&crate::report::count(f.rows, "row")));
        }
    }

    #[test]
    fn without_a_fix_the_hint_is_the_general_one() {
        let h = refusal_hint(&[], Dialect::Mysql, "export again");
        assert!(h.starts_with("make the target schema match"));
        let h = refusal_hint(
            &[fix("tag", "tag", 1, Problem::EmptyIntoUuid)],
            Dialect::Mysql,
            "migrate again",
        );
        assert!(
            h.contains("--map FILE") && h.contains("migrate again"),
            "{h}"
        );
    }
}
