//! PURE: values read in pieces, so that a driver never carries a long value whole.
//!
//! A column that may hold a value longer than [`memory::LONG_VALUE`] is selected as NULL
//! where its value is that long, with a trailing column saying so (its length in
//! characters and in bytes). A reader sets such rows aside (their keys only) and, once the
//! table's stream has ended, reads each again by its primary key on the same session
//! (so inside the same snapshot), every long value in pieces of [`memory::LONG_PIECE`]
//! characters (a bytea's: bytes, written in hex): the value is then held once, at its
//! exact length, to be encoded or hashed.
//! A table's rows are written in another order then, which nothing depends on (files
//! are loaded and compared as sets). Tables without a key this can find a row by (no
//! primary key, a mapping's `query`, a key of another type than an integer, a UTF-8
//! string or a date/time), and every non-table read, keep reading values whole.

use crate::config::Engine;
use crate::db::catalog::{Read, ReadColumn, ReadFrom};
use crate::db::sql;
use crate::memory::{LONG_PIECE, LONG_VALUE, PIECE_BYTES};

/// How a primary-key column's value, as read, finds its row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// Written as a number (checked to be digits).
    Integer,
    /// Written as a UTF-8 string literal the server converts to the column's type.
    Text,
}

/// How a long value's pieces are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongForm {
    /// Its read form's characters (MySQL: every type; PostgreSQL: its text).
    Text,
    /// Bytes, each piece written as hex digits in lower case: a PostgreSQL `bytea`
    /// (after one `\x`, as `bytea_output = hex` writes the whole value), or a MySQL
    /// value verify compares as bytes.
    Bytea,
}

/// Whether values of a source type may be longer than [`LONG_VALUE`] (MySQL's and
/// PostgreSQL's names), and how their pieces are read; every shorter type is read whole.
pub fn may_be_long(data_type: &str) -> Option<LongForm> {
    match data_type {
        "bytea" => Some(LongForm::Bytea),
        "mediumtext" | "longtext" | "mediumblob" | "longblob" | "json" | "text" | "jsonb"
        | "xml" => Some(LongForm::Text),
        _ => None,
    }
}

/// How a primary-key column of `data_type`, read as `read`, finds its row again; None
/// when it cannot (its text form may not compare equal to the stored value).
pub fn key_form(data_type: &str, read: Read, converted: bool) -> Option<KeyForm> {
    if read != Read::Text || converted {
        return None;
    }
    match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "int2" | "int4"
        | "int8" => Some(KeyForm::Integer),
        "char" | "varchar" | "bpchar" | "text" | "uuid" | "date" | "datetime" | "timestamp"
        | "timestamptz" => Some(KeyForm::Text),
        _ => None,
    }
}

/// The columns of one read that may be long, and the key that finds a row again.
#[derive(Debug, Clone, PartialEq)]
pub struct Long {
    /// Positions (in the read's columns) of the columns that may be long.
    pub columns: Vec<usize>,
    /// Positions and forms of the primary key's columns.
    pub key: Vec<(usize, KeyForm)>,
}

impl Long {
    /// The long-value plan of a read, or None when every value is read whole.
    pub fn of(columns: &[ReadColumn<'_>], from: ReadFrom<'_>) -> Option<Long> {
        if !matches!(from, ReadFrom::Table { .. }) {
            return None;
        }
        let long: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i].long.is_some())
            .collect();
        let key: Vec<(usize, KeyForm)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.key.map(|k| (i, k)))
            .collect();
        (!long.is_empty() && !key.is_empty()).then_some(Long { columns: long, key })
    }

    /// The key values of a row, as read.
    pub fn key_of(&self, values: &[Option<&[u8]>]) -> anyhow::Result<Vec<Vec<u8>>> {
        self.key
            .iter()
            .map(|&(i, _)| {
                values[i]
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| anyhow::anyhow!("a primary-key column read NULL"))
            })
            .collect()
    }
}

