//! Keys other datasets follow (docs/DESIGN.md "Keys other datasets follow"): a fold whose
//! `User` ids are drawn by the target (`gen_random_uuid()`), with profile tables and links
//! that find the User made for their source row through `key_of`, on both paths; the map
//! kept in `pgconverge.key_map`; `verify --deep` proves each profile points at its User.

use crate::export::export_dir;
use crate::harness::*;
use crate::paths::both_paths;

const V1: &str = "
CREATE TABLE Teacher (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL, school VARCHAR(40));
CREATE TABLE Parent (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL);
CREATE TABLE Student (id INT PRIMARY KEY, email VARCHAR(80), name VARCHAR(80) NOT NULL, grade INT);
CREATE TABLE StudentParent (studentId INT, parentId INT, PRIMARY KEY (studentId, parentId));
INSERT INTO Teacher VALUES (1, 'Jane@X.org', 'Jane Doe', 'North'), (2, NULL, 'Tom', 'South');
INSERT INTO Parent VALUES (1, 'jane@x.org', 'Jane Doe'), (2, ' ', 'Ann Lee Park');
INSERT INTO Student VALUES (1, 'JANE@x.org', 'Jane Junior', 3), (2, NULL, 'Bo Lee', 5);
INSERT INTO StudentParent VALUES (1, 1), (2, 2), (2, 1);
";

const V2: &str = r#"
CREATE TABLE "User" (id uuid PRIMARY KEY, email text NOT NULL UNIQUE, first_name text, role text NOT NULL);
CREATE TABLE teacher_profile (id integer PRIMARY KEY, user_id uuid NOT NULL UNIQUE REFERENCES "User", school text);
CREATE TABLE parent_profile (id integer PRIMARY KEY, user_id uuid NOT NULL UNIQUE REFERENCES "User");
CREATE TABLE student_profile (id integer PRIMARY KEY, user_id uuid NOT NULL UNIQUE REFERENCES "User", grade integer);
CREATE TABLE student_parent (student_user_id uuid REFERENCES "User", parent_user_id uuid REFERENCES "User",
  PRIMARY KEY (student_user_id, parent_user_id));
"#;

const MAP: &str = r#"
[with]
teacher_addresses = "SELECT id, name, LOWER(COALESCE(NULLIF(TRIM(email), ''), CONCAT('teacher-', id, '@users.invalid'))) AS address FROM Teacher"
parent_addresses = "SELECT id, name, LOWER(COALESCE(NULLIF(TRIM(email), ''), CONCAT('parent-', id, '@users.invalid'))) AS address FROM Parent"
student_addresses = "SELECT id, name, LOWER(COALESCE(NULLIF(TRIM(email), ''), CONCAT('student-', id, '@users.invalid'))) AS address FROM Student"

# Each User gets a uuid drawn by the target; `key` names the query's source key.
[tables.teacher_users]
query = """SELECT id, name AS first_name, 'teacher' AS role,
  CASE WHEN n = 1 THEN address ELSE CONCAT(SUBSTRING_INDEX(address, '@', 1), '+', n, '@', SUBSTRING_INDEX(address, '@', -1)) END AS email
FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY address ORDER BY id) AS n FROM teacher_addresses a) r"""
key = ["id"]
target = "User"
set = { id = "gen_random_uuid()" }

[tables.parent_users]
query = """SELECT id, name AS first_name, 'parent' AS role,
  CASE WHEN n = 1 THEN address ELSE CONCAT(SUBSTRING_INDEX(address, '@', 1), '+', n, '@', SUBSTRING_INDEX(address, '@', -1)) END AS email
FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY address ORDER BY id)
        + (SELECT COUNT(*) FROM teacher_addresses t WHERE t.address = a.address) AS n FROM parent_addresses a) r"""
key = ["id"]
target = "User"
set = { id = "gen_random_uuid()" }

[tables.student_users]
query = """SELECT id, name AS first_name, 'student' AS role,
  CASE WHEN n = 1 THEN address ELSE CONCAT(SUBSTRING_INDEX(address, '@', 1), '+', n, '@', SUBSTRING_INDEX(address, '@', -1)) END AS email
FROM (SELECT a.*, ROW_NUMBER() OVER (PARTITION BY address ORDER BY id)
        + (SELECT COUNT(*) FROM teacher_addresses t WHERE t.address = a.address)
        + (SELECT COUNT(*) FROM parent_addresses p WHERE p.address = a.address) AS n FROM student_addresses a) r"""
