//! `verify --deep` for the mapping's computed columns: a `set` expression that calls only
//! IMMUTABLE functions and reads no table is evaluated again over each target row (in a
//! transaction that is rolled back) and compared with the column's value. The other
//! columns it reads are proven against the source by the value comparison, so a column
//! that equals its expression over them holds what the import computed. Which `set`s
//! qualify is a pure rule (`candidates`); the check itself talks to the target.

use anyhow::Result;

use crate::db::catalog::PgTable;
use crate::db::sql::pg::{ident, qualified};
use crate::mapping::idents;
use crate::verify::deep::{Difference, TableDeep};

/// A `set` column that may be evaluated again over the target's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub column: String,
    pub expr: String,
    /// The column's own type: evaluated again, a value that fits is what storing it
    /// made (`'ab  '` into `varchar(3)` is `'ab '`); one that does not was refused.
    pub type_sql: String,
}

/// The `set` columns of `sets` (target column -> expression, of the one dataset feeding
/// the table) that read only columns the target holds as loaded: not a helper column
/// (dropped, never loaded) and not another `set` column (the target holds its result,
/// not what the expression read). Else (why) for the report.
pub fn candidates(
    sets: &std::collections::BTreeMap<String, String>,
    helpers: &[String],
    table: &PgTable,
) -> (Vec<Candidate>, Vec<(String, String)>) {
    let (mut ok, mut not) = (Vec::new(), Vec::new());
    for (column, expr) in sets {
        let Some(col) = table.columns.iter().find(|c| &c.name == column) else {
            continue;
        };
        let reads = |name: &str| idents::mentions(expr, name);
        if let Some(h) = helpers.iter().find(|h| reads(h)) {
            not.push((
                column.clone(),
                format!("computed by the mapping's set from `{h}`, which the target does not hold"),
            ));
        } else if let Some(s) = sets.keys().find(|s| reads(s)) {
            let why = match s == column {
                true => "computed by the mapping's set from the column's own exported value, \
                         which the target no longer holds (it holds the result)"
                    .to_string(),
                false => format!(
                    "computed by the mapping's set from `{s}`, which a set computes too (the \
                     target holds that result, not what this set read)"
                ),
            };
            not.push((column.clone(), why));
        } else {
            ok.push(Candidate {
                column: column.clone(),
                expr: expr.clone(),
                type_sql: col.type_sql.clone(),
            });
        }
    }
    (ok, not)
}

/// What the target's own parse of the expression over the table calls: anything not
/// IMMUTABLE (or unknown), any relation besides the table itself, or a window function or
/// aggregate (its value depends on the other rows; both are IMMUTABLE in pg_proc), rules
/// it out.
const PROBE: &str = "
    WITH called AS (
      SELECT m[1] AS kind, m[2]::oid AS oid
      FROM pg_rewrite r,
           regexp_matches(r.ev_action::text, ':(funcid|opfuncid|aggfnoid|winfnoid|opno) ([0-9]+)', 'g') m
      WHERE r.ev_class = 'pgconverge_verify_probe'::regclass
    ), funcs AS (
      SELECT CASE WHEN c.kind = 'opno' THEN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = c.oid)
                  ELSE c.oid END AS oid
      FROM called c WHERE c.oid <> 0
    )
    SELECT NOT EXISTS (
             SELECT 1 FROM funcs f LEFT JOIN pg_proc p ON p.oid = f.oid
             WHERE f.oid IS NULL OR p.oid IS NULL OR p.provolatile <> 'i')
       AND NOT EXISTS (
             SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class = 'pgconverge_verify_probe'::regclass
               AND d.refclassid = 'pg_class'::regclass
               AND d.refobjid NOT IN ('pgconverge_verify_probe'::regclass, $1::text::regclass))
       AND NOT EXISTS (
             SELECT 1 FROM pg_rewrite r WHERE r.ev_class = 'pgconverge_verify_probe'::regclass
               AND coalesce(substring(r.ev_action::text from ':hasWindowFuncs ([a-z]+)') = 'true'
                            OR substring(r.ev_action::text from ':hasAggs ([a-z]+)') = 'true', true))";

