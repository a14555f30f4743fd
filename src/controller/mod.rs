//! The KRaft-style controller quorum: a Raft-replicated metadata log and the active
//! controller's state machine on top of it.
//!
//! - `raft/`: leader election, log replication and commit, persistence records (sans-IO).
//! - `records`: the metadata records (RegisterBroker, FenceBroker, CreateTopic,
//!   PartitionChange, ...) and the `MetadataImage` that applies committed ones.
//! - `quorum`: `QuorumController`, which owns a `RaftNode`, answers broker requests when it
//!   is the active controller (the Raft leader) and turns them into record batches.
//! - `partition_change`: one partition change decided as Kafka 4's PartitionChangeBuilder
//!   does (target ISR, eligible leader replicas, election, last known leader).
//! - `invariants`: metadata invariants (leader epochs only grow, leader in ISR unless
//!   unclean) as checkable functions.
//!
//! This module does not own replication of partition data (brokers do) nor the network
//! shell that carries messages (sim/).

pub mod invariants;
pub mod partition_change;
pub mod quorum;
pub mod raft;
pub mod records;

#[cfg(test)]
mod tests;

pub use invariants::{MetadataChecker, MetadataViolation};
pub use partition_change::UncleanRecovery;
pub use quorum::{
    ControllerConfig, ControllerError, ControllerReady, ControllerReply, ControllerRequest,
    ControllerResponse, HeartbeatReply, QuorumController,
};
pub use records::{
    BrokerState, MetadataError, MetadataImage, MetadataRecord, PartitionState, TopicState,
};
