//! `verify --deep`'s export side: a dataset's CSV files, canonicalised as the export
//! wrote them. A file whose longest record is past `memory::LONG_VALUE` (or that does not
//! say) is read field by field in pieces (`codec::csv_pieces`): a long value of a column
//! compared as it is written is gathered into its digest form as it is read
//! (`long_values::Gathered`), as the target's reader gives it, so no record is held whole.
//! Every file is hashed as it is read and held against the manifest's size and sha256:
//! a file changed after the export is refused, never compared (it could have been
//! changed alike in the target).

use std::borrow::Cow;

use anyhow::Result;

use crate::codec::csv::NullStyle;
use crate::codec::csv_pieces::FieldSink;
use crate::db::long_values::{Gathered, LongForm};
use crate::memory::LONG_VALUE;
use crate::store::csvfile;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::{FileSpec, Loaded, TableSpec};
use crate::verify::canon::{self, Kind};
use crate::verify::deep;

/// Why a file of `bytes` bytes is not the one the manifest describes; None when it may
/// be, or when the manifest does not say.
fn other_size(file: &FileSpec, bytes: u64) -> Option<String> {
    file.bytes
        .filter(|&want| want != bytes)
        .map(|want| format!("it has {bytes} bytes where the manifest says {want}"))
}

/// Why a file read whole is not the one the manifest describes (its size, then its
/// sha256); None when it is, or when the manifest does not say.
fn not_as_written(file: &FileSpec, read: &csvfile::ReadWhole) -> Option<String> {
    if let Some(why) = other_size(file, read.bytes) {
        return Some(why);
    }
    match &file.sha256 {
        Some(want) if *want != read.sha256 => Some(format!(
            "its bytes do not match the manifest's sha256 (read {}, manifest {want})",
            read.sha256
        )),
        _ => None,
    }
}

/// The error for a file that is not the one the export wrote.
fn not_the_export(file: &FileSpec, why: &str) -> anyhow::Error {
    crate::hint::with_hint(
        anyhow::anyhow!(
            "{} is not the file the export wrote: {why}; the target was not compared with the export",
            file.file
        ),
        "the file was changed after the export: restore the export directory from its \
         archive, or compare the target with the live source (`verify --deep --source`)",
    )
}

/// What a side does with each canonical row (column `i`'s canonical value, made when
/// asked): hash it (or keep it), with how it reads.
pub type Take<'a> = dyn for<'v> FnMut(&'v dyn Fn(usize) -> Option<Cow<'v, [u8]>>, &dyn Fn() -> Vec<Option<String>>)
    + 'a;

/// A closure as a [`Take`] (a closure's own signature cannot say "for every lifetime").
pub fn taker<F>(f: F) -> F
where
    F: for<'v> FnMut(&'v dyn Fn(usize) -> Option<Cow<'v, [u8]>>, &dyn Fn() -> Vec<Option<String>>),
{
    f
}

/// A dataset's CSV files, canonicalised as the export wrote them.
pub async fn read_files(
    dir: &ExportDir,
    manifest: &Loaded,
    plan: &deep::TablePlan,
    d: usize,
    spec: &TableSpec,
    take: &mut Take<'_>,
) -> Result<()> {
    let nulls = if manifest.is_legacy() {
        NullStyle::EmptyUnquoted
    } else {
        NullStyle::Marker
    };
    for file in &spec.files {
        let path = dir.file(&file.file);
        // A file of another size is refused before any of it is read (as the import
        // does): a forged record could be as long as the file.
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && let Some(why) = other_size(file, meta.len())
        {
            return Err(not_the_export(file, &why));
        }
        let header = csvfile::header(&path)?;
        let positions: Vec<Option<usize>> = plan
            .columns
            .iter()
            .map(|c| match &c.sources[d].0 {
                None => Ok(None),
                Some(name) => header
                    .iter()
                    .position(|h| h == name)
                    .map(Some)
                    .ok_or_else(|| {
                        anyhow::anyhow!("{}: no column `{name}` in its header", file.file)
                    }),
            })
            .collect::<Result<_>>()?;
        // A record with another number of fields than the header is not what the
        // export wrote (the import would refuse it): the first is named, nothing after
        // it is compared.
        let (mut record, mut malformed) = (0u64, None);
        let mut on_record = |fields: &[Option<&[u8]>]| {
            record += 1;
            if malformed.is_some() {
                return;
            }
            if fields.len() != header.len() {
                malformed = Some((record, fields.len()));
                return;
            }
            let value = |k: usize| {
                let c = &plan.columns[k];
                let v = positions[k].and_then(|i| fields.get(i).copied().flatten());
                canon::source_text_cow(c.kind, c.sources[d].1, v)
            };
            take(&value, &|| {
                positions
                    .iter()
                    .map(|&i| {
                        i.and_then(|i| fields.get(i).copied().flatten())
                            .map(deep::shown_value)
                    })
                    .collect()
            });
        };
        let read = match file.longest.is_none_or(|l| l > LONG_VALUE) {
            true => {
                let mut modes = vec![None; header.len()];
                for (k, c) in plan.columns.iter().enumerate() {
                    if let Some(i) = positions[k]
                        && deep::digested_as_written(c.kind, c.sources[d].1)
                    {
                        modes[i] = Some(match c.kind {
                            Kind::Bytes => LongForm::Bytea,
                            _ => LongForm::Text,
                        });
                    }
                }
                let mut record = Record::new(modes, nulls, file.longest, &mut on_record);
                let read = csvfile::for_each_piece(&path, &mut record)?;
                if let (true, Some(longest)) = (record.too_long, file.longest) {
                    return Err(not_the_export(
                        file,
                        &format!(
                            "it holds a field longer than the longest record the export wrote ({longest} bytes)"
                        ),
                    ));
                }
                read
            }
            false => csvfile::for_each_record(&path, nulls, file.longest, &mut on_record)?,
        };
        if let Some((record, fields)) = malformed {
            return Err(crate::hint::with_hint(
                anyhow::anyhow!(
                    "{}: record {record} has {} where the header has {}",
                    file.file,
                    crate::report::count(fields as u64, "field"),
                    header.len()
                ),
                "the file is not the one the export wrote: verify against the export's own files, or export again",
            ));
        }
        if let Some(why) = not_as_written(file, &read) {
            return Err(not_the_export(file, &why));
        }
    }
    Ok(())
}

