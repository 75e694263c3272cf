//! Target-aware adaptation against the real servers, with a schema pair made to hold
//! every trap: `''` in varchar(36) headed for uuid, MySQL's invalid ENUM value, a label
//! the target enum lacks, tinyint(1) holding 2 and -1, SET into arrays, datetime into
//! date, decimal into numeric (binary), TIME into interval, an unowned sequence, an
//! AUTO_INCREMENT past the last id, a partitioned target. Decided before any write,
//! identical on the binary and the CSV path.

use crate::export::export_dir;
use crate::harness::*;

fn export(w: &World) -> std::path::PathBuf {
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    export_dir(&o, w.path())
}

const MYSQL_SESSION: &str = r#"
SET SESSION sql_mode = '';
CREATE TABLE session (
  id INT AUTO_INCREMENT PRIMARY KEY, session_id VARCHAR(36), identity_id VARCHAR(36) NOT NULL,
  active TINYINT(1), mood ENUM('happy','sad'), tags SET('a','b','c d'), moods SET('happy','sad'),
  seen DATETIME(6), price DECIMAL(10,2), dur TIME(3), note TEXT
);
INSERT INTO session VALUES
 (1, '', '6f9619ff-8b86-d011-b42d-00cf4fc964ff', 2, 'happy', 'a,b', 'happy,sad', '2024-01-01 10:30:00', 12.50, '838:59:59.000', 'x'),
 (2, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '6f9619ff-8b86-d011-b42d-00cf4fc964ff', -1, 'sad', '', '', '2024-01-02 00:00:00', -0.01, '-00:00:01.500', ''),
 (3, NULL, '6f9619ff-8b86-d011-b42d-00cf4fc964ff', 0, NULL, 'c d', NULL, NULL, NULL, NULL, NULL),
 (4, '', '6f9619ff-8b86-d011-b42d-00cf4fc964ff', 1, 'happy', 'a,b,c d', 'sad', '2024-02-29 23:59:59.999999', 99999999.99, '00:00:00', NULL);
ALTER TABLE session AUTO_INCREMENT = 100;
CREATE TABLE counter (id INT PRIMARY KEY, label VARCHAR(10));
INSERT INTO counter VALUES (7, 'x'), (41, 'y');
"#;

const PG_SESSION: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE SEQUENCE session_id_seq;
CREATE TABLE session (
  id integer PRIMARY KEY DEFAULT nextval('session_id_seq'), session_id uuid, identity_id uuid NOT NULL,
  active boolean, mood mood, tags text[], moods mood[], seen date, price numeric(10,2),
  dur interval, note text
);
CREATE SEQUENCE counter_seq;
CREATE TABLE counter (id bigint PRIMARY KEY DEFAULT nextval('counter_seq'), label text);
"#;

