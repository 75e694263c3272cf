//! PURE: MySQL/MariaDB binary-log row images, read only as far as a delta needs: every
//! column is skipped by its length (from the table map's type and metadata), and only the
//! key columns are decoded, with what the catalog knows and the log does not (signedness,
//! a `binary(n)`'s declared length, a zero YEAR). The binlog's value encoding never reaches
//! a file: a key is only used to find its row again in a snapshot (`literal`), and the row
//! is then read and encoded by the export's own reader.
//!
//! Anything this reader does not know is an error, never a guess: an unknown column type,
//! a row image that lacks a column (a row image other than FULL), an image whose lengths
//! do not add up to the event's size.

use std::fmt::Write as _;

/// One column of a table map: its type byte and metadata as the log carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumn {
    pub ty: u8,
    pub meta: Vec<u8>,
}

/// What a key column holds, from the source catalog: how its bytes in the log become a
/// key, and how the key is written back as an SQL literal of the column's own type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    Int {
        unsigned: bool,
    },
    Year,
    Decimal,
    /// A string in a character set (its introducer, e.g. `utf8mb4`, `latin1`).
    Str {
        charset: String,
    },
    /// `binary(n)` (the log strips its trailing zero bytes: `len` puts them back) or
    /// `varbinary` (`len` None).
    Binary {
        len: Option<usize>,
    },
    Enum {
        charset: String,
    },
    Set {
        charset: String,
    },
    Bit,
    Date,
    DateTime,
    Timestamp,
}

/// A key column's value. Integers (and ENUM indexes, SET masks) as numbers, strings and
/// bits as bytes, dates, times and decimals as their canonical text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyValue {
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
}

/// A row's key: one value per key column, in key order.
pub type Key = Vec<KeyValue>;

/// One row of a rows event: the key of its before image and of its after image.
pub type RowKeys = (Option<Key>, Option<Key>);

/// The key type of a source column (`information_schema`'s DATA_TYPE, COLUMN_TYPE and
/// CHARACTER_SET_NAME), or why a delta cannot follow a key made of it.
pub fn key_type(
    data_type: &str,
    column_type: &str,
    charset: Option<&str>,
) -> Result<KeyType, String> {
    let cs = || charset.unwrap_or("utf8mb4").to_string();
    Ok(match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => KeyType::Int {
            unsigned: column_type.contains("unsigned"),
        },
        "year" => KeyType::Year,
        "decimal" | "numeric" => KeyType::Decimal,
        "char" | "varchar" => KeyType::Str { charset: cs() },
        "binary" => KeyType::Binary {
            len: declared_length(column_type),
        },
        "varbinary" => KeyType::Binary { len: None },
        "enum" => KeyType::Enum { charset: cs() },
        "set" => KeyType::Set { charset: cs() },
        "bit" => KeyType::Bit,
        "date" => KeyType::Date,
        "datetime" => KeyType::DateTime,
        "timestamp" => KeyType::Timestamp,
        other => {
            return Err(format!(
                "a key column of type {other} (a delta follows integer, decimal, string, \
                 binary, enum, set, bit, date, datetime and timestamp keys)"
            ));
        }
    })
}

/// `binary(16)` -> 16.
fn declared_length(column_type: &str) -> Option<usize> {
    let inner = column_type.split_once('(')?.1.split_once(')')?.0;
    inner.trim().parse().ok()
}

// The type bytes of the binary log (include/field_types.h).
const DECIMAL: u8 = 0;
const TINY: u8 = 1;
const SHORT: u8 = 2;
const LONG: u8 = 3;
const FLOAT: u8 = 4;
const DOUBLE: u8 = 5;
const NULL: u8 = 6;
const TIMESTAMP: u8 = 7;
const LONGLONG: u8 = 8;
const INT24: u8 = 9;
const DATE: u8 = 10;
const TIME: u8 = 11;
const DATETIME: u8 = 12;
const YEAR: u8 = 13;
const NEWDATE: u8 = 14;
const VARCHAR: u8 = 15;
const BIT: u8 = 16;
const TIMESTAMP2: u8 = 17;
const DATETIME2: u8 = 18;
const TIME2: u8 = 19;
const JSON: u8 = 245;
const NEWDECIMAL: u8 = 246;
const ENUM: u8 = 247;
const SET: u8 = 248;
const TINY_BLOB: u8 = 249;
const MEDIUM_BLOB: u8 = 250;
const LONG_BLOB: u8 = 251;
const BLOB: u8 = 252;
const VAR_STRING: u8 = 253;
const STRING: u8 = 254;
const GEOMETRY: u8 = 255;

