//! Every conversation with PostgreSQL: connecting (with errors that say what failed and
//! how to fix it), catalog reads, COPY, counts. Errors are formatted from `DbError`
//! (code, message, detail, hint, where) because the driver's Display alone loses them.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, NoTls};

use crate::config::ServerConfig;
use crate::encode::pgbinary;
use crate::hint::with_hint;

/// Quote an identifier for PostgreSQL: double quotes, embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a string literal for PostgreSQL (standard_conforming_strings is on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// A driver error as text with SQLSTATE, detail and where; the server's hint becomes a `Hint`.
pub fn error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                text.push_str(&format!("; detail: {d}"));
            }
            if let Some(w) = db.where_() {
                text.push_str(&format!("; where: {w}"));
            }
            let err = anyhow!(text);
            match db.hint() {
                Some(h) => with_hint(err, h),
                None => err,
            }
        }
        None => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            anyhow!(text)
        }
    }
}

/// What to do about a target database that does not exist.
pub const MISSING_DATABASE_HINT: &str =
    "create it and run the application's migrations first, or pass --target-db";

/// Connect to a database; the connection task runs in the background until the client drops.
pub async fn connect(cfg: &ServerConfig, db: &str) -> Result<Client> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&cfg.host)
        .port(cfg.port)
        .user(&cfg.user)
        .dbname(db)
        .application_name("pgconverge")
        .connect_timeout(Duration::from_secs(15));
    if let Some(p) = &cfg.password {
        pg.password(p.expose());
    }
    let (client, connection) = pg.connect(NoTls).await.map_err(|e| explain(e, cfg, db))?;
    tokio::spawn(async move {
        // Errors surface on the next client call; nothing to report here.
        let _ = connection.await;
    });
    Ok(client)
}

fn explain(e: tokio_postgres::Error, cfg: &ServerConfig, db: &str) -> anyhow::Error {
    let place = format!("PostgreSQL at {}", cfg.display());
    if let Some(dbe) = e.as_db_error() {
        let code = dbe.code().code();
        let msg = dbe.message().to_string();
        return match code {
            "28P01" | "28000" => with_hint(
                anyhow!("{place} refused the login: {msg}"),
                "check POSTGRES_USER and POSTGRES_PASSWORD (flag, environment or .env)",
            ),
            "3D000" => with_hint(
                anyhow!("{place}: database `{db}` does not exist"),
                MISSING_DATABASE_HINT,
            ),
            _ => anyhow!("connecting to {place}: {}", error(e)),
        };
    }
    with_hint(
        anyhow!("cannot reach {place}: {}", error(e)),
        "is the server running? scripts/dev-services.sh starts a local one; check POSTGRES_HOST and POSTGRES_PORT",
    )
}

/// `SHOW server_version`.
pub async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(error)
        .context("reading the PostgreSQL server version")?;
    Ok(row.get(0))
}

/// Does the database exist?
pub async fn database_exists(client: &Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(error)
        .with_context(|| format!("looking up database `{name}`"))?;
    Ok(row.is_some())
}

/// Whether this role may `SET session_replication_role`, and why (tried, then rolled back).
pub async fn replication_role_check(client: &mut Client) -> Result<(bool, String)> {
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(error)?
        .get(0);
    let tx = client.transaction().await.map_err(error)?;
    let outcome = tx
        .batch_execute("SET LOCAL session_replication_role = replica")
        .await;
    tx.rollback().await.map_err(error)?;
    Ok(match outcome {
        Ok(()) if superuser => (true, "superuser".into()),
        Ok(()) => (true, "granted".into()),
        Err(e) => (false, format!("{:#}", error(e))),
    })
}

/// The two ways to obtain the right to set `session_replication_role`.
pub const REPLICATION_ROLE_HINT: &str = "run as a superuser, or (PostgreSQL 15+) have one run: \
    GRANT SET ON PARAMETER session_replication_role TO <role>";

/// One column of a target table.
#[derive(Debug, Clone, PartialEq)]
pub struct PgColumn {
    pub name: String,
    /// `format_type` text, e.g. `character varying(255)`.
    pub type_sql: String,
    /// The type's name, e.g. `uuid`, `int4`.
    pub type_name: String,
    /// The `pg_catalog` base type (through a domain) whose binary form the import
    /// writes, `enum` for enums, or empty for anything else.
    pub binary_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// `GENERATED ALWAYS AS (...) STORED`: PostgreSQL computes it.
    pub generated: bool,
    /// `a` (ALWAYS) or `d` (BY DEFAULT) identity, else empty.
    pub identity: String,
}

