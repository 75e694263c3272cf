//! Command-line types only (clap derive). No I/O and no defaults that depend on the
//! environment: flags are parsed here and resolved into checked configuration by
//! `config.rs`, which applies flag > environment > `.env` > default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pgconverge",
    version,
    about = "Move a whole MySQL/MariaDB (or PostgreSQL) database into an existing PostgreSQL schema through CSV files",
    long_about = "Move a whole MySQL/MariaDB (or PostgreSQL) database into an existing PostgreSQL schema \
        through CSV files: one consistent export, one all-or-nothing import, and a verification of \
        every row (and with --deep, every value).\n\n\
        Configuration: flag > environment > .env in the working directory > default.\n\
        Exit codes: 0 success, 1 verification found a difference, 2 any error (the target \
        unchanged), 3 needs attention (the target may hold what the report cannot vouch for: \
        the message says how to ask the server).",
    after_help = "Examples, with the application stopped:\n  \
        pgconverge check\n  \
        pgconverge export alkemio            # csv_exports/alkemio/<timestamp>/\n  \
        pgconverge import csv_exports/alkemio/<timestamp>\n  \
        pgconverge verify csv_exports/alkemio/<timestamp> --deep --source\n  \
        pgconverge migrate alkemio --deep --yes   # the four in one run"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global")]
pub struct GlobalArgs {
    /// Run log (JSON Lines) that every command appends to [env: PGCONVERGE_RUN_LOG] [default: migration_log.jsonl]
    #[arg(long, global = true, value_name = "PATH")]
    pub run_log: Option<PathBuf>,
    /// The .env file read for configuration [default: .env in the working directory]
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// No progress bars on stderr
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export a MySQL (or PostgreSQL) database (profile `alkemio`, `kratos`, or a database name) to CSV files and a manifest
    Export(ExportArgs),
    /// Load an export into PostgreSQL in one transaction (all or nothing)
    Import(ImportArgs),
    /// Compare the target with the export: row counts and FK orphans, every value with --deep
    /// (against the live source with --source)
    Verify(VerifyArgs),
    /// Append a manual entry to the run log
    LogRun(LogRunArgs),
    /// Print the run log as a table
    Runs(RunsArgs),
    /// Export, import and verify in one run: tables load while later ones are still being
    /// exported, in one import transaction; the export directory is kept as the audit trail
    Migrate(Box<MigrateArgs>),
    /// Check that both servers are reachable: versions, databases, privileges
    Check(CheckArgs),
    /// End a target's delta chain: forget where it stands (pgconverge.state); the data stays
    DeltaEnd(DeltaEndArgs),
    /// The built-in profiles, which are mapping files: `profile show alkemio` prints one
    #[command(
        subcommand,
        after_help = "Examples:\n  pgconverge profile list\n  pgconverge profile show kratos"
    )]
    Profile(ProfileCommand),
}

