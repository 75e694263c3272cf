//! The integration tests: one binary, a module per subcommand, all against the real
//! MariaDB and PostgreSQL servers (TEST_MYSQL_URL / TEST_POSTGRES_URL).

#[allow(dead_code)] // shared helpers; not every module uses each one
mod harness;

mod adapt;
mod binary;
mod charset;
mod check;
mod collisions;
mod computed;
mod deep;
mod delta;
mod delta_log;
mod delta_outcome;
mod delta_zone;
mod demo;
mod deploy;
mod docker;
mod docker_engine;
mod docs;
mod exact;
mod export;
mod fixture;
mod import;
mod indexes;
mod keys;
mod log_run;
mod mapping;
mod memory;
mod migrate;
mod outcome;
mod paths;
mod pgdelta;
mod pgsource;
mod proxy;
mod reliability;
mod rounding;
mod servers;
mod spatial;
mod tls;
mod verify;
