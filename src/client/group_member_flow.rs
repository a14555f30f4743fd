//! The group member's protocol steps (split from group_member.rs, which owns the public
//! types and API): the requests it sends, and the transitions the answers cause.

use super::{
    CommitOffset, CommitResult, GroupMember, InFlight, Kind, LeaveReason, LostReason, MemberEvent,
    Phase, CONSUMER_PROTOCOL_TYPE, GROUP_CORRELATION_BASE, JOIN_TIMEOUT_LAPSE_MS,
};
use crate::client::consumer::ConsumerAction;
use crate::client::CloseReason;
use crate::group::{assign, AssignorKind, MemberSubscription};
use crate::protocol::{
    ErrorCode, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    JoinGroupProtocol, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, Request, RequestFrame, Response, SyncGroupAssignment, SyncGroupRequest,
    SyncGroupResponse, NO_GENERATION_ID,
};
use crate::types::{Millis, NodeId, TopicPartition};
use std::collections::BTreeMap;

// ---- requests ----
impl GroupMember {
    pub(super) fn drain_consumer_events(&mut self) {
        let events = self.consumer.take_events();
        self.events.extend(events.into_iter().map(MemberEvent::Consumer));
    }

    /// How long a leader waits for unknown partition counts before assigning with what it
    /// knows (within the session, which the coordinator does not renew meanwhile).
    pub(super) fn assign_wait_ms(&self) -> u64 {
        self.config.request_timeout_ms.min(u64::from(self.config.session_timeout_ms) / 2)
    }

    pub(super) fn join_timeout_ms(&self) -> u64 {
        let rebalance = u64::from(self.config.max_poll_interval_ms) + JOIN_TIMEOUT_LAPSE_MS;
        self.config.request_timeout_ms.max(rebalance)
    }

