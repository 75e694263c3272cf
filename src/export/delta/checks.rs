//! PURE: what a delta chain can follow, decided before anything is read (by the base as
//! by every delta, so a chain never fails later for a reason its base could have named):
//! per exported table the key its rows are matched on (the primary key, or a unique key
//! over NOT NULL columns), each key column's type, or why the table must be copied whole
//! (`--delta-full-copy`); the source's foreign keys with actions whose effects the log
//! does not show; and every refusal, worded with what to do. Also the comparison of the
//! live catalog with the chain's previous manifest (a schema change refuses a delta).

use std::collections::BTreeMap;

use crate::codec::binlog_row::{KeyType, key_type};
use crate::config::Engine;
use crate::db::catalog::{SourceForeignKey, SourceTable, UniqueKey};
use crate::export::plan::TablePlan;
use crate::mapping::Mapping;
use crate::store::chain::Cascade;
use crate::store::manifest::TableEntry;

/// How a delta follows one exported table.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    pub table: String,
    /// The key's columns, their positions among ALL the table's columns (the order of
    /// the log's row images, generated columns included) and their types.
    pub key: Vec<String>,
    pub positions: Vec<usize>,
    pub types: Vec<KeyType>,
    /// Copied whole in every delta that touches it, and why.
    pub full_copy: Option<String>,
}

/// What a chain follows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chain {
    pub tables: BTreeMap<String, Followed>,
    /// The source's foreign keys with an action among the exported tables.
    pub cascades: Vec<Cascade>,
}

/// The key a table is followed by: its primary key, else its first unique index over
/// whole NOT NULL columns.
fn key_of(t: &SourceTable, uniques: &[UniqueKey]) -> Option<Vec<String>> {
    if !t.primary_key.is_empty() {
        return Some(t.primary_key.clone());
    }
    uniques
        .iter()
        .filter(|u| u.table == t.name && !u.prefix)
        .find(|u| {
            u.columns.iter().all(|c| {
                t.columns
                    .iter()
                    .any(|sc| &sc.name == c && !sc.nullable && !sc.generated)
            })
        })
        .map(|u| u.columns.clone())
}

/// The key type of a PostgreSQL source column (`pg_type.typname` of its base type,
/// `enum` for enums, `array` for arrays), or why a delta cannot follow a key made of
/// it: a PostgreSQL delta matches keys by their text, cast back to the column's type,
/// so it needs an exact text form and an equality.
pub fn pg_key_type(typname: &str) -> Result<KeyType, String> {
    let text = || KeyType::Str {
        charset: "utf8".into(),
    };
    Ok(match typname {
        "int2" | "int4" | "int8" | "oid" => KeyType::Int { unsigned: false },
        "numeric" => KeyType::Decimal,
        "text" | "varchar" | "bpchar" | "name" | "citext" | "uuid" | "enum" | "bool" | "inet"
        | "cidr" | "macaddr" | "macaddr8" => text(),
        "bytea" => KeyType::Binary { len: None },
        "date" => KeyType::Date,
        "timestamp" => KeyType::DateTime,
        "timestamptz" => KeyType::Timestamp,
        other => {
            return Err(format!(
                "a key column of type {other} (a delta from PostgreSQL follows integer, \
                 numeric, text, uuid, enum, boolean, network address, bytea, date and \
                 timestamp keys)"
            ));
        }
    })
}

