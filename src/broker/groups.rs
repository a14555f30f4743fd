//! The broker as host of group coordinators: one [`GroupCoordinator`] per partition of the
//! offsets topic ([`OFFSETS_TOPIC`]) this broker leads, created with the leader epoch as its
//! coordinator epoch and dropped (after `resign`, its waiting replies flushed) when the
//! leadership ends — another role, another epoch, the partition offline.
//!
//! A new coordinator loads its groups from the local log, but only once the partition's HW
//! has reached the log end it found at election: until then the records it inherited are
//! not all committed, and the broker answers CoordinatorLoadInProgress. The records a
//! coordinator writes go through the path an acks=all produce takes (the replicated leader
//! append in cluster mode, the local append and its flush in single-broker mode); a commit
//! is acknowledged only once they are committed. JoinGroup and SyncGroup answers come
//! later: each request gets a `ReplyTo` token mapped to its connection and correlation id,
//! forgotten when the connection closes.
//!
//! Group semantics belong to `crate::group`; replication to `crate::replication`.

use super::{Appended, Broker, BrokerOutput, ConnId, Fact, PartitionRole, TopicSpec};
use crate::group::{
    find_coordinator, partition_for_group, CoordinatorConfig, CoordinatorOutput, GroupCoordinator,
    GroupRecord, GroupRequest, GroupResponse, ReplyTo,
};
use crate::log::{CleanupPolicy, LogConfig, PartitionLog};
use crate::protocol::*;
use crate::record::{scan_batches, BatchBuilder};
use crate::replication::ProduceId;
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;
use tracing::{debug, error, info, warn};

/// Kafka's internal offsets topic.
pub use crate::group::OFFSETS_TOPIC;

/// Kafka caps group ids at 249 bytes (the coordinator's `id_bytes_max` default).
const GROUP_ID_BYTES_MAX: usize = 249;

/// Replies outstanding at once across all coordinators (every queue has a limit); beyond
/// it group requests are refused with the retriable CoordinatorNotAvailable.
const WAITING_REPLIES_MAX: usize = 10_000;

/// Rounds of one pump: each carries out what the previous one produced. A chain longer
/// than this is a feedback loop between coordinator and broker, which is a bug.
const PUMP_ROUNDS_MAX: usize = 1_000;

/// Group coordination settings; defaults are Kafka's where Kafka has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSettings {
    /// offsets.topic.num.partitions (Kafka: 50; 3 here spreads groups over a small cluster).
    pub offsets_partitions: u32,
    /// Reject commits from stale generations (off only for the zombie-commit scenario).
    pub generation_check: bool,
    /// group.initial.rebalance.delay.ms (Kafka: 3000).
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms (Kafka: 6000 / 1800000).
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// offsets.commit.timeout.ms (Kafka: 5000): how long a commit waits for the ISR.
    pub offsets_commit_timeout_ms: u64,
}

impl Default for GroupSettings {
    fn default() -> Self {
        let coordinator = CoordinatorConfig::default();
        GroupSettings {
            offsets_partitions: 3,
            generation_check: coordinator.generation_check,
            initial_rebalance_delay_ms: coordinator.initial_rebalance_delay_ms,
            min_session_timeout_ms: coordinator.min_session_timeout_ms,
            max_session_timeout_ms: coordinator.max_session_timeout_ms,
            offsets_commit_timeout_ms: 5_000,
        }
    }
}

impl GroupSettings {
    /// The offsets topic as Kafka creates it: compacted, replication factor min(3, brokers)
    /// (offsets.topic.replication.factor), min.insync.replicas min(2, RF), clean elections.
    pub fn offsets_topic(&self, brokers: u16, log: LogConfig) -> TopicSpec {
        let replication_factor = brokers.clamp(1, 3);
        TopicSpec {
            name: OFFSETS_TOPIC.to_string(),
            partitions: self.offsets_partitions,
            log: LogConfig { cleanup: CleanupPolicy::Compact, ..log },
            replication_factor,
            min_insync_replicas: usize::from(replication_factor.min(2)),
            unclean_leader_election: false,
        }
    }

