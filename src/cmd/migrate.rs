//! `pgconverge migrate <profile|database>`: the whole job in one run — log-run started,
//! export, import, verify (and `--deep`), log-run completed or failed — with the export
//! directory kept as the audit trail. The import is planned before the export reads
//! anything (so a target that cannot take the source is refused at once), then each
//! table loads as soon as its files are complete, in one transaction, while later
//! tables are still being exported.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::MigrateArgs;
use crate::cmd::import::{audit_after_commit, stopped};
use crate::cmd::{Ctx, Outcome};
use crate::config::Engine;
use crate::db::postgres;
use crate::export::{self, assemble};
use crate::hint::{TargetOutcome, WithHint, with_hint, with_outcome};
use crate::import::load::Env;
use crate::import::pipeline::Pipeline;
use crate::import::plan::TableInput;
use crate::import::transaction::{Steps, TableLoaded, TxState, after_interruption};
use crate::mapping::Mapping;
use crate::progress::Progress;
use crate::report::count;
use crate::store::export_dir::{self, ExportDir};
use crate::store::journal::Journal;
use crate::store::manifest::{Loaded, TableSpec};
use crate::store::runlog::Status;
use crate::store::{open, publish};
use crate::verify::{self, counts::Report};

/// What `migrate --json` prints.
#[derive(Serialize)]
struct Summary<'a> {
    /// Committed and verified without a difference (`verify.ok`): exit 0.
    ok: bool,
    export_dir: String,
    target_database: &'a str,
    exported_rows: u64,
    tables: &'a [TableLoaded],
    seconds: f64,
    /// Where the time went: the phases one after another, and the import's own steps.
    phases: Phases,
    steps: &'a Steps,
    verify: &'a Report,
    /// Every warning said on stderr: leftovers of interrupted exports, the plan's,
    /// what the export's facts called for, a hook's setting set back.
    warnings: Vec<String>,
}

