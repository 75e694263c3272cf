//! PURE: index-aware load. Per target table, whether its indexes are dropped right before
//! its COPY and built right after it, in the import's transaction (`--rebuild-indexes
//! auto|always|never`), and why; which indexes stay (and why); and the SQL that drops
//! them and puts every one back exactly as it was: `pg_get_indexdef` with the tablespace
//! added, comments, `CLUSTER ON`, `REPLICA IDENTITY USING INDEX`, statistics targets,
//! a partitioned table's indexes (`ON ONLY` the parent, each partition's index, `ATTACH
//! PARTITION`), and the PRIMARY KEY, UNIQUE and EXCLUDE constraints with the foreign keys
//! that reference them, added back validated as they were. The rule and its measurements
//! are in docs/indexes.md.

use serde::Serialize;

use crate::db::catalog::{
    BuildSettings, Catalog, ConstraintKind, DependentKey, ForeignKey, PgIndex, PgTable,
};
use crate::db::sql::pg::{ident, literal, qualified};

use super::OrphanCheck;

/// `--rebuild-indexes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rebuild {
    /// Per table, by its row count ([`AUTO_MIN_ROWS`]).
    Auto,
    /// Every table the rules allow, whatever its size.
    Always,
    /// Every index stays during the load.
    Never,
}

/// `auto` rebuilds the indexes of a table loaded with at least this many rows. Measured
/// with `scripts/index-crossover.sh` (docs/indexes.md): below it, dropping and building
/// costs about what keeping the indexes does; above it, the rebuild wins more with
/// every row.
pub const AUTO_MIN_ROWS: u64 = 10_000;

/// `auto` also rebuilds the keys (PRIMARY KEY, UNIQUE, EXCLUDE, and unique indexes that
/// foreign keys reference, with those foreign keys) from this many rows: up to about
/// 100,000 rebuilding them measured no faster than keeping them, from 200,000 on clearly
/// faster (docs/indexes.md).
pub const KEYS_MIN_ROWS: u64 = 100_000;

/// `maintenance_work_mem` for the builds: the server's setting, or this share of
/// `shared_buffers` when that is larger (docs/indexes.md), unless the flag says.
pub const SHARED_BUFFERS_SHARE: (u64, u64) = (1, 1);

/// The `maintenance_work_mem` the builds run with, in kB.
pub fn build_memory_kb(settings: &BuildSettings, flag_kb: Option<u64>) -> u64 {
    flag_kb.unwrap_or_else(|| {
        let (num, den) = SHARED_BUFFERS_SHARE;
        settings
            .maintenance_work_mem_kb
            .max(settings.shared_buffers_kb * num / den)
    })
}

/// PostgreSQL's memory per participant of a parallel b-tree build, in kB
/// (`plan_create_index_workers`: 32 MB each for the leader and every worker).
const BUILD_MEMORY_PER_PARTICIPANT_KB: u64 = 32 * 1024;

/// The most parallel workers a b-tree build can get with `memory_kb`: the server's
/// `max_parallel_maintenance_workers`, fewer while the memory gives a participant less
/// than 32 MB. The table's size and free `max_parallel_workers` may give fewer still.
pub fn build_workers(settings: &BuildSettings, memory_kb: u64) -> u32 {
    let by_memory = (memory_kb / BUILD_MEMORY_PER_PARTICIPANT_KB).saturating_sub(1);
    settings
        .max_parallel_maintenance_workers
        .min(u32::try_from(by_memory).unwrap_or(u32::MAX))
}

/// What the import does with one target table's indexes, and why (the plan lists it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexChoice {
    pub table: String,
    /// The rows the choice was made for: the manifest's count, or (`migrate`) the
    /// source catalog's estimate.
    pub rows: Option<u64>,
    /// `rebuild`, `keep`, or `none` (no index).
    pub choice: &'static str,
    pub reason: String,
    /// Dropped before the COPY and built after it.
    pub rebuilt: Vec<String>,
    /// Kept in place during the load, each with why.
    pub kept: Vec<Kept>,
    /// Foreign keys of other tables (or of this one) dropped and added back with the key
    /// they reference: `table.constraint`.
    pub foreign_keys: Vec<String>,
    #[serde(skip)]
    pub drops: Vec<IndexStep>,
    #[serde(skip)]
    pub builds: Vec<IndexStep>,
}

/// An index that stays during the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub index: String,
    pub reason: String,
}

/// One statement of a rebuild: a drop before the COPY or a build after it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStep {
    pub table: String,
    pub sql: String,
    pub context: String,
    /// After its COPY (timed and shown as index time), rather than before it.
    pub build: bool,
    /// What to ask the server when the step fails, so the error names rows by key.
    pub check: Option<BuildCheck>,
}

