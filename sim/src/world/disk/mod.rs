//! SimDisk: one simulated disk per node, as a madsim simulator plugin.
//!
//! madsim's own fs keeps unsynced writes across a kill and its sync does nothing, so the
//! world has its own disk. Per node it holds files by path; each file has durable bytes and
//! an ordered list of pending (unsynced) writes. Reads see the page-cache view (durable bytes
//! with the pending writes applied in order). `sync` makes durable, after its latency, the
//! writes of that file issued before the call. `Handle::kill` runs `reset_node`: the crash,
//! in which each pending write is dropped, kept, or torn at a 512-byte sector boundary of the
//! file, as the node's crash policy and seed decide. Always kill, then restart: a bare
//! `restart` does not run `reset_node`, so pending writes would survive it.
//!
//! Owns: file bytes and their durability, latencies (madsim sleeps), capacity, and the disk
//! faults — slow episodes, disk full, injected I/O errors, silent bit flips — and their
//! stats and crash reports. Does not own: checksums (every stored record batch carries a
//! CRC32C that the log checks on read, so a flipped bit surfaces there), file handles or
//! directories (a path is a plain string; `list` filters by prefix), or recovery (the node
//! shell's `init` rebuilds state from what `read` returns after a restart).
//!
//! Simplifications, chosen on purpose:
//! - Creating, truncating and deleting a file are metadata operations that are immediate and
//!   durable (no directory fsync is modelled). A write creates its file.
//! - A write takes effect when its latency has passed; a task killed during that latency
//!   never wrote. Latencies under madsim's 1 ms sleep minimum are summed per node and paid in
//!   one sleep once they reach 1 ms.
//! - A failed sync leaves its writes pending (Linux may instead drop the dirty pages).
//! - Bit flips change durable bytes; the page cache shows them unless a pending write covers
//!   the same bytes.
//!
//! Randomness: per node, ChaCha8 sub-streams `disk/<node id>/{latency,errors,crash,flips}`
//! under the root seed given to [`SimDisk::seed`] (0 until then), so that e.g. the number of
//! reads a node does never moves its crash decisions, and nothing here draws from madsim's
//! global rng.

mod file;
mod node;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use madsim::plugin::{self, Simulator};
use madsim::rand::GlobalRng;
use madsim::task::NodeId;
use madsim::time::TimeHandle;
use serde::{Deserialize, Serialize};

use node::{LatencyKind, NodeDisk};

/// Per-node disk settings; a node never configured gets `DiskConfig::default()`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskConfig {
    /// Uniform range, per write or append (a page-cache copy: small).
    pub write_latency_us: (u64, u64),
    /// Uniform range, per sync (an fsync).
    pub sync_latency_us: (u64, u64),
    /// Uniform range, per read.
    pub read_latency_us: (u64, u64),
    /// Total page-cache bytes over all files of the node; a write beyond it fails NoSpace.
    pub capacity_bytes: u64,
    /// What a crash does to each pending write.
    pub crash: CrashPolicy,
}

impl Default for DiskConfig {
    /// An SSD-like disk: page-cache writes of tens of µs, fsyncs of 1-5 ms (a consumer NVMe
    /// flush), 1 GiB per node (far above what a simulated run writes).
    fn default() -> Self {
        DiskConfig {
            write_latency_us: (5, 50),
            sync_latency_us: (1_000, 5_000),
            read_latency_us: (5, 50),
            capacity_bytes: 1 << 30,
            crash: CrashPolicy::default(),
        }
    }
}

impl DiskConfig {
    /// Checks the invariants `configure` asserts, for scenario validation to report.
    pub fn validate(&self) -> Result<(), String> {
        let ranges = [
            ("write_latency_us", self.write_latency_us),
            ("sync_latency_us", self.sync_latency_us),
            ("read_latency_us", self.read_latency_us),
        ];
        for (name, (low, high)) in ranges {
            if low > high {
                return Err(format!("{name}: low {low} > high {high}"));
            }
        }
        self.crash.validate()
    }
}

/// Percentages of pending writes a crash drops, keeps, or tears; they sum to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrashPolicy {
    pub drop_pct: u8,
    pub keep_pct: u8,
    pub torn_pct: u8,
}

