//! The export's source behind one small interface, MySQL/MariaDB or PostgreSQL: connect,
//! read the catalog, describe a query, check a filter, cut key ranges, open readers on one
//! snapshot, stream a dataset, count. Each call goes to `db::mysql` or `db::pgsource`.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::config::{Engine, ServerConfig};
use crate::db::catalog::{
    KeyLiteral, KeyRange, ReadColumn, ReadFrom, Snapshot, SourceColumn, SourceTable,
};
use crate::db::{mysql, pgsource, postgres};

/// Where the source is: its engine, server, database, and the namespace its tables live
/// in (MySQL: the database; PostgreSQL: the schema, `source_schema`).
#[derive(Debug, Clone)]
pub struct Source {
    pub engine: Engine,
    pub cfg: ServerConfig,
    pub database: String,
    pub namespace: String,
}

/// A connection to the source.
pub enum Conn {
    Mysql(mysql_async::Conn),
    Postgres(tokio_postgres::Client),
}

/// Reading connections that all see one snapshot of the source.
pub struct Readers {
    pub conns: Vec<Conn>,
    pub snapshot: Snapshot,
    /// Said to the user when fewer readers than asked could be synchronised.
    pub note: Option<String>,
    /// The binary log position of the snapshot (file, offset), when asked for.
    pub position: Option<(String, u64)>,
}

impl Source {
    pub async fn connect(&self) -> Result<Conn> {
        Ok(match self.engine {
            Engine::Mysql => Conn::Mysql(mysql::connect(&self.cfg, Some(&self.database)).await?),
            Engine::Postgresql => {
                Conn::Postgres(pgsource::connect_reader(&self.cfg, &self.database).await?)
            }
        })
    }

    /// `wanted` readers on one snapshot (MySQL: synchronised under LOCK TABLES over
    /// `tables`; PostgreSQL: an exported snapshot).
    /// `position`: also read the binary log position the snapshot is consistent with
    /// (MySQL; a delta chain's base).
    pub async fn open_readers(
        &self,
        tables: &[String],
        wanted: usize,
        position: bool,
    ) -> Result<Readers> {
        Ok(match self.engine {
            Engine::Mysql => {
                let r = mysql::open_readers(&self.cfg, &self.database, tables, wanted, position)
                    .await?;
                Readers {
                    conns: r.conns.into_iter().map(Conn::Mysql).collect(),
                    snapshot: r.snapshot,
                    note: r.note,
                    position: r.position,
                }
            }
            Engine::Postgresql => {
                let (conns, snapshot) =
                    pgsource::open_readers(&self.cfg, &self.database, wanted).await?;
                Readers {
                    conns: conns.into_iter().map(Conn::Postgres).collect(),
                    snapshot,
                    note: None,
                    position: None,
                }
            }
        })
    }
}

impl Conn {
    pub async fn server_version(&mut self) -> Result<String> {
        match self {
            Conn::Mysql(c) => mysql::server_version(c).await,
            Conn::Postgres(c) => postgres::server_version(c).await,
        }
    }

    pub async fn read_catalog(&mut self, namespace: &str) -> Result<Vec<SourceTable>> {
        match self {
            Conn::Mysql(c) => mysql::read_catalog(c, namespace).await,
            Conn::Postgres(c) => pgsource::read_catalog(c, namespace).await,
        }
    }

    /// The non-UTF-8 character sets that convert losslessly (MySQL); PostgreSQL sends
    /// UTF-8 (client_encoding) and has none to check.
    pub async fn lossless_charsets(
        &mut self,
        charsets: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>> {
        match self {
            Conn::Mysql(c) => mysql::lossless_charsets(c, charsets).await,
            Conn::Postgres(_) => Ok(BTreeSet::new()),
        }
    }

    pub async fn probe_query(&mut self, dataset: &str, query: &str) -> Result<Vec<SourceColumn>> {
        match self {
            Conn::Mysql(c) => mysql::probe_query(c, dataset, query).await,
            Conn::Postgres(c) => pgsource::probe_query(c, dataset, query).await,
        }
    }

    pub async fn check_filter(&mut self, namespace: &str, table: &str, filter: &str) -> Result<()> {
        match self {
            Conn::Mysql(c) => mysql::check_filter(c, namespace, table, filter).await,
            Conn::Postgres(c) => pgsource::check_filter(c, namespace, table, filter).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn split_points(
        &mut self,
        namespace: &str,
        table: &str,
        column: &str,
        integer: bool,
        estimated_rows: u64,
        parts: u64,
    ) -> Result<Vec<KeyLiteral>> {
        match self {
            Conn::Mysql(c) => {
                mysql::split_points(c, namespace, table, column, integer, estimated_rows, parts)
                    .await
            }
            Conn::Postgres(c) => {
                pgsource::split_points(c, namespace, table, column, integer, estimated_rows, parts)
                    .await
            }
        }
    }

    /// Stream a dataset: each row's values (as text) and the positions of values a
    /// MySQL charset could not convert.
    pub async fn stream_table<F>(
        &mut self,
        namespace: &str,
        from: ReadFrom<'_>,
        columns: &[ReadColumn<'_>],
        range: Option<&KeyRange>,
        on_row: F,
    ) -> Result<()>
    where
        F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
    {
        match self {
            Conn::Mysql(c) => mysql::stream_table(c, namespace, from, columns, range, on_row).await,
            Conn::Postgres(c) => {
                pgsource::stream_table(c, namespace, from, columns, range, on_row).await
            }
        }
    }

    pub async fn count_rows(&mut self, namespace: &str, from: ReadFrom<'_>) -> Result<u64> {
        match self {
            Conn::Mysql(c) => mysql::count_rows(c, namespace, from).await,
            Conn::Postgres(c) => pgsource::count_rows(c, namespace, from).await,
        }
    }

    pub async fn count_matching(
        &mut self,
        namespace: &str,
        from: ReadFrom<'_>,
        range: Option<&KeyRange>,
        exprs: &[&str],
    ) -> Result<Vec<u64>> {
        match self {
            Conn::Mysql(c) => mysql::count_matching(c, namespace, from, range, exprs).await,
            Conn::Postgres(c) => pgsource::count_matching(c, namespace, from, range, exprs).await,
        }
    }

    pub async fn disconnect(self) {
        if let Conn::Mysql(c) = self {
            let _ = c.disconnect().await;
        }
    }
}
