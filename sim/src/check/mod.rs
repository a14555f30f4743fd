//! The client-history checker: Jepsen's Kafka anomalies (jepsen.tests.kafka names) over a
//! validated [`History`]. One module per family of anomalies:
//!
//! - `facts`: one pass over the history collecting sends, reads, acks and committed values;
//! - `durability`: lost-write, unseen, aborted-read;
//! - `offsets`: inconsistent-offsets, duplicate;
//! - `polls`: poll-skip, nonmonotonic-poll, int-poll-skip, int-nonmonotonic-poll;
//! - `sends`: nonmonotonic-send, int-nonmonotonic-send, realtime-send-order;
//! - `groups`: realtime-commit-order from the history; stale-commit and two-owners live
//!   (through `cluster`), and the per-group figures;
//! - `losses`: why each lost record was lost, read from the node event log;
//! - `fences`: why a static member was fenced, read from the node event log;
//! - `promises`: which anomalies Kafka allows under a given configuration and, with the
//!   losses the event log explains, which follow from an allowed loss.
//!
//! The checker reports what the history shows; whether that is a bug or "expected under
//! this config" is [`promises::allowed`]'s call. Everything is O(n log n) in the history
//! size, iterates BTreeMaps only, and never panics on a validated history.

pub mod cluster;
mod durability;
mod facts;
pub mod fences;
mod final_log;
pub mod groups;
pub mod losses;
mod offsets;
mod polls;
pub mod promises;
mod sends;
#[cfg(test)]
pub(crate) mod testkit;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{History, Key};

/// How many anomaly entries of one kind a report keeps (all are counted); a hundred is
/// enough to diagnose a run and keeps results.json small.
pub const ENTRIES_PER_KIND_MAX_DEFAULT: usize = 100;

/// How many op indexes one anomaly lists; an offset re-read by every poll would otherwise
/// list the whole history.
pub const OPS_PER_ANOMALY_MAX: usize = 32;

/// The anomaly kinds, serialized with Jepsen's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    LostWrite,
    Unseen,
    InconsistentOffsets,
    Duplicate,
    /// Jepsen's G1a.
    #[serde(alias = "G1a")]
    AbortedRead,
    PollSkip,
    NonmonotonicPoll,
    IntPollSkip,
    IntNonmonotonicPoll,
    NonmonotonicSend,
    IntNonmonotonicSend,
    RealtimeSendOrder,
    /// Consumer groups: an ok commit below an earlier ok commit of the key that completed
    /// before it was invoked.
    RealtimeCommitOrder,
}

/// Which sources disagree about one (key, offset), most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Between {
    /// Two polls returned different values: replicas diverged below the HW.
    PollPoll,
    /// An ack named one value, a poll returned another (legal with acks=1 or unclean).
    AckPoll,
    /// Two acks named different values (an acked record was overwritten after failover).
    AckAck,
}

/// How a lost write showed itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LostWriteForm {
    /// (a) Never read by any poll, yet at or below the highest offset an ok poll reached.
    NeverRead,
    /// (b) An ok poll invoked after the commit read across its offset without it.
    Vanished,
}

/// One anomaly: the key, offsets, values and op indexes involved (see each kind's checker
/// for their order) and a one-line explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub key: Key,
    pub offsets: Vec<u64>,
    pub values: Vec<u64>,
    pub ops: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<u64>,
    /// inconsistent-offsets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<Between>,
    /// lost-write only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<LostWriteForm>,
    /// poll-skip and int-poll-skip: the first known offset that was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_offset: Option<u64>,
    /// Poll anomalies of a process that subscribed (consumer groups): a rebalance may
    /// legitimately move its position.
    #[serde(default, skip_serializing_if = "is_false")]
    pub subscribe_mode: bool,
    pub explanation: String,
}

/// Checker knobs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOptions {
    pub entries_per_kind_max: usize,
}

