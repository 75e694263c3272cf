//! Verify's I/O: the manifest, exact counts in the target (and the source with
//! `--source`), and orphan rows of every foreign key among the imported tables; the
//! verdicts are `verify::counts`'.

use anyhow::Result;

use crate::config::ServerConfig;
use crate::db::{mysql, postgres};
use crate::mapping::Profile;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::Loaded;
use crate::verify::counts::{self, OrphanCheck, Report};

/// Everything a verification needs, resolved before it starts.
pub struct Job {
    pub dir: ExportDir,
    pub manifest: Loaded,
    pub profile: Profile,
    pub target: ServerConfig,
    pub target_db: String,
    pub schema: String,
    /// The source to count too (`--source`).
    pub source: Option<ServerConfig>,
    pub foreign_keys: bool,
}

pub async fn verify(job: &Job) -> Result<Report> {
    let specs = job.manifest.tables();
    let client = postgres::connect(&job.target, &job.target_db).await?;
    let catalog = postgres::read_catalog(&client, &job.schema).await?;

    let mut source_counts = vec![None; specs.len()];
    if let Some(cfg) = &job.source {
        let db = job.manifest.source_database();
        let mut conn = mysql::connect(cfg, Some(&db)).await?;
        for (s, count) in specs.iter().zip(source_counts.iter_mut()) {
            *count = Some(mysql::count_rows(&mut conn, &db, &s.name).await?);
        }
        let _ = conn.disconnect().await;
    }

    let mut tables = Vec::new();
    for (s, source) in specs.iter().zip(source_counts) {
        let target = if catalog.tables.contains_key(&s.name) {
            Some(postgres::count_rows(&client, &job.schema, &s.name).await?)
        } else {
            None
        };
        let reason = job.profile.skip_if_absent.contains(&s.name).then(|| {
            format!(
                "absent in the target; profile `{}` skips it",
                job.profile.name
            )
        });
        tables.push(counts::check_table(
            &s.name,
            s.rows,
            target,
            source,
            reason.as_deref(),
        ));
    }

    let mut foreign_keys = Vec::new();
    if job.foreign_keys {
        let imported: Vec<&String> = tables
            .iter()
            .filter(|t| t.target_rows.is_some())
            .map(|t| &t.table)
            .collect();
        let imported: Vec<String> = imported.into_iter().cloned().collect();
        // The same set the import checks before COMMIT: every foreign key that involves
        // an imported table, as child or as parent.
        for fk in &catalog.foreign_keys {
            if fk.touches(&job.schema, &imported) {
                foreign_keys.push(OrphanCheck {
                    constraint: fk.name.clone(),
                    child: fk.child.clone(),
                    child_columns: fk.child_columns.clone(),
                    parent: fk.parent.clone(),
                    parent_columns: fk.parent_columns.clone(),
                    orphans: postgres::count_orphans(&client, fk).await?,
                });
            }
        }
    }
    Ok(Report::new(
        job.dir.path().display().to_string(),
        job.target_db.clone(),
        job.schema.clone(),
        tables,
        foreign_keys,
    ))
}
