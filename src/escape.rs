//! PURE: the one way text that came from outside (table and column names, row keys,
//! values, server messages, file bytes) is shown to a human. Control characters (C0,
//! DEL, C1), NUL and the Unicode controls that reorder or hide text (bidi overrides,
//! zero-width marks) are written as escapes, so an ESC in a table name cannot drive the
//! terminal and a newline in a value cannot fake a line of the report; bytes that are
//! not UTF-8 are shown as `\x` + hex; the empty string is shown as `''`. JSON output
//! never goes through here: serde writes it exactly.

use std::borrow::Cow;
use std::fmt::Write;

/// Is `c` shown as an escape rather than as itself?
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}')
}

fn push_escaped(c: char, out: &mut String) {
    match c {
        '\0' => out.push_str("\\0"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// A name, key or value shown on one line: every hidden character escaped, `''` for
/// the empty string. Borrowed when nothing needed escaping.
pub fn text(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        return Cow::Borrowed("''");
    }
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            push_escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A value shown between double quotes (so that blanks at its ends show), escaped as
/// [`text`] escapes it; the empty string is `""`.
pub fn quoted(s: &str) -> String {
    match s.is_empty() {
        true => "\"\"".into(),
        false => format!("\"{}\"", text(s)),
    }
}

/// Bytes shown on one line: as [`text`] when they are UTF-8, else `\x` + hex.
pub fn bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => text(s),
        Err(_) => Cow::Owned(format!("\\x{}", hex::encode(b))),
    }
}

/// At most `max` characters of [`bytes`], with `…` when cut: how an error shows what a
/// file or a value holds (never more than a short, escaped prefix).
pub fn prefix(b: &[u8], max: usize) -> String {
    let cut = &b[..b.len().min(max.saturating_mul(4))];
    // A prefix may end inside a UTF-8 sequence: cut back to its last whole character.
    let whole = match std::str::from_utf8(cut) {
        Ok(_) => cut,
        Err(e) if e.error_len().is_none() => &cut[..e.valid_up_to()],
        Err(_) => cut,
    };
    let shown = bytes(whole);
    let mut out: String = shown.chars().take(max).collect();
    if out.chars().count() < shown.chars().count() || whole.len() < b.len() {
        out.push('…');
    }
    out
}

/// A message of one or more lines, as it reaches a terminal or a log file: each line
/// as [`text`] shows it, the line ends and tabs kept (the message's own layout), and
/// an empty line left empty. The net under every human-readable output, so that no
/// control character reaches a terminal raw even where a name was not escaped.
pub fn lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| hidden(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) && c != '\n' && c != '\t' {
            push_escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped_and_the_empty_string_quoted() {
        let cases: &[(&str, &str)] = &[
            ("", "''"),
            ("plain name", "plain name"),
            ("\u{1b}[31mred", "\\x1b[31mred"),
            ("a\nb\r\tc\0", "a\\nb\\r\\tc\\0"),
            ("del\u{7f}", "del\\x7f"),
            ("c1\u{9b}", "c1\\x9b"),
            ("bidi\u{202e}txt", "bidi\\u{202e}txt"),
            ("zw\u{200b}j", "zw\\u{200b}j"),
            ("ünïcödé ✓", "ünïcödé ✓"),
            ("\\N", "\\N"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), *want, "{input:?}");
        }
        assert!(matches!(text("clean"), Cow::Borrowed(_)));
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("a \n"), "\"a \\n\"");
    }

    #[test]
    fn binary_is_hex_and_prefixes_are_short() {
        assert_eq!(bytes(b"ok"), "ok");
        assert_eq!(bytes(b""), "''");
        assert_eq!(bytes(b"\xff\x00a"), "\\xff0061");
        assert_eq!(prefix(b"root:x:0:0:root:/root:/bin/bash\n", 8), "root:x:0…");
        assert_eq!(prefix(b"short", 8), "short");
        assert_eq!(prefix(b"\x1b]0;title\x07", 20), "\\x1b]0;title\\x07");
        // A cut inside a multi-byte character keeps the whole characters before it.
        assert_eq!(prefix("ééééé".as_bytes(), 2), "éé…");
        assert_eq!(prefix(b"\xff\xfe\xfd\xfc", 4), "\\xff…");
    }

    #[test]
    fn lines_keep_their_layout_but_lose_control_characters() {
        assert_eq!(lines("a\n\tb\n"), "a\n\tb\n");
        assert_eq!(lines("t `\u{1b}[2J`\nnext"), "t `\\x1b[2J`\nnext");
        assert_eq!(lines("cr\r\n"), "cr\\r\n");
        assert!(matches!(lines("clean\n"), Cow::Borrowed(_)));
    }
}
