//! The few DDL statements of the binlog's QUERY events the reader acts on:
//! `TRUNCATE [TABLE] t` (every live key gets a tombstone) and
//! `ALTER TABLE t …` (logged; the next TABLE_MAP brings the new shape).
//! Pure text parsing, so a table is never matched by a substring of
//! another statement.

use kappa_schemas::TableName;

/// What a statement does to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ddl {
    Truncate(TableName),
    Alter(TableName),
}

/// The table a TRUNCATE or ALTER TABLE statement names (unqualified names
/// are in `default_db`, the QUERY event's current database).
pub(crate) fn parse(sql: &str, default_db: &str) -> Option<Ddl> {
    let mut words = Words(sql.trim_start());
    let first = words.keyword()?;
    match first.as_str() {
        "truncate" => {
            let mut rest = words.clone();
            if rest.keyword().as_deref() == Some("table") {
                words = rest;
            }
            words.table(default_db).map(Ddl::Truncate)
        }
        "alter" => {
            loop {
                match words.keyword()?.as_str() {
                    "table" => break,
                    "online" | "ignore" => continue,
                    _ => return None,
                }
            }
            let mut rest = words.clone();
            if rest.keyword().as_deref() == Some("if") {
                rest.keyword(); // EXISTS
                words = rest;
            }
            words.table(default_db).map(Ddl::Alter)
        }
        _ => None,
    }
}

/// How the server compares table (and database) names: its
/// `lower_case_table_names`. 0 (Linux's default): as written, case
/// sensitive; 1 (stored lower-cased) and 2 (stored as written, compared
/// lower-cased, macOS): case-insensitive. A statement naming `Orders` then
/// acts on the table the catalog lists as `orders`, and kappa must match it
/// the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum NameCase {
    #[default]
    Sensitive,
    Insensitive,
}

impl NameCase {
    /// From the value of `@@lower_case_table_names`.
    pub(crate) fn from_setting(lower_case_table_names: u8) -> Self {
        match lower_case_table_names {
            0 => NameCase::Sensitive,
            _ => NameCase::Insensitive,
        }
    }

    /// The captured table (a key of `tables`) a statement's `name` means.
    pub(crate) fn find<'a, V>(
        self,
        tables: &'a std::collections::HashMap<TableName, V>,
        name: &TableName,
    ) -> Option<(&'a TableName, &'a V)> {
        if let Some(found) = tables.get_key_value(name) {
            return Some(found);
        }
        match self {
            NameCase::Sensitive => None,
            // The server's own fold is per character, as Unicode lower-casing.
            NameCase::Insensitive => tables.iter().find(|(t, _)| {
                t.schema.to_lowercase() == name.schema.to_lowercase()
                    && t.table.to_lowercase() == name.table.to_lowercase()
            }),
        }
    }
}

#[derive(Clone)]
struct Words<'a>(&'a str);

/// `text` from its first token on: white space and comments (`/* … */`,
/// `-- …`, `# …`) skipped, so `/* app */ TRUNCATE t` is still a TRUNCATE.
/// An executable comment's opening (`/*!40101 `) is skipped and its content
/// read as SQL, as the server runs it.
fn skip_blank(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("/*!") {
            text = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.find("*/").map_or("", |end| &rest[end + 2..]);
        } else if text.starts_with("-- ")
            || text.starts_with("--\t")
            || text == "--"
            || text.starts_with('#')
        {
            text = text.find('\n').map_or("", |end| &text[end + 1..]);
        } else {
            return text;
        }
    }
}