/// Why a build can fail because of the data, and how to find the rows.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildCheck {
    /// A unique index: rows sharing a key.
    Duplicates(Duplicates),
    /// A foreign key added back: rows without a parent.
    Orphans(OrphanCheck),
    /// An EXCLUDE constraint added back: rows that conflict (the server's detail gives
    /// two of them by their values). The constraint's name.
    Conflicts(String),
    /// Before the drops: the step's query names the indexes whose catalog differs from
    /// what the plan read (a `before` hook or another session changed them), which a
    /// rebuild would otherwise put back as they were read.
    Unchanged,
}

/// The rows that break a unique index: `sql` returns the table's primary-key columns
/// then the index's key values, as text, for rows whose key occurs more than once.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicates {
    pub table: String,
    pub index: String,
    pub sql: String,
    /// Names of the columns `sql` returns: the primary key's, then the index's keys.
    pub keys: Vec<String>,
    pub columns: Vec<String>,
}

/// How a target is loaded, as far as its indexes go.
pub struct Load<'a> {
    pub rows: Option<u64>,
    /// Loaded with its triggers on (`triggers = "fire"`): they may rely on its keys.
    pub fired: bool,
    pub mode: Rebuild,
    /// A delta applies rows to a table that keeps its others.
    pub delta: bool,
    pub allow_orphans: bool,
    pub cat: &'a Catalog,
}

/// The choice for one target table.
pub fn choose(table: &PgTable, load: &Load) -> IndexChoice {
    let mut choice = IndexChoice {
        table: table.name.clone(),
        rows: load.rows,
        choice: "keep",
        reason: String::new(),
        rebuilt: Vec::new(),
        kept: Vec::new(),
        foreign_keys: Vec::new(),
        drops: Vec::new(),
        builds: Vec::new(),
    };
    let keep_all = |choice: &mut IndexChoice, reason: String| {
        choice.reason = reason;
        choice.kept = table
            .indexes
            .iter()
            .map(|i| Kept {
                index: i.name.clone(),
                reason: "with the table".into(),
            })
            .collect();
    };
    if table.indexes.is_empty() {
        choice.choice = "none";
        choice.reason = "no indexes".into();
        return choice;
    }
    let reason = if load.delta {
        Some("a delta keeps the table's other rows: its indexes stay".to_string())
    } else if load.mode == Rebuild::Never {
        Some("--rebuild-indexes never".to_string())
    } else if !table.owned {
        Some("the importing role does not own the table, so it may not drop its indexes".into())
    } else if load.mode == Rebuild::Auto {
        match load.rows {
            None => Some("its row count is not known: its indexes stay".into()),
            Some(n) if n < AUTO_MIN_ROWS => Some(format!(
                "{}, fewer than {AUTO_MIN_ROWS}: keeping the indexes costs no more than \
                 rebuilding them",
                crate::report::count(n, "row")
            )),
            Some(_) => None,
        }
    } else {
        None
    };
    if let Some(reason) = reason {
        keep_all(&mut choice, reason);
        return choice;
    }
    let verdicts: Vec<Option<String>> = table
        .indexes
        .iter()
        .map(|i| why_kept(table, i, load))
        .collect();
    let verdicts = families(&table.indexes, verdicts);
    let rebuilt: Vec<&PgIndex> = table
        .indexes
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.is_none())
        .map(|(i, _)| i)
        .collect();
    choice.kept = table
        .indexes
        .iter()
        .zip(&verdicts)
        .filter_map(|(i, v)| {
            v.as_ref().map(|r| Kept {
                index: i.name.clone(),
                reason: r.clone(),
            })
        })
        .collect();
    if rebuilt.is_empty() {
        choice.reason = "every index has a reason to stay (see kept)".into();
        return choice;
    }
    choice.choice = "rebuild";
    choice.reason = match (load.mode, load.rows) {
        (Rebuild::Always, _) => "--rebuild-indexes always".into(),
        (_, Some(n)) => format!(
            "{n} rows, at least {AUTO_MIN_ROWS}: building the indexes after the COPY is faster"
        ),
        (_, None) => "--rebuild-indexes".into(),
    };
    choice.rebuilt = rebuilt.iter().map(|i| i.name.clone()).collect();
    choice.foreign_keys = rebuilt
        .iter()
        .flat_map(|i| &i.referenced_by)
        .map(|k| match k.def.ends_with("NOT VALID") {
            true => format!("{}.{} (NOT VALID, as it was)", k.table, k.name),
            false => format!("{}.{}", k.table, k.name),
        })
        .collect();
    steps(table, &rebuilt, load.cat, &mut choice);
    choice
}

