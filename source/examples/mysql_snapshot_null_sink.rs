//! Benchmark reader: kappa's initial snapshot of one MySQL table (lock,
//! position, key-ordered read, typed rows) into a null sink; prints
//! `rows seconds`. Used by bench/mysql_stream.sh next to
//! `mysqldump --single-transaction`. With DEBUG set, prints every row.
//!
//! usage: mysql_snapshot_null_sink URL DB.TABLE

use kappa_schemas::{Change, Checkpoint, ConnectorState};
use kappa_source::mysql::{MysqlSource, MysqlSourceConfig};
use kappa_source::{ReaderCommon, Shutdown, Source};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, table] = args.as_slice() else {
        return Err("usage: mysql_snapshot_null_sink URL DB.TABLE".into());
    };
    let debug = std::env::var("DEBUG").is_ok();
    let source = MysqlSource::open(MysqlSourceConfig {
        common: ReaderCommon {
            url: url.clone(),
            password: std::env::var("KAPPA_MYSQL_PASSWORD").ok(),
            tables: vec![table.clone()],
            exclude_tables: Vec::new(),
            snapshot_chunk_rows: 10_000,
        },
        server_id: 4243,
        heartbeat_secs: 5,
        connector: "example".into(),
        signal_table: None,
    })
    .await?;
    let (tx, mut rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_drained, drained_rx) = tokio::sync::oneshot::channel();
    let shutdown = Shutdown {
        requested: stop_rx,
        drained: drained_rx,
    };
    let started = Instant::now();
    let reader = tokio::spawn(source.run(ConnectorState::default(), tx, shutdown));
    let mut rows = 0u64;
    while let Some(batch) = rx.recv().await {
        rows += batch.changes.len() as u64;
        if debug {
            for change in &batch.changes {
                if let Change::Upsert { row, .. } = change {
                    let text: Vec<String> = row.iter().map(ToString::to_string).collect();
                    eprintln!("  {}", text.join(" | "));
                }
            }
        }
        if let Some(Checkpoint::SnapshotComplete { .. }) = batch.checkpoint {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    drop(rx);
    let _ = reader.await;
    println!("{rows} {seconds:.3}");
    Ok(())
}
