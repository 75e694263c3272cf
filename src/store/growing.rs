//! `migrate` loads a data file while the export is still writing it: the writer says
//! how many of the file's bytes are in it so far, and whether it is complete or failed
//! ([`Growing`]); the reader ([`Follow`]) reads up to that point, waits for more, and
//! reaches its end only when the writer has finished (fsync included). What was read is
//! checked afterwards like any file: its sha256 and records against the manifest's.
//! Reads are `O_DIRECT` where the filesystem allows it, as in `store::direct`: only
//! whole aligned blocks while the file grows, the tail once it is complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{Result, anyhow};

use super::direct::{ALIGN, Aligned, TRANSFER, direct_off};

/// Where a file being written stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stand {
    /// This many bytes are in the file; more will come.
    Writing(u64),
    /// Complete: this many bytes, fsynced.
    Done(u64),
    /// The writer stopped without finishing: the reason.
    Failed(String),
}

/// One file being written, as its writer reports it.
#[derive(Debug)]
pub struct Growing {
    stand: Mutex<Stand>,
    moved: Condvar,
    /// Records written so far (for a progress bar's rows per byte).
    rows: AtomicU64,
    /// Nanoseconds a reader has waited for more of the file.
    waited: AtomicU64,
}

impl Growing {
    fn new() -> Growing {
        Growing {
            stand: Mutex::new(Stand::Writing(0)),
            moved: Condvar::new(),
            rows: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }

    fn set(&self, to: Stand) {
        let mut stand = self.stand.lock().unwrap_or_else(|p| p.into_inner());
        // Once complete or failed, it stays so.
        if matches!(*stand, Stand::Writing(_)) {
            *stand = to;
        }
        self.moved.notify_all();
    }

    /// The writer: this many bytes are in the file now.
    pub fn wrote(&self, bytes: u64) {
        self.set(Stand::Writing(bytes));
    }

    /// The writer: the file is complete (and fsynced) at this size.
    pub fn done(&self, bytes: u64) {
        self.set(Stand::Done(bytes));
    }

    /// The writer: it stopped without finishing.
    pub fn failed(&self, why: &str) {
        self.set(Stand::Failed(why.to_string()));
    }

    /// The writer: this many records are encoded so far (some may still be buffered).
    pub fn records(&self, rows: u64) {
        self.rows.store(rows, Ordering::Relaxed);
    }

    /// Bytes in the file and records encoded so far.
    pub fn written(&self) -> (u64, u64) {
        let bytes = match self.stand() {
            Stand::Writing(n) | Stand::Done(n) => n,
            Stand::Failed(_) => 0,
        };
        (bytes, self.rows.load(Ordering::Relaxed))
    }

    pub fn stand(&self) -> Stand {
        self.stand.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wait until the file holds more than `past` bytes, or is complete or failed.
    fn wait_past(&self, past: u64) -> Stand {
        let mut stand = self.stand.lock().unwrap_or_else(|p| p.into_inner());
        let mut since = None;
        loop {
            match &*stand {
                Stand::Writing(n) if *n <= past => {
                    since.get_or_insert_with(std::time::Instant::now);
                    stand = self.moved.wait(stand).unwrap_or_else(|p| p.into_inner());
                }
                other => {
                    if let Some(t) = since {
                        let ns = t.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
                        self.waited.fetch_add(ns, Ordering::Relaxed);
                    }
                    return other.clone();
                }
            }
        }
    }

    /// Seconds a reader has spent waiting for the writer.
    pub fn waited(&self) -> f64 {
        self.waited.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// The files an export is writing, by name (all in one directory), for `migrate`'s
/// import to follow. A file is registered when it is created; its entry stays
/// (complete or failed) afterwards.
#[derive(Debug, Default)]
pub struct Files {
    files: Mutex<BTreeMap<String, Arc<Growing>>>,
    started: tokio::sync::Notify,
}

impl Files {
    pub fn new() -> Arc<Files> {
        Arc::new(Files::default())
    }

    /// A file the export starts writing.
    pub fn start(&self, path: &Path) -> Arc<Growing> {
        let growing = Arc::new(Growing::new());
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name_of(path), growing.clone());
        self.started.notify_waiters();
        growing
    }

    /// The file named `name`, if the export has started it.
    pub fn get(&self, name: &str) -> Option<Arc<Growing>> {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether the file named `name` is being written now (started, not complete).
    pub fn writing(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|g| matches!(g.stand(), Stand::Writing(_)))
    }

    /// Woken when the export starts another file (`enable` it before looking, so that
    /// a start in between is not missed).
    pub fn started(&self) -> tokio::sync::futures::Notified<'_> {
        self.started.notified()
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reading a file while it is written, up to what its writer has reported.
pub struct Follow {
    file: File,
    growing: Arc<Growing>,
    buf: Aligned,
    /// The buffer's bytes not given out yet: `pos..len`.
    pos: usize,
    len: usize,
    /// The file offset of the next read.
    offset: u64,
    direct: bool,
}

impl Follow {
    /// Open `path` (as `store::file::open_data` does: a regular file, never a link).
    pub fn open(path: &Path, growing: Arc<Growing>) -> Result<Follow> {
        let (file, direct) = super::file::open_for_follow(path)?;
        Ok(Follow {
            file,
            growing,
            buf: Aligned::new(TRANSFER),
            pos: 0,
            len: 0,
            offset: 0,
            direct,
        })
    }

    /// Read the next bytes the writer has reported into the buffer (none: the end).
    fn fill(&mut self) -> io::Result<()> {
        let stand = self.growing.wait_past(self.offset);
        let (avail, complete) = match stand {
            Stand::Writing(n) => (n - self.offset, false),
            Stand::Done(n) => (n.saturating_sub(self.offset), true),
            Stand::Failed(why) => {
                return Err(io::Error::other(format!(
                    "the export stopped writing it: {why}"
                )));
            }
        };
        let want = avail.min(TRANSFER as u64) as usize;
        // While the file grows, O_DIRECT takes whole blocks only: wait for one.
        let ask = match (self.direct, complete) {
            (true, false) if want < ALIGN => return self.wait_for_block(),
            (true, false) => want / ALIGN * ALIGN,
            (true, true) => want.div_ceil(ALIGN) * ALIGN,
            (false, _) => want,
        };
        let n = loop {
            match self.file.read_at(&mut self.buf.bytes()[..ask], self.offset) {
                Ok(n) => break n.min(want),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.direct => {
                    direct_off(&self.file)?;
                    self.direct = false;
                    return self.fill();
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 && want > 0 {
            return Err(io::Error::other(format!(
                "the file ends at byte {} but its writer reported {} bytes",
                self.offset,
                self.offset + avail
            )));
        }
        (self.pos, self.len) = (0, n);
        self.offset += n as u64;
        Ok(())
    }

    /// Less than a block more was written: wait for a whole one, or the end.
    fn wait_for_block(&mut self) -> io::Result<()> {
        let past = self.offset + ALIGN as u64 - 1;
        self.growing.wait_past(past);
        self.fill()
    }
}

impl Read for Follow {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            self.fill()?;
        }
        let n = (self.len - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf.bytes()[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A failure reading a followed file, as the import reports it.
pub fn follow_error(path: &Path, e: io::Error) -> anyhow::Error {
    anyhow!("reading {} while the export wrote it: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::direct::DirectWrite;

    /// A file created for following, and a thread reading it to its end as it grows.
    fn followed(path: &Path) -> (DirectWrite, std::thread::JoinHandle<io::Result<Vec<u8>>>) {
        let files = Files::new();
        let w = DirectWrite::create_following(path, &files).unwrap();
        let growing = files.get(&name_of(path)).unwrap();
        let path = path.to_path_buf();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            Follow::open(&path, growing)
                .unwrap()
                .read_to_end(&mut got)
                .map(|_| got)
        });
        (w, reader)
    }

    /// A reader following a file written in pieces of every size (below a block,
    /// across transfers, a tail) gets every byte in order, and its end only at the
    /// writer's end.
    #[test]
    fn a_follower_reads_every_byte_as_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for total in [
            0usize,
            1,
            ALIGN - 1,
            ALIGN,
            TRANSFER + 17,
            3 * TRANSFER + ALIGN,
        ] {
            let path = dir.path().join(format!("f{total}.csv"));
            let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
            let (mut w, reader) = followed(&path);
            for piece in data.chunks(ALIGN / 3 + 7) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
            assert!(reader.join().unwrap().unwrap() == data, "{total} bytes");
        }
    }

    /// A writer dropped without finishing (an error, an abort) ends the follower's
    /// read with an error, never with a short file taken for a whole one.
    #[test]
    fn a_writer_that_stops_fails_the_follower() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, reader) = followed(&dir.path().join("t.csv"));
        w.write_all(&vec![b'x'; TRANSFER + 5]).unwrap();
        drop(w);
        let e = reader.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("stopped writing"), "{e}");
    }
}
