//! Producer tests: the state machine driven by hand with fake broker responses.

use super::*;
use crate::client::metadata::tests::metadata;
use crate::client::partitioner::DefaultPartitioner;
use crate::protocol::{InitProducerIdResponse, ProduceResponse};
use crate::record::{scan_batches, BatchHeader};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn tp0() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn config() -> ProducerConfig {
    ProducerConfig {
        linger_ms: 0,
        retries: 3,
        retry_backoff_ms: 100,
        request_timeout_ms: 1_000,
        delivery_timeout_ms: 10_000,
        ..ProducerConfig::default()
    }
}

fn idempotent() -> ProducerConfig {
    ProducerConfig { idempotence: true, ..config() }
}

/// A producer that knows topic "t": partition 0 led by n1, partition 1 by n2.
fn producer(config: ProducerConfig) -> Producer {
    let mut p = Producer::new(NodeId(100), config, Box::new(DefaultPartitioner::new()))
        .expect("valid config");
    p.on_metadata(&metadata("t", &[Some(1), Some(2)], &[1, 2]));
    p
}

/// A ready idempotent producer (pid 42, epoch 0).
fn ready_idempotent(config: ProducerConfig) -> Producer {
    let mut p = producer(config);
    let actions = p.poll(Millis(0));
    let (to, frame) = sends(&actions).into_iter().next().expect("InitProducerId sent");
    assert!(matches!(frame.body, Request::InitProducerId(_)));
    p.on_response(Millis(0), to, frame.correlation_id, init_ok(42, 0));
    p
}

fn init_ok(producer_id: i64, producer_epoch: i16) -> Response {
    Response::InitProducerId(InitProducerIdResponse {
        error: ErrorCode::None,
        producer_id,
        producer_epoch,
    })
}

fn sends(actions: &[ProducerAction]) -> Vec<(NodeId, RequestFrame)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ProducerAction::Send { to, frame } => Some((*to, frame.clone())),
            _ => None,
        })
        .collect()
}

fn produces(actions: &[ProducerAction]) -> Vec<(NodeId, u32, ProduceRequest)> {
    sends(actions)
        .into_iter()
        .filter_map(|(to, frame)| match frame.body {
            Request::Produce(body) => Some((to, frame.correlation_id, body)),
            _ => None,
        })
        .collect()
}

fn completions(actions: &[ProducerAction]) -> Vec<(SendId, SendResult)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ProducerAction::Completed { id, result, .. } => Some((*id, *result)),
            _ => None,
        })
        .collect()
}

fn header(records: &Bytes) -> BatchHeader {
    let (batches, stop) = scan_batches(records);
    assert!(stop.is_none(), "a well-formed batch");
    assert_eq!(batches.len(), 1, "one batch per partition");
    *batches[0].header()
}

fn answer(tp: TopicPartition, error: ErrorCode, base_offset: Option<u64>) -> Response {
    Response::Produce(ProduceResponse {
        partitions: vec![ProducePartitionResponse {
            tp,
            error,
            base_offset: base_offset.map(Offset),
            log_start_offset: Offset(0),
        }],
    })
}

fn send(p: &mut Producer, now: u64, value: &str) -> SendId {
    p.send_to(Millis(now), tp0(), None, Bytes::from(value.to_string())).expect("accepted")
}

#[test]
fn config_validation_follows_kafka() {
    let bad = ProducerConfig { idempotence: true, acks: Acks::One, ..config() };
    assert_eq!(bad.validate().unwrap_err().field, "acks");
    let bad = ProducerConfig { idempotence: true, max_in_flight: 6, ..config() };
    assert_eq!(bad.validate().unwrap_err().field, "max_in_flight");
    let bad = ProducerConfig { delivery_timeout_ms: 500, ..config() };
    assert_eq!(bad.validate().unwrap_err().field, "delivery_timeout_ms");
    assert!(idempotent().validate().is_ok());
    assert!(ProducerConfig::default().validate().is_ok());
}

