//! PURE: what the export learns of each column's values as it encodes them, for the
//! manifest: counters of every rewrite (`ColumnStats`), sample keys, integer ranges and
//! byte lengths with the rows holding them (kept as numbers and key buffers, made into
//! text once), and small domains (`DomainValue`). Fed by `encode::RowEncoder`.

use serde::{Deserialize, Serialize};

use super::encode::{Rule, row_key};
use super::{geometry, rules};
/// Counters of one column; names are the manifest's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub nulls_written: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    /// `''` turned NULL in a `char(36)` column.
    pub empty_uuid_to_null: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub zero_date_to_null: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hex: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bits: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub base64: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nul_stripped: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalid_utf8_replaced: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub json_nul_dropped: u64,
    /// JSON values holding the escape `\u0000`, written as they are (a `json` or text
    /// target holds them; the import refuses them for `jsonb`, which cannot).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub json_nul_kept: u64,
    /// Non-empty values of a string column that are not UUIDs (they would fail a `uuid`
    /// target column).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_uuid: u64,
    /// `''` written (a string column; in `char(36)` they became NULL instead).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub empty_strings: u64,
    /// Integer values other than 0 and 1 (MySQL's truth makes them true in a `boolean`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_boolean: u64,
    /// Datetimes whose time part is not midnight (a `date` target drops it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_midnight: u64,
    /// TIME values outside 00:00:00-23:59:59 (a `time` target refuses them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub out_of_day: u64,
    /// Values the server could not convert to UTF-8 without loss, kept as converted
    /// (`?` for what had no mapping) under `--on-invalid fix`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unconvertible_kept: u64,
}

impl ColumnStats {
    /// Add another part's counters (a table read as several key ranges).
    pub fn add(&mut self, o: &ColumnStats) {
        self.nulls_written += o.nulls_written;
        self.empty_uuid_to_null += o.empty_uuid_to_null;
        self.zero_date_to_null += o.zero_date_to_null;
        self.hex += o.hex;
        self.bits += o.bits;
        self.base64 += o.base64;
        self.nul_stripped += o.nul_stripped;
        self.invalid_utf8_replaced += o.invalid_utf8_replaced;
        self.json_nul_dropped += o.json_nul_dropped;
        self.json_nul_kept += o.json_nul_kept;
        self.non_uuid += o.non_uuid;
        self.empty_strings += o.empty_strings;
        self.non_boolean += o.non_boolean;
        self.non_midnight += o.non_midnight;
        self.out_of_day += o.out_of_day;
        self.unconvertible_kept += o.unconvertible_kept;
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Which facts the export records of a column's values (beyond its rewrites): what the
/// import needs to decide, before any write, how each value fits its target column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// char, varchar, text, enum, set: `''`, non-UUIDs, and the values while few.
    String,
    /// Integers: values other than 0/1.
    Integer,
    /// datetime, timestamp: a time part other than midnight.
    DateTime,
    /// time: values outside one day.
    Time,
    /// Spatial types: which kinds of geometry occur, and their SRIDs.
    Geometry,
    /// Bytes (binary, varbinary, blobs, bytea): the shortest and longest value (16 bytes
    /// each can be a uuid).
    Bytes,
    /// decimal / numeric: how many fraction digits the values really use.
    Decimal,
    /// float / double: the same, from their text (its exponent counted). Both: the most
    /// digits before the point.
    Float,
    /// JSON: its text's most characters (a `varchar(n)` target holds them or not).
    Json,
}

impl Check {
    /// The check for a column of this `DATA_TYPE` (any case).
    pub fn for_type(data_type: &str) -> Check {
        match data_type.to_ascii_lowercase().as_str() {
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" => Check::String,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Check::Integer,
            "datetime" | "timestamp" => Check::DateTime,
            "time" => Check::Time,
            "decimal" | "numeric" => Check::Decimal,
            "float" | "double" | "real" | "double precision" => Check::Float,
            "json" => Check::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Check::Geometry,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Check::Bytes
            }
            _ => Check::None,
        }
    }