/// A table map column's real type: a STRING column may really be an ENUM or a SET (its
/// first metadata byte says so), and its length may borrow two bits from that byte.
/// Returns the real type and, for strings, the column's maximum length in bytes.
fn real_type(c: &MapColumn) -> (u8, usize) {
    match c.ty {
        STRING if c.meta.len() >= 2 => {
            let (b0, b1) = (c.meta[0], c.meta[1] as usize);
            if b0 & 0x30 != 0x30 {
                let max = ((((b0 & 0x30) ^ 0x30) as usize) << 4) | b1;
                (b0 | 0x30, max)
            } else {
                (b0, b1)
            }
        }
        VARCHAR | VAR_STRING if c.meta.len() >= 2 => {
            (c.ty, u16::from_le_bytes([c.meta[0], c.meta[1]]) as usize)
        }
        _ => (c.ty, 0),
    }
}

/// Bytes of the fractional seconds of a TIME2/DATETIME2/TIMESTAMP2 with `fsp` digits.
fn frac_bytes(fsp: u8) -> usize {
    (fsp as usize).div_ceil(2)
}

/// Bytes of a NEWDECIMAL(precision, scale) in the log.
fn decimal_size(precision: u8, scale: u8) -> usize {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let intg = precision.saturating_sub(scale) as usize;
    let frac = scale as usize;
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9]
}

fn meta_byte(c: &MapColumn, i: usize) -> Result<u8, String> {
    c.meta
        .get(i)
        .copied()
        .ok_or_else(|| format!("column type {} without its metadata", c.ty))
}

/// A little-endian unsigned integer of `n` bytes at the start of `data`.
fn le(data: &[u8], n: usize) -> Result<u64, String> {
    let bytes = data
        .get(..n)
        .ok_or_else(|| "a value runs past the end of its event".to_string())?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A big-endian unsigned integer of the given bytes.
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// The length in bytes of one (non-NULL) value of column `c` at the start of `data`.
pub fn value_len(c: &MapColumn, data: &[u8]) -> Result<usize, String> {
    let (ty, max) = real_type(c);
    let prefixed =
        |prefix: usize| -> Result<usize, String> { Ok(prefix + le(data, prefix)? as usize) };
    match ty {
        TINY | YEAR => Ok(1),
        SHORT => Ok(2),
        INT24 | DATE | NEWDATE | TIME => Ok(3),
        LONG | TIMESTAMP => Ok(4),
        LONGLONG | DATETIME => Ok(8),
        NULL => Ok(0),
        FLOAT | DOUBLE => Ok(meta_byte(c, 0)? as usize),
        TIMESTAMP2 => Ok(4 + frac_bytes(meta_byte(c, 0)?)),
        DATETIME2 => Ok(5 + frac_bytes(meta_byte(c, 0)?)),
        TIME2 => Ok(3 + frac_bytes(meta_byte(c, 0)?)),
        NEWDECIMAL => Ok(decimal_size(meta_byte(c, 0)?, meta_byte(c, 1)?)),
        BIT => Ok(meta_byte(c, 1)? as usize + usize::from(meta_byte(c, 0)? > 0)),
        ENUM | SET => Ok(meta_byte(c, 1)? as usize),
        VARCHAR | VAR_STRING | STRING => prefixed(if max < 256 { 1 } else { 2 }),
        JSON | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | BLOB | GEOMETRY => {
            let prefix = meta_byte(c, 0)? as usize;
            if !(1..=4).contains(&prefix) {
                return Err(format!("a blob column with a {prefix}-byte length"));
            }
            prefixed(prefix)
        }
        DECIMAL => Err("a pre-5.0 DECIMAL column (unsupported)".into()),
        other => Err(format!(
            "column type {other}, which pgconverge does not read"
        )),
    }
}

/// The key of one row image. `present`: the event's columns-present bitmap (one flag per
/// column); `keys`: (column position, key type) in key order. Returns the key and the
/// bytes the image took.
pub fn image_key(
    columns: &[MapColumn],
    present: &[bool],
    keys: &[(usize, KeyType)],
    data: &[u8],
) -> Result<(Key, usize), String> {
    if present.len() != columns.len() {
        return Err(format!(
            "the event lists {} columns, its table map {}",
            present.len(),
            columns.len()
        ));
    }
    if let Some(i) = present.iter().position(|p| !p) {
        return Err(format!(
            "column #{} is missing from the row image: the row image is not FULL \
             (binlog_row_image set to MINIMAL or NOBLOB, perhaps by a session)",
            i + 1
        ));
    }
    let n = columns.len();
    let nulls = data
        .get(..n.div_ceil(8))
        .ok_or_else(|| "a row image shorter than its NULL bitmap".to_string())?;
    let mut pos = n.div_ceil(8);
    let mut values: Vec<Option<KeyValue>> = vec![None; keys.len()];
    for (i, c) in columns.iter().enumerate() {
        let null = nulls[i / 8] & (1 << (i % 8)) != 0;
        let key_slot = keys.iter().position(|(k, _)| *k == i);
        if null {
            if key_slot.is_some() {
                return Err(format!("key column #{} is NULL in a row image", i + 1));
            }
            continue;
        }
        let rest = data.get(pos..).unwrap_or_default();
        let len = value_len(c, rest).map_err(|e| format!("column #{}: {e}", i + 1))?;
        let bytes = rest
            .get(..len)
            .ok_or_else(|| format!("column #{}: a value runs past the end of its event", i + 1))?;
        if let Some(slot) = key_slot {
            values[slot] = Some(
                decode(c, bytes, &keys[slot].1)
                    .map_err(|e| format!("key column #{}: {e}", i + 1))?,
            );
        }
        pos += len;
    }
    Ok((values.into_iter().flatten().collect(), pos))
}

/// Which images a rows event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Write,
    Update,
    Delete,
}

