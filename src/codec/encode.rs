//! PURE: a source value (MySQL's text protocol) -> CSV field, driven by
//! `information_schema.COLUMNS`: the choice of rule per column (`classify`) and the
//! per-value pipeline (`write_field`) that counts every rewrite. The quirks themselves are
//! named functions in `rules`; the dialect is `csv`. No I/O, no allocation per value
//! beyond the output buffer.

use serde::{Deserialize, Serialize};

pub use super::facts::*;
use super::{csv, rules};
use crate::hint::with_hint;

/// A per-column override of the type-driven rule, from a profile or mapping file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Override {
    /// Bytes kept in a text column (e.g. zlib): exported as standard base64.
    Base64,
}

/// How one column's values become CSV fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Numbers, decimals, time, year: MySQL's text form, unchanged.
    Verbatim,
    /// Character data: unchanged, checked for NUL and invalid UTF-8.
    Text,
    /// `char(36)`: `''` -> NULL (PostgreSQL `uuid` rejects it), non-UUIDs reported.
    Uuid36,
    /// JSON: as text, also checked for `\u0000` (PostgreSQL `jsonb` rejects it).
    Json,
    /// binary/varbinary/*blob: `\x` + lowercase hex (PostgreSQL `bytea` hex input).
    Hex,
    /// date/datetime/timestamp: zero dates -> NULL.
    DateTime,
    /// `bit(n)`: n binary digits.
    Bits(u32),
    /// MariaDB `year(2)`: the four-digit year its two digits stand for.
    Year2,
    /// Profile override: bytes kept in a text column, as standard base64.
    Base64,
    /// A PostgreSQL source's `bytea`: its output is already `\x` + hex.
    HexText,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Verbatim => "verbatim",
            Rule::Text => "text",
            Rule::Uuid36 => "uuid36",
            Rule::Json => "json",
            Rule::Hex => "hex",
            Rule::DateTime => "datetime",
            Rule::Bits(_) => "bits",
            Rule::Year2 => "year2",
            Rule::Base64 => "base64",
            Rule::HexText => "hex",
        }
    }
}

/// Choose the rule for a column from `DATA_TYPE` and `COLUMN_TYPE` (any case) and the
/// profile's override.
pub fn classify(data_type: &str, column_type: &str, over: Option<Override>) -> Rule {
    if let Some(Override::Base64) = over {
        return Rule::Base64;
    }
    let dt = data_type.to_ascii_lowercase();
    let ct = column_type.to_ascii_lowercase();
    match dt.as_str() {
        "char" if ct == "char(36)" => Rule::Uuid36,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            Rule::Text
        }
        "json" => Rule::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Rule::Hex,
        "date" | "datetime" | "timestamp" => Rule::DateTime,
        "bit" => Rule::Bits(rules::bit_width(&ct)),
        "year" if ct == "year(2)" => Rule::Year2,
        _ => Rule::Verbatim,
    }
}

/// The rule for a PostgreSQL source's column, from its base type's name: its text output
/// is already what PostgreSQL reads back, so only text is checked (and JSON for the
/// `\u0000` a `jsonb` target refuses) and `bytea` marked as hex.
pub fn classify_pg(data_type: &str) -> Rule {
    match data_type {
        "text" | "varchar" | "bpchar" | "citext" | "name" | "enum" => Rule::Text,
        "json" | "jsonb" => Rule::Json,
        "bytea" => Rule::HexText,
        _ => Rule::Verbatim,
    }
}

/// What to do with a value PostgreSQL would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPolicy {
    /// Stop the export, naming table, column and key.
    Error,
    /// Strip NULs, replace invalid UTF-8 with U+FFFD, drop `\u0000` escapes; count each.
    Fix,
}

/// A value PostgreSQL would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    NulInText,
    InvalidUtf8,
    /// The column's character set held a value with no UTF-8 equivalent: the server's
    /// conversion replaced it (with `?`), so the value would arrive changed.
    Unconvertible,
}

impl Finding {
    pub fn describe(self) -> &'static str {
        match self {
            Finding::NulInText => "a NUL byte in text (PostgreSQL text cannot hold it)",
            Finding::InvalidUtf8 => "invalid UTF-8 (PostgreSQL rejects it in a UTF8 database)",
            Finding::Unconvertible => {
                "a value with no UTF-8 equivalent in the column's character set (MySQL's \
                 conversion would write `?` for it)"
            }
        }
    }
}

