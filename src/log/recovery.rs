//! Recovery: rebuild a partition log from whatever its files hold after a crash.
//!
//! Every batch of every segment is re-validated (length, magic, CRC-32C and record layout
//! through `scan_batches`, then offset continuity: each batch starts where the previous one
//! ended and a segment's first batch starts at the offset its file is named after). The log
//! is cut at the first bad batch and every later segment deleted. Indexes are rebuilt and
//! rewritten when the file differs. Producer state and the leader-epoch cache are rebuilt
//! from the surviving batches.
//!
//! The durability rule: offsets below the persisted recovery point were synced and may have
//! been served, so they are never reused for other records. When the valid data ends below
//! the recovery point (a bit flip in synced bytes, not a torn unsynced tail) the log goes on
//! at the recovery point, leaving a gap in the offset space. A gap is also what makes a
//! later gap legal: a segment (or, under compaction, a batch) may start past the previous
//! end only if it starts at or below the recovery point.

use super::checkpoint::{Checkpoint, CHECKPOINT_FILE};
use super::compaction::swap_marker_matches;
use super::partition_log::PartitionLog;
use super::producer_snapshot::{self, SNAPSHOT_SUFFIX};
use super::producer_state::ProducerStateManager;
use super::segment::Segment;
use super::{
    segment_file, CleanupPolicy, DiskOp, LogConfig, CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX,
    SWAP_SUFFIX,
};
use crate::record::{gap_marker, scan_batches, RecordBatch};
use crate::types::{Millis, Offset};
use bytes::Bytes;
use std::collections::BTreeMap;
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointStatus {
    Valid,
    Missing,
    /// Present but no slot passed its CRC: recovery point 0.
    Corrupt,
}

/// Where recovery cut the log and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryCut {
    /// The segment's `.log` path.
    pub segment: String,
    /// Byte position of the cut in that segment.
    pub position: u64,
    /// The first offset the cut removed (the next offset the valid prefix expected).
    pub offset: Offset,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The persisted recovery point recovery honoured.
    pub recovery_point: Offset,
    pub checkpoint: CheckpointStatus,
    pub cuts: Vec<RecoveryCut>,
    pub deleted_files: Vec<String>,
    pub rebuilt_indexes: Vec<String>,
    /// Compaction swaps finished from a complete `.cleaned` file.
    pub completed_swaps: Vec<String>,
    /// Offsets skipped by the durability rule: [valid end, recovery point).
    pub skipped_offsets: Option<(Offset, Offset)>,
    /// The producer snapshot whose state replaced the skipped batches' (their producers'
    /// sequences), if any was good.
    pub producer_snapshot: Option<Offset>,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

/// A directory's files sorted by kind.
#[derive(Default)]
struct DirFiles {
    logs: BTreeMap<Offset, Bytes>,
    indexes: BTreeMap<Offset, Bytes>,
    cleaned: BTreeMap<Offset, Bytes>,
    swaps: BTreeMap<Offset, Bytes>,
    snapshots: BTreeMap<Offset, Bytes>,
    checkpoint: Option<Bytes>,
}

/// What validating the segments produced.
struct Validated {
    segments: BTreeMap<Offset, Segment>,
    ops: Vec<DiskOp>,
}

