//! PURE: the mapping's `set` columns — target columns PostgreSQL computes. Which
//! expressions the target must be asked about (`questions`), what it answered (a
//! constant, evaluated once and sent inside the COPY stream, or an expression over the
//! row, evaluated through a staging table), and the SQL of both paths.

use crate::db::catalog::PgColumn;
use crate::db::sql::pg::{ident, qualified};

/// A `set` expression to put to the target before the plan is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub dataset: String,
    /// The target table and column.
    pub table: String,
    pub column: String,
    pub expr: String,
    /// What the result is cast to: the target column's type ([`CastTo::of`]).
    pub cast: CastTo,
    /// The columns the expression may see: each CSV column under its target name, with
    /// whether a `set` replaces it (then it is seen as `text`, its raw CSV value).
    pub stage: Vec<(String, bool)>,
}

/// How the target evaluates one `set` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// References no column and is not volatile: evaluated once, after the `before`
    /// hooks, and its value sent with every row.
    Once,
    /// References the row (or is volatile): evaluated per row, through a staging table.
    PerRow,
    /// Calls a window function (`row_number() over (...)`): evaluated per row through
    /// the staging table, over all the dataset's staged rows together (so never over
    /// part of them: no row search, `plan::rowsearch`).
    OverRows,
    /// An aggregate at the top (`count(*)`, `max(v)`): it would fold the rows into one,
    /// so the plan refuses it.
    Aggregate,
}

/// The target's answer to a [`Question`]: its kind, or why PostgreSQL rejects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub dataset: String,
    pub column: String,
    pub kind: Result<Kind, String>,
}

/// The expression cast to a type, as `verify` evaluates a `set` again.
pub fn cast(expr: &str, type_sql: &str) -> String {
    format!("CAST(({expr}) AS {type_sql})")
}

/// What a `set` expression is cast to before it is stored in a column. An explicit cast
/// to a sized text or bit type (`varchar(n)`, `char(n)`, `bit(n)`, `bit varying(n)`,
/// arrays of them, also behind a domain) cuts or pads a value silently, where storing it
/// in the column refuses one that does not fit (PostgreSQL's assignment rule): those are
/// cast to the same type without its size. Anything else is cast to the column's own type
/// (a domain's checks run either way). A size inside a composite or an array's domain
/// elements is still cut by the cast: the plan warns (see `PgColumn::sized_inside`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastTo {
    pub ty: String,
}

impl CastTo {
    /// The cast for a target column.
    pub fn of(col: &PgColumn) -> CastTo {
        CastTo {
            ty: cast_type(&col.type_sql, col.declared_sql()),
        }
    }

    /// `expr` cast as above.
    pub fn apply(&self, expr: &str) -> String {
        cast(expr, &self.ty)
    }
}

/// A plain cast to a type.
impl From<&str> for CastTo {
    fn from(ty: &str) -> CastTo {
        CastTo { ty: ty.into() }
    }
}

/// The type of [`CastTo`] for a column of `type_sql` (`format_type`; `declared`: through
/// a domain, its base type with the domain's size): a sized text or bit type without its
/// size, keeping array dimensions; else the column's own type.
fn cast_type(type_sql: &str, declared: &str) -> String {
    let dims = declared.len() - declared.trim_end_matches("[]").len();
    let element = &declared[..declared.len() - dims];
    let Some(open) = element.rfind('(').filter(|_| element.ends_with(')')) else {
        return type_sql.to_string();
    };
    let bare = match &element[..open] {
        "character varying" => "character varying",
        // `character` and `bit` without a size mean a size of 1.
        "character" => "bpchar",
        "bit" => "\"bit\"",
        "bit varying" => "bit varying",
        _ => return type_sql.to_string(),
    };
    format!("{bare}{}", &declared[declared.len() - dims..])
}

/// Evaluating a constant once: its value in binary (what binary COPY sends) and as text
/// (what CSV COPY sends).
pub fn evaluate_sql(expr: &str, to: &CastTo) -> String {
    format!(
        "SELECT v, v::text FROM (SELECT {} AS v) AS x",
        to.apply(expr)
    )
}