#[test]
fn send_without_metadata_is_refused_and_asks_for_a_refresh() {
    let mut p = Producer::new(NodeId(100), config(), Box::new(DefaultPartitioner::new())).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let err = p.send(Millis(0), "t", None, Bytes::from_static(b"v"), &mut rng).unwrap_err();
    assert_eq!(err, SendError::NoMetadata { topic: "t".into() });
    let actions = p.poll(Millis(0));
    assert!(actions.contains(&ProducerAction::RefreshMetadata { topics: vec!["t".into()] }));
}

#[test]
fn keyed_sends_go_to_the_murmur2_partition() {
    let mut p = producer(ProducerConfig { linger_ms: 10, ..config() });
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for key in ["a", "b", "c", "d"] {
        p.send(Millis(0), "t", Some(Bytes::from(key)), Bytes::from_static(b"v"), &mut rng).unwrap();
    }
    p.flush();
    let actions = p.poll(Millis(0));
    for (to, _, body) in produces(&actions) {
        for part in body.partitions {
            assert_eq!(to, NodeId(part.tp.partition + 1), "sent to the partition's leader");
        }
    }
    let expected: BTreeSet<u32> =
        ["a", "b", "c", "d"].iter().map(|k| partition_for_key_of(k)).collect();
    assert_eq!(
        p.in_flight_partitions().iter().map(|tp| tp.partition).collect::<BTreeSet<_>>(),
        expected
    );
}

fn partition_for_key_of(key: &str) -> u32 {
    crate::client::partitioner::partition_for_key(key.as_bytes(), 2)
}

#[test]
fn batches_close_by_size() {
    let batch_size = BATCH_HEADER_BYTES + 2 * record_size_upper_bound(None, b"0123456789");
    let mut p =
        producer(ProducerConfig { linger_ms: 1_000, batch_size_bytes: batch_size, ..config() });
    for i in 0..3 {
        send(&mut p, 0, &format!("value-{i:03}"));
    }
    let actions = p.poll(Millis(0));
    let requests = produces(&actions);
    assert_eq!(requests.len(), 1, "only the full batch goes before linger");
    assert_eq!(header(&requests[0].2.partitions[0].records).record_count, 2);
    assert_eq!(p.next_wakeup(), Some(Millis(1_000)), "the open batch lingers");
}

#[test]
fn batches_close_by_linger() {
    let mut p = producer(ProducerConfig { linger_ms: 50, ..config() });
    send(&mut p, 0, "a");
    send(&mut p, 10, "b");
    assert!(produces(&p.poll(Millis(10))).is_empty());
    assert_eq!(p.next_wakeup(), Some(Millis(50)));
    let actions = p.poll(Millis(50));
    let requests = produces(&actions);
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0].2.partitions[0].records).record_count, 2);
}

#[test]
fn one_batch_per_partition_per_request() {
    let mut p = producer(ProducerConfig { linger_ms: 0, batch_size_bytes: 100, ..config() });
    for i in 0..3 {
        send(&mut p, 0, &format!("{i:040}"));
    }
    p.send_to(Millis(0), TopicPartition::new("t", 1), None, Bytes::from_static(b"x")).unwrap();
    let actions = p.poll(Millis(0));
    let requests = produces(&actions);
    assert_eq!(requests.len(), 4, "three batches of t-0 in three requests, t-1 in its own");
    for (_, _, body) in &requests {
        assert_eq!(body.partitions.len(), 1);
    }
}

#[test]
fn max_in_flight_is_respected_per_broker() {
    let mut p = producer(ProducerConfig { max_in_flight: 2, batch_size_bytes: 100, ..config() });
    for i in 0..5 {
        send(&mut p, 0, &format!("{i:040}"));
    }
    let requests = produces(&p.poll(Millis(0)));
    assert_eq!(requests.len(), 2);
    assert_eq!(p.in_flight_to(NodeId(1)), 2);
    assert!(produces(&p.poll(Millis(1))).is_empty());
    let (to, correlation_id, _) = &requests[0];
    p.on_response(Millis(2), *to, *correlation_id, answer(tp0(), ErrorCode::None, Some(0)));
    let actions = p.poll(Millis(2));
    assert_eq!(completions(&actions), vec![(SendId(0), SendResult::Acked { offset: Offset(0) })]);
    assert_eq!(produces(&actions).len(), 1, "a slot freed, one more request");
}

