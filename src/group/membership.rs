//! One consumer group's membership state machine: members, generations and the states
//! Empty -> PreparingRebalance -> CompletingRebalance -> Stable (Kafka's GroupMetadata).
//! The coordinator routes requests here after validating the group id; this file owns
//! what a join, sync, heartbeat, leave or session expiry does to one group.

use super::coordinator::{CoordinatorOutput, GroupEvent, GroupResponse, ReplyTo};
use super::records::{GroupRecord, MemberRecord};
use crate::protocol::{
    ErrorCode, JoinGroupMember, JoinGroupProtocol, JoinGroupRequest, JoinGroupResponse,
    SyncGroupResponse, NO_GENERATION_ID,
};
use crate::types::{Epoch, Millis, Offset, TopicPartition};
use std::collections::BTreeMap;

/// Kafka's group states (GroupState.scala). Dead is kept for fidelity: a coordinator that
/// resigns drops its groups rather than marking them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

/// A restarted static member's answer, held until the group with its new member id is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticJoin {
    pub reply_to: ReplyTo,
    pub old_id: String,
    pub new_id: String,
    /// The old member's session and rebalance timeouts, put back if the store fails.
    pub old_timeouts: (u32, u32),
    pub response: JoinGroupResponse,
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
    pub protocols: Vec<JoinGroupProtocol>,
    pub last_heartbeat: Millis,
    pub join_reply: Option<ReplyTo>,
    pub sync_reply: Option<ReplyTo>,
    pub assignment: Vec<TopicPartition>,
    /// Order of first join: the earliest remaining member becomes leader.
    pub join_seq: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> the member id currently holding it.
    pub static_members: BTreeMap<String, String>,
    /// End of the join window (PreparingRebalance) or of the sync window (CompletingRebalance).
    pub rebalance_deadline: Option<Millis>,
    /// In the initial join delay of an empty group: wait for the window even if all joined.
    pub initial_join: bool,
    pub committed: BTreeMap<TopicPartition, (Offset, Option<Epoch>)>,
    /// group.initial.rebalance.delay.ms, from the coordinator's config.
    pub initial_rebalance_delay_ms: u64,
    /// The leader's assignment of this generation is being stored: members hear it, and the
    /// group is Stable, once the store commits.
    pub storing: bool,
}

pub(crate) type Out = Vec<CoordinatorOutput>;

