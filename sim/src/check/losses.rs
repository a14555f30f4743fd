//! Why a lost record was lost, read from the node event log (events.jsonl): for each acked
//! record the checker found lost (lost-write, unseen), the moment the partition moved on
//! without it (a leader elected whose log ends at or below its offset: the truncation
//! point) and the events that explain how every in-sync copy went away: an unsynced crash
//! of each in-sync holder, an unclean election, or a follower cutting its log to its HW (the
//! pre-KIP-101 switch). Owns the reading of the event log and the replay of who held the
//! record; judges nothing (that is `promises`'s call).
//!
//! The replay follows Kafka's promise ("an acked record survives while one in-sync replica
//! survives"): the record is held at its commit by every member of the ISR (and ELR, the
//! replicas KIP-966 keeps electable); a replica that joins the ISR under a leader holding it
//! holds it too; a holder dropped from the ISR and ELR while alive stops protecting it (it
//! cannot be elected with unclean election off, and truncates to whatever the leader has
//! when it returns). The events carry no per-replica appends, so the replay is an
//! approximation from ISR changes; where it is unsure it keeps a replica as a holder, which
//! only ever withholds an explanation.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{History, OpValue};
use crate::runner::Event;

use super::facts::{Facts, Source};
use super::{AnomalyKind, CheckReport};

/// What the replay needs to know about the run besides its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossSettings {
    /// Every topic flushes each batch before acking it: a crash keeps acked records.
    pub flush_every_batch: bool,
    /// Acks=all: the whole ISR holds an acked record (else only the leader does).
    pub acks_all: bool,
    /// The cluster has no controllers: the heal restarts the lone broker (a kill without a
    /// fault event), and its log recovery is where the partition moves on.
    pub lone_broker: bool,
    /// A follower cuts its log to its own HW (the pre-KIP-101 switch).
    pub truncation_to_hw: bool,
    /// No eligible leader replicas (the pre-KIP-966 switch): holders the ISR dropped below
    /// min.insync stop being electable, and the last member leads after any restart.
    pub no_elr: bool,
}

/// A record the checker found lost, with the time it was known committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRecord {
    pub key: String,
    pub value: u64,
    pub offset: u64,
    pub committed_ns: u64,
    /// The earliest it could have been in a log: its send's invocation (`committed_ns` when
    /// the history does not say).
    pub sent_ns: u64,
}

/// Where the partition moved on without the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossPoint {
    pub time_ns: u64,
    /// The log end of the replica that went on without it: the offset new records reuse
    /// from (<= the lost offset).
    pub truncation_point: u64,
    /// The broker that went on without it.
    pub broker: u32,
    /// How: "was elected leader" or "recovered its log".
    pub how: &'static str,
}

/// How every in-sync copy of a lost record went away, as the event log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// Every in-sync replica holding it lost it in a crash or power loss with unsynced data:
    /// (broker, crash time). `left_isr`: holders dropped from the ISR before, alive.
    UnsyncedCrash { crashes: Vec<(u32, u64)>, left_isr: Vec<(u32, u64)> },
    /// An unclean election (allowed by the topic) elected a replica whose log ended there.
    UncleanElection { leader: u32, time_ns: u64, leo: u64 },
    /// KIP-966 unclean recovery (`unclean.recovery.strategy` balanced, as Kafka 4's
    /// controller does it) elected the last known leader, with no ISR or ELR member left,
    /// whose log ended there.
    UncleanRecovery { leader: u32, time_ns: u64, leo: u64 },
    /// A holder cut its log to its HW on becoming a follower (truncation = high-watermark).
    HwTruncation { broker: u32, time_ns: u64, to: u64 },
    /// Without eligible leader replicas (the pre-KIP-966 switch), the holders the ISR
    /// dropped while alive could not lead, and its last members lost the record in a crash.
    LastReplicaStanding { crashes: Vec<(u32, u64)>, left_isr: Vec<(u32, u64)> },
}

/// One lost record, where it was lost and why (None: the events do not explain it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossFinding {
    pub record: LostRecord,
    pub point: Option<LossPoint>,
    pub cause: Option<LossCause>,
}

