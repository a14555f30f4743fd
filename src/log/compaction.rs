//! Compaction (cleanup.policy=compact): keep only the latest record per key in the closed
//! segments, with their original offsets. Records without a key are kept; a tombstone (a
//! null value) is kept until its timestamp is delete_retention_ms old, then dropped.
//!
//! Only segments wholly below the flushed offset are cleaned, so every gap compaction
//! leaves lies below the persisted recovery point, which is what recovery accepts as a
//! legitimate gap. The format cannot hold gaps inside a batch (record count must equal the
//! offset span), so each surviving run of consecutive offsets becomes its own batch, with
//! the producer fields and sequences of its records, and a fresh CRC.
//!
//! The swap is crash-safe without a rename: write `<base>.cleaned` and sync it, write and
//! sync a `<base>.swap` marker holding its length and CRC-32C, then rewrite `<base>.log`
//! from it, sync, and delete both. Recovery completes a swap whose marker matches its
//! `.cleaned` file and discards any other leftovers (the `.log` was untouched until then).

use super::partition_log::PartitionLog;
use super::segment::Segment;
use super::{segment_file, DiskOp, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::record::{BatchBuilder, Record, RecordBatch, NO_SEQUENCE};
use crate::types::{Epoch, Millis, Offset};
use bytes::{BufMut, Bytes};
use std::collections::BTreeMap;
use tracing::info;

const SWAP_MAGIC: u32 = 0x4b53_5357; // "KSSW"
const SWAP_MARKER_BYTES: usize = 4 + 8 + 4 + 4;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionInfo {
    pub segments_cleaned: Vec<Offset>,
    pub records_removed: u64,
}

impl PartitionLog {
    /// One compaction pass over the cleanable segments.
    pub(super) fn compact(&mut self, now: Millis) -> CompactionInfo {
        let mut info = CompactionInfo::default();
        let bases: Vec<Offset> = self.segments.keys().copied().collect();
        let cleanable: Vec<Offset> =
            bases.windows(2).filter(|w| w[1] <= self.flushed_offset).map(|w| w[0]).collect();
        if cleanable.is_empty() {
            return info;
        }
        let mut latest: BTreeMap<Bytes, Offset> = BTreeMap::new();
        for base in &cleanable {
            for record in self.segments[base].batches().iter().flat_map(records_of) {
                if let Some(key) = record.key {
                    latest.insert(key, record.offset);
                }
            }
        }
        for base in cleanable {
            let segment = &self.segments[&base];
            let (batches, removed) =
                clean_batches(segment, &latest, now, self.config.delete_retention_ms);
            if removed == 0 {
                continue;
            }
            let interval = self.config.index_interval_bytes;
            let cleaned = Segment::from_batches(base, &batches, interval, now);
            assert!(
                cleaned.next_offset() <= segment.next_offset(),
                "compaction grew {base} in {}",
                self.dir
            );
            self.swap_in(cleaned);
            info!(dir = %self.dir, offset = %base, removed, "segment compacted");
            info.segments_cleaned.push(base);
            info.records_removed += removed;
        }
        info
    }

    /// Replaces a segment by its cleaned copy, queueing the crash-safe swap.
    fn swap_in(&mut self, cleaned: Segment) {
        let base = cleaned.base_offset();
        let data = Bytes::copy_from_slice(cleaned.data());
        let cleaned_path = segment_file(&self.dir, base, CLEANED_SUFFIX);
        let swap_path = segment_file(&self.dir, base, SWAP_SUFFIX);
        let (log, index) = (self.log_path(base), self.index_path(base));
        let ops = [
            DiskOp::Truncate { path: cleaned_path.clone(), len: 0 },
            DiskOp::Write { path: cleaned_path.clone(), offset: 0, data: data.clone() },
            DiskOp::Sync { path: cleaned_path.clone() },
            DiskOp::Write { path: swap_path.clone(), offset: 0, data: encode_swap_marker(&data) },
            DiskOp::Sync { path: swap_path.clone() },
            DiskOp::Truncate { path: log.clone(), len: 0 },
            DiskOp::Write { path: log.clone(), offset: 0, data },
            DiskOp::Sync { path: log },
            DiskOp::Truncate { path: index.clone(), len: 0 },
            DiskOp::Write { path: index, offset: 0, data: cleaned.index().encode() },
            DiskOp::Delete { path: cleaned_path },
            DiskOp::Delete { path: swap_path },
        ];
        self.ops.extend(ops);
        let replaced = self.segments.insert(base, cleaned);
        assert!(replaced.is_some(), "compacted segment {base} was not in {}", self.dir);
    }
}

fn records_of(batch: &RecordBatch) -> Vec<Record> {
    batch.records().expect("segment batches were validated")
}

/// The batches left after cleaning one segment, and how many records were dropped.
fn clean_batches(
    segment: &Segment,
    latest: &BTreeMap<Bytes, Offset>,
    now: Millis,
    delete_retention_ms: u64,
) -> (Vec<RecordBatch>, u64) {
    let mut out = Vec::new();
    let mut removed = 0;
    for batch in segment.batches() {
        let records = records_of(&batch);
        let total = records.len();
        let kept: Vec<Record> = records
            .into_iter()
            .filter(|r| keep_record(r, latest, now, delete_retention_ms))
            .collect();
        removed += (total - kept.len()) as u64;
        if kept.len() == total {
            out.push(batch);
            continue;
        }
        for run in consecutive_runs(&kept) {
            out.push(rebuild_run(&batch, run));
        }
    }
    (out, removed)
}

fn keep_record(
    record: &Record,
    latest: &BTreeMap<Bytes, Offset>,
    now: Millis,
    delete_retention_ms: u64,
) -> bool {
    let Some(key) = &record.key else { return true };
    if latest.get(key).is_some_and(|offset| *offset != record.offset) {
        return false;
    }
    let expired =
        i128::from(record.timestamp_ms) + i128::from(delete_retention_ms) < i128::from(now.0);
    !(record.value.is_none() && expired)
}

fn consecutive_runs(records: &[Record]) -> Vec<&[Record]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=records.len() {
        if i == records.len() || records[i].offset != records[i - 1].offset.next() {
            if i > start {
                runs.push(&records[start..i]);
            }
            start = i;
        }
    }
    runs
}

