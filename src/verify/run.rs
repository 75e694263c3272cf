//! Verify's I/O: the manifest, exact counts in the target (and the source with
//! `--source`), and orphan rows of every foreign key among the imported tables; the
//! verdicts are `verify::counts`'.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::config::ServerConfig;
use crate::db::catalog::ReadFrom;
use crate::db::postgres;
use crate::db::source::Source;
use crate::mapping::Mapping;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::Loaded;
use crate::store::manifest::TableSpec;
use crate::verify::counts::{self, OrphanCheck, Report};

pub use crate::verify::deep_run::{DeepSource, deep};

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
