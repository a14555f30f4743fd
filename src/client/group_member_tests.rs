//! Group member tests: members driven against a real `GroupCoordinator` through a tiny
//! in-test router (one broker, node 1, coordinates the group and leads every partition of
//! a fake topic whose partitions hold `LOG_LEN` records each), plus hand-driven tests for
//! config validation, garbage responses and request timeouts.

use super::*;
use crate::client::consumer::OffsetReset;
use crate::client::CloseReason;
use crate::group::{
    CoordinatorConfig, CoordinatorOutput, GroupCoordinator, GroupEvent, GroupRecord, GroupRequest,
    GroupResponse, GroupState, ReplyTo,
};
use crate::protocol::{
    FetchPartitionResponse, FetchResponse, FindCoordinatorResponse, HeartbeatResponse,
    JoinGroupResponse, ListOffsetsPartitionResponse, ListOffsetsResponse, MetadataResponse,
    OffsetCommitResponse, OffsetFetchResponse, OffsetSpec, PartitionMetadata, Request,
    RequestFrame, Response, SyncGroupResponse, TopicMetadata,
};
use crate::record::BatchBuilder;
use proptest::prelude::*;

const BROKER: NodeId = NodeId(1);
const TOPIC: &str = "t";
const PARTITIONS: u32 = 6;
const LOG_LEN: u64 = 20;
const SESSION_MS: u32 = 10_000;
const STEP_MS: u64 = 100;

fn all_partitions() -> Vec<TopicPartition> {
    (0..PARTITIONS).map(|p| TopicPartition::new(TOPIC, p)).collect()
}

/// Topic `t` with PARTITIONS partitions, and topic `u` with 2, all led by node 1.
fn metadata() -> MetadataResponse {
    metadata_with(PARTITIONS)
}

/// Topic `t` with `t_partitions` partitions, and topic `u` with 2, all led by node 1.
fn metadata_with(t_partitions: u32) -> MetadataResponse {
    let topic = |name: &str, count: u32| TopicMetadata {
        name: name.to_string(),
        error: ErrorCode::None,
        partitions: (0..count)
            .map(|p| PartitionMetadata {
                partition: p,
                error: ErrorCode::None,
                leader: Some(BROKER),
                leader_epoch: Epoch(1),
                replicas: vec![BROKER],
                isr: vec![BROKER],
            })
            .collect(),
    };
    MetadataResponse {
        brokers: vec![BROKER, NodeId(2)],
        topics: vec![topic(TOPIC, t_partitions), topic("u", 2)],
    }
}

/// What a broker answers to a metadata request for `topics`.
fn metadata_for(t_partitions: u32, topics: &[String]) -> MetadataResponse {
    let mut all = metadata_with(t_partitions);
    all.topics.retain(|t| topics.contains(&t.name));
    all
}

fn config(assignor: AssignorKind, instance: Option<&str>) -> GroupMemberConfig {
    GroupMemberConfig {
        assignors: vec![assignor],
        session_timeout_ms: SESSION_MS,
        heartbeat_interval_ms: 1_000,
        max_poll_interval_ms: 20_000,
        group_instance_id: instance.map(str::to_string),
        enable_auto_commit: false,
        request_timeout_ms: 5_000,
        consumer: ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            request_timeout_ms: 5_000,
            fetch_max_wait_ms: 100,
            ..ConsumerConfig::default()
        },
        ..GroupMemberConfig::new("g", vec![TOPIC.to_string()])
    }
}

/// Records `from..LOG_LEN` of `tp`, one batch.
fn records_from(from: Offset) -> bytes::Bytes {
    if from.0 >= LOG_LEN {
        return bytes::Bytes::new();
    }
    let mut builder = BatchBuilder::new();
    for o in from.0..LOG_LEN {
        builder.push(o as i64, Some(b"k"), Some(format!("v{o}").as_bytes()), &[]);
    }
    builder.build().with_position(from, Epoch(1)).into_bytes()
}

struct Slot {
    member: GroupMember,
    /// Not polled and deaf (a frozen process) while set.
    paused: bool,
    /// Calls take_records every step (the application's poll loop).
    consuming: bool,
    taken: Vec<ConsumedRecord>,
}

struct Cluster {
    now: Millis,
    coordinator: GroupCoordinator,
    /// The node FindCoordinator names, and the coordinator it replaced (still answering,
    /// with NotCoordinator, what is sent to the old node).
    coordinator_node: NodeId,
    retired: Option<GroupCoordinator>,
    /// The offsets partition: every record the coordinators appended, in order.
    durable: Vec<GroupRecord>,
    slots: Vec<Option<Slot>>,
    /// Coordinator reply handle -> (slot, correlation id).
    pending: BTreeMap<u64, (usize, u32, NodeId)>,
    next_reply: u64,
    /// Responses to deliver at the next step: (slot, from, frame).
    inbox: Vec<(usize, NodeId, ResponseFrame)>,
    /// Every member event, in the order they happened: (time, slot, event).
    log: Vec<(Millis, usize, MemberEvent)>,
    group_events: Vec<GroupEvent>,
    /// Every request a member sent: (slot, request).
    sent: Vec<(usize, Request)>,
    /// Members dropped without a word: (time, slot).
    crashes: Vec<(Millis, usize)>,
    /// How many partitions topic `t` has in the metadata the brokers answer.
    t_partitions: u32,
    /// OffsetFetch requests go unanswered while set.
    hold_offset_fetches: bool,
    /// Per slot: the group instance id, or the slot number for a dynamic member.
    identities: Vec<String>,
}

