//! The disk of one node: its files, its fault settings, its random streams and its stats.
//! Every decision here is synchronous; `SimDisk` sleeps for the latencies this returns.
//!
//! Owns: capacity and fault checks, the crash decisions, bit flips, latency draws. Does not
//! own: the madsim plugin surface or sleeping (mod.rs), the byte model of a file (file.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use madsim::task::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::file::{torn_boundaries, SimFile, SECTOR_BYTES};
use super::{
    BitFlip, CrashDecision, CrashOutcome, DiskConfig, DiskError, DiskOp, DiskStats, IoErrorRates,
};
use crate::seed::substream;

/// madsim sleeps at least 1 ms per `sleep`; shorter latencies accumulate as debt and are
/// paid in one sleep once they add up to this much, so the average cost stays right.
const SLEEP_MIN: Duration = Duration::from_millis(1);

/// Which latency range an operation draws from.
#[derive(Clone, Copy, Debug)]
pub(super) enum LatencyKind {
    Write,
    Sync,
    Read,
}

/// One ChaCha8 stream per purpose, so e.g. the number of reads never moves a crash decision.
struct Streams {
    latency: ChaCha8Rng,
    errors: ChaCha8Rng,
    crash: ChaCha8Rng,
    flips: ChaCha8Rng,
}

impl Streams {
    fn new(root_seed: u64, node: NodeId) -> Self {
        let name = |purpose: &str| format!("disk/{node}/{purpose}");
        Streams {
            latency: substream(root_seed, &name("latency")),
            errors: substream(root_seed, &name("errors")),
            crash: substream(root_seed, &name("crash")),
            flips: substream(root_seed, &name("flips")),
        }
    }
}

pub(super) struct NodeDisk {
    id: NodeId,
    pub(super) config: DiskConfig,
    pub(super) files: BTreeMap<String, SimFile>,
    pub(super) slow_factor: u32,
    pub(super) full: bool,
    pub(super) io_errors: IoErrorRates,
    /// Issue order of writes on this node; a sync captures it as its mark.
    next_seq: u64,
    latency_debt: Duration,
    streams: Streams,
    pub(super) stats: DiskStats,
    pub(super) last_crash: Vec<CrashDecision>,
}

impl NodeDisk {
    pub(super) fn new(id: NodeId, root_seed: u64, config: DiskConfig) -> Self {
        NodeDisk {
            id,
            config,
            files: BTreeMap::new(),
            slow_factor: 1,
            full: false,
            io_errors: IoErrorRates::default(),
            next_seq: 0,
            latency_debt: Duration::ZERO,
            streams: Streams::new(root_seed, id),
            stats: DiskStats::default(),
            last_crash: Vec::new(),
        }
    }

    pub(super) fn reseed(&mut self, root_seed: u64) {
        self.streams = Streams::new(root_seed, self.id);
    }

    /// Draws the latency of one operation, scaled by the slow factor, and returns how long
    /// the caller must sleep now (None: below madsim's 1 ms minimum, carried as debt).
    pub(super) fn draw_latency(&mut self, kind: LatencyKind) -> Option<Duration> {
        let (low_us, high_us) = match kind {
            LatencyKind::Write => self.config.write_latency_us,
            LatencyKind::Sync => self.config.sync_latency_us,
            LatencyKind::Read => self.config.read_latency_us,
        };
        let base_us = if low_us >= high_us {
            low_us
        } else {
            self.streams.latency.gen_range(low_us..=high_us)
        };
        let latency = Duration::from_micros(base_us.saturating_mul(u64::from(self.slow_factor)));
        if latency >= SLEEP_MIN {
            return Some(latency);
        }
        self.latency_debt += latency;
        if self.latency_debt >= SLEEP_MIN {
            return Some(std::mem::take(&mut self.latency_debt));
        }
        None
    }

    /// Draws whether `op` fails with an injected I/O error (no draw when its rate is zero).
    fn inject(&mut self, op: DiskOp, path: &str) -> Result<(), DiskError> {
        let rate = match op {
            DiskOp::Read => self.io_errors.read,
            DiskOp::Write => self.io_errors.write,
            DiskOp::Sync => self.io_errors.sync,
            DiskOp::Truncate | DiskOp::Delete => self.io_errors.metadata,
        };
        if rate <= 0.0 || !self.streams.errors.gen_bool(rate.min(1.0)) {
            return Ok(());
        }
        self.stats.io_errors_injected += 1;
        tracing::warn!(node = %self.id, %path, ?op, "disk: injected I/O error");
        Err(DiskError::Io { op, path: path.to_owned() })
    }

