//! PURE: quoting, one function per dialect and kind. Every identifier and literal that
//! reaches a server goes through here (names like `user`, `order`, `query-result-cache`,
//! `profileId`, or a table named `"; DROP TABLE x; --`).

/// PostgreSQL.
pub mod pg {
    /// `SET LOCAL search_path` to a target schema, then public (where extensions such as
    /// PostGIS usually live), so hooks and `set` expressions may name its tables
    /// unqualified; None for `public` itself.
    pub fn search_path(schema: &str) -> Option<String> {
        (schema != "public").then(|| format!("SET LOCAL search_path TO {}, public", ident(schema)))
    }

    /// An identifier: double quotes, embedded quotes doubled.
    pub fn ident(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    /// `"schema"."table"`.
    pub fn qualified(schema: &str, table: &str) -> String {
        format!("{}.{}", ident(schema), ident(table))
    }

    /// How PostgreSQL prints values so that they read back as themselves, whatever the
    /// database's own defaults: dates and intervals in the forms their input reads (day
    /// before month never), every digit of a float, bytes as hex. Every session that
    /// prints values for pgconverge sets them: the import's transaction (a `set` constant
    /// sent as text), verify's reads, a PostgreSQL source's readers.
    pub const VALUE_FORMS: [(&str, &str); 4] = [
        ("DateStyle", "'ISO, MDY'"),
        ("IntervalStyle", "postgres"),
        ("extra_float_digits", "3"),
        ("bytea_output", "hex"),
    ];

    /// `SET name = value; ...` (with `local`, `SET LOCAL`: to the transaction's end).
    pub fn set_all(settings: &[(&str, &str)], local: bool) -> String {
        let set = if local { "SET LOCAL" } else { "SET" };
        settings
            .iter()
            .map(|(name, value)| format!("{set} {name} = {value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A string literal (standard_conforming_strings is on since 9.1).
    pub fn literal(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    /// A statement ended by its `;`, with what it is for in a comment after it, on one
    /// line (a line break would end the comment early): how the journal and `--dry-run`
    /// write statements, so that both read as SQL.
    /// A statement whose last line may end in a comment of its own (a hook's) gets its
    /// `;` on a line of its own; one that ends in `;` gets no second one.
    pub fn terminated(sql: &str, comment: Option<&str>) -> String {
        let body = sql.trim_end();
        let end = match (
            body.ends_with(';'),
            body.lines().last().unwrap_or("").contains("--"),
        ) {
            // A `;` after a `--` on the last line is inside that comment: it ends nothing.
            (_, true) => "\n;",
            (true, false) => "",
            (false, false) => ";",
        };
        match comment {
            Some(c) => format!(
                "{body}{end}  -- {}",
                c.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            None => format!("{body}{end}"),
        }
    }

    /// `body` as a dollar-quoted literal whose tag it does not contain (a quoted identifier
    /// may hold `$`): the body of a `DO` block.
    pub fn dollar_quoted(body: &str) -> String {
        let mut tag = "$pgc$".to_string();
        let mut n = 0;
        while body.contains(&tag) {
            n += 1;
            tag = format!("$pgc{n}$");
        }
        format!("{tag}{body}{tag}")
    }

    /// The name PostgreSQL keeps of an identifier longer than 63 bytes (NAMEDATALEN - 1),
    /// cut at a character boundary as it does; None when it fits.
    pub fn truncated_identifier(name: &str) -> Option<&str> {
        if name.len() <= 63 {
            return None;
        }
        let mut end = 63;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Some(&name[..end])
    }
}

/// MySQL and MariaDB.
pub mod my {
    /// An identifier: backticks, embedded backticks doubled.
    pub fn ident(name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// `` `db`.`table` ``.
    pub fn qualified(db: &str, table: &str) -> String {
        format!("{}.{}", ident(db), ident(table))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_are_set_for_the_session_or_the_transaction() {
        use super::pg::set_all;
        let two = [("DateStyle", "'ISO, MDY'"), ("bytea_output", "hex")];
        assert_eq!(
            set_all(&two, false),
            "SET DateStyle = 'ISO, MDY'; SET bytea_output = hex"
        );
        assert_eq!(
            set_all(&two, true),
            "SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL bytea_output = hex"
        );
        assert_eq!(set_all(&[], true), "");
    }

    #[test]
    fn a_statement_is_ended_where_its_own_comment_cannot_swallow_the_end() {
        use super::pg::terminated;
        for (sql, comment, want) in [
            ("SELECT 1", None, "SELECT 1;"),
            (
                "COPY t FROM STDIN",
                Some("from t.csv"),
                "COPY t FROM STDIN;  -- from t.csv",
            ),
            ("SELECT 1", Some("two\nlines"), "SELECT 1;  -- two lines"),
            ("SELECT 1;", None, "SELECT 1;"),
            ("SELECT 1  -- mine", None, "SELECT 1  -- mine\n;"),
            (
                "SELECT 2\n-- last line",
                Some("why"),
                "SELECT 2\n-- last line\n;  -- why",
            ),
            ("SELECT '--' AS x", None, "SELECT '--' AS x\n;"),
            ("SELECT 1 -- x;", None, "SELECT 1 -- x;\n;"),
        ] {
            assert_eq!(terminated(sql, comment), want, "{sql}");
        }
    }

    #[test]
    fn the_dollar_quote_tag_never_occurs_in_the_body() {
        for (body, want) in [
            ("SELECT 1", "$pgc$SELECT 1$pgc$"),
            (r#"max("a$pgc$b")"#, r#"$pgc1$max("a$pgc$b")$pgc1$"#),
            ("$pgc$ $pgc1$", "$pgc2$$pgc$ $pgc1$$pgc2$"),
        ] {
            assert_eq!(super::pg::dollar_quoted(body), want);
        }
    }

    #[test]
    fn hostile_names_stay_names() {
        assert_eq!(
            super::pg::ident(r#"a"; DROP TABLE x; --"#),
            r#""a""; DROP TABLE x; --""#
        );
        assert_eq!(super::pg::qualified("public", "user"), r#""public"."user""#);
        assert_eq!(super::pg::literal("it's"), "'it''s'");
        assert_eq!(super::my::ident("a`b"), "`a``b`");
        assert_eq!(
            super::my::qualified("d", "query-result-cache"),
            "`d`.`query-result-cache`"
        );
    }
}
