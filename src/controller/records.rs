//! The metadata log's records (KRaft's RegisterBrokerRecord, FenceBrokerRecord,
//! TopicRecord + PartitionRecord, PartitionChangeRecord) and the `MetadataImage` that
//! applies committed ones.
//!
//! One Raft entry carries one batch of records, applied atomically (as KRaft's atomic
//! batches): a batch that breaks an invariant is refused whole and leaves the image as it
//! was. Every map is a BTreeMap, so applying the same batches gives the same image, byte for
//! byte, on every node. This module owns record shapes and their validation; it does not own
//! deciding which records to write (that is `quorum`).

use super::invariants::{check_partition_transition, MetadataViolation};
use crate::types::{BrokerEpoch, Epoch, NodeId, PartitionEpoch, TopicPartition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker (re-)registered: a new epoch, fenced until it catches up.
    RegisterBroker {
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    },
    FenceBroker {
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    },
    UnfenceBroker {
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    },
    /// A topic with its replica assignment; partition p starts with leader
    /// `assignments[p][0]`, ISR = all replicas, leader epoch 0, partition epoch 0.
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u16,
        assignments: Vec<Vec<NodeId>>,
        unclean_leader_election: bool,
        min_insync_replicas: u16,
    },
    PartitionChange {
        tp: TopicPartition,
        leader: Option<NodeId>,
        leader_epoch: Epoch,
        partition_epoch: PartitionEpoch,
        isr: Vec<NodeId>,
        /// Eligible leader replicas (KIP-966): fenced out of an ISR below min.insync, with
        /// every committed record, and electable cleanly once unfenced.
        elr: Vec<NodeId>,
        /// KIP-966's LastKnownElr as Kafka 4 uses it: the leader the partition had when its
        /// ISR became empty, electable by unclean recovery.
        last_known_leader: Option<NodeId>,
        /// The leader was chosen outside the ISR (unclean election): data may be lost.
        unclean: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("undecodable record batch")]
    Decode,
    #[error("unknown broker {broker_id}")]
    UnknownBroker { broker_id: NodeId },
    #[error("broker {broker_id} epoch {got} does not match {current}")]
    BrokerEpochMismatch { broker_id: NodeId, current: BrokerEpoch, got: BrokerEpoch },
    #[error("broker {broker_id} epoch {got} does not grow past {current}")]
    BrokerEpochNotGrowing { broker_id: NodeId, current: BrokerEpoch, got: BrokerEpoch },
    #[error("topic {name} already exists")]
    TopicExists { name: String },
    #[error("bad assignment for topic {name}: {what}")]
    BadAssignment { name: String, what: &'static str },
    #[error("unknown partition {tp}")]
    UnknownPartition { tp: TopicPartition },
    #[error(transparent)]
    Violation(#[from] MetadataViolation),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub broker_epoch: BrokerEpoch,
    pub fenced: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<NodeId>,
    /// Empty only while the partition has no leader (KIP-966: its last member was fenced or
    /// restarted uncleanly; it may sit in the ELR).
    pub isr: Vec<NodeId>,
    /// Eligible leader replicas (KIP-966).
    pub elr: Vec<NodeId>,
    /// The leader when the ISR became empty (KIP-966's last known ELR), for unclean recovery.
    pub last_known_leader: Option<NodeId>,
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    pub partition_epoch: PartitionEpoch,
    /// The current leader was elected uncleanly and has not had its ISR confirmed since.
    pub unclean: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub unclean_leader_election: bool,
    pub min_insync_replicas: u16,
    pub partitions: Vec<PartitionState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub brokers: BTreeMap<NodeId, BrokerState>,
    pub topics: BTreeMap<String, TopicState>,
}

/// Encodes one batch as the bytes of one Raft entry.
pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
    postcard::to_allocvec(records).expect("metadata records always serialize")
}

pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, MetadataError> {
    postcard::from_bytes(bytes).map_err(|_| MetadataError::Decode)
}

impl MetadataImage {
    pub fn broker(&self, broker_id: NodeId) -> Option<&BrokerState> {
        self.brokers.get(&broker_id)
    }

