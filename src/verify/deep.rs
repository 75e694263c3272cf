//! PURE: `verify --deep`'s comparison, independent of where the rows come from.
//!
//! Which columns of a target table are compared, and how, is `deep_plan`'s (re-exported
//! here). Then, without relying on either engine's order: every row of each side is hashed (its canonical key and
//! values) into one of a few thousand buckets chosen by its key, each bucket keeping a
//! count and a sum of hashes — memory flat at any table size, both sides read once, in
//! any order. Buckets that differ are narrowed down in a second read that keeps only their
//! rows, which are then compared column by column and named.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::long_values;
use crate::escape;
use crate::verify::canon::Kind;

pub use crate::verify::deep_plan::*;

/// Buckets for a table of about `rows` rows: some 64 rows each, within [256, 2^20].
pub fn bucket_count(rows: u64) -> usize {
    ((rows / 64) as usize).clamp(256, 1 << 20)
}

/// One side's buckets: the rows in each, and the sum of their hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Per compared column (index), values of a live source that the export's fix
    /// changes, with a few keys.
    pub fixed: BTreeMap<usize, (u64, Vec<String>)>,
    pub count: Vec<u32>,
    pub sum: Vec<u128>,
    pub rows: u64,
}

impl Buckets {
    pub fn new(n: usize) -> Buckets {
        Buckets {
            fixed: BTreeMap::new(),
            count: vec![0; n],
            sum: vec![0; n],
            rows: 0,
        }
    }

    pub fn add(&mut self, h: RowHash) {
        self.count[h.bucket] += 1;
        self.sum[h.bucket] = self.sum[h.bucket].wrapping_add(h.hash);
        self.rows += 1;
    }

    /// The buckets where the two sides differ.
    pub fn differing(&self, other: &Buckets) -> Vec<usize> {
        (0..self.count.len())
            .filter(|&i| self.count[i] != other.count[i] || self.sum[i] != other.sum[i])
            .collect()
    }
}

/// A row's bucket and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowHash {
    pub bucket: usize,
    pub hash: u128,
}

