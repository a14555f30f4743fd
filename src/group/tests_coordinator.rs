//! Coordinator tests: one per claim of the brief (happy path, session expiry, stale and
//! zombie commits, static membership, failover, malformed requests) and a proptest of
//! random request sequences that must never panic and must keep the group invariants.

use super::*;
use crate::protocol::*;
use crate::types::{Epoch, Millis, Offset, TopicPartition};
use proptest::prelude::*;
use std::collections::BTreeMap;

const SESSION_MS: u32 = 10_000;
const REBALANCE_MS: u32 = 30_000;
const TOPIC_PARTITIONS: u32 = 6;

struct Harness {
    c: GroupCoordinator,
    now: Millis,
    next_reply: u64,
    replies: BTreeMap<u64, GroupResponse>,
    events: Vec<GroupEvent>,
    /// Every append the coordinator asked for, with its token.
    appends: Vec<(Option<u64>, Vec<GroupRecord>)>,
    /// Records the driver made durable, in log order.
    log: Vec<GroupRecord>,
    /// Each log record's place in append order: an acked record takes the place it was
    /// appended at, before records appended after it that needed no ack.
    log_seq: Vec<u64>,
    /// Append order of the appends still waiting for their ack, by token.
    token_seq: BTreeMap<u64, u64>,
    next_seq: u64,
}

fn config(generation_check: bool) -> CoordinatorConfig {
    CoordinatorConfig { generation_check, ..CoordinatorConfig::default() }
}

