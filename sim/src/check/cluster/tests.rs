//! One planted event sequence per claim that the checker must flag, and a near variant it
//! must pass; a property test that no event sequence panics it.

use std::collections::BTreeMap;

use kafkasim::types::{Epoch, NodeId, Offset, PartitionEpoch, Term, TopicPartition};
use proptest::prelude::*;

use super::{BatchDigest, ClusterChecker, ClusterEvent, InvariantKind, Violation};

use InvariantKind::*;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn n(id: u32) -> NodeId {
    NodeId(id)
}

fn batch(base: u64, last: u64, crc: u32) -> BatchDigest {
    BatchDigest { base: Offset(base), last: Offset(last), epoch: Some(Epoch(1)), crc }
}

fn started(broker: u32, batches: &[BatchDigest]) -> ClusterEvent {
    let logs = BTreeMap::from([(tp(), batches.to_vec())]);
    ClusterEvent::BrokerStarted { broker: n(broker), logs }
}

fn stopped(broker: u32) -> ClusterEvent {
    ClusterEvent::BrokerStopped { broker: n(broker) }
}

fn changed(leader: u32, epoch: u32, pe: u32, isr: &[u32]) -> ClusterEvent {
    changed_by(100, Some(leader), epoch, pe, isr, false, false)
}

fn changed_by(
    controller: u32,
    leader: Option<u32>,
    epoch: u32,
    pe: u32,
    isr: &[u32],
    unclean: bool,
    unclean_allowed: bool,
) -> ClusterEvent {
    ClusterEvent::PartitionChanged {
        controller: n(controller),
        tp: tp(),
        leader: leader.map(n),
        leader_epoch: Epoch(epoch),
        partition_epoch: PartitionEpoch(pe),
        isr: isr.iter().copied().map(n).collect(),
        unclean,
        unclean_allowed,
    }
}

fn leader(broker: u32, epoch: u32) -> ClusterEvent {
    ClusterEvent::BecameLeader { broker: n(broker), tp: tp(), epoch: Epoch(epoch), leo: Offset(0) }
}

fn follower(broker: u32, of: u32, epoch: u32) -> ClusterEvent {
    ClusterEvent::BecameFollower { broker: n(broker), tp: tp(), leader: n(of), epoch: Epoch(epoch) }
}

fn append(broker: u32, b: BatchDigest) -> ClusterEvent {
    ClusterEvent::Appended { broker: n(broker), tp: tp(), batch: b }
}

fn truncated(broker: u32, to: u64) -> ClusterEvent {
    ClusterEvent::Truncated { broker: n(broker), tp: tp(), to: Offset(to) }
}

fn hw(broker: u32, epoch: u32, hw: u64) -> ClusterEvent {
    ClusterEvent::HighWatermark { broker: n(broker), tp: tp(), epoch: Epoch(epoch), hw: Offset(hw) }
}

fn acked(last: u64, hw: u64, isr: &[u32], min_insync: usize) -> ClusterEvent {
    ClusterEvent::AckedAll {
        broker: n(1),
        tp: tp(),
        last_offset: Offset(last),
        hw: Offset(hw),
        isr: isr.iter().copied().map(n).collect(),
        min_insync,
    }
}

/// `follower` fetched from `leader` at `offset`, naming leader epoch `epoch`.
fn fetched(follower: u32, leader: u32, epoch: u32, offset: u64) -> ClusterEvent {
    ClusterEvent::FollowerFetched {
        leader: n(leader),
        follower: n(follower),
        tp: tp(),
        epoch: Some(Epoch(epoch)),
        fetch_offset: Offset(offset),
    }
}

fn term(controller: u32, t: u64, leader: bool) -> ClusterEvent {
    ClusterEvent::RaftTerm { controller: n(controller), term: Term(t), leader }
}

fn committed(controller: u32, index: u64, t: u64, digest: u64) -> ClusterEvent {
    ClusterEvent::RaftCommitted { controller: n(controller), index, term: Term(t), digest }
}

