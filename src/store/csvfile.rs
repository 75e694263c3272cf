//! A table's CSV file, both ways. Writing: rows are encoded by `codec::encode` into a
//! reused line buffer, counted, and handed over a large buffer at a time to be hashed
//! (sha256) and written on the file's own thread (`store::behind`), and the file is fsynced on `finish`; a value PostgreSQL would refuse stops the
//! table with an error naming table, column and primary key. Reading: [`scan`] is the
//! pre-pass an import makes over every file before it writes anything (size, sha256,
//! records and the longest one, through the one tokenizer). Knows no server.

use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::codec::csv::{Field, Malformed, NullStyle, RecordEnds, Tokenizer};
use crate::codec::encode::{Facts, RowEncoder};
use crate::store::behind::WriteBehind;
use crate::store::direct::DirectWrite;

pub struct TableWriter {
    /// Hashes and writes each full buffer on a thread of its own.
    file: WriteBehind,
    /// Rows are encoded straight into this buffer, which is handed over whole when it
    /// passes [`WRITE_AT`]: no copy per row.
    buf: Vec<u8>,
    encoder: RowEncoder,
    bytes: u64,
}

/// Bytes gathered before one write (and one hash update).
const WRITE_AT: usize = 1 << 20;

/// What was written: the rows' facts, and the file's size and sha256.
#[derive(Debug)]
pub struct Written {
    pub facts: Facts,
    pub bytes: u64,
    pub sha256: String,
}

impl TableWriter {
    /// Create the file and write the header row.
    pub fn create(path: &Path, encoder: RowEncoder) -> Result<TableWriter> {
        let file = WriteBehind::start(DirectWrite::create(path)?)?;
        let mut w = TableWriter {
            file,
            buf: Vec::with_capacity(WRITE_AT + 64 * 1024),
            encoder,
            bytes: 0,
        };
        w.encoder.header(&mut w.buf);
        w.bytes = w.buf.len() as u64;
        Ok(w)
    }

    pub fn rows(&self) -> u64 {
        self.encoder.rows()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Encode and write one row (values in column order; None is NULL; `lossy`: the
    /// columns whose value did not survive the conversion to UTF-8).
    /// A row longer than the write buffer is written as it is encoded (a 500 MB value
    /// never sits in memory twice); after an error past that point the file holds part
    /// of the row, and the export that gets the error keeps nothing.
    pub fn write_row(&mut self, values: &[Option<&[u8]>], lossy: &[usize]) -> Result<()> {
        let start = self.buf.len();
        let file = &mut self.file;
        let mut spilled = 0u64;
        let mut spill = |buf: &mut Vec<u8>| -> Result<()> {
            spilled += buf.len() as u64;
            file.write(buf)
        };
        if let Err(e) = self
            .encoder
            .row_spilling(values, lossy, &mut self.buf, &mut spill)
        {
            if spilled == 0 {
                self.buf.truncate(start);
            }
            return Err(e);
        }
        // What this row added: what was spilled (less the earlier rows' bytes that were
        // waiting in the buffer) and what is left in it.
        self.bytes += spilled + self.buf.len() as u64 - start as u64;
        if self.buf.len() >= WRITE_AT {
            self.write_buf()?;
        }
        Ok(())
    }

    fn write_buf(&mut self) -> Result<()> {
        self.file.write(&mut self.buf)
    }

    /// Write the rest and fsync; the facts, size and checksum of what is on disk.
    pub fn finish(mut self) -> Result<Written> {
        self.write_buf()?;
        let (file, sha256) = self.file.finish()?;
        file.finish()?;
        Ok(Written {
            facts: self.encoder.finish(),
            bytes: self.bytes,
            sha256,
        })
    }
}

/// What the pre-pass found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub bytes: u64,
    pub sha256: String,
    /// Data records (the header excluded).
    pub records: u64,
    /// Bytes of the longest record, line end included (the header too).
    pub longest: u64,
}

/// Why a file is not what its manifest describes, at a given record (1 = first data row).
#[derive(Debug)]
pub enum NotCsv {
    Malformed {
        record: u64,
        what: Malformed,
    },
    /// A record longer than the longest the export wrote (a damaged or replaced file).
    TooLong {
        record: u64,
        limit: u64,
    },
}

impl std::fmt::Display for NotCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCsv::Malformed { record, what } => write!(f, "record {record}: {what}"),
            NotCsv::TooLong { record, limit } => write!(
                f,
                "record {record} is longer than the longest the export wrote ({limit} bytes)"
            ),
        }
    }
}

impl std::error::Error for NotCsv {}

