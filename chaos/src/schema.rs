//! The chaos tables: ten of them plus one with only key columns, single and
//! composite keys, the commonly used types of each database with NULLs and
//! edge values, and columns that take values over 1 MB. Every row is known
//! to the writer by one integer, its *kid*, from which its key columns are
//! derived (and back), so primary-key changes and key reuse are easy to
//! plan and the key set can be re-read after an uncertain commit.

use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

/// How a table's key columns derive from a kid.
#[derive(Debug, Clone, Copy)]
pub enum KeyShape {
    /// `id int`.
    Int,
    /// `id bigint`.
    Big,
    /// `(k1 int, k2 varchar(16))`: k1 = kid div 8, k2 one of [`TAGS`].
    IntTag,
    /// `(k1 bigint, k2 int, k3 smallint)`.
    Triple,
}

/// The text half of `IntTag` keys: unicode, quotes, spaces, empty.
const TAGS: [&str; 8] = ["", "a", "Ä", "z z", "'q'", "back\\slash", "😀", "%_"];
const TRIPLE_BASE: i64 = 5_000_000_000;

impl KeyShape {
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            KeyShape::Int | KeyShape::Big => &["id"],
            KeyShape::IntTag => &["k1", "k2"],
            KeyShape::Triple => &["k1", "k2", "k3"],
        }
    }

    fn types(self, d: Dialect) -> Vec<&'static str> {
        match (self, d) {
            (KeyShape::Int, _) => vec!["int"],
            (KeyShape::Big, _) => vec!["bigint"],
            (KeyShape::IntTag, _) => vec!["int", "varchar(16)"],
            (KeyShape::Triple, _) => vec!["bigint", "int", "smallint"],
        }
    }

    /// The key columns' literals for `kid`.
    pub fn literals(self, d: Dialect, kid: i64) -> Vec<String> {
        match self {
            KeyShape::Int | KeyShape::Big => vec![kid.to_string()],
            KeyShape::IntTag => vec![
                kid.div_euclid(8).to_string(),
                text_literal(d, TAGS[kid.rem_euclid(8) as usize]),
            ],
            KeyShape::Triple => vec![
                (TRIPLE_BASE + kid.div_euclid(64)).to_string(),
                (kid.div_euclid(8).rem_euclid(8) - 4).to_string(),
                (kid.rem_euclid(8) * 4000 - 32000).to_string(),
            ],
        }
    }

    /// The kid of key columns read back as text (the inverse of `literals`).
    pub fn kid(self, texts: &[String]) -> Option<i64> {
        let num = |i: usize| texts.get(i)?.trim().parse::<i64>().ok();
        match self {
            KeyShape::Int | KeyShape::Big => num(0),
            KeyShape::IntTag => {
                let tag = TAGS
                    .iter()
                    .position(|t| Some(*t) == texts.get(1).map(String::as_str))?;
                Some(num(0)? * 8 + tag as i64)
            }
            KeyShape::Triple => {
                Some((num(0)? - TRIPLE_BASE) * 64 + (num(1)? + 4) * 8 + (num(2)? + 32000) / 4000)
            }
        }
    }

    /// `a = x AND b = y` for `kid`.
    pub fn predicate(self, d: Dialect, kid: i64) -> String {
        self.columns()
            .iter()
            .zip(self.literals(d, kid))
            .map(|(c, v)| format!("{c} = {v}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// The value column kinds; each table takes a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Big,
    Small,
    Numeric,
    Double,
    Real,
    Bool,
    Text,
    Varchar,
    Bytes,
    Date,
    Timestamp,
    Timestamptz,
    Time,
    Uuid,
    Json,
    /// Text that is sometimes over 1 MB.
    Large,
    /// Bytes that are sometimes over 1 MB.
    LargeBytes,
}

impl Kind {
    fn sql_type(self, d: Dialect) -> &'static str {
        use Dialect::*;
        match (self, d) {
            (Kind::Int, _) => "int",
            (Kind::Big, _) => "bigint",
            (Kind::Small, _) => "smallint",
            (Kind::Numeric, Postgres) => "numeric(30,8)",
            (Kind::Numeric, Mysql) => "decimal(30,8)",
            (Kind::Double, Postgres) => "double precision",
            (Kind::Double, Mysql) => "double",
            (Kind::Real, Postgres) => "real",
            (Kind::Real, Mysql) => "float",
            (Kind::Bool, _) => "boolean",
            (Kind::Text, _) => "text",
            (Kind::Varchar, _) => "varchar(40)",
            (Kind::Bytes, Postgres) => "bytea",
            (Kind::Bytes, Mysql) => "varbinary(64)",
            (Kind::Date, _) => "date",
            (Kind::Timestamp, Postgres) => "timestamp(6)",
            (Kind::Timestamp, Mysql) => "datetime(6)",
            (Kind::Timestamptz, Postgres) => "timestamptz",
            (Kind::Timestamptz, Mysql) => "timestamp(6) NULL",
            (Kind::Time, Postgres) => "time(6)",
            (Kind::Time, Mysql) => "time(6)",
            (Kind::Uuid, Postgres) => "uuid",
            (Kind::Uuid, Mysql) => "char(36)",
            (Kind::Json, Postgres) => "jsonb",
            (Kind::Json, Mysql) => "json",
            (Kind::Large, Postgres) => "text",
            (Kind::Large, Mysql) => "longtext",
            (Kind::LargeBytes, Postgres) => "bytea",
            (Kind::LargeBytes, Mysql) => "longblob",
        }
    }

    /// A value of this kind as SQL: NULL one time in ten, an edge value one
    /// time in five, else an ordinary random one.
    pub fn literal(self, d: Dialect, rng: &mut Rng) -> String {
        if rng.chance(0.1) {
            return "NULL".into();
        }
        let edge = rng.chance(0.2);
        use Dialect::*;
        match self {
            Kind::Int => int_literal(rng, edge, i32::MIN.into(), i32::MAX.into()),
            Kind::Big => int_literal(rng, edge, i64::MIN, i64::MAX),
            Kind::Small => int_literal(rng, edge, i16::MIN.into(), i16::MAX.into()),
            Kind::Numeric => {
                if edge {
                    rng.pick(&[
                        "9999999999999999999999.99999999",
                        "-9999999999999999999999.99999999",
                        "0.00000001",
                        "0",
                        "-0.00000001",
                    ])
                    .to_string()
                } else {
                    format!(
                        "{}.{:08}",
                        rng.range(-1_000_000_000, 1_000_000_000),
                        rng.range(0, 100_000_000)
                    )
                }
            }
            Kind::Double => {
                if edge {
                    rng.pick(&[
                        "1.7976931348623157e308",
                        "-1.7976931348623157e308",
                        "2.2250738585072014e-308",
                        "0",
                        "-1e-300",
                    ])
                    .to_string()
                } else {
                    format!(
                        "{:e}",
                        (rng.unit() - 0.5) * 10f64.powi(rng.range(-20, 20) as i32)
                    )
                }
            }
            Kind::Real => {
                if edge {
                    rng.pick(&["3.4028234e38", "-3.4028234e38", "1.1754944e-38", "0"])
                        .to_string()
                } else {
                    // Shortest text that reads back as this f32 in both servers.
                    format!("{:e}", ((rng.unit() - 0.5) * 1000.0) as f32)
                }
            }
            Kind::Bool => rng.pick(&["true", "false"]).to_string(),
            Kind::Text | Kind::Varchar => text_literal(
                d,
                &random_text(rng, edge, if self == Kind::Varchar { 40 } else { 300 }),
            ),
            Kind::Bytes => {
                let n = if edge {
                    rng.pick(&[0usize, 64]).to_owned()
                } else {
                    rng.below(40)
                };
                bytes_literal(d, &(0..n).map(|_| rng.below(256) as u8).collect::<Vec<_>>())
            }
            Kind::Date => match (edge, d) {
                (true, Postgres) => quoted(rng.pick(&[
                    "0001-01-01",
                    "9999-12-31",
                    "1970-01-01",
                    "2000-02-29",
                    "4713-01-01 BC",
                ])),
                (true, Mysql) => {
                    quoted(rng.pick(&["1000-01-01", "9999-12-31", "1970-01-01", "2000-02-29"]))
                }
                _ => quoted(format!(
                    "{:04}-{:02}-{:02}",
                    rng.range(1001, 9999),
                    rng.range(1, 13),
                    rng.range(1, 29)
                )),
            },
            Kind::Timestamp => match (edge, d) {
                (true, Postgres) => quoted(rng.pick(&[
                    "0001-01-01 00:00:00",
                    "9999-12-31 23:59:59.999999",
                    "1970-01-01 00:00:00",
                    "1969-12-31 23:59:59.999999",
                ])),
                (true, Mysql) => quoted(rng.pick(&[
                    "1000-01-01 00:00:00",
                    "9999-12-31 23:59:59.999999",
                    "1970-01-01 00:00:00",
                    "1969-12-31 23:59:59.999999",
                ])),
                _ => quoted(random_datetime(rng, 1001, 9999)),
            },
            Kind::Timestamptz => match (edge, d) {
                (true, Postgres) => quoted(rng.pick(&[
                    "0001-01-01 00:00:00+00",
                    "9999-12-31 23:59:59.999999+00",
                    "1970-01-01 00:00:00+00",
                    "2000-01-01 00:00:00+14",
                ])),
                (true, Mysql) => quoted(rng.pick(&[
                    "1970-01-01 00:00:01",
                    "2038-01-19 03:14:07.999999",
                    "2000-01-01 00:00:00",
                ])),
                (false, Postgres) => quoted(format!(
                    "{}+{:02}",
                    random_datetime(rng, 1800, 2200),
                    rng.range(0, 13)
                )),
                (false, Mysql) => quoted(random_datetime(rng, 1971, 2037)),
            },
            Kind::Time => match (edge, d) {
                (true, Postgres) => quoted(rng.pick(&[
                    "00:00:00",
                    "23:59:59.999999",
                    "24:00:00",
                    "12:00:00.000001",
                ])),
                // Positive only: negative TIME with a fraction is issue [6] §1 (mysql_common).
                (true, Mysql) => {
                    quoted(rng.pick(&["00:00:00", "838:59:59", "23:59:59.999999", "100:00:00.5"]))
                }
                _ => quoted(format!(
                    "{:02}:{:02}:{:02}.{:06}",
                    rng.range(0, 24),
                    rng.range(0, 60),
                    rng.range(0, 60),
                    rng.range(0, 1_000_000)
                )),
            },
            Kind::Uuid => quoted(format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rng.next_u64() as u32,
                rng.next_u64() as u16,
                rng.next_u64() & 0xfff,
                rng.next_u64() & 0xfff,
                rng.next_u64() & 0xffff_ffff_ffff
            )),
            Kind::Json => {
                let doc = if edge {
                    rng.pick(&[
                        "{}",
                        "[]",
                        "null",
                        "\"\"",
                        "{\"deep\": {\"a\": [1, 2.5, -3e10, true, null, \"\\u00e9\"]}}",
                    ])
                    .to_string()
                } else {
                    format!(
                        "{{\"n\": {}, \"s\": \"v{}\", \"l\": [{}, null]}}",
                        rng.range(-1000, 1000),
                        rng.below(100),
                        rng.chance(0.5)
                    )
                };
                text_literal(d, &doc)
            }
            Kind::Large => {
                if rng.chance(0.15) {
                    // 32 hex digits × 40,000 = 1.28 MB, built by the server.
                    let n = rng.range(33_000, 45_000);
                    match d {
                        Postgres => format!("repeat(md5('{}'), {n})", rng.next_u64()),
                        Mysql => format!("REPEAT(MD5('{}'), {n})", rng.next_u64()),
                    }
                } else {
                    text_literal(d, &random_text(rng, edge, 2000))
                }
            }
            Kind::LargeBytes => {
                if rng.chance(0.1) {
                    // 16 bytes × 70,000 = 1.12 MB.
                    let n = rng.range(65_000, 80_000);
                    match d {
                        Postgres => {
                            format!("decode(repeat(md5('{}'), {n}), 'hex')", rng.next_u64())
                        }
                        Mysql => format!("UNHEX(REPEAT(MD5('{}'), {n}))", rng.next_u64()),
                    }
                } else {
                    bytes_literal(
                        d,
                        &(0..rng.below(200))
                            .map(|_| rng.below(256) as u8)
                            .collect::<Vec<_>>(),
                    )
                }
            }
        }
    }
}

