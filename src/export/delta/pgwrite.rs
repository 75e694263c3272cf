//! The files of a delta from a PostgreSQL source, table by table: the changed keys, sent
//! as text in batches and cast to the key columns' types in an `unnest`, each joined to
//! its row in the end snapshot (written through the export's own reader and encoder) or
//! found without one (a deleted key, written through the key columns' encoder, exactly
//! as `write` does for MySQL); every row of a table copied whole.

use std::path::Path;

use anyhow::{Result, anyhow};
use tokio_postgres::Client;

use crate::codec::binlog_row::{Key, KeyValue};
use crate::codec::encode::{InvalidPolicy, RowEncoder, row_key};
use crate::db::catalog::{Read, ReadColumn, ReadFrom};
use crate::db::delta_keys::key_column;
use crate::db::pgsource;
use crate::db::sql::pg::{ident, literal, qualified};
use crate::export::delta::changes::TableChanges;
use crate::export::delta::checks::Followed;
use crate::export::delta::write::KeyColumns;
use crate::export::plan::TablePlan;
use crate::hint::with_hint;
use crate::store::csvfile::{TableWriter, Written};

/// Keys per statement.
const BATCH: usize = 5_000;
/// The column saying whether the log left a key in place.
const IN_PLACE: &str = "pgc_in_place";

/// One table's changes to write.
pub struct PgChanged<'a> {
    pub schema: &'a str,
    pub plan: &'a TablePlan,
    pub followed: &'a Followed,
    pub policy: InvalidPolicy,
    pub dir: &'a Path,
    pub whole: bool,
    pub changes: Option<&'a TableChanges>,
    /// Stop when a key the log left in place has no row.
    pub checked: bool,
}

/// The upserted rows and the deleted keys of a table.
pub async fn write_changes(
    snap: &Client,
    c: &PgChanged<'_>,
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
    match (c.whole, c.changes) {
        (true, _) => {
            pgsource::stream_table(
                snap,
                c.schema,
                plan.read_from(),
                &plan.reads(),
                None,
                |v, l| rows.write_row(v, l),
            )
            .await?
        }
        (false, Some(changes)) if !changes.keys.is_empty() => {
            let all: Vec<(&Key, bool)> = changes.keys.iter().map(|(k, s)| (k, s.exists)).collect();
            let mut gone_reads = keys.reads();
            gone_reads.push(ReadColumn::whole(IN_PLACE, Read::Text, None));
            let n = keys.names.len();
            for batch in all.chunks(BATCH) {
                let from = key_rows(c, batch)?;
                let found = format!(
                    "SELECT t.* FROM {} AS t JOIN ({from}) AS k ON {}{}",
                    qualified(c.schema, &plan.name),
                    matches(c.followed),
                    filter(plan, " WHERE ")
                );
                pgsource::stream_table(
                    snap,
                    c.schema,
                    ReadFrom::Query(&found),
                    &plan.reads(),
                    None,
                    |v, l| rows.write_row(v, l),
                )
                .await?;
                let missing = format!(
                    "SELECT * FROM ({from}) AS k WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {}{})",
                    qualified(c.schema, &plan.name),
                    matches(c.followed),
                    filter(plan, " AND ")
                );
                pgsource::stream_table(
                    snap,
                    c.schema,
                    ReadFrom::Query(&missing),
                    &gone_reads,
                    None,
                    |v, l| {
                        let in_place = v.get(n).copied().flatten() == Some(b"t".as_slice());
                        if in_place && c.checked && disagree.len() < 5 {
                            let pk: Vec<usize> = (0..n).collect();
                            disagree.push(row_key(&v[..n], &pk, &keys.names, 0));
                        }
                        gone.write_row(&v[..n], l)
                    },
                )
                .await?;
            }
        }
        _ => {}
    }
    if !disagree.is_empty() {
        return Err(with_hint(
            anyhow!(
                "table `{}`: the slot's changes say these keys exist at the delta's end, but \
                 the snapshot has no row for them: {}",
                plan.name,
                disagree.join("; ")
            ),
            "the log and the snapshot disagree (a key read wrongly from the log); nothing was \
             written; start a new chain (export --delta-base) and report this if it repeats",
        ));
    }
    Ok((rows.finish()?, gone.finish()?))
}

/// `t.k0 = k.pgc_k0 AND ...`.
fn matches(f: &Followed) -> String {
    f.key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("t.{} = k.{}", ident(k), key_column(i)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn filter(plan: &TablePlan, glue: &str) -> String {
    match &plan.filter {
        Some(f) => format!("{glue}({f})"),
        None => String::new(),
    }
}

/// The keys of a batch as rows of the key columns' own types (`pgc_k0`, ...) and
/// `pgc_in_place`.
fn key_rows(c: &PgChanged<'_>, batch: &[(&Key, bool)]) -> Result<String> {
    let mut arrays = Vec::new();
    let mut casts = Vec::new();
    for (i, k) in c.followed.key.iter().enumerate() {
        let col = c
            .plan
            .columns
            .iter()
            .find(|col| &col.name == k)
            .ok_or_else(|| anyhow!("table `{}`: key column `{k}` is not exported", c.plan.name))?;
        let values: Vec<String> = batch
            .iter()
            .map(|(key, _)| match key.get(i) {
                Some(KeyValue::Text(t)) => literal(t),
                Some(other) => literal(&format!("{other:?}")),
                None => "NULL".into(),
            })
            .collect();
        arrays.push(format!("ARRAY[{}]::text[]", values.join(",")));
        casts.push(format!("u.a{i}::{} AS {}", col.column_type, key_column(i)));
    }
    let places: Vec<&str> = batch
        .iter()
        .map(|(_, p)| if *p { "true" } else { "false" })
        .collect();
    arrays.push(format!("ARRAY[{}]::bool[]", places.join(",")));
    let names: Vec<String> = (0..c.followed.key.len())
        .map(|i| format!("a{i}"))
        .chain(std::iter::once("p".to_string()))
        .collect();
    Ok(format!(
        "SELECT {}, u.p AS {IN_PLACE} FROM unnest({}) AS u({})",
        casts.join(", "),
        arrays.join(", "),
        names.join(", ")
    ))
}
