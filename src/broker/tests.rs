//! Broker claims, one test each: acks, HW gating under flush-every-batch, idempotent
//! dedup, offline on disk errors, fetch parking, metadata.

use super::*;
use crate::log::FlushPolicy;
use crate::record::BatchBuilder;

fn broker(flush: FlushPolicy) -> Broker {
    let log = LogConfig { flush, ..LogConfig::default() };
    let config = BrokerConfig {
        node_id: NodeId(0),
        topics: vec![TopicSpec {
            name: "t".into(),
            partitions: 2,
            log,
            replication_factor: 1,
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }],
        fetch_max_wait_ms: 500,
        cluster: None,
        groups: None,
    };
    Broker::new(config, 1, BTreeMap::new(), &BTreeMap::new(), Millis(0))
}

fn batch(values: &[&str], producer: Option<(i64, i32)>) -> Bytes {
    let mut builder = match producer {
        Some((id, seq)) => BatchBuilder::idempotent(id, 0, seq),
        None => BatchBuilder::new(),
    };
    for value in values {
        builder.push(0, None, Some(value.as_bytes()), &[]);
    }
    builder.build().into_bytes()
}

fn produce(b: &mut Broker, correlation_id: u32, acks: Acks, records: Bytes) {
    let frame = RequestFrame {
        correlation_id,
        client_id: NodeId(9),
        body: Request::Produce(ProduceRequest {
            acks,
            timeout_ms: 1000,
            partitions: vec![ProducePartition { tp: TopicPartition::new("t", 0), records }],
        }),
    };
    b.on_request(Millis(1), ConnId(1), frame);
}

fn responses(outputs: &[BrokerOutput]) -> Vec<&ResponseFrame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            BrokerOutput::Respond { frame, .. } => Some(frame),
            _ => None,
        })
        .collect()
}

fn disk_tokens(outputs: &[BrokerOutput]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            BrokerOutput::Disk { token, .. } => Some(*token),
            _ => None,
        })
        .collect()
}

fn produce_offset(frame: &ResponseFrame) -> (ErrorCode, Option<Offset>) {
    match &frame.body {
        Response::Produce(r) => (r.partitions[0].error, r.partitions[0].base_offset),
        other => panic!("not a produce response: {other:?}"),
    }
}

#[test]
fn acks_one_without_flush_answers_at_once_and_moves_the_hw() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    produce(&mut b, 7, Acks::One, batch(&["a", "b"], None));
    let out = b.take_outputs();
    let frames = responses(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(produce_offset(frames[0]), (ErrorCode::None, Some(Offset(0))));
    assert_eq!(b.high_watermark(&TopicPartition::new("t", 0)), Some(Offset(2)));
}

#[test]
fn flush_every_batch_holds_ack_and_hw_until_the_sync_completes() {
    let mut b = broker(FlushPolicy::EveryBatch);
    b.take_outputs();
    produce(&mut b, 7, Acks::One, batch(&["a"], None));
    let out = b.take_outputs();
    assert!(responses(&out).is_empty(), "acked before the fsync");
    let tp = TopicPartition::new("t", 0);
    assert_eq!(b.high_watermark(&tp), Some(Offset(0)), "hw moved before the fsync");
    for token in disk_tokens(&out) {
        b.on_disk_done(Millis(2), token, Ok(()));
    }
    let out = b.take_outputs();
    assert_eq!(produce_offset(responses(&out)[0]), (ErrorCode::None, Some(Offset(0))));
    assert_eq!(b.high_watermark(&tp), Some(Offset(1)));
}

#[test]
fn acks_zero_gets_no_response() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    produce(&mut b, 7, Acks::Zero, batch(&["a"], None));
    assert!(responses(&b.take_outputs()).is_empty());
}

#[test]
fn a_retried_idempotent_batch_is_acked_with_its_original_offset() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    produce(&mut b, 1, Acks::All, batch(&["x"], None));
    produce(&mut b, 2, Acks::All, batch(&["a", "b"], Some((5, 0))));
    produce(&mut b, 3, Acks::All, batch(&["a", "b"], Some((5, 0))));
    let out = b.take_outputs();
    let offsets: Vec<_> = responses(&out).iter().map(|f| produce_offset(f)).collect();
    assert_eq!(offsets[1], (ErrorCode::None, Some(Offset(1))));
    assert_eq!(offsets[2], (ErrorCode::None, Some(Offset(1))), "duplicate appended again");
    assert_eq!(b.log_end_offset(&TopicPartition::new("t", 0)), Some(Offset(3)));
}

