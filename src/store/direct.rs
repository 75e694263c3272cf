//! An export's data files are written and read with `O_DIRECT` where the filesystem
//! allows it: the bytes go between pgconverge's own (reused) buffers and the disk,
//! never through the page cache. Filling fresh page-cache pages is what a buffered write
//! or first read costs in CPU (on this project's VM, 2.5 CPU-seconds per GB written and
//! 2 per GB read: more than encoding the rows), and 4 GB of CSV in the page cache evicts
//! what the database servers on the same machine keep there. Anything `O_DIRECT` refuses
//! (a filesystem without it, an alignment the device wants larger, a short transfer)
//! falls back to buffered I/O for the rest of the file, with the same bytes at the same
//! offsets: the files are the same either way.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Alignment of buffers, lengths and offsets for `O_DIRECT` (a page: what any device's
/// logical block divides).
pub const ALIGN: usize = 4096;

/// Bytes per transfer.
const TRANSFER: usize = 1 << 20;

#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Block([u8; ALIGN]);

/// A buffer whose start is aligned to [`ALIGN`].
struct Aligned(Vec<Block>);

impl Aligned {
    fn new(bytes: usize) -> Aligned {
        Aligned(vec![Block([0; ALIGN]); bytes.div_ceil(ALIGN)])
    }

