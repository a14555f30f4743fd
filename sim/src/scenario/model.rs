//! The scenario model: what a scenario file says, after parsing and validation. A scenario
//! names the cluster, topics, client configuration, workload, disk and network behaviour,
//! the fault schedule (scripted steps and a random nemesis), the phase durations and the
//! expectation the run is judged against. Parsing and validation live in `parse`.

pub use crate::nemesis::faults::{FaultKind, FaultSpec};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// One line: the question this scenario answers.
    pub description: String,
    pub cluster: ClusterConfig,
    pub topics: Vec<TopicConfig>,
    #[serde(default)]
    pub broker: BrokerSettings,
    pub producer: ProducerSettings,
    pub consumer: ConsumerSettings,
    #[serde(default)]
    pub workload: WorkloadSettings,
    #[serde(default)]
    pub disk: DiskSettings,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default)]
    pub phases: PhaseSettings,
    /// Scripted fault steps, in any order (the runner sorts by time).
    #[serde(default)]
    pub faults: Vec<FaultStep>,
    #[serde(default)]
    pub nemesis: Option<NemesisSettings>,
    /// Scripted workload changes (bursts, producer pauses, consumer seeks).
    #[serde(default)]
    pub workload_steps: Vec<super::workload_steps::WorkloadStep>,
    /// The group coordinator's settings (used when `consumer.mode = "subscribe"`).
    #[serde(default)]
    pub group: GroupSettings,
    pub expect: Expectation,
    /// `[swarm]`: knobs each seed draws (see `swarm`); None once drawn. Read by `parse`,
    /// not by serde, so a drawn scenario writes back without it.
    #[serde(skip)]
    pub swarm: Option<super::swarm::Swarm>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub brokers: u32,
    /// KRaft controller quorum size: 0 (single-broker mode without a quorum), 1, 3 or 5.
    #[serde(default)]
    pub controllers: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushSetting {
    /// Kafka's default: never fsync explicitly; rely on replication.
    Never,
    EveryBatch,
    #[serde(untagged)]
    Interval {
        interval_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupSetting {
    Delete,
    Compact,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    pub partitions: u32,
    #[serde(default = "one")]
    pub replication_factor: u32,
    #[serde(default = "one")]
    pub min_insync_replicas: u32,
    #[serde(default)]
    pub unclean_leader_election: bool,
    #[serde(default = "flush_never")]
    pub flush: FlushSetting,
    #[serde(default = "segment_bytes_default")]
    pub segment_bytes: u64,
    #[serde(default)]
    pub segment_ms: Option<u64>,
    #[serde(default)]
    pub retention_ms: Option<u64>,
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    #[serde(default = "cleanup_delete")]
    pub cleanup: CleanupSetting,
}

/// Broker-wide settings, including switches back to historical (buggy) behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// How long a produce with acks=all may wait for replication before RequestTimedOut.
    pub request_timeout_ms: u64,
    /// Longest a fetch may be parked waiting for data (Kafka's fetch.max.wait.ms ceiling).
    pub fetch_max_wait_ms: u64,
    pub replica_lag_time_max_ms: u64,
    /// How a replica that starts following cuts its log: "leader-epoch" (KIP-101, Kafka
    /// since 0.11) or "high-watermark" (the old rule, which loses acked records).
    pub truncation: TruncationSetting,
    /// A broker whose heartbeats stop for this long is fenced (broker.session.timeout.ms).
    pub session_timeout_ms: u64,
    /// How often a broker heartbeats to the active controller (broker.heartbeat.interval.ms).
    pub heartbeat_interval_ms: u64,
    /// Longest a follower's fetch is parked at the leader (replica.fetch.wait.max.ms).
    pub replica_fetch_wait_max_ms: u64,
    /// KIP-966 eligible leader replicas (Kafka 4). false: the old rules, where the last
    /// in-sync replica stays electable after it restarted with its unsynced tail gone.
    pub eligible_leader_replicas: bool,
    /// KIP-966 `unclean.recovery.strategy` for a partition whose ISR and ELR are empty:
    /// "balanced" elects the last known leader (Kafka 4's controller), "none" waits.
    pub unclean_recovery: UncleanRecoverySetting,
    /// KIP-903: AlterPartition names each ISR member's broker epoch. false: Kafka before
    /// 3.5, where a delayed ISR expansion can re-admit a replica that restarted empty.
    pub isr_broker_epochs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncleanRecoverySetting {
    None,
    Balanced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TruncationSetting {
    LeaderEpoch,
    HighWatermark,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcksSetting {
    #[serde(rename = "0")]
    Zero,
    #[serde(rename = "1")]
    One,
    #[serde(rename = "all")]
    All,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    pub count: u32,
    pub acks: AcksSetting,
    #[serde(default = "yes")]
    pub idempotence: bool,
    #[serde(default = "retries_default")]
    pub retries: u32,
    #[serde(default = "linger_default")]
    pub linger_ms: u64,
    #[serde(default = "batch_size_default")]
    pub batch_size_bytes: usize,
    #[serde(default = "in_flight_default")]
    pub max_in_flight: u32,
    #[serde(default = "retry_backoff_default")]
    pub retry_backoff_ms: u64,
    #[serde(default = "delivery_timeout_default")]
    pub delivery_timeout_ms: u64,
    #[serde(default = "request_timeout_default")]
    pub request_timeout_ms: u64,
    /// "default" (murmur2 + sticky), "round-robin".
    #[serde(default = "partitioner_default")]
    pub partitioner: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerMode {
    /// Each consumer assigns itself every partition (no group).
    Assign,
    /// The consumers are members of one consumer group (`group_id`) and share the
    /// partitions the group leader assigns.
    Subscribe,
}

/// When a group member commits what it polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitSetting {
    /// Process, then commit: at-least-once.
    AfterProcess,
    /// Commit, then process: at-most-once (a crash in between loses the records).
    BeforeProcess,
}

/// The group coordinator (broker side).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// Reject commits from stale generations and unknown members. `false` only to show
    /// the zombie commit (CORRECTNESS.md).
    pub generation_check: bool,
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms
    pub min_session_timeout_ms: u64,
    pub max_session_timeout_ms: u64,
    /// Partitions of the internal offsets topic (offsets.topic.num.partitions).
    pub offsets_partitions: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetResetSetting {
    Earliest,
    Latest,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    pub count: u32,
    #[serde(default = "mode_default")]
    pub mode: ConsumerMode,
    #[serde(default = "reset_default")]
    pub auto_offset_reset: OffsetResetSetting,
    #[serde(default = "poll_interval_default")]
    pub poll_interval_ms: u64,
    #[serde(default = "request_timeout_default")]
    pub request_timeout_ms: u64,
    #[serde(default = "fetch_max_wait_default")]
    pub fetch_max_wait_ms: u64,
    #[serde(default = "max_poll_records_default")]
    pub max_poll_records: u32,
    /// Subscribe mode: the group every consumer joins.
    #[serde(default = "group_id_default")]
    pub group_id: String,
    /// Subscribe mode: partition.assignment.strategy ("range", "round-robin", "sticky").
    #[serde(default = "assignor_default")]
    pub assignor: String,
    #[serde(default = "session_timeout_default")]
    pub session_timeout_ms: u64,
    #[serde(default = "heartbeat_interval_default")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "max_poll_interval_default")]
    pub max_poll_interval_ms: u64,
    /// Subscribe mode: commit after processing (at-least-once) or before (at-most-once).
    #[serde(default = "commit_default")]
    pub commit: CommitSetting,
    /// enable.auto.commit: commit consumed positions every `auto_commit_interval_ms`
    /// (and on revocation) instead of after each processed poll.
    #[serde(default)]
    pub auto_commit: bool,
    #[serde(default = "auto_commit_interval_default")]
    pub auto_commit_interval_ms: u64,
    /// group.instance.id = the consumer's name: a restart within the session timeout
    /// rejoins without a rebalance.
    #[serde(default)]
    pub static_membership: bool,
    /// Simulated time spent processing each poll's records (a crash in it loses them).
    #[serde(default)]
    pub process_ms: u64,
    /// Read from an in-sync follower picked by the consumer's id (KIP-392: client.rack
    /// with a rack-aware replica selector); turns on follower reads in the brokers.
    #[serde(default)]
    pub fetch_from_follower: bool,
    /// KIP-320: validate positions after a leader change (OffsetsForLeaderEpoch) and fence
    /// fetches with the current leader epoch; `false` is the pre-KIP-320 client.
    #[serde(default = "validate_positions_default")]
    pub validate_positions: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSettings {
    /// Send ops per second per producer process (each op sends 1..=sends_per_op_max records).
    pub send_ops_per_sec: u32,
    pub sends_per_op_max: u32,
    /// Bytes of padding per value, to exercise segment rolls.
    pub value_bytes: u32,
    /// Distinct record keys (hashed by the partitioner); 0 sends null keys (sticky partitioning).
    pub record_keys: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskSettings {
    pub write_latency_us: [u64; 2],
    pub sync_latency_us: [u64; 2],
    pub read_latency_us: [u64; 2],
    pub capacity_bytes: u64,
    /// What a crash does to each unsynced write, in percent (sum 100).
    pub crash_drop_pct: u8,
    pub crash_keep_pct: u8,
    pub crash_torn_pct: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// One-way latency of a message on a connection, uniform in this range.
    pub latency_us: [u64; 2],
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseSettings {
    pub setup_s: u64,
    /// Workload and faults.
    pub faulty_s: u64,
    /// After the heal: workload stops; catch-up reads; convergence must happen within this.
    pub quiet_s: u64,
}

/// A scripted fault: when, and the kind with its parameters (see `nemesis::faults`, one
/// module per kind). Written flat in a scenario file: `at_s`, `kind`, then the kind's own
/// fields; a field the kind does not take is refused by the kind's type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultStep {
    /// Seconds into the faulty phase.
    pub at_s: f64,
    #[serde(flatten)]
    pub fault: FaultSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSettings {
    /// Time between fault injections, uniform in this range (seconds).
    pub interval_s: [f64; 2],
    /// How long each fault lasts, uniform in this range (seconds).
    pub duration_s: [f64; 2],
    pub kinds: Vec<FaultKind>,
    /// Which nodes the nemesis may target: roles or names as in FaultStep::target.
    #[serde(default = "nemesis_targets_default")]
    pub targets: Vec<String>,
    /// The most nodes one power loss takes down; by default one less than the broker count
    /// (at least 1), so a replicated cluster keeps a replica with its unsynced tail.
    #[serde(default)]
    pub power_loss_max: Option<u32>,
    /// Skip a crash or power loss that would leave some partition without a live replica
    /// holding everything its leader exposed (its HW): with flush never, that loses acked
    /// records by design, outside Kafka's promise. A replica that lost power counts again
    /// once it has refetched up to the HW; a paused or cut-off one does not count (its
    /// leader is about to drop it from the ISR).
    #[serde(default)]
    pub spare_last_replica: bool,
}

impl NemesisSettings {
    /// `power_loss_max`, or its default for a cluster of `brokers`.
    pub fn power_loss_max_or_default(&self, brokers: u32) -> u32 {
        self.power_loss_max.unwrap_or(brokers.saturating_sub(1).max(1))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedVerdict {
    /// No anomaly, no liveness failure, on every seed.
    Pass,
    /// The anomalies in `must_find` appear on at least one seed within `seed_budget`.
    Find,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub verdict: ExpectedVerdict,
    /// Anomaly names (Jepsen's) that a sweep must find within `seed_budget` seeds.
    #[serde(default)]
    pub must_find: Vec<String>,
    #[serde(default = "seed_budget_default")]
    pub seed_budget: u64,
    /// Anomaly names this configuration may show; anything else is a failure.
    #[serde(default)]
    pub may_show: Vec<String>,
    /// Seeds known to show `must_find` (documentation; tests replay them).
    #[serde(default)]
    pub known_seeds: Vec<u64>,
    /// Subscribe mode: the most rebalances (generations after the group's first) a run
    /// may show; static membership promises none for restarts within the session.
    #[serde(default)]
    pub max_rebalances: Option<u32>,
    /// Coverage marks (`coverage::Mark` names) a sweep must reach on at least one seed:
    /// the states this scenario exists to drive the system into.
    #[serde(default)]
    pub reaches: Vec<String>,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            request_timeout_ms: 30_000,
            fetch_max_wait_ms: 500,
            replica_lag_time_max_ms: 30_000,
            truncation: TruncationSetting::LeaderEpoch,
            session_timeout_ms: 9_000,
            heartbeat_interval_ms: 2_000,
            replica_fetch_wait_max_ms: 500,
            eligible_leader_replicas: true,
            unclean_recovery: UncleanRecoverySetting::Balanced,
            isr_broker_epochs: true,
        }
    }
}

impl Scenario {
    /// Every partition of the scenario's topics, in topic order.
    pub fn partitions(&self) -> Vec<kafkasim::types::TopicPartition> {
        self.topics
            .iter()
            .flat_map(|t| {
                (0..t.partitions)
                    .map(move |p| kafkasim::types::TopicPartition::new(t.name.clone(), p))
            })
            .collect()
    }

    /// The group's partition of the offsets topic (its coordinator leads it), in
    /// subscribe mode.
    pub fn coordinator_partition(&self) -> Option<kafkasim::types::TopicPartition> {
        (self.consumer.mode == ConsumerMode::Subscribe).then(|| {
            let partition = kafkasim::group::partition_for_group(
                &self.consumer.group_id,
                self.group.offsets_partitions,
            );
            kafkasim::types::TopicPartition::new(kafkasim::group::OFFSETS_TOPIC, partition)
        })
    }
}

impl Default for GroupSettings {
    /// Kafka's defaults, except 3 offsets partitions (Kafka: 50).
    fn default() -> Self {
        GroupSettings {
            generation_check: true,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            offsets_partitions: 3,
        }
    }
}

impl Default for WorkloadSettings {
    fn default() -> Self {
        WorkloadSettings {
            send_ops_per_sec: 50,
            sends_per_op_max: 3,
            value_bytes: 16,
            record_keys: 0,
        }
    }
}

impl Default for DiskSettings {
    fn default() -> Self {
        DiskSettings {
            write_latency_us: [5, 50],
            sync_latency_us: [200, 2_000],
            read_latency_us: [5, 100],
            capacity_bytes: 1 << 30,
            crash_drop_pct: 40,
            crash_keep_pct: 30,
            crash_torn_pct: 30,
        }
    }
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings { latency_us: [100, 2_000] }
    }
}

impl Default for PhaseSettings {
    fn default() -> Self {
        PhaseSettings { setup_s: 1, faulty_s: 20, quiet_s: 15 }
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn flush_never() -> FlushSetting {
    FlushSetting::Never
}
fn cleanup_delete() -> CleanupSetting {
    CleanupSetting::Delete
}
fn segment_bytes_default() -> u64 {
    64 * 1024
}
fn retries_default() -> u32 {
    // Kafka's default is i32::MAX bounded by delivery.timeout.ms; a finite default keeps
    // every retry loop bounded.
    1_000
}
fn linger_default() -> u64 {
    5
}
fn batch_size_default() -> usize {
    16 * 1024
}
fn in_flight_default() -> u32 {
    5
}
fn retry_backoff_default() -> u64 {
    100
}
fn delivery_timeout_default() -> u64 {
    30_000
}
fn request_timeout_default() -> u64 {
    5_000
}
fn partitioner_default() -> String {
    "default".to_string()
}
fn mode_default() -> ConsumerMode {
    ConsumerMode::Assign
}
fn validate_positions_default() -> bool {
    true
}
fn reset_default() -> OffsetResetSetting {
    OffsetResetSetting::Earliest
}
fn poll_interval_default() -> u64 {
    50
}
fn fetch_max_wait_default() -> u64 {
    200
}
fn max_poll_records_default() -> u32 {
    500
}
fn group_id_default() -> String {
    "group-1".to_string()
}
fn assignor_default() -> String {
    "range".to_string()
}
fn session_timeout_default() -> u64 {
    // Kafka 3's default is 45 s; shorter here so a seed sees several expiries.
    10_000
}
fn heartbeat_interval_default() -> u64 {
    3_000
}
fn max_poll_interval_default() -> u64 {
    // Kafka: 300 s.
    30_000
}
fn commit_default() -> CommitSetting {
    CommitSetting::AfterProcess
}
fn auto_commit_interval_default() -> u64 {
    5_000
}
fn seed_budget_default() -> u64 {
    20
}
fn nemesis_targets_default() -> Vec<String> {
    vec!["any-broker".to_string()]
}
