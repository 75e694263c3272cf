//! PURE: the mapping's `[with]` entries (named source SQL) put in front of a `query` as
//! common table expressions: only those the query reads (directly or through another
//! entry), each after the entries it reads, so one computation (the ranked list of all
//! people, say) is written once and read by several datasets. MySQL 8, MariaDB 10.2+
//! and PostgreSQL all take `WITH name AS (...)`.

use std::collections::BTreeMap;

/// Names a piece of source SQL mentions outside its string literals and comments:
/// bare words and `quoted` / "quoted" identifiers, lower-cased.
fn names(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            '\'' => {
                i += 1;
                while i < b.len() {
                    if b[i] == '\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == '\'' {
                        if b.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            '`' | '"' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .map_or(b.len(), |p| i + 1 + p);
                out.push(
                    b[i + 1..end.min(b.len())]
                        .iter()
                        .collect::<String>()
                        .to_lowercase(),
                );
                i = end + 1;
            }
            '-' if b.get(i + 1) == Some(&'-') => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '#' => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            '/' if b.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                    i += 1;
                }
                out.push(b[start..i].iter().collect::<String>().to_lowercase());
            }
            _ => i += 1,
        }
    }
    out
}

/// The `[with]` entries `sql` reads, transitively, dependencies first; an entry that
/// reads itself through others is an error naming the cycle.
fn needed(with: &BTreeMap<String, String>, sql: &str) -> Result<Vec<String>, String> {
    fn visit(
        name: &str,
        with: &BTreeMap<String, String>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        if out.iter().any(|o| o == name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            path.push(name.to_string());
            return Err(format!(
                "[with] entries read each other in a cycle: {}",
                path.join(" -> ")
            ));
        }
        path.push(name.to_string());
        for n in reads(with, &with[name], Some(name)) {
            visit(&n, with, path, out)?;
        }
        path.pop();
        out.push(name.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    for n in reads(with, sql, None) {
        visit(&n, with, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// The entries of `with` that `sql` mentions (not itself), by their key.
fn reads(with: &BTreeMap<String, String>, sql: &str, itself: Option<&str>) -> Vec<String> {
    let said = names(sql);
    with.keys()
        .filter(|k| Some(k.as_str()) != itself && said.contains(&k.to_lowercase()))
        .cloned()
        .collect()
}

/// `query` with the `[with]` entries it reads in front, as one statement.
pub fn compose(with: &BTreeMap<String, String>, query: &str) -> Result<String, String> {
    let order = needed(with, query)?;
    if order.is_empty() {
        return Ok(query.to_string());
    }
    let ctes: Vec<String> = order
        .iter()
        .map(|n| format!("`{}` AS ({})", n.replace('`', "``"), with[n].trim()))
        .collect();
    let q = query.trim_start();
    let head = q.get(..5).unwrap_or("");
    Ok(
        if head.eq_ignore_ascii_case("with ") || head.eq_ignore_ascii_case("with\n") {
            // The query's own CTEs follow the mapping's (which cannot read them).
            let rest = q[4..].trim_start();
            let (recursive, rest) = match rest.get(..10) {
                Some(r) if r.eq_ignore_ascii_case("recursive ") => {
                    ("RECURSIVE ", rest[10..].trim_start())
                }
                _ => ("", rest),
            };
            format!("WITH {recursive}{}, {rest}", ctes.join(", "))
        } else if q.starts_with('(') {
            format!(
                "WITH {} SELECT * FROM {q} AS pgconverge_query",
                ctes.join(", ")
            )
        } else {
            format!("WITH {} {q}", ctes.join(", "))
        },
    )
}

/// Every entry's problems: a cycle.
pub fn check(with: &BTreeMap<String, String>) -> Result<(), String> {
    for name in with.keys() {
        needed(with, &format!("SELECT * FROM {name}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_query_gets_the_entries_it_reads_in_dependency_order() {
        let w = with(&[
            (
                "people",
                "SELECT id, email FROM teacher UNION ALL SELECT id, email FROM parent",
            ),
            (
                "ranked",
                "SELECT p.*, ROW_NUMBER() OVER (PARTITION BY email ORDER BY id) AS n FROM people p",
            ),
            ("unused", "SELECT 1"),
        ]);
        // (query, composed)
        let cases = [
            ("SELECT 1 AS id", "SELECT 1 AS id"),
            (
                "SELECT * FROM ranked WHERE n = 1",
                "WITH `people` AS (SELECT id, email FROM teacher UNION ALL SELECT id, email FROM parent), `ranked` AS (SELECT p.*, ROW_NUMBER() OVER (PARTITION BY email ORDER BY id) AS n FROM people p) SELECT * FROM ranked WHERE n = 1",
            ),
            (
                "WITH x AS (SELECT 2) SELECT * FROM `People`, x",
                "WITH `people` AS (SELECT id, email FROM teacher UNION ALL SELECT id, email FROM parent), x AS (SELECT 2) SELECT * FROM `People`, x",
            ),
            // Names in strings and comments are not reads.
            (
                "SELECT 'ranked' AS s -- people\nFROM dual",
                "SELECT 'ranked' AS s -- people\nFROM dual",
            ),
            (
                "(SELECT * FROM people)",
                "WITH `people` AS (SELECT id, email FROM teacher UNION ALL SELECT id, email FROM parent) SELECT * FROM (SELECT * FROM people) AS pgconverge_query",
            ),
        ];
        for (query, want) in cases {
            assert_eq!(compose(&w, query).unwrap(), want, "{query}");
        }
    }

    #[test]
    fn entries_that_read_each_other_in_a_cycle_are_refused() {
        let w = with(&[("a", "SELECT * FROM b"), ("b", "SELECT * FROM a")]);
        assert!(check(&w).unwrap_err().contains("cycle"));
        assert!(compose(&w, "SELECT * FROM a").is_err());
        assert!(check(&with(&[("a", "SELECT 1"), ("b", "SELECT * FROM a")])).is_ok());
    }
}
