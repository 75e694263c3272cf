#!/usr/bin/env bash
# Render the Kustomize base (kubectl kustomize) and check it offline: against the
# Kubernetes schemas (kubernetes-validate, strict, installed from PyPI into a venv), and
# for what the Job must be: non-root with a read-only root filesystem, credentials only
# through secretKeyRef (no literal password anywhere), backoffLimit 0, the exports on a
# PersistentVolumeClaim, the mapping from a ConfigMap, resources requested.
#
#   scripts/validate-kubernetes.sh [KUSTOMIZATION_DIR]     (default: deploy/kubernetes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/deploy/kubernetes}
venv=${PGCONVERGE_VALIDATE_VENV:-$root/target/kubernetes-validate-venv}
mkdir -p "$(dirname "$venv")"
(
    # One installer at a time (tests run in parallel).
    flock 9
    if [ ! -x "$venv/bin/kubernetes-validate" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet kubernetes-validate
    fi
) 9> "$venv.lock"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$dir" > "$rendered"
"$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version 1.30.0 "$rendered"
"$venv/bin/python" - "$rendered" <<'PY'
import re, sys, yaml
text = open(sys.argv[1]).read()
docs = [d for d in yaml.safe_load_all(text) if d]
problems = []
jobs = [d for d in docs if d["kind"] == "Job"]
if len(jobs) != 1:
    problems.append(f"expected one Job, found {len(jobs)}")
for job in jobs:
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    if spec.get("backoffLimit") != 0:
        problems.append("Job: backoffLimit must be 0 (a failed migration is looked at, not retried)")
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
        problems.append("pod: runAsNonRoot and a runAsUser are required")
    if psc.get("fsGroup") is None:
        problems.append("pod: an fsGroup is required (a fresh volume is owned by root: the non-root user could not write its exports)")
    if not spec.get("ttlSecondsAfterFinished"):
        problems.append("Job: ttlSecondsAfterFinished is required (a finished Job is removed, so applying it again is not refused)")
    if pod.get("restartPolicy") != "Never":
        problems.append("pod: restartPolicy must be Never")
    claims = [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    maps = [v for v in pod.get("volumes", []) if "configMap" in v]
    if not claims:
        problems.append("pod: the exports need a PersistentVolumeClaim volume")
    if not maps:
        problems.append("pod: the mapping file comes from a ConfigMap volume")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            problems.append(f"container {c['name']}: readOnlyRootFilesystem is required")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {c['name']}: allowPrivilegeEscalation must be false")
        res = c.get("resources", {})
        if not res.get("requests", {}).get("memory") or not res.get("limits", {}).get("memory"):
            problems.append(f"container {c['name']}: memory request and limit are required")
        for e in c.get("env", []):
            secretish = re.search(r"URL|PASSWORD", e["name"])
            if secretish and "secretKeyRef" not in e.get("valueFrom", {}):
                problems.append(f"container {c['name']}: {e['name']} must come from a Secret (secretKeyRef)")
if any(d["kind"] == "Secret" for d in docs):
    problems.append("no Secret in the base: credentials are created apart, never committed")
# A URL with a password, or a password key with a value, outside comments.
for line in text.splitlines():
    if line.strip().startswith("#"):
        continue
    if re.search(r"://[^/\s:@]+:[^@\s]+@", line) or re.search(r"(?i)password\s*[:=]\s*\S", line):
        problems.append(f"a literal password in: {line.strip()}")
if problems:
    print("\n".join(f"problem: {p}" for p in problems))
    sys.exit(1)
print(f"ok: {len(docs)} resources valid, the Job non-root, read-only, credentials from a Secret")
PY
