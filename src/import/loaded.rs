//! What the load tells, worked out from what it counted: how far a bar of rows has come
//! for the bytes sent, a delta's deleted and cleared rows per table, and the refusals it
//! words (a COPY that stored another number of rows than its file holds, foreign keys
//! with rows without a parent).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;

use crate::hint::with_hint;
use crate::import::plan::{Plan, Touch};
use crate::import::rebuild::Orphaned;
use crate::import::transaction::TableLoaded;

/// The rows a file's first `sent` bytes stand for, at its rows per byte (none when its
/// rows are unknown): what a bar of rows shows while the file is sent.
pub(crate) fn rows_at(sent: u64, file_bytes: u64, rows: Option<u64>) -> u64 {
    match rows {
        Some(rows) if file_bytes > 0 => {
            (u128::from(sent.min(file_bytes)) * u128::from(rows) / u128::from(file_bytes)) as u64
        }
        _ => 0,
    }
}

/// A COPY that stored another number of rows than the manifest says its file holds.
/// Its sha256 was checked on the way, so the bytes are the export's: the target skipped
/// rows (a BEFORE INSERT row trigger that fired and returned NULL), or the manifest's
/// count was changed. Both are said.
pub(crate) fn copy_count_differs(
    copy: &crate::import::plan::Copy,
    rows: u64,
    want: u64,
) -> anyhow::Error {
    let checked = match copy.sha256 {
        Some(_) => " (its bytes match the manifest's sha256)",
        None => "",
    };
    with_hint(
        anyhow!(
            "table `{}`: COPY stored {rows} rows of {}, but the manifest says it holds {want} \
             records{checked}",
            copy.table,
            copy.file
        ),
        "a BEFORE INSERT row trigger of the target that fires during the load (ENABLE ALWAYS \
         or ENABLE REPLICA, on the table or a partition, or any under triggers = \"fire\") \
         returns NULL for some rows: disable it for the load; or the manifest or the file was \
         changed after the export: export again",
    )
}

/// The COMMIT refused for foreign keys with rows without a parent, each named: those a
/// rebuild could not add back, then those the orphan checks found.
pub(crate) fn refuse_orphans(
    not_added: &[Orphaned],
    orphaned: &[String],
    plan: &Plan,
) -> anyhow::Error {
    let hint = match plan.delta {
        // Committing a delta's orphans leaves a target that differs from its source: not a
        // way out.
        Some(_) => {
            "nothing was written and the chain stands where it was: the target holds a \
             foreign key the source lacks (remove it, or add it at the source), or the delta \
             missed a change (please report it); a new chain (export --delta-base, import) \
             starts over from the source as it is"
        }
        None => {
            "export and import the parent rows too (or fix the data at the source), or pass \
             --allow-orphans to commit them as they are"
        }
    };
    let said: Vec<&str> = not_added
        .iter()
        .map(|o| o.said.as_str())
        .chain(orphaned.iter().map(String::as_str))
        .collect();
    with_hint(anyhow!("{}: refusing to COMMIT", said.join("; ")), hint)
}

/// A delta's deleted and cleared rows told with the tables they came from: on each
/// table's first dataset, or an entry of its own for a table the delta only deletes from.
pub(crate) fn with_touched(done: &mut Vec<TableLoaded>, touched: &BTreeMap<(String, Touch), u64>) {
    let tables: BTreeSet<&str> = touched.keys().map(|(t, _)| t.as_str()).collect();
    let of = |table: &str, touch| touched.get(&(table.to_string(), touch)).copied();
    let mut told = BTreeSet::new();
    for d in done.iter_mut() {
        if tables.contains(d.table.as_str()) && told.insert(d.table.clone()) {
            let (by_key, cascaded) = (of(&d.table, Touch::Deleted), of(&d.table, Touch::Cascaded));
            d.deleted = (by_key.is_some() || cascaded.is_some())
                .then(|| by_key.unwrap_or(0) + cascaded.unwrap_or(0));
            d.cascaded = cascaded;
            d.cleared = of(&d.table, Touch::Cleared);
        }
    }
    for table in tables.into_iter().filter(|t| !told.contains(*t)) {
        let (by_key, cascaded) = (of(table, Touch::Deleted), of(table, Touch::Cascaded));
        done.push(TableLoaded {
            dataset: table.to_string(),
            table: table.to_string(),
            rows: 0,
            seconds: 0.0,
            copy_seconds: 0.0,
            index_seconds: 0.0,
            deleted: (by_key.is_some() || cascaded.is_some())
                .then(|| by_key.unwrap_or(0) + cascaded.unwrap_or(0)),
            cascaded,
            cleared: of(table, Touch::Cleared),
        });
    }
}

#[cfg(test)]
mod rows_at_tests {
    use super::rows_at;

    #[test]
    fn a_bar_of_rows_moves_with_the_files_bytes() {
        for (sent, bytes, rows, want) in [
            (0, 100, Some(10), 0),
            (50, 100, Some(10), 5),
            (100, 100, Some(10), 10),
            (500, 100, Some(10), 10),
            (50, 0, Some(10), 0),
            (50, 100, None, 0),
            (u64::MAX, u64::MAX, Some(u64::MAX), u64::MAX),
        ] {
            assert_eq!(rows_at(sent, bytes, rows), want, "{sent} {bytes} {rows:?}");
        }
    }
}