#[test]
fn every_adaptation_loads_the_same_on_both_paths() {
    let w = World::new("adapt_loads");
    w.mysql(MYSQL_SESSION);
    w.pg(PG_SESSION);
    let dir = export(&w);
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--dry-run"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    for want in [
        "adapt: `session`.`session_id`: '' -> NULL (2 values were '')",
        "adapt: `session`.`active`: integer -> boolean (0 false, anything else true) (2 values other than 0/1 become true)",
        "adapt: `session`.`tags`: SET 'a,b' -> array {a,b}",
        "adapt: `session`.`moods`: SET 'a,b' -> array {a,b}",
        "adapt: `session`.`seen`: datetime -> its date (2 values lose a time of day)",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    assert!(
        stderr(&o).contains("2 values have a time of day, which the date column drops")
            && stderr(&o).contains("2 values are neither 0 nor 1; as in MySQL they load as true"),
        "{}",
        stderr(&o)
    );
    // Every column has a binary converter now, numeric, interval and arrays included.
    let o = w.run(&["import", d, "--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let session = plan["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "session")
        .unwrap();
    assert_eq!(session["copy_format"], "binary", "{session}");

    assert_exit(&w.run(&["import", d, "--yes", "--copy-format", "csv"]), 0);
    let as_csv = w.fingerprint();
    assert_exit(&w.run(&["import", d, "--yes"]), 0);
    assert_eq!(w.fingerprint(), as_csv, "binary and CSV paths differ");
    assert_eq!(
        w.pg_rows(
            "SELECT session_id::text, active::text, mood::text, tags::text, moods::text, seen::text,
                    price::text, dur::text, note FROM session ORDER BY id"
        ),
        [
            [None, Some("true"), Some("happy"), Some("{a,b}"), Some("{happy,sad}"), Some("2024-01-01"), Some("12.50"), Some("838:59:59"), Some("x")],
            [Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), Some("true"), Some("sad"), Some("{}"), Some("{}"), Some("2024-01-02"), Some("-0.01"), Some("-00:00:01.5"), Some("")],
            [None, Some("false"), None, Some("{\"c d\"}"), None, None, None, None, None],
            [None, Some("true"), Some("happy"), Some("{a,b,\"c d\"}"), Some("{sad}"), Some("2024-02-29"), Some("99999999.99"), Some("00:00:00"), None],
        ]
        .iter()
        .map(|r| r.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
    // An unowned sequence continues after the source's AUTO_INCREMENT (100), not the
    // loaded max (4); one without AUTO_INCREMENT after the loaded max.
    assert_eq!(
        w.pg_value("INSERT INTO session (identity_id) VALUES ('6f9619ff-8b86-d011-b42d-00cf4fc964ff') RETURNING id")
            .as_deref(),
        Some("100")
    );
    assert_eq!(
        w.pg_value("INSERT INTO counter (label) VALUES ('z') RETURNING id")
            .as_deref(),
        Some("42")
    );
}

#[test]
fn values_that_cannot_fit_are_refused_before_any_write() {
    let w = World::new("adapt_refusals");
    w.mysql(
        "SET SESSION sql_mode = '';
         CREATE TABLE t (
           id INT PRIMARY KEY, must VARCHAR(36), wrong TEXT, mood ENUM('happy','sad','angry'),
           blob_as_int BLOB, long_time TIME
         );
         INSERT INTO t VALUES
           (1, '', 'not-a-uuid', 'angry', x'01', '25:00:00'),
           (2, '6f9619ff-8b86-d011-b42d-00cf4fc964ff', '6f9619ff-8b86-d011-b42d-00cf4fc964ff', 'bogus', x'02', '01:00:00');",
    );
    w.pg(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE t (id integer PRIMARY KEY, must uuid NOT NULL, wrong uuid, mood mood,
                         blob_as_int integer, long_time time);
         INSERT INTO t VALUES (9, '6f9619ff-8b86-d011-b42d-00cf4fc964ff', NULL, 'sad', 1, '01:00');",
    );
    let dir = export(&w);
    let before = w.fingerprint();
    for format in ["auto", "csv"] {
        let o = w.import_as(&dir, format);
        assert_exit(&o, 2);
        let err = stderr(&o);
        for want in [
            "import refused before any write",
            "column `must`: 1 value is '' (which a uuid column can only take as NULL) but the target column is NOT NULL; e.g. id=1",
            "column `wrong`: 1 value is not a UUID but the target column is uuid; e.g. id=1",
            "column `mood`: 1 row holds the value `angry`, which enum mood lacks; e.g. id=1",
            "column `mood`: 1 row holds the value '' (MySQL's invalid ENUM value), which enum mood lacks; e.g. id=2",
            "column `blob_as_int`: blob (blob) cannot be loaded into integer",
            "column `long_time`: 1 TIME values lie outside 00:00:00-23:59:59",
        ] {
            assert!(err.contains(want), "{format}: missing `{want}` in\n{err}");
        }
        assert!(!err.contains("COPY"), "{err}");
        assert_eq!(w.fingerprint(), before);
    }
}

#[test]
fn a_partitioned_target_loads_and_a_row_without_partition_is_named() {
    let w = World::new("adapt_partitioned");
    w.mysql(
        "CREATE TABLE event (id INT, at DATE, what VARCHAR(10), PRIMARY KEY (id, at));
         INSERT INTO event VALUES (1, '2024-03-01', 'a'), (2, '2024-11-30', 'b');",
    );
    w.pg(
        "CREATE TABLE event (id integer, at date, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE event_2024 PARTITION OF event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         INSERT INTO event VALUES (9, '2024-06-01', 'old');",
    );
    let dir = export(&w);
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(what, ',' ORDER BY id) FROM event")
            .as_deref(),
        Some("a,b")
    );
    // A row of 2020 fits no partition: refused before COMMIT with the value and the
    // partitions that exist; nothing changes.
    w.mysql("INSERT INTO event VALUES (3, '2020-05-05', 'c')");
    let dir = export(&w);
    let before = w.fingerprint();
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("at row (id=3, at=2020-05-05)")
            && err.contains("(at) = (2020-05-05)")
            && err.contains(
                "its partitions are: event_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
            ),
        "{err}"
    );
    assert_eq!(w.fingerprint(), before);
}

