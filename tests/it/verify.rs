//! `verify` against the real servers.

use std::path::PathBuf;

use crate::export::export_dir;
use crate::harness::*;

fn imported_world(name: &str) -> (World, PathBuf) {
    let w = World::new(name);
    w.mysql(
        "CREATE TABLE `user` (id CHAR(36) PRIMARY KEY, `nameID` VARCHAR(20));
         INSERT INTO `user` VALUES ('11111111-1111-1111-1111-111111111111', 'a'), ('22222222-2222-2222-2222-222222222222', 'b');
         CREATE TABLE `order` (id INT AUTO_INCREMENT PRIMARY KEY, `userId` CHAR(36));
         INSERT INTO `order` (`userId`) VALUES ('11111111-1111-1111-1111-111111111111'), (''), (NULL);
         CREATE TABLE legacy_only (id INT PRIMARY KEY); INSERT INTO legacy_only VALUES (1);",
    );
    w.pg(
        r#"CREATE TABLE "user" (id uuid PRIMARY KEY, "nameID" text);
           CREATE TABLE "order" (id serial PRIMARY KEY, "userId" uuid CONSTRAINT order_user_fk REFERENCES "user"(id));
           CREATE TABLE legacy_only (id integer PRIMARY KEY);"#,
    );
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes"]);
    assert_exit(&o, 0);
    (w, dir)
}

#[test]
fn a_clean_import_verifies() {
    let (w, dir) = imported_world("verify_clean");
    let d = dir.to_str().unwrap();
    let o = w.run(&["verify", d, "--source"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("verify: OK, 3 tables, 6 rows"), "{out}");
    // A table of the export that is not in the target was not loaded, and nothing
    // declared that it could be missing.
    w.pg("DROP TABLE legacy_only");
    let o = w.run(&["verify", d, "--source"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("legacy_only") && l.ends_with("NOT LOADED")),
        "{out}"
    );
    assert!(
        out.contains("table `legacy_only`: 1 row in manifest, 1 in source: not loaded"),
        "{out}"
    );
    w.pg("CREATE TABLE legacy_only (id integer PRIMARY KEY); INSERT INTO legacy_only VALUES (1);");
    assert!(
        out.contains("foreign keys checked for orphan rows: 1 (0 with orphans)"),
        "{out}"
    );
    let o = w.run(&["verify", d, "--json"]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], true);
    let user = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "user")
        .unwrap();
    assert_eq!(
        (user["manifest_rows"].as_u64(), user["target_rows"].as_u64()),
        (Some(2), Some(2))
    );
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "completed");
}

#[test]
fn a_row_lost_in_the_target_is_a_difference() {
    let (w, dir) = imported_world("verify_lost_row");
    w.pg(r#"DELETE FROM "order" WHERE id = 3"#);
    let o = w.run(&["verify", dir.to_str().unwrap()]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("table `order`: 3 rows in manifest, 2 in target: 1 row missing in the target"),
        "{out}"
    );
    assert!(out.contains("DIFFERENT"), "{out}");
    let log = std::fs::read_to_string(w.run_log()).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "failed");
}

#[test]
fn a_row_added_at_the_source_is_drift_not_loss() {
    let (w, dir) = imported_world("verify_drift");
    w.mysql("INSERT INTO `user` VALUES ('33333333-3333-3333-3333-333333333333', 'c')");
    let d = dir.to_str().unwrap();
    assert_exit(&w.run(&["verify", d]), 0);
    let o = w.run(&["verify", d, "--source"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("table `user`: 2 rows in manifest, 2 in target, 3 in source: the source has 1 row more since the export (drift, not loss)"), "{out}");
    assert!(out.contains("source changed"), "{out}");
}

#[test]
fn an_orphan_row_is_reported_under_its_constraint() {
    let (w, dir) = imported_world("verify_orphan");
    w.pg(
        r#"BEGIN; SET LOCAL session_replication_role = replica;
           UPDATE "order" SET "userId" = '99999999-9999-9999-9999-999999999999' WHERE "userId" IS NOT NULL;
           COMMIT;"#,
    );
    let d = dir.to_str().unwrap();
    let o = w.run(&["verify", d]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("foreign key `order_user_fk` (order.userId -> user.id): 1 row with no parent"),
        "{out}"
    );
    let o = w.run(&["verify", d, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["foreign_keys"][0]["orphans"], 1);
    assert_exit(&w.run(&["verify", d, "--no-fk"]), 0);
}

#[test]
fn a_table_the_profile_may_skip_is_reported_skipped_not_missing() {
    let w = World::new("verify_declared_skip");
    w.mysql(
        "CREATE TABLE space (id INT PRIMARY KEY); INSERT INTO space VALUES (1);
         CREATE TABLE challenge (id INT PRIMARY KEY); INSERT INTO challenge VALUES (1);",
    );
    w.pg("CREATE TABLE space (id integer PRIMARY KEY);");
    let o = w
        .cmd()
        .env("ALKEMIO_DB", &w.db)
        .args(["export", "alkemio", "--out", "out"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let run = |args: &[&str]| {
        w.cmd()
            .env("ALKEMIO_DB", &w.db)
            .args(args)
            .output()
            .unwrap()
    };
    assert_exit(&run(&["import", d, "--yes"]), 0);
    let o = run(&["verify", d]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("challenge") && l.ends_with("skipped")),
        "{}",
        stdout(&o)
    );
}

/// `money` prints in the server's currency format (`$1,234.56`): compared by value, a
/// decimal loaded into it is equal, and a changed amount is still a difference.
#[test]
fn a_decimal_into_money_is_compared_by_value() {
    let w = World::new("verify_money");
    w.mysql(
        "CREATE TABLE price (id INT PRIMARY KEY, amount DECIMAL(12,2));
         INSERT INTO price VALUES (1, 1234.56), (2, -0.50), (3, 1000000.00), (4, NULL);",
    );
    w.pg("CREATE TABLE price (id integer PRIMARY KEY, amount money)");
    let o = w.run(&[
        "migrate", &w.db, "--out", "out", "--yes", "--deep", "--json",
    ]);
    assert_exit(&o, 0);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["verify"]["deep"][0]["equal"], 4, "{s}");
    let dir = w.path().join(s["export_dir"].as_str().unwrap());
    w.pg("UPDATE price SET amount = 1234.57 WHERE id = 1");
    let o = w.run(&["verify", dir.to_str().unwrap(), "--deep", "--source"]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("amount") && out.contains("1234.56") && out.contains("1234.57"),
        "{out}"
    );
}
