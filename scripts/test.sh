#!/usr/bin/env bash
# The test command: every test, against the local servers (scripts/dev-services.sh
# starts them). cargo-nextest runs each test in its own process with a time limit and is
# used when installed (cargo install cargo-nextest --locked); otherwise plain `cargo test`
# runs the same tests. Extra arguments go to the runner (a filter, --no-fail-fast, ...).
# The first test build takes several minutes on 2 cores; later runs rebuild what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --no-fail-fast "$@"
fi
echo "cargo-nextest is not installed: running the tests with cargo test" >&2
exec cargo test --no-fail-fast "$@"
