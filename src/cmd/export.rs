//! `pgconverge export <profile|database>`: read the catalog, open readers on one
//! snapshot, stream every selected table into its CSV file under a temporary directory,
//! write the manifest, fsync, and rename the directory to its final name. On any error
//! or Ctrl-C the temporary directory is removed; after a crash it stays behind under a
//! hidden `.…partial-<pid>` name without a manifest, which import refuses.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use indicatif::ProgressBar;
use mysql_async::Conn;

use crate::cli::{ExportArgs, OnInvalid};
use crate::cmd::{Ctx, Outcome};
use crate::config::ServerConfig;
use crate::csvfile::TableWriter;
use crate::encode::{self, InvalidPolicy, Rule};
use crate::layout;
use crate::manifest::{self, ColumnEntry, Manifest, PartEntry, TableEntry};
use crate::mysql::{self, ColumnMeta, TableMeta};
use crate::profile::Profile;
use crate::progress::{Progress, human_bytes};
use crate::report::Table;
use crate::runlog::{self, Entry, Status};

/// One table's export plan: the columns read and the rule for each.
struct TablePlan {
    meta: TableMeta,
    columns: Vec<ColumnMeta>,
    rules: Vec<Rule>,
    pk: Vec<usize>,
    generated: Vec<String>,
}

fn plan(meta: TableMeta, profile: &Profile) -> TablePlan {
    let (generated, columns): (Vec<ColumnMeta>, Vec<ColumnMeta>) =
        meta.columns.iter().cloned().partition(|c| c.generated);
    let rules = columns
        .iter()
        .map(|c| {
            encode::classify(
                &c.data_type,
                &c.column_type,
                profile.override_for(&meta.name, &c.name),
            )
        })
        .collect();
    let pk = meta
        .primary_key
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k))
        .collect();
    TablePlan {
        generated: generated.into_iter().map(|c| c.name).collect(),
        columns,
        rules,
        pk,
        meta,
    }
}