/// The lost-write and unseen records of `report` (every entry kept, so check with no cap
/// for a complete answer) with the time each was known committed. Unseen values without an
/// offset (acks=0) are left out: there is nothing to place them at.
pub fn lost_records(history: &History, report: &CheckReport) -> Vec<LostRecord> {
    let facts = Facts::collect(history);
    let mut out = Vec::new();
    for kind in [AnomalyKind::LostWrite, AnomalyKind::Unseen] {
        for anomaly in report.entries(kind) {
            let Some(&value) = anomaly.values.first() else { continue };
            let record = acked_record(&facts, history, &anomaly.key, value);
            out.extend(record.map(|r| read_before_ack(&facts, history, r)));
        }
    }
    out
}

/// The committed records (acked, or read) that the offset, send-order and consumer-order
/// anomalies of `report` name, other than `lost`: a record no later read crossed is not
/// found lost, yet when the event log shows its partition went on without it (`explain`
/// finds a point), its offsets were reused as a lost record's are. Send-order and offset
/// anomalies name their values (swarm seed 219: acks=1, a clean election of a follower that
/// had not copied the acked tail, and the producer's next send landed below its last ack);
/// a consumer's polls and commits name offsets, and the records read there count (swarm
/// seed 381: a consumer read offset 136, KIP-966 recovery elected a replica whose log ended
/// at 136, and the consumer, learning of the truncation, committed 137 and then 136).
pub fn displaced_records(
    history: &History,
    report: &CheckReport,
    lost: &[LostRecord],
) -> Vec<LostRecord> {
    let facts = Facts::collect(history);
    let mut seen: BTreeSet<(&str, u64)> = lost.iter().map(|r| (r.key.as_str(), r.value)).collect();
    let mut out = Vec::new();
    for kind in AnomalyKind::ALL {
        for anomaly in report.entries(kind) {
            let (values, read) = match kind {
                AnomalyKind::InconsistentOffsets
                | AnomalyKind::NonmonotonicSend
                | AnomalyKind::IntNonmonotonicSend
                | AnomalyKind::RealtimeSendOrder => (anomaly.values.clone(), false),
                AnomalyKind::NonmonotonicPoll
                | AnomalyKind::PollSkip
                | AnomalyKind::RealtimeCommitOrder => (read_between(&facts, anomaly), true),
                _ => continue,
            };
            for value in values {
                if !seen.insert((anomaly.key.as_str(), value)) {
                    continue;
                }
                let record = acked_record(&facts, history, &anomaly.key, value);
                // A read record was in the log before the poll that returned it, maybe long
                // before (fetched, then buffered): its replay starts at its send.
                let record = match read {
                    true => record.map(since_send),
                    false => record,
                };
                out.extend(record);
            }
        }
    }
    out
}

/// The most offsets one consumer anomaly contributes records from.
const SPAN_MAX: u64 = 4_096;

