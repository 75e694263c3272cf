//! The target's indexes as the import drops and rebuilds them: every index of the
//! schema's tables and of their partitions, with what `pg_get_indexdef` leaves out (the
//! tablespace, the comment, `CLUSTER ON`, the replica identity, statistics targets,
//! the partitioned index a partition's index is attached to), the constraint it backs,
//! the foreign keys that reference it, and anything else that depends on it; and the
//! server's settings for index builds. Reads only; the plan decides.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use crate::db::catalog::{
    BuildSettings, Catalog, ConstraintKind, DependentKey, IndexConstraint, PgIndex,
};
use crate::db::postgres::error;

/// SQL for the md5 of what a rebuild of index `oid` (an SQL expression) puts back: its
/// catalog row (method, tablespace, storage parameters, columns, opclasses, collations,
/// ordering, expressions, predicate, CLUSTER ON, replica identity), comment, statistics
/// targets, and the constraint it backs and the foreign keys that reference it (each
/// with its actions, deferrability, validation, comment). Read from catalog rows and
/// OIDs, never from deparsed text, so `search_path` does not change it. NULL for an
/// index that does not exist.
pub fn fingerprint(oid: &str) -> String {
    // pg_index and pg_constraint whole (as JSON: every column this server has, so a
    // newer one's NULLS NOT DISTINCT or ON DELETE SET NULL (cols) count too), without
    // the states a build sets; the index's own pg_class and pg_attribute settings; the
    // partitioned index it is attached to and those attached to it.
    format!(
        "(SELECT md5(concat_ws(E'\\n',
             to_jsonb(x) - ARRAY['indisvalid', 'indisready', 'indislive', 'indcheckxmin'],
             concat_ws('|', c.relam, c.reltablespace, c.reloptions::text),
             obj_description(c.oid, 'pg_class'),
             (SELECT string_agg(concat_ws('=', a.attnum, a.attstattarget, a.attoptions::text),
                                ',' ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid),
             (SELECT string_agg((to_jsonb(k) - 'oid')::text || coalesce(obj_description(k.oid,
                                'pg_constraint'), ''), ';' ORDER BY k.conrelid, k.conname)
              FROM pg_constraint k WHERE k.conindid = c.oid AND k.conparentid = 0),
             (SELECT string_agg(h.inhparent::text, ',') FROM pg_inherits h WHERE h.inhrelid = c.oid),
             (SELECT string_agg(h.inhrelid::text, ',' ORDER BY h.inhrelid)
              FROM pg_inherits h WHERE h.inhparent = c.oid)))
          FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid WHERE c.oid = {oid})"
    )
}

