//! PURE: the one form each value takes before `verify --deep` compares it, whichever
//! side it comes from — PostgreSQL's text output, the export's CSV text, or a live MySQL
//! value read through the binary protocol (never through the export's encoder, so that
//! a bug there cannot hide itself). The rules are docs/commands.md's "verify --deep" table:
//! timestamps exactly at the target column's precision, numerics by value, floats by
//! their exact binary value, booleans and MySQL's truth, UUIDs case-folded, bytes as
//! bytes, `json` byte-exact, `jsonb` by meaning, `char(n)` without trailing blanks, and
//! the export's own rules (zero dates and `char(36)` `''` as NULL) and the import's
//! adaptations applied to the source side.

use std::borrow::Cow;

use crate::codec::geometry::{self, Form};
pub use crate::db::catalog::Typed;

/// How one compared column's values are put in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A decimal integer.
    Int,
    /// A decimal number by value (`1.50` = `1.5`), or NaN / ±Infinity.
    Decimal,
    /// A decimal by value once rounded to the target column's scale (half away from
    /// zero, as PostgreSQL's numeric input rounds): what a `numeric(p, s)` holds.
    DecimalAt {
        scale: u8,
    },
    /// `money`: read from the target as `numeric` (its text form follows the server's
    /// `lc_monetary`: `$1,234.56`), then by value as [`Kind::Decimal`].
    Money,
    /// The exact bits of a single- or double-precision float.
    F32,
    F64,
    Bool,
    /// Text; `trim`: trailing blanks do not count (`char(n)`: MySQL strips, PostgreSQL pads).
    Text {
        trim: bool,
    },
    /// A UUID, case-folded.
    Uuid,
    /// Bytes (PostgreSQL `bytea`, MySQL blobs and binary strings), compared as their
    /// hex digits in lower case.
    Bytes,
    /// A text column holding base64 of the source's stored bytes (a mapping's `encode`).
    Base64,
    Date,
    /// A timestamp to this many fraction digits (the target column's: exact, since the
    /// import refuses a source value it would round unless the mapping accepted it).
    Timestamp {
        digits: u8,
    },
    /// A time of day, or an interval, as signed microseconds, to this many digits.
    Duration {
        digits: u8,
    },
    /// `json`: the text, byte for byte.
    Json,
    /// `jsonb`: by meaning (keys unordered, the last of duplicate keys, numbers by value).
    Jsonb,
    /// An array (a MySQL SET into `text[]`): its elements.
    Array,
    /// Binary digits (`bit(n)`).
    Bits {
        width: usize,
    },
    /// A spatial value in a PostgreSQL geometric type: its coordinates, in order.
    Geometry(Form),
    /// PostGIS: EWKB, compared as bytes.
    Ewkb,
    /// Anything else: the text as it is.
    AsText,
}

/// What the export or the import did to a source value before it reached the target,
/// applied to the source side so that both mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Before {
    /// The export's `--on-invalid fix` changed values of this column: a live source
    /// value is compared as the fix made it (`Some(true)`: a JSON column).
    pub fixed: Option<bool>,
    /// `char(36)` `''` -> NULL (the export's rule), and `''` -> NULL for uuid targets.
    pub empty_to_null: bool,
    /// Zero and partial-zero dates -> NULL (the export's rule).
    pub zero_date_to_null: bool,
    /// MySQL SET `a,b` -> array elements.
    pub set_to_array: bool,
    /// MySQL's truth -> boolean.
    pub int_to_bool: bool,
    /// The date part of a datetime.
    pub date_part: bool,
    /// MariaDB YEAR(2): two digits stand for 1970–2069.
    pub year2: bool,
    /// A geometry (stored SRID + WKB) into this target form.
    pub geometry: Option<Form>,
    /// The source's stored bytes, base64-encoded (a mapping's `encode`).
    pub base64: bool,
    /// A `bit(n)` source: its stored bytes stand for n binary digits (0: not one).
    pub bit_width: usize,
    /// 16 bytes read as a UUID in this byte order (`binary(16)` into `uuid`).
    pub uuid_bytes: Option<crate::codec::adapt::UuidOrder>,
}

