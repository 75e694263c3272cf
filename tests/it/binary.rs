//! The binary COPY path against the real PostgreSQL: each converter compared with the
//! server's own input function value by value (whatever the converter accepts must give
//! the bytes PostgreSQL itself makes of that text; whatever PostgreSQL rejects, the
//! converter must leave to it), the same export loaded as CSV and as binary giving the
//! same tables, and the fall-back to CSV when a value is outside the strict forms.

use pgconverge::codec::pgbinary::{BinType, to_binary};
use tokio_postgres::types::{FromSql, Type};

use crate::harness::*;

/// A column value in its binary wire form, whatever its type.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn junk(&mut self, alphabet: &[u8], max: u64) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

/// Candidate spellings for a type: the forms an export writes, near misses, junk.
fn candidates(ty: BinType, rng: &mut Rng) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..400 {
        let v = match ty {
            BinType::Uuid => {
                let h = format!("{:016x}{:016x}", rng.next(), rng.next());
                match rng.below(7) {
                    0 => h.clone(),
                    1 => format!("{{{h}}}"),
                    2 => h.to_uppercase(),
                    3 => format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    ),
                    4 => {
                        let cut = 1 + rng.below(31) as usize;
                        format!("{}-{}", &h[..cut], &h[cut..])
                    }
                    5 => h[..(rng.below(33) as usize)].to_string(),
                    _ => rng.junk(b"0123456789abcdefABCDEF-{} g", 40),
                }
            }
            BinType::Bool => {
                let w = rng.pick(&[
                    "t", "true", "f", "false", "y", "yes", "n", "no", "on", "off", "1", "0", "tr",
                    "o", "2", "", " t", "TRUE", "Yes", "oN",
                ]);
                w.to_string()
            }
            BinType::Int2 | BinType::Int4 | BinType::Int8 => {
                let edges = [
                    "32767",
                    "32768",
                    "-32768",
                    "-32769",
                    "2147483647",
                    "2147483648",
                    "-2147483648",
                    "-2147483649",
                    "9223372036854775807",
                    "9223372036854775808",
                    "-9223372036854775808",
                    "-9223372036854775809",
                    "0",
                    "-0",
                    "007",
                    "+1",
                    " 1",
                    "1 ",
                    "1_000",
                    "0x10",
                    "",
                    "-",
                    "1e3",
                    "99999999999999999999",
                ];
                match rng.below(3) {
                    0 => rng.pick(&edges).to_string(),
                    1 => (rng.next() as i64 >> rng.below(64)).to_string(),
                    _ => rng.junk(b"0123456789-+ ", 12),
                }
            }
            BinType::Float4 | BinType::Float8 => {
                let edges = [
                    "0",
                    "-0",
                    ".5",
                    "5.",
                    "1e5",
                    "1E+05",
                    "1e-5",
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "inf",
                    "3.4028235e38",
                    "3.4028236e38",
                    "3.5e38",
                    "1.17549435e-38",
                    "1e-39",
                    "1e-46",
                    "1.7976931348623157e308",
                    "1.8e308",
                    "2.2250738585072014e-308",
                    "5e-324",
                    "1e-400",
                    "0.1",
                    "1e",
                    "e5",
                    ".",
                    "-.5",
                    "1.5.5",
                    "0x1p3",
                    " 1",
                    "1_0",
                ];
                match rng.below(4) {
                    0 => rng.pick(&edges).to_string(),
                    1 => format!("{}", f64::from_bits(rng.next())),
                    2 => format!("{:e}", (rng.next() as i64 as f64) / 1e9),
                    _ => format!(
                        "{}.{}e{}",
                        rng.below(1000),
                        rng.below(1_000_000),
                        rng.below(90) as i64 - 45
                    ),
                }
            }
            BinType::Date => format!(
                "{:04}-{:02}-{:02}",
                rng.below(10_001),
                rng.below(14),
                rng.below(33)
            ),
            BinType::Timestamp | BinType::Time => {
                let frac = match rng.below(4) {
                    0 => String::new(),
                    _ => format!(".{}", rng.junk(b"0123456789", 8)),
                };
                let t = format!(
                    "{:02}:{:02}:{:02}{frac}",
                    rng.below(26),
                    rng.below(62),
                    rng.below(62)
                );
                if ty == BinType::Time {
                    t
                } else {
                    let sep = rng.pick(&[" ", " ", " ", "T"]);
                    // PostgreSQL's own output in UTC ends in `+00` (a PostgreSQL source).
                    let zone = rng.pick(&["", "", "+00", "+01", "+00:00", "Z"]);
                    format!(
                        "{:04}-{:02}-{:02}{sep}{t}{zone}",
                        1 + rng.below(9999),
                        1 + rng.below(12),
                        1 + rng.below(31)
                    )
                }
            }
            BinType::Bytea => match rng.below(3) {
                0 => format!("\\x{}", rng.junk(b"0123456789abcdef", 20)),
                1 => format!("\\x{}", rng.junk(b"0123456789ABCDEFabcdefg ", 20)),
                _ => rng.junk(b"\\x0123456789abc", 10),
            },
            BinType::Numeric => {
                let edges = [
                    "0",
                    "-0",
                    "0.0",
                    "-0.00",
                    "1.50",
                    "00012.3400",
                    ".5",
                    "5.",
                    "-.5",
                    "NaN",
                    "nan",
                    "Infinity",
                    "-Infinity",
                    "inf",
                    "1e5",
                    "+1",
                    " 1",
                    "1 ",
                    ".",
                    "-",
                    "0.00001",
                    "10000",
                    "100000000",
                    "0.0001000",
                    "9999.9999",
                    "1_000",
                ];
                let digits = |rng: &mut Rng, n: u64| rng.junk(b"0000123456789", n);
                match rng.below(3) {
                    0 => rng.pick(&edges).to_string(),
                    1 => {
                        let sign = if rng.below(2) == 0 { "-" } else { "" };
                        let (i, f) = (digits(rng, 25), digits(rng, 25));
                        match rng.below(3) {
                            0 => format!("{sign}{i}"),
                            _ => format!("{sign}{i}.{f}"),
                        }
                    }
                    _ => rng.junk(b"0123456789.-+eE N", 12),
                }
            }
            BinType::Interval => {
                let sign = if rng.below(3) == 0 { "-" } else { "" };
                let frac = match rng.below(3) {
                    0 => String::new(),
                    _ => format!(".{}", rng.junk(b"0123456789", 8)),
                };
                match rng.below(4) {
                    0 => rng.junk(b"0123456789:.- day", 12),
                    _ => format!(
                        "{sign}{}:{:02}:{:02}{frac}",
                        rng.below(840),
                        rng.below(62),
                        rng.below(62)
                    ),
                }
            }
            BinType::TextArray { .. } => {
                let n = rng.below(5);
                let elems: Vec<String> = (0..n)
                    .map(|_| match rng.below(4) {
                        0 => format!(
                            "\"{}\"",
                            rng.junk(b"ab ,{}\\\"x", 6)
                                .replace('\\', "\\\\")
                                .replace('"', "\\\"")
                        ),
                        1 => rng
                            .pick(&["NULL", "null", "x y", "", "a", "{b}"])
                            .to_string(),
                        _ => rng.junk(b"abcXYZ019_-", 6),
                    })
                    .collect();
                match rng.below(6) {
                    0 => rng.junk(b"{}a,\" \\", 10),
                    _ => format!("{{{}}}", elems.join(",")),
                }
            }
            BinType::Text | BinType::Jsonb => unreachable!("passed through unchanged"),
        };
        out.push(v);
    }
    out
}

