//! PURE: keys other datasets follow (docs/DESIGN.md "Keys other datasets follow"). A
//! dataset that another's `set` names in `key_of('D', ...)` is written through its
//! staging table in one statement that also records, per source key, the key its target
//! row was given, in `pgconverge.key_map`; `pgconverge.key_of` reads that map.

use std::collections::BTreeMap;

use crate::db::catalog::Catalog;
use crate::db::sql::pg::{ident, literal, qualified};
use crate::import::compute::CastTo;
use crate::mapping::Mapping;

use super::{Plan, Statement};

/// Everything the map needs in the target, created if absent (the probe of the `set`
/// expressions runs it too, in its rolled-back transaction).
pub const SETUP: &str = "CREATE SCHEMA IF NOT EXISTS pgconverge;
CREATE TABLE IF NOT EXISTS pgconverge.key_map (target_schema text NOT NULL, dataset text NOT NULL,
  source_key text[] NOT NULL, target_key text NOT NULL, PRIMARY KEY (target_schema, dataset, source_key));
DO $pgconverge$ BEGIN
  IF (SELECT count(*) FROM pg_attribute WHERE attrelid = 'pgconverge.key_map'::regclass
      AND attname IN ('target_schema', 'dataset', 'source_key', 'target_key') AND NOT attisdropped) <> 4 THEN
    RAISE EXCEPTION USING ERRCODE = '42P07',
      MESSAGE = 'pgconverge.key_map exists but is not the key map pgconverge writes',
      HINT = 'it belongs to something else: rename it, or drop it if it is an old key map';
  END IF;
END $pgconverge$;
CREATE OR REPLACE FUNCTION pgconverge.key_of(target_schema text, dataset text, source_key anyelement)
  RETURNS text LANGUAGE plpgsql STABLE AS $pgconverge$
DECLARE k text;
BEGIN
  IF source_key IS NULL THEN RETURN NULL; END IF;
  SELECT m.target_key INTO k FROM pgconverge.key_map m
   WHERE m.target_schema = key_of.target_schema AND m.dataset = key_of.dataset
     AND m.source_key = ARRAY[key_of.source_key::text];
  IF k IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '23503',
      MESSAGE = format('key_of(%L, %L): dataset %s has no row with source key %s', dataset, source_key, dataset, source_key),
      HINT = 'the row it follows was not exported (a where or a query left it out) or not loaded, or its key is spelt otherwise (keys are compared as text): follow only rows the followed dataset holds, or leave this row out with where';
  END IF;
  RETURN k;
END $pgconverge$";

/// The hint of a refused `key_of`.
pub const HINT: &str = "fix the mapping as the problem says (docs/mapping.md, \"Keys the target \
    draws\"); a change to `key` or a `query` changes what the export holds: export again \
    (migrate does)";

/// What a staged INSERT is made of, kept so that it can be written again with the map.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertParts {
    pub stage: String,
    pub kept: Vec<String>,
    /// (column, expression, type) of the per-row `set`s.
    pub sets: Vec<(String, String, CastTo)>,
    pub overriding: bool,
}

/// One dataset whose keys are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyMap {
    pub dataset: String,
    pub table: String,
    /// The target's primary key column, and the source key's column in the staging table.
    pub target_key: String,
    pub source_key: String,
    /// The datasets whose `set`s follow it.
    pub followers: Vec<String>,
}

/// The staged INSERT of a followed dataset, recording its map: the staging rows with
/// their new key drawn once (a CTE read twice is materialised), inserted into the
/// target, and (dataset, source key, new key) into `pgconverge.key_map`. `extra`: more
/// (column, expression) pairs for the target (the diagnosis' trace).
pub fn keyed_insert(
    schema: &str,
    table: &str,
    parts: &InsertParts,
    map: &KeyMap,
    extra: &[(String, String)],
) -> String {
    let (mut into, mut select) = (Vec::new(), Vec::new());
    let mut key_expr = ident(&map.target_key);
    for c in &parts.kept {
        if *c != map.target_key {
            into.push(ident(c));
            select.push(ident(c));
        }
    }
    for (c, e, ty) in &parts.sets {
        if *c == map.target_key {
            key_expr = ty.apply(e);
        } else {
            into.push(ident(c));
            select.push(ty.apply(e));
        }
    }
    into.push(ident(&map.target_key));
    select.push("pgconverge_new_key".into());
    for (c, e) in extra {
        into.push(ident(c));
        select.push(e.clone());
    }
    format!(
        "WITH src AS (SELECT *, {key_expr} AS pgconverge_new_key FROM {stage}), \
         ins AS (INSERT INTO {target} ({into}){overriding} SELECT {select} FROM src) \
         INSERT INTO pgconverge.key_map (target_schema, dataset, source_key, target_key) \
         SELECT {schema_name}, {name}, ARRAY[{source}::text], pgconverge_new_key::text FROM src",
        schema_name = literal(schema),
        stage = ident(&parts.stage),
        target = qualified(schema, table),
        into = into.join(", "),
        overriding = if parts.overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        select = select.join(", "),
        name = literal(&map.dataset),
        source = ident(&map.source_key),
    )
}

