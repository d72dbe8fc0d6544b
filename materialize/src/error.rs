/// What can go wrong writing the rebuilt table.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("rebuilt table {path}: {reason}")]
    Table { path: String, reason: String },
}
