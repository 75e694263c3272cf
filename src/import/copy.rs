//! One COPY of one file: a blocking thread reads the file and sends 1 MiB chunks (its
//! bytes, a rewritten CSV stream, or binary tuples converted on that other core) to
//! `db::postgres::copy_in`, checking its sha256, record count and longest record as it
//! goes; a refused row is located in the file and named by key. Also the `set`
//! constants a COPY sends with every row, and why an attempt failed.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::codec::csv::NullStyle;
use crate::codec::encode::row_key;
use crate::codec::pgbinary::{self, Converter, Stop};
use crate::codec::rewrite::Rewriter;
use crate::db::postgres::{self, Chunk};
use crate::hint::with_hint;
use crate::import::plan::{Constant, Copy, Feed};
use crate::memory::BINARY_RECORD_MAX;
use crate::store::csvfile::{self, Pick};
use crate::store::export_dir::ExportDir;

/// The chunk size fed to COPY: large enough that per-message overhead vanishes.
pub const CHUNK: usize = 1 << 20;

/// Why an attempt failed: a table to retry as CSV, or anything else.
pub(super) enum Failure {
    NotBinary {
        table: String,
        file: String,
        /// What stopped the conversion, in words.
        stop: String,
    },
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Error(e)
    }
}

/// A `set` constant as the server computed it: binary (for binary COPY) and text.
#[derive(Debug, Clone)]
pub(super) struct Evaluated {
    pub(super) binary: Option<Vec<u8>>,
    pub(super) text: Option<String>,
}

pub(super) async fn evaluate(
    tx: &tokio_postgres::Transaction<'_>,
    c: &Constant,
) -> Result<Evaluated> {
    let context = || format!("evaluating set `{}`.`{}` = {}", c.table, c.column, c.expr);
    let row = tx
        .query_one(c.sql.as_str(), &[])
        .await
        .map_err(postgres::error)
        .with_context(context)?;
    let binary: Option<postgres::RawValue> = row
        .try_get(0)
        .map_err(postgres::error)
        .with_context(context)?;
    let text: Option<String> = row
        .try_get(1)
        .map_err(postgres::error)
        .with_context(context)?;
    if c.not_null && text.is_none() {
        return Err(with_hint(
            anyhow!(
                "set `{}`.`{}` = {} gave NULL, and the column is NOT NULL",
                c.table,
                c.column,
                c.expr
            ),
            "it is evaluated once, after the [import] before hooks: they must create what it reads",
        ));
    }
    Ok(Evaluated {
        binary: binary.map(|b| b.0),
        text,
    })
}

