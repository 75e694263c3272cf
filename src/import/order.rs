//! PURE: the order tables load in: parents before children along the foreign keys among
//! them, so that a table loaded with its triggers firing (and its foreign-key checks on)
//! finds its parents' rows. A cycle is broken deterministically — the first remaining
//! table by name loads next — and said, with the foreign keys that then point at a
//! table not yet loaded.

use std::collections::BTreeSet;

use crate::db::catalog::ForeignKey;

/// The load order and what it had to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub tables: Vec<String>,
    /// Each broken cycle, in words: `a -> b -> a: `a` loads before its parent `b``.
    pub cycles: Vec<String>,
    /// Foreign keys whose child loads before its parent (the edges the breaks cut).
    pub early_children: Vec<ForeignKey>,
}

/// Order `tables` (names in `schema`) parents-first. Self-references and keys to tables
/// outside the set do not constrain the order.
pub fn load_order(tables: &[String], fks: &[ForeignKey], schema: &str) -> Order {
    let within: Vec<&ForeignKey> = fks
        .iter()
        .filter(|fk| {
            fk.child_schema == schema
                && fk.parent_schema == schema
                && fk.child != fk.parent
                && tables.contains(&fk.child)
                && tables.contains(&fk.parent)
        })
        .collect();
    let mut remaining: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    let mut order = Order {
        tables: Vec::new(),
        cycles: Vec::new(),
        early_children: Vec::new(),
    };
    let parents_left = |t: &str, remaining: &BTreeSet<&str>| -> Vec<&ForeignKey> {
        within
            .iter()
            .filter(|fk| fk.child == t && remaining.contains(fk.parent.as_str()))
            .copied()
            .collect()
    };
    while !remaining.is_empty() {
        // Ready tables in the given order (the manifest's), for a stable plan.
        let ready = tables
            .iter()
            .map(String::as_str)
            .find(|t| remaining.contains(t) && parents_left(t, &remaining).is_empty());
        let next = match ready {
            Some(t) => t,
            None => {
                let t = *remaining.iter().next().expect("not empty");
                let waiting = parents_left(t, &remaining);
                order.cycles.push(describe_cycle(t, &within, &remaining));
                order.early_children.extend(waiting.into_iter().cloned());
                t
            }
        };
        remaining.remove(next);
        order.tables.push(next.to_string());
    }
    order
}

/// `a -> b -> a: `a` loads before its parent `b``: the cycle through `start`, following
/// child -> parent edges among the remaining tables.
fn describe_cycle(start: &str, fks: &[&ForeignKey], remaining: &BTreeSet<&str>) -> String {
    let mut path = vec![start];
    let mut at = start;
    for _ in 0..=remaining.len() {
        let Some(parent) = fks
            .iter()
            .filter(|fk| fk.child == at && remaining.contains(fk.parent.as_str()))
            .map(|fk| fk.parent.as_str())
            .min()
        else {
            break;
        };
        if let Some(i) = path.iter().position(|p| *p == parent) {
            path.push(parent);
            let cycle = path[i..].join(" -> ");
            let parents: Vec<String> = fks
                .iter()
                .filter(|fk| fk.child == start && remaining.contains(fk.parent.as_str()))
                .map(|fk| format!("`{}`", fk.parent))
                .collect();
            return format!(
                "{cycle}: `{start}` loads before its parent {}",
                parents.join(", ")
            );
        }
        path.push(parent);
        at = parent;
    }
    format!("`{start}` loads before its parents")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            name: format!("{child}_{parent}"),
            child_schema: "public".into(),
            child: child.into(),
            child_columns: vec!["p".into()],
            parent_schema: "public".into(),
            parent: parent.into(),
            parent_columns: vec!["id".into()],
            deferrable: false,
        }
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parents_load_first_whatever_the_names() {
        // Alphabetical order would load `comment` before `post` and `user` (pgloader #745).
        let fks = [
            fk("comment", "post"),
            fk("post", "user"),
            fk("comment", "user"),
        ];
        let o = load_order(&names(&["comment", "post", "tag", "user"]), &fks, "public");
        assert_eq!(o.tables, names(&["tag", "user", "post", "comment"]));
        assert!(o.cycles.is_empty() && o.early_children.is_empty());
    }

    #[test]
    fn self_references_and_outside_tables_do_not_constrain() {
        let fks = [fk("node", "node"), fk("node", "elsewhere")];
        let o = load_order(&names(&["node"]), &fks, "public");
        assert_eq!(o.tables, names(&["node"]));
        assert!(o.cycles.is_empty());
        let mut other = fk("a", "b");
        other.parent_schema = "audit".into();
        let o = load_order(&names(&["a", "b"]), &[other], "public");
        assert_eq!(o.tables, names(&["a", "b"]));
    }

    #[test]
    fn a_cycle_is_broken_at_the_first_name_and_said() {
        let fks = [fk("a", "b"), fk("b", "c"), fk("c", "a"), fk("d", "a")];
        let o = load_order(&names(&["d", "c", "b", "a"]), &fks, "public");
        assert_eq!(o.tables, names(&["a", "d", "c", "b"]));
        assert_eq!(
            o.cycles,
            ["a -> b -> c -> a: `a` loads before its parent `b`"]
        );
        assert_eq!(o.early_children, [fks[0].clone()]);
        // Deterministic: the same input gives the same order.
        assert_eq!(load_order(&names(&["d", "c", "b", "a"]), &fks, "public"), o);
    }
}
