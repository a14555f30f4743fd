//! Request and response messages. Shapes follow Kafka's APIs, trimmed to the fields the
//! simulated system uses.

use super::ErrorCode;
use crate::controller::raft::{MessageBody, RaftMessage};
use crate::controller::{ControllerError, ControllerRequest, ControllerResponse, MetadataImage};
use crate::types::{BrokerEpoch, Epoch, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How many replicas must have a record before the leader answers a produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// Fire and forget: the broker sends no response.
    Zero,
    /// The leader's own log.
    One,
    /// Every in-sync replica (with a single replica, the same as One).
    All,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub correlation_id: u32,
    pub client_id: NodeId,
    pub body: Request,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub correlation_id: u32,
    pub body: Response,
}

/// Everything that travels in a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    Request(RequestFrame),
    Response(ResponseFrame),
}

/// The name of every kind of message on the wire, as `Frame::kind_name` gives it and message
/// rules (the nemesis's `message-rule`) name them: requests in kebab-case, each answer with
/// `-response`, Raft messages by their role.
pub const MESSAGE_KINDS: &[&str] = &[
    "produce",
    "fetch",
    "list-offsets",
    "metadata",
    "init-producer-id",
    "offsets-for-leader-epoch",
    "broker-registration",
    "broker-heartbeat",
    "alter-partition",
    "create-topics",
    "metadata-fetch",
    "request-vote",
    "pre-vote",
    "request-vote-response",
    "pre-vote-response",
    "append-entries",
    "append-entries-response",
    "find-coordinator",
    "join-group",
    "sync-group",
    "heartbeat",
    "leave-group",
    "offset-commit",
    "offset-fetch",
    "produce-response",
    "fetch-response",
    "list-offsets-response",
    "metadata-response",
    "init-producer-id-response",
    "offsets-for-leader-epoch-response",
    "broker-registration-response",
    "broker-heartbeat-response",
    "alter-partition-response",
    "create-topics-response",
    "metadata-fetch-response",
    "find-coordinator-response",
    "join-group-response",
    "sync-group-response",
    "heartbeat-response",
    "leave-group-response",
    "offset-commit-response",
    "offset-fetch-response",
    "error-response",
];

impl Frame {
    /// What kind of message this is (one of `MESSAGE_KINDS`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Frame::Request(frame) => frame.body.kind_name(),
            Frame::Response(frame) => frame.body.kind_name(),
        }
    }
}

impl Request {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Request::Produce(_) => "produce",
            Request::Fetch(_) => "fetch",
            Request::ListOffsets(_) => "list-offsets",
            Request::Metadata(_) => "metadata",
            Request::InitProducerId(_) => "init-producer-id",
            Request::OffsetsForLeaderEpoch(_) => "offsets-for-leader-epoch",
            Request::Controller(request) => match request {
                ControllerRequest::BrokerRegistration { .. } => "broker-registration",
                ControllerRequest::BrokerHeartbeat { .. } => "broker-heartbeat",
                ControllerRequest::AlterPartition { .. } => "alter-partition",
                ControllerRequest::CreateTopics { .. } => "create-topics",
            },
            Request::MetadataFetch(_) => "metadata-fetch",
            Request::Raft(message) => match message.body {
                MessageBody::RequestVote { pre_vote: false, .. } => "request-vote",
                MessageBody::RequestVote { pre_vote: true, .. } => "pre-vote",
                MessageBody::RequestVoteResponse { pre_vote: false, .. } => "request-vote-response",
                MessageBody::RequestVoteResponse { pre_vote: true, .. } => "pre-vote-response",
                MessageBody::AppendEntries { .. } => "append-entries",
                MessageBody::AppendEntriesResponse { .. } => "append-entries-response",
            },
            Request::FindCoordinator(_) => "find-coordinator",
            Request::JoinGroup(_) => "join-group",
            Request::SyncGroup(_) => "sync-group",
            Request::Heartbeat(_) => "heartbeat",
            Request::LeaveGroup(_) => "leave-group",
            Request::OffsetCommit(_) => "offset-commit",
            Request::OffsetFetch(_) => "offset-fetch",
        }
    }
}

