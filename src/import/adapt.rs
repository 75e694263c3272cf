//! PURE: how each value of a source column must travel into its target column, decided
//! before any write from the manifest's facts and the target catalog. A pair that needs
//! a rewrite gets a `codec::adapt::Adapt` (applied the same way on the binary and the
//! CSV path); a pair whose values the facts show cannot fit is refused, naming table,
//! column, count and sample keys; a pair that cannot work at all (`blob` -> `integer`)
//! is refused whatever the values. Everything else is PostgreSQL's own input function.

use crate::codec::adapt::{Adapt, UuidOrder};
use crate::codec::geometry::{Form, Kind, PostgisType};
use crate::db::catalog::PgColumn;
use crate::import::fixes::Problem;
use crate::store::manifest::ColumnEntry;

/// The decision for one (source column, target column).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub adapt: Adapt,
    /// Reasons to refuse before any write.
    pub refusals: Vec<String>,
    pub warnings: Vec<String>,
    /// Values the adaptation changes (for the plan and the journal).
    pub changed: u64,
    /// What a mapping could do about a refusal: (rows, problem), for its hint.
    pub fixes: Vec<(u64, Problem)>,
}

/// What a source column holds, from MySQL's `DATA_TYPE`, `COLUMN_TYPE` and the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Integer,
    /// decimal; `true` when its scale is 0 (whole numbers only).
    Decimal(bool),
    Float,
    Year,
    Date,
    DateTime,
    Time,
    Text,
    Enum,
    Set,
    Json,
    /// Bytes written as `\x` hex.
    Bytes,
    /// bit(n) written as n digits.
    Bits(u32),
    /// A spatial column (its stored SRID + WKB, as `\x` hex).
    Geometry,
    /// A PostgreSQL source's own type (uuid, boolean, interval, arrays, inet, ...): its
    /// text output, which the target's input function reads (and judges) as it is.
    Native,
    Unknown,
}

fn source(c: &ColumnEntry) -> Src {
    if c.geometry.is_some() {
        return Src::Geometry;
    }
    if c.rule == "hex" {
        return Src::Bytes;
    }
    match c.data_type.as_str() {
        // MySQL's names, and a PostgreSQL source's base type names.
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "int2" | "int4"
        | "int8" => Src::Integer,
        "decimal" | "numeric" => {
            Src::Decimal(c.column_type.ends_with(",0)") || !c.column_type.contains(','))
        }
        "float" | "double" | "real" | "float4" | "float8" => Src::Float,
        "year" => Src::Year,
        "date" => Src::Date,
        "datetime" | "timestamp" | "timestamptz" => Src::DateTime,
        "time" => Src::Time,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "bpchar"
        | "citext" | "name" => Src::Text,
        "enum" => Src::Enum,
        "set" => Src::Set,
        "json" | "jsonb" => Src::Json,
        "bit" => Src::Bits(crate::codec::rules::bit_width(&c.column_type)),
        // Names only a PostgreSQL source's catalog gives.
        "uuid" | "bool" | "interval" | "array" | "timetz" | "inet" | "cidr" | "macaddr"
        | "macaddr8" | "tsvector" | "tsquery" | "money" | "xml" | "varbit" | "oid" => Src::Native,
        _ => Src::Unknown,
    }
}

/// What a target column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    Uuid,
    Enum,
    Array,
    Bool,
    Date,
    Time,
    Timestamp,
    Interval,
    Integer,
    Number,
    Text,
    Json,
    Bytea,
    Bit,
    /// A type PostgreSQL's input function alone judges (citext, inet, PostGIS, ...).
    Other,
}

fn target(c: &PgColumn) -> Dst {
    if c.category == 'A' {
        return Dst::Array;
    }
    match c.binary_type.as_str() {
        "uuid" => Dst::Uuid,
        "enum" => Dst::Enum,
        "bool" => Dst::Bool,
        "date" => Dst::Date,
        "time" | "timetz" => Dst::Time,
        "timestamp" | "timestamptz" => Dst::Timestamp,
        "interval" => Dst::Interval,
        "int2" | "int4" | "int8" => Dst::Integer,
        "numeric" | "float4" | "float8" | "money" => Dst::Number,
        "text" | "varchar" | "bpchar" | "name" => Dst::Text,
        "json" | "jsonb" => Dst::Json,
        "bytea" => Dst::Bytea,
        "bit" | "varbit" => Dst::Bit,
        _ => Dst::Other,
    }
}

