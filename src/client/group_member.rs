//! The consumer in subscribe mode: Kafka's ConsumerCoordinator + KafkaConsumer as a sans-IO
//! group member that owns an assign-mode `Consumer` and drives its `assign` and `seek`.
//!
//! Lifecycle (eager rebalance protocol): FindCoordinator to any known broker; JoinGroup
//! (first with an empty member id); the leader runs the assignor the coordinator chose over
//! every member's subscription and sends all assignments in its SyncGroup, followers send
//! an empty one; on success the partitions are `Assigned`, their committed offsets are
//! fetched (OffsetFetch) and only then handed to the inner consumer, sought to the
//! committed offset or left without a position so auto_offset_reset applies. No record of
//! a partition is handed out before its committed offset is known.
//!
//! While stable the member heartbeats every heartbeat_interval_ms. RebalanceInProgress
//! revokes every owned partition (after a synchronous auto-commit of the consumed
//! positions, as Kafka's onJoinPrepare does) and rejoins. UnknownMemberId,
//! IllegalGeneration, FencedInstanceId or no successful heartbeat within the session
//! timeout make the partitions `Lost` (no commit: another member may own them already).
//! Not calling `take_records` within max_poll_interval_ms leaves the group (a dynamic
//! member sends LeaveGroup; a static one does not, as in Kafka 2.3+) until the next
//! `take_records`. Every ownership change is an event carrying its generation: each
//! `Assigned` is followed by exactly one `Revoked` or `Lost` of the same partitions.
//!
//! Commits outside a stable generation are refused locally with an error result and no
//! request (Kafka's CommitFailedException / RebalanceInProgressException), never sent with
//! a stale generation.
//!
//! Group requests use correlation ids from the upper half of the u32 space and the inner
//! consumer the lower half, so the shell hands every response to `on_response` and the
//! member routes it. This file does not own fetching (consumer.rs), the metadata cache
//! (metadata.rs), the assignors nor the coordinator (crate::group).

use super::consumer::{ConsumedRecord, Consumer, ConsumerAction, ConsumerConfig, ConsumerEvent};
use super::{CloseReason, ConfigError};
use crate::group::{assign, AssignorKind, MemberSubscription};
use crate::protocol::{
    ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, JoinGroupMember,
    JoinGroupProtocol, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, Request, RequestFrame, Response, ResponseFrame, SyncGroupAssignment,
    SyncGroupRequest, SyncGroupResponse, NO_GENERATION_ID,
};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

/// Kafka's ConsumerProtocol.PROTOCOL_TYPE.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Group requests take correlation ids at and above this; the inner consumer's stay below
/// (it would need 2^31 requests to reach it).
pub const GROUP_CORRELATION_BASE: u32 = 1 << 31;

/// Kafka's AbstractCoordinator.JOIN_GROUP_TIMEOUT_LAPSE: a JoinGroup (and a SyncGroup) may
/// wait a whole rebalance window at the coordinator, so it times out this much later.
const JOIN_TIMEOUT_LAPSE_MS: u64 = 5_000;