/// One COPY fed from its file by a blocking thread; returns the rows the server reports.
pub(super) async fn copy_file(
    tx: &tokio_postgres::Transaction<'_>,
    copy: &Copy,
    nulls: NullStyle,
    dir: &ExportDir,
    constants: &[Option<Evaluated>],
    on_bytes: impl FnMut(u64),
) -> Result<u64, Failure> {
    let (send, chunks) = mpsc::channel::<Chunk>(4);
    let path = dir.file(&copy.file);
    let feed = copy.feed.clone();
    let sent = Sent::new(copy);
    let value = |slot: &usize| {
        constants
            .get(*slot)
            .cloned()
            .flatten()
            .ok_or_else(|| anyhow!("set constant #{slot} used before it was evaluated"))
    };
    let extra: Vec<Evaluated> = match &feed {
        Feed::Csv => Vec::new(),
        Feed::Rewrite(_, shape) | Feed::Binary(_, _, shape) => {
            shape.constants.iter().map(value).collect::<Result<_>>()?
        }
    };
    let feeder = tokio::task::spawn_blocking(move || match feed {
        Feed::Csv => feed_raw(&path, sent, &send),
        Feed::Rewrite(adapts, shape) => {
            let extra: Vec<Option<String>> = extra.into_iter().map(|e| e.text).collect();
            let mut rewriter = Rewriter::new(nulls, adapts, shape.keep, &extra);
            let shown = path.display().to_string();
            // Every byte read is rewritten at once: nothing of a record is held.
            feed_records(&path, sent, &send, |data, eof, out| {
                rewriter
                    .feed(data, eof, out)
                    .map_err(|e| FeedError::Failed(anyhow!("{shown}: {e}")))?;
                Ok(data.len())
            })
        }
        Feed::Binary(types, adapts, shape) => {
            let extra: Vec<Option<Vec<u8>>> = extra.into_iter().map(|e| e.binary).collect();
            let mut conv = Converter::shaped(types, adapts, nulls, shape.keep, extra);
            let mut started = false;
            feed_records(&path, sent, &send, |data, eof, out| {
                if !std::mem::replace(&mut started, true) {
                    out.extend_from_slice(pgbinary::HEADER);
                }
                let used = conv.convert(data, eof, out).map_err(FeedError::NotBinary)?;
                // The converter holds a whole record: a longer one than it takes (the
                // manifest did not say, or said less) sends the table as CSV instead.
                if (data.len() - used) as u64 > BINARY_RECORD_MAX {
                    return Err(FeedError::NotBinary(Stop::TooLong {
                        row: conv.rows + 1,
                        limit: BINARY_RECORD_MAX,
                    }));
                }
                if eof {
                    out.extend_from_slice(pgbinary::TRAILER);
                }
                Ok(used)
            })
        }
    });
    let copied = postgres::copy_in(tx, &copy.sql, chunks, on_bytes).await;
    let fed = feeder
        .await
        .map_err(|e| anyhow!("the thread reading {} failed: {e}", copy.file))?;
    let context = || format!("loading table `{}` from {}", copy.table, copy.file);
    match (copied, fed) {
        (_, Err(FeedError::NotBinary(stop))) => {
            // A record the export cannot have written: a file with another sha256 than
            // the manifest's is refused now, not retried as CSV to be refused after.
            if let (Stop::Malformed { .. }, Some(want)) = (&stop, &copy.sha256) {
                let path = dir.file(&copy.file);
                let scanned = tokio::task::spawn_blocking(move || {
                    csvfile::scan(&path, nulls, None, |_| {}).map(|s| s.sha256)
                })
                .await;
                if let Ok(Ok(got)) = scanned
                    && got != *want
                {
                    return Err(not_the_export(&copy.file, "read", &got, want)
                        .context(context())
                        .into());
                }
            }
            Err(Failure::NotBinary {
                table: copy.dataset.clone(),
                file: copy.file.clone(),
                stop: describe_stop(&stop, &copy.columns),
            })
        }
        (_, Err(FeedError::Failed(e))) => Err(e.context(context()).into()),
        (Err(e), Ok(())) => {
            // PostgreSQL says `line N`; name the row by its key instead.
            let row = copy_line(&e)
                .and_then(|line| locate(&dir.file(&copy.file), copy, nulls, line))
                .map(|key| format!(" at row {key}"))
                .unwrap_or_default();
            let e = e.context(format!("{}{row}", context()));
            let text = format!("{e:#}");
            // A row no partition takes: say which partitions there are.
            let e = if text.contains("no partition of relation") {
                with_hint(
                    e,
                    match copy.partitions.is_empty() {
                        true => "the table has no partitions yet: create them first (e.g. in an [import] before hook)".to_string(),
                        false => format!(
                            "its partitions are: {}; create one for this row first (e.g. in an [import] before hook)",
                            copy.partitions.join("; ")
                        ),
                    },
                )
            } else if text.contains("(22001)") || text.contains("(22003)") {
                // Too long or too large for the column's declared size: an export whose
                // manifest records no longest value (older ones) meets it only here.
                with_hint(
                    e,
                    "widen the target column it names (ALTER TABLE ... ALTER COLUMN ... TYPE \
                     a larger varchar(n) or numeric(p, s)), or fix the value at the source",
                )
            } else {
                e
            };
            Err(e.into())
        }
        (Ok(rows), Ok(())) => Ok(rows),
    }
}

/// A conversion stop in words, naming the column rather than its position.
fn describe_stop(stop: &Stop, columns: &[String]) -> String {
    match stop {
        Stop::Unsupported { row, column, ty } => format!(
            "row {row}, column `{}`: a value not in a form the binary path converts exactly ({ty:?})",
            columns.get(*column).map_or("?", String::as_str)
        ),
        other => other.to_string(),
    }
}