/// Values the target can hold are adapted, values it cannot are refused before any
/// write (pgloader and a first user hit each): `binary(16)` into `uuid` (both byte
/// orders), JSON holding `\u0000` into `json` and text (jsonb refuses it at plan time),
/// and an `int unsigned` past `integer`'s range named by value and key.
#[test]
fn sixteen_bytes_json_nul_and_integer_ranges_meet_their_target() {
    let w = World::new("adapt_bytes_json_ranges");
    w.mysql(
        r#"CREATE TABLE person (id INT UNSIGNED PRIMARY KEY, uid BINARY(16) NOT NULL,
                                ord BINARY(16), doc JSON, note TEXT);
           INSERT INTO person VALUES
            (1, UNHEX(REPLACE('6ccd780c-baba-1026-9564-5b8c656024db', '-', '')),
                UNHEX('1026BABA6CCD780C95645B8C656024DB'), '["x\\u0000y"]', 'a'),
            (2, UNHEX('00000000000000000000000000000000'), NULL, '{"k": "v"}', NULL),
            (4294967295, UNHEX('FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'), NULL, NULL, 'max');"#,
    );
    // The target holds the values: uuid, json, bigint.
    w.pg(
        "CREATE TABLE person (id bigint PRIMARY KEY, uid uuid NOT NULL, ord uuid, doc json,
                              note text)",
    );
    let map = w.path().join("m.toml");
    std::fs::write(
        &map,
        format!(
            "source_db = \"{0}\"\n[tables.person]\nuuid_bytes = {{ ord = \"swapped\" }}\n",
            w.db
        ),
    )
    .unwrap();
    let o = w.run(&[
        "export",
        &w.db,
        "--out",
        "out",
        "--map",
        map.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--dry-run"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("adapt: `person`.`uid`: 16 bytes -> uuid"),
        "{}",
        stdout(&o)
    );
    for format in ["auto", "csv"] {
        assert_exit(&w.import_as(&dir, format), 0);
        assert_eq!(
            w.pg_rows("SELECT id::text, uid::text, ord::text, doc::text FROM person ORDER BY id"),
            [
                [
                    Some("1".into()),
                    Some("6ccd780c-baba-1026-9564-5b8c656024db".into()),
                    Some("6ccd780c-baba-1026-9564-5b8c656024db".into()),
                    Some(r#"["x\u0000y"]"#.into())
                ],
                [
                    Some("2".into()),
                    Some("00000000-0000-0000-0000-000000000000".into()),
                    None,
                    Some(r#"{"k": "v"}"#.into())
                ],
                [
                    Some("4294967295".into()),
                    Some("ffffffff-ffff-ffff-ffff-ffffffffffff".into()),
                    None,
                    None
                ],
            ],
            "{format}"
        );
    }
    let o = w.run(&["verify", d, "--deep", "--source"]);
    assert_exit(&o, 0);
    // The same mapping (uuid_bytes) through migrate gives the same target.
    crate::paths::both_paths(
        &w,
        &w.db,
        &map,
        "CREATE TABLE person (id bigint PRIMARY KEY, uid uuid NOT NULL, ord uuid, doc json,
                              note text)",
        &[],
    );

    // A target that cannot hold them: refused before any write, by column and key.
    let strict = w.pg_db("strict");
    pg_exec(
        &strict,
        "CREATE TABLE person (id integer PRIMARY KEY, uid uuid NOT NULL, ord uuid, doc jsonb,
                              note text);
         INSERT INTO person VALUES (9, '6ccd780c-baba-1026-9564-5b8c656024db', NULL, NULL, 'kept');",
    );
    let o = w.run(&["import", d, "--yes", "--target-db", &strict]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    for want in [
        "import refused before any write (2 problems)",
        "table `person`, column `id`: the value 4294967295 (e.g. id=4294967295) is outside the range of integer (-2147483648 to 2147483647)",
        r"table `person`, column `doc`: 1 JSON value holds \u0000, which jsonb cannot store; e.g. id=1",
    ] {
        assert!(err.contains(want), "missing `{want}` in\n{err}");
    }
    assert_eq!(
        pg_rows(&strict, "SELECT note FROM person"),
        [[Some("kept".to_string())]]
    );
}

/// A varbinary(16) column is a uuid only when every value has 16 bytes.
#[test]
fn a_short_varbinary_is_refused_for_uuid_with_its_key() {
    let w = World::new("adapt_short_varbinary");
    w.mysql(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARBINARY(16));
         INSERT INTO t VALUES (1, UNHEX('6CCD780CBABA102695645B8C656024DB')), (2, UNHEX('00FF'));",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, v uuid)");
    let dir = export(&w);
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains(
            "table `t`, column `v`: a value of 2 bytes (e.g. id=2) cannot be a uuid, which is 16 bytes"
        ),
        "{}",
        stderr(&o)
    );
}

