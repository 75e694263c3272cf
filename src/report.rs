//! Plain-text tables for stdout, and counted nouns for messages. Pure: callers print the
//! returned string. Every cell is one line: names and messages in it are escaped.

/// `n` and the noun, singular for one (`1 table`, `2 tables`, `0 tables`).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else if let Some(stem) = noun
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {noun}s")
    }
}

/// A table with a header row; cells are left-aligned, numbers right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// A row; each cell is shown on one line, escaped (`escape::text`), an empty cell
    /// left empty.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    let c: String = c.into();
                    match c.is_empty() {
                        true => c,
                        false => crate::escape::text(&c).into_owned(),
                    }
                })
                .collect(),
        );
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == ',');
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                let pad = width[i] - c.chars().count();
                let last = i + 1 == n;
                if numeric(c) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    out.push_str("  ");
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        out.push_str(&line(
            &width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        ));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_nouns_are_singular_for_one() {
        for (n, noun, want) in [
            (0u64, "table", "0 tables"),
            (1, "table", "1 table"),
            (2, "problem", "2 problems"),
            (1, "difference", "1 difference"),
            (3, "entry", "3 entries"),
            (2, "key", "2 keys"),
        ] {
            assert_eq!(count(n, noun), want);
        }
    }

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(["table", "rows"]);
        t.row(["user", "2073"]);
        t.row(["query-result-cache", "5"]);
        assert_eq!(
            t.render(),
            "table               rows\n------------------  ----\nuser                2073\nquery-result-cache     5\n"
        );
        let mut t = Table::new(["table", "message"]);
        t.row(["\u{1b}[2Jx", "two\nlines"]);
        t.row(["", ""]);
        assert!(!t.render().contains('\u{1b}'), "{}", t.render());
        assert_eq!(t.render().lines().count(), 4, "{}", t.render());
    }
}
