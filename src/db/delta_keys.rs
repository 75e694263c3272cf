//! A delta's end snapshot and the changed keys in its session (MySQL/MariaDB): the
//! snapshot and its exact log position; one temporary table per changed table, of the key
//! columns' own types (so a key compares under the column's collation and is written
//! back by the export's encoder exactly as a full export writes it), filled with the
//! log's keys; the children a cascading foreign key reaches; the self-check that every
//! key the log left in place has its row. The rows themselves are read by
//! `db::mysql::stream_joined` over the SQL built here.

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::codec::binlog_row::{Key, KeyType, from_text, key_read, literal};
use crate::config::ServerConfig;
use crate::db::mysql::{connect, error, prepare_reader};
use crate::db::sql::my::{ident, qualified};
use crate::db::{binlog_status, mysql};

/// A changed table's temporary table of keys.
#[derive(Debug, Clone)]
pub struct KeyTable {
    /// The temporary table (in the source database, visible to this session only).
    pub name: String,
    pub table: String,
    pub key: Vec<String>,
    pub types: Vec<KeyType>,
}

/// The column of a key table holding the `i`-th key column.
pub fn key_column(i: usize) -> String {
    format!("pgc_k{i}")
}

/// The key table's alias in a join (no source table is expected to be named so).
const ALIAS: &str = "pgconverge_keys";

/// Whether the log's last event for a key left it in place (1), removed it (0), or the
/// key was found through a cascade (NULL).
pub const EXISTS: &str = "pgc_exists";
/// How the log first removed a key (`delete`, `update`), or NULL.
pub const HOW: &str = "pgc_how";

impl KeyTable {
    /// `` `db`.`pgconverge_keys_3` ``.
    pub fn qualified(&self, db: &str) -> String {
        qualified(db, &self.name)
    }

    /// ` JOIN <keys> AS pgconverge_keys ON <table>.<key> = pgconverge_keys.pgc_k0 AND ...`,
    /// to read the changed rows.
    pub fn join(&self, db: &str) -> String {
        format!(
            " JOIN {} AS {ALIAS} ON {}",
            self.qualified(db),
            self.matches(&qualified(db, &self.table), ALIAS)
        )
    }

    /// `<table>.<key0> = <keys>.pgc_k0 AND ...`.
    fn matches(&self, table: &str, keys: &str) -> String {
        self.key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{table}.{} = {keys}.{}", ident(c), key_column(i)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The WHERE of the deleted keys, read from the key table (named `keys`: its
    /// qualified name, or an alias): no row of the table, with its `filter`, has the key.
    pub fn deleted_condition(&self, db: &str, keys: &str, filter: Option<&str>) -> String {
        let t = qualified(db, &self.table);
        let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
        format!(
            "NOT EXISTS (SELECT 1 FROM {t} WHERE {}{filter})",
            self.matches(&t, keys)
        )
    }
}

/// Open the end snapshot of a delta: one session, REPEATABLE READ, UTC, utf8mb4, a
/// consistent snapshot (not READ ONLY: it writes the keys into temporary tables), and the
/// log position it is consistent with. MariaDB reports that of the snapshot itself;
/// MySQL's is read while `tables` are locked READ and the snapshot starts.
pub async fn open_end_snapshot(
    cfg: &ServerConfig,
    db: &str,
    tables: &[String],
) -> Result<(Conn, (String, u64))> {
    let mut conn = connect(cfg, Some(db)).await?;
    prepare_reader(&mut conn).await?;
    let start = "START TRANSACTION WITH CONSISTENT SNAPSHOT";
    let context = "starting the delta's consistent snapshot";
    let mariadb = mysql::server_version(&mut conn)
        .await?
        .to_ascii_lowercase()
        .contains("mariadb");
    if mariadb {
        conn.query_drop(start)
            .await
            .map_err(error)
            .context(context)?;
        let at = binlog_status::snapshot_position(&mut conn).await?.context(
            "MariaDB did not report the snapshot's binary log position (is log_bin on?)",
        )?;
        return Ok((conn, at));
    }
    let mut locker = connect(cfg, Some(db)).await?;
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{} READ", qualified(db, t)))
        .collect();
    locker
        .query_drop(format!("LOCK TABLES {}", list.join(", ")))
        .await
        .map_err(error)
        .context("locking the exported tables to read the log position of the delta's snapshot")?;
    conn.query_drop(start)
        .await
        .map_err(error)
        .context(context)?;
    let at = binlog_status::current_position(&mut locker).await?;
    locker
        .query_drop("UNLOCK TABLES")
        .await
        .map_err(error)
        .context("unlocking the tables")?;
    let _ = locker.disconnect().await;
    Ok((conn, at))
}

/// Create the key table of `t` (no rows yet).
pub async fn create(conn: &mut Conn, db: &str, kt: &KeyTable) -> Result<()> {
    let cols: Vec<String> = kt
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS {}", ident(c), key_column(i)))
        .collect();
    let pk: Vec<String> = (0..kt.key.len()).map(key_column).collect();
    let sql = format!(
        "CREATE TEMPORARY TABLE {} (PRIMARY KEY ({})) AS SELECT {}, CAST(NULL AS SIGNED) AS {EXISTS}, \
         CAST(NULL AS CHAR(6)) AS {HOW} FROM {} LIMIT 0",
        kt.qualified(db),
        pk.join(", "),
        cols.join(", "),
        qualified(db, &kt.table)
    );
    conn.query_drop(sql)
        .await
        .map_err(error)
        .with_context(|| format!("creating the table of changed keys of `{}`", kt.table))
}

/// One key to put in a key table: the key, what its last logged event left, and how it
/// was first removed.
pub struct KeyRow<'a> {
    pub key: &'a Key,
    pub exists: Option<bool>,
    pub how: Option<&'static str>,
}

