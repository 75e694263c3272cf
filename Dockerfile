# pgconverge as a container image: built with the Rust toolchain, run on Debian slim as
# a non-root user. No secrets are baked in: connections come from the environment
# (MYSQL_URL, POSTGRES_URL, SOURCE_URL or the per-part variables), at run time.
#
#   docker build -t pgconverge .
#   mkdir -p exports && sudo chown 10001:10001 exports   # a bind mount must be writable by uid 10001
#   docker run --rm -e MYSQL_URL -e POSTGRES_URL -v "$PWD/exports:/work/exports" \
#       pgconverge migrate alkemio --out /work/exports --yes

# The build stage compiles C too: mysql_async's binlog feature (delta chains) builds zstd
# from its bundled sources with the image's gcc (the cc crate; no pkg-config, no cmake),
# and links it statically, so the runtime image needs no library for it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY profiles ./profiles
RUN cargo build --release --locked && strip target/release/pgconverge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /work --create-home pgconverge \
 && mkdir -p /work/exports && chown 10001:10001 /work/exports
COPY --from=build /src/target/release/pgconverge /usr/local/bin/pgconverge
USER 10001:10001
WORKDIR /work
# The run log and the import journals live with the exports (a mounted volume; /work/exports
# exists in the image owned by uid 10001, so a named volume mounted there starts writable).
ENV PGCONVERGE_RUN_LOG=/work/exports/migration_log.jsonl
ENTRYPOINT ["pgconverge"]
CMD ["--help"]
