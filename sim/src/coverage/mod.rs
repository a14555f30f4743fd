//! Coverage marks: named "sometimes" states a run proves it reached (an unclean election, a
//! truncation through OffsetsForLeaderEpoch, a stale-generation commit refused, a torn write
//! cut at recovery, ...). A safe verdict over many seeds means little if the interesting
//! states never happened; the marks say which did. Owns the catalogue (`Mark`), the per-run
//! tally (`Tally`) and, in `derive`, the rules that turn what the world already sees (node
//! events, responses, facts, committed metadata, recovery reports) into marks. It does not
//! judge: a sweep counts seeds per mark and fails only a scenario's `expect.reaches`.
//!
//! Marks are kept out of the trace hash and the event log: adding one never changes a run.

pub mod derive;

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// Declares the catalogue once: variant, kebab-case name, one line on the state reached.
macro_rules! marks {
    ($($variant:ident => $name:literal, $description:literal;)*) => {
        /// A state worth reaching, in catalogue order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Mark {
            $($variant,)*
        }

        impl Mark {
            /// Every mark, in catalogue order.
            pub const ALL: &'static [Mark] = &[$(Mark::$variant,)*];

            /// The kebab-case name scenarios and reports use.
            pub fn name(self) -> &'static str {
                match self {
                    $(Mark::$variant => $name,)*
                }
            }

            /// One line on the state this mark proves was reached.
            pub fn description(self) -> &'static str {
                match self {
                    $(Mark::$variant => $description,)*
                }
            }
        }
    };
}

