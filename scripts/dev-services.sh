#!/usr/bin/env bash
# Make sure the development/test servers run on this (Debian) machine:
#   MariaDB    127.0.0.1:3306  user root, empty password
#   PostgreSQL 127.0.0.1:5432  user postgres, trust authentication for local connections,
#              with the PostGIS extension available (the spatial tests create it)
#   MariaDB    127.0.0.1:3307  a throwaway second server with the binary log on (ROW format,
#              FULL row image, server_id 1) for the delta tests, user root without password,
#              data in $BINLOG_DATADIR (default /var/tmp/pgconverge-mariadb-binlog); the
#              shared server on 3306 keeps its binary log off
#   PostgreSQL 127.0.0.1:5433  a throwaway second cluster with wal_level=logical for the
#              PostgreSQL delta tests (logical replication slots), user postgres, trust
#              authentication, data in $LOGICAL_PGDATA (default /var/tmp/pgconverge-pg-logical);
#              the shared server on 5432 keeps wal_level=replica
# Installs them with apt-get when missing, starts them when stopped, waits until they
# answer (a readiness probe, not a fixed sleep), and does nothing when they already run.
# With WITH_DOCKER=1 it also makes a real Docker engine and the container tests' images
# ready (scripts/docker-engine.sh, which prints the time it took). Idempotent; prints
# nothing else on success. Meant for development and CI machines only: it opens both
# servers without passwords on the loopback interface.
set -euo pipefail

MYSQL_PORT=3306
PG_PORT=5432
BINLOG_PORT=3307
BINLOG_DATADIR=${BINLOG_DATADIR:-/var/tmp/pgconverge-mariadb-binlog}
LOGICAL_PG_PORT=5433
LOGICAL_PGDATA=${LOGICAL_PGDATA:-/var/tmp/pgconverge-pg-logical}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
LOG=$(mktemp -t dev-services.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() {
    echo "dev-services: $*" >&2
    [ -s "$LOG" ] && tail -n 30 "$LOG" >&2
    exit 1
}

mysql_up() { mariadb-admin --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
mysql_alive() { mariadb-admin --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -uroot --connect-timeout=2 ping 2>&1 | grep -qiE 'alive|denied'; }
binlog_up() { mariadb-admin --protocol=tcp -h127.0.0.1 -P"$BINLOG_PORT" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
logical_up() { pg_isready -q -h 127.0.0.1 -p "$LOGICAL_PG_PORT" -U postgres -t 2 && psql -h 127.0.0.1 -p "$LOGICAL_PG_PORT" -U postgres -d postgres -w -Atqc 'select 1' >/dev/null 2>&1; }
pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -t 2 && psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -w -Atqc 'select 1' >/dev/null 2>&1; }

wait_for() { # name, probe function
    local i
    for i in $(seq 1 120); do
        "$2" && return 0
        sleep 0.5
    done
    fail "$1 did not become ready within 60 s"
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }

postgis_there() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }

# The Docker engine and the container tests' images, only when asked. Checked on every run,
# also when both servers already answer: dockerd runs detached, not as a machine service,
# so a machine whose servers survived can still have lost it.
docker_engine() {
    if [ "${WITH_DOCKER:-0}" = "1" ]; then
        bash "$(dirname "$0")/docker-engine.sh"
    fi
}

# The binary-log MariaDB on 3307: its own data directory, started detached as root (a
# throwaway server: no service, no system tables shared with the server on 3306). Started
# only when neither it answers nor its process (its pid file) is alive: a server still
# starting is waited for, not started twice. Nothing else is stopped or restarted.
binlog_server() {
    binlog_up && return 0
    local pid_file="$BINLOG_DATADIR/mariadbd.pid"
    if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        wait_for "MariaDB with binary log (port $BINLOG_PORT)" binlog_up
        return 0
    fi
    if [ ! -d "$BINLOG_DATADIR/mysql" ]; then
        rm -rf "$BINLOG_DATADIR"
        mkdir -p "$BINLOG_DATADIR"
        mariadb-install-db --no-defaults --datadir="$BINLOG_DATADIR" --user=root \
            --auth-root-authentication-method=normal >>"$LOG" 2>&1 \
            || fail "mariadb-install-db for the binary-log server failed"
    fi
    setsid /usr/sbin/mariadbd --no-defaults --datadir="$BINLOG_DATADIR" --port="$BINLOG_PORT" \
        --bind-address=127.0.0.1 --socket="$BINLOG_DATADIR/s" --pid-file="$pid_file" \
        --log-bin="$BINLOG_DATADIR/bin" \
        --binlog-format=ROW --binlog-row-image=FULL --server-id=1 --user=root \
        --max-allowed-packet=1G \
        --log-error="$BINLOG_DATADIR/error.log" </dev/null >/dev/null 2>&1 &
    wait_for "MariaDB with binary log (port $BINLOG_PORT)" binlog_up
}

# The logical-decoding PostgreSQL on 5433: its own cluster (initdb refuses root, so it
# runs as the postgres user), started detached with pg_ctl; not a Debian cluster, so
# nothing of the shared server on 5432 changes. Started only when it does not answer.
logical_server() {
    logical_up && return 0
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ ! -s "$LOGICAL_PGDATA/PG_VERSION" ]; then
        rm -rf "$LOGICAL_PGDATA"
        mkdir -p "$LOGICAL_PGDATA"
        chown postgres:postgres "$LOGICAL_PGDATA"
        runuser -u postgres -- "$bin/initdb" -D "$LOGICAL_PGDATA" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1 || fail "initdb of the logical-decoding PostgreSQL failed"
    fi
    rm -f "$LOGICAL_PGDATA/postmaster.pid.stale"
    runuser -u postgres -- "$bin/pg_ctl" -D "$LOGICAL_PGDATA" -l "$LOGICAL_PGDATA/server.log" \
        -o "-p $LOGICAL_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$LOGICAL_PGDATA \
            -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=16" \
        start >>"$LOG" 2>&1 || true
    wait_for "PostgreSQL with wal_level=logical (port $LOGICAL_PG_PORT)" logical_up
}

