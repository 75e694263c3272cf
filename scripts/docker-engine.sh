#!/usr/bin/env bash
# A real Docker engine for the container tests (tests/it/docker_engine.rs), on a Debian
# development or CI machine with no registry in reach:
#   - installs docker.io (and busybox-static) with apt-get when dockerd is missing;
#   - starts dockerd when no engine answers on /var/run/docker.sock;
#   - builds, once, the two local test images, cached by name:
#       pgconverge-test-busybox:1   busybox-static alone (a process that listens, or exits)
#       pgconverge-test-mariadb:1   this machine's own MariaDB server and its libraries,
#                                   with a data directory made by mariadb-install-db
# Idempotent; prints one line with the time it took. Called by scripts/dev-services.sh
# when WITH_DOCKER=1 (.ci/run sets it). Never for a machine holding real data: it
# installs and starts a daemon as root.
set -euo pipefail

start=$(date +%s.%N)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
LOG=$(mktemp -t docker-engine.XXXXXX)
STAGE=""
trap 'rm -f "$LOG"; [ -n "$STAGE" ] && $SUDO rm -rf "$STAGE"' EXIT
BUSYBOX_IMAGE=pgconverge-test-busybox:1
MARIADB_IMAGE=pgconverge-test-mariadb:1

fail() {
    echo "docker-engine: $*" >&2
    [ -s "$LOG" ] && tail -n 30 "$LOG" >&2
    exit 1
}

engine_up() { $SUDO docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
    $SUDO apt-get update -qq >>"$LOG" 2>&1 || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io busybox-static >>"$LOG" 2>&1 \
        || fail "could not install docker.io"
fi

# A dockerd killed with its machine's session (kill -9, no cleanup) leaves its pid files
# behind, and a new dockerd refuses to start while they name a process that still exists,
# a zombie nobody reaped or an unrelated one that got the number. Remove them unless they
# name a living dockerd/containerd.
clear_stale_pidfile() { # file, process name
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
        && ! grep -qE '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
        return 0
    fi
    $SUDO rm -f "$1"
}

if ! engine_up; then
    clear_stale_pidfile /var/run/docker.pid dockerd
    clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd
    # No systemd here: dockerd runs detached, its log beside the others.
    $SUDO sh -c 'nohup dockerd >/var/log/pgconverge-dockerd.log 2>&1 &'
    for _ in $(seq 1 120); do
        engine_up && break
        sleep 0.5
    done
    engine_up || { cat /var/log/pgconverge-dockerd.log >>"$LOG" 2>/dev/null; fail "dockerd did not answer within 60 s"; }
fi

if ! $SUDO docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
    STAGE=$(mktemp -d -t docker-image.XXXXXX)
    mkdir -p "$STAGE/bin"
    cp /bin/busybox "$STAGE/bin/busybox"
    for applet in sh true sleep nc; do ln -s busybox "$STAGE/bin/$applet"; done
    tar -C "$STAGE" -c . | $SUDO docker import - "$BUSYBOX_IMAGE" >>"$LOG" 2>&1 \
        || fail "could not import $BUSYBOX_IMAGE"
    $SUDO rm -rf "$STAGE"
    STAGE=""
fi

if ! $SUDO docker image inspect "$MARIADB_IMAGE" >/dev/null 2>&1; then
    server=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    [ -x "$server" ] || fail "no MariaDB server binary to build $MARIADB_IMAGE from (run scripts/dev-services.sh first)"
    STAGE=$(mktemp -d -t docker-image.XXXXXX)
    mkdir -p "$STAGE/usr/sbin" "$STAGE/usr/share" "$STAGE/tmp" "$STAGE/run/mysqld" "$STAGE/etc" "$STAGE/var/lib"
    chmod 1777 "$STAGE/tmp"
    cp "$server" "$STAGE/usr/sbin/mariadbd"
    # The server's shared libraries, at the paths the loader expects.
    for lib in $(ldd "$server" | grep -oE '/[^ ]+\.so[^ ]*'); do
        mkdir -p "$STAGE$(dirname "$lib")"
        cp -L "$lib" "$STAGE$lib"
    done
    cp -r /usr/share/mysql "$STAGE/usr/share/mysql"
    printf 'root:x:0:0:root:/root:/bin/sh\nmysql:x:100:101::/nonexistent:/bin/false\n' >"$STAGE/etc/passwd"
    printf 'root:x:0:\nmysql:x:101:\n' >"$STAGE/etc/group"
    # The data directory: system tables made by this machine's installer; root may log in
    # from any address with no password (the engine's bridge is not loopback).
    cat >"$STAGE/init.sql" <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
SQL
    mariadb-install-db --no-defaults --user=root --datadir="$STAGE/var/lib/mysql" \
        --auth-root-authentication-method=normal --skip-test-db >>"$LOG" 2>&1 \
        || fail "mariadb-install-db failed"
    cp /bin/busybox "$STAGE/usr/sbin/busybox"
    tar -C "$STAGE" -c . | $SUDO docker import \
        -c 'CMD ["/usr/sbin/mariadbd", "--no-defaults", "--user=root", "--datadir=/var/lib/mysql", "--bind-address=0.0.0.0", "--port=3306", "--socket=/run/mysqld/mysqld.sock", "--init-file=/init.sql", "--skip-log-error", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--performance-schema=OFF"]' \
        - "$MARIADB_IMAGE" >>"$LOG" 2>&1 || fail "could not import $MARIADB_IMAGE"
fi

end=$(date +%s.%N)
printf 'docker-engine: engine %s up, images ready in %.1f s\n' \
    "$($SUDO docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" \
    "$(echo "$end - $start" | bc 2>/dev/null || python3 -c "print($end - $start)")" >&2
