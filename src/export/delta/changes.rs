//! PURE: what the binary log says changed, per table: every key a rows event named, with
//! whether it exists after its last event and how it was first removed (a DELETE, or an
//! UPDATE that moved the row to another key), and the statements logged as text that
//! touch an exported table (a TRUNCATE, which leaves no row events, or DDL).

use std::collections::BTreeMap;

use crate::codec::binlog_row::Key;

/// How a key was first removed within the delta's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Delete,
    Update,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Delete => crate::store::chain::HOW_DELETE,
            How::Update => crate::store::chain::HOW_UPDATE,
        }
    }
}

/// One changed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyState {
    /// A row had this key before the delta's range: its first event found it there (an
    /// UPDATE or DELETE of it), rather than putting it there (an INSERT, or an UPDATE
    /// that moved a row to it, which the key's uniqueness says was free).
    pub existed: bool,
    /// Its last event left a row with this key.
    pub exists: bool,
    /// How it was first removed, if it was.
    pub removed: Option<How>,
}

/// The changes of one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableChanges {
    pub keys: BTreeMap<Key, KeyState>,
    /// The table is copied whole: a TRUNCATE was logged, or it has no key to follow and
    /// the log changed it.
    pub whole: bool,
}

impl TableChanges {
    /// One row of a rows event: a write has only `after`, a delete only `before`, an
    /// update both; an update that changes the key removes the old one.
    pub fn row(&mut self, before: Option<Key>, after: Option<Key>) {
        match (before, after) {
            (Some(b), Some(a)) if b == a => self.set(a, true, true, None),
            (Some(b), Some(a)) => {
                self.set(b, true, false, Some(How::Update));
                self.set(a, false, true, None);
            }
            (Some(b), None) => self.set(b, true, false, Some(How::Delete)),
            (None, Some(a)) => self.set(a, false, true, None),
            (None, None) => {}
        }
    }

    /// A row changed by a transaction the end snapshot does not see (PostgreSQL): its
    /// keys are read as the snapshot has them, with nothing expected of them; a key
    /// already named keeps what the transactions before said (one that changed the same
    /// row committed after them).
    pub fn row_unseen(&mut self, before: Option<Key>, after: Option<Key>) {
        for key in before.into_iter().chain(after) {
            self.keys.entry(key).or_insert(KeyState {
                existed: false,
                exists: false,
                removed: None,
            });
        }
    }

    /// `found`: the event found a row with the key (it is a before image).
    fn set(&mut self, key: Key, found: bool, exists: bool, removed: Option<How>) {
        let state = self.keys.entry(key).or_insert(KeyState {
            existed: found,
            exists,
            removed: None,
        });
        state.exists = exists;
        if state.removed.is_none() {
            state.removed = removed;
        }
    }

    /// Rows the range added (positive) or removed, given which changed keys have a row
    /// at its end: for each key, whether it has one now minus whether it had one before.
    pub fn net_rows(&self, at_end: impl Fn(&Key) -> bool) -> i64 {
        self.keys
            .iter()
            .map(|(k, s)| i64::from(at_end(k)) - i64::from(s.existed))
            .sum()
    }
}

/// What a statement logged as text does to the exported tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ddl {
    /// `TRUNCATE` of this table.
    Truncate(String),
    /// Any other DDL naming this table.
    Change(String),
}

/// A statement's tokens: identifiers (bare, or in backquotes), with string literals and
/// comments left out; punctuation as single-character tokens.
fn tokens(sql: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-')) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // MySQL's executable comments (/*! ... */) hold SQL: read their body.
            if b.get(i + 2) == Some(&b'!') {
                i += 3;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') {
            i += 2;
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() {
                // A backslash escape, or the quote doubled.
                if b[i] == b'\\' || (b[i] == c && b.get(i + 1) == Some(&c)) {
                    i += 2;
                } else if b[i] == c {
                    break;
                } else {
                    i += 1;
                }
            }
            i += 1;
        } else if c == b'`' {
            let mut name = Vec::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'`' && b.get(i + 1) == Some(&b'`') {
                    name.push(b'`');
                    i += 2;
                } else if b[i] == b'`' {
                    break;
                } else {
                    name.push(b[i]);
                    i += 1;
                }
            }
            i += 1;
            out.push((String::from_utf8_lossy(&name).into_owned(), true));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push((String::from_utf8_lossy(&b[start..i]).into_owned(), false));
        } else {
            out.push(((c as char).to_string(), false));
            i += 1;
        }
    }
    out
}