    /// The facts recorded for a PostgreSQL source's column, from its base type's name.
    pub fn for_pg_type(data_type: &str) -> Check {
        match data_type {
            "text" | "varchar" | "bpchar" | "citext" | "name" | "enum" => Check::String,
            "int2" | "int4" | "int8" => Check::Integer,
            "timestamp" | "timestamptz" => Check::DateTime,
            "time" => Check::Time,
            "numeric" => Check::Decimal,
            "float4" | "float8" => Check::Float,
            "json" | "jsonb" => Check::Json,
            "bytea" => Check::Bytes,
            _ => Check::None,
        }
    }
}

/// The smallest and largest of a column's values (integers: the value; bytes: the
/// length), each with the key of a row that holds it: what a target type's range is
/// checked against before any write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extremes {
    pub min: String,
    pub min_key: String,
    pub max: String,
    pub max_key: String,
}

impl Extremes {
    /// The extremes as numbers (they are written from numbers).
    pub fn bounds(&self) -> Option<(i128, i128)> {
        Some((self.min.parse().ok()?, self.max.parse().ok()?))
    }

    #[cfg(test)]
    pub(super) fn first(n: i128, key: String) -> Extremes {
        Extremes {
            min: n.to_string(),
            min_key: key.clone(),
            max: n.to_string(),
            max_key: key,
        }
    }

    /// Add another part's extremes.
    pub(super) fn merge(&mut self, o: &Extremes) {
        let (Some((min, max)), Some((omin, omax))) = (self.bounds(), o.bounds()) else {
            return;
        };
        if omin < min {
            self.min = o.min.clone();
            self.min_key = o.min_key.clone();
        }
        if omax > max {
            self.max = o.max.clone();
            self.max_key = o.max_key.clone();
        }
    }
}

/// The row being encoded, as much of it as a key needs.
pub(super) struct RowRef<'a> {
    pub(super) values: &'a [Option<&'a [u8]>],
    pub(super) pk: &'a [usize],
    pub(super) ordinal: u64,
}

/// A row's primary-key values copied into buffers that are reused: what names a row
/// holding an extreme, made into its text ([`row_key`]) once, at the end. A column whose
/// values rise row by row (a serial key) has a new maximum in every row: naming it then
/// would format and allocate a key per row.
#[derive(Debug, Clone, Default)]
struct KeyBuf {
    ordinal: u64,
    values: Vec<Option<Vec<u8>>>,
}

impl KeyBuf {
    fn capture(&mut self, row: &RowRef) {
        self.ordinal = row.ordinal;
        self.values.resize_with(row.pk.len(), || None);
        for (slot, &i) in self.values.iter_mut().zip(row.pk) {
            match row.values.get(i).copied().flatten() {
                None => *slot = None,
                Some(b) => {
                    let buf = slot.get_or_insert_with(Vec::new);
                    buf.clear();
                    buf.extend_from_slice(b);
                }
            }
        }
    }

    pub(super) fn text(&self, pk: &[usize], names: &[String]) -> String {
        let mut values: Vec<Option<&[u8]>> = vec![None; names.len()];
        for (v, &i) in self.values.iter().zip(pk) {
            if let Some(slot) = values.get_mut(i) {
                *slot = v.as_deref();
            }
        }
        row_key(&values, pk, names, self.ordinal)
    }
}

/// [`Extremes`] while the rows are read: the numbers as numbers, the keys as copied
/// values, both turned into text once by [`Running::extremes`].
#[derive(Debug, Clone)]
pub(super) struct Running {
    min: i128,
    max: i128,
    min_key: KeyBuf,
    max_key: KeyBuf,
}

impl Running {
    pub(super) fn extremes(&self, pk: &[usize], names: &[String]) -> Extremes {
        Extremes {
            min: self.min.to_string(),
            min_key: self.min_key.text(pk, names),
            max: self.max.to_string(),
            max_key: self.max_key.text(pk, names),
        }
    }
}

/// Observe `n` in `slot` (the first value starts it); the row's key is copied only when
/// `n` is a new extreme.
fn extreme(slot: &mut Option<Running>, n: i128, row: &RowRef) {
    match slot {
        Some(r) => {
            if n < r.min {
                r.min = n;
                r.min_key.capture(row);
            }
            if n > r.max {
                r.max = n;
                r.max_key.capture(row);
            }
        }
        None => {
            let mut key = KeyBuf::default();
            key.capture(row);
            *slot = Some(Running {
                min: n,
                max: n,
                min_key: key.clone(),
                max_key: key,
            });
        }
    }
}

