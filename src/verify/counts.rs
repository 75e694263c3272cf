//! PURE: what `verify` concludes from three row counts (manifest, target, source) and the
//! orphan counts of foreign keys, and how it words it: "table `user`: 2073 rows in
//! manifest, 2072 in target, 2073 in source: 1 row missing in the target".

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// All counts agree.
    Ok,
    /// The target differs from the manifest: rows lost or added at import.
    TargetDiffers,
    /// The source changed since the export (target may still match the manifest).
    SourceDrift,
    /// The table is not in the target, and the profile or mapping says it may be absent.
    Skipped,
    /// The table is not in the target and nothing said it could be missing: its rows
    /// were not loaded.
    NotLoaded,
    /// The manifest has no row count (old scripts' export without one).
    Unknown,
}

impl Verdict {
    /// Does this verdict make `verify` exit 1?
    pub fn is_difference(self) -> bool {
        matches!(
            self,
            Verdict::TargetDiffers | Verdict::SourceDrift | Verdict::NotLoaded
        )
    }
}

/// One table's counts and what they mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub manifest_rows: Option<u64>,
    /// None when the table is absent in the target.
    pub target_rows: Option<u64>,
    /// None unless `--source`.
    pub source_rows: Option<u64>,
    pub verdict: Verdict,
    pub message: String,
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

/// Judge one table. A target difference outranks source drift. `declared_skip` is the
/// reason a table may be absent in the target (the profile's or mapping's), if any.
/// `hooks`: rows the import's hooks and fired triggers added (negative: removed), which
/// the target holds beyond the export's.
pub fn check_table(
    table: &str,
    exported: Option<u64>,
    target: Option<u64>,
    source: Option<u64>,
    declared_skip: Option<&str>,
    hooks: i64,
) -> TableCheck {
    let manifest = exported.map(|m| (m as i64 + hooks).max(0) as u64);
    let mut counts = vec![match (exported, hooks) {
        (Some(m), 0) => format!("{} in manifest", crate::report::count(m, "row")),
        (Some(m), h) => format!(
            "{} in manifest {h:+} by the import's hooks and triggers = {}",
            crate::report::count(m, "row"),
            manifest.unwrap_or(0)
        ),
        (None, _) => "no count in manifest".to_string(),
    }];
    if let Some(t) = target {
        counts.push(format!("{t} in target"));
    }
    if let Some(s) = source {
        counts.push(format!("{s} in source"));
    }
    let mut message = format!("table `{table}`: {}", counts.join(", "));
    let verdict = match (manifest, target) {
        (_, None) => match declared_skip {
            Some(why) => {
                message.push_str(&format!(": skipped ({why})"));
                Verdict::Skipped
            }
            None => {
                message.push_str(": not loaded: the table does not exist in the target");
                Verdict::NotLoaded
            }
        },
        (None, Some(_)) => Verdict::Unknown,
        (Some(m), Some(t)) if m != t => {
            if t < m {
                message.push_str(&format!(": {} missing in the target", rows(m - t)));
            } else {
                message.push_str(&format!(
                    ": {} more in the target than exported",
                    rows(t - m)
                ));
            }
            Verdict::TargetDiffers
        }
        (Some(_), Some(_)) => match (source, exported) {
            (Some(s), Some(m)) if s != m => {
                let d = s.abs_diff(m);
                message.push_str(&format!(
                    ": the source has {} {} since the export (drift, not loss)",
                    rows(d),
                    if s > m { "more" } else { "fewer" }
                ));
                Verdict::SourceDrift
            }
            _ => Verdict::Ok,
        },
    };
    TableCheck {
        table: table.to_string(),
        manifest_rows: manifest,
        target_rows: target,
        source_rows: source,
        verdict,
        message,
    }
}

/// Orphan rows of one foreign key (child values with no parent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanCheck {
    pub constraint: String,
    pub child: String,
    pub child_columns: Vec<String>,
    pub parent: String,
    pub parent_columns: Vec<String>,
    pub orphans: u64,
}

impl OrphanCheck {
    pub fn message(&self) -> String {
        format!(
            "foreign key `{}` ({}.{} -> {}.{}): {} with no parent",
            self.constraint,
            self.child,
            self.child_columns.join(","),
            self.parent,
            self.parent_columns.join(","),
            rows(self.orphans)
        )
    }
}

/// What `verify` found (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub export_dir: String,
    pub target_database: String,
    pub schema: String,
    pub tables: Vec<TableCheck>,
    pub foreign_keys: Vec<OrphanCheck>,
    /// `--deep`: every value compared, per table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep: Option<Vec<crate::verify::deep::TableDeep>>,
    pub differences: Vec<String>,
}

