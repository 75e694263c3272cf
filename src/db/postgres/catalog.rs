//! What the target holds: its catalog (tables, columns, defaults' sequences, triggers,
//! checks, partitions, keys, indexes, foreign keys), and exact counts of rows and orphans.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use crate::db::catalog::{Catalog, ForeignKey, PgColumn, PgTable, SequenceUse};
use crate::db::sql::pg::qualified;

use super::error;

/// Tables (ordinary and partitioned), columns, owned sequences and foreign keys.
pub async fn read_catalog(client: &Client, schema: &str) -> Result<Catalog> {
    let ctx = || format!("reading the catalog of schema `{schema}`");
    // Per column: its type, and the base type behind a domain (through domains over
    // domains, with the size the innermost one gives it) with its category, the element
    // type of an array (a base type or an enum) and its OID, and enum labels.
    let rows = client
        .query(
            "WITH RECURSIVE dom(oid, base, typmod) AS (
                 SELECT oid, typbasetype, typtypmod FROM pg_type WHERE typtype = 'd'
               UNION ALL
                 SELECT dom.oid, d.typbasetype, d.typtypmod
                 FROM dom JOIN pg_type d ON d.oid = dom.base AND d.typtype = 'd'
             ), root AS (
                 SELECT dom.oid, dom.base, dom.typmod
                 FROM dom JOIN pg_type x ON x.oid = dom.base AND x.typtype <> 'd'
             )
             SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    t.typname::text, a.attnotnull, a.atthasdef,
                    a.attgenerated::text, a.attidentity::text, c.relkind = 'p',
                    CASE WHEN b.typtype = 'e' THEN 'enum'
                         WHEN b.typtype = 'b' AND b.typnamespace = 'pg_catalog'::regnamespace
                         THEN b.typname::text ELSE '' END,
                    b.typcategory::text,
                    CASE WHEN e.typtype = 'e' THEN 'enum'
                         WHEN e.typtype = 'b' AND e.typnamespace = 'pg_catalog'::regnamespace
                         THEN e.typname::text END,
                    COALESCE(e.oid, 0)::int8,
                    ARRAY(SELECT l.enumlabel::text FROM pg_enum l
                          WHERE l.enumtypid = CASE WHEN b.typtype = 'e' THEN b.oid ELSE e.oid END
                          ORDER BY l.enumsortorder),
                    pg_has_role(c.relowner, 'USAGE'),
                    CASE WHEN t.typtype = 'd' THEN format_type(root.base, root.typmod) END,
                    c.reltoastrelid <> 0,
                    b.typtype = 'c' OR COALESCE(e.typtype IN ('c', 'd'), false)
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN root ON root.oid = t.oid
             JOIN pg_type b ON b.oid = COALESCE(root.base, t.oid)
             LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname, a.attnum",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let mut cat = Catalog::default();
    for r in rows {
        let table: String = r.get(0);
        let entry = cat.tables.entry(table.clone()).or_insert_with(|| PgTable {
            name: table,
            partitioned: r.get(8),
            owned: r.get(14),
            toast: r.get(16),
            ..PgTable::default()
        });
        entry.columns.push(PgColumn {
            name: r.get(1),
            type_sql: r.get(2),
            type_name: r.get(3),
            binary_type: r.get(9),
            category: r.get::<_, String>(10).chars().next().unwrap_or('X'),
            element: r.get(11),
            element_oid: r.get::<_, i64>(12) as u32,
            enum_labels: r.get(13),
            not_null: r.get(4),
            has_default: r.get(5),
            generated: r.get::<_, String>(6) == "s",
            identity: r.get(7),
            domain_base: r.get(15),
            sized_inside: r.get(17),
        });
    }
    // Row triggers that run before an INSERT (not the system's own): with `triggers =
    // "fire"` they may fill a NOT NULL column the export has no values for.
    let triggers = "SELECT c.relname::text, t.tgname::text
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgenabled <> 'D'
           AND (t.tgtype & 1) = 1 AND (t.tgtype & 2) = 2 AND (t.tgtype & 4) = 4
         ORDER BY 1, 2";
    per_table(client, &mut cat, triggers, schema, |t, r| {
        t.insert_triggers.push(r.get(1))
    })
    .await?;
    // Triggers on INSERT (4) or TRUNCATE (32) a load under `session_replication_role =
    // replica` still fires: ENABLE ALWAYS and ENABLE REPLICA.
    // A partition's own triggers are told under its root table (the one loaded); the
    // copies a parent's trigger makes on its partitions (tgparentid) are not.
    let replica = "SELECT r.relname::text, t.tgname::text
                || CASE WHEN c.oid <> r.oid THEN ' on partition ' || c.relname ELSE '' END
                || CASE t.tgenabled WHEN 'A' THEN ' (ENABLE ALWAYS)' ELSE ' (ENABLE REPLICA)' END
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid), c.oid)
         JOIN pg_namespace n ON n.oid = r.relnamespace
         WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgenabled IN ('A', 'R')
           AND t.tgparentid = 0 AND (t.tgtype & (4 | 32)) <> 0
         ORDER BY 1, 2";
    per_table(client, &mut cat, replica, schema, |t, r| {
        t.replica_triggers.push(r.get(1))
    })
    .await?;
    // CHECK constraints, to list every row that breaks one when a load fails.
    let checks = "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND k.contype = 'c' AND NOT c.relispartition
         ORDER BY 1, 2";
    per_table(client, &mut cat, checks, schema, |t, r| {
        t.checks.push((r.get(1), r.get(2)))
    })
    .await?;
    // Every sequence a column's default calls (owned by the column or not: pg_dump'd
    // schemas such as Pagila's have unowned ones), and identity columns' sequences.
    let seqs = client
        .query(
            "SELECT c.relname::text, a.attname::text, format('%I.%I', sn.nspname, s.relname),
                    pg_has_role(s.relowner, 'USAGE')
             FROM pg_attrdef ad
             JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                             AND d.refclassid = 'pg_class'::regclass
             JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             JOIN pg_class c ON c.oid = ad.adrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE n.nspname = $1
             UNION
             SELECT c.relname::text, a.attname::text, format('%I.%I', sn.nspname, s.relname),
                    pg_has_role(s.relowner, 'USAGE')
             FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_namespace sn ON sn.oid = s.relnamespace
             JOIN pg_class c ON c.oid = d.refobjid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
             WHERE n.nspname = $1 AND d.deptype = 'i' AND a.attidentity <> ''
             ORDER BY 3, 1, 2",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in seqs {
        cat.sequences.push(SequenceUse {
            table: r.get(0),
            column: r.get(1),
            sequence: r.get(2),
            owned: r.get(3),
        });
    }
    let partitions =
        "SELECT p.relname::text, c.relname::text || ' ' || pg_get_expr(c.relpartbound, c.oid)
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p'
         JOIN pg_namespace n ON n.oid = p.relnamespace
         WHERE n.nspname = $1
         ORDER BY 1, 2";
    per_table(client, &mut cat, partitions, schema, |t, r| {
        t.partitions.push(r.get(1))
    })
    .await?;
    let keys = "SELECT c.relname::text, a.attname::text
         FROM pg_index x
         JOIN pg_class c ON c.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, i)
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
         WHERE n.nspname = $1 AND x.indisprimary
         ORDER BY 1, k.i";
    per_table(client, &mut cat, keys, schema, |t, r| {
        t.primary_key.push(r.get(1))
    })
    .await?;
    crate::db::pgindex::read_indexes(client, schema, &mut cat).await?;
    let fks = client
        .query(
            "SELECT con.conname::text, cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text,
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                    con.condeferrable
             FROM pg_constraint con
             JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
             JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE con.contype = 'f'
             ORDER BY cn.nspname, cc.relname, con.conname",
            &[],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in fks {
        cat.foreign_keys.push(ForeignKey {
            name: r.get(0),
            child_schema: r.get(1),
            child: r.get(2),
            parent_schema: r.get(3),
            parent: r.get(4),
            child_columns: r.get(5),
            parent_columns: r.get(6),
            deferrable: r.get(7),
        });
    }
    Ok(cat)
}

