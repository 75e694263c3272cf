//! The delta export (`export --delta-from DIR`): keys from the log, values from a
//! snapshot. In order, failing cheapest first: the previous export of the chain, the
//! source's identity and log settings, a purged log, a schema change, what the chain
//! cannot follow; then the end snapshot and its position, the log read up to exactly
//! that position, the keys put into temporary tables and followed through cascading
//! foreign keys, the self-check, and every file written through the export's own reader
//! and encoder; the manifest (format 4, `kind: "delta"`) last. Nothing half-written ever
//! gets a final name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mysql_async::Conn;

use crate::codec::binlog_row::{self, Key};
use crate::codec::encode::InvalidPolicy;
use crate::config::Engine;
use crate::db::catalog::{Snapshot, SourceTable};
use crate::db::delta_keys::{self, KeyRow, KeyTable};
use crate::db::position::LogPosition;
use crate::db::source::Source;
use crate::db::{binlog, binlog_status, mysql, mysql_keys};
use crate::export::assemble::{self, PartWritten};
use crate::export::delta::base::{self, refusal};
use crate::export::delta::changes::{Ddl, How, KeyState, TableChanges, ddl_effect};
use crate::export::delta::checks::{self, Chain, Followed};
use crate::export::delta::write::{Changed, write_changes, write_removed};
use crate::export::plan::TablePlan;
use crate::export::run::{Exported, Job};
use crate::hint::with_hint;
use crate::mapping::{Mapping, STORED};
use crate::progress::Progress;
use crate::store::chain::{self, BaseRef, DeltaInfo, KeyFile, TableDelta};
use crate::store::csvfile::Written;
use crate::store::export_dir::{self, ExportDir, NewExport};
use crate::store::manifest::{self, Manifest, TableEntry};
use crate::store::{open, publish, runlog};

/// A delta to take.
pub struct DeltaJob {
    pub source: Source,
    /// The previous export's stored mapping (a chain reads with one mapping).
    pub mapping: Mapping,
    /// The base, or the previous delta.
    pub previous: ExportDir,
    /// Copy tables without a key to follow whole (`--delta-full-copy`).
    pub full_copy: bool,
    pub policy: InvalidPolicy,
}

/// Take the delta into `target`; on any error the temporary directory is removed.
pub async fn export(job: &DeltaJob, target: &NewExport, progress: &Progress) -> Result<Exported> {
    if job.source.engine == Engine::Postgresql {
        return crate::export::delta::pg::export(job, target, progress).await;
    }
    let result = async {
        let prepared = prepare(job, progress).await?;
        publish::create(target)?;
        let manifest = read(job, prepared, target, progress).await?;
        let dir = publish::seal(&manifest, target)?;
        Ok(Exported { dir, manifest })
    }
    .await;
    if result.is_err() {
        publish::discard(target);
    }
    result
}

/// Everything decided before the end snapshot is taken.
struct Prepared {
    previous: Manifest,
    previous_sha256: String,
    from: LogPosition,
    server_version: String,
    settings: binlog_status::LogSettings,
    catalog: Vec<SourceTable>,
    plans: Vec<Arc<TablePlan>>,
    chain: Chain,
    started_at: String,
}

