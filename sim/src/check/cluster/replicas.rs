//! What the brokers report: every replica's log, its roles, and the partition's committed
//! prefix (invariants 1 on the broker side, 2 and 3). Reads the committed metadata
//! ([`Metadata`]) for leaders, ISRs and unclean elections; owns nothing of the controllers.
//!
//! Work per event stays near O(log n) in the log length by remembering what was already
//! verified: per partition and pair of brokers the offset below which their logs agree, and
//! per broker the offset below which its log holds the committed prefix. A truncation or
//! overwrite lowers those marks to where the log changed; a restart resets them.

use std::collections::BTreeMap;

use kafkasim::types::{Epoch, NodeId, Offset, TopicPartition};

use super::log::{describe, Append, Difference, ReplicaLog};
use super::metadata::{nodes, Metadata};
use super::{BatchDigest, InvariantKind, Violation};

#[derive(Debug, Default)]
pub(super) struct Replicas {
    brokers: BTreeMap<NodeId, Broker>,
    partitions: BTreeMap<TopicPartition, Partition>,
}

#[derive(Debug, Default)]
struct Broker {
    alive: bool,
    /// How many times it started: a replica that restarted since it joined the ISR may
    /// legitimately lack what it had.
    starts: u64,
    logs: BTreeMap<TopicPartition, ReplicaLog>,
    /// The highest leader epoch reported per partition in this start.
    epochs: BTreeMap<TopicPartition, Epoch>,
    /// The partitions it leads now, and in which epoch.
    leading: BTreeMap<TopicPartition, Epoch>,
    /// Where a restart cut committed records from its log (unflushed, lost in a crash):
    /// outside Kafka's promise if it is then elected, until it refetched past them.
    crash_loss_from: BTreeMap<TopicPartition, Offset>,
}

#[derive(Debug, Default)]
struct Partition {
    /// Who reported leading each epoch first.
    leaders: BTreeMap<Epoch, NodeId>,
    /// The committed prefix: the highest HW exposed and the batches below it, as the
    /// leader that exposed them held them.
    exposed: Offset,
    exposed_by: Option<(NodeId, Epoch)>,
    committed: ReplicaLog,
    /// Per broker: its log holds the committed prefix unchanged below this offset.
    holds_committed_below: BTreeMap<NodeId, Offset>,
    /// Per pair (lower id first): their logs agree below this offset.
    agree_below: BTreeMap<(NodeId, NodeId), Offset>,
    /// The latest HW of the highest epoch that reported one, for `finish`.
    last_hw: Option<(Epoch, Offset)>,
}

/// Why the committed prefix is being checked against a broker's log.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Elected,
    Truncated(Offset),
    Overwrote(Offset),
    ExposedHw(Offset),
}

impl Replicas {
    pub(super) fn starts(&self, broker: NodeId) -> u64 {
        self.brokers.get(&broker).map_or(0, |b| b.starts)
    }

    pub(super) fn broker_started(
        &mut self,
        broker: NodeId,
        logs: &BTreeMap<TopicPartition, Vec<BatchDigest>>,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let b = self.brokers.entry(broker).or_default();
        b.alive = true;
        b.starts = b.starts.saturating_add(1);
        b.epochs.clear();
        b.leading.clear();
        let mut recovered = BTreeMap::new();
        for (tp, batches) in logs {
            let mut log = ReplicaLog::default();
            for &batch in batches {
                let outcome = log.append(batch);
                append_problem(broker, tp, batch, outcome, "recovered", &mut out);
            }
            recovered.insert(tp.clone(), log);
        }
        let old = std::mem::replace(&mut b.logs, recovered);
        for (tp, old_log) in &old {
            let exposed = self.partitions.get(tp).map_or(Offset::ZERO, |p| p.exposed);
            let leo = b.logs.get(tp).map_or(Offset::ZERO, |l| l.leo());
            if leo < old_log.leo() && leo < exposed {
                let from = b.crash_loss_from.entry(tp.clone()).or_insert(leo);
                *from = (*from).min(leo);
            }
        }
        for p in self.partitions.values_mut() {
            p.holds_committed_below.remove(&broker);
            p.agree_below.retain(|&(x, y), _| x != broker && y != broker);
        }
        out
    }

    pub(super) fn broker_stopped(&mut self, broker: NodeId) {
        let b = self.brokers.entry(broker).or_default();
        b.alive = false;
        b.leading.clear();
    }

