//! PURE: the change lines of PostgreSQL's `test_decoding` output plugin, as
//! `pg_logical_slot_peek_changes` returns them, and the keys a delta takes from them.
//!
//! A change line is `table <schema>.<table>: <ACTION>: <tuple>` where names are written
//! by `quote_identifier` and a tuple is `name[type]:value` pairs separated by one space.
//! A value is `null`, `unchanged-toast-datum` (an UPDATE that did not touch a TOASTed
//! value), a bare token (integers, floats, numeric, booleans), `B'...'` (bit strings) or a
//! single-quoted literal with `'` doubled (everything else, newlines included). An UPDATE
//! may carry `old-key: <tuple> new-tuple: <tuple>` (the key changed, a key value is
//! TOASTed, or the replica identity is FULL); a DELETE's tuple is the old key; a
//! TRUNCATE's is its flags. `BEGIN`/`COMMIT` lines and messages are not changes.

use crate::codec::binlog_row::{Key, KeyValue, RowKeys};

/// A column's value in a change line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// An UPDATE's TOASTed value it did not change: not in the record.
    Unchanged,
    /// The type's output function's text, unquoted.
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// A tuple's columns, by name, in the record's order.
pub type Tuple = Vec<(String, Value)>;

/// One change of one row (or a TRUNCATE of the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub schema: String,
    pub table: String,
    /// The other tables of a TRUNCATE of several at once, as (schema, table).
    pub more_tables: Vec<(String, String)>,
    pub action: Action,
    /// An UPDATE's `old-key` tuple, when logged.
    pub old_key: Tuple,
    /// An INSERT's or UPDATE's new row; a DELETE's old key (or old row).
    pub tuple: Tuple,
}

/// Parse one line of the plugin's output; None for lines that are not a table's change.
pub fn parse(line: &str) -> Result<Option<Change>, String> {
    let Some(rest) = line.strip_prefix("table ") else {
        return Ok(None);
    };
    let (schema, rest) = identifier(rest)?;
    let rest = rest
        .strip_prefix('.')
        .ok_or_else(|| format!("no `.` after the schema in: {}", head(line)))?;
    let (table, mut rest) = identifier(rest)?;
    // A TRUNCATE of several tables names them all, separated by `, `.
    let mut more_tables = Vec::new();
    while let Some(r) = rest.strip_prefix(", ") {
        let (schema, r) = identifier(r)?;
        let r = r
            .strip_prefix('.')
            .ok_or_else(|| format!("no `.` after the schema in: {}", head(line)))?;
        let (table, r) = identifier(r)?;
        more_tables.push((schema, table));
        rest = r;
    }
    let rest = rest
        .strip_prefix(": ")
        .ok_or_else(|| format!("no `: ` after the table in: {}", head(line)))?;
    let (action, rest) = match rest.split_once(':') {
        Some(("INSERT", r)) => (Action::Insert, r),
        Some(("UPDATE", r)) => (Action::Update, r),
        Some(("DELETE", r)) => (Action::Delete, r),
        Some(("TRUNCATE", r)) => (Action::Truncate, r),
        _ => return Err(format!("an unknown change in: {}", head(line))),
    };
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if !more_tables.is_empty() && action != Action::Truncate {
        return Err(format!("several tables in a row change: {}", head(line)));
    }
    let mut change = Change {
        schema,
        table,
        more_tables,
        action,
        old_key: Vec::new(),
        tuple: Vec::new(),
    };
    if action == Action::Truncate || rest == "(no-tuple-data)" {
        return Ok(Some(change));
    }
    let rest = match rest.strip_prefix("old-key: ") {
        Some(r) => {
            let (old, after) = tuple(r, Some(" new-tuple: "))
                .map_err(|e| format!("{e} in the old key of: {}", head(line)))?;
            change.old_key = old;
            after
        }
        None => rest,
    };
    let (values, _) = tuple(rest, None).map_err(|e| format!("{e} in: {}", head(line)))?;
    change.tuple = values;
    Ok(Some(change))
}

/// The first characters of a line, for errors.
fn head(line: &str) -> String {
    let h: String = line.chars().take(120).collect();
    crate::escape::text(&h).into_owned()
}

/// A name as `quote_identifier` writes it, and what follows it.
fn identifier(s: &str) -> Result<(String, &str), String> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if let Some((_, '"')) = chars.peek() {
                    chars.next();
                    out.push('"');
                    continue;
                }
                return Ok((out, &body[i + 1..]));
            }
            out.push(c);
        }
        return Err("an unterminated quoted name".into());
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    if end == 0 {
        return Err("a name was expected".into());
    }
    Ok((s[..end].to_string(), &s[end..]))
}

