//! The leader side of one partition: it serves follower fetches (each fetch at offset o
//! says the follower holds everything below o), tracks every follower's LEO and last
//! caught-up time, moves the HW (the smallest LEO over the maximal ISR; it never moves
//! back while this replica leads), proposes ISR shrinks and expansions, completes acks=all
//! produces and answers OffsetsForLeaderEpoch. It owns no log: every call is handed the
//! partition's log. It does not elect leaders or commit ISR changes (the controller does).

use super::epoch::{answer_offsets_for_leader_epoch, check_leader_epoch, FenceError};
use super::isr::{AlterPartitionError, AlterPartitionRequest, IsrState};
use super::{PartitionEpoch, PartitionState, ReplicationConfig};
use crate::log::{LogError, PartitionLog};
use crate::protocol::{
    Acks, EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse,
    OffsetForLeaderPartition,
};
use crate::record::RecordBatch;
use crate::types::{BrokerEpoch, Epoch, Millis, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use std::collections::BTreeMap;
use thiserror::Error;
use tracing::info;

/// Bound on acks=all produces waiting for the HW; more means the driver never ticks.
const WAITING_PRODUCES_MAX: usize = 65_536;

/// The driver's handle on one produce, echoed in its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProduceId(pub u64);

/// What the leader knows of one follower (Kafka's Replica state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The offset of its last fetch; None until it fetched from this leader.
    pub log_end_offset: Option<Offset>,
    /// The last time it was known to hold everything the leader had.
    pub last_caught_up_ms: Millis,
    pub last_fetch_ms: Millis,
    /// The leader's LEO at that last fetch.
    pub last_fetch_leader_leo: Offset,
    /// The broker epoch its fetches carry (KIP-903), once known.
    pub broker_epoch: Option<BrokerEpoch>,
}

/// What the driver must do or record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderOutput {
    /// Send to the controller; answer with `on_alter_partition_response`.
    AlterPartition(AlterPartitionRequest),
    /// An acks=all produce finished: `error` is None when acked, NotEnoughReplicasAfterAppend
    /// when the ISR shrank below min.insync, RequestTimedOut, or NotLeaderOrFollower on
    /// resignation (all three indeterminate for the client).
    ProduceCompleted { id: ProduceId, base_offset: Offset, last_offset: Offset, error: ErrorCode },
    /// For the event log.
    HighWatermarkMoved { from: Offset, to: Offset },
}

/// A produce the leader refused or could not append.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProduceError {
    #[error("isr of {isr} below min.insync.replicas {min_insync}")]
    NotEnoughReplicas { isr: usize, min_insync: usize },
    #[error(transparent)]
    Log(#[from] LogError),
}

impl ProduceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ProduceError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            ProduceError::Log(LogError::DuplicateSequence { .. }) => ErrorCode::None,
            ProduceError::Log(LogError::OutOfOrderSequence { .. }) => {
                ErrorCode::OutOfOrderSequenceNumber
            }
            ProduceError::Log(LogError::InvalidProducerEpoch { .. }) => {
                ErrorCode::InvalidProducerEpoch
            }
            ProduceError::Log(LogError::CorruptRecord(_)) => ErrorCode::CorruptMessage,
            ProduceError::Log(LogError::RecordTooLarge { .. }) => ErrorCode::MessageTooLarge,
            ProduceError::Log(_) => ErrorCode::InvalidRecord,
        }
    }
}

/// A partition state the leader will not apply.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PartitionStateError {
    #[error("state of epoch {state} older than leader epoch {current}")]
    StaleLeaderEpoch { state: Epoch, current: Epoch },
    #[error("state of partition epoch {state} not newer than {current}")]
    StalePartitionEpoch { state: PartitionEpoch, current: PartitionEpoch },
    /// A newer epoch or another leader: the driver resigns this leader.
    #[error("no longer leader: {leader:?} leads epoch {epoch}")]
    NotLeader { leader: Option<NodeId>, epoch: Epoch },
}

/// A produce appended and accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: Offset,
    pub last_offset: Offset,
    /// A retry of a batch already in the log (idempotence): offsets are the original's.
    pub duplicate: bool,
}

#[derive(Clone, Debug)]
struct WaitingProduce {
    id: ProduceId,
    base_offset: Offset,
    last_offset: Offset,
    deadline: Millis,
}

