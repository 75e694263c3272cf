#!/usr/bin/env bash
# The delta window on the benchmark's data:  scripts/bench-delta.sh [scale]   (default 1)
#
# The dataset of scripts/bench.sh, made on the MariaDB with the binary log (127.0.0.1:3307,
# which scripts/dev-services.sh starts; kept out of the log), is exported as a chain's base
# and imported; then 1% of its rows change (updates of every table, and inserts and deletes
# where nothing references the rows), and the window is measured: the last delta's export
# (`export --delta-from`) plus its import (one transaction, with its checks). Printed beside
# a full `migrate` of the same data (at the delta's end) into an empty target. The chain is
# verified afterwards (`verify --deep --source`). Results on stdout and appended to
# bench/delta-results.txt. Nothing here is a test.
# BENCH_CHANGE_DIV=N changes 1/N of those rows (the same keys' share divided by N): at
# scale 7, BENCH_CHANGE_DIV=7 changes as many rows as scale 1 does, so the two windows
# differ only by the size of the database. BENCH_NO_FULL=1 skips the full migrate.
set -euo pipefail

SCALE="${1:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
DB="pgc_bench_s${SCALE//./_}"
TARGET="${DB}_delta"
FULL="${DB}_delta_full"
WORK="$root/bench/work-$DB-delta"
mkdir -p "$WORK"
log() { echo "== $*" >&2; }

bash "$root/scripts/dev-services.sh"
log "building pgconverge (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
PGC="$root/target/release/pgconverge"
my() { mariadb --protocol=tcp -h127.0.0.1 -P3307 -uroot "$@"; }
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }

# A production server keeps the rows an application just wrote in its buffer pool; the
# throwaway server's default (128 MB) would make every changed row a read from the page
# cache (measured at scale 7: the delta export 4.96 s cold, 0.70 s with them in the pool).
# BENCH_BUFFER_POOL sets it for this run (default 4 GiB; 0 keeps the server's).
POOL="${BENCH_BUFFER_POOL:-4294967296}"
if [ "$POOL" != 0 ]; then
    OLD_POOL=$(my -N -e "SELECT @@innodb_buffer_pool_size")
    trap 'my -e "SET GLOBAL innodb_buffer_pool_size = $OLD_POOL" || true' EXIT
    my -e "SET GLOBAL innodb_buffer_pool_size = $POOL"
fi

log "the dataset on the binary-log MariaDB, and the targets' schema"
BENCH_MYSQL_PORT=3307 BENCH_ONLY=dataset BENCH_PG_DB="$TARGET" bash "$root/scripts/bench.sh" "$SCALE"
BENCH_MYSQL_PORT=3307 BENCH_ONLY=dataset BENCH_PG_DB="$FULL" bash "$root/scripts/bench.sh" "$SCALE"

export MYSQL_URL="mysql://root@127.0.0.1:3307" POSTGRES_URL="postgres://postgres@127.0.0.1:5432"
export PGCONVERGE_RUN_LOG="$WORK/migration_log.jsonl"
cd "$WORK"
rm -rf csv_exports full_exports
dir_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["export_dir"])'; }
# seconds COMMAND...: run it, print its wall time in seconds.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$WORK/last.out" 2> "$WORK/last.err" || { tail -n 20 "$WORK/last.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

log "the base (while the application would run)"
BASE_EXPORT=$(seconds "$PGC" export "$DB" --exclude bench_done_v2 --delta-base --json -q)
BASE=$(dir_of < "$WORK/last.out")
BASE_IMPORT=$(seconds "$PGC" import "$BASE" --yes --target-db "$TARGET" -q)

