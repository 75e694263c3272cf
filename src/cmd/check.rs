//! `pgconverge check`: can we reach both servers? Versions, where the connection settings
//! came from, whether source and target databases exist, and whether the PostgreSQL role
//! may set `session_replication_role` (which import needs).

use anyhow::Result;
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::cmd::{Ctx, Outcome};
use crate::config::Origin;
use crate::db::{mysql, postgres};
use crate::hint::with_hint;
use crate::import::plan::REPLICATION_ROLE_HINT;
use crate::mapping::Profile;
use crate::report::Table;

#[derive(Serialize)]
struct Server {
    kind: &'static str,
    address: String,
    configured_from: Origin,
    container: Option<String>,
    /// How the address was found through Docker (or why Docker was not asked).
    resolved_via: Option<String>,
    version: String,
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
    servers: Vec<Server>,
    databases: Vec<Databases>,
    replication_role_allowed: bool,
    replication_role_detail: String,
}

pub async fn run(ctx: &Ctx, args: CheckArgs) -> Result<Outcome> {
    let my = super::mysql_config(ctx, &args.mysql).await?;
    let pg = super::postgres_config(ctx, &args.postgres).await?;
    let explicit = !args.sources.is_empty();
    let names = if explicit {
        args.sources.clone()
    } else {
        vec!["alkemio".to_string(), "kratos".to_string()]
    };
    let mut profiles: Vec<Profile> = names
        .iter()
        .map(|n| Profile::resolve(n, &ctx.layers))
        .collect();
    if let (Some(t), [p]) = (&args.target_db, profiles.as_mut_slice()) {
        p.target_db = t.clone();
    }

    let mut conn = mysql::connect(&my, None).await?;
    let my_version = mysql::server_version(&mut conn).await?;
    let mut databases = Vec::new();
    for p in &profiles {
        databases.push(Databases {
            profile: p.name.clone(),
            source_database: p.source_db.clone(),
            source_exists: mysql::database_exists(&mut conn, &p.source_db).await?,
            target_database: p.target_db.clone(),
            target_exists: false,
        });
    }
    let _ = conn.disconnect().await;

    let mut client = postgres::connect(&pg, "postgres").await?;
    let pg_version = postgres::server_version(&client).await?;
    for d in &mut databases {
        d.target_exists = postgres::database_exists(&client, &d.target_database).await?;
    }
    let (allowed, detail) = postgres::replication_role_check(&mut client).await?;

    let report = Report {
        servers: vec![
            Server {
                kind: "mysql",
                address: my.display(),
                configured_from: my.origin,
                container: my.container.clone(),
                resolved_via: my.resolved_via.clone(),
                version: my_version,
            },
            Server {
                kind: "postgres",
                address: pg.display(),
                configured_from: pg.origin,
                container: pg.container.clone(),
                resolved_via: pg.resolved_via.clone(),
                version: pg_version,
            },
        ],
        databases,
        replication_role_allowed: allowed,
        replication_role_detail: detail,
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }

    if !report.replication_role_allowed {
        return Err(with_hint(
            anyhow::anyhow!(
                "PostgreSQL role `{}` may not SET session_replication_role: {}",
                pg.user,
                report.replication_role_detail
            ),
            REPLICATION_ROLE_HINT,
        ));
    }
    if explicit {
        for d in &report.databases {
            if !d.source_exists {
                return Err(with_hint(
                    anyhow::anyhow!(
                        "MySQL at {}: source database `{}` does not exist",
                        my.display(),
                        d.source_database
                    ),
                    mysql::UNKNOWN_DATABASE_HINT,
                ));
            }
            if !d.target_exists {
                return Err(with_hint(
                    anyhow::anyhow!(
                        "PostgreSQL at {}: target database `{}` does not exist",
                        pg.display(),
                        d.target_database
                    ),
                    postgres::MISSING_DATABASE_HINT,
                ));
            }
        }
    }
    Ok(Outcome::Success)
}

fn render(r: &Report) -> String {
    let mut servers = Table::new(["server", "address", "configured from", "version"]);
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
            s.version.clone(),
        ]);
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut dbs = Table::new([
        "profile",
        "source (mysql)",
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
    format!(
        "{}\n{}\nsession_replication_role: {} ({})\n",
        servers.render(),
        dbs.render(),
        if r.replication_role_allowed {
            "allowed"
        } else {
            "NOT allowed"
        },
        r.replication_role_detail
    )
}
