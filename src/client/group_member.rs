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
//! While stable the member heartbeats every heartbeat_interval_ms; the leader rejoins
//! when metadata shows a subscribed topic with another partition count than it assigned
//! (metadata is only as fresh as the shell's refreshes). As in Kafka's consumer, a
//! rebalance happens in the application's poll (`take_records`): RebalanceInProgress
//! revokes every owned partition there (after a synchronous auto-commit of the consumed
//! positions, as Kafka's onJoinPrepare does) and rejoins, so a batch handed out is
//! processed and committed in its generation. UnknownMemberId, IllegalGeneration or
//! FencedInstanceId make the partitions `Lost` (no commit: another member may own them
//! already) and the member rejoins on the next `take_records`. No heartbeat answered
//! within the session timeout only sends the member looking for the coordinator again
//! (Kafka's heartbeat thread): until the coordinator says the member is gone, the
//! application's commits carry the old generation and the coordinator judges them.
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
//! member routes it. This file owns the public types and API; the protocol steps (requests
//! and the transitions their answers cause) are in group_member_flow.rs. Neither owns
//! fetching (consumer.rs), the metadata cache (metadata.rs), the assignors nor the
//! coordinator (crate::group).

use super::consumer::{ConsumedRecord, Consumer, ConsumerAction, ConsumerConfig, ConsumerEvent};
use super::ConfigError;
use crate::group::AssignorKind;
use crate::protocol::{ErrorCode, JoinGroupMember, ResponseFrame, NO_GENERATION_ID};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;

#[path = "group_member_flow.rs"]
mod flow;
use flow::response_matches;

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
    /// Timeout of group requests; JoinGroup and SyncGroup, which may wait a rebalance out
    /// at the coordinator, get max(request_timeout_ms, max_poll_interval_ms + 5 s), as in
    /// Kafka's client.
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
    /// The leader's partition counts behind its last assignment (0: unknown then); a
    /// change seen in metadata makes it rebalance, as Kafka's leader does.
    assigned_counts: BTreeMap<String, u32>,
    /// Stable, but the committed offsets of `owned` are not known yet.
    offsets_pending: bool,
    last_heartbeat_sent: Millis,
    last_heartbeat_ok: Millis,
    last_take: Option<Millis>,
    /// The coordinator asked for a rebalance (or the leader saw partition counts change):
    /// the member revokes and rejoins in the application's next `take_records`, as
    /// Kafka's consumer does in poll(), so a batch handed out is processed and committed
    /// in the generation it was taken in.
    pub(super) rejoin_needed: bool,
    /// The generation was lost: the next JoinGroup waits for the application's next
    /// `take_records`.
    pub(super) join_after_poll: bool,
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
            assigned_counts: BTreeMap::new(),
            offsets_pending: false,
            last_heartbeat_sent: Millis(0),
            last_heartbeat_ok: Millis(0),
            last_take: None,
            rejoin_needed: false,
            join_after_poll: false,
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

    /// What "commit after process" commits: every position, with the leader epoch of the
    /// record before it (KIP-320).
    pub fn consumed_offsets(&self) -> Vec<CommitOffset> {
        self.positions()
            .into_iter()
            .map(|(tp, offset)| {
                let epoch = self.consumer.position_epoch(&tp);
                (tp, offset, epoch)
            })
            .collect()
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
        self.join_after_poll = false;
        if matches!(self.phase, Phase::Left) {
            tracing::info!(client = %self.client_id, group = %self.config.group_id, "rejoining after poll timeout");
            self.phase = Phase::Unjoined;
            self.retry_at = now;
        }
        if matches!(self.phase, Phase::Stable) && self.rejoin_needed {
            self.rejoin_needed = false;
            self.start_rejoin(now);
        }
        if !matches!(self.phase, Phase::Stable) || self.offsets_pending {
            return Vec::new();
        }
        let mut outbox = std::mem::take(&mut self.outbox);
        self.maybe_auto_commit(now, &mut outbox);
        self.outbox = outbox;
        self.consumer.take_records(max)
    }

    pub fn take_events(&mut self) -> Vec<MemberEvent> {
        self.drain_consumer_events();
        std::mem::take(&mut self.events)
    }

    /// Commits `offsets` with the current generation; the outcome comes as a
    /// `CommitCompleted` event with the returned id. Without a stable generation or a
    /// coordinator the commit is refused at once (an `Err` result, nothing sent). The
    /// request goes out with the next `poll`, which the shell calls after every input.
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

#[cfg(test)]
#[path = "group_member_tests.rs"]
mod tests;
