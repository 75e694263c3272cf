//! The target's migration history (a framework's table: Prisma's `_prisma_migrations`)
//! belongs to the target's schema: kept by default, copied only when the mapping says so;
//! a data table that only shares the name (`migrations`) is copied as any other.

use crate::export::export_dir;
use crate::harness::*;

const SOURCE: &str = "
CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL,
  finished_at DATETIME(3), migration_name VARCHAR(255) NOT NULL, logs TEXT,
  rolled_back_at DATETIME(3), started_at DATETIME(3) NOT NULL,
  applied_steps_count INT UNSIGNED NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations VALUES
  ('a', 'c1', NULL, '20230101_v2_init', NULL, NULL, '2023-01-01 00:00:00', 1),
  ('b', 'c2', NULL, '20230201_v2_posts', NULL, NULL, '2023-02-01 00:00:00', 1);
CREATE TABLE migrations (id INT PRIMARY KEY, species VARCHAR(20), km INT);
INSERT INTO migrations VALUES (1, 'swallow', 10000), (2, 'stork', 12000);
";

const TARGET: &str = "
CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL,
  finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text,
  rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),
  applied_steps_count integer NOT NULL DEFAULT 0);
CREATE TABLE migrations (id integer PRIMARY KEY, species text, km integer);
";

const V3_HISTORY: &str = "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES
  ('x', 'd1', '20240101_v3_init'), ('y', 'd2', '20240201_v3_tenants'), ('z', 'd3', '20240301_v3_search');";

fn names(w: &World) -> Option<String> {
    w.pg_value(
        "SELECT string_agg(migration_name, ',' ORDER BY migration_name) FROM _prisma_migrations",
    )
}

#[test]
fn the_targets_migration_history_is_kept_unless_the_mapping_copies_it() {
    let w = World::new("history_kept");
    w.mysql(SOURCE);
    w.pg(TARGET);
    w.pg(V3_HISTORY);
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--yes"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains(
            "skipped: `_prisma_migrations`: the target's Prisma migration history: it belongs to the target's schema, so it is kept (copy it anyway with [import] copy_history = [\"_prisma_migrations\"])"
        ),
        "{}",
        stdout(&o)
    );
    let v3 = Some("20240101_v3_init,20240201_v3_tenants,20240301_v3_search".to_string());
    assert_eq!(names(&w), v3, "the target's history is untouched");
    assert_eq!(
        w.pg_value("SELECT string_agg(species, ',' ORDER BY id) FROM migrations")
            .as_deref(),
        Some("swallow,stork"),
        "a data table called `migrations` is copied"
    );
    // verify: a declared skip, not a difference.
    for extra in [&[][..], &["--deep"][..]] {
        let mut args = vec!["verify", d];
        args.extend_from_slice(extra);
        let o = w.run(&args);
        assert_exit(&o, 0);
        assert!(
            stdout(&o)
                .contains("skipped: `_prisma_migrations`: the target's Prisma migration history"),
            "{}",
            stdout(&o)
        );
    }

    // Opt in: the source's history replaces the target's.
    std::fs::write(
        w.path().join("copy.toml"),
        "[import]\ncopy_history = [\"_prisma_migrations\"]\n",
    )
    .unwrap();
    assert_exit(&w.run(&["import", d, "--yes", "--map", "copy.toml"]), 0);
    assert_eq!(
        names(&w).as_deref(),
        Some("20230101_v2_init,20230201_v2_posts")
    );
    assert_exit(&w.run(&["verify", d, "--map", "copy.toml"]), 0);

    // An empty history in the target: kept, with a warning.
    w.pg("TRUNCATE _prisma_migrations");
    let o = w.run(&["import", d, "--yes"]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o)
            .contains("table `_prisma_migrations`: the target's Prisma migration history is empty"),
        "{}",
        stderr(&o)
    );
    assert_eq!(names(&w), None);
}