/// Evaluate each candidate again over `schema.table` and fold what it finds into
/// `report`: a column whose every row equals its expression is compared (and said so);
/// a row that does not is a difference naming its key; a `set` that is not IMMUTABLE or
/// reads another table stays not compared, with why. `key`: the target's key columns
/// (empty: rows are named by their position).
pub async fn check(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
    key: &[String],
    candidates: &[Candidate],
    max: usize,
    report: &mut TableDeep,
) -> Result<()> {
    let from = qualified(schema, table);
    let key_text = match key.is_empty() {
        true => "'row ' || ctid::text".to_string(),
        false => key
            .iter()
            .map(|k| {
                format!(
                    "'{}=' || coalesce({}::text, 'NULL')",
                    k.replace('\'', "''"),
                    ident(k)
                )
            })
            .collect::<Vec<_>>()
            .join(" || ', ' || "),
    };
    for c in candidates {
        let cast = crate::import::compute::cast(&c.expr, &c.type_sql);
        client.batch_execute("BEGIN").await?;
        if let Some(path) = crate::db::sql::pg::search_path(schema) {
            client.batch_execute(&path).await?;
        }
        let made = client
            .batch_execute(&format!(
                "CREATE TEMP VIEW pgconverge_verify_probe AS SELECT {cast} AS v FROM {from}"
            ))
            .await;
        let immutable = match made {
            Ok(()) => client
                .query_one(PROBE, &[&from])
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false),
            Err(_) => false,
        };
        let rows = match immutable {
            true => Some(
                client
                    .query(
                        &format!(
                            "SELECT {key_text}, {col}::text, ({cast})::text FROM {from} \
                             WHERE {col} IS DISTINCT FROM {cast}",
                            col = ident(&c.column)
                        ),
                        &[],
                    )
                    .await,
            ),
            false => None,
        };
        client.batch_execute("ROLLBACK").await?;
        report
            .not_compared
            .retain(|n| !n.starts_with(&format!("{} (", c.column)));
        let rows = match rows {
            Some(Ok(rows)) => rows,
            Some(Err(e)) => {
                report.not_compared.push(format!(
                    "{} (computed by the mapping's set; evaluating it again failed: {})",
                    c.column,
                    crate::db::postgres::error(e)
                ));
                continue;
            }
            None => {
                report.not_compared.push(format!(
                    "{} (computed by the mapping's set, which calls something not IMMUTABLE, reads another table or computes over several rows)",
                    c.column
                ));
                continue;
            }
        };
        report
            .compared_columns
            .push(format!("{} (set, evaluated again)", c.column));
        report.different += rows.len() as u64;
        report.equal = report.equal.saturating_sub(rows.len() as u64);
        for r in rows
            .iter()
            .take(max.saturating_sub(report.differences.len()))
        {
            report.differences.push(Difference {
                table: table.to_string(),
                key: r.get(0),
                kind: "value",
                column: Some(c.column.clone()),
                source: r
                    .get::<_, Option<String>>(2)
                    .map(|v| format!("{v} (= {})", c.expr)),
                target: r.get(1),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::PgColumn;

    #[test]
    fn only_sets_over_loaded_columns_are_evaluated_again() {
        let col = |n: &str| PgColumn {
            name: n.into(),
            type_sql: "text".into(),
            ..PgColumn::default()
        };
        let table = PgTable {
            name: "person".into(),
            columns: ["id", "first", "full_name", "slug", "shout", "code"]
                .map(col)
                .to_vec(),
            ..PgTable::default()
        };
        let sets: std::collections::BTreeMap<String, String> = [
            ("full_name", "first || ' ' || last"),
            ("slug", "lower(first)"),
            ("shout", "upper(slug)"),
            ("code", "'c-' || id"),
            ("missing", "1"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let (ok, not) = candidates(&sets, &["last".to_string()], &table);
        let ok: Vec<&str> = ok.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(ok, ["code", "slug"]);
        let not: Vec<&str> = not.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(not, ["full_name", "shout"]);
    }
}
