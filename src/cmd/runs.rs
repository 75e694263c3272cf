//! `pgconverge runs`: print the run log (and a legacy `migration_log.json`) as a table
//! or as JSON.

use anyhow::Result;

use crate::cli::RunsArgs;
use crate::cmd::{Ctx, Outcome};
use crate::import::plan::shorten;
use crate::report::Table;
use crate::store::runlog;

/// Characters of a message shown per row.
const MESSAGE_WIDTH: usize = 100;

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
    // The message is the last column and cut to one line of MESSAGE_WIDTH characters,
    // so one long message does not pad every row (`--json` has every message whole).
    let mut table = Table::new(["timestamp", "status", "command", "host", "message"]);
    // The subcommand's name, wherever global options put it (`-q export ...`).
    let names: Vec<String> = <crate::cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for e in &entries {
        let cmd = match &e.source {
            Some(src) => format!("({src})"),
            None => e
                .command
                .split(' ')
                .find(|w| names.iter().any(|n| n == w))
                .or_else(|| e.command.split(' ').next())
                .unwrap_or_default()
                .to_string(),
        };
        table.row([
            e.timestamp.clone(),
            e.status.clone(),
            cmd,
            e.host.clone(),
            shorten(&e.message, MESSAGE_WIDTH),
        ]);
    }
    crate::out::print(table.render());
    Ok(Outcome::Success)
}