/// The previous export, the source's identity, settings, log files and schema, and what
/// the chain follows; every refusal before anything is read.
async fn prepare(job: &DeltaJob, progress: &Progress) -> Result<Prepared> {
    let started_at = runlog::now_rfc3339();
    let (previous, previous_sha256, from) = previous_export(job)?;
    if from.engine != "mysql" {
        return Err(with_hint(
            anyhow!(
                "{} starts a chain of a PostgreSQL source ({}), not of this MySQL/MariaDB source",
                job.previous.path().display(),
                from.describe()
            ),
            "pass the chain's source with --source-url postgres://...",
        ));
    }
    let db = &job.source.database;
    let mut conn = mysql::connect(&job.source.cfg, Some(db)).await?;
    let server_version = mysql::server_version(&mut conn).await?;
    let settings = binlog_status::settings(&mut conn).await?;
    if let Some(why) = from.server.differs(&settings.identity()) {
        return Err(another_server(&job.source, &from, &why));
    }
    base::refuse_missing(&settings)?;
    let logs = binlog_status::binary_logs(&mut conn).await?;
    match logs.iter().find(|(f, _)| *f == from.file) {
        Some((_, size)) if *size >= from.position => {}
        found => {
            let oldest = match logs.first() {
                Some((f, _)) => {
                    let gtid = binlog_status::gtid_at(&mut conn, settings.mariadb, f, 4).await?;
                    match gtid.filter(|g| !g.is_empty()) {
                        Some(g) => format!("{f}:4 (GTID {g})"),
                        None => format!("{f}:4"),
                    }
                }
                None => "none (no binary log files)".into(),
            };
            let what = match found {
                Some((_, size)) => format!("{} holds only {size} bytes", from.file),
                None => format!("{} was purged", from.file),
            };
            return Err(with_hint(
                anyhow!(
                    "the binary log no longer holds the chain's position: saved {}, oldest \
                     available {oldest} ({what})",
                    from.describe()
                ),
                "the changes since the previous export are lost to the log: start a new chain \
                 (export --delta-base, import it), and keep the log longer \
                 (binlog_expire_logs_seconds / expire_logs_days) than the time between deltas",
            ));
        }
    }
    let catalog = mysql::read_catalog(&mut conn, db).await?;
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
            "a delta carries rows of the schema its chain started with: start a new chain \
             (export --delta-base) after the schema change, with the target migrated to match",
        ));
    }
    let uniques = mysql_keys::unique_keys(&mut conn, db).await?;
    let fks = mysql_keys::foreign_keys(&mut conn, db).await?;
    let _ = conn.disconnect().await;
    let ejob = rereading(job, &previous);
    let planned = crate::export::run::prepare(&ejob, progress).await?;
    let plans: Vec<TablePlan> = planned.plans.iter().map(|p| (**p).clone()).collect();
    let full_copy = job.full_copy || previous.delta_full_copy;
    let chain = checks::follow(
        &plans,
        &catalog,
        &uniques,
        &fks,
        &job.mapping,
        full_copy,
        Engine::Mysql,
    )
    .map_err(|errors| refusal("this delta cannot be taken", &errors))?;
    let was = match &previous.delta {
        Some(d) => Some(d.cascades.as_slice()),
        None => previous.cascades.as_deref(),
    };
    let changed = checks::cascade_changes(was, &chain.cascades);
    if !changed.is_empty() {
        return Err(with_hint(
            refusal(
                &format!(
                    "the source's foreign-key actions changed since {}",
                    job.previous.path().display()
                ),
                &changed,
            ),
            "a delta applies the actions its chain started with to the rows only the target \
             holds: start a new chain (export --delta-base) after the change",
        ));
    }
    Ok(Prepared {
        previous,
        previous_sha256,
        from,
        server_version,
        settings,
        catalog,
        plans: planned.plans,
        chain,
        started_at,
    })
}

/// The export job a delta plans its tables with: the previous export's datasets, read
/// with the chain's mapping by one reader.
pub fn rereading(job: &DeltaJob, previous: &Manifest) -> Job {
    Job {
        source: job.source.clone(),
        mapping: job.mapping.clone(),
        only: previous.tables.keys().cloned().collect(),
        exclude: Vec::new(),
        jobs: 1,
        split_rows: None,
        policy: job.policy,
        order: Vec::new(),
        delta_base: false,
        delta_full_copy: job.full_copy,
    }
}

/// The chain's previous export (its manifest, the sha256 of its manifest file and its
/// position), refused when it is not part of a chain or of another database.
pub fn previous_export(job: &DeltaJob) -> Result<(Manifest, String, LogPosition)> {
    let (loaded, previous_sha256) = open::manifest_and_sha256(&job.previous)?;
    let previous = match loaded.current() {
        Some(m) if m.position.is_some() => m.clone(),
        _ => {
            return Err(with_hint(
                anyhow!(
                    "{} is not part of a delta chain (its manifest records no log position)",
                    job.previous.path().display()
                ),
                "start a chain with `export <SOURCE> --delta-base`, then take deltas from it",
            ));
        }
    };
    let from = previous.position.clone().context("checked")?;
    let db = &job.source.database;
    if previous.source.database != *db {
        bail!(
            "{} was exported from database `{}`, not `{db}`",
            job.previous.path().display(),
            previous.source.database
        );
    }
    Ok((previous, previous_sha256, from))
}

