//! One side's pass of `verify --deep`: the target's rows (COPY TO, or long values in
//! pieces) or the source's (the export's files, or the live source on its snapshot),
//! canonicalised and hashed into buckets, and with `keep` those buckets' rows kept.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;

use crate::db::catalog::{ReadFrom, Typed};
use crate::db::source::Conn;
use crate::db::{mysql_typed, pgsource, postgres};
use crate::store::manifest::TableSpec;
use crate::verify::canon;
use crate::verify::deep;
use crate::verify::deep_run::DeepSource;
use crate::verify::files;
use crate::verify::run::Job;

/// One side's pass: its buckets, and with `keep` the rows of those buckets.
pub(super) type Pass = (deep::Buckets, deep::Kept);

/// The target side: `COPY (SELECT compared columns) TO STDOUT`, canonicalised.
pub(super) async fn read_target(
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
    let mut ticks = crate::progress::Ticker::new(bar);
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
        ticks.tick();
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
pub(super) async fn read_source(
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
    let mut ticks = crate::progress::Ticker::new(bar);
    let mut take = files::taker(|value, shown| {
        let h = deep::row_hash_with(plan, width, n, value);
        match &keep {
            Some(keep) if keep.contains(&h.bucket) && kept.wants(h.bucket) => {
                kept.add(plan, h.bucket, owned(width, value), shown())
            }
            Some(_) => {}
            None => buckets.add(h),
        }
        ticks.tick();
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
