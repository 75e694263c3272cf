//! What the caller knows of the import's one transaction, whatever happened: its state
//! (began, COMMIT sent, the server's answer, a hook that ended it), where its time went,
//! what was loaded, and putting the sequences back when nothing was kept.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::postgres;
use crate::import::plan::Statement;
use crate::progress::Progress;
use crate::store::journal::Journal;
/// Set once COMMIT is sent, with the transaction's id, and read by whoever handles a
/// signal: from then on the outcome is the server's answer, so a signal waits for it.
#[derive(Debug, Clone, Default)]
pub struct CommitSent(std::sync::Arc<std::sync::OnceLock<i64>>);

impl CommitSent {
    /// The transaction's id, once its COMMIT was sent.
    pub fn xid(&self) -> Option<i64> {
        self.0.get().copied()
    }

    pub(crate) fn mark(&self, xid: i64) {
        let _ = self.0.set(xid);
    }

    #[cfg(test)]
    pub(crate) fn mark_for_tests(&self, xid: i64) {
        self.mark(xid)
    }
}

/// What the caller needs to know about the transaction, whatever happened.
#[derive(Debug, Default)]
pub struct TxState {
    /// A transaction was opened: a failure now means it was rolled back, unless COMMIT
    /// was sent ([`CommitSent`]) or a hook ended it (`escaped`).
    pub began: bool,
    /// The transaction's id and backend pid, taken right after BEGIN.
    pub xid: Option<i64>,
    pub pid: Option<i32>,
    /// What was loaded, kept from the moment COMMIT is sent, for the case where COMMIT
    /// lost its connection but did commit.
    pub loaded: Option<Vec<TableLoaded>>,
    /// Set when COMMIT is sent (shared with the signal handling).
    pub commit: CommitSent,
    /// The server answered COMMIT with an error, or said after a lost COMMIT that the
    /// transaction was aborted: it is rolled back.
    pub server_rolled_back: bool,
    /// COMMIT lost its connection and the server could not say what became of it.
    pub unknown: bool,
    /// A hook ended the import's transaction (`guard::Escaped`): whether the server
    /// reports it committed. Something may be kept either way.
    pub escaped: Option<bool>,
    /// Rows the hooks and fired triggers added (or, negative, removed) per target table,
    /// beyond what the COPYs loaded: verify expects them.
    pub adjustments: BTreeMap<String, i64>,
    /// Where the target's sequences stood before BEGIN (ROLLBACK does not undo setval).
    pub sequences: Option<postgres::SequencePositions>,
    /// The load ended by itself (it was not dropped by an interruption) and has put the
    /// sequences back if that was due: nothing is left to cancel or put back.
    pub settled: bool,
    /// Where the last attempt's time went (`--json`'s `steps`).
    pub steps: Steps,
}

/// Where a load's time went, in seconds per kind of step (`import --json` and
/// `migrate --json` report it as `steps`): what tells the COPYs from the checks around
/// them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Steps {
    /// `TRUNCATE ... CASCADE` of the loaded tables.
    pub truncate: f64,
    /// The COPYs (each file hashed and counted as it is sent) and staged INSERTs.
    pub copy: f64,
    /// `migrate`: waiting for the export to finish the next dataset's files.
    pub waiting_for_export: f64,
    /// Dropping indexes before a COPY and building them (and the foreign keys added
    /// back) after it.
    pub index_drops: f64,
    pub index_builds: f64,
    pub sequences: f64,
    /// The orphan check of every foreign key that involves a loaded table.
    pub orphan_checks: f64,
    pub analyze: f64,
    /// The journal's fsync and COMMIT.
    pub commit: f64,
    /// Everything else: BEGIN and the session settings, hooks, recounts, checks of
    /// DEFERRABLE constraints.
    pub other: f64,
}

impl Steps {
    pub(crate) fn add(&mut self, stmt: &Statement, seconds: f64) {
        let slot = match stmt {
            Statement::Copy(_) | Statement::Insert { .. } => &mut self.copy,
            Statement::Index(step) if step.build => &mut self.index_builds,
            Statement::Index(_) => &mut self.index_drops,
            Statement::CheckOrphans { .. } => &mut self.orphan_checks,
            Statement::Commit => &mut self.commit,
            Statement::Sql { sql, context, .. } => {
                if sql.starts_with("TRUNCATE ") {
                    &mut self.truncate
                } else if sql.starts_with("ANALYZE ") {
                    &mut self.analyze
                } else if context.starts_with("setting sequence") {
                    &mut self.sequences
                } else {
                    &mut self.other
                }
            }
            _ => &mut self.other,
        };
        *slot += seconds;
    }
}

