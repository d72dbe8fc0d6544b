//! Every PostgreSQL type a real schema uses round-trips: source → topic →
//! rebuild → verify with 0 differences, with NULLs and edge values, through
//! the snapshot (COPY text) and the stream (pgoutput text) alike. The mapping
//! itself is in docs/postgres-types.md; the registered schema is checked
//! against it here for the types with an Avro logical type.

use crate::common;

use common::RunsKappa;
use common::{brokers, kappa, pg, pg_url, registry_get, registry_url, text, unique, Pipeline};
use serde_json::Value as Json;

/// One column per type: (name, type, SQL expressions of its values). `ENUM`,
/// `DOM_INT` and `DOM_TEXT` stand for the test's own enum and domains.
#[rustfmt::skip]
const COLUMNS: &[(&str, &str, &[&str])] = &[
    ("i2", "smallint", &["-32768", "32767", "0"]),
    ("i4", "integer", &["-2147483648", "2147483647", "0"]),
    ("i8", "bigint", &["-9223372036854775808", "9223372036854775807", "0"]),
    ("num", "numeric", &[
        "'NaN'", "'Infinity'", "'-Infinity'", "'-0.000000000000000000000000000001'",
        "'123456789012345678901234567890.123456789'", "'1.50'", "0",
    ]),
    ("num_ps", "numeric(12,4)", &["'NaN'", "99999999.9999", "-99999999.9999", "0", "0.0001", "-1.5"]),
    ("num_38", "numeric(38,0)", &["99999999999999999999999999999999999999", "-1", "'NaN'"]),
    ("num_frac", "numeric(5,5)", &["0.00001", "-0.99999"]),
    ("f4", "real", &["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'1.1'", "'3.4028235e38'", "'1e-45'"]),
    ("f8", "double precision", &[
        "'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'0.1'", "'1.7976931348623157e308'", "'5e-324'",
    ]),
    ("m", "money", &["'-92233720368547758.08'", "'92233720368547758.07'", "0", "'-0.01'", "1234.5"]),
    ("ch", "char(5)", &["''", "'a'", "'héllo'", "'🎉'"]),
    ("vc", "varchar(10)", &["''", "'emoji 🎉'", "E'tab\\there'"]),
    ("tx", "text", &[
        "''", "E'line\\nbreak \\\\ back\\\\slash \"quote\" \\r'", "'日本語 ✓ 🎉 é'", "repeat('long ', 3000)",
    ]),
    ("qchar", "\"char\"", &["'a'", "'Z'"]),
    ("nm", "name", &["'a name'", "''"]),
    ("by", "bytea", &[
        "''", "'\\x00ff'", "'\\x5c00'",
        // ~32 KB that does not compress: stored out of line (TOAST).
        "(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 2000) g)",
    ]),
    ("bo", "boolean", &["true", "false"]),
    ("d", "date", &[
        "'infinity'", "'-infinity'", "'0044-03-15 BC'", "'4714-11-24 BC'", "'10000-01-01'",
        "'5874897-12-31'", "'2000-02-29'", "'0001-01-01'",
    ]),
    ("t", "time", &["'00:00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"]),
    ("t3", "time(3)", &["'12:34:56.789'", "'00:00:00.001'"]),
    ("ttz", "timetz", &["'00:00:00+15:59'", "'24:00:00-15:59'", "'12:34:56.123456+05:30'"]),
    ("ts", "timestamp", &[
        "'infinity'", "'-infinity'", "'0044-03-15 12:34:56.000001 BC'", "'4714-11-24 00:00:00 BC'",
        "'10000-01-01 00:00:00'", "'200000-06-30 23:59:59.999999'", "'1999-12-31 23:59:59.999999'",
        // Past i64 microseconds since 1970 (the string branch), and on its
        // last value (the infinity sentinel's).
        "'294276-12-31 23:59:59.999999'", "'294247-01-10 04:00:54.775807'",
    ]),
    ("ts0", "timestamp(0)", &["'2024-01-01 12:00:00'", "'1969-12-31 23:59:59'"]),
    ("tstz", "timestamptz", &[
        "'infinity'", "'-infinity'", "'0044-03-15 12:34:56.000001+00 BC'", "'10000-01-01 00:00:00+14'",
        "'2024-06-01 12:00:00.123456-07:00'", "'1900-01-01 00:00:00 Europe/Amsterdam'",
        "'294276-12-31 23:59:59.999999+00'", "'294276-12-31 23:59:59.999999+14'",
    ]),
    ("iv", "interval", &[
        "'1 year 2 mons -3 days 04:05:06.000007'", "'-178000000 years'", "'178000000 years'", "'0'",
        "'-1 mons +2 days -00:00:01'", "'1 microsecond'",
    ]),
    ("u", "uuid", &[
        "'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "gen_random_uuid()",
    ]),
    ("j", "json", &[
        r#"'{"b": 1, "a": [1, 2.50, {"c": null}], "u": "\u00e9\ud83c\udf89 \"q\""}'"#, "'[]'", "'\"\"'", "'null'",
    ]),
    ("jb", "jsonb", &[
        r#"'{"b": 1, "a": [1, 2.50, {"c": null}], "u": "\u00e9\ud83c\udf89 \"q\""}'"#,
        r#"'{"deep": {"er": {"est": [[[]]]}}}'"#, "'\"\"'", "'null'",
    ]),
    ("x", "xml", &["'<a href=\"x\">é &amp; <b/></a>'", "'just text'", "'<?xml version=\"1.0\"?><r/>'"]),
    ("ip", "inet", &["'192.168.0.1/24'", "'::1'", "'2001:db8::ff00:42:8329/64'"]),
    ("net", "cidr", &["'10.0.0.0/8'", "'2001:db8::/32'"]),
    ("mac", "macaddr", &["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"]),
    ("mac8", "macaddr8", &["'08:00:2b:01:02:03:04:05'"]),
    ("bt", "bit(5)", &["B'10101'", "B'00000'"]),
    ("vb", "varbit", &["B''", "B'1'", "repeat('10', 500)::varbit"]),
    ("a_int", "integer[]", &["'{}'", "'{{1,NULL},{3,4}}'", "'[0:1]={-2147483648,2147483647}'", "'{NULL}'"]),
    ("a_int3", "integer[]", &["'{{{1,2},{3,4}},{{5,6},{7,NULL}}}'"]),
    ("a_text", "text[]", &[
        r#"ARRAY['a b', '', NULL, 'NULL', E'back\\slash', '🎉', '{,}', '"quoted"']"#, "'{}'",
    ]),
    ("a_num", "numeric(10,2)[]", &["ARRAY[1.5, NULL, 'NaN']::numeric(10,2)[]"]),
    ("a_f8", "double precision[]", &["ARRAY['NaN'::float8, '-0', 'Infinity', 0.1]"]),
    ("a_tstz", "timestamptz[]", &["ARRAY['infinity', '2024-01-01 00:00:00.000001+00', NULL]::timestamptz[]"]),
    ("a_date", "date[]", &["ARRAY['0044-03-15 BC'::date, NULL, '10000-01-01']"]),
    ("a_bytea", "bytea[]", &["ARRAY['\\x00'::bytea, ''::bytea, NULL]"]),
    ("a_uuid", "uuid[]", &["ARRAY[gen_random_uuid(), NULL]"]),
    ("a_jsonb", "jsonb[]", &[r#"ARRAY['{"a": "\u00e9"}'::jsonb, 'null'::jsonb, NULL]"#]),
    ("a_iv", "interval[]", &["ARRAY['1 day'::interval, '-1 microsecond']"]),
    ("a_pt", "point[]", &["ARRAY['(1,2)'::point, '(0.1,-1e300)']"]),
    ("a_bool", "boolean[]", &["'{t,f,NULL}'"]),
    ("en", "ENUM", &["'sad'", "'happy'", "'ok 🎉'"]),
    ("a_en", "ENUM[]", &["ARRAY['sad', NULL, 'ok 🎉']::ENUM[]"]),
    ("dom_i", "DOM_INT", &["42", "-99"]),
    ("dom_t", "DOM_TEXT", &["'domain text'", "'é'"]),
    ("r_i4", "int4range", &["'empty'", "'[1,5)'", "'(,)'", "'[-2147483648,2147483647)'"]),
    ("r_i8", "int8range", &["'[-9223372036854775808,9223372036854775807)'", "'[0,1]'"]),
    ("r_num", "numrange", &["'(-1.5,2.25]'", "'[,3)'", "'empty'"]),
    ("r_ts", "tsrange", &["'[2024-01-01 00:00:00,2024-01-02 00:00:00.000001)'", "'(,infinity]'"]),
    ("r_tstz", "tstzrange", &["'[2024-01-01 00:00:00+05,infinity)'", "'[-infinity,)'"]),
    ("r_date", "daterange", &["'[0044-03-15 BC,10000-01-01)'", "'empty'"]),
    ("mr_i4", "int4multirange", &["'{}'", "'{[1,3),[5,7)}'"]),
    ("mr_i8", "int8multirange", &["'{[1,2], [10,)}'"]),
    ("mr_num", "nummultirange", &["'{(-1.5,2.25], [3,4)}'"]),
    ("mr_ts", "tsmultirange", &["'{[2024-01-01 00:00:00,2024-01-02 00:00:00)}'"]),
    ("mr_tstz", "tstzmultirange", &["'{[2024-01-01 00:00:00+00,),(,1970-01-01 00:00:00+00)}'"]),
    ("mr_date", "datemultirange", &["'{[2000-01-01,2000-02-01), [0001-01-01 BC,0001-01-01)}'"]),
    ("a_range", "int4range[]", &["ARRAY['[1,2)'::int4range, 'empty', NULL]"]),
    ("tsv", "tsvector", &["'a fat cat:3A'", "to_tsvector('english', 'The quick brown foxes jumped')", "''"]),
    ("tsq", "tsquery", &["'fat & (rat | !cat)'", "'supernova:* <-> star'"]),
    ("hs", "hstore", &[r#"'a=>1, "b c"=>NULL, "é"=>"🎉", "q\"uote"=>""'"#, "''"]),
    ("pt", "point", &["'(1,2)'", "'(0.1,-1e300)'", "'(NaN,Infinity)'"]),
    ("ln", "line", &["'{1,2,3}'", "'{0.1,-1,0}'"]),
    ("ls", "lseg", &["'[(1,2),(3,4)]'"]),
    ("bx", "box", &["'(3,4),(1,2)'", "'(0,0),(0,0)'"]),
    ("pa", "path", &["'[(1,2),(3,4),(5,6)]'", "'((0,0),(1,1))'"]),
    ("po", "polygon", &["'((0,0),(1,1),(1,0))'"]),
    ("ci", "circle", &["'<(1,2),3.5>'", "'<(0,0),0>'"]),
    ("o", "oid", &["4294967295", "0"]),
    ("lsn", "pg_lsn", &["'FFFFFFFF/FFFFFFFF'", "'0/0'"]),
    ("jp", "jsonpath", &["'$.a[*] ? (@ > 1)'"]),
];

/// Rows of one phase (snapshot or stream): row `r` takes value `r + shift`
/// (wrapping) of every column, so each value appears at least once.
const ROWS_PER_PHASE: usize = 8;

/// The test's names for its enum and domains, substituted into `COLUMNS`.
struct UserTypes {
    enum_name: String,
    dom_int: String,
    dom_text: String,
}

impl UserTypes {
    fn sql_type(&self, ty: &str) -> String {
        ty.replace("DOM_INT", &self.dom_int)
            .replace("DOM_TEXT", &self.dom_text)
            .replace("ENUM", &self.enum_name)
    }
}

/// Creates hstore if the server can; fails, naming the fix, if it cannot.
async fn require_hstore(client: &tokio_postgres::Client) {
    let available = client
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'hstore'",
            &[],
        )
        .await
        .expect("pg_available_extensions");
    assert!(
        available.is_some(),
        "the hstore extension is not available on this PostgreSQL server; install the server's \
         contrib modules (on Debian 12 they ship with the postgresql-15 package; elsewhere \
         `apt-get install postgresql-contrib`)"
    );
    // Two sessions creating it at once can collide; the second try sees it.
    if client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS hstore")
        .await
        .is_err()
    {
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS hstore")
            .await
            .expect("CREATE EXTENSION hstore");
    }
}

async fn create_user_types(client: &tokio_postgres::Client) -> UserTypes {
    let types = UserTypes {
        enum_name: unique("kappa_mood"),
        dom_int: unique("kappa_dom_int"),
        dom_text: unique("kappa_dom_text"),
    };
    client
        .batch_execute(&format!(
            "CREATE TYPE public.{} AS ENUM ('sad', 'happy', 'ok 🎉');
             CREATE DOMAIN public.{} AS integer CHECK (VALUE > -100);
             CREATE DOMAIN public.{} AS text;",
            types.enum_name, types.dom_int, types.dom_text
        ))
        .await
        .expect("create enum and domains");
    types
}

async fn drop_user_types(types: &UserTypes) {
    pg().await
        .batch_execute(&format!(
            "DROP TYPE IF EXISTS public.{}; DROP DOMAIN IF EXISTS public.{}; DROP DOMAIN IF EXISTS public.{};",
            types.enum_name, types.dom_int, types.dom_text
        ))
        .await
        .expect("drop enum and domains");
}

/// Value `index` (wrapping) of column `column`, cast to the column's type.
fn value(types: &UserTypes, column: usize, index: usize) -> String {
    let (_, ty, values) = COLUMNS[column];
    let ty = types.sql_type(ty);
    let expression = types.sql_type(values[index % values.len()]);
    format!("({expression})::{ty}")
}

fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(name, ..)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One INSERT per row (a VALUES list would unify the literals' types across rows).
fn insert_phase(table: &str, types: &UserTypes, first_id: i64, shift: usize) -> String {
    let mut sql = Vec::new();
    for row in 0..ROWS_PER_PHASE {
        let values: Vec<String> = (0..COLUMNS.len())
            .map(|c| value(types, c, row + shift))
            .collect();
        sql.push(format!(
            "INSERT INTO {table} (id, {}) VALUES ({}, {})",
            column_list(),
            first_id + row as i64,
            values.join(", ")
        ));
    }
    // And one row that is NULL everywhere but its key.
    sql.push(format!(
        "INSERT INTO {table} (id) VALUES ({})",
        first_id + ROWS_PER_PHASE as i64
    ));
    sql.join(";\n")
}

fn table_sql(types: &UserTypes) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("{name} {}", types.sql_type(ty)))
        .collect();
    format!("id bigint PRIMARY KEY, {}", columns.join(", "))
}

/// The Avro type of each field of the topic's latest value schema.
fn value_field_types(topic: &str) -> Vec<(String, Json)> {
    let latest = registry_get(&format!("/subjects/{topic}-value/versions/latest"));
    let schema: Json =
        serde_json::from_str(latest["schema"].as_str().expect("schema text")).expect("schema");
    schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().expect("name").to_string(),
                f["type"].clone(),
            )
        })
        .collect()
}

