//! PURE: one dataset of a delta against its target table: the deleted (and removed) keys
//! copied into temporary tables, the upserted rows staged and merged by key, and what the
//! upsert does when another unique constraint clashes.

use crate::codec::adapt::Adapt;
use crate::db::catalog::Catalog;
use crate::db::sql::pg::{ident, qualified};
use crate::import::compute;
use crate::import::plan::{Clash, Copy, Feed, Shape, TableLoad};
use crate::mapping::Mapping;
use crate::store::chain::{HOW_COLUMN, KeyFile, TableDelta};

use super::{DeltaTable, KeysLoad, cols, equal};

pub(super) fn delta_table(
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
    // A key the mapping computes is a new key each time: the rows could not be matched.
    if let Some(k) = mapping
        .table(&load.dataset)
        .and_then(|m| key.iter().find(|k| m.set.contains_key(*k)))
    {
        return Err(format!(
            "table `{}`: {}: [tables.{}] set `{k}`: a `set` on a key column generates keys, \
             which a delta cannot match again: its rows would be inserted beside the ones \
             they update (hint: drop that set from the mapping, or keep the source's key)",
            load.table, mapping.origin, load.dataset
        ));
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