impl PartitionLog {
    /// Rebuilds the log of `dir` from the durable contents of its files (paths
    /// `<dir>/<name>`; other paths are ignored). The returned log has the repair ops
    /// queued (take them with `take_disk_ops`); never panics on any file contents.
    pub fn recover(
        dir: &str,
        config: LogConfig,
        files: &BTreeMap<String, Bytes>,
        now: Millis,
    ) -> (PartitionLog, RecoveryReport) {
        let mut dir_files = classify(dir, files);
        let (loaded, status) = match &dir_files.checkpoint {
            None => (None, CheckpointStatus::Missing),
            Some(bytes) => match Checkpoint::decode(bytes) {
                Some(c) => (Some(c), CheckpointStatus::Valid),
                None => (None, CheckpointStatus::Corrupt),
            },
        };
        let recovery_point = loaded.map_or(Offset::ZERO, |c| c.recovery_point);
        if status == CheckpointStatus::Corrupt {
            warn!(
                dir,
                offset = 0,
                position = 0,
                reason = "corrupt checkpoint",
                "recovery point reset"
            );
        }
        let mut report = RecoveryReport {
            recovery_point,
            checkpoint: status,
            cuts: Vec::new(),
            deleted_files: Vec::new(),
            rebuilt_indexes: Vec::new(),
            completed_swaps: Vec::new(),
            skipped_offsets: None,
            producer_snapshot: None,
            log_start_offset: Offset::ZERO,
            log_end_offset: Offset::ZERO,
        };
        let mut ops = resolve_swaps(dir, &mut dir_files, &mut report);
        let validated =
            validate_segments(dir, &config, &dir_files, recovery_point, now, &mut report);
        ops.extend(validated.ops);
        let mut segments = validated.segments;
        // Where the surviving data ends: with no valid batch, where the first file began;
        // with no segment file at all (a full truncation, then a crash), the log simply
        // starts at the recovery point and there is nothing below it to mark.
        let first_base = dir_files.logs.keys().next().copied().unwrap_or(recovery_point);
        let valid_end = segments.values().next_back().map_or(first_base, Segment::next_offset);
        let gap = (valid_end < recovery_point).then_some((valid_end, recovery_point));
        if let Some((end, recovery_point)) = gap {
            warn!(dir, offset = %end, position = 0, reason = "data lost below the recovery point", recovery_point = %recovery_point, "offsets skipped, never reused");
            report.skipped_offsets = Some((end, recovery_point));
        }
        if segments.is_empty() {
            segments.insert(valid_end, Segment::new(valid_end));
        }
        ops.extend(rebuild_indexes(dir, &segments, &dir_files, &mut report));
        for base in dir_files.indexes.keys().filter(|b| !dir_files.logs.contains_key(b)) {
            let path = segment_file(dir, *base, INDEX_SUFFIX);
            report.deleted_files.push(path.clone());
            ops.push(DiskOp::Delete { path });
        }
        // What survived the crash is on disk; make sure before vouching for it.
        for (base, _) in segments.iter().filter(|(_, s)| !s.is_empty()) {
            ops.push(DiskOp::Sync { path: segment_file(dir, *base, LOG_SUFFIX) });
        }
        let latest_epoch = segments
            .values()
            .flat_map(Segment::batches)
            .filter_map(|batch| batch.header().leader_epoch())
            .max()
            .unwrap_or_default();
        let mut log = PartitionLog::assemble(dir, config, segments, valid_end, now);
        log.ops = ops;
        log.checkpoint = loaded.unwrap_or(Checkpoint { generation: 0, recovery_point });
        if let Some((end, recovery_point)) = gap {
            // Readers must move past the destroyed offsets rather than wait for records
            // that will never come: a control batch spans them. Its own loss in a later
            // crash only recreates it (the checkpoint still says where the gap ends).
            let marker = gap_marker(end, Offset(recovery_point.0 - 1), latest_epoch);
            log.append_as_follower(marker, now).expect("the gap marker starts at the log end");
        }
        log.rebuild_derived_state();
        let snapshots = good_snapshots(dir, &dir_files, recovery_point, &mut report, &mut log.ops);
        if let Some((end, recovery_point)) = gap {
            report.producer_snapshot = log.adopt_snapshot(&snapshots, end, recovery_point);
        }
        log.snapshots = snapshots.keys().copied().collect();
        let log_end_offset = log.log_end_offset();
        if log.checkpoint.recovery_point != log_end_offset {
            log.write_checkpoint(log_end_offset);
        }
        report.log_start_offset = log.log_start_offset();
        report.log_end_offset = log.log_end_offset();
        assert!(
            report.log_end_offset >= recovery_point,
            "recovered {dir} below its recovery point"
        );
        info!(dir, log_start = %report.log_start_offset, leo = %report.log_end_offset, recovery_point = %recovery_point, cuts = report.cuts.len(), "log recovered");
        (log, report)
    }