#[test]
fn retriable_error_retries_after_backoff_then_acks() {
    let mut p = producer(config());
    let id = send(&mut p, 0, "a");
    let first = produces(&p.poll(Millis(0))).remove(0);
    p.on_response(Millis(5), NodeId(1), first.1, answer(tp0(), ErrorCode::NotEnoughReplicas, None));
    assert!(produces(&p.poll(Millis(5))).is_empty(), "backoff");
    assert_eq!(p.next_wakeup(), Some(Millis(105)));
    let retry = produces(&p.poll(Millis(105))).remove(0);
    assert_eq!(retry.2.partitions[0].records, first.2.partitions[0].records, "same bytes");
    p.on_response(Millis(110), NodeId(1), retry.1, answer(tp0(), ErrorCode::None, Some(7)));
    assert_eq!(
        completions(&p.poll(Millis(110))),
        vec![(id, SendResult::Acked { offset: Offset(7) })]
    );
    assert_eq!(p.pending_records(), 0);
}

#[test]
fn records_of_a_batch_get_consecutive_offsets() {
    let mut p = producer(ProducerConfig { linger_ms: 5, ..config() });
    let ids: Vec<SendId> = (0..3).map(|i| send(&mut p, 0, &i.to_string())).collect();
    let request = produces(&p.poll(Millis(5))).remove(0);
    p.on_response(Millis(6), NodeId(1), request.1, answer(tp0(), ErrorCode::None, Some(10)));
    let done = completions(&p.poll(Millis(6)));
    let offsets: Vec<(SendId, SendResult)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, SendResult::Acked { offset: Offset(10 + i as u64) }))
        .collect();
    assert_eq!(done, offsets);
}

#[test]
fn definite_error_fails_the_send() {
    let mut p = producer(config());
    let id = send(&mut p, 0, "a");
    let request = produces(&p.poll(Millis(0))).remove(0);
    p.on_response(Millis(1), NodeId(1), request.1, answer(tp0(), ErrorCode::MessageTooLarge, None));
    let done = completions(&p.poll(Millis(1)));
    let reason = SendFailure::Broker(ErrorCode::MessageTooLarge);
    assert_eq!(done, vec![(id, SendResult::Failed { reason })]);
}

#[test]
fn exhausted_retries_of_definite_refusals_fail() {
    let mut p = producer(ProducerConfig { retries: 1, ..config() });
    let id = send(&mut p, 0, "a");
    let mut now = 0;
    for _ in 0..2 {
        let request = produces(&p.poll(Millis(now))).remove(0);
        p.on_response(
            Millis(now),
            NodeId(1),
            request.1,
            answer(tp0(), ErrorCode::NotEnoughReplicas, None),
        );
        now += 100;
    }
    let reason = SendFailure::Broker(ErrorCode::NotEnoughReplicas);
    assert_eq!(completions(&p.poll(Millis(now))), vec![(id, SendResult::Failed { reason })]);
}

#[test]
fn a_refusal_after_a_lost_attempt_is_indeterminate() {
    let mut p = producer(ProducerConfig { retries: 1, ..config() });
    let id = send(&mut p, 0, "a");
    produces(&p.poll(Millis(0)));
    p.on_disconnect(Millis(1), NodeId(1));
    let retry = produces(&p.poll(Millis(101))).remove(0);
    p.on_response(
        Millis(102),
        NodeId(1),
        retry.1,
        answer(tp0(), ErrorCode::NotEnoughReplicas, None),
    );
    let reason = SendFailure::Broker(ErrorCode::NotEnoughReplicas);
    assert_eq!(completions(&p.poll(Millis(102))), vec![(id, SendResult::Indeterminate { reason })]);
}