/// `name[type]:value` pairs up to `stop` (returning what follows it) or the end.
fn tuple<'a>(mut s: &'a str, stop: Option<&str>) -> Result<(Tuple, &'a str), String> {
    let mut out = Vec::new();
    loop {
        if let Some(stop) = stop
            && let Some(r) = s.strip_prefix(stop.trim_start())
        {
            return Ok((out, r));
        }
        if s.is_empty() {
            return match stop {
                Some(stop) => Err(format!("`{}` expected", stop.trim())),
                None => Ok((out, s)),
            };
        }
        let (name, rest) = identifier(s)?;
        let rest = rest
            .strip_prefix('[')
            .ok_or_else(|| format!("no type after column `{name}`"))?;
        let close =
            type_end(rest).ok_or_else(|| format!("no `]:` after the type of column `{name}`"))?;
        let rest = &rest[close + 2..];
        let (value, rest) = value(rest).map_err(|e| format!("column `{name}`: {e}"))?;
        out.push((name, value));
        s = match rest.strip_prefix(' ') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err("a space expected between columns".into()),
        };
    }
}

/// Where a column's type name ends (`format_type`'s text, `]:` follows it): outside the
/// double quotes of a quoted name, which may hold `]:` itself (`"weird]:d"`).
fn type_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quoted = false;
    for i in 0..b.len() {
        match b[i] {
            b'"' => quoted = !quoted,
            b']' if !quoted && b.get(i + 1) == Some(&b':') => return Some(i),
            _ => {}
        }
    }
    None
}

/// One value and what follows it.
fn value(s: &str) -> Result<(Value, &str), String> {
    if let Some(body) = s.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if let Some((_, '\'')) = chars.peek() {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                return Ok((Value::Text(out), &body[i + 1..]));
            }
            out.push(c);
        }
        return Err("an unterminated quoted value".into());
    }
    let end = s.find(' ').unwrap_or(s.len());
    let token = &s[..end];
    let v = match token {
        "" => return Err("an empty value".into()),
        "null" => Value::Null,
        "unchanged-toast-datum" => Value::Unchanged,
        _ => match token.strip_prefix("B'").and_then(|b| b.strip_suffix('\'')) {
            Some(bits) => Value::Text(bits.to_string()),
            None => Value::Text(token.to_string()),
        },
    };
    Ok((v, &s[end..]))
}

