//! Which database `kappa verify` reads when the command line does not say.

/// The database `kappa verify` reads, and its password: `--source` (password
/// from the variable of its scheme), else the config's source (the config
/// applied its own KAPPA_POSTGRES_URL / KAPPA_MYSQL_URL override), else
/// whichever of the two variables is set. A PostgreSQL variable never
/// redirects a MySQL config, nor the other way round.
pub fn verify_source(
    source: Option<String>,
    config: Option<&crate::config::Config>,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(String, Option<String>)> {
    if let Some(url) = source {
        let password = if super::database::is_mysql_url(&url) {
            var("KAPPA_MYSQL_PASSWORD")
        } else {
            var("KAPPA_POSTGRES_PASSWORD")
        };
        return Ok((url, password));
    }
    if let Some(config) = config {
        return Ok(config.source.section().url_and_password());
    }
    match (var("KAPPA_POSTGRES_URL"), var("KAPPA_MYSQL_URL")) {
        (Some(url), None) => Ok((url, var("KAPPA_POSTGRES_PASSWORD"))),
        (None, Some(url)) => Ok((url, var("KAPPA_MYSQL_PASSWORD"))),
        (Some(_), Some(_)) => anyhow::bail!(
            "both KAPPA_POSTGRES_URL and KAPPA_MYSQL_URL are set: name the source database with --source, or --config kappa.toml"
        ),
        (None, None) => anyhow::bail!(
            "name the source database: --source postgres://… or mysql://… (or KAPPA_POSTGRES_URL / KAPPA_MYSQL_URL), or --config kappa.toml"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::verify_source;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_postgres_variable_does_not_redirect_a_mysql_config() {
        let config: crate::config::Config = toml::from_str(
            r#"name = "c"
[source.mysql]
url = "mysql://root@db:3306/"
tables = ["shop.*"]
server_id = 5701
[kafka]
brokers = "k:9092"
[schema_registry]
url = "http://r:8081"
"#,
        )
        .expect("config");
        let (url, _) = verify_source(
            None,
            Some(&config),
            env(&[("KAPPA_POSTGRES_URL", "postgres://pg@other/db")]),
        )
        .expect("source");
        assert_eq!(url, "mysql://root@db:3306/");
    }

    #[test]
    fn without_a_config_the_one_variable_set_names_the_source() {
        let (url, password) = verify_source(
            None,
            None,
            env(&[
                ("KAPPA_MYSQL_URL", "mysql://m@h/"),
                ("KAPPA_MYSQL_PASSWORD", "pw"),
            ]),
        )
        .expect("source");
        assert_eq!(
            (url.as_str(), password.as_deref()),
            ("mysql://m@h/", Some("pw"))
        );
        let both = verify_source(
            None,
            None,
            env(&[
                ("KAPPA_MYSQL_URL", "mysql://m@h/"),
                ("KAPPA_POSTGRES_URL", "postgres://p@h/"),
            ]),
        );
        assert!(both.is_err());
        assert!(verify_source(None, None, env(&[])).is_err());
        let (url, _) =
            verify_source(Some("postgres://x@h/".into()), None, env(&[])).expect("source");
        assert_eq!(url, "postgres://x@h/");
    }
}