if have_cmd mariadb-admin && have_cmd pg_isready && postgis_there && mysql_up && pg_up; then
    binlog_server
    logical_server
    docker_engine
    exit 0
fi

# --- install what is missing -------------------------------------------------------------
missing=()
{ [ -x /usr/sbin/mariadbd ] && have_cmd mariadb-admin; } || missing+=(mariadb-server mariadb-client)
{ ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && have_cmd pg_isready; } || missing+=(postgresql postgresql-client)
if ! postgis_there; then
    pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    missing+=("postgresql-${pg_major:-15}-postgis-3")
fi
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >>"$LOG" 2>&1 || fail "apt-get update failed"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
        || fail "apt-get install ${missing[*]} failed"
fi

# --- MariaDB -------------------------------------------------------------------------------
if ! mysql_up; then
    if ! mysql_alive; then
        $SUDO mkdir -p /run/mysqld
        $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
        if [ ! -d /var/lib/mysql/mysql ]; then
            $SUDO mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOG" 2>&1 \
                || fail "mariadb-install-db failed"
        fi
        $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd \
            -- --user=mysql --bind-address=127.0.0.1 --port="$MYSQL_PORT" >>"$LOG" 2>&1 \
            || fail "could not start MariaDB"
        wait_for MariaDB mysql_alive
    fi
    if ! mysql_up; then
        # Debian's root logs in through the unix socket only; let it in over TCP without a
        # password as well (development servers only).
        $SUDO mariadb -uroot >>"$LOG" 2>&1 <<'SQL' || fail "could not open root@127.0.0.1 on MariaDB"
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
        wait_for "MariaDB root login" mysql_up
    fi
fi

# --- PostgreSQL ----------------------------------------------------------------------------
if ! pg_up; then
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        $SUDO pg_createcluster "$version" main >>"$LOG" 2>&1 || fail "pg_createcluster failed"
    fi
    hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! $SUDO grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
        # Trust on loopback first, before Debian's peer/scram lines.
        $SUDO sed -i '1i local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >>"$LOG" 2>&1 \
            || fail "could not start PostgreSQL $version"
    else
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload >>"$LOG" 2>&1 || true
    fi
    wait_for PostgreSQL pg_up
fi

# --- MariaDB with the binary log (port 3307) -----------------------------------------------
binlog_server

# --- PostgreSQL with wal_level=logical (port 5433) -----------------------------------------
logical_server

# --- Docker engine (only when asked) -------------------------------------------------------
docker_engine
