#!/usr/bin/env bash
# Benchmark pgconverge against the physical limits and the tools users would pick instead,
# in one run, on an Alkemio-shaped dataset:  scripts/bench.sh [scale]   (default 1)
#
# At scale 1: ~900k rows, ~660 MB of CSV in five tables (authorization_policy: char(36)
# keys and 1-2 KB of JSON-like text; user: camelCase, '' in char(36), NULLs, JSON, a serial
# column; document_blob: blobs; activity: wide, integer auto-increment key; payment:
# money in decimal columns), and the matching PostgreSQL schema with primary keys,
# secondary indexes and foreign keys.
#
# Measured (wall time, MB/s of CSV, rows/s, peak RSS):
#   export limit   mariadb --quick --batch reading every table to /dev/null
#   import limit   psql \copy of pgconverge's CSVs, one transaction, replica role
#   binary limit   psql \copy of the same rows in binary COPY format (written by psql)
#   pgconverge     export, import (default: CSV converted to binary COPY; and
#                  --copy-format csv; and --rebuild-indexes; and --map into a different
#                  schema: two renamed columns, a constant tenant_id on every table), verify,
#                  verify --deep (every value, against the files and the live source),
#                  export from PostgreSQL (the loaded target read back as a source),
#                  migrate next to export + import + verify run one after another
#   PostgreSQL export limit   psql \copy (SELECT * ...) TO /dev/null of the same tables
#   pgloader       Debian package: data only, truncate, the cast rules this data needs
#   sling          PyPI sling-linux-amd64 (if it installs and runs)
#   delta window   scripts/bench-delta.sh: a delta chain on the same data (on the MariaDB
#                  with the binary log): the last delta's export + import with 1% of the
#                  rows changed, beside a full migrate of the same data
# And an indexed schema (whatever the scale): an event table of 2,000,000 rows with eleven
# secondary indexes and a child table of 1,000,000 with a foreign key to it, imported by
# pgconverge (default: indexes rebuilt around the COPY; and --rebuild-indexes never) next
# to psql \copy into the indexed tables, the "manual best" (psql \copy into the bare
# tables, then each CREATE INDEX and key serially, then ANALYZE) and pgloader (drop indexes).
# Results: a table on stdout and bench/results-<timestamp>.txt. Nothing here is a test.
# Environment: BENCH_REGEN=1 rebuilds the datasets; BENCH_SKIP="pgloader sling delta" skips
# peers and steps, BENCH_SKIP=main the Alkemio-shaped dataset, BENCH_SKIP=indexed the
# indexed schema; BENCH_EVENTS sets the indexed schema's events; BENCH_ROUNDS the rounds (3);
# PGCONVERGE_ARGS / PGCONVERGE_IMPORT_ARGS pass options to export / import.
# BENCH_ONLY=dataset makes the dataset (on BENCH_MYSQL_PORT, default 3306) and the
# PostgreSQL schema (in database BENCH_PG_DB) and stops: scripts/bench-delta.sh uses it.
set -euo pipefail

SCALE="${1:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
DB="pgc_bench_s${SCALE//./_}"
WORK="$root/bench/work-$DB"
OUT="$root/bench"
mkdir -p "$WORK" "$OUT"
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
skip() { [[ " ${BENCH_SKIP:-} " == *" $1 "* ]]; }
log() { echo "== $*" >&2; }

bash "$root/scripts/dev-services.sh"
log "building pgconverge (release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
PGC="$root/target/release/pgconverge"
my() { mariadb --protocol=tcp -h127.0.0.1 -P"${BENCH_MYSQL_PORT:-3306}" -uroot "$@"; }
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }

rows() { awk -v s="$SCALE" -v n="$1" 'BEGIN { printf "%d", s * n }'; }
N_POLICY=$(rows 200000); N_USER=$(rows 100000); N_BLOB=$(rows 30000); N_ACTIVITY=$(rows 420000)
N_PAYMENT=$(rows 150000)
TOTAL_ROWS=$((N_POLICY + N_USER + N_BLOB + N_ACTIVITY + N_PAYMENT))

