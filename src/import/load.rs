//! Running the plan: the statements of `Plan::statements`, in order, in ONE transaction on
//! one session, each journalled as it runs; each COPY is fed by `copy`. When a value is
//! outside the binary converters' exact forms, that attempt is rolled back and the whole
//! import starts over with the table loaded as CSV, so PostgreSQL reads the value itself.
//! When a row breaks a constraint, the load runs once more without the constraints, in a
//! transaction rolled back at its end, to list every violation (`diagnose`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use crate::db::postgres;
use crate::hint::with_hint;
use crate::import::builds::Builds;
use crate::import::collisions::Violations;
use crate::import::copy::{Evaluated, Failure, copy_file, evaluate};
use crate::import::guard::{self, Escaped, Guard};
use crate::import::loaded::{copy_count_differs, refuse_orphans, rows_at, with_touched};
use crate::import::pipeline::{Pipeline, loads_into, ready_first};
use crate::import::plan::{BuildCheck, Feed, Plan, Statement, Touch};
use crate::import::rebuild::orphans;
use crate::import::transaction::{CommitLost, Steps, TableLoaded, TxState, put_sequences_back};
use crate::progress::Progress;
use crate::store::export_dir::ExportDir;
use crate::store::journal::Journal;

/// What the loader works with besides the plan.
pub struct Env<'a> {
    pub dir: &'a ExportDir,
    pub progress: &'a Progress,
    pub journal: &'a mut Journal,
    /// `migrate`: datasets arrive as the export finishes them.
    pub pipeline: Option<&'a mut Pipeline>,
    /// The load runs again to list every violation (`diagnose`): nothing it loads is kept.
    pub diagnosis: bool,
}

/// Load everything and commit; returns each table's rows and time.
pub async fn load(
    client: &mut tokio_postgres::Client,
    plan: &Plan,
    env: &mut Env<'_>,
    state: &mut TxState,
) -> Result<Vec<TableLoaded>> {
    // The resets (ALTER SEQUENCE RESTART) roll back with the transaction, but ROLLBACK
    // does not undo the setval fallback or the nextval of hooks and triggers: where the
    // sequences stand now, to put them back if nothing is kept.
    state.sequences = Some(postgres::sequence_positions(client).await?);
    let result = attempts(client, plan, env, state).await;
    let kept = result.is_ok() && !plan.rehearse;
    // COMMIT without answer, or a hook that ended the transaction: something may be
    // kept, and sequences put back could hand out values that exist.
    let maybe_kept = matches!(&result, Err(e) if e.downcast_ref::<CommitLost>().is_some())
        || state.escaped.is_some();
    if !kept && !maybe_kept {
        put_sequences_back(client, state, env.progress, env.journal).await;
    }
    state.settled = true;
    result
}

/// Attempts until one ends: a table whose value the binary converter cannot take
/// exactly is retried as CSV.
async fn attempts(
    client: &mut tokio_postgres::Client,
    plan: &Plan,
    env: &mut Env<'_>,
    state: &mut TxState,
) -> Result<Vec<TableLoaded>> {
    let mut as_csv = BTreeSet::new();
    loop {
        let statements = plan.statements(&as_csv);
        match attempt(client, &statements, plan, &as_csv, env, state).await {
            Ok(done) => return Ok(done),
            Err(Failure::NotBinary { table, file, stop }) if as_csv.insert(table.clone()) => {
                let msg = format!(
                    "table `{table}`, {file}: {stop}: rolled back, starting over with `{table}` loaded as CSV"
                );
                env.progress.warn(&msg);
                env.journal.rolled_back(&msg);
            }
            Err(Failure::NotBinary { table, file, stop }) => {
                bail!("table `{table}`, {file}: {stop}")
            }
            Err(Failure::Error(e)) => {
                return Err(match plan.diagnosis(&as_csv) {
                    Some(_) if broke_constraint(&e) => {
                        diagnose(client, plan, &as_csv, env, e).await
                    }
                    _ => e,
                });
            }
        }
    }
}

