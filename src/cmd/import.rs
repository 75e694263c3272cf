//! `pgconverge import <dir>`: resolve the job, prepare it (`import::prepare`: target,
//! plan, refusals, file checks), print the plan (`--dry-run` stops there), ask, run it in
//! one transaction (`import::execute`), report. Any error, interruption or lost connection
//! leaves the target exactly as it was.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::cli::ImportArgs;
use crate::cmd::{Ctx, Outcome};
use crate::config::ServerConfig;
use crate::hint::{NeedsAttention, TargetOutcome, WithHint, with_hint, with_outcome};
use crate::import::load::Env;
use crate::import::outcome::{self, Verdict};
use crate::import::plan::{self, Plan, Skipped, Statement};
use crate::import::transaction::{Steps, TableLoaded, TxState, after_interruption};
use crate::import::{self, Job};
use crate::progress::{Progress, human_bytes};
use crate::report::{Table, count};
use crate::store::export_dir::{self, ExportDir};
use crate::store::journal::Journal;
use crate::store::open;
use crate::store::runlog::{Recorder, Status};

/// What a committed import reports (`--json` prints it as is).
#[derive(Serialize)]
struct Report<'a> {
    committed: bool,
    /// `--rehearse`: everything ran and was rolled back.
    rehearsal: bool,
    target_database: &'a str,
    tables: &'a [TableLoaded],
    /// Where the load's time went, per kind of step.
    steps: &'a Steps,
    skipped: &'a [Skipped],
    log: String,
    /// Every warning said on stderr.
    warnings: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: ImportArgs) -> Result<Outcome> {
    let progress = ctx.progress();
    let job = resolve(ctx, &args).await.map_err(unchanged)?;
    let rec = ctx.recorder();
    let dir_text = job.dir.path().display().to_string();
    // A dry run writes nothing, so it leaves no trace in the run log either.
    let log = |status: Status, message: String| {
        if !args.dry_run {
            rec.log(rec.entry(status, message).export_dir(&dir_text));
        }
    };
    let failed = |e: anyhow::Error, status: Status| {
        log(status, format!("{e:#}"));
        unchanged(e)
    };
    // The audit trail is part of the contract: no import without its `started` entry.
    if !args.dry_run {
        rec.log_required(
            rec.entry(
                Status::Started,
                format!("import of {dir_text} into `{}`", job.target_db),
            )
            .export_dir(&dir_text),
        )
        .context("import refused before any write: its run log cannot be written")?;
    }
    if job.manifest.is_legacy() {
        progress.warn(
            "this export was written by the old shell scripts: it carries no checksums, so \
             only file presence is checked; NULL is read as an unquoted empty field",
        );
    }
    let mut prepared = ctx
        .interruptible(import::prepare(&job, &progress))
        .await
        .map_err(|e| failed(e, Status::Failed))?;
    let description = show_plan(&prepared.plan, &job, &args, &progress).map_err(unchanged)?;
    if let Some(refusal) = prepared.refusal(args.load.allow_cascade) {
        return Err(failed(refusal, Status::Failed));
    }
    if args.dry_run {
        return Ok(Outcome::Success);
    }
    // A rehearsal keeps nothing: no question.
    if !args.rehearse {
        let question = question(&prepared.plan, &job, &prepared.cascade_with_rows);
        ctx.interruptible(confirm(args.yes, question))
            .await
            .map_err(|e| failed(e, Status::Failed))?;
    }

    let stamp = export_dir::run_stamp(chrono::Utc::now(), std::process::id());
    let mut journal = Journal::create(&ctx.run_log, &stamp)
        .context("import refused before any write: its journal cannot be created")
        .map_err(|e| failed(e, Status::Failed))?;
    journal.line(format!(
        "import of {dir_text} into `{}` at {}",
        job.target_db,
        job.target.display()
    ));
    journal.line(description.trim_end());
    let mut state = TxState::default();
    let commit = state.commit.clone();
    let result = {
        let mut env = Env {
            dir: &job.dir,
            progress: &progress,
            journal: &mut journal,
            pipeline: None,
            diagnosis: false,
        };
        ctx.interruptible_commit(
            import::execute(&job, &mut prepared, &mut env, &mut state),
            &commit,
        )
        .await
    };
    let loaded = match result {
        Ok(loaded) => loaded,
        Err(e) => {
            // Interrupted mid-load: the load could not put the sequences back itself.
            after_interruption(
                &prepared.client,
                &job.target,
                &state,
                &progress,
                &mut journal,
            )
            .await;
            let what = if args.rehearse { "rehearsal" } else { "import" };
            let (status, e) = stopped(e, &state, what, journal);
            return Err(failed_with(&rec, &dir_text, status, e));
        }
    };
    journal.line(if args.rehearse {
        "ROLLBACK (a rehearsal)"
    } else {
        "COMMIT"
    });
    let log_path = journal.log_path.display().to_string();
    let journal_closed = journal.close();
    let rows: u64 = loaded.iter().map(|t| t.rows).sum();
    if args.rehearse {
        // Nothing was kept: no import details for verify to find, and the status says so
        // (a runbook reading `completed` would take the target as loaded).
        rec.log(
            rec.entry(
                Status::RolledBack,
                format!(
                    "rehearsal of the import into `{}` passed: {}, {} loaded, \
                     checked and rolled back",
                    job.target_db,
                    count(loaded.len() as u64, "table"),
                    count(rows, "row")
                ),
            )
            .export_dir(&dir_text)
            .tables(loaded.len())
            .rows(rows),
        );
        report(&args, &job, &prepared.plan, &loaded, &state.steps, log_path).map_err(unchanged)?;
        return Ok(Outcome::Success);
    }
    let logged = rec.log_required(
        rec.entry(
            Status::Completed,
            format!(
                "imported into `{}`: {}, {}",
                job.target_db,
                count(loaded.len() as u64, "table"),
                count(rows, "row")
            ),
        )
        .export_dir(&dir_text)
        .tables(loaded.len())
        .rows(rows)
        .details(serde_json::json!({
            "import": {
                "export_dir": open::absolute(job.dir.path()),
                "target_database": job.target_db,
                "schema": job.options.schema,
                // Rows the hooks and fired triggers added (or removed): verify expects them.
                "adjustments": state.adjustments,
            }
        })),
    );
    for (table, delta) in &state.adjustments {
        progress.note(format!(
            "`{table}`: {}{} by the hooks and triggers (recorded for verify)",
            if *delta >= 0 { "+" } else { "-" },
            crate::report::count(delta.unsigned_abs(), "row")
        ));
    }
    report(&args, &job, &prepared.plan, &loaded, &state.steps, log_path)
        .map_err(|e| with_outcome(e, TargetOutcome::Committed))?;
    audit_after_commit(journal_closed.and(logged), "import", &job.target_db)?;
    Ok(Outcome::Success)
}

