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
    let outcome = outcome_of(err).map_or(2, TargetOutcome::exit_code);
    if needs_attention(err) { 3 } else { outcome }
}

/// `NeedsAttention` anywhere in the chain, also inside a hint or an outcome (each wraps an
/// error of its own, which hides that error's context layers from `downcast_ref`).
fn needs_attention(err: &anyhow::Error) -> bool {
    if err.downcast_ref::<NeedsAttention>().is_some() {
        return true;
    }
    err.chain().any(|link| {
        if let Some(h) = link.downcast_ref::<Hinted>() {
            needs_attention(&h.inner)
        } else if let Some(w) = link.downcast_ref::<WithOutcome>() {
            needs_attention(&w.inner)
        } else {
            false
        }
    })
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

/// The error chain on one line (`outer: inner: root`) and its hints, outermost first.
fn parts(err: &anyhow::Error) -> (String, Vec<String>) {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for link in err.chain() {
        markers(link, &mut hints, &mut None);
        let text = link.to_string();
        // Drivers often repeat their cause inside their own message: print it once.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
    }
    (parts.join(": "), hints)
}

/// The hints and the outcome a link of an error chain carries. A wrapper displays as
/// the error it wraps and hides that error's own layer from the chain, so a wrapper
/// inside a wrapper is found here.
fn markers(
    link: &(dyn std::error::Error + 'static),
    hints: &mut Vec<String>,
    outcome: &mut Option<TargetOutcome>,
) {
    if let Some(h) = link.downcast_ref::<Hinted>() {
        hints.push(h.hint.clone());
        markers(h.inner.as_ref(), hints, outcome);
    } else if let Some(w) = link.downcast_ref::<WithOutcome>() {
        outcome.get_or_insert(w.outcome);
        markers(w.inner.as_ref(), hints, outcome);
    }
}

/// `error: outer: inner: root` then one `hint: ...` line per hint, outermost first.
pub fn render(err: &anyhow::Error) -> String {
    let (message, hints) = parts(err);
    let mut out = format!("error: {message}\n");
    for h in hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}

/// What the target holds after a command failed, when the command knows it: the
/// `outcome` of the `--json` failure object (docs/json.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// Nothing was written, or everything written was rolled back.
    Unchanged,
    /// The import's transaction committed (what failed came after it).
    Committed,
    /// Part of the work was committed (a hook that ended the transaction).
    PartiallyCommitted,
    /// The server could not say whether COMMIT took effect.
    Unknown,
}

impl TargetOutcome {
    /// The exit code of a failure with this outcome: 3 (needs attention) when the
    /// target may hold part or all of the work, else 2.
    pub fn exit_code(self) -> u8 {
        match self {
            TargetOutcome::Unchanged | TargetOutcome::Committed => 2,
            TargetOutcome::PartiallyCommitted | TargetOutcome::Unknown => 3,
        }
    }
}

/// An error that says what the target holds. Displays as the error it wraps.
#[derive(Debug)]
struct WithOutcome {
    outcome: TargetOutcome,
    inner: anyhow::Error,
}

impl fmt::Display for WithOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for WithOutcome {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Say what the target holds after `err`.
pub fn with_outcome(err: anyhow::Error, outcome: TargetOutcome) -> anyhow::Error {
    anyhow::Error::new(WithOutcome {
        outcome,
        inner: err,
    })
}

/// What the target holds after `err`, as the outermost layer that says so.
pub fn outcome_of(err: &anyhow::Error) -> Option<TargetOutcome> {
    let mut outcome = None;
    for link in err.chain() {
        markers(link, &mut Vec::new(), &mut outcome);
    }
    outcome
}

/// A failed command as `--json` prints it: one object on stdout, with the error chain,
/// its hints (joined by line ends; null without one) and what the target holds.
#[derive(Debug, serde::Serialize)]
pub struct Failure {
    pub status: &'static str,
    pub error: String,
    pub hint: Option<String>,
    pub outcome: Option<TargetOutcome>,
    pub exit_code: u8,
    /// What was warned before the failure (`progress::warned`).
    pub warnings: Vec<String>,
}

impl Failure {
    /// The failure object of `err` (its texts redacted of passwords).
    pub fn of(err: &anyhow::Error) -> Failure {
        let (message, hints) = parts(err);
        let outcome = outcome_of(err);
        Failure {
            status: "failed",
            error: crate::redact::text(&message).into_owned(),
            hint: (!hints.is_empty()).then(|| crate::redact::text(&hints.join("\n")).into_owned()),
            outcome,
            exit_code: exit_code(err),
            warnings: Vec::new(),
        }
    }
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
    fn needs_attention_inside_an_outcome_or_a_hint_is_still_exit_3() {
        let e = anyhow!("run log: disk full").context(NeedsAttention("COMMITTED".into()));
        let e = with_outcome(with_hint(e, "keep this output"), TargetOutcome::Committed)
            .context("import of x");
        assert_eq!(exit_code(&e), 3);
        assert_eq!(Failure::of(&e).exit_code, 3);
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

    #[test]
    fn failures_carry_what_the_target_holds() {
        let r: anyhow::Result<()> = Err(anyhow!("COMMIT: connection lost"));
        let e = with_outcome(
            r.hint("ask txid_status(42)").unwrap_err(),
            TargetOutcome::Unknown,
        )
        .context("import of x");
        assert_eq!(
            render(&e),
            "error: import of x: COMMIT: connection lost\nhint: ask txid_status(42)\n"
        );
        let f = serde_json::to_value(Failure::of(&e)).unwrap();
        assert_eq!(
            f,
            serde_json::json!({
                "status": "failed",
                "error": "import of x: COMMIT: connection lost",
                "hint": "ask txid_status(42)",
                "outcome": "unknown",
                "exit_code": 3,
                "warnings": [],
            })
        );
        // A hint inside a hint, and a hint inside an outcome, are both found.
        let r: anyhow::Result<()> = Err(anyhow!("root"));
        let nested = with_outcome(
            r.hint("inner").hint("outer").unwrap_err(),
            TargetOutcome::Unchanged,
        );
        let f = Failure::of(&nested);
        assert_eq!(f.hint.as_deref(), Some("outer\ninner"));
        assert_eq!((f.error.as_str(), f.exit_code), ("root", 2));
        let plain = Failure::of(&anyhow!("mysql://u:pw@h: refused"));
        assert_eq!(
            (plain.outcome, plain.exit_code, plain.hint),
            (None, 2, None)
        );
        assert_eq!(plain.error, "mysql://u:***@h: refused");
    }
}