impl Report {
    /// The report of these checks: every difference worded, `ok` when there is none.
    pub fn new(
        export_dir: String,
        target_database: String,
        schema: String,
        tables: Vec<TableCheck>,
        foreign_keys: Vec<OrphanCheck>,
    ) -> Report {
        let mut differences: Vec<String> = tables
            .iter()
            .filter(|t| t.verdict.is_difference())
            .map(|t| t.message.clone())
            .collect();
        differences.extend(
            foreign_keys
                .iter()
                .filter(|f| f.orphans > 0)
                .map(|f| f.message()),
        );
        Report {
            ok: differences.is_empty(),
            export_dir,
            target_database,
            schema,
            tables,
            foreign_keys,
            deep: None,
            differences,
        }
    }

    /// Add what `--deep` found: every difference it named, and a line for each table
    /// whose differences were too many to itemise.
    pub fn with_deep(mut self, deep: Vec<crate::verify::deep::TableDeep>) -> Report {
        for t in &deep {
            self.differences
                .extend(t.differences.iter().map(|d| d.message()));
            let listed = t.differences.len() as u64;
            let total = t.only_in_source + t.only_in_target + t.different;
            if total > listed || t.buckets_not_itemised > 0 {
                self.differences.push(format!(
                    "table `{}`: {} rows only in the source, {} only in the target, {} with \
                     different values{}{}",
                    t.table,
                    t.only_in_source,
                    t.only_in_target,
                    t.different,
                    if total > listed {
                        format!(" ({listed} listed; --max-diffs shows more)")
                    } else {
                        String::new()
                    },
                    if t.buckets_not_itemised > 0 {
                        format!(
                            ", and {} more buckets of rows that differ, not itemised",
                            t.buckets_not_itemised
                        )
                    } else {
                        String::new()
                    }
                ));
            } else if !t.ok() && total == 0 {
                self.differences.push(format!(
                    "table `{}`: {} rows in the source, {} in the target",
                    t.table, t.source_rows, t.target_rows
                ));
            }
        }
        self.ok = self.differences.is_empty();
        self.deep = Some(deep);
        self
    }

    /// Rows found in the target, over all tables.
    pub fn target_rows(&self) -> u64 {
        self.tables.iter().filter_map(|t| t.target_rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_wording() {
        type Case<'a> = (Option<u64>, Option<u64>, Option<u64>, Verdict, &'a str);
        let cases: &[Case] = &[
            (
                Some(2073),
                Some(2073),
                Some(2073),
                Verdict::Ok,
                "table `user`: 2073 rows in manifest, 2073 in target, 2073 in source",
            ),
            (
                Some(2073),
                Some(2073),
                None,
                Verdict::Ok,
                "table `user`: 2073 rows in manifest, 2073 in target",
            ),
            (
                Some(2073),
                Some(2072),
                None,
                Verdict::TargetDiffers,
                "table `user`: 2073 rows in manifest, 2072 in target: 1 row missing in the target",
            ),
            (
                Some(5),
                Some(7),
                Some(5),
                Verdict::TargetDiffers,
                "table `user`: 5 rows in manifest, 7 in target, 5 in source: 2 rows more in the target than exported",
            ),
            (
                Some(5),
                Some(5),
                Some(6),
                Verdict::SourceDrift,
                "table `user`: 5 rows in manifest, 5 in target, 6 in source: the source has 1 row more since the export (drift, not loss)",
            ),
            (
                Some(5),
                Some(4),
                Some(6),
                Verdict::TargetDiffers,
                "table `user`: 5 rows in manifest, 4 in target, 6 in source: 1 row missing in the target",
            ),
            (
                Some(5),
                None,
                None,
                Verdict::NotLoaded,
                "table `user`: 5 rows in manifest: not loaded: the table does not exist in the target",
            ),
            (
                None,
                Some(5),
                None,
                Verdict::Unknown,
                "table `user`: no count in manifest, 5 in target",
            ),
        ];
        for (m, t, s, v, msg) in cases {
            let c = check_table("user", *m, *t, *s, None, 0);
            assert_eq!((c.verdict, c.message.as_str()), (*v, *msg));
        }
        assert!(Verdict::SourceDrift.is_difference() && !Verdict::Skipped.is_difference());
        let declared = check_table(
            "challenge",
            Some(5),
            None,
            None,
            Some("profile `alkemio` skips it"),
            0,
        );
        assert_eq!(declared.verdict, Verdict::Skipped);
        assert!(
            declared
                .message
                .ends_with("skipped (profile `alkemio` skips it)")
        );
        // A `before` hook added a row to `tenant`: the target holds one more.
        let hooked = check_table("tenant", Some(2), Some(3), Some(2), None, 1);
        assert_eq!(hooked.verdict, Verdict::Ok, "{}", hooked.message);
        assert_eq!(
            hooked.message,
            "table `tenant`: 2 rows in manifest +1 by the import's hooks and triggers = 3, 3 in target, 2 in source"
        );
        assert_eq!(
            check_table("tenant", Some(2), Some(2), None, None, 1).verdict,
            Verdict::TargetDiffers
        );
    }
}