#[test]
fn indeterminate_errors_exhausted_are_indeterminate() {
    let mut p = producer(ProducerConfig { retries: 0, ..config() });
    let id = send(&mut p, 0, "a");
    let request = produces(&p.poll(Millis(0))).remove(0);
    p.on_response(
        Millis(1),
        NodeId(1),
        request.1,
        answer(tp0(), ErrorCode::NotLeaderOrFollower, None),
    );
    let actions = p.poll(Millis(1));
    let reason = SendFailure::Broker(ErrorCode::NotLeaderOrFollower);
    assert_eq!(completions(&actions), vec![(id, SendResult::Indeterminate { reason })]);
    assert_eq!(p.metadata().leader(&tp0()), None, "NotLeaderOrFollower forgets the leader");
    assert!(actions.iter().any(|a| matches!(a, ProducerAction::RefreshMetadata { .. })));
}

#[test]
fn request_timeout_closes_the_connection_and_retries() {
    let mut p = producer(config());
    send(&mut p, 0, "a");
    let first = produces(&p.poll(Millis(0))).remove(0);
    assert_eq!(p.next_wakeup(), Some(Millis(1_000)));
    let actions = p.poll(Millis(1_000));
    let reason = CloseReason::RequestTimeout { correlation_id: first.1 };
    assert!(actions.contains(&ProducerAction::CloseConnection { node: NodeId(1), reason }));
    assert_eq!(p.in_flight_to(NodeId(1)), 0);
    // A late response on the closed connection is ignored.
    p.on_response(Millis(1_001), NodeId(1), first.1, answer(tp0(), ErrorCode::None, Some(0)));
    assert!(completions(&p.poll(Millis(1_001))).is_empty());
    let retry = produces(&p.poll(Millis(1_100)));
    assert_eq!(retry.len(), 1, "retried after backoff");
}

#[test]
fn delivery_timeout_after_a_send_is_indeterminate() {
    let mut p = producer(ProducerConfig { delivery_timeout_ms: 1_500, ..config() });
    let id = send(&mut p, 0, "a");
    produces(&p.poll(Millis(0)));
    p.poll(Millis(1_000)); // request timeout, connection closed
    assert_eq!(produces(&p.poll(Millis(1_100))).len(), 1);
    let done = completions(&p.poll(Millis(1_500)));
    let reason = SendFailure::DeliveryTimeout;
    assert_eq!(done, vec![(id, SendResult::Indeterminate { reason })]);
}

#[test]
fn delivery_timeout_without_any_send_fails() {
    let mut p = producer(ProducerConfig { delivery_timeout_ms: 1_500, ..config() });
    p.on_metadata(&metadata("t", &[None, Some(2)], &[1, 2]));
    let id = send(&mut p, 0, "a");
    assert!(produces(&p.poll(Millis(0))).is_empty(), "no leader, nothing sent");
    assert_eq!(p.next_wakeup(), Some(Millis(100)), "metadata refresh backoff");
    let done = completions(&p.poll(Millis(1_500)));
    assert_eq!(done, vec![(id, SendResult::Failed { reason: SendFailure::DeliveryTimeout })]);
}

#[test]
fn acks_zero_completes_indeterminate_when_written() {
    let mut p = producer(ProducerConfig { acks: Acks::Zero, ..config() });
    let id = send(&mut p, 0, "a");
    let actions = p.poll(Millis(0));
    assert_eq!(produces(&actions)[0].2.acks, Acks::Zero);
    let reason = SendFailure::NoAcks;
    assert_eq!(completions(&actions), vec![(id, SendResult::Indeterminate { reason })]);
    assert_eq!(p.in_flight_to(NodeId(1)), 0, "no response expected");
    assert_eq!(p.next_wakeup(), None);
}

#[test]
fn without_idempotence_a_lost_response_is_retried_as_is() {
    // The broker may hold the first copy: the retry can duplicate (CORRECTNESS.md).
    let mut p = producer(config());
    send(&mut p, 0, "a");
    let first = produces(&p.poll(Millis(0))).remove(0);
    assert_eq!(header(&first.2.partitions[0].records).producer_id, -1);
    p.on_disconnect(Millis(1), NodeId(1));
    let retry = produces(&p.poll(Millis(101))).remove(0);
    assert_eq!(retry.2.partitions[0].records, first.2.partitions[0].records);
}

