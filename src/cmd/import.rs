//! placeholder
use crate::cmd::{Ctx, Outcome};
use anyhow::{Result, bail};
pub async fn run(_ctx: &Ctx, _args: crate::cli::ImportArgs) -> Result<Outcome> {
    bail!("not built yet")
}
