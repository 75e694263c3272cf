//! Every conversation with PostgreSQL: connecting (with errors that say what failed and
//! how to fix it), catalog reads, the COPY wire, counts. Errors are formatted from
//! `DbError` (code, message, detail, hint, where) because the driver's Display alone
//! loses them. What is fed to a COPY (files, conversion) is the importer's business.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio_postgres::{Client, NoTls};

use crate::config::{ServerConfig, SslMode};
use crate::db::catalog::{Catalog, ForeignKey, PgColumn, PgTable, SequenceUse};
use crate::db::sql::pg::qualified;
use crate::db::tls;
use crate::hint::with_hint;

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
        None if e.is_closed() => anyhow!(
            "the connection to PostgreSQL was closed: the server ended the session (terminated \
             by an administrator, a restart or a crash) or the network failed"
        ),
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
    pg.ssl_mode(match cfg.tls.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    // Errors of the connection task surface on the next client call.
    let client = match tls::client_config(&cfg.tls)? {
        None => {
            let (client, conn) = pg.connect(NoTls).await.map_err(|e| explain(e, cfg, db))?;
            tokio::spawn(conn);
            client
        }
        Some(tls) => {
            let (client, conn) = pg
                .connect(tls::PgTls(tls))
                .await
                .map_err(|e| explain(e, cfg, db))?;
            tokio::spawn(conn);
            client
        }
    };
    Ok(client)
}

/// Ask the server to cancel whatever `client`'s session is running (a new connection
/// carries the request, as libpq's PQcancel does).
pub async fn cancel(client: &Client, cfg: &ServerConfig) -> Result<()> {
    let token = client.cancel_token();
    match tls::client_config(&cfg.tls)? {
        None => token.cancel_query(NoTls).await,
        Some(t) => token.cancel_query(tls::PgTls(t)).await,
    }
    .map_err(error)
    .context("cancelling the import's running statement")
}

