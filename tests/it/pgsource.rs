//! PostgreSQL as the source: the same export -> manifest -> import -> verify chain for
//! an application moving between two PostgreSQL schema versions. Every common type
//! (quoted mixed-case names, a partitioned table, identity and serial columns, views not
//! exported) copied into a second database is identical table by table and its
//! sequences continue; a Prisma-style schema converges into a snake_case one.

use crate::export::{export_dir, load};
use crate::harness::*;

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE "User" (
  id serial PRIMARY KEY,
  "createdAt" timestamptz NOT NULL DEFAULT now(),
  name text NOT NULL, nick varchar(20), code char(4), uid uuid, photo bytea, active bool,
  small int2, big int8, amount numeric(12,2), ratio float4, score float8,
  born date, wakes time, seen timestamp(3), lag interval, doc json, meta jsonb,
  tags text[], nums int[], feeling mood, age posint, search tsvector, ip inet
);
CREATE TABLE "Post" (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "authorId" integer REFERENCES "User" (id), title text,
  "wordCount" integer GENERATED ALWAYS AS (length(title)) STORED
);
CREATE TABLE events (id integer, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
"#;

const DATA: &str = r#"
INSERT INTO "User" ("createdAt", name, nick, code, uid, photo, active, small, big, amount, ratio,
  score, born, wakes, seen, lag, doc, meta, tags, nums, feeling, age, search, ip) VALUES
 ('2024-01-01 10:00:00.123456+00', 'Ada', 'ada', 'AB', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '\x00ff0a0d22', true, -32768, 9223372036854775807, 12345.67, 1.5, 0.30000000000000004,
  '1815-12-10', '07:30:00.5', '2024-02-29 12:34:56.789', '1 day 02:00:00',
  '{"a": 1, "a": 2}', '{"k": [1, 2.50, null]}', '{a,"b c",NULL,"d\"e"}', '{1,2,3}', 'happy', 36,
  to_tsvector('simple', 'the analytical engine'), '192.168.0.1/24'),
 ('2023-06-30 23:59:59+00', 'tab	and
newline, "quotes", \N and emoji 😀', '', '    ', NULL, '\x', false, 0, -1, -0.01, 'NaN', 'Infinity',
  '2000-01-01', '00:00:00', '1970-01-01 00:00:00', '-3 mons -04:00:00.25', '[]', '{}', '{}', '{}',
  'sad', 1, '', '::1'),
 ('2022-01-01 00:00:00+00', 'nulls', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', '-0',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO "Post" ("authorId", title) VALUES (1, 'Notes'), (1, 'More notes'), (2, NULL);
INSERT INTO events VALUES (1, '2023-05-01', 'a'), (2, '2024-05-01', 'b'), (3, '2024-12-31', NULL);
SELECT setval('"User_id_seq"', 41);
CREATE VIEW user_names AS SELECT name FROM "User";
CREATE MATERIALIZED VIEW post_count AS SELECT count(*) AS n FROM "Post";
"#;

/// `md5` of every row of a table, in a stable order, as PostgreSQL prints them.
fn digest(db: &str, table: &str) -> String {
    pg_rows(
        db,
        &format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"
        ),
    )[0][0]
        .clone()
        .unwrap()
}

fn source_url(db: &str) -> String {
    format!("{}/{db}", postgres_url())
}

#[test]
fn a_postgresql_database_copies_into_another_identically() {
    let w = World::new("pgsource_copy");
    let src = w.pg_db("src");
    pg_exec(&src, SCHEMA);
    pg_exec(&src, DATA);
    w.pg(SCHEMA);
    let url = source_url(&src);
    let o = w.run(&["export", "app", "--source-url", &url, "--out", "out"]);
    assert_exit(&o, 0);
    // The export is named `app` but reads the URL's database: said, not silently filed.
    assert!(
        stderr(&o).contains(&format!(
            "the source URL names database `{src}`, which is read, but the export is named `app`"
        )),
        "{}",
        stderr(&o)
    );
    let dir = export_dir(&o, w.path());
    let m = load(&dir);
    assert_eq!(m.source.kind, "postgresql");
    let tables: Vec<&String> = m.tables.keys().collect();
    // The partitioned table once, through its parent; no view, no materialized view.
    assert_eq!(tables, ["Post", "User", "events"], "{tables:?}");
    assert_eq!(m.tables["Post"].generated_columns, ["wordCount"]);
    assert_eq!(m.tables["events"].rows, 3);
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--yes", "--target-db", &w.db]);
    assert_exit(&o, 0);
    // PostgreSQL's own output forms (timestamptz `+00`, NaN, Infinity) are read by the
    // binary converters exactly: no table had to start over as CSV.
    assert!(!stderr(&o).contains("starting over"), "{}", stderr(&o));
    for table in ["\"User\"", "\"Post\"", "events"] {
        assert_eq!(digest(&w.db, table), digest(&src, table), "{table}");
    }
    // The sequences continue after the source's, not after the rows'.
    assert_eq!(
        w.pg_value("SELECT nextval('\"User_id_seq\"')::text")
            .as_deref(),
        Some("42")
    );
    assert_eq!(
        w.pg_value("SELECT nextval(pg_get_serial_sequence('\"Post\"', 'id'))::text")
            .as_deref(),
        Some("4")
    );
    // Verified against the files and against the live source, every value.
    assert_exit(
        &w.run(&[
            "verify",
            d,
            "--target-db",
            &w.db,
            "--source",
            "--source-url",
            &url,
        ]),
        0,
    );
    for mode in [
        &["--deep"][..],
        &["--deep", "--source", "--source-url", &url][..],
    ] {
        let mut args = vec!["verify", d, "--target-db", &w.db];
        args.extend_from_slice(mode);
        let o = w.run(&args);
        assert_exit(&o, 0);
    }
    w.pg("UPDATE \"User\" SET ratio = 'Infinity' WHERE name = 'Ada'");
    let o = w.run(&[
        "verify",
        d,
        "--target-db",
        &w.db,
        "--deep",
        "--source",
        "--source-url",
        &url,
    ]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o)
            .contains("table `User`, id=1, column `ratio`: source \"1.5\", target \"Infinity\""),
        "{}",
        stdout(&o)
    );
    // --split-rows: key ranges read in parallel on the one exported snapshot (the row
    // estimate is the planner's: the table must have been analysed).
    pg_exec(&src, "ANALYZE");
    let o = w.run(&[
        "export",
        "app",
        "--source-url",
        &url,
        "--out",
        "split",
        "--jobs",
        "2",
        "--split-rows",
        "1",
    ]);
    assert_exit(&o, 0);
    let split = export_dir(&o, w.path());
    let m = load(&split);
    assert_eq!(
        m.tables["User"].parts.len(),
        2,
        "{:?}",
        m.tables["User"].parts
    );
    assert!(
        m.tables["User"].parts[0].range.starts_with("\"id\" < "),
        "{:?}",
        m.tables["User"].parts
    );
    assert!(
        m.snapshot
            .synchronized_by
            .starts_with("pg_export_snapshot()"),
        "{:?}",
        m.snapshot
    );
    assert_exit(
        &w.run(&[
            "import",
            split.to_str().unwrap(),
            "--yes",
            "--target-db",
            &w.db,
        ]),
        0,
    );
    for table in ["\"User\"", "\"Post\"", "events"] {
        assert_eq!(digest(&w.db, table), digest(&src, table), "{table}");
    }
    // Importing into the very database and schema it was read from is refused.
    let o = w.run(&["import", d, "--yes", "--target-db", &src]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("the target is the export's own source"),
        "{}",
        stderr(&o)
    );
    assert_eq!(digest(&src, "\"User\"").split(':').next(), Some("3"));
}

