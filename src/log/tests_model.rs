//! Model-based tests of the partition log (sled style): random operations, crashes and
//! recoveries included, run against a plain `BTreeMap<offset, value>` model, over a tiny
//! disk model that loses, keeps or tears unsynced writes at 512-byte sectors on a crash.
//! Also the shared test helpers (the disk model, batch builders) other log tests use.

use super::{DiskOp, FlushPolicy, LogConfig, PartitionLog};
use crate::record::{scan_batches, BatchBuilder, RecordBatch};
use crate::types::{Epoch, Millis, Offset};
use bytes::Bytes;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

pub(super) const DIR: &str = "data/t-0";
/// The simulated disk tears writes at sector boundaries.
const SECTOR_BYTES: u64 = 512;

/// Durable bytes plus the ops not yet synced, per the DESIGN's SimDisk.
#[derive(Clone, Debug, Default)]
pub(super) struct DiskModel {
    pub durable: BTreeMap<String, Vec<u8>>,
    pending: Vec<DiskOp>,
}

impl DiskModel {
    pub fn apply(&mut self, ops: Vec<DiskOp>) {
        for op in ops {
            match op {
                DiskOp::Sync { path } => {
                    let (mine, rest): (Vec<DiskOp>, Vec<DiskOp>) =
                        std::mem::take(&mut self.pending)
                            .into_iter()
                            .partition(|o| o.path() == path);
                    self.pending = rest;
                    for op in mine {
                        apply_op(&mut self.durable, &op);
                    }
                }
                DiskOp::Delete { path } => {
                    // The contract: a delete is durable once carried out.
                    self.pending.retain(|o| o.path() != path);
                    self.durable.remove(&path);
                }
                other => self.pending.push(other),
            }
        }
    }

    /// Everything pending becomes durable (a clean shutdown).
    pub fn sync_all(&mut self) {
        for op in std::mem::take(&mut self.pending) {
            apply_op(&mut self.durable, &op);
        }
    }

    /// A crash: each pending op is dropped, kept, or (writes) torn at a sector boundary.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng) -> BTreeMap<String, Bytes> {
        for op in std::mem::take(&mut self.pending) {
            match rng.gen_range(0..3) {
                0 => {}
                1 => apply_op(&mut self.durable, &op),
                _ => apply_op(&mut self.durable, &tear(op, rng)),
            }
        }
        self.files()
    }

    pub fn files(&self) -> BTreeMap<String, Bytes> {
        self.durable.iter().map(|(p, b)| (p.clone(), Bytes::from(b.clone()))).collect()
    }
}

fn tear(op: DiskOp, rng: &mut ChaCha8Rng) -> DiskOp {
    let DiskOp::Write { path, offset, data } = op else { return op };
    let end = offset + data.len() as u64;
    let first_boundary = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
    if first_boundary >= end {
        return DiskOp::Write { path, offset, data: Bytes::new() };
    }
    let boundaries = (end - first_boundary).div_ceil(SECTOR_BYTES);
    let cut = first_boundary + rng.gen_range(0..boundaries) * SECTOR_BYTES;
    DiskOp::Write { path, offset, data: data.slice(..(cut - offset) as usize) }
}

fn apply_op(files: &mut BTreeMap<String, Vec<u8>>, op: &DiskOp) {
    match op {
        DiskOp::Write { path, offset, data } => {
            let file = files.entry(path.clone()).or_default();
            let end = *offset as usize + data.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[*offset as usize..end].copy_from_slice(data);
        }
        DiskOp::Truncate { path, len } => {
            if let Some(file) = files.get_mut(path) {
                file.truncate(*len as usize);
            }
        }
        DiskOp::Delete { path } => {
            files.remove(path);
        }
        DiskOp::Sync { .. } => {}
    }
}

/// A batch of `values`, with producer fields if `producer` is (id, epoch, first seq).
pub(super) fn batch_of(
    values: &[Vec<u8>],
    timestamp_ms: i64,
    producer: Option<(i64, i16, i32)>,
) -> RecordBatch {
    let mut builder = match producer {
        Some((id, epoch, seq)) => BatchBuilder::idempotent(id, epoch, seq),
        None => BatchBuilder::new(),
    };
    for value in values {
        builder.push(timestamp_ms, None, Some(value), &[]);
    }
    builder.build()
}