    /// 1 (broker side) and 2 at election.
    pub(super) fn became_leader(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        self.epoch_grows(broker, tp, epoch, "leader", &mut out);
        let first = *self.partition(tp).leaders.entry(epoch).or_insert(broker);
        if first != broker {
            out.push(Violation {
                kind: InvariantKind::OneLeaderPerEpoch,
                detail: format!("{tp}: two leaders in {epoch}: {first} and {broker}"),
            });
        }
        if let Some(committed) = meta.epoch(tp, epoch) {
            if committed.leader != Some(broker) {
                out.push(Violation {
                    kind: InvariantKind::OneLeaderPerEpoch,
                    detail: format!(
                        "{tp}: {broker} became leader in {epoch}, whose committed leader is {} \
                         ({})",
                        committed.leader.map_or("none".to_string(), |l| l.to_string()),
                        committed.partition_epoch
                    ),
                });
            }
        }
        let b = self.brokers.entry(broker).or_default();
        b.leading.insert(tp.clone(), epoch);
        b.logs.entry(tp.clone()).or_default();
        // A broker that applies an old image late leads an epoch the partition has moved
        // past: it is not a later leader than the one that exposed the prefix, and the
        // newer epoch fences it (group-safe seed 872: broker-2, cut off the controller,
        // took e1 after broker-0 had exposed records in e2).
        let exposed_in = self.partition(tp).exposed_by.map(|(_, e)| e);
        if exposed_in.is_none_or(|newer| epoch >= newer) {
            self.check_committed(meta, broker, tp, epoch, Trigger::Elected, &mut out);
        }
        out
    }

    pub(super) fn became_follower(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        leader: NodeId,
        epoch: Epoch,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        self.epoch_grows(broker, tp, epoch, "follower", &mut out);
        let committed = meta.epoch(tp, epoch).and_then(|e| e.leader);
        if let Some(committed) = committed.filter(|&c| c != leader) {
            out.push(Violation {
                kind: InvariantKind::OneLeaderPerEpoch,
                detail: format!(
                    "{tp}: {broker} follows {leader} in {epoch}, whose committed leader is \
                     {committed}"
                ),
            });
        }
        let b = self.brokers.entry(broker).or_default();
        b.leading.remove(tp);
        b.logs.entry(tp.clone()).or_default();
        out
    }

    pub(super) fn appended(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        batch: BatchDigest,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let exposed = self.partition(tp).exposed;
        let b = self.brokers.entry(broker).or_default();
        let log = b.logs.entry(tp.clone()).or_default();
        let outcome = log.append(batch);
        let leo = log.leo();
        if leo >= exposed {
            b.crash_loss_from.remove(tp);
        }
        let leading = b.leading.get(tp).copied();
        append_problem(broker, tp, batch, outcome, "appended", &mut out);
        if let Append::Overwrote { .. } = outcome {
            self.changed_from(broker, tp, batch.base);
            if let Some(epoch) = leading {
                let trigger = Trigger::Overwrote(batch.base);
                self.check_committed(meta, broker, tp, epoch, trigger, &mut out);
            }
        }
        out
    }

    /// 2 when a leader's own log is cut.
    pub(super) fn truncated(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        to: Offset,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let b = self.brokers.entry(broker).or_default();
        let cut = b.logs.entry(tp.clone()).or_default().truncate(to);
        let leading = b.leading.get(tp).copied();
        if let Some(cut) = cut {
            self.changed_from(broker, tp, cut);
            if let Some(epoch) = leading {
                self.check_committed(meta, broker, tp, epoch, Trigger::Truncated(to), &mut out);
            }
        }
        out
    }

    /// 2 (the committed prefix grows with the leader's log) and 3 (in-sync replicas hold
    /// the leader's batches below the HW).
    pub(super) fn high_watermark(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        hw: Offset,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let p = self.partition(tp);
        if p.last_hw.is_none_or(|(e, _)| epoch >= e) {
            p.last_hw = Some((epoch, hw));
        }
        let leo = self.log(broker, tp).map_or(Offset::ZERO, |l| l.leo());
        if hw > leo {
            out.push(Violation {
                kind: InvariantKind::CommittedPrefix,
                detail: format!(
                    "{tp}: {broker} exposed hw {hw} in {epoch} above its own leo {leo}"
                ),
            });
        }
        let hw = hw.min(leo);
        // A deposed leader that has not heard of its successor yet may still move its HW
        // (Kafka's zombie leader): what it exposes is judged by the client history, not
        // taken as committed over a newer epoch's log.
        if meta.latest_epoch(tp).is_some_and(|latest| latest > epoch) {
            return out;
        }
        self.extend_committed(meta, broker, tp, epoch, hw, &mut out);
        self.in_sync_agree(meta, broker, tp, epoch, hw, &mut out);
        out
    }

