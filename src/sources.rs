//! The one place kappa matches the kind of source its config names: the
//! section's reader is opened here and handed, as a [`Source`], to whatever
//! runs on it (the daemon, `kappa status`, `kappa snapshot`, `verify
//! --wait-for-connector`). Adding a kind of source adds one arm here and
//! one variant to [`SourceConfig`]; everything behind the arm is generic.

use crate::config::{Config, SourceConfig};
use kappa_source::mysql::MysqlSource;
use kappa_source::postgres::PostgresSource;
use kappa_source::Source;
use std::future::Future;

/// Work that runs on any opened source.
pub trait OnSource {
    type Output;

    fn on<S: Source>(
        self,
        source: S,
        config: &Config,
    ) -> impl Future<Output = anyhow::Result<Self::Output>>;
}

/// Opens the configured source (resolving and checking its tables) and runs
/// `work` on it.
pub async fn with_source<W: OnSource>(config: &Config, work: W) -> anyhow::Result<W::Output> {
    match &config.source {
        SourceConfig::Postgres(section) => {
            let source = PostgresSource::open(section.reader_config()?).await?;
            work.on(source, config).await
        }
        SourceConfig::Mysql(section) => {
            let source = MysqlSource::open(section.reader_config(&config.name)?).await?;
            work.on(source, config).await
        }
    }
}
