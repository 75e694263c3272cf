//! A delta chain at import: before any write, where the target stands
//! (`pgconverge.state`) against what the export needs. A chain's base may always be
//! imported (it starts the chain again) and records itself; a delta is refused unless the
//! target stands exactly at its base, and its plan becomes the delta's
//! (`plan::delta::apply`). The guard and the record run inside the import's transaction.

use anyhow::{Result, anyhow};
use tokio_postgres::Client;

use crate::db::catalog::Catalog;
use crate::db::state::{self, State};
use crate::hint::with_hint;
use crate::import::plan::{Plan, delta};
use crate::import::run::Job;
use crate::store::chain::{KIND_DELTA, KIND_FULL};

/// Prepare the plan of a chain's export: record the base, or check and apply the delta.
/// Nothing to do for a plain export.
pub async fn prepare(client: &Client, job: &Job, catalog: &Catalog, plan: &mut Plan) -> Result<()> {
    let schema = &job.options.schema;
    let Some((m, position)) = job
        .manifest
        .current()
        .and_then(|m| m.position.as_ref().map(|p| (m, p)))
    else {
        return not_on_a_chain(client, job).await;
    };
    let now = State {
        target_schema: schema.clone(),
        export_id: m.export_id.clone().unwrap_or_default(),
        kind: m.kind.clone().unwrap_or_default(),
        manifest_sha256: job.manifest_sha256.clone(),
        position: serde_json::to_string(position)?,
        source: format!(
            "{}://{}:{}/{}",
            crate::config::Engine::from_kind(&m.source.kind).name(),
            m.source.host,
            m.source.port,
            m.source.database
        ),
        applied_at: String::new(),
    };
    match m.kind.as_deref() {
        Some(KIND_FULL) => {
            plan.record_state = state::record_sql(&now);
            Ok(())
        }
        Some(KIND_DELTA) => {
            let info = m
                .delta
                .as_ref()
                .ok_or_else(|| anyhow!("a delta without its base"))?;
            let stands = state::read(client, schema).await?;
            if let Some(why) = refusal(
                stands.as_ref(),
                &info.base.manifest_sha256,
                &job.manifest_sha256,
            ) {
                return Err(with_hint(
                    anyhow!(
                        "delta {} cannot be imported into schema `{schema}` of `{}`: {why}",
                        m.export_id.as_deref().unwrap_or("?"),
                        job.target_db
                    ),
                    format!(
                        "a delta applies once, in order, onto the export it was taken from ({}, \
                         {}); `pgconverge check` shows where the target stands",
                        info.base.export_id, info.base.dir
                    ),
                ));
            }
            delta::apply(
                plan,
                m,
                catalog,
                &job.mapping,
                delta::StateSql {
                    guard: state::guard_sql(schema, &info.base.manifest_sha256),
                    record: state::record_sql(&now),
                },
            );
            Ok(())
        }
        other => Err(anyhow!("a format-4 export of unknown kind {other:?}")),
    }
}

/// A plain export (no log position) into a target that follows a chain: refused before
/// any write. Loaded, it would leave the chain's state vouching for data the target no
/// longer holds, and the next delta would be applied onto it.
async fn not_on_a_chain(client: &Client, job: &Job) -> Result<()> {
    let schema = &job.options.schema;
    let Some(stands) = state::read(client, schema).await? else {
        return Ok(());
    };
    Err(with_hint(
        anyhow!(
            "schema `{schema}` of `{}` follows a delta chain (it stands at {} {}, applied \
             {}): a full import of an export that starts no chain would leave that record \
             untrue, and the next delta would be applied onto other data",
            job.target_db,
            stands.kind,
            stands.export_id,
            stands.applied_at
        ),
        format!(
            "end the chain first (`pgconverge delta-end {} --target-db {} --schema {schema}`, \
             with --source-url for a PostgreSQL source to drop its replication slot; the data \
             stays), or import an export made with --delta-base, which starts a new chain",
            job.mapping.name, job.target_db
        ),
    ))
}

/// Why a delta whose base has manifest sha256 `base` cannot be applied where the target
/// stands; None when it can. `this`: the delta's own manifest sha256.
pub fn refusal(stands: Option<&State>, base: &str, this: &str) -> Option<String> {
    match stands {
        None => Some(
            "the target has no delta chain (pgconverge.state has no row for it): import the \
             chain's base first"
                .into(),
        ),
        Some(s) if s.manifest_sha256 == this => Some(format!(
            "this delta was already applied (at {})",
            s.applied_at
        )),
        Some(s) if s.manifest_sha256 != base => Some(format!(
            "the target stands at {} ({} {}, applied {}), not at this delta's base",
            s.export_id, s.kind, s.manifest_sha256, s.applied_at
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_applies_once_in_order() {
        let at = |sha: &str| State {
            target_schema: "public".into(),
            export_id: "app@1".into(),
            kind: "full".into(),
            manifest_sha256: sha.into(),
            position: "{}".into(),
            source: String::new(),
            applied_at: "2026-01-01T00:00:00Z".into(),
        };
        assert!(refusal(None, "b", "d").unwrap().contains("no delta chain"));
        assert_eq!(refusal(Some(&at("b")), "b", "d"), None);
        assert!(
            refusal(Some(&at("d")), "b", "d")
                .unwrap()
                .contains("already applied")
        );
        assert!(
            refusal(Some(&at("x")), "b", "d")
                .unwrap()
                .contains("not at this delta's base")
        );
    }
}
