//! The inside-the-cluster invariants of CORRECTNESS.md (1-5) and Raft's own, checked after
//! every step from what the nodes report ([`ClusterEvent`]s), not from the client history.
//!
//! Node shells report each fact as it happens (a leader taking over, a batch appended or
//! truncated, a HW exposed, an acks=all ack, a committed partition change, a Raft role
//! change or commit). [`ClusterChecker::observe`] folds one event into its model of every
//! replica's log and returns the violations that event caused; `finish` checks the end
//! state (replicas agree below their HW). The checker never panics on any sequence of
//! events: a shell bug shows as a violation, not a crash of the testbed.

use kafkasim::controller::raft::LogIndex;
use kafkasim::types::{Epoch, NodeId, Offset, PartitionEpoch, Term, TopicPartition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod log;
mod metadata;
mod replicas;
mod views;

use super::groups::GroupChecker;
use metadata::{nodes, Change, Metadata};
use replicas::Replicas;
use views::Views;

/// One batch in a replica's log, as the checker compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDigest {
    pub base: Offset,
    pub last: Offset,
    /// The leader epoch stamped on the batch (None for control batches without one).
    pub epoch: Option<Epoch>,
    /// The batch's CRC-32C: equal CRCs over equal offsets mean equal records.
    pub crc: u32,
}

/// A fact a node reports about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A broker (re)started with these logs after recovery (everything else it had is gone).
    BrokerStarted { broker: NodeId, logs: BTreeMap<TopicPartition, Vec<BatchDigest>> },
    /// A broker process died (crash, power loss); its in-memory roles end.
    BrokerStopped { broker: NodeId },
    /// The broker now leads the partition in this epoch, with this log end offset.
    BecameLeader { broker: NodeId, tp: TopicPartition, epoch: Epoch, leo: Offset },
    /// The broker now follows `leader` in this epoch.
    BecameFollower { broker: NodeId, tp: TopicPartition, leader: NodeId, epoch: Epoch },
    /// A batch was appended to the broker's log (as leader or follower).
    Appended { broker: NodeId, tp: TopicPartition, batch: BatchDigest },
    /// The broker's log was cut: every offset >= `to` is gone.
    Truncated { broker: NodeId, tp: TopicPartition, to: Offset },
    /// The leader's HW moved: consumers may now read below `hw`.
    HighWatermark { broker: NodeId, tp: TopicPartition, epoch: Epoch, hw: Offset },
    /// The leader answered an acks=all produce as acked.
    AckedAll {
        broker: NodeId,
        tp: TopicPartition,
        last_offset: Offset,
        hw: Offset,
        isr: Vec<NodeId>,
        min_insync: usize,
    },
    /// A leader received a follower's fetch at `fetch_offset` (the follower's log end), in
    /// the leader epoch the follower named.
    FollowerFetched {
        leader: NodeId,
        follower: NodeId,
        tp: TopicPartition,
        epoch: Option<Epoch>,
        fetch_offset: Offset,
    },
    /// A controller applied a committed partition change (or the partition's creation).
    PartitionChanged {
        controller: NodeId,
        tp: TopicPartition,
        leader: Option<NodeId>,
        leader_epoch: Epoch,
        partition_epoch: PartitionEpoch,
        isr: Vec<NodeId>,
        /// The leader was elected outside the ISR.
        unclean: bool,
        /// The topic allows unclean election.
        unclean_allowed: bool,
    },
    /// A controller's Raft role or term changed (`leader` true when it became leader).
    RaftTerm { controller: NodeId, term: Term, leader: bool },
    /// A controller applied the committed entry `index` of `term` with this payload digest.
    RaftCommitted { controller: NodeId, index: LogIndex, term: Term, digest: u64 },
    /// A group coordinator's event (invariant 7), for the [`GroupChecker`]. Reports only:
    /// never read back from JSON.
    #[serde(skip_deserializing)]
    Group { coordinator_epoch: Epoch, event: kafkasim::group::GroupEvent },
}

/// Which invariant broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvariantKind {
    /// 1: two leaders for one (partition, epoch), or a leader epoch going back.
    OneLeaderPerEpoch,
    /// 2: a record below the highest HW exposed is missing or changed on a later leader.
    CommittedPrefix,
    /// 3: an in-sync replica differs from the leader below the leader's HW, or replicas
    /// disagree below their HW at the end.
    ReplicasAgree,
    /// 4: an acks=all ack above the HW or with an ISR below min.insync.
    AckedMeansReplicated,
    /// 5: a leader outside the ISR without an unclean election recorded.
    LeaderInIsr,
    /// Raft: two leaders in one term, a term going back, a committed entry changing.
    Raft,
    /// 8: a leader acked acks=all or moved its HW past an offset that a member of the ISR
    /// the controller committed for its epoch had not reported fetching.
    HwWithinCommittedIsr,
    /// 7: a coordinator accepted a commit from a stale generation or an unknown member.
    StaleCommit,
    /// 7: one partition with two owners in one generation (assigned twice, or committed
    /// by a member other than its owner and accepted).
    TwoOwners,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: InvariantKind,
    /// The partition (or "metadata" for Raft), the nodes, offsets and epochs involved.
    pub detail: String,
}

/// Folds [`ClusterEvent`]s into a model of every replica's log, controller terms and
/// committed metadata, and reports each invariant the moment an event breaks it.
#[derive(Debug, Default)]
pub struct ClusterChecker {
    metadata: Metadata,
    replicas: Replicas,
    views: Views,
    groups: GroupChecker,
    /// Compacted topics: each replica's cleaner rewrites its own log, so their batches are
    /// not compared (a compaction is not an event the checker sees).
    compacted: std::collections::BTreeSet<String>,
}

