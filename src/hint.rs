//! Errors that tell the user what to do. A `Hint` is attached to an error chain as a
//! context layer; `render` prints the chain on one line and every hint after it;
//! `exit_code` says what the error means for the exit code (2, or 3 when it
//! `NeedsAttention`). This module must not know about any server: callers decide what
//! the hint says.

use std::fmt;

/// An error carrying a "hint:" line. It displays as the error it wraps and continues
/// the chain with that error's causes, so the hint never replaces the message.
#[derive(Debug)]
pub struct Hinted {
    pub hint: String,
    inner: anyhow::Error,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Attach a hint to any error result.
pub trait WithHint<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E> WithHint<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| with_hint(e.into(), hint))
    }
}

/// Attach a hint to an error.
pub fn with_hint(err: anyhow::Error, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        hint: hint.into(),
        inner: err,
    })
}

/// The outermost words of an error after which the target needs a look (exit 3): the
/// outcome of COMMIT is unknown, a hook committed part of the work, or the audit trail
/// was lost after COMMIT. Added as a context layer (`err.context(NeedsAttention(..))`).
#[derive(Debug)]
pub struct NeedsAttention(pub String);

impl fmt::Display for NeedsAttention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The exit code of a command that ended with `err`: 3 when it needs attention, else 2.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<NeedsAttention>() {
        Some(_) => 3,
        None => 2,
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = if ca == b[j] {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The names a user who typed `want` may have meant, best first, at most three: those
/// that contain it or that it contains (a prefix, a project prefix left out), then those
/// within a third of its length in edits.
pub fn similar<'a>(want: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (want.chars().count() / 3).max(1);
    let mut found: Vec<(usize, usize, String)> = names
        .into_iter()
        .filter(|n| *n != want)
        .filter_map(|n| {
            let d = distance(n, want);
            if n.contains(want) || want.contains(n) {
                Some((0, d, n.to_string()))
            } else if d <= limit {
                Some((1, d, n.to_string()))
            } else {
                None
            }
        })
        .collect();
    found.sort();
    found.dedup();
    found.into_iter().take(3).map(|(_, _, n)| n).collect()
}

/// `error: outer: inner: root` then one `hint: ...` line per hint, outermost first.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for link in err.chain() {
        if let Some(h) = link.downcast_ref::<Hinted>() {
            hints.push(h.hint.clone());
        }
        let text = link.to_string();
        // Drivers often repeat their cause inside their own message: print it once.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
    }
    let mut out = format!("error: {}\n", parts.join(": "));
    for h in hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::{Context, anyhow};

    #[test]
    fn similar_names_prefixes_first_then_close_spellings() {
        let names = [
            "alkemio_dev_mysql",
            "alkemio_dev_postgres",
            "kratos_mysql",
            "other",
        ];
        let cases: &[(&str, &[&str])] = &[
            (
                "alkemio_dev",
                &["alkemio_dev_mysql", "alkemio_dev_postgres"],
            ),
            ("alkemio_dev_mysq", &["alkemio_dev_mysql"]),
            ("alkemio_dev_mysl", &["alkemio_dev_mysql"]),
            ("kratos_mysql_1", &["kratos_mysql"]),
            ("unrelated", &[]),
            ("other", &[]),
        ];
        for (want, expected) in cases {
            assert_eq!(similar(want, names), *expected, "{want}");
        }
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn needs_attention_anywhere_in_the_context_chain_is_exit_3() {
        let e: anyhow::Error = anyhow!("no answer");
        assert_eq!(exit_code(&e), 2);
        let e = with_hint(e, "ask the server")
            .context(NeedsAttention("the outcome is unknown".into()))
            .context("import of x");
        assert_eq!(exit_code(&e), 3);
        assert_eq!(
            render(&e),
            "error: import of x: the outcome is unknown: no answer\nhint: ask the server\n"
        );
    }

    #[test]
    fn hints_follow_the_chain() {
        let r: anyhow::Result<()> = Err(anyhow!("connection refused"));
        let e = r
            .hint("start the server")
            .context("connecting to MySQL")
            .unwrap_err();
        assert_eq!(
            render(&e),
            "error: connecting to MySQL: connection refused\nhint: start the server\n"
        );
    }
}
