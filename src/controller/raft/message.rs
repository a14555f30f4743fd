//! What Raft nodes say to each other, and what a log entry is.
//!
//! Every message carries its sender's term; a receiver rejects a message from an older term
//! (with `RaftError::StaleTerm`) before looking at its body. This module owns the wire shapes
//! (serde, postcard-encodable); it does not own what a node does with them (see `node.rs`).

use crate::types::{NodeId, Term};
use serde::{Deserialize, Serialize};

/// Log indexes start at 1; index 0 is the empty prefix (term 0), as in the Raft paper.
pub type LogIndex = u64;

/// What an entry carries. A new leader appends a `LeaderChange` entry of its own term so it
/// can commit entries of earlier terms (Raft §5.4.2, §8; KRaft's LeaderChangeMessage).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryPayload {
    LeaderChange {
        leader: NodeId,
    },
    /// Opaque bytes of the state machine above (the controller's metadata record batches).
    Data(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: LogIndex,
    pub term: Term,
    pub payload: EntryPayload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMessage {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's current term.
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A candidate (or, with `pre_vote`, a would-be candidate whose `term` is the term it
    /// would campaign in) asks for a vote.
    RequestVote {
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    },
    RequestVoteResponse {
        granted: bool,
        pre_vote: bool,
    },
    AppendEntries {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<LogEntry>,
        leader_commit: LogIndex,
    },
    AppendEntriesResponse {
        success: bool,
        /// On success: the index of the last entry the follower now holds from this request.
        /// On rejection: the `prev_log_index` that did not match.
        index: LogIndex,
        /// On rejection: the follower's last index, so the leader can skip back at once.
        last_index_hint: LogIndex,
    },
}

impl MessageBody {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::RequestVote { pre_vote: false, .. } => "RequestVote",
            MessageBody::RequestVote { pre_vote: true, .. } => "PreVote",
            MessageBody::RequestVoteResponse { pre_vote: false, .. } => "RequestVoteResponse",
            MessageBody::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse { .. } => "AppendEntriesResponse",
        }
    }
}

impl RaftMessage {
    /// Encodes for a frame (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("raft messages always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<RaftMessage, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_postcard() {
        let msg = RaftMessage {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(7),
            body: MessageBody::AppendEntries {
                prev_log_index: 3,
                prev_log_term: Term(6),
                entries: vec![LogEntry {
                    index: 4,
                    term: Term(7),
                    payload: EntryPayload::Data(vec![1, 2, 3]),
                }],
                leader_commit: 3,
            },
        };
        assert_eq!(RaftMessage::decode(&msg.encode()).expect("round trip"), msg);
        assert!(RaftMessage::decode(&[0xff, 0xff]).is_err());
    }
}
