//! Kafka's protocol error codes, and what each means for the outcome of a client's request.

use serde::{Deserialize, Serialize};

/// Error codes carried in responses, named as Kafka names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    None,
    OffsetOutOfRange,
    CorruptMessage,
    UnknownTopicOrPartition,
    InvalidFetchSize,
    LeaderNotAvailable,
    NotLeaderOrFollower,
    RequestTimedOut,
    MessageTooLarge,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    InvalidRequiredAcks,
    OutOfOrderSequenceNumber,
    DuplicateSequenceNumber,
    InvalidProducerEpoch,
    UnknownProducerId,
    KafkaStorageError,
    InvalidRecord,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    InvalidRequest,
    /// A request from an earlier incarnation of a broker (its broker epoch is stale).
    StaleBrokerEpoch,
    CoordinatorLoadInProgress,
    CoordinatorNotAvailable,
    NotCoordinator,
    IllegalGeneration,
    InconsistentGroupProtocol,
    InvalidGroupId,
    UnknownMemberId,
    InvalidSessionTimeout,
    RebalanceInProgress,
    FencedInstanceId,
    GroupMaxSizeReached,
}

/// What an error tells the client about whether its write is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request succeeded.
    Ok,
    /// The broker refused before appending: the write is definitely not in the log.
    Failed,
    /// The write may or may not be in the log (timeouts, lost leadership, storage errors
    /// after an append). A history records these as `info`, never `fail`.
    Indeterminate,
}

impl ErrorCode {
    /// Whether a client may retry the same request and expect a different answer.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::CorruptMessage
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::NotLeaderOrFollower
                | ErrorCode::RequestTimedOut
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::KafkaStorageError
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::OffsetOutOfRange
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::NotCoordinator
                | ErrorCode::RebalanceInProgress
        )
    }

    /// The outcome of a produce that ended with this error (see CORRECTNESS.md: timeouts,
    /// NotLeaderOrFollower and NotEnoughReplicasAfterAppend are indeterminate).
    pub fn produce_outcome(self) -> Outcome {
        match self {
            ErrorCode::None | ErrorCode::DuplicateSequenceNumber => Outcome::Ok,
            ErrorCode::RequestTimedOut
            | ErrorCode::NotLeaderOrFollower
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::KafkaStorageError
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch => Outcome::Indeterminate,
            ErrorCode::OffsetOutOfRange
            | ErrorCode::CorruptMessage
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::InvalidFetchSize
            | ErrorCode::MessageTooLarge
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::InvalidRequiredAcks
            | ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::UnknownProducerId
            | ErrorCode::InvalidRecord
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::InvalidRequest
            | ErrorCode::StaleBrokerEpoch
            // Group errors never answer a produce; a group request refused is not applied.
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::NotCoordinator
            | ErrorCode::IllegalGeneration
            | ErrorCode::InconsistentGroupProtocol
            | ErrorCode::InvalidGroupId
            | ErrorCode::UnknownMemberId
            | ErrorCode::InvalidSessionTimeout
            | ErrorCode::RebalanceInProgress
            | ErrorCode::FencedInstanceId
            | ErrorCode::GroupMaxSizeReached => Outcome::Failed,
        }
    }
}
