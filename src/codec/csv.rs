//! PURE: pgconverge's CSV dialect, written and read in this one place. UTF-8, comma, `"`
//! quoting with doubled quotes, `\n` line ends, NULL as the unquoted marker `\N`; a real
//! string `\N` (and `\.`, which PostgreSQL could take for end-of-data) is quoted, and so is
//! the empty string, so that NULL and `''` both survive.
//!
//! The reader is one streaming [`Tokenizer`]: the binary COPY converter, the import's
//! pre-pass over every file, header reading, exports of the old shell scripts (NULL as an
//! unquoted empty field) and the tests all split records with it. It is strict: anything
//! the writer cannot have produced (an unquoted CR or quote, bytes after a closing quote,
//! a `\.` line) is [`Malformed`], so a damaged file is never half-understood.

use memchr::{memchr, memchr3};

/// The unquoted NULL marker.
pub const NULL: &[u8] = b"\\N";

pub fn write_null(out: &mut Vec<u8>) {
    out.extend_from_slice(NULL);
}

/// Does a value hold a byte that forces quoting? Short values (ids, UUIDs, dates) are
/// scanned byte by byte; long ones (documents) with memchr, which pays only past a few
/// dozen bytes.
fn has_special(v: &[u8]) -> bool {
    if v.len() < 64 {
        v.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    } else {
        memchr3(b',', b'"', b'\n', v).is_some() || memchr(b'\r', v).is_some()
    }
}

/// Write a non-NULL value, quoting only when needed.
pub fn write_text(v: &[u8], out: &mut Vec<u8>) {
    let needs_quotes = v.is_empty() || v == NULL || v == b"\\." || has_special(v);
    if !needs_quotes {
        out.extend_from_slice(v);
        return;
    }
    out.reserve(v.len() + 2);
    out.push(b'"');
    let mut rest = v;
    while let Some(i) = memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// [`write_text`] of a long value, piece by piece: `spill` is called each time `out`
/// passes `at` bytes (it writes and clears it), so the value is never copied whole.
pub fn write_text_pieces<E>(
    v: &[u8],
    out: &mut Vec<u8>,
    at: usize,
    spill: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let needs_quotes = v.is_empty() || v == NULL || v == b"\\." || has_special(v);
    if needs_quotes {
        out.push(b'"');
    }
    for piece in v.chunks(at) {
        if needs_quotes {
            let mut rest = piece;
            while let Some(i) = memchr(b'"', rest) {
                out.extend_from_slice(&rest[..=i]);
                out.push(b'"');
                rest = &rest[i + 1..];
            }
            out.extend_from_slice(rest);
        } else {
            out.extend_from_slice(piece);
        }
        if out.len() >= at {
            spill(out)?;
        }
    }
    if needs_quotes {
        out.push(b'"');
    }
    Ok(())
}

/// A header line of column names.
pub fn write_header<'a>(names: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    for (i, n) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_text(n.as_bytes(), out);
    }
    out.push(b'\n');
}

/// How NULL is spelled in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullStyle {
    /// pgconverge: unquoted `\N`.
    Marker,
    /// The old shell scripts: an unquoted empty field (`""` is the empty string).
    EmptyUnquoted,
}

impl NullStyle {
    /// Is this unquoted field NULL?
    pub fn is_null(self, unquoted: &[u8]) -> bool {
        match self {
            NullStyle::Marker => unquoted == NULL,
            NullStyle::EmptyUnquoted => unquoted.is_empty(),
        }
    }
}

/// Why bytes are not a record of this dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Unterminated,
    QuoteInUnquoted,
    CarriageReturn,
    AfterClosingQuote,
    EndOfDataMarker,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Malformed::Unterminated => "an unterminated quoted field",
            Malformed::QuoteInUnquoted => "a quote in an unquoted field",
            Malformed::CarriageReturn => "a carriage return in an unquoted field",
            Malformed::AfterClosingQuote => "bytes after a closing quote",
            Malformed::EndOfDataMarker => "an end-of-data marker line",
        })
    }
}

/// One field of the last record split: a range of the caller's buffer, or (for a quoted
/// field whose doubled quotes were undone) an entry of the tokenizer's scratch space.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
    scratch: Option<usize>,
}

/// The streaming record splitter. Feed it a buffer and a position; it finds the fields of
/// the record there without copying (except quoted fields with doubled quotes), or says
/// the record continues past the buffer, so memory stays at one chunk plus one record.
#[derive(Debug)]
pub struct Tokenizer {
    nulls: NullStyle,
    spans: Vec<Span>,
    scratch: Vec<Vec<u8>>,
}

