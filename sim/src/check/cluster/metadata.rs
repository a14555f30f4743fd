//! What the controllers report: committed partition changes (invariants 1 and 5 on the
//! metadata side) and Raft's own (one leader per term, terms only grow, committed entries
//! never change). Owns the committed view of every partition that the replica checks read
//! (leader and ISR per leader epoch, unclean elections, when each ISR member joined); does
//! not look at replica logs.
//!
//! Controllers apply the same committed log at different times, so nothing here compares a
//! controller's report with "the latest" one: a change is keyed by its partition epoch, and
//! order is checked between neighbouring partition epochs, whoever reported them.

use std::collections::{BTreeMap, BTreeSet};

use kafkasim::controller::raft::LogIndex;
use kafkasim::types::{Epoch, NodeId, PartitionEpoch, Term, TopicPartition};

use super::{InvariantKind, Violation};

#[derive(Debug, Default)]
pub(super) struct Metadata {
    partitions: BTreeMap<TopicPartition, PartitionMeta>,
    raft: RaftModel,
}

/// One committed partition change as reported by the first controller that applied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub controller: NodeId,
    pub leader: Option<NodeId>,
    pub leader_epoch: Epoch,
    pub partition_epoch: PartitionEpoch,
    pub isr: BTreeSet<NodeId>,
    pub unclean: bool,
    pub unclean_allowed: bool,
}

/// The committed view of one leader epoch.
#[derive(Clone, Debug)]
pub(super) struct EpochMeta {
    pub leader: Option<NodeId>,
    /// The ISR of the epoch's latest change (highest partition epoch seen).
    pub isr: BTreeSet<NodeId>,
    pub partition_epoch: PartitionEpoch,
    /// Some change of this epoch elected its leader outside the ISR.
    pub unclean: bool,
    pub unclean_allowed: bool,
}

#[derive(Debug, Default)]
struct PartitionMeta {
    /// Leader epoch and leader by partition epoch: enough to check order and agreement.
    changes: BTreeMap<PartitionEpoch, Change>,
    epochs: BTreeMap<Epoch, EpochMeta>,
    /// Each member of the latest ISR and the broker start count it was (last) added in.
    added_in: BTreeMap<NodeId, u64>,
}

#[derive(Debug, Default)]
struct RaftModel {
    leaders: BTreeMap<Term, NodeId>,
    terms: BTreeMap<NodeId, Term>,
    /// Index -> (term, digest, first controller that applied it).
    committed: BTreeMap<LogIndex, (Term, u64, NodeId)>,
}

impl Metadata {
    pub(super) fn epoch(&self, tp: &TopicPartition, epoch: Epoch) -> Option<&EpochMeta> {
        self.partitions.get(tp)?.epochs.get(&epoch)
    }

    /// The allowed unclean election that made `broker` the leader of `tp` in `epoch`: that
    /// epoch's own, or one of the epochs before it back to the last one another broker
    /// led (swarm seed 7461: elected uncleanly in e2, fenced into the ELR in e3 with no
    /// leader, elected from the ELR in e4; its log lacked what the unclean election lost).
    pub(super) fn unclean_lead(
        &self,
        tp: &TopicPartition,
        broker: NodeId,
        epoch: Epoch,
    ) -> Option<&EpochMeta> {
        let epochs = &self.partitions.get(tp)?.epochs;
        epochs
            .range(..=epoch)
            .rev()
            .take_while(|(_, e)| e.leader.is_none() || e.leader == Some(broker))
            .map(|(_, e)| e)
            .find(|e| e.unclean && e.leader == Some(broker))
    }

    /// The newest committed leader epoch of `tp`.
    pub(super) fn latest_epoch(&self, tp: &TopicPartition) -> Option<Epoch> {
        self.partitions.get(tp)?.epochs.keys().next_back().copied()
    }

    /// The broker start count in which `broker` last joined the latest ISR of `tp`.
    pub(super) fn added_in(&self, tp: &TopicPartition, broker: NodeId) -> Option<u64> {
        self.partitions.get(tp)?.added_in.get(&broker).copied()
    }

    /// Invariants 1 (metadata side) and 5. `starts` gives a broker's start count.
    pub(super) fn partition_changed(
        &mut self,
        tp: &TopicPartition,
        change: Change,
        starts: impl Fn(NodeId) -> u64,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        leader_in_isr(tp, &change, &mut out);
        let meta = self.partitions.entry(tp.clone()).or_default();
        let pe = change.partition_epoch;
        if let Some(seen) = meta.changes.get(&pe) {
            same_change(tp, seen, &change, &mut out);
            return out;
        }
        epoch_order(tp, meta, &change, &mut out);
        let latest_before = meta.changes.last_key_value().map(|(&pe, c)| (pe, c.isr.clone()));
        let is_latest = latest_before.as_ref().is_none_or(|(latest, _)| pe > *latest);
        if is_latest {
            let before = latest_before.map(|(_, isr)| isr).unwrap_or_default();
            meta.added_in.retain(|m, _| change.isr.contains(m));
            for &member in change.isr.difference(&before) {
                // A broker that has not started yet joins in its first start.
                meta.added_in.insert(member, starts(member).max(1));
            }
        }
        let epoch = meta.epochs.entry(change.leader_epoch).or_insert_with(|| EpochMeta {
            leader: change.leader,
            isr: change.isr.clone(),
            partition_epoch: pe,
            unclean: false,
            unclean_allowed: change.unclean_allowed,
        });
        if pe >= epoch.partition_epoch {
            epoch.isr = change.isr.clone();
            epoch.partition_epoch = pe;
        }
        if change.unclean {
            epoch.unclean = true;
            epoch.unclean_allowed = change.unclean_allowed;
        }
        meta.changes.insert(pe, change);
        out
    }

