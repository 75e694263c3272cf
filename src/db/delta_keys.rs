//! A delta's end snapshot and the changed keys in its session (MySQL/MariaDB): the
//! snapshot and its exact log position; one temporary table per changed table, of the key
//! columns' own types (so a key finds its row through the table's index and is written
//! back by the export's encoder exactly as a full export writes it; strings are matched
//! byte for byte besides, whatever the collation), filled with the
//! log's keys; the children a cascading foreign key reaches; one pass that reads each
//! key's row, or says it has none (and whether the log left it in place).

use anyhow::{Context, Result};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::codec::binlog_row::{Key, KeyType, KeyValue, from_text, key_read, literal};
use crate::config::ServerConfig;
use crate::db::catalog::ReadColumn;
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

    /// `<table>.<key0> = <keys>.pgc_k0 AND ...`: under the column's collation (the
    /// table's index finds the row), and a string byte for byte too: under a case- or
    /// accent-insensitive collation `Key-One` would find the row the log renamed
    /// `KEY-ONE`, and the old key would never read as gone.
    fn matches(&self, table: &str, keys: &str) -> String {
        self.key
            .iter()
            .zip(&self.types)
            .enumerate()
            .map(|(i, (c, t))| {
                let (c, k) = (ident(c), key_column(i));
                match t {
                    KeyType::Str { .. } => format!(
                        "{table}.{c} = {keys}.{k} AND CAST({table}.{c} AS BINARY) = CAST({keys}.{k} AS BINARY)"
                    ),
                    _ => format!("{table}.{c} = {keys}.{k}"),
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// The key table's column telling apart keys its own columns' collation holds equal
/// (`Key-One` and `KEY-ONE`, `a` and `a `): a digest of the string parts' exact bytes,
/// part of its primary key.
const EXACT: &str = "pgc_exact";

/// [`EXACT`]'s value for a key: the SHA-256 of its string parts, each with its length
/// (the other parts compare exactly under their own types already).
fn exact(types: &[KeyType], key: &Key) -> String {
    use sha2::Digest;
    let mut sha = sha2::Sha256::new();
    for (t, v) in types.iter().zip(key) {
        if let (KeyType::Str { .. }, KeyValue::Bytes(b)) = (t, v) {
            sha.update((b.len() as u64).to_be_bytes());
            sha.update(b);
        }
    }
    format!("X'{}'", hex::encode(sha.finalize()))
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
    let mut pk: Vec<String> = (0..kt.key.len()).map(key_column).collect();
    pk.push(EXACT.into());
    let sql = format!(
        "CREATE TEMPORARY TABLE {} ({EXACT} BINARY(32) NOT NULL DEFAULT '', PRIMARY KEY ({})) AS SELECT {}, \
         CAST(NULL AS SIGNED) AS {EXISTS}, CAST(NULL AS CHAR(6)) AS {HOW} FROM {} LIMIT 0",
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

/// Insert keys (in batches). A key the table already holds (the same key, byte for byte)
/// keeps its first removal and counts as existing if either did.
pub async fn insert(conn: &mut Conn, db: &str, kt: &KeyTable, rows: &[KeyRow<'_>]) -> Result<()> {
    let context = || format!("recording the changed keys of `{}`", kt.table);
    let mut cols: Vec<String> = (0..kt.key.len()).map(key_column).collect();
    cols.push(EXISTS.into());
    cols.push(HOW.into());
    cols.push(EXACT.into());
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
            v.push(exact(&kt.types, r.key));
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
/// `parent` (the parent's key table; `child_columns` in the parent key's order); with
/// `how`, only of the parent keys the log removed so (`update`).
pub async fn children(
    conn: &mut Conn,
    db: &str,
    parent: &KeyTable,
    child: &KeyTable,
    child_columns: &[String],
    how: Option<&str>,
) -> Result<Vec<Key>> {
    let reads: Vec<String> = child
        .key
        .iter()
        .zip(&child.types)
        .map(|(c, t)| key_read(t, &ident(c)))
        .collect();
    let refs: Vec<String> = child_columns.iter().map(|c| ident(c)).collect();
    let keys: Vec<String> = (0..parent.key.len()).map(key_column).collect();
    let only = how
        .map(|h| format!(" WHERE {HOW} = '{}'", h.replace('\'', "''")))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM {} WHERE ({}) IN (SELECT {} FROM {}{only})",
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

/// The keys of `kt` a child's foreign-key action must follow, as a query for the key
/// reads (`pgc_k*`, `pgc_how`): those the log removed (with how it first did), and those
/// whose row is gone from the snapshot though the log never removed it: InnoDB logs no
/// cascaded change, so such a row was deleted by its own parent's cascade (`delete`).
pub fn removed_sql(db: &str, kt: &KeyTable) -> String {
    let keys: Vec<String> = (0..kt.key.len()).map(key_column).collect();
    format!(
        "SELECT {}, COALESCE({HOW}, '{}') AS {HOW} FROM {} AS {ALIAS} \
         WHERE {HOW} IS NOT NULL OR NOT EXISTS (SELECT 1 FROM {} AS t WHERE {})",
        keys.join(", "),
        crate::store::chain::HOW_DELETE,
        kt.qualified(db),
        qualified(db, &kt.table),
        kt.matches("t", ALIAS)
    )
}

/// What a changed key has in the snapshot.
pub enum Found<'a> {
    /// Its row: the table's columns as the reads select them, and the lossy positions.
    Row(&'a [Option<&'a [u8]>], &'a [usize]),
    /// No row (under the table's `where`): a deleted key, its columns as the key reads
    /// select them, the lossy positions, and whether the log's last event left it in
    /// place (then the log and the snapshot disagree).
    Gone(&'a [Option<&'a [u8]>], &'a [usize], bool),
}

/// Every changed key of `kt` in one pass over the snapshot: its row (`reads` of the
/// table, with its `filter`), or, when it has none, its key (`key_reads` of the key
/// table's `pgc_k*` columns).
pub async fn read_changed<F>(
    conn: &mut Conn,
    db: &str,
    kt: &KeyTable,
    filter: Option<&str>,
    reads: &[ReadColumn<'_>],
    key_reads: &[ReadColumn<'_>],
    mut on: F,
) -> Result<()>
where
    F: FnMut(Found<'_>) -> Result<()>,
{
    let t = qualified(db, &kt.table);
    let (mut cols, mut checks, mut checked) = mysql::select_list(reads, &format!("{t}."));
    let (key_cols, key_checks, key_checked) = mysql::select_list(key_reads, &format!("{ALIAS}."));
    let (nt, nk) = (reads.len(), key_reads.len());
    cols.extend(key_cols);
    cols.push(format!("{ALIAS}.{EXISTS}"));
    cols.push(format!("{t}.{} IS NULL", ident(&kt.key[0])));
    checks.extend(key_checks);
    checked.extend(key_checked.iter().map(|i| i + nt));
    cols.extend(checks);
    let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM {} AS {ALIAS} LEFT JOIN {t} ON {}{filter}",
        cols.join(", "),
        kt.qualified(db),
        kt.matches(&t, ALIAS)
    );
    let (mut row_lossy, mut key_lossy) = (Vec::new(), Vec::new());
    mysql::stream_sql(
        conn,
        sql,
        nt + nk + 2,
        &checked,
        &kt.table,
        |values, lossy| {
            if values[nt + nk + 1] == Some(b"1".as_slice()) {
                key_lossy.clear();
                key_lossy.extend(lossy.iter().filter(|&&i| i >= nt).map(|i| i - nt));
                let in_place = values[nt + nk] == Some(b"1".as_slice());
                on(Found::Gone(&values[nt..nt + nk], &key_lossy, in_place))
            } else {
                row_lossy.clear();
                row_lossy.extend(lossy.iter().filter(|&&i| i < nt));
                on(Found::Row(&values[..nt], &row_lossy))
            }
        },
    )
    .await
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
