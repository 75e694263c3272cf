#!/usr/bin/env bash
# The whole job on a small Alkemio-shaped demo database, from a fresh machine:
#   servers up -> demo data in MariaDB -> matching schema in PostgreSQL ->
#   log-run started -> export alkemio -> import -> verify --source -> log-run completed.
# Never touches a real database: it works on $DEMO_DB (default pgconverge_demo), which
# it drops and recreates on both servers (with $PGCONVERGE_TEST_PREFIX in front of the
# name when set), in $DEMO_DIR (default ./demo-run).
# PGCONVERGE_BIN runs a given binary instead of building the release one.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
DB="${PGCONVERGE_TEST_PREFIX:-}${DEMO_DB:-pgconverge_demo}"
DIR="${DEMO_DIR:-$root/demo-run}"
USERS="${DEMO_USERS:-500}"

bash "$root/scripts/dev-services.sh"
if [ -z "${PGCONVERGE_BIN:-}" ]; then
    # Cargo says where it put the binary (CARGO_TARGET_DIR, a build.target-dir in a
    # config file, a profile): never guess the path. DEMO_CARGO_BUILD replaces the cargo
    # command (its test runs `test --no-run`, which the test run has just done).
    read -r -a build <<<"${DEMO_CARGO_BUILD:-build --release --bin pgconverge}"
    echo "== cargo ${build[*]} (the first release build takes several minutes on 2 cores)" >&2
    PGCONVERGE_BIN=$(cargo "${build[@]}" --manifest-path "$root/Cargo.toml" \
        --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pgconverge" \
            and "bin" in m["target"]["kind"] and not m["profile"]["test"] \
            and m.get("executable"):
        print(m["executable"])
')
    if [ -z "$PGCONVERGE_BIN" ] || [ ! -x "$PGCONVERGE_BIN" ]; then
        echo "demo failed: cargo reported no pgconverge binary" >&2
        exit 1
    fi
fi
echo "== using $PGCONVERGE_BIN" >&2
pgc() { "$PGCONVERGE_BIN" "$@"; }
my() { mariadb --protocol=tcp -h127.0.0.1 -P3306 -uroot "$@"; }
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }

echo "== creating the demo source database \`$DB\` in MariaDB" >&2
my -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4;"
my "$DB" <<SQL
CREATE TABLE _n (n INT PRIMARY KEY);
INSERT INTO _n SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d
  FROM (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) a,
       (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) b,
       (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) c,
       (SELECT 0 d UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8 UNION SELECT 9) e;

