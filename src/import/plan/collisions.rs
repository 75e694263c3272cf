//! PURE: every constraint violation at once. When a loaded row breaks a PRIMARY KEY,
//! UNIQUE, EXCLUDE, CHECK or NOT NULL constraint of the target, the server names the
//! first one and stops. The import then loads everything again in a transaction it rolls
//! back (`Plan::diagnosis`): the loaded tables' constraints are taken off, each row is
//! marked with the dataset, the source key and the record it came from, and every
//! constraint is asked which rows break it (`Rule`), so that one run lists them all.

use std::collections::BTreeMap;

use crate::db::catalog::{ConstraintKind, PgIndex, PgTable};
use crate::db::sql::pg::{dollar_quoted, ident, literal, qualified};

use super::statements::{ORIGIN, REPLICA};
use super::{Plan, Statement};

/// The columns a diagnosis adds to each loaded table: where each row came from.
pub const DATASET: &str = "pgconverge_dataset";
pub const KEY: &str = "pgconverge_key";
pub const ROW: &str = "pgconverge_row";
/// Numbers each dataset's records, in file order (reset before each dataset).
const ROWS: &str = "pgconverge_rows";
/// Values (or rows) shown per constraint, and rows per colliding value.
pub const EXAMPLES: usize = 5;
const PER_VALUE: usize = 3;

/// One constraint of a loaded table, as the diagnosis checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub table: String,
    /// `UNIQUE "User_email_key" (lower(email))`: how the report names it.
    pub label: String,
    pub kind: RuleKind,
    /// Returns (per [`RuleKind`]) the totals and the examples' origins.
    pub sql: String,
    /// The one column it is about (a NOT NULL, a unique key of one plain column): the
    /// hint's `set` names it.
    pub column: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Rows: (values shared, rows sharing them, value, dataset, key, record).
    Unique,
    /// Rows: (rows breaking it, dataset, key, record).
    Rows,
    /// Rows: (pairs in conflict, dataset, key, record, dataset, key, record).
    Pairs,
}

/// What the diagnosis does to one loaded table, and asks of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRules {
    pub table: String,
    /// Adds the trace columns and takes the constraints off (one DO block; a step the
    /// server refuses is skipped, and the load then fails as before).
    pub relax: String,
    pub rules: Vec<Rule>,
    /// Constraints this listing cannot ask (an exclusion over an expression or with a
    /// WHERE): named in the report as checked by the server only.
    pub unchecked: Vec<String>,
}