/// Why this index stays during the load, if it must.
fn why_kept(table: &PgTable, i: &PgIndex, load: &Load) -> Option<String> {
    if !i.owned {
        return Some(format!(
            "the importing role does not own `{}`, which it is on",
            i.table
        ));
    }
    if let Some(d) = i.dependents.first() {
        return Some(format!("{d} depends on it"));
    }
    let key = i.constraint.is_some() || !i.referenced_by.is_empty();
    if let (true, Rebuild::Auto, Some(n)) = (key, load.mode, load.rows)
        && n < KEYS_MIN_ROWS
    {
        return Some(format!(
            "a key: rebuilt from {KEYS_MIN_ROWS} rows, below that keeping it costs no more"
        ));
    }
    if let Some(c) = &i.constraint {
        if table.partitioned || i.parent.is_some() {
            return Some("a constraint of a partitioned table: it stays".into());
        }
        if load.fired {
            return Some(format!(
                "constraint `{}`: the table loads with its triggers, which may rely on it",
                c.name
            ));
        }
        if c.kind == ConstraintKind::Exclude && (i.tablespace.is_some() || !i.options.is_empty()) {
            return Some(format!(
                "EXCLUDE constraint `{}` has its own tablespace or storage parameters, which \
                 ADD CONSTRAINT cannot restore",
                c.name
            ));
        }
    }
    // A foreign key that was NOT VALID comes back NOT VALID, over orphans or not.
    if load.allow_orphans
        && let Some(k) = i
            .referenced_by
            .iter()
            .find(|k| !k.def.ends_with("NOT VALID"))
    {
        return Some(format!(
            "--allow-orphans: foreign key `{}` of `{}` references it, and could not be \
             added back validated over orphan rows",
            k.name, k.table
        ));
    }
    if let Some(k) = i.referenced_by.iter().find(|k| !k.owned || k.partitioned) {
        return Some(format!(
            "foreign key `{}` of `{}` references it, and {}",
            k.name,
            k.table,
            if k.partitioned {
                "that table is partitioned"
            } else {
                "the importing role does not own that table"
            }
        ));
    }
    None
}

/// A partitioned index and the indexes attached to it go together: dropping the parent
/// drops them. If any of them stays, all stay.
fn families(indexes: &[PgIndex], mut verdicts: Vec<Option<String>>) -> Vec<Option<String>> {
    let root = |mut i: usize| {
        while let Some(p) = &indexes[i].parent {
            match indexes.iter().position(|x| &x.name == p) {
                Some(j) if j != i => i = j,
                _ => break,
            }
        }
        i
    };
    let roots: Vec<usize> = (0..indexes.len()).map(root).collect();
    for r in 0..indexes.len() {
        let members: Vec<usize> = (0..indexes.len()).filter(|&i| roots[i] == r).collect();
        if members.len() < 2 {
            continue;
        }
        if let Some(why) = members.iter().find_map(|&i| verdicts[i].clone()) {
            for &i in &members {
                if verdicts[i].is_none() {
                    verdicts[i] = Some(format!(
                        "attached with `{}`, which stays: {why}",
                        indexes[r].name
                    ));
                }
            }
        }
    }
    verdicts
}