impl Command {
    /// Was `--json` asked for? A failure then prints its JSON object too.
    pub fn json(&self) -> bool {
        match self {
            Command::Export(a) => a.json,
            Command::Import(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Runs(a) => a.json,
            Command::Migrate(a) => a.json,
            Command::Check(a) => a.json,
            Command::DeltaEnd(a) => a.json,
            Command::LogRun(_) | Command::Profile(_) => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print a built-in profile as the mapping file it is (a starting point for --map)
    Show(ProfileShowArgs),
    /// List the built-in profiles
    #[command(after_help = "Examples:\n  pgconverge profile list")]
    List,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge profile show alkemio > alkemio.toml   # then edit, and use it with --map")]
pub struct ProfileShowArgs {
    /// `alkemio` or `kratos`
    pub name: String,
}

/// MySQL connection options; each also reads the variable named in its help.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "MySQL connection")]
pub struct MysqlArgs {
    /// MySQL URL, mysql://user:password@host:port[/database][?ssl-mode=...&ssl-ca=...].
    /// A password in a flag shows in `ps` to other users of this machine: prefer the
    /// environment or .env [env: MYSQL_URL]
    #[arg(long, value_name = "URL")]
    pub mysql_url: Option<String>,
    /// MySQL host [env: MYSQL_HOST] [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub mysql_host: Option<String>,
    /// MySQL port [env: MYSQL_PORT] [default: 3306]
    #[arg(long, value_name = "PORT")]
    pub mysql_port: Option<String>,
    /// MySQL user [env: MYSQL_USER] [default: root]
    #[arg(long, value_name = "USER")]
    pub mysql_user: Option<String>,
    /// MySQL password; prefer the environment or .env (a flag shows in `ps`) [env: MYSQL_PASSWORD]
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub mysql_password: Option<String>,
    /// Container running MySQL: when host and port are unset, found through the Docker
    /// engine (DOCKER_HOST); recorded in the manifest [env: MYSQL_CONTAINER]
    #[arg(long, value_name = "NAME")]
    pub mysql_container: Option<String>,
    /// TLS: disable, prefer (TLS if offered, certificate not checked), require, verify-ca,
    /// verify-full (MySQL's DISABLED ... VERIFY_IDENTITY work too) [env: MYSQL_SSL_MODE]
    /// [default: prefer]
    #[arg(long, value_name = "MODE")]
    pub mysql_ssl_mode: Option<String>,
    /// PEM file of the certificate authorities to trust for verify-ca/verify-full
    /// [env: MYSQL_SSL_CA] [default: the Mozilla root set]
    #[arg(long, value_name = "FILE")]
    pub mysql_ssl_ca: Option<String>,
}

/// PostgreSQL connection options; each also reads the variable named in its help.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "PostgreSQL connection (the target)")]
pub struct PostgresArgs {
    /// PostgreSQL URL, postgres://user:password@host:port[/database][?sslmode=...&sslrootcert=...].
    /// A password in a flag shows in `ps` to other users of this machine: prefer the
    /// environment or .env [env: POSTGRES_URL]
    #[arg(long, value_name = "URL")]
    pub postgres_url: Option<String>,
    /// PostgreSQL host [env: POSTGRES_HOST] [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub postgres_host: Option<String>,
    /// PostgreSQL port [env: POSTGRES_PORT] [default: 5432]
    #[arg(long, value_name = "PORT")]
    pub postgres_port: Option<String>,
    /// PostgreSQL user [env: POSTGRES_USER] [default: postgres]
    #[arg(long, value_name = "USER")]
    pub postgres_user: Option<String>,
    /// PostgreSQL password; prefer the environment or .env (a flag shows in `ps`) [env: POSTGRES_PASSWORD]
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub postgres_password: Option<String>,
    /// Container running PostgreSQL: when host and port are unset, found through the
    /// Docker engine (DOCKER_HOST) [env: POSTGRES_CONTAINER]
    #[arg(long, value_name = "NAME")]
    pub postgres_container: Option<String>,
    /// TLS, as libpq's sslmode: disable, prefer (TLS if offered, certificate not checked),
    /// require, verify-ca, verify-full [env: POSTGRES_SSLMODE] [default: prefer]
    #[arg(long, value_name = "MODE")]
    pub postgres_sslmode: Option<String>,
    /// PEM file of the certificate authorities to trust for verify-ca/verify-full
    /// [env: POSTGRES_SSLROOTCERT] [default: the Mozilla root set]
    #[arg(long, value_name = "FILE")]
    pub postgres_sslrootcert: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge export alkemio                               # csv_exports/alkemio/<timestamp>/\n  \
    pgconverge export shop --map v3.toml --tables user,order\n  \
    pgconverge export app --source-url postgres://app@old-db/app_v1 --json")]
pub struct ExportArgs {
    /// `alkemio` (database $ALKEMIO_DB), `kratos` (database $KRATOS_DB) or any database name
    pub source: String,
    /// Mapping file (TOML) saying how the source maps onto the target; replaces a built-in
    /// profile entirely, and is stored in the export (mapping.toml) for the import
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// The source, mysql://, mariadb://, postgres:// or postgresql://user:password@host:port/db
    /// (a PostgreSQL source is read in schema `source_schema`, default public) [env:
    /// SOURCE_URL] [default: the MySQL settings]
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub source_url: Option<String>,
    /// Root of the export directories
    #[arg(long, default_value = "csv_exports", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub read: ReadOptions,
    /// First remove what interrupted exports left beside this one (`.<stamp>.partial-<pid>`
    /// directories of processes that are gone; never one that still runs)
    #[arg(long)]
    pub clean_partials: bool,
    /// Start a delta chain: a full export that also records the binary log position of its
    /// snapshot (MySQL/MariaDB with log_bin=ON, binlog_format=ROW, binlog_row_image=FULL)
    #[arg(long, help_heading = "Delta chain", conflicts_with = "delta_from")]
    pub delta_base: bool,
    /// Export only what changed since this export of the chain (the base or the previous
    /// delta): keys from the binary log, rows from a new snapshot. Uses that export's
    /// mapping and tables
    #[arg(long, value_name = "EXPORT_DIR", help_heading = "Delta chain")]
    pub delta_from: Option<PathBuf>,
    /// Tables without a primary key or unique NOT NULL key (or with a key of a type a delta
    /// cannot follow) are copied whole in each delta that touches them, instead of refused
    #[arg(long, help_heading = "Delta chain")]
    pub delta_full_copy: bool,
    /// JSON on stdout (export directory, counts, warnings) instead of the table
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    #[command(flatten)]
    pub mysql: MysqlArgs,
}

/// What the export reads and how: `export` and `migrate`.
#[derive(Debug, Args, Clone)]
pub struct ReadOptions {
    /// Only these tables (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub tables: Vec<String>,
    /// Never these tables (comma-separated), in addition to the mapping's exclusions
    #[arg(long, value_delimiter = ',', value_name = "C,D")]
    pub exclude: Vec<String>,
    /// Parallel readers, all on one synchronised snapshot
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub jobs: usize,
    /// With --jobs > 1, read a table estimated at more rows than this as --jobs key ranges
    /// in parallel, one file each (one-column integer or char/varchar primary key only).
    /// Off by default: it pays only when the MySQL server has cores to spare (measured
    /// slower when the server shares the client's two cores)
    #[arg(long, value_name = "ROWS")]
    pub split_rows: Option<u64>,
    /// What to do with values that cannot arrive unchanged (NUL in text, invalid UTF-8,
    /// \u0000 in JSON, text in a non-UTF-8 charset with no Unicode equivalent): `error` stops
    /// naming table, column and key; `fix` strips NULs, replaces invalid UTF-8 with U+FFFD,
    /// drops \u0000 and keeps the server's `?` for unconvertible text, counting every change
    /// in the manifest
    #[arg(long, value_enum, default_value = "error")]
    pub on_invalid: OnInvalid,
}

/// Where and how the import loads: `import` and `migrate`.
#[derive(Debug, Args, Clone)]
pub struct LoadOptions {
    /// Target database [default: the mapping's target_db, else the source database's name]
    #[arg(long, value_name = "DB")]
    pub target_db: Option<String>,
    /// Target schema [default: the mapping's schema, else public]
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// A table of the export missing in the target is an error instead of a warning
    #[arg(long)]
    pub strict: bool,
    /// Allow TRUNCATE ... CASCADE to empty tables outside the import that hold rows
    #[arg(long)]
    pub allow_cascade: bool,
    /// Commit even when a foreign key involving an imported table has rows without a
    /// parent (they are still counted and reported); by default that refuses the COMMIT
    #[arg(long)]
    pub allow_orphans: bool,
    /// Do not ANALYZE the loaded tables before COMMIT (by default they are, so the
    /// application's first queries are planned with statistics)
    #[arg(long)]
    pub no_analyze: bool,
    /// Drop a table's indexes right before its COPY and build them right after it, in the
    /// same transaction, exactly as they were (constraints and the foreign keys that
    /// reference them included). auto: secondary indexes of tables loaded with at least
    /// 10,000 rows, their keys too from 100,000 rows; always: every table with indexes;
    /// never: indexes stay during the load. The flag alone means always
    /// (after the export directory, or as --rebuild-indexes=always).
    /// `--dry-run` lists each table's choice and why
    #[arg(
        long,
        value_enum,
        default_value_t = RebuildIndexes::Auto,
        num_args = 0..=1,
        default_missing_value = "always",
        value_name = "WHEN"
    )]
    pub rebuild_indexes: RebuildIndexes,
    /// maintenance_work_mem for the index builds (e.g. 512MB, 2GB) [default: the larger
    /// of the server's setting and its shared_buffers]
    #[arg(long, value_name = "SIZE", value_parser = memory_kb)]
    pub maintenance_work_mem: Option<u64>,
    /// How rows travel to PostgreSQL. auto: tables whose every column type has an exact
    /// converter (text, varchar, char, json, jsonb, enums, bytea, uuid, bool, integers,
    /// floats, date, time, timestamp[tz]) are converted here to binary COPY, which the
    /// server loads ~40% faster; the rest, and any table holding a value outside the
    /// converters' strict forms (the transaction then starts over), go as CSV.
    /// csv: every table as CSV, exactly as the file is
    #[arg(long, value_enum, default_value_t = CopyFormat::Auto, value_name = "FORMAT")]
    pub copy_format: CopyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnInvalid {
    Error,
    Fix,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge import csv_exports/alkemio/20261121_050607 --dry-run\n  \
    pgconverge import csv_exports/alkemio/20261121_050607 --rehearse   # load, check, roll back\n  \
    pgconverge import csv_exports/alkemio/20261121_050607 --yes\n  \
    pgconverge import csv_exports/shop/20261121_050607 --map v3.toml --target-db shop_v3")]
pub struct ImportArgs {
    /// An export directory (holding migration_manifest.json)
    pub export_dir: PathBuf,
    /// A mapping file to use instead of the one the export stored; refused unless its
    /// source-side keys (skip, where, query, drop, encode, never_copy) are the same
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// Print the plan and the SQL, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run the whole import (COPYs, hooks, sequences, foreign-key checks), then ROLLBACK:
    /// finds what only the load itself can (a UNIQUE or CHECK constraint only the target
    /// has, a row no partition takes, a failing hook) and leaves the target unchanged
    #[arg(long, conflicts_with = "dry_run")]
    pub rehearse: bool,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short)]
    pub yes: bool,
    /// Import an export that carries no checksums (written by the old shell scripts):
    /// its files cannot be checked for changes
    #[arg(long)]
    pub accept_unverified: bool,
    #[command(flatten)]
    pub load: LoadOptions,
    /// JSON on stdout (per-table rows and seconds, skipped tables) instead of the table;
    /// with --dry-run, the plan and the SQL as JSON
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopyFormat {
    Auto,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RebuildIndexes {
    Auto,
    Always,
    Never,
}

/// A memory size as PostgreSQL writes it (`64MB`, `1GB`, `512kB`; plain digits are kB),
/// in kB.
fn memory_kb(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write it as 512MB or 2GB"))?;
    let factor = match unit.trim() {
        "" | "kB" | "KB" => 1,
        "MB" => 1024,
        "GB" => 1024 * 1024,
        "TB" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use kB, MB or GB"
            ));
        }
    };
    // What PostgreSQL accepts on a 64-bit server: 1MB to INT_MAX kB.
    match n.checked_mul(factor) {
        Some(kb) if (1024..=i32::MAX as u64).contains(&kb) => Ok(kb),
        _ => Err(format!(
            "`{text}` is outside what PostgreSQL accepts (1MB to 2047GB)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_as_postgresql_writes_them() {
        let cases = [
            ("512MB", Ok(512 * 1024)),
            ("2GB", Ok(2 * 1024 * 1024)),
            ("1GB", Ok(1024 * 1024)),
            ("65536", Ok(65536)),
            ("4096kB", Ok(4096)),
        ];
        for (text, want) in cases {
            assert_eq!(memory_kb(text), want, "{text}");
        }
        for bad in ["", "MB", "1.5GB", "12 parsecs", "0", "512kB", "10TB"] {
            assert!(memory_kb(bad).is_err(), "{bad}");
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge verify csv_exports/alkemio/20261121_050607 --source\n  \
    pgconverge verify csv_exports/alkemio/20261121_050607 --deep --source --json")]
pub struct VerifyArgs {
    /// An export directory (holding migration_manifest.json)
    pub export_dir: PathBuf,
    /// Target database [default: as for import]
    #[arg(long, value_name = "DB")]
    pub target_db: Option<String>,
    /// Target schema [default: as for import]
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// The mapping file the import used, when it was not the export's own
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// With --source: the source as a URL (mysql:// or postgres://) [env: SOURCE_URL]
    /// [default: the MySQL settings]
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub source_url: Option<String>,
    /// Also count rows in the MySQL source (reports drift since the export); with
    /// --deep, compare every value with the live source instead of the export's files
    #[arg(long)]
    pub source: bool,
    /// Compare every value of every row, not just counts: with the export's files, or
    /// (with --source) with the live source read through MySQL's binary protocol
    #[arg(long)]
    pub deep: bool,
    /// With --deep, list at most this many differences (all are counted)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_diffs: usize,
    /// Skip the orphan-row check of foreign keys
    #[arg(long)]
    pub no_fk: bool,
    /// JSON on stdout
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub mysql: MysqlArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge migrate alkemio --yes\n  \
    pgconverge migrate app --map v3.toml --target-db app_v3 --deep --yes --json\n  \
    pgconverge migrate kratos --wait-for-require 10m --yes     # a Job beside the schema Job\n  \
    pgconverge migrate app --online --cutover-file /tmp/cutover --yes   # a live database")]
pub struct MigrateArgs {
    /// `alkemio` (database $ALKEMIO_DB), `kratos` (database $KRATOS_DB) or any database name
    pub source: String,
    /// Mapping file (TOML); replaces a built-in profile entirely, stored in the export
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,
    /// The source as a URL (mysql:// or postgres://) [env: SOURCE_URL] [default: the
    /// MySQL settings]
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub source_url: Option<String>,
    /// Root of the export directories (the export is kept as the audit trail)
    #[arg(long, default_value = "csv_exports", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub read: ReadOptions,
    #[command(flatten)]
    pub load: LoadOptions,
    /// After the counts, compare every value with the live source (verify --deep --source)
    #[arg(long)]
    pub deep: bool,
    /// With --deep, list at most this many differences
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_diffs: usize,
    /// Wait up to this long (`90s`, `10m`, `1h`) for the mapping's `[import] require` to
    /// hold before starting, polling every 5 s: a Job started beside the schema Job
    /// waits for it instead of failing
    #[arg(long, value_name = "DURATION")]
    pub wait_for_require: Option<String>,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short)]
    pub yes: bool,
    /// JSON on stdout (export directory, tables, verification) instead of the tables
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Move a live database: a delta chain's base and catch-up deltas while the
    /// application runs, then the cutover and the last delta (docs/delta.md)
    #[arg(
        long,
        help_heading = "Online (a live MySQL/MariaDB or PostgreSQL source)"
    )]
    pub online: bool,
    /// With --online: wait until this file exists to start the cutover (for Jobs; on a
    /// terminal, Enter is asked for instead)
    #[arg(
        long,
        value_name = "PATH",
        requires = "online",
        help_heading = "Online (a live MySQL/MariaDB or PostgreSQL source)"
    )]
    pub cutover_file: Option<PathBuf>,
    /// With --online: catch-up ends with a delta of at most this many changed rows
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "N",
        help_heading = "Online (a live MySQL/MariaDB or PostgreSQL source)"
    )]
    pub catch_up_rows: u64,
    /// With --online: catch-up ends after this many deltas however large
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        help_heading = "Online (a live MySQL/MariaDB or PostgreSQL source)"
    )]
    pub max_deltas: usize,
    #[command(flatten)]
    pub mysql: MysqlArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge log-run started \"maintenance window opened\"\n  \
    pgconverge log-run completed")]