fn int_literal(rng: &mut Rng, edge: bool, min: i64, max: i64) -> String {
    if edge {
        rng.pick(&[min, max, 0, -1, 1]).to_string()
    } else {
        rng.range(min / 4, max / 4).to_string()
    }
}

fn random_datetime(rng: &mut Rng, lo_year: i64, hi_year: i64) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        rng.range(lo_year, hi_year),
        rng.range(1, 13),
        rng.range(1, 29),
        rng.range(0, 24),
        rng.range(0, 60),
        rng.range(0, 60),
        rng.range(0, 1_000_000)
    )
}

fn random_text(rng: &mut Rng, edge: bool, max: usize) -> String {
    const PIECES: [&str; 12] = [
        "a", "b", "xyz", " ", "'", "\"", "\\", "é", "日本", "😀", "\t", "\n",
    ];
    if edge {
        return rng
            .pick(&["", " ", "'", "\\", "NULL", "\u{10ffff}", "trailing  "])
            .to_string();
    }
    let n = rng.below(max / 3 + 1);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(PIECES[rng.below(PIECES.len())]);
    }
    s.chars().take(max).collect()
}

fn quoted(s: impl AsRef<str>) -> String {
    format!("'{}'", s.as_ref())
}

/// A string literal: quotes doubled; MySQL also reads backslashes as escapes.
pub fn text_literal(d: Dialect, s: &str) -> String {
    let mut escaped = s.replace('\'', "''");
    if d == Dialect::Mysql {
        escaped = escaped.replace('\\', "\\\\");
    }
    format!("'{escaped}'")
}