/// Read a file once, in 1 MiB reads: size, sha256, and its records counted by
/// [`RecordEnds`], which holds nothing of them: memory is one read, whatever the records'
/// length (a 500 MB value, or a quote that never closes in a forged file). A record
/// longer than `limit` (the manifest's longest record, when it knows it) stops the scan
/// as soon as it passes it. `on_bytes` sees progress.
pub fn scan(
    path: &Path,
    _nulls: NullStyle,
    limit: Option<u64>,
    mut on_bytes: impl FnMut(u64),
) -> Result<Scanned> {
    const READ: usize = 1 << 20;
    // Record boundaries do not depend on how NULL is spelled (`_nulls`).
    let mut f = Hashed::open(path)?;
    let mut ends = RecordEnds::new();
    let mut buf = vec![0u8; READ];
    let (mut records, mut longest) = (0u64, 0u64);
    let mut record = |n: u64, records: &mut u64| -> Result<()> {
        if let Some(limit) = limit
            && n > limit
        {
            return Err(too_long(path, *records, limit));
        }
        longest = longest.max(n);
        *records += 1;
        Ok(())
    };
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        on_bytes(n as u64);
        ends.feed(&buf[..n], |len| record(len, &mut records))?;
        if let Some(limit) = limit
            && ends.pending() > limit
        {
            return Err(too_long(path, records, limit));
        }
    }
    match ends.finish() {
        Ok(Some(last)) => record(last, &mut records)?,
        Ok(None) => {}
        Err(what) => {
            return Err(NotCsv::Malformed {
                record: records,
                what,
            })
            .with_context(|| format!("reading {}", path.display()));
        }
    }
    let ReadWhole { bytes, sha256 } = f.finish();
    Ok(Scanned {
        bytes,
        sha256,
        records: records.saturating_sub(1),
        longest,
    })
}

/// A record longer than the longest the export wrote (`limit`), at data record `record`.
fn too_long(path: &Path, record: u64, limit: u64) -> anyhow::Error {
    anyhow::Error::new(NotCsv::TooLong { record, limit })
        .context(format!("reading {}", path.display()))
}

/// The CSV header (column names), read from the start of the file.
pub fn header(path: &Path) -> Result<Vec<String>> {
    let f = super::file::open(path, super::file::Links::Refuse)?;
    let mut buf = Vec::new();
    f.take(4 << 20)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    let (fields, _) = crate::codec::csv::read_record(&buf, 0, NullStyle::Marker)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("{} is empty: no header row", path.display()))?;
    fields
        .into_iter()
        .map(|f| {
            let bytes = f.unwrap_or_else(|| crate::codec::csv::NULL.to_vec());
            String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("a header name is not UTF-8"))
        })
        .collect()
}

/// What a whole read of a file saw of its bytes: to be checked against the manifest, so
/// that a reader never compares with a file the export did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadWhole {
    pub bytes: u64,
    pub sha256: String,
}

/// A data file being read (`file::open_data`), every byte it gives hashed and counted.
struct Hashed {
    inner: super::direct::DirectRead,
    hasher: Sha256,
    bytes: u64,
}

