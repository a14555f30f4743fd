//! One partition change, decided the way Kafka 4's `PartitionChangeBuilder` decides it:
//! the target ISR, then the eligible leader replicas (KIP-966), then the leader election,
//! then the last known leader. Every path that changes a partition (a broker fenced,
//! unfenced or registered after an unclean shutdown, an AlterPartition) goes through
//! [`PartitionChange::build`], so the ELR is maintained on every change, not only when the
//! controller fences a broker.
//!
//! The rules, with `elr` on (Kafka's `eligible.leader.replicas.version` >= 1):
//! - an ISR of at least min.insync.replicas members clears the ELR; below it, every member
//!   leaving the ISR joins the ELR (nothing commits below min.insync, so each had every
//!   committed record), except a replica that restarted after an unclean shutdown;
//! - the ISR may become empty (its last member fenced); that member then sits in the ELR;
//! - a leader comes from the live ISR, else, while the ISR is empty, from the live ELR (its
//!   ISR becomes just the leader), else by unclean recovery (see [`UncleanRecovery`]), else
//!   by unclean election when the topic allows it, else the partition has no leader.
//!
//! With `elr` off (Kafka before KIP-966) there is no ELR, and the last ISR member is never
//! removed: it stays electable after any restart, the old "last replica standing" loss.
//!
//! This module only decides; `quorum` turns the result into a PartitionChange record.

use super::records::PartitionState;
use crate::types::{NodeId, TopicPartition};
use serde::{Deserialize, Serialize};

/// What the controller does with a partition whose ISR and ELR are both empty (KIP-966's
/// `unclean.recovery.strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UncleanRecovery {
    /// Stay offline until an ISR or ELR member returns (or unclean election, if the topic
    /// enables it).
    None,
    /// Elect the last known leader once it is live again, flagged unclean: what Kafka 4's
    /// controller does (`PartitionChangeBuilder.canElectLastKnownLeader`, on by default
    /// with ELR). It may have lost its unsynced tail, so this can lose records.
    #[default]
    Balanced,
}

/// The switches and topic settings one change is decided under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRules {
    /// KIP-966 eligible leader replicas.
    pub elr: bool,
    pub min_insync_replicas: usize,
    pub unclean_leader_election: bool,
    pub unclean_recovery: UncleanRecovery,
}

/// A change in the making: the current state and what the caller wants of it.
#[derive(Clone, Debug)]
pub struct PartitionChange<'a> {
    tp: &'a TopicPartition,
    current: &'a PartitionState,
    target_isr: Vec<NodeId>,
    /// Replicas that restarted after an unclean shutdown: never kept in the ELR.
    unclean_shutdown: Vec<NodeId>,
    /// The current leader may not stay leader (it is being fenced).
    leader_removed: bool,
}

/// How the leader of a built change was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// No leader change.
    Unchanged,
    Isr,
    Elr,
    /// The last known leader, by unclean recovery.
    LastKnownLeader,
    Unclean,
    /// The partition lost its leader and none could be elected.
    Offline,
}

