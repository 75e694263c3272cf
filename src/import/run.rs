//! The import's I/O around the pure plan, in the order that fails cheapest first: the
//! manifest and headers, the target (connected and its catalog read before any file is
//! hashed, so a wrong port is reported at once), the plan, what `TRUNCATE ... CASCADE`
//! would empty, then the files: present and of their size (and, for `--dry-run`, read
//! whole). Nothing is written until `execute`.

use anyhow::{Result, anyhow};

use crate::config::ServerConfig;
use crate::db::postgres;
use crate::hint::{WithHint, with_hint};
use crate::import::files;
use crate::import::load::{self, Env};
use crate::import::outcome::{self, Outcome};
use crate::import::plan::{self, Plan};
use crate::import::transaction::{CommitLost, TableLoaded, TxState};
use crate::mapping::Mapping;
use crate::progress::Progress;
use crate::store::export_dir::ExportDir;
use crate::store::manifest::Loaded;

/// Everything an import needs, resolved before it starts.
pub struct Job {
    pub dir: ExportDir,
    pub manifest: Loaded,
    /// sha256 of the manifest file (a delta chain names its exports by it; empty when the
    /// manifest was not read from a file).
    pub manifest_sha256: String,
    pub mapping: Mapping,
    pub target: ServerConfig,
    pub target_db: String,
    pub options: plan::Options,
    /// Read every file ahead (sha256, records) before anything is written: `--dry-run`.
    /// Otherwise each file is read once, hashed while it is sent, and a mismatch rolls
    /// the import back before COMMIT.
    pub prepass: bool,
}

/// A plan ready to run, on an open connection to the target.
pub struct Prepared {
    pub client: tokio_postgres::Client,
    pub plan: Plan,
    /// Tables outside the import that CASCADE would empty and that hold rows.
    pub cascade_with_rows: Vec<String>,
    /// The target cluster's identity (when readable), to recognise it after a lost COMMIT.
    pub system_identifier: Option<String>,
    /// What planning one dataset again needs (`migrate`, once its files are complete).
    pub replan: plan::Replan,
}

impl Prepared {
    /// Why the import must not run, if it must not: checked after a dry run is printed.
    pub fn refusal(&self, allow_cascade: bool) -> Option<anyhow::Error> {
        if !self.plan.errors.is_empty() {
            let list: Vec<String> = self
                .plan
                .errors
                .iter()
                .map(|e| format!("  - {e}"))
                .collect();
            return Some(with_hint(
                anyhow!(
                    "import refused before any write ({}):\n{}",
                    crate::report::count(self.plan.errors.len() as u64, "problem"),
                    list.join("\n")
                ),
                match self.plan.errors.iter().any(|e| e.contains("key_of(")) {
                    // The mapping's own use of key_of: the mapping is what to fix.
                    true => crate::import::plan::keymap::HINT.to_string(),
                    false => crate::import::fixes::refusal_hint(
                        &self.plan.fixes,
                        self.replan.dialect,
                        "export again",
                    ),
                },
            ));
        }
        if !self.cascade_with_rows.is_empty() && !allow_cascade {
            return Some(with_hint(
                anyhow!(
                    "TRUNCATE ... CASCADE would also empty tables outside the import that hold rows: {}",
                    self.cascade_with_rows.join(", ")
                ),
                "pass --allow-cascade if emptying them is intended, or include their data in the export",
            ));
        }
        None
    }
}

/// Connect, read the catalog, plan, and (when the plan holds) check every file.
pub async fn prepare(job: &Job, progress: &Progress) -> Result<Prepared> {
    prepare_with(job, progress, None).await
}

