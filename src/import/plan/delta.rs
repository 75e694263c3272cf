//! PURE: a delta applied by key. The plan of the delta's upserted rows is built as for any
//! export (`build`: columns, adaptations, binary or CSV, `set`, sequences); this turns it
//! into the delta's statements: the chain's guard, the deleted keys copied into temporary
//! tables and deleted by key, the upserted rows copied into staging tables and merged with
//! `INSERT ... ON CONFLICT (key) DO UPDATE`, a table without a key emptied with DELETE and
//! reloaded, the source's foreign-key actions applied to the rows only the target still
//! holds, sequences moved forward, foreign keys checked for the touched keys, the chain's
//! new state. No TRUNCATE, no index rebuild, no ANALYZE.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::adapt::Adapt;
use crate::db::catalog::Catalog;
use crate::db::sql::pg::{ident, literal, qualified};
use crate::import::compute;
use crate::mapping::Mapping;
use crate::store::chain::{self, Cascade, HOW_COLUMN, KeyFile, TableDelta};
use crate::store::manifest::Manifest;

use super::statements::{ORIGIN, REPLICA, hooks};
use super::{Clash, Copy, Feed, OrphanCheck, Plan, Shape, Statement, TableLoad, sequences};

/// The chain's SQL for this import, from `db::state`: the guard run first in the
/// transaction, and the record of the new state run last.
pub struct StateSql {
    pub guard: Vec<String>,
    pub record: Vec<String>,
}

/// A delta's keys file loaded into a temporary table.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysLoad {
    pub temp: String,
    pub create: String,
    pub copy: Copy,
}

/// One dataset of a delta.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaTable {
    pub dataset: String,
    pub table: String,
    pub upserts: u64,
    pub deletes: u64,
    /// Copied whole (and why): DELETE, then COPY.
    pub whole: Option<String>,
    /// The target's key columns rows are matched on.
    pub key: Vec<String>,
    /// The deleted keys, and the DELETE that applies them.
    pub delete: Option<(KeysLoad, String)>,
    /// The keys the log removed (a cascading parent) and those removed here by a cascade.
    pub gone: Option<KeysLoad>,
    /// The staging table of the upserted rows: (name, CREATE, INSERT ... ON CONFLICT).
    pub upsert: Option<(String, String, String)>,
    /// The target has unique constraints besides its key: what the upsert does when
    /// they clash half-way.
    pub clash: Option<Clash>,
    /// Its rows' load (into the staging table, or the target for a whole copy).
    pub load: TableLoad,
}

/// A delta's part of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPlan {
    pub guard: Vec<String>,
    /// In load order (parents first).
    pub tables: Vec<DeltaTable>,
    /// The source's foreign-key actions, as (what, SQL), parents first.
    pub cascades: Vec<(String, String)>,
}

/// Turn `plan` (built from the delta's upserted rows) into the delta's. Problems go to
/// `plan.errors`, as every refusal of a plan.
pub fn apply(plan: &mut Plan, m: &Manifest, cat: &Catalog, mapping: &Mapping, state: StateSql) {
    let schema = plan.schema.clone();
    let mut tables = Vec::new();
    for (n, load) in plan.tables.iter().enumerate() {
        let Some(d) = m.tables.get(&load.dataset).and_then(|e| e.delta.as_ref()) else {
            plan.errors.push(format!(
                "dataset `{}` of the delta has no delta entry",
                load.dataset
            ));
            continue;
        };
        match delta_table(n, load, d, &schema, cat, mapping) {
            Ok(t) => tables.push(t),
            Err(e) => plan.errors.push(e),
        }
    }
    let cascades = m
        .delta
        .as_ref()
        .map(|i| {
            let cyclic = chain::cyclic(&i.cascades);
            let steps = cascade_steps(&i.cascades, &tables, mapping, &schema);
            if cyclic && !steps.is_empty() {
                vec![until_nothing_changes(&steps)]
            } else {
                steps
            }
        })
        .unwrap_or_default();
    let touched: BTreeSet<&str> = tables
        .iter()
        .filter(|t| t.upserts > 0 || t.whole.is_some())
        .map(|t| t.table.as_str())
        .collect();
    // A sequence moves forward when its table was written, or when the source's
    // AUTO_INCREMENT says so: ids drawn and deleted inside the delta leave no row to
    // write, but the source will not issue them again.
    plan.sequences.retain(|s| {
        s.columns.iter().any(|(t, _)| touched.contains(t.as_str()))
            || s.auto_increment.is_some_and(|n| n > 1)
    });
    for s in plan.sequences.iter_mut() {
        s.sql = sequences::forward_sql(s, &schema);
    }
    plan.orphan_checks = orphan_checks(plan, &tables, cat, m);
    plan.cascade.clear();
    plan.indexes.clear();
    plan.analyze = false;
    plan.before = mapping.hooks().delta_before.clone();
    plan.after = mapping.hooks().delta_after.clone();
    plan.count_after = !plan.before.is_empty() || !plan.after.is_empty();
    plan.record_state = state.record;
    plan.delta = Some(DeltaPlan {
        guard: state.guard,
        tables,
        cascades,
    });
}

