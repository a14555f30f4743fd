//! The rules that turn what the world already sees into coverage marks: node events by
//! kind, broker responses by error code, broker facts, controller replies, committed
//! partition changes (compared with the state before them), recovery reports, disk errors,
//! and consumer and group-member events. Pure functions of their input, except `Watch`,
//! which remembers the little history a few marks need (the partition state before a
//! change, the controller terms seen, each producer's id).

use super::Mark;
use kafkasim::broker::Fact;
use kafkasim::client::{CommitResult, ConsumerEvent, MemberEvent, ResetReason, TruncationOutcome};
use kafkasim::controller::{ControllerError, ControllerResponse};
use kafkasim::log::RecoveryReport;
use kafkasim::protocol::{ErrorCode, Response};
use kafkasim::replication::TruncationRule;
use kafkasim::types::{NodeId, PartitionEpoch, TopicPartition};
use std::collections::BTreeMap;

/// The mark a node event proves, by its kind (and fields).
pub fn from_event(kind: &str, fields: &BTreeMap<String, String>) -> Option<Mark> {
    let field = |name: &str| fields.get(name).map_or("", String::as_str);
    Some(match kind {
        "fault-skipped" => Mark::FaultSkipped,
        "malformed-frame" => Mark::MalformedFrame,
        "fault-reset-after-append" => Mark::ResponseLostAfterAppend,
        "log-truncation" => Mark::ConsumerLogTruncation,
        "member-fenced" => Mark::MemberFenced,
        "partitions-lost" => Mark::PartitionsLost,
        "static-member-replaced" => Mark::StaticMemberReplaced,
        "member-removed" if field("reason") == "session timeout" => Mark::SessionTimeoutRemoval,
        "generation-started" if field("generation").parse::<i64>().is_ok_and(|g| g > 1) => {
            Mark::Rebalance
        }
        "raft-journal-cut" => Mark::RaftJournalCut,
        "controller-halted" => Mark::ControllerHalted,
        "meta-corrupt" => Mark::MetaCorrupt,
        "broker-fenced" => Mark::BrokerFenced,
        _ => return None,
    })
}

/// The marks a response a broker sends proves, by its error codes.
pub fn from_response(body: &Response) -> Vec<Mark> {
    let codes: Vec<ErrorCode> = match body {
        Response::Produce(r) => r.partitions.iter().map(|p| p.error).collect(),
        Response::Fetch(r) => r.partitions.iter().map(|p| p.error).collect(),
        Response::OffsetsForLeaderEpoch(r) => r.partitions.iter().map(|p| p.error).collect(),
        _ => Vec::new(),
    };
    let is_produce = matches!(body, Response::Produce(_));
    let mut marks: Vec<Mark> = codes
        .into_iter()
        .filter_map(|code| match code {
            ErrorCode::OutOfOrderSequenceNumber => Some(Mark::OutOfOrderSequence),
            ErrorCode::InvalidProducerEpoch => Some(Mark::ProducerFenced),
            ErrorCode::NotEnoughReplicas if is_produce => Some(Mark::NotEnoughReplicas),
            ErrorCode::StaleBrokerEpoch => Some(Mark::StaleReplicaFetch),
            ErrorCode::FencedLeaderEpoch => Some(Mark::FencedLeaderEpoch),
            _ => None,
        })
        .collect();
    marks.dedup();
    marks
}

/// The mark a broker fact proves; `min_insync` and `replication_factor` are its topic's.
pub fn from_fact(fact: &Fact, min_insync: usize, replication_factor: usize) -> Option<Mark> {
    match fact {
        Fact::Truncated { to, from, by, .. } if to < from => Some(match by {
            TruncationRule::LeaderEpoch => Mark::TruncationByLeaderEpoch,
            TruncationRule::HighWatermark => Mark::TruncationToHighWatermark,
        }),
        Fact::DuplicateBatch { .. } => Some(Mark::IdempotentDuplicate),
        Fact::AcksAllFailed { error, .. } => match error {
            ErrorCode::NotLeaderOrFollower => Some(Mark::AcksAllLeaderChange),
            ErrorCode::NotEnoughReplicasAfterAppend => Some(Mark::AcksAllBelowMinIsr),
            ErrorCode::RequestTimedOut => Some(Mark::AcksAllTimedOut),
            _ => None,
        },
        Fact::AckedAll { isr, .. }
            if isr.len() == min_insync && min_insync < replication_factor =>
        {
            Some(Mark::AckedAtMinIsr)
        }
        Fact::BecameLeader { tp, epoch, .. }
            if tp.topic == kafkasim::group::OFFSETS_TOPIC && epoch.0 > 0 =>
        {
            Some(Mark::CoordinatorFailover)
        }
        _ => None,
    }
}