/// The values read on the anomaly's key at offsets from its lowest to its highest.
fn read_between(facts: &Facts, anomaly: &super::Anomaly) -> Vec<u64> {
    let (Some(&lo), Some(&hi)) = (anomaly.offsets.iter().min(), anomaly.offsets.iter().max())
    else {
        return Vec::new();
    };
    let Some(key) = facts.keys.get(anomaly.key.as_str()) else { return Vec::new() };
    let hi = hi.min(lo.saturating_add(SPAN_MAX));
    let mut values: Vec<u64> = key
        .observations
        .iter()
        .filter(|o| o.source == Source::Poll && (lo..=hi).contains(&o.offset))
        .map(|o| o.value)
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

/// `record` known from its send's invocation on.
fn since_send(mut record: LostRecord) -> LostRecord {
    record.committed_ns = record.committed_ns.min(record.sent_ns);
    record
}

/// `record`, known from its send on when a poll read it before its ack arrived: it was in a
/// log then, and that log's fate decides its loss (swarm seed 339: a leader with the ISR to
/// itself appended offsets 80 and 81, a consumer read both, an unclean election cut them,
/// and the ack of 81 reached its producer five seconds later).
fn read_before_ack(facts: &Facts, history: &History, record: LostRecord) -> LostRecord {
    let Some(key) = facts.keys.get(record.key.as_str()) else { return record };
    let ops = history.ops();
    let read_early = key.observations.iter().any(|o| {
        let time = ops.get(o.op as usize).map_or(u64::MAX, |op| op.time_ns);
        o.source == Source::Poll && o.value == record.value && time < record.committed_ns
    });
    match read_early {
        true => since_send(record),
        false => record,
    }
}

/// `value` of `key` as acked (None: never acked, or acked without an offset, as acks=0 is:
/// there is nothing to place it at), with the time it was known committed.
fn acked_record(facts: &Facts, history: &History, key: &str, value: u64) -> Option<LostRecord> {
    let committed = facts.keys.get(key)?.committed.get(&value)?;
    let offset = committed.offset?;
    let ops = history.ops();
    let committed_ns = ops.get(committed.commit_index as usize).map_or(0, |op| op.time_ns);
    let send = facts.keys.get(key).and_then(|k| k.sends.get(&value));
    let invoked = send.and_then(|s| ops.get(s.invoke_index as usize)).map(|op| op.time_ns);
    let sent_ns = invoked.map_or(committed_ns, |t| t.min(committed_ns));
    Some(LostRecord { key: key.to_string(), value, offset, committed_ns, sent_ns })
}

/// When each op happened and how far each key's offsets had reached (acks and polls), for
/// telling what an anomaly saw before a loss from what it saw after.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    op_times_ns: Vec<u64>,
    /// key -> (time, highest offset acked or polled up to then), in time order.
    reached: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Observed {
    pub fn from_history(history: &History) -> Observed {
        let mut observed = Observed::default();
        for op in history.ops() {
            observed.op_times_ns.push(op.time_ns);
            let offsets: Vec<(&str, u64)> = match &op.value {
                OpValue::Send(micros) => {
                    micros.iter().filter_map(|m| Some((m.key.as_str(), m.offset?))).collect()
                }
                OpValue::Poll(micros) => micros
                    .iter()
                    .filter_map(|m| m.records.as_ref())
                    .flat_map(|records| records.iter())
                    .flat_map(|(key, run)| run.iter().map(move |r| (key.as_str(), r.offset)))
                    .collect(),
                _ => Vec::new(),
            };
            for (key, offset) in offsets {
                let reached = observed.reached.entry(key.to_string()).or_default();
                let highest = reached.last().map_or(offset, |&(_, h)| h.max(offset));
                reached.push((op.time_ns, highest));
            }
        }
        observed
    }

    /// The simulated time of op `index`.
    pub fn time_of(&self, index: u64) -> Option<u64> {
        self.op_times_ns.get(usize::try_from(index).ok()?).copied()
    }

    /// The highest offset of `key` any ack or poll showed before `time_ns`.
    pub fn reached_before(&self, key: &str, time_ns: u64) -> Option<u64> {
        let reached = self.reached.get(key)?;
        let before = reached.partition_point(|&(t, _)| t < time_ns);
        before.checked_sub(1).map(|i| reached[i].1)
    }
}

/// "broker-1 at 3.000 s, broker-2 at 4.000 s".
fn brokers_at(list: &[(u32, u64)]) -> String {
    let named: Vec<String> =
        list.iter().map(|(b, t)| format!("broker-{b} at {}", secs(*t))).collect();
    named.join(", ")
}

/// Explains each of `lost` from `events`.
pub fn explain(events: &[Event], settings: LossSettings, lost: &[LostRecord]) -> Vec<LossFinding> {
    let timeline = Timeline::read(events, settings);
    lost.iter().map(|record| timeline.explain(record, settings)).collect()
}

impl LossCause {
    /// One sentence naming the events, for the judgement.
    pub fn describe(&self, record: &LostRecord) -> String {
        let at = format!("offset {} of {}", record.offset, record.key);
        match self {
            LossCause::UnsyncedCrash { crashes, left_isr } => {
                let mut text = format!(
                    "every in-sync replica that held {at} lost it to an unsynced crash ({})",
                    brokers_at(crashes)
                );
                if !left_isr.is_empty() {
                    let left = brokers_at(left_isr);
                    text.push_str(&format!(
                        "; replicas dropped from the ISR alive ({left}) no longer counted"
                    ));
                }
                text
            }
            LossCause::UncleanElection { leader, time_ns, leo } => format!(
                "an unclean election (allowed by the topic) elected broker-{leader} at {} whose \
                 log ended at {leo}, below {at}",
                secs(*time_ns)
            ),
            LossCause::UncleanRecovery { leader, time_ns, leo } => format!(
                "KIP-966 unclean recovery elected broker-{leader}, the last known leader, at {} \
                 (no in-sync or eligible replica was left) whose log ended at {leo}, below {at}",
                secs(*time_ns)
            ),
            LossCause::LastReplicaStanding { crashes, left_isr } => format!(
                "eligible_leader_replicas = false (pre-KIP-966 switch): {} left the ISR alive \
                 holding {at} and could not lead; the last in-sync {} lost it to an unsynced \
                 crash",
                brokers_at(left_isr),
                brokers_at(crashes)
            ),
            LossCause::HwTruncation { broker, time_ns, to } => format!(
                "truncation = high-watermark (pre-KIP-101 switch): broker-{broker} cut its log \
                 to {to} at {}, dropping {at}",
                secs(*time_ns)
            ),
        }
    }
}

impl LossPoint {
    pub fn describe(&self) -> String {
        format!(
            "broker-{} {} at {} with its log ending at {}",
            self.broker,
            self.how,
            secs(self.time_ns),
            self.truncation_point
        )
    }
}

/// Simulated nanoseconds as seconds, the way reports print them.
pub fn secs(time_ns: u64) -> String {
    format!("{:.3} s", time_ns as f64 / 1e9)
}

/// One fact about one partition (or its brokers), in event-log order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// The broker was killed (crash, power loss, a lone broker's heal restart).
    Crash {
        broker: u32,
    },
    /// The broker's log recovery after a restart cut the log to `leo`.
    Recovered {
        broker: u32,
        leo: u64,
    },
    BecameLeader {
        broker: u32,
        leo: u64,
    },
    BecameFollower {
        broker: u32,
    },
    Truncated {
        broker: u32,
        to: u64,
    },
    /// A committed partition change: the leader, the electable replicas (ISR and ELR), and
    /// whether the leader was elected outside them (unclean).
    Changed {
        leader: Option<u32>,
        electable: BTreeSet<u32>,
        unclean: bool,
        /// The unclean leader was chosen by KIP-966 unclean recovery, not unclean election.
        recovery: bool,
    },
}

