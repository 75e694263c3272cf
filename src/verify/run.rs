//! Verify's I/O: the manifest, exact counts in the target (and the source with
//! `--source`), and orphan rows of every foreign key among the imported tables; the
//! verdicts are `verify::counts`'.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Result;

use crate::config::Engine;
use crate::config::ServerConfig;
use crate::db::catalog::{ReadFrom, Typed};
use crate::db::source::{Conn, Source};
use crate::db::{mysql_typed, pgsource, postgres};
use crate::mapping::Mapping;
use crate::progress::Progress;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::Loaded;
use crate::store::manifest::TableSpec;
use crate::verify::canon;
use crate::verify::counts::{self, OrphanCheck, Report};
use crate::verify::deep::{self, TableDeep};
use crate::verify::files;

/// Everything a verification needs, resolved before it starts.
pub struct Job {
    pub dir: ExportDir,
    pub manifest: Loaded,
    pub mapping: Mapping,
    pub target: ServerConfig,
    pub target_db: String,
    pub schema: String,
    /// The source to count too (`--source`).
    pub source: Option<Source>,
    pub foreign_keys: bool,
    /// Rows the import's hooks and fired triggers added per target table (run log).
    pub adjustments: BTreeMap<String, i64>,
}

/// Connections that count the live source at once (`--source`). An exact count is a
/// scan (InnoDB reads the whole clustered index of a table with no secondary index), and
/// the largest table's alone takes most of the time: a second connection counts the
/// others meanwhile.
const SOURCE_COUNTERS: usize = 2;

