//! Retention (cleanup.policy=delete): delete whole closed segments, oldest first, while the
//! oldest one's newest record is older than retention_ms or the log without it is still at
//! least retention_bytes (Kafka's rules). The active segment is never deleted. The log
//! start offset moves to the next segment's base; producer state is kept (Kafka keeps it
//! too until the producer expires), the epoch cache drops epochs before the new start.

use super::partition_log::PartitionLog;
use crate::types::{Millis, Offset};
use tracing::info;

impl PartitionLog {
    /// Deletes the segments retention allows; returns their base offsets.
    pub(super) fn apply_retention(&mut self, now: Millis) -> Vec<Offset> {
        let mut deleted = Vec::new();
        // Bounded: each pass deletes one segment or stops.
        for _ in 0..self.segments.len() {
            if self.segments.len() <= 1 {
                break;
            }
            let (base, oldest) = self.segments.iter().next().expect("non-empty");
            let base = *base;
            let age_ms = i128::from(now.0) - i128::from(oldest.max_timestamp_ms());
            let by_time = self.config.retention_ms.is_some_and(|ms| age_ms > i128::from(ms));
            let size_without = self.size_bytes() - oldest.size_bytes();
            let by_size = self.config.retention_bytes.is_some_and(|limit| size_without >= limit);
            if !by_time && !by_size {
                break;
            }
            let ops = self.remove_segment(base);
            self.ops.extend(ops);
            let next_base = *self.segments.keys().next().expect("the active segment remains");
            assert!(next_base > self.log_start_offset, "log start would not move in {}", self.dir);
            self.log_start_offset = next_base;
            self.epoch_cache.truncate_from_start(next_base);
            info!(dir = %self.dir, offset = %base, log_start = %next_base, by_time, by_size, "retention deleted segment");
            deleted.push(base);
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use crate::log::tests_model::{batch_of, read_all, DIR};
    use crate::log::{LogConfig, LogError, PartitionLog};
    use crate::types::{Epoch, Millis, Offset};

    fn log_with_segments(config: LogConfig) -> PartitionLog {
        let mut log = PartitionLog::create(DIR, config, Millis(0));
        for i in 0..20u64 {
            let batch = batch_of(&[vec![b'x'; 200]], (i * 1000) as i64, Some((9, 0, i as i32)));
            log.append_as_leader(batch, Epoch(1), Millis(i * 1000)).expect("append");
        }
        assert!(log.segment_base_offsets().len() >= 4, "segments rolled");
        log
    }

    fn config() -> LogConfig {
        LogConfig { segment_bytes: 1024, retention_ms: None, ..LogConfig::default() }
    }

    #[test]
    fn retention_by_time_deletes_old_closed_segments_only() {
        let mut log = log_with_segments(LogConfig { retention_ms: Some(5_000), ..config() });
        log.take_disk_ops();
        log.tick(Millis(100_000));
        assert_eq!(log.segment_base_offsets().len(), 1, "all closed segments expired");
        assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
        let ops = log.take_disk_ops();
        assert!(ops.iter().all(|op| matches!(op, crate::log::DiskOp::Delete { .. })));
        let start = log.log_start_offset();
        assert!(matches!(
            log.read(Offset(start.0 - 1), 100, log.log_end_offset()),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log).first().map(|r| r.0), Some(start.0));
        // Producer state survives retention: a retry of the last batch is still a duplicate.
        let retry = batch_of(&[vec![b'x'; 200]], 0, Some((9, 0, 19)));
        assert!(matches!(
            log.append_as_leader(retry, Epoch(1), Millis(100_001)),
            Err(LogError::DuplicateSequence { original: Offset(19), .. })
        ));
    }

    #[test]
    fn retention_by_time_keeps_recent_segments() {
        let mut log = log_with_segments(LogConfig { retention_ms: Some(10_000), ..config() });
        log.tick(Millis(21_000));
        let start = log.log_start_offset();
        assert!(start > Offset(0) && start <= Offset(11), "start {start}");
    }

    #[test]
    fn retention_by_size_keeps_at_most_the_limit() {
        let mut log = log_with_segments(LogConfig { retention_bytes: Some(2048), ..config() });
        let before = log.size_bytes();
        log.tick(Millis(20_000));
        assert!(log.size_bytes() < before);
        assert!(log.size_bytes() <= 2048 + 1024, "within a segment of the limit");
        assert!(log.log_start_offset() > Offset(0));
        assert_eq!(log.leader_epoch_cache().entries()[0].start_offset, log.log_start_offset());
    }
}