# measure NAME ROWS BYTES command...  -> appends "name seconds rss_kb rows bytes status"
measure() {
    local name=$1 rows=$2 bytes=$3; shift 3
    log "$name"
    local tf="$WORK/time.$$" status=ok
    # Shell functions are timed through a child bash that inherits them (export -f).
    if declare -F "$1" > /dev/null; then set -- bash -c "$*"; fi
    if ! /usr/bin/time -f "%e %M" -o "$tf" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"; then
        status="failed(see $WORK/$name.err)"
        tail -n 5 "$WORK/$name.err" >&2 || true
    fi
    read -r secs rss < <(tail -n 1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$secs" "$rss" "$rows" "$bytes" "$status" >> "$RESULTS"
    rm -f "$tf"
}

export MYSQL_URL="mysql://root@127.0.0.1:3306" POSTGRES_URL="postgres://postgres@127.0.0.1:5432"
# Each side is measured ROUNDS times, alternating, with a CHECKPOINT before every
# import-side step so that one step's WAL is not flushed on the next one's time; the
# report keeps the best round of each.
ROUNDS="${BENCH_ROUNDS:-3}"
# Without the Alkemio-shaped dataset (BENCH_SKIP=main) its rows and bytes count nothing.
CSV_BYTES=0
if skip main; then TOTAL_ROWS=0; fi

if ! skip main; then # the Alkemio-shaped dataset, up to the peers (BENCH_SKIP=main skips it)
# ---------------------------------------------------------------------- the dataset --
# bench_done_v2: the dataset with the payment table (v1 had four tables).
have=$(my -N -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB' AND TABLE_NAME='bench_done_v2'" 2>/dev/null || echo 0)
if [ "${BENCH_REGEN:-0}" = 1 ] || [ "$have" != 1 ]; then
    log "generating \`$DB\` in MariaDB: $TOTAL_ROWS rows"
    my -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4; SET GLOBAL innodb_flush_log_at_trx_commit = 0;"
    my "$DB" <<SQL
-- The data is made, not replicated: a server with the binary log on keeps it out of the log.
SET SESSION sql_log_bin = 0;
CREATE TABLE d (d INT PRIMARY KEY);
INSERT INTO d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
CREATE TABLE seq (n INT PRIMARY KEY);
INSERT INTO seq SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1000000*h.d
  FROM d a, d b, d c, d e, d f, d g, (SELECT d FROM d WHERE d < 2) h
  WHERE a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1000000*h.d < GREATEST($N_POLICY, $N_USER, $N_BLOB, $N_ACTIVITY);

CREATE TABLE authorization_policy (
  id CHAR(36) NOT NULL PRIMARY KEY, createdDate DATETIME(6) NOT NULL, updatedDate DATETIME(6) NOT NULL,
  version INT NOT NULL, credentialRules TEXT NOT NULL, privilegeRules TEXT NOT NULL,
  verifiedCredentialRules TEXT NOT NULL, type VARCHAR(128) NOT NULL
);
INSERT INTO authorization_policy
  SELECT CAST(UUID() AS CHAR(36)), '2024-01-01' + INTERVAL n SECOND, '2024-06-01' + INTERVAL n SECOND, 1 + n % 5,
         CONCAT('[', REPEAT(CONCAT('{"grantedPrivileges":["read","update"],"criterias":[{"type":"space-member","resourceID":"', MD5(n), '"}],"cascade":true,"name":"rule-', n, '"},'), 7 + n % 6), '{}]'),
         CONCAT('[{"sourcePrivilege":"create","grantedPrivileges":["create-callout"],"name":"p', n, '"}]'),
         '[]', ELT(1 + n % 4, 'space', 'user', 'callout', 'whiteboard')
  FROM seq WHERE n < $N_POLICY;

CREATE TABLE user (
  id CHAR(36) NOT NULL PRIMARY KEY, rowId INT NOT NULL AUTO_INCREMENT UNIQUE,
  createdDate DATETIME(6) NOT NULL, updatedDate DATETIME(6) NOT NULL, version INT NOT NULL,
  nameID VARCHAR(36) NOT NULL, firstName VARCHAR(128) NOT NULL, lastName VARCHAR(128) NOT NULL,
  email VARCHAR(255) NOT NULL, phone VARCHAR(255) NULL, accountID CHAR(36) NOT NULL,
  authorizationId CHAR(36) NULL, serviceProfile JSON NULL
);
INSERT INTO user (id, createdDate, updatedDate, version, nameID, firstName, lastName, email, phone, accountID, authorizationId, serviceProfile)
  SELECT CAST(UUID() AS CHAR(36)), '2023-01-01' + INTERVAL n MINUTE, '2024-01-01' + INTERVAL n MINUTE, 1,
         CONCAT('user-', n), CONCAT('First "', n, '"'), IF(n % 9 = 0, 'O''Brien, Jr.', CONCAT('Last', n)),
         CONCAT('user', n, '@example.org'), IF(n % 3 = 0, NULL, IF(n % 3 = 1, '', CONCAT('+41 ', n))),
         IF(n % 3 = 0, '', CAST(UUID() AS CHAR(36))), NULL,
         IF(n % 4 = 0, NULL, JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', 'b'), 'bio', CONCAT('line1\nline2 ', n)))
  FROM seq WHERE n < $N_USER;
UPDATE user u JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) r FROM authorization_policy) p ON p.r = u.rowId SET u.authorizationId = p.id;

CREATE TABLE document_blob (id CHAR(36) NOT NULL PRIMARY KEY, mimeType VARCHAR(128) NOT NULL, content MEDIUMBLOB NOT NULL);
INSERT INTO document_blob SELECT CAST(UUID() AS CHAR(36)), 'image/png', UNHEX(REPEAT(MD5(n), 94)) FROM seq WHERE n < $N_BLOB;

CREATE TABLE activity (
  rowId INT NOT NULL AUTO_INCREMENT PRIMARY KEY, id CHAR(36) NOT NULL UNIQUE,
  createdDate DATETIME(6) NOT NULL, updatedDate DATETIME(6) NOT NULL, version INT NOT NULL,
  triggeredBy CHAR(36) NOT NULL, resourceID CHAR(36) NOT NULL, parentID CHAR(36) NULL,
  collaborationID CHAR(36) NOT NULL, messageID CHAR(44) NULL, visibility TINYINT(1) NOT NULL,
  description VARCHAR(512) NULL, type VARCHAR(128) NOT NULL
);
CREATE TEMPORARY TABLE some_users AS SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k FROM user LIMIT 1000;
INSERT INTO activity (id, createdDate, updatedDate, version, triggeredBy, resourceID, parentID, collaborationID, messageID, visibility, description, type)
  SELECT CAST(UUID() AS CHAR(36)), '2024-01-01' + INTERVAL n SECOND, '2024-01-01' + INTERVAL n SECOND, 1,
         u.id, MD5(n), IF(n % 2 = 0, NULL, CAST(UUID() AS CHAR(36))), CONCAT(LEFT(MD5(n % 500), 8), '-0000-4000-8000-000000000000'),
         IF(n % 5 = 0, NULL, LEFT(SHA1(n), 44)), n % 2, CONCAT('Callout published, "', n, '", in a space'),
         ELT(1 + n % 3, 'calloutPublished', 'memberJoined', 'updateSent')
  FROM seq JOIN some_users u ON u.k = seq.n % 1000 WHERE n < $N_ACTIVITY;
UPDATE activity SET resourceID = CONCAT(LEFT(resourceID, 8), '-', SUBSTR(resourceID, 9, 4), '-', SUBSTR(resourceID, 13, 4), '-', SUBSTR(resourceID, 17, 4), '-', SUBSTR(resourceID, 21, 12));
CREATE TABLE payment (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, userId CHAR(36) NOT NULL, amount DECIMAL(12,2) NOT NULL,
  fee DECIMAL(10,4) NOT NULL, currency CHAR(3) NOT NULL, paidDate DATETIME(6) NOT NULL
);
INSERT INTO payment (userId, amount, fee, currency, paidDate)
  SELECT u.id, (n % 100000) / 100 + 0.99, (n % 997) / 10000, ELT(1 + n % 3, 'EUR', 'CHF', 'USD'), '2024-01-01' + INTERVAL n SECOND
  FROM seq JOIN some_users u ON u.k = seq.n % 1000 WHERE n < $N_PAYMENT;
DROP TABLE seq; DROP TABLE d;
ANALYZE TABLE authorization_policy, user, document_blob, activity, payment;
CREATE TABLE bench_done_v2 (scale VARCHAR(10));
SQL
    my -e "SET GLOBAL innodb_flush_log_at_trx_commit = 1;"
fi

pg_schema() { # database
    pg -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""
    pg -d "$1" <<'SQL'
CREATE TABLE authorization_policy (
  id uuid PRIMARY KEY, "createdDate" timestamp(6) NOT NULL, "updatedDate" timestamp(6) NOT NULL,
  version integer NOT NULL, "credentialRules" text NOT NULL, "privilegeRules" text NOT NULL,
  "verifiedCredentialRules" text NOT NULL, type varchar(128) NOT NULL
);
CREATE TABLE "user" (
  id uuid PRIMARY KEY, "rowId" serial UNIQUE, "createdDate" timestamp(6) NOT NULL,
  "updatedDate" timestamp(6) NOT NULL, version integer NOT NULL, "nameID" varchar(36) NOT NULL UNIQUE,
  "firstName" varchar(128) NOT NULL, "lastName" varchar(128) NOT NULL, email varchar(255) NOT NULL,
  phone varchar(255), "accountID" uuid,
  "authorizationId" uuid REFERENCES authorization_policy(id) ON DELETE SET NULL, "serviceProfile" jsonb
);
CREATE INDEX user_email ON "user" (email);
CREATE TABLE document_blob (id uuid PRIMARY KEY, "mimeType" varchar(128) NOT NULL, content bytea NOT NULL);
CREATE TABLE activity (
  "rowId" serial PRIMARY KEY, id uuid NOT NULL UNIQUE, "createdDate" timestamp(6) NOT NULL,
  "updatedDate" timestamp(6) NOT NULL, version integer NOT NULL,
  "triggeredBy" uuid NOT NULL REFERENCES "user"(id), "resourceID" uuid NOT NULL, "parentID" uuid,
  "collaborationID" uuid NOT NULL, "messageID" char(44), visibility boolean NOT NULL,
  description varchar(512), type varchar(128) NOT NULL
);
CREATE INDEX activity_triggered_by ON activity ("triggeredBy");
CREATE INDEX activity_collaboration ON activity ("collaborationID", "createdDate");
CREATE TABLE payment (
  id bigserial PRIMARY KEY, "userId" uuid NOT NULL REFERENCES "user"(id), amount numeric(12,2) NOT NULL,
  fee numeric(10,4) NOT NULL, currency char(3) NOT NULL, "paidDate" timestamp(6) NOT NULL
);
SQL
}

if [ "${BENCH_ONLY:-}" = dataset ]; then
    pg_schema "${BENCH_PG_DB:-$DB}"
    exit 0
fi

TABLES="activity authorization_policy document_blob payment user"
export PGCONVERGE_RUN_LOG="$WORK/migration_log.jsonl"
cd "$WORK"

export DB TABLES WORK
export -f my pg
read_all() { for t in $TABLES; do my --quick --batch --skip-column-names -e "SELECT * FROM \`$DB\`.\`$t\`" > /dev/null; done; }
export -f read_all
for round in $(seq 1 "$ROUNDS"); do
    measure "export limit (mariadb --quick)#$round" "$TOTAL_ROWS" 0 read_all
    rm -rf csv_exports
    measure "pgconverge export#$round" "$TOTAL_ROWS" 0 "$PGC" export "$DB" --exclude bench_done_v2 --json ${PGCONVERGE_ARGS:-}
done
json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
EXPORT_DIR="$WORK/$(json_field "$WORK/pgconverge export#$ROUNDS.out" export_dir)"
CSV_BYTES=$(cat "$EXPORT_DIR"/*.csv | wc -c)

pg_schema "$DB"
# The quoted column list of a table, from its CSV header.
csv_cols() { head -n 1 "$EXPORT_DIR/$1.csv" | sed 's/[^,]*/"&"/g'; }
# psql \copy of every table in one transaction, as pgconverge loads them.
# copy_all csv: pgconverge's CSVs; copy_all binary: the same rows in binary COPY format.
copy_all() {
    {
        echo "BEGIN; SET session_replication_role = replica; TRUNCATE activity, authorization_policy, document_blob, payment, \"user\" CASCADE;"
        for t in $TABLES; do
            if [ "$1" = binary ]; then
                echo "\\copy \"$t\" ($(csv_cols "$t")) FROM '$BIN_DIR/$t.bin' WITH (FORMAT binary)"
            else
                echo "\\copy \"$t\" ($(csv_cols "$t")) FROM '$EXPORT_DIR/$t.csv' WITH (FORMAT csv, HEADER true, NULL '\\N')"
            fi
        done
        echo "COMMIT;"
    } | pg -d "$DB"
}
copy_limit() { copy_all csv; }
# The binary files are written by psql from a loaded target: the limit for pgconverge's
# default path, which converts the CSVs to that format.
BIN_DIR="$WORK/binary"
copy_binary_limit() { copy_all binary; }
export EXPORT_DIR BIN_DIR
export -f csv_cols copy_all copy_limit copy_binary_limit
checkpoint() { pg -d "$DB" -c CHECKPOINT; }
copy_limit
rm -rf "$BIN_DIR" && mkdir -p "$BIN_DIR"
for t in $TABLES; do
    pg -d "$DB" -c "\\copy (SELECT $(csv_cols "$t") FROM \"$t\") TO '$BIN_DIR/$t.bin' WITH (FORMAT binary)"
done
# A different target: activity's dates renamed, and every table with a tenant_id the
# mapping fills with a constant (evaluated once, sent with every row).
MAPPED_DB="${DB}_mapped"
pg_schema "$MAPPED_DB"
pg -d "$MAPPED_DB" <<'SQL'
ALTER TABLE activity RENAME COLUMN "createdDate" TO created_at;
ALTER TABLE activity RENAME COLUMN "updatedDate" TO updated_at;
CREATE TABLE tenant (id integer PRIMARY KEY, slug text UNIQUE NOT NULL);
INSERT INTO tenant VALUES (1, 'main');
ALTER TABLE activity ADD COLUMN tenant_id integer NOT NULL;
ALTER TABLE authorization_policy ADD COLUMN tenant_id integer NOT NULL;
ALTER TABLE document_blob ADD COLUMN tenant_id integer NOT NULL;
ALTER TABLE payment ADD COLUMN tenant_id integer NOT NULL;
ALTER TABLE "user" ADD COLUMN tenant_id integer NOT NULL;
SQL
{
    echo "target_db = \"$MAPPED_DB\""
    for t in $TABLES; do
        echo "[tables.$t]"
        [ "$t" = activity ] && echo 'columns = { createdDate = "created_at", updatedDate = "updated_at" }'
        echo "set = { tenant_id = \"(SELECT id FROM tenant WHERE slug = 'main')\" }"
    done
} > "$WORK/mapped.toml"
for round in $(seq 1 "$ROUNDS"); do
    checkpoint
    measure "import limit (psql \\copy)#$round" "$TOTAL_ROWS" "$CSV_BYTES" copy_limit
    checkpoint
    measure "binary limit (psql \\copy binary)#$round" "$TOTAL_ROWS" "$CSV_BYTES" copy_binary_limit
    checkpoint
    measure "pgconverge import#$round" "$TOTAL_ROWS" "$CSV_BYTES" "$PGC" import "$EXPORT_DIR" --yes --target-db "$DB" ${PGCONVERGE_IMPORT_ARGS:-}
    checkpoint
    measure "pgconverge import --copy-format csv#$round" "$TOTAL_ROWS" "$CSV_BYTES" "$PGC" import "$EXPORT_DIR" --yes --target-db "$DB" --copy-format csv ${PGCONVERGE_IMPORT_ARGS:-}
    checkpoint
    measure "pgconverge import --rebuild-indexes#$round" "$TOTAL_ROWS" "$CSV_BYTES" "$PGC" import "$EXPORT_DIR" --yes --target-db "$DB" --rebuild-indexes ${PGCONVERGE_IMPORT_ARGS:-}
    checkpoint
    measure "pgconverge import --map (renames, tenant_id)#$round" "$TOTAL_ROWS" "$CSV_BYTES" "$PGC" import "$EXPORT_DIR" --yes --map "$WORK/mapped.toml" ${PGCONVERGE_IMPORT_ARGS:-}
done
measure "pgconverge verify" "$TOTAL_ROWS" 0 "$PGC" verify "$EXPORT_DIR" --target-db "$DB" --source
# PostgreSQL as the source: the loaded target read back, against psql \copy ... TO of the
# same tables (one session).
pg_read_all() {
    { for t in $TABLES; do echo "\\copy (SELECT * FROM \"$t\") TO '/dev/null'"; done; } | pg -d "$DB" -q
}
export -f pg_read_all
for round in $(seq 1 "$ROUNDS"); do
    measure "PostgreSQL export limit (psql \\copy TO)#$round" "$TOTAL_ROWS" 0 pg_read_all
    rm -rf pg_exports
    measure "pgconverge export from PostgreSQL#$round" "$TOTAL_ROWS" 0 "$PGC" export "$DB" --source-url "$POSTGRES_URL/$DB" --out pg_exports -q --json
done
# migrate (tables load while later ones are still exported, one transaction) next to the
# same three steps run one after another.
one_after_another() {
    local dir
    dir=$("$PGC" export "$DB" --exclude bench_done_v2 --out seq_exports -q --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["export_dir"])')
    "$PGC" import "$dir" --yes --target-db "$DB" -q > /dev/null
    "$PGC" verify "$dir" --target-db "$DB" --source -q > /dev/null
}
export PGC
export -f one_after_another
for round in $(seq 1 "$ROUNDS"); do
    rm -rf seq_exports migrate_exports
    checkpoint
    measure "export + import + verify, one after another#$round" "$TOTAL_ROWS" "$CSV_BYTES" one_after_another
    checkpoint
    measure "pgconverge migrate#$round" "$TOTAL_ROWS" "$CSV_BYTES" "$PGC" migrate "$DB" --exclude bench_done_v2 --target-db "$DB" --out migrate_exports --yes -q
done
# The last import above loaded the mapped database; reload the plain one for --deep.
"$PGC" import "$EXPORT_DIR" --yes --target-db "$DB" -q > /dev/null
for round in $(seq 1 "$ROUNDS"); do
    measure "pgconverge verify --deep --source#$round" "$TOTAL_ROWS" 0 "$PGC" verify "$EXPORT_DIR" --target-db "$DB" --deep --source -q
    measure "pgconverge verify --deep#$round" "$TOTAL_ROWS" 0 "$PGC" verify "$EXPORT_DIR" --target-db "$DB" --deep -q
done

# ------------------------------------------------------------------------- pgloader --
if ! skip pgloader; then
    command -v pgloader >/dev/null || { sudo_="" ; [ "$(id -u)" -eq 0 ] || sudo_=sudo; $sudo_ apt-get install -y -qq pgloader >/dev/null 2>&1 || true; }
    if command -v pgloader >/dev/null; then
        cat > "$WORK/pgloader.load" <<LOAD
LOAD DATABASE
  FROM mysql://root@127.0.0.1:3306/$DB
  INTO postgresql://postgres@127.0.0.1:5432/$DB
WITH data only, truncate, disable triggers, quote identifiers, reset no sequences,
     workers = 2, concurrency = 1,
     prefetch rows = 2000, batch rows = 2000
SET PostgreSQL PARAMETERS session_replication_role = 'replica'
ALTER SCHEMA '$DB' RENAME TO 'public'
CAST type char when (= precision 36) to uuid drop typemod using empty-string-to-null,
     type tinyint when (= precision 1) to boolean drop typemod using tinyint-to-boolean
INCLUDING ONLY TABLE NAMES MATCHING 'activity', 'authorization_policy', 'document_blob', 'payment', 'user';
LOAD
        checkpoint
        measure "pgloader" "$TOTAL_ROWS" "$CSV_BYTES" pgloader --on-error-stop "$WORK/pgloader.load"
    else
        printf 'pgloader\t0\t0\t0\t0\tnot installable\n' >> "$RESULTS"
    fi
fi

# ---------------------------------------------------------------------------- sling --
if ! skip sling; then
    if [ ! -x "$OUT/venv/bin/python" ]; then python3 -m venv "$OUT/venv" >/dev/null 2>&1 || true; fi
    "$OUT/venv/bin/pip" install -q sling-linux-amd64 >/dev/null 2>&1 || true
    SLING=$(find "$OUT/venv" -type f -name 'sling' -perm -u+x 2>/dev/null | grep -v '/bin/sling$' | head -n 1 || true)
    [ -n "$SLING" ] || SLING=$(find "$OUT/venv" -type f -name 'sling*' -perm -u+x 2>/dev/null | head -n 1 || true)
    if [ -n "$SLING" ]; then
        cat > "$WORK/sling.yaml" <<YAML
source: MY
target: PG
defaults:
  mode: truncate
  object: 'public.{stream_table}'
streams:
  $DB.activity:
  $DB.authorization_policy:
  $DB.document_blob:
  $DB.payment:
  $DB.user:
YAML
        export SLING
        run_sling() { MY="mysql://root@127.0.0.1:3306/$DB" PG="postgresql://postgres@127.0.0.1:5432/$DB?sslmode=disable" SLING_DISABLE_TELEMETRY=true "$SLING" run -r "$WORK/sling.yaml"; }
        export -f run_sling
        checkpoint
        measure "sling" "$TOTAL_ROWS" "$CSV_BYTES" run_sling
    else
        printf 'sling\t0\t0\t0\t0\tnot installable\n' >> "$RESULTS"
    fi
fi

fi # main

# ------------------------------------------------------------------ indexed schema --
# An event table with eleven secondary indexes (multi-column btrees over text columns and
# timestamps, a partial, an expression, a GIN on jsonb, a unique one) and a child table
# whose foreign key references it, loaded three ways next to pgconverge's default import:
# psql \copy into the indexed tables; the "manual best" (\copy into the bare tables, each
# CREATE INDEX and constraint serially, ANALYZE); pgloader (which drops the indexes and
# builds them after the load). BENCH_EVENTS rows of events (default 2,000,000), half as
# many tags; the slow steps (every index kept) run once.
if ! skip indexed; then
IDX_DB="pgc_bench_idx"
IDX_WORK="$OUT/work-$IDX_DB"
mkdir -p "$IDX_WORK"
cd "$IDX_WORK"
export PGCONVERGE_RUN_LOG="$IDX_WORK/migration_log.jsonl"
N_EVENT="${BENCH_EVENTS:-2000000}"; N_TAG=$((N_EVENT / 2))
have=$(my -N -e "SELECT COUNT(*) FROM \`$IDX_DB\`.bench_done WHERE events = $N_EVENT" 2>/dev/null || echo 0)
if [ "${BENCH_REGEN:-0}" = 1 ] || [ "$have" != 1 ]; then
    log "generating \`$IDX_DB\` in MariaDB: $N_EVENT events, $N_TAG tags"
    my -e "DROP DATABASE IF EXISTS \`$IDX_DB\`; CREATE DATABASE \`$IDX_DB\` CHARACTER SET utf8mb4; SET GLOBAL innodb_flush_log_at_trx_commit = 0;"
    my "$IDX_DB" <<SQL
CREATE TABLE d (d INT PRIMARY KEY);
INSERT INTO d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);
CREATE TABLE seq (n INT PRIMARY KEY);
INSERT INTO seq SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1000000*h.d
  FROM d a, d b, d c, d e, d f, d g, d h
  WHERE a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 100000*g.d + 1000000*h.d < $N_EVENT;
CREATE TABLE event (
  id BIGINT NOT NULL PRIMARY KEY, uuid CHAR(36) NOT NULL, tenant VARCHAR(64) NOT NULL,
  kind VARCHAR(64) NOT NULL, actor VARCHAR(128) NOT NULL, subject VARCHAR(255) NOT NULL,
  status VARCHAR(32) NOT NULL, created_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL,
  deleted_at DATETIME(6) NULL, score INT NOT NULL, payload JSON NOT NULL
);
INSERT INTO event
  SELECT n + 1, INSERT(INSERT(INSERT(INSERT(MD5(n), 9, 0, '-'), 14, 0, '-'), 19, 0, '-'), 24, 0, '-'),
         CONCAT('tenant-', n % 50), CONCAT('kind.', n % 23), CONCAT('actor-', (n * 7919) % 100000),
         CONCAT('Subject line ', MD5(n % 300000)), ELT(1 + n % 4, 'new', 'open', 'done', 'failed'),
         '2024-01-01' + INTERVAL n * 37 SECOND, '2024-06-01' + INTERVAL n * 11 SECOND,
         IF(n % 10 = 0, '2025-01-01', NULL), (n * 31) % 1000,
         JSON_OBJECT('n', n, 'source', CONCAT('app-', n % 9), 'tags', JSON_ARRAY(CONCAT('t', n % 17), CONCAT('t', n % 5)))
  FROM seq;
CREATE TABLE event_tag (
  id BIGINT NOT NULL PRIMARY KEY, event_id BIGINT NOT NULL, tag VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL
);
INSERT INTO event_tag SELECT n + 1, 1 + (n * 7) % $N_EVENT, CONCAT('tag-', n % 1000), '2024-01-01' + INTERVAL n SECOND
  FROM seq WHERE n < $N_TAG;
DROP TABLE seq; DROP TABLE d;
ANALYZE TABLE event, event_tag;
CREATE TABLE bench_done (events INT);
INSERT INTO bench_done VALUES ($N_EVENT);
SQL
    my -e "SET GLOBAL innodb_flush_log_at_trx_commit = 1;"
fi
# The target's indexes and constraints, each one statement (the manual best runs them in
# turn), and what drops them all.
IDX_CREATE="CREATE UNIQUE INDEX event_uuid ON event (uuid);
CREATE INDEX event_tenant_kind_created ON event (tenant, kind, created_at);
CREATE INDEX event_actor_created ON event (actor, created_at DESC);
CREATE INDEX event_subject ON event (subject);
CREATE INDEX event_status_updated ON event (status, updated_at);
CREATE INDEX event_tenant_actor ON event (tenant, actor);
CREATE INDEX event_live ON event (tenant, created_at) WHERE deleted_at IS NULL;
CREATE INDEX event_lower_subject ON event (lower(subject));
CREATE INDEX event_payload ON event USING gin (payload jsonb_path_ops);
CREATE INDEX event_created ON event (created_at);
CREATE INDEX event_kind_score ON event (kind, score);
CREATE INDEX event_tag_event ON event_tag (event_id);
CREATE INDEX event_tag_tag ON event_tag (tag, created_at);"
IDX_KEYS="ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id);
ALTER TABLE event_tag ADD CONSTRAINT event_tag_pkey PRIMARY KEY (id);
ALTER TABLE event_tag ADD CONSTRAINT event_tag_event_id_fkey FOREIGN KEY (event_id) REFERENCES event(id);"
IDX_DROP="ALTER TABLE event_tag DROP CONSTRAINT event_tag_event_id_fkey, DROP CONSTRAINT event_tag_pkey;
ALTER TABLE event DROP CONSTRAINT event_pkey;
DROP INDEX event_uuid, event_tenant_kind_created, event_actor_created, event_subject,
  event_status_updated, event_tenant_actor, event_live, event_lower_subject, event_payload,
  event_created, event_kind_score, event_tag_event, event_tag_tag;"
pg -d postgres -c "DROP DATABASE IF EXISTS \"$IDX_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$IDX_DB\""
pg -d "$IDX_DB" <<SQL
CREATE TABLE event (
  id bigint NOT NULL, uuid uuid NOT NULL, tenant text NOT NULL, kind text NOT NULL,
  actor text NOT NULL, subject text NOT NULL, status text NOT NULL,
  created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL, deleted_at timestamp(6),
  score integer NOT NULL, payload jsonb NOT NULL
);
CREATE TABLE event_tag (id bigint NOT NULL, event_id bigint NOT NULL, tag text NOT NULL, created_at timestamp(6) NOT NULL);
$IDX_KEYS
$IDX_CREATE
SQL
IDX_ROWS=$((N_EVENT + N_TAG))
rm -rf csv_exports && "$PGC" export "$IDX_DB" --exclude bench_done -q --json > export.json
IDX_EXPORT="$IDX_WORK/$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["export_dir"])' "$IDX_WORK/export.json")"
IDX_BYTES=$(cat "$IDX_EXPORT"/*.csv | wc -c)
idx_cols() { head -n 1 "$IDX_EXPORT/$1.csv" | sed 's/[^,]*/"&"/g'; }
# psql \copy of both tables in one transaction, as pgconverge loads them: with every
# index in place (with_indexes), or bare with every index built after (manual_best).
idx_copy() {
    {
        echo "BEGIN; SET session_replication_role = replica; TRUNCATE event, event_tag;"
        [ "$1" = bare ] && echo "$IDX_DROP"
        for t in event event_tag; do
            echo "\\copy $t ($(idx_cols "$t")) FROM '$IDX_EXPORT/$t.csv' WITH (FORMAT csv, HEADER true, NULL '\\N')"
        done
        [ "$1" = bare ] && printf '%s\n%s\n' "$IDX_CREATE" "$IDX_KEYS"
        echo "ANALYZE event, event_tag; COMMIT;"
    } | pg -d "$IDX_DB"
}
with_indexes() { idx_copy indexed; }
manual_best() { idx_copy bare; }
export IDX_DB IDX_EXPORT IDX_CREATE IDX_KEYS IDX_DROP
export -f pg idx_cols idx_copy with_indexes manual_best
idx_checkpoint() { pg -d "$IDX_DB" -c CHECKPOINT; }
idx_checkpoint
measure "indexed: psql \\copy with every index#1" "$IDX_ROWS" "$IDX_BYTES" with_indexes
idx_checkpoint
measure "indexed: pgconverge import --rebuild-indexes never#1" "$IDX_ROWS" "$IDX_BYTES" "$PGC" import "$IDX_EXPORT" --yes --target-db "$IDX_DB" --rebuild-indexes never --json ${PGCONVERGE_IMPORT_ARGS:-}
for round in $(seq 1 "$ROUNDS"); do
    idx_checkpoint
    measure "indexed: manual best#$round" "$IDX_ROWS" "$IDX_BYTES" manual_best
    idx_checkpoint
    measure "indexed: pgconverge import#$round" "$IDX_ROWS" "$IDX_BYTES" "$PGC" import "$IDX_EXPORT" --yes --target-db "$IDX_DB" --json ${PGCONVERGE_IMPORT_ARGS:-}
done
if ! skip pgloader && command -v pgloader >/dev/null; then
    cat > "$IDX_WORK/pgloader.load" <<LOAD
LOAD DATABASE
  FROM mysql://root@127.0.0.1:3306/$IDX_DB
  INTO postgresql://postgres@127.0.0.1:5432/$IDX_DB
WITH data only, truncate, disable triggers, drop indexes, quote identifiers, reset no sequences,
     workers = 2, concurrency = 1,
     prefetch rows = 2000, batch rows = 2000
SET PostgreSQL PARAMETERS session_replication_role = 'replica'
ALTER SCHEMA '$IDX_DB' RENAME TO 'public'
CAST type char when (= precision 36) to uuid drop typemod using empty-string-to-null
INCLUDING ONLY TABLE NAMES MATCHING 'event', 'event_tag';
LOAD
    idx_checkpoint
    measure "indexed: pgloader (drop indexes)" "$IDX_ROWS" "$IDX_BYTES" pgloader --on-error-stop "$IDX_WORK/pgloader.load"
fi
fi # indexed

# ------------------------------------------------------------------------- report ----
STAMP=$(date -u +%Y%m%d_%H%M%S)
python3 - "$RESULTS" "$CSV_BYTES" "$SCALE" "$(nproc)" "$TOTAL_ROWS" > "$OUT/results-$STAMP.txt" <<'PY'
import sys
path, csv_bytes, scale, cores, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
raw = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
rows, res, rounds = [], {}, {}
for r in raw:
    name = r[0].split("#")[0]
    r = [name] + r[1:]
    if r[5] == "ok":
        rounds.setdefault(name, []).append(float(r[1]))
    old = res.get(name)
    if old is None:
        rows.append(r)
        res[name] = r
    elif r[5] == "ok" and (old[5] != "ok" or float(r[1]) < float(old[1])):
        r[2] = str(max(int(r[2]), int(old[2])))
        old[:] = r
def secs(name):
    r = res.get(name)
    return float(r[1]) if r and r[5] == "ok" else None
def median(name):
    v = sorted(rounds.get(name, []))
    return v[len(v) // 2] if v else None
print(f"pgconverge benchmark, scale {scale}: {total:,} rows, {csv_bytes/1e6:.0f} MB of CSV, {cores} cores (best and median of the rounds)")
print(f"{'step':52} {'best s':>7} {'median':>7} {'MB/s':>7} {'rows/s':>9} {'peak RSS':>9}  status")
for name, s, rss, n, b, status in rows:
    s = float(s); n = int(n)
    # Steps that name their own CSV bytes (the indexed schema) use them.
    mb = int(b) if name.startswith("indexed:") else csv_bytes
    m = median(name)
    med = f"{m:7.2f}" if m else f"{'-':>7}"
    mbs = f"{mb/1e6/s:7.1f}" if s > 0 and mb > 0 else f"{'-':>7}"
    rps = f"{n/s:9,.0f}" if s > 0 else f"{'-':>9}"
    print(f"{name:52} {s:7.2f} {med} {mbs} {rps} {int(rss)/1024:7.1f} MB  {status}")
def ratio(a, b):
    x, y = secs(a), secs(b)
    mx, my = median(a), median(b)
    best = f"{x/y:.2f}" if x and y else "n/a"
    return f"{best} (medians {mx/my:.2f})" if mx and my else best
print()
print(f"export / export limit:               {ratio('pgconverge export', 'export limit (mariadb --quick)')}   (target <= 1.3)")
limit = "import limit (psql \\copy)"
print(f"import / import limit:               {ratio('pgconverge import', limit)}   (target <= 1.05)")
blimit = "binary limit (psql \\copy binary)"
print(f"import / binary limit:               {ratio('pgconverge import', blimit)}   (the limit of the binary path)")
print(f"import --copy-format csv / limit:    {ratio('pgconverge import --copy-format csv', limit)}")
print(f"import --rebuild-indexes / limit:    {ratio('pgconverge import --rebuild-indexes', limit)}")
print(f"import --map / import:               {ratio('pgconverge import --map (renames, tenant_id)', 'pgconverge import')}   (target <= 1.05)")
print(f"verify --deep --source / import:     {ratio('pgconverge verify --deep --source', 'pgconverge import')}   (target <= 1.0)")
print(f"migrate / one after another:        {ratio('pgconverge migrate', 'export + import + verify, one after another')}   (the overlap)")
pglimit = "PostgreSQL export limit (psql \\copy TO)"
print(f"export from PostgreSQL / psql copy:  {ratio('pgconverge export from PostgreSQL', pglimit)}   (target <= 1.0)")
e, i, p = secs("pgconverge export"), secs("pgconverge import"), secs("pgloader")
print(f"(export + import) / pgloader:        {((e + i) / p):.2f}" if e and i and p else "(export + import) / pgloader:        n/a", "  (target <= 0.4)")
s = secs("sling")
print(f"(export + import) / sling:           {((e + i) / s):.2f}" if e and i and s else "(export + import) / sling:           n/a")
imp, best = "indexed: pgconverge import", "indexed: manual best"
print(f"indexed: import / manual best:       {ratio(imp, best)}   (target <= 1.05)")
with_idx = "indexed: psql \\copy with every index"
print(f"indexed: \\copy with every index / import: {ratio(with_idx, imp)}   (target >= 4)")
print(f"indexed: import never / import:      {ratio('indexed: pgconverge import --rebuild-indexes never', imp)}")
print(f"indexed: import / pgloader:          {ratio(imp, 'indexed: pgloader (drop indexes)')}")
PY
cat "$OUT/results-$STAMP.txt"
echo "(results: $OUT/results-$STAMP.txt, logs: $WORK)" >&2
if ! skip delta; then
    bash "$root/scripts/bench-delta.sh" "$SCALE"
fi