/// The TOML blocks a refusal's hint prints (its lines indented by four spaces), in order.
fn hint_blocks(err: &str) -> Vec<String> {
    let hint = &err[err.find("hint:").expect("a hint")..];
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut open = false;
    for line in hint.lines() {
        if let Some(l) = line.strip_prefix("    ") {
            if !open {
                blocks.push(Vec::new());
                open = true;
            }
            blocks.last_mut().unwrap().push(l);
        } else {
            open = false;
        }
    }
    blocks.into_iter().map(|b| b.join("\n")).collect()
}

/// A hint's `where` block pasted into a mapping: the source exported again with it and
/// the new export imported with it.
fn export_and_import_with(w: &World, block: &str) -> std::process::Output {
    std::fs::write(w.path().join("keep.toml"), block).unwrap();
    let o = w.run(&["export", &w.db, "--out", "out2", "--map", "keep.toml"]);
    assert_exit(&o, 0);
    let kept = export_dir(&o, w.path());
    w.run(&[
        "import",
        kept.to_str().unwrap(),
        "--yes",
        "--map",
        "keep.toml",
    ])
}

/// A hint's `set` block pasted into a mapping, the first export imported with it.
fn import_with(w: &World, dir: &std::path::Path, block: &str) -> std::process::Output {
    std::fs::write(w.path().join("give.toml"), block).unwrap();
    w.run(&[
        "import",
        dir.to_str().unwrap(),
        "--yes",
        "--map",
        "give.toml",
    ])
}

/// `''` in a NOT NULL uuid column and MySQL's invalid ENUM value are refused with the
/// mapping lines that fix them, in the source's SQL for `where` and PostgreSQL's for
/// `set`; pasted as they are, each makes the import go through.
#[test]
fn a_refusal_the_data_calls_for_hints_the_mapping_lines_that_fix_it() {
    let w = World::new("adapt_fix_hint");
    w.mysql(
        "SET SESSION sql_mode = '';
         CREATE TABLE book (id INT PRIMARY KEY, tag CHAR(36) NOT NULL, state ENUM('draft','live') NOT NULL);
         INSERT INTO book VALUES (1, '', 'draft'), (2, '0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01', 'bogus'),
           (3, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'live');",
    );
    w.pg("CREATE TYPE state AS ENUM ('draft', 'live');
         CREATE TABLE book (id integer PRIMARY KEY, tag uuid NOT NULL, state state NOT NULL);");
    let dir = export(&w);
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("import refused before any write"), "{err}");
    let blocks = hint_blocks(&err);
    assert_eq!(blocks.len(), 2, "a where block and a set block: {err}");
    assert_eq!(
        blocks[0],
        "[tables.book]\nwhere = \"`tag` IS NOT NULL AND `tag` <> '' AND `state` NOT IN ('')\"",
        "{err}"
    );
    assert!(
        blocks[1].starts_with("[tables.book]\nset = { tag = "),
        "{err}"
    );

    // `where`: export again with it; the two rows are left out.
    assert_exit(&export_and_import_with(&w, &blocks[0]), 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM book")
            .as_deref(),
        Some("3")
    );

    // `set`: the first export imported with it; every row arrives, the two given values.
    assert_exit(&import_with(&w, &dir, &blocks[1]), 0);
    let rows = w.pg_rows("SELECT id::text, tag::text, state::text FROM book ORDER BY id");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][2].as_deref(), Some("draft"));
    assert!(
        rows[0][1].as_deref().is_some_and(|t| t.len() == 36),
        "{rows:?}"
    );
    assert_eq!(
        rows[1][1].as_deref(),
        Some("0b6c5f9e-1c1f-4e0c-9e59-4c5c6b2d1a01")
    );
    assert_eq!(
        rows[1][2].as_deref(),
        Some("draft"),
        "the enum's first label"
    );
    assert_eq!(rows[2][2].as_deref(), Some("live"));
}