/// The event log per partition (broker kills copied into every partition).
struct Timeline {
    by_tp: BTreeMap<String, Vec<(u64, Step)>>,
}

impl Timeline {
    fn read(events: &[Event], settings: LossSettings) -> Timeline {
        let mut by_tp: BTreeMap<String, Vec<(u64, Step)>> = BTreeMap::new();
        let mut kills: Vec<(u64, u32)> = Vec::new();
        // (node, time, tp) of the last unclean-election event: the active controller logs
        // it right before the partition-changed it goes with; the others log it later.
        let mut unclean_at: Option<(&str, u64, &str)> = None;
        let mut recovery = false;
        let mut brokers: BTreeSet<u32> = BTreeSet::new();
        for event in events {
            let tp = event.fields.get("tp").map(String::as_str);
            let broker = broker_index(&event.node);
            brokers.extend(broker);
            let step = match (event.kind.as_str(), tp, broker) {
                ("fault-crash", _, Some(b)) => {
                    kills.push((event.time_ns, b));
                    None
                }
                ("fault-power-loss", _, _) => {
                    let nodes = event.fields.get("nodes").map_or("", String::as_str);
                    kills.extend(
                        nodes.split(',').filter_map(broker_index).map(|b| (event.time_ns, b)),
                    );
                    None
                }
                ("healed", _, _) if settings.lone_broker => {
                    kills.extend(brokers.iter().map(|&b| (event.time_ns, b)));
                    None
                }
                ("unclean-election" | "unclean-recovery", Some(tp), _) => {
                    unclean_at = Some((event.node.as_str(), event.time_ns, tp));
                    recovery = event.kind == "unclean-recovery";
                    None
                }
                ("log-recovery", Some(tp), Some(b)) => {
                    recovered_leo(event).map(|leo| (tp, Step::Recovered { broker: b, leo }))
                }
                ("became-leader", Some(tp), Some(b)) => {
                    field_u64(event, "leo").map(|leo| (tp, Step::BecameLeader { broker: b, leo }))
                }
                ("became-follower", Some(tp), Some(b)) => {
                    Some((tp, Step::BecameFollower { broker: b }))
                }
                ("truncated", Some(tp), Some(b)) => {
                    field_u64(event, "to").map(|to| (tp, Step::Truncated { broker: b, to }))
                }
                ("partition-changed", Some(tp), _) => {
                    let unclean = unclean_at == Some((event.node.as_str(), event.time_ns, tp));
                    Some((tp, changed(event, unclean, unclean && recovery)))
                }
                _ => None,
            };
            if let Some((tp, step)) = step {
                by_tp.entry(tp.to_string()).or_default().push((event.time_ns, step));
            }
        }
        for steps in by_tp.values_mut() {
            steps.extend(kills.iter().map(|&(t, broker)| (t, Step::Crash { broker })));
            // Stable: a kill sorts after the partition steps of its instant.
            steps.sort_by_key(|(t, _)| *t);
        }
        Timeline { by_tp }
    }

