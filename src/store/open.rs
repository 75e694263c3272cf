//! Opening an existing export for import or verify: its manifest, read and validated.

use anyhow::{Context, Result, anyhow};

use crate::hint::WithHint;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::{self, Loaded};

/// Read and parse the manifest of `dir`.
pub fn manifest(dir: &ExportDir) -> Result<Loaded> {
    let path = dir.manifest();
    // A FIFO or device would hang or feed anything: only a regular file is a manifest.
    if let Ok(meta) = std::fs::metadata(&path)
        && !meta.is_file()
    {
        return Err(anyhow!("{} is not a regular file", path.display()))
            .hint("an export's manifest is a plain file written by pgconverge: export again");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))
        .hint("an export directory without its manifest is incomplete (interrupted export?): export again")?;
    manifest::parse(&text).with_context(|| format!("reading {}", path.display()))
}
