#!/usr/bin/env bash
# The test command: every test, against the local servers (scripts/dev-services.sh
# starts them). cargo-nextest runs each test in its own process with a time limit and is
# used when installed (cargo install cargo-nextest --locked); otherwise plain `cargo test`
# runs the same tests. Extra arguments go to the runner (a filter, --no-fail-fast, ...).
# The tests that need a Docker engine are #[ignore]d (reported as skipped); with
# WITH_DOCKER=1 (as .ci/run sets it) they run too, and fail when no engine answers.
# The first test build takes several minutes on 2 cores; later runs rebuild what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
docker=0
[ "${WITH_DOCKER:-0}" = "1" ] && docker=1
if cargo nextest --version >/dev/null 2>&1; then
    extra=()
    [ "$docker" = 1 ] && extra=(--run-ignored all)
    exec cargo nextest run --no-fail-fast "${extra[@]}" "$@"
fi
echo "cargo-nextest is not installed: running the tests with cargo test" >&2
if [ "$docker" = 1 ]; then
    # The test binaries' own arguments follow one `--`: join the caller's, if any.
    for a in "$@"; do
        [ "$a" = "--" ] && exec cargo test --no-fail-fast "$@" --include-ignored
    done
    exec cargo test --no-fail-fast "$@" -- --include-ignored
fi
exec cargo test --no-fail-fast "$@"