    /// After a gap [end, recovery_point) the batches that held some producers' latest
    /// sequences are gone: the newest good snapshot in [end, recovery_point] knows them.
    /// Without one, retries of the destroyed batches are not recognised (logged).
    fn adopt_snapshot(
        &mut self,
        snapshots: &BTreeMap<Offset, ProducerStateManager>,
        end: Offset,
        recovery_point: Offset,
    ) -> Option<Offset> {
        let Some((at, state)) = snapshots.range(end..=recovery_point).next_back() else {
            warn!(dir = %self.dir, offset = %end, position = 0, reason = "no producer snapshot covers the skipped offsets", "producer state rebuilt from the log alone");
            return None;
        };
        if *at < recovery_point {
            warn!(dir = %self.dir, offset = %at, position = 0, reason = "newest producer snapshot is below the recovery point", recovery_point = %recovery_point, "producer state may miss batches");
        }
        info!(dir = %self.dir, offset = %at, producers = state.len(), "producer state from snapshot");
        self.producer_state = state.clone();
        Some(*at)
    }

    /// Producer state and epochs from the batches (both are derived from the log).
    fn rebuild_derived_state(&mut self) {
        self.producer_state.clear();
        self.epoch_cache.clear();
        for segment in self.segments.values() {
            for batch in segment.batches() {
                let header = batch.header();
                self.producer_state.update(header);
                if let Some(epoch) = header.leader_epoch() {
                    if !self.epoch_cache.assign(epoch, header.base_offset) {
                        warn!(dir = %self.dir, offset = %header.base_offset, position = 0, reason = "leader epoch went backwards", epoch = %epoch, "epoch ignored");
                    }
                }
            }
        }
        assert!(
            self.epoch_cache
                .entries()
                .first()
                .is_none_or(|e| e.start_offset >= self.log_start_offset),
            "epoch cache starts before the log in {}",
            self.dir
        );
    }
}

/// The snapshot files that decode, sit where their name says and lie at or below the
/// recovery point (a higher one was written for a checkpoint that never became durable,
/// and may describe records that are gone); the others are deleted.
fn good_snapshots(
    dir: &str,
    files: &DirFiles,
    recovery_point: Offset,
    report: &mut RecoveryReport,
    ops: &mut Vec<DiskOp>,
) -> BTreeMap<Offset, ProducerStateManager> {
    let mut good = BTreeMap::new();
    for (offset, bytes) in &files.snapshots {
        let decoded = producer_snapshot::decode(bytes);
        match decoded.filter(|(at, _)| at == offset && *at <= recovery_point) {
            Some((_, state)) => {
                good.insert(*offset, state);
            }
            None => {
                let path = segment_file(dir, *offset, SNAPSHOT_SUFFIX);
                warn!(dir, offset = %offset, position = 0, reason = "corrupt or stale producer snapshot", "snapshot deleted");
                report.deleted_files.push(path.clone());
                ops.push(DiskOp::Delete { path });
            }
        }
    }
    good
}

fn classify(dir: &str, files: &BTreeMap<String, Bytes>) -> DirFiles {
    let prefix = format!("{dir}/");
    let mut out = DirFiles::default();
    for (path, bytes) in files {
        let Some(name) = path.strip_prefix(&prefix) else { continue };
        if name == CHECKPOINT_FILE {
            out.checkpoint = Some(bytes.clone());
            continue;
        }
        let Some((stem, suffix)) = name.split_once('.') else { continue };
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = stem.parse::<u64>() else { continue };
        let base = Offset(base);
        let kind = match suffix {
            LOG_SUFFIX => &mut out.logs,
            INDEX_SUFFIX => &mut out.indexes,
            CLEANED_SUFFIX => &mut out.cleaned,
            SWAP_SUFFIX => &mut out.swaps,
            SNAPSHOT_SUFFIX => &mut out.snapshots,
            _ => continue,
        };
        kind.insert(base, bytes.clone());
    }
    out
}