/// `migrate --json`'s phases, in seconds; together they make `seconds`.
#[derive(Serialize, Default)]
struct Phases {
    /// Catalogs, plans, confirmation: before anything is read or written.
    prepare: f64,
    /// The export and the import's transaction, at once, up to COMMIT's answer.
    export_and_import: f64,
    /// Sealing the export directory (manifest, fsync, rename).
    seal: f64,
    /// Counts and orphan checks (`verify`), then every value (`--deep`).
    verify: f64,
    deep: f64,
}

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<Outcome> {
    if args.online {
        return super::online::run(ctx, args).await;
    }
    let progress = ctx.progress();
    let rec = ctx.recorder();
    let clock = Instant::now();
    let (mapping, new) = super::new_export(ctx, &args.source, args.map.as_deref(), &args.out)
        .map_err(super::import::unchanged)?;
    let db = mapping.source_db.clone();
    let final_dir = new.final_dir.display().to_string();
    // The audit trail is part of the contract: no migrate without its `started` entry.
    rec.log_required(
        rec.entry(Status::Started, format!("migrate of `{db}`"))
            .export_dir(&final_dir),
    )
    .context(
        "migrate refused before anything was read or written: its run log cannot be written",
    )?;
    let failed = |e: anyhow::Error, status: Status| {
        rec.log(rec.entry(status, format!("{e:#}")).export_dir(&final_dir));
        super::import::unchanged(e)
    };

    // Resolve both sides; the target must hold before anything is read.
    let source = super::export_source(ctx, args.source_url.as_deref(), &args.mysql, &mapping)
        .await
        .map_err(|e| failed(e, Status::Failed))?;
    let target = super::postgres_config(ctx, &args.postgres)
        .await
        .map_err(|e| failed(e, Status::Failed))?;
    let target_db = target
        .database_or(
            args.load.target_db.as_deref(),
            &mapping.target_db,
            "--target-db",
        )
        .map_err(|e| failed(e, Status::Failed))?;
    let mut options = super::load_options(&args.load, &mapping, false);
    let schema = options.schema.clone();
    ctx.interruptible(wait_for_require(
        &target,
        &target_db,
        &schema,
        &mapping,
        args.wait_for_require.as_deref(),
        &progress,
    ))
    .await
    .map_err(|e| failed(e, Status::Failed))?;

    // What an interrupted export (or migrate) left beside this one is said, as export
    // says it.
    export::run::leftovers(&new, false, &progress).map_err(|e| failed(e, Status::Failed))?;
    let ejob = super::export_job(source.clone(), mapping.clone(), &args.read);
    let mut planned = ctx
        .interruptible(export::run::prepare(&ejob, &progress))
        .await
        .map_err(|e| failed(e, Status::Failed))?;

    // The import, planned from the export's plan: the manifest it will have, without
    // its counts and facts yet; the source's estimates stand in for the counts where the
    // indexes are chosen.
    options.row_estimates = planned
        .plans
        .iter()
        .filter(|p| p.query.is_none())
        .map(|p| (p.name.clone(), p.estimated_rows))
        .collect();
    let provisional: Vec<_> = planned
        .plans
        .iter()
        .map(|p| assemble::provisional_entry(p, planned.files_of(&p.name)))
        .collect();
    let inputs: Vec<TableInput> = provisional
        .iter()
        .map(|e| TableInput {
            spec: TableSpec::from_entry(e),
            header: e.columns.iter().map(|c| c.name.clone()).collect(),
        })
        .collect();
    let manifest = assemble::manifest(
        assemble::About {
            profile: mapping.name.clone(),
            mapping: None,
            source: crate::store::manifest::Source {
                kind: source.engine.name().into(),
                host: source.cfg.host.clone(),
                port: source.cfg.port,
                user: source.cfg.user.clone(),
                database: source.database.clone(),
                server_version: planned.server_version.clone(),
                container: source.cfg.container.clone(),
                schema: (source.engine == Engine::Postgresql).then(|| source.namespace.clone()),
                system_identifier: planned.system_identifier.clone(),
            },
            container: None,
            started_at: planned.started_at.clone(),
            finished_at: String::new(),
            timestamp: new.timestamp.clone(),
            snapshot: crate::db::catalog::Snapshot {
                isolation: String::new(),
                time_zone: String::new(),
                charset: String::new(),
                readers: 0,
                synchronized_by: String::new(),
            },
            excluded: Default::default(),
        },
        provisional,
    );
    let ijob = crate::import::Job {
        dir: ExportDir::at(new.tmp.path()),
        manifest: Loaded::Current(Box::new(manifest)),
        manifest_sha256: String::new(),
        mapping: mapping.clone(),
        target: target.clone(),
        target_db: target_db.clone(),
        options,
        prepass: false,
    };
    let mut prepared = ctx
        .interruptible(crate::import::run::prepare_with(
            &ijob,
            &progress,
            Some(inputs),
        ))
        .await
        .map_err(|e| failed(e, Status::Failed))?;
    for w in &prepared.plan.warnings {
        progress.warn(w);
    }
    // Nothing is exported yet: the source's estimates stand for the rows, sizes are unknown.
    let description = super::import::describe(
        &prepared.plan,
        &target,
        &target_db,
        Some(&ijob.options.row_estimates),
    );
    progress.note(description.trim_end());
    if let Some(refusal) = prepared.refusal(args.load.allow_cascade) {
        return Err(failed(refusal, Status::Failed));
    }
    let question = super::import::question(&prepared.plan, &ijob, &prepared.cascade_with_rows);
    ctx.interruptible(super::import::confirm(args.yes, question))
        .await
        .map_err(|e| failed(e, Status::Failed))?;
    let order: Vec<String> = prepared
        .plan
        .tables
        .iter()
        .map(|t| t.dataset.clone())
        .collect();
    planned.reorder(&order);

    // Export and import at once: each finished dataset goes to the import.
    publish::create(&new).map_err(|e| failed(e, Status::Failed))?;
    let stamp = export_dir::run_stamp(chrono::Utc::now(), std::process::id());
    let mut journal = match Journal::create(&ctx.run_log, &stamp) {
        Ok(j) => j,
        Err(e) => {
            publish::discard(&new);
            return Err(failed(
                e.context("migrate refused before any write: its journal cannot be created"),
                Status::Failed,
            ));
        }
    };
    journal.line(format!(
        "migrate of `{db}` into `{target_db}` at {}, export {}",
        target.display(),
        final_dir
    ));
    journal.line(description.trim_end());
    let (ready, arriving) = mpsc::unbounded_channel::<Result<TableInput, String>>();
    let estimated_rows = ijob.options.row_estimates.values().sum();
    let mut pipeline = Pipeline::new(arriving, prepared.replan.clone(), estimated_rows);
    let mut state = TxState::default();
    let commit = state.commit.clone();
    let export_side = async {
        let result = export::run::read(&ejob, &planned, &new, &progress, |entry| {
            let _ = ready.send(Ok(TableInput {
                spec: TableSpec::from_entry(entry),
                header: entry.columns.iter().map(|c| c.name.clone()).collect(),
            }));
        })
        .await;
        if let Err(e) = &result {
            let _ = ready.send(Err(format!("{e:#}")));
        }
        result
    };
    let import_side = async {
        let mut env = Env {
            dir: &ijob.dir,
            progress: &progress,
            journal: &mut journal,
            pipeline: Some(&mut pipeline),
            diagnosis: false,
        };
        crate::import::execute(&ijob, &mut prepared, &mut env, &mut state).await
    };
    let both = async { tokio::join!(export_side, import_side) };
    let mut phases = Phases {
        prepare: clock.elapsed().as_secs_f64(),
        ..Phases::default()
    };
    let phase = Instant::now();
    let (exported, loaded) = match ctx
        .interruptible_commit(async { Ok(both.await) }, &commit)
        .await
    {
        Ok(pair) => pair,
        Err(e) => {
            publish::discard(&new);
            after_interruption(&prepared.client, &target, &state, &progress, &mut journal).await;
            let (status, e) = stopped(e, &state, "migrate", journal);
            return Err(failed(e, status));
        }
    };
    phases.export_and_import = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    // The export is kept (published) whenever it completed: it is the audit trail.
    let exported = match exported {
        Ok((entries, snapshot, _)) => {
            export::run::seal(&ejob, planned, entries, snapshot, None, &new)
        }
        Err(e) => Err(e),
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            if exported.is_err() {
                publish::discard(&new);
            }
            let e = match &exported {
                Ok(x) => e.context(format!("the export is kept: {}", x.dir.display())),
                Err(_) => e,
            };
            let (status, e) = stopped(e, &state, "migrate", journal);
            return Err(failed(e, status));
        }
    };
    journal.line("COMMIT");
    let journal_closed = journal.close();
    // Committed: an export that could not be sealed is an audit trail lost after COMMIT.
    let exported = match exported {
        Ok(x) => x,
        Err(e) => {
            let e = audit_after_commit(Err(e.context("sealing the export")), "migrate", &target_db)
                .unwrap_err();
            return Err(failed(e, Status::Failed));
        }
    };
    let dir_text = exported.dir.display().to_string();

    // Verify: counts (and orphans) against the export and the live source, then every
    // value with --deep. The import is committed: an error now (a signal that came while
    // COMMIT's answer was awaited ends the run here) must say so.
    let unverified = |e: anyhow::Error| {
        let committed = |e| with_outcome(e, TargetOutcome::Committed);
        failed(
            committed(
                with_hint(
                    e,
                    format!("check it with: pgconverge verify {dir_text} --source"),
                )
                .context(format!(
                    "migrate COMMITTED the import into `{target_db}` (the export is kept: \
                     {dir_text}), but verify did not finish"
                )),
            ),
            Status::Failed,
        )
    };
    let vjob = verify::Job {
        dir: ExportDir::at(&exported.dir),
        manifest: open::manifest(&ExportDir::at(&exported.dir)).map_err(unverified)?,
        mapping,
        target,
        target_db: target_db.clone(),
        schema,
        source: Some(source.clone()),
        foreign_keys: true,
        adjustments: state.adjustments.clone(),
    };
    phases.seal = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    let mut report = ctx
        .interruptible(verify::verify(&vjob))
        .await
        .map_err(unverified)?;
    phases.verify = phase.elapsed().as_secs_f64();
    let phase = Instant::now();
    if args.deep {
        let deep = ctx
            .interruptible(verify::run::deep(
                &vjob,
                &verify::run::DeepSource::Live(Box::new(source)),
                args.max_diffs,
                &progress,
            ))
            .await
            .map_err(unverified)?;
        report = report.with_deep(deep);
    }
    phases.deep = phase.elapsed().as_secs_f64();
    let rows: u64 = loaded.iter().map(|t| t.rows).sum();
    let seconds = clock.elapsed().as_secs_f64();
    let (status, message) = if report.ok {
        (
            Status::Completed,
            format!(
                "migrated `{db}` into `{target_db}`: {}, {}, verified{} in {seconds:.1} s",
                count(loaded.len() as u64, "table"),
                count(rows, "row"),
                if args.deep { " value by value" } else { "" }
            ),
        )
    } else {
        (
            Status::Failed,
            format!(
                "migrated `{db}` into `{target_db}` but verify found differences: {}",
                report.differences.join("; ")
            ),
        )
    };
    let logged = rec.log_required(
        rec.entry(status, message)
            .export_dir(&dir_text)
            .tables(loaded.len())
            .rows(rows)
            .details(serde_json::json!({
                "import": {
                    "export_dir": open::absolute(&exported.dir),
                    "target_database": target_db,
                    "schema": vjob.schema,
                    "adjustments": state.adjustments,
                }
            })),
    );
    if args.json {
        super::print_result(&Summary {
            ok: report.ok,
            export_dir: dir_text.clone(),
            target_database: &target_db,
            exported_rows: exported.manifest.summary.total_rows,
            tables: &loaded,
            seconds,
            phases,
            steps: &state.steps,
            verify: &report,
            warnings: crate::progress::warned(),
        })?;
    } else {
        crate::out::print(super::import::summary(&loaded, &prepared.plan));
        crate::out::print(super::verify::render(&report, true));
        // The time is the whole run's: export, import and verify.
        let verified = match (report.ok, args.deep) {
            (true, true) => "verified value by value",
            (true, false) => "verified",
            (false, _) => "verify found differences",
        };
        crate::out::println(format!(
            "migrate: export {dir_text}, imported into `{target_db}`, {verified}: {seconds:.1} s in all"
        ));
    }
    audit_after_commit(journal_closed.and(logged), "migrate", &target_db)?;
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::Difference
    })
}