/// Decide how each exported dataset is followed; every refusal at once.
pub fn follow(
    plans: &[TablePlan],
    catalog: &[SourceTable],
    uniques: &[UniqueKey],
    fks: &[SourceForeignKey],
    mapping: &Mapping,
    full_copy_allowed: bool,
    engine: Engine,
) -> Result<Chain, Vec<String>> {
    let mut errors = Vec::new();
    let mut chain = Chain::default();
    let full_copy_hint = "pass --delta-full-copy to copy it whole in every delta that touches it";
    for plan in plans {
        let name = &plan.name;
        if plan.query.is_some() {
            errors.push(format!(
                "dataset `{name}` is the mapping's `query`: a derived dataset has no key to \
                 follow in the log (hint: export it from its tables, or leave it out of the chain with --exclude)"
            ));
            continue;
        }
        let Some(t) = catalog.iter().find(|t| &t.name == name) else {
            errors.push(format!("table `{name}` is no longer in the source"));
            continue;
        };
        let mut followed = Followed {
            table: name.clone(),
            key: Vec::new(),
            positions: Vec::new(),
            types: Vec::new(),
            full_copy: None,
        };
        let whole = |why: String, errors: &mut Vec<String>| {
            if full_copy_allowed {
                Some(why)
            } else {
                errors.push(format!("table `{name}`: {why} (hint: {full_copy_hint})"));
                None
            }
        };
        match key_of(t, uniques) {
            None => {
                followed.full_copy = whole(
                    "it has neither a primary key nor a unique key over NOT NULL columns".into(),
                    &mut errors,
                );
            }
            Some(key) => {
                let mut unsupported = None;
                for k in &key {
                    if !plan.columns.iter().any(|c| &c.name == k) {
                        unsupported = Some(format!(
                            "its key column `{k}` is not exported (the mapping drops it, or it is generated)"
                        ));
                        break;
                    }
                    let Some(pos) = t.columns.iter().position(|c| &c.name == k) else {
                        unsupported = Some(format!("its key column `{k}` is not in the catalog"));
                        break;
                    };
                    let c = &t.columns[pos];
                    let kt = match engine {
                        Engine::Mysql => {
                            key_type(&c.data_type, &c.column_type, c.charset.as_deref())
                        }
                        Engine::Postgresql => pg_key_type(&c.data_type),
                    };
                    match kt {
                        Ok(kt) => {
                            followed.positions.push(pos);
                            followed.types.push(kt);
                        }
                        Err(why) => {
                            unsupported = Some(format!("its key column `{k}` is {why}"));
                            break;
                        }
                    }
                }
                match unsupported {
                    Some(why) => followed.full_copy = whole(why, &mut errors),
                    None => followed.key = key.clone(),
                }
                if let Some(m) = mapping.table(name) {
                    for k in &key {
                        let target = mapping.target_column(name, k);
                        if m.set.contains_key(&target) {
                            errors.push(format!(
                                "{}: [tables.{name}] set `{target}`: a `set` on a key column \
                                 generates keys, which a delta cannot match again (hint: drop \
                                 the set, or keep the source's key)",
                                mapping.origin
                            ));
                        }
                    }
                }
            }
        }
        chain.tables.insert(name.clone(), followed);
    }
    for fk in fks.iter().filter(|fk| fk.has_action()) {
        let (child, parent) = (&fk.child, &fk.parent);
        if !chain.tables.contains_key(child) {
            continue;
        }
        if fk.on_delete == "SET DEFAULT" || fk.on_update == "SET DEFAULT" {
            errors.push(format!(
                "foreign key `{}` ({child} -> {parent}) has a SET DEFAULT action, which a delta does not follow",
                fk.name
            ));
            continue;
        }
        let Some(p) = chain.tables.get(parent) else {
            errors.push(format!(
                "table `{child}` is exported but its parent `{parent}` is not, and foreign key \
                 `{}` lets changes of `{parent}` change `{child}` unseen (hint: export both, or neither)",
                fk.name
            ));
            continue;
        };
        if p.full_copy.is_some() {
            errors.push(format!(
                "foreign key `{}`: its parent `{parent}` is copied whole, so the changes its \
                 actions make to `{child}` cannot be followed",
                fk.name
            ));
            continue;
        }
        let mut sorted_fk = fk.parent_columns.clone();
        sorted_fk.sort();
        let mut sorted_key = p.key.clone();
        sorted_key.sort();
        if sorted_fk != sorted_key {
            errors.push(format!(
                "foreign key `{}` ({child}.{} -> {parent}.{}) has an action but references \
                 columns other than `{parent}`'s key ({}), which a delta cannot follow",
                fk.name,
                fk.child_columns.join(","),
                fk.parent_columns.join(","),
                p.key.join(",")
            ));
            continue;
        }
        chain.cascades.push(fk.clone());
    }
    if errors.is_empty() {
        Ok(chain)
    } else {
        Err(errors)
    }
}