#[test]
fn a_prisma_schema_converges_into_a_snake_case_rewrite() {
    let w = World::new("pgsource_prisma");
    let src = w.pg_db("prisma");
    pg_exec(
        &src,
        r#"CREATE TABLE "User" (id text PRIMARY KEY, "firstName" text NOT NULL, "createdAt" timestamp(3) NOT NULL);
           CREATE TABLE "Teacher" (id text PRIMARY KEY, "fullName" text NOT NULL);
           CREATE TABLE "_prisma_migrations" (id text PRIMARY KEY);
           CREATE TABLE "Post" (id serial PRIMARY KEY, "authorId" text REFERENCES "User" (id), "isDraft" boolean NOT NULL);
           INSERT INTO "User" VALUES ('u1', 'Ada', '2024-01-01 10:00:00.123'), ('u2', 'Alan', '2024-01-02 00:00:00');
           INSERT INTO "Teacher" VALUES ('t1', 'Grace Hopper');
           INSERT INTO "Post" ("authorId", "isDraft") VALUES ('u1', false), ('u2', true), ('u1', true);"#,
    );
    w.pg(
        "CREATE TABLE app_user (id text PRIMARY KEY, first_name text NOT NULL, created_at timestamp(3) NOT NULL,
                                is_teacher boolean NOT NULL DEFAULT false);
         CREATE TABLE post (id serial PRIMARY KEY, author_id text REFERENCES app_user (id), is_draft boolean NOT NULL);",
    );
    std::fs::write(
        w.path().join("m.toml"),
        r#"rename = "snake_case"
never_copy = ["_prisma_migrations"]

[tables.User]
target = "app_user"

[tables.Teacher]
query = "SELECT id, split_part(\"fullName\", ' ', 1) AS \"firstName\", '1970-01-01'::timestamp(3) AS \"createdAt\" FROM \"Teacher\""
target = "app_user"
set = { is_teacher = "true" }

[tables.Post]
where = "NOT \"isDraft\" OR \"authorId\" = 'u2'"
"#,
    )
    .unwrap();
    let url = source_url(&src);
    let o = w.run(&["check", "--source-url", &url, "--json"]);
    assert_exit(&o, 0);
    let check: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(check["source_engine"], "postgresql");
    assert_eq!(check["servers"][0]["kind"], "source (postgresql)");
    assert!(check["servers"][0]["version"].is_string(), "{check}");
    // Named `prisma`, the URL's database is what is checked, labelled as such, and said.
    let o = w.run(&[
        "check",
        "prisma",
        "--target-db",
        &w.db,
        "--source-url",
        &url,
        "--json",
    ]);
    assert_exit(&o, 0);
    let check: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(check["databases"][0]["profile"], "prisma");
    assert_eq!(check["databases"][0]["source_database"], src.as_str());
    assert_eq!(check["databases"][0]["source_exists"], true);
    assert!(
        stderr(&o).contains(&format!("the source URL names database `{src}`")),
        "{}",
        stderr(&o)
    );
    let o = w.run(&[
        "export",
        "prisma",
        "--source-url",
        &url,
        "--map",
        "m.toml",
        "--out",
        "out",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--yes", "--target-db", &w.db, "--dry-run"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("rename: `User`.`firstName` -> `app_user`.`first_name`"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("map: `Post` -> table `post`"),
        "{}",
        stdout(&o)
    );
    assert_exit(&w.run(&["import", d, "--yes", "--target-db", &w.db]), 0);
    assert_eq!(
        w.pg_rows(
            "SELECT id, first_name, created_at::text, is_teacher::text FROM app_user ORDER BY id"
        ),
        vec![
            vec![
                Some("t1".into()),
                Some("Grace".into()),
                Some("1970-01-01 00:00:00".into()),
                Some("true".into())
            ],
            vec![
                Some("u1".into()),
                Some("Ada".into()),
                Some("2024-01-01 10:00:00.123".into()),
                Some("false".into())
            ],
            vec![
                Some("u2".into()),
                Some("Alan".into()),
                Some("2024-01-02 00:00:00".into()),
                Some("false".into())
            ],
        ]
    );
    assert_eq!(
        w.pg_value("SELECT string_agg(id || ':' || author_id, ',' ORDER BY id) FROM post")
            .as_deref(),
        Some("1:u1,2:u2")
    );
    assert_eq!(
        w.pg_value("SELECT nextval('post_id_seq')::text").as_deref(),
        Some("4")
    );
    for mode in [
        &["--source", "--source-url", &url][..],
        &["--deep", "--source", "--source-url", &url][..],
    ] {
        let mut args = vec!["verify", d, "--target-db", &w.db];
        args.extend_from_slice(mode);
        assert_exit(&w.run(&args), 0);
    }
}

