//! Producer-order anomalies: nonmonotonic-send and int-nonmonotonic-send (a process's sends
//! to a key land out of order), and realtime-send-order (a send invoked after another was
//! acked lands before it).

use std::collections::BTreeMap;

use crate::history::{History, OpType, OpValue, SendMicro};

use super::facts::Facts;
use super::{Anomaly, AnomalyKind, Collector};

/// The highest acked offset so far, and what put it there.
#[derive(Clone, Copy, Debug)]
struct Ack {
    offset: u64,
    value: u64,
    /// Completion index of the send.
    op: u64,
}

pub(crate) fn check(history: &History, facts: &Facts<'_>, out: &mut Collector) {
    // process -> its outstanding invocation index.
    let mut outstanding: BTreeMap<u64, u64> = BTreeMap::new();
    // (process, key) -> highest offset acked to the process by earlier ops.
    let mut per_process: BTreeMap<(u64, &str), Ack> = BTreeMap::new();
    // key -> highest offset acked by any completed op.
    let mut per_key: BTreeMap<&str, Ack> = BTreeMap::new();
    for op in history.ops() {
        let OpValue::Send(micros) = &op.value else {
            if op.op_type == OpType::Invoke {
                outstanding.insert(op.process, op.index);
            } else {
                outstanding.remove(&op.process);
            }
            continue;
        };
        if op.op_type == OpType::Invoke {
            outstanding.insert(op.process, op.index);
            realtime_order(op.index, micros, facts, &per_key, out);
            continue;
        }
        let invoke_index = outstanding.remove(&op.process).unwrap_or(op.index);
        process_order(op.process, invoke_index, op.index, micros, &mut per_process, out);
        for m in micros {
            let Some(offset) = m.offset else { continue };
            let best = per_key.entry(m.key.as_str()).or_insert(Ack {
                offset,
                value: m.value,
                op: op.index,
            });
            if offset > best.offset {
                *best = Ack { offset, value: m.value, op: op.index };
            }
        }
    }
}

/// nonmonotonic-send: per (process, key), across ops, the first acked micro-op of an op
/// lands at or before the highest offset the process's earlier ops were acked at.
/// int-nonmonotonic-send: within one op, a later acked micro-op on a key lands at or before
/// the previous acked micro-op on that key. Micro-ops without an offset are skipped.
fn process_order<'h>(
    process: u64,
    invoke_index: u64,
    completion_index: u64,
    micros: &'h [SendMicro],
    per_process: &mut BTreeMap<(u64, &'h str), Ack>,
    out: &mut Collector,
) {
    // key -> (first, last, highest) acked micro-op of this op.
    let mut in_op: BTreeMap<&str, (Ack, Ack, Ack)> = BTreeMap::new();
    for m in micros {
        let Some(offset) = m.offset else { continue };
        let ack = Ack { offset, value: m.value, op: completion_index };
        match in_op.get_mut(m.key.as_str()) {
            None => {
                in_op.insert(&m.key, (ack, ack, ack));
            }
            Some((_, last, highest)) => {
                if offset <= last.offset {
                    let last = *last;
                    out.push(AnomalyKind::IntNonmonotonicSend, || {
                        Anomaly::new(
                            &m.key,
                            format!(
                                "within the send completed at op {completion_index}, value {} landed at offset {offset} \
                                 of {}, at or before value {} at offset {}",
                                m.value, m.key, last.value, last.offset
                            ),
                        )
                        .offsets(vec![last.offset, offset])
                        .values(vec![last.value, m.value])
                        .ops([invoke_index, completion_index])
                        .process(process)
                    });
                }
                *last = ack;
                if offset > highest.offset {
                    *highest = ack;
                }
            }
        }
    }
    for (key, (first, _, highest)) in in_op {
        let previous = per_process.get(&(process, key)).copied();
        if let Some(previous) = previous.filter(|p| first.offset <= p.offset) {
            out.push(AnomalyKind::NonmonotonicSend, || {
                Anomaly::new(
                    key,
                    format!(
                        "process {process}'s send completed at op {completion_index} landed value {} at offset {} \
                         of {key}, at or before value {} acked at offset {} (op {})",
                        first.value, first.offset, previous.value, previous.offset, previous.op
                    ),
                )
                .offsets(vec![previous.offset, first.offset])
                .values(vec![previous.value, first.value])
                .ops([previous.op, invoke_index, completion_index])
                .process(process)
            });
        }
        if previous.is_none_or(|p| highest.offset > p.offset) {
            per_process.insert((process, key), highest);
        }
    }
}