/// The staging table of a dataset whose `set` reads the row: the CSV columns with the
/// target's types (no constraints), a replaced column as `text`; dropped at COMMIT.
pub fn stage_create_sql(stage: &str, schema: &str, table: &str, cols: &[(String, bool)]) -> String {
    let select: Vec<String> = cols
        .iter()
        .map(|(c, replaced)| match replaced {
            true => format!("NULL::text AS {}", ident(c)),
            false => ident(c),
        })
        .collect();
    format!(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA",
        ident(stage),
        select.join(", "),
        qualified(schema, table)
    )
}

/// Moving the staged rows into the target, computing the `set` columns per row.
/// `kept`: the CSV columns written as they are; `sets`: (column, expression, type).
/// `overriding`: an identity column is written (`OVERRIDING SYSTEM VALUE`).
pub fn insert_sql(
    stage: &str,
    schema: &str,
    table: &str,
    kept: &[String],
    sets: &[(String, String, CastTo)],
    overriding: bool,
) -> String {
    insert_with(stage, schema, table, kept, sets, overriding, &[])
}

/// The same INSERT, also writing `extra` (column, expression over the staging table):
/// what the collision listing traces each row's origin with.
pub fn insert_with(
    stage: &str,
    schema: &str,
    table: &str,
    kept: &[String],
    sets: &[(String, String, CastTo)],
    overriding: bool,
    extra: &[(String, String)],
) -> String {
    let mut into: Vec<String> = kept.iter().map(|c| ident(c)).collect();
    let mut select = into.clone();
    for (col, expr, to) in sets {
        into.push(ident(col));
        select.push(to.apply(expr));
    }
    for (col, expr) in extra {
        into.push(ident(col));
        select.push(expr.clone());
    }
    format!(
        "INSERT INTO {} ({}){} SELECT {} FROM {}",
        qualified(schema, table),
        into.join(", "),
        if overriding {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        select.join(", "),
        ident(stage)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_sql_sees_replaced_columns_as_text_and_casts_results() {
        let cols = vec![("id".to_string(), false), ("flag".to_string(), true)];
        assert_eq!(
            stage_create_sql("pgconverge_stage_1", "app", "user", &cols),
            r#"CREATE TEMP TABLE "pgconverge_stage_1" ON COMMIT DROP AS SELECT "id", NULL::text AS "flag" FROM "app"."user" WITH NO DATA"#
        );
        let sets = vec![(
            "flag".to_string(),
            "COALESCE(flag::boolean, false)".to_string(),
            "boolean".into(),
        )];
        assert_eq!(
            insert_sql("s", "app", "user", &["id".into()], &sets, true),
            r#"INSERT INTO "app"."user" ("id", "flag") OVERRIDING SYSTEM VALUE SELECT "id", CAST((COALESCE(flag::boolean, false)) AS boolean) FROM "s""#
        );
        assert_eq!(
            evaluate_sql("(SELECT id FROM tenant)", &"bigint".into()),
            "SELECT v, v::text FROM (SELECT CAST(((SELECT id FROM tenant)) AS bigint) AS v) AS x"
        );
    }

    #[test]
    fn sized_text_and_bit_types_are_cast_to_without_their_size() {
        // (format_type, through a domain, cast to): storing the result then refuses a
        // value that does not fit, where an explicit cast would cut or pad it.
        for (ty, declared, want) in [
            (
                "character varying(5)",
                "character varying(5)",
                "character varying",
            ),
            ("character(3)", "character(3)", "bpchar"),
            ("bit(3)", "bit(3)", "\"bit\""),
            ("bit varying(8)", "bit varying(8)", "bit varying"),
            (
                "character varying(5)[]",
                "character varying(5)[]",
                "character varying[]",
            ),
            ("character(2)[][]", "character(2)[][]", "bpchar[][]"),
            ("code", "character varying(5)", "character varying"),
            ("codes", "character varying(5)[]", "character varying[]"),
            (
                "character varying",
                "character varying",
                "character varying",
            ),
            ("text", "text", "text"),
            ("numeric(6,2)", "numeric(6,2)", "numeric(6,2)"),
            ("money_amount", "numeric(6,2)", "money_amount"),
            (
                "timestamp(3) without time zone",
                "timestamp(3) without time zone",
                "timestamp(3) without time zone",
            ),
            (
                "public.\"my(type)\"",
                "public.\"my(type)\"",
                "public.\"my(type)\"",
            ),
        ] {
            assert_eq!(cast_type(ty, declared), want, "{ty} over {declared}");
        }
        assert_eq!(cast("v || 'x'", "bpchar"), "CAST((v || 'x') AS bpchar)");
    }
}
