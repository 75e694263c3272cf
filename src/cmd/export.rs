//! `pgconverge export <profile|database>`: resolve the job, run it (`export::export`, or
//! with `--delta-from` the delta export), report the tables written and the export
//! directory (last line, or `--json`).

use anyhow::{Result, anyhow};

use crate::cli::ExportArgs;
use crate::cmd::{Ctx, Outcome};
use crate::export::delta::run as delta;
use crate::export::{self, assemble};
use crate::hint::WithHint;
use crate::progress::human_bytes;
use crate::report::{Table, count};
use crate::store::export_dir::ExportDir;
use crate::store::open;
use crate::store::publish;
use crate::store::runlog::Status;

pub async fn run(ctx: &Ctx, args: ExportArgs) -> Result<Outcome> {
    exported(ctx, args).await.map(|_| Outcome::Success)
}

/// The whole `export` command (reported and logged); returns the export's directory
/// (`migrate --online` chains its steps by it).
pub(super) async fn exported(ctx: &Ctx, args: ExportArgs) -> Result<std::path::PathBuf> {
    let progress = ctx.progress();
    let rec = ctx.recorder();
    let (mapping, target, previous) = match &args.delta_from {
        Some(dir) => delta_start(ctx, &args, dir)?,
        None => {
            let (m, t) = super::new_export(ctx, &args.source, args.map.as_deref(), &args.out)?;
            (m, t, None)
        }
    };
    let db = mapping.source_db.clone();
    let final_dir = target.final_dir.display().to_string();
    let what = match (&previous, args.delta_base) {
        (Some(_), _) => format!("delta export of `{db}`"),
        (None, true) => format!("export of `{db}` (a delta chain's base)"),
        (None, false) => format!("export of `{db}`"),
    };
    rec.log(
        rec.entry(Status::Started, what.clone())
            .export_dir(&final_dir),
    );

    let result = async {
        export::run::leftovers(&target, args.clean_partials, &progress)?;
        let source =
            super::export_source(ctx, args.source_url.as_deref(), &args.mysql, &mapping).await?;
        match previous {
            Some(previous) => {
                let job = delta::DeltaJob {
                    source,
                    mapping,
                    previous,
                    full_copy: args.delta_full_copy,
                    policy: super::export_job_policy(&args.read),
                };
                delta::export(&job, &target, &progress).await
            }
            None => {
                let mut job = super::export_job(source, mapping, &args.read);
                job.delta_base = args.delta_base;
                job.delta_full_copy = args.delta_full_copy;
                export::export(&job, &target, &progress).await
            }
        }
    };
    let result = ctx.interruptible(result).await;
    let exported = match result {
        Ok(e) => e,
        Err(e) => {
            publish::discard(&target);
            rec.log(
                rec.entry(Status::Failed, format!("{e:#}"))
                    .export_dir(&final_dir),
            );
            return Err(e.context(format!("{what} failed; nothing was kept")));
        }
    };
    let final_dir = exported.dir.display().to_string();
    let mut report = assemble::report(&final_dir, &exported.manifest);
    rec.log(
        rec.entry(
            Status::Completed,
            format!(
                "exported `{db}`: {}, {}{}",
                count(report.tables.len() as u64, "table"),
                count(report.total_rows, "row"),
                counted(&report)
            ),
        )
        .export_dir(&final_dir)
        .tables(report.tables.len())
        .rows(report.total_rows),
    );
    for w in &report.warnings {
        progress.warn(w);
    }
    // Every warning said on stderr, those of the start (leftovers of interrupted
    // exports, the source's) with the tables'.
    report.warnings = crate::progress::warned();
    if args.json {
        super::print_result(&report)?;
    } else {
        match exported.manifest.delta.is_some() {
            true => crate::out::print(render_delta(&exported.manifest)),
            false => crate::out::print(render(&report)),
        }
        crate::out::println(format!("export: {final_dir}"));
    }
    Ok(exported.dir)
}

/// A delta's mapping (the previous export's), its new directory beside the chain's, and
/// the previous export. The chain reads one mapping and one set of tables.
fn delta_start(
    ctx: &Ctx,
    args: &ExportArgs,
    dir: &std::path::Path,
) -> Result<(
    crate::mapping::Mapping,
    crate::store::export_dir::NewExport,
    Option<ExportDir>,
)> {
    if args.map.is_some() || !args.read.tables.is_empty() || !args.read.exclude.is_empty() {
        return Err(anyhow!(
            "--map, --tables and --exclude cannot be given with --delta-from: a delta reads with the mapping and the tables of its chain"
        ))
        .hint("leave them out; to change them, start a new chain with --delta-base");
    }
    let previous = ExportDir::at(dir);
    let manifest = open::manifest(&previous)?;
    let mapping = super::export_mapping(ctx, &previous, &manifest, None)?;
    let target = crate::store::export_dir::new_export(
        &args.out,
        &mapping.name,
        chrono::Utc::now(),
        std::process::id(),
    );
    Ok((mapping, target, Some(previous)))
}

fn render_delta(m: &crate::store::manifest::Manifest) -> String {
    let mut t = Table::new(["table", "upserted", "deleted", "source rows", "note"]);
    let (mut up, mut del) = (0, 0);
    for e in m.tables.values() {
        let Some(d) = &e.delta else { continue };
        up += e.rows;
        del += d.deleted.rows;
        t.row([
            e.name.clone(),
            e.rows.to_string(),
            d.deleted.rows.to_string(),
            d.source_rows.to_string(),
            d.full_copy
                .as_ref()
                .map(|w| format!("copied whole: {w}"))
                .unwrap_or_default(),
        ]);
    }
    t.row([
        format!("{} tables", m.tables.len()),
        up.to_string(),
        del.to_string(),
        String::new(),
        m.position
            .as_ref()
            .map(|p| format!("up to {}", p.describe()))
            .unwrap_or_default(),
    ]);
    t.render()
}

/// The mapping's `count` rules for the run log: `; counted: person.suffixed_email 12`.
fn counted(r: &assemble::Report) -> String {
    let all: Vec<String> = r
        .tables
        .iter()
        .flat_map(|t| {
            t.counts
                .iter()
                .map(move |(rule, n)| format!("{}.{rule} {n}", t.table))
        })
        .collect();
    match all.is_empty() {
        true => String::new(),
        false => format!("; counted: {}", all.join(", ")),
    }
}

fn render(r: &assemble::Report) -> String {
    let mut t = Table::new(["table", "rows", "size", "rewrites", "warnings"]);
    for e in &r.tables {
        let rewrites: Vec<String> = e
            .rewrites
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .chain(e.counts.iter().map(|(rule, n)| format!("{n} {rule}")))
            .collect();
        t.row([
            e.table.clone(),
            e.rows.to_string(),
            human_bytes(e.bytes),
            rewrites.join(", "),
            e.warnings.len().to_string(),
        ]);
    }
    t.row([
        count(r.tables.len() as u64, "table"),
        r.total_rows.to_string(),
        human_bytes(r.total_bytes),
        String::new(),
        r.warnings.len().to_string(),
    ]);
    t.render()
}
