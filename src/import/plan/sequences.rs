//! PURE: the sequence resets after the load, one statement per sequence that a column of
//! an imported table takes values from, transactional wherever PostgreSQL allows it.

use std::collections::BTreeMap;

use crate::db::catalog::Catalog;
use crate::db::sql::pg::{dollar_quoted, ident, literal, qualified};
use crate::mapping::Mapping;

use super::{SequenceReset, TableInput, TableLoad};

/// ONE setval per sequence that a column of an imported table uses: the greatest of
/// every column (any table of the schema) that takes values from it and of the
/// source's AUTO_INCREMENT - 1 (mapped through the renames); back to its start when all
/// are empty.
pub(super) fn sequence_resets(
    cat: &Catalog,
    schema: &str,
    loads: &[TableLoad],
    inputs: &[TableInput],
    mapping: &Mapping,
) -> Vec<SequenceReset> {
    let imported: Vec<&str> = loads.iter().map(|l| l.table.as_str()).collect();
    let mut by_sequence: BTreeMap<&str, Vec<&crate::db::catalog::SequenceUse>> = BTreeMap::new();
    for u in &cat.sequences {
        by_sequence.entry(&u.sequence).or_default().push(u);
    }
    by_sequence
        .into_iter()
        .filter(|(_, uses)| uses.iter().any(|u| imported.contains(&u.table.as_str())))
        .map(|(sequence, uses)| {
            let auto_increment = uses
                .iter()
                .filter_map(|u| {
                    loads
                        .iter()
                        .filter(|l| l.table == u.table)
                        .filter_map(|l| inputs.iter().find(|i| i.spec.name == l.dataset))
                        .filter_map(|i| i.spec.auto_increment.as_ref().map(|a| (i, a)))
                        .filter(|(i, a)| mapping.target_column(&i.spec.name, &a.column) == u.column)
                        .map(|(_, a)| a.next)
                        .max()
                })
                .max();
            let mut values: Vec<String> = uses
                .iter()
                .map(|u| {
                    format!(
                        "(SELECT max({})::bigint FROM {})",
                        ident(&u.column),
                        qualified(schema, &u.table)
                    )
                })
                .collect();
            if let Some(next) = auto_increment.filter(|n| *n > 1) {
                values.push((next - 1).to_string());
            }
            let sql = sequence_reset_sql(sequence, &values.join(", "));
            SequenceReset {
                sequence: sequence.to_string(),
                columns: uses
                    .iter()
                    .map(|u| (u.table.clone(), u.column.clone()))
                    .collect(),
                auto_increment,
                owned: uses.iter().all(|u| u.owned),
                sql,
            }
        })
        .collect()
}

/// A delta's reset of a sequence: forward only, never back. Past the greatest of every
/// column that takes values from it, of the source's AUTO_INCREMENT - 1, and of the
/// sequence's own position (values drawn since the base are not issued again).
pub(super) fn forward_sql(reset: &SequenceReset, schema: &str) -> String {
    let mut values: Vec<String> = reset
        .columns
        .iter()
        .map(|(table, column)| {
            format!(
                "(SELECT max({})::bigint FROM {})",
                ident(column),
                qualified(schema, table)
            )
        })
        .collect();
    if let Some(next) = reset.auto_increment.filter(|n| *n > 1) {
        values.push((next - 1).to_string());
    }
    values.push(format!(
        "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {})",
        reset.sequence
    ));
    sequence_reset_sql(&reset.sequence, &values.join(", "))
}

/// The statement that puts `sequence` past `greatest` (an SQL expression, NULL when
/// every column is empty), or back to its start. `ALTER SEQUENCE ... RESTART` is
/// transactional, so a rollback for any reason (an error, a signal, kill -9, a lost
/// connection) leaves the sequence where it stood; `setval` is not. `setval` remains
/// only where ALTER cannot be used: a role that does not own the sequence, a descending
/// sequence, or a greatest value at the sequence's maximum (the import's own restore of
/// sequence positions covers those while the client lives).
fn sequence_reset_sql(sequence: &str, greatest: &str) -> String {
    let body = format!(
        " DECLARE seq regclass := {}::regclass; m bigint := GREATEST({greatest}); s pg_sequence; owner boolean;\n\
         BEGIN SELECT * INTO s FROM pg_sequence WHERE seqrelid = seq; \
         owner := pg_has_role((SELECT relowner FROM pg_class WHERE oid = seq), 'USAGE');\n  \
         IF m IS NULL OR m < s.seqmin THEN IF owner THEN EXECUTE format('ALTER SEQUENCE %s RESTART', seq); \
         ELSE PERFORM setval(seq, s.seqstart, false); END IF;\n  \
         ELSIF owner AND s.seqincrement > 0 AND m <= s.seqmax - s.seqincrement \
         THEN EXECUTE format('ALTER SEQUENCE %s RESTART WITH %s', seq, m + s.seqincrement);\n  \
         ELSE PERFORM setval(seq, m, true); END IF; END ",
        literal(sequence)
    );
    format!("DO {}", dollar_quoted(&body))
}
