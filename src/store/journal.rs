//! `import_<timestamp>.log` and `import_<timestamp>.sql`, written beside the run log as
//! the import goes (each line flushed at once, so a crash leaves what happened up to it):
//! the log says what happened, the SQL file holds every statement executed, in order.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct Journal {
    log: File,
    sql: File,
    pub log_path: PathBuf,
    pub sql_path: PathBuf,
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
        })
    }

    /// A timestamped line in the log (redacted and escaped as on a terminal).
    pub fn line(&mut self, text: impl AsRef<str>) {
        let stamped = format!(
            "{} {}\n",
            crate::store::runlog::now_rfc3339(),
            crate::out::shown(text.as_ref())
        );
        if let Err(e) = self.log.write_all(stamped.as_bytes()) {
            crate::out::eprintln(format!("warning: writing {}: {e}", self.log_path.display()));
        }
    }

    /// A statement in the SQL file, as executed.
    pub fn sql(&mut self, stmt: impl AsRef<str>) {
        let text = format!("{};\n", stmt.as_ref());
        if let Err(e) = self.sql.write_all(text.as_bytes()) {
            crate::out::eprintln(format!("warning: writing {}: {e}", self.sql_path.display()));
        }
    }

    /// fsync both files.
    pub fn close(self) {
        let _ = self.log.sync_all();
        let _ = self.sql.sync_all();
    }
}
