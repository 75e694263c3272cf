//! The shared fixture: every MySQL column type and the nasty values, plus reserved-word
//! table names, a camelCase column and an empty table. Used by export and import tests.

/// MySQL DDL + data. Row ids: 1 minimums, 2 maximums, 3 nasty strings, 4 NULLs, 5 zero
/// dates and odd values.
pub const MYSQL: &str = r#"
SET SESSION sql_mode = '';
SET SESSION time_zone = '+00:00';
CREATE TABLE every_type (
  id INT AUTO_INCREMENT PRIMARY KEY,
  ti TINYINT, ti_u TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, i INT, i_u INT UNSIGNED,
  bi BIGINT, bi_u BIGINT UNSIGNED,
  dec65 DECIMAL(65,30), f FLOAT, d DOUBLE,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
  uuid CHAR(36), c10 CHAR(10), vc VARCHAR(255), tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  bn BINARY(4), vb VARBINARY(16), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  b1 BIT(1), b10 BIT(10), bool1 TINYINT(1),
  en ENUM('a','b','c'), st SET('x','y','z'),
  js JSON,
  gen_v INT AS (i * 2) VIRTUAL,
  gen_s VARCHAR(300) AS (CONCAT(COALESCE(vc, ''), '!')) STORED
);
INSERT INTO every_type (id, ti, ti_u, si, mi, i, i_u, bi, bi_u, dec65, f, d, dt, dtm, ts, tm, yr,
  uuid, c10, vc, tt, tx, mt, lt, bn, vb, tb, bl, mb, lb, b1, b10, bool1, en, st, js) VALUES
 (1, -128, 0, -32768, -8388608, -2147483648, 0, -9223372036854775808, 0,
  '-99999999999999999999999999999999999.999999999999999999999999999999', -3.40282e38, -1.7976931348623157e308,
  '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.000000', 1901,
  '6f9619ff-8b86-d011-b42d-00cf4fc964ff', 'abc', 'plain', 't', 'text', 'medium', 'long',
  x'00000000', x'', x'00', x'0001', x'ff', x'', b'0', b'0000000000', 0, 'a', '', '{}'),
 (2, 127, 255, 32767, 8388607, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  '99999999999999999999999999999999999.999999999999999999999999999999', 3.40282e38, 1.7976931348623157e308,
  '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', 'abcdefghij', REPEAT('x', 255), 'tiny', 'text', 'medium', REPEAT('long ', 10000),
  x'ffffffff', x'00ff00ff00ff00ff00ff00ff00ff00ff', x'7f', REPEAT(x'00ff', 1000), x'0102', x'deadbeef', b'1', b'1111111111', 1, 'c', 'x,y,z',
  '{"a": [1, 2.5, "three"], "b": {"c": null}, "d": true}'),
 (3, 0, 0, 0, 0, 0, 0, 0, 0, '0.000000000000000000000000000001', 0.5, 0.1,
  '2024-02-29', '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56.123456', '00:00:00.000001', 2024,
  '', '', '', '\\N', 'say "hi", then\r\nleave', 'tab\there\\back\\\\slash', 'emoji 😀 𝄞 é',
  x'00000000', x'00', x'', x'', x'', x'', b'1', b'1000000101', 2, '', 'x,z',
  '{"q": "He said \\"hi\\", then \\\\ left", "e": "😀", "n": "\\u00e9", "crlf": "a\\r\\nb"}'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, 1, 1, 1, 1, 1, 1, 1, 1, '1', 1, 1,
  '0000-00-00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000000', '00:00:00', 0,
  'not-a-uuid', ' padded  ', ' lead and trail ', '\\.', ',', '"', 'line1\nline2',
  x'0a0d2c22', x'5c4e', x'2c', x'0d0a', x'22', x'5c', b'0', b'0000000001', 1, 'b', 'y', '[]');

CREATE TABLE `user` (
  id CHAR(36) NOT NULL PRIMARY KEY,
  nameID VARCHAR(100) NOT NULL,
  `firstName` VARCHAR(100) NULL,
  accountID CHAR(36) NULL,
  createdDate DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
INSERT INTO `user` VALUES
 ('11111111-1111-1111-1111-111111111111', 'alice', 'Alice', '', '2024-01-01 00:00:00.000000'),
 ('22222222-2222-2222-2222-222222222222', 'bob', NULL, '33333333-3333-3333-3333-333333333333', '2024-01-02 00:00:00.000000');
CREATE TABLE `order` (id INT AUTO_INCREMENT PRIMARY KEY, `userId` CHAR(36), total DECIMAL(10,2));
INSERT INTO `order` (`userId`, total) VALUES ('11111111-1111-1111-1111-111111111111', 9.99), (NULL, 0);
CREATE TABLE `query-result-cache` (id INT AUTO_INCREMENT PRIMARY KEY, query TEXT);
INSERT INTO `query-result-cache` (query) VALUES ('select 1');
CREATE TABLE empty_table (id INT PRIMARY KEY, note VARCHAR(10));
"#;