#[test]
fn idempotent_producer_waits_for_a_producer_id() {
    let mut p = producer(idempotent());
    send(&mut p, 0, "a");
    let actions = p.poll(Millis(0));
    let all = sends(&actions);
    assert_eq!(all.len(), 1);
    assert!(matches!(all[0].1.body, Request::InitProducerId(_)), "no produce before the id");
    p.on_response(Millis(1), all[0].0, all[0].1.correlation_id, init_ok(9, 3));
    let request = produces(&p.poll(Millis(1))).remove(0);
    let h = header(&request.2.partitions[0].records);
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (9, 3, 0));
}

#[test]
fn idempotent_sequences_increase_and_a_retry_keeps_its_sequence() {
    let mut p = ready_idempotent(ProducerConfig { linger_ms: 0, ..idempotent() });
    send(&mut p, 0, "a");
    send(&mut p, 0, "b");
    let first = produces(&p.poll(Millis(0))).remove(0);
    send(&mut p, 1, "c");
    let second = produces(&p.poll(Millis(1))).remove(0);
    let (h1, h2) =
        (header(&first.2.partitions[0].records), header(&second.2.partitions[0].records));
    assert_eq!((h1.base_sequence, h1.record_count), (0, 2));
    assert_eq!(h2.base_sequence, 2);
    p.on_response(Millis(2), NodeId(1), first.1, answer(tp0(), ErrorCode::None, Some(0)));
    p.on_response(Millis(2), NodeId(1), second.1, answer(tp0(), ErrorCode::RequestTimedOut, None));
    let retry = produces(&p.poll(Millis(102))).remove(0);
    assert_eq!(retry.2.partitions[0].records, second.2.partitions[0].records, "same sequence");
}

#[test]
fn idempotent_lost_response_then_retry_acks_with_the_dedup_offset() {
    let mut p = ready_idempotent(idempotent());
    let id = send(&mut p, 0, "a");
    let first = produces(&p.poll(Millis(0))).remove(0);
    p.on_disconnect(Millis(5), NodeId(1));
    let retry = produces(&p.poll(Millis(105))).remove(0);
    assert_eq!(retry.2.partitions[0].records, first.2.partitions[0].records);
    let dedup = answer(tp0(), ErrorCode::DuplicateSequenceNumber, Some(31));
    p.on_response(Millis(106), NodeId(1), retry.1, dedup);
    assert_eq!(
        completions(&p.poll(Millis(106))),
        vec![(id, SendResult::Acked { offset: Offset(31) })]
    );
    assert_eq!(p.producer_id(), Some((42, 0)), "an ack keeps the session");
}

#[test]
fn out_of_order_sequence_behind_a_failed_batch_is_retried_in_order() {
    let mut p = ready_idempotent(idempotent());
    let mut requests = Vec::new();
    for i in 0..3u64 {
        send(&mut p, i, &format!("v{i}"));
        requests.push(produces(&p.poll(Millis(i))).remove(0));
    }
    let seqs: Vec<i32> =
        requests.iter().map(|r| header(&r.2.partitions[0].records).base_sequence).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    p.on_response(
        Millis(3),
        NodeId(1),
        requests[0].1,
        answer(tp0(), ErrorCode::NotEnoughReplicas, None),
    );
    for r in &requests[1..] {
        p.on_response(
            Millis(3),
            NodeId(1),
            r.1,
            answer(tp0(), ErrorCode::OutOfOrderSequenceNumber, None),
        );
    }
    assert!(
        completions(&p.poll(Millis(3))).is_empty(),
        "OutOfOrderSequence behind a failure is retried"
    );
    // Only the oldest goes first; each ack lets the next one go.
    let mut order = Vec::new();
    let mut actions = p.poll(Millis(103));
    for offset in 0..3u64 {
        let retry = produces(&actions);
        assert_eq!(retry.len(), 1, "one retry at a time, oldest first");
        let (_, correlation_id, body) = &retry[0];
        order.push(header(&body.partitions[0].records).base_sequence);
        let now = Millis(104 + offset);
        p.on_response(
            now,
            NodeId(1),
            *correlation_id,
            answer(tp0(), ErrorCode::None, Some(offset)),
        );
        actions = p.poll(now);
        let done = completions(&actions);
        assert_eq!(done, vec![(SendId(offset), SendResult::Acked { offset: Offset(offset) })]);
    }
    assert_eq!(order, vec![0, 1, 2]);
}

