//! Consumer-order anomalies: poll-skip and nonmonotonic-poll across a process's polls, and
//! their int- forms within one poll. Owns the per-(process, key) consumer position model:
//! it moves only on ok polls and resets on assign, seek and subscribe, and for the keys a
//! completion's rebalance log names.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{History, Op, OpF, OpType, OpValue, RebalanceKind, Record};

use super::facts::Facts;
use super::final_log::{self, Slot};
use super::{Anomaly, AnomalyKind, Collector};

/// Where a process's previous ok poll of a key ended.
#[derive(Clone, Copy, Debug)]
struct Position {
    offset: u64,
    value: u64,
    /// Completion index of the poll that got there.
    op: u64,
    /// The last record read (since the position was reset) that the final log still
    /// holds at its offset, and the completion index of its poll.
    last_final: Option<(Record, u64)>,
}

/// One poll's records of one key, with where they came from.
struct Run<'a> {
    key: &'a str,
    records: &'a [Record],
    process: u64,
    invoke_index: u64,
    completion_index: u64,
    subscribe_mode: bool,
}

/// poll-skip / nonmonotonic-poll: per (process, key), the last offset of the previous ok
/// poll is the position. The next ok poll's first offset f for that key is nonmonotonic if
/// f <= position, and a skip if some offset strictly between position and f is known to
/// exist (known offsets = every offset seen in acks and polls of the key).
///
/// Polls are also judged against the final log's order, as Jepsen's version order does: a
/// record read is "final" if the final log holds its value at its offset (see `final_log`).
/// If the first final record of the next poll lies more than one known offset past the
/// last final record the process read before, the process skipped records of the final
/// log: a consumer that read records later truncated away and then continued at its old
/// offset on the refilled log (no KIP-320 validation) skipped the refill, though its raw
/// offsets look contiguous. In a log without reused offsets this is the same judgement as
/// the one by offsets. Assign resets
/// every key of the process, seek the keys it names, subscribe every key; a crash ends the
/// process. Polls completing fail or info move nothing. Anomalies of a process that
/// subscribed carry `subscribe_mode: true`.
///
/// Rebalances (Jepsen's judgement): a completion's rebalance log lists the keys whose
/// ownership changed (assigned, revoked, lost) since the process's previous completion, so
/// possibly during this op, before or after its records were taken. Those keys' positions
/// are forgotten before the op's records are judged, and the revoked or lost ones again
/// after: no poll-skip or nonmonotonic-poll across an ownership change, and no int- anomaly
/// for a key rebalanced during the op.
///
/// int-poll-skip / int-nonmonotonic-poll: within one poll's records for a key (any poll
/// type), consecutive offsets o1, o2 with o2 <= o1 (nonmonotonic) or a known offset strictly
/// between them (skip).
pub(crate) fn check(history: &History, facts: &Facts<'_>, out: &mut Collector) {
    let empty = BTreeSet::new();
    let known = |key: &str| facts.keys.get(key).map_or(&empty, |k| &k.known_offsets);
    let finals = final_log::derive(facts);
    let no_final = BTreeMap::new();
    let mut outstanding: BTreeMap<u64, u64> = BTreeMap::new();
    let mut subscribed: BTreeSet<u64> = BTreeSet::new();
    let mut positions: BTreeMap<(u64, &str), Position> = BTreeMap::new();
    for op in history.ops() {
        if op.op_type == OpType::Invoke {
            outstanding.insert(op.process, op.index);
            reset_positions(op, &mut positions, &mut subscribed);
            continue;
        }
        let invoke_index = outstanding.remove(&op.process).unwrap_or(op.index);
        let log = op.rebalance_log();
        let rebalanced: BTreeSet<&str> =
            log.iter().flat_map(|entry| &entry.keys).map(String::as_str).collect();
        if !rebalanced.is_empty() {
            positions
                .retain(|&(process, key), _| process != op.process || !rebalanced.contains(key));
        }
        let OpValue::Poll(micros) = &op.value else { continue };
        for records in micros.iter().filter_map(|m| m.records.as_ref()) {
            for (key, records) in records {
                let run = Run {
                    key,
                    records,
                    process: op.process,
                    invoke_index,
                    completion_index: op.index,
                    subscribe_mode: subscribed.contains(&op.process),
                };
                if !rebalanced.contains(key.as_str()) {
                    internal_order(&run, known(key), out);
                }
                if op.op_type == OpType::Ok {
                    let logs = Logs {
                        known: known(key),
                        finals: finals.get(key.as_str()).unwrap_or(&no_final),
                    };
                    across_polls(&run, &logs, &mut positions, out);
                }
            }
        }
        // Where in the op a revocation or loss happened is unknown: the records may predate
        // it, so the next poll is not compared with them either. (Records of a key cannot
        // predate its assignment.)
        let ended: BTreeSet<&str> = log
            .iter()
            .filter(|entry| entry.kind != RebalanceKind::Assigned)
            .flat_map(|entry| &entry.keys)
            .map(String::as_str)
            .collect();
        if !ended.is_empty() {
            positions.retain(|&(process, key), _| process != op.process || !ended.contains(key));
        }
    }
}

