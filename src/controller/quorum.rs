//! The controller state machine: a `RaftNode` plus the metadata image, answering brokers.
//!
//! The active controller is the Raft leader once it has applied every entry before its own
//! term (its LeaderChange entry is committed and applied), as KRaft's active controller
//! waits to replay the log. Requests are validated against `pending`: the committed image
//! plus this controller's own uncommitted batches, applied in log order (KRaft validates
//! against its in-memory "latest" state in the same way). Each accepted request becomes one
//! Raft entry holding one record batch; its reply waits until that entry commits (or fails
//! with NotController if leadership is lost first). Heartbeats that change nothing are
//! answered at once. Every node, active or not, applies committed batches to `committed`.
//!
//! Driver contract: as `RaftNode` (persist + sync, send `raft.messages`, then
//! `on_persisted`), and send `replies` after the raft messages of the same ready.

use super::partition_change::{ChangeRules, Election, PartitionChange, UncleanRecovery};
use super::raft::{
    EntryPayload, LogIndex, PersistentState, ProposeError, RaftConfig, RaftError, RaftMessage,
    RaftNode, Ready,
};
use super::records::{
    decode_batch, encode_batch, BrokerState, MetadataImage, MetadataRecord, PartitionState,
};
use crate::types::{
    BrokerEpoch, Epoch, IsrMember, Millis, NodeId, PartitionEpoch, Term, TopicPartition,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;
use tracing::{info, warn};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Kafka's broker.session.timeout.ms default.
    pub broker_session_timeout_ms: u64,
    /// KIP-966 eligible leader replicas (Kafka 4: eligible.leader.replicas.version=1).
    /// Off: the pre-KIP-966 rules, where the last ISR member stays electable after a restart.
    pub eligible_leader_replicas: bool,
    /// What happens to a partition whose ISR and ELR are both empty.
    pub unclean_recovery: UncleanRecovery,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            broker_session_timeout_ms: 9000,
            eligible_leader_replicas: true,
            unclean_recovery: UncleanRecovery::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// `previous_broker_epoch`: the epoch this broker's clean-shutdown marker recorded, or
    /// None when it has none (it crashed). Anything but the registered epoch is an unclean
    /// shutdown (KIP-966): the broker may have lost its unsynced tail.
    BrokerRegistration { broker_id: NodeId, previous_broker_epoch: Option<BrokerEpoch> },
    /// `metadata_offset`: the highest metadata-log index the broker has applied; a fenced
    /// broker is unfenced once it reaches its own registration (its broker epoch).
    /// `want_shut_down`: the broker asks for a controlled shutdown (KRaft's
    /// BrokerHeartbeat.WantShutDown): its leaderships move away and it leaves every ISR.
    BrokerHeartbeat {
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
        metadata_offset: LogIndex,
        want_shut_down: bool,
    },
    AlterPartition {
        tp: TopicPartition,
        leader_id: NodeId,
        leader_epoch: Epoch,
        partition_epoch: PartitionEpoch,
        /// With broker epochs (KIP-903) when the leader sends them.
        new_isr: Vec<IsrMember>,
    },
    CreateTopics {
        name: String,
        partitions: u32,
        replication_factor: u16,
        unclean_leader_election: bool,
        min_insync_replicas: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerResponse {
    BrokerRegistration(Result<BrokerEpoch, ControllerError>),
    BrokerHeartbeat(Result<HeartbeatReply, ControllerError>),
    AlterPartition(Result<PartitionState, ControllerError>),
    CreateTopics(Result<Vec<Vec<NodeId>>, ControllerError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub is_fenced: bool,
    /// The controlled shutdown is done: the broker leads nothing and is in no ISR, so it
    /// may stop (KRaft's BrokerHeartbeatResponse.ShouldShutDown).
    pub should_shut_down: bool,
}

impl HeartbeatReply {
    /// An ordinary heartbeat's reply: the fencing state, no shutdown.
    pub fn fenced(is_fenced: bool) -> HeartbeatReply {
        HeartbeatReply { is_fenced, should_shut_down: false }
    }
}

/// A reply for the driver to send to `to`, echoing the request's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerReply {
    pub to: NodeId,
    pub request_id: u64,
    pub response: ControllerResponse,
}

#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ControllerError {
    #[error("not the active controller (leader hint {leader_hint:?})")]
    NotController { leader_hint: Option<NodeId> },
    #[error("unknown broker {broker_id}")]
    UnknownBroker { broker_id: NodeId },
    #[error("broker {broker_id} epoch {got} is stale (current {current})")]
    StaleBrokerEpoch { broker_id: NodeId, current: BrokerEpoch, got: BrokerEpoch },
    #[error("unknown topic or partition {tp}")]
    UnknownTopicOrPartition { tp: TopicPartition },
    #[error("{tp}: leader epoch {request} is fenced (current {current})")]
    FencedLeaderEpoch { tp: TopicPartition, current: Epoch, request: Epoch },
    #[error("{tp}: leader epoch {request} is newer than the controller's {current}")]
    UnknownLeaderEpoch { tp: TopicPartition, current: Epoch, request: Epoch },
    #[error("{tp}: partition epoch {request} does not match {current}")]
    InvalidUpdateVersion { tp: TopicPartition, current: PartitionEpoch, request: PartitionEpoch },
    #[error("{tp}: {broker} is fenced or unregistered and cannot join the isr")]
    IneligibleReplica { tp: TopicPartition, broker: NodeId },
    #[error("topic {name} already exists")]
    TopicAlreadyExists { name: String },
    #[error("replication factor {requested} with {available} live brokers")]
    InvalidReplicationFactor { requested: u16, available: usize },
    #[error("invalid partition count {requested}")]
    InvalidPartitions { requested: u32 },
    #[error("invalid request: {what}")]
    InvalidRequest { what: String },
}

/// Outputs: the raft Ready first, then replies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerReady {
    pub raft: Ready,
    pub replies: Vec<ControllerReply>,
}

