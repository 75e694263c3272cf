//! Progress on stderr with indicatif: hidden when stderr is not a terminal or with
//! `--quiet`. When hidden, `note` still prints one line per finished step, so logs of
//! non-interactive runs show what happened.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Every warning this process said ([`Progress::warn`]), in order.
static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The warnings said so far, passwords redacted: what a command's `--json` lists as
/// `warnings`, on success and on failure.
pub fn warned() -> Vec<String> {
    WARNED
        .lock()
        .map(|all| {
            all.iter()
                .map(|w| crate::redact::text(w).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    visible: bool,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            visible,
            quiet,
        }
    }

    /// A bar counting bytes (length may be 0 when unknown).
    pub fn bytes(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(
            label,
            total,
            "{prefix:>28.bold} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
        )
    }

    /// A bar counting rows against an estimate (the estimate may be off; the bar says so).
    pub fn rows(&self, label: &str, estimate: u64) -> ProgressBar {
        self.bar(
            label,
            estimate.max(1),
            "{prefix:>28.bold} [{bar:30}] {human_pos:>11} rows (~{human_len}) {msg:>10} {elapsed:>4} eta {eta}",
        )
    }

    /// A bar counting steps (index builds) with the one running as its message.
    pub fn steps(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(
            label,
            total.max(1),
            "{prefix:>28.bold} [{bar:30}] {pos:>3}/{len:<3} {elapsed:>4} {msg}",
        )
    }

    fn bar(&self, label: &str, total: u64, template: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(truncate(&crate::escape::text(label), 28));
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// A line of information above the bars (or plain stderr when bars are hidden).
    pub fn note(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.visible {
            let _ = self.multi.println(crate::out::shown(line.as_ref()));
        } else {
            crate::out::eprintln(line.as_ref());
        }
    }

    /// A warning: printed even with --quiet, and kept for the command's `--json`
    /// ([`warned`]), on success and on failure.
    pub fn warn(&self, line: impl AsRef<str>) {
        if let Ok(mut all) = WARNED.lock() {
            all.push(line.as_ref().to_string());
        }
        if self.visible {
            let _ = self
                .multi
                .println(crate::out::shown(&format!("warning: {}", line.as_ref())));
        } else {
            crate::out::eprintln(format!("warning: {}", line.as_ref()));
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// A bar advanced once per many steps: `ProgressBar::inc` takes a lock and reads the
/// clock, which per row of a deep verify's two readers was 2% of its time. What is
/// still pending is added when the ticker is dropped.
pub struct Ticker {
    bar: ProgressBar,
    pending: u64,
}

impl Ticker {
    const EVERY: u64 = 4096;

    pub fn new(bar: ProgressBar) -> Ticker {
        Ticker { bar, pending: 0 }
    }

    pub fn tick(&mut self) {
        self.pending += 1;
        if self.pending == Self::EVERY {
            self.bar.inc(self.pending);
            self.pending = 0;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if self.pending > 0 {
            self.bar.inc(self.pending);
        }
    }
}

/// `1.5 MB`-style sizes for summaries.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
