//! The export's I/O, in order: connect, read the catalog, plan (pure, `export::plan`),
//! cut big tables into key ranges (opt-in), open readers on one snapshot, stream each
//! unit of work into its CSV file under the temporary directory, assemble the manifest
//! (pure, `export::assemble`) and publish the directory. On any error the temporary
//! directory is removed; nothing half-written ever gets a final name.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use crate::codec::encode::{InvalidPolicy, RowEncoder};
use crate::config::Engine;
use crate::db::catalog::{KeyLiteral, KeyRange};
use crate::db::catalog::{Snapshot, SourceTable};
use crate::db::source::{Conn, Source};
use crate::export::assemble::{self, PartWritten};
use crate::export::delta;
use crate::export::plan::{self, TablePlan};
use crate::hint::with_hint;
use crate::mapping::{Mapping, STORED};
use crate::progress::{Progress, human_bytes};
use crate::store::csvfile::TableWriter;
use crate::store::export_dir::{self, ExportDir, NewExport};
use crate::store::manifest::{self, Manifest};
use crate::store::{publish, runlog};

/// Everything an export needs, resolved before it starts.
#[derive(Debug, Clone)]
pub struct Job {
    pub source: Source,
    pub mapping: Mapping,
    /// `--tables` (empty: all).
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    pub jobs: usize,
    pub split_rows: Option<u64>,
    pub policy: InvalidPolicy,
    /// The order to read datasets in (`migrate`: the import's load order); empty:
    /// largest first.
    pub order: Vec<String>,
    /// Start a delta chain (`--delta-base`): record the log position of the snapshot.
    pub delta_base: bool,
    /// With `delta_base`: tables without a key to follow are copied whole in each delta.
    pub delta_full_copy: bool,
}