impl Cluster {
    fn new() -> Cluster {
        let config = CoordinatorConfig { initial_rebalance_delay_ms: 1_000, ..Default::default() };
        Cluster {
            now: Millis(0),
            coordinator: GroupCoordinator::new(config),
            coordinator_node: BROKER,
            retired: None,
            durable: Vec::new(),
            slots: Vec::new(),
            pending: BTreeMap::new(),
            next_reply: 0,
            inbox: Vec::new(),
            log: Vec::new(),
            group_events: Vec::new(),
            sent: Vec::new(),
            crashes: Vec::new(),
            identities: Vec::new(),
            hold_offset_fetches: false,
            t_partitions: PARTITIONS,
        }
    }

    fn add(&mut self, config: GroupMemberConfig) -> usize {
        let id = NodeId(100 + self.slots.len() as u32);
        let identity = config.group_instance_id.clone();
        self.identities.push(identity.unwrap_or_else(|| format!("slot{}", self.slots.len())));
        let member = GroupMember::new(id, config).expect("valid config");
        let slot = Slot { member, paused: false, consuming: true, taken: Vec::new() };
        self.slots.push(Some(slot));
        self.slots.len() - 1
    }

    /// Drops the member: after `close` (its last events are collected) or as a crash.
    fn remove(&mut self, slot: usize) {
        self.collect(slot);
        self.slots[slot] = None;
        self.crashes.push((self.now, slot));
    }

    fn member(&self, slot: usize) -> &GroupMember {
        &self.slots[slot].as_ref().expect("live slot").member
    }

    fn slot_mut(&mut self, slot: usize) -> &mut Slot {
        self.slots[slot].as_mut().expect("live slot")
    }

    fn step(&mut self) {
        self.now = self.now.plus_ms(STEP_MS);
        self.coordinator.tick(self.now);
        self.pump();
        for (slot, from, frame) in std::mem::take(&mut self.inbox) {
            let now = self.now;
            if let Some(s) = self.slots[slot].as_mut().filter(|s| !s.paused) {
                s.member.on_response(now, from, frame);
            }
            self.collect(slot);
        }
        for slot in 0..self.slots.len() {
            let now = self.now;
            let Some(s) = self.slots[slot].as_mut().filter(|s| !s.paused) else { continue };
            if s.consuming {
                let records = s.member.take_records(now, 100);
                s.taken.extend(records);
            }
            let actions = s.member.poll(now);
            self.collect(slot);
            for action in actions {
                self.route(slot, action);
            }
            self.pump();
        }
    }

    fn run_for(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        while self.now < end {
            self.step();
        }
    }

    fn collect(&mut self, slot: usize) {
        let now = self.now;
        if let Some(s) = self.slots[slot].as_mut() {
            for event in s.member.take_events() {
                self.log.push((now, slot, event));
            }
        }
    }

    fn route(&mut self, slot: usize, action: ConsumerAction) {
        match action {
            ConsumerAction::Send { to, frame } => {
                assert!(to == BROKER || to == NodeId(2), "request to unknown node {to}");
                self.sent.push((slot, frame.body.clone()));
                self.answer(slot, to, frame);
            }
            ConsumerAction::RefreshMetadata { topics } => {
                let metadata = metadata_for(self.t_partitions, &topics);
                self.slot_mut(slot).member.on_metadata(&metadata);
            }
            ConsumerAction::CloseConnection { .. } => {}
        }
    }

    fn answer(&mut self, slot: usize, to: NodeId, frame: RequestFrame) {
        let cid = frame.correlation_id;
        let group_request = match frame.body {
            Request::FindCoordinator(_) => {
                let body = Response::FindCoordinator(FindCoordinatorResponse {
                    error: ErrorCode::None,
                    node_id: Some(self.coordinator_node),
                });
                return self.inbox.push((slot, to, ResponseFrame { correlation_id: cid, body }));
            }
            Request::Fetch(f) => {
                let partitions = f
                    .partitions
                    .iter()
                    .map(|p| FetchPartitionResponse {
                        tp: p.tp.clone(),
                        error: ErrorCode::None,
                        high_watermark: Offset(LOG_LEN),
                        log_start_offset: Offset(0),
                        records: records_from(p.fetch_offset),
                    })
                    .collect();
                let body = Response::Fetch(FetchResponse { partitions });
                return self.inbox.push((slot, to, ResponseFrame { correlation_id: cid, body }));
            }
            Request::ListOffsets(l) => {
                let partitions = l
                    .partitions
                    .iter()
                    .map(|(tp, spec)| ListOffsetsPartitionResponse {
                        tp: tp.clone(),
                        error: ErrorCode::None,
                        offset: if *spec == OffsetSpec::Earliest {
                            Offset(0)
                        } else {
                            Offset(LOG_LEN)
                        },
                    })
                    .collect();
                let body = Response::ListOffsets(ListOffsetsResponse { partitions });
                return self.inbox.push((slot, to, ResponseFrame { correlation_id: cid, body }));
            }
            Request::JoinGroup(r) => GroupRequest::Join(r),
            Request::SyncGroup(r) => GroupRequest::Sync(r),
            Request::Heartbeat(r) => GroupRequest::Heartbeat(r),
            Request::LeaveGroup(r) => GroupRequest::Leave(r),
            Request::OffsetCommit(r) => GroupRequest::OffsetCommit(r),
            Request::OffsetFetch(_) if self.hold_offset_fetches => return,
            Request::OffsetFetch(r) => GroupRequest::OffsetFetch(r),
            other => panic!("unexpected request from a member: {other:?}"),
        };
        let reply = self.next_reply;
        self.next_reply += 1;
        self.pending.insert(reply, (slot, cid, to));
        let coordinator = if to == self.coordinator_node {
            &mut self.coordinator
        } else {
            self.retired.as_mut().expect("group requests go to a (former) coordinator")
        };
        coordinator.handle(self.now, ReplyTo(reply), group_request);
    }

