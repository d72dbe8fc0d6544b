//! `kappa.toml`: one file for the daemon, defaults in one place, unknown keys
//! refused by name. Secrets and addresses can be overridden from the
//! environment (`KAPPA_POSTGRES_URL`, `KAPPA_POSTGRES_PASSWORD`,
//! `KAPPA_KAFKA_BROKERS`, `KAPPA_SCHEMA_REGISTRY_URL`) so they need not be in
//! the file.

use anyhow::{bail, Context};
use kappa_schemas::TableName;
use kappa_sink::KafkaConfig;
use kappa_source::postgres::PostgresSourceConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The connector's name: the key of its offsets record.
    #[serde(default = "default_name")]
    pub name: String,
    pub source: SourceConfig,
    #[serde(default)]
    pub kafka: KafkaSection,
    #[serde(default)]
    pub schema_registry: RegistrySection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub postgres: Option<PostgresSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub url: String,
    pub password: Option<String>,
    /// `schema.table` names or patterns (`*` matches any characters).
    pub tables: Vec<String>,
    /// Patterns of tables to leave out.
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// Leave out tables without a key (warning) instead of refusing to start.
    #[serde(default)]
    pub skip_tables_without_key: bool,
    /// Per-table options, keyed by `schema.table`.
    #[serde(default)]
    pub table_options: BTreeMap<String, TableOptions>,
    #[serde(default = "default_name")]
    pub slot: String,
    #[serde(default = "default_name")]
    pub publication: String,
    #[serde(default = "default_chunk_rows")]
    pub snapshot_chunk_rows: usize,
}

/// What to do when an UPDATE leaves a TOASTed value unchanged and the stream
/// does not carry it (REPLICA IDENTITY DEFAULT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnchangedToast {
    /// Refuse to start, printing the `REPLICA IDENTITY FULL` fix.
    #[default]
    Refuse,
    /// Read the current row by key (see `source/src/postgres/toast.rs`).
    Fetch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableOptions {
    #[serde(default)]
    pub unchanged_toast: UnchangedToast,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    #[serde(default = "default_brokers")]
    pub brokers: String,
    #[serde(default = "default_name")]
    pub topic_prefix: String,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    #[serde(default = "default_offsets_topic")]
    pub offsets_topic: String,
    /// Extra librdkafka properties (security settings and the like).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    #[serde(default = "default_registry")]
    pub url: String,
}

fn default_name() -> String {
    "kappa".into()
}
fn default_chunk_rows() -> usize {
    10_000
}
pub fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_partitions() -> i32 {
    1
}
fn default_replication_factor() -> i32 {
    1
}
fn default_offsets_topic() -> String {
    "kappa-offsets".into()
}
pub fn default_registry() -> String {
    "http://127.0.0.1:8081".into()
}

impl Default for KafkaSection {
    fn default() -> Self {
        Self {
            brokers: default_brokers(),
            topic_prefix: default_name(),
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            offsets_topic: default_offsets_topic(),
            properties: BTreeMap::new(),
        }
    }
}

impl Default for RegistrySection {
    fn default() -> Self {
        Self {
            url: default_registry(),
        }
    }
}

impl Config {
    /// Reads and checks a config file, then applies environment overrides.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("config file {} is invalid", path.display()))?;
        config.apply_env(|name| std::env::var(name).ok());
        config.check()?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(postgres) = self.source.postgres.as_mut() {
            if let Some(url) = var("KAPPA_POSTGRES_URL") {
                postgres.url = url;
            }
            if let Some(password) = var("KAPPA_POSTGRES_PASSWORD") {
                postgres.password = Some(password);
            }
        }
        if let Some(brokers) = var("KAPPA_KAFKA_BROKERS") {
            self.kafka.brokers = brokers;
        }
        if let Some(url) = var("KAPPA_SCHEMA_REGISTRY_URL") {
            self.schema_registry.url = url;
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let Some(postgres) = &self.source.postgres else {
            bail!("config has no [source.postgres] section: kappa needs a source to read from");
        };
        if postgres.tables.is_empty() {
            bail!("[source.postgres] tables is empty: list the tables to capture, e.g. tables = [\"public.orders\"]");
        }
        for table in &postgres.tables {
            TableName::parse(table)
                .map_err(|e| anyhow::anyhow!("[source.postgres] tables: {e}"))?;
        }
        if self.kafka.partitions < 1 {
            bail!("[kafka] partitions must be at least 1");
        }
        if postgres.snapshot_chunk_rows == 0 {
            bail!("[source.postgres] snapshot_chunk_rows must be at least 1");
        }
        Ok(())
    }

    /// The PostgreSQL reader's settings.
    pub fn postgres(&self) -> anyhow::Result<PostgresSourceConfig> {
        let Some(postgres) = &self.source.postgres else {
            bail!("config has no [source.postgres] section");
        };
        Ok(PostgresSourceConfig {
            url: postgres.url.clone(),
            password: postgres.password.clone(),
            tables: postgres.tables.clone(),
            exclude_tables: postgres.exclude_tables.clone(),
            slot: postgres.slot.clone(),
            publication: postgres.publication.clone(),
            snapshot_chunk_rows: postgres.snapshot_chunk_rows,
            skip_tables_without_key: postgres.skip_tables_without_key,
            toast_fetch: postgres
                .table_options
                .iter()
                .filter(|(_, options)| options.unchanged_toast == UnchangedToast::Fetch)
                .map(|(name, _)| TableName::parse(name).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub fn kafka(&self) -> KafkaConfig {
        let mut kafka = KafkaConfig::new(self.kafka.brokers.clone());
        kafka.properties = self.kafka.properties.clone().into_iter().collect();
        kafka
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source.postgres]
url = "postgres://postgres@127.0.0.1/postgres"
tables = ["public.demo"]
"#;

    #[test]
    fn defaults_fill_the_rest() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        config.check().unwrap();
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(config.kafka.offsets_topic, "kappa-offsets");
        assert_eq!(config.postgres().unwrap().slot, "kappa");
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key() {
        let text = format!("{MINIMAL}\n[kafka]\nbrokerz = \"x\"\n");
        let err = toml::from_str::<Config>(&text).unwrap_err().to_string();
        assert!(err.contains("brokerz"), "{err}");
    }

    #[test]
    fn environment_overrides_secrets_and_addresses() {
        let mut config: Config = toml::from_str(MINIMAL).unwrap();
        config.apply_env(|name| match name {
            "KAPPA_POSTGRES_PASSWORD" => Some("s3cret".into()),
            "KAPPA_KAFKA_BROKERS" => Some("broker:9093".into()),
            _ => None,
        });
        assert_eq!(
            config.postgres().unwrap().password.as_deref(),
            Some("s3cret")
        );
        assert_eq!(config.kafka.brokers, "broker:9093");
    }

    #[test]
    fn table_options_choose_toast_fetch() {
        let text = format!(
            "{MINIMAL}\n[source.postgres.table_options.\"public.docs\"]\nunchanged_toast = \"fetch\"\n"
        );
        let config: Config = toml::from_str(&text).unwrap();
        config.check().unwrap();
        assert_eq!(
            config.postgres().unwrap().toast_fetch,
            vec![TableName::new("public", "docs")]
        );
        let bad = text.replace("\"fetch\"", "\"placeholder\"");
        assert!(toml::from_str::<Config>(&bad).is_err());
    }

    #[test]
    fn bad_table_names_are_refused() {
        let text = MINIMAL.replace("public.demo", "demo");
        let config: Config = toml::from_str(&text).unwrap();
        assert!(config
            .check()
            .unwrap_err()
            .to_string()
            .contains("schema.table"));
    }
}