/// A batch holding one run of an original batch's records, at their original offsets.
fn rebuild_run(original: &RecordBatch, run: &[Record]) -> RecordBatch {
    let header = original.header();
    let first = run.first().expect("runs are non-empty");
    let delta = first.offset.0 - header.base_offset.0;
    let sequence = if header.base_sequence == NO_SEQUENCE {
        NO_SEQUENCE
    } else {
        ((i64::from(header.base_sequence) + delta as i64) % (i64::from(i32::MAX) + 1)) as i32
    };
    let mut builder = BatchBuilder::idempotent(header.producer_id, header.producer_epoch, sequence);
    for record in run {
        builder.push(
            record.timestamp_ms,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
    }
    let epoch = Epoch(header.partition_leader_epoch as u32);
    let rebuilt = builder.build().with_position(first.offset, epoch);
    assert_eq!(rebuilt.record_count() as usize, run.len(), "rebuilt run at {}", first.offset);
    rebuilt
}

fn encode_swap_marker(cleaned: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(SWAP_MARKER_BYTES);
    out.put_u32(SWAP_MAGIC);
    out.put_u64(cleaned.len() as u64);
    out.put_u32(crc32c::crc32c(cleaned));
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    Bytes::from(out)
}

/// Whether `marker` is a valid swap marker describing exactly `cleaned`.
pub(super) fn swap_marker_matches(marker: &[u8], cleaned: &[u8]) -> bool {
    marker.len() == SWAP_MARKER_BYTES && encode_swap_marker(cleaned).as_ref() == marker
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::tests_model::{DiskModel, DIR};
    use crate::log::{CleanupPolicy, LogConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            cleanup: CleanupPolicy::Compact,
            retention_ms: None,
            delete_retention_ms: 1_000,
            ..LogConfig::default()
        }
    }

    /// (offset, key, value) of every record.
    fn contents(log: &PartitionLog) -> Vec<(u64, Option<Bytes>, Option<Bytes>)> {
        let data = log.read(log.log_start_offset(), usize::MAX, log.log_end_offset()).unwrap();
        let (batches, _) = crate::record::scan_batches(&data.records);
        batches.iter().flat_map(records_of).map(|r| (r.offset.0, r.key, r.value)).collect()
    }

    fn keyed_log(disk: &mut DiskModel) -> PartitionLog {
        let mut log = PartitionLog::create(DIR, config(), Millis(0));
        for i in 0..40u32 {
            let mut builder = BatchBuilder::new();
            for j in 0..2u32 {
                let key = format!("k{}", (i * 2 + j) % 5);
                let value = (i % 13 != 7).then(|| format!("v{i}-{j}"));
                builder.push(0, Some(key.as_bytes()), value.as_deref().map(str::as_bytes), &[]);
            }
            builder.push(0, None, Some(b"unkeyed"), &[]);
            log.append_as_leader(builder.build(), Epoch(1), Millis(1)).expect("append");
        }
        let offset = log.flush(Millis(1));
        disk.apply(log.take_disk_ops());
        log.mark_flushed(offset);
        log
    }

    #[test]
    fn compaction_keeps_the_latest_value_per_key_at_its_original_offset() {
        let mut disk = DiskModel::default();
        let mut log = keyed_log(&mut disk);
        let before = contents(&log);
        let info = log.compact(Millis(10));
        assert!(!info.segments_cleaned.is_empty() && info.records_removed > 0);
        let after = contents(&log);
        assert!(after.len() < before.len());
        let closed_end = log.active().base_offset().0;
        let mut latest: BTreeMap<Bytes, u64> = BTreeMap::new();
        for (offset, key, _) in before.iter().filter(|r| r.0 < closed_end) {
            if let Some(key) = key {
                latest.insert(key.clone(), *offset);
            }
        }
        for record in &after {
            assert!(before.contains(record), "record {record:?} kept its offset and value");
            if let (Some(key), true) = (&record.1, record.0 < closed_end) {
                assert_eq!(latest[key], record.0, "only the latest of {key:?}");
            }
        }
        let unkeyed = |rs: &[(u64, Option<Bytes>, Option<Bytes>)]| {
            rs.iter().filter(|r| r.1.is_none()).count()
        };
        assert_eq!(unkeyed(&before), unkeyed(&after), "records without a key are kept");
        // Tombstones stay until delete_retention_ms, then go.
        let mut later = log.clone();
        later.compact(Millis(5_000));
        assert!(contents(&later)
            .iter()
            .all(|r| r.0 >= closed_end || r.1.is_none() || r.2.is_some()));
    }

    #[test]
    fn crash_at_any_point_of_a_swap_recovers_a_valid_log() {
        let mut disk = DiskModel::default();
        let mut log = keyed_log(&mut disk);
        let before = contents(&log);
        log.compact(Millis(10));
        let after = contents(&log);
        let ops = log.take_disk_ops();
        for done in 0..=ops.len() {
            for seed in 0..4 {
                let mut crashed = disk.clone();
                crashed.apply(ops[..done].to_vec());
                let files = crashed.crash(&mut ChaCha8Rng::seed_from_u64(seed));
                let (recovered, report) = PartitionLog::recover(DIR, config(), &files, Millis(11));
                let got = contents(&recovered);
                assert!(report.cuts.is_empty(), "compaction gaps are legal: {report:?}");
                // Each segment's swap is atomic: every record is an original one, and
                // everything compaction keeps (the latest value per key) is there.
                assert!(got.iter().all(|r| before.contains(r)), "after {done} ops: {report:?}");
                assert!(after.iter().all(|r| got.contains(r)), "after {done} ops: {report:?}");
            }
        }
    }
}
