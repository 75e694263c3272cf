//! A delta chain from a PostgreSQL source (docs/DESIGN.md, "PostgreSQL sources"): the
//! base's slot and position, and the delta export itself: the refusals first, then the
//! end snapshot, the slot's changes up to the WAL position `L` read after it (keys from
//! every transaction, expectations only from those the snapshot sees), the keys, the
//! files through `pgwrite`, the manifest, and only then the slot moved to the delta's end
//! (`visible::Horizon`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use tokio_postgres::Client;

use crate::codec::test_decoding::{self, Action};
use crate::config::Engine;
use crate::db::catalog::Snapshot;
use crate::db::position::{LogPosition, ServerIdentity, lsn_text};
use crate::db::source::Source;
use crate::db::{pgkeys, pglog, pgsource, postgres};
use crate::export::assemble::{self, PartWritten};
use crate::export::delta::base::{self, refusal};
use crate::export::delta::changes::TableChanges;
use crate::export::delta::checks::{self, Chain};
use crate::export::delta::pgwrite::{PgChanged, write_changes};
use crate::export::delta::run::{DeltaJob, key_file, previous_count, previous_export};
use crate::export::delta::visible::{Horizon, XidSnapshot};
use crate::export::plan::TablePlan;
use crate::export::run::Exported;
use crate::hint::with_hint;
use crate::mapping::{Mapping, STORED};
use crate::progress::Progress;
use crate::store::chain::{self, BaseRef, DeltaInfo, TableDelta};
use crate::store::export_dir::{self, NewExport};
use crate::store::manifest::{self, Manifest, TableEntry};
use crate::store::{publish, runlog};

/// How long a delta waits for a slot another session reads.
const SLOT_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The prerequisites of logical decoding, all at once.
fn refuse_missing(settings: &pglog::LogicalSettings) -> Result<()> {
    base::refuse_prerequisites(
        "the PostgreSQL source cannot carry a delta chain (logical decoding)",
        settings.missing(),
    )
}

/// What the chain follows, with every table's replica identity checked against its key.
async fn follow(
    client: &Client,
    source: &Source,
    plans: &[Arc<TablePlan>],
    mapping: &Mapping,
    full_copy: bool,
) -> Result<(Chain, Vec<crate::db::catalog::SourceTable>), Vec<String>> {
    let ns = &source.namespace;
    let read = async {
        let catalog = pgsource::read_catalog(client, ns).await?;
        let uniques = pgkeys::unique_keys(client, ns).await?;
        let identities = pgkeys::replica_identities(client, ns).await?;
        let unlogged = pgkeys::unlogged(client, ns).await?;
        anyhow::Ok((catalog, uniques, identities, unlogged))
    };
    let (catalog, uniques, identities, unlogged) =
        read.await.map_err(|e| vec![format!("{e:#}")])?;
    let plans: Vec<TablePlan> = plans.iter().map(|p| (**p).clone()).collect();
    let mut chain = checks::follow(
        &plans,
        &catalog,
        &uniques,
        &[],
        mapping,
        full_copy,
        Engine::Postgresql,
    )?;
    let mut errors: Vec<String> = unlogged
        .iter()
        .filter(|t| chain.tables.contains_key(*t))
        .map(|t| {
            format!(
                "table `{t}` is UNLOGGED (or has an unlogged partition): its changes never reach \
                 the WAL, so no delta can see them (hint: ALTER TABLE ... SET LOGGED, or leave \
                 it out of the chain with --exclude)"
            )
        })
        .collect();
    for (name, f) in chain.tables.iter_mut() {
        if f.full_copy.is_some() {
            continue;
        }
        let identity = identities
            .get(name)
            .cloned()
            .unwrap_or(pgkeys::Identity::Nothing);
        if identity.carries(&f.key) {
            continue;
        }
        let why = format!(
            "its UPDATE and DELETE records do not carry its key ({}): its replica identity is {}",
            f.key.join(", "),
            match &identity {
                pgkeys::Identity::Nothing => "NOTHING (or DEFAULT without a primary key)".into(),
                pgkeys::Identity::Columns(c) => format!("the index over ({})", c.join(", ")),
                pgkeys::Identity::Full => "FULL".into(),
            }
        );
        let fix = format!(
            "ALTER TABLE {} REPLICA IDENTITY FULL (or USING INDEX <a unique index over ({})>)",
            crate::db::sql::pg::qualified(ns, name),
            f.key.join(", ")
        );
        if full_copy {
            f.full_copy = Some(why);
        } else {
            errors.push(format!(
                "table `{name}`: {why} (hint: {fix}, or pass --delta-full-copy)"
            ));
        }
    }
    if errors.is_empty() {
        Ok((chain, catalog))
    } else {
        Err(errors)
    }
}