/// The drops (before the COPY) and the builds (after it) of the rebuilt indexes.
fn steps(table: &PgTable, rebuilt: &[&PgIndex], cat: &Catalog, choice: &mut IndexChoice) {
    let step = |sql: String, context: String, build: bool, check: Option<BuildCheck>| IndexStep {
        table: table.name.clone(),
        sql,
        context,
        build,
        check,
    };
    let on = |i: &PgIndex| qualified(&i.schema, &i.table);
    let index = |i: &PgIndex| qualified(&i.schema, &i.name);
    let t = &table.name;
    // First, inside the transaction and after the hooks: is every index still what the
    // plan read (and will put back)?
    let read: Vec<String> = rebuilt
        .iter()
        .map(|i| {
            format!(
                "({}, {}, {})",
                literal(&i.schema),
                literal(&i.name),
                literal(&i.fingerprint)
            )
        })
        .collect();
    if !read.is_empty() {
        choice.drops.push(step(
            format!(
                "SELECT v.n FROM (VALUES {}) AS v(s, n, f) WHERE {} IS DISTINCT FROM v.f ORDER BY v.n",
                read.join(", "),
                crate::db::pgindex::fingerprint("to_regclass(format('%I.%I', v.s, v.n))::oid")
            ),
            format!("checking that the indexes of `{t}` are as the plan read them"),
            false,
            Some(BuildCheck::Unchanged),
        ));
    }
    // Drops: the foreign keys first, then constraints and indexes (a partitioned index
    // takes its partitions' indexes with it).
    for i in rebuilt {
        for k in &i.referenced_by {
            choice.drops.push(step(
                format!(
                    "ALTER TABLE {} DROP CONSTRAINT {}",
                    qualified(&k.schema, &k.table),
                    ident(&k.name)
                ),
                format!(
                    "dropping foreign key `{}` of `{}` with the key of `{t}` it references",
                    k.name, k.table
                ),
                false,
                None,
            ));
        }
    }
    for i in rebuilt {
        let sql = match (&i.constraint, &i.parent) {
            (Some(c), _) => format!("ALTER TABLE {} DROP CONSTRAINT {}", on(i), ident(&c.name)),
            (None, Some(p)) if rebuilt.iter().any(|x| &x.name == p) => continue,
            (None, _) => format!("DROP INDEX {}", index(i)),
        };
        choice.drops.push(step(
            sql,
            format!("dropping index `{}` of `{t}` before its COPY", i.name),
            false,
            None,
        ));
    }
    // Builds: constraints first (the foreign keys need them), then the other indexes,
    // parents before their partitions' indexes, then what the definition leaves out.
    let depth = |i: &PgIndex| {
        let mut d = 0;
        let mut at = i;
        while let Some(p) = &at.parent {
            match rebuilt.iter().find(|x| &x.name == p) {
                Some(x) if d < 16 => {
                    d += 1;
                    at = x;
                }
                _ => break,
            }
        }
        d
    };
    let mut order: Vec<&PgIndex> = rebuilt.to_vec();
    order.sort_by_key(|i| (i.constraint.is_none(), depth(i)));
    for i in &order {
        let context = format!("rebuilding index `{}` of `{t}`", i.name);
        let check = i
            .unique
            .then(|| BuildCheck::Duplicates(duplicates(i, table)));
        match &i.constraint {
            Some(c) if c.kind == ConstraintKind::Exclude => {
                choice.builds.push(step(
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {}",
                        on(i),
                        ident(&c.name),
                        c.def
                    ),
                    format!("adding back constraint `{}` of `{t}`", c.name),
                    true,
                    Some(BuildCheck::Conflicts(c.name.clone())),
                ));
            }
            Some(c) => {
                // The index as it was (tablespace, storage parameters, INCLUDE), then the
                // constraint on it.
                choice
                    .builds
                    .push(step(create_sql(i), context, true, check));
                let kind = match c.kind {
                    ConstraintKind::PrimaryKey => "PRIMARY KEY",
                    _ => "UNIQUE",
                };
                let deferrable = match (c.deferrable, c.deferred) {
                    (true, true) => " DEFERRABLE INITIALLY DEFERRED",
                    (true, false) => " DEFERRABLE",
                    _ => "",
                };
                choice.builds.push(step(
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {kind} USING INDEX {}{deferrable}",
                        on(i),
                        ident(&c.name),
                        ident(&i.name)
                    ),
                    format!("adding back constraint `{}` of `{t}`", c.name),
                    true,
                    None,
                ));
            }
            None => choice
                .builds
                .push(step(create_sql(i), context, true, check)),
        }
    }
    let mut attach: Vec<&&PgIndex> = order.iter().filter(|i| i.parent.is_some()).collect();
    attach.sort_by_key(|i| std::cmp::Reverse(depth(i)));
    for i in attach {
        let (Some(p), Some(parent)) = (
            &i.parent,
            rebuilt.iter().find(|x| Some(&x.name) == i.parent.as_ref()),
        ) else {
            continue;
        };
        choice.builds.push(step(
            format!(
                "ALTER INDEX {} ATTACH PARTITION {}",
                index(parent),
                index(i)
            ),
            format!("attaching index `{}` to `{p}`", i.name),
            true,
            None,
        ));
    }
    for i in &order {
        for (column, target) in &i.statistics {
            choice.builds.push(step(
                format!(
                    "ALTER INDEX {} ALTER COLUMN {column} SET STATISTICS {target}",
                    index(i)
                ),
                format!("setting the statistics target of index `{}`", i.name),
                true,
                None,
            ));
        }
        if let Some(text) = &i.comment {
            choice.builds.push(step(
                format!("COMMENT ON INDEX {} IS {}", index(i), literal(text)),
                format!("putting back the comment of index `{}`", i.name),
                true,
                None,
            ));
        }
        if let Some(text) = i.constraint.as_ref().and_then(|c| c.comment.as_ref()) {
            let name = i.constraint.as_ref().map_or("", |c| c.name.as_str());
            choice.builds.push(step(
                format!(
                    "COMMENT ON CONSTRAINT {} ON {} IS {}",
                    ident(name),
                    on(i),
                    literal(text)
                ),
                format!("putting back the comment of constraint `{name}`"),
                true,
                None,
            ));
        }
        if i.clustered {
            choice.builds.push(step(
                format!("ALTER TABLE {} CLUSTER ON {}", on(i), ident(&i.name)),
                format!(
                    "marking `{}` as the index `{}` is clustered on",
                    i.name, i.table
                ),
                true,
                None,
            ));
        }
        if i.replica_identity {
            choice.builds.push(step(
                format!(
                    "ALTER TABLE {} REPLICA IDENTITY USING INDEX {}",
                    on(i),
                    ident(&i.name)
                ),
                format!("making `{}` the replica identity of `{}`", i.name, i.table),
                true,
                None,
            ));
        }
    }
    for i in &order {
        for k in &i.referenced_by {
            choice.builds.push(step(
                add_key_sql(k),
                add_key_context(k, t),
                true,
                orphans(k, cat),
            ));
            if let Some(text) = &k.comment {
                choice.builds.push(step(
                    format!(
                        "COMMENT ON CONSTRAINT {} ON {} IS {}",
                        ident(&k.name),
                        qualified(&k.schema, &k.table),
                        literal(text)
                    ),
                    format!("putting back the comment of foreign key `{}`", k.name),
                    true,
                    None,
                ));
            }
        }
    }
}

