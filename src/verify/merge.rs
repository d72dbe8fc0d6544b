//! The merge-compare: two streams in ascending order-key order, walked
//! together like a merge join. A key only in the source is missing, only in
//! the rebuilt table extra, in both with unequal canonical values different.
//! Memory holds one chunk of each side plus the differences kept for detail,
//! whatever the tables' sizes.
//!
//! Alongside, the merged key sequence is cut into ranges of [`RANGE_KEYS`]
//! keys and each side's rows in a range are hashed (order key + canonical
//! values). Differing digests name the key ranges where the tables differ —
//! compact enough to report for any table size, and the starting point for
//! a targeted re-check. (Both sides must be decoded here anyway — the
//! rebuilt values are Avro, the source values text — so a separate
//! checksum-only pass would read everything once more, not less.)

use super::rebuilt::RebuiltRow;
use super::source::{OrderedRow, OrderedSource};
use anyhow::bail;
use kappa_materialize::order_key::encode_key;
use kappa_schemas::{Row, TableSchema, Value};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hasher};
use tokio::sync::mpsc;

/// Keys per checksummed range.
pub const RANGE_KEYS: u64 = 10_000;
/// Differing ranges kept for the report.
const RANGES_KEPT: usize = 100;

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Missing,
    Extra,
    Different,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Different => "different",
        }
    }
}

/// A difference kept with both rows for detail and re-checks.
pub struct Candidate {
    pub kind: Kind,
    pub key: Vec<Value>,
    pub source: Option<Row>,
    pub rebuilt: Option<Vec<Option<Value>>>,
}

/// A key range whose digests differ.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RangeReport {
    pub first_key: String,
    pub last_key: String,
    pub source_rows: u64,
    pub rebuilt_rows: u64,
}

/// The merge's result.
#[derive(Default)]
pub struct Merged {
    pub source_rows: u64,
    pub rebuilt_rows: u64,
    /// Differences kept in full, in key order (up to the caller's cap).
    pub candidates: Vec<Candidate>,
    /// Differences past the cap, by kind.
    pub uncounted: [u64; 3],
    pub ranges: Vec<RangeReport>,
    pub differing_ranges: u64,
}

