//! The files of a delta, table by table: the upserted rows and the deleted keys in one
//! pass over the table's changed keys (each key's row through the export's own encoder,
//! or the key itself through the key columns' encoder, exactly as a full export writes
//! them), every row of a table copied whole, and a cascading parent's removed keys.

use std::path::Path;

use anyhow::{Result, anyhow};
use mysql_async::Conn;

use crate::codec::encode::{Check, InvalidPolicy, RowEncoder, Rule, row_key};
use crate::db::catalog::{Read, ReadColumn, ReadFrom};
use crate::db::delta_keys::{self, Found, KeyTable};
use crate::db::mysql;
use crate::export::delta::checks::Followed;
use crate::export::plan::TablePlan;
use crate::hint::with_hint;
use crate::store::chain::HOW_COLUMN;
use crate::store::csvfile::{TableWriter, Written};

/// One table's changes to write.
pub struct Changed<'a> {
    pub db: &'a str,
    pub plan: &'a TablePlan,
    pub followed: &'a Followed,
    pub policy: InvalidPolicy,
    pub dir: &'a Path,
    /// Copied whole: every row, no deleted keys.
    pub whole: bool,
    /// Its changed keys (None: nothing changed).
    pub keys: Option<&'a KeyTable>,
    /// Stop when a key the log left in place has no row (`checked`).
    pub checked: bool,
}

/// The upserted rows and the deleted keys of a table, in one pass over its changed keys
/// (each has its row, written through the export's encoder, or is a deleted key, written
/// through the key columns' encoder as a full export writes them); every row when it is
/// copied whole. A key the log left in place without a row stops the delta.
pub async fn write_changes(
    snap: &mut Conn,
    c: &Changed<'_>,
    upserts_file: &str,
    deleted_file: &str,
) -> Result<(Written, Written)> {
    let plan = c.plan;
    let encoder = RowEncoder::new(
        &plan.name,
        plan.column_names(),
        plan.rules(),
        plan.checks(),
        plan.pk.clone(),
        c.policy,
    );
    let mut rows = TableWriter::create(&c.dir.join(upserts_file), encoder)?;
    let keys = KeyColumns::of(plan, c.followed, false);
    let mut gone = TableWriter::create(&c.dir.join(deleted_file), keys.encoder(plan, c.policy))?;
    let mut disagree = Vec::new();
    match (c.whole, c.keys) {
        (true, _) => {
            mysql::stream_table(snap, c.db, plan.read_from(), &plan.reads(), None, |v, l| {
                rows.write_row(v, l)
            })
            .await?
        }
        (false, Some(kt)) => {
            delta_keys::read_changed(
                snap,
                c.db,
                kt,
                plan.filter.as_deref(),
                &plan.reads(),
                &keys.reads(),
                |found| match found {
                    Found::Row(values, lossy) => rows.write_row(values, lossy),
                    Found::Gone(key, lossy, in_place) => {
                        if in_place && c.checked && disagree.len() < 5 {
                            let pk: Vec<usize> = (0..key.len()).collect();
                            disagree.push(row_key(key, &pk, &keys.names, 0));
                        }
                        gone.write_row(key, lossy)
                    }
                },
            )
            .await?
        }
        (false, None) => {}
    }
    if !disagree.is_empty() {
        return Err(with_hint(
            anyhow!(
                "table `{}`: the binary log says these keys exist at the delta's end, but the \
                 snapshot has no row for them: {}",
                plan.name,
                disagree.join("; ")
            ),
            "the log and the snapshot disagree (a key read wrongly from the log, or changes \
             made with the log off: sql_log_bin=0); nothing was written; start a new chain \
             (export --delta-base) and report this if it repeats",
        ));
    }
    Ok((rows.finish()?, gone.finish()?))
}

/// The key columns of a table as a keys file holds them: their names, encoding rules and
/// read forms (from the key table's `pgc_k*` columns), and with `how` the column saying
/// how a removed key went.
pub(crate) struct KeyColumns {
    pub(crate) names: Vec<String>,
    rules: Vec<Rule>,
    checks: Vec<Check>,
    reads: Vec<(String, Read, Option<String>)>,
}

impl KeyColumns {
    pub(crate) fn of(plan: &TablePlan, f: &Followed, how: bool) -> KeyColumns {
        let cols: Vec<&crate::export::plan::ColumnPlan> = f
            .key
            .iter()
            .filter_map(|k| plan.columns.iter().find(|c| &c.name == k))
            .collect();
        let mut out = KeyColumns {
            names: cols.iter().map(|c| c.name.clone()).collect(),
            rules: cols.iter().map(|c| c.rule).collect(),
            checks: cols.iter().map(|c| c.check).collect(),
            reads: cols
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        delta_keys::key_column(i),
                        c.read,
                        c.check_conversion_from.clone(),
                    )
                })
                .collect(),
        };
        if how {
            out.names.push(HOW_COLUMN.into());
            out.rules.push(Rule::Text);
            out.checks.push(Check::None);
            out.reads.push((delta_keys::HOW.into(), Read::Text, None));
        }
        out
    }

    pub(crate) fn reads(&self) -> Vec<ReadColumn<'_>> {
        self.reads
            .iter()
            .map(|(name, read, cs)| ReadColumn::whole(name, *read, cs.as_deref()))
            .collect()
    }

    pub(crate) fn encoder(&self, plan: &TablePlan, policy: InvalidPolicy) -> RowEncoder {
        let pk: Vec<usize> = (0..self.names.len().min(self.rules.len())).collect();
        RowEncoder::new(
            &plan.name,
            self.names.clone(),
            self.rules.clone(),
            self.checks.clone(),
            pk,
            policy,
        )
    }
}

/// The keys of a cascading parent its children's actions follow (`delta_keys::removed_sql`:
/// the log's removals, and rows an unlogged cascade deleted), and how each went, read
/// from its key table through the key columns' encoder.
pub async fn write_removed(snap: &mut Conn, c: &Changed<'_>, file: &str) -> Result<Written> {
    let (db, plan) = (c.db, c.plan);
    let keys = KeyColumns::of(plan, c.followed, true);
    let mut writer = TableWriter::create(&c.dir.join(file), keys.encoder(plan, c.policy))?;
    if let Some(kt) = c.keys {
        let removed = delta_keys::removed_sql(db, kt);
        let from = ReadFrom::Query(&removed);
        mysql::stream_table(snap, db, from, &keys.reads(), None, |values, lossy| {
            writer.write_row(values, lossy)
        })
        .await?;
    }
    writer.finish()
}