/// The effect of a statement logged as text on the exported `tables` of database `db`,
/// when it runs with `default_db` as its default database. Transaction control and
/// statements on other tables have none. Any DDL that names an exported table is a
/// change (cautious: a name in a statement about another table counts too).
pub fn ddl_effect(sql: &str, default_db: &str, db: &str, tables: &[String]) -> Vec<Ddl> {
    let toks = tokens(sql);
    let Some((first, false)) = toks.first() else {
        return Vec::new();
    };
    let verb = first.to_ascii_uppercase();
    if !matches!(
        verb.as_str(),
        "ALTER" | "DROP" | "RENAME" | "CREATE" | "TRUNCATE" | "OPTIMIZE" | "REPAIR"
    ) {
        return Vec::new();
    }
    // CREATE TEMPORARY TABLE / DROP TEMPORARY TABLE are a session's own.
    if toks
        .get(1)
        .is_some_and(|(t, q)| !q && t.eq_ignore_ascii_case("TEMPORARY"))
    {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (i, (tok, _)) in toks.iter().enumerate() {
        let Some(table) = tables.iter().find(|t| t.eq_ignore_ascii_case(tok)) else {
            continue;
        };
        let qualified_by = (i >= 2 && toks[i - 1].0 == ".").then(|| toks[i - 2].0.as_str());
        let in_db = match qualified_by {
            Some(q) => q == db,
            None => default_db == db,
        };
        // `a.b` where b is a column of table a, not a table of database a.
        let is_column = toks.get(i + 1).is_some_and(|(t, _)| t == ".");
        if !in_db || is_column {
            continue;
        }
        let effect = if verb == "TRUNCATE" {
            Ddl::Truncate(table.clone())
        } else {
            Ddl::Change(table.clone())
        };
        if !found.contains(&effect) {
            found.push(effect);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::binlog_row::KeyValue;

    fn k(i: i128) -> Key {
        vec![KeyValue::Int(i)]
    }

    #[test]
    fn an_unseen_change_names_keys_without_changing_what_seen_ones_said() {
        let mut t = TableChanges::default();
        t.row(None, Some(k(1))); // insert 1, seen
        t.row_unseen(Some(k(1)), Some(k(2))); // 1 -> 2 after the snapshot
        t.row_unseen(None, Some(k(3)));
        assert!(
            t.keys[&k(1)].exists,
            "the snapshot has 1: its last seen change says so"
        );
        assert!(!t.keys[&k(2)].exists && !t.keys[&k(3)].exists);
        assert_eq!(t.keys.len(), 3);
    }

    #[test]
    fn keys_remember_their_last_state_and_first_removal() {
        let mut t = TableChanges::default();
        t.row(None, Some(k(1))); // insert 1
        t.row(Some(k(1)), Some(k(1001))); // 1 -> 1001
        t.row(Some(k(1001)), None); // delete 1001
        t.row(None, Some(k(1))); // 1 again
        t.row(Some(k(2)), None); // delete 2
        t.row(Some(k(3)), Some(k(3))); // update 3
        assert_eq!(
            t.keys[&k(1)],
            KeyState {
                existed: false,
                exists: true,
                removed: Some(How::Update)
            }
        );
        assert_eq!(
            t.keys[&k(1001)],
            KeyState {
                existed: false,
                exists: false,
                removed: Some(How::Delete)
            }
        );
        assert_eq!(t.keys[&k(2)].removed, Some(How::Delete));
        assert_eq!(
            t.keys[&k(3)],
            KeyState {
                existed: true,
                exists: true,
                removed: None
            }
        );
        // 1 was new, 2 and 3 were there, 1001 came and went: 3 rows before, 2 after... of
        // these keys: 2 (had) -> 2 (1 and 3 have rows), so nothing net.
        let at_end = |key: &Key| t.keys[key].exists;
        assert_eq!(t.net_rows(at_end), 0);
        assert_eq!(
            t.net_rows(|_| false),
            -2,
            "every changed key gone: 2 and 3 were rows"
        );
        // A key swap 1 <-> 2 in one transaction: both remain, both were moved away.
        let mut s = TableChanges::default();
        s.row(Some(k(1)), Some(k(-1)));
        s.row(Some(k(2)), Some(k(1)));
        s.row(Some(k(-1)), Some(k(2)));
        assert!(s.keys[&k(1)].exists && s.keys[&k(2)].exists && !s.keys[&k(-1)].exists);
        assert!(s.keys[&k(1)].existed && s.keys[&k(2)].existed && !s.keys[&k(-1)].existed);
        assert_eq!(s.net_rows(|key| s.keys[key].exists), 0);
        assert_eq!(s.keys[&k(2)].removed, Some(How::Update));
    }

    #[test]
    fn ddl_on_exported_tables_only() {
        let tables = vec!["user".to_string(), "order item".to_string()];
        let cases: Vec<(&str, &str, Vec<Ddl>)> = vec![
            ("BEGIN", "app", vec![]),
            ("COMMIT", "app", vec![]),
            (
                "TRUNCATE TABLE `user`",
                "app",
                vec![Ddl::Truncate("user".into())],
            ),
            ("truncate user", "app", vec![Ddl::Truncate("user".into())]),
            (
                "TRUNCATE app.user",
                "other",
                vec![Ddl::Truncate("user".into())],
            ),
            ("TRUNCATE other.user", "app", vec![]),
            ("TRUNCATE user", "other", vec![]),
            (
                "ALTER TABLE `order item` ADD COLUMN x int AFTER y",
                "app",
                vec![Ddl::Change("order item".into())],
            ),
            (
                "/* c */ DROP TABLE IF EXISTS `user` /* generated by server */",
                "app",
                vec![Ddl::Change("user".into())],
            ),
            (
                "RENAME TABLE user TO user_old, user_new TO user",
                "app",
                vec![Ddl::Change("user".into())],
            ),
            (
                "CREATE INDEX i ON user (name)",
                "app",
                vec![Ddl::Change("user".into())],
            ),
            (
                "CREATE TABLE audit (note varchar(9) DEFAULT 'user')",
                "app",
                vec![],
            ),
            ("DROP TEMPORARY TABLE IF EXISTS user", "app", vec![]),
            ("CREATE TEMPORARY TABLE user (x int)", "app", vec![]),
            ("GRANT SELECT ON app.user TO u", "app", vec![]),
            (
                "ALTER TABLE other ADD FOREIGN KEY (u) REFERENCES user (id)",
                "app",
                vec![Ddl::Change("user".into())],
            ),
        ];
        for (sql, default_db, want) in cases {
            assert_eq!(ddl_effect(sql, default_db, "app", &tables), want, "{sql}");
        }
    }
}