    /// The offsets partition's leadership moves to the other broker: the old coordinator
    /// resigns, a new one loads the durable records.
    fn fail_over(&mut self) {
        self.coordinator.resign();
        let old = self.coordinator.config().clone();
        let config = CoordinatorConfig { coordinator_epoch: old.coordinator_epoch + 1, ..old };
        let mut next = GroupCoordinator::new(config);
        next.load(self.now, self.durable.clone());
        self.retired = Some(std::mem::replace(&mut self.coordinator, next));
        self.coordinator_node = if self.coordinator_node == BROKER { NodeId(2) } else { BROKER };
        self.pump();
    }

    /// Coordinator outputs: replies to the inbox, commits made durable at once.
    fn pump(&mut self) {
        loop {
            let mut outputs: Vec<(bool, CoordinatorOutput)> =
                self.coordinator.drain_outputs().into_iter().map(|o| (false, o)).collect();
            if let Some(retired) = self.retired.as_mut() {
                outputs.extend(retired.drain_outputs().into_iter().map(|o| (true, o)));
            }
            if outputs.is_empty() {
                return;
            }
            for (from_retired, output) in outputs {
                match output {
                    CoordinatorOutput::Reply { reply_to, response } => {
                        let (slot, cid, node) =
                            self.pending.remove(&reply_to.0).expect("known reply");
                        let body = to_response(response);
                        self.inbox.push((slot, node, ResponseFrame { correlation_id: cid, body }));
                    }
                    CoordinatorOutput::AppendRecords { token, records } => {
                        assert!(!from_retired, "a resigned coordinator appends nothing");
                        self.durable.extend(records);
                        if let Some(token) = token {
                            self.coordinator.on_offsets_appended(token);
                        }
                    }
                    CoordinatorOutput::Event(e) => self.group_events.push(e),
                }
            }
        }
    }

    fn stable(&self, slots: &[usize]) -> bool {
        slots.iter().all(|&s| self.member(s).state() == MemberState::Stable)
    }

    /// Runs until the group is stable with exactly the listed members, each stable in the
    /// coordinator's generation with its committed offsets applied.
    fn settle(&mut self, slots: &[usize], max_ms: u64) {
        let end = self.now.plus_ms(max_ms);
        while self.now < end {
            self.step();
            let generation = self.coordinator.generation_id("g");
            let group_stable = self.coordinator.group_state("g") == Some(GroupState::Stable);
            let mut ids: Vec<String> =
                slots.iter().map(|&s| self.member(s).member_id().to_string()).collect();
            ids.sort();
            if group_stable
                && self.coordinator.member_ids("g") == ids
                && self.stable(slots)
                && slots
                    .iter()
                    .all(|&s| self.member(s).coordinator() == Some(self.coordinator_node))
                && slots.iter().all(|&s| {
                    self.member(s).generation().map(|(g, _)| g) == generation
                        && !self.member(s).offsets_pending
                })
            {
                return;
            }
        }
        let states: Vec<_> = slots.iter().map(|&s| self.member(s).state()).collect();
        panic!("not settled by {}: {states:?}\n{:#?}", self.now, self.log);
    }

    fn events_of(&self, slot: usize) -> Vec<MemberEvent> {
        self.log.iter().filter(|(_, s, _)| *s == slot).map(|(_, _, e)| e.clone()).collect()
    }
}

fn to_response(response: GroupResponse) -> Response {
    match response {
        GroupResponse::Join(r) => Response::JoinGroup(r),
        GroupResponse::Sync(r) => Response::SyncGroup(r),
        GroupResponse::Heartbeat(r) => Response::Heartbeat(r),
        GroupResponse::Leave(r) => Response::LeaveGroup(r),
        GroupResponse::OffsetCommit(r) => Response::OffsetCommit(r),
        GroupResponse::OffsetFetch(r) => Response::OffsetFetch(r),
    }
}

/// Replays the ownership events in order: in every generation a partition has at most one
/// owner; every Revoked/Lost ends exactly what the same member's last Assigned began; and,
/// when `at_any_time`, a partition never has two owners at once (false when a test freezes
/// a member, which keeps believing it owns its partitions until it wakes up: a zombie).
/// A crashed slot (`crashes`: time, slot) owns nothing after its crash.
fn check_ownership(c: &Cluster, at_any_time: bool) {
    // A static member that restarts is the same owner: identify it by its instance id.
    let identity = |slot: usize| c.identities[slot].clone();
    let mut by_generation: BTreeMap<(i32, TopicPartition), String> = BTreeMap::new();
    let mut owner: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    let mut held: BTreeMap<usize, (i32, Vec<TopicPartition>)> = BTreeMap::new();
    let mut crashes = c.crashes.iter().peekable();
    for (at, slot, event) in &c.log {
        while let Some((_, crashed)) = crashes.next_if(|(t, _)| t < at) {
            for tp in held.remove(crashed).map(|(_, parts)| parts).unwrap_or_default() {
                owner.remove(&tp);
            }
        }
        match event {
            MemberEvent::Assigned { generation, partitions } => {
                for tp in partitions {
                    let key = (*generation, tp.clone());
                    if let Some(other) = by_generation.insert(key, identity(*slot)) {
                        assert_eq!(
                            other,
                            identity(*slot),
                            "{at}: {tp} owned twice in {generation}"
                        );
                    }
                    let prev = owner.insert(tp.clone(), *slot);
                    assert!(
                        !at_any_time || prev.is_none(),
                        "{at}: {tp} to {slot} while {prev:?} owns it"
                    );
                }
                let old = held.insert(*slot, (*generation, partitions.clone()));
                assert!(old.is_none(), "{at}: {slot} assigned twice without a revoke");
            }
            MemberEvent::Revoked { generation, partitions }
            | MemberEvent::Lost { generation, partitions, .. } => {
                let (g, parts) = held.remove(slot).expect("revoked what was assigned");
                assert_eq!((g, &parts), (*generation, partitions), "{at}: slot {slot}");
                for tp in partitions {
                    if owner.get(tp) == Some(slot) {
                        owner.remove(tp);
                    }
                }
            }
            _ => {}
        }
    }
}

