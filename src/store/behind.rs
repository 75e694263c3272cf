//! A data file written behind its encoder: the thread that encodes rows hands over each
//! full buffer and goes on encoding, while a thread of the file's own hashes it (sha256)
//! and writes it (`O_DIRECT`: the write returns when the device has the bytes). An
//! export's largest table is read by one reader from start to end; hashing and waiting
//! for the disk on that reader's thread made it the longest step of a `migrate`. At most
//! one full buffer waits, so a file costs three buffers of memory, whatever its size.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};

use super::direct::DirectWrite;

/// Buffers in use by one file at most: the one being filled, one waiting, one written.
const BUFFERS: usize = 3;

pub struct WriteBehind {
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Result<(DirectWrite, Sha256)>>>,
    made: usize,
}

impl WriteBehind {
    /// Start the file's writing thread.
    pub fn start(mut file: DirectWrite) -> Result<WriteBehind> {
        let (full, to_write) = mpsc::sync_channel::<Vec<u8>>(1);
        let (done, empty) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        let thread = std::thread::Builder::new()
            .name("pgc-write".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut buf in to_write {
                    hasher.update(&buf);
                    file.write_all(&buf)?;
                    buf.clear();
                    // The writer may have stopped (an error of its own): nothing to give back.
                    let _ = done.try_send(buf);
                }
                Ok((file, hasher))
            })
            .map_err(|e| anyhow!("starting a writing thread: {e}"))?;
        Ok(WriteBehind {
            full: Some(full),
            empty,
            thread: Some(thread),
            made: 1,
        })
    }

    /// Hand over `buf`'s bytes, to be hashed and written in order; `buf` is replaced by
    /// an empty buffer of the same capacity. A write that failed is reported here (by
    /// the next call after it) or by [`WriteBehind::finish`].
    pub fn write(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let next = match self.empty.try_recv() {
            Ok(b) => b,
            Err(_) if self.made < BUFFERS => {
                self.made += 1;
                Vec::with_capacity(buf.capacity())
            }
            Err(_) => match self.empty.recv() {
                Ok(b) => b,
                // The thread stopped: its error.
                Err(_) => return Err(self.stopped()),
            },
        };
        let full = std::mem::replace(buf, next);
        let sent = self.full.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// Wait for every buffer to be written: the file (to finish) and the sha256 of
    /// every byte handed over.
    pub fn finish(mut self) -> Result<(DirectWrite, String)> {
        self.full = None;
        let (file, hasher) = self.join()?;
        Ok((file, hex::encode(hasher.finalize())))
    }

    /// The thread's error, once it stopped.
    fn stopped(&mut self) -> anyhow::Error {
        self.full = None;
        match self.join() {
            Err(e) => e,
            Ok(_) => anyhow!("the file's writing thread stopped"),
        }
    }

    fn join(&mut self) -> Result<(DirectWrite, Sha256)> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(anyhow!("the file's writing thread panicked")),
            None => Err(anyhow!("the file's writing thread already stopped")),
        }
    }
}

/// Given up (an error elsewhere): the thread writes what it holds and stops before the
/// caller goes on, so nothing writes the file after its writer is gone.
impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_is_written_and_hashed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let mut w = WriteBehind::start(DirectWrite::create(&path).unwrap()).unwrap();
        let mut want = Vec::new();
        let mut buf = Vec::with_capacity(1 << 20);
        for i in 0..200u32 {
            // Sizes that leave the O_DIRECT transfers unaligned, and empty hand-overs.
            let piece = vec![(i % 251) as u8; (i as usize * 7919) % 300_000];
            buf.extend_from_slice(&piece);
            want.extend_from_slice(&piece);
            w.write(&mut buf).unwrap();
            assert!(buf.is_empty());
        }
        let (file, sha) = w.finish().unwrap();
        file.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
        assert_eq!(sha, hex::encode(Sha256::digest(&want)));
    }
}
