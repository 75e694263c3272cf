//! PURE: SQL text read the way a server reads it, far enough to know where its statements
//! are and what their words are: quotes, escapes, dollar quotes, comments, and PostgreSQL's
//! `BEGIN ATOMIC ... END` function bodies. It parses nothing beyond that; what a statement
//! may do is decided by `mapping::sqlcheck`. Each dialect has variants (PostgreSQL's two
//! `standard_conforming_strings` settings, MySQL with and without backslash escapes)
//! because the same text splits differently under them, and a check must hold under the
//! one the server will use.

/// The lexical rules of one server and setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL; `standard_strings` is `standard_conforming_strings` (on since 9.1): when
    /// off, `'...'` takes backslash escapes as `E'...'` always does.
    Postgres { standard_strings: bool },
    /// MySQL/MariaDB; `backslash_escapes` is false under the `NO_BACKSLASH_ESCAPES` SQL mode.
    Mysql { backslash_escapes: bool },
}

impl Dialect {
    /// PostgreSQL as a server usually reads it.
    pub const POSTGRES: Dialect = Dialect::Postgres {
        standard_strings: true,
    };
    /// PostgreSQL under either string setting.
    pub const POSTGRES_ANY: [Dialect; 2] = [
        Dialect::POSTGRES,
        Dialect::Postgres {
            standard_strings: false,
        },
    ];
    /// Every rule a source's SQL may be read under (the mapping file does not say which
    /// engine its source is).
    pub const ANY: [Dialect; 4] = [
        Dialect::POSTGRES_ANY[0],
        Dialect::POSTGRES_ANY[1],
        Dialect::Mysql {
            backslash_escapes: true,
        },
        Dialect::Mysql {
            backslash_escapes: false,
        },
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres {
                standard_strings: true,
            } => "PostgreSQL",
            Dialect::Postgres {
                standard_strings: false,
            } => "PostgreSQL with standard_conforming_strings off",
            Dialect::Mysql {
                backslash_escapes: true,
            } => "MySQL",
            Dialect::Mysql {
                backslash_escapes: false,
            } => "MySQL with NO_BACKSLASH_ESCAPES",
        }
    }
}

/// One token outside comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// An unquoted word (a keyword or a name) or a number, as written.
    Word(&'a str),
    /// A quoted name (`"x"`, `` `x` ``), between its quotes as written.
    Quoted(&'a str),
    /// A string constant of any kind (`'x'`, `E'x'`, `$$x$$`, MySQL's `"x"`).
    Str,
    /// The statement separator.
    Semicolon,
    /// Any other character.
    Punct(char),
}

/// Where the text stopped making sense: a quote or comment that never closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unterminated {
    /// What was open: "string", "quoted name", "dollar-quoted string", "comment".
    pub what: &'static str,
    /// Its byte offset.
    pub at: usize,
}

impl std::fmt::Display for Unterminated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} that never closes (at byte {})", self.what, self.at)
    }
}

/// The tokens of `sql` with their byte ranges, and, if the text ends inside a quote or a
/// comment, where that began (the tokens before it are still given).
pub fn tokens(
    sql: &str,
    dialect: Dialect,
) -> (
    Vec<(Token<'_>, std::ops::Range<usize>)>,
    Option<Unterminated>,
) {
    let mut lexer = Lexer {
        s: sql,
        b: sql.as_bytes(),
        i: 0,
        dialect,
        out: Vec::new(),
        in_executable_comment: false,
    };
    let end = lexer.run().err();
    (lexer.out, end)
}

/// One statement of a text that may hold several: its text (from its first token to its
/// last) and its tokens, without the separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    pub text: &'a str,
    pub tokens: Vec<Token<'a>>,
}

impl Statement<'_> {
    /// The unquoted words, upper-cased, in order (numbers included).
    pub fn words(&self) -> Vec<String> {
        self.tokens
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w.to_ascii_uppercase()),
                _ => None,
            })
            .collect()
    }
}