/// Every (offset, value) the log returns from its start to its end.
pub(super) fn read_all(log: &PartitionLog) -> Vec<(u64, Vec<u8>)> {
    let data =
        log.read(log.log_start_offset(), usize::MAX, log.log_end_offset()).expect("read all");
    records_in(&data.records)
}

/// The client records in fetched bytes (control batches such as gap markers are not
/// records: readers step over them).
pub(super) fn records_in(bytes: &Bytes) -> Vec<(u64, Vec<u8>)> {
    let (batches, stop) = scan_batches(bytes);
    assert!(stop.is_none(), "log returned bad bytes: {stop:?}");
    batches
        .iter()
        .filter(|b| !b.header().is_control())
        .flat_map(|b| b.records().expect("valid"))
        .map(|r| (r.offset.0, r.value.map(|v| v.to_vec()).unwrap_or_default()))
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: usize,
        value_bytes: usize,
    },
    Flush,
    /// Flush whose completion the driver never reports (the syncs still happen).
    FlushUnacked,
    Crash {
        seed: u64,
    },
    TruncateTo {
        back: u64,
    },
    Read {
        from_fraction: u8,
        max_bytes: usize,
        hw_fraction: u8,
    },
    Tick {
        advance_ms: u64,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..8, 0usize..200).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        2 => Just(Op::Flush),
        1 => Just(Op::FlushUnacked),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => (0u64..30).prop_map(|back| Op::TruncateTo { back }),
        2 => (any::<u8>(), 1usize..3000, any::<u8>())
            .prop_map(|(from_fraction, max_bytes, hw_fraction)| Op::Read { from_fraction, max_bytes, hw_fraction }),
        1 => (0u64..20_000).prop_map(|advance_ms| Op::Tick { advance_ms }),
    ]
}

fn arb_flush() -> impl Strategy<Value = FlushPolicy> {
    prop_oneof![
        Just(FlushPolicy::Never),
        Just(FlushPolicy::EveryBatch),
        Just(FlushPolicy::IntervalMs(5_000))
    ]
}

fn model_config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        segment_ms: 30_000,
        index_interval_bytes: 256,
        flush,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

/// The harness: a log, its disk, the model, and simulated time.
struct Harness {
    log: PartitionLog,
    disk: DiskModel,
    model: BTreeMap<u64, Vec<u8>>,
    now: Millis,
    next_value: u64,
}

impl Harness {
    fn sync_ops(&mut self) {
        let ops = self.log.take_disk_ops();
        self.disk.apply(ops);
    }

    fn flush(&mut self, ack: bool) {
        let offset = self.log.flush(self.now);
        self.sync_ops();
        if ack {
            self.log.mark_flushed(offset);
        }
    }

    fn append(&mut self, records: usize, value_bytes: usize) {
        let values: Vec<Vec<u8>> = (0..records)
            .map(|_| {
                self.next_value += 1;
                let mut value = format!("v{}-", self.next_value).into_bytes();
                value.resize(value.len() + value_bytes, b'x');
                value
            })
            .collect();
        let batch = batch_of(&values, self.now.0 as i64, None);
        let info = self.log.append_as_leader(batch, Epoch(1), self.now).expect("append");
        for (i, value) in values.into_iter().enumerate() {
            self.model.insert(info.first_offset.0 + i as u64, value);
        }
        self.sync_ops();
        if self.log.needs_flush(self.now) {
            self.flush(true);
        }
    }

