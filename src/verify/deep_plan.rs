//! PURE: which columns of a target table `verify --deep` compares, and how
//! (`plan_table`: the mapping's renames, `set` columns and drops, the import's adaptations
//! and the export's rules as `canon::Before`, the kind of each column from both types);
//! how the target is read for it (`target_select`, or by key in pieces: `target_reads`),
//! and which values are compared as their digest (`digested`, `typed_long`).

use crate::codec::adapt::Adapt;
use crate::codec::geometry::Form;
use crate::db::catalog::{PgTable, Read, ReadColumn};
use crate::import::adapt;
use crate::mapping::Mapping;
use crate::store::manifest::{ColumnEntry, TableSpec};
use crate::verify::canon::{Before, Kind};

/// One compared column of a target table.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The target column.
    pub column: String,
    pub kind: Kind,
    /// Per dataset feeding the table: the source column and what happened to it; None
    /// when that dataset gives no value (the target then holds NULL).
    pub sources: Vec<(Option<String>, Before)>,
    /// Read back through key maps (the source key the value was given for): a `set = { c
    /// = "key_of('D', col)" }` column (D's map, compared with `col`), or a primary key
    /// every feeding dataset draws and others follow (their maps, compared with each
    /// dataset's source key).
    pub follows: Option<Vec<String>>,
}

/// How one target table is compared.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    pub table: String,
    /// The export's datasets that feed it.
    pub datasets: Vec<String>,
    pub columns: Vec<Compared>,
    /// Positions in `columns` of the target's primary key; empty: rows are compared as
    /// a multiset (the table has no key, or a column of it is not compared).
    pub key: Vec<usize>,
    /// Target columns not compared, with why.
    pub not_compared: Vec<(String, String)>,
}

/// The kind a target column's values are compared as, given the source column.
pub fn kind(src: &ColumnEntry, dst: &crate::db::catalog::PgColumn, adapt: Adapt) -> Kind {
    if src.rule == "base64" {
        return Kind::Base64;
    }
    if let Adapt::Geometry(form) = adapt {
        return match form {
            Form::Ewkb => Kind::Ewkb,
            f => Kind::Geometry(f),
        };
    }
    if dst.category == 'A' {
        return Kind::Array;
    }
    let digits = |s: &str| -> Option<u8> {
        let open = s.find('(')?;
        let close = s[open..].find(')')? + open;
        s[open + 1..close].trim().parse().ok()
    };
    // Exact: a source value is compared at the target column's precision, which keeps
    // every digit the source holds, or rounds what the mapping accepted (`round`; the
    // import refuses anything else before any write). A target value off by a
    // microsecond is a difference whatever the source column's own precision.
    let dst_digits = digits(&dst.type_sql).unwrap_or(6);
    match dst.binary_type.as_str() {
        "int2" | "int4" | "int8" => Kind::Int,
        "numeric" => match crate::import::adapt::kept_digits(dst) {
            Some(scale) => Kind::DecimalAt {
                scale: scale.min(255) as u8,
            },
            None => Kind::Decimal,
        },
        "money" => Kind::Money,
        "float4" => Kind::F32,
        "float8" => Kind::F64,
        "bool" => Kind::Bool,
        "bpchar" => Kind::Text { trim: true },
        "text" | "varchar" | "name" | "enum" => Kind::Text { trim: false },
        "uuid" => Kind::Uuid,
        "bytea" => Kind::Bytes,
        "date" => Kind::Date,
        "timestamp" | "timestamptz" => Kind::Timestamp { digits: dst_digits },
        "time" | "interval" => Kind::Duration { digits: dst_digits },
        "json" => Kind::Json,
        "jsonb" => Kind::Jsonb,
        "bit" | "varbit" => Kind::Bits {
            width: if src.data_type == "bit" {
                digits(&src.column_type).unwrap_or(1) as usize
            } else {
                0
            },
        },
        _ => match dst.type_name.as_str() {
            "geometry" | "geography" => Kind::Ewkb,
            _ => Kind::AsText,
        },
    }
}