fn union(cluster: &Cluster, slots: &[usize]) -> Vec<TopicPartition> {
    let mut all: Vec<TopicPartition> =
        slots.iter().flat_map(|&s| cluster.member(s).assignment()).collect();
    all.sort();
    all
}

#[test]
fn two_members_split_the_partitions_with_each_assignor() {
    for kind in [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky] {
        let mut c = Cluster::new();
        let a = c.add(config(kind, None));
        let b = c.add(config(kind, None));
        c.settle(&[a, b], 20_000);
        assert_eq!(c.member(a).assignment().len(), 3, "{kind:?}");
        assert_eq!(c.member(b).assignment().len(), 3, "{kind:?}");
        assert_eq!(union(&c, &[a, b]), all_partitions(), "{kind:?}");
        assert_eq!(c.member(a).generation().map(|g| g.0), c.member(b).generation().map(|g| g.0));
        let leaders = [a, b]
            .iter()
            .filter(|&&s| {
                c.events_of(s).iter().any(|e| matches!(e, MemberEvent::Joined { leader: true, .. }))
            })
            .count();
        assert_eq!(leaders, 1, "{kind:?}: exactly one leader");
        // The partitions are read from the start (no commits, earliest reset).
        c.run_for(2_000);
        for s in [a, b] {
            let taken = &c.slots[s].as_ref().expect("live").taken;
            assert_eq!(taken.len() as u64, 3 * LOG_LEN, "{kind:?}");
            assert!(taken.iter().all(|r| c.member(s).assignment().contains(&r.tp)));
        }
        check_ownership(&c, true);
    }
}

#[test]
fn a_third_member_triggers_revoke_and_reassign_without_double_ownership() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::RoundRobin, None));
    let b = c.add(config(AssignorKind::RoundRobin, None));
    c.settle(&[a, b], 20_000);
    let first = c.coordinator.generation_id("g").expect("group exists");
    let d = c.add(config(AssignorKind::RoundRobin, None));
    c.settle(&[a, b, d], 30_000);
    let second = c.coordinator.generation_id("g").expect("group exists");
    assert!(second > first);
    for s in [a, b, d] {
        assert_eq!(c.member(s).assignment().len(), 2);
    }
    assert_eq!(union(&c, &[a, b, d]), all_partitions());
    for s in [a, b] {
        let revoked = c
            .events_of(s)
            .into_iter()
            .any(|e| matches!(e, MemberEvent::Revoked { generation, .. } if generation == first));
        assert!(revoked, "slot {s} revoked its generation-{first} partitions");
    }
    check_ownership(&c, true);
}

#[test]
fn eager_rebalance_auto_commits_before_revoking() {
    let mut c = Cluster::new();
    let auto = |instance| GroupMemberConfig {
        enable_auto_commit: true,
        auto_commit_interval_ms: 60_000,
        ..config(AssignorKind::Range, instance)
    };
    let a = c.add(auto(None));
    c.settle(&[a], 20_000);
    c.run_for(1_000);
    let b = c.add(auto(None));
    c.settle(&[a, b], 30_000);
    let events = c.events_of(a);
    let commit = events
        .iter()
        .position(|e| matches!(e, MemberEvent::CommitCompleted { result: CommitResult::Ok, .. }));
    let revoke = events.iter().position(|e| matches!(e, MemberEvent::Revoked { .. }));
    assert!(commit.expect("a commit") < revoke.expect("a revoke"), "{events:?}");
    for tp in all_partitions() {
        assert_eq!(c.coordinator.committed("g", &tp), Some(Offset(LOG_LEN)), "{tp}");
    }
    check_ownership(&c, true);
}

#[test]
fn a_new_member_resumes_from_the_committed_offsets() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    c.settle(&[a], 20_000);
    let offsets: Vec<CommitOffset> =
        all_partitions().into_iter().map(|tp| (tp, Offset(7), None)).collect();
    let now = c.now;
    let id = c.slot_mut(a).member.commit(now, offsets.clone());
    c.run_for(500);
    let done = c.events_of(a).into_iter().find_map(|e| match e {
        MemberEvent::CommitCompleted { id: i, offsets: o, result } if i == id => Some((o, result)),
        _ => None,
    });
    assert_eq!(done, Some((offsets, CommitResult::Ok)));
    let now = c.now;
    let actions = c.slot_mut(a).member.close(now);
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::Send { frame, .. }
        if matches!(frame.body, Request::LeaveGroup(_)))));
    for action in actions {
        c.route(a, action);
    }
    c.pump();
    c.remove(a);
    let b = c.add(config(AssignorKind::Range, None));
    c.settle(&[b], 20_000);
    c.run_for(1_000);
    let taken = &c.slots[b].as_ref().expect("live").taken;
    for tp in all_partitions() {
        let first = taken.iter().find(|r| r.tp == tp).map(|r| r.offset);
        assert_eq!(first, Some(Offset(7)), "{tp} resumes at its committed offset");
    }
    check_ownership(&c, true);
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_its_partitions_move() {
    let mut c = Cluster::new();
    let slots: Vec<usize> = (0..3).map(|_| c.add(config(AssignorKind::Sticky, None))).collect();
    c.settle(&slots, 20_000);
    let kept: Vec<Vec<TopicPartition>> =
        slots[..2].iter().map(|&s| c.member(s).assignment()).collect();
    c.remove(slots[2]); // crashed: no LeaveGroup
    c.run_for(u64::from(SESSION_MS) + 1_000);
    c.settle(&slots[..2], 10_000);
    assert!(c
        .group_events
        .iter()
        .any(|e| matches!(e, GroupEvent::MemberRemoved { reason: "session timeout", .. })));
    assert_eq!(union(&c, &slots[..2]), all_partitions());
    for (i, &s) in slots[..2].iter().enumerate() {
        let now = c.member(s).assignment();
        assert!(kept[i].iter().all(|tp| now.contains(tp)), "sticky keeps {:?}", kept[i]);
    }
    check_ownership(&c, true);
}

