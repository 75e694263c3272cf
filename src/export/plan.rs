//! PURE: what an export reads and how. From the source catalog (tables, and the
//! mapping's queries described as tables), the mapping and the selection, one
//! [`TablePlan`] per dataset: its file stem, what it is read from (a table with its
//! `where`, or a `query`), the columns read (generated and dropped ones left out) each
//! with its encoding rule and read form, and the primary key's positions (for row keys
//! in errors and samples). A plan is made once and travels with
//! its table to the reader, the writer and the manifest entry.

use std::collections::BTreeSet;

use crate::codec::encode::{self, Check, Rule};
use crate::codec::rules;
use crate::config::Engine;
use crate::db::catalog::{Read, ReadColumn, ReadFrom, SourceTable};
use crate::db::long_values;
use crate::mapping::Mapping;
use crate::store::export_dir;

/// One column as it is read and written.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
    pub rule: Rule,
    pub read: Read,
    /// Which facts of its values the manifest records.
    pub check: Check,
    /// ENUM and SET labels, from `COLUMN_TYPE`.
    pub labels: Vec<String>,
    /// A string column's character set when it is not UTF-8: each value is checked to
    /// reach utf8mb4 unchanged.
    pub check_conversion_from: Option<String>,
}

/// One table as it is exported.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    pub name: String,
    /// Its files' name stem: the name made safe (see `store::export_dir::file_stems`).
    pub stem: String,
    pub engine: String,
    /// A PostgreSQL partitioned table's partitions, as the export saw them.
    pub partitions: Option<Vec<String>>,
    pub estimated_rows: u64,
    pub columns: Vec<ColumnPlan>,
    pub primary_key: Vec<String>,
    /// Positions of the primary-key columns in `columns`.
    pub pk: Vec<usize>,
    /// Generated columns of the source, not read.
    pub generated: Vec<String>,
    /// The AUTO_INCREMENT column and the next value the source would hand out.
    pub auto_increment: Option<(String, u64)>,
    /// The mapping's `where`, applied to the table.
    pub filter: Option<String>,
    /// The mapping's `count` rules: (name, boolean expression), evaluated at export.
    pub counts: Vec<(String, String)>,
    /// The mapping's `query`: a derived dataset read instead of a table.
    pub query: Option<String>,
    /// Source columns the mapping's `drop` leaves out.
    pub dropped: Vec<String>,
    /// Dropped columns a `set` of the dataset names: exported, never inserted.
    pub helpers: Vec<String>,
}

impl TablePlan {
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.columns.iter().map(|c| c.rule).collect()
    }

    pub fn checks(&self) -> Vec<Check> {
        self.columns.iter().map(|c| c.check).collect()
    }

    /// What the reader selects from.
    pub fn read_from(&self) -> ReadFrom<'_> {
        match &self.query {
            Some(q) => ReadFrom::Query(q),
            None => ReadFrom::Table {
                name: &self.name,
                filter: self.filter.as_deref(),
            },
        }
    }

    /// Every column as the reader fetches it.
    pub fn reads(&self) -> Vec<ReadColumn<'_>> {
        let form = |c: &ColumnPlan| {
            long_values::key_form(&c.data_type, c.read, c.check_conversion_from.is_some())
        };
        // Long values are read by key only when every key column can find its row.
        let keyed = !self.pk.is_empty()
            && self.pk.len() == self.primary_key.len()
            && self.pk.iter().all(|&i| form(&self.columns[i]).is_some());
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| ReadColumn {
                name: &c.name,
                read: c.read,
                check_conversion_from: c.check_conversion_from.as_deref(),
                long: long_values::may_be_long(&c.data_type),
                key: match keyed && self.pk.contains(&i) {
                    true => form(c),
                    false => None,
                },
                digest: false,
            })
            .collect()
    }

    /// The key to cut this table into ranges on, with whether it is an integer: a
    /// one-column primary key of a type whose order `ORDER BY` and `<`/`>=` agree on,
    /// when splitting is on (`parts` > 1) and the table is estimated above `split_rows`.
    pub fn split_key(&self, parts: usize, split_rows: u64) -> Option<(&str, bool)> {
        if parts <= 1 || self.estimated_rows <= split_rows || self.query.is_some() {
            return None;
        }
        let [key] = self.primary_key.as_slice() else {
            return None;
        };
        let col = self.columns.iter().find(|c| &c.name == key)?;
        let integer = match col.data_type.as_str() {
            // MySQL's names, and a PostgreSQL source's.
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "int2"
            | "int4" | "int8" => true,
            "char" | "varchar" | "text" | "bpchar" | "uuid" => false,
            _ => return None,
        };
        Some((key.as_str(), integer))
    }
}

