//! PURE: passwords out of everything pgconverge prints, logs or writes. A connection
//! URL's password is replaced by `***` wherever the URL is whole or malformed
//! (`mysql:/u:pw@h`, `mysql//u:pw@h`, `u:pw@h`, a password holding `@`, `/`, `?`, `#`
//! or percent escapes), in a command line (`--flag URL`, `--flag=URL`, a `--*password*`
//! flag's value, any argument shaped `user:pw@host`) and in free text (messages, errors,
//! journal lines). Redacting too much is harmless; a password shown is not.

use std::borrow::Cow;

/// The command line as it may be logged (the run log's `command`): the values of
/// `--*password*` flags replaced by `***`, URL-valued flags (`--*-url`) and every
/// argument shaped like a URL's `user:password@` with the password replaced.
pub fn command_line(args: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut next_is: Option<Kind> = None;
    for a in args {
        if let Some(kind) = next_is.take() {
            out.push(kind.redact(a));
            continue;
        }
        let flag = a.starts_with("--").then(|| Kind::of_flag(a)).flatten();
        match (flag, a.split_once('=')) {
            (Some(kind), Some((name, value))) => out.push(format!("{name}={}", kind.redact(value))),
            (Some(kind), None) => {
                out.push(a.clone());
                next_is = Some(kind);
            }
            (None, _) => out.push(text(a).into_owned()),
        }
    }
    out.join(" ")
}

/// What a flag's value holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Password,
    Url,
}

impl Kind {
    fn of_flag(flag: &str) -> Option<Kind> {
        let name = flag.split('=').next().unwrap_or(flag).to_ascii_lowercase();
        if name.contains("password") || name.contains("passwd") || name.contains("secret") {
            Some(Kind::Password)
        } else if name.contains("url") || name.contains("dsn") {
            Some(Kind::Url)
        } else {
            None
        }
    }

    fn redact(self, value: &str) -> String {
        match self {
            Kind::Password => "***".into(),
            Kind::Url => url(value).into_owned(),
        }
    }
}

/// A connection URL (or what was meant as one) with its password replaced: everything
/// between the user's `:` and the last `@`. The userinfo starts after the first `//` or
/// `:/` (a scheme, even a malformed one), else at the start.
pub fn url(value: &str) -> Cow<'_, str> {
    let Some(at) = value.rfind('@') else {
        return Cow::Borrowed(value);
    };
    let before = &value[..at];
    let start = ["//", ":/"]
        .iter()
        .filter_map(|m| before.find(m).map(|i| i + m.len()))
        .min()
        .unwrap_or(0);
    // `mysql:///u:pw@h` and the like: the userinfo starts after every leading slash.
    let start = start + before[start..].len() - before[start..].trim_start_matches('/').len();
    match before[start..].find(':') {
        Some(colon) => {
            let cut = start + colon + 1;
            if &value[cut..at] == "***" {
                return Cow::Borrowed(value);
            }
            Cow::Owned(format!("{}***{}", &value[..cut], &value[at..]))
        }
        None => Cow::Borrowed(value),
    }
}

/// Is `c` where a word of free text ends (for finding `user:pw@host` in a message)?
fn delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '<' | '>')
}