#[test]
fn a_paused_member_loses_its_partitions_and_rejoins() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    let b = c.add(config(AssignorKind::Range, None));
    c.settle(&[a, b], 20_000);
    c.slot_mut(b).paused = true;
    c.run_for(u64::from(SESSION_MS) + 2_000);
    assert_eq!(c.member(a).assignment().len(), PARTITIONS as usize, "a took everything");
    c.slot_mut(b).paused = false;
    // As in Kafka, b learns that it is gone from the coordinator (its session timer only
    // sends it looking for the coordinator again).
    c.settle(&[a, b], 30_000);
    let lost = c.events_of(b).into_iter().any(|e| {
        matches!(e, MemberEvent::Lost { reason: LostReason::Error(ErrorCode::UnknownMemberId), .. })
    });
    assert!(lost, "{:?}", c.events_of(b));
    assert_eq!(union(&c, &[a, b]), all_partitions());
    check_ownership(&c, false);
}

#[test]
fn a_static_member_restarts_within_the_session_without_a_rebalance() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, Some("i-a")));
    let b = c.add(config(AssignorKind::Range, Some("i-b")));
    c.settle(&[a, b], 20_000);
    let generation = c.coordinator.generation_id("g");
    for s in [a, b] {
        let before = c.member(s).assignment();
        let now = c.now;
        let actions = c.slot_mut(s).member.close(now);
        assert!(actions.is_empty(), "a static member sends no LeaveGroup: {actions:?}");
        c.remove(s);
        c.run_for(2_000);
        let again = c.add(config(AssignorKind::Range, Some(if s == a { "i-a" } else { "i-b" })));
        let others: Vec<usize> =
            c.slots.iter().enumerate().filter_map(|(i, x)| x.as_ref().map(|_| i)).collect();
        c.settle(&others, 5_000);
        assert_eq!(c.member(again).assignment(), before, "same assignment");
        assert_eq!(c.coordinator.generation_id("g"), generation, "no new generation");
    }
    assert!(!c.sent.iter().any(|(_, r)| matches!(r, Request::LeaveGroup(_))));
    check_ownership(&c, true);
}

#[test]
fn exceeding_max_poll_interval_leaves_the_group_and_take_records_rejoins() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    let b = c.add(config(AssignorKind::Range, None));
    c.settle(&[a, b], 20_000);
    c.slot_mut(b).consuming = false;
    c.run_for(22_000);
    assert!(c.sent.iter().any(|(s, r)| *s == b && matches!(r, Request::LeaveGroup(_))));
    assert_eq!(c.member(b).state(), MemberState::Left);
    assert!(c.events_of(b).contains(&MemberEvent::LeftGroup { reason: LeaveReason::PollTimeout }));
    assert!(c
        .group_events
        .iter()
        .any(|e| matches!(e, GroupEvent::MemberRemoved { reason: "left the group", .. })));
    c.settle(&[a], 10_000);
    assert_eq!(c.member(a).assignment().len(), PARTITIONS as usize);
    c.slot_mut(b).consuming = true;
    c.settle(&[a, b], 30_000);
    assert_eq!(union(&c, &[a, b]), all_partitions());
    check_ownership(&c, true);
}

#[test]
fn a_commit_without_a_stable_generation_is_refused_locally() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    let id = c
        .slot_mut(a)
        .member
        .commit(Millis(0), vec![(TopicPartition::new(TOPIC, 0), Offset(1), None)]);
    let events = c.slot_mut(a).member.take_events();
    assert!(
        matches!(&events[..], [MemberEvent::CommitCompleted { id: i, result: CommitResult::Err(ErrorCode::UnknownMemberId), .. }] if *i == id)
    );
    c.settle(&[a], 20_000);
    assert!(!c.sent.iter().any(|(_, r)| matches!(r, Request::OffsetCommit(_))));
}

#[test]
fn invalid_configs_name_the_field() {
    let good = config(AssignorKind::Range, None);
    assert_eq!(good.validate(), Ok(()));
    let cases: Vec<(&str, GroupMemberConfig)> = vec![
        ("group_id", GroupMemberConfig { group_id: String::new(), ..good.clone() }),
        ("topics", GroupMemberConfig { topics: Vec::new(), ..good.clone() }),
        ("assignors", GroupMemberConfig { assignors: Vec::new(), ..good.clone() }),
        ("session_timeout_ms", GroupMemberConfig { session_timeout_ms: 0, ..good.clone() }),
        ("session_timeout_ms", GroupMemberConfig { session_timeout_ms: 1_000, ..good.clone() }),
        ("heartbeat_interval_ms", GroupMemberConfig { heartbeat_interval_ms: 0, ..good.clone() }),
        ("max_poll_interval_ms", GroupMemberConfig { max_poll_interval_ms: 0, ..good.clone() }),
        ("request_timeout_ms", GroupMemberConfig { request_timeout_ms: 0, ..good.clone() }),
        (
            "auto_commit_interval_ms",
            GroupMemberConfig {
                enable_auto_commit: true,
                auto_commit_interval_ms: 0,
                ..good.clone()
            },
        ),
        (
            "group_instance_id",
            GroupMemberConfig { group_instance_id: Some(String::new()), ..good.clone() },
        ),
        (
            "max_poll_records",
            GroupMemberConfig {
                consumer: ConsumerConfig { max_poll_records: 0, ..good.consumer.clone() },
                ..good.clone()
            },
        ),
    ];
    for (field, bad) in cases {
        let error = GroupMember::new(NodeId(9), bad).err().expect("refused");
        assert_eq!(error.field, field);
    }
}

