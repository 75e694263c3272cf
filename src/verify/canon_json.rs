//! PURE: `jsonb`'s meaning as bytes, for verify --deep: objects with their keys sorted
//! (the last of duplicate keys kept, as `jsonb` does), numbers by value, strings decoded
//! and written with only `"` and `\\` escaped. Written straight out as it is parsed: an
//! array's items and a scalar go to the output as they are read, and only an object's
//! members are held (already in their canonical bytes) to be sorted, so a large document
//! costs about twice its size, not a tree of nodes.

use super::canon::decimal;

/// JSON by meaning; None when it is not JSON.
pub fn canonical_json(v: &[u8]) -> Option<Vec<u8>> {
    let mut p = Parser { s: v, i: 0 };
    let mut out = Vec::with_capacity(v.len());
    p.value(&mut out, 0)?;
    p.ws();
    if p.i != v.len() {
        return None;
    }
    Some(out)
}

/// Deeper than this is compared as written, not by meaning (a difference unless written
/// alike): the parser recurses, and its stack is a worker thread's. PostgreSQL takes
/// deeper documents (12,000 levels were seen).
const MAX_DEPTH: usize = 10_000;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Parse one value and write its canonical form to `out`.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                // (key, the member's canonical bytes), in the order written.
                let mut members: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return None;
                        }
                        self.i += 1;
                        let mut v = Vec::new();
                        self.value(&mut v, depth + 1)?;
                        members.push((key, v));
                        self.ws();
                        match *self.s.get(self.i)? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                // Sorted by key; of equal keys the last written is kept (a stable sort
                // keeps them in order).
                members.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'{');
                let mut first = true;
                for k in 0..members.len() {
                    if members
                        .get(k + 1)
                        .is_some_and(|next| next.0 == members[k].0)
                    {
                        continue;
                    }
                    if !std::mem::replace(&mut first, false) {
                        out.push(b',');
                    }
                    write_string(&members[k].0, out);
                    out.push(b':');
                    out.extend_from_slice(&members[k].1);
                }
                out.push(b'}');
            }
            b'[' => {
                self.i += 1;
                out.push(b'[');
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    let mut first = true;
                    loop {
                        if !std::mem::replace(&mut first, false) {
                            out.push(b',');
                        }
                        self.value(out, depth + 1)?;
                        self.ws();
                        match *self.s.get(self.i)? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                out.push(b']');
            }
            // Decoded straight into the output, escaped after (a copy only when it
            // holds a quote or a backslash).
            b'"' => {
                out.push(b'"');
                let start = out.len();
                self.string_into(out)?;
                if memchr::memchr2(b'"', b'\\', &out[start..]).is_some() {
                    let tail = out.split_off(start);
                    out.pop();
                    write_string(&tail, out);
                } else {
                    out.push(b'"');
                }
            }
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                out.extend_from_slice(b"true");
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                out.extend_from_slice(b"false");
            }
            b'n' if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                out.extend_from_slice(b"null");
            }
            _ => {
                let start = self.i;
                while matches!(
                    self.s.get(self.i),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.i += 1;
                }
                let n = &self.s[start..self.i];
                if n.is_empty() {
                    return None;
                }
                out.extend_from_slice(&number_by_value(n));
            }
        }
        Some(())
    }

    /// A string's decoded bytes.
    fn string(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.string_into(&mut out)?;
        Some(out)
    }

    /// A string's decoded bytes, appended to `out`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        loop {
            // Up to the next quote or escape, copied whole.
            let rest = &self.s[self.i..];
            let k = memchr::memchr2(b'"', b'\\', rest)?;
            out.extend_from_slice(&rest[..k]);
            self.i += k;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                _ => {
                    let c = *self.s.get(self.i + 1)?;
                    self.i += 2;
                    match c {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let mut cp = u32::from_str_radix(hex, 16).ok()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let lo = std::str::from_utf8(self.s.get(self.i + 2..self.i + 6)?)
                                    .ok()?;
                                let lo = u32::from_str_radix(lo, 16).ok()?;
                                self.i += 6;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
            }
        }
    }
}

/// A decoded string, quoted, with `"` and `\\` escaped.
fn write_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut from = 0;
    for k in memchr::memchr2_iter(b'"', b'\\', s) {
        out.extend_from_slice(&s[from..k]);
        out.push(b'\\');
        out.push(s[k]);
        from = k + 1;
    }
    out.extend_from_slice(&s[from..]);
    out.push(b'"');
}

/// A JSON number by value, as `jsonb` keeps it (an exact numeric): its decimal form, an
/// exponent written out exactly (`1e20` is `100000000000000000000`, `1.00000000000000001e0`
/// stays `1.00000000000000001`). An exponent past what a numeric holds is compared as
/// written (PostgreSQL refuses such a number).
fn number_by_value(n: &[u8]) -> Vec<u8> {
    match n.iter().position(|b| matches!(b, b'e' | b'E')) {
        None => decimal(n),
        Some(at) => match expand_exponent(&n[..at], &n[at + 1..]) {
            Some(plain) => decimal(&plain),
            None => n.to_vec(),
        },
    }
}