    /// Registered and unfenced: may lead and be in an ISR.
    pub fn is_live(&self, broker_id: NodeId) -> bool {
        self.brokers.get(&broker_id).is_some_and(|b| !b.fenced)
    }

    pub fn live_brokers(&self) -> Vec<NodeId> {
        self.brokers.iter().filter(|(_, b)| !b.fenced).map(|(&id, _)| id).collect()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.get(name)
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        self.topics.get(&tp.topic)?.partitions.get(tp.partition as usize)
    }

    /// Every partition, in (topic, partition) order.
    pub fn partitions(&self) -> impl Iterator<Item = (TopicPartition, &PartitionState)> {
        self.topics.iter().flat_map(|(name, topic)| {
            topic
                .partitions
                .iter()
                .enumerate()
                .map(move |(p, state)| (TopicPartition::new(name.clone(), p as u32), state))
        })
    }

    /// Applies a batch all or nothing.
    pub fn apply_batch(&mut self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let mut next = self.clone();
        for record in records {
            next.apply(record)?;
        }
        *self = next;
        Ok(())
    }

    /// Applies one record; on error the image may be half-changed only for this record's
    /// own entry, which `apply_batch` discards.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        match record {
            MetadataRecord::RegisterBroker { broker_id, broker_epoch } => {
                if let Some(current) = self.brokers.get(broker_id) {
                    if *broker_epoch <= current.broker_epoch {
                        return Err(MetadataError::BrokerEpochNotGrowing {
                            broker_id: *broker_id,
                            current: current.broker_epoch,
                            got: *broker_epoch,
                        });
                    }
                }
                let state = BrokerState { broker_epoch: *broker_epoch, fenced: true };
                self.brokers.insert(*broker_id, state);
            }
            MetadataRecord::FenceBroker { broker_id, broker_epoch } => {
                self.broker_mut(*broker_id, *broker_epoch)?.fenced = true;
            }
            MetadataRecord::UnfenceBroker { broker_id, broker_epoch } => {
                self.broker_mut(*broker_id, *broker_epoch)?.fenced = false;
            }
            MetadataRecord::CreateTopic {
                name,
                partitions,
                replication_factor,
                assignments,
                unclean_leader_election,
                min_insync_replicas,
            } => {
                self.create_topic(
                    name,
                    *partitions,
                    *replication_factor,
                    assignments,
                    (*unclean_leader_election, *min_insync_replicas),
                )?;
            }
            MetadataRecord::PartitionChange {
                tp,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
                elr,
                last_known_leader,
                unclean,
            } => {
                let current = self
                    .partition(tp)
                    .ok_or_else(|| MetadataError::UnknownPartition { tp: tp.clone() })?;
                let next = PartitionState {
                    replicas: current.replicas.clone(),
                    isr: isr.clone(),
                    elr: elr.clone(),
                    last_known_leader: *last_known_leader,
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    unclean: *unclean,
                };
                check_partition_transition(tp, current, &next)?;
                let topic = self.topics.get_mut(&tp.topic).expect("checked above");
                topic.partitions[tp.partition as usize] = next;
            }
        }
        Ok(())
    }

    fn broker_mut(
        &mut self,
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    ) -> Result<&mut BrokerState, MetadataError> {
        let broker =
            self.brokers.get_mut(&broker_id).ok_or(MetadataError::UnknownBroker { broker_id })?;
        if broker.broker_epoch != broker_epoch {
            return Err(MetadataError::BrokerEpochMismatch {
                broker_id,
                current: broker.broker_epoch,
                got: broker_epoch,
            });
        }
        Ok(broker)
    }

    fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
        replication_factor: u16,
        assignments: &[Vec<NodeId>],
        (unclean_leader_election, min_insync_replicas): (bool, u16),
    ) -> Result<(), MetadataError> {
        let bad = |what| MetadataError::BadAssignment { name: name.to_string(), what };
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists { name: name.to_string() });
        }
        if partitions == 0 || assignments.len() != partitions as usize {
            return Err(bad("one assignment per partition"));
        }
        let mut states = Vec::with_capacity(assignments.len());
        for replicas in assignments {
            let unique: BTreeSet<NodeId> = replicas.iter().copied().collect();
            if replicas.len() != usize::from(replication_factor) || unique.len() != replicas.len() {
                return Err(bad("replication factor distinct replicas"));
            }
            if !replicas.iter().all(|r| self.brokers.contains_key(r)) {
                return Err(bad("replica on an unregistered broker"));
            }
            states.push(PartitionState {
                replicas: replicas.clone(),
                isr: replicas.clone(),
                elr: Vec::new(),
                last_known_leader: None,
                leader: replicas.first().copied(),
                leader_epoch: Epoch(0),
                partition_epoch: PartitionEpoch(0),
                unclean: false,
            });
        }
        let topic = TopicState { unclean_leader_election, min_insync_replicas, partitions: states };
        self.topics.insert(name.to_string(), topic);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(ids: &[u32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &id in ids {
            let reg = MetadataRecord::RegisterBroker {
                broker_id: NodeId(id),
                broker_epoch: BrokerEpoch(u64::from(id)),
            };
            image.apply(&reg).expect("register");
        }
        image
    }

    #[test]
    fn batches_round_trip_and_garbage_is_an_error() {
        let batch = vec![
            MetadataRecord::RegisterBroker { broker_id: NodeId(1), broker_epoch: BrokerEpoch(4) },
            MetadataRecord::UnfenceBroker { broker_id: NodeId(1), broker_epoch: BrokerEpoch(4) },
        ];
        assert_eq!(decode_batch(&encode_batch(&batch)).expect("round trip"), batch);
        assert_eq!(decode_batch(&[0xff, 0xff, 0xff]), Err(MetadataError::Decode));
    }

    #[test]
    fn a_failing_batch_leaves_the_image_unchanged() {
        let mut image = registered(&[1, 2]);
        let before = image.clone();
        let batch = vec![
            MetadataRecord::UnfenceBroker { broker_id: NodeId(1), broker_epoch: BrokerEpoch(1) },
            MetadataRecord::UnfenceBroker { broker_id: NodeId(2), broker_epoch: BrokerEpoch(9) },
        ];
        assert!(matches!(
            image.apply_batch(&batch),
            Err(MetadataError::BrokerEpochMismatch { .. })
        ));
        assert_eq!(image, before);
    }

    #[test]
    fn partition_changes_must_bump_epochs_and_keep_the_leader_in_the_isr() {
        let mut image = registered(&[1, 2, 3]);
        let create = MetadataRecord::CreateTopic {
            name: "t".into(),
            partitions: 1,
            replication_factor: 3,
            assignments: vec![vec![NodeId(1), NodeId(2), NodeId(3)]],
            unclean_leader_election: false,
            min_insync_replicas: 2,
        };
        image.apply(&create).expect("create");
        let tp = TopicPartition::new("t", 0);
        let change =
            |leader: u32, le: u32, pe: u32, isr: &[u32], unclean| MetadataRecord::PartitionChange {
                tp: tp.clone(),
                leader: Some(NodeId(leader)),
                leader_epoch: Epoch(le),
                partition_epoch: PartitionEpoch(pe),
                isr: isr.iter().copied().map(NodeId).collect(),
                elr: Vec::new(),
                last_known_leader: None,
                unclean,
            };
        // A new leader without a leader epoch bump.
        assert!(image.apply(&change(2, 0, 1, &[2, 3], false)).is_err());
        // Partition epoch not bumped.
        assert!(image.apply(&change(2, 1, 0, &[2, 3], false)).is_err());
        // Leader outside the ISR, not flagged unclean.
        assert!(image.apply(&change(1, 1, 1, &[2, 3], false)).is_err());
        image.apply(&change(2, 1, 1, &[2, 3], false)).expect("clean election");
        // Leader epoch going back.
        assert!(image.apply(&change(2, 0, 2, &[2], false)).is_err());
        // Unclean, flagged: allowed.
        image.apply(&change(1, 2, 2, &[1], true)).expect("flagged unclean election");
        let p = image.partition(&tp).expect("exists");
        assert_eq!(
            (p.leader, p.leader_epoch, p.partition_epoch),
            (Some(NodeId(1)), Epoch(2), PartitionEpoch(2))
        );
    }
}
