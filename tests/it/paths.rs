//! One mapping, two paths: `export` -> `import` -> `verify` and `migrate` must give the
//! same target (docs/DESIGN.md "Same result on every path"). Every mapping test of the
//! suite that loads a target runs through [`both_paths`].

use std::path::Path;

use crate::export::export_dir;
use crate::harness::*;

/// A `set` column whose values are drawn per row (`gen_random_uuid()`, `nextval`): the two
/// paths cannot give the same values, so it is compared by count and distinctness only.
pub type Volatile<'a> = (&'a str, &'a str);

/// Runs `map` for the source `source` (a profile or a database name of `w`) through both
/// paths, each into a fresh PostgreSQL database made by `target_sql`, and asserts that the
/// two targets are identical: per table the md5 of its rows in key order, every sequence's
/// position; `volatile` columns (`("table", "column")`) by count and distinctness.
/// Returns the two databases (export -> import, migrate) for more checks.
pub fn both_paths(
    w: &World,
    source: &str,
    map: &Path,
    target_sql: &str,
    volatile: &[Volatile<'_>],
) -> (String, String) {
    let map = map.to_str().unwrap();
    let by_steps = w.pg_db("by_steps");
    let by_migrate = w.pg_db("by_migrate");
    pg_exec(&by_steps, target_sql);
    pg_exec(&by_migrate, target_sql);

    let o = w.run(&["export", source, "--map", map, "--out", "paths_steps"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let d = dir.to_str().unwrap();
    let o = w.run(&["import", d, "--yes", "--map", map, "--target-db", &by_steps]);
    assert_exit(&o, 0);
    let o = w.run(&["verify", d, "--map", map, "--target-db", &by_steps]);
    assert_exit(&o, 0);

    let o = w.run(&[
        "migrate",
        source,
        "--map",
        map,
        "--out",
        "paths_migrate",
        "--target-db",
        &by_migrate,
        "--yes",
    ]);
    assert_exit(&o, 0);

    let (a, b) = (
        target_state(&by_steps, volatile),
        target_state(&by_migrate, volatile),
    );
    assert_eq!(
        a, b,
        "export -> import (left) and migrate (right) gave different targets"
    );
    (by_steps, by_migrate)
}

/// Every user table (schemas other than the system's and `pgconverge`'s) as
/// `schema.table rows md5`, every volatile column as `schema.table.column rows distinct`,
/// every sequence as `schema.sequence last_value`.
pub fn target_state(db: &str, volatile: &[Volatile<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let tables = pg_rows(
        db,
        "SELECT n.nspname::text, c.relname::text,
           coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
             FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
             WHERE i.indrelid = c.oid AND i.indisprimary
               AND a.attrelid = c.oid AND a.attnum = k.attnum), '')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgconverge', 'pg_toast')
         ORDER BY 1, 2",
    );
    for t in tables {
        let (schema, table, pk) = (
            t[0].clone().unwrap(),
            t[1].clone().unwrap(),
            t[2].clone().unwrap(),
        );
        let skip: Vec<&str> = volatile
            .iter()
            .filter(|(vt, _)| *vt == table)
            .map(|(_, c)| *c)
            .collect();
        let cols: Vec<String> = pg_rows(
            db,
            &format!(
                "SELECT quote_ident(attname) FROM pg_attribute
                 WHERE attrelid = '{}.{}'::regclass AND attnum > 0 AND NOT attisdropped
                 ORDER BY attnum",
                quote(&schema),
                quote(&table)
            ),
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .filter(|c| !skip.iter().any(|s| quote(s) == *c || s == c))
        .collect();
        let list = if cols.is_empty() {
            "1".to_string()
        } else {
            cols.join(", ")
        };
        // No key, or a key drawn per row: the row's text orders the rows.
        let drawn = pk
            .split(", ")
            .any(|k| skip.iter().any(|s| quote(s) == k || *s == k));
        let (order, by) = match pk.is_empty() || drawn {
            true => ("1".to_string(), "x::text"),
            false => (pk, "o"),
        };
        let rel = format!("{}.{}", quote(&schema), quote(&table));
        let v = pg_rows(
            db,
            &format!(
                "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY {by}), ''))
                 FROM (SELECT ROW({list}) AS x, ROW({order}) AS o FROM {rel}) s"
            ),
        );
        out.push(format!("{rel} {}", v[0][0].clone().unwrap()));
        for c in &skip {
            let v = pg_rows(
                db,
                &format!(
                    "SELECT count({c})::text || ' ' || count(DISTINCT {c})::text FROM {rel}",
                    c = quote(c)
                ),
            );
            out.push(format!("{rel}.{c} {}", v[0][0].clone().unwrap()));
        }
    }
    for r in pg_rows(
        db,
        "SELECT schemaname::text || '.' || sequencename::text || ' ' || coalesce(last_value::text, 'unused')
         FROM pg_sequences WHERE schemaname NOT IN ('pgconverge') ORDER BY 1",
    ) {
        out.push(r[0].clone().unwrap());
    }
    out
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