/// One offset to commit: the partition, the next offset to consume, and the leader epoch
/// of the last consumed record when known.
pub type CommitOffset = (TopicPartition, Offset, Option<Epoch>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMemberConfig {
    pub group_id: String,
    /// The subscription (Kafka's subscribe(topics)).
    pub topics: Vec<String>,
    /// partition.assignment.strategy, most preferred first.
    pub assignors: Vec<AssignorKind>,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    /// Also the rebalance timeout sent in JoinGroup, as in Kafka.
    pub max_poll_interval_ms: u32,
    /// group.instance.id: a static member (KIP-345).
    pub group_instance_id: Option<String>,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u64,
    /// Backoff of group requests (FindCoordinator, JoinGroup, OffsetFetch retries).
    pub retry_backoff_ms: u64,
    /// Timeout of group requests; JoinGroup and SyncGroup get max_poll_interval_ms + 5 s
    /// on top of nothing (whichever is larger), as Kafka's client.
    pub request_timeout_ms: u64,
    pub consumer: ConsumerConfig,
}

impl GroupMemberConfig {
    /// Kafka 3.x defaults for `group_id` subscribed to `topics`, with the range assignor.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> GroupMemberConfig {
        GroupMemberConfig {
            group_id: group_id.into(),
            topics,
            assignors: vec![AssignorKind::Range],
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            group_instance_id: None,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            retry_backoff_ms: 100,
            request_timeout_ms: 30_000,
            consumer: ConsumerConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_id.is_empty() {
            return Err(ConfigError::new("group_id", "a subscribing consumer needs a group id"));
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return Err(ConfigError::new("topics", "must name at least one non-empty topic"));
        }
        if self.assignors.is_empty() {
            return Err(ConfigError::new("assignors", "must list at least one assignor"));
        }
        let positive = [
            ("session_timeout_ms", u64::from(self.session_timeout_ms)),
            ("heartbeat_interval_ms", u64::from(self.heartbeat_interval_ms)),
            ("max_poll_interval_ms", u64::from(self.max_poll_interval_ms)),
            ("request_timeout_ms", self.request_timeout_ms),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::new(field, "must be positive"));
        }
        if self.session_timeout_ms <= self.heartbeat_interval_ms {
            return Err(ConfigError::new(
                "session_timeout_ms",
                "must exceed heartbeat_interval_ms, or the session expires between heartbeats",
            ));
        }
        if self.enable_auto_commit && self.auto_commit_interval_ms == 0 {
            return Err(ConfigError::new("auto_commit_interval_ms", "must be positive"));
        }
        if self.group_instance_id.as_ref().is_some_and(String::is_empty) {
            return Err(ConfigError::new("group_instance_id", "must not be empty when set"));
        }
        self.consumer.validate()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitResult {
    Ok,
    /// Refused: by the coordinator, or locally without a request (no stable generation:
    /// RebalanceInProgress or UnknownMemberId; no coordinator: CoordinatorNotAvailable).
    Err(ErrorCode),
    /// Timed out or the connection broke: the commit may or may not be durable.
    Indeterminate,
}

/// Why owned partitions were lost rather than revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The coordinator answered with this error (UnknownMemberId, IllegalGeneration,
    /// FencedInstanceId).
    Error(ErrorCode),
    /// No successful heartbeat within session_timeout_ms, as seen by the member.
    SessionExpired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    Closed,
    /// The application did not call `take_records` within max_poll_interval_ms.
    PollTimeout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    Joined {
        generation: i32,
        member_id: String,
        leader: bool,
    },
    Assigned {
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    Revoked {
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    Lost {
        generation: i32,
        partitions: Vec<TopicPartition>,
        reason: LostReason,
    },
    CommitCompleted {
        id: u64,
        offsets: Vec<CommitOffset>,
        result: CommitResult,
    },
    /// Another member took this group.instance.id over: fatal, the member stops.
    Fenced,
    /// The coordinator refused the member for good (InconsistentGroupProtocol,
    /// InvalidGroupId, InvalidSessionTimeout, GroupMaxSizeReached, ...): it stops.
    Fatal {
        error: ErrorCode,
    },
    LeftGroup {
        reason: LeaveReason,
    },
    Consumer(ConsumerEvent),
}

/// A coarse view of the member's state, for shells and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Finding the coordinator, joining or syncing.
    Rebalancing,
    Stable,
    /// Left after a poll timeout; rejoins on the next `take_records`.
    Left,
    Closed,
    /// Fenced or refused for good.
    Failed,
}

#[derive(Clone, Debug)]
enum Phase {
    /// A JoinGroup is due (sent once the coordinator is known and `retry_at` passed).
    Unjoined,
    /// Eager rebalance: the synchronous auto-commit before revoking is in flight.
    CommittingBeforeRevoke {
        commit_id: u64,
    },
    Joining,
    /// The leader waits for the partition counts of the subscribed topics.
    Assigning {
        members: Vec<JoinGroupMember>,
        since: Millis,
    },
    Syncing,
    Stable,
    Left,
    Closed,
    Failed,
}

#[derive(Clone, Debug)]
enum Kind {
    FindCoordinator,
    Join,
    Sync { generation: i32 },
    Heartbeat { generation: i32 },
    Leave,
    Commit { id: u64, generation: i32, offsets: Vec<CommitOffset> },
    OffsetFetch { generation: i32 },
}

#[derive(Clone, Debug)]
struct InFlight {
    node: NodeId,
    sent_at: Millis,
    timeout_ms: u64,
    kind: Kind,
}

pub struct GroupMember {
    client_id: NodeId,
    config: GroupMemberConfig,
    consumer: Consumer,
    phase: Phase,
    coordinator: Option<NodeId>,
    find_turn: u64,
    find_retry_at: Millis,
    /// When the next JoinGroup or OffsetFetch may be sent.
    retry_at: Millis,
    member_id: String,
    generation_id: i32,
    protocol: Option<AssignorKind>,
    leader: bool,
    /// The partitions of the generation they were `Assigned` in; None once revoked/lost.
    owned: Option<(i32, Vec<TopicPartition>)>,
    /// What the last generation gave this member (the sticky assignor's "owned").
    previous_assignment: Vec<TopicPartition>,
    /// Stable, but the committed offsets of `owned` are not known yet.
    offsets_pending: bool,
    last_heartbeat_sent: Millis,
    last_heartbeat_ok: Millis,
    last_take: Option<Millis>,
    next_auto_commit_at: Millis,
    auto_commit_in_flight: Option<u64>,
    in_flight: BTreeMap<u32, InFlight>,
    /// The JoinGroup or SyncGroup the phase waits for: answers to earlier (superseded)
    /// ones are ignored.
    awaited: Option<u32>,
    next_correlation_seq: u32,
    next_commit_id: u64,
    events: Vec<MemberEvent>,
    /// Requests made outside `poll` (by `commit`), handed out by the next `poll`.
    outbox: Vec<ConsumerAction>,
    last_poll: Option<Millis>,
}

impl GroupMember {
    pub fn new(client_id: NodeId, config: GroupMemberConfig) -> Result<GroupMember, ConfigError> {
        config.validate()?;
        let mut consumer = Consumer::new(client_id, config.consumer.clone())?;
        for topic in &config.topics {
            consumer.want_topic(topic);
        }
        Ok(GroupMember {
            client_id,
            config,
            consumer,
            phase: Phase::Unjoined,
            coordinator: None,
            find_turn: 0,
            find_retry_at: Millis(0),
            retry_at: Millis(0),
            member_id: String::new(),
            generation_id: NO_GENERATION_ID,
            protocol: None,
            leader: false,
            owned: None,
            previous_assignment: Vec::new(),
            offsets_pending: false,
            last_heartbeat_sent: Millis(0),
            last_heartbeat_ok: Millis(0),
            last_take: None,
            next_auto_commit_at: Millis(0),
            auto_commit_in_flight: None,
            in_flight: BTreeMap::new(),
            awaited: None,
            next_correlation_seq: 0,
            next_commit_id: 0,
            events: Vec::new(),
            outbox: Vec::new(),
            last_poll: None,
        })
    }

    pub fn config(&self) -> &GroupMemberConfig {
        &self.config
    }

    /// The inner assign-mode consumer (read only: the member drives its assignment).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    pub fn state(&self) -> MemberState {
        match self.phase {
            Phase::Stable => MemberState::Stable,
            Phase::Left => MemberState::Left,
            Phase::Closed => MemberState::Closed,
            Phase::Failed => MemberState::Failed,
            _ => MemberState::Rebalancing,
        }
    }

    pub fn coordinator(&self) -> Option<NodeId> {
        self.coordinator
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// (generation_id, member_id) while the member holds a stable generation.
    pub fn generation(&self) -> Option<(i32, String)> {
        match self.phase {
            Phase::Stable => Some((self.generation_id, self.member_id.clone())),
            _ => None,
        }
    }

    /// The partitions owned in the current generation (empty between revoke and assign).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.as_ref().map(|(_, parts)| parts.clone()).unwrap_or_default()
    }

    /// Positions (next offset to hand out) of owned partitions whose committed offset is
    /// known and that have a position.
    pub fn positions(&self) -> BTreeMap<TopicPartition, Offset> {
        if !matches!(self.phase, Phase::Stable | Phase::CommittingBeforeRevoke { .. })
            || self.offsets_pending
        {
            return BTreeMap::new();
        }
        self.assignment()
            .into_iter()
            .filter_map(|tp| self.consumer.position(&tp).map(|o| (tp, o)))
            .collect()
    }

    /// What "commit after process" commits: every position, without a leader epoch (the
    /// inner consumer does not track the epoch of each record).
    pub fn consumed_offsets(&self) -> Vec<CommitOffset> {
        self.positions().into_iter().map(|(tp, offset)| (tp, offset, None)).collect()
    }

    pub fn on_metadata(&mut self, metadata: &crate::protocol::MetadataResponse) {
        self.consumer.on_metadata(metadata);
    }

    pub fn poll(&mut self, now: Millis) -> Vec<ConsumerAction> {
        self.last_poll = Some(now);
        self.last_take.get_or_insert(now);
        let mut actions = std::mem::take(&mut self.outbox);
        self.expire_requests(now, &mut actions);
        if matches!(self.phase, Phase::Closed | Phase::Failed) {
            return actions;
        }
        self.check_poll_interval(now, &mut actions);
        self.check_session(now);
        self.ensure_coordinator(now, &mut actions);
        if let Some(coordinator) = self.coordinator {
            self.drive_group(now, coordinator, &mut actions);
        }
        for action in self.consumer.poll(now) {
            if let ConsumerAction::CloseConnection { node, .. } = &action {
                // The consumer closed a connection the group requests may share.
                self.fail_requests_on(now, *node);
            }
            actions.push(action);
        }
        self.drain_consumer_events();
        actions
    }

    /// The earliest future time at which `poll` has something to do without any input.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let mut times: Vec<Millis> = self.consumer.next_wakeup().into_iter().collect();
        times.extend(self.in_flight.values().map(|r| r.sent_at.plus_ms(r.timeout_ms)));
        let participating = !matches!(self.phase, Phase::Closed | Phase::Failed | Phase::Left);
        if participating {
            if self.coordinator.is_none() {
                times.push(self.find_retry_at);
            }
            if let Some(last_take) = self.last_take {
                times.push(last_take.plus_ms(u64::from(self.config.max_poll_interval_ms)));
            }
        }
        match &self.phase {
            Phase::Unjoined => times.push(self.retry_at),
            Phase::Assigning { since, .. } => times.push(since.plus_ms(self.assign_wait_ms())),
            Phase::Stable => {
                let heartbeat = u64::from(self.config.heartbeat_interval_ms);
                let session = u64::from(self.config.session_timeout_ms);
                times.push(self.last_heartbeat_sent.plus_ms(heartbeat));
                times.push(self.last_heartbeat_ok.plus_ms(session));
                if self.offsets_pending {
                    times.push(self.retry_at);
                } else if self.config.enable_auto_commit {
                    times.push(self.next_auto_commit_at);
                }
            }
            _ => {}
        }
        let after = self.last_poll;
        times.into_iter().filter(|&t| after.is_none_or(|last| t > last)).min()
    }

    /// Routes a response to the group logic or the inner consumer, by correlation id.
    /// Strays (unknown id, wrong sender, mismatched type) are logged and ignored; a
    /// request answered with the wrong type stays in flight until it times out.
    pub fn on_response(&mut self, now: Millis, from: NodeId, frame: ResponseFrame) {
        let correlation_id = frame.correlation_id;
        if correlation_id < GROUP_CORRELATION_BASE {
            self.consumer.on_response(now, from, correlation_id, frame.body);
            self.drain_consumer_events();
            return;
        }
        let matched = match self.in_flight.get(&correlation_id) {
            Some(r) if r.node == from => response_matches(&r.kind, &frame.body),
            _ => {
                tracing::debug!(client = %self.client_id, correlation_id, %from, "stray group response");
                return;
            }
        };
        if !matched {
            tracing::warn!(client = %self.client_id, correlation_id, %from,
                body = ?frame.body, "group response of the wrong type ignored");
            return;
        }
        let request = self.in_flight.remove(&correlation_id).expect("present above");
        self.on_group_response(now, correlation_id, request.node, request.kind, frame.body);
    }

    /// Requests in flight on `node` are lost; the coordinator is rediscovered if it was
    /// `node`.
    pub fn on_disconnect(&mut self, now: Millis, node: NodeId) {
        self.consumer.on_disconnect(now, node);
        self.fail_requests_on(now, node);
        self.drain_consumer_events();
    }

    /// The application's poll: up to `max` records of owned partitions whose committed
    /// offsets are known. Resets the max.poll.interval timer; after a poll-timeout leave
    /// the member rejoins.
    pub fn take_records(&mut self, now: Millis, max: usize) -> Vec<ConsumedRecord> {
        self.last_take = Some(now);
        if matches!(self.phase, Phase::Left) {
            tracing::info!(client = %self.client_id, group = %self.config.group_id, "rejoining after poll timeout");
            self.phase = Phase::Unjoined;
            self.retry_at = now;
        }
        if !matches!(self.phase, Phase::Stable) || self.offsets_pending {
            return Vec::new();
        }
        self.consumer.take_records(max)
    }

    pub fn take_events(&mut self) -> Vec<MemberEvent> {
        self.drain_consumer_events();
        std::mem::take(&mut self.events)
    }

    /// Commits `offsets` with the current generation; the outcome comes as a
    /// `CommitCompleted` event with the returned id. Without a stable generation or a
    /// coordinator the commit is refused at once (an `Err` result, nothing sent).
    pub fn commit(&mut self, now: Millis, offsets: Vec<CommitOffset>) -> u64 {
        let id = self.next_commit_id;
        self.next_commit_id += 1;
        let refusal = match (&self.phase, self.coordinator) {
            (Phase::Stable | Phase::CommittingBeforeRevoke { .. }, Some(_)) => None,
            (Phase::Stable, None) => Some(ErrorCode::CoordinatorNotAvailable),
            (Phase::Unjoined | Phase::Joining | Phase::Assigning { .. } | Phase::Syncing, _)
                if !self.member_id.is_empty() =>
            {
                Some(ErrorCode::RebalanceInProgress)
            }
            _ => Some(ErrorCode::UnknownMemberId),
        };
        if let Some(error) = refusal {
            tracing::debug!(client = %self.client_id, id, ?error, "commit refused locally");
            let result = CommitResult::Err(error);
            self.events.push(MemberEvent::CommitCompleted { id, offsets, result });
            return id;
        }
        let mut outbox = std::mem::take(&mut self.outbox);
        self.send_commit(now, id, offsets, &mut outbox);
        self.outbox = outbox;
        id
    }

    /// Leaves: commits consumed positions first when auto-commit is on, revokes what is
    /// owned, and (dynamic members only) sends LeaveGroup. A static member sends nothing,
    /// so a restart within the session timeout takes its place back without a rebalance.
    pub fn close(&mut self, now: Millis) -> Vec<ConsumerAction> {
        if matches!(self.phase, Phase::Closed | Phase::Failed) {
            return Vec::new();
        }
        let mut actions = std::mem::take(&mut self.outbox);
        if self.config.enable_auto_commit
            && matches!(self.phase, Phase::Stable)
            && self.coordinator.is_some()
        {
            let offsets = self.consumed_offsets();
            if !offsets.is_empty() {
                let id = self.next_commit_id;
                self.next_commit_id += 1;
                self.send_commit(now, id, offsets, &mut actions);
            }
        }
        self.revoke(now);
        self.send_leave(now, &mut actions);
        self.phase = Phase::Closed;
        self.events.push(MemberEvent::LeftGroup { reason: LeaveReason::Closed });
        actions
    }
}

