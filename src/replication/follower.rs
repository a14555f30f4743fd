//! The follower side of one partition: truncate first (on becoming follower in a new
//! leader epoch, or after a restart), then fetch from the leader at the LEO with the
//! current leader epoch, append what comes back verbatim, and learn the HW from the
//! responses (follower HW = min(leader HW, own LEO)).
//!
//! Truncation follows the configured [`TruncationRule`]: by leader epoch, asking the leader
//! OffsetsForLeaderEpoch for the latest local epoch and truncating to where the two logs
//! agree (repeating while the leader answers an older epoch, KIP-279); or, as Kafka did
//! before 0.11, to the local HW at once. One request is in flight at a time; the driver
//! sends what [`PartitionFollower::poll`] returns to the leader and hands back the answer,
//! or reports the request lost.

use super::epoch::{truncation_point, TruncationPoint};
use super::{ReplicationConfig, TruncationRule};
use crate::log::{LogError, PartitionLog, TruncateInfo};
use crate::protocol::{
    EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse, OffsetForLeaderPartition,
};
use crate::record::{scan_batches, RecordError};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use thiserror::Error;
use tracing::{info, warn};

/// Where the follower is in its cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowerPhase {
    /// Finding where its log diverges from the leader's (OffsetsForLeaderEpoch rounds).
    Truncating,
    Fetching,
}

/// A request for the driver to send to `leader`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowerRequest {
    Fetch { leader: NodeId, partition: FetchPartition },
    OffsetsForLeaderEpoch { leader: NodeId, partition: OffsetForLeaderPartition },
}

/// What one fetch response did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchProgress {
    pub appended_batches: usize,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
}

/// What one OffsetsForLeaderEpoch answer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncationProgress {
    pub truncated: TruncateInfo,
    /// True when the logs now agree and the follower fetches next.
    pub done: bool,
}

/// A response the follower could not use; it retries on the next `poll` unless the error
/// says to wait for new metadata.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FollowerError {
    #[error("response without a matching request in flight")]
    UnexpectedResponse,
    /// The leader refused (fenced epoch, unknown epoch, not leader, storage): the driver
    /// refreshes metadata; the request is sent again on the next poll.
    #[error("leader answered {0:?}")]
    Leader(ErrorCode),
    #[error("corrupt fetched batch: {0}")]
    Corrupt(RecordError),
    #[error("fetched batch at {base_offset} overlaps the log end {log_end_offset}")]
    UnexpectedAppendOffset { base_offset: Offset, log_end_offset: Offset },
    #[error("fetch at {fetch_offset} below the leader's log start {log_start_offset}")]
    BelowLeaderLogStart { fetch_offset: Offset, log_start_offset: Offset },
    #[error(transparent)]
    Log(#[from] LogError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlight {
    Fetch { fetch_offset: Offset },
    EpochQuery,
}

#[derive(Clone, Debug)]
pub struct PartitionFollower {
    tp: TopicPartition,
    node: NodeId,
    leader: NodeId,
    leader_epoch: Epoch,
    config: ReplicationConfig,
    high_watermark: Offset,
    phase: FollowerPhase,
    in_flight: Option<InFlight>,
    /// OffsetsForLeaderEpoch rounds so far: each lowers the local latest epoch.
    truncation_rounds: usize,
    truncation_rounds_max: usize,
}

