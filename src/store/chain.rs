//! PURE: a delta chain as the manifest records it (format 4). A chain's base is a full
//! export with the log position its snapshot is consistent with; a delta names the export
//! it follows (id and manifest sha256), the positions it covers, the source's cascading
//! foreign keys, and per table the deleted and removed keys' files and the source's count
//! at its end.

use serde::{Deserialize, Serialize};

use crate::db::position::LogPosition;

/// `kind` of a format-4 export that starts a chain (a full export).
pub const KIND_FULL: &str = "full";
/// `kind` of a delta.
pub const KIND_DELTA: &str = "delta";

/// The export a delta follows: the base, or the previous delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    pub export_id: String,
    /// sha256 of that export's `migration_manifest.json`, as the target's
    /// `pgconverge.state` records it.
    pub manifest_sha256: String,
    /// Its directory as it was given (for people).
    pub dir: String,
}

/// A delta: what it follows and where in the log it starts (it ends at the manifest's
/// `position`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaInfo {
    pub base: BaseRef,
    pub from: LogPosition,
    /// The source's foreign keys with an ON DELETE / ON UPDATE action, whose effects the
    /// log does not show.
    #[serde(default)]
    pub cascades: Vec<Cascade>,
}

/// A source foreign key with an action (source names), as a delta lists it.
pub type Cascade = crate::db::catalog::SourceForeignKey;

/// Does the action of `fk` for a parent key removed `how` (`delete` or `update`) change
/// the children: Some(true) deletes them, Some(false) sets their columns to NULL.
pub fn action(fk: &Cascade, how: &str) -> Option<bool> {
    let rule = if how == HOW_DELETE {
        &fk.on_delete
    } else {
        &fk.on_update
    };
    match rule.as_str() {
        "CASCADE" => Some(true),
        "SET NULL" => Some(false),
        _ => None,
    }
}

/// The order to follow (or apply) cascades in: parents before children, so that what
/// a cascade reaches in a child is carried on to the child's own children. A cycle is
/// cut by the bound on depth (the export repeats until nothing new is found).
pub fn cascade_order(cascades: &[Cascade]) -> Vec<usize> {
    let mut depth: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for _ in 0..=cascades.len() {
        for fk in cascades.iter().filter(|fk| fk.child != fk.parent) {
            let d = depth.get(fk.parent.as_str()).copied().unwrap_or(0) + 1;
            let e = depth.entry(fk.child.as_str()).or_insert(0);
            if d > *e && d <= cascades.len() {
                *e = d;
            }
        }
    }
    let mut order: Vec<usize> = (0..cascades.len()).collect();
    order.sort_by_key(|&i| depth.get(cascades[i].parent.as_str()).copied().unwrap_or(0));
    order
}

/// Cascades (indexes into the list) applied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CascadeGroup {
    /// A foreign key between tables that do not reach each other: applied once.
    Once(usize),
    /// The foreign keys within a cycle (a table that references itself, tables that
    /// reach each other): applied round after round until nothing changes.
    Rounds(Vec<usize>),
}

/// The cascades in the order to apply them: per group of tables that reach each other
/// (each table alone when it is in no cycle), parents' groups first, the group's own
/// rounds, then its actions on the tables it reaches, so that every table's removed
/// rows are all known before they are followed to its children.
pub fn cascade_groups(cascades: &[Cascade]) -> Vec<CascadeGroup> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for fk in cascades {
        edges
            .entry(fk.parent.as_str())
            .or_default()
            .insert(fk.child.as_str());
        edges.entry(fk.child.as_str()).or_default();
    }
    // What each table reaches through one action or more.
    let reach: BTreeMap<&str, BTreeSet<&str>> = edges
        .keys()
        .map(|&t| {
            let mut seen = BTreeSet::new();
            let mut next: Vec<&str> = edges[t].iter().copied().collect();
            while let Some(x) = next.pop() {
                if seen.insert(x) {
                    next.extend(edges[x].iter().copied());
                }
            }
            (t, seen)
        })
        .collect();
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for &t in edges.keys() {
        if groups.iter().any(|g| g.contains(t)) {
            continue;
        }
        let mut g: BTreeSet<&str> = reach[t]
            .iter()
            .copied()
            .filter(|&o| reach[o].contains(t))
            .collect();
        g.insert(t);
        groups.push(g);
    }
    // A group reached from more tables outside it comes later: a group that reaches
    // another has strictly fewer such tables than it.
    let from_outside = |g: &BTreeSet<&str>| {
        reach
            .iter()
            .filter(|(t, r)| !g.contains(*t) && g.iter().any(|x| r.contains(x)))
            .count()
    };
    groups.sort_by_cached_key(|g| (from_outside(g), g.iter().next().map(|s| s.to_string())));
    let mut out = Vec::new();
    for g in &groups {
        let inside: Vec<usize> = (0..cascades.len())
            .filter(|&i| {
                g.contains(cascades[i].parent.as_str()) && g.contains(cascades[i].child.as_str())
            })
            .collect();
        if !inside.is_empty() {
            out.push(CascadeGroup::Rounds(inside));
        }
        out.extend(
            (0..cascades.len())
                .filter(|&i| {
                    g.contains(cascades[i].parent.as_str())
                        && !g.contains(cascades[i].child.as_str())
                })
                .map(CascadeGroup::Once),
        );
    }
    out
}