/// A value from either text source (PostgreSQL's output, or the export's CSV).
pub fn text(kind: Kind, v: Option<&[u8]>) -> Option<Vec<u8>> {
    text_cow(kind, v).map(Cow::into_owned)
}

/// [`text`], borrowing the value where its canonical form is the value itself (text,
/// JSON, bits): a long value is not copied to be hashed.
pub fn text_cow(kind: Kind, v: Option<&[u8]>) -> Option<Cow<'_, [u8]>> {
    let v = v?;
    let owned = match kind {
        Kind::Text { trim: true } => return Some(Cow::Borrowed(trim_blanks(v))),
        Kind::Text { trim: false }
        | Kind::Json
        | Kind::AsText
        | Kind::Base64
        | Kind::Bits { .. } => return Some(Cow::Borrowed(v)),
        Kind::Int => int_text(v),
        Kind::Decimal | Kind::Money => decimal(v),
        Kind::DecimalAt { scale } => decimal_at(v, scale as usize),
        Kind::F32 => match parse_f64(v) {
            Some(f) => (f as f32).to_bits().to_be_bytes().to_vec(),
            None => raw(v),
        },
        Kind::F64 => match parse_f64(v) {
            Some(f) => f.to_bits().to_be_bytes().to_vec(),
            None => raw(v),
        },
        Kind::Bool => match v {
            b"t" | b"true" | b"1" => b"t".to_vec(),
            b"f" | b"false" | b"0" => b"f".to_vec(),
            other => raw(other),
        },
        Kind::Uuid => v.to_ascii_lowercase(),
        // A long value its reader gave as its digest form (`long_values::Gathered`):
        // compared as it is.
        Kind::Bytes if crate::db::long_values::is_digest(v) => return Some(Cow::Borrowed(v)),
        // Its hex digits, in lower case: `\\x...` as PostgreSQL and the export write
        // it is read where it lies (a long value is not decoded into a copy).
        Kind::Bytes => match v.strip_prefix(b"\\x") {
            // Folded without an early exit, so the compiler checks many bytes at once:
            // the digits are the whole of a long bytea's text.
            Some(h)
                if h.len() % 2 == 0
                    && h.iter()
                        .fold(true, |ok, b| ok & matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                return Some(Cow::Borrowed(h));
            }
            Some(h) if h.len() % 2 == 0 && h.iter().all(u8::is_ascii_hexdigit) => {
                h.to_ascii_lowercase()
            }
            _ => raw(v),
        },
        Kind::Date => date_text(v),
        Kind::Timestamp { digits } => match parse_timestamp(v) {
            Some((date, micros)) => timestamp(&date, micros, digits),
            None => raw(v),
        },
        Kind::Duration { digits } => match parse_duration(v) {
            Some(us) => duration(us, digits),
            None => raw(v),
        },
        Kind::Jsonb => match super::canon_json::canonical_json(v) {
            Some(c) => c,
            None => raw(v),
        },
        Kind::Array => match parse_array(v) {
            Some(items) => array(&items),
            None => raw(v),
        },
        Kind::Geometry(_) => coordinates(v),
        Kind::Ewkb => v.to_ascii_lowercase(),
    };
    Some(Cow::Owned(owned))
}

/// Marks a value that could not be read in its kind's form: compared as it is, so it
/// shows as a difference with both values.
fn raw(v: &[u8]) -> Vec<u8> {
    let mut out = b"\x00raw:".to_vec();
    out.extend_from_slice(v);
    out
}

/// A source value in export text (the CSV), with what the export and import did to it.
pub fn source_text(kind: Kind, before: Before, v: Option<&[u8]>) -> Option<Vec<u8>> {
    source_text_cow(kind, before, v).map(Cow::into_owned)
}