/// The documented mapping, as registered: `["null", T…]` for every non-key column.
fn assert_mapping(topic: &str) {
    let fields = value_field_types(topic);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
    };
    let logical = |name: &str| field(name)[1]["logicalType"].clone();
    assert_eq!(field("id"), "long");
    assert_eq!(field("i2"), serde_json::json!(["null", "int"]));
    assert_eq!(field("i8"), serde_json::json!(["null", "long"]));
    assert_eq!(field("f4"), serde_json::json!(["null", "float"]));
    assert_eq!(field("num"), serde_json::json!(["null", "string"]));
    let num_ps = field("num_ps");
    assert_eq!(num_ps[1]["logicalType"], "decimal", "{num_ps}");
    assert_eq!(
        (num_ps[1]["precision"].clone(), num_ps[1]["scale"].clone()),
        (12.into(), 4.into())
    );
    assert_eq!(num_ps[2], "string", "NaN branch: {num_ps}");
    let money = field("m");
    assert_eq!(
        (money[1]["precision"].clone(), money[1]["scale"].clone()),
        (19.into(), 2.into())
    );
    assert_eq!(logical("d"), "date");
    assert_eq!(logical("t"), "time-micros");
    assert_eq!(logical("ts"), "local-timestamp-micros");
    assert_eq!(logical("tstz"), "timestamp-micros");
    // Out-of-range timestamps travel in a string branch, as a decimal's NaN.
    assert_eq!(field("ts")[2], "string");
    assert_eq!(field("tstz")[2], "string");
    // A domain maps as its base type.
    assert_eq!(field("dom_i"), serde_json::json!(["null", "int"]));
    assert_eq!(logical("u"), "uuid");
    assert_eq!(field("by"), serde_json::json!(["null", "bytes"]));
    assert_eq!(field("o"), serde_json::json!(["null", "long"]));
    for text in [
        "ttz", "iv", "j", "jb", "x", "ip", "bt", "a_int", "a_num", "en", "dom_t", "r_tstz",
        "mr_date", "tsv", "hs", "pt", "ci", "lsn",
    ] {
        assert_eq!(field(text), serde_json::json!(["null", "string"]), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_through_snapshot_and_stream() {
    let admin = pg().await;
    require_hstore(&admin).await;
    let types = create_user_types(&admin).await;
    let mut p = Pipeline::new("kappa_types", &table_sql(&types)).await;
    let table = p.table.clone();
    // UPDATEs of other columns leave the out-of-line bytea unchanged ('u' in
    // pgoutput); FULL identity puts its value in the old tuple.
    p.commit(&format!("ALTER TABLE {table} REPLICA IDENTITY FULL"))
        .await;

    // Snapshot: ids 1..=9 (the ninth all NULL).
    p.commit(&insert_phase(&table, &types, 1, 0)).await;
    p.start();
    // Stream: ids 101..=109, every value shifted by one row.
    p.commit(&insert_phase(&table, &types, 101, 1)).await;
    // Every column changed, one statement (and commit) per column, on a
    // snapshot row and a streamed row; then value → NULL and NULL → value.
    for (column, (name, _, values)) in COLUMNS.iter().enumerate() {
        // Row `id` holds value `id - 1` (snapshot) or `id` (stream).
        let id = 1 + column % ROWS_PER_PHASE;
        let changed = |index| match values.len() {
            1 => "NULL".to_string(),
            _ => value(&types, column, index),
        };
        p.commit(&format!(
            "UPDATE {table} SET {name} = {} WHERE id = {id}; UPDATE {table} SET {name} = {} WHERE id = {}",
            changed(id),
            changed(id + 1),
            id + 100
        ))
        .await;
    }
    let all_set: Vec<String> = (0..COLUMNS.len())
        .map(|c| format!("{} = {}", COLUMNS[c].0, value(&types, c, 2)))
        .collect();
    let all_null: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ..)| format!("{name} = NULL"))
        .collect();
    p.commit(&format!(
        "UPDATE {table} SET {} WHERE id IN ({}, {})",
        all_set.join(", "),
        1 + ROWS_PER_PHASE,
        101 + ROWS_PER_PHASE
    ))
    .await;
    p.commit(&format!(
        "UPDATE {table} SET {} WHERE id IN (2, 102)",
        all_null.join(", ")
    ))
    .await;
    p.commit(&format!("DELETE FROM {table} WHERE id IN (3, 104, 105)"))
        .await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET id = 1000 WHERE id = 4"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();

    let rows = p.count().await;
    assert_eq!(rows, 2 * (ROWS_PER_PHASE as i64 + 1) - 3);
    p.assert_verified(rows);
    assert_mapping(&p.topic);
    // Types without a fixed OID travel as text, with a warning, never an error.
    let log = p.log();
    assert!(log.contains("no Avro mapping for this type"), "{log}");
    p.cleanup().await;
    drop_user_types(&types).await;
}

