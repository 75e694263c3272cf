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

/// Export into `target`.
pub async fn export(job: &Job, target: &NewExport, progress: &Progress) -> Result<Exported> {
    let started_at = runlog::now_rfc3339();
    let db = job.source.database.clone();
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
    let table_count = plans.len();
    let split_rows = job.split_rows.unwrap_or(u64::MAX);
    let work = work_items(&mut conn, &ns, plans, job.jobs.max(1), split_rows).await?;
    conn.disconnect().await;

    publish::create(target)?;
    progress.note(format!(
        "exporting {table_count} tables of `{db}` from {} ({server_version}) into {}",
        job.source.cfg.display(),
        target.final_dir.display()
    ));
    if let Some(text) = &job.mapping.text {
        publish::write_file(&target.tmp.path().join(STORED), text.as_bytes())?;
    }
    let written = read_all(job, &ns, work, &locked, &target.tmp, progress).await;
    let result = written.and_then(|(entries, snapshot)| {
        let about = assemble::About {
            profile: job.mapping.name.clone(),
            mapping: job.mapping.text.as_ref().map(|t| manifest::MappingRef {
                file: STORED.into(),
                sha256: hex::encode(Sha256::digest(t.as_bytes())),
                origin: job.mapping.origin.clone(),
            }),
            source: manifest::Source {
                kind: job.source.engine.name().into(),
                host: job.source.cfg.host.clone(),
                port: job.source.cfg.port,
                user: job.source.cfg.user.clone(),
                database: db.clone(),
                server_version,
                container: job.source.cfg.container.clone(),
                schema: (job.source.engine == Engine::Postgresql).then(|| ns.clone()),
                system_identifier,
            },
            container: job.source.cfg.container.clone(),
            started_at,
            finished_at: runlog::now_rfc3339(),
            timestamp: target.timestamp.clone(),
            snapshot,
            excluded: selection.excluded,
        };
        let manifest = assemble::manifest(about, entries);
        let dir = publish::seal(&manifest, target)?;
        Ok(Exported { dir, manifest })
    });
    if result.is_err() {
        publish::discard(target);
    }
    result
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
        match conn.probe_query(name, query).await {
            Ok(columns) => {
                let table = SourceTable {
                    name: name.to_string(),
                    engine: String::new(),
                    estimated_rows: 0,
                    columns,
                    primary_key: Vec::new(),
                    auto_increment: None,
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
struct Work {
    plan: Arc<TablePlan>,
    /// 1-based part number and the number of parts (1 for an unsplit table).
    part: usize,
    parts: usize,
    range: Option<KeyRange>,
}

/// Cut tables estimated above `split_rows` into `parts` key ranges; everything else is
/// one unit. Largest first, so that parallel readers finish together.
async fn work_items(
    conn: &mut Conn,
    db: &str,
    plans: Vec<TablePlan>,
    parts: usize,
    split_rows: u64,
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
) -> Result<(Vec<manifest::TableEntry>, Snapshot)> {
    let plans: BTreeMap<String, Arc<TablePlan>> = work
        .iter()
        .map(|w| (w.plan.name.clone(), w.plan.clone()))
        .collect();
    let estimate: u64 = plans.values().map(|p| p.estimated_rows).sum();
    let wanted = job.jobs.clamp(1, work.len().max(1));
    let readers = job.source.open_readers(locked, wanted).await?;
    if let Some(note) = &readers.note {
        progress.warn(note);
    }
    let overall = progress.rows("all tables", estimate);
    let queue = Arc::new(Mutex::new(VecDeque::from(work)));
    let mut set = tokio::task::JoinSet::new();
    for conn in readers.conns {
        let reader = Reader {
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
    let mut done: Vec<PartWritten> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let failure = match joined {
            Ok(Ok(mut d)) => {
                done.append(&mut d);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => anyhow!("an export reader crashed: {e}"),
        };
        set.abort_all();
        overall.finish_and_clear();
        return Err(failure);
    }
    overall.finish_and_clear();
    let mut by_table: BTreeMap<String, Vec<PartWritten>> = BTreeMap::new();
    for d in done {
        by_table.entry(d.table.clone()).or_default().push(d);
    }
    let entries = by_table
        .into_iter()
        .map(|(name, parts)| assemble::table_entry(&plans[&name], parts))
        .collect();
    Ok((entries, readers.snapshot))
}

/// One reading connection taking work from the shared queue.
struct Reader {
    queue: Arc<Mutex<VecDeque<Work>>>,
    db: String,
    dir: PathBuf,
    progress: Progress,
    overall: ProgressBar,
    policy: InvalidPolicy,
    engine: Engine,
}

impl Reader {
    async fn run(self, mut conn: Conn) -> Result<Vec<PartWritten>> {
        let mut done = Vec::new();
        loop {
            let next = self
                .queue
                .lock()
                .map_err(|_| anyhow!("work queue poisoned"))?
                .pop_front();
            let Some(work) = next else { break };
            done.push(self.part(&mut conn, &work).await?);
        }
        conn.disconnect().await;
        Ok(done)
    }

    async fn part(&self, conn: &mut Conn, work: &Work) -> Result<PartWritten> {
        let plan = &work.plan;
        let name = &plan.name;
        let (file, label) = if work.parts == 1 {
            (export_dir::csv_file_name(&plan.stem), name.clone())
        } else {
            (
                export_dir::csv_part_name(&plan.stem, work.part),
                format!("{name} {}/{}", work.part, work.parts),
            )
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
        bar.finish_and_clear();
        self.progress.note(format!(
            "exported `{label}`: {} rows, {} in {:.1} s",
            written.facts.rows,
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
        })
    }
}