impl Response {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Response::Produce(_) => "produce-response",
            Response::Fetch(_) => "fetch-response",
            Response::ListOffsets(_) => "list-offsets-response",
            Response::Metadata(_) => "metadata-response",
            Response::InitProducerId(_) => "init-producer-id-response",
            Response::OffsetsForLeaderEpoch(_) => "offsets-for-leader-epoch-response",
            Response::Controller(response) => match response {
                ControllerResponse::BrokerRegistration(_) => "broker-registration-response",
                ControllerResponse::BrokerHeartbeat(_) => "broker-heartbeat-response",
                ControllerResponse::AlterPartition(_) => "alter-partition-response",
                ControllerResponse::CreateTopics(_) => "create-topics-response",
            },
            Response::MetadataFetch(_) => "metadata-fetch-response",
            Response::FindCoordinator(_) => "find-coordinator-response",
            Response::JoinGroup(_) => "join-group-response",
            Response::SyncGroup(_) => "sync-group-response",
            Response::Heartbeat(_) => "heartbeat-response",
            Response::LeaveGroup(_) => "leave-group-response",
            Response::OffsetCommit(_) => "offset-commit-response",
            Response::OffsetFetch(_) => "offset-fetch-response",
            Response::Error(_) => "error-response",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    InitProducerId(InitProducerIdRequest),
    /// Broker to broker: where does an epoch end (follower truncation).
    OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest),
    /// Broker to controller: registration, heartbeat, AlterPartition, CreateTopics.
    Controller(ControllerRequest),
    /// Broker to controller: the committed metadata, if newer than `known_index`
    /// (long-polled up to `max_wait_ms`).
    MetadataFetch(MetadataFetchRequest),
    /// Controller to controller: one Raft message; never answered by a response frame.
    Raft(RaftMessage),
    /// Client to any broker: which broker coordinates a group.
    FindCoordinator(FindCoordinatorRequest),
    /// Client to the group's coordinator (the leader of its offsets partition).
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataFetchRequest {
    pub broker_id: NodeId,
    pub known_index: u64,
    pub max_wait_ms: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataFetchResponse {
    /// NotController (with a hint) when asked of a controller that is not active.
    pub error: Option<ControllerError>,
    /// The metadata-log index `image` reflects.
    pub index: u64,
    /// None when nothing newer than `known_index` was committed within the wait.
    pub image: Option<MetadataImage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    InitProducerId(InitProducerIdResponse),
    OffsetsForLeaderEpoch(OffsetsForLeaderEpochResponse),
    Controller(ControllerResponse),
    MetadataFetch(MetadataFetchResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    /// The broker could not decode or route the request.
    Error(ErrorCode),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceRequest {
    pub acks: Acks,
    pub timeout_ms: u32,
    /// One record batch per partition, as Kafka's producer sends.
    pub partitions: Vec<ProducePartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartition {
    pub tp: TopicPartition,
    pub records: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceResponse {
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    /// The offset of the batch's first record, when appended (also for a deduplicated retry).
    pub base_offset: Option<Offset>,
    pub log_start_offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Set when a follower replica fetches (replication); None for consumers.
    pub replica_id: Option<NodeId>,
    /// The fetching replica's broker epoch (KIP-903): a fetch from an earlier incarnation
    /// of the replica, arriving late, is refused instead of counted as its progress.
    pub replica_epoch: Option<BrokerEpoch>,
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    pub max_bytes: u32,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartition {
    pub tp: TopicPartition,
    pub fetch_offset: Offset,
    pub partition_max_bytes: u32,
    pub current_leader_epoch: Option<Epoch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// Concatenated record batches, verbatim from the log.
    pub records: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSpec {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsRequest {
    pub partitions: Vec<(TopicPartition, OffsetSpec)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub offset: Offset,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// None asks for every topic.
    pub topics: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponse {
    pub brokers: Vec<NodeId>,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub error: ErrorCode,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub partition: u32,
    pub error: ErrorCode,
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProducerIdRequest {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProducerIdResponse {
    pub error: ErrorCode,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// OffsetsForLeaderEpoch (KIP-101, KIP-279): a follower asks the leader where one of its
/// leader epochs ends, to find where its log diverges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetsForLeaderEpochRequest {
    /// The asking follower (Kafka's replica_id); None for a consumer (KIP-320).
    pub replica_id: Option<NodeId>,
    pub partitions: Vec<OffsetForLeaderPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetForLeaderPartition {
    pub tp: TopicPartition,
    /// The leader epoch the asker believes current, for fencing (KIP-320).
    pub current_leader_epoch: Option<Epoch>,
    /// The epoch whose end offset is wanted (the asker's latest epoch).
    pub leader_epoch: Epoch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetsForLeaderEpochResponse {
    pub partitions: Vec<EpochEndOffset>,
}

/// The largest epoch at or below the requested one and where it ends (the start of the
/// next epoch, or the log end offset). Both None (Kafka's UNDEFINED_EPOCH and
/// UNDEFINED_EPOCH_OFFSET) when the leader has no such epoch, or on error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEndOffset {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub leader_epoch: Option<Epoch>,
    pub end_offset: Option<Offset>,
}

// ---------------------------------------------------------------------------------------
// Consumer groups (src/group): answered by the broker hosting the group's coordinator.
// ---------------------------------------------------------------------------------------

/// Kafka's "no generation" (a standalone consumer's commit, or a member before its first
/// join), as the protocol's generation_id = -1.
pub const NO_GENERATION_ID: i32 = -1;

/// FindCoordinator: which broker coordinates `key` (a group id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindCoordinatorRequest {
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindCoordinatorResponse {
    pub error: ErrorCode,
    pub node_id: Option<NodeId>,
}

/// One protocol (assignor) a member supports, with its subscription (Kafka carries the
/// subscription as opaque metadata bytes per protocol; the simulated consumer only needs
/// the topic list and the partitions it owned, for the sticky assignor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub topics: Vec<String>,
    pub owned_partitions: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: u32,
    /// How long the coordinator waits for members to rejoin (the consumer's
    /// max.poll.interval.ms).
    pub rebalance_timeout_ms: u32,
    /// Empty on a member's first join; the coordinator assigns one.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<JoinGroupProtocol>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub protocol: JoinGroupProtocol,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: every member and its subscription.
    pub members: Vec<JoinGroupMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub partitions: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Sent by the leader only: the assignment of every member.
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroupResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitPartition {
    pub tp: TopicPartition,
    /// The next offset to consume.
    pub offset: Offset,
    /// The leader epoch of the last consumed record (KIP-320), for fencing on resume.
    pub leader_epoch: Option<Epoch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// NO_GENERATION_ID with an empty member id for a standalone (assign-mode) consumer.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub offsets: Vec<OffsetCommitPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitResponse {
    pub partitions: Vec<(TopicPartition, ErrorCode)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    /// None asks for every partition the group has committed.
    pub partitions: Option<Vec<TopicPartition>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchPartition {
    pub tp: TopicPartition,
    /// None when the group has no committed offset (Kafka's -1).
    pub offset: Option<Offset>,
    pub leader_epoch: Option<Epoch>,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchResponse {
    pub error: ErrorCode,
    pub partitions: Vec<OffsetFetchPartition>,
}
