//! Values whose server text form is not their value: MariaDB prints FLOAT with six
//! significant digits and YEAR(2) with two. Each must arrive in PostgreSQL exactly, on
//! the binary and on the CSV path, compared bit for bit with what MySQL stores.

use proptest::prelude::*;

use crate::export::export_dir;
use crate::harness::*;

/// MySQL's stored FLOAT values, as f32 bits, by id.
fn mysql_float_bits(w: &World, table: &str, column: &str) -> Vec<(i64, u32)> {
    mysql_rows(
        &w.db,
        &format!("SELECT id, CAST({column} AS DOUBLE) FROM {table} ORDER BY id"),
    )
    .into_iter()
    .map(|r| {
        let id = String::from_utf8(r[0].clone().unwrap()).unwrap();
        let v = String::from_utf8(r[1].clone().unwrap()).unwrap();
        let x: f64 = v.parse().unwrap();
        assert_eq!(x as f32 as f64, x, "{v} is not a float value");
        (id.parse().unwrap(), (x as f32).to_bits())
    })
    .collect()
}

/// PostgreSQL's loaded values as (id, real bits, double bits).
fn pg_float_bits(w: &World, table: &str) -> Vec<(i64, u32, u64)> {
    w.pg_rows(&format!(
        "SELECT id::text, encode(float4send(x_real), 'hex'), encode(float8send(x_double), 'hex')
         FROM {table} t ORDER BY t.id"
    ))
    .into_iter()
    .map(|r| {
        let v = |i: usize| r[i].clone().unwrap();
        (
            v(0).parse().unwrap(),
            u32::from_str_radix(&v(1), 16).unwrap(),
            u64::from_str_radix(&v(2), 16).unwrap(),
        )
    })
    .collect()
}

/// Create `table` on both sides and store `values` in MySQL (as their exact decimal
/// expansions, which MySQL rounds to the same float).
fn float_table(w: &World, table: &str, values: &[f32]) {
    w.mysql(&format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id INT PRIMARY KEY, x_real FLOAT, x_double FLOAT);"
    ));
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("({i}, {:?}, {:?})", *v as f64, *v as f64))
        .collect();
    for chunk in rows.chunks(200) {
        w.mysql(&format!("INSERT INTO {table} VALUES {}", chunk.join(", ")));
    }
    w.pg(&format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (id integer PRIMARY KEY, x_real real, x_double double precision);"
    ));
}