fn reset_positions<'h>(
    op: &'h Op,
    positions: &mut BTreeMap<(u64, &'h str), Position>,
    subscribed: &mut BTreeSet<u64>,
) {
    match (&op.f, &op.value) {
        (OpF::Seek, OpValue::Seek(keys)) => {
            for key in keys.keys() {
                positions.remove(&(op.process, key.as_str()));
            }
        }
        (OpF::Assign | OpF::Subscribe | OpF::Crash, _) => {
            if op.f == OpF::Subscribe {
                subscribed.insert(op.process);
            }
            positions.retain(|&(process, _), _| process != op.process);
        }
        _ => {}
    }
}

/// What the checker knows of one key's log.
struct Logs<'a> {
    known: &'a BTreeSet<u64>,
    finals: &'a BTreeMap<u64, Slot>,
}

fn across_polls<'h>(
    run: &Run<'h>,
    logs: &Logs<'_>,
    positions: &mut BTreeMap<(u64, &'h str), Position>,
    out: &mut Collector,
) {
    let (Some(first), Some(last)) = (run.records.first(), run.records.last()) else { return };
    let is_final = |r: &&Record| logs.finals.get(&r.offset) == Some(&Slot::Final(r.value));
    let first_final = run.records.iter().find(is_final);
    let last_final = run.records.iter().rev().find(is_final).map(|r| (*r, run.completion_index));
    let previous = positions.get(&(run.process, run.key)).copied();
    let position = Position {
        offset: last.offset,
        value: last.value,
        op: run.completion_index,
        last_final: last_final.or(previous.and_then(|p| p.last_final)),
    };
    positions.insert((run.process, run.key), position);
    let Some(previous) = previous else { return };
    if first.offset > previous.offset
        && strictly_between(logs.known, previous.offset, first.offset).is_none()
    {
        if let (Some(from), Some(to)) = (previous.last_final, first_final) {
            final_log_skip(run, logs, from, *to, out);
        }
        return;
    }
    let (kind, skipped) = if first.offset <= previous.offset {
        (AnomalyKind::NonmonotonicPoll, None)
    } else {
        let skipped = strictly_between(logs.known, previous.offset, first.offset);
        (AnomalyKind::PollSkip, skipped)
    };
    out.push(kind, || {
        let what = match skipped {
            Some(s) => format!("skipping known offset {s}"),
            None => "at or before where it was".to_owned(),
        };
        let mut anomaly = Anomaly::new(
            run.key,
            format!(
                "process {} polled {} from offset {} after its previous ok poll (op {}) ended at {}, {what}",
                run.process, run.key, first.offset, previous.op, previous.offset
            ),
        )
        .offsets(vec![previous.offset, first.offset])
        .values(vec![previous.value, first.value])
        .ops([previous.op, run.invoke_index, run.completion_index])
        .process(run.process);
        anomaly.skipped_offset = skipped;
        anomaly.subscribe_mode = run.subscribe_mode;
        anomaly
    });
}