/// Decide for `table`.`src` -> `dst`; `order`: the byte order of 16-byte values headed
/// for `uuid` (the mapping's `uuid_bytes`); `round`: the mapping accepts that the target
/// rounds values with more fraction digits than it keeps (`round`).
pub fn decide(
    table: &str,
    src: &ColumnEntry,
    dst: &PgColumn,
    order: UuidOrder,
    round: bool,
) -> Decision {
    let mut d = Decision {
        adapt: Adapt::None,
        refusals: Vec::new(),
        warnings: Vec::new(),
        changed: 0,
        fixes: Vec::new(),
    };
    let here = format!("table `{table}`, column `{}`", src.name);
    let (s, t) = (source(src), target(dst));
    let stats = &src.stats;
    let keys = |k: &[String]| {
        if k.is_empty() {
            String::new()
        } else {
            format!("; e.g. {}", k.join("; "))
        }
    };
    let cannot = |d: &mut Decision| {
        d.refusals.push(format!(
            "{here}: {} ({}) cannot be loaded into {} ({}): the values mean something else there",
            src.column_type, src.data_type, dst.type_sql, dst.name
        ))
    };
    if s == Src::Geometry {
        geometry(&here, src, dst, &mut d);
        return d;
    }
    match (s, t) {
        // PostgreSQL's own output: the target's input function reads it, as pg_dump's
        // text does.
        (Src::Native, _) => {}
        // Bytes are bytes: only bytea (or a type whose own input judges them) takes them,
        // and uuid when every value is 16 bytes (a uuid is 16 bytes).
        (Src::Bytes, Dst::Bytea | Dst::Other) => {}
        (Src::Bytes, Dst::Uuid) => bytes_to_uuid(&here, src, dst, order, &mut d),
        (Src::Bytes, _) => cannot(&mut d),
        (_, Dst::Bytea) => cannot(&mut d),

        (Src::Text | Src::Enum | Src::Set, Dst::Uuid) => {
            if stats.empty_strings > 0 {
                d.adapt = Adapt::EmptyToNull;
                d.changed = stats.empty_strings;
                if dst.not_null {
                    d.fixes.push((stats.empty_strings, Problem::EmptyIntoUuid));
                    d.refusals.push(format!(
                        "{here}: {} '' (which a uuid column can only take as NULL) but the target column is NOT NULL{}",
                        values(stats.empty_strings, "is", "are"),
                        keys(&src.empty_samples)
                    ));
                }
            }
            if stats.non_uuid > 0 {
                d.refusals.push(format!(
                    "{here}: {} but the target column is uuid{}",
                    values(stats.non_uuid, "is not a UUID", "are not UUIDs"),
                    keys(&src.non_uuid_samples)
                ));
                // One fix for the column: the lines for '' alone would leave these.
                let empty: u64 = d.fixes.iter().map(|(n, _)| n).sum();
                d.fixes.clear();
                d.fixes.push((stats.non_uuid + empty, Problem::NotUuid));
            }
        }
        (_, Dst::Uuid) => cannot(&mut d),

        (Src::Text | Src::Enum, Dst::Enum) => {
            labels_fit(&here, src, dst, &src.labels, false, &mut d);
        }
        (_, Dst::Enum) => cannot(&mut d),

        (Src::Set, Dst::Array) => {
            d.adapt = Adapt::SetToArray;
            match dst.element.as_deref() {
                Some("enum") => labels_fit(&here, src, dst, &src.labels, true, &mut d),
                Some("text" | "varchar" | "bpchar") | None => {}
                Some(other) => d.refusals.push(format!(
                    "{here}: SET labels cannot be loaded into an array of {other} ({})",
                    dst.type_sql
                )),
            }
        }
        (Src::Text, Dst::Array) => {}
        (_, Dst::Array) => cannot(&mut d),

        // 0 and 1 are read exactly by PostgreSQL (and the binary converter) as they are:
        // only other integers need MySQL's truth applied.
        (Src::Integer, Dst::Bool) if stats.non_boolean > 0 => {
            d.adapt = Adapt::IntToBool;
            d.changed = stats.non_boolean;
            d.warnings.push(format!(
                "{here}: {} neither 0 nor 1; as in MySQL they load as true",
                values(stats.non_boolean, "is", "are")
            ));
        }
        (Src::Integer, Dst::Bool) => {}
        (Src::Bits(1) | Src::Text, Dst::Bool) => {}
        (_, Dst::Bool) => cannot(&mut d),

        (Src::DateTime, Dst::Date) => {
            d.adapt = Adapt::DateTimeToDate;
            d.changed = stats.non_midnight;
            if stats.non_midnight > 0 {
                d.warnings.push(format!(
                    "{here}: {} a time of day, which the date column drops",
                    values(stats.non_midnight, "has", "have")
                ));
            }
        }
        (Src::Date | Src::Text, Dst::Date) => {}
        (_, Dst::Date) => cannot(&mut d),

        (Src::Time, Dst::Time) if stats.out_of_day > 0 => d.refusals.push(format!(
            "{here}: {} TIME values lie outside 00:00:00-23:59:59, which {} cannot hold (interval can)",
            stats.out_of_day, dst.type_sql
        )),
        (Src::Time | Src::Text, Dst::Time | Dst::Interval) => {}
        (_, Dst::Time | Dst::Interval) => cannot(&mut d),

        (Src::Date | Src::DateTime | Src::Text, Dst::Timestamp) => {}
        (_, Dst::Timestamp) => cannot(&mut d),

        (Src::Integer, Dst::Integer) => integer_range(&here, src, dst, &mut d),
        (Src::Year | Src::Decimal(true) | Src::Text | Src::Bits(_), Dst::Integer) => {}
        (_, Dst::Integer) => cannot(&mut d),

        (Src::Integer | Src::Year | Src::Decimal(_) | Src::Float | Src::Text, Dst::Number) => {}
        (_, Dst::Number) => cannot(&mut d),

        (Src::Json, Dst::Json) if dst.binary_type == "jsonb" && stats.json_nul_kept > 0 => {
            let n = stats.json_nul_kept;
            d.refusals.push(format!(
                "{here}: {} hold{} \\u0000, which jsonb cannot store{} (make the \
                 column json or text, which hold it, or export with --on-invalid fix, which \
                 drops each \\u0000 and counts it)",
                crate::report::count(n, "JSON value"),
                if n == 1 { "s" } else { "" },
                keys(&src.json_nul_samples)
            ))
        }
        (Src::Json | Src::Text, Dst::Json) => {}
        (_, Dst::Json) => cannot(&mut d),

        (Src::Bits(_) | Src::Text, Dst::Bit) => {}
        (_, Dst::Bit) => cannot(&mut d),

        (_, Dst::Text | Dst::Other) => {}
    }
    if matches!(
        (s, t),
        (
            Src::DateTime | Src::Time,
            Dst::Timestamp | Dst::Time | Dst::Interval
        ) | (Src::Decimal(_) | Src::Float, Dst::Number)
    ) {
        rounding(&here, src, dst, round, &mut d);
    }
    declared_size(&here, table, src, dst, &mut d);
    // The export's own rule turned '' into NULL in a char(36): say so when the target
    // is not a uuid, where '' would have been a value.
    if src.rule == "uuid36" && t != Dst::Uuid && stats.empty_uuid_to_null > 0 {
        d.warnings.push(format!(
            "{here}: {} '' values were exported as NULL (the char(36) rule), and the target column is {}, not uuid",
            stats.empty_uuid_to_null, dst.type_sql
        ));
    }
    d
}

