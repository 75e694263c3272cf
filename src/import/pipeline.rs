//! `migrate`'s side of the load: each dataset's files and facts as the export finishes
//! them, the COPYs planned from them, and the load order that takes a table whose files
//! are complete before one still being exported (plain COPYs only).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{Result, anyhow, bail};
use tokio::sync::mpsc;

use crate::hint::with_hint;
use crate::import::plan::{Copy, Plan, Replan, Replanned, Statement, TableInput};

/// `migrate`'s side of the load: each dataset's finished files and facts (or the
/// export's failure), as they come, and how to plan its COPYs from them.
pub struct Pipeline {
    pub ready: mpsc::UnboundedReceiver<Result<TableInput, String>>,
    pub replan: Replan,
    have: BTreeMap<String, TableInput>,
    /// The source's row estimate over every dataset: the total of the import's bar.
    pub(crate) estimated_rows: u64,
}

impl Pipeline {
    pub fn new(
        ready: mpsc::UnboundedReceiver<Result<TableInput, String>>,
        replan: Replan,
        estimated_rows: u64,
    ) -> Self {
        Pipeline {
            ready,
            replan,
            have: BTreeMap::new(),
            estimated_rows,
        }
    }

    /// Take what the export has finished so far, without waiting.
    fn drain(&mut self) -> Result<()> {
        while let Ok(arrived) = self.ready.try_recv() {
            match arrived {
                Ok(input) => {
                    self.have.insert(input.spec.name.clone(), input);
                }
                Err(e) => bail!("the export failed: {e}"),
            }
        }
        Ok(())
    }

    /// Wait for the next dataset the export finishes (None: the export ended).
    async fn wait(&mut self) -> Result<Option<()>> {
        match self.ready.recv().await {
            Some(Ok(input)) => {
                self.have.insert(input.spec.name.clone(), input);
                Ok(Some(()))
            }
            Some(Err(e)) => bail!("the export failed: {e}"),
            None => Ok(None),
        }
    }