/// The foreign keys with an action that changed since the previous export (`was`: its
/// record, None when it has none: an older base): a delta applies the source's actions to
/// the rows only the target holds, so an action changed without a trace in the log
/// (`sql_log_bin = 0`) would be applied to deletes made under the old one.
pub fn cascade_changes(was: Option<&[Cascade]>, now: &[Cascade]) -> Vec<String> {
    let Some(was) = was else {
        return Vec::new();
    };
    let show = |fk: &Cascade| {
        format!(
            "foreign key `{}` ({}.{} -> {}.{}, ON DELETE {} ON UPDATE {})",
            fk.name,
            fk.child,
            fk.child_columns.join(", "),
            fk.parent,
            fk.parent_columns.join(", "),
            fk.on_delete,
            fk.on_update
        )
    };
    let mut out = Vec::new();
    for fk in was.iter().filter(|fk| !now.contains(fk)) {
        match now
            .iter()
            .find(|n| n.name == fk.name && n.child == fk.child)
        {
            Some(n) => out.push(format!("{} was {}", show(n), show(fk))),
            None => out.push(format!("{} is gone", show(fk))),
        }
    }
    for fk in now.iter().filter(|fk| !was.contains(fk)) {
        if !was.iter().any(|w| w.name == fk.name && w.child == fk.child) {
            out.push(format!("{} is new", show(fk)));
        }
    }
    out
}