impl Group {
    pub fn new(group_id: &str, initial_rebalance_delay_ms: u64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            rebalance_deadline: None,
            initial_join: false,
            committed: BTreeMap::new(),
            initial_rebalance_delay_ms,
            storing: false,
        }
    }

    /// A joining member's protocols must share one with every current member.
    pub fn supports(&self, protocols: &[JoinGroupProtocol]) -> bool {
        self.members.values().all(|m| {
            m.protocols.is_empty()
                || protocols.iter().any(|p| m.protocols.iter().any(|q| q.name == p.name))
        })
    }

    /// Which member (if any) holds `instance`, and whether `member_id` is fenced by it.
    pub fn is_fenced(&self, member_id: &str, instance: Option<&String>) -> bool {
        match instance.and_then(|i| self.static_members.get(i)) {
            Some(holder) => holder != member_id,
            None => false,
        }
    }

    pub fn add_member(&mut self, now: Millis, member_id: String, req: &JoinGroupRequest, seq: u64) {
        assert!(!self.members.contains_key(&member_id), "member {member_id} joined twice");
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            last_heartbeat: now,
            join_reply: None,
            sync_reply: None,
            assignment: Vec::new(),
            join_seq: seq,
        };
        self.members.insert(member_id, member);
    }

    /// A static member restarted (same group.instance.id, empty member id): the new member
    /// id takes over the old one's place and assignment; the old id is fenced from now on.
    pub fn replace_static_member(&mut self, old_id: &str, new_id: String, out: &mut Out) {
        let mut member = self.members.remove(old_id).expect("static mapping points to a member");
        for reply_to in [member.join_reply.take(), member.sync_reply.take()].into_iter().flatten() {
            out.push(CoordinatorOutput::Reply {
                reply_to,
                response: GroupResponse::error_for_join_or_sync(ErrorCode::FencedInstanceId),
            });
        }
        let instance =
            member.group_instance_id.clone().expect("a static member has an instance id");
        member.member_id = new_id.clone();
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        out.push(CoordinatorOutput::Event(GroupEvent::StaticMemberReplaced {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            old_member_id: old_id.to_string(),
            new_member_id: new_id,
        }));
    }

    /// JoinGroup without a member id: a new member, or a restarted (or duplicate) static
    /// member taking its group.instance.id over; a stable group with unchanged protocols
    /// answers the static member without a rebalance, once the group with its new member id
    /// is stored: `Some` is that answer, for the caller to send when the append commits.
    #[allow(clippy::too_many_arguments)]
    pub fn join_new(
        &mut self,
        now: Millis,
        reply_to: ReplyTo,
        req: &JoinGroupRequest,
        new_id: String,
        seq: u64,
        max_size: usize,
        out: &mut Out,
    ) -> Result<Option<StaticJoin>, ErrorCode> {
        let group = self;
        let existing =
            req.group_instance_id.as_ref().and_then(|i| group.static_members.get(i)).cloned();
        if let Some(old_id) = existing {
            // A restarted (or duplicate) static member takes the instance over.
            group.replace_static_member(&old_id, new_id.clone(), out);
            let m = group.members.get_mut(&new_id).expect("just replaced");
            let old_timeouts = (m.session_timeout_ms, m.rebalance_timeout_ms);
            m.last_heartbeat = now;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            let protocols_changed = m.protocols != req.protocols;
            m.protocols = req.protocols.clone();
            tracing::info!(group = %req.group_id, old = %old_id, new = %new_id, "static member replaced");
            match group.state {
                GroupState::Stable if !protocols_changed => {
                    // Kafka stores the group with the new member id before it answers, so a
                    // coordinator that takes over does not fence the restarted member with
                    // the old one (swarm seed 887: an answer sent before a store that failed
                    // fenced every member after the failover).
                    let response = group.join_response(&new_id, Vec::new());
                    return Ok(Some(StaticJoin {
                        reply_to,
                        old_id,
                        new_id,
                        old_timeouts,
                        response,
                    }));
                }
                _ => {
                    m.join_reply = Some(reply_to);
                    group.prepare_rebalance(now, out);
                }
            }
        } else {
            if group.members.len() >= max_size {
                return Err(ErrorCode::GroupMaxSizeReached);
            }
            group.add_member(now, new_id.clone(), req, seq);
            group.members.get_mut(&new_id).expect("just added").join_reply = Some(reply_to);
            group.prepare_rebalance(now, out);
        }
        Ok(None)
    }

    /// The store of a static member's replacement failed: as Kafka does, the old member id
    /// takes its place back (with its timeouts; its session runs from the join), and the
    /// joiner hears the store's error, mapped as for a commit (it joins again).
    pub fn revert_static_join(&mut self, join: &StaticJoin, out: &mut Out) {
        if !self.members.contains_key(&join.new_id) {
            return; // replaced or removed since: nothing of this join is left to undo
        }
        self.replace_static_member(&join.new_id, join.old_id.clone(), out);
        let m = self.members.get_mut(&join.old_id).expect("just put back");
        (m.session_timeout_ms, m.rebalance_timeout_ms) = join.old_timeouts;
    }

    /// JoinGroup from a known member: a follower rejoining a stable group with nothing new
    /// gets the current generation; anything else starts (or joins) a rebalance.
    pub fn join_known(
        &mut self,
        now: Millis,
        reply_to: ReplyTo,
        req: &JoinGroupRequest,
        out: &mut Out,
    ) -> Result<(), ErrorCode> {
        let group = self;
        if group.is_fenced(&req.member_id, req.group_instance_id.as_ref()) {
            return Err(ErrorCode::FencedInstanceId);
        }
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        let Some(m) = group.members.get_mut(&req.member_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        m.last_heartbeat = now;
        let protocols_changed = m.protocols != req.protocols;
        m.protocols = req.protocols.clone();
        if let Some(previous) = m.join_reply.replace(reply_to) {
            // A retried join: the earlier request is superseded.
            out.push(CoordinatorOutput::Reply {
                reply_to: previous,
                response: GroupResponse::error_for_join_or_sync(ErrorCode::RebalanceInProgress),
            });
        }
        if state == GroupState::Stable && !is_leader && !protocols_changed {
            // A follower rejoining with nothing new: answer with the current generation.
            m.join_reply = None;
            let response = group.join_response(&req.member_id, Vec::new());
            out.push(CoordinatorOutput::Reply {
                reply_to,
                response: GroupResponse::Join(response),
            });
        } else {
            group.prepare_rebalance(now, out);
        }
        Ok(())
    }

    pub fn remove_member(
        &mut self,
        now: Millis,
        member_id: &str,
        reason: &'static str,
        out: &mut Out,
    ) {
        let Some(mut member) = self.members.remove(member_id) else { return };
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        for reply_to in [member.join_reply.take(), member.sync_reply.take()].into_iter().flatten() {
            out.push(CoordinatorOutput::Reply {
                reply_to,
                response: GroupResponse::error_for_join_or_sync(ErrorCode::UnknownMemberId),
            });
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        tracing::info!(group = %self.group_id, member = member_id, reason, "member removed");
        out.push(CoordinatorOutput::Event(GroupEvent::MemberRemoved {
            group_id: self.group_id.clone(),
            member_id: member_id.to_string(),
            reason,
        }));
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub fn prepare_rebalance(&mut self, now: Millis, out: &mut Out) {
        self.storing = false;
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(reply_to) = m.sync_reply.take() {
                    out.push(CoordinatorOutput::Reply {
                        reply_to,
                        response: GroupResponse::error_for_join_or_sync(
                            ErrorCode::RebalanceInProgress,
                        ),
                    });
                }
            }
        }
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        self.initial_join = self.state == GroupState::Empty;
        let window_ms = if self.initial_join {
            self.initial_rebalance_delay_ms
        } else {
            self.members.values().map(|m| u64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
        };
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now.plus_ms(window_ms));
        tracing::info!(group = %self.group_id, generation = self.generation_id, %now, "preparing rebalance");
    }

    /// Complete the join phase once every member rejoined (outside the initial delay) or
    /// the window closed; members that did not rejoin in time are dropped.
    pub fn maybe_complete_join(&mut self, now: Millis, out: &mut Out) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline = self.rebalance_deadline.expect("a rebalancing group has a join deadline");
        let all_joined = self.members.values().all(|m| m.join_reply.is_some());
        if !(now >= deadline || (all_joined && !self.initial_join)) {
            return;
        }
        let late: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_reply.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in late {
            // Not remove_member: that would re-enter this function.
            let m = self.members.remove(&id).expect("listed above");
            if let Some(instance) = &m.group_instance_id {
                self.static_members.remove(instance);
            }
            if self.leader.as_deref() == Some(id.as_str()) {
                self.leader = None;
            }
            out.push(CoordinatorOutput::Event(GroupEvent::MemberRemoved {
                group_id: self.group_id.clone(),
                member_id: id,
                reason: "did not rejoin within the rebalance timeout",
            }));
        }
        self.complete_join(now, out);
    }

    fn complete_join(&mut self, now: Millis, out: &mut Out) {
        self.generation_id += 1;
        self.initial_join = false;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.rebalance_deadline = None;
            out.push(self.metadata_append());
            out.push(CoordinatorOutput::Event(GroupEvent::GenerationStarted {
                group_id: self.group_id.clone(),
                generation_id: self.generation_id,
                leader: String::new(),
                members: Vec::new(),
            }));
            tracing::info!(group = %self.group_id, generation = self.generation_id, "group empty");
            return;
        }
        let leader = match &self.leader {
            Some(l) if self.members.contains_key(l) => l.clone(),
            _ => self
                .members
                .values()
                .min_by_key(|m| m.join_seq)
                .expect("non-empty")
                .member_id
                .clone(),
        };
        self.leader = Some(leader.clone());
        self.protocol =
            self.members[&leader].protocols.iter().map(|p| p.name.clone()).find(|name| {
                self.members.values().all(|m| m.protocols.iter().any(|q| &q.name == name))
            });
        let sync_window_ms =
            self.members.values().map(|m| u64::from(m.rebalance_timeout_ms)).max().unwrap_or(0);
        self.rebalance_deadline = Some(now.plus_ms(sync_window_ms));
        self.state = GroupState::CompletingRebalance;
        // Persist the new generation at once (without members, who have no assignment
        // yet): a coordinator failing over before the leader's sync then restarts the group
        // empty at this generation, so a generation number never names two memberships.
        out.push(CoordinatorOutput::AppendRecords {
            token: None,
            records: vec![GroupRecord::GroupMetadata {
                group_id: self.group_id.clone(),
                generation_id: self.generation_id,
                protocol: None,
                leader: None,
                members: Vec::new(),
            }],
        });
        tracing::info!(group = %self.group_id, generation = self.generation_id, %leader,
            members = self.members.len(), %now, "join complete");
        out.push(CoordinatorOutput::Event(GroupEvent::GenerationStarted {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            leader: leader.clone(),
            members: self.members.keys().cloned().collect(),
        }));
        let all = self.member_list();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let m = self.members.get_mut(&id).expect("listed");
            m.last_heartbeat = now;
            let reply_to = m.join_reply.take().expect("every remaining member rejoined");
            let members = if id == leader { all.clone() } else { Vec::new() };
            let response = self.join_response(&id, members);
            out.push(CoordinatorOutput::Reply {
                reply_to,
                response: GroupResponse::Join(response),
            });
        }
    }

    fn member_list(&self) -> Vec<JoinGroupMember> {
        let chosen = self.protocol.as_deref();
        self.members
            .values()
            .map(|m| JoinGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                protocol: m
                    .protocols
                    .iter()
                    .find(|p| Some(p.name.as_str()) == chosen)
                    .cloned()
                    .unwrap_or_else(|| JoinGroupProtocol {
                        name: String::new(),
                        topics: Vec::new(),
                        owned_partitions: Vec::new(),
                    }),
            })
            .collect()
    }

    pub fn join_response(
        &self,
        member_id: &str,
        members: Vec<JoinGroupMember>,
    ) -> JoinGroupResponse {
        JoinGroupResponse {
            error: ErrorCode::None,
            generation_id: self.generation_id,
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// The leader's SyncGroup: every member's assignment, to store (the record returned)
    /// before anyone hears it, as Kafka's doSyncGroup answers in its storeGroup callback
    /// (swarm seeds 6155, 9505: answered before a store that failed, the generation's member
    /// ids lived only in memory and a coordinator that took over fenced every member).
    pub fn stage_assignment(
        &mut self,
        assignment: BTreeMap<String, Vec<TopicPartition>>,
    ) -> GroupRecord {
        assert_eq!(self.state, GroupState::CompletingRebalance, "{}: sync outside", self.group_id);
        for m in self.members.values_mut() {
            m.assignment = assignment.get(&m.member_id).cloned().unwrap_or_default();
        }
        self.storing = true;
        self.metadata_record()
    }

    /// The store of `generation`'s assignment failed: every waiting member hears the error
    /// and the group rebalances (Kafka's resetAndPropagateAssignmentError).
    pub fn fail_sync(&mut self, now: Millis, generation: i32, error: ErrorCode, out: &mut Out) {
        if !self.storing || generation != self.generation_id {
            return;
        }
        self.storing = false;
        for m in self.members.values_mut() {
            m.assignment.clear();
            if let Some(reply_to) = m.sync_reply.take() {
                let response = GroupResponse::error_for_join_or_sync(error);
                out.push(CoordinatorOutput::Reply { reply_to, response });
            }
        }
        self.prepare_rebalance(now, out);
    }

    /// The store of `generation`'s assignment committed: the group is Stable and every
    /// waiting member hears its partitions.
    pub fn complete_sync(&mut self, generation: i32, out: &mut Out) {
        if !self.storing || generation != self.generation_id {
            return;
        }
        self.storing = false;
        self.state = GroupState::Stable;
        self.rebalance_deadline = None;
        tracing::info!(group = %self.group_id, generation = self.generation_id, "stable");
        out.push(CoordinatorOutput::Event(GroupEvent::AssignmentSynced {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            assignment: self
                .members
                .values()
                .map(|m| (m.member_id.clone(), m.assignment.clone()))
                .collect(),
        }));
        for m in self.members.values_mut() {
            if let Some(reply_to) = m.sync_reply.take() {
                out.push(CoordinatorOutput::Reply {
                    reply_to,
                    response: GroupResponse::Sync(SyncGroupResponse {
                        error: ErrorCode::None,
                        assignment: m.assignment.clone(),
                    }),
                });
            }
        }
    }

    /// Session expiry and the join / sync windows.
    pub fn tick(&mut self, now: Millis, out: &mut Out) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_reply.is_none() && m.sync_reply.is_none())
            .filter(|m| now.since(m.last_heartbeat) >= u64::from(m.session_timeout_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member(now, &id, "session timeout", out);
        }
        match (self.state, self.rebalance_deadline) {
            (GroupState::PreparingRebalance, _) => self.maybe_complete_join(now, out),
            (GroupState::CompletingRebalance, Some(deadline)) if now >= deadline => {
                // The leader never sent the assignment: drop members that did not sync.
                let unsynced: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.sync_reply.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in unsynced {
                    self.remove_member(now, &id, "did not sync within the rebalance timeout", out);
                }
            }
            _ => {}
        }
    }

    /// The group as persisted after a rebalance; the driver appends it like a commit.
    fn metadata_append(&self) -> CoordinatorOutput {
        CoordinatorOutput::AppendRecords { token: None, records: vec![self.metadata_record()] }
    }

    pub fn metadata_record(&self) -> GroupRecord {
        GroupRecord::GroupMetadata {
            group_id: self.group_id.clone(),
            generation_id: self.generation_id,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberRecord {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuild membership from a persisted metadata record (coordinator failover): members
    /// get a fresh session starting at `now`, as Kafka schedules heartbeats on load.
    pub fn restore(
        &mut self,
        now: Millis,
        generation_id: i32,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<MemberRecord>,
    ) {
        self.generation_id = generation_id;
        self.protocol = protocol;
        self.leader = leader;
        self.members.clear();
        self.static_members.clear();
        for (seq, r) in members.into_iter().enumerate() {
            if let Some(instance) = &r.group_instance_id {
                self.static_members.insert(instance.clone(), r.member_id.clone());
            }
            self.members.insert(
                r.member_id.clone(),
                Member {
                    member_id: r.member_id,
                    group_instance_id: r.group_instance_id,
                    session_timeout_ms: r.session_timeout_ms,
                    rebalance_timeout_ms: r.rebalance_timeout_ms,
                    protocols: r.protocols,
                    last_heartbeat: now,
                    join_reply: None,
                    sync_reply: None,
                    assignment: r.assignment,
                    join_seq: seq as u64,
                },
            );
        }
        self.state = if self.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        self.rebalance_deadline = None;
        self.initial_join = false;
        self.storing = false;
        tracing::info!(group = %self.group_id, generation = self.generation_id,
            members = ?self.members.keys().collect::<Vec<_>>(), "group restored");
        debug_assert!(self.generation_id >= 0 || self.generation_id == NO_GENERATION_ID);
    }
}