marks! {
    // Leader elections, as the controller committed them (KRaft PartitionChangeRecord).
    CleanElection => "clean-election",
        "a partition's leader left and a replica of its ISR was elected in a new leader epoch";
    ElrElection => "elr-election",
        "the ISR was empty and a replica of the ELR was elected (KIP-966 eligible leader replicas)";
    UncleanElection => "unclean-election",
        "a replica outside ISR and ELR was elected because the topic allows unclean election";
    UncleanRecovery => "unclean-recovery",
        "KIP-966 unclean recovery elected the last known leader with ISR and ELR empty";
    PartitionOffline => "partition-offline",
        "a partition lost its leader and no replica was eligible to lead it";
    // ISR and ELR changes.
    IsrShrinkByLeader => "isr-shrink-by-leader",
        "the leader's AlterPartition removed a lagging follower from the ISR";
    IsrExpandByLeader => "isr-expand-by-leader",
        "the leader's AlterPartition added a caught-up follower back to the ISR";
    IsrShrinkByController => "isr-shrink-by-controller",
        "the controller took a fenced or restarted broker out of an ISR";
    IsrEmptied => "isr-emptied",
        "a partition's ISR became empty (its last member fenced, KIP-966)";
    ElrGrew => "elr-grew",
        "a replica leaving an ISR below min.insync.replicas joined the ELR";
    ElrShrank => "elr-shrank",
        "a replica left the ELR without being elected (unclean shutdown, or the ISR recovered)";
    BrokerFenced => "broker-fenced",
        "the controller fenced a broker whose session expired";
    UncleanShutdownRegistration => "unclean-shutdown-registration",
        "a broker registered after an unclean shutdown and lost its ISR/ELR places (KIP-966)";
    AlterPartitionIneligibleReplica => "alter-partition-ineligible-replica",
        "the controller refused an ISR member that is fenced or of a stale broker epoch (KIP-903)";
    AlterPartitionStale => "alter-partition-stale",
        "the controller refused an AlterPartition of an old leader or partition epoch";
    StaleBrokerEpochHeartbeat => "stale-broker-epoch-heartbeat",
        "the controller refused a heartbeat from a broker's earlier incarnation";
    // The controller quorum.
    ControllerFailover => "controller-failover",
        "a controller became active in a later term than an earlier active controller";
    RaftLogTruncated => "raft-log-truncated",
        "a Raft follower truncated uncommitted entries that conflict with the leader's log";
    RaftJournalCut => "raft-journal-cut",
        "a restarting controller cut a torn or corrupt tail off its Raft journal";
    ControllerHalted => "controller-halted",
        "a controller halted because its Raft journal write failed";
    // Replication.
    TruncationByLeaderEpoch => "truncation-by-leader-epoch",
        "a follower removed a divergent suffix found through OffsetsForLeaderEpoch (KIP-101/279)";
    TruncationToHighWatermark => "truncation-to-high-watermark",
        "a follower removed records above its high watermark (the pre-KIP-101 rule)";
    AcksAllLeaderChange => "acks-all-leader-change",
        "a leader lost leadership with an acks=all produce in flight (NotLeaderOrFollower)";
    AcksAllBelowMinIsr => "acks-all-below-min-isr",
        "an acks=all produce waiting for replication failed as the ISR fell below min.insync";
    AcksAllTimedOut => "acks-all-timed-out",
        "an acks=all produce was not replicated before its timeout";
    AckedAtMinIsr => "acked-at-min-isr",
        "an acks=all produce was acknowledged by an ISR exactly min.insync.replicas, below RF";
    NotEnoughReplicas => "not-enough-replicas",
        "a produce was refused before append: the ISR is below min.insync.replicas";
    StaleReplicaFetch => "stale-replica-fetch",
        "a leader refused a follower fetch from an earlier broker incarnation (KIP-903)";
    FencedLeaderEpoch => "fenced-leader-epoch",
        "a request carrying an older leader epoch was refused with FencedLeaderEpoch (KIP-320)";
    FollowerFetch => "follower-fetch",
        "a consumer read records from a follower replica (KIP-392)";
    ResponseLostAfterAppend => "response-lost-after-append",
        "a produce was appended and its response replaced by a connection reset";
    // Idempotent producers.
    IdempotentDuplicate => "idempotent-duplicate",
        "the broker recognised a retried batch already in its log and answered its offsets";
    OutOfOrderSequence => "out-of-order-sequence",
        "the broker refused a batch whose sequence does not follow the last one";
    ProducerFenced => "producer-fenced",
        "the broker refused a batch of an older producer epoch (InvalidProducerEpoch)";
    ProducerSessionReset => "producer-session-reset",
        "an idempotent producer took a new producer id after a batch ended without an ack";
    // Consumers.
    ConsumerLogTruncation => "consumer-log-truncation",
        "a consumer's KIP-320 position validation found the log truncated below its position";
    ConsumerResetAfterTruncation => "consumer-reset-after-truncation",
        "a consumer reset its position with auto.offset.reset after a detected truncation";
    ConsumerOutOfRangeReset => "consumer-out-of-range-reset",
        "a consumer's position was out of range and auto.offset.reset moved it";
    ConsumerCorruptRecord => "consumer-corrupt-record",
        "a consumer's CRC check caught a corrupt fetched batch and fetched it again";
    // Consumer groups.
    Rebalance => "rebalance",
        "a group started a generation after its first (a rebalance)";
    SessionTimeoutRemoval => "session-timeout-removal",
        "the coordinator removed a member whose session timed out";
    StaticMemberReplaced => "static-member-replaced",
        "a static member (group.instance.id) rejoined and replaced its old member id";
    MemberFenced => "member-fenced",
        "a member was fenced by another member with its group.instance.id";
    PartitionsLost => "partitions-lost",
        "a member lost its partitions without revoking them (its generation was refused)";
    StaleGenerationCommit => "stale-generation-commit",
        "the coordinator refused a commit of an old generation or unknown member";
    CommitNotCoordinator => "commit-not-coordinator",
        "a commit was refused because the coordinator moved (NotCoordinator)";
    CommitIndeterminate => "commit-indeterminate",
        "a commit's outcome is unknown: its connection broke or it timed out";
    CoordinatorFailover => "coordinator-failover",
        "the offsets partition (the group coordinator) got a new leader in a later epoch";
    // Storage.
    RecoveryCutTornWrite => "recovery-cut-torn-write",
        "log recovery cut a crash's torn tail: a batch cut short, or zeros where a write was lost";
    RecoveryCutCrcMismatch => "recovery-cut-crc-mismatch",
        "log recovery cut a segment at a batch whose CRC does not match";
    RecoveryCutMalformed => "recovery-cut-malformed",
        "log recovery cut a segment at a malformed batch or an offset discontinuity";
    RecoverySkippedOffsets => "recovery-skipped-offsets",
        "recovery lost data below the recovery point and skipped its offsets, never reusing them";
    ProducerSnapshotDeleted => "producer-snapshot-deleted",
        "recovery deleted a corrupt or stale producer-state snapshot";
    MetaCorrupt => "meta-corrupt",
        "a broker found its incarnation file corrupt and derived one from the clock";
    DiskFull => "disk-full",
        "a broker's disk refused a write: no space left";
    DiskIoError => "disk-io-error",
        "a broker's disk operation failed with an I/O error";
    LogDirOffline => "log-dir-offline",
        "a failed disk operation took a broker's partitions offline (KafkaStorageError)";
    // Faults and the network.
    FaultSkipped => "fault-skipped",
        "the nemesis envelope skipped a fault that would break the scenario's promise";
    MalformedFrame => "malformed-frame",
        "a node received a frame it could not decode and closed the connection";
    MessageDropped => "message-dropped",
        "a message rule dropped a message while its connection stayed open";
    MessageDelayed => "message-delayed",
        "a message rule held a message back, so messages sent after it overtook it";
    MessageDuplicated => "message-duplicated",
        "a message rule delivered a message twice";
    DiskWiped => "disk-wiped",
        "a node restarted on an empty disk (a lost volume)";
    ControlledShutdown => "controlled-shutdown",
        "a broker's controlled shutdown was granted and it wrote its clean-shutdown marker";
}