pub async fn run(ctx: &Ctx, args: ExportArgs) -> Result<Outcome> {
    let clock = Instant::now();
    let started_at = runlog::now_rfc3339();
    let cfg = super::mysql_config(ctx, &args.mysql).await?;
    let profile = Profile::resolve(&args.source, &ctx.layers);
    let db = profile.source_db.clone();
    let progress = Progress::new(ctx.quiet);
    let policy = match args.on_invalid {
        OnInvalid::Error => InvalidPolicy::Error,
        OnInvalid::Fix => InvalidPolicy::Fix,
    };

    let mut conn = mysql::connect(&cfg, Some(&db)).await?;
    let server_version = mysql::server_version(&mut conn).await?;
    let catalog = mysql::read_catalog(&mut conn, &db).await?;
    let names: Vec<String> = catalog.iter().map(|t| t.name.clone()).collect();
    let selection = profile.select(&names, &args.tables, &args.exclude)?;
    let plans: Vec<TablePlan> = catalog
        .into_iter()
        .filter(|t| selection.tables.contains(&t.name))
        .map(|t| plan(t, &profile))
        .collect();
    let table_count = plans.len();
    // Key ranges (only with --split-rows) are found on the catalog connection.
    let split_rows = args.split_rows.unwrap_or(u64::MAX);
    let work = work_items(&mut conn, &db, plans, args.jobs.max(1), split_rows).await?;
    let _ = conn.disconnect().await;

    let paths = layout::new_export(&args.out, &profile.name, chrono::Utc::now());
    let parent = paths.tmp_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    warn_stale_partials(parent, &progress);
    std::fs::create_dir(&paths.tmp_dir)
        .with_context(|| format!("creating {}", paths.tmp_dir.display()))?;

    let mut start = Entry::new(
        Status::Started,
        &ctx.command_line,
        format!("export of `{db}` ({table_count} tables)"),
    );
    start.export_dir = Some(paths.final_dir.display().to_string());
    start.tables = Some(table_count as u64);
    runlog::append_or_warn(&ctx.run_log, &start);
    progress.note(format!(
        "exporting {table_count} tables of `{db}` from {} ({server_version}) into {}",
        cfg.display(),
        paths.final_dir.display()
    ));

    let exporting = export_tables(
        &cfg,
        &db,
        work,
        &paths.tmp_dir,
        &progress,
        args.jobs,
        policy,
    );
    let result = tokio::select! {
        r = exporting => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (Ctrl-C)")),
    };
    let (entries, readers, synchronized_by) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&paths.tmp_dir);
            let mut failed = Entry::new(Status::Failed, &ctx.command_line, format!("{e:#}"));
            failed.export_dir = Some(paths.final_dir.display().to_string());
            failed.duration_ms = Some(clock.elapsed().as_millis() as u64);
            runlog::append_or_warn(&ctx.run_log, &failed);
            return Err(e.context(format!("export of `{db}` failed; nothing was kept")));
        }
    };

    let mut tables = BTreeMap::new();
    let mut warnings = Vec::new();
    for t in entries {
        for w in &t.warnings {
            warnings.push(format!("table `{}`: {w}", t.name));
        }
        tables.insert(t.name.clone(), t);
    }
    let total_rows = tables.values().map(|t| t.rows).sum();
    let total_bytes = tables.values().map(|t| t.bytes).sum();
    let m = Manifest {
        format_version: manifest::format_version_for(&tables),
        tool: manifest::Tool {
            name: "pgconverge".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        profile: profile.name.clone(),
        source: manifest::Source {
            kind: "mysql".into(),
            host: cfg.host.clone(),
            port: cfg.port,
            user: cfg.user.clone(),
            database: db.clone(),
            server_version,
            container: cfg.container.clone(),
        },
        started_at,
        finished_at: runlog::now_rfc3339(),
        snapshot: manifest::Snapshot {
            isolation: "REPEATABLE READ, consistent snapshot, read only".into(),
            time_zone: "+00:00".into(),
            charset: "utf8mb4".into(),
            readers,
            synchronized_by,
        },
        csv: manifest::Dialect::current(),
        export_info: manifest::ExportInfo {
            timestamp: paths.timestamp.clone(),
            source_database: db.clone(),
            source_type: "mysql".into(),
            container: cfg.container.clone(),
        },
        summary: manifest::Summary {
            total_tables: tables.len() as u64,
            total_rows,
            total_bytes,
        },
        tables,
        excluded_tables: selection.excluded,
        warnings,
    };
    if let Err(e) = seal(&m, &paths) {
        let _ = std::fs::remove_dir_all(&paths.tmp_dir);
        return Err(e);
    }

    let mut done = Entry::new(
        Status::Completed,
        &ctx.command_line,
        format!(
            "exported `{db}`: {} tables, {total_rows} rows",
            m.tables.len()
        ),
    );
    done.export_dir = Some(paths.final_dir.display().to_string());
    done.tables = Some(m.tables.len() as u64);
    done.rows = Some(total_rows);
    done.duration_ms = Some(clock.elapsed().as_millis() as u64);
    runlog::append_or_warn(&ctx.run_log, &done);

    for w in &m.warnings {
        progress.warn(w);
    }
    if args.json {
        let out = serde_json::json!({
            "export_dir": paths.final_dir.display().to_string(),
            "format_version": m.format_version,
            "profile": m.profile,
            "source_database": m.source.database,
            "tables": m.tables.values().map(|t| serde_json::json!({
                "table": t.name, "rows": t.rows, "bytes": t.bytes, "parts": t.parts.len().max(1),
                "warnings": t.warnings,
            })).collect::<Vec<_>>(),
            "excluded_tables": m.excluded_tables,
            "total_rows": m.summary.total_rows,
            "total_bytes": m.summary.total_bytes,
            "warnings": m.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", summary(&m));
        println!("export: {}", paths.final_dir.display());
    }
    Ok(Outcome::Success)
}

/// One unit of reading: a whole table, or one key range of a split table.
struct Work {
    plan: Arc<TablePlan>,
    /// 1-based part number and the number of parts (1 for an unsplit table).
    part: usize,
    parts: usize,
    range: Option<mysql::KeyRange>,
}

/// What one unit of reading wrote.
struct PartDone {
    table: String,
    part: usize,
    file: String,
    range: String,
    written: crate::csvfile::Written,
}

/// Cut tables estimated above `split_rows` into `parts` key ranges (one-column integer
/// or char/varchar primary keys only); everything else is one unit.
async fn work_items(
    conn: &mut Conn,
    db: &str,
    plans: Vec<TablePlan>,
    parts: usize,
    split_rows: u64,
) -> Result<Vec<Work>> {
    let mut out = Vec::new();
    for plan in plans {
        let plan = Arc::new(plan);
        let key = match (plan.meta.primary_key.as_slice(), parts > 1) {
            ([k], true) if plan.meta.estimated_rows > split_rows => plan
                .meta
                .columns
                .iter()
                .find(|c| &c.name == k && !c.generated)
                .and_then(|c| mysql::splittable_key(&c.data_type).map(|int| (k.clone(), int))),
            _ => None,
        };
        let points = match &key {
            Some((column, integer)) => {
                mysql::split_points(
                    conn,
                    db,
                    &plan.meta.name,
                    column,
                    *integer,
                    plan.meta.estimated_rows,
                    parts as u64,
                )
                .await?
            }
            None => Vec::new(),
        };
        if points.is_empty() {
            out.push(Work {
                plan,
                part: 1,
                parts: 1,
                range: None,
            });
            continue;
        }
        let column = key.map(|(c, _)| c).unwrap_or_default();
        let mut bounds: Vec<Option<mysql::KeyLiteral>> = vec![None];
        bounds.extend(points.into_iter().map(Some));
        bounds.push(None);
        let n = bounds.len() - 1;
        for (i, pair) in bounds.windows(2).enumerate() {
            out.push(Work {
                plan: plan.clone(),
                part: i + 1,
                parts: n,
                range: Some(mysql::KeyRange {
                    column: column.clone(),
                    from: pair[0].clone(),
                    to: pair[1].clone(),
                }),
            });
        }
    }
    // Largest first, so parallel readers finish together.
    out.sort_by_key(|w| std::cmp::Reverse(w.plan.meta.estimated_rows / w.parts as u64));
    Ok(out)
}

/// Run the readers over a shared queue of work; the first error stops everything.
async fn export_tables(
    cfg: &ServerConfig,
    db: &str,
    work: Vec<Work>,
    dir: &Path,
    progress: &Progress,
    jobs: usize,
    policy: InvalidPolicy,
) -> Result<(Vec<TableEntry>, usize, String)> {
    let plans: BTreeMap<String, Arc<TablePlan>> = work
        .iter()
        .map(|w| (w.plan.meta.name.clone(), w.plan.clone()))
        .collect();
    let names: Vec<String> = plans.keys().cloned().collect();
    let estimate: u64 = plans.values().map(|p| p.meta.estimated_rows).sum();
    let wanted = jobs.clamp(1, work.len().max(1));
    let readers = mysql::open_readers(cfg, db, &names, wanted).await?;
    if let Some(note) = &readers.note {
        progress.warn(note);
    }
    let reader_count = readers.conns.len();
    let overall = progress.rows("all tables", estimate);
    let queue = Arc::new(Mutex::new(VecDeque::from(work)));
    let mut set = tokio::task::JoinSet::new();
    for conn in readers.conns {
        let queue = queue.clone();
        let db = db.to_string();
        let dir = dir.to_path_buf();
        let progress = progress.clone();
        let overall = overall.clone();
        set.spawn(async move { reader(conn, queue, db, dir, progress, overall, policy).await });
    }
    let mut done: Vec<PartDone> = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(mut d)) => done.append(&mut d),
            Ok(Err(e)) => {
                set.abort_all();
                overall.finish_and_clear();
                return Err(e);
            }
            Err(e) => {
                set.abort_all();
                overall.finish_and_clear();
                return Err(anyhow!("an export reader crashed: {e}"));
            }
        }
    }
    overall.finish_and_clear();
    let mut by_table: BTreeMap<String, Vec<PartDone>> = BTreeMap::new();
    for d in done {
        by_table.entry(d.table.clone()).or_default().push(d);
    }
    let mut entries = Vec::new();
    for (name, mut parts) in by_table {
        parts.sort_by_key(|p| p.part);
        entries.push(table_entry(&plans[&name], parts));
    }
    Ok((entries, reader_count, readers.synchronized_by))
}

