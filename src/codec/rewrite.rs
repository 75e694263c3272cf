//! PURE: the rewritten CSV stream an import sends when a table's records must change on
//! the way (columns a mapping's `set` replaces left out, constants appended, values
//! adapted to the target's types), fed chunk by chunk and holding no record: a field
//! that travels unchanged is passed through as it is read, so memory stays at one chunk
//! whatever a value's length (a 500 MB document). Only a field whose adaptation needs
//! the whole value (SET -> array, truth -> boolean, datetime -> date, geometry) is held,
//! up to [`ADAPT_VALUE_MAX`]. As strict as the [`Tokenizer`](super::csv::Tokenizer):
//! anything the writer cannot have produced is [`Malformed`].

use memchr::{memchr, memchr3};

use super::adapt::Adapt;
use super::csv::{self, Malformed, NullStyle};

/// The longest value an adaptation that needs the whole value holds.
pub const ADAPT_VALUE_MAX: usize = 16 << 20;

/// Why a rewrite stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteError {
    /// Record `record` (1 = the first data row) is not in pgconverge's dialect.
    Malformed { record: u64, what: Malformed },
    /// A value of column `column` (from 0) is longer than an adaptation holds.
    TooLong { record: u64, column: usize },
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::Malformed { record, what } => write!(f, "record {record}: {what}"),
            RewriteError::TooLong { record, column } => write!(
                f,
                "record {record}, column {}: a value longer than {ADAPT_VALUE_MAX} bytes cannot be adapted",
                column + 1
            ),
        }
    }
}

/// Where the reader is inside a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the next byte says doubled or closing.
    QuoteSeen,
    AfterClosing,
}

/// What is done with the field under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Left out (a column a `set` replaces).
    Drop,
    /// Passed through as it is read (no adaptation; the header).
    Pass,
    /// `''` becomes NULL: passed through once it is known not to be empty.
    PassUnlessEmpty,
    /// Held whole, then adapted.
    Hold,
}

/// The streaming rewriter of one file.
pub struct Rewriter {
    nulls: NullStyle,
    adapts: Vec<Adapt>,
    keep: Vec<bool>,
    /// The constants appended to every record, already in CSV form (`\N` for NULL).
    extra: Vec<Vec<u8>>,
    at: At,
    /// The field under way (from 0) and the record (0 = the header).
    field: usize,
    record: u64,
    fate: Fate,
    /// No field of the output record written yet (no comma before the next).
    first: bool,
    /// A passed quoted field whose opening quote is not written yet.
    open_pending: bool,
    /// The value of a held field, or the first bytes of an unquoted one (which may be
    /// the NULL marker or `\.`, and are written once that is known).
    held: Vec<u8>,
    /// The held bytes of an unquoted passed field were written: the rest streams.
    streaming: bool,
}

impl Rewriter {
    /// `adapts[i]` is the adaptation of the file's i-th column (none when empty),
    /// `keep[i]` whether it is sent (all when empty), `extra` the values appended to
    /// every record (NULL as None), in PostgreSQL's text form.
    pub fn new(
        nulls: NullStyle,
        adapts: Vec<Adapt>,
        keep: Vec<bool>,
        extra: &[Option<String>],
    ) -> Rewriter {
        let extra = extra
            .iter()
            .map(|v| {
                let mut out = Vec::new();
                match v {
                    Some(v) => csv::write_text(v.as_bytes(), &mut out),
                    None => csv::write_null(&mut out),
                }
                out
            })
            .collect();
        let mut r = Rewriter {
            nulls,
            adapts,
            keep,
            extra,
            at: At::FieldStart,
            field: 0,
            record: 0,
            fate: Fate::Pass,
            first: true,
            open_pending: false,
            held: Vec::new(),
            streaming: false,
        };
        r.fate = r.fate_of(0);
        r
    }

    fn fate_of(&self, field: usize) -> Fate {
        if !self.keep.get(field).copied().unwrap_or(true) {
            return Fate::Drop;
        }
        if self.record == 0 {
            return Fate::Pass;
        }
        match self.adapts.get(field).copied().unwrap_or(Adapt::None) {
            Adapt::None => Fate::Pass,
            Adapt::EmptyToNull => Fate::PassUnlessEmpty,
            _ => Fate::Hold,
        }
    }

    fn malformed(&self, what: Malformed) -> RewriteError {
        RewriteError::Malformed {
            record: self.record,
            what,
        }
    }

    /// The separator before an output field.
    fn comma(&mut self, out: &mut Vec<u8>) {
        if !std::mem::replace(&mut self.first, false) {
            out.push(b',');
        }
    }

