//! Partition replication as Kafka does it: followers pull from the leader; the leader
//! tracks each follower's log end offset and last caught-up time, keeps the in-sync replica
//! set (ISR) and the high watermark (HW, the smallest LEO over the ISR), and completes
//! acks=all produces once the HW passes them. ISR changes are proposed to the controller
//! (AlterPartition with the partition epoch) and take effect when it confirms them. A
//! follower that starts following (new leader epoch, or after a restart) truncates its log
//! by the leader-epoch protocol (OffsetsForLeaderEpoch, KIP-101/KIP-279), or by the old
//! truncate-to-HW rule when switched to it, so the testbed can show what that rule broke.
//!
//! Sans-IO: the state machines take `now` and the partition's [`PartitionLog`] (which
//! queues its own disk operations) and return what to send: fetch and
//! OffsetsForLeaderEpoch requests, responses, AlterPartition proposals and produce
//! completions. [`invariants`] holds the pure checks the simulator runs after every step.
//!
//! This module does not own the log (`crate::log`), the controller's metadata log or
//! election (it receives [`PartitionState`]s), connections, or the broker's request
//! routing.
//!
//! [`PartitionLog`]: crate::log::PartitionLog

mod epoch;
mod follower;
pub mod invariants;
mod isr;
mod leader;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_kip101;
#[cfg(test)]
mod tests_model;

pub use epoch::{
    answer_offsets_for_leader_epoch, check_leader_epoch, truncation_point, FenceError,
    TruncationPoint,
};
pub use follower::{
    FetchProgress, FollowerError, FollowerPhase, FollowerRequest, PartitionFollower,
    TruncationProgress,
};
pub use isr::{validate_alter_partition, AlterPartitionError, AlterPartitionRequest, IsrState};
pub use leader::{
    Appended, FollowerProgress, LeaderOutput, PartitionLeader, PartitionStateError, ProduceError,
    ProduceId,
};

use crate::types::{Epoch, NodeId};
use serde::{Deserialize, Serialize};

/// How a replica that starts following cuts the suffix of its log the leader may not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TruncationRule {
    /// Ask the leader where the replica's latest epoch ends, repeat until they agree
    /// (KIP-101, KIP-279). Kafka since 0.11.
    #[default]
    LeaderEpoch,
    /// Truncate to the local HW at once, without asking (Kafka before 0.11). The local HW
    /// is only as fresh as the last fetch response: loses acked records (KIP-101 #1) and
    /// lets replicas diverge after power loss (KIP-101 #2).
    HighWatermark,
}

/// Per-partition replication settings; defaults are Kafka's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// A follower not caught up to the leader's LEO for this long leaves the ISR
    /// (Kafka: replica.lag.time.max.ms, 30 s since 2.5).
    pub replica_lag_time_max_ms: u64,
    /// acks=all needs at least this many in-sync replicas (min.insync.replicas, 1).
    pub min_insync_replicas: usize,
    pub truncation: TruncationRule,
    /// Bytes a follower asks for per fetch (replica.fetch.max.bytes, 1 MiB).
    pub replica_fetch_max_bytes: u32,
    /// KIP-903: an ISR expansion names each member's broker epoch, so the controller
    /// refuses one built on an incarnation that has since restarted. Off: Kafka before 3.5.
    pub isr_broker_epochs: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_lag_time_max_ms: 30_000,
            min_insync_replicas: 1,
            truncation: TruncationRule::LeaderEpoch,
            replica_fetch_max_bytes: 1024 * 1024,
            isr_broker_epochs: true,
        }
    }
}

pub use crate::types::PartitionEpoch;

/// A partition's committed state as the controller publishes it (Kafka's LeaderAndIsr /
/// PartitionRegistration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    pub partition_epoch: PartitionEpoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
}