async fn reader(
    mut conn: Conn,
    queue: Arc<Mutex<VecDeque<Work>>>,
    db: String,
    dir: PathBuf,
    progress: Progress,
    overall: ProgressBar,
    policy: InvalidPolicy,
) -> Result<Vec<PartDone>> {
    let mut done = Vec::new();
    loop {
        let next = queue
            .lock()
            .map_err(|_| anyhow!("work queue poisoned"))?
            .pop_front();
        let Some(work) = next else { break };
        done.push(export_part(&mut conn, &db, &work, &dir, &progress, &overall, policy).await?);
    }
    let _ = conn.disconnect().await;
    Ok(done)
}

async fn export_part(
    conn: &mut Conn,
    db: &str,
    work: &Work,
    dir: &Path,
    progress: &Progress,
    overall: &ProgressBar,
    policy: InvalidPolicy,
) -> Result<PartDone> {
    let plan = &work.plan;
    let name = &plan.meta.name;
    let (file, label) = if work.parts == 1 {
        (layout::csv_file_name(name), name.clone())
    } else {
        (
            layout::csv_part_name(name, work.part),
            format!("{name} {}/{}", work.part, work.parts),
        )
    };
    let clock = Instant::now();
    let names: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
    let mut writer = TableWriter::create(
        &dir.join(&file),
        name,
        names.clone(),
        plan.rules.clone(),
        plan.pk.clone(),
        policy,
    )?;
    let bar = progress.rows(&label, plan.meta.estimated_rows / work.parts as u64);
    const STEP: u64 = 1024;
    let raw: Vec<bool> = plan.rules.iter().map(|r| *r == Rule::Base64).collect();
    mysql::stream_table(
        conn,
        db,
        name,
        &names,
        &raw,
        work.range.as_ref(),
        |values| {
            writer.write_row(values)?;
            if writer.rows() % STEP == 0 {
                bar.set_position(writer.rows());
                bar.set_message(human_bytes(writer.bytes()));
                overall.inc(STEP);
            }
            Ok(())
        },
    )
    .await
    .with_context(|| format!("exporting table `{name}`"))?;
    overall.inc(writer.rows() % STEP);
    let written = writer
        .finish()
        .with_context(|| format!("exporting table `{name}`"))?;
    bar.finish_and_clear();
    progress.note(format!(
        "exported `{label}`: {} rows, {} in {:.1} s",
        written.rows,
        human_bytes(written.bytes),
        clock.elapsed().as_secs_f64()
    ));
    Ok(PartDone {
        table: name.clone(),
        part: work.part,
        file,
        range: work
            .range
            .as_ref()
            .map(|r| r.condition())
            .unwrap_or_default(),
        written,
    })
}

