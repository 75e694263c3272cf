//! What the source holds, read from `information_schema`: tables, columns and primary
//! keys (MariaDB's JSON columns found by their CHECK), and which character sets convert
//! to utf8mb4 without loss.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::db::catalog::{SourceColumn, SourceTable};

use super::error;

/// Tables, columns and primary keys of `db`, in name order.
pub async fn read_catalog(conn: &mut Conn, db: &str) -> Result<Vec<SourceTable>> {
    let ctx = || format!("reading information_schema for database `{db}`");
    // MySQL 8 caches TABLES statistics (AUTO_INCREMENT included) for a day by default;
    // MariaDB has no such variable (error 1193) and is always current.
    match conn
        .query_drop("SET SESSION information_schema_stats_expiry = 0")
        .await
    {
        Err(mysql_async::Error::Server(e)) if e.code == 1193 => {}
        other => other.map_err(error).with_context(ctx)?,
    }
    let tables: Vec<(String, String, u64, Option<u64>)> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COALESCE(ENGINE, '') AS engine, \
                    COALESCE(TABLE_ROWS, 0) AS table_rows, AUTO_INCREMENT AS auto_increment \
             FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    type ColumnRow = (
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
    );
    let columns: Vec<ColumnRow> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, \
                    DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, \
                    IS_NULLABLE AS is_nullable, EXTRA AS extra, \
                    CHARACTER_SET_NAME AS character_set_name \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let keys: Vec<(String, String)> = conn
        .exec(
            "SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let json_columns = mariadb_json_columns(conn, db).await.with_context(ctx)?;
    let mut next_ids = Vec::new();
    let mut out: Vec<SourceTable> = tables
        .into_iter()
        .map(|(name, engine, rows, next)| {
            next_ids.push(next);
            SourceTable {
                name,
                engine,
                estimated_rows: rows,
                columns: Vec::new(),
                primary_key: Vec::new(),
                auto_increment: None,
                partitions: None,
            }
        })
        .collect();
    let index: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    for (table, name, data_type, column_type, nullable, extra, charset) in columns {
        if let Some(&i) = index.get(&table) {
            let extra = extra.to_ascii_uppercase();
            if extra.contains("AUTO_INCREMENT")
                && let Some(next) = next_ids[i]
            {
                out[i].auto_increment = Some((name.clone(), next));
            }
            let is_json = json_columns.contains(&(table.clone(), name.clone()));
            out[i].columns.push(SourceColumn {
                data_type: if is_json {
                    "json".into()
                } else {
                    data_type.to_ascii_lowercase()
                },
                column_type: column_type.to_ascii_lowercase(),
                nullable: nullable.eq_ignore_ascii_case("YES"),
                generated: [
                    "VIRTUAL GENERATED",
                    "STORED GENERATED",
                    "PERSISTENT GENERATED",
                ]
                .iter()
                .any(|g| extra.contains(g)),
                charset: charset.map(|c| c.to_ascii_lowercase()),
                labels: Vec::new(),
                name,
            });
        }
    }
    for (table, column) in keys {
        if let Some(&i) = index.get(&table) {
            out[i].primary_key.push(column);
        }
    }
    Ok(out)
}

/// Which of `charsets` (non-UTF-8 character sets of the source's columns) convert every
/// value to utf8mb4 and back unchanged on this server, so that their columns need no
/// per-value check. Only a single-byte set can be proven so, by its 256 byte values, and
/// the server is asked rather than trusted from a list: on MariaDB 10.11 every byte of
/// latin1, latin2, koi8r, cp850, macroman ... round-trips, while cp1251 (0x98), ascii
/// (0x80-0xFF) and tis620 do not. Multi-byte sets (gbk, big5, ucs2 ...) are always checked.
pub async fn lossless_charsets(
    conn: &mut Conn,
    charsets: &std::collections::BTreeSet<String>,
) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for cs in charsets {
        if !cs.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            continue;
        }
        let maxlen: Option<u64> = conn
            .exec_first(
                "SELECT MAXLEN AS maxlen FROM information_schema.CHARACTER_SETS \
                 WHERE CHARACTER_SET_NAME = ?",
                (cs,),
            )
            .await
            .map_err(error)
            .with_context(|| format!("reading character set `{cs}`"))?;
        if maxlen != Some(1) {
            continue;
        }
        let lossy: Option<u64> = conn
            .query_first(format!(
                "WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 255) \
                 SELECT COUNT(*) FROM n WHERE CAST(CONVERT(CONVERT(CONVERT(CHAR(i USING binary) \
                 USING {cs}) USING utf8mb4) USING {cs}) AS BINARY) <> CHAR(i USING binary)"
            ))
            .await
            .map_err(error)
            .with_context(|| format!("probing character set `{cs}`"))?;
        if lossy == Some(0) {
            out.insert(cs.clone());
        }
    }
    Ok(out)
}

/// MariaDB's JSON is LONGTEXT with `CHECK (json_valid(col))`; find those columns so they
/// get the JSON checks. MySQL 8 has a real `json` type, and its CHECK_CONSTRAINTS has no
/// TABLE_NAME (error 1054); MySQL 5.7 has no such view (1109): both mean none.
async fn mariadb_json_columns(conn: &mut Conn, db: &str) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = match conn
        .exec(
            "SELECT TABLE_NAME AS table_name, CHECK_CLAUSE AS check_clause \
             FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?",
            (db,),
        )
        .await
    {
        Ok(r) => r,
        Err(mysql_async::Error::Server(e)) if e.code == 1054 || e.code == 1109 => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(error(e)).context("reading CHECK constraints (MariaDB JSON columns)"),
    };
    Ok(rows
        .into_iter()
        .filter_map(|(table, clause)| {
            let c = clause.trim();
            let inner = c.strip_prefix("json_valid(")?.strip_suffix(')')?;
            Some((table, inner.trim_matches('`').replace("``", "`")))
        })
        .collect())
}