/// Finishes compaction swaps whose `.cleaned` file is complete (its swap marker is valid
/// and matches), and discards the rest.
fn resolve_swaps(dir: &str, files: &mut DirFiles, report: &mut RecoveryReport) -> Vec<DiskOp> {
    let mut ops = Vec::new();
    let bases: Vec<Offset> = files.cleaned.keys().chain(files.swaps.keys()).copied().collect();
    for base in bases {
        let cleaned = files.cleaned.remove(&base);
        let marker = files.swaps.remove(&base);
        let (cleaned_path, swap_path) =
            (segment_file(dir, base, CLEANED_SUFFIX), segment_file(dir, base, SWAP_SUFFIX));
        if let (Some(cleaned), Some(marker)) = (&cleaned, &marker) {
            if swap_marker_matches(marker, cleaned) {
                let log = segment_file(dir, base, LOG_SUFFIX);
                ops.push(DiskOp::Truncate { path: log.clone(), len: 0 });
                ops.push(DiskOp::Write { path: log.clone(), offset: 0, data: cleaned.clone() });
                ops.push(DiskOp::Sync { path: log.clone() });
                files.logs.insert(base, cleaned.clone());
                info!(dir, offset = %base, "compaction swap completed by recovery");
                report.completed_swaps.push(log);
            }
        }
        for (present, path) in [(cleaned.is_some(), cleaned_path), (marker.is_some(), swap_path)] {
            if present {
                report.deleted_files.push(path.clone());
                ops.push(DiskOp::Delete { path });
            }
        }
    }
    ops
}

/// Re-validates every segment in offset order, cutting at the first bad batch.
fn validate_segments(
    dir: &str,
    config: &LogConfig,
    files: &DirFiles,
    recovery_point: Offset,
    now: Millis,
    report: &mut RecoveryReport,
) -> Validated {
    let mut out = Validated { segments: BTreeMap::new(), ops: Vec::new() };
    let mut prev_next: Option<Offset> = None;
    let mut cut_done = false;
    for (base, bytes) in &files.logs {
        let base = *base;
        let log_path = segment_file(dir, base, LOG_SUFFIX);
        if cut_done {
            out.ops.extend(delete_segment_files(dir, base, report));
            continue;
        }
        if let Some(reason) = prev_next.and_then(|p| segment_gap_error(base, p, recovery_point)) {
            let offset = prev_next.expect("checked");
            record_cut(dir, report, &log_path, 0, offset, reason);
            out.ops.extend(delete_segment_files(dir, base, report));
            cut_done = true;
            continue;
        }
        let (kept, cut) = validate_batches(config, base, bytes, recovery_point);
        if let Some((position, offset, reason)) = cut {
            record_cut(dir, report, &log_path, position, offset, &reason);
            out.ops.push(DiskOp::Truncate { path: log_path.clone(), len: position as u64 });
            out.ops.push(DiskOp::Sync { path: log_path });
            cut_done = true;
        }
        let segment = Segment::from_batches(base, &kept, config.index_interval_bytes, now);
        prev_next = Some(segment.next_offset());
        out.segments.insert(base, segment);
    }
    out
}

/// Why a segment starting at `base` cannot follow one that ended at `prev_next`.
fn segment_gap_error(
    base: Offset,
    prev_next: Offset,
    recovery_point: Offset,
) -> Option<&'static str> {
    if base < prev_next {
        return Some("segment overlaps the previous one");
    }
    if base > prev_next && base > recovery_point {
        return Some("gap before segment above the recovery point");
    }
    None
}

