//! The leader-epoch cache (Kafka's LeaderEpochFileCache): for each leader epoch present in
//! the log, the first offset appended in it. A follower asks the leader for the end offset
//! of its latest epoch (OffsetsForLeaderEpoch, KIP-101) and truncates to it instead of to
//! its high watermark. Rebuilt from the batches' partition leader epochs on recovery (not
//! persisted), cut by truncation from either end. It owns no replication logic.

use crate::types::{Epoch, Offset};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: Epoch,
    pub start_offset: Offset,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn new() -> Self {
        LeaderEpochCache::default()
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<Epoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest.
    /// Returns false (and changes nothing) for an epoch older than the latest.
    pub fn assign(&mut self, epoch: Epoch, start_offset: Offset) -> bool {
        match self.entries.last() {
            Some(last) if last.epoch == epoch => true,
            Some(last) if last.epoch > epoch => false,
            last => {
                assert!(
                    last.is_none_or(|l| l.start_offset <= start_offset),
                    "epoch {epoch} starts at {start_offset}, before {last:?}"
                );
                self.entries.push(EpochEntry { epoch, start_offset });
                true
            }
        }
    }

    /// Kafka's OffsetsForLeaderEpoch: the largest epoch at or below `epoch` and the offset
    /// where it ends (the next epoch's start, or `log_end_offset` for the latest epoch).
    /// None when `epoch` is older than every epoch in the cache.
    pub fn end_offset_for(&self, epoch: Epoch, log_end_offset: Offset) -> Option<(Epoch, Offset)> {
        let after = self.entries.partition_point(|e| e.epoch <= epoch);
        let found = self.entries[..after].last()?;
        let end = self.entries.get(after).map_or(log_end_offset, |next| next.start_offset);
        assert!(end >= found.start_offset, "epoch {} ends at {end} before its start", found.epoch);
        Some((found.epoch, end))
    }

    /// Drops epochs starting at or past `offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, offset: Offset) {
        self.entries.retain(|e| e.start_offset < offset);
    }

    /// The log now starts at `offset`: earlier epochs go, the one spanning it starts there.
    pub fn truncate_from_start(&mut self, offset: Offset) {
        let spanning = self.entries.partition_point(|e| e.start_offset <= offset);
        if spanning > 0 {
            self.entries.drain(..spanning - 1);
            self.entries[0].start_offset = self.entries[0].start_offset.max(offset);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_and_truncation() {
        let mut cache = LeaderEpochCache::new();
        assert!(cache.assign(Epoch(1), Offset(0)));
        assert!(cache.assign(Epoch(1), Offset(5)));
        assert!(cache.assign(Epoch(3), Offset(10)));
        assert!(!cache.assign(Epoch(2), Offset(12)));
        assert_eq!(cache.end_offset_for(Epoch(0), Offset(20)), None);
        assert_eq!(cache.end_offset_for(Epoch(1), Offset(20)), Some((Epoch(1), Offset(10))));
        assert_eq!(cache.end_offset_for(Epoch(2), Offset(20)), Some((Epoch(1), Offset(10))));
        assert_eq!(cache.end_offset_for(Epoch(9), Offset(20)), Some((Epoch(3), Offset(20))));
        cache.truncate_from_start(Offset(4));
        assert_eq!(cache.entries()[0], EpochEntry { epoch: Epoch(1), start_offset: Offset(4) });
        cache.truncate_from_end(Offset(10));
        assert_eq!(cache.latest_epoch(), Some(Epoch(1)));
    }
}
