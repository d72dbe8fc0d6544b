//! The keys a topic currently holds a row for: what a TRUNCATE must
//! tombstone. Obtained by a bounded replay of the topic itself (the newest
//! record per key decides), after every earlier record was acknowledged, so
//! the topic is the only source of truth and no extra state is kept.
//!
//! Memory is bounded whatever the table's size: keys are gathered up to
//! [`MEMORY_BUDGET`] bytes, then sorted and spilled to an unnamed file in the
//! temporary directory (`TMPDIR`), and gathering starts over. At the end the
//! runs are merged in key order, the newest run deciding for a key in
//! several, and the live keys are handed out in batches: memory holds one
//! run, one key per spilled run, and one batch. At most 64 runs are kept
//! (reaching that merges them into one of live keys), so open files stay
//! bounded too.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use crate::replay::replay;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, Write};

/// Key bytes (plus [`ENTRY_OVERHEAD`] per key) gathered before a run spills.
pub const MEMORY_BUDGET: usize = 8 << 20;
/// What one gathered key costs beyond its bytes (its map entry, its `Vec`).
const ENTRY_OVERHEAD: usize = 64;
/// Spilled runs at most; reaching it merges them into one.
const MAX_RUNS: usize = 64;

/// Calls `emit` with every key whose newest record in `topic` is not a
/// tombstone, in key order, at most `batch` keys at a time; returns how many.
pub fn live_keys(
    kafka: &KafkaConfig,
    topic: &str,
    batch: usize,
    mut emit: impl FnMut(Vec<Vec<u8>>) -> Result<(), String>,
) -> Result<u64, SinkError> {
    let mut runs = KeyRuns::new(MEMORY_BUDGET);
    replay(kafka, topic, |record| match record.key {
        Some(key) => runs.note(key, record.value.is_some()),
        None => Ok(()),
    })?;
    runs.finish(batch, |keys| emit(keys).map_err(Stop::Emit))
        .map_err(|stop| match stop {
            // No room for the spilled runs: the message names the fix.
            Stop::Io(e) => SinkError::Topic {
                topic: topic.to_string(),
                reason: format!(
                    "spilling the live keys of a TRUNCATE to {}: {e} (set TMPDIR to a directory with room)",
                    std::env::temp_dir().display()
                ),
                code: None,
            },
            // What the keys were handed to failed; its error is only text.
            Stop::Emit(reason) => SinkError::Replay {
                topic: topic.to_string(),
                reason: format!("handing out live keys: {reason}"),
            },
        })
}

/// Why [`KeyRuns::finish`] stopped.
#[derive(Debug)]
pub enum Stop {
    Io(std::io::Error),
    Emit(String),
}

/// Keys with their newest liveness, in sorted runs of bounded size.
pub struct KeyRuns {
    budget: usize,
    current: HashMap<Vec<u8>, bool>,
    current_bytes: usize,
    /// Spilled runs, oldest first.
    spilled: Vec<File>,
    /// The most bytes [`Self::current`] held (for tests of the bound).
    pub peak_bytes: usize,
}