    fn explain(&self, record: &LostRecord, settings: LossSettings) -> LossFinding {
        let steps = self.by_tp.get(&record.key).map(Vec::as_slice).unwrap_or(&[]);
        let split = steps.partition_point(|(t, _)| *t <= record.committed_ns);
        let mut replay = Replay::at_commit(&steps[..split], record.offset, settings);
        for (i, (time_ns, step)) in steps[split..].iter().enumerate() {
            if let Some(point) = replay.step(*time_ns, step) {
                let rest = &steps[split + i + 1..];
                // A record a deposed leader took was gone when its successor took over,
                // even if a later election is where the replay first notices (swarm seed
                // 3825): the deposed leader's own truncation says so.
                if let Some(earlier) = replay.deposed_point(&point, rest) {
                    return LossFinding {
                        record: record.clone(),
                        point: Some(earlier),
                        cause: None,
                    };
                }
                let cause = replay.cause(&point);
                return LossFinding { record: record.clone(), point: Some(point), cause };
            }
        }
        // An ack that arrived late (swarm seed 934: a deposed leader appended offsets 415
        // and 416, was cut back to 409 by its successor's unclean election, and its acks
        // reached the producer 0.2 s later) names a record appended before it: replay again
        // from the send.
        if record.sent_ns < record.committed_ns {
            let early = LostRecord { committed_ns: record.sent_ns, ..record.clone() };
            let finding = self.explain(&early, settings);
            if finding.point.is_some() {
                return LossFinding { record: record.clone(), ..finding };
            }
        }
        // The partition never went on without it (as far as the events tell): unexplained.
        LossFinding { record: record.clone(), point: None, cause: None }
    }
}

/// What became of one holder's copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Holding,
    /// Killed with unsynced data at this time (its copy may be gone).
    Crashed(u64),
    /// Cut its log below the record at this time.
    Truncated(u64, u64),
}

/// The replay of one record's copies from its commit on.
struct Replay {
    offset: u64,
    settings: LossSettings,
    holders: BTreeMap<u32, Fate>,
    left_isr: Vec<(u32, u64)>,
    leader: Option<u32>,
    electable: BTreeSet<u32>,
    /// The leader the latest partition change elected outside the ISR.
    unclean_leader: Option<u32>,
    /// That leader came from KIP-966 unclean recovery.
    unclean_recovery: bool,
    /// Leaders replaced before the commit that had not cut their logs since: a record
    /// committed then may be on one of them alone, until it truncates. Each with when its
    /// successor took over and that successor's log end then.
    zombies: BTreeMap<u32, (u64, u64)>,
}