/// The rules of a target table: its primary key, unique constraints and indexes,
/// exclusion constraints (over plain columns, without WHERE), CHECKs and NOT NULLs.
pub fn rules(t: &PgTable, schema: &str) -> TableRules {
    let q = qualified(schema, &t.name);
    let mut relax = vec![
        format!(
            "ALTER TABLE {q} ADD COLUMN {DATASET} text, ADD COLUMN {KEY} text[], ADD COLUMN {ROW} bigint"
        ),
        format!("ALTER TABLE {q} ALTER COLUMN {ROW} SET DEFAULT nextval('{ROWS}')"),
    ];
    let mut tolerant = Vec::new();
    let mut rules = Vec::new();
    let mut unchecked = Vec::new();
    let own = t
        .indexes
        .iter()
        .filter(|i| i.table == t.name && i.schema == schema);
    for i in own.clone().filter(|i| i.unique && i.valid) {
        let (label, drop) = match &i.constraint {
            Some(c) => (
                format!(
                    "{} {} ({})",
                    match c.kind {
                        ConstraintKind::PrimaryKey => "PRIMARY KEY",
                        _ => "UNIQUE",
                    },
                    ident(&c.name),
                    i.keys.join(", ")
                ),
                format!("ALTER TABLE {q} DROP CONSTRAINT {} CASCADE", ident(&c.name)),
            ),
            None => (
                format!("UNIQUE INDEX {} ({})", ident(&i.name), i.keys.join(", ")),
                format!("DROP INDEX {} CASCADE", qualified(schema, &i.name)),
            ),
        };
        tolerant.push(drop);
        let plain = |k: &str| t.columns.iter().any(|c| c.name == k || ident(&c.name) == k);
        rules.push(Rule {
            table: t.name.clone(),
            label,
            kind: RuleKind::Unique,
            column: match i.keys.as_slice() {
                [k] if plain(k) => Some(k.trim_matches('"').to_string()),
                _ => None,
            },
            sql: unique_sql(&q, i),
        });
    }
    // A partition's own unique index (attached to none of the parent's): asked of that
    // partition, whose rows carry the parent's trace columns.
    for i in t.indexes.iter().filter(|i| {
        i.table != t.name && i.unique && i.valid && i.parent.is_none() && i.constraint.is_none()
    }) {
        let p = qualified(&i.schema, &i.table);
        tolerant.push(format!(
            "DROP INDEX {} CASCADE",
            qualified(&i.schema, &i.name)
        ));
        rules.push(Rule {
            table: t.name.clone(),
            label: format!(
                "UNIQUE INDEX {} of partition {} ({})",
                ident(&i.name),
                ident(&i.table),
                i.keys.join(", ")
            ),
            kind: RuleKind::Unique,
            column: None,
            sql: unique_sql(&p, i),
        });
    }
    for i in own.filter(|i| {
        i.constraint
            .as_ref()
            .is_some_and(|c| c.kind == ConstraintKind::Exclude)
    }) {
        let c = i.constraint.as_ref().expect("filtered");
        tolerant.push(format!(
            "ALTER TABLE {q} DROP CONSTRAINT {} CASCADE",
            ident(&c.name)
        ));
        let Some(pairs) = exclusion_pairs(&c.def) else {
            unchecked.push(format!("`{}` EXCLUDE {}", t.name, ident(&c.name)));
            continue;
        };
        {
            // The self-join that lists conflicts needs an index of the same method, or it
            // compares every pair of rows: one without the constraint, built as rows load.
            let cols: Vec<&str> = pairs.iter().map(|(c, _)| c.as_str()).collect();
            tolerant.push(format!(
                "CREATE INDEX ON {q} USING {} ({})",
                ident(&i.method),
                cols.join(", ")
            ));
            rules.push(Rule {
                table: t.name.clone(),
                label: format!("EXCLUDE {} ({})", ident(&c.name), exclusion_list(&pairs)),
                kind: RuleKind::Pairs,
                column: None,
                sql: pairs_sql(&q, &pairs),
            });
        }
    }
    for (name, def) in &t.checks {
        let expr = check_expr(def);
        tolerant.push(format!(
            "ALTER TABLE {q} DROP CONSTRAINT {} CASCADE",
            ident(name)
        ));
        rules.push(Rule {
            table: t.name.clone(),
            label: format!("CHECK {} {}", ident(name), &expr[1..expr.len() - 1]),
            kind: RuleKind::Rows,
            column: None,
            sql: rows_sql(&q, &format!("NOT {expr}")),
        });
    }
    for c in t.columns.iter().filter(|c| c.not_null && !c.generated) {
        tolerant.push(format!(
            "ALTER TABLE {q} ALTER COLUMN {} DROP NOT NULL",
            ident(&c.name)
        ));
        rules.push(Rule {
            table: t.name.clone(),
            label: format!("NOT NULL {}", ident(&c.name)),
            kind: RuleKind::Rows,
            column: Some(c.name.clone()),
            sql: rows_sql(&q, &format!("{} IS NULL", ident(&c.name))),
        });
    }
    relax.extend(
        tolerant
            .into_iter()
            .map(|s| format!("BEGIN {s}; EXCEPTION WHEN OTHERS THEN NULL; END")),
    );
    let body = relax.join(";\n  ");
    TableRules {
        table: t.name.clone(),
        relax: format!("DO {}", dollar_quoted(&format!(" BEGIN\n  {body};\nEND "))),
        rules,
        unchecked,
    }
}

