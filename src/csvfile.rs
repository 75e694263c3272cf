//! The CSV file of one table: rows are encoded by `encode` into a reused line buffer,
//! hashed (sha256) and counted as they are written through a large buffer, and the file
//! is fsynced on `finish`. A value PostgreSQL would refuse stops the table with an error
//! naming table, column and primary key. Knows nothing about MySQL.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};

use crate::encode::{self, ColumnStats, Encoded, InvalidPolicy, Rule};
use crate::hint::with_hint;

/// How many primary keys of non-UUID values a column keeps for the manifest.
const SAMPLE_KEYS: usize = 5;

pub struct TableWriter {
    table: String,
    path: PathBuf,
    file: BufWriter<File>,
    hasher: Sha256,
    line: Vec<u8>,
    names: Vec<String>,
    rules: Vec<Rule>,
    pk: Vec<usize>,
    policy: InvalidPolicy,
    rows: u64,
    bytes: u64,
    stats: Vec<ColumnStats>,
    samples: Vec<Vec<String>>,
    null_samples: Vec<Vec<String>>,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub stats: Vec<ColumnStats>,
    pub non_uuid_samples: Vec<Vec<String>>,
    pub null_samples: Vec<Vec<String>>,
}

impl TableWriter {
    /// Create the file and write the header row.
    pub fn create(
        path: &Path,
        table: &str,
        names: Vec<String>,
        rules: Vec<Rule>,
        pk: Vec<usize>,
        policy: InvalidPolicy,
    ) -> Result<TableWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let n = names.len();
        let mut w = TableWriter {
            table: table.to_string(),
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            line: Vec::with_capacity(64 * 1024),
            names,
            rules,
            pk,
            policy,
            rows: 0,
            bytes: 0,
            stats: vec![ColumnStats::default(); n],
            samples: vec![Vec::new(); n],
            null_samples: vec![Vec::new(); n],
        };
        encode::csv::write_header(w.names.iter().map(String::as_str), &mut w.line);
        w.flush_line()?;
        Ok(w)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Encode and write one row (values in column order; None is NULL).
    pub fn write_row(&mut self, values: &[Option<&[u8]>]) -> Result<()> {
        self.line.clear();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.line.push(b',');
            }
            let nulls_before = self.stats[i].nulls_written;
            match encode::encode_value(
                self.rules[i],
                *v,
                self.policy,
                &mut self.stats[i],
                &mut self.line,
            ) {
                Ok(Encoded::Ok) => {
                    if self.stats[i].nulls_written > nulls_before
                        && self.null_samples[i].len() < SAMPLE_KEYS
                    {
                        let key = row_key(values, &self.pk, &self.names, self.rows + 1);
                        self.null_samples[i].push(key);
                    }
                }
                Ok(Encoded::NotUuid) => {
                    if self.samples[i].len() < SAMPLE_KEYS {
                        let key = row_key(values, &self.pk, &self.names, self.rows + 1);
                        self.samples[i].push(key);
                    }
                }
                Err(finding) => {
                    let key = row_key(values, &self.pk, &self.names, self.rows + 1);
                    return Err(with_hint(
                        anyhow!(
                            "table `{}`, column `{}`, row {key}: {}",
                            self.table,
                            self.names[i],
                            finding.describe()
                        ),
                        "fix the value in MySQL, or export with --on-invalid fix (strips NULs, \
                         replaces invalid UTF-8, drops \\u0000; every change is counted in the manifest)",
                    ));
                }
            }
        }
        self.line.push(b'\n');
        self.rows += 1;
        self.flush_line()
    }

    fn flush_line(&mut self) -> Result<()> {
        self.hasher.update(&self.line);
        self.bytes += self.line.len() as u64;
        self.file
            .write_all(&self.line)
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Flush and fsync; the counts and checksum of what is on disk.
    pub fn finish(mut self) -> Result<Written> {
        self.file
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.file
            .get_ref()
            .sync_all()
            .with_context(|| format!("fsyncing {}", self.path.display()))?;
        Ok(Written {
            rows: self.rows,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
            stats: self.stats,
            non_uuid_samples: self.samples,
            null_samples: self.null_samples,
        })
    }
}

/// `id=42`, `(a=1, b=x)`, or `#17 (no primary key)`: how errors and samples name a row.
pub fn row_key(values: &[Option<&[u8]>], pk: &[usize], names: &[String], ordinal: u64) -> String {
    if pk.is_empty() {
        return format!("#{ordinal} (no primary key)");
    }
    let part = |i: usize| {
        let v = match values.get(i).copied().flatten() {
            None => "NULL".to_string(),
            Some(b) => {
                let s = String::from_utf8_lossy(b);
                if s.chars().count() > 64 {
                    format!("{}…", s.chars().take(64).collect::<String>())
                } else {
                    s.into_owned()
                }
            }
        };
        format!("{}={v}", names[i])
    };
    if pk.len() == 1 {
        part(pk[0])
    } else {
        format!(
            "({})",
            pk.iter().map(|&i| part(i)).collect::<Vec<_>>().join(", ")
        )
    }
}

/// sha256 and size of a file, streamed in 1 MiB reads; `on_bytes` sees progress.
pub fn checksum(path: &Path, mut on_bytes: impl FnMut(u64)) -> Result<(u64, String)> {
    use std::io::Read;
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
        on_bytes(n as u64);
    }
    Ok((total, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_rows() {
        let names = vec!["id".to_string(), "b".to_string()];
        let vals: Vec<Option<&[u8]>> = vec![Some(b"42"), None];
        assert_eq!(row_key(&vals, &[0], &names, 1), "id=42");
        assert_eq!(row_key(&vals, &[0, 1], &names, 1), "(id=42, b=NULL)");
        assert_eq!(row_key(&vals, &[], &names, 7), "#7 (no primary key)");
    }

    #[test]
    fn writer_counts_hashes_and_names_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let mut w = TableWriter::create(
            &path,
            "t",
            vec!["id".into(), "v".into()],
            vec![Rule::Verbatim, Rule::Text],
            vec![0],
            InvalidPolicy::Error,
        )
        .unwrap();
        w.write_row(&[Some(b"1"), Some(b"a,b")]).unwrap();
        let err = w.write_row(&[Some(b"2"), Some(b"x\0y")]).unwrap_err();
        let text = crate::hint::render(&err);
        assert!(text.contains("table `t`, column `v`, row id=2"), "{text}");
        let done = w.finish().unwrap();
        assert_eq!(done.rows, 1);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data, b"id,v\n1,\"a,b\"\n");
        assert_eq!(done.bytes, data.len() as u64);
        assert_eq!(checksum(&path, |_| {}).unwrap(), (done.bytes, done.sha256));
    }
}