    fn coordinator_config(&self, partition: u32, leader_epoch: Epoch) -> CoordinatorConfig {
        CoordinatorConfig {
            offsets_partition: partition,
            num_offsets_partitions: self.offsets_partitions,
            coordinator_epoch: leader_epoch.0,
            generation_check: self.generation_check,
            initial_rebalance_delay_ms: self.initial_rebalance_delay_ms,
            min_session_timeout_ms: self.min_session_timeout_ms,
            max_session_timeout_ms: self.max_session_timeout_ms,
            id_bytes_max: GROUP_ID_BYTES_MAX,
            ..CoordinatorConfig::default()
        }
    }
}

/// The group API a request used: a deferred reply is shaped by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupApi {
    Join,
    Sync,
    Heartbeat,
    Leave,
    OffsetCommit,
    OffsetFetch,
}

#[derive(Debug)]
struct Waiting {
    conn: ConnId,
    correlation_id: u32,
    api: GroupApi,
}

/// What a coordinator's append waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppendWait {
    /// Single-broker mode: the HW passing this offset (after the flush, if the log asks).
    Durable(Offset),
    /// Cluster mode: the leader's acks=all completion.
    Replicated(ProduceId),
}

#[derive(Debug)]
struct OffsetsAppend {
    partition: u32,
    token: u64,
    wait: AppendWait,
}

/// One led offsets partition: loading (no coordinator yet) or serving.
struct Hosted {
    leader_epoch: Epoch,
    /// The log end at election: loading waits for the HW to reach it.
    load_to: Offset,
    coordinator: Option<GroupCoordinator>,
}

/// The broker's group-coordination state.
pub(super) struct GroupHost {
    settings: GroupSettings,
    hosted: BTreeMap<u32, Hosted>,
    waiting: BTreeMap<u64, Waiting>,
    next_reply: u64,
    appends: Vec<OffsetsAppend>,
    /// Re-entrancy guard of `pump_groups`.
    pumping: bool,
}

impl GroupHost {
    pub fn new(settings: GroupSettings, topics: &[TopicSpec]) -> GroupHost {
        assert!(settings.offsets_partitions > 0, "offsets topic with no partitions");
        if let Some(spec) = topics.iter().find(|t| t.name == OFFSETS_TOPIC) {
            assert_eq!(
                spec.partitions, settings.offsets_partitions,
                "{OFFSETS_TOPIC} configured with a partition count the group settings do not use"
            );
        }
        GroupHost {
            settings,
            hosted: BTreeMap::new(),
            waiting: BTreeMap::new(),
            next_reply: 0,
            appends: Vec::new(),
            pumping: false,
        }
    }

    fn coordinator(&mut self, partition: u32) -> Option<&mut GroupCoordinator> {
        self.hosted.get_mut(&partition).and_then(|h| h.coordinator.as_mut())
    }

    /// Reports an append's outcome to its coordinator, if it still serves.
    fn finish_append(&mut self, partition: u32, token: u64, error: ErrorCode) {
        let Some(coordinator) = self.coordinator(partition) else { return };
        if error == ErrorCode::None {
            coordinator.on_offsets_appended(token);
        } else {
            coordinator.on_offsets_append_failed(token, commit_error(error));
        }
    }
}

fn offsets_tp(partition: u32) -> TopicPartition {
    TopicPartition::new(OFFSETS_TOPIC, partition)
}

impl Broker {
    fn host(&mut self) -> &mut GroupHost {
        self.groups.as_mut().expect("group coordination configured")
    }

    /// Whether this broker serves (not merely loads) the coordinator of `group_id`.
    pub fn coordinates(&self, group_id: &str) -> bool {
        let Some(host) = &self.groups else { return false };
        let partition = partition_for_group(group_id, host.settings.offsets_partitions);
        host.hosted.get(&partition).is_some_and(|h| h.coordinator.is_some())
    }

    /// FindCoordinator: the leader of the group's offsets partition, as this broker knows it.
    pub(super) fn find_coordinator(&self, key: &str) -> FindCoordinatorResponse {
        let Some(host) = &self.groups else {
            return FindCoordinatorResponse {
                error: ErrorCode::CoordinatorNotAvailable,
                node_id: None,
            };
        };
        if key.len() > GROUP_ID_BYTES_MAX {
            return FindCoordinatorResponse { error: ErrorCode::InvalidGroupId, node_id: None };
        }
        find_coordinator(key, host.settings.offsets_partitions, |p| self.offsets_leader(p))
    }