/// A published export.
#[derive(Debug)]
pub struct Exported {
    /// The final directory (`<stamp>`, or `<stamp>_N` when that was taken).
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Leftovers of interrupted exports beside `target`: listed with their size, and with
/// `clean` removed when their process is gone (never one that still runs).
pub fn leftovers(target: &NewExport, clean: bool, progress: &Progress) -> Result<()> {
    let Some(parent) = target.final_dir.parent() else {
        return Ok(());
    };
    for p in publish::partials(parent) {
        let size = human_bytes(p.bytes);
        if p.alive {
            progress.note(format!(
                "{} ({size}) is an export still running",
                p.path.display()
            ));
        } else if clean {
            publish::remove(&p)?;
            progress.note(format!("removed {} ({size})", p.path.display()));
        } else {
            progress.warn(format!(
                "{} ({size}) is left from an interrupted export (never importable); \
                 `export --clean-partials` removes it",
                p.path.display()
            ));
        }
    }
    Ok(())
}

/// An export ready to read: the source's catalog read, the mapping checked against it,
/// every dataset planned and cut into units of work. Nothing is written yet.
pub struct Planned {
    pub started_at: String,
    pub server_version: String,
    pub system_identifier: Option<String>,
    /// The datasets' plans, in catalog order.
    pub plans: Vec<Arc<TablePlan>>,
    work: Vec<Work>,
    /// The tables locked while the readers start their snapshot (MySQL).
    locked: Vec<String>,
    pub excluded: BTreeMap<String, String>,
}

/// Export into `target`.
pub async fn export(job: &Job, target: &NewExport, progress: &Progress) -> Result<Exported> {
    let planned = prepare(job, progress).await?;
    let cascades = match job.delta_base {
        true => Some(
            delta::base::preflight(
                &job.source,
                &planned.plans,
                &job.mapping,
                job.delta_full_copy,
            )
            .await?,
        ),
        false => None,
    };
    // A PostgreSQL base creates its slot BEFORE its snapshot (the first delta reads
    // again what changed in between, which is harmless), and drops it if it fails.
    let slot = match (job.delta_base, job.source.engine) {
        (true, Engine::Postgresql) => {
            Some(delta::pg::create_slot(&job.source, &job.mapping.name, &target.timestamp).await?)
        }
        _ => None,
    };
    let result = async {
        publish::create(target)?;
        let (entries, snapshot, at) = read(job, &planned, target, progress, |_| {}).await?;
        let position = match (job.delta_base, &slot) {
            (true, Some(slot)) => Some(delta::pg::position(slot)),
            (true, None) => {
                let position = delta::base::position(&job.source, at).await?;
                if position.gtid.is_none() && position.server.server_uuid.is_none() {
                    progress.warn(format!(
                        "the server gives no GTID for {}: the chain follows the file and \
                         offset, which only this server's log knows (a replica promoted later \
                         cannot continue it)",
                        position.describe()
                    ));
                }
                Some(position)
            }
            (false, _) => None,
        };
        let chain = position.map(|p| (p, cascades.unwrap_or_default()));
        seal(job, planned, entries, snapshot, chain, target)
    }
    .await;
    if result.is_err() {
        publish::discard(target);
        if let Some(slot) = &slot {
            delta::pg::drop_slot(&job.source, &slot.name).await;
        }
    }
    result
}

/// Connect, read the catalog, check the mapping, plan every dataset, cut key ranges.
pub async fn prepare(job: &Job, progress: &Progress) -> Result<Planned> {
    let started_at = runlog::now_rfc3339();
    let ns = job.source.namespace.clone();
    let mut conn = job.source.connect().await?;
    let server_version = conn.server_version().await?;
    let system_identifier = match &conn {
        Conn::Postgres(c) => crate::db::postgres::system_identifier(c).await?,
        Conn::Mysql(_) => None,
    };
    let mut catalog = conn.read_catalog(&ns).await?;
    let base_tables: Vec<String> = catalog.iter().map(|t| t.name.clone()).collect();
    let selection = job.mapping.select(&base_tables, &job.only, &job.exclude)?;
    datasets(
        &mut conn,
        &ns,
        &job.mapping,
        &selection.tables,
        &mut catalog,
        progress,
    )
    .await?;
    let charsets: BTreeSet<String> = catalog
        .iter()
        .filter(|t| selection.tables.contains(&t.name))
        .flat_map(|t| t.columns.iter().filter_map(|c| c.charset.clone()))
        .filter(|cs| !plan::is_utf8(cs))
        .collect();
    let lossless = conn.lossless_charsets(&charsets).await?;
    let plans = plan::plan(
        catalog,
        &selection.tables,
        &job.mapping,
        &lossless,
        job.source.engine,
    );
    // With a query, the readers' snapshots must agree on every table it may read.
    let locked = match job.mapping.queries().next() {
        Some(_) => base_tables,
        None => plans.iter().map(|p| p.name.clone()).collect(),
    };
    let split_rows = job.split_rows.unwrap_or(u64::MAX);
    let work = work_items(
        &mut conn,
        &ns,
        plans,
        job.jobs.max(1),
        split_rows,
        &job.order,
    )
    .await?;
    conn.disconnect().await;
    let mut plans: Vec<Arc<TablePlan>> = Vec::new();
    for w in &work {
        if !plans.iter().any(|p| Arc::ptr_eq(p, &w.plan)) {
            plans.push(w.plan.clone());
        }
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Planned {
        started_at,
        server_version,
        system_identifier,
        plans,
        work,
        locked,
        excluded: selection.excluded,
    })
}

impl Planned {
    /// Read the datasets in this order (`migrate`: the import's load order, so that the
    /// tables loaded first are exported first); the others after, largest first.
    pub fn reorder(&mut self, order: &[String]) {
        let rank = |w: &Work| {
            order
                .iter()
                .position(|d| *d == w.plan.name)
                .unwrap_or(usize::MAX)
        };
        self.work.sort_by_key(|w| (rank(w), w.part));
    }