impl Hashed {
    fn open(path: &Path) -> Result<Hashed> {
        Ok(Hashed {
            inner: super::file::open_data(path)?,
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// What was read so far: the whole file's size and sha256 once read to its end.
    fn finish(self) -> ReadWhole {
        ReadWhole {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl Read for Hashed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Every record of a file (the header first), split into fields by the tokenizer and
/// streamed (memory: one read plus the longest record). `on` sees the tokenizer and the
/// buffer it points into, and the record's byte span; it stops the stream with `Break`.
/// Every byte read is hashed ([`Hashed`]): the answer is the whole file's when it was
/// read to its end.
fn stream(
    path: &Path,
    nulls: NullStyle,
    limit: Option<u64>,
    mut on: impl FnMut(&Tokenizer, &[u8], std::ops::Range<usize>) -> ControlFlow<()>,
) -> Result<ReadWhole> {
    const READ: usize = 1 << 20;
    let mut f = Hashed::open(path)?;
    let mut tokenizer = Tokenizer::new(nulls);
    let mut buf: Vec<u8> = Vec::with_capacity(2 * READ);
    // Records read whole, the header included: the open one is data record `records`.
    let mut records = 0u64;
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + READ.max(start / 2), 0);
        let n = f
            .read(&mut buf[start..])
            .with_context(|| format!("reading {}", path.display()))?;
        buf.truncate(start + n);
        eof = n == 0;
        let mut pos = 0;
        loop {
            match tokenizer.split(&buf, pos, eof) {
                Ok(Some(next)) => {
                    records += 1;
                    if on(&tokenizer, &buf, pos..next).is_break() {
                        return Ok(f.finish());
                    }
                    pos = next;
                }
                Ok(None) => break,
                Err(what) => anyhow::bail!("reading {}: {what}", path.display()),
            }
        }
        buf.drain(..pos);
        // A record still open past the longest the export wrote: not its file, and
        // never held further.
        if let Some(limit) = limit
            && buf.len() as u64 > limit
        {
            return Err(too_long(path, records, limit));
        }
    }
    Ok(f.finish())
}

/// Every data record of a file, streamed (memory: one read plus the longest record, and
/// never more than `limit`, the longest the export wrote); with the whole file's size
/// and sha256.
pub fn for_each_record(
    path: &Path,
    nulls: NullStyle,
    limit: Option<u64>,
    mut on_record: impl FnMut(&[Option<&[u8]>]),
) -> Result<ReadWhole> {
    let mut header = true;
    stream(path, nulls, limit, |tokenizer, buf, _| {
        if !std::mem::replace(&mut header, false) {
            let fields: Vec<Option<&[u8]>> = (0..tokenizer.len())
                .map(|i| tokenizer.field(buf, i))
                .collect();
            on_record(&fields);
        }
        ControlFlow::Continue(())
    })
}

/// Every record of a file (the header first), its fields given to `sink` in pieces as
/// they are read (memory: one read, whatever the record's length); with the whole
/// file's size and sha256.
pub fn for_each_piece(
    path: &Path,
    sink: &mut impl crate::codec::csv_pieces::FieldSink,
) -> Result<ReadWhole> {
    const READ: usize = 1 << 20;
    let mut f = Hashed::open(path)?;
    let mut pieces = crate::codec::csv_pieces::FieldPieces::default();
    let mut buf = vec![0u8; READ];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        let done = match n {
            0 => pieces.finish(sink),
            n => pieces.feed(&buf[..n], sink),
        };
        if let Err(what) = done {
            anyhow::bail!("reading {}: {what}", path.display());
        }
        if n == 0 {
            return Ok(f.finish());
        }
    }
}

/// Which record `record_at` looks for.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// The n-th data record (from 1).
    Index(u64),
    /// The data record that ends on this physical line (the header is line 1): how
    /// PostgreSQL's CSV COPY numbers the `line` of an error.
    EndingOnLine(u64),
}

/// The fields of one data record, found by streaming the file (memory: one read plus
/// the longest record). None when the file has no such record.
pub fn record_at(path: &Path, nulls: NullStyle, pick: Pick) -> Result<Option<Vec<Field>>> {
    let (mut record, mut lines) = (0u64, 0u64);
    let mut found = None;
    stream(path, nulls, None, |tokenizer, buf, span| {
        lines += memchr::memchr_iter(b'\n', &buf[span]).count() as u64;
        let hit = match pick {
            Pick::Index(i) => record == i,
            Pick::EndingOnLine(l) => lines >= l,
        };
        if hit && record > 0 {
            found = Some(
                (0..tokenizer.len())
                    .map(|i| tokenizer.field(buf, i).map(<[u8]>::to_vec))
                    .collect(),
            );
            return ControlFlow::Break(());
        }
        record += 1;
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode::{Check, InvalidPolicy, Rule};

    #[test]
    fn the_writer_hashes_what_the_scan_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let encoder = RowEncoder::new(
            "t",
            vec!["id".into(), "v".into()],
            vec![Rule::Verbatim, Rule::Text],
            vec![Check::Integer, Check::String],
            vec![0],
            InvalidPolicy::Error,
        );
        let mut w = TableWriter::create(&path, encoder).unwrap();
        w.write_row(&[Some(b"1"), Some(b"a,b")], &[]).unwrap();
        assert!(w.write_row(&[Some(b"2"), Some(b"x\0y")], &[]).is_err());
        let done = w.finish().unwrap();
        assert_eq!(done.facts.rows, 1);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data, b"id,v\n1,\"a,b\"\n");
        assert_eq!(done.bytes, data.len() as u64);
        let scanned = scan(&path, NullStyle::Marker, None, |_| {}).unwrap();
        assert_eq!(
            scanned,
            Scanned {
                bytes: done.bytes,
                sha256: done.sha256,
                records: 1,
                longest: 8,
            }
        );
        let second = record_at(&path, NullStyle::Marker, Pick::Index(1)).unwrap();
        assert_eq!(
            second,
            Some(vec![Some(b"1".to_vec()), Some(b"a,b".to_vec())])
        );
        let on_line = record_at(&path, NullStyle::Marker, Pick::EndingOnLine(2)).unwrap();
        assert_eq!(on_line, second);
        assert_eq!(
            record_at(&path, NullStyle::Marker, Pick::Index(2)).unwrap(),
            None
        );
        let err = scan(&path, NullStyle::Marker, Some(6), |_| {}).unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("record 1 is longer than the longest the export wrote (6 bytes)"),
            "{err:#}"
        );
    }
}
