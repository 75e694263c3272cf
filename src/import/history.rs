//! PURE: a framework's migration-history table (Prisma's `_prisma_migrations`, Flyway's
//! `flyway_schema_history`, ...). In the target it belongs to the target's schema, not to
//! the data: copying the source's rows over it makes the application re-run its
//! migrations. Recognised by its name AND the framework's columns (a data table called
//! `migrations` is still copied).

/// (table name, framework, columns the framework's table always has).
const KNOWN: &[(&str, &str, &[&str])] = &[
    (
        "_prisma_migrations",
        "Prisma",
        &["id", "checksum", "migration_name"],
    ),
    ("migrations", "TypeORM", &["id", "timestamp", "name"]),
    (
        "typeorm_migrations",
        "TypeORM",
        &["id", "timestamp", "name"],
    ),
    ("migrations", "Laravel", &["id", "migration", "batch"]),
    ("alembic_version", "Alembic", &["version_num"]),
    (
        "flyway_schema_history",
        "Flyway",
        &["installed_rank", "version", "script", "checksum"],
    ),
    (
        "databasechangelog",
        "Liquibase",
        &["id", "author", "filename", "dateexecuted"],
    ),
    ("databasechangeloglock", "Liquibase", &["id", "locked"]),
    (
        "schema_migrations",
        "golang-migrate, dbmate, Rails or Ecto",
        &["version"],
    ),
    ("ar_internal_metadata", "Rails", &["key", "value"]),
    ("django_migrations", "Django", &["app", "name", "applied"]),
    (
        "knex_migrations",
        "Knex",
        &["name", "batch", "migration_time"],
    ),
    ("knex_migrations_lock", "Knex", &["is_locked"]),
    ("schema_migration", "Ory (pop)", &["version"]),
    ("sequelizemeta", "Sequelize", &["name"]),
    (
        "doctrine_migration_versions",
        "Doctrine",
        &["version", "executed_at"],
    ),
    (
        "__diesel_schema_migrations",
        "Diesel",
        &["version", "run_on"],
    ),
    (
        "_sqlx_migrations",
        "sqlx",
        &["version", "description", "checksum"],
    ),
    ("goose_db_version", "Goose", &["version_id", "is_applied"]),
    (
        "__efmigrationshistory",
        "Entity Framework",
        &["migrationid", "productversion"],
    ),
];

/// The framework whose migration history `table` is, when its name and its `columns`
/// (the target table's) both say so. Names are compared without case.
pub fn framework(table: &str, columns: &[&str]) -> Option<&'static str> {
    let name = table.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(n, _, needs)| {
            *n == name
                && needs
                    .iter()
                    .all(|need| columns.iter().any(|c| c.eq_ignore_ascii_case(need)))
        })
        .map(|(_, fw, _)| *fw)
}

/// The framework of `table` when it is a migration history the import keeps: the target
/// has it and the mapping's `[import] copy_history` does not name it.
pub fn kept(table: &crate::db::catalog::PgTable, copy_history: &[String]) -> Option<&'static str> {
    if copy_history.contains(&table.name) {
        return None;
    }
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    framework(&table.name, &columns)
}

/// Why a history table is kept: the plan's and verify's words.
pub fn reason(table: &str, framework: &str) -> String {
    format!(
        "the target's {framework} migration history: it belongs to the target's schema, \
         so it is kept (copy it anyway with [import] copy_history = [\"{table}\"])"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_by_name_and_columns() {
        assert_eq!(
            framework(
                "_prisma_migrations",
                &["id", "checksum", "finished_at", "migration_name"]
            ),
            Some("Prisma")
        );
        assert_eq!(
            framework("migrations", &["id", "migration", "batch"]),
            Some("Laravel")
        );
        assert_eq!(
            framework("migrations", &["id", "timestamp", "name"]),
            Some("TypeORM")
        );
        // A data table called `migrations` (birds) is data.
        assert_eq!(framework("migrations", &["id", "species", "km"]), None);
        assert_eq!(
            framework("__EFMigrationsHistory", &["MigrationId", "ProductVersion"]),
            Some("Entity Framework")
        );
        assert_eq!(framework("SequelizeMeta", &["name"]), Some("Sequelize"));
        assert_eq!(framework("people", &["version"]), None);
    }
}
