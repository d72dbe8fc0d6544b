//! The seeded workload: transactions of inserts, updates of every column,
//! deletes, primary-key changes that reuse deleted keys, upserts,
//! multi-table transactions, large transactions and TRUNCATE, written while
//! kappa snapshots and streams and while faults hit. The writer keeps the
//! key set of every table; after a failed transaction (a fault may kill the
//! connection inside COMMIT, so it may or may not have committed) it
//! reconnects and re-reads the key sets from the database.

use crate::db::Db;
use crate::rng::Rng;
use crate::schema::{Dialect, Table};
use anyhow::Result;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The kids a table's keys are drawn from: small enough that deleted keys
/// come back often.
const KID_LO: i64 = -64;
const KID_HI: i64 = 448;

pub struct Workload {
    pub dialect: Dialect,
    /// `schema` (PostgreSQL) or database (MySQL) holding the tables.
    pub namespace: String,
    pub tables: Vec<Table>,
    pub keys: Vec<BTreeSet<i64>>,
    /// Recently deleted kids per table, reused first by inserts and key changes.
    freed: Vec<Vec<i64>>,
    rng: Rng,
}

/// What the writer did, for the run's summary.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Row changes in committed transactions (a TRUNCATE counts its rows).
    pub changes: u64,
    pub transactions: u64,
    /// Transactions that failed (a fault hit them); their changes are not counted.
    pub failed: u64,
    pub truncates: u64,
    pub key_changes: u64,
    pub large_transactions: u64,
}

/// One planned transaction: statements plus the key sets after it commits.
struct Plan {
    statements: Vec<String>,
    changes: u64,
    /// (table, kid, present afterwards)
    effects: Vec<(usize, i64, bool)>,
    truncated: Vec<usize>,
    key_change: bool,
    large: bool,
}

impl Workload {
    pub fn new(dialect: Dialect, namespace: &str, tables: Vec<Table>, rng: Rng) -> Self {
        let n = tables.len();
        Self {
            dialect,
            namespace: namespace.to_string(),
            tables,
            keys: vec![BTreeSet::new(); n],
            freed: vec![Vec::new(); n],
            rng,
        }
    }

    pub fn qualified(&self, t: usize) -> String {
        format!("{}.{}", self.namespace, self.tables[t].name)
    }

    /// Creates the tables and fills each with `rows` rows (before kappa starts).
    pub async fn setup(&mut self, db: &mut Db, rows: usize) -> Result<Counts> {
        for t in 0..self.tables.len() {
            let create = self.tables[t].create_sql(self.dialect, &self.qualified(t));
            db.execute(&create).await?;
            if self.dialect == Dialect::Postgres {
                db.execute(&format!(
                    "ALTER TABLE {} REPLICA IDENTITY FULL",
                    self.qualified(t)
                ))
                .await?;
            }
        }
        let mut counts = Counts::default();
        for t in 0..self.tables.len() {
            let kids: Vec<i64> = (0..rows).map(|_| self.rng.range(KID_LO, KID_HI)).collect();
            let kids: BTreeSet<i64> = kids.into_iter().collect();
            for chunk in kids.iter().copied().collect::<Vec<_>>().chunks(50) {
                let plan = self.insert_rows(t, chunk);
                self.apply(db, plan, &mut counts).await?;
            }
        }
        Ok(counts)
    }

