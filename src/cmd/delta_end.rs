//! `pgconverge delta-end <PROFILE|DATABASE>`: end the delta chain of a target schema
//! (`db::state::forget`: its row of `pgconverge.state`, and the table and schema once
//! empty). The target's data is not touched. Ending a chain that does not exist is not
//! an error. A PostgreSQL source's chain also has a logical replication slot, which
//! retains WAL until dropped: with `--source-url` it is dropped (`--slot` names one no
//! target knows); without, the command says how.

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::config::{self, Engine};
use crate::db::pglog;
use crate::db::position::LogPosition;
use crate::hint::with_hint;

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
    /// The replication slot dropped on a PostgreSQL source.
    dropped_slot: Option<String>,
    /// A slot the chain leaves on the source (no --source-url given).
    slot_left: Option<String>,
}

pub async fn run(ctx: &Ctx, args: DeltaEndArgs) -> Result<Outcome> {
    let mapping = Mapping::resolve(&args.target, None, &ctx.layers)?;
    let cfg = super::postgres_config(ctx, &args.postgres).await?;
    let db = cfg.database_or(args.target_db.as_deref(), &mapping.target_db, "--target-db")?;
    let schema = mapping.target_schema(args.schema.as_deref());
    let rec = ctx.recorder();
    let mut client = postgres::connect(&cfg, &db).await?;
    let ended = match &args.slot {
        // Only a slot: the target is not touched.
        Some(_) => None,
        None => state::forget(&mut client, &schema).await?,
    };
    let chain_slot = ended
        .as_ref()
        .and_then(|s| serde_json::from_str::<LogPosition>(&s.position).ok())
        .and_then(|p| p.slot);
    let slot = args.slot.clone().or(chain_slot);
    let (mut dropped_slot, mut slot_left) = (None, None);
    if let Some(name) = &slot {
        match ctx.layers.get(args.source_url.as_deref(), "SOURCE_URL") {
            Some(_) => {
                let (engine, src) = config::source(
                    args.source_url.as_deref(),
                    &crate::cli::MysqlArgs::default(),
                    &ctx.layers,
                )?;
                if engine != Engine::Postgresql {
                    return Err(anyhow!(
                        "--source-url must name the PostgreSQL source that holds slot `{name}`"
                    ));
                }
                let db = src.database.clone().unwrap_or_else(|| "postgres".into());
                let source = postgres::connect(&src, &db).await?;
                if pglog::drop_slot(&source, name).await? {
                    dropped_slot = Some(name.clone());
                } else if args.slot.is_some() {
                    return Err(with_hint(
                        anyhow!("the source has no replication slot `{name}`"),
                        "`pgconverge check --source-url URL` lists pgconverge's slots",
                    ));
                }
            }
            None => slot_left = Some(name.clone()),
        }
    }
    let message = match &ended {
        Some(s) => format!(
            "delta chain of schema `{schema}` in `{db}` ended (it stood at {}, {}, applied {})",
            s.export_id, s.kind, s.applied_at
        ),
        None => format!("schema `{schema}` of `{db}` has no delta chain: nothing to end"),
    };
    let mut message = match (&args.slot, &dropped_slot) {
        (Some(_), Some(d)) => format!("replication slot `{d}` dropped on the source"),
        (None, Some(d)) => format!("{message}; replication slot `{d}` dropped on the source"),
        _ => message,
    };
    if let Some(left) = &slot_left {
        message.push_str(&format!(
            "; the chain's replication slot `{left}` still retains WAL on the source: drop it \
             with `pgconverge delta-end {} --slot {left} --source-url <URL>` (or SELECT \
             pg_drop_replication_slot('{left}') there)",
            args.target
        ));
    }
    if ended.is_some() || dropped_slot.is_some() {
        rec.log(rec.entry(Status::Completed, message.clone()));
    }
    if args.json {
        super::print_json(&Report {
            target_database: db,
            schema,
            ended,
            dropped_slot,
            slot_left,
        })?;
    } else {
        crate::out::println(message);
    }
    Ok(Outcome::Success)
}
