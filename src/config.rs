//! `kappa.toml`: one file for the daemon, defaults in one place, unknown keys
//! refused by name. Secrets and addresses can be overridden from the
//! environment (`KAPPA_POSTGRES_URL`, `KAPPA_POSTGRES_PASSWORD` for a
//! `[source.postgres]`, `KAPPA_MYSQL_URL`, `KAPPA_MYSQL_PASSWORD` for a
//! `[source.mysql]`, `KAPPA_KAFKA_BROKERS`, `KAPPA_SCHEMA_REGISTRY_URL`) so
//! they need not be in the file; each applies to its own section only.

use anyhow::{bail, Context};
use kappa_schemas::TableName;
use kappa_sink::topics::TopicSpec;
use kappa_sink::KafkaConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

mod source;

pub use source::{Section, SourceConfig};

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
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// Prometheus metrics (`kappa_slot_lag_bytes`, `kappa_records_produced_total`,
/// `kappa_durable_lsn`), served at `http://<listen>/metrics` when set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub listen: Option<std::net::SocketAddr>,
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
    /// The largest record (key + value bytes) kappa writes; a row whose
    /// record would be larger stops the connector naming table, key and size.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// Topic configs applied when kappa creates a table topic
    /// (`segment.ms`, `min.compaction.lag.ms`, `delete.retention.ms`, …);
    /// `cleanup.policy` is always `compact`.
    #[serde(default)]
    pub topic_config: BTreeMap<String, String>,
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
pub fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_partitions() -> i32 {
    1
}
fn default_replication_factor() -> i32 {
    1
}
fn default_max_record_bytes() -> usize {
    kappa_sink::kafka::DEFAULT_MAX_RECORD_BYTES
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
            topic_config: BTreeMap::new(),
            max_record_bytes: default_max_record_bytes(),
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
        self.source.section_mut().apply_env(&var);
        if let Some(brokers) = var("KAPPA_KAFKA_BROKERS") {
            self.kafka.brokers = brokers;
        }
        if let Some(url) = var("KAPPA_SCHEMA_REGISTRY_URL") {
            self.schema_registry.url = url;
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let section = self.source.section();
        let (label, tables, chunk_rows) = (
            section.label(),
            section.tables(),
            section.snapshot_chunk_rows(),
        );
        if tables.is_empty() {
            bail!("{label} tables is empty: list the tables to capture, e.g. tables = [\"shop.orders\"]");
        }
        for table in tables {
            TableName::parse(table).map_err(|e| anyhow::anyhow!("{label} tables: {e}"))?;
        }
        if self.kafka.partitions < 1 {
            bail!("[kafka] partitions must be at least 1");
        }
        check_topic_config(&self.kafka.topic_config)?;
        if !(1024..=900_000_000).contains(&self.kafka.max_record_bytes) {
            bail!(
                "[kafka] max_record_bytes = {}: choose between 1024 and 900000000 (librdkafka's limit, less framing)",
                self.kafka.max_record_bytes
            );
        }
        if chunk_rows == 0 {
            bail!("{label} snapshot_chunk_rows must be at least 1");
        }
        section.check()
    }

    /// The column masking rules (applied before a record leaves the process);
    /// the hash salt comes from `KAPPA_HASH_SALT`.
    pub fn masking(&self) -> anyhow::Result<kappa_schemas::mask::Masking> {
        use kappa_schemas::mask::{ColumnRule, Masking};
        let mut rules = std::collections::HashMap::new();
        let options = self.source.section().masks();
        {
            for (table, exclude_columns, hash_columns, constant_columns) in options {
                let mut table_rules: Vec<(String, ColumnRule)> = Vec::new();
                table_rules.extend(
                    exclude_columns
                        .iter()
                        .map(|c| (c.clone(), ColumnRule::Exclude)),
                );
                table_rules.extend(hash_columns.iter().map(|c| (c.clone(), ColumnRule::Hash)));
                table_rules.extend(
                    constant_columns
                        .iter()
                        .map(|(c, v)| (c.clone(), ColumnRule::Constant(v.clone()))),
                );
                if !table_rules.is_empty() {
                    rules.insert(
                        TableName::parse(table).map_err(anyhow::Error::msg)?,
                        table_rules,
                    );
                }
            }
        }
        let salt = std::env::var("KAPPA_HASH_SALT").unwrap_or_default();
        if rules
            .values()
            .flatten()
            .any(|(_, r)| *r == ColumnRule::Hash)
            && salt.is_empty()
        {
            tracing::warn!("hash_columns without KAPPA_HASH_SALT: hashes of guessable values (emails, phone numbers) can be reversed by trying candidates; set a secret salt");
        }
        Ok(Masking::new(rules, salt))
    }

    /// How kappa creates a table topic.
    /// The topic's `max.message.bytes` admits the largest record (brokers
    /// default to 1 MB) unless `[kafka.topic_config]` sets it.
    pub fn topic_spec(&self) -> TopicSpec {
        let mut configs = self.kafka.topic_config.clone();
        configs
            .entry("max.message.bytes".into())
            .or_insert_with(|| {
                self.kafka
                    .max_record_bytes
                    .saturating_add(kappa_sink::kafka::FRAMING_BYTES)
                    .to_string()
            });
        TopicSpec {
            partitions: self.kafka.partitions,
            replication_factor: self.kafka.replication_factor,
            configs,
        }
    }

    pub fn kafka(&self) -> KafkaConfig {
        let mut kafka = KafkaConfig::new(self.kafka.brokers.clone());
        kafka.properties = self.kafka.properties.clone().into_iter().collect();
        kafka.max_record_bytes = self.kafka.max_record_bytes;
        kafka
    }
}