#[test]
fn a_sequence_gap_is_refused() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    produce(&mut b, 1, Acks::All, batch(&["a"], Some((5, 0))));
    produce(&mut b, 2, Acks::All, batch(&["c"], Some((5, 2))));
    let out = b.take_outputs();
    let second = produce_offset(responses(&out)[1]);
    assert_eq!(second.0, ErrorCode::OutOfOrderSequenceNumber);
}

#[test]
fn a_disk_error_takes_the_partition_offline_and_the_waiting_produce_is_indeterminate() {
    let mut b = broker(FlushPolicy::EveryBatch);
    b.take_outputs();
    produce(&mut b, 7, Acks::One, batch(&["a"], None));
    let out = b.take_outputs();
    let token = disk_tokens(&out)[0];
    b.on_disk_done(Millis(2), token, Err("EIO".into()));
    let out = b.take_outputs();
    let (error, offset) = produce_offset(responses(&out)[0]);
    assert_eq!(error, ErrorCode::KafkaStorageError);
    assert_eq!(error.produce_outcome(), Outcome::Indeterminate);
    assert_eq!(offset, None);
    let tp = TopicPartition::new("t", 0);
    assert!(b.is_offline(&tp));
    produce(&mut b, 8, Acks::One, batch(&["b"], None));
    let out = b.take_outputs();
    assert_eq!(produce_offset(responses(&out)[0]).0, ErrorCode::KafkaStorageError);
}

#[test]
fn an_empty_fetch_parks_until_data_arrives_or_it_expires() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    let fetch = |offset| RequestFrame {
        correlation_id: 40,
        client_id: NodeId(9),
        body: Request::Fetch(FetchRequest {
            replica_id: None,
            replica_epoch: None,
            max_wait_ms: 300,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                tp: TopicPartition::new("t", 0),
                fetch_offset: Offset(offset),
                partition_max_bytes: 1 << 20,
                current_leader_epoch: None,
            }],
        }),
    };
    b.on_request(Millis(0), ConnId(2), fetch(0));
    assert!(responses(&b.take_outputs()).is_empty(), "an empty fetch answered at once");
    assert_eq!(b.next_wakeup(), Some(Millis(300)));
    produce(&mut b, 7, Acks::One, batch(&["a"], None));
    let out = b.take_outputs();
    let fetched = responses(&out).into_iter().find(|f| f.correlation_id == 40).expect("woken");
    match &fetched.body {
        Response::Fetch(r) => {
            assert_eq!(r.partitions[0].high_watermark, Offset(1));
            assert!(!r.partitions[0].records.is_empty());
        }
        other => panic!("{other:?}"),
    }
    b.on_request(Millis(10), ConnId(2), fetch(1));
    b.tick(Millis(311));
    assert_eq!(responses(&b.take_outputs()).len(), 1, "a parked fetch never expired");
}

#[test]
fn fetch_beyond_the_log_end_is_out_of_range() {
    let mut b = broker(FlushPolicy::Never);
    b.take_outputs();
    let frame = consumer_fetch(1, 5, None);
    b.on_request(Millis(0), ConnId(2), frame);
    let out = b.take_outputs();
    match &responses(&out)[0].body {
        Response::Fetch(r) => assert_eq!(r.partitions[0].error, ErrorCode::OffsetOutOfRange),
        other => panic!("{other:?}"),
    }
}

#[test]
fn producer_ids_differ_across_incarnations() {
    let mut first = broker(FlushPolicy::Never);
    let config = first.config.clone();
    let mut second = Broker::new(config, 2, BTreeMap::new(), &BTreeMap::new(), Millis(0));
    assert_ne!(first.init_producer_id().producer_id, second.init_producer_id().producer_id);
}

/// Cluster mode: broker 0, registered with epoch 1, leads t-0 with broker 1 (epoch 5) as
/// its follower.
fn cluster_leader() -> Broker {
    cluster_t(false, [NodeId(0), NodeId(1)])
}

/// Cluster mode: broker 0 follows broker 1 (the leader) on t-0.
fn cluster_follower(follower_fetch: bool) -> Broker {
    cluster_t(follower_fetch, [NodeId(1), NodeId(0)])
}