/// Three brokers, n1 leading e1 with isr {1,2,3}; two batches replicated everywhere and
/// exposed (hw 10), and an acks=all ack for them.
fn healthy() -> Vec<ClusterEvent> {
    let mut events = vec![
        started(1, &[]),
        started(2, &[]),
        started(3, &[]),
        changed(1, 1, 1, &[1, 2, 3]),
        leader(1, 1),
        follower(2, 1, 1),
        follower(3, 1, 1),
    ];
    for (b, hw_after) in [(batch(0, 4, 10), 5), (batch(5, 9, 11), 10)] {
        let (at_2, at_3) = (fetched(2, 1, 1, hw_after), fetched(3, 1, 1, hw_after));
        events.extend([append(1, b), append(2, b), append(3, b), at_2, at_3, hw(1, 1, hw_after)]);
    }
    events.push(acked(9, 10, &[1, 2, 3], 2));
    events
}

/// `healthy`, then `more`; every violation from observe and finish.
fn run(more: &[ClusterEvent]) -> Vec<Violation> {
    let mut checker = ClusterChecker::new();
    let mut out = Vec::new();
    for event in healthy().iter().chain(more) {
        out.extend(checker.observe(event));
    }
    out.extend(checker.finish());
    out
}

fn kinds(violations: &[Violation]) -> Vec<InvariantKind> {
    violations.iter().map(|v| v.kind).collect()
}

/// n2 takes over cleanly in e2 (n1 and n3 follow it).
fn n2_elected() -> Vec<ClusterEvent> {
    vec![changed(2, 2, 2, &[1, 2, 3]), leader(2, 2), follower(1, 2, 2), follower(3, 2, 2)]
}

#[test]
fn a_healthy_run_and_a_clean_failover_pass() {
    assert_eq!(run(&[]), vec![]);
    let mut more = n2_elected();
    let b = batch(10, 12, 12);
    more.extend([append(2, b), append(1, b), append(3, b), hw(2, 2, 13)]);
    assert_eq!(run(&more), vec![]);
}

#[test]
fn one_leader_per_epoch_flags_two_brokers_leading_one_epoch() {
    let v = run(&[leader(2, 1)]);
    assert!(kinds(&v).contains(&OneLeaderPerEpoch), "{v:?}");
    assert!(v[0].detail.contains("two leaders in e1: n1 and n2"), "{v:?}");
    assert_eq!(run(&n2_elected()), vec![]);
}

#[test]
fn one_leader_per_epoch_flags_a_broker_epoch_going_back_within_one_start() {
    let mut more = n2_elected();
    more.push(follower(3, 1, 1));
    assert_eq!(kinds(&run(&more)), vec![OneLeaderPerEpoch]);
    // After a restart its in-memory epochs start over.
    let mut more = n2_elected();
    more.extend([stopped(3), started(3, &[batch(0, 4, 10), batch(5, 9, 11)]), follower(3, 1, 1)]);
    assert_eq!(run(&more), vec![]);
}

#[test]
fn one_leader_per_epoch_flags_committed_epochs_going_back_or_changing_leader() {
    let v = run(&[changed(1, 0, 2, &[1, 2])]);
    assert_eq!(kinds(&v), vec![OneLeaderPerEpoch]);
    assert!(v[0].detail.contains("pe1 has e1"), "{v:?}");
    assert_eq!(kinds(&run(&[changed(2, 1, 2, &[1, 2])])), vec![OneLeaderPerEpoch]);
    assert_eq!(kinds(&run(&[leader(2, 1)])[1..]), vec![OneLeaderPerEpoch]);
    // An ISR shrink in the same epoch, then a lagging controller applying older changes.
    let lagging = changed_by(101, Some(1), 1, 1, &[1, 2, 3], false, false);
    assert_eq!(run(&[changed(1, 1, 2, &[1, 2]), lagging]), vec![]);
}

#[test]
fn committed_prefix_flags_a_clean_leader_missing_exposed_batches() {
    // KIP-101 #1: n2 truncated to an old HW, then is elected.
    let mut more = vec![truncated(2, 5)];
    more.extend(n2_elected());
    let v = run(&more);
    assert_eq!(kinds(&v)[..1], [CommittedPrefix], "{v:?}");
    assert!(v[0].detail.contains("n2 became leader in e2"), "{v:?}");
    assert!(v[0].detail.contains("[5..=9] e1 crc 0x0000000b"), "{v:?}");
    // The same truncation above the exposed HW loses nothing.
    let mut more = vec![truncated(2, 10)];
    more.extend(n2_elected());
    assert_eq!(run(&more), vec![]);
}

