//! `pgconverge check [PROFILE|DB ...]`: can we reach both servers? Versions, TLS, every
//! connection setting with where it came from (printed even when a login fails, so the
//! layer that supplied a wrong value shows), whether the PostgreSQL role may set
//! `session_replication_role` (which import needs), and, for the profiles or databases
//! named, whether source and target databases exist.

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::cmd::{Ctx, Outcome};
use crate::config::{self, Engine, Origin, ServerConfig, Setting};
use crate::db::{binlog_status, docker, mysql, pglog, postgres, state};
use crate::hint::{self, with_hint};
use crate::import::plan::REPLICATION_ROLE_HINT;
use crate::mapping::Mapping;
use crate::report::Table;

#[derive(Serialize)]
struct Server {
    kind: &'static str,
    address: String,
    configured_from: Origin,
    container: Option<String>,
    /// How the address was found through Docker (or why Docker was not asked).
    resolved_via: Option<String>,
    version: Option<String>,
    /// The TLS version of the session, when encrypted.
    tls: Option<String>,
    settings: Vec<Setting>,
    /// Why the server could not be used.
    error: Option<String>,
}

#[derive(Serialize)]
struct Databases {
    profile: String,
    source_database: String,
    source_exists: bool,
    target_database: String,
    target_exists: bool,
}

#[derive(Serialize)]
struct Report {
    /// `mysql` or `postgresql`.
    source_engine: &'static str,
    servers: Vec<Server>,
    databases: Vec<Databases>,
    replication_role_allowed: Option<bool>,
    replication_role_detail: Option<String>,
    /// A MySQL source: what a delta chain (`export --delta-base`) still needs, each with
    /// the setting that fixes it (empty: ready).
    delta_prerequisites: Option<Vec<Missing>>,
    /// Where each named target's delta chain stands (`pgconverge.state`).
    delta_chains: Vec<crate::db::state::State>,
    /// A PostgreSQL source: pgconverge's logical replication slots (each retains WAL).
    replication_slots: Vec<SlotReport>,
}

#[derive(Serialize)]
struct SlotReport {
    name: String,
    database: String,
    active: bool,
    wal_status: String,
    retained_bytes: i64,
    /// Hours since the chain's base created it (from its name).
    age_hours: Option<f64>,
    /// Past 1 GiB retained or 24 hours old.
    warn: bool,
}

/// A slot past either is worth a look: it keeps the source's WAL.
const SLOT_WARN_BYTES: i64 = 1 << 30;
const SLOT_WARN_HOURS: f64 = 24.0;

#[derive(Serialize)]
struct Missing {
    missing: String,
    fix: String,
}