/// What the export's rules and the import's adaptation did to a source column.
pub fn before(src: &ColumnEntry, adapt: Adapt) -> Before {
    Before {
        empty_to_null: src.rule == "uuid36" || adapt == Adapt::EmptyToNull,
        zero_date_to_null: matches!(src.data_type.as_str(), "date" | "datetime" | "timestamp"),
        set_to_array: adapt == Adapt::SetToArray,
        int_to_bool: adapt == Adapt::IntToBool,
        date_part: adapt == Adapt::DateTimeToDate,
        year2: src.column_type == "year(2)",
        geometry: match adapt {
            Adapt::Geometry(f) => Some(f),
            _ => None,
        },
        base64: src.rule == "base64",
        fixed: (src.stats.nul_stripped
            + src.stats.invalid_utf8_replaced
            + src.stats.json_nul_dropped
            > 0)
        .then_some(src.rule == "json"),
        uuid_bytes: match adapt {
            Adapt::BytesToUuid(order) => Some(order),
            _ => None,
        },
        bit_width: if src.data_type == "bit" {
            src.column_type
                .trim_start_matches("bit(")
                .trim_end_matches(')')
                .parse()
                .unwrap_or(1)
        } else {
            0
        },
    }
}

/// The comparison plan of one target table fed by `datasets` (their manifest entries).
/// A column a dataset gives no value for is expected NULL in that dataset's rows when
/// the target column has no default; with a default it is not compared.
pub fn plan_table(table: &PgTable, datasets: &[&TableSpec], mapping: &Mapping) -> TablePlan {
    let mut columns = Vec::new();
    let mut not_compared = Vec::new();
    // Datasets other datasets follow (their keys are in key maps).
    let mapped = mapping.followed_datasets();
    let mut drawn_key = false;
    for col in &table.columns {
        let mut sources: Vec<(Option<String>, Option<Kind>, Before)> = Vec::new();
        let mut why = None;
        let mut followed = None;
        // The table's one-column key, drawn by every feeding dataset, each of them mapped:
        // read back as the source key it was drawn for, compared with each row's own.
        if table.primary_key == [col.name.clone()]
            && let Some(keys) = datasets
                .iter()
                .map(|s| {
                    let drawn = mapping
                        .table(&s.name)
                        .is_some_and(|m| m.set.contains_key(&col.name));
                    let [k] = s.primary_key.as_slice() else {
                        return None;
                    };
                    let src = s.columns.iter().find(|c| &c.name == k)?;
                    (drawn && mapped.contains(&s.name)).then_some(src)
                })
                .collect::<Option<Vec<_>>>()
        {
            drawn_key = true;
            columns.push(Compared {
                column: col.name.clone(),
                kind: Kind::Text { trim: false },
                sources: keys
                    .iter()
                    .map(|src| (Some(src.name.clone()), before(src, Adapt::None)))
                    .collect(),
                follows: Some(datasets.iter().map(|s| s.name.clone()).collect()),
            });
            continue;
        }
        for spec in datasets {
            let ds = &spec.name;
            if let Some(expr) = mapping.table(ds).and_then(|m| m.set.get(&col.name)) {
                // key_of('D', col): compared through D's key map, when one dataset feeds it.
                let follow = crate::mapping::keys::single_call(expr).and_then(|(d, c)| {
                    let src = spec.columns.iter().find(|s| {
                        mapping.target_column(ds, &s.name) == c
                            || (spec.helpers.contains(&s.name) && s.name == c)
                    })?;
                    Some((d, src))
                });
                match follow {
                    Some((d, src)) if datasets.len() == 1 => {
                        followed = Some(vec![d]);
                        sources.push((
                            Some(src.name.clone()),
                            Some(Kind::Text { trim: false }),
                            before(src, Adapt::None),
                        ));
                        continue;
                    }
                    _ => {
                        let all: Vec<String> = datasets
                            .iter()
                            .filter(|s| {
                                mapping
                                    .table(&s.name)
                                    .is_some_and(|m| m.set.contains_key(&col.name))
                            })
                            .map(|s| format!("`{}`", s.name))
                            .collect();
                        why = Some(format!(
                            "computed by the mapping's set for {}",
                            all.join(", ")
                        ));
                        break;
                    }
                }
            }
            let src = spec.columns.iter().find(|c| {
                !spec.helpers.contains(&c.name) && mapping.target_column(ds, &c.name) == col.name
            });
            match src {
                Some(src) => {
                    let d = adapt::decide(
                        &table.name,
                        src,
                        col,
                        mapping.uuid_order(ds, &src.name),
                        mapping.rounds(ds, &src.name),
                    );
                    sources.push((
                        Some(src.name.clone()),
                        Some(kind(src, col, d.adapt)),
                        before(src, d.adapt),
                    ));
                }
                None if !col.has_default && !col.generated && col.identity.is_empty() => {
                    sources.push((None, None, Before::default()));
                }
                None => {
                    why = Some(format!("no value from `{ds}`"));
                    break;
                }
            }
        }
        if let Some(why) = why {
            not_compared.push((col.name.clone(), why));
            continue;
        }
        let Some(kind) = sources.iter().find_map(|(_, k, _)| *k) else {
            not_compared.push((col.name.clone(), "no value from the export".to_string()));
            continue;
        };
        columns.push(Compared {
            column: col.name.clone(),
            kind,
            sources: sources.into_iter().map(|(s, _, b)| (s, b)).collect(),
            follows: followed,
        });
    }
    // Source keys of several datasets may coincide (teacher 1, parent 1): a drawn key
    // read back is no key then, and the rows are compared whole.
    let key: Vec<usize> = match drawn_key && datasets.len() > 1 {
        true => Vec::new(),
        false => table
            .primary_key
            .iter()
            .map(|k| columns.iter().position(|c| &c.column == k))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default(),
    };
    TablePlan {
        table: table.name.clone(),
        datasets: datasets.iter().map(|d| d.name.clone()).collect(),
        columns,
        key,
        not_compared,
    }
}