/// A column's [`Running`] extremes while its rows are encoded.
#[derive(Debug, Clone, Default)]
pub(super) struct Track {
    pub(super) range: Option<Running>,
    pub(super) byte_lengths: Option<Running>,
    /// A string column's most characters.
    pub(super) chars: Option<RunningMax>,
    /// The same without trailing blanks (what a `char(n)` holds: it pads them back).
    pub(super) trimmed_chars: Option<RunningMax>,
    /// A decimal or float column's most digits before the point.
    pub(super) integer_digits: Option<RunningMax>,
}

/// The largest of a measure over a column's values (a string's characters, a decimal's
/// digits before the point), with the key of a row holding it: what a target's
/// `varchar(n)` or `numeric(p, s)` is checked against before any write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Largest {
    pub max: u64,
    pub max_key: String,
}

/// [`Largest`] while the rows are read.
#[derive(Debug, Clone)]
pub(super) struct RunningMax {
    max: u64,
    key: KeyBuf,
}

impl RunningMax {
    pub(super) fn largest(&self, pk: &[usize], names: &[String]) -> Largest {
        Largest {
            max: self.max,
            max_key: self.key.text(pk, names),
        }
    }
}

/// Observe `n` in `slot`: the row's key is copied only when `n` is a new largest.
fn largest(slot: &mut Option<RunningMax>, n: u64, row: &RowRef) {
    if slot.as_ref().is_none_or(|r| n > r.max) {
        let mut key = KeyBuf::default();
        key.capture(row);
        *slot = Some(RunningMax { max: n, key });
    }
}

/// Observe a text value's characters, whole and without trailing blanks.
fn longest(track: &mut Track, v: &[u8], row: &RowRef) {
    longest_chars(&mut track.chars, v, row);
    // PostgreSQL drops only spaces (U+0020) past a char(n), not tabs or newlines.
    let end = v.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    longest_chars(&mut track.trimmed_chars, &v[..end], row);
}

/// Observe `v`'s characters in `slot`, counted only when `v` is longer in bytes than the
/// longest so far (a value has no more characters than bytes).
fn longest_chars(slot: &mut Option<RunningMax>, v: &[u8], row: &RowRef) {
    if slot.as_ref().is_none_or(|r| v.len() as u64 > r.max) {
        largest(slot, rules::chars(v) as u64, row);
    }
}

/// How many distinct values of a column are kept (with counts and keys) before the
/// column is considered to have no small domain.
pub const DOMAIN_MAX: usize = 64;
/// Longest value kept in a domain.
const DOMAIN_VALUE_MAX: usize = 64;

/// One distinct value of a column with a small domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainValue {
    pub value: String,
    pub count: u64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::memory::at_most::<DOMAIN_SAMPLES, _, _>"
    )]
    pub samples: Vec<String>,
}

/// How many sample keys a column keeps for the manifest.
pub const SAMPLES: usize = 5;

/// What was found in one column's values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnFacts {
    pub stats: ColumnStats,
    /// Keys of rows whose value is not a UUID (a string column).
    pub non_uuid_samples: Vec<String>,
    /// Keys of rows where NULL was written.
    pub null_samples: Vec<String>,
    /// Keys of rows holding `''`.
    pub empty_samples: Vec<String>,
    /// The distinct values of a string column while at most `DOMAIN_MAX`, each of at
    /// most 64 bytes; None once there are more (or for other columns).
    pub domain: Option<Vec<DomainValue>>,
    /// A spatial column's kinds of geometry (`point`, `polygon with holes`, ...), each
    /// with its count and keys.
    pub geometry: Option<Vec<DomainValue>>,
    /// A spatial column's SRIDs (up to a few).
    pub srids: Vec<u32>,
    /// Keys of rows whose JSON holds `\u0000` (kept as it is).
    pub json_nul_samples: Vec<String>,
    /// Keys of rows holding `Infinity` or `-Infinity` (a PostgreSQL source's float or
    /// numeric): what a `numeric(p, s)` cannot hold.
    pub infinite_samples: Vec<String>,
    /// An integer column's smallest and largest value.
    pub range: Option<Extremes>,
    /// A bytes column's shortest and longest value, in bytes.
    pub byte_lengths: Option<Extremes>,
    /// A string column's longest value, in characters.
    pub longest_chars: Option<Largest>,
    /// The same, trailing blanks not counted (what a `char(n)` must hold).
    pub longest_trimmed: Option<Largest>,
    /// A decimal or float column's most digits before the point.
    pub integer_digits: Option<Largest>,
    /// Temporal and decimal columns: how many values use each number of fraction digits
    /// (trailing zeros do not count; values without a fraction are not listed), each
    /// with keys: what a target column of a smaller precision or scale would round.
    pub fraction_digits: Option<Vec<DomainValue>>,
}