fn bytes_literal(d: Dialect, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match d {
        Dialect::Postgres => format!("'\\x{hex}'::bytea"),
        Dialect::Mysql => format!("X'{hex}'"),
    }
}

/// One chaos table.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub key: KeyShape,
    pub columns: Vec<(String, Kind)>,
}

impl Table {
    pub fn create_sql(&self, d: Dialect, qualified: &str) -> String {
        let mut defs: Vec<String> = self
            .key
            .columns()
            .iter()
            .zip(self.key.types(d))
            .map(|(c, t)| format!("{c} {t} NOT NULL"))
            .collect();
        defs.extend(
            self.columns
                .iter()
                .map(|(c, k)| format!("{c} {}", k.sql_type(d))),
        );
        defs.push(format!("PRIMARY KEY ({})", self.key.columns().join(", ")));
        format!("CREATE TABLE {qualified} ({})", defs.join(", "))
    }

    /// A whole new row for `kid`: key literals, then one literal per column.
    pub fn row(&self, d: Dialect, kid: i64, rng: &mut Rng) -> Vec<String> {
        let mut values = self.key.literals(d, kid);
        values.extend(self.columns.iter().map(|(_, k)| k.literal(d, rng)));
        values
    }

    pub fn all_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.key.columns().iter().map(|c| c.to_string()).collect();
        cols.extend(self.columns.iter().map(|(c, _)| c.clone()));
        cols
    }
}