    /// The file names each dataset is written to (one, or one per key range).
    pub fn files_of(&self, dataset: &str) -> Vec<String> {
        let mut parts: Vec<&Work> = self
            .work
            .iter()
            .filter(|w| w.plan.name == dataset)
            .collect();
        parts.sort_by_key(|w| w.part);
        parts.iter().map(|w| w.file_name()).collect()
    }
}

/// Read every unit of work into `target`'s temporary directory; `on_table` gets each
/// dataset's manifest entry as soon as all its files are complete.
pub async fn read(
    job: &Job,
    planned: &Planned,
    target: &NewExport,
    progress: &Progress,
    on_table: impl FnMut(&manifest::TableEntry),
) -> Result<(Vec<manifest::TableEntry>, Snapshot, Option<(String, u64)>)> {
    progress.note(format!(
        "exporting {} of `{}` from {} ({}) into {}",
        crate::report::count(planned.plans.len() as u64, "table"),
        job.source.database,
        job.source.cfg.display(),
        planned.server_version,
        target.final_dir.display()
    ));
    if let Some(text) = &job.mapping.text {
        publish::write_file(&target.tmp.path().join(STORED), text.as_bytes())?;
    }
    read_all(
        job,
        &job.source.namespace,
        planned.work.clone(),
        &planned.locked,
        &target.tmp,
        progress,
        on_table,
    )
    .await
}

/// Write the manifest and publish the directory under its final name. With `chain` (a
/// delta chain's base: its log position, and the source's foreign keys with an action)
/// the manifest is format 4, `kind: "full"`.
pub fn seal(
    job: &Job,
    planned: Planned,
    entries: Vec<manifest::TableEntry>,
    snapshot: Snapshot,
    chain: Option<(
        crate::db::position::LogPosition,
        Vec<crate::store::chain::Cascade>,
    )>,
    target: &NewExport,
) -> Result<Exported> {
    let about = assemble::About {
        profile: job.mapping.name.clone(),
        mapping: mapping_ref(&job.mapping),
        source: source_entry(
            &job.source,
            planned.server_version,
            planned.system_identifier,
        ),
        container: job.source.cfg.container.clone(),
        started_at: planned.started_at,
        finished_at: runlog::now_rfc3339(),
        timestamp: target.timestamp.clone(),
        snapshot,
        excluded: planned.excluded,
    };
    let mut manifest = assemble::manifest(about, entries);
    if let Some((position, cascades)) = chain {
        manifest.cascades = Some(cascades);
        manifest.format_version = manifest::CHAIN_FORMAT_VERSION;
        manifest.kind = Some(crate::store::chain::KIND_FULL.into());
        manifest.export_id = Some(delta::base::export_id(&job.mapping.name, &target.timestamp));
        manifest.position = Some(position);
        manifest.delta_full_copy = job.delta_full_copy;
    }
    let dir = publish::seal(&manifest, target)?;
    Ok(Exported { dir, manifest })
}

/// The manifest's reference to the mapping the export stores (`mapping.toml`), if any.
pub fn mapping_ref(mapping: &Mapping) -> Option<manifest::MappingRef> {
    mapping.text.as_ref().map(|t| manifest::MappingRef {
        file: STORED.into(),
        sha256: hex::encode(Sha256::digest(t.as_bytes())),
        origin: mapping.origin.clone(),
    })
}

/// Where the data came from, as the manifest records it (never a password).
pub fn source_entry(
    source: &Source,
    server_version: String,
    system_identifier: Option<String>,
) -> manifest::Source {
    manifest::Source {
        kind: source.engine.name().into(),
        host: source.cfg.host.clone(),
        port: source.cfg.port,
        user: source.cfg.user.clone(),
        database: source.database.clone(),
        server_version,
        container: source.cfg.container.clone(),
        schema: (source.engine == Engine::Postgresql).then(|| source.namespace.clone()),
        system_identifier,
    }
}

/// The mapping's side of the source, before anything is read: each selected `query` is
/// described (its columns become a dataset of the catalog, replacing a table of that
/// name), every name the mapping gives is checked against the source, and every `where`
/// is prepared by the server. All problems are reported together.
async fn datasets(
    conn: &mut Conn,
    db: &str,
    mapping: &Mapping,
    selected: &[String],
    catalog: &mut Vec<SourceTable>,
    progress: &Progress,
) -> Result<()> {
    let mut errors = Vec::new();
    for (name, query) in mapping.queries() {
        if !selected.iter().any(|s| s == name) {
            continue;
        }
        match conn.probe_query(name, &query).await {
            Ok(columns) => {
                let key = mapping
                    .table(name)
                    .map(|t| t.key.clone())
                    .unwrap_or_default();
                if let Some(k) = key.iter().find(|k| !columns.iter().any(|c| &c.name == *k)) {
                    errors.push(format!(
                        "[tables.{name}] key names `{k}`, which the query does not return (it returns: {})",
                        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    continue;
                }
                let table = SourceTable {
                    name: name.to_string(),
                    engine: String::new(),
                    estimated_rows: 0,
                    columns,
                    primary_key: key,
                    auto_increment: None,
                    partitions: None,
                };
                match catalog.iter_mut().find(|t| t.name == name) {
                    Some(t) => *t = table,
                    None => catalog.push(table),
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let columns: BTreeMap<String, Vec<String>> = catalog
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.columns.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect();
    let (mut problems, notes) = mapping.check_source(&columns);
    errors.append(&mut problems);
    for n in notes {
        progress.note(n);
    }
    for t in catalog.iter().filter(|t| selected.contains(&t.name)) {
        if let Some(filter) = mapping.table(&t.name).and_then(|m| m.filter.as_deref())
            && let Err(e) = conn.check_filter(db, &t.name, filter).await
        {
            errors.push(format!("{e:#}"));
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(with_hint(
        anyhow!(
            "the mapping does not fit the source; nothing was read:\n{}",
            errors
                .iter()
                .map(|e| format!("  - {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "source-side names (the [tables.X] keys, drop, encode, the keys of columns) are the \
         source's own, case-sensitive; `where` and `query` are in the source's SQL dialect",
    ))
}

/// One unit of reading: a whole table, or one key range of a split table.
#[derive(Clone)]
struct Work {
    plan: Arc<TablePlan>,
    /// 1-based part number and the number of parts (1 for an unsplit table).
    part: usize,
    parts: usize,
    range: Option<KeyRange>,
}

impl Work {
    fn file_name(&self) -> String {
        if self.parts == 1 {
            export_dir::csv_file_name(&self.plan.stem)
        } else {
            export_dir::csv_part_name(&self.plan.stem, self.part)
        }
    }
}

/// Cut tables estimated above `split_rows` into `parts` key ranges; everything else is
/// one unit. Largest first, so that parallel readers finish together — or, when `order`
/// names datasets (`migrate`: the import's load order), in that order.
async fn work_items(
    conn: &mut Conn,
    db: &str,
    plans: Vec<TablePlan>,
    parts: usize,
    split_rows: u64,
    order: &[String],
) -> Result<Vec<Work>> {
    let mut out = Vec::new();
    for plan in plans {
        let plan = Arc::new(plan);
        let points = match plan.split_key(parts, split_rows) {
            Some((column, integer)) => {
                let points = conn
                    .split_points(
                        db,
                        &plan.name,
                        column,
                        integer,
                        plan.estimated_rows,
                        parts as u64,
                    )
                    .await?;
                (!points.is_empty()).then(|| (column.to_string(), points))
            }
            None => None,
        };
        let Some((column, points)) = points else {
            out.push(Work {
                plan,
                part: 1,
                parts: 1,
                range: None,
            });
            continue;
        };
        let mut bounds: Vec<Option<KeyLiteral>> = vec![None];
        bounds.extend(points.into_iter().map(Some));
        bounds.push(None);
        let n = bounds.len() - 1;
        for (i, pair) in bounds.windows(2).enumerate() {
            out.push(Work {
                plan: plan.clone(),
                part: i + 1,
                parts: n,
                range: Some(KeyRange {
                    column: column.clone(),
                    from: pair[0].clone(),
                    to: pair[1].clone(),
                }),
            });
        }
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.plan.estimated_rows / w.parts as u64));
    if !order.is_empty() {
        let rank = |w: &Work| {
            order
                .iter()
                .position(|d| *d == w.plan.name)
                .unwrap_or(usize::MAX)
        };
        out.sort_by_key(|w| (rank(w), w.part));
    }
    Ok(out)
}

/// Run the readers over a shared queue of work; the first error stops everything.
async fn read_all(
    job: &Job,
    db: &str,
    work: Vec<Work>,
    locked: &[String],
    dir: &ExportDir,
    progress: &Progress,
    mut on_table: impl FnMut(&manifest::TableEntry),
) -> Result<(Vec<manifest::TableEntry>, Snapshot, Option<(String, u64)>)> {
    let plans: BTreeMap<String, Arc<TablePlan>> = work
        .iter()
        .map(|w| (w.plan.name.clone(), w.plan.clone()))
        .collect();
    let estimate: u64 = plans.values().map(|p| p.estimated_rows).sum();
    let wanted = job.jobs.clamp(1, work.len().max(1));
    let readers = job
        .source
        .open_readers(locked, wanted, job.delta_base)
        .await?;
    if let Some(note) = &readers.note {
        progress.warn(note);
    }
    let overall = progress.rows("export: all tables", estimate);
    let mut parts_of: BTreeMap<String, usize> = BTreeMap::new();
    for w in &work {
        parts_of.insert(w.plan.name.clone(), w.parts);
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(work)));
    // Each part is reported as soon as it is written, so that a table is known complete
    // (and can be loaded by `migrate`) while the others are still being read.
    let (finished, mut parts_done) = tokio::sync::mpsc::unbounded_channel::<PartWritten>();
    let mut set = tokio::task::JoinSet::new();
    for conn in readers.conns {
        let reader = Reader {
            finished: finished.clone(),
            queue: queue.clone(),
            db: db.to_string(),
            engine: job.source.engine,
            dir: dir.path().to_path_buf(),
            progress: progress.clone(),
            overall: overall.clone(),
            policy: job.policy,
        };
        set.spawn(async move { reader.run(conn).await });
    }
    drop(finished);
    let mut by_table: BTreeMap<String, Vec<PartWritten>> = BTreeMap::new();
    let mut entries = Vec::new();
    loop {
        tokio::select! {
            part = parts_done.recv() => {
                let Some(part) = part else { break };
                let name = part.table.clone();
                let parts = by_table.entry(name.clone()).or_default();
                parts.push(part);
                if parts.len() == parts_of[&name] {
                    let parts = by_table.remove(&name).unwrap_or_default();
                    let entry = assemble::table_entry(&plans[&name], parts);
                    on_table(&entry);
                    entries.push(entry);
                }
            }
            Some(joined) = set.join_next() => {
                let failure = match joined {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(e) => anyhow!("an export reader crashed: {e}"),
                };
                set.abort_all();
                overall.finish_and_clear();
                return Err(failure);
            }
        }
    }
    // Every reader has ended (the channel closes when the last one drops its sender).
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(anyhow!("an export reader crashed: {e}")),
        }
    }
    // The estimate was the catalog's: the bar closes at the real count.
    let rows: u64 = entries.iter().map(|e| e.rows).sum();
    overall.set_length(rows);
    overall.set_position(rows);
    // Drawn once at its total (a clear right after would show the last rate-limited frame).
    overall.finish();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((entries, readers.snapshot, readers.position))
}

/// One reading connection taking work from the shared queue.
struct Reader {
    finished: tokio::sync::mpsc::UnboundedSender<PartWritten>,
    queue: Arc<Mutex<VecDeque<Work>>>,
    db: String,
    dir: PathBuf,
    progress: Progress,
    overall: ProgressBar,
    policy: InvalidPolicy,
    engine: Engine,
}

impl Reader {
    async fn run(self, mut conn: Conn) -> Result<()> {
        loop {
            let next = self
                .queue
                .lock()
                .map_err(|_| anyhow!("work queue poisoned"))?
                .pop_front();
            let Some(work) = next else { break };
            let part = self.part(&mut conn, &work).await?;
            let _ = self.finished.send(part);
        }
        conn.disconnect().await;
        Ok(())
    }

    async fn part(&self, conn: &mut Conn, work: &Work) -> Result<PartWritten> {
        let plan = &work.plan;
        let name = &plan.name;
        let file = work.file_name();
        let label = if work.parts == 1 {
            name.clone()
        } else {
            format!("{name} {}/{}", work.part, work.parts)
        };
        let clock = Instant::now();
        let encoder = RowEncoder::new(
            name,
            plan.column_names(),
            plan.rules(),
            plan.checks(),
            plan.pk.clone(),
            self.policy,
        );
        let mut writer = TableWriter::create(&self.dir.join(&file), encoder)?;
        let bar = self
            .progress
            .rows(&label, plan.estimated_rows / work.parts as u64);
        const STEP: u64 = 1024;
        conn.stream_table(
            &self.db,
            plan.read_from(),
            &plan.reads(),
            work.range.as_ref(),
            |values, lossy| {
                writer.write_row(values, lossy)?;
                if writer.rows() % STEP == 0 {
                    bar.set_position(writer.rows());
                    bar.set_message(human_bytes(writer.bytes()));
                    self.overall.inc(STEP);
                }
                Ok(())
            },
        )
        .await
        .with_context(|| format!("exporting table `{name}`"))?;
        self.overall.inc(writer.rows() % STEP);
        let written = writer
            .finish()
            .with_context(|| format!("exporting table `{name}`"))?;
        let counts = match plan.counts.is_empty() {
            true => Vec::new(),
            false => {
                let exprs: Vec<&str> = plan.counts.iter().map(|(_, e)| e.as_str()).collect();
                conn.count_matching(&self.db, plan.read_from(), work.range.as_ref(), &exprs)
                    .await
                    .with_context(|| format!("exporting table `{name}`"))?
            }
        };
        bar.set_length(written.facts.rows);
        bar.set_position(written.facts.rows);
        bar.finish_and_clear();
        self.progress.note(format!(
            "exported `{label}`: {}, {} in {:.1} s",
            crate::report::count(written.facts.rows, "row"),
            human_bytes(written.bytes),
            clock.elapsed().as_secs_f64()
        ));
        Ok(PartWritten {
            table: name.clone(),
            part: work.part,
            file,
            range: work
                .range
                .as_ref()
                .map(|r| r.condition(self.engine))
                .unwrap_or_default(),
            facts: written.facts,
            bytes: written.bytes,
            sha256: written.sha256,
            counts,
        })
    }
}
