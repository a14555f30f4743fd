//! Kafka clients as sans-IO state machines: the producer (partitioner, accumulator,
//! sender), the consumer (assign mode), the group member (subscribe mode, driving a
//! consumer) and the metadata cache they share.
//!
//! A client never reads a clock, touches a socket or draws OS randomness. The node shell
//! calls it with the current simulated time and with what arrived (responses, broken
//! connections, metadata), then carries out the actions it returns: send this request
//! frame to node N (on the one ordered connection to N), close the connection to N,
//! refresh metadata, and — for the producer — report that a send completed. After every
//! input the shell calls `poll(now)`, then sleeps until `next_wakeup()` or the next input.
//!
//! What this module does not own: connections and reconnects (the shell opens a connection
//! on the first `Send` to a node and reports `on_disconnect` when it breaks), the metadata
//! request itself (the shell sends it on `RefreshMetadata` and hands the response to
//! `on_metadata`), and the group coordinator (crate::group).

pub mod accumulator;
pub mod consumer;
pub mod group_member;
pub mod metadata;
pub mod partitioner;
pub mod producer;

pub use consumer::{
    ConsumedRecord, Consumer, ConsumerAction, ConsumerConfig, ConsumerEvent, OffsetReset,
    ResetReason, TruncationOutcome,
};
pub use group_member::{
    CommitOffset, CommitResult, GroupMember, GroupMemberConfig, LeaveReason, LostReason,
    MemberEvent, MemberState, CONSUMER_PROTOCOL_TYPE,
};
pub use metadata::MetadataCache;
pub use partitioner::{
    murmur2, partition_for_key, to_positive, DefaultPartitioner, Partitioner, RoundRobinPartitioner,
};
pub use producer::{
    Producer, ProducerAction, ProducerConfig, SendError, SendFailure, SendId, SendResult,
};

use thiserror::Error;

/// A client configuration that Kafka itself would refuse (a `ConfigException`).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid client config `{field}`: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError { field, reason: reason.into() }
    }
}

/// Why a client asks the shell to close a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// A request got no response within request_timeout_ms; Kafka's NetworkClient closes
    /// the connection, which fails every other request in flight on it too.
    RequestTimeout { correlation_id: u32 },
}
