//! Consumer tests: the state machine driven by hand with fake broker responses, and a
//! model-based property test against a plain log.

use super::*;
use crate::client::metadata::tests::metadata;
use crate::protocol::{
    FetchResponse, ListOffsetsPartitionResponse, ListOffsetsResponse, OffsetForLeaderPartition,
};
use crate::record::BatchBuilder;
use crate::types::Epoch;
use bytes::BytesMut;
use proptest::prelude::*;

fn tp0() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn consumer(reset: OffsetReset) -> Consumer {
    let config = ConsumerConfig {
        auto_offset_reset: reset,
        request_timeout_ms: 1_000,
        fetch_max_wait_ms: 100,
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(NodeId(200), config).expect("valid config");
    c.on_metadata(&metadata("t", &[Some(1), Some(1), Some(2)], &[1, 2]));
    c.assign(vec![tp0()]);
    c
}

/// One batch per entry: (base offset, values); values are "v{offset}".
fn batch_bytes(base: u64, count: u64) -> Bytes {
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let value = format!("v{}", base + i);
        builder.push(1_000 + (base + i) as i64, Some(b"k"), Some(value.as_bytes()), &[]);
    }
    builder.build().with_position(Offset(base), Epoch(1)).into_bytes()
}

fn log_bytes(batches: &[(u64, u64)]) -> Bytes {
    let mut out = BytesMut::new();
    for &(base, count) in batches {
        out.extend_from_slice(&batch_bytes(base, count));
    }
    out.freeze()
}

fn fetch_answer(tp: TopicPartition, error: ErrorCode, records: Bytes) -> Response {
    Response::Fetch(FetchResponse {
        partitions: vec![FetchPartitionResponse {
            tp,
            error,
            high_watermark: Offset(100),
            log_start_offset: Offset(0),
            records,
        }],
    })
}

fn list_answer(tp: TopicPartition, offset: u64) -> Response {
    Response::ListOffsets(ListOffsetsResponse {
        partitions: vec![ListOffsetsPartitionResponse {
            tp,
            error: ErrorCode::None,
            offset: Offset(offset),
        }],
    })
}