impl Harness {
    fn new(config: CoordinatorConfig) -> Harness {
        Harness {
            c: GroupCoordinator::new(config),
            now: Millis(0),
            next_reply: 0,
            replies: BTreeMap::new(),
            events: Vec::new(),
            appends: Vec::new(),
            log: Vec::new(),
            log_seq: Vec::new(),
            token_seq: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Puts `records`, appended at `seq`, into the durable log in append order.
    fn make_durable(&mut self, seq: u64, records: Vec<GroupRecord>) {
        let at = self.log_seq.partition_point(|s| *s <= seq);
        let count = records.len();
        self.log.splice(at..at, records);
        self.log_seq.splice(at..at, std::iter::repeat_n(seq, count));
    }

    fn pump(&mut self) {
        for o in self.c.drain_outputs() {
            match o {
                CoordinatorOutput::Reply { reply_to, response } => {
                    assert!(
                        self.replies.insert(reply_to.0, response).is_none(),
                        "two replies to {reply_to:?}"
                    );
                }
                CoordinatorOutput::AppendRecords { token, records } => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    match token {
                        // Metadata needs no ack; the driver appends it at once.
                        None => self.make_durable(seq, records.clone()),
                        Some(token) => {
                            self.token_seq.insert(token, seq);
                        }
                    }
                    self.appends.push((token, records));
                }
                CoordinatorOutput::Event(e) => self.events.push(e),
            }
        }
    }

    fn send(&mut self, request: GroupRequest) -> u64 {
        let id = self.next_reply;
        self.next_reply += 1;
        self.c.handle(self.now, ReplyTo(id), request);
        self.pump();
        id
    }

    fn take(&mut self, id: u64) -> Option<GroupResponse> {
        self.replies.remove(&id)
    }

    fn tick(&mut self, now_ms: u64) {
        self.now = Millis(now_ms);
        self.c.tick(self.now);
        self.pump();
    }

    /// Make every pending commit durable, in token order.
    fn ack_all(&mut self) {
        let pending: Vec<(u64, Vec<GroupRecord>)> =
            self.appends.iter().filter_map(|(t, r)| t.map(|t| (t, r.clone()))).collect();
        self.appends.retain(|(t, _)| t.is_none());
        for (token, records) in pending {
            let seq = self.token_seq.remove(&token).unwrap_or(self.next_seq);
            self.make_durable(seq, records);
            self.c.on_offsets_appended(token);
        }
        self.pump();
    }

    fn join(&mut self, member_id: &str, instance: Option<&str>) -> u64 {
        self.send(GroupRequest::Join(join_request("g", member_id, instance)))
    }

    fn sync(
        &mut self,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<SyncGroupAssignment>,
    ) -> u64 {
        self.send(GroupRequest::Sync(SyncGroupRequest {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: self.instance_of(member_id),
            assignments,
        }))
    }

    fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> ErrorCode {
        let id = self.send(GroupRequest::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
        }));
        self.take(id).expect("heartbeats answer at once").error()
    }

    fn commit(&mut self, member_id: &str, generation_id: i32, partition: u32, offset: u64) -> u64 {
        self.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            offsets: vec![OffsetCommitPartition {
                tp: TopicPartition::new("t", partition),
                offset: Offset(offset),
                leader_epoch: Some(Epoch(3)),
            }],
        }))
    }

    fn fetch(&mut self, partition: u32) -> OffsetFetchPartition {
        let id = self.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
            group_id: "g".into(),
            partitions: Some(vec![TopicPartition::new("t", partition)]),
        }));
        match self.take(id) {
            Some(GroupResponse::OffsetFetch(r)) => r.partitions[0].clone(),
            other => panic!("expected an offset fetch answer, got {other:?}"),
        }
    }

    fn instance_of(&self, _member_id: &str) -> Option<String> {
        None
    }

    /// Three members join in the initial window; the leader assigns round-robin.
    /// Returns the member ids (leader first) and the generation.
    fn stable_group(&mut self, instances: [Option<&str>; 3]) -> (Vec<String>, i32) {
        let ids: Vec<u64> = instances.iter().map(|i| self.join("", *i)).collect();
        assert!(ids.iter().all(|id| !self.replies.contains_key(id)), "joins wait for the window");
        self.tick(self.c.config().initial_rebalance_delay_ms);
        let joins: Vec<JoinGroupResponse> = ids
            .iter()
            .map(|id| match self.take(*id) {
                Some(GroupResponse::Join(r)) => r,
                other => panic!("expected a join answer, got {other:?}"),
            })
            .collect();
        let generation = joins[0].generation_id;
        let leader = joins[0].leader.clone();
        assert_eq!(leader, joins[0].member_id, "the first member to join leads");
        assert_eq!(joins[0].members.len(), 3, "the leader gets the member list");
        assert!(joins[1..].iter().all(|j| j.members.is_empty() && j.error == ErrorCode::None));
        let members: Vec<MemberSubscription> = joins[0].members.iter().map(Into::into).collect();
        let ppt = BTreeMap::from([("t".to_string(), TOPIC_PARTITIONS)]);
        let assignment = assign(AssignorKind::RoundRobin, &members, &ppt);
        let follower_syncs: Vec<u64> =
            joins[1..].iter().map(|j| self.sync(&j.member_id, generation, Vec::new())).collect();
        assert!(
            follower_syncs.iter().all(|id| !self.replies.contains_key(id)),
            "followers wait for the leader"
        );
        let assignments = assignment
            .iter()
            .map(|(m, p)| SyncGroupAssignment { member_id: m.clone(), partitions: p.clone() })
            .collect();
        let leader_sync = self.sync(&leader, generation, assignments);
        assert!(!self.replies.contains_key(&leader_sync), "answered once the group is stored");
        assert_eq!(self.c.group_state("g"), Some(GroupState::CompletingRebalance));
        self.ack_all();
        for (id, j) in std::iter::once(leader_sync)
            .zip(&joins[..1])
            .chain(follower_syncs.into_iter().zip(&joins[1..]))
        {
            match self.take(id) {
                Some(GroupResponse::Sync(r)) => {
                    assert_eq!(r.error, ErrorCode::None);
                    assert_eq!(r.assignment, assignment[&j.member_id]);
                }
                other => panic!("expected a sync answer, got {other:?}"),
            }
        }
        assert_eq!(self.c.group_state("g"), Some(GroupState::Stable));
        (joins.iter().map(|j| j.member_id.clone()).collect(), generation)
    }
}