/// Counts that say how much the history exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub ops: u64,
    pub keys: u64,
    pub sends_ok: u64,
    pub sends_info: u64,
    pub sends_fail: u64,
    /// Send invocations that never completed (history ended or the client crashed).
    pub sends_incomplete: u64,
    /// Send micro-ops that completed ok or carry an ack offset.
    pub acked_values: u64,
    /// Acked values plus indeterminate ones some poll read.
    pub committed_values: u64,
    /// Distinct (key, value) pairs any poll read.
    pub values_read: u64,
    /// Records returned by all polls, repeats included.
    pub records_read: u64,
    /// Completed poll ops (any type).
    pub polls: u64,
    pub unseen: u64,
    pub duplicates: u64,
    /// Distinct (key, value) pairs read that no send ever wrote: a broker inventing data.
    pub values_read_never_sent: u64,
}

/// The checker's verdict on one history (embedded in results.json).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// No anomaly of any kind.
    pub valid: bool,
    /// Every anomaly found, per kind.
    pub counts: BTreeMap<AnomalyKind, u64>,
    /// The first `entries_per_kind_max` anomalies per kind, in (key, offset) or history order.
    pub anomalies: BTreeMap<AnomalyKind, Vec<Anomaly>>,
    pub stats: Stats,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 13] = [
        AnomalyKind::LostWrite,
        AnomalyKind::Unseen,
        AnomalyKind::InconsistentOffsets,
        AnomalyKind::Duplicate,
        AnomalyKind::AbortedRead,
        AnomalyKind::PollSkip,
        AnomalyKind::NonmonotonicPoll,
        AnomalyKind::IntPollSkip,
        AnomalyKind::IntNonmonotonicPoll,
        AnomalyKind::NonmonotonicSend,
        AnomalyKind::IntNonmonotonicSend,
        AnomalyKind::RealtimeSendOrder,
        AnomalyKind::RealtimeCommitOrder,
    ];

    /// Jepsen's name, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::LostWrite => "lost-write",
            AnomalyKind::Unseen => "unseen",
            AnomalyKind::InconsistentOffsets => "inconsistent-offsets",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::AbortedRead => "aborted-read",
            AnomalyKind::PollSkip => "poll-skip",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic-poll",
            AnomalyKind::IntPollSkip => "int-poll-skip",
            AnomalyKind::IntNonmonotonicPoll => "int-nonmonotonic-poll",
            AnomalyKind::NonmonotonicSend => "nonmonotonic-send",
            AnomalyKind::IntNonmonotonicSend => "int-nonmonotonic-send",
            AnomalyKind::RealtimeSendOrder => "realtime-send-order",
            AnomalyKind::RealtimeCommitOrder => "realtime-commit-order",
        }
    }
}

impl Anomaly {
    pub fn new(key: &str, explanation: String) -> Anomaly {
        Anomaly {
            key: key.to_owned(),
            offsets: Vec::new(),
            values: Vec::new(),
            ops: Vec::new(),
            process: None,
            between: None,
            form: None,
            skipped_offset: None,
            subscribe_mode: false,
            explanation,
        }
    }

    fn offsets(mut self, offsets: Vec<u64>) -> Anomaly {
        self.offsets = offsets;
        self
    }

    fn values(mut self, values: Vec<u64>) -> Anomaly {
        self.values = values;
        self
    }

    /// Op indexes, deduplicated in first-seen order and capped at [`OPS_PER_ANOMALY_MAX`].
    fn ops(mut self, ops: impl IntoIterator<Item = u64>) -> Anomaly {
        let mut kept: Vec<u64> = Vec::new();
        for op in ops {
            if kept.len() == OPS_PER_ANOMALY_MAX {
                break;
            }
            if !kept.contains(&op) {
                kept.push(op);
            }
        }
        self.ops = kept;
        self
    }

    fn process(mut self, process: u64) -> Anomaly {
        self.process = Some(process);
        self
    }
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { entries_per_kind_max: ENTRIES_PER_KIND_MAX_DEFAULT }
    }
}