/// The mark a controller's reply proves.
pub fn from_controller_response(response: &ControllerResponse) -> Option<Mark> {
    match response {
        ControllerResponse::AlterPartition(Err(error)) => match error {
            ControllerError::IneligibleReplica { .. } => {
                Some(Mark::AlterPartitionIneligibleReplica)
            }
            ControllerError::InvalidUpdateVersion { .. }
            | ControllerError::FencedLeaderEpoch { .. } => Some(Mark::AlterPartitionStale),
            _ => None,
        },
        ControllerResponse::BrokerHeartbeat(Err(ControllerError::StaleBrokerEpoch { .. })) => {
            Some(Mark::StaleBrokerEpochHeartbeat)
        }
        _ => None,
    }
}

/// The marks one partition's log recovery proves.
pub fn from_recovery(report: &RecoveryReport) -> Vec<Mark> {
    let mut marks: Vec<Mark> = report
        .cuts
        .iter()
        .map(|cut| {
            if cut.reason.contains("crc mismatch") {
                Mark::RecoveryCutCrcMismatch
            } else if cut.reason.contains("invalid batch: truncated")
                || cut.reason.contains("invalid batch: unsupported magic 0")
            {
                // A crash's tail: a batch cut short, or zeros where a write was lost.
                Mark::RecoveryCutTornWrite
            } else {
                Mark::RecoveryCutMalformed
            }
        })
        .collect();
    if report.skipped_offsets.is_some() {
        marks.push(Mark::RecoverySkippedOffsets);
    }
    // Producer snapshots are `<dir>/<offset>.snapshot`, as Kafka names them.
    if report.deleted_files.iter().any(|path| path.ends_with(".snapshot")) {
        marks.push(Mark::ProducerSnapshotDeleted);
    }
    marks.sort();
    marks.dedup();
    marks
}

/// The mark a consumer event proves.
pub fn from_consumer_event(event: &ConsumerEvent) -> Option<Mark> {
    match event {
        ConsumerEvent::PositionReset { reason: ResetReason::OutOfRange, .. } => {
            Some(Mark::ConsumerOutOfRangeReset)
        }
        ConsumerEvent::PositionReset { reason: ResetReason::LogTruncation, .. }
        | ConsumerEvent::LogTruncation { outcome: TruncationOutcome::Reset, .. } => {
            Some(Mark::ConsumerResetAfterTruncation)
        }
        ConsumerEvent::CorruptRecord { .. } => Some(Mark::ConsumerCorruptRecord),
        _ => None,
    }
}

/// The mark a group member's event proves (its consumer's events included).
pub fn from_member_event(event: &MemberEvent) -> Option<Mark> {
    match event {
        MemberEvent::CommitCompleted { result, .. } => match result {
            CommitResult::Err(ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId) => {
                Some(Mark::StaleGenerationCommit)
            }
            CommitResult::Err(ErrorCode::NotCoordinator) => Some(Mark::CommitNotCoordinator),
            CommitResult::Indeterminate => Some(Mark::CommitIndeterminate),
            _ => None,
        },
        MemberEvent::Consumer(event) => from_consumer_event(event),
        _ => None,
    }
}

/// Which request a committed metadata batch carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOrigin {
    /// A leader's AlterPartition (the batch holds only its PartitionChange).
    AlterPartition,
    /// The controller fenced a broker (session expiry).
    Fence,
    /// A broker registered (after an unclean shutdown, its ISR and ELR places go).
    Registration,
    /// A broker was unfenced (leaderless partitions get a leader).
    Unfence,
}