fn another_server(source: &Source, from: &LogPosition, why: &str) -> anyhow::Error {
    with_hint(
        anyhow!(
            "{} is not the server this chain was exported from: {why}; a binary log position \
             ({}) means something only in the log that wrote it",
            source.cfg.display(),
            from.describe()
        ),
        "point the delta at the chain's source, or start a new chain on this server \
         (export --delta-base)",
    )
}

/// The log's changes of the exported tables between two positions.
struct LogChanges {
    tables: BTreeMap<String, TableChanges>,
    read: binlog::Read,
}

/// Read the log from `from` to exactly `to`, taking the keys of every exported table.
async fn changes(
    job: &DeltaJob,
    p: &Prepared,
    to: (&str, u64),
    files: &[String],
) -> Result<LogChanges> {
    let db = &job.source.database;
    let names: Vec<String> = p.chain.tables.keys().cloned().collect();
    let widths: BTreeMap<&str, usize> = p
        .catalog
        .iter()
        .map(|t| (t.name.as_str(), t.columns.len()))
        .collect();
    let mut tables: BTreeMap<String, TableChanges> = BTreeMap::new();
    let mut ddl = Vec::new();
    let read = binlog::read(
        &job.source.cfg,
        db,
        (&p.from.file, p.from.position),
        to,
        files,
        |seen| {
            match seen {
                binlog::Seen::Rows {
                    table,
                    kind,
                    columns,
                    before,
                    after,
                    data,
                    at,
                } => {
                    let Some(f) = p.chain.tables.get(table) else {
                        return Ok(());
                    };
                    if widths.get(table) != Some(&columns.len()) {
                        bail!(
                            "table `{table}`: the log's rows at {at} have {} columns, the table \
                             {}: its layout changed within the delta's range (DDL since the \
                             previous export); start a new chain",
                            columns.len(),
                            widths.get(table).copied().unwrap_or(0)
                        );
                    }
                    let changes = tables.entry(table.to_string()).or_default();
                    if f.full_copy.is_some() {
                        changes.whole = true;
                        return Ok(());
                    }
                    let keys: Vec<(usize, binlog_row::KeyType)> = f
                        .positions
                        .iter()
                        .copied()
                        .zip(f.types.iter().cloned())
                        .collect();
                    let rows = binlog_row::rows_keys(kind, columns, &before, &after, &keys, data)
                        .map_err(|e| anyhow!("table `{table}`, binary log at {at}: {e}"))?;
                    for (b, a) in rows {
                        changes.row(b, a);
                    }
                }
                binlog::Seen::Query {
                    default_db,
                    sql,
                    at,
                } => {
                    for effect in ddl_effect(sql, default_db, db, &names) {
                        match effect {
                            Ddl::Truncate(t) => tables.entry(t).or_default().whole = true,
                            Ddl::Change(t) => {
                                let short: String = sql.chars().take(120).collect();
                                ddl.push(format!("table `{t}` at {at}: {short}"));
                            }
                        }
                    }
                }
            }
            Ok(())
        },
    )
    .await?;
    if !ddl.is_empty() {
        return Err(with_hint(
            refusal("DDL on exported tables since the previous export", &ddl),
            "a delta carries rows of the schema its chain started with: start a new chain \
             (export --delta-base) after the schema change",
        ));
    }
    Ok(LogChanges { tables, read })
}