    /// Total page-cache bytes over all files of the node.
    pub(super) fn used_bytes(&self) -> u64 {
        self.files.values().map(SimFile::len).sum()
    }

    /// Fails with NoSpace if growing a file from `old_len` to `new_len` does not fit.
    fn reserve(&mut self, path: &str, old_len: u64, new_len: Option<u64>) -> Result<(), DiskError> {
        let Some(new_len) = new_len else {
            return self.no_space(path, "offset overflows u64");
        };
        let added = new_len.saturating_sub(old_len);
        if added == 0 {
            return Ok(());
        }
        if self.full {
            return self.no_space(path, "disk marked full");
        }
        let used = self.used_bytes();
        if used.saturating_add(added) > self.config.capacity_bytes {
            return self.no_space(path, "capacity reached");
        }
        Ok(())
    }

    fn no_space(&mut self, path: &str, why: &str) -> Result<(), DiskError> {
        self.stats.no_space_errors += 1;
        tracing::warn!(node = %self.id, %path, why, "disk: no space");
        Err(DiskError::NoSpace { path: path.to_owned() })
    }

    pub(super) fn write(&mut self, path: &str, offset: u64, data: Bytes) -> Result<(), DiskError> {
        self.inject(DiskOp::Write, path)?;
        let old_len = self.files.get(path).map_or(0, SimFile::len);
        let end = offset.checked_add(data.len() as u64);
        self.reserve(path, old_len, end.map(|end| end.max(old_len)))?;
        self.apply_write(path, offset, data);
        Ok(())
    }

    pub(super) fn append(&mut self, path: &str, data: Bytes) -> Result<u64, DiskError> {
        self.inject(DiskOp::Write, path)?;
        let offset = self.files.get(path).map_or(0, SimFile::len);
        self.reserve(path, offset, offset.checked_add(data.len() as u64))?;
        self.apply_write(path, offset, data);
        Ok(offset)
    }

