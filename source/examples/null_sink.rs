//! Benchmark reader: streams a slot up to an end LSN through kappa's full
//! decoding path (pgoutput → typed rows → changes) into a null sink, and
//! prints `rows seconds`. Used by bench/pg_stream.sh next to pg_recvlogical.
//!
//! usage: null_sink URL SLOT PUBLICATION SCHEMA.TABLE END_LSN

use kappa_schemas::{Lsn, TableName};
use kappa_source::postgres::catalog::load_table;
use kappa_source::postgres::stream::ChangeDecoder;
use kappa_source::postgres::toast::Buffered;
use kappa_source::postgres::{connect, PostgresSource, PostgresSourceConfig};
use kappa_source::ReaderCommon;
use pgwire_replication::{ReplicationClient, ReplicationEvent};
use std::collections::HashMap;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, slot, publication, table, end] = args.as_slice() else {
        return Err("usage: null_sink URL SLOT PUBLICATION SCHEMA.TABLE END_LSN".into());
    };
    let table = TableName::parse(table)?;
    let end = Lsn::parse(end)?;
    let client = connect(url, None).await?;
    let catalog = load_table(&client, &table).await?;
    let keys = HashMap::from([(table.clone(), catalog.key_names.clone())]);
    let source = PostgresSource::open(PostgresSourceConfig {
        common: ReaderCommon {
            url: url.clone(),
            password: None,
            tables: vec![table.to_string()],
            exclude_tables: Vec::new(),
            snapshot_chunk_rows: 10_000,
        },
        slot: slot.clone(),
        publication: publication.clone(),
        skip_tables_without_key: false,
        toast_refuse: Vec::new(),
    })
    .await?;
    let config = source
        .replication_config()?
        .with_stop_lsn(pgwire_replication::Lsn(end.0));
    let started = Instant::now();
    let mut replication = ReplicationClient::connect(config).await?;
    let mut decoder = ChangeDecoder::new(keys);
    let mut changes = Buffered::default();
    let mut rows = 0u64;
    while let Some(event) = replication.recv().await? {
        match event {
            ReplicationEvent::XLogData { data, .. } => {
                decoder.apply(&data, &mut changes)?;
                // Pieces as small as the daemon's (stream.rs), so peak RSS
                // says what the reader itself holds.
                if changes.len() >= 512 {
                    rows += changes.len() as u64;
                    changes.clear();
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                rows += changes.len() as u64;
                changes.clear();
                replication.update_applied_lsn(end_lsn);
            }
            ReplicationEvent::StoppedAt { .. } => break,
            _ => {}
        }
    }
    rows += changes.len() as u64;
    println!("{rows} {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