impl ClusterChecker {
    pub fn new() -> ClusterChecker {
        ClusterChecker::default()
    }

    /// A checker that leaves the replica contents of `compacted` topics alone.
    pub fn with_compacted_topics(compacted: impl IntoIterator<Item = String>) -> ClusterChecker {
        ClusterChecker { compacted: compacted.into_iter().collect(), ..ClusterChecker::default() }
    }

    /// The violations this event causes (empty when it breaks nothing).
    pub fn observe(&mut self, event: &ClusterEvent) -> Vec<Violation> {
        let meta = &self.metadata;
        let compacted = |tp: &TopicPartition| self.compacted.contains(&tp.topic);
        match event {
            ClusterEvent::BrokerStarted { broker, logs } if !self.compacted.is_empty() => {
                let mut logs = logs.clone();
                logs.retain(|tp, _| !compacted(tp));
                self.replicas.broker_started(*broker, &logs)
            }
            ClusterEvent::BecameLeader { tp, .. }
            | ClusterEvent::BecameFollower { tp, .. }
            | ClusterEvent::Appended { tp, .. }
            | ClusterEvent::Truncated { tp, .. }
            | ClusterEvent::HighWatermark { tp, .. }
            | ClusterEvent::FollowerFetched { tp, .. }
                if compacted(tp) =>
            {
                Vec::new()
            }
            ClusterEvent::BrokerStarted { broker, logs } => {
                self.views.stopped(*broker);
                self.replicas.broker_started(*broker, logs)
            }
            ClusterEvent::BrokerStopped { broker } => {
                self.views.stopped(*broker);
                self.replicas.broker_stopped(*broker);
                Vec::new()
            }
            ClusterEvent::BecameLeader { broker, tp, epoch, leo } => {
                self.views.became_leader(*broker, tp, *epoch, *leo);
                self.replicas.became_leader(meta, *broker, tp, *epoch)
            }
            ClusterEvent::BecameFollower { broker, tp, leader, epoch } => {
                self.views.left(*broker, tp);
                self.replicas.became_follower(meta, *broker, tp, *leader, *epoch)
            }
            ClusterEvent::FollowerFetched { leader, follower, tp, epoch, fetch_offset } => {
                self.views.follower_fetched(*leader, *follower, tp, *epoch, *fetch_offset);
                Vec::new()
            }
            ClusterEvent::Appended { broker, tp, batch } => {
                self.replicas.appended(meta, *broker, tp, *batch)
            }
            ClusterEvent::Truncated { broker, tp, to } => {
                self.replicas.truncated(meta, *broker, tp, *to)
            }
            ClusterEvent::HighWatermark { broker, tp, epoch, hw } => {
                let mut violations = self.replicas.high_watermark(meta, *broker, tp, *epoch, *hw);
                violations.extend(self.views.high_watermark(meta, *broker, tp, *hw));
                violations
            }
            ClusterEvent::AckedAll { broker, tp, last_offset, hw, isr, min_insync } => {
                let mut violations = acked_all(*broker, tp, *last_offset, *hw, isr, *min_insync);
                if !compacted(tp) {
                    violations.extend(self.views.acked(meta, *broker, tp, *last_offset));
                }
                violations
            }
            ClusterEvent::PartitionChanged {
                controller,
                tp,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
                unclean,
                unclean_allowed,
            } => {
                let change = Change {
                    controller: *controller,
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    isr: isr.iter().copied().collect(),
                    unclean: *unclean,
                    unclean_allowed: *unclean_allowed,
                };
                let replicas = &self.replicas;
                self.metadata.partition_changed(tp, change, |b| replicas.starts(b))
            }
            ClusterEvent::RaftTerm { controller, term, leader } => {
                self.metadata.raft_term(*controller, *term, *leader)
            }
            ClusterEvent::RaftCommitted { controller, index, term, digest } => {
                self.metadata.raft_committed(*controller, *index, *term, *digest)
            }
            ClusterEvent::Group { coordinator_epoch, event } => {
                self.groups.observe_from(*coordinator_epoch, event)
            }
        }
    }

    /// The consumer-group half: its figures, and where the world records final lag.
    pub fn groups(&self) -> &GroupChecker {
        &self.groups
    }

    pub fn groups_mut(&mut self) -> &mut GroupChecker {
        &mut self.groups
    }

    /// End-of-run checks, after the heal and catch-up: replicas agree below their HW.
    pub fn finish(&self) -> Vec<Violation> {
        self.replicas.finish()
    }
}

/// 4: an acks=all ack covers only offsets below the HW, with a big enough ISR.
fn acked_all(
    broker: NodeId,
    tp: &TopicPartition,
    last_offset: Offset,
    hw: Offset,
    isr: &[NodeId],
    min_insync: usize,
) -> Vec<Violation> {
    let mut problems = Vec::new();
    if last_offset >= hw {
        problems.push(format!("last offset {last_offset} not below hw {hw}"));
    }
    if isr.len() < min_insync {
        problems.push(format!("isr of {} below min.insync.replicas {min_insync}", isr.len()));
    }
    if problems.is_empty() {
        return Vec::new();
    }
    let isr: BTreeSet<NodeId> = isr.iter().copied().collect();
    vec![Violation {
        kind: InvariantKind::AckedMeansReplicated,
        detail: format!(
            "{tp}: {broker} acked an acks=all produce up to {last_offset} with hw {hw}, isr {}: {}",
            nodes(&isr),
            problems.join("; ")
        ),
    }]
}

#[cfg(test)]
mod tests;