    /// End state: every pair of live replicas agrees below the last HW they both reach.
    pub(super) fn finish(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        for (tp, p) in &self.partitions {
            let hw = p.last_hw.map_or(Offset::ZERO, |(_, hw)| hw);
            let live: Vec<(NodeId, &ReplicaLog)> = self
                .brokers
                .iter()
                .filter(|(_, b)| b.alive)
                .filter_map(|(&id, b)| b.logs.get(tp).map(|l| (id, l)))
                .collect();
            for (i, &(a, log_a)) in live.iter().enumerate() {
                for &(b, log_b) in &live[i + 1..] {
                    let to = hw.min(log_a.leo()).min(log_b.leo());
                    if let Some(diff) = log_a.first_difference(log_b, Offset::ZERO, to) {
                        out.push(Violation {
                            kind: InvariantKind::ReplicasAgree,
                            detail: format!(
                                "{tp}: at the end live replicas {a} and {b} differ below {to} \
                                 (last hw {hw}): {a} has {}, {b} has {}",
                                describe(diff.ours.as_ref()),
                                describe(diff.theirs.as_ref())
                            ),
                        });
                    }
                }
            }
        }
        out
    }

    fn partition(&mut self, tp: &TopicPartition) -> &mut Partition {
        self.partitions.entry(tp.clone()).or_default()
    }

    fn log(&self, broker: NodeId, tp: &TopicPartition) -> Option<&ReplicaLog> {
        self.brokers.get(&broker)?.logs.get(tp)
    }

    /// 1: within one start, a broker's leader epoch for a partition never goes back.
    fn epoch_grows(
        &mut self,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        role: &str,
        out: &mut Vec<Violation>,
    ) {
        let b = self.brokers.entry(broker).or_default();
        let highest = b.epochs.entry(tp.clone()).or_insert(epoch);
        if epoch < *highest {
            out.push(Violation {
                kind: InvariantKind::OneLeaderPerEpoch,
                detail: format!(
                    "{tp}: {broker} became {role} in {epoch} after {} in the same start (#{})",
                    *highest, b.starts
                ),
            });
        } else {
            *highest = epoch;
        }
    }

    /// A broker's log changed from `from` on: lower what was verified about it.
    fn changed_from(&mut self, broker: NodeId, tp: &TopicPartition, from: Offset) {
        let p = self.partition(tp);
        if let Some(below) = p.holds_committed_below.get_mut(&broker) {
            *below = (*below).min(from);
        }
        for (&(x, y), below) in p.agree_below.iter_mut() {
            if x == broker || y == broker {
                *below = (*below).min(from);
            }
        }
    }

    /// 2: `broker`'s log holds every committed batch unchanged. A loss is not reported when
    /// an allowed unclean election made it the leader (in this epoch, or in one before it
    /// that no other broker led since), or when the broker's own restart cut those
    /// records (unflushed data lost in a crash); either way the committed prefix is rebuilt
    /// from this broker's log, so one loss is reported once.
    fn check_committed(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        trigger: Trigger,
        out: &mut Vec<Violation>,
    ) {
        let p = self.partitions.entry(tp.clone()).or_default();
        let b = self.brokers.entry(broker).or_default();
        let log = b.logs.entry(tp.clone()).or_default();
        let from = p.holds_committed_below.get(&broker).copied().unwrap_or(Offset::ZERO);
        let (count, first) = p.committed.missing_from(log, from, p.exposed);
        let Some(Difference { ours, theirs }) = first else {
            p.holds_committed_below.insert(broker, p.exposed);
            return;
        };
        let unclean = meta.unclean_lead(tp, broker, epoch);
        let crash_loss = b.crash_loss_from.get(tp).copied();
        let lost_base = ours.map_or(Offset::ZERO, |o| o.base);
        let excused = unclean.is_some_and(|e| e.unclean_allowed)
            || crash_loss.is_some_and(|from| lost_base >= from);
        if !excused {
            let when = match trigger {
                Trigger::Elected => format!("{broker} became leader in {epoch}"),
                Trigger::Truncated(to) => format!("leader {broker} ({epoch}) truncated to {to}"),
                Trigger::Overwrote(at) => format!("leader {broker} ({epoch}) overwrote from {at}"),
                Trigger::ExposedHw(hw) => format!("{broker} exposed hw {hw} in {epoch}"),
            };
            let (exposer, exposer_epoch) = p.exposed_by.unwrap_or((broker, epoch));
            let note = if unclean.is_some() {
                " (elected outside the isr, though the topic disallows unclean election)"
            } else {
                ""
            };
            out.push(Violation {
                kind: InvariantKind::CommittedPrefix,
                detail: format!(
                    "{tp}: {when}{note} lacking {count} committed batch(es) below hw {} \
                     (exposed by {exposer} in {exposer_epoch}): first {}, where it has {} \
                     (leo {})",
                    p.exposed,
                    describe(ours.as_ref()),
                    describe(theirs.as_ref()),
                    log.leo()
                ),
            });
        }
        rebase(p, broker, epoch, log);
    }

