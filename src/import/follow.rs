//! `migrate`: a dataset loaded while the export still writes its files. When no table's
//! files are complete and the next one's are being written, its COPYs start from the
//! plan made before the export (the source's catalog, no facts yet), reading each file
//! as it grows (`store::growing`). When the export completes the dataset, its COPYs are
//! planned again from the real files and facts, as for any dataset, and held against
//! what ran: the same load, every file's sha256 as sent and its records as COPY stored
//! them. A dataset whose facts call for another load (a record too long for the binary
//! converter, a refusal) fails the attempt, which starts over with its files complete:
//! nothing is kept that was loaded another way than the finished export says.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;

use crate::import::copy::{Failure, not_the_export};
use crate::import::pipeline::Pipeline;
use crate::import::plan::{Copy, Feed, Plan};

/// One file loaded as it was written: what ran, and what it sent and stored.
struct Followed {
    copy: Copy,
    rows: u64,
    sha256: String,
}

/// The datasets being loaded as their files are written, in this attempt.
#[derive(Default)]
pub(super) struct Following {
    datasets: BTreeMap<String, Vec<Followed>>,
}

impl Following {
    /// Load `dataset` from its files as they are written.
    pub(super) fn start(&mut self, dataset: &str) {
        self.datasets.insert(dataset.to_string(), Vec::new());
    }

    pub(super) fn follows(&self, dataset: &str) -> bool {
        self.datasets.contains_key(dataset)
    }

    /// One of its files was loaded: what the COPY stored and the sha256 of what it sent.
    pub(super) fn loaded(&mut self, copy: &Copy, rows: u64, sha256: String) {
        if let Some(files) = self.datasets.get_mut(&copy.dataset) {
            files.push(Followed {
                copy: copy.clone(),
                rows,
                sha256,
            });
        }
    }

    /// The dataset's files are complete and `finals` is its load planned from them:
    /// the same load as the one that ran, each file's bytes and records as the export
    /// wrote them? Gives the last file's final COPY (its dataset's count is checked with
    /// it, as for any load).
    pub(super) fn settle(&mut self, dataset: &str, finals: &[Copy]) -> Result<Copy, Failure> {
        let ran = self.datasets.remove(dataset).unwrap_or_default();
        if let Some(why) = other_load(&ran, finals) {
            return Err(Failure::Replan {
                dataset: dataset.to_string(),
                why,
            });
        }
        for (f, want) in ran.iter().zip(finals) {
            if let Some(sha256) = &want.sha256
                && *sha256 != f.sha256
            {
                return Err(not_the_export(&want.file, "sent", &f.sha256, sha256)
                    .context(format!("loading table `{}` from {}", want.table, want.file))
                    .into());
            }
            if let Some(rows) = want.rows
                && rows != f.rows
            {
                return Err(crate::import::load::copy_count_differs(want, f.rows, rows).into());
            }
        }
        finals
            .last()
            .cloned()
            .ok_or_else(|| anyhow!("`{dataset}` has no files to load").into())
    }

    /// A followed COPY of its dataset (`copy`) failed: what would the finished export
    /// have done? A refusal its facts call for is what an unfollowed load reports
    /// (before writing); another load than the one that ran starts the attempt over (a
    /// value the binary converter could not take included: the finished export may load
    /// it otherwise); the same load meets the same failure, which stands.
    pub(super) async fn failed(
        &mut self,
        copy: &Copy,
        pipeline: &mut Pipeline,
        plan: &Plan,
        as_csv: &BTreeSet<String>,
        failure: Failure,
    ) -> Failure {
        let dataset = &copy.dataset;
        let ran = self.datasets.remove(dataset).unwrap_or_default();
        let finals = match pipeline.copies(dataset, plan, as_csv, true).await {
            Ok(finals) => finals.copies,
            Err(refused) => return Failure::Error(refused),
        };
        let began: Vec<&Copy> = ran.iter().map(|f| &f.copy).chain([copy]).collect();
        let differs =
            began.len() > finals.len() || began.iter().zip(&finals).any(|(a, b)| !same_load(a, b));
        let what = match &failure {
            Failure::Error(e) => format!("{e:#}"),
            Failure::NotBinary { stop, .. } => stop.clone(),
            Failure::Replan { why, .. } => why.clone(),
        };
        match differs {
            true => Failure::Replan {
                dataset: dataset.clone(),
                why: format!(
                    "its finished export calls for another load of it than the one that stopped ({})",
                    what.lines().next().unwrap_or_default()
                ),
            },
            false => failure,
        }
    }
}