/// The server refused a row for a PRIMARY KEY, UNIQUE, EXCLUDE, CHECK or NOT NULL
/// constraint (its SQLSTATE, as `postgres::error` spells it).
fn broke_constraint(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let text = c.to_string();
        ["(23505)", "(23P01)", "(23514)", "(23502)"]
            .iter()
            .any(|code| text.contains(code))
    })
}

/// After a load that a constraint stopped at its first violation: load again without
/// the constraints, in a transaction rolled back at its end, and list every violation
/// (a table the binary converter cannot take exactly is loaded as CSV, as in the load).
/// The first error stands, said so, when the diagnosis finds none or cannot run.
async fn diagnose(
    client: &mut tokio_postgres::Client,
    plan: &Plan,
    as_csv: &BTreeSet<String>,
    env: &mut Env<'_>,
    first: anyhow::Error,
) -> anyhow::Error {
    let msg = "a row breaks a constraint of the target: loading again without the target's \
               constraints, in a transaction rolled back at its end, to list every violation at once";
    env.progress.warn(msg);
    env.journal.rolled_back(&format!("{first:#}"));
    env.journal.line(format!("DIAGNOSIS: {msg}"));
    let mut as_csv = as_csv.clone();
    let result = loop {
        let Some(statements) = plan.diagnosis(&as_csv) else {
            break Err("no diagnosis for this plan".to_string());
        };
        let mut scratch = TxState::default();
        env.diagnosis = true;
        let r = attempt(client, &statements, plan, &as_csv, env, &mut scratch).await;
        env.diagnosis = false;
        // The listing's transaction ends rolled back, whatever stops it.
        let listing = "the listing of what breaks a constraint: nothing it loaded is kept";
        match &r {
            Err(Failure::NotBinary { table, file, stop }) if !as_csv.contains(table) => {
                env.journal.rolled_back(&format!(
                    "the listing: table `{table}`, {file}: {stop}: starting over with \
                     `{table}` loaded as CSV"
                ));
            }
            Err(_) => env.journal.rolled_back(listing),
            Ok(_) => {}
        }
        match r {
            Err(Failure::Error(e)) if e.downcast_ref::<Violations>().is_some() => break Ok(e),
            Err(Failure::NotBinary { table, .. }) if as_csv.insert(table.clone()) => {}
            Err(Failure::NotBinary { table, stop, .. }) => {
                break Err(format!("table `{table}`: {stop}"));
            }
            Err(Failure::Error(e)) => break Err(format!("{e:#}")),
            Ok(_) => {
                break Err(
                    "loaded without the constraints, the listing found no row that breaks \
                     one it checks (an EXCLUDE constraint is left to the server's own error; \
                     or a value differs from one load to the next)"
                        .to_string(),
                );
            }
        }
    };
    match result {
        Ok(e) => {
            env.journal.line(format!("DIAGNOSIS: {e}"));
            let hint = e
                .downcast_ref::<Violations>()
                .map(|v| crate::import::plan::collisions::hint(&v.0))
                .unwrap_or_default();
            with_hint(e, hint)
        }
        Err(why) => {
            env.progress.warn(format!(
                "could not list every violation ({why}): the first one is reported"
            ));
            env.journal.line(format!("DIAGNOSIS failed: {why}"));
            first
        }
    }
}

/// The import's bar over all tables.
enum Overall {
    Bytes(indicatif::ProgressBar),
    Rows(indicatif::ProgressBar),
}

