//! PURE: the CSV dialect of DESIGN.md. UTF-8, comma, `"` quoting with doubled quotes,
//! `\n` line ends, NULL as the unquoted marker `\N`; a real string `\N` (and `\.`, which
//! PostgreSQL could take for end-of-data) is quoted, and so is the empty string, so that
//! NULL and `''` both survive. A reader that keeps quotedness, for tests and headers.

/// The unquoted NULL marker.
pub const NULL: &[u8] = b"\\N";

pub fn write_null(out: &mut Vec<u8>) {
    out.extend_from_slice(NULL);
}

/// Write a non-NULL value, quoting only when needed.
pub fn write_text(v: &[u8], out: &mut Vec<u8>) {
    let needs_quotes = v.is_empty()
        || v == NULL
        || v == b"\\."
        || v.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        out.extend_from_slice(v);
        return;
    }
    out.reserve(v.len() + 2);
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
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

/// One parsed field: None is NULL under the given marker rule.
pub type Field = Option<Vec<u8>>;

/// How NULL is spelled in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullStyle {
    /// pgconverge: unquoted `\N`.
    Marker,
    /// The old shell scripts: an unquoted empty field (`""` is the empty string).
    EmptyUnquoted,
}

/// Parse one record starting at `pos`; returns the fields and the position after its
/// line end, or None at end of input. Errors on an unterminated quote.
pub fn read_record(
    data: &[u8],
    mut pos: usize,
    nulls: NullStyle,
) -> Result<Option<(Vec<Field>, usize)>, String> {
    if pos >= data.len() {
        return Ok(None);
    }
    let mut fields = Vec::new();
    loop {
        let mut value = Vec::new();
        let quoted = data.get(pos) == Some(&b'"');
        if quoted {
            pos += 1;
            loop {
                match data.get(pos) {
                    None => return Err(format!("unterminated quoted field at byte {pos}")),
                    Some(b'"') if data.get(pos + 1) == Some(&b'"') => {
                        value.push(b'"');
                        pos += 2;
                    }
                    Some(b'"') => {
                        pos += 1;
                        break;
                    }
                    Some(&b) => {
                        value.push(b);
                        pos += 1;
                    }
                }
            }
        } else {
            while let Some(&b) = data.get(pos) {
                if b == b',' || b == b'\n' {
                    break;
                }
                value.push(b);
                pos += 1;
            }
        }
        let is_null = !quoted
            && match nulls {
                NullStyle::Marker => value == NULL,
                NullStyle::EmptyUnquoted => value.is_empty(),
            };
        fields.push(if is_null { None } else { Some(value) });
        match data.get(pos) {
            Some(b',') => pos += 1,
            Some(b'\n') => return Ok(Some((fields, pos + 1))),
            None => return Ok(Some((fields, pos))),
            Some(&b) => return Err(format!("unexpected byte {b:#04x} after a field at {pos}")),
        }
    }
}

/// Parse a whole buffer into records (tests and small files only).
pub fn read_all(data: &[u8], nulls: NullStyle) -> Result<Vec<Vec<Field>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((rec, next)) = read_record(data, pos, nulls)? {
        out.push(rec);
        pos = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_row(row: &[Field]) -> Vec<u8> {
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

    proptest! {
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