/// Why the load planned from the finished files is not the one that ran (None: it is).
fn other_load(ran: &[Followed], finals: &[Copy]) -> Option<String> {
    if ran.len() != finals.len() {
        return Some(format!(
            "its finished export has {} where the load read {}",
            crate::report::count(finals.len() as u64, "file"),
            ran.len()
        ));
    }
    for (f, want) in ran.iter().zip(finals) {
        if same_load(&f.copy, want) {
            continue;
        }
        let kind = |c: &Copy| match c.feed {
            Feed::Csv | Feed::Rewrite(..) => "as CSV",
            Feed::Binary(..) => "in binary",
        };
        return Some(match kind(&f.copy) != kind(want) {
            true => format!(
                "its finished export calls for {} {} (the load began {})",
                want.file,
                kind(want),
                kind(&f.copy)
            ),
            false => format!(
                "its finished export calls for another conversion of {} than the one the load began with",
                want.file
            ),
        });
    }
    None
}

/// A COPY without what only the finished file says of itself (its sha256, records and
/// longest record): how a followed file is loaded, its checks made after.
pub(super) fn bare(c: &Copy) -> Copy {
    Copy {
        sha256: None,
        longest: None,
        rows: None,
        expected_rows: None,
        ..c.clone()
    }
}

/// The same COPY, apart from what only the finished file says of itself.
fn same_load(a: &Copy, b: &Copy) -> bool {
    bare(a) == bare(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(file: &str, feed: Feed) -> Copy {
        Copy {
            dataset: "t".into(),
            table: "t".into(),
            file: file.into(),
            sha256: None,
            longest: None,
            rows: None,
            sql: "COPY t FROM STDIN".into(),
            feed,
            last: true,
            expected_rows: None,
            columns: vec!["id".into()],
            key: vec![0],
            partitions: Vec::new(),
            staged: false,
        }
    }

    fn finished(c: &Copy, rows: u64, sha256: &str) -> Copy {
        Copy {
            sha256: Some(sha256.into()),
            rows: Some(rows),
            expected_rows: Some(rows),
            longest: Some(10),
            ..c.clone()
        }
    }

    fn settle(ran: &Copy, rows: u64, sent: &str, finals: &[Copy]) -> Result<Copy, String> {
        let mut f = Following::default();
        f.start("t");
        f.loaded(ran, rows, sent.into());
        f.settle("t", finals).map_err(|e| match e {
            Failure::Replan { why, .. } => format!("replan: {why}"),
            Failure::Error(e) => format!("{e:#}"),
            Failure::NotBinary { stop, .. } => stop,
        })
    }

    #[test]
    fn a_followed_load_is_held_against_the_finished_export() {
        let ran = copy("t.csv", Feed::Csv);
        let done = finished(&ran, 3, "aa");
        // The same load, the same bytes and records: kept, with the final COPY.
        assert_eq!(
            settle(&ran, 3, "aa", std::slice::from_ref(&done)),
            Ok(done.clone())
        );
        // Other bytes than the export's: refused as a changed file.
        let e = settle(&ran, 3, "bb", std::slice::from_ref(&done)).unwrap_err();
        assert!(e.contains("is not the file the export wrote"), "{e}");
        // Other records than the export's.
        let e = settle(&ran, 2, "aa", std::slice::from_ref(&done)).unwrap_err();
        assert!(e.contains("COPY stored 2 rows"), "{e}");
        // Another feed: the attempt starts over.
        let binary = copy(
            "t.csv",
            Feed::Binary(Vec::new(), Vec::new(), Default::default()),
        );
        let e = settle(&binary, 3, "aa", std::slice::from_ref(&done)).unwrap_err();
        assert!(e.starts_with("replan:") && e.contains("as CSV"), "{e}");
        // Another number of files.
        let e = settle(&ran, 3, "aa", &[done.clone(), done.clone()]).unwrap_err();
        assert!(e.contains("2 files"), "{e}");
        // Another statement.
        let other = Copy {
            sql: "COPY t (id) FROM STDIN".into(),
            ..done.clone()
        };
        let e = settle(&ran, 3, "aa", &[other]).unwrap_err();
        assert!(e.contains("another conversion"), "{e}");
    }
}
