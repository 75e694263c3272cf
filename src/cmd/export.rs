//! `pgconverge export <profile|database>`: resolve the job, run it (`export::export`),
//! report the tables written and the export directory (last line, or `--json`).

use anyhow::Result;

use crate::cli::ExportArgs;
use crate::cmd::{Ctx, Outcome};
use crate::export::{self, assemble};
use crate::progress::human_bytes;
use crate::report::Table;
use crate::store::publish;
use crate::store::runlog::Status;

pub async fn run(ctx: &Ctx, args: ExportArgs) -> Result<Outcome> {
    let progress = ctx.progress();
    let rec = ctx.recorder();
    let (mapping, target) = super::new_export(ctx, &args.source, args.map.as_deref(), &args.out)?;
    let db = mapping.source_db.clone();
    let final_dir = target.final_dir.display().to_string();
    rec.log(
        rec.entry(Status::Started, format!("export of `{db}`"))
            .export_dir(&final_dir),
    );

    let result = async {
        export::run::leftovers(&target, args.clean_partials, &progress)?;
        let source =
            super::export_source(ctx, args.source_url.as_deref(), &args.mysql, &mapping).await?;
        let job = super::export_job(source, mapping, &args.read);
        export::export(&job, &target, &progress).await
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
            return Err(e.context(format!("export of `{db}` failed; nothing was kept")));
        }
    };
    let final_dir = exported.dir.display().to_string();
    let report = assemble::report(&final_dir, &exported.manifest);
    rec.log(
        rec.entry(
            Status::Completed,
            format!(
                "exported `{db}`: {} tables, {} rows",
                report.tables.len(),
                report.total_rows
            ),
        )
        .export_dir(&final_dir)
        .tables(report.tables.len())
        .rows(report.total_rows),
    );
    for w in &report.warnings {
        progress.warn(w);
    }
    if args.json {
        super::print_result(&report)?;
    } else {
        crate::out::print(render(&report));
        crate::out::println(format!("export: {final_dir}"));
    }
    Ok(Outcome::Success)
}

fn render(r: &assemble::Report) -> String {
    let mut t = Table::new(["table", "rows", "size", "rewrites", "warnings"]);
    for e in &r.tables {
        let rewrites: Vec<String> = e
            .rewrites
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
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
        format!("{} tables", r.tables.len()),
        r.total_rows.to_string(),
        human_bytes(r.total_bytes),
        String::new(),
        r.warnings.len().to_string(),
    ]);
    t.render()
}