fn add_key_sql(k: &DependentKey) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} {}",
        qualified(&k.schema, &k.table),
        ident(&k.name),
        k.def
    )
}

fn add_key_context(k: &DependentKey, table: &str) -> String {
    format!(
        "adding back foreign key `{}` of `{}` (it references `{table}`), validated",
        k.name, k.table
    )
}

/// The foreign key's orphan query, to name the rows when adding it back fails (a key
/// added back `NOT VALID` reads no rows, and cannot).
fn orphans(k: &DependentKey, cat: &Catalog) -> Option<BuildCheck> {
    if k.def.ends_with(" NOT VALID") {
        return None;
    }
    let fk: &ForeignKey = cat
        .foreign_keys
        .iter()
        .find(|f| f.name == k.name && f.child == k.table && f.child_schema == k.schema)?;
    Some(BuildCheck::Orphans(OrphanCheck {
        fk: fk.clone(),
        keys: cat
            .tables
            .get(&k.table)
            .map(|t| t.primary_key.clone())
            .unwrap_or_default(),
        within: None,
    }))
}

/// `pg_get_indexdef` with the index's tablespace put back where the grammar wants it
/// (before the predicate of a partial index).
pub fn create_sql(i: &PgIndex) -> String {
    let Some(space) = &i.tablespace else {
        return i.def.clone();
    };
    let clause = format!(" TABLESPACE {}", ident(space));
    if let Some(pred) = &i.predicate {
        let tail = format!(" WHERE {pred}");
        if let Some(head) = i.def.strip_suffix(&tail) {
            return format!("{head}{clause}{tail}");
        }
        let tail = format!(" WHERE ({pred})");
        if let Some(head) = i.def.strip_suffix(&tail) {
            return format!("{head}{clause}{tail}");
        }
    }
    format!("{}{clause}", i.def)
}

/// The rows of `i`'s table whose key under `i` occurs more than once (NULLs are
/// distinct unless the index says NULLS NOT DISTINCT; only rows its predicate covers).
fn duplicates(i: &PgIndex, table: &PgTable) -> Duplicates {
    let keys: Vec<String> = table
        .primary_key
        .iter()
        .filter(|_| i.constraint.as_ref().map(|c| c.kind) != Some(ConstraintKind::PrimaryKey))
        .cloned()
        .collect();
    let (exprs, filter) = i.unique_scope();
    let select: Vec<String> = keys
        .iter()
        .map(|k| format!("{}::text", ident(k)))
        .chain(exprs.iter().map(|e| format!("{e}::text")))
        .collect();
    let named: Vec<String> = (0..select.len()).map(|n| format!("c{n}")).collect();
    let aliased: Vec<String> = select
        .iter()
        .zip(&named)
        .map(|(s, n)| format!("{s} AS {n}"))
        .collect();
    let key_aliases = &named[keys.len()..];
    let sql = format!(
        "SELECT {} FROM (SELECT {}, count(*) OVER (PARTITION BY {}) AS n FROM {}{}) d \
         WHERE n > 1 ORDER BY {} LIMIT 10",
        named.join(", "),
        aliased.join(", "),
        exprs.join(", "),
        qualified(&i.schema, &i.table),
        if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filter.join(" AND "))
        },
        key_aliases.join(", ")
    );
    Duplicates {
        table: i.table.clone(),
        index: i.name.clone(),
        sql,
        keys,
        columns: i.keys.clone(),
    }
}

