//! PURE: a framework's migration-history table in the target (Prisma's
//! `_prisma_migrations`, Flyway's `flyway_schema_history`, ...). It records which of the
//! application's migrations made the target's schema, so it belongs to the target, not
//! to the data: an import keeps the target's own rows unless the mapping says
//! `[import] copy_history = ["name"]`. Recognised by its name AND the framework's
//! columns, so a data table that happens to be called `migrations` is still loaded.

/// One framework's history table: its name and the columns it always has.
struct Known {
    framework: &'static str,
    table: &'static str,
    columns: &'static [&'static str],
}

const KNOWN: &[Known] = &[
    Known {
        framework: "Prisma",
        table: "_prisma_migrations",
        columns: &["id", "checksum", "migration_name"],
    },
    Known {
        framework: "TypeORM",
        table: "migrations",
        columns: &["id", "timestamp", "name"],
    },
    Known {
        framework: "TypeORM",
        table: "typeorm_migrations",
        columns: &["id", "timestamp", "name"],
    },
    Known {
        framework: "TypeORM",
        table: "migrations_typeorm",
        columns: &["id", "timestamp", "name"],
    },
    Known {
        framework: "Laravel",
        table: "migrations",
        columns: &["id", "migration", "batch"],
    },
    Known {
        framework: "Alembic",
        table: "alembic_version",
        columns: &["version_num"],
    },
    Known {
        framework: "Flyway",
        table: "flyway_schema_history",
        columns: &["installed_rank", "version", "script", "checksum"],
    },
    Known {
        framework: "Liquibase",
        table: "databasechangelog",
        columns: &["id", "author", "filename", "dateexecuted"],
    },
    Known {
        framework: "Liquibase",
        table: "databasechangeloglock",
        columns: &["id", "locked"],
    },
    Known {
        framework: "golang-migrate, dbmate, Rails or Ecto",
        table: "schema_migrations",
        columns: &["version"],
    },
    Known {
        framework: "Rails",
        table: "ar_internal_metadata",
        columns: &["key", "value"],
    },
    Known {
        framework: "Django",
        table: "django_migrations",
        columns: &["app", "name", "applied"],
    },
    Known {
        framework: "Knex",
        table: "knex_migrations",
        columns: &["id", "name", "batch", "migration_time"],
    },
    Known {
        framework: "Knex",
        table: "knex_migrations_lock",
        columns: &["index", "is_locked"],
    },
    Known {
        framework: "Ory (pop)",
        table: "schema_migration",
        columns: &["version"],
    },
    Known {
        framework: "Sequelize",
        table: "SequelizeMeta",
        columns: &["name"],
    },
    Known {
        framework: "Doctrine",
        table: "doctrine_migration_versions",
        columns: &["version", "executed_at"],
    },
    Known {
        framework: "Diesel",
        table: "__diesel_schema_migrations",
        columns: &["version", "run_on"],
    },
    Known {
        framework: "sqlx",
        table: "_sqlx_migrations",
        columns: &["version", "description", "installed_on", "checksum"],
    },
    Known {
        framework: "Goose",
        table: "goose_db_version",
        columns: &["version_id", "is_applied"],
    },
    Known {
        framework: "Entity Framework",
        table: "__EFMigrationsHistory",
        columns: &["MigrationId", "ProductVersion"],
    },
];

/// The framework whose migration history `table` (with these columns, in the target) is;
/// names and columns compared without regard to case.
pub fn framework(table: &str, columns: &[&str]) -> Option<&'static str> {
    let has = |want: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(want));
    KNOWN
        .iter()
        .find(|k| k.table.eq_ignore_ascii_case(table) && k.columns.iter().all(|c| has(c)))
        .map(|k| k.framework)
}

/// The framework whose history the target's `table` is, when the import keeps the
/// target's rows of it (the mapping's `copy_history` does not name it): what the import
/// skips and verify counts as a declared skip.
pub fn kept(table: &crate::db::catalog::PgTable, copy_history: &[String]) -> Option<&'static str> {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    framework(&table.name, &names).filter(|_| !copy_history.contains(&table.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_table_is_known_by_its_name_and_its_columns() {
        // (table, columns, framework)
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            (
                "_prisma_migrations",
                &[
                    "id",
                    "checksum",
                    "finished_at",
                    "migration_name",
                    "logs",
                    "started_at",
                ],
                Some("Prisma"),
            ),
            ("migrations", &["id", "timestamp", "name"], Some("TypeORM")),
            ("migrations", &["id", "migration", "batch"], Some("Laravel")),
            // A data table called `migrations` is data.
            ("migrations", &["id", "bird", "season"], None),
            ("alembic_version", &["version_num"], Some("Alembic")),
            (
                "schema_migrations",
                &["version", "dirty"],
                Some("golang-migrate, dbmate, Rails or Ecto"),
            ),
            ("schema_migration", &["version"], Some("Ory (pop)")),
            (
                "__EFMigrationsHistory",
                &["MigrationId", "ProductVersion"],
                Some("Entity Framework"),
            ),
            ("sequelizemeta", &["name"], Some("Sequelize")),
            (
                "flyway_schema_history",
                &["installed_rank", "version"],
                None,
            ),
            ("users", &["id", "version"], None),
        ];
        for (table, columns, want) in cases {
            assert_eq!(framework(table, columns), *want, "{table} {columns:?}");
        }
    }
}
