#!/usr/bin/env bash
# Where dropping a table's indexes before its COPY and rebuilding them after starts to pay:
#   scripts/index-crossover.sh [rows ...]      (default: 1000 5000 20000 100000 500000)
# For each row count, an event table (the bench's indexed schema: a bigint primary key,
# a UNIQUE uuid, ten secondary indexes: multi-column btrees over text and timestamps, a
# partial, an expression and a GIN index) is loaded from a CSV with psql, in one
# transaction after a TRUNCATE, three ways:
#   keep         COPY into the table with every index
#   plain        secondary indexes dropped before the COPY, created after it
#   constraints  also the primary key and the UNIQUE constraint (with the foreign key
#                that depends on the key) dropped and added back
# Each is run ROUNDS times (default 3), alternating, and the median is printed, in
# seconds, with maintenance_work_mem and max_parallel_maintenance_workers as the server
# has them unless MWM (e.g. 256MB) or WORKERS is set; STRATEGIES picks some of the three.
# PostgreSQL only (no MySQL): the CSVs are written by the server itself. Not a test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
DB=pgc_index_crossover
WORK="$root/bench/work-$DB"
mkdir -p "$WORK"
ROUNDS="${ROUNDS:-3}"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 5000 20000 100000 500000)
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -q -X "$@"; }

pg -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
pg -d "$DB" <<'SQL'
CREATE TABLE event (
  id bigint PRIMARY KEY, uuid uuid NOT NULL CONSTRAINT event_uuid_key UNIQUE,
  tenant text NOT NULL, kind text NOT NULL, actor text NOT NULL, subject text NOT NULL,
  status text NOT NULL, created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL,
  deleted_at timestamp(6), score integer NOT NULL, payload jsonb NOT NULL
);
CREATE TABLE event_tag (id bigint PRIMARY KEY, event_id bigint NOT NULL REFERENCES event(id));
SQL
SECONDARY="CREATE INDEX event_tenant_kind_created ON event (tenant, kind, created_at);
CREATE INDEX event_actor_created ON event (actor, created_at DESC);
CREATE INDEX event_subject ON event (subject);
CREATE INDEX event_status_updated ON event (status, updated_at);
CREATE INDEX event_tenant_actor ON event (tenant, actor);
CREATE INDEX event_live ON event (tenant, created_at) WHERE deleted_at IS NULL;
CREATE INDEX event_lower_subject ON event (lower(subject));
CREATE INDEX event_payload ON event USING gin (payload jsonb_path_ops);
CREATE INDEX event_created ON event (created_at);
CREATE INDEX event_kind_score ON event (kind, score);"
DROP_SECONDARY="DROP INDEX event_tenant_kind_created, event_actor_created, event_subject,
  event_status_updated, event_tenant_actor, event_live, event_lower_subject, event_payload,
  event_created, event_kind_score;"
pg -d "$DB" -c "$SECONDARY"

MAX=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -n 1)
pg -d "$DB" -c "CREATE UNLOGGED TABLE gen AS SELECT i, md5(i::text)::uuid AS uuid,
    'tenant-' || (i % 50) AS tenant, 'kind.' || (i % 23) AS kind, 'actor-' || ((i * 7919) % 100000) AS actor,
    'Subject line ' || md5((i % 300000)::text) AS subject, (ARRAY['new','open','done','failed'])[1 + i % 4] AS status,
    timestamp '2024-01-01' + i * interval '37 second' AS created_at, timestamp '2024-06-01' + i * interval '11 second' AS updated_at,
    CASE WHEN i % 10 = 0 THEN timestamp '2025-01-01' END AS deleted_at, (i * 31) % 1000 AS score,
    jsonb_build_object('n', i, 'source', 'app-' || (i % 9), 'tags', jsonb_build_array('t' || (i % 17), 't' || (i % 5))) AS payload
  FROM generate_series(1, $MAX::bigint) i"
for n in "${SIZES[@]}"; do
    [ -f "$WORK/event_$n.csv" ] || pg -d "$DB" -c "\\copy (SELECT * FROM gen WHERE i <= $n ORDER BY i) TO '$WORK/event_$n.csv' WITH (FORMAT csv)"
done
pg -d "$DB" -c "DROP TABLE gen"

load() { # strategy rows -> seconds
    local pre="" post=""
    case $1 in
        plain) pre="$DROP_SECONDARY"; post="$SECONDARY" ;;
        constraints)
            pre="ALTER TABLE event_tag DROP CONSTRAINT event_tag_event_id_fkey;
                 ALTER TABLE event DROP CONSTRAINT event_pkey, DROP CONSTRAINT event_uuid_key; $DROP_SECONDARY"
            post="ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id);
                  ALTER TABLE event ADD CONSTRAINT event_uuid_key UNIQUE (uuid); $SECONDARY
                  ALTER TABLE event_tag ADD CONSTRAINT event_tag_event_id_fkey FOREIGN KEY (event_id) REFERENCES event(id);" ;;
    esac
    local start end
    start=$(date +%s.%N)
    pg -d "$DB" <<SQL
BEGIN;
SET LOCAL session_replication_role = replica;
${MWM:+SET LOCAL maintenance_work_mem = '$MWM';}
${WORKERS:+SET LOCAL max_parallel_maintenance_workers = $WORKERS;}
TRUNCATE event, event_tag;
$pre
\\copy event FROM '$WORK/event_$2.csv' WITH (FORMAT csv)
$post
COMMIT;
SQL
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

STRATEGIES=(${STRATEGIES:-keep plain constraints})
printf '%10s' rows; printf ' %12s' "${STRATEGIES[@]}"; echo
for n in "${SIZES[@]}"; do
    declare -A times=()
    for _ in $(seq 1 "$ROUNDS"); do
        for s in "${STRATEGIES[@]}"; do
            pg -d "$DB" -c CHECKPOINT
            times[$s]="${times[$s]:-} $(load "$s" "$n")"
        done
    done
    printf '%10s' "$n"
    for s in "${STRATEGIES[@]}"; do printf ' %12s' "$(echo "${times[$s]}" | median)"; done
    echo
    unset times
done
pg -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