impl Words<'_> {
    /// The next bare word, lower-cased.
    fn keyword(&mut self) -> Option<String> {
        let text = skip_blank(self.0);
        let end = text
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(text.len());
        if end == 0 {
            return None;
        }
        self.0 = &text[end..];
        Some(text[..end].to_ascii_lowercase())
    }

    /// One identifier, `` `quoted` `` (doubled backticks inside) or bare.
    fn identifier(&mut self) -> Option<String> {
        let text = skip_blank(self.0);
        if let Some(quoted) = text.strip_prefix('`') {
            let mut name = String::new();
            let mut chars = quoted.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '`' {
                    if chars.peek().map(|&(_, n)| n) == Some('`') {
                        chars.next();
                        name.push('`');
                        continue;
                    }
                    self.0 = &quoted[i + 1..];
                    return Some(name);
                }
                name.push(c);
            }
            None
        } else {
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(text.len());
            if end == 0 {
                return None;
            }
            self.0 = &text[end..];
            Some(text[..end].to_string())
        }
    }

    /// `db.table` or `table` (in `default_db`).
    fn table(&mut self, default_db: &str) -> Option<TableName> {
        let first = self.identifier()?;
        if let Some(rest) = skip_blank(self.0).strip_prefix('.') {
            self.0 = rest;
            let table = self.identifier()?;
            Some(TableName::new(first, table))
        } else {
            Some(TableName::new(default_db, first))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_names_one_table() {
        let t = |db: &str, t: &str| Some(Ddl::Truncate(TableName::new(db, t)));
        assert_eq!(
            parse("TRUNCATE TABLE shop.orders", "x"),
            t("shop", "orders")
        );
        assert_eq!(parse("truncate `my db`.`a``b`", "x"), t("my db", "a`b"));
        assert_eq!(parse("TRUNCATE orders", "shop"), t("shop", "orders"));
        assert_eq!(parse("  truncate table t;", "d"), t("d", "t"));
    }

    #[test]
    fn comments_are_not_words() {
        let t = |db: &str, t: &str| Some(Ddl::Truncate(TableName::new(db, t)));
        assert_eq!(
            parse("/* app: cleanup */ TRUNCATE TABLE shop.orders", "x"),
            t("shop", "orders")
        );
        assert_eq!(
            parse(
                "-- nightly\n# again\ntruncate /* inline */ table d /* x */ . t",
                "x"
            ),
            t("d", "t")
        );
        assert_eq!(parse("/*!40000 TRUNCATE t */", "d"), t("d", "t"));
        assert_eq!(parse("/* unterminated TRUNCATE t", "d"), None);
        assert_eq!(
            parse("/* TRUNCATE t */ INSERT INTO t VALUES (1)", "d"),
            None
        );
    }

    #[test]
    fn alter_table_variants() {
        let a = |db: &str, t: &str| Some(Ddl::Alter(TableName::new(db, t)));
        assert_eq!(parse("ALTER TABLE d.t ADD COLUMN c INT", "x"), a("d", "t"));
        assert_eq!(parse("alter online table t add c int", "d"), a("d", "t"));
        assert_eq!(
            parse("ALTER TABLE IF EXISTS `d`.t DROP c", "x"),
            a("d", "t")
        );
    }

    #[test]
    fn other_statements_name_nothing() {
        assert_eq!(parse("INSERT INTO truncate_log VALUES (1)", "d"), None);
        assert_eq!(parse("CREATE TABLE t (a int)", "d"), None);
        assert_eq!(parse("ALTER DATABASE d CHARACTER SET utf8mb4", "d"), None);
        assert_eq!(parse("", "d"), None);
    }

    #[test]
    fn names_match_as_the_servers_lower_case_table_names_says() {
        let mut tables = std::collections::HashMap::new();
        tables.insert(TableName::new("Shop", "Orders"), 1);
        tables.insert(TableName::new("shop", "lines"), 2);
        let named = |sql: &str| match parse(sql, "shop") {
            Some(Ddl::Truncate(name)) => name,
            other => panic!("{sql}: {other:?}"),
        };
        let sensitive = NameCase::from_setting(0);
        let insensitive = NameCase::from_setting(1);
        assert_eq!(NameCase::from_setting(2), NameCase::Insensitive);
        // Exact names match either way.
        assert_eq!(
            sensitive
                .find(&tables, &named("TRUNCATE Shop.Orders"))
                .map(|(_, v)| *v),
            Some(1)
        );
        // Other cases only when the server folds them.
        for sql in [
            "TRUNCATE TABLE shop.orders",
            "truncate `SHOP`.`ORDERS`",
            "TRUNCATE Shop.orders",
        ] {
            assert_eq!(sensitive.find(&tables, &named(sql)), None, "{sql}");
            let (name, v) = insensitive.find(&tables, &named(sql)).expect(sql);
            assert_eq!((name, *v), (&TableName::new("Shop", "Orders"), 1), "{sql}");
        }
        assert_eq!(
            insensitive
                .find(&tables, &named("TRUNCATE LINES"))
                .map(|(_, v)| *v),
            Some(2)
        );
        assert_eq!(
            insensitive.find(&tables, &named("TRUNCATE shop.order")),
            None
        );
    }
}