fn join_request(group_id: &str, member_id: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group_id.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "roundrobin".into(),
            topics: vec!["t".into()],
            owned_partitions: vec![],
        }],
    }
}

fn join_answer(h: &mut Harness, id: u64) -> JoinGroupResponse {
    match h.take(id) {
        Some(GroupResponse::Join(r)) => r,
        other => panic!("expected a join answer, got {other:?}"),
    }
}

#[test]
fn three_members_join_sync_and_heartbeat() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([None, None, None]);
    assert_eq!(generation, 1);
    for id in &ids {
        assert_eq!(h.heartbeat(id, generation), ErrorCode::None);
    }
    assert_eq!(h.heartbeat(&ids[0], generation + 1), ErrorCode::IllegalGeneration);
    assert_eq!(check_commits_current_generation(&h.events), Ok(()));
}

#[test]
fn a_silent_member_is_removed_after_its_session_and_the_rest_rebalance() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([None, None, None]);
    h.tick(8_000);
    assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::None);
    assert_eq!(h.heartbeat(&ids[1], generation), ErrorCode::None);
    h.tick(12_999);
    assert_eq!(h.c.member_ids("g").len(), 3, "session of the third not yet over");
    assert_eq!(h.c.next_deadline(), Some(Millis(13_000)));
    h.tick(13_000); // last heartbeat at 3000 + 10s session
    assert_eq!(h.c.member_ids("g").len(), 2);
    assert_eq!(h.c.group_state("g"), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::RebalanceInProgress);
    let a = h.join(&ids[0], None);
    assert!(h.take(a).is_none(), "waits for the other member");
    let b = h.join(&ids[1], None);
    let (ja, jb) = (join_answer(&mut h, a), join_answer(&mut h, b));
    assert_eq!((ja.generation_id, jb.generation_id), (generation + 1, generation + 1));
    assert_eq!(ja.leader, ids[0]);
    assert_eq!(h.heartbeat(&ids[2], generation), ErrorCode::UnknownMemberId);
}

#[test]
fn a_stale_generation_commit_is_rejected() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([None, None, None]);
    let ok = h.commit(&ids[0], generation, 0, 10);
    assert!(h.take(ok).is_none(), "acknowledged only once durable");
    assert_eq!(h.fetch(0).offset, None);
    h.ack_all();
    assert_eq!(h.take(ok).map(|r| r.error()), Some(ErrorCode::None));
    let f = h.fetch(0);
    assert_eq!((f.offset, f.leader_epoch), (Some(Offset(10)), Some(Epoch(3))));
    let stale = h.commit(&ids[0], generation - 1, 0, 20);
    assert_eq!(h.take(stale).map(|r| r.error()), Some(ErrorCode::IllegalGeneration));
    let unknown = h.commit("nobody", generation, 0, 20);
    assert_eq!(h.take(unknown).map(|r| r.error()), Some(ErrorCode::UnknownMemberId));
    h.ack_all();
    assert_eq!(h.fetch(0).offset, Some(Offset(10)));
    assert_eq!(check_commits_current_generation(&h.events), Ok(()));
}

#[test]
fn with_the_generation_check_off_a_zombie_commit_is_accepted() {
    let mut h = Harness::new(config(false));
    let (ids, generation) = h.stable_group([None, None, None]);
    // The third member pauses past its session; the rest rebalance without it.
    h.tick(8_000);
    assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::None);
    assert_eq!(h.heartbeat(&ids[1], generation), ErrorCode::None);
    h.tick(13_000);
    let a = h.join(&ids[0], None);
    let b = h.join(&ids[1], None);
    assert_eq!(join_answer(&mut h, a).generation_id, generation + 1);
    assert_eq!(join_answer(&mut h, b).generation_id, generation + 1);
    // The zombie wakes and commits with its old generation.
    let zombie = h.commit(&ids[2], generation, 0, 99);
    h.ack_all();
    assert_eq!(h.take(zombie).map(|r| r.error()), Some(ErrorCode::None));
    assert_eq!(h.fetch(0).offset, Some(Offset(99)));
    assert!(matches!(
        check_commits_current_generation(&h.events),
        Err(GroupViolation::StaleCommit { commit_generation_id: 1, current_generation_id: 2, .. })
    ));
}