    /// 2: a HW above the committed prefix adds the exposing leader's batches to it (after
    /// checking that leader holds the prefix so far).
    fn extend_committed(
        &mut self,
        meta: &Metadata,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        hw: Offset,
        out: &mut Vec<Violation>,
    ) {
        if hw <= self.partition(tp).exposed {
            return;
        }
        self.check_committed(meta, broker, tp, epoch, Trigger::ExposedHw(hw), out);
        let p = self.partitions.entry(tp.clone()).or_default();
        let Some(log) = self.brokers.get(&broker).and_then(|b| b.logs.get(tp)) else { return };
        for &batch in log.overlapping(p.exposed, hw) {
            if batch.base >= p.committed.leo() {
                p.committed.append(batch);
            }
        }
        p.exposed = hw;
        p.exposed_by = Some((broker, epoch));
        p.holds_committed_below.insert(broker, hw);
    }

    /// 3: every alive ISR member of this epoch that has not restarted since it joined holds
    /// the leader's batches below min(hw, its leo), checked from where the pair last agreed.
    fn in_sync_agree(
        &mut self,
        meta: &Metadata,
        leader: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        hw: Offset,
        out: &mut Vec<Violation>,
    ) {
        let Some(committed) = meta.epoch(tp, epoch) else { return };
        let Some(leader_log) = self.log(leader, tp) else { return };
        let mut agreed = Vec::new();
        for &follower in committed.isr.iter().filter(|&&f| f != leader) {
            let Some(b) = self.brokers.get(&follower) else { continue };
            let in_sync_since_start = meta.added_in(tp, follower) == Some(b.starts.max(1));
            let Some(log) = b.logs.get(tp).filter(|_| b.alive && in_sync_since_start) else {
                continue;
            };
            let pair = (leader.min(follower), leader.max(follower));
            let p = self.partitions.get(tp);
            let from = p.and_then(|p| p.agree_below.get(&pair)).copied().unwrap_or(Offset::ZERO);
            let to = hw.min(leader_log.leo()).min(log.leo());
            if from >= to {
                continue;
            }
            if let Some(diff) = leader_log.first_difference(log, from, to) {
                out.push(Violation {
                    kind: InvariantKind::ReplicasAgree,
                    detail: format!(
                        "{tp}: in-sync {follower} differs from leader {leader} ({epoch}) below \
                         hw {hw} (isr {} at {}): {leader} has {}, {follower} has {}",
                        nodes(&committed.isr),
                        committed.partition_epoch,
                        describe(diff.ours.as_ref()),
                        describe(diff.theirs.as_ref())
                    ),
                });
            }
            agreed.push((pair, to));
        }
        let p = self.partition(tp);
        for (pair, to) in agreed {
            p.agree_below.insert(pair, to);
        }
    }
}

/// Rebuilds the committed prefix from `broker`'s log after a loss (reported or excused),
/// so later leaders are held to what consumers can now read.
fn rebase(p: &mut Partition, broker: NodeId, epoch: Epoch, log: &ReplicaLog) {
    let exposed = p.exposed.min(log.leo());
    let mut committed = ReplicaLog::default();
    for &batch in log.overlapping(Offset::ZERO, exposed) {
        committed.append(batch);
    }
    p.committed = committed;
    p.exposed = exposed;
    p.exposed_by = Some((broker, epoch));
    p.holds_committed_below.clear();
    p.holds_committed_below.insert(broker, exposed);
}

/// 3 at the source: a replica's log only grows at its end unless it truncated first.
fn append_problem(
    broker: NodeId,
    tp: &TopicPartition,
    batch: BatchDigest,
    outcome: Append,
    verb: &str,
    out: &mut Vec<Violation>,
) {
    let problem = match outcome {
        Append::AtEnd | Append::Overwrote { after_truncation: true, .. } => return,
        Append::Overwrote { leo_before, .. } => {
            format!("at {} below its leo {leo_before} without a truncation first", batch.base)
        }
        Append::Malformed => "a batch whose last offset is below its base".to_string(),
    };
    out.push(Violation {
        kind: InvariantKind::ReplicasAgree,
        detail: format!("{tp}: {broker} {verb} {} {problem}", describe(Some(&batch))),
    });
}