/// How a parent key was first removed from the log's view: deleted, or updated away.
pub const HOW_DELETE: &str = "delete";
pub const HOW_UPDATE: &str = "update";
/// The column of a removed-keys file that says how.
pub const HOW_COLUMN: &str = "pgconverge_how";

/// One file of keys (deleted or removed), with what the manifest says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub longest_record: u64,
}

/// Per table of a delta (beside the entry of its upserted rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDelta {
    /// The columns rows are matched on (the primary key, or a unique NOT NULL key).
    pub key: Vec<String>,
    pub deleted: KeyFile,
    /// The parent of a cascading foreign key: the keys the log removed, with how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<KeyFile>,
    /// Why the table is copied whole in this delta (no key, or a TRUNCATE in the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_copy: Option<String>,
    /// The source's row count at the delta's end position (with the table's `where`).
    pub source_rows: u64,
    /// Keys the log named (before the cascades were followed).
    pub changed_keys: u64,
}

impl TableDelta {
    /// Nothing to apply: no upserts (`upserted` rows), no deletes, no full copy.
    pub fn is_empty(&self, upserted: u64) -> bool {
        upserted == 0
            && self.deleted.rows == 0
            && self.full_copy.is_none()
            && self.removed.as_ref().is_none_or(|r| r.rows == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_by_how_the_parent_went() {
        let c = Cascade {
            name: "fk".into(),
            child: "c".into(),
            child_columns: vec!["p".into()],
            parent: "p".into(),
            parent_columns: vec!["id".into()],
            on_delete: "CASCADE".into(),
            on_update: "SET NULL".into(),
        };
        assert_eq!(action(&c, HOW_DELETE), Some(true));
        assert_eq!(action(&c, HOW_UPDATE), Some(false));
        let restrict = Cascade {
            on_delete: "RESTRICT".into(),
            on_update: "NO ACTION".into(),
            ..c
        };
        assert_eq!(action(&restrict, HOW_DELETE), None);
        assert_eq!(action(&restrict, HOW_UPDATE), None);
    }

    #[test]
    fn a_cycle_is_a_self_reference_or_tables_that_reach_each_other() {
        let fk = |child: &str, parent: &str| Cascade {
            name: format!("{child}_{parent}"),
            child: child.into(),
            child_columns: vec!["p".into()],
            parent: parent.into(),
            parent_columns: vec!["id".into()],
            on_delete: "CASCADE".into(),
            on_update: "NO ACTION".into(),
        };
        for (edges, want) in [
            (vec![], false),
            (vec![("b", "a"), ("c", "b")], false),
            (vec![("t", "t")], true),
            (vec![("t", "t"), ("c", "t")], true),
            (vec![("b", "a"), ("a", "b")], true),
            (vec![("b", "a"), ("c", "b"), ("a", "c"), ("d", "a")], true),
            (vec![("x", "w"), ("b", "a"), ("a", "b")], true),
        ] {
            let cascades: Vec<Cascade> = edges.iter().map(|(c, p)| fk(c, p)).collect();
            let cyclic = cascade_groups(&cascades)
                .iter()
                .any(|g| matches!(g, CascadeGroup::Rounds(_)));
            assert_eq!(cyclic, want, "{edges:?}");
        }
    }

    #[test]
    fn only_the_keys_within_a_cycle_apply_in_rounds() {
        let fk = |child: &str, parent: &str| Cascade {
            name: format!("{child}_{parent}"),
            child: child.into(),
            child_columns: vec!["p".into()],
            parent: parent.into(),
            parent_columns: vec!["id".into()],
            on_delete: "CASCADE".into(),
            on_update: "CASCADE".into(),
        };
        use CascadeGroup::*;
        // (child, parent) edges, listed children first; the groups expected.
        for (edges, want) in [
            // A chain: each once, parents first.
            (vec![("g", "c"), ("c", "p")], vec![Once(1), Once(0)]),
            // A tree with a table pointing into it, beside an unrelated parent/child:
            // the tree's rounds before what it reaches.
            (
                vec![("n", "t"), ("t", "t"), ("c", "p"), ("g", "c")],
                vec![Once(2), Rounds(vec![1]), Once(0), Once(3)],
            ),
            // a -> b -> a, fed by p and feeding x.
            (
                vec![("x", "b"), ("a", "b"), ("b", "a"), ("a", "p")],
                vec![Once(3), Rounds(vec![1, 2]), Once(0)],
            ),
        ] {
            let cascades: Vec<Cascade> = edges.iter().map(|(c, p)| fk(c, p)).collect();
            assert_eq!(cascade_groups(&cascades), want, "{edges:?}");
        }
    }

    #[test]
    fn cascades_are_followed_parents_first() {
        let fk = |child: &str, parent: &str| Cascade {
            name: format!("{child}_{parent}"),
            child: child.into(),
            child_columns: vec!["p".into()],
            parent: parent.into(),
            parent_columns: vec!["id".into()],
            on_delete: "CASCADE".into(),
            on_update: "CASCADE".into(),
        };
        let fks = vec![
            fk("grandchild", "child"),
            fk("child", "parent"),
            fk("parent", "parent"),
        ];
        let order = cascade_order(&fks);
        let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(1) < pos(0));
    }
}