    pub(super) fn write(
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

    pub(super) fn has_in_flight(&self, pred: impl Fn(&Kind) -> bool) -> bool {
        self.in_flight.values().any(|r| pred(&r.kind))
    }

    pub(super) fn expire_requests(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
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
    pub(super) fn fail_requests_on(&mut self, now: Millis, node: NodeId) {
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
    pub(super) fn on_request_lost(&mut self, now: Millis, correlation_id: u32, kind: Kind) {
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

    pub(super) fn coordinator_unknown(&mut self, now: Millis, why: &'static str) {
        if let Some(node) = self.coordinator.take() {
            tracing::info!(client = %self.client_id, group = %self.config.group_id, %node, why, "coordinator unknown");
            self.find_retry_at = now.plus_ms(self.config.retry_backoff_ms);
        }
    }

    pub(super) fn ensure_coordinator(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
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

    pub(super) fn drive_group(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        actions: &mut Vec<ConsumerAction>,
    ) {
        match &self.phase {
            Phase::Unjoined if now >= self.retry_at && !self.join_after_poll => {
                self.send_join(now, coordinator, actions)
            }
            Phase::Assigning { .. } => self.try_assign(now, coordinator, actions),
            Phase::Stable => {
                if self.leader && !self.rejoin_needed && self.partition_counts_changed() {
                    tracing::info!(client = %self.client_id, "partition counts changed: rebalancing");
                    self.rejoin_needed = true;
                }
                self.maybe_heartbeat(now, coordinator, actions);
                self.maybe_fetch_offsets(now, coordinator, actions);
            }
            _ => {}
        }
    }

    pub(super) fn send_join(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        actions: &mut Vec<ConsumerAction>,
    ) {
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
    pub(super) fn try_assign(
        &mut self,
        now: Millis,
        coordinator: NodeId,
        actions: &mut Vec<ConsumerAction>,
    ) {
        let Phase::Assigning { members, since } = &self.phase else { return };
        let subscriptions: Vec<MemberSubscription> = members.iter().map(Into::into).collect();
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
        self.assigned_counts = counts;
        self.assigned_counts.extend(missing.into_iter().map(|topic| (topic, 0)));
        tracing::info!(client = %self.client_id, generation = self.generation_id, protocol = kind.name(), ?assignment, "leader assigned");
        let assignments = assignment
            .into_iter()
            .map(|(member_id, partitions)| SyncGroupAssignment { member_id, partitions })
            .collect();
        self.send_sync(now, coordinator, assignments, actions);
    }

    /// A topic the leader assigned now has a different (known) partition count.
    pub(super) fn partition_counts_changed(&self) -> bool {
        let metadata = self.consumer.metadata();
        self.assigned_counts
            .iter()
            .any(|(topic, &n)| metadata.partition_count(topic).is_some_and(|now| now != n))
    }

    pub(super) fn send_sync(
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

    pub(super) fn maybe_heartbeat(
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

    pub(super) fn maybe_fetch_offsets(
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

    /// Kafka's auto-commit runs in the application's poll, before it hands out new
    /// records: it commits what earlier polls returned, which a synchronous application
    /// has processed (at-least-once).
    pub(super) fn maybe_auto_commit(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        if !self.config.enable_auto_commit
            || self.coordinator.is_none()
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

    pub(super) fn send_commit(
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
    pub(super) fn send_leave(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
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
    pub(super) fn is_syncing(&self, generation: i32) -> bool {
        matches!(self.phase, Phase::Syncing) && generation == self.generation_id
    }

    pub(super) fn is_stable_in(&self, generation: i32) -> bool {
        matches!(self.phase, Phase::Stable) && generation == self.generation_id
    }

    pub(super) fn rejoin_after(&mut self, now: Millis, backoff_ms: u64, why: &'static str) {
        assert!(self.owned.is_none(), "{} rejoins still owning {:?}", self.client_id, self.owned);
        tracing::info!(client = %self.client_id, group = %self.config.group_id, why, "rejoin");
        self.phase = Phase::Unjoined;
        self.retry_at = now.plus_ms(backoff_ms);
    }

    pub(super) fn check_poll_interval(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
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

    pub(super) fn check_session(&mut self, now: Millis) {
        let session = u64::from(self.config.session_timeout_ms);
        if matches!(self.phase, Phase::Stable) && now >= self.last_heartbeat_ok.plus_ms(session) {
            // As Kafka's heartbeat thread: the coordinator is presumed gone and looked up
            // again with a fresh session timer; the partitions are lost only when the
            // coordinator says the member is gone (a member that merely could not reach
            // it keeps them). Until then the application's commits still carry this
            // generation, and the coordinator's generation check is what refuses them.
            tracing::warn!(client = %self.client_id, group = %self.config.group_id, %now,
                "no heartbeat answered within the session timeout");
            self.coordinator_unknown(now, "session expired");
            self.last_heartbeat_ok = now;
        }
    }

    /// Eager rebalance: commit consumed positions (auto-commit on) before revoking.
    pub(super) fn start_rejoin(&mut self, now: Millis) {
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
    pub(super) fn revoke(&mut self, now: Millis) {
        if let Some((generation, partitions)) = self.owned.take() {
            tracing::info!(client = %self.client_id, generation, ?partitions, %now, "revoked");
            self.events.push(MemberEvent::Revoked { generation, partitions });
        }
        self.consumer.assign(Vec::new());
        self.offsets_pending = false;
        self.auto_commit_in_flight = None;
    }

    /// Ownership ends because the generation is gone: `Lost`, no commit, rejoin.
    pub(super) fn lose(&mut self, now: Millis, reason: LostReason, reset_member_id: bool) {
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
        // Kafka rejoins from the application's poll, so a batch the application holds is
        // committed (and refused) before the member takes a new generation.
        self.join_after_poll = true;
    }

    pub(super) fn fatal(&mut self, now: Millis, error: ErrorCode) {
        self.lose(now, LostReason::Error(error), true);
        tracing::error!(client = %self.client_id, group = %self.config.group_id, ?error, "member stopped");
        self.events.push(match error {
            ErrorCode::FencedInstanceId => MemberEvent::Fenced,
            error => MemberEvent::Fatal { error },
        });
        self.phase = Phase::Failed;
    }

    /// Errors any group response may carry that say where the coordinator is.
    pub(super) fn coordinator_error(&mut self, now: Millis, error: ErrorCode) -> bool {
        match error {
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_unknown(now, "coordinator moved");
                true
            }
            _ => false,
        }
    }

    pub(super) fn on_group_response(
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

    pub(super) fn on_find_coordinator(&mut self, now: Millis, r: FindCoordinatorResponse) {
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

    pub(super) fn on_join(&mut self, now: Millis, coordinator: NodeId, r: JoinGroupResponse) {
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
        if r.member_id.is_empty() {
            tracing::warn!(client = %self.client_id, "successful join without a member id ignored");
            return self.rejoin_after(now, self.config.retry_backoff_ms, "join without member id");
        }
        self.member_id = r.member_id;
        self.generation_id = r.generation_id;
        self.protocol = Some(protocol);
        self.leader = r.leader == self.member_id;
        self.assigned_counts.clear();
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
    pub(super) fn on_join_error(&mut self, now: Millis, error: ErrorCode) {
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

    pub(super) fn on_sync(&mut self, now: Millis, generation: i32, r: SyncGroupResponse) {
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

    pub(super) fn assigned(&mut self, now: Millis, mut partitions: Vec<TopicPartition>) {
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
        self.rejoin_needed = false;
        self.retry_at = now;
        self.last_heartbeat_sent = now;
        self.last_heartbeat_ok = now;
        self.next_auto_commit_at = now.plus_ms(self.config.auto_commit_interval_ms);
    }

    pub(super) fn on_heartbeat(&mut self, now: Millis, generation: i32, error: ErrorCode) {
        if !self.is_stable_in(generation) {
            return;
        }
        match error {
            ErrorCode::None => self.last_heartbeat_ok = now,
            ErrorCode::RebalanceInProgress => {
                self.last_heartbeat_ok = now;
                self.rejoin_needed = true;
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

    pub(super) fn on_commit_result(
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
            Some(ErrorCode::RebalanceInProgress) if current => self.rejoin_needed = true,
            _ => {}
        }
    }

    pub(super) fn on_offset_fetch(&mut self, now: Millis, generation: i32, r: OffsetFetchResponse) {
        if !self.is_stable_in(generation) || !self.offsets_pending {
            return;
        }
        let owned = self.assignment();
        let mut committed = BTreeMap::new();
        let mut error = r.error;
        for tp in &owned {
            match r.partitions.iter().find(|p| &p.tp == tp) {
                Some(p) if p.error == ErrorCode::None => {
                    committed.insert(tp.clone(), p.offset.map(|o| (o, p.leader_epoch)));
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
            if let Some((offset, epoch)) = offset {
                self.consumer.seek_with_epoch(&tp, offset, epoch);
            }
        }
        tracing::info!(client = %self.client_id, generation, "committed offsets applied");
        self.offsets_pending = false;
    }
}

/// Whether `body` answers a request of `kind` (a broker-level `Error` answers any; the
/// coordinator answers a waiting join's error with a sync-shaped response).
pub(super) fn response_matches(kind: &Kind, body: &Response) -> bool {
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
pub(super) fn error_of(body: &Response) -> ErrorCode {
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