/// Append the CSV field for `value` (None = SQL NULL) under `rule` to `out`, updating
/// `stats`. On a finding under `InvalidPolicy::Error`, nothing is appended.
pub fn write_field(
    rule: Rule,
    value: Option<&[u8]>,
    policy: InvalidPolicy,
    stats: &mut ColumnStats,
    out: &mut Vec<u8>,
) -> Result<(), Finding> {
    let Some(v) = value else {
        stats.nulls_written += 1;
        csv::write_null(out);
        return Ok(());
    };
    match rule {
        Rule::Verbatim => csv::write_text(v, out),
        Rule::HexText => {
            stats.hex += 1;
            csv::write_text(v, out);
        }
        Rule::Year2 => rules::two_digit_year(v, out),
        Rule::Hex => {
            stats.hex += 1;
            rules::blob_to_hex(v, out);
        }
        Rule::Base64 => {
            stats.base64 += 1;
            rules::bytes_to_base64(v, out);
        }
        Rule::Bits(n) => {
            stats.bits += 1;
            rules::bits_to_digits(v, n, out);
        }
        Rule::DateTime => {
            if rules::is_zero_date(v) {
                stats.zero_date_to_null += 1;
                stats.nulls_written += 1;
                csv::write_null(out);
            } else {
                csv::write_text(v, out);
            }
        }
        Rule::Uuid36 if v.is_empty() => {
            stats.empty_uuid_to_null += 1;
            stats.nulls_written += 1;
            csv::write_null(out);
        }
        Rule::Text | Rule::Uuid36 | Rule::Json => {
            let fixed = checked_text(rule, v, policy, stats)?;
            csv::write_text(fixed.as_deref().unwrap_or(v), out);
        }
    }
    Ok(())
}

/// Where a row's bytes go before the row is complete: writes and clears the buffer.
pub type Spill<'a> = &'a mut dyn FnMut(&mut Vec<u8>) -> anyhow::Result<()>;

/// The size past which a row's buffer is spilled, and a value is written in pieces.
pub const SPILL_AT: usize = 1 << 20;

/// Why a long field stopped: the value itself, or writing it.
enum Long {
    Finding(Finding),
    Spill(anyhow::Error),
}

impl Rule {
    /// Rules whose output can be written piece by piece (text as it is, quoted or not;
    /// bytes as hex).
    fn streams(self) -> bool {
        matches!(
            self,
            Rule::Verbatim | Rule::HexText | Rule::Text | Rule::Uuid36 | Rule::Json | Rule::Hex
        )
    }
}

/// A value longer than [`SPILL_AT`] under a rule that [`streams`](Rule::streams):
/// the same checks and counters as [`write_field`], the output in pieces through `spill`.
fn write_long_field(
    rule: Rule,
    v: &[u8],
    policy: InvalidPolicy,
    stats: &mut ColumnStats,
    out: &mut Vec<u8>,
    spill: &mut dyn FnMut(&mut Vec<u8>) -> anyhow::Result<()>,
) -> Result<(), Long> {
    let mut spill = |o: &mut Vec<u8>| spill(o).map_err(Long::Spill);
    match rule {
        Rule::Hex => {
            stats.hex += 1;
            out.extend_from_slice(b"\\x");
            for piece in v.chunks(SPILL_AT / 2) {
                rules::hex_digits(piece, out);
                spill(out)?;
            }
            Ok(())
        }
        Rule::HexText | Rule::Verbatim => {
            if rule == Rule::HexText {
                stats.hex += 1;
            }
            csv::write_text_pieces(v, out, SPILL_AT, &mut spill)
        }
        _ => {
            let fixed = checked_text(rule, v, policy, stats).map_err(Long::Finding)?;
            csv::write_text_pieces(fixed.as_deref().unwrap_or(v), out, SPILL_AT, &mut spill)
        }
    }
}

/// What `--on-invalid fix` makes of a text value (NULs stripped, invalid UTF-8 replaced,
/// JSON's `\u0000` dropped), when it changes it: what deep verify compares a live source
/// value against, counting it as a change the user accepted.
pub fn fixed_text(json: bool, v: &[u8]) -> Option<Vec<u8>> {
    let rule = if json { Rule::Json } else { Rule::Text };
    let mut stats = ColumnStats::default();
    checked_text(rule, v, InvalidPolicy::Fix, &mut stats)
        .ok()
        .flatten()
        .filter(|f| f.as_slice() != v)
}

