#!/usr/bin/env bash
# The delta window from a PostgreSQL source:  scripts/bench-delta-pg.sh [scale]  (default 1)
#
# The dataset of scripts/bench.sh is made on MariaDB (3306), then moved by pgconverge into
# the PostgreSQL with wal_level=logical (127.0.0.1:5433, which scripts/dev-services.sh
# starts): that is the source. A chain's base is exported from it (a logical slot) and
# imported into the shared PostgreSQL (5432); then 1% of its rows change (updates of every
# table, inserts and deletes), and the window is measured: the last delta's export
# (`export --delta-from`: the slot's changes, the end snapshot) plus its import. The
# chain is verified afterwards (`verify --deep --source`) and its slot dropped
# (`delta-end`). Results on stdout and appended to bench/delta-results.txt. Nothing here
# is a test.
set -euo pipefail

SCALE="${1:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
DB="pgc_bench_s${SCALE//./_}"
SRC="${DB}_pgsrc"
TARGET="${DB}_pgdelta"
WORK="$root/bench/work-$DB-pgdelta"
mkdir -p "$WORK"
log() { echo "== $*" >&2; }

bash "$root/scripts/dev-services.sh"
log "building pgconverge (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
PGC="$root/target/release/pgconverge"
src() { psql -h 127.0.0.1 -p 5433 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }

log "the dataset on MariaDB, the schema on both PostgreSQL servers"
BENCH_ONLY=dataset BENCH_PG_DB="$TARGET" bash "$root/scripts/bench.sh" "$SCALE"
src -d postgres -c "DROP DATABASE IF EXISTS \"$SRC\" WITH (FORCE)" -c "CREATE DATABASE \"$SRC\""
pg_dump -h 127.0.0.1 -p 5432 -U postgres --schema-only "$TARGET" | src -d "$SRC" >/dev/null

export PGCONVERGE_RUN_LOG="$WORK/migration_log.jsonl"
cd "$WORK"
rm -rf csv_exports
log "the PostgreSQL source filled from MariaDB"
MYSQL_URL="mysql://root@127.0.0.1:3306" POSTGRES_URL="postgres://postgres@127.0.0.1:5433" \
    "$PGC" migrate "$DB" --exclude bench_done_v2 --target-db "$SRC" --out seed_exports --yes -q
src -d "$SRC" -c "VACUUM ANALYZE"

export POSTGRES_URL="postgres://postgres@127.0.0.1:5432"
SOURCE_URL="postgres://postgres@127.0.0.1:5433/$SRC"
dir_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["export_dir"])'; }
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$WORK/last.out" 2> "$WORK/last.err" || { tail -n 20 "$WORK/last.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

log "the base (while the application would run)"
BASE_EXPORT=$(seconds "$PGC" export "$SRC" --source-url "$SOURCE_URL" --delta-base --json -q)
BASE=$(dir_of < "$WORK/last.out")
BASE_IMPORT=$(seconds "$PGC" import "$BASE" --yes --target-db "$TARGET" -q)

log "1% of the rows change"
src -d "$SRC" <<'SQL'
UPDATE authorization_policy SET version = version + 1, "privilegeRules" = "privilegeRules" || ' ' WHERE abs(hashtext(id::text)) % 125 = 0;
INSERT INTO authorization_policy SELECT gen_random_uuid(), "createdDate", "updatedDate", version, "credentialRules", "privilegeRules", "verifiedCredentialRules", type FROM authorization_policy WHERE abs(hashtext(id::text)) % 1000 = 3;
UPDATE "user" SET "lastName" = "lastName" || 'x', version = version + 1 WHERE "rowId" % 125 = 0;
INSERT INTO "user" (id, "createdDate", "updatedDate", version, "nameID", "firstName", "lastName", email, phone, "accountID", "authorizationId", "serviceProfile")
  SELECT gen_random_uuid(), "createdDate", "updatedDate", 1, 'new-' || "rowId" || '-' || extract(epoch from now())::int, "firstName", "lastName", email, phone, "accountID", NULL, "serviceProfile" FROM "user" WHERE "rowId" % 1000 = 3;
UPDATE document_blob SET content = content || '\x00'::bytea WHERE abs(hashtext(id::text)) % 125 = 0;
INSERT INTO document_blob SELECT gen_random_uuid(), "mimeType", content FROM document_blob WHERE abs(hashtext(id::text)) % 1000 = 3;
DELETE FROM document_blob WHERE abs(hashtext(id::text)) % 1000 = 5;
UPDATE activity SET version = version + 1, description = 'edited: ' || coalesce(description, '') WHERE "rowId" % 125 = 0;
INSERT INTO activity (id, "createdDate", "updatedDate", version, "triggeredBy", "resourceID", "parentID", "collaborationID", "messageID", visibility, description, type)
  SELECT gen_random_uuid(), "createdDate", "updatedDate", 1, "triggeredBy", "resourceID", "parentID", "collaborationID", "messageID", visibility, description, type FROM activity WHERE "rowId" % 1000 = 3;
DELETE FROM activity WHERE "rowId" % 1000 = 5;
UPDATE payment SET amount = amount + 1 WHERE id % 125 = 0;
INSERT INTO payment ("userId", amount, fee, currency, "paidDate") SELECT "userId", amount, fee, currency, "paidDate" FROM payment WHERE id % 1000 = 3;
DELETE FROM payment WHERE id % 1000 = 5;
SQL

log "the window: the last delta's export and import"
DELTA_EXPORT=$(seconds "$PGC" export "$SRC" --source-url "$SOURCE_URL" --delta-from "$BASE" --json -q)
DELTA=$(dir_of < "$WORK/last.out")
DELTA_IMPORT=$(seconds "$PGC" import "$DELTA" --yes --target-db "$TARGET" -q)
CHANGED=$(python3 - "$DELTA/migration_manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
up = sum(t["rows"] for t in m["tables"].values())
dl = sum(t["delta"]["deleted"]["rows"] for t in m["tables"].values())
total = sum(t["delta"]["source_rows"] for t in m["tables"].values())
print(f"{up} upserted + {dl} deleted of {total} rows ({100 * (up + dl) / total:.2f}%)")
PY
)
log "verify --deep --source of the chain (not part of the window)"
VERIFY=$(seconds "$PGC" verify "$DELTA" --target-db "$TARGET" --deep --source --source-url "$SOURCE_URL" -q)
"$PGC" delta-end "$SRC" --target-db "$TARGET" --source-url "$SOURCE_URL" -q >/dev/null

WINDOW=$(awk -v a="$DELTA_EXPORT" -v b="$DELTA_IMPORT" 'BEGIN { printf "%.2f", a + b }')
REPORT=$(cat <<TXT
delta window from PostgreSQL, scale $SCALE ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores): $CHANGED
  base: export --delta-base ${BASE_EXPORT} s, import ${BASE_IMPORT} s (the application still runs)
  window: export --delta-from ${DELTA_EXPORT} s + import ${DELTA_IMPORT} s = ${WINDOW} s
  verify --deep --source after the chain: ${VERIFY} s
TXT
)
echo "$REPORT"
mkdir -p "$root/bench"
echo "$REPORT" >> "$root/bench/delta-results.txt"