fn requests(actions: &[ConsumerAction]) -> Vec<(NodeId, u32, Request)> {
    actions
        .iter()
        .filter_map(|a| match a {
            ConsumerAction::Send { to, frame } => {
                Some((*to, frame.correlation_id, frame.body.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The single fetch in `actions`: (node, correlation id, [(tp, fetch offset)]).
fn the_fetch(actions: &[ConsumerAction]) -> (NodeId, u32, Vec<(TopicPartition, Offset)>) {
    let all = requests(actions);
    assert_eq!(all.len(), 1, "one request: {actions:?}");
    match &all[0].2 {
        Request::Fetch(body) => (
            all[0].0,
            all[0].1,
            body.partitions.iter().map(|p| (p.tp.clone(), p.fetch_offset)).collect(),
        ),
        other => panic!("expected a fetch, got {other:?}"),
    }
}

fn offsets(records: &[ConsumedRecord]) -> Vec<u64> {
    records.iter().map(|r| r.offset.0).collect()
}

#[test]
fn config_validation() {
    let bad = ConsumerConfig {
        request_timeout_ms: 100,
        fetch_max_wait_ms: 500,
        ..ConsumerConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().field, "request_timeout_ms");
    assert!(ConsumerConfig::default().validate().is_ok());
}

#[test]
fn missing_position_asks_list_offsets_then_fetches() {
    let mut c = consumer(OffsetReset::Earliest);
    assert_eq!(c.position(&tp0()), None);
    let actions = c.poll(Millis(0));
    let all = requests(&actions);
    assert_eq!(all.len(), 1);
    let Request::ListOffsets(body) = &all[0].2 else { panic!("expected ListOffsets") };
    assert_eq!(body.partitions, vec![(tp0(), OffsetSpec::Earliest)]);
    assert!(requests(&c.poll(Millis(1))).is_empty(), "one list-offsets at a time");
    c.on_response(Millis(2), NodeId(1), all[0].1, list_answer(tp0(), 5));
    assert_eq!(c.position(&tp0()), Some(Offset(5)));
    let event = ConsumerEvent::PositionReset {
        tp: tp0(),
        from: None,
        to: Offset(5),
        reason: ResetReason::NoPosition,
    };
    assert_eq!(c.take_events(), vec![event]);
    let (to, _, parts) = the_fetch(&c.poll(Millis(2)));
    assert_eq!((to, parts), (NodeId(1), vec![(tp0(), Offset(5))]));
}

#[test]
fn latest_reset_asks_for_the_log_end() {
    let mut c = consumer(OffsetReset::Latest);
    let all = requests(&c.poll(Millis(0)));
    let Request::ListOffsets(body) = &all[0].2 else { panic!("expected ListOffsets") };
    assert_eq!(body.partitions, vec![(tp0(), OffsetSpec::Latest)]);
}

#[test]
fn no_reset_policy_stalls_without_a_position() {
    let mut c = consumer(OffsetReset::None);
    assert!(requests(&c.poll(Millis(0))).is_empty());
    assert_eq!(c.take_events(), vec![ConsumerEvent::NoOffset { tp: tp0() }]);
    assert!(c.take_events().is_empty(), "reported once");
    c.seek(&tp0(), Offset(0));
    the_fetch(&c.poll(Millis(1)));
}

#[test]
fn records_below_the_position_are_skipped() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(3));
    let (to, id, parts) = the_fetch(&c.poll(Millis(0)));
    assert_eq!(parts, vec![(tp0(), Offset(3))]);
    c.on_response(
        Millis(1),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 5), (5, 2)])),
    );
    let records = c.take_records(100);
    assert_eq!(offsets(&records), vec![3, 4, 5, 6]);
    assert_eq!(records[0].value.as_deref(), Some(&b"v3"[..]));
    assert_eq!(c.position(&tp0()), Some(Offset(7)));
    assert_eq!(c.high_watermark(&tp0()), Some(Offset(100)));
}

#[test]
fn take_records_moves_the_position_one_record_at_a_time() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 4)])));
    assert!(requests(&c.poll(Millis(1))).is_empty(), "no fetch while records are buffered");
    assert_eq!(offsets(&c.take_records(3)), vec![0, 1, 2]);
    assert_eq!(c.position(&tp0()), Some(Offset(3)));
    assert_eq!(offsets(&c.take_records(3)), vec![3]);
    let (_, _, parts) = the_fetch(&c.poll(Millis(2)));
    assert_eq!(parts, vec![(tp0(), Offset(4))]);
}

#[test]
fn seek_drops_buffered_records_and_stale_fetches() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.seek(&tp0(), Offset(10));
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 4)])));
    assert!(c.take_records(100).is_empty(), "the answer to the old position is dropped");
    let (to, id, parts) = the_fetch(&c.poll(Millis(1)));
    assert_eq!(parts, vec![(tp0(), Offset(10))]);
    c.on_response(Millis(2), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(10, 4)])));
    c.seek(&tp0(), Offset(2));
    assert_eq!(c.buffered_records(), 0);
    assert_eq!(c.position(&tp0()), Some(Offset(2)));
}

#[test]
fn offset_out_of_range_resets_to_earliest() {
    let mut c = consumer(OffsetReset::Earliest);
    c.seek(&tp0(), Offset(50));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(
        Millis(1),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::OffsetOutOfRange, Bytes::new()),
    );
    assert_eq!(c.position(&tp0()), None);
    let all = requests(&c.poll(Millis(1)));
    let Request::ListOffsets(body) = &all[0].2 else { panic!("expected ListOffsets") };
    assert_eq!(body.partitions, vec![(tp0(), OffsetSpec::Earliest)]);
    c.on_response(Millis(2), all[0].0, all[0].1, list_answer(tp0(), 7));
    let event = ConsumerEvent::PositionReset {
        tp: tp0(),
        from: Some(Offset(50)),
        to: Offset(7),
        reason: ResetReason::OutOfRange,
    };
    assert_eq!(c.take_events(), vec![event]);
    assert_eq!(c.position(&tp0()), Some(Offset(7)));
}