/// Group-safe seed 872: n2, cut off the controller, applies e2 (where it leads) only after
/// n3 has led e3 and exposed a record n2 lacks. A leader of an epoch the partition has
/// moved past is not a later leader; it follows n3 and catches up.
#[test]
fn committed_prefix_leaves_a_leader_of_an_older_epoch_alone() {
    let b10 = batch(10, 10, 12);
    let more = [
        changed(2, 2, 2, &[1, 2, 3]),
        changed(3, 3, 3, &[1, 3]),
        leader(3, 3),
        follower(1, 3, 3),
        append(3, b10),
        append(1, b10),
        hw(3, 3, 11),
        leader(2, 2),
        follower(2, 3, 3),
        append(2, b10),
    ];
    assert_eq!(run(&more), vec![]);
}

#[test]
fn committed_prefix_excuses_allowed_unclean_elections_only() {
    let election = |allowed| {
        vec![
            stopped(1),
            truncated(2, 5),
            changed_by(100, Some(2), 2, 2, &[1], true, allowed),
            leader(2, 2),
        ]
    };
    assert_eq!(run(&election(true)), vec![]);
    let v = kinds(&run(&election(false)));
    assert!(v.contains(&CommittedPrefix) && v.contains(&LeaderInIsr), "{v:?}");
}

#[test]
fn committed_prefix_excuses_records_the_new_leader_lost_in_its_own_crash() {
    let mut more = vec![stopped(2), started(2, &[batch(0, 4, 10)])];
    more.extend(n2_elected());
    assert!(!kinds(&run(&more)).contains(&CommittedPrefix));
    // Recovered whole, then cut by the protocol: a bug.
    let mut more = vec![stopped(2), started(2, &[batch(0, 4, 10), batch(5, 9, 11)])];
    more.push(truncated(2, 5));
    more.extend(n2_elected());
    assert!(kinds(&run(&more)).contains(&CommittedPrefix));
}

#[test]
fn committed_prefix_flags_a_leader_truncating_or_overexposing() {
    let v = run(&[truncated(1, 5)]);
    assert_eq!(kinds(&v)[..1], [CommittedPrefix], "{v:?}");
    assert!(v[0].detail.contains("leader n1 (e1) truncated to 5"), "{v:?}");
    assert_eq!(run(&[truncated(1, 10)]), vec![]);
    let v = run(&[hw(1, 1, 11)]);
    assert_eq!(kinds(&v)[..1], [CommittedPrefix], "{v:?}");
    assert!(v[0].detail.contains("above its own leo 10"), "{v:?}");
}

#[test]
fn replicas_agree_flags_an_in_sync_follower_holding_other_records() {
    let mut more = vec![append(1, batch(10, 11, 20)), append(3, batch(10, 11, 21))];
    more.push(hw(1, 1, 12));
    let v = run(&more);
    assert_eq!(kinds(&v)[..1], [ReplicasAgree], "{v:?}");
    assert!(v[0].detail.contains("in-sync n3 differs from leader n1 (e1)"), "{v:?}");
    assert!(v[0].detail.contains("crc 0x00000015"), "{v:?}");
    // The follower left the ISR and has not fetched yet: nothing below its leo differs.
    let more = [
        changed(1, 1, 2, &[1, 2]),
        append(1, batch(10, 11, 20)),
        append(2, batch(10, 11, 20)),
        fetched(2, 1, 1, 12),
        hw(1, 1, 12),
    ];
    assert_eq!(run(&more), vec![]);
}

#[test]
fn replicas_agree_rechecks_what_a_truncation_changed() {
    let more = [truncated(3, 5), append(3, batch(5, 9, 99)), hw(1, 1, 10)];
    let v = run(&more);
    assert_eq!(kinds(&v)[..1], [ReplicasAgree], "{v:?}");
    let more = [truncated(3, 5), append(3, batch(5, 9, 11)), hw(1, 1, 10)];
    assert_eq!(run(&more), vec![]);
}