/// [`source_text`], borrowing the value where [`text_cow`] does.
pub fn source_text_cow(kind: Kind, before: Before, v: Option<&[u8]>) -> Option<Cow<'_, [u8]>> {
    let v = v?;
    if before.empty_to_null && v.is_empty() {
        return None;
    }
    if before.zero_date_to_null && crate::codec::rules::is_zero_date(v) {
        return None;
    }
    if before.set_to_array {
        return Some(Cow::Owned(array(&set_elements(v))));
    }
    if before.int_to_bool {
        let zero = v.iter().all(|b| *b == b'0' || *b == b'-' || *b == b'+') && !v.is_empty();
        return Some(Cow::Borrowed(if zero { b"f" } else { b"t" }));
    }
    if before.date_part {
        return Some(Cow::Owned(date_text(v.get(..10).unwrap_or(v))));
    }
    if let Some(form) = before.geometry {
        let bytes = v
            .strip_prefix(b"\\x")
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default();
        return Some(Cow::Owned(geometry_value(form, &bytes)));
    }
    if let Some(order) = before.uuid_bytes {
        return Some(Cow::Owned(uuid_of(
            v.strip_prefix(b"\\x").and_then(|h| hex::decode(h).ok()),
            order,
            v,
        )));
    }
    if before.year2 {
        return text(kind, Some(&year2(v))).map(Cow::Owned);
    }
    text_cow(kind, Some(v))
}

/// [`source_typed`], borrowing the value where its canonical form is the value itself
/// (text, and bytes given as hex): a long value is not copied to be hashed.
pub fn source_typed_cow<'a>(kind: Kind, before: Before, v: Typed<'a>) -> Option<Cow<'a, [u8]>> {
    let plain = !before.base64
        && before.geometry.is_none()
        && before.uuid_bytes.is_none()
        && before.bit_width == 0;
    match v {
        Typed::Digest(d) => Some(Cow::Borrowed(d)),
        Typed::Hex(h) if plain && kind == Kind::Bytes => Some(Cow::Borrowed(h)),
        Typed::Bytes(b) if plain && !matches!(kind, Kind::Bytes | Kind::Bits { .. }) => {
            source_text_cow(kind, before, Some(b))
        }
        _ => source_typed(kind, before, v).map(Cow::Owned),
    }
}

/// A live MySQL value, with what the export and import did to it.
pub fn source_typed(kind: Kind, before: Before, v: Typed<'_>) -> Option<Vec<u8>> {
    match v {
        Typed::Null => None,
        Typed::Digest(d) => Some(d.to_vec()),
        Typed::Hex(h) => {
            let b = hex::decode(h).unwrap_or_default();
            source_typed(kind, before, Typed::Bytes(&b))
        }
        Typed::Bytes(b) => {
            if before.base64 {
                use base64::Engine;
                return Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(b)
                        .into_bytes(),
                );
            }
            if let Some(form) = before.geometry {
                return Some(geometry_value(form, b));
            }
            if let Some(order) = before.uuid_bytes {
                return Some(uuid_of(Some(b.to_vec()), order, b));
            }
            if before.bit_width > 0 {
                return source_text(kind, before, Some(&bits(b, before.bit_width)));
            }
            match kind {
                // The stored bytes, as the text sides' hex digits.
                Kind::Bytes => Some(crate::codec::rules::hex(b)),
                Kind::Bits { width } => Some(bits(b, width)),
                _ => source_text(kind, before, Some(b)),
            }
        }
        Typed::Int(i) => number(kind, before, i.to_string()),
        Typed::UInt(u) => number(kind, before, u.to_string()),
        Typed::F32(f) => match kind {
            Kind::F32 => Some(f.to_bits().to_be_bytes().to_vec()),
            Kind::F64 => Some((f as f64).to_bits().to_be_bytes().to_vec()),
            _ => number(kind, before, format!("{:?}", f as f64)),
        },
        Typed::F64(f) => match kind {
            Kind::F32 => Some((f as f32).to_bits().to_be_bytes().to_vec()),
            Kind::F64 => Some(f.to_bits().to_be_bytes().to_vec()),
            _ => number(kind, before, format!("{f:?}")),
        },
        Typed::Date(y, mo, d, h, mi, s, us) => {
            if y == 0 || mo == 0 || d == 0 {
                // Zero and partial-zero dates: NULL by the export's rule.
                return None;
            }
            let date = date_of(y, mo, d);
            match kind {
                Kind::Date => Some(date.into_bytes()),
                Kind::Timestamp { digits } => {
                    let micros =
                        ((h as i64 * 60 + mi as i64) * 60 + s as i64) * 1_000_000 + us as i64;
                    Some(timestamp(&date, micros, digits))
                }
                _ => Some(format!("{date} {h:02}:{mi:02}:{s:02}.{us:06}").into_bytes()),
            }
        }
        Typed::Time(neg, days, h, mi, s, us) => {
            let micros = (((days as i64 * 24 + h as i64) * 60 + mi as i64) * 60 + s as i64)
                * 1_000_000
                + us as i64;
            let micros = if neg { -micros } else { micros };
            match kind {
                Kind::Duration { digits } => Some(duration(micros, digits)),
                _ => Some(duration(micros, 6)),
            }
        }
    }
}