#[test]
fn offset_out_of_range_resets_to_latest() {
    let mut c = consumer(OffsetReset::Latest);
    c.seek(&tp0(), Offset(50));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(
        Millis(1),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::OffsetOutOfRange, Bytes::new()),
    );
    let all = requests(&c.poll(Millis(1)));
    let Request::ListOffsets(body) = &all[0].2 else { panic!("expected ListOffsets") };
    assert_eq!(body.partitions, vec![(tp0(), OffsetSpec::Latest)]);
    c.on_response(Millis(2), all[0].0, all[0].1, list_answer(tp0(), 20));
    assert_eq!(c.position(&tp0()), Some(Offset(20)));
}

#[test]
fn offset_out_of_range_without_reset_policy_is_an_error_event() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(50));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(
        Millis(1),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::OffsetOutOfRange, Bytes::new()),
    );
    assert!(requests(&c.poll(Millis(1))).is_empty(), "no reset, no fetch");
    assert_eq!(
        c.take_events(),
        vec![ConsumerEvent::OffsetOutOfRange { tp: tp0(), offset: Offset(50) }]
    );
    assert!(requests(&c.poll(Millis(500))).is_empty(), "stalled until a seek");
    c.seek(&tp0(), Offset(0));
    the_fetch(&c.poll(Millis(501)));
}

#[test]
fn a_corrupt_batch_is_dropped_and_records_before_it_are_kept() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    let first = batch_bytes(0, 3);
    let mut bytes = log_bytes(&[(0, 3), (3, 3), (6, 2)]).to_vec();
    let flip = first.len() + 70; // inside the second batch's records
    bytes[flip] ^= 0x10;
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, Bytes::from(bytes)));
    let events = c.take_events();
    assert_eq!(events.len(), 1);
    let ConsumerEvent::CorruptRecord { tp, offset, error } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((tp, *offset), (&tp0(), Offset(3)));
    assert!(matches!(error, RecordError::CrcMismatch { .. }), "{error:?}");
    assert_eq!(offsets(&c.take_records(100)), vec![0, 1, 2]);
    assert!(requests(&c.poll(Millis(1))).is_empty(), "backoff before fetching again");
    let (_, _, parts) = the_fetch(&c.poll(Millis(101)));
    assert_eq!(parts, vec![(tp0(), Offset(3))], "fetched again from the position");
}

#[test]
fn a_partial_tail_batch_is_not_corruption() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    let bytes = log_bytes(&[(0, 2), (2, 2)]);
    let cut = bytes.slice(..bytes.len() - 9);
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, cut));
    assert!(c.take_events().is_empty());
    assert_eq!(offsets(&c.take_records(100)), vec![0, 1]);
}

#[test]
fn one_outstanding_fetch_per_broker() {
    let mut c = consumer(OffsetReset::None);
    let tps = vec![tp0(), TopicPartition::new("t", 1), TopicPartition::new("t", 2)];
    c.assign(tps.clone());
    for tp in &tps {
        c.seek(tp, Offset(0));
    }
    let actions = c.poll(Millis(0));
    let all = requests(&actions);
    assert_eq!(all.len(), 2, "one fetch to n1 (partitions 0 and 1), one to n2");
    let Request::Fetch(body) = &all[0].2 else { panic!() };
    assert_eq!((all[0].0, body.partitions.len()), (NodeId(1), 2));
    assert!(requests(&c.poll(Millis(1))).is_empty());
}

