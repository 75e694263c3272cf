//! Making an export visible, atomically: it is written under a hidden temporary name, and
//! only once every file and the manifest are fsynced is the directory renamed to its final
//! name (and the parent fsynced). A failure removes the temporary directory; a crash
//! leaves it behind without a manifest, never importable, listed by [`stale_partials`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::store::export_dir::{self, NewExport, is_partial};
use crate::store::manifest::Manifest;

/// Create the temporary directory (and its parents).
pub fn create(export: &NewExport) -> Result<()> {
    let tmp = export.tmp.path();
    if let Some(parent) = tmp.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::create_dir(tmp).with_context(|| format!("creating {}", tmp.display()))
}

/// Write the manifest, fsync it and the directory, then rename the directory to its
/// final name and fsync the parent: only now is the export visible. The final name is
/// the first free one (`<stamp>`, `<stamp>_2`, ...): it is reserved with `mkdir`, which
/// only one process can win, and the rename then replaces that empty directory.
pub fn seal(m: &Manifest, export: &NewExport) -> Result<PathBuf> {
    let path = export.tmp.manifest();
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut text = serde_json::to_vec_pretty(m).context("serialising the manifest")?;
    text.push(b'\n');
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    fsync_dir(export.tmp.path())?;
    let final_dir = reserve(export)?;
    if let Err(e) = std::fs::rename(export.tmp.path(), &final_dir) {
        let _ = std::fs::remove_dir(&final_dir);
        return Err(e).with_context(|| {
            format!(
                "renaming {} to {}",
                export.tmp.path().display(),
                final_dir.display()
            )
        });
    }
    if let Some(parent) = final_dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(final_dir)
}

/// Write a small file into the export being built, fsynced (the manifest's directory
/// fsync covers its name).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Create the first free final directory name, empty.
fn reserve(export: &NewExport) -> Result<PathBuf> {
    for n in 1..1000 {
        let candidate = export_dir::final_candidate(export, n);
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("creating {}", candidate.display()));
            }
        }
    }
    anyhow::bail!(
        "no free name for the export beside {}",
        export.final_dir.display()
    )
}

/// Remove the temporary directory of an export that failed.
pub fn discard(export: &NewExport) {
    let _ = std::fs::remove_dir_all(export.tmp.path());
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsyncing directory {}", dir.display()))
}

/// A temporary directory of an export that did not finish (or is still running).
#[derive(Debug, Clone)]
pub struct Partial {
    pub path: PathBuf,
    pub bytes: u64,
    /// The process that writes it, still running: never touch it.
    pub alive: bool,
}

/// Temporary export directories in `parent`, with their size and whether their
/// process still runs.
pub fn partials(parent: &Path) -> Vec<Partial> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<Partial> = entries
        .flatten()
        .filter(|e| is_partial(&e.file_name().to_string_lossy()))
        .map(|e| {
            let pid = export_dir::partial_pid(&e.file_name().to_string_lossy());
            Partial {
                bytes: dir_size(&e.path()),
                alive: pid.is_some_and(process_alive),
                path: e.path(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Remove a leftover of a process that is gone.
pub fn remove(partial: &Partial) -> Result<()> {
    if partial.alive {
        anyhow::bail!(
            "{} belongs to a running export: not removed",
            partial.path.display()
        );
    }
    std::fs::remove_dir_all(&partial.path)
        .with_context(|| format!("removing {}", partial.path.display()))
}

fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