/// The valid batches of one segment and, if it must be cut, (position, offset, reason).
fn validate_batches(
    config: &LogConfig,
    base: Offset,
    bytes: &Bytes,
    recovery_point: Offset,
) -> (Vec<RecordBatch>, Option<(usize, Offset, String)>) {
    let (batches, stop) = scan_batches(bytes);
    let mut kept = Vec::with_capacity(batches.len());
    let mut position = 0;
    let mut next = base;
    for batch in batches {
        let start = batch.base_offset();
        // Compaction leaves gaps, only ever below the recovery point (it cleans flushed
        // segments only); anywhere else a batch must start exactly where the last ended.
        let gap_ok =
            config.cleanup == CleanupPolicy::Compact && start > next && start <= recovery_point;
        // The base offset sits outside the batch CRC (as in Kafka): a flipped one can point
        // below the segment's base, so the distance is checked, never subtracted blindly.
        let too_far =
            batch.last_offset().0.checked_sub(base.0).is_none_or(|d| d > u64::from(u32::MAX));
        if (start != next && !gap_ok) || too_far {
            let reason = format!("offset discontinuity: batch at {start}, expected {next}");
            return (kept, Some((position, next, reason)));
        }
        position += batch.len_bytes();
        next = batch.next_offset();
        kept.push(batch);
    }
    let cut = stop.map(|s| {
        assert_eq!(s.position, position, "scan stop position for segment {base}");
        (s.position, next, format!("invalid batch: {}", s.error))
    });
    (kept, cut)
}

fn record_cut(
    dir: &str,
    report: &mut RecoveryReport,
    segment: &str,
    position: usize,
    offset: Offset,
    reason: &str,
) {
    warn!(dir, segment, offset = %offset, position, reason, "recovery cut the log");
    let position = position as u64;
    let reason = reason.to_string();
    report.cuts.push(RecoveryCut { segment: segment.to_string(), position, offset, reason });
}

fn delete_segment_files(dir: &str, base: Offset, report: &mut RecoveryReport) -> Vec<DiskOp> {
    [LOG_SUFFIX, INDEX_SUFFIX]
        .into_iter()
        .map(|suffix| {
            let path = segment_file(dir, base, suffix);
            report.deleted_files.push(path.clone());
            DiskOp::Delete { path }
        })
        .collect()
}