#[derive(Clone, Debug)]
pub struct PartitionLeader {
    tp: TopicPartition,
    node: NodeId,
    config: ReplicationConfig,
    leader_epoch: Epoch,
    partition_epoch: PartitionEpoch,
    replicas: Vec<NodeId>,
    isr: IsrState,
    followers: BTreeMap<NodeId, FollowerProgress>,
    high_watermark: Offset,
    /// The LEO when this replica became leader: a follower below it has not caught up
    /// with records an earlier leader may have committed, so it may not join the ISR.
    leader_epoch_start_offset: Offset,
    /// The brokers the metadata shows registered and unfenced, with their broker epochs;
    /// None until the driver tells (then any replica may join).
    live_brokers: Option<BTreeMap<NodeId, BrokerEpoch>>,
    waiting: Vec<WaitingProduce>,
    outputs: Vec<LeaderOutput>,
}

impl PartitionLeader {
    /// Takes leadership per `state`. `high_watermark` is this replica's HW as a follower
    /// (possibly below its predecessor's); it grows once the ISR fetches.
    pub fn new(
        tp: TopicPartition,
        node: NodeId,
        state: &PartitionState,
        config: ReplicationConfig,
        log: &PartitionLog,
        high_watermark: Offset,
        now: Millis,
    ) -> PartitionLeader {
        assert_eq!(state.leader, Some(node), "{tp}: {node} made leader of {state:?}");
        assert!(state.isr.contains(&node), "{tp}: leader {node} not in isr {:?}", state.isr);
        let leo = log.log_end_offset();
        let followers = state
            .replicas
            .iter()
            .filter(|r| **r != node)
            .map(|r| (*r, fresh_progress(now, leo)))
            .collect();
        info!(tp = %tp, node = %node, epoch = %state.leader_epoch, leo = %leo, isr = ?state.isr, "became leader");
        PartitionLeader {
            tp,
            node,
            config,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            isr: IsrState::new(&state.isr),
            followers,
            high_watermark: high_watermark.min(leo),
            leader_epoch_start_offset: leo,
            live_brokers: None,
            waiting: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub fn tp(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn leader_epoch(&self) -> Epoch {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> PartitionEpoch {
        self.partition_epoch
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn replicas(&self) -> &[NodeId] {
        &self.replicas
    }

    /// The ISR the controller committed.
    pub fn isr(&self) -> &[NodeId] {
        self.isr.committed()
    }

    pub fn isr_state(&self) -> &IsrState {
        &self.isr
    }

    pub fn follower(&self, node: NodeId) -> Option<&FollowerProgress> {
        self.followers.get(&node)
    }

    pub fn waiting_produces(&self) -> usize {
        self.waiting.len()
    }

    pub fn take_outputs(&mut self) -> Vec<LeaderOutput> {
        std::mem::take(&mut self.outputs)
    }

    /// Appends a producer's batch. acks=all is refused before the append when the committed
    /// ISR is below min.insync, and otherwise completes later through
    /// [`LeaderOutput::ProduceCompleted`] (possibly already queued when this returns).
    pub fn produce(
        &mut self,
        now: Millis,
        log: &mut PartitionLog,
        batch: RecordBatch,
        acks: Acks,
        id: ProduceId,
        timeout_ms: u64,
    ) -> Result<Appended, ProduceError> {
        let isr = self.isr.committed().len();
        let min_insync = self.config.min_insync_replicas;
        if acks == Acks::All && isr < min_insync {
            return Err(ProduceError::NotEnoughReplicas { isr, min_insync });
        }
        let record_count = u64::from(batch.record_count());
        let appended = match log.append_as_leader(batch, self.leader_epoch, now) {
            Ok(info) => Appended {
                base_offset: info.first_offset,
                last_offset: info.last_offset,
                duplicate: false,
            },
            Err(LogError::DuplicateSequence { original, .. }) => Appended {
                base_offset: original,
                last_offset: original.plus(record_count.saturating_sub(1)),
                duplicate: true,
            },
            Err(error) => return Err(error.into()),
        };
        assert!(appended.last_offset < log.log_end_offset(), "{}: appended past leo", self.tp);
        if acks == Acks::All {
            assert!(
                self.waiting.len() < WAITING_PRODUCES_MAX,
                "{}: produces never expire",
                self.tp
            );
            self.waiting.push(WaitingProduce {
                id,
                base_offset: appended.base_offset,
                last_offset: appended.last_offset,
                deadline: now.plus_ms(timeout_ms),
            });
        }
        self.maybe_advance_hw(log);
        self.complete_waiting();
        Ok(appended)
    }

    /// Serves a fetch. A replica's fetch reads up to the LEO and reports its LEO; a
    /// consumer's (`replica_id` None) reads below the HW. The response carries the HW as
    /// it was before this fetch moved it, as Kafka's does: followers learn a HW one fetch
    /// late.
    pub fn on_fetch(
        &mut self,
        now: Millis,
        log: &PartitionLog,
        replica_id: Option<NodeId>,
        request: &FetchPartition,
    ) -> FetchPartitionResponse {
        let hw_before = self.high_watermark;
        let mut response = FetchPartitionResponse {
            tp: self.tp.clone(),
            error: ErrorCode::None,
            high_watermark: hw_before,
            log_start_offset: log.log_start_offset(),
            records: Bytes::new(),
        };
        if let Err(fence) = self.check_fetch(replica_id, request) {
            response.error = fence.code();
            return response;
        }
        let leo = log.log_end_offset();
        let upper_bound = if replica_id.is_some() { leo } else { hw_before };
        let max_bytes = request.partition_max_bytes as usize;
        match log.read(request.fetch_offset, max_bytes, upper_bound) {
            Ok(data) => response.records = data.records,
            Err(LogError::OffsetOutOfRange { .. }) => {
                response.error = ErrorCode::OffsetOutOfRange;
                return response;
            }
            Err(error) => panic!("{}: read at {} failed: {error}", self.tp, request.fetch_offset),
        }
        if let Some(replica) = replica_id {
            self.update_follower(now, replica, request.fetch_offset, leo);
            self.maybe_expand_isr(replica);
            self.maybe_advance_hw(log);
            self.complete_waiting();
        }
        response
    }

    /// The live brokers of the latest metadata image, with their broker epochs.
    pub fn set_live_brokers(&mut self, live: BTreeMap<NodeId, BrokerEpoch>) {
        self.live_brokers = Some(live);
    }

    /// A replica's fetch names the incarnation it comes from (its broker epoch, KIP-903); an
    /// ISR expansion proposed for it carries that epoch. Returns false for a fetch from an
    /// incarnation older than one already seen (a late fetch of a replica that restarted
    /// since, which the metadata may not show yet): the caller refuses it as stale.
    pub fn record_broker_epoch(&mut self, replica: NodeId, broker_epoch: BrokerEpoch) -> bool {
        let Some(progress) = self.followers.get_mut(&replica) else { return true };
        if progress.broker_epoch.is_some_and(|seen| seen > broker_epoch) {
            return false;
        }
        progress.broker_epoch = Some(broker_epoch);
        true
    }

    /// OffsetsForLeaderEpoch from a follower (or a consumer, KIP-320).
    pub fn on_offsets_for_leader_epoch(
        &self,
        log: &PartitionLog,
        request: &OffsetForLeaderPartition,
    ) -> EpochEndOffset {
        if let Err(fence) = check_leader_epoch(request.current_leader_epoch, self.leader_epoch) {
            return EpochEndOffset {
                tp: self.tp.clone(),
                error: fence.code(),
                leader_epoch: None,
                end_offset: None,
            };
        }
        answer_offsets_for_leader_epoch(log, &self.tp, request.leader_epoch)
    }

    /// Time-driven work: expire waiting produces, propose removing lagging followers.
    pub fn tick(&mut self, now: Millis, log: &PartitionLog) {
        let (expired, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| w.deadline <= now);
        self.waiting = waiting;
        for w in expired {
            self.complete(&w, ErrorCode::RequestTimedOut);
        }
        self.maybe_shrink_isr(now, log);
    }

    /// A committed partition state from the controller's metadata (same leader epoch, newer
    /// partition epoch). A newer leader epoch or another leader means resign.
    pub fn apply_partition_state(
        &mut self,
        now: Millis,
        log: &PartitionLog,
        state: &PartitionState,
    ) -> Result<(), PartitionStateError> {
        if state.leader_epoch < self.leader_epoch {
            let (state, current) = (state.leader_epoch, self.leader_epoch);
            return Err(PartitionStateError::StaleLeaderEpoch { state, current });
        }
        if state.leader_epoch > self.leader_epoch || state.leader != Some(self.node) {
            let (leader, epoch) = (state.leader, state.leader_epoch);
            return Err(PartitionStateError::NotLeader { leader, epoch });
        }
        if state.partition_epoch <= self.partition_epoch {
            let (state, current) = (state.partition_epoch, self.partition_epoch);
            return Err(PartitionStateError::StalePartitionEpoch { state, current });
        }
        assert!(state.isr.contains(&self.node), "{}: leader {} out of isr", self.tp, self.node);
        info!(tp = %self.tp, node = %self.node, epoch = %self.leader_epoch, partition_epoch = %state.partition_epoch, isr = ?state.isr, "isr committed");
        self.partition_epoch = state.partition_epoch;
        self.isr.commit(&state.isr);
        self.replicas = state.replicas.clone();
        let leo = log.log_end_offset();
        let node = self.node;
        self.followers.retain(|r, _| state.replicas.contains(r));
        for replica in state.replicas.iter().filter(|r| **r != node) {
            self.followers.entry(*replica).or_insert_with(|| fresh_progress(now, leo));
        }
        self.maybe_advance_hw(log);
        self.complete_waiting();
        Ok(())
    }

    /// The controller's answer to this leader's AlterPartition.
    pub fn on_alter_partition_response(
        &mut self,
        now: Millis,
        log: &PartitionLog,
        result: Result<PartitionState, AlterPartitionError>,
    ) -> Result<(), PartitionStateError> {
        match result {
            Ok(state) => match self.apply_partition_state(now, log, &state) {
                Err(PartitionStateError::StalePartitionEpoch { .. }) => Ok(()),
                other => other,
            },
            Err(AlterPartitionError::RequestFailed) => {
                // The outcome is unknown: the controller may have committed the change. Keep
                // the maximal ISR for the HW and send the same proposal again, as Kafka's
                // AlterPartitionManager retries (replicated-safe --variant long seed 147: a
                // leader dropped an expansion the controller had committed and acked over
                // the smaller ISR; the replica it left out was elected without the records).
                if let Some(pending) = self.isr.pending().map(<[NodeId]>::to_vec) {
                    info!(tp = %self.tp, node = %self.node, proposed = ?pending, "isr change outcome unknown: sent again");
                    let request = self.alter_request(pending);
                    self.outputs.push(LeaderOutput::AlterPartition(request));
                }
                Ok(())
            }
            Err(error) => {
                info!(tp = %self.tp, node = %self.node, %error, "isr change refused");
                self.isr.abandon();
                Ok(())
            }
        }
    }

    /// Leadership is lost: every waiting produce ends NotLeaderOrFollower (indeterminate).
    pub fn resign(&mut self) -> Vec<LeaderOutput> {
        for w in std::mem::take(&mut self.waiting) {
            self.complete(&w, ErrorCode::NotLeaderOrFollower);
        }
        self.take_outputs()
    }

    fn check_fetch(
        &self,
        replica_id: Option<NodeId>,
        request: &FetchPartition,
    ) -> Result<(), FenceError> {
        assert_eq!(request.tp, self.tp, "fetch for {} routed to {}", request.tp, self.tp);
        check_leader_epoch(request.current_leader_epoch, self.leader_epoch)?;
        match replica_id {
            Some(r) if !self.followers.contains_key(&r) => Err(FenceError::NotLeaderOrFollower),
            _ => Ok(()),
        }
    }

    /// Kafka's Replica.updateFetchState: caught up if the fetch reached the leader's LEO
    /// now, or reached the LEO the leader had at the previous fetch.
    fn update_follower(&mut self, now: Millis, replica: NodeId, fetch_offset: Offset, leo: Offset) {
        let progress = self.followers.get_mut(&replica).expect("checked in check_fetch");
        assert!(fetch_offset <= leo, "{replica} fetched at {fetch_offset} past leo {leo}");
        if fetch_offset >= leo {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now);
        } else if fetch_offset >= progress.last_fetch_leader_leo {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = Some(fetch_offset);
        progress.last_fetch_ms = now;
        progress.last_fetch_leader_leo = leo;
    }

    /// Kafka's Partition.isReplicaIsrEligible: a fenced or unregistered broker never joins
    /// (KIP-841), nor, with KIP-903, one whose fetches come from another incarnation than
    /// the one registered. Proposing it anyway would only be refused, over and over, while
    /// an eligible replica waits behind it.
    fn isr_eligible(&self, replica: NodeId) -> bool {
        let Some(live) = &self.live_brokers else { return true };
        let Some(&registered) = live.get(&replica) else { return false };
        !self.config.isr_broker_epochs
            || self.followers.get(&replica).and_then(|p| p.broker_epoch) == Some(registered)
    }

    fn maybe_expand_isr(&mut self, replica: NodeId) {
        if self.isr.pending().is_some() || self.isr.contains(replica) || !self.isr_eligible(replica)
        {
            return;
        }
        let leo = self.followers[&replica].log_end_offset.expect("just fetched");
        if leo >= self.high_watermark && leo >= self.leader_epoch_start_offset {
            let mut proposed = self.isr.committed().to_vec();
            proposed.push(replica);
            self.propose(proposed);
        }
    }

    fn maybe_shrink_isr(&mut self, now: Millis, log: &PartitionLog) {
        if self.isr.pending().is_some() {
            return;
        }
        let lag_max = self.config.replica_lag_time_max_ms;
        let leo = log.log_end_offset();
        let lagging = |r: &NodeId| {
            self.followers.get(r).is_some_and(|p| {
                let behind = p.log_end_offset != Some(leo);
                behind && now.since(p.last_caught_up_ms) > lag_max
            })
        };
        let committed = self.isr.committed();
        if committed.iter().any(lagging) {
            let kept: Vec<NodeId> = committed.iter().copied().filter(|r| !lagging(r)).collect();
            self.propose(kept);
        }
    }

    fn propose(&mut self, new_isr: Vec<NodeId>) {
        assert!(new_isr.contains(&self.node), "{}: isr {new_isr:?} without leader", self.tp);
        self.isr.propose(&new_isr);
        info!(tp = %self.tp, node = %self.node, epoch = %self.leader_epoch, partition_epoch = %self.partition_epoch, proposed = ?new_isr, "isr change proposed");
        let request = self.alter_request(new_isr);
        self.outputs.push(LeaderOutput::AlterPartition(request));
    }

    /// The AlterPartition for `new_isr`, built on this leader's epochs, with each member's
    /// broker epoch when KIP-903 is on.
    fn alter_request(&self, new_isr: Vec<NodeId>) -> AlterPartitionRequest {
        let broker_epochs = if self.config.isr_broker_epochs {
            let known = |r: &NodeId| Some((*r, self.followers.get(r)?.broker_epoch?));
            new_isr.iter().filter_map(known).collect()
        } else {
            BTreeMap::new()
        };
        AlterPartitionRequest {
            tp: self.tp.clone(),
            leader: self.node,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
            broker_epochs,
        }
    }

    /// HW = min LEO over the maximal ISR, never backwards; a member that has not fetched
    /// from this leader yet holds it where it is. Below min.insync the HW stands still
    /// (KIP-966): then nothing is committed that a replica fenced out of the ISR (an
    /// eligible leader replica, electable later) could lack.
    fn maybe_advance_hw(&mut self, log: &PartitionLog) {
        if self.isr.committed().len() < self.config.min_insync_replicas {
            return;
        }
        let leo = log.log_end_offset();
        let mut candidate = leo;
        for member in self.isr.maximal().into_iter().filter(|m| *m != self.node) {
            match self.followers.get(&member).and_then(|p| p.log_end_offset) {
                Some(member_leo) => candidate = candidate.min(member_leo),
                None => return,
            }
        }
        if candidate > self.high_watermark {
            let from = self.high_watermark;
            self.high_watermark = candidate;
            self.outputs.push(LeaderOutput::HighWatermarkMoved { from, to: candidate });
        }
        assert!(self.high_watermark <= leo, "{}: hw {} > leo {leo}", self.tp, self.high_watermark);
    }

    /// Acks what the HW passed. Below min.insync the HW stands still, so every waiting
    /// produce ends at once with NotEnoughReplicasAfterAppend (indeterminate: the record
    /// is in the leader's log and may yet be committed).
    fn complete_waiting(&mut self) {
        let hw = self.high_watermark;
        let enough = self.isr.committed().len() >= self.config.min_insync_replicas;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.last_offset < hw || !enough);
        self.waiting = waiting;
        for w in done {
            let error =
                if enough { ErrorCode::None } else { ErrorCode::NotEnoughReplicasAfterAppend };
            self.complete(&w, error);
        }
    }

    fn complete(&mut self, w: &WaitingProduce, error: ErrorCode) {
        if error == ErrorCode::None {
            assert!(w.last_offset < self.high_watermark, "{}: ack of {} above hw", self.tp, w.id.0);
            assert!(
                self.isr.committed().len() >= self.config.min_insync_replicas,
                "{}: ack of {} with isr {:?}",
                self.tp,
                w.id.0,
                self.isr.committed()
            );
        }
        self.outputs.push(LeaderOutput::ProduceCompleted {
            id: w.id,
            base_offset: w.base_offset,
            last_offset: w.last_offset,
            error,
        });
    }
}

/// A follower as seen on becoming leader (or on joining the replica set): its LEO unknown,
/// caught up as of now, so it is not dropped from the ISR before it had a chance to fetch.
fn fresh_progress(now: Millis, leo: Offset) -> FollowerProgress {
    FollowerProgress {
        log_end_offset: None,
        last_caught_up_ms: now,
        last_fetch_ms: now,
        last_fetch_leader_leo: leo,
        broker_epoch: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::testkit::{node, Cluster};

    fn config(min_insync_replicas: usize) -> ReplicationConfig {
        ReplicationConfig {
            replica_lag_time_max_ms: 10_000,
            min_insync_replicas,
            ..ReplicationConfig::default()
        }
    }

    fn follower_hw(c: &mut Cluster, n: u32) -> Offset {
        c.replicas.get_mut(&node(n)).expect("replica").follower().high_watermark()
    }

    #[test]
    fn acks_all_completes_only_after_both_followers_fetched_past_it() {
        let mut c = Cluster::new(3, config(2));
        let (id, appended) = c.produce("m0").expect("isr of 3");
        assert_eq!(appended.last_offset, Offset(0));
        c.step(node(2)).unwrap();
        c.step(node(3)).unwrap();
        assert_eq!(c.leader().high_watermark(), Offset(0), "fetching at 0 says nothing about 0");
        c.step(node(2)).unwrap();
        assert_eq!(c.completion(id), None, "node 3 has not reported offset 0 yet");
        c.step(node(3)).unwrap();
        assert_eq!(c.leader().high_watermark(), Offset(1));
        let done = c.completion(id).expect("acked");
        assert_eq!((done.error, done.last_offset), (ErrorCode::None, Offset(0)));
        assert_eq!(follower_hw(&mut c, 2), Offset(0), "hw travels one fetch late");
        c.replicate(1);
        assert_eq!(follower_hw(&mut c, 2), Offset(1));
        assert_eq!(follower_hw(&mut c, 3), Offset(1));
    }

    #[test]
    fn lagging_follower_leaves_the_isr_once_confirmed_and_rejoins_when_caught_up() {
        let mut c = Cluster::new(3, config(2));
        c.produce("m0").unwrap();
        c.replicate(2);
        c.advance(5_000);
        c.produce("m1").unwrap();
        c.step(node(2)).unwrap();
        c.step(node(2)).unwrap();
        c.advance(6_000);
        c.tick();
        assert_eq!(c.alter_queue.len(), 1, "node 3 lagged > 10 s");
        assert_eq!(c.alter_queue[0].new_isr, vec![node(1), node(2)]);
        assert_eq!(c.leader().isr().len(), 3, "proposed, not yet in effect");
        assert_eq!(c.leader().isr_state().maximal().len(), 3);
        assert_eq!(c.leader().high_watermark(), Offset(1), "maximal isr holds node 3");
        c.controller_step();
        assert_eq!(c.leader().isr(), &[node(1), node(2)]);
        assert_eq!(c.state.isr, vec![node(1), node(2)]);
        assert_eq!(c.leader().high_watermark(), Offset(2), "hw no longer waits for node 3");
        c.step(node(3)).unwrap();
        assert!(c.alter_queue.is_empty(), "fetching at 1 < hw 2: not caught up");
        c.step(node(3)).unwrap();
        assert_eq!(c.alter_queue[0].new_isr, vec![node(1), node(2), node(3)]);
        c.controller_step();
        assert_eq!(c.leader().isr().len(), 3);
    }

    /// Kafka's Partition.isReplicaIsrEligible (KIP-841, KIP-903): a caught-up follower
    /// that the metadata shows fenced, or whose fetches come from another incarnation than
    /// the registered one, is not proposed; an eligible one behind it is.
    /// (acks1-failover --variant acks-all seed 218: proposals of a fenced, restarted
    /// follower were refused over and over while the one eligible follower never joined.)
    #[test]
    fn only_isr_eligible_followers_are_proposed() {
        let mut c = Cluster::new(3, config(1));
        c.produce("m0").unwrap();
        c.replicate(2);
        c.produce("m1").unwrap();
        c.advance(11_000);
        c.tick();
        c.controller_step();
        assert_eq!(c.leader().isr(), &[node(1)], "both followers lagged out");
        let epoch = |e| BrokerEpoch(e);
        let leader = c.leader_mut();
        leader.record_broker_epoch(node(2), epoch(5));
        leader.record_broker_epoch(node(3), epoch(6));
        // Node 2 is fenced; node 3 is live but registered under a newer epoch.
        leader.set_live_brokers([(node(1), epoch(1)), (node(3), epoch(7))].into());
        c.step(node(2)).unwrap();
        c.step(node(3)).unwrap();
        assert!(c.alter_queue.is_empty(), "no eligible follower: {:?}", c.alter_queue);
        c.leader_mut().record_broker_epoch(node(3), epoch(7));
        c.step(node(3)).unwrap();
        assert_eq!(c.alter_queue[0].new_isr, vec![node(1), node(3)]);
        assert_eq!(c.alter_queue[0].broker_epochs.get(&node(3)), Some(&epoch(7)));
        // A late fetch of node 3's previous incarnation is stale (group-safe seeds 32, 98).
        assert!(!c.leader_mut().record_broker_epoch(node(3), epoch(6)));
        assert!(c.leader_mut().record_broker_epoch(node(3), epoch(7)));
    }

    #[test]
    fn produce_refused_below_min_insync_and_not_enough_after_append() {
        let mut c = Cluster::new(3, config(2));
        c.produce("m0").unwrap();
        c.replicate(2);
        let (id, _) = c.produce("m1").expect("isr of 3");
        c.advance(11_000);
        c.tick();
        c.controller_step();
        assert_eq!(c.leader().isr(), &[node(1)], "both followers dropped");
        let done = c.completion(id).expect("hw passed m1 with the isr of one");
        assert_eq!(done.error, ErrorCode::NotEnoughReplicasAfterAppend);
        let before = c.log(node(1)).log_end_offset();
        let refused = c.produce("m2").expect_err("isr of 1 < 2");
        assert_eq!(refused.code(), ErrorCode::NotEnoughReplicas);
        assert_eq!(c.log(node(1)).log_end_offset(), before, "refused before the append");
    }

    #[test]
    fn no_ack_on_a_shrunk_but_unconfirmed_isr() {
        let mut c = Cluster::new(3, config(2));
        let (id, _) = c.produce("m0").unwrap();
        c.step(node(2)).unwrap();
        c.step(node(2)).unwrap();
        c.advance(11_000);
        c.tick();
        assert_eq!(c.alter_queue[0].new_isr, vec![node(1), node(2)]);
        c.step(node(2)).unwrap();
        assert_eq!(c.leader().high_watermark(), Offset(0), "maximal isr still holds node 3");
        assert_eq!(c.completion(id), None);
        c.controller_step();
        assert_eq!(c.leader().high_watermark(), Offset(1));
        assert_eq!(c.completion(id).map(|d| d.error), Some(ErrorCode::None));
    }

    #[test]
    fn refused_alter_partition_is_dropped_and_proposed_again() {
        let mut c = Cluster::new(3, config(1));
        c.advance(11_000);
        c.produce("m0").unwrap();
        c.tick();
        let mut stale = c.alter_queue.remove(0);
        stale.partition_epoch = PartitionEpoch(0);
        c.alter_queue.push(stale);
        c.controller_step();
        assert_eq!(c.leader().isr().len(), 3, "invalid update version: nothing changed");
        assert!(c.leader().isr_state().pending().is_none());
        c.tick();
        c.controller_step();
        assert_eq!(c.leader().isr(), &[node(1)]);
    }

    /// An AlterPartition whose answer never came may have been committed: the leader keeps
    /// the maximal ISR for its HW and sends the same proposal again.
    #[test]
    fn an_unanswered_alter_partition_is_sent_again_and_keeps_the_maximal_isr() {
        let mut c = Cluster::new(3, config(1));
        c.advance(11_000);
        c.produce("m0").unwrap();
        c.tick();
        let sent = c.alter_queue.remove(0);
        let leader = c.leader_node();
        let log = c.log(leader).clone();
        let now = Millis(11_000);
        let l = c.leader_mut();
        l.on_alter_partition_response(now, &log, Err(AlterPartitionError::RequestFailed))
            .expect("unknown outcome");
        assert_eq!(l.isr_state().pending(), Some(&sent.new_isr[..]), "still pending");
        assert_eq!(l.isr_state().maximal().len(), 3, "the HW still waits for every member");
        let again = l.take_outputs();
        assert!(
            matches!(&again[..], [LeaderOutput::AlterPartition(r)] if r.new_isr == sent.new_isr),
            "{again:?}"
        );
    }

    #[test]
    fn fetches_with_stale_or_future_epochs_are_fenced() {
        let mut c = Cluster::new(2, config(1));
        let leader_node = c.leader_node();
        let replica = c.replicas.get_mut(&leader_node).unwrap();
        let crate::replication::testkit::Role::Leader(l) = &mut replica.role else { panic!() };
        let fetch = |epoch: u32| FetchPartition {
            tp: TopicPartition::new("t", 0),
            fetch_offset: Offset(0),
            partition_max_bytes: 1024,
            current_leader_epoch: Some(Epoch(epoch)),
        };
        let now = Millis(0);
        assert_eq!(
            l.on_fetch(now, &replica.log, Some(node(2)), &fetch(0)).error,
            ErrorCode::FencedLeaderEpoch
        );
        assert_eq!(
            l.on_fetch(now, &replica.log, Some(node(2)), &fetch(2)).error,
            ErrorCode::UnknownLeaderEpoch
        );
        assert_eq!(
            l.on_fetch(now, &replica.log, Some(node(9)), &fetch(1)).error,
            ErrorCode::NotLeaderOrFollower
        );
        assert_eq!(l.on_fetch(now, &replica.log, Some(node(2)), &fetch(1)).error, ErrorCode::None);
        let query = OffsetForLeaderPartition {
            tp: TopicPartition::new("t", 0),
            current_leader_epoch: Some(Epoch(0)),
            leader_epoch: Epoch(0),
        };
        assert_eq!(
            l.on_offsets_for_leader_epoch(&replica.log, &query).error,
            ErrorCode::FencedLeaderEpoch
        );
    }

    #[test]
    fn consumers_read_below_the_hw_only_and_resignation_fails_waiting_produces() {
        let mut c = Cluster::new(2, config(1));
        c.produce("m0").unwrap();
        c.replicate(2);
        let (id, _) = c.produce("m1").unwrap();
        let leader_node = c.leader_node();
        let replica = c.replicas.get_mut(&leader_node).unwrap();
        let crate::replication::testkit::Role::Leader(l) = &mut replica.role else { panic!() };
        let fetch = FetchPartition {
            tp: TopicPartition::new("t", 0),
            fetch_offset: Offset(0),
            partition_max_bytes: 1 << 20,
            current_leader_epoch: None,
        };
        let read = l.on_fetch(Millis(0), &replica.log, None, &fetch);
        let (batches, _) = crate::record::scan_batches(&read.records);
        assert_eq!(batches.len(), 1, "m1 is above the hw");
        let outputs = l.resign();
        assert!(outputs.iter().any(|o| matches!(o,
            LeaderOutput::ProduceCompleted { id: done, error: ErrorCode::NotLeaderOrFollower, .. } if *done == id)));
    }
}