#[test]
fn replicas_agree_flags_an_append_below_the_leo_without_a_truncation() {
    let v = run(&[append(3, batch(5, 9, 11))]);
    assert_eq!(kinds(&v), vec![ReplicasAgree]);
    assert!(v[0].detail.contains("at 5 below its leo 10"), "{v:?}");
}

#[test]
fn replicas_agree_skips_a_follower_restarted_since_it_joined_the_isr() {
    let diverged = [batch(0, 4, 10), batch(5, 9, 11), batch(10, 11, 21)];
    let more = [
        stopped(3),
        started(3, &diverged),
        append(1, batch(10, 11, 20)),
        append(2, batch(10, 11, 20)),
        fetched(2, 1, 1, 12),
        fetched(3, 1, 1, 12),
        hw(1, 1, 12),
    ];
    // Not at the HW event; only the end state shows it (n3 against n1 and n2).
    let v = run(&more);
    assert_eq!(kinds(&v), vec![ReplicasAgree, ReplicasAgree]);
    assert!(v[0].detail.contains("at the end live replicas n1 and n3 differ"), "{v:?}");
    let mut more = more.to_vec();
    more.push(stopped(3));
    assert_eq!(run(&more), vec![]);
}

#[test]
fn acked_means_replicated_flags_acks_at_the_hw_or_with_a_small_isr() {
    let v = run(&[acked(10, 10, &[1, 2, 3], 2)]);
    assert_eq!(kinds(&v)[..1], [AckedMeansReplicated], "{v:?}");
    assert!(v[0].detail.contains("last offset 10 not below hw 10"), "{v:?}");
    assert_eq!(kinds(&run(&[acked(9, 10, &[1], 2)])), vec![AckedMeansReplicated]);
    assert_eq!(run(&[acked(9, 10, &[1, 2], 2)]), vec![]);
}

#[test]
fn leader_in_isr_flags_a_leader_outside_the_isr_unless_allowed_unclean() {
    let v = run(&[changed(1, 2, 2, &[2, 3])]);
    assert_eq!(kinds(&v), vec![LeaderInIsr]);
    assert!(v[0].detail.contains("leader n1 in e2 (pe2) outside isr [n2, n3]"), "{v:?}");
    let unclean = |allowed| changed_by(100, Some(1), 2, 2, &[2], true, allowed);
    assert_eq!(run(&[unclean(true)]), vec![]);
    assert_eq!(kinds(&run(&[unclean(false)])), vec![LeaderInIsr]);
}

#[test]
fn raft_flags_two_leaders_in_a_term_a_term_going_back_and_a_changed_commit() {
    let v = run(&[term(100, 3, true), term(101, 3, true)]);
    assert_eq!(kinds(&v), vec![Raft]);
    assert!(v[0].detail.contains("two leaders in t3: n100 and n101"), "{v:?}");
    assert_eq!(run(&[term(100, 3, true), term(101, 4, true), term(100, 4, false)]), vec![]);
    assert_eq!(kinds(&run(&[term(100, 3, false), term(100, 2, false)])), vec![Raft]);
    assert_eq!(kinds(&run(&[committed(100, 7, 3, 42), committed(101, 7, 3, 43)])), vec![Raft]);
    assert_eq!(run(&[committed(100, 7, 3, 42), committed(101, 7, 3, 42)]), vec![]);
    // Two controllers applying one partition epoch with different ISRs.
    let other = changed_by(101, Some(1), 1, 1, &[1, 2], false, false);
    assert_eq!(kinds(&run(&[other])), vec![Raft]);
}

