//! Benchmark reader: streams the binlog from a start to an end position
//! through kappa's full MySQL path (binlog events → typed rows → changes)
//! into a null sink, and prints `rows seconds`. Used by bench/mysql_stream.sh
//! next to `mysqlbinlog --read-from-remote-server`.
//!
//! usage: mysql_null_sink URL DB.TABLE START_FILE START_POS END_FILE END_POS

use kappa_schemas::{BinlogPosition, Checkpoint, ConnectorState, TableName};
use kappa_source::mysql::{MysqlSource, MysqlSourceConfig};
use kappa_source::{ReaderCommon, Shutdown, Source};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, table, start_file, start_pos, end_file, end_pos] = args.as_slice() else {
        return Err(
            "usage: mysql_null_sink URL DB.TABLE START_FILE START_POS END_FILE END_POS".into(),
        );
    };
    let table = TableName::parse(table)?;
    let end = BinlogPosition {
        file: end_file.clone(),
        pos: end_pos.parse()?,
        gtid: None,
    };
    let source = MysqlSource::open(MysqlSourceConfig {
        common: ReaderCommon {
            url: url.clone(),
            password: std::env::var("KAPPA_MYSQL_PASSWORD").ok(),
            tables: vec![table.to_string()],
            exclude_tables: Vec::new(),
            snapshot_chunk_rows: 10_000,
        },
        server_id: 4242,
        heartbeat_secs: 5,
        connector: "example".into(),
        signal_table: None,
    })
    .await?;
    let start = ConnectorState {
        origin: String::new(),
        snapshotted: vec![table],
        position: Some(BinlogPosition {
            file: start_file.clone(),
            pos: start_pos.parse()?,
            gtid: None,
        }),
    };
    let (tx, mut rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_drained, drained_rx) = tokio::sync::oneshot::channel();
    let shutdown = Shutdown {
        requested: stop_rx,
        drained: drained_rx,
    };
    let started = Instant::now();
    let reader = tokio::spawn(source.run(start, tx, shutdown));
    let mut rows = 0u64;
    while let Some(batch) = rx.recv().await {
        rows += batch.changes.len() as u64;
        if std::env::var("DEBUG").is_ok() {
            eprintln!("{:?} {:?}", batch.changes.len(), batch.checkpoint);
            for change in &batch.changes {
                if let kappa_schemas::Change::Upsert { row, .. } = change {
                    eprintln!(
                        "  {}",
                        row.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
            }
        }
        if let Some(Checkpoint::Committed(position)) = &batch.checkpoint {
            if position.at_or_past(&end) {
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    drop(rx);
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("the reader stopped: {e}"),
        Err(e) => eprintln!("the reader task failed: {e}"),
    }
    println!("{rows} {seconds:.3}");
    Ok(())
}