    /// Writes transactions until `stop` is set, pausing `pause_ms` at most
    /// between them.
    pub async fn run(
        &mut self,
        url: &str,
        stop: Arc<AtomicBool>,
        pause_ms: u64,
        log: impl Fn(String),
    ) -> Result<Counts> {
        let mut counts = Counts::default();
        let mut db = Db::connect_retrying(self.dialect, url, 120).await?;
        while !stop.load(Ordering::Relaxed) {
            let plan = self.plan();
            if let Err(e) = self.apply(&mut db, plan, &mut counts).await {
                counts.failed += 1;
                log(format!(
                    "writer: transaction failed ({e:#}); reconnecting and re-reading the keys"
                ));
                db = Db::connect_retrying(self.dialect, url, 180).await?;
                self.resync(&mut db).await?;
            }
            let pause = self.rng.range(0, pause_ms as i64 + 1) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Ok(counts)
    }

    async fn apply(&mut self, db: &mut Db, plan: Plan, counts: &mut Counts) -> Result<()> {
        db.transaction(&plan.statements).await?;
        for t in &plan.truncated {
            counts.changes += self.keys[*t].len() as u64;
            self.keys[*t].clear();
            counts.truncates += 1;
        }
        for (t, kid, present) in plan.effects {
            if present {
                self.keys[t].insert(kid);
            } else if self.keys[t].remove(&kid) {
                self.freed[t].push(kid);
                if self.freed[t].len() > 32 {
                    self.freed[t].remove(0);
                }
            }
        }
        counts.changes += plan.changes;
        counts.transactions += 1;
        counts.key_changes += u64::from(plan.key_change);
        counts.large_transactions += u64::from(plan.large);
        Ok(())
    }

    /// Re-reads every table's key set (after a transaction of unknown outcome).
    pub async fn resync(&mut self, db: &mut Db) -> Result<()> {
        for t in 0..self.tables.len() {
            let shape = self.tables[t].key;
            let cols: Vec<String> = shape
                .columns()
                .iter()
                .map(|c| match self.dialect {
                    Dialect::Postgres => format!("{c}::text"),
                    Dialect::Mysql => format!("CAST({c} AS CHAR)"),
                })
                .collect();
            let rows = db
                .text_rows(&format!(
                    "SELECT {} FROM {}",
                    cols.join(", "),
                    self.qualified(t)
                ))
                .await?;
            self.keys[t] = rows.iter().filter_map(|r| shape.kid(r)).collect();
            anyhow::ensure!(
                self.keys[t].len() == rows.len(),
                "table {}: {} keys read, only {} understood",
                self.qualified(t),
                rows.len(),
                self.keys[t].len()
            );
        }
        Ok(())
    }

    /// The next transaction, drawn from the seed.
    fn plan(&mut self) -> Plan {
        let roll = self.rng.below(1000);
        let t = self.rng.below(self.tables.len());
        match roll {
            0..=3 => self.truncate(t),
            4..=12 => self.large(t),
            13..=120 => self.multi_table(),
            _ => self.single(t),
        }
    }

    fn single(&mut self, t: usize) -> Plan {
        let mut plan = Plan::empty();
        self.one_change(t, &mut plan, &mut BTreeSet::new());
        plan
    }

    /// 2–8 changes over several tables in one transaction.
    fn multi_table(&mut self) -> Plan {
        let mut plan = Plan::empty();
        let mut touched = BTreeSet::new();
        for _ in 0..self.rng.range(2, 9) {
            let t = self.rng.below(self.tables.len());
            self.one_change(t, &mut plan, &mut touched);
        }
        plan
    }

    /// One change on table `t`, never on a key this transaction already
    /// touched (so the planned key sets stay exact).
    fn one_change(&mut self, t: usize, plan: &mut Plan, touched: &mut BTreeSet<(usize, i64)>) {
        let existing = self.pick_existing(t, touched);
        let absent = self.pick_absent(t, touched);
        let d = self.dialect;
        let q = self.qualified(t);
        let table = self.tables[t].clone();
        let roll = self.rng.below(100);
        match (roll, existing, absent) {
            (0..=29, _, Some(kid)) => {
                let p = self.insert_rows(t, &[kid]);
                plan.merge(p);
                touched.insert((t, kid));
            }
            (30..=59, Some(kid), _) if !table.columns.is_empty() => {
                // Every column gets a new value.
                let row = table.row(d, kid, &mut self.rng);
                let sets: Vec<String> = table
                    .columns
                    .iter()
                    .zip(&row[table.key.columns().len()..])
                    .map(|((c, _), v)| format!("{c} = {v}"))
                    .collect();
                plan.push(
                    format!(
                        "UPDATE {q} SET {} WHERE {}",
                        sets.join(", "),
                        table.key.predicate(d, kid)
                    ),
                    1,
                );
                touched.insert((t, kid));
            }
            (60..=74, Some(kid), _) => {
                plan.push(
                    format!("DELETE FROM {q} WHERE {}", table.key.predicate(d, kid)),
                    1,
                );
                plan.effects.push((t, kid, false));
                touched.insert((t, kid));
            }
            (75..=86, Some(old), Some(new)) => {
                // A primary-key change, often onto a key deleted a moment ago.
                let sets: Vec<String> = table
                    .key
                    .columns()
                    .iter()
                    .zip(table.key.literals(d, new))
                    .map(|(c, v)| format!("{c} = {v}"))
                    .collect();
                plan.push(
                    format!(
                        "UPDATE {q} SET {} WHERE {}",
                        sets.join(", "),
                        table.key.predicate(d, old)
                    ),
                    1,
                );
                plan.effects.push((t, old, false));
                plan.effects.push((t, new, true));
                plan.key_change = true;
                touched.insert((t, old));
                touched.insert((t, new));
            }
            (_, existing, absent) => {
                // An upsert: an insert that may meet an existing key.
                let Some(kid) = (if self.rng.chance(0.5) {
                    existing
                } else {
                    absent
                })
                .or(existing)
                .or(absent) else {
                    return;
                };
                let row = table.row(d, kid, &mut self.rng);
                let cols = table.all_columns();
                let keys = table.key.columns();
                let update: Vec<String> = match d {
                    Dialect::Postgres => table
                        .columns
                        .iter()
                        .map(|(c, _)| format!("{c} = EXCLUDED.{c}"))
                        .collect(),
                    Dialect::Mysql => table
                        .columns
                        .iter()
                        .map(|(c, _)| format!("{c} = VALUES({c})"))
                        .collect(),
                };
                let sql = match (d, update.is_empty()) {
                    (Dialect::Postgres, true) => format!(
                        "INSERT INTO {q} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING",
                        cols.join(", "),
                        row.join(", "),
                        keys.join(", ")
                    ),
                    (Dialect::Postgres, false) => format!(
                        "INSERT INTO {q} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
                        cols.join(", "),
                        row.join(", "),
                        keys.join(", "),
                        update.join(", ")
                    ),
                    (Dialect::Mysql, true) => format!(
                        "INSERT IGNORE INTO {q} ({}) VALUES ({})",
                        cols.join(", "),
                        row.join(", ")
                    ),
                    (Dialect::Mysql, false) => format!(
                        "INSERT INTO {q} ({}) VALUES ({}) ON DUPLICATE KEY UPDATE {}",
                        cols.join(", "),
                        row.join(", "),
                        update.join(", ")
                    ),
                };
                plan.push(sql, 1);
                plan.effects.push((t, kid, true));
                touched.insert((t, kid));
            }
        }
    }

    /// A large transaction: every row of the table updated, then hundreds
    /// more inserted.
    fn large(&mut self, t: usize) -> Plan {
        let mut plan = Plan::empty();
        plan.large = true;
        let d = self.dialect;
        let table = self.tables[t].clone();
        if let Some((c, kind)) = table.columns.first() {
            let v = kind.literal(d, &mut self.rng);
            plan.push(
                format!("UPDATE {} SET {c} = {v}", self.qualified(t)),
                self.keys[t].len() as u64,
            );
        }
        let absent: Vec<i64> = (KID_LO..KID_HI)
            .filter(|k| !self.keys[t].contains(k))
            .collect();
        let take = absent.len().min(self.rng.range(100, 400) as usize);
        for chunk in absent[..take].chunks(50) {
            plan.merge(self.insert_rows(t, chunk));
        }
        plan
    }

    fn truncate(&mut self, t: usize) -> Plan {
        let mut plan = Plan::empty();
        plan.statements
            .push(format!("TRUNCATE TABLE {}", self.qualified(t)));
        plan.truncated.push(t);
        plan
    }

    /// One multi-row INSERT of new rows for `kids`.
    fn insert_rows(&mut self, t: usize, kids: &[i64]) -> Plan {
        let mut plan = Plan::empty();
        let table = self.tables[t].clone();
        let rows: Vec<String> = kids
            .iter()
            .map(|kid| {
                format!(
                    "({})",
                    table.row(self.dialect, *kid, &mut self.rng).join(", ")
                )
            })
            .collect();
        plan.push(
            format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.qualified(t),
                table.all_columns().join(", "),
                rows.join(", ")
            ),
            kids.len() as u64,
        );
        plan.effects.extend(kids.iter().map(|k| (t, *k, true)));
        plan
    }