impl<'a> PartitionChange<'a> {
    pub fn new(tp: &'a TopicPartition, current: &'a PartitionState) -> PartitionChange<'a> {
        PartitionChange {
            tp,
            current,
            target_isr: current.isr.clone(),
            unclean_shutdown: Vec::new(),
            leader_removed: false,
        }
    }

    pub fn target_isr(mut self, isr: Vec<NodeId>) -> Self {
        self.target_isr = isr;
        self
    }

    /// Takes `broker` out of the ISR (and out of leadership, if it leads).
    pub fn remove(mut self, broker: NodeId) -> Self {
        self.target_isr.retain(|&r| r != broker);
        self.leader_removed |= self.current.leader == Some(broker);
        self
    }

    /// `broker` restarted after an unclean shutdown: out of the ISR and never in the ELR.
    pub fn unclean_shutdown(mut self, broker: NodeId) -> Self {
        self.unclean_shutdown.push(broker);
        self.remove(broker)
    }

    /// The next state, or None when nothing changes. `is_live`: registered and unfenced.
    pub fn build(
        self,
        rules: &ChangeRules,
        is_live: impl Fn(NodeId) -> bool,
    ) -> Option<(PartitionState, Election)> {
        let current = self.current;
        let mut isr = self.target_isr.clone();
        if isr.is_empty() && !rules.elr {
            // Before KIP-966 the last ISR member is never removed.
            isr = current.isr.clone();
        }
        let (mut elr, mut last_known_leader) = self.target_elr(rules, &isr);
        let (leader, election) = self.elect(rules, &isr, &elr, &is_live);
        let mut unclean = current.unclean && leader == current.leader;
        match election {
            Election::Elr => {
                let leader = leader.expect("an ELR election names a leader");
                isr = vec![leader];
                elr.retain(|&r| r != leader);
            }
            Election::LastKnownLeader | Election::Unclean => {
                isr = vec![leader.expect("an unclean election names a leader")];
                elr.clear();
                unclean = true;
            }
            Election::Isr => unclean = false,
            Election::Unchanged | Election::Offline => {}
        }
        if rules.elr {
            if isr.is_empty() && current.leader.is_some() {
                // KIP-966: remember the leader the first time the partition goes leaderless.
                last_known_leader = current.leader;
            } else if leader.is_some() {
                last_known_leader = None;
            }
        }
        let leader_epoch = if leader != current.leader {
            current.leader_epoch.next()
        } else {
            current.leader_epoch
        };
        let next = PartitionState {
            replicas: current.replicas.clone(),
            isr,
            elr,
            last_known_leader,
            leader,
            leader_epoch,
            partition_epoch: current.partition_epoch.next(),
            unclean,
        };
        let same = PartitionState { partition_epoch: current.partition_epoch, ..next.clone() };
        if &same == current {
            return None;
        }
        assert!(
            next.leader.is_none_or(|l| next.unclean || next.isr.contains(&l)),
            "{}: leader {:?} outside isr {:?} and not unclean",
            self.tp,
            next.leader,
            next.isr
        );
        assert!(
            next.elr.iter().all(|r| !next.isr.contains(r)),
            "{}: elr {:?} overlaps isr {:?}",
            self.tp,
            next.elr,
            next.isr
        );
        Some((next, election))
    }

    /// Kafka's `maybePopulateTargetElr`: returns the ELR and the last known leader.
    fn target_elr(&self, rules: &ChangeRules, isr: &[NodeId]) -> (Vec<NodeId>, Option<NodeId>) {
        let current = self.current;
        if !rules.elr {
            return (Vec::new(), None);
        }
        if isr.len() >= rules.min_insync_replicas.max(1) {
            return (Vec::new(), None);
        }
        let elr: Vec<NodeId> = current
            .replicas
            .iter()
            .copied()
            .filter(|r| current.elr.contains(r) || current.isr.contains(r))
            .filter(|r| !isr.contains(r) && !self.unclean_shutdown.contains(r))
            .collect();
        (elr, current.last_known_leader)
    }

    /// Kafka's `electAnyLeader` (ONLINE, or UNCLEAN when the topic allows it).
    fn elect(
        &self,
        rules: &ChangeRules,
        isr: &[NodeId],
        elr: &[NodeId],
        is_live: &impl Fn(NodeId) -> bool,
    ) -> (Option<NodeId>, Election) {
        let current = self.current;
        let valid =
            |r: NodeId| (isr.contains(&r) || (isr.is_empty() && elr.contains(&r))) && is_live(r);
        if let Some(leader) = current.leader.filter(|&l| !self.leader_removed && valid(l)) {
            return (Some(leader), Election::Unchanged);
        }
        if let Some(leader) = current.replicas.iter().copied().find(|&r| valid(r)) {
            let how = if isr.contains(&leader) { Election::Isr } else { Election::Elr };
            return (Some(leader), how);
        }
        let recovery = rules.elr
            && rules.unclean_recovery == UncleanRecovery::Balanced
            && isr.is_empty()
            && elr.is_empty();
        if let Some(leader) = current.last_known_leader.filter(|&l| recovery && is_live(l)) {
            return (Some(leader), Election::LastKnownLeader);
        }
        if rules.unclean_leader_election {
            if let Some(leader) = current.replicas.iter().copied().find(|&r| is_live(r)) {
                return (Some(leader), Election::Unclean);
            }
        }
        (None, Election::Offline)
    }
}
