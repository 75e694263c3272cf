//! PURE: the names a `set` expression mentions, by an identifier scan (no parser): words
//! and "quoted" names outside string literals and comments. It tells which dropped source
//! columns a `set` reads, so that the export keeps them as helper columns.

/// One name of an expression: as written, and whether it was "quoted".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub quoted: bool,
}

/// Every identifier-like word of `expr` (keywords and function names included: the caller
/// compares them with column names), skipping '…' literals, `--` and `/* */` comments and
/// numbers.
pub fn names(expr: &str) -> Vec<Name> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '"' {
                        if chars.get(i + 1) == Some(&'"') {
                            text.push('"');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    text.push(chars[i]);
                    i += 1;
                }
                i += 1;
                out.push(Name { text, quoted: true });
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                out.push(Name {
                    text: chars[start..i].iter().collect(),
                    quoted: false,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether `expr` names the column `column`: "quoted" exactly, a bare word in any case
/// (the export keeps a column too many rather than one too few).
pub fn mentions(expr: &str, column: &str) -> bool {
    names(expr).iter().any(|n| match n.quoted {
        true => n.text == column,
        false => n.text.eq_ignore_ascii_case(column),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_outside_literals_and_comments() {
        let e = "first || ' ' || \"Last\" -- last\n || 'first' /* middle */ || x2";
        let got: Vec<(String, bool)> = names(e).into_iter().map(|n| (n.text, n.quoted)).collect();
        assert_eq!(
            got,
            [
                ("first".to_string(), false),
                ("Last".to_string(), true),
                ("x2".to_string(), false)
            ]
        );
        assert!(mentions(e, "first") && mentions(e, "FIRST") && mentions(e, "Last"));
        assert!(!mentions(e, "last") && !mentions(e, "middle"));
        assert!(!mentions("upper('it''s first')", "first"));
        assert!(mentions("1e5 + \"a\"\"b\"", "a\"b"));
    }
}
