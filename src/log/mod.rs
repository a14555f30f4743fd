//! The partition log: segments of record batches, their sparse offset indexes, the
//! recovery-point checkpoint, recovery after a crash, retention, compaction, idempotent
//! producer state and the leader-epoch cache.
//!
//! Sans-IO: the log keeps every segment's bytes in memory (the broker's page cache) and
//! queues the disk operations that would make them durable as [`DiskOp`]s, which the driver
//! (the simulated node shell) carries out in order and then reports back
//! ([`PartitionLog::mark_flushed`]). [`PartitionLog::recover`] is handed whatever the disk
//! kept after a crash and rebuilds the log from it, never trusting derived files (indexes)
//! and never reusing an offset below the persisted recovery point.
//!
//! This module does not own replication (the follower fetch loop, HW, ISR) nor the batch
//! byte layout (`crate::record`); it owns where batches live and what survives a crash.

mod checkpoint;
mod compaction;
mod epoch_cache;
mod index;
mod partition_log;
mod producer_snapshot;
mod producer_state;
mod recovery;
mod retention;
mod segment;
#[cfg(test)]
mod tests_model;

pub use checkpoint::CHECKPOINT_FILE;
pub use compaction::CompactionInfo;
pub use epoch_cache::{EpochEntry, LeaderEpochCache};
pub use index::{IndexEntry, OffsetIndex};
pub use partition_log::PartitionLog;
pub use producer_state::{BatchMetadata, ProducerEntry, ProducerStateManager};
pub use recovery::{CheckpointStatus, RecoveryCut, RecoveryReport};

use crate::record::RecordError;
use crate::types::{Epoch, Offset, ProducerId};
use bytes::Bytes;
use thiserror::Error;

/// One disk operation, carried out by the driver in the order the log queued it.
///
/// Durability contract the log relies on: a `Write` or `Truncate` is durable once a later
/// `Sync` of the same path completes (until then a crash may drop it, keep it, or tear a
/// write at a 512-byte sector boundary); a `Delete` is durable once carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// Write `data` at byte `offset` of `path`, creating the file if needed (unsynced).
    Write { path: String, offset: u64, data: Bytes },
    /// Make every earlier write, truncation and deletion of `path` durable.
    Sync { path: String },
    /// Cut `path` to `len` bytes.
    Truncate { path: String, len: u64 },
    /// Remove `path` (durable once carried out).
    Delete { path: String },
}

impl DiskOp {
    pub fn path(&self) -> &str {
        match self {
            DiskOp::Write { path, .. }
            | DiskOp::Sync { path }
            | DiskOp::Truncate { path, .. }
            | DiskOp::Delete { path } => path,
        }
    }
}

/// When the log asks for its segments to be synced (Kafka's flush.messages / flush.ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Kafka's default: never sync on its own; durability comes from replication.
    Never,
    /// Sync after every appended batch (flush.messages = 1).
    EveryBatch,
    /// Sync when this many milliseconds passed since the last flush (flush.ms).
    IntervalMs(u64),
}

/// Kafka's cleanup.policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupPolicy {
    Delete,
    Compact,
}

/// Per-partition log configuration; the defaults are Kafka's, scaled down for simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll when the active segment would exceed this (Kafka: segment.bytes 1 GiB; 1 MiB here).
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is this old (Kafka: segment.ms, 7 days).
    pub segment_ms: u64,
    /// An offset index entry every this many bytes (Kafka: index.interval.bytes, 4096).
    pub index_interval_bytes: u32,
    pub flush: FlushPolicy,
    /// Delete closed segments whose newest record is older (Kafka: retention.ms, 7 days).
    pub retention_ms: Option<u64>,
    /// Delete the oldest closed segments while the log is larger (Kafka: retention.bytes, -1).
    pub retention_bytes: Option<u64>,
    pub cleanup: CleanupPolicy,
    /// Compaction drops a tombstone once its timestamp is this old (delete.retention.ms, 1 day).
    pub delete_retention_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            index_interval_bytes: 4096,
            flush: FlushPolicy::Never,
            retention_ms: Some(7 * DAY_MS),
            retention_bytes: None,
            cleanup: CleanupPolicy::Delete,
            delete_retention_ms: DAY_MS,
        }
    }
}

/// What the log refuses; each is a value the broker maps to a Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum LogError {
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: Offset, log_start_offset: Offset, log_end_offset: Offset },
    /// A retry of one of the producer's last five batches: answer success with `original`.
    #[error("duplicate batch from {producer_id} seq {first_sequence}, appended at {original}")]
    DuplicateSequence { producer_id: ProducerId, first_sequence: i32, original: Offset },
    #[error("out of order sequence from {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence { producer_id: ProducerId, expected: i32, got: i32 },
    #[error("producer {producer_id} epoch {got} is older than {current}")]
    InvalidProducerEpoch { producer_id: ProducerId, current: i16, got: i16 },
    #[error("corrupt record: {0}")]
    CorruptRecord(#[from] RecordError),
    #[error("batch of {bytes} bytes exceeds the segment size {limit}")]
    RecordTooLarge { bytes: usize, limit: u64 },
    #[error("append at base offset {base_offset} but the log end offset is {log_end_offset}")]
    NonMonotonicAppend { base_offset: Offset, log_end_offset: Offset },
    #[error("append in leader epoch {epoch} but the log already has epoch {latest}")]
    StaleLeaderEpoch { epoch: Epoch, latest: Epoch },
}

/// The result of a successful append (Kafka's LogAppendInfo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp_ms: i64,
    pub record_count: u32,
    pub bytes: usize,
    /// The segment the batch went to; differs from the previous one after a roll.
    pub segment_base_offset: Offset,
}

/// Whole batches read from the log (Kafka's FetchDataInfo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchData {
    /// Concatenated batches; the first contains or follows the requested offset.
    pub records: Bytes,
    pub batch_count: usize,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

/// What `truncate_to` removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncateInfo {
    pub requested: Offset,
    pub old_log_end_offset: Offset,
    /// Batch boundaries are kept whole, so this may be below `requested`.
    pub new_log_end_offset: Offset,
    pub deleted_segments: Vec<Offset>,
}

/// `<dir>/<base offset, 20 digits>.<suffix>`, Kafka's file naming.
pub(crate) fn segment_file(dir: &str, base_offset: Offset, suffix: &str) -> String {
    format!("{dir}/{:020}.{suffix}", base_offset.0)
}

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
/// A compacted copy of a segment, complete only once its swap marker is durable.
pub(crate) const CLEANED_SUFFIX: &str = "cleaned";
/// Marker: the `.cleaned` file of this length and CRC replaces the `.log` file.
pub(crate) const SWAP_SUFFIX: &str = "swap";