/// An import (or migrate) that ended with an error `e`: say what the target holds, from
/// what the server said (`outcome::Verdict`), in the journal and the error; returns the
/// run log's status and the error to report (exit 3 when it needs attention).
pub(super) fn stopped(
    e: anyhow::Error,
    state: &TxState,
    what: &str,
    mut journal: Journal,
) -> (Status, anyhow::Error) {
    let verdict = Verdict::of(state);
    let words = verdict.words(what, state.xid);
    journal.line(format!("{words}: {e:#}"));
    journal.sql_note(&words);
    let _ = journal.close();
    let e = match (verdict, state.xid) {
        (Verdict::Unknown, Some(xid)) => with_hint(e, outcome::ask_later_hint(xid)),
        (Verdict::PartiallyCommitted, _) => with_hint(
            e,
            "look at the target before anything else: it holds what ran before that hook; \
             then remove the statement that ended the transaction and import again (the \
             import replaces every table it loads)",
        ),
        _ => e,
    };
    let e = if verdict.needs_attention() {
        e.context(NeedsAttention(words))
    } else {
        e.context(words)
    };
    (verdict.status(), with_outcome(e, verdict.target_outcome()))
}

/// Log the end of a command that failed with `e` (whose outermost words say what the
/// target holds), and hand `e` back.
pub(super) fn failed_with(
    rec: &Recorder,
    dir: &str,
    status: Status,
    e: anyhow::Error,
) -> anyhow::Error {
    rec.log(rec.entry(status, format!("{e:#}")).export_dir(dir));
    e
}