/// One attempt: every statement in one transaction. Dropping the transaction on any
/// error rolls it back.
async fn attempt(
    client: &mut tokio_postgres::Client,
    statements: &[Statement],
    plan: &Plan,
    as_csv: &BTreeSet<String>,
    env: &mut Env<'_>,
    state: &mut TxState,
) -> Result<Vec<TableLoaded>, Failure> {
    let nulls = plan.nulls;
    let (Some(Statement::Begin), Some(end @ (Statement::Commit | Statement::Rollback))) =
        (statements.first(), statements.last())
    else {
        return Err(anyhow!(
            "an import plan must begin with BEGIN and end with COMMIT or ROLLBACK"
        )
        .into());
    };
    let tx = client.transaction().await.map_err(postgres::error)?;
    state.began = true;
    env.journal.sql(Statement::Begin.text());
    // migrate: the files are still being written, so the total grows as each dataset's
    // files are complete (a size read now would be a partial file's).
    let mut sizes = match env.pipeline {
        Some(_) => BTreeMap::new(),
        None => table_sizes(env.dir, statements),
    };
    // One bar over all tables: the files' bytes; under migrate, whose files are still
    // being written (a byte total that grew as they completed would not be true), rows
    // against the source's estimate, as the export's bar counts them. Each table's own
    // bar has its files' size, complete before its COPY starts.
    let overall = match env.pipeline.as_deref() {
        Some(p) => Some(Overall::Rows(
            env.progress.rows("import: all tables", p.estimated_rows),
        )),
        None => (!sizes.is_empty()).then(|| {
            Overall::Bytes(
                env.progress
                    .bytes("import: all tables", sizes.values().sum()),
            )
        }),
    };
    let mut done = Vec::new();
    let mut constants: Vec<Option<Evaluated>> = Vec::new();
    let mut table_rows = 0;
    // Seconds of each dataset's own statements (its COPYs, its INSERT from staging): not
    // the index builds of the table before it, nor the wait for its files.
    let mut spent: BTreeMap<String, f64> = BTreeMap::new();
    let mut bar = None;
    let mut builds = Builds::new(statements);
    let mut queue: VecDeque<Statement> = statements[1..statements.len() - 1].to_vec().into();
    let mut guard: Option<Guard> = None;
    let mut resolved: BTreeSet<String> = BTreeSet::new();
    let mut staged_rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut touched: BTreeMap<(String, Touch), u64> = BTreeMap::new();
    state.steps = Steps::default();
    // Foreign keys the server validated when a rebuild added them back after both their
    // tables were loaded: their orphan check has been done.
    let mut validated: Vec<crate::db::catalog::ForeignKey> = Vec::new();
    // Foreign keys found with rows without a parent (not allowed): the COMMIT is refused
    // once the checks that follow one another are done, naming every one.
    let mut orphaned: Vec<String> = Vec::new();
    // Foreign keys a rebuild could not add back over orphans: named with those, and not
    // checked again.
    let mut not_added: Vec<crate::import::rebuild::Orphaned> = Vec::new();
    loop {
        if let (Some(Statement::Copy(c)), Some(pipeline)) =
            (queue.front(), env.pipeline.as_deref_mut())
            && !resolved.contains(&c.dataset)
        {
            let waited = Instant::now();
            ready_first(&mut queue, pipeline, &resolved).await?;
            state.steps.waiting_for_export += waited.elapsed().as_secs_f64();
        }
        let Some(stmt) = queue.pop_front() else {
            break;
        };
        if !orphaned.is_empty() && !matches!(stmt, Statement::CheckOrphans { .. }) {
            return Err(refuse_orphans(&not_added, &orphaned, plan).into());
        }
        // migrate: a dataset's COPYs are planned when its files are complete.
        if let (Statement::Copy(c), Some(pipeline)) = (&stmt, env.pipeline.as_deref_mut())
            && !resolved.contains(&c.dataset)
        {
            let dataset = c.dataset.clone();
            let waited = Instant::now();
            let replanned = pipeline.copies(&dataset, plan, as_csv).await?;
            state.steps.waiting_for_export += waited.elapsed().as_secs_f64();
            said_of(env, &replanned.adaptations);
            for w in &replanned.warnings {
                env.progress.warn(w);
                env.journal.line(format!("warning: {w}"));
            }
            let copies = replanned.copies;
            // The plan said binary before the files were written; say what is done, and
            // why (a table already forced to CSV by a restart was said so then).
            let longest = copies
                .iter()
                .filter(|x| {
                    x.longest
                        .is_some_and(|l| l > crate::memory::BINARY_RECORD_MAX)
                })
                .max_by_key(|x| x.longest);
            if matches!(c.feed, Feed::Binary(..))
                && copies.iter().any(|x| !matches!(x.feed, Feed::Binary(..)))
                && let Some(x) = longest
            {
                let msg = format!(
                    "as CSV: `{}`: {} holds a record of {} bytes, longer than the binary \
                     converter takes ({} bytes)",
                    x.table,
                    x.file,
                    x.longest.unwrap_or_default(),
                    crate::memory::BINARY_RECORD_MAX
                );
                env.progress.note(&msg);
                env.journal.line(&msg);
            }
            let complete: Vec<Statement> = copies.iter().cloned().map(Statement::Copy).collect();
            for (table, n) in table_sizes(env.dir, &complete) {
                *sizes.entry(table).or_default() += n;
            }
            resolved.insert(dataset.clone());
            queue.retain(|s| !matches!(s, Statement::Copy(x) if x.dataset == dataset));
            for c in copies.into_iter().rev() {
                queue.push_front(Statement::Copy(c));
            }
            continue;
        }
        let stmt = &stmt;
        if let Statement::CheckOrphans { check, .. } = stmt
            && not_added.iter().any(|o| o.fk == check.fk)
        {
            continue;
        }
        if let Statement::CheckOrphans { check, .. } = stmt
            && check.within.is_none()
            && validated.contains(&check.fk)
        {
            env.journal.line(format!(
                "{}: validated by the server when it was added back after both tables were \
                 loaded: no orphan rows",
                check.fk.describe()
            ));
            continue;
        }
        // An upsert with a clash path, or an INSERT a row's error is searched in,
        // journals its own statements, savepoint included.
        if !matches!(
            stmt,
            Statement::Insert { clash: Some(_), .. }
                | Statement::Insert {
                    search: Some(_),
                    ..
                }
        ) {
            env.journal.terminated(&stmt.terminated());
        }
        let step_clock = Instant::now();
        match stmt {
            Statement::Sql {
                sql,
                context,
                hint_if_denied,
            } => {
                if let Err(e) = tx.batch_execute(sql).await {
                    let denied = e.as_db_error().is_some_and(|d| d.code().code() == "42501");
                    let err = postgres::error(e).context(context.clone());
                    return Err(match hint_if_denied {
                        Some(h) if denied => with_hint(err, *h),
                        _ => err,
                    }
                    .into());
                }
            }
            Statement::Tally { sql, context } => {
                let rows = tx
                    .query(sql.as_str(), &[])
                    .await
                    .map_err(postgres::error)
                    .with_context(|| context.clone())?;
                for r in rows {
                    let touch = Touch::from_name(r.get(1)).ok_or_else(|| {
                        anyhow!("{context}: an unknown count `{}`", r.get::<_, String>(1))
                    })?;
                    *touched.entry((r.get(0), touch)).or_default() += r.get::<_, i64>(2) as u64;
                }
            }
            Statement::Counted {
                table,
                sql,
                context,
                touch,
            } => {
                let n = tx
                    .execute(sql.as_str(), &[])
                    .await
                    .map_err(postgres::error)
                    .with_context(|| context.clone())?;
                *touched.entry((table.clone(), *touch)).or_default() += n;
            }
            Statement::Copy(copy) => {
                let table_bar = bar.get_or_insert_with(|| {
                    env.progress
                        .bytes(&copy.table, sizes.get(&copy.table).copied().unwrap_or(0))
                });
                // A bar of rows moves with the file's bytes, at its rows per byte.
                let file_bytes = std::fs::metadata(env.dir.file(&copy.file))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let mut sent = 0u64;
                let mut credited = 0u64;
                let on_bytes = |n| {
                    table_bar.inc(n);
                    match &overall {
                        Some(Overall::Bytes(bar)) => bar.inc(n),
                        Some(Overall::Rows(bar)) => {
                            sent += n;
                            let due = rows_at(sent, file_bytes, copy.rows);
                            bar.inc(due.saturating_sub(credited));
                            credited = credited.max(due);
                        }
                        None => {}
                    }
                };
                let rows = copy_file(&tx, copy, nulls, env.dir, &constants, on_bytes).await?;
                *spent.entry(copy.dataset.clone()).or_default() +=
                    step_clock.elapsed().as_secs_f64();
                // The file's sha256 was checked as it was sent; its records as COPY counts them.
                if let Some(want) = copy.rows
                    && rows != want
                {
                    return Err(copy_count_differs(copy, rows, want).into());
                }
                table_rows += rows;
                if let Some(Overall::Rows(bar)) = &overall {
                    bar.inc(rows.saturating_sub(credited));
                }
                if copy.last {
                    if let Some(b) = bar.take() {
                        b.finish_and_clear();
                    }
                    if let Some(expected) = copy.expected_rows
                        && table_rows != expected
                    {
                        return Err(anyhow!(
                            "table `{}`: COPY loaded {table_rows} rows but the manifest says {expected}",
                            copy.table
                        )
                        .into());
                    }
                    if copy.staged {
                        staged_rows.insert(copy.dataset.clone(), table_rows);
                    } else {
                        let seconds = spent.remove(&copy.dataset).unwrap_or_default();
                        done.push(loaded(env, &copy.dataset, &copy.table, table_rows, seconds));
                    }
                    table_rows = 0;
                }
            }
            Statement::Index(step) if step.build => {
                let clock = Instant::now();
                builds.started(env.progress, step);
                let mut added = true;
                if let Err(e) = crate::import::rebuild::run(&tx, step).await {
                    let Some(o) = e.downcast_ref::<crate::import::rebuild::Orphaned>() else {
                        return Err(e.into());
                    };
                    env.journal
                        .line(format!("refusing, once the orphan checks ran: {o}"));
                    not_added.push(o.clone());
                    added = false;
                }
                builds.finished(env.journal, env.progress, step, clock, &mut done);
                // A foreign key added back validated once neither of its tables loads
                // any more rows (and no `after` hook runs) has had its orphan check; one
                // that could not be added back is named already.
                if let Some(BuildCheck::Orphans(check)) = &step.check
                    && added
                    && plan.after.is_empty()
                    && !queue
                        .iter()
                        .any(|s| loads_into(s, &check.fk.child, &check.fk.parent))
                {
                    validated.push(check.fk.clone());
                }
            }
            Statement::Index(step) => crate::import::rebuild::run(&tx, step).await?,
            Statement::Evaluate { slot, constant } => {
                let value = evaluate(&tx, constant).await?;
                if constants.len() <= *slot {
                    constants.resize(*slot + 1, None);
                }
                env.journal.line(format!(
                    "set {}.{} = {}",
                    constant.table,
                    constant.column,
                    value.text.as_deref().unwrap_or("NULL")
                ));
                constants[*slot] = Some(value);
            }
            Statement::Insert {
                dataset,
                table,
                sql,
                expected_rows,
                keyed,
                clash,
                search,
            } => {
                let moved = match (clash, search) {
                    (Some(clash), _) => {
                        crate::import::clash::upsert(&tx, table, sql, clash, env.journal).await?
                    }
                    (None, Some(search)) => {
                        crate::import::culprit::insert(&tx, sql, search, env.journal, env.progress)
                            .await?
                    }
                    (None, None) => tx.execute(sql.as_str(), &[]).await,
                };
                let rows = match moved {
                    Ok(n) => n,
                    // Two rows of a followed dataset with one source key: the map cannot
                    // hold both (said plainly; no listing, which would stop the same way).
                    Err(e)
                        if *keyed
                            && e.as_db_error()
                                .is_some_and(|d| d.constraint() == Some("key_map_pkey")) =>
                    {
                        let detail = e
                            .as_db_error()
                            .and_then(|d| d.detail())
                            .unwrap_or_default()
                            .to_string();
                        return Err(with_hint(
                            anyhow!(
                                "dataset `{dataset}` has two rows with one source key, which \
                                 key_of could not tell apart ({})",
                                crate::escape::text(&detail)
                            ),
                            format!(
                                "the key of `{dataset}` must be unique: name unique columns in \
                                 `[tables.{dataset}]` `key = [...]`, or make the query return \
                                 one row per key"
                            ),
                        )
                        .into());
                    }
                    Err(e) => {
                        return Err(postgres::error(e)
                            .context(format!(
                                "moving `{dataset}` from its staging table into `{table}`"
                            ))
                            .into());
                    }
                };
                // Every staged row moves: the COPY into staging counted them (checked
                // against the files' manifest). The plan's own count is only a fallback:
                // `migrate` plans before the export has counted anything.
                let expected = staged_rows.get(dataset).copied().or(*expected_rows);
                if let Some(expected) = expected
                    && rows != expected
                {
                    return Err(anyhow!(
                        "table `{table}`: INSERT moved {rows} of the {expected} staged rows of `{dataset}`"
                    )
                    .into());
                }
                if *keyed {
                    env.journal.line(format!(
                        "key map: `{dataset}`: {rows} keys recorded in pgconverge.key_map"
                    ));
                }
                let seconds =
                    spent.remove(dataset).unwrap_or_default() + step_clock.elapsed().as_secs_f64();
                done.push(loaded(env, dataset, table, rows, seconds));
            }
            Statement::CountRows { schema, tables } => {
                for table in tables {
                    let copied: u64 = done
                        .iter()
                        .filter(|d| &d.table == table)
                        .map(|d| d.rows)
                        .sum();
                    let now = postgres::count_rows(&tx, schema, table).await?;
                    let delta = now as i64 - copied as i64;
                    if delta != 0 {
                        env.journal.line(format!(
                            "`{table}`: {now} rows after hooks and triggers, {copied} loaded ({delta:+})"
                        ));
                        state.adjustments.insert(table.clone(), delta);
                    }
                }
            }
            Statement::CheckOrphans { check, allow } => {
                if let Some(orphans) = orphans(&tx, check).await? {
                    if !allow {
                        // Refused once every foreign key has been checked: all are named.
                        orphaned.push(orphans);
                        state.steps.add(stmt, step_clock.elapsed().as_secs_f64());
                        continue;
                    }
                    env.progress.warn(&orphans);
                    env.journal
                        .line(format!("WARNING (--allow-orphans): {orphans}"));
                }
            }
            Statement::RecordXid => {
                let g = guard::begin(&tx).await?;
                env.journal
                    .line(format!("transaction {} (backend pid {})", g.xid, g.pid));
                (state.xid, state.pid) = (Some(g.xid), Some(g.pid));
                guard = Some(g);
            }
            Statement::CheckTransaction { hook, role } => {
                let Some(g) = &guard else {
                    return Err(anyhow!("a hook ran before the transaction id was taken").into());
                };
                let set_back = match g.after_hook(&tx, hook, role).await {
                    Ok(set_back) => set_back,
                    Err(e) => {
                        if let Some(escaped) = e.downcast_ref::<Escaped>() {
                            state.escaped = Some(escaped.committed());
                            env.journal.line(format!("STOPPED: {escaped}"));
                            env.journal.sql_with(
                                "ROLLBACK",
                                Some("whatever transaction the hook left open"),
                            );
                        }
                        return Err(e.into());
                    }
                };
                // The load reads the rest under the import's settings: said, and in the
                // journal as the statements that did it (a replay does the same).
                for s in &set_back {
                    let why = format!(
                        "{hook} set {} to '{}': set back to '{}' (the import reads and prints \
                         values under its own settings)",
                        s.name, s.hook, s.import
                    );
                    env.progress.warn(&why);
                    env.journal.line(&why);
                    env.journal.sql_with(s.sql(), Some(&why));
                }
            }
            Statement::Collisions {
                rules,
                keys,
                unchecked,
            } => {
                let found = crate::import::collisions::find(&tx, rules, keys).await?;
                if !found.is_empty() {
                    return Err(anyhow::Error::new(Violations(found, unchecked.clone())).into());
                }
            }
            Statement::Begin | Statement::Commit | Statement::Rollback => {
                return Err(
                    anyhow!("BEGIN, COMMIT or ROLLBACK inside the import transaction").into(),
                );
            }
        }
        state.steps.add(stmt, step_clock.elapsed().as_secs_f64());
    }
    if !orphaned.is_empty() || !not_added.is_empty() {
        return Err(refuse_orphans(&not_added, &orphaned, plan).into());
    }
    match overall {
        Some(Overall::Bytes(bar)) => bar.finish_and_clear(),
        // The estimate was the source's: the bar closes at the rows loaded.
        Some(Overall::Rows(bar)) => {
            bar.set_length(bar.position());
            bar.finish_and_clear();
        }
        None => {}
    }
    if !touched.is_empty() {
        with_touched(&mut done, &touched);
    }
    if let Statement::Rollback = end {
        env.journal.terminated(&end.terminated());
        tx.rollback()
            .await
            .map_err(postgres::error)
            .context("rolling the rehearsal back")?;
        return Ok(done);
    }
    // The audit trail is part of the contract: a journal that could not be written
    // rolls the import back (nothing is committed without its record).
    let commit_clock = Instant::now();
    env.journal.sync()?;
    env.journal.sql(Statement::Commit.text());
    let Some(xid) = state.xid else {
        return Err(anyhow!("COMMIT without a recorded transaction id").into());
    };
    state.loaded = Some(done.clone());
    state.commit.mark(xid);
    match tx.commit().await {
        Ok(()) => {
            state
                .steps
                .add(&Statement::Commit, commit_clock.elapsed().as_secs_f64());
            Ok(done)
        }
        // The server answered: COMMIT failed and the transaction is rolled back.
        Err(e) if e.as_db_error().is_some() => {
            state.server_rolled_back = true;
            Err(postgres::error(e).context("committing").into())
        }
        // No answer: whether it committed is for the server to say.
        Err(e) => match (state.xid, state.pid) {
            (Some(xid), Some(pid)) => Err(anyhow::Error::new(CommitLost {
                xid,
                pid,
                cause: format!("{:#}", postgres::error(e)),
            })
            .into()),
            _ => Err(postgres::error(e).context("committing").into()),
        },
    }
}