/// The statements of a PostgreSQL text, split where the server splits them: at a `;`
/// outside quotes, comments, parentheses and `BEGIN ATOMIC ... END` bodies of `CREATE
/// [OR REPLACE] FUNCTION|PROCEDURE` (as psql does). Empty statements are left out.
pub fn statements<'a>(
    sql: &'a str,
    dialect: Dialect,
) -> (Vec<Statement<'a>>, Option<Unterminated>) {
    let (tokens, end) = tokens(sql, dialect);
    let mut out = Vec::new();
    let mut current: Vec<(Token<'a>, std::ops::Range<usize>)> = Vec::new();
    let (mut parens, mut atomic) = (0usize, 0usize);
    let close = |current: &mut Vec<(Token<'a>, std::ops::Range<usize>)>,
                 out: &mut Vec<Statement<'a>>| {
        if let (Some(first), Some(last)) = (current.first(), current.last()) {
            out.push(Statement {
                text: &sql[first.1.start..last.1.end],
                tokens: current.iter().map(|(t, _)| *t).collect(),
            });
        }
        current.clear();
    };
    for (i, (token, range)) in tokens.iter().enumerate() {
        match token {
            Token::Semicolon if parens == 0 && atomic == 0 => {
                close(&mut current, &mut out);
                continue;
            }
            Token::Punct('(') => parens += 1,
            Token::Punct(')') => parens = parens.saturating_sub(1),
            Token::Word(w) if parens == 0 && defines_routine(&current) => {
                let next = tokens.get(i + 1).map(|(t, _)| *t);
                let opens_body = w.eq_ignore_ascii_case("begin")
                    && matches!(next, Some(Token::Word(n)) if n.eq_ignore_ascii_case("atomic"));
                // CASE ... END inside a body closes with END too.
                let opens_case = w.eq_ignore_ascii_case("case") && atomic > 0;
                if opens_body || opens_case {
                    atomic += 1;
                } else if w.eq_ignore_ascii_case("end") {
                    atomic = atomic.saturating_sub(1);
                }
            }
            _ => {}
        }
        current.push((*token, range.clone()));
    }
    close(&mut current, &mut out);
    (out, end)
}

/// Does the statement so far begin `CREATE [OR REPLACE] FUNCTION|PROCEDURE`?
fn defines_routine(current: &[(Token<'_>, std::ops::Range<usize>)]) -> bool {
    let words: Vec<&str> = current
        .iter()
        .take(4)
        .map_while(|(t, _)| match t {
            Token::Word(w) => Some(*w),
            _ => None,
        })
        .collect();
    let is = |i: usize, k: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
    let routine = |i: usize| is(i, "function") || is(i, "procedure");
    is(0, "create") && (routine(1) || (is(1, "or") && is(2, "replace") && routine(3)))
}

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    dialect: Dialect,
    out: Vec<(Token<'a>, std::ops::Range<usize>)>,
    /// MySQL: inside `/*! ... */`, whose content MySQL executes.
    in_executable_comment: bool,
}

impl<'a> Lexer<'a> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn push(&mut self, token: Token<'a>, start: usize) {
        self.out.push((token, start..self.i));
    }

    fn run(&mut self) -> Result<(), Unterminated> {
        let mysql = matches!(self.dialect, Dialect::Mysql { .. });
        while let Some(c) = self.peek(0) {
            let start = self.i;
            match c {
                c if c.is_ascii_whitespace() => self.i += 1,
                b'-' if self.peek(1) == Some(b'-') && (!mysql || self.mysql_dash_comment()) => {
                    self.line_comment()
                }
                b'#' if mysql => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'*' if mysql && self.in_executable_comment && self.peek(1) == Some(b'/') => {
                    self.in_executable_comment = false;
                    self.i += 2;
                }
                b'\'' => {
                    self.string(b'\'', self.backslashes(false))?;
                    self.push(Token::Str, start);
                }
                b'"' if mysql => {
                    self.string(b'"', self.backslashes(false))?;
                    self.push(Token::Str, start);
                }
                b'"' => {
                    self.string(b'"', false)?;
                    self.push(Token::Quoted(&self.s[start + 1..self.i - 1]), start);
                }
                b'`' if mysql => {
                    self.string(b'`', false)?;
                    self.push(Token::Quoted(&self.s[start + 1..self.i - 1]), start);
                }
                b'$' if !mysql && self.dollar_quote()? => self.push(Token::Str, start),
                b';' => {
                    self.i += 1;
                    self.push(Token::Semicolon, start);
                }
                c if is_word_byte(c, mysql) => self.word(mysql)?,
                _ => {
                    let ch = self.s[self.i..].chars().next().unwrap_or('?');
                    self.i += ch.len_utf8();
                    self.push(Token::Punct(ch), start);
                }
            }
        }
        Ok(())
    }

    /// Whether `'...'` takes backslash escapes (`escape_string`: an `E'...'`).
    fn backslashes(&self, escape_string: bool) -> bool {
        match self.dialect {
            Dialect::Postgres { standard_strings } => escape_string || !standard_strings,
            Dialect::Mysql { backslash_escapes } => backslash_escapes,
        }
    }

    /// MySQL reads `--` as a comment only when a space or control character (or the
    /// end) follows it: `1--1` is one minus minus one.
    fn mysql_dash_comment(&self) -> bool {
        self.peek(2)
            .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            self.i += 1;
            if c == b'\n' {
                break;
            }
        }
    }

    /// `/* ... */`: nested in PostgreSQL; in MySQL not nested, and `/*! ... */` (or
    /// MariaDB's `/*M! ... */`) is code MySQL executes, so its content is read as code.
    fn block_comment(&mut self) -> Result<(), Unterminated> {
        let start = self.i;
        if let Dialect::Mysql { .. } = self.dialect {
            let executable = match (self.peek(2), self.peek(3)) {
                (Some(b'!'), _) => Some(3),
                (Some(b'M'), Some(b'!')) => Some(4),
                _ => None,
            };
            if let Some(skip) = executable {
                self.i += skip;
                while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                self.in_executable_comment = true;
                return Ok(());
            }
        }
        let nested = matches!(self.dialect, Dialect::Postgres { .. });
        self.i += 2;
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (None, _) => {
                    return Err(Unterminated {
                        what: "comment",
                        at: start,
                    });
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    self.i += 2;
                }
                (Some(b'/'), Some(b'*')) if nested => {
                    depth += 1;
                    self.i += 2;
                }
                _ => self.i += 1,
            }
        }
        Ok(())
    }

    /// A quoted string or name opened by `quote` at `self.i`: the quote doubled stands
    /// for itself; with `backslashes`, a backslash escapes the next byte.
    fn string(&mut self, quote: u8, backslashes: bool) -> Result<(), Unterminated> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek(0) {
                None => {
                    return Err(Unterminated {
                        what: match quote {
                            b'\'' => "string",
                            b'"' if matches!(self.dialect, Dialect::Mysql { .. }) => "string",
                            _ => "quoted name",
                        },
                        at: start,
                    });
                }
                Some(b'\\') if backslashes => self.i += 2,
                Some(c) if c == quote => {
                    if self.peek(1) == Some(quote) {
                        self.i += 2;
                    } else {
                        self.i += 1;
                        return Ok(());
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// PostgreSQL: `$tag$ ... $tag$` (the tag may be empty) at `self.i`; false when the
    /// `$` opens none (a parameter `$1`, or a lone `$`).
    fn dollar_quote(&mut self) -> Result<bool, Unterminated> {
        let start = self.i;
        let mut j = self.i + 1;
        if self.b.get(j).is_some_and(|&c| is_word_start(c)) {
            while self
                .b
                .get(j)
                .is_some_and(|&c| is_word_start(c) || c.is_ascii_digit())
            {
                j += 1;
            }
        }
        if self.b.get(j) != Some(&b'$') {
            return Ok(false);
        }
        let tag = &self.s[start..=j];
        match self.s[j + 1..].find(tag) {
            Some(k) => {
                self.i = j + 1 + k + tag.len();
                Ok(true)
            }
            None => Err(Unterminated {
                what: "dollar-quoted string",
                at: start,
            }),
        }
    }

    /// A word or number; in PostgreSQL a lone `E`, `B`, `X`, `N` or `U&` right before a
    /// quote is the prefix of a string (`E'...'` takes backslash escapes) or name.
    fn word(&mut self, mysql: bool) -> Result<(), Unterminated> {
        let start = self.i;
        let first = self.b[start];
        if !mysql {
            let prefix = |c: u8| matches!(c.to_ascii_lowercase(), b'e' | b'b' | b'x' | b'n');
            if prefix(first) && self.peek(1) == Some(b'\'') {
                self.i += 1;
                self.string(b'\'', self.backslashes(first.eq_ignore_ascii_case(&b'e')))?;
                self.push(Token::Str, start);
                return Ok(());
            }
            if first.eq_ignore_ascii_case(&b'u') && self.peek(1) == Some(b'&') {
                match self.peek(2) {
                    Some(b'\'') => {
                        self.i += 2;
                        self.string(b'\'', false)?;
                        self.push(Token::Str, start);
                        return Ok(());
                    }
                    Some(b'"') => {
                        self.i += 2;
                        self.string(b'"', false)?;
                        self.push(Token::Quoted(&self.s[start + 3..self.i - 1]), start);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        while self
            .peek(0)
            .is_some_and(|c| is_word_byte(c, mysql) || c == b'$')
        {
            // A number followed by `$` starts a dollar quote in PostgreSQL (`1$$x$$`).
            if !mysql && self.peek(0) == Some(b'$') && first.is_ascii_digit() {
                break;
            }
            self.i += 1;
        }
        self.push(Token::Word(&self.s[start..self.i]), start);
        Ok(())
    }
}

/// A byte that may start a PostgreSQL name (or a dollar quote's tag).
fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// A byte of a word or number (`$` continues a word but does not start one).
fn is_word_byte(c: u8, mysql: bool) -> bool {
    is_word_start(c) || c.is_ascii_digit() || (mysql && c == b'$')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements' texts.
    fn split(sql: &str, dialect: Dialect) -> Vec<&str> {
        let (s, end) = statements(sql, dialect);
        assert_eq!(end, None, "{sql}");
        s.into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn postgres_splits_where_the_server_does() {
        let pg = Dialect::POSTGRES;
        let cases: &[(&str, &[&str])] = &[
            ("SELECT 1; SELECT 2;", &["SELECT 1", "SELECT 2"]),
            ("  ;; SELECT 1 ;  ", &["SELECT 1"]),
            ("SELECT 'a;b'; x", &["SELECT 'a;b'", "x"]),
            ("SELECT 'it''s;'; x", &["SELECT 'it''s;'", "x"]),
            ("SELECT E'\\';'; x", &["SELECT E'\\';'", "x"]),
            ("SELECT e'\\\\'; x", &["SELECT e'\\\\'", "x"]),
            // Standard strings: a backslash is a character; the string ends at `'`.
            ("SELECT '\\'; COMMIT", &["SELECT '\\'", "COMMIT"]),
            ("SELECT \"a;\"\"b\"; x", &["SELECT \"a;\"\"b\"", "x"]),
            ("SELECT U&'\\0041;'; x", &["SELECT U&'\\0041;'", "x"]),
            ("SELECT U&\"a;\"; x", &["SELECT U&\"a;\"", "x"]),
            (
                "SELECT B'01;'; SELECT X'1;'",
                &["SELECT B'01;'", "SELECT X'1;'"],
            ),
            // A prefix glued to a word is part of the word: the string is standard.
            ("SELECT fooE'\\'; x", &["SELECT fooE'\\'", "x"]),
            (
                "DO $$ BEGIN COMMIT; END $$; x",
                &["DO $$ BEGIN COMMIT; END $$", "x"],
            ),
            (
                "DO $body$ BEGIN IF true THEN NULL; END IF; END $body$; x",
                &["DO $body$ BEGIN IF true THEN NULL; END IF; END $body$", "x"],
            ),
            ("SELECT $a$ $$; $a$; x", &["SELECT $a$ $$; $a$", "x"]),
            ("SELECT a$b$c; x", &["SELECT a$b$c", "x"]),
            (
                "PREPARE p AS SELECT $1; x",
                &["PREPARE p AS SELECT $1", "x"],
            ),
            ("SELECT 1$$;$$; x", &["SELECT 1$$;$$", "x"]),
            // A statement's text runs from its first token to its last.
            ("SELECT 1 -- ; COMMIT\n; x", &["SELECT 1", "x"]),
            ("SELECT 1 /* ; /* ; */ ; */; x", &["SELECT 1", "x"]),
            ("SELECT 1 +-- c\n2; x", &["SELECT 1 +-- c\n2", "x"]),
            // MySQL's comment forms are operators here: the `;` is real.
            ("SELECT 1 # 2; x", &["SELECT 1 # 2", "x"]),
            ("SELECT (1; 2); x", &["SELECT (1; 2)", "x"]),
            ("SELECT 1); COMMIT", &["SELECT 1)", "COMMIT"]),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; COMMIT",
                &[
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
                    "COMMIT",
                ],
            ),
            (
                "create or replace procedure p() begin atomic insert into t values (1); end; end",
                &[
                    "create or replace procedure p() begin atomic insert into t values (1); end",
                    "end",
                ],
            ),
            // `begin` as a function's name opens no body.
            (
                "CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; COMMIT",
                &[
                    "CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1",
                    "COMMIT",
                ],
            ),
            // Outside a routine's definition, BEGIN ATOMIC is nothing special.
            (
                "SELECT 1 begin atomic; COMMIT",
                &["SELECT 1 begin atomic", "COMMIT"],
            ),
            ("SELECT 'é;' ; ß", &["SELECT 'é;'", "ß"]),
        ];
        for (sql, want) in cases {
            assert_eq!(split(sql, pg), *want, "{sql}");
        }
    }

    #[test]
    fn standard_strings_off_reads_backslashes_in_plain_strings() {
        let off = Dialect::POSTGRES_ANY[1];
        assert_eq!(split("SELECT 'a\\'; b'; x", off), ["SELECT 'a\\'; b'", "x"]);
        // Under the usual setting the same text is a string, then `; b'`: unterminated.
        let (on, end) = statements("SELECT 'a\\'; b'", Dialect::POSTGRES);
        assert_eq!(on[0].text, "SELECT 'a\\'");
        assert_eq!(end.map(|e| e.what), Some("string"));
    }

    #[test]
    fn unterminated_quotes_and_comments_are_reported_with_the_tokens_before() {
        let pg = Dialect::POSTGRES;
        for (sql, what) in [
            ("SELECT 'abc", "string"),
            ("SELECT \"abc", "quoted name"),
            ("SELECT $x$ abc $y$", "dollar-quoted string"),
            ("SELECT 1 /* /* */", "comment"),
            ("SELECT E'\\'", "string"),
        ] {
            let (s, end) = statements(sql, pg);
            assert_eq!(end.as_ref().map(|e| e.what), Some(what), "{sql}");
            assert_eq!(s[0].words()[0], "SELECT", "{sql}");
        }
    }

    #[test]
    fn mysql_reads_its_own_quotes_and_comments() {
        let my = Dialect::ANY[2];
        let no_bs = Dialect::ANY[3];
        let semis = |sql: &str, d| {
            tokens(sql, d)
                .0
                .iter()
                .filter(|(t, _)| *t == Token::Semicolon)
                .count()
        };
        for (sql, with_backslashes, without) in [
            ("a = 'x;y'", 0, 0),
            ("a = \"x;y\"", 0, 0),
            ("`a;b` = 1", 0, 0),
            ("a = 'it\\'s; ok'", 0, 1),
            ("a = 'it''s; ok'", 0, 0),
            ("a = 1 # ; not code\n", 0, 0),
            ("a = 1 -- ; not code\n", 0, 0),
            // `--` without a space is two minus signs.
            ("a = 1--; 1", 1, 1),
            ("a = 1 /* ; */", 0, 0),
            // MySQL executes what `/*! ... */` holds.
            ("a = 1 /*! ; DROP TABLE t */", 1, 1),
            ("a = 1 /*!50001 ; DROP TABLE t */", 1, 1),
            ("a = 1 /*M! ; DROP TABLE t */", 1, 1),
            // Not nested: the first `*/` ends it.
            ("a = 1 /* /* */ ; */", 1, 1),
            // No dollar quotes: `$$` is a name.
            ("a = $$;$$", 1, 1),
        ] {
            assert_eq!(semis(sql, my), with_backslashes, "{sql}");
            assert_eq!(semis(sql, no_bs), without, "{sql} (NO_BACKSLASH_ESCAPES)");
        }
    }

    #[test]
    fn words_are_upper_cased_and_quoted_names_kept() {
        let (s, _) = statements(
            "set Local \"Session_Replication_Role\" = origin",
            Dialect::POSTGRES,
        );
        assert_eq!(s[0].words(), ["SET", "LOCAL", "ORIGIN"]);
        assert_eq!(s[0].tokens[2], Token::Quoted("Session_Replication_Role"));
    }
}