/// Canonical values as bytes: NULL and each value told apart unambiguously.
fn encode<'a>(values: impl IntoIterator<Item = &'a Option<Vec<u8>>>, out: &mut Vec<u8>) {
    for v in values {
        match v {
            None => out.push(0xFF),
            Some(v) => {
                out.push(0);
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

/// The key of a row (its canonical key values, or — without a key — the whole row).
pub fn key_bytes(plan: &TablePlan, values: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    if plan.key.is_empty() {
        encode(values, &mut out);
    } else {
        encode(plan.key.iter().map(|&i| &values[i]), &mut out);
    }
    out
}

/// Hash a row of canonical values (in `plan.columns` order): SHA-256 of its key and
/// values (the first 128 bits), and its bucket from its key alone (SipHash, fixed keys).
/// The readers hash value by value ([`row_hash_with`]); this whole-row form is the
/// tests' reference.
#[cfg(test)]
pub fn row_hash(plan: &TablePlan, values: &[Option<Vec<u8>>], buckets: usize) -> RowHash {
    row_hash_with(plan, values.len(), buckets, |i| {
        values[i].as_deref().map(Cow::Borrowed)
    })
}

/// [`row_hash`] of the canonical values `value(i)` gives for columns `0..width`, each
/// made, hashed and dropped in turn: a row's canonical form is never held whole. The
/// bytes hashed are [`key_bytes`] and [`encode`]'s.
pub fn row_hash_with<'a>(
    plan: &TablePlan,
    width: usize,
    buckets: usize,
    value: impl Fn(usize) -> Option<Cow<'a, [u8]>>,
) -> RowHash {
    use std::hash::Hasher;
    fn feed(v: &Option<Cow<'_, [u8]>>, out: &mut dyn FnMut(&[u8])) {
        match v {
            None => out(&[0xFF]),
            Some(v) => {
                out(&[0]);
                out(&(v.len() as u32).to_be_bytes());
                out(v);
            }
        }
    }
    let mut sha = Sha256::new();
    #[allow(deprecated)]
    let mut sip = std::hash::SipHasher::new();
    let key: Vec<usize> = if plan.key.is_empty() {
        (0..width).collect()
    } else {
        plan.key.clone()
    };
    // A value past `memory::LONG_VALUE` is hashed as its digest form, as a reader that
    // reads it in pieces gives it.
    let value = |i: usize| value(i).map(long_values::digest_if_long);
    for i in key {
        feed(&value(i), &mut |b| {
            sha.update(b);
            sip.write(b);
        });
    }
    sha.update([0xFE]);
    for i in 0..width {
        feed(&value(i), &mut |b| sha.update(b));
    }
    let h = sha.finalize();
    let hash = u128::from_be_bytes(h[..16].try_into().expect("16 bytes"));
    let bucket = (sip.finish() % buckets as u64) as usize;
    RowHash { bucket, hash }
}

/// Bytes one side of a narrowing may hold in kept rows (values, how they read, keys,
/// and what holding each costs): rows of about 4 MB each in every narrowed bucket would
/// otherwise be held by the 200,000.
pub const KEPT_BYTES: u64 = 64 << 20;

/// What holding one value costs besides its bytes (its `Option<Vec>` and allocation).
const PER_VALUE: u64 = 64;

/// The rows of the buckets being narrowed, one side's: by key, the canonical values and
/// how they read (for the report), with how many rows had that key. Held within
/// `budget` bytes: past it, the highest buckets are let go, whole (`below`), and rows of
/// buckets from there on are not kept — so both sides, whatever order they read in, keep
/// the same lowest buckets.
#[derive(Debug)]
pub struct Kept {
    pub rows: BTreeMap<Vec<u8>, KeptRow>,
    /// Buckets from this one on are not kept.
    pub below: usize,
    bytes: u64,
    budget: u64,
    keys_of: BTreeMap<usize, Vec<Vec<u8>>>,
}

impl Default for Kept {
    fn default() -> Kept {
        Kept::within(KEPT_BYTES)
    }
}

#[derive(Debug, Clone)]
pub struct KeptRow {
    pub count: u32,
    pub values: Vec<Option<Vec<u8>>>,
    pub shown: Vec<Option<String>>,
}

impl KeptRow {
    fn bytes(&self, key: &[u8]) -> u64 {
        let values: u64 = self.values.iter().flatten().map(|v| v.len() as u64).sum();
        let shown: u64 = self.shown.iter().flatten().map(|v| v.len() as u64).sum();
        key.len() as u64 + values + shown + PER_VALUE * 2 * self.values.len() as u64 + PER_VALUE
    }
}

impl Kept {
    pub fn within(budget: u64) -> Kept {
        Kept {
            rows: BTreeMap::new(),
            below: usize::MAX,
            bytes: 0,
            budget,
            keys_of: BTreeMap::new(),
        }
    }

    /// Whether a row of `bucket` is still kept (ask before making its values).
    pub fn wants(&self, bucket: usize) -> bool {
        bucket < self.below
    }

    /// Let go of every bucket from `below` on (the other side kept fewer).
    pub fn keep_below(&mut self, below: usize) {
        while self
            .keys_of
            .last_key_value()
            .is_some_and(|(b, _)| *b >= below)
        {
            self.drop_last();
        }
        self.below = self.below.min(below);
    }

    /// Let go of the highest bucket held.
    fn drop_last(&mut self) {
        let Some((bucket, keys)) = self.keys_of.pop_last() else {
            return;
        };
        for k in keys {
            if let Some(r) = self.rows.remove(&k) {
                self.bytes = self.bytes.saturating_sub(r.bytes(&k));
            }
        }
        self.below = self.below.min(bucket);
    }

    pub fn add(
        &mut self,
        plan: &TablePlan,
        bucket: usize,
        values: Vec<Option<Vec<u8>>>,
        shown: Vec<Option<String>>,
    ) {
        if !self.wants(bucket) {
            return;
        }
        // Compared as hashed: a long value as its digest form, whichever side read it whole.
        let values: Vec<Option<Vec<u8>>> = values
            .into_iter()
            .map(|v| v.map(|v| long_values::digest_if_long(Cow::Owned(v)).into_owned()))
            .collect();
        let shown = shown
            .into_iter()
            .zip(&values)
            .zip(&plan.columns)
            .map(|((s, v), c)| {
                match v
                    .as_deref()
                    .and_then(|v| long_values::shown_digest(v, c.kind == Kind::Bytes))
                {
                    Some(d) => Some(d),
                    // A jsonb value as it is compared (keys sorted, numbers by value), so
                    // that both sides part where their meaning does, not their key order.
                    None if c.kind == Kind::Jsonb => v
                        .as_deref()
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(String::from)
                        .or(s),
                    None => s,
                }
            })
            .collect();
        let key = key_bytes(plan, &values);
        if let Some(r) = self.rows.get_mut(&key) {
            // A duplicate (a multiset row): counted, its values already held.
            r.count += 1;
            return;
        }
        let row = KeptRow {
            count: 1,
            values,
            shown,
        };
        self.bytes += row.bytes(&key);
        self.keys_of.entry(bucket).or_default().push(key.clone());
        self.rows.insert(key, row);
        while self.bytes > self.budget && !self.keys_of.is_empty() {
            self.drop_last();
        }
    }
}

/// One difference, named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub table: String,
    /// `id=5`, or the row's values for a table compared as a multiset.
    pub key: String,
    /// `value` (a column differs), `only_in_source`, `only_in_target`.
    pub kind: &'static str,
    pub column: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
}

/// What `--deep` found in one table.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TableDeep {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    pub equal: u64,
    pub only_in_source: u64,
    pub only_in_target: u64,
    pub different: u64,
    /// Differing buckets left out of the narrowing (too many differences to itemise):
    /// their rows are counted in none of the above.
    pub buckets_not_itemised: u64,
    /// Rows only in the target that the import recorded as added by its hooks and fired
    /// triggers (not a difference).
    pub added_by_hooks: u64,
    pub compared_columns: Vec<String>,
    pub not_compared: Vec<String>,
    /// Keys compared: `id`, or `(whole row)`.
    pub matched_by: String,
    /// Values the export changed under `--on-invalid fix`: accepted, never counted as
    /// equal in silence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_changes: Vec<AcceptedChange>,
    /// The key maps of the datasets loaded into this table that others follow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_maps: Vec<KeyMapCheck>,
    pub differences: Vec<Difference>,
}

/// A followed dataset's key map (`pgconverge.key_map`): one entry per exported row, each
/// naming a row the target table holds.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct KeyMapCheck {
    pub dataset: String,
    pub exported_rows: u64,
    pub entries: u64,
    /// Entries whose key no row of the table holds.
    pub dangling: u64,
}