/// `prepare`, with the inputs given (`migrate`: planned from the export's plan before
/// its files exist; each dataset is planned again from its real facts when its files are
/// complete, and those files, written by this process, skip the pre-pass).
pub async fn prepare_with(
    job: &Job,
    progress: &Progress,
    given: Option<Vec<plan::TableInput>>,
) -> Result<Prepared> {
    let specs = job.manifest.tables();
    let pipelined = given.is_some();
    let inputs = match given {
        Some(inputs) => inputs,
        None => files::inputs(&job.dir, specs.clone())?,
    };
    let mut client = postgres::connect(&job.target, &job.target_db).await?;
    let catalog = postgres::read_catalog(&client, &job.options.schema).await?;
    if catalog.tables.is_empty() {
        return Err(anyhow!(
            "schema `{}` of database `{}` has no tables",
            job.options.schema,
            job.target_db
        ))
        .hint("the target schema must exist already: run the application's migrations first");
    }
    let system_identifier = postgres::system_identifier(&client).await?;
    // A PostgreSQL source in this very database and schema: the TRUNCATE would empty
    // the tables the export was read from.
    if let Some(src) = job.manifest.source()
        && src.kind == "postgresql"
        && src.system_identifier.is_some()
        && src.system_identifier == system_identifier
        && src.database == job.target_db
        && src.schema.as_deref() == Some(job.options.schema.as_str())
    {
        return Err(anyhow!(
            "the target is the export's own source: database `{}`, schema `{}` of the same \
             PostgreSQL cluster; the import would TRUNCATE the tables it was read from",
            job.target_db,
            job.options.schema
        ))
        .hint("import into another database or schema (--target-db, --schema, or the mapping's target_db and schema)");
    }
    let questions = plan::questions(&inputs, &catalog, &job.mapping);
    let answers = postgres::probe_sets(&mut client, &job.options.schema, &questions).await?;
    let mut plan = plan::build(&inputs, &catalog, &job.mapping, &job.options, &answers);
    for table in &plan.kept_history {
        if postgres::count_rows(&client, &job.options.schema, table).await? == 0 {
            plan.warnings.push(format!(
                "the target's migration history `{table}` is empty: the application will \
                 run every migration again at its start; is the target's schema really made \
                 by its migrations?"
            ));
        }
    }
    // The target must be what the mapping was written for (its schema migrated).
    let requires = &job.mapping.hooks().require;
    for (sql, answer) in requires
        .iter()
        .zip(postgres::requirements(&mut client, &job.options.schema, requires).await)
    {
        match answer {
            Ok(true) => plan.mapping_steps.push(format!("require: {sql}: true")),
            Ok(false) => plan
                .errors
                .push(format!("[import] require is false on the target: {sql}")),
            Err(e) => plan
                .errors
                .push(format!("[import] require failed on the target: {sql}: {e}")),
        }
    }
    crate::import::delta::prepare(&client, job, &catalog, &mut plan).await?;
    let mut cascade_with_rows = Vec::new();
    for (schema, table) in &plan.cascade {
        let rows = postgres::has_rows(&client, schema, table)
            .await
            .map_err(|e| {
                let denied = format!("{e:#}").contains("(42501)");
                match denied {
                    true => crate::hint::with_hint(
                        e.context(format!(
                            "TRUNCATE ... CASCADE reaches `{schema}`.`{table}` (a foreign key \
                             of it references an imported table)"
                        )),
                        format!(
                            "grant the importing role SELECT and TRUNCATE on {schema}.{table}, \
                             or import as its owner"
                        ),
                    ),
                    false => e,
                }
            })?;
        if rows {
            cascade_with_rows.push(format!("{schema}.{table}"));
        }
    }
    if plan.errors.is_empty() && !pipelined {
        if job.prepass {
            files::check(&job.dir, &specs, plan.nulls, progress)?;
        } else {
            files::present(&job.dir, &specs)?;
        }
    }
    Ok(Prepared {
        client,
        plan,
        cascade_with_rows,
        system_identifier,
        replan: plan::Replan {
            catalog,
            mapping: job.mapping.clone(),
            options: job.options.clone(),
            answers,
            dialect: crate::import::fixes::Dialect::of_source(&job.manifest.source_kind()),
        },
    })
}

/// Run the plan in one transaction and commit. When the connection is lost during
/// COMMIT, the server is asked what became of the transaction: committed is success
/// (said in a warning), anything else an error that says what is known.
pub async fn execute(
    job: &Job,
    prepared: &mut Prepared,
    env: &mut Env<'_>,
    state: &mut TxState,
) -> Result<Vec<TableLoaded>> {
    match load::load(&mut prepared.client, &prepared.plan, env, state).await {
        Err(e) if e.downcast_ref::<CommitLost>().is_some() => {
            let lost = e.downcast::<CommitLost>().expect("checked");
            let sysid = prepared.system_identifier.as_deref();
            let outcome = outcome::resolve(&job.target, &job.target_db, &lost, sysid).await;
            env.journal.line(format!("{lost}: {outcome:?}"));
            match outcome {
                Outcome::Committed => {
                    let tables = state.loaded.take().unwrap_or_default();
                    env.progress.warn(format!(
                        "{lost}; the server reports it committed: the import is complete"
                    ));
                    Ok(tables)
                }
                Outcome::RolledBack => {
                    state.server_rolled_back = true;
                    Err(anyhow::Error::new(lost).context("the server reports it rolled back"))
                }
                Outcome::Unknown(why) => {
                    state.unknown = true;
                    Err(anyhow::Error::new(lost)
                        .context(format!("no server could say what became of it ({why})")))
                }
            }
        }
        other => other,
    }
}