#[test]
fn a_static_member_restarting_within_its_session_keeps_generation_and_assignment() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([Some("i0"), Some("i1"), Some("i2")]);
    let before = h.events.len();
    h.tick(6_000);
    // i1's process restarts and rejoins without its member id.
    let j = h.join("", Some("i1"));
    assert!(h.take(j).is_none(), "answered once the group with the new id is stored");
    h.ack_all();
    let answer = join_answer(&mut h, j);
    assert_eq!(answer.error, ErrorCode::None);
    assert_eq!(answer.generation_id, generation);
    assert_ne!(answer.member_id, ids[1]);
    assert_eq!(h.c.group_state("g"), Some(GroupState::Stable), "no rebalance");
    let s = h.sync(&answer.member_id, generation, Vec::new());
    let expected = assign(
        AssignorKind::RoundRobin,
        &ids.iter()
            .map(|m| MemberSubscription {
                member_id: m.clone(),
                topics: vec!["t".into()],
                owned: vec![],
            })
            .collect::<Vec<_>>(),
        &BTreeMap::from([("t".to_string(), TOPIC_PARTITIONS)]),
    );
    match h.take(s) {
        Some(GroupResponse::Sync(r)) => assert_eq!(r.assignment, expected[&ids[1]]),
        other => panic!("expected a sync answer, got {other:?}"),
    }
    assert!(
        !h.events[before..].iter().any(|e| matches!(e, GroupEvent::GenerationStarted { .. })),
        "no new generation"
    );
    // The old incarnation is fenced.
    let hb = h.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: ids[1].clone(),
        group_instance_id: Some("i1".into()),
    }));
    assert_eq!(h.take(hb).map(|r| r.error()), Some(ErrorCode::FencedInstanceId));
}

#[test]
fn a_static_member_away_longer_than_its_session_is_removed_and_the_group_rebalances() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([Some("i0"), Some("i1"), Some("i2")]);
    h.tick(8_000);
    assert_eq!(h.heartbeat(&ids[0], generation), ErrorCode::None);
    assert_eq!(h.heartbeat(&ids[2], generation), ErrorCode::None);
    h.tick(13_000);
    assert_eq!(h.c.group_state("g"), Some(GroupState::PreparingRebalance));
    // Coming back late, i1 joins as a new member of the next generation.
    let late = h.join("", Some("i1"));
    let a = h.join(&ids[0], Some("i0"));
    let c = h.join(&ids[2], Some("i2"));
    let answers = [join_answer(&mut h, late), join_answer(&mut h, a), join_answer(&mut h, c)];
    assert!(answers.iter().all(|j| j.generation_id == generation + 1), "{answers:?}");
}

#[test]
fn commits_wait_out_the_sync_phase_but_heartbeats_do_not() {
    let mut h = Harness::new(CoordinatorConfig { initial_rebalance_delay_ms: 0, ..config(true) });
    let j = h.join("", None);
    let answer = join_answer(&mut h, j);
    assert_eq!(h.c.group_state("g"), Some(GroupState::CompletingRebalance));
    assert_eq!(h.heartbeat(&answer.member_id, answer.generation_id), ErrorCode::None);
    let c = h.commit(&answer.member_id, answer.generation_id, 0, 1);
    assert_eq!(h.take(c).map(|r| r.error()), Some(ErrorCode::RebalanceInProgress));
}