/// Key columns of typed values (infinite dates and timestamps, BC years,
/// decimals, UUIDs, text) key the records and compare in verify.
#[tokio::test(flavor = "multi_thread")]
async fn typed_composite_keys_round_trip() {
    let mut p = Pipeline::new(
        "kappa_typed_keys",
        "d date, ts timestamptz, n numeric(10,2), u uuid, t text, t_of_day time, payload text,
         PRIMARY KEY (d, ts, n, u, t, t_of_day)",
    )
    .await;
    let table = p.table.clone();
    let row = |d: &str, ts: &str, n: &str, payload: &str| {
        format!(
            "INSERT INTO {table} VALUES ('{d}', '{ts}', {n}, md5('{d}{ts}{n}')::uuid, '🎉 {d}', '24:00:00', '{payload}')"
        )
    };
    p.commit(
        &[
            row("infinity", "-infinity", "-99999999.99", "snapshot"),
            row("-infinity", "infinity", "99999999.99", "snapshot"),
            row(
                "0044-03-15 BC",
                "0044-03-15 12:00:00+00 BC",
                "0",
                "snapshot",
            ),
        ]
        .join(";"),
    )
    .await;
    p.start();
    p.commit(
        &[
            row(
                "10000-01-01",
                "10000-01-01 00:00:00.000001+00",
                "0.01",
                "stream",
            ),
            row(
                "2024-02-29",
                "2024-02-29 23:59:59.999999+00",
                "-0.01",
                "stream",
            ),
        ]
        .join(";"),
    )
    .await;
    p.commit(&format!(
        "UPDATE {table} SET payload = 'updated' WHERE d = 'infinity'"
    ))
    .await;
    p.commit(&format!(
        "UPDATE {table} SET ts = 'infinity' WHERE d = '2024-02-29'"
    ))
    .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE d = '-infinity'"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(4);
    p.cleanup().await;
}

