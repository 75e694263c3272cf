//! A PostgreSQL source's unique keys and replica identities: which key a delta follows a
//! table by, and whether the table's UPDATE and DELETE records carry that key.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use tokio_postgres::Client;

use crate::db::catalog::UniqueKey;
use crate::db::postgres::error;

/// The unique indexes (primary keys included) over plain columns of `schema`'s tables,
/// valid and not partial.
pub async fn unique_keys(client: &Client, schema: &str) -> Result<Vec<UniqueKey>> {
    let rows = client
        .query(
            "SELECT c.relname::text, i.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
                          ORDER BY k.o),
                    0 = ANY (x.indkey::int2[]) OR x.indpred IS NOT NULL
             FROM pg_index x
             JOIN pg_class c ON c.oid = x.indrelid
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND x.indisunique AND x.indisvalid
             ORDER BY c.relname, NOT x.indisprimary, i.relname",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the unique keys of schema `{schema}`"))?;
    Ok(rows
        .iter()
        .map(|r| UniqueKey {
            table: r.get(0),
            name: r.get(1),
            columns: r.get(2),
            prefix: r.get(3),
        })
        .collect())
}

/// What a table's UPDATE and DELETE records carry of the old row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// These columns (the primary key, or a `USING INDEX` index's).
    Columns(Vec<String>),
    /// Every column (`REPLICA IDENTITY FULL`).
    Full,
    /// Nothing (`NOTHING`, or DEFAULT without a primary key).
    Nothing,
}

impl Identity {
    /// Does it carry every one of `key`?
    pub fn carries(&self, key: &[String]) -> bool {
        match self {
            Identity::Full => true,
            Identity::Nothing => false,
            Identity::Columns(c) => key.iter().all(|k| c.contains(k)),
        }
    }
}

/// Each table's replica identity.
pub async fn replica_identities(
    client: &Client,
    schema: &str,
) -> Result<BTreeMap<String, Identity>> {
    let rows = client
        .query(
            "SELECT c.relname::text, c.relreplident::text,
                    ARRAY(SELECT a.attname::text
                          FROM pg_index x, unnest(x.indkey) k(n)
                          JOIN pg_attribute a ON a.attnum = k.n
                          WHERE x.indrelid = c.oid AND a.attrelid = c.oid
                            AND ((c.relreplident = 'd' AND x.indisprimary)
                              OR (c.relreplident = 'i' AND x.indisreplident)))
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the replica identities of schema `{schema}`"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let cols: Vec<String> = r.get(2);
            let id = match r.get::<_, String>(1).as_str() {
                "f" => Identity::Full,
                _ if cols.is_empty() => Identity::Nothing,
                _ => Identity::Columns(cols),
            };
            (r.get(0), id)
        })
        .collect())
}

/// The partitions of `schema`'s partitioned tables, wherever they live: (schema, name)
/// -> the root table's name. Logical decoding names the partition a row is in.
pub async fn partition_roots(
    client: &Client,
    schema: &str,
) -> Result<BTreeMap<(String, String), String>> {
    let rows = client
        .query(
            "SELECT cn.nspname::text, c.relname::text, r.relname::text
             FROM pg_class c JOIN pg_namespace cn ON cn.oid = c.relnamespace
             JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
             JOIN pg_namespace rn ON rn.oid = r.relnamespace
             WHERE c.relispartition AND rn.nspname = $1",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the partitions of schema `{schema}`"))?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}

/// The UNLOGGED tables of `schema` (and tables with an unlogged partition, by root
/// name): their changes never reach the WAL, so no delta can see them.
pub async fn unlogged(client: &Client, schema: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT DISTINCT coalesce(r.relname, c.relname)::text
             FROM pg_class c
             LEFT JOIN pg_class r ON c.relispartition AND r.oid = pg_partition_root(c.oid)
             JOIN pg_namespace n ON n.oid = coalesce(r.relnamespace, c.relnamespace)
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relpersistence = 'u'",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the unlogged tables of schema `{schema}`"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