impl KeyMapCheck {
    pub fn agrees(&self) -> bool {
        self.entries == self.exported_rows && self.dangling == 0
    }

    pub fn describe(&self) -> String {
        format!(
            "key map of `{}`: {} for {}, {} naming no row",
            escape::text(&self.dataset),
            crate::report::count(self.entries, "entry"),
            crate::report::count(self.exported_rows, "exported row"),
            self.dangling
        )
    }
}

/// Counting a followed dataset's key map: (entries, dangling ones).
pub fn key_map_sql(schema: &str, table: &str, key: &str, dataset: &str) -> String {
    use crate::db::sql::pg::{ident, literal, qualified};
    format!(
        "SELECT count(*), count(*) FILTER (WHERE t.{k} IS NULL) FROM pgconverge.key_map m \
         LEFT JOIN {q} t ON t.{k}::text = m.target_key WHERE m.target_schema = {s} AND m.dataset = {d}",
        s = literal(schema),
        k = ident(key),
        q = qualified(schema, table),
        d = literal(dataset)
    )
}

/// One column's values changed by the export's `--on-invalid fix`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AcceptedChange {
    pub column: String,
    /// The manifest's counters: NULs stripped, invalid UTF-8 replaced, JSON `\u0000`
    /// dropped; and `?` kept for a character UTF-8 has no equivalent of. A live source
    /// shows each again (the `?` by the export's own conversion check).
    pub counted_by_export: u64,
    pub unconvertible_kept: u64,
    /// `--source`: values of the live source the fix changes (None: against the files,
    /// which hold the fixed values).
    pub seen_in_source: Option<u64>,
    pub keys: Vec<String>,
}

