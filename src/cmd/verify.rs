//! `pgconverge verify <dir>`: resolve the job, run it (`verify::verify`), log and report:
//! a table on stdout (`--json` for machines); exit 1 on any difference.

use anyhow::Result;

use crate::config::Engine;
use crate::hint::WithHint;

use crate::cli::VerifyArgs;
use crate::cmd::{Ctx, Outcome};
use crate::report::{Table, count};
use crate::store::export_dir::ExportDir;
use crate::store::open;
use crate::store::runlog::{self, Status};
use crate::verify::counts::{Report, Verdict};
use crate::verify::{self, Job};

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<Outcome> {
    let rec = ctx.recorder();
    let dir = ExportDir::at(&args.export_dir);
    let dir_text = dir.path().display().to_string();
    rec.log(
        rec.entry(Status::Started, format!("verify of {dir_text}"))
            .export_dir(&dir_text),
    );
    let report = match ctx.interruptible(resolve_and_verify(ctx, &args, dir)).await {
        Ok(r) => r,
        Err(e) => {
            rec.log(
                rec.entry(Status::Failed, format!("{e:#}"))
                    .export_dir(&dir_text),
            );
            return Err(e);
        }
    };
    let (status, message) = if report.ok {
        (
            Status::Completed,
            format!(
                "verified `{}`: {} agree",
                report.target_database,
                count(report.tables.len() as u64, "table")
            ),
        )
    } else {
        (
            Status::Failed,
            format!(
                "verify of `{}`: {}",
                report.target_database,
                report.differences.join("; ")
            ),
        )
    };
    rec.log(
        rec.entry(status, message)
            .export_dir(&dir_text)
            .tables(report.tables.len())
            .rows(report.target_rows())
            .details(serde_json::to_value(&report.tables)?),
    );
    if args.json {
        super::print_result(&report)?;
    } else {
        crate::out::print(render(&report, args.source));
    }
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::Difference
    })
}

async fn resolve_and_verify(ctx: &Ctx, args: &VerifyArgs, dir: ExportDir) -> Result<Report> {
    let manifest = open::manifest(&dir)?;
    if args.deep && !args.source && manifest.delta().is_some() {
        return Err(anyhow::anyhow!(
            "{} is a delta: its files hold only what changed, so --deep compares the target \
             with the live source",
            dir.path().display()
        ))
        .hint("add --source (verify --deep --source)");
    }
    if args.deep && manifest.is_legacy() {
        // Its manifest lists column names only: no value could be compared, and no file
        // checked against a checksum; a deep verify would report rows equal unread.
        return Err(anyhow::anyhow!(
            "{} was written by the old shell scripts: its manifest carries neither column \
             types nor checksums, so --deep cannot compare any value",
            dir.path().display()
        ))
        .hint("verify without --deep compares the row counts; for every value, export again with pgconverge and verify that export --deep");
    }
    let mapping = super::export_mapping(ctx, &dir, &manifest, args.map.as_deref())?;
    let source = match args.source {
        true => {
            let (engine, cfg) =
                super::source_config(ctx, args.source_url.as_deref(), &args.mysql).await?;
            let exported = Engine::from_kind(&manifest.source_kind());
            if engine != exported {
                return Err(anyhow::anyhow!(
                    "the export was read from {}, but the source given is {}",
                    exported.name(),
                    engine.name()
                ))
                .hint("give the export's source with --source-url (or SOURCE_URL)");
            }
            let db = manifest.source_database();
            let database = cfg.database_or(Some(&db), &db, "the export's source database")?;
            Some(super::source_in(engine, cfg, database, &mapping))
        }
        false => None,
    };
    let target = super::postgres_config(ctx, &args.postgres).await?;
    let target_db =
        target.database_or(args.target_db.as_deref(), &mapping.target_db, "--target-db")?;
    let schema = mapping.target_schema(args.schema.as_deref());
    let adjustments = runlog::import_adjustments(
        &runlog::read_all(&ctx.run_log, None).unwrap_or_default(),
        &open::absolute(dir.path()),
        &target_db,
        &schema,
    );
    let job = Job {
        target_db,
        target,
        schema,
        adjustments,
        source,
        foreign_keys: !args.no_fk,
        dir,
        manifest,
        mapping,
    };
    let report = verify::verify(&job).await?;
    if !args.deep {
        return Ok(report);
    }
    let source = match &job.source {
        Some(src) => verify::run::DeepSource::Live(Box::new(src.clone())),
        None => verify::run::DeepSource::Files,
    };
    let deep = verify::run::deep(&job, &source, args.max_diffs, &ctx.progress()).await?;
    Ok(report.with_deep(deep))
}