/// The DEFERRABLE unique and exclusion constraints of a loaded table, each as (what it
/// is, SQL that raises 23505 or 23P01 when rows break it). PostgreSQL checks such a
/// constraint by a recheck trigger queued at insert, which the replica role the load runs
/// in never fires: the import asks the server itself, before COMMIT, by adding the same
/// constraint, not deferrable, in a block it then undoes (a PRIMARY KEY as UNIQUE): the
/// server's own semantics, expressions, WHERE, NULLS NOT DISTINCT and collations included.
/// A violation raises; the diagnosis then lists every one.
pub fn deferred_checks(t: &PgTable, schema: &str) -> Vec<(String, String)> {
    let q = qualified(schema, &t.name);
    let mut out = Vec::new();
    for i in t
        .indexes
        .iter()
        .filter(|i| i.table == t.name && i.schema == schema)
    {
        let Some(c) = i.constraint.as_ref().filter(|c| c.deferrable) else {
            continue;
        };
        let mut def = c.def.clone();
        for suffix in [
            " DEFERRABLE INITIALLY DEFERRED",
            " DEFERRABLE INITIALLY IMMEDIATE",
            " DEFERRABLE",
        ] {
            if let Some(d) = def.strip_suffix(suffix) {
                def = d.to_string();
                break;
            }
        }
        if let Some(rest) = def.strip_prefix("PRIMARY KEY ") {
            def = format!("UNIQUE {rest}");
        }
        let what = format!(
            "DEFERRABLE constraint {} of {}",
            ident(&c.name),
            ident(&t.name)
        );
        let body = format!(
            "DECLARE d text; BEGIN ALTER TABLE {q} ADD CONSTRAINT pgconverge_deferred_check {def}; \
             RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pgconverge: undo the check'; \
             EXCEPTION WHEN SQLSTATE 'P0001' THEN NULL; \
             WHEN unique_violation OR exclusion_violation THEN \
             GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL; \
             RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = {}, DETAIL = d; END",
            literal(&format!("rows break {what}"))
        );
        out.push((what, format!("DO {}", dollar_quoted(&format!(" {body} ")))));
    }
    out
}

/// The extra columns a traced staging INSERT writes: (column, expression over the
/// staging table, whose `key` columns hold the source key).
pub fn trace_columns(dataset: &str, key: &[String]) -> Vec<(String, String)> {
    vec![
        (DATASET.into(), literal(dataset)),
        (KEY.into(), key_array(key)),
        (ROW.into(), ident(ROW)),
    ]
}

