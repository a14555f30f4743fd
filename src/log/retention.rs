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