#[test]
fn a_duplicate_instance_id_fences_the_older_member() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([Some("i0"), Some("i1"), Some("i2")]);
    let dup = h.join("", Some("i2"));
    h.ack_all();
    let new_id = join_answer(&mut h, dup).member_id;
    for request in [
        GroupRequest::Join(join_request("g", &ids[2], Some("i2"))),
        GroupRequest::Sync(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: ids[2].clone(),
            group_instance_id: Some("i2".into()),
            assignments: vec![],
        }),
        GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: ids[2].clone(),
            group_instance_id: Some("i2".into()),
            offsets: vec![OffsetCommitPartition {
                tp: TopicPartition::new("t", 2),
                offset: Offset(5),
                leader_epoch: None,
            }],
        }),
        GroupRequest::Leave(LeaveGroupRequest {
            group_id: "g".into(),
            member_id: ids[2].clone(),
            group_instance_id: Some("i2".into()),
        }),
    ] {
        let id = h.send(request);
        assert_eq!(h.take(id).map(|r| r.error()), Some(ErrorCode::FencedInstanceId));
    }
    assert!(h.c.member_ids("g").contains(&new_id));
    assert_eq!(h.c.group_state("g"), Some(GroupState::Stable));
}

#[test]
fn a_new_coordinator_loading_the_offsets_records_serves_the_same_commits() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([Some("i0"), Some("i1"), Some("i2")]);
    for (i, id) in ids.iter().enumerate() {
        h.commit(id, generation, i as u32, 100 + i as u64);
    }
    h.ack_all();
    // One more commit that never becomes durable: not acknowledged, so it may be lost.
    let lost = h.commit(&ids[0], generation, 0, 500);
    assert!(h.take(lost).is_none());
    h.c.resign();
    h.pump();
    assert_eq!(h.take(lost).map(|r| r.error()), Some(ErrorCode::NotCoordinator));

    let bytes: Vec<bytes::Bytes> = h.log.iter().map(GroupRecord::encode).collect();
    let mut next = Harness::new(CoordinatorConfig { coordinator_epoch: 1, ..config(true) });
    next.now = Millis(20_000);
    next.c.load_bytes(next.now, &bytes).expect("the log is intact");
    for i in 0..3 {
        let f = next.fetch(i);
        assert_eq!(f.offset, Some(Offset(100 + u64::from(i))));
        assert_eq!(f.leader_epoch, Some(Epoch(3)));
    }
    assert_eq!(next.c.generation_id("g"), Some(generation));
    assert_eq!(next.c.group_state("g"), Some(GroupState::Stable));
    // Members carry on against the new coordinator.
    assert_eq!(next.heartbeat(&ids[0], generation), ErrorCode::None);
    let mut corrupt = bytes[0].to_vec();
    corrupt[5] ^= 1;
    let mut other = Harness::new(config(true));
    assert!(other.c.load_bytes(Millis(0), &[bytes::Bytes::from(corrupt)]).is_err());
}

#[test]
fn malformed_and_misrouted_requests_get_protocol_errors() {
    let mut h = Harness::new(CoordinatorConfig { num_offsets_partitions: 2, ..config(true) });
    let mine = if partition_for_group("g", 2) == 0 { "g" } else { "h" };
    let theirs = if mine == "g" { "h" } else { "g" };
    assert_ne!(partition_for_group(mine, 2), partition_for_group(theirs, 2));
    let cases = [
        (join_request("", "", None), ErrorCode::InvalidGroupId),
        (join_request(theirs, "", None), ErrorCode::NotCoordinator),
        (join_request(mine, "ghost", None), ErrorCode::UnknownMemberId),
        (
            JoinGroupRequest { session_timeout_ms: 1, ..join_request(mine, "", None) },
            ErrorCode::InvalidSessionTimeout,
        ),
        (
            JoinGroupRequest { protocols: vec![], ..join_request(mine, "", None) },
            ErrorCode::InconsistentGroupProtocol,
        ),
        (join_request(mine, "", Some("")), ErrorCode::InvalidRequest),
        (join_request(&"x".repeat(300), "", None), ErrorCode::InvalidGroupId),
    ];
    for (request, expected) in cases {
        let id = h.send(GroupRequest::Join(request.clone()));
        assert_eq!(h.take(id).map(|r| r.error()), Some(expected), "{request:?}");
    }
    let hb = h.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: String::new(),
        generation_id: 0,
        member_id: String::new(),
        group_instance_id: None,
    }));
    assert_eq!(h.take(hb).map(|r| r.error()), Some(ErrorCode::InvalidGroupId));
    let f = h.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
        group_id: String::new(),
        partitions: None,
    }));
    assert_eq!(h.take(f).map(|r| r.error()), Some(ErrorCode::InvalidGroupId));
}

