//! Bounds both readers' streams keep, in one place: how large a piece of a
//! transaction may grow before it is handed over, and how long to wait
//! before reconnecting.

use std::time::Duration;

/// A large transaction is handed over in pieces of this many changes, so
/// memory holds one piece, not the whole transaction; only its last piece
/// carries the commit's checkpoint.
pub(crate) const PIECE: usize = 512;

/// ... or once this many bytes of row data are decoded into it: wide rows
/// (TOASTed text, large bytea or BLOB values) would otherwise make a piece of
/// [`PIECE`] rows weigh hundreds of megabytes.
pub(crate) const PIECE_BYTES: usize = 1 << 20;

/// How long to wait before reconnect attempt `attempt` (from 0): 1 s
/// doubling to 30 s. A session that got its stream open starts over at 0.
pub(crate) fn reconnect_backoff(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.min(5)).min(30))
}

#[cfg(test)]
mod tests {
    use super::reconnect_backoff;
    use std::time::Duration;

    #[test]
    fn the_backoff_doubles_from_one_second_to_thirty() {
        let waits: Vec<u64> = (0..8).map(|n| reconnect_backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(reconnect_backoff(u32::MAX), Duration::from_secs(30));
    }
}
