//! The import's transaction watched from inside, the backstop behind `mapping::sqlcheck`:
//! right after BEGIN the transaction takes its id (`txid_current()`, which forces one) and
//! the session settings the load relies on are read; after every hook the session must
//! still be in that transaction (`txid_current_if_assigned()`), and the settings are set
//! again as they were (a hook may not change how the rest of the data is read). When the
//! transaction is no longer the import's, `Escaped` says what the server reports became
//! of it; nothing here decides what that means for the user (`import::outcome` does).

use anyhow::{Context, Result};
use tokio_postgres::Transaction;

use crate::db::postgres;
use crate::import::plan::{RECORD_XID, STILL_OURS};

/// The settings a hook could change and the load depends on: how values are read
/// (time zone, date and interval styles, encoding, string escapes), what unqualified
/// names mean, how constants are printed, triggers and foreign-key checks, sort memory.
pub const SETTINGS: [&str; 10] = [
    "session_replication_role",
    "TimeZone",
    "DateStyle",
    "IntervalStyle",
    "search_path",
    "client_encoding",
    "standard_conforming_strings",
    "extra_float_digits",
    "bytea_output",
    "maintenance_work_mem",
];

/// The import's transaction: its id, its backend, and its settings as the load set them.
#[derive(Debug, Clone)]
pub struct Guard {
    pub xid: i64,
    pub pid: i32,
    settings: Vec<(String, String)>,
}

/// Take the transaction's id and read its settings (right after BEGIN and the session's
/// own SET LOCALs).
pub async fn begin(tx: &Transaction<'_>) -> Result<Guard> {
    let row = tx
        .query_one(RECORD_XID, &[])
        .await
        .map_err(postgres::error)
        .context("recording the transaction id")?;
    let names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    let settings = current(tx, &names)
        .await
        .context("reading the import's session settings")?;
    Ok(Guard {
        xid: row.get(0),
        pid: row.get(1),
        settings,
    })
}

/// The session's value of each setting in `names`, with its name.
async fn current(tx: &Transaction<'_>, names: &[String]) -> Result<Vec<(String, String)>> {
    Ok(tx
        .query(
            "SELECT n, current_setting(n) FROM unnest($1::text[]) AS n",
            &[&names],
        )
        .await
        .map_err(postgres::error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A setting a hook changed, set back to the import's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetBack {
    pub name: String,
    /// What the hook left.
    pub hook: String,
    /// What the import set again.
    pub import: String,
}

impl SetBack {
    /// The statement that sets it back, as the journal shows it (replayed, it does the
    /// same).
    pub fn sql(&self) -> String {
        use crate::db::sql::pg::literal;
        format!(
            "SELECT set_config({}, {}, true)",
            literal(&self.name),
            literal(&self.import)
        )
    }
}

impl Guard {
    /// After the hook `hook` (its description): still our transaction? Then set the
    /// settings again, with `session_replication_role` as the hooks run (`role`), and
    /// say which the hook had changed. Else roll back whatever transaction the hook
    /// left open and return `Escaped`.
    pub async fn after_hook(
        &self,
        tx: &Transaction<'_>,
        hook: &str,
        role: &str,
    ) -> Result<Vec<SetBack>> {
        let now: Option<i64> = tx
            .query_one(STILL_OURS, &[])
            .await
            .map_err(postgres::error)
            .with_context(|| format!("checking the import's transaction after {hook}"))?
            .get(0);
        if now != Some(self.xid) {
            // The hook committed or rolled back the import's transaction (and may have
            // opened another): roll back whatever is open now, then ask about ours.
            let _ = tx.batch_execute("ROLLBACK").await;
            let status = tx
                .query_one("SELECT txid_status($1)", &[&self.xid])
                .await
                .ok()
                .and_then(|r| r.get::<_, Option<String>>(0));
            return Err(Escaped {
                hook: hook.to_string(),
                xid: self.xid,
                now,
                status,
            }
            .into());
        }
        let (names, values): (Vec<String>, Vec<String>) = self
            .settings
            .iter()
            .map(|(n, v)| match n.as_str() {
                "session_replication_role" => (n.clone(), role.to_string()),
                _ => (n.clone(), v.clone()),
            })
            .unzip();
        let left: std::collections::BTreeMap<String, String> = current(tx, &names)
            .await
            .with_context(|| format!("reading the session settings after {hook}"))?
            .into_iter()
            .collect();
        let set_back: Vec<SetBack> = names
            .iter()
            .zip(&values)
            .filter_map(|(name, want)| {
                let got = left.get(name)?;
                (got != want).then(|| SetBack {
                    name: name.clone(),
                    hook: got.clone(),
                    import: want.clone(),
                })
            })
            .collect();
        tx.query(
            "SELECT set_config(n, v, true) FROM unnest($1::text[], $2::text[]) AS s(n, v)",
            &[&names, &values],
        )
        .await
        .map_err(postgres::error)
        .with_context(|| format!("setting the import's session settings again after {hook}"))?;
        Ok(set_back)
    }
}

/// A hook ended the import's transaction: what the server says of it (`txid_status`:
/// `committed`, `aborted`, `in progress`; None when it could not be asked).
#[derive(Debug)]
pub struct Escaped {
    pub hook: String,
    pub xid: i64,
    /// The session's transaction after the hook (None: none, or one without an id yet).
    pub now: Option<i64>,
    pub status: Option<String>,
}

impl Escaped {
    /// The server reports the import's transaction committed: the work before the hook
    /// (the TRUNCATE, and the loads before an `after` hook) is in the target.
    pub fn committed(&self) -> bool {
        self.status.as_deref() == Some("committed")
    }
}

impl std::fmt::Display for Escaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.status.as_deref() {
            Some("committed") => "the server reports it COMMITTED: the target holds the work \
                 done before that hook (the TRUNCATE, and every table loaded before it), and \
                 what the hook did after it"
                .to_string(),
            Some("aborted") => "the server reports it rolled back, but what the hook ran \
                 after ending it ran outside the import and may be kept"
                .to_string(),
            Some(other) => format!("the server reports it `{other}`"),
            None => "the server could not say what became of it".to_string(),
        };
        write!(
            f,
            "{} ended the import's transaction {} (the session is now {}): {what}",
            self.hook,
            self.xid,
            match self.now {
                Some(x) => format!("in transaction {x}"),
                None => "outside it".to_string(),
            }
        )
    }
}

impl std::error::Error for Escaped {}
