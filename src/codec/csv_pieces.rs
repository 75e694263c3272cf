//! PURE: a CSV record's fields in pieces, for a reader that must not hold a record whole
//! (a field of hundreds of MB). The same dialect as [`csv::Tokenizer`]: fields
//! separated by `,`, records by `\n`, a quoted field's doubled quotes undone. The bytes
//! of each field are given as they are found, in as many pieces as the input was cut
//! into; what a field means (NULL, its value) is the sink's to decide, since only a
//! short unquoted field can be the NULL marker.

use memchr::{memchr, memchr3};

use super::csv::Malformed;

/// Where the fields go.
pub trait FieldSink {
    /// More bytes of the current field (already unquoted).
    fn bytes(&mut self, b: &[u8]);
    /// The current field ended; `quoted`: it was written in quotes.
    fn end_field(&mut self, quoted: bool);
    /// The current record ended (after its last field's `end_field`).
    fn end_record(&mut self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first of a pair.
    QuoteSeen,
}

/// The splitter: feed it the input in chunks of any size, then [`FieldPieces::finish`].
#[derive(Debug)]
pub struct FieldPieces {
    state: State,
    /// Whether the current record has begun (a field or a separator seen).
    in_record: bool,
}

impl Default for FieldPieces {
    fn default() -> Self {
        FieldPieces {
            state: State::FieldStart,
            in_record: false,
        }
    }
}

impl FieldPieces {
    /// Split the next chunk of input.
    pub fn feed(&mut self, data: &[u8], sink: &mut impl FieldSink) -> Result<(), Malformed> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::FieldStart => {
                    self.in_record = true;
                    match data[i] {
                        b'"' => {
                            self.state = State::Quoted;
                            i += 1;
                        }
                        _ => self.state = State::Unquoted,
                    }
                }
                State::Unquoted => {
                    let rest = &data[i..];
                    let k = memchr3(b',', b'\n', b'"', rest).unwrap_or(rest.len());
                    if memchr(b'\r', &rest[..k]).is_some() {
                        return Err(Malformed::CarriageReturn);
                    }
                    if k > 0 {
                        sink.bytes(&rest[..k]);
                    }
                    i += k;
                    match data.get(i) {
                        None => {}
                        Some(b'"') => return Err(Malformed::QuoteInUnquoted),
                        Some(&b) => {
                            sink.end_field(false);
                            self.separator(b, sink);
                            i += 1;
                        }
                    }
                }
                State::Quoted => {
                    let rest = &data[i..];
                    let k = memchr(b'"', rest).unwrap_or(rest.len());
                    if k > 0 {
                        sink.bytes(&rest[..k]);
                    }
                    i += k;
                    if i < data.len() {
                        self.state = State::QuoteSeen;
                        i += 1;
                    }
                }
                State::QuoteSeen => {
                    match data[i] {
                        b'"' => {
                            sink.bytes(b"\"");
                            self.state = State::Quoted;
                        }
                        b @ (b',' | b'\n') => {
                            sink.end_field(true);
                            self.separator(b, sink);
                        }
                        _ => return Err(Malformed::AfterClosingQuote),
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// After a field's end: a `,` starts the next field, a `\n` ends the record.
    fn separator(&mut self, b: u8, sink: &mut impl FieldSink) {
        self.state = State::FieldStart;
        if b == b'\n' {
            sink.end_record();
            self.in_record = false;
        }
    }

    /// The input ended: a last record without a line end is complete.
    pub fn finish(&mut self, sink: &mut impl FieldSink) -> Result<(), Malformed> {
        match self.state {
            State::Quoted => return Err(Malformed::Unterminated),
            State::QuoteSeen => sink.end_field(true),
            State::Unquoted => sink.end_field(false),
            State::FieldStart if self.in_record => sink.end_field(false),
            State::FieldStart => return Ok(()),
        }
        sink.end_record();
        self.state = State::FieldStart;
        self.in_record = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::csv::{NullStyle, Tokenizer};
    use proptest::prelude::*;

    /// A record as the sink saw it: (bytes, quoted) per field.
    type Fields = Vec<(Vec<u8>, bool)>;

    #[derive(Default)]
    struct Collect {
        field: Vec<u8>,
        record: Fields,
        records: Vec<Fields>,
    }

    impl FieldSink for Collect {
        fn bytes(&mut self, b: &[u8]) {
            self.field.extend_from_slice(b);
        }
        fn end_field(&mut self, quoted: bool) {
            self.record.push((std::mem::take(&mut self.field), quoted));
        }
        fn end_record(&mut self) {
            self.records.push(std::mem::take(&mut self.record));
        }
    }

    fn split(data: &[u8], chunk: usize) -> Result<Vec<Fields>, Malformed> {
        let mut p = FieldPieces::default();
        let mut sink = Collect::default();
        for c in data.chunks(chunk.max(1)) {
            p.feed(c, &mut sink)?;
        }
        p.finish(&mut sink)?;
        Ok(sink.records)
    }

    /// What the whole-record tokenizer makes of the same bytes.
    fn tokenized(data: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, Malformed> {
        let mut t = Tokenizer::new(NullStyle::EmptyUnquoted);
        let (mut pos, mut out) = (0, Vec::new());
        while let Some(next) = t.split(data, pos, true)? {
            out.push(
                (0..t.len())
                    .map(|i| t.field(data, i).unwrap_or_default().to_vec())
                    .collect(),
            );
            pos = next;
        }
        Ok(out)
    }

    #[test]
    fn records_split_as_written_whatever_the_chunks() {
        let data = b"id,v\n1,\"a,\"\"b\"\"\nc\"\n2,\\N\n3,\n,\"\"\n4,x";
        for chunk in [1, 2, 3, 7, 100] {
            let got = split(data, chunk).unwrap();
            assert_eq!(
                got,
                vec![
                    vec![(b"id".to_vec(), false), (b"v".to_vec(), false)],
                    vec![(b"1".to_vec(), false), (b"a,\"b\"\nc".to_vec(), true)],
                    vec![(b"2".to_vec(), false), (b"\\N".to_vec(), false)],
                    vec![(b"3".to_vec(), false), (b"".to_vec(), false)],
                    vec![(b"".to_vec(), false), (b"".to_vec(), true)],
                    vec![(b"4".to_vec(), false), (b"x".to_vec(), false)],
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn malformed_input_is_refused_as_the_tokenizer_refuses_it() {
        for (data, want) in [
            (&b"a,\"b"[..], Malformed::Unterminated),
            (b"a,b\"c\n", Malformed::QuoteInUnquoted),
            (b"a,b\r\n", Malformed::CarriageReturn),
            (b"\"a\"b\n", Malformed::AfterClosingQuote),
        ] {
            for chunk in [1, 2, 64] {
                assert_eq!(split(data, chunk), Err(want), "{data:?} in {chunk}");
            }
            assert_eq!(tokenized(data).map(|_| ()), Err(want));
        }
    }

    proptest! {
        #[test]
        fn pieces_match_the_tokenizer(
            fields in prop::collection::vec(
                prop::collection::vec(prop::sample::select(b"ab,\"\n\\N x".to_vec()), 0..12),
                1..12,
            ),
            width in 1usize..4,
            chunk in 1usize..20,
        ) {
            // Rows of `width` fields, each written as the export writes it.
            let mut data = Vec::new();
            for (k, f) in fields.iter().enumerate() {
                if k > 0 {
                    data.push(if k % width == 0 { b'\n' } else { b',' });
                }
                data.push(b'"');
                for &b in f {
                    if b == b'"' {
                        data.push(b'"');
                    }
                    data.push(b);
                }
                data.push(b'"');
            }
            let got: Vec<Vec<Vec<u8>>> = split(&data, chunk)
                .unwrap()
                .into_iter()
                .map(|r| r.into_iter().map(|(b, _)| b).collect())
                .collect();
            prop_assert_eq!(got, tokenized(&data).unwrap());
        }
    }
}