    fn pick_existing(&mut self, t: usize, touched: &BTreeSet<(usize, i64)>) -> Option<i64> {
        let keys = &self.keys[t];
        if keys.is_empty() {
            return None;
        }
        let start = self.rng.range(KID_LO, KID_HI);
        keys.range(start..)
            .chain(keys.range(..start))
            .copied()
            .find(|k| !touched.contains(&(t, *k)))
    }

    fn pick_absent(&mut self, t: usize, touched: &BTreeSet<(usize, i64)>) -> Option<i64> {
        let free = |k: &i64| !self.keys[t].contains(k) && !touched.contains(&(t, *k));
        if self.rng.chance(0.6) {
            if let Some(k) = self.freed[t].iter().rev().copied().find(|k| free(k)) {
                return Some(k);
            }
        }
        let start = self.rng.range(KID_LO, KID_HI);
        (start..KID_HI).chain(KID_LO..start).find(|k| free(k))
    }
}

impl Plan {
    fn empty() -> Self {
        Self {
            statements: Vec::new(),
            changes: 0,
            effects: Vec::new(),
            truncated: Vec::new(),
            key_change: false,
            large: false,
        }
    }

    fn push(&mut self, statement: String, changes: u64) {
        self.statements.push(statement);
        self.changes += changes;
    }

    fn merge(&mut self, other: Plan) {
        self.statements.extend(other.statements);
        self.changes += other.changes;
        self.effects.extend(other.effects);
        self.truncated.extend(other.truncated);
        self.key_change |= other.key_change;
        self.large |= other.large;
    }
}
