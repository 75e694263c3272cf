//! `pgconverge runs`: print the run log (and a legacy `migration_log.json`) as a table
//! or as JSON.

use anyhow::Result;

use crate::cli::RunsArgs;
use crate::cmd::{Ctx, Outcome};
use crate::report::Table;
use crate::store::runlog;

pub fn run(ctx: &Ctx, args: RunsArgs) -> Result<Outcome> {
    let legacy = args
        .legacy
        .clone()
        .or_else(|| runlog::legacy_beside(&ctx.run_log));
    let entries = runlog::read_all(&ctx.run_log, legacy.as_deref())?;
    if entries.is_empty() {
        crate::out::eprintln(format!("no run log at {} yet", ctx.run_log.display()));
    }
    if args.json {
        super::print_json(&entries)?;
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
            e.message.clone(),
            e.host.clone(),
        ]);
    }
    crate::out::print(table.render());
    Ok(Outcome::Success)
}
