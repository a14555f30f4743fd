//! Planted histories with planted event logs: a loss the events explain, its consequences,
//! the same anomalies where the loss cannot explain them, and a loss nothing explains.

use std::collections::BTreeMap;

use super::{
    displaced_records, explain, lost_records, LossCause, LossSettings, LostRecord, Observed,
};
use crate::check::promises::{safe_for_tests, ConfigFacts, Judge, Ruling};
use crate::check::testkit::Builder;
use crate::check::{check, AnomalyKind, CheckOptions};
use crate::history::{History, OpType};
use crate::runner::Event;

const K: &str = "events-0";
const OTHER: &str = "events-1";

fn event(time_ns: u64, node: &str, kind: &str, fields: &[(&str, &str)]) -> Event {
    let fields: BTreeMap<String, String> =
        fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Event { time_ns, node: node.to_string(), kind: kind.to_string(), fields }
}

/// Both keys start with leader broker-0 and ISR {0, 1, 2}.
fn created() -> Vec<Event> {
    [K, OTHER]
        .iter()
        .map(|tp| {
            let isr = "[NodeId(0), NodeId(1), NodeId(2)]";
            let fields = [("tp", *tp), ("leader", "n0"), ("isr", isr), ("elr", "[]")];
            event(0, "controller-0", "partition-changed", &fields)
        })
        .collect()
}

/// The tests' safe config; `whole_cluster`: the faults may take power from every replica.
fn safe(whole_cluster: bool) -> ConfigFacts {
    ConfigFacts { faults_destroy_all_replicas: whole_cluster, ..safe_for_tests() }
}

const SETTINGS: LossSettings = LossSettings {
    flush_every_batch: false,
    acks_all: true,
    lone_broker: false,
    truncation_to_hw: false,
    no_elr: false,
};

/// The history: offsets 0..=2 of K and 0..=1 of OTHER acked and read; then a gap (two ops,
/// whose times the loss events take); then, on K, a send landing at offset 1 (reused) and a
/// poll reading it there; `below_and_other`: also a send landing at offset 0 of K (below the
/// truncation point) and one at offset 0 of OTHER (no loss there). Returns the history and
/// the two gap times.
fn history(below_and_other: bool) -> (History, u64, u64) {
    let mut b = Builder::new();
    for o in 0..=2 {
        b.send_ok(0, K, 1 + o, o);
    }
    b.send_ok(1, OTHER, 10, 0);
    b.send_ok(1, OTHER, 11, 1);
    b.poll_ok(5, &[(K, &[(0, 1), (1, 2), (2, 3)]), (OTHER, &[(0, 10), (1, 11)])]);
    let (gap_a, gap_b) = b.poll_ok(6, &[]);
    b.send_ok(0, K, 4, 1);
    if below_and_other {
        b.send_ok(0, K, 5, 0);
        b.send_ok(1, OTHER, 12, 0);
    }
    if below_and_other {
        b.poll_ok(7, &[(K, &[(0, 5), (1, 4)]), (OTHER, &[(0, 12)])]);
    } else {
        b.poll_ok(7, &[(K, &[(1, 4)])]);
    }
    // Op i happens at i + 1 ns (the builder ticks once per op).
    (b.finish(), gap_a + 1, gap_b + 1)
}

/// The rulings per kind over the whole report.
fn rule(
    history: &History,
    events: &[Event],
    config: &ConfigFacts,
    settings: LossSettings,
) -> BTreeMap<AnomalyKind, Vec<Ruling>> {
    let report = check(history, &CheckOptions { entries_per_kind_max: usize::MAX });
    let lost = lost_records(history, &report);
    let findings = explain(events, settings, &lost);
    let displaced = explain(events, settings, &displaced_records(history, &report, &lost));
    let judge = Judge::new(config, &findings, &displaced, Observed::from_history(history));
    let mut out = BTreeMap::new();
    for (kind, entries) in &report.anomalies {
        out.insert(*kind, entries.iter().map(|a| judge.rule(*kind, a)).collect());
    }
    out
}