pub async fn verify(job: &Job) -> Result<Report> {
    let specs = job.manifest.tables();
    // The two servers work at once: the live source is counted while the target is
    // counted and its foreign keys checked.
    let (source_counts, target) =
        tokio::try_join!(count_source(job, &specs), check_target(job, &specs))?;
    let mut tables = Vec::new();
    for ((name, feeding), (count, history)) in target.tables.iter().zip(target.counts) {
        let sum = |f: &dyn Fn(usize) -> Option<u64>| -> Option<u64> {
            feeding.iter().map(|&i| f(i)).sum::<Option<u64>>()
        };
        // A delta: the source's count at its end position, not the rows it carries.
        let manifest_rows = sum(&|i| {
            let delta = job
                .manifest
                .current()
                .and_then(|m| m.tables.get(&specs[i].name))
                .and_then(|e| e.delta.as_ref());
            match delta {
                Some(d) => Some(d.source_rows),
                None => specs[i].rows,
            }
        });
        let source = sum(&|i| source_counts[i]);
        let reason = match history {
            Some(framework) => Some(format!(
                "{framework}'s migration history: the target keeps its own rows"
            )),
            None => job
                .mapping
                .skip_if_absent()
                .contains(name)
                .then(|| format!("absent in the target; {} skips it", job.mapping.origin)),
        };
        let label = match feeding.as_slice() {
            [i] if &specs[*i].name == name => name.clone(),
            _ => format!(
                "{name} <- {}",
                feeding
                    .iter()
                    .map(|&i| specs[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        };
        let hooks = job.adjustments.get(name).copied().unwrap_or(0);
        let mut check =
            counts::check_table(name, manifest_rows, count, source, reason.as_deref(), hooks);
        check.table = label;
        tables.push(check);
    }
    Ok(Report::new(
        job.dir.path().display().to_string(),
        job.target_db.clone(),
        job.schema.clone(),
        tables,
        target.foreign_keys,
    ))
}

/// What verify reads of the target.
struct TargetSide {
    /// Each target table with the datasets that feed it.
    tables: BTreeMap<String, Vec<usize>>,
    /// Per target table, in that order: its exact count (none when it is absent, or a
    /// migration history the import kept: then with the framework's name).
    counts: Vec<(Option<u64>, Option<&'static str>)>,
    /// The orphan rows of every foreign key among the imported tables.
    foreign_keys: Vec<OrphanCheck>,
}

/// Each dataset's count in the live source (`--source`; none without it), in manifest
/// order: [`SOURCE_COUNTERS`] connections take the datasets largest first, so the
/// largest scan is not left for last.
async fn count_source(job: &Job, specs: &[TableSpec]) -> Result<Vec<Option<u64>>> {
    let Some(src) = &job.source else {
        return Ok(vec![None; specs.len()]);
    };
    let bytes = |s: &TableSpec| -> u64 { s.files.iter().filter_map(|f| f.bytes).sum() };
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(bytes(&specs[i])));
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(order));
    let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
    let counter = || async {
        let mut counted = Vec::new();
        let Some(mut i) = next() else {
            return Ok(counted);
        };
        let mut conn = src.connect().await?;
        loop {
            let s = &specs[i];
            // Each dataset counted as it was exported: with its `where`, or its query.
            let from = match &s.query {
                Some(q) => ReadFrom::Query(q),
                None => ReadFrom::Table {
                    name: &s.name,
                    filter: s.filter.as_deref(),
                },
            };
            counted.push((i, conn.count_rows(&src.namespace, from).await?));
            match next() {
                Some(n) => i = n,
                None => break,
            }
        }
        conn.disconnect().await;
        anyhow::Ok(counted)
    };
    let counters = (0..SOURCE_COUNTERS.min(specs.len())).map(|_| counter());
    let mut counts = vec![None; specs.len()];
    for (i, n) in futures_util::future::try_join_all(counters)
        .await?
        .into_iter()
        .flatten()
    {
        counts[i] = Some(n);
    }
    Ok(counts)
}

/// The target's side of verify: counts and orphan rows.
async fn check_target(job: &Job, specs: &[TableSpec]) -> Result<TargetSide> {
    let client = postgres::connect(&job.target, &job.target_db).await?;
    let catalog = postgres::read_catalog(&client, &job.schema).await?;
    // Each target table against the sum of the datasets that feed it.
    let mut targets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in specs.iter().enumerate() {
        targets
            .entry(job.mapping.target_table(&s.name))
            .or_default()
            .push(i);
    }
    let mut counted = Vec::new();
    for name in targets.keys() {
        // A framework's migration history the import kept as the target had it.
        let history = catalog
            .tables
            .get(name)
            .and_then(|t| crate::import::history::kept(t, &job.mapping.hooks().copy_history));
        let target = if catalog.tables.contains_key(name) && history.is_none() {
            Some(postgres::count_rows(&client, &job.schema, name).await?)
        } else {
            None
        };
        counted.push((target, history));
    }

    let mut foreign_keys = Vec::new();
    if job.foreign_keys {
        let imported: Vec<String> = targets
            .keys()
            .zip(&counted)
            .filter(|(_, (target, _))| target.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        // The same set the import checks before COMMIT: every foreign key that involves
        // an imported table, as child or as parent.
        for fk in &catalog.foreign_keys {
            if fk.touches(&job.schema, &imported) {
                foreign_keys.push(OrphanCheck {
                    constraint: fk.name.clone(),
                    child: fk.child.clone(),
                    child_columns: fk.child_columns.clone(),
                    parent: fk.parent.clone(),
                    parent_columns: fk.parent_columns.clone(),
                    orphans: postgres::count_orphans(&client, fk).await?,
                });
            }
        }
    }
    Ok(TargetSide {
        tables: targets,
        counts: counted,
        foreign_keys,
    })
}

/// Where `--deep` reads the source side.
#[derive(Debug, Clone)]
pub enum DeepSource {
    /// The export's CSV files.
    Files,
    /// The live source: MySQL through the binary protocol (not the export's encoder),
    /// PostgreSQL with `COPY TO`, on one snapshot.
    Live(Box<Source>),
}

/// Rows kept per narrowing: the buckets narrowed at most hold about this many rows.
const NARROW_ROWS: u64 = 200_000;

/// `verify --deep`: every value of every loaded table, compared with the export's files
/// or the live source.
pub async fn deep(
    job: &Job,
    source: &DeepSource,
    max_diffs: usize,
    progress: &Progress,
) -> Result<Vec<TableDeep>> {
    let specs = job.manifest.tables();
    let client = Arc::new(postgres::connect(&job.target, &job.target_db).await?);
    let catalog = postgres::read_catalog(&client, &job.schema).await?;
    let mut live = match source {
        DeepSource::Live(src) => Some(match src.engine {
            Engine::Mysql => {
                Conn::Mysql(mysql_typed::open_verifier(&src.cfg, &src.database).await?)
            }
            Engine::Postgresql => {
                let (mut conns, _) = pgsource::open_readers(&src.cfg, &src.database, 1).await?;
                Conn::Postgres(conns.remove(0))
            }
        }),
        DeepSource::Files => None,
    };
    let mut targets: BTreeMap<String, Vec<&TableSpec>> = BTreeMap::new();
    for s in &specs {
        targets
            .entry(job.mapping.target_table(&s.name))
            .or_default()
            .push(s);
    }
    let mut out = Vec::new();
    for (name, datasets) in targets {
        let Some(table) = catalog.tables.get(&name) else {
            continue;
        };
        if crate::import::history::kept(table, &job.mapping.hooks().copy_history).is_some() {
            continue;
        }
        // Rewritten by the `after` hooks on purpose: the counts (checked above) are all
        // that can be compared.
        if job.mapping.hooks().changed_by_hooks.contains(&name) {
            let why = "every column (changed by hooks: compared by count only, [import] changed_by_hooks)";
            out.push(count_only(job, &client, &name, &datasets, vec![why.into()]).await?);
            continue;
        }
        let plan = Arc::new(deep::plan_table(table, &datasets, &job.mapping));
        if plan.columns.is_empty() {
            // Not a value to compare (each column's reason is listed): its rows would
            // all read as equal, matched on nothing.
            progress.note(format!("deep `{name}`: no column compared, counts only"));
            let why = plan
                .not_compared
                .iter()
                .map(|(c, why)| format!("{c} ({why})"));
            out.push(count_only(job, &client, &name, &datasets, why.collect()).await?);
            continue;
        }
        let expected: u64 = datasets.iter().filter_map(|d| d.rows).sum();
        let n = deep::bucket_count(expected);
        let bar = progress.rows(&format!("deep {name}"), expected * 2);
        let read = TableRead {
            plan: plan.clone(),
            datasets: &datasets,
            n,
            bar: bar.clone(),
        };
        let ((s, _), (t, _)) = both_sides(job, source, &client, &read, None, &mut live).await?;
        let differing = s.differing(&t);
        let mut report = TableDeep {
            table: name.clone(),
            source_rows: s.rows,
            target_rows: t.rows,
            compared_columns: plan.columns.iter().map(|c| c.column.clone()).collect(),
            not_compared: plan
                .not_compared
                .iter()
                .map(|(c, why)| format!("{c} ({why})"))
                .collect(),
            matched_by: match plan.key.is_empty() {
                true => "(whole row)".into(),
                false => plan
                    .key
                    .iter()
                    .map(|&i| plan.columns[i].column.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            ..TableDeep::default()
        };
        report.accepted_changes = accepted_changes(&plan, &datasets, &job.mapping, &s, source);
        // Rows of the buckets that agree are equal on both sides.
        let all: BTreeSet<usize> = differing.iter().copied().collect();
        report.equal = (0..n)
            .filter(|i| !all.contains(i))
            .map(|i| s.count[i] as u64)
            .sum();
        if !differing.is_empty() {
            // Narrow down as many differing buckets as fit the memory budget.
            let per_bucket = (expected / n as u64).max(1);
            let take = ((NARROW_ROWS / per_bucket) as usize)
                .max(1)
                .min(differing.len());
            let chosen: Arc<BTreeSet<usize>> =
                Arc::new(differing[..take].iter().copied().collect());
            report.buckets_not_itemised = (differing.len() - take) as u64;
            let ((_, mut ks), (_, mut kt)) =
                both_sides(job, source, &client, &read, Some(chosen.clone()), &mut live).await?;
            // Buckets either side let go of (past its memory budget) are itemised by neither.
            let below = ks.below.min(kt.below);
            ks.keep_below(below);
            kt.keep_below(below);
            report.buckets_not_itemised += chosen.iter().filter(|&&b| b >= below).count() as u64;
            deep::compare(&plan, &ks, &kt, max_diffs, &mut report);
            report.explain_hooks(job.adjustments.get(&name).copied().unwrap_or(0));
        }
        if let [spec] = datasets.as_slice()
            && let Some(sets) = job.mapping.table(&spec.name).map(|m| &m.set)
            && !sets.is_empty()
        {
            // A key_of column is compared through its key map already.
            let sets: std::collections::BTreeMap<String, String> = sets
                .iter()
                .filter(|(c, _)| {
                    !plan
                        .columns
                        .iter()
                        .any(|p| &p.column == *c && p.follows.is_some())
                })
                .map(|(c, e)| (c.clone(), e.clone()))
                .collect();
            let (ok, not) = crate::verify::computed::candidates(&sets, &spec.helpers, table);
            for (column, why) in not {
                report
                    .not_compared
                    .retain(|n| !n.starts_with(&format!("{column} (")));
                report.not_compared.push(format!("{column} ({why})"));
            }
            let key: Vec<String> = plan
                .key
                .iter()
                .map(|&i| plan.columns[i].column.clone())
                .collect();
            crate::verify::computed::check(
                &client,
                &job.schema,
                &name,
                &key,
                &ok,
                max_diffs,
                &mut report,
            )
            .await?;
        }
        key_maps(job, &client, &datasets, table, &mut report).await?;
        bar.finish_and_clear();
        progress.note(format!(
            "deep `{name}`: {} compared, {} equal",
            crate::report::count(report.source_rows.max(report.target_rows), "row"),
            report.equal
        ));
        out.push(report);
    }
    if let Some(conn) = live {
        let _ = conn.disconnect().await;
    }
    Ok(out)
}

/// The key maps of this table's datasets that other datasets follow (`key_of`): one
/// entry per exported row, each naming a row of the table.
async fn key_maps(
    job: &Job,
    client: &tokio_postgres::Client,
    datasets: &[&TableSpec],
    table: &crate::db::catalog::PgTable,
    report: &mut deep::TableDeep,
) -> Result<()> {
    let followed = job.mapping.followed_datasets();
    let [key] = table.primary_key.as_slice() else {
        return Ok(());
    };
    for spec in datasets.iter().filter(|d| followed.contains(&d.name)) {
        let sql = deep::key_map_sql(&job.schema, &table.name, key, &spec.name);
        let row = client
            .query_one(sql.as_str(), &[])
            .await
            .map_err(postgres::error)
            .map_err(|e| e.context(format!("reading the key map of `{}`", spec.name)))?;
        report.key_maps.push(deep::KeyMapCheck {
            dataset: spec.name.clone(),
            exported_rows: spec.rows.unwrap_or(0),
            entries: row.get::<_, i64>(0) as u64,
            dangling: row.get::<_, i64>(1) as u64,
        });
    }
    Ok(())
}

/// The columns whose values the export's `--on-invalid fix` changed (the manifest's
/// counters), with what a live source shows of them.
fn accepted_changes(
    plan: &deep::TablePlan,
    datasets: &[&TableSpec],
    mapping: &crate::mapping::Mapping,
    source_side: &deep::Buckets,
    source: &DeepSource,
) -> Vec<deep::AcceptedChange> {
    let live = matches!(source, DeepSource::Live(_));
    let mut out = Vec::new();
    for (i, col) in plan.columns.iter().enumerate() {
        let mut change = deep::AcceptedChange {
            column: col.column.clone(),
            ..Default::default()
        };
        for spec in datasets {
            for c in &spec.columns {
                if mapping.target_column(&spec.name, &c.name) == col.column {
                    let s = &c.stats;
                    change.counted_by_export +=
                        s.nul_stripped + s.invalid_utf8_replaced + s.json_nul_dropped;
                    change.unconvertible_kept += s.unconvertible_kept;
                }
            }
        }
        let seen = source_side.fixed.get(&i);
        if change.counted_by_export + change.unconvertible_kept == 0 && seen.is_none() {
            continue;
        }
        if live {
            change.seen_in_source = Some(seen.map_or(0, |(n, _)| *n));
        }
        change.keys = seen.map(|(_, k)| k.clone()).unwrap_or_default();
        out.push(change);
    }
    out
}

/// One side's pass: its buckets, and with `keep` the rows of those buckets.
type Pass = (deep::Buckets, deep::Kept);

/// The target side: `COPY (SELECT compared columns) TO STDOUT`, canonicalised.
/// A target table being compared, and what both sides' reads need of it.
struct TableRead<'a> {
    plan: Arc<deep::TablePlan>,
    datasets: &'a [&'a TableSpec],
    n: usize,
    bar: indicatif::ProgressBar,
}

/// A table whose values cannot be compared: its rows counted in the target, against the
/// manifest's, with why.
async fn count_only(
    job: &Job,
    client: &tokio_postgres::Client,
    name: &str,
    datasets: &[&TableSpec],
    not_compared: Vec<String>,
) -> Result<TableDeep> {
    Ok(TableDeep {
        table: name.to_string(),
        source_rows: datasets.iter().filter_map(|d| d.rows).sum(),
        target_rows: postgres::count_rows(client, &job.schema, name).await?,
        matched_by: "(count only)".into(),
        not_compared,
        ..TableDeep::default()
    })
}

/// One pass over both sides, the target on another thread (at once, or one after the
/// other for long records): each canonicalises and hashes its own rows (and with
/// `keep`, keeps those buckets' rows).
async fn both_sides(
    job: &Job,
    source: &DeepSource,
    client: &Arc<tokio_postgres::Client>,
    table: &TableRead<'_>,
    keep: Option<Arc<BTreeSet<usize>>>,
    live: &mut Option<Conn>,
) -> Result<(Pass, Pass)> {
    // The target is read on another thread: read on this one (which also waits for the
    // source's answers), its rows queued up unread and a deep verify of 15 MB rows
    // peaked at 144 MB instead of 82 MB.
    // Long values are read in pieces only where the export wrote one (the wrapped
    // reads cost about a tenth of a deep verify of short rows).
    let pieces = table.datasets.iter().any(|d| deep::may_hold_long_values(d));
    let target = tokio::spawn(read_target(
        client.clone(),
        job.schema.clone(),
        table.plan.clone(),
        table.n,
        keep.clone(),
        table.bar.clone(),
        pieces,
    ));
    let joined = |t: Result<Result<Pass>, tokio::task::JoinError>| {
        t.map_err(|e| anyhow::anyhow!("reading the target failed: {e}"))
            .and_then(|t| t)
    };
    let longest = table
        .datasets
        .iter()
        .flat_map(|d| &d.files)
        .filter_map(|f| f.longest)
        .max()
        .unwrap_or(0);
    let source = read_source(
        job,
        source,
        &table.plan,
        table.datasets,
        table.n,
        keep,
        live.take(),
        table.bar.clone(),
    );
    let (t, (s, conn)) = if longest > crate::memory::ONE_SIDE_AT_A_TIME {
        (joined(target.await), source.await)
    } else {
        let s = source.await;
        (joined(target.await), s)
    };
    *live = conn;
    Ok((s?, t?))
}

async fn read_target(
    client: Arc<tokio_postgres::Client>,
    schema: String,
    plan: Arc<deep::TablePlan>,
    n: usize,
    keep: Option<Arc<BTreeSet<usize>>>,
    bar: indicatif::ProgressBar,
    pieces: bool,
) -> Result<Pass> {
    let mut buckets = deep::Buckets::new(n);
    let mut kept = deep::Kept::default();
    let width = plan.columns.len();
    let on_row = |row: &[Option<&[u8]>]| {
        let value = |i: usize| canon::text_cow(plan.columns[i].kind, row.get(i).copied().flatten());
        let h = deep::row_hash_with(&plan, width, n, value);
        if let Some(keep) = &keep {
            if keep.contains(&h.bucket) && kept.wants(h.bucket) {
                let shown = row.iter().map(|v| v.map(deep::shown_value)).collect();
                kept.add(&plan, h.bucket, owned(width, value), shown);
            }
        } else {
            buckets.add(h);
        }
        bar.inc(1);
        Ok(())
    };
    match deep::target_reads(&plan).filter(|_| pieces) {
        // Long values in pieces, by key.
        Some(reads) => {
            let mut on_row = on_row;
            postgres::verify_session(&client, &plan.table).await?;
            let from = ReadFrom::Table {
                name: &plan.table,
                filter: None,
            };
            pgsource::stream_table(&client, &schema, from, &reads, None, |row, _| on_row(row))
                .await?
        }
        None => {
            let select = deep::target_select(&plan, &schema);
            postgres::copy_out_rows(&client, &plan.table, &select, on_row).await?
        }
    }
    Ok((buckets, kept))
}

/// The source side, dataset by dataset: the export's files, or the live source.
#[allow(clippy::too_many_arguments)]
async fn read_source(
    job: &Job,
    source: &DeepSource,
    plan: &deep::TablePlan,
    datasets: &[&TableSpec],
    n: usize,
    keep: Option<Arc<BTreeSet<usize>>>,
    mut live: Option<Conn>,
    bar: indicatif::ProgressBar,
) -> (Result<Pass>, Option<Conn>) {
    let mut buckets = deep::Buckets::new(n);
    let mut kept = deep::Kept::default();
    let mut fixed_seen: std::collections::BTreeMap<usize, (u64, Vec<String>)> = Default::default();
    let width = plan.columns.len();
    let mut take = files::taker(|value, shown| {
        let h = deep::row_hash_with(plan, width, n, value);
        match &keep {
            Some(keep) if keep.contains(&h.bucket) && kept.wants(h.bucket) => {
                kept.add(plan, h.bucket, owned(width, value), shown())
            }
            Some(_) => {}
            None => buckets.add(h),
        }
        bar.inc(1);
    });
    for (d, spec) in datasets.iter().enumerate() {
        let result = match (source, live.as_mut()) {
            (DeepSource::Live(src), Some(conn)) => {
                let from = match &spec.query {
                    Some(q) => ReadFrom::Query(q),
                    None => ReadFrom::Table {
                        name: &spec.name,
                        filter: spec.filter.as_deref(),
                    },
                };
                // The columns this dataset gives; the others are NULL in its rows.
                let given: Vec<usize> = (0..plan.columns.len())
                    .filter(|&i| plan.columns[i].sources[d].0.is_some())
                    .collect();
                let cols: Vec<(&str, bool)> = given
                    .iter()
                    .map(|&i| {
                        let (name, before) = &plan.columns[i].sources[d];
                        (name.as_deref().unwrap_or_default(), before.base64)
                    })
                    .collect();
                let ns = &src.namespace;
                match conn {
                    Conn::Postgres(client) => {
                        let names: Vec<crate::db::catalog::ReadColumn<'_>> = cols
                            .iter()
                            .map(|(name, _)| {
                                crate::db::catalog::ReadColumn::whole(
                                    name,
                                    crate::db::catalog::Read::Text,
                                    None,
                                )
                            })
                            .collect();
                        pgsource::stream_table(client, ns, from, &names, None, |row, _| {
                            let mut values = vec![None; plan.columns.len()];
                            for (&i, v) in given.iter().zip(row) {
                                let c = &plan.columns[i];
                                let before = c.sources[d].1;
                                let fixed = match (before.fixed, v) {
                                    (Some(json), Some(b)) => {
                                        crate::codec::encode::fixed_text(json, b)
                                    }
                                    _ => None,
                                };
                                values[i] = match &fixed {
                                    Some(f) => {
                                        if keep.is_none() {
                                            fixed_seen.entry(i).or_default().0 += 1;
                                        }
                                        canon::source_text(c.kind, before, Some(f))
                                    }
                                    None => canon::source_text(c.kind, before, *v),
                                };
                            }
                            take(&|i| values[i].as_deref().map(Cow::Borrowed), &|| {
                                let mut shown = vec![None; plan.columns.len()];
                                for (&i, v) in given.iter().zip(row) {
                                    shown[i] = v.map(deep::shown_value);
                                }
                                shown
                            });
                            Ok(())
                        })
                        .await
                    }
                    Conn::Mysql(conn) => {
                        // Columns whose values the export kept as `?` (no UTF-8
                        // equivalent): checked again, to count them.
                        let charsets: Vec<(usize, String)> = given
                            .iter()
                            .enumerate()
                            .filter_map(|(k, &i)| {
                                let name = plan.columns[i].sources[d].0.as_deref()?;
                                let c = spec.columns.iter().find(|c| c.name == name)?;
                                (c.stats.unconvertible_kept > 0)
                                    .then(|| c.charset.clone())
                                    .flatten()
                                    .map(|cs| (k, cs))
                            })
                            .collect();
                        let checks: Vec<(usize, &str)> =
                            charsets.iter().map(|(k, cs)| (*k, cs.as_str())).collect();
                        let long = deep::may_hold_long_values(spec)
                            .then(|| deep::typed_long(plan, d, spec, &given))
                            .flatten();
                        let long = long.as_ref();
                        mysql_typed::stream_typed(
                            conn,
                            ns,
                            from,
                            &cols,
                            &checks,
                            long,
                            |row, lossy| {
                                let mut values: Vec<Option<Cow<'_, [u8]>>> =
                                    vec![None; plan.columns.len()];
                                let mut changed = Vec::new();
                                for (&i, v) in given.iter().zip(row) {
                                    let c = &plan.columns[i];
                                    let before = c.sources[d].1;
                                    // A value the export's `--on-invalid fix` changed is
                                    // compared as it was loaded, and counted as accepted.
                                    let fixed = match (before.fixed, v) {
                                        (Some(json), Typed::Bytes(b)) => {
                                            crate::codec::encode::fixed_text(json, b)
                                        }
                                        _ => None,
                                    };
                                    values[i] = match &fixed {
                                        Some(f) => {
                                            changed.push(i);
                                            canon::source_typed(c.kind, before, Typed::Bytes(f))
                                                .map(Cow::Owned)
                                        }
                                        None => canon::source_typed_cow(c.kind, before, *v),
                                    };
                                }
                                changed.extend(lossy.iter().map(|&k| given[k]));
                                if keep.is_none() {
                                    for i in changed {
                                        let (n, keys) = fixed_seen.entry(i).or_default();
                                        *n += 1;
                                        if keys.len() < crate::codec::encode::SAMPLES {
                                            let key = plan
                                                .key
                                                .iter()
                                                .filter_map(|&k| {
                                                    let at = given.iter().position(|&g| g == k)?;
                                                    Some(format!(
                                                        "{}={}",
                                                        plan.columns[k].column,
                                                        shown_typed(row[at])
                                                            .unwrap_or("NULL".into())
                                                    ))
                                                })
                                                .collect::<Vec<_>>()
                                                .join(", ");
                                            keys.push(crate::escape::text(&key).into_owned());
                                        }
                                    }
                                }
                                // How the row reads is only needed for a row kept for the report.
                                take(&|i| values[i].as_deref().map(Cow::Borrowed), &|| {
                                    let mut shown = vec![None; plan.columns.len()];
                                    for (&i, v) in given.iter().zip(row) {
                                        shown[i] = shown_typed(*v);
                                    }
                                    shown
                                });
                                Ok(())
                            },
                        )
                        .await
                    }
                }
            }
            _ => files::read_files(&job.dir, &job.manifest, plan, d, spec, &mut take).await,
        };
        if let Err(e) = result {
            return (Err(e), live);
        }
    }
    buckets.fixed = fixed_seen;
    (Ok((buckets, kept)), live)
}

/// A row's canonical values, owned (a row kept for the report).
fn owned<'a>(width: usize, value: impl Fn(usize) -> Option<Cow<'a, [u8]>>) -> Vec<Option<Vec<u8>>> {
    // A long value as its digest, taken where it lies (never copied to be kept).
    (0..width)
        .map(|i| value(i).map(|v| crate::db::long_values::digest_if_long(v).into_owned()))
        .collect()
}

/// How a live value reads in a difference.
fn shown_typed(v: Typed<'_>) -> Option<String> {
    Some(match v {
        Typed::Null => return None,
        Typed::Int(i) => i.to_string(),
        Typed::UInt(u) => u.to_string(),
        Typed::F32(f) => format!("{f:?}"),
        Typed::F64(f) => format!("{f:?}"),
        // A long value: its length only, as any reader keeps it (`deep::shown_value`).
        Typed::Bytes(b) | Typed::Hex(b) if b.len() as u64 > crate::memory::LONG_VALUE => {
            deep::shown_value(b)
        }
        Typed::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => format!("\\x{}", hex::encode(b)),
        },
        Typed::Hex(h) => format!("\\x{}", String::from_utf8_lossy(h)),
        // Shown by Kept::add from the digest form itself.
        Typed::Digest(_) => "(a long value)".into(),
        Typed::Date(y, m, d, h, mi, s, us) => {
            format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Typed::Time(neg, days, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if neg { "-" } else { "" },
            days * 24 + h as u32
        ),
    })
}
