//! Offset anomalies: inconsistent-offsets (one offset, two values) and duplicate (one value,
//! two offsets), over every ack offset and every record any poll returned.

use std::collections::BTreeSet;

use super::facts::{Facts, Observation, Source};
use super::{Anomaly, AnomalyKind, Between, Collector};

pub(crate) fn check(facts: &Facts<'_>, out: &mut Collector) {
    for (&key, key_facts) in &facts.keys {
        let mut observations = key_facts.observations.clone();
        observations.sort_unstable();
        inconsistent_offsets(key, &observations, out);
        observations.sort_unstable_by_key(|o| (o.value, o.offset, o.source, o.op));
        duplicates(key, &observations, out);
    }
}

/// inconsistent-offsets: one (key, offset) associated with two or more different values,
/// over ack offsets (of ok and info sends) and the records of every poll of any type.
/// `between` is the most severe pair present: poll-poll if two polls disagree, else
/// ack-poll if an ack and a poll disagree, else ack-ack. `values` lists the distinct values,
/// `ops` the ops that showed them.
fn inconsistent_offsets(key: &str, sorted: &[Observation], out: &mut Collector) {
    for group in sorted.chunk_by(|a, b| a.offset == b.offset) {
        let values: BTreeSet<u64> = group.iter().map(|o| o.value).collect();
        if values.len() < 2 {
            continue;
        }
        let polled: BTreeSet<u64> =
            group.iter().filter(|o| o.source == Source::Poll).map(|o| o.value).collect();
        let between = if polled.len() >= 2 {
            Between::PollPoll
        } else if !polled.is_empty() {
            Between::AckPoll
        } else {
            Between::AckAck
        };
        let offset = group[0].offset;
        out.push(AnomalyKind::InconsistentOffsets, || {
            let acked: BTreeSet<u64> =
                group.iter().filter(|o| o.source == Source::Ack).map(|o| o.value).collect();
            let mut anomaly = Anomaly::new(
                key,
                format!(
                    "offset {offset} of {key} holds different values: acked {acked:?}, polled {polled:?} ({})",
                    between_name(between)
                ),
            )
            .offsets(vec![offset])
            .values(values.into_iter().collect())
            .ops(ops_in_order(group));
            anomaly.between = Some(between);
            anomaly
        });
    }
}

/// duplicate: one value at two or more distinct offsets of a key, over acks and polls.
/// `offsets` lists the distinct offsets, `ops` the ops that showed them.
fn duplicates(key: &str, sorted_by_value: &[Observation], out: &mut Collector) {
    for group in sorted_by_value.chunk_by(|a, b| a.value == b.value) {
        let offsets: BTreeSet<u64> = group.iter().map(|o| o.offset).collect();
        if offsets.len() < 2 {
            continue;
        }
        let value = group[0].value;
        out.push(AnomalyKind::Duplicate, || {
            Anomaly::new(key, format!("value {value} of {key} appears at offsets {offsets:?}"))
                .offsets(offsets.into_iter().collect())
                .values(vec![value])
                .ops(ops_in_order(group))
        });
    }
}

fn ops_in_order(group: &[Observation]) -> Vec<u64> {
    let ops: BTreeSet<u64> = group.iter().map(|o| o.op).collect();
    ops.into_iter().collect()
}

fn between_name(between: Between) -> &'static str {
    match between {
        Between::PollPoll => "poll vs poll",
        Between::AckPoll => "ack vs poll",
        Between::AckAck => "ack vs ack",
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testkit::{kinds, Builder};
    use crate::check::{AnomalyKind, Between};
    use crate::history::OpType;

    const K: &str = "events-0";

    #[test]
    fn ack_and_poll_disagree() {
        let mut b = Builder::new();
        let (_, ack) = b.send_ok(0, K, 1, 0);
        b.send_ok(0, K, 2, 1);
        let (_, poll) = b.poll_ok(1, &[(K, &[(0, 2)])]);
        let report = b.check();
        let entries = report.entries(AnomalyKind::InconsistentOffsets);
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!((e.key.as_str(), e.offsets.clone(), e.values.clone()), (K, vec![0], vec![1, 2]));
        assert_eq!(e.between, Some(Between::AckPoll));
        assert_eq!(e.ops, vec![ack, poll]);
        // Value 2 was acked at 1 and read at 0.
        assert_eq!(report.count(AnomalyKind::Duplicate), 1);
    }

    #[test]
    fn two_polls_disagree() {
        let mut b = Builder::new();
        b.send_without_offset(0, OpType::Info, K, 1);
        b.send_without_offset(0, OpType::Info, K, 2);
        let (_, p1) = b.poll_ok(1, &[(K, &[(0, 1)])]);
        let (_, p2) = b.poll(2, OpType::Fail, &[(K, &[(0, 2)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::InconsistentOffsets]);
        let e = &report.entries(AnomalyKind::InconsistentOffsets)[0];
        assert_eq!(e.between, Some(Between::PollPoll));
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![0], vec![1, 2], vec![p1, p2])
        );
    }

    #[test]
    fn two_acks_disagree() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.send_ok(1, K, 2, 0);
        b.poll_ok(2, &[(K, &[(0, 2)])]);
        let report = b.check();
        let e = &report.entries(AnomalyKind::InconsistentOffsets)[0];
        // A poll agrees with one ack: the poll vs ack pair is the one reported.
        assert_eq!(e.between, Some(Between::AckPoll));
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.send_ok(1, K, 2, 0);
        let report = b.check();
        assert_eq!(
            report.entries(AnomalyKind::InconsistentOffsets)[0].between,
            Some(Between::AckAck)
        );
    }

    #[test]
    fn agreeing_sources_pass() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.poll_ok(1, &[(K, &[(0, 1)])]);
        b.poll(2, OpType::Info, &[(K, &[(0, 1)])]);
        b.poll_ok(3, &[(K, &[(0, 1)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn value_at_two_offsets_is_a_duplicate() {
        let mut b = Builder::new();
        let (_, ack) = b.send_ok(0, K, 1, 0);
        let (_, poll) = b.poll_ok(1, &[(K, &[(0, 1), (1, 1)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::Duplicate]);
        let e = &report.entries(AnomalyKind::Duplicate)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![0, 1], vec![1], vec![ack, poll])
        );
        assert_eq!(report.stats.duplicates, 1);
    }

    #[test]
    fn value_reread_at_the_same_offset_is_not_a_duplicate() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.poll_ok(1, &[(K, &[(0, 1)])]);
        b.poll_ok(2, &[(K, &[(0, 1)])]);
        assert!(b.check().valid);
    }
}