/// Free text with every word shaped like a URL's `user:password@` redacted, as [`url`]
/// does.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains('@') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find(delimiter).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        let redacted = url(word);
        changed |= matches!(redacted, Cow::Owned(_));
        out.push_str(&redacted);
        let delim = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..delim]);
        rest = &tail[delim..];
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Malformed and hostile connection URLs, each holding the password `PW` (or a
    /// password built around it).
    pub(crate) const SHAPES: &[&str] = &[
        "mysql://u:PW@h:3306/db",
        "mysql:/u:PW@h:3306",
        "mysql//u:PW@h",
        "mysql:u:PW@h",
        "u:PW@h",
        "mysql:///u:PW@h",
        "mysql://u:PW%40x@h",
        "mysql://u:P@W@h",
        "mysql://u:P/W@h/db",
        "mysql://u:P?W@h",
        "mysql://u:P#W@h",
        "mysql://u:P:W@h",
        "postgres://u:PW@h:5432/db?sslmode=require",
        "postgresql://:PW@h",
        "mysql://u:PW@",
        "mysql://u:PW@@h",
        "mariadb://u:P%2FW@[::1]:3306",
        "postgres://u:PW@h1,h2/db",
        "MYSQL://U:PW@H",
        "mysql://u:P W@h",
    ];

    #[test]
    fn url_shapes_lose_their_password() {
        for shape in SHAPES {
            let r = url(shape);
            assert!(!r.contains("PW") && !r.contains("P@W"), "{shape} -> {r}");
            assert!(r.contains("***"), "{shape} -> {r}");
        }
        let cases: &[(&str, &str)] = &[
            ("mysql://u:pw@h:1/db", "mysql://u:***@h:1/db"),
            ("mysql:/u:pw@h:3306", "mysql:/u:***@h:3306"),
            ("mysql//u:pw@h", "mysql//u:***@h"),
            ("u:pw@h", "u:***@h"),
            ("mysql://u:p@ss@h", "mysql://u:***@h"),
            ("mysql://u@h", "mysql://u@h"),
            ("mysql://h:3306", "mysql://h:3306"),
            ("postgres@127.0.0.1:5432", "postgres@127.0.0.1:5432"),
            ("mysql://u:***@h", "mysql://u:***@h"),
        ];
        for (input, want) in cases {
            assert_eq!(url(input), *want, "{input}");
        }
    }

    #[test]
    fn command_lines_lose_their_passwords() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["check", "--mysql-password", "pw"],
                "check --mysql-password ***",
            ),
            (
                &["check", "--postgres-password=pw"],
                "check --postgres-password=***",
            ),
            (
                &["check", "--mysql-url", "mysql://u:pw@h:1"],
                "check --mysql-url mysql://u:***@h:1",
            ),
            (&["--mysql-url=mysql://u@h"], "--mysql-url=mysql://u@h"),
            (&["--mysql-url=mysql:/u:pw@h"], "--mysql-url=mysql:/u:***@h"),
            (&["--source-url", "u:pw@h"], "--source-url u:***@h"),
            (&["export", "u:pw@h"], "export u:***@h"),
            (&["--map=u:pw@h"], "--map=u:***@h"),
        ];
        for (args, want) in cases {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            assert_eq!(command_line(&args), *want);
        }
        for shape in SHAPES {
            for args in [
                vec![
                    "import".to_string(),
                    "--mysql-url".into(),
                    shape.to_string(),
                ],
                vec!["import".to_string(), format!("--postgres-url={shape}")],
                vec!["export".to_string(), shape.to_string()],
            ] {
                let line = command_line(&args);
                assert!(!line.contains("PW") && !line.contains("P@W"), "{line}");
            }
        }
    }

    #[test]
    fn free_text_loses_user_password_shapes_only() {
        let cases: &[(&str, &str)] = &[
            (
                "error: connecting to mysql://u:pw@h:3306: refused",
                "error: connecting to mysql://u:***@h:3306: refused",
            ),
            ("value `u:pw@h` here", "value `u:***@h` here"),
            (
                "Access denied for user 'root'@'localhost'",
                "Access denied for user 'root'@'localhost'",
            ),
            (
                "connecting to postgres@127.0.0.1:5432 failed",
                "connecting to postgres@127.0.0.1:5432 failed",
            ),
            ("no at sign: a:b", "no at sign: a:b"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), *want, "{input}");
        }
        for shape in SHAPES.iter().filter(|s| !s.contains(' ')) {
            let t = format!("reading MYSQL_URL `{shape}`: bad\n");
            let r = text(&t);
            assert!(!r.contains("PW") && !r.contains("P@W"), "{r}");
        }
    }
}
