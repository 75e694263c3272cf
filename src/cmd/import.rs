//! `pgconverge import <dir>`: refuse a bad export before touching the target (manifest,
//! version, sizes, sha256), read the target catalog, build and check the plan, then load
//! everything in ONE transaction: replica role, one TRUNCATE ... CASCADE, a COPY per
//! table fed from its file, row counts checked, sequences set, COMMIT. Any error,
//! interruption or lost connection leaves the target exactly as it was.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use crate::cli::{CopyFormat, ImportArgs};
use crate::cmd::{Ctx, Outcome};
use crate::config::ServerConfig;
use crate::csvfile;
use crate::encode::csv::{NullStyle, read_record};
use crate::hint::{WithHint, with_hint};
use crate::journal::Journal;
use crate::manifest::{self, TableSpec};
use crate::plan::{self, Plan, TableInput};
use crate::postgres;
use crate::profile::Profile;
use crate::progress::{Progress, human_bytes};
use crate::report::Table;
use crate::runlog::{self, Entry, Status};

pub async fn run(ctx: &Ctx, args: ImportArgs) -> Result<Outcome> {
    let clock = Instant::now();
    let progress = Progress::new(ctx.quiet);
    let dir = &args.export_dir;

    // 1. The export itself, before the target is touched.
    let loaded = manifest::load(dir)?;
    if loaded.is_legacy() {
        progress.warn(
            "this export was written by the old shell scripts: it carries no checksums, so \
             only file presence is checked; NULL is read as an unquoted empty field",
        );
    }
    let specs = loaded.tables();
    check_files(dir, &specs, &progress)?;
    let mut inputs = Vec::with_capacity(specs.len());
    for spec in specs {
        let first = spec
            .files
            .first()
            .map(|f| f.file.clone())
            .ok_or_else(|| anyhow!("table `{}` has no file in the manifest", spec.name))?;
        let header = read_header(&dir.join(&first))
            .with_context(|| format!("reading the header of {first}"))?;
        inputs.push(TableInput { spec, header });
    }

    // 2. The target and the plan.
    let profile = Profile::resolve(&loaded.profile(), &ctx.layers);
    let target_db = args
        .target_db
        .clone()
        .unwrap_or_else(|| profile.target_db.clone());
    let cfg = super::postgres_config(ctx, &args.postgres).await?;
    let mut client = postgres::connect(&cfg, &target_db).await?;
    let catalog = postgres::read_catalog(&client, &args.schema).await?;
    if catalog.tables.is_empty() {
        return Err(anyhow!(
            "schema `{}` of database `{target_db}` has no tables",
            args.schema
        ))
        .hint("the target schema must exist already: run the application's migrations first");
    }
    let plan = plan::build(
        &inputs,
        &catalog,
        &profile,
        &plan::Options {
            schema: args.schema.clone(),
            strict: args.strict,
            rebuild_indexes: args.rebuild_indexes,
            legacy: loaded.is_legacy(),
            binary: args.copy_format == CopyFormat::Auto,
        },
    );
    let mut cascade_with_rows = Vec::new();
    for (schema, table) in &plan.cascade {
        if postgres::has_rows(&client, schema, table).await? {
            cascade_with_rows.push(format!("{schema}.{table}"));
        }
    }
    for w in &plan.warnings {
        progress.warn(w);
    }
    let description = describe(&plan, &cfg, &target_db);
    if args.dry_run && args.json {
        let out = serde_json::json!({
            "target_database": target_db,
            "schema": plan.schema,
            "tables": plan.steps.iter().map(|s| serde_json::json!({
                "table": s.table, "rows": s.expected_rows, "bytes": s.bytes, "files": s.files,
                "columns": s.columns,
                "copy_format": if s.binary_types.is_some() { "binary" } else { "csv" },
                "csv_reason": s.csv_reason,
                "sequences": s.sequences.iter().map(|q| &q.sequence).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "skipped": skipped_json(&plan),
            "cascade": plan.cascade.iter().map(|(s, t)| format!("{s}.{t}")).collect::<Vec<_>>(),
            "errors": plan.errors,
            "warnings": plan.warnings,
            "sql": plan.script(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if args.dry_run {
        print!("{description}");
        println!("\n-- SQL (COPY data is streamed from the files):");
        for stmt in plan.script() {
            // The terminator goes before a trailing `-- from <file>` comment, not inside it.
            match stmt.split_once("  -- ") {
                Some((sql, comment)) => println!("{sql};  -- {comment}"),
                None => println!("{stmt};"),
            }
        }
    } else {
        progress.note(description.trim_end());
    }
    if !plan.errors.is_empty() {
        let list: Vec<String> = plan.errors.iter().map(|e| format!("  - {e}")).collect();
        return Err(anyhow!(
            "import refused before any write ({} problems):\n{}",
            plan.errors.len(),
            list.join("\n")
        ))
        .hint("make the target schema match (it comes from the application's migrations), or fix the data at the source and export again");
    }
    if !cascade_with_rows.is_empty() && !args.allow_cascade {
        return Err(anyhow!(
            "TRUNCATE ... CASCADE would also empty tables outside the import that hold rows: {}",
            cascade_with_rows.join(", ")
        ))
        .hint("pass --allow-cascade if emptying them is intended, or include their data in the export");
    }
    if args.dry_run {
        return Ok(Outcome::Success);
    }
    confirm(args.yes, &plan, &cfg, &target_db, &cascade_with_rows)?;

    // 3. Execute.
    let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S").to_string();
    let mut journal = Journal::create(&ctx.run_log, &stamp)?;
    journal.line(format!(
        "import of {} into `{target_db}` at {}",
        dir.display(),
        cfg.display()
    ));
    journal.line(description.trim_end());
    let total_rows: u64 = plan.steps.iter().filter_map(|s| s.expected_rows).sum();
    let mut start = Entry::new(
        Status::Started,
        &ctx.command_line,
        format!("import into `{target_db}` ({} tables)", plan.steps.len()),
    );
    start.export_dir = Some(dir.display().to_string());
    start.tables = Some(plan.steps.len() as u64);
    start.rows = Some(total_rows);
    runlog::append_or_warn(&ctx.run_log, &start);

    let began = Cell::new(false);
    let nulls = if loaded.is_legacy() {
        NullStyle::EmptyUnquoted
    } else {
        NullStyle::Marker
    };
    // Tables whose file the binary converters could not carry exactly load as CSV; the
    // attempt that found one was rolled back, so the import starts over.
    let mut as_csv = BTreeSet::new();
    let result = loop {
        let work = execute(
            &mut client,
            &plan,
            &as_csv,
            nulls,
            dir,
            &progress,
            &mut journal,
            &began,
        );
        let result = tokio::select! {
            r = work => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C)")),
        };
        if let Err(e) = &result
            && let Some(nb) = e
                .chain()
                .find_map(|c| c.downcast_ref::<postgres::NotBinary>())
            && let Some(step) = plan.steps.iter().find(|s| s.files.contains(&nb.file))
            && as_csv.insert(step.table.clone())
        {
            let msg = format!(
                "table `{}`, {nb}: rolled back, starting over with `{}` loaded as CSV",
                step.table, step.table
            );
            progress.warn(&msg);
            journal.line(format!("ROLLBACK: {msg}"));
            continue;
        }
        break result;
    };
    let mut entry = match &result {
        Ok(_) => Entry::new(
            Status::Completed,
            &ctx.command_line,
            format!(
                "imported into `{target_db}`: {} tables, {total_rows} rows",
                plan.steps.len()
            ),
        ),
        Err(e) => Entry::new(
            if began.get() {
                Status::RolledBack
            } else {
                Status::Failed
            },
            &ctx.command_line,
            format!("{e:#}"),
        ),
    };
    entry.export_dir = Some(dir.display().to_string());
    entry.tables = Some(plan.steps.len() as u64);
    entry.duration_ms = Some(clock.elapsed().as_millis() as u64);
    match result {
        Ok(loaded_rows) => {
            entry.rows = Some(loaded_rows.iter().map(|(_, r, _)| r).sum());
            runlog::append_or_warn(&ctx.run_log, &entry);
            journal.line(format!(
                "COMMIT after {:.1} s",
                clock.elapsed().as_secs_f64()
            ));
            let log_path = journal.log_path.display().to_string();
            journal.close();
            if args.json {
                let out = serde_json::json!({
                    "committed": true,
                    "target_database": target_db,
                    "tables": loaded_rows.iter().map(|(t, r, secs)| serde_json::json!({
                        "table": t, "rows": r, "seconds": secs,
                    })).collect::<Vec<_>>(),
                    "skipped": skipped_json(&plan),
                    "log": log_path,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", summary(&loaded_rows, &plan));
                println!("import: committed into `{target_db}` (log {log_path})");
            }
            Ok(Outcome::Success)
        }
        Err(e) => {
            runlog::append_or_warn(&ctx.run_log, &entry);
            journal.line(format!("ROLLBACK: {e:#}"));
            journal.close();
            let what = if began.get() {
                "import rolled back: the target is unchanged"
            } else {
                "import failed before any write"
            };
            Err(e.context(what))
        }
    }
}

/// Run the plan in one transaction; returns (table, rows, seconds) per table.
#[allow(clippy::too_many_arguments)]
async fn execute(
    client: &mut tokio_postgres::Client,
    plan: &Plan,
    as_csv: &BTreeSet<String>,
    nulls: NullStyle,
    dir: &Path,
    progress: &Progress,
    journal: &mut Journal,
    began: &Cell<bool>,
) -> Result<Vec<(String, u64, f64)>> {
    let tx = client.transaction().await.map_err(postgres::error)?;
    began.set(true);
    journal.sql("BEGIN");
    for stmt in plan::SESSION_SQL {
        journal.sql(stmt);
        if let Err(e) = tx.batch_execute(stmt).await {
            let denied = e.as_db_error().is_some_and(|d| d.code().code() == "42501");
            let err = postgres::error(e);
            return Err(if denied {
                with_hint(
                    err.context("this role may not SET session_replication_role"),
                    postgres::REPLICATION_ROLE_HINT,
                )
            } else {
                err.context(format!("running `{stmt}`"))
            });
        }
    }
    if let Some(t) = plan.truncate_sql() {
        journal.sql(&t);
        tx.batch_execute(&t)
            .await
            .map_err(postgres::error)
            .context("truncating the imported tables")?;
    }
    for step in &plan.steps {
        for (drop, _) in &step.indexes {
            journal.sql(drop);
            tx.batch_execute(drop)
                .await
                .map_err(postgres::error)
                .with_context(|| {
                    format!("dropping an index of `{}` for the rebuild", step.table)
                })?;
        }
    }
    let sizes: Vec<u64> = plan
        .steps
        .iter()
        .map(|s| s.files.iter().map(|f| file_len(&dir.join(f))).sum())
        .collect();
    let overall = progress.bytes("all tables", sizes.iter().sum());
    let mut done = Vec::new();
    for (step, size) in plan.steps.iter().zip(sizes) {
        let clock = Instant::now();
        let bar = progress.bytes(&step.table, size);
        let mut rows = 0;
        let binary = step
            .binary_types
            .as_ref()
            .filter(|_| !as_csv.contains(&step.table));
        // A split table is several files in key order, one COPY each.
        for file in &step.files {
            let on_bytes = |n| {
                bar.inc(n);
                overall.inc(n);
            };
            let path = dir.join(file);
            let sql = if binary.is_some() {
                &step.copy_sql
            } else {
                &step.csv_copy_sql
            };
            journal.sql(format!("{sql}  -- from {file}"));
            rows += match binary {
                Some(types) => {
                    postgres::copy_file_binary(&tx, sql, &path, types.clone(), nulls, on_bytes)
                        .await
                }
                None => postgres::copy_file(&tx, sql, &path, on_bytes).await,
            }
            .with_context(|| format!("loading table `{}` from {file}", step.table))?;
        }
        bar.finish_and_clear();
        if let Some(expected) = step.expected_rows
            && rows != expected
        {
            bail!(
                "table `{}`: COPY loaded {rows} rows but the manifest says {expected}",
                step.table
            );
        }
        let secs = clock.elapsed().as_secs_f64();
        journal.line(format!(
            "loaded `{}`: {rows} rows in {secs:.1} s",
            step.table
        ));
        progress.note(format!(
            "loaded `{}`: {rows} rows in {secs:.1} s",
            step.table
        ));
        done.push((step.table.clone(), rows, secs));
    }
    overall.finish_and_clear();
    for step in &plan.steps {
        for (_, create) in &step.indexes {
            let clock = Instant::now();
            journal.sql(create);
            tx.batch_execute(create)
                .await
                .map_err(postgres::error)
                .with_context(|| format!("rebuilding an index of `{}`", step.table))?;
            journal.line(format!(
                "rebuilt in {:.1} s: {create}",
                clock.elapsed().as_secs_f64()
            ));
        }
    }
    for step in &plan.steps {
        for seq in &step.sequences {
            journal.sql(&seq.sql);
            tx.batch_execute(&seq.sql)
                .await
                .map_err(postgres::error)
                .with_context(|| {
                    format!("setting sequence {} of `{}`", seq.sequence, step.table)
                })?;
        }
    }
    journal.sql("COMMIT");
    tx.commit()
        .await
        .map_err(postgres::error)
        .context("committing")?;
    Ok(done)
}

/// The tables of the export not loaded, for `--json`.
fn skipped_json(plan: &Plan) -> serde_json::Value {
    plan.skipped
        .iter()
        .map(|(t, why)| serde_json::json!({"table": t, "reason": why}))
        .collect()
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Every file present; sizes and sha256 as the manifest says (when it says). Files are
/// hashed on all cores at once: this check must finish before the target is touched, so
/// its time is added to the maintenance window.
fn check_files(dir: &Path, specs: &[TableSpec], progress: &Progress) -> Result<()> {
    // (table, file) pairs: one per file, several for a split table.
    let files: Vec<(&str, &manifest::FileSpec)> = specs
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| (s.name.as_str(), f)))
        .collect();
    for (table, f) in &files {
        let path = dir.join(&f.file);
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("table `{table}`: {} is missing", path.display()))
            .hint("the export is incomplete: export again")?;
        if let Some(bytes) = f.bytes
            && meta.len() != bytes
        {
            bail!(
                "table `{table}`: {} has {} bytes but the manifest says {bytes}; the export was changed or truncated",
                f.file,
                meta.len()
            );
        }
    }
    let total: u64 = files.iter().filter_map(|(_, f)| f.bytes).sum();
    let bar = progress.bytes("checking files", total);
    // Largest first, so the threads finish together.
    let mut order: Vec<&(&str, &manifest::FileSpec)> =
        files.iter().filter(|(_, f)| f.sha256.is_some()).collect();
    order.sort_by_key(|(_, f)| std::cmp::Reverse(f.bytes.unwrap_or(0)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(order.len().max(1));
    let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((table, f)) = order.get(i) else { return Ok(()) };
                        let want = f.sha256.as_deref().unwrap_or_default();
                        let (_, got) = csvfile::checksum(&dir.join(&f.file), |n| bar.inc(n))?;
                        if got != want {
                            return Err(anyhow!(
                                "table `{table}`: {} does not match its sha256 in the manifest (file {got}, manifest {want})",
                                f.file
                            ))
                            .hint("the file was modified after the export: export again rather than edit CSVs");
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| match w.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(anyhow!("a checksum thread panicked")),
            })
            .collect()
    });
    bar.finish_and_clear();
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The CSV header (column names), read from the start of the file.
fn read_header(path: &Path) -> Result<Vec<String>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = Vec::new();
    Read::by_ref(&mut f)
        .take(4 << 20)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    let (fields, _) = read_record(&buf, 0, NullStyle::Marker)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("{} is empty: no header row", path.display()))?;
    fields
        .into_iter()
        .map(|f| {
            let bytes = f.unwrap_or_else(|| b"\\N".to_vec());
            String::from_utf8(bytes).map_err(|_| anyhow!("a header name is not UTF-8"))
        })
        .collect()
}

fn describe(plan: &Plan, cfg: &ServerConfig, db: &str) -> String {
    let mut t = Table::new(["table", "rows", "size", "columns", "copy", "sequences"]);
    for s in &plan.steps {
        t.row([
            s.table.clone(),
            s.expected_rows
                .map(|r| r.to_string())
                .unwrap_or_else(|| "?".into()),
            s.bytes.map(human_bytes).unwrap_or_else(|| "?".into()),
            s.columns.len().to_string(),
            if s.binary_types.is_some() {
                "binary".into()
            } else {
                "csv".into()
            },
            s.sequences
                .iter()
                .map(|q| q.column.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    let mut out = format!(
        "plan: load {} tables into database `{db}`, schema `{}`, at {}\n{}",
        plan.steps.len(),
        plan.schema,
        cfg.display(),
        t.render()
    );
    for (table, why) in &plan.skipped {
        out.push_str(&format!("skipped: `{table}`: {why}\n"));
    }
    for s in &plan.steps {
        if let Some(why) = s.csv_reason.as_ref().filter(|_| plan.binary) {
            out.push_str(&format!("as CSV: `{}`: {why}\n", s.table));
        }
    }
    if !plan.cascade.is_empty() {
        let list: Vec<String> = plan
            .cascade
            .iter()
            .map(|(s, t)| format!("{s}.{t}"))
            .collect();
        out.push_str(&format!(
            "TRUNCATE ... CASCADE also empties (not part of the import): {}\n",
            list.join(", ")
        ));
    }
    out
}

fn confirm(yes: bool, plan: &Plan, cfg: &ServerConfig, db: &str, cascade: &[String]) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(anyhow!(
            "refusing to import without confirmation: standard input is not a terminal"
        ))
        .hint("pass --yes for non-interactive runs");
    }
    let mut prompt = format!(
        "This TRUNCATEs and reloads {} tables of database `{db}` at {}",
        plan.steps.len(),
        cfg.display()
    );
    if !cascade.is_empty() {
        prompt.push_str(&format!(
            ", and CASCADE also empties {}",
            cascade.join(", ")
        ));
    }
    eprint!("{prompt}. Continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        bail!("import cancelled; nothing was written")
    }
}

fn summary(done: &[(String, u64, f64)], plan: &Plan) -> String {
    let mut t = Table::new(["table", "rows", "seconds"]);
    for (table, rows, secs) in done {
        t.row([table.clone(), rows.to_string(), format!("{secs:.1}")]);
    }
    let rows: u64 = done.iter().map(|(_, r, _)| r).sum();
    t.row([
        format!("{} tables", done.len()),
        rows.to_string(),
        String::new(),
    ]);
    let mut out = t.render();
    for (table, why) in &plan.skipped {
        out.push_str(&format!("skipped: `{table}`: {why}\n"));
    }
    out
}