/// 16 bytes as the UUID the import made of them (lower case, as `Kind::Uuid` compares);
/// anything else raw, so it differs from any UUID.
fn uuid_of(bytes: Option<Vec<u8>>, order: crate::codec::adapt::UuidOrder, v: &[u8]) -> Vec<u8> {
    match bytes.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()) {
        Some(b) => crate::codec::adapt::uuid_text(b, order).into_bytes(),
        None => raw(v),
    }
}

fn number(kind: Kind, before: Before, text: String) -> Option<Vec<u8>> {
    if before.int_to_bool {
        return Some(if text == "0" {
            b"f".to_vec()
        } else {
            b"t".to_vec()
        });
    }
    source_text(kind, before, Some(text.as_bytes()))
}

fn trim_blanks(v: &[u8]) -> &[u8] {
    let end = v.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    &v[..end]
}

fn int_text(v: &[u8]) -> Vec<u8> {
    if is_canonical_int(v) {
        return v.to_vec();
    }
    let s = std::str::from_utf8(v).unwrap_or("").trim();
    match s.parse::<i128>() {
        Ok(n) => n.to_string().into_bytes(),
        Err(_) => raw(v),
    }
}

/// Already in the form `int_text` would give (no sign but `-`, no leading zeros, no
/// blanks, not `-0`, within i128's 38 digits): then it is returned as it is, without a
/// parse and a print (most integers, on both sides).
fn is_canonical_int(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    !digits.is_empty()
        && digits.len() <= 38
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && digits.len() == v.len()))
}

/// A decimal by value: sign, integer digits without leading zeros, fraction without
/// trailing zeros; `-0` is `0`. NaN and infinities by name.
pub fn decimal(v: &[u8]) -> Vec<u8> {
    let s = std::str::from_utf8(v).unwrap_or("").trim();
    match s {
        "NaN" | "nan" => return b"NaN".to_vec(),
        "Infinity" | "inf" | "+Infinity" => return b"Infinity".to_vec(),
        "-Infinity" | "-inf" => return b"-Infinity".to_vec(),
        _ => {}
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return raw(v);
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.is_empty();
    let mut out = String::new();
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out.into_bytes()
}

/// A decimal rounded half away from zero to `scale` fraction digits, then by value.
pub fn decimal_at(v: &[u8], scale: usize) -> Vec<u8> {
    let s = std::str::from_utf8(v).unwrap_or("").trim();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.strip_prefix('+').unwrap_or(s)),
    };
    let Some((int, frac)) = digits.split_once('.') else {
        return decimal(v);
    };
    if frac.len() <= scale || !(int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return decimal(v);
    }
    let mut kept: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
    if frac.as_bytes()[scale] >= b'5' {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let split = kept.len() - scale;
    let (i, f) = kept.split_at(split);
    let text = format!(
        "{sign}{}.{}",
        std::str::from_utf8(i).unwrap_or("0"),
        std::str::from_utf8(f).unwrap_or("")
    );
    decimal(text.as_bytes())
}

pub(super) fn parse_f64(v: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    match s {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn date_text(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}

/// `YYYY-MM-DD[ HH:MM:SS[.f]][+00]` -> (date, microseconds since midnight).
fn parse_timestamp(v: &[u8]) -> Option<(String, i64)> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let s = s.strip_suffix("+00").unwrap_or(s);
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00"),
    };
    if date.len() < 10 {
        return None;
    }
    let us = parse_duration(time.as_bytes())?;
    Some((date.to_string(), us))
}