impl Default for CrashPolicy {
    /// Mostly lost, some kept, some torn: every outcome shows up in a run with a few crashes.
    fn default() -> Self {
        CrashPolicy { drop_pct: 50, keep_pct: 25, torn_pct: 25 }
    }
}

impl CrashPolicy {
    pub fn validate(&self) -> Result<(), String> {
        let sum = u32::from(self.drop_pct) + u32::from(self.keep_pct) + u32::from(self.torn_pct);
        if sum != 100 {
            return Err(format!(
                "crash policy drop {} + keep {} + torn {} = {sum}, not 100",
                self.drop_pct, self.keep_pct, self.torn_pct
            ));
        }
        Ok(())
    }
}

/// Per-operation probabilities of an injected I/O error, each in [0, 1] (clamped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IoErrorRates {
    pub read: f64,
    pub write: f64,
    pub sync: f64,
    /// Truncate and delete.
    pub metadata: f64,
}

impl IoErrorRates {
    fn clamped(self) -> Self {
        let clamp = |rate: f64| if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) };
        IoErrorRates {
            read: clamp(self.read),
            write: clamp(self.write),
            sync: clamp(self.sync),
            metadata: clamp(self.metadata),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DiskOp {
    Read,
    Write,
    Sync,
    Truncate,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("no space left on device: {path}")]
    NoSpace { path: String },
    #[error("I/O error on {op:?}: {path}")]
    Io { op: DiskOp, path: String },
    #[error("file not found: {path}")]
    NotFound { path: String },
    /// Not produced today: every node gets a default disk on first use. Kept so callers'
    /// matches stay stable if disks ever become opt-in per node.
    #[error("no disk for this node")]
    NodeUnknown,
}

/// What a crash did to one pending write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CrashOutcome {
    Dropped,
    Kept,
    /// Only the first `kept_len` bytes reached the disk (ending on a sector boundary of the
    /// file; 0 when the write spans no boundary).
    Torn {
        kept_len: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrashDecision {
    pub path: String,
    pub offset: u64,
    pub len: u64,
    pub outcome: CrashOutcome,
}

/// A silent flip of bit `bit` (0 = least significant) of durable byte `offset` of `path`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BitFlip {
    pub path: String,
    pub offset: u64,
    pub bit: u8,
}

/// Counters of one node's disk since the start of the run (crashes do not reset them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiskStats {
    pub writes: u64,
    pub bytes_written: u64,
    pub reads: u64,
    pub bytes_read: u64,
    pub syncs: u64,
    pub bytes_synced: u64,
    pub truncates: u64,
    pub deletes: u64,
    pub crashes: u64,
    pub crash_dropped_writes: u64,
    pub crash_dropped_bytes: u64,
    pub crash_kept_writes: u64,
    pub crash_kept_bytes: u64,
    pub crash_torn_writes: u64,
    /// Bytes of torn writes that reached the disk; the rest of them counts in `_lost`.
    pub crash_torn_bytes_kept: u64,
    pub crash_torn_bytes_lost: u64,
    pub io_errors_injected: u64,
    pub no_space_errors: u64,
    pub bits_flipped: u64,
}

impl DiskStats {
    fn record(&mut self, outcome: CrashOutcome, len: u64) {
        match outcome {
            CrashOutcome::Dropped => {
                self.crash_dropped_writes += 1;
                self.crash_dropped_bytes += len;
            }
            CrashOutcome::Kept => {
                self.crash_kept_writes += 1;
                self.crash_kept_bytes += len;
            }
            CrashOutcome::Torn { kept_len } => {
                self.crash_torn_writes += 1;
                self.crash_torn_bytes_kept += kept_len;
                self.crash_torn_bytes_lost += len - kept_len;
            }
        }
    }
}

/// The simulated disks of all nodes. Register with `runtime.add_simulator::<SimDisk>()`;
/// reach with `madsim::plugin::simulator::<SimDisk>()`.
pub struct SimDisk {
    world: Mutex<DiskWorld>,
}