/// Check text for what PostgreSQL refuses; under `Fix`, return the repaired bytes.
fn checked_text(
    rule: Rule,
    v: &[u8],
    policy: InvalidPolicy,
    stats: &mut ColumnStats,
) -> Result<Option<Vec<u8>>, Finding> {
    let has_nul = v.contains(&0);
    let bad_utf8 = std::str::from_utf8(v).is_err();
    let json_nul = rule == Rule::Json && rules::json_has_nul_escape(v);
    if !(has_nul || bad_utf8 || json_nul) {
        return Ok(None);
    }
    if json_nul && !(has_nul || bad_utf8) && policy == InvalidPolicy::Error {
        // A `json` or text target holds it; only `jsonb` cannot, and the import decides
        // that from the target column (the count and keys are recorded).
        stats.json_nul_kept += 1;
        return Ok(None);
    }
    if policy == InvalidPolicy::Error {
        return Err(if has_nul {
            Finding::NulInText
        } else {
            Finding::InvalidUtf8
        });
    }
    let mut fixed = v.to_vec();
    if has_nul {
        stats.nul_stripped += 1;
        fixed.retain(|b| *b != 0);
    }
    if std::str::from_utf8(&fixed).is_err() {
        stats.invalid_utf8_replaced += 1;
        fixed = String::from_utf8_lossy(&fixed).into_owned().into_bytes();
    }
    if rule == Rule::Json && rules::json_has_nul_escape(&fixed) {
        stats.json_nul_dropped += 1;
        fixed = rules::drop_json_nul_escapes(&fixed);
    }
    Ok(Some(fixed))
}

/// Rows of one table -> CSV lines, counting every rewrite and keeping sample keys. A
/// value PostgreSQL would refuse (under `InvalidPolicy::Error`) is an error naming
/// table, column and the row's primary key.
pub struct RowEncoder {
    table: String,
    names: Vec<String>,
    rules: Vec<Rule>,
    checks: Vec<Check>,
    pk: Vec<usize>,
    policy: InvalidPolicy,
    facts: Facts,
    /// Per column: its extremes so far, made into `facts`' by [`finish`](Self::finish).
    tracks: Vec<Track>,
}

impl RowEncoder {
    /// `names`, `rules` and `checks` per column; `pk`: positions of the primary-key
    /// columns among `names`.
    pub fn new(
        table: &str,
        names: Vec<String>,
        rules: Vec<Rule>,
        checks: Vec<Check>,
        pk: Vec<usize>,
        policy: InvalidPolicy,
    ) -> RowEncoder {
        RowEncoder {
            facts: Facts {
                rows: 0,
                columns: checks.iter().map(|c| ColumnFacts::new(*c)).collect(),
                longest: 0,
            },
            tracks: vec![Track::default(); checks.len()],
            table: table.to_string(),
            names,
            rules,
            checks,
            pk,
            policy,
        }
    }

    /// The header line.
    pub fn header(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        csv::write_header(self.names.iter().map(String::as_str), out);
        self.facts.longest = self.facts.longest.max((out.len() - start) as u64);
    }

    pub fn rows(&self) -> u64 {
        self.facts.rows
    }

    /// Append one row's line (values in column order; None is NULL). `lossy` lists the
    /// columns whose value the server could not convert to UTF-8 without loss. On an
    /// error, what was appended for this row is left in `out`: the caller discards it.
    pub fn row(
        &mut self,
        values: &[Option<&[u8]>],
        lossy: &[usize],
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        self.encode_row(values, lossy, out, None)
    }

    /// [`row`](Self::row), handing `out` to `spill` (which writes and clears it)
    /// whenever it passes [`SPILL_AT`], between fields and inside a long field: a long
    /// value is never copied whole into `out`, so memory stays flat whatever a value
    /// holds. After an error that followed a spill, part of the row is already written:
    /// the caller must abandon the file (an export that fails keeps nothing).
    pub fn row_spilling(
        &mut self,
        values: &[Option<&[u8]>],
        lossy: &[usize],
        out: &mut Vec<u8>,
        spill: Spill<'_>,
    ) -> anyhow::Result<()> {
        self.encode_row(values, lossy, out, Some(spill))
    }

