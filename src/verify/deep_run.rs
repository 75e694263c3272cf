//! `verify --deep`'s I/O, table by table: both sides read into buckets, the differing
//! buckets read again and narrowed, then `set` values, key maps and the export's accepted
//! changes added to the table's report. Each side's read is `deep_read`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Result;

use crate::config::Engine;
use crate::db::source::{Conn, Source};
use crate::db::{mysql_typed, pgsource, postgres};
use crate::progress::Progress;
use crate::store::manifest::TableSpec;
use crate::verify::deep::{self, TableDeep};
use crate::verify::deep_read::{Pass, read_source, read_target};
use crate::verify::run::Job;

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