/// `broker` becomes leader of K with its log ending at 1.
fn elected(time_ns: u64, broker: &str) -> Event {
    event(time_ns, broker, "became-leader", &[("tp", K), ("epoch", "e1"), ("leo", "1")])
}

fn power_loss_then_leader(crash_ns: u64, elected_ns: u64) -> Vec<Event> {
    let mut events = created();
    let nodes = [("nodes", "broker-0,broker-1,broker-2"), ("duration_ms", "100")];
    events.push(event(crash_ns, "broker-0", "fault-power-loss", &nodes));
    events.push(elected(elected_ns, "broker-0"));
    events
}

fn allowed(rulings: &[Ruling]) -> bool {
    rulings.iter().all(|r| matches!(r, Ruling::Allowed(_)))
}

#[test]
fn an_explained_loss_allows_its_offset_reuse() {
    let (history, crash_ns, elected_ns) = history(false);
    let events = power_loss_then_leader(crash_ns, elected_ns);
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    let kinds: Vec<AnomalyKind> = rulings.keys().copied().collect();
    assert_eq!(
        kinds,
        [
            AnomalyKind::LostWrite,
            AnomalyKind::InconsistentOffsets,
            AnomalyKind::NonmonotonicSend,
            AnomalyKind::RealtimeSendOrder
        ]
    );
    for (kind, ruled) in &rulings {
        assert!(allowed(ruled), "{kind:?}: {ruled:?}");
    }
    let Ruling::Allowed(reason) = &rulings[&AnomalyKind::LostWrite][0] else { unreachable!() };
    assert!(reason.contains("every in-sync replica that held offset 1 of events-0"), "{reason}");
    assert!(reason.contains("broker-0 at") && reason.contains("broker-2 at"), "{reason}");
    let Ruling::Allowed(reason) = &rulings[&AnomalyKind::NonmonotonicSend][0] else {
        unreachable!()
    };
    assert!(reason.contains("offsets 1..3 of events-0 were reused"), "{reason}");
}

#[test]
fn reuse_below_the_truncation_point_or_on_another_key_stays_forbidden() {
    let (history, crash_ns, elected_ns) = history(true);
    let events = power_loss_then_leader(crash_ns, elected_ns);
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    let report = check(&history, &CheckOptions::default());
    // Value 2 at offset 1 of K is the explained loss; values 1 (offset 0 of K, below the
    // truncation point) and 10 (offset 0 of OTHER) vanished too, and nothing explains that.
    let kinds = [
        AnomalyKind::LostWrite,
        AnomalyKind::NonmonotonicSend,
        AnomalyKind::RealtimeSendOrder,
        AnomalyKind::InconsistentOffsets,
    ];
    for kind in kinds {
        for (anomaly, ruling) in report.entries(kind).iter().zip(&rulings[&kind]) {
            let reused = anomaly.key == K && anomaly.offsets.iter().all(|&o| o >= 1);
            let is_allowed = matches!(ruling, Ruling::Allowed(_));
            assert_eq!(is_allowed, reused, "{kind:?} {anomaly:?}: {ruling:?}");
        }
        assert!(rulings[&kind].contains(&Ruling::Forbidden), "{kind:?}");
    }
}

#[test]
fn a_loss_no_event_explains_is_forbidden_with_its_consequences() {
    let (history, _, elected_ns) = history(false);
    // broker-0 is elected with a short log, but nothing crashed: no reason to lose it.
    let mut events = created();
    events.push(elected(elected_ns, "broker-0"));
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    for (kind, ruled) in &rulings {
        assert!(ruled.iter().all(|r| *r == Ruling::Forbidden), "{kind:?}: {ruled:?}");
    }
    // One holder, broker-2, kept its copy through the power loss of the two others.
    let mut events = created();
    let nodes = [("nodes", "broker-0,broker-1")];
    events.push(event(elected_ns - 1, "broker-0", "fault-power-loss", &nodes));
    events.push(elected(elected_ns, "broker-0"));
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    assert!(rulings[&AnomalyKind::LostWrite].iter().all(|r| *r == Ruling::Forbidden));
}

