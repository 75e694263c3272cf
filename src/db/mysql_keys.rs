//! A MySQL source's keys beyond the primary key, which only a delta chain needs: its
//! unique indexes (a table without a primary key may be followed by a unique key over
//! NOT NULL columns) and its foreign keys with their ON DELETE / ON UPDATE actions.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::db::catalog::{SourceForeignKey, UniqueKey};
use crate::db::mysql::error;

/// The unique indexes of `db`'s tables other than their primary keys, columns in index
/// order.
pub async fn unique_keys(conn: &mut Conn, db: &str) -> Result<Vec<UniqueKey>> {
    let rows: Vec<(String, String, String, Option<u64>)> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, \
                    COLUMN_NAME AS column_name, SUB_PART AS sub_part \
             FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the unique indexes of database `{db}`"))?;
    let mut keys: BTreeMap<(String, String), UniqueKey> = BTreeMap::new();
    for (table, name, column, sub_part) in rows {
        let k = keys
            .entry((table.clone(), name.clone()))
            .or_insert_with(|| UniqueKey {
                table,
                name,
                columns: Vec::new(),
                prefix: false,
            });
        k.columns.push(column);
        k.prefix |= sub_part.is_some();
    }
    Ok(keys.into_values().collect())
}

/// The foreign keys among `db`'s tables, columns in key order, with their actions.
pub async fn foreign_keys(conn: &mut Conn, db: &str) -> Result<Vec<SourceForeignKey>> {
    type Row = (String, String, String, String, String, String, String);
    let rows: Vec<Row> = conn
        .exec(
            "SELECT k.CONSTRAINT_NAME AS name, k.TABLE_NAME AS child, k.COLUMN_NAME AS child_column, \
                    k.REFERENCED_TABLE_NAME AS parent, k.REFERENCED_COLUMN_NAME AS parent_column, \
                    r.DELETE_RULE AS on_delete, r.UPDATE_RULE AS on_update \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
              AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.CONSTRAINT_SCHEMA = ? AND k.REFERENCED_TABLE_SCHEMA = ? \
             ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            (db, db),
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading the foreign keys of database `{db}`"))?;
    let mut fks: BTreeMap<(String, String), SourceForeignKey> = BTreeMap::new();
    for (name, child, child_column, parent, parent_column, on_delete, on_update) in rows {
        let fk = fks
            .entry((child.clone(), name.clone()))
            .or_insert_with(|| SourceForeignKey {
                name,
                child,
                child_columns: Vec::new(),
                parent,
                parent_columns: Vec::new(),
                on_delete: on_delete.to_ascii_uppercase(),
                on_update: on_update.to_ascii_uppercase(),
            });
        fk.child_columns.push(child_column);
        fk.parent_columns.push(parent_column);
    }
    Ok(fks.into_values().collect())
}
