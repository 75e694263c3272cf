//! `pgconverge log-run <status> [message]`: append one manual entry to the run log.

use anyhow::Result;

use crate::cli::LogRunArgs;
use crate::cmd::{Ctx, Outcome};
use crate::hint::WithHint;
use crate::store::runlog::{self, Entry, Status};

pub fn run(ctx: &Ctx, args: LogRunArgs) -> Result<Outcome> {
    let status: Status = args
        .status
        .parse()
        .hint("e.g. pgconverge log-run completed \"kratos migrated\"")?;
    let entry = Entry::new(status, &ctx.command_line, args.message.unwrap_or_default());
    runlog::append(&ctx.run_log, &entry)?;
    crate::out::eprintln(format!(
        "logged `{}` to {}",
        status.as_str(),
        ctx.run_log.display()
    ));
    Ok(Outcome::Success)
}