/// Plans for the selected tables of the catalog, in catalog order.
/// `lossless`: the non-UTF-8 character sets whose every value the server converts
/// unchanged (`db::mysql::lossless_charsets`); other non-UTF-8 columns are checked per
/// value.
pub fn plan(
    catalog: Vec<SourceTable>,
    selected: &[String],
    mapping: &Mapping,
    lossless: &BTreeSet<String>,
    engine: Engine,
) -> Vec<TablePlan> {
    let tables: Vec<SourceTable> = catalog
        .into_iter()
        .filter(|t| selected.contains(&t.name))
        .collect();
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let stems = export_dir::file_stems(&names);
    tables
        .into_iter()
        .zip(stems)
        .map(|(t, stem)| table_plan(t, stem, mapping, lossless, engine))
        .collect()
}

/// How a column is fetched so that its exact value reaches the encoder.
fn read_form(data_type: &str, rule: Rule) -> Read {
    match (data_type, rule) {
        // Bytes kept in a text column must not pass the connection's charset
        // conversion (latin1 0x9C would arrive as UTF-8 `œ`).
        (_, Rule::Base64) => Read::Bytes,
        // MariaDB prints FLOAT with six significant digits (123456.7890625 -> 123457);
        // as a double it prints the stored value exactly.
        ("float", _) => Read::Double,
        _ => Read::Text,
    }
}

/// Character sets whose every value converts to utf8mb4 unchanged.
pub fn is_utf8(charset: &str) -> bool {
    matches!(charset, "utf8mb4" | "utf8mb3" | "utf8")
}