#[test]
fn every_converter_agrees_with_the_servers_input_function() {
    let w = World::new("binary_differential");
    let pg: &[(&str, BinType)] = &[
        ("uuid", BinType::Uuid),
        ("bool", BinType::Bool),
        ("int2", BinType::Int2),
        ("int4", BinType::Int4),
        ("int8", BinType::Int8),
        ("float4", BinType::Float4),
        ("float8", BinType::Float8),
        ("date", BinType::Date),
        ("timestamp", BinType::Timestamp),
        ("timestamptz", BinType::Timestamp),
        ("time", BinType::Time),
        ("bytea", BinType::Bytea),
        ("numeric", BinType::Numeric),
        ("interval", BinType::Interval),
        ("text[]", BinType::TextArray { elem: 25 }),
    ];
    let url = format!("{}/{}", postgres_url(), w.db);
    block(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for (name, ty) in pg {
            let stmt = client
                .prepare(&format!("SELECT $1::text::{name}"))
                .await
                .unwrap();
            let (mut accepted, mut refused_by_server) = (0, 0);
            for v in candidates(*ty, &mut rng) {
                let mut mine = Vec::new();
                let ours = to_binary(*ty, v.as_bytes(), &mut mine).is_ok();
                match client.query_one(&stmt, &[&v]).await {
                    Ok(row) => {
                        let theirs: Raw = row.get(0);
                        if ours {
                            accepted += 1;
                            assert_eq!(
                                mine, theirs.0,
                                "{name} {v:?}: our bytes differ from PostgreSQL's"
                            );
                        }
                    }
                    Err(e) => {
                        refused_by_server += 1;
                        assert!(
                            !ours,
                            "{name} {v:?}: PostgreSQL refuses it ({e}) but the converter accepted it"
                        );
                    }
                }
            }
            // The comparison means something only if both sides were exercised.
            assert!(accepted >= 80, "{name}: only {accepted} of 400 accepted");
            assert!(
                refused_by_server >= 10 || *ty == BinType::Bool,
                "{name}: only {refused_by_server} refused"
            );
        }
    });
}

