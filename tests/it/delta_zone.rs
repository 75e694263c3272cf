//! Delta keys read from the log where the log and a reading session could disagree: a
//! server in another time zone (the log holds a TIMESTAMP as UTC seconds, a DATETIME as
//! written) and zero dates of every precision in the columns before a key, which the
//! log's row image must be walked across to reach the key.

use crate::delta::*;
use crate::delta_log::PrivateServer;
use crate::export::load;
use crate::harness::*;

/// A server whose time zone is -05:00, written to in that zone and in +09:00: TIMESTAMP
/// keys (UTC in the log) and DATETIME keys (never shifted) find their rows, a key
/// changed by an hour moves its row, and the target holds the same instants and wall
/// times after the base and after the delta.
#[test]
fn timestamp_and_datetime_keys_keep_their_instants_on_a_server_in_another_zone() {
    let server = PrivateServer::start(13, &["--default-time-zone=-05:00"]);
    let w = World::on("delta_zone", server.url.clone());
    w.mysql(
        "CREATE TABLE ev (ts TIMESTAMP(3) NOT NULL, dt DATETIME(6) NOT NULL, v VARCHAR(10),
            PRIMARY KEY (ts, dt)) ENGINE=InnoDB;
         INSERT INTO ev VALUES
           ('2024-03-10 01:30:00.125', '2024-03-10 01:30:00.000001', 'a'),
           ('2024-11-03 01:30:00', '2024-11-03 01:30:00', 'b'),
           ('1970-01-01 00:00:01', '1970-01-01 00:00:01', 'c'),
           ('2024-06-01 12:00:00', '2024-06-01 12:00:00', 'd');",
    );
    w.pg(
        "CREATE TABLE ev (ts timestamptz(3), dt timestamp(6), v varchar(10),
            PRIMARY KEY (ts, dt))",
    );
    let rows = |w: &World| {
        w.pg_rows("SELECT v, (ts AT TIME ZONE 'UTC')::text, dt::text FROM ev ORDER BY lower(v)")
    };
    let row = |v: &str, ts: &str, dt: &str| vec![Some(v.into()), Some(ts.into()), Some(dt.into())];
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    assert_eq!(
        rows(&w),
        vec![
            row("a", "2024-03-10 06:30:00.125", "2024-03-10 01:30:00.000001"),
            row("b", "2024-11-03 06:30:00", "2024-11-03 01:30:00"),
            row("c", "1970-01-01 05:00:01", "1970-01-01 00:00:01"),
            row("d", "2024-06-01 17:00:00", "2024-06-01 12:00:00"),
        ],
        "the base: instants in UTC, wall times as written"
    );
    w.mysql(
        "UPDATE ev SET v = 'A' WHERE v = 'a';
         UPDATE ev SET ts = ts + INTERVAL 1 HOUR WHERE v = 'b';
         DELETE FROM ev WHERE v = 'c';
         INSERT INTO ev VALUES ('2024-12-31 23:59:59.999', '2024-12-31 23:59:59.999999', 'e');
         SET SESSION time_zone = '+09:00';
         UPDATE ev SET v = 'D' WHERE ts = '2024-06-02 02:00:00';",
    );
    let d = delta(&w, &b, &[]);
    let entry = &load(&d).tables["ev"];
    assert_eq!(
        (entry.rows, entry.delta.as_ref().unwrap().deleted.rows),
        (4, 2),
        "upserts: A, the moved b, D, e; deletes: b's old key and c"
    );
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        rows(&w),
        vec![
            row("A", "2024-03-10 06:30:00.125", "2024-03-10 01:30:00.000001"),
            row("b", "2024-11-03 07:30:00", "2024-11-03 01:30:00"),
            row("D", "2024-06-01 17:00:00", "2024-06-01 12:00:00"),
            row("e", "2025-01-01 04:59:59.999", "2024-12-31 23:59:59.999999"),
        ],
        "after the delta"
    );
    deep_verify(&w, &d);
    drop(w);
}

/// Zero DATETIMEs of precision 0 to 6 (each fraction takes its own bytes in the log), a
/// zero TIMESTAMP, a zero and a zero-in-date DATE and the zero YEAR before the key
/// column: a delta reads the key behind them, and the zero values follow the export's
/// rule (NULL) on the base and on the delta alike.
#[test]
fn zero_dates_before_the_key_are_walked_across() {
    let w = World::binlog("delta_zero_dates");
    let zeros = "'0000-00-00 00:00:00', '0000-00-00 00:00:00.0', '0000-00-00 00:00:00.00',
        '0000-00-00 00:00:00.000', '0000-00-00 00:00:00.0000', '0000-00-00 00:00:00.00000',
        '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', '0000-00-00', '2024-00-15', 0";
    w.mysql(&format!(
        "SET SESSION sql_mode = '';
         CREATE TABLE zd (z0 DATETIME, z1 DATETIME(1), z2 DATETIME(2), z3 DATETIME(3),
            z4 DATETIME(4), z5 DATETIME(5), z6 DATETIME(6), zt TIMESTAMP(6) NULL, zd DATE,
            zp DATE, y YEAR, id INT NOT NULL, v VARCHAR(10), PRIMARY KEY (id)) ENGINE=InnoDB;
         INSERT INTO zd VALUES ({zeros}, 1, 'a'), ({zeros}, 2, 'b'), ({zeros}, 3, 'c');"
    ));
    w.pg(
        "CREATE TABLE zd (z0 timestamp, z1 timestamp(1), z2 timestamp(2), z3 timestamp(3),
            z4 timestamp(4), z5 timestamp(5), z6 timestamp(6), zt timestamptz(6), zd date,
            zp date, y int, id int PRIMARY KEY, v varchar(10))",
    );
    let b = base(&w, &[]);
    assert_exit(&import(&w, &b), 0);
    w.mysql(&format!(
        "SET SESSION sql_mode = '';
         UPDATE zd SET v = 'A' WHERE id = 1;
         UPDATE zd SET id = 20 WHERE id = 2;
         DELETE FROM zd WHERE id = 3;
         INSERT INTO zd VALUES ({zeros}, 4, 'd');"
    ));
    let d = delta(&w, &b, &[]);
    let entry = &load(&d).tables["zd"];
    assert_eq!(
        (entry.rows, entry.delta.as_ref().unwrap().deleted.rows),
        (3, 2)
    );
    assert_exit(&import(&w, &d), 0);
    assert_eq!(
        w.pg_rows(
            "SELECT id::text, v, num_nulls(z0, z1, z2, z3, z4, z5, z6, zt, zd, zp)::text
             FROM zd ORDER BY zd.id"
        ),
        vec![
            vec![Some("1".into()), Some("A".into()), Some("10".into())],
            vec![Some("4".into()), Some("d".into()), Some("10".into())],
            vec![Some("20".into()), Some("b".into()), Some("10".into())],
        ]
    );
    deep_verify(&w, &d);
}