/// The process's last final record was `from` (read in op `from.1`), its next is `to`:
/// a skip if the final log holds a record between them that the process did not read. Every
/// known offset between them qualifies except an ambiguous one, whose final record the
/// process may have read (its other reads there are not final).
fn final_log_skip(
    run: &Run<'_>,
    logs: &Logs<'_>,
    (from, from_op): (Record, u64),
    to: Record,
    out: &mut Collector,
) {
    if to.offset <= from.offset {
        return;
    }
    let mut between = logs.known.range(from.offset + 1..to.offset);
    let Some(&skipped) = between.find(|o| logs.finals.get(o) != Some(&Slot::Ambiguous)) else {
        return;
    };
    let skipped_value = match logs.finals.get(&skipped) {
        Some(Slot::Final(value)) => format!("value {value}"),
        _ => "a record no op saw".to_owned(),
    };
    out.push(AnomalyKind::PollSkip, || {
        let mut anomaly = Anomaly::new(
            run.key,
            format!(
                "process {} polled {} at offset {} (value {}), but the last record it read that \
                 the final log still holds was offset {} (value {}, op {}): it skipped the final \
                 log's records from offset {skipped} ({skipped_value}), which replaced what it had \
                 read there",
                run.process, run.key, to.offset, to.value, from.offset, from.value, from_op,
            ),
        )
        .offsets(vec![from.offset, to.offset])
        .values(vec![from.value, to.value])
        .ops([from_op, run.invoke_index, run.completion_index])
        .process(run.process);
        anomaly.skipped_offset = Some(skipped);
        anomaly.subscribe_mode = run.subscribe_mode;
        anomaly
    });
}

fn internal_order(run: &Run<'_>, known: &BTreeSet<u64>, out: &mut Collector) {
    for pair in run.records.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (kind, skipped) = if b.offset <= a.offset {
            (AnomalyKind::IntNonmonotonicPoll, None)
        } else {
            match strictly_between(known, a.offset, b.offset) {
                Some(skipped) => (AnomalyKind::IntPollSkip, Some(skipped)),
                None => continue,
            }
        };
        out.push(kind, || {
            let what = match skipped {
                Some(s) => format!("skipping known offset {s}"),
                None => "going backwards or repeating".to_owned(),
            };
            let mut anomaly = Anomaly::new(
                run.key,
                format!(
                    "the poll completed at op {} returned offset {} then {} of {}, {what}",
                    run.completion_index, a.offset, b.offset, run.key
                ),
            )
            .offsets(vec![a.offset, b.offset])
            .values(vec![a.value, b.value])
            .ops([run.invoke_index, run.completion_index])
            .process(run.process);
            anomaly.skipped_offset = skipped;
            anomaly.subscribe_mode = run.subscribe_mode;
            anomaly
        });
    }
}

/// The lowest known offset strictly between `low` and `high`.
fn strictly_between(known: &BTreeSet<u64>, low: u64, high: u64) -> Option<u64> {
    let from = low.checked_add(1)?;
    if from >= high {
        return None;
    }
    known.range(from..high).next().copied()
}

#[cfg(test)]
mod tests {
    use crate::check::testkit::{kinds, Builder};
    use crate::check::AnomalyKind;
    use crate::history::OpType;
    use crate::history::RebalanceKind::{Assigned, Lost, Revoked};

    const K: &str = "events-0";

    /// Values 100..=105 acked at offsets 0..=5 by process 0.
    fn log_0_to_5(b: &mut Builder) {
        for o in 0..=5 {
            b.send_ok(0, K, 100 + o, o);
        }
    }