/// Insert keys (in batches). A key the table already holds (the same key under the
/// column's collation) keeps its first removal and counts as existing if either did.
pub async fn insert(conn: &mut Conn, db: &str, kt: &KeyTable, rows: &[KeyRow<'_>]) -> Result<()> {
    let context = || format!("recording the changed keys of `{}`", kt.table);
    let mut cols: Vec<String> = (0..kt.key.len()).map(key_column).collect();
    cols.push(EXISTS.into());
    cols.push(HOW.into());
    // Zero dates and MySQL's invalid ENUM value are keys too: no strict mode here.
    conn.query_drop("SET @pgc_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = ''")
        .await
        .map_err(error)
        .with_context(context)?;
    for batch in rows.chunks(500) {
        let mut values = Vec::with_capacity(batch.len());
        for r in batch {
            let mut v = Vec::with_capacity(cols.len());
            for (kt_i, value) in kt.types.iter().zip(r.key) {
                v.push(
                    literal(kt_i, value)
                        .map_err(|e| anyhow::anyhow!(e))
                        .with_context(context)?,
                );
            }
            v.push(match r.exists {
                Some(true) => "1".into(),
                Some(false) => "0".into(),
                None => "NULL".into(),
            });
            v.push(
                r.how
                    .map(|h| format!("'{h}'"))
                    .unwrap_or_else(|| "NULL".into()),
            );
            values.push(format!("({})", v.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON DUPLICATE KEY UPDATE \
             {EXISTS} = COALESCE(GREATEST({EXISTS}, VALUES({EXISTS})), {EXISTS}, VALUES({EXISTS})), \
             {HOW} = COALESCE({HOW}, VALUES({HOW}))",
            kt.qualified(db),
            cols.join(", "),
            values.join(", ")
        );
        conn.query_drop(sql)
            .await
            .map_err(error)
            .with_context(context)?;
    }
    conn.query_drop("SET SESSION sql_mode = @pgc_sql_mode")
        .await
        .map_err(error)
        .with_context(context)
}

/// The keys of `child`'s rows (in the snapshot) whose `child_columns` hold a key of
/// `parent` (the parent's key table; `child_columns` in the parent key's order).
pub async fn children(
    conn: &mut Conn,
    db: &str,
    parent: &KeyTable,
    child: &KeyTable,
    child_columns: &[String],
) -> Result<Vec<Key>> {
    let reads: Vec<String> = child
        .key
        .iter()
        .zip(&child.types)
        .map(|(c, t)| key_read(t, &ident(c)))
        .collect();
    let refs: Vec<String> = child_columns.iter().map(|c| ident(c)).collect();
    let keys: Vec<String> = (0..parent.key.len()).map(key_column).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE ({}) IN (SELECT {} FROM {})",
        reads.join(", "),
        qualified(db, &child.table),
        refs.join(", "),
        keys.join(", "),
        parent.qualified(db)
    );
    read_keys(conn, &sql, &child.types).await.with_context(|| {
        format!(
            "reading the rows of `{}` that reference changed keys of `{}`",
            child.table, parent.table
        )
    })
}

/// Up to `limit` keys the log left in place (last event: written) that have no row in
/// the snapshot: the log and the snapshot disagree.
pub async fn missing(conn: &mut Conn, db: &str, kt: &KeyTable, limit: usize) -> Result<Vec<Key>> {
    let reads: Vec<String> = (0..kt.key.len())
        .zip(&kt.types)
        .map(|(i, t)| key_read(t, &format!("{ALIAS}.{}", key_column(i))))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} AS {ALIAS} WHERE {ALIAS}.{EXISTS} = 1 AND {} LIMIT {limit}",
        reads.join(", "),
        kt.qualified(db),
        kt.deleted_condition(db, ALIAS, None)
    );
    read_keys(conn, &sql, &kt.types).await.with_context(|| {
        format!(
            "checking the changed keys of `{}` against the snapshot",
            kt.table
        )
    })
}

async fn read_keys(conn: &mut Conn, sql: &str, types: &[KeyType]) -> Result<Vec<Key>> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(error)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut key = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            let Some(mysql_async::Value::Bytes(b)) = row.as_ref(i) else {
                anyhow::bail!("a key column read as NULL");
            };
            key.push(from_text(t, b).map_err(|e| anyhow::anyhow!(e))?);
        }
        out.push(key);
    }
    Ok(out)
}