/// How `column` is selected when it may be long: NULL where its value is longer than
/// [`LONG_VALUE`], `read` (its read form) elsewhere.
pub fn value_expr(engine: Engine, form: LongForm, column: &str, read: &str) -> String {
    match engine {
        Engine::Mysql => format!("IF(OCTET_LENGTH({column}) > {LONG_VALUE}, NULL, {read})"),
        Engine::Postgresql => format!(
            "CASE WHEN {} > {LONG_VALUE} THEN NULL ELSE {read} END",
            pg_length(form, column)
        ),
    }
}

/// A PostgreSQL value's length in bytes: a bytea's own, anything else's text.
fn pg_length(form: LongForm, column: &str) -> String {
    match form {
        LongForm::Bytea => format!("octet_length({column})"),
        LongForm::Text => format!("octet_length({column}::text)"),
    }
}

/// The trailing column that flags a long value of `column`: `<units> <bytes>`, the
/// units its pieces count (characters; a bytea's bytes) and the bytes of the value as
/// read (a bytea's `\x` and hex included); NULL where the value is read whole.
pub fn flag_expr(engine: Engine, form: LongForm, column: &str, read: &str) -> String {
    match (engine, form) {
        // The bytes as the client receives them: a text in another character set than
        // the session's arrives converted (a latin1 `é` is two bytes), a binary string
        // as it is stored.
        (Engine::Mysql, LongForm::Text) => format!(
            "IF(OCTET_LENGTH({column}) > {LONG_VALUE}, CONCAT(CHAR_LENGTH({read}), ' ', \
             IF(CHARSET({read}) = 'binary', OCTET_LENGTH({read}), \
             OCTET_LENGTH(CONVERT({read} USING utf8mb4)))), NULL)"
        ),
        (Engine::Mysql, LongForm::Bytea) => format!(
            "IF(OCTET_LENGTH({column}) > {LONG_VALUE}, CONCAT(OCTET_LENGTH({column}), ' ', 2 * OCTET_LENGTH({column})), NULL)"
        ),
        (Engine::Postgresql, LongForm::Text) => format!(
            "CASE WHEN octet_length({column}::text) > {LONG_VALUE} THEN length({column}::text)::text || ' ' || octet_length({column}::text)::text END"
        ),
        (Engine::Postgresql, LongForm::Bytea) => format!(
            "CASE WHEN octet_length({column}) > {LONG_VALUE} THEN octet_length({column})::text || ' ' || (2 + 2 * octet_length({column})::int8)::text END"
        ),
    }
}

/// A flag column's value: (characters, bytes) of a long value.
pub fn parse_flag(v: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (chars, bytes) = s.split_once(' ')?;
    Some((chars.parse().ok()?, bytes.parse().ok()?))
}

/// ` WHERE k1 = ... AND k2 = ...` finding a row by its key values as read; None when a
/// value is not what its form says (an integer key that is not digits).
pub fn key_condition(
    engine: Engine,
    names: &[&str],
    key: &[(usize, KeyForm)],
    values: &[Vec<u8>],
) -> Option<String> {
    let mut parts = Vec::with_capacity(key.len());
    for ((i, form), v) in key.iter().zip(values) {
        let name = names[*i];
        let column = match engine {
            Engine::Mysql => sql::my::ident(name),
            Engine::Postgresql => sql::pg::ident(name),
        };
        let literal = match form {
            KeyForm::Integer => {
                let digits = v.strip_prefix(b"-").unwrap_or(v);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                String::from_utf8(v.clone()).ok()?
            }
            KeyForm::Text => match engine {
                // A hex literal never needs escaping; the introducer makes it a UTF-8
                // string, which the column's own collation then compares (its index is used).
                Engine::Mysql => format!("_utf8mb4 X'{}'", hex::encode(v)),
                Engine::Postgresql => sql::pg::literal(std::str::from_utf8(v).ok()?),
            },
        };
        parts.push(format!("{column} = {literal}"));
    }
    Some(format!(" WHERE {}", parts.join(" AND ")))
}

/// A row's key values as errors show them.
pub fn shown_key(key: &[Vec<u8>]) -> String {
    let shown: Vec<String> = key
        .iter()
        .map(|k| crate::escape::bytes(k).into_owned())
        .collect();
    shown.join(", ")
}

