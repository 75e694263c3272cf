//! PURE: where the mapping's `set` values are computed. An expression that reads no
//! column and is not volatile is a constant, evaluated once and sent with every row; any
//! other makes the dataset load through a staging table and `INSERT ... SELECT`.

use std::collections::BTreeMap;

use crate::db::catalog::PgTable;
use crate::db::sql::pg::{ident, qualified};
use crate::import::compute::{self, Answer, Kind};

use super::{Constant, Options, Plan, SetColumn, TableLoad};

/// Why an aggregate at the top of a `set` is refused, and what to write instead.
const AGGREGATE: &str = "an aggregate function at the top of a `set` folds the rows into one, \
    where a `set` gives each row its own value (hint: for a value over a table, use a \
    subquery, e.g. (SELECT count(*) FROM t); for a value over the dataset's rows, a window \
    function, e.g. count(*) OVER ())";

/// The `set` columns of one dataset, as the target answered about them (once or per
/// row); an expression the target rejects, or that names a generated column, is refused.
pub(super) fn set_columns(
    here: &str,
    dataset: &str,
    target: &PgTable,
    sets_named: &BTreeMap<String, String>,
    // The CSV's columns under target names, and the helper columns among them.
    (target_columns, helpers): (&[String], &[String]),
    answers: &[Answer],
    // The plan's refusals and warnings.
    (errors, warnings): (&mut Vec<String>, &mut Vec<String>),
) -> Vec<SetColumn> {
    let mut sets = Vec::new();
    for (column, expr) in sets_named {
        let Some(col) = target.columns.iter().find(|c| &c.name == column) else {
            continue;
        };
        let kind = match answers
            .iter()
            .find(|a| a.dataset == dataset && &a.column == column)
        {
            Some(a) => match &a.kind {
                Ok(Kind::Aggregate) => {
                    errors.push(format!("{here}: set `{column}` = {expr}: {AGGREGATE}"));
                    continue;
                }
                Ok(k) => *k,
                Err(e) => {
                    errors.push(format!(
                        "{here}: set `{column}` = {expr}: PostgreSQL rejects it: {e}{}",
                        visible_hint(e, target_columns, helpers)
                    ));
                    continue;
                }
            },
            None => {
                errors.push(format!(
                    "{here}: set `{column}` = {expr}: not checked against the target"
                ));
                continue;
            }
        };
        if col.generated {
            errors.push(format!(
                "{here}: set `{column}`: a generated column in the target, which cannot be written"
            ));
        }
        if col.sized_inside {
            warnings.push(format!(
                "{here}: set `{column}`: the result is cast to {}, and PostgreSQL's cast cuts a \
                 text or bit value too long for a field or element of it without a word \
                 (hint: check the longest values the expression makes, or compute each field \
                 or element within its size, e.g. with left(..., n))",
                col.type_sql
            ));
        }
        sets.push(SetColumn {
            column: column.clone(),
            expr: expr.clone(),
            cast: compute::CastTo::of(col),
            kind,
            replaces: target_columns.contains(column),
        });
    }
    sets
}

/// For an unknown column: which names a `set` sees (the target's names of the exported
/// columns, after `columns` renames, and the helper columns under their source names).
fn visible_hint(error: &str, target_columns: &[String], helpers: &[String]) -> String {
    if !error.contains("does not exist") || !error.contains("column") {
        return String::new();
    }
    let seen: Vec<&str> = target_columns
        .iter()
        .filter(|c| !helpers.contains(c))
        .map(String::as_str)
        .collect();
    let helpers = match helpers.is_empty() {
        true => "none".to_string(),
        false => helpers.join(", "),
    };
    format!(
        "\nhint: a `set` sees the exported columns under their target names (after `columns` \
         renames): {}; and, as text under their source names, the dropped columns a `set` of \
         the dataset named at export (helper columns): {helpers}. A dropped column is exported \
         for a `set` only when the export's mapping names it: export again with the `set`",
        seen.join(", ")
    )
}

/// Route `sets` into `load`: through a staging table when any is per row, else as
/// constants appended to each row of the COPY (their slots in `plan.constants`).
pub(super) fn route(
    load: &mut TableLoad,
    sets: Vec<SetColumn>,
    target: &PgTable,
    target_columns: &[String],
    keep: &[bool],
    opts: &Options,
    plan: &mut Plan,
) {
    let table = load.table.clone();
    let staged = sets.iter().any(|s| s.kind != Kind::Once);
    let stage_name = format!(
        "pgconverge_stage_{}",
        plan.tables.len() + plan.skipped.len()
    );
    if staged {
        let stage_cols: Vec<(String, bool)> = target_columns
            .iter()
            .zip(keep)
            .map(|(c, k)| (c.clone(), !k))
            .collect();
        let kept: Vec<String> = target_columns
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        let exprs: Vec<(String, String, compute::CastTo)> = sets
            .iter()
            .map(|s| (s.column.clone(), s.expr.clone(), s.cast.clone()))
            .collect();
        let identity = kept.iter().chain(exprs.iter().map(|(c, _, _)| c)).any(|c| {
            target
                .columns
                .iter()
                .any(|t| &t.name == c && t.identity == "a")
        });
        load.staging = Some((
            stage_name.clone(),
            compute::stage_create_sql(&stage_name, &opts.schema, &table, &stage_cols),
            compute::insert_sql(&stage_name, &opts.schema, &table, &kept, &exprs, identity),
        ));
        load.insert_parts = Some(super::keymap::InsertParts {
            stage: stage_name.clone(),
            kept: kept.clone(),
            sets: exprs.clone(),
            overriding: identity,
        });
        let key: Vec<String> = load
            .key
            .iter()
            .map(|&p| target_columns[p].clone())
            .collect();
        load.traced = Some(compute::insert_with(
            &stage_name,
            &opts.schema,
            &table,
            &kept,
            &exprs,
            identity,
            &super::collisions::trace_columns(&load.dataset, &key),
        ));
        load.set_copy_target(&ident(&stage_name), target_columns, &[]);
    } else {
        load.shape.keep = keep.to_vec();
        let mut extra = Vec::new();
        for s in &sets {
            let not_null = target
                .columns
                .iter()
                .any(|c| c.name == s.column && c.not_null);
            load.shape.constants.push(plan.constants.len());
            plan.constants.push(Constant {
                table: table.clone(),
                column: s.column.clone(),
                expr: s.expr.clone(),
                sql: compute::evaluate_sql(&s.expr, &s.cast),
                not_null,
            });
            extra.push(s.column.clone());
        }
        let sent: Vec<String> = target_columns
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        load.set_copy_target(&qualified(&opts.schema, &table), &sent, &extra);
    }
    load.sets = sets;
}