    fn hold(&mut self, bytes: &[u8]) -> Result<(), RewriteError> {
        if self.held.len() + bytes.len() > ADAPT_VALUE_MAX {
            return Err(RewriteError::TooLong {
                record: self.record,
                column: self.field,
            });
        }
        self.held.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes of a quoted field's value (doubled quotes already undone, `raw` being the
    /// same bytes as written, quotes doubled).
    fn quoted_bytes(&mut self, value: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        match self.fate {
            Fate::Drop => {}
            Fate::Hold => self.hold(value)?,
            Fate::Pass | Fate::PassUnlessEmpty => {
                if value.is_empty() {
                    return Ok(());
                }
                if std::mem::replace(&mut self.open_pending, false) {
                    self.comma(out);
                    out.push(b'"');
                }
                // Quotes are doubled again on the way out.
                let mut rest = value;
                while let Some(i) = memchr(b'"', rest) {
                    out.extend_from_slice(&rest[..=i]);
                    out.push(b'"');
                    rest = &rest[i + 1..];
                }
                out.extend_from_slice(rest);
            }
        }
        Ok(())
    }

    /// Bytes of an unquoted field (never a quote, comma, line end or CR).
    fn unquoted_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        match self.fate {
            // The first bytes of a dropped first field still tell an end-of-data line.
            Fate::Drop if self.field == 0 && self.held.len() < 3 => {
                let n = bytes.len().min(3 - self.held.len());
                self.held.extend_from_slice(&bytes[..n]);
            }
            Fate::Drop => {}
            Fate::Hold => self.hold(bytes)?,
            Fate::Pass | Fate::PassUnlessEmpty if self.streaming => out.extend_from_slice(bytes),
            Fate::Pass | Fate::PassUnlessEmpty => {
                self.held.extend_from_slice(bytes);
                // Longer than `\N` and `\.`: neither NULL, nor empty, nor an end marker.
                if self.held.len() > 2 {
                    self.comma(out);
                    out.extend_from_slice(&self.held);
                    self.held.clear();
                    self.streaming = true;
                }
            }
        }
        Ok(())
    }

    /// The field under way ended (`quoted`: it was a quoted one).
    fn end_field(&mut self, quoted: bool, out: &mut Vec<u8>) {
        match self.fate {
            Fate::Drop => {}
            Fate::Pass | Fate::PassUnlessEmpty if quoted => {
                if std::mem::replace(&mut self.open_pending, false) {
                    // An empty quoted value.
                    self.comma(out);
                    match self.fate {
                        Fate::PassUnlessEmpty => csv::write_null(out),
                        _ => out.extend_from_slice(b"\"\""),
                    }
                } else {
                    out.push(b'"');
                }
            }
            Fate::Pass | Fate::PassUnlessEmpty if self.streaming => {}
            Fate::Pass | Fate::PassUnlessEmpty | Fate::Hold => {
                let held = std::mem::take(&mut self.held);
                let value = (quoted || !self.nulls.is_null(&held)).then_some(&held[..]);
                let value = match (self.fate, value) {
                    (Fate::Pass, v) => v.map(std::borrow::Cow::Borrowed),
                    (_, Some(v)) => self
                        .adapts
                        .get(self.field)
                        .copied()
                        .unwrap_or(Adapt::None)
                        .apply(v),
                    (_, None) => None,
                };
                self.comma(out);
                match value {
                    Some(v) => csv::write_text(&v, out),
                    None => csv::write_null(out),
                }
            }
        }
        self.held.clear();
        self.streaming = false;
        self.open_pending = false;
        self.field += 1;
        self.fate = self.fate_of(self.field);
    }

    fn end_record(&mut self, out: &mut Vec<u8>) {
        for i in 0..self.extra.len() {
            self.comma(out);
            if self.record == 0 {
                // In the header line, which COPY skips, the extra values stand as NULLs.
                csv::write_null(out);
            } else {
                out.extend_from_slice(&self.extra[i]);
            }
        }
        out.push(b'\n');
        self.first = true;
        self.record += 1;
        self.field = 0;
        self.fate = self.fate_of(0);
    }