#[test]
fn request_timeout_closes_the_connection() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (_, id, _) = the_fetch(&c.poll(Millis(0)));
    assert_eq!(c.next_wakeup(), Some(Millis(1_000)));
    let actions = c.poll(Millis(1_000));
    let reason = CloseReason::RequestTimeout { correlation_id: id };
    assert!(actions.contains(&ConsumerAction::CloseConnection { node: NodeId(1), reason }));
    the_fetch(&c.poll(Millis(1_100)));
}

#[test]
fn not_leader_refreshes_metadata_and_waits_for_a_leader() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(
        Millis(1),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::NotLeaderOrFollower, Bytes::new()),
    );
    let actions = c.poll(Millis(200));
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::RefreshMetadata { .. })));
    assert!(requests(&actions).is_empty(), "no leader known");
    c.on_metadata(&metadata("t", &[Some(2), Some(1), Some(2)], &[1, 2]));
    let (to, _, _) = the_fetch(&c.poll(Millis(201)));
    assert_eq!(to, NodeId(2));
}

/// A fetch answer the model broker gives: batches from `start` (a batch index at or before
/// the one holding the position), at most `count` of them, the last maybe cut short.
fn model_answer(log: &[(u64, u64)], position: u64, back: usize, count: usize, cut: usize) -> Bytes {
    let holding = log.iter().position(|&(base, n)| position < base + n).unwrap_or(log.len());
    let start = holding.saturating_sub(back);
    let end = (start + count).min(log.len());
    let bytes = log_bytes(&log[start..end]);
    if end > start + 1 && cut > 0 {
        let last = batch_bytes(log[end - 1].0, log[end - 1].1).len();
        return bytes.slice(..bytes.len() - (cut % last).max(1));
    }
    bytes
}

proptest! {
    #[test]
    fn fetches_from_a_model_log_deliver_exactly_the_records_from_the_position(
        sizes in proptest::collection::vec(1u64..6, 1..12),
        start in 0u64..40,
        answers in proptest::collection::vec((0usize..3, 1usize..4, 0usize..40, 1usize..7), 1..200),
    ) {
        let mut log = Vec::new();
        let mut next = 0;
        for n in sizes {
            log.push((next, n));
            next += n;
        }
        let log_end = next;
        let start = start % (log_end + 1);
        let mut c = consumer(OffsetReset::None);
        c.seek(&tp0(), Offset(start));
        let mut got = Vec::new();
        let mut now = 0;
        for (back, count, cut, take) in answers {
            if c.position(&tp0()) == Some(Offset(log_end)) {
                break;
            }
            let actions = c.poll(Millis(now));
            now += 1;
            let fetches = requests(&actions);
            if let Some((to, id, Request::Fetch(body))) = fetches.into_iter().next() {
                let position = body.partitions[0].fetch_offset.0;
                prop_assert_eq!(Some(Offset(position)), c.position(&tp0()));
                let bytes = model_answer(&log, position, back, count, cut);
                c.on_response(Millis(now), to, id, fetch_answer(tp0(), ErrorCode::None, bytes));
            }
            got.extend(c.take_records(take));
            prop_assert!(c.take_events().is_empty());
        }
        while c.buffered_records() > 0 {
            got.extend(c.take_records(10));
        }
        let expected: Vec<u64> = (start..c.position(&tp0()).unwrap().0).collect();
        prop_assert_eq!(offsets(&got), expected);
        for r in &got {
            let value = format!("v{}", r.offset);
            prop_assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
        }
    }
}