/// One committed partition state, as the marks compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSeen {
    pub partition_epoch: PartitionEpoch,
    pub leader: Option<NodeId>,
    pub isr: Vec<NodeId>,
    pub elr: Vec<NodeId>,
    pub unclean: bool,
}

/// What a few marks need to remember across observations.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    /// The newest committed state per partition (every controller commits the same
    /// records; the first to report a partition epoch is the one compared).
    partitions: BTreeMap<TopicPartition, PartitionSeen>,
    /// The highest term a controller became active in.
    active_term: Option<u64>,
    /// Per producer process: its current producer id (a restart is a new process).
    producer_ids: BTreeMap<u64, i64>,
}

impl Watch {
    /// A partition created: its first state, the baseline of its first change.
    pub fn partition_created(&mut self, tp: &TopicPartition, replicas: &[NodeId]) {
        self.partitions.entry(tp.clone()).or_insert_with(|| PartitionSeen {
            partition_epoch: PartitionEpoch(0),
            leader: replicas.first().copied(),
            isr: replicas.to_vec(),
            elr: Vec::new(),
            unclean: false,
        });
    }

    /// A committed PartitionChange: the marks of what changed since the state before it.
    /// `unclean_allowed`: the topic enables unclean election (else an unclean leader came
    /// from KIP-966 unclean recovery).
    pub fn partition_changed(
        &mut self,
        tp: &TopicPartition,
        next: PartitionSeen,
        origin: ChangeOrigin,
        unclean_allowed: bool,
    ) -> Vec<Mark> {
        let Some(previous) = self.partitions.get(tp) else {
            self.partitions.insert(tp.clone(), next);
            return Vec::new();
        };
        if next.partition_epoch <= previous.partition_epoch {
            return Vec::new(); // another controller's report of a change already compared
        }
        let marks = change_marks(previous, &next, origin, unclean_allowed);
        self.partitions.insert(tp.clone(), next);
        marks
    }

    /// A controller became active in `term`: a failover when an earlier term had one.
    pub fn controller_active(&mut self, term: u64) -> Option<Mark> {
        let failover = self.active_term.is_some_and(|held| held < term);
        if self.active_term.is_none_or(|held| held < term) {
            self.active_term = Some(term);
        }
        failover.then_some(Mark::ControllerFailover)
    }

    /// A producer process's producer id, as its producer now holds it: a new id replacing
    /// an older one in the same process is a session reset.
    pub fn producer_id(&mut self, process: u64, producer_id: i64) -> Option<Mark> {
        let previous = self.producer_ids.insert(process, producer_id);
        previous.is_some_and(|held| held != producer_id).then_some(Mark::ProducerSessionReset)
    }
}