/// Check the mapping's `[import] require` on the target before anything is read; with a
/// duration, poll it every 5 s until it holds (a Job started beside the schema Job).
async fn wait_for_require(
    target: &crate::config::ServerConfig,
    db: &str,
    schema: &str,
    mapping: &Mapping,
    wait: Option<&str>,
    progress: &Progress,
) -> Result<()> {
    let requires = &mapping.hooks().require;
    if requires.is_empty() {
        return Ok(());
    }
    let limit = match wait {
        Some(text) => parse_duration(text)?,
        None => Duration::ZERO,
    };
    let start = Instant::now();
    loop {
        let mut client = postgres::connect(target, db).await?;
        let answers = postgres::requirements(&mut client, schema, requires).await;
        let failing: Vec<String> = requires
            .iter()
            .zip(answers)
            .filter_map(|(sql, a)| match a {
                Ok(true) => None,
                Ok(false) => Some(format!("{sql}: false")),
                Err(e) => Some(format!("{sql}: {e}")),
            })
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(anyhow!(
                "[import] require does not hold on the target{}: {}",
                if limit.is_zero() {
                    String::new()
                } else {
                    format!(" after {}", wait.unwrap_or_default())
                },
                failing.join("; ")
            ))
            .hint("run the target's schema migrations first (or wait for them with --wait-for-require 10m)");
        }
        progress.note(format!(
            "waiting for the target's schema: {}",
            failing.join("; ")
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// `90s`, `10m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("--wait-for-require `{text}` is not a duration"))
        .hint("write it as 90s, 10m or 1h")?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(anyhow!(
                "--wait-for-require `{text}`: unknown unit `{unit}`"
            ))
            .hint("write it as 90s, 10m or 1h");
        }
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
