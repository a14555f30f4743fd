//! Cluster mode: the broker as one replica among several, driven by a KRaft-style controller
//! quorum.
//!
//! The broker registers with the active controller (getting a broker epoch), heartbeats to
//! it, and long-polls the committed metadata. Every committed image it applies decides each
//! hosted partition's role: leader ([`PartitionLeader`]), follower ([`PartitionFollower`],
//! which truncates and then fetches from the leader), or inactive (no leader, or this
//! replica is not assigned yet). Leaders send ISR changes to the controller as
//! AlterPartition; followers send Fetch and OffsetsForLeaderEpoch to their leader. A broker
//! whose disk failed stops heartbeating, so the controller fences it and moves its
//! leaderships away (Kafka's broker does the same for an offline log directory).
//!
//! Requests to controllers and peers carry their own correlation ids; each one unanswered
//! past its wait plus `request_timeout_ms` is failed and its connection closed. What the
//! broker does to its replicas is reported as [`Fact`]s for the simulator's
//! inside-cluster checker.

use super::{Broker, BrokerOutput, Partition, PartitionRole};
use crate::controller::{
    ControllerError, ControllerRequest, ControllerResponse, MetadataImage, PartitionState,
};
use crate::log::{PartitionLog, TruncateInfo};
use crate::protocol::*;
use crate::record::scan_batches;
use crate::replication::{
    AlterPartitionError, FollowerError, FollowerRequest, LeaderOutput, PartitionFollower,
    PartitionLeader, ReplicationConfig, TruncationRule,
};
use crate::types::{BrokerEpoch, Epoch, Millis, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;
use tracing::{debug, info, warn};

/// Cluster-mode settings; defaults are Kafka's where Kafka has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Size of the controller quorum; controllers are addressed by index.
    pub controllers: u32,
    /// broker.heartbeat.interval.ms
    pub heartbeat_interval_ms: u64,
    /// replica.fetch.wait.max.ms
    pub replica_fetch_wait_max_ms: u64,
    /// replica.lag.time.max.ms
    pub replica_lag_time_max_ms: u64,
    pub truncation: TruncationRule,
    /// How long a request to a controller or a peer may stay unanswered beyond its wait.
    pub request_timeout_ms: u64,
    /// How long a follower waits after a failed fetch (replica.fetch.backoff.ms).
    pub replica_fetch_backoff_ms: u64,
    /// How often the HW checkpoint is written (replica.high.watermark.checkpoint.interval.ms).
    pub hw_checkpoint_interval_ms: u64,
    /// How long a metadata fetch may be parked at the controller.
    pub metadata_max_wait_ms: u64,
    /// KIP-392: a follower serves consumer fetches below its own HW instead of answering
    /// NotLeaderOrFollower (Kafka: on when replica.selector.class is set; off by default).
    pub follower_fetch: bool,
    /// KIP-903: ISR expansions name each member's broker epoch (Kafka since 3.5).
    pub isr_broker_epochs: bool,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            controllers: 1,
            heartbeat_interval_ms: 2_000,
            replica_fetch_wait_max_ms: 500,
            replica_lag_time_max_ms: 30_000,
            truncation: TruncationRule::LeaderEpoch,
            request_timeout_ms: 5_000,
            replica_fetch_backoff_ms: 1_000,
            hw_checkpoint_interval_ms: 5_000,
            metadata_max_wait_ms: 500,
            follower_fetch: false,
            isr_broker_epochs: true,
        }
    }
}