/// The marks of one partition change from `previous` to `next`.
fn change_marks(
    previous: &PartitionSeen,
    next: &PartitionSeen,
    origin: ChangeOrigin,
    unclean_allowed: bool,
) -> Vec<Mark> {
    let mut marks = Vec::new();
    if next.leader != previous.leader {
        marks.push(match next.leader {
            None => Mark::PartitionOffline,
            Some(_) if next.unclean && unclean_allowed => Mark::UncleanElection,
            Some(_) if next.unclean => Mark::UncleanRecovery,
            Some(leader) if previous.elr.contains(&leader) => Mark::ElrElection,
            Some(_) => Mark::CleanElection,
        });
    }
    let left_isr = previous.isr.iter().any(|r| !next.isr.contains(r));
    let joined_isr = next.isr.iter().any(|r| !previous.isr.contains(r));
    match origin {
        ChangeOrigin::AlterPartition if left_isr => marks.push(Mark::IsrShrinkByLeader),
        ChangeOrigin::AlterPartition if joined_isr => marks.push(Mark::IsrExpandByLeader),
        ChangeOrigin::Fence | ChangeOrigin::Registration if left_isr => {
            marks.push(Mark::IsrShrinkByController)
        }
        _ => {}
    }
    let left_elr = previous.elr.iter().any(|r| !next.elr.contains(r) && next.leader != Some(*r));
    if origin == ChangeOrigin::Registration && (left_isr || left_elr) {
        marks.push(Mark::UncleanShutdownRegistration);
    }
    if next.isr.is_empty() && !previous.isr.is_empty() {
        marks.push(Mark::IsrEmptied);
    }
    if next.elr.iter().any(|r| !previous.elr.contains(r)) {
        marks.push(Mark::ElrGrew);
    }
    if left_elr {
        marks.push(Mark::ElrShrank);
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(epoch: u32, leader: Option<u32>, isr: &[u32], elr: &[u32]) -> PartitionSeen {
        PartitionSeen {
            partition_epoch: PartitionEpoch(epoch),
            leader: leader.map(NodeId),
            isr: isr.iter().copied().map(NodeId).collect(),
            elr: elr.iter().copied().map(NodeId).collect(),
            unclean: false,
        }
    }

    #[test]
    fn partition_changes_name_the_election_and_the_isr_move() {
        let tp = TopicPartition::new("t", 0);
        let mut watch = Watch::default();
        watch.partition_created(&tp, &[NodeId(0), NodeId(1), NodeId(2)]);
        let shrink = seen(1, Some(0), &[0, 1], &[]);
        let marks =
            watch.partition_changed(&tp, shrink.clone(), ChangeOrigin::AlterPartition, false);
        assert_eq!(marks, vec![Mark::IsrShrinkByLeader]);
        let again = watch.partition_changed(&tp, shrink, ChangeOrigin::AlterPartition, false);
        assert!(again.is_empty(), "a second controller's report of epoch 1 is not compared");
        let fenced = seen(2, Some(1), &[1], &[0]);
        let marks = watch.partition_changed(&tp, fenced, ChangeOrigin::Fence, false);
        assert_eq!(marks, vec![Mark::CleanElection, Mark::IsrShrinkByController, Mark::ElrGrew]);
        let emptied = seen(3, None, &[], &[0, 1]);
        let marks = watch.partition_changed(&tp, emptied, ChangeOrigin::Fence, false);
        assert!(marks.contains(&Mark::PartitionOffline) && marks.contains(&Mark::IsrEmptied));
        let from_elr = seen(4, Some(0), &[0], &[1]);
        let marks = watch.partition_changed(&tp, from_elr, ChangeOrigin::Unfence, false);
        assert_eq!(marks, vec![Mark::ElrElection]);
        let mut unclean = seen(5, Some(2), &[2], &[]);
        unclean.unclean = true;
        let marks = watch.partition_changed(&tp, unclean, ChangeOrigin::Unfence, true);
        assert_eq!(marks, vec![Mark::UncleanElection, Mark::ElrShrank]);
    }

    #[test]
    fn a_failover_needs_an_earlier_active_term() {
        let mut watch = Watch::default();
        assert_eq!(watch.controller_active(1), None);
        assert_eq!(watch.controller_active(1), None, "the same term again");
        assert_eq!(watch.controller_active(3), Some(Mark::ControllerFailover));
        assert_eq!(watch.producer_id(4, 7), None);
        assert_eq!(watch.producer_id(4, 7), None);
        assert_eq!(watch.producer_id(4, 9), Some(Mark::ProducerSessionReset));
        assert_eq!(watch.producer_id(5, 11), None, "a restarted producer is a new process");
    }

    #[test]
    fn events_map_by_kind_and_fields() {
        let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(from_event("fault-skipped", &fields(&[])), Some(Mark::FaultSkipped));
        let first = fields(&[("generation", "1")]);
        assert_eq!(from_event("generation-started", &first), None);
        let second = fields(&[("generation", "2")]);
        assert_eq!(from_event("generation-started", &second), Some(Mark::Rebalance));
        let timeout = fields(&[("reason", "session timeout")]);
        assert_eq!(from_event("member-removed", &timeout), Some(Mark::SessionTimeoutRemoval));
        assert_eq!(from_event("became-leader", &fields(&[])), None);
    }
}
