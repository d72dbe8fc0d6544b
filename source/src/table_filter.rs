//! Which tables a connector captures: `tables` patterns minus
//! `exclude_tables` patterns, the same rules for every source database.

use crate::error::SourceError;
use kappa_schemas::TableName;

/// The names among `names` matching any of `patterns` and none of
/// `excluded` (`schema.table` or `database.table`, `*` matching any run of
/// characters), in the order given.
pub(crate) fn select_tables(
    names: impl IntoIterator<Item = TableName>,
    patterns: &[String],
    excluded: &[String],
) -> Vec<TableName> {
    names
        .into_iter()
        .filter(|t| {
            let name = t.to_string();
            patterns.iter().any(|p| glob_match(p, &name))
                && !excluded.iter().any(|p| glob_match(p, &name))
        })
        .collect()
}

/// `*` matches any run of characters (including dots); everything else
/// matches itself.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Checks the tables a source's patterns matched: every pattern without `*`
/// names a table that exists, and something matched at all (`section` names
/// the config section to fix, e.g. `[source.mysql]`).
pub(crate) fn check_matched(
    names: &[TableName],
    patterns: &[String],
    excluded: &[String],
    section: &str,
) -> Result<(), SourceError> {
    for pattern in patterns {
        if !pattern.contains('*') && !names.iter().any(|n| &n.to_string() == pattern) {
            let table = TableName::parse(pattern).map_err(|reason| SourceError::BadTableName {
                name: pattern.clone(),
                reason,
            })?;
            return Err(SourceError::NoSuchTable { table });
        }
    }
    if names.is_empty() {
        return Err(SourceError::NoTableMatches {
            patterns: patterns.to_vec(),
            excluded: excluded.to_vec(),
            section: section.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_table_names() {
        assert!(glob_match("public.*", "public.orders"));
        assert!(glob_match("public.orders", "public.orders"));
        assert!(!glob_match("public.orders", "public.orders2"));
        assert!(glob_match("*.tmp_*", "sales.tmp_2024"));
        assert!(!glob_match("public.tmp_*", "sales.tmp_1"));
        assert!(glob_match("a*b*c", "a-b-c"));
        assert!(!glob_match("a*b*c", "a-c"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn excludes_win_over_patterns() {
        let names = vec![TableName::new("db", "a"), TableName::new("db", "tmp_1")];
        let chosen = select_tables(names, &["db.*".into()], &["db.tmp_*".into()]);
        assert_eq!(chosen, vec![TableName::new("db", "a")]);
    }
}