/// How the live catalog differs from what the chain's previous export recorded, table
/// by table (empty: no schema change).
pub fn schema_changes(previous: &[&TableEntry], catalog: &[SourceTable]) -> Vec<String> {
    let mut out = Vec::new();
    for e in previous {
        if e.query.is_some() {
            continue;
        }
        let Some(t) = catalog.iter().find(|t| t.name == e.name) else {
            out.push(format!("table `{}` no longer exists", e.name));
            continue;
        };
        if let Some(was) = &e.partitions {
            let now = t.partitions.clone().unwrap_or_default();
            let attached: Vec<&String> = now.iter().filter(|p| !was.contains(p)).collect();
            let detached: Vec<&String> = was.iter().filter(|p| !now.contains(p)).collect();
            for (what, list) in [("attached", attached), ("detached", detached)] {
                if !list.is_empty() {
                    out.push(format!(
                        "table `{}`: partition {} {what}",
                        e.name,
                        list.iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        if t.primary_key != e.primary_key {
            out.push(format!(
                "table `{}`: primary key ({}) was ({})",
                e.name,
                t.primary_key.join(", "),
                e.primary_key.join(", ")
            ));
        }
        for c in &e.columns {
            match t.columns.iter().find(|l| l.name == c.name) {
                None => out.push(format!(
                    "table `{}`: column `{}` was dropped",
                    e.name, c.name
                )),
                Some(l) if l.generated => out.push(format!(
                    "table `{}`: column `{}` became a generated column",
                    e.name, c.name
                )),
                Some(l) if !l.column_type.eq_ignore_ascii_case(&c.column_type) => {
                    out.push(format!(
                        "table `{}`: column `{}` is {}, was {}",
                        e.name, c.name, l.column_type, c.column_type
                    ))
                }
                Some(l) if l.nullable != c.nullable => out.push(format!(
                    "table `{}`: column `{}` is {}NULL now",
                    e.name,
                    c.name,
                    if l.nullable { "" } else { "NOT " }
                )),
                Some(_) => {}
            }
        }
        for l in &t.columns {
            let known = e.columns.iter().any(|c| c.name == l.name)
                || e.dropped_columns.contains(&l.name)
                || e.generated_columns.contains(&l.name);
            if !known {
                out.push(format!("table `{}`: column `{}` was added", e.name, l.name));
            }
        }
        let order: Vec<&str> = t
            .columns
            .iter()
            .filter(|l| e.columns.iter().any(|c| c.name == l.name))
            .map(|l| l.name.as_str())
            .collect();
        let was: Vec<&str> = e.columns.iter().map(|c| c.name.as_str()).collect();
        if order.len() == was.len() && order != was {
            out.push(format!("table `{}`: its columns were reordered", e.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::SourceColumn;

    fn col(name: &str, ty: &str, nullable: bool) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            nullable,
            generated: false,
            charset: None,
            labels: Vec::new(),
        }
    }

    fn table(name: &str, pk: &[&str], columns: Vec<SourceColumn>) -> SourceTable {
        SourceTable {
            name: name.into(),
            engine: "InnoDB".into(),
            estimated_rows: 0,
            columns,
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            auto_increment: None,
            partitions: None,
        }
    }

    fn plans_of(catalog: &[SourceTable], mapping: &Mapping) -> Vec<TablePlan> {
        let names: Vec<String> = catalog.iter().map(|t| t.name.clone()).collect();
        crate::export::plan::plan(
            catalog.to_vec(),
            &names,
            mapping,
            &Default::default(),
            crate::config::Engine::Mysql,
        )
    }

    fn fk(
        child: &str,
        parent: &str,
        cols: (&str, &str),
        on_delete: &str,
        on_update: &str,
    ) -> SourceForeignKey {
        SourceForeignKey {
            name: format!("{child}_{parent}"),
            child: child.into(),
            child_columns: vec![cols.0.into()],
            parent: parent.into(),
            parent_columns: vec![cols.1.into()],
            on_delete: on_delete.into(),
            on_update: on_update.into(),
        }
    }

    #[test]
    fn keys_full_copies_and_refusals() {
        let catalog = vec![
            table(
                "a",
                &["id"],
                vec![col("id", "bigint", false), col("x", "float", true)],
            ),
            table(
                "b",
                &[],
                vec![col("code", "varchar", false), col("n", "int", true)],
            ),
            table("c", &[], vec![col("n", "int", true)]),
            table("d", &["t"], vec![col("t", "time", false)]),
            table("e", &["a_id"], vec![col("a_id", "bigint", false)]),
        ];
        let uniques = vec![
            UniqueKey {
                table: "b".into(),
                name: "u".into(),
                columns: vec!["code".into()],
                prefix: false,
            },
            UniqueKey {
                table: "c".into(),
                name: "u".into(),
                columns: vec!["n".into()],
                prefix: false,
            },
        ];
        let mapping = Mapping::resolve("app", None, &crate::config::Layers::default()).unwrap();
        let plans = plans_of(&catalog, &mapping);
        let fks = vec![
            fk("e", "a", ("a_id", "id"), "CASCADE", "CASCADE"),
            fk("a", "e", ("id", "a_id"), "RESTRICT", "RESTRICT"),
        ];
        let errors = follow(
            &plans,
            &catalog,
            &uniques,
            &fks,
            &mapping,
            false,
            Engine::Mysql,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`c`") && e.contains("neither"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`d`") && e.contains("time"))
        );
        let chain = follow(
            &plans,
            &catalog,
            &uniques,
            &fks,
            &mapping,
            true,
            Engine::Mysql,
        )
        .unwrap();
        assert_eq!(chain.tables["a"].key, ["id"]);
        assert_eq!(chain.tables["b"].key, ["code"], "a unique NOT NULL key");
        assert!(chain.tables["c"].full_copy.is_some(), "nullable unique key");
        assert!(chain.tables["d"].full_copy.is_some());
        assert_eq!(chain.cascades.len(), 1, "only the key with an action");
    }

    #[test]
    fn a_query_and_a_set_that_generates_keys_are_refused() {
        let catalog = vec![table("a", &["id"], vec![col("id", "int", false)])];
        let text = "[tables.a]\nset = { id = \"gen_random_uuid()\" }\n";
        let mapping = Mapping::resolve(
            "app",
            Some(("m.toml", text.into())),
            &crate::config::Layers::default(),
        )
        .unwrap();
        let mut plans = plans_of(&catalog, &mapping);
        let errors = follow(&plans, &catalog, &[], &[], &mapping, true, Engine::Mysql).unwrap_err();
        assert!(errors[0].contains("generates keys"), "{errors:?}");
        plans[0].query = Some("SELECT 1 AS id".into());
        let errors = follow(&plans, &catalog, &[], &[], &mapping, true, Engine::Mysql).unwrap_err();
        assert!(errors[0].contains("the mapping's `query`"), "{errors:?}");
    }

    #[test]
    fn cascades_must_reference_the_parents_key_and_export_the_parent() {
        let catalog = vec![
            table(
                "p",
                &["id"],
                vec![col("id", "int", false), col("code", "int", false)],
            ),
            table(
                "c",
                &["id"],
                vec![col("id", "int", false), col("p_code", "int", true)],
            ),
        ];
        let mapping = Mapping::resolve("app", None, &crate::config::Layers::default()).unwrap();
        let plans = plans_of(&catalog, &mapping);
        let by_code = vec![fk("c", "p", ("p_code", "code"), "CASCADE", "RESTRICT")];
        let errors = follow(
            &plans,
            &catalog,
            &[],
            &by_code,
            &mapping,
            false,
            Engine::Mysql,
        )
        .unwrap_err();
        assert!(errors[0].contains("other than `p`'s key"), "{errors:?}");
        let only_child: Vec<TablePlan> = plans.into_iter().filter(|p| p.name == "c").collect();
        let by_id = vec![fk("c", "p", ("p_code", "id"), "SET NULL", "CASCADE")];
        let errors = follow(
            &only_child,
            &catalog,
            &[],
            &by_id,
            &mapping,
            false,
            Engine::Mysql,
        )
        .unwrap_err();
        assert!(errors[0].contains("its parent `p`"), "{errors:?}");
    }

    #[test]
    fn foreign_key_actions_changed_since_the_previous_export_are_named() {
        let fk = |name: &str, on_delete: &str| Cascade {
            name: name.into(),
            child: "gc".into(),
            child_columns: vec!["child_id".into()],
            parent: "child".into(),
            parent_columns: vec!["id".into()],
            on_delete: on_delete.into(),
            on_update: "CASCADE".into(),
        };
        let was = [fk("fk_gc", "SET NULL"), fk("fk_old", "CASCADE")];
        assert!(cascade_changes(Some(&was), &was).is_empty());
        // An older base recorded none: nothing to compare with.
        assert!(cascade_changes(None, &[fk("fk_gc", "CASCADE")]).is_empty());
        let now = [fk("fk_gc", "CASCADE"), fk("fk_new", "SET NULL")];
        let changes = cascade_changes(Some(&was), &now);
        assert_eq!(
            changes,
            vec![
                "foreign key `fk_gc` (gc.child_id -> child.id, ON DELETE CASCADE ON UPDATE CASCADE) was foreign key `fk_gc` (gc.child_id -> child.id, ON DELETE SET NULL ON UPDATE CASCADE)".to_string(),
                "foreign key `fk_old` (gc.child_id -> child.id, ON DELETE CASCADE ON UPDATE CASCADE) is gone".to_string(),
                "foreign key `fk_new` (gc.child_id -> child.id, ON DELETE SET NULL ON UPDATE CASCADE) is new".to_string(),
            ]
        );
    }

    #[test]
    fn schema_changes_are_named() {
        let base = table(
            "t",
            &["id"],
            vec![col("id", "int", false), col("a", "int", true)],
        );
        let mapping = Mapping::resolve("app", None, &crate::config::Layers::default()).unwrap();
        let plan = &plans_of(std::slice::from_ref(&base), &mapping)[0];
        let entry = crate::export::assemble::provisional_entry(plan, vec!["t.csv".into()]);
        assert!(schema_changes(&[&entry], std::slice::from_ref(&base)).is_empty());
        let mut live = base.clone();
        live.columns.push(col("b", "int", true));
        live.columns[1].column_type = "bigint".into();
        let changes = schema_changes(&[&entry], &[live]);
        assert_eq!(changes.len(), 2, "{changes:?}");
        let mut reordered = base.clone();
        reordered.columns.swap(0, 1);
        assert!(schema_changes(&[&entry], &[reordered])[0].contains("reordered"));
        assert!(schema_changes(&[&entry], &[])[0].contains("no longer exists"));
    }
}
