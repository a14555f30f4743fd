//! The broker hosting group coordinators, one test per claim: FindCoordinator, join and
//! sync through the broker, commits acknowledged only once durable (single broker) or
//! replicated (cluster), reload after a restart, after compaction and after leadership
//! moves away and back, NotCoordinator, malformed ids.

use super::*;
use crate::controller::MetadataRecord;
use crate::group::partition_for_group;
use crate::log::FlushPolicy;
use crate::types::{BrokerEpoch, PartitionEpoch};

const DELAY_MS: u64 = 100;

fn settings(offsets_partitions: u32) -> GroupSettings {
    GroupSettings {
        offsets_partitions,
        initial_rebalance_delay_ms: DELAY_MS,
        ..GroupSettings::default()
    }
}

fn data_topic() -> TopicSpec {
    TopicSpec {
        name: "t".into(),
        partitions: 4,
        log: LogConfig::default(),
        replication_factor: 1,
        min_insync_replicas: 1,
        unclean_leader_election: false,
    }
}

fn standalone_config(offsets_log: LogConfig) -> BrokerConfig {
    let settings = settings(3);
    BrokerConfig {
        node_id: NodeId(0),
        topics: vec![data_topic(), settings.offsets_topic(1, offsets_log)],
        fetch_max_wait_ms: 500,
        cluster: None,
        groups: Some(settings),
    }
}

fn standalone(flush: FlushPolicy) -> Broker {
    let config = standalone_config(LogConfig { flush, ..LogConfig::default() });
    Broker::new(config, 1, BTreeMap::new(), &BTreeMap::new(), Millis(0))
}

/// Sends one request; returns everything the broker output.
fn send(
    b: &mut Broker,
    now: u64,
    conn: u64,
    correlation_id: u32,
    body: Request,
) -> Vec<BrokerOutput> {
    let frame = RequestFrame { correlation_id, client_id: NodeId(9), body };
    b.on_request(Millis(now), ConnId(conn), frame);
    b.take_outputs()
}

fn answers(outputs: &[BrokerOutput]) -> BTreeMap<u32, Response> {
    outputs
        .iter()
        .filter_map(|o| match o {
            BrokerOutput::Respond { frame, .. } => Some((frame.correlation_id, frame.body.clone())),
            _ => None,
        })
        .collect()
}

/// Completes every disk operation in `outputs`; returns what that produced.
fn finish_disk(b: &mut Broker, now: u64, outputs: &[BrokerOutput]) -> Vec<BrokerOutput> {
    for o in outputs {
        if let BrokerOutput::Disk { token, .. } = o {
            b.on_disk_done(Millis(now), *token, Ok(()));
        }
    }
    b.take_outputs()
}

fn join(group_id: &str, member_id: &str) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group_id: group_id.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupProtocol {
            name: "roundrobin".into(),
            topics: vec!["t".into()],
            owned_partitions: Vec::new(),
        }],
    })
}

fn commit(group_id: &str, member_id: &str, generation_id: i32, offset: u64) -> Request {
    Request::OffsetCommit(OffsetCommitRequest {
        group_id: group_id.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        offsets: vec![OffsetCommitPartition {
            tp: TopicPartition::new("t", 1),
            offset: Offset(offset),
            leader_epoch: None,
        }],
    })
}

fn offset_fetch(group_id: &str) -> Request {
    Request::OffsetFetch(OffsetFetchRequest {
        group_id: group_id.into(),
        partitions: Some(vec![TopicPartition::new("t", 1)]),
    })
}

fn commit_error(response: &Response) -> ErrorCode {
    match response {
        Response::OffsetCommit(r) => r.partitions[0].1,
        other => panic!("not a commit answer: {other:?}"),
    }
}

/// The committed offset of t-1 for `group_id`, or the fetch's error.
fn fetched(b: &mut Broker, now: u64, group_id: &str) -> Result<Option<Offset>, ErrorCode> {
    match answers(&send(b, now, 1, 99, offset_fetch(group_id))).remove(&99) {
        Some(Response::OffsetFetch(r)) if r.error == ErrorCode::None => Ok(r.partitions[0].offset),
        Some(Response::OffsetFetch(r)) => Err(r.error),
        other => panic!("not an offset fetch answer: {other:?}"),
    }
}