/// The manifest entry of a table from its part(s), in key order.
fn table_entry(plan: &TablePlan, parts: Vec<PartDone>) -> TableEntry {
    let n = plan.columns.len();
    let mut stats = vec![encode::ColumnStats::default(); n];
    let mut non_uuid: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut nulls: Vec<Vec<String>> = vec![Vec::new(); n];
    for p in &parts {
        for i in 0..n {
            stats[i].add(&p.written.stats[i]);
            non_uuid[i].extend(p.written.non_uuid_samples[i].iter().cloned());
            nulls[i].extend(p.written.null_samples[i].iter().cloned());
            non_uuid[i].truncate(5);
            nulls[i].truncate(5);
        }
    }
    let mut warnings = Vec::new();
    if !plan.meta.engine.eq_ignore_ascii_case("InnoDB") && !plan.meta.engine.is_empty() {
        warnings.push(format!(
            "engine {} is not transactional: its rows are not covered by the snapshot",
            plan.meta.engine
        ));
    }
    let mut columns = Vec::new();
    for (i, c) in plan.columns.iter().enumerate() {
        let s = &stats[i];
        if s.non_uuid > 0 {
            warnings.push(format!(
                "column `{}` (char(36)): {} values are neither empty nor a UUID and will fail a uuid column, e.g. {}",
                c.name,
                s.non_uuid,
                non_uuid[i].join("; ")
            ));
        }
        let fixed = s.nul_stripped + s.invalid_utf8_replaced + s.json_nul_dropped;
        if fixed > 0 {
            warnings.push(format!(
                "column `{}`: {fixed} values changed by --on-invalid fix",
                c.name
            ));
        }
        columns.push(ColumnEntry {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            column_type: c.column_type.clone(),
            nullable: c.nullable,
            rule: plan.rules[i].name().into(),
            stats: s.clone(),
            non_uuid_samples: non_uuid[i].clone(),
            null_samples: nulls[i].clone(),
        });
    }
    let rows = parts.iter().map(|p| p.written.rows).sum();
    let bytes = parts.iter().map(|p| p.written.bytes).sum();
    let (sha256, part_entries) = if parts.len() == 1 && parts[0].range.is_empty() {
        (parts[0].written.sha256.clone(), Vec::new())
    } else {
        (
            String::new(),
            parts
                .iter()
                .map(|p| PartEntry {
                    file: p.file.clone(),
                    rows: p.written.rows,
                    bytes: p.written.bytes,
                    sha256: p.written.sha256.clone(),
                    range: p.range.clone(),
                })
                .collect(),
        )
    };
    TableEntry {
        name: plan.meta.name.clone(),
        file: parts.first().map(|p| p.file.clone()).unwrap_or_default(),
        rows,
        bytes,
        sha256,
        engine: plan.meta.engine.clone(),
        columns,
        primary_key: plan.meta.primary_key.clone(),
        generated_columns: plan.generated.clone(),
        warnings,
        parts: part_entries,
    }
}