    fn offsets_leader(&self, partition: u32) -> Option<NodeId> {
        match self.metadata_image() {
            Some((_, image)) => {
                image.topics.get(OFFSETS_TOPIC)?.partitions.get(partition as usize)?.leader
            }
            None => {
                let local = self.partitions.get(&offsets_tp(partition))?;
                (!local.offline).then_some(self.node_id())
            }
        }
    }

    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.
    pub(super) fn group_request(
        &mut self,
        now: Millis,
        conn: ConnId,
        correlation_id: u32,
        request: Request,
    ) {
        let (api, request) = group_request_of(request).expect("routed a group request");
        let partition = match self.route(group_id_of(&request)) {
            Ok(partition) => partition,
            Err(error) => {
                debug!(node = %self.node_id(), ?api, ?error, "group request refused");
                let body = error_response(api, commit_partitions(&request), error);
                self.respond(conn, correlation_id, body);
                return;
            }
        };
        let host = self.host();
        let reply_to = host.next_reply;
        host.next_reply += 1;
        host.waiting.insert(reply_to, Waiting { conn, correlation_id, api });
        let coordinator = host.coordinator(partition).expect("routed to a serving coordinator");
        coordinator.handle(now, ReplyTo(reply_to), request);
    }

    /// The offsets partition whose coordinator serves `group_id` here, or why none does.
    fn route(&self, group_id: &str) -> Result<u32, ErrorCode> {
        let Some(host) = &self.groups else { return Err(ErrorCode::CoordinatorNotAvailable) };
        if group_id.is_empty() || group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(ErrorCode::InvalidGroupId);
        }
        if host.waiting.len() >= WAITING_REPLIES_MAX {
            warn!(node = %self.node_id(), "too many group replies waiting");
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let partition = partition_for_group(group_id, host.settings.offsets_partitions);
        match host.hosted.get(&partition) {
            None => Err(ErrorCode::NotCoordinator),
            Some(h) if h.coordinator.is_none() => Err(ErrorCode::CoordinatorLoadInProgress),
            Some(_) => Ok(partition),
        }
    }

    /// Session timeouts and rebalance windows of every serving coordinator.
    pub(super) fn tick_groups(&mut self, now: Millis) {
        let Some(host) = self.groups.as_mut() else { return };
        for coordinator in host.hosted.values_mut().filter_map(|h| h.coordinator.as_mut()) {
            coordinator.tick(now);
        }
        self.pump_groups(now);
    }

    pub(super) fn groups_next_deadline(&self) -> Option<Millis> {
        let host = self.groups.as_ref()?;
        host.hosted
            .values()
            .filter_map(|h| h.coordinator.as_ref())
            .filter_map(GroupCoordinator::next_deadline)
            .min()
    }

    /// A closed connection's deferred replies have nowhere to go.
    pub(super) fn forget_group_replies(&mut self, conn: ConnId) {
        if let Some(host) = self.groups.as_mut() {
            host.waiting.retain(|_, w| w.conn != conn);
        }
    }

    /// Takes coordinators up and down as leadership says, finishes loads, and carries out
    /// what the coordinators produced until nothing more comes. Every entry point that can
    /// change a role, the HW or a coordinator ends with it.
    pub(super) fn pump_groups(&mut self, now: Millis) {
        let Some(host) = self.groups.as_mut() else { return };
        if host.pumping {
            return;
        }
        host.pumping = true;
        self.reconcile_coordinators(now);
        for _ in 0..PUMP_ROUNDS_MAX {
            self.settle_local_appends();
            let host = self.host();
            let mut outputs = Vec::new();
            for (partition, hosted) in &mut host.hosted {
                if let Some(coordinator) = hosted.coordinator.as_mut() {
                    outputs
                        .extend(coordinator.drain_outputs().into_iter().map(|o| (*partition, o)));
                }
            }
            if outputs.is_empty() {
                host.pumping = false;
                return;
            }
            for (partition, output) in outputs {
                self.carry_out(now, partition, output);
            }
        }
        panic!("group outputs on {} did not settle in {PUMP_ROUNDS_MAX} rounds", self.node_id());
    }

    /// The leader epoch and log end of an offsets partition this broker may coordinate.
    fn offsets_leadership(&self, partition: u32) -> Option<(Epoch, Offset)> {
        let local = self.partitions.get(&offsets_tp(partition))?;
        if local.offline {
            return None;
        }
        let leo = local.log.log_end_offset();
        match &local.role {
            PartitionRole::Standalone => Some((Epoch(0), leo)),
            PartitionRole::Leader(leader) => Some((leader.leader_epoch(), leo)),
            PartitionRole::Inactive | PartitionRole::Follower(_) => None,
        }
    }