/// A table of the target schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgTable {
    pub name: String,
    pub columns: Vec<PgColumn>,
    /// (column, sequence as `pg_get_serial_sequence` names it) for serial and identity.
    pub sequences: Vec<(String, String)>,
    /// Partitioned tables take no `COPY ... FREEZE` and keep their indexes.
    pub partitioned: bool,
    /// Secondary indexes that back no constraint: (name, `pg_get_indexdef`), which
    /// `--rebuild-indexes` drops before the load and recreates after it.
    pub secondary_indexes: Vec<(String, String)>,
}

/// A foreign key anywhere in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub name: String,
    pub child_schema: String,
    pub child: String,
    pub child_columns: Vec<String>,
    pub parent_schema: String,
    pub parent: String,
    pub parent_columns: Vec<String>,
}

/// What import and verify need to know about the target.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: std::collections::BTreeMap<String, PgTable>,
    pub foreign_keys: Vec<ForeignKey>,
}

/// Tables (ordinary and partitioned), columns, owned sequences and foreign keys.
pub async fn read_catalog(client: &Client, schema: &str) -> Result<Catalog> {
    let ctx = || format!("reading the catalog of schema `{schema}`");
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    t.typname::text, a.attnotnull, a.atthasdef,
                    a.attgenerated::text, a.attidentity::text, c.relkind = 'p',
                    CASE WHEN b.typtype = 'e' THEN 'enum'
                         WHEN b.typtype = 'b' AND b.typnamespace = 'pg_catalog'::regnamespace
                         THEN b.typname::text ELSE '' END
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
             ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let mut cat = Catalog::default();
    for r in rows {
        let table: String = r.get(0);
        let entry = cat.tables.entry(table.clone()).or_insert_with(|| PgTable {
            name: table,
            partitioned: r.get(8),
            ..PgTable::default()
        });
        entry.columns.push(PgColumn {
            name: r.get(1),
            type_sql: r.get(2),
            type_name: r.get(3),
            binary_type: r.get(9),
            not_null: r.get(4),
            has_default: r.get(5),
            generated: r.get::<_, String>(6) == "s",
            identity: r.get(7),
        });
    }
    let seqs = client
        .query(
            "SELECT c.relname::text, a.attname::text, s.seq
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(
                 format('%I.%I', n.nspname, c.relname), a.attname) AS seq) s
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND s.seq IS NOT NULL",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in seqs {
        let table: String = r.get(0);
        if let Some(t) = cat.tables.get_mut(&table) {
            t.sequences.push((r.get(1), r.get(2)));
        }
    }
    let indexes = client
        .query(
            "SELECT c.relname::text, i.relname::text, pg_get_indexdef(i.oid)
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class c ON c.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r' AND NOT x.indisprimary
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in indexes {
        let table: String = r.get(0);
        if let Some(t) = cat.tables.get_mut(&table) {
            t.secondary_indexes.push((r.get(1), r.get(2)));
        }
    }
    let fks = client
        .query(
            "SELECT con.conname::text, cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
             FROM pg_constraint con
             JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
             JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE con.contype = 'f'
             ORDER BY cn.nspname, cc.relname, con.conname",
            &[],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in fks {
        cat.foreign_keys.push(ForeignKey {
            name: r.get(0),
            child_schema: r.get(1),
            child: r.get(2),
            parent_schema: r.get(3),
            parent: r.get(4),
            child_columns: r.get(5),
            parent_columns: r.get(6),
        });
    }
    Ok(cat)
}

/// Does the table hold at least one row?
pub async fn has_rows(client: &Client, schema: &str, table: &str) -> Result<bool> {
    let row = client
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(schema, table)),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("looking for rows in `{schema}`.`{table}`"))?;
    Ok(row.get(0))
}

/// Exact `count(*)`.
pub async fn count_rows(client: &Client, schema: &str, table: &str) -> Result<u64> {
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM {}", qualified(schema, table)),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("counting rows of `{table}` in PostgreSQL"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The chunk size fed to COPY: large enough that per-message overhead vanishes.
pub const COPY_CHUNK: usize = 1 << 20;

/// Run `COPY ... FROM STDIN` fed straight from `path` in large chunks (the CSV is not
/// parsed on this side), and return the row count the server reports. Dropping the sink
/// before `finish` aborts the COPY, so any error here leaves nothing behind.
pub async fn copy_file(
    tx: &tokio_postgres::Transaction<'_>,
    copy_sql: &str,
    path: &std::path::Path,
    mut on_bytes: impl FnMut(u64),
) -> Result<u64> {
    use futures_util::SinkExt;
    use tokio::io::AsyncReadExt;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(error)?;
    futures_util::pin_mut!(sink);
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    loop {
        let mut buf = bytes::BytesMut::with_capacity(COPY_CHUNK);
        while buf.len() < COPY_CHUNK {
            if file
                .read_buf(&mut buf)
                .await
                .with_context(|| format!("reading {}", path.display()))?
                == 0
            {
                break;
            }
        }
        if buf.is_empty() {
            break;
        }
        let n = buf.len() as u64;
        sink.feed(buf.freeze()).await.map_err(error)?;
        on_bytes(n);
    }
    let rows = sink.as_mut().finish().await.map_err(error)?;
    Ok(rows)
}

/// A table file whose CSV the binary converters cannot carry exactly (a value outside
/// their forms, or CSV outside pgconverge's dialect): the import loads that table as CSV
/// instead, in a new transaction.
#[derive(Debug)]
pub struct NotBinary {
    pub file: String,
    pub stop: pgbinary::Stop,
}

impl std::fmt::Display for NotBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.stop)
    }
}