fn find(b: &mut Broker, key: &str) -> FindCoordinatorResponse {
    let body = Request::FindCoordinator(FindCoordinatorRequest { key: key.into() });
    match answers(&send(b, 0, 1, 50, body)).remove(&50) {
        Some(Response::FindCoordinator(r)) => r,
        other => panic!("not a FindCoordinator answer: {other:?}"),
    }
}

/// Two members join in the initial window and sync; returns (leader, follower, generation)
/// after checking both got an assignment covering t's partitions.
fn two_member_group(b: &mut Broker, group_id: &str) -> (String, String, i32) {
    let mut out = send(b, 0, 1, 1, join(group_id, ""));
    out.extend(send(b, 0, 2, 2, join(group_id, "")));
    assert!(answers(&out).is_empty(), "joins answered before the initial rebalance delay");
    b.tick(Millis(DELAY_MS));
    let joins = answers(&b.take_outputs());
    let [Some(Response::JoinGroup(a)), Some(Response::JoinGroup(c))] =
        [1, 2].map(|i| joins.get(&i).cloned())
    else {
        panic!("both joins answered: {joins:?}")
    };
    assert_eq!((a.error, c.error), (ErrorCode::None, ErrorCode::None));
    let (leader, follower) = if a.member_id == a.leader { (a, c) } else { (c, a) };
    assert_eq!(leader.members.len(), 2, "the leader sees both members");
    let sync = |member: &str, assignments| {
        Request::SyncGroup(SyncGroupRequest {
            group_id: group_id.into(),
            generation_id: leader.generation_id,
            member_id: member.into(),
            group_instance_id: None,
            assignments,
        })
    };
    let out = send(b, DELAY_MS, 2, 3, sync(&follower.member_id, Vec::new()));
    assert!(answers(&out).is_empty(), "the follower's sync waits for the leader");
    let assignments = vec![
        SyncGroupAssignment {
            member_id: leader.member_id.clone(),
            partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 2)],
        },
        SyncGroupAssignment {
            member_id: follower.member_id.clone(),
            partitions: vec![TopicPartition::new("t", 1), TopicPartition::new("t", 3)],
        },
    ];
    let mut out = send(b, DELAY_MS, 1, 4, sync(&leader.member_id, assignments));
    out.extend(finish_disk(b, DELAY_MS, &out));
    let syncs = answers(&out);
    for (id, first) in [(4, 0), (3, 1)] {
        match syncs.get(&id) {
            Some(Response::SyncGroup(r)) => {
                assert_eq!(r.error, ErrorCode::None);
                assert_eq!(
                    r.assignment,
                    vec![TopicPartition::new("t", first), TopicPartition::new("t", first + 2)]
                );
            }
            other => panic!("sync {id} not answered: {other:?}"),
        }
    }
    (leader.member_id, follower.member_id, leader.generation_id)
}

#[test]
fn a_single_broker_coordinates_every_group_and_refuses_malformed_ids() {
    let mut b = standalone(FlushPolicy::Never);
    b.take_outputs();
    assert_eq!(
        find(&mut b, "g"),
        FindCoordinatorResponse { error: ErrorCode::None, node_id: Some(NodeId(0)) }
    );
    assert!(b.coordinates("g"));
    assert_eq!(find(&mut b, "").error, ErrorCode::InvalidGroupId);
    let long = "x".repeat(250);
    assert_eq!(find(&mut b, &long).error, ErrorCode::InvalidGroupId);
    let out = answers(&send(&mut b, 0, 1, 7, join("", "")));
    assert!(matches!(&out[&7], Response::JoinGroup(r) if r.error == ErrorCode::InvalidGroupId));
    let out = answers(&send(&mut b, 0, 1, 8, commit(&long, "m", 1, 5)));
    assert_eq!(commit_error(&out[&8]), ErrorCode::InvalidGroupId);
    assert_eq!(fetched(&mut b, 0, ""), Err(ErrorCode::InvalidGroupId));
}

#[test]
fn without_group_settings_group_requests_get_coordinator_not_available() {
    let mut config = standalone_config(LogConfig::default());
    config.groups = None;
    let mut b = Broker::new(config, 1, BTreeMap::new(), &BTreeMap::new(), Millis(0));
    assert_eq!(find(&mut b, "g").error, ErrorCode::CoordinatorNotAvailable);
    assert_eq!(fetched(&mut b, 0, "g"), Err(ErrorCode::CoordinatorNotAvailable));
}

