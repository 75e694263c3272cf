//! `pgconverge delta-end <PROFILE|DATABASE>`: end the delta chain of a target schema
//! (`db::state::forget`: its row of `pgconverge.state`, and the table and schema once
//! empty). The target's data is not touched. Ending a chain that does not exist is not
//! an error.

use anyhow::Result;
use serde::Serialize;

use crate::cli::DeltaEndArgs;
use crate::cmd::{Ctx, Outcome};
use crate::db::{postgres, state};
use crate::mapping::Mapping;
use crate::store::runlog::Status;

#[derive(Serialize)]
struct Report {
    target_database: String,
    schema: String,
    /// Where the chain stood when it was ended; None when there was none.
    ended: Option<state::State>,
}

pub async fn run(ctx: &Ctx, args: DeltaEndArgs) -> Result<Outcome> {
    let mapping = Mapping::resolve(&args.target, None, &ctx.layers)?;
    let cfg = super::postgres_config(ctx, &args.postgres).await?;
    let db = cfg.database_or(args.target_db.as_deref(), &mapping.target_db, "--target-db")?;
    let schema = mapping.target_schema(args.schema.as_deref());
    let rec = ctx.recorder();
    let mut client = postgres::connect(&cfg, &db).await?;
    let ended = state::forget(&mut client, &schema).await?;
    let message = match &ended {
        Some(s) => format!(
            "delta chain of schema `{schema}` in `{db}` ended (it stood at {}, {}, applied {})",
            s.export_id, s.kind, s.applied_at
        ),
        None => format!("schema `{schema}` of `{db}` has no delta chain: nothing to end"),
    };
    if ended.is_some() {
        rec.log(rec.entry(Status::Completed, message.clone()));
    }
    if args.json {
        super::print_json(&Report {
            target_database: db,
            schema,
            ended,
        })?;
    } else {
        crate::out::println(message);
    }
    Ok(Outcome::Success)
}