#[test]
fn a_failed_append_is_not_acknowledged() {
    let mut h = Harness::new(config(true));
    let c = h.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: NO_GENERATION_ID,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![OffsetCommitPartition {
            tp: TopicPartition::new("t", 0),
            offset: Offset(7),
            leader_epoch: None,
        }],
    }));
    let token = h.appends.iter().find_map(|(t, _)| *t).expect("a commit append");
    h.c.on_offsets_append_failed(token, ErrorCode::RequestTimedOut);
    h.pump();
    assert_eq!(h.take(c).map(|r| r.error()), Some(ErrorCode::RequestTimedOut));
    assert_eq!(h.fetch(0).offset, None);
}

// ---- random request sequences ----

#[derive(Clone, Debug)]
enum Op {
    JoinNew {
        instance: Option<u8>,
    },
    Rejoin {
        member: usize,
    },
    Sync {
        member: usize,
        generation_delta: i8,
    },
    /// The current leader syncs with a sticky assignment of the current members.
    SyncLeader,
    Heartbeat {
        member: usize,
        generation_delta: i8,
    },
    Leave {
        member: usize,
    },
    Commit {
        member: usize,
        generation_delta: i8,
        partition: u32,
        offset: u64,
    },
    Fetch,
    Advance {
        ms: u64,
    },
    AckAll,
    Garbage {
        group_id: String,
        member_id: String,
    },
    Failover,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::option::of(0u8..3).prop_map(|instance| Op::JoinNew { instance }),
        (0usize..8).prop_map(|member| Op::Rejoin { member }),
        (0usize..8, -1i8..2)
            .prop_map(|(member, generation_delta)| Op::Sync { member, generation_delta }),
        (0usize..8, -1i8..2)
            .prop_map(|(member, generation_delta)| Op::Heartbeat { member, generation_delta }),
        (0usize..8).prop_map(|member| Op::Leave { member }),
        (0usize..8, -1i8..2, 0u32..TOPIC_PARTITIONS, 0u64..1000).prop_map(
            |(member, generation_delta, partition, offset)| Op::Commit {
                member,
                generation_delta,
                partition,
                offset
            }
        ),
        Just(Op::Fetch),
        Just(Op::SyncLeader),
        Just(Op::SyncLeader),
        (0u64..6_000).prop_map(|ms| Op::Advance { ms }),
        Just(Op::AckAll),
        ("[a-z]{0,3}", "[a-z.\\-0-9]{0,8}")
            .prop_map(|(group_id, member_id)| Op::Garbage { group_id, member_id }),
        Just(Op::Failover),
    ]
}

fn sticky_assignments(members: &[String]) -> Vec<SyncGroupAssignment> {
    let subs: Vec<MemberSubscription> = members
        .iter()
        .map(|id| MemberSubscription {
            member_id: id.clone(),
            topics: vec!["t".into()],
            owned: vec![],
        })
        .collect();
    let ppt = BTreeMap::from([("t".to_string(), TOPIC_PARTITIONS)]);
    assign(AssignorKind::Sticky, &subs, &ppt)
        .into_iter()
        .map(|(member_id, partitions)| SyncGroupAssignment { member_id, partitions })
        .collect()
}

