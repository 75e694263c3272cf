//! `pgconverge verify <dir>`: for every table of the manifest, the manifest's row count
//! against an exact `count(*)` in PostgreSQL (and in MySQL with `--source`), plus orphan
//! rows of every foreign key among the imported tables (the import bypassed FK triggers).
//! A table on stdout (`--json` for machines); exit 1 on any difference.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::cmd::{Ctx, Outcome};
use crate::compare::{self, OrphanCheck, TableCheck, Verdict};
use crate::manifest;
use crate::profile::Profile;
use crate::report::Table;
use crate::runlog::{self, Entry, Status};
use crate::{mysql, postgres};

#[derive(Serialize)]
struct Report {
    ok: bool,
    export_dir: String,
    target_database: String,
    schema: String,
    tables: Vec<TableCheck>,
    foreign_keys: Vec<OrphanCheck>,
    differences: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<Outcome> {
    let clock = Instant::now();
    let loaded = manifest::load(&args.export_dir)?;
    let specs = loaded.tables();
    let profile = Profile::resolve(&loaded.profile(), &ctx.layers);
    let target_db = args
        .target_db
        .clone()
        .unwrap_or_else(|| profile.target_db.clone());
    let pg = super::postgres_config(ctx, &args.postgres).await?;
    let client = postgres::connect(&pg, &target_db).await?;
    let catalog = postgres::read_catalog(&client, &args.schema).await?;

    let mut source_counts = Vec::new();
    if args.source {
        let my = super::mysql_config(ctx, &args.mysql).await?;
        let db = loaded.source_database();
        let mut conn = mysql::connect(&my, Some(&db)).await?;
        for s in &specs {
            source_counts.push(Some(mysql::count_rows(&mut conn, &db, &s.name).await?));
        }
        let _ = conn.disconnect().await;
    } else {
        source_counts.resize(specs.len(), None);
    }

    let mut tables = Vec::new();
    for (s, source) in specs.iter().zip(source_counts) {
        let target = if catalog.tables.contains_key(&s.name) {
            Some(postgres::count_rows(&client, &args.schema, &s.name).await?)
        } else {
            None
        };
        let reason = profile
            .skip_if_absent
            .contains(&s.name)
            .then(|| format!("absent in the target; profile `{}` skips it", profile.name));
        tables.push(compare::check_table(
            &s.name,
            s.rows,
            target,
            source,
            reason.as_deref(),
        ));
    }

    let mut foreign_keys = Vec::new();
    if !args.no_fk {
        let imported: Vec<&String> = tables
            .iter()
            .filter(|t| t.target_rows.is_some())
            .map(|t| &t.table)
            .collect();
        for fk in &catalog.foreign_keys {
            let ours =
                |schema: &str, table: &String| schema == args.schema && imported.contains(&table);
            if ours(&fk.child_schema, &fk.child) && ours(&fk.parent_schema, &fk.parent) {
                foreign_keys.push(OrphanCheck {
                    constraint: fk.name.clone(),
                    child: fk.child.clone(),
                    child_columns: fk.child_columns.clone(),
                    parent: fk.parent.clone(),
                    parent_columns: fk.parent_columns.clone(),
                    orphans: postgres::count_orphans(&client, fk).await?,
                });
            }
        }
    }

    let mut differences: Vec<String> = tables
        .iter()
        .filter(|t| t.verdict.is_difference())
        .map(|t| t.message.clone())
        .collect();
    differences.extend(
        foreign_keys
            .iter()
            .filter(|f| f.orphans > 0)
            .map(|f| f.message()),
    );
    let report = Report {
        ok: differences.is_empty(),
        export_dir: args.export_dir.display().to_string(),
        target_database: target_db.clone(),
        schema: args.schema.clone(),
        tables,
        foreign_keys,
        differences,
    };

    let rows: u64 = report.tables.iter().filter_map(|t| t.target_rows).sum();
    let mut entry = Entry::new(
        if report.ok {
            Status::Completed
        } else {
            Status::Failed
        },
        &ctx.command_line,
        if report.ok {
            format!(
                "verified `{target_db}`: {} tables agree",
                report.tables.len()
            )
        } else {
            format!("verify of `{target_db}`: {}", report.differences.join("; "))
        },
    );
    entry.export_dir = Some(report.export_dir.clone());
    entry.tables = Some(report.tables.len() as u64);
    entry.rows = Some(rows);
    entry.duration_ms = Some(clock.elapsed().as_millis() as u64);
    entry.details = serde_json::to_value(&report.tables).ok();
    runlog::append_or_warn(&ctx.run_log, &entry);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, args.source));
    }
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::Difference
    })
}

fn render(r: &Report, with_source: bool) -> String {
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
                Verdict::Unknown => "no manifest count",
            }
            .to_string(),
        );
        t.row(row);
    }
    let mut out = t.render();
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
    let rows: u64 = r.tables.iter().filter_map(|t| t.target_rows).sum();
    if r.ok {
        out.push_str(&format!(
            "verify: OK, {} tables, {rows} rows in `{}`\n",
            r.tables.len(),
            r.target_database
        ));
    } else {
        out.push_str(&format!("verify: {} differences\n", r.differences.len()));
    }
    out
}