impl PartitionFollower {
    /// Starts following `leader` in `leader_epoch`, on a leader change or after a restart
    /// (`high_watermark` is the last known or checkpointed HW). Under the HighWatermark rule
    /// the log is truncated here, at once; the returned info says what went.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        tp: TopicPartition,
        node: NodeId,
        leader: NodeId,
        leader_epoch: Epoch,
        config: ReplicationConfig,
        log: &mut PartitionLog,
        high_watermark: Offset,
        now: Millis,
    ) -> (PartitionFollower, Option<TruncateInfo>) {
        assert_ne!(leader, node, "{tp}: {node} follows itself");
        let has_epochs = log.leader_epoch_cache().latest_epoch().is_some();
        let empty = log.log_end_offset() == log.log_start_offset();
        let by_hw = config.truncation == TruncationRule::HighWatermark || !has_epochs;
        let mut follower = PartitionFollower {
            tp,
            node,
            leader,
            leader_epoch,
            truncation_rounds_max: log.leader_epoch_cache().entries().len() + 1,
            config,
            high_watermark: high_watermark.min(log.log_end_offset()),
            phase: FollowerPhase::Truncating,
            in_flight: None,
            truncation_rounds: 0,
        };
        info!(tp = %follower.tp, node = %node, leader = %leader, epoch = %leader_epoch, leo = %log.log_end_offset(), hw = %follower.high_watermark, now = %now, "became follower");
        let mut truncated = None;
        if empty || by_hw {
            // Without epochs (old format) Kafka falls back to the HW too.
            let info = log.truncate_to(follower.high_watermark);
            follower.high_watermark = follower.high_watermark.min(info.new_log_end_offset);
            truncated = Some(info);
            follower.phase = FollowerPhase::Fetching;
        }
        (follower, truncated)
    }

    pub fn leader(&self) -> NodeId {
        self.leader
    }

    pub fn leader_epoch(&self) -> Epoch {
        self.leader_epoch
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn phase(&self) -> FollowerPhase {
        self.phase
    }

    /// The next request to send, or None while one is in flight.
    pub fn poll(&mut self, log: &PartitionLog) -> Option<FollowerRequest> {
        if self.in_flight.is_some() {
            return None;
        }
        let current_leader_epoch = Some(self.leader_epoch);
        let request = match self.phase {
            FollowerPhase::Truncating => {
                let leader_epoch =
                    log.leader_epoch_cache().latest_epoch().expect("truncating with epochs");
                assert!(leader_epoch <= self.leader_epoch, "{}: own epoch ahead", self.tp);
                self.in_flight = Some(InFlight::EpochQuery);
                FollowerRequest::OffsetsForLeaderEpoch {
                    leader: self.leader,
                    partition: OffsetForLeaderPartition {
                        tp: self.tp.clone(),
                        current_leader_epoch,
                        leader_epoch,
                    },
                }
            }
            FollowerPhase::Fetching => {
                let fetch_offset = log.log_end_offset();
                self.in_flight = Some(InFlight::Fetch { fetch_offset });
                FollowerRequest::Fetch {
                    leader: self.leader,
                    partition: FetchPartition {
                        tp: self.tp.clone(),
                        fetch_offset,
                        partition_max_bytes: self.config.replica_fetch_max_bytes,
                        current_leader_epoch,
                    },
                }
            }
        };
        Some(request)
    }

    /// The request in flight got no answer (timeout, broken connection): poll sends again.
    pub fn on_request_failed(&mut self) {
        self.in_flight = None;
    }

    pub fn on_fetch_response(
        &mut self,
        now: Millis,
        log: &mut PartitionLog,
        response: &FetchPartitionResponse,
    ) -> Result<FetchProgress, FollowerError> {
        let Some(InFlight::Fetch { fetch_offset }) = self.in_flight else {
            return Err(FollowerError::UnexpectedResponse);
        };
        self.in_flight = None;
        if fetch_offset != log.log_end_offset() {
            return Err(FollowerError::UnexpectedResponse);
        }
        match response.error {
            ErrorCode::None => {}
            ErrorCode::OffsetOutOfRange => {
                return self.on_out_of_range(log, response, fetch_offset)
            }
            code => return Err(FollowerError::Leader(code)),
        }
        let (batches, stop) = scan_batches(&response.records);
        let mut appended_batches = 0;
        for batch in batches {
            let log_end_offset = log.log_end_offset();
            if batch.last_offset() < log_end_offset {
                continue;
            }
            // A batch past the log end is a gap the leader's cleaner left (a compacted
            // topic), which Kafka's followers accept; one straddling the log end is not.
            if batch.base_offset() < log_end_offset {
                let base_offset = batch.base_offset();
                return Err(FollowerError::UnexpectedAppendOffset { base_offset, log_end_offset });
            }
            let epoch = batch.header().leader_epoch();
            assert!(
                epoch.is_none_or(|e| e <= self.leader_epoch),
                "{}: {} got a batch of epoch {epoch:?} from leader epoch {}",
                self.tp,
                self.node,
                self.leader_epoch
            );
            log.append_as_follower(batch, now)?;
            appended_batches += 1;
        }
        self.high_watermark = response.high_watermark.min(log.log_end_offset());
        if let Some(stop) = stop {
            warn!(tp = %self.tp, node = %self.node, position = stop.position, error = %stop.error, "corrupt fetch");
            return Err(FollowerError::Corrupt(stop.error));
        }
        Ok(FetchProgress {
            appended_batches,
            log_end_offset: log.log_end_offset(),
            high_watermark: self.high_watermark,
        })
    }

    pub fn on_offsets_for_leader_epoch_response(
        &mut self,
        log: &mut PartitionLog,
        response: &EpochEndOffset,
    ) -> Result<TruncationProgress, FollowerError> {
        if self.in_flight != Some(InFlight::EpochQuery) || self.phase != FollowerPhase::Truncating {
            return Err(FollowerError::UnexpectedResponse);
        }
        self.in_flight = None;
        if response.error != ErrorCode::None {
            return Err(FollowerError::Leader(response.error));
        }
        let point = truncation_point(log, response.leader_epoch, response.end_offset);
        let truncated = log.truncate_to(point.offset());
        self.high_watermark = self.high_watermark.min(truncated.new_log_end_offset);
        self.truncation_rounds += 1;
        assert!(
            self.truncation_rounds <= self.truncation_rounds_max,
            "{}: {} truncation did not converge in {} rounds",
            self.tp,
            self.node,
            self.truncation_rounds
        );
        let no_epochs = log.leader_epoch_cache().latest_epoch().is_none();
        let done = matches!(point, TruncationPoint::Final(_)) || no_epochs;
        if done {
            self.phase = FollowerPhase::Fetching;
        }
        info!(tp = %self.tp, node = %self.node, leader = %self.leader, answer_epoch = ?response.leader_epoch, answer_end = ?response.end_offset, leo = %truncated.new_log_end_offset, done, "truncated by leader epoch");
        Ok(TruncationProgress { truncated, done })
    }

    /// The fetch offset is past the leader's LEO: this log has a suffix the leader lacks.
    fn on_out_of_range(
        &mut self,
        log: &mut PartitionLog,
        response: &FetchPartitionResponse,
        fetch_offset: Offset,
    ) -> Result<FetchProgress, FollowerError> {
        if fetch_offset < response.log_start_offset {
            let log_start_offset = response.log_start_offset;
            return Err(FollowerError::BelowLeaderLogStart { fetch_offset, log_start_offset });
        }
        let has_epochs = log.leader_epoch_cache().latest_epoch().is_some();
        if self.config.truncation == TruncationRule::LeaderEpoch && has_epochs {
            self.phase = FollowerPhase::Truncating;
            self.truncation_rounds = 0;
            self.truncation_rounds_max = log.leader_epoch_cache().entries().len() + 1;
        } else {
            // The old rule cut to the leader's LEO, which the fetch response does not carry;
            // its HW is a lower bound of it.
            let info = log.truncate_to(response.high_watermark);
            self.high_watermark = self.high_watermark.min(info.new_log_end_offset);
        }
        Ok(FetchProgress {
            appended_batches: 0,
            log_end_offset: log.log_end_offset(),
            high_watermark: self.high_watermark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::testkit::{append_epochs, new_log, node, values};
    use crate::replication::{PartitionEpoch, PartitionLeader, PartitionState};

    /// A leader (node 1) leading `epoch` over `leader_epochs`, and a follower (node 2)
    /// over `follower_epochs`, started under `rule`.
    fn pair(
        epoch: u32,
        leader_epochs: &[u32],
        follower_epochs: &[u32],
        rule: TruncationRule,
        follower_hw: u64,
    ) -> (PartitionLeader, PartitionLog, PartitionFollower, PartitionLog) {
        let (mut leader_log, mut follower_log) = (new_log("a"), new_log("b"));
        append_epochs(&mut leader_log, leader_epochs);
        append_epochs(&mut follower_log, follower_epochs);
        let state = PartitionState {
            leader: Some(node(1)),
            leader_epoch: Epoch(epoch),
            partition_epoch: PartitionEpoch(1),
            replicas: vec![node(1), node(2)],
            isr: vec![node(1), node(2)],
        };
        let config = ReplicationConfig { truncation: rule, ..ReplicationConfig::default() };
        let tp = TopicPartition::new("t", 0);
        let leader = PartitionLeader::new(
            tp.clone(),
            node(1),
            &state,
            config.clone(),
            &leader_log,
            Offset::ZERO,
            Millis(0),
        );
        let (follower, _) = PartitionFollower::start(
            tp,
            node(2),
            node(1),
            Epoch(epoch),
            config,
            &mut follower_log,
            Offset(follower_hw),
            Millis(0),
        );
        (leader, leader_log, follower, follower_log)
    }

    /// Runs the follower against the leader until it polls nothing new; returns the
    /// truncation rounds it took.
    fn sync(
        leader: &mut PartitionLeader,
        leader_log: &PartitionLog,
        follower: &mut PartitionFollower,
        follower_log: &mut PartitionLog,
    ) -> usize {
        let mut rounds = 0;
        for _ in 0..20 {
            match follower.poll(follower_log).expect("nothing in flight") {
                FollowerRequest::OffsetsForLeaderEpoch { partition, .. } => {
                    let answer = leader.on_offsets_for_leader_epoch(leader_log, &partition);
                    follower.on_offsets_for_leader_epoch_response(follower_log, &answer).unwrap();
                    rounds += 1;
                }
                FollowerRequest::Fetch { partition, .. } => {
                    let response =
                        leader.on_fetch(Millis(0), leader_log, Some(node(2)), &partition);
                    follower.on_fetch_response(Millis(0), follower_log, &response).unwrap();
                }
            }
        }
        rounds
    }

    #[test]
    fn divergent_suffix_from_an_old_epoch_is_truncated_exactly() {
        let (mut l, ll, mut f, mut fl) =
            pair(3, &[1, 1, 3, 3], &[1, 1, 1, 1, 1], TruncationRule::LeaderEpoch, 0);
        assert_eq!(f.phase(), FollowerPhase::Truncating);
        let Some(FollowerRequest::OffsetsForLeaderEpoch { partition, .. }) = f.poll(&fl) else {
            panic!("asks first")
        };
        assert_eq!(partition.leader_epoch, Epoch(1));
        let answer = l.on_offsets_for_leader_epoch(&ll, &partition);
        assert_eq!((answer.leader_epoch, answer.end_offset), (Some(Epoch(1)), Some(Offset(2))));
        let progress = f.on_offsets_for_leader_epoch_response(&mut fl, &answer).unwrap();
        assert!(progress.done);
        assert_eq!(progress.truncated.new_log_end_offset, Offset(2), "only offsets 2..5 go");
        sync(&mut l, &ll, &mut f, &mut fl);
        assert_eq!(values(&fl), values(&ll));
    }

    #[test]
    fn truncation_repeats_while_the_leader_answers_an_older_epoch() {
        let (mut l, ll, mut f, mut fl) =
            pair(5, &[1, 1, 1, 3, 5], &[1, 1, 4, 4], TruncationRule::LeaderEpoch, 0);
        let rounds = sync(&mut l, &ll, &mut f, &mut fl);
        assert_eq!(rounds, 2, "epoch 4 → leader says 3 → own end of 1 → agree on epoch 1");
        assert_eq!(values(&fl), values(&ll));
    }

    #[test]
    fn follower_whose_log_is_a_prefix_truncates_nothing() {
        let (mut l, ll, mut f, mut fl) =
            pair(2, &[1, 1, 2, 2], &[1, 1, 2], TruncationRule::LeaderEpoch, 0);
        let Some(FollowerRequest::OffsetsForLeaderEpoch { partition, .. }) = f.poll(&fl) else {
            panic!("asks first")
        };
        let answer = l.on_offsets_for_leader_epoch(&ll, &partition);
        let progress = f.on_offsets_for_leader_epoch_response(&mut fl, &answer).unwrap();
        assert_eq!(progress.truncated.new_log_end_offset, Offset(3));
        assert_eq!(progress.truncated.old_log_end_offset, Offset(3));
        sync(&mut l, &ll, &mut f, &mut fl);
        assert_eq!(values(&fl), values(&ll));
    }

    #[test]
    fn high_watermark_rule_truncates_at_once_without_asking() {
        let (_, _, mut f, fl) =
            pair(2, &[1, 1, 2, 2], &[1, 1, 1], TruncationRule::HighWatermark, 1);
        assert_eq!(fl.log_end_offset(), Offset(1), "cut to the local hw");
        assert_eq!(f.phase(), FollowerPhase::Fetching);
        assert!(matches!(f.poll(&fl), Some(FollowerRequest::Fetch { .. })));
        assert_eq!(f.poll(&fl), None, "one request in flight");
        f.on_request_failed();
        assert!(f.poll(&fl).is_some(), "sent again after a loss");
    }

    #[test]
    fn stale_and_unexpected_responses_are_refused() {
        let (mut l, ll, mut f, mut fl) = pair(2, &[1, 2], &[1], TruncationRule::LeaderEpoch, 0);
        let fetch_response = FetchPartitionResponse {
            tp: TopicPartition::new("t", 0),
            error: ErrorCode::None,
            high_watermark: Offset(0),
            log_start_offset: Offset(0),
            records: bytes::Bytes::new(),
        };
        assert_eq!(
            f.on_fetch_response(Millis(0), &mut fl, &fetch_response),
            Err(FollowerError::UnexpectedResponse)
        );
        let Some(FollowerRequest::OffsetsForLeaderEpoch { mut partition, .. }) = f.poll(&fl) else {
            panic!("asks first")
        };
        partition.current_leader_epoch = Some(Epoch(1));
        let fenced = l.on_offsets_for_leader_epoch(&ll, &partition);
        assert_eq!(
            f.on_offsets_for_leader_epoch_response(&mut fl, &fenced),
            Err(FollowerError::Leader(ErrorCode::FencedLeaderEpoch))
        );
        assert_eq!(sync(&mut l, &ll, &mut f, &mut fl), 1);
        assert_eq!(values(&fl), values(&ll));
    }
}