/// The target side's rows: each compared column, a `key_of` one read back through its
/// key map (the source key its value was given for; NULL when the map has none).
pub fn target_select(plan: &TablePlan, schema: &str) -> String {
    use crate::db::sql::pg::{ident, literal, qualified};
    let mut select = Vec::new();
    let mut joins = String::new();
    for (i, c) in plan.columns.iter().enumerate() {
        match &c.follows {
            Some(ds) => {
                // A value the map does not hold reads as itself, with whose key it is.
                let col = format!("t.{}", ident(&c.column));
                let names: Vec<String> = ds.iter().map(|d| literal(d)).collect();
                select.push(format!(
                    "CASE WHEN m{i}.target_key IS NULL AND {col} IS NOT NULL THEN '(' \
                     || COALESCE((SELECT 'the key of ' || o.dataset || ' ' || array_to_string(o.source_key, ',') \
                     FROM pgconverge.key_map o WHERE o.target_schema = {s} AND o.target_key = {col}::text LIMIT 1), \
                     'a key of no mapped row') \
                     || ', not of ' || {} || ': ' || {col}::text || ')' ELSE m{i}.source_key[1] END",
                    literal(&ds.join(", ")),
                    s = literal(schema),
                ));
                joins.push_str(&format!(
                    " LEFT JOIN pgconverge.key_map m{i} ON m{i}.target_schema = {} AND m{i}.dataset IN ({}) \
                     AND m{i}.target_key = t.{}::text",
                    literal(schema),
                    names.join(", "),
                    ident(&c.column)
                ));
            }
            // money's own text form is the server's currency format: its value instead.
            None if c.kind == Kind::Money => {
                select.push(format!("t.{}::numeric", ident(&c.column)))
            }
            None => select.push(format!("t.{}", ident(&c.column))),
        }
    }
    format!(
        "SELECT {} FROM {} t{joins}",
        select.join(", "),
        qualified(schema, &plan.table)
    )
}

/// The target side's columns as a plain read of the table, each long one read in
/// pieces by the table's key (`db::long_values`); None when a column is read through a
/// key map (the read is then [`target_select`]'s).
pub fn target_reads(plan: &TablePlan) -> Option<Vec<ReadColumn<'_>>> {
    use crate::db::long_values::{KeyForm, LongForm};
    // A column read through a key map, or as another type, is read by the SELECT.
    if plan
        .columns
        .iter()
        .any(|c| c.follows.is_some() || c.kind == Kind::Money)
    {
        return None;
    }
    let form = |k: Kind| match k {
        Kind::Int => Some(KeyForm::Integer),
        Kind::Text { .. } | Kind::Uuid | Kind::Date | Kind::Timestamp { .. } => Some(KeyForm::Text),
        _ => None,
    };
    let keyed = !plan.key.is_empty()
        && plan
            .key
            .iter()
            .all(|&i| form(plan.columns[i].kind).is_some());
    Some(
        plan.columns
            .iter()
            .enumerate()
            .map(|(i, c)| ReadColumn {
                name: &c.column,
                read: Read::Text,
                check_conversion_from: None,
                long: match c.kind {
                    Kind::Bytes => Some(LongForm::Bytea),
                    Kind::Text { .. } | Kind::Json | Kind::Jsonb | Kind::AsText | Kind::Base64 => {
                        Some(LongForm::Text)
                    }
                    _ => None,
                },
                key: match keyed && plan.key.contains(&i) {
                    true => form(c.kind),
                    false => None,
                },
                digest: digested(c.kind, Before::default()),
            })
            .collect(),
    )
}