/// Refuse, before the base reads anything, what would stop every delta of it.
pub async fn preflight(
    source: &Source,
    plans: &[Arc<TablePlan>],
    mapping: &Mapping,
    full_copy: bool,
) -> Result<()> {
    let client = pgsource::connect_reader(&source.cfg, &source.database).await?;
    refuse_missing(&pglog::settings(&client).await?)?;
    follow(&client, source, plans, mapping, full_copy)
        .await
        .map(|_| ())
        .map_err(|errors| refusal("a delta chain cannot start from this export", &errors))
}

/// The base's slot, created before its snapshot: its name and consistent point.
pub struct BaseSlot {
    pub name: String,
    pub lsn: u64,
    system_identifier: Option<String>,
}

pub async fn create_slot(source: &Source, profile: &str, timestamp: &str) -> Result<BaseSlot> {
    let name = pglog::slot_name(profile, timestamp);
    let client = postgres::connect(&source.cfg, &source.database).await?;
    let observer = postgres::connect(&source.cfg, &source.database).await?;
    let lsn = pglog::create_slot(&client, &observer, &name).await?;
    let system_identifier = postgres::system_identifier(&observer).await?;
    Ok(BaseSlot {
        name,
        lsn,
        system_identifier,
    })
}

/// Drop a base's slot after the base failed.
pub async fn drop_slot(source: &Source, name: &str) {
    if let Ok(client) = postgres::connect(&source.cfg, &source.database).await {
        let _ = pglog::drop_slot(&client, name).await;
    }
}

pub fn position(slot: &BaseSlot) -> LogPosition {
    at(&slot.name, slot.lsn, slot.system_identifier.clone())
}

