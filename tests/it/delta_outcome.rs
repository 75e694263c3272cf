//! A delta's import keeps every promise a full import makes about its outcome (issue 25):
//! delta hooks that would end the transaction are refused before any write; once COMMIT
//! is sent the outcome is the server's answer (exit 3 when nobody can give it); and the
//! chain's record in pgconverge.state always goes with the data it describes.

use crate::delta::*;
use crate::export::load;
use crate::harness::*;
use crate::outcome::{asked_xid, signalled_during_commit, through, upstream};
use crate::proxy::{CutAt, Proxy};

/// A chain whose base is imported, and a delta of two changes waiting to be.
fn chain(test: &str) -> (World, std::path::PathBuf) {
    let w = World::binlog(test);
    schema(&w);
    seed(&w, 3);
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql("UPDATE parent SET name = 'changed' WHERE id = 1; DELETE FROM parent WHERE id = 2");
    let d = delta(&w, &b, &[]);
    (w, d)
}

fn stands(w: &World) -> Option<String> {
    w.pg_value("SELECT export_id FROM pgconverge.state")
}

#[test]
fn delta_hooks_that_would_end_the_transaction_are_refused_before_any_write() {
    let (w, d) = chain("delta_hooks_refused");
    let before = w.fingerprint();
    let at = stands(&w);
    for (hooks, key, said) in [
        (
            r#"delta_before = ["COMMIT"]"#,
            "[import] delta_before #1",
            "`COMMIT` ends the import's transaction",
        ),
        (
            r#"delta_after = ["SELECT 1; ROLLBACK"]"#,
            "[import] delta_after #1",
            "`ROLLBACK` ends the import's transaction",
        ),
        (
            r#"delta_after = ["SET LOCAL session_replication_role = origin"]"#,
            "[import] delta_after #1",
            "changes session_replication_role",
        ),
    ] {
        std::fs::write(w.path().join("hooks.toml"), format!("[import]\n{hooks}\n")).unwrap();
        let o = w.run(&[
            "import",
            d.to_str().unwrap(),
            "--yes",
            "--map",
            "hooks.toml",
        ]);
        assert_exit(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains(key) && err.contains(said) && err.contains("hint:"),
            "{hooks}: {err}"
        );
        assert_eq!(w.fingerprint(), before, "{hooks}");
        assert_eq!(stands(&w), at, "{hooks}: the chain stays at the base");
        // A new chain's base refuses the same mapping before reading anything.
        let o = w.run(&["export", &w.db, "--delta-base", "--map", "hooks.toml"]);
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
    assert_exit(&import(&w, &d), 0);
    assert_same(&w);
}

/// COMMIT sent, then no connection answers: exit 3, the outcome UNKNOWN with the
/// question to ask; the server did commit, and the chain stands at the delta with its
/// data, so the same delta is then refused as applied.
#[test]
fn a_delta_whose_commit_goes_unanswered_is_an_unknown_outcome_with_its_chain_in_step() {
    let (w, d) = chain("delta_commit_lost");
    let proxy = Proxy::start(upstream(), CutAt::AfterCommitThenRefuse);
    let o = through(&w, &proxy)
        .args(["import", d.to_str().unwrap(), "--yes"])
        .output()
        .unwrap();
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("the connection was lost during COMMIT")
            && err.contains("import outcome UNKNOWN"),
        "{err}"
    );
    assert!(!err.contains("rolled back"), "{err}");
    assert!(proxy.commit_sent());
    let xid = asked_xid(&err);
    assert_eq!(
        w.pg_value(&format!("SELECT pg_xact_status('{xid}')"))
            .as_deref(),
        Some("committed")
    );
    assert_eq!(stands(&w), load(&d).export_id);
    assert_same(&w);
    let entries = w.run_log_entries();
    assert_eq!(entries.last().unwrap()["status"], "unknown");
    let o = import(&w, &d);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("already applied"), "{}", stderr(&o));
}

/// A signal while COMMIT's answer is held: the import waits for it and reports the
/// delta committed (exit 0), the chain at the delta.
#[test]
fn a_signal_while_a_delta_s_commit_is_answered_waits_and_reports_committed() {
    let (w, d) = chain("delta_commit_signal");
    let (proxy, run) =
        signalled_during_commit(&w, &["import", d.to_str().unwrap(), "--yes"], "INT");
    proxy.release();
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("import: committed into"), "{out}");
    assert!(!err.contains("rolled back"), "{err}");
    assert_eq!(stands(&w), load(&d).export_id);
    assert_same(&w);
    assert_eq!(
        w.run_log_statuses().last().map(String::as_str),
        Some("completed")
    );
}