/// A table of every converter's type, with the export's nasty values.
const MYSQL_ALL_BINARY: &str = r#"
CREATE TABLE t (
  id INT PRIMARY KEY, u CHAR(36), flag TINYINT(1), s SMALLINT, n BIGINT, f FLOAT, d DOUBLE,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(3), b LONGBLOB, j JSON, e ENUM('a','b'),
  txt TEXT, c CHAR(5)
);
INSERT INTO t VALUES
 (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, -32768, -9223372036854775808, 3.4e38, -1.7976931348623157e308,
  '0001-01-01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.5', '23:59:59.999', X'00FF0A0D22', '{"k": ["v", 1.5, null]}', 'a',
  'line\nbreak, "quoted" \\N', 'ab'),
 (2, '', 0, 0, 0, 0, -0, '2024-02-29', '2000-01-01 00:00:00', NULL, '00:00:00', X'', '[]', NULL, '', NULL),
 (3, NULL, NULL, NULL, NULL, 1e-30, 2.2250738585072014e-308, NULL, NULL, '1970-01-01 00:00:01', NULL, NULL, NULL, 'b', '\\N', ' ');
-- A record far longer than a read chunk (1.5 MB of bytes, 3 MB of hex), within what
-- the binary converter holds (4 MiB: a longer record sends the table as CSV).
INSERT INTO t (id, b) SELECT 4, REPEAT(X'00FF0A22', 375000);
"#;

const PG_ALL_BINARY: &str = r#"
CREATE TYPE ab AS ENUM ('a', 'b');
CREATE DOMAIN short_text AS varchar(10);
CREATE TABLE t (
  id integer PRIMARY KEY, u uuid, flag boolean, s smallint, n bigint, f real, d double precision,
  dt date, dtm timestamp(6), ts timestamptz(6), tm time(3), b bytea, j jsonb, e ab,
  txt text, c short_text
);
"#;