    fn crash(&mut self, seed: u64) -> Result<(), TestCaseError> {
        let flushed = self.log.flushed_offset();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let files = self.disk.crash(&mut rng);
        let config = self.log.config().clone();
        let (log, report) = PartitionLog::recover(DIR, config, &files, self.now);
        self.log = log;
        self.sync_ops();
        prop_assert!(
            report.recovery_point >= flushed,
            "checkpoint {report:?} below flushed {flushed}"
        );
        prop_assert!(
            self.log.log_end_offset() >= flushed,
            "leo below the flushed offset {flushed}"
        );
        prop_assert!(report.skipped_offsets.is_none(), "no bit flips, yet a gap: {report:?}");
        let recovered = read_all(&self.log);
        for (offset, value) in &recovered {
            prop_assert_eq!(self.model.get(offset), Some(value), "offset {} changed", offset);
        }
        let kept: BTreeMap<u64, Vec<u8>> = recovered.into_iter().collect();
        for (offset, value) in self.model.range(..flushed.0) {
            prop_assert_eq!(kept.get(offset), Some(value), "flushed offset {} lost", offset);
        }
        self.model = kept;
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let all = read_all(&self.log);
        let expected: Vec<(u64, Vec<u8>)> =
            self.model.iter().map(|(o, v)| (*o, v.clone())).collect();
        prop_assert_eq!(&all, &expected);
        let start = self.log.log_start_offset().0;
        let dense: Vec<u64> = (start..self.log.log_end_offset().0).collect();
        let offsets: Vec<u64> = all.iter().map(|(o, _)| *o).collect();
        prop_assert_eq!(offsets, dense, "offsets are dense");
        prop_assert!(self.log.flushed_offset() <= self.log.log_end_offset());
        Ok(())
    }

    fn read(
        &self,
        from_fraction: u8,
        max_bytes: usize,
        hw_fraction: u8,
    ) -> Result<(), TestCaseError> {
        let (start, end) = (self.log.log_start_offset().0, self.log.log_end_offset().0);
        let from = start + (end - start) * u64::from(from_fraction) / 255;
        let hw = from + (end - from) * u64::from(hw_fraction) / 255;
        let data = self.log.read(Offset(from), max_bytes, Offset(hw)).expect("in range");
        let got = records_in(&data.records);
        let expected: Vec<(u64, Vec<u8>)> =
            self.model.range(..hw).map(|(o, v)| (*o, v.clone())).collect();
        // Whole batches: the first may start before `from`; none reaches the HW.
        let skip = expected.iter().position(|(o, _)| Some(*o) == got.first().map(|g| g.0));
        if let Some(skip) = skip {
            prop_assert!(got[0].0 <= from);
            prop_assert_eq!(&got[..], &expected[skip..skip + got.len()]);
        } else {
            prop_assert!(got.is_empty());
        }
        prop_assert!(got.last().is_none_or(|(o, _)| *o < hw));
        prop_assert_eq!(data.batch_count == 0, got.is_empty());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model_across_crashes(flush in arb_flush(), ops in proptest::collection::vec(arb_op(), 1..80)) {
        let config = model_config(flush);
        let mut h = Harness {
            log: PartitionLog::create(DIR, config, Millis(0)),
            disk: DiskModel::default(),
            model: BTreeMap::new(),
            now: Millis(0),
            next_value: 0,
        };
        for op in ops {
            h.now = h.now.plus_ms(1);
            match op {
                Op::Append { records, value_bytes } => h.append(records, value_bytes),
                Op::Flush => h.flush(true),
                Op::FlushUnacked => h.flush(false),
                Op::Crash { seed } => h.crash(seed)?,
                Op::TruncateTo { back } => {
                    let target = Offset(h.log.log_end_offset().0.saturating_sub(back));
                    let info = h.log.truncate_to(target);
                    prop_assert!(info.new_log_end_offset <= target.max(info.old_log_end_offset));
                    h.model.retain(|o, _| *o < info.new_log_end_offset.0);
                    h.sync_ops();
                }
                Op::Read { from_fraction, max_bytes, hw_fraction } => h.read(from_fraction, max_bytes, hw_fraction)?,
                Op::Tick { advance_ms } => {
                    h.now = h.now.plus_ms(advance_ms);
                    h.log.tick(h.now);
                    h.sync_ops();
                }
            }
            h.check()?;
        }
    }
}

#[test]
fn tear_cuts_at_sector_boundaries() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..100 {
        let op =
            DiskOp::Write { path: "f".into(), offset: 100, data: Bytes::from(vec![1u8; 2000]) };
        let DiskOp::Write { offset, data, .. } = tear(op, &mut rng) else { unreachable!() };
        let end = offset + data.len() as u64;
        assert!(end.is_multiple_of(SECTOR_BYTES) && end < 2100, "torn at {end}");
    }
}
