//! Idempotent producer state (Kafka's ProducerStateManager): per producer id, its epoch
//! and the metadata of its last five batches, enough to answer a retried batch with the
//! offset it was first appended at and to refuse a sequence gap or a fenced epoch.
//!
//! Sequence rules (Kafka's, with one documented choice):
//! - same epoch: a batch equal to one of the last five (first and last sequence) is a
//!   duplicate; otherwise its first sequence must follow the latest batch's last sequence,
//!   wrapping from i32::MAX to 0;
//! - a newer epoch must start at sequence 0 (Kafka's rule);
//! - an older epoch is fenced;
//! - an unknown producer may start at any sequence. Kafka requires 0 unless its state was
//!   lost; here state can be lost to retention plus a restart or to `truncate_to`, and a
//!   refused producer could never make progress, so any first sequence is accepted.
//!
//! The state is rebuilt from the batches on recovery, trimmed by `truncate_to`, and kept
//! across retention (it is not rebuilt when segments are deleted). It owns no offsets.

use super::LogError;
use crate::record::BatchHeader;
use crate::types::{Offset, ProducerId};
use std::collections::{BTreeMap, VecDeque};

/// How many batches per producer are remembered for deduplication (Kafka: 5, the client's
/// max.in.flight.requests.per.connection limit with idempotence).
pub const PRODUCER_BATCHES_MAX: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub producer_epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Oldest first; at most `PRODUCER_BATCHES_MAX`, all of the current epoch.
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerEntry {
    pub fn epoch(&self) -> Option<i16> {
        self.batches.back().map(|b| b.producer_epoch)
    }

    pub fn last_sequence(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_sequence)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<ProducerId, ProducerEntry>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        ProducerStateManager::default()
    }

    pub fn get(&self, producer_id: ProducerId) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer with its entry, by producer id.
    pub fn entries(&self) -> impl Iterator<Item = (ProducerId, &ProducerEntry)> {
        self.producers.iter().map(|(id, entry)| (*id, entry))
    }

    /// Adopts an entry read back from a snapshot (validated by the snapshot's decoder).
    pub(super) fn insert(&mut self, producer_id: ProducerId, entry: ProducerEntry) {
        assert!(!entry.batches.is_empty(), "{producer_id} inserted without batches");
        self.producers.insert(producer_id, entry);
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks a batch a leader is about to append. Batches without a producer id pass.
    pub fn check(&self, header: &BatchHeader) -> Result<(), LogError> {
        if !header.has_producer_id() {
            return Ok(());
        }
        let producer_id = ProducerId(header.producer_id as u64);
        let Some(entry) = self.producers.get(&producer_id) else { return Ok(()) };
        let current = entry.epoch().expect("a stored producer has at least one batch");
        let got = header.producer_epoch;
        if got < current {
            return Err(LogError::InvalidProducerEpoch { producer_id, current, got });
        }
        if got > current {
            if header.base_sequence != 0 {
                let (expected, got) = (0, header.base_sequence);
                return Err(LogError::OutOfOrderSequence { producer_id, expected, got });
            }
            return Ok(());
        }
        let first_sequence = header.base_sequence;
        let last_sequence = header.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Err(LogError::DuplicateSequence {
                producer_id,
                first_sequence,
                original: dup.first_offset,
            });
        }
        let expected = next_sequence(entry.last_sequence().expect("non-empty entry"));
        if first_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                expected,
                got: first_sequence,
            });
        }
        Ok(())
    }

    /// Records an appended batch (stamped with its offsets). Used by leader appends after
    /// `check`, by follower appends and by recovery, so it never refuses.
    pub fn update(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let producer_id = ProducerId(header.producer_id as u64);
        let entry = self.producers.entry(producer_id).or_default();
        if entry.epoch().is_some_and(|epoch| epoch != header.producer_epoch) {
            // A new epoch starts a new sequence space (an older one only reaches here from
            // a follower or recovery replaying what a leader accepted).
            entry.batches.clear();
        }
        let metadata = BatchMetadata {
            producer_epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        };
        if let Some(last) = entry.batches.back() {
            assert!(
                metadata.first_offset > last.last_offset,
                "{producer_id} batch at {} not after {}",
                metadata.first_offset,
                last.last_offset
            );
        }
        entry.batches.push_back(metadata);
        while entry.batches.len() > PRODUCER_BATCHES_MAX {
            entry.batches.pop_front();
        }
    }

    /// Forgets batches at or past `offset` (the log was truncated there).
    pub fn truncate_to(&mut self, offset: Offset) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, entry| !entry.batches.is_empty());
    }

    pub fn clear(&mut self) {
        self.producers.clear();
    }
}

/// The sequence after `sequence`, wrapping at i32::MAX as Kafka does.
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, RecordBatch};
    use crate::types::Epoch;

    fn batch(epoch: i16, seq: i32, records: u32, base: u64) -> RecordBatch {
        let mut builder = BatchBuilder::idempotent(7, epoch, seq);
        for _ in 0..records {
            builder.push(0, None, Some(b"v"), &[]);
        }
        builder.build().with_position(Offset(base), Epoch(0))
    }

    #[test]
    fn last_five_batches_are_deduplicated() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            let b = batch(0, i * 2, 2, u64::from(i as u32) * 2);
            state.check(b.header()).expect("in order");
            state.update(b.header());
        }
        for i in 2..7 {
            let retry = batch(0, i * 2, 2, 999);
            assert_eq!(
                state.check(retry.header()),
                Err(LogError::DuplicateSequence {
                    producer_id: ProducerId(7),
                    first_sequence: i * 2,
                    original: Offset(u64::from(i as u32) * 2)
                })
            );
        }
        // The oldest two fell out of the window: a retry of them is now a sequence error.
        assert!(matches!(
            state.check(batch(0, 0, 2, 999).header()),
            Err(LogError::OutOfOrderSequence { expected: 14, got: 0, .. })
        ));
    }

    #[test]
    fn gap_stale_epoch_and_new_epoch() {
        let mut state = ProducerStateManager::new();
        let first = batch(3, 10, 1, 0);
        state.check(first.header()).expect("unknown producer starts anywhere");
        state.update(first.header());
        assert!(matches!(
            state.check(batch(3, 12, 1, 1).header()),
            Err(LogError::OutOfOrderSequence { expected: 11, got: 12, .. })
        ));
        assert!(matches!(
            state.check(batch(2, 11, 1, 1).header()),
            Err(LogError::InvalidProducerEpoch { current: 3, got: 2, .. })
        ));
        assert!(state.check(batch(4, 5, 1, 1).header()).is_err(), "new epoch starts at 0");
        state.check(batch(4, 0, 1, 1).header()).expect("new epoch at 0");
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut state = ProducerStateManager::new();
        let b = batch(0, i32::MAX - 1, 2, 0);
        assert_eq!(b.header().last_sequence(), i32::MAX);
        state.update(b.header());
        state.check(batch(0, 0, 1, 2).header()).expect("wraps to 0");
        state.truncate_to(Offset(0));
        assert!(state.is_empty());
    }
}