    fn encode_row(
        &mut self,
        values: &[Option<&[u8]>],
        lossy: &[usize],
        out: &mut Vec<u8>,
        mut spill: Option<Spill<'_>>,
    ) -> anyhow::Result<()> {
        let ordinal = self.facts.rows + 1;
        let mut start = out.len();
        let mut row_len = 0u64;
        let mut spill_row = |out: &mut Vec<u8>, start: &mut usize| -> anyhow::Result<()> {
            if let Some(spill) = spill.as_mut() {
                row_len += (out.len() - *start) as u64;
                spill(out)?;
                out.clear();
                *start = 0;
            }
            Ok(())
        };
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if out.len() >= SPILL_AT {
                spill_row(out, &mut start)?;
            }
            let (names, pk) = (&self.names, &self.pk);
            let mut key = || row_key(values, pk, names, ordinal);
            let col = &mut self.facts.columns[i];
            let nulls_before = col.stats.nulls_written;
            let json_nul_before = col.stats.json_nul_kept;
            let written = if lossy.contains(&i) && self.policy == InvalidPolicy::Error {
                Err(Long::Finding(Finding::Unconvertible))
            } else {
                if lossy.contains(&i) {
                    col.stats.unconvertible_kept += 1;
                }
                match *v {
                    Some(long) if long.len() > SPILL_AT && self.rules[i].streams() => {
                        write_long_field(
                            self.rules[i],
                            long,
                            self.policy,
                            &mut col.stats,
                            out,
                            &mut |o| spill_row(o, &mut start),
                        )
                    }
                    _ => write_field(self.rules[i], *v, self.policy, &mut col.stats, out)
                        .map_err(Long::Finding),
                }
            };
            let written = match written {
                Err(Long::Spill(e)) => return Err(e),
                Err(Long::Finding(f)) => Err(f),
                Ok(()) => Ok(()),
            };
            if let Err(finding) = written {
                return Err(with_hint(
                    anyhow::anyhow!(
                        "table `{}`, column `{}`, row {}: {}",
                        self.table,
                        self.names[i],
                        key(),
                        finding.describe()
                    ),
                    "fix the value in MySQL, or export with --on-invalid fix (strips NULs, \
                     replaces invalid UTF-8, drops \\u0000, keeps MySQL's `?` for what has no \
                     UTF-8 equivalent; every change is counted in the manifest)",
                ));
            }
            if col.stats.nulls_written > nulls_before {
                push_sample(&mut col.null_samples, &mut key);
            }
            if col.stats.json_nul_kept > json_nul_before {
                push_sample(&mut col.json_nul_samples, &mut key);
            }
            if let Some(v) = v {
                let row = RowRef {
                    values,
                    pk,
                    ordinal,
                };
                col.observe(
                    self.checks[i],
                    self.rules[i],
                    v,
                    &mut key,
                    &row,
                    &mut self.tracks[i],
                );
            }
        }
        out.push(b'\n');
        row_len += (out.len() - start) as u64;
        self.facts.rows += 1;
        self.facts.longest = self.facts.longest.max(row_len);
        Ok(())
    }

    pub fn finish(mut self) -> Facts {
        for (col, track) in self.facts.columns.iter_mut().zip(&self.tracks) {
            if let Some(r) = &track.range {
                col.range = Some(r.extremes(&self.pk, &self.names));
            }
            if let Some(r) = &track.byte_lengths {
                col.byte_lengths = Some(r.extremes(&self.pk, &self.names));
            }
            let largest = |r: &RunningMax| r.largest(&self.pk, &self.names);
            col.longest_chars = track.chars.as_ref().map(largest);
            col.longest_trimmed = track.trimmed_chars.as_ref().map(largest);
            col.integer_digits = track.integer_digits.as_ref().map(largest);
        }
        self.facts
    }
}