impl Replay {
    /// The state at the commit: the ISR and leader of the last partition change before it.
    fn at_commit(before: &[(u64, Step)], offset: u64, settings: LossSettings) -> Replay {
        let mut replay = Replay {
            offset,
            settings,
            holders: BTreeMap::new(),
            left_isr: Vec::new(),
            leader: None,
            electable: BTreeSet::new(),
            unclean_leader: None,
            unclean_recovery: false,
            zombies: BTreeMap::new(),
        };
        let mut acting: BTreeSet<u32> = BTreeSet::new();
        // Replicas that took a role before any ISR change: a new partition's ISR is all of
        // its replicas.
        let mut replicas: BTreeSet<u32> = BTreeSet::new();
        let mut changed = false;
        for (time_ns, step) in before {
            match step {
                Step::Changed { leader, electable, unclean, recovery } => {
                    changed = true;
                    replay.leader = *leader;
                    replay.electable = electable.clone();
                    replay.unclean_leader = if *unclean { *leader } else { None };
                    replay.unclean_recovery = *recovery;
                }
                Step::BecameLeader { broker, leo } => {
                    replay.leader = Some(*broker);
                    replicas.insert(*broker);
                    for deposed in acting.iter().filter(|b| *b != broker) {
                        replay.zombies.insert(*deposed, (*time_ns, *leo));
                    }
                    acting.insert(*broker);
                    replay.zombies.remove(broker);
                }
                Step::BecameFollower { broker } | Step::Recovered { broker, .. } => {
                    replicas.insert(*broker);
                    acting.remove(broker);
                }
                Step::Truncated { broker, .. } => {
                    replicas.insert(*broker);
                    replay.zombies.remove(broker);
                }
                Step::Crash { broker } => {
                    acting.remove(broker);
                }
            }
        }
        if !changed {
            replay.electable = replicas;
        }
        let holders: BTreeSet<u32> = match replay.leader {
            Some(leader) if !settings.acks_all => BTreeSet::from([leader]),
            _ => replay.electable.clone(),
        };
        replay.holders = holders.into_iter().map(|b| (b, Fate::Holding)).collect();
        replay
    }

    fn holding(&self, broker: u32) -> bool {
        self.holders.get(&broker) == Some(&Fate::Holding)
    }

    /// Folds one step in; Some when the partition moved on without the record.
    fn step(&mut self, time_ns: u64, step: &Step) -> Option<LossPoint> {
        let offset = self.offset;
        match step {
            Step::Crash { broker } => {
                if self.holding(*broker) && !self.settings.flush_every_batch {
                    self.holders.insert(*broker, Fate::Crashed(time_ns));
                }
            }
            Step::Recovered { broker, leo } => {
                let crashed = matches!(self.holders.get(broker), Some(Fate::Crashed(_)));
                if crashed && *leo > offset {
                    // The synced part of its log still has the record.
                    self.holders.insert(*broker, Fate::Holding);
                }
                let gone = !self.holders.values().any(|f| *f == Fate::Holding);
                if self.settings.lone_broker && *leo <= offset && gone {
                    let (broker, how) = (*broker, "recovered its log");
                    return Some(LossPoint { time_ns, truncation_point: *leo, broker, how });
                }
            }
            Step::BecameFollower { .. } => {}
            Step::Truncated { broker, to } => {
                if self.holding(*broker) && *to <= offset {
                    self.holders.insert(*broker, Fate::Truncated(time_ns, *to));
                }
                // A deposed leader, on hearing of its successor, cuts what it took alone
                // (swarm seed 1937: records read from it after an unclean election). The
                // partition went on without them when the successor took over.
                let deposed = self.zombies.remove(broker);
                if let Some((since_ns, leo)) = deposed.filter(|_| *to <= offset) {
                    let how = "was a deposed leader, and its successor's log ended there";
                    let (time_ns, truncation_point) = (since_ns, leo.min(*to));
                    return Some(LossPoint { time_ns, truncation_point, broker: *broker, how });
                }
            }
            Step::Changed { leader, electable, unclean, recovery } => {
                self.changed(time_ns, *leader, electable, *unclean);
                self.unclean_recovery = *recovery;
            }
            Step::BecameLeader { broker, leo } => {
                self.leader = Some(*broker);
                self.zombies.remove(broker);
                if *leo > offset {
                    if matches!(self.holders.get(broker), Some(Fate::Crashed(_))) {
                        self.holders.insert(*broker, Fate::Holding);
                    }
                    return None;
                }
                let (broker, how) = (*broker, "was elected leader");
                return Some(LossPoint { time_ns, truncation_point: *leo, broker, how });
            }
        }
        None
    }