// ---- requests ----
impl GroupMember {
    fn drain_consumer_events(&mut self) {
        let events = self.consumer.take_events();
        self.events.extend(events.into_iter().map(MemberEvent::Consumer));
    }

    /// How long a leader waits for unknown partition counts before assigning with what it
    /// knows (within the session, which the coordinator does not renew meanwhile).
    fn assign_wait_ms(&self) -> u64 {
        self.config.request_timeout_ms.min(u64::from(self.config.session_timeout_ms) / 2)
    }

    fn join_timeout_ms(&self) -> u64 {
        let rebalance = u64::from(self.config.max_poll_interval_ms) + JOIN_TIMEOUT_LAPSE_MS;
        self.config.request_timeout_ms.max(rebalance)
    }

    fn write(
        &mut self,
        now: Millis,
        node: NodeId,
        body: Request,
        kind: Kind,
        actions: &mut Vec<ConsumerAction>,
    ) -> u32 {
        let correlation_id =
            GROUP_CORRELATION_BASE | (self.next_correlation_seq & (GROUP_CORRELATION_BASE - 1));
        self.next_correlation_seq = self.next_correlation_seq.wrapping_add(1);
        let timeout_ms = match kind {
            Kind::Join | Kind::Sync { .. } => self.join_timeout_ms(),
            _ => self.config.request_timeout_ms,
        };
        let previous = self
            .in_flight
            .insert(correlation_id, InFlight { node, sent_at: now, timeout_ms, kind });
        assert!(previous.is_none(), "correlation id {correlation_id} reused while in flight");
        let frame = RequestFrame { correlation_id, client_id: self.client_id, body };
        actions.push(ConsumerAction::Send { to: node, frame });
        correlation_id
    }