/// Write the manifest, fsync it and the directory, then rename the directory to its
/// final name and fsync the parent: only now is the export visible.
fn seal(m: &Manifest, paths: &layout::ExportPaths) -> Result<()> {
    use std::io::Write;
    let path = layout::manifest_path(&paths.tmp_dir);
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut text = serde_json::to_vec_pretty(m).context("serialising the manifest")?;
    text.push(b'\n');
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    fsync_dir(&paths.tmp_dir)?;
    std::fs::rename(&paths.tmp_dir, &paths.final_dir).with_context(|| {
        format!(
            "renaming {} to {}",
            paths.tmp_dir.display(),
            paths.final_dir.display()
        )
    })?;
    if let Some(parent) = paths.final_dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsyncing directory {}", dir.display()))
}

fn warn_stale_partials(parent: &Path, progress: &Progress) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if layout::is_partial(&name) {
            progress.warn(format!(
                "{} is left from an interrupted export (never importable); delete it to free space",
                e.path().display()
            ));
        }
    }
}

fn summary(m: &Manifest) -> String {
    let mut t = Table::new(["table", "rows", "size", "rewrites", "warnings"]);
    for e in m.tables.values() {
        let mut rewrites = Vec::new();
        let sum =
            |f: fn(&encode::ColumnStats) -> u64| e.columns.iter().map(|c| f(&c.stats)).sum::<u64>();
        for (label, n) in [
            ("''→NULL uuid", sum(|s| s.empty_uuid_to_null)),
            ("zero date→NULL", sum(|s| s.zero_date_to_null)),
            (
                "fixed",
                sum(|s| s.nul_stripped + s.invalid_utf8_replaced + s.json_nul_dropped),
            ),
        ] {
            if n > 0 {
                rewrites.push(format!("{n} {label}"));
            }
        }
        t.row([
            e.name.clone(),
            e.rows.to_string(),
            human_bytes(e.bytes),
            rewrites.join(", "),
            e.warnings.len().to_string(),
        ]);
    }
    t.row([
        format!("{} tables", m.summary.total_tables),
        m.summary.total_rows.to_string(),
        human_bytes(m.summary.total_bytes),
        String::new(),
        m.warnings.len().to_string(),
    ]);
    t.render()
}