#[test]
fn csv_and_binary_loads_give_identical_tables() {
    let w = World::new("binary_equal");
    w.mysql(MYSQL_ALL_BINARY);
    w.pg(PG_ALL_BINARY);
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = crate::export::export_dir(&o, w.path());
    let d = dir.to_str().unwrap();

    let o = w.run(&["import", d, "--dry-run", "--json"]);
    assert_exit(&o, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["tables"][0]["copy_format"], "binary", "{plan}");

    let o = w.run(&["import", d, "--yes", "--copy-format", "csv"]);
    assert_exit(&o, 0);
    let as_csv = w.fingerprint();
    let o = w.run(&["import", d, "--yes"]);
    assert_exit(&o, 0);
    assert!(!stderr(&o).contains("as CSV"), "{}", stderr(&o));
    assert_eq!(w.fingerprint(), as_csv);
    // And the values are the ones the source holds, spot-checked where binary differs most.
    assert_eq!(
        w.pg_rows("SELECT u::text, flag::text, f::text, d::text, dtm::text, ts::text, tm::text, encode(b, 'hex'), txt FROM t WHERE id < 4 ORDER BY id"),
        vec![
            vec![Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()), Some("true".into()), Some("3.4e+38".into()), Some("-1.7976931348623157e+308".into()), Some("9999-12-31 23:59:59.999999".into()), Some("2038-01-19 03:14:07.5+00".into()), Some("23:59:59.999".into()), Some("00ff0a0d22".into()), Some("line\nbreak, \"quoted\" \\N".into())],
            vec![None, Some("false".into()), Some("0".into()), Some("0".into()), Some("2000-01-01 00:00:00".into()), None, Some("00:00:00".into()), Some("".into()), Some("".into())],
            vec![None, None, Some("1e-30".into()), Some("2.2250738585072014e-308".into()), None, Some("1970-01-01 00:00:01+00".into()), None, None, Some("\\N".into())],
        ]
    );
    let mysql_blob = &mysql_rows(&w.db, "SELECT LENGTH(b), MD5(b) FROM t WHERE id = 4")[0];
    assert_eq!(
        w.pg_rows("SELECT length(b)::text, md5(b) FROM t WHERE id = 4")[0],
        mysql_blob
            .iter()
            .map(|v| v.as_ref().map(|b| String::from_utf8(b.clone()).unwrap()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_value_outside_the_strict_forms_loads_that_table_as_csv() {
    let w = World::new("binary_fallback");
    // MySQL text that PostgreSQL's boolin reads but the converter leaves to it ('tr'),
    // in the second of two tables, so the first attempt has already loaded rows.
    w.mysql(
        "CREATE TABLE a_first (id INT PRIMARY KEY, v VARCHAR(10));
         INSERT INTO a_first VALUES (1, 'x'), (2, 'y');
         CREATE TABLE b_flags (id INT PRIMARY KEY, flag VARCHAR(10));
         INSERT INTO b_flags VALUES (1, 'true'), (2, 'tr'), (3, ' off ');",
    );
    w.pg("CREATE TABLE a_first (id integer PRIMARY KEY, v text);
          CREATE TABLE b_flags (id integer PRIMARY KEY, flag boolean);");
    let o = w.run(&["export", &w.db, "--out", "out"]);
    assert_exit(&o, 0);
    let dir = crate::export::export_dir(&o, w.path());
    let o = w.run(&["import", dir.to_str().unwrap(), "--yes", "--json"]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("table `b_flags`, b_flags.csv: row 2, column `flag`")
            && err.contains("starting over with `b_flags` loaded as CSV"),
        "{err}"
    );
    assert_eq!(
        w.pg_rows("SELECT id::text, flag::text FROM b_flags ORDER BY id"),
        vec![
            vec![Some("1".into()), Some("true".into())],
            vec![Some("2".into()), Some("true".into())],
            vec![Some("3".into()), Some("false".into())],
        ]
    );
    assert_eq!(
        w.pg_value("SELECT count(*)::text FROM a_first"),
        Some("2".into())
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["committed"], true);
}