pub async fn run(ctx: &Ctx, args: CheckArgs) -> Result<Outcome> {
    let (engine, mut my) = config::source(args.source_url.as_deref(), &args.mysql, &ctx.layers)?;
    let mut pg = config::postgres(&args.postgres, &ctx.layers)?;
    let mut profiles: Vec<Mapping> = args
        .sources
        .iter()
        .map(|n| Mapping::resolve(n, None, &ctx.layers))
        .collect::<Result<_>>()?;
    if let (Some(t), [p]) = (&args.target_db, profiles.as_mut_slice()) {
        p.target_db = t.clone();
    }
    // A PostgreSQL source URL's database is the one read (as `export` reads it): check
    // and label that one, and say when it is not the database the name stands for.
    if let (Engine::Postgresql, Some(u)) = (engine, my.database.clone()) {
        for p in profiles.iter_mut() {
            if let Some(note) = p.url_database_mismatch(&u) {
                ctx.progress().warn(note);
            }
            p.source_db = u.clone();
        }
    }
    let mut failures: Vec<anyhow::Error> = Vec::new();
    // A MySQL source URL naming another database than the one checked: `export` would
    // refuse it, so `check` says so in the same words.
    if engine == Engine::Mysql {
        for p in &profiles {
            if let Err(e) = my.database_or(Some(&p.source_db), &p.source_db, "the source database")
            {
                failures.push(e.context(format!("checking `{}`", p.name)));
            }
        }
    }
    let mut report = Report {
        source_engine: engine.name(),
        servers: Vec::new(),
        databases: Vec::new(),
        replication_role_allowed: None,
        replication_role_detail: None,
        delta_prerequisites: None,
        delta_chains: Vec::new(),
        replication_slots: Vec::new(),
    };
    let mut slots = Vec::new();
    let mut log_settings = None;
    let mut log_missing: Option<Vec<(String, String)>> = None;
    let mut source_exists = Vec::new();
    let source_probe = async {
        match engine {
            Engine::Mysql => {
                docker::apply(&mut my, 3306, &ctx.layers).await?;
                let mut conn = mysql::connect(&my, None).await?;
                let version = mysql::server_version(&mut conn).await?;
                let tls = mysql::tls_in_use(&mut conn).await?;
                for p in &profiles {
                    source_exists.push(mysql::database_exists(&mut conn, &p.source_db).await?);
                }
                log_settings = Some(binlog_status::settings(&mut conn).await?);
                let _ = conn.disconnect().await;
                Ok::<_, anyhow::Error>((version, tls))
            }
            Engine::Postgresql => {
                let client = postgres::connect(&my, "postgres").await?;
                let version = postgres::server_version(&client).await?;
                let tls = postgres::tls_in_use(&client).await?;
                for p in &profiles {
                    source_exists.push(postgres::database_exists(&client, &p.source_db).await?);
                }
                let logical = pglog::settings(&client).await?;
                log_missing = Some(logical.missing());
                slots = pglog::slots(&client).await?;
                Ok((version, tls))
            }
        }
    }
    .await;
    let source_kind = match engine {
        Engine::Mysql => "mysql",
        Engine::Postgresql => "source (postgresql)",
    };
    report
        .servers
        .push(server(source_kind, &my, source_probe, &mut failures));

    let mut target_exists = Vec::new();
    let mut role = None;
    let mut chains = Vec::new();
    let pg_probe = async {
        docker::apply(&mut pg, 5432, &ctx.layers).await?;
        let mut client = postgres::connect(&pg, "postgres").await?;
        let version = postgres::server_version(&client).await?;
        let tls = postgres::tls_in_use(&client).await?;
        for p in &profiles {
            target_exists.push(postgres::database_exists(&client, &p.target_db).await?);
        }
        role = Some(postgres::replication_role_check(&mut client).await?);
        for (p, exists) in profiles.iter().zip(&target_exists) {
            if *exists {
                let target = postgres::connect(&pg, &p.target_db).await?;
                if let Some(s) = state::read(&target, &p.target_schema(None)).await? {
                    chains.push(s);
                }
            }
        }
        Ok::<_, anyhow::Error>((version, tls))
    }
    .await;
    report
        .servers
        .push(server("postgres", &pg, pg_probe, &mut failures));

    report.delta_prerequisites = log_settings.map(|s| s.missing()).or(log_missing).map(|m| {
        m.into_iter()
            .map(|(missing, fix)| Missing { missing, fix })
            .collect()
    });
    let now = chrono::Utc::now();
    report.replication_slots = slots
        .into_iter()
        .map(|s| {
            let age_hours =
                pglog::slot_created(&s.name).map(|t| (now - t).num_seconds() as f64 / 3600.0);
            SlotReport {
                warn: s.retained_bytes > SLOT_WARN_BYTES
                    || age_hours.is_some_and(|h| h > SLOT_WARN_HOURS),
                name: s.name,
                database: s.database,
                active: s.active,
                wal_status: s.wal_status,
                retained_bytes: s.retained_bytes,
                age_hours,
            }
        })
        .collect();
    report.delta_chains = chains;
    if let Some((allowed, detail)) = role {
        if !allowed {
            failures.push(with_hint(
                anyhow!(
                    "PostgreSQL role `{}` may not SET session_replication_role: {detail}",
                    pg.user
                ),
                REPLICATION_ROLE_HINT,
            ));
        }
        report.replication_role_allowed = Some(allowed);
        report.replication_role_detail = Some(detail);
    }
    if source_exists.len() == profiles.len() && target_exists.len() == profiles.len() {
        for ((p, s), t) in profiles.iter().zip(source_exists).zip(target_exists) {
            if !s {
                failures.push(with_hint(
                    anyhow!(
                        "{} at {}: source database `{}` does not exist",
                        match engine {
                            Engine::Mysql => "MySQL",
                            Engine::Postgresql => "PostgreSQL",
                        },
                        my.display(),
                        p.source_db
                    ),
                    mysql::UNKNOWN_DATABASE_HINT,
                ));
            }
            if !t {
                failures.push(with_hint(
                    anyhow!(
                        "PostgreSQL at {}: target database `{}` does not exist",
                        pg.display(),
                        p.target_db
                    ),
                    postgres::MISSING_DATABASE_HINT,
                ));
            }
            report.databases.push(Databases {
                profile: p.name.clone(),
                source_database: p.source_db.clone(),
                source_exists: s,
                target_database: p.target_db.clone(),
                target_exists: t,
            });
        }
    }

    if args.json {
        super::print_json(&report)?;
    } else {
        crate::out::print(render(&report, profiles.is_empty()));
    }
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(Outcome::Success),
    }
}