/// `name=value, …` of a key, for people.
pub fn key_text(table: &TableSchema, key: &[Value]) -> String {
    table
        .key()
        .zip(key)
        .map(|(c, v)| format!("{}={v}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a source value equals its rebuilt counterpart (a field the
/// rebuilt schema lacks equals NULL).
pub fn same(source: &Value, rebuilt: Option<&Value>) -> bool {
    rebuilt.map_or(matches!(source, Value::Null), |v| v == source)
}

struct Range {
    first: Option<Vec<Value>>,
    last: Option<Vec<Value>>,
    keys: u64,
    source_rows: u64,
    rebuilt_rows: u64,
    source: DefaultHasher,
    rebuilt: DefaultHasher,
}

impl Range {
    fn new() -> Self {
        Self {
            first: None,
            last: None,
            keys: 0,
            source_rows: 0,
            rebuilt_rows: 0,
            source: DefaultHasher::new(),
            rebuilt: DefaultHasher::new(),
        }
    }
}

struct Merger<'a> {
    table: &'a TableSchema,
    cap: usize,
    merged: Merged,
    range: Range,
}

impl Merger<'_> {
    fn key_of(&self, row: impl Fn(usize) -> Value) -> Vec<Value> {
        self.table.key_columns.iter().map(|&i| row(i)).collect()
    }

    fn note(&mut self, candidate: Candidate) {
        if self.merged.candidates.len() < self.cap {
            self.merged.candidates.push(candidate);
        } else {
            self.merged.uncounted[candidate.kind as usize] += 1;
        }
    }

    /// Adds one merged key to the current range; closes full ranges.
    fn hash(
        &mut self,
        key: &[Value],
        ord: &[u8],
        source: Option<&Row>,
        rebuilt: Option<&[Option<Value>]>,
    ) {
        let range = &mut self.range;
        if range.first.is_none() {
            range.first = Some(key.to_vec());
        }
        range.last = Some(key.to_vec());
        range.keys += 1;
        if let Some(row) = source {
            range.source_rows += 1;
            range.source.write(ord);
            range.source.write(&encode_key(row));
        }
        if let Some(row) = rebuilt {
            range.rebuilt_rows += 1;
            range.rebuilt.write(ord);
            let values: Vec<&Value> = row
                .iter()
                .map(|v| v.as_ref().unwrap_or(&Value::Null))
                .collect();
            range.rebuilt.write(&encode_key(values));
        }
        if range.keys >= RANGE_KEYS {
            self.close_range();
        }
    }

    fn close_range(&mut self) {
        let range = std::mem::replace(&mut self.range, Range::new());
        if range.keys == 0 || range.source.finish() == range.rebuilt.finish() {
            return;
        }
        self.merged.differing_ranges += 1;
        if self.merged.ranges.len() < RANGES_KEPT {
            self.merged.ranges.push(RangeReport {
                first_key: key_text(self.table, range.first.as_deref().unwrap_or_default()),
                last_key: key_text(self.table, range.last.as_deref().unwrap_or_default()),
                source_rows: range.source_rows,
                rebuilt_rows: range.rebuilt_rows,
            });
        }
    }

    fn missing(&mut self, (ord, row): OrderedRow) {
        let key = self.key_of(|i| row[i].clone());
        self.hash(&key, &ord, Some(&row), None);
        self.note(Candidate {
            kind: Kind::Missing,
            key,
            source: Some(row),
            rebuilt: None,
        });
    }

    fn extra(&mut self, row: RebuiltRow) {
        let key = self.key_of(|i| row.values[i].clone().unwrap_or(Value::Null));
        self.hash(&key, &row.ord, None, Some(&row.values));
        self.note(Candidate {
            kind: Kind::Extra,
            key,
            source: None,
            rebuilt: Some(row.values),
        });
    }

    fn both(&mut self, (ord, source): OrderedRow, rebuilt: RebuiltRow) {
        let key = self.key_of(|i| source[i].clone());
        self.hash(&key, &ord, Some(&source), Some(&rebuilt.values));
        let equal = source
            .iter()
            .zip(&rebuilt.values)
            .all(|(s, r)| same(s, r.as_ref()));
        if !equal {
            self.note(Candidate {
                kind: Kind::Different,
                key,
                source: Some(source),
                rebuilt: Some(rebuilt.values),
            });
        }
    }
}

/// Walks both sides to their ends, keeping up to `cap` differences in full.
pub async fn merge<S: OrderedSource>(
    source: &mut S,
    mut rebuilt: mpsc::Receiver<anyhow::Result<Vec<RebuiltRow>>>,
    cap: usize,
) -> anyhow::Result<Merged> {
    let table = source.schema().clone();
    let mut merger = Merger {
        table: &table,
        cap,
        merged: Merged::default(),
        range: Range::new(),
    };
    let mut left: VecDeque<OrderedRow> = VecDeque::new();
    let mut right: VecDeque<RebuiltRow> = VecDeque::new();
    let (mut left_done, mut right_done) = (false, false);
    let mut last_left: Option<Vec<u8>> = None;
    let mut last_right: Option<Vec<u8>> = None;
    loop {
        if left.is_empty() && !left_done {
            match source.next_chunk().await? {
                Some(chunk) => left.extend(chunk),
                None => left_done = true,
            }
        }
        if right.is_empty() && !right_done {
            match rebuilt.recv().await {
                Some(chunk) => right.extend(chunk?),
                None => right_done = true,
            }
        }
        let order = match (left.front(), right.front()) {
            (None, None) if left_done && right_done => break,
            (None, None) => continue,
            (Some(_), None) if !right_done => continue,
            (None, Some(_)) if !left_done => continue,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((l, _)), Some(r)) => l.as_slice().cmp(&r.ord),
        };
        if order != Ordering::Greater {
            let row = left.pop_front().unwrap_or_default();
            check_order(&mut last_left, &row.0, "source")?;
            merger.merged.source_rows += 1;
            if order == Ordering::Less {
                merger.missing(row);
            } else {
                let other = right.pop_front().map(|r| {
                    check_order(&mut last_right, &r.ord, "rebuilt")?;
                    Ok::<_, anyhow::Error>(r)
                });
                let Some(other) = other else {
                    bail!("merge lost a rebuilt row")
                };
                let other = other?;
                merger.merged.rebuilt_rows += 1;
                merger.both(row, other);
            }
        } else if let Some(row) = right.pop_front() {
            check_order(&mut last_right, &row.ord, "rebuilt")?;
            merger.merged.rebuilt_rows += 1;
            merger.extra(row);
        }
    }
    merger.close_range();
    Ok(merger.merged)
}

fn check_order(last: &mut Option<Vec<u8>>, ord: &[u8], side: &str) -> anyhow::Result<()> {
    if let Some(previous) = last {
        if previous.as_slice() >= ord {
            bail!(
                "the {side} rows did not arrive in strictly ascending key order; comparing would \
                 report false differences, so verify stops (please report this with the key types)"
            );
        }
        previous.clear();
        previous.extend_from_slice(ord);
    } else {
        *last = Some(ord.to_vec());
    }
    Ok(())
}