impl CheckReport {
    /// How many anomalies of `kind` were found (kept or not).
    pub fn count(&self, kind: AnomalyKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// The kept entries of `kind`.
    pub fn entries(&self, kind: AnomalyKind) -> &[Anomaly] {
        self.anomalies.get(&kind).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Checks `history` for every anomaly kind.
pub fn check(history: &History, opts: &CheckOptions) -> CheckReport {
    let facts = facts::Facts::collect(history);
    let mut out = Collector::new(opts);
    durability::check(&facts, &mut out);
    offsets::check(&facts, &mut out);
    polls::check(history, &facts, &mut out);
    sends::check(history, &facts, &mut out);
    groups::check_commit_order(history, &mut out);
    let mut stats = facts.stats.clone();
    stats.unseen = out.count(AnomalyKind::Unseen);
    stats.duplicates = out.count(AnomalyKind::Duplicate);
    let report = CheckReport {
        valid: out.counts.values().all(|&n| n == 0),
        counts: out.counts,
        anomalies: out.entries,
        stats,
    };
    assert_eq!(report.valid, report.anomalies.is_empty(), "counts and entries disagree");
    report
}

/// Counts every anomaly, keeps the first few of each kind.
pub(crate) struct Collector {
    entries_per_kind_max: usize,
    counts: BTreeMap<AnomalyKind, u64>,
    entries: BTreeMap<AnomalyKind, Vec<Anomaly>>,
}

impl Collector {
    fn new(opts: &CheckOptions) -> Collector {
        Collector {
            entries_per_kind_max: opts.entries_per_kind_max,
            counts: BTreeMap::new(),
            entries: BTreeMap::new(),
        }
    }

    /// Records one anomaly; `build` runs only if the entry is kept.
    pub(crate) fn push(&mut self, kind: AnomalyKind, build: impl FnOnce() -> Anomaly) {
        let count = self.counts.entry(kind).or_insert(0);
        *count += 1;
        let entries = self.entries.entry(kind).or_default();
        if entries.len() < self.entries_per_kind_max {
            entries.push(build());
        }
    }

    pub(crate) fn count(&self, kind: AnomalyKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::testkit::Builder;
    use super::*;
    use crate::history::OpType;
    use proptest::prelude::*;

    #[test]
    fn kind_names_are_jepsens() {
        for kind in AnomalyKind::ALL {
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: AnomalyKind = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, kind);
        }
        let g1a: AnomalyKind = serde_json::from_str("\"G1a\"").expect("alias");
        assert_eq!(g1a, AnomalyKind::AbortedRead);
    }

    #[test]
    fn report_serializes_with_kind_names_as_keys() {
        let mut b = Builder::new();
        b.send_ok(0, "k", 1, 1);
        b.poll_ok(1, &[("k", &[(0, 9)])]);
        let report = check(&b.finish(), &CheckOptions::default());
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["counts"]["unseen"], 1);
        let back: CheckReport = serde_json::from_value(json).expect("parses");
        assert_eq!(back, report);
    }

    #[test]
    fn entries_are_bounded_but_all_counted() {
        let mut b = Builder::new();
        for v in 0..10 {
            b.send_ok(0, "k", v, v);
        }
        let opts = CheckOptions { entries_per_kind_max: 3 };
        let report = check(&b.finish(), &opts);
        assert_eq!(report.count(AnomalyKind::Unseen), 10);
        assert_eq!(report.entries(AnomalyKind::Unseen).len(), 3);
        assert_eq!(report.stats.unseen, 10);
    }

    #[test]
    fn empty_history_is_valid() {
        let report = check(&History::default(), &CheckOptions::default());
        assert!(report.valid);
    }

    /// A model Kafka: one log per key, producers whose appends happen between invoke and
    /// completion, consumers reading contiguous ranges in order. Its histories are valid.
    fn model_history(actions: &[(u8, u8, u8)]) -> History {
        const KEYS: [&str; 2] = ["k-0", "k-1"];
        const PRODUCERS: u64 = 3;
        let mut b = Builder::new();
        let mut logs: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut next_value = 0u64;
        // producer -> (key index, value, appended offset)
        let mut pending: BTreeMap<u64, (usize, u64, Option<u64>)> = BTreeMap::new();
        // consumer process -> positions per key
        let mut consumer = PRODUCERS;
        let mut positions = [0u64; 2];
        b.assign(consumer, &KEYS);
        for &(action, a, c) in actions {
            let p = u64::from(a) % PRODUCERS;
            let k = usize::from(c) % KEYS.len();
            match action % 7 {
                0 if !pending.contains_key(&p) => {
                    next_value += 1;
                    b.invoke_send(p, &[(KEYS[k], next_value)]);
                    pending.insert(p, (k, next_value, None));
                }
                1 => {
                    if let Some((k, v, appended @ None)) = pending.get_mut(&p) {
                        logs[*k].push(*v);
                        *appended = Some(logs[*k].len() as u64 - 1);
                    }
                }
                2 => {
                    if let Some((k, v, appended)) = pending.remove(&p) {
                        let (op_type, offset) = match (appended, c % 3) {
                            (Some(o), 0) => (OpType::Ok, Some(o)),
                            (Some(o), 1) => (OpType::Info, Some(o)),
                            (Some(_), _) => (OpType::Info, None),
                            (None, 0) => (OpType::Fail, None),
                            (None, _) => (OpType::Info, None),
                        };
                        b.complete_send(p, op_type, &[(KEYS[k], v, offset)]);
                    }
                }
                3 | 4 => {
                    let ok = action % 7 == 3;
                    let n = u64::from(a % 4);
                    let from = positions[k];
                    let to = (from + n).min(logs[k].len() as u64);
                    let run: Vec<(u64, u64)> =
                        (from..to).map(|o| (o, logs[k][o as usize])).collect();
                    if ok {
                        b.poll_ok(consumer, &[(KEYS[k], &run)]);
                        positions[k] = to;
                    } else {
                        b.poll(consumer, OpType::Info, &[(KEYS[k], &run)]);
                    }
                }
                5 => {
                    positions[k] = u64::from(a) % (logs[k].len() as u64 + 1);
                    b.seek(consumer, KEYS[k], positions[k]);
                }
                _ => {
                    b.crash(consumer);
                    consumer += 1;
                    positions = [0, 0];
                    b.assign(consumer, &KEYS);
                }
            }
        }
        // Catch-up reads by a fresh consumer.
        let reader = consumer + 1;
        b.assign(reader, &KEYS);
        for (k, key) in KEYS.iter().enumerate() {
            let run: Vec<(u64, u64)> =
                logs[k].iter().enumerate().map(|(o, v)| (o as u64, *v)).collect();
            b.poll_ok(reader, &[(key, &run)]);
        }
        b.finish()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn valid_model_histories_have_no_anomalies(
            actions in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..120)
        ) {
            let history = model_history(&actions);
            let report = check(&history, &CheckOptions::default());
            prop_assert!(report.valid, "{:#?}", report.anomalies);
        }

        #[test]
        fn checker_never_panics_on_mutated_valid_histories(
            actions in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..40),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u32..10), 1..4),
        ) {
            // Rewrite digits only, so most mutants still parse and reach the checker.
            let text = crate::history::to_jsonl(&model_history(&actions));
            let mut chars: Vec<char> = text.chars().collect();
            let digits: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_digit()).collect();
            for (at, digit) in edits {
                if !digits.is_empty() {
                    chars[digits[at.index(digits.len())]] =
                        char::from_digit(digit, 10).expect("a decimal digit");
                }
            }
            let text: String = chars.into_iter().collect();
            if let Ok(history) = crate::history::parse_jsonl(&text) {
                let _ = check(&history, &CheckOptions::default());
            }
        }
    }
}
