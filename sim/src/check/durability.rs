//! Durability anomalies: lost-write, unseen, aborted-read. Owns what it means for a
//! committed value to be lost or merely unseen, and for a read to come from a failed send.

use std::collections::{BTreeMap, BTreeSet};

use super::facts::{Facts, KeyFacts, Outcome};
use super::{Anomaly, AnomalyKind, Collector, LostWriteForm};

/// A lost value and the ok poll that proves it vanished, if any.
struct Lost {
    offset: u64,
    form: LostWriteForm,
    /// (invoke, completion) of the witness poll for the vanished form.
    witness: Option<(u64, u64)>,
}

pub(crate) fn check(facts: &Facts<'_>, out: &mut Collector) {
    for (&key, key_facts) in &facts.keys {
        let lost = lost_writes(key_facts);
        report_lost(key, key_facts, &lost, out);
        unseen(key, key_facts, &lost, out);
        aborted_reads(key, key_facts, out);
    }
}

/// lost-write: a committed value v of key k at offset o such that EITHER
/// (a) `never-read`: o <= the highest offset any ok poll of k returned, and no poll (of any
///     type) ever read v; OR
/// (b) `vanished`: some ok poll invoked after v was committed (after its ack completed, or
///     after the completion of the first poll that read v) returned for k a run of records
///     spanning o (min offset <= o <= max offset of the run) without v in it.
///
/// When both hold the entry says `vanished` and names the witness poll.
fn lost_writes(facts: &KeyFacts<'_>) -> BTreeMap<u64, Lost> {
    let mut lost: BTreeMap<u64, Lost> = BTreeMap::new();
    // (b): walk each ok run over the committed values its offset range spans.
    for run in &facts.ok_runs {
        let min = run.records.iter().map(|r| r.offset).min().expect("ok runs are non-empty");
        let max = run.records.iter().map(|r| r.offset).max().expect("ok runs are non-empty");
        let mut run_values: Option<BTreeSet<u64>> = None;
        for &(offset, value) in facts.committed_by_offset.range((min, 0)..=(max, u64::MAX)) {
            let committed = &facts.committed[&value];
            if committed.commit_index >= run.invoke_index || lost.contains_key(&value) {
                continue;
            }
            let values =
                run_values.get_or_insert_with(|| run.records.iter().map(|r| r.value).collect());
            if !values.contains(&value) {
                let witness = Some((run.invoke_index, run.completion_index));
                lost.insert(value, Lost { offset, form: LostWriteForm::Vanished, witness });
            }
        }
    }
    // (a): acked, never read, below the ok-read frontier.
    let Some(frontier) = facts.max_ok_read_offset else { return lost };
    for (&value, committed) in &facts.committed {
        let Some(offset) = committed.offset else { continue };
        if committed.acked && offset <= frontier && !facts.reads.contains_key(&value) {
            lost.entry(value).or_insert(Lost {
                offset,
                form: LostWriteForm::NeverRead,
                witness: None,
            });
        }
    }
    lost
}

fn report_lost(key: &str, facts: &KeyFacts<'_>, lost: &BTreeMap<u64, Lost>, out: &mut Collector) {
    let mut by_offset: Vec<(u64, u64, &Lost)> =
        lost.iter().map(|(&v, l)| (l.offset, v, l)).collect();
    by_offset.sort_by_key(|&(offset, value, _)| (offset, value));
    for (offset, value, l) in by_offset {
        out.push(AnomalyKind::LostWrite, || {
            let send = &facts.sends[&value];
            let committed = &facts.committed[&value];
            let mut ops = vec![send.invoke_index];
            ops.extend(send.completion_index);
            ops.push(committed.commit_index);
            let explanation = match (l.form, l.witness) {
                (LostWriteForm::Vanished, Some((invoke, completion))) => format!(
                    "value {value} committed at offset {offset} of {key} (op {}), but the ok poll \
                     invoked at op {invoke} (completed op {completion}) read across offset {offset} without it",
                    committed.commit_index
                ),
                _ => format!(
                    "value {value} acked at offset {offset} of {key} (op {}) was never read, though ok \
                     polls read up to offset {}",
                    committed.commit_index,
                    facts.max_ok_read_offset.unwrap_or(0)
                ),
            };
            if let Some((invoke, completion)) = l.witness {
                ops.extend([invoke, completion]);
            }
            let mut anomaly = Anomaly::new(key, explanation)
                .offsets(vec![offset])
                .values(vec![value])
                .ops(ops)
                .process(send.process);
            anomaly.form = Some(l.form);
            anomaly
        });
    }
}

