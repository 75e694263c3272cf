//! `pgconverge migrate <SOURCE> --online`: the delta runbook (docs/delta.md) as one
//! command. Each step is the command a user would run by hand (`export --delta-base`,
//! `import`, `export --delta-from`, `verify --source`, `delta-end`), so the target is the
//! same on every path; this file only chains them, waits for the cutover and measures
//! the window (cutover signal to verified commit).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::cli::{DeltaEndArgs, ExportArgs, ImportArgs, MigrateArgs, VerifyArgs};
use crate::cmd::{Ctx, Outcome};
use crate::hint::WithHint;
use crate::store::export_dir::ExportDir;
use crate::store::open;
use crate::store::runlog::Status;

/// What `migrate --online --json` prints.
#[derive(Serialize)]
struct Summary {
    base: String,
    /// The catch-up deltas, in order, with the rows each changed.
    deltas: Vec<Step>,
    #[serde(rename = "final")]
    last: Step,
    window_seconds: f64,
    verify: &'static str,
}

#[derive(Serialize, Clone)]
struct Step {
    export_dir: String,
    changed_rows: u64,
}

/// How the operator says the application's writes have stopped.
enum Cutover {
    File(PathBuf),
    Terminal,
}

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<Outcome> {
    let cutover = cutover_signal(&args)?;
    if args.json {
        crate::out::results_to_stderr();
    }
    let progress = ctx.progress();
    let rec = ctx.recorder();
    rec.log(rec.entry(
        Status::Started,
        format!("migrate --online of `{}`", args.source),
    ));
    let result = chain(ctx, &args, &cutover, &progress).await;
    match result {
        Ok((summary, outcome)) => {
            let msg = format!(
                "migrate --online of `{}`: base {}, {} catch-up, final {}; window {:.1} s \
                 (cutover signal to verified commit); verify {}",
                args.source,
                summary.base,
                crate::report::count(summary.deltas.len() as u64, "delta"),
                summary.last.export_dir,
                summary.window_seconds,
                summary.verify
            );
            let status = match outcome {
                Outcome::Success => Status::Completed,
                _ => Status::Failed,
            };
            rec.log(
                rec.entry(status, msg.clone())
                    .export_dir(&summary.last.export_dir),
            );
            if args.json {
                crate::out::json(&summary)?;
            } else {
                crate::out::println(format!(
                    "window: {:.1} s from the cutover signal to the verified commit",
                    summary.window_seconds
                ));
                crate::out::println(msg);
            }
            Ok(outcome)
        }
        Err(e) => {
            rec.log(rec.entry(Status::Failed, format!("migrate --online: {e:#}")));
            Err(e.context(format!(
                "migrate --online of `{}` stopped; the chain stays where the last committed \
                 import left it",
                args.source
            )))
            .hint(
                "go on by hand from the last export printed (docs/delta.md, Runbook), or end \
                 the chain with delta-end",
            )
        }
    }
}

/// Refused before anything starts: a cutover nobody can signal.
fn cutover_signal(args: &MigrateArgs) -> Result<Cutover> {
    if args.wait_for_require.is_some() {
        return Err(anyhow!(
            "--wait-for-require is not taken with --online: each import of the chain checks \
             the mapping's `require` once"
        ))
        .hint(
            "start migrate --online once the schema Job has finished, without --wait-for-require",
        );
    }
    match &args.cutover_file {
        Some(path) => Ok(Cutover::File(path.clone())),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Ok(Cutover::Terminal),
        None => Err(anyhow!(
            "migrate --online waits for the cutover, and nothing can signal it: stdin is not a terminal"
        ))
        .hint("give --cutover-file PATH and create that file when the application's writes have stopped"),
    }
}

