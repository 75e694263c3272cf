//! What became of a transaction whose COMMIT lost its connection: a new connection asks
//! the server (`txid_status`), after making sure it is the same server (its
//! `system_identifier`, when this role may read it). Committed, rolled back, or, when
//! the server cannot say within the bound, unknown: never a guess.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::config::ServerConfig;
use crate::db::postgres;
use crate::import::load::CommitLost;

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