/// A long value read in pieces must be as long as its flag said.
pub fn check_length(column: &str, read: u64, len: u64) -> anyhow::Result<()> {
    match read == len {
        true => Ok(()),
        false => Err(anyhow::anyhow!(
            "its `{column}` read {read} bytes in pieces but is {len} bytes long"
        )),
    }
}

/// What starts a digest form (a NUL, which no text a reader gives holds).
const DIGEST_MARK: &[u8] = b"\x00digest:";

/// The digest form of a value of `len` bytes whose SHA-256 is `sha`: what verify
/// compares in place of a value longer than [`LONG_VALUE`].
fn digest_form(len: u64, sha: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DIGEST_MARK.len() + 8 + sha.len());
    out.extend_from_slice(DIGEST_MARK);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(sha);
    out
}

/// Whether `v` is a digest form.
pub fn is_digest(v: &[u8]) -> bool {
    v.len() == DIGEST_MARK.len() + 8 + 32 && v.starts_with(DIGEST_MARK)
}

/// A value as verify compares it: itself, or its digest form when it is longer than
/// [`LONG_VALUE`] (made here from the whole value, or by [`Gathered`] from its pieces:
/// the same bytes either way).
pub fn digest_if_long(v: std::borrow::Cow<'_, [u8]>) -> std::borrow::Cow<'_, [u8]> {
    use sha2::Digest;
    match v.len() as u64 > LONG_VALUE && !is_digest(&v) {
        true => digest_form(v.len() as u64, &sha2::Sha256::digest(&v)).into(),
        false => v,
    }
}

/// How a digest form reads in a report: its length and the start of its SHA-256 (of
/// bytes compared as their `hex` digits: both lengths).
pub fn shown_digest(v: &[u8], hex: bool) -> Option<String> {
    is_digest(v).then(|| {
        let len = u64::from_be_bytes(v[DIGEST_MARK.len()..][..8].try_into().expect("8 bytes"));
        let sha = hex::encode(&v[DIGEST_MARK.len() + 8..][..8]);
        match hex {
            true => format!("({} bytes as {len} hex digits, sha256 {sha}…)", len / 2),
            false => format!("({len} bytes, sha256 {sha}…)"),
        }
    })
}

/// A long value as its pieces arrive: held whole (after its form's prefix, a bytea's
/// `\x`), or — when `digest` and the pieces pass [`LONG_VALUE`] — hashed as they come
/// and given as its digest form ([`digest_if_long`] of the pieces).
pub struct Gathered {
    prefix: &'static [u8],
    held: Vec<u8>,
    sha: Option<sha2::Sha256>,
    len: u64,
    digest: bool,
    /// Compared as the base64 of its bytes (a mapping's `encode`): the digest is of
    /// that text, made as the pieces come (their last 0–2 bytes carried to the next).
    base64: bool,
    carry: Vec<u8>,
}

impl Gathered {
    /// A value of `form` read from PostgreSQL (`pg`: a bytea is given after `\x`) or
    /// MySQL, of about `capacity` bytes.
    pub fn new(form: LongForm, pg: bool, digest: bool, capacity: u64) -> Gathered {
        let prefix: &[u8] = match (form, pg) {
            (LongForm::Bytea, true) => b"\\x",
            _ => b"",
        };
        // Held whole: with its prefix from the start, so the value is never copied.
        let held = match digest {
            true => Vec::new(),
            false => {
                let mut held = Vec::with_capacity(capacity as usize);
                held.extend_from_slice(prefix);
                held
            }
        };
        Gathered {
            prefix,
            held,
            sha: None,
            len: 0,
            digest,
            base64: false,
            carry: Vec::new(),
        }
    }

    /// A MySQL value compared as the base64 of its bytes (read as its stored bytes):
    /// held as its bytes while their base64 is at most [`LONG_VALUE`], else given as
    /// the digest form of their base64 ([`digest_if_long`] of it).
    pub fn base64() -> Gathered {
        Gathered {
            base64: true,
            ..Gathered::new(LongForm::Text, false, true, 0)
        }
    }

    /// The length of `n` bytes in base64 (with padding).
    fn base64_len(n: u64) -> u64 {
        n.div_ceil(3) * 4
    }

    /// Hash the base64 of the carried bytes that make whole groups of three.
    fn hash_base64(&mut self) {
        use base64::Engine;
        use sha2::Digest;
        let whole = self.carry.len() / 3 * 3;
        if let Some(sha) = &mut self.sha {
            sha.update(base64::engine::general_purpose::STANDARD.encode(&self.carry[..whole]));
        }
        self.carry.drain(..whole);
    }

    pub fn push(&mut self, piece: &[u8]) {
        use sha2::Digest;
        self.len += piece.len() as u64;
        if self.base64 {
            if self.sha.is_none() {
                self.held.extend_from_slice(piece);
                if Self::base64_len(self.len) > LONG_VALUE {
                    self.sha = Some(sha2::Sha256::new());
                    self.carry = std::mem::take(&mut self.held);
                    self.hash_base64();
                }
            } else {
                self.carry.extend_from_slice(piece);
                self.hash_base64();
            }
            return;
        }
        match &mut self.sha {
            Some(sha) => sha.update(piece),
            None if self.digest && self.len > LONG_VALUE => {
                let mut sha = sha2::Sha256::new();
                sha.update(&self.held);
                sha.update(piece);
                self.held = Vec::new();
                self.sha = Some(sha);
            }
            None => self.held.extend_from_slice(piece),
        }
    }

    /// The bytes read, as its flag counts them (the prefix included).
    pub fn read(&self) -> u64 {
        self.prefix.len() as u64 + self.len
    }

    /// The value: whole, or its digest form.
    pub fn finish(mut self) -> Vec<u8> {
        use sha2::Digest;
        if self.base64 {
            use base64::Engine;
            return match self.sha.take() {
                Some(mut sha) => {
                    sha.update(base64::engine::general_purpose::STANDARD.encode(&self.carry));
                    digest_form(Self::base64_len(self.len), &sha.finalize())
                }
                None => self.held,
            };
        }
        match self.sha {
            Some(sha) => digest_form(self.len, &sha.finalize()),
            None if !self.digest || self.prefix.is_empty() => self.held,
            // At most `LONG_VALUE` held: the copy is small.
            None => [self.prefix, &self.held].concat(),
        }
    }
}

/// The most bytes a piece holds on average, per engine: mysql_async keeps the buffers
/// of large packets for reuse (4 MB pieces took a 50 MB value's export from 82 to
/// 134 MB), tokio-postgres one message buffer (4 MB pieces took a 40 MB text's deep
/// verify from 11.9 to 4.1 s, its peak from 72 to 78 MB).
pub fn piece_bytes(engine: Engine) -> u64 {
    match engine {
        Engine::Mysql => LONG_PIECE,
        Engine::Postgresql => PIECE_BYTES,
    }
}

/// The pieces of a long value of `chars` characters (`bytes` as read) from `engine`:
/// (first character, 1-based; count). The servers read the value from its start for
/// every piece (a text's characters are counted, a compressed value inflated), so a
/// value's read costs its length times its pieces: a value is cut into about eight,
/// each at least [`LONG_PIECE`] characters and at most the engine's
/// [`piece_bytes`] on average.
pub fn pieces(engine: Engine, chars: u64, bytes: u64) -> impl Iterator<Item = (u64, u64)> {
    let per_byte = |n: u64| (n as u128 * chars as u128 / bytes.max(1) as u128) as u64;
    let size = (chars / 8)
        .min(per_byte(piece_bytes(engine)))
        .max(LONG_PIECE);
    (0..chars.div_ceil(size)).map(move |k| {
        let from = k * size + 1;
        (from, size.min(chars - k * size))
    })
}

/// The statement reading one piece of `read` (a column's read form; on PostgreSQL the
/// column) from the row `condition` finds in `table` (qualified).
pub fn piece_sql(
    engine: Engine,
    form: LongForm,
    table: &str,
    read: &str,
    condition: &str,
    piece: (u64, u64),
) -> String {
    let (from, n) = piece;
    let what = match (engine, form) {
        (Engine::Mysql, LongForm::Text) => format!("SUBSTRING({read}, {from}, {n})"),
        (Engine::Mysql, LongForm::Bytea) => format!("LOWER(HEX(SUBSTRING({read}, {from}, {n})))"),
        (Engine::Postgresql, LongForm::Text) => {
            format!("substring({read}::text from {from} for {n})")
        }
        (Engine::Postgresql, LongForm::Bytea) => {
            format!("encode(substring({read} from {from} for {n}), 'hex')")
        }
    };
    format!("SELECT {what} FROM {table}{condition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_gathered_in_pieces_reads_as_the_whole_value_would() {
        use std::borrow::Cow;
        let long = (LONG_VALUE + 5) as usize;
        for (len, digest, form, pg) in [
            (10, true, LongForm::Text, false),
            (long, true, LongForm::Text, false),
            (long, false, LongForm::Text, false),
            (LONG_VALUE as usize, true, LongForm::Bytea, true),
            (long, true, LongForm::Bytea, true),
            (long, false, LongForm::Bytea, true),
        ] {
            let value: Vec<u8> = (0..len).map(|i| b'a' + (i % 7) as u8).collect();
            let mut g = Gathered::new(form, pg, digest, len as u64);
            for piece in value.chunks(LONG_PIECE as usize / 3) {
                g.push(piece);
            }
            let prefix: &[u8] = if pg && form == LongForm::Bytea {
                b"\\x"
            } else {
                b""
            };
            assert_eq!(g.read(), (prefix.len() + len) as u64);
            let got = g.finish();
            let whole = [prefix, &value].concat();
            match digest {
                false => assert_eq!(got, whole),
                true => {
                    let canonical = match is_digest(&got) {
                        true => got.clone(),
                        false => got.strip_prefix(prefix).unwrap().to_vec(),
                    };
                    assert_eq!(
                        canonical,
                        digest_if_long(Cow::Borrowed(&value)).into_owned()
                    );
                    assert_eq!(is_digest(&got), len as u64 > LONG_VALUE);
                }
            }
        }
        // Bytes compared as their base64: the digest of the base64 text, whatever the
        // pieces; at most LONG_VALUE of base64, the bytes themselves.
        use base64::Engine;
        for len in [
            10usize,
            3 * (LONG_VALUE as usize / 4),
            3 * (LONG_VALUE as usize / 4) + 1,
            5_000_003,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let text = base64::engine::general_purpose::STANDARD
                .encode(&bytes)
                .into_bytes();
            for piece in [1 << 20, (1 << 20) + 1, 7] {
                if piece == 7 && len > 10 {
                    continue;
                }
                let mut g = Gathered::base64();
                for p in bytes.chunks(piece) {
                    g.push(p);
                }
                assert_eq!(g.read(), len as u64);
                let got = g.finish();
                match text.len() as u64 > LONG_VALUE {
                    true => assert_eq!(
                        got,
                        digest_if_long(Cow::Borrowed(&text)).into_owned(),
                        "{len} in {piece}"
                    ),
                    false => assert_eq!(got, bytes, "{len}"),
                }
            }
        }
        let v = vec![b'x'; long];
        let d = digest_if_long(Cow::Borrowed(&v));
        assert!(
            shown_digest(&d, false)
                .unwrap()
                .starts_with(&format!("({long} bytes, sha256 "))
        );
        assert!(shown_digest(&d, true).unwrap().starts_with(&format!(
            "({} bytes as {long} hex digits, sha256 ",
            long / 2
        )));
        assert_eq!(digest_if_long(d.clone()), d, "a digest form stays as it is");
        assert_eq!(shown_digest(b"short", false), None);
    }

    #[test]
    fn pieces_cover_every_character_once() {
        for (chars, bytes) in [
            (0, 0),
            (1, 1),
            (LONG_PIECE - 1, LONG_PIECE - 1),
            (LONG_PIECE, 4 * LONG_PIECE),
            (LONG_PIECE + 1, LONG_PIECE + 1),
            (5 * LONG_PIECE + 7, 5 * LONG_PIECE + 7),
            (50 * LONG_PIECE + 3, 50 * LONG_PIECE + 3),
            (50 * LONG_PIECE, 200 * LONG_PIECE),
            (500 * LONG_PIECE, 500 * LONG_PIECE),
            (500 * LONG_PIECE, 1002 * LONG_PIECE),
        ] {
            let mut next = 1;
            let mut count = 0;
            for (from, n) in pieces(Engine::Postgresql, chars, bytes) {
                assert_eq!(from, next);
                assert!(n > 0, "{chars}");
                // At least a LONG_PIECE (the last may be shorter), at most PIECE_BYTES
                // on average.
                assert!(n >= LONG_PIECE || from + n == chars + 1, "{chars} {n}");
                assert!(
                    n <= LONG_PIECE
                        || n as u128 * bytes as u128 <= PIECE_BYTES as u128 * chars as u128,
                    "{chars} {bytes} {n}"
                );
                next = from + n;
                count += 1;
            }
            assert_eq!(next, chars + 1, "{chars}");
            assert!(
                count <= 8
                    || chars / count >= LONG_PIECE.min(PIECE_BYTES * chars / bytes.max(1)) / 2,
                "{chars} {bytes}: {count} pieces"
            );
        }
        // Fewer reads for a long value than a piece of LONG_PIECE each on PostgreSQL;
        // MySQL's pieces stay at LONG_PIECE.
        assert_eq!(pieces(Engine::Postgresql, 50 << 20, 50 << 20).count(), 13);
        assert_eq!(
            pieces(Engine::Postgresql, 500 << 20, 500 << 20).count(),
            125
        );
        assert_eq!(
            pieces(Engine::Postgresql, 50 << 20, (100 << 20) + 2).count(),
            26
        );
        assert_eq!(pieces(Engine::Mysql, 50 << 20, 50 << 20).count(), 50);
        assert_eq!(pieces(Engine::Mysql, 50 << 20, 200 << 20).count(), 50);
    }

    #[test]
    fn key_conditions_quote_what_they_must_and_refuse_what_is_not_a_key() {
        let names = ["id", "we`ird", "n"];
        let key = [(0, KeyForm::Integer), (1, KeyForm::Text)];
        let values = [b"-12".to_vec(), b"a'b".to_vec()];
        assert_eq!(
            key_condition(Engine::Mysql, &names, &key, &values).unwrap(),
            " WHERE `id` = -12 AND `we``ird` = _utf8mb4 X'612762'"
        );
        assert_eq!(
            key_condition(Engine::Postgresql, &names, &key, &values).unwrap(),
            r#" WHERE "id" = -12 AND "we`ird" = 'a''b'"#
        );
        for bad in [&b"1; DROP"[..], b"", b"-", b"1.5"] {
            let values = [bad.to_vec(), b"x".to_vec()];
            assert_eq!(key_condition(Engine::Mysql, &names, &key, &values), None);
        }
    }

    #[test]
    fn flags_read_back_and_forms_are_chosen_by_type() {
        assert_eq!(parse_flag(b"5000000 5000001"), Some((5_000_000, 5_000_001)));
        assert_eq!(parse_flag(b"x"), None);
        for (t, read, converted, want) in [
            ("bigint", Read::Text, false, Some(KeyForm::Integer)),
            ("varchar", Read::Text, false, Some(KeyForm::Text)),
            ("varchar", Read::Text, true, None),
            ("varchar", Read::Bytes, false, None),
            ("decimal", Read::Text, false, None),
            ("float", Read::Double, false, None),
        ] {
            assert_eq!(key_form(t, read, converted), want, "{t}");
        }
        assert_eq!(may_be_long("longblob"), Some(LongForm::Text));
        assert_eq!(may_be_long("bytea"), Some(LongForm::Bytea));
        assert_eq!(may_be_long("varchar"), None);
    }
}