fn table_plan(
    t: SourceTable,
    stem: String,
    mapping: &Mapping,
    lossless: &BTreeSet<String>,
    engine: Engine,
) -> TablePlan {
    let map = mapping.table(&t.name);
    let dropped: Vec<String> = map.map(|m| m.drop.clone()).unwrap_or_default();
    // A dropped column a `set` of this dataset names is still exported, as a helper
    // column: the `set` reads it, the import never inserts it.
    let helpers: Vec<String> = dropped
        .iter()
        .filter(|d| map.is_some_and(|m| m.helper(d)))
        .cloned()
        .collect();
    let (generated, read): (Vec<_>, Vec<_>) = t.columns.into_iter().partition(|c| c.generated);
    let columns: Vec<ColumnPlan> = read
        .into_iter()
        .filter(|c| !dropped.contains(&c.name) || helpers.contains(&c.name))
        .map(|c| {
            let (rule, check) = match engine {
                Engine::Mysql => (
                    encode::classify(
                        &c.data_type,
                        &c.column_type,
                        mapping.override_for(&t.name, &c.name),
                    ),
                    Check::for_type(&c.data_type),
                ),
                Engine::Postgresql => (
                    encode::classify_pg(&c.data_type),
                    Check::for_pg_type(&c.data_type),
                ),
            };
            ColumnPlan {
                read: read_form(&c.data_type, rule),
                check_conversion_from: c.charset.clone().filter(|cs| {
                    check == Check::String
                        && rule != Rule::Base64
                        && !is_utf8(cs)
                        && !lossless.contains(cs)
                }),
                check,
                labels: match c.data_type.as_str() {
                    _ if !c.labels.is_empty() => c.labels.clone(),
                    "enum" | "set" if engine == Engine::Mysql => rules::enum_labels(&c.column_type),
                    _ => Vec::new(),
                },
                rule,
                name: c.name,
                data_type: c.data_type,
                column_type: c.column_type,
                nullable: c.nullable,
            }
        })
        .collect();
    let pk = t
        .primary_key
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k))
        .collect();
    let query = mapping.query(&t.name);
    TablePlan {
        name: t.name,
        stem,
        engine: t.engine,
        partitions: t.partitions,
        estimated_rows: t.estimated_rows,
        columns,
        primary_key: t.primary_key,
        pk,
        generated: generated.into_iter().map(|c| c.name).collect(),
        auto_increment: t.auto_increment.filter(|(c, _)| !dropped.contains(c)),
        filter: map.and_then(|m| m.filter.clone()),
        counts: map
            .map(|m| m.count.clone().into_iter().collect())
            .unwrap_or_default(),
        query,
        dropped,
        helpers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;
    use crate::db::catalog::SourceColumn;

    fn col(name: &str, dt: &str, ct: &str, generated: bool) -> SourceColumn {
        SourceColumn {
            name: name.into(),
            data_type: dt.into(),
            column_type: ct.into(),
            nullable: true,
            generated,
            charset: None,
            labels: Vec::new(),
        }
    }

    #[test]
    fn plans_rules_reads_keys_and_stems() {
        let table = SourceTable {
            name: "whiteboard".into(),
            engine: "InnoDB".into(),
            estimated_rows: 5000,
            columns: vec![
                col("content", "longtext", "longtext", false),
                col("id", "char", "char(36)", false),
                col("g", "int", "int", true),
                col("f", "float", "float", false),
            ],
            primary_key: vec!["id".into()],
            auto_increment: None,
            partitions: None,
        };
        let mut other = table.clone();
        other.name = "../x".into();
        let profile = Mapping::resolve("alkemio", None, &Layers::default()).unwrap();
        let plans = plan(
            vec![table, other],
            &["whiteboard".into(), "../x".into()],
            &profile,
            &BTreeSet::new(),
            Engine::Mysql,
        );
        let p = &plans[0];
        assert_eq!(p.stem, "whiteboard");
        assert_eq!(p.generated, ["g"]);
        assert_eq!(p.pk, [1]);
        assert_eq!(p.rules(), [Rule::Base64, Rule::Uuid36, Rule::Verbatim]);
        let reads: Vec<(&str, Read)> = p.reads().iter().map(|r| (r.name, r.read)).collect();
        assert_eq!(
            reads,
            [
                ("content", Read::Bytes),
                ("id", Read::Text),
                ("f", Read::Double)
            ]
        );
        assert!(plans[1].stem.starts_with("___x-"), "{}", plans[1].stem);
        assert_eq!(p.split_key(2, 1000), Some(("id", false)));
        assert_eq!(p.split_key(1, 1000), None);
        assert_eq!(p.split_key(2, 5000), None);
    }

    #[test]
    fn only_text_in_a_charset_the_server_may_not_convert_is_checked() {
        let with = |name: &str, dt: &str, cs: &str| SourceColumn {
            charset: Some(cs.into()),
            ..col(name, dt, dt, false)
        };
        let table = SourceTable {
            name: "t".into(),
            engine: "InnoDB".into(),
            estimated_rows: 1,
            columns: vec![
                with("gb", "varchar", "gbk"),
                with("l1", "varchar", "latin1"),
                with("cy", "varchar", "cp1251"),
                with("u3", "varchar", "utf8mb3"),
                with("u4", "text", "utf8mb4"),
                with("n", "int", "gbk"),
            ],
            primary_key: vec![],
            auto_increment: None,
            partitions: None,
        };
        let profile = Mapping::resolve("t", None, &Layers::default()).unwrap();
        let lossless: BTreeSet<String> = ["latin1".to_string()].into();
        let p = &plan(
            vec![table],
            &["t".into()],
            &profile,
            &lossless,
            Engine::Mysql,
        )[0];
        let checked: Vec<(&str, Option<&str>)> = p
            .reads()
            .iter()
            .map(|r| (r.name, r.check_conversion_from))
            .collect();
        assert_eq!(
            checked,
            [
                ("gb", Some("gbk")),
                ("l1", None),
                ("cy", Some("cp1251")),
                ("u3", None),
                ("u4", None),
                ("n", None),
            ]
        );
    }
}
