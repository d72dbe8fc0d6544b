//! Benchmark floor: receives the binlog from a start to an end position
//! through `mysql_async`'s binlog stream (packets, event headers, checksum)
//! without decoding any row, and prints `events seconds`. With `--parse`, it
//! also parses each event's body (`Event::read_data`, not the row images).
//! What kappa's reader costs on top of this is row decoding.
//!
//! usage: mysql_binlog_floor URL START_FILE START_POS END_POS [--parse]

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn, Opts};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, file, start, end, parse) = match args.as_slice() {
        [_, url, file, start, end] => (url, file, start, end, false),
        [_, url, file, start, end, flag] if flag == "--parse" => (url, file, start, end, true),
        _ => {
            return Err(
                "usage: mysql_binlog_floor URL START_FILE START_POS END_POS [--parse]".into(),
            )
        }
    };
    let end: u32 = end.parse()?;
    let mut conn = Conn::new(Opts::from_url(url)?).await?;
    conn.query_drop("SET @mariadb_slave_capability = 4").await?;
    let request = BinlogStreamRequest::new(4243)
        .with_filename(file.as_bytes())
        .with_pos(start.parse::<u64>()?);
    let started = Instant::now();
    let mut stream = conn.get_binlog_stream(request).await?;
    let mut events = 0u64;
    while let Some(event) = stream.next().await {
        let event = event?;
        events += 1;
        if parse {
            let _ = event.read_data()?;
        }
        if event.header().log_pos() >= end {
            break;
        }
    }
    println!("{events} {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