/// A member that has sent its FindCoordinator to broker 1, with correlation id returned.
fn member_finding_coordinator() -> (GroupMember, u32) {
    let mut m = GroupMember::new(NodeId(100), config(AssignorKind::Range, None)).expect("valid");
    m.on_metadata(&metadata());
    let actions = m.poll(Millis(0));
    let cid = actions
        .iter()
        .find_map(|a| match a {
            ConsumerAction::Send { to: BROKER, frame }
                if matches!(frame.body, Request::FindCoordinator(_)) =>
            {
                Some(frame.correlation_id)
            }
            _ => None,
        })
        .expect("a FindCoordinator to the first broker");
    assert!(cid >= GROUP_CORRELATION_BASE);
    (m, cid)
}

fn found(cid: u32) -> ResponseFrame {
    ResponseFrame {
        correlation_id: cid,
        body: Response::FindCoordinator(FindCoordinatorResponse {
            error: ErrorCode::None,
            node_id: Some(BROKER),
        }),
    }
}

#[test]
fn garbage_responses_are_ignored() {
    let (mut m, cid) = member_finding_coordinator();
    m.on_response(Millis(1), BROKER, found(cid.wrapping_add(7)));
    m.on_response(Millis(1), NodeId(2), found(cid));
    let wrong_type = Response::Heartbeat(HeartbeatResponse { error: ErrorCode::None });
    m.on_response(Millis(1), BROKER, ResponseFrame { correlation_id: cid, body: wrong_type });
    m.on_response(
        Millis(1),
        BROKER,
        ResponseFrame { correlation_id: 3, body: Response::Error(ErrorCode::InvalidRequest) },
    );
    assert_eq!(m.coordinator(), None, "nothing above is an answer");
    m.on_response(Millis(2), BROKER, found(cid));
    assert_eq!(m.coordinator(), Some(BROKER));
    m.on_response(Millis(3), BROKER, found(cid));
    let actions = m.poll(Millis(3));
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::Send { frame, .. }
        if matches!(frame.body, Request::JoinGroup(_)))));
}

#[test]
fn an_unanswered_request_closes_the_connection_and_is_retried() {
    let (mut m, cid) = member_finding_coordinator();
    let timeout = m.config().request_timeout_ms;
    assert_eq!(m.next_wakeup(), Some(Millis(timeout)).min(m.next_wakeup()));
    let actions = m.poll(Millis(timeout));
    assert!(actions.contains(&ConsumerAction::CloseConnection {
        node: BROKER,
        reason: CloseReason::RequestTimeout { correlation_id: cid },
    }));
    let later = Millis(timeout + m.config().retry_backoff_ms);
    let actions = m.poll(later);
    assert!(
        actions.iter().any(|a| matches!(a, ConsumerAction::Send { to: NodeId(2), frame }
        if matches!(frame.body, Request::FindCoordinator(_)))),
        "rediscovery via the next broker: {actions:?}"
    );
}

