//! `import_<timestamp>.log` and `import_<timestamp>.sql`, written beside the run log as
//! the import goes (each line flushed at once, so a crash leaves what happened up to it):
//! the log says what happened, the SQL file holds every statement executed, in order.
//! The journal is part of the audit trail: the first write that fails is kept, and
//! `sync` (before COMMIT) and `close` (after it) report it, so that nothing is committed
//! without its record and a record lost after COMMIT is said.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

pub struct Journal {
    log: File,
    sql: File,
    pub log_path: PathBuf,
    pub sql_path: PathBuf,
    /// The first write that failed, in words.
    failed: Option<String>,
}

impl Journal {
    pub fn create(run_log: &Path, timestamp: &str) -> Result<Journal> {
        let (log_path, sql_path) = crate::store::export_dir::import_files(run_log, timestamp);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("creating {}", p.display()))
        };
        Ok(Journal {
            log: open(&log_path)?,
            sql: open(&sql_path)?,
            log_path,
            sql_path,
            failed: None,
        })
    }

    /// A timestamped line in the log (redacted and escaped as on a terminal).
    pub fn line(&mut self, text: impl AsRef<str>) {
        let stamped = format!(
            "{} {}\n",
            crate::store::runlog::now_rfc3339(),
            crate::out::shown(text.as_ref())
        );
        let result = self.log.write_all(stamped.as_bytes());
        self.note(result, true);
    }

    /// A statement in the SQL file, as executed.
    pub fn sql(&mut self, stmt: impl AsRef<str>) {
        self.sql_with(stmt, None);
    }

    /// A statement in the SQL file, as executed, with what it was for in a comment after
    /// its `;` (so that the file reads as SQL).
    pub fn sql_with(&mut self, stmt: impl AsRef<str>, comment: Option<&str>) {
        self.terminated(&crate::db::sql::pg::terminated(stmt.as_ref(), comment));
    }

    /// Statements already ended by their `;` (`db::sql::pg::terminated`), as executed.
    pub fn terminated(&mut self, sql: &str) {
        let result = self.sql.write_all(format!("{sql}\n").as_bytes());
        self.note(result, false);
    }

    /// A comment line in the SQL file: what became of the statements above it.
    pub fn sql_note(&mut self, text: &str) {
        let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let result = self.sql.write_all(format!("-- {one_line}\n").as_bytes());
        self.note(result, false);
    }

    /// A transaction the import rolled back before trying again (or listing what broke
    /// a constraint): the ROLLBACK in the SQL file, with why, and why in the log.
    pub fn rolled_back(&mut self, why: &str) {
        self.sql_with("ROLLBACK", Some(why));
        self.line(format!("ROLLBACK: {why}"));
    }

    /// Keep (and say once) the first failed write.
    fn note(&mut self, result: std::io::Result<()>, log: bool) {
        if let (Err(e), None) = (result, &self.failed) {
            let path = if log { &self.log_path } else { &self.sql_path };
            let msg = format!("writing the journal {}: {e}", path.display());
            crate::out::eprintln(format!("warning: {msg}"));
            self.failed = Some(msg);
        }
    }

    /// fsync both files; an error if any write failed or the files cannot be synced.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(msg) = &self.failed {
            return Err(anyhow!("{msg}"));
        }
        for (file, path) in [(&self.log, &self.log_path), (&self.sql, &self.sql_path)] {
            file.sync_all()
                .with_context(|| format!("fsyncing the journal {}", path.display()))?;
        }
        Ok(())
    }

    /// fsync both files and close them: an error if any write failed.
    pub fn close(mut self) -> Result<()> {
        self.sync()
    }
}