key = ["id"]
target = "User"
set = { id = "gen_random_uuid()" }

# Each profile finds the User made for its own V1 row.
[tables.Teacher]
target = "teacher_profile"
drop = ["email", "name"]
set = { user_id = "key_of('teacher_users', id)" }

[tables.Parent]
target = "parent_profile"
drop = ["email", "name"]
set = { user_id = "key_of('parent_users', id)" }

[tables.Student]
target = "student_profile"
drop = ["email", "name"]
set = { user_id = "key_of('student_users', id)" }

[tables.StudentParent]
target = "student_parent"
columns = { studentId = "student_user_id", parentId = "parent_user_id" }
set = { student_user_id = "key_of('student_users', student_user_id)", parent_user_id = "key_of('parent_users', parent_user_id)" }
"#;

fn dir_of_steps(w: &World) -> String {
    let root = w.path().join("paths_steps");
    let db = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run = std::fs::read_dir(&db)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    run.to_str().unwrap().to_string()
}

const VOLATILE: [(&str, &str); 6] = [
    ("User", "id"),
    ("teacher_profile", "user_id"),
    ("parent_profile", "user_id"),
    ("student_profile", "user_id"),
    ("student_parent", "student_user_id"),
    ("student_parent", "parent_user_id"),
];

fn folded(db: &str) -> Vec<String> {
    [
        r#"SELECT string_agg(p.id || ':' || u.email || ':' || u.role, ',' ORDER BY p.id) FROM teacher_profile p JOIN "User" u ON u.id = p.user_id"#,
        r#"SELECT string_agg(p.id || ':' || u.email || ':' || u.role, ',' ORDER BY p.id) FROM parent_profile p JOIN "User" u ON u.id = p.user_id"#,
        r#"SELECT string_agg(p.id || ':' || u.email || ':' || u.role, ',' ORDER BY p.id) FROM student_profile p JOIN "User" u ON u.id = p.user_id"#,
        r#"SELECT string_agg(s.first_name || '>' || p.first_name, ',' ORDER BY s.first_name, p.first_name) FROM student_parent l JOIN "User" s ON s.id = l.student_user_id JOIN "User" p ON p.id = l.parent_user_id"#,
        "SELECT string_agg(dataset || ' ' || n, ',' ORDER BY dataset) FROM (SELECT dataset, count(*) AS n FROM pgconverge.key_map GROUP BY 1) m",
    ]
    .iter()
    .map(|q| pg_rows(db, q)[0][0].clone().unwrap_or_default())
    .collect()
}

