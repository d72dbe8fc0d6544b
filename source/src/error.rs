use kappa_schemas::{SchemaError, TableName};

/// Why a reader stopped. Variants name the table, slot or setting involved
/// and, where the user can fix it, how.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("PostgreSQL at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL query failed while {doing}: {source}")]
    Query {
        doing: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("MySQL/MariaDB query failed while {doing}: {source}")]
    Mysql {
        doing: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("binlog position {position} is no longer on the server (binlogs purged, or expire_logs_days / \
             binlog_expire_logs_seconds removed it): changes made since are lost to kappa. Re-snapshot: \
             delete the connector's topics and start it under a new connector name (or delete its offsets record), \
             and keep binlogs longer than the connector may be down")]
    BinlogPurged { position: String },
    #[error("replication from slot {slot}, {doing}: {source}")]
    ReplicationStream {
        slot: String,
        doing: &'static str,
        #[source]
        source: pgwire_replication::PgWireError,
    },
    #[error("replication slot {slot} is unusable: the server refused to stream from it ({source}). If the slot \
             was dropped or invalidated (max_slot_wal_keep_size), the changes it held are lost to kappa. \
             Re-snapshot: drop the slot, delete the topics and the connector's offsets record (or use a new \
             connector name and topic prefix), then start again")]
    SlotRefused {
        slot: String,
        #[source]
        source: pgwire_replication::PgWireError,
    },
    #[error("connector {connector} was snapshotted through slot {recorded:?} but the config names slot \
             {configured:?}; use the old slot name, or a new connector name and topic prefix to start over")]
    SlotMismatch {
        connector: String,
        recorded: String,
        configured: String,
    },
    #[error("kappa snapshot of a MySQL/MariaDB source writes its request into a signal table, and the config \
             has none: add signal_table = \"kappa.kappa_signal\" under [source.mysql], restart `kappa run` \
             with it (it creates the table), then run kappa snapshot again")]
    NoSignalTable,
    #[error("the server refused to stream the binlog from {position}: {source}")]
    BinlogRefused {
        position: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("binlog {file} ends in the middle of an event (at byte {read_to}): the server was killed while \
             writing it, and its crash recovery rolled back the transaction cut off there. kappa had already \
             published {bytes} bytes of that transaction's rows, more than the {limit} bytes it keeps to undo \
             them, so it stops rather than leave rows that never committed on the topics. Nothing past \
             {committed} is stored. Fix: run the connector under a new name, so it snapshots anew")]
    BinlogTruncatedUndoTooLarge {
        file: String,
        read_to: u64,
        committed: String,
        bytes: usize,
        limit: usize,
    },
    #[error("binlog position {position}: a two-phase XA transaction writes captured table {table} \
             (XA START … XA END, XA PREPARE; committed or rolled back later). kappa does not capture \
             two-phase XA yet: whether its rows will exist is decided after they are in the binlog. \
             Nothing of it was emitted, and the stored position stays before it. Fix: commit such \
             transactions with XA COMMIT … ONE PHASE or as ordinary transactions, or leave the table \
             out (exclude_tables)")]
    TwoPhaseXa { position: String, table: TableName },
    #[error("table {table} does not exist (or is not visible to this user); check `tables` in the config")]
    NoSuchTable { table: TableName },
    #[error("table {table} has no primary key and no replica identity index, so its records cannot be keyed: \
             add one (ALTER TABLE {table} ADD PRIMARY KEY (...)), or ALTER TABLE {table} REPLICA IDENTITY USING INDEX <unique index>, \
             or set skip_tables_without_key = true to leave it out with a warning")]
    NoPrimaryKey { table: TableName },
    #[error("{reason}")]
    BadTableName { name: String, reason: String },
    #[error("no table matches {patterns:?} (minus {excluded:?}): check `tables` in {section}")]
    NoTableMatches {
        patterns: Vec<String>,
        excluded: Vec<String>,
        section: String,
    },
    #[error("table {table} has REPLICA IDENTITY NOTHING: its DELETEs carry no key. Run: ALTER TABLE {quoted} REPLICA IDENTITY DEFAULT (or FULL)")]
    ReplicaIdentityNothing { table: TableName, quoted: String },
    #[error("table {table}: columns {columns:?} may be stored out of line (TOAST), and with REPLICA IDENTITY {identity} an UPDATE that \
             leaves them unchanged does not carry their values; it is set to unchanged_toast = \"refuse\" and kappa \
             never writes a placeholder. Fix: ALTER TABLE {quoted} REPLICA IDENTITY FULL; — or let kappa fetch such \
             values by key: remove unchanged_toast = \"refuse\" from [source.postgres.table_options.\"{table}\"] \
             (or set it to \"fetch\", the default)")]
    UnchangedToastRefused {
        table: TableName,
        columns: Vec<String>,
        identity: &'static str,
        quoted: String,
    },
    #[error("replication slot {slot} is gone, but the offsets record says tables {snapshotted:?} were snapshotted through it: \
             changes made since are lost to kappa. Re-snapshot: delete the topics and the connector's offsets \
             record (or use a new connector name and topic prefix), then start again")]
    SlotGone {
        slot: String,
        snapshotted: Vec<String>,
    },
    #[error("replication slot {slot} exists but uses plugin {plugin:?}, not pgoutput; choose another `slot` name in the config")]
    SlotPlugin {
        slot: String,
        plugin: Option<String>,
    },
    #[error("replication slot {slot} belongs to database {found:?}, not {database}; choose another `slot` name")]
    SlotDatabase {
        slot: String,
        found: Option<String>,
        database: String,
    },
    #[error("replication slot {slot} has lost WAL it still needed (wal_status = lost): changes are gone. \
             Drop the slot (SELECT pg_drop_replication_slot('{slot}')), delete the topics and the connector's \
             offsets record, and start again to re-snapshot")]
    SlotWalLost { slot: String },
    #[error("replication slot {slot} is in use by server process {pid} (application_name {holder:?}) and was not released within {seconds}s: another connector streams from it. Stop that one, or give this connector its own `slot` name; to end the session: SELECT pg_terminate_backend({pid})")]
    SlotInUse {
        slot: String,
        pid: i32,
        holder: String,
        seconds: u64,
    },
    #[error("MySQL URL {url:?} is invalid: {reason} (expected mysql://user@host:3306/)")]
    InvalidMysqlUrl { url: String, reason: String },
    #[error("the server has {name} = {found:?}; kappa needs {name} = {want} (in my.cnf: log_bin, binlog_format = ROW, \
             binlog_row_image = FULL, binlog_row_metadata = FULL; then restart the server)")]
    BinlogSetting {
        name: &'static str,
        found: String,
        want: &'static str,
    },
    #[error("the server has {name} = ON: kappa does not decode compressed binlog events yet. {fix}; \
             events already written compressed cannot be read, so re-snapshot if any were written since \
             the connector's stored position")]
    BinlogCompressed {
        name: &'static str,
        fix: &'static str,
    },
    #[error("SHOW MASTER STATUS returned nothing: binary logging is off (set log_bin and restart the server)")]
    BinaryLoggingOff,
    #[error("the server has binlog_order_commits = OFF: engine commits may then become visible out of \
             binlog order and a chunk could carry a row older than the stream's; set it ON (the default)")]
    BinlogOrderCommitsOff,
    #[error(
        "table {table} has no primary key, so its records cannot be keyed: add one \
             (ALTER TABLE {quoted} ADD PRIMARY KEY (...)), or leave it out with exclude_tables"
    )]
    MysqlNoPrimaryKey { table: TableName, quoted: String },
    #[error("the definition of {tables} changed (TRUNCATE or ALTER TABLE) during each of {reads} snapshot reads; run kappa again when those DDL statements are not running")]
    DefinitionKeptChanging { tables: String, reads: usize },
    #[error("the signal table {signal} does not exist: the connector creates it when it starts with \
             signal_table = \"{signal}\" under [source.mysql]; (re)start `kappa run` with that config first")]
    NoSuchSignalTable { signal: TableName },
    /// The MySQL reader's catalog session was not reopened after a lost
    /// connection: a kappa bug.
    #[error("no catalog session")]
    NoCatalogSession,
    #[error("table {}, column {}: cannot read value {:?} as {}: {}", .0.table, .0.column, .0.value, .0.expected, .0.reason)]
    BadValue(Box<BadValue>),
    /// A row with another number of values than its table has columns
    /// (`what`: "a row event", "a tuple", "a COPY line").
    #[error(
        "{what} of {table} has {got} values for {want} columns (did the table change shape under \
             kappa? restart it; if this persists, report it with the table's definition)"
    )]
    RowShape {
        what: &'static str,
        table: TableName,
        got: usize,
        want: usize,
    },
    /// Bytes of a binlog row that do not decode as the TABLE_MAP's types.
    #[error("a binlog row of {table}{at} does not decode: {source}")]
    RowUndecodable {
        table: TableName,
        /// " at file:pos" when known.
        at: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the TABLE_MAP event of {table} does not decode: {source} (kappa needs binlog_row_metadata = FULL)")]
    TableMap {
        table: TableName,
        #[source]
        source: std::io::Error,
    },
    #[error("binlog event at {at} does not decode: {source}")]
    BinlogEventUnreadable {
        at: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binlog event at {at} is {what}: kappa does not decode compressed binlog events yet and never \
             skips one. Turn the setting off (SET GLOBAL … = OFF, and in my.cnf); the events already \
             written compressed cannot be read, so re-snapshot (a new connector name)")]
    CompressedBinlogEvent { at: String, what: &'static str },
    #[error("binlog event at {at} (type {event_type}) is {what}; kappa never skips an event that could hold changes")]
    RefusedBinlogEvent {
        at: String,
        event_type: u8,
        what: &'static str,
    },
    #[error("binlog event at {at}: a row event for table id {table_id}, which no TABLE_MAP event before it \
             named: kappa cannot tell which table changed and never skips changes (was the stored \
             position edited to point inside a transaction?)")]
    UnmappedTableId { at: String, table_id: u64 },
    #[error("ROTATE event with an unreadable file name {raw:?}")]
    RotateName { raw: Vec<u8> },
    /// A PostgreSQL change without a value kappa needs for its key.
    #[error("{what} of {table} has no value for key column {column}")]
    MissingKeyValue {
        what: &'static str,
        table: TableName,
        column: String,
    },
    /// A pgoutput message that does not decode (kappa's decoder says why).
    #[error("a pgoutput message does not decode: {reason}")]
    PgOutputUnreadable { reason: String },
    #[error("a change for relation {relation_id} came before its Relation message")]
    UnknownRelation { relation_id: u32 },
    /// COPY output kappa's text parser does not read.
    #[error("COPY of {table}: {reason}")]
    CopyUnreadable { table: TableName, reason: String },
    /// A server's answer to a command of kappa's, not in the form expected.
    #[error("the server's answer to {command} is not what kappa expects: {answer}")]
    UnexpectedAnswer {
        command: &'static str,
        answer: String,
    },
    /// A state the code rules out: a kappa bug.
    #[error("internal error (a bug in kappa; please report it with the log): {0}")]
    Bug(String),
    #[error("table {table}: {reason}")]
    Unsupported { table: TableName, reason: String },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("the change consumer went away (the daemon is shutting down)")]
    ConsumerGone,
}

/// A source value kappa could not read (boxed: errors stay small on the hot path).
#[derive(Debug)]
pub struct BadValue {
    pub table: TableName,
    pub column: String,
    pub value: String,
    pub expected: String,
    pub reason: String,
}

/// What a failure means for whoever decides whether to retry; defined in
/// kappa-schemas, so that every kappa crate classifies with the same kinds.
pub use kappa_schemas::ErrorKind;

impl SourceError {
    /// Whether waiting and retrying can help (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        use SourceError as E;
        match self {
            E::Connect { source, .. } | E::Query { source, .. } => {
                crate::postgres::errors::client_kind(source)
            }
            E::Mysql { source, .. } => crate::mysql::errors::kind(source),
            E::ReplicationStream { source, .. } => {
                crate::postgres::errors::replication_kind(source)
            }
            E::SlotRefused { .. }
            | E::SlotMismatch { .. }
            | E::NoSignalTable
            | E::BinlogRefused { .. }
            | E::BinlogPurged { .. }
            | E::BinlogTruncatedUndoTooLarge { .. }
            | E::TwoPhaseXa { .. }
            | E::NoSuchTable { .. }
            | E::NoPrimaryKey { .. }
            | E::BadTableName { .. }
            | E::NoTableMatches { .. }
            | E::ReplicaIdentityNothing { .. }
            | E::UnchangedToastRefused { .. }
            | E::SlotGone { .. }
            | E::SlotPlugin { .. }
            | E::SlotDatabase { .. }
            | E::SlotWalLost { .. }
            | E::SlotInUse { .. }
            | E::InvalidMysqlUrl { .. }
            | E::BinlogSetting { .. }
            | E::BinlogCompressed { .. }
            | E::BinaryLoggingOff
            | E::BinlogOrderCommitsOff
            | E::MysqlNoPrimaryKey { .. }
            | E::NoSuchSignalTable { .. } => ErrorKind::Configuration,
            // Another statement's DDL: the next attempt may not meet it.
            E::DefinitionKeptChanging { .. } => ErrorKind::Transient,
            E::NoCatalogSession => ErrorKind::Definite,
            E::Schema(e) => e.kind(),
            E::BadValue(_)
            | E::RowShape { .. }
            | E::RowUndecodable { .. }
            | E::TableMap { .. }
            | E::BinlogEventUnreadable { .. }
            | E::RefusedBinlogEvent { .. }
            | E::UnmappedTableId { .. }
            | E::RotateName { .. }
            | E::MissingKeyValue { .. }
            | E::UnknownRelation { .. }
            | E::PgOutputUnreadable { .. }
            | E::CopyUnreadable { .. }
            | E::UnexpectedAnswer { .. }
            | E::Bug(_)
            | E::Unsupported { .. }
            | E::ConsumerGone => ErrorKind::Definite,
            E::CompressedBinlogEvent { .. } => ErrorKind::Configuration,
        }
    }

    /// A value of `column` in `table` that does not parse as `expected`.
    pub fn bad_value(
        table: &TableName,
        column: &str,
        value: impl Into<String>,
        expected: &str,
        reason: impl Into<String>,
    ) -> Self {
        SourceError::BadValue(Box::new(BadValue {
            table: table.clone(),
            column: column.to_string(),
            value: value.into(),
            expected: expected.to_string(),
            reason: reason.into(),
        }))
    }
}