/// A PostgreSQL source's json and float values are measured as a MySQL source's are: a
/// document longer than a `varchar(n)` and a float with more digits before the point
/// than a `numeric(p, s)` holds are refused before any write, each with its row and the
/// ALTER that fits; widened, the same export loads.
#[test]
fn json_and_floats_too_large_for_the_target_are_refused_before_any_write() {
    let w = World::new("pgsource_sizes");
    let src = w.pg_db("src");
    pg_exec(
        &src,
        "CREATE TABLE t (id integer PRIMARY KEY, doc json, meta jsonb, x float8);
         INSERT INTO t VALUES (1, '[]', '{}', 0.5), (7, '{\"long\": true}', '{\"a\": 1}', 1.25e9),
           (8, NULL, '[1, 2, 3, 4, 5]', NULL);",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, doc varchar(5), meta varchar(8), x numeric(6, 2));");
    let o = w.run(&[
        "export",
        "app",
        "--source-url",
        &source_url(&src),
        "--out",
        "out",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let before = w.fingerprint();
    let o = w.run(&["import", d, "--yes", "--target-db", &w.db]);
    assert_exit(&o, 2);
    assert_eq!(w.fingerprint(), before, "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        "column `doc`: a value of 14 characters (e.g. id=7) is longer than character varying(5) holds (5) (hint: widen the target column, `ALTER TABLE \"t\" ALTER COLUMN \"doc\" TYPE varchar(14)`",
        "column `meta`: a value of 15 characters (e.g. id=8) is longer than character varying(8) holds (8)",
        "column `x`: a value with 10 digits before the point (e.g. id=7) does not fit numeric(6,2), which holds 4 (hint: widen the target column, `ALTER TABLE \"t\" ALTER COLUMN \"x\" TYPE numeric(12, 2)`)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    w.pg(
        "ALTER TABLE t ALTER COLUMN doc TYPE varchar(14), ALTER COLUMN meta TYPE varchar(15),
          ALTER COLUMN x TYPE numeric(12, 2);",
    );
    assert_exit(&w.run(&["import", d, "--yes", "--target-db", &w.db]), 0);
    assert_eq!(
        w.pg_rows("SELECT doc, meta, x::text FROM t WHERE id = 7"),
        vec![vec![
            Some("{\"long\": true}".into()),
            Some("{\"a\": 1}".into()),
            Some("1250000000.00".into())
        ]]
    );
}

/// `Infinity` in a PostgreSQL source's float or numeric cannot go into a `numeric(p, s)`:
/// refused before any write, naming the row; `NaN` can, and so can both into a numeric
/// without a precision, where the same export then loads them as they were.
#[test]
fn infinity_into_a_sized_numeric_is_refused_before_any_write() {
    let w = World::new("pgsource_infinity");
    let src = w.pg_db("src");
    pg_exec(
        &src,
        "CREATE TABLE t (id integer PRIMARY KEY, f float8, n numeric, nan float8);
         INSERT INTO t VALUES (1, 1.5, 2.25, 'NaN'), (4, '-Infinity', 'Infinity', 'NaN');",
    );
    w.pg("CREATE TABLE t (id integer PRIMARY KEY, f numeric(10, 2), n numeric(10, 2), nan numeric(10, 2));");
    let o = w.run(&[
        "export",
        "app",
        "--source-url",
        &source_url(&src),
        "--out",
        "out",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let before = w.fingerprint();
    let o = w.run(&["import", d, "--yes", "--target-db", &w.db]);
    assert_exit(&o, 2);
    assert_eq!(w.fingerprint(), before);
    let err = stderr(&o);
    for col in ["f", "n"] {
        let want = format!(
            "column `{col}`: holds Infinity (e.g. id=4), which numeric(10,2) cannot hold (PostgreSQL's numeric holds it only without a precision) (hint: `ALTER TABLE \"t\" ALTER COLUMN \"{col}\" TYPE numeric`"
        );
        assert!(err.contains(&want), "{want}\n{err}");
    }
    assert!(!err.contains("column `nan`"), "{err}");
    w.pg("ALTER TABLE t ALTER COLUMN f TYPE numeric, ALTER COLUMN n TYPE numeric;");
    assert_exit(&w.run(&["import", d, "--yes", "--target-db", &w.db]), 0);
    assert_eq!(
        w.pg_rows("SELECT f::text, n::text, nan::text FROM t ORDER BY id"),
        vec![
            vec![Some("1.5".into()), Some("2.25".into()), Some("NaN".into())],
            vec![
                Some("-Infinity".into()),
                Some("Infinity".into()),
                Some("NaN".into())
            ],
        ]
    );
}