    fn has_in_flight(&self, pred: impl Fn(&Kind) -> bool) -> bool {
        self.in_flight.values().any(|r| pred(&r.kind))
    }

    fn expire_requests(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let mut expired: BTreeMap<NodeId, u32> = BTreeMap::new();
        for (&correlation_id, r) in &self.in_flight {
            if now >= r.sent_at.plus_ms(r.timeout_ms) {
                expired.entry(r.node).or_insert(correlation_id);
            }
        }
        for (node, correlation_id) in expired {
            tracing::debug!(client = %self.client_id, %node, correlation_id, "group request timed out");
            let reason = CloseReason::RequestTimeout { correlation_id };
            actions.push(ConsumerAction::CloseConnection { node, reason });
            self.on_disconnect(now, node);
        }
    }

    /// The connection to `node` broke (or was closed): its group requests are lost.
    fn fail_requests_on(&mut self, now: Millis, node: NodeId) {
        let ids: Vec<u32> =
            self.in_flight.iter().filter(|(_, r)| r.node == node).map(|(&id, _)| id).collect();
        for id in ids {
            let request = self.in_flight.remove(&id).expect("listed above");
            self.on_request_lost(now, id, request.kind);
        }
        if self.coordinator == Some(node) {
            self.coordinator_unknown(now, "connection to the coordinator lost");
        }
    }

    /// A group request got no answer: what Kafka does on a disconnect of that request.
    fn on_request_lost(&mut self, now: Millis, correlation_id: u32, kind: Kind) {
        let awaited = self.awaited == Some(correlation_id);
        match kind {
            Kind::FindCoordinator => self.find_retry_at = now.plus_ms(self.config.retry_backoff_ms),
            Kind::Join if awaited && matches!(self.phase, Phase::Joining) => {
                self.rejoin_after(now, self.config.retry_backoff_ms, "join lost")
            }
            Kind::Sync { generation } if awaited && self.is_syncing(generation) => {
                self.rejoin_after(now, self.config.retry_backoff_ms, "sync lost")
            }
            Kind::Commit { id, generation, offsets } => {
                self.on_commit_result(now, id, generation, offsets, CommitResult::Indeterminate)
            }
            Kind::OffsetFetch { .. } => self.retry_at = now.plus_ms(self.config.retry_backoff_ms),
            Kind::Join | Kind::Sync { .. } | Kind::Heartbeat { .. } | Kind::Leave => {}
        }
    }