/// What the broker did to its replicas, for the inside-cluster checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    BecameLeader {
        tp: TopicPartition,
        epoch: Epoch,
        leo: Offset,
    },
    BecameFollower {
        tp: TopicPartition,
        leader: NodeId,
        epoch: Epoch,
    },
    /// Leadership or followership ended without a successor role (no leader, or a
    /// replica the metadata no longer lets act).
    BecameInactive {
        tp: TopicPartition,
    },
    Appended {
        tp: TopicPartition,
        base: Offset,
        last: Offset,
        epoch: Option<Epoch>,
        crc: u32,
    },
    /// A follower cut its log from `from` to `to` (`to == from`: nothing went), by the
    /// leader-epoch rule or to the high watermark.
    Truncated {
        tp: TopicPartition,
        to: Offset,
        from: Offset,
        by: TruncationRule,
    },
    /// An idempotent retry of a batch already in the log, answered with its offsets.
    DuplicateBatch {
        tp: TopicPartition,
        base: Offset,
    },
    HighWatermark {
        tp: TopicPartition,
        epoch: Epoch,
        hw: Offset,
    },
    AckedAll {
        tp: TopicPartition,
        last_offset: Offset,
        hw: Offset,
        isr: Vec<NodeId>,
    },
    /// An acks=all produce appended here ended without an ack (NotLeaderOrFollower on
    /// resignation, NotEnoughReplicasAfterAppend, RequestTimedOut): indeterminate.
    AcksAllFailed {
        tp: TopicPartition,
        last_offset: Offset,
        error: ErrorCode,
    },
    /// A newer committed metadata image was applied.
    MetadataApplied {
        index: u64,
    },
    Registered {
        broker_epoch: BrokerEpoch,
    },
    /// What a group coordinator hosted here did (generations, assignments, commits), with
    /// its coordinator epoch (the offsets partition's leader epoch).
    Group {
        coordinator_epoch: Epoch,
        event: crate::group::GroupEvent,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ControlKind {
    Register,
    Heartbeat,
    MetadataFetch,
    AlterPartition(TopicPartition),
    CreateTopic(String),
}

#[derive(Clone, Debug)]
struct InFlight<K> {
    kind: K,
    to: u32,
    deadline: Millis,
}

/// The broker's side of its session with the controller quorum.
#[derive(Debug)]
pub(super) struct ControlSession {
    pub settings: ClusterSettings,
    /// The controller requests go to: the last hint, else round-robin.
    target: u32,
    pub broker_epoch: Option<BrokerEpoch>,
    pub fenced: bool,
    next_heartbeat: Millis,
    pub metadata_index: u64,
    pub image: MetadataImage,
    requests: BTreeMap<u32, InFlight<ControlKind>>,
    /// Follower requests to peers: correlation id -> partition.
    peers: BTreeMap<u32, InFlight<TopicPartition>>,
    next_correlation: u32,
    /// Followers waiting out a backoff before their next request.
    retry_at: BTreeMap<TopicPartition, Millis>,
    next_checkpoint: Millis,
    /// Min ISR per topic (min.insync.replicas).
    pub min_insync: BTreeMap<String, usize>,
    /// The broker epoch the clean-shutdown marker found at start recorded (KIP-966), sent
    /// with every registration of this start.
    clean_shutdown_marker: Option<BrokerEpoch>,
    /// A controlled shutdown was asked for: heartbeats carry WantShutDown.
    want_shut_down: bool,
    /// The controller answered ShouldShutDown (reported once as ShutdownReady).
    shutdown_ready: bool,
}

impl ControlSession {
    pub fn new(settings: ClusterSettings, min_insync: BTreeMap<String, usize>) -> Self {
        ControlSession {
            settings,
            target: 0,
            broker_epoch: None,
            fenced: true,
            next_heartbeat: Millis(0),
            metadata_index: 0,
            image: MetadataImage::default(),
            requests: BTreeMap::new(),
            peers: BTreeMap::new(),
            next_correlation: 1,
            retry_at: BTreeMap::new(),
            next_checkpoint: Millis(0),
            min_insync,
            clean_shutdown_marker: None,
            want_shut_down: false,
            shutdown_ready: false,
        }
    }

    fn correlation(&mut self) -> u32 {
        let id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        id
    }

    fn in_flight(&self, kind: &ControlKind) -> bool {
        self.requests.values().any(|r| &r.kind == kind)
    }

    fn retarget(&mut self, hint: Option<NodeId>) {
        let controllers = self.settings.controllers.max(1);
        self.target = match hint {
            Some(h) if h.0 < controllers => h.0,
            _ => (self.target + 1) % controllers,
        };
    }
}

/// The replication view of a committed partition state.
fn replication_state(state: &PartitionState) -> crate::replication::PartitionState {
    crate::replication::PartitionState {
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
    }
}

impl Broker {
    pub(super) fn session(&mut self) -> &mut ControlSession {
        self.cluster.as_mut().expect("cluster mode")
    }

    /// The committed metadata this broker applied, and its index (cluster mode).
    pub fn metadata_image(&self) -> Option<(u64, &MetadataImage)> {
        self.cluster.as_ref().map(|s| (s.metadata_index, &s.image))
    }

    /// Per hosted partition: HW, LEO and whether this replica leads it.
    pub fn replica_status(&self) -> Vec<(TopicPartition, Offset, Offset, bool)> {
        self.partitions
            .iter()
            .map(|(tp, p)| {
                let leads = matches!(p.role, PartitionRole::Leader(_));
                (tp.clone(), p.high_watermark, p.log.log_end_offset(), leads)
            })
            .collect()
    }

    /// The clean-shutdown marker read at start (KIP-966): the epoch its last incarnation
    /// registered with, when that incarnation shut down cleanly. Set before the first tick.
    pub fn set_clean_shutdown_marker(&mut self, epoch: Option<BrokerEpoch>) {
        let Some(session) = self.cluster.as_mut() else { return };
        assert!(
            session.broker_epoch.is_none() && session.requests.is_empty(),
            "broker {}: the clean-shutdown marker is set before registering",
            self.config.node_id
        );
        session.clean_shutdown_marker = epoch;
    }

    /// Starts a controlled shutdown: heartbeats ask the controller to move this broker's
    /// leaderships and ISR places away; `ShutdownReady` follows when it has. A broker
    /// without a cluster is ready at once.
    pub fn begin_controlled_shutdown(&mut self, now: Millis) {
        let Some(session) = self.cluster.as_mut() else {
            self.outputs.push(BrokerOutput::ShutdownReady { broker_epoch: None });
            return;
        };
        info!(node = %self.config.node_id, "controlled shutdown requested");
        session.want_shut_down = true;
        session.next_heartbeat = now;
    }

    /// The broker epoch of its current registration, if registered.
    pub fn broker_epoch(&self) -> Option<BrokerEpoch> {
        self.cluster.as_ref().and_then(|s| s.broker_epoch)
    }

    /// A response from controller `controller`.
    pub fn on_controller_response(&mut self, now: Millis, controller: u32, frame: ResponseFrame) {
        let Some(request) = self.session().requests.remove(&frame.correlation_id) else {
            debug!(node = %self.node_id(), correlation = frame.correlation_id, "late controller response dropped");
            return;
        };
        if request.to != controller {
            return;
        }
        match (request.kind, frame.body) {
            (
                ControlKind::Register,
                Response::Controller(ControllerResponse::BrokerRegistration(r)),
            ) => match r {
                Ok(epoch) => {
                    info!(node = %self.node_id(), broker_epoch = %epoch, "registered");
                    let session = self.session();
                    session.broker_epoch = Some(epoch);
                    session.fenced = true;
                    session.next_heartbeat = now;
                    self.outputs.push(BrokerOutput::Fact(Fact::Registered { broker_epoch: epoch }));
                    self.apply_roles(now);
                }
                Err(error) => self.controller_error(&error),
            },
            (
                ControlKind::Heartbeat,
                Response::Controller(ControllerResponse::BrokerHeartbeat(r)),
            ) => match r {
                Ok(reply) => {
                    let session = self.session();
                    if session.fenced != reply.is_fenced {
                        info!(node = %self.node_id(), fenced = reply.is_fenced, "fencing state changed");
                    }
                    self.session().fenced = reply.is_fenced;
                    self.on_should_shut_down(reply.should_shut_down);
                }
                Err(
                    ControllerError::StaleBrokerEpoch { .. }
                    | ControllerError::UnknownBroker { .. },
                ) => {
                    warn!(node = %self.node_id(), "registration no longer current: registering again");
                    self.session().broker_epoch = None;
                }
                Err(error) => self.controller_error(&error),
            },
            (ControlKind::MetadataFetch, Response::MetadataFetch(r)) => {
                if let Some(error) = &r.error {
                    self.controller_error(error);
                } else if let Some(image) = r.image {
                    self.apply_metadata(now, r.index, image);
                }
            }
            (
                ControlKind::AlterPartition(tp),
                Response::Controller(ControllerResponse::AlterPartition(r)),
            ) => {
                let result = match r {
                    Ok(state) => Ok(replication_state(&state)),
                    Err(error) => {
                        info!(node = %self.node_id(), tp = %tp, %error, "AlterPartition refused");
                        if let ControllerError::NotController { leader_hint } = error {
                            self.session().retarget(leader_hint);
                        }
                        Err(AlterPartitionError::RequestFailed)
                    }
                };
                self.on_alter_partition_result(now, &tp, result);
            }
            (
                ControlKind::CreateTopic(name),
                Response::Controller(ControllerResponse::CreateTopics(r)),
            ) => match r {
                Ok(_) | Err(ControllerError::TopicAlreadyExists { .. }) => {
                    info!(node = %self.node_id(), topic = %name, "topic created")
                }
                Err(error) => self.controller_error(&error),
            },
            (kind, body) => {
                warn!(node = %self.node_id(), ?kind, ?body, "controller answered with the wrong response type");
            }
        }
        self.pump_groups(now);
    }

    /// The controller's ShouldShutDown: reported once, to a broker that asked for it.
    fn on_should_shut_down(&mut self, should: bool) {
        let session = self.session();
        if !should || !session.want_shut_down || session.shutdown_ready {
            return;
        }
        session.shutdown_ready = true;
        let broker_epoch = session.broker_epoch;
        assert!(broker_epoch.is_some(), "broker {}: shutdown granted unregistered", self.node_id());
        info!(node = %self.node_id(), "controlled shutdown granted");
        self.outputs.push(BrokerOutput::ShutdownReady { broker_epoch });
    }

    fn controller_error(&mut self, error: &ControllerError) {
        debug!(node = %self.node_id(), %error, "controller request failed");
        let hint = match error {
            ControllerError::NotController { leader_hint } => *leader_hint,
            _ => return,
        };
        self.session().retarget(hint);
    }

    /// The connection to a controller broke: its requests are lost.
    pub fn on_controller_disconnected(&mut self, now: Millis, controller: u32) {
        let lost: Vec<u32> = self
            .session()
            .requests
            .iter()
            .filter(|(_, r)| r.to == controller)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.fail_control_request(now, id);
        }
        if self.session().target == controller {
            self.session().retarget(None);
        }
        self.pump_groups(now);
    }

    fn fail_control_request(&mut self, now: Millis, id: u32) {
        let Some(request) = self.session().requests.remove(&id) else { return };
        if let ControlKind::AlterPartition(tp) = request.kind {
            self.on_alter_partition_result(now, &tp, Err(AlterPartitionError::RequestFailed));
        }
    }

    fn send_control(&mut self, now: Millis, kind: ControlKind, body: Request, wait_ms: u64) {
        let session = self.session();
        let correlation_id = session.correlation();
        let to = session.target;
        let deadline = now.plus_ms(wait_ms + session.settings.request_timeout_ms);
        session.requests.insert(correlation_id, InFlight { kind, to, deadline });
        let frame = RequestFrame { correlation_id, client_id: self.node_id(), body };
        self.outputs.push(BrokerOutput::ToController { controller: to, frame });
    }

    /// Registration, heartbeats, metadata polling, topic creation and timeouts.
    pub(super) fn control_tick(&mut self, now: Millis) {
        let me = self.node_id();
        let expired: Vec<(u32, u32)> = self
            .session()
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, r)| (*id, r.to))
            .collect();
        for (id, to) in expired {
            if !self.session().requests.contains_key(&id) {
                continue; // failed with an earlier one's connection
            }
            debug!(node = %me, controller = to, "controller request timed out");
            self.fail_control_request(now, id);
            self.outputs.push(BrokerOutput::CloseController { controller: to });
            // Closing the connection loses every request on it, not only this one.
            self.on_controller_disconnected(now, to);
        }
        let storage_failed = self.partitions.values().any(|p| p.offline);
        let session = self.session();
        let registered = session.broker_epoch;
        if registered.is_none() && !session.in_flight(&ControlKind::Register) && !storage_failed {
            // Without a clean-shutdown marker the last incarnation crashed (KIP-966).
            let body = Request::Controller(ControllerRequest::BrokerRegistration {
                broker_id: me,
                previous_broker_epoch: session.clean_shutdown_marker,
            });
            self.send_control(now, ControlKind::Register, body, 0);
        }
        let session = self.session();
        if let Some(broker_epoch) = registered {
            if now >= session.next_heartbeat
                && !session.in_flight(&ControlKind::Heartbeat)
                && !storage_failed
            {
                session.next_heartbeat = now.plus_ms(session.settings.heartbeat_interval_ms);
                let metadata_offset = session.metadata_index;
                let body = Request::Controller(ControllerRequest::BrokerHeartbeat {
                    broker_id: me,
                    broker_epoch,
                    metadata_offset,
                    want_shut_down: session.want_shut_down,
                });
                self.send_control(now, ControlKind::Heartbeat, body, 0);
            }
        }
        let session = self.session();
        if !session.in_flight(&ControlKind::MetadataFetch) {
            let wait = session.settings.metadata_max_wait_ms;
            let body = Request::MetadataFetch(MetadataFetchRequest {
                broker_id: me,
                known_index: session.metadata_index,
                max_wait_ms: wait as u32,
            });
            self.send_control(now, ControlKind::MetadataFetch, body, wait);
        }
        let session = self.session();
        if registered.is_some() && !session.fenced {
            let missing: Vec<_> = self
                .config
                .topics
                .iter()
                .filter(|t| {
                    !self.cluster.as_ref().expect("cluster").image.topics.contains_key(&t.name)
                })
                .map(|t| {
                    let settings = (t.unclean_leader_election, t.min_insync_replicas as u16);
                    (t.name.clone(), t.partitions, t.replication_factor, settings)
                })
                .collect();
            for (name, partitions, replication_factor, (unclean, min_insync)) in missing {
                let kind = ControlKind::CreateTopic(name.clone());
                if self.session().in_flight(&kind) {
                    continue;
                }
                let body = Request::Controller(ControllerRequest::CreateTopics {
                    name,
                    partitions,
                    replication_factor,
                    unclean_leader_election: unclean,
                    min_insync_replicas: min_insync,
                });
                self.send_control(now, kind, body, 0);
            }
        }
    }

    /// Applies a newer committed image: each hosted partition takes the role it names.
    pub fn apply_metadata(&mut self, now: Millis, index: u64, image: MetadataImage) {
        let session = self.session();
        if index <= session.metadata_index {
            return;
        }
        session.metadata_index = index;
        session.image = image;
        self.outputs.push(BrokerOutput::Fact(Fact::MetadataApplied { index }));
        self.apply_roles(now);
        self.pump_groups(now);
    }

    /// Takes the roles the image names, once it includes this incarnation's registration.
    /// Before that the image may still name the previous incarnation leader of partitions
    /// whose data this one lost (the controller moves them away when it commits the new
    /// registration): acting on it would serve an empty log as leader.
    fn apply_roles(&mut self, now: Millis) {
        let session = self.session();
        let Some(broker_epoch) = session.broker_epoch else { return };
        if session.metadata_index < broker_epoch.0 {
            return;
        }
        let me = self.node_id();
        let states: Vec<(TopicPartition, PartitionState)> = self
            .session()
            .image
            .partitions()
            .filter(|(_, p)| p.replicas.contains(&me))
            .map(|(tp, p)| (tp, p.clone()))
            .collect();
        let live: BTreeMap<NodeId, BrokerEpoch> = self
            .session()
            .image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(&id, b)| (id, b.broker_epoch))
            .collect();
        for (tp, state) in states {
            self.apply_partition_state(now, &tp, &state);
            if let Some(PartitionRole::Leader(leader)) =
                self.partitions.get_mut(&tp).map(|p| &mut p.role)
            {
                leader.set_live_brokers(live.clone());
            }
        }
        self.wake_fetches(now);
    }

    fn replication_config(&self, tp: &TopicPartition) -> ReplicationConfig {
        let session = self.cluster.as_ref().expect("cluster mode");
        ReplicationConfig {
            replica_lag_time_max_ms: session.settings.replica_lag_time_max_ms,
            min_insync_replicas: session.min_insync.get(&tp.topic).copied().unwrap_or(1),
            truncation: session.settings.truncation,
            isr_broker_epochs: session.settings.isr_broker_epochs,
            ..ReplicationConfig::default()
        }
    }

    fn apply_partition_state(&mut self, now: Millis, tp: &TopicPartition, state: &PartitionState) {
        let me = self.node_id();
        self.ensure_partition(now, tp);
        let config = self.replication_config(tp);
        let partition = self.partitions.get_mut(tp).expect("ensured");
        if partition.offline {
            return;
        }
        let wanted = replication_state(state);
        match (&mut partition.role, state.leader) {
            (PartitionRole::Leader(leader), Some(l))
                if l == me && leader.leader_epoch() == state.leader_epoch =>
            {
                if state.partition_epoch > leader.partition_epoch() {
                    if let Err(error) = leader.apply_partition_state(now, &partition.log, &wanted) {
                        warn!(node = %me, tp = %tp, %error, "partition state not applied");
                    }
                }
                self.drain_leader(now, tp);
            }
            (PartitionRole::Follower(f), Some(l))
                if l != me && f.leader() == l && f.leader_epoch() == state.leader_epoch => {}
            (_, Some(l)) if l == me => {
                if !state.isr.contains(&me) {
                    warn!(node = %me, tp = %tp, isr = ?state.isr, "named leader outside the isr: staying inactive");
                    self.become_inactive(now, tp);
                    return;
                }
                self.resign(now, tp);
                let partition = self.partitions.get_mut(tp).expect("ensured");
                let hw = partition.high_watermark;
                let leader =
                    PartitionLeader::new(tp.clone(), me, &wanted, config, &partition.log, hw, now);
                let leo = partition.log.log_end_offset();
                partition.high_watermark = leader.high_watermark();
                partition.role = PartitionRole::Leader(Box::new(leader));
                let epoch = state.leader_epoch;
                self.outputs.push(BrokerOutput::Fact(Fact::BecameLeader {
                    tp: tp.clone(),
                    epoch,
                    leo,
                }));
                self.drain_leader(now, tp);
            }
            (_, Some(l)) => {
                self.resign(now, tp);
                let partition = self.partitions.get_mut(tp).expect("ensured");
                let hw = partition.high_watermark;
                let epoch = state.leader_epoch;
                let (follower, truncated) = PartitionFollower::start(
                    tp.clone(),
                    me,
                    l,
                    epoch,
                    config,
                    &mut partition.log,
                    hw,
                    now,
                );
                partition.high_watermark = follower.high_watermark();
                partition.role = PartitionRole::Follower(follower);
                self.outputs.push(BrokerOutput::Fact(Fact::BecameFollower {
                    tp: tp.clone(),
                    leader: l,
                    epoch,
                }));
                self.after_truncation(tp, truncated);
                self.session().retry_at.remove(tp);
                self.drain_disk_ops(tp);
            }
            (_, None) => self.become_inactive(now, tp),
        }
    }

    fn become_inactive(&mut self, now: Millis, tp: &TopicPartition) {
        let partition = self.partitions.get_mut(tp).expect("present");
        if matches!(partition.role, PartitionRole::Inactive) {
            return;
        }
        self.resign(now, tp);
        self.partitions.get_mut(tp).expect("present").role = PartitionRole::Inactive;
        self.outputs.push(BrokerOutput::Fact(Fact::BecameInactive { tp: tp.clone() }));
    }

    /// Ends leadership (failing its waiting produces) or followership.
    fn resign(&mut self, now: Millis, tp: &TopicPartition) {
        let partition = self.partitions.get_mut(tp).expect("present");
        let old = std::mem::replace(&mut partition.role, PartitionRole::Inactive);
        if let PartitionRole::Leader(mut leader) = old {
            info!(node = %self.node_id(), tp = %tp, epoch = %leader.leader_epoch(), "resigning leadership");
            let outputs = leader.resign();
            self.handle_leader_outputs(now, tp, outputs);
        }
        let stale: Vec<u32> =
            self.session().peers.iter().filter(|(_, r)| &r.kind == tp).map(|(id, _)| *id).collect();
        for id in stale {
            self.session().peers.remove(&id);
        }
    }

    /// Creates the log of a partition this broker was just assigned.
    fn ensure_partition(&mut self, now: Millis, tp: &TopicPartition) {
        if self.partitions.contains_key(tp) {
            return;
        }
        let Some(spec) = self.config.topics.iter().find(|t| t.name == tp.topic) else {
            warn!(node = %self.node_id(), tp = %tp, "assigned a partition of an unknown topic");
            return;
        };
        let log = PartitionLog::create(&super::partition_dir(tp), spec.log.clone(), now);
        self.partitions
            .insert(tp.clone(), Partition::new(log, Offset::ZERO, PartitionRole::Inactive));
        self.drain_disk_ops(tp);
    }

    fn after_truncation(&mut self, tp: &TopicPartition, truncated: Option<TruncateInfo>) {
        if let Some(info) = truncated {
            if info.new_log_end_offset < info.old_log_end_offset {
                info!(node = %self.node_id(), tp = %tp, from = %info.old_log_end_offset, to = %info.new_log_end_offset, "log truncated");
            }
            let (to, from) = (info.new_log_end_offset, info.old_log_end_offset);
            let by = TruncationRule::HighWatermark;
            self.outputs.push(BrokerOutput::Fact(Fact::Truncated { tp: tp.clone(), to, from, by }));
        }
    }

    fn on_alter_partition_result(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        result: Result<crate::replication::PartitionState, AlterPartitionError>,
    ) {
        let me = self.node_id();
        let Some(partition) = self.partitions.get_mut(tp) else { return };
        let PartitionRole::Leader(leader) = &mut partition.role else { return };
        if let Err(error) = leader.on_alter_partition_response(now, &partition.log, result) {
            info!(node = %me, tp = %tp, %error, "isr answer shows lost leadership");
        }
        self.drain_leader(now, tp);
    }

    /// Carries out what a partition's leader queued.
    pub(super) fn drain_leader(&mut self, now: Millis, tp: &TopicPartition) {
        let Some(partition) = self.partitions.get_mut(tp) else { return };
        let PartitionRole::Leader(leader) = &mut partition.role else { return };
        let outputs = leader.take_outputs();
        partition.high_watermark = leader.high_watermark();
        self.handle_leader_outputs(now, tp, outputs);
    }

    fn handle_leader_outputs(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        outputs: Vec<LeaderOutput>,
    ) {
        let mut hw_moved = false;
        for output in outputs {
            match output {
                LeaderOutput::AlterPartition(request) => {
                    let mut new_isr = request.members();
                    let own_epoch =
                        self.broker_epoch().filter(|_| !request.broker_epochs.is_empty());
                    for member in new_isr.iter_mut().filter(|m| m.broker == request.leader) {
                        member.broker_epoch = own_epoch;
                    }
                    let body = Request::Controller(ControllerRequest::AlterPartition {
                        tp: request.tp.clone(),
                        leader_id: request.leader,
                        leader_epoch: request.leader_epoch,
                        partition_epoch: request.partition_epoch,
                        new_isr,
                    });
                    self.send_control(now, ControlKind::AlterPartition(request.tp), body, 0);
                }
                LeaderOutput::HighWatermarkMoved { to, .. } => {
                    hw_moved = true;
                    let epoch = match &self.partitions[tp].role {
                        PartitionRole::Leader(l) => l.leader_epoch(),
                        _ => Epoch(0),
                    };
                    self.outputs.push(BrokerOutput::Fact(Fact::HighWatermark {
                        tp: tp.clone(),
                        epoch,
                        hw: to,
                    }));
                }
                LeaderOutput::ProduceCompleted { id, last_offset, error, .. } => {
                    debug!(node = %self.node_id(), tp = %tp, id = id.0, %last_offset, ?error, hw = %self.partitions[tp].high_watermark, "acks=all produce completed");
                    if error == ErrorCode::None {
                        let (hw, isr) = match &self.partitions[tp].role {
                            PartitionRole::Leader(l) => (l.high_watermark(), l.isr().to_vec()),
                            _ => (Offset::ZERO, Vec::new()),
                        };
                        self.outputs.push(BrokerOutput::Fact(Fact::AckedAll {
                            tp: tp.clone(),
                            last_offset,
                            hw,
                            isr,
                        }));
                    } else {
                        let tp = tp.clone();
                        let fact = Fact::AcksAllFailed { tp, last_offset, error };
                        self.outputs.push(BrokerOutput::Fact(fact));
                    }
                    self.complete_replicated(tp, id, error);
                }
            }
        }
        if hw_moved {
            self.wake_fetches(now);
        }
    }

    /// Follower requests to send, timeouts of those in flight, the HW checkpoint.
    pub(super) fn replication_tick(&mut self, now: Millis) {
        let expired: Vec<(u32, u32, TopicPartition)> = self
            .session()
            .peers
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, r)| (*id, r.to, r.kind.clone()))
            .collect();
        for (id, to, tp) in expired {
            if !self.session().peers.contains_key(&id) {
                continue; // failed with an earlier one's connection
            }
            debug!(node = %self.node_id(), leader = to, %tp, correlation = id, "follower request timed out");
            self.fail_peer_request(now, id);
            self.outputs.push(BrokerOutput::CloseBroker { broker: NodeId(to) });
            // Closing the connection loses every request on it: the others must not wait
            // for their own deadlines and then close the next connection, and so on, every
            // request timeout (swarm seed 2305: one follower's unanswerable fetch closed
            // each new connection to its leader, and the group's commits never replicated).
            self.on_broker_disconnected(now, NodeId(to));
        }
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for tp in tps {
            let partition = self.partitions.get_mut(&tp).expect("listed");
            if partition.offline {
                continue;
            }
            match &mut partition.role {
                PartitionRole::Leader(leader) => {
                    leader.tick(now, &partition.log);
                    self.drain_leader(now, &tp);
                }
                PartitionRole::Follower(_) => self.poll_follower(now, &tp),
                _ => {}
            }
        }
        if now >= self.session().next_checkpoint {
            let interval = self.session().settings.hw_checkpoint_interval_ms;
            self.session().next_checkpoint = now.plus_ms(interval);
            self.checkpoint_high_watermarks();
        }
    }

    /// Sends the follower's next request, unless one is due later, in flight, or its last
    /// append is not on disk yet: Kafka's fetcher appends (and, flushing every batch, syncs)
    /// before it builds the next fetch, so the offset it names is one its log holds (swarm
    /// seed 344: a follower named an offset whose write the full disk then refused, the
    /// leader counted it caught up, and it came back without the records).
    pub(super) fn poll_follower(&mut self, now: Millis, tp: &TopicPartition) {
        if self.session().retry_at.get(tp).is_some_and(|at| *at > now) {
            return;
        }
        let me = self.node_id();
        let wait = self.session().settings.replica_fetch_wait_max_ms;
        let partition = self.partitions.get_mut(tp).expect("present");
        if !partition.flushes.is_empty() || partition.offline {
            return;
        }
        let PartitionRole::Follower(follower) = &mut partition.role else { return };
        let Some(request) = follower.poll(&partition.log) else { return };
        let (leader, body, wait) = match request {
            FollowerRequest::Fetch { leader, partition } => {
                let replica_epoch = self.cluster.as_ref().and_then(|s| s.broker_epoch);
                let body = Request::Fetch(FetchRequest {
                    replica_id: Some(me),
                    replica_epoch,
                    max_wait_ms: wait as u32,
                    min_bytes: 1,
                    max_bytes: partition.partition_max_bytes,
                    partitions: vec![partition],
                });
                (leader, body, wait)
            }
            FollowerRequest::OffsetsForLeaderEpoch { leader, partition } => {
                let body = Request::OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest {
                    replica_id: Some(me),
                    partitions: vec![partition],
                });
                (leader, body, 0)
            }
        };
        let session = self.session();
        let correlation_id = session.correlation();
        let deadline = now.plus_ms(wait + session.settings.request_timeout_ms);
        session.peers.insert(correlation_id, InFlight { kind: tp.clone(), to: leader.0, deadline });
        let frame = RequestFrame { correlation_id, client_id: me, body };
        self.outputs.push(BrokerOutput::ToBroker { broker: leader, frame });
    }

    fn fail_peer_request(&mut self, now: Millis, id: u32) {
        let Some(request) = self.session().peers.remove(&id) else { return };
        let backoff = self.session().settings.replica_fetch_backoff_ms;
        self.session().retry_at.insert(request.kind.clone(), now.plus_ms(backoff));
        if let Some(partition) = self.partitions.get_mut(&request.kind) {
            if let PartitionRole::Follower(follower) = &mut partition.role {
                follower.on_request_failed();
            }
        }
    }

    /// The connection to a peer broker broke: its follower requests are lost.
    pub fn on_broker_disconnected(&mut self, now: Millis, broker: NodeId) {
        let lost: Vec<u32> = self
            .session()
            .peers
            .iter()
            .filter(|(_, r)| r.to == broker.0)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.fail_peer_request(now, id);
        }
    }

    /// A leader's answer to one of this broker's follower requests.
    pub fn on_broker_response(&mut self, now: Millis, from: NodeId, frame: ResponseFrame) {
        let Some(request) = self.session().peers.remove(&frame.correlation_id) else { return };
        let tp = request.kind;
        if request.to != from.0 {
            return;
        }
        let me = self.node_id();
        let backoff = self.session().settings.replica_fetch_backoff_ms;
        let Some(partition) = self.partitions.get_mut(&tp) else { return };
        // An offline log directory has no fetcher (Kafka's handleLogDirFailure removes them):
        // applying the answer would advance a log end the disk never got, and the next fetch
        // would tell the leader so (swarm seed 6155's draw, seed 73: a follower offline on a
        // full disk kept fetching, counted as caught up, and restarted without the records).
        if partition.offline {
            return;
        }
        let PartitionRole::Follower(follower) = &mut partition.role else { return };
        if follower.leader() != from {
            return;
        }
        let mut facts = Vec::new();
        let result: Result<(), FollowerError> = match frame.body {
            Response::Fetch(response) => match response.partitions.into_iter().next() {
                Some(answer) if answer.tp == tp => {
                    let old_leo = partition.log.log_end_offset();
                    let result = follower.on_fetch_response(now, &mut partition.log, &answer);
                    let new_leo = partition.log.log_end_offset();
                    if new_leo > old_leo {
                        let (batches, _) = scan_batches(&answer.records);
                        for batch in batches {
                            if batch.base_offset() >= old_leo && batch.last_offset() < new_leo {
                                facts.push(Fact::Appended {
                                    tp: tp.clone(),
                                    base: batch.base_offset(),
                                    last: batch.last_offset(),
                                    epoch: batch.header().leader_epoch(),
                                    crc: batch.header().crc,
                                });
                            }
                        }
                    } else if new_leo < old_leo {
                        let by = TruncationRule::HighWatermark;
                        facts.push(Fact::Truncated {
                            tp: tp.clone(),
                            to: new_leo,
                            from: old_leo,
                            by,
                        });
                    }
                    partition.high_watermark = follower.high_watermark();
                    result.map(|_| ())
                }
                _ => Err(FollowerError::UnexpectedResponse),
            },
            Response::OffsetsForLeaderEpoch(response) => match response.partitions.first() {
                Some(answer) if answer.tp == tp => {
                    let from = partition.log.log_end_offset();
                    let result =
                        follower.on_offsets_for_leader_epoch_response(&mut partition.log, answer);
                    partition.high_watermark = follower.high_watermark();
                    match result {
                        Ok(progress) => {
                            let to = progress.truncated.new_log_end_offset;
                            let by = TruncationRule::LeaderEpoch;
                            facts.push(Fact::Truncated { tp: tp.clone(), to, from, by });
                            Ok(())
                        }
                        Err(error) => Err(error),
                    }
                }
                _ => Err(FollowerError::UnexpectedResponse),
            },
            other => {
                warn!(node = %me, tp = %tp, ?other, "leader answered with the wrong response type");
                Err(FollowerError::UnexpectedResponse)
            }
        };
        if let Err(error) = result {
            debug!(node = %me, tp = %tp, leader = %from, %error, "follower request failed");
            follower.on_request_failed();
            self.session().retry_at.insert(tp.clone(), now.plus_ms(backoff));
        }
        for fact in facts {
            self.outputs.push(BrokerOutput::Fact(fact));
        }
        self.drain_disk_ops(&tp);
        self.poll_follower(now, &tp);
        if self.session().settings.follower_fetch {
            // Consumers parked on this follower may now have data below its HW.
            self.wake_fetches(now);
        }
    }

    /// Kafka's replication-offset-checkpoint: every hosted partition's HW, rewritten whole.
    fn checkpoint_high_watermarks(&mut self) {
        let mut text = String::new();
        for (tp, p) in &self.partitions {
            text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, p.high_watermark.0));
        }
        text.push_str(&format!("end {}\n", self.partitions.len()));
        let data = bytes::Bytes::from(text.into_bytes());
        let len = data.len() as u64;
        let ops = vec![
            crate::log::DiskOp::Write { path: HW_CHECKPOINT.to_string(), offset: 0, data },
            crate::log::DiskOp::Truncate { path: HW_CHECKPOINT.to_string(), len },
            crate::log::DiskOp::Sync { path: HW_CHECKPOINT.to_string() },
        ];
        let token = self.next_token;
        self.next_token += 1;
        self.outputs.push(BrokerOutput::Disk { token, ops });
    }
}

/// Where the HW checkpoint lives on a broker's disk.
pub const HW_CHECKPOINT: &str = "meta/replication-offset-checkpoint";

/// Reads a HW checkpoint; a torn or garbled file reads as empty (every HW restarts at 0,
/// which only makes reads wait for the leader's HW again).
pub fn parse_hw_checkpoint(bytes: &[u8]) -> BTreeMap<TopicPartition, Offset> {
    let parse = || -> Option<BTreeMap<TopicPartition, Offset>> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["end", count] => {
                    return (count.parse::<usize>().ok()? == out.len()).then_some(out);
                }
                [topic, partition, hw] => {
                    let tp = TopicPartition::new(topic.to_string(), partition.parse().ok()?);
                    out.insert(tp, Offset(hw.parse().ok()?));
                }
                _ => return None,
            }
        }
        None
    };
    parse().unwrap_or_default()
}