/// Every row of a rows event as (key before, key after): a write has only an after
/// image, a delete only a before image, an update both. The images must use up the
/// event's rows data exactly.
pub fn rows_keys(
    kind: RowsKind,
    columns: &[MapColumn],
    before: &[bool],
    after: &[bool],
    keys: &[(usize, KeyType)],
    data: &[u8],
) -> Result<Vec<RowKeys>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let mut image = |present: &[bool]| -> Result<Key, String> {
            let (key, used) = image_key(columns, present, keys, &data[pos..])?;
            pos += used;
            Ok(key)
        };
        let row = match kind {
            RowsKind::Write => (None, Some(image(after)?)),
            RowsKind::Delete => (Some(image(before)?), None),
            RowsKind::Update => {
                let b = image(before)?;
                (Some(b), Some(image(after)?))
            }
        };
        out.push(row);
    }
    if pos != data.len() {
        return Err("the row images do not add up to the event's size".into());
    }
    Ok(out)
}

/// One key column's value from its bytes in the log.
fn decode(c: &MapColumn, b: &[u8], kt: &KeyType) -> Result<KeyValue, String> {
    let (ty, max) = real_type(c);
    let mismatch = || format!("a key of type {kt:?} stored as column type {ty} in the log");
    match (ty, kt) {
        (TINY | SHORT | INT24 | LONG | LONGLONG, KeyType::Int { unsigned }) => {
            let width = b.len() * 8;
            let raw = le(b, b.len())? as i128;
            let v = if !unsigned && raw >= 1i128 << (width - 1) {
                raw - (1i128 << width)
            } else {
                raw
            };
            Ok(KeyValue::Int(v))
        }
        // The log stores YEAR as the year - 1900, and 0 for the zero year 0000.
        (YEAR, KeyType::Year) => Ok(KeyValue::Int(match b[0] {
            0 => 0,
            y => 1900 + i128::from(y),
        })),
        (ENUM | SET, KeyType::Enum { .. } | KeyType::Set { .. }) => {
            Ok(KeyValue::Int(le(b, b.len())? as i128))
        }
        (VARCHAR | VAR_STRING | STRING, KeyType::Str { .. } | KeyType::Binary { .. }) => {
            let prefix = if max < 256 { 1 } else { 2 };
            let mut v = b[prefix..].to_vec();
            // The server packs a binary(n) without its trailing zero bytes.
            if let KeyType::Binary { len: Some(n) } = kt
                && v.len() < *n
            {
                v.resize(*n, 0);
            }
            Ok(KeyValue::Bytes(v))
        }
        (BIT, KeyType::Bit) => Ok(KeyValue::Bytes(b.to_vec())),
        (NEWDECIMAL, KeyType::Decimal) => {
            decimal_text(b, meta_byte(c, 0)?, meta_byte(c, 1)?).map(KeyValue::Text)
        }
        (DATE | NEWDATE, KeyType::Date) => {
            let v = le(b, 3)?;
            Ok(KeyValue::Text(format!(
                "{:04}-{:02}-{:02}",
                v >> 9,
                (v >> 5) & 15,
                v & 31
            )))
        }
        (DATETIME2, KeyType::DateTime) => datetime2_text(b, meta_byte(c, 0)?).map(KeyValue::Text),
        (DATETIME, KeyType::DateTime) => {
            let v = le(b, 8)?;
            let (d, t) = (v / 1_000_000, v % 1_000_000);
            Ok(KeyValue::Text(format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                d / 10000,
                d / 100 % 100,
                d % 100,
                t / 10000,
                t / 100 % 100,
                t % 100
            )))
        }
        (TIMESTAMP2, KeyType::Timestamp) => {
            let fsp = meta_byte(c, 0)?;
            let secs = be(&b[..4]);
            let frac = frac_micros(&b[4..], fsp);
            timestamp_text(secs, frac).map(KeyValue::Text)
        }
        (TIMESTAMP, KeyType::Timestamp) => timestamp_text(le(b, 4)?, 0).map(KeyValue::Text),
        _ => Err(mismatch()),
    }
}