    fn coordinator_unknown(&mut self, now: Millis, why: &'static str) {
        if let Some(node) = self.coordinator.take() {
            tracing::info!(client = %self.client_id, group = %self.config.group_id, %node, why, "coordinator unknown");
            self.find_retry_at = now.plus_ms(self.config.retry_backoff_ms);
        }
    }

    fn ensure_coordinator(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        if matches!(self.phase, Phase::Left)
            || self.coordinator.is_some()
            || now < self.find_retry_at
            || self.has_in_flight(|k| matches!(k, Kind::FindCoordinator))
        {
            return;
        }
        let Some(node) = self.consumer.metadata().any_broker(self.find_turn) else {
            self.consumer.request_metadata_refresh();
            return;
        };
        self.find_turn = self.find_turn.wrapping_add(1);
        let body =
            Request::FindCoordinator(FindCoordinatorRequest { key: self.config.group_id.clone() });
        self.write(now, node, body, Kind::FindCoordinator, actions);
    }

    fn drive_group(&mut self, now: Millis, coordinator: NodeId, actions: &mut Vec<ConsumerAction>) {
        match &self.phase {
            Phase::Unjoined if now >= self.retry_at => self.send_join(now, coordinator, actions),
            Phase::Assigning { .. } => self.try_assign(now, coordinator, actions),
            Phase::Stable => {
                self.maybe_heartbeat(now, coordinator, actions);
                self.maybe_fetch_offsets(now, coordinator, actions);
                self.maybe_auto_commit(now, actions);
            }
            _ => {}
        }
    }

    fn send_join(&mut self, now: Millis, coordinator: NodeId, actions: &mut Vec<ConsumerAction>) {
        let mut topics = self.config.topics.clone();
        topics.sort();
        topics.dedup();
        let protocols = self
            .config
            .assignors
            .iter()
            .map(|&kind| JoinGroupProtocol {
                name: kind.name().to_string(),
                topics: topics.clone(),
                // Eager: nothing is owned at join time; the sticky assignor gets the
                // previous assignment instead (Kafka's StickyAssignor user data).
                owned_partitions: match kind {
                    AssignorKind::Sticky => self.previous_assignment.clone(),
                    _ => Vec::new(),
                },
            })
            .collect();
        let body = Request::JoinGroup(JoinGroupRequest {
            group_id: self.config.group_id.clone(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.max_poll_interval_ms,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocols,
        });
        tracing::debug!(client = %self.client_id, member = %self.member_id, %now, "join group");
        self.phase = Phase::Joining;
        self.awaited = Some(self.write(now, coordinator, body, Kind::Join, actions));
    }

    /// The leader assigns once every subscribed topic's partition count is known (or the
    /// wait ran out: unknown topics are then left out, as Kafka's assignors skip them).
    fn try_assign(&mut self, now: Millis, coordinator: NodeId, actions: &mut Vec<ConsumerAction>) {
        let Phase::Assigning { members, since } = &self.phase else { return };
        let subscriptions: Vec<MemberSubscription> = members
            .iter()
            .map(|m| MemberSubscription {
                member_id: m.member_id.clone(),
                topics: m.protocol.topics.clone(),
                owned: m.protocol.owned_partitions.clone(),
            })
            .collect();
        let since = *since;
        let mut counts = BTreeMap::new();
        let mut missing = Vec::new();
        for topic in subscriptions.iter().flat_map(|m| m.topics.iter()) {
            match self.consumer.metadata().partition_count(topic) {
                Some(n) => {
                    counts.insert(topic.clone(), n);
                }
                None => missing.push(topic.clone()),
            }
        }
        if !missing.is_empty() && now < since.plus_ms(self.assign_wait_ms()) {
            for topic in &missing {
                self.consumer.want_topic(topic);
            }
            self.consumer.request_metadata_refresh();
            return;
        }
        if !missing.is_empty() {
            tracing::warn!(client = %self.client_id, ?missing, "assigning without partition counts");
        }
        let kind = self.protocol.expect("a leader assigns with the chosen protocol");
        let assignment = assign(kind, &subscriptions, &counts);
        tracing::info!(client = %self.client_id, generation = self.generation_id, protocol = kind.name(), ?assignment, "leader assigned");
        let assignments = assignment
            .into_iter()
            .map(|(member_id, partitions)| SyncGroupAssignment { member_id, partitions })
            .collect();
        self.send_sync(now, coordinator, assignments, actions);
    }

    fn send_sync(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        assignments: Vec<SyncGroupAssignment>,
        actions: &mut Vec<ConsumerAction>,
    ) {
        let body = Request::SyncGroup(SyncGroupRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            assignments,
        });
        self.phase = Phase::Syncing;
        let kind = Kind::Sync { generation: self.generation_id };
        self.awaited = Some(self.write(now, coordinator, body, kind, actions));
    }

