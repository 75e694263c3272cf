//! PURE: PostgreSQL's COPY text format as `COPY ... TO STDOUT` writes it: one row per
//! line, fields separated by tabs, NULL as `\N`, and `\\`, `\t`, `\n`, `\r`, `\b`, `\f`,
//! `\v` escapes. The PostgreSQL source and `verify --deep`'s target reader read COPY
//! output this way, streamed in chunks.

/// A COPY text stream read chunk by chunk, as the server sends it (one CopyData message
/// per row, but a row may also be split across chunks or several rows share one). Fields
/// without escapes are handed on as slices of the chunk, never copied; only escaped ones
/// are unescaped, into a buffer reused for every row. Memory: one partial row and one
/// row's unescaped fields.
#[derive(Default)]
pub struct Reader {
    /// The end of the previous chunk that did not complete a row.
    pending: Vec<u8>,
    unescaped: Vec<u8>,
    spans: Vec<Span>,
}

/// Where one field of the current row lives.
#[derive(Clone, Copy)]
enum Span {
    Null,
    /// Bytes of the row's line, as they are.
    Raw(usize, usize),
    /// Bytes of the unescape buffer.
    Unescaped(usize, usize),
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Call `on_row` for every row this chunk completes (fields in order, None for
    /// NULL); stops at the first error `on_row` returns.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut on_row: impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.pending.is_empty() {
            let used = rows_in(chunk, &mut self.unescaped, &mut self.spans, &mut on_row)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(chunk);
            let used = rows_in(&data, &mut self.unescaped, &mut self.spans, &mut on_row);
            data.drain(..*used.as_ref().unwrap_or(&0));
            self.pending = data;
            used?;
        }
        Ok(())
    }

    /// Bytes of an incomplete last row (0 at the end of a whole COPY output).
    pub fn incomplete(&self) -> usize {
        self.pending.len()
    }

    /// At the end of the output: an error if it ended inside a row (the server never
    /// does that; a cut stream would).
    pub fn finish(&self) -> anyhow::Result<()> {
        match self.incomplete() {
            0 => Ok(()),
            n => anyhow::bail!("the COPY output ended inside a row ({n} bytes of it)"),
        }
    }
}

/// The complete rows at the start of `data`; returns how many bytes they took.
fn rows_in<E>(
    data: &[u8],
    unescaped: &mut Vec<u8>,
    spans: &mut Vec<Span>,
    on_row: &mut impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
) -> Result<usize, E> {
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &data[pos..]) {
        let line = &data[pos..pos + nl];
        unescaped.clear();
        spans.clear();
        // One scan for separators and escapes together (a tab inside a value is always
        // written `\t`, so every raw tab separates).
        let mut start = 0;
        let mut escaped = false;
        let mut field = |start: usize, end: usize, escaped: bool| {
            let f = &line[start..end];
            spans.push(if !escaped {
                Span::Raw(start, end)
            } else if f == b"\\N" {
                Span::Null
            } else {
                let from = unescaped.len();
                unescape_into(f, unescaped);
                Span::Unescaped(from, unescaped.len())
            });
        };
        for at in memchr::memchr2_iter(b'\t', b'\\', line) {
            if line[at] == b'\\' {
                escaped = true;
            } else {
                field(start, at, escaped);
                start = at + 1;
                escaped = false;
            }
        }
        field(start, line.len(), escaped);
        let values: Vec<Option<&[u8]>> = spans
            .iter()
            .map(|s| match *s {
                Span::Null => None,
                Span::Raw(a, b) => Some(&line[a..b]),
                Span::Unescaped(a, b) => Some(&unescaped[a..b]),
            })
            .collect();
        on_row(&values)?;
        pos += nl + 1;
    }
    Ok(pos)
}

/// Append `field` with COPY's escapes undone.
fn unescape_into(field: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < field.len() {
        let Some(at) = memchr::memchr(b'\\', &field[i..]) else {
            out.extend_from_slice(&field[i..]);
            return;
        };
        out.extend_from_slice(&field[i..i + at]);
        i += at;
        if i + 1 == field.len() {
            out.push(b'\\');
            return;
        }
        let e = field[i + 1];
        i += 2;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                let mut n = 1;
                while n < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    v = v * 8 + (field[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One field as the reader takes it: None for `\N`, else its bytes unescaped.
    fn unescape(field: &[u8]) -> Option<Vec<u8>> {
        if field == b"\\N" {
            return None;
        }
        let mut out = Vec::with_capacity(field.len());
        unescape_into(field, &mut out);
        Some(out)
    }

    #[test]
    fn rows_fields_nulls_and_escapes() {
        let data = b"1\tab\\tc\t\\N\n2\t\\\\N\tx\\ny\r\n3\tpart";
        let mut r = Reader::new();
        let mut got: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
        r.feed(data, |row| {
            got.push(row.iter().map(|v| v.map(<[u8]>::to_vec)).collect());
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(r.incomplete(), b"3\tpart".len());
        let s = |v: &str| Some(v.as_bytes().to_vec());
        assert_eq!(
            got,
            vec![
                vec![s("1"), s("ab\tc"), None],
                vec![s("2"), s("\\N"), s("x\ny\r")],
            ]
        );
        assert_eq!(unescape(b""), Some(Vec::new()));
        assert_eq!(unescape(b"\\101\\x"), Some(b"Ax".to_vec()));
        assert_eq!(unescape(b"a\\"), Some(b"a\\".to_vec()));
        assert_eq!(unescape(b"\\N"), None);
    }

    /// The same stream cut at every byte gives the same rows as in one piece.
    #[test]
    fn a_row_split_anywhere_reads_the_same() {
        let data: &[u8] = b"1\ta\\\\b\t\\N\n22\t\\t\\n\t\\101x\n\t\t\n";
        let read = |cuts: &[usize]| {
            let mut r = Reader::new();
            let mut got: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
            let mut from = 0;
            for &to in cuts.iter().chain(std::iter::once(&data.len())) {
                r.feed(&data[from..to], |row| {
                    got.push(row.iter().map(|v| v.map(<[u8]>::to_vec)).collect());
                    Ok::<_, ()>(())
                })
                .unwrap();
                from = to;
            }
            assert_eq!(r.incomplete(), 0);
            got
        };
        let whole = read(&[]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[1][1], Some(b"\t\n".to_vec()));
        assert_eq!(whole[2], vec![Some(vec![]), Some(vec![]), Some(vec![])]);
        for a in 0..=data.len() {
            for b in a..=data.len() {
                assert_eq!(read(&[a, b]), whole, "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn the_first_error_stops_the_rows() {
        let mut r = Reader::new();
        let mut seen = 0;
        let e = r.feed(b"1\n2\n3\n", |_| {
            seen += 1;
            if seen == 2 { Err("stop") } else { Ok(()) }
        });
        assert_eq!((e, seen), (Err("stop"), 2));
    }
}
