//! The in-sync replica set as the leader sees it: the ISR the controller committed, and at
//! most one proposed change in flight (an AlterPartition naming the partition epoch it was
//! built on). While a change is pending the HW is computed over the maximal ISR (committed
//! union proposed, KIP-497), so neither a shrink nor an expansion is relied on before the
//! controller confirms it. Also the controller's validation of an AlterPartition, as a pure
//! function the controller module and the tests share.

use super::{PartitionEpoch, PartitionState};
use crate::types::{BrokerEpoch, Epoch, IsrMember, NodeId, TopicPartition};
use std::collections::BTreeMap;
use thiserror::Error;

/// A leader's proposal to change the ISR (Kafka's AlterPartition, KIP-497).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    pub tp: TopicPartition,
    pub leader: NodeId,
    pub leader_epoch: Epoch,
    /// The partition epoch the proposal was built on; the controller refuses others.
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<NodeId>,
    /// KIP-903: the broker epoch each member's fetches carried, where known; empty when
    /// switched off (`ReplicationConfig::isr_broker_epochs`).
    pub broker_epochs: BTreeMap<NodeId, BrokerEpoch>,
}

impl AlterPartitionRequest {
    /// The proposed ISR as the controller reads it: each member with its broker epoch.
    pub fn members(&self) -> Vec<IsrMember> {
        let member =
            |&broker| IsrMember { broker, broker_epoch: self.broker_epochs.get(&broker).copied() };
        self.new_isr.iter().map(member).collect()
    }
}

/// Why the controller refused an AlterPartition (or it never got an answer).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AlterPartitionError {
    #[error("stale partition epoch {request}, current {current}")]
    InvalidUpdateVersion { request: PartitionEpoch, current: PartitionEpoch },
    #[error("fenced leader epoch {request}, current {current}")]
    FencedLeaderEpoch { request: Epoch, current: Epoch },
    #[error("{leader} is not the leader")]
    NotLeader { leader: NodeId },
    #[error("ineligible isr {isr:?}")]
    IneligibleReplica { isr: Vec<NodeId> },
    /// The driver lost the request or its answer; the leader may propose again.
    #[error("request failed")]
    RequestFailed,
}

/// The committed ISR and the pending proposal, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrState {
    committed: Vec<NodeId>,
    pending: Option<Vec<NodeId>>,
}

impl IsrState {
    pub fn new(committed: &[NodeId]) -> IsrState {
        IsrState { committed: sorted(committed), pending: None }
    }

    pub fn committed(&self) -> &[NodeId] {
        &self.committed
    }

    pub fn pending(&self) -> Option<&[NodeId]> {
        self.pending.as_deref()
    }

    /// Committed union proposed: every replica the HW must wait for.
    pub fn maximal(&self) -> Vec<NodeId> {
        let mut all = self.committed.clone();
        all.extend(self.pending.iter().flatten().copied());
        sorted(&all)
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.committed.contains(&node)
    }

    pub(super) fn propose(&mut self, proposed: &[NodeId]) {
        assert!(self.pending.is_none(), "isr change {proposed:?} while {:?} pending", self.pending);
        assert!(!proposed.is_empty(), "proposed an empty isr");
        self.pending = Some(sorted(proposed));
    }

    pub(super) fn commit(&mut self, committed: &[NodeId]) {
        assert!(!committed.is_empty(), "committed an empty isr");
        self.committed = sorted(committed);
        self.pending = None;
    }

    pub(super) fn abandon(&mut self) {
        self.pending = None;
    }
}

/// The controller's rule for an AlterPartition against the committed `current` state;
/// returns the next state (partition epoch bumped) to commit and publish.
pub fn validate_alter_partition(
    current: &PartitionState,
    request: &AlterPartitionRequest,
) -> Result<PartitionState, AlterPartitionError> {
    if current.leader != Some(request.leader) {
        return Err(AlterPartitionError::NotLeader { leader: request.leader });
    }
    if request.leader_epoch != current.leader_epoch {
        let (request, current) = (request.leader_epoch, current.leader_epoch);
        return Err(AlterPartitionError::FencedLeaderEpoch { request, current });
    }
    if request.partition_epoch != current.partition_epoch {
        let (request, current) = (request.partition_epoch, current.partition_epoch);
        return Err(AlterPartitionError::InvalidUpdateVersion { request, current });
    }
    let eligible = request.new_isr.contains(&request.leader)
        && request.new_isr.iter().all(|n| current.replicas.contains(n));
    if !eligible {
        return Err(AlterPartitionError::IneligibleReplica { isr: request.new_isr.clone() });
    }
    let next = PartitionState {
        isr: sorted(&request.new_isr),
        partition_epoch: current.partition_epoch.next(),
        ..current.clone()
    };
    assert!(next.partition_epoch > current.partition_epoch, "partition epoch did not grow");
    Ok(next)
}

fn sorted(nodes: &[NodeId]) -> Vec<NodeId> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    nodes.dedup();
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> PartitionState {
        PartitionState {
            leader: Some(NodeId(1)),
            leader_epoch: Epoch(2),
            partition_epoch: PartitionEpoch(5),
            replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
            isr: vec![NodeId(1), NodeId(2), NodeId(3)],
        }
    }

    fn request(partition_epoch: u32, isr: &[u32]) -> AlterPartitionRequest {
        AlterPartitionRequest {
            tp: TopicPartition::new("t", 0),
            leader: NodeId(1),
            leader_epoch: Epoch(2),
            partition_epoch: PartitionEpoch(partition_epoch),
            new_isr: isr.iter().map(|n| NodeId(*n)).collect(),
            broker_epochs: BTreeMap::new(),
        }
    }

    #[test]
    fn controller_accepts_only_the_current_partition_epoch() {
        let next = validate_alter_partition(&state(), &request(5, &[2, 1])).expect("current");
        assert_eq!(next.isr, vec![NodeId(1), NodeId(2)]);
        assert_eq!(next.partition_epoch, PartitionEpoch(6));
        assert!(matches!(
            validate_alter_partition(&state(), &request(4, &[1])),
            Err(AlterPartitionError::InvalidUpdateVersion { .. })
        ));
        assert!(matches!(
            validate_alter_partition(&state(), &request(5, &[2, 3])),
            Err(AlterPartitionError::IneligibleReplica { .. })
        ));
        let stale_leader = AlterPartitionRequest { leader_epoch: Epoch(1), ..request(5, &[1]) };
        assert!(matches!(
            validate_alter_partition(&state(), &stale_leader),
            Err(AlterPartitionError::FencedLeaderEpoch { .. })
        ));
    }

    #[test]
    fn maximal_isr_is_committed_union_proposed() {
        let mut isr = IsrState::new(&[NodeId(1), NodeId(3)]);
        isr.propose(&[NodeId(1)]);
        assert_eq!(isr.maximal(), vec![NodeId(1), NodeId(3)], "a shrink is not relied on");
        isr.abandon();
        isr.propose(&[NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(isr.maximal().len(), 3, "an expansion already counts for the hw");
        assert_eq!(isr.committed().len(), 2, "but not for min.insync");
    }
}
