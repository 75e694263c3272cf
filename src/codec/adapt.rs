//! PURE: how a value changes on its way from a source column into a target column of
//! another kind, when PostgreSQL's own input function would read it wrongly or refuse
//! it. Which adaptation a column gets is decided by the import plan from the manifest's
//! facts and the target catalog (`import::adapt`); the binary converter and the
//! rewritten CSV stream both apply it here, so both paths load the same values.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{geometry, rules};

/// The byte order of a UUID held in 16 bytes: as its text reads (`UUID_TO_BIN(x)`), or
/// with the time fields swapped to the front (`UUID_TO_BIN(x, 1)`, MySQL 8's
/// index-friendly form).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UuidOrder {
    #[default]
    Straight,
    Swapped,
}

/// One column's adaptation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapt {
    /// The value travels as it is.
    None,
    /// `''` becomes NULL (a string headed for `uuid`).
    EmptyToNull,
    /// MySQL SET text `a,b` becomes the array `{a,b}`; `''` becomes `{}`.
    SetToArray,
    /// MySQL's truth: 0 is false, any other integer true.
    IntToBool,
    /// A datetime becomes its date part.
    DateTimeToDate,
    /// MySQL's stored geometry (`\x` hex of SRID + WKB) in a PostgreSQL geometric
    /// type's text form, or as PostGIS EWKB.
    Geometry(geometry::Form),
    /// 16 bytes (`\x` + 32 hex digits) as a UUID's text, in the given byte order.
    BytesToUuid(UuidOrder),
}

impl Adapt {
    /// What it does, for the plan and the journal.
    pub fn describe(self) -> &'static str {
        match self {
            Adapt::None => "unchanged",
            Adapt::EmptyToNull => "'' -> NULL",
            Adapt::SetToArray => "SET 'a,b' -> array {a,b}",
            Adapt::IntToBool => "integer -> boolean (0 false, anything else true)",
            Adapt::DateTimeToDate => "datetime -> its date",
            Adapt::Geometry(geometry::Form::Point) => "geometry -> point",
            Adapt::Geometry(geometry::Form::Lseg) => "geometry -> lseg",
            Adapt::Geometry(geometry::Form::Path) => "geometry -> path",
            Adapt::Geometry(geometry::Form::Polygon) => "geometry -> polygon",
            Adapt::Geometry(geometry::Form::Box) => "geometry -> box",
            Adapt::Geometry(geometry::Form::Ewkb) => "geometry -> PostGIS EWKB with its SRID",
            Adapt::BytesToUuid(UuidOrder::Straight) => "16 bytes -> uuid",
            Adapt::BytesToUuid(UuidOrder::Swapped) => {
                "16 bytes -> uuid, time fields swapped back (UUID_TO_BIN(x, 1))"
            }
        }
    }

    /// What a count of `n` values means for this adaptation, for the plan (None: no
    /// count is kept).
    pub fn counted(self, n: u64) -> Option<String> {
        match self {
            Adapt::EmptyToNull => Some(match n {
                1 => "1 value was ''".into(),
                n => format!("{n} values were ''"),
            }),
            Adapt::IntToBool => Some(match n {
                1 => "1 value other than 0/1 becomes true".into(),
                n => format!("{n} values other than 0/1 become true"),
            }),
            Adapt::DateTimeToDate => Some(match n {
                1 => "1 value loses a time of day".into(),
                n => format!("{n} values lose a time of day"),
            }),
            Adapt::None | Adapt::SetToArray | Adapt::Geometry(_) | Adapt::BytesToUuid(_) => None,
        }
    }

    /// The value as the target reads it (PostgreSQL's text form); None is NULL.
    pub fn apply(self, v: &[u8]) -> Option<Cow<'_, [u8]>> {
        Some(match self {
            Adapt::None => Cow::Borrowed(v),
            Adapt::EmptyToNull if v.is_empty() => return None,
            Adapt::EmptyToNull => Cow::Borrowed(v),
            Adapt::SetToArray => Cow::Owned(set_to_array(v)),
            Adapt::IntToBool => Cow::Borrowed(if is_zero(v) { b"f" } else { b"t" }),
            Adapt::DateTimeToDate => Cow::Borrowed(&v[..v.len().min(10)]),
            // A value that cannot be converted (the plan refused such columns from the
            // export's facts) goes as it is, for PostgreSQL to refuse by name.
            Adapt::Geometry(form) => {
                match rules::from_bytea_hex(v).and_then(|bytes| geometry::to_text(&bytes, form)) {
                    Some(text) => Cow::Owned(text),
                    None => Cow::Borrowed(v),
                }
            }
            // Likewise a value that is not 16 bytes goes as it is.
            Adapt::BytesToUuid(order) => match rules::from_bytea_hex(v)
                .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok())
            {
                Some(bytes) => Cow::Owned(uuid_text(bytes, order).into_bytes()),
                None => Cow::Borrowed(v),
            },
        })
    }
}