/// unseen: an acked value (ok completion, or an ack offset in an info one) that no poll read
/// by the end of the history and that is not a lost-write. In assign mode the runner ends
/// every history with catch-up reads from offset 0 of every key, so unseen means "not
/// readable at the end". In subscribe mode the catch-up keeps consuming from the group's
/// committed offsets and only ok polls count (see `KeyFacts::processed`), so unseen means
/// "never processed by the group": at-least-once broken.
fn unseen(key: &str, facts: &KeyFacts<'_>, lost: &BTreeMap<u64, Lost>, out: &mut Collector) {
    for (&value, committed) in &facts.committed {
        if !committed.acked || facts.processed.contains(&value) || lost.contains_key(&value) {
            continue;
        }
        out.push(AnomalyKind::Unseen, || {
            let send = &facts.sends[&value];
            let at = committed
                .offset
                .map_or_else(|| "an unknown offset".to_owned(), |o| format!("offset {o}"));
            Anomaly::new(
                key,
                format!(
                    "value {value} acked at {at} of {key} (op {}) was never read",
                    committed.commit_index
                ),
            )
            .offsets(committed.offset.into_iter().collect())
            .values(vec![value])
            .ops([send.invoke_index, committed.commit_index])
            .process(send.process)
        });
    }
}

/// aborted-read (G1a): any poll, of any type, reads a value whose send completed `fail`.
/// Indeterminate sends (info, or never completed) are never aborted.
fn aborted_reads(key: &str, facts: &KeyFacts<'_>, out: &mut Collector) {
    for (&value, read) in &facts.reads {
        let Some(send) = facts.sends.get(&value) else { continue };
        if send.outcome != Outcome::Fail {
            continue;
        }
        out.push(AnomalyKind::AbortedRead, || {
            let failed_at = send.completion_index.expect("a failed send has a completion");
            Anomaly::new(
                key,
                format!(
                    "value {value} of {key} was read at offset {} by the poll completed at op {}, but \
                     its send failed at op {failed_at}",
                    read.first_offset, read.first_poll_completion
                ),
            )
            .offsets(vec![read.first_offset])
            .values(vec![value])
            .ops([send.invoke_index, failed_at, read.first_poll_completion])
            .process(send.process)
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::check::testkit::{kinds, Builder};
    use crate::check::{AnomalyKind, LostWriteForm};
    use crate::history::OpType;

    const K: &str = "events-0";

    /// Acked values at offsets 0..=5 of K, values 100 + offset, from process 0.
    fn acked_0_to_5(b: &mut Builder) {
        for o in 0..=5 {
            b.send_ok(0, K, 100 + o, o);
        }
    }

    #[test]
    fn vanished_value_is_a_lost_write() {
        let mut b = Builder::new();
        acked_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103)])]);
        // Later poll spans 2..5 without value 103 (offset 3 now holds nothing).
        let (invoke, completion) = b.poll_ok(2, &[(K, &[(2, 102), (4, 104), (5, 105)])]);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::LostWrite), 1);
        let lost = &report.entries(AnomalyKind::LostWrite)[0];
        assert_eq!(
            (lost.key.as_str(), lost.offsets.as_slice(), lost.values.as_slice()),
            (K, &[3][..], &[103][..])
        );
        assert_eq!(lost.form, Some(LostWriteForm::Vanished));
        assert_eq!(lost.ops, vec![6, 7, invoke, completion]);
    }

    #[test]
    fn same_poll_with_the_value_passes() {
        let mut b = Builder::new();
        acked_0_to_5(&mut b);
        b.poll_ok(1, &[(K, &[(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (5, 105)])]);
        b.poll_ok(2, &[(K, &[(2, 102), (3, 103), (4, 104), (5, 105)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn acked_value_never_read_below_the_frontier_is_lost() {
        let mut b = Builder::new();
        let (i, c) = b.send_ok(0, K, 7, 3);
        // A later poll reads only offset 5: it does not span offset 3, so it is no witness.
        let p = b.invoke_poll(1);
        assert!(p > c);
        b.complete_poll(1, OpType::Ok, &[(K, &[(5, 9)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::LostWrite]);
        let lost = &report.entries(AnomalyKind::LostWrite)[0];
        assert_eq!(lost.form, Some(LostWriteForm::NeverRead));
        assert_eq!(
            (lost.offsets.clone(), lost.values.clone(), lost.ops.clone()),
            (vec![3], vec![7], vec![i, c])
        );
    }

    #[test]
    fn poll_invoked_before_the_ack_is_not_a_witness() {
        let mut b = Builder::new();
        let p = b.invoke_poll(1);
        b.invoke_send(0, &[(K, 7)]);
        // The poll saw offsets 2..4 before value 7 was appended at 3 (it reads a stale view).
        b.complete_send(0, OpType::Ok, &[(K, 7, Some(3))]);
        b.complete_poll(1, OpType::Ok, &[(K, &[(2, 1), (4, 2)])]);
        assert!(p < 2);
        b.poll_ok(2, &[(K, &[(3, 7)])]);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::LostWrite), 0, "{:?}", report.anomalies);
    }

    #[test]
    fn info_send_never_read_is_not_lost() {
        let mut b = Builder::new();
        b.send_without_offset(0, OpType::Info, K, 7);
        b.send_ok(0, K, 8, 0);
        b.poll_ok(1, &[(K, &[(0, 8)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn info_value_read_once_then_vanished_is_lost() {
        let mut b = Builder::new();
        b.send_without_offset(0, OpType::Info, K, 7);
        b.send_ok(0, K, 8, 1);
        let (_, first_read) = b.poll_ok(1, &[(K, &[(0, 7), (1, 8)])]);
        let (witness, _) = b.poll_ok(2, &[(K, &[(0, 9), (1, 8)])]);
        let report = b.check();
        assert_eq!(report.count(AnomalyKind::LostWrite), 1);
        let lost = &report.entries(AnomalyKind::LostWrite)[0];
        assert_eq!((lost.offsets.clone(), lost.values.clone()), (vec![0], vec![7]));
        assert!(lost.ops.contains(&first_read) && lost.ops.contains(&witness));
        // Offset 0 holds 7 and then 9 in two polls: replicas diverged.
        assert_eq!(report.count(AnomalyKind::InconsistentOffsets), 1);
        assert_eq!(report.stats.committed_values, 2);
        assert_eq!(report.stats.values_read_never_sent, 1);
    }

    #[test]
    fn acked_value_above_every_poll_is_unseen_not_lost() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        let (i, c) = b.send_ok(0, K, 2, 1);
        b.poll_ok(1, &[(K, &[(0, 1)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::Unseen]);
        let unseen = &report.entries(AnomalyKind::Unseen)[0];
        assert_eq!(
            (unseen.key.as_str(), unseen.offsets.clone(), unseen.values.clone()),
            (K, vec![1], vec![2])
        );
        assert_eq!(unseen.ops, vec![i, c]);
        assert_eq!(report.stats.unseen, 1);
    }

    #[test]
    fn acked_value_read_by_catch_up_is_seen() {
        let mut b = Builder::new();
        b.send_ok(0, K, 1, 0);
        b.send_ok(0, K, 2, 1);
        b.poll_ok(1, &[(K, &[(0, 1)])]);
        b.poll_ok(9, &[(K, &[(0, 1), (1, 2)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn ok_send_without_offset_never_read_is_unseen() {
        let mut b = Builder::new();
        b.send_without_offset(0, OpType::Ok, K, 1);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::Unseen]);
        assert!(report.entries(AnomalyKind::Unseen)[0].offsets.is_empty());
    }

    #[test]
    fn read_of_a_failed_send_is_an_aborted_read() {
        let mut b = Builder::new();
        let (i, c) = b.send_without_offset(0, OpType::Fail, K, 7);
        let (_, p) = b.poll(1, OpType::Info, &[(K, &[(0, 7)])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::AbortedRead]);
        let aborted = &report.entries(AnomalyKind::AbortedRead)[0];
        assert_eq!((aborted.offsets.clone(), aborted.values.clone()), (vec![0], vec![7]));
        assert_eq!(aborted.ops, vec![i, c, p]);
    }

    #[test]
    fn read_of_a_timed_out_send_is_not_an_aborted_read() {
        let mut b = Builder::new();
        b.send_without_offset(0, OpType::Info, K, 7);
        b.poll_ok(1, &[(K, &[(0, 7)])]);
        let report = b.check();
        assert!(report.valid, "{:?}", report.anomalies);
        assert_eq!(report.stats.committed_values, 1);
        assert_eq!(report.stats.acked_values, 0);
    }

    #[test]
    fn read_of_a_send_cut_short_by_a_crash_is_committed() {
        let mut b = Builder::new();
        b.invoke_send(0, &[(K, 7)]);
        b.crash(0);
        b.poll_ok(1, &[(K, &[(0, 7)])]);
        let report = b.check();
        assert!(report.valid);
        assert_eq!((report.stats.committed_values, report.stats.sends_incomplete), (1, 1));
    }
}
