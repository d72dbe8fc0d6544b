//! The `kappa` command: `run` streams a database into compacted topics,
//! `rebuild` materializes a topic into a table, `verify` proves the two equal.

mod config;
mod daemon;
mod error_text;
mod exit_status;
mod in_flight;
mod rebuild;
mod sources;
mod state;
mod status;
mod verify;

use clap::{Parser, Subcommand, ValueEnum};
use kappa_schemas::{Registry, TableName};
use kappa_sink::KafkaConfig;
use kappa_source::{CatchUp, Source};
use std::path::PathBuf;
use std::process::ExitCode;

/// Change-data-capture into log-compacted Kafka topics, and tables rebuilt
/// from those topics alone.
#[derive(Parser)]
#[command(name = "kappa", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the broker and the registry are, for commands without a config file.
#[derive(clap::Args)]
struct Services {
    /// Kafka bootstrap servers [default: 127.0.0.1:9092, or the config's].
    #[arg(long, env = "KAPPA_KAFKA_BROKERS")]
    brokers: Option<String>,
    /// Confluent-compatible Schema Registry URL [default:
    /// http://127.0.0.1:8081, or the config's].
    #[arg(long, env = "KAPPA_SCHEMA_REGISTRY_URL")]
    registry: Option<String>,
}

impl Services {
    /// The broker: given, else the config's, else the local default.
    fn kafka(&self, config: Option<&config::Config>) -> KafkaConfig {
        match (&self.brokers, config) {
            (Some(brokers), _) => KafkaConfig::new(brokers.clone()),
            (None, Some(config)) => config.kafka(),
            (None, None) => KafkaConfig::new("127.0.0.1:9092"),
        }
    }