/// Broker 0 with topic t (one partition, replicas in `replicas` order, the first leads).
fn cluster_t(follower_fetch: bool, replicas: [NodeId; 2]) -> Broker {
    let config = BrokerConfig {
        node_id: NodeId(0),
        topics: vec![TopicSpec {
            name: "t".into(),
            partitions: 1,
            log: LogConfig::default(),
            replication_factor: 2,
            min_insync_replicas: 1,
            unclean_leader_election: false,
        }],
        fetch_max_wait_ms: 500,
        cluster: Some(ClusterSettings { follower_fetch, ..ClusterSettings::default() }),
        groups: None,
    };
    let create = crate::controller::MetadataRecord::CreateTopic {
        name: "t".into(),
        partitions: 1,
        replication_factor: 2,
        assignments: vec![replicas.to_vec()],
        unclean_leader_election: false,
        min_insync_replicas: 1,
    };
    registered_broker(config, create)
}

/// Cluster mode: broker 0 built from `config` and registered with epoch 1, after applying
/// an image (index 10) where brokers 0 (epoch 1) and 1 (epoch 5) are registered and
/// `create` made a topic.
pub(super) fn registered_broker(
    config: BrokerConfig,
    create: crate::controller::MetadataRecord,
) -> Broker {
    use crate::controller::{ControllerResponse, MetadataImage, MetadataRecord};
    use crate::types::BrokerEpoch;
    let mut b = Broker::new(config, 1, BTreeMap::new(), &BTreeMap::new(), Millis(0));
    b.tick(Millis(0));
    let register = b
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            BrokerOutput::ToController { frame, .. }
                if matches!(frame.body, Request::Controller(_)) =>
            {
                Some(frame.correlation_id)
            }
            _ => None,
        })
        .expect("registration sent");
    let reply = ControllerResponse::BrokerRegistration(Ok(BrokerEpoch(1)));
    let frame = ResponseFrame { correlation_id: register, body: Response::Controller(reply) };
    b.on_controller_response(Millis(1), 0, frame);
    let mut image = MetadataImage::default();
    for (id, epoch) in [(0, 1), (1, 5)] {
        let record = MetadataRecord::RegisterBroker {
            broker_id: NodeId(id),
            broker_epoch: BrokerEpoch(epoch),
        };
        image.apply(&record).expect("register");
    }
    image.apply(&create).expect("create");
    b.apply_metadata(Millis(2), 10, image);
    b.take_outputs();
    b
}

fn replica_fetch(epoch: u64) -> RequestFrame {
    RequestFrame {
        correlation_id: 3,
        client_id: NodeId(1),
        body: Request::Fetch(FetchRequest {
            replica_id: Some(NodeId(1)),
            replica_epoch: Some(crate::types::BrokerEpoch(epoch)),
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                tp: TopicPartition::new("t", 0),
                fetch_offset: Offset(0),
                partition_max_bytes: 1 << 20,
                current_leader_epoch: Some(Epoch(0)),
            }],
        }),
    }
}

#[test]
fn a_fetch_from_an_earlier_incarnation_of_a_replica_is_refused() {
    let mut b = cluster_leader();
    b.on_request(Millis(3), ConnId(1), replica_fetch(4));
    let out = b.take_outputs();
    match &responses(&out)[0].body {
        Response::Fetch(r) => assert_eq!(r.partitions[0].error, ErrorCode::StaleBrokerEpoch),
        other => panic!("{other:?}"),
    }
    b.on_request(Millis(4), ConnId(1), replica_fetch(5));
    let out = b.take_outputs();
    match &responses(&out)[0].body {
        Response::Fetch(r) => assert_eq!(r.partitions[0].error, ErrorCode::None),
        other => panic!("{other:?}"),
    }
}