/// `id=42`, `(a=1, b=x)`, or `#17 (no primary key)`: how errors and samples name a row.
pub fn row_key(values: &[Option<&[u8]>], pk: &[usize], names: &[String], ordinal: u64) -> String {
    if pk.is_empty() {
        return format!("#{ordinal} (no primary key)");
    }
    let part = |i: usize| {
        let v = match values.get(i).copied().flatten() {
            None => "NULL".to_string(),
            Some(b) => crate::escape::prefix(b, 64),
        };
        format!("{}={v}", crate::escape::text(&names[i]))
    };
    if pk.len() == 1 {
        part(pk[0])
    } else {
        format!(
            "({})",
            pk.iter().map(|&i| part(i)).collect::<Vec<_>>().join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_rows() {
        let names = vec!["id".to_string(), "b".to_string()];
        let vals: Vec<Option<&[u8]>> = vec![Some(b"42"), None];
        assert_eq!(row_key(&vals, &[0], &names, 1), "id=42");
        assert_eq!(row_key(&vals, &[0, 1], &names, 1), "(id=42, b=NULL)");
        assert_eq!(row_key(&vals, &[], &names, 7), "#7 (no primary key)");
        // Keys are shown escaped: an empty string, a control character, binary.
        let odd: Vec<Option<&[u8]>> = vec![Some(b""), Some(b"a\x1b[2Jb\n"), Some(b"\xff\x00")];
        let names = vec!["id".to_string(), "e".to_string(), "b".to_string()];
        assert_eq!(
            row_key(&odd, &[0, 1, 2], &names, 1),
            "(id='', e=a\\x1b[2Jb\\n, b=\\xff00)"
        );
    }

    #[test]
    fn the_row_encoder_counts_samples_and_names_bad_rows() {
        let mut e = RowEncoder::new(
            "t",
            vec!["id".into(), "u".into()],
            vec![Rule::Verbatim, Rule::Uuid36],
            vec![Check::Integer, Check::String],
            vec![0],
            InvalidPolicy::Error,
        );
        let mut out = Vec::new();
        e.header(&mut out);
        e.row(&[Some(b"1"), Some(b"")], &[], &mut out).unwrap();
        e.row(&[Some(b"2"), Some(b"nope")], &[], &mut out).unwrap();
        let mut bad = Vec::new();
        let err = e
            .row(&[Some(b"3"), Some(b"x\0")], &[], &mut bad)
            .unwrap_err();
        assert!(
            crate::hint::render(&err).contains("table `t`, column `u`, row id=3: a NUL byte"),
            "{err:#}"
        );
        assert_eq!(out, b"id,u\n1,\\N\n2,nope\n");
        let f = e.finish();
        assert_eq!((f.rows, f.longest), (2, 7));
        assert_eq!(f.columns[1].null_samples, ["id=1"]);
        assert_eq!(f.columns[1].non_uuid_samples, ["id=2"]);
        assert_eq!(
            (
                f.columns[1].stats.empty_uuid_to_null,
                f.columns[1].stats.non_uuid
            ),
            (1, 1)
        );
        // id=2 and id=3 (whose row then failed on `u`) are neither 0 nor 1.
        assert_eq!(f.columns[0].stats.non_boolean, 2);
    }

    #[test]
    fn facts_for_every_kind_of_column() {
        let mut e = RowEncoder::new(
            "t",
            vec!["id".into(), "s".into(), "d".into(), "t".into()],
            vec![Rule::Verbatim, Rule::Text, Rule::DateTime, Rule::Verbatim],
            vec![Check::None, Check::String, Check::DateTime, Check::Time],
            vec![0],
            InvalidPolicy::Error,
        );
        let mut out = Vec::new();
        let rows: &[[&[u8]; 4]] = &[
            [b"1", b"", b"2024-01-01 00:00:00", b"12:00:00"],
            [b"2", b"a", b"2024-01-01 10:00:00", b"25:00:00"],
            [b"3", b"a", b"0000-00-00 00:00:00", b"-01:00:00"],
            [
                b"4",
                b"6f9619ff-8b86-d011-b42d-00cf4fc964ff",
                b"2024-01-01",
                b"00:00:00",
            ],
        ];
        for r in rows {
            let vals: Vec<Option<&[u8]>> = r.iter().map(|v| Some(*v)).collect();
            e.row(&vals, &[], &mut out).unwrap();
        }
        let f = e.finish();
        let s = &f.columns[1];
        assert_eq!((s.stats.empty_strings, s.stats.non_uuid), (1, 2));
        assert_eq!(s.empty_samples, ["id=1"]);
        assert_eq!(s.non_uuid_samples, ["id=2", "id=3"]);
        let domain = s.domain.as_ref().unwrap();
        assert_eq!(domain.len(), 3);
        let a = domain.iter().find(|d| d.value == "a").unwrap();
        assert_eq!(
            (a.count, a.samples.clone()),
            (2, vec!["id=2".to_string(), "id=3".to_string()])
        );
        assert_eq!(f.columns[2].stats.non_midnight, 1);
        assert_eq!(f.columns[3].stats.out_of_day, 2);
        assert!(f.columns[0].domain.is_none());
        // More distinct values than a small domain holds: no domain.
        let mut e = RowEncoder::new(
            "t",
            vec!["s".into()],
            vec![Rule::Text],
            vec![Check::String],
            vec![],
            InvalidPolicy::Error,
        );
        for i in 0..=DOMAIN_MAX {
            e.row(&[Some(i.to_string().as_bytes())], &[], &mut Vec::new())
                .unwrap();
        }
        assert!(e.finish().columns[0].domain.is_none());
    }

    #[test]
    fn classify_by_type() {
        let cases: &[(&str, &str, Option<Override>, Rule)] = &[
            ("char", "char(36)", None, Rule::Uuid36),
            ("CHAR", "CHAR(36)", None, Rule::Uuid36),
            ("char", "char(35)", None, Rule::Text),
            ("varchar", "varchar(36)", None, Rule::Text),
            ("longtext", "longtext", None, Rule::Text),
            ("longtext", "longtext", Some(Override::Base64), Rule::Base64),
            ("enum", "enum('a','b')", None, Rule::Text),
            ("json", "json", None, Rule::Json),
            ("varbinary", "varbinary(16)", None, Rule::Hex),
            ("longblob", "longblob", None, Rule::Hex),
            ("datetime", "datetime(6)", None, Rule::DateTime),
            ("timestamp", "timestamp", None, Rule::DateTime),
            ("date", "date", None, Rule::DateTime),
            ("bit", "bit(1)", None, Rule::Bits(1)),
            ("bit", "bit(10)", None, Rule::Bits(10)),
            ("tinyint", "tinyint(1)", None, Rule::Verbatim),
            ("bigint", "bigint(20) unsigned", None, Rule::Verbatim),
            ("decimal", "decimal(65,30)", None, Rule::Verbatim),
            ("time", "time", None, Rule::Verbatim),
            ("year", "year(4)", None, Rule::Verbatim),
            ("year", "year(2)", None, Rule::Year2),
        ];
        for (dt, ct, over, want) in cases {
            assert_eq!(classify(dt, ct, *over), *want, "{dt} {ct}");
        }
    }

    fn enc(rule: Rule, v: Option<&[u8]>) -> (Result<(), Finding>, String, ColumnStats) {
        let mut stats = ColumnStats::default();
        let mut out = Vec::new();
        let r = write_field(rule, v, InvalidPolicy::Error, &mut stats, &mut out);
        (r, String::from_utf8_lossy(&out).into_owned(), stats)
    }

    #[test]
    fn values_by_rule() {
        let u = "6f9619ff-8b86-d011-b42d-00cf4fc964ff";
        let cases: &[(Rule, Option<&[u8]>, &str)] = &[
            (Rule::Text, None, "\\N"),
            (Rule::Text, Some(b""), "\"\""),
            (Rule::Text, Some(b"\\N"), "\"\\N\""),
            (Rule::Text, Some(b"a,b"), "\"a,b\""),
            (Rule::Text, Some(b"say \"hi\""), "\"say \"\"hi\"\"\""),
            (Rule::Text, Some(b"l1\r\nl2"), "\"l1\r\nl2\""),
            (Rule::Text, Some(b"tab\there \\ back"), "tab\there \\ back"),
            (Rule::Text, Some("emoji 😀".as_bytes()), "emoji 😀"),
            (Rule::Uuid36, Some(b""), "\\N"),
            (Rule::Uuid36, None, "\\N"),
            (Rule::Uuid36, Some(u.as_bytes()), u),
            (Rule::Hex, Some(b""), "\\x"),
            (Rule::Hex, Some(&[0, 255, 16]), "\\x00ff10"),
            (Rule::DateTime, Some(b"0000-00-00"), "\\N"),
            (Rule::DateTime, Some(b"0000-00-00 00:00:00.000000"), "\\N"),
            (
                Rule::DateTime,
                Some(b"2024-02-29 23:59:59.999999"),
                "2024-02-29 23:59:59.999999",
            ),
            (Rule::Bits(1), Some(&[1]), "1"),
            (Rule::Bits(1), Some(&[0]), "0"),
            (Rule::Bits(10), Some(&[0x02, 0x05]), "1000000101"),
            (
                Rule::Verbatim,
                Some(b"18446744073709551615"),
                "18446744073709551615",
            ),
            (Rule::Base64, Some(&[0x78, 0x9c, 0x00]), "eJwA"),
            (Rule::Year2, Some(b"24"), "2024"),
            (Rule::Year2, Some(b"99"), "1999"),
        ];
        for (rule, v, want) in cases {
            let (r, out, _) = enc(*rule, *v);
            assert_eq!(r, Ok(()), "{rule:?} {v:?}");
            assert_eq!(out, *want, "{rule:?} {v:?}");
        }
    }

    #[test]
    fn integer_ranges_and_byte_lengths_keep_the_key_of_each_extreme() {
        let mut e = RowEncoder::new(
            "t",
            vec!["id".into(), "n".into(), "b".into()],
            vec![Rule::Verbatim, Rule::Verbatim, Rule::Hex],
            vec![Check::Integer, Check::Integer, Check::Bytes],
            vec![0],
            InvalidPolicy::Error,
        );
        let mut out = Vec::new();
        let rows: [[Option<&[u8]>; 3]; 4] = [
            [Some(b"1"), Some(b"5"), Some(&[0u8; 16])],
            [Some(b"2"), Some(b"-3"), Some(&[1u8; 4])],
            [Some(b"3"), Some(b"18446744073709551615"), None],
            [Some(b"4"), None, Some(&[2u8; 20])],
        ];
        for r in &rows {
            e.row(r, &[], &mut out).unwrap();
        }
        let f = e.finish();
        let range = f.columns[1].range.clone().unwrap();
        assert_eq!((range.min.as_str(), range.min_key.as_str()), ("-3", "id=2"));
        assert_eq!(
            (range.max.as_str(), range.max_key.as_str()),
            ("18446744073709551615", "id=3")
        );
        let len = f.columns[2].byte_lengths.clone().unwrap();
        assert_eq!(len.bounds(), Some((4, 20)));
        assert_eq!(
            (len.min_key.as_str(), len.max_key.as_str()),
            ("id=2", "id=4")
        );
        // Parts merge: the extremes of both, with their keys.
        let mut a = f.columns[1].clone();
        let other = ColumnFacts {
            range: Some(Extremes::first(-10, "id=9".into())),
            ..ColumnFacts::default()
        };
        a.add(&other);
        assert_eq!(a.range.unwrap().min_key, "id=9");
    }

    /// A string's most characters (not bytes) and a decimal's most digits before the
    /// point, each with the key of the first row holding it; parts keep the larger.
    #[test]
    fn longest_strings_and_widest_decimals_keep_a_key() {
        let mut e = RowEncoder::new(
            "t",
            vec!["id".into(), "s".into(), "d".into()],
            vec![Rule::Verbatim; 3],
            vec![Check::Integer, Check::String, Check::Decimal],
            vec![0],
            InvalidPolicy::Error,
        );
        let mut out = Vec::new();
        let rows: [[Option<&[u8]>; 3]; 4] = [
            [Some(b"1"), Some("ééé".as_bytes()), Some(b"-123.45")],
            [Some(b"2"), Some(b"abcd"), Some(b"0.5")],
            [Some(b"3"), Some(b"wxyz"), Some(b"99999")],
            [Some(b"4"), None, None],
        ];
        for r in &rows {
            e.row(r, &[], &mut out).unwrap();
        }
        let f = e.finish();
        let chars = f.columns[1].longest_chars.clone().unwrap();
        assert_eq!((chars.max, chars.max_key.as_str()), (4, "id=2"));
        // Without trailing blanks (spaces only: a char(n) keeps tabs and newlines).
        let mut e = RowEncoder::new(
            "t",
            vec!["id".into(), "s".into()],
            vec![Rule::Verbatim; 2],
            vec![Check::Integer, Check::String],
            vec![0],
            InvalidPolicy::Error,
        );
        for r in [
            [Some(b"1".as_slice()), Some(b"xy     ")],
            [Some(b"2"), Some(b"ab\t\t")],
        ] {
            e.row(&r, &[], &mut out).unwrap();
        }
        let f2 = e.finish();
        let trimmed = f2.columns[1].longest_trimmed.clone().unwrap();
        assert_eq!((trimmed.max, trimmed.max_key.as_str()), (4, "id=2"));
        assert_eq!(f2.columns[1].longest_chars.clone().unwrap().max, 7);
        let digits = f.columns[2].integer_digits.clone().unwrap();
        assert_eq!((digits.max, digits.max_key.as_str()), (5, "id=3"));
        let mut a = f.columns[1].clone();
        a.add(&ColumnFacts {
            longest_chars: Some(Largest {
                max: 7,
                max_key: "id=9".into(),
            }),
            ..ColumnFacts::default()
        });
        assert_eq!(a.longest_chars.unwrap().max_key, "id=9");
    }

    #[test]
    fn rewrites_are_counted() {
        let (_, _, s) = enc(Rule::Uuid36, Some(b""));
        assert_eq!((s.empty_uuid_to_null, s.nulls_written), (1, 1));
        let (_, _, s) = enc(Rule::DateTime, Some(b"0000-00-00"));
        assert_eq!((s.zero_date_to_null, s.nulls_written), (1, 1));
        let (r, out, _) = enc(Rule::Uuid36, Some(b"not-a-uuid"));
        assert_eq!((r, out.as_str()), (Ok(()), "not-a-uuid"));
    }

    #[test]
    fn findings_stop_or_get_fixed() {
        let cases: &[(Rule, &[u8], Finding, &str)] = &[
            (Rule::Text, b"a\0b", Finding::NulInText, "ab"),
            (Rule::Text, b"caf\xe9", Finding::InvalidUtf8, "caf\u{fffd}"),
            (Rule::Uuid36, b"\0", Finding::NulInText, "\"\""),
        ];
        for (rule, v, finding, fixed) in cases {
            let (r, out, _) = enc(*rule, Some(v));
            assert_eq!(r, Err(*finding));
            assert!(out.is_empty());
            let mut stats = ColumnStats::default();
            let mut out = Vec::new();
            write_field(*rule, Some(v), InvalidPolicy::Fix, &mut stats, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), *fixed, "{rule:?}");
            assert_eq!(
                stats.nul_stripped + stats.invalid_utf8_replaced + stats.json_nul_dropped,
                1
            );
        }
        // An escaped backslash before u0000 is text, not a NUL escape.
        let (r, _, s) = enc(Rule::Json, Some(br#"{"a":"\\u0000"}"#));
        assert_eq!((r, s.json_nul_kept), (Ok(()), 0));
        // `\u0000` in JSON is written as it is and counted (a json target holds it);
        // --on-invalid fix drops it.
        let v = br#"["x\u0000y"]"#;
        let (r, out, s) = enc(Rule::Json, Some(v));
        assert_eq!((r, s.json_nul_kept), (Ok(()), 1));
        assert_eq!(out, r#""[""x\u0000y""]""#);
        let mut stats = ColumnStats::default();
        let mut out = Vec::new();
        write_field(
            Rule::Json,
            Some(v),
            InvalidPolicy::Fix,
            &mut stats,
            &mut out,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#""[""xy""]""#);
        assert_eq!((stats.json_nul_dropped, stats.json_nul_kept), (1, 0));
    }

    #[test]
    fn long_values_are_written_in_pieces_exactly_as_whole() {
        let make = || {
            RowEncoder::new(
                "t",
                ["id", "s", "q", "j", "b", "v"].map(String::from).to_vec(),
                vec![
                    Rule::Verbatim,
                    Rule::Text,
                    Rule::Text,
                    Rule::Json,
                    Rule::Hex,
                    Rule::Verbatim,
                ],
                vec![
                    Check::Integer,
                    Check::String,
                    Check::String,
                    Check::None,
                    Check::Bytes,
                    Check::None,
                ],
                vec![0],
                InvalidPolicy::Fix,
            )
        };
        let plain = vec![b'x'; 3 * SPILL_AT + 17];
        let mut quoted = b"a,\"b\"\n".repeat(SPILL_AT / 3);
        quoted.push(0); // a NUL the fix strips
        let json = format!("{{\"k\": \"{}\\u0000\"}}", "y".repeat(SPILL_AT + 5)).into_bytes();
        let blob: Vec<u8> = (0..2 * SPILL_AT + 3).map(|i| i as u8).collect();
        let row: Vec<Option<&[u8]>> = vec![
            Some(b"1"),
            Some(&plain),
            Some(&quoted),
            Some(&json),
            Some(&blob),
            Some(b"tail"),
        ];
        let (mut whole, mut pieces) = (make(), make());
        let mut a = Vec::new();
        whole.row(&row, &[], &mut a).unwrap();
        let (mut b, mut written, mut spills, mut most) = (Vec::new(), Vec::new(), 0, 0);
        pieces
            .row_spilling(&row, &[], &mut b, &mut |buf| {
                most = most.max(buf.len());
                written.extend_from_slice(buf);
                buf.clear();
                spills += 1;
                Ok(())
            })
            .unwrap();
        written.extend_from_slice(&b);
        let at = written
            .iter()
            .zip(&a)
            .position(|(x, y)| x != y)
            .unwrap_or(written.len().min(a.len()));
        assert!(
            written == a,
            "the pieces differ from the whole row at {at} of {} / {}: {:?} vs {:?}",
            written.len(),
            a.len(),
            String::from_utf8_lossy(&written[at.saturating_sub(20)..(at + 20).min(written.len())]),
            String::from_utf8_lossy(&a[at.saturating_sub(20)..(at + 20).min(a.len())])
        );
        assert!(spills > 8, "{spills} spills");
        assert!(most <= 2 * SPILL_AT + 64, "a spill of {most} bytes");
        let (fw, fp) = (whole.finish(), pieces.finish());
        assert_eq!(fw.longest, fp.longest);
        assert_eq!(fw.longest, a.len() as u64);
        for (cw, cp) in fw.columns.iter().zip(&fp.columns) {
            assert_eq!(cw.stats, cp.stats);
        }
        assert_eq!(fp.columns[2].stats.nul_stripped, 1);
        assert_eq!(fp.columns[3].stats.json_nul_dropped, 1);
    }
}