    fn maybe_heartbeat(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        actions: &mut Vec<ConsumerAction>,
    ) {
        let due = self.last_heartbeat_sent.plus_ms(u64::from(self.config.heartbeat_interval_ms));
        if now < due || self.has_in_flight(|k| matches!(k, Kind::Heartbeat { .. })) {
            return;
        }
        self.last_heartbeat_sent = now;
        let body = Request::Heartbeat(HeartbeatRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
        });
        let kind = Kind::Heartbeat { generation: self.generation_id };
        self.write(now, coordinator, body, kind, actions);
    }

    fn maybe_fetch_offsets(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        actions: &mut Vec<ConsumerAction>,
    ) {
        if !self.offsets_pending
            || now < self.retry_at
            || self.has_in_flight(|k| matches!(k, Kind::OffsetFetch { .. }))
        {
            return;
        }
        let body = Request::OffsetFetch(OffsetFetchRequest {
            group_id: self.config.group_id.clone(),
            partitions: Some(self.assignment()),
        });
        let kind = Kind::OffsetFetch { generation: self.generation_id };
        self.write(now, coordinator, body, kind, actions);
    }

    fn maybe_auto_commit(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        if !self.config.enable_auto_commit
            || self.offsets_pending
            || now < self.next_auto_commit_at
            || self.auto_commit_in_flight.is_some()
        {
            return;
        }
        self.next_auto_commit_at = now.plus_ms(self.config.auto_commit_interval_ms);
        let offsets = self.consumed_offsets();
        if offsets.is_empty() {
            return;
        }
        let id = self.next_commit_id;
        self.next_commit_id += 1;
        self.auto_commit_in_flight = Some(id);
        self.send_commit(now, id, offsets, actions);
    }

    fn send_commit(
        &mut self,
        now: Millis,
        id: u64,
        offsets: Vec<CommitOffset>,
        actions: &mut Vec<ConsumerAction>,
    ) {
        let coordinator = self.coordinator.expect("commits are sent to a known coordinator");
        let body = Request::OffsetCommit(OffsetCommitRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            offsets: offsets
                .iter()
                .map(|(tp, offset, leader_epoch)| OffsetCommitPartition {
                    tp: tp.clone(),
                    offset: *offset,
                    leader_epoch: *leader_epoch,
                })
                .collect(),
        });
        tracing::debug!(client = %self.client_id, id, generation = self.generation_id, ?offsets, "commit");
        let kind = Kind::Commit { id, generation: self.generation_id, offsets };
        self.write(now, coordinator, body, kind, actions);
    }

    /// A dynamic member with a member id tells the coordinator it leaves; a static one
    /// never does (KIP-345), and the member id is forgotten either way.
    fn send_leave(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        if let (None, Some(coordinator), false) =
            (&self.config.group_instance_id, self.coordinator, self.member_id.is_empty())
        {
            let body = Request::LeaveGroup(LeaveGroupRequest {
                group_id: self.config.group_id.clone(),
                member_id: self.member_id.clone(),
                group_instance_id: None,
            });
            self.write(now, coordinator, body, Kind::Leave, actions);
        }
        self.member_id.clear();
        self.generation_id = NO_GENERATION_ID;
    }
}

// ---- transitions ----
impl GroupMember {
    fn is_syncing(&self, generation: i32) -> bool {
        matches!(self.phase, Phase::Syncing) && generation == self.generation_id
    }

    fn is_stable_in(&self, generation: i32) -> bool {
        matches!(self.phase, Phase::Stable) && generation == self.generation_id
    }

    fn rejoin_after(&mut self, now: Millis, backoff_ms: u64, why: &'static str) {
        assert!(self.owned.is_none(), "{} rejoins still owning {:?}", self.client_id, self.owned);
        tracing::info!(client = %self.client_id, group = %self.config.group_id, why, "rejoin");
        self.phase = Phase::Unjoined;
        self.retry_at = now.plus_ms(backoff_ms);
    }

    fn check_poll_interval(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let last_take = self.last_take.expect("set by poll");
        let limit = u64::from(self.config.max_poll_interval_ms);
        if matches!(self.phase, Phase::Left) || now < last_take.plus_ms(limit) {
            return;
        }
        tracing::warn!(client = %self.client_id, group = %self.config.group_id, %now,
            "max.poll.interval exceeded: leaving the group");
        self.revoke(now);
        self.send_leave(now, actions);
        self.phase = Phase::Left;
        self.events.push(MemberEvent::LeftGroup { reason: LeaveReason::PollTimeout });
    }

    fn check_session(&mut self, now: Millis) {
        let session = u64::from(self.config.session_timeout_ms);
        if matches!(self.phase, Phase::Stable) && now >= self.last_heartbeat_ok.plus_ms(session) {
            tracing::warn!(client = %self.client_id, group = %self.config.group_id, %now,
                "no heartbeat answered within the session timeout");
            self.coordinator_unknown(now, "session expired");
            self.lose(now, LostReason::SessionExpired, false);
        }
    }

    /// Eager rebalance: commit consumed positions (auto-commit on) before revoking.
    fn start_rejoin(&mut self, now: Millis) {
        let offsets = if self.config.enable_auto_commit && self.coordinator.is_some() {
            self.consumed_offsets()
        } else {
            Vec::new()
        };
        if offsets.is_empty() {
            self.revoke(now);
            self.rejoin_after(now, 0, "rebalance in progress");
            return;
        }
        let id = self.next_commit_id;
        self.next_commit_id += 1;
        let mut outbox = std::mem::take(&mut self.outbox);
        self.send_commit(now, id, offsets, &mut outbox);
        self.outbox = outbox;
        self.phase = Phase::CommittingBeforeRevoke { commit_id: id };
    }

    /// Ownership ends cleanly: `Revoked`, buffered records dropped.
    fn revoke(&mut self, now: Millis) {
        if let Some((generation, partitions)) = self.owned.take() {
            tracing::info!(client = %self.client_id, generation, ?partitions, %now, "revoked");
            self.events.push(MemberEvent::Revoked { generation, partitions });
        }
        self.consumer.assign(Vec::new());
        self.offsets_pending = false;
        self.auto_commit_in_flight = None;
    }

    /// Ownership ends because the generation is gone: `Lost`, no commit, rejoin.
    fn lose(&mut self, now: Millis, reason: LostReason, reset_member_id: bool) {
        if let Some((generation, partitions)) = self.owned.take() {
            tracing::warn!(client = %self.client_id, generation, ?partitions, ?reason, %now, "lost");
            self.events.push(MemberEvent::Lost { generation, partitions, reason });
        }
        self.consumer.assign(Vec::new());
        self.previous_assignment.clear();
        self.offsets_pending = false;
        self.auto_commit_in_flight = None;
        self.generation_id = NO_GENERATION_ID;
        if reset_member_id {
            self.member_id.clear();
        }
        self.rejoin_after(now, 0, "generation lost");
    }

