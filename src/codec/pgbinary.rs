//! PURE: pgconverge's CSV -> PostgreSQL's binary COPY format, for the column types where
//! the conversion is exact. Measured on the benchmark, PostgreSQL spends about a third of
//! a CSV COPY parsing CSV and text forms (uuid_in, timestamps, hex); given binary it only
//! copies, so the load runs ~40% faster on the one session that keeps it atomic, while the
//! conversion runs here on another core.
//!
//! The rule that keeps it lossless: a converter accepts only the strict forms whose
//! meaning it knows exactly as PostgreSQL's own input function would read them, and says
//! [`Stop::Unsupported`] for anything else (other spellings, out-of-range values, invalid
//! dates). The caller then loads that table as CSV, so PostgreSQL itself reads (or
//! rejects) the value. Text-like types are passed through unchanged: their binary input
//! functions run the same checks (encoding, length, JSON syntax, enum label) as the text
//! ones. The typmod (`varchar(n)`, `timestamp(3)`) is applied by the server either way.

use super::adapt::Adapt;
use super::csv::{NullStyle, Tokenizer};

/// A target column type with an exact converter. Anything else loads as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinType {
    /// text, varchar, bpchar, json, enums: the bytes as they are.
    Text,
    /// jsonb: version byte 1, then the text.
    Jsonb,
    /// bytea from `\x` + hex.
    Bytea,
    Uuid,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Date,
    /// timestamp and timestamptz (the session's TimeZone is UTC, as the export wrote).
    Timestamp,
    Time,
    /// numeric from a plain decimal (`-12.50`), or exactly `NaN`, `Infinity`, `-Infinity`.
    Numeric,
    /// interval from MySQL TIME's form, `[-]H+:MM:SS[.ffffff]`.
    Interval,
    /// A one-dimensional array of text-like elements (text, varchar, bpchar, enum) from a
    /// strict array literal (`{a,"b c",NULL}`); `elem` is the element type's OID.
    TextArray {
        elem: u32,
    },
}

impl BinType {
    /// The converter for a column whose type is `name` (a `pg_catalog` base type, or
    /// `enum`), if there is an exact one. An array (`_text`, ...) needs its element's base
    /// type name and OID.
    pub fn for_pg(name: &str, element: Option<&str>, element_oid: u32) -> Option<BinType> {
        if let Some(e) = element {
            return matches!(e, "text" | "varchar" | "bpchar" | "enum")
                .then_some(BinType::TextArray { elem: element_oid });
        }
        Some(match name {
            "text" | "varchar" | "bpchar" | "json" | "enum" => BinType::Text,
            "jsonb" => BinType::Jsonb,
            "bytea" => BinType::Bytea,
            "uuid" => BinType::Uuid,
            "bool" => BinType::Bool,
            "int2" => BinType::Int2,
            "int4" => BinType::Int4,
            "int8" => BinType::Int8,
            "float4" => BinType::Float4,
            "float8" => BinType::Float8,
            "date" => BinType::Date,
            "timestamp" | "timestamptz" => BinType::Timestamp,
            "time" => BinType::Time,
            "numeric" => BinType::Numeric,
            "interval" => BinType::Interval,
            _ => return None,
        })
    }
}

/// Why a conversion stopped; the caller loads the table as CSV instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A value outside the forms the converter knows exactly.
    Unsupported {
        row: u64,
        column: usize,
        ty: BinType,
    },
    /// The CSV itself is not in pgconverge's dialect, or a row has the wrong field count.
    Malformed { row: u64, what: String },
    /// A record longer than the converter holds (`limit` bytes).
    TooLong { row: u64, limit: u64 },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Unsupported { row, column, ty } => write!(
                f,
                "row {row}, column {}: a value not in a form the binary path converts exactly ({ty:?})",
                column + 1
            ),
            Stop::Malformed { row, what } => write!(f, "row {row}: {what}"),
            Stop::TooLong { row, limit } => write!(
                f,
                "row {row}: a record longer than the binary path holds ({limit} bytes)"
            ),
        }
    }
}

/// The binary COPY header: signature, flags, header extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const DAYS_1970_TO_2000: i64 = 10_957;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// A value outside the forms a converter knows exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotExact;

