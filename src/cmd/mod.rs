//! Dispatch: resolve what every command shares (configuration layers, run-log path,
//! progress policy) once, then hand over to one module per subcommand. Each of those
//! resolves its arguments into a job, runs it through the domain modules, and reports:
//! no SQL, no file I/O and no hand-built JSON here.

pub mod check;
pub mod delta_end;
pub mod export;
pub mod import;
pub mod log_run;
pub mod migrate;
pub mod online;
pub mod profile;
pub mod runs;
pub mod verify;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{
    Cli, Command, CopyFormat, LoadOptions, MysqlArgs, OnInvalid, PostgresArgs, ReadOptions,
    RebuildIndexes,
};
use crate::config::{self, Layers, ServerConfig};
use crate::progress::Progress;
use crate::store::runlog::Recorder;

/// What every subcommand receives.
pub struct Ctx {
    pub layers: Layers,
    pub run_log: PathBuf,
    pub quiet: bool,
    /// The invocation, passwords redacted, for the run log.
    pub command_line: String,
    /// The signals received so far.
    interrupt: tokio::sync::watch::Receiver<Signals>,
}

/// The interruptions so far: how many, and the words for the first.
#[derive(Debug, Clone, Copy, Default)]
struct Signals {
    count: u32,
    first: &'static str,
}

impl Ctx {
    /// Resolves when the user interrupts (Ctrl-C, SIGTERM, SIGHUP), with what to say.
    pub async fn interrupted(&self) -> &'static str {
        self.signalled(1).await
    }

    /// Resolves once `n` signals have come, with the words for the first.
    async fn signalled(&self, n: u32) -> &'static str {
        let mut rx = self.interrupt.clone();
        match rx.wait_for(|s| s.count >= n).await {
            Ok(s) => s.first,
            Err(_) => std::future::pending().await,
        }
    }

    /// Run `work` unless the user interrupts first: then it is dropped (a transaction
    /// rolls back, a connection closes) and the error says which signal came.
    pub async fn interruptible<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            r = work => r,
            why = self.interrupted() => Err(anyhow::anyhow!(why)),
        }
    }

    /// `interruptible`, for work that ends with COMMIT: once `commit` says COMMIT was
    /// sent, the outcome is the server's answer. A signal then only says that it waits
    /// for it; a second one stops waiting, and the outcome is unknown (the error gives
    /// the transaction id and the SQL that asks the server later).
    pub async fn interruptible_commit<T>(
        &self,
        work: impl Future<Output = Result<T>>,
        commit: &crate::import::transaction::CommitSent,
    ) -> Result<T> {
        tokio::pin!(work);
        let why = tokio::select! {
            r = &mut work => return r,
            why = self.interrupted() => why,
        };
        let Some(xid) = commit.xid() else {
            return Err(anyhow::anyhow!(why));
        };
        eprintln!(
            "{why} while the answer to COMMIT is awaited: waiting for it, since it decides \
             the outcome (interrupt again to stop waiting; the outcome is then unknown)"
        );
        tokio::select! {
            r = &mut work => r,
            _ = self.signalled(2) => Err(anyhow::anyhow!(
                "{why}, and interrupted again while the answer to COMMIT of transaction {xid} \
                 was awaited"
            )),
        }
    }

    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet)
    }

    /// Run-log entries of this invocation.
    pub fn recorder(&self) -> Recorder {
        Recorder::new(&self.run_log, &self.command_line)
    }
}

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Verification found a difference (exit 1).
    Difference,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Difference => ExitCode::from(1),
        }
    }
}

/// The MySQL connection, resolved through Docker when only a container is named.
pub async fn mysql_config(ctx: &Ctx, args: &MysqlArgs) -> Result<ServerConfig> {
    let mut cfg = config::mysql(args, &ctx.layers)?;
    crate::db::docker::apply(&mut cfg, 3306, &ctx.layers).await?;
    Ok(cfg)
}