/// The end snapshot, the log, the keys, the files, the manifest.
async fn read(
    job: &DeltaJob,
    p: Prepared,
    target: &NewExport,
    progress: &Progress,
) -> Result<Manifest> {
    let db = job.source.database.clone();
    let clock = Instant::now();
    let names: Vec<String> = p.chain.tables.keys().cloned().collect();
    let (mut snap, to_at) = delta_keys::open_end_snapshot(&job.source.cfg, &db, &names).await?;
    let mut conn = mysql::connect(&job.source.cfg, None).await?;
    let files: Vec<String> = binlog_status::binary_logs(&mut conn)
        .await?
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let to_gtid = binlog_status::gtid_at(&mut conn, p.settings.mariadb, &to_at.0, to_at.1).await?;
    let _ = conn.disconnect().await;
    progress.note(format!(
        "delta of `{db}` from {} to {}:{}",
        p.from.describe(),
        to_at.0,
        to_at.1
    ));
    // The saved file's name may be another log's now (RESET MASTER, a restore): its
    // creation time says, before a read from the saved offset lands mid-event in it.
    let created = binlog::file_created(&job.source.cfg, &p.from.file, &files).await?;
    if created != p.from.server.file_created {
        let live = crate::db::position::ServerIdentity {
            file_created: created,
            ..p.settings.identity()
        };
        let why = p
            .from
            .server
            .differs(&live)
            .unwrap_or_else(|| "its binlog file is another".into());
        return Err(another_server(&job.source, &p.from, &why));
    }
    let mut log = changes(job, &p, (&to_at.0, to_at.1), &files).await?;
    // The end's file identifies the log for the next delta: its own creation time (the
    // log may have rotated, or the server restarted, since the previous position).
    let to_created = log
        .read
        .files_created
        .iter()
        .rev()
        .find(|(f, _)| *f == to_at.0)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            anyhow!(
                "the binary log was read up to {}:{} without that file's format description",
                to_at.0,
                to_at.1
            )
        })?;
    progress.note(format!(
        "read {} events of the binary log in {:.1} s",
        log.read.events,
        clock.elapsed().as_secs_f64()
    ));

    let clock = Instant::now();
    let keys = key_tables(&mut snap, &db, &p, &mut log.tables).await?;
    let changed: usize = log.tables.values().map(|c| c.keys.len()).sum();
    progress.note(format!(
        "{changed} changed keys of {} tables recorded in the snapshot in {:.1} s",
        keys.len(),
        clock.elapsed().as_secs_f64()
    ));
    let clock = Instant::now();

    if let Some(text) = &job.mapping.text {
        publish::write_file(&target.tmp.path().join(STORED), text.as_bytes())?;
    }
    let parents: BTreeSet<&str> = p.chain.cascades.iter().map(|c| c.parent.as_str()).collect();
    let mut entries = Vec::new();
    for plan in &p.plans {
        let name = &plan.name;
        let f = &p.chain.tables[name];
        let changes = log.tables.get(name);
        let whole = changes.is_some_and(|c| c.whole);
        let kt = keys.get(name).filter(|_| !whole);
        let dir = target.tmp.path();
        let upserts_file = export_dir::csv_file_name(&plan.stem);
        let deleted_file = export_dir::deleted_file_name(&plan.stem);
        let changed = Changed {
            db: &db,
            plan,
            followed: f,
            policy: job.policy,
            dir,
            whole,
            keys: kt,
            checked: checked(&p, plan),
        };
        let (upserts, deleted) = write_changes(&mut snap, &changed, &upserts_file, &deleted_file)
            .await
            .with_context(|| format!("exporting the changes of `{name}`"))?;
        let removed = match parents.contains(name.as_str()) {
            true => {
                let file = export_dir::removed_file_name(&plan.stem);
                let w = write_removed(&mut snap, &changed, &file)
                    .await
                    .with_context(|| format!("exporting the removed keys of `{name}`"))?;
                Some(key_file(file, &w))
            }
            false => None,
        };
        // The count at the end. Untouched: the previous one. Changed by key only: the
        // previous one plus the rows the log added and removed (each changed key has a
        // row now, or not, and had one before its first event, or not). Otherwise
        // (copied whole, filtered by `where`, a cascade's child, which may lose rows the
        // log does not show): counted in the snapshot.
        let reached = p
            .chain
            .cascades
            .iter()
            .any(|c| &c.child == name && keys.contains_key(&c.parent));
        let before = previous_count(&p.previous, name);
        let source_rows = match (changes, kt) {
            _ if whole || reached || (kt.is_some() && plan.filter.is_some()) => {
                mysql::count_rows(&mut snap, &db, plan.read_from()).await?
            }
            (Some(c), Some(_)) => {
                let existed = c.keys.values().filter(|s| s.existed).count() as i64;
                let after = before as i64 + upserts.facts.rows as i64 - existed;
                u64::try_from(after).map_err(|_| {
                    anyhow!(
                        "table `{name}`: the log and the snapshot give {after} rows at the end \
                         ({before} before): they disagree"
                    )
                })?
            }
            _ => before,
        };
        let mut entry = assemble::table_entry(
            plan,
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
            removed,
            full_copy: match (whole, &f.full_copy) {
                (false, _) => None,
                (true, Some(why)) => Some(why.clone()),
                (true, None) => Some("TRUNCATE in the binary log".into()),
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
    let _ = mysql_async::prelude::Queryable::query_drop(&mut snap, "ROLLBACK").await;
    let _ = snap.disconnect().await;

    let about = assemble::About {
        profile: job.mapping.name.clone(),
        mapping: crate::export::run::mapping_ref(&job.mapping),
        source: crate::export::run::source_entry(&job.source, p.server_version.clone(), None),
        container: job.source.cfg.container.clone(),
        started_at: p.started_at.clone(),
        finished_at: runlog::now_rfc3339(),
        timestamp: target.timestamp.clone(),
        snapshot: Snapshot {
            isolation: "REPEATABLE READ, consistent snapshot".into(),
            time_zone: "+00:00".into(),
            charset: "utf8mb4".into(),
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
    m.position = Some(LogPosition {
        engine: "mysql".into(),
        file: to_at.0.clone(),
        position: to_at.1,
        gtid: to_gtid,
        server: crate::db::position::ServerIdentity {
            file_created: to_created,
            ..p.settings.identity()
        },
        ..Default::default()
    });
    m.delta = Some(DeltaInfo {
        base: BaseRef {
            export_id: p.previous.export_id.clone().unwrap_or_default(),
            manifest_sha256: p.previous_sha256.clone(),
            dir: job.previous.path().display().to_string(),
        },
        from: p.from.clone(),
        cascades: p.chain.cascades.clone(),
    });
    Ok(m)
}

/// A table's source count as the previous export of the chain recorded it.
pub fn previous_count(previous: &Manifest, table: &str) -> u64 {
    previous.tables.get(table).map_or(0, |t| match &t.delta {
        Some(d) => d.source_rows,
        None => t.rows,
    })
}

pub fn key_file(file: String, w: &Written) -> KeyFile {
    KeyFile {
        file,
        rows: w.facts.rows,
        bytes: w.bytes,
        sha256: w.sha256.clone(),
        longest_record: w.facts.longest,
    }
}

/// The key tables of every changed table, filled with the log's keys, then the keys
/// cascading foreign keys reach, parents first, until nothing new is found.
async fn key_tables(
    snap: &mut Conn,
    db: &str,
    p: &Prepared,
    tables: &mut BTreeMap<String, TableChanges>,
) -> Result<BTreeMap<String, KeyTable>> {
    let mut out: BTreeMap<String, KeyTable> = BTreeMap::new();
    let mut known: BTreeMap<String, BTreeSet<Key>> = BTreeMap::new();
    for (name, changes) in tables.iter() {
        let f = &p.chain.tables[name];
        if changes.whole || f.full_copy.is_some() || changes.keys.is_empty() {
            continue;
        }
        let kt = new_key_table(f, out.len());
        delta_keys::create(snap, db, &kt).await?;
        let rows: Vec<KeyRow<'_>> = changes
            .keys
            .iter()
            .map(|(key, state)| KeyRow {
                key,
                exists: Some(state.exists),
                how: removal(state).map(|h| h.name()),
            })
            .collect();
        delta_keys::insert(snap, db, &kt, &rows).await?;
        known.insert(name.clone(), changes.keys.keys().cloned().collect());
        out.insert(name.clone(), kt);
    }
    let order = chain::cascade_order(&p.chain.cascades);
    for _round in 0..=p.chain.cascades.len() {
        let mut grew = false;
        for &i in &order {
            let fk = &p.chain.cascades[i];
            let Some(parent) = out.get(&fk.parent).cloned() else {
                continue;
            };
            let child_f = &p.chain.tables[&fk.child];
            if child_f.full_copy.is_some() {
                // A child without a key: copy it whole when its parent changed.
                let c = tables.entry(fk.child.clone()).or_default();
                grew |= !c.whole;
                c.whole = true;
                continue;
            }
            if tables.get(&fk.child).is_some_and(|c| c.whole) {
                continue;
            }
            // The child's key table is created once a key is found for it.
            let child = match out.get(&fk.child) {
                Some(kt) => kt.clone(),
                None => new_key_table(child_f, out.len()),
            };
            // The child's columns in the order of the parent's key.
            let columns: Vec<String> = parent
                .key
                .iter()
                .filter_map(|k| {
                    let i = fk.parent_columns.iter().position(|c| c == k)?;
                    fk.child_columns.get(i).cloned()
                })
                .collect();
            let found = delta_keys::children(snap, db, &parent, &child, &columns, None).await?;
            // A child whose key holds the reference, of a parent key the log updated
            // away, was moved with it by ON UPDATE CASCADE (and maybe back): its key
            // counts as removed by `update`, for its own children's actions.
            let moved: BTreeSet<Key> = if fk.on_update == "CASCADE"
                && fk.child_columns.iter().all(|c| child.key.contains(c))
            {
                delta_keys::children(
                    snap,
                    db,
                    &parent,
                    &child,
                    &columns,
                    Some(How::Update.name()),
                )
                .await?
                .into_iter()
                .collect()
            } else {
                BTreeSet::new()
            };
            let seen = known.entry(fk.child.clone()).or_default();
            let new: Vec<Key> = found
                .into_iter()
                .filter(|k| seen.insert(k.clone()))
                .collect();
            if !new.is_empty() {
                grew = true;
                if !out.contains_key(&fk.child) {
                    delta_keys::create(snap, db, &child).await?;
                    out.insert(fk.child.clone(), child.clone());
                }
                let rows: Vec<KeyRow<'_>> = new
                    .iter()
                    .map(|key| KeyRow {
                        key,
                        exists: None,
                        how: moved.contains(key).then(|| How::Update.name()),
                    })
                    .collect();
                delta_keys::insert(snap, db, &child, &rows).await?;
                tables.entry(fk.child.clone()).or_default();
            }
        }
        if !grew {
            break;
        }
    }
    Ok(out)
}

/// How a key counts as removed for its children's foreign-key actions: as the log first
/// removed it; or, when its first event put it there although the previous export may
/// have held it (an INSERT of a key an unlogged cascade had just deleted: `DELETE FROM a`
/// cascading to `b` 10, then `INSERT INTO b VALUES (10, ...)`), as deleted, so that the
/// children of the old row that only the target holds go as they did at the source. For
/// a key that was free before, nothing in the target references it: no effect.
fn removal(state: &KeyState) -> Option<How> {
    match (state.removed, state.existed) {
        (Some(how), _) => Some(how),
        (None, false) => Some(How::Delete),
        (None, true) => None,
    }
}

fn new_key_table(f: &Followed, n: usize) -> KeyTable {
    KeyTable {
        name: format!("pgconverge_keys_{n}"),
        table: f.table.clone(),
        key: f.key.clone(),
        types: f.types.clone(),
    }
}

/// Must every key the log left in place have its row in the snapshot? Yes, unless the
/// table has a `where` (a row may stop matching) or a cascading action may delete or move
/// its rows unlogged.
fn checked(p: &Prepared, plan: &TablePlan) -> bool {
    let cascaded = p.chain.cascades.iter().any(|fk| {
        fk.child == plan.name && (fk.on_delete == "CASCADE" || fk.on_update == "CASCADE")
    });
    plan.filter.is_none() && !cascaded
}