/// After COMMIT: a journal or run log that could not be written is an error that says the
/// work is committed (exit 3), not a warning.
pub(super) fn audit_after_commit(written: Result<()>, what: &str, db: &str) -> Result<()> {
    written
        .hint(format!(
            "the target holds the {what} (run verify to check it); keep this output, since the \
             run log or journal lacks its record, and fix the disk or path of the run log \
             (--run-log, PGCONVERGE_RUN_LOG)"
        ))
        .context(NeedsAttention(format!(
            "{what} COMMITTED into `{db}`, but its audit trail could not be written"
        )))
        .map_err(|e| with_outcome(e, TargetOutcome::Committed))
}

/// An import error before COMMIT, or one that rolled the transaction back: the target is
/// unchanged, unless the error already says what it holds (committed, unknown, ...).
pub(super) fn unchanged(e: anyhow::Error) -> anyhow::Error {
    match crate::hint::outcome_of(&e) {
        Some(_) => e,
        None => with_outcome(e, TargetOutcome::Unchanged),
    }
}

/// Print the plan: the whole of it with `--dry-run` (text or JSON), else a note on
/// stderr. Returns its text, for the journal.
fn show_plan(plan: &Plan, job: &Job, args: &ImportArgs, progress: &Progress) -> Result<String> {
    for w in &plan.warnings {
        progress.warn(w);
    }
    let description = describe(plan, &job.target, &job.target_db, None);
    if args.dry_run && args.json {
        super::print_json(&plan.report(&job.target_db))?;
    } else if args.dry_run {
        crate::out::print(&description);
        crate::out::println("\n-- SQL (COPY data is streamed from the files):");
        for stmt in plan.statements(&Default::default()) {
            print_statement(&stmt);
        }
    } else {
        progress.note(description.trim_end());
    }
    Ok(description)
}

fn report(
    args: &ImportArgs,
    job: &Job,
    plan: &Plan,
    loaded: &[TableLoaded],
    steps: &Steps,
    log: String,
) -> Result<()> {
    if args.json {
        super::print_result(&Report {
            committed: !args.rehearse,
            rehearsal: args.rehearse,
            target_database: &job.target_db,
            tables: loaded,
            steps,
            skipped: &plan.skipped,
            log,
            warnings: crate::progress::warned(),
        })
    } else {
        crate::out::print(summary(loaded, plan));
        if args.rehearse {
            crate::out::println(format!(
                "import: rehearsal passed: everything loaded into `{}` and checked, then rolled \
                 back; the target is unchanged (log {log})",
                job.target_db
            ));
        } else {
            crate::out::println(format!(
                "import: committed into `{}` (log {log})",
                job.target_db
            ));
        }
        Ok(())
    }
}

async fn resolve(ctx: &Ctx, args: &ImportArgs) -> Result<Job> {
    let dir = ExportDir::at(&args.export_dir);
    let (manifest, manifest_sha256) = open::manifest_and_sha256(&dir)?;
    if manifest.is_legacy() && !args.accept_unverified {
        return Err(anyhow!(
            "{} was written by the old shell scripts: its manifest carries no checksums, so \
             a changed or damaged file cannot be detected",
            dir.path().display()
        ))
        .hint("export again with pgconverge, or pass --accept-unverified to load it as it is");
    }
    let mapping = super::export_mapping(ctx, &dir, &manifest, args.map.as_deref())?;
    let target = super::postgres_config(ctx, &args.postgres).await?;
    let target_db = target.database_or(
        args.load.target_db.as_deref(),
        &mapping.target_db,
        "--target-db",
    )?;
    let options = plan::Options {
        rehearse: args.rehearse,
        // A delta applies rows to tables that keep their others: indexes always stay.
        delta: manifest.delta().is_some(),
        ..super::load_options(&args.load, &mapping, manifest.is_legacy())
    };
    Ok(Job {
        target,
        options,
        prepass: args.dry_run,
        dir,
        manifest,
        manifest_sha256,
        mapping,
        target_db,
    })
}