#[test]
fn unexplained_out_of_order_sequence_fails_and_starts_a_new_session() {
    let mut p = ready_idempotent(idempotent());
    let id = send(&mut p, 0, "a");
    let request = produces(&p.poll(Millis(0))).remove(0);
    p.on_response(
        Millis(1),
        NodeId(1),
        request.1,
        answer(tp0(), ErrorCode::OutOfOrderSequenceNumber, None),
    );
    let actions = p.poll(Millis(1));
    let reason = SendFailure::Broker(ErrorCode::OutOfOrderSequenceNumber);
    assert_eq!(completions(&actions), vec![(id, SendResult::Failed { reason })]);
    assert!(sends(&actions).iter().any(|(_, f)| matches!(f.body, Request::InitProducerId(_))));
}

#[test]
fn an_expired_unknown_batch_forces_a_new_producer_id_and_resets_sequences() {
    let mut p = ready_idempotent(ProducerConfig { delivery_timeout_ms: 1_500, ..idempotent() });
    let lost = send(&mut p, 0, "a");
    let first = produces(&p.poll(Millis(0))).remove(0);
    // Another record waits behind it in its own batch.
    send(&mut p, 600, "b");
    let second = produces(&p.poll(Millis(600))).remove(0);
    assert_eq!(header(&second.2.partitions[0].records).base_sequence, 1);
    p.on_response(
        Millis(601),
        NodeId(1),
        second.1,
        answer(tp0(), ErrorCode::OutOfOrderSequenceNumber, None),
    );
    let _ = first;
    // The first request never answers: closed at 1000, retried at 1100, expired at 1500.
    p.poll(Millis(1_000));
    let retry = produces(&p.poll(Millis(1_100)));
    assert_eq!(retry.len(), 1, "only the oldest is retried");
    let actions = p.poll(Millis(1_500));
    let reason = SendFailure::DeliveryTimeout;
    assert!(completions(&actions).contains(&(lost, SendResult::Indeterminate { reason })));
    assert_eq!(p.producer_id(), None, "the session is abandoned");
    // The expired attempt is still in flight: wait for it before a new id.
    assert!(sends(&actions).is_empty());
    p.on_disconnect(Millis(1_501), NodeId(1));
    let init = sends(&p.poll(Millis(1_501))).remove(0);
    assert!(matches!(init.1.body, Request::InitProducerId(_)));
    p.on_response(Millis(1_502), init.0, init.1.correlation_id, init_ok(43, 0));
    let resent = produces(&p.poll(Millis(1_502))).remove(0);
    let h = header(&resent.2.partitions[0].records);
    assert_eq!((h.producer_id, h.base_sequence), (43, 0), "the waiting batch restarts at 0");
}

#[test]
fn next_wakeup_tracks_linger_request_and_delivery_deadlines() {
    let mut p = producer(ProducerConfig { linger_ms: 20, ..config() });
    assert_eq!(p.next_wakeup(), None);
    send(&mut p, 0, "a");
    p.poll(Millis(0));
    assert_eq!(p.next_wakeup(), Some(Millis(20)));
    p.poll(Millis(20));
    assert_eq!(p.next_wakeup(), Some(Millis(1_020)), "request timeout");
}