impl std::error::Error for NotBinary {}

/// COPY one CSV file as binary: a blocking thread reads and converts it (on another
/// core than the server's) while this task feeds the chunks to the server. Returns the
/// rows COPY reports; a [`NotBinary`] error (in the chain) when the file must go as CSV.
pub async fn copy_file_binary(
    tx: &tokio_postgres::Transaction<'_>,
    copy_sql: &str,
    path: &std::path::Path,
    types: Vec<pgbinary::BinType>,
    nulls: pgbinary::NullStyle,
    mut on_bytes: impl FnMut(u64),
) -> Result<u64> {
    use futures_util::SinkExt;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(error)?;
    futures_util::pin_mut!(sink);
    let (send, mut chunks) = tokio::sync::mpsc::channel::<(bytes::Bytes, u64)>(4);
    let owned = path.to_owned();
    let worker = tokio::task::spawn_blocking(move || convert_file(&owned, types, nulls, send));
    while let Some((chunk, consumed)) = chunks.recv().await {
        sink.feed(chunk).await.map_err(error)?;
        on_bytes(consumed);
    }
    // Dropping the unfinished sink sends CopyFail, so a conversion error aborts the COPY.
    worker.await.context("the CSV conversion thread failed")??;
    let rows = sink.as_mut().finish().await.map_err(error)?;
    Ok(rows)
}

/// The conversion thread: file -> binary COPY chunks of about COPY_CHUNK bytes, each
/// with the number of file bytes it consumed. Stops quietly when the receiver is gone.
fn convert_file(
    path: &std::path::Path,
    types: Vec<pgbinary::BinType>,
    nulls: pgbinary::NullStyle,
    send: tokio::sync::mpsc::Sender<(bytes::Bytes, u64)>,
) -> Result<()> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut conv = pgbinary::Converter::new(types, nulls);
    let mut input: Vec<u8> = Vec::with_capacity(COPY_CHUNK * 2);
    let mut out: Vec<u8> = Vec::with_capacity(COPY_CHUNK * 2);
    out.extend_from_slice(pgbinary::HEADER);
    let mut consumed = 0u64;
    let mut eof = false;
    while !eof {
        // Read at least as much as is held: a record longer than a chunk (a big blob) is
        // then rescanned a logarithmic number of times, not once per chunk.
        let start = input.len();
        input.resize(start + COPY_CHUNK.max(start), 0);
        let n = file
            .read(&mut input[start..])
            .with_context(|| format!("reading {}", path.display()))?;
        input.truncate(start + n);
        eof = n == 0;
        let used = conv
            .convert(&input, eof, &mut out)
            .map_err(|stop| NotBinary {
                file: path
                    .file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                stop,
            })?;
        input.drain(..used);
        consumed += used as u64;
        if eof {
            out.extend_from_slice(pgbinary::TRAILER);
        }
        if out.len() >= COPY_CHUNK || eof {
            let chunk = bytes::Bytes::from(std::mem::replace(
                &mut out,
                Vec::with_capacity(COPY_CHUNK * 2),
            ));
            if send.blocking_send((chunk, consumed)).is_err() {
                return Ok(());
            }
            consumed = 0;
        }
    }
    Ok(())
}

/// Rows of the child with all key columns set and no matching parent row (MATCH SIMPLE:
/// a NULL in any key column exempts the row, as the constraint itself does).
pub async fn count_orphans(client: &Client, fk: &ForeignKey) -> Result<u64> {
    let set: Vec<String> = fk
        .child_columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", quote_ident(c)))
        .collect();
    let join: Vec<String> = fk
        .child_columns
        .iter()
        .zip(&fk.parent_columns)
        .map(|(c, p)| format!("p.{} = c.{}", quote_ident(p), quote_ident(c)))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
        qualified(&fk.child_schema, &fk.child),
        set.join(" AND "),
        qualified(&fk.parent_schema, &fk.parent),
        join.join(" AND ")
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(error)
        .with_context(|| format!("counting orphans of foreign key `{}`", fk.name))?;
    Ok(row.get::<_, i64>(0) as u64)
}
