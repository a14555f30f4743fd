//! The records a coordinator writes to its partition of the offsets topic
//! (Kafka's __consumer_offsets): committed offsets and group metadata. Each encodes as
//! `crc32c (4 bytes, big endian) | postcard payload`, so a record torn or altered outside
//! a batch's own CRC is still caught. The compaction key is the group (and partition).

use crate::protocol::JoinGroupProtocol;
use crate::types::{Epoch, Offset, TopicPartition};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One member as persisted after a completed rebalance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub protocols: Vec<JoinGroupProtocol>,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupRecord {
    /// A durable commit: the group's next offset to consume on `tp`.
    OffsetCommit {
        group_id: String,
        tp: TopicPartition,
        offset: Offset,
        leader_epoch: Option<Epoch>,
        commit_timestamp_ms: u64,
    },
    /// The group after a completed rebalance (Kafka writes it on SyncGroup).
    GroupMetadata {
        group_id: String,
        generation_id: i32,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<MemberRecord>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GroupRecordError {
    #[error("record of {0} bytes is shorter than its checksum")]
    Truncated(usize),
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("malformed payload: {0}")]
    Malformed(String),
}

const CRC_BYTES: usize = 4;

impl GroupRecord {
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::OffsetCommit { group_id, .. }
            | GroupRecord::GroupMetadata { group_id, .. } => group_id,
        }
    }

    /// The compaction key: a later record with the same key supersedes an earlier one.
    pub fn key(&self) -> Bytes {
        let key = match self {
            GroupRecord::OffsetCommit { group_id, tp, .. } => format!("o/{group_id}/{tp}"),
            GroupRecord::GroupMetadata { group_id, .. } => format!("g/{group_id}"),
        };
        Bytes::from(key.into_bytes())
    }

    pub fn encode(&self) -> Bytes {
        let payload = postcard::to_stdvec(self).expect("group records always serialize");
        let mut out = Vec::with_capacity(CRC_BYTES + payload.len());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        out.extend_from_slice(&payload);
        Bytes::from(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupRecord, GroupRecordError> {
        if bytes.len() < CRC_BYTES {
            return Err(GroupRecordError::Truncated(bytes.len()));
        }
        let (crc, payload) = bytes.split_at(CRC_BYTES);
        let stored = u32::from_be_bytes(crc.try_into().expect("split at 4 bytes"));
        let computed = crc32c::crc32c(payload);
        if stored != computed {
            return Err(GroupRecordError::CrcMismatch { stored, computed });
        }
        postcard::from_bytes(payload).map_err(|e| GroupRecordError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_record() -> impl Strategy<Value = GroupRecord> {
        let commit = (
            "[a-z]{0,6}",
            "[a-z]{1,4}",
            0u32..10,
            any::<u64>(),
            any::<Option<u32>>(),
            any::<u64>(),
        )
            .prop_map(|(g, t, p, o, e, ts)| GroupRecord::OffsetCommit {
                group_id: g,
                tp: TopicPartition::new(t, p),
                offset: Offset(o),
                leader_epoch: e.map(Epoch),
                commit_timestamp_ms: ts,
            });
        let meta = ("[a-z]{0,6}", any::<i32>(), proptest::option::of("[a-z]{1,4}"), 0usize..4)
            .prop_map(|(g, gen, proto, n)| GroupRecord::GroupMetadata {
                group_id: g,
                generation_id: gen,
                protocol: proto.clone(),
                leader: proto,
                members: (0..n)
                    .map(|i| MemberRecord {
                        member_id: format!("m{i}"),
                        group_instance_id: (i % 2 == 0).then(|| format!("i{i}")),
                        session_timeout_ms: 10_000,
                        rebalance_timeout_ms: 30_000,
                        protocols: Vec::new(),
                        assignment: vec![TopicPartition::new("t", i as u32)],
                    })
                    .collect(),
            });
        prop_oneof![commit, meta]
    }

    proptest! {
        #[test]
        fn records_round_trip(r in arb_record()) {
            prop_assert_eq!(GroupRecord::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn a_flipped_bit_is_caught(r in arb_record(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = r.encode().to_vec();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(GroupRecord::decode(&bytes).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = GroupRecord::decode(&bytes);
        }
    }
}