/// Values Avro's types cannot hold in non-key columns, with domains (of
/// domains, arrays of them) over typed columns: snapshot and stream, a value
/// changing between its typed and its text form, rebuilt into SQLite and
/// into PostgreSQL (where the text form is a literal of the column's own
/// type), verified at 0 differences against both.
#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_values_and_domains_round_trip_into_both_targets() {
    let admin = pg().await;
    let (d_num, d_dom, d_tstz) = (
        unique("kappa_d_num"),
        unique("kappa_d_dom"),
        unique("kappa_d_tstz"),
    );
    admin
        .batch_execute(&format!(
            "CREATE DOMAIN public.{d_num} AS numeric(10,2);
             CREATE DOMAIN public.{d_dom} AS public.{d_num} CHECK (VALUE > -1000);
             CREATE DOMAIN public.{d_tstz} AS timestamptz;"
        ))
        .await
        .expect("create domains");
    let mut p = Pipeline::new(
        "kappa_far",
        &format!(
            "id bigint PRIMARY KEY, ts timestamp, tstz timestamptz, d date, t time, ttz timetz,
             n public.{d_num}, nn public.{d_dom}, dt public.{d_tstz}, an public.{d_num}[]"
        ),
    )
    .await;
    let table = p.table.clone();
    let row = |id: i64, ts: &str, tstz: &str, d: &str, n: &str| {
        format!(
            "INSERT INTO {table} VALUES ({id}, '{ts}', '{tstz}', '{d}', '24:00:00', '24:00:00-15:59',
             {n}, {n}, '{tstz}', ARRAY[{n}, NULL]::public.{d_num}[])"
        )
    };
    let far = "294276-12-31 23:59:59.999999";
    let first = "4714-11-24 00:00:00 BC";
    p.commit(
        &[
            row(1, far, &format!("{far}+00"), "5874897-12-31", "'NaN'"),
            row(
                2,
                first,
                "4714-11-24 00:00:00+00 BC",
                "4714-11-24 BC",
                "-999.99",
            ),
            row(
                3,
                "294247-01-10 04:00:54.775807",
                "294247-01-10 04:00:54.775806+00",
                "2024-02-29",
                "12345678.99",
            ),
        ]
        .join(";"),
    )
    .await;
    p.start();
    p.commit(
        &[
            row(11, far, &format!("{far}+14"), "5874897-12-31", "0.01"),
            row(
                12,
                "2024-01-01 00:00:00",
                "2024-01-01 00:00:00+00",
                "1970-01-01",
                "'NaN'",
            ),
        ]
        .join(";"),
    )
    .await;
    // Typed → text form and back, on a snapshot row and a streamed one.
    p.commit(&format!(
        "UPDATE {table} SET ts = '{far}', tstz = '{far}+00', dt = '{far}+00' WHERE id IN (2, 12);
         UPDATE {table} SET ts = '2000-01-01 00:00:00', tstz = '2000-01-01 00:00:00+00' WHERE id IN (1, 11)"
    ))
    .await;
    let lsn = p.commit(&format!("DELETE FROM {table} WHERE id = 3")).await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(4);
    let fields = value_field_types(&p.topic);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
    };
    assert_eq!(field("n")[1]["logicalType"], "decimal", "{:?}", field("n"));
    assert_eq!(
        field("n"),
        field("nn"),
        "a domain of a domain maps as its base"
    );
    assert_eq!(field("dt")[1]["logicalType"], "timestamp-micros");
    assert_eq!(field("dt")[2], "string");
    assert_eq!(field("an"), serde_json::json!(["null", "string"]));

    // Into PostgreSQL: typed columns, the text forms as literals.
    let target = format!("{}_rb", p.name);
    let into = format!("{}?table=public.{target}", pg_url());
    let rebuilt = kappa(&[
        "rebuild",
        "--topic",
        &p.topic,
        "--into",
        &into,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
    ]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let output = kappa(&[
        "verify",
        "--topic",
        &p.topic,
        "--source",
        &pg_url(),
        "--table",
        &table,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
        "--rebuilt",
        &into,
    ]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    let same: i64 = admin
        .query_one(
            &format!(
                "SELECT count(*) FROM {table} s JOIN public.{target} r USING (id)
                 WHERE s.ts IS NOT DISTINCT FROM r.ts AND s.tstz IS NOT DISTINCT FROM r.tstz
                   AND s.d = r.d AND s.t = r.t AND s.n::text = r.n::text AND s.dt = r.dt
                   AND pg_typeof(r.ts) = 'timestamp'::regtype"
            ),
            &[],
        )
        .await
        .expect("compare in PostgreSQL")
        .get(0);
    assert_eq!(same, 4, "every rebuilt row equals its source row in SQL");
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS public.{target}"))
        .await
        .expect("drop rebuilt table");
    p.cleanup().await;
    admin
        .batch_execute(&format!(
            "DROP DOMAIN public.{d_tstz}; DROP DOMAIN public.{d_dom}; DROP DOMAIN public.{d_num};"
        ))
        .await
        .expect("drop domains");
}

/// A key schema never changes, so a key value its Avro type cannot hold is
/// a clear error naming the table, the key column and the value.
#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_range_key_stops_with_an_error_naming_it() {
    let mut p = Pipeline::new("kappa_far_key", "at timestamptz PRIMARY KEY, v text").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} VALUES ('294276-12-31 23:59:59.999999+00', 'x')"
    ))
    .await;
    p.start();
    let status = p.daemon.wait_exit();
    assert!(!status.success(), "{}", p.log());
    let log = p.log();
    for part in [
        p.name.as_str(),
        "column at",
        "294276-12-31 23:59:59.999999+00",
        "key",
    ] {
        assert!(log.contains(part), "{part} not in:\n{log}");
    }
    p.cleanup().await;
}