/// Does the table hold at least one row?
pub async fn has_rows(client: &Client, schema: &str, table: &str) -> Result<bool> {
    let row = client
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(schema, table)),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("looking for rows in `{schema}`.`{table}`"))?;
    Ok(row.get(0))
}

/// Exact `count(*)` (on a connection or inside a transaction).
pub async fn count_rows(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<u64> {
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM {}", qualified(schema, table)),
            &[],
        )
        .await
        .map_err(error)
        .with_context(|| format!("counting rows of `{table}` in PostgreSQL"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Orphan rows of a foreign key (see `ForeignKey::orphan_count_sql`).
pub async fn count_orphans(client: &Client, fk: &ForeignKey) -> Result<u64> {
    let row = client
        .query_one(&fk.orphan_count_sql(), &[])
        .await
        .map_err(error)
        .with_context(|| format!("counting orphans of foreign key `{}`", fk.name))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Run a per-table catalog query (`$1` the schema, the table's name first) and hand
/// each row to its table (rows of tables not in the catalog are left out).
async fn per_table(
    client: &Client,
    cat: &mut Catalog,
    sql: &str,
    schema: &str,
    mut each: impl FnMut(&mut PgTable, &tokio_postgres::Row),
) -> Result<()> {
    let rows = client
        .query(sql, &[&schema])
        .await
        .map_err(error)
        .with_context(|| format!("reading the catalog of schema `{schema}`"))?;
    for r in rows {
        if let Some(t) = cat.tables.get_mut(&r.get::<_, String>(0)) {
            each(t, &r);
        }
    }
    Ok(())
}