    fn registry(&self, config: Option<&config::Config>) -> Registry {
        let url = match (&self.registry, config) {
            (Some(url), _) => url.clone(),
            (None, Some(config)) => config.schema_registry.url.clone(),
            (None, None) => "http://127.0.0.1:8081".into(),
        };
        Registry::new(&url)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Stream the configured tables into their topics until SIGINT/SIGTERM
    /// (initial snapshot first, on the first start).
    Run {
        /// The TOML config file (see kappa.example.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Re-snapshot one table while `kappa run` keeps streaming: writes a
    /// request into the WAL (PostgreSQL) or the `signal_table` (MySQL/MariaDB)
    /// that the running connector picks up (DBLog watermarks, no gap, no older
    /// state after a newer one).
    Snapshot {
        /// The TOML config file of the running connector.
        #[arg(long, short)]
        config: PathBuf,
        /// The table to re-snapshot, schema.table.
        #[arg(long)]
        table: String,
    },
    /// Show a connector's slot (confirmed position, WAL held back), its
    /// completed snapshots and its topics' offsets; exit 1 if unhealthy.
    Status {
        /// The TOML config file of the connector.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Replay a topic from its beginning to the end offsets taken at start
    /// (or those of --as-of / --until-offsets) into a table: newest record
    /// per key, tombstones delete.
    Rebuild {
        /// The topic, e.g. kappa.public.orders.
        #[arg(long)]
        topic: String,
        /// Target: sqlite:PATH, postgres://user@host/db?table=schema.table or
        /// mysql://user@host:3306/db?table=t (a typed table, replaced
        /// atomically).
        #[arg(long)]
        into: String,
        /// Rebuild the table as it was at this time (RFC 3339, e.g.
        /// 2026-11-25T10:00:00Z): records written before it.
        #[arg(long, conflicts_with = "until_offsets")]
        as_of: Option<String>,
        /// Rebuild up to these end offsets (exclusive), one per partition:
        /// PARTITION:OFFSET,…
        #[arg(long)]
        until_offsets: Option<String>,
        /// Count and skip records that cannot be decoded instead of stopping.
        #[arg(long)]
        skip_invalid: bool,
        /// With --as-of/--until-offsets: fail when history before the point
        /// is no longer complete in the topic, instead of warning.
        #[arg(long)]
        require_exact: bool,
        /// Worker threads reading partitions (0: one per partition, up to 8).
        #[arg(long, default_value_t = 0)]
        parallelism: usize,
        /// Print the summary as JSON.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Benchmark baseline: read the topic to its end offsets with the
        /// same consumers, without decoding or writing, and report records/s.
        #[arg(long, hide = true)]
        raw_baseline: bool,
        #[command(flatten)]
        services: Services,
    },
    /// Compare a rebuilt table with the source table row by row; exit 1 on
    /// any difference.
    Verify {
        /// The connector's config: its masking rules are applied to the
        /// source rows before comparing (as the connector applied them before
        /// encoding), and it supplies the source URL, the topic
        /// (<topic_prefix>.<schema>.<table>), broker and registry unless given.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The topic the table was captured into [default with --config:
        /// <topic_prefix>.<schema>.<table>].
        #[arg(long)]
        topic: Option<String>,
        /// Source database URL, e.g. postgres://postgres@127.0.0.1:5432/postgres
        /// or mysql://root@127.0.0.1:3306/ (password from KAPPA_MYSQL_PASSWORD)
        /// [default: the config's source (with its KAPPA_POSTGRES_URL or
        /// KAPPA_MYSQL_URL override); without --config, whichever of the
        /// two variables is set].
        #[arg(long)]
        source: Option<String>,
        /// The source table, schema.table (PostgreSQL) or database.table (MySQL).
        #[arg(long)]
        table: String,
        /// An already rebuilt table: sqlite:PATH, or a table rebuilt into
        /// PostgreSQL (postgres://user@host/db?table=schema.table) or MySQL
        /// (mysql://user@host/db?table=table); without it, the topic is
        /// rebuilt first into a temporary file.
        #[arg(long)]
        rebuilt: Option<String>,
        /// How many differences to show.
        #[arg(long, default_value_t = 10)]
        show: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// PostgreSQL: the connector's replication slot, when it may be
        /// streaming: verify waits until the slot confirms the source
        /// snapshot point and reports differences caused by lag separately.
        #[arg(long, conflicts_with = "wait_for_connector")]
        slot: Option<String>,
        /// The connector of --config may be streaming: wait until it has
        /// confirmed the source snapshot point and report differences caused
        /// by lag separately. PostgreSQL: the config's slot (as --slot).
        /// MySQL/MariaDB: the binlog position in the connector's offsets
        /// record (key: the config's name, topic: [kafka] offsets_topic).
        #[arg(long, requires = "config")]
        wait_for_connector: bool,
        /// How long to wait for the connector to confirm the snapshot point.
        #[arg(long, default_value_t = 30)]
        lag_timeout: u64,
        /// PostgreSQL: seconds the slot's confirmed position must stand
        /// still, with the server past the snapshot point, to count the
        /// connector as idle (nothing of the table pending) rather than
        /// lagging. (MySQL needs no such wait: its idleness is exact.)
        #[arg(long, default_value_t = 2)]
        idle_after: u64,
        /// Count and skip invalid records while rebuilding (see rebuild).
        #[arg(long)]
        skip_invalid: bool,
        /// Also have the source server itself compare: `sql` rebuilds the
        /// topic into a typed table in the source's own server (schema or
        /// database --oracle-schema, created if missing; needs CREATE there)
        /// and counts rows only in the source / only in the rebuilt table
        /// with EXCEPT ALL, no kappa parser involved. For a stopped or
        /// caught-up, idle connector only: a live one is checked with
        /// --slot/--wait-for-connector, which the oracle refuses.
        #[arg(long, value_enum)]
        oracle: Option<Oracle>,
        /// The schema (PostgreSQL) or database (MySQL) for --oracle's table,
        /// which is dropped afterwards.
        #[arg(long, default_value = verify::oracle::DEFAULT_SCHEMA, requires = "oracle")]
        oracle_schema: String,
        #[command(flatten)]
        services: Services,
    },
}

/// An independent comparison run beside verify's.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Oracle {
    /// EXCEPT ALL both ways, in the source server.
    Sql,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAPPA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            let kind = exit_status::error_kind(&e);
            eprintln!(
                "error: {}\n({})",
                error_text::error_text(&e),
                exit_status::advice(kind)
            );
            ExitCode::from(exit_status::exit_status(kind))
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => {
            let config = config::Config::load(&config)?;
            daemon::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Snapshot { config, table } => {
            let config = config::Config::load(&config)?;
            let table = TableName::parse(&table).map_err(anyhow::Error::msg)?;
            let requested = sources::with_source(&config, RequestResnapshot(table.clone())).await?;
            println!("re-snapshot of {table} {requested}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config } => {
            let config = config::Config::load(&config)?;
            Ok(if status::status(&config).await? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Rebuild {
            topic,
            into,
            as_of,
            until_offsets,
            skip_invalid,
            require_exact,
            parallelism,
            format,
            raw_baseline,
            services,
        } => {
            let kafka = services.kafka(None);
            if raw_baseline {
                let (records, seconds) = rebuild::raw_read(&kafka, &topic, parallelism).await?;
                println!(
                    "raw read of {topic}: {records} records, {seconds:.2}s, {:.0} records/s",
                    records as f64 / seconds.max(1e-9)
                );
                return Ok(ExitCode::SUCCESS);
            }
            let bound = match (as_of, until_offsets) {
                (Some(time), _) => rebuild::parse_as_of(&time)?,
                (None, Some(offsets)) => rebuild::parse_until_offsets(&offsets)?,
                (None, None) => kappa_sink::replay::Bound::Latest,
            };
            let options = rebuild::RebuildOptions {
                topic,
                target: rebuild::parse_target(&into)?,
                bound,
                skip_invalid,
                parallelism,
                require_exact,
                password: None,
            };
            let registry = services.registry(None);
            let summary = rebuild::rebuild(&kafka, &registry, &options).await?;
            match format {
                Format::Text => rebuild::print_summary(&summary),
                Format::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            config,
            topic,
            source,
            table,
            rebuilt,
            show,
            format,
            slot,
            wait_for_connector,
            lag_timeout,
            idle_after,
            skip_invalid,
            oracle,
            oracle_schema,
            services,
        } => {
            let config = config.as_deref().map(config::Config::load).transpose()?;
            let table = TableName::parse(&table).map_err(anyhow::Error::msg)?;
            let (source_url, password) =
                verify::source_url::verify_source(source, config.as_ref(), |name| {
                    std::env::var(name).ok()
                })?;
            let topic = match (topic, &config) {
                (Some(topic), _) => topic,
                (None, Some(config)) => {
                    kappa_sink::topics::table_topic(&config.kafka.topic_prefix, &table)
                }
                (None, None) => anyhow::bail!(
                    "name the topic: --topic kappa.public.orders, or --config kappa.toml (topic <topic_prefix>.<schema>.<table>)"
                ),
            };
            let masking = config.as_ref().map(config::Config::masking).transpose()?;
            let connector = match (slot, wait_for_connector, &config) {
                (Some(slot), _, _) => Some(verify::Connector::Slot(slot)),
                (None, true, Some(config)) => Some(match connector_catch_up(config).await? {
                    CatchUp::Slot(slot) => verify::Connector::Slot(slot),
                    CatchUp::OffsetsRecord => verify::Connector::Offsets {
                        kafka: services.kafka(Some(config)),
                        topic: config.kafka.offsets_topic.clone(),
                        name: config.name.clone(),
                    },
                }),
                (None, true, None) => anyhow::bail!(
                    "--wait-for-connector takes the connector from its config: add --config kappa.toml"
                ),
                (None, false, _) => None,
            };
            let options = verify::VerifyOptions {
                topic,
                source_url,
                password,
                table,
                rebuilt: rebuilt.as_deref().map(rebuild::parse_target).transpose()?,
                show,
                connector,
                connector_wait: verify::ConnectorWait {
                    timeout: std::time::Duration::from_secs(lag_timeout),
                    idle_after: std::time::Duration::from_secs(idle_after),
                },
                skip_invalid,
                masking,
                oracle: oracle.map(|Oracle::Sql| oracle_schema),
            };
            let kafka = services.kafka(config.as_ref());
            let registry = services.registry(config.as_ref());
            let report = verify::verify(&kafka, &registry, &options).await?;
            match format {
                Format::Text => verify::print_report(&report, &options.topic),
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(ExitCode::from(verify::exit_code(&report)))
        }
    }
}

/// `kappa snapshot`: the request goes through the source itself.
struct RequestResnapshot(TableName);

impl sources::OnSource for RequestResnapshot {
    type Output = String;

    async fn on<S: Source>(self, source: S, config: &config::Config) -> anyhow::Result<String> {
        Ok(source.request_resnapshot(&config.name, &self.0).await?)
    }
}

/// Where `verify --wait-for-connector` reads the connector's delivered
/// position, from the connector's own config.
async fn connector_catch_up(config: &config::Config) -> anyhow::Result<CatchUp> {
    struct OfSource;
    impl sources::OnSource for OfSource {
        type Output = CatchUp;

        async fn on<S: Source>(
            self,
            source: S,
            _config: &config::Config,
        ) -> anyhow::Result<CatchUp> {
            Ok(source.catch_up())
        }
    }
    sources::with_source(config, OfSource).await
}
