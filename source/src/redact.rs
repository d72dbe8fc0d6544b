//! Connection strings as they may appear in messages and logs: with every
//! password replaced by `***`. A source URL may carry its password
//! (`postgres://u:pw@h/db`, `mysql://u:pw@h/`, `?password=pw`, or the
//! PostgreSQL key/value form `host=h password=pw`), and errors that name the
//! server they failed on must not print it.

/// `url` with any password replaced by `***`. Clients disagree on where
/// the credentials end (tokio-postgres at the first `@`, URL parsers at the
/// last `@` of the authority), and a password may hold `?`, `/` or `@`: so
/// everything from the first `:` of the credentials up to the *last* `@` is
/// hidden. That never shows a password; it can hide more than one (a path
/// or parameter holding `@`), which is the safe side.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_key_value(url);
    };
    let (credentials, after) = match rest.rsplit_once('@') {
        Some((credentials, after)) => (Some(credentials), after),
        None => (None, rest),
    };
    let credentials = match credentials {
        Some(credentials) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{credentials}@"),
        },
        None => String::new(),
    };
    let after = match after.split_once('?') {
        Some((before, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if is_password_key(key) => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{before}?{}", params.join("&"))
        }
        None => after.to_string(),
    };
    format!("{scheme}://{credentials}{after}")
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass")
}

/// The key/value form (`host=h password='p w' user=u`): the value after
/// `password=`, quoted or not, becomes `***`.
fn redact_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_password_key(rest) {
        let (before, from_key) = rest.split_at(at);
        out.push_str(before);
        let Some(eq) = from_key.find('=') else {
            out.push_str(from_key);
            return out;
        };
        out.push_str(&from_key[..=eq]);
        out.push_str("***");
        let value = from_key[eq + 1..].trim_start();
        rest = skip_value(value);
    }
    out.push_str(rest);
    out
}

/// Where a `password` key starts (at the beginning or after whitespace, then
/// optional spaces and `=`).
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let at = from + found;
        let starts_word = at == 0 || lower[..at].ends_with(|c: char| c.is_whitespace());
        let after = lower[at + "password".len()..].trim_start();
        if starts_word && after.starts_with('=') {
            return Some(at);
        }
        from = at + "password".len();
    }
    None
}

/// What follows one value of the key/value form: a single-quoted value ends
/// at its closing quote (`\'` escapes one), an unquoted one at whitespace.
fn skip_value(value: &str) -> &str {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return &quoted[i + 1..],
                _ => escaped = false,
            }
        }
        ""
    } else {
        let end = value.find(char::is_whitespace).unwrap_or(value.len());
        &value[end..]
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_password_in_the_authority_is_replaced() {
        assert_eq!(
            redact_url("postgres://kappa:s3cret@db:5432/app"),
            "postgres://kappa:***@db:5432/app"
        );
        assert_eq!(
            redact_url("mysql://root:p@ss@127.0.0.1:3306/"),
            "mysql://root:***@127.0.0.1:3306/"
        );
        assert_eq!(redact_url("mysql://root@h/"), "mysql://root@h/");
        assert_eq!(redact_url("postgres://h:5432/db"), "postgres://h:5432/db");
    }

    /// Passwords holding the characters that end credentials for one client
    /// or another never show (tokio-postgres reads up to the first `@`).
    #[test]
    fn passwords_with_query_path_or_at_characters_stay_hidden() {
        for (url, secret) in [
            ("postgres://kappa:pa?ss@db/app", "pa?ss"),
            ("postgres://kappa:pa/ss@db/app", "pa/ss"),
            ("mysql://root:p@ss@127.0.0.1:3306/", "p@ss"),
            (
                "postgres://kappa:s%40cret@db/app?sslmode=require",
                "s%40cret",
            ),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} shown as {shown}");
            assert!(shown.starts_with(&url[..url.find(':').unwrap_or(0)]));
        }
        assert_eq!(
            redact_url("postgres://kappa:pa?ss@db/app"),
            "postgres://kappa:***@db/app"
        );
    }

    #[test]
    fn a_password_parameter_is_replaced() {
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=x&application_name=k"),
            "postgres://u@h/db?sslmode=require&password=***&application_name=k"
        );
    }

    #[test]
    fn the_key_value_form_is_redacted_quoted_or_not() {
        assert_eq!(
            redact_url("host=h password=s3cret user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_url("host=h password = 'a b\\' c' user=u"),
            "host=h password =*** user=u"
        );
        assert_eq!(redact_url("host=h user=u"), "host=h user=u");
        assert!(!redact_url("password=x").contains('x'));
    }
}