/// Fractional seconds of a temporal value (big-endian, unsigned here) as microseconds.
fn frac_micros(b: &[u8], fsp: u8) -> u64 {
    let v = be(&b[..frac_bytes(fsp).min(b.len())]);
    match frac_bytes(fsp) {
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    }
}

/// A DATETIME2: 40 bits (sign, year*13+month, day, hour, minute, second), then the
/// fraction.
fn datetime2_text(b: &[u8], fsp: u8) -> Result<String, String> {
    if b.len() < 5 {
        return Err("a DATETIME2 shorter than 5 bytes".into());
    }
    let packed = be(&b[..5]) as i64 - 0x80_0000_0000;
    if packed < 0 {
        return Err("a negative DATETIME2".into());
    }
    let packed = packed as u64;
    let ymd = packed >> 17;
    let ym = ymd >> 5;
    let hms = packed % (1 << 17);
    let us = frac_micros(&b[5..], fsp);
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{us:06}",
        ym / 13,
        ym % 13,
        ymd % 32,
        hms >> 12,
        (hms >> 6) % 64,
        hms % 64
    ))
}

/// A TIMESTAMP as the UTC text the export's sessions (`time_zone = '+00:00'`) read and
/// write; 0 is the zero timestamp.
fn timestamp_text(secs: u64, micros: u64) -> Result<String, String> {
    if secs == 0 && micros == 0 {
        return Ok("0000-00-00 00:00:00".into());
    }
    let t = chrono::DateTime::from_timestamp(secs as i64, (micros * 1000) as u32)
        .ok_or_else(|| format!("a TIMESTAMP of {secs} s out of range"))?;
    Ok(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

/// A NEWDECIMAL(precision, scale) in its text form (`-12345678.1234`): groups of nine
/// digits in four big-endian bytes, a shorter group at each end, the sign in the first
/// bit (a negative value has every bit inverted).
fn decimal_text(b: &[u8], precision: u8, scale: u8) -> Result<String, String> {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let size = decimal_size(precision, scale);
    if b.len() != size || size == 0 {
        return Err(format!(
            "a DECIMAL({precision},{scale}) of {} bytes",
            b.len()
        ));
    }
    let mut v = b.to_vec();
    let negative = v[0] & 0x80 == 0;
    v[0] ^= 0x80;
    if negative {
        v.iter_mut().for_each(|x| *x = !*x);
    }
    let intg = precision.saturating_sub(scale) as usize;
    let frac = scale as usize;
    let mut pos = 0;
    let mut take = |n: usize| {
        let x = be(&v[pos..pos + n]);
        pos += n;
        x
    };
    let mut int_digits = String::new();
    let lead = intg % 9;
    if lead > 0 {
        write!(int_digits, "{}", take(DIG2BYTES[lead])).ok();
    }
    for _ in 0..intg / 9 {
        write!(int_digits, "{:09}", take(4)).ok();
    }
    let int_digits = int_digits.trim_start_matches('0');
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    text.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    if frac > 0 {
        text.push('.');
        for _ in 0..frac / 9 {
            write!(text, "{:09}", take(4)).ok();
        }
        let tail = frac % 9;
        if tail > 0 {
            write!(text, "{:0width$}", take(DIG2BYTES[tail]), width = tail).ok();
        }
    }
    Ok(text)
}

/// A key value read back from the server in text (`key_read` says how to select it).
pub fn from_text(kt: &KeyType, text: &[u8]) -> Result<KeyValue, String> {
    let s = || String::from_utf8_lossy(text).into_owned();
    match kt {
        KeyType::Int { .. } | KeyType::Year => s()
            .trim()
            .parse::<i128>()
            .map(KeyValue::Int)
            .map_err(|_| format!("`{}` is not an integer key", s())),
        KeyType::Decimal | KeyType::Date | KeyType::DateTime | KeyType::Timestamp => {
            Ok(KeyValue::Text(s()))
        }
        // Read as HEX(CAST(c AS BINARY)): the stored bytes.
        KeyType::Str { .. }
        | KeyType::Binary { .. }
        | KeyType::Enum { .. }
        | KeyType::Set { .. }
        | KeyType::Bit => hex::decode(text)
            .map(KeyValue::Bytes)
            .map_err(|_| format!("`{}` is not hexadecimal", s())),
    }
}

/// How a key column is selected so that [`from_text`] can read it exactly: strings and
/// bits as the hex of their stored bytes, everything else in its text form (the session
/// is UTC, so a TIMESTAMP reads as the UTC text the log's value decodes to).
pub fn key_read(kt: &KeyType, quoted_column: &str) -> String {
    match kt {
        KeyType::Str { .. }
        | KeyType::Binary { .. }
        | KeyType::Enum { .. }
        | KeyType::Set { .. }
        | KeyType::Bit => format!("HEX(CAST({quoted_column} AS BINARY))"),
        _ => quoted_column.to_string(),
    }
}

/// A key value as an SQL literal that a column of the key's own type takes exactly: an
/// ENUM by index or label, a SET by mask or labels, a string with its character set's
/// introducer (so it is compared under the column's collation), a binary or bit string
/// as hex, a date or decimal as its text. Characters outside their form are refused.
pub fn literal(kt: &KeyType, v: &KeyValue) -> Result<String, String> {
    let charset_ok = |cs: &str| cs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (kt, v) {
        (_, KeyValue::Int(i)) => Ok(i.to_string()),
        (
            KeyType::Str { charset } | KeyType::Enum { charset } | KeyType::Set { charset },
            KeyValue::Bytes(b),
        ) if charset_ok(charset) => Ok(format!("_{charset} X'{}'", hex::encode(b))),
        (KeyType::Binary { .. } | KeyType::Bit, KeyValue::Bytes(b)) => {
            Ok(format!("X'{}'", hex::encode(b)))
        }
        (KeyType::Decimal, KeyValue::Text(t))
            if !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == '.') =>
        {
            Ok(t.clone())
        }
        (KeyType::Date | KeyType::DateTime | KeyType::Timestamp, KeyValue::Text(t))
            if t.chars().all(|c| c.is_ascii_digit() || " -:.".contains(c)) =>
        {
            Ok(format!("'{t}'"))
        }
        _ => Err(format!("a {kt:?} key cannot be written from {v:?}")),
    }
}

/// A key as people read it in messages: `id=42`, `(a=1, b=x)`.
pub fn show(names: &[String], key: &Key) -> String {
    let part = |(n, v): (&String, &KeyValue)| {
        let v = match v {
            KeyValue::Int(i) => i.to_string(),
            KeyValue::Text(t) => t.clone(),
            KeyValue::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if !s.chars().any(char::is_control) && !s.is_empty() => s.to_string(),
                _ => format!("0x{}", hex::encode(b)),
            },
        };
        format!("{n}={v}")
    };
    let parts: Vec<String> = names.iter().zip(key).map(part).collect();
    match parts.as_slice() {
        [one] => one.clone(),
        _ => format!("({})", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: u8, meta: &[u8]) -> MapColumn {
        MapColumn {
            ty,
            meta: meta.to_vec(),
        }
    }

    #[test]
    fn key_types_follow_the_catalog_and_refuse_what_cannot_be_followed() {
        assert_eq!(
            key_type("bigint", "bigint(20) unsigned", None),
            Ok(KeyType::Int { unsigned: true })
        );
        assert_eq!(
            key_type("binary", "binary(16)", None),
            Ok(KeyType::Binary { len: Some(16) })
        );
        assert_eq!(
            key_type("char", "char(36)", Some("latin1")),
            Ok(KeyType::Str {
                charset: "latin1".into()
            })
        );
        for refused in ["float", "double", "time", "json", "uuid", "inet6", "blob"] {
            assert!(key_type(refused, refused, None).is_err(), "{refused}");
        }
    }

    #[test]
    fn lengths_of_every_column_type() {
        let cases: Vec<(MapColumn, Vec<u8>, usize)> = vec![
            (col(TINY, &[]), vec![1], 1),
            (col(SHORT, &[]), vec![1, 2], 2),
            (col(INT24, &[]), vec![1, 2, 3], 3),
            (col(LONG, &[]), vec![0; 4], 4),
            (col(LONGLONG, &[]), vec![0; 8], 8),
            (col(FLOAT, &[4]), vec![0; 4], 4),
            (col(DOUBLE, &[8]), vec![0; 8], 8),
            (col(YEAR, &[]), vec![0], 1),
            (col(NEWDATE, &[]), vec![0; 3], 3),
            (col(TIMESTAMP2, &[0]), vec![0; 4], 4),
            (col(TIMESTAMP2, &[6]), vec![0; 7], 7),
            (col(DATETIME2, &[3]), vec![0; 7], 7),
            (col(TIME2, &[2]), vec![0; 4], 4),
            // decimal(12,4): 8 integer digits (4 bytes) + 4 fraction digits (2 bytes)
            (col(NEWDECIMAL, &[12, 4]), vec![0; 6], 6),
            // decimal(65,30): 35 digits = 3*4 + 4 bytes; 30 = 3*4 + 2
            (col(NEWDECIMAL, &[65, 30]), vec![0; 30], 30),
            // bit(10): one whole byte and 2 bits
            (col(BIT, &[2, 1]), vec![0; 2], 2),
            (col(BIT, &[0, 8]), vec![0; 8], 8),
            // varchar(10) latin1: max 10 -> 1-byte length
            (col(VARCHAR, &[10, 0]), vec![3, b'a', b'b', b'c'], 4),
            // varchar(300): 2-byte length
            (col(VARCHAR, &[0x2c, 1]), vec![2, 0, b'a', b'b'], 4),
            // char(5): STRING, real type 254, length 5
            (col(STRING, &[254, 5]), vec![2, b'a', b'b'], 3),
            // char(255) utf8mb4 = 1020 bytes: the length borrows bits from the type byte
            (col(STRING, &[0xce, 0xfc]), vec![1, 0, b'x'], 3),
            (col(STRING, &[ENUM, 2]), vec![1, 0], 2),
            (col(STRING, &[SET, 1]), vec![5], 1),
            (col(BLOB, &[2]), vec![3, 0, 1, 2, 3], 5),
            (col(BLOB, &[4]), vec![1, 0, 0, 0, 9], 5),
            (col(JSON, &[4]), vec![0, 0, 0, 0], 4),
            (col(GEOMETRY, &[4]), vec![2, 0, 0, 0, 1, 2], 6),
        ];
        for (c, data, want) in cases {
            assert_eq!(value_len(&c, &data), Ok(want), "{c:?}");
        }
        assert!(value_len(&col(DECIMAL, &[]), &[]).is_err());
        assert!(value_len(&col(20, &[]), &[]).is_err());
        assert!(
            value_len(&col(BLOB, &[2]), &[5]).is_err(),
            "runs past the end"
        );
    }

    #[test]
    fn integers_take_their_sign_from_the_catalog() {
        let unsigned = KeyType::Int { unsigned: true };
        let signed = KeyType::Int { unsigned: false };
        let cases = [
            (TINY, vec![0xff], &unsigned, 255i128),
            (TINY, vec![0x80], &signed, -128),
            (SHORT, vec![0xff, 0xff], &unsigned, 65535),
            (INT24, vec![0xff, 0xff, 0xff], &unsigned, 16_777_215),
            (INT24, vec![0x00, 0x00, 0x80], &signed, -8_388_608),
            (LONG, vec![0xff; 4], &unsigned, 4_294_967_295),
            (LONGLONG, vec![0xff; 8], &unsigned, u64::MAX as i128),
            (LONGLONG, vec![0xff; 8], &signed, -1),
            (
                LONGLONG,
                vec![0, 0, 0, 0, 0, 0, 0, 0x80],
                &signed,
                i64::MIN as i128,
            ),
        ];
        for (ty, bytes, kt, want) in cases {
            assert_eq!(decode(&col(ty, &[]), &bytes, kt), Ok(KeyValue::Int(want)));
        }
    }

    #[test]
    fn strings_years_and_binary_padding() {
        let b16 = KeyType::Binary { len: Some(4) };
        assert_eq!(
            decode(&col(STRING, &[254, 4]), &[1, 0x01], &b16),
            Ok(KeyValue::Bytes(vec![1, 0, 0, 0]))
        );
        let s = KeyType::Str {
            charset: "utf8mb4".into(),
        };
        assert_eq!(
            decode(&col(STRING, &[254, 144]), &[0], &s),
            Ok(KeyValue::Bytes(vec![])),
            "'' in char(36)"
        );
        assert_eq!(
            decode(&col(YEAR, &[]), &[0], &KeyType::Year),
            Ok(KeyValue::Int(0))
        );
        assert_eq!(
            decode(&col(YEAR, &[]), &[255], &KeyType::Year),
            Ok(KeyValue::Int(2155))
        );
        assert!(
            decode(&col(LONG, &[]), &[0; 4], &s).is_err(),
            "type mismatch"
        );
    }

    #[test]
    fn temporal_and_decimal_keys() {
        // 2024-02-29 = 2024 << 9 | 2 << 5 | 29
        let d = (2024u32 << 9) | (2 << 5) | 29;
        assert_eq!(
            decode(&col(NEWDATE, &[]), &d.to_le_bytes()[..3], &KeyType::Date),
            Ok(KeyValue::Text("2024-02-29".into()))
        );
        // 2024-01-02 03:04:05.678, fsp 3
        let ym = 2024u64 * 13 + 1;
        let packed = (((ym << 5) | 2) << 17) | (3 << 12) | (4 << 6) | 5;
        let mut b = (packed + 0x80_0000_0000).to_be_bytes()[3..].to_vec();
        b.extend_from_slice(&6780u16.to_be_bytes());
        assert_eq!(
            decode(&col(DATETIME2, &[3]), &b, &KeyType::DateTime),
            Ok(KeyValue::Text("2024-01-02 03:04:05.678000".into()))
        );
        let zero = 0x80_0000_0000u64.to_be_bytes()[3..].to_vec();
        assert_eq!(
            decode(&col(DATETIME2, &[0]), &zero, &KeyType::DateTime),
            Ok(KeyValue::Text("0000-00-00 00:00:00.000000".into()))
        );
        let mut ts = 1_704_164_645u32.to_be_bytes().to_vec();
        ts.extend_from_slice(&[0x01, 0xe2, 0x40]); // 123456 us, fsp 6
        assert_eq!(
            decode(&col(TIMESTAMP2, &[6]), &ts, &KeyType::Timestamp),
            Ok(KeyValue::Text("2024-01-02 03:04:05.123456".into()))
        );
        assert_eq!(
            decode(&col(TIMESTAMP2, &[0]), &[0; 4], &KeyType::Timestamp),
            Ok(KeyValue::Text("0000-00-00 00:00:00".into()))
        );
        // decimal(12,4) -12345678.1234: 12345678 in 4 bytes, 1234 in 2, sign bit, inverted
        let mut dec = 12_345_678u32.to_be_bytes().to_vec();
        dec.extend_from_slice(&1234u16.to_be_bytes());
        dec[0] |= 0x80;
        let neg: Vec<u8> = dec.iter().map(|x| !x).collect();
        assert_eq!(decimal_text(&dec, 12, 4), Ok("12345678.1234".into()));
        assert_eq!(decimal_text(&neg, 12, 4), Ok("-12345678.1234".into()));
        // -0.0001 in decimal(5,4): integer part 1 digit (1 byte), fraction 4 digits (2 bytes)
        let mut small = vec![0x80, 0x00, 0x01];
        small.iter_mut().for_each(|x| *x = !*x);
        assert_eq!(decimal_text(&small, 5, 4), Ok("-0.0001".into()));
        assert_eq!(decimal_text(&[0x80, 0, 0], 5, 4), Ok("0.0000".into()));
        // decimal(20,0): 2 digits + 2 groups of 9
        let mut big = vec![0x80 | 12];
        big.extend_from_slice(&345_678_901u32.to_be_bytes());
        big.extend_from_slice(&234_567_890u32.to_be_bytes());
        assert_eq!(decimal_text(&big, 20, 0), Ok("12345678901234567890".into()));
    }

    #[test]
    fn rows_walk_every_column_and_decode_only_the_key() {
        // (id int unsigned, note varchar(10), t time(2)) with id the key; the TIME2 value
        // is negative, which the reader skips by its length without decoding it.
        let columns = vec![col(LONG, &[]), col(VARCHAR, &[10, 0]), col(TIME2, &[2])];
        let keys = vec![(0, KeyType::Int { unsigned: true })];
        let all = vec![true; 3];
        let image = |id: u32, note: &[u8], null_note: bool| {
            let mut v = vec![if null_note { 0b010 } else { 0 }];
            v.extend_from_slice(&id.to_le_bytes());
            if !null_note {
                v.push(note.len() as u8);
                v.extend_from_slice(note);
            }
            v.extend_from_slice(&[0x7f, 0xff, 0xff, 0x9c]);
            v
        };
        let mut data = image(u32::MAX, b"abc", false);
        data.extend(image(7, b"", true));
        let rows = rows_keys(RowsKind::Update, &columns, &all, &all, &keys, &data).unwrap();
        assert_eq!(
            rows,
            vec![(
                Some(vec![KeyValue::Int(u32::MAX as i128)]),
                Some(vec![KeyValue::Int(7)])
            )]
        );
        // A minimal image, or a short event, is an error, never a guess.
        let minimal = vec![true, false, false];
        assert!(
            rows_keys(RowsKind::Delete, &columns, &minimal, &all, &keys, &data)
                .unwrap_err()
                .contains("not FULL")
        );
        assert!(
            rows_keys(
                RowsKind::Write,
                &columns,
                &all,
                &all,
                &keys,
                &data[..data.len() - 1]
            )
            .is_err()
        );
    }

    #[test]
    fn literals_compare_under_the_column_type() {
        let s = KeyType::Str {
            charset: "latin1".into(),
        };
        assert_eq!(
            literal(&s, &KeyValue::Bytes(vec![0xe9])),
            Ok("_latin1 X'e9'".into())
        );
        assert_eq!(
            literal(&s, &KeyValue::Bytes(vec![])),
            Ok("_latin1 X''".into())
        );
        assert_eq!(
            literal(
                &KeyType::Binary { len: Some(2) },
                &KeyValue::Bytes(vec![1, 0])
            ),
            Ok("X'0100'".into())
        );
        assert_eq!(
            literal(
                &KeyType::Int { unsigned: true },
                &KeyValue::Int(u64::MAX as i128)
            ),
            Ok("18446744073709551615".into())
        );
        assert_eq!(
            literal(
                &KeyType::DateTime,
                &KeyValue::Text("2024-01-02 03:04:05.000000".into())
            ),
            Ok("'2024-01-02 03:04:05.000000'".into())
        );
        assert!(literal(&KeyType::Date, &KeyValue::Text("1'; DROP".into())).is_err());
        assert!(literal(&KeyType::Decimal, &KeyValue::Text("1e5".into())).is_err());
        assert!(
            literal(
                &KeyType::Str {
                    charset: "x y".into()
                },
                &KeyValue::Bytes(vec![])
            )
            .is_err()
        );
        assert_eq!(from_text(&s, b"E9"), Ok(KeyValue::Bytes(vec![0xe9])));
        assert_eq!(key_read(&s, "`k`"), "HEX(CAST(`k` AS BINARY))");
        assert_eq!(
            show(
                &["a".into(), "b".into()],
                &vec![KeyValue::Int(1), KeyValue::Bytes(vec![0])]
            ),
            "(a=1, b=0x00)"
        );
    }
}