proptest! {
    /// Arbitrary group responses under arbitrary correlation ids never panic a member.
    #[test]
    fn random_group_responses_never_panic(
        answers in proptest::collection::vec((0u32..8, 0usize..7, 0usize..6), 1..40),
    ) {
        let (mut m, cid) = member_finding_coordinator();
        m.on_response(Millis(1), BROKER, found(cid));
        let errors = [ErrorCode::None, ErrorCode::RebalanceInProgress, ErrorCode::UnknownMemberId,
            ErrorCode::IllegalGeneration, ErrorCode::NotCoordinator, ErrorCode::FencedInstanceId];
        let mut now = Millis(1);
        for (delta, kind, error) in answers {
            now = now.plus_ms(50);
            let error = errors[error];
            let body = match kind {
                0 => Response::JoinGroup(JoinGroupResponse { error, generation_id: 1,
                    protocol_name: Some(if delta == 7 { "bogus" } else { "range" }.into()),
                    leader: if delta % 2 == 0 { "m" } else { "x" }.into(),
                    member_id: if delta % 3 == 0 { String::new() } else { "m".into() }, members: Vec::new() }),
                1 => Response::SyncGroup(SyncGroupResponse { error, assignment: all_partitions() }),
                2 => Response::Heartbeat(HeartbeatResponse { error }),
                3 => Response::OffsetCommit(OffsetCommitResponse { partitions: vec![(TopicPartition::new(TOPIC, 0), error)] }),
                4 => Response::OffsetFetch(OffsetFetchResponse { error, partitions: Vec::new() }),
                5 => Response::Error(error),
                _ => Response::Metadata(metadata()),
            };
            for a in m.poll(now) {
                if let ConsumerAction::Send { frame, .. } = a {
                    let correlation_id = frame.correlation_id.wrapping_add(delta % 2);
                    m.on_response(now, BROKER, ResponseFrame { correlation_id, body: body.clone() });
                }
            }
            m.on_response(now, BROKER, ResponseFrame { correlation_id: cid.wrapping_add(delta), body });
            let _ = m.commit(now, m.consumed_offsets());
            let _ = m.take_records(now, 10);
            let _ = m.take_events();
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add {
        assignor: usize,
        instance: Option<u8>,
    },
    Pause(usize),
    Resume(usize),
    Crash(usize),
    Close(usize),
    /// Responses now in flight are lost.
    DropResponses,
    Commit(usize),
    StopConsuming(usize),
    FailOver,
    Run {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0usize..3, proptest::option::of(0u8..3))
            .prop_map(|(assignor, instance)| Op::Add { assignor, instance }),
        1 => (0usize..6).prop_map(Op::Pause),
        1 => (0usize..6).prop_map(Op::Resume),
        1 => (0usize..6).prop_map(Op::Crash),
        1 => (0usize..6).prop_map(Op::Close),
        1 => Just(Op::DropResponses),
        2 => (0usize..6).prop_map(Op::Commit),
        1 => (0usize..6).prop_map(Op::StopConsuming),
        1 => Just(Op::FailOver),
        4 => (1u64..150).prop_map(|s| Op::Run { ms: s * STEP_MS }),
    ]
}

impl Cluster {
    fn live(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|&s| self.slots[s].is_some()).collect()
    }

    fn apply(&mut self, op: Op) {
        let kinds = [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky];
        let live = self.live();
        let pick = |i: usize| (!live.is_empty()).then(|| live[i % live.len()]);
        match op {
            Op::Add { assignor, instance } => {
                // One live holder per instance id (a second one would fence the first).
                let name = instance.map(|i| format!("i-{i}"));
                let taken =
                    live.iter().any(|&s| self.identities[s] == name.clone().unwrap_or_default());
                if !taken && live.len() < 6 {
                    // Members share "range", so the group always has a common protocol.
                    let mut assignors = vec![kinds[assignor], AssignorKind::Range];
                    assignors.dedup();
                    self.add(GroupMemberConfig {
                        assignors,
                        ..config(kinds[assignor], name.as_deref())
                    });
                }
            }
            Op::Pause(i) => pick(i).into_iter().for_each(|s| self.slot_mut(s).paused = true),
            Op::Resume(i) => pick(i).into_iter().for_each(|s| self.slot_mut(s).paused = false),
            Op::Crash(i) => pick(i).into_iter().for_each(|s| self.remove(s)),
            Op::Close(i) => {
                if let Some(s) = pick(i) {
                    let now = self.now;
                    let actions = self.slot_mut(s).member.close(now);
                    actions.into_iter().for_each(|a| self.route(s, a));
                    self.pump();
                    self.remove(s);
                }
            }
            Op::DropResponses => self.inbox.clear(),
            Op::Commit(i) => {
                if let Some(s) = pick(i) {
                    let now = self.now;
                    let member = &mut self.slot_mut(s).member;
                    let offsets = member.consumed_offsets();
                    member.commit(now, offsets);
                }
            }
            Op::StopConsuming(i) => {
                pick(i).into_iter().for_each(|s| self.slot_mut(s).consuming = false)
            }
            Op::FailOver => self.fail_over(),
            Op::Run { ms } => self.run_for(ms),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random joins, freezes, crashes, closes, lost responses and commits: in every
    /// generation each partition has one owner; once healed, the live members converge on
    /// a stable generation that covers every partition exactly once.
    #[test]
    fn random_membership_keeps_single_ownership_and_converges(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut c = Cluster::new();
        c.add(config(AssignorKind::Range, None));
        for op in ops {
            c.apply(op);
        }
        check_ownership(&c, false);
        // Heal: wake everyone, let the application poll again.
        for s in c.live() {
            let slot = c.slot_mut(s);
            slot.paused = false;
            slot.consuming = true;
        }
        let live = c.live();
        if !live.is_empty() {
            c.run_for(u64::from(SESSION_MS) + 2_000);
            // Worst case: a crashed member's pending join holds a rebalance for the whole
            // rebalance timeout, then its missing sync holds another.
            c.settle(&live, 90_000);
            prop_assert_eq!(union(&c, &live), all_partitions());
        }
        check_ownership(&c, false);
    }
}

#[test]
fn a_coordinator_failover_is_rediscovered_without_a_rebalance() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    let b = c.add(config(AssignorKind::Range, None));
    c.settle(&[a, b], 20_000);
    let generation = c.coordinator.generation_id("g");
    let before: Vec<Vec<TopicPartition>> =
        [a, b].iter().map(|&s| c.member(s).assignment()).collect();
    let events_before = c.log.len();
    c.fail_over();
    c.run_for(5_000);
    for (i, &s) in [a, b].iter().enumerate() {
        assert_eq!(c.member(s).coordinator(), Some(NodeId(2)));
        assert_eq!(c.member(s).state(), MemberState::Stable);
        assert_eq!(c.member(s).assignment(), before[i]);
    }
    assert_eq!(c.coordinator.generation_id("g"), generation, "no rebalance");
    let ownership_changes = c.log[events_before..].iter().any(|(_, _, e)| {
        matches!(
            e,
            MemberEvent::Revoked { .. } | MemberEvent::Lost { .. } | MemberEvent::Assigned { .. }
        )
    });
    assert!(!ownership_changes, "{:?}", &c.log[events_before..]);
    // Commits go to the new coordinator and are durable there.
    let now = c.now;
    let offsets = c.member(a).consumed_offsets();
    assert!(!offsets.is_empty());
    let id = c.slot_mut(a).member.commit(now, offsets.clone());
    c.run_for(500);
    assert!(c.events_of(a).contains(&MemberEvent::CommitCompleted {
        id,
        offsets,
        result: CommitResult::Ok
    }));
    check_ownership(&c, true);
}

/// A static member that restarted (same instance id, new member id, no rebalance) must
/// survive a coordinator failover: the coordinator persists the replacement (as Kafka
/// stores the group after updateStaticMemberAndRebalance), so the next coordinator loads
/// the new member id. Found by random_membership_keeps_single_ownership_and_converges.
#[test]
fn static_replacement_survives_coordinator_failover() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, Some("i-a")));
    let b = c.add(config(AssignorKind::Range, None));
    c.settle(&[a, b], 20_000);
    c.remove(a);
    let again = c.add(config(AssignorKind::Range, Some("i-a")));
    c.settle(&[again, b], 5_000);
    c.fail_over();
    c.run_for(5_000);
    assert!(!c.events_of(again).contains(&MemberEvent::Fenced), "{:?}", c.events_of(again));
    assert_eq!(c.member(again).state(), MemberState::Stable);
}