/// Rewrites every index file that differs from the one rebuilt from its segment.
fn rebuild_indexes(
    dir: &str,
    segments: &BTreeMap<Offset, Segment>,
    files: &DirFiles,
    report: &mut RecoveryReport,
) -> Vec<DiskOp> {
    let mut ops = Vec::new();
    for (base, segment) in segments {
        let expected = segment.index().encode();
        let path = segment_file(dir, *base, INDEX_SUFFIX);
        let deleted = report.deleted_files.contains(&path);
        let on_disk = files.indexes.get(base).filter(|_| !deleted);
        if on_disk == Some(&expected) || (on_disk.is_none() && expected.is_empty()) {
            continue;
        }
        info!(dir, offset = %base, "index rebuilt");
        report.rebuilt_indexes.push(path.clone());
        if on_disk.is_some() {
            ops.push(DiskOp::Truncate { path: path.clone(), len: 0 });
        }
        if !expected.is_empty() {
            ops.push(DiskOp::Write { path, offset: 0, data: expected });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests_model::{batch_of, read_all, DiskModel, DIR};
    use crate::log::{FlushPolicy, PartitionLog};
    use crate::types::Epoch;
    use proptest::prelude::*;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 200,
            flush: FlushPolicy::Never,
            retention_ms: None,
            ..LogConfig::default()
        }
    }

    /// A log of `batches` batches of three records ("b{i}-{j}"), flushed and synced.
    fn flushed_log(batches: u32) -> (PartitionLog, DiskModel) {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        let mut disk = DiskModel::default();
        for i in 0..batches {
            let values: Vec<Vec<u8>> = (0..3).map(|j| format!("b{i}-{j}").into_bytes()).collect();
            log.append_as_leader(batch_of(&values, 0, None), Epoch(1), Millis(1)).expect("append");
        }
        let offset = log.flush(Millis(1));
        disk.apply(log.take_disk_ops());
        log.mark_flushed(offset);
        (log, disk)
    }

    fn segment_path() -> String {
        segment_file(DIR, Offset(0), LOG_SUFFIX)
    }

    #[test]
    fn bit_flip_below_recovery_point_leaves_a_gap_and_never_reuses_offsets() {
        let (log, mut disk) = flushed_log(10);
        let before = read_all(&log);
        let segment = disk.durable.get_mut(&segment_path()).expect("segment");
        let batch_bytes = segment.len() / 10;
        segment[4 * batch_bytes + 70] ^= 0x04; // inside batch 4's records: CRC mismatch
        let (mut log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(2));
        assert_eq!(report.recovery_point, Offset(30));
        assert_eq!(report.cuts.len(), 1, "{report:?}");
        assert_eq!(report.cuts[0].offset, Offset(12));
        assert_eq!(report.cuts[0].position, 4 * batch_bytes as u64);
        assert_eq!(report.skipped_offsets, Some((Offset(12), Offset(30))));
        assert_eq!(log.log_end_offset(), Offset(30), "continues at the recovery point");
        assert_eq!(read_all(&log), before[..12].to_vec());
        // A control batch spans the destroyed offsets, so a reader at 12 moves to 30.
        let marker = log.read(Offset(12), usize::MAX, Offset(30)).expect("in range");
        let (batches, _) = crate::record::scan_batches(&marker.records);
        assert!(batches[0].header().is_control(), "no gap marker at the cut");
        assert_eq!((batches[0].base_offset(), batches[0].last_offset()), (Offset(12), Offset(29)));
        disk.apply(log.take_disk_ops());
        let info = log
            .append_as_leader(batch_of(&[b"new".to_vec()], 0, None), Epoch(2), Millis(3))
            .expect("append after the gap");
        assert_eq!(info.first_offset, Offset(30));
        let from_gap = log.read(Offset(15), usize::MAX, Offset(31)).expect("gap is in range");
        assert_eq!(crate::log::tests_model::records_in(&from_gap.records)[0].0, 30);
        // The gap itself survives the next restart: it is below the recovery point.
        let offset = log.flush(Millis(4));
        disk.apply(log.take_disk_ops());
        log.mark_flushed(offset);
        let (again, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(5));
        assert!(report.cuts.is_empty(), "{report:?}");
        assert_eq!(read_all(&again), read_all(&log));
    }

    #[test]
    fn torn_tail_above_recovery_point_is_cut_and_reused() {
        let (mut log, mut disk) = flushed_log(3);
        log.append_as_leader(batch_of(&[b"tail".to_vec()], 0, None), Epoch(1), Millis(2)).unwrap();
        disk.apply(log.take_disk_ops());
        disk.sync_all();
        let segment = disk.durable.get_mut(&segment_path()).expect("segment");
        segment.truncate(segment.len() - 7);
        let (log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(3));
        assert_eq!(report.cuts.len(), 1);
        assert_eq!(report.skipped_offsets, None);
        assert_eq!(log.log_end_offset(), Offset(9), "offset 9 may be reused");
    }

    #[test]
    fn corrupt_checkpoint_means_recovery_point_zero() {
        let (_, mut disk) = flushed_log(2);
        let checkpoint = disk.durable.get_mut(&format!("{DIR}/{CHECKPOINT_FILE}")).unwrap();
        for byte in checkpoint.iter_mut() {
            *byte ^= 0xff;
        }
        let (log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(3));
        assert_eq!(report.checkpoint, CheckpointStatus::Corrupt);
        assert_eq!(report.recovery_point, Offset::ZERO);
        assert_eq!(log.log_end_offset(), Offset(6), "the data itself is intact");
    }

    #[test]
    fn missing_or_corrupt_index_is_rebuilt() {
        let (log, disk) = flushed_log(40);
        let index_path = segment_file(DIR, Offset(0), INDEX_SUFFIX);
        let good_index = disk.durable[&index_path].clone();
        assert!(good_index.len() > 16, "the test needs a few index entries");
        let mut variants = vec![disk.clone(), disk.clone()];
        variants[0].durable.remove(&index_path);
        variants[1].durable.insert(index_path.clone(), vec![0xab; 24]);
        for mut damaged in variants {
            let (mut recovered, report) =
                PartitionLog::recover(DIR, config(), &damaged.files(), Millis(2));
            assert_eq!(report.rebuilt_indexes, vec![index_path.clone()]);
            damaged.apply(recovered.take_disk_ops());
            damaged.sync_all();
            assert_eq!(damaged.durable[&index_path], good_index);
            for offset in [0u64, 47, 61, 119] {
                let a = recovered.read(Offset(offset), 1, Offset(120)).unwrap();
                let b = log.read(Offset(offset), 1, Offset(120)).unwrap();
                assert_eq!(a, b, "read at {offset}");
            }
        }
        let (_, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(2));
        assert!(report.rebuilt_indexes.is_empty(), "a good index is kept");
    }

    #[test]
    fn overlapping_or_gapped_segments_above_recovery_point_are_cut() {
        let (_, mut disk) = flushed_log(3);
        let stray = batch_of(&[b"stray".to_vec()], 0, None).with_position(Offset(20), Epoch(1));
        disk.durable.insert(segment_file(DIR, Offset(20), LOG_SUFFIX), stray.as_bytes().to_vec());
        let (log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(2));
        assert_eq!(log.log_end_offset(), Offset(9));
        assert_eq!(report.cuts[0].reason, "gap before segment above the recovery point");
    }

    #[test]
    fn batch_below_its_segment_base_is_cut() {
        // The base offset is outside the batch CRC: a flipped one passes the checksum.
        let (_, mut disk) = flushed_log(3);
        let below = batch_of(&[b"low".to_vec()], 0, None).with_position(Offset(2), Epoch(1));
        disk.durable.insert(segment_file(DIR, Offset(9), LOG_SUFFIX), below.as_bytes().to_vec());
        let (log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(2));
        assert_eq!(log.log_end_offset(), Offset(9));
        assert_eq!(report.cuts[0].reason, "offset discontinuity: batch at 2, expected 9");
    }

    /// Like `flushed_log`, the batches alternating between two idempotent producers.
    fn idempotent_flushed_log(batches: u32) -> (PartitionLog, DiskModel) {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        let mut disk = DiskModel::default();
        for i in 0..batches {
            let values: Vec<Vec<u8>> = (0..3).map(|j| format!("p{i}-{j}").into_bytes()).collect();
            let producer = (i64::from(i % 2), 0, (i / 2 * 3) as i32);
            let batch = batch_of(&values, 0, Some(producer));
            log.append_as_leader(batch, Epoch(1), Millis(1)).expect("append");
            if i % 4 == 3 {
                let offset = log.flush(Millis(1));
                disk.apply(log.take_disk_ops());
                log.mark_flushed(offset);
            }
        }
        let offset = log.flush(Millis(1));
        disk.apply(log.take_disk_ops());
        log.mark_flushed(offset);
        (log, disk)
    }

    #[test]
    fn a_flip_below_the_recovery_point_keeps_producer_state_from_the_snapshot() {
        let (log, mut disk) = idempotent_flushed_log(12);
        let segment = disk.durable.get_mut(&segment_path()).expect("segment");
        let batch_bytes = segment.len() / 12;
        segment[2 * batch_bytes + 70] ^= 0x04;
        let (recovered, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(2));
        assert_eq!(report.skipped_offsets, Some((Offset(6), Offset(36))));
        assert_eq!(report.producer_snapshot, Some(Offset(36)));
        assert_eq!(recovered.producer_state(), log.producer_state());
        // A retry of the producer's last batch is still a duplicate, not a new append.
        let retry = batch_of(&vec![b"again".to_vec(); 3], 0, Some((1, 0, 15)));
        assert!(matches!(
            recovered.producer_state().check(retry.header()),
            Err(crate::log::LogError::DuplicateSequence { original: Offset(33), .. })
        ));
    }

    proptest! {
        /// Any file of a flushed log (segment, index, checkpoint, producer snapshot) flipped
        /// and/or torn: recovery never panics, never serves a changed record, keeps offsets
        /// increasing, never goes below what was flushed, and keeps the producer state.
        #[test]
        fn any_file_flipped_or_torn_recovers_consistently(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
            file in any::<prop::sample::Index>(),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let (log, mut disk) = idempotent_flushed_log(12);
            let truth: BTreeMap<u64, Vec<u8>> = read_all(&log).into_iter().collect();
            let paths: Vec<String> = disk.durable.keys().cloned().collect();
            let bytes = disk.durable.get_mut(file.get(&paths)).expect("file");
            for (at, bit) in flips {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] ^= 1 << bit;
                }
            }
            if let Some(cut) = cut {
                let len = cut.index(bytes.len() + 1);
                bytes.truncate(len);
            }
            let (recovered, report) =
                PartitionLog::recover(DIR, config(), &disk.files(), Millis(0));
            prop_assert!(recovered.log_end_offset() >= report.recovery_point);
            prop_assert!(recovered.log_end_offset() >= log.log_end_offset(), "{:?}", report);
            let mut previous = None;
            for (offset, value) in read_all(&recovered) {
                prop_assert_eq!(truth.get(&offset), Some(&value), "offset {} changed", offset);
                prop_assert!(previous < Some(offset), "offset {} after {:?}", offset, previous);
                previous = Some(offset);
            }
            prop_assert_eq!(recovered.producer_state(), log.producer_state(), "{:?}", report);
        }

        #[test]
        fn random_files_never_panic(
            files in proptest::collection::vec(
                (0usize..7, proptest::collection::vec(any::<u8>(), 0..700)), 0..5),
        ) {
            let names = ["00000000000000000000.log", "00000000000000000000.index",
                "00000000000000000009.log", CHECKPOINT_FILE, "00000000000000000000.cleaned",
                "00000000000000000000.swap", "x.log"];
            let files: BTreeMap<String, Bytes> = files
                .into_iter()
                .map(|(name, bytes)| (format!("{DIR}/{}", names[name]), Bytes::from(bytes)))
                .collect();
            let (log, report) = PartitionLog::recover(DIR, config(), &files, Millis(0));
            prop_assert!(log.log_end_offset() >= report.recovery_point);
            let _ = read_all(&log);
        }

        #[test]
        fn mutated_real_segments_recover_to_true_records(
            mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            file in 0usize..3,
        ) {
            let (log, mut disk) = flushed_log(12);
            let truth: BTreeMap<u64, Vec<u8>> = read_all(&log).into_iter().collect();
            let paths: Vec<String> = disk.durable.keys().cloned().collect();
            let bytes = disk.durable.get_mut(&paths[file % paths.len()]).expect("file");
            for (at, value) in mutations {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = value;
                }
            }
            if file % paths.len() == 1 {
                let len = cut.index(bytes.len() + 1);
                bytes.truncate(len);
            }
            let (log, report) = PartitionLog::recover(DIR, config(), &disk.files(), Millis(0));
            prop_assert!(log.log_end_offset() >= report.recovery_point);
            for (offset, value) in read_all(&log) {
                prop_assert_eq!(truth.get(&offset), Some(&value), "offset {} changed", offset);
            }
        }
    }
}