impl ColumnFacts {
    pub(super) fn new(check: Check) -> ColumnFacts {
        ColumnFacts {
            domain: (check == Check::String).then(Vec::new),
            geometry: (check == Check::Geometry).then(Vec::new),
            ..ColumnFacts::default()
        }
    }

    /// Add another part's facts (a table read as several key ranges), samples in order.
    pub fn add(&mut self, o: &ColumnFacts) {
        self.stats.add(&o.stats);
        for (mine, theirs) in [
            (&mut self.non_uuid_samples, &o.non_uuid_samples),
            (&mut self.null_samples, &o.null_samples),
            (&mut self.empty_samples, &o.empty_samples),
            (&mut self.json_nul_samples, &o.json_nul_samples),
            (&mut self.infinite_samples, &o.infinite_samples),
        ] {
            mine.extend(theirs.iter().cloned());
            mine.truncate(SAMPLES);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.geometry, &o.geometry) {
            merge_counts(mine, theirs);
        }
        match (&mut self.fraction_digits, &o.fraction_digits) {
            (Some(mine), Some(theirs)) => merge_counts(mine, theirs),
            (mine @ None, Some(theirs)) => *mine = Some(theirs.clone()),
            _ => {}
        }
        for (mine, theirs) in [
            (&mut self.range, &o.range),
            (&mut self.byte_lengths, &o.byte_lengths),
        ] {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(t),
                (None, Some(t)) => *mine = Some(t.clone()),
                _ => {}
            }
        }
        for (mine, theirs) in [
            (&mut self.longest_chars, &o.longest_chars),
            (&mut self.longest_trimmed, &o.longest_trimmed),
            (&mut self.integer_digits, &o.integer_digits),
        ] {
            if let Some(t) = theirs
                && mine.as_ref().is_none_or(|m| t.max > m.max)
            {
                *mine = Some(t.clone());
            }
        }
        for s in &o.srids {
            if !self.srids.contains(s) && self.srids.len() < SAMPLES {
                self.srids.push(*s);
            }
        }
        self.domain = match (self.domain.take(), &o.domain) {
            (Some(mut mine), Some(theirs)) => {
                merge_counts(&mut mine, theirs);
                (mine.len() <= DOMAIN_MAX).then_some(mine)
            }
            _ => None,
        };
    }

    /// Record one value of a column read under `check` (None: no value, NULL).
    pub(super) fn observe(
        &mut self,
        check: Check,
        rule: Rule,
        v: &[u8],
        key: &mut impl FnMut() -> String,
        row: &RowRef,
        track: &mut Track,
    ) {
        let s = &mut self.stats;
        match check {
            Check::String => {
                if v.is_empty() {
                    // In char(36) '' became NULL: counted as that rewrite instead.
                    if rule != Rule::Uuid36 {
                        s.empty_strings += 1;
                        push_sample(&mut self.empty_samples, key);
                    }
                } else if !rules::is_uuid(v) {
                    s.non_uuid += 1;
                    push_sample(&mut self.non_uuid_samples, key);
                }
                self.domain = self.domain.take().and_then(|mut d| {
                    match d.iter_mut().find(|x| x.value.as_bytes() == v) {
                        Some(x) => {
                            x.count += 1;
                            if x.samples.len() < DOMAIN_SAMPLES {
                                x.samples.push(key());
                            }
                        }
                        None => {
                            let text = std::str::from_utf8(v).ok()?;
                            if d.len() >= DOMAIN_MAX || v.len() > DOMAIN_VALUE_MAX {
                                return None;
                            }
                            d.push(DomainValue {
                                value: text.to_string(),
                                count: 1,
                                samples: vec![key()],
                            });
                        }
                    }
                    Some(d)
                });
                longest(track, v, row);
            }
            Check::Json => longest(track, v, row),
            Check::Integer => {
                if v != b"0" && v != b"1" {
                    s.non_boolean += 1;
                }
                if let Some(n) = std::str::from_utf8(v)
                    .ok()
                    .and_then(|t| t.parse::<i128>().ok())
                {
                    extreme(&mut track.range, n, row);
                }
            }
            Check::Bytes => {
                // A PostgreSQL source's bytea arrives as its hex text (`\x...`).
                let len = match rule {
                    Rule::HexText => v.len().saturating_sub(2) / 2,
                    _ => v.len(),
                };
                extreme(&mut track.byte_lengths, len as i128, row);
            }
            Check::DateTime => {
                if !rules::is_zero_date(v) && !rules::is_midnight(v) {
                    s.non_midnight += 1;
                }
                self.fraction(v, key);
            }
            Check::Time => {
                if !rules::within_a_day(v) {
                    s.out_of_day += 1;
                }
                self.fraction(v, key);
            }
            // A decimal's text has no exponent: the same rules read both.
            Check::Decimal | Check::Float => {
                if rules::is_infinite(v) {
                    push_sample(&mut self.infinite_samples, key);
                }
                largest(
                    &mut track.integer_digits,
                    rules::integer_digits(v) as u64,
                    row,
                );
                self.count_fraction(rules::number_fraction_digits(v), key)
            }
            Check::Geometry => {
                let (name, srid) = match geometry::parse(v) {
                    Ok(g) => (g.kind().name(), Some(g.srid)),
                    Err(_) => ("unreadable geometry", None),
                };
                if let Some(srid) = srid
                    && !self.srids.contains(&srid)
                    && self.srids.len() < SAMPLES
                {
                    self.srids.push(srid);
                }
                if let Some(kinds) = &mut self.geometry {
                    count_value(kinds, name, key);
                }
            }
            _ => {}
        }
    }
}