/// What to answer once a proposed entry commits.
struct Waiting {
    term: Term,
    to: NodeId,
    request_id: u64,
    response: ControllerResponse,
}

pub struct QuorumController {
    raft: RaftNode,
    config: ControllerConfig,
    committed: MetadataImage,
    applied_index: LogIndex,
    /// Some(term) while active in that term; then `pending` is meaningful.
    active_term: Option<Term>,
    pending: MetadataImage,
    last_heartbeat: BTreeMap<NodeId, Millis>,
    waiting: BTreeMap<LogIndex, Waiting>,
    replies: Vec<ControllerReply>,
    now: Millis,
}

impl QuorumController {
    pub fn new(
        raft_config: RaftConfig,
        config: ControllerConfig,
        state: PersistentState,
        seed: u64,
        now: Millis,
    ) -> Result<QuorumController, super::raft::ConfigError> {
        Ok(QuorumController {
            raft: RaftNode::new(raft_config, state, seed, now)?,
            config,
            committed: MetadataImage::default(),
            applied_index: 0,
            active_term: None,
            pending: MetadataImage::default(),
            last_heartbeat: BTreeMap::new(),
            waiting: BTreeMap::new(),
            replies: Vec::new(),
            now,
        })
    }

    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }
    /// The image of committed records applied so far on this node.
    pub fn committed_image(&self) -> &MetadataImage {
        &self.committed
    }
    /// The image requests are validated against (committed + own uncommitted), if active.
    pub fn pending_image(&self) -> Option<&MetadataImage> {
        self.active_term.map(|_| &self.pending)
    }
    pub fn is_active(&self) -> bool {
        self.active_term.is_some()
    }
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    pub fn step(&mut self, msg: RaftMessage, now: Millis) -> Result<(), RaftError> {
        self.now = now;
        self.raft.step(msg, now)
    }

    pub fn on_persisted(&mut self, ready_number: u64) {
        self.raft.on_persisted(ready_number);
    }

    /// Raft timers, and on the active controller the broker session timeouts.
    pub fn tick(&mut self, now: Millis) {
        self.now = now;
        self.raft.tick(now);
        self.refresh_active();
        if self.active_term.is_none() {
            return;
        }
        let timeout_ms = self.config.broker_session_timeout_ms;
        let expired: Vec<NodeId> = self
            .pending
            .brokers
            .iter()
            .filter(|(id, b)| {
                !b.fenced && self.last_heartbeat.get(id).is_none_or(|t| now.since(*t) > timeout_ms)
            })
            .map(|(&id, _)| id)
            .collect();
        for broker_id in expired {
            tracing::info!(broker = %broker_id, %now, "broker session expired: fencing");
            let batch = self.fence_batch(broker_id, false);
            let _ = self.propose(batch);
        }
    }

    /// Handles one broker request; the reply comes out of a later `take_ready`.
    pub fn handle(
        &mut self,
        from: NodeId,
        request_id: u64,
        request: ControllerRequest,
        now: Millis,
    ) {
        self.now = now;
        self.refresh_active();
        let result = match request {
            ControllerRequest::BrokerRegistration { broker_id, previous_broker_epoch } => {
                self.register(broker_id, previous_broker_epoch)
            }
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                metadata_offset,
                want_shut_down,
            } => match want_shut_down {
                true => self.controlled_shutdown(broker_id, broker_epoch),
                false => self.heartbeat(broker_id, broker_epoch, metadata_offset),
            },
            ControllerRequest::AlterPartition {
                tp,
                leader_id,
                leader_epoch,
                partition_epoch,
                new_isr,
            } => self.alter_partition(tp, leader_id, leader_epoch, partition_epoch, new_isr),
            ControllerRequest::CreateTopics {
                name,
                partitions,
                replication_factor,
                unclean_leader_election,
                min_insync_replicas,
            } => self.create_topic(
                name,
                partitions,
                replication_factor,
                (unclean_leader_election, min_insync_replicas),
            ),
        };
        match result {
            Outcome::Now(response) => {
                self.replies.push(ControllerReply { to: from, request_id, response })
            }
            Outcome::OnCommit(index, response) => {
                let term = self.raft.term();
                self.waiting.insert(index, Waiting { term, to: from, request_id, response });
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        self.raft.has_ready() || !self.replies.is_empty()
    }

    pub fn take_ready(&mut self) -> ControllerReady {
        let raft = self.raft.take_ready();
        for entry in &raft.committed {
            assert_eq!(entry.index, self.applied_index + 1, "controller applied out of order");
            self.applied_index = entry.index;
            if let EntryPayload::Data(bytes) = &entry.payload {
                let batch =
                    decode_batch(bytes).expect("committed batches were encoded by a controller");
                // Batches were validated against `pending` = committed + earlier own batches,
                // so a committed batch that does not apply is a controller bug.
                if let Err(err) = self.committed.apply_batch(&batch) {
                    panic!(
                        "committed batch at {} does not apply on {}: {err}",
                        entry.index,
                        self.raft.id()
                    );
                }
            }
            if let Some(w) = self.waiting.remove(&entry.index) {
                let response = if w.term == entry.term {
                    w.response
                } else {
                    not_controller(&w.response, self.raft.leader_id())
                };
                self.replies.push(ControllerReply { to: w.to, request_id: w.request_id, response });
            }
        }
        self.refresh_active();
        ControllerReady { raft, replies: std::mem::take(&mut self.replies) }
    }

    /// Tracks becoming and ceasing to be the active controller.
    fn refresh_active(&mut self) {
        let ready = self.raft.is_leader()
            && self.raft.leader_term_start().is_some_and(|start| self.applied_index >= start);
        match (self.active_term, ready) {
            (None, true) => {
                let term = self.raft.term();
                tracing::info!(node = %self.raft.id(), %term, "became active controller");
                self.active_term = Some(term);
                self.pending = self.committed.clone();
                // Every broker gets a full session from now (KRaft does the same on failover).
                let now = self.now;
                self.last_heartbeat = self.pending.brokers.keys().map(|&b| (b, now)).collect();
            }
            (Some(term), _) if !self.raft.is_leader() || self.raft.term() != term => {
                tracing::info!(node = %self.raft.id(), %term, "no longer active controller");
                self.active_term = None;
                self.pending = MetadataImage::default();
                let hint = self.raft.leader_id();
                for (_, w) in std::mem::take(&mut self.waiting) {
                    let response = not_controller(&w.response, hint);
                    self.replies.push(ControllerReply {
                        to: w.to,
                        request_id: w.request_id,
                        response,
                    });
                }
            }
            _ => {}
        }
    }

    fn not_active(&self) -> ControllerError {
        ControllerError::NotController { leader_hint: self.raft.leader_id() }
    }

    /// Applies `batch` to `pending` and proposes it; returns the entry's index.
    fn propose(&mut self, batch: Vec<MetadataRecord>) -> Result<LogIndex, ControllerError> {
        if self.active_term.is_none() {
            return Err(self.not_active());
        }
        let mut next = self.pending.clone();
        next.apply_batch(&batch)
            .unwrap_or_else(|err| panic!("controller built an invalid batch {batch:?}: {err}"));
        let index = self.raft.propose(encode_batch(&batch), self.now).map_err(|e| match e {
            ProposeError::NotLeader { leader_hint, .. } => {
                ControllerError::NotController { leader_hint }
            }
        })?;
        self.pending = next;
        Ok(index)
    }

    fn register(&mut self, broker_id: NodeId, previous: Option<BrokerEpoch>) -> Outcome {
        let wrap = ControllerResponse::BrokerRegistration;
        if self.active_term.is_none() {
            return Outcome::Now(wrap(Err(self.not_active())));
        }
        // KRaft's broker epoch: the log index of the registration record.
        let broker_epoch = BrokerEpoch(self.raft.last_index() + 1);
        let registered = self.pending.broker(broker_id).copied();
        // KIP-966: a shutdown was clean only if the marker names the registered epoch.
        let clean = registered.is_some_and(|b| previous == Some(b.broker_epoch));
        let mut batch = match registered {
            // A live broker re-registering lost its state: the old incarnation is gone.
            Some(b) if !b.fenced => self.fence_batch(broker_id, !clean),
            Some(_) if !clean => self.unclean_shutdown_batch(broker_id),
            _ => Vec::new(),
        };
        batch.insert(0, MetadataRecord::RegisterBroker { broker_id, broker_epoch });
        // RegisterBroker first leaves the broker fenced, so the fence records that follow
        // must not fence it again: drop them and keep only the partition changes.
        batch.retain(|r| !matches!(r, MetadataRecord::FenceBroker { .. }));
        self.last_heartbeat.insert(broker_id, self.now);
        match self.propose(batch) {
            Ok(index) => {
                assert_eq!(index, broker_epoch.0, "registration landed at an unexpected index");
                Outcome::OnCommit(index, wrap(Ok(broker_epoch)))
            }
            Err(err) => Outcome::Now(wrap(Err(err))),
        }
    }

    /// The registration a heartbeat speaks for, its session renewed; Err when this
    /// controller is not active, the broker unknown, or its epoch not the registered one.
    fn heartbeat_from(
        &mut self,
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
    ) -> Result<BrokerState, ControllerError> {
        if self.active_term.is_none() {
            return Err(self.not_active());
        }
        let broker = self
            .pending
            .broker(broker_id)
            .copied()
            .ok_or(ControllerError::UnknownBroker { broker_id })?;
        if broker.broker_epoch != broker_epoch {
            let current = broker.broker_epoch;
            return Err(ControllerError::StaleBrokerEpoch {
                broker_id,
                current,
                got: broker_epoch,
            });
        }
        self.last_heartbeat.insert(broker_id, self.now);
        Ok(broker)
    }

    fn heartbeat(
        &mut self,
        broker_id: NodeId,
        broker_epoch: BrokerEpoch,
        metadata_offset: LogIndex,
    ) -> Outcome {
        let wrap = ControllerResponse::BrokerHeartbeat;
        let broker = match self.heartbeat_from(broker_id, broker_epoch) {
            Ok(broker) => broker,
            Err(err) => return Outcome::Now(wrap(Err(err))),
        };
        if !broker.fenced || metadata_offset < broker_epoch.0 {
            return Outcome::Now(wrap(Ok(HeartbeatReply::fenced(broker.fenced))));
        }
        let batch = self.unfence_batch(broker_id);
        match self.propose(batch) {
            Ok(index) => Outcome::OnCommit(index, wrap(Ok(HeartbeatReply::fenced(false)))),
            Err(err) => Outcome::Now(wrap(Err(err))),
        }
    }

    /// A heartbeat asking for a controlled shutdown: the broker leaves every ISR and
    /// leadership as when it is fenced, but cleanly (it keeps its ELR places: its log is
    /// flushed before it stops). The reply tells it to stop once that change is committed.
    /// Kafka marks the broker InControlledShutdown rather than fenced; either way it can
    /// no longer be elected, which is what the partitions see.
    fn controlled_shutdown(&mut self, broker_id: NodeId, broker_epoch: BrokerEpoch) -> Outcome {
        let wrap = ControllerResponse::BrokerHeartbeat;
        let broker = match self.heartbeat_from(broker_id, broker_epoch) {
            Ok(broker) => broker,
            Err(err) => return Outcome::Now(wrap(Err(err))),
        };
        let done = HeartbeatReply { is_fenced: true, should_shut_down: true };
        if broker.fenced {
            return Outcome::Now(wrap(Ok(done)));
        }
        info!(broker = %broker_id, "controlled shutdown: moving leaderships and ISR places away");
        match self.propose(self.fence_batch(broker_id, false)) {
            Ok(index) => Outcome::OnCommit(index, wrap(Ok(done))),
            Err(err) => Outcome::Now(wrap(Err(err))),
        }
    }

    fn alter_partition(
        &mut self,
        tp: TopicPartition,
        leader_id: NodeId,
        leader_epoch: Epoch,
        partition_epoch: PartitionEpoch,
        new_isr: Vec<IsrMember>,
    ) -> Outcome {
        let wrap = ControllerResponse::AlterPartition;
        if self.active_term.is_none() {
            return Outcome::Now(wrap(Err(self.not_active())));
        }
        let next = match self.validate_alter(&tp, leader_id, leader_epoch, partition_epoch, new_isr)
        {
            Ok(next) => next,
            Err(err) => {
                tracing::debug!(%tp, leader = %leader_id, %err, "AlterPartition rejected");
                return Outcome::Now(wrap(Err(err)));
            }
        };
        match self.propose(vec![change_record(&tp, &next)]) {
            Ok(index) => Outcome::OnCommit(index, wrap(Ok(next))),
            Err(err) => Outcome::Now(wrap(Err(err))),
        }
    }

    fn validate_alter(
        &self,
        tp: &TopicPartition,
        leader_id: NodeId,
        leader_epoch: Epoch,
        partition_epoch: PartitionEpoch,
        new_isr: Vec<IsrMember>,
    ) -> Result<PartitionState, ControllerError> {
        let current = self
            .pending
            .partition(tp)
            .ok_or_else(|| ControllerError::UnknownTopicOrPartition { tp: tp.clone() })?;
        if leader_epoch < current.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch {
                tp: tp.clone(),
                current: current.leader_epoch,
                request: leader_epoch,
            });
        }
        if leader_epoch > current.leader_epoch {
            return Err(ControllerError::UnknownLeaderEpoch {
                tp: tp.clone(),
                current: current.leader_epoch,
                request: leader_epoch,
            });
        }
        if partition_epoch != current.partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion {
                tp: tp.clone(),
                current: current.partition_epoch,
                request: partition_epoch,
            });
        }
        if current.leader != Some(leader_id) {
            return Err(ControllerError::InvalidRequest {
                what: format!("{leader_id} does not lead {tp}"),
            });
        }
        let members: Vec<NodeId> = new_isr.iter().map(|m| m.broker).collect();
        let unique: BTreeSet<NodeId> = members.iter().copied().collect();
        if unique.len() != members.len()
            || !members.contains(&leader_id)
            || !members.iter().all(|r| current.replicas.contains(r))
        {
            return Err(ControllerError::InvalidRequest {
                what: format!("isr {members:?} for {tp}"),
            });
        }
        if let Some(member) = new_isr.iter().find(|m| !self.eligible(m)) {
            return Err(ControllerError::IneligibleReplica {
                tp: tp.clone(),
                broker: member.broker,
            });
        }
        let rules = self.rules(&self.pending, &tp.topic);
        let built = PartitionChange::new(tp, current)
            .target_isr(members)
            .build(&rules, |r| self.pending.is_live(r));
        let mut next = match built {
            Some((next, _)) => next,
            None => PartitionState {
                partition_epoch: current.partition_epoch.next(),
                ..current.clone()
            },
        };
        assert_eq!(next.leader, Some(leader_id), "{tp}: AlterPartition moved the leader");
        // The leader confirmed its ISR: a partition led after an unclean election is
        // recovered (Kafka's LeaderRecoveryState RECOVERED).
        next.unclean = false;
        Ok(next)
    }

    /// KIP-903: an ISR member must be registered, unfenced and, when the request names
    /// its broker epoch, in that very incarnation.
    fn eligible(&self, member: &IsrMember) -> bool {
        self.pending.broker(member.broker).is_some_and(|b| {
            !b.fenced && member.broker_epoch.is_none_or(|epoch| epoch == b.broker_epoch)
        })
    }

    fn create_topic(
        &mut self,
        name: String,
        partitions: u32,
        replication_factor: u16,
        (unclean, min_insync_replicas): (bool, u16),
    ) -> Outcome {
        let wrap = ControllerResponse::CreateTopics;
        if self.active_term.is_none() {
            return Outcome::Now(wrap(Err(self.not_active())));
        }
        let live = self.pending.live_brokers();
        let err = if name.is_empty() {
            Some(ControllerError::InvalidRequest { what: "empty topic name".into() })
        } else if self.pending.topic(&name).is_some() {
            Some(ControllerError::TopicAlreadyExists { name: name.clone() })
        } else if partitions == 0 {
            Some(ControllerError::InvalidPartitions { requested: partitions })
        } else if replication_factor == 0 || usize::from(replication_factor) > live.len() {
            Some(ControllerError::InvalidReplicationFactor {
                requested: replication_factor,
                available: live.len(),
            })
        } else {
            None
        };
        if let Some(err) = err {
            return Outcome::Now(wrap(Err(err)));
        }
        // Round-robin over the live brokers in id order; the start rotates with the topic
        // count so leaders spread across topics (Kafka picks a random start instead).
        let start = self.pending.topics.len();
        let assignments: Vec<Vec<NodeId>> = (0..partitions as usize)
            .map(|p| {
                (0..usize::from(replication_factor))
                    .map(|j| live[(start + p + j) % live.len()])
                    .collect()
            })
            .collect();
        let record = MetadataRecord::CreateTopic {
            name,
            partitions,
            replication_factor,
            assignments: assignments.clone(),
            unclean_leader_election: unclean,
            min_insync_replicas,
        };
        match self.propose(vec![record]) {
            Ok(index) => Outcome::OnCommit(index, wrap(Ok(assignments))),
            Err(err) => Outcome::Now(wrap(Err(err))),
        }
    }

    /// The rules a change of a partition of `topic` is decided under.
    fn rules(&self, image: &MetadataImage, topic: &str) -> ChangeRules {
        let topic = image.topic(topic).expect("a partition's topic exists");
        ChangeRules {
            elr: self.config.eligible_leader_replicas,
            min_insync_replicas: usize::from(topic.min_insync_replicas),
            unclean_leader_election: topic.unclean_leader_election,
            unclean_recovery: self.config.unclean_recovery,
        }
    }

    /// One PartitionChange record per partition `touched` that changes once `departure`
    /// is applied, decided against `image` (who is live).
    fn partition_changes(
        &self,
        image: &MetadataImage,
        touched: impl Fn(&PartitionState) -> bool,
        departure: Departure,
    ) -> Vec<MetadataRecord> {
        let mut batch = Vec::new();
        for (tp, p) in image.partitions().filter(|(_, p)| touched(p)) {
            let rules = self.rules(image, &tp.topic);
            let change = match departure {
                Departure::None => PartitionChange::new(&tp, p),
                Departure::Fenced(broker) => PartitionChange::new(&tp, p).remove(broker),
                Departure::UncleanShutdown(broker) => {
                    PartitionChange::new(&tp, p).unclean_shutdown(broker)
                }
            };
            let Some((next, election)) = change.build(&rules, |r| image.is_live(r)) else {
                continue;
            };
            match election {
                Election::Elr => {
                    info!(%tp, leader = ?next.leader, "leader elected from the eligible leader replicas")
                }
                Election::LastKnownLeader => {
                    warn!(%tp, leader = ?next.leader, "unclean recovery: last known leader elected")
                }
                Election::Unclean => warn!(%tp, leader = ?next.leader, "unclean leader election"),
                Election::Offline => info!(%tp, "no eligible replica: partition offline"),
                Election::Unchanged | Election::Isr => {}
            }
            batch.push(change_record(&tp, &next));
        }
        batch
    }

    /// FenceBroker, then every partition the broker is in the ISR of or leads: out of the
    /// ISR and leadership (`PartitionChange` elects and keeps the ELR). With
    /// `unclean_shutdown` (its old incarnation is gone and may have lost its unsynced tail)
    /// and ELR on, it also leaves every ELR.
    fn fence_batch(&self, broker_id: NodeId, unclean_shutdown: bool) -> Vec<MetadataRecord> {
        let broker_epoch =
            self.pending.broker(broker_id).expect("fencing a registered broker").broker_epoch;
        let mut after = self.pending.clone();
        let fence = MetadataRecord::FenceBroker { broker_id, broker_epoch };
        after.apply(&fence).expect("fence a registered broker");
        let unclean = unclean_shutdown && self.config.eligible_leader_replicas;
        let touched = |p: &PartitionState| {
            p.isr.contains(&broker_id)
                || p.leader == Some(broker_id)
                || (unclean && p.elr.contains(&broker_id))
        };
        let departure = if unclean {
            Departure::UncleanShutdown(broker_id)
        } else {
            Departure::Fenced(broker_id)
        };
        let mut batch = vec![fence];
        batch.extend(self.partition_changes(&after, touched, departure));
        batch
    }

    /// A fenced broker registers again after an unclean shutdown (KIP-966): it leaves every
    /// ISR and ELR. Before KIP-966 nothing changes.
    fn unclean_shutdown_batch(&self, broker_id: NodeId) -> Vec<MetadataRecord> {
        if !self.config.eligible_leader_replicas {
            return Vec::new();
        }
        let touched = |p: &PartitionState| p.isr.contains(&broker_id) || p.elr.contains(&broker_id);
        self.partition_changes(&self.pending, touched, Departure::UncleanShutdown(broker_id))
    }

    /// UnfenceBroker, then leaders for leaderless partitions the broker may now lead.
    fn unfence_batch(&self, broker_id: NodeId) -> Vec<MetadataRecord> {
        let broker_epoch =
            self.pending.broker(broker_id).expect("unfencing a registered broker").broker_epoch;
        let unfence = MetadataRecord::UnfenceBroker { broker_id, broker_epoch };
        let mut after = self.pending.clone();
        after.apply(&unfence).expect("unfence a registered broker");
        let touched = |p: &PartitionState| p.leader.is_none() && p.replicas.contains(&broker_id);
        let mut batch = vec![unfence];
        batch.extend(self.partition_changes(&after, touched, Departure::None));
        batch
    }
}