    fn apply_write(&mut self, path: &str, offset: u64, data: Bytes) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        let end = offset + data.len() as u64;
        let file = self.files.entry(path.to_owned()).or_default();
        file.write(seq, offset, data);
        assert!(file.len() >= end, "node {}: {path} len {} < write end {end}", self.id, file.len());
    }

    /// The mark a sync called now carries: writes with a lower seq were issued before it.
    pub(super) fn sync_mark(&self, path: &str) -> Result<u64, DiskError> {
        self.exists(path)?;
        Ok(self.next_seq)
    }

    pub(super) fn sync_complete(&mut self, path: &str, seq_mark: u64) -> Result<(), DiskError> {
        self.inject(DiskOp::Sync, path)?;
        let file = self.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let bytes = file.sync_before(seq_mark);
        self.stats.syncs += 1;
        self.stats.bytes_synced += bytes;
        Ok(())
    }

    pub(super) fn read(&mut self, path: &str, offset: u64, len: usize) -> Result<Bytes, DiskError> {
        self.inject(DiskOp::Read, path)?;
        let file = self.files.get(path).ok_or_else(|| not_found(path))?;
        let data = file.read(offset, len);
        self.stats.reads += 1;
        self.stats.bytes_read += data.len() as u64;
        Ok(Bytes::from(data))
    }

    pub(super) fn file_len(&self, path: &str) -> Result<u64, DiskError> {
        self.files.get(path).map(SimFile::len).ok_or_else(|| not_found(path))
    }

    pub(super) fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        let old_len = self.file_len(path)?;
        self.inject(DiskOp::Truncate, path)?;
        self.reserve(path, old_len, Some(len))?;
        self.files.get_mut(path).expect("checked above").truncate(len);
        self.stats.truncates += 1;
        Ok(())
    }

    pub(super) fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        self.exists(path)?;
        self.inject(DiskOp::Delete, path)?;
        self.files.remove(path);
        self.stats.deletes += 1;
        Ok(())
    }

    fn exists(&self, path: &str) -> Result<(), DiskError> {
        if self.files.contains_key(path) {
            Ok(())
        } else {
            Err(not_found(path))
        }
    }

    /// A process exit (not a power loss): the OS keeps the page cache and writes it back,
    /// so every pending write becomes durable, in issue order.
    pub(super) fn write_back(&mut self) {
        for file in self.files.values_mut() {
            file.sync_before(u64::MAX);
        }
    }

    /// Power loss: every pending write of every file, in path then issue order, is dropped,
    /// kept or torn at a sector boundary as the crash policy and the crash stream decide.
    pub(super) fn crash(&mut self) {
        self.stats.crashes += 1;
        self.latency_debt = Duration::ZERO;
        let mut report = Vec::new();
        let paths: Vec<String> = self.files.keys().cloned().collect();
        for path in paths {
            let file = self.files.get_mut(&path).expect("path listed above");
            let pending = file.take_pending();
            for write in pending {
                let outcome =
                    decide(&mut self.streams.crash, &self.config, write.offset, write.data.len());
                let kept_len = match outcome {
                    CrashOutcome::Dropped => 0,
                    CrashOutcome::Kept => write.data.len(),
                    CrashOutcome::Torn { kept_len } => kept_len as usize,
                };
                if kept_len > 0 {
                    file.apply_durable(write.offset, &write.data[..kept_len]);
                }
                self.stats.record(outcome, write.data.len() as u64);
                let decision = CrashDecision {
                    path: path.clone(),
                    offset: write.offset,
                    len: write.data.len() as u64,
                    outcome,
                };
                tracing::warn!(
                    node = %self.id,
                    path = %decision.path,
                    offset = decision.offset,
                    len = decision.len,
                    decision = ?decision.outcome,
                    "disk: crash decides pending write"
                );
                report.push(decision);
            }
            file.settle_after_crash();
        }
        tracing::warn!(node = %self.id, pending_writes = report.len(), "disk: crash");
        self.last_crash = report;
    }

    /// Flips `count` distinct bits of the durable bytes, chosen uniformly over all durable
    /// bytes of the node (so a large file is hit more often than a small one).
    pub(super) fn flip_bits(&mut self, count: u32) -> Vec<BitFlip> {
        let durable_total: u64 = self.files.values().map(|f| f.durable().len() as u64).sum();
        let total_bits = usize::try_from(durable_total.saturating_mul(8)).unwrap_or(usize::MAX);
        let amount = (count as usize).min(total_bits);
        if amount == 0 {
            return Vec::new();
        }
        let mut picks =
            rand::seq::index::sample(&mut self.streams.flips, total_bits, amount).into_vec();
        picks.sort_unstable();
        let mut flips = Vec::with_capacity(amount);
        let mut picks = picks.into_iter().peekable();
        let mut file_start_bit = 0usize;
        for (path, file) in self.files.iter_mut() {
            let file_bits = file.durable().len() * 8;
            while let Some(&pick) = picks.peek() {
                if pick >= file_start_bit + file_bits {
                    break;
                }
                picks.next();
                let bit_in_file = pick - file_start_bit;
                let (offset, bit) = (bit_in_file / 8, (bit_in_file % 8) as u8);
                file.durable_mut()[offset] ^= 1 << bit;
                tracing::warn!(node = %self.id, %path, offset, bit, "disk: silent bit flip");
                flips.push(BitFlip { path: path.clone(), offset: offset as u64, bit });
            }
            file_start_bit += file_bits;
        }
        assert_eq!(
            flips.len(),
            amount,
            "node {}: placed {} of {amount} flips",
            self.id,
            flips.len()
        );
        self.stats.bits_flipped += amount as u64;
        flips
    }
}

fn not_found(path: &str) -> DiskError {
    DiskError::NotFound { path: path.to_owned() }
}

/// One crash decision for a pending write of `len` bytes at `offset`.
fn decide(rng: &mut ChaCha8Rng, config: &DiskConfig, offset: u64, len: usize) -> CrashOutcome {
    let policy = config.crash;
    let roll: u8 = rng.gen_range(0..100);
    if roll < policy.drop_pct {
        return CrashOutcome::Dropped;
    }
    if roll < policy.drop_pct + policy.keep_pct {
        return CrashOutcome::Kept;
    }
    let (first, count) = torn_boundaries(offset, len as u64);
    if count == 0 {
        return CrashOutcome::Torn { kept_len: 0 };
    }
    let boundary = first + rng.gen_range(0..count) * SECTOR_BYTES;
    let kept_len = boundary - offset;
    assert!(kept_len <= len as u64, "torn keeps {kept_len} of {len} bytes");
    CrashOutcome::Torn { kept_len }
}
