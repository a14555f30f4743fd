//! What the cluster's nodes last reported about roles: which controller is active and who
//! leads each partition. The nemesis resolves role targets ("leader-of", "active-controller",
//! "follower-of") against it; the runner's liveness check after the heal reads it. Nodes
//! overwrite their own entries; a crashed node's reports stay until a successor replaces them,
//! so a target may name a node that just died (the fault then hits a dead node, harmlessly).

use kafkasim::controller::MetadataImage;
use kafkasim::types::{Epoch, NodeId, Offset, PartitionEpoch, TopicPartition};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The controller index that last reported becoming active, and its term.
    pub active_controller: Option<(u32, u64)>,
    /// Per partition, the newest committed state any broker has applied.
    pub partitions: BTreeMap<TopicPartition, PartitionView>,
    /// Per broker: the metadata-log index it has applied.
    pub broker_metadata_index: BTreeMap<NodeId, u64>,
    /// Per (broker, partition): its HW and LEO as of its last tick, and whether it leads.
    pub replicas: BTreeMap<(NodeId, TopicPartition), ReplicaView>,
    /// The newest metadata any controller committed, with its Raft index: ISRs and fenced
    /// brokers as the quorum decided them, before brokers apply them (the nemesis's guard).
    pub committed: Option<(u64, MetadataImage)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaView {
    pub high_watermark: Offset,
    pub log_end_offset: Offset,
    pub leads: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    pub partition_epoch: PartitionEpoch,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
}

impl ClusterView {
    /// Why the cluster has not converged yet (empty once every partition is led by a
    /// replica that every other replica has caught up with, with a full ISR).
    pub fn not_converged(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (tp, p) in &self.partitions {
            let Some(leader) = p.leader else {
                problems.push(format!(
                    "{tp} has no leader (isr {:?}: no live in-sync replica can lead)",
                    p.isr
                ));
                continue;
            };
            if p.isr.len() < p.replicas.len() {
                problems.push(format!("{tp}: isr {:?} of replicas {:?}", p.isr, p.replicas));
            }
            let Some(lead) = self.replicas.get(&(leader, tp.clone())) else {
                problems.push(format!("{tp}: leader {leader} has not reported"));
                continue;
            };
            // Group members commit on their own timers (auto-commit never stops), so the
            // offsets topic's followers are a fetch behind whenever it is looked at; a led
            // partition with a full ISR is what its liveness asks.
            if tp.topic == kafkasim::group::OFFSETS_TOPIC {
                continue;
            }
            for replica in p.replicas.iter().filter(|r| **r != leader) {
                match self.replicas.get(&(*replica, tp.clone())) {
                    Some(r)
                        if r.log_end_offset == lead.log_end_offset
                            && r.high_watermark == lead.high_watermark => {}
                    Some(r) => problems.push(format!(
                        "{tp}: {replica} at hw {} leo {}, leader {leader} at hw {} leo {}",
                        r.high_watermark,
                        r.log_end_offset,
                        lead.high_watermark,
                        lead.log_end_offset
                    )),
                    None => problems.push(format!("{tp}: {replica} has not reported")),
                }
            }
        }
        problems
    }

    /// The high watermark `tp`'s leader last reported.
    pub fn leader_high_watermark(&self, tp: &TopicPartition) -> Option<Offset> {
        let leader = self.leader_of(tp)?;
        self.replicas.get(&(leader, tp.clone())).map(|r| r.high_watermark)
    }

    /// Whether records acked up to `end` at `acked_ns` can still be in `tp`'s leader: its
    /// reported log reaches `end`, or the ack is too recent for the report (sent every
    /// broker tick) to show it. A leader whose log still ends below `end` after that lost
    /// them (acks=1 acked by a deposed leader, an unclean election): no consumer will ever
    /// read up to `end`.
    pub fn may_hold_acked(
        &self,
        tp: &TopicPartition,
        end: Offset,
        acked_ns: u64,
        now_ns: u64,
    ) -> bool {
        const REPORT_LAG_NS: u64 = 1_000_000_000;
        let leader_end = self
            .leader_of(tp)
            .and_then(|leader| self.replicas.get(&(leader, tp.clone())))
            .map(|r| r.log_end_offset);
        leader_end.is_none_or(|leo| leo >= end) || now_ns.saturating_sub(acked_ns) < REPORT_LAG_NS
    }

    /// The leader of `tp`, if one is known.
    pub fn leader_of(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.partitions.get(tp).and_then(|p| p.leader)
    }

    /// Replicas of `tp` other than its leader, in replica order.
    pub fn followers_of(&self, tp: &TopicPartition) -> Vec<NodeId> {
        self.partitions.get(tp).map_or_else(Vec::new, |p| {
            p.replicas.iter().copied().filter(|r| Some(*r) != p.leader).collect()
        })
    }

    /// Records the metadata a controller committed up to `index`, if it is newer.
    pub fn observe_committed(&mut self, index: u64, image: &MetadataImage) {
        if self.committed.as_ref().is_none_or(|(held, _)| *held < index) {
            self.committed = Some((index, image.clone()));
        }
    }

    /// Records a partition state if it is at least as new as the one held.
    pub fn update_partition(&mut self, tp: &TopicPartition, view: PartitionView) {
        match self.partitions.get(tp) {
            Some(held)
                if (held.leader_epoch, held.partition_epoch)
                    > (view.leader_epoch, view.partition_epoch) => {}
            _ => {
                self.partitions.insert(tp.clone(), view);
            }
        }
    }
}
