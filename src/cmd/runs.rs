//! `pgconverge runs`: print the run log (and a legacy `migration_log.json`) as a table
//! or as JSON.

use anyhow::Result;

use crate::cli::RunsArgs;
use crate::cmd::{Ctx, Outcome};
use crate::report::Table;
use crate::runlog;

pub fn run(ctx: &Ctx, args: RunsArgs) -> Result<Outcome> {
    let mut entries = Vec::new();
    let legacy = args.legacy.clone().or_else(|| {
        let beside = ctx
            .run_log
            .parent()
            .map(|d| d.join("migration_log.json"))
            .unwrap_or_else(|| "migration_log.json".into());
        beside.exists().then_some(beside)
    });
    if let Some(path) = legacy {
        entries.extend(runlog::read(&path)?);
    }
    if ctx.run_log.exists() {
        entries.extend(runlog::read(&ctx.run_log)?);
    } else if entries.is_empty() {
        eprintln!("no run log at {} yet", ctx.run_log.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(Outcome::Success);
    }
    let mut table = Table::new(["timestamp", "status", "command", "message", "host"]);
    for e in &entries {
        let cmd = match &e.source {
            Some(src) => format!("({src})"),
            None => e.command.split(' ').next().unwrap_or_default().to_string(),
        };
        table.row([
            e.timestamp.clone(),
            e.status.clone(),
            cmd,
            e.message.replace('\n', " "),
            e.host.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(Outcome::Success)
}
