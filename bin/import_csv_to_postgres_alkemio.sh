#!/usr/bin/env bash
# Old script name kept working (the manifest names the profile): see `pgconverge import --help`.
exec "$(dirname "$0")/../scripts/pgconverge" import "$@"
