//! PURE: PostgreSQL's COPY text format as `COPY ... TO STDOUT` writes it: one row per
//! line, fields separated by tabs, NULL as `\N`, and `\\`, `\t`, `\n`, `\r`, `\b`, `\f`,
//! `\v` escapes. `verify --deep` reads the target this way, streamed in chunks.

/// Split the complete rows at the start of `data` into fields, calling `on_row` for each;
/// returns how many bytes were used (the rest, a partial row, is offered again with more
/// data). Memory: one row's fields.
pub fn rows(
    data: &[u8],
    fields: &mut Vec<Option<Vec<u8>>>,
    mut on_row: impl FnMut(&[Option<Vec<u8>>]),
) -> usize {
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &data[pos..]) {
        let line = &data[pos..pos + nl];
        fields.clear();
        for field in line.split(|b| *b == b'\t') {
            fields.push(unescape(field));
        }
        on_row(fields);
        pos += nl + 1;
    }
    pos
}

/// One field: None for `\N`, else its bytes with the escapes undone.
pub fn unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    if memchr::memchr(b'\\', field).is_none() {
        return Some(field.to_vec());
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let c = field[i];
        if c != b'\\' || i + 1 == field.len() {
            out.push(c);
            i += 1;
            continue;
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
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fields_nulls_and_escapes() {
        let data = b"1\tab\\tc\t\\N\n2\t\\\\N\tx\\ny\r\n3\tpart";
        let mut fields = Vec::new();
        let mut got = Vec::new();
        let used = rows(data, &mut fields, |r| got.push(r.to_vec()));
        assert_eq!(used, data.len() - b"3\tpart".len());
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
    }
}
