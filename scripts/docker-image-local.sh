#!/usr/bin/env bash
# Build the Dockerfile on a machine that reaches no container registry, then run the
# image against the local servers. The two base images the Dockerfile names are made
# here, once, cached by name, from Debian's own packages and this machine's toolchain:
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm
#   rust:1-bookworm        the same plus gcc, libc6-dev, ca-certificates (and this
#                          machine's CA bundle, for a network that re-signs TLS), and the
#                          machine's stable Rust toolchain on PATH
# They stand in for the registry's images of those names; the Dockerfile is built
# unchanged. Needs a running engine (scripts/docker-engine.sh) and root. Not part of CI:
# from nothing it took 5 min 47 s here (the image build alone about 4 minutes).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "docker-image-local: run as root (debootstrap, chroot)" >&2; exit 1; }
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STAGE=$(mktemp -d -t docker-base.XXXXXX)
trap 'mountpoint -q "$STAGE/rust/proc" && umount "$STAGE/rust/proc"; rm -rf "$STAGE"' EXIT

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
    || ! docker image inspect rust:1-bookworm >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    echo "== debootstrap bookworm (minbase)" >&2
    debootstrap --variant=minbase bookworm "$STAGE/slim" "$MIRROR" >"$STAGE/debootstrap.log" 2>&1 \
        || { tail -20 "$STAGE/debootstrap.log" >&2; exit 1; }
    rm -rf "$STAGE/slim/var/lib/apt/lists/"*
    tar -C "$STAGE/slim" -c . | docker import - debian:bookworm-slim >/dev/null
    echo "== rust:1-bookworm from it and this machine's toolchain" >&2
    cp -a "$STAGE/slim" "$STAGE/rust"
    cp /etc/resolv.conf "$STAGE/rust/etc/resolv.conf"
    mount -t proc proc "$STAGE/rust/proc"
    { chroot "$STAGE/rust" apt-get update -qq \
        && chroot "$STAGE/rust" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends gcc libc6-dev ca-certificates; } >"$STAGE/apt.log" 2>&1 \
        || { tail -20 "$STAGE/apt.log" >&2; exit 1; }
    umount "$STAGE/rust/proc"
    rm -rf "$STAGE/rust/var/lib/apt/lists/"*
    cp /etc/ssl/certs/ca-certificates.crt "$STAGE/rust/etc/ssl/certs/ca-certificates.crt"
    toolchain="$(rustc --print sysroot)"
    mkdir -p "$STAGE/rust/usr/local/rustup/toolchains" "$STAGE/rust/usr/local/cargo/bin"
    cp -a "$toolchain" "$STAGE/rust/usr/local/rustup/toolchains/stable"
    for b in cargo rustc; do
        ln -s "/usr/local/rustup/toolchains/stable/bin/$b" "$STAGE/rust/usr/local/cargo/bin/$b"
    done
    tar -C "$STAGE/rust" -c . | docker import \
        -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV CARGO_HOME=/usr/local/cargo' - rust:1-bookworm >/dev/null
fi

echo "== docker build -t pgconverge:local $root" >&2
DOCKER_BUILDKIT=0 docker build -t pgconverge:local "$root" >"$STAGE/build.log" 2>&1 \
    || { tail -30 "$STAGE/build.log" >&2; exit 1; }
echo "== the image: user, size, and check against this machine's servers" >&2
docker image inspect pgconverge:local --format 'user {{.Config.User}}, entrypoint {{json .Config.Entrypoint}}, {{.Size}} bytes'
docker run --rm --network host pgconverge:local --version
docker run --rm --network host \
    -e MYSQL_URL="${MYSQL_URL:-mysql://root@127.0.0.1:3306}" \
    -e POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}" \
    pgconverge:local check
