//! The partition log: an ordered map of segments, the last one active, plus the flush
//! bookkeeping (recovery point), producer state and leader-epoch cache. Appends, reads,
//! flushes and truncation live here; recovery, retention and compaction extend it in their
//! own files. Every change to a file is queued as a [`DiskOp`] in the order it must happen.

use super::checkpoint::{Checkpoint, CHECKPOINT_FILE};
use super::epoch_cache::LeaderEpochCache;
use super::index::OffsetIndex;
use super::producer_snapshot::{self, SNAPSHOT_SUFFIX};
use super::producer_state::ProducerStateManager;
use super::segment::Segment;
use super::{
    segment_file, DiskOp, FetchData, FlushPolicy, LogAppendInfo, LogConfig, LogError, TruncateInfo,
    INDEX_SUFFIX, LOG_SUFFIX,
};
use crate::record::RecordBatch;
use crate::types::{Epoch, Millis, Offset};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::info;

/// A flush handed to the driver and not yet reported done: the offset `flush` returned and
/// the offset it still vouches for after any truncation since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InFlightFlush {
    pub requested: Offset,
    pub durable: Offset,
}

/// Bound on flushes the driver may have outstanding; more means it never reports back.
const IN_FLIGHT_FLUSHES_MAX: usize = 1024;

#[derive(Clone, Debug)]
pub struct PartitionLog {
    pub(super) dir: String,
    pub(super) config: LogConfig,
    /// Never empty; the last segment is the active one.
    pub(super) segments: BTreeMap<Offset, Segment>,
    pub(super) log_start_offset: Offset,
    /// Everything below is durable (the driver reported the syncs done).
    pub(super) flushed_offset: Offset,
    /// The log end offset at the last `flush` call.
    pub(super) flush_requested: Offset,
    pub(super) in_flight_flushes: VecDeque<InFlightFlush>,
    /// The last checkpoint queued for writing.
    pub(super) checkpoint: Checkpoint,
    pub(super) last_flush_ms: Millis,
    /// Files written since their last sync.
    pub(super) dirty_paths: BTreeSet<String>,
    pub(super) ops: Vec<DiskOp>,
    pub(super) producer_state: ProducerStateManager,
    /// Offsets of the good producer snapshot files on disk (written with each checkpoint).
    pub(super) snapshots: BTreeSet<Offset>,
    pub(super) epoch_cache: LeaderEpochCache,
}

impl PartitionLog {
    /// An empty log starting at offset 0; files appear with the first append.
    pub fn create(dir: &str, config: LogConfig, now: Millis) -> PartitionLog {
        assert!(config.segment_bytes > 0, "segment_bytes is 0 for {dir}");
        let mut segments = BTreeMap::new();
        segments.insert(Offset::ZERO, Segment::new(Offset::ZERO));
        PartitionLog::assemble(dir, config, segments, Offset::ZERO, now)
    }

