//! The index builds of each table as the load runs them: one progress bar per table
//! while they run, a line when a table's are all built, and their time added to the
//! table's last dataset.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::import::plan::{IndexStep, Statement};
use crate::import::transaction::TableLoaded;
use crate::progress::Progress;
use crate::store::journal::Journal;

/// The index builds of each table: a progress bar while they run, and their time added
/// to the table's last dataset when the last one is done.
pub(super) struct Builds {
    /// Build steps per table, and how many have run.
    steps: BTreeMap<String, (u64, u64)>,
    seconds: f64,
    bar: Option<indicatif::ProgressBar>,
}

impl Builds {
    pub(super) fn new(statements: &[Statement]) -> Builds {
        let mut steps = BTreeMap::new();
        for s in statements {
            if let Statement::Index(step) = s
                && step.build
            {
                steps.entry(step.table.clone()).or_insert((0, 0)).0 += 1;
            }
        }
        Builds {
            steps,
            seconds: 0.0,
            bar: None,
        }
    }

    pub(super) fn started(&mut self, progress: &Progress, step: &IndexStep) {
        let total = self.steps.get(&step.table).map_or(0, |s| s.0);
        let bar = self
            .bar
            .get_or_insert_with(|| progress.steps(&format!("indexes of {}", step.table), total));
        bar.set_message(crate::import::plan::shorten(&step.context, 60));
    }

    pub(super) fn finished(
        &mut self,
        journal: &mut Journal,
        progress: &Progress,
        step: &IndexStep,
        clock: Instant,
        done: &mut [TableLoaded],
    ) {
        self.seconds += clock.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        let Some((total, ran)) = self.steps.get_mut(&step.table) else {
            return;
        };
        *ran += 1;
        if *ran < *total {
            return;
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let seconds = std::mem::take(&mut self.seconds);
        let line = format!(
            "built the indexes of `{}` ({total} statements) in {seconds:.1} s",
            step.table
        );
        journal.line(&line);
        progress.note(&line);
        if let Some(last) = done.iter_mut().rev().find(|d| d.table == step.table) {
            last.index_seconds += seconds;
            last.seconds += seconds;
        }
    }
}
