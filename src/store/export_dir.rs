//! PURE: every name and path of an export directory, and of the files written beside
//! the run log, is built here and nowhere else (`publish` and `open` do the file system
//! work). An export is written under a hidden temporary name and renamed to its final
//! name only when complete, so a directory with a final name always holds a complete
//! manifest. A table's file name is derived from its name by [`file_stems`], never used
//! raw: a table called `../../x` or `/tmp/victim` stays inside the directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The manifest's file name.
pub const MANIFEST: &str = "migration_manifest.json";

/// An export directory (finished, or being written under its temporary name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDir {
    path: PathBuf,
}

impl ExportDir {
    pub fn at(path: impl Into<PathBuf>) -> ExportDir {
        ExportDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> PathBuf {
        self.path.join(MANIFEST)
    }

    /// A file of the export, by the name the manifest records (checked to be a plain
    /// file name when the manifest is read).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// A new export: the final directory it is meant for and the temporary one it is
/// written in (unique to this process).
#[derive(Debug, Clone)]
pub struct NewExport {
    pub final_dir: PathBuf,
    pub tmp: ExportDir,
    /// `YYYYMMDD_HHMMSS`, UTC, as the old scripts' `export_info.timestamp`.
    pub timestamp: String,
}

/// Paths for a new export by process `pid` started at `now` (UTC) under
/// `<root>/<name>/`.
pub fn new_export(
    root: &Path,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
    pid: u32,
) -> NewExport {
    let timestamp = now.format("%Y%m%d_%H%M%S").to_string();
    let parent = root.join(safe_stem(name));
    NewExport {
        final_dir: parent.join(&timestamp),
        tmp: ExportDir::at(parent.join(format!(".{timestamp}.partial-{pid}"))),
        timestamp,
    }
}

/// The `n`-th choice of final name (from 1) when earlier ones are taken: an export
/// started in the same second as another gets `<stamp>_2`, and so on.
pub fn final_candidate(export: &NewExport, n: u32) -> PathBuf {
    if n <= 1 {
        return export.final_dir.clone();
    }
    let mut name = export.final_dir.as_os_str().to_owned();
    name.push(format!("_{n}"));
    PathBuf::from(name)
}

/// Whether a directory name is an export's: `YYYYMMDD_HHMMSS`, or `_N` after it when
/// another export of the same second took the name.
pub fn is_export_stamp(dir_name: &str) -> bool {
    let (stamp, n) = match dir_name.get(15..) {
        Some("") => (dir_name, None),
        Some(rest) => (&dir_name[..15], rest.strip_prefix('_')),
        None => return false,
    };
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 15
        && digits(0..8)
        && b[8] == b'_'
        && digits(9..15)
        && n.is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The pid a temporary directory's name carries (`.<stamp>.partial-<pid>`).
pub fn partial_pid(dir_name: &str) -> Option<u32> {
    dir_name
        .rsplit_once(".partial-")
        .filter(|_| dir_name.starts_with('.'))
        .and_then(|(_, pid)| pid.parse().ok())
}

/// Is this directory name a temporary (incomplete) export?
pub fn is_partial(dir_name: &str) -> bool {
    dir_name.starts_with('.') && dir_name.contains(".partial-")
}

/// The CSV file of a table, from its stem (a delta's upserted rows too).
pub fn csv_file_name(stem: &str) -> String {
    format!("{stem}.csv")
}

/// A delta's file of a table's deleted keys. Stems hold no `.`, so it never meets
/// another table's file.
pub fn deleted_file_name(stem: &str) -> String {
    format!("{stem}.deleted.csv")
}

/// A delta's file of a cascading parent's removed keys (and how each went).
pub fn removed_file_name(stem: &str) -> String {
    format!("{stem}.removed.csv")
}

/// Part `n` (from 1) of a table split into key ranges.
pub fn csv_part_name(stem: &str, n: usize) -> String {
    format!("{stem}.part-{n:03}.csv")
}

/// Longest stem kept from a name; the rest is represented by the hash suffix.
const STEM_MAX: usize = 80;

/// A name as a file-name stem: letters, digits, `_` and `-` are kept, anything else
/// (`/`, `.`, spaces, non-ASCII) becomes `_`, and a name that had to change, or is too
/// long, gets `-` + 8 hex digits of its sha256, so that distinct names stay distinct.
pub fn safe_stem(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned == name && !name.is_empty() && name.len() <= STEM_MAX {
        return cleaned;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let head: String = cleaned.chars().take(STEM_MAX).collect();
    format!("{head}-{hash}")
}

/// File-name stems for these table names, in the same order: [`safe_stem`] of each, made
/// unique when two stems differ only by letter case (case-insensitive file systems).
pub fn file_stems(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|n| {
            let mut stem = safe_stem(n);
            if !seen.insert(stem.to_ascii_lowercase()) {
                let hash = hex::encode(&Sha256::digest(n.as_bytes())[..4]);
                stem = format!("{stem}-{hash}");
                seen.insert(stem.to_ascii_lowercase());
            }
            stem
        })
        .collect()
}

/// `import_<stamp>.log` and `.sql`, beside the run log; the stamp should be unique
/// (sub-second time and pid, see [`run_stamp`]).
pub fn import_files(run_log: &Path, stamp: &str) -> (PathBuf, PathBuf) {
    let dir = run_log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    (
        dir.join(format!("import_{stamp}.log")),
        dir.join(format!("import_{stamp}.sql")),
    )
}

/// A stamp unique to one run of one process: UTC time to the microsecond and the pid.
pub fn run_stamp(now: chrono::DateTime<chrono::Utc>, pid: u32) -> String {
    format!("{}_{pid}", now.format("%Y%m%d_%H%M%S_%6f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T05:06:07Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let p = new_export(Path::new("/nonexistent/csv_exports"), "alkemio", now, 42);
        assert_eq!(
            p.final_dir,
            Path::new("/nonexistent/csv_exports/alkemio/20261121_050607")
        );
        assert_eq!(
            final_candidate(&p, 3),
            Path::new("/nonexistent/csv_exports/alkemio/20261121_050607_3")
        );
        let tmp = p.tmp.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(tmp, ".20261121_050607.partial-42");
        assert!(is_partial(tmp));
        assert_eq!(partial_pid(tmp), Some(42));
        assert!(!is_partial("20261121_050607"));
        assert_eq!(partial_pid("20261121_050607"), None);
        assert_eq!(run_stamp(now, 7), "20261121_050607_000000_7");
        let (log, sql) = import_files(Path::new("migration_log.jsonl"), "20261121_050607");
        assert_eq!(log, Path::new("./import_20261121_050607.log"));
        assert_eq!(sql, Path::new("./import_20261121_050607.sql"));
    }

    #[test]
    fn export_stamps_are_recognised_by_their_shape() {
        for (name, want) in [
            ("20261121_050607", true),
            ("20261121_050607_2", true),
            ("20261121_050607_12", true),
            ("20261121_050607_", false),
            ("20261121_05060", false),
            ("20261121-050607", false),
            ("2026112a_050607", false),
            (".20261121_050607.partial-12", false),
            ("alkemio", false),
            ("", false),
            ("20261121_050607_x", false),
        ] {
            assert_eq!(is_export_stamp(name), want, "{name}");
        }
    }

    #[test]
    fn table_names_become_safe_unique_stems() {
        let cases: &[(&str, &str)] = &[
            ("user", "user"),
            ("query-result-cache", "query-result-cache"),
            ("camelCase_1", "camelCase_1"),
        ];
        for (name, want) in cases {
            assert_eq!(safe_stem(name), *want);
        }
        for hostile in [
            "../../../escape",
            "/tmp/x/victim",
            ".hidden",
            "a b",
            "é",
            "",
        ] {
            let stem = safe_stem(hostile);
            assert!(
                !stem.is_empty()
                    && !stem.starts_with('.')
                    && stem
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{hostile:?} -> {stem:?}"
            );
        }
        // Names that clean up alike, or differ only by case, still get distinct stems.
        let names: Vec<String> = ["a/b", "a.b", "User", "user", "x".repeat(300).as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let stems = file_stems(&names);
        let lower: std::collections::HashSet<String> =
            stems.iter().map(|s| s.to_ascii_lowercase()).collect();
        assert_eq!(lower.len(), names.len(), "{stems:?}");
        assert!(stems[4].len() < 100, "{}", stems[4]);
        assert_eq!(stems[2], "User");
        assert!(stems[3].starts_with("user-"), "{}", stems[3]);
    }
}
