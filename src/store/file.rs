//! Opening the files pgconverge reads: every file of an export (manifest, stored
//! mapping, CSVs) is opened with `O_NOFOLLOW | O_NONBLOCK` and must then be a regular
//! file (`fstat` of what was opened, so nothing can be swapped between a check and the
//! open): a symlink, a FIFO or a device is refused, never followed, waited on or read.
//! The export directory itself may be a symlink. A file the user names (`--map`) may be
//! a symlink (Kubernetes mounts ConfigMaps that way) but must lead to a regular file.
//! Files read whole have a size limit (`memory`), checked before they are read.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, anyhow};

use crate::hint::WithHint;

/// Whether a symlink at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A file of an export: a symlink is refused.
    Refuse,
    /// A file the user names: a symlink is followed to a regular file.
    Follow,
}

/// Open `path` for reading: a regular file, never through a symlink (with
/// `Links::Refuse`), never blocking on a FIFO.
pub fn open(path: &Path, links: Links) -> Result<File> {
    Ok(open_as(path, links, false)?.0)
}

/// An export's data file, opened as [`open`] does, to be read with `O_DIRECT` where the
/// filesystem allows it (`store::direct`).
pub fn open_data(path: &Path) -> Result<super::direct::DirectRead> {
    let (file, direct) = open_as(path, Links::Refuse, true)?;
    Ok(super::direct::DirectRead::new(file, direct))
}

fn open_as(path: &Path, links: Links, direct: bool) -> Result<(File, bool)> {
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    let opened = match direct {
        true => super::direct::open_with(&mut options, flags, path),
        false => options.custom_flags(flags).open(path).map(|f| (f, false)),
    };
    let (file, direct) = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) && links == Links::Refuse => {
            return Err(anyhow!(
                "{} is a symbolic link, not a regular file",
                path.display()
            ))
            .hint("an export holds plain files only: copy the file itself, not a link to it");
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let kind = file
        .metadata()
        .with_context(|| format!("reading the type of {}", path.display()))?
        .file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "something else"
        };
        return Err(anyhow!("{} is not a regular file ({what})", path.display()))
            .hint("pgconverge reads plain files only");
    }
    Ok((file, direct))
}

/// A file read whole as text (a manifest, a mapping): a regular file (as [`open`]) of at
/// most `max` bytes, refused by its size before any of it is read. `what` names it in
/// the error ("the manifest").
pub fn read_text(path: &Path, links: Links, max: u64, what: &str) -> Result<String> {
    let file = open(path, links)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > max {
        return Err(anyhow!(
            "{} is {size} bytes: larger than any {what} pgconverge reads ({max} bytes)",
            path.display()
        ))
        .hint(format!(
            "{what} is read whole, so its size is bounded (docs/reliability.md); this one is not the file pgconverge wrote, or was changed"
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow after the check: never read more than the limit.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(anyhow!(
            "{} grew past {max} bytes while it was read",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{} is not UTF-8 text (at byte {}: {})",
            path.display(),
            e.utf8_error().valid_up_to(),
            crate::escape::prefix(&e.as_bytes()[e.utf8_error().valid_up_to()..], 16)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"data").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("p");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());

        assert!(open(&file, Links::Refuse).is_ok());
        assert!(open(&link, Links::Follow).is_ok());
        fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
            format!("{:#}", r.unwrap_err())
        }
        assert!(msg(open(&link, Links::Refuse)).contains("is a symbolic link"));
        // A FIFO without a writer: refused at once, not waited on.
        assert!(msg(open(&fifo, Links::Refuse)).contains("not a regular file (a FIFO)"));
        assert!(msg(open(Path::new("/dev/zero"), Links::Follow)).contains("(a device)"));
        assert!(msg(open(dir.path(), Links::Follow)).contains("(a directory)"));

        assert_eq!(
            read_text(&file, Links::Refuse, 4, "a test").unwrap(),
            "data"
        );
        let big = msg(read_text(&file, Links::Refuse, 3, "a test file"));
        assert!(big.contains("larger than any a test file"), "{big}");
        std::fs::write(&file, b"ok\xff\x1b[2J").unwrap();
        let bad = msg(read_text(&file, Links::Refuse, 100, "a test"));
        assert!(
            bad.contains("at byte 2") && !bad.contains('\u{1b}'),
            "{bad}"
        );
    }
}