/// The source: `--source-url` / `SOURCE_URL` (MySQL or PostgreSQL), else the MySQL
/// settings (resolved through Docker when only a container is named).
pub async fn source_config(
    ctx: &Ctx,
    url: Option<&str>,
    my: &MysqlArgs,
) -> Result<(config::Engine, ServerConfig)> {
    let (engine, mut cfg) = config::source(url, my, &ctx.layers)?;
    if engine == config::Engine::Mysql {
        crate::db::docker::apply(&mut cfg, 3306, &ctx.layers).await?;
    }
    Ok((engine, cfg))
}

/// Where the source's tables live: the MySQL database, or a PostgreSQL source's
/// `source_schema`.
pub fn source_in(
    engine: config::Engine,
    cfg: ServerConfig,
    database: String,
    mapping: &crate::mapping::Mapping,
) -> crate::db::source::Source {
    let namespace = match engine {
        config::Engine::Mysql => database.clone(),
        config::Engine::Postgresql => mapping.source_schema().to_string(),
    };
    crate::db::source::Source {
        engine,
        cfg,
        database,
        namespace,
    }
}

/// The source an export reads (`export`, `migrate`): the mapping's source database,
/// unless a PostgreSQL URL names its own.
pub async fn export_source(
    ctx: &Ctx,
    url: Option<&str>,
    my: &MysqlArgs,
    mapping: &crate::mapping::Mapping,
) -> Result<crate::db::source::Source> {
    let (engine, cfg) = source_config(ctx, url, my).await?;
    let db = &mapping.source_db;
    let database = cfg.database_or(
        (engine == config::Engine::Mysql || cfg.database.is_none()).then_some(db.as_str()),
        db,
        "the source database",
    )?;
    if let Some(note) = cfg
        .database
        .as_deref()
        .and_then(|u| mapping.url_database_mismatch(u))
    {
        ctx.progress().warn(note);
    }
    Ok(source_in(engine, cfg, database, mapping))
}

/// What the export does with a value PostgreSQL would refuse (`--on-invalid`).
pub fn export_job_policy(read: &ReadOptions) -> crate::codec::encode::InvalidPolicy {
    match read.on_invalid {
        OnInvalid::Error => crate::codec::encode::InvalidPolicy::Error,
        OnInvalid::Fix => crate::codec::encode::InvalidPolicy::Fix,
    }
}

/// The export's job from the read options (`export`, `migrate`).
pub fn export_job(
    source: crate::db::source::Source,
    mapping: crate::mapping::Mapping,
    read: &ReadOptions,
) -> crate::export::Job {
    crate::export::Job {
        source,
        mapping,
        only: read.tables.clone(),
        exclude: read.exclude.clone(),
        jobs: read.jobs,
        split_rows: read.split_rows,
        policy: export_job_policy(read),
        order: Vec::new(),
        delta_base: false,
        delta_full_copy: false,
    }
}

/// The import's options from the load options (`import`, `migrate`); a rehearsal is
/// `import`'s alone.
pub fn load_options(
    load: &LoadOptions,
    mapping: &crate::mapping::Mapping,
    legacy: bool,
) -> crate::import::plan::Options {
    crate::import::plan::Options {
        schema: mapping.target_schema(load.schema.as_deref()),
        strict: load.strict,
        rebuild_indexes: match load.rebuild_indexes {
            RebuildIndexes::Auto => crate::import::plan::Rebuild::Auto,
            RebuildIndexes::Always => crate::import::plan::Rebuild::Always,
            RebuildIndexes::Never => crate::import::plan::Rebuild::Never,
        },
        maintenance_work_mem_kb: load.maintenance_work_mem,
        row_estimates: Default::default(),
        delta: false,
        legacy,
        binary: load.copy_format == CopyFormat::Auto,
        allow_orphans: load.allow_orphans,
        analyze: !load.no_analyze,
        rehearse: false,
    }
}

/// The PostgreSQL connection, resolved through Docker when only a container is named.
pub async fn postgres_config(ctx: &Ctx, args: &PostgresArgs) -> Result<ServerConfig> {
    let mut cfg = config::postgres(args, &ctx.layers)?;
    crate::db::docker::apply(&mut cfg, 5432, &ctx.layers).await?;
    Ok(cfg)
}