/// A uuid column fed both `''` and a value that is no UUID gets one fix covering both:
/// the `where` keeps only UUIDs, the `set` keeps each UUID and draws one for the rest;
/// pasted as they are, each import goes through.
#[test]
fn values_that_are_not_uuids_get_lines_that_fix_every_one() {
    let w = World::new("adapt_not_uuid_hint");
    w.mysql(
        "CREATE TABLE account (id INT PRIMARY KEY, public_id VARCHAR(40) NOT NULL);
         INSERT INTO account VALUES (1, ''), (2, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
           (5, 'not-a-uuid'), (6, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12');",
    );
    w.pg("CREATE TABLE account (id integer PRIMARY KEY, public_id uuid NOT NULL);");
    let dir = export(&w);
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("1 value is not a UUID"), "{err}");
    let blocks = hint_blocks(&err);
    assert_eq!(blocks.len(), 2, "a where block and a set block: {err}");
    assert!(
        blocks[0].contains("`public_id` REGEXP '^[0-9A-Fa-f]{8}-"),
        "{err}"
    );
    assert_exit(&export_and_import_with(&w, &blocks[0]), 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM account")
            .as_deref(),
        Some("2,6")
    );
    assert_exit(&import_with(&w, &dir, &blocks[1]), 0);
    let rows = w.pg_rows("SELECT id::text, public_id::text FROM account ORDER BY id");
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1][1].as_deref(),
        Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    assert_eq!(
        rows[3][1].as_deref(),
        Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12")
    );
    assert!(rows[0][1].as_deref().is_some_and(|t| t.len() == 36));
    assert!(rows[2][1].as_deref().is_some_and(|t| t.len() == 36));
}

/// MySQL zero dates headed for a NOT NULL column (pgloader #792) are refused before any
/// write, naming the column, the count and a key, with mapping lines in the hint: the
/// `where` (MySQL's SQL) leaves those rows out, the `set` gives them a stand-in date the
/// hint says to replace; pasted as they are, each import goes through.
#[test]
fn zero_dates_into_a_not_null_column_hint_the_mapping_lines_that_fix_them() {
    let w = World::new("adapt_zero_date_hint");
    w.mysql(
        "SET SESSION sql_mode = '';
         CREATE TABLE person (id INT PRIMARY KEY, born DATE NOT NULL, seen DATETIME NOT NULL);
         INSERT INTO person VALUES (1, '1990-05-17', '2024-01-01 10:00:00'),
           (2, '0000-00-00', '2024-01-02 00:00:00'), (3, '2001-00-00', '0000-00-00 00:00:00'),
           (4, '1985-12-31', '2024-03-04 05:06:07');",
    );
    w.pg("CREATE TABLE person (id integer PRIMARY KEY, born date NOT NULL, seen timestamp NOT NULL);");
    let dir = export(&w);
    let before = w.fingerprint();
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 2);
    assert_eq!(w.fingerprint(), before);
    let err = stderr(&o);
    for want in [
        "table `person`, column `born`: 2 NULLs in the export (2 were zero dates) but the target column is NOT NULL; e.g. id=2; id=3",
        "table `person`, column `seen`: 1 NULL in the export (1 was a zero date) but the target column is NOT NULL; e.g. id=3",
        "a zero date gets '1970-01-01 00:00:00': pick yours",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let blocks = hint_blocks(&err);
    assert_eq!(blocks.len(), 2, "a where block and a set block: {err}");
    assert_eq!(
        blocks[0],
        "[tables.person]\nwhere = \"`born` IS NOT NULL AND YEAR(`born`) <> 0 AND MONTH(`born`) <> 0 \
         AND DAYOFMONTH(`born`) <> 0 AND `seen` IS NOT NULL AND YEAR(`seen`) <> 0 AND MONTH(`seen`) <> 0 \
         AND DAYOFMONTH(`seen`) <> 0\"",
        "{err}"
    );

    // `where`: export again with it; the two rows with a zero date are left out.
    assert_exit(&export_and_import_with(&w, &blocks[0]), 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(id::text, ',' ORDER BY id) FROM person")
            .as_deref(),
        Some("1,4")
    );

    // `set`: the first export imported with it; every row arrives, the stand-in given.
    assert_exit(&import_with(&w, &dir, &blocks[1]), 0);
    assert_eq!(
        w.pg_rows("SELECT id::text, born::text, seen::text FROM person ORDER BY id"),
        vec![
            vec![
                Some("1".into()),
                Some("1990-05-17".into()),
                Some("2024-01-01 10:00:00".into())
            ],
            vec![
                Some("2".into()),
                Some("1970-01-01".into()),
                Some("2024-01-02 00:00:00".into())
            ],
            vec![
                Some("3".into()),
                Some("1970-01-01".into()),
                Some("1970-01-01 00:00:00".into())
            ],
            vec![
                Some("4".into()),
                Some("1985-12-31".into()),
                Some("2024-03-04 05:06:07".into())
            ],
        ]
    );
}