    /// A committed partition change: holders leaving the ISR and ELR alive stop protecting
    /// the record; replicas joining under a leader that holds it hold it.
    fn changed(
        &mut self,
        time_ns: u64,
        leader: Option<u32>,
        electable: &BTreeSet<u32>,
        unclean: bool,
    ) {
        let leader_holds = self.leader.is_some_and(|l| self.holding(l));
        for broker in electable.difference(&self.electable) {
            if leader_holds {
                self.holders.insert(*broker, Fate::Holding);
            }
        }
        let left: Vec<u32> = self
            .holders
            .iter()
            .filter(|(b, fate)| **fate == Fate::Holding && !electable.contains(b))
            .map(|(b, _)| *b)
            .collect();
        for broker in left {
            self.holders.remove(&broker);
            self.left_isr.push((broker, time_ns));
        }
        self.electable = electable.clone();
        self.leader = leader;
        self.unclean_leader = if unclean { leader } else { None };
    }

    /// The point a deposed leader's later truncation below the record gives, when its
    /// successor took over before `found`.
    fn deposed_point(&mut self, found: &LossPoint, rest: &[(u64, Step)]) -> Option<LossPoint> {
        let offset = self.offset;
        self.zombies.retain(|_, (since, leo)| *since < found.time_ns && *leo <= offset);
        if self.zombies.is_empty() {
            return None;
        }
        rest.iter().find_map(|(time_ns, step)| match step {
            Step::Truncated { .. } => self.step(*time_ns, step),
            _ => None,
        })
    }

    /// Why the partition moved on at `point` without the record.
    fn cause(&self, point: &LossPoint) -> Option<LossCause> {
        if self.unclean_leader == Some(point.broker) {
            let (leader, time_ns, leo) = (point.broker, point.time_ns, point.truncation_point);
            if self.unclean_recovery {
                return Some(LossCause::UncleanRecovery { leader, time_ns, leo });
            }
            return Some(LossCause::UncleanElection { leader, time_ns, leo });
        }
        self.holders_lost()
    }

    /// Every in-sync holder crashed; or some holder cut its log to its HW (the old rule).
    fn holders_lost(&self) -> Option<LossCause> {
        let crashes: Vec<(u32, u64)> = self
            .holders
            .iter()
            .filter_map(|(b, fate)| match fate {
                Fate::Crashed(t) => Some((*b, *t)),
                _ => None,
            })
            .collect();
        // With acks=1 only the leader held it: the failover, not the crash, is the story.
        let replicated = self.settings.acks_all || self.settings.lone_broker;
        if replicated && !crashes.is_empty() && crashes.len() == self.holders.len() {
            let left_isr = self.left_isr.clone();
            if self.settings.no_elr && !left_isr.is_empty() {
                return Some(LossCause::LastReplicaStanding { crashes, left_isr });
            }
            return Some(LossCause::UnsyncedCrash { crashes, left_isr });
        }
        let still_held = self.holders.values().any(|f| *f == Fate::Holding);
        if !self.settings.truncation_to_hw || still_held {
            return None;
        }
        self.holders.iter().find_map(|(b, fate)| match fate {
            Fate::Truncated(time_ns, to) => {
                Some(LossCause::HwTruncation { broker: *b, time_ns: *time_ns, to: *to })
            }
            _ => None,
        })
    }
}

/// The index of "broker-N".
fn broker_index(node: &str) -> Option<u32> {
    node.strip_prefix("broker-")?.parse().ok()
}

fn field_u64(event: &Event, name: &str) -> Option<u64> {
    event.fields.get(name)?.parse().ok()
}

/// Every number in a field such as "[NodeId(0), NodeId(2)]".
fn numbers(text: &str) -> BTreeSet<u32> {
    text.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// The log end offset a log-recovery report ends at ("... log_end_offset: Offset(12) }").
fn recovered_leo(event: &Event) -> Option<u64> {
    let report = event.fields.get("report")?;
    let (_, after) = report.rsplit_once("log_end_offset: Offset(")?;
    after.split(')').next()?.parse().ok()
}

/// A partition-changed event as a step: leader "n1" or "none", ISR and ELR lists.
fn changed(event: &Event, unclean: bool, recovery: bool) -> Step {
    let field = |name: &str| event.fields.get(name).map_or("", String::as_str);
    let leader = field("leader").strip_prefix('n').and_then(|n| n.parse().ok());
    let mut electable = numbers(field("isr"));
    electable.extend(numbers(field("elr")));
    Step::Changed { leader, electable, unclean, recovery }
}

#[cfg(test)]
mod tests;