struct DiskWorld {
    root_seed: u64,
    nodes: BTreeMap<NodeId, NodeDisk>,
}

impl DiskWorld {
    fn node(&mut self, id: NodeId) -> &mut NodeDisk {
        let root_seed = self.root_seed;
        self.nodes.entry(id).or_insert_with(|| NodeDisk::new(id, root_seed, DiskConfig::default()))
    }
}

impl Simulator for SimDisk {
    fn new(_rand: &GlobalRng, _time: &TimeHandle, _config: &madsim::Config) -> Self {
        SimDisk { world: Mutex::new(DiskWorld { root_seed: 0, nodes: BTreeMap::new() }) }
    }

    fn create_node(&self, id: NodeId) {
        self.lock().node(id);
    }

    /// Runs inside `Handle::kill` (madsim holds its node and simulator locks): the crash.
    fn reset_node(&self, id: NodeId) {
        self.lock().node(id).crash();
    }
}

impl SimDisk {
    fn lock(&self) -> MutexGuard<'_, DiskWorld> {
        self.world.lock().expect("SimDisk mutex poisoned: a panic happened while it was held")
    }

    fn with_node<T>(&self, id: NodeId, f: impl FnOnce(&mut NodeDisk) -> T) -> T {
        f(self.lock().node(id))
    }

    /// Sleeps for one operation's latency on the current node.
    async fn pay_latency(&self, node: NodeId, kind: LatencyKind) {
        if let Some(delay) = self.with_node(node, |n| n.draw_latency(kind)) {
            madsim::time::sleep(delay).await;
        }
    }

    // ---- setup, from the supervisor ----

    /// Derives every node's disk sub-streams from `root_seed` (also for nodes seen before).
    pub fn seed(&self, root_seed: u64) {
        let mut world = self.lock();
        world.root_seed = root_seed;
        for node in world.nodes.values_mut() {
            node.reseed(root_seed);
        }
    }

    /// Sets `node`'s disk configuration. Panics on an invalid config: scenario validation
    /// (`DiskConfig::validate`) must have rejected it.
    pub fn configure(&self, node: NodeId, config: DiskConfig) {
        if let Err(why) = config.validate() {
            panic!("invalid disk config for node {node}: {why}");
        }
        self.with_node(node, |n| n.config = config);
    }

    // ---- I/O, from inside a node's task ----

    /// Writes `data` at `offset` (creating the file; a gap reads as zeros). Pending until
    /// synced.
    pub async fn write(&self, path: &str, offset: u64, data: Bytes) -> Result<(), DiskError> {
        let node = plugin::node();
        self.pay_latency(node, LatencyKind::Write).await;
        self.with_node(node, |n| n.write(path, offset, data))
    }

    /// Writes `data` at the page-cache end of the file (creating it); returns that offset.
    pub async fn append(&self, path: &str, data: Bytes) -> Result<u64, DiskError> {
        let node = plugin::node();
        self.pay_latency(node, LatencyKind::Write).await;
        self.with_node(node, |n| n.append(path, data))
    }

    /// Makes durable, after the sync latency, the writes to `path` issued before this call.
    /// Writes issued while it waits stay pending. A kill while it waits ends it unfinished.
    pub async fn sync(&self, path: &str) -> Result<(), DiskError> {
        let node = plugin::node();
        let seq_mark = self.with_node(node, |n| n.sync_mark(path))?;
        self.pay_latency(node, LatencyKind::Sync).await;
        self.with_node(node, |n| n.sync_complete(path, seq_mark))
    }

    /// Up to `len` bytes of the page-cache view from `offset`; short at the end of the file.
    pub async fn read(&self, path: &str, offset: u64, len: usize) -> Result<Bytes, DiskError> {
        let node = plugin::node();
        self.pay_latency(node, LatencyKind::Read).await;
        self.with_node(node, |n| n.read(path, offset, len))
    }

    /// The whole page-cache view of the file.
    pub async fn read_all(&self, path: &str) -> Result<Bytes, DiskError> {
        let node = plugin::node();
        self.pay_latency(node, LatencyKind::Read).await;
        self.with_node(node, |n| {
            let len = n.file_len(path)?;
            let len = usize::try_from(len).expect("file length is bounded by capacity");
            n.read(path, 0, len)
        })
    }

    /// Sets the file length, immediately and durably (zero-extends when growing); pending
    /// data beyond `len` is dropped.
    pub async fn truncate(&self, path: &str, len: u64) -> Result<(), DiskError> {
        let node = plugin::node();
        self.with_node(node, |n| n.truncate(path, len))
    }

    /// Removes the file and its pending writes, immediately and durably.
    pub async fn delete(&self, path: &str) -> Result<(), DiskError> {
        let node = plugin::node();
        self.with_node(node, |n| n.delete(path))
    }

    /// Sorted paths of the current node's files that start with `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.with_node(plugin::node(), |n| {
            n.files.keys().filter(|path| path.starts_with(prefix)).cloned().collect()
        })
    }

    /// Page-cache length of a file of the current node.
    pub fn len(&self, path: &str) -> Option<u64> {
        self.with_node(plugin::node(), |n| n.file_len(path).ok())
    }

    // ---- faults and inspection, from the supervisor / nemesis ----

    /// Multiplies every latency of `node` by `factor` (1 = normal; 0 counts as 1).
    pub fn set_slow(&self, node: NodeId, factor: u32) {
        let factor = factor.max(1);
        tracing::warn!(%node, factor, "disk: slow");
        self.with_node(node, |n| n.slow_factor = factor);
    }

    /// While full, every write, append or growing truncate that adds bytes fails NoSpace.
    pub fn set_full(&self, node: NodeId, full: bool) {
        tracing::warn!(%node, full, "disk: full");
        self.with_node(node, |n| n.full = full);
    }

    /// Per-operation I/O error probabilities for `node`, drawn from its errors sub-stream.
    pub fn set_io_errors(&self, node: NodeId, rates: IoErrorRates) {
        let rates = rates.clamped();
        tracing::warn!(%node, ?rates, "disk: I/O error rates");
        self.with_node(node, |n| n.io_errors = rates);
    }

    /// Ends every fault episode on `node`: normal speed, not full, no I/O errors.
    pub fn heal(&self, node: NodeId) {
        tracing::warn!(%node, "disk: faults healed");
        self.with_node(node, |n| {
            n.slow_factor = 1;
            n.full = false;
            n.io_errors = IoErrorRates::default();
        });
    }

    /// Makes every pending write of `node` durable: a process exit, after which a kill
    /// (needed to restart the node) loses nothing.
    pub fn write_back(&self, node: NodeId) {
        self.with_node(node, |n| n.write_back());
    }

    /// Replaces `node`'s disk with an empty one (a lost volume): every file goes, durable
    /// or not. For a node that is down; returns how many files it had.
    pub fn wipe(&self, node: NodeId) -> usize {
        tracing::warn!(%node, "disk: wiped");
        self.with_node(node, |n| {
            let files = n.files.len();
            n.files.clear();
            files
        })
    }

    /// Silently flips `count` distinct bits of durable bytes of `node`'s files (fewer if the
    /// node has fewer durable bits); returns them sorted by path, offset, bit.
    pub fn flip_bits(&self, node: NodeId, count: u32) -> Vec<BitFlip> {
        self.with_node(node, |n| n.flip_bits(count))
    }

    pub fn stats(&self, node: NodeId) -> DiskStats {
        self.with_node(node, |n| n.stats.clone())
    }

    /// Every decision of `node`'s most recent crash, in path then issue order.
    pub fn last_crash_report(&self, node: NodeId) -> Vec<CrashDecision> {
        self.with_node(node, |n| n.last_crash.clone())
    }

    /// The durable bytes of a file of `node` (what a crash now would leave, pending aside).
    pub fn durable_bytes(&self, node: NodeId, path: &str) -> Option<Bytes> {
        self.with_node(node, |n| n.files.get(path).map(|f| Bytes::copy_from_slice(f.durable())))
    }

    /// Bytes in pending writes over all files of `node`.
    pub fn pending_bytes(&self, node: NodeId) -> u64 {
        self.with_node(node, |n| n.files.values().map(|f| f.pending_bytes()).sum())
    }
}