    /// Wait until the export has finished `dataset`, then plan its COPYs from its real
    /// files and facts (refusing, before any of it is written, what they call for).
    pub(crate) async fn copies(
        &mut self,
        dataset: &str,
        plan: &Plan,
        as_csv: &BTreeSet<String>,
    ) -> Result<Replanned> {
        while !self.have.contains_key(dataset) {
            match self.ready.recv().await {
                Some(Ok(input)) => {
                    self.have.insert(input.spec.name.clone(), input);
                }
                Some(Err(e)) => bail!("the export failed: {e}"),
                None => bail!("the export ended without writing `{dataset}`"),
            }
        }
        self.replan
            .copies(&self.have[dataset], plan, as_csv)
            .map_err(|refused| {
                with_hint(
                    anyhow!(
                        "import refused before loading `{dataset}` ({}):\n{}",
                        crate::report::count(refused.errors.len() as u64, "problem"),
                        refused
                            .errors
                            .iter()
                            .map(|e| format!("  - {e}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ),
                    crate::import::fixes::refusal_hint(
                        &refused.fixes,
                        self.replan.dialect,
                        "migrate again",
                    ),
                )
            })
    }
}

/// A run of statements at the front of the queue that loads one table by plain COPYs:
/// its index drops, the COPYs of its datasets (none staged) and its index builds.
struct Group {
    start: usize,
    end: usize,
    datasets: Vec<String>,
}

/// The table of a statement that loads it by plain COPY (or drops or builds its
/// indexes); None for anything else.
fn plain_table(stmt: &Statement) -> Option<&str> {
    match stmt {
        Statement::Index(step) => Some(&step.table),
        Statement::Copy(c) if !c.staged => Some(&c.table),
        _ => None,
    }
}

/// The plain groups at the front of the queue, one after another, up to the first
/// statement of another kind.
fn plain_groups(queue: &VecDeque<Statement>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut table = None;
    for (n, stmt) in queue.iter().enumerate() {
        let Some(t) = plain_table(stmt) else {
            break;
        };
        if table != Some(t) {
            groups.push(Group {
                start: n,
                end: n,
                datasets: Vec::new(),
            });
            table = Some(t);
        }
        let Some(g) = groups.last_mut() else {
            break;
        };
        g.end = n + 1;
        if let Statement::Copy(c) = stmt
            && !g.datasets.contains(&c.dataset)
        {
            g.datasets.push(c.dataset.clone());
        }
    }
    groups
}

/// `migrate`: when the next table's files are not complete yet but a later table's are,
/// load that one first, rather than wait. Only tables loaded by plain COPYs trade
/// places, and only with each other (nothing staged, fired or hooked between them,
/// whose SQL could read what was loaded before it): under the replica role the order
/// of plain COPYs changes nothing the target holds. A foreign key a parent's rebuild
/// adds back after its child was loaded is then validated over the child's rows.
pub(crate) async fn ready_first(
    queue: &mut VecDeque<Statement>,
    pipeline: &mut Pipeline,
    resolved: &BTreeSet<String>,
) -> Result<()> {
    loop {
        let groups = plain_groups(queue);
        if groups.len() < 2 {
            return Ok(());
        }
        pipeline.drain()?;
        let ready = |g: &Group| {
            g.datasets
                .iter()
                .all(|d| resolved.contains(d) || pipeline.have.contains_key(d))
        };
        if ready(&groups[0]) {
            return Ok(());
        }
        if let Some(g) = groups.iter().skip(1).find(|g| ready(g)) {
            let moved: Vec<Statement> = queue.drain(g.start..g.end).collect();
            for stmt in moved.into_iter().rev() {
                queue.push_front(stmt);
            }
            return Ok(());
        }
        if pipeline.wait().await?.is_none() {
            return Ok(());
        }
    }
}

/// Whether `stmt` loads rows into `child` or `parent`.
pub(crate) fn loads_into(stmt: &Statement, child: &str, parent: &str) -> bool {
    match stmt {
        Statement::Copy(Copy { table, .. }) | Statement::Insert { table, .. } => {
            table == child || table == parent
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::plan::Feed;
    use crate::import::plan::IndexStep;

    fn copy(table: &str, dataset: &str, staged: bool) -> Statement {
        Statement::Copy(Copy {
            dataset: dataset.into(),
            table: table.into(),
            file: format!("{dataset}.csv"),
            sha256: None,
            longest: None,
            rows: None,
            sql: String::new(),
            feed: Feed::Csv,
            last: true,
            expected_rows: None,
            columns: Vec::new(),
            key: Vec::new(),
            partitions: Vec::new(),
            staged,
        })
    }

    fn index(table: &str, build: bool) -> Statement {
        Statement::Index(IndexStep {
            table: table.into(),
            sql: String::new(),
            context: String::new(),
            build,
            check: None,
        })
    }

    #[test]
    fn plain_groups_end_at_a_staged_copy_or_any_other_statement() {
        let queue: VecDeque<Statement> = vec![
            index("p", false),
            copy("p", "p", false),
            index("p", true),
            copy("c", "c1", false),
            copy("c", "c2", false),
            index("c", true),
            copy("s", "s", true),
            copy("d", "d", false),
        ]
        .into();
        let got: Vec<(usize, usize, Vec<String>)> = plain_groups(&queue)
            .into_iter()
            .map(|g| (g.start, g.end, g.datasets))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 3, vec!["p".to_string()]),
                (3, 6, vec!["c1".to_string(), "c2".to_string()]),
            ]
        );
        let hooked: VecDeque<Statement> = vec![
            copy("p", "p", false),
            Statement::Sql {
                sql: "SELECT 1".into(),
                context: "a hook".into(),
                hint_if_denied: None,
            },
            copy("c", "c", false),
        ]
        .into();
        assert_eq!(plain_groups(&hooked).len(), 1);
    }

    #[test]
    fn only_copies_and_inserts_load_a_table() {
        assert!(loads_into(&copy("c", "c", false), "c", "p"));
        assert!(loads_into(&copy("p", "x", true), "c", "p"));
        assert!(!loads_into(&copy("d", "d", false), "c", "p"));
        assert!(!loads_into(&index("c", true), "c", "p"));
    }
}
