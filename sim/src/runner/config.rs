//! From scenario settings to the configurations of the state machines and the world.

use crate::scenario::{
    CleanupSetting, DiskSettings, FlushSetting, NetworkSettings, Scenario, TopicConfig,
    UncleanRecoverySetting,
};
use crate::world::disk::{CrashPolicy, DiskConfig};
use kafkasim::broker::{GroupSettings, TopicSpec};
use kafkasim::controller::{ControllerConfig, UncleanRecovery};
use kafkasim::log::{CleanupPolicy, FlushPolicy, LogConfig};
use std::ops::Range;
use std::time::Duration;

/// The controller's settings: session timeout and the KIP-966 switches.
pub fn controller_config(scenario: &Scenario) -> ControllerConfig {
    let broker = &scenario.broker;
    ControllerConfig {
        broker_session_timeout_ms: broker.session_timeout_ms,
        eligible_leader_replicas: broker.eligible_leader_replicas,
        unclean_recovery: match broker.unclean_recovery {
            UncleanRecoverySetting::None => UncleanRecovery::None,
            UncleanRecoverySetting::Balanced => UncleanRecovery::Balanced,
        },
    }
}

/// Whether the controller may elect a last known leader outside any ISR (KIP-966 unclean
/// recovery), which, like unclean election, may lose records.
pub fn unclean_recovery_on(scenario: &Scenario) -> bool {
    let config = controller_config(scenario);
    config.eligible_leader_replicas && config.unclean_recovery == UncleanRecovery::Balanced
}

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

/// The coordinator's settings and the offsets topic, in subscribe mode. The offsets
/// topic is flushed every second rather than never: the log cleaner compacts only flushed
/// segments, and Kafka flushes a segment when it rolls, which this log does not model.
pub fn group_settings(scenario: &Scenario) -> Option<(GroupSettings, TopicSpec)> {
    scenario.coordinator_partition()?;
    let group = &scenario.group;
    let to_u32 = |ms: u64| u32::try_from(ms).unwrap_or(u32::MAX);
    let settings = GroupSettings {
        offsets_partitions: group.offsets_partitions,
        generation_check: group.generation_check,
        initial_rebalance_delay_ms: group.initial_rebalance_delay_ms,
        min_session_timeout_ms: to_u32(group.min_session_timeout_ms),
        max_session_timeout_ms: to_u32(group.max_session_timeout_ms),
        ..GroupSettings::default()
    };
    let log = LogConfig {
        flush: FlushPolicy::IntervalMs(1_000),
        // Small segments, so the cleaner compacts within a run.
        segment_bytes: 64 * 1024,
        ..LogConfig::default()
    };
    let brokers = u16::try_from(scenario.cluster.brokers).unwrap_or(u16::MAX);
    let topic = settings.offsets_topic(brokers, log);
    Some((settings, topic))
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