/// Which broker leaves the partitions a batch of changes touches, and how.
#[derive(Clone, Copy)]
enum Departure {
    None,
    Fenced(NodeId),
    UncleanShutdown(NodeId),
}

enum Outcome {
    Now(ControllerResponse),
    OnCommit(LogIndex, ControllerResponse),
}

fn change_record(tp: &TopicPartition, next: &PartitionState) -> MetadataRecord {
    MetadataRecord::PartitionChange {
        tp: tp.clone(),
        leader: next.leader,
        leader_epoch: next.leader_epoch,
        partition_epoch: next.partition_epoch,
        isr: next.isr.clone(),
        elr: next.elr.clone(),
        last_known_leader: next.last_known_leader,
        unclean: next.unclean,
    }
}

fn not_controller(
    response: &ControllerResponse,
    leader_hint: Option<NodeId>,
) -> ControllerResponse {
    let err = ControllerError::NotController { leader_hint };
    match response {
        ControllerResponse::BrokerRegistration(_) => {
            ControllerResponse::BrokerRegistration(Err(err))
        }
        ControllerResponse::BrokerHeartbeat(_) => ControllerResponse::BrokerHeartbeat(Err(err)),
        ControllerResponse::AlterPartition(_) => ControllerResponse::AlterPartition(Err(err)),
        ControllerResponse::CreateTopics(_) => ControllerResponse::CreateTopics(Err(err)),
    }
}