/// Three person tables fold into one `User` with uuids the target draws; every profile
/// and link finds its User through `key_of`; both paths give the same target, the map is
/// kept, and a second import replaces it.
#[test]
fn profiles_follow_the_keys_the_target_drew_for_their_users() {
    let w = World::new("keys_fold");
    w.mysql(V1);
    let map = w.path().join("fold_uuid.toml");
    std::fs::write(&map, MAP).unwrap();
    let (steps, migrated) = both_paths(&w, &w.db, &map, V2, &VOLATILE);
    let want = vec![
        "1:jane@x.org:teacher,2:teacher-2@users.invalid:teacher".to_string(),
        "1:jane+2@x.org:parent,2:parent-2@users.invalid:parent".to_string(),
        "1:jane+3@x.org:student,2:student-2@users.invalid:student".to_string(),
        "Bo Lee>Ann Lee Park,Bo Lee>Jane Doe,Jane Junior>Jane Doe".to_string(),
        "parent_users 2,student_users 2,teacher_users 2".to_string(),
    ];
    assert_eq!(folded(&steps), want);
    assert_eq!(folded(&migrated), want);
    // Every map entry names a User of its table.
    assert_eq!(
        pg_rows(
            &steps,
            r#"SELECT count(*)::text FROM pgconverge.key_map m LEFT JOIN "User" u ON u.id::text = m.target_key WHERE u.id IS NULL"#
        )[0][0]
            .as_deref(),
        Some("0")
    );

    // verify --deep follows the fold: each profile's and link's User, read back through
    // the key map, is the one made for its source row; every map is whole.
    let d = dir_of_steps(&w);
    let deep = |db: &str| w.run(&["verify", &d, "--deep", "--target-db", db]);
    let o = deep(&steps);
    assert_exit(&o, 0);
    for line in [
        "key map of `teacher_users`: 2 entries for 2 exported rows, 0 naming no row",
        "key map of `student_users`: 2 entries for 2 exported rows, 0 naming no row",
    ] {
        assert!(stdout(&o).contains(line), "{line}\n{}", stdout(&o));
    }
    assert!(!stdout(&o).contains("user_id ("), "{}", stdout(&o));
    // The Users themselves are matched through the maps: each is the one drawn for its row.
    assert!(
        !stdout(&o).contains("not compared in `User`"),
        "{}",
        stdout(&o)
    );
    // A profile pointed at a User made for a parent, a map entry lost: each is a difference, named.
    pg_exec(
        &migrated,
        r#"UPDATE teacher_profile SET user_id = (SELECT user_id FROM parent_profile WHERE id = 1) WHERE id = 1;
           DELETE FROM pgconverge.key_map WHERE dataset = 'student_users' AND source_key = '{2}';
           UPDATE pgconverge.key_map SET source_key = '{x}' WHERE dataset = 'parent_users' AND source_key = '{1}';
           UPDATE pgconverge.key_map SET source_key = '{1}' WHERE dataset = 'parent_users' AND source_key = '{2}';
           UPDATE pgconverge.key_map SET source_key = '{2}' WHERE dataset = 'parent_users' AND source_key = '{x}'"#,
    );
    let o = deep(&migrated);
    assert_exit(&o, 1);
    let out = stdout(&o);
    for line in [
        r#"table `teacher_profile`, id=1, column `user_id`: source "1", target "(the key of parent_users 2, not of teacher_users: "#,
        "key map of `student_users`: 1 entry for 2 exported rows, 0 naming no row: a difference",
        // Parent 1's User now claims to be parent 2's: its row differs from parent 2's.
        "table `User`, (id=1, email=jane+2@x.org",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    // Imported again: new uuids, the map replaced (not added to), profiles still right.
    let o = w.run(&[
        "export",
        &w.db,
        "--map",
        map.to_str().unwrap(),
        "--out",
        "again",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let before = pg_rows(
        &steps,
        r#"SELECT string_agg(id::text, ',' ORDER BY email) FROM "User""#,
    );
    let o = w.run(&[
        "import",
        dir.to_str().unwrap(),
        "--yes",
        "--target-db",
        &steps,
    ]);
    assert_exit(&o, 0);
    assert_eq!(folded(&steps), want);
    assert_ne!(
        pg_rows(
            &steps,
            r#"SELECT string_agg(id::text, ',' ORDER BY email) FROM "User""#
        ),
        before
    );
}

/// A `key_of` the import cannot follow is refused before any write, naming the fix: a
/// misspelt dataset, one whose key no per-row `set` draws, a query without `key`.
#[test]
fn a_key_of_that_cannot_be_followed_is_refused_before_any_write() {
    let w = World::new("keys_refused");
    w.mysql(V1);
    w.pg(V2);
    w.pg(r#"INSERT INTO "User" VALUES ('00000000-0000-0000-0000-000000000001', 'kept@x', 'Kept', 'admin')"#);
    // (the profile's set, the User dataset's `set` and `key`, what the refusal says)
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "key_of('teacher_user', id)",
            r#"set = { id = "gen_random_uuid()" }"#,
            r#"key = ["id"]"#,
            "dataset `teacher_user` is not loaded by this import (did you mean `teacher_users`?)",
        ),
        (
            "key_of('teacher_users', id)",
            r#"set = { role = "'teacher'" }"#,
            r#"key = ["id"]"#,
            "but `teacher_users` is copied as it is: key_of follows a dataset whose key a per-row `set` gives",
        ),
        (
            "key_of('teacher_users', id)",
            r#"set = { id = "gen_random_uuid()" }"#,
            "",
            "but `teacher_users` has no one-column source key (a `query` dataset names it: `[tables.teacher_users]` `key = [\"id\"]`)",
        ),
        // Teacher 2 has no email, so the query leaves it out: its profile follows nothing.
        (
            "key_of('teacher_users', id)",
            r#"set = { id = "gen_random_uuid()" }"#,
            r#"key = ["id"]"#,
            "key_of('teacher_users', '2'): dataset teacher_users has no row with source key 2",
        ),
        // Every row of the followed query gets one source key.
        (
            "key_of('teacher_users', id)",
            r#"set = { id = "gen_random_uuid()" }"#,
            r#"key = ["role"]"#,
            "dataset `teacher_users` has two rows with one source key, which key_of could not tell apart",
        ),
    ];
    for (n, (follow, users, key, want)) in cases.iter().enumerate() {
        // Case 3 leaves teacher 2 out of the followed query.
        let filter = if n == 3 {
            "WHERE email IS NOT NULL"
        } else {
            ""
        };
        let map = format!(
            r#"
[tables.teacher_users]
query = "SELECT id, LOWER(COALESCE(email, CONCAT('t', id, '@x'))) AS email, name AS first_name, 'teacher' AS role FROM Teacher {filter}"
{key}
target = "User"
{users}

[tables.Teacher]
target = "teacher_profile"
drop = ["email", "name"]
set = {{ user_id = "{follow}" }}
"#
        );
        let path = w.path().join(format!("refused_{n}.toml"));
        std::fs::write(&path, map).unwrap();
        let o = w.run(&[
            "migrate",
            &w.db,
            "--map",
            path.to_str().unwrap(),
            "--out",
            &format!("refused_{n}"),
            "--yes",
            "--tables",
            "teacher_users,Teacher",
        ]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains(want),
            "case {n}: {want}\n{}",
            stderr(&o)
        );
        let hint = match n {
            3 => "hint: the row it follows was not exported (a where or a query left it out)",
            4 => "hint: the key of `teacher_users` must be unique",
            _ => {
                "hint: fix the mapping as the problem says (docs/mapping.md, \"Keys the target draws\")"
            }
        };
        assert!(
            stderr(&o).contains(hint),
            "case {n}: {hint}\n{}",
            stderr(&o)
        );
        assert_eq!(
            w.pg_value(r#"SELECT string_agg(email, ',') FROM "User""#)
                .as_deref(),
            Some("kept@x")
        );
    }
}

/// Each target schema has its own key maps: loading the same datasets into another schema
/// leaves the first one's map (and its verify) as it was. A dataset cannot follow itself.
#[test]
fn key_maps_belong_to_their_target_schema_and_a_dataset_cannot_follow_itself() {
    let w = World::new("keys_schemas");
    w.mysql(V1);
    for s in ["s1", "s2"] {
        w.pg(&format!("CREATE SCHEMA {s}; SET search_path = {s}; {V2}"));
    }
    let map = w.path().join("fold_uuid.toml");
    std::fs::write(&map, MAP).unwrap();
    let o = w.run(&[
        "export",
        &w.db,
        "--map",
        map.to_str().unwrap(),
        "--out",
        "schemas",
    ]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    for s in ["s1", "s2"] {
        let o = w.run(&["import", d, "--yes", "--schema", s]);
        assert_exit(&o, 0);
    }
    let o = w.run(&["verify", d, "--deep", "--schema", "s1"]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_value("SELECT string_agg(target_schema || ' ' || n, ',' ORDER BY target_schema) FROM (SELECT target_schema, count(*) AS n FROM pgconverge.key_map GROUP BY 1) m")
            .as_deref(),
        Some("s1 6,s2 6")
    );

    let own = w.path().join("own.toml");
    std::fs::write(
        &own,
        r#"
[tables.Teacher]
target = "teacher_profile"
drop = ["email", "name"]
set = { id = "id::integer", user_id = "key_of('Teacher', id)" }
"#,
    )
    .unwrap();
    let o = w.run(&[
        "migrate",
        &w.db,
        "--map",
        own.to_str().unwrap(),
        "--out",
        "own",
        "--yes",
        "--schema",
        "s1",
        "--tables",
        "Teacher",
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o)
            .contains("`Teacher` follows its own keys (`key_of('Teacher', ...)` in its own `set`)"),
        "{}",
        stderr(&o)
    );
}