fn key_array(key: &[String]) -> String {
    match key.is_empty() {
        true => "NULL::text[]".into(),
        false => format!(
            "ARRAY[{}]",
            key.iter()
                .map(|k| format!("{}::text", ident(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

const ORIGIN_COLUMNS: &str = "pgconverge_dataset, pgconverge_key, pgconverge_row";
const ORIGIN_ORDER: &str = "pgconverge_dataset NULLS FIRST, pgconverge_row";

/// The values a unique key's rows share (NULLs never collide unless NULLS NOT DISTINCT;
/// a partial index only sees the rows its predicate selects), the examples most shared
/// first, each with its first rows' origins.
fn unique_sql(q: &str, i: &PgIndex) -> String {
    let (exprs, filter) = i.unique_scope();
    let filter = match filter.is_empty() {
        true => "true".to_string(),
        false => filter.join(" AND "),
    };
    let named: Vec<String> = (0..exprs.len())
        .map(|n| format!("pgconverge_k{n}"))
        .collect();
    let grouped: Vec<String> = exprs
        .iter()
        .zip(&named)
        .map(|(e, n)| format!("{e} AS {n}"))
        .collect();
    let shown: Vec<String> = named.iter().map(|n| format!("{n}::text")).collect();
    let same: Vec<String> = exprs
        .iter()
        .zip(&named)
        .map(|(e, n)| format!("{e} IS NOT DISTINCT FROM pgconverge_e.{n}"))
        .collect();
    let positions: Vec<String> = (1..=exprs.len()).map(|n| n.to_string()).collect();
    format!(
        "WITH pgconverge_g AS (SELECT {grouped}, count(*) AS pgconverge_n FROM {q} WHERE {filter} \
         GROUP BY {positions} HAVING count(*) > 1), \
         pgconverge_t AS (SELECT count(*) AS v, COALESCE(sum(pgconverge_n), 0)::bigint AS r FROM pgconverge_g), \
         pgconverge_e AS (SELECT *, ARRAY[{shown}] AS pgconverge_value FROM pgconverge_g \
         ORDER BY pgconverge_n DESC, pgconverge_value LIMIT {EXAMPLES}) \
         SELECT pgconverge_t.v, pgconverge_t.r, pgconverge_e.pgconverge_value, pgconverge_m.pgconverge_dataset, \
         pgconverge_m.pgconverge_key, pgconverge_m.pgconverge_row \
         FROM pgconverge_t LEFT JOIN pgconverge_e ON true LEFT JOIN LATERAL (SELECT {ORIGIN_COLUMNS} FROM {q} \
         WHERE {filter} AND {same} ORDER BY {ORIGIN_ORDER} LIMIT {PER_VALUE}) pgconverge_m ON true \
         ORDER BY pgconverge_e.pgconverge_n DESC, pgconverge_e.pgconverge_value, \
         pgconverge_m.pgconverge_dataset NULLS FIRST, pgconverge_m.pgconverge_row",
        grouped = grouped.join(", "),
        positions = positions.join(", "),
        shown = shown.join(", "),
        same = same.join(" AND "),
    )
}

/// The rows a condition selects (a broken CHECK, a NULL in a NOT NULL column): how
/// many, and the first ones' origins.
fn rows_sql(q: &str, condition: &str) -> String {
    format!(
        "SELECT count(*) OVER (), {ORIGIN_COLUMNS} FROM {q} WHERE {condition} \
         ORDER BY {ORIGIN_ORDER} LIMIT {EXAMPLES}"
    )
}

/// The pairs of rows an exclusion constraint's operators say conflict.
/// The pairs of rows an exclusion constraint's operators say conflict: counted up to
/// [`PAIRS_CAP`] + 1 (every row may conflict with every other), the first ones shown.
fn pairs_sql(q: &str, pairs: &[(String, String)]) -> String {
    let on: Vec<String> = pairs
        .iter()
        .map(|(c, op)| format!("pgconverge_a.{c} {op} pgconverge_b.{c}"))
        .collect();
    format!(
        "WITH pgconverge_p AS (SELECT pgconverge_a.pgconverge_dataset AS d1, pgconverge_a.pgconverge_key AS k1, \
         pgconverge_a.pgconverge_row AS r1, pgconverge_b.pgconverge_dataset AS d2, pgconverge_b.pgconverge_key AS k2, \
         pgconverge_b.pgconverge_row AS r2 FROM {q} pgconverge_a JOIN {q} pgconverge_b \
         ON (pgconverge_a.tableoid, pgconverge_a.ctid) < (pgconverge_b.tableoid, pgconverge_b.ctid) AND {} LIMIT {}) \
         SELECT (SELECT count(*) FROM pgconverge_p), d1, k1, r1, d2, k2, r2 FROM pgconverge_p \
         ORDER BY d1 NULLS FIRST, r1, r2 LIMIT {EXAMPLES}",
        on.join(" AND "),
        PAIRS_CAP + 1
    )
}

/// Conflicting pairs counted at most (then "more than").
pub const PAIRS_CAP: u64 = 100_000;

/// `CHECK ((price > 0)) NOT VALID` -> `((price > 0))`.
fn check_expr(def: &str) -> String {
    let body = def.strip_prefix("CHECK ").unwrap_or(def);
    let body = body.strip_suffix(" NOT VALID").unwrap_or(body);
    let body = body.strip_suffix(" NO INHERIT").unwrap_or(body);
    format!("({body})")
}

/// `EXCLUDE USING gist (room WITH =, during WITH &&)` -> [(room, =), (during, &&)]; None
/// for an element that is an expression, or a constraint with a WHERE.
fn exclusion_pairs(def: &str) -> Option<Vec<(String, String)>> {
    let open = def.find('(')?;
    let mut depth = 0usize;
    let mut close = None;
    for (i, ch) in def[open..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    if def[close..].contains(" WHERE ") {
        return None;
    }
    def[open + 1..close]
        .split(", ")
        .map(|el| {
            let (col, op) = el.split_once(" WITH ")?;
            let plain = col
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                || (col.len() > 2 && col.starts_with('"') && col.ends_with('"'));
            plain.then(|| (col.to_string(), op.trim().to_string()))
        })
        .collect()
}

fn exclusion_list(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(c, op)| format!("{c} WITH {op}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// The load again, to list every violation: the plan's statements up to its last
    /// load, with the loaded tables' constraints off and each row traced to its dataset,
    /// source key and record, then the checks, then ROLLBACK. None for a delta (applied
    /// by key, where the server's own message names the row).
    pub fn diagnosis(&self, as_csv: &std::collections::BTreeSet<String>) -> Option<Vec<Statement>> {
        if self.delta.is_some() || self.collisions.is_empty() {
            return None;
        }
        let mut out = self.opening();
        out.extend(self.key_map_setup());
        out.push(Statement::sql(
            format!("CREATE TEMP SEQUENCE {ROWS}"),
            "numbering each dataset's records",
        ));
        for r in &self.collisions {
            if !r.relax.is_empty() {
                out.push(Statement::sql(
                    &r.relax,
                    format!(
                        "taking the constraints of `{}` off, to list what breaks them",
                        r.table
                    ),
                ));
            }
        }
        for (slot, c) in self.constants.iter().enumerate() {
            out.push(Statement::Evaluate {
                slot,
                constant: c.clone(),
            });
        }
        let mut keys = BTreeMap::new();
        for t in &self.tables {
            keys.insert(
                t.dataset.clone(),
                t.key
                    .iter()
                    .map(|&p| t.columns[p].clone())
                    .collect::<Vec<_>>(),
            );
            let q = qualified(&self.schema, &t.table);
            out.push(Statement::sql(
                format!("SELECT setval('{ROWS}', 1, false)"),
                format!("numbering the records of `{}`", t.dataset),
            ));
            if t.fire {
                out.push(Statement::sql(
                    ORIGIN,
                    format!("loading `{}` with its triggers", t.table),
                ));
            }
            let traced = t.staging.as_ref().zip(t.traced.as_ref());
            match traced {
                Some(((stage, create, _), _)) => {
                    out.push(Statement::sql(
                        create,
                        format!("creating the staging table of `{}`", t.dataset),
                    ));
                    out.push(Statement::sql(
                        format!(
                            "ALTER TABLE {} ADD COLUMN {ROW} bigint DEFAULT nextval('{ROWS}')",
                            ident(stage)
                        ),
                        format!("numbering the staged records of `{}`", t.dataset),
                    ));
                }
                None => out.push(Statement::sql(
                    format!(
                        "ALTER TABLE {q} ALTER COLUMN {DATASET} SET DEFAULT {}",
                        literal(&t.dataset)
                    ),
                    format!("marking the rows of `{}`", t.dataset),
                )),
            }
            out.extend(
                t.copies(as_csv, self.nulls)
                    .into_iter()
                    .map(Statement::Copy),
            );
            match traced {
                Some(((stage, _, _), insert)) => {
                    out.push(Statement::Insert {
                        dataset: t.dataset.clone(),
                        table: t.table.clone(),
                        sql: insert.clone(),
                        expected_rows: t.expected_rows,
                        keyed: self.key_maps.iter().any(|k| k.dataset == t.dataset),
                        clash: None,
                        search: None,
                    });
                    out.push(Statement::sql(
                        format!("DROP TABLE {}", ident(stage)),
                        "dropping the staging table",
                    ));
                }
                None => {
                    let sent: Vec<String> = t
                        .key
                        .iter()
                        .filter(|&&p| t.shape.keep.get(p).copied().unwrap_or(false))
                        .map(|&p| t.target_columns[p].clone())
                        .collect();
                    if !sent.is_empty() && sent.len() == t.key.len() {
                        out.push(Statement::sql(
                            format!(
                                "UPDATE {q} SET {KEY} = {} WHERE {DATASET} = {}",
                                key_array(&sent),
                                literal(&t.dataset)
                            ),
                            format!("marking the rows of `{}` with their source keys", t.dataset),
                        ));
                    }
                }
            }
            if t.fire {
                out.push(Statement::sql(REPLICA, "back to loading without triggers"));
            }
        }
        out.push(Statement::Collisions {
            rules: self
                .collisions
                .iter()
                .flat_map(|r| r.rules.clone())
                .collect(),
            keys,
            unchecked: self
                .collisions
                .iter()
                .flat_map(|r| r.unchecked.clone())
                .collect(),
        });
        out.push(Statement::Rollback);
        Some(out)
    }
}

/// One constraint's violations, as the diagnosis found them.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub table: String,
    pub label: String,
    pub kind: RuleKind,
    /// Unique: values shared; Rows: rows; Pairs: pairs.
    pub count: u64,
    /// Unique: the rows sharing them.
    pub rows: u64,
    /// Each example: the shared value (Unique) and its rows' origins.
    pub examples: Vec<(Option<String>, Vec<String>)>,
    /// The dataset whose mapping could fix the first example (a unique key's: the later
    /// holder's), and the rule's one column.
    pub dataset: Option<String>,
    pub column: Option<String>,
}

/// Where a row came from, in words: `Teacher id=17`, `Parent record 4`, or a row the
/// export did not bring.
pub fn origin(
    dataset: Option<&str>,
    key: Option<&[Option<String>]>,
    record: Option<i64>,
    keys: &BTreeMap<String, Vec<String>>,
) -> String {
    let Some(ds) = dataset else {
        return "a row not loaded from the export (added by a hook or a trigger)".into();
    };
    let names = keys.get(ds).map(Vec::as_slice).unwrap_or(&[]);
    match key {
        Some(values) if !names.is_empty() && values.len() == names.len() => {
            let parts: Vec<String> = names
                .iter()
                .zip(values)
                .map(|(n, v)| match v {
                    Some(v) => format!("{}={}", crate::escape::text(n), shown(v)),
                    None => format!("{}=NULL", crate::escape::text(n)),
                })
                .collect();
            match parts.len() {
                1 => format!("{} {}", crate::escape::text(ds), parts[0]),
                _ => format!("{} ({})", crate::escape::text(ds), parts.join(", ")),
            }
        }
        _ => match record {
            Some(n) => format!("{} record {n}", crate::escape::text(ds)),
            None => crate::escape::text(ds).into_owned(),
        },
    }
}

/// A key's or a shared value's text: a number as it is, anything else between single
/// quotes (so that `''` and blanks show), escaped.
pub fn shown(v: &str) -> String {
    let number = v
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
        && v.parse::<f64>().is_ok();
    match number {
        true => v.to_string(),
        false if v.is_empty() => "''".into(),
        false => format!("'{}'", crate::escape::text(v).replace('\'', "''")),
    }
}

/// A shared value of a unique key: one column's value, or `(a, b)` for several.
pub fn value_text(values: &[Option<String>]) -> String {
    let one = |v: &Option<String>| v.as_deref().map(shown).unwrap_or_else(|| "NULL".into());
    match values {
        [v] => one(v),
        _ => format!(
            "({})",
            values.iter().map(one).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The report of every violation found: one line per constraint with its count and
/// examples.
pub fn describe(found: &[Found]) -> String {
    let mut out = Vec::new();
    for f in found {
        let count = match f.kind {
            RuleKind::Unique => format!(
                "{} share {}",
                crate::report::count(f.rows, "row"),
                crate::report::count(f.count, "value")
            ),
            RuleKind::Rows => crate::report::count(f.count, "row"),
            RuleKind::Pairs if f.count > PAIRS_CAP => {
                format!("more than {PAIRS_CAP} pairs in conflict")
            }
            RuleKind::Pairs => format!("{} in conflict", crate::report::count(f.count, "pair")),
        };
        let examples: Vec<String> = f
            .examples
            .iter()
            .map(|(value, origins)| {
                let from = and_list(origins);
                match value {
                    Some(v) => format!("{v} from {from}"),
                    None => from,
                }
            })
            .collect();
        out.push(format!(
            "  - `{}` {}: {count}; e.g. {}",
            crate::escape::text(&f.table),
            f.label,
            examples.join("; ")
        ));
    }
    out.join("\n")
}

/// What the mapping can do about what was found, with its lines for the first example
/// of each kind.
pub fn hint(found: &[Found]) -> String {
    let mut out = Vec::new();
    let table = |ds: &Option<String>| match ds {
        Some(d) => format!(
            "`[tables.{}]`",
            crate::escape::text(&crate::mapping::file::quote_key(d))
        ),
        None => "the dataset's `[tables.X]`".into(),
    };
    // A TOML key (quoted unless bare), and the same column in SQL.
    let col = |c: &Option<String>| {
        c.as_deref()
            .map(|c| crate::escape::text(&crate::mapping::file::quote_key(c)).into_owned())
            .unwrap_or_else(|| "column".into())
    };
    let sql_col = |c: &Option<String>| {
        c.as_deref()
            .map(|c| {
                let plain = c
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                match plain {
                    true => c.to_string(),
                    false => crate::escape::text(&ident(c)).into_owned(),
                }
            })
            .unwrap_or_else(|| "column".into())
    };
    if let Some(f) = found.iter().find(|f| f.kind != RuleKind::Rows) {
        out.push(format!(
            "rows that share a key need their own values: e.g. {} `set = {{ {} = \"...\" }}` gives \
             its rows others (for a fold, a counter from a ranking in `[with]`: see the fold \
             in docs/mapping.md), or `where = \"...\"` leaves rows out",
            table(&f.dataset),
            col(&f.column)
        ));
    }
    if let Some(f) = found
        .iter()
        .find(|f| f.kind == RuleKind::Rows && f.column.is_some())
    {
        let (c, s) = (col(&f.column), sql_col(&f.column));
        out.push(format!(
            "{} `set = {{ {c} = \"COALESCE({s}, ...)\" }}` gives it a value where it has none \
             (a column the export lacks: `set = {{ {c} = \"...\" }}`)",
            table(&f.dataset)
        ));
    }
    if let Some(f) = found
        .iter()
        .find(|f| f.kind == RuleKind::Rows && f.column.is_none())
    {
        out.push(format!(
            "a row a CHECK refuses: a `set` in {} makes its value one the CHECK accepts, or \
             `where` leaves it out",
            table(&f.dataset)
        ));
    }
    out.push(
        "or fix the data at the source, or the target's constraint if the data is right and it \
         is not; `import --rehearse` lists these again without writing"
            .into(),
    );
    out.join("; ")
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{IndexConstraint, PgColumn, PgIndex};

    type Pairs<'a> = Option<Vec<(&'a str, &'a str)>>;
    type OriginCase<'a> = (
        Option<&'a str>,
        Option<Vec<Option<&'a str>>>,
        Option<i64>,
        &'a str,
    );

    #[test]
    fn exclusion_elements_are_read_when_plain_columns() {
        let cases: &[(&str, Pairs)] = &[
            (
                "EXCLUDE USING gist (room WITH =, during WITH &&)",
                Some(vec![("room", "="), ("during", "&&")]),
            ),
            (
                "EXCLUDE USING gist (\"Room\" WITH =)",
                Some(vec![("\"Room\"", "=")]),
            ),
            ("EXCLUDE USING gist (lower(name) WITH =)", None),
            ("EXCLUDE USING gist (room WITH =) WHERE ((active))", None),
        ];
        for (def, want) in cases {
            let want = want.as_ref().map(|v| {
                v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(exclusion_pairs(def), want, "{def}");
        }
    }

    #[test]
    fn values_show_numbers_bare_and_text_quoted() {
        let cases: &[(&[Option<&str>], &str)] = &[
            (&[Some("17")], "17"),
            (&[Some("-1.5")], "-1.5"),
            (&[Some("2024-02-01")], "'2024-02-01'"),
            (&[Some("jane@x")], "'jane@x'"),
            (&[Some("O'Brien")], "'O''Brien'"),
            (&[Some("")], "''"),
            (&[Some("a\nb")], "'a\\nb'"),
            (&[Some("1"), None], "(1, NULL)"),
        ];
        for (values, want) in cases {
            let v: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(value_text(&v), *want);
        }
    }

    #[test]
    fn check_bodies_lose_their_keyword_and_validity() {
        assert_eq!(check_expr("CHECK ((price > 0))"), "(((price > 0)))");
        assert_eq!(check_expr("CHECK ((a <> b)) NOT VALID"), "(((a <> b)))");
    }

    #[test]
    fn rules_name_every_constraint_and_relax_them_one_by_one() {
        let t = PgTable {
            name: "User".into(),
            columns: vec![
                PgColumn {
                    name: "id".into(),
                    not_null: true,
                    ..PgColumn::default()
                },
                PgColumn {
                    name: "email".into(),
                    ..PgColumn::default()
                },
            ],
            indexes: vec![
                PgIndex {
                    name: "User_pkey".into(),
                    schema: "app".into(),
                    table: "User".into(),
                    def: "CREATE UNIQUE INDEX ...".into(),
                    unique: true,
                    valid: true,
                    keys: vec!["id".into()],
                    constraint: Some(IndexConstraint {
                        name: "User_pkey".into(),
                        kind: ConstraintKind::PrimaryKey,
                        def: "PRIMARY KEY (id)".into(),
                        deferrable: false,
                        deferred: false,
                        comment: None,
                    }),
                    ..PgIndex::default()
                },
                PgIndex {
                    name: "user_email".into(),
                    schema: "app".into(),
                    table: "User".into(),
                    def:
                        "CREATE UNIQUE INDEX user_email ON app.\"User\" USING btree (lower(email))"
                            .into(),
                    unique: true,
                    valid: true,
                    keys: vec!["lower(email)".into()],
                    ..PgIndex::default()
                },
            ],
            checks: vec![("email_at".into(), "CHECK ((email ~~ '%@%'::text))".into())],
            ..PgTable::default()
        };
        let r = rules(&t, "app");
        let labels: Vec<&str> = r.rules.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                r#"PRIMARY KEY "User_pkey" (id)"#,
                r#"UNIQUE INDEX "user_email" (lower(email))"#,
                r#"CHECK "email_at" ((email ~~ '%@%'::text))"#,
                r#"NOT NULL "id""#,
            ]
        );
        assert!(
            r.relax.starts_with(
                "DO $pgc$ BEGIN\n  ALTER TABLE \"app\".\"User\" ADD COLUMN pgconverge_dataset text"
            ),
            "{}",
            r.relax
        );
        for step in [
            r#"BEGIN ALTER TABLE "app"."User" DROP CONSTRAINT "User_pkey" CASCADE; EXCEPTION WHEN OTHERS THEN NULL; END"#,
            r#"BEGIN DROP INDEX "app"."user_email" CASCADE; EXCEPTION WHEN OTHERS THEN NULL; END"#,
            r#"BEGIN ALTER TABLE "app"."User" ALTER COLUMN "id" DROP NOT NULL; EXCEPTION WHEN OTHERS THEN NULL; END"#,
        ] {
            assert!(r.relax.contains(step), "{step} in {}", r.relax);
        }
        assert!(
            r.rules[1]
                .sql
                .contains("WHERE (lower(email)) IS NOT NULL GROUP BY 1 HAVING count(*) > 1"),
            "{}",
            r.rules[1].sql
        );
        // A name holding the DO block's quote gets another quote.
        let mut odd = t.clone();
        odd.name = "a$pgc$b".into();
        assert!(rules(&odd, "app").relax.starts_with("DO $pgc1$ BEGIN"));
    }

    #[test]
    fn origins_and_reports_name_dataset_and_source_key() {
        let keys: BTreeMap<String, Vec<String>> = [
            ("Teacher".to_string(), vec!["id".to_string()]),
            ("Link".to_string(), vec!["a".to_string(), "b".to_string()]),
        ]
        .into();
        let cases: &[OriginCase] = &[
            (
                Some("Teacher"),
                Some(vec![Some("17")]),
                Some(3),
                "Teacher id=17",
            ),
            (
                Some("Link"),
                Some(vec![Some("x y"), None]),
                Some(3),
                "Link (a='x y', b=NULL)",
            ),
            (Some("Query"), None, Some(4), "Query record 4"),
            (
                None,
                None,
                None,
                "a row not loaded from the export (added by a hook or a trigger)",
            ),
        ];
        for (ds, key, rec, want) in cases {
            let key: Option<Vec<Option<String>>> = key
                .as_ref()
                .map(|k| k.iter().map(|v| v.map(str::to_string)).collect());
            assert_eq!(origin(*ds, key.as_deref(), *rec, &keys), *want);
        }
        let found = vec![Found {
            table: "User".into(),
            label: r#"UNIQUE "User_email_key" (email)"#.into(),
            kind: RuleKind::Unique,
            count: 2,
            rows: 5,
            examples: vec![(
                Some("'jane@x'".into()),
                vec!["Parent id=812".into(), "Teacher id=17".into()],
            )],
            dataset: Some("Teacher".into()),
            column: Some("email".into()),
        }];
        assert_eq!(
            describe(&found),
            r#"  - `User` UNIQUE "User_email_key" (email): 5 rows share 2 values; e.g. 'jane@x' from Parent id=812 and Teacher id=17"#
        );
        assert_eq!(
            hint(&found),
            r#"rows that share a key need their own values: e.g. `[tables.Teacher]` `set = { email = "..." }` gives its rows others (for a fold, a counter from a ranking in `[with]`: see the fold in docs/mapping.md), or `where = "..."` leaves rows out; or fix the data at the source, or the target's constraint if the data is right and it is not; `import --rehearse` lists these again without writing"#
        );
    }
}
