//! The `kappa` command: `run` streams a database into compacted topics,
//! `rebuild` materializes a topic into a table, `verify` proves the two equal.

mod config;
mod daemon;
mod rebuild;
mod state;
mod status;
mod verify;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kappa_schemas::{Registry, TableName};
use kappa_sink::KafkaConfig;
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
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAPPA_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Confluent-compatible Schema Registry URL.
    #[arg(
        long,
        env = "KAPPA_SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    registry: String,
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
    /// request into the WAL that the running connector picks up (DBLog
    /// watermarks, no gap, no older state after a newer one).
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
    /// into a table: newest record per key, tombstones delete.
    Rebuild {
        /// The topic, e.g. kappa.public.orders.
        #[arg(long)]
        topic: String,
        /// Target: sqlite:PATH.
        #[arg(long)]
        into: String,
        #[command(flatten)]
        services: Services,
    },
    /// Compare a rebuilt table with the source table row by row; exit 1 on
    /// any difference.
    Verify {
        /// The topic the table was captured into.
        #[arg(long)]
        topic: String,
        /// Source database URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.
        #[arg(long, env = "KAPPA_POSTGRES_URL")]
        source: String,
        /// The source table, schema.table.
        #[arg(long)]
        table: String,
        /// An already rebuilt table (sqlite:PATH); without it, the topic is
        /// rebuilt first into a temporary file.
        #[arg(long)]
        rebuilt: Option<String>,
        /// How many differences to show.
        #[arg(long, default_value_t = 10)]
        show: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        services: Services,
    },
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
            eprintln!("error: {e:#}");
            ExitCode::from(2)
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
            let postgres = config.postgres()?;
            let table = TableName::parse(&table).map_err(anyhow::Error::msg)?;
            let lsn = kappa_source::postgres::resnapshot::request(
                &postgres.url,
                postgres.password.as_deref(),
                &postgres.slot,
                &table,
            )
            .await?;
            println!(
                "re-snapshot of {table} requested at {lsn}; connector {} (slot {}) runs it while streaming",
                config.name, postgres.slot
            );
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
            services,
        } => {
            let path = rebuild::sqlite_target(&into)?;
            let kafka = KafkaConfig::new(services.brokers);
            let registry = Registry::new(&services.registry);
            let summary = rebuild::rebuild(&kafka, &registry, &topic, &path).await?;
            println!(
                "rebuilt {} into {}: {} records read ({} rows, {} tombstones), {} keys live, {:.1}s, {:.0} records/s",
                summary.topic,
                path.display(),
                summary.records,
                summary.upserts,
                summary.tombstones,
                summary.live_keys,
                summary.seconds,
                summary.records_per_second
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            topic,
            source,
            table,
            rebuilt,
            show,
            format,
            services,
        } => {
            let table = TableName::parse(&table).map_err(anyhow::Error::msg)?;
            let scratch = tempfile_dir()?;
            let path = match rebuilt {
                Some(target) => rebuild::sqlite_target(&target)?,
                None => {
                    let path = scratch.join("rebuilt.sqlite");
                    let kafka = KafkaConfig::new(services.brokers);
                    let registry = Registry::new(&services.registry);
                    rebuild::rebuild(&kafka, &registry, &topic, &path).await?;
                    path
                }
            };
            let password = std::env::var("KAPPA_POSTGRES_PASSWORD").ok();
            let report = verify::verify(&source, password.as_deref(), &table, &path, show).await;
            let _ = std::fs::remove_dir_all(&scratch);
            let report = report?;
            match format {
                Format::Text => verify::print_report(&report, &topic),
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(if report.differences() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// A private scratch directory for a rebuild that verify makes itself.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kappa-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
