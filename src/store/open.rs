//! Opening an existing export for import or verify: its manifest, read and validated.

use anyhow::{Context, Result, anyhow};

use crate::hint::WithHint;
use crate::memory::{MANIFEST_MAX, MAPPING_MAX};
use crate::store::export_dir::ExportDir;
use crate::store::file::{self, Links};
use crate::store::manifest::{self, Loaded};

/// Read and parse the manifest of `dir`.
pub fn manifest(dir: &ExportDir) -> Result<Loaded> {
    manifest_and_sha256(dir).map(|(m, _)| m)
}

/// Read and parse the manifest of `dir`, with the sha256 of the bytes read: a delta
/// chain names its exports by it (`pgconverge.state`, a delta's `base`).
pub fn manifest_and_sha256(dir: &ExportDir) -> Result<(Loaded, String)> {
    use sha2::{Digest, Sha256};
    if !dir.path().exists() {
        let near = nearest_exports(dir.path());
        let hint = match near.is_empty() {
            true => "export first: `pgconverge export <profile|database>` prints the directory it writes".to_string(),
            false => format!("the nearest exports are: {}", near.join(", ")),
        };
        return Err(anyhow!(
            "export directory {} does not exist",
            dir.path().display()
        ))
        .hint(hint);
    }
    let path = dir.manifest();
    if !path.exists() && std::fs::symlink_metadata(&path).is_err() {
        return Err(anyhow!("{} is missing", path.display()))
            .hint("an export directory without its manifest is incomplete (interrupted export?): export again");
    }
    // A symlink, FIFO or device would read anything or hang: only a regular file of a
    // bounded size is a manifest.
    let text = file::read_text(&path, Links::Refuse, MANIFEST_MAX, "manifest")
        .hint("an export's manifest is a plain file written by pgconverge: export again")?;
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let loaded = manifest::parse(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok((loaded, sha256))
}

/// The mapping file the export stored (`mapping.toml`), checked against its sha256 in
/// the manifest; None when the export stored none.
pub fn mapping(dir: &ExportDir, manifest: &Loaded) -> Result<Option<String>> {
    use sha2::{Digest, Sha256};
    let Some(stored) = manifest.mapping() else {
        return Ok(None);
    };
    let path = dir.file(&stored.file);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(anyhow!("{} is missing", path.display()))
            .hint("the export's mapping file is missing: export again");
    }
    let text = file::read_text(&path, Links::Refuse, MAPPING_MAX, "mapping file")?;
    let got = hex::encode(Sha256::digest(text.as_bytes()));
    if got != stored.sha256 {
        return Err(anyhow!(
            "{} changed after the export (sha256 {got}, manifest {})",
            path.display(),
            stored.sha256
        ))
        .hint("restore it, or give the mapping to use with --map (it must read the same data)");
    }
    Ok(Some(text))
}

/// An export directory's absolute path as text, as the run log records it for verify.
pub fn absolute(dir: &std::path::Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Existing exports near a path that does not exist: the stamp-named directories
/// (holding a manifest) directly under its deepest existing parent, closest spelling
/// first. Only that directory is searched: a mistyped `/tmp/nope/...` must not point at
/// exports of some other project elsewhere under `/tmp`.
pub fn nearest_exports(missing: &std::path::Path) -> Vec<String> {
    let mut base = missing.parent().map(|p| p.to_path_buf());
    while let Some(b) = &base {
        if b.as_os_str().is_empty() || b.is_dir() {
            break;
        }
        base = b.parent().map(|p| p.to_path_buf());
    }
    let base = match base {
        Some(b) if !b.as_os_str().is_empty() => b,
        _ => std::path::PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(crate::store::export_dir::is_export_stamp)
                && p.join(crate::store::export_dir::MANIFEST).is_file()
        })
        .map(|p| p.display().to_string())
        .collect();
    let want = missing.display().to_string();
    found.sort_by_key(|f| (crate::hint::distance(f, &want), f.clone()));
    found.truncate(3);
    found
}
