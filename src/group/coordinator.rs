//! The group coordinator of one offsets-topic partition: routes JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit and OffsetFetch to the groups it owns, checks
//! generations and member ids, and turns commits into records for the driver to append.
//!
//! A commit is acknowledged only after the driver reports its records durable
//! (`on_offsets_appended`), so a coordinator that fails over never loses an acknowledged
//! commit: the next leader of the partition `load`s the same records. Replies that wait
//! (a join until the rebalance completes, a sync until the leader's assignment arrives, a
//! commit until it is durable) come out later through `drain_outputs`.
//!
//! This file does not own a single group's transitions (`group.rs`) nor the record bytes
//! (`records.rs`).

use super::membership::{Group, GroupState, Out, StaticJoin};
use super::partitioner::partition_for_group;
use super::records::{GroupRecord, GroupRecordError};
use crate::protocol::{
    ErrorCode, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, NO_GENERATION_ID,
};
use crate::types::{Millis, Offset, TopicPartition};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Identifies a request whose reply may come later; opaque to the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReplyTo(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRequest {
    Join(JoinGroupRequest),
    Sync(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    Leave(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupResponse {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
}

impl GroupResponse {
    /// An error answer to a waiting join or sync; the client tells them apart by the
    /// request it sent, so a sync-shaped error serves both.
    pub(crate) fn error_for_join_or_sync(error: ErrorCode) -> GroupResponse {
        GroupResponse::Sync(SyncGroupResponse { error, assignment: Vec::new() })
    }

    /// The top-level error, or the first partition error of a commit or fetch.
    pub fn error(&self) -> ErrorCode {
        match self {
            GroupResponse::Join(r) => r.error,
            GroupResponse::Sync(r) => r.error,
            GroupResponse::Heartbeat(r) => r.error,
            GroupResponse::Leave(r) => r.error,
            GroupResponse::OffsetCommit(r) => r
                .partitions
                .iter()
                .map(|(_, e)| *e)
                .find(|e| *e != ErrorCode::None)
                .unwrap_or(ErrorCode::None),
            GroupResponse::OffsetFetch(r) => r.error,
        }
    }
}

/// What the simulator's checker sees (see `invariants.rs`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum GroupEvent {
    GenerationStarted {
        group_id: String,
        generation_id: i32,
        leader: String,
        members: Vec<String>,
    },
    AssignmentSynced {
        group_id: String,
        generation_id: i32,
        assignment: BTreeMap<String, Vec<TopicPartition>>,
    },
    MemberRemoved {
        group_id: String,
        member_id: String,
        reason: &'static str,
    },
    /// A static member restarted: `new_member_id` takes `old_member_id`'s place and
    /// assignment in the current generation (the old id is fenced).
    StaticMemberReplaced {
        group_id: String,
        generation_id: i32,
        old_member_id: String,
        new_member_id: String,
    },
    /// A coordinator that took over the offsets partition rebuilt the group from its log:
    /// the generation and member ids it knows from now on (an older generation than the
    /// members hold when the last one was never stored).
    GroupLoaded {
        group_id: String,
        generation_id: i32,
        members: Vec<String>,
    },
    /// A commit passed the generation check (or the check is off) and went to the log.
    CommitAccepted {
        group_id: String,
        member_id: String,
        commit_generation_id: i32,
        group_generation_id: i32,
        offsets: Vec<(TopicPartition, Offset)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorOutput {
    Reply {
        reply_to: ReplyTo,
        response: GroupResponse,
    },
    /// Append these records to the offsets partition; when `token` is set, report with
    /// `on_offsets_appended(token)` once they are replicated (acks=all), or
    /// `on_offsets_append_failed`.
    AppendRecords {
        token: Option<u64>,
        records: Vec<GroupRecord>,
    },
    Event(GroupEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// The offsets partition this coordinator leads, and how many there are
    /// (offsets.topic.num.partitions; Kafka's default 50).
    pub offsets_partition: u32,
    pub num_offsets_partitions: u32,
    /// The offsets partition's leader epoch: prefixes member ids so a new coordinator
    /// never hands out an id an earlier one did.
    pub coordinator_epoch: u32,
    /// Reject commits from stale generations and unknown members. Off only to show the
    /// "zombie commit" anomaly (CORRECTNESS.md).
    pub generation_check: bool,
    /// group.initial.rebalance.delay.ms (Kafka: 3000).
    pub initial_rebalance_delay_ms: u64,
    /// group.min.session.timeout.ms / group.max.session.timeout.ms (Kafka: 6000 / 1800000).
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    /// group.max.size (Kafka: unbounded; bounded here so every queue has a limit).
    pub group_max_size: usize,
    /// Kafka caps ids at 249 bytes (topic-name limit reused for group ids here).
    pub id_bytes_max: usize,
    /// In-flight commits awaiting durability before new ones are refused.
    pub pending_commits_max: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_partition: 0,
            num_offsets_partitions: 1,
            coordinator_epoch: 0,
            generation_check: true,
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            group_max_size: 1_000,
            id_bytes_max: 249,
            pending_commits_max: 10_000,
        }
    }
}

struct PendingCommit {
    reply_to: ReplyTo,
    group_id: String,
    records: Vec<GroupRecord>,
}

/// What waits for an append to the offsets partition.
enum Pending {
    Commit(PendingCommit),
    /// A static member's replacement, answered once the group is stored.
    StaticJoin {
        group_id: String,
        join: StaticJoin,
    },
    /// A generation's assignment, answered once stored.
    Sync {
        group_id: String,
        generation: i32,
    },
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: BTreeMap<String, Group>,
    pending: BTreeMap<u64, Pending>,
    /// The latest time a request or tick brought (an append's outcome comes without one).
    now: Millis,
    next_token: u64,
    next_member_seq: u64,
    active: bool,
    outputs: Out,
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> GroupCoordinator {
        assert!(
            config.offsets_partition < config.num_offsets_partitions,
            "offsets partition {} of {}",
            config.offsets_partition,
            config.num_offsets_partitions
        );
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            pending: BTreeMap::new(),
            now: Millis(0),
            next_token: 0,
            next_member_seq: 0,
            active: true,
            outputs: Vec::new(),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Replies, records to append and checker events produced so far.
    pub fn drain_outputs(&mut self) -> Vec<CoordinatorOutput> {
        std::mem::take(&mut self.outputs)
    }

    pub fn handle(&mut self, now: Millis, reply_to: ReplyTo, request: GroupRequest) {
        self.now = self.now.max(now);
        match request {
            GroupRequest::Join(r) => self.join(now, reply_to, r),
            GroupRequest::Sync(r) => self.sync(reply_to, r),
            GroupRequest::Heartbeat(r) => {
                let error = self.heartbeat(now, &r);
                self.reply(reply_to, GroupResponse::Heartbeat(HeartbeatResponse { error }));
            }
            GroupRequest::Leave(r) => {
                let error = self.leave(now, &r);
                self.reply(reply_to, GroupResponse::Leave(LeaveGroupResponse { error }));
            }
            GroupRequest::OffsetCommit(r) => self.commit(now, reply_to, r),
            GroupRequest::OffsetFetch(r) => {
                let response = self.fetch(&r);
                self.reply(reply_to, GroupResponse::OffsetFetch(response));
            }
        }
    }

    /// Session timeouts and rebalance windows.
    pub fn tick(&mut self, now: Millis) {
        self.now = self.now.max(now);
        if !self.active {
            return;
        }
        for group in self.groups.values_mut() {
            group.tick(now, &mut self.outputs);
        }
    }

    /// The records behind `token` are durable: apply and acknowledge the commit, or answer
    /// the static member whose replacement they store.
    pub fn on_offsets_appended(&mut self, token: u64) {
        let p = match self.pending.remove(&token) {
            Some(Pending::Commit(p)) => p,
            Some(Pending::StaticJoin { join, .. }) => {
                return self.reply(join.reply_to, GroupResponse::Join(join.response));
            }
            Some(Pending::Sync { group_id, generation }) => {
                if let Some(group) = self.groups.get_mut(&group_id) {
                    group.complete_sync(generation, &mut self.outputs);
                }
                return;
            }
            None => return,
        };
        let group = self.groups.get_mut(&p.group_id).expect("a pending commit's group exists");
        let mut partitions = Vec::new();
        tracing::debug!(token, group = %p.group_id, records = ?p.records, "commit applied");
        for r in p.records {
            if let GroupRecord::OffsetCommit { tp, offset, leader_epoch, .. } = r {
                group.committed.insert(tp.clone(), (offset, leader_epoch));
                partitions.push((tp, ErrorCode::None));
            }
        }
        self.reply(p.reply_to, GroupResponse::OffsetCommit(OffsetCommitResponse { partitions }));
    }

    /// The append failed (lost leadership, timeout): the commit is not acknowledged.
    pub fn on_offsets_append_failed(&mut self, token: u64, error: ErrorCode) {
        assert_ne!(error, ErrorCode::None, "append of token {token} failed without an error");
        let p = match self.pending.remove(&token) {
            Some(Pending::Commit(p)) => p,
            Some(Pending::StaticJoin { group_id, join }) => {
                if let Some(group) = self.groups.get_mut(&group_id) {
                    group.revert_static_join(&join, &mut self.outputs);
                }
                tracing::info!(group = %group_id, new = %join.new_id, old = %join.old_id, ?error, "static member replacement not stored: reverted");
                let response = GroupResponse::error_for_join_or_sync(error);
                return self.reply(join.reply_to, response);
            }
            Some(Pending::Sync { group_id, generation }) => {
                let now = self.now;
                if let Some(group) = self.groups.get_mut(&group_id) {
                    group.fail_sync(now, generation, error, &mut self.outputs);
                }
                return;
            }
            None => return,
        };
        let partitions = p
            .records
            .iter()
            .filter_map(|r| match r {
                GroupRecord::OffsetCommit { tp, .. } => Some((tp.clone(), error)),
                GroupRecord::GroupMetadata { .. } => None,
            })
            .collect();
        self.reply(p.reply_to, GroupResponse::OffsetCommit(OffsetCommitResponse { partitions }));
    }

    /// This broker no longer leads the offsets partition: answer everything waiting with
    /// NotCoordinator and forget the groups (the new leader loads them).
    pub fn resign(&mut self) {
        self.active = false;
        let tokens: Vec<u64> = self.pending.keys().copied().collect();
        for token in tokens {
            self.on_offsets_append_failed(token, ErrorCode::NotCoordinator);
        }
        for group in self.groups.values_mut() {
            for m in group.members.values_mut() {
                for reply_to in [m.join_reply.take(), m.sync_reply.take()].into_iter().flatten() {
                    self.outputs.push(CoordinatorOutput::Reply {
                        reply_to,
                        response: GroupResponse::error_for_join_or_sync(ErrorCode::NotCoordinator),
                    });
                }
            }
        }
        self.groups.clear();
    }

    /// Rebuild groups from the offsets partition, in log order (a later record with the same
    /// key wins, as after compaction). Records of other partitions' groups are skipped.
    pub fn load(&mut self, now: Millis, records: impl IntoIterator<Item = GroupRecord>) -> usize {
        let mut applied = 0;
        for record in records {
            if !self.owns(record.group_id()) {
                continue;
            }
            let delay = self.config.initial_rebalance_delay_ms;
            let group = self
                .groups
                .entry(record.group_id().to_string())
                .or_insert_with(|| Group::new(record.group_id(), delay));
            match record {
                GroupRecord::OffsetCommit { tp, offset, leader_epoch, .. } => {
                    group.committed.insert(tp, (offset, leader_epoch));
                }
                GroupRecord::GroupMetadata { generation_id, protocol, leader, members, .. } => {
                    group.restore(now, generation_id, protocol, leader, members);
                }
            }
            applied += 1;
        }
        for group in self.groups.values().filter(|g| g.generation_id != NO_GENERATION_ID) {
            self.outputs.push(CoordinatorOutput::Event(GroupEvent::GroupLoaded {
                group_id: group.group_id.clone(),
                generation_id: group.generation_id,
                members: group.members.keys().cloned().collect(),
            }));
        }
        tracing::info!(
            partition = self.config.offsets_partition,
            applied,
            groups = self.groups.len(),
            "offsets loaded"
        );
        applied
    }

    /// `load` from encoded records; a corrupt record stops the load (nothing is applied).
    pub fn load_bytes(
        &mut self,
        now: Millis,
        records: &[Bytes],
    ) -> Result<usize, GroupRecordError> {
        let decoded =
            records.iter().map(|b| GroupRecord::decode(b)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.load(now, decoded))
    }

    /// The earliest time `tick` has work to do (a session or a rebalance window ending),
    /// so a driver can sleep until then.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.groups
            .values()
            .flat_map(|g| {
                let sessions = g
                    .members
                    .values()
                    .filter(|m| m.join_reply.is_none() && m.sync_reply.is_none())
                    .map(|m| m.last_heartbeat.plus_ms(u64::from(m.session_timeout_ms)));
                sessions.chain(g.rebalance_deadline)
            })
            .min()
    }

    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    pub fn generation_id(&self, group_id: &str) -> Option<i32> {
        self.groups.get(group_id).map(|g| g.generation_id)
    }

    pub fn member_ids(&self, group_id: &str) -> Vec<String> {
        self.groups.get(group_id).map(|g| g.members.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn committed(&self, group_id: &str, tp: &TopicPartition) -> Option<Offset> {
        self.groups.get(group_id).and_then(|g| g.committed.get(tp)).map(|(o, _)| *o)
    }

    // ---- requests ----

    fn join(&mut self, now: Millis, reply_to: ReplyTo, req: JoinGroupRequest) {
        match self.try_join(now, reply_to, &req) {
            Ok(()) => {}
            Err(error) => {
                let response = JoinGroupResponse {
                    error,
                    generation_id: NO_GENERATION_ID,
                    protocol_name: None,
                    leader: String::new(),
                    member_id: req.member_id.clone(),
                    members: Vec::new(),
                };
                self.reply(reply_to, GroupResponse::Join(response));
            }
        }
    }

    fn try_join(
        &mut self,
        now: Millis,
        reply_to: ReplyTo,
        req: &JoinGroupRequest,
    ) -> Result<(), ErrorCode> {
        self.check_group_id(&req.group_id)?;
        self.check_id(&req.member_id)?;
        if let Some(instance) = &req.group_instance_id {
            if instance.is_empty() {
                return Err(ErrorCode::InvalidRequest);
            }
            self.check_id(instance)?;
        }
        let session = req.session_timeout_ms;
        if session < self.config.min_session_timeout_ms
            || session > self.config.max_session_timeout_ms
        {
            return Err(ErrorCode::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        let delay = self.config.initial_rebalance_delay_ms;
        let max_size = self.config.group_max_size;
        let new_id = self.new_member_id(req.group_instance_id.as_deref());
        let seq = self.next_member_seq;
        let out = &mut self.outputs;
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id, delay));
        if !group.supports(&req.protocols) {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            let stored = group.join_new(now, reply_to, req, new_id, seq, max_size, out)?;
            self.next_member_seq += 1;
            if let Some(join) = stored {
                let token = self.next_token;
                self.next_token += 1;
                let records = vec![group.metadata_record()];
                out.push(CoordinatorOutput::AppendRecords { token: Some(token), records });
                let group_id = req.group_id.clone();
                self.pending.insert(token, Pending::StaticJoin { group_id, join });
                return Ok(());
            }
        } else {
            group.join_known(now, reply_to, req, out)?;
        }
        group.maybe_complete_join(now, out);
        Ok(())
    }

    fn sync(&mut self, reply_to: ReplyTo, req: SyncGroupRequest) {
        let result = self.try_sync(reply_to, &req);
        if let Err(error) = result {
            self.reply(
                reply_to,
                GroupResponse::Sync(SyncGroupResponse { error, assignment: Vec::new() }),
            );
        }
    }

    fn try_sync(&mut self, reply_to: ReplyTo, req: &SyncGroupRequest) -> Result<(), ErrorCode> {
        self.check_group_id(&req.group_id)?;
        let out = &mut self.outputs;
        let group = self.groups.get_mut(&req.group_id).ok_or(ErrorCode::UnknownMemberId)?;
        check_member(group, &req.member_id, req.group_instance_id.as_ref())?;
        if req.generation_id != group.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
            GroupState::Stable => {
                let assignment = group.members[&req.member_id].assignment.clone();
                out.push(CoordinatorOutput::Reply {
                    reply_to,
                    response: GroupResponse::Sync(SyncGroupResponse {
                        error: ErrorCode::None,
                        assignment,
                    }),
                });
                Ok(())
            }
            GroupState::CompletingRebalance => {
                let m = group.members.get_mut(&req.member_id).expect("checked");
                if let Some(previous) = m.sync_reply.replace(reply_to) {
                    out.push(CoordinatorOutput::Reply {
                        reply_to: previous,
                        response: GroupResponse::error_for_join_or_sync(
                            ErrorCode::RebalanceInProgress,
                        ),
                    });
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) && !group.storing {
                    let assignment = req
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.clone(), a.partitions.clone()))
                        .collect();
                    let records = vec![group.stage_assignment(assignment)];
                    let token = self.next_token;
                    self.next_token += 1;
                    out.push(CoordinatorOutput::AppendRecords { token: Some(token), records });
                    let generation = group.generation_id;
                    let pending = Pending::Sync { group_id: req.group_id.clone(), generation };
                    self.pending.insert(token, pending);
                }
                Ok(())
            }
        }
    }

    fn heartbeat(&mut self, now: Millis, req: &HeartbeatRequest) -> ErrorCode {
        let result = (|| {
            self.check_group_id(&req.group_id)?;
            let group = self.groups.get_mut(&req.group_id).ok_or(ErrorCode::UnknownMemberId)?;
            check_member(group, &req.member_id, req.group_instance_id.as_ref())?;
            let state = group.state;
            let generation_id = group.generation_id;
            group.members.get_mut(&req.member_id).expect("checked").last_heartbeat = now;
            match state {
                GroupState::PreparingRebalance => Err(ErrorCode::RebalanceInProgress),
                _ if req.generation_id != generation_id => Err(ErrorCode::IllegalGeneration),
                GroupState::Empty | GroupState::Dead => Err(ErrorCode::UnknownMemberId),
                GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            }
        })();
        result.err().unwrap_or(ErrorCode::None)
    }

    fn leave(&mut self, now: Millis, req: &LeaveGroupRequest) -> ErrorCode {
        if let Err(e) = self.check_group_id(&req.group_id) {
            return e;
        }
        let out = &mut self.outputs;
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if let Err(e) = check_member(group, &req.member_id, req.group_instance_id.as_ref()) {
            return e;
        }
        group.remove_member(now, &req.member_id, "left the group", out);
        ErrorCode::None
    }

    fn commit(&mut self, now: Millis, reply_to: ReplyTo, req: OffsetCommitRequest) {
        match self.try_commit(now, reply_to, &req) {
            Ok(()) => {}
            Err(error) => {
                let partitions = req.offsets.iter().map(|o| (o.tp.clone(), error)).collect();
                self.reply(
                    reply_to,
                    GroupResponse::OffsetCommit(OffsetCommitResponse { partitions }),
                );
            }
        }
    }

    fn try_commit(
        &mut self,
        now: Millis,
        reply_to: ReplyTo,
        req: &OffsetCommitRequest,
    ) -> Result<(), ErrorCode> {
        self.check_group_id(&req.group_id)?;
        self.check_id(&req.member_id)?;
        if req.offsets.iter().any(|o| o.tp.topic.is_empty()) {
            return Err(ErrorCode::UnknownTopicOrPartition);
        }
        if self.pending.len() >= self.config.pending_commits_max {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        let delay = self.config.initial_rebalance_delay_ms;
        let check = self.config.generation_check;
        let group = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id, delay));
        if check {
            let standalone = req.generation_id < 0 && req.member_id.is_empty();
            if standalone {
                if !group.members.is_empty() {
                    return Err(ErrorCode::UnknownMemberId);
                }
            } else {
                check_member(group, &req.member_id, req.group_instance_id.as_ref())?;
                if req.generation_id != group.generation_id {
                    return Err(ErrorCode::IllegalGeneration);
                }
                if group.state == GroupState::CompletingRebalance {
                    return Err(ErrorCode::RebalanceInProgress);
                }
                group.members.get_mut(&req.member_id).expect("checked").last_heartbeat = now;
            }
        }
        let event = GroupEvent::CommitAccepted {
            group_id: req.group_id.clone(),
            member_id: req.member_id.clone(),
            commit_generation_id: req.generation_id,
            group_generation_id: group.generation_id,
            offsets: req.offsets.iter().map(|o| (o.tp.clone(), o.offset)).collect(),
        };
        self.outputs.push(CoordinatorOutput::Event(event));
        let records: Vec<GroupRecord> = req
            .offsets
            .iter()
            .map(|o| GroupRecord::OffsetCommit {
                group_id: req.group_id.clone(),
                tp: o.tp.clone(),
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                commit_timestamp_ms: now.0,
            })
            .collect();
        let token = self.next_token;
        self.next_token += 1;
        tracing::debug!(token, group = %req.group_id, member = %req.member_id, generation = req.generation_id, offsets = ?req.offsets, "commit accepted");
        self.outputs.push(CoordinatorOutput::AppendRecords {
            token: Some(token),
            records: records.clone(),
        });
        let commit = PendingCommit { reply_to, group_id: req.group_id.clone(), records };
        self.pending.insert(token, Pending::Commit(commit));
        Ok(())
    }

    fn fetch(&self, req: &OffsetFetchRequest) -> OffsetFetchResponse {
        if let Err(error) = self.check_group_id(&req.group_id) {
            return OffsetFetchResponse { error, partitions: Vec::new() };
        }
        let committed = self.groups.get(&req.group_id).map(|g| &g.committed);
        let entry = |tp: &TopicPartition| {
            let c = committed.and_then(|c| c.get(tp));
            OffsetFetchPartition {
                tp: tp.clone(),
                offset: c.map(|(o, _)| *o),
                leader_epoch: c.and_then(|(_, e)| *e),
                error: ErrorCode::None,
            }
        };
        let partitions = match &req.partitions {
            Some(tps) => tps.iter().map(entry).collect(),
            None => committed.map(|c| c.keys().map(entry).collect()).unwrap_or_default(),
        };
        OffsetFetchResponse { error: ErrorCode::None, partitions }
    }

    // ---- helpers ----

    fn reply(&mut self, reply_to: ReplyTo, response: GroupResponse) {
        self.outputs.push(CoordinatorOutput::Reply { reply_to, response });
    }

    fn owns(&self, group_id: &str) -> bool {
        partition_for_group(group_id, self.config.num_offsets_partitions)
            == self.config.offsets_partition
    }

    fn check_id(&self, id: &str) -> Result<(), ErrorCode> {
        if id.len() > self.config.id_bytes_max {
            return Err(ErrorCode::InvalidRequest);
        }
        Ok(())
    }

    fn check_group_id(&self, group_id: &str) -> Result<(), ErrorCode> {
        if group_id.is_empty() || group_id.len() > self.config.id_bytes_max {
            return Err(ErrorCode::InvalidGroupId);
        }
        if !self.active || !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        Ok(())
    }

    fn new_member_id(&self, instance: Option<&str>) -> String {
        // Kafka: clientId (or instance id) + "-" + UUID; here a coordinator-unique sequence.
        format!(
            "{}-{}.{}",
            instance.unwrap_or("member"),
            self.config.coordinator_epoch,
            self.next_member_seq
        )
    }
}

/// The member exists and, for a static member, still holds its instance id.
fn check_member(
    group: &Group,
    member_id: &str,
    instance: Option<&String>,
) -> Result<(), ErrorCode> {
    if group.is_fenced(member_id, instance) {
        return Err(ErrorCode::FencedInstanceId);
    }
    if !group.members.contains_key(member_id) {
        return Err(ErrorCode::UnknownMemberId);
    }
    Ok(())
}