impl Tokenizer {
    pub fn new(nulls: NullStyle) -> Tokenizer {
        Tokenizer {
            nulls,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Split the record that starts at `pos` of `data`. `Ok(Some(next))`: the record is
    /// complete and `next` is the position after its line end; `Ok(None)`: `data` ends
    /// inside it (or at `pos`) and, `eof` being false, more input may complete it. With
    /// `eof`, a last record without a line end is complete.
    pub fn split(
        &mut self,
        data: &[u8],
        mut pos: usize,
        eof: bool,
    ) -> Result<Option<usize>, Malformed> {
        if pos >= data.len() {
            return Ok(None);
        }
        self.spans.clear();
        let mut used_scratch = 0;
        loop {
            if data.get(pos) == Some(&b'"') {
                let start = pos + 1;
                let mut i = start;
                // Doubled quotes are undone into a scratch buffer as they are found: the
                // text between two of them is copied whole (a JSON value doubles a quote
                // every few bytes), never byte by byte.
                let mut scratch: Option<usize> = None;
                let mut copied = start;
                loop {
                    match memchr(b'"', &data[i..]) {
                        None if eof => return Err(Malformed::Unterminated),
                        None => return Ok(None),
                        Some(k) => {
                            i += k;
                            match data.get(i + 1) {
                                Some(b'"') => {
                                    let slot = *scratch.get_or_insert_with(|| {
                                        if self.scratch.len() <= used_scratch {
                                            self.scratch.push(Vec::new());
                                        }
                                        self.scratch[used_scratch].clear();
                                        used_scratch += 1;
                                        used_scratch - 1
                                    });
                                    // Up to and with the first quote of the pair.
                                    self.scratch[slot].extend_from_slice(&data[copied..=i]);
                                    i += 2;
                                    copied = i;
                                }
                                None if !eof => return Ok(None),
                                _ => break,
                            }
                        }
                    }
                }
                if let Some(slot) = scratch {
                    self.scratch[slot].extend_from_slice(&data[copied..i]);
                }
                self.spans.push(Span {
                    start,
                    end: i,
                    quoted: true,
                    scratch,
                });
                pos = i + 1;
            } else {
                let start = pos;
                match memchr3(b',', b'\n', b'"', &data[pos..]) {
                    Some(k) => pos += k,
                    None if eof => pos = data.len(),
                    None => return Ok(None),
                }
                if data.get(pos) == Some(&b'"') {
                    return Err(Malformed::QuoteInUnquoted);
                }
                if memchr(b'\r', &data[start..pos]).is_some() {
                    return Err(Malformed::CarriageReturn);
                }
                if self.spans.is_empty()
                    && &data[start..pos] == b"\\."
                    && matches!(data.get(pos), None | Some(b'\n'))
                {
                    return Err(Malformed::EndOfDataMarker);
                }
                self.spans.push(Span {
                    start,
                    end: pos,
                    quoted: false,
                    scratch: None,
                });
            }
            match data.get(pos) {
                Some(b',') => pos += 1,
                Some(b'\n') => return Ok(Some(pos + 1)),
                None if eof => return Ok(Some(pos)),
                None => return Ok(None),
                Some(_) => return Err(Malformed::AfterClosingQuote),
            }
        }
    }

    /// Find the end of the record at `pos` without splitting its fields: the position
    /// after its line end, as [`Tokenizer::split`] would return it for a record of this
    /// dialect, or `Ok(None)` when `data` ends inside it (and `eof` is false). A line end
    /// ends the record when the quotes before it are even in number (a doubled quote
    /// counts twice), so only line ends are searched and quotes counted, at memory speed;
    /// it is how the import's pre-pass counts and measures records. Malformed fields are
    /// found by `split`, which every loaded byte goes through later.
    pub fn record_end(
        &self,
        data: &[u8],
        pos: usize,
        eof: bool,
    ) -> Result<Option<usize>, Malformed> {
        if pos >= data.len() {
            return Ok(None);
        }
        let mut quoted = false;
        let mut i = pos;
        while let Some(k) = memchr(b'\n', &data[i..]) {
            quoted ^= odd_quotes(&data[i..i + k]);
            i += k + 1;
            if !quoted {
                return Ok(Some(i));
            }
        }
        match (eof, quoted ^ odd_quotes(&data[i..])) {
            (false, _) => Ok(None),
            (true, true) => Err(Malformed::Unterminated),
            (true, false) => Ok(Some(data.len())),
        }
    }

    /// Fields of the record last split.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i` of the record last split from `data` (the same buffer); None is NULL.
    pub fn field<'a>(&'a self, data: &'a [u8], i: usize) -> Option<&'a [u8]> {
        let s = self.spans[i];
        let v = match s.scratch {
            Some(k) => &self.scratch[k][..],
            None => &data[s.start..s.end],
        };
        if !s.quoted && self.nulls.is_null(v) {
            None
        } else {
            Some(v)
        }
    }
}

/// Record boundaries found in a stream fed chunk by chunk, holding none of it: how the
/// import's pre-pass counts and measures records in constant memory, whatever their
/// length (a 500 MB value, or a forged file whose quote never closes). It agrees with
/// [`Tokenizer::record_end`]: a line end ends the record when the quotes before it
/// are even in number.
#[derive(Debug, Default, Clone)]
pub struct RecordEnds {
    quoted: bool,
    /// Bytes of the record under way.
    pending: u64,
}

impl RecordEnds {
    pub fn new() -> RecordEnds {
        RecordEnds::default()
    }

    /// Feed the next bytes; `on_record(len)` sees each record completed in them, with
    /// its length in bytes (line end included), and may stop the scan with an error.
    pub fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        mut on_record: impl FnMut(u64) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(k) = memchr(b'\n', chunk) {
            self.quoted ^= odd_quotes(&chunk[..k]);
            self.pending += k as u64 + 1;
            chunk = &chunk[k + 1..];
            if !self.quoted {
                on_record(std::mem::take(&mut self.pending))?;
            }
        }
        self.quoted ^= odd_quotes(chunk);
        self.pending += chunk.len() as u64;
        Ok(())
    }

    /// Bytes of the record under way (not yet ended by a line end).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// At the end of the input: the length of a last record without a line end (None
    /// when there is none), or `Unterminated` when a quote never closed.
    pub fn finish(&mut self) -> Result<Option<u64>, Malformed> {
        match (self.quoted, std::mem::take(&mut self.pending)) {
            (true, _) => Err(Malformed::Unterminated),
            (false, 0) => Ok(None),
            (false, n) => Ok(Some(n)),
        }
    }
}

/// Is the number of quotes in `s` odd? (An XOR fold: the compiler vectorizes it.)
fn odd_quotes(s: &[u8]) -> bool {
    s.iter().fold(0u8, |acc, &b| acc ^ u8::from(b == b'"')) == 1
}

/// One parsed field, owned: None is NULL.
pub type Field = Option<Vec<u8>>;

/// Parse the record at `pos` of a complete buffer into owned fields, with the position
/// after it; None at the end. For headers, small files and tests.
pub fn read_record(
    data: &[u8],
    pos: usize,
    nulls: NullStyle,
) -> Result<Option<(Vec<Field>, usize)>, Malformed> {
    let mut t = Tokenizer::new(nulls);
    Ok(t.split(data, pos, true)?.map(|next| {
        let fields = (0..t.len())
            .map(|i| t.field(data, i).map(<[u8]>::to_vec))
            .collect();
        (fields, next)
    }))
}

/// Parse a whole buffer into records (tests and small files only).
pub fn read_all(data: &[u8], nulls: NullStyle) -> Result<Vec<Vec<Field>>, Malformed> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((rec, next)) = read_record(data, pos, nulls)? {
        out.push(rec);
        pos = next;
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn encode_row(row: &[Field]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, f) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match f {
                None => write_null(&mut out),
                Some(v) => write_text(v, &mut out),
            }
        }
        out.push(b'\n');
        out
    }

    #[test]
    fn nasty_fields_round_trip() {
        let row: Vec<Field> = vec![
            None,
            Some(b"".to_vec()),
            Some(b"\\N".to_vec()),
            Some(b"\\.".to_vec()),
            Some(b"\"".to_vec()),
            Some(b",".to_vec()),
            Some(b"\r\n".to_vec()),
            Some(b"\\".to_vec()),
            Some(b" padded ".to_vec()),
        ];
        let bytes = encode_row(&row);
        assert_eq!(
            bytes,
            b"\\N,\"\",\"\\N\",\"\\.\",\"\"\"\",\",\",\"\r\n\",\\, padded \n"
        );
        assert_eq!(read_all(&bytes, NullStyle::Marker).unwrap(), vec![row]);
    }

    #[test]
    fn legacy_null_style() {
        let recs = read_all(b",\"\",x\n", NullStyle::EmptyUnquoted).unwrap();
        assert_eq!(recs, vec![vec![None, Some(vec![]), Some(b"x".to_vec())]]);
    }

    #[test]
    fn malformed_input_is_named() {
        let cases: &[(&[u8], Malformed)] = &[
            (b"\"ab\n", Malformed::Unterminated),
            (b"a\"b\n", Malformed::QuoteInUnquoted),
            (b"a\r,b\n", Malformed::CarriageReturn),
            (b"\"a\"b\n", Malformed::AfterClosingQuote),
            (b"\\.\n", Malformed::EndOfDataMarker),
        ];
        for (data, want) in cases {
            assert_eq!(read_all(data, NullStyle::Marker), Err(*want), "{data:?}");
        }
        // `\.` is data when it is not alone on its line.
        assert!(read_all(b"a,\\.\n", NullStyle::Marker).is_ok());
    }

    #[test]
    fn incomplete_records_wait_for_more_input() {
        let mut t = Tokenizer::new(NullStyle::Marker);
        for partial in [&b"a,b"[..], b"\"a\n", b"\"a\"", b"a,"] {
            assert_eq!(t.split(partial, 0, false), Ok(None), "{partial:?}");
        }
        assert_eq!(t.split(b"a,", 0, true), Ok(Some(2)));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn doubled_quotes_are_undone_once_the_record_is_complete() {
        // JSON values, whose every quote the CSV doubles, beside plain fields: each
        // prefix of the record waits for more input (filling scratch buffers it then
        // drops), and one tokenizer then gives every value back, twice over.
        let row: Vec<Field> = vec![
            Some(br#"[{"a":"b","c":["d",""]}]"#.to_vec()),
            Some(b"x".to_vec()),
            Some(br#""""#.to_vec()),
            None,
            Some(br#"{"k":1} "tail""#.to_vec()),
        ];
        let bytes = [encode_row(&row), encode_row(&row)].concat();
        let one = bytes.len() / 2;
        let mut t = Tokenizer::new(NullStyle::Marker);
        for cut in 0..one {
            assert_eq!(t.split(&bytes[..cut], 0, false), Ok(None), "{cut}");
        }
        for (pos, next) in [(0, one), (one, bytes.len())] {
            assert_eq!(t.split(&bytes, pos, false), Ok(Some(next)));
            let got: Vec<Field> = (0..t.len())
                .map(|i| t.field(&bytes, i).map(<[u8]>::to_vec))
                .collect();
            assert_eq!(got, row);
        }
    }

    proptest! {
        /// Whatever the writer wrote, cut anywhere, `record_end` finds the same record
        /// boundaries as `split`.
        #[test]
        fn record_ends_agree_with_split(rows in prop::collection::vec(
            prop::collection::vec(
                prop::option::of("[,\"\\\\\r\n N.x]{0,6}".prop_map(String::into_bytes)),
                1..4,
            ),
            0..8,
        ), cut in 0usize..64) {
            let mut bytes = Vec::new();
            for r in &rows {
                bytes.extend(encode_row(r));
            }
            let mut t = Tokenizer::new(NullStyle::Marker);
            let (mut a, mut b) = (0, 0);
            loop {
                let s = t.split(&bytes, a, true).unwrap();
                let e = t.record_end(&bytes, b, true).unwrap();
                prop_assert_eq!(s, e);
                let Some(next) = s else { break };
                // A prefix that ends inside the record: both wait for more input.
                let end = (a + cut).min(next - 1);
                if end > a {
                    prop_assert_eq!(t.split(&bytes[..end], a, false).unwrap(), None);
                    prop_assert_eq!(t.record_end(&bytes[..end], a, false).unwrap(), None);
                }
                a = next;
                b = next;
            }
        }

        /// Fed in chunks of any size, `RecordEnds` finds the records `record_end` finds.
        #[test]
        fn streamed_record_ends_agree(rows in prop::collection::vec(
            prop::collection::vec(
                prop::option::of("[,\"\\\\\r\n N.x]{0,6}".prop_map(String::into_bytes)),
                1..4,
            ),
            0..8,
        ), chunk in 1usize..9, unterminated in any::<bool>()) {
            let mut bytes = Vec::new();
            for r in &rows {
                bytes.extend(encode_row(r));
            }
            if unterminated {
                bytes.extend_from_slice(b"x,\"open");
            }
            let t = Tokenizer::new(NullStyle::Marker);
            let mut want = Vec::new();
            let mut pos = 0;
            let want_end = loop {
                match t.record_end(&bytes, pos, true) {
                    Ok(Some(next)) => {
                        want.push((next - pos) as u64);
                        pos = next;
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            let mut ends = RecordEnds::new();
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                ends.feed(piece, |n| {
                    got.push(n);
                    Ok::<(), ()>(())
                }).unwrap();
            }
            let got_end = ends.finish().map(|last| got.extend(last));
            prop_assert_eq!(got_end, want_end);
            prop_assert_eq!(got, want);
        }

        #[test]
        fn csv_round_trip(rows in prop::collection::vec(
            prop::collection::vec(
                prop::option::of(prop_oneof![
                    ".*".prop_map(String::into_bytes),
                    "[,\"\\\\\r\n N.x]{0,6}".prop_map(String::into_bytes),
                    prop::collection::vec(any::<u8>(), 0..8),
                ]),
                1..6,
            ),
            0..8,
        )) {
            let mut bytes = Vec::new();
            for r in &rows {
                bytes.extend(encode_row(r));
            }
            prop_assert_eq!(read_all(&bytes, NullStyle::Marker).unwrap(), rows);
        }
    }
}