/// The eleven tables every seed writes.
pub fn tables() -> Vec<Table> {
    use Kind::*;
    let every = [
        Int,
        Big,
        Small,
        Numeric,
        Double,
        Real,
        Bool,
        Text,
        Varchar,
        Bytes,
        Date,
        Timestamp,
        Timestamptz,
        Time,
        Uuid,
        Json,
    ];
    let specs: Vec<(KeyShape, Vec<Kind>)> = vec![
        (KeyShape::Int, every.to_vec()),
        (KeyShape::IntTag, vec![Int, Text, Numeric, Timestamp]),
        (KeyShape::Triple, vec![Big, Double, Bool, Date]),
        (KeyShape::Big, vec![Large, LargeBytes, Varchar]),
        (KeyShape::Int, vec![Json, Uuid, Timestamptz, Time]),
        (KeyShape::IntTag, vec![Real, Small, Varchar, Text]),
        (KeyShape::Int, vec![Numeric, Double, Real, Int, Big, Small]),
        (KeyShape::Triple, vec![Text, Bytes, Json]),
        (KeyShape::Int, vec![Date, Timestamp, Timestamptz, Time]),
        (KeyShape::Big, vec![Bool, Uuid, Text, Large]),
        (KeyShape::IntTag, vec![]),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (key, kinds))| Table {
            name: format!("t{i:02}"),
            key,
            columns: kinds
                .into_iter()
                .enumerate()
                .map(|(j, k)| (format!("c{j:02}_{}", format!("{k:?}").to_lowercase()), k))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_round_trip_through_their_key_columns() {
        for shape in [
            KeyShape::Int,
            KeyShape::Big,
            KeyShape::IntTag,
            KeyShape::Triple,
        ] {
            for kid in -200..600 {
                let texts: Vec<String> = shape
                    .literals(Dialect::Postgres, kid)
                    .into_iter()
                    .map(
                        |l| match l.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
                            Some(inner) => inner.replace("''", "'"),
                            None => l,
                        },
                    )
                    .collect();
                assert_eq!(shape.kid(&texts), Some(kid), "{shape:?} {texts:?}");
            }
        }
    }

    #[test]
    fn mysql_text_literals_escape_backslashes_and_quotes() {
        assert_eq!(text_literal(Dialect::Mysql, "a'b\\c"), "'a''b\\\\c'");
        assert_eq!(text_literal(Dialect::Postgres, "a'b\\c"), "'a''b\\c'");
    }

    #[test]
    fn at_least_ten_tables_with_composite_keys() {
        let t = tables();
        assert!(t.len() >= 10);
        assert!(t.iter().any(|t| t.key.columns().len() > 1));
    }
}
