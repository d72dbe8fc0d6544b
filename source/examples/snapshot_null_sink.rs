//! Benchmark reader: reads a whole table through kappa's snapshot path
//! (COPY text → typed rows, chunked) into a null sink and prints
//! `rows seconds`. Used by bench/pg_snapshot.sh next to a plain
//! `COPY … TO STDOUT` into /dev/null.
//!
//! usage: snapshot_null_sink URL SCHEMA.TABLE

use kappa_schemas::TableName;
use kappa_source::postgres::catalog::load_table;
use kappa_source::postgres::connect;
use kappa_source::postgres::snapshot::{begin_snapshot, CopyRows};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, table] = args.as_slice() else {
        return Err("usage: snapshot_null_sink URL SCHEMA.TABLE".into());
    };
    let table = TableName::parse(table)?;
    let client = connect(url, None).await?;
    let schema = load_table(&client, &table).await?.schema;
    let started = Instant::now();
    begin_snapshot(&client, None).await?;
    let mut rows = CopyRows::start(&client, schema, false).await?;
    let mut count = 0u64;
    while let Some(chunk) = rows.next_chunk(10_000).await? {
        count += chunk.len() as u64;
    }
    client.batch_execute("COMMIT").await?;
    println!("{count} {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