/// Answers the follower's pending requests to its leader until it sent a Fetch, then
/// answers that with two single-record batches and leader HW 1.
fn feed_follower(b: &mut Broker) {
    let tp = TopicPartition::new("t", 0);
    for now in 3..10 {
        b.tick(Millis(now));
        let sent = b.take_outputs().into_iter().find_map(|o| match o {
            BrokerOutput::ToBroker { frame, .. } => Some(frame),
            _ => None,
        });
        let Some(frame) = sent else { continue };
        let body = match frame.body {
            Request::OffsetsForLeaderEpoch(_) => {
                Response::OffsetsForLeaderEpoch(OffsetsForLeaderEpochResponse {
                    partitions: vec![EpochEndOffset {
                        tp: tp.clone(),
                        error: ErrorCode::None,
                        leader_epoch: Some(Epoch(0)),
                        end_offset: Some(Offset(0)),
                    }],
                })
            }
            Request::Fetch(_) => {
                let mut records = batch(&["a"], None).to_vec();
                let second = RecordBatch::parse(batch(&["b"], None)).expect("valid");
                records.extend_from_slice(second.with_position(Offset(1), Epoch(0)).as_bytes());
                Response::Fetch(FetchResponse {
                    partitions: vec![FetchPartitionResponse {
                        tp: tp.clone(),
                        error: ErrorCode::None,
                        high_watermark: Offset(1),
                        log_start_offset: Offset::ZERO,
                        records: Bytes::from(records),
                    }],
                })
            }
            other => panic!("unexpected follower request {other:?}"),
        };
        let is_fetch = matches!(body, Response::Fetch(_));
        let frame = ResponseFrame { correlation_id: frame.correlation_id, body };
        b.on_broker_response(Millis(now), NodeId(1), frame);
        if is_fetch {
            return;
        }
    }
    panic!("the follower never fetched");
}

/// A consumer's fetch (no wait) of t-`partition` from `offset`.
fn consumer_fetch(
    partition: u32,
    offset: u64,
    current_leader_epoch: Option<Epoch>,
) -> RequestFrame {
    RequestFrame {
        correlation_id: 8,
        client_id: NodeId(9),
        body: Request::Fetch(FetchRequest {
            replica_id: None,
            replica_epoch: None,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                tp: TopicPartition::new("t", partition),
                fetch_offset: Offset(offset),
                partition_max_bytes: 1 << 20,
                current_leader_epoch,
            }],
        }),
    }
}

fn consumer_answer(b: &mut Broker, current_leader_epoch: u32) -> FetchPartitionResponse {
    b.on_request(Millis(20), ConnId(3), consumer_fetch(0, 0, Some(Epoch(current_leader_epoch))));
    let out = b.take_outputs();
    match &responses(&out)[0].body {
        Response::Fetch(r) => r.partitions[0].clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_follower_serves_consumers_below_its_hw_only_when_allowed() {
    let mut b = cluster_follower(false);
    feed_follower(&mut b);
    let tp = TopicPartition::new("t", 0);
    assert_eq!(b.log_end_offset(&tp), Some(Offset(2)));
    assert_eq!(consumer_answer(&mut b, 0).error, ErrorCode::NotLeaderOrFollower);

    let mut b = cluster_follower(true);
    feed_follower(&mut b);
    assert_eq!(consumer_answer(&mut b, 1).error, ErrorCode::UnknownLeaderEpoch);
    let answer = consumer_answer(&mut b, 0);
    assert_eq!((answer.error, answer.high_watermark), (ErrorCode::None, Offset(1)));
    let (batches, _) = crate::record::scan_batches(&answer.records);
    let offsets: Vec<Offset> = batches.iter().map(|b| b.last_offset()).collect();
    assert_eq!(offsets, vec![Offset(0)], "a follower served records above its HW");
}

/// The follower's next Fetch right after `feed_follower` answered one (None: it sent none).
fn next_fetch_offset(out: &[BrokerOutput]) -> Option<Offset> {
    out.iter().find_map(|o| match o {
        BrokerOutput::ToBroker { frame, .. } => match &frame.body {
            Request::Fetch(f) => Some(f.partitions[0].fetch_offset),
            _ => None,
        },
        _ => None,
    })
}

/// Kafka's fetcher appends before it builds the next fetch: the offset a follower names is
/// one its disk took (swarm seed 344). A write the disk refuses takes the directory offline,
/// and an offline follower fetches no more (static-fenced-by-failover seed 73).
#[test]
fn a_follower_fetches_past_an_append_only_once_the_disk_took_it() {
    for refused in [false, true] {
        let mut b = cluster_follower(false);
        feed_follower(&mut b);
        let out = b.take_outputs();
        assert_eq!(next_fetch_offset(&out), None, "the append is still on its way to disk");
        let tokens = disk_tokens(&out);
        assert!(!tokens.is_empty(), "the fetched records go to disk");
        for token in tokens {
            let result = if refused { Err("no space left".to_string()) } else { Ok(()) };
            b.on_disk_done(Millis(12), token, result);
        }
        b.tick(Millis(13));
        let fetched = next_fetch_offset(&b.take_outputs());
        match refused {
            false => assert_eq!(fetched, Some(Offset(2)), "on disk: it fetches on"),
            true => assert_eq!(fetched, None, "offline: it fetches no more"),
        }
    }
}