/// Any event over a small space of brokers, partitions, offsets and epochs.
fn any_event() -> impl Strategy<Value = ClusterEvent> {
    let node = || (0u32..4).prop_map(NodeId);
    let part = || (0u32..2).prop_map(|p| TopicPartition::new("t", p));
    let offset = || (0u64..40).prop_map(Offset);
    let epoch = || (0u32..5).prop_map(Epoch);
    let digest = (0u64..40, 0u64..40, 0u32..3)
        .prop_map(|(base, len, crc)| batch(base, base.saturating_add(len).saturating_sub(2), crc));
    let logs = proptest::collection::btree_map(
        part(),
        proptest::collection::vec(digest.clone(), 0..6),
        0..3,
    );
    prop_oneof![
        (node(), logs).prop_map(|(broker, logs)| ClusterEvent::BrokerStarted { broker, logs }),
        node().prop_map(|broker| ClusterEvent::BrokerStopped { broker }),
        (node(), part(), epoch(), offset()).prop_map(|(broker, tp, epoch, leo)| {
            ClusterEvent::BecameLeader { broker, tp, epoch, leo }
        }),
        (node(), part(), node(), epoch()).prop_map(|(broker, tp, leader, epoch)| {
            ClusterEvent::BecameFollower { broker, tp, leader, epoch }
        }),
        (node(), part(), digest).prop_map(|(broker, tp, batch)| ClusterEvent::Appended {
            broker,
            tp,
            batch
        }),
        (node(), part(), offset()).prop_map(|(broker, tp, to)| ClusterEvent::Truncated {
            broker,
            tp,
            to
        }),
        (node(), part(), epoch(), offset()).prop_map(|(broker, tp, epoch, hw)| {
            ClusterEvent::HighWatermark { broker, tp, epoch, hw }
        }),
        (node(), part(), offset(), offset(), proptest::collection::vec(node(), 0..4), 0usize..4)
            .prop_map(|(broker, tp, last_offset, hw, isr, min_insync)| ClusterEvent::AckedAll {
                broker,
                tp,
                last_offset,
                hw,
                isr,
                min_insync
            }),
        (
            node(),
            part(),
            proptest::option::of(node()),
            epoch(),
            0u32..5,
            proptest::collection::vec(node(), 0..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(controller, tp, leader, leader_epoch, pe, isr, unclean, unclean_allowed)| {
                    ClusterEvent::PartitionChanged {
                        controller,
                        tp,
                        leader,
                        leader_epoch,
                        partition_epoch: PartitionEpoch(pe),
                        isr,
                        unclean,
                        unclean_allowed,
                    }
                }
            ),
        (node(), 0u64..4, any::<bool>()).prop_map(|(controller, t, leader)| {
            ClusterEvent::RaftTerm { controller, term: Term(t), leader }
        }),
        (node(), 0u64..6, 0u64..4, 0u64..3).prop_map(|(controller, index, t, digest)| {
            ClusterEvent::RaftCommitted { controller, index, term: Term(t), digest }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_event_sequence_panics_the_checker(
        events in proptest::collection::vec(any_event(), 0..80),
        extreme in any::<bool>(),
    ) {
        let mut checker = ClusterChecker::new();
        for event in &events {
            for violation in checker.observe(event) {
                prop_assert!(!violation.detail.is_empty());
            }
        }
        if extreme {
            // Offsets at the top of the range must not overflow.
            let top = BatchDigest { base: Offset(u64::MAX - 1), last: Offset(u64::MAX), epoch: None, crc: 0 };
            let _ = checker.observe(&append(1, top));
            let _ = checker.observe(&hw(1, 1, u64::MAX));
            let _ = checker.observe(&truncated(1, u64::MAX));
        }
        let _ = checker.finish();
    }
}

/// A correct single-partition cluster of three brokers driven by random steps (append,
/// fetch, ISR shrink and expand, clean failover with leader-epoch truncation, follower
/// restart, acks): the events a correct broker reports, which must never be flagged.
fn model_run(steps: &[(u8, u8)]) -> Vec<ClusterEvent> {
    let mut logs: [Vec<BatchDigest>; 3] = Default::default();
    let leo = |log: &Vec<BatchDigest>| log.last().map_or(0, |b| b.last.0 + 1);
    let (mut leader_ix, mut epoch, mut pe, mut hw, mut crc) = (0usize, 1u32, 1u32, 0u64, 0u32);
    let mut isr: Vec<usize> = vec![0, 1, 2];
    // What each follower reported to the current leadership, and the HW it started with:
    // a leader moves its HW only over what its ISR reported to it (invariant 8).
    let mut reported: [Option<u64>; 3] = [None; 3];
    let mut span_hw = 0u64;
    let id = |ix: usize| ix as u32 + 1;
    let ids = |isr: &[usize]| -> Vec<u32> { isr.iter().map(|&ix| id(ix)).collect() };
    let mut events: Vec<ClusterEvent> = (0..3).map(|ix| started(id(ix), &[])).collect();
    events.extend([
        changed(1, 1, 1, &[1, 2, 3]),
        leader(1, 1),
        follower(2, 1, 1),
        follower(3, 1, 1),
    ]);
    for &(op, arg) in steps {
        let other = (leader_ix + 1 + usize::from(arg % 2)) % 3;
        match op % 6 {
            0 => {
                let base = leo(&logs[leader_ix]);
                crc += 1;
                let b = BatchDigest {
                    base: Offset(base),
                    last: Offset(base + u64::from(arg % 3)),
                    epoch: Some(Epoch(epoch)),
                    crc,
                };
                logs[leader_ix].push(b);
                events.push(append(id(leader_ix), b));
            }
            1 => {
                let have = logs[other].len();
                if let Some(&b) = logs[leader_ix].get(have) {
                    logs[other].push(b);
                    events.push(append(id(other), b));
                }
                reported[other] = Some(leo(&logs[other]));
                events.push(fetched(id(other), id(leader_ix), epoch, leo(&logs[other])));
                if !isr.contains(&other) && leo(&logs[other]) >= hw {
                    isr.push(other);
                    pe += 1;
                    events.push(changed(id(leader_ix), epoch, pe, &ids(&isr)));
                }
                let position = |ix: usize| match ix == leader_ix {
                    true => Some(leo(&logs[ix])),
                    false => reported[ix],
                };
                let new_hw = isr.iter().map(|&ix| position(ix)).min().flatten().unwrap_or(0);
                if new_hw > hw {
                    hw = new_hw;
                    events.push(hw_event(id(leader_ix), epoch, hw));
                }
            }
            2 if isr.contains(&other) && leo(&logs[other]) < leo(&logs[leader_ix]) => {
                isr.retain(|&ix| ix != other);
                pe += 1;
                events.push(changed(id(leader_ix), epoch, pe, &ids(&isr)));
            }
            3 if isr.contains(&other) => {
                leader_ix = other;
                epoch += 1;
                reported = [None; 3];
                span_hw = hw;
                pe += 1;
                events.push(changed(id(leader_ix), epoch, pe, &ids(&isr)));
                events.push(leader(id(leader_ix), epoch));
                for ix in (0..3).filter(|&ix| ix != leader_ix) {
                    events.push(follower(id(ix), id(leader_ix), epoch));
                    let common =
                        logs[ix].iter().zip(&logs[leader_ix]).take_while(|(a, b)| a == b).count();
                    if common < logs[ix].len() {
                        logs[ix].truncate(common);
                        events.push(truncated(id(ix), leo(&logs[ix])));
                    }
                }
            }
            4 if other != leader_ix => {
                events.extend([stopped(id(other)), started(id(other), &logs[other])]);
                events.push(follower(id(other), id(leader_ix), epoch));
                // A restarted broker re-registers: the controller drops it from the ISR.
                if isr.contains(&other) {
                    isr.retain(|&ix| ix != other);
                    pe += 1;
                    events.push(changed(id(leader_ix), epoch, pe, &ids(&isr)));
                }
            }
            5 if hw > span_hw => {
                let acked_isr = ids(&isr);
                if acked_isr.len() >= 2 {
                    events.push(ClusterEvent::AckedAll {
                        broker: n(id(leader_ix)),
                        tp: tp(),
                        last_offset: Offset(hw - 1),
                        hw: Offset(hw),
                        isr: acked_isr.into_iter().map(n).collect(),
                        min_insync: 2,
                    });
                }
            }
            _ => {}
        }
    }
    events
}

fn hw_event(broker: u32, epoch: u32, offset: u64) -> ClusterEvent {
    hw(broker, epoch, offset)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn correct_model_runs_are_never_flagged(
        steps in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..150)
    ) {
        let events = model_run(&steps);
        let mut checker = ClusterChecker::new();
        let mut violations = Vec::new();
        for event in &events {
            violations.extend(checker.observe(event));
        }
        violations.extend(checker.finish());
        prop_assert!(violations.is_empty(), "{violations:#?}\n{events:#?}");
    }
}

/// n1 appends 10..14; n2 fetches past it, n3 reports only 10.
fn n3_behind() -> Vec<ClusterEvent> {
    let b = batch(10, 14, 12);
    vec![append(1, b), append(2, b), fetched(2, 1, 1, 15), fetched(3, 1, 1, 10)]
}

#[test]
fn a_hw_or_ack_past_a_committed_isr_member_s_report_is_flagged() {
    let mut more = n3_behind();
    more.push(hw(1, 1, 15));
    let v = run(&more);
    assert_eq!(kinds(&v), vec![HwWithinCommittedIsr]);
    assert!(v[0].detail.contains("moved its HW to 15"), "{v:?}");
    assert!(v[0].detail.contains("n3 at 10"), "{v:?}");
    let mut more = n3_behind();
    more.push(acked(14, 15, &[1, 2], 2)); // the leader's own view left n3 out: not committed
    assert_eq!(kinds(&run(&more)), vec![HwWithinCommittedIsr]);
}

#[test]
fn a_committed_shrink_or_a_later_report_clears_it() {
    let mut more = n3_behind();
    more.extend([changed(1, 1, 2, &[1, 2]), hw(1, 1, 15), acked(14, 15, &[1, 2], 2)]);
    assert_eq!(run(&more), vec![], "n3 is out of the committed isr");
    let mut more = n3_behind();
    more.extend([fetched(3, 1, 1, 15), hw(1, 1, 15), acked(14, 15, &[1, 2, 3], 2)]);
    let v = run(&more);
    assert!(!kinds(&v).contains(&HwWithinCommittedIsr), "{v:?}");
}

#[test]
fn a_fetch_for_another_epoch_or_leadership_does_not_count() {
    let mut more = n3_behind();
    more.extend([fetched(3, 1, 2, 15), hw(1, 1, 15)]);
    assert_eq!(kinds(&run(&more)), vec![HwWithinCommittedIsr], "epoch 2 is not n1's");
    // n1 restarts: what n3 reported to its earlier leadership is gone with it.
    let b = batch(10, 14, 12);
    let more = [
        fetched(3, 1, 1, 15),
        stopped(1),
        started(1, &[batch(0, 4, 10), batch(5, 9, 11), b]),
        changed(1, 2, 2, &[1, 2, 3]),
        leader(1, 2),
        hw(1, 2, 10),
        fetched(2, 1, 2, 15),
        hw(1, 2, 15),
    ];
    let v = run(&more);
    assert!(kinds(&v).contains(&HwWithinCommittedIsr), "{v:?}");
    assert!(v.iter().any(|v| v.detail.contains("n3 never")), "{v:?}");
}

/// replicated-safe seed 1359: a new leader acks a retried batch it already held (appended
/// and committed under the previous leader) before any follower fetched from it.
#[test]
fn an_ack_of_a_record_an_earlier_leader_appended_needs_no_new_report() {
    let mut more = n2_elected();
    let mut elected = more.remove(1);
    if let ClusterEvent::BecameLeader { leo, .. } = &mut elected {
        *leo = Offset(10);
    }
    more.insert(1, elected);
    let acked_by_n2 = ClusterEvent::AckedAll {
        broker: n(2),
        tp: tp(),
        last_offset: Offset(9),
        hw: Offset(10),
        isr: vec![n(1), n(2), n(3)],
        min_insync: 2,
    };
    more.push(acked_by_n2.clone());
    assert_eq!(run(&more), vec![]);
    if let ClusterEvent::AckedAll { last_offset, hw, .. } = &mut more.last_mut().expect("pushed") {
        (*last_offset, *hw) = (Offset(10), Offset(11));
    }
    more.insert(more.len() - 1, append(2, batch(10, 10, 30)));
    assert!(kinds(&run(&more)).contains(&HwWithinCommittedIsr), "a record n2 appended");
}