impl KeyRuns {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            current: HashMap::new(),
            current_bytes: 0,
            spilled: Vec::new(),
            peak_bytes: 0,
        }
    }

    /// Notes the newest record of `key` so far (`alive`: not a tombstone).
    pub fn note(&mut self, key: &[u8], alive: bool) -> Result<(), String> {
        if let Some(entry) = self.current.get_mut(key) {
            *entry = alive;
            return Ok(());
        }
        let cost = key.len().saturating_add(ENTRY_OVERHEAD);
        if self.current_bytes.saturating_add(cost) > self.budget && !self.current.is_empty() {
            self.spill().map_err(|e| {
                format!(
                    "spilling the live keys of a TRUNCATE to {}: {e} (set TMPDIR to a directory with room)",
                    std::env::temp_dir().display()
                )
            })?;
        }
        self.current.insert(key.to_vec(), alive);
        self.current_bytes = self.current_bytes.saturating_add(cost);
        self.peak_bytes = self.peak_bytes.max(self.current_bytes);
        Ok(())
    }

    /// How many runs went to disk.
    pub fn spilled_runs(&self) -> usize {
        self.spilled.len()
    }

    /// Writes the gathered keys, sorted, to an unnamed file.
    fn spill(&mut self) -> std::io::Result<()> {
        let mut entries: Vec<(Vec<u8>, bool)> = self.current.drain().collect();
        self.current_bytes = 0;
        entries.sort_unstable();
        let mut out = BufWriter::new(anonymous_file()?);
        for (key, alive) in entries {
            write_entry(&mut out, &key, alive)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.spilled.push(file);
        if self.spilled.len() >= MAX_RUNS {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges every spilled run into one holding only the live keys (no
    /// older run is left for a dead key to override), so at most
    /// [`MAX_RUNS`] files are open.
    fn compact(&mut self) -> std::io::Result<()> {
        let mut out = BufWriter::new(anonymous_file()?);
        merge(std::mem::take(&mut self.spilled), |key| {
            write_entry(&mut out, &key, true).map_err(Stop::Io)
        })
        .map_err(|stop| match stop {
            Stop::Io(e) => e,
            Stop::Emit(reason) => std::io::Error::other(reason),
        })?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.spilled.push(file);
        Ok(())
    }

    /// Hands out the live keys in key order, `batch` (at least 1) at a time.
    pub fn finish(
        mut self,
        batch: usize,
        mut emit: impl FnMut(Vec<Vec<u8>>) -> Result<(), Stop>,
    ) -> Result<u64, Stop> {
        let batch = batch.max(1);
        let mut out = Vec::with_capacity(batch);
        let mut count = 0u64;
        let mut live = |key: Vec<u8>, out: &mut Vec<Vec<u8>>| -> Result<(), Stop> {
            out.push(key);
            count = count.saturating_add(1);
            if out.len() >= batch {
                emit(std::mem::replace(out, Vec::with_capacity(batch)))?;
            }
            Ok(())
        };
        if self.spilled.is_empty() {
            let mut keys: Vec<Vec<u8>> = self
                .current
                .drain()
                .filter(|(_, alive)| *alive)
                .map(|(key, _)| key)
                .collect();
            keys.sort_unstable();
            for key in keys {
                live(key, &mut out)?;
            }
        } else {
            if !self.current.is_empty() {
                self.spill().map_err(Stop::Io)?;
            }
            merge(std::mem::take(&mut self.spilled), |key| live(key, &mut out))?;
        }
        if !out.is_empty() {
            emit(out)?;
        }
        Ok(count)
    }
}

/// Merges sorted runs (oldest first), calling `live` with each key whose
/// newest entry is alive, in key order.
fn merge(runs: Vec<File>, mut live: impl FnMut(Vec<u8>) -> Result<(), Stop>) -> Result<(), Stop> {
    let mut readers: Vec<BufReader<File>> = runs.into_iter().map(BufReader::new).collect();
    // Smallest key first; among equal keys the runs' order decides below.
    let mut heap = BinaryHeap::new();
    for (run, reader) in readers.iter_mut().enumerate() {
        if let Some((key, alive)) = read_entry(reader).map_err(Stop::Io)? {
            heap.push(Reverse((key, run, alive)));
        }
    }
    while let Some(Reverse((key, run, alive))) = heap.pop() {
        let mut newest = (run, alive);
        let mut advance = vec![run];
        while heap.peek().is_some_and(|Reverse((k, _, _))| *k == key) {
            let Some(Reverse((_, other, alive))) = heap.pop() else {
                break;
            };
            newest = newest.max((other, alive));
            advance.push(other);
        }
        for run in advance {
            if let Some((next, alive)) = read_entry(&mut readers[run]).map_err(Stop::Io)? {
                heap.push(Reverse((next, run, alive)));
            }
        }
        if newest.1 {
            live(key)?;
        }
    }
    Ok(())
}

fn write_entry(out: &mut impl Write, key: &[u8], alive: bool) -> std::io::Result<()> {
    let len = u32::try_from(key.len()).map_err(|_| std::io::Error::other("a key over 4 GB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(&[u8::from(alive)])
}

/// The next entry of a run, `None` at its end.
fn read_entry(reader: &mut BufReader<File>) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_le_bytes(len))
        .map_err(|_| std::io::Error::other("a key longer than this machine's memory"))?;
    let mut key = vec![0u8; len];
    reader.read_exact(&mut key)?;
    let mut alive = [0u8; 1];
    reader.read_exact(&mut alive)?;
    Ok(Some((key, alive[0] != 0)))
}

/// A file in the temporary directory, unlinked at once: it goes away when
/// closed, also if the process dies.
fn anonymous_file() -> std::io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "kappa-live-keys-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest record per key decides, across runs; batches hold at most
    /// `batch` keys; the gathered run never exceeds the budget.
    fn check(budget: usize, batch: usize, records: &[(u32, bool)]) {
        let mut runs = KeyRuns::new(budget);
        let mut expected: HashMap<Vec<u8>, bool> = HashMap::new();
        for (key, alive) in records {
            let key = key.to_be_bytes().to_vec();
            runs.note(&key, *alive).unwrap();
            expected.insert(key, *alive);
        }
        assert!(runs.peak_bytes <= budget.max(4 + ENTRY_OVERHEAD));
        let spilled = runs.spilled_runs();
        let mut got = Vec::new();
        let count = runs
            .finish(batch, |keys| {
                assert!(!keys.is_empty() && keys.len() <= batch, "{}", keys.len());
                got.extend(keys);
                Ok(())
            })
            .unwrap();
        let mut want: Vec<Vec<u8>> = expected
            .into_iter()
            .filter(|(_, alive)| *alive)
            .map(|(k, _)| k)
            .collect();
        want.sort();
        assert_eq!(got, want, "spilled runs: {spilled}");
        assert_eq!(count, want.len() as u64);
    }

    #[test]
    fn in_memory_when_small() {
        check(1 << 20, 3, &[(1, true), (2, true), (1, false), (3, true)]);
    }

    #[test]
    fn spilled_runs_merge_newest_first_in_bounded_memory() {
        // 20,000 keys in runs of 15 keys (over a thousand runs, merged every
        // MAX_RUNS): a key deleted, revived and deleted again lands in
        // different runs.
        let mut records = Vec::new();
        for round in 0..4u32 {
            for key in 0..5000u32 {
                records.push((key, (key + round) % 3 != 0));
            }
        }
        for key in 5000..20000u32 {
            records.push((key, key % 7 != 0));
        }
        let budget = 15 * (4 + ENTRY_OVERHEAD);
        let mut runs = KeyRuns::new(budget);
        for (key, alive) in &records {
            runs.note(&key.to_be_bytes(), *alive).unwrap();
        }
        assert!(runs.spilled_runs() < MAX_RUNS, "{}", runs.spilled_runs());
        assert!(runs.peak_bytes <= budget);
        check(budget, 1000, &records);
        check(budget, 1, &records[..200]);
    }
}