fn at(slot: &str, lsn: u64, system_identifier: Option<String>) -> LogPosition {
    LogPosition {
        engine: "postgresql".into(),
        position: lsn,
        slot: Some(slot.to_string()),
        lsn: Some(lsn_text(lsn)),
        server: ServerIdentity {
            system_identifier,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Everything decided before the end snapshot is taken.
struct Prepared {
    /// The session holding the chain's lock (`pglog::lock_chain`) until the slot moved.
    guard: Client,
    previous: Manifest,
    previous_sha256: String,
    from: LogPosition,
    slot: String,
    server_version: String,
    system_identifier: Option<String>,
    plans: Vec<Arc<TablePlan>>,
    chain: Chain,
    /// A partition's (schema, name) -> its root table: decoding names the partition.
    roots: BTreeMap<(String, String), String>,
    started_at: String,
}

/// Take the delta into `target`; on any error the temporary directory is removed and
/// the slot stays where it was.
pub async fn export(job: &DeltaJob, target: &NewExport, progress: &Progress) -> Result<Exported> {
    let result = async {
        let p = prepare(job, progress).await?;
        publish::create(target)?;
        let (manifest, end) = read(job, &p, target, progress).await?;
        let dir = publish::seal(&manifest, target)?;
        // Sealed: the slot may move on. If it does not, the next delta reads these
        // changes again, which is harmless.
        let Some(upto) = end.filter(|e| *e > p.from.position) else {
            return Ok(Exported { dir, manifest });
        };
        if let Err(e) = pglog::advance(&p.guard, &p.slot, upto).await {
            progress.note(format!(
                "warning: the delta is sealed but slot `{}` could not be moved to {}: {e:#}; \
                 the next delta reads these changes again",
                p.slot,
                lsn_text(upto)
            ));
        }
        Ok(Exported { dir, manifest })
    }
    .await;
    if result.is_err() {
        publish::discard(target);
    }
    result
}

/// A session on the source holding the chain's lock, taken within `SLOT_BUSY_WAIT`.
async fn lock_chain(job: &DeltaJob, slot: &str, progress: &Progress) -> Result<Client> {
    let guard = postgres::connect(&job.source.cfg, &job.source.database).await?;
    let waited = Instant::now();
    let mut told = false;
    while !pglog::lock_chain(&guard, slot).await? {
        let pid = pglog::chain_locked_by(&guard, slot)
            .await?
            .unwrap_or_default();
        if waited.elapsed() >= SLOT_BUSY_WAIT {
            return Err(with_hint(
                anyhow!(
                    "another delta of this chain (slot `{slot}`) is being taken by session \
                     {pid} (still, after {} s)",
                    SLOT_BUSY_WAIT.as_secs()
                ),
                format!(
                    "take one delta at a time, each from the one before: wait for it, or, if \
                     its pgconverge was killed, end its session on the source with SELECT \
                     pg_terminate_backend({pid})"
                ),
            ));
        }
        if !told {
            progress.note(format!(
                "another delta of this chain (slot `{slot}`) is being taken by session {pid}: \
                 waiting up to {} s for it",
                SLOT_BUSY_WAIT.as_secs()
            ));
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    Ok(guard)
}

async fn prepare(job: &DeltaJob, progress: &Progress) -> Result<Prepared> {
    let started_at = runlog::now_rfc3339();
    let (previous, previous_sha256, from) = previous_export(job)?;
    let Some(slot) = from.slot.clone().filter(|_| from.engine == "postgresql") else {
        bail!(
            "{} starts a chain of a MySQL/MariaDB source (a binary log position), not of this \
             PostgreSQL source",
            job.previous.path().display()
        );
    };
    let client = pgsource::connect_reader(&job.source.cfg, &job.source.database).await?;
    let server_version = postgres::server_version(&client).await?;
    let system_identifier = postgres::system_identifier(&client).await?;
    let live = ServerIdentity {
        system_identifier: system_identifier.clone(),
        ..Default::default()
    };
    if let Some(why) = from.server.differs(&live) {
        return Err(with_hint(
            anyhow!(
                "{} is not the cluster this chain was exported from: {why}",
                job.source.cfg.display()
            ),
            "point the delta at the chain's source, or start a new chain on this server \
             (export --delta-base)",
        ));
    }
    refuse_missing(&pglog::settings(&client).await?)?;
    // One delta of a chain at a time, from before the slot is looked at until it is
    // moved: two deltas from the same export would otherwise both pass the checks
    // below, and the later one read the slot after the first had moved it.
    let guard = lock_chain(job, &slot, progress).await?;
    let new_chain = "the changes since the previous export are lost to the chain: start a new \
         chain (export --delta-base, import it)";
    // A delta killed while it read the slot leaves its server session reading on for a
    // while: wait for it to let go.
    let mut state = pglog::slot(&client, &slot).await?;
    let waited = Instant::now();
    while state.as_ref().is_some_and(|s| s.active) && waited.elapsed() < SLOT_BUSY_WAIT {
        if waited.elapsed().as_millis() < 600 {
            progress.note(format!(
                "slot `{slot}` is being read by session {}: waiting up to {} s for it to let go",
                state
                    .as_ref()
                    .and_then(|s| s.active_pid)
                    .unwrap_or_default(),
                SLOT_BUSY_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        state = pglog::slot(&client, &slot).await?;
    }
    match state {
        None => {
            return Err(with_hint(
                anyhow!("the chain's replication slot `{slot}` no longer exists on the source"),
                new_chain,
            ));
        }
        Some(s) if s.wal_status == "lost" => {
            return Err(with_hint(
                anyhow!(
                    "the chain's replication slot `{slot}` lost the WAL it needs \
                     (wal_status lost: max_slot_wal_keep_size)"
                ),
                new_chain,
            ));
        }
        Some(s) if s.confirmed_flush.is_some_and(|c| c > from.position) => {
            return Err(with_hint(
                anyhow!(
                    "the chain's replication slot `{slot}` has moved past {} (to {}): a later \
                     delta was taken from this export",
                    from.describe(),
                    lsn_text(s.confirmed_flush.unwrap_or_default())
                ),
                "take the next delta from that later delta's directory (--delta-from), or \
                 start a new chain",
            ));
        }
        Some(s) if s.active => {
            let pid = s.active_pid.unwrap_or_default();
            return Err(with_hint(
                anyhow!(
                    "the chain's replication slot `{slot}` is in use by session {pid} (still, \
                     after {} s)",
                    SLOT_BUSY_WAIT.as_secs()
                ),
                format!(
                    "only one delta may read a slot at a time: wait for the other one, or, if \
                     its pgconverge was killed, end its session on the source with SELECT \
                     pg_terminate_backend({pid})"
                ),
            ));
        }
        Some(_) => {}
    }
    let catalog = pgsource::read_catalog(&client, &job.source.namespace).await?;
    let entries: Vec<&TableEntry> = previous.tables.values().collect();
    let changed = checks::schema_changes(&entries, &catalog);
    if !changed.is_empty() {
        return Err(with_hint(
            refusal(
                &format!(
                    "the source's schema changed since {}",
                    job.previous.path().display()
                ),
                &changed,
            ),
            "a delta carries rows of the schema its chain started with (logical decoding \
             carries no DDL, so the catalog is compared): start a new chain (export \
             --delta-base) after the schema change, with the target migrated to match",
        ));
    }
    let ejob = crate::export::delta::run::rereading(job, &previous);
    let planned = crate::export::run::prepare(&ejob, progress).await?;
    let full_copy = job.full_copy || previous.delta_full_copy;
    let (chain, _) = follow(
        &client,
        &job.source,
        &planned.plans,
        &job.mapping,
        full_copy,
    )
    .await
    .map_err(|errors| refusal("this delta cannot be taken", &errors))?;
    let roots = pgkeys::partition_roots(&client, &job.source.namespace).await?;
    Ok(Prepared {
        guard,
        roots,
        previous,
        previous_sha256,
        from,
        slot,
        server_version,
        system_identifier,
        plans: planned.plans,
        chain,
        started_at,
    })
}

/// The end snapshot, the changes per table up to `L` (read after it), and the delta's end
/// position `E` (docs/DESIGN.md, "PostgreSQL sources"): `None` when the slot stays.
async fn snapshot_and_changes(
    job: &DeltaJob,
    p: &Prepared,
    progress: &Progress,
) -> Result<(Client, Option<u64>, BTreeMap<String, TableChanges>)> {
    // The change lines are written in this session's settings (DateStyle, ...): the
    // readers', so that their keys read back in the snapshot as they were written.
    let log = pgsource::connect_reader(&job.source.cfg, &job.source.database).await?;
    let ns = &job.source.namespace;
    let (mut readers, _) = pgsource::open_readers(&job.source.cfg, &job.source.database, 1).await?;
    let snap = readers.remove(0);
    let text: String = snap
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await
        .map_err(postgres::error)?
        .get(0);
    let seen = XidSnapshot::parse(&text)
        .ok_or_else(|| anyhow!("`{text}` is not a snapshot (pg_current_snapshot())"))?;
    // Every transaction the snapshot sees wrote its commit record before `upto`.
    let upto = pglog::insert_lsn(&log).await?;
    pglog::wait_flushed(&log, upto).await?;
    let mut tables: BTreeMap<String, TableChanges> = BTreeMap::new();
    let mut horizon = Horizon::default();
    let clock = Instant::now();
    let lines = pglog::peek(&log, &p.slot, upto, |lsn, xid, line| {
        let visible = seen.sees(xid);
        if line.starts_with("COMMIT") {
            horizon.commit(lsn, visible);
            return Ok(());
        }
        let Some(change) = test_decoding::parse(line).map_err(|e| {
            anyhow!(
                "slot `{}`: a change line pgconverge cannot read: {e}",
                p.slot
            )
        })?
        else {
            return Ok(());
        };
        // The chain's table a change names (a partition's is its root's), if exported.
        let exported = |schema: &String, table: &String| {
            let name = match p.roots.get(&(schema.clone(), table.clone())) {
                Some(root) => root.clone(),
                None if schema == ns => table.clone(),
                None => return None,
            };
            p.chain.tables.get(&name).map(|f| (name, f))
        };
        if change.action == Action::Truncate {
            // A TRUNCATE may name several tables (a partitioned one names its partitions).
            let named = std::iter::once((&change.schema, &change.table))
                .chain(change.more_tables.iter().map(|(s, t)| (s, t)));
            for (schema, table) in named {
                if let Some((name, _)) = exported(schema, table) {
                    tables.entry(name).or_default().whole = true;
                }
            }
            return Ok(());
        }
        let Some((table, f)) = exported(&change.schema, &change.table) else {
            return Ok(());
        };
        let changes = tables.entry(table).or_default();
        if f.full_copy.is_some() {
            changes.whole = true;
            return Ok(());
        }
        let (before, after) = test_decoding::row_keys(&change, &f.key).map_err(|e| {
            anyhow!(
                "table `{}`, transaction {xid} in slot `{}`: {e}",
                change.table,
                p.slot
            )
        })?;
        if visible {
            changes.row(before, after);
        } else {
            changes.row_unseen(before, after);
        }
        Ok(())
    })
    .await?;
    progress.note(format!(
        "read {lines} change lines of slot `{}` up to {} in {:.1} s",
        p.slot,
        lsn_text(upto),
        clock.elapsed().as_secs_f64()
    ));
    if horizon.unseen > 0 {
        progress.note(format!(
            "{} transaction(s) committed after the snapshot: their rows are read as the \
             snapshot has them, and the next delta reads them again",
            horizon.unseen
        ));
    }
    Ok((snap, horizon.end(upto), tables))
}

/// The end snapshot, the slot's changes, the files, the manifest; and where the slot may
/// be moved to.
async fn read(
    job: &DeltaJob,
    p: &Prepared,
    target: &NewExport,
    progress: &Progress,
) -> Result<(Manifest, Option<u64>)> {
    let ns = job.source.namespace.clone();
    let (snap, end, tables) = snapshot_and_changes(job, p, progress).await?;
    // The slot stays where it is when the first transaction after it is one the snapshot
    // did not see.
    let upto = end.unwrap_or(p.from.position);
    progress.note(format!(
        "delta of `{}` from {} to {}",
        job.source.database,
        p.from.describe(),
        lsn_text(upto)
    ));
    // Sequences are not in the change stream: read them now, after the snapshot.
    let sequences: BTreeMap<String, Option<(String, u64)>> = pgsource::read_catalog(&snap, &ns)
        .await?
        .into_iter()
        .map(|t| (t.name, t.auto_increment))
        .collect();
    if let Some(text) = &job.mapping.text {
        publish::write_file(&target.tmp.path().join(STORED), text.as_bytes())?;
    }
    let clock = Instant::now();
    let mut entries = Vec::new();
    for plan in &p.plans {
        let name = &plan.name;
        let f = &p.chain.tables[name];
        let changes = tables.get(name);
        let whole = changes.is_some_and(|c| c.whole);
        let upserts_file = export_dir::csv_file_name(&plan.stem);
        let deleted_file = export_dir::deleted_file_name(&plan.stem);
        let mut plan = (**plan).clone();
        if let Some(seq) = sequences.get(name).cloned().flatten() {
            plan.auto_increment = Some(seq);
        }
        let changed = PgChanged {
            schema: &ns,
            plan: &plan,
            followed: f,
            policy: job.policy,
            dir: target.tmp.path(),
            whole,
            changes,
            checked: plan.filter.is_none(),
        };
        let (upserts, deleted) = write_changes(&snap, &changed, &upserts_file, &deleted_file)
            .await
            .with_context(|| format!("exporting the changes of `{name}`"))?;
        // The count at the end: untouched, the previous one; changed, counted in the
        // snapshot. (Not derived from the keys as for MySQL: a PostgreSQL chain reads
        // changes at its edges twice, which is harmless for values but not for counts.)
        let source_rows = match changes {
            Some(_) => pgsource::count_rows(&snap, &ns, plan.read_from()).await?,
            None => previous_count(&p.previous, name),
        };
        let mut entry = assemble::table_entry(
            &plan,
            vec![PartWritten {
                table: name.clone(),
                part: 1,
                file: upserts_file,
                range: String::new(),
                facts: upserts.facts,
                bytes: upserts.bytes,
                sha256: upserts.sha256,
                counts: Vec::new(),
            }],
        );
        entry.delta = Some(TableDelta {
            key: f.key.clone(),
            deleted: key_file(deleted_file, &deleted),
            removed: None,
            full_copy: match (whole, &f.full_copy) {
                (false, _) => None,
                (true, Some(why)) => Some(why.clone()),
                (true, None) => Some("TRUNCATE in the slot's changes".into()),
            },
            source_rows,
            changed_keys: changes.map_or(0, |c| c.keys.len() as u64),
        });
        entries.push(entry);
    }
    progress.note(format!(
        "changed rows and deleted keys written in {:.1} s",
        clock.elapsed().as_secs_f64()
    ));
    let _ = snap.batch_execute("ROLLBACK").await;

    let about = assemble::About {
        profile: job.mapping.name.clone(),
        mapping: crate::export::run::mapping_ref(&job.mapping),
        source: crate::export::run::source_entry(
            &job.source,
            p.server_version.clone(),
            p.system_identifier.clone(),
        ),
        container: job.source.cfg.container.clone(),
        started_at: p.started_at.clone(),
        finished_at: runlog::now_rfc3339(),
        timestamp: target.timestamp.clone(),
        snapshot: Snapshot {
            isolation: "REPEATABLE READ".into(),
            time_zone: "UTC".into(),
            charset: "UTF8".into(),
            readers: 1,
            synchronized_by: "one connection: the delta's end snapshot".into(),
        },
        excluded: p.previous.excluded_tables.clone(),
    };
    let mut m = assemble::manifest(about, entries);
    m.format_version = manifest::CHAIN_FORMAT_VERSION;
    m.kind = Some(chain::KIND_DELTA.into());
    m.delta_full_copy = job.full_copy || p.previous.delta_full_copy;
    m.export_id = Some(base::export_id(&job.mapping.name, &target.timestamp));
    m.position = Some(at(&p.slot, upto, p.system_identifier.clone()));
    m.delta = Some(DeltaInfo {
        base: BaseRef {
            export_id: p.previous.export_id.clone().unwrap_or_default(),
            manifest_sha256: p.previous_sha256.clone(),
            dir: job.previous.path().display().to_string(),
        },
        from: p.from.clone(),
        cascades: Vec::new(),
    });
    Ok((m, end))
}