/// A record's fields as they are read in pieces: short ones held, a long one of a column
/// compared as written gathered into its digest form; each data record (the header
/// skipped) given whole to `on_record`.
struct Record<'f, F: FnMut(&[Option<&[u8]>])> {
    /// Per field of the file: how a long value of it is compared (None: held whole).
    modes: Vec<Option<LongForm>>,
    nulls: NullStyle,
    held: Vec<u8>,
    gathered: Option<(LongForm, Gathered)>,
    values: Vec<Option<Vec<u8>>>,
    header: bool,
    /// The file's longest record, as the export counted it: room for a long field held
    /// whole is made once, never doubled.
    longest: Option<u64>,
    /// A field passed `longest`: the file is not the export's (nothing more is held).
    too_long: bool,
    on_record: &'f mut F,
}

impl<'f, F: FnMut(&[Option<&[u8]>])> Record<'f, F> {
    fn new(
        modes: Vec<Option<LongForm>>,
        nulls: NullStyle,
        longest: Option<u64>,
        on_record: &'f mut F,
    ) -> Self {
        Record {
            modes,
            nulls,
            held: Vec::new(),
            gathered: None,
            values: Vec::new(),
            header: true,
            longest,
            too_long: false,
            on_record,
        }
    }
}

impl<F: FnMut(&[Option<&[u8]>])> FieldSink for Record<'_, F> {
    fn bytes(&mut self, b: &[u8]) {
        if let Some((form, g)) = &mut self.gathered {
            match form {
                LongForm::Bytea => g.push(&b.to_ascii_lowercase()),
                LongForm::Text => g.push(b),
            }
            return;
        }
        if self.too_long {
            return;
        }
        let was_short = self.held.len() as u64 <= LONG_VALUE + 2;
        self.held.extend_from_slice(b);
        // Longer than any record of the export's file: not that file, never held further.
        if let Some(longest) = self.longest
            && self.held.len() as u64 > longest
        {
            self.too_long = true;
            self.held = Vec::new();
            return;
        }
        if self.held.len() as u64 <= LONG_VALUE + 2 || self.header {
            return;
        }
        // A long field held whole (its column is not compared as written): room for
        // the longest record at once, within the bound the import checks too.
        if was_short
            && let Some(longest) = self.longest
            && longest > self.held.len() as u64
            && self
                .modes
                .get(self.values.len())
                .copied()
                .flatten()
                .is_none()
        {
            self.held
                .reserve_exact((longest - self.held.len() as u64) as usize);
        }
        // Past the bound: from here on the value is gathered, as the target's reader
        // gathers it (a bytea's hex digits after its `\x`, in lower case).
        match self.modes.get(self.values.len()).copied().flatten() {
            Some(LongForm::Text) => {
                let mut g = Gathered::new(LongForm::Text, false, true, 0);
                g.push(&self.held);
                self.gathered = Some((LongForm::Text, g));
            }
            Some(LongForm::Bytea) if self.held.starts_with(b"\\x") => {
                let mut g = Gathered::new(LongForm::Bytea, true, true, 0);
                g.push(&self.held[2..].to_ascii_lowercase());
                self.gathered = Some((LongForm::Bytea, g));
            }
            // Not written as the export writes bytes: held whole, to be compared so.
            _ => return,
        }
        self.held = Vec::new();
    }

    fn end_field(&mut self, quoted: bool) {
        let value = match self.gathered.take() {
            Some((_, g)) => Some(g.finish()),
            None if !quoted && self.nulls.is_null(&self.held) => {
                self.held.clear();
                None
            }
            None => Some(std::mem::take(&mut self.held)),
        };
        self.values.push(value);
    }

    fn end_record(&mut self) {
        if !std::mem::replace(&mut self.header, false) {
            let fields: Vec<Option<&[u8]>> = self.values.iter().map(|v| v.as_deref()).collect();
            (self.on_record)(&fields);
        }
        self.values.clear();
    }
}