impl Mark {
    /// The mark named `name`, if the catalogue has it.
    pub fn from_name(name: &str) -> Option<Mark> {
        Mark::ALL.iter().copied().find(|mark| mark.name() == name)
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        Mark::ALL.iter().map(|mark| mark.name()).collect::<Vec<_>>().join(", ")
    }
}

impl Serialize for Mark {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// How often one run reached a mark, and where first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reach {
    pub count: u64,
    /// Simulated nanoseconds at the first time.
    pub first_ns: u64,
    pub first_node: String,
}

/// The marks one run reached, in catalogue order.
pub type Tally = BTreeMap<Mark, Reach>;

/// Counts one more reach of `mark` on `node` at `time_ns`.
pub fn reach(tally: &mut Tally, mark: Mark, node: &str, time_ns: u64) {
    tally.entry(mark).and_modify(|reach| reach.count += 1).or_insert_with(|| Reach {
        count: 1,
        first_ns: time_ns,
        first_node: node.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_kebab(name: &str) -> bool {
        !name.is_empty()
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.contains("--")
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn the_catalogue_has_unique_kebab_case_names_and_descriptions() {
        assert!(Mark::ALL.len() >= 30, "only {} marks", Mark::ALL.len());
        let mut seen = std::collections::BTreeSet::new();
        for &mark in Mark::ALL {
            assert!(is_kebab(mark.name()), "{mark:?}: `{}` is not kebab-case", mark.name());
            assert!(seen.insert(mark.name()), "{mark:?}: `{}` is listed twice", mark.name());
            assert!(!mark.description().is_empty(), "{mark:?} has no description");
            assert!(!mark.description().contains('\n'), "{mark:?}: one line");
            assert_eq!(Mark::from_name(mark.name()), Some(mark));
        }
        assert_eq!(Mark::from_name("no-such-mark"), None);
    }

    #[test]
    fn a_tally_counts_and_keeps_the_first_reach() {
        let mut tally = Tally::new();
        reach(&mut tally, Mark::Rebalance, "broker-1", 5);
        reach(&mut tally, Mark::Rebalance, "broker-2", 9);
        let held = &tally[&Mark::Rebalance];
        assert_eq!((held.count, held.first_ns, held.first_node.as_str()), (2, 5, "broker-1"));
        let json = serde_json::to_value(&tally).expect("a tally serializes");
        assert_eq!(json["rebalance"]["count"], 2, "{json}");
    }
}