    fn reconcile_coordinators(&mut self, now: Millis) {
        for partition in 0..self.host().settings.offsets_partitions {
            let wanted = self.offsets_leadership(partition);
            let current = self.host().hosted.get(&partition).map(|h| h.leader_epoch);
            if current.is_some() && current != wanted.map(|(epoch, _)| epoch) {
                self.stop_coordinator(partition);
            }
            if let Some((leader_epoch, load_to)) = wanted {
                if current != Some(leader_epoch) {
                    info!(node = %self.node_id(), partition, epoch = %leader_epoch, %load_to, "coordinator loading");
                    let hosted = Hosted { leader_epoch, load_to, coordinator: None };
                    self.host().hosted.insert(partition, hosted);
                }
            }
            self.try_load(now, partition);
        }
    }

    /// Loads a coordinator once everything it inherited is committed.
    fn try_load(&mut self, now: Millis, partition: u32) {
        let tp = offsets_tp(partition);
        let me = self.node_id();
        let Some(host) = self.groups.as_mut() else { return };
        let Some(hosted) = host.hosted.get_mut(&partition) else { return };
        let Some(local) = self.partitions.get(&tp) else { return };
        if hosted.coordinator.is_some() || local.high_watermark < hosted.load_to {
            return;
        }
        let (records, corrupt) = read_group_records(&local.log, hosted.load_to, &tp);
        let config = host.settings.coordinator_config(partition, hosted.leader_epoch);
        let mut coordinator = GroupCoordinator::new(config);
        let applied = coordinator.load(now, records);
        info!(node = %me, tp = %tp, epoch = %hosted.leader_epoch, applied, corrupt, "coordinator loaded");
        hosted.coordinator = Some(coordinator);
    }

    /// Leadership ended: resign, deliver the replies that flushes, forget the appends.
    fn stop_coordinator(&mut self, partition: u32) {
        let me = self.node_id();
        let host = self.host();
        let Some(hosted) = host.hosted.remove(&partition) else { return };
        host.appends.retain(|a| a.partition != partition);
        info!(node = %me, partition, epoch = %hosted.leader_epoch, "coordinator resigned");
        let Some(mut coordinator) = hosted.coordinator else { return };
        let mut outputs = coordinator.drain_outputs();
        coordinator.resign();
        outputs.extend(coordinator.drain_outputs());
        for output in outputs {
            match output {
                CoordinatorOutput::Reply { reply_to, response } => {
                    self.deliver_reply(reply_to, response)
                }
                CoordinatorOutput::Event(event) => {
                    let coordinator_epoch = hosted.leader_epoch;
                    self.outputs.push(BrokerOutput::Fact(Fact::Group { coordinator_epoch, event }))
                }
                CoordinatorOutput::AppendRecords { token, .. } => {
                    debug!(node = %me, partition, ?token, "append of a resigned coordinator dropped")
                }
            }
        }
    }

    fn carry_out(&mut self, now: Millis, partition: u32, output: CoordinatorOutput) {
        match output {
            CoordinatorOutput::Reply { reply_to, response } => {
                self.deliver_reply(reply_to, response)
            }
            CoordinatorOutput::Event(event) => {
                let coordinator_epoch =
                    self.host().hosted.get(&partition).map_or(Epoch(0), |h| h.leader_epoch);
                self.outputs.push(BrokerOutput::Fact(Fact::Group { coordinator_epoch, event }))
            }
            CoordinatorOutput::AppendRecords { token, records } => {
                self.append_offsets(now, partition, token, &records)
            }
        }
    }

    fn deliver_reply(&mut self, reply_to: ReplyTo, response: GroupResponse) {
        let Some(waiting) = self.host().waiting.remove(&reply_to.0) else {
            debug!(node = %self.node_id(), reply_to = reply_to.0, "group reply to a closed connection dropped");
            return;
        };
        let body = into_response(waiting.api, response);
        self.respond(waiting.conn, waiting.correlation_id, body);
    }