#[test]
fn a_follower_read_serves_records_and_its_refusal_sends_the_partition_to_the_leader() {
    // Client 201 reads partition 0 (leader 1, isr [1, 2]) from replica 2.
    let config = ConsumerConfig { fetch_from_follower: true, ..ConsumerConfig::default() };
    let mut c = Consumer::new(NodeId(201), config).expect("valid config");
    c.on_metadata(&metadata("t", &[Some(1), Some(1), Some(2)], &[1, 2]));
    c.assign(vec![tp0()]);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    assert_eq!(to, NodeId(2), "the follower is read");
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 3)])));
    assert_eq!(offsets(&c.take_records(10)), vec![0, 1, 2]);
    // The follower lags behind the position: OffsetOutOfRange from it is not the leader's
    // word, so the position stays and the leader is asked.
    let (to, id, _) = the_fetch(&c.poll(Millis(2)));
    assert_eq!(to, NodeId(2));
    c.on_response(
        Millis(3),
        to,
        id,
        fetch_answer(tp0(), ErrorCode::OffsetOutOfRange, Bytes::new()),
    );
    assert_eq!(c.position(&tp0()), Some(Offset(3)));
    assert!(c.take_events().is_empty(), "no reset");
    let (to, _, parts) = the_fetch(&c.poll(Millis(200)));
    assert_eq!((to, parts), (NodeId(1), vec![(tp0(), Offset(3))]), "back to the leader");
}

#[test]
fn the_position_carries_the_leader_epoch_of_the_record_before_it() {
    let mut c = consumer(OffsetReset::Earliest);
    c.seek(&tp0(), Offset(0));
    assert_eq!(c.position_epoch(&tp0()), None);
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 2)])));
    let records = c.take_records(10);
    assert!(records.iter().all(|r| r.leader_epoch == Some(Epoch(1))), "{records:?}");
    assert_eq!(c.position_epoch(&tp0()), Some(Epoch(1)), "a commit of the position says epoch 1");
    c.seek_with_epoch(&tp0(), Offset(7), Some(Epoch(4)));
    assert_eq!((c.position(&tp0()), c.position_epoch(&tp0())), (Some(Offset(7)), Some(Epoch(4))));
}

// ---- KIP-320 position validation and leader rediscovery ----

/// Metadata naming `leader` for every partition of "t" at `epoch`.
fn metadata_at(leader: u32, epoch: u32) -> MetadataResponse {
    let mut m = metadata("t", &[Some(leader), Some(leader), Some(leader)], &[1, 2]);
    for p in &mut m.topics[0].partitions {
        p.leader_epoch = Epoch(epoch);
    }
    m
}

/// A consumer that read offsets 0..5 (epoch 1) from broker 1, then learned that broker 2
/// leads at epoch 2.
fn consumer_after_leader_change(reset: OffsetReset, validate: bool) -> Consumer {
    let config = ConsumerConfig {
        auto_offset_reset: reset,
        request_timeout_ms: 1_000,
        fetch_max_wait_ms: 100,
        validate_positions: validate,
        ..ConsumerConfig::default()
    };
    let mut c = Consumer::new(NodeId(200), config).expect("valid config");
    c.on_metadata(&metadata_at(1, 1));
    c.assign(vec![tp0()]);
    c.seek(&tp0(), Offset(0));
    let (to, id, _) = the_fetch(&c.poll(Millis(0)));
    c.on_response(Millis(1), to, id, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(0, 5)])));
    assert_eq!(offsets(&c.take_records(10)), vec![0, 1, 2, 3, 4]);
    c.on_metadata(&metadata_at(2, 2));
    c
}

/// The single OffsetsForLeaderEpoch in `actions`: (node, correlation id, its partition).
fn the_validation(actions: &[ConsumerAction]) -> (NodeId, u32, OffsetForLeaderPartition) {
    let all = requests(actions);
    assert_eq!(all.len(), 1, "one request: {actions:?}");
    match &all[0].2 {
        Request::OffsetsForLeaderEpoch(body) => {
            assert_eq!(body.replica_id, None, "a consumer's request");
            (all[0].0, all[0].1, body.partitions[0].clone())
        }
        other => panic!("expected OffsetsForLeaderEpoch, got {other:?}"),
    }
}

fn epoch_answer(error: ErrorCode, end: Option<(u32, u64)>) -> Response {
    Response::OffsetsForLeaderEpoch(crate::protocol::OffsetsForLeaderEpochResponse {
        partitions: vec![crate::protocol::EpochEndOffset {
            tp: tp0(),
            error,
            leader_epoch: end.map(|(e, _)| Epoch(e)),
            end_offset: end.map(|(_, o)| Offset(o)),
        }],
    })
}