    pub(super) fn raft_term(
        &mut self,
        controller: NodeId,
        term: Term,
        leader: bool,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let raft = &mut self.raft;
        let before = raft.terms.entry(controller).or_insert(term);
        if term < *before {
            out.push(Violation {
                kind: InvariantKind::Raft,
                detail: format!(
                    "metadata: controller {controller}'s term went back from {before} to {term}"
                ),
            });
        } else {
            *before = term;
        }
        if leader {
            let first = *raft.leaders.entry(term).or_insert(controller);
            if first != controller {
                out.push(Violation {
                    kind: InvariantKind::Raft,
                    detail: format!("metadata: two leaders in {term}: {first} and {controller}"),
                });
            }
        }
        out
    }

    pub(super) fn raft_committed(
        &mut self,
        controller: NodeId,
        index: LogIndex,
        term: Term,
        digest: u64,
    ) -> Vec<Violation> {
        let (first_term, first_digest, first) =
            *self.raft.committed.entry(index).or_insert((term, digest, controller));
        if (first_term, first_digest) == (term, digest) {
            return Vec::new();
        }
        vec![Violation {
            kind: InvariantKind::Raft,
            detail: format!(
                "metadata: committed entry {index} applied by {first} as {first_term} digest \
                 {first_digest:#018x}, by {controller} as {term} digest {digest:#018x}"
            ),
        }]
    }
}

/// 5: the chosen leader is in the ISR, unless the change says it was an allowed unclean
/// election.
fn leader_in_isr(tp: &TopicPartition, change: &Change, out: &mut Vec<Violation>) {
    let Some(leader) = change.leader else { return };
    if change.isr.contains(&leader) || (change.unclean && change.unclean_allowed) {
        return;
    }
    let why = if change.unclean {
        "marked unclean, but the topic disallows unclean election"
    } else {
        "not marked unclean"
    };
    out.push(Violation {
        kind: InvariantKind::LeaderInIsr,
        detail: format!(
            "{tp}: controller {} committed leader {leader} in {} ({}) outside isr {}: {why}",
            change.controller,
            change.leader_epoch,
            change.partition_epoch,
            nodes(&change.isr)
        ),
    });
}

/// Two controllers applied one partition epoch differently.
fn same_change(tp: &TopicPartition, seen: &Change, change: &Change, out: &mut Vec<Violation>) {
    let same_leader = (seen.leader, seen.leader_epoch) == (change.leader, change.leader_epoch);
    if same_leader && seen.isr == change.isr {
        return;
    }
    let kind = if same_leader { InvariantKind::Raft } else { InvariantKind::OneLeaderPerEpoch };
    out.push(Violation {
        kind,
        detail: format!(
            "{tp}: {} applied as leader {} in {} isr {} by controller {}, as leader {} in {} \
             isr {} by controller {}",
            change.partition_epoch,
            leader(seen.leader),
            seen.leader_epoch,
            nodes(&seen.isr),
            seen.controller,
            leader(change.leader),
            change.leader_epoch,
            nodes(&change.isr),
            change.controller
        ),
    });
}

/// 1: leader epochs grow with partition epochs, and one leader epoch has one leader.
fn epoch_order(
    tp: &TopicPartition,
    meta: &PartitionMeta,
    change: &Change,
    out: &mut Vec<Violation>,
) {
    let pe = change.partition_epoch;
    let le = change.leader_epoch;
    let before = meta.changes.range(..pe).next_back().map(|(_, c)| c);
    let after = meta.changes.range(pe.next()..).next().map(|(_, c)| c);
    let back = [before.filter(|c| c.leader_epoch > le), after.filter(|c| c.leader_epoch < le)];
    for other in back.into_iter().flatten() {
        out.push(Violation {
            kind: InvariantKind::OneLeaderPerEpoch,
            detail: format!(
                "{tp}: committed leader epoch goes back: {} has {} (controller {}), {} has {} \
                 (controller {})",
                other.partition_epoch,
                other.leader_epoch,
                other.controller,
                pe,
                le,
                change.controller
            ),
        });
    }
    if let Some(epoch) = meta.epochs.get(&le) {
        if epoch.leader != change.leader {
            out.push(Violation {
                kind: InvariantKind::OneLeaderPerEpoch,
                detail: format!(
                    "{tp}: two committed leaders in {le}: {} ({}) and {} ({}, controller {})",
                    leader(epoch.leader),
                    epoch.partition_epoch,
                    leader(change.leader),
                    pe,
                    change.controller
                ),
            });
        }
    }
}

pub(super) fn nodes(set: &BTreeSet<NodeId>) -> String {
    let names: Vec<String> = set.iter().map(|n| n.to_string()).collect();
    format!("[{}]", names.join(", "))
}

fn leader(leader: Option<NodeId>) -> String {
    leader.map(|l| l.to_string()).unwrap_or_else(|| "none".to_string())
}
