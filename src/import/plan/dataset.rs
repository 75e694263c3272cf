//! PURE: one dataset of the export against its target table: the table found (or why it
//! is skipped), its columns matched through the mapping, the refusals its facts call for,
//! binary or CSV (and why), and each column's adaptation.

use std::collections::BTreeMap;

use crate::codec::adapt::Adapt;
use crate::codec::pgbinary::BinType;
use crate::db::catalog::{Catalog, PgTable};
use crate::db::sql::pg::{qualified, truncated_identifier};
use crate::import::compute::{Answer, Kind};
use crate::import::fixes::MappingFix;
use crate::import::{adapt, checks};
use crate::mapping::Mapping;
use crate::mapping::file::quote_key;
use crate::memory::BINARY_RECORD_MAX;

use super::{Options, Plan, Shape, Skipped, TableInput, TableLoad, staging};

pub(super) fn dataset_load(
    input: &TableInput,
    cat: &Catalog,
    mapping: &Mapping,
    opts: &Options,
    answers: &[Answer],
    plan: &mut Plan,
) -> Option<TableLoad> {
    let dataset = &input.spec.name;
    let map = mapping.table(dataset);
    let here = format!("{}: [tables.{}]", mapping.origin, quote_key(dataset));
    if map.is_some_and(|m| m.skip) {
        plan.skipped.push(Skipped {
            table: dataset.clone(),
            reason: format!("{}: skip = true", mapping.origin),
        });
        return None;
    }
    let table = mapping.target_table(dataset);
    let explicit = map.and_then(|m| m.target.as_ref()).is_some();
    let Some(target) = cat.tables.get(&table) else {
        // Names are matched exactly; say so when only the case differs, or when
        // PostgreSQL cut the name to 63 bytes (MySQL allows 64).
        let near = cat
            .tables
            .keys()
            .find(|t| t.eq_ignore_ascii_case(&table))
            .map(|t| format!(" (the target has `{t}`: names are case-sensitive)"))
            .or_else(|| {
                let cut = truncated_identifier(&table)?;
                cat.tables.contains_key(cut).then(|| {
                    format!(
                        " (the target has `{cut}`: PostgreSQL cuts names to 63 bytes; map it \
                         with [tables.{}] target = \"{cut}\")",
                        quote_key(dataset)
                    )
                })
            })
            .unwrap_or_default();
        if mapping.skip_if_absent().contains(&table) {
            plan.skipped.push(Skipped {
                table: dataset.clone(),
                reason: format!("absent in the target ({} skips it)", mapping.origin),
            });
        } else if explicit {
            plan.errors.push(format!(
                "{here}: target = `{table}`, but schema `{}` of the target has no such table{near}",
                opts.schema
            ));
        } else if opts.strict {
            plan.errors.push(format!(
                "table `{table}` of the export does not exist in schema `{}` of the target{near} (--strict)",
                opts.schema
            ));
        } else {
            plan.warnings.push(format!(
                "table `{table}` does not exist in schema `{}` of the target{near}: skipped",
                opts.schema
            ));
            plan.skipped.push(Skipped {
                table: dataset.clone(),
                reason: "absent in the target".into(),
            });
        }
        return None;
    };
    // A framework's migration history belongs to the target's schema: keep its rows.
    if let Some(framework) = crate::import::history::kept(target, &mapping.hooks().copy_history) {
        plan.skipped.push(Skipped {
            table: dataset.clone(),
            reason: format!(
                "`{table}` is {framework}'s migration history: the target's own rows are kept \
                 (to copy the source's instead: [import] copy_history = [\"{table}\"])"
            ),
        });
        plan.kept_history.push(table.clone());
        return None;
    }

    // A helper column (a dropped column a `set` reads) keeps its source name.
    let target_columns: Vec<String> = input
        .header
        .iter()
        .map(|h| match input.spec.helpers.contains(h) {
            true => h.clone(),
            false => mapping.target_column(dataset, h),
        })
        .collect();
    // `key_of(` is read as the function the import creates (`mapping::keys`).
    let sets_named: BTreeMap<String, String> = map
        .map(|m| {
            m.set
                .iter()
                .map(|(c, e)| (c.clone(), crate::mapping::keys::qualify(e, &opts.schema)))
                .collect()
        })
        .unwrap_or_default();
    let has = |c: &str| target.columns.iter().any(|t| t.name == c);
    if let Some(m) = map {
        for (from, to) in &m.columns {
            if !input.header.contains(from) {
                plan.errors.push(format!(
                    "{here}: columns renames `{from}`, which the export does not hold"
                ));
            } else if !has(to) {
                plan.errors.push(format!(
                    "{here}: columns renames `{from}` to `{to}`, but table `{table}` of the \
                     target has no column `{to}` (it has: {})",
                    column_list(target)
                ));
            }
        }
        for col in m.set.keys() {
            if !has(col) {
                plan.errors.push(format!(
                    "{here}: set names `{col}`, but table `{table}` of the target has no \
                     column `{col}` (it has: {})",
                    column_list(target)
                ));
            }
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (h, t) in input.header.iter().zip(&target_columns) {
        if input.spec.helpers.contains(h) {
            continue;
        }
        if let Some(other) = seen.insert(t, h) {
            plan.errors.push(format!(
                "table `{table}`: the CSV columns `{other}` and `{h}` both go to column `{t}`"
            ));
        }
    }
    let keep: Vec<bool> = input
        .header
        .iter()
        .zip(&target_columns)
        .map(|(h, t)| !sets_named.contains_key(t) && !input.spec.helpers.contains(h))
        .collect();
    checks::columns(
        &checks::Columns {
            dataset,
            table: &table,
            spec: &input.spec,
            header: &input.header,
            targets: &target_columns,
            keep: &keep,
            computed: &sets_named.keys().cloned().collect::<Vec<_>>(),
            fire: mapping.fires(dataset),
        },
        target,
        &mut plan.errors,
        &mut plan.warnings,
        &mut plan.fixes,
    );

    let sets = staging::set_columns(
        &here,
        dataset,
        target,
        &sets_named,
        (&target_columns, &input.spec.helpers),
        answers,
        (&mut plan.errors, &mut plan.warnings),
    );
    let staged = sets.iter().any(|s| s.kind != Kind::Once);
    let mut load = table_load(input, target, &table, &target_columns, opts, staged, &keep);
    load.fire = mapping.fires(dataset);
    staging::route(&mut load, sets, target, &target_columns, &keep, opts, plan);
    for (i, name) in input.header.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let src = input.spec.columns.iter().find(|c| &c.name == name);
        let dst = target.columns.iter().find(|c| c.name == target_columns[i]);
        if let (Some(src), Some(dst)) = (src, dst) {
            let d = adapt::decide(
                &table,
                src,
                dst,
                mapping.uuid_order(dataset, name),
                mapping.rounds(dataset, name),
            );
            plan.errors.extend(d.refusals);
            plan.fixes
                .extend(d.fixes.into_iter().map(|(rows, problem)| MappingFix {
                    dataset: dataset.clone(),
                    source_column: name.clone(),
                    target_column: target_columns[i].clone(),
                    rows,
                    problem,
                }));
            plan.warnings.extend(d.warnings);
            if d.adapt != Adapt::None {
                load.adapts[i] = d.adapt;
                load.adaptations.push((name.clone(), d.adapt, d.changed));
            }
        }
    }
    Some(load)
}

fn column_list(t: &PgTable) -> String {
    t.columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Several datasets loading into one table must each say so (`target =`): a dataset
/// landing in a table by name alone next to another one is most likely a mistake.
pub(super) fn check_shared_targets(
    loads: &[TableLoad],
    mapping: &Mapping,
    errors: &mut Vec<String>,
) {
    let mut by_target: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in loads {
        by_target.entry(&l.table).or_default().push(&l.dataset);
    }
    for (table, datasets) in by_target {
        if datasets.len() < 2 {
            continue;
        }
        let implicit: Vec<&str> = datasets
            .iter()
            .filter(|d| mapping.table(d).and_then(|m| m.target.as_ref()).is_none())
            .copied()
            .collect();
        if !implicit.is_empty() {
            errors.push(format!(
                "datasets {} all load into table `{table}`; each must say `target = \"{table}\"` \
                 in its [tables.X] section (missing for {})",
                datasets
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                implicit
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

/// The binary converter of every CSV column, or why the dataset loads as CSV. A column
/// a `set` replaces travels as text (into the staging table) or not at all.
fn binary_types(
    header: &[String],
    targets: &[String],
    replaced: &[bool],
    target: &PgTable,
    opts: &Options,
) -> (Option<Vec<BinType>>, Option<String>) {
    if !opts.binary {
        return (None, Some("--copy-format csv".into()));
    }
    let mut types = Vec::with_capacity(header.len());
    for ((name, t), replaced) in header.iter().zip(targets).zip(replaced) {
        if *replaced {
            types.push(BinType::Text);
            continue;
        }
        let Some(col) = target.columns.iter().find(|c| &c.name == t) else {
            return (None, Some(format!("column `{name}` is not in the target")));
        };
        match BinType::for_pg(&col.binary_type, col.element.as_deref(), col.element_oid) {
            Some(t) => types.push(t),
            None => {
                return (
                    None,
                    Some(format!(
                        "column `{name}` is {} (no exact binary converter)",
                        col.type_sql
                    )),
                );
            }
        }
    }
    (Some(types), None)
}

fn table_load(
    input: &TableInput,
    target: &PgTable,
    table: &str,
    target_columns: &[String],
    opts: &Options,
    staged: bool,
    keep: &[bool],
) -> TableLoad {
    let replaced: Vec<bool> = keep.iter().map(|k| !k).collect();
    let (mut binary_types, mut csv_reason) =
        binary_types(&input.header, target_columns, &replaced, target, opts);
    // PostgreSQL's interval output (`1 day 02:00:00`, `3 mons`) is not the MySQL TIME
    // form the binary converter reads: a PostgreSQL source's intervals go as CSV.
    if binary_types.is_some()
        && let Some(c) = input
            .spec
            .columns
            .iter()
            .find(|c| c.data_type == "interval" && input.header.contains(&c.name))
    {
        binary_types = None;
        csv_reason = Some(format!(
            "column `{}` is an interval from PostgreSQL (read by PostgreSQL itself)",
            c.name
        ));
    }
    // The converter holds a whole record: a longer one than it takes goes as CSV, in
    // chunks, so memory stays flat whatever a value's size.
    if binary_types.is_some()
        && let Some(longest) = input
            .spec
            .files
            .iter()
            .filter_map(|f| f.longest)
            .max()
            .filter(|l| *l > BINARY_RECORD_MAX)
    {
        binary_types = None;
        csv_reason = Some(format!(
            "a record of {longest} bytes is longer than the binary converter takes ({BINARY_RECORD_MAX} bytes)"
        ));
    }
    let mut load = TableLoad {
        dataset: input.spec.name.clone(),
        table: table.to_string(),
        files: input.spec.files.clone(),
        columns: input.header.clone(),
        target_columns: target_columns.to_vec(),
        partitions: target.partitions.clone(),
        key: input
            .spec
            .primary_key
            .iter()
            .filter_map(|k| input.header.iter().position(|h| h == k))
            .collect(),
        expected_rows: input.spec.rows,
        bytes: input.spec.files.iter().map(|f| f.bytes).sum(),
        adapts: vec![Adapt::None; input.header.len()],
        adaptations: Vec::new(),
        binary_types,
        csv_reason,
        sets: Vec::new(),
        shape: Shape {
            keep: vec![true; input.header.len()],
            constants: Vec::new(),
        },
        staging: None,
        traced: None,
        insert_parts: None,
        fire: false,
        copy_head: String::new(),
        // The table is truncated (or the staging table created) in this transaction, so
        // its rows may be written frozen: a little faster, and no anti-wraparound vacuum
        // has to visit them later. Not through a partitioned parent.
        freeze: staged || !target.partitioned,
    };
    load.set_copy_target(&qualified(&opts.schema, table), target_columns, &[]);
    load
}
