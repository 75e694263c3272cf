//! The start of a delta chain (`export --delta-base`): a full export that also records the
//! binary log position its snapshot is consistent with and whose log it is. Before
//! anything is read it refuses what no delta of it could follow (`checks::follow`) and a
//! source whose log a delta cannot read (`binlog_status::missing`).

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};

use crate::config::Engine;
use crate::db::position::{LogPosition, ServerIdentity};
use crate::db::source::Source;
use crate::db::{binlog, binlog_status, mysql, mysql_keys};
use crate::export::delta::checks;
use crate::export::plan::TablePlan;
use crate::hint::with_hint;
use crate::mapping::Mapping;

/// Refuse, before the base reads anything, what would stop every delta of it.
pub async fn preflight(
    source: &Source,
    plans: &[Arc<TablePlan>],
    mapping: &Mapping,
    full_copy: bool,
) -> Result<Vec<crate::store::chain::Cascade>> {
    if source.engine == Engine::Postgresql {
        crate::export::delta::pg::preflight(source, plans, mapping, full_copy).await?;
        return Ok(Vec::new());
    }
    let mut conn = mysql::connect(&source.cfg, Some(&source.database)).await?;
    let settings = binlog_status::settings(&mut conn).await?;
    refuse_missing(&settings)?;
    let catalog = mysql::read_catalog(&mut conn, &source.database).await?;
    let uniques = mysql_keys::unique_keys(&mut conn, &source.database).await?;
    let fks = mysql_keys::foreign_keys(&mut conn, &source.database).await?;
    let _ = conn.disconnect().await;
    let plans: Vec<TablePlan> = plans.iter().map(|p| (**p).clone()).collect();
    checks::follow(
        &plans,
        &catalog,
        &uniques,
        &fks,
        mapping,
        full_copy,
        Engine::Mysql,
    )
    .map(|chain| chain.cascades)
    .map_err(|errors| refusal("a delta chain cannot start from this export", &errors))
}

/// The prerequisites of reading the log, all at once.
pub fn refuse_missing(settings: &binlog_status::LogSettings) -> Result<()> {
    refuse_prerequisites(
        "the source's binary log cannot carry a delta chain",
        settings.missing(),
    )
}

/// Missing prerequisites (each with its fix) as one error naming them all; none: Ok.
pub fn refuse_prerequisites(what: &str, missing: Vec<(String, String)>) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing
        .iter()
        .map(|(what, fix)| format!("  - {what}: {fix}"))
        .collect();
    Err(with_hint(
        anyhow!("{what}:\n{}", list.join("\n")),
        "`pgconverge check` lists the same; change the settings, then export again",
    ))
}

/// Problems found before anything was read, as one error.
pub fn refusal(what: &str, errors: &[String]) -> anyhow::Error {
    anyhow!(
        "{what}; nothing was read:\n{}",
        errors
            .iter()
            .map(|e| format!("  - {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The full position of a snapshot at (file, offset): its GTID and the log's identity.
pub async fn position(source: &Source, at: Option<(String, u64)>) -> Result<LogPosition> {
    let Some((file, pos)) = at else {
        bail!("the export's snapshot did not report its binary log position");
    };
    let mut conn = mysql::connect(&source.cfg, None).await?;
    let settings = binlog_status::settings(&mut conn).await?;
    let gtid = binlog_status::gtid_at(&mut conn, settings.mariadb, &file, pos).await?;
    let files: Vec<String> = binlog_status::binary_logs(&mut conn)
        .await?
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let _ = conn.disconnect().await;
    let file_created = binlog::file_created(&source.cfg, &file, &files).await?;
    Ok(LogPosition {
        engine: "mysql".into(),
        file,
        position: pos,
        gtid,
        server: ServerIdentity {
            file_created,
            ..settings.identity()
        },
        ..Default::default()
    })
}

/// An export's id: its profile, time stamp and process (the manifest's sha256 is what
/// identifies it exactly).
pub fn export_id(profile: &str, timestamp: &str) -> String {
    format!("{profile}@{timestamp}-{}", std::process::id())
}