#[test]
fn two_members_join_and_sync_through_the_broker() {
    let mut b = standalone(FlushPolicy::Never);
    b.take_outputs();
    let (leader, follower, generation) = two_member_group(&mut b, "g");
    assert_ne!(leader, follower);
    assert_eq!(generation, 1);
}

#[test]
fn a_commit_is_acknowledged_only_once_its_append_is_durable() {
    let mut b = standalone(FlushPolicy::EveryBatch);
    b.take_outputs();
    let (_, follower, generation) = two_member_group(&mut b, "g");
    let out = send(&mut b, 200, 2, 10, commit("g", &follower, generation, 42));
    assert!(answers(&out).is_empty(), "commit acknowledged before its flush");
    let facts = out.iter().filter(|o| matches!(o, BrokerOutput::Fact(Fact::Group { .. }))).count();
    assert_eq!(facts, 1, "the accepted commit is reported to the checker");
    assert_eq!(fetched(&mut b, 200, "g"), Ok(None), "an unacknowledged commit is visible");
    let done = answers(&finish_disk(&mut b, 201, &out));
    assert_eq!(commit_error(&done[&10]), ErrorCode::None);
    assert_eq!(fetched(&mut b, 201, "g"), Ok(Some(Offset(42))));
}

#[test]
fn a_failed_flush_fails_the_commit() {
    let mut b = standalone(FlushPolicy::EveryBatch);
    b.take_outputs();
    let out = send(&mut b, 0, 1, 10, commit("g", "", NO_GENERATION_ID, 7));
    let token = out.iter().find_map(|o| match o {
        BrokerOutput::Disk { token, .. } => Some(*token),
        _ => None,
    });
    b.on_disk_done(Millis(1), token.expect("the append flushes"), Err("EIO".into()));
    let done = answers(&b.take_outputs());
    assert_eq!(commit_error(&done[&10]), ErrorCode::NotCoordinator);
    assert!(!b.coordinates("g"), "an offline offsets partition still coordinates");
}

#[test]
fn a_closed_connection_forgets_its_waiting_join() {
    let mut b = standalone(FlushPolicy::Never);
    b.take_outputs();
    send(&mut b, 0, 1, 1, join("g", ""));
    b.on_connection_closed(ConnId(1));
    b.tick(Millis(DELAY_MS));
    assert!(answers(&b.take_outputs()).is_empty(), "answered a closed connection");
}

/// Takes the broker's logs, as a restart recovers them.
fn logs_of(b: Broker) -> BTreeMap<TopicPartition, PartitionLog> {
    b.partitions.into_iter().map(|(tp, p)| (tp, p.log)).collect()
}

#[test]
fn a_rebuilt_broker_reloads_commits_also_after_compaction() {
    // Small segments so commits roll into closed, compactable segments.
    let log =
        LogConfig { flush: FlushPolicy::EveryBatch, segment_bytes: 256, ..LogConfig::default() };
    let config = standalone_config(log);
    let mut b = Broker::new(config.clone(), 1, BTreeMap::new(), &BTreeMap::new(), Millis(0));
    b.take_outputs();
    for (i, offset) in (10..40).enumerate() {
        let now = 1 + i as u64;
        let out = send(&mut b, now, 1, i as u32, commit("g", "", NO_GENERATION_ID, offset));
        let done = answers(&finish_disk(&mut b, now, &out));
        assert_eq!(commit_error(&done[&(i as u32)]), ErrorCode::None);
    }
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition_for_group("g", 3));
    let before = b.partitions[&tp].log.segment_base_offsets().len();
    assert!(before > 2, "commits did not roll segments");
    let size_before = b.partitions[&tp].log.size_bytes();
    b.tick(Millis(100));
    let out = b.take_outputs();
    finish_disk(&mut b, 100, &out);
    assert!(b.partitions[&tp].log.size_bytes() < size_before, "compaction removed nothing");
    assert_eq!(fetched(&mut b, 100, "g"), Ok(Some(Offset(39))));
    let mut rebuilt = Broker::new(config, 2, logs_of(b), &BTreeMap::new(), Millis(200));
    assert_eq!(fetched(&mut rebuilt, 200, "g"), Ok(Some(Offset(39))));
}