#[test]
fn unkeyed_sends_stick_to_one_partition_until_its_batch_is_full() {
    let batch_size = BATCH_HEADER_BYTES + 3 * record_size_upper_bound(None, b"v0");
    let mut p =
        producer(ProducerConfig { linger_ms: 1_000, batch_size_bytes: batch_size, ..config() });
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for i in 0..6 {
        p.send(Millis(0), "t", None, Bytes::from(format!("v{i}")), &mut rng).unwrap();
    }
    p.flush();
    let requests = produces(&p.poll(Millis(0)));
    let mut counts: Vec<(u32, u32)> = requests
        .iter()
        .flat_map(|(_, _, body)| body.partitions.iter())
        .map(|part| (part.tp.partition, header(&part.records).record_count))
        .collect();
    counts.sort();
    assert_eq!(counts, vec![(0, 3), (1, 3)], "three records per batch, then the other partition");
}

mod model {
    //! A random fake broker: whatever it answers, every send completes exactly once, and
    //! a send is `Failed` only if no attempt of it can be in the log.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Send(u32),
        Advance(u64),
        Answer(usize, u8),
        Disconnect(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u32..2).prop_map(Op::Send),
            2 => (0u64..700).prop_map(Op::Advance),
            3 => (0usize..8, 0u8..8).prop_map(|(i, c)| Op::Answer(i, c)),
            1 => (1u32..3).prop_map(Op::Disconnect),
        ]
    }

    const CODES: [ErrorCode; 8] = [
        ErrorCode::None,
        ErrorCode::None,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::MessageTooLarge,
        ErrorCode::RequestTimedOut,
        ErrorCode::KafkaStorageError,
    ];

    /// A produce request written and unanswered: (node, correlation id, values per tp).
    type Outstanding = (NodeId, u32, Vec<(TopicPartition, Vec<String>)>);

    struct World {
        p: Producer,
        now: u64,
        outstanding: Vec<Outstanding>,
        maybe_appended: BTreeSet<String>,
        values: BTreeMap<SendId, String>,
        done: BTreeMap<SendId, SendResult>,
        next_offset: u64,
    }

    impl World {
        fn poll(&mut self) {
            let actions = self.p.poll(Millis(self.now));
            for action in actions {
                match action {
                    ProducerAction::Send { to, frame } => match frame.body {
                        Request::Produce(body) => {
                            let parts = body
                                .partitions
                                .iter()
                                .map(|part| {
                                    let (batches, _) = scan_batches(&part.records);
                                    let values = batches[0]
                                        .records()
                                        .unwrap()
                                        .into_iter()
                                        .map(|r| {
                                            String::from_utf8(r.value.unwrap().to_vec()).unwrap()
                                        })
                                        .collect();
                                    (part.tp.clone(), values)
                                })
                                .collect();
                            self.outstanding.push((to, frame.correlation_id, parts));
                        }
                        Request::InitProducerId(_) => {
                            let epoch = (self.now % 100) as i16;
                            self.p.on_response(
                                Millis(self.now),
                                to,
                                frame.correlation_id,
                                init_ok(1, epoch),
                            );
                        }
                        other => panic!("unexpected request {other:?}"),
                    },
                    ProducerAction::CloseConnection { node, .. } => self.lose(node),
                    ProducerAction::RefreshMetadata { .. } => {
                        self.p.on_metadata(&metadata("t", &[Some(1), Some(2)], &[1, 2]));
                    }
                    ProducerAction::Completed { id, result, .. } => {
                        assert!(self.done.insert(id, result).is_none(), "{id:?} completed twice");
                        if let SendResult::Failed { .. } = result {
                            let value = &self.values[&id];
                            assert!(
                                !self.maybe_appended.contains(value),
                                "{value} may be in the log yet Failed"
                            );
                        }
                    }
                }
            }
        }

        /// Requests on `node` get no answer: each may have been appended.
        fn lose(&mut self, node: NodeId) {
            let (lost, kept) =
                std::mem::take(&mut self.outstanding).into_iter().partition(|r| r.0 == node);
            self.outstanding = kept;
            let lost: Vec<Outstanding> = lost;
            for (_, _, parts) in lost {
                self.maybe_appended.extend(parts.into_iter().flat_map(|(_, v)| v));
            }
        }

        fn answer(&mut self, index: usize, code: ErrorCode) {
            if self.outstanding.is_empty() {
                return;
            }
            let (node, correlation_id, parts) =
                self.outstanding.remove(index % self.outstanding.len());
            let mut partitions = Vec::new();
            for (tp, values) in parts {
                if code.produce_outcome() != Outcome::Failed {
                    self.maybe_appended.extend(values.iter().cloned());
                }
                let base_offset = (code == ErrorCode::None).then_some(Offset(self.next_offset));
                self.next_offset += values.len() as u64;
                partitions.push(ProducePartitionResponse {
                    tp,
                    error: code,
                    base_offset,
                    log_start_offset: Offset(0),
                });
            }
            let response = Response::Produce(ProduceResponse { partitions });
            self.p.on_response(Millis(self.now), node, correlation_id, response);
        }
    }

    proptest! {
        #[test]
        fn every_send_completes_once_and_failed_means_never_appended(
            idempotence in any::<bool>(),
            max_in_flight in 1u32..5,
            retries in 0u32..4,
            linger_ms in 0u64..30,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let config = ProducerConfig {
                idempotence,
                max_in_flight,
                retries: retries.max(u32::from(idempotence)),
                linger_ms,
                batch_size_bytes: 200,
                delivery_timeout_ms: 3_000,
                ..config()
            };
            let mut world = World {
                p: producer(config),
                now: 0,
                outstanding: Vec::new(),
                maybe_appended: BTreeSet::new(),
                values: BTreeMap::new(),
                done: BTreeMap::new(),
                next_offset: 0,
            };
            for op in ops {
                match op {
                    Op::Send(partition) => {
                        let value = format!("v{}", world.values.len());
                        let tp = TopicPartition::new("t", partition);
                        let id = world.p.send_to(Millis(world.now), tp, None, Bytes::from(value.clone())).unwrap();
                        world.values.insert(id, value);
                    }
                    Op::Advance(ms) => world.now += ms,
                    Op::Answer(index, code) => world.answer(index, CODES[code as usize]),
                    Op::Disconnect(node) => {
                        world.lose(NodeId(node));
                        world.p.on_disconnect(Millis(world.now), NodeId(node));
                    }
                }
                world.poll();
            }
            // Silence: every send must still end, by timeouts alone.
            for _ in 0..20 {
                world.now += 1_000;
                world.poll();
            }
            prop_assert_eq!(world.p.pending_records(), 0);
            prop_assert_eq!(world.done.len(), world.values.len());
        }
    }
}

