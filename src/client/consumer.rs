//! The consumer in assign mode: Kafka's KafkaConsumer + Fetcher as a sans-IO state machine.
//!
//! Each assigned partition has a position (the offset of the next record to hand out).
//! A partition without one asks its leader for the earliest or latest offset
//! (auto_offset_reset); a partition with one and nothing buffered is fetched from its
//! leader, one outstanding fetch per broker. Fetched bytes are validated batch by batch
//! (length, magic, CRC-32C, record layout): records before a corrupt batch are kept, the
//! corrupt batch and everything after it are dropped with a `CorruptRecord` event, and the
//! partition is fetched again from its position after a backoff. Records below the position
//! (a fetch may start mid-batch) are skipped; `take_records` hands out records in offset
//! order and moves positions past them.
//!
//! KIP-320: each position carries the leader epoch of the record before it and the leader
//! (and epoch) it was last known good under. When the metadata names another leader or
//! epoch, the position awaits validation (consumer_validation.rs): no fetch until the
//! leader's OffsetsForLeaderEpoch answer shows the position's epoch does not end below the
//! position; if it does, the log was truncated under the consumer (`LogTruncation`).
//! Fetches carry the current leader epoch, so a broker with another view answers
//! FencedLeaderEpoch / UnknownLeaderEpoch instead of serving the wrong log.
//!
//! In subscribe mode a `GroupMember` (group_member.rs) drives `assign` and `seek` (to the
//! committed offsets); nothing here assumes the assignment is static.

use super::metadata::MetadataCache;
use super::{CloseReason, ConfigError};
use crate::protocol::{
    ErrorCode, FetchPartition, FetchPartitionResponse, FetchRequest, ListOffsetsRequest,
    MetadataResponse, OffsetSpec, Request, RequestFrame, Response,
};
use crate::record::{scan_batches, RecordError};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// auto.offset.reset: where a partition without a valid position starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// No reset: the partition stalls with an event until the caller seeks.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub auto_offset_reset: OffsetReset,
    pub fetch_max_wait_ms: u32,
    pub fetch_min_bytes: u32,
    pub fetch_max_bytes: u32,
    pub max_partition_fetch_bytes: u32,
    pub request_timeout_ms: u64,
    pub retry_backoff_ms: u64,
    pub max_poll_records: usize,
    /// Kafka's check.crcs. The record layer here always verifies CRCs (a `RecordBatch`
    /// cannot be decoded otherwise), so `false` is accepted but changes nothing.
    pub check_crcs: bool,
    /// Fetch from an in-sync follower (KIP-392, Kafka's client.rack with a rack-aware
    /// replica selector on the brokers): the records come bounded by that replica's HW. A
    /// follower's error sends the partition back to its leader until the next metadata.
    pub fetch_from_follower: bool,
    /// KIP-320: validate positions after a leader change and fence fetches with the
    /// current leader epoch. `false` is the pre-KIP-320 client: fetches carry no epoch and
    /// the position is trusted on any leader.
    pub validate_positions: bool,
    /// Kafka's metadata.max.age.ms: refresh metadata at least this often.
    pub metadata_max_age_ms: u64,
}

impl Default for ConsumerConfig {
    /// Kafka 3.x defaults.
    fn default() -> Self {
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            max_poll_records: 500,
            check_crcs: true,
            fetch_from_follower: false,
            validate_positions: true,
            metadata_max_age_ms: 300_000,
        }
    }
}