/// Whether a long value of `kind`, under these source rules, is compared as a reader
/// gives it (text as it is, bytes as their hex digits): it may then be given as its
/// digest form (`long_values::Gathered`), never held whole.
pub fn digested(kind: Kind, before: Before) -> bool {
    before == Before::default()
        && matches!(
            kind,
            Kind::Text { trim: false } | Kind::Json | Kind::AsText | Kind::Base64 | Kind::Bytes
        )
}

/// Whether a long value of `kind` written in the export's files under these source
/// rules is compared as written: [`digested`], or bytes the export wrote as base64 (a
/// mapping's `encode`; the file holds the text compared).
pub fn digested_as_written(kind: Kind, before: Before) -> bool {
    digested(kind, before)
        || before
            == Before {
                base64: true,
                ..Before::default()
            }
}

/// Whether a dataset's export wrote a record past `memory::LONG_VALUE` (or does not
/// say): only then are its long values read in pieces.
pub fn may_hold_long_values(spec: &TableSpec) -> bool {
    spec.files
        .iter()
        .any(|f| f.longest.is_none_or(|l| l > crate::memory::LONG_VALUE))
}

/// The long columns of a MySQL dataset read live (`given`: the plan's columns it
/// gives, in read order), for `verify --deep --source`: read in pieces by the source's
/// primary key when every key column is read and is an integer or a string; bytes
/// compared as such read as hex digits.
pub fn typed_long(
    plan: &TablePlan,
    d: usize,
    spec: &TableSpec,
    given: &[usize],
) -> Option<crate::db::mysql_long::TypedLong> {
    use crate::db::long_values::{KeyForm, Long, key_form, may_be_long};
    if spec.query.is_some() || spec.primary_key.is_empty() {
        return None;
    }
    let entry = |k: usize| {
        let name = plan.columns[given[k]].sources[d].0.as_deref()?;
        spec.columns.iter().find(|c| c.name == name)
    };
    let mut key = Vec::new();
    for pk in &spec.primary_key {
        let k = (0..given.len()).find(|&k| entry(k).is_some_and(|c| &c.name == pk))?;
        let c = entry(k)?;
        let converted = c
            .charset
            .as_deref()
            .is_some_and(|cs| !cs.starts_with("utf8"));
        match key_form(&c.data_type, Read::Text, converted)? {
            KeyForm::Integer => key.push((k, KeyForm::Integer)),
            KeyForm::Text if matches!(c.data_type.as_str(), "char" | "varchar" | "text") => {
                key.push((k, KeyForm::Text))
            }
            KeyForm::Text => return None,
        }
    }
    let columns: Vec<usize> = (0..given.len())
        .filter(|&k| entry(k).is_some_and(|c| may_be_long(&c.data_type).is_some()))
        .collect();
    if columns.is_empty() {
        return None;
    }
    let hex = columns
        .iter()
        .copied()
        .filter(|&k| {
            let c = &plan.columns[given[k]];
            let b = c.sources[d].1;
            c.kind == Kind::Bytes
                && !b.base64
                && b.geometry.is_none()
                && b.uuid_bytes.is_none()
                && b.bit_width == 0
        })
        .collect();
    let digest = columns
        .iter()
        .copied()
        .filter(|&k| {
            let c = &plan.columns[given[k]];
            digested(c.kind, c.sources[d].1)
        })
        .collect();
    // Bytes compared as their base64 (read as stored bytes), with no other rule.
    let base64 = columns
        .iter()
        .copied()
        .filter(|&k| {
            plan.columns[given[k]].sources[d].1
                == Before {
                    base64: true,
                    ..Before::default()
                }
        })
        .collect();
    Some(crate::db::mysql_long::TypedLong {
        long: Long { columns, key },
        hex,
        digest,
        base64,
    })
}
