//! PURE: the bounds that keep pgconverge's memory flat whatever it reads (one place for
//! each, documented in docs/reliability.md), and how the kernel's count of the peak
//! resident size (`VmHWM`), which every `--json` result reports, is read.

/// The largest manifest read (it is read whole and parsed): 16 MiB holds tens of
/// thousands of tables with their column facts.
pub const MANIFEST_MAX: u64 = 16 << 20;

/// The largest mapping file read (`--map`, the export's `mapping.toml`): a mapping is
/// written by hand (the built-in profiles are under 1 KiB); 256 KiB is far past any
/// real one, and keeps the plan it makes (tens of thousands of hooks at most) small.
pub const MAPPING_MAX: u64 = 256 << 10;

/// The longest record the binary COPY converter takes: it holds a whole record (and its
/// tuple) in memory, so a table with a longer record is sent as CSV, straight from the
/// file, in chunks.
pub const BINARY_RECORD_MAX: u64 = 4 << 20;

/// A value longer than this (bytes) is read from a source or a target in pieces, by
/// its row's key, after the table's stream (`db::long_values`): a driver holds a row
/// whole, often twice over, and the value is then held once.
pub const LONG_VALUE: u64 = 4 << 20;

/// The fewest characters read per piece of a long value (at most 4 bytes each in
/// UTF-8). The servers read the value from its start for each piece, so a value's read
/// costs its length times its pieces (`db::long_values::pieces`).
pub const LONG_PIECE: u64 = 1 << 20;

/// The most bytes a piece of a long value read from PostgreSQL holds on average (MySQL's
/// stay at [`LONG_PIECE`]: `db::long_values::piece_bytes`): the drivers keep a piece two
/// or three times over while it is read, and deep verify's bound is 64 MB and the
/// pieces in flight.
pub const PIECE_BYTES: u64 = 4 << 20;

/// A table whose longest exported record is longer than this is deep-verified one side
/// after the other: each side holds a row several times over (the reader's message, the
/// decoded fields, a canonical value), and both sides at once would double that.
pub const ONE_SIDE_AT_A_TIME: u64 = 4 << 20;

/// Deserialize a list that pgconverge writes with at most `N` entries (the samples of a
/// manifest's column facts): a longer one is refused as it is read, before it takes
/// memory, since no export wrote it.
pub fn at_most<'de, const N: usize, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Bounded<const N: usize, T>(std::marker::PhantomData<T>);
    impl<'de, const N: usize, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Bounded<N, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {N} entries")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                if out.len() == N {
                    return Err(serde::de::Error::custom(format!(
                        "a list of more than {N} entries, more than pgconverge writes"
                    )));
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<N, T>(std::marker::PhantomData))
}

/// [`at_most`] for an optional list.
pub fn some_at_most<'de, const N: usize, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    at_most::<N, D, T>(d).map(Some)
}

/// `VmHWM:  12345 kB` in /proc/<pid>/status -> bytes.
pub fn vm_hwm(status: &str) -> Option<u64> {
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
    }

    #[test]
    fn bounded_lists_refuse_what_no_export_wrote() {
        #[derive(serde::Deserialize, Debug)]
        struct S {
            #[serde(deserialize_with = "at_most::<2, _, _>")]
            v: Vec<u32>,
        }
        assert_eq!(
            serde_json::from_str::<S>(r#"{"v":[1,2]}"#).unwrap().v,
            [1, 2]
        );
        let err = serde_json::from_str::<S>(r#"{"v":[1,2,3]}"#).unwrap_err();
        assert!(err.to_string().contains("more than 2 entries"), "{err}");
    }
}