impl ConsumerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.request_timeout_ms <= u64::from(self.fetch_max_wait_ms) {
            return Err(ConfigError::new(
                "request_timeout_ms",
                "must exceed fetch_max_wait_ms, or every long poll times out",
            ));
        }
        if self.max_poll_records == 0 {
            return Err(ConfigError::new("max_poll_records", "must be at least 1"));
        }
        if self.fetch_max_bytes == 0 || self.max_partition_fetch_bytes == 0 {
            return Err(ConfigError::new("fetch_max_bytes", "must be positive"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub tp: TopicPartition,
    pub offset: Offset,
    /// The leader epoch of the record's batch (committed with the offset, KIP-320).
    pub leader_epoch: Option<Epoch>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// The partition had no position (newly assigned).
    NoPosition,
    /// The broker answered OffsetOutOfRange for the position.
    OutOfRange,
    /// Validation found the log truncated below the position, with no known divergence
    /// point (the leader has no epoch that old).
    LogTruncation,
}

/// What the consumer did about a truncation it detected (Kafka's maybeCompleteValidation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationOutcome {
    /// The position moved back to the first offset known to diverge.
    SeekedToDivergence,
    /// No divergence point known: auto_offset_reset will place the position.
    Reset,
    /// auto_offset_reset = None: stalled until `seek` (Kafka's LogTruncationException).
    Stalled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// auto_offset_reset moved the position.
    PositionReset { tp: TopicPartition, from: Option<Offset>, to: Offset, reason: ResetReason },
    /// A fetched batch failed validation at `offset`; it and the rest of the fetch were
    /// dropped, and the partition will be fetched again from its position.
    CorruptRecord { tp: TopicPartition, offset: Offset, error: RecordError },
    /// OffsetOutOfRange with auto_offset_reset = None: stalled until `seek`.
    OffsetOutOfRange { tp: TopicPartition, offset: Offset },
    /// No position and auto_offset_reset = None: stalled until `seek`.
    NoOffset { tp: TopicPartition },
    /// KIP-320 validation: the leader's log ends the position's epoch below the position
    /// (or no longer has that epoch). `divergent` is the leader's (epoch, end offset) for it.
    LogTruncation {
        tp: TopicPartition,
        position: Offset,
        epoch: Epoch,
        divergent: Option<(Epoch, Offset)>,
        outcome: TruncationOutcome,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerAction {
    Send {
        to: NodeId,
        frame: RequestFrame,
    },
    CloseConnection {
        node: NodeId,
        reason: CloseReason,
    },
    /// Send a MetadataRequest for these topics and hand the response to `on_metadata`.
    RefreshMetadata {
        topics: Vec<String>,
    },
}

#[derive(Clone, Debug, Default)]
struct PartitionState {
    position: Option<Offset>,
    /// Why the position is missing, and where it was (for the reset event).
    reset: Option<(ResetReason, Option<Offset>)>,
    buffered: VecDeque<ConsumedRecord>,
    /// Where the position moves once the buffered records before it are taken: the end
    /// of a control batch (a gap marker), which has no records for the caller.
    skip_to: Option<Offset>,
    /// auto_offset_reset = None met a missing or invalid position: wait for a seek.
    stalled: bool,
    fetch_in_flight: bool,
    list_offsets_in_flight: bool,
    retry_at: Millis,
    /// Drawn anew by seek, reset and reassignment from the consumer's one counter, so an
    /// answer to a request sent for an older position, or for an earlier assignment of the
    /// partition, never matches.
    generation: u64,
    high_watermark: Option<Offset>,
    /// A follower refused a read at this metadata version: read from the leader until the
    /// metadata changes.
    leader_only_at: Option<u64>,
    /// The leader epoch of the last record handed out (or of the seek's commit).
    last_epoch: Option<Epoch>,
    /// The leader and epoch the position was last known good under (Kafka's
    /// FetchPosition.currentLeader); another one in the metadata starts a validation.
    leader_seen: Option<(NodeId, Epoch)>,
    /// KIP-320: not fetched until OffsetsForLeaderEpoch confirms the position.
    awaiting_validation: bool,
    validation_in_flight: bool,
}

/// Hands out request generations, one increasing sequence per consumer.
#[derive(Clone, Debug, Default)]
struct Generations(u64);

impl Generations {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

#[derive(Clone, Debug)]
enum RequestKind {
    /// (partition, fetch offset, generation) per partition.
    Fetch(Vec<(TopicPartition, Offset, u64)>),
    ListOffsets(Vec<(TopicPartition, u64)>),
    /// OffsetsForLeaderEpoch: (partition, position, generation) per partition.
    Validate(Vec<(TopicPartition, Offset, u64)>),
}

#[derive(Clone, Debug)]
struct InFlightRequest {
    node: NodeId,
    sent_at: Millis,
    kind: RequestKind,
}

pub struct Consumer {
    client_id: NodeId,
    config: ConsumerConfig,
    metadata: MetadataCache,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    in_flight: BTreeMap<u32, InFlightRequest>,
    events: Vec<ConsumerEvent>,
    next_correlation_id: u32,
    /// Source of every partition's request generation.
    generations: Generations,
    /// Rotates which partition `take_records` starts from, so none starves.
    take_turn: usize,
    last_poll: Option<Millis>,
}

impl Consumer {
    pub fn new(client_id: NodeId, config: ConsumerConfig) -> Result<Consumer, ConfigError> {
        config.validate()?;
        let mut metadata = MetadataCache::new(config.retry_backoff_ms);
        metadata.set_max_age(config.metadata_max_age_ms);
        Ok(Consumer {
            client_id,
            metadata,
            config,
            partitions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            events: Vec::new(),
            next_correlation_id: 0,
            generations: Generations::default(),
            take_turn: 0,
            last_poll: None,
        })
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    /// Replaces the assignment. Partitions kept keep their position and buffer.
    pub fn assign(&mut self, tps: Vec<TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in tps {
            self.metadata.want_topic(&tp.topic);
            // A fresh generation: a request still in flight for an earlier assignment of
            // this partition must not be taken for one of this assignment (seed 3790).
            let generation = self.generations.next();
            let state = self.partitions.remove(&tp).unwrap_or_else(|| PartitionState {
                reset: Some((ResetReason::NoPosition, None)),
                generation,
                ..PartitionState::default()
            });
            next.insert(tp, state);
        }
        self.partitions = next;
    }

    /// Keeps metadata of `topic` fresh without assigning it (a group leader needs the
    /// partition count of every topic the group subscribes to).
    pub fn want_topic(&mut self, topic: &str) {
        self.metadata.want_topic(topic);
    }

    /// Marks the metadata stale: the next `poll` asks for a refresh (rate limited).
    pub fn request_metadata_refresh(&mut self) {
        self.metadata.request_refresh();
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Moves the position of an assigned partition; drops what was buffered for it.
    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset) {
        let state = self
            .partitions
            .get_mut(tp)
            .unwrap_or_else(|| panic!("seek on {tp}, which is not assigned"));
        state.position = Some(offset);
        state.last_epoch = None;
        state.reset = None;
        state.buffered.clear();
        state.skip_to = None;
        state.stalled = false;
        state.retry_at = Millis(0);
        state.generation = self.generations.next();
        state.awaiting_validation = false;
        state.leader_seen = current_leader(&self.metadata, tp);
    }

    /// `seek`, remembering the leader epoch the position was committed with (KIP-320):
    /// with an epoch, the position awaits validation (Kafka's seekUnvalidated). Unlike
    /// Kafka, an epoch equal to the current leader's is trusted without asking: that
    /// leader wrote the epoch and never truncates its own epoch.
    pub fn seek_with_epoch(&mut self, tp: &TopicPartition, offset: Offset, epoch: Option<Epoch>) {
        self.seek(tp, offset);
        let current = self.metadata.leader_epoch(tp);
        let validate = self.config.validate_positions && epoch.is_some() && epoch != current;
        let state = self.partitions.get_mut(tp).expect("seek checked the assignment");
        state.last_epoch = epoch;
        state.awaiting_validation = validate;
    }

    /// Whether `tp`'s position waits for OffsetsForLeaderEpoch before the next fetch.
    pub fn awaiting_validation(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|s| s.awaiting_validation)
    }

    /// Where the shell sends the next metadata request (Kafka's leastLoadedNode): the
    /// broker with the fewest requests of ours in flight, avoiding brokers that failed us
    /// within the last request timeout; `bootstrap` until the metadata names brokers.
    pub fn least_loaded_node(&mut self, now: Millis, bootstrap: &[NodeId]) -> Option<NodeId> {
        let in_flight = &self.in_flight;
        let load = |node| in_flight.values().filter(|r| r.node == node).count();
        self.metadata.least_loaded_node(now, bootstrap, self.config.request_timeout_ms, load)
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<Offset> {
        self.partitions.get(tp).and_then(|s| s.position)
    }

    /// The leader epoch of the record before the position: what a commit of the position
    /// carries (KIP-320).
    pub fn position_epoch(&self, tp: &TopicPartition) -> Option<Epoch> {
        self.partitions.get(tp).and_then(|s| s.last_epoch)
    }

    /// The last high watermark a fetch of `tp` reported.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<Offset> {
        self.partitions.get(tp).and_then(|s| s.high_watermark)
    }

    /// Records fetched and not yet taken.
    pub fn buffered_records(&self) -> usize {
        self.partitions.values().map(|s| s.buffered.len()).sum()
    }

    pub fn on_metadata(&mut self, metadata: &MetadataResponse) {
        self.metadata.update(metadata);
        self.check_leaders();
    }

    pub fn poll(&mut self, now: Millis) -> Vec<ConsumerAction> {
        self.last_poll = Some(now);
        let mut actions = Vec::new();
        self.expire_requests(now, &mut actions);
        self.send_list_offsets(now, &mut actions);
        self.send_validations(now, &mut actions);
        self.send_fetches(now, &mut actions);
        if self.metadata.poll_refresh(now) {
            actions.push(ConsumerAction::RefreshMetadata { topics: self.metadata.wanted_topics() });
        }
        actions
    }

    /// The earliest future time at which `poll` has something to do without any input.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let mut times: Vec<Millis> = self.partitions.values().map(|s| s.retry_at).collect();
        times.extend(
            self.in_flight.values().map(|r| r.sent_at.plus_ms(self.config.request_timeout_ms)),
        );
        times.extend(self.metadata.refresh_due_at());
        let after = self.last_poll;
        times.into_iter().filter(|&t| after.is_none_or(|last| t > last)).min()
    }

    pub fn on_response(
        &mut self,
        now: Millis,
        from: NodeId,
        correlation_id: u32,
        response: Response,
    ) {
        match self.in_flight.get(&correlation_id) {
            Some(request) if request.node == from => {}
            _ => {
                tracing::debug!(client = %self.client_id, correlation_id, %from, "stray response");
                return;
            }
        }
        let request = self.in_flight.remove(&correlation_id).expect("present above");
        self.metadata.on_answer(from);
        match (request.kind, response) {
            (RequestKind::Fetch(parts), Response::Fetch(body)) => {
                for (tp, fetch_offset, generation) in parts {
                    let answer = body.partitions.iter().find(|p| p.tp == tp);
                    if self.follower_refused(&tp, from, answer) {
                        let code = answer.map(|a| a.error);
                        self.backoff_partition(now, &tp, code);
                        continue;
                    }
                    self.on_fetch_partition(now, &tp, fetch_offset, generation, answer);
                }
            }
            (RequestKind::ListOffsets(parts), Response::ListOffsets(body)) => {
                for (tp, generation) in parts {
                    let answer = body.partitions.iter().find(|p| p.tp == tp);
                    let answer = answer.map(|p| (p.error, p.offset));
                    self.on_list_offsets_partition(now, &tp, generation, answer);
                }
            }
            (RequestKind::Validate(parts), Response::OffsetsForLeaderEpoch(body)) => {
                for (tp, position, generation) in parts {
                    let answer = body.partitions.iter().find(|p| p.tp == tp);
                    self.on_validation_partition(now, &tp, position, generation, answer);
                }
            }
            (kind, other) => {
                let code = match other {
                    Response::Error(code) => code,
                    _ => ErrorCode::InvalidRequest, // a mismatched answer: broker bug
                };
                self.fail_request(now, kind, Some(code));
            }
        }
    }

    /// Requests in flight on `node` are lost; their partitions retry after a backoff.
    pub fn on_disconnect(&mut self, now: Millis, node: NodeId) {
        let ids: Vec<u32> =
            self.in_flight.iter().filter(|(_, r)| r.node == node).map(|(&id, _)| id).collect();
        for id in ids {
            let request = self.in_flight.remove(&id).expect("listed above");
            self.fail_request(now, request.kind, None);
        }
        self.metadata.on_disconnect(now, node);
    }

    /// Up to `max` (and max_poll_records) buffered records, in offset order per partition;
    /// each partition's position moves past the records taken.
    pub fn take_records(&mut self, max: usize) -> Vec<ConsumedRecord> {
        let max = max.min(self.config.max_poll_records);
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        let mut out = Vec::new();
        if tps.is_empty() {
            return out;
        }
        let start = self.take_turn % tps.len();
        self.take_turn = self.take_turn.wrapping_add(1);
        for tp in tps[start..].iter().chain(&tps[..start]) {
            let state = self.partitions.get_mut(tp).expect("assigned");
            while out.len() < max {
                let Some(record) = state.buffered.pop_front() else { break };
                let position = state.position.expect("buffered records imply a position");
                assert!(
                    record.offset >= position,
                    "buffered {tp} offset {} below position {position}",
                    record.offset
                );
                state.position = Some(record.offset.next());
                state.last_epoch = record.leader_epoch;
                if state.skip_to.is_some_and(|skip| record.offset >= skip) {
                    state.skip_to = None;
                }
                out.push(record);
            }
            if state.buffered.is_empty() {
                if let Some(skip) = state.skip_to.take() {
                    if state.position.is_some_and(|position| position < skip) {
                        state.position = Some(skip);
                    }
                }
            }
        }
        out
    }

    pub fn take_events(&mut self) -> Vec<ConsumerEvent> {
        std::mem::take(&mut self.events)
    }

    fn next_correlation_id(&mut self) -> u32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    fn expire_requests(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let timeout = self.config.request_timeout_ms;
        let mut expired: BTreeMap<NodeId, u32> = BTreeMap::new();
        for (&correlation_id, request) in &self.in_flight {
            if now >= request.sent_at.plus_ms(timeout) {
                expired.entry(request.node).or_insert(correlation_id);
            }
        }
        for (node, correlation_id) in expired {
            let reason = CloseReason::RequestTimeout { correlation_id };
            actions.push(ConsumerAction::CloseConnection { node, reason });
            self.on_disconnect(now, node);
        }
    }

    /// A request failed as a whole (`code` None: the connection broke).
    fn fail_request(&mut self, now: Millis, kind: RequestKind, code: Option<ErrorCode>) {
        match kind {
            RequestKind::Fetch(parts) => {
                for (tp, _, _) in parts {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.fetch_in_flight = false;
                    }
                    self.backoff_partition(now, &tp, code);
                }
            }
            RequestKind::ListOffsets(parts) => {
                for (tp, _) in parts {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.list_offsets_in_flight = false;
                    }
                    self.backoff_partition(now, &tp, code);
                }
            }
            RequestKind::Validate(parts) => {
                for (tp, _, _) in parts {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.validation_in_flight = false;
                    }
                    self.backoff_partition(now, &tp, code);
                }
            }
        }
    }

    /// The partition retries after retry_backoff_ms; leadership errors refresh metadata.
    fn backoff_partition(&mut self, now: Millis, tp: &TopicPartition, code: Option<ErrorCode>) {
        match code {
            Some(
                ErrorCode::NotLeaderOrFollower
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::UnknownTopicOrPartition,
            ) => self.metadata.invalidate_leader(tp),
            None => self.metadata.request_refresh(),
            _ => {}
        }
        if let Some(state) = self.partitions.get_mut(tp) {
            state.retry_at = now.plus_ms(self.config.retry_backoff_ms);
        }
    }

    fn send_list_offsets(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let spec = match self.config.auto_offset_reset {
            OffsetReset::Earliest => Some(OffsetSpec::Earliest),
            OffsetReset::Latest => Some(OffsetSpec::Latest),
            OffsetReset::None => None,
        };
        let mut by_node: BTreeMap<NodeId, Vec<(TopicPartition, u64)>> = BTreeMap::new();
        for (tp, state) in &mut self.partitions {
            if state.position.is_some() || state.stalled || state.list_offsets_in_flight {
                continue;
            }
            if spec.is_none() {
                state.stalled = true;
                let (reason, from) = state.reset.unwrap_or((ResetReason::NoPosition, None));
                let event = match (reason, from) {
                    (ResetReason::OutOfRange, Some(offset)) => {
                        ConsumerEvent::OffsetOutOfRange { tp: tp.clone(), offset }
                    }
                    _ => ConsumerEvent::NoOffset { tp: tp.clone() },
                };
                self.events.push(event);
                continue;
            }
            if now < state.retry_at {
                continue;
            }
            match self.metadata.leader(tp) {
                Some(node) => by_node.entry(node).or_default().push((tp.clone(), state.generation)),
                None => self.metadata.request_refresh(),
            }
        }
        let spec = spec.unwrap_or(OffsetSpec::Latest);
        for (node, parts) in by_node {
            for (tp, _) in &parts {
                self.partitions.get_mut(tp).expect("assigned").list_offsets_in_flight = true;
            }
            let body = Request::ListOffsets(ListOffsetsRequest {
                partitions: parts.iter().map(|(tp, _)| (tp.clone(), spec)).collect(),
            });
            self.write(now, node, body, RequestKind::ListOffsets(parts), actions);
        }
    }

    fn send_fetches(&mut self, now: Millis, actions: &mut Vec<ConsumerAction>) {
        let busy: Vec<NodeId> = self
            .in_flight
            .values()
            .filter(|r| matches!(r.kind, RequestKind::Fetch(_)))
            .map(|r| r.node)
            .collect();
        let mut by_node: BTreeMap<NodeId, Vec<(TopicPartition, Offset, u64)>> = BTreeMap::new();
        for (tp, state) in &self.partitions {
            let Some(position) = state.position else { continue };
            if state.stalled || state.fetch_in_flight || !state.buffered.is_empty() {
                continue;
            }
            if state.awaiting_validation {
                continue;
            }
            if now < state.retry_at {
                continue;
            }
            let follower_ok = self.config.fetch_from_follower
                && state.leader_only_at.is_none_or(|v| v < self.metadata.version());
            let replica = match follower_ok {
                true => self.metadata.read_replica(tp, self.client_id),
                false => self.metadata.leader(tp),
            };
            match replica {
                Some(node) if !busy.contains(&node) => {
                    by_node.entry(node).or_default().push((tp.clone(), position, state.generation));
                }
                Some(_) => {}
                None => self.metadata.request_refresh(),
            }
        }
        for (node, parts) in by_node {
            let partitions = parts
                .iter()
                .map(|(tp, offset, _)| FetchPartition {
                    tp: tp.clone(),
                    fetch_offset: *offset,
                    partition_max_bytes: self.config.max_partition_fetch_bytes,
                    current_leader_epoch: match self.config.validate_positions {
                        true => self.metadata.leader_epoch(tp),
                        false => None,
                    },
                })
                .collect();
            for (tp, _, _) in &parts {
                self.partitions.get_mut(tp).expect("assigned").fetch_in_flight = true;
            }
            let body = Request::Fetch(FetchRequest {
                replica_id: None,
                replica_epoch: None,
                max_wait_ms: self.config.fetch_max_wait_ms,
                min_bytes: self.config.fetch_min_bytes,
                max_bytes: self.config.fetch_max_bytes,
                partitions,
            });
            self.write(now, node, body, RequestKind::Fetch(parts), actions);
        }
    }

    fn write(
        &mut self,
        now: Millis,
        node: NodeId,
        body: Request,
        kind: RequestKind,
        actions: &mut Vec<ConsumerAction>,
    ) {
        let correlation_id = self.next_correlation_id();
        self.in_flight.insert(correlation_id, InFlightRequest { node, sent_at: now, kind });
        let frame = RequestFrame { correlation_id, client_id: self.client_id, body };
        actions.push(ConsumerAction::Send { to: node, frame });
    }

    fn on_list_offsets_partition(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        generation: u64,
        answer: Option<(ErrorCode, Offset)>,
    ) {
        let Some(state) = self.partitions.get_mut(tp) else { return };
        state.list_offsets_in_flight = false;
        if state.generation != generation || state.position.is_some() {
            return; // a seek overtook it
        }
        match answer {
            Some((ErrorCode::None, offset)) => {
                let (reason, from) = state.reset.take().unwrap_or((ResetReason::NoPosition, None));
                state.position = Some(offset);
                state.last_epoch = None;
                state.generation = self.generations.next();
                state.leader_seen = current_leader(&self.metadata, tp);
                self.events.push(ConsumerEvent::PositionReset {
                    tp: tp.clone(),
                    from,
                    to: offset,
                    reason,
                });
            }
            Some((code, _)) => self.backoff_partition(now, tp, Some(code)),
            None => self.backoff_partition(now, tp, None),
        }
    }

    /// An error from a follower read (not the leader's word: it may lag, or no longer
    /// follow): the partition goes back to its leader until the metadata changes, and an
    /// OffsetOutOfRange from it never resets the position.
    fn follower_refused(
        &mut self,
        tp: &TopicPartition,
        from: NodeId,
        answer: Option<&FetchPartitionResponse>,
    ) -> bool {
        let refused = answer.is_some_and(|a| a.error != ErrorCode::None);
        if !refused || self.metadata.leader(tp) == Some(from) {
            return false;
        }
        let version = self.metadata.version();
        let Some(state) = self.partitions.get_mut(tp) else { return false };
        state.fetch_in_flight = false;
        state.leader_only_at = Some(version);
        tracing::debug!(client = %self.client_id, %tp, follower = %from, error = ?answer.map(|a| a.error), "follower refused a read: back to the leader");
        true
    }

    fn on_fetch_partition(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        fetch_offset: Offset,
        generation: u64,
        answer: Option<&FetchPartitionResponse>,
    ) {
        let Some(state) = self.partitions.get_mut(tp) else { return };
        state.fetch_in_flight = false;
        if state.generation != generation || state.position != Some(fetch_offset) {
            return; // a seek or reset overtook it
        }
        let Some(answer) = answer else {
            self.backoff_partition(now, tp, None);
            return;
        };
        match answer.error {
            ErrorCode::None => {
                state.high_watermark = Some(answer.high_watermark);
                self.accept_records(now, tp, fetch_offset, &answer.records);
            }
            ErrorCode::OffsetOutOfRange => {
                state.position = None;
                state.skip_to = None;
                state.reset = Some((ResetReason::OutOfRange, Some(fetch_offset)));
                state.generation = self.generations.next();
            }
            code => self.backoff_partition(now, tp, Some(code)),
        }
    }

    /// Validates fetched bytes and buffers the records at or above `fetch_offset`.
    fn accept_records(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        fetch_offset: Offset,
        bytes: &Bytes,
    ) {
        let (batches, stop) = scan_batches(bytes);
        let state = self.partitions.get_mut(tp).expect("caller checked");
        assert!(state.buffered.is_empty(), "fetched {tp} with records still buffered");
        let mut next = fetch_offset;
        for batch in &batches {
            if batch.next_offset() <= next {
                continue;
            }
            if batch.header().is_control() {
                // Markers are not records: step over the offsets the batch spans.
                next = batch.next_offset();
                state.skip_to = Some(next);
                continue;
            }
            let leader_epoch = batch.header().leader_epoch();
            for record in batch.records().expect("scan_batches validated the records") {
                if record.offset < next {
                    continue;
                }
                next = record.offset.next();
                state.buffered.push_back(ConsumedRecord {
                    tp: tp.clone(),
                    offset: record.offset,
                    leader_epoch,
                    key: record.key,
                    value: record.value,
                    timestamp_ms: record.timestamp_ms,
                });
            }
        }
        let Some(stop) = stop else { return };
        // A fetch may end in a partial batch (the size limit cut it): normal after a whole
        // batch (a broker always returns its first batch whole), corrupt if it is all.
        let partial_tail = matches!(stop.error, RecordError::Truncated { .. });
        if partial_tail && !batches.is_empty() {
            return;
        }
        tracing::warn!(client = %self.client_id, %tp, offset = %next, error = %stop.error, "corrupt fetch");
        state.retry_at = now.plus_ms(self.config.retry_backoff_ms);
        self.events.push(ConsumerEvent::CorruptRecord {
            tp: tp.clone(),
            offset: next,
            error: stop.error,
        });
    }
}

/// The leader and leader epoch the metadata names for `tp`, if it names a leader.
fn current_leader(metadata: &MetadataCache, tp: &TopicPartition) -> Option<(NodeId, Epoch)> {
    Some((metadata.leader(tp)?, metadata.leader_epoch(tp)?))
}

#[path = "consumer_validation.rs"]
mod validation;

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
