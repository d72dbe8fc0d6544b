//! The replay workers' sink: decode each record, set poison records aside
//! (or stop on them), and hand batches to the table writer.

use kappa_materialize::resolve::RecordDecoder;
pub use kappa_materialize::target::Applied;
use kappa_sink::replay::{PartitionSink, ReplayRecord};
use tokio::sync::mpsc;

/// Records per batch handed from a worker to the writer.
pub const BATCH: usize = 1000;
/// Invalid records listed individually in the summary.
pub const INVALID_SHOWN: usize = 10;

/// A worker's sink: decode, check, batch, hand over.
pub struct DecodingSink {
    pub decoder: RecordDecoder,
    pub batch: Vec<Applied>,
    pub tx: mpsc::Sender<Vec<Applied>>,
    pub skip_invalid: bool,
    pub keep_bytes: bool,
    pub invalid: u64,
    pub first_invalid: Vec<String>,
}

impl DecodingSink {
    fn hand_over(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx
            .blocking_send(batch)
            .map_err(|_| "the table writer stopped".to_string())
    }
}

impl PartitionSink for DecodingSink {
    type Error = String;

    fn record(&mut self, record: ReplayRecord<'_>) -> Result<(), String> {
        match self.decoder.decode(record.key, record.value)? {
            Ok(decoded) => {
                let (key, value) = if self.keep_bytes {
                    (
                        record.key.unwrap_or_default().to_vec(),
                        record.value.map(<[u8]>::to_vec),
                    )
                } else {
                    (Vec::new(), None)
                };
                self.batch.push(Applied {
                    record: decoded,
                    key,
                    value,
                    partition: record.partition,
                    offset: record.offset,
                });
                if self.batch.len() >= BATCH {
                    self.hand_over()?;
                }
                Ok(())
            }
            Err(invalid) if self.skip_invalid => {
                self.invalid += 1;
                if self.first_invalid.len() < INVALID_SHOWN {
                    self.first_invalid.push(format!(
                        "partition {} offset {}: {invalid}",
                        record.partition, record.offset
                    ));
                }
                if self.invalid <= INVALID_SHOWN as u64 {
                    tracing::warn!(partition = record.partition, offset = record.offset, reason = %invalid, "skipping an invalid record");
                }
                Ok(())
            }
            Err(invalid) => Err(format!(
                "{invalid} (rerun with --skip-invalid to count and skip such records)"
            )),
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.hand_over()
    }
}
