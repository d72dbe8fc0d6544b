//! Every MySQL/MariaDB type of the issue round-trips: the same rows read by
//! the snapshot (ids < 100) and by the binlog stream (ids ≥ 100) rebuild to
//! exactly the source (`verify` 0 differences), snapshot and stream give the
//! same values, and edge values decode to what docs/mysql.md promises.

mod common;

use common::mysql::{topic_rows, MysqlPipeline};
use common::RunsKappa;
use kappa_schemas::Value;
use std::collections::HashMap;

const TABLE: &str = "CREATE TABLE {db0}.types (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
    dec65 DECIMAL(65,30), dec0 DECIMAL(10,0), d52 DECIMAL(5,2),
    f FLOAT, dbl DOUBLE,
    b1 BIT(1), b12 BIT(12), b64 BIT(64),
    c CHAR(5), vc VARCHAR(50), tx TEXT, lt VARCHAR(20) CHARACTER SET latin1, lc CHAR(4) CHARACTER SET latin1,
    bin BINARY(4), vbin VARBINARY(10), bl BLOB,
    dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
    tm TIME, tm6 TIME(6), yr YEAR,
    js JSON, en ENUM('a','b','it''s'), st SET('x','y','z')
) DEFAULT CHARSET = utf8mb4";

/// Four rows: maxima, minima, all NULL, and zero dates with odd values.
fn rows(first: i32) -> String {
    let values = [
        "127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
         99999999999999999999999999999999999.999999999999999999999999999999, 9999999999, 999.99,
         3.40282e38, 1.7976931348623157e308,
         b'1', b'111111111111', b'1111111111111111111111111111111111111111111111111111111111111111',
         'abcde', 'héllo 🎉 wörld', REPEAT('long text ', 50), 'café €', 'Ñü',
         X'01020304', X'00FF', X'DEADBEEF',
         '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999',
         '838:59:59', '838:59:59.000000', 2155,
         '{\"b\": [1, 2.5, null], \"a\": \"é\"}', 'it''s', 'x,y,z'",
        "-128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
         -99999999999999999999999999999999999.999999999999999999999999999999, -9999999999, -999.99,
         -1.17549435e-38, -2.2250738585072014e-308,
         b'0', b'000000000001', b'0',
         '', '', '', '', '',
         X'01', X'', X'',
         '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '1970-01-01 00:00:01.001',
         '-838:59:59', '-00:00:00.000001', 1901,
         '[]', 'a', ''",
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL",
        "0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
         0.000000000000000000000000000001, 0, 0.01,
         0.1, 0.1,
         b'0', b'100000000000', b'1000000000000000000000000000000000000000000000000000000000000000',
         'a', 'tab\\there', 'line\\nbreak', '\\\\', 'x',
         X'00000000', X'00', X'00',
         '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', NULL,
         '25:00:00', '-25:00:00.5', 0,
         '{\"nested\": {\"k\": true}}', 'b', 'y'",
    ];
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("({}, {v})", first + i as i32))
        .collect();
    rows.join(", ")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_through_snapshot_and_stream() {
    let setup = format!("{TABLE}; INSERT INTO {{db0}}.types VALUES {}", rows(1));
    let mut p = MysqlPipeline::new("kmy_types", 1, &setup).await;
    let table = format!("{}.types", p.databases[0]);
    p.start().await;
    let end = p
        .commit(&format!("INSERT INTO {table} VALUES {}", rows(101)))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    p.assert_verified(&table, 8);

    let rows = topic_rows(&p.topic(&table));
    for id in 1..=4i64 {
        let (snap, streamed) = (&rows[&id], &rows[&(id + 100)]);
        for (column, value) in snap {
            if column != "id" {
                assert_eq!(
                    Some(value),
                    streamed.get(column),
                    "row {id}, column {column}: snapshot and stream differ"
                );
            }
        }
    }
    let max = &rows[&101];
    let text = |row: &HashMap<String, Value>, c: &str| row[c].to_string();
    assert_eq!(text(max, "biu"), "18446744073709551615");
    assert_eq!(text(max, "iu"), "4294967295");
    assert_eq!(
        text(max, "dec65"),
        "99999999999999999999999999999999999.999999999999999999999999999999"
    );
    assert_eq!(max["b12"], Value::Bytes(vec![0x0f, 0xff]));
    assert_eq!(max["b64"], Value::Bytes(vec![0xff; 8]));
    assert_eq!(max["lt"], Value::Text("café €".into()));
    assert_eq!(max["vc"], Value::Text("héllo 🎉 wörld".into()));
    assert_eq!(max["bin"], Value::Bytes(vec![1, 2, 3, 4]));
    assert_eq!(
        max["tm"],
        Value::Int(((838 * 60 + 59) * 60 + 59) * 1_000_000)
    );
    assert_eq!(max["yr"], Value::Int(2155));
    assert_eq!(max["en"], Value::Text("it's".into()));
    assert_eq!(max["st"], Value::Text("x,y,z".into()));
    assert_eq!(max["ts"], Value::TimestampTz(2_147_483_647_000_000));
    assert_eq!(max["ts3"], Value::TimestampTz(2_147_483_647_999_000));
    let min = &rows[&102];
    assert_eq!(min["tm6"], Value::Int(-1));
    assert_eq!(min["st"], Value::Text(String::new()));
    assert_eq!(min["dtm6"], Value::Timestamp(-30_610_224_000_000_000 + 1));
    let nulls = &rows[&103];
    assert!(
        nulls.iter().all(|(c, v)| c == "id" || *v == Value::Null),
        "{nulls:?}"
    );
    let odd = &rows[&104];
    assert_eq!(odd["dt"], Value::Date(i32::MIN), "zero date");
    assert_eq!(odd["dtm"], Value::Timestamp(i64::MIN), "zero datetime");
    assert_eq!(odd["ts"], Value::TimestampTz(i64::MIN), "zero timestamp");
    assert_eq!(
        odd["bin"],
        Value::Bytes(vec![0; 4]),
        "binary(4) keeps its zero bytes"
    );
    assert_eq!(odd["tm"], Value::Int(25 * 3_600_000_000));
    assert_eq!(odd["tm6"], Value::Int(-(25 * 3_600_000_000 + 500_000)));
    assert_eq!(odd["yr"], Value::Int(0), "the zero year");
    assert_eq!(odd["b12"], Value::Bytes(vec![0x08, 0x00]));
    p.cleanup().await;
}