/// After an interruption: cancel what the session is running (a hook, a COPY) so that
/// its rollback happens now, then put the sequences back — only when the load was
/// dropped mid-way (one that ended by itself has done this) and COMMIT was never sent.
/// A cancel sent to a session that runs nothing of ours could only hit our own putting
/// back (a spurious "could not be put back").
pub async fn after_interruption(
    client: &tokio_postgres::Client,
    target: &crate::config::ServerConfig,
    state: &TxState,
    progress: &Progress,
    journal: &mut Journal,
) {
    // Cancelled whether or not sequences are to be put back: else the statement (a COPY,
    // the diagnosis' checks) runs on, holding its locks, after the import has ended.
    if state.settled || !state.surely_not_committed() {
        return;
    }
    journal.line("interrupted: cancelling the statement the server is running");
    let cancel = postgres::cancel(client, target);
    if let Ok(Err(e)) = tokio::time::timeout(std::time::Duration::from_secs(5), cancel).await {
        journal.line(format!("could not cancel the running statement: {e:#}"));
    }
    put_sequences_back(client, state, progress, journal).await;
}

impl TxState {
    /// After an interruption: the transaction began, COMMIT was never sent and no hook
    /// ended it, so it surely rolled back.
    pub fn surely_not_committed(&self) -> bool {
        self.began && self.commit.xid().is_none() && !self.unknown && self.escaped.is_none()
    }
}

/// The connection was lost while COMMIT was under way: the transaction may or may not
/// have committed, and only the server can say (`import::outcome`).
#[derive(Debug)]
pub struct CommitLost {
    pub xid: i64,
    pub pid: i32,
    pub cause: String,
}

impl std::fmt::Display for CommitLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the connection was lost during COMMIT of transaction {} (backend pid {}): {}",
            self.xid, self.pid, self.cause
        )
    }
}

impl std::error::Error for CommitLost {}

/// One dataset as loaded.
#[derive(Debug, Clone, Serialize)]
pub struct TableLoaded {
    /// The export's dataset, and the target table it went into.
    pub dataset: String,
    pub table: String,
    pub rows: u64,
    /// The COPY (or staged INSERT) plus, on a table's last dataset, its index builds.
    pub seconds: f64,
    pub copy_seconds: f64,
    /// Building the table's indexes (and the foreign keys that reference them) after
    /// its COPY; 0 when they stayed during the load.
    pub index_seconds: f64,
    /// A delta: the rows it removed from the table, by key and by the source's
    /// foreign-key actions (on the table's first dataset; a table the delta only deletes
    /// from has an entry of 0 rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
    /// Of `deleted`, the rows the source's foreign-key actions (CASCADE) deleted: rows
    /// only the target held, whose parent the delta removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascaded: Option<u64>,
    /// The rows whose reference the source's SET NULL cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared: Option<u64>,
}

/// Put back the sequences that moved since BEGIN, when nothing was kept: after an
/// error the server answered, a rehearsal, or an interruption before COMMIT was sent
/// ([`TxState::surely_not_committed`]). Never when the import may have committed.
pub async fn put_sequences_back(
    client: &tokio_postgres::Client,
    state: &TxState,
    progress: &Progress,
    journal: &mut Journal,
) {
    let Some(positions) = &state.sequences else {
        return;
    };
    if positions.is_empty() {
        return;
    }
    if client.is_closed() {
        let msg = "sequences could not be put back (the connection to PostgreSQL was lost): \
                   they may stand past where they were, which skips values but never repeats one";
        progress.warn(msg);
        journal.line(msg);
        return;
    }
    let restore = postgres::restore_sequences(client, positions);
    match tokio::time::timeout(std::time::Duration::from_secs(10), restore).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => journal.line(format!(
            "{n} {} put back where {} before the import",
            if n == 1 { "sequence" } else { "sequences" },
            if n == 1 { "it stood" } else { "they stood" }
        )),
        Ok(Err(e)) => {
            let msg = format!(
                "sequences could not be put back ({e:#}): they may stand past where they were, \
                 which skips values but never repeats one"
            );
            progress.warn(&msg);
            journal.line(msg);
        }
        Err(_) => {
            let msg = "sequences could not be put back (no answer within 10 s): they may stand \
                       past where they were, which skips values but never repeats one";
            progress.warn(msg);
            journal.line(msg);
        }
    }
}