    /// Appends a coordinator's records as one batch, acks=all; a token's outcome goes back
    /// to the coordinator once known.
    fn append_offsets(
        &mut self,
        now: Millis,
        partition: u32,
        token: Option<u64>,
        records: &[GroupRecord],
    ) {
        let tp = offsets_tp(partition);
        let wait = if records.is_empty() {
            Ok(None)
        } else {
            self.append_group_records(now, &tp, records)
        };
        match (token, wait) {
            (Some(token), Ok(Some(wait))) => {
                self.host().appends.push(OffsetsAppend { partition, token, wait })
            }
            (Some(token), Ok(None)) => self.host().finish_append(partition, token, ErrorCode::None),
            (token, Err(error)) => {
                warn!(node = %self.node_id(), tp = %tp, ?token, ?error, "offsets append refused");
                if let Some(token) = token {
                    self.host().finish_append(partition, token, error);
                }
            }
            (None, Ok(_)) => {}
        }
        if self.cluster.is_some() {
            self.drain_leader(now, &tp);
        }
    }

    /// The append itself; Ok(None) when it is already committed.
    fn append_group_records(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        records: &[GroupRecord],
    ) -> Result<Option<AppendWait>, ErrorCode> {
        let mut builder = BatchBuilder::new();
        for record in records {
            builder.push(now.0 as i64, Some(&record.key()), Some(&record.encode()), &[]);
        }
        let bytes = builder.build().into_bytes();
        if self.cluster.is_some() {
            let timeout_ms = self.host().settings.offsets_commit_timeout_ms;
            let (_, id) = self.append_replicated(now, tp, bytes, Acks::All, timeout_ms)?;
            let id = id.expect("an acks=all append has a completion id");
            return Ok(Some(AppendWait::Replicated(id)));
        }
        match self.append(now, tp, bytes)? {
            Appended::Now { .. } => Ok(None),
            Appended::AfterFlush { durable_at, .. } => Ok(Some(AppendWait::Durable(durable_at))),
        }
    }

    /// Cluster mode: an acks=all completion that may be a coordinator's append. False when
    /// it is not one (a client's produce).
    pub(super) fn complete_offsets_append(
        &mut self,
        tp: &TopicPartition,
        id: ProduceId,
        error: ErrorCode,
    ) -> bool {
        if tp.topic != OFFSETS_TOPIC {
            return false;
        }
        let Some(host) = self.groups.as_mut() else { return false };
        let wait = AppendWait::Replicated(id);
        let Some(at) = host.appends.iter().position(|a| a.wait == wait) else { return false };
        let append = host.appends.remove(at);
        assert_eq!(
            offsets_tp(append.partition),
            *tp,
            "append {id:?} completed on another partition"
        );
        host.finish_append(append.partition, append.token, error);
        true
    }

    /// Single-broker mode: appends whose flush completed (or failed).
    fn settle_local_appends(&mut self) {
        let Some(host) = self.groups.as_mut() else { return };
        let partitions = &self.partitions;
        let mut settled = Vec::new();
        host.appends.retain(|a| {
            let AppendWait::Durable(end) = a.wait else { return true };
            let outcome = match partitions.get(&offsets_tp(a.partition)) {
                None => Some(ErrorCode::NotCoordinator),
                Some(p) if p.offline => Some(ErrorCode::KafkaStorageError),
                Some(p) if p.high_watermark >= end => Some(ErrorCode::None),
                Some(_) => None,
            };
            if let Some(error) = outcome {
                settled.push((a.partition, a.token, error));
            }
            outcome.is_none()
        });
        for (partition, token, error) in settled {
            host.finish_append(partition, token, error);
        }
    }
}

/// The group records of `log` below `upto`, in log order. A record that does not decode is
/// skipped and logged, never a panic: the batch CRC passed, so it is an encoding bug, and
/// the groups it does not touch must still load.
fn read_group_records(
    log: &PartitionLog,
    upto: Offset,
    tp: &TopicPartition,
) -> (Vec<GroupRecord>, usize) {
    let data = match log.read(log.log_start_offset(), usize::MAX, upto) {
        Ok(data) => data,
        Err(e) => {
            error!(tp = %tp, %upto, error = %e, "offsets partition unreadable: loading nothing");
            return (Vec::new(), 0);
        }
    };
    let (batches, _) = scan_batches(&data.records);
    let mut out = Vec::new();
    let mut corrupt = 0;
    for batch in batches.iter().filter(|b| !b.header().is_control()) {
        let records = match batch.records() {
            Ok(records) => records,
            Err(e) => {
                error!(tp = %tp, base = %batch.base_offset(), error = %e, "offsets batch undecodable: skipped");
                corrupt += 1;
                continue;
            }
        };
        // A record without a value is a tombstone: nothing to load.
        for record in records {
            let Some(value) = record.value else { continue };
            match GroupRecord::decode(&value) {
                Ok(decoded) => out.push(decoded),
                Err(e) => {
                    error!(tp = %tp, offset = %record.offset, error = %e, "group record corrupt: skipped");
                    corrupt += 1;
                }
            }
        }
    }
    (out, corrupt)
}

