//! Verify's I/O: the manifest, exact counts in the target (and the source with
//! `--source`), and orphan rows of every foreign key among the imported tables; the
//! verdicts are `verify::counts`'.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::config::ServerConfig;
use crate::db::catalog::ReadFrom;
use crate::db::{mysql, postgres};
use crate::mapping::Mapping;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::Loaded;
use crate::verify::counts::{self, OrphanCheck, Report};

/// Everything a verification needs, resolved before it starts.
pub struct Job {
    pub dir: ExportDir,
    pub manifest: Loaded,
    pub mapping: Mapping,
    pub target: ServerConfig,
    pub target_db: String,
    pub schema: String,
    /// The source to count too (`--source`).
    pub source: Option<ServerConfig>,
    pub foreign_keys: bool,
    /// Rows the import's hooks and fired triggers added per target table (run log).
    pub adjustments: BTreeMap<String, i64>,
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
            // Each dataset counted as it was exported: with its `where`, or its query.
            let from = match &s.query {
                Some(q) => ReadFrom::Query(q),
                None => ReadFrom::Table {
                    name: &s.name,
                    filter: s.filter.as_deref(),
                },
            };
            *count = Some(mysql::count_rows(&mut conn, &db, from).await?);
        }
        let _ = conn.disconnect().await;
    }

    // Each target table against the sum of the datasets that feed it.
    let mut targets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in specs.iter().enumerate() {
        targets
            .entry(job.mapping.target_table(&s.name))
            .or_default()
            .push(i);
    }
    let mut tables = Vec::new();
    for (name, feeding) in &targets {
        let target = if catalog.tables.contains_key(name) {
            Some(postgres::count_rows(&client, &job.schema, name).await?)
        } else {
            None
        };
        let sum = |f: &dyn Fn(usize) -> Option<u64>| -> Option<u64> {
            feeding.iter().map(|&i| f(i)).sum::<Option<u64>>()
        };
        let manifest_rows = sum(&|i| specs[i].rows);
        let source = sum(&|i| source_counts[i]);
        let reason = job
            .mapping
            .skip_if_absent()
            .contains(name)
            .then(|| format!("absent in the target; {} skips it", job.mapping.origin));
        let label = match feeding.as_slice() {
            [i] if &specs[*i].name == name => name.clone(),
            _ => format!(
                "{name} <- {}",
                feeding
                    .iter()
                    .map(|&i| specs[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        };
        let hooks = job.adjustments.get(name).copied().unwrap_or(0);
        let mut check = counts::check_table(
            name,
            manifest_rows,
            target,
            source,
            reason.as_deref(),
            hooks,
        );
        check.table = label;
        tables.push(check);
    }

    let mut foreign_keys = Vec::new();
    if job.foreign_keys {
        let imported: Vec<String> = tables
            .iter()
            .filter(|t| t.target_rows.is_some())
            .map(|t| t.table.split(" <- ").next().unwrap_or(&t.table))
            .map(|t| t.to_string())
            .collect();
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