/// `[kafka.topic_config]` may set any topic config the broker knows (the
/// broker checks names and values when the topic is created) except the one
/// kappa's promise rests on: a table topic is compacted and nothing else, or
/// retention would delete rows a rebuild needs.
fn check_topic_config(configs: &BTreeMap<String, String>) -> anyhow::Result<()> {
    for (key, value) in configs {
        if key.trim().is_empty() || value.trim().is_empty() {
            bail!("[kafka.topic_config] {key:?} = {value:?}: names and values must not be empty");
        }
        if key == "cleanup.policy" && value != "compact" {
            bail!(
                "[kafka.topic_config] cleanup.policy = {value:?}: table topics are always \
                 cleanup.policy=compact (with delete, retention would remove rows a rebuild needs); \
                 remove the key"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PostgreSQL reader's settings of a config that has them.
    fn postgres(config: &Config) -> kappa_source::postgres::PostgresSourceConfig {
        let SourceConfig::Postgres(section) = &config.source else {
            panic!("not a PostgreSQL config: {config:?}")
        };
        section.reader_config().expect("reader settings")
    }

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
        assert_eq!(postgres(&config).slot, "kappa");
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
        assert_eq!(postgres(&config).common.password.as_deref(), Some("s3cret"));
        assert_eq!(config.kafka.brokers, "broker:9093");
    }

    #[test]
    fn topic_config_reaches_the_topic_spec_and_cannot_drop_compaction() {
        let text = format!(
            "{MINIMAL}\n[kafka]\npartitions = 3\n[kafka.topic_config]\n\"segment.ms\" = \"60000\"\n\"delete.retention.ms\" = \"604800000\"\n"
        );
        let config: Config = toml::from_str(&text).unwrap();
        config.check().unwrap();
        let spec = config.topic_spec();
        assert_eq!(spec.partitions, 3);
        assert_eq!(spec.configs["segment.ms"], "60000");
        assert_eq!(spec.configs["delete.retention.ms"], "604800000");

        let bad = format!("{text}\"cleanup.policy\" = \"compact,delete\"\n");
        let config: Config = toml::from_str(&bad).unwrap();
        let err = config.check().unwrap_err().to_string();
        assert!(
            err.contains("cleanup.policy") && err.contains("remove the key"),
            "{err}"
        );
    }

    #[test]
    fn unchanged_toast_is_fetched_unless_refuse_is_chosen() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        config.check().unwrap();
        assert!(postgres(&config).toast_refuse.is_empty());
        let option = |value: &str| {
            format!("{MINIMAL}\n[source.postgres.table_options.\"public.docs\"]\nunchanged_toast = \"{value}\"\n")
        };
        let fetch: Config = toml::from_str(&option("fetch")).unwrap();
        assert!(postgres(&fetch).toast_refuse.is_empty());
        let refuse: Config = toml::from_str(&option("refuse")).unwrap();
        refuse.check().unwrap();
        assert_eq!(
            postgres(&refuse).toast_refuse,
            vec![TableName::new("public", "docs")]
        );
        assert!(toml::from_str::<Config>(&option("placeholder")).is_err());
    }

    const MYSQL: &str = r#"
[source.mysql]
url = "mysql://root@127.0.0.1:3306/"
tables = ["shop.orders"]

[source.mysql.table_options."shop.orders"]
exclude_columns = ["card"]
"#;

    #[test]
    fn mysql_source_with_env_overrides_and_masking() {
        let mut config: Config = toml::from_str(MYSQL).unwrap();
        config.apply_env(|name| match name {
            "KAPPA_MYSQL_URL" => Some("mysql://kappa@db:3306/".into()),
            "KAPPA_MYSQL_PASSWORD" => Some("pw".into()),
            _ => None,
        });
        config.check().unwrap();
        let SourceConfig::Mysql(section) = &config.source else {
            panic!("a MySQL config")
        };
        let mysql = section.reader_config(&config.name).unwrap();
        assert_eq!(mysql.common.url, "mysql://kappa@db:3306/");
        assert_eq!(mysql.common.password.as_deref(), Some("pw"));
        assert_eq!(mysql.server_id, 5701);
        assert!(config.masking().is_ok());
    }

    #[test]
    fn exactly_one_source() {
        let both = format!("{MINIMAL}{MYSQL}");
        let error = toml::from_str::<Config>(&both).unwrap_err().to_string();
        assert!(error.contains("both"), "{error}");
        let none = "[source]\n";
        let error = toml::from_str::<Config>(none).unwrap_err().to_string();
        assert!(
            error.contains("no [source.postgres] or [source.mysql]"),
            "{error}"
        );
        let typo = MYSQL
            .replace("server", "srv")
            .replace("tables = [", "server_idd = 3\ntables = [");
        assert!(toml::from_str::<Config>(&typo).is_err());
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