DIV="${BENCH_CHANGE_DIV:-1}"
log "1% of the rows change (divided by $DIV)"
sed -e "s/% 125 = 0/% $((125 * DIV)) = 0/g" -e "s/% 1000 = \([35]\)/% $((1000 * DIV)) = \1/g" <<'SQL' | my "$DB"
UPDATE authorization_policy SET version = version + 1, privilegeRules = CONCAT(privilegeRules, ' ') WHERE CRC32(id) % 125 = 0;
INSERT INTO authorization_policy SELECT CAST(UUID() AS CHAR(36)), createdDate, updatedDate, version, credentialRules, privilegeRules, verifiedCredentialRules, type FROM authorization_policy WHERE CRC32(id) % 1000 = 3;
UPDATE user SET lastName = CONCAT(lastName, 'x'), version = version + 1 WHERE rowId % 125 = 0;
INSERT INTO user (id, createdDate, updatedDate, version, nameID, firstName, lastName, email, phone, accountID, authorizationId, serviceProfile)
  SELECT CAST(UUID() AS CHAR(36)), createdDate, updatedDate, 1, CONCAT('new-', rowId, '-', UNIX_TIMESTAMP()), firstName, lastName, email, phone, accountID, NULL, serviceProfile FROM user WHERE rowId % 1000 = 3;
UPDATE document_blob SET content = REVERSE(content) WHERE CRC32(id) % 125 = 0;
INSERT INTO document_blob SELECT CAST(UUID() AS CHAR(36)), mimeType, content FROM document_blob WHERE CRC32(id) % 1000 = 3;
DELETE FROM document_blob WHERE CRC32(id) % 1000 = 5;
UPDATE activity SET version = version + 1, description = CONCAT('edited: ', COALESCE(description, '')) WHERE rowId % 125 = 0;
INSERT INTO activity (id, createdDate, updatedDate, version, triggeredBy, resourceID, parentID, collaborationID, messageID, visibility, description, type)
  SELECT CAST(UUID() AS CHAR(36)), createdDate, updatedDate, 1, triggeredBy, resourceID, parentID, collaborationID, messageID, visibility, description, type FROM activity WHERE rowId % 1000 = 3;
DELETE FROM activity WHERE rowId % 1000 = 5;
UPDATE payment SET amount = amount + 1 WHERE id % 125 = 0;
INSERT INTO payment (userId, amount, fee, currency, paidDate) SELECT userId, amount, fee, currency, paidDate FROM payment WHERE id % 1000 = 3;
DELETE FROM payment WHERE id % 1000 = 5;
SQL

log "the window: the last delta's export and import"
DELTA_EXPORT=$(seconds "$PGC" export "$DB" --delta-from "$BASE" --json -q)
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
FULL_MIGRATE=skipped
if [ -z "${BENCH_NO_FULL:-}" ]; then
    log "the full migrate of the same data"
    FULL_MIGRATE=$(seconds "$PGC" migrate "$DB" --exclude bench_done_v2 --target-db "$FULL" --out full_exports --yes -q)
fi
log "verify --deep --source of the chain (not part of the window)"
VERIFY=$(seconds "$PGC" verify "$DELTA" --target-db "$TARGET" --deep --source -q)

WINDOW=$(awk -v a="$DELTA_EXPORT" -v b="$DELTA_IMPORT" 'BEGIN { printf "%.2f", a + b }')
REPORT=$(cat <<TXT
delta window, scale $SCALE ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, source buffer pool $(my -N -e "SELECT @@innodb_buffer_pool_size DIV 1048576") MiB): $CHANGED
  base: export --delta-base ${BASE_EXPORT} s, import ${BASE_IMPORT} s (the application still runs)
  window: export --delta-from ${DELTA_EXPORT} s + import ${DELTA_IMPORT} s = ${WINDOW} s   (goal <= 5 s)
  full migrate of the same data: ${FULL_MIGRATE} s   (window / migrate: $(awk -v a="$WINDOW" -v b="$FULL_MIGRATE" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b; else printf "-" }'))
  verify --deep --source after the chain: ${VERIFY} s
TXT
)
echo "$REPORT"
echo "$REPORT" >> "$root/bench/delta-results.txt"
