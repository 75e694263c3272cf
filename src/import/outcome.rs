//! What became of the import's transaction. After a COMMIT that lost its connection, a
//! new connection asks the server (`txid_status`), after making sure it is the same
//! server (its `system_identifier`, when this role may read it): committed, rolled back,
//! or, when the server cannot say within the bound, unknown: never a guess. `Verdict`
//! turns what is known into what is said (the run log's status, the words, exit 3).

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::config::ServerConfig;
use crate::db::postgres;
use crate::import::transaction::{CommitLost, TxState};
use crate::store::runlog::Status;

/// How long to wait for a commit the server still reports in progress.
const WAIT: Duration = Duration::from_secs(30);

/// What the server says of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    RolledBack,
    Unknown(String),
}

/// Ask the server at `cfg` (database `db`) about the lost transaction.
pub async fn resolve(
    cfg: &ServerConfig,
    db: &str,
    lost: &CommitLost,
    system_identifier: Option<&str>,
) -> Outcome {
    let deadline = Instant::now() + WAIT;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match ask(cfg, db, lost, system_identifier).await {
            Ok(Some(outcome)) => return outcome,
            Ok(None) => last = "the server still reports it in progress".into(),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Outcome::Unknown(last)
}

/// One question; None while the transaction is still in progress.
async fn ask(
    cfg: &ServerConfig,
    db: &str,
    lost: &CommitLost,
    system_identifier: Option<&str>,
) -> Result<Option<Outcome>> {
    let client = postgres::connect(cfg, db).await?;
    if let Some(want) = system_identifier {
        let now = postgres::system_identifier(&client).await?;
        if now.as_deref().is_some_and(|n| n != want) {
            return Ok(Some(Outcome::Unknown(format!(
                "a different server answers at {} (system identifier {}, not {want}): a failover?",
                cfg.display(),
                now.unwrap_or_default()
            ))));
        }
    }
    Ok(
        match postgres::txid_status(&client, lost.xid).await?.as_deref() {
            Some("committed") => Some(Outcome::Committed),
            Some("aborted") => Some(Outcome::RolledBack),
            Some("in progress") => None,
            other => Some(Outcome::Unknown(format!(
                "the server no longer knows the transaction ({other:?})"
            ))),
        },
    )
}

/// The SQL that tells, later, what became of transaction `xid` (`pg_xact_status`, which
/// is `txid_status` since PostgreSQL 13).
pub fn ask_later(xid: i64) -> String {
    format!("SELECT pg_xact_status('{xid}')")
}

/// The hint of an unknown outcome: how to learn it, and what each answer means.
pub fn ask_later_hint(xid: i64) -> String {
    format!(
        "ask the server once it answers: {}; (before PostgreSQL 13: SELECT txid_status({xid})): \
         'committed' means the import is in the target (then run verify), 'aborted' that the \
         target is unchanged",
        ask_later(xid)
    )
}

/// What an import that ended with an error means for the target, from what the server
/// said (pure): the run log's status, the words, and whether it needs attention (exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No transaction was opened: nothing was written.
    NotBegun,
    /// Rolled back: COMMIT was never sent, or the server said so.
    RolledBack,
    /// A hook ended the transaction and the server reports it committed.
    PartiallyCommitted,
    /// COMMIT was sent (or a hook ended the transaction) and no server said it rolled back.
    Unknown,
}

impl Verdict {
    /// Decide from the transaction's state. Anything in doubt is `Unknown`: "rolled
    /// back" is said only when COMMIT was never sent or the server said so.
    pub fn of(state: &TxState) -> Verdict {
        match state.escaped {
            Some(true) => return Verdict::PartiallyCommitted,
            Some(false) => return Verdict::Unknown,
            None => {}
        }
        if !state.began {
            Verdict::NotBegun
        } else if state.unknown || (state.commit.xid().is_some() && !state.server_rolled_back) {
            Verdict::Unknown
        } else {
            Verdict::RolledBack
        }
    }