/// realtime-send-order: sends A and B on the same key, A acked at offset oA by a completion
/// with index cA, B invoked at index iB > cA, yet B's committed offset (its ack offset, else
/// the offset it was first read at) is below oA. Checked against the highest oA so far.
fn realtime_order(
    invoke_index: u64,
    micros: &[SendMicro],
    facts: &Facts<'_>,
    per_key: &BTreeMap<&str, Ack>,
    out: &mut Collector,
) {
    for m in micros {
        let Some(earlier) = per_key.get(m.key.as_str()) else { continue };
        let Some(offset) = facts
            .keys
            .get(m.key.as_str())
            .and_then(|k| k.committed.get(&m.value))
            .and_then(|c| c.offset)
        else {
            continue;
        };
        if offset >= earlier.offset {
            continue;
        }
        out.push(AnomalyKind::RealtimeSendOrder, || {
            let later = &facts.keys[m.key.as_str()].sends[&m.value];
            let mut ops = vec![earlier.op, invoke_index];
            ops.extend(later.completion_index);
            Anomaly::new(
                &m.key,
                format!(
                    "value {} of {} was sent (op {invoke_index}) after value {} was acked at offset {} (op {}), \
                     yet landed before it, at offset {offset}",
                    m.value, m.key, earlier.value, earlier.offset, earlier.op
                ),
            )
            .offsets(vec![earlier.offset, offset])
            .values(vec![earlier.value, m.value])
            .ops(ops)
            .process(later.process)
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testkit::{kinds, Builder};
    use crate::check::AnomalyKind;
    use crate::history::OpType;

    const K: &str = "events-0";

    fn read_all(b: &mut Builder, records: &[(u64, u64)]) {
        b.poll_ok(99, &[(K, records)]);
    }

    #[test]
    fn process_send_landing_before_its_previous_one_is_nonmonotonic() {
        let mut b = Builder::new();
        // Process 0's second send is acked below its first (a retried batch reordered).
        let (_, first) = b.send_ok(0, K, 1, 1);
        let (i, c) = b.send_ok(0, K, 2, 0);
        read_all(&mut b, &[(0, 2), (1, 1)]);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::NonmonotonicSend), 1);
        let e = &report.entries(AnomalyKind::NonmonotonicSend)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![1, 0], vec![1, 2], vec![first, i, c])
        );
        // Value 2 was also invoked after value 1 was acked.
        assert_eq!(report.count(AnomalyKind::RealtimeSendOrder), 1);
    }

    #[test]
    fn in_order_sends_pass() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.invoke_send(0, &[(K, 2), (K, 3)]);
        b.complete_send(0, OpType::Ok, &[(K, 2, Some(1)), (K, 3, Some(2))]);
        b.send_ok(1, K, 4, 3);
        read_all(&mut b, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert!(b.check().valid);
    }

    #[test]
    fn later_micro_op_landing_first_is_int_nonmonotonic() {
        let mut b = Builder::new();
        let i = b.invoke_send(0, &[(K, 1), (K, 2)]);
        let c = b.complete_send(0, OpType::Ok, &[(K, 1, Some(1)), (K, 2, Some(0))]);
        read_all(&mut b, &[(0, 2), (1, 1)]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::IntNonmonotonicSend]);
        let e = &report.entries(AnomalyKind::IntNonmonotonicSend)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![1, 0], vec![1, 2], vec![i, c])
        );
    }

    #[test]
    fn send_invoked_after_an_ack_landing_before_it_breaks_realtime_order() {
        let mut b = Builder::new();
        let (_, a) = b.send_ok(0, K, 1, 5);
        let (i, c) = b.send_ok(1, K, 2, 4);
        read_all(&mut b, &[(4, 2), (5, 1)]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::RealtimeSendOrder]);
        let e = &report.entries(AnomalyKind::RealtimeSendOrder)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![5, 4], vec![1, 2], vec![a, i, c])
        );
    }

    #[test]
    fn concurrent_sends_may_land_in_any_order() {
        let mut b = Builder::new();
        b.invoke_send(1, &[(K, 2)]);
        b.send_ok(0, K, 1, 5);
        b.complete_send(1, OpType::Ok, &[(K, 2, Some(4))]);
        read_all(&mut b, &[(4, 2), (5, 1)]);
        assert!(b.check().valid);
    }

    #[test]
    fn info_value_read_before_an_earlier_ack_breaks_realtime_order() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 5);
        b.send_without_offset(1, OpType::Info, K, 2);
        read_all(&mut b, &[(4, 2), (5, 1)]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::RealtimeSendOrder]);
    }
}