#[test]
fn the_leader_refreshes_metadata_for_topics_only_other_members_subscribe_to() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    c.settle(&[a], 20_000);
    assert_eq!(c.member(a).consumer().metadata().partition_count("u"), None);
    let b = c.add(GroupMemberConfig {
        topics: vec![TOPIC.to_string(), "u".to_string()],
        ..config(AssignorKind::Range, None)
    });
    c.settle(&[a, b], 30_000);
    assert_eq!(c.member(a).consumer().metadata().partition_count("u"), Some(2));
    let u: Vec<TopicPartition> = (0..2).map(|p| TopicPartition::new("u", p)).collect();
    assert!(u.iter().all(|tp| c.member(b).assignment().contains(tp)), "u goes to its subscriber");
    assert_eq!(union(&c, &[a, b]).len(), PARTITIONS as usize + 2);
    check_ownership(&c, true);
}

#[test]
fn no_record_is_handed_out_before_the_committed_offset_is_known() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    c.settle(&[a], 20_000);
    let offsets = all_partitions().into_iter().map(|tp| (tp, Offset(5), None)).collect();
    let now = c.now;
    c.slot_mut(a).member.commit(now, offsets);
    c.run_for(500);
    c.hold_offset_fetches = true;
    let b = c.add(config(AssignorKind::Range, None));
    c.run_for(4_000); // below the 5 s request timeout: the OffsetFetch stays in flight
    assert!(c.member(b).assignment().len() == 3, "b is assigned: {:?}", c.events_of(b));
    assert!(c.slots[b].as_ref().expect("live").taken.is_empty());
    assert!(!c
        .sent
        .iter()
        .any(|(s, r)| *s == b && matches!(r, Request::Fetch(_) | Request::ListOffsets(_))));
    c.hold_offset_fetches = false;
    c.run_for(8_000); // the held request times out, and the retry is answered
    let taken = &c.slots[b].as_ref().expect("live").taken;
    for tp in c.member(b).assignment() {
        assert_eq!(taken.iter().find(|r| r.tp == tp).map(|r| r.offset), Some(Offset(5)), "{tp}");
    }
    check_ownership(&c, true);
}

#[test]
fn a_commit_cut_off_by_a_disconnect_is_indeterminate() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, None));
    c.settle(&[a], 20_000);
    let now = c.now;
    let offsets = vec![(TopicPartition::new(TOPIC, 0), Offset(3), None)];
    let id = c.slot_mut(a).member.commit(now, offsets.clone());
    let actions = c.slot_mut(a).member.poll(now);
    assert!(actions.iter().any(|x| matches!(x, ConsumerAction::Send { frame, .. } if matches!(frame.body, Request::OffsetCommit(_)))));
    c.slot_mut(a).member.on_disconnect(now, BROKER);
    let events = c.slot_mut(a).member.take_events();
    assert!(events.contains(&MemberEvent::CommitCompleted {
        id,
        offsets,
        result: CommitResult::Indeterminate
    }));
    assert_eq!(c.member(a).coordinator(), None, "the coordinator is rediscovered");
    c.settle(&[a], 5_000);
}

#[test]
fn the_leader_rebalances_when_a_topic_grows() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::RoundRobin, None));
    let b = c.add(config(AssignorKind::RoundRobin, None));
    c.settle(&[a, b], 20_000);
    let first = c.coordinator.generation_id("g").expect("group exists");
    // The shell's next metadata refresh shows two more partitions of t.
    c.t_partitions = PARTITIONS + 2;
    for s in [a, b] {
        c.slot_mut(s).member.on_metadata(&metadata_with(PARTITIONS + 2));
    }
    c.run_for(1_000);
    c.settle(&[a, b], 30_000);
    assert!(c.coordinator.generation_id("g").expect("group exists") > first);
    let all: Vec<TopicPartition> =
        (0..PARTITIONS + 2).map(|p| TopicPartition::new(TOPIC, p)).collect();
    assert_eq!(union(&c, &[a, b]), all);
    check_ownership(&c, true);
}

#[test]
fn a_static_member_past_max_poll_interval_sends_no_leave_and_rejoins_in_place() {
    let mut c = Cluster::new();
    let a = c.add(config(AssignorKind::Range, Some("i-a")));
    let b = c.add(config(AssignorKind::Range, Some("i-b")));
    c.settle(&[a, b], 20_000);
    let generation = c.coordinator.generation_id("g");
    let before = c.member(b).assignment();
    c.slot_mut(b).consuming = false;
    c.run_for(21_000);
    assert_eq!(c.member(b).state(), MemberState::Left);
    assert!(!c.sent.iter().any(|(_, r)| matches!(r, Request::LeaveGroup(_))));
    c.slot_mut(b).consuming = true; // within the session: the instance is still a member
    c.settle(&[a, b], 5_000);
    assert_eq!(c.coordinator.generation_id("g"), generation, "no rebalance");
    assert_eq!(c.member(b).assignment(), before);
    check_ownership(&c, true);
}