pub(super) fn render(r: &Report, with_source: bool) -> String {
    let mut headers = vec!["table", "manifest", "target"];
    if with_source {
        headers.push("source");
    }
    headers.push("status");
    let mut t = Table::new(headers);
    let n = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
    for c in &r.tables {
        let mut row = vec![c.table.clone(), n(c.manifest_rows), n(c.target_rows)];
        if with_source {
            row.push(n(c.source_rows));
        }
        row.push(
            match c.verdict {
                Verdict::Ok => "ok",
                Verdict::TargetDiffers => "DIFFERENT",
                Verdict::SourceDrift => "source changed",
                Verdict::Skipped => "skipped",
                Verdict::NotLoaded => "NOT LOADED",
                Verdict::Unknown => "no manifest count",
            }
            .to_string(),
        );
        t.row(row);
    }
    let mut out = t.render();
    // Why each skipped table is not compared (a migration history the target keeps).
    for c in r.tables.iter().filter(|c| c.verdict == Verdict::Skipped) {
        if let Some((_, why)) = c.message.split_once(": skipped (") {
            out.push_str(&format!(
                "skipped: `{}`: {}\n",
                c.table,
                why.strip_suffix(')').unwrap_or(why)
            ));
        }
    }
    if let Some(deep) = &r.deep {
        let mut t = Table::new([
            "deep",
            "matched by",
            "source",
            "target",
            "equal",
            "only source",
            "only target",
            "different",
        ]);
        for d in deep {
            t.row([
                d.table.clone(),
                d.matched_by.clone(),
                d.source_rows.to_string(),
                d.target_rows.to_string(),
                d.equal.to_string(),
                d.only_in_source.to_string(),
                d.only_in_target.to_string(),
                d.different.to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
        for d in deep {
            for a in &d.accepted_changes {
                out.push_str(&format!(
                    "accepted changes in `{}`: {}{}\n",
                    crate::escape::text(&d.table),
                    a.describe(),
                    if a.agrees() {
                        ""
                    } else {
                        " (differs from the export's count: a difference)"
                    }
                ));
            }
        }
        for d in deep {
            for k in &d.key_maps {
                out.push_str(&format!(
                    "{}{}\n",
                    k.describe(),
                    if k.agrees() { "" } else { ": a difference" }
                ));
            }
        }
        for d in deep.iter().filter(|d| !d.not_compared.is_empty()) {
            out.push_str(&format!(
                "not compared in `{}`: {}\n",
                d.table,
                d.not_compared.join(", ")
            ));
        }
    }
    if !r.foreign_keys.is_empty() {
        let bad = r.foreign_keys.iter().filter(|f| f.orphans > 0).count();
        out.push_str(&format!(
            "foreign keys checked for orphan rows: {} ({} with orphans)\n",
            r.foreign_keys.len(),
            bad
        ));
    }
    for d in &r.differences {
        out.push_str(&format!("{d}\n"));
    }
    if r.ok {
        out.push_str(&format!(
            "verify: OK, {}, {} in `{}`\n",
            count(r.tables.len() as u64, "table"),
            count(r.target_rows(), "row"),
            r.target_database
        ));
    } else {
        out.push_str(&format!(
            "verify: {}\n",
            count(r.differences.len() as u64, "difference")
        ));
    }
    out
}
