//! The integration tests that share the servers without disturbing one
//! another, as modules of one test binary: one link instead of fifteen, and
//! cargo's test threads run them side by side as before. Tests that restart
//! or reconfigure a server (`pg_restart.rs`, `services_restart.rs`,
//! `slot_lost.rs`, `mysql_purged.rs`, `mysql_compressed.rs`,
//! `mysql_truncated_binlog.rs`) keep binaries of their own in `tests/`:
//! cargo runs test binaries one after another, so nothing else sees the
//! server go away.

#[path = "../common/mod.rs"]
mod common;

mod compaction;
mod compose;
mod materializer;
mod mysql_pipeline;
mod mysql_resnapshot;
mod mysql_types;
mod mysql_verify;
mod oracle;
mod postgres_pipeline;
mod postgres_reader;
mod postgres_toast;
mod postgres_types;
mod snapshot_restart;
mod truncate;
mod verify;