/// The largest exponent written out: numeric holds 131072 digits before the point and
/// 16383 after it.
const MAX_EXPONENT: i64 = 140_000;

/// `mantissa` × 10^`exponent` as plain decimal digits, exactly; None when either is not
/// a number or the exponent is past [`MAX_EXPONENT`].
fn expand_exponent(mantissa: &[u8], exponent: &[u8]) -> Option<Vec<u8>> {
    let e: i64 = std::str::from_utf8(exponent).ok()?.parse().ok()?;
    if e.abs() > MAX_EXPONENT {
        return None;
    }
    let (sign, m) = match mantissa.first() {
        Some(b'-') => (&b"-"[..], &mantissa[1..]),
        Some(b'+') => (&b""[..], &mantissa[1..]),
        _ => (&b""[..], mantissa),
    };
    let (int, frac) = match m.iter().position(|&b| b == b'.') {
        Some(p) => (&m[..p], &m[p + 1..]),
        None => (m, &b""[..]),
    };
    if int.is_empty() && frac.is_empty() || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let digits = [int, frac].concat();
    // Where the point falls in `digits` once the exponent moves it.
    let point = int.len() as i64 + e;
    let mut out = sign.to_vec();
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-point) as usize, b'0');
        out.extend_from_slice(&digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(&digits);
        out.resize(out.len() + point as usize - digits.len(), b'0');
    } else {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The oracle: serde_json's own parser (duplicate keys: the last kept, as jsonb
    /// does), then the same canonical writing — keys in byte order, numbers by value.
    fn by_serde(doc: &[u8]) -> Option<Vec<u8>> {
        fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
            use serde_json::Value;
            match v {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
                    // The generator's non-integers are exact doubles.
                    Some(f) => out.extend_from_slice(&decimal(f.to_string().as_bytes())),
                    None => out.extend_from_slice(&decimal(n.to_string().as_bytes())),
                },
                Value::String(s) => write_string(s.as_bytes(), out),
                Value::Array(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write(item, out);
                    }
                    out.push(b']');
                }
                Value::Object(map) => {
                    let mut members: Vec<_> = map.iter().collect();
                    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    out.push(b'{');
                    for (i, (k, item)) in members.into_iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_string(k.as_bytes(), out);
                        out.push(b':');
                        write(item, out);
                    }
                    out.push(b'}');
                }
            }
        }
        let v: serde_json::Value = serde_json::from_slice(doc).ok()?;
        let mut out = Vec::new();
        write(&v, &mut out);
        Some(out)
    }

    #[test]
    fn documents_read_by_meaning() {
        for (a, b) in [
            (
                r#"{"b": 1, "a": [1, 2.50, "x\"y"]}"#,
                r#"{"a":[1,2.5,"x\"y"],"b":1}"#,
            ),
            (r#"{"a": 1, "a": 2}"#, r#"{"a":2}"#),
            (
                r#"{"k": {"z": null, "y": true}}"#,
                r#"{"k":{"y":true,"z":null}}"#,
            ),
            (r#"["\u00e9\ud83d\ude00", 1e2, -0.0]"#, "[\"é😀\",100,0]"),
            (r#"  [ ]  "#, "[]"),
            // Exponents written out exactly, as jsonb's numeric keeps them.
            (
                "[1e20, 1E-7, 1.00000000000000001e0, -2.5e+3, 0e5, 1.23456789012345678e0]",
                "[100000000000000000000,0.0000001,1.00000000000000001,-2500,0,1.23456789012345678]",
            ),
            ("[1e140001]", "[1e140001]"),
            (r#"{}"#, "{}"),
        ] {
            assert_eq!(
                String::from_utf8(canonical_json(a.as_bytes()).unwrap()).unwrap(),
                b,
                "{a}"
            );
        }
        for bad in [&b"{"[..], b"[1,", b"{\"a\" 1}", b"[1] x", b"\"open", b""] {
            assert_eq!(canonical_json(bad), None, "{bad:?}");
        }
    }

    fn json() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            (any::<i16>(), 0u8..4).prop_map(|(n, e)| format!("{n}.50e{e}")),
            "[a-c\"\\\\é]{0,4}".prop_map(|s| format!("{s:?}")),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(("[a-c]{0,2}", inner), 0..5).prop_map(|v| {
                    let m: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                    format!("{{{}}}", m.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_writer_reads_as_serde_json_does(doc in json()) {
            prop_assert_eq!(canonical_json(doc.as_bytes()), by_serde(doc.as_bytes()));
        }
    }
}