#[test]
fn a_leader_change_holds_fetches_until_the_position_is_validated() {
    let mut c = consumer_after_leader_change(OffsetReset::Earliest, true);
    assert!(c.awaiting_validation(&tp0()));
    let (to, id, asked) = the_validation(&c.poll(Millis(2)));
    assert_eq!(to, NodeId(2), "the new leader");
    assert_eq!((asked.leader_epoch, asked.current_leader_epoch), (Epoch(1), Some(Epoch(2))));
    assert!(requests(&c.poll(Millis(3))).is_empty(), "no fetch while validating");
    c.on_response(Millis(4), to, id, epoch_answer(ErrorCode::None, Some((1, 9))));
    assert!(!c.awaiting_validation(&tp0()));
    assert!(c.take_events().is_empty(), "epoch 1 ends at 9, past the position 5: no truncation");
    let (to, _, parts) = the_fetch(&c.poll(Millis(5)));
    assert_eq!((to, parts), (NodeId(2), vec![(tp0(), Offset(5))]));
}

#[test]
fn a_truncation_below_the_position_seeks_to_the_divergence_point() {
    let mut c = consumer_after_leader_change(OffsetReset::Latest, true);
    let (to, id, _) = the_validation(&c.poll(Millis(2)));
    c.on_response(Millis(3), to, id, epoch_answer(ErrorCode::None, Some((1, 3))));
    let truncation = ConsumerEvent::LogTruncation {
        tp: tp0(),
        position: Offset(5),
        epoch: Epoch(1),
        divergent: Some((Epoch(1), Offset(3))),
        outcome: TruncationOutcome::SeekedToDivergence,
    };
    assert_eq!(c.take_events(), vec![truncation]);
    assert_eq!((c.position(&tp0()), c.position_epoch(&tp0())), (Some(Offset(3)), Some(Epoch(1))));
    let (_, _, parts) = the_fetch(&c.poll(Millis(4)));
    assert_eq!(parts, vec![(tp0(), Offset(3))], "the refilled offsets are read, not skipped");
}

#[test]
fn an_unknown_epoch_resets_the_position_and_without_a_policy_stalls() {
    let mut c = consumer_after_leader_change(OffsetReset::Earliest, true);
    let (to, id, _) = the_validation(&c.poll(Millis(2)));
    c.on_response(Millis(3), to, id, epoch_answer(ErrorCode::None, None));
    let events = c.take_events();
    assert!(
        matches!(
            &events[..],
            [ConsumerEvent::LogTruncation {
                divergent: None,
                outcome: TruncationOutcome::Reset,
                ..
            }]
        ),
        "{events:?}"
    );
    let all = requests(&c.poll(Millis(4)));
    assert!(matches!(&all[..], [(_, _, Request::ListOffsets(_))]), "auto.offset.reset: {all:?}");

    let mut c = consumer_after_leader_change(OffsetReset::None, true);
    let (to, id, _) = the_validation(&c.poll(Millis(2)));
    c.on_response(Millis(3), to, id, epoch_answer(ErrorCode::None, Some((1, 2))));
    let events = c.take_events();
    assert!(
        matches!(
            &events[..],
            [ConsumerEvent::LogTruncation { outcome: TruncationOutcome::Stalled, .. }]
        ),
        "LogTruncationException: {events:?}"
    );
    assert!(requests(&c.poll(Millis(4))).is_empty(), "stalled until a seek");
    c.seek(&tp0(), Offset(2));
    the_fetch(&c.poll(Millis(5)));
}