/// A target column list, quoted.
fn cols(names: &[String]) -> String {
    names
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a.x = b.x AND ...` over pairs of columns.
fn equal(a: &str, a_cols: &[String], b: &str, b_cols: &[String]) -> String {
    a_cols
        .iter()
        .zip(b_cols)
        .map(|(x, y)| format!("{a}.{} = {b}.{}", ident(x), ident(y)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn delta_table(
    n: usize,
    load: &TableLoad,
    d: &TableDelta,
    schema: &str,
    cat: &Catalog,
    mapping: &Mapping,
) -> Result<DeltaTable, String> {
    let target = cat
        .tables
        .get(&load.table)
        .ok_or_else(|| format!("table `{}` is not in the target", load.table))?;
    let into = qualified(schema, &load.table);
    let key: Vec<String> = d
        .key
        .iter()
        .map(|k| mapping.target_column(&load.dataset, k))
        .collect();
    let mut t = DeltaTable {
        dataset: load.dataset.clone(),
        table: load.table.clone(),
        upserts: load.expected_rows.unwrap_or(0),
        deletes: d.deleted.rows,
        whole: d.full_copy.clone(),
        key: key.clone(),
        delete: None,
        gone: None,
        upsert: None,
        clash: None,
        load: load.clone(),
    };
    if t.whole.is_some() {
        // Emptied by DELETE in this transaction: COPY may not freeze its rows.
        t.load.freeze = false;
        return Ok(t);
    }
    let mut sorted_key = key.clone();
    sorted_key.sort();
    let mut sorted_pk = target.primary_key.clone();
    sorted_pk.sort();
    if sorted_pk != sorted_key {
        return Err(format!(
            "table `{}`: the delta matches rows on ({}) but the target's primary key is ({}): \
             an upsert needs ON CONFLICT on the key (hint: give the target a primary key on \
             those columns)",
            load.table,
            key.join(", "),
            target.primary_key.join(", ")
        ));
    }
    let positions: Vec<usize> = d
        .key
        .iter()
        .filter_map(|k| load.columns.iter().position(|c| c == k))
        .collect();
    if positions.len() != d.key.len() {
        return Err(format!(
            "table `{}`: the delta's key ({}) is not among its columns",
            load.table,
            d.key.join(", ")
        ));
    }
    let key_adapts: Vec<Adapt> = positions.iter().map(|&i| load.adapts[i]).collect();
    if d.deleted.rows > 0 {
        let temp = format!("pgconverge_delete_{n}");
        let keys = KeysLoad {
            create: temp_sql(&temp, &into, &key, false),
            copy: keys_copy(load, &temp, &d.deleted, &d.key, &key, &key_adapts, false),
            temp: temp.clone(),
        };
        let delete = format!(
            "DELETE FROM {into} t USING {} d WHERE {}",
            ident(&temp),
            equal("t", &key, "d", &key)
        );
        t.delete = Some((keys, delete));
    }
    if let Some(removed) = &d.removed {
        let temp = format!("pgconverge_gone_{n}");
        let mut adapts = key_adapts.clone();
        adapts.push(Adapt::None);
        t.gone = Some(KeysLoad {
            create: temp_sql(&temp, &into, &key, true),
            copy: keys_copy(load, &temp, removed, &d.key, &key, &adapts, true),
            temp,
        });
    }
    if t.upserts > 0 {
        let stage = format!("pgconverge_upsert_{n}");
        let upsert = stage_upsert(&mut t.load, &stage, schema, target, &key);
        // A table loaded with its triggers keeps the plain upsert: its rows set aside
        // and deleted would fire them (and cascade).
        if !t.load.fire {
            t.clash = clash_steps(&into, &upsert, target, &key);
        }
        t.upsert = Some(upsert);
    }
    Ok(t)
}

/// What an upsert does when the target's other unique or exclusion constraints clash
/// half-way (see [`Clash`]); None when the target has none.
fn clash_steps(
    into: &str,
    (stage, _, insert): &(String, String, String),
    target: &crate::db::catalog::PgTable,
    key: &[String],
) -> Option<Clash> {
    use crate::db::catalog::ConstraintKind;
    let other_unique = target.indexes.iter().any(|i| {
        let kind = i.constraint.as_ref().map(|c| c.kind);
        (i.unique && kind != Some(ConstraintKind::PrimaryKey))
            || kind == Some(ConstraintKind::Exclude)
    });
    if !other_unique {
        return None;
    }
    let aside = ident(&format!("{stage}_aside"));
    let staged = ident(stage);
    let inserted = inserted_columns(insert);
    // The columns the delta does not write keep their values (as an upsert's UPDATE
    // leaves them); a generated or ALWAYS identity column cannot be written back.
    let kept: Vec<String> = target
        .columns
        .iter()
        .filter(|c| !inserted.contains(&c.name) && !c.generated && c.identity != "a")
        .map(|c| format!("{} = a.{}", ident(&c.name), ident(&c.name)))
        .collect();
    let mut before = Vec::new();
    let mut after = Vec::new();
    if !kept.is_empty() {
        before.push(format!(
            "CREATE TEMP TABLE {aside} ON COMMIT DROP AS SELECT t.* FROM {into} t \
             JOIN {staged} s ON {}",
            equal("t", key, "s", key)
        ));
        after.push(format!(
            "UPDATE {into} t SET {} FROM {aside} a WHERE {}",
            kept.join(", "),
            equal("t", key, "a", key)
        ));
        after.push(format!("DROP TABLE {aside}"));
    }
    before.push(format!(
        "DELETE FROM {into} t USING {staged} s WHERE {}",
        equal("t", key, "s", key)
    ));
    Some(Clash { before, after })
}

/// A temporary table of the target's key columns (and the how column).
fn temp_sql(temp: &str, into: &str, key: &[String], how: bool) -> String {
    let how = if how {
        format!(", NULL::text AS {}", ident(HOW_COLUMN))
    } else {
        String::new()
    };
    format!(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {}{how} FROM {into} WITH NO DATA",
        ident(temp),
        cols(key)
    )
}

/// The COPY of a keys file into its temporary table, with the key columns' adaptations.
fn keys_copy(
    load: &TableLoad,
    temp: &str,
    file: &KeyFile,
    source_key: &[String],
    key: &[String],
    adapts: &[Adapt],
    how: bool,
) -> Copy {
    let mut columns: Vec<String> = source_key.to_vec();
    let mut into: Vec<String> = key.to_vec();
    if how {
        columns.push(HOW_COLUMN.into());
        into.push(HOW_COLUMN.into());
    }
    let feed = match adapts.iter().any(|a| *a != Adapt::None) {
        true => Feed::Rewrite(
            adapts.to_vec(),
            Shape {
                keep: vec![true; columns.len()],
                constants: Vec::new(),
            },
        ),
        false => Feed::Csv,
    };
    Copy {
        dataset: load.dataset.clone(),
        table: load.table.clone(),
        file: file.file.clone(),
        sha256: Some(file.sha256.clone()),
        longest: Some(file.longest_record),
        rows: Some(file.rows),
        sql: format!(
            "COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true, NULL E'\\\\N')",
            ident(temp),
            cols(&into)
        ),
        feed,
        last: true,
        expected_rows: Some(file.rows),
        key: (0..source_key.len()).collect(),
        columns,
        partitions: Vec::new(),
        staged: true,
    }
}

/// Route a dataset's rows into a staging table, and the INSERT that merges them into the
/// target by key: (stage, CREATE, INSERT ... ON CONFLICT).
fn stage_upsert(
    load: &mut TableLoad,
    stage: &str,
    schema: &str,
    target: &crate::db::catalog::PgTable,
    key: &[String],
) -> (String, String, String) {
    let into = qualified(schema, &load.table);
    // A dataset with a per-row `set` already loads through its own staging table.
    if let Some((stage, create, insert)) = &load.staging {
        let inserted = inserted_columns(insert);
        return (
            stage.clone(),
            create.clone(),
            format!("{insert}{}", on_conflict(key, &inserted)),
        );
    }
    let sent: Vec<String> = load
        .target_columns
        .iter()
        .zip(&load.shape.keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c.clone())
        .collect();
    let extra: Vec<String> = load.sets.iter().map(|s| s.column.clone()).collect();
    let all: Vec<String> = sent.iter().chain(&extra).cloned().collect();
    let stage_cols: Vec<(String, bool)> = all.iter().map(|c| (c.clone(), false)).collect();
    let create = compute::stage_create_sql(stage, schema, &load.table, &stage_cols);
    load.set_copy_target(&ident(stage), &sent, &extra);
    load.freeze = true;
    let identity = all.iter().any(|c| {
        target
            .columns
            .iter()
            .any(|t| &t.name == c && t.identity == "a")
    });
    let insert = format!(
        "INSERT INTO {into} ({}){} SELECT {} FROM {}{}",
        cols(&all),
        if identity {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        cols(&all),
        ident(stage),
        on_conflict(key, &all)
    );
    (stage.to_string(), create, insert)
}

/// The columns an `INSERT INTO t (a, b) ...` names.
fn inserted_columns(insert: &str) -> Vec<String> {
    let Some(open) = insert.find(" (") else {
        return Vec::new();
    };
    let rest = &insert[open + 2..];
    let Some(close) = rest.find(") ") else {
        return Vec::new();
    };
    rest[..close]
        .split(", ")
        .map(|c| c.trim_matches('"').replace("\"\"", "\""))
        .collect()
}

/// ` ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ...`: every inserted column but the
/// key (a table of key columns only rewrites its key, so that every staged row counts).
fn on_conflict(key: &[String], inserted: &[String]) -> String {
    let mut set: Vec<String> = inserted
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{} = EXCLUDED.{}", ident(c), ident(c)))
        .collect();
    if set.is_empty() {
        set = key
            .iter()
            .map(|c| format!("{} = EXCLUDED.{}", ident(c), ident(c)))
            .collect();
    }
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        cols(key),
        set.join(", ")
    )
}

/// The source's foreign-key actions on the rows only the target holds: target rows of the
/// child that reference a removed parent key and that this delta did not write. CASCADE
/// deletes them (and records them as gone, for the child's own children), SET NULL clears
/// their columns. Parents first.
fn cascade_steps(
    cascades: &[Cascade],
    tables: &[DeltaTable],
    mapping: &Mapping,
    schema: &str,
) -> Vec<(String, String)> {
    let by_dataset: BTreeMap<&str, &DeltaTable> =
        tables.iter().map(|t| (t.dataset.as_str(), t)).collect();
    let mut out = Vec::new();
    for i in chain::cascade_order(cascades) {
        let fk = &cascades[i];
        let (Some(child), Some(parent)) = (
            by_dataset.get(fk.child.as_str()),
            by_dataset.get(fk.parent.as_str()),
        ) else {
            continue;
        };
        let Some(gone) = &parent.gone else {
            continue;
        };
        if child.whole.is_some() {
            continue;
        }
        let child_cols: Vec<String> = fk
            .child_columns
            .iter()
            .map(|c| mapping.target_column(&fk.child, c))
            .collect();
        let parent_cols: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|c| mapping.target_column(&fk.parent, c))
            .collect();
        let into = qualified(schema, &child.table);
        let not_written = match &child.upsert {
            Some((stage, _, _)) => format!(
                " AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})",
                ident(stage),
                equal("s", &child.key, "c", &child.key)
            ),
            None => String::new(),
        };
        for how in [chain::HOW_DELETE, chain::HOW_UPDATE] {
            let Some(delete) = chain::action(fk, how) else {
                continue;
            };
            let matched = format!(
                "r.{} = {} AND {}{not_written}",
                ident(HOW_COLUMN),
                literal(how),
                equal("c", &child_cols, "r", &parent_cols)
            );
            let what = format!(
                "{} of `{}` for `{}` rows whose parent was removed ({how}; {})",
                if delete { "deleting" } else { "clearing" },
                fk.name,
                child.table,
                if delete { "CASCADE" } else { "SET NULL" }
            );
            let sql = if !delete {
                let set: Vec<String> = child_cols
                    .iter()
                    .map(|c| format!("{} = NULL", ident(c)))
                    .collect();
                format!(
                    "UPDATE {into} c SET {} FROM {} r WHERE {matched}",
                    set.join(", "),
                    ident(&gone.temp)
                )
            } else {
                let deleted = format!(
                    "DELETE FROM {into} c USING {} r WHERE {matched}",
                    ident(&gone.temp)
                );
                match &child.gone {
                    Some(child_gone) => {
                        let ret: Vec<String> = child
                            .key
                            .iter()
                            .map(|k| format!("c.{}", ident(k)))
                            .collect();
                        // A row deleted here is one the source no longer has under its
                        // key: moved with its parent's new key when the reference is
                        // part of its key (ON UPDATE CASCADE changed its key), else
                        // deleted (a moved row that stays would have been written).
                        let moved = how == chain::HOW_UPDATE
                            && child_cols.iter().all(|c| child.key.contains(c));
                        let went = if moved {
                            chain::HOW_UPDATE
                        } else {
                            chain::HOW_DELETE
                        };
                        format!(
                            "WITH gone AS ({deleted} RETURNING {}) INSERT INTO {} ({}, {}) \
                             SELECT {}, {} FROM gone",
                            ret.join(", "),
                            ident(&child_gone.temp),
                            cols(&child.key),
                            ident(HOW_COLUMN),
                            cols(&child.key),
                            literal(went)
                        )
                    }
                    None => deleted,
                }
            };
            out.push((what, sql));
        }
    }
    out
}

/// Cascades that form a cycle (a tree's self-reference, or a -> b -> a): every step
/// again, in one block, until a whole round deletes or clears nothing (each round's deleted rows
/// are removed keys the next round follows; a row cleared or deleted once no longer
/// matches, so the rounds end).
fn until_nothing_changes(steps: &[(String, String)]) -> (String, String) {
    let body: String = steps
        .iter()
        .map(|(_, sql)| format!("{sql}; GET DIAGNOSTICS n = ROW_COUNT; changed := changed + n; "))
        .collect();
    (
        format!(
            "applying the source's foreign-key actions round after round (they form a cycle): {}",
            steps
                .iter()
                .map(|(w, _)| w.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        format!(
            "DO {}",
            crate::db::sql::pg::dollar_quoted(&format!(
                "DECLARE n bigint; changed bigint; BEGIN LOOP changed := 0; {body}\
                 EXIT WHEN changed = 0; END LOOP; END"
            ))
        ),
    )
}

/// Foreign keys checked for the touched keys only: the rows a delta wrote must have their
/// parents, and no row may reference a key it deleted or removed. A whole copy, a parent
/// referenced through columns other than its key, or a child a cascade may have changed
/// is checked whole.
fn orphan_checks(
    plan: &Plan,
    tables: &[DeltaTable],
    cat: &Catalog,
    m: &Manifest,
) -> Vec<OrphanCheck> {
    let by_table: BTreeMap<&str, &DeltaTable> =
        tables.iter().map(|t| (t.table.as_str(), t)).collect();
    let cascaded: BTreeSet<&str> = m
        .delta
        .iter()
        .flat_map(|d| &d.cascades)
        .filter_map(|c| tables.iter().find(|t| t.dataset == c.child))
        .map(|t| t.table.as_str())
        .collect();
    let mut out = Vec::new();
    for fk in &cat.foreign_keys {
        let mine = |schema: &str, t: &str| schema == plan.schema && by_table.contains_key(t);
        let child = mine(&fk.child_schema, &fk.child).then(|| by_table[fk.child.as_str()]);
        let parent = mine(&fk.parent_schema, &fk.parent).then(|| by_table[fk.parent.as_str()]);
        let mut whole = false;
        let mut within = Vec::new();
        if let Some(c) = child {
            if c.whole.is_some() {
                whole = true;
            } else if let Some((stage, _, _)) = &c.upsert {
                within.push(format!(
                    "({}) IN (SELECT {} FROM {})",
                    c.key
                        .iter()
                        .map(|k| format!("c.{}", ident(k)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    cols(&c.key),
                    ident(stage)
                ));
            }
        }
        if let Some(p) = parent {
            let removes =
                p.delete.is_some() || p.gone.is_some() || cascaded.contains(p.table.as_str());
            let mut sorted_refs = fk.parent_columns.clone();
            sorted_refs.sort();
            let mut sorted_key = p.key.clone();
            sorted_key.sort();
            if p.whole.is_some() || (sorted_refs != sorted_key && (removes || p.upserts > 0)) {
                whole = true;
            } else if cascaded.contains(p.table.as_str()) && p.gone.is_none() {
                // Rows a cascade deleted here are recorded only where a gone table exists.
                whole = true;
            } else if removes {
                // The parent's key columns in the order the foreign key references them.
                let mut sources = Vec::new();
                if let Some((keys, _)) = &p.delete {
                    sources.push(format!(
                        "SELECT {} FROM {}",
                        cols(&fk.parent_columns),
                        ident(&keys.temp)
                    ));
                }
                if let Some(gone) = &p.gone {
                    sources.push(format!(
                        "SELECT {} FROM {}",
                        cols(&fk.parent_columns),
                        ident(&gone.temp)
                    ));
                }
                if !sources.is_empty() {
                    within.push(format!(
                        "({}) IN ({})",
                        fk.child_columns
                            .iter()
                            .map(|k| format!("c.{}", ident(k)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        sources.join(" UNION ALL ")
                    ));
                }
            }
        }
        if !whole && within.is_empty() {
            continue;
        }
        out.push(OrphanCheck {
            fk: fk.clone(),
            keys: cat
                .tables
                .get(&fk.child)
                .filter(|_| fk.child_schema == plan.schema)
                .map(|t| t.primary_key.clone())
                .unwrap_or_default(),
            within: (!whole).then(|| within.join(" OR ")),
        });
    }
    out
}

impl DeltaPlan {
    /// The delta's statements, in the order they run.
    pub fn statements(&self, plan: &Plan, as_csv: &BTreeSet<String>) -> Vec<Statement> {
        let mut out = plan.begin();
        for sql in &self.guard {
            out.push(Statement::sql(
                sql,
                "checking that the target stands at this delta's base (pgconverge.state)",
            ));
        }
        hooks(&mut out, "delta_before", &plan.before, true);
        for (slot, c) in plan.constants.iter().enumerate() {
            out.push(Statement::Evaluate {
                slot,
                constant: c.clone(),
            });
        }
        // Children first: deletes by key, and the tables copied whole emptied.
        for t in self.tables.iter().rev() {
            if t.whole.is_some() {
                out.push(Statement::sql(
                    format!("DELETE FROM {}", qualified(&plan.schema, &t.table)),
                    format!(
                        "emptying `{}` (copied whole: {})",
                        t.table,
                        t.whole.as_deref().unwrap_or("")
                    ),
                ));
            } else if let Some((keys, delete)) = &t.delete {
                keys_statements(&mut out, keys, &t.table, "deleted");
                out.push(Statement::sql(
                    delete,
                    format!("deleting {} keys of `{}`", t.deletes, t.table),
                ));
            }
        }
        for t in &self.tables {
            if let Some(gone) = &t.gone {
                keys_statements(&mut out, gone, &t.table, "removed");
            }
        }
        // Parents first: upserts, and the whole copies loaded.
        for t in &self.tables {
            if t.whole.is_none() && t.upsert.is_none() {
                continue;
            }
            if t.load.fire {
                out.push(Statement::sql(
                    ORIGIN,
                    format!(
                        "loading `{}` with its triggers (triggers = \"fire\")",
                        t.table
                    ),
                ));
            }
            if let Some((_, create, _)) = &t.upsert {
                out.push(Statement::sql(
                    create,
                    format!("creating the staging table of `{}`", t.dataset),
                ));
            }
            let mut copies = t.load.copies(as_csv, plan.nulls);
            if t.upsert.is_some() {
                for c in copies.iter_mut() {
                    c.staged = true;
                }
            }
            out.extend(copies.into_iter().map(Statement::Copy));
            if let Some((_, _, insert)) = &t.upsert {
                out.push(Statement::Insert {
                    dataset: t.dataset.clone(),
                    table: t.table.clone(),
                    sql: insert.clone(),
                    expected_rows: Some(t.upserts),
                    keyed: false,
                    clash: t.clash.clone(),
                });
            }
            if t.load.fire {
                out.push(Statement::sql(
                    REPLICA,
                    format!("back to loading without triggers after `{}`", t.table),
                ));
            }
        }
        for (what, sql) in &self.cascades {
            out.push(Statement::sql(sql, what));
        }
        for seq in &plan.sequences {
            out.push(Statement::sql(
                &seq.sql,
                format!("moving sequence {} forward", seq.sequence),
            ));
        }
        hooks(&mut out, "delta_after", &plan.after, false);
        plan.end(&mut out);
        out
    }

    /// Rows the delta upserts and keys it deletes, over all tables.
    pub fn totals(&self) -> (u64, u64) {
        self.tables
            .iter()
            .fold((0, 0), |(u, d), t| (u + t.upserts, d + t.deletes))
    }
}

fn keys_statements(out: &mut Vec<Statement>, keys: &KeysLoad, table: &str, what: &str) {
    out.push(Statement::sql(
        &keys.create,
        format!("creating the table of {what} keys of `{table}`"),
    ));
    out.push(Statement::Copy(keys.copy.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;
    use crate::db::catalog::{ForeignKey, PgTable};
    use crate::import::plan::tests::{catalog, col, input, opts};
    use crate::import::plan::{Options, build};

    fn table(name: &str, columns: &[&str], pk: &[&str]) -> PgTable {
        PgTable {
            name: name.into(),
            columns: columns.iter().map(|c| col(c, "text", false)).collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn entry(
        name: &str,
        key: &[&str],
        deleted: u64,
        removed: bool,
        whole: bool,
    ) -> serde_json::Value {
        let keys = |file: String, rows: u64| serde_json::json!({"file": file, "rows": rows, "bytes": 9, "sha256": "s", "longest_record": 9});
        let mut d = serde_json::json!({
            "key": key, "deleted": keys(format!("{name}.deleted.csv"), deleted),
            "source_rows": 5, "changed_keys": 3,
        });
        if removed {
            d["removed"] = keys(format!("{name}.removed.csv"), 1);
        }
        if whole {
            d["full_copy"] = "no key".into();
        }
        serde_json::json!({"name": name, "file": format!("{name}.csv"), "rows": 2, "bytes": 9,
            "sha256": "s", "engine": "InnoDB", "columns": [], "primary_key": key, "delta": d})
    }

    fn manifest() -> Manifest {
        let position = serde_json::json!({"engine": "mysql", "file": "bin.000001", "position": 9,
            "server": {"server_id": 1, "file_created": 5}});
        let v = serde_json::json!({
            "format_version": 4, "kind": "delta", "tool": {"name": "pgconverge", "version": "0"},
            "profile": "app", "source": {"kind": "mysql", "host": "h", "port": 1, "user": "u",
                "database": "app", "server_version": "v"},
            "started_at": "", "finished_at": "",
            "snapshot": {"isolation": "", "time_zone": "", "charset": "", "readers": 1, "synchronized_by": ""},
            "csv": {"encoding": "UTF-8", "delimiter": ",", "quote": "\"", "null": "\\N", "header": true, "line_end": "\n"},
            "export_info": {"timestamp": "", "source_database": "app", "source_type": "mysql"},
            "tables": {"p": entry("p", &["id"], 1, true, false), "c": entry("c", &["id"], 0, false, false),
                       "w": entry("w", &[], 0, false, true)},
            "summary": {"total_tables": 3, "total_rows": 6},
            "position": position.clone(),
            "delta": {"base": {"export_id": "b", "manifest_sha256": "bb", "dir": "d"}, "from": position,
                "cascades": [{"name": "c_p", "child": "c", "child_columns": ["p_id"], "parent": "p",
                    "parent_columns": ["id"], "on_delete": "CASCADE", "on_update": "SET NULL"}]}
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_delta_deletes_and_upserts_by_key_in_one_transaction() {
        let mut cat = catalog(vec![
            table("p", &["id", "name"], &["id"]),
            table("c", &["id", "p_id"], &["id"]),
            table("w", &["msg"], &[]),
        ]);
        cat.foreign_keys.push(ForeignKey {
            name: "c_p".into(),
            child_schema: "public".into(),
            child: "c".into(),
            child_columns: vec!["p_id".into()],
            parent_schema: "public".into(),
            parent: "p".into(),
            parent_columns: vec!["id".into()],
            deferrable: false,
        });
        let inputs = vec![
            input("p", &["id", "name"], vec![]),
            input("c", &["id", "p_id"], vec![]),
            input("w", &["msg"], vec![]),
        ];
        let opts = Options {
            rebuild_indexes: crate::import::plan::Rebuild::Always,
            ..opts()
        };
        let mapping = Mapping::resolve("app", None, &Layers::default()).unwrap();
        let mut plan = build(&inputs, &cat, &mapping, &opts, &[]);
        let state = StateSql {
            guard: vec!["LOCK TABLE pgconverge.state".into()],
            record: vec!["INSERT INTO pgconverge.state".into()],
        };
        apply(&mut plan, &manifest(), &cat, &mapping, state);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        let texts: Vec<String> = plan
            .statements(&BTreeSet::new())
            .iter()
            .map(Statement::text)
            .collect();
        let at = |needle: &str| {
            texts
                .iter()
                .position(|t| t.contains(needle))
                .unwrap_or_else(|| panic!("no `{needle}` in {texts:#?}"))
        };
        assert!(
            !texts
                .iter()
                .any(|t| t.contains("TRUNCATE") || t.contains("ANALYZE"))
        );
        assert!(at("session_replication_role = replica") < at("LOCK TABLE pgconverge.state"));
        assert!(
            at("LOCK TABLE") < at(r#"DELETE FROM "public"."w""#),
            "the guard first"
        );
        assert!(
            at(r#"DELETE FROM "public"."p" t USING "pgconverge_delete_0" d WHERE t."id" = d."id""#)
                > 0
        );
        assert!(at("COPY \"pgconverge_gone_0\"") < at("INSERT INTO \"public\".\"p\""));
        assert!(
            at(
                r#"INSERT INTO "public"."p" ("id", "name") SELECT "id", "name" FROM "pgconverge_upsert_0" ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name""#
            ) < at(r#"INSERT INTO "public"."c""#),
            "parents first"
        );
        assert!(at(r#"COPY "public"."w""#) > at(r#"DELETE FROM "public"."w""#));
        // The source's actions: CASCADE on delete, SET NULL on update, for rows not written.
        let cascade = &texts[at(r#"DELETE FROM "public"."c" c USING "pgconverge_gone_0" r"#)];
        assert!(
            cascade.contains("'delete'")
                && cascade.contains("NOT EXISTS (SELECT 1 FROM \"pgconverge_upsert_1\" s")
        );
        let set_null = &texts[at(r#"UPDATE "public"."c" c SET "p_id" = NULL"#)];
        assert!(set_null.contains("'update'"));
        assert!(
            at("UPDATE \"public\".\"c\" c SET") < at("SELECT count(*) FROM \"public\".\"c\" c")
        );
        // The foreign key checked for the touched keys only.
        let check = plan.orphan_checks[0].within.clone().unwrap();
        assert!(
            check.contains(r#"(c."id") IN (SELECT "id" FROM "pgconverge_upsert_1")"#),
            "{check}"
        );
        assert!(check.contains(r#"(c."p_id") IN (SELECT "id" FROM "pgconverge_delete_0" UNION ALL SELECT "id" FROM "pgconverge_gone_0")"#), "{check}");
        // The transaction's id is taken before anything is written; the state last.
        assert!(at("SELECT txid_current()") < at("LOCK TABLE pgconverge.state"));
        assert_eq!(
            texts[texts.len() - 2].as_str(),
            "INSERT INTO pgconverge.state",
            "{texts:?}"
        );
        assert_eq!(texts.last().map(String::as_str), Some("COMMIT"));
        assert!(plan.indexes.is_empty(), "no index rebuild in a delta");
    }

    #[test]
    fn the_target_key_must_be_the_deltas() {
        let cat = catalog(vec![
            table("p", &["id", "name"], &["name"]),
            table("c", &["id", "p_id"], &["id"]),
            table("w", &["msg"], &[]),
        ]);
        let inputs = vec![
            input("p", &["id", "name"], vec![]),
            input("c", &["id", "p_id"], vec![]),
            input("w", &["msg"], vec![]),
        ];
        let opts = Options {
            schema: "public".into(),
            strict: false,
            rebuild_indexes: crate::import::plan::Rebuild::Never,
            maintenance_work_mem_kb: None,
            row_estimates: Default::default(),
            delta: true,
            legacy: false,
            binary: false,
            allow_orphans: false,
            analyze: true,
            rehearse: false,
        };
        let mapping = Mapping::resolve("app", None, &Layers::default()).unwrap();
        let mut plan = build(&inputs, &cat, &mapping, &opts, &[]);
        let state = StateSql {
            guard: vec![],
            record: vec![],
        };
        apply(&mut plan, &manifest(), &cat, &mapping, state);
        assert!(
            plan.errors
                .iter()
                .any(|e| e.contains("primary key is (name)")),
            "{:?}",
            plan.errors
        );
    }
}