/// One statement as `--dry-run` prints it (as the journal writes it).
fn print_statement(stmt: &Statement) {
    crate::out::println(stmt.terminated());
}

/// The plan as a table. `estimates`: `migrate`'s, before the export has counted anything
/// (rows shown as the source's estimate, `~N`, or `?`; sizes as `?`).
pub(super) fn describe(
    plan: &Plan,
    cfg: &ServerConfig,
    db: &str,
    estimates: Option<&std::collections::BTreeMap<String, u64>>,
) -> String {
    let mut t = Table::new([
        "table",
        "from",
        "rows",
        "size",
        "columns",
        "copy",
        "sequences",
    ]);
    for s in &plan.tables {
        t.row([
            s.table.clone(),
            if s.dataset == s.table {
                String::new()
            } else {
                s.dataset.clone()
            },
            match estimates {
                Some(e) => e
                    .get(&s.dataset)
                    .map(|n| format!("~{n}"))
                    .unwrap_or_else(|| "?".into()),
                None => s
                    .expected_rows
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".into()),
            },
            match estimates {
                Some(_) => "?".into(),
                None => s.bytes.map(human_bytes).unwrap_or_else(|| "?".into()),
            },
            s.columns.len().to_string(),
            // migrate plans before any file is written: a table may still go as CSV.
            match (s.binary_types.is_some(), estimates.is_some()) {
                (true, false) => "binary".into(),
                (true, true) => "binary*".into(),
                (false, _) => "csv".into(),
            },
            plan.sequences_of(&s.table)
                .flat_map(|q| q.columns.iter().filter(|(t, _)| *t == s.table))
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    let mut out = format!(
        "plan: load {} into database `{db}`, schema `{}`, at {}\n{}",
        count(plan.tables.len() as u64, "table"),
        plan.schema,
        cfg.display(),
        t.render()
    );
    if estimates.is_some() && plan.tables.iter().any(|s| s.binary_types.is_some()) {
        out.push_str(&format!(
            "binary*: binary COPY, or CSV for a table whose files hold a record past {} \
             (known once they are written; the load says so)\n",
            crate::progress::human_bytes(crate::memory::BINARY_RECORD_MAX)
        ));
    }
    for s in &plan.skipped {
        out.push_str(&format!("skipped: `{}`: {}\n", s.table, s.reason));
    }
    if let Some(d) = &plan.delta {
        for t in d
            .tables
            .iter()
            .filter(|t| t.upserts > 0 || t.deletes > 0 || t.whole.is_some())
        {
            let whole = t
                .whole
                .as_ref()
                .map(|w| format!(", copied whole ({w})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "delta: `{}`: {} upserted, {} deleted{whole}\n",
                t.table, t.upserts, t.deletes
            ));
        }
    }
    for step in &plan.mapping_steps {
        out.push_str(&format!("{step}\n"));
    }
    for s in &plan.tables {
        if let Some(why) = s.csv_reason.as_ref().filter(|_| plan.binary) {
            out.push_str(&format!("as CSV: `{}`: {why}\n", s.table));
        }
        for line in s.adaptation_lines() {
            out.push_str(&format!("{line}\n"));
        }
    }
    for line in plan::index_lines(plan) {
        out.push_str(&format!("{line}\n"));
    }
    if !plan.cascade.is_empty() {
        let list: Vec<String> = plan
            .cascade
            .iter()
            .map(|(s, t)| format!("{s}.{t}"))
            .collect();
        out.push_str(&format!(
            "TRUNCATE ... CASCADE also empties (not part of the import): {}\n",
            list.join(", ")
        ));
    }
    out
}

/// What the import asks before it writes.
pub(super) fn question(plan: &Plan, job: &Job, cascade: &[String]) -> String {
    if let Some(d) = &plan.delta {
        let (upserts, deletes) = d.totals();
        return format!(
            "This applies a delta to database `{}` at {}: {upserts} rows upserted and {deletes} keys deleted. Continue? [y/N] ",
            job.target_db,
            job.target.display()
        );
    }
    let mut prompt = format!(
        "This TRUNCATEs and reloads {} of database `{}` at {}",
        count(plan.tables.len() as u64, "table"),
        job.target_db,
        job.target.display()
    );
    if !cascade.is_empty() {
        prompt.push_str(&format!(
            ", and CASCADE also empties {}",
            cascade.join(", ")
        ));
    }
    prompt.push_str(". Continue? [y/N] ");
    prompt
}

/// Ask on the terminal (on a blocking thread, so that a signal still interrupts).
pub(super) async fn confirm(yes: bool, question: String) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(anyhow!(
            "refusing to import without confirmation: standard input is not a terminal"
        ))
        .hint("pass --yes for non-interactive runs");
    }
    let answer = tokio::task::spawn_blocking(move || {
        crate::out::eprint(&question);
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await??;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        bail!("import cancelled; nothing was written")
    }
}

pub(super) fn summary(done: &[TableLoaded], plan: &Plan) -> String {
    let delta = plan.delta.is_some();
    let mut t = match delta {
        true => Table::new(["table", "upserted", "deleted", "seconds"]),
        false => Table::new(["table", "rows", "seconds"]),
    };
    let row = |name: String, rows: u64, deleted: u64, seconds: String| match delta {
        true => vec![name, rows.to_string(), deleted.to_string(), seconds],
        false => vec![name, rows.to_string(), seconds],
    };
    for d in done {
        t.row(row(
            if d.dataset == d.table {
                d.table.clone()
            } else {
                format!("{} <- {}", d.table, d.dataset)
            },
            d.rows,
            d.deleted.unwrap_or(0),
            format!("{:.1}", d.seconds),
        ));
    }
    let rows: u64 = done.iter().map(|d| d.rows).sum();
    let deleted: u64 = done.iter().filter_map(|d| d.deleted).sum();
    let tables: BTreeSet<&str> = done.iter().map(|d| d.table.as_str()).collect();
    t.row(row(
        count(tables.len() as u64, "table"),
        rows,
        deleted,
        String::new(),
    ));
    let mut out = t.render();
    for s in &plan.skipped {
        out.push_str(&format!("skipped: `{}`: {}\n", s.table, s.reason));
    }
    // A delta's deletes: the rows they removed, and the keys the delta listed (a key the
    // target never held, inserted and deleted between two exports, removes nothing).
    if let Some(d) = &plan.delta {
        let (_, keys) = d.totals();
        let tables = done
            .iter()
            .filter(|t| t.deleted.is_some_and(|n| n > 0))
            .count() as u64;
        let whole = match d.tables.iter().any(|t| t.whole.is_some()) {
            true => "; a table copied whole is emptied and loaded again",
            false => "",
        };
        let cascaded: u64 = done.iter().filter_map(|t| t.cascaded).sum();
        let by_actions = match cascaded {
            0 => String::new(),
            n => format!(
                "; the source's foreign-key actions (CASCADE) deleted {} only the target held",
                count(n, "row")
            ),
        };
        out.push_str(&format!(
            "deleted: {} in {} (the delta listed {}{whole}{by_actions})\n",
            count(deleted, "row"),
            count(tables, "table"),
            count(keys, "key"),
        ));
        let cleared: Vec<String> = done
            .iter()
            .filter_map(|t| {
                t.cleared
                    .filter(|n| *n > 0)
                    .map(|n| format!("{} in `{}`", count(n, "reference"), t.table))
            })
            .collect();
        if !cleared.is_empty() {
            out.push_str(&format!(
                "cleared: {} (set to NULL as the source's foreign-key actions did; a row may \
                 lose several, or be deleted after)\n",
                cleared.join(", ")
            ));
        }
    }
    out
}