    /// Rewrite `data` (the next bytes of the file) into `out`. With `eof`, a last record
    /// without a line end is completed and an open quote is `Unterminated`. Every byte is
    /// consumed: nothing is kept but a held value.
    pub fn feed(&mut self, data: &[u8], eof: bool, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let mut pos = 0;
        while pos < data.len() {
            match self.at {
                At::FieldStart => {
                    if data[pos] == b'"' {
                        self.at = At::Quoted;
                        self.open_pending = matches!(self.fate, Fate::Pass | Fate::PassUnlessEmpty);
                        pos += 1;
                    } else {
                        self.at = At::Unquoted;
                    }
                }
                At::Unquoted => {
                    let run = &data[pos..];
                    let end = memchr3(b',', b'\n', b'"', run).unwrap_or(run.len());
                    if memchr(b'\r', &run[..end]).is_some() {
                        return Err(self.malformed(Malformed::CarriageReturn));
                    }
                    self.unquoted_bytes(&run[..end], out)?;
                    pos += end;
                    match run.get(end) {
                        None => {}
                        Some(b'"') => return Err(self.malformed(Malformed::QuoteInUnquoted)),
                        Some(&sep) => {
                            self.end_unquoted(sep == b'\n', out)?;
                            pos += 1;
                        }
                    }
                }
                At::Quoted => {
                    let run = &data[pos..];
                    let end = memchr(b'"', run).unwrap_or(run.len());
                    self.quoted_bytes(&run[..end], out)?;
                    pos += end;
                    if end < run.len() {
                        self.at = At::QuoteSeen;
                        pos += 1;
                    }
                }
                At::QuoteSeen => {
                    if data[pos] == b'"' {
                        self.quoted_bytes(b"\"", out)?;
                        self.at = At::Quoted;
                        pos += 1;
                    } else {
                        self.end_field(true, out);
                        self.at = At::AfterClosing;
                    }
                }
                At::AfterClosing => {
                    match data[pos] {
                        b',' => self.at = At::FieldStart,
                        b'\n' => {
                            self.end_record(out);
                            self.at = At::FieldStart;
                        }
                        _ => return Err(self.malformed(Malformed::AfterClosingQuote)),
                    }
                    pos += 1;
                }
            }
        }
        if eof {
            match self.at {
                At::Quoted => return Err(self.malformed(Malformed::Unterminated)),
                At::QuoteSeen => {
                    self.end_field(true, out);
                    self.end_record(out);
                }
                At::AfterClosing => self.end_record(out),
                At::Unquoted => self.end_unquoted(true, out)?,
                // A record that ended with a comma has one more, empty, field.
                At::FieldStart if self.field > 0 => {
                    self.at = At::Unquoted;
                    self.end_unquoted(true, out)?;
                }
                At::FieldStart => {}
            }
            self.at = At::FieldStart;
        }
        Ok(())
    }

