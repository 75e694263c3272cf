//! The export's files as the import reads them before it writes anything: each table's
//! CSV header; every file present and of its manifest size; and for `--dry-run` the
//! pre-pass over every file (size, sha256 and record count against the manifest), on all
//! cores at once. A real run reads each file once: the COPY's feeder hashes what it sends
//! and refuses a mismatch before COMMIT, which leaves the target unchanged.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};

use crate::codec::csv::NullStyle;
use crate::hint::WithHint;
use crate::import::plan::TableInput;
use crate::progress::Progress;
use crate::store::csvfile;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::{FileSpec, TableSpec};

/// Each table of the manifest with the column names of its (first) file's header.
pub fn inputs(dir: &ExportDir, specs: Vec<TableSpec>) -> Result<Vec<TableInput>> {
    specs
        .into_iter()
        .map(|spec| {
            let first = spec
                .files
                .first()
                .map(|f| f.file.clone())
                .ok_or_else(|| anyhow!("table `{}` has no file in the manifest", spec.name))?;
            let path = dir.file(&first);
            regular(&spec.name, &path)?;
            let header = csvfile::header(&path)
                .with_context(|| format!("table `{}`: reading the header of {first}", spec.name))
                .hint("the export is incomplete or was changed: export again")?;
            // A file that is not the export's shows no more of itself than a short,
            // escaped prefix: its header is checked against the manifest before any
            // message quotes its names.
            let named: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
            if !named.is_empty() && header != named {
                return Err(anyhow!(
                    "table `{}`: the header of {first} does not name the manifest's columns (it begins `{}`)",
                    spec.name,
                    crate::escape::prefix(header.join(",").as_bytes(), 40)
                ))
                .hint("the file was changed or replaced after the export: export again");
            }
            Ok(TableInput { spec, header })
        })
        .collect()
}

/// Every file present, a regular file, of the size the manifest records: what can be
/// known without reading them. The import checks each file's sha256 as it sends it, and
/// a mismatch found before COMMIT rolls everything back, so a real run reads each file
/// once; `check` reads them all ahead (`--dry-run`).
pub fn present(dir: &ExportDir, specs: &[TableSpec]) -> Result<()> {
    present_files(dir, &files_of(specs))
}

fn files_of(specs: &[TableSpec]) -> Vec<(&str, &FileSpec)> {
    specs
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| (s.name.as_str(), f)))
        .collect()
}

/// A table's file: present, and a regular file (never a symlink, FIFO or device).
fn regular(table: &str, path: &std::path::Path) -> Result<std::fs::Metadata> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(anyhow!("table `{table}`: {} is missing", path.display()))
            .hint("the export is incomplete: export again");
    }
    let file = crate::store::file::open(path, crate::store::file::Links::Refuse)
        .with_context(|| format!("table `{table}`"))
        .hint("an export holds plain files only: export again")?;
    file.metadata()
        .with_context(|| format!("table `{table}`: reading {}", path.display()))
}

/// Every file present, and (when the manifest says) of the size, sha256 and record count
/// it records.
pub fn check(
    dir: &ExportDir,
    specs: &[TableSpec],
    nulls: NullStyle,
    progress: &Progress,
) -> Result<()> {
    let files = files_of(specs);
    present_files(dir, &files)?;
    scan_all(dir, &files, nulls, progress)
}

fn present_files(dir: &ExportDir, files: &[(&str, &FileSpec)]) -> Result<()> {
    for (table, f) in files {
        let path = dir.file(&f.file);
        let meta = regular(table, &path)?;
        if let Some(bytes) = f.bytes
            && meta.len() != bytes
        {
            bail!(
                "table `{table}`: {} has {} bytes but the manifest says {bytes}; the export was changed or truncated",
                f.file,
                meta.len()
            );
        }
    }
    Ok(())
}

/// Size, sha256, records and longest record of every file, on all cores.
fn scan_all(
    dir: &ExportDir,
    files: &[(&str, &FileSpec)],
    nulls: NullStyle,
    progress: &Progress,
) -> Result<()> {
    let total: u64 = files.iter().filter_map(|(_, f)| f.bytes).sum();
    let bar = progress.bytes("checking files", total);
    // Largest first, so the threads finish together.
    let mut order: Vec<&(&str, &FileSpec)> =
        files.iter().filter(|(_, f)| f.sha256.is_some()).collect();
    order.sort_by_key(|(_, f)| std::cmp::Reverse(f.bytes.unwrap_or(0)));
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(order.len().max(1));
    let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((table, f)) = order.get(i) else {
                            return Ok(());
                        };
                        check_one(dir, table, f, nulls, |n| bar.inc(n))?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(anyhow!("a checksum thread panicked")),
            })
            .collect()
    });
    bar.finish_and_clear();
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_one(
    dir: &ExportDir,
    table: &str,
    f: &FileSpec,
    nulls: NullStyle,
    on_bytes: impl FnMut(u64),
) -> Result<()> {
    let scanned = csvfile::scan(&dir.file(&f.file), nulls, f.longest, on_bytes)
        .with_context(|| format!("table `{table}`"))
        .hint("the file was changed after the export: export again rather than edit CSVs")?;
    let want = f.sha256.as_deref().unwrap_or_default();
    if scanned.sha256 != want {
        return Err(anyhow!(
            "table `{table}`: {} does not match its sha256 in the manifest (file {}, manifest {want})",
            f.file,
            scanned.sha256
        ))
        .hint("the file was modified after the export: export again rather than edit CSVs");
    }
    if let Some(rows) = f.rows
        && scanned.records != rows
    {
        return Err(anyhow!(
            "table `{table}`: {} holds {} records but the manifest says {rows} rows",
            f.file,
            scanned.records
        ))
        .hint("the manifest or the file was changed after the export: export again");
    }
    Ok(())
}