/// The datasets other datasets follow, checked (refusals go to `plan.errors`), with
/// their staged INSERTs rewritten to record the map.
pub(super) fn plan_maps(plan: &mut Plan, cat: &Catalog, mapping: &Mapping, schema: &str) {
    let mut followers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &plan.tables {
        let Some(m) = mapping.table(&t.dataset) else {
            continue;
        };
        for expr in m.set.values() {
            for d in crate::mapping::keys::followed(expr) {
                let list = followers.entry(d).or_default();
                if !list.contains(&t.dataset) {
                    list.push(t.dataset.clone());
                }
            }
        }
    }
    for (d, by) in followers {
        let here = match by.as_slice() {
            [one] => format!("`{one}` follows `key_of('{d}', ...)`"),
            [init @ .., last] => format!(
                "`{}` and `{last}` follow `key_of('{d}', ...)`",
                init.join("`, `")
            ),
            [] => continue,
        };
        if by.contains(&d) {
            plan.errors.push(format!(
                "`{d}` follows its own keys (`key_of('{d}', ...)` in its own `set`): they are \
                 drawn in the same statement, so no row can find another's. A dataset cannot \
                 follow itself: load the column NULL (leave it out) and set it in an `[import] \
                 after` hook that reads pgconverge.key_map (target_schema, dataset, \
                 source_key, target_key), or keep the source's ids for this table"
            ));
            continue;
        }
        let Some(at) = plan.tables.iter().position(|t| t.dataset == d) else {
            let near = crate::hint::similar(&d, plan.tables.iter().map(|t| t.dataset.as_str()));
            plan.errors.push(format!(
                "{here}, but dataset `{d}` is not loaded by this import{}",
                match near.first() {
                    Some(n) => format!(" (did you mean `{n}`?)"),
                    None => String::new(),
                }
            ));
            continue;
        };
        let load = &plan.tables[at];
        let Some(parts) = load.insert_parts.clone() else {
            plan.errors.push(format!(
                "{here}, but `{d}` is copied as it is: key_of follows a dataset whose key a \
                 per-row `set` gives (e.g. `[tables.{d}]` `set = {{ id = \"gen_random_uuid()\" }}`)"
            ));
            continue;
        };
        let source_key = match load.key.as_slice() {
            [k] => load.target_columns[*k].clone(),
            _ => {
                plan.errors.push(format!(
                    "{here}, but `{d}` has no one-column source key (a `query` dataset names \
                     it: `[tables.{d}]` `key = [\"id\"]`)"
                ));
                continue;
            }
        };
        let pk = cat
            .tables
            .get(&load.table)
            .map(|t| t.primary_key.clone())
            .unwrap_or_default();
        let [target_key] = pk.as_slice() else {
            plan.errors.push(format!(
                "{here}, but its target table `{}` has no one-column primary key",
                load.table
            ));
            continue;
        };
        for f in &by {
            let pos = plan.tables.iter().position(|t| &t.dataset == f);
            if pos.is_some_and(|p| p < at) {
                plan.errors.push(format!(
                    "`{f}` follows `key_of('{d}', ...)` but loads before `{d}` (the load order \
                     is parents first along foreign keys: give `{f}`'s table a foreign key to \
                     `{}`)",
                    load.table
                ));
            }
        }
        let map = KeyMap {
            dataset: d.clone(),
            table: load.table.clone(),
            target_key: target_key.clone(),
            source_key,
            followers: by.clone(),
        };
        let trace = super::collisions::trace_columns(&d, std::slice::from_ref(&map.source_key));
        let load = &mut plan.tables[at];
        if let Some(staging) = load.staging.as_mut() {
            staging.2 = keyed_insert(schema, &map.table, &parts, &map, &[]);
        }
        load.traced = Some(keyed_insert(schema, &map.table, &parts, &map, &trace));
        plan.mapping_steps.push(format!(
            "key map: `{d}` -> table `{}`: the key given to `{}` recorded per source key `{}` in \
             pgconverge.key_map; followed by {}",
            map.table,
            map.target_key,
            map.source_key,
            by.iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        plan.key_maps.push(map);
    }
}

impl Plan {
    /// The map's objects and the emptying of this import's entries, right after the
    /// opening (nothing when no dataset is followed).
    pub(super) fn key_map_setup(&self) -> Vec<Statement> {
        if self.key_maps.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = self.key_maps.iter().map(|m| literal(&m.dataset)).collect();
        vec![
            Statement::sql(SETUP, "creating pgconverge.key_map and pgconverge.key_of"),
            Statement::sql(
                format!(
                    "DELETE FROM pgconverge.key_map WHERE target_schema = {} AND dataset IN ({})",
                    literal(&self.schema),
                    names.join(", ")
                ),
                "emptying the key maps this import writes",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followed_dataset_draws_its_key_once_and_records_it() {
        let parts = InsertParts {
            stage: "pgconverge_stage_0".into(),
            kept: vec!["email".into()],
            sets: vec![
                ("id".into(), "gen_random_uuid()".into(), "uuid".into()),
                ("role".into(), "'teacher'".into(), "text".into()),
            ],
            overriding: false,
        };
        let map = KeyMap {
            dataset: "teacher_users".into(),
            table: "User".into(),
            target_key: "id".into(),
            source_key: "id".into(),
            followers: vec!["Teacher".into()],
        };
        assert_eq!(
            keyed_insert("app", "User", &parts, &map, &[]),
            r#"WITH src AS (SELECT *, CAST((gen_random_uuid()) AS uuid) AS pgconverge_new_key FROM "pgconverge_stage_0"), ins AS (INSERT INTO "app"."User" ("email", "role", "id") SELECT "email", CAST(('teacher') AS text), pgconverge_new_key FROM src) INSERT INTO pgconverge.key_map (target_schema, dataset, source_key, target_key) SELECT 'app', 'teacher_users', ARRAY["id"::text], pgconverge_new_key::text FROM src"#
        );
        // A key written as exported (no `set` for it): the map is the identity.
        let kept = InsertParts {
            kept: vec!["id".into(), "email".into()],
            sets: vec![("role".into(), "'t'".into(), "text".into())],
            ..parts
        };
        assert!(
            keyed_insert("app", "User", &kept, &map, &[])
                .starts_with(r#"WITH src AS (SELECT *, "id" AS pgconverge_new_key"#)
        );
    }
}