    fn fatal(&mut self, now: Millis, error: ErrorCode) {
        self.lose(now, LostReason::Error(error), true);
        tracing::error!(client = %self.client_id, group = %self.config.group_id, ?error, "member stopped");
        self.events.push(match error {
            ErrorCode::FencedInstanceId => MemberEvent::Fenced,
            error => MemberEvent::Fatal { error },
        });
        self.phase = Phase::Failed;
    }

    /// Errors any group response may carry that say where the coordinator is.
    fn coordinator_error(&mut self, now: Millis, error: ErrorCode) -> bool {
        match error {
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_unknown(now, "coordinator moved");
                true
            }
            _ => false,
        }
    }

    fn on_group_response(
        &mut self,
        now: Millis,
        correlation_id: u32,
        node: NodeId,
        kind: Kind,
        body: Response,
    ) {
        if matches!(kind, Kind::Join | Kind::Sync { .. }) {
            if self.awaited != Some(correlation_id) {
                tracing::debug!(client = %self.client_id, correlation_id, "superseded join/sync answer");
                return;
            }
            self.awaited = None;
        }
        match (kind, body) {
            (Kind::FindCoordinator, Response::FindCoordinator(r)) => {
                self.on_find_coordinator(now, r)
            }
            (Kind::FindCoordinator, _) => self.on_find_coordinator(
                now,
                FindCoordinatorResponse {
                    error: ErrorCode::CoordinatorNotAvailable,
                    node_id: None,
                },
            ),
            (Kind::Join, Response::JoinGroup(r)) => self.on_join(now, node, r),
            (Kind::Join, body) => self.on_join_error(now, error_of(&body)),
            (Kind::Sync { generation }, Response::SyncGroup(r)) => self.on_sync(now, generation, r),
            (Kind::Sync { generation }, body) => {
                let r = SyncGroupResponse { error: error_of(&body), assignment: Vec::new() };
                self.on_sync(now, generation, r);
            }
            (Kind::Heartbeat { generation }, body) => {
                self.on_heartbeat(now, generation, error_of(&body))
            }
            (Kind::Leave, body) => {
                tracing::debug!(client = %self.client_id, error = ?error_of(&body), "left group")
            }
            (Kind::Commit { id, generation, offsets }, body) => {
                let result = match error_of(&body) {
                    ErrorCode::None => CommitResult::Ok,
                    error => CommitResult::Err(error),
                };
                self.on_commit_result(now, id, generation, offsets, result);
            }
            (Kind::OffsetFetch { generation }, Response::OffsetFetch(r)) => {
                self.on_offset_fetch(now, generation, r)
            }
            (Kind::OffsetFetch { generation }, body) => {
                let r = OffsetFetchResponse { error: error_of(&body), partitions: Vec::new() };
                self.on_offset_fetch(now, generation, r);
            }
        }
    }

    fn on_find_coordinator(&mut self, now: Millis, r: FindCoordinatorResponse) {
        match (r.error, r.node_id) {
            (ErrorCode::None, Some(node)) if self.coordinator.is_none() => {
                tracing::info!(client = %self.client_id, group = %self.config.group_id, %node, "coordinator found");
                self.coordinator = Some(node);
                // A stable member whose coordinator moved heartbeats the new one at once.
                self.last_heartbeat_sent = Millis(0);
            }
            (ErrorCode::None, Some(_)) => {}
            (error, _) => {
                tracing::debug!(client = %self.client_id, ?error, "find coordinator failed");
                self.find_retry_at = now.plus_ms(self.config.retry_backoff_ms);
            }
        }
    }

    fn on_join(&mut self, now: Millis, coordinator: NodeId, r: JoinGroupResponse) {
        if !matches!(self.phase, Phase::Joining) {
            return;
        }
        if r.error != ErrorCode::None {
            return self.on_join_error(now, r.error);
        }
        let Some(protocol) = r.protocol_name.as_deref().and_then(AssignorKind::from_name) else {
            tracing::error!(client = %self.client_id, protocol = ?r.protocol_name, "coordinator chose an unknown protocol");
            return self.fatal(now, ErrorCode::InconsistentGroupProtocol);
        };
        assert!(!r.member_id.is_empty(), "a successful join names the member");
        self.member_id = r.member_id;
        self.generation_id = r.generation_id;
        self.protocol = Some(protocol);
        self.leader = r.leader == self.member_id;
        tracing::info!(client = %self.client_id, member = %self.member_id, generation = self.generation_id, leader = self.leader, "joined");
        self.events.push(MemberEvent::Joined {
            generation: self.generation_id,
            member_id: self.member_id.clone(),
            leader: self.leader,
        });
        let mut outbox = std::mem::take(&mut self.outbox);
        if self.leader {
            self.phase = Phase::Assigning { members: r.members, since: now };
            self.try_assign(now, coordinator, &mut outbox);
        } else {
            self.send_sync(now, coordinator, Vec::new(), &mut outbox);
        }
        self.outbox = outbox;
    }

    /// Kafka's JoinGroupResponseHandler: what each error means for the next join.
    fn on_join_error(&mut self, now: Millis, error: ErrorCode) {
        if !matches!(self.phase, Phase::Joining) {
            return;
        }
        tracing::info!(client = %self.client_id, ?error, "join failed");
        match error {
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                self.lose(now, LostReason::Error(error), error == ErrorCode::UnknownMemberId)
            }
            ErrorCode::RebalanceInProgress => self.rejoin_after(now, 0, "join superseded"),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_error(now, error);
                self.rejoin_after(now, 0, "coordinator moved");
            }
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::InvalidRequest => {
                self.rejoin_after(now, self.config.retry_backoff_ms, "coordinator busy")
            }
            error => self.fatal(now, error),
        }
    }

    fn on_sync(&mut self, now: Millis, generation: i32, r: SyncGroupResponse) {
        if !self.is_syncing(generation) {
            return;
        }
        match r.error {
            ErrorCode::None => self.assigned(now, r.assignment),
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                self.lose(now, LostReason::Error(r.error), r.error == ErrorCode::UnknownMemberId)
            }
            ErrorCode::FencedInstanceId => self.fatal(now, r.error),
            error => {
                self.coordinator_error(now, error);
                self.rejoin_after(now, 0, "sync failed");
            }
        }
    }

    fn assigned(&mut self, now: Millis, mut partitions: Vec<TopicPartition>) {
        partitions.sort();
        partitions.dedup();
        tracing::info!(client = %self.client_id, member = %self.member_id, generation = self.generation_id, ?partitions, %now, "assigned");
        self.events.push(MemberEvent::Assigned {
            generation: self.generation_id,
            partitions: partitions.clone(),
        });
        assert!(self.owned.is_none(), "assigned while still owning {:?}", self.owned);
        self.previous_assignment = partitions.clone();
        self.offsets_pending = !partitions.is_empty();
        self.owned = Some((self.generation_id, partitions));
        self.consumer.assign(Vec::new());
        self.phase = Phase::Stable;
        self.retry_at = now;
        self.last_heartbeat_sent = now;
        self.last_heartbeat_ok = now;
        self.next_auto_commit_at = now.plus_ms(self.config.auto_commit_interval_ms);
    }

    fn on_heartbeat(&mut self, now: Millis, generation: i32, error: ErrorCode) {
        if !self.is_stable_in(generation) {
            return;
        }
        match error {
            ErrorCode::None => self.last_heartbeat_ok = now,
            ErrorCode::RebalanceInProgress => {
                self.last_heartbeat_ok = now;
                self.start_rejoin(now);
            }
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                self.lose(now, LostReason::Error(error), error == ErrorCode::UnknownMemberId)
            }
            ErrorCode::FencedInstanceId => self.fatal(now, error),
            error => {
                if !self.coordinator_error(now, error) {
                    tracing::debug!(client = %self.client_id, ?error, "heartbeat failed");
                }
            }
        }
    }

    fn on_commit_result(
        &mut self,
        now: Millis,
        id: u64,
        generation: i32,
        offsets: Vec<CommitOffset>,
        result: CommitResult,
    ) {
        tracing::debug!(client = %self.client_id, id, generation, ?result, "commit completed");
        if self.auto_commit_in_flight == Some(id) {
            self.auto_commit_in_flight = None;
        }
        self.events.push(MemberEvent::CommitCompleted { id, offsets, result: result.clone() });
        let error = match result {
            CommitResult::Err(error) => Some(error),
            CommitResult::Ok | CommitResult::Indeterminate => None,
        };
        if let Some(error) = error {
            self.coordinator_error(now, error);
        }
        let revoking =
            matches!(self.phase, Phase::CommittingBeforeRevoke { commit_id } if commit_id == id);
        let current =
            generation == self.generation_id && (revoking || matches!(self.phase, Phase::Stable));
        match error {
            Some(e @ (ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)) if current => {
                self.lose(now, LostReason::Error(e), e == ErrorCode::UnknownMemberId)
            }
            Some(ErrorCode::FencedInstanceId) if current => {
                self.fatal(now, ErrorCode::FencedInstanceId)
            }
            _ if revoking => {
                self.revoke(now);
                self.rejoin_after(now, 0, "rebalance in progress");
            }
            Some(ErrorCode::RebalanceInProgress) if current => self.start_rejoin(now),
            _ => {}
        }
    }

    fn on_offset_fetch(&mut self, now: Millis, generation: i32, r: OffsetFetchResponse) {
        if !self.is_stable_in(generation) || !self.offsets_pending {
            return;
        }
        let owned = self.assignment();
        let mut committed = BTreeMap::new();
        let mut error = r.error;
        for tp in &owned {
            match r.partitions.iter().find(|p| &p.tp == tp) {
                Some(p) if p.error == ErrorCode::None => {
                    committed.insert(tp.clone(), p.offset);
                }
                Some(p) if error == ErrorCode::None => error = p.error,
                _ if error == ErrorCode::None => error = ErrorCode::InvalidRequest,
                _ => {}
            }
        }
        if error != ErrorCode::None {
            tracing::debug!(client = %self.client_id, ?error, "offset fetch failed");
            self.coordinator_error(now, error);
            self.retry_at = now.plus_ms(self.config.retry_backoff_ms);
            return;
        }
        self.consumer.assign(owned);
        for (tp, offset) in committed {
            if let Some(offset) = offset {
                self.consumer.seek(&tp, offset);
            }
        }
        tracing::info!(client = %self.client_id, generation, "committed offsets applied");
        self.offsets_pending = false;
    }
}