/// How many fraction digits a target column keeps: a timestamp's or time's precision
/// (6 when unset), a numeric's scale (None: unconstrained numeric, float, money: not
/// judged here).
pub fn kept_digits(dst: &PgColumn) -> Option<usize> {
    let args = typmod_args(dst.declared_sql());
    match dst.binary_type.as_str() {
        "timestamp" | "timestamptz" | "time" | "timetz" | "interval" => {
            Some(args.first().copied().unwrap_or(6))
        }
        "numeric" => match args.as_slice() {
            [_] => Some(0),
            [_, scale] => Some(*scale),
            _ => None,
        },
        _ => None,
    }
}

/// The numbers in a `format_type` text's first parentheses: `numeric(12,2)` [12, 2],
/// `timestamp(3) with time zone` [3].
fn typmod_args(type_sql: &str) -> Vec<usize> {
    let Some(open) = type_sql.find('(') else {
        return Vec::new();
    };
    let Some(len) = type_sql[open..].find(')') else {
        return Vec::new();
    };
    type_sql[open + 1..open + len]
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// Values with more fraction digits than the target column keeps would be rounded by
/// PostgreSQL without a word: refused before any write, with the count and keys, unless
/// the mapping accepts it (`round = ["column"]`), when it is counted as a change.
fn rounding(here: &str, src: &ColumnEntry, dst: &PgColumn, round: bool, d: &mut Decision) {
    let (Some(kept), Some(used)) = (kept_digits(dst), &src.fraction_digits) else {
        return;
    };
    let over: Vec<_> = used
        .iter()
        .filter(|v| v.value.parse::<usize>().is_ok_and(|n| n > kept))
        .collect();
    let count: u64 = over.iter().map(|v| v.count).sum();
    if count == 0 {
        return;
    }
    let most = over
        .iter()
        .filter_map(|v| v.value.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    let keys: Vec<&str> = over
        .iter()
        .flat_map(|v| v.samples.iter().map(String::as_str))
        .take(crate::codec::encode::SAMPLES)
        .collect();
    let what = format!(
        "{here}: {} more fraction digits (up to {most}) than {} keeps ({kept}), e.g. {}",
        values(count, "has", "have"),
        dst.type_shown(),
        keys.join("; ")
    );
    d.changed += count;
    if round {
        d.warnings.push(format!(
            "{what}; rounded, as the mapping's `round` accepts{}",
            carry(src, dst)
        ));
    } else {
        d.refusals.push(format!(
            "{what}; PostgreSQL would round them (hint: widen the target column to keep \
             every digit, or accept the rounding with `round = [\"{}\"]` under the dataset's \
             [tables.NAME] in the mapping)",
            src.name
        ));
    }
}

/// Rounding can carry a value past a `numeric(p, s)`'s digits before the point (`999.96`
/// into `numeric(4, 1)` is `1000.0`): possible when the widest value already has all
/// `p - s` of them. Said beside the rounding, since PostgreSQL then stops the load.
fn carry(src: &ColumnEntry, dst: &PgColumn) -> String {
    let (Some(widest), Some((p, s))) = (&src.integer_digits, numeric_size(dst)) else {
        return String::new();
    };
    match (widest.max as usize) == p - s {
        true => format!(
            " (a value with {} digits before the point, e.g. {}, may round up past what {} \
             holds: PostgreSQL then stops the load, naming the row; widen it to numeric({}, \
             {s}) to be sure)",
            widest.max,
            widest.max_key,
            dst.type_shown(),
            p + 1
        ),
        false => String::new(),
    }
}

/// A `numeric(p, s)` target's precision and scale (`numeric(p)`: scale 0). None for
/// anything else, and for a negative scale or one past the precision (PostgreSQL 15
/// takes both): those read as something else here, and are left to the server.
fn numeric_size(dst: &PgColumn) -> Option<(usize, usize)> {
    let declared = dst.declared_sql();
    if dst.binary_type != "numeric" || declared.contains('-') {
        return None;
    }
    match *typmod_args(declared).as_slice() {
        [p] => Some((p, 0)),
        [p, s] if s <= p => Some((p, s)),
        _ => None,
    }
}

/// Every value must fit the target's declared size: a `varchar(n)` its longest value in
/// characters (PostgreSQL refuses a longer one in the middle of the COPY, or cuts it
/// silently when the rest is blanks), a `char(n)` the same without trailing blanks (which
/// it pads back: cutting them changes nothing it holds), a `numeric(p, s)` the most digits
/// before the point (`p - s`). Refused before any write, naming a row that does not fit.
fn declared_size(here: &str, table: &str, src: &ColumnEntry, dst: &PgColumn, d: &mut Decision) {
    use crate::db::sql::pg::ident;
    let args = typmod_args(dst.declared_sql());
    let alter = |ty: String| {
        let replaces = match dst.domain_base {
            // A domain's size cannot be altered: the column leaves the domain.
            Some(_) => format!(
                ", which replaces the domain {} on this column, its CHECK constraints with it",
                dst.type_sql
            ),
            None => String::new(),
        };
        format!(
            "ALTER TABLE {} ALTER COLUMN {} TYPE {ty}`{replaces}",
            ident(table),
            ident(&dst.name)
        )
    };
    match (dst.binary_type.as_str(), args.as_slice()) {
        (ty @ ("varchar" | "bpchar"), &[n]) => {
            let longest = match ty {
                "bpchar" => src.longest_trimmed.as_ref(),
                _ => src.longest_chars.as_ref(),
            };
            let Some(l) = longest.filter(|l| l.max > n as u64) else {
                return;
            };
            d.refusals.push(format!(
                "{here}: a value of {} characters (e.g. {}) is longer than {} holds ({n}) \
                 (hint: widen the target column, `{}, or shorten the values at the source)",
                l.max,
                l.max_key,
                dst.type_shown(),
                // A char(n) stays a char: a varchar would stop padding its values.
                alter(match ty {
                    "bpchar" => format!("char({})", l.max),
                    _ => format!("varchar({})", l.max),
                })
            ));
        }
        ("numeric", _) => {
            let Some((p, scale)) = numeric_size(dst) else {
                return;
            };
            if !src.infinite_samples.is_empty() {
                d.refusals.push(format!(
                    "{here}: holds Infinity (e.g. {}), which {} cannot hold (PostgreSQL's numeric \
                     holds it only without a precision) (hint: `{}, or `double precision`; or \
                     leave those rows out with a `where` under the dataset's [tables.NAME] in \
                     the mapping)",
                    src.infinite_samples.join("; "),
                    dst.type_shown(),
                    alter("numeric".into())
                ));
            }
            let room = (p - scale) as u64;
            let most = match (&src.integer_digits, &src.range) {
                (Some(l), _) => Some((l.max, l.max_key.clone())),
                (None, Some(r)) => r.bounds().map(|(min, max)| {
                    let (n, key) = match min.unsigned_abs() > max.unsigned_abs() {
                        true => (min, &r.min_key),
                        false => (max, &r.max_key),
                    };
                    let digits = n.unsigned_abs().checked_ilog10().map_or(0, |l| l + 1);
                    (digits as u64, key.clone())
                }),
                (None, None) => None,
            };
            let Some((most, key)) = most.filter(|(most, _)| *most > room) else {
                return;
            };
            d.refusals.push(format!(
                "{here}: a value with {most} digits before the point (e.g. {key}) does not fit \
                 {}, which holds {room} (hint: widen the target column, `{})",
                dst.type_shown(),
                alter(format!("numeric({}, {scale})", most as usize + scale))
            ));
        }
        _ => {}
    }
}

/// The range of each integer type of PostgreSQL.
fn integer_bounds(binary_type: &str) -> Option<(i128, i128)> {
    match binary_type {
        "int2" => Some((i16::MIN.into(), i16::MAX.into())),
        "int4" => Some((i32::MIN.into(), i32::MAX.into())),
        "int8" => Some((i64::MIN.into(), i64::MAX.into())),
        _ => None,
    }
}

/// Every integer the export holds must fit the target's integer type (MySQL's
/// `int unsigned` reaches 4294967295, `bigint unsigned` 18446744073709551615): refused
/// naming the value and a row holding it, rather than failing in the middle of a COPY.
fn integer_range(here: &str, src: &ColumnEntry, dst: &PgColumn, d: &mut Decision) {
    let (Some(range), Some((lo, hi))) = (&src.range, integer_bounds(&dst.binary_type)) else {
        return;
    };
    let Some((min, max)) = range.bounds() else {
        return;
    };
    for (value, key, out) in [
        (max, &range.max_key, max > hi),
        (min, &range.min_key, min < lo),
    ] {
        if out {
            d.refusals.push(format!(
                "{here}: the value {value} (e.g. {key}) is outside the range of {} ({lo} to {hi}); \
                 a wider target type (bigint, numeric) holds it",
                dst.type_sql
            ));
        }
    }
}

/// Bytes into `uuid`: every value must be 16 bytes (`binary(16)` always is; MySQL pads
/// it), converted in the mapping's byte order.
fn bytes_to_uuid(
    here: &str,
    src: &ColumnEntry,
    dst: &PgColumn,
    order: UuidOrder,
    d: &mut Decision,
) {
    let fixed16 = src.column_type.eq_ignore_ascii_case("binary(16)");
    match src.byte_lengths.as_ref().map(|e| (e.bounds(), e)) {
        Some((Some((16, 16)), _)) => {}
        None if fixed16 => {}
        Some((Some((min, max)), e)) => {
            let (n, key) = if min != 16 {
                (min, &e.min_key)
            } else {
                (max, &e.max_key)
            };
            d.refusals.push(format!(
                "{here}: a value of {n} bytes (e.g. {key}) cannot be a uuid, which is 16 bytes \
                 (values hold {min} to {max} bytes); load it into bytea, or fix the data at \
                 the source",
            ));
            return;
        }
        _ => {
            d.refusals.push(format!(
                "{here}: {} into {}: the export recorded no byte lengths to show every value is \
                 16 bytes; export again with this version of pgconverge",
                src.column_type, dst.type_sql
            ));
            return;
        }
    }
    d.adapt = Adapt::BytesToUuid(order);
}

/// A spatial column: kept as bytes in `bytea`; written as PostgreSQL's geometric types or
/// PostGIS EWKB when every kind of geometry it holds fits the target exactly.
fn geometry(here: &str, src: &ColumnEntry, dst: &PgColumn, d: &mut Decision) {
    if dst.binary_type == "bytea" {
        return;
    }
    let Some(form) = Form::for_type(&dst.type_name) else {
        d.refusals.push(format!(
            "{here}: {} (a MySQL geometry) cannot be loaded into {}: point, lseg, path, polygon, \
             box, PostGIS geometry/geography or bytea can take it",
            src.column_type, dst.type_sql
        ));
        return;
    };
    d.adapt = Adapt::Geometry(form);
    let postgis = PostgisType::parse(&dst.type_sql);
    for k in src.geometry.iter().flatten() {
        let fits = Kind::from_name(&k.value).is_some_and(|kind| {
            form.takes(&kind) && postgis.as_ref().is_none_or(|t| t.takes(&kind))
        });
        if !fits {
            d.refusals.push(format!(
                "{here}: {} a {}, which {} cannot hold exactly; e.g. {}",
                match k.count {
                    1 => "1 row holds".to_string(),
                    n => format!("{n} rows hold"),
                },
                k.value,
                dst.type_sql,
                k.samples.join("; ")
            ));
        }
    }
    if let Some(t) = &postgis {
        let other: Vec<String> = src
            .srids
            .iter()
            .filter(|s| !t.takes_srid(**s))
            .map(u32::to_string)
            .collect();
        if !other.is_empty() {
            d.refusals.push(format!(
                "{here}: values with SRID {} cannot go into {} (PostGIS refuses another SRID)",
                other.join(", "),
                dst.type_sql
            ));
        }
    }
}

/// Every value (or SET element) the export holds must be a label of the target's enum;
/// `''` too. Counts and keys from the column's domain; without one, the source's labels
/// stand in for its values.
fn labels_fit(
    here: &str,
    src: &ColumnEntry,
    dst: &PgColumn,
    source_labels: &[String],
    elements: bool,
    d: &mut Decision,
) {
    let known = |v: &str| dst.enum_labels.iter().any(|l| l == v);
    let what = if elements { "SET element" } else { "value" };
    match &src.domain {
        Some(values) => {
            let mut missing: Vec<String> = Vec::new();
            let mut rows = 0;
            for v in values {
                let parts: Vec<&str> = if elements {
                    if v.value.is_empty() {
                        Vec::new()
                    } else {
                        v.value.split(',').collect()
                    }
                } else {
                    vec![v.value.as_str()]
                };
                for p in parts.into_iter().filter(|p| !known(p)) {
                    if !elements && !missing.iter().any(|m| m == p) {
                        missing.push(p.to_string());
                        rows += v.count;
                    }
                    let shown = if p.is_empty() {
                        "'' (MySQL's invalid ENUM value)".to_string()
                    } else {
                        format!("`{p}`")
                    };
                    d.refusals.push(format!(
                        "{here}: {} the {what} {shown}, which enum {} lacks; e.g. {}",
                        match v.count {
                            1 => "1 row holds".to_string(),
                            n => format!("{n} rows hold"),
                        },
                        dst.type_sql,
                        v.samples.join("; ")
                    ));
                }
            }
            // A SET's elements are not one value a `set` can replace: no fix offered.
            if !missing.is_empty() {
                d.fixes.push((
                    rows,
                    Problem::NotALabel {
                        values: missing,
                        labels: dst.enum_labels.clone(),
                    },
                ));
            }
        }
        None if !source_labels.is_empty() => {
            let missing: Vec<&String> = source_labels.iter().filter(|l| !known(l)).collect();
            if !missing.is_empty() {
                d.refusals.push(format!(
                    "{here}: the source's labels {} are not labels of enum {} (the export kept no count of which occur)",
                    missing
                        .iter()
                        .map(|l| format!("`{l}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    dst.type_sql
                ));
            }
        }
        None => d.warnings.push(format!(
            "{here}: more than 64 distinct values headed for enum {}: PostgreSQL checks each at load",
            dst.type_sql
        )),
    }
}

/// `1 value is`, `3 values are`: a count of values with its verb.
fn values(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 value {one}"),
        n => format!("{n} values {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn straight(table: &str, src: &ColumnEntry, dst: &PgColumn) -> Decision {
        decide(table, src, dst, UuidOrder::Straight, false)
    }
    use crate::codec::encode::{ColumnStats, DomainValue};

    fn src(data_type: &str, column_type: &str, rule: &str, stats: ColumnStats) -> ColumnEntry {
        ColumnEntry {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            rule: rule.into(),
            stats,
            non_uuid_samples: vec!["id=4".into()],
            null_samples: vec![],
            empty_samples: vec!["id=3".into()],
            domain: None,
            labels: vec![],
            geometry: None,
            srids: vec![],
            charset: None,
            json_nul_samples: vec![],
            infinite_samples: vec![],
            range: None,
            byte_lengths: None,
            longest_chars: None,
            longest_trimmed: None,
            integer_digits: None,
            fraction_digits: None,
        }
    }

    fn dst(binary_type: &str, not_null: bool) -> PgColumn {
        PgColumn {
            name: "c".into(),
            type_sql: binary_type.into(),
            type_name: binary_type.into(),
            binary_type: binary_type.into(),
            category: if binary_type.starts_with('_') {
                'A'
            } else {
                'S'
            },
            element: None,
            element_oid: 0,
            enum_labels: vec![],
            not_null,
            has_default: false,
            generated: false,
            identity: String::new(),
            domain_base: None,
            sized_inside: false,
        }
    }

    fn domain(values: &[(&str, u64)]) -> Option<Vec<DomainValue>> {
        Some(
            values
                .iter()
                .map(|(v, n)| DomainValue {
                    value: v.to_string(),
                    count: *n,
                    samples: vec![format!("id={v}")],
                })
                .collect(),
        )
    }

    #[test]
    fn integers_must_fit_the_target_type_named_by_value_and_key() {
        let mut c = src(
            "int",
            "int(10) unsigned",
            "verbatim",
            ColumnStats::default(),
        );
        c.range = Some(crate::codec::encode::Extremes {
            min: "0".into(),
            min_key: "id=1".into(),
            max: "4294967295".into(),
            max_key: "id=7".into(),
        });
        let d = straight("t", &c, &dst("int4", false));
        assert_eq!(d.refusals.len(), 1, "{d:?}");
        assert!(
            d.refusals[0].contains("the value 4294967295 (e.g. id=7) is outside the range of int4"),
            "{d:?}"
        );
        assert!(straight("t", &c, &dst("int8", false)).refusals.is_empty());
        c.range.as_mut().unwrap().min = "-40000".into();
        c.range.as_mut().unwrap().max = "5".into();
        let d = straight("t", &c, &dst("int2", false));
        assert!(d.refusals[0].contains("-40000 (e.g. id=1)"), "{d:?}");
        // No range recorded (an older export): PostgreSQL judges at load, as before.
        c.range = None;
        assert!(straight("t", &c, &dst("int2", false)).refusals.is_empty());
    }

    /// `varchar(n)`, `char(n)` and `numeric(p, s)` are checked against the export's
    /// longest value and most digits before the point, naming a row and the ALTER.
    #[test]
    fn values_must_fit_the_target_s_declared_size() {
        use crate::codec::encode::{Extremes, Largest};
        let sized = |binary_type: &str, type_sql: &str| PgColumn {
            type_sql: type_sql.into(),
            ..dst(binary_type, false)
        };
        let largest = |max: u64| {
            Some(Largest {
                max,
                max_key: "id=10".into(),
            })
        };
        let mut text = src("varchar", "varchar(20)", "verbatim", ColumnStats::default());
        text.longest_chars = largest(9);
        text.longest_trimmed = largest(9);
        // Trailing blanks past n: a char(n) pads them back, a varchar(n) would lose them.
        let mut blanks = src("varchar", "varchar(20)", "verbatim", ColumnStats::default());
        blanks.longest_chars = largest(6);
        blanks.longest_trimmed = largest(3);
        let mut dec = src(
            "decimal",
            "decimal(12,2)",
            "verbatim",
            ColumnStats::default(),
        );
        dec.integer_digits = largest(8);
        // A PostgreSQL source's double holding Infinity (and a finite value of 1 digit).
        let mut inf = src(
            "float8",
            "double precision",
            "verbatim",
            ColumnStats::default(),
        );
        inf.integer_digits = largest(1);
        inf.infinite_samples = vec!["id=7".into()];
        let mut int = src("int", "int(11)", "verbatim", ColumnStats::default());
        int.range = Some(Extremes {
            min: "-123456".into(),
            min_key: "id=1".into(),
            max: "99".into(),
            max_key: "id=2".into(),
        });
        let refused = |c: &ColumnEntry, d: PgColumn| straight("users", c, &d).refusals;
        for (c, d, want) in [
            (
                &text,
                sized("varchar", "character varying(6)"),
                Some(
                    "a value of 9 characters (e.g. id=10) is longer than character varying(6) holds (6) (hint: widen the target column, `ALTER TABLE \"users\" ALTER COLUMN \"c\" TYPE varchar(9)`",
                ),
            ),
            (
                &text,
                sized("bpchar", "character(8)"),
                Some("longer than character(8) holds (8)"),
            ),
            (&text, sized("varchar", "character varying(9)"), None),
            (&blanks, sized("bpchar", "character(3)"), None),
            (
                &blanks,
                sized("varchar", "character varying(3)"),
                Some("a value of 6 characters"),
            ),
            (&text, sized("varchar", "character varying"), None),
            (&text, sized("text", "text"), None),
            (
                &dec,
                sized("numeric", "numeric(6,2)"),
                Some(
                    "a value with 8 digits before the point (e.g. id=10) does not fit numeric(6,2), which holds 4 (hint: widen the target column, `ALTER TABLE \"users\" ALTER COLUMN \"c\" TYPE numeric(10, 2)`)",
                ),
            ),
            (&dec, sized("numeric", "numeric(10,2)"), None),
            (&dec, sized("numeric", "numeric(7)"), Some("which holds 7")),
            (&dec, sized("numeric", "numeric"), None),
            (&dec, sized("numeric", "numeric(2,-3)"), None),
            (&dec, sized("numeric", "numeric(3,5)"), None),
            (
                &int,
                sized("numeric", "numeric(7,2)"),
                Some(
                    "a value with 6 digits before the point (e.g. id=1) does not fit numeric(7,2), which holds 5",
                ),
            ),
            (&int, sized("numeric", "numeric(8,2)"), None),
            (
                &inf,
                sized("numeric", "numeric(10,2)"),
                Some(
                    "holds Infinity (e.g. id=7), which numeric(10,2) cannot hold (PostgreSQL's numeric holds it only without a precision) (hint: `ALTER TABLE \"users\" ALTER COLUMN \"c\" TYPE numeric`",
                ),
            ),
            (&inf, sized("numeric", "numeric"), None),
            (&inf, sized("float8", "double precision"), None),
        ] {
            let r = refused(c, d.clone());
            match want {
                Some(w) => assert!(r.len() == 1 && r[0].contains(w), "{}: {r:?}", d.type_sql),
                None => assert!(r.is_empty(), "{}: {r:?}", d.type_sql),
            }
        }
        // Nothing recorded (an older export): PostgreSQL judges at load, as before.
        let old = src("varchar", "varchar(20)", "verbatim", ColumnStats::default());
        assert!(refused(&old, sized("varchar", "character varying(1)")).is_empty());
    }

    #[test]
    fn sixteen_bytes_become_a_uuid_in_the_mapping_s_byte_order() {
        let lengths = |min: &str, max: &str| {
            Some(crate::codec::encode::Extremes {
                min: min.into(),
                min_key: "id=2".into(),
                max: max.into(),
                max_key: "id=3".into(),
            })
        };
        let mut c = src("binary", "binary(16)", "hex", ColumnStats::default());
        c.byte_lengths = lengths("16", "16");
        let d = decide("t", &c, &dst("uuid", true), UuidOrder::Swapped, false);
        assert_eq!(
            (d.adapt, d.refusals.len()),
            (Adapt::BytesToUuid(UuidOrder::Swapped), 0)
        );
        // binary(16) is always 16 bytes, even with no values recorded.
        c.byte_lengths = None;
        assert!(straight("t", &c, &dst("uuid", false)).refusals.is_empty());
        let mut v = src("varbinary", "varbinary(16)", "hex", ColumnStats::default());
        v.byte_lengths = lengths("4", "16");
        let d = straight("t", &v, &dst("uuid", false));
        assert!(
            d.refusals[0].contains("a value of 4 bytes (e.g. id=2) cannot be a uuid"),
            "{d:?}"
        );
        v.byte_lengths = None;
        assert!(straight("t", &v, &dst("uuid", false)).refusals[0].contains("no byte lengths"));
        // Bytes into text are still refused.
        assert_eq!(straight("t", &c, &dst("text", false)).refusals.len(), 1);
    }

    #[test]
    fn json_with_nul_escapes_is_refused_for_jsonb_only() {
        let stats = ColumnStats {
            json_nul_kept: 2,
            ..ColumnStats::default()
        };
        let mut c = src("json", "json", "json", stats);
        c.json_nul_samples = vec!["id=5".into()];
        let d = straight("t", &c, &dst("jsonb", false));
        assert!(
            d.refusals[0]
                .contains("2 JSON values hold \\u0000, which jsonb cannot store; e.g. id=5"),
            "{d:?}"
        );
        for ok in ["json", "text"] {
            assert!(
                straight("t", &c, &dst(ok, false)).refusals.is_empty(),
                "{ok}"
            );
        }
    }

    #[test]
    fn decisions_by_pair() {
        let empty = ColumnStats {
            empty_strings: 2,
            ..Default::default()
        };
        // varchar(36) '' -> uuid: NULL; into NOT NULL: refused with keys.
        let d = straight(
            "t",
            &src("varchar", "varchar(36)", "text", empty.clone()),
            &dst("uuid", false),
        );
        assert_eq!(
            (d.adapt, d.changed, d.refusals.len()),
            (Adapt::EmptyToNull, 2, 0)
        );
        let d = straight(
            "t",
            &src("varchar", "varchar(36)", "text", empty),
            &dst("uuid", true),
        );
        assert!(
            d.refusals[0].contains("2 values are '' ") && d.refusals[0].contains("e.g. id=3"),
            "{:?}",
            d.refusals
        );
        let bad = ColumnStats {
            non_uuid: 1,
            ..Default::default()
        };
        let d = straight("t", &src("text", "text", "text", bad), &dst("uuid", false));
        assert!(d.refusals[0].contains("1 value is not a UUID") && d.refusals[0].contains("id=4"));
        // tinyint(1) -> boolean: MySQL's truth, with a warning for 2 and -1.
        let two = ColumnStats {
            non_boolean: 2,
            ..Default::default()
        };
        let d = straight(
            "t",
            &src("tinyint", "tinyint(1)", "verbatim", two),
            &dst("bool", false),
        );
        assert_eq!(d.adapt, Adapt::IntToBool);
        assert!(d.warnings[0].contains("2 values are neither 0 nor 1"));
        // datetime -> date warns with the count.
        let late = ColumnStats {
            non_midnight: 3,
            ..Default::default()
        };
        let d = straight(
            "t",
            &src("datetime", "datetime(6)", "datetime", late),
            &dst("date", false),
        );
        assert_eq!(d.adapt, Adapt::DateTimeToDate);
        assert!(d.warnings[0].contains("3 values have a time of day"));
        // blob -> integer cannot work, whatever the values.
        let d = straight(
            "t",
            &src("blob", "blob", "hex", ColumnStats::default()),
            &dst("int4", false),
        );
        assert!(
            d.refusals[0].contains("cannot be loaded into int4"),
            "{:?}",
            d.refusals
        );
        // time outside a day -> time refused, interval fine.
        let long = ColumnStats {
            out_of_day: 1,
            ..Default::default()
        };
        assert_eq!(
            straight(
                "t",
                &src("time", "time", "verbatim", long.clone()),
                &dst("time", false)
            )
            .refusals
            .len(),
            1
        );
        assert!(
            straight(
                "t",
                &src("time", "time", "verbatim", long),
                &dst("interval", false)
            )
            .refusals
            .is_empty()
        );
        // decimal with a scale cannot go into an integer; without one it can.
        assert_eq!(
            straight(
                "t",
                &src(
                    "decimal",
                    "decimal(10,2)",
                    "verbatim",
                    ColumnStats::default()
                ),
                &dst("int8", false)
            )
            .refusals
            .len(),
            1
        );
        assert!(
            straight(
                "t",
                &src(
                    "decimal",
                    "decimal(10,0)",
                    "verbatim",
                    ColumnStats::default()
                ),
                &dst("int8", false)
            )
            .refusals
            .is_empty()
        );
    }

    #[test]
    fn enum_labels_the_target_lacks_are_refused_with_counts_and_keys() {
        let mut e = src("enum", "enum('a','b','')", "text", ColumnStats::default());
        e.labels = vec!["a".into(), "b".into()];
        e.domain = domain(&[("a", 5), ("b", 2), ("", 1)]);
        let mut t = dst("enum", false);
        t.enum_labels = vec!["a".into()];
        t.type_sql = "mood".into();
        let d = straight("t", &e, &t);
        let all = d.refusals.join("\n");
        assert!(
            all.contains("2 rows hold the value `b`, which enum mood lacks; e.g. id=b"),
            "{all}"
        );
        assert!(
            all.contains("1 row holds the value '' (MySQL's invalid ENUM value)"),
            "{all}"
        );
        // Into text: no refusal.
        assert!(straight("t", &e, &dst("text", false)).refusals.is_empty());
        // SET -> enum array: each element checked.
        let mut s = src("set", "set('x','y')", "text", ColumnStats::default());
        s.labels = vec!["x".into(), "y".into()];
        s.domain = domain(&[("x,y", 1), ("", 4)]);
        let mut arr = dst("_mood", false);
        arr.element = Some("enum".into());
        arr.enum_labels = vec!["x".into()];
        let d = straight("t", &s, &arr);
        assert_eq!(d.adapt, Adapt::SetToArray);
        assert!(
            d.refusals.join("").contains("the SET element `y`"),
            "{:?}",
            d.refusals
        );
        arr.enum_labels.push("y".into());
        assert!(straight("t", &s, &arr).refusals.is_empty());
    }

    #[test]
    fn more_fraction_digits_than_the_target_keeps_is_refused_unless_accepted() {
        let used = |pairs: &[(&str, u64)]| {
            Some(
                pairs
                    .iter()
                    .map(|(d, n)| DomainValue {
                        value: d.to_string(),
                        count: *n,
                        samples: vec![format!("id={d}")],
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let typed = |binary: &str, sql: &str| {
            let mut d = dst(binary, false);
            d.type_sql = sql.into();
            d
        };
        // (source type, fraction digits used, target, accepted, refused, changed)
        let cases = [
            (
                "datetime",
                vec![("6", 3)],
                typed("timestamptz", "timestamp(0) with time zone"),
                false,
                true,
                3,
            ),
            (
                "datetime",
                vec![("6", 3)],
                typed("timestamptz", "timestamp(0) with time zone"),
                true,
                false,
                3,
            ),
            (
                "datetime",
                vec![("3", 2)],
                typed("timestamptz", "timestamp(3) with time zone"),
                false,
                false,
                0,
            ),
            (
                "datetime",
                vec![("3", 2), ("6", 1)],
                typed("timestamp", "timestamp(3) without time zone"),
                false,
                true,
                1,
            ),
            (
                "datetime",
                vec![("6", 4)],
                typed("timestamptz", "timestamp with time zone"),
                false,
                false,
                0,
            ),
            (
                "time",
                vec![("2", 1)],
                typed("time", "time(0) without time zone"),
                false,
                true,
                1,
            ),
            (
                "decimal",
                vec![("4", 7)],
                typed("numeric", "numeric(12,2)"),
                false,
                true,
                7,
            ),
            (
                "decimal",
                vec![("2", 7)],
                typed("numeric", "numeric(12,2)"),
                false,
                false,
                0,
            ),
            (
                "decimal",
                vec![("1", 1)],
                typed("numeric", "numeric(12)"),
                false,
                true,
                1,
            ),
            (
                "decimal",
                vec![("9", 7)],
                typed("numeric", "numeric"),
                false,
                false,
                0,
            ),
            (
                "decimal",
                vec![("9", 7)],
                typed("float8", "double precision"),
                false,
                false,
                0,
            ),
        ];
        for (data_type, digits, target, accept, refused, changed) in cases {
            let mut c = src(data_type, data_type, "none", ColumnStats::default());
            c.fraction_digits = used(&digits);
            let d = decide("t", &c, &target, UuidOrder::Straight, accept);
            let what = format!(
                "{data_type} {digits:?} -> {} accept={accept}",
                target.type_sql
            );
            assert_eq!(!d.refusals.is_empty(), refused, "{what}: {:?}", d.refusals);
            assert_eq!(d.changed, changed, "{what}");
            if refused {
                assert!(
                    d.refusals[0].contains("round = [\"c\"]"),
                    "{}",
                    d.refusals[0]
                );
                assert!(d.refusals[0].contains("e.g. id="), "{}", d.refusals[0]);
            }
        }
    }
}