/// The key (before, after) of a row change, in the order of `key`: an INSERT has only an
/// after key, a DELETE only a before key; an UPDATE without an old key did not change its
/// key (before = after); a key value the new tuple left TOASTed and unchanged is the old
/// key's.
pub fn row_keys(change: &Change, key: &[String]) -> Result<RowKeys, String> {
    let pick = |tuple: &[(String, Value)], fallback: &[(String, Value)]| -> Result<Key, String> {
        key.iter()
            .map(|k| {
                let found = |t: &[(String, Value)]| t.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                match found(tuple) {
                    Some(Value::Text(t)) => Ok(KeyValue::Text(t)),
                    Some(Value::Unchanged) => match found(fallback) {
                        Some(Value::Text(t)) => Ok(KeyValue::Text(t)),
                        _ => Err(format!(
                            "key column `{k}` is TOASTed and unchanged, and the change carries no old key for it"
                        )),
                    },
                    Some(Value::Null) => Err(format!("key column `{k}` is null")),
                    None => Err(format!(
                        "the change carries no key column `{k}` (the table's replica identity does not include it)"
                    )),
                }
            })
            .collect()
    };
    Ok(match change.action {
        Action::Insert => (None, Some(pick(&change.tuple, &[])?)),
        Action::Delete => (Some(pick(&change.tuple, &[])?), None),
        Action::Update if change.old_key.is_empty() => {
            let k = pick(&change.tuple, &[])?;
            (Some(k.clone()), Some(k))
        }
        Action::Update => (
            Some(pick(&change.old_key, &[])?),
            Some(pick(&change.tuple, &change.old_key)?),
        ),
        Action::Truncate => (None, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn change_lines_parse_as_the_plugin_writes_them() {
        let cases: Vec<(&str, Option<Change>)> = vec![
            ("BEGIN 726", None),
            ("COMMIT 726", None),
            (
                "table public.\"T x\": INSERT: id[integer]:1 k[text]:'a''b c' \"userId\"[text]:'u' v[text]:'line\nnext' a[integer[]]:'{1,2}' n[numeric]:-1.50 f[boolean]:true b[bit(3)]:B'101' z[text]:null",
                Some(Change {
                    schema: "public".into(),
                    table: "T x".into(),
                    more_tables: vec![],
                    action: Action::Insert,
                    old_key: vec![],
                    tuple: vec![
                        ("id".into(), t("1")),
                        ("k".into(), t("a'b c")),
                        ("userId".into(), t("u")),
                        ("v".into(), t("line\nnext")),
                        ("a".into(), t("{1,2}")),
                        ("n".into(), t("-1.50")),
                        ("f".into(), t("true")),
                        ("b".into(), t("101")),
                        ("z".into(), Value::Null),
                    ],
                }),
            ),
            (
                "table s.t: UPDATE: old-key: id[integer]:1 k[text]:'x' new-tuple: id[integer]:1 k[text]:'new' big[text]:unchanged-toast-datum",
                Some(Change {
                    schema: "s".into(),
                    table: "t".into(),
                    more_tables: vec![],
                    action: Action::Update,
                    old_key: vec![("id".into(), t("1")), ("k".into(), t("x"))],
                    tuple: vec![
                        ("id".into(), t("1")),
                        ("k".into(), t("new")),
                        ("big".into(), Value::Unchanged),
                    ],
                }),
            ),
            (
                "table public.big: TRUNCATE: restart_seqs cascade",
                Some(Change {
                    schema: "public".into(),
                    table: "big".into(),
                    more_tables: vec![],
                    action: Action::Truncate,
                    old_key: vec![],
                    tuple: vec![],
                }),
            ),
            (
                "table public.nokey: DELETE: (no-tuple-data)",
                Some(Change {
                    schema: "public".into(),
                    table: "nokey".into(),
                    more_tables: vec![],
                    action: Action::Delete,
                    old_key: vec![],
                    tuple: vec![],
                }),
            ),
            (
                "table \"we\"\"ird\".\"a.b: c\": DELETE: \"old-key\"[text]:'k: v new-tuple: '",
                Some(Change {
                    schema: "we\"ird".into(),
                    table: "a.b: c".into(),
                    more_tables: vec![],
                    action: Action::Delete,
                    old_key: vec![],
                    tuple: vec![("old-key".into(), t("k: v new-tuple: "))],
                }),
            ),
            (
                "table public.a, \"x y\".\"b, c\": TRUNCATE: (no-flags)",
                Some(Change {
                    schema: "public".into(),
                    table: "a".into(),
                    more_tables: vec![("x y".into(), "b, c".into())],
                    action: Action::Truncate,
                    old_key: vec![],
                    tuple: vec![],
                }),
            ),
            (
                "table public.t: INSERT: id[\"weird]:d\"]:'a4' n[s.\"q\"\"]:x\"[]]:'{1}' m[integer[]]:'{2}'",
                Some(Change {
                    schema: "public".into(),
                    table: "t".into(),
                    more_tables: vec![],
                    action: Action::Insert,
                    old_key: vec![],
                    tuple: vec![
                        ("id".into(), t("a4")),
                        ("n".into(), t("{1}")),
                        ("m".into(), t("{2}")),
                    ],
                }),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "{line}");
        }
        for bad in [
            "table public.t INSERT: id[integer]:1",
            "table public.t: MERGE: id[integer]:1",
            "table public.t: INSERT: id[integer]:'1",
            "table public.t: INSERT: id:1",
            "table public.t: UPDATE: old-key: id[integer]:1",
            "table \"public.t: INSERT: id[integer]:1",
            "table public.t, public.u: INSERT: id[integer]:1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_come_from_the_tuple_or_the_old_key() {
        let key = vec!["id".to_string(), "k".to_string()];
        let keys = |line: &str| row_keys(&parse(line).unwrap().unwrap(), &key);
        let k = |a: &str, b: &str| Some(vec![KeyValue::Text(a.into()), KeyValue::Text(b.into())]);
        assert_eq!(
            keys("table p.t: INSERT: id[integer]:1 k[text]:'a' v[text]:null"),
            Ok((None, k("1", "a")))
        );
        assert_eq!(
            keys("table p.t: DELETE: id[integer]:1 k[text]:'a'"),
            Ok((k("1", "a"), None))
        );
        assert_eq!(
            keys("table p.t: UPDATE: id[integer]:1 k[text]:'a' v[text]:'z'"),
            Ok((k("1", "a"), k("1", "a")))
        );
        assert_eq!(
            keys(
                "table p.t: UPDATE: old-key: id[integer]:1 k[text]:'a' new-tuple: id[integer]:2 k[text]:'a'"
            ),
            Ok((k("1", "a"), k("2", "a")))
        );
        assert_eq!(
            keys(
                "table p.t: UPDATE: old-key: id[integer]:1 k[text]:'long' new-tuple: id[integer]:1 k[text]:unchanged-toast-datum"
            ),
            Ok((k("1", "long"), k("1", "long")))
        );
        assert_eq!(keys("table p.t: TRUNCATE: (no-flags)"), Ok((None, None)));
        for bad in [
            "table p.t: DELETE: (no-tuple-data)",
            "table p.t: UPDATE: id[integer]:1 k[text]:unchanged-toast-datum",
            "table p.t: INSERT: id[integer]:null k[text]:'a'",
            "table p.t: UPDATE: old-key: other[integer]:1 new-tuple: id[integer]:1 k[text]:'a'",
        ] {
            assert!(keys(bad).is_err(), "{bad}");
        }
    }
}