    /// An unquoted field ended, by a comma or (`line_end`) the end of its record.
    fn end_unquoted(&mut self, line_end: bool, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        // `\.` alone on a line would end PostgreSQL's data: never written, never read.
        if line_end && self.field == 0 && !self.streaming && self.held == b"\\." {
            return Err(self.malformed(Malformed::EndOfDataMarker));
        }
        self.end_field(false, out);
        self.at = At::FieldStart;
        if line_end {
            self.end_record(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::csv::{Field, NullStyle, read_all, tests::encode_row};
    use proptest::prelude::*;

    /// What the tokenizer-based rewrite (one record at a time) makes of `rows`.
    fn expected(
        rows: &[Vec<Field>],
        adapts: &[Adapt],
        keep: &[bool],
        extra: &[Option<String>],
    ) -> Vec<Vec<Field>> {
        rows.iter()
            .enumerate()
            .map(|(r, row)| {
                let mut out: Vec<Field> = row
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| keep.get(*i).copied().unwrap_or(true))
                    .map(|(i, v)| match (r, v, adapts.get(i)) {
                        (0, v, _) => v.clone(),
                        (_, Some(v), Some(a)) => a.apply(v).map(|c| c.into_owned()),
                        (_, v, _) => v.clone(),
                    })
                    .collect();
                out.extend(extra.iter().map(|e| match r {
                    0 => None,
                    _ => e.as_ref().map(|s| s.as_bytes().to_vec()),
                }));
                out
            })
            .collect()
    }

    fn rewrite_chunked(
        bytes: &[u8],
        chunk: usize,
        nulls: NullStyle,
        adapts: &[Adapt],
        keep: &[bool],
        extra: &[Option<String>],
    ) -> Result<Vec<u8>, RewriteError> {
        let mut r = Rewriter::new(nulls, adapts.to_vec(), keep.to_vec(), extra);
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = bytes.chunks(chunk.max(1)).collect();
        for (i, piece) in pieces.iter().enumerate() {
            r.feed(piece, i + 1 == pieces.len(), &mut out)?;
        }
        if pieces.is_empty() {
            r.feed(b"", true, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn fields_are_dropped_adapted_and_appended() {
        let file = b"id,gone,flag,u\n1,\"x\",0,\"\"\n2,\\N,7,\"a\"\"b\"\n";
        let out = rewrite_chunked(
            file,
            3,
            NullStyle::Marker,
            &[
                Adapt::None,
                Adapt::None,
                Adapt::IntToBool,
                Adapt::EmptyToNull,
            ],
            &[true, false, true, true],
            &[Some("k".into()), None],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,flag,u,\\N,\\N\n1,f,\\N,k,\\N\n2,t,\"a\"\"b\",k,\\N\n"
        );
    }

    #[test]
    fn malformed_input_is_named_as_the_tokenizer_names_it() {
        let cases: &[(&[u8], Malformed)] = &[
            (b"a\n\"ab\n", Malformed::Unterminated),
            (b"a\na\"b\n", Malformed::QuoteInUnquoted),
            (b"a,b\na\r,b\n", Malformed::CarriageReturn),
            (b"a\n\"a\"b\n", Malformed::AfterClosingQuote),
            (b"a\n\\.\n", Malformed::EndOfDataMarker),
        ];
        for (data, want) in cases {
            for chunk in [1, 2, 64] {
                let got = rewrite_chunked(data, chunk, NullStyle::Marker, &[], &[], &[]);
                assert!(
                    matches!(got, Err(RewriteError::Malformed { what, .. }) if what == *want),
                    "{data:?} in chunks of {chunk}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn a_held_value_is_bounded() {
        let mut file = b"s\n\"".to_vec();
        file.extend(std::iter::repeat_n(b'a', ADAPT_VALUE_MAX + 1));
        file.extend_from_slice(b"\"\n");
        let got = rewrite_chunked(
            &file,
            1 << 20,
            NullStyle::Marker,
            &[Adapt::SetToArray],
            &[],
            &[],
        );
        assert_eq!(
            got,
            Err(RewriteError::TooLong {
                record: 1,
                column: 0
            })
        );
        // Passed through, the same value streams.
        let got = rewrite_chunked(
            &file,
            1 << 20,
            NullStyle::Marker,
            &[Adapt::EmptyToNull],
            &[],
            &[],
        );
        assert_eq!(got.map(|o| o.len()), Ok(file.len()));
    }

    fn field() -> impl Strategy<Value = Field> {
        prop::option::of(prop_oneof![
            "[,\"\\\\\r\n N.x]{0,6}".prop_map(String::into_bytes),
            Just(b"".to_vec()),
            Just(b"\\N".to_vec()),
            Just(b"\\.".to_vec()),
            Just(b"0".to_vec()),
            Just(b"a,b".to_vec()),
        ])
    }

    proptest! {
        /// Whatever the writer wrote, cut anywhere, the streaming rewrite reads back as
        /// the record-at-a-time rewrite, in either NULL style.
        #[test]
        fn streaming_agrees_with_the_record_rewrite(
            rows in prop::collection::vec(prop::collection::vec(field(), 3), 1..6),
            adapts in prop::collection::vec(prop_oneof![
                Just(Adapt::None), Just(Adapt::EmptyToNull), Just(Adapt::IntToBool),
                Just(Adapt::SetToArray),
            ], 3),
            keep in prop::collection::vec(any::<bool>(), 3),
            extra in prop::collection::vec(prop::option::of("[a-z,\"]{0,3}"), 0..2),
            chunk in 1usize..12,
            legacy in any::<bool>(),
        ) {
            // A COPY always sends at least one column.
            let mut keep = keep;
            if extra.is_empty() {
                keep[0] = true;
            }
            let nulls = if legacy { NullStyle::EmptyUnquoted } else { NullStyle::Marker };
            let mut bytes = Vec::new();
            for r in &rows {
                let mut line = encode_row(r);
                if legacy {
                    // The old scripts wrote NULL as an unquoted empty field.
                    let fields: Vec<Vec<u8>> = r.iter().map(|f| {
                        let mut o = Vec::new();
                        if let Some(v) = f {
                            csv::write_text(v, &mut o);
                        }
                        o
                    }).collect();
                    line = fields.join(&b","[..]);
                    line.push(b'\n');
                }
                bytes.extend(line);
            }
            let parsed = match read_all(&bytes, nulls) {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
            let want = expected(&parsed, &adapts, &keep, &extra);
            let out = rewrite_chunked(&bytes, chunk, nulls, &adapts, &keep, &extra).unwrap();
            let got = read_all(&out, NullStyle::Marker).unwrap();
            prop_assert_eq!(got, want);
        }
    }
}
