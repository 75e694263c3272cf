//! stdout and stderr, the only way pgconverge writes to them. Human-readable text is
//! redacted (`redact::text`) and escaped (`escape::lines`) on its way out, so that no
//! password and no control character reaches a terminal or a log collector, whatever
//! a message quoted; JSON is written exactly as serde makes it. A stream that is closed
//! (a `| head` that has read enough, a terminal that went away: EPIPE) is never a crash:
//! the write is dropped, later writes to it are skipped, and the work goes on to its
//! true end, which the run log and the exit code report.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Human-readable results go to stderr (a command that prints one JSON document at its
/// end, `migrate --online --json`, runs other commands' steps).
static RESULTS_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// From now on, human-readable results ([`print`]) go to stderr; JSON stays on stdout.
pub fn results_to_stderr() {
    RESULTS_TO_STDERR.store(true, Ordering::Relaxed);
}
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write(closed: &AtomicBool, mut sink: impl Write, bytes: &[u8]) {
    if closed.load(Ordering::Relaxed) {
        return;
    }
    if sink.write_all(bytes).and_then(|()| sink.flush()).is_err() {
        closed.store(true, Ordering::Relaxed);
    }
}

/// Human-readable text as it may be shown: passwords redacted, control characters
/// escaped (the line ends and tabs of its layout kept).
pub fn shown(text: &str) -> String {
    crate::escape::lines(&crate::redact::text(text)).into_owned()
}

/// Human-readable text on stdout (a result: a table, a summary line), as it is given
/// (add the line end).
pub fn print(text: impl AsRef<str>) {
    if RESULTS_TO_STDERR.load(Ordering::Relaxed) {
        return eprint(text);
    }
    write(
        &STDOUT_CLOSED,
        std::io::stdout().lock(),
        shown(text.as_ref()).as_bytes(),
    );
}

/// [`print`] and a line end.
pub fn println(text: impl AsRef<str>) {
    print(format!("{}\n", text.as_ref()));
}

/// Human-readable text on stderr (progress, warnings, errors), as it is given.
pub fn eprint(text: impl AsRef<str>) {
    write(
        &STDERR_CLOSED,
        std::io::stderr().lock(),
        shown(text.as_ref()).as_bytes(),
    );
}

/// [`eprint`] and a line end.
pub fn eprintln(text: impl AsRef<str>) {
    eprint(format!("{}\n", text.as_ref()));
}

/// A result as JSON on stdout, exactly (pretty-printed, one document, a line end).
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    write(&STDOUT_CLOSED, std::io::stdout().lock(), &text);
    Ok(())
}

/// The result of a command that moved or compared data (export, import, verify,
/// migrate) as JSON on stdout, with the process's peak memory so far
/// (`peak_rss_bytes`, the kernel's VmHWM; null where it does not say).
pub fn result(value: &impl serde::Serialize) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct WithPeak<'a, T> {
        #[serde(flatten)]
        result: &'a T,
        peak_rss_bytes: Option<u64>,
    }
    json(&WithPeak {
        result: value,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// The process's peak resident set size in bytes (`VmHWM` of /proc/self/status).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    crate::memory::vm_hwm(&status)
}

/// Bytes on stdout exactly as they are (a file's text the user redirects, such as a
/// built-in profile).
pub fn data(bytes: &[u8]) {
    write(&STDOUT_CLOSED, std::io::stdout().lock(), bytes);
}

/// Has a write to stderr failed (its reader is gone)? Progress then stops drawing.
pub fn stderr_closed() -> bool {
    STDERR_CLOSED.load(Ordering::Relaxed)
}
