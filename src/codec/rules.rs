//! PURE: one small named function per MySQL quirk, each with the reason it exists.

use base64::Engine;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// binary/blob -> `\x` + lowercase hex: PostgreSQL's `bytea` hex input format.
pub fn blob_to_hex(v: &[u8], out: &mut Vec<u8>) {
    out.reserve(2 + v.len() * 2);
    out.extend_from_slice(b"\\x");
    hex_digits(v, out);
}

/// The hex digits of `v` (no prefix), lower case, as a new buffer.
pub fn hex(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    hex_digits(v, &mut out);
    out
}

/// The hex digits of `v` (no prefix): a long value is written piece by piece.
pub fn hex_digits(v: &[u8], out: &mut Vec<u8>) {
    out.reserve(v.len() * 2);
    for b in v {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// The bytes of a `\x` hex field (the inverse of `blob_to_hex`); None if it is not one.
pub fn from_bytea_hex(v: &[u8]) -> Option<Vec<u8>> {
    let hex = v.strip_prefix(b"\\x")?;
    hex::decode(hex).ok()
}

/// Bytes in a text column (zlib whiteboards) -> base64: text-safe and reversible.
pub fn bytes_to_base64(v: &[u8], out: &mut Vec<u8>) {
    let s = base64::engine::general_purpose::STANDARD.encode(v);
    out.extend_from_slice(s.as_bytes());
}

/// `bit(n)` arrives over the text protocol as raw big-endian bytes: write n binary digits
/// (`bit(1)` -> `0`/`1`), which PostgreSQL `bit(n)`, `varbit` and (for n=1) `boolean` read.
pub fn bits_to_digits(v: &[u8], n: u32, out: &mut Vec<u8>) {
    let total = v.len() as u32 * 8;
    for i in (0..n).rev() {
        let bit = if i < total {
            let byte = v[v.len() - 1 - (i / 8) as usize];
            (byte >> (i % 8)) & 1
        } else {
            0
        };
        out.push(b'0' + bit);
    }
}

/// The width of `bit(n)` from COLUMN_TYPE (`bit(10)` -> 10; MySQL's default is 1).
pub fn bit_width(column_type: &str) -> u32 {
    column_type
        .trim_start_matches("bit")
        .trim_matches(|c| c == '(' || c == ')')
        .parse()
        .unwrap_or(1)
}

/// `Infinity` or `-Infinity` as PostgreSQL writes a float's or a numeric's (`inf`
/// read too): no digits to count, and no `numeric(p, s)` holds it.
pub fn is_infinite(v: &[u8]) -> bool {
    let v = v
        .strip_prefix(b"-")
        .or_else(|| v.strip_prefix(b"+"))
        .unwrap_or(v);
    v.eq_ignore_ascii_case(b"infinity") || v.eq_ignore_ascii_case(b"inf")
}

/// MySQL zero and partial-zero dates (`0000-00-00`, `2020-00-15`): PostgreSQL rejects
/// them, so they become NULL.
pub fn is_zero_date(v: &[u8]) -> bool {
    if v.len() < 10 || v[4] != b'-' || v[7] != b'-' {
        return false;
    }
    &v[0..4] == b"0000" || &v[5..7] == b"00" || &v[8..10] == b"00"
}

/// MariaDB's YEAR(2) prints (even as a number) two digits that stand for 1970-2069:
/// `70`-`99` are 19xx, `00`-`69` 20xx. Written as the four-digit year they mean.
pub fn two_digit_year(v: &[u8], out: &mut Vec<u8>) {
    match v {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => {
            let yy = u32::from(a - b'0') * 10 + u32::from(b - b'0');
            let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
            out.extend_from_slice(year.to_string().as_bytes());
        }
        other => out.extend_from_slice(other),
    }
}

/// Is the time part of a MySQL datetime (`YYYY-MM-DD HH:MM:SS[.ffffff]`) midnight?
/// A date alone is.
pub fn is_midnight(v: &[u8]) -> bool {
    v.get(10..)
        .is_none_or(|t| t.iter().all(|b| matches!(b, b' ' | b'0' | b':' | b'.')))
}

/// Is a MySQL TIME (`[-]H+:MM:SS[.f]`, up to 838 hours either way) within one day,
/// 00:00:00 to 23:59:59.999999, as PostgreSQL's `time` requires?
pub fn within_a_day(v: &[u8]) -> bool {
    let hours = v.split(|&b| b == b':').next().unwrap_or_default();
    !hours.starts_with(b"-")
        && hours.len() <= 2
        && std::str::from_utf8(hours)
            .ok()
            .and_then(|h| h.parse::<u32>().ok())
            .is_some_and(|h| h < 24)
}

/// The labels of an ENUM or SET from its `COLUMN_TYPE` (`enum('a','it''s')`), in order.
pub fn enum_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let body = column_type[open + 1..].trim_end_matches(')');
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    label.push('\'');
                    chars.next();
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

/// 8-4-4-4-12 hex digits, the form PostgreSQL `uuid` accepts from MySQL's char(36).
pub fn is_uuid(v: &[u8]) -> bool {
    // Every char(36) value of every row passes here: all 36 bytes are checked without an
    // early exit, so the compiler checks them many at a time.
    const DASH: [bool; 36] = {
        let mut d = [false; 36];
        (d[8], d[13], d[18], d[23]) = (true, true, true, true);
        d
    };
    let Ok(v) = <&[u8; 36]>::try_from(v) else {
        return false;
    };
    v.iter().zip(DASH).fold(true, |ok, (&b, dash)| {
        let hex = b.is_ascii_digit() | matches!(b | 0x20, b'a'..=b'f');
        ok & ((dash & (b == b'-')) | (!dash & hex))
    })
}

/// Does JSON text contain the escape `\u0000` (jsonb rejects it)? Escaped backslashes
/// (`\\u0000`) are text, not an escape.
pub fn json_has_nul_escape(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' {
            if v[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Remove every `\u0000` escape (the `--on-invalid fix` repair).
pub fn drop_json_nul_escapes(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' {
            if v[i + 1..].starts_with(b"u0000") {
                i += 6;
                continue;
            }
            out.extend_from_slice(&v[i..(i + 2).min(v.len())]);
            i += 2;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn infinity_is_read_in_each_spelling() {
        for (v, want) in [
            ("Infinity", true),
            ("-Infinity", true),
            ("+inf", true),
            ("INF", true),
            ("NaN", false),
            ("1e308", false),
            ("Infinityx", false),
            ("", false),
        ] {
            assert_eq!(is_infinite(v.as_bytes()), want, "{v}");
        }
    }

    use super::*;

    #[test]
    fn bits() {
        let cases: &[(&[u8], u32, &str)] = &[
            (&[0], 1, "0"),
            (&[1], 1, "1"),
            (&[0x03, 0xff], 10, "1111111111"),
            (&[0x01, 0x00], 10, "0100000000"),
            (&[0xff; 8], 64, &"1".repeat(64)),
            (&[5], 3, "101"),
        ];
        for (v, n, want) in cases {
            let mut out = Vec::new();
            bits_to_digits(v, *n, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
        assert_eq!(bit_width("bit(10)"), 10);
        assert_eq!(bit_width("bit"), 1);
    }

    #[test]
    fn two_digit_years() {
        for (v, want) in [
            ("24", "2024"),
            ("69", "2069"),
            ("70", "1970"),
            ("99", "1999"),
            ("00", "2000"),
            ("2024", "2024"),
        ] {
            let mut out = Vec::new();
            two_digit_year(v.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn midnight_day_and_labels() {
        for (v, want) in [
            ("2024-01-02", true),
            ("2024-01-02 00:00:00", true),
            ("2024-01-02 00:00:00.000000", true),
            ("2024-01-02 00:00:00.000001", false),
            ("2024-01-02 13:00:00", false),
        ] {
            assert_eq!(is_midnight(v.as_bytes()), want, "{v}");
        }
        for (v, want) in [
            ("00:00:00", true),
            ("23:59:59.999999", true),
            ("24:00:00", false),
            ("-00:00:01", false),
            ("838:59:59", false),
        ] {
            assert_eq!(within_a_day(v.as_bytes()), want, "{v}");
        }
        assert_eq!(enum_labels("enum('a','b')"), ["a", "b"]);
        assert_eq!(
            enum_labels("set('x','it''s','c,d?')"),
            ["x", "it's", "c,d?"]
        );
        assert_eq!(enum_labels("enum('')"), [""]);
        assert!(enum_labels("int(11)").is_empty());
    }

    #[test]
    fn zero_dates() {
        for (v, want) in [
            ("0000-00-00", true),
            ("0000-00-00 00:00:00", true),
            ("2020-00-15", true),
            ("2020-01-00 10:00:00", true),
            ("2020-01-01", false),
            ("1000-01-01 00:00:00.000000", false),
            // pgloader #1098: real dates of the first millennium are not zero dates.
            ("0009-12-04", false),
            ("0001-01-01 00:00:00", false),
            ("0100-10-10", false),
            ("", false),
        ] {
            assert_eq!(is_zero_date(v.as_bytes()), want, "{v}");
        }
    }

    #[test]
    fn uuids() {
        for (v, want) in [
            ("6f9619ff-8b86-d011-b42d-00cf4fc964ff", true),
            ("6F9619FF-8B86-D011-B42D-00CF4FC964FF", true),
            ("6f9619ff8b86d011b42d00cf4fc964ff", false),
            ("6f9619ff-8b86-d011-b42d-00cf4fc964fg", false),
            ("", false),
        ] {
            assert_eq!(is_uuid(v.as_bytes()), want, "{v}");
        }
    }

    proptest::proptest! {
        /// The same answer as the rule spelled byte by byte, on UUID-shaped and any bytes.
        #[test]
        fn uuid_check_is_the_plain_rule(
            shaped in "[0-9a-fA-F-]{36}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            any in proptest::collection::vec(proptest::prelude::any::<u8>(), 34..38),
        ) {
            let plain = |v: &[u8]| {
                v.len() == 36
                    && v.iter().enumerate().all(|(i, b)| match i {
                        8 | 13 | 18 | 23 => *b == b'-',
                        _ => b.is_ascii_hexdigit(),
                    })
            };
            for v in [shaped.as_bytes(), &any[..]] {
                proptest::prop_assert_eq!(is_uuid(v), plain(v));
            }
        }
    }

    #[test]
    fn json_nul() {
        assert!(json_has_nul_escape(br#""\u0000""#));
        assert!(!json_has_nul_escape(br#""\\u0000""#));
        assert!(json_has_nul_escape(br#""\\\u0000""#));
        assert!(!json_has_nul_escape(br#""\u00001""#[..3].as_ref()));
        assert!(!json_has_nul_escape(b"\\"));
        assert_eq!(
            drop_json_nul_escapes(br#"["a\u0000b","\\u0000"]"#),
            br#"["ab","\\u0000"]"#
        );
    }
}

/// How many fraction digits a decimal or temporal value's text really uses: the digits
/// after its first `.`, up to the first non-digit (a time zone), trailing zeros not
/// counted (`12.340` 2, `2024-01-02 03:04:05.120000+00` 2, `7` 0).
pub fn fraction_digits(v: &[u8]) -> usize {
    let Some(dot) = v.iter().position(|&b| b == b'.') else {
        return 0;
    };
    let digits = &v[dot + 1..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end]
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |i| i + 1)
}

/// How many fraction digits a decimal's or float's text uses, an exponent counted
/// (`12.340` 2, `1.5e-5` 6, `1.2345000505447388` 16, `1.5e20` 0, `0.0000001` 7): what a
/// `numeric(p, s)` rounds.
pub fn number_fraction_digits(v: &[u8]) -> usize {
    let (mantissa, exponent) = split_exponent(v);
    (fraction_digits(mantissa) as i64 - exponent).max(0) as usize
}

/// A number's text split at its exponent: `1.5e-5` is (`1.5`, -5); without one, 0.
fn split_exponent(v: &[u8]) -> (&[u8], i64) {
    match v.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (
            &v[..i],
            std::str::from_utf8(&v[i + 1..])
                .ok()
                .and_then(|e| e.parse::<i64>().ok())
                .unwrap_or(0),
        ),
        None => (v, 0),
    }
}

/// Digits before the point of a decimal's or a float's text, an exponent counted
/// (`-0012.5` 2, `0.5` 0, `1.5e20` 21, `123.4e-1` 2): what a `numeric(p, s)` must hold in
/// its `p - s`. Text that is no number (`NaN`, `inf`) has none: left to PostgreSQL.
pub fn integer_digits(v: &[u8]) -> usize {
    let v = v
        .strip_prefix(b"-")
        .or_else(|| v.strip_prefix(b"+"))
        .unwrap_or(v);
    let (mantissa, exponent) = split_exponent(v);
    let whole = mantissa
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(mantissa.len());
    let fraction = match mantissa.get(whole) {
        Some(b'.') => &mantissa[whole + 1..],
        _ => &[][..],
    };
    // The first significant digit's place among all of them, and where the point falls.
    let Some(first) = mantissa[..whole]
        .iter()
        .chain(fraction.iter().take_while(|b| b.is_ascii_digit()))
        .position(|&b| b != b'0')
    else {
        return 0;
    };
    (whole as i64 + exponent - first as i64).max(0) as usize
}

/// Characters of a UTF-8 value (bytes that do not continue a character).
pub fn chars(v: &[u8]) -> usize {
    v.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

#[cfg(test)]
mod fraction_tests {
    #[test]
    fn integer_digits_and_characters_are_counted_as_postgresql_limits_them() {
        for (v, want) in [
            ("7", 1),
            ("0.5", 0),
            ("-0012.5", 2),
            ("12345678.90", 8),
            ("-99999", 5),
            ("0", 0),
            ("", 0),
            ("1.5e20", 21),
            ("1.2345E+3", 4),
            ("123.4e-1", 2),
            ("0.05e3", 2),
            ("-9.99e-1", 0),
            ("1e-5", 0),
            ("0e10", 0),
            ("7e0", 1),
            ("NaN", 0),
            ("-Infinity", 0),
        ] {
            assert_eq!(super::integer_digits(v.as_bytes()), want, "{v}");
        }
        for (v, want) in [
            ("1.5e-5", 6),
            ("1.2345000505447388", 16),
            ("1.5e20", 0),
            ("1.25e1", 1),
            ("0.0000001", 7),
            ("-2.5E-3", 4),
            ("7", 0),
            ("NaN", 0),
        ] {
            assert_eq!(super::number_fraction_digits(v.as_bytes()), want, "{v}");
            // A decimal's text (no exponent) reads as the plain rule reads it.
            if !v.contains(['e', 'E']) {
                assert_eq!(super::fraction_digits(v.as_bytes()), want, "{v}");
            }
        }
        for (v, want) in [("", 0), ("abc", 3), ("é", 1), ("日本語", 3), ("a😀b", 3)] {
            assert_eq!(super::chars(v.as_bytes()), want, "{v}");
            assert_eq!(super::chars(v.as_bytes()), v.chars().count(), "{v}");
        }
    }

    #[test]
    fn fraction_digits_count_what_a_smaller_precision_would_round() {
        for (v, want) in [
            ("7", 0),
            ("12.340", 2),
            ("-0.5", 1),
            ("2024-01-02 03:04:05", 0),
            ("2024-01-02 03:04:05.000000", 0),
            ("2024-01-02 03:04:05.120000+00", 2),
            ("2024-01-02 03:04:05.000001", 6),
            ("838:59:59.5", 1),
            ("1.2345678901234567890123456789", 28),
        ] {
            assert_eq!(super::fraction_digits(v.as_bytes()), want, "{v}");
        }
    }
}