/// Append one non-NULL value's payload (without the length word). `Err(NotExact)` when the
/// value is outside the exactly-known forms.
pub fn to_binary(ty: BinType, v: &[u8], out: &mut Vec<u8>) -> Result<(), NotExact> {
    match ty {
        BinType::Text => out.extend_from_slice(v),
        BinType::Jsonb => {
            out.push(1);
            out.extend_from_slice(v);
        }
        BinType::Bytea => bytea(v, out)?,
        BinType::Uuid => out.extend_from_slice(&uuid(v)?),
        BinType::Bool => out.push(boolean(v)? as u8),
        BinType::Int2 => {
            out.extend_from_slice(&i16::try_from(int(v)?).map_err(|_| NotExact)?.to_be_bytes())
        }
        BinType::Int4 => {
            out.extend_from_slice(&i32::try_from(int(v)?).map_err(|_| NotExact)?.to_be_bytes())
        }
        BinType::Int8 => out.extend_from_slice(&int(v)?.to_be_bytes()),
        BinType::Float4 => {
            let x: f32 = match special_float(v) {
                Some(x) => x as f32,
                None => {
                    let x: f32 = float_text(v)?.parse().map_err(|_| NotExact)?;
                    check_float(x.is_finite(), x == 0.0, x.is_subnormal(), v)?;
                    x
                }
            };
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        BinType::Float8 => {
            let x: f64 = match special_float(v) {
                Some(x) => x,
                None => {
                    let x: f64 = float_text(v)?.parse().map_err(|_| NotExact)?;
                    check_float(x.is_finite(), x == 0.0, x.is_subnormal(), v)?;
                    x
                }
            };
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        BinType::Date => {
            let days = date(v)?;
            out.extend_from_slice(
                &i32::try_from(days - DAYS_1970_TO_2000)
                    .map_err(|_| NotExact)?
                    .to_be_bytes(),
            );
        }
        BinType::Timestamp => {
            // PostgreSQL's own output in UTC ends in `+00`: the same instant (the session's
            // TimeZone is UTC, and a `timestamp` ignores the zone).
            let v = v.strip_suffix(b"+00").unwrap_or(v);
            if v.len() < 19 || v[10] != b' ' {
                return Err(NotExact);
            }
            let days = date(&v[..10])?;
            let usecs = time_of_day(&v[11..])?;
            let t = (days - DAYS_1970_TO_2000) * USECS_PER_DAY + usecs;
            out.extend_from_slice(&t.to_be_bytes());
        }
        BinType::Time => out.extend_from_slice(&time_of_day(v)?.to_be_bytes()),
        BinType::Numeric => numeric(v, out)?,
        BinType::Interval => {
            out.extend_from_slice(&mysql_time_usecs(v)?.to_be_bytes());
            out.extend_from_slice(&[0; 8]); // days, months
        }
        BinType::TextArray { elem } => text_array(v, elem, out)?,
    }
    Ok(())
}

/// numeric_send's form: ndigits, weight, sign, dscale, then base-10000 digits. The
/// digits are grouped from the decimal point, leading and trailing zero groups dropped
/// (weight counts the groups before the point, less one); dscale is the number of digits
/// written after the point; zero is positive with no digits.
fn numeric(v: &[u8], out: &mut Vec<u8>) -> Result<(), NotExact> {
    // numeric_send writes the infinities with dscale 32 (numeric_recv ignores it);
    // the same bytes are written here.
    let special = match v {
        b"NaN" => Some((0xC000u16, 0)),
        b"Infinity" => Some((0xD000, 32)),
        b"-Infinity" => Some((0xF000, 32)),
        _ => None,
    };
    if let Some((sign, dscale)) = special {
        for word in [0u16, 0, sign, dscale] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        return Ok(());
    }
    let (negative, body) = match v.strip_prefix(b"-") {
        Some(b) => (true, b),
        None => (false, v),
    };
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &b""[..]),
    };
    let digits_ok = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.is_empty() && frac.is_empty()
        || !digits_ok(int)
        || !digits_ok(frac)
        || int.len() + frac.len() > 1000
    {
        return Err(NotExact);
    }
    let int = &int[int.iter().position(|&b| b != b'0').unwrap_or(int.len())..];
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let padded: Vec<u8> = std::iter::repeat_n(b'0', int_pad)
        .chain(int.iter().copied())
        .chain(frac.iter().copied())
        .chain(std::iter::repeat_n(b'0', frac_pad))
        .collect();
    let mut groups: Vec<u16> = padded
        .chunks(4)
        .map(|g| g.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
        .collect();
    let mut weight = ((int_pad + int.len()) / 4) as i32 - 1;
    let lead = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..lead);
    weight -= lead as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    if groups.is_empty() {
        weight = 0;
    }
    for word in [
        groups.len() as u16,
        weight as i16 as u16,
        sign,
        frac.len() as u16,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

/// MySQL TIME text (`[-]H+:MM:SS[.ffffff]`, up to 838 hours) as signed microseconds,
/// which interval_in reads as a time span of that many hours, minutes and seconds.
fn mysql_time_usecs(v: &[u8]) -> Result<i64, NotExact> {
    let (negative, body) = match v.strip_prefix(b"-") {
        Some(b) => (true, b),
        None => (false, v),
    };
    let mut parts = body.splitn(3, |&b| b == b':');
    let (h, m, rest) = (
        parts.next().ok_or(NotExact)?,
        parts.next().ok_or(NotExact)?,
        parts.next().ok_or(NotExact)?,
    );
    if h.is_empty() || h.len() > 4 || !h.iter().all(u8::is_ascii_digit) || rest.len() < 2 {
        return Err(NotExact);
    }
    let hours = h.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let (m, s) = (digits::<2>(m)?, digits::<2>(&rest[..2])?);
    if m > 59 || s > 59 {
        return Err(NotExact);
    }
    let usecs = fraction_usecs(&rest[2..])?;
    let total = ((hours * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + usecs;
    Ok(if negative { -total } else { total })
}

/// A one-dimensional array literal of text elements, strictly: `{}` or `{e,e,...}` where
/// an element is `NULL` (any case), a quoted string (`\` escapes the next character),
/// or an unquoted run without whitespace, quotes, backslashes or braces. Dimension
/// decorations, nesting and whitespace are left to array_in.
fn text_array(v: &[u8], elem: u32, out: &mut Vec<u8>) -> Result<(), NotExact> {
    let inner = v
        .strip_prefix(b"{")
        .and_then(|r| r.strip_suffix(b"}"))
        .ok_or(NotExact)?;
    let mut elements: Vec<Option<Vec<u8>>> = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'"' {
            let mut e = Vec::new();
            i += 1;
            loop {
                match inner.get(i) {
                    None => return Err(NotExact),
                    Some(b'\\') => {
                        e.push(*inner.get(i + 1).ok_or(NotExact)?);
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        e.push(b);
                        i += 1;
                    }
                }
            }
            elements.push(Some(e));
        } else {
            let end = inner[i..]
                .iter()
                .position(|&b| b == b',')
                .map_or(inner.len(), |k| i + k);
            let e = &inner[i..end];
            if e.is_empty()
                || e.iter()
                    .any(|b| matches!(b, b'{' | b'}' | b'"' | b'\\') || b.is_ascii_whitespace())
            {
                return Err(NotExact);
            }
            elements.push((!e.eq_ignore_ascii_case(b"NULL")).then(|| e.to_vec()));
            i = end;
        }
        match inner.get(i) {
            None => break,
            Some(b',') if i + 1 < inner.len() => i += 1,
            _ => return Err(NotExact),
        }
    }
    let has_null = elements.iter().any(Option::is_none);
    let ndim: i32 = if elements.is_empty() { 0 } else { 1 };
    for word in [ndim, i32::from(has_null), elem as i32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    if ndim == 1 {
        out.extend_from_slice(&(elements.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for e in elements {
        match e {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(e) => {
                out.extend_from_slice(&(e.len() as i32).to_be_bytes());
                out.extend_from_slice(&e);
            }
        }
    }
    Ok(())
}

/// `\x` followed by pairs of hex digits (byteain's hex form, without its whitespace).
fn bytea(v: &[u8], out: &mut Vec<u8>) -> Result<(), NotExact> {
    let hex = v.strip_prefix(b"\\x").ok_or(NotExact)?;
    if hex.len() % 2 != 0 {
        return Err(NotExact);
    }
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Ok(())
}

fn nibble(b: u8) -> Result<u8, NotExact> {
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(NotExact),
    }
}

/// uuid_in's grammar exactly: optional braces, 32 hex digits, a hyphen allowed after any
/// group of four digits except the last.
fn uuid(v: &[u8]) -> Result<[u8; 16], NotExact> {
    let mut s = v;
    let braces = s.first() == Some(&b'{');
    if braces {
        s = &s[1..];
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        if s.len() < 2 {
            return Err(NotExact);
        }
        *byte = nibble(s[0])? << 4 | nibble(s[1])?;
        s = &s[2..];
        if s.first() == Some(&b'-') && i % 2 == 1 && i < 15 {
            s = &s[1..];
        }
    }
    if braces {
        s = s.strip_prefix(b"}").ok_or(NotExact)?;
    }
    if s.is_empty() { Ok(out) } else { Err(NotExact) }
}

/// The whole-word spellings boolin accepts (any case); its prefixes and surrounding
/// whitespace are left to PostgreSQL.
fn boolean(v: &[u8]) -> Result<bool, NotExact> {
    const TRUE: [&[u8]; 6] = [b"t", b"true", b"y", b"yes", b"on", b"1"];
    const FALSE: [&[u8]; 6] = [b"f", b"false", b"n", b"no", b"off", b"0"];
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Ok(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Ok(false)
    } else {
        Err(NotExact)
    }
}

/// `-?[0-9]+` (no whitespace, no `+`, no underscores or hex, which only some
/// PostgreSQL versions accept).
fn int(v: &[u8]) -> Result<i64, NotExact> {
    let (neg, digits) = match v.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, v),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NotExact);
    }
    let mut n: i128 = 0;
    for d in digits {
        n = n * 10 + i128::from(d - b'0');
    }
    i64::try_from(if neg { -n } else { n }).map_err(|_| NotExact)
}

/// A decimal number (`-1.5`, `.5`, `2e-3`): what both Rust and strtod read the same way,
/// correctly rounded. Other spellings of NaN and Infinity, and hex floats, are left to
/// PostgreSQL.
fn float_text(v: &[u8]) -> Result<&str, NotExact> {
    let body = v.strip_prefix(b"-").unwrap_or(v);
    let (mantissa, exp) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &b""[..]),
    };
    let digits_ok = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int_part.len() + frac.len() == 0 || !digits_ok(int_part) || !digits_ok(frac) {
        return Err(NotExact);
    }
    if let Some(e) = exp {
        let e = e
            .strip_prefix(b"-")
            .or_else(|| e.strip_prefix(b"+"))
            .unwrap_or(e);
        if e.is_empty() || e.len() > 4 || !digits_ok(e) {
            return Err(NotExact);
        }
    }
    std::str::from_utf8(v).map_err(|_| NotExact)
}

/// The special values in PostgreSQL's own output spellings (what a PostgreSQL source
/// exports): NaN, and the infinities.
fn special_float(v: &[u8]) -> Option<f64> {
    match v {
        b"NaN" => Some(f64::NAN),
        b"Infinity" => Some(f64::INFINITY),
        b"-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// PostgreSQL refuses overflow and underflow (a non-zero spelling that rounds to zero);
/// subnormal results are left to it as well.
fn check_float(finite: bool, zero: bool, subnormal: bool, v: &[u8]) -> Result<(), NotExact> {
    let mantissa = v.split(|&b| b == b'e' || b == b'E').next().unwrap_or(v);
    let nonzero_spelling = mantissa.iter().any(|b| (b'1'..=b'9').contains(b));
    if !finite || subnormal || (zero && nonzero_spelling) {
        return Err(NotExact);
    }
    Ok(())
}

fn digits<const N: usize>(v: &[u8]) -> Result<u32, NotExact> {
    if v.len() != N || !v.iter().all(u8::is_ascii_digit) {
        return Err(NotExact);
    }
    Ok(v.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD`, year 1..9999, a real calendar day -> days since 1970-01-01.
fn date(v: &[u8]) -> Result<i64, NotExact> {
    if v.len() != 10 || v[4] != b'-' || v[7] != b'-' {
        return Err(NotExact);
    }
    let (y, m, d) = (
        digits::<4>(&v[..4])?,
        digits::<2>(&v[5..7])?,
        digits::<2>(&v[8..])?,
    );
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y == 0 || m == 0 || m > 12 || d == 0 || d > month_days[m as usize - 1] {
        return Err(NotExact);
    }
    Ok(days_from_civil(i64::from(y), i64::from(m), i64::from(d)))
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `HH:MM:SS` with up to six fraction digits, 00:00:00 to 23:59:59.999999 -> microseconds.
fn time_of_day(v: &[u8]) -> Result<i64, NotExact> {
    if v.len() < 8 || v[2] != b':' || v[5] != b':' {
        return Err(NotExact);
    }
    let (h, m, s) = (
        digits::<2>(&v[..2])?,
        digits::<2>(&v[3..5])?,
        digits::<2>(&v[6..8])?,
    );
    if h > 23 || m > 59 || s > 59 {
        return Err(NotExact);
    }
    let usecs = fraction_usecs(&v[8..])?;
    Ok(((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + usecs)
}

/// What follows the seconds: nothing, or `.` and one to six digits -> microseconds.
fn fraction_usecs(v: &[u8]) -> Result<i64, NotExact> {
    match v {
        [] => Ok(0),
        [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 6 => {
            if !frac.iter().all(u8::is_ascii_digit) {
                return Err(NotExact);
            }
            Ok((0..6).fold(0i64, |n, i| {
                n * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'))
            }))
        }
        _ => Err(NotExact),
    }
}

/// CSV records -> binary tuples, one table file at a time. Feed it the file's bytes in
/// order; it converts every complete record and leaves a partial last one for the next
/// call, so memory stays at one chunk plus the longest record.
pub struct Converter {
    types: Vec<BinType>,
    adapts: Vec<Adapt>,
    /// Which fields are sent (a field a mapping's `set` replaces is not).
    keep: Vec<bool>,
    /// Values appended to every tuple, already in binary (`None`: NULL).
    extra: Vec<Option<Vec<u8>>>,
    /// Fields per tuple: the kept ones and the extra ones.
    fields: i16,
    tokenizer: Tokenizer,
    /// The header line of the file has not been skipped yet.
    at_header: bool,
    /// Data rows converted so far (the row number errors name).
    pub rows: u64,
}

impl Converter {
    /// `types[i]` is the converter of the file's i-th column, `adapts[i]` (if given) the
    /// adaptation its values take first.
    pub fn new(types: Vec<BinType>, adapts: Vec<Adapt>, nulls: NullStyle) -> Converter {
        let keep = vec![true; types.len()];
        Converter::shaped(types, adapts, nulls, keep, Vec::new())
    }

    /// Like `new`, sending only the fields `keep` says and appending `extra` (binary
    /// values, NULL as None) to every tuple.
    pub fn shaped(
        types: Vec<BinType>,
        adapts: Vec<Adapt>,
        nulls: NullStyle,
        keep: Vec<bool>,
        extra: Vec<Option<Vec<u8>>>,
    ) -> Converter {
        let kept = (0..types.len())
            .filter(|i| keep.get(*i).copied().unwrap_or(true))
            .count();
        let fields = (kept + extra.len()) as i16;
        Converter {
            adapts: if adapts.is_empty() {
                vec![Adapt::None; types.len()]
            } else {
                adapts
            },
            keep,
            extra,
            fields,
            types,
            tokenizer: Tokenizer::new(nulls),
            at_header: true,
            rows: 0,
        }
    }

    /// Convert the complete records of `data` into `out`; returns how many bytes of
    /// `data` were consumed. With `eof`, a last record without a line end counts too.
    pub fn convert(&mut self, data: &[u8], eof: bool, out: &mut Vec<u8>) -> Result<usize, Stop> {
        let mut pos = 0;
        loop {
            let next = match self.tokenizer.split(data, pos, eof) {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(pos),
                Err(m) => {
                    return Err(Stop::Malformed {
                        row: self.rows + 1,
                        what: m.to_string(),
                    });
                }
            };
            if self.at_header {
                self.at_header = false;
                pos = next;
                continue;
            }
            self.rows += 1;
            let row = self.rows;
            let t = &self.tokenizer;
            if t.len() != self.types.len() {
                return Err(Stop::Malformed {
                    row,
                    what: format!(
                        "{} fields where the header has {}",
                        t.len(),
                        self.types.len()
                    ),
                });
            }
            out.extend_from_slice(&self.fields.to_be_bytes());
            for (column, (&ty, adapt)) in self.types.iter().zip(&self.adapts).enumerate() {
                if !self.keep.get(column).copied().unwrap_or(true) {
                    continue;
                }
                let Some(value) = t.field(data, column).and_then(|v| adapt.apply(v)) else {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    continue;
                };
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let unsupported = || Stop::Unsupported { row, column, ty };
                to_binary(ty, &value, out).map_err(|NotExact| unsupported())?;
                let len = i32::try_from(out.len() - len_at - 4).map_err(|_| unsupported())?;
                out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
            }
            for value in &self.extra {
                match value {
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
            pos = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::csv::Field;
    use proptest::prelude::*;

    fn enc(ty: BinType, v: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        to_binary(ty, v.as_bytes(), &mut out).ok().map(|()| out)
    }

    #[test]
    fn exact_forms_and_refusals() {
        use BinType::*;
        let uuid = hex::decode("a0eebc999c0b4ef8bb6d6bb9bd380a11").unwrap();
        let cases: &[(BinType, &str, Option<Vec<u8>>)] = &[
            (
                Uuid,
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                Some(uuid.clone()),
            ),
            (
                Uuid,
                "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                Some(uuid.clone()),
            ),
            (
                Uuid,
                "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
                Some(uuid.clone()),
            ),
            (
                Uuid,
                "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
                Some(uuid.clone()),
            ),
            (Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", None),
            (Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", None),
            (Uuid, "a0eebc999-c0b-4ef8-bb6d-6bb9bd380a11", None),
            (Uuid, "{a0eebc999c0b4ef8bb6d6bb9bd380a11", None),
            (Uuid, "", None),
            (Bool, "1", Some(vec![1])),
            (Bool, "0", Some(vec![0])),
            (Bool, "TRUE", Some(vec![1])),
            (Bool, "off", Some(vec![0])),
            (Bool, "tr", None),
            (Bool, " t", None),
            (Int2, "-32768", Some(vec![0x80, 0])),
            (Int2, "32768", None),
            (Int4, "007", Some(vec![0, 0, 0, 7])),
            (Int4, "+7", None),
            (Int4, " 7", None),
            (Int4, "1_000", None),
            (Int4, "-", None),
            (
                Int8,
                "-9223372036854775808",
                Some(i64::MIN.to_be_bytes().to_vec()),
            ),
            (Int8, "9223372036854775808", None),
            (Float8, "1.5", Some(1.5f64.to_bits().to_be_bytes().to_vec())),
            (
                Float8,
                "-0",
                Some((-0.0f64).to_bits().to_be_bytes().to_vec()),
            ),
            (Float8, ".5", Some(0.5f64.to_bits().to_be_bytes().to_vec())),
            (
                Float8,
                "2.5E-3",
                Some(0.0025f64.to_bits().to_be_bytes().to_vec()),
            ),
            (Float8, "1e-400", None),
            (Float8, "1e400", None),
            // PostgreSQL's own spellings of the special values (a PostgreSQL source).
            (
                Float8,
                "NaN",
                Some(f64::NAN.to_bits().to_be_bytes().to_vec()),
            ),
            (
                Float8,
                "Infinity",
                Some(f64::INFINITY.to_bits().to_be_bytes().to_vec()),
            ),
            (Float8, "inf", None),
            (Float8, "nan", None),
            (Float8, "0x1p3", None),
            (
                Float4,
                "3.4028235e38",
                Some(f32::MAX.to_bits().to_be_bytes().to_vec()),
            ),
            (Float4, "3.5e38", None),
            (Float4, "1e-46", None),
            (Date, "2000-01-01", Some(vec![0, 0, 0, 0])),
            (Date, "1999-12-31", Some((-1i32).to_be_bytes().to_vec())),
            (Date, "2024-02-29", Some(8825i32.to_be_bytes().to_vec())),
            (Date, "2023-02-29", None),
            (Date, "0000-01-01", None),
            (Date, "2024-2-29", None),
            (
                Timestamp,
                "2000-01-01 00:00:01.5",
                Some(1_500_000i64.to_be_bytes().to_vec()),
            ),
            (
                Timestamp,
                "1970-01-01 00:00:00",
                Some((-946_684_800_000_000i64).to_be_bytes().to_vec()),
            ),
            (Timestamp, "2000-01-01 00:00:00.0000001", None),
            (Timestamp, "2000-01-01T00:00:00", None),
            (Timestamp, "2000-01-01 24:00:00", None),
            (Timestamp, "2000-01-01 00:00:60", None),
            (Timestamp, "2000-01-01 00:00:00+02", None),
            (
                Time,
                "23:59:59.999999",
                Some(86_399_999_999i64.to_be_bytes().to_vec()),
            ),
            (Time, "838:59:59", None),
            (Time, "-01:00:00", None),
            (Bytea, "\\x00ff10", Some(vec![0, 0xff, 0x10])),
            (Bytea, "\\x", Some(vec![])),
            (Bytea, "\\x0", None),
            (Bytea, "\\x0g", None),
            (Bytea, "abc", None),
            (Jsonb, "{}", Some(b"\x01{}".to_vec())),
            (Text, "any \0 bytes", Some(b"any \0 bytes".to_vec())),
        ];
        for (ty, input, want) in cases {
            assert_eq!(&enc(*ty, input), want, "{ty:?} {input:?}");
        }
    }

    #[test]
    fn type_names() {
        assert_eq!(
            BinType::for_pg("timestamptz", None, 0),
            Some(BinType::Timestamp)
        );
        assert_eq!(BinType::for_pg("enum", None, 0), Some(BinType::Text));
        assert_eq!(BinType::for_pg("numeric", None, 0), Some(BinType::Numeric));
        assert_eq!(
            BinType::for_pg("", Some("enum"), 16385),
            Some(BinType::TextArray { elem: 16385 })
        );
        assert_eq!(BinType::for_pg("", Some("int4"), 23), None);
        for other in ["inet", "xml", "bit", "citext", ""] {
            assert_eq!(BinType::for_pg(other, None, 0), None, "{other}");
        }
    }

    #[test]
    fn numeric_interval_and_array_forms() {
        use BinType::*;
        let words = |w: &[i16]| -> Vec<u8> { w.iter().flat_map(|x| x.to_be_bytes()).collect() };
        let cases: &[(BinType, &str, Option<Vec<u8>>)] = &[
            (Numeric, "0", Some(words(&[0, 0, 0, 0]))),
            (Numeric, "-0.00", Some(words(&[0, 0, 0, 2]))),
            (Numeric, "1.50", Some(words(&[2, 0, 0, 2, 1, 5000]))),
            (
                Numeric,
                "-12345.6789",
                Some(words(&[3, 1, 0x4000, 4, 1, 2345, 6789])),
            ),
            (Numeric, "0.0001", Some(words(&[1, -1, 0, 4, 1]))),
            (Numeric, "10000", Some(words(&[1, 1, 0, 0, 1]))),
            (Numeric, ".5", Some(words(&[1, -1, 0, 1, 5000]))),
            (Numeric, "NaN", Some(words(&[0, 0, 0xC000u16 as i16, 0]))),
            (Numeric, "nan", None),
            (Numeric, "1e5", None),
            (Numeric, "+1", None),
            (Numeric, " 1", None),
            (Numeric, "", None),
            (Numeric, ".", None),
            (
                Interval,
                "838:59:59",
                Some(
                    [
                        ((838 * 3600 + 59 * 60 + 59) * 1_000_000i64)
                            .to_be_bytes()
                            .to_vec(),
                        vec![0; 8],
                    ]
                    .concat(),
                ),
            ),
            (
                Interval,
                "-00:00:01.5",
                Some([(-1_500_000i64).to_be_bytes().to_vec(), vec![0; 8]].concat()),
            ),
            (Interval, "1:60:00", None),
            (Interval, "1 day", None),
            (
                TextArray { elem: 25 },
                "{}",
                Some([0i32, 0, 25].iter().flat_map(|x| x.to_be_bytes()).collect()),
            ),
            (TextArray { elem: 25 }, "{ a}", None),
            (TextArray { elem: 25 }, "{a,,b}", None),
            (TextArray { elem: 25 }, "[1:1]={a}", None),
            (TextArray { elem: 25 }, "{{a}}", None),
        ];
        for (ty, input, want) in cases {
            assert_eq!(&enc(*ty, input), want, "{ty:?} {input:?}");
        }
        let arr = enc(TextArray { elem: 25 }, r#"{a,"b c",NULL,"\"q\\"}"#).unwrap();
        let mut want: Vec<u8> = [1i32, 1, 25, 4, 1]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        for e in [Some(&b"a"[..]), Some(b"b c"), None, Some(b"\"q\\")] {
            match e {
                None => want.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(e) => {
                    want.extend_from_slice(&(e.len() as i32).to_be_bytes());
                    want.extend_from_slice(e);
                }
            }
        }
        assert_eq!(arr, want);
    }

    /// Decode binary COPY tuples back into fields (all columns Text).
    fn decode(mut b: &[u8], ncols: usize) -> Vec<Vec<Field>> {
        assert!(b.starts_with(HEADER));
        b = &b[HEADER.len()..];
        let mut rows = Vec::new();
        loop {
            let n = i16::from_be_bytes([b[0], b[1]]);
            b = &b[2..];
            if n == -1 {
                assert!(b.is_empty());
                return rows;
            }
            assert_eq!(n as usize, ncols);
            let mut row = Vec::new();
            for _ in 0..n {
                let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                b = &b[4..];
                if len < 0 {
                    row.push(None);
                } else {
                    row.push(Some(b[..len as usize].to_vec()));
                    b = &b[len as usize..];
                }
            }
            rows.push(row);
        }
    }

    /// Feed `data` in chunks of `chunk` bytes, as the import does from a file.
    fn convert_chunked(
        data: &[u8],
        ncols: usize,
        nulls: NullStyle,
        chunk: usize,
    ) -> Result<Vec<u8>, Stop> {
        let mut conv = Converter::new(vec![BinType::Text; ncols], vec![], nulls);
        let mut out = HEADER.to_vec();
        let mut buf = Vec::new();
        let mut fed = 0;
        loop {
            let end = (fed + chunk).min(data.len());
            buf.extend_from_slice(&data[fed..end]);
            fed = end;
            let eof = fed == data.len();
            let used = conv.convert(&buf, eof, &mut out)?;
            buf.drain(..used);
            if eof {
                assert!(buf.is_empty(), "left over: {buf:?}");
                break;
            }
        }
        out.extend_from_slice(TRAILER);
        Ok(out)
    }

    fn csv_of(rows: &[Vec<Field>], ncols: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        crate::codec::csv::write_header(
            (0..ncols).map(|i| if i == 0 { "a" } else { "b" }),
            &mut bytes,
        );
        for r in rows {
            bytes.extend(crate::codec::csv::tests::encode_row(r));
        }
        bytes
    }

    #[test]
    fn malformed_csv_stops() {
        for (data, what) in [
            (&b"a,b\n1,2,3\n"[..], "3 fields"),
            (b"a,b\n1\r,2\n", "carriage return"),
            (b"a,b\n\"1\"x,2\n", "after a closing quote"),
            (b"a,b\n\"1,2\n", "unterminated"),
            (b"a\n\\.\n", "end-of-data"),
        ] {
            let ncols = if data.starts_with(b"a,b") { 2 } else { 1 };
            let err = convert_chunked(data, ncols, NullStyle::Marker, 3).unwrap_err();
            assert!(err.to_string().contains(what), "{err} for {data:?}");
        }
    }

    #[test]
    fn unsupported_value_names_row_and_column() {
        let mut conv = Converter::new(
            vec![BinType::Text, BinType::Int4],
            vec![],
            NullStyle::Marker,
        );
        let err = conv
            .convert(b"a,b\nx,1\ny,z\n", true, &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            err,
            Stop::Unsupported {
                row: 2,
                column: 1,
                ty: BinType::Int4
            }
        );
    }

    #[test]
    fn legacy_nulls() {
        let out = convert_chunked(b"a,b\n,\"\"\n", 2, NullStyle::EmptyUnquoted, 100).unwrap();
        assert_eq!(decode(&out, 2), vec![vec![None, Some(vec![])]]);
    }

    proptest! {
        /// Whatever pgconverge's CSV writer wrote, cut into any chunk size, arrives as the
        /// same fields (NULL, '', `\N`, quotes, newlines, any bytes).
        #[test]
        fn csv_to_binary_keeps_every_field(
            rows in prop::collection::vec(
                prop::collection::vec(
                    prop::option::of(prop_oneof![
                        ".*".prop_map(String::into_bytes),
                        "[,\"\\\\\r\n N.x]{0,6}".prop_map(String::into_bytes),
                        prop::collection::vec(any::<u8>(), 0..8),
                    ]),
                    2,
                ),
                0..8,
            ),
            chunk in 1usize..40,
            no_final_newline in any::<bool>(),
        ) {
            let mut bytes = csv_of(&rows, 2);
            if no_final_newline && !rows.is_empty() {
                bytes.pop();
            }
            let out = convert_chunked(&bytes, 2, NullStyle::Marker, chunk).unwrap();
            prop_assert_eq!(decode(&out, 2), rows);
        }
    }
}
