//! Memory: the bounds that keep pgconverge's memory flat whatever it reads (one place
//! for each, documented in docs/reliability.md), and the process's peak resident size
//! as the kernel counts it (`VmHWM`), which every `--json` result reports.

/// The largest manifest read (it is read whole and parsed): 16 MiB holds tens of
/// thousands of tables with their column facts.
pub const MANIFEST_MAX: u64 = 16 << 20;

/// The largest mapping file read (`--map`, the export's `mapping.toml`, a built-in
/// profile): a mapping is written by hand; 1 MiB is far past any real one.
pub const MAPPING_MAX: u64 = 1 << 20;

/// The longest record the binary COPY converter takes: it holds a whole record (and its
/// tuple) in memory, so a table with a longer record is sent as CSV, straight from the
/// file, in chunks.
pub const BINARY_RECORD_MAX: u64 = 4 << 20;

/// The process's peak resident set size in bytes (`VmHWM` of /proc/self/status); None
/// where the kernel does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm(&status)
}

/// `VmHWM:  12345 kB` -> bytes (pure).
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_the_status_file() {
        assert_eq!(
            vm_hwm("Name:\tx\nVmPeak:\t  999 kB\nVmHWM:\t   12345 kB\n"),
            Some(12345 * 1024)
        );
        assert_eq!(vm_hwm("Name:\tx\n"), None);
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
    }
}