#[test]
fn a_crash_loss_in_a_scenario_that_spares_a_replica_is_outside_its_envelope() {
    let (history, crash_ns, elected_ns) = history(false);
    let events = power_loss_then_leader(crash_ns, elected_ns);
    let rulings = rule(&history, &events, &safe(false), SETTINGS);
    let lost = &rulings[&AnomalyKind::LostWrite];
    assert!(lost.iter().all(|r| matches!(r, Ruling::OutsideEnvelope(_))), "{lost:?}");
    // Its consequences are still the loss's, not bugs of their own.
    assert!(allowed(&rulings[&AnomalyKind::NonmonotonicSend]));
}

#[test]
fn truncating_to_the_hw_explains_a_loss_only_under_the_old_rule() {
    let (history, crash_ns, elected_ns) = history(false);
    let mut events = created();
    events.push(event(crash_ns, "broker-0", "fault-power-loss", &[("nodes", "broker-0,broker-1")]));
    events.push(event(elected_ns, "broker-2", "truncated", &[("tp", K), ("to", "1")]));
    events.push(elected(elected_ns, "broker-2"));
    let old_rule = LossSettings { truncation_to_hw: true, ..SETTINGS };
    let rulings = rule(&history, &events, &safe(false), old_rule);
    let Ruling::Allowed(reason) = &rulings[&AnomalyKind::LostWrite][0] else {
        panic!("{:?}", rulings[&AnomalyKind::LostWrite])
    };
    assert!(
        reason.starts_with("truncation = high-watermark (pre-KIP-101 switch): broker-2"),
        "{reason}"
    );
    let rulings = rule(&history, &events, &safe(false), SETTINGS);
    assert!(rulings[&AnomalyKind::LostWrite].iter().all(|r| *r == Ruling::Forbidden));
}

#[test]
fn an_unclean_election_names_the_replica_it_elected() {
    let (history, crash_ns, elected_ns) = history(false);
    let mut events = created();
    let fields = [("tp", K), ("leader", "Some(NodeId(2))")];
    events.push(event(crash_ns, "controller-0", "unclean-election", &fields));
    let changed = [("tp", K), ("leader", "n2"), ("isr", "[NodeId(2)]"), ("elr", "[]")];
    events.push(event(crash_ns, "controller-0", "partition-changed", &changed));
    events.push(elected(elected_ns, "broker-2"));
    let unclean = ConfigFacts { unclean_election: true, ..safe(false) };
    let rulings = rule(&history, &events, &unclean, SETTINGS);
    let Ruling::Allowed(reason) = &rulings[&AnomalyKind::LostWrite][0] else { unreachable!() };
    assert!(
        reason.contains("unclean election (allowed by the topic) elected broker-2"),
        "{reason}"
    );
    // Poll vs poll at a reused offset comes with the loss; unclean election allows it anyway.
    assert!(allowed(&rulings[&AnomalyKind::InconsistentOffsets]));
    let finding = &explain(
        &events,
        SETTINGS,
        &lost_records(&history, &check(&history, &CheckOptions::default())),
    )[0];
    assert!(
        matches!(finding.cause, Some(LossCause::UncleanElection { leader: 2, leo: 1, .. })),
        "{finding:?}"
    );
}

/// KIP-966 balanced recovery elects the last known leader once no in-sync or eligible
/// replica is left: every holder lost the record to an unclean shutdown, so the loss is
/// outside Kafka's promise, and outside the envelope of a scenario that spares a replica.
#[test]
fn an_unclean_recovery_is_the_loss_of_every_holder() {
    let (history, crash_ns, elected_ns) = history(false);
    let mut events = created();
    let nodes = [("nodes", "broker-0,broker-1,broker-2"), ("duration_ms", "100")];
    events.push(event(crash_ns, "broker-0", "fault-power-loss", &nodes));
    let fields = [("tp", K), ("leader", "Some(NodeId(0))")];
    events.push(event(elected_ns, "controller-0", "unclean-recovery", &fields));
    let changed = [("tp", K), ("leader", "n0"), ("isr", "[NodeId(0)]"), ("elr", "[]")];
    events.push(event(elected_ns, "controller-0", "partition-changed", &changed));
    events.push(elected(elected_ns, "broker-0"));
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    let Ruling::Allowed(reason) = &rulings[&AnomalyKind::LostWrite][0] else {
        panic!("{:?}", rulings[&AnomalyKind::LostWrite])
    };
    assert!(reason.starts_with("KIP-966 unclean recovery elected broker-0"), "{reason}");
    let spared = rule(&history, &events, &safe(false), SETTINGS);
    let lost = &spared[&AnomalyKind::LostWrite];
    assert!(lost.iter().all(|r| matches!(r, Ruling::OutsideEnvelope(_))), "{lost:?}");
}