pub struct LogRunArgs {
    /// started | in_progress | completed | rolled_back | failed | unknown | partially_committed
    pub status: String,
    /// Free text
    pub message: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge runs\n  \
    pgconverge runs --json | jq '.[-1]'")]
pub struct RunsArgs {
    /// JSON on stdout
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Also read this legacy log ({"migration_runs":[...]}) [default: migration_log.json beside the run log, if present]
    #[arg(long, value_name = "PATH")]
    pub legacy: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge delta-end alkemio             # after the last delta is imported and verified\n  \
    pgconverge delta-end shop --schema v3\n  \
    pgconverge delta-end app --source-url postgres://app@old-db/app   # also drops the chain's slot\n  \
    pgconverge delta-end app --source-url postgres://app@old-db/app --slot pgconverge_app_20261205_142740")]
pub struct DeltaEndArgs {
    /// `alkemio`, `kratos` or a database name: the target is its target database and schema
    pub target: String,
    /// A PostgreSQL source: its URL, to drop the chain's logical replication slot there
    /// [env: SOURCE_URL]
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub source_url: Option<String>,
    /// Drop this replication slot on the source (--source-url) even when no target knows
    /// it (a base interrupted before its import; `check` lists pgconverge's slots)
    #[arg(long, value_name = "NAME", help_heading = "Source")]
    pub slot: Option<String>,
    /// Target database [default: the profile's target, else the name given]
    #[arg(long, value_name = "DB")]
    pub target_db: Option<String>,
    /// Target schema [default: the profile's schema, else public]
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// JSON on stdout
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pgconverge check                  # both servers, and where each setting came from\n  \
    pgconverge check alkemio kratos   # and these source and target databases\n  \
    pgconverge check --source-url postgres://app@old-db/app_v1 app")]
pub struct CheckArgs {
    /// Profiles or databases whose source and target must exist [default: none, the
    /// servers only]
    pub sources: Vec<String>,
    /// Target database to check (with a single source)
    #[arg(long, value_name = "DB")]
    pub target_db: Option<String>,
    /// The source as a URL (mysql:// or postgres://) [env: SOURCE_URL] [default: the
    /// MySQL settings]
    #[arg(long, value_name = "URL", help_heading = "Source")]
    pub source_url: Option<String>,
    /// JSON on stdout
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    #[command(flatten)]
    pub mysql: MysqlArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
}