/// Fill `cat` (whose tables are read) with their indexes and the build settings.
pub async fn read_indexes(client: &Client, schema: &str, cat: &mut Catalog) -> Result<()> {
    let ctx = || format!("reading the indexes of schema `{schema}`");
    // A partition's index belongs to the partitioned table the import loads.
    let rows = client
        .query(
            "SELECT coalesce(root.relname, c.relname)::text, n.nspname::text, c.relname::text,
                    i.relname::text, i.oid, pg_get_indexdef(i.oid), am.amname::text,
                    x.indisunique, x.indisvalid, x.indisclustered, x.indisreplident,
                    ts.spcname::text, obj_description(i.oid, 'pg_class'),
                    coalesce(i.reloptions::text[], '{}'),
                    ARRAY(SELECT a.attnum::int2 FROM pg_attribute a
                          WHERE a.attrelid = i.oid AND a.attstattarget >= 0 ORDER BY a.attnum),
                    ARRAY(SELECT a.attstattarget::int4 FROM pg_attribute a
                          WHERE a.attrelid = i.oid AND a.attstattarget >= 0 ORDER BY a.attnum),
                    ARRAY(SELECT pg_get_indexdef(i.oid, k, false)
                                 || CASE WHEN x.indcollation[k - 1] <> 0
                                          AND x.indcollation[k - 1] <> coalesce(
                                                (SELECT a.attcollation FROM pg_attribute a
                                                 WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1]
                                                   AND x.indkey[k - 1] <> 0), 100)
                                         THEN ' COLLATE ' || (SELECT format('%I.%I', n.nspname, co.collname)
                                                              FROM pg_collation co
                                                              JOIN pg_namespace n ON n.oid = co.collnamespace
                                                              WHERE co.oid = x.indcollation[k - 1])
                                         ELSE '' END
                          FROM generate_series(1, x.indnkeyatts::int) k ORDER BY k),
                    pg_get_expr(x.indpred, x.indrelid), pi.relname::text,
                    pg_has_role(c.relowner, 'USAGE'),
                    coalesce(con.oid, 0::oid), con.conname::text, con.contype::text,
                    coalesce(con.condeferrable, false), coalesce(con.condeferred, false),
                    pg_get_constraintdef(con.oid), obj_description(con.oid, 'pg_constraint')
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class c ON c.oid = x.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_class root ON c.relispartition AND root.oid = pg_partition_root(c.oid)
             JOIN pg_namespace rn ON rn.oid = coalesce(root.relnamespace, c.relnamespace)
             JOIN pg_am am ON am.oid = i.relam
             LEFT JOIN pg_tablespace ts ON ts.oid = i.reltablespace
             LEFT JOIN pg_inherits h ON h.inhrelid = i.oid
             LEFT JOIN pg_class pi ON pi.oid = h.inhparent
             LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.conrelid = c.oid
                                         AND con.contype IN ('p', 'u', 'x')
             WHERE rn.nspname = $1 AND c.relkind IN ('r', 'p')
             ORDER BY 1, c.relispartition, c.relname, i.relname",
            &[&schema],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    let mut oids: Vec<(String, usize, u32, u32)> = Vec::new();
    for r in rows {
        let target: String = r.get(0);
        let Some(t) = cat.tables.get_mut(&target) else {
            continue;
        };
        let numbers: Vec<i16> = r.get(14);
        let targets: Vec<i32> = r.get(15);
        let con_oid: u32 = r.get(20);
        let constraint = match r.get::<_, Option<String>>(22).as_deref() {
            Some(kind) if con_oid != 0 => Some(IndexConstraint {
                name: r.get(21),
                kind: match kind {
                    "p" => ConstraintKind::PrimaryKey,
                    "u" => ConstraintKind::Unique,
                    _ => ConstraintKind::Exclude,
                },
                deferrable: r.get(23),
                deferred: r.get(24),
                def: r.get(25),
                comment: r.get(26),
            }),
            _ => None,
        };
        oids.push((target, t.indexes.len(), r.get(4), con_oid));
        t.indexes.push(PgIndex {
            schema: r.get(1),
            table: r.get(2),
            name: r.get(3),
            def: r.get(5),
            method: r.get(6),
            unique: r.get(7),
            valid: r.get(8),
            clustered: r.get(9),
            replica_identity: r.get(10),
            tablespace: r.get(11),
            comment: r.get(12),
            options: r.get(13),
            statistics: numbers.into_iter().zip(targets).collect(),
            keys: r.get(16),
            predicate: r.get(17),
            parent: r.get(18),
            owned: r.get(19),
            constraint,
            referenced_by: Vec::new(),
            dependents: Vec::new(),
            fingerprint: String::new(),
        });
    }
    let index_oids: Vec<u32> = oids.iter().map(|o| o.2).collect();
    let constraint_oids: Vec<u32> = oids.iter().map(|o| o.3).collect();
    let at = |oid: u32| oids.iter().find(|o| o.2 == oid).map(|o| (o.0.clone(), o.1));
    // Foreign keys referencing those indexes (their clones on partitions are the
    // top key's business: a partitioned child is marked).
    let keys = client
        .query(
            "SELECT f.conindid, f.conname::text, cn.nspname::text, cc.relname::text,
                    pg_get_constraintdef(f.oid), obj_description(f.oid, 'pg_constraint'),
                    pg_has_role(cc.relowner, 'USAGE'), cc.relkind = 'p' OR cc.relispartition
             FROM pg_constraint f
             JOIN pg_class cc ON cc.oid = f.conrelid
             JOIN pg_namespace cn ON cn.oid = cc.relnamespace
             WHERE f.contype = 'f' AND f.conparentid = 0 AND f.conindid = ANY($1::oid[])
             ORDER BY cn.nspname, cc.relname, f.conname",
            &[&index_oids],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in keys {
        if let Some((table, i)) = at(r.get(0))
            && let Some(t) = cat.tables.get_mut(&table)
        {
            t.indexes[i].referenced_by.push(DependentKey {
                name: r.get(1),
                schema: r.get(2),
                table: r.get(3),
                def: r.get(4),
                comment: r.get(5),
                owned: r.get(6),
                partitioned: r.get(7),
            });
        }
    }
    // Anything else that depends on an index or on its constraint: the constraint's own
    // link, partition links and the foreign keys above are expected.
    let others = client
        .query(
            "SELECT x.idx, pg_describe_object(d.classid, d.objid, d.objsubid)
             FROM unnest($1::oid[], $2::oid[]) AS x(idx, con)
             JOIN pg_depend d
               ON (d.refclassid = 'pg_class'::regclass AND d.refobjid = x.idx)
               OR (x.con <> 0 AND d.refclassid = 'pg_constraint'::regclass AND d.refobjid = x.con)
             WHERE d.deptype NOT IN ('i', 'P', 'S')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                               WHERE d.classid = 'pg_constraint'::regclass AND f.oid = d.objid
                                 AND f.contype = 'f' AND f.conparentid = 0)
             ORDER BY 1, 2",
            &[&index_oids, &constraint_oids],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in others {
        if let Some((table, i)) = at(r.get(0))
            && let Some(t) = cat.tables.get_mut(&table)
        {
            t.indexes[i].dependents.push(r.get(1));
        }
    }
    // What a rebuild puts back, as the catalog holds it now: the import compares it again
    // inside its transaction, right before it drops the index.
    let fingerprints = client
        .query(
            &format!("SELECT o, {} FROM unnest($1::oid[]) AS o", fingerprint("o")),
            &[&index_oids],
        )
        .await
        .map_err(error)
        .with_context(ctx)?;
    for r in fingerprints {
        if let Some((table, i)) = at(r.get(0))
            && let Some(t) = cat.tables.get_mut(&table)
        {
            t.indexes[i].fingerprint = r.get(1);
        }
    }
    let settings = client
        .query_one(
            "SELECT pg_size_bytes(current_setting('maintenance_work_mem')) / 1024,
                    pg_size_bytes(current_setting('shared_buffers')) / 1024,
                    current_setting('max_parallel_maintenance_workers')::int4,
                    current_setting('max_locks_per_transaction')::int8,
                    current_setting('max_connections')::int8,
                    current_setting('max_prepared_transactions')::int8",
            &[],
        )
        .await
        .map_err(error)
        .context("reading the server's settings for index builds and locks")?;
    cat.build = BuildSettings {
        maintenance_work_mem_kb: settings.get::<_, i64>(0).max(0) as u64,
        shared_buffers_kb: settings.get::<_, i64>(1).max(0) as u64,
        max_parallel_maintenance_workers: settings.get::<_, i32>(2).max(0) as u32,
    };
    cat.lock_room = crate::db::catalog::LockRoom {
        per_transaction: settings.get::<_, i64>(3).max(0) as u64,
        connections: settings.get::<_, i64>(4).max(0) as u64,
        prepared: settings.get::<_, i64>(5).max(0) as u64,
    };
    Ok(())
}
