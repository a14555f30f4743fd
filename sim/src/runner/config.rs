//! From scenario settings to the configurations of the state machines and the world.

use crate::scenario::{
    CleanupSetting, DiskSettings, FlushSetting, NetworkSettings, Scenario, TopicConfig,
};
use crate::world::disk::{CrashPolicy, DiskConfig};
use kafkasim::broker::TopicSpec;
use kafkasim::log::{CleanupPolicy, FlushPolicy, LogConfig};
use std::ops::Range;
use std::time::Duration;

pub fn log_config(topic: &TopicConfig) -> LogConfig {
    let defaults = LogConfig::default();
    LogConfig {
        segment_bytes: topic.segment_bytes,
        segment_ms: topic.segment_ms.unwrap_or(defaults.segment_ms),
        flush: match topic.flush {
            FlushSetting::Never => FlushPolicy::Never,
            FlushSetting::EveryBatch => FlushPolicy::EveryBatch,
            FlushSetting::Interval { interval_ms } => FlushPolicy::IntervalMs(interval_ms),
        },
        retention_ms: topic.retention_ms,
        retention_bytes: topic.retention_bytes,
        cleanup: match topic.cleanup {
            CleanupSetting::Delete => CleanupPolicy::Delete,
            CleanupSetting::Compact => CleanupPolicy::Compact,
        },
        ..defaults
    }
}

/// The internal offsets topic as Kafka creates it: compacted, replicated to
/// min(3, brokers) (offsets.topic.replication.factor), min.insync 2 where it can be, unclean
/// election off, flushed never.
pub fn offsets_topic(scenario: &Scenario) -> TopicSpec {
    let replication_factor = scenario.cluster.brokers.min(3) as u16;
    TopicSpec {
        name: kafkasim::group::OFFSETS_TOPIC.to_string(),
        partitions: scenario.group.offsets_partitions,
        log: LogConfig {
            cleanup: CleanupPolicy::Compact,
            flush: FlushPolicy::Never,
            // Small segments, so the cleaner compacts within a run.
            segment_bytes: 64 * 1024,
            ..LogConfig::default()
        },
        replication_factor,
        min_insync_replicas: usize::from(replication_factor.min(2)),
        unclean_leader_election: false,
    }
}

pub fn disk_config(disk: &DiskSettings) -> DiskConfig {
    DiskConfig {
        write_latency_us: (disk.write_latency_us[0], disk.write_latency_us[1]),
        sync_latency_us: (disk.sync_latency_us[0], disk.sync_latency_us[1]),
        read_latency_us: (disk.read_latency_us[0], disk.read_latency_us[1]),
        capacity_bytes: disk.capacity_bytes,
        crash: CrashPolicy {
            drop_pct: disk.crash_drop_pct,
            keep_pct: disk.crash_keep_pct,
            torn_pct: disk.crash_torn_pct,
        },
    }
}

/// The one-way latency range of a message, as madsim's network takes it (never empty).
pub fn send_latency(network: &NetworkSettings) -> Range<Duration> {
    let [lo, hi] = network.latency_us;
    Duration::from_micros(lo)..Duration::from_micros(hi.max(lo + 1))
}