#[test]
fn a_corrupt_group_record_is_skipped_on_load() {
    let config = standalone_config(LogConfig::default());
    let mut b = Broker::new(config.clone(), 1, BTreeMap::new(), &BTreeMap::new(), Millis(0));
    let out = send(&mut b, 0, 1, 1, commit("g", "", NO_GENERATION_ID, 5));
    assert_eq!(commit_error(&answers(&out)[&1]), ErrorCode::None);
    // A record whose value is not a group record, in a valid batch.
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition_for_group("g", 3));
    let mut builder = crate::record::BatchBuilder::new();
    builder.push(0, Some(b"o/g/t-1"), Some(b"garbage"), &[]);
    let partition = b.partitions.get_mut(&tp).expect("offsets partition");
    partition.log.append_as_leader(builder.build(), Epoch(0), Millis(1)).expect("append");
    let mut rebuilt = Broker::new(config, 2, logs_of(b), &BTreeMap::new(), Millis(2));
    assert_eq!(fetched(&mut rebuilt, 2, "g"), Ok(Some(Offset(5))));
}

/// Cluster mode: broker 0 (epoch 1) with broker 1 (epoch 5); offsets partition 0 on
/// replicas [0, 1] led by 0, partition 1 led by 1.
fn cluster_broker() -> Broker {
    let settings = settings(2);
    let mut offsets = settings.offsets_topic(2, LogConfig::default());
    offsets.min_insync_replicas = 1;
    let config = BrokerConfig {
        node_id: NodeId(0),
        topics: vec![offsets],
        fetch_max_wait_ms: 500,
        cluster: Some(ClusterSettings::default()),
        groups: Some(settings),
    };
    let create = MetadataRecord::CreateTopic {
        name: OFFSETS_TOPIC.into(),
        partitions: 2,
        replication_factor: 2,
        assignments: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(1), NodeId(0)]],
        unclean_leader_election: false,
        min_insync_replicas: 1,
    };
    super::tests::registered_broker(config, create)
}

/// Moves offsets partition 0's leadership to `leader` with `epoch`.
fn move_leader(b: &mut Broker, index: u64, leader: u32, epoch: u32) -> Vec<BrokerOutput> {
    let (_, image) = b.metadata_image().expect("cluster mode");
    let mut image = image.clone();
    let change = MetadataRecord::PartitionChange {
        tp: TopicPartition::new(OFFSETS_TOPIC, 0),
        leader: Some(NodeId(leader)),
        leader_epoch: Epoch(epoch),
        partition_epoch: PartitionEpoch(epoch),
        isr: vec![NodeId(0), NodeId(1)],
        elr: Vec::new(),
        last_known_leader: None,
        unclean: false,
    };
    image.apply(&change).expect("partition change");
    b.apply_metadata(Millis(index), index, image);
    b.take_outputs()
}

/// Broker 1 fetches offsets partition 0 from `offset` as a follower replica.
fn follower_fetch(b: &mut Broker, now: u64, offset: u64) -> Vec<BrokerOutput> {
    let body = Request::Fetch(FetchRequest {
        replica_id: Some(NodeId(1)),
        replica_epoch: Some(BrokerEpoch(5)),
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition {
            tp: TopicPartition::new(OFFSETS_TOPIC, 0),
            fetch_offset: Offset(offset),
            partition_max_bytes: 1 << 20,
            current_leader_epoch: None,
        }],
    });
    send(b, now, 7, 500 + offset as u32, body)
}

// "b" hashes to offsets partition 0 of 2 (98 % 2), "a" to partition 1 (97 % 2).
const LED_GROUP: &str = "b";
const OTHER_GROUP: &str = "a";

#[test]
fn find_coordinator_and_not_coordinator_follow_the_offsets_partition_leaders() {
    assert_eq!(partition_for_group(LED_GROUP, 2), 0);
    assert_eq!(partition_for_group(OTHER_GROUP, 2), 1);
    let mut b = cluster_broker();
    assert_eq!(find(&mut b, LED_GROUP).node_id, Some(NodeId(0)));
    assert_eq!(find(&mut b, OTHER_GROUP).node_id, Some(NodeId(1)));
    assert_eq!(fetched(&mut b, 3, OTHER_GROUP), Err(ErrorCode::NotCoordinator));
    let out = answers(&send(&mut b, 3, 1, 4, join(OTHER_GROUP, "")));
    assert!(matches!(&out[&4], Response::JoinGroup(r) if r.error == ErrorCode::NotCoordinator));
    assert_eq!(fetched(&mut b, 3, LED_GROUP), Ok(None));
}