CREATE TABLE \`user\` (
  id CHAR(36) NOT NULL PRIMARY KEY,
  createdDate DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  version INT NOT NULL DEFAULT 1,
  nameID VARCHAR(36) NOT NULL,
  firstName VARCHAR(128) NOT NULL DEFAULT '',
  email VARCHAR(255) NULL,
  accountID CHAR(36) NOT NULL DEFAULT '',
  serviceProfile JSON NULL
);
INSERT INTO \`user\` (id, nameID, firstName, email, accountID, serviceProfile)
  SELECT UUID(), CONCAT('user-', n), CONCAT('Name "', n, '", the ', IF(n % 7 = 0, 'tab\there', 'first')),
         IF(n % 5 = 0, NULL, CONCAT('u', n, '@example.org')),
         IF(n % 3 = 0, '', CAST(UUID() AS CHAR(36))), IF(n % 4 = 0, NULL, JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', 'b')))
  FROM _n WHERE n < $USERS;

CREATE TABLE space (
  id CHAR(36) NOT NULL PRIMARY KEY, nameID VARCHAR(36) NOT NULL, level INT NOT NULL,
  parentSpaceId CHAR(36) NULL, settingsStr TEXT NOT NULL
);
INSERT INTO space SELECT UUID(), CONCAT('space-', n), 0, NULL, CONCAT('{"privacy":{"mode":"public"},"n":', n, '}') FROM _n WHERE n < 20;
INSERT INTO space SELECT UUID(), CONCAT('sub-', s.nameID), 1, s.id, '{}' FROM space s;

CREATE TABLE whiteboard (
  id CHAR(36) NOT NULL PRIMARY KEY,
  content LONGTEXT CHARACTER SET latin1 NOT NULL,
  createdBy CHAR(36) NULL
);
INSERT INTO whiteboard SELECT UUID(), COMPRESS(REPEAT(CONCAT('{"elements":[', n, ']}'), 50)), (SELECT id FROM \`user\` ORDER BY id LIMIT 1) FROM _n WHERE n < 100;
CREATE TABLE callout_contribution_defaults (id CHAR(36) NOT NULL PRIMARY KEY, whiteboardContent LONGTEXT CHARACTER SET latin1 NULL);
INSERT INTO callout_contribution_defaults SELECT UUID(), IF(n % 2 = 0, NULL, COMPRESS('{"elements":[]}')) FROM _n WHERE n < 10;

CREATE TABLE activity (
  rowId INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id CHAR(36) NOT NULL, triggeredBy CHAR(36) NOT NULL, type VARCHAR(128) NOT NULL,
  description TEXT NULL, createdDate DATETIME(6) NOT NULL, visibility TINYINT(1) NOT NULL DEFAULT 1
);
INSERT INTO activity (id, triggeredBy, type, description, createdDate, visibility)
  SELECT UUID(), u.id, 'calloutPublished', CONCAT('line 1\nline 2, "quoted" \\\\ ', a.n), '2024-01-01 00:00:00.123456' + INTERVAL a.n MINUTE, a.n % 2
  FROM (SELECT id FROM \`user\` ORDER BY id LIMIT 5) u, _n a WHERE a.n < 2000;

CREATE TABLE migrations_typeorm (id INT AUTO_INCREMENT PRIMARY KEY, timestamp BIGINT NOT NULL, name VARCHAR(255) NOT NULL);
INSERT INTO migrations_typeorm (timestamp, name) VALUES (1700000000000, 'initial');
CREATE TABLE \`query-result-cache\` (id INT AUTO_INCREMENT PRIMARY KEY, identifier VARCHAR(255), query TEXT NOT NULL);
INSERT INTO \`query-result-cache\` (identifier, query) VALUES ('x', 'select 1');
DROP TABLE _n;
SQL

echo "== creating the matching PostgreSQL schema in database \`$DB\`" >&2
pg -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\""
pg -d "$DB" <<'SQL'
CREATE TABLE "user" (
  id uuid PRIMARY KEY, "createdDate" timestamp(6) NOT NULL DEFAULT now(), version integer NOT NULL,
  "nameID" varchar(36) NOT NULL, "firstName" varchar(128) NOT NULL, email varchar(255),
  "accountID" uuid, "serviceProfile" jsonb
);
CREATE TABLE space (
  id uuid PRIMARY KEY, "nameID" varchar(36) NOT NULL, level integer NOT NULL,
  "parentSpaceId" uuid REFERENCES space(id), "settingsStr" text NOT NULL
);
CREATE TABLE whiteboard (id uuid PRIMARY KEY, content text NOT NULL, "createdBy" uuid REFERENCES "user"(id));
CREATE TABLE callout_contribution_defaults (id uuid PRIMARY KEY, "whiteboardContent" text);
CREATE TABLE activity (
  "rowId" serial PRIMARY KEY, id uuid NOT NULL, "triggeredBy" uuid NOT NULL REFERENCES "user"(id),
  type varchar(128) NOT NULL, description text, "createdDate" timestamp(6) NOT NULL, visibility boolean NOT NULL
);
CREATE INDEX activity_triggered ON activity ("triggeredBy");
-- Owned by the application's schema tool: the profile never copies these.
CREATE TABLE migrations_typeorm (id serial PRIMARY KEY, timestamp bigint NOT NULL, name varchar NOT NULL);
INSERT INTO migrations_typeorm (timestamp, name) VALUES (1700000000000, 'initial-postgres');
CREATE TABLE "query-result-cache" (id serial PRIMARY KEY, identifier varchar, query text NOT NULL);
SQL

mkdir -p "$DIR"
cd "$DIR"
export ALKEMIO_DB="$DB"
export PGCONVERGE_RUN_LOG="$DIR/migration_log.jsonl"

fail() { pgc log-run failed "demo: $1" || true; echo "demo failed: $1" >&2; exit 1; }

pgc log-run started "demo: Alkemio-shaped database $DB"
echo "== pgconverge export alkemio" >&2
out=$(pgc export alkemio --json) || fail "export"
export_dir=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["export_dir"])')
echo "export: $export_dir"
echo "== pgconverge import $export_dir --yes" >&2
pgc import "$export_dir" --yes || fail "import"
echo "== pgconverge verify $export_dir --source" >&2
pgc verify "$export_dir" --source || fail "verify"
pgc log-run completed "demo: $DB migrated and verified"
echo "== pgconverge runs" >&2
pgc runs
echo "demo finished: export in $DIR/$export_dir, run log $PGCONVERGE_RUN_LOG" >&2
