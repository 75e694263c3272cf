//! PURE: `key_of('D', <expr>)` in a `set`: the key the import gave dataset `D`'s row whose
//! source key is `<expr>` (docs/DESIGN.md "Keys other datasets follow"). The mapping's
//! `key_of(` is read as the function the import creates, `pgconverge.key_of(`; which
//! datasets an expression follows is read from its first argument.

/// The schema-qualified function every `key_of(` of a `set` calls.
pub const FUNCTION: &str = "pgconverge.key_of";

/// `expr` with each `key_of(` (a word of its own, outside '…' literals, "quoted" names
/// and comments, not already qualified) read as `pgconverge.key_of('<schema>', `: the map
/// of the target schema being loaded.
pub fn qualify(expr: &str, schema: &str) -> String {
    let call = format!("{FUNCTION}({}, ", crate::db::sql::pg::literal(schema));
    let mut out = String::with_capacity(expr.len() + 16);
    for (i, piece, code) in pieces(expr) {
        if !code {
            out.push_str(piece);
            continue;
        }
        let mut rest = piece;
        let mut at = i;
        while let Some(p) = find_call(rest, expr, at) {
            out.push_str(&rest[..p]);
            out.push_str(&call);
            let paren = rest[p..].find('(').expect("find_call saw it") + p + 1;
            rest = &rest[paren..];
            at += paren;
        }
        out.push_str(rest);
    }
    out
}

/// The datasets `expr` follows: the first argument of each `key_of('D', ...)`.
pub fn followed(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let all = pieces(expr);
    for (n, (i, piece, code)) in all.iter().enumerate() {
        if !code {
            continue;
        }
        let mut rest = *piece;
        let mut at = *i;
        while let Some(p) = find_call(rest, expr, at) {
            let after = rest[p + "key_of".len()..].trim_start();
            // `key_of(` then a literal: the literal is the next piece.
            if after.trim_start_matches('(').trim().is_empty()
                && let Some((_, lit, false)) = all.get(n + 1)
                && lit.starts_with('\'')
                && lit.len() >= 2
            {
                let name = lit[1..lit.len() - 1].replace("''", "'");
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            rest = &rest[p + "key_of".len()..];
            at += p + "key_of".len();
        }
    }
    out
}

/// `key_of('D', column)` and nothing else: (D, column), the column unquoted.
pub fn single_call(expr: &str) -> Option<(String, String)> {
    let rest = expr
        .trim()
        .strip_prefix("key_of")?
        .trim_start()
        .strip_prefix('(')?;
    let rest = rest.trim_start().strip_prefix('\'')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                name.push('\'');
                continue;
            }
            end = Some(i + 1);
            break;
        }
        name.push(c);
    }
    let rest = rest[end?..].trim_start().strip_prefix(',')?.trim();
    let column = rest.strip_suffix(')')?.trim();
    let column = match column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(q) if !q.contains('"') => q.to_string(),
        _ if !column.is_empty()
            && column
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            column.to_string()
        }
        _ => return None,
    };
    Some((name, column))
}

/// The position in `piece` of a `key_of` word followed by `(`, not part of a longer
/// name and not qualified (`x.key_of`).
fn find_call(piece: &str, whole: &str, offset: usize) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = piece[from..].find("key_of") {
        let p = from + p;
        let before = whole[..offset + p].chars().next_back();
        let after = piece[p + "key_of".len()..].trim_start().chars().next();
        let word =
            before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '$'));
        if word && after == Some('(') {
            return Some(p);
        }
        from = p + "key_of".len();
    }
    None
}

/// `expr` cut into (offset, text, is code) pieces: code, '…' literals, "…" names and
/// comments (the last three never rewritten).
fn pieces(expr: &str) -> Vec<(usize, &str, bool)> {
    fn push<'a>(
        expr: &'a str,
        from: usize,
        to: usize,
        code: bool,
        out: &mut Vec<(usize, &'a str, bool)>,
    ) {
        if to > from {
            out.push((from, &expr[from..to], code));
        }
    }
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        let end = match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => break j,
                        Some(&c) if c == q && b.get(j + 1) == Some(&q) => j += 2,
                        Some(&c) if c == q => break j + 1,
                        Some(_) => j += 1,
                    }
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => expr[i..].find('\n').map_or(b.len(), |n| i + n),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                expr[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        push(expr, start, i, true, &mut out);
        push(expr, i, end, false, &mut out);
        i = end;
        start = end;
    }
    push(expr, start, b.len(), true, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_of_is_qualified_where_it_is_a_call() {
        let cases: &[(&str, &str)] = &[
            (
                "key_of('users', id)",
                "pgconverge.key_of('app', 'users', id)",
            ),
            ("KEY_OF('users', id)", "KEY_OF('users', id)"),
            (
                "key_of ('a', id) || key_of('b', x)",
                "pgconverge.key_of('app', 'a', id) || pgconverge.key_of('app', 'b', x)",
            ),
            ("pgconverge.key_of('a', id)", "pgconverge.key_of('a', id)"),
            ("my_key_of('a', id)", "my_key_of('a', id)"),
            ("'key_of(' || key_of", "'key_of(' || key_of"),
            ("\"key_of\"(1) -- key_of(x)", "\"key_of\"(1) -- key_of(x)"),
            (
                "coalesce(key_of('it''s', id), 'x')",
                "coalesce(pgconverge.key_of('app', 'it''s', id), 'x')",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(qualify(expr, "app"), *want, "{expr}");
        }
    }

    #[test]
    fn a_single_call_names_its_dataset_and_column() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("key_of('teacher_users', id)", Some(("teacher_users", "id"))),
            (" key_of ( 'a''b' , \"userId\" ) ", Some(("a'b", "userId"))),
            ("key_of('a', id) || 'x'", None),
            ("key_of('a', id + 1)", None),
            ("coalesce(key_of('a', id), 'x')", None),
        ];
        for (expr, want) in cases {
            let want = want.map(|(a, b)| (a.to_string(), b.to_string()));
            assert_eq!(single_call(expr), want, "{expr}");
        }
    }

    #[test]
    fn followed_datasets_are_the_first_arguments() {
        let cases: &[(&str, &[&str])] = &[
            ("key_of('teacher_users', id)", &["teacher_users"]),
            (
                "key_of( 'a', x) || key_of('b', y) || key_of('a', z)",
                &["a", "b"],
            ),
            ("coalesce(key_of('it''s', id), 'x')", &["it's"]),
            ("'key_of(''a'', id)'", &[]),
            ("key_of(name_var, id)", &[]),
        ];
        for (expr, want) in cases {
            assert_eq!(followed(expr), want.to_vec(), "{expr}");
        }
    }
}