/// One server's line of the report from its probe.
fn server(
    kind: &'static str,
    cfg: &ServerConfig,
    probe: Result<(String, Option<String>)>,
    failures: &mut Vec<anyhow::Error>,
) -> Server {
    let (version, tls, error) = match probe {
        Ok((v, t)) => (Some(v), t, None),
        Err(e) => {
            let line = hint::render(&e)
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            failures.push(e);
            (None, None, Some(line))
        }
    };
    Server {
        kind,
        address: cfg.display(),
        configured_from: cfg.origin,
        container: cfg.container.clone(),
        resolved_via: cfg.resolved_via.clone(),
        version,
        tls,
        settings: cfg.settings.clone(),
        error,
    }
}

fn render(r: &Report, no_names: bool) -> String {
    let mut servers = Table::new(["server", "address", "configured from", "version", "tls"]);
    for s in &r.servers {
        let from = match (&s.resolved_via, &s.container) {
            (Some(via), _) => format!("docker: {via}"),
            (None, Some(c)) => format!("{} (container {c})", s.configured_from),
            (None, None) => s.configured_from.to_string(),
        };
        servers.row([
            s.kind.to_string(),
            s.address.clone(),
            from,
            s.version.clone().unwrap_or_else(|| "FAILED".into()),
            s.tls.clone().unwrap_or_else(|| "off".into()),
        ]);
    }
    let mut settings = Table::new(["server", "setting", "value", "from"]);
    for s in &r.servers {
        for x in &s.settings {
            settings.row([s.kind, x.name, &x.value, &x.from.to_string()]);
        }
    }
    let mut out = format!("{}\n{}", servers.render(), settings.render());
    for s in &r.servers {
        if let Some(e) = &s.error {
            out.push_str(&format!("{}: {e}\n", s.kind));
        }
    }
    if !r.databases.is_empty() {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let source = format!("source ({})", r.source_engine);
        let mut dbs = Table::new([
            "profile or database",
            source.as_str(),
            "exists",
            "target (postgres)",
            "exists",
        ]);
        for d in &r.databases {
            dbs.row([
                d.profile.clone(),
                d.source_database.clone(),
                yes_no(d.source_exists),
                d.target_database.clone(),
                yes_no(d.target_exists),
            ]);
        }
        out.push_str(&format!("\n{}", dbs.render()));
    } else if no_names {
        out.push_str(
            "\ndatabases: not checked; name profiles or databases, e.g. `pgconverge check alkemio kratos`\n",
        );
    }
    if let (Some(allowed), Some(detail)) = (r.replication_role_allowed, &r.replication_role_detail)
    {
        out.push_str(&format!(
            "session_replication_role: {} ({detail})\n",
            if allowed { "allowed" } else { "NOT allowed" }
        ));
    }
    match &r.delta_prerequisites {
        Some(missing) if missing.is_empty() && r.source_engine == "postgresql" => out.push_str(
            "delta chains (export --delta-base): ready (wal_level=logical, a free replication \
             slot, REPLICATION); each table needs a replica identity that carries its key\n",
        ),
        Some(missing) if missing.is_empty() => out.push_str(
            "delta chains (export --delta-base): ready (binary log ON, ROW, FULL row image, \
             replication privileges); a session can still override binlog_row_image, which a \
             delta then refuses\n",
        ),
        Some(missing) => {
            out.push_str("delta chains (export --delta-base): not possible yet:\n");
            for m in missing {
                out.push_str(&format!("  - {}: {}\n", m.missing, m.fix));
            }
        }
        None => {}
    }
    for s in &r.replication_slots {
        out.push_str(&format!(
            "{}replication slot `{}` (database `{}`): {}, retains {}{}{}; `pgconverge delta-end \
             <TARGET> --slot {} --source-url <URL>` drops it\n",
            if s.warn { "warning: " } else { "" },
            s.name,
            s.database,
            if s.active { "in use" } else { "idle" },
            crate::progress::human_bytes(s.retained_bytes.max(0) as u64),
            s.age_hours
                .map(|h| format!(" of WAL, created {h:.1} h ago"))
                .unwrap_or_else(|| " of WAL".into()),
            if s.wal_status == "lost" {
                ", its WAL is LOST (the chain cannot go on)"
            } else {
                ""
            },
            s.name
        ));
    }
    for c in &r.delta_chains {
        let slot = serde_json::from_str::<crate::db::position::LogPosition>(&c.position)
            .ok()
            .and_then(|p| p.slot)
            .map(|s| format!(" (with --source-url, also drops the source's slot `{s}`)"))
            .unwrap_or_default();
        out.push_str(&format!(
            "delta chain of schema `{}`: at {} ({}, applied {}); `pgconverge delta-end` ends it{slot}\n",
            c.target_schema, c.export_id, c.kind, c.applied_at
        ));
    }
    out
}
