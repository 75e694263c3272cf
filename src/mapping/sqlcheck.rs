//! PURE: the SQL a mapping file holds, judged before anything is read or written. Hooks
//! (`require`, `before`, `after`, and a delta's `delta_before` and `delta_after`) run
//! inside the import's one transaction, so none of their statements may control that
//! transaction or be one PostgreSQL refuses inside a transaction block; `set` and `where` are one expression; `query` is one SELECT. The
//! text is read with `db::lex` under every lexical rule the server may apply, and refused
//! when any of them finds what is forbidden. (The import also checks at run time, after
//! every hook, that its transaction is still the same: `import::guard`.)

use crate::db::lex::{self, Dialect, Statement, Token};

/// What a refused statement does, in words; None when a hook may run it.
pub fn refusal(stmt: &Statement<'_>) -> Option<&'static str> {
    const ENDS: &str = "ends the import's transaction (pgconverge commits it itself, after \
                        every check)";
    const CONTROL: &str = "is transaction control, which belongs to pgconverge";
    const TWO_PHASE: &str = "is two-phase commit, which belongs to pgconverge";
    const BLOCK: &str = "cannot run inside a transaction block (PostgreSQL refuses it there)";
    const ROLE: &str = "changes session_replication_role, which the import sets (to load a \
                        table with its triggers, use triggers = \"fire\")";
    // The leading names (words, and quoted names for a setting), upper-cased.
    let lead: Vec<String> = stmt
        .tokens
        .iter()
        .map_while(|t| match t {
            Token::Word(w) | Token::Quoted(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
        .collect();
    let at = |i: usize| lead.get(i).map(String::as_str).unwrap_or("");
    let words = stmt.words();
    let has = |w: &str| words.iter().any(|x| x == w);
    match (at(0), at(1)) {
        ("BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT", "PREPARED") => {
            Some(TWO_PHASE)
        }
        ("BEGIN" | "START", _) => Some(CONTROL),
        ("ROLLBACK", "TO") => Some(CONTROL),
        ("COMMIT" | "END" | "ROLLBACK" | "ABORT", _) => Some(ENDS),
        ("SAVEPOINT" | "RELEASE", _) => Some(CONTROL),
        ("PREPARE", "TRANSACTION") => Some(TWO_PHASE),
        ("SET", _) => {
            let name = match at(1) {
                "SESSION" | "LOCAL" => at(2),
                other => other,
            };
            match name {
                "TRANSACTION" | "CHARACTERISTICS" => Some(CONTROL),
                "SESSION_REPLICATION_ROLE" => Some(ROLE),
                _ => None,
            }
        }
        ("RESET", "SESSION_REPLICATION_ROLE") => Some(ROLE),
        ("VACUUM", _) | ("ALTER", "SYSTEM") => Some(BLOCK),
        ("CREATE" | "DROP", "DATABASE" | "TABLESPACE") => Some(BLOCK),
        ("ALTER", "DATABASE") if has("TABLESPACE") => Some(BLOCK),
        ("CREATE" | "DROP" | "ALTER", "SUBSCRIPTION") => Some(BLOCK),
        ("CREATE" | "DROP", "INDEX") if at(2) == "CONCURRENTLY" => Some(BLOCK),
        ("CREATE", "UNIQUE") if at(2) == "INDEX" && at(3) == "CONCURRENTLY" => Some(BLOCK),
        ("REINDEX", _) => {
            let kind = words
                .iter()
                .skip(1)
                .find(|w| ["INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM"].contains(&w.as_str()));
            let whole =
                kind.is_some_and(|k| ["SCHEMA", "DATABASE", "SYSTEM"].contains(&k.as_str()));
            (whole || has("CONCURRENTLY")).then_some(BLOCK)
        }
        ("DISCARD", "ALL") => Some(BLOCK),
        // CLUSTER alone (every table): not in a transaction block.
        ("CLUSTER", _) if words.iter().skip(1).all(|w| w == "VERBOSE") => Some(BLOCK),
        _ => None,
    }
}

/// A hook: any number of statements, none refused. `one` (a `require`): exactly one.
pub fn hook(sql: &str, one: bool) -> Result<(), String> {
    let (statements, end) = lex::statements(sql, Dialect::POSTGRES);
    if let Some(end) = end {
        return Err(format!("`{}`: {end}", shorten(sql)));
    }
    if one && statements.len() != 1 {
        return Err(format!(
            "`{}` holds {} statements; a require is one statement returning a boolean",
            shorten(sql),
            statements.len()
        ));
    }
    // Under the other string setting the text may split elsewhere: check that reading too
    // (what it cannot read past is not run by a server that reads it so).
    for dialect in Dialect::POSTGRES_ANY {
        for stmt in lex::statements(sql, dialect).0 {
            if let Some(why) = refusal(&stmt) {
                return Err(format!("`{}` {why}", shorten(stmt.text)));
            }
        }
    }
    Ok(())
}

/// A `set` expression (PostgreSQL): one expression, no `;` outside quotes and comments.
pub fn target_expression(sql: &str) -> Result<(), String> {
    no_separator(sql, &Dialect::POSTGRES_ANY, "one expression")
}

/// A `where` filter (the source's SQL, MySQL or PostgreSQL): one expression.
pub fn source_expression(sql: &str) -> Result<(), String> {
    no_separator(sql, &Dialect::ANY, "one expression")
}

/// A `query` (the source's SQL): one statement starting with SELECT, WITH or `(`.
pub fn source_query(sql: &str) -> Result<(), String> {
    no_separator(sql, &Dialect::ANY, "one statement")?;
    for dialect in Dialect::ANY {
        let first = lex::tokens(sql, dialect).0.first().map(|(t, _)| *t);
        let ok = match first {
            Some(Token::Word(w)) => ["select", "with"].iter().any(|k| w.eq_ignore_ascii_case(k)),
            Some(Token::Punct('(')) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "`{}` does not start with SELECT, WITH or `(` (as {} reads it)",
                shorten(sql),
                dialect.name()
            ));
        }
    }
    Ok(())
}

/// Refuse a `;` that any of `dialects` reads outside quotes and comments.
fn no_separator(sql: &str, dialects: &[Dialect], what: &str) -> Result<(), String> {
    for &dialect in dialects {
        if lex::tokens(sql, dialect)
            .0
            .iter()
            .any(|(t, _)| *t == Token::Semicolon)
        {
            let trailing = lex::tokens(sql, dialect)
                .0
                .last()
                .is_some_and(|(t, _)| *t == Token::Semicolon);
            return Err(format!(
                "`{}` holds a `;` outside quotes and comments (as {} reads it): it must be {what}{}",
                shorten(sql),
                dialect.name(),
                if trailing {
                    "; drop the trailing `;`"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

/// A statement as an error shows it: on one line, at most 80 characters.
fn shorten(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_may_not_control_the_transaction() {
        let refused = [
            "COMMIT",
            "commit;",
            "  Commit  ",
            "begin;",
            "BEGIN ISOLATION LEVEL SERIALIZABLE",
            "START TRANSACTION",
            "END",
            "end transaction",
            "ROLLBACK",
            "ABORT",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "RELEASE a",
            "ROLLBACK TO SAVEPOINT a",
            "PREPARE TRANSACTION 'x'",
            "COMMIT PREPARED 'x'",
            "ROLLBACK PREPARED 'x'",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SET session_replication_role = origin",
            "SET LOCAL session_replication_role = origin",
            "set session session_replication_role to replica",
            "SET \"session_replication_role\" = origin",
            "RESET session_replication_role",
            "VACUUM",
            "VACUUM FULL t",
            "vacuum (analyze) t",
            "CREATE DATABASE x",
            "DROP DATABASE x",
            "CREATE TABLESPACE s LOCATION '/x'",
            "DROP TABLESPACE s",
            "ALTER DATABASE x SET TABLESPACE s",
            "ALTER SYSTEM SET work_mem = '1GB'",
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)",
            "DROP INDEX CONCURRENTLY i",
            "REINDEX TABLE CONCURRENTLY t",
            "REINDEX DATABASE x",
            "REINDEX SYSTEM x",
            "REINDEX SCHEMA app",
            "REINDEX (VERBOSE) DATABASE x",
            "DISCARD ALL",
            "CLUSTER",
            "CLUSTER VERBOSE",
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
            "DROP SUBSCRIPTION s",
            // Several statements: any one refuses the hook.
            "END; DELETE FROM t; BEGIN",
            "INSERT INTO t VALUES (1); COMMIT",
            "SELECT 1; /* c */ Commit -- now\n",
            "UPDATE t SET a = 'x;'; ROLLBACK",
            "DO $$ BEGIN NULL; END $$; COMMIT",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; COMMIT",
            "CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; COMMIT",
            // Under standard_conforming_strings = off this string ends late; under on, the
            // COMMIT is a statement: refused, since the server's setting is not known here.
            "SELECT 'a\\'; COMMIT; SELECT ''",
        ];
        for sql in refused {
            assert!(hook(sql, false).is_err(), "{sql:?} was accepted");
        }
        let accepted = [
            "SELECT 'COMMIT'",
            "SELECT 1 /* COMMIT */",
            "SELECT 1 -- ; COMMIT",
            "DO $$ BEGIN COMMIT; END $$",
            "DO $$ BEGIN IF true THEN PERFORM 1; END IF; END $$",
            "DO $body$ BEGIN ROLLBACK; END $body$ LANGUAGE plpgsql",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END",
            "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
            "INSERT INTO tenant VALUES (1); UPDATE t SET note = 'END'",
            "SET LOCAL work_mem = '64MB'",
            "SET search_path TO app, public",
            "SET CONSTRAINTS ALL DEFERRED",
            "RESET ALL",
            "CLUSTER t USING t_pkey",
            "CLUSTER VERBOSE t",
            "CREATE INDEX i ON t (a)",
            "REINDEX TABLE t",
            "REINDEX (VERBOSE) TABLE system",
            "CREATE INDEX i ON t (concurrently)",
            "DISCARD TEMP",
            "ANALYZE t",
            "REFRESH MATERIALIZED VIEW stats",
            "SELECT \"commit\" FROM t",
            "LOCK TABLE t IN EXCLUSIVE MODE",
            "PREPARE q AS SELECT 1",
            "ALTER DATABASE x SET work_mem = '1MB'",
            "SELECT set_config('work_mem', '1MB', true)",
            // An escape string reads backslashes under either setting: one string.
            "SELECT E'a\\'; COMMIT; --'",
        ];
        for sql in accepted {
            assert_eq!(hook(sql, false), Ok(()), "{sql:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_statement() {
        let err = hook("INSERT INTO t VALUES (1);\n  Commit  ;", false).unwrap_err();
        assert!(
            err.starts_with("`Commit` ends the import's transaction"),
            "{err}"
        );
        let err = hook("SET LOCAL session_replication_role = origin", false).unwrap_err();
        assert!(err.contains("triggers = \"fire\""), "{err}");
        let err = hook("SELECT 'unclosed", false).unwrap_err();
        assert!(err.contains("a string that never closes"), "{err}");
    }

    #[test]
    fn a_require_is_one_statement() {
        assert_eq!(hook("SELECT true;", true), Ok(()));
        assert!(
            hook("SELECT true; SELECT false", true)
                .unwrap_err()
                .contains("2 statements")
        );
        assert!(hook("COMMIT", true).is_err());
    }

    #[test]
    fn expressions_hold_no_separator() {
        for sql in [
            "1",
            "now()",
            "'a;b'",
            "\"x;\" || 'y'",
            "$$;$$",
            "1 /* ; */",
            "E'\\';'",
        ] {
            assert_eq!(target_expression(sql), Ok(()), "{sql}");
        }
        for sql in [
            "1; DELETE FROM t",
            "1;",
            "'a\\'; DELETE FROM t; SELECT '",
            "(1); COMMIT",
        ] {
            assert!(target_expression(sql).is_err(), "{sql}");
        }
        assert!(
            target_expression("1;")
                .unwrap_err()
                .contains("drop the trailing `;`")
        );
    }

    #[test]
    fn source_sql_is_refused_when_any_server_would_run_a_second_statement() {
        for sql in [
            "deleted = 0",
            "name <> 'a;b'",
            "name <> 'it''s; fine'",
            "`order` = 1",
            "a = 1 /* ; */",
        ] {
            assert_eq!(source_expression(sql), Ok(()), "{sql}");
        }
        for sql in [
            "1; DELETE FROM t",
            "deleted = 0;",
            // MySQL runs what /*! */ holds.
            "1 /*! ; DELETE FROM t */",
            // `#` is PostgreSQL's XOR: the `;` after it is real there.
            "a = 1 # ; DELETE FROM t",
            // `--` with no space is not a comment in MySQL.
            "a = 1--; DELETE FROM t",
            // A backslash escapes the quote in MySQL, not in PostgreSQL: they disagree on
            // where the string ends, and one of them sees a second statement.
            "name = 'x\\'; DELETE FROM t; SELECT '",
        ] {
            assert!(source_expression(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn a_query_is_one_select() {
        for sql in [
            "SELECT id FROM teacher",
            "  select 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "(SELECT 1) UNION ALL (SELECT 2)",
            "/* note */ SELECT 1",
            "SELECT 'x;y'",
        ] {
            assert_eq!(source_query(sql), Ok(()), "{sql}");
        }
        for (sql, why) in [
            ("SELECT 1; DELETE FROM t", "`;`"),
            ("SELECT 1;", "trailing"),
            ("DELETE FROM t RETURNING *", "does not start with SELECT"),
            ("COMMIT", "does not start with SELECT"),
            ("-- x\nINSERT INTO t SELECT 1", "does not start with SELECT"),
        ] {
            let err = source_query(sql).unwrap_err();
            assert!(err.contains(why), "{sql}: {err}");
        }
    }
}