fn explain(e: tokio_postgres::Error, cfg: &ServerConfig, db: &str) -> anyhow::Error {
    let place = format!("PostgreSQL at {}", cfg.display());
    if let Some(dbe) = e.as_db_error() {
        let code = dbe.code().code();
        let msg = dbe.message().to_string();
        return match code {
            "28000" if msg.contains("no encryption") => with_hint(
                anyhow!("{place} refused the login: {msg}"),
                "the server accepts this login over TLS only: set POSTGRES_SSLMODE to require \
                 (or verify-full with POSTGRES_SSLROOTCERT) instead of disable",
            ),
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
    let cause = root_cause(&e);
    let tls_mode = cfg.tls.mode.name();
    if cause.contains("does not support TLS") {
        return with_hint(
            anyhow!(
                "{place} does not offer TLS, and the TLS mode is {tls_mode} (POSTGRES_SSLMODE, or sslmode= in the URL)"
            ),
            "enable ssl on the server, or set POSTGRES_SSLMODE=prefer (or disable; sslmode= in the URL) for a trusted network",
        );
    }
    if cause.contains("certificate") || cause.contains("Certificate") {
        return with_hint(
            anyhow!(
                "{place}: the server's TLS certificate was not accepted ({cause}; the TLS mode is {tls_mode}: POSTGRES_SSLMODE, or sslmode= in the URL)"
            ),
            "give the certificate authority that signed it with POSTGRES_SSLROOTCERT (sslrootcert= in the URL), \
             or use verify-ca when the certificate does not name this host",
        );
    }
    with_hint(
        anyhow!("cannot reach {place}: {cause}"),
        "is the server running? scripts/dev-services.sh starts a local one; check POSTGRES_HOST and POSTGRES_PORT",
    )
}

/// The innermost message of an error's chain (the operating system's or the TLS
/// library's own words), without the layers that repeat it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
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

/// The TLS version this session uses, or None when it is not encrypted.
pub async fn tls_in_use(client: &Client) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the session's TLS state")?;
    Ok(row.map(|r| r.get(0)))
}

/// The cluster's `system_identifier`, when this role may read `pg_control_system()`.
pub async fn system_identifier(client: &Client) -> Result<Option<String>> {
    let allowed: bool = client
        .query_one(
            "SELECT has_function_privilege('pg_control_system()', 'EXECUTE')",
            &[],
        )
        .await
        .map_err(error)?
        .get(0);
    if !allowed {
        return Ok(None);
    }
    let row = client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the server's system identifier")?;
    Ok(Some(row.get(0)))
}

/// `txid_status(xid)`: `committed`, `aborted`, `in progress`, or None when too old.
pub async fn txid_status(client: &Client, xid: i64) -> Result<Option<String>> {
    let row = client
        .query_one("SELECT txid_status($1)", &[&xid])
        .await
        .map_err(error)
        .context("asking what became of the transaction")?;
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

/// Tables (ordinary and partitioned), columns, owned sequences and foreign keys.
pub async fn read_catalog(client: &Client, schema: &str) -> Result<Catalog> {
    let ctx = || format!("reading the catalog of schema `{schema}`");
    // Per column: its type, and the base type behind a domain with its category, the
    // element type of an array (a base type or an enum) and its OID, and enum labels.
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    t.typname::text, a.attnotnull, a.atthasdef,
                    a.attgenerated::text, a.attidentity::text, c.relkind = 'p',
                    CASE WHEN b.typtype = 'e' THEN 'enum'
                         WHEN b.typtype = 'b' AND b.typnamespace = 'pg_catalog'::regnamespace
                         THEN b.typname::text ELSE '' END,
                    b.typcategory::text,
                    CASE WHEN e.typtype = 'e' THEN 'enum'
                         WHEN e.typtype = 'b' AND e.typnamespace = 'pg_catalog'::regnamespace
                         THEN e.typname::text END,
                    COALESCE(e.oid, 0)::int8,
                    ARRAY(SELECT l.enumlabel::text FROM pg_enum l
                          WHERE l.enumtypid = CASE WHEN b.typtype = 'e' THEN b.oid ELSE e.oid END
                          ORDER BY l.enumsortorder),
                    pg_has_role(c.relowner, 'USAGE')
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
             LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
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
            owned: r.get(14),
            ..PgTable::default()
        });
        entry.columns.push(PgColumn {
            name: r.get(1),
            type_sql: r.get(2),
            type_name: r.get(3),
            binary_type: r.get(9),
            category: r.get::<_, String>(10).chars().next().unwrap_or('X'),
            element: r.get(11),
            element_oid: r.get::<_, i64>(12) as u32,
            enum_labels: r.get(13),
            not_null: r.get(4),
            has_default: r.get(5),
            generated: r.get::<_, String>(6) == "s",
            identity: r.get(7),
        });
    }
    // Row triggers that run before an INSERT (not the system's own): with `triggers =
    // "fire"` they may fill a NOT NULL column the export has no values for.
    let triggers = client
        .query(
            "SELECT c.relname::text, t.tgname::text
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgenabled <> 'D'
               AND (t.tgtype & 1) = 1 AND (t.tgtype & 2) = 2 AND (t.tgtype & 4) = 4
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in triggers {
        if let Some(t) = cat.tables.get_mut(&r.get::<_, String>(0)) {
            t.insert_triggers.push(r.get(1));
        }
    }
    // CHECK constraints, to list every row that breaks one when a load fails.
    let checks = client
        .query(
            "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND k.contype = 'c' AND NOT c.relispartition
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in checks {
        if let Some(t) = cat.tables.get_mut(&r.get::<_, String>(0)) {
            t.checks.push((r.get(1), r.get(2)));
        }
    }
    // Every sequence a column's default calls (owned by the column or not: pg_dump'd
    // schemas such as Pagila's have unowned ones), and identity columns' sequences.
    let seqs = client
        .query(
            "SELECT c.relname::text, a.attname::text, format('%I.%I', sn.nspname, s.relname),
                    pg_has_role(s.relowner, 'USAGE')
             FROM pg_attrdef ad
             JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                             AND d.refclassid = 'pg_class'::regclass
             JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             JOIN pg_class c ON c.oid = ad.adrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE n.nspname = $1
             UNION
             SELECT c.relname::text, a.attname::text, format('%I.%I', sn.nspname, s.relname),
                    pg_has_role(s.relowner, 'USAGE')
             FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             JOIN pg_class c ON c.oid = d.refobjid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
             WHERE n.nspname = $1 AND d.deptype = 'i' AND a.attidentity <> ''
             ORDER BY 3, 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in seqs {
        cat.sequences.push(SequenceUse {
            table: r.get(0),
            column: r.get(1),
            sequence: r.get(2),
            owned: r.get(3),
        });
    }
    let partitions = client
        .query(
            "SELECT p.relname::text, c.relname::text || ' ' || pg_get_expr(c.relpartbound, c.oid)
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p'
             JOIN pg_namespace n ON n.oid = p.relnamespace
             WHERE n.nspname = $1
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in partitions {
        let table: String = r.get(0);
        if let Some(t) = cat.tables.get_mut(&table) {
            t.partitions.push(r.get(1));
        }
    }
    let keys = client
        .query(
            "SELECT c.relname::text, a.attname::text
             FROM pg_index x
             JOIN pg_class c ON c.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE n.nspname = $1 AND x.indisprimary
             ORDER BY 1, k.i",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in keys {
        let table: String = r.get(0);
        if let Some(t) = cat.tables.get_mut(&table) {
            t.primary_key.push(r.get(1));
        }
    }
    crate::db::pgindex::read_indexes(client, schema, &mut cat).await?;
    let fks = client
        .query(
            "SELECT con.conname::text, cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                    con.condeferrable
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
            deferrable: r.get(7),
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

/// Where a sequence stands: `(last_value, is_called)`, as `setval` takes them back.
pub type SequencePositions = Vec<(String, i64, bool)>;

/// Every sequence of the database this role may read, with its position. `setval` and
/// `nextval` are not undone by ROLLBACK, so an import that rolls back (or rehearses)
/// puts them back from this.
pub async fn sequence_positions(client: &Client) -> Result<SequencePositions> {
    let names: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_temp%' \
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') END \
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(error)
        .context("listing the target's sequences")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    positions_of(client, &names)
        .await
        .context("reading the target's sequence positions")
}

/// The position of each named sequence (`schema.name`, quoted as needed), in one query
/// per 200.
pub async fn positions_of(client: &Client, names: &[String]) -> Result<SequencePositions> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(200) {
        let sql = chunk
            .iter()
            .map(|n| {
                format!(
                    "SELECT {}::text, last_value, is_called FROM {n}",
                    crate::db::sql::pg::literal(n)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for r in client.query(&sql, &[]).await.map_err(error)? {
            out.push((r.get(0), r.get(1), r.get(2)));
        }
    }
    Ok(out)
}

/// Put back every sequence that moved since `before`; returns how many moved. A cancel
/// request sent for the statement that ran before (an interruption cancels it) may reach
/// the server late and cancel one of these statements instead: they are then run once
/// more, since a cancel request cancels at most one statement.
pub async fn restore_sequences(client: &Client, before: &SequencePositions) -> Result<usize> {
    match put_back(client, before).await {
        Err(e) if is_canceled(&e) => put_back(client, before).await,
        other => other,
    }
}

/// The SQLSTATE of a statement cancelled on request (or by statement_timeout).
const QUERY_CANCELED: &str = "57014";

/// Was this error (as `error` words it) a cancelled statement?
fn is_canceled(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains(&format!("({QUERY_CANCELED})"))
}

async fn put_back(client: &Client, before: &SequencePositions) -> Result<usize> {
    let now = sequence_positions(client).await?;
    let mut moved = 0;
    for (name, value, called) in before {
        if now
            .iter()
            .any(|(n, v, c)| n == name && (v, c) == (value, called))
        {
            continue;
        }
        client
            .query_one(
                &format!(
                    "SELECT setval({}::regclass, $1, $2)",
                    crate::db::sql::pg::literal(name)
                ),
                &[value, called],
            )
            .await
            .map_err(error)
            .with_context(|| format!("putting sequence {name} back at {value}"))?;
        moved += 1;
    }
    Ok(moved)
}

/// Exact `count(*)` (on a connection or inside a transaction).
pub async fn count_rows(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<u64> {
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

/// A value as the server sent it in binary, whatever its type: what binary COPY takes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawValue(pub Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawValue {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(raw.to_vec()))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// The mapping's `[import] require` statements, each run in a READ ONLY transaction of
/// its own before anything is written: each must return one boolean. Returns, per
/// statement, true, false, or what went wrong.
pub async fn requirements(
    client: &mut Client,
    schema: &str,
    sqls: &[String],
) -> Vec<Result<bool, String>> {
    let mut out = Vec::new();
    for sql in sqls {
        let answer = async {
            let tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(|e| format!("{:#}", error(e)))?;
            if let Some(path) = crate::db::sql::pg::search_path(schema) {
                tx.batch_execute(&path)
                    .await
                    .map_err(|e| format!("{:#}", error(e)))?;
            }
            let rows = tx
                .query(sql.as_str(), &[])
                .await
                .map_err(|e| format!("{:#}", error(e)))?;
            let _ = tx.rollback().await;
            match rows.as_slice() {
                [row] if row.len() == 1 => row
                    .try_get::<_, Option<bool>>(0)
                    .map(|b| b.unwrap_or(false))
                    .map_err(|_| "it does not return a boolean".to_string()),
                _ => Err(format!(
                    "it returned {} rows; it must return one boolean",
                    rows.len()
                )),
            }
        }
        .await;
        out.push(answer);
    }
    out
}

/// Whether the probe view calls anything VOLATILE: the function oids of its parse tree
/// (`pg_rewrite.ev_action`: `:funcid`, `:opfuncid`, `:aggfnoid`, `:winfnoid`, and each
/// `:opno`'s function), looked up in `pg_proc`. An oid that names no function counts as
/// volatile (when in doubt, per row).
const VOLATILE_PROBE: &str = "
    WITH called AS (
      SELECT m[1] AS kind, m[2]::oid AS oid
      FROM pg_rewrite r,
           regexp_matches(r.ev_action::text, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) ([0-9]+)', 'g') m
      WHERE r.ev_class = 'pgconverge_set_probe'::regclass
    ), funcs AS (
      SELECT CASE WHEN c.kind = 'opno' THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = c.oid)
                  ELSE c.oid END AS oid
      FROM called c
      WHERE c.oid <> 0
    )
    SELECT EXISTS (
      SELECT 1 FROM funcs f LEFT JOIN pg_proc p ON p.oid = f.oid
      WHERE f.oid IS NULL OR p.oid IS NULL OR p.provolatile = 'v')";

/// Ask the target about each `set` expression, in one transaction that is rolled back
/// (nothing is kept): one that references no column and calls nothing volatile is
/// evaluated once; any other is checked against its staging shape (the INSERT ...
/// SELECT that will move the rows is prepared), so a type error or a typo is reported
/// before any write.
pub async fn probe_sets(
    client: &mut Client,
    schema: &str,
    questions: &[crate::import::compute::Question],
) -> Result<Vec<crate::import::compute::Answer>> {
    use crate::import::compute::{self, Answer, Kind};
    let mut out = Vec::new();
    if questions.is_empty() {
        return Ok(out);
    }
    let tx = client
        .transaction()
        .await
        .map_err(error)
        .context("checking the mapping's set expressions")?;
    if let Some(path) = crate::db::sql::pg::search_path(schema) {
        tx.batch_execute(&path).await.map_err(error)?;
    }
    // `key_of` reads the map the import creates: here too (rolled back with the probe).
    if questions
        .iter()
        .any(|q| q.expr.contains(crate::mapping::keys::FUNCTION))
    {
        tx.batch_execute(crate::import::plan::keymap::SETUP)
            .await
            .map_err(error)
            .context("creating pgconverge.key_of to check the set expressions that call it")?;
    }
    for q in questions {
        tx.batch_execute("SAVEPOINT pgconverge_probe")
            .await
            .map_err(error)?;
        let view = format!(
            "CREATE TEMP VIEW pgconverge_set_probe AS SELECT {} AS v",
            compute::cast(&q.expr, &q.type_sql)
        );
        let kind = match tx.batch_execute(&view).await {
            Ok(()) => {
                // Anything volatile it calls makes it per row: gen_random_uuid() must
                // differ from row to row. What it calls is read from the view's own
                // parse tree (pg_depend has no row for a built-in function): every
                // function, operator, aggregate and window function node.
                let volatile: bool = tx
                    .query_one(VOLATILE_PROBE, &[])
                    .await
                    .map_err(error)?
                    .get(0);
                Ok(if volatile { Kind::PerRow } else { Kind::Once })
            }
            // It reads a column of the row.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN) => {
                Ok(Kind::PerRow)
            }
            Err(e) => Err(format!("{:#}", error(e))),
        };
        tx.batch_execute("ROLLBACK TO SAVEPOINT pgconverge_probe")
            .await
            .map_err(error)?;
        let kind = match kind {
            Ok(Kind::PerRow) => {
                let stage = "pgconverge_stage_probe";
                let create = compute::stage_create_sql(stage, schema, &q.table, &q.stage);
                let kept: Vec<String> = q
                    .stage
                    .iter()
                    .filter(|(_, replaced)| !replaced)
                    .map(|(c, _)| c.clone())
                    .collect();
                let insert = compute::insert_sql(
                    stage,
                    schema,
                    &q.table,
                    &kept,
                    &[(q.column.clone(), q.expr.clone(), q.type_sql.clone())],
                    false,
                );
                let checked = async {
                    tx.batch_execute(&create).await?;
                    tx.prepare(&insert).await.map(|_| ())
                }
                .await;
                tx.batch_execute("ROLLBACK TO SAVEPOINT pgconverge_probe")
                    .await
                    .map_err(error)?;
                match checked {
                    Ok(()) => Ok(Kind::PerRow),
                    Err(e) => Err(format!("{:#}", error(e))),
                }
            }
            other => other,
        };
        out.push(Answer {
            dataset: q.dataset.clone(),
            column: q.column.clone(),
            kind,
        });
    }
    tx.rollback().await.map_err(error)?;
    Ok(out)
}

/// What a COPY's feeder sends: data (with the file bytes it stands for, for progress),
/// then `End` once everything was sent. A feeder that stops without `End` (an error on
/// its side) makes `copy_in` abort the COPY.
pub enum Chunk {
    Data(bytes::Bytes, u64),
    End,
}

/// The feeder stopped before `End`; the caller knows why.
#[derive(Debug)]
pub struct FeedStopped;

impl std::fmt::Display for FeedStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the COPY input stopped early")
    }
}

impl std::error::Error for FeedStopped {}

/// The session settings under which verify reads a target's values as text (those of
/// a PostgreSQL source's readers).
pub async fn verify_session(client: &Client, table: &str) -> Result<()> {
    client
        .batch_execute(
            "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET extra_float_digits = 3; \
             SET bytea_output = hex; SET IntervalStyle = postgres",
        )
        .await
        .map_err(error)
        .with_context(|| format!("reading `{table}` from the target for verify"))
}

/// Stream a SELECT (`verify::deep::target_select`) out of the target with `COPY ... TO STDOUT`
/// (text format, in the session's ISO/UTC/hex settings), one row of fields at a time.
pub async fn copy_out_rows(
    client: &Client,
    table: &str,
    select: &str,
    on_row: impl FnMut(&[Option<&[u8]>]) -> Result<()>,
) -> Result<()> {
    let context = || format!("reading `{table}` from the target for verify");
    verify_session(client, table).await?;
    copy_text_rows(
        client,
        &format!("COPY ({select}) TO STDOUT"),
        &context,
        on_row,
    )
    .await
}

/// Run a `COPY ... TO STDOUT` (text format) and give each row's fields to `on_row`
/// (None for NULL), one row at a time. `context` names the read in the server's and
/// the reader's errors; `on_row`'s own errors pass as they are.
pub async fn copy_text_rows(
    client: &Client,
    sql: &str,
    context: &(dyn Fn() -> String + Sync),
    mut on_row: impl FnMut(&[Option<&[u8]>]) -> Result<()>,
) -> Result<()> {
    use futures_util::StreamExt;
    let stream = client
        .copy_out(sql)
        .await
        .map_err(error)
        .with_context(context)?;
    futures_util::pin_mut!(stream);
    let mut reader = crate::codec::pgtext::Reader::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(error).with_context(context)?;
        reader.feed(&chunk, &mut on_row)?;
    }
    reader.finish().with_context(context)
}

/// Run `COPY ... FROM STDIN` with the data `chunks` deliver and return the row count the
/// server reports. Unless the feeder says `End`, the sink is dropped unfinished, which
/// sends CopyFail: nothing of that COPY remains (error [`FeedStopped`] in the chain).
pub async fn copy_in(
    tx: &tokio_postgres::Transaction<'_>,
    copy_sql: &str,
    mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
    mut on_bytes: impl FnMut(u64),
) -> Result<u64> {
    use futures_util::SinkExt;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(error)?;
    futures_util::pin_mut!(sink);
    loop {
        match chunks.recv().await {
            Some(Chunk::Data(data, consumed)) => {
                sink.feed(data).await.map_err(error)?;
                on_bytes(consumed);
            }
            Some(Chunk::End) => break,
            None => bail!(FeedStopped),
        }
    }
    let rows = sink.as_mut().finish().await.map_err(error)?;
    Ok(rows)
}

/// Orphan rows of a foreign key (see `ForeignKey::orphan_count_sql`).
pub async fn count_orphans(client: &Client, fk: &ForeignKey) -> Result<u64> {
    let row = client
        .query_one(&fk.orphan_count_sql(), &[])
        .await
        .map_err(error)
        .with_context(|| format!("counting orphans of foreign key `{}`", fk.name))?;
    Ok(row.get::<_, i64>(0) as u64)
}