/// Kafka's mapping of an offsets-append error to what the committer sees
/// (GroupMetadataManager): retriable coordinator errors make the client rediscover.
fn commit_error(error: ErrorCode) -> ErrorCode {
    match error {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        other => other,
    }
}

fn group_request_of(request: Request) -> Option<(GroupApi, GroupRequest)> {
    Some(match request {
        Request::JoinGroup(r) => (GroupApi::Join, GroupRequest::Join(r)),
        Request::SyncGroup(r) => (GroupApi::Sync, GroupRequest::Sync(r)),
        Request::Heartbeat(r) => (GroupApi::Heartbeat, GroupRequest::Heartbeat(r)),
        Request::LeaveGroup(r) => (GroupApi::Leave, GroupRequest::Leave(r)),
        Request::OffsetCommit(r) => (GroupApi::OffsetCommit, GroupRequest::OffsetCommit(r)),
        Request::OffsetFetch(r) => (GroupApi::OffsetFetch, GroupRequest::OffsetFetch(r)),
        _ => return None,
    })
}

fn group_id_of(request: &GroupRequest) -> &str {
    match request {
        GroupRequest::Join(r) => &r.group_id,
        GroupRequest::Sync(r) => &r.group_id,
        GroupRequest::Heartbeat(r) => &r.group_id,
        GroupRequest::Leave(r) => &r.group_id,
        GroupRequest::OffsetCommit(r) => &r.group_id,
        GroupRequest::OffsetFetch(r) => &r.group_id,
    }
}

/// The partitions a commit names, for a per-partition error answer.
fn commit_partitions(request: &GroupRequest) -> Vec<TopicPartition> {
    match request {
        GroupRequest::OffsetCommit(r) => r.offsets.iter().map(|o| o.tp.clone()).collect(),
        _ => Vec::new(),
    }
}

fn into_response(api: GroupApi, response: GroupResponse) -> Response {
    match (api, response) {
        (GroupApi::Join, GroupResponse::Join(r)) => Response::JoinGroup(r),
        (GroupApi::Sync, GroupResponse::Sync(r)) => Response::SyncGroup(r),
        (GroupApi::Heartbeat, GroupResponse::Heartbeat(r)) => Response::Heartbeat(r),
        (GroupApi::Leave, GroupResponse::Leave(r)) => Response::LeaveGroup(r),
        (GroupApi::OffsetCommit, GroupResponse::OffsetCommit(r)) => Response::OffsetCommit(r),
        (GroupApi::OffsetFetch, GroupResponse::OffsetFetch(r)) => Response::OffsetFetch(r),
        // A waiting join failed with the coordinator's shared join-or-sync error shape.
        (api, other) => error_response(api, Vec::new(), other.error()),
    }
}

/// An error answer shaped as `api`'s response.
fn error_response(api: GroupApi, commit: Vec<TopicPartition>, error: ErrorCode) -> Response {
    match api {
        GroupApi::Join => Response::JoinGroup(JoinGroupResponse {
            error,
            generation_id: NO_GENERATION_ID,
            protocol_name: None,
            leader: String::new(),
            member_id: String::new(),
            members: Vec::new(),
        }),
        GroupApi::Sync => Response::SyncGroup(SyncGroupResponse { error, assignment: Vec::new() }),
        GroupApi::Heartbeat => Response::Heartbeat(HeartbeatResponse { error }),
        GroupApi::Leave => Response::LeaveGroup(LeaveGroupResponse { error }),
        GroupApi::OffsetCommit => Response::OffsetCommit(OffsetCommitResponse {
            partitions: commit.into_iter().map(|tp| (tp, error)).collect(),
        }),
        GroupApi::OffsetFetch => {
            Response::OffsetFetch(OffsetFetchResponse { error, partitions: Vec::new() })
        }
    }
}