/// Base, catch-up, cutover, final delta, verify, delta-end.
async fn chain(
    ctx: &Ctx,
    args: &MigrateArgs,
    cutover: &Cutover,
    progress: &crate::progress::Progress,
) -> Result<(Summary, Outcome)> {
    progress.note("online: the base (the application keeps running)");
    let base = super::export::exported(ctx, export_args(args, None)).await?;
    import(ctx, args, &base).await?;
    let mut previous = base.clone();
    let mut deltas = Vec::new();
    // Catch-up: deltas until one is small.
    while deltas.len() < args.max_deltas {
        let dir = super::export::exported(ctx, export_args(args, Some(&previous))).await?;
        import(ctx, args, &dir).await?;
        let changed = changed_rows(&dir)?;
        progress.note(format!(
            "online: catch-up delta {} changed {}",
            deltas.len() + 1,
            crate::report::count(changed, "row")
        ));
        deltas.push(Step {
            export_dir: dir.display().to_string(),
            changed_rows: changed,
        });
        previous = dir;
        if changed <= args.catch_up_rows {
            break;
        }
    }
    wait_for_cutover(ctx, cutover, progress).await?;
    let window = Instant::now();
    progress.note("online: cutover: the final delta");
    let last = super::export::exported(ctx, export_args(args, Some(&previous))).await?;
    import(ctx, args, &last).await?;
    let verified = super::verify::run(ctx, verify_args(args, &last)).await?;
    let window_seconds = window.elapsed().as_secs_f64();
    let verify = match verified {
        Outcome::Success => "ok",
        _ => "different",
    };
    if verified == Outcome::Success {
        super::delta_end::run(ctx, delta_end_args(args)).await?;
    } else {
        progress.warn(
            "verify found a difference after the final delta: the chain is kept (delta-end \
             ends it once you are satisfied)",
        );
    }
    let summary = Summary {
        base: base.display().to_string(),
        last: Step {
            export_dir: last.display().to_string(),
            changed_rows: changed_rows(&last)?,
        },
        deltas,
        window_seconds,
        verify,
    };
    Ok((summary, verified))
}

async fn import(ctx: &Ctx, args: &MigrateArgs, dir: &Path) -> Result<()> {
    match super::import::run(ctx, import_args(args, dir)).await? {
        Outcome::Success => Ok(()),
        other => Err(anyhow!("importing {} ended with {other:?}", dir.display())),
    }
}

/// Rows a delta changed: upserted and deleted, over every table.
fn changed_rows(dir: &Path) -> Result<u64> {
    let loaded = open::manifest(&ExportDir::at(dir))?;
    Ok(match loaded {
        crate::store::manifest::Loaded::Current(m) => m
            .tables
            .values()
            .filter_map(|e| e.delta.as_ref().map(|d| e.rows + d.deleted.rows))
            .sum(),
        crate::store::manifest::Loaded::Legacy { .. } => 0,
    })
}

async fn wait_for_cutover(
    ctx: &Ctx,
    cutover: &Cutover,
    progress: &crate::progress::Progress,
) -> Result<()> {
    match cutover {
        Cutover::File(path) => {
            progress.note(format!(
                "online: caught up; waiting for {} to exist (create it once the application's \
                 writes have stopped)",
                path.display()
            ));
            let wait = async {
                while !path.exists() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(())
            };
            ctx.interruptible(wait).await
        }
        Cutover::Terminal => {
            progress.note(
                "online: caught up; stop the application's writes, then press Enter for the \
                 final delta",
            );
            let line = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map(|_| s)
            });
            ctx.interruptible(async {
                line.await
                    .context("waiting for Enter")?
                    .context("reading the terminal")
                    .map(|_| ())
            })
            .await
        }
    }
}

fn export_args(args: &MigrateArgs, from: Option<&Path>) -> ExportArgs {
    let read = match from {
        // A delta reads with its chain's tables.
        Some(_) => crate::cli::ReadOptions {
            tables: Vec::new(),
            exclude: Vec::new(),
            ..args.read.clone()
        },
        None => args.read.clone(),
    };
    ExportArgs {
        source: args.source.clone(),
        map: from.is_none().then(|| args.map.clone()).flatten(),
        source_url: args.source_url.clone(),
        out: args.out.clone(),
        read,
        clean_partials: false,
        delta_base: from.is_none(),
        delta_from: from.map(Path::to_path_buf),
        delta_full_copy: false,
        json: false,
        mysql: args.mysql.clone(),
    }
}

fn import_args(args: &MigrateArgs, dir: &Path) -> ImportArgs {
    ImportArgs {
        export_dir: dir.to_path_buf(),
        map: None,
        dry_run: false,
        rehearse: false,
        yes: args.yes,
        accept_unverified: false,
        load: args.load.clone(),
        json: false,
        postgres: args.postgres.clone(),
    }
}

fn verify_args(args: &MigrateArgs, dir: &Path) -> VerifyArgs {
    VerifyArgs {
        export_dir: dir.to_path_buf(),
        target_db: args.load.target_db.clone(),
        schema: args.load.schema.clone(),
        map: None,
        source_url: args.source_url.clone(),
        source: true,
        deep: args.deep,
        max_diffs: args.max_diffs,
        no_fk: false,
        json: false,
        postgres: args.postgres.clone(),
        mysql: args.mysql.clone(),
    }
}

fn delta_end_args(args: &MigrateArgs) -> DeltaEndArgs {
    DeltaEndArgs {
        target: args.source.clone(),
        source_url: args.source_url.clone(),
        slot: None,
        target_db: args.load.target_db.clone(),
        schema: args.load.schema.clone(),
        json: false,
        postgres: args.postgres.clone(),
    }
}