    #[test]
    fn next_poll_past_a_known_offset_is_a_skip() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.assign(1, &[K]);
        let (_, first) = b.poll_ok(1, &[(K, &[(0, 100), (1, 101)])]);
        let (i, c) = b.poll_ok(1, &[(K, &[(3, 103), (4, 104), (5, 105)])]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::PollSkip]);
        let e = &report.entries(AnomalyKind::PollSkip)[0];
        assert_eq!(
            (e.key.as_str(), e.offsets.clone(), e.values.clone()),
            (K, vec![1, 3], vec![101, 103])
        );
        assert_eq!(
            (e.ops.clone(), e.skipped_offset, e.process, e.subscribe_mode),
            (vec![first, i, c], Some(2), Some(1), false)
        );
    }

    /// Process 1 read values 100..=103 at offsets 0..=3; then offsets 2.. were truncated
    /// and refilled with 202..=205 (acked by process 0); process 9's catch-up reads the
    /// final log. `next` is process 1's next poll, after `seek` (if any).
    fn truncated_under_the_consumer(
        seek: Option<u64>,
        next: &[(u64, u64)],
    ) -> (Builder, (u64, u64)) {
        let mut b = Builder::new();
        for o in 0..=3 {
            b.send_ok(0, K, 100 + o, o);
        }
        b.assign(1, &[K]);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101)])]);
        b.poll_ok(1, &[(K, &[(2, 102), (3, 103)])]);
        for o in 2..=5 {
            b.send_ok(0, K, 200 + o, o);
        }
        if let Some(offset) = seek {
            b.seek(1, K, offset);
        }
        let next_poll = b.poll_ok(1, &[(K, next)]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 202), (3, 203), (4, 204), (5, 205)])]);
        (b, next_poll)
    }

    #[test]
    fn continuing_past_a_truncation_skips_the_refill_of_the_final_log() {
        // Planted bug: the position (4) is trusted on the new log; offsets 2 and 3 now hold
        // 202 and 203, which process 1 never read.
        let (b, (i, c)) = truncated_under_the_consumer(None, &[(4, 204), (5, 205)]);
        let report = b.check();
        assert!(kinds(&report).contains(&AnomalyKind::PollSkip), "{:?}", kinds(&report));
        let e = &report.entries(AnomalyKind::PollSkip)[0];
        assert_eq!((e.offsets.clone(), e.values.clone()), (vec![1, 4], vec![101, 204]));
        assert_eq!((e.skipped_offset, e.process), (Some(2), Some(1)));
        assert_eq!(e.ops[1..], [i, c], "the skipping poll");
    }

    #[test]
    fn a_seek_to_the_divergence_point_or_a_truncation_above_the_reads_is_no_skip() {
        // Near miss 1: KIP-320 validation moved the position back to 2 (a seek).
        let (b, _) = truncated_under_the_consumer(Some(2), &[(2, 202), (3, 203)]);
        let report = b.check();
        assert!(!kinds(&report).contains(&AnomalyKind::PollSkip), "{:?}", kinds(&report));
        // Near miss 2: only offsets from 4 on were refilled, and the consumer read up to 3.
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103)])]);
        b.send_ok(0, K, 304, 4);
        b.poll_ok(1, &[(K, &[(4, 304)])]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 304)])]);
        let report = b.check();
        assert!(!kinds(&report).contains(&AnomalyKind::PollSkip), "{:?}", kinds(&report));
    }

    #[test]
    fn records_above_a_shorter_refill_are_not_in_the_final_log() {
        // Process 1 read 2..=5 in order before the truncation to 2; the refill reached
        // only offset 3, so 4 and 5 (never seen again) are not final: no skip from 1 to 5.
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101)])]);
        b.poll_ok(1, &[(K, &[(2, 102), (3, 103), (4, 104), (5, 105)])]);
        b.send_ok(0, K, 202, 2);
        b.send_ok(0, K, 203, 3);
        b.seek(1, K, 2);
        b.poll_ok(1, &[(K, &[(2, 202), (3, 203)])]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 202), (3, 203)])]);
        let report = b.check();
        assert!(!kinds(&report).contains(&AnomalyKind::PollSkip), "{:?}", kinds(&report));
    }

    #[test]
    fn contiguous_polls_and_polls_after_seek_pass() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.assign(1, &[K]);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101)])]);
        b.poll_ok(1, &[(K, &[(2, 102), (3, 103)])]);
        b.seek(1, K, 5);
        b.poll_ok(1, &[(K, &[(5, 105)])]);
        b.seek(1, K, 0);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn failed_and_info_polls_do_not_move_the_position() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101)])]);
        b.poll(1, OpType::Info, &[(K, &[(2, 102), (3, 103)])]);
        b.poll_ok(1, &[(K, &[(2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn next_poll_at_or_before_the_position_is_nonmonotonic() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        let (_, first) = b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102)])]);
        let (i, c) = b.poll_ok(1, &[(K, &[(2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::NonmonotonicPoll]);
        let e = &report.entries(AnomalyKind::NonmonotonicPoll)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![2, 2], vec![102, 102], vec![first, i, c])
        );
    }

    #[test]
    fn crash_assign_and_subscribe_reset_or_flag() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        b.crash(1);
        // A new process starts over: no anomaly.
        b.poll_ok(2, &[(K, &[(0, 100)])]);
        b.assign(2, &[K]);
        b.poll_ok(2, &[(K, &[(0, 100)])]);
        assert!(b.check().valid);

        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.subscribe(1);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::NonmonotonicPoll]);
        assert!(report.entries(AnomalyKind::NonmonotonicPoll)[0].subscribe_mode);
    }

    #[test]
    fn a_rebalance_between_polls_hides_a_skip_and_a_repeat() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.subscribe(1);
        b.poll_ok_rebalanced(1, &[(K, &[(0, 100), (1, 101)])], &[(Assigned, 1, &[K])]);
        // Revoked and assigned back (committed offset 3): the skip over 2 is not reported.
        b.poll_ok_rebalanced(1, &[(K, &[(3, 103)])], &[(Revoked, 1, &[K]), (Assigned, 2, &[K])]);
        // Lost and re-assigned from an older commit: the repeat is not reported.
        b.poll_ok_rebalanced(1, &[(K, &[(2, 102), (3, 103)])], &[(Lost, 2, &[K])]);
        b.poll_ok(1, &[(K, &[(4, 104), (5, 105)])]);
        b.poll_ok(2, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn records_taken_before_a_rebalance_logged_in_their_op_are_not_compared_with_the_next() {
        // group-safe seed 30: records 2 and 3 were taken in generation 1, the rebalance came
        // while they were processed (so it is logged in that poll), and the next poll
        // resumed from the commit before them.
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.subscribe(1);
        b.poll_ok_rebalanced(1, &[(K, &[(0, 100), (1, 101)])], &[(Assigned, 1, &[K])]);
        b.poll_ok_rebalanced(
            1,
            &[(K, &[(2, 102), (3, 103)])],
            &[(Revoked, 1, &[K]), (Assigned, 2, &[K])],
        );
        b.poll_ok(1, &[(K, &[(2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn without_a_rebalance_of_that_key_a_subscribed_skip_is_reported() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.send_ok(0, "other-0", 7, 0);
        b.subscribe(1);
        b.poll_ok_rebalanced(1, &[(K, &[(0, 100), (1, 101)])], &[(Assigned, 1, &[K])]);
        // Only another key moved: the skip over 2 stays.
        b.poll_ok_rebalanced(
            1,
            &[(K, &[(3, 103)]), ("other-0", &[(0, 7)])],
            &[(Assigned, 1, &["other-0"])],
        );
        b.poll_ok(2, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::PollSkip]);
        assert!(report.entries(AnomalyKind::PollSkip)[0].subscribe_mode);
    }

    #[test]
    fn a_key_rebalanced_during_a_poll_has_no_int_anomaly() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.subscribe(1);
        let repeat: &[(u64, u64)] = &[(2, 102), (3, 103), (1, 101), (2, 102)];
        b.poll_ok_rebalanced(1, &[(K, repeat)], &[(Lost, 1, &[K]), (Assigned, 2, &[K])]);
        b.poll_ok(1, &[(K, &[(3, 103), (4, 104)])]);
        b.poll_ok(2, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert!(b.check().valid);
        // The same poll without the log: int-nonmonotonic-poll.
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        b.subscribe(1);
        b.poll_ok(1, &[(K, repeat)]);
        b.poll_ok(2, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert_eq!(kinds(&b.check()), vec![AnomalyKind::IntNonmonotonicPoll]);
    }

    #[test]
    fn gap_inside_one_poll_is_an_int_skip() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        let (i, c) = b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (3, 103), (4, 104), (5, 105)])]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        // The poll spans offset 2 without committed value 102: by definition (b) that value
        // vanished from the log too.
        assert_eq!(kinds(&report), vec![AnomalyKind::LostWrite, AnomalyKind::IntPollSkip]);
        let e = &report.entries(AnomalyKind::IntPollSkip)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone(), e.skipped_offset),
            (vec![1, 3], vec![101, 103], vec![i, c], Some(2))
        );
    }

    #[test]
    fn gap_over_unknown_offsets_is_no_skip() {
        // Offsets 2 and 3 never appear anywhere (e.g. control records): not a skip.
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 1);
        b.send_ok(0, K, 4, 4);
        b.poll_ok(1, &[(K, &[(1, 1), (4, 4)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn going_backwards_inside_one_poll_is_int_nonmonotonic() {
        let mut b = Builder::new();
        log_0_to_5(&mut b);
        let (i, c) = b.poll(1, OpType::Fail, &[(K, &[(0, 100), (1, 101), (2, 102), (1, 101)])]);
        b.poll_ok(9, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::IntNonmonotonicPoll]);
        let e = &report.entries(AnomalyKind::IntNonmonotonicPoll)[0];
        assert_eq!(
            (e.offsets.clone(), e.values.clone(), e.ops.clone()),
            (vec![2, 1], vec![102, 101], vec![i, c])
        );
    }
}
