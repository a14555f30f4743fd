//! Metadata invariants, as functions the image calls on every change and a simulator
//! calls after every step (CORRECTNESS.md, inside-the-cluster items 1 and 5):
//!
//! - a partition's leader epoch only grows, and grows whenever the leader changes;
//! - its partition epoch grows on every change;
//! - at most one leader per (partition, leader epoch), across every image observed;
//! - the ISR is a non-empty set of the partition's replicas, and the leader is in it unless
//!   the change is flagged unclean.
//!
//! Raft's own invariants live in `raft::invariants`.

use super::records::{MetadataImage, PartitionState};
use crate::types::{Epoch, NodeId, PartitionEpoch, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetadataViolation {
    #[error("{tp}: leader epoch went back {from} -> {to}")]
    LeaderEpochWentBack { tp: TopicPartition, from: Epoch, to: Epoch },
    #[error("{tp}: leader changed {from:?} -> {to:?} within {epoch}")]
    LeaderChangedWithinEpoch {
        tp: TopicPartition,
        epoch: Epoch,
        from: Option<NodeId>,
        to: Option<NodeId>,
    },
    #[error("{tp}: partition epoch {from} -> {to} does not grow")]
    PartitionEpochNotGrowing { tp: TopicPartition, from: PartitionEpoch, to: PartitionEpoch },
    #[error("{tp}: isr {isr:?} is empty, repeats or leaves the replicas {replicas:?}")]
    BadIsr { tp: TopicPartition, isr: Vec<NodeId>, replicas: Vec<NodeId> },
    #[error("{tp}: leader {leader} not in isr {isr:?} and not flagged unclean")]
    LeaderNotInIsr { tp: TopicPartition, leader: NodeId, isr: Vec<NodeId> },
    #[error("{tp}: leader {leader} is not a replica")]
    LeaderNotReplica { tp: TopicPartition, leader: NodeId },
    #[error("{tp}: two leaders in {epoch}: {first} and {second}")]
    TwoLeadersInEpoch { tp: TopicPartition, epoch: Epoch, first: NodeId, second: NodeId },
}

/// The shape every partition state must have.
pub fn check_partition(tp: &TopicPartition, p: &PartitionState) -> Result<(), MetadataViolation> {
    let unique: BTreeSet<NodeId> = p.isr.iter().copied().collect();
    if (p.isr.is_empty() && p.leader.is_some())
        || unique.len() != p.isr.len()
        || !p.isr.iter().all(|r| p.replicas.contains(r))
    {
        return Err(MetadataViolation::BadIsr {
            tp: tp.clone(),
            isr: p.isr.clone(),
            replicas: p.replicas.clone(),
        });
    }
    if let Some(leader) = p.leader {
        if !p.replicas.contains(&leader) {
            return Err(MetadataViolation::LeaderNotReplica { tp: tp.clone(), leader });
        }
        if !p.unclean && !p.isr.contains(&leader) {
            return Err(MetadataViolation::LeaderNotInIsr {
                tp: tp.clone(),
                leader,
                isr: p.isr.clone(),
            });
        }
    }
    Ok(())
}

/// A legal step from `before` to `after` (same partition).
pub fn check_partition_transition(
    tp: &TopicPartition,
    before: &PartitionState,
    after: &PartitionState,
) -> Result<(), MetadataViolation> {
    check_partition(tp, after)?;
    if after.leader_epoch < before.leader_epoch {
        return Err(MetadataViolation::LeaderEpochWentBack {
            tp: tp.clone(),
            from: before.leader_epoch,
            to: after.leader_epoch,
        });
    }
    if after.leader != before.leader && after.leader_epoch == before.leader_epoch {
        return Err(MetadataViolation::LeaderChangedWithinEpoch {
            tp: tp.clone(),
            epoch: after.leader_epoch,
            from: before.leader,
            to: after.leader,
        });
    }
    if after.partition_epoch <= before.partition_epoch {
        return Err(MetadataViolation::PartitionEpochNotGrowing {
            tp: tp.clone(),
            from: before.partition_epoch,
            to: after.partition_epoch,
        });
    }
    Ok(())
}

/// Watches images over a run (any node's, in any order): leader epochs per partition never
/// seen to go back on one node, and one leader per (partition, leader epoch) across nodes.
#[derive(Clone, Debug, Default)]
pub struct MetadataChecker {
    leaders: BTreeMap<(TopicPartition, Epoch), NodeId>,
    /// Per observer (a controller node), the last leader epoch seen per partition.
    last_epoch: BTreeMap<(NodeId, TopicPartition), Epoch>,
}

impl MetadataChecker {
    pub fn new() -> MetadataChecker {
        MetadataChecker::default()
    }

    /// `observer` names whose image this is; a restarted node rebuilds its image from the
    /// log, so call `observer_restarted` first (its image may briefly be older).
    pub fn observe(
        &mut self,
        observer: NodeId,
        image: &MetadataImage,
    ) -> Result<(), MetadataViolation> {
        for (tp, p) in image.partitions() {
            check_partition(&tp, p)?;
            let key = (observer, tp.clone());
            if let Some(&seen) = self.last_epoch.get(&key) {
                if p.leader_epoch < seen {
                    return Err(MetadataViolation::LeaderEpochWentBack {
                        tp,
                        from: seen,
                        to: p.leader_epoch,
                    });
                }
            }
            self.last_epoch.insert(key, p.leader_epoch);
            if let Some(leader) = p.leader {
                let first = *self.leaders.entry((tp.clone(), p.leader_epoch)).or_insert(leader);
                if first != leader {
                    return Err(MetadataViolation::TwoLeadersInEpoch {
                        tp,
                        epoch: p.leader_epoch,
                        first,
                        second: leader,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn observer_restarted(&mut self, observer: NodeId) {
        self.last_epoch.retain(|(o, _), _| *o != observer);
    }
}