#[test]
fn a_cluster_commit_waits_for_the_hw_and_survives_leadership_moving_away_and_back() {
    let mut b = cluster_broker();
    let out = send(&mut b, 3, 1, 10, commit(LED_GROUP, "", NO_GENERATION_ID, 42));
    assert!(answers(&out).is_empty(), "acknowledged before the follower copied it");
    let out = follower_fetch(&mut b, 4, 0);
    assert!(!answers(&out).contains_key(&10), "acknowledged before the follower's LEO passed it");
    let out = follower_fetch(&mut b, 5, 1);
    assert_eq!(commit_error(&answers(&out)[&10]), ErrorCode::None);
    assert_eq!(fetched(&mut b, 5, LED_GROUP), Ok(Some(Offset(42))));

    move_leader(&mut b, 11, 1, 1);
    assert!(!b.coordinates(LED_GROUP));
    assert_eq!(fetched(&mut b, 6, LED_GROUP), Err(ErrorCode::NotCoordinator));
    move_leader(&mut b, 12, 0, 2);
    assert!(b.coordinates(LED_GROUP), "the new leader did not load");
    assert_eq!(fetched(&mut b, 7, LED_GROUP), Ok(Some(Offset(42))));
}

#[test]
fn a_commit_waiting_for_replication_fails_when_leadership_moves() {
    let mut b = cluster_broker();
    let out = send(&mut b, 3, 1, 10, commit(LED_GROUP, "", NO_GENERATION_ID, 42));
    assert!(answers(&out).is_empty());
    let out = answers(&move_leader(&mut b, 11, 1, 1));
    assert_eq!(commit_error(&out[&10]), ErrorCode::NotCoordinator);
}

#[test]
fn a_commit_the_follower_never_copies_times_out_as_coordinator_not_available() {
    let mut b = cluster_broker();
    let out = send(&mut b, 3, 1, 10, commit(LED_GROUP, "", NO_GENERATION_ID, 42));
    assert!(answers(&out).is_empty());
    let timeout_ms = GroupSettings::default().offsets_commit_timeout_ms;
    b.tick(Millis(3 + timeout_ms));
    let out = answers(&b.take_outputs());
    assert_eq!(commit_error(&out[&10]), ErrorCode::CoordinatorNotAvailable);
    assert!(b.coordinates(LED_GROUP), "a timed-out append does not end the coordinator");
}

#[test]
fn a_new_leader_loads_only_once_the_records_it_inherited_are_committed() {
    let mut b = cluster_broker();
    send(&mut b, 3, 1, 10, commit(LED_GROUP, "", NO_GENERATION_ID, 42));
    follower_fetch(&mut b, 4, 0); // copied by broker 1, HW still 0
    let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
    assert_eq!((b.high_watermark(&tp), b.log_end_offset(&tp)), (Some(Offset(0)), Some(Offset(1))));
    move_leader(&mut b, 11, 1, 1);
    move_leader(&mut b, 12, 0, 2);
    assert_eq!(fetched(&mut b, 5, LED_GROUP), Err(ErrorCode::CoordinatorLoadInProgress));
    let out = answers(&send(&mut b, 5, 1, 11, join(LED_GROUP, "")));
    assert!(
        matches!(&out[&11], Response::JoinGroup(r) if r.error == ErrorCode::CoordinatorLoadInProgress)
    );
    follower_fetch(&mut b, 6, 1); // broker 1 reached the LEO: the HW passes the commit
    assert!(b.coordinates(LED_GROUP));
    assert_eq!(fetched(&mut b, 6, LED_GROUP), Ok(Some(Offset(42))));
}

#[test]
fn a_waiting_join_is_answered_not_coordinator_in_join_shape_when_leadership_moves() {
    let mut b = cluster_broker();
    let out = send(&mut b, 3, 1, 20, join(LED_GROUP, ""));
    assert!(answers(&out).is_empty(), "the join waits for the initial rebalance delay");
    let out = answers(&move_leader(&mut b, 11, 1, 1));
    assert!(matches!(&out[&20], Response::JoinGroup(r) if r.error == ErrorCode::NotCoordinator));
}