impl Duplicates {
    /// The rows `sql` returned, in words: `code=b: id=2, id=3`.
    pub fn describe(&self, rows: &[Vec<Option<String>>]) -> String {
        let show = |v: &Option<String>| v.as_deref().unwrap_or("NULL").to_string();
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in rows {
            let (key, value) = r.split_at(self.keys.len().min(r.len()));
            let value: Vec<String> = self
                .columns
                .iter()
                .zip(value)
                .map(|(c, v)| format!("{c}={}", show(v)))
                .collect();
            let value = value.join(", ");
            let key: Vec<String> = self
                .keys
                .iter()
                .zip(key)
                .map(|(c, v)| format!("{c}={}", show(v)))
                .collect();
            match groups.iter_mut().find(|(v, _)| *v == value) {
                Some((_, rows)) => rows.push(key.join(", ")),
                None => groups.push((value, vec![key.join(", ")])),
            }
        }
        groups
            .iter()
            .map(|(value, rows)| {
                let rows: Vec<&String> = rows.iter().filter(|r| !r.is_empty()).collect();
                if rows.is_empty() {
                    value.clone()
                } else {
                    format!(
                        "{value} in rows {}",
                        rows.iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::IndexConstraint;

    fn index(name: &str, def: &str) -> PgIndex {
        PgIndex {
            name: name.into(),
            schema: "public".into(),
            table: "t".into(),
            def: def.into(),
            method: "btree".into(),
            valid: true,
            owned: true,
            keys: vec!["code".into()],
            ..PgIndex::default()
        }
    }

    fn primary_key() -> PgIndex {
        PgIndex {
            unique: true,
            keys: vec!["id".into()],
            constraint: Some(IndexConstraint {
                name: "t_pkey".into(),
                kind: ConstraintKind::PrimaryKey,
                def: "PRIMARY KEY (id)".into(),
                deferrable: false,
                deferred: false,
                comment: None,
            }),
            referenced_by: vec![DependentKey {
                name: "c_t_fk".into(),
                schema: "public".into(),
                table: "c".into(),
                def: "FOREIGN KEY (t_id) REFERENCES t(id) ON DELETE CASCADE".into(),
                comment: None,
                owned: true,
                partitioned: false,
            }],
            ..index(
                "t_pkey",
                "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
            )
        }
    }

    fn table(indexes: Vec<PgIndex>) -> PgTable {
        PgTable {
            name: "t".into(),
            primary_key: vec!["id".into()],
            owned: true,
            indexes,
            ..PgTable::default()
        }
    }

    fn load(cat: &Catalog, mode: Rebuild, rows: Option<u64>) -> Load<'_> {
        Load {
            rows,
            fired: false,
            mode,
            delta: false,
            allow_orphans: false,
            cat,
        }
    }

    #[test]
    fn the_choice_per_table_and_why() {
        let cat = Catalog::default();
        let plain = || {
            table(vec![index(
                "t_code",
                "CREATE INDEX t_code ON public.t USING btree (code)",
            )])
        };
        let cases: Vec<(PgTable, Load, &str, &str)> = vec![
            (
                table(vec![]),
                load(&cat, Rebuild::Always, Some(1)),
                "none",
                "no indexes",
            ),
            (
                plain(),
                load(&cat, Rebuild::Auto, Some(9_999)),
                "keep",
                "fewer than 10000",
            ),
            (
                plain(),
                load(&cat, Rebuild::Auto, Some(10_000)),
                "rebuild",
                "at least 10000",
            ),
            (
                table(vec![primary_key()]),
                load(&cat, Rebuild::Auto, Some(99_999)),
                "keep",
                "every index",
            ),
            (
                table(vec![primary_key()]),
                load(&cat, Rebuild::Auto, Some(100_000)),
                "rebuild",
                "at least 10000",
            ),
            (
                plain(),
                load(&cat, Rebuild::Auto, None),
                "keep",
                "not known",
            ),
            (
                plain(),
                load(&cat, Rebuild::Always, Some(1)),
                "rebuild",
                "always",
            ),
            (
                plain(),
                load(&cat, Rebuild::Never, Some(10_000_000)),
                "keep",
                "never",
            ),
            (
                plain(),
                Load {
                    delta: true,
                    ..load(&cat, Rebuild::Always, Some(10_000_000))
                },
                "keep",
                "a delta",
            ),
            (
                PgTable {
                    owned: false,
                    ..plain()
                },
                load(&cat, Rebuild::Always, Some(10_000_000)),
                "keep",
                "does not own",
            ),
        ];
        for (t, l, choice, why) in cases {
            let c = choose(&t, &l);
            assert_eq!(c.choice, choice, "{c:?}");
            assert!(c.reason.contains(why), "{why}: {c:?}");
            assert_eq!(c.drops.is_empty(), choice != "rebuild", "{c:?}");
            if choice == "keep" {
                assert_eq!(c.kept.len(), t.indexes.len());
            }
        }
    }

    #[test]
    fn an_index_stays_when_dropping_it_would_lose_something() {
        let cat = Catalog::default();
        let with = |f: &dyn Fn(&mut PgIndex)| {
            let mut i = primary_key();
            f(&mut i);
            i
        };
        let cases: Vec<(PgIndex, Load, &str)> = vec![
            (
                with(&|i| i.dependents = vec!["rule _RETURN on view v".into()]),
                load(&cat, Rebuild::Always, None),
                "view v depends on it",
            ),
            (
                primary_key(),
                Load {
                    allow_orphans: true,
                    ..load(&cat, Rebuild::Always, None)
                },
                "--allow-orphans",
            ),
            (
                primary_key(),
                Load {
                    fired: true,
                    ..load(&cat, Rebuild::Always, None)
                },
                "triggers",
            ),
            (
                with(&|i| i.referenced_by[0].owned = false),
                load(&cat, Rebuild::Always, None),
                "does not own that table",
            ),
            (
                with(&|i| i.referenced_by[0].partitioned = true),
                load(&cat, Rebuild::Always, None),
                "partitioned",
            ),
            (
                with(&|i| i.parent = Some("p_pkey".into())),
                load(&cat, Rebuild::Always, None),
                "partitioned table",
            ),
            (
                with(&|i| {
                    i.tablespace = Some("fast".into());
                    if let Some(c) = i.constraint.as_mut() {
                        c.kind = ConstraintKind::Exclude;
                    }
                }),
                load(&cat, Rebuild::Always, None),
                "own tablespace",
            ),
        ];
        for (i, l, why) in cases {
            let c = choose(&table(vec![i]), &l);
            assert_eq!(c.choice, "keep", "{why}: {c:?}");
            assert!(c.kept[0].reason.contains(why), "{why}: {c:?}");
        }
        // A foreign key that was NOT VALID is no reason under --allow-orphans: it comes
        // back NOT VALID over any orphans.
        let not_valid = with(&|i| i.referenced_by[0].def.push_str(" NOT VALID"));
        let orphans = Load {
            allow_orphans: true,
            ..load(&cat, Rebuild::Always, None)
        };
        let c = choose(&table(vec![not_valid]), &orphans);
        assert_eq!(c.choice, "rebuild", "{c:?}");
        assert_eq!(c.foreign_keys, ["c.c_t_fk (NOT VALID, as it was)"]);
        // Without a reason, the key goes with the foreign key on it, which comes back.
        let c = choose(
            &table(vec![primary_key()]),
            &load(&cat, Rebuild::Always, None),
        );
        // First, inside the transaction: are the indexes what the plan read?
        assert_eq!(c.drops[0].check, Some(BuildCheck::Unchanged));
        let sql: Vec<&str> = c
            .drops
            .iter()
            .skip(1)
            .chain(&c.builds)
            .map(|s| s.sql.as_str())
            .collect();
        assert_eq!(
            sql,
            [
                r#"ALTER TABLE "public"."c" DROP CONSTRAINT "c_t_fk""#,
                r#"ALTER TABLE "public"."t" DROP CONSTRAINT "t_pkey""#,
                "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
                r#"ALTER TABLE "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY USING INDEX "t_pkey""#,
                r#"ALTER TABLE "public"."c" ADD CONSTRAINT "c_t_fk" FOREIGN KEY (t_id) REFERENCES t(id) ON DELETE CASCADE"#,
            ]
        );
        assert_eq!(c.foreign_keys, ["c.c_t_fk"]);
    }

    #[test]
    fn a_partitioned_index_and_its_partitions_go_together() {
        let cat = Catalog::default();
        let parent = index("m_v", "CREATE INDEX m_v ON ONLY public.m USING btree (v)");
        let mut mid = index(
            "m2_v",
            "CREATE INDEX m2_v ON ONLY public.m2 USING btree (v)",
        );
        mid.parent = Some("m_v".into());
        mid.table = "m2".into();
        let mut leaf = index("m2a_v", "CREATE INDEX m2a_v ON public.m2a USING btree (v)");
        leaf.parent = Some("m2_v".into());
        leaf.table = "m2a".into();
        let t = PgTable {
            partitioned: true,
            ..table(vec![leaf.clone(), mid.clone(), parent.clone()])
        };
        let c = choose(&t, &load(&cat, Rebuild::Always, None));
        // First, inside the transaction: are the indexes what the plan read?
        assert_eq!(c.drops[0].check, Some(BuildCheck::Unchanged));
        let sql: Vec<&str> = c
            .drops
            .iter()
            .skip(1)
            .chain(&c.builds)
            .map(|s| s.sql.as_str())
            .collect();
        assert_eq!(
            sql,
            [
                r#"DROP INDEX "public"."m_v""#,
                "CREATE INDEX m_v ON ONLY public.m USING btree (v)",
                "CREATE INDEX m2_v ON ONLY public.m2 USING btree (v)",
                "CREATE INDEX m2a_v ON public.m2a USING btree (v)",
                r#"ALTER INDEX "public"."m2_v" ATTACH PARTITION "public"."m2a_v""#,
                r#"ALTER INDEX "public"."m_v" ATTACH PARTITION "public"."m2_v""#,
            ]
        );
        // One member that must stay keeps the whole family.
        leaf.owned = false;
        let t = PgTable {
            partitioned: true,
            ..table(vec![leaf, mid, parent])
        };
        let c = choose(&t, &load(&cat, Rebuild::Always, None));
        assert_eq!(c.choice, "keep", "{c:?}");
        assert_eq!(c.kept.len(), 3);
        assert!(c.kept[2].reason.contains("attached with `m_v`"), "{c:?}");
    }

    #[test]
    fn what_the_definition_leaves_out_comes_back() {
        let cat = Catalog::default();
        let mut i = index(
            "t_code",
            "CREATE INDEX t_code ON public.t USING btree (lower(code)) WHERE (code IS NOT NULL)",
        );
        i.tablespace = Some("fast disk".into());
        i.predicate = Some("(code IS NOT NULL)".into());
        i.comment = Some("it's".into());
        i.clustered = true;
        i.replica_identity = true;
        i.statistics = vec![(1, 500)];
        let c = choose(&table(vec![i]), &load(&cat, Rebuild::Always, None));
        let sql: Vec<&str> = c.builds.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                r#"CREATE INDEX t_code ON public.t USING btree (lower(code)) TABLESPACE "fast disk" WHERE (code IS NOT NULL)"#,
                r#"ALTER INDEX "public"."t_code" ALTER COLUMN 1 SET STATISTICS 500"#,
                r#"COMMENT ON INDEX "public"."t_code" IS 'it''s'"#,
                r#"ALTER TABLE "public"."t" CLUSTER ON "t_code""#,
                r#"ALTER TABLE "public"."t" REPLICA IDENTITY USING INDEX "t_code""#,
            ]
        );
        let mut j = index("j", "CREATE INDEX j ON public.t USING gin (doc)");
        j.tablespace = Some("s".into());
        assert_eq!(
            create_sql(&j),
            r#"CREATE INDEX j ON public.t USING gin (doc) TABLESPACE "s""#
        );
    }

    #[test]
    fn duplicates_are_found_as_the_unique_index_sees_them() {
        let mut i = index(
            "t_code",
            "CREATE UNIQUE INDEX t_code ON public.t USING btree (lower(code)) WHERE (grp > 0)",
        );
        i.unique = true;
        i.keys = vec!["lower(code)".into()];
        i.predicate = Some("(grp > 0)".into());
        let d = duplicates(&i, &table(vec![]));
        assert_eq!(
            d.sql,
            r#"SELECT c0, c1 FROM (SELECT "id"::text AS c0, (lower(code))::text AS c1, count(*) OVER (PARTITION BY (lower(code))) AS n FROM "public"."t" WHERE ((grp > 0)) AND (lower(code)) IS NOT NULL) d WHERE n > 1 ORDER BY c1 LIMIT 10"#
        );
        let row = |k: &str, v: Option<&str>| vec![Some(k.to_string()), v.map(str::to_string)];
        assert_eq!(
            d.describe(&[
                row("2", Some("b")),
                row("3", Some("b")),
                row("9", Some("c"))
            ]),
            "lower(code)=b in rows id=2; id=3; lower(code)=c in rows id=9"
        );
        // NULLS NOT DISTINCT: NULL keys collide too; the primary key names itself.
        i.def =
            "CREATE UNIQUE INDEX t_code ON public.t USING btree (code) NULLS NOT DISTINCT".into();
        i.predicate = None;
        i.keys = vec!["code".into()];
        let d = duplicates(&i, &table(vec![]));
        assert!(
            !d.sql.contains("IS NOT NULL") && !d.sql.contains("WHERE (("),
            "{}",
            d.sql
        );
        let d = duplicates(&primary_key(), &table(vec![]));
        assert_eq!(d.keys, Vec::<String>::new());
        assert_eq!(d.describe(&[vec![Some("5".into())]]), "id=5");
    }

    #[test]
    fn build_memory_is_the_larger_of_the_setting_and_shared_buffers() {
        let s = |mwm, sb| BuildSettings {
            maintenance_work_mem_kb: mwm,
            shared_buffers_kb: sb,
            max_parallel_maintenance_workers: 2,
        };
        assert_eq!(build_memory_kb(&s(65_536, 131_072), None), 131_072);
        assert_eq!(build_memory_kb(&s(1_048_576, 131_072), None), 1_048_576);
        assert_eq!(build_memory_kb(&s(65_536, 131_072), Some(4096)), 4096);
        for (memory_kb, workers) in [
            (131_072, 2),
            (98_304, 2),
            (98_303, 1),
            (65_536, 1),
            (4096, 0),
        ] {
            assert_eq!(
                build_workers(&s(0, 0), memory_kb),
                workers,
                "{memory_kb} kB"
            );
        }
        let none = BuildSettings {
            max_parallel_maintenance_workers: 0,
            ..s(0, 0)
        };
        assert_eq!(build_workers(&none, 1_048_576), 0);
    }
}