/// The string branch added to timestamp fields is accepted by the real
/// registry's BACKWARD check over a schema written before it, which refuses
/// a narrowing change on the same subject.
#[tokio::test(flavor = "multi_thread")]
async fn the_registry_accepts_the_widened_timestamp_fields() {
    use kappa_schemas::{Column, ColumnType, Registry, TableAvro, TableName, TableSchema};
    let subject = format!("{}-value", unique("kappa_widen"));
    let before = r#"{"type":"record","name":"Value","namespace":"w","fields":[
        {"name":"id","type":"long"},
        {"name":"ts","type":["null",{"type":"long","logicalType":"local-timestamp-micros"}],"default":null},
        {"name":"tstz","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null}]}"#;
    let column = |name: &str, column_type, nullable| Column {
        name: name.into(),
        column_type,
        nullable,
        source_type: "test".into(),
    };
    let table = TableSchema {
        name: TableName::new("public", "w"),
        columns: vec![
            column("id", ColumnType::Int64, false),
            column("ts", ColumnType::Timestamp, true),
            column("tstz", ColumnType::TimestampTz, true),
        ],
        key_columns: vec![0],
    };
    let after = TableAvro::new(&table, "w").expect("schemas").value_json;
    let registry = Registry::new(&registry_url());
    let old_id = registry
        .register(&subject, before)
        .await
        .expect("old schema");
    let new_id = registry
        .register(&subject, &after)
        .await
        .expect("widened schema accepted");
    assert_ne!(old_id, new_id);
    // Dropping the branch again would leave records the reader cannot read.
    let narrowed = after.replace(r#","string"]"#, "]");
    assert_ne!(narrowed, after);
    let refused = registry.register(&subject, &narrowed).await;
    assert!(
        refused.is_err(),
        "an incompatible change must be refused: {refused:?}"
    );
}

/// A domain created after kappa read the catalog, and a column of it added
/// while streaming: the Relation message names the domain's OID, kappa
/// reads the catalog's domains again before applying it, and the column
/// maps as its base type (decimal), not as text.
#[tokio::test(flavor = "multi_thread")]
async fn a_domain_created_while_streaming_maps_as_its_base_type() {
    let admin = pg().await;
    let domain = unique("kappa_d_late");
    let mut p = Pipeline::new("kappa_dlate", "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g FROM generate_series(1, 10) g"
    ))
    .await;
    p.start();
    let lsn = p.commit(&format!("UPDATE {table} SET v = -v")).await;
    p.wait_confirmed(&lsn).await;
    admin
        .batch_execute(&format!(
            "CREATE DOMAIN public.{domain} AS numeric(10,2) CHECK (VALUE > -1000)"
        ))
        .await
        .expect("create domain");
    p.commit(&format!(
        "ALTER TABLE {table} ADD COLUMN amount public.{domain}"
    ))
    .await;
    p.commit(&format!(
        "UPDATE {table} SET amount = id * 1.25 WHERE id <= 5; INSERT INTO {table} VALUES (11, 11, 99.99)"
    ))
    .await;
    let lsn = p.commit(&format!("DELETE FROM {table} WHERE id = 2")).await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    assert!(
        p.log()
            .contains("catalog read again for column types unknown at start"),
        "{}",
        p.log()
    );
    let fields = value_field_types(&p.topic);
    let amount = fields
        .iter()
        .find(|(name, _)| name == "amount")
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| panic!("no field amount in {fields:?}"));
    assert_eq!(amount[1]["logicalType"], "decimal", "{amount:?}");
    p.assert_verified(10);
    p.cleanup().await;
    admin
        .batch_execute(&format!("DROP DOMAIN public.{domain}"))
        .await
        .expect("drop domain");
}
