//! The Kubernetes base in deploy/kubernetes: rendered by `kubectl kustomize`, valid
//! against the Kubernetes schemas (kubernetes-validate, strict), and what the Job must be
//! (scripts/validate-kubernetes.sh). A copy with a literal password, or run as root, is
//! refused by the same check.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validate(dir: &Path) -> std::process::Output {
    Command::new(root().join("scripts/validate-kubernetes.sh"))
        .arg(dir)
        .output()
        .expect("run scripts/validate-kubernetes.sh (needs kubectl and python3)")
}

fn copy_base(to: &Path) {
    for f in ["kustomization.yaml", "job.yaml", "pvc.yaml", "mapping.toml"] {
        std::fs::copy(root().join("deploy/kubernetes").join(f), to.join(f)).unwrap();
    }
}

#[test]
fn the_kubernetes_base_renders_valid_and_safe() {
    let o = validate(&root().join("deploy/kubernetes"));
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("ok: 3 resources valid"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_literal_password_or_a_root_pod_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_base(dir.path());
    let job = dir.path().join("job.yaml");
    let text = std::fs::read_to_string(&job).unwrap();
    let literal = text.replacen(
        "- name: MYSQL_URL\n              valueFrom:\n                secretKeyRef:\n                  name: pgconverge-credentials\n                  key: MYSQL_URL",
        "- name: MYSQL_URL\n              value: mysql://root:hunter2@mysql:3306",
        1,
    );
    assert_ne!(literal, text, "the job's MYSQL_URL block changed shape");
    std::fs::write(&job, &literal).unwrap();
    let o = validate(dir.path());
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("MYSQL_URL must come from a Secret"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("a literal password in"),
        "{}",
        stdout(&o)
    );
    std::fs::write(
        &job,
        text.replace("runAsNonRoot: true", "runAsNonRoot: false"),
    )
    .unwrap();
    let o = validate(dir.path());
    assert_exit(&o, 1);
    assert!(stdout(&o).contains("runAsNonRoot"), "{}", stdout(&o));
    // Without fsGroup a fresh volume is not writable; without a TTL the Job cannot be
    // applied again.
    let unsafe_volume: String = text
        .lines()
        .filter(|l| !l.contains("fsGroup:") && !l.contains("ttlSecondsAfterFinished:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        unsafe_volume, text,
        "the job names fsGroup and ttlSecondsAfterFinished"
    );
    std::fs::write(&job, unsafe_volume).unwrap();
    let o = validate(dir.path());
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("fsGroup is required")
            && stdout(&o).contains("ttlSecondsAfterFinished is required"),
        "{}",
        stdout(&o)
    );
}