/// A timestamp rounded to `digits` fraction digits (half up, as PostgreSQL rounds on
/// input), written with exactly that many. Written by hand, not with `format!`: it runs
/// for every timestamp of a `verify --deep`, on both sides.
fn timestamp(date: &str, micros: i64, digits: u8) -> Vec<u8> {
    let digits = digits.min(6);
    let scale = 10i64.pow(6 - digits as u32);
    let mut micros = (micros + scale / 2) / scale * scale;
    let mut out = Vec::with_capacity(date.len() + 19);
    out.extend_from_slice(date.as_bytes());
    if micros >= 86_400_000_000 {
        // Rounded up into the next day: rare enough to say so rather than compute it.
        micros -= 86_400_000_000;
        out.extend_from_slice(b"+1d");
    }
    if !(0..86_400_000_000).contains(&micros) {
        // Not a time of day (a negative time part): the general form.
        return timestamp_formatted(micros, digits, out);
    }
    let secs = micros / 1_000_000;
    out.push(b' ');
    push_digits(&mut out, (secs / 3600) as u32, 2);
    out.push(b':');
    push_digits(&mut out, (secs / 60 % 60) as u32, 2);
    out.push(b':');
    push_digits(&mut out, (secs % 60) as u32, 2);
    if digits > 0 {
        let frac = (micros % 1_000_000) as u32 / 10u32.pow(6 - digits as u32);
        out.push(b'.');
        push_digits(&mut out, frac, digits as usize);
    }
    out
}