impl ColumnFacts {
    /// Count a value's fraction digits, when it has any.
    fn fraction(&mut self, v: &[u8], key: &mut impl FnMut() -> String) {
        self.count_fraction(rules::fraction_digits(v), key)
    }

    /// Count a value that uses `digits` fraction digits, when it uses any.
    fn count_fraction(&mut self, digits: usize, key: &mut impl FnMut() -> String) {
        // Named without an allocation per value: most columns hold millions of them.
        const NAMES: [&str; 31] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
            "30",
        ];
        if digits > 0 {
            let list = self.fraction_digits.get_or_insert_with(Vec::new);
            match NAMES.get(digits) {
                Some(name) => count_value(list, name, key),
                None => count_value(list, &digits.to_string(), key),
            }
        }
    }
}

/// Count one occurrence of `value` (with a sample key) in a list of distinct values.
fn count_value(values: &mut Vec<DomainValue>, value: &str, key: &mut impl FnMut() -> String) {
    match values.iter_mut().find(|x| x.value == value) {
        Some(x) => {
            x.count += 1;
            if x.samples.len() < DOMAIN_SAMPLES {
                x.samples.push(key());
            }
        }
        None => values.push(DomainValue {
            value: value.to_string(),
            count: 1,
            samples: vec![key()],
        }),
    }
}

/// Add another part's counted values.
fn merge_counts(mine: &mut Vec<DomainValue>, theirs: &[DomainValue]) {
    for v in theirs {
        match mine.iter_mut().find(|m| m.value == v.value) {
            Some(m) => {
                m.count += v.count;
                m.samples.extend(v.samples.iter().cloned());
                m.samples.truncate(DOMAIN_SAMPLES);
            }
            None => mine.push(v.clone()),
        }
    }
}

/// Sample keys kept per domain value.
const DOMAIN_SAMPLES: usize = 3;

pub(super) fn push_sample(samples: &mut Vec<String>, key: &mut impl FnMut() -> String) {
    if samples.len() < SAMPLES {
        samples.push(key());
    }
}

/// What was found in the rows of one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub rows: u64,
    pub columns: Vec<ColumnFacts>,
    /// Bytes of the longest line written (the header included, line end included).
    pub longest: u64,
}