    pub fn status(self) -> Status {
        match self {
            Verdict::NotBegun => Status::Failed,
            Verdict::RolledBack => Status::RolledBack,
            Verdict::PartiallyCommitted => Status::PartiallyCommitted,
            Verdict::Unknown => Status::Unknown,
        }
    }

    /// Exit 3: the target may hold what no report vouches for.
    /// What the target holds, as a `--json` failure says it.
    pub fn target_outcome(self) -> crate::hint::TargetOutcome {
        use crate::hint::TargetOutcome;
        match self {
            Verdict::NotBegun | Verdict::RolledBack => TargetOutcome::Unchanged,
            Verdict::PartiallyCommitted => TargetOutcome::PartiallyCommitted,
            Verdict::Unknown => TargetOutcome::Unknown,
        }
    }

    pub fn needs_attention(self) -> bool {
        matches!(self, Verdict::PartiallyCommitted | Verdict::Unknown)
    }

    /// What the target holds, in words (`what`: "import", "rehearsal", "migrate").
    pub fn words(self, what: &str, xid: Option<i64>) -> String {
        let ask = xid.map(ask_later);
        let xid = xid.map(|x| format!(" {x}")).unwrap_or_default();
        match self {
            Verdict::NotBegun => format!("{what} failed before any write"),
            Verdict::RolledBack if what == "rehearsal" => {
                "rehearsal: the import would fail here; rolled back, the target is unchanged"
                    .to_string()
            }
            Verdict::RolledBack => format!("{what} rolled back: the target is unchanged"),
            Verdict::PartiallyCommitted => format!(
                "{what} stopped, PART OF IT COMMITTED (transaction{xid}): the target is neither \
                 as it was nor completely loaded"
            ),
            Verdict::Unknown => format!(
                "{what} outcome UNKNOWN: transaction{xid} may or may not have committed; the \
                 target is not known to be unchanged{}",
                ask.map(|q| format!(" (ask the server: {q})"))
                    .unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_only_when_commit_was_never_sent_or_the_server_said_so() {
        let sent = |state: &mut TxState| {
            state.began = true;
            state.xid = Some(42);
            state.loaded = Some(Vec::new());
            state.commit.mark_for_tests(42);
        };
        type Setup = Box<dyn Fn(&mut TxState)>;
        let cases: Vec<(&str, Setup, Verdict)> = vec![
            ("nothing began", Box::new(|_| {}), Verdict::NotBegun),
            (
                "an error before COMMIT",
                Box::new(|s| s.began = true),
                Verdict::RolledBack,
            ),
            ("COMMIT sent, no answer", Box::new(sent), Verdict::Unknown),
            (
                "COMMIT answered with an error",
                Box::new(move |s| {
                    sent(s);
                    s.server_rolled_back = true;
                }),
                Verdict::RolledBack,
            ),
            (
                "the server could not say",
                Box::new(|s| {
                    s.began = true;
                    s.unknown = true;
                }),
                Verdict::Unknown,
            ),
            (
                "a hook committed",
                Box::new(|s| {
                    s.began = true;
                    s.escaped = Some(true);
                }),
                Verdict::PartiallyCommitted,
            ),
            (
                "a hook rolled back and ran on",
                Box::new(|s| {
                    s.began = true;
                    s.escaped = Some(false);
                }),
                Verdict::Unknown,
            ),
        ];
        for (what, set, want) in cases {
            let mut state = TxState::default();
            set(&mut state);
            let v = Verdict::of(&state);
            assert_eq!(v, want, "{what}");
            assert_eq!(
                v.needs_attention(),
                matches!(want, Verdict::Unknown | Verdict::PartiallyCommitted),
                "{what}"
            );
            let words = v.words("import", Some(42));
            assert_eq!(
                words.contains("unchanged") && !words.contains("not known"),
                want == Verdict::RolledBack,
                "{what}: {words}"
            );
        }
        assert_eq!(Verdict::Unknown.status(), Status::Unknown);
        assert_eq!(
            Verdict::PartiallyCommitted.status(),
            Status::PartiallyCommitted
        );
        assert!(ask_later_hint(42).contains("SELECT pg_xact_status('42')"));
    }
}