#[test]
fn a_fenced_validation_refreshes_metadata_and_a_stale_answer_is_dropped() {
    let mut c = consumer_after_leader_change(OffsetReset::Earliest, true);
    let (to, id, _) = the_validation(&c.poll(Millis(2)));
    c.on_response(Millis(3), to, id, epoch_answer(ErrorCode::FencedLeaderEpoch, None));
    let actions = c.poll(Millis(200));
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::RefreshMetadata { .. })));
    c.on_metadata(&metadata_at(1, 3));
    let (to, id, asked) = the_validation(&c.poll(Millis(300)));
    assert_eq!((to, asked.current_leader_epoch), (NodeId(1), Some(Epoch(3))));
    c.seek(&tp0(), Offset(1));
    c.on_response(Millis(301), to, id, epoch_answer(ErrorCode::None, Some((1, 0))));
    assert!(c.take_events().is_empty(), "the answer was for a position a seek replaced");
    assert_eq!(c.position(&tp0()), Some(Offset(1)));
}

#[test]
fn without_validation_the_position_is_trusted_and_fetches_carry_no_epoch() {
    let mut c = consumer_after_leader_change(OffsetReset::Earliest, false);
    assert!(!c.awaiting_validation(&tp0()));
    let actions = c.poll(Millis(2));
    let all = requests(&actions);
    let [(to, _, Request::Fetch(body))] = &all[..] else { panic!("one fetch: {all:?}") };
    assert_eq!((*to, body.partitions[0].fetch_offset), (NodeId(2), Offset(5)));
    assert_eq!(body.partitions[0].current_leader_epoch, None, "pre-KIP-320 fetch");
}

#[test]
fn a_committed_epoch_is_validated_before_the_first_fetch() {
    let mut c = consumer(OffsetReset::Earliest);
    c.on_metadata(&metadata_at(1, 2));
    c.seek_with_epoch(&tp0(), Offset(7), Some(Epoch(1)));
    let (to, _, asked) = the_validation(&c.poll(Millis(0)));
    assert_eq!((to, asked.leader_epoch), (NodeId(1), Epoch(1)));
    c.seek_with_epoch(&tp0(), Offset(7), Some(Epoch(2)));
    assert!(!c.awaiting_validation(&tp0()), "the current leader's own epoch");
}

#[test]
fn metadata_requests_avoid_the_broker_that_timed_out() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(0));
    the_fetch(&c.poll(Millis(0)));
    let bootstrap = [NodeId(1), NodeId(2)];
    assert_eq!(c.least_loaded_node(Millis(1), &bootstrap), Some(NodeId(2)), "1 is busy");
    let actions = c.poll(Millis(1_000));
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::CloseConnection { .. })));
    for _ in 0..3 {
        let node = c.least_loaded_node(Millis(1_001), &bootstrap);
        assert_eq!(node, Some(NodeId(2)), "1 timed out: rediscover through 2");
    }
    assert!(actions.iter().any(|a| matches!(a, ConsumerAction::RefreshMetadata { .. })));
}

/// group-safe seed 3790: a rebalance revoked a partition and assigned it again while a
/// fetch for it was in flight; the new assignment was seeked to the offset that fetch had
/// asked for, so the late answer looked current, was buffered, and a second fetch's answer
/// then met records still buffered (a panic). An answer to a request sent for an earlier
/// assignment is stale whatever its offset.
#[test]
fn an_answer_for_an_earlier_assignment_is_dropped() {
    let mut c = consumer(OffsetReset::None);
    c.seek(&tp0(), Offset(5));
    let (to, old, _) = the_fetch(&c.poll(Millis(0)));
    c.assign(Vec::new());
    c.assign(vec![tp0()]);
    c.seek(&tp0(), Offset(5));
    c.on_response(Millis(1), to, old, fetch_answer(tp0(), ErrorCode::None, log_bytes(&[(5, 3)])));
    assert_eq!(c.buffered_records(), 0, "the answer belonged to the revoked assignment");
    assert_eq!(c.position(&tp0()), Some(Offset(5)));
    let (_, _, parts) = the_fetch(&c.poll(Millis(2)));
    assert_eq!(parts, vec![(tp0(), Offset(5))]);
}
