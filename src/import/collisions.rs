//! Asking the target which rows break each constraint, in the diagnosis transaction
//! (`Plan::diagnosis`): the rules and their report are `plan::collisions`'.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::db::postgres;
use crate::import::plan::collisions::{Found, Rule, RuleKind, origin, value_text};

/// Every violation found: the error a failed load becomes.
#[derive(Debug)]
pub struct Violations(pub Vec<Found>, pub Vec<String>);

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let constraints: std::collections::BTreeSet<(&str, &str)> = self
            .0
            .iter()
            .map(|v| (v.table.as_str(), v.label.as_str()))
            .collect();
        write!(
            f,
            "the rows loaded break {} of the target (every violation, listed by loading again \
             without them in a transaction that was rolled back):\n{}",
            crate::report::count(constraints.len() as u64, "constraint"),
            crate::import::plan::collisions::describe(&self.0)
        )?;
        if !self.1.is_empty() {
            write!(
                f,
                "\n  (not listed, the server alone checks them: {})",
                self.1.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Run every rule; the ones broken, in order.
pub async fn find(
    tx: &tokio_postgres::Transaction<'_>,
    rules: &[Rule],
    keys: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for rule in rules {
        let rows = tx
            .query(rule.sql.as_str(), &[])
            .await
            .map_err(postgres::error)
            .with_context(|| {
                format!(
                    "listing the rows that break {} of `{}`",
                    rule.label, rule.table
                )
            })?;
        if let Some(f) = read(rule, &rows, keys) {
            found.push(f);
        }
    }
    Ok(found)
}

fn read(
    rule: &Rule,
    rows: &[tokio_postgres::Row],
    keys: &BTreeMap<String, Vec<String>>,
) -> Option<Found> {
    let at = |r: &tokio_postgres::Row, i: usize| {
        origin(
            r.get::<_, Option<String>>(i).as_deref(),
            r.get::<_, Option<Vec<Option<String>>>>(i + 1).as_deref(),
            r.get(i + 2),
            keys,
        )
    };
    let first = rows.first()?;
    let mut found = Found {
        table: rule.table.clone(),
        label: rule.label.clone(),
        kind: rule.kind,
        count: first.get::<_, i64>(0) as u64,
        rows: 0,
        examples: Vec::new(),
        dataset: None,
        column: rule.column.clone(),
    };
    let dataset = |r: &tokio_postgres::Row, i: usize| r.get::<_, Option<String>>(i);
    match rule.kind {
        RuleKind::Unique => {
            found.rows = first.get::<_, i64>(1) as u64;
            // The later holder of the first value: the last of its rows.
            let value = first.get::<_, Option<Vec<Option<String>>>>(2);
            found.dataset = rows
                .iter()
                .take_while(|r| r.get::<_, Option<Vec<Option<String>>>>(2) == value)
                .filter_map(|r| dataset(r, 3))
                .last();
            for r in rows {
                let Some(value) = r.get::<_, Option<Vec<Option<String>>>>(2) else {
                    continue;
                };
                let value = value_text(&value);
                let who = at(r, 3);
                match found.examples.last_mut() {
                    Some((Some(v), origins)) if *v == value => origins.push(who),
                    _ => found.examples.push((Some(value), vec![who])),
                }
            }
        }
        RuleKind::Rows => {
            found.dataset = dataset(first, 1);
            found.examples = rows.iter().map(|r| (None, vec![at(r, 1)])).collect()
        }
        RuleKind::Pairs => {
            found.dataset = dataset(first, 4);
            found.examples = rows
                .iter()
                .map(|r| (None, vec![at(r, 1), at(r, 4)]))
                .collect()
        }
    }
    (found.count > 0).then_some(found)
}