/// Export, then import with each COPY path, comparing every value's bits each time.
fn assert_float_round_trip(w: &World, tables: &[&str], out: &str) {
    let o = w.run(&["export", &w.db, "--out", out, "--tables", &tables.join(",")]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    for format in ["auto", "csv"] {
        let o = w.import_as(&dir, format);
        assert_exit(&o, 0);
        for table in tables {
            let stored = mysql_float_bits(w, table, "x_real");
            let loaded = pg_float_bits(w, table);
            assert_eq!(stored.len(), loaded.len(), "{table}");
            for ((id, bits), (pid, real, double)) in stored.iter().zip(&loaded) {
                assert_eq!(id, pid);
                let want = f32::from_bits(*bits);
                assert_eq!(
                    *real,
                    *bits,
                    "{table} id {id} ({format}): real {} != stored {want:e}",
                    f32::from_bits(*real)
                );
                assert_eq!(
                    *double,
                    (want as f64).to_bits(),
                    "{table} id {id} ({format}): double {} != stored {want:e}",
                    f64::from_bits(*double)
                );
            }
        }
    }
}

#[test]
fn every_float_class_arrives_bit_exact_on_both_paths() {
    let w = World::new("exact_float_classes");
    // Normal values (the binary path carries them) ...
    float_table(
        &w,
        "f_normal",
        &[
            123456.79,
            16777217.0, // 2^24 + 1: MySQL rounds to 2^24
            0.1,
            -0.0,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            1.234_567_8,
            9.876_543e-5,
            1_234_567.9,
            33_554_431.0,
            -7.006_492e-36,
            1.0e-30,
        ],
    );
    // ... and subnormal ones (left to PostgreSQL's input function: that table goes as CSV).
    float_table(
        &w,
        "f_tiny",
        &[
            1.0e-40,
            f32::from_bits(1),
            -f32::from_bits(0x007f_ffff),
            0.0,
        ],
    );
    // The issue's own example, exactly.
    let stored = mysql_float_bits(&w, "f_normal", "x_real");
    assert_eq!(f32::from_bits(stored[0].1) as f64, 123456.7890625);
    assert_eq!(f32::from_bits(stored[1].1), 16777216.0);
    assert_float_round_trip(&w, &["f_normal", "f_tiny"], "out");
}

#[test]
fn two_digit_years_arrive_as_the_years_they_stand_for() {
    let w = World::new("exact_year2");
    w.mysql(
        "SET SESSION sql_mode = '';
         CREATE TABLE y (id INT PRIMARY KEY, y2 YEAR(2), y4 YEAR);
         INSERT INTO y VALUES (1, 2024, 2024), (2, 1999, 1901), (3, 2000, 2155), (4, 1970, NULL), (5, 2069, 0);",
    );
    w.pg("CREATE TABLE y (id integer PRIMARY KEY, y2 integer, y4 smallint);");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let o = w.run(&[
        "import",
        export_dir(&o, w.path()).to_str().unwrap(),
        "--yes",
    ]);
    assert_exit(&o, 0);
    assert_eq!(
        w.pg_rows("SELECT y2::text, y4::text FROM y ORDER BY id"),
        [
            ["2024", "2024"],
            ["1999", "1901"],
            ["2000", "2155"],
            ["1970", ""],
            ["2069", "0"],
        ]
        .iter()
        .map(|r| r
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
}

/// pgloader #1098: a zero-date rule that compared prefixes turned real dates of the first
/// millennium (`0009-12-04`) into NULL. Only zero and partial-zero dates become NULL;
/// every real date and datetime arrives unchanged, on the binary and the CSV path.
#[test]
fn early_real_dates_are_not_taken_for_zero_dates() {
    let w = World::new("exact_early_dates");
    w.mysql(
        "SET SESSION sql_mode = '';
         CREATE TABLE d (id INT PRIMARY KEY, d DATE, dt DATETIME(6));
         INSERT INTO d VALUES
           (1, '0009-12-04', '0009-12-04 10:11:12.000001'),
           (2, '0001-01-01', '0001-01-01 00:00:00'),
           (3, '0100-10-10', '0999-12-31 23:59:59.999999'),
           (4, '1000-01-01', '0010-01-01 00:00:00'),
           (5, '0000-00-00', '0000-00-00 00:00:00'),
           (6, '2020-00-15', '2020-01-00 08:00:00');",
    );
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = export_dir(&o, w.path());
    let want: Vec<Vec<Option<String>>> = [
        ("0009-12-04", "0009-12-04 10:11:12.000001"),
        ("0001-01-01", "0001-01-01 00:00:00"),
        ("0100-10-10", "0999-12-31 23:59:59.999999"),
        ("1000-01-01", "0010-01-01 00:00:00"),
        ("", ""),
        ("", ""),
    ]
    .iter()
    .map(|(a, b)| {
        [a, b]
            .iter()
            .map(|v| (!v.is_empty()).then(|| v.to_string()))
            .collect()
    })
    .collect();
    for format in ["auto", "csv"] {
        w.pg("DROP TABLE IF EXISTS d; CREATE TABLE d (id integer PRIMARY KEY, d date, dt timestamp(6));");
        let o = w.import_as(&dir, format);
        assert_exit(&o, 0);
        assert_eq!(
            w.pg_rows("SELECT to_char(d, 'YYYY-MM-DD'), to_char(dt, 'YYYY-MM-DD HH24:MI:SS') || CASE WHEN extract(microseconds FROM dt)::int % 1000000 = 0 THEN '' ELSE '.' || lpad((extract(microseconds FROM dt)::int % 1000000)::text, 6, '0') END FROM d ORDER BY id"),
            want,
            "{format}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Random float bit patterns (NaN and infinities excluded: MySQL cannot store them).
    #[test]
    fn random_floats_arrive_bit_exact(bits in prop::collection::vec(any::<u32>(), 300)) {
        let values: Vec<f32> = bits
            .into_iter()
            .map(f32::from_bits)
            .filter(|f| f.is_finite())
            .collect();
        let w = World::new("exact_float_random");
        float_table(&w, "f_random", &values);
        assert_float_round_trip(&w, &["f_random"], "out");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// The digits before the point the export records of a decimal or float's text (what
    /// a `numeric(p, s)` target is checked against) are the ones PostgreSQL's own numeric
    /// input counts, in plain and exponent forms, for random doubles of every magnitude.
    #[test]
    fn integer_digits_agree_with_postgresql_s_numeric(bits in prop::collection::vec(any::<u64>(), 200)) {
        let texts: Vec<String> = bits
            .into_iter()
            .map(f64::from_bits)
            .filter(|f| f.is_finite())
            .flat_map(|f| [format!("{f:e}"), format!("{f:E}"), format!("{f}")])
            .chain(["0", "-0.0", "0.05e3", "123.4e-1", "-0012.5", "9.99e-1", "1e+5"].map(String::from))
            .collect();
        let w = World::new("exact_integer_digits");
        let list = texts.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(",");
        let rows = w.pg_rows(&format!(
            "SELECT t, CASE WHEN abs(t::numeric) < 1 THEN 0 ELSE length(trunc(abs(t::numeric))::text) END
             FROM unnest(ARRAY[{list}]::text[]) t"
        ));
        for r in rows {
            let (t, want) = (r[0].clone().unwrap(), r[1].clone().unwrap());
            let got = pgconverge::codec::rules::integer_digits(t.as_bytes());
            prop_assert_eq!(got.to_string(), want, "{}", t);
        }
    }
}
