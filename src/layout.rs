//! Every path of an export directory and of the files written beside the run log is
//! built here and nowhere else. An export is written under a hidden temporary name and
//! renamed to its final name only when complete, so a directory with a final name always
//! holds a complete manifest.

use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = "migration_manifest.json";

/// `<root>/<name>/<YYYYMMDD_HHMMSS>` and its temporary sibling.
#[derive(Debug, Clone)]
pub struct ExportPaths {
    pub final_dir: PathBuf,
    pub tmp_dir: PathBuf,
    pub timestamp: String,
}

/// Paths for a new export started at `now` (UTC); a suffix keeps two exports started in
/// the same second apart.
pub fn new_export(root: &Path, name: &str, now: chrono::DateTime<chrono::Utc>) -> ExportPaths {
    let timestamp = now.format("%Y%m%d_%H%M%S").to_string();
    let parent = root.join(name);
    let mut stamp = timestamp.clone();
    let mut n = 1;
    while parent.join(&stamp).exists() {
        n += 1;
        stamp = format!("{timestamp}_{n}");
    }
    ExportPaths {
        final_dir: parent.join(&stamp),
        tmp_dir: parent.join(format!(".{stamp}.partial-{}", std::process::id())),
        timestamp,
    }
}

/// Is this directory name a temporary (incomplete) export?
pub fn is_partial(dir_name: &str) -> bool {
    dir_name.starts_with('.') && dir_name.contains(".partial-")
}

/// The CSV file of a table.
pub fn csv_file_name(table: &str) -> String {
    format!("{table}.csv")
}

/// Part `n` (from 1) of a table split into key ranges.
pub fn csv_part_name(table: &str, n: usize) -> String {
    format!("{table}.part-{n:03}.csv")
}

pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST)
}

/// `import_<timestamp>.log` and `.sql`, beside the run log.
pub fn import_files(run_log: &Path, timestamp: &str) -> (PathBuf, PathBuf) {
    let dir = run_log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    (
        dir.join(format!("import_{timestamp}.log")),
        dir.join(format!("import_{timestamp}.sql")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T05:06:07Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let p = new_export(Path::new("/nonexistent/csv_exports"), "alkemio", now);
        assert_eq!(
            p.final_dir,
            Path::new("/nonexistent/csv_exports/alkemio/20261121_050607")
        );
        let tmp = p.tmp_dir.file_name().unwrap().to_str().unwrap();
        assert!(is_partial(tmp), "{tmp}");
        assert!(!is_partial("20261121_050607"));
        let (log, sql) = import_files(Path::new("migration_log.jsonl"), "20261121_050607");
        assert_eq!(log, Path::new("./import_20261121_050607.log"));
        assert_eq!(sql, Path::new("./import_20261121_050607.sql"));
    }
}