/// Run the sequence; the committed-offsets model is asserted on every step, the group
/// invariants are returned for the caller to judge.
fn run_ops(ops: Vec<Op>, generation_check: bool) -> Result<(), GroupViolation> {
    let mut h = Harness::new(CoordinatorConfig {
        initial_rebalance_delay_ms: 1_000,
        ..config(generation_check)
    });
    // Every member id the coordinator ever handed out, including fenced and removed ones.
    let mut known: Vec<String> = Vec::new();
    let mut epoch = 0u32;
    for op in ops {
        let generation = h.c.generation_id("g").unwrap_or(0);
        let current = h.c.member_ids("g");
        let pick = |known: &Vec<String>, i: usize| {
            let from = if i < 6 && !current.is_empty() { &current } else { known };
            from.get(i % from.len().max(1)).cloned().unwrap_or_default()
        };
        match op {
            Op::JoinNew { instance } => {
                let name = instance.map(|i| format!("i{i}"));
                h.join("", name.as_deref());
            }
            Op::Rejoin { member } => {
                let m = pick(&known, member);
                h.join(&m, None);
            }
            Op::SyncLeader => {
                let leader = h.events.iter().rev().find_map(|e| match e {
                    GroupEvent::GenerationStarted { leader, .. } => Some(leader.clone()),
                    _ => None,
                });
                let m = leader.unwrap_or_default();
                let assignments = sticky_assignments(&h.c.member_ids("g"));
                h.sync(&m, generation, assignments);
            }
            Op::Sync { member, generation_delta } => {
                let m = pick(&known, member);
                let members = h.c.member_ids("g");
                let subs: Vec<MemberSubscription> = members
                    .iter()
                    .map(|id| MemberSubscription {
                        member_id: id.clone(),
                        topics: vec!["t".into()],
                        owned: vec![],
                    })
                    .collect();
                let a = assign(
                    AssignorKind::Sticky,
                    &subs,
                    &BTreeMap::from([("t".to_string(), TOPIC_PARTITIONS)]),
                );
                let assignments = a
                    .into_iter()
                    .map(|(member_id, partitions)| SyncGroupAssignment { member_id, partitions })
                    .collect();
                h.sync(&m, generation + i32::from(generation_delta), assignments);
            }
            Op::Heartbeat { member, generation_delta } => {
                let m = pick(&known, member);
                h.heartbeat(&m, generation + i32::from(generation_delta));
            }
            Op::Leave { member } => {
                let m = pick(&known, member);
                h.send(GroupRequest::Leave(LeaveGroupRequest {
                    group_id: "g".into(),
                    member_id: m,
                    group_instance_id: None,
                }));
            }
            Op::Commit { member, generation_delta, partition, offset } => {
                let m = pick(&known, member);
                h.commit(&m, generation + i32::from(generation_delta), partition, offset);
            }
            Op::Fetch => {
                h.fetch(0);
            }
            Op::Advance { ms } => {
                let now = h.now.0 + ms;
                h.tick(now);
            }
            Op::AckAll => h.ack_all(),
            Op::Garbage { group_id, member_id } => {
                h.send(GroupRequest::Join(join_request(&group_id, &member_id, None)));
                h.send(GroupRequest::Heartbeat(HeartbeatRequest {
                    group_id,
                    generation_id: -1,
                    member_id,
                    group_instance_id: None,
                }));
            }
            Op::Failover => {
                h.c.resign();
                h.pump();
                h.appends.retain(|(t, _)| t.is_none());
                epoch += 1;
                let mut next = GroupCoordinator::new(CoordinatorConfig {
                    coordinator_epoch: epoch,
                    ..h.c.config().clone()
                });
                let bytes: Vec<bytes::Bytes> = h.log.iter().map(GroupRecord::encode).collect();
                next.load_bytes(h.now, &bytes).expect("the log is intact");
                h.c = next;
            }
        }
        for id in h.c.member_ids("g") {
            if !known.contains(&id) {
                known.push(id);
            }
        }
        // Committed offsets equal the last durable commit of each partition.
        let mut model: BTreeMap<TopicPartition, Offset> = BTreeMap::new();
        for r in &h.log {
            if let GroupRecord::OffsetCommit { tp, offset, .. } = r {
                model.insert(tp.clone(), *offset);
            }
        }
        for p in 0..TOPIC_PARTITIONS {
            let tp = TopicPartition::new("t", p);
            assert_eq!(h.c.committed("g", &tp), model.get(&tp).copied(), "{tp}");
        }
    }
    check_commits_current_generation(&h.events)
}

