//! The append-only run log: JSON Lines, one object per event. Each entry is serialised
//! into one buffer and written with a single `write` on a file opened for append, then
//! fsynced, so concurrent writers never interleave and nothing is ever rewritten.
//! Also reads the old shell script's `{"migration_runs":[...]}` file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::hint::WithHint;

pub const STATUSES: [&str; 7] = [
    "started",
    "in_progress",
    "completed",
    "rolled_back",
    "failed",
    "unknown",
    "partially_committed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Started,
    InProgress,
    Completed,
    RolledBack,
    Failed,
    /// COMMIT was sent (or a hook ended the import's transaction) and no server said what
    /// became of it: the target needs a look (exit 3).
    Unknown,
    /// A hook ended the import's transaction and the server reports it committed: the
    /// target holds part of the work (exit 3).
    PartiallyCommitted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::RolledBack => "rolled_back",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::PartiallyCommitted => "partially_committed",
        }
    }
}

impl FromStr for Status {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "started" => Status::Started,
            "in_progress" => Status::InProgress,
            "completed" => Status::Completed,
            "rolled_back" => Status::RolledBack,
            "failed" => Status::Failed,
            "unknown" => Status::Unknown,
            "partially_committed" => Status::PartiallyCommitted,
            other => bail!(
                "`{other}` is not a run status; valid statuses: {}",
                STATUSES.join(", ")
            ),
        })
    }
}