/// `timestamp`'s form through `format!`, for what is not a time of day.
fn timestamp_formatted(micros: i64, digits: u8, mut out: Vec<u8>) -> Vec<u8> {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    out.extend_from_slice(
        format!(" {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60).as_bytes(),
    );
    if digits > 0 {
        let f = format!("{frac:06}");
        out.push(b'.');
        out.extend_from_slice(&f.as_bytes()[..(digits as usize).min(f.len())]);
    }
    out
}

/// `n` in exactly `width` decimal digits, zero-padded (`n` must fit).
fn push_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DD` of a MySQL date.
fn date_of(y: u16, mo: u8, d: u8) -> String {
    let mut out = Vec::with_capacity(10);
    if y > 9999 || mo > 99 || d > 99 {
        return format!("{y:04}-{mo:02}-{d:02}");
    }
    push_digits(&mut out, u32::from(y), 4);
    out.push(b'-');
    push_digits(&mut out, u32::from(mo), 2);
    out.push(b'-');
    push_digits(&mut out, u32::from(d), 2);
    String::from_utf8(out).expect("digits and dashes")
}

/// `[-]H+:MM[:SS[.f]]`, optionally after `N day(s)` -> signed microseconds.
fn parse_duration(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (days, rest) = match s.split_once(" day") {
        Some((d, rest)) => {
            let rest = rest.trim_start_matches('s').trim();
            (d.trim().parse::<i64>().ok()?, rest)
        }
        None => (0, s),
    };
    let (neg, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest.strip_prefix('+').unwrap_or(rest)),
    };
    let mut parts = rest.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next().unwrap_or("0").parse().ok()?;
    let sec = parts.next().unwrap_or("0");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let whole: i64 = whole.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let us = ((h * 60 + m) * 60 + whole) * 1_000_000 + frac;
    Some(days * 86_400_000_000 + if neg { -us } else { us })
}

fn duration(micros: i64, digits: u8) -> Vec<u8> {
    let scale = 10i64.pow(6 - digits.min(6) as u32);
    let rounded = if micros >= 0 {
        (micros + scale / 2) / scale * scale
    } else {
        -((-micros + scale / 2) / scale * scale)
    };
    rounded.to_string().into_bytes()
}

/// MariaDB YEAR(2) digits -> the four-digit year they stand for.
fn year2(v: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
    {
        Some(y) if y < 70 => (2000 + y).to_string().into_bytes(),
        Some(y) if y < 100 => (1900 + y).to_string().into_bytes(),
        _ => v.to_vec(),
    }
}

/// `bit(n)`'s stored bytes (big-endian) as n binary digits.
fn bits(b: &[u8], width: usize) -> Vec<u8> {
    let all: Vec<u8> = b
        .iter()
        .flat_map(|byte| {
            (0..8)
                .rev()
                .map(move |i| if byte >> i & 1 == 1 { b'1' } else { b'0' })
        })
        .collect();
    let width = if width == 0 { all.len() } else { width };
    all[all.len().saturating_sub(width)..].to_vec()
}

/// A MySQL SET value's elements (`''` is the empty set).
fn set_elements(v: &[u8]) -> Vec<Option<Vec<u8>>> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(|b| *b == b',').map(|e| Some(e.to_vec())).collect()
}

/// PostgreSQL's one-dimensional array output (`{a,"b c",NULL}`) -> its elements.
fn parse_array(v: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let inner = v.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let mut i = 0;
    loop {
        if inner.get(i) == Some(&b'"') {
            let mut item = Vec::new();
            i += 1;
            loop {
                match *inner.get(i)? {
                    b'\\' => {
                        item.push(*inner.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    c => {
                        item.push(c);
                        i += 1;
                    }
                }
            }
            out.push(Some(item));
        } else {
            let end = inner[i..]
                .iter()
                .position(|b| *b == b',')
                .map_or(inner.len(), |p| i + p);
            let item = &inner[i..end];
            out.push(if item == b"NULL" {
                None
            } else {
                Some(item.to_vec())
            });
            i = end;
        }
        match inner.get(i) {
            Some(b',') => i += 1,
            None => return Some(out),
            Some(_) => return None,
        }
    }
}

fn array(items: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    out
}

/// The coordinates in a geometric type's text, as the bits of each number, in order.
fn coordinates(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for token in v
        .split(|b| {
            matches!(
                b,
                b'(' | b')' | b'[' | b']' | b',' | b'<' | b'>' | b'{' | b'}'
            )
        })
        .filter(|t| !t.is_empty())
    {
        match parse_f64(token) {
            Some(f) => out.extend_from_slice(&f.to_bits().to_be_bytes()),
            None => return raw(v),
        }
    }
    out
}

/// A source geometry (stored SRID + WKB) as the target holds it.
fn geometry_value(form: Form, bytes: &[u8]) -> Vec<u8> {
    match geometry::to_text(bytes, form) {
        // EWKB's text is its hex digits, compared as they are.
        Some(t) if form == Form::Ewkb => t,
        Some(t) => coordinates(&t),
        None => raw(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written forms give exactly what `format!` gave.
    #[test]
    fn timestamps_and_dates_are_written_as_format_wrote_them() {
        let oracle = |date: &str, micros: i64, digits: u8| -> Vec<u8> {
            let scale = 10i64.pow(6 - digits.min(6) as u32);
            let mut micros = (micros + scale / 2) / scale * scale;
            let mut date = date.to_string();
            if micros >= 86_400_000_000 {
                micros -= 86_400_000_000;
                date.push_str("+1d");
            }
            let secs = micros / 1_000_000;
            let frac = micros % 1_000_000;
            let mut out = format!(
                "{date} {:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            if digits > 0 {
                let f = format!("{frac:06}");
                out.push('.');
                out.push_str(&f[..digits.min(6) as usize]);
            }
            out.into_bytes()
        };
        let day = 86_400_000_000i64;
        for micros in [
            -1,
            -3_600_000_000,
            0,
            1,
            499_999,
            500_000,
            999_999,
            1_000_000,
            3_599_999_999,
            43_200_123_456,
            day - 1,
            day - 500_000,
            day - 1_000_001,
        ] {
            for digits in 0..=6 {
                assert_eq!(
                    timestamp("2024-02-29", micros, digits),
                    oracle("2024-02-29", micros, digits),
                    "{micros} {digits}"
                );
            }
        }
        for (y, mo, d) in [
            (2024, 1, 1),
            (9, 12, 4),
            (1, 1, 1),
            (9999, 12, 31),
            (10000, 1, 1),
            (2024, 123, 200),
        ] {
            assert_eq!(date_of(y, mo, d), format!("{y:04}-{mo:02}-{d:02}"));
        }
    }

    /// The fast path gives exactly what parsing and printing would.
    #[test]
    fn canonical_integers_pass_unchanged_and_others_are_normalised() {
        let slow = |v: &[u8]| -> Vec<u8> {
            match std::str::from_utf8(v).unwrap_or("").trim().parse::<i128>() {
                Ok(n) => n.to_string().into_bytes(),
                Err(_) => raw(v),
            }
        };
        for (v, canonical) in [
            ("0", true),
            ("7", true),
            ("-7", true),
            ("1234567890", true),
            ("-9223372036854775808", true),
            ("18446744073709551615", true),
            ("99999999999999999999999999999999999999", true),
            ("-0", false),
            ("+7", false),
            ("007", false),
            ("-007", false),
            (" 7", false),
            ("7 ", false),
            ("", false),
            ("-", false),
            ("1e3", false),
            ("999999999999999999999999999999999999999", false),
        ] {
            assert_eq!(is_canonical_int(v.as_bytes()), canonical, "{v:?}");
            assert_eq!(int_text(v.as_bytes()), slow(v.as_bytes()), "{v:?}");
        }
    }

    fn t(kind: Kind, v: &str) -> Vec<u8> {
        text(kind, Some(v.as_bytes())).unwrap()
    }

    #[test]
    fn both_sides_meet_in_one_form() {
        // (kind, PostgreSQL's output, the export's text): equal after canon.
        let same: &[(Kind, &str, &str)] = &[
            (Kind::Decimal, "1.50", "1.5"),
            (Kind::Decimal, "-0.00", "0"),
            (Kind::Decimal, "0012.3400", "12.34"),
            (Kind::DecimalAt { scale: 2 }, "1.2345", "1.23"),
            (Kind::DecimalAt { scale: 2 }, "1.235", "1.24"),
            (Kind::DecimalAt { scale: 2 }, "-1.235", "-1.24"),
            (Kind::DecimalAt { scale: 2 }, "9.995", "10"),
            (Kind::DecimalAt { scale: 0 }, "99.5", "100"),
            (Kind::DecimalAt { scale: 2 }, "-0.001", "0"),
            (Kind::DecimalAt { scale: 2 }, "12.3", "12.3"),
            (Kind::DecimalAt { scale: 2 }, "NaN", "NaN"),
            (Kind::Int, "18446744073709551615", "18446744073709551615"),
            (Kind::F64, "1e-300", "1e-300"),
            (Kind::F64, "0.30000000000000004", "0.30000000000000004"),
            (Kind::F32, "123456.79", "123456.7890625"),
            (
                Kind::Uuid,
                "0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01",
                "0B6C5F9E-1C1F-4E0C-9E59-4C5C6B2D1A01",
            ),
            (Kind::Bytes, "\\x00ff", "\\x00FF"),
            (Kind::Text { trim: true }, "ab   ", "ab"),
            (
                Kind::Timestamp { digits: 6 },
                "2024-01-01 10:00:00.5",
                "2024-01-01 10:00:00.500000",
            ),
            (
                Kind::Timestamp { digits: 6 },
                "2024-01-01 10:00:00+00",
                "2024-01-01 10:00:00",
            ),
            (
                Kind::Timestamp { digits: 3 },
                "2024-01-01 10:00:00.124",
                "2024-01-01 10:00:00.123500",
            ),
            (
                Kind::Duration { digits: 6 },
                "838:59:59",
                "838:59:59.000000",
            ),
            (
                Kind::Duration { digits: 6 },
                "-00:00:00.5",
                "-00:00:00.500000",
            ),
            (Kind::Duration { digits: 6 }, "1 day 02:00:00", "26:00:00"),
            (
                Kind::Jsonb,
                r#"{"a": 1, "b": [1.0, "x\"y"]}"#,
                r#"{"b":[1.0,"x\"y"],"a":2,"a":1}"#,
            ),
            (Kind::Array, r#"{a,"b c",NULL}"#, r#"{"a","b c",NULL}"#),
            (Kind::Geometry(Form::Point), "(1,1)", "(1.0,1.0)"),
        ];
        for (kind, pg, export) in same {
            assert_eq!(t(*kind, pg), t(*kind, export), "{kind:?}: {pg} vs {export}");
        }
        let differ: &[(Kind, &str, &str)] = &[
            (Kind::Text { trim: false }, "ab ", "ab"),
            (Kind::Decimal, "1.51", "1.5"),
            (Kind::F64, "0.30000000000000004", "0.3"),
            (
                Kind::Timestamp { digits: 6 },
                "2024-01-01 10:00:00.000001",
                "2024-01-01 10:00:00",
            ),
            (Kind::Json, r#"{"a":1}"#, r#"{"a": 1}"#),
            (Kind::Jsonb, r#"{"a": 1}"#, r#"{"a": 2}"#),
            (Kind::Bytes, "\\x00ff", "\\x00fe"),
            (
                Kind::Uuid,
                "0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01",
                "0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a02",
            ),
            (Kind::Bool, "t", "f"),
        ];
        for (kind, a, b) in differ {
            assert_ne!(t(*kind, a), t(*kind, b), "{kind:?}: {a} vs {b}");
        }
        assert_eq!(text(Kind::Int, None), None);
    }

    #[test]
    fn live_values_need_no_encoder() {
        let b = Before::default();
        assert_eq!(
            source_typed(Kind::F32, b, Typed::F32(123456.79)),
            text(Kind::F32, Some(b"123456.7890625"))
        );
        assert_eq!(
            source_typed(
                Kind::Timestamp { digits: 6 },
                b,
                Typed::Date(2024, 1, 1, 10, 0, 0, 500_000)
            ),
            text(
                Kind::Timestamp { digits: 6 },
                Some(b"2024-01-01 10:00:00.5")
            )
        );
        assert_eq!(
            source_typed(
                Kind::Timestamp { digits: 0 },
                b,
                Typed::Date(0, 0, 0, 0, 0, 0, 0)
            ),
            None
        );
        assert_eq!(
            source_typed(
                Kind::Duration { digits: 6 },
                b,
                Typed::Time(true, 34, 22, 59, 59, 0)
            ),
            text(Kind::Duration { digits: 6 }, Some(b"-838:59:59"))
        );
        assert_eq!(
            source_typed(Kind::Bytes, b, Typed::Bytes(&[0, 255])),
            text(Kind::Bytes, Some(b"\\x00ff"))
        );
        assert_eq!(
            source_typed(Kind::Bits { width: 10 }, b, Typed::Bytes(&[1, 2])),
            Some(b"0100000010".to_vec())
        );
        let truth = Before {
            int_to_bool: true,
            ..b
        };
        assert_eq!(
            source_typed(Kind::Bool, truth, Typed::Int(2)),
            Some(b"t".to_vec())
        );
        assert_eq!(
            source_typed(Kind::Bool, truth, Typed::Int(0)),
            Some(b"f".to_vec())
        );
        let uuid = Before {
            empty_to_null: true,
            ..b
        };
        assert_eq!(source_typed(Kind::Uuid, uuid, Typed::Bytes(b"")), None);
        let set = Before {
            set_to_array: true,
            ..b
        };
        assert_eq!(
            source_typed(Kind::Array, set, Typed::Bytes(b"a,b")),
            text(Kind::Array, Some(b"{a,b}"))
        );
        assert_eq!(
            source_typed(Kind::Array, set, Typed::Bytes(b"")),
            text(Kind::Array, Some(b"{}"))
        );
        let b64 = Before { base64: true, ..b };
        assert_eq!(
            source_typed(Kind::Base64, b64, Typed::Bytes(&[0x78, 0x9c])),
            Some(b"eJw=".to_vec())
        );
        assert_eq!(
            source_typed(Kind::Int, b, Typed::UInt(u64::MAX)),
            Some(b"18446744073709551615".to_vec())
        );
    }
}