proptest! {
    // Cheap (well under a second); more cases reach synced generations and commits.
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn random_request_sequences_never_panic_and_keep_the_invariants(
        ops in proptest::collection::vec(arb_op(), 1..80)
    ) {
        let verdict = run_ops(ops, true);
        prop_assert!(verdict.is_ok(), "group invariants broken with the check on: {:?}", verdict);
    }
}

/// The planted bug: with the generation check off, some random sequence gets a stale
/// commit accepted, and the checker must say so (CORRECTNESS.md "zombie commit").
#[test]
fn with_the_generation_check_off_random_sequences_expose_a_stale_commit() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(arb_op(), 1..80);
    let found = (0..2_000).find_map(|_| {
        let ops = strategy.new_tree(&mut runner).expect("strategy generates").current();
        run_ops(ops, false).err()
    });
    assert!(matches!(found, Some(GroupViolation::StaleCommit { .. })), "found {found:?}");
}

/// swarm seed 887: a replacement answered before its store failed left the new id only in
/// memory; after a failover every member was fenced. Kafka answers once stored and, when the
/// store fails, puts the old member id back and returns the error.
#[test]
fn a_static_replacement_whose_store_fails_is_reverted() {
    let mut h = Harness::new(config(true));
    let (ids, generation) = h.stable_group([Some("i0"), Some("i1"), Some("i2")]);
    let j = h.join("", Some("i1"));
    let token = h.appends.iter().find_map(|(t, _)| *t).expect("the group's store");
    h.appends.clear();
    h.c.on_offsets_append_failed(token, ErrorCode::CoordinatorNotAvailable);
    h.pump();
    match h.take(j) {
        Some(r) => assert_eq!(r.error(), ErrorCode::CoordinatorNotAvailable),
        None => panic!("the joiner hears the failure"),
    }
    assert_eq!(h.heartbeat(&ids[1], generation), ErrorCode::None, "the old id is back");
    let members = h.c.member_ids("g");
    assert_eq!(members.len(), 3);
    assert!(members.contains(&ids[1]), "{members:?}");
    assert_eq!(h.c.group_state("g"), Some(GroupState::Stable));
}

/// swarm seeds 6155, 9505: the leader's SyncGroup was answered before the group was stored;
/// the store failed and a coordinator that took over fenced the generation's members.
/// Kafka's doSyncGroup answers in the store's callback and, when it fails, every member
/// hears the error and the group rebalances.
#[test]
fn a_sync_whose_store_fails_is_answered_with_the_error_and_the_group_rebalances() {
    let mut h = Harness::new(config(true));
    let a = h.join("", None);
    h.tick(3_000);
    let leader = join_answer(&mut h, a);
    let s = h.sync(&leader.member_id, leader.generation_id, Vec::new());
    assert!(h.take(s).is_none(), "answered once stored");
    let token = h.appends.iter().find_map(|(t, _)| *t).expect("the assignment's store");
    h.appends.clear();
    h.c.on_offsets_append_failed(token, ErrorCode::CoordinatorNotAvailable);
    h.pump();
    assert_eq!(h.take(s).map(|r| r.error()), Some(ErrorCode::CoordinatorNotAvailable));
    assert_eq!(h.c.group_state("g"), Some(GroupState::PreparingRebalance));
}