    fn bytes(&mut self) -> &mut [u8] {
        let len = self.0.len() * ALIGN;
        // SAFETY: `Block` is a `repr(C)` array of bytes whose size equals its alignment,
        // so the blocks are contiguous bytes with no padding, all initialised.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }
}

/// Turn `O_DIRECT` off for an open file: buffered I/O from its current offset on.
fn direct_off(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this File owns, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Open with `O_DIRECT` added to `flags`, or without it when the filesystem refuses it
/// (EINVAL at open). Says which it got.
pub fn open_with(
    options: &mut std::fs::OpenOptions,
    flags: i32,
    path: &Path,
) -> io::Result<(File, bool)> {
    match options.custom_flags(flags | libc::O_DIRECT).open(path) {
        Ok(f) => Ok((f, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Ok((options.custom_flags(flags).open(path)?, false))
        }
        Err(e) => Err(e),
    }
}

/// A data file being written: bytes gathered into an aligned buffer and written a whole
/// transfer at a time; the unaligned tail buffered at [`DirectWrite::finish`], then
/// fsync.
pub struct DirectWrite {
    file: File,
    path: PathBuf,
    buf: Aligned,
    len: usize,
    direct: bool,
    /// Per O_DIRECT transfer, in order: the fault a test injects (None: a real one).
    #[cfg(test)]
    faults: std::collections::VecDeque<Option<Fault>>,
}

/// What a filesystem may answer to an O_DIRECT transfer, injected by tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// EINVAL: it refuses O_DIRECT for this transfer.
    Refused,
    /// Only this many bytes were written.
    Short(usize),
}

impl DirectWrite {
    /// Create (or truncate) the file.
    pub fn create(path: &Path) -> Result<DirectWrite> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let (file, direct) = open_with(&mut options, 0, path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(DirectWrite {
            file,
            path: path.to_path_buf(),
            buf: Aligned::new(if direct { TRANSFER } else { 0 }),
            len: 0,
            direct,
            #[cfg(test)]
            faults: Default::default(),
        })
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if !self.direct {
                // Buffered from here (now, or since a transfer fell back): what the
                // aligned buffer still holds goes first, then the rest in order.
                let held = self.len;
                self.write_out(held)?;
                return self.file.write_all(data).with_context(|| self.writing());
            }
            let n = (TRANSFER - self.len).min(data.len());
            self.buf.bytes()[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
            if self.len == TRANSFER {
                self.write_out(TRANSFER)?;
            }
        }
        Ok(())
    }

    /// Write the buffer's first `n` bytes (all of it, or the aligned part at the end).
    fn write_out(&mut self, n: usize) -> Result<()> {
        let mut done = 0;
        while done < n {
            match self.transfer(done, n) {
                Ok(0) => {
                    return Err(io::Error::from(io::ErrorKind::WriteZero))
                        .with_context(|| self.writing());
                }
                Ok(k) => {
                    done += k;
                    // A short transfer leaves the offset unaligned: buffered from here.
                    if k % ALIGN != 0 && self.direct {
                        self.buffered()?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.direct => {
                    self.buffered()?
                }
                Err(e) => return Err(e).with_context(|| self.writing()),
            }
        }
        self.buf.bytes().copy_within(n..self.len, 0);
        self.len -= n;
        Ok(())
    }

    /// One `write(2)` of the buffer's bytes `from..to` (in tests, the fault injected
    /// for this transfer instead: what a filesystem may answer to O_DIRECT).
    fn transfer(&mut self, from: usize, to: usize) -> io::Result<usize> {
        #[cfg(test)]
        if self.direct {
            match self.faults.pop_front().flatten() {
                Some(Fault::Refused) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                Some(Fault::Short(k)) => {
                    let to = (from + k).min(to);
                    return self.file.write(&self.buf.bytes()[from..to]);
                }
                None => {}
            }
        }
        self.file.write(&self.buf.bytes()[from..to])
    }

    fn buffered(&mut self) -> Result<()> {
        direct_off(&self.file).with_context(|| self.writing())?;
        self.direct = false;
        Ok(())
    }

    fn writing(&self) -> String {
        format!("writing {}", self.path.display())
    }

    /// Write what is left and fsync.
    pub fn finish(mut self) -> Result<()> {
        let aligned = self.len / ALIGN * ALIGN;
        if self.direct && aligned > 0 {
            self.write_out(aligned)?;
        }
        if self.len > 0 {
            if self.direct {
                self.buffered()?;
            }
            let n = self.len;
            self.write_out(n)?;
        }
        self.file
            .sync_all()
            .with_context(|| format!("fsyncing {}", self.path.display()))
    }
}

/// A data file being read: whole transfers into an aligned buffer, given out as asked.
pub struct DirectRead {
    file: File,
    buf: Aligned,
    pos: usize,
    len: usize,
    direct: bool,
}

impl DirectRead {
    pub fn new(file: File, direct: bool) -> DirectRead {
        DirectRead {
            file,
            buf: Aligned::new(if direct { TRANSFER } else { 0 }),
            pos: 0,
            len: 0,
            direct,
        }
    }

    fn buffered(&mut self) -> io::Result<()> {
        direct_off(&self.file)?;
        self.direct = false;
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.file.read(self.buf.bytes()) {
                Ok(n) => {
                    (self.pos, self.len) = (0, n);
                    // A short transfer before the end would leave the offset
                    // unaligned: buffered from here (at the end, nothing follows).
                    if n % ALIGN != 0 {
                        self.buffered()?;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.buffered()?,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for DirectRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.direct && self.pos == self.len {
            return self.file.read(out);
        }
        if self.pos == self.len {
            self.fill()?;
        }
        let n = (self.len - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf.bytes()[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transfer refused or cut short at any point of a file (the first, a middle, the
    /// tail's) falls back to buffered writes with every byte in its place: the rest of
    /// the aligned buffer first, then what follows.
    #[test]
    fn a_fallback_anywhere_keeps_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let total = 3 * TRANSFER + TRANSFER / 2 + 123;
        let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
        for at in 0..5 {
            for fault in [Fault::Refused, Fault::Short(1000), Fault::Short(ALIGN)] {
                for piece in [7usize, 100_000, TRANSFER + 3] {
                    let path = dir.path().join(format!("f{at}_{fault:?}_{piece}"));
                    let mut w = DirectWrite::create(&path).unwrap();
                    assert!(
                        w.direct,
                        "the temporary directory's filesystem refuses O_DIRECT: point TMPDIR at a disk"
                    );
                    w.faults = (0..at).map(|_| None).chain([Some(fault)]).collect();
                    for chunk in data.chunks(piece) {
                        w.write_all(chunk).unwrap();
                    }
                    w.finish().unwrap();
                    let back = std::fs::read(&path).unwrap();
                    assert!(back == data, "{at} {fault:?} {piece}: {} bytes", back.len());
                }
            }
        }
    }

    /// Whatever the sizes of the writes and reads, the file holds the bytes written,
    /// and reads give them back (on the filesystem of the temporary directory, with or
    /// without O_DIRECT).
    #[test]
    fn bytes_round_trip_at_every_size() {
        let dir = tempfile::tempdir().unwrap();
        for total in [
            0usize,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            TRANSFER - 1,
            TRANSFER,
            TRANSFER + 5,
            3 * TRANSFER + 123,
        ] {
            for piece in [1usize, 7, ALIGN, 100_000, TRANSFER + 3] {
                let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
                let path = dir.path().join(format!("f{total}_{piece}"));
                let mut w = DirectWrite::create(&path).unwrap();
                for chunk in data.chunks(piece) {
                    w.write_all(chunk).unwrap();
                }
                w.finish().unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), data, "{total} {piece}");
                let (file, direct) =
                    open_with(std::fs::OpenOptions::new().read(true), 0, &path).unwrap();
                let mut r = DirectRead::new(file, direct);
                let mut back = Vec::new();
                let mut buf = vec![0u8; piece];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    back.extend_from_slice(&buf[..n]);
                }
                assert_eq!(back, data, "{total} {piece}");
            }
        }
    }
}