/// The `line N` of a COPY error's context, if it has one.
fn copy_line(e: &anyhow::Error) -> Option<u64> {
    let text = format!("{e:#}");
    let rest = text.split(", line ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The key of the row PostgreSQL calls `line`: in binary COPY the line-th tuple, in CSV
/// the record that ends on that physical line (a value holding newlines spans several).
fn locate(path: &Path, copy: &Copy, nulls: NullStyle, line: u64) -> Option<String> {
    let pick = match copy.feed {
        Feed::Binary(..) => Pick::Index(line),
        Feed::Csv | Feed::Rewrite(..) => Pick::EndingOnLine(line),
    };
    let fields = csvfile::record_at(path, nulls, pick).ok()??;
    let values: Vec<Option<&[u8]>> = fields.iter().map(|f| f.as_deref()).collect();
    Some(row_key(&values, &copy.key, &copy.columns, line))
}

/// Why a feeder stopped.
enum FeedError {
    /// A value or record the binary converters cannot carry exactly.
    NotBinary(Stop),
    /// The file could not be read, or is not the file the pre-pass checked.
    Failed(anyhow::Error),
}

/// The file's bytes as they are sent, held against what the manifest says of it: a file
/// swapped or changed after the pre-pass is refused before its COPY completes.
struct Sent {
    file: String,
    hasher: Sha256,
    sha256: Option<String>,
    longest: Option<u64>,
}

impl Sent {
    fn new(copy: &Copy) -> Sent {
        Sent {
            file: copy.file.clone(),
            hasher: Sha256::new(),
            sha256: copy.sha256.clone(),
            longest: copy.longest,
        }
    }

    /// At the end of the file: were these the bytes the manifest describes?
    fn check(self) -> Result<(), FeedError> {
        let got = hex::encode(self.hasher.finalize());
        match self.sha256 {
            Some(want) if want != got => Err(FeedError::Failed(not_the_export(
                &self.file, "sent", &got, &want,
            ))),
            _ => Ok(()),
        }
    }

    /// A record still incomplete after `pending` bytes: longer than any the export wrote?
    fn check_pending(&self, pending: usize) -> Result<(), FeedError> {
        match self.longest {
            Some(limit) if pending as u64 > limit => Err(FeedError::Failed(anyhow!(
                "{} holds a record longer than the longest the export wrote ({limit} bytes): \
                 it is not the file the export wrote",
                self.file
            ))),
            _ => Ok(()),
        }
    }
}

/// A file whose bytes (`how`: sent, read) have another sha256 than the manifest's.
fn not_the_export(file: &str, how: &str, got: &str, want: &str) -> anyhow::Error {
    with_hint(
        anyhow!(
            "{file} is not the file the export wrote: the bytes {how} do not match its \
             sha256 in the manifest ({how} {got}, manifest {want})"
        ),
        "the file was changed after the export or during the import: export again \
         rather than edit CSVs, and keep the export directory read-only while importing",
    )
}

fn read_error(path: &Path, e: std::io::Error) -> FeedError {
    FeedError::Failed(anyhow!("reading {}: {e}", path.display()))
}

/// Send the file's bytes as they are. Stops quietly when the COPY is gone (it failed:
/// its error is the one reported).
fn feed_raw(path: &Path, mut sent: Sent, send: &mpsc::Sender<Chunk>) -> Result<(), FeedError> {
    let mut file = crate::store::file::open_data(path).map_err(FeedError::Failed)?;
    loop {
        let mut buf = Vec::with_capacity(CHUNK);
        (&mut file)
            .take(CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(|e| read_error(path, e))?;
        if buf.is_empty() {
            break;
        }
        sent.hasher.update(&buf);
        let n = buf.len() as u64;
        if send.blocking_send(Chunk::Data(buf.into(), n)).is_err() {
            return Ok(());
        }
    }
    sent.check()?;
    let _ = send.blocking_send(Chunk::End);
    Ok(())
}

/// Read the file and send what `step` makes of it, in chunks of about CHUNK bytes, each
/// with the number of file bytes it consumed. `step(data, eof, out)` turns the complete
/// records at the start of `data` into output and says how many bytes it used (the rest,
/// a partial record, is offered again with more). Memory: one read, plus the record
/// being read (never more than the manifest's longest), plus the chunks in flight.
/// Stops quietly when the COPY is gone.
fn feed_records(
    path: &Path,
    mut sent: Sent,
    send: &mpsc::Sender<Chunk>,
    mut step: impl FnMut(&[u8], bool, &mut Vec<u8>) -> Result<usize, FeedError>,
) -> Result<(), FeedError> {
    let mut file = crate::store::file::open_data(path).map_err(FeedError::Failed)?;
    let mut input: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut consumed = 0u64;
    let mut eof = false;
    while !eof {
        // A record longer than what is held (a big blob) makes the buffer grow by half:
        // it is then rescanned a logarithmic number of times, not once per read.
        let start = input.len();
        input.resize(start + CHUNK.max(start / 2), 0);
        let n = file
            .read(&mut input[start..])
            .map_err(|e| read_error(path, e))?;
        input.truncate(start + n);
        sent.hasher.update(&input[start..]);
        eof = n == 0;
        let pos = step(&input, eof, &mut out)?;
        input.drain(..pos);
        sent.check_pending(input.len())?;
        consumed += pos as u64;
        if out.len() >= CHUNK || eof {
            let chunk = std::mem::replace(&mut out, Vec::with_capacity(CHUNK * 2));
            if send
                .blocking_send(Chunk::Data(chunk.into(), consumed))
                .is_err()
            {
                return Ok(());
            }
            consumed = 0;
        }
    }
    sent.check()?;
    let _ = send.blocking_send(Chunk::End);
    Ok(())
}