/// Catch Ctrl-C, SIGTERM and SIGHUP from now on (so none of them kills the process in
/// the middle of a step) and count them on the returned channel.
fn catch_interrupts() -> Result<tokio::sync::watch::Receiver<Signals>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(Signals::default());
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let why = tokio::select! {
                _ = int.recv() => "interrupted (Ctrl-C)",
                _ = term.recv() => "interrupted (SIGTERM)",
                _ = hup.recv() => "interrupted (SIGHUP)",
            };
            tx.send_modify(|s| {
                if s.count == 0 {
                    s.first = why;
                }
                s.count += 1;
            });
        }
    });
    Ok(rx)
}

/// A mapping file given with `--map`: its path as shown in messages, and its text.
pub fn read_map(path: Option<&std::path::Path>) -> Result<Option<(String, String)>> {
    use anyhow::Context;
    let Some(path) = path else {
        return Ok(None);
    };
    let text = crate::store::file::read_text(
        path,
        crate::store::file::Links::Follow,
        crate::memory::MAPPING_MAX,
        "mapping file",
    )
    .with_context(|| format!("reading mapping file {}", path.display()))?;
    let text = crate::mapping::hookfiles::inline(path, &text)?;
    Ok(Some((path.display().to_string(), text)))
}

/// What a new export starts from (`export` and `migrate`): the mapping of `source`
/// (a profile, or the `--map` file that replaces it) and the export directory it will
/// be written to, named now.
pub fn new_export(
    ctx: &Ctx,
    source: &str,
    map: Option<&std::path::Path>,
    out: &std::path::Path,
) -> Result<(crate::mapping::Mapping, crate::store::export_dir::NewExport)> {
    let map = read_map(map)?;
    let mapping = crate::mapping::Mapping::resolve(
        source,
        map.as_ref().map(|(o, t)| (o.as_str(), t.clone())),
        &ctx.layers,
    )?;
    let target = crate::store::export_dir::new_export(
        out,
        &mapping.name,
        chrono::Utc::now(),
        std::process::id(),
    );
    Ok((mapping, target))
}

/// The mapping an export is imported (or verified) with: the one it stored, or the
/// file given with `--map` when it reads the same data.
pub fn export_mapping(
    ctx: &Ctx,
    dir: &crate::store::export_dir::ExportDir,
    manifest: &crate::store::manifest::Loaded,
    map: Option<&std::path::Path>,
) -> Result<crate::mapping::Mapping> {
    let stored = crate::store::open::mapping(dir, manifest)?;
    let mapping = crate::mapping::Mapping::stored(
        &manifest.profile(),
        &manifest.source_database(),
        stored,
        &ctx.layers,
    )?;
    match read_map(map)? {
        Some((origin, text)) => mapping.replace_for_import(&origin, text),
        None => Ok(mapping),
    }
}

/// Print a result as JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    crate::out::json(value)
}

/// Print the result of a command that moved or compared data (export, import, verify,
/// migrate) as JSON on stdout, with the process's peak memory (`peak_rss_bytes`).
pub fn print_result(value: &impl serde::Serialize) -> Result<()> {
    crate::out::result(value)
}

pub async fn run(cli: Cli) -> Result<Outcome> {
    let explicit_env = cli.global.env_file.is_some();
    let env_file = cli.global.env_file.clone().unwrap_or_else(|| ".env".into());
    let layers = Layers::from_process(&env_file, explicit_env)?;
    let run_log = config::run_log_path(cli.global.run_log.as_deref(), &layers);
    // Arguments that are not UTF-8 are logged lossily (`std::env::args` would panic).
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let ctx = Ctx {
        layers,
        run_log,
        quiet: cli.global.quiet,
        command_line: crate::redact::command_line(&args),
        interrupt: catch_interrupts()?,
    };
    match cli.command {
        Command::Export(a) => export::run(&ctx, a).await,
        Command::Import(a) => import::run(&ctx, a).await,
        Command::Verify(a) => verify::run(&ctx, a).await,
        Command::LogRun(a) => log_run::run(&ctx, a),
        Command::Runs(a) => runs::run(&ctx, a),
        Command::Migrate(a) => migrate::run(&ctx, *a).await,
        Command::Check(a) => check::run(&ctx, a).await,
        Command::DeltaEnd(a) => delta_end::run(&ctx, a).await,
        Command::Profile(c) => profile::run(c),
    }
}