/// Report a dataset as loaded, in `seconds` of its own statements.
fn loaded(env: &mut Env<'_>, dataset: &str, table: &str, rows: u64, seconds: f64) -> TableLoaded {
    let into = if dataset == table {
        format!("`{table}`")
    } else {
        format!("`{table}` from `{dataset}`")
    };
    let counted = crate::report::count(rows, "row");
    let line = match env.diagnosis {
        false => format!("loaded {into}: {counted} in {seconds:.1} s"),
        true => format!(
            "diagnosis: loaded {into} again without constraints: {counted} in {seconds:.1} s"
        ),
    };
    env.journal.line(&line);
    env.progress.note(&line);
    TableLoaded {
        dataset: dataset.to_string(),
        table: table.to_string(),
        rows,
        seconds,
        copy_seconds: seconds,
        index_seconds: 0.0,
        deleted: None,
        cascaded: None,
        cleared: None,
    }
}

/// What a dataset's load does to its values, known once its files are complete
/// (`migrate`): said, and in the journal, as the plan says it for `import`.
fn said_of(env: &mut Env<'_>, adaptations: &[String]) {
    for line in adaptations {
        env.progress.note(line);
        env.journal.line(line);
    }
}

/// Bytes of each table's files, for the progress bars (the pre-pass has read them all).
fn table_sizes(dir: &ExportDir, statements: &[Statement]) -> BTreeMap<String, u64> {
    let mut per_table = BTreeMap::new();
    for s in statements {
        if let Statement::Copy(c) = s {
            let n = std::fs::metadata(dir.file(&c.file)).map_or(0, |m| m.len());
            *per_table.entry(c.table.clone()).or_default() += n;
        }
    }
    per_table
}