/// One line of the run log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub timestamp: String,
    pub status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub tool_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Anything command-specific (per-table counts, differences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Set when read from the legacy `migration_log.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Entry {
    /// A new entry stamped now, on this host, by this user and tool version.
    /// The message and the command are redacted of passwords (`redact::text`).
    pub fn new(status: Status, command: &str, message: impl Into<String>) -> Entry {
        Entry {
            timestamp: now_rfc3339(),
            status: status.as_str().into(),
            message: crate::redact::text(&message.into()).into_owned(),
            command: crate::redact::text(command).into_owned(),
            host: hostname(),
            user: username(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            export_dir: None,
            tables: None,
            rows: None,
            duration_ms: None,
            details: None,
            source: None,
        }
    }
}

impl Entry {
    pub fn export_dir(mut self, dir: impl std::fmt::Display) -> Entry {
        self.export_dir = Some(dir.to_string());
        self
    }

    pub fn tables(mut self, n: usize) -> Entry {
        self.tables = Some(n as u64);
        self
    }

    pub fn rows(mut self, n: u64) -> Entry {
        self.rows = Some(n);
        self
    }

    pub fn details(mut self, v: serde_json::Value) -> Entry {
        self.details = Some(v);
        self
    }
}

/// One command's entries: built here with its command line, and, after the start, its
/// duration; appended with a warning when the log cannot be written, or, for the entries
/// the audit trail needs (`log_required`), an error.
pub struct Recorder {
    path: std::path::PathBuf,
    command: String,
    clock: std::time::Instant,
}

impl Recorder {
    pub fn new(path: &Path, command: &str) -> Recorder {
        Recorder {
            path: path.to_path_buf(),
            command: command.to_string(),
            clock: std::time::Instant::now(),
        }
    }

    /// An entry of this command; every status but `started` carries the elapsed time.
    pub fn entry(&self, status: Status, message: impl Into<String>) -> Entry {
        let mut e = Entry::new(status, &self.command, message);
        if status != Status::Started {
            e.duration_ms = Some(self.clock.elapsed().as_millis() as u64);
        }
        e
    }

    pub fn log(&self, entry: Entry) {
        append_or_warn(&self.path, &entry);
    }

    /// Append, or say why not: for the entries an import may not run (or end) without.
    pub fn log_required(&self, entry: Entry) -> Result<()> {
        append(&self.path, &entry)
    }
}

/// UTC, RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Who ran the command: the operating system's user (the process's uid, named from
/// /etc/passwd), whatever `$USER` says or whether it is set at all (a container, cron, a
/// Kubernetes Job); `uid 10001` when the uid has no name.
pub fn username() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let named = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        user_of(&passwd, uid)
    });
    match (named, uid) {
        (Some(name), _) => name,
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
    }
}

/// The name /etc/passwd gives a uid (pure).
fn user_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// Append one entry: one `write` of one line to a file opened with O_APPEND, then fsync.
pub fn append(path: &Path, entry: &Entry) -> Result<()> {
    let mut line = serde_json::to_vec(entry).context("serialising a run-log entry")?;
    line.push(b'\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the run log's directory {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the run log {}", path.display()))
        .hint("set --run-log or PGCONVERGE_RUN_LOG to a writable path")?;
    // A regular file opened for append takes a whole small write at once; `write` (not
    // `write_all`) lets us notice the impossible short write instead of splitting the line.
    let n = file
        .write(&line)
        .with_context(|| format!("appending to the run log {}", path.display()))?;
    if n != line.len() {
        bail!(
            "short write to the run log {} ({n} of {} bytes)",
            path.display(),
            line.len()
        );
    }
    file.sync_data()
        .with_context(|| format!("fsyncing the run log {}", path.display()))?;
    Ok(())
}

/// Append, but only warn on failure: a broken run log must not fail a finished migration.
pub fn append_or_warn(path: &Path, entry: &Entry) {
    if let Err(e) = append(path, entry) {
        crate::out::eprintln(format!("warning: {e:#}"));
    }
}

/// The rows the newest completed import of the export at `dir` (its absolute path) into
/// `target_db`.`schema` recorded as added (or removed) by its hooks and fired triggers,
/// per table (pure).
pub fn import_adjustments(
    entries: &[Entry],
    dir: &str,
    target_db: &str,
    schema: &str,
) -> std::collections::BTreeMap<String, i64> {
    entries
        .iter()
        .rev()
        .filter(|e| e.status == Status::Completed.as_str())
        .filter_map(|e| e.details.as_ref()?.get("import"))
        .find(|i| {
            i.get("export_dir").and_then(|v| v.as_str()) == Some(dir)
                && i.get("target_database").and_then(|v| v.as_str()) == Some(target_db)
                && i.get("schema").and_then(|v| v.as_str()) == Some(schema)
        })
        .and_then(|i| i.get("adjustments"))
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default()
}

/// The old shell script's `migration_log.json` beside the run log, if there is one.
pub fn legacy_beside(run_log: &Path) -> Option<std::path::PathBuf> {
    let beside = run_log
        .parent()
        .map(|d| d.join("migration_log.json"))
        .unwrap_or_else(|| "migration_log.json".into());
    beside.exists().then_some(beside)
}

/// Every entry of the run log (none if it does not exist yet), after those of `legacy`.
pub fn read_all(run_log: &Path, legacy: Option<&Path>) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if let Some(path) = legacy {
        entries.extend(read(path)?);
    }
    if run_log.exists() {
        entries.extend(read(run_log)?);
    }
    Ok(entries)
}

/// Read a run log: JSON Lines, or the legacy `{"migration_runs":[...]}` document.
/// Lines that are not valid JSON are reported on stderr and skipped.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parse either format (pure).
pub fn parse(text: &str, name: &str) -> Result<Vec<Entry>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{')
        && let Ok(doc) = serde_json::from_str::<serde_json::Value>(trimmed)
        && let Some(runs) = doc.get("migration_runs")
    {
        let runs = runs
            .as_array()
            .with_context(|| format!("{name}: `migration_runs` is not an array"))?;
        return Ok(runs.iter().map(legacy_entry).collect());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(e) => crate::out::eprintln(format!(
                "warning: {name} line {}: not a run-log entry ({e})",
                i + 1
            )),
        }
    }
    Ok(out)
}

/// The old script wrote free-form objects; keep what we recognise, the rest in details.
fn legacy_entry(v: &serde_json::Value) -> Entry {
    let s = |k: &str| {
        v.get(k)
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    Entry {
        timestamp: s("timestamp"),
        status: s("status"),
        message: s("message"),
        command: s("command"),
        host: s("host"),
        user: s("user"),
        tool_version: s("tool_version"),
        export_dir: None,
        tables: None,
        rows: None,
        duration_ms: None,
        details: Some(v.clone()),
        source: Some("legacy".into()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_user_is_the_uid_s_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npgconverge:x:10001:10001::/work:/bin/sh\n";
        assert_eq!(user_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_of(passwd, 10001).as_deref(), Some("pgconverge"));
        assert_eq!(user_of(passwd, 42), None);
    }

    use super::*;

    #[test]
    fn statuses_parse_and_bogus_names_the_valid_ones() {
        for s in STATUSES {
            assert_eq!(s.parse::<Status>().unwrap().as_str(), s);
        }
        let err = "bogus".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains(
            "started, in_progress, completed, rolled_back, failed, unknown, partially_committed"
        ));
    }

    #[test]
    fn parses_lines_and_skips_garbage() {
        let text = "{\"timestamp\":\"t\",\"status\":\"started\"}\nnot json\n\n{\"timestamp\":\"u\",\"status\":\"failed\",\"message\":\"m\"}\n";
        let e = parse(text, "log").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].message, "m");
    }

    #[test]
    fn parses_legacy_document() {
        let text = r#"{"migration_runs":[{"timestamp":"2024-05-01T10:00:00Z","status":"completed","message":"kratos done","rows":12}]}"#;
        let e = parse(text, "legacy").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].status, "completed");
        assert_eq!(e[0].source.as_deref(), Some("legacy"));
    }
}
