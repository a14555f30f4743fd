//! Invariant 8: a leader's claims against what the others said. An acks=all ack and every
//! HW advance after the first of a leadership are checked against the fetch offsets that the
//! members of the ISR the controller committed for the leader's epoch reported to it, not
//! against the leader's own view of its ISR. Kafka's leader computes its HW over the maximal
//! ISR (the committed one, plus a proposed expansion, minus nothing a shrink proposes: KIP-497),
//! so every committed member must have fetched past what the leader calls committed.
//!
//! Fetch offsets are what the leader's node shell saw arrive (a fetch the leader then refused
//! counts too, which can only hide a violation, never invent one), kept as the highest per
//! follower over an unbroken leadership: from becoming leader until it follows, stops or
//! restarts. A leader's first HW report of a leadership may be the HW it inherited as a
//! follower, so only later reports are advances it made.

use std::collections::BTreeMap;

use kafkasim::types::{Epoch, NodeId, Offset, TopicPartition};

use super::metadata::{nodes, Metadata};
use super::{InvariantKind, Violation};

#[derive(Debug, Default)]
pub(super) struct Views {
    spans: BTreeMap<(TopicPartition, NodeId), Span>,
}

/// One unbroken leadership of a partition by one broker.
#[derive(Debug)]
struct Span {
    /// The leader epoch it started in and the latest one it took (a re-election of the
    /// same leader continues the span, as Kafka keeps follower state for it).
    since: Epoch,
    epoch: Epoch,
    /// The highest fetch offset each follower reported within the span.
    reported: BTreeMap<NodeId, Offset>,
    /// The HW of the span's first report.
    first_hw: Option<Offset>,
    /// The log end when the span began: records below it were appended by earlier leaders.
    start_leo: Offset,
}

impl Views {
    pub(super) fn became_leader(
        &mut self,
        broker: NodeId,
        tp: &TopicPartition,
        epoch: Epoch,
        leo: Offset,
    ) {
        let span = self.spans.entry((tp.clone(), broker)).or_insert_with(|| Span {
            since: epoch,
            epoch,
            reported: BTreeMap::new(),
            first_hw: None,
            start_leo: leo,
        });
        span.epoch = span.epoch.max(epoch);
    }

    /// The broker follows, or no longer replicates, `tp`: its leadership ended.
    pub(super) fn left(&mut self, broker: NodeId, tp: &TopicPartition) {
        self.spans.remove(&(tp.clone(), broker));
    }

    /// The broker stopped or restarted: every leadership it held ended.
    pub(super) fn stopped(&mut self, broker: NodeId) {
        self.spans.retain(|(_, leader), _| *leader != broker);
    }

    pub(super) fn follower_fetched(
        &mut self,
        leader: NodeId,
        follower: NodeId,
        tp: &TopicPartition,
        epoch: Option<Epoch>,
        fetch_offset: Offset,
    ) {
        let Some(span) = self.spans.get_mut(&(tp.clone(), leader)) else { return };
        if !epoch.is_some_and(|e| (span.since..=span.epoch).contains(&e)) {
            return;
        }
        let reported = span.reported.entry(follower).or_insert(fetch_offset);
        *reported = (*reported).max(fetch_offset);
    }

    /// An acks=all ack up to `last_offset` of a record this leadership appended: every
    /// committed ISR member fetched past it. A retried batch already in the log is acked at
    /// its first offsets, which an earlier leader may have appended and committed (the new
    /// leader inherits the HW it learnt as a follower: `replicated-safe` seed 1359).
    pub(super) fn acked(
        &self,
        meta: &Metadata,
        leader: NodeId,
        tp: &TopicPartition,
        last_offset: Offset,
    ) -> Vec<Violation> {
        match self.spans.get(&(tp.clone(), leader)) {
            Some(span) if last_offset >= span.start_leo => {
                let what = || format!("acked an acks=all produce up to {last_offset}");
                span.behind(meta, leader, tp, last_offset.next(), what)
            }
            _ => Vec::new(),
        }
    }

    /// A HW report: after the first of the span, every committed ISR member reached it.
    pub(super) fn high_watermark(
        &mut self,
        meta: &Metadata,
        leader: NodeId,
        tp: &TopicPartition,
        hw: Offset,
    ) -> Vec<Violation> {
        let Some(span) = self.spans.get_mut(&(tp.clone(), leader)) else { return Vec::new() };
        match span.first_hw {
            None => {
                span.first_hw = Some(hw);
                Vec::new()
            }
            Some(first) if hw <= first => Vec::new(),
            Some(_) => span.behind(meta, leader, tp, hw, || format!("moved its HW to {hw}")),
        }
    }
}

impl Span {
    /// A violation naming the members of the committed ISR of the leader's epoch that had
    /// not reported fetching at `needed` or beyond; `what` the leader did, for its detail.
    fn behind(
        &self,
        meta: &Metadata,
        leader: NodeId,
        tp: &TopicPartition,
        needed: Offset,
        what: impl FnOnce() -> String,
    ) -> Vec<Violation> {
        let Some(committed) = meta.epoch(tp, self.epoch) else { return Vec::new() };
        if committed.leader != Some(leader) {
            return Vec::new();
        }
        let short: Vec<String> = committed
            .isr
            .iter()
            .filter(|m| **m != leader)
            .filter_map(|m| match self.reported.get(m) {
                Some(reported) if *reported >= needed => None,
                Some(reported) => Some(format!("{m} at {reported}")),
                None => Some(format!("{m} never")),
            })
            .collect();
        if short.is_empty() {
            return Vec::new();
        }
        vec![Violation {
            kind: InvariantKind::HwWithinCommittedIsr,
            detail: format!(
                "{tp}: leader {leader} (epoch {}) {}, but of the ISR {} the controller \
                 committed ({}), fetched only: {}",
                self.epoch,
                what(),
                nodes(&committed.isr),
                committed.partition_epoch,
                short.join(", ")
            ),
        }]
    }
}
