//! KIP-320 position validation, Kafka's SubscriptionState AWAIT_VALIDATION and
//! OffsetsForLeaderEpochClient as part of the consumer state machine.
//!
//! A position with a leader epoch (of the last record consumed, or of the commit it was
//! seeked to) that meets another leader or leader epoch in the metadata stops fetching and
//! asks the leader, with OffsetsForLeaderEpoch, where that epoch ends:
//!
//! - the epoch ends at or after the position: the position is good, fetching resumes;
//! - it ends below the position: the log was truncated under the consumer. With a reset
//!   policy the position moves back to that end offset, the first offset known to diverge
//!   (Kafka's seekValidated); without one the partition stalls until `seek` (Kafka throws
//!   LogTruncationException);
//! - the leader has no epoch that old (undefined epoch or end offset): truncation with no
//!   known divergence point: auto_offset_reset places the position, or it stalls.
//!
//! Every truncation found is a `ConsumerEvent::LogTruncation`. Answers for a position that
//! moved meanwhile (seek, reset) are stale and dropped, as Kafka compares the request's
//! position with the current one.

use super::{
    current_leader, Consumer, ConsumerAction, ConsumerEvent, OffsetReset, RequestKind, ResetReason,
    TruncationOutcome,
};
use crate::protocol::{
    EpochEndOffset, ErrorCode, OffsetForLeaderPartition, OffsetsForLeaderEpochRequest, Request,
};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

impl Consumer {
    /// After a metadata update: positions whose leader or leader epoch changed await
    /// validation (Kafka's maybeValidatePositionForCurrentLeader). A position without an
    /// epoch (from a reset) only follows the new leader.
    pub(super) fn check_leaders(&mut self) {
        let validate = self.config.validate_positions;
        for (tp, state) in &mut self.partitions {
            let Some(leader) = current_leader(&self.metadata, tp) else { continue };
            if state.leader_seen == Some(leader) {
                continue;
            }
            let had_leader = state.leader_seen.is_some();
            state.leader_seen = Some(leader);
            let Some(position) = state.position else { continue };
            if !validate || !had_leader || state.last_epoch.is_none() || state.stalled {
                continue;
            }
            tracing::debug!(client = %self.client_id, %tp, %position, leader = %leader.0, epoch = %leader.1, "leader changed: position awaits validation");
            state.awaiting_validation = true;
            // Records fetched from the old leader are not handed out: they are fetched
            // again once the position is validated.
            state.buffered.clear();
            state.skip_to = None;
            state.generation = self.generations.next();
        }
    }

    pub(super) fn send_validations(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let mut by_node: BTreeMap<NodeId, Vec<(TopicPartition, Offset, u64)>> = BTreeMap::new();
        let mut requests: BTreeMap<NodeId, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
        for (tp, state) in &mut self.partitions {
            if !state.awaiting_validation || state.validation_in_flight || state.stalled {
                continue;
            }
            let (Some(position), Some(epoch)) = (state.position, state.last_epoch) else {
                state.awaiting_validation = false; // nothing to validate against
                continue;
            };
            if now < state.retry_at {
                continue;
            }
            let Some((leader, current)) = current_leader(&self.metadata, tp) else {
                self.metadata.request_refresh();
                continue;
            };
            state.validation_in_flight = true;
            by_node.entry(leader).or_default().push((tp.clone(), position, state.generation));
            requests.entry(leader).or_default().push(OffsetForLeaderPartition {
                tp: tp.clone(),
                current_leader_epoch: Some(current),
                leader_epoch: epoch,
            });
        }
        for (node, parts) in by_node {
            let partitions = requests.remove(&node).expect("filled with by_node");
            let body = Request::OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest {
                replica_id: None,
                partitions,
            });
            self.write(now, node, body, RequestKind::Validate(parts), actions);
        }
    }

    pub(super) fn on_validation_partition(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        position: Offset,
        generation: u64,
        answer: Option<&EpochEndOffset>,
    ) {
        let Some(state) = self.partitions.get_mut(tp) else { return };
        state.validation_in_flight = false;
        let current = state.generation == generation && state.position == Some(position);
        if !current || !state.awaiting_validation {
            return; // a seek or reset overtook it
        }
        match answer {
            None => self.backoff_partition(now, tp, None),
            Some(a) if a.error != ErrorCode::None => self.backoff_partition(now, tp, Some(a.error)),
            Some(a) => self.complete_validation(tp, position, a.leader_epoch.zip(a.end_offset)),
        }
    }

    /// Kafka's maybeCompleteValidation for the leader's answer `divergent` (its epoch and
    /// end offset for the position's epoch; None when it has no such epoch).
    fn complete_validation(
        &mut self,
        tp: &TopicPartition,
        position: Offset,
        divergent: Option<(Epoch, Offset)>,
    ) {
        let reset = self.config.auto_offset_reset != OffsetReset::None;
        let state = self.partitions.get_mut(tp).expect("caller checked");
        let epoch = state.last_epoch.expect("validation needs the position's epoch");
        let outcome = match divergent {
            Some((_, end)) if end >= position => {
                state.awaiting_validation = false;
                return;
            }
            _ if !reset => {
                state.stalled = true;
                TruncationOutcome::Stalled
            }
            Some((end_epoch, end)) => {
                state.position = Some(end);
                state.last_epoch = Some(end_epoch);
                state.awaiting_validation = false;
                state.generation = self.generations.next();
                TruncationOutcome::SeekedToDivergence
            }
            None => {
                state.position = None;
                state.last_epoch = None;
                state.awaiting_validation = false;
                state.reset = Some((ResetReason::LogTruncation, Some(position)));
                state.generation = self.generations.next();
                TruncationOutcome::Reset
            }
        };
        tracing::warn!(client = %self.client_id, %tp, %position, %epoch, ?divergent, ?outcome, "log truncation detected");
        self.events.push(ConsumerEvent::LogTruncation {
            tp: tp.clone(),
            position,
            epoch,
            divergent,
            outcome,
        });
    }
}