/// A consumer that read offsets the loss freed and reads them again from the truncation
/// point (KIP-320 moved it back) polls nonmonotonically: allowed with an explained loss,
/// forbidden without one. Swarm seeds 324 and 463 showed it after an unclean election.
#[test]
fn a_consumer_moved_back_into_the_freed_offsets_is_allowed_with_the_loss() {
    let mut b = Builder::new();
    for o in 0..=2 {
        b.send_ok(0, K, 1 + o, o);
    }
    b.poll_ok(5, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    let (gap_a, gap_b) = b.poll_ok(6, &[]);
    b.send_ok(0, K, 4, 1);
    b.poll_ok(5, &[(K, &[(1, 4)])]);
    let history = b.finish();
    let events = power_loss_then_leader(gap_a + 1, gap_b + 1);
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    let rewound = &rulings[&AnomalyKind::NonmonotonicPoll];
    assert!(allowed(rewound), "{rewound:?}");
    let unexplained = rule(&history, &created(), &safe(false), SETTINGS);
    assert!(unexplained[&AnomalyKind::NonmonotonicPoll].contains(&Ruling::Forbidden));
}

/// An acked record no read crossed after the loss is not reported lost, yet the partition
/// went on without it: here values 2 and 3 (offsets 1 and 2 of K) were read, every replica
/// then lost power and broker-0 led again with its log ending at 1, and the producer's next
/// send landed at offset 1, with no poll after it. The reuse is the loss's consequence;
/// without the power loss nothing explains it and it stays a bug.
#[test]
fn an_acked_record_no_read_crossed_frees_its_offsets_once_the_partition_went_on_without_it() {
    let mut b = Builder::new();
    for o in 0..=2 {
        b.send_ok(0, K, 1 + o, o);
    }
    b.poll_ok(5, &[(K, &[(0, 1), (1, 2), (2, 3)])]);
    let (crash_ns, elected_ns) = b.poll_ok(6, &[]);
    b.send_ok(0, K, 4, 1);
    let history = b.finish();
    let report = check(&history, &CheckOptions::default());
    let lost = lost_records(&history, &report);
    let lost_values: Vec<u64> = lost.iter().map(|r| r.value).collect();
    assert_eq!(lost_values, [4], "only the last send: never read below what polls reached");
    let displaced: Vec<u64> =
        displaced_records(&history, &report, &lost).iter().map(|r| r.value).collect();
    assert_eq!(displaced, [2, 3], "the values the send-order anomalies name");
    let events = power_loss_then_leader(crash_ns + 1, elected_ns + 1);
    let rulings = rule(&history, &events, &safe(true), SETTINGS);
    let sends = &rulings[&AnomalyKind::NonmonotonicSend];
    assert!(allowed(sends), "{sends:?}");
    let Ruling::Allowed(reason) = &sends[0] else { unreachable!() };
    assert!(reason.contains("offsets 1..3 of events-0 were reused"), "{reason}");
    let mut elected_only = created();
    elected_only.push(elected(elected_ns + 1, "broker-0"));
    let rulings = rule(&history, &elected_only, &safe(true), SETTINGS);
    let sends = &rulings[&AnomalyKind::NonmonotonicSend];
    assert!(sends.iter().all(|r| *r == Ruling::Forbidden), "{sends:?}");
}

/// Swarm seeds 1937 and 3825: broker-0, the leader, acked or served offset 2 after broker-1
/// had taken over with its log ending at 1, and only later, on hearing of it, cut its log
/// to 1. The record was gone when broker-1 took over, not when broker-0 truncated, and a
/// later election of a short log does not move that moment.
#[test]
fn a_record_a_deposed_leader_took_is_lost_when_its_successor_took_over() {
    let successor_ns = 10;
    let truncated_ns = 50;
    let record =
        LostRecord { key: K.to_string(), value: 3, offset: 2, committed_ns: 20, sent_ns: 20 };
    let mut events = created();
    events.push(event(0, "broker-0", "became-leader", &[("tp", K), ("epoch", "e0"), ("leo", "0")]));
    events.push(elected(successor_ns, "broker-1"));
    events.push(event(
        40,
        "broker-2",
        "became-leader",
        &[("tp", K), ("epoch", "e2"), ("leo", "1")],
    ));
    events.push(event(truncated_ns, "broker-0", "truncated", &[("tp", K), ("to", "1")]));
    let settings = LossSettings { acks_all: false, ..SETTINGS };
    let finding = &explain(&events, settings, std::slice::from_ref(&record))[0];
    let point = finding.point.as_ref().expect("the deposed leader's truncation explains it");
    assert_eq!((point.time_ns, point.truncation_point, point.broker), (successor_ns, 1, 0));
    // Without the deposed leader's truncation, the later election is where it went.
    events.retain(|e| e.kind != "truncated");
    let finding = &explain(&events, settings, &[record])[0];
    let point = finding.point.as_ref().expect("the later election");
    assert_eq!((point.time_ns, point.broker), (40, 2));
}

/// A record a poll read before its ack arrived was in a log from then on: its replay starts
/// at its send, not at the late ack (swarm seed 339: the ack of offset 81 reached its
/// producer five seconds after the unclean election that cut it). Read only after its ack,
/// it keeps the ack's time.
#[test]
fn a_record_read_before_its_ack_is_known_committed_from_its_send() {
    let history = |read_first: bool| {
        let mut b = Builder::new();
        let invoked = b.invoke_send(0, &[(K, 1)]);
        if read_first {
            b.poll_ok(5, &[(K, &[(0, 1)])]);
        }
        let acked = b.complete_send(0, OpType::Ok, &[(K, 1, Some(0))]);
        b.send_ok(1, K, 2, 0);
        b.poll_ok(6, &[(K, &[(0, 2)])]);
        (b.finish(), invoked + 1, acked + 1)
    };
    for read_first in [true, false] {
        let (history, invoked_ns, acked_ns) = history(read_first);
        let lost = lost_records(&history, &check(&history, &CheckOptions::default()));
        let record = lost.iter().find(|r| r.value == 1).expect("value 1 is lost");
        let expected = if read_first { invoked_ns } else { acked_ns };
        assert_eq!(record.committed_ns, expected, "read first: {read_first}");
    }
}

/// An ack that reached its producer after the election that cut its record (swarm seed
/// 934): replayed from the ack, no point; replayed from the send, the election is it.
#[test]
fn a_late_ack_is_replayed_from_its_send_when_its_own_time_explains_nothing() {
    let mut events = created();
    let fields = [("tp", K), ("leader", "Some(NodeId(2))")];
    events.push(event(10, "controller-0", "unclean-election", &fields));
    let changed = [("tp", K), ("leader", "n2"), ("isr", "[NodeId(2)]"), ("elr", "[]")];
    events.push(event(10, "controller-0", "partition-changed", &changed));
    events.push(elected(10, "broker-2"));
    events.push(event(15, "broker-0", "truncated", &[("tp", K), ("to", "1")]));
    let late = LostRecord { key: K.to_string(), value: 3, offset: 2, committed_ns: 20, sent_ns: 5 };
    let finding = &explain(&events, SETTINGS, std::slice::from_ref(&late))[0];
    let point = finding.point.as_ref().expect("the election before the late ack");
    assert_eq!((point.time_ns, point.truncation_point, point.broker), (10, 1, 2));
    assert_eq!(finding.record, late, "the finding keeps the record as acked");
    let known = LostRecord { sent_ns: 20, ..late };
    assert_eq!(explain(&events, SETTINGS, &[known])[0].point, None, "no send time, no point");
}