    pub(super) fn assemble(
        dir: &str,
        config: LogConfig,
        segments: BTreeMap<Offset, Segment>,
        recovery_point: Offset,
        now: Millis,
    ) -> PartitionLog {
        let log_start_offset = *segments.keys().next().expect("a log has a segment");
        PartitionLog {
            dir: dir.to_string(),
            config,
            segments,
            log_start_offset,
            flushed_offset: recovery_point,
            flush_requested: recovery_point,
            in_flight_flushes: VecDeque::new(),
            checkpoint: Checkpoint { generation: 0, recovery_point },
            last_flush_ms: now,
            dirty_paths: BTreeSet::new(),
            ops: Vec::new(),
            producer_state: ProducerStateManager::new(),
            snapshots: BTreeSet::new(),
            epoch_cache: LeaderEpochCache::new(),
        }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    /// The offset the next appended record gets (LEO).
    pub fn log_end_offset(&self) -> Offset {
        self.active().next_offset()
    }

    /// The recovery point: every record below was synced.
    pub fn flushed_offset(&self) -> Offset {
        self.flushed_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size_bytes).sum()
    }

    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.segments.keys().copied().collect()
    }

    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epoch_cache
    }

    /// OffsetsForLeaderEpoch against this log (see `LeaderEpochCache::end_offset_for`).
    pub fn end_offset_for_epoch(&self, epoch: Epoch) -> Option<(Epoch, Offset)> {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset())
    }

    /// Appends a producer's batch: assigns offsets from the LEO, stamps `leader_epoch`, and
    /// enforces idempotent producer sequences.
    pub fn append_as_leader(
        &mut self,
        batch: RecordBatch,
        leader_epoch: Epoch,
        now: Millis,
    ) -> Result<LogAppendInfo, LogError> {
        self.check_size(&batch)?;
        if let Some(latest) = self.epoch_cache.latest_epoch().filter(|l| *l > leader_epoch) {
            return Err(LogError::StaleLeaderEpoch { epoch: leader_epoch, latest });
        }
        self.producer_state.check(batch.header())?;
        let base_offset = self.log_end_offset();
        let batch = batch.with_position(base_offset, leader_epoch);
        let info = self.append_batch(batch, now);
        assert_eq!(info.first_offset, base_offset, "leader append moved in {}", self.dir);
        Ok(info)
    }

    /// Appends a batch replicated from the leader: its offsets and epoch are already set
    /// and its base offset must be the LEO.
    pub fn append_as_follower(
        &mut self,
        batch: RecordBatch,
        now: Millis,
    ) -> Result<LogAppendInfo, LogError> {
        self.check_size(&batch)?;
        let log_end_offset = self.log_end_offset();
        // Offsets may jump (a leader's compacted log has gaps), never go back.
        if batch.base_offset() < log_end_offset {
            let base_offset = batch.base_offset();
            return Err(LogError::NonMonotonicAppend { base_offset, log_end_offset });
        }
        if let (Some(epoch), Some(latest)) =
            (batch.header().leader_epoch(), self.epoch_cache.latest_epoch())
        {
            if epoch < latest {
                return Err(LogError::StaleLeaderEpoch { epoch, latest });
            }
        }
        Ok(self.append_batch(batch, now))
    }

    /// Whole batches from the one holding `from` (or the first after it), ending before the
    /// first batch that reaches `upper_bound`, within `max_bytes` except that the first
    /// batch is returned even when larger (KIP-74).
    pub fn read(
        &self,
        from: Offset,
        max_bytes: usize,
        upper_bound: Offset,
    ) -> Result<FetchData, LogError> {
        let log_end_offset = self.log_end_offset();
        if from < self.log_start_offset || from > log_end_offset {
            let log_start_offset = self.log_start_offset;
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                log_start_offset,
                log_end_offset,
            });
        }
        let start = self.segments.range(..=from).next_back().map_or(from, |(base, _)| *base);
        let mut out = Vec::new();
        let mut batch_count = 0;
        'segments: for segment in self.segments.range(start..).map(|(_, s)| s) {
            let Some(first) = segment.find(from) else { continue };
            let mut position = first.position;
            while position < segment.data().len() {
                let location = segment.location_at(position);
                let over_budget = batch_count > 0 && out.len() + location.len > max_bytes;
                if location.last_offset >= upper_bound || over_budget {
                    break 'segments;
                }
                out.extend_from_slice(&segment.data()[position..position + location.len]);
                batch_count += 1;
                position += location.len;
            }
        }
        assert!(batch_count > 0 || out.is_empty(), "read {from} in {}", self.dir);
        Ok(FetchData {
            records: Bytes::from(out),
            batch_count,
            log_start_offset: self.log_start_offset,
            log_end_offset,
        })
    }

    /// Whether the flush policy asks for a flush now.
    pub fn needs_flush(&self, now: Millis) -> bool {
        let unflushed = self.log_end_offset() > self.flush_requested;
        match self.config.flush {
            FlushPolicy::Never => false,
            FlushPolicy::EveryBatch => unflushed,
            FlushPolicy::IntervalMs(ms) => unflushed && now.since(self.last_flush_ms) >= ms,
        }
    }

    /// Queues a sync of every written file, then the recovery-point checkpoint (written and
    /// synced after the segments). Returns the offset durable once the driver has carried
    /// the ops out; it reports that with `mark_flushed`.
    pub fn flush(&mut self, now: Millis) -> Offset {
        let log_end_offset = self.log_end_offset();
        assert!(
            self.in_flight_flushes.len() < IN_FLIGHT_FLUSHES_MAX,
            "flushes never reported for {}",
            self.dir
        );
        for path in std::mem::take(&mut self.dirty_paths) {
            self.ops.push(DiskOp::Sync { path });
        }
        if self.checkpoint.recovery_point != log_end_offset {
            self.write_checkpoint(log_end_offset);
        }
        self.flush_requested = log_end_offset;
        self.last_flush_ms = now;
        let flush = InFlightFlush { requested: log_end_offset, durable: log_end_offset };
        self.in_flight_flushes.push_back(flush);
        log_end_offset
    }

    /// The driver carried out the ops of the `flush` that returned `offset` (flushes are
    /// reported in order).
    pub fn mark_flushed(&mut self, offset: Offset) {
        let at = self.in_flight_flushes.iter().position(|f| f.requested == offset);
        let at =
            at.unwrap_or_else(|| panic!("mark_flushed {offset} without a flush in {}", self.dir));
        let flush = self.in_flight_flushes.drain(..=at).next_back().expect("drained one");
        self.flushed_offset = self.flushed_offset.max(flush.durable);
        assert!(
            self.flushed_offset <= self.log_end_offset(),
            "flushed {} past leo {} in {}",
            self.flushed_offset,
            self.log_end_offset(),
            self.dir
        );
    }

    /// Drops every record at or past `offset`, keeping batches whole (the new LEO may be
    /// lower). Below the log start the log is emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, offset: Offset) -> TruncateInfo {
        let old_log_end_offset = self.log_end_offset();
        let mut info = TruncateInfo {
            requested: offset,
            old_log_end_offset,
            new_log_end_offset: old_log_end_offset,
            deleted_segments: Vec::new(),
        };
        if offset >= old_log_end_offset {
            return info;
        }
        let mut data_ops = Vec::new();
        let fully = offset <= self.log_start_offset;
        if fully {
            let bases: Vec<Offset> = self.segments.keys().copied().collect();
            for base in bases {
                data_ops.extend(self.remove_segment(base));
                info.deleted_segments.push(base);
            }
            self.segments.insert(offset, Segment::new(offset));
            self.log_start_offset = offset;
        } else {
            let doomed: Vec<Offset> = self.segments.range(offset..).map(|(b, _)| *b).collect();
            for base in doomed {
                data_ops.extend(self.remove_segment(base));
                info.deleted_segments.push(base);
            }
            data_ops.extend(self.truncate_active(offset));
        }
        let new_log_end_offset = self.log_end_offset();
        assert!(
            new_log_end_offset <= offset,
            "truncate {} to {offset} left {new_log_end_offset}",
            self.dir
        );
        // The producer state first: the checkpoint below snapshots it.
        self.producer_state.truncate_to(new_log_end_offset);
        self.epoch_cache.truncate_from_end(new_log_end_offset);
        if fully {
            self.producer_state.clear();
            self.epoch_cache.clear();
        }
        // Lower the persisted recovery point before cutting data: a crash in between then
        // finds more data than the checkpoint vouches for, never less.
        if self.checkpoint.recovery_point > new_log_end_offset {
            self.write_checkpoint(new_log_end_offset);
        }
        self.ops.extend(data_ops);
        self.flushed_offset = self.flushed_offset.min(new_log_end_offset);
        self.flush_requested = self.flush_requested.min(new_log_end_offset);
        for flush in &mut self.in_flight_flushes {
            flush.durable = flush.durable.min(new_log_end_offset);
        }
        info.new_log_end_offset = new_log_end_offset;
        info!(dir = %self.dir, offset = %offset, leo = %new_log_end_offset, old_leo = %old_log_end_offset, "log truncated");
        info
    }

    /// Time-driven work: roll an old active segment, then retention or compaction.
    pub fn tick(&mut self, now: Millis) {
        let active = self.active();
        let aged = active.first_append_ms().is_some_and(|t| now.since(t) >= self.config.segment_ms);
        if aged {
            self.roll(now);
        }
        match self.config.cleanup {
            super::CleanupPolicy::Delete => {
                self.apply_retention(now);
            }
            super::CleanupPolicy::Compact => {
                self.compact(now);
            }
        }
    }

    /// The disk operations queued since the last call, in the order to carry them out.
    pub fn take_disk_ops(&mut self) -> Vec<DiskOp> {
        std::mem::take(&mut self.ops)
    }

    pub(super) fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log has an active segment")
    }

    pub(super) fn log_path(&self, base: Offset) -> String {
        segment_file(&self.dir, base, LOG_SUFFIX)
    }

    pub(super) fn index_path(&self, base: Offset) -> String {
        segment_file(&self.dir, base, INDEX_SUFFIX)
    }

    pub(super) fn checkpoint_path(&self) -> String {
        format!("{}/{CHECKPOINT_FILE}", self.dir)
    }

    /// Queues the recovery-point checkpoint, preceded by the producer snapshot at the same
    /// offset (the state must describe the log up to `recovery_point`) and followed by the
    /// deletion of older snapshots, which the previous checkpoint needed until now.
    pub(super) fn write_checkpoint(&mut self, recovery_point: Offset) {
        // A good snapshot at this offset already describes this state: the log below it
        // has not changed since (a truncation below it moved the checkpoint lower first).
        if !self.snapshots.contains(&recovery_point) {
            let snapshot = segment_file(&self.dir, recovery_point, SNAPSHOT_SUFFIX);
            let data = producer_snapshot::encode(&self.producer_state, recovery_point);
            self.ops.push(DiskOp::Truncate { path: snapshot.clone(), len: 0 });
            self.ops.push(DiskOp::Write { path: snapshot.clone(), offset: 0, data });
            self.ops.push(DiskOp::Sync { path: snapshot });
        }
        self.write_checkpoint_slots(recovery_point);
        let stale: Vec<Offset> =
            self.snapshots.iter().copied().filter(|o| *o != recovery_point).collect();
        for offset in stale {
            let path = segment_file(&self.dir, offset, SNAPSHOT_SUFFIX);
            self.ops.push(DiskOp::Delete { path });
        }
        self.snapshots = BTreeSet::from([recovery_point]);
    }

    fn write_checkpoint_slots(&mut self, recovery_point: Offset) {
        let checkpoint = Checkpoint { generation: self.checkpoint.generation + 1, recovery_point };
        let path = self.checkpoint_path();
        // Both slots, one after the other, each synced: a write torn or lost by a crash
        // leaves the other slot whole, and a bit flip in one slot leaves the same value in
        // the other. (With alternating slots a flip in the newest one fell back to the
        // previous flush's value, and offsets consumers had read were reused: disk-faults
        // seed 337.)
        for offset in checkpoint.slot_offsets() {
            let data = checkpoint.encode();
            self.ops.push(DiskOp::Write { path: path.clone(), offset, data });
            self.ops.push(DiskOp::Sync { path: path.clone() });
        }
        self.checkpoint = checkpoint;
    }

    /// Forgets a segment and returns the ops deleting its files.
    pub(super) fn remove_segment(&mut self, base: Offset) -> Vec<DiskOp> {
        let removed = self.segments.remove(&base);
        assert!(removed.is_some(), "no segment {base} in {}", self.dir);
        let (log, index) = (self.log_path(base), self.index_path(base));
        self.dirty_paths.remove(&log);
        self.dirty_paths.remove(&index);
        vec![DiskOp::Delete { path: log }, DiskOp::Delete { path: index }]
    }

    fn truncate_active(&mut self, offset: Offset) -> Vec<DiskOp> {
        let base = self.active().base_offset();
        let (log, index) = (self.log_path(base), self.index_path(base));
        let segment = self.segments.get_mut(&base).expect("active segment");
        let before = segment.size_bytes();
        let len = segment.truncate_to(offset) as u64;
        if len == before {
            return Vec::new();
        }
        let index_len = OffsetIndex::file_len(segment.index().len());
        vec![
            DiskOp::Truncate { path: log.clone(), len },
            DiskOp::Truncate { path: index, len: index_len },
            DiskOp::Sync { path: log },
        ]
    }

    fn check_size(&self, batch: &RecordBatch) -> Result<(), LogError> {
        if batch.len_bytes() as u64 > self.config.segment_bytes {
            let limit = self.config.segment_bytes;
            return Err(LogError::RecordTooLarge { bytes: batch.len_bytes(), limit });
        }
        Ok(())
    }

    fn should_roll(&self, batch: &RecordBatch, now: Millis) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let full = active.size_bytes() + batch.len_bytes() as u64 > self.config.segment_bytes;
        let aged = active.first_append_ms().is_some_and(|t| now.since(t) >= self.config.segment_ms);
        let relative = batch.last_offset().0 - active.base_offset().0;
        full || aged || relative > u64::from(u32::MAX)
    }

    /// Starts a new active segment at the LEO (no-op when the active one is empty).
    pub(super) fn roll(&mut self, now: Millis) {
        if self.active().is_empty() {
            return;
        }
        let base = self.log_end_offset();
        assert!(!self.segments.contains_key(&base), "segment {base} exists in {}", self.dir);
        self.segments.insert(base, Segment::new(base));
        info!(dir = %self.dir, base_offset = %base, now = %now, "segment rolled");
    }

    fn append_batch(&mut self, batch: RecordBatch, now: Millis) -> LogAppendInfo {
        if self.should_roll(&batch, now) {
            self.roll(now);
        }
        let base = self.active().base_offset();
        let interval = self.config.index_interval_bytes;
        let segment = self.segments.get_mut(&base).expect("active segment");
        let (position, entry) = segment.append(&batch, interval, now);
        let index_entries = segment.index().len();
        let (log, index) = (self.log_path(base), self.index_path(base));
        self.ops.push(DiskOp::Write {
            path: log.clone(),
            offset: position as u64,
            data: batch.as_bytes().clone(),
        });
        self.dirty_paths.insert(log);
        if let Some(entry) = entry {
            let offset = OffsetIndex::file_len(index_entries - 1);
            self.ops.push(DiskOp::Write {
                path: index.clone(),
                offset,
                data: OffsetIndex::encode_entry(entry),
            });
            self.dirty_paths.insert(index);
        }
        let header = *batch.header();
        if let Some(epoch) = header.leader_epoch() {
            let assigned = self.epoch_cache.assign(epoch, header.base_offset);
            assert!(
                assigned,
                "epoch {epoch} went backwards at {} in {}",
                header.base_offset, self.dir
            );
        }
        self.producer_state.update(&header);
        LogAppendInfo {
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp_ms: header.max_timestamp,
            record_count: header.record_count,
            bytes: batch.len_bytes(),
            segment_base_offset: base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests_model::{batch_of, records_in, DiskModel, DIR};
    use crate::log::CleanupPolicy;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 64 * 1024,
            index_interval_bytes: 512,
            retention_ms: None,
            cleanup: CleanupPolicy::Delete,
            ..LogConfig::default()
        }
    }

    fn append_values(log: &mut PartitionLog, batches: u32, records: u32) {
        for i in 0..batches {
            let values: Vec<Vec<u8>> =
                (0..records).map(|j| format!("{i}-{j}").into_bytes()).collect();
            log.append_as_leader(batch_of(&values, 0, None), Epoch(1), Millis(0)).expect("append");
        }
    }

    #[test]
    fn read_from_the_middle_of_a_large_segment_finds_the_right_batch() {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        append_values(&mut log, 200, 4);
        assert_eq!(log.segment_base_offsets().len(), 1);
        assert!(log.active().index().len() > 10);
        for from in [0u64, 1, 401, 402, 403, 404, 777, 799] {
            let data = log.read(Offset(from), 1, Offset(800)).expect("read");
            let records = records_in(&data.records);
            assert_eq!(data.batch_count, 1, "KIP-74: one batch even over max_bytes");
            assert_eq!(records[0].0, from - from % 4, "batch holding {from}");
            assert_eq!(
                records[(from % 4) as usize].1,
                format!("{}-{}", from / 4, from % 4).into_bytes()
            );
        }
        let bounded = log.read(Offset(0), usize::MAX, Offset(10)).unwrap();
        assert_eq!(
            records_in(&bounded.records).last().map(|r| r.0),
            Some(7),
            "whole batches below the bound"
        );
        assert!(log.read(Offset(800), 100, Offset(800)).unwrap().records.is_empty());
        assert!(matches!(
            log.read(Offset(801), 100, Offset(900)),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }

    #[test]
    fn flush_syncs_segments_before_writing_the_checkpoint() {
        let mut log = PartitionLog::create(
            DIR,
            LogConfig { flush: FlushPolicy::EveryBatch, ..config() },
            Millis(0),
        );
        append_values(&mut log, 1, 2);
        assert!(log.needs_flush(Millis(0)));
        log.take_disk_ops();
        let offset = log.flush(Millis(0));
        assert_eq!(offset, Offset(2));
        assert_eq!(log.flushed_offset(), Offset(0), "not durable until the driver says so");
        let ops = log.take_disk_ops();
        let checkpoint_write = ops.iter().position(
            |op| matches!(op, DiskOp::Write { path, .. } if path.ends_with(CHECKPOINT_FILE)),
        );
        let last_segment_sync = ops
            .iter()
            .rposition(|op| matches!(op, DiskOp::Sync { path } if path.ends_with(".log")));
        assert!(last_segment_sync.expect("sync") < checkpoint_write.expect("checkpoint"));
        log.mark_flushed(offset);
        assert_eq!(log.flushed_offset(), Offset(2));
        assert!(!log.needs_flush(Millis(0)));
    }

    #[test]
    fn mark_flushed_after_truncation_vouches_only_for_what_is_left() {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        append_values(&mut log, 5, 2);
        let offset = log.flush(Millis(0));
        log.truncate_to(Offset(4));
        append_values(&mut log, 5, 2);
        log.mark_flushed(offset);
        assert_eq!(log.flushed_offset(), Offset(4));
    }

    #[test]
    fn producer_dedup_survives_recovery() {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        let mut disk = DiskModel::default();
        for seq in 0..3 {
            let batch = batch_of(&[b"a".to_vec(), b"b".to_vec()], 0, Some((42, 1, seq * 2)));
            log.append_as_leader(batch, Epoch(1), Millis(0)).expect("in order");
        }
        let retry = || batch_of(&[b"a".to_vec(), b"b".to_vec()], 0, Some((42, 1, 2)));
        let duplicate = Err(LogError::DuplicateSequence {
            producer_id: crate::types::ProducerId(42),
            first_sequence: 2,
            original: Offset(2),
        });
        assert_eq!(log.append_as_leader(retry(), Epoch(1), Millis(0)), duplicate);
        let gap = batch_of(&[b"c".to_vec()], 0, Some((42, 1, 9)));
        assert!(matches!(
            log.append_as_leader(gap, Epoch(1), Millis(0)),
            Err(LogError::OutOfOrderSequence { expected: 6, got: 9, .. })
        ));
        let stale = batch_of(&[b"c".to_vec()], 0, Some((42, 0, 6)));
        assert!(matches!(
            log.append_as_leader(stale, Epoch(1), Millis(0)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        disk.apply(log.take_disk_ops());
        disk.sync_all();
        let (mut recovered, _) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(1));
        assert_eq!(recovered.append_as_leader(retry(), Epoch(1), Millis(1)), duplicate);
        assert_eq!(recovered.producer_state(), log.producer_state());
        assert_eq!(recovered.leader_epoch_cache(), log.leader_epoch_cache());
    }

    #[test]
    fn epochs_follower_appends_and_truncation() {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        append_values(&mut log, 2, 2);
        let batch = batch_of(&[b"x".to_vec()], 0, None);
        log.append_as_leader(batch.clone(), Epoch(3), Millis(0)).unwrap();
        assert!(matches!(
            log.append_as_leader(batch.clone(), Epoch(2), Millis(0)),
            Err(LogError::StaleLeaderEpoch { .. })
        ));
        assert_eq!(log.end_offset_for_epoch(Epoch(2)), Some((Epoch(1), Offset(4))));
        let misplaced = batch.clone().with_position(Offset(3), Epoch(3));
        assert!(matches!(
            log.append_as_follower(misplaced, Millis(0)),
            Err(LogError::NonMonotonicAppend { .. })
        ));
        log.append_as_follower(batch.with_position(Offset(5), Epoch(4)), Millis(0)).unwrap();
        let info = log.truncate_to(Offset(5));
        assert_eq!(info.new_log_end_offset, Offset(5));
        assert_eq!(log.leader_epoch_cache().latest_epoch(), Some(Epoch(3)));
        let info = log.truncate_to(Offset(3));
        assert_eq!(info.new_log_end_offset, Offset(2), "batches stay whole");
        assert_eq!(log.leader_epoch_cache().latest_epoch(), Some(Epoch(1)));
    }

    #[test]
    fn segments_roll_by_size_and_age() {
        let mut log = PartitionLog::create(
            DIR,
            LogConfig { segment_bytes: 1024, segment_ms: 100, ..config() },
            Millis(0),
        );
        append_values(&mut log, 20, 4);
        let by_size = log.segment_base_offsets().len();
        assert!(by_size > 2);
        assert!(log.segments.values().all(|s| s.size_bytes() <= 1024));
        log.tick(Millis(50));
        assert_eq!(log.segment_base_offsets().len(), by_size);
        log.tick(Millis(100));
        assert_eq!(log.segment_base_offsets().len(), by_size + 1, "rolled by age");
        let big = batch_of(&[vec![0u8; 2000]], 0, None);
        assert!(matches!(
            log.append_as_leader(big, Epoch(1), Millis(100)),
            Err(LogError::RecordTooLarge { .. })
        ));
    }
}
