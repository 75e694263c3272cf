#!/usr/bin/env bash
# Old script name kept working: see `pgconverge export --help`.
exec "$(dirname "$0")/../scripts/pgconverge" export kratos "$@"