/// Whether `body` answers a request of `kind` (a broker-level `Error` answers any; the
/// coordinator answers a waiting join's error with a sync-shaped response).
fn response_matches(kind: &Kind, body: &Response) -> bool {
    matches!(
        (kind, body),
        (_, Response::Error(_))
            | (Kind::FindCoordinator, Response::FindCoordinator(_))
            | (Kind::Join, Response::JoinGroup(_))
            | (Kind::Sync { .. } | Kind::Join, Response::SyncGroup(_))
            | (Kind::Heartbeat { .. }, Response::Heartbeat(_))
            | (Kind::Leave, Response::LeaveGroup(_))
            | (Kind::Commit { .. }, Response::OffsetCommit(_))
            | (Kind::OffsetFetch { .. }, Response::OffsetFetch(_))
    )
}

/// The top-level error of a group response (the first partition error of a commit).
fn error_of(body: &Response) -> ErrorCode {
    match body {
        Response::Error(error) => *error,
        Response::FindCoordinator(r) => r.error,
        Response::JoinGroup(r) => r.error,
        Response::SyncGroup(r) => r.error,
        Response::Heartbeat(r) => r.error,
        Response::LeaveGroup(r) => r.error,
        Response::OffsetCommit(OffsetCommitResponse { partitions }) => partitions
            .iter()
            .map(|(_, e)| *e)
            .find(|e| *e != ErrorCode::None)
            .unwrap_or(ErrorCode::None),
        Response::OffsetFetch(r) => r.error,
        _ => ErrorCode::InvalidRequest,
    }
}

#[cfg(test)]
#[path = "group_member_tests.rs"]
mod tests;
