#!/usr/bin/env bash
# Old script name kept working: see `pgconverge log-run --help`.
exec "$(dirname "$0")/../scripts/pgconverge" log-run "$@"