#[test]
fn a_batch_that_may_be_in_the_log_is_not_resent_under_a_new_producer_id() {
    let mut p = ready_idempotent(ProducerConfig { delivery_timeout_ms: 1_500, ..idempotent() });
    let lost = send(&mut p, 0, "a");
    produces(&p.poll(Millis(0)));
    let maybe = send(&mut p, 600, "b");
    let second = produces(&p.poll(Millis(600))).remove(0);
    // Appended, then the ISR shrank: the outcome is unknown, and a retry would be deduped
    // only within this producer session.
    let error = ErrorCode::NotEnoughReplicasAfterAppend;
    p.on_response(Millis(601), NodeId(1), second.1, answer(tp0(), error, None));
    // "a" never answers and expires: the session is abandoned.
    p.poll(Millis(1_000));
    p.poll(Millis(1_100));
    p.poll(Millis(1_500));
    assert_eq!(p.producer_id(), None);
    p.on_disconnect(Millis(1_501), NodeId(1));
    let init = sends(&p.poll(Millis(1_501))).remove(0);
    p.on_response(Millis(1_502), init.0, init.1.correlation_id, init_ok(43, 0));
    let actions = p.poll(Millis(1_502));
    let reason = SendFailure::SessionReset;
    assert!(
        completions(&actions).contains(&(maybe, SendResult::Indeterminate { reason })),
        "{actions:?}"
    );
    assert!(produces(&actions).is_empty(), "not resent under producer id 43");
    let _ = lost;
}