impl AcceptedChange {
    /// Every change the export counted.
    pub fn total(&self) -> u64 {
        self.counted_by_export + self.unconvertible_kept
    }

    /// The live source shows as many changed values as the export counted.
    pub fn agrees(&self) -> bool {
        self.seen_in_source.is_none_or(|n| n == self.total())
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "column `{}`: {} values changed by --on-invalid fix ({} NULs stripped, invalid UTF-8 replaced or JSON \\u0000 dropped; {} `?` for a character UTF-8 has no equivalent of)",
            self.column,
            self.total(),
            self.counted_by_export,
            self.unconvertible_kept
        );
        if let Some(n) = self.seen_in_source {
            s.push_str(&format!("; the live source shows {n}"));
        }
        if !self.keys.is_empty() {
            s.push_str(&format!(", e.g. {}", self.keys.join("; ")));
        }
        s
    }
}

impl TableDeep {
    pub fn ok(&self) -> bool {
        self.accepted_changes.iter().all(AcceptedChange::agrees)
            && self.key_maps.iter().all(KeyMapCheck::agrees)
            && self.only_in_source == 0
            && self.only_in_target == 0
            && self.different == 0
            && self.buckets_not_itemised == 0
            && self.source_rows + self.added_by_hooks == self.target_rows
    }

    /// Rows only in the target that match what the import recorded its hooks and fired
    /// triggers added (`adjustment`) are theirs, not a difference.
    pub fn explain_hooks(&mut self, adjustment: i64) {
        if adjustment > 0
            && self.only_in_target == adjustment as u64
            && self.only_in_source == 0
            && self.different == 0
            && self.buckets_not_itemised == 0
        {
            self.added_by_hooks = adjustment as u64;
            self.only_in_target = 0;
            self.differences.retain(|d| d.kind != "only_in_target");
        }
    }
}