/// A UUID's text from its 16 bytes in `order`.
pub fn uuid_text(mut b: [u8; 16], order: UuidOrder) -> String {
    if order == UuidOrder::Swapped {
        // UUID_TO_BIN(x, 1) stores time_hi (2 bytes), time_mid (2), time_low (4), rest.
        let (hi, mid, low) = ([b[0], b[1]], [b[2], b[3]], [b[4], b[5], b[6], b[7]]);
        b[..4].copy_from_slice(&low);
        b[4..6].copy_from_slice(&mid);
        b[6..8].copy_from_slice(&hi);
    }
    uuid::Uuid::from_bytes(b).hyphenated().to_string()
}

/// `0`, `-0`, `000`: MySQL's false.
fn is_zero(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    !digits.is_empty() && digits.iter().all(|&b| b == b'0')
}

/// MySQL SET text (labels joined by commas; labels cannot contain commas) as a
/// PostgreSQL array literal, each element quoted when the array syntax needs it.
pub fn set_to_array(v: &[u8]) -> Vec<u8> {
    let mut out = vec![b'{'];
    if !v.is_empty() {
        for (i, e) in v.split(|&b| b == b',').enumerate() {
            if i > 0 {
                out.push(b',');
            }
            array_element(e, &mut out);
        }
    }
    out.push(b'}');
    out
}

/// One element of an array literal: quoted (with `\` before `"` and `\`) when it is
/// empty, `NULL` in any case, or holds a character the array syntax reads.
fn array_element(e: &[u8], out: &mut Vec<u8>) {
    let special = e.is_empty()
        || e.eq_ignore_ascii_case(b"NULL")
        || e.iter()
            .any(|b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace());
    if !special {
        out.extend_from_slice(e);
        return;
    }
    out.push(b'"');
    for &b in e {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_adaptation_on_the_nasty_values() {
        type Case<'a> = (Adapt, &'a [u8], Option<&'a [u8]>);
        let cases: &[Case] = &[
            (Adapt::None, b"", Some(b"")),
            (Adapt::EmptyToNull, b"", None),
            (Adapt::EmptyToNull, b"x", Some(b"x")),
            (Adapt::SetToArray, b"", Some(b"{}")),
            (Adapt::SetToArray, b"a,b", Some(b"{a,b}")),
            (
                Adapt::SetToArray,
                b"x y,NULL,null",
                Some(b"{\"x y\",\"NULL\",\"null\"}"),
            ),
            (Adapt::SetToArray, b"{,}", Some(b"{\"{\",\"}\"}")),
            (Adapt::SetToArray, b"q\"\\", Some(b"{\"q\\\"\\\\\"}")),
            (Adapt::IntToBool, b"0", Some(b"f")),
            (Adapt::IntToBool, b"-0", Some(b"f")),
            (Adapt::IntToBool, b"1", Some(b"t")),
            (Adapt::IntToBool, b"2", Some(b"t")),
            (Adapt::IntToBool, b"-1", Some(b"t")),
            (
                Adapt::DateTimeToDate,
                b"2024-02-29 23:59:59.999999",
                Some(b"2024-02-29"),
            ),
            (Adapt::DateTimeToDate, b"2024-02-29", Some(b"2024-02-29")),
            (
                Adapt::BytesToUuid(UuidOrder::Straight),
                b"\\x6ccd780cbaba102695645b8c656024db",
                Some(b"6ccd780c-baba-1026-9564-5b8c656024db"),
            ),
            // MySQL 8: UUID_TO_BIN('6ccd780c-baba-1026-9564-5b8c656024db', 1).
            (
                Adapt::BytesToUuid(UuidOrder::Swapped),
                b"\\x1026baba6ccd780c95645b8c656024db",
                Some(b"6ccd780c-baba-1026-9564-5b8c656024db"),
            ),
            // Not 16 bytes: as it is, for PostgreSQL to refuse by name.
            (
                Adapt::BytesToUuid(UuidOrder::Straight),
                b"\\x00ff",
                Some(b"\\x00ff"),
            ),
        ];
        for (a, v, want) in cases {
            assert_eq!(a.apply(v).as_deref(), *want, "{a:?} {v:?}");
        }
    }
}