/// At most `n` characters of a value, for messages.
pub fn shorten(v: &str, n: usize) -> String {
    match v.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

/// Two differing values as a difference shows them, `n` characters each: from their
/// start, or — when they part later than that — from a little before the first
/// character where they part, which is named.
pub fn shown_apart(a: &str, b: &str, n: usize) -> (String, String) {
    let at = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    if at < n {
        return (shorten(a, n), shorten(b, n));
    }
    let from = at - n / 4;
    let window = |v: &str| {
        let rest: String = v.chars().skip(from).collect::<String>();
        format!("…[from character {}] {}", from + 1, shorten(&rest, n))
    };
    (window(a), window(b))
}

/// How a value reads in a report, kept only for a row of a differing bucket: a value
/// past [`crate::memory::LONG_VALUE`] is compared (and shown) as its digest, so only
/// its length is kept here.
pub fn shown_value(v: &[u8]) -> String {
    match v.len() as u64 > crate::memory::LONG_VALUE {
        true => format!("({} bytes)", v.len()),
        false => String::from_utf8_lossy(v).into_owned(),
    }
}

/// Compare the kept rows of both sides (the narrowed buckets). Returns the counts and
/// up to `max` differences.
pub fn compare(plan: &TablePlan, source: &Kept, target: &Kept, max: usize, out: &mut TableDeep) {
    let keys: BTreeSet<&Vec<u8>> = source.rows.keys().chain(target.rows.keys()).collect();
    let key_text = |row: &KeptRow| -> String {
        if plan.key.is_empty() {
            let all: Vec<String> = plan
                .columns
                .iter()
                .zip(row.shown.iter().zip(&row.values))
                .map(|(c, (v, value))| {
                    // A long value's digest whole: it is what tells two rows apart.
                    let digest = value.as_deref().is_some_and(long_values::is_digest);
                    format!(
                        "{}={}",
                        escape::text(&c.column),
                        v.as_deref().map_or("NULL".into(), |v| match digest {
                            true => escape::text(v).into_owned(),
                            false => escape::prefix(v.as_bytes(), 20),
                        })
                    )
                })
                .collect();
            return format!("({})", all.join(", "));
        }
        plan.key
            .iter()
            .map(|&i| {
                format!(
                    "{}={}",
                    escape::text(&plan.columns[i].column),
                    row.shown[i]
                        .as_deref()
                        .map_or("NULL".into(), |v| escape::prefix(v.as_bytes(), 64))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A value difference: both sides from where they part.
    let shown = |s: &Option<String>, t: &Option<String>| match (s, t) {
        (Some(s), Some(t)) => {
            let (s, t) = shown_apart(s, t, 60);
            (Some(s), Some(t))
        }
        _ => (
            s.as_deref().map(|v| shorten(v, 60)),
            t.as_deref().map(|v| shorten(v, 60)),
        ),
    };
    let push = |d: Difference, out: &mut TableDeep| {
        if out.differences.len() < max {
            out.differences.push(d);
        }
    };
    for k in keys {
        match (source.rows.get(k), target.rows.get(k)) {
            (Some(s), Some(t)) => {
                let n = s.count.min(t.count) as u64;
                let differing: Vec<usize> = (0..plan.columns.len())
                    .filter(|&i| s.values[i] != t.values[i])
                    .collect();
                if differing.is_empty() {
                    out.equal += n;
                } else {
                    out.different += n;
                    for i in differing {
                        push(
                            Difference {
                                table: plan.table.clone(),
                                key: key_text(t),
                                kind: "value",
                                column: Some(plan.columns[i].column.clone()),
                                source: shown(&s.shown[i], &t.shown[i]).0,
                                target: shown(&s.shown[i], &t.shown[i]).1,
                            },
                            out,
                        );
                    }
                }
                // Duplicates of a key (a multiset row) count on the side that has more.
                if s.count != t.count {
                    let (more, kind) = if s.count > t.count {
                        out.only_in_source += (s.count - t.count) as u64;
                        (s, "only_in_source")
                    } else {
                        out.only_in_target += (t.count - s.count) as u64;
                        (t, "only_in_target")
                    };
                    push(
                        Difference {
                            table: plan.table.clone(),
                            key: key_text(more),
                            kind,
                            column: None,
                            source: None,
                            target: None,
                        },
                        out,
                    );
                }
            }
            (Some(s), None) => {
                out.only_in_source += s.count as u64;
                push(
                    Difference {
                        table: plan.table.clone(),
                        key: key_text(s),
                        kind: "only_in_source",
                        column: None,
                        source: None,
                        target: None,
                    },
                    out,
                );
            }
            (None, Some(t)) => {
                out.only_in_target += t.count as u64;
                push(
                    Difference {
                        table: plan.table.clone(),
                        key: key_text(t),
                        kind: "only_in_target",
                        column: None,
                        source: None,
                        target: None,
                    },
                    out,
                );
            }
            (None, None) => {}
        }
    }
}

impl Difference {
    /// `table `t`, id=5, column `name`: source "a", target "a "`.
    pub fn message(&self) -> String {
        let q = |v: &Option<String>| match v {
            Some(v) => escape::quoted(v),
            None => "NULL".into(),
        };
        match self.kind {
            "value" => format!(
                "table `{}`, {}, column `{}`: source {}, target {}",
                escape::text(&self.table),
                self.key,
                escape::text(self.column.as_deref().unwrap_or("?")),
                q(&self.source),
                q(&self.target)
            ),
            "only_in_source" => format!(
                "table `{}`, {}: only in the source",
                escape::text(&self.table),
                self.key
            ),
            _ => format!(
                "table `{}`, {}: only in the target",
                escape::text(&self.table),
                self.key
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::canon::Before;

    #[test]
    fn values_that_part_late_are_shown_from_where_they_part() {
        let a = format!("{}xyz", "a".repeat(100));
        let b = format!("{}xYz", "a".repeat(100));
        let (sa, sb) = shown_apart(&a, &b, 60);
        assert_eq!(sa, format!("…[from character 87] {}xyz", "a".repeat(14)));
        assert_eq!(sb, format!("…[from character 87] {}xYz", "a".repeat(14)));
        assert_eq!(shown_apart("abc", "abd", 60), ("abc".into(), "abd".into()));
        let (sa, _) = shown_apart(&"q".repeat(200), &"r".repeat(200), 60);
        assert_eq!(sa, format!("{}…", "q".repeat(60)));
        assert_eq!(shown_value(b"short"), "short");
        let long = vec![b'x'; crate::memory::LONG_VALUE as usize + 1];
        assert_eq!(shown_value(&long), format!("({} bytes)", long.len()));
    }
    use crate::verify::canon::Kind;

    fn plan(key: bool) -> TablePlan {
        TablePlan {
            table: "t".into(),
            datasets: vec!["t".into()],
            columns: vec![
                Compared {
                    column: "id".into(),
                    kind: Kind::Int,
                    sources: vec![(Some("id".into()), Before::default())],
                    follows: None,
                },
                Compared {
                    column: "name".into(),
                    kind: Kind::Text { trim: false },
                    sources: vec![(Some("name".into()), Before::default())],
                    follows: None,
                },
            ],
            key: if key { vec![0] } else { vec![] },
            not_compared: vec![],
        }
    }

    /// The streamed hash is SHA-256 over `key_bytes`, 0xFE and `encode` of the row, and
    /// its bucket SipHash over `key_bytes`, exactly as if each were built whole.
    #[test]
    fn a_row_hashed_value_by_value_is_hashed_as_its_bytes_whole() {
        use std::hash::Hasher;
        for key in [true, false] {
            let p = plan(key);
            for values in [row("1", Some("a")), row("22", None), row("", Some(""))] {
                let k = key_bytes(&p, &values);
                let mut whole = k.clone();
                whole.push(0xFE);
                encode(&values, &mut whole);
                let sha = Sha256::digest(&whole);
                #[allow(deprecated)]
                let mut sip = std::hash::SipHasher::new();
                sip.write(&k);
                let h = row_hash(&p, &values, 7);
                assert_eq!(h.hash, u128::from_be_bytes(sha[..16].try_into().unwrap()));
                assert_eq!(h.bucket, (sip.finish() % 7) as usize);
            }
        }
    }

    fn row(id: &str, name: Option<&str>) -> Vec<Option<Vec<u8>>> {
        vec![
            Some(id.as_bytes().to_vec()),
            name.map(|n| n.as_bytes().to_vec()),
        ]
    }

    fn side(p: &TablePlan, rows: &[Vec<Option<Vec<u8>>>]) -> (Buckets, Kept) {
        let mut b = Buckets::new(bucket_count(0));
        let mut k = Kept::default();
        for r in rows {
            b.add(row_hash(p, r, b.count.len()));
            let shown = r.iter().map(|v| v.as_deref().map(shown_value)).collect();
            k.add(p, row_hash(p, r, b.count.len()).bucket, r.clone(), shown);
        }
        (b, k)
    }

    /// A jsonb difference reads where the meaning parts, not where the two texts' key
    /// orders do: both sides are shown in the form they are compared in.
    #[test]
    fn a_jsonb_difference_is_shown_where_the_meaning_parts() {
        let mut p = plan(true);
        p.columns[1].kind = Kind::Jsonb;
        let side = |raw: &str| {
            let mut k = Kept::default();
            let canon = crate::verify::canon_json::canonical_json(raw.as_bytes()).unwrap();
            k.add(
                &p,
                0,
                vec![Some(b"1".to_vec()), Some(canon)],
                vec![Some("1".into()), Some(raw.into())],
            );
            k
        };
        let pad = "x".repeat(80);
        let s = side(&format!(
            r#"{{"zeta": "{pad}", "alpha": 1, "color": "blue"}}"#
        ));
        let t = side(&format!(
            r#"{{"alpha": 1, "color": "red", "zeta": "{pad}"}}"#
        ));
        let mut out = TableDeep::default();
        compare(&p, &s, &t, 10, &mut out);
        let d = &out.differences[0];
        let (src, tgt) = (d.source.clone().unwrap(), d.target.clone().unwrap());
        assert!(src.contains("blue") && tgt.contains("red"), "{src} / {tgt}");
    }

    /// Past its budget a side lets go of its highest buckets, whole, whatever order the
    /// rows came in: both sides keep the same lowest buckets, within the budget.
    #[test]
    fn kept_rows_stay_within_their_budget_and_keep_the_lowest_buckets() {
        let p = plan(true);
        let rows: Vec<_> = (0..2000)
            .map(|i| row(&i.to_string(), Some(&"v".repeat(1000 + i % 7))))
            .collect();
        let n = 64;
        let keep = |rows: &[Vec<Option<Vec<u8>>>], budget: u64| {
            let mut k = Kept::within(budget);
            for r in rows {
                let b = row_hash(&p, r, n).bucket;
                if k.wants(b) {
                    let shown = r.iter().map(|v| v.as_deref().map(shown_value)).collect();
                    k.add(&p, b, r.clone(), shown);
                }
                assert!(k.bytes <= budget, "{} > {budget}", k.bytes);
            }
            k
        };
        let all = keep(&rows, u64::MAX);
        assert_eq!((all.rows.len(), all.below), (2000, usize::MAX));
        let mut reversed = rows.clone();
        reversed.reverse();
        for budget in [0, 3_000, 100_000, 1_000_000, 3_000_000] {
            let (mut a, mut b) = (keep(&rows, budget), keep(&reversed, budget));
            let below = a.below.min(b.below);
            a.keep_below(below);
            b.keep_below(below);
            let buckets = |k: &Kept| k.keys_of.keys().copied().collect::<BTreeSet<_>>();
            assert_eq!(buckets(&a), buckets(&b), "budget {budget}");
            assert!(buckets(&a).iter().all(|&x| x < below));
            // Every row of a bucket kept is there: a bucket is kept whole or not at all.
            let whole: usize = all.keys_of.range(..below).map(|(_, keys)| keys.len()).sum();
            assert_eq!(a.rows.len(), whole, "budget {budget}");
            let mut out = TableDeep::default();
            compare(&p, &a, &b, 10, &mut out);
            assert_eq!((out.equal as usize, out.different), (whole, 0));
        }
    }

    #[test]
    fn buckets_agree_in_any_order_and_narrow_to_the_difference() {
        let p = plan(true);
        let rows: Vec<_> = (0..1000).map(|i| row(&i.to_string(), Some("x"))).collect();
        let mut shuffled = rows.clone();
        shuffled.reverse();
        let (a, _) = side(&p, &rows);
        let (b, _) = side(&p, &shuffled);
        assert!(a.differing(&b).is_empty());
        // One trailing space, one NULL for '', one id changed (the count still matches).
        let mut changed = rows.clone();
        changed[5] = row("5", Some("x "));
        changed[6] = row("6", None);
        changed[7] = row("7000", Some("x"));
        let (s, ks) = side(&p, &rows);
        let (t, kt) = side(&p, &changed);
        let differing = s.differing(&t);
        assert!(!differing.is_empty() && differing.len() <= 4);
        let mut out = TableDeep::default();
        compare(&p, &ks, &kt, 10, &mut out);
        assert_eq!(
            (out.different, out.only_in_source, out.only_in_target),
            (2, 1, 1)
        );
        let msgs: Vec<String> = out.differences.iter().map(Difference::message).collect();
        assert!(
            msgs.contains(
                &r#"table `t`, id=5, column `name`: source "x", target "x ""#.to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(
                &r#"table `t`, id=6, column `name`: source "x", target NULL"#.to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"table `t`, id=7: only in the source".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"table `t`, id=7000: only in the target".to_string()),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_table_without_a_key_is_a_multiset() {
        let p = plan(false);
        let rows = vec![row("1", Some("a")), row("1", Some("a")), row("2", None)];
        let fewer = vec![row("1", Some("a")), row("2", None)];
        let (s, ks) = side(&p, &rows);
        let (t, kt) = side(&p, &fewer);
        assert!(!s.differing(&t).is_empty());
        let mut out = TableDeep::default();
        compare(&p, &ks, &kt, 10, &mut out);
        assert_eq!(
            (out.equal, out.only_in_source, out.only_in_target),
            (2, 1, 0)
        );
    }
}
