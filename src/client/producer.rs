//! The producer: Kafka's KafkaProducer + Sender as one sans-IO state machine.
//!
//! `send` partitions a record and appends it to the accumulator; `poll` drains ready
//! batches into produce requests (one batch per partition per request, at most
//! max_in_flight requests per broker), expires requests and batches, and emits the
//! completions gathered since the last poll. Responses, broken connections and metadata
//! come in through `on_response`, `on_disconnect` and `on_metadata`.
//!
//! Outcomes follow CORRECTNESS.md: a send is `Failed` only when no attempt can be in the
//! log (never written, or every written attempt definitely refused, per
//! `ErrorCode::produce_outcome`); once an attempt may have been appended, a final failure
//! is `Indeterminate`. With acks=0 every send is Indeterminate as soon as it is written.
//!
//! Idempotence: the producer asks for a producer id (InitProducerId) before its first
//! batch; every batch carries the id, the epoch and a per-partition base sequence; a retry
//! resends the same bytes. After any idempotent batch ends without an ack, its sequence can
//! no longer be trusted: the producer waits for its in-flight requests to settle, asks for
//! a new producer id and restarts every partition's sequences at zero (retried batches get
//! new stamps, as Kafka's epoch bump does). Without idempotence, retries duplicate and
//! reorder — deliberately: that is what the testbed demonstrates.

use super::accumulator::{
    record_size_upper_bound, Accumulator, BatchId, PendingRecord, SequenceStamp,
};
use super::metadata::MetadataCache;
use super::partitioner::Partitioner;
use super::{CloseReason, ConfigError};
use crate::protocol::{
    Acks, ErrorCode, InitProducerIdRequest, MetadataResponse, Outcome, ProducePartition,
    ProducePartitionResponse, ProduceRequest, Request, RequestFrame, Response,
};
use crate::record::{BATCH_BYTES_MAX, BATCH_HEADER_BYTES};
use crate::types::{Millis, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Kafka's limit on in-flight requests per connection that idempotence can keep in order
/// (the broker caches the last five batch sequences per producer and partition).
pub const IDEMPOTENT_MAX_IN_FLIGHT: u32 = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    pub acks: Acks,
    pub linger_ms: u64,
    pub batch_size_bytes: usize,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub delivery_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// max.in.flight.requests.per.connection.
    pub max_in_flight: u32,
    pub idempotence: bool,
    /// max.request.size: a produce request holds batches up to this many bytes (at least one).
    pub max_request_bytes: usize,
    /// Bound on records waiting or in flight (Kafka bounds this by buffer.memory).
    pub buffer_records_max: usize,
}

impl Default for ProducerConfig {
    /// Kafka 3.x defaults, except idempotence (off here: scenarios opt in explicitly).
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger_ms: 0,
            batch_size_bytes: 16_384,
            retries: i32::MAX as u32,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            request_timeout_ms: 30_000,
            max_in_flight: 5,
            idempotence: false,
            max_request_bytes: 1_048_576,
            buffer_records_max: 100_000,
        }
    }
}

impl ProducerConfig {
    /// Kafka's ProducerConfig checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.idempotence {
            if self.acks != Acks::All {
                return Err(ConfigError::new("acks", "idempotence requires acks=all"));
            }
            if self.max_in_flight > IDEMPOTENT_MAX_IN_FLIGHT {
                return Err(ConfigError::new(
                    "max_in_flight",
                    format!("idempotence requires max_in_flight <= {IDEMPOTENT_MAX_IN_FLIGHT}"),
                ));
            }
            if self.retries == 0 {
                return Err(ConfigError::new("retries", "idempotence requires retries > 0"));
            }
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new("max_in_flight", "must be at least 1"));
        }
        if self.batch_size_bytes > BATCH_BYTES_MAX {
            return Err(ConfigError::new("batch_size_bytes", format!("above {BATCH_BYTES_MAX}")));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new("request_timeout_ms", "must be positive"));
        }
        if self.delivery_timeout_ms < self.linger_ms.saturating_add(self.request_timeout_ms) {
            return Err(ConfigError::new(
                "delivery_timeout_ms",
                "must be at least linger_ms + request_timeout_ms",
            ));
        }
        if self.buffer_records_max == 0 || self.max_request_bytes < BATCH_HEADER_BYTES {
            return Err(ConfigError::new("buffer_records_max", "buffers must hold a record"));
        }
        Ok(())
    }
}

/// Identifies one `send` of one producer; completions name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

/// Why `send` refused a record: it never entered the producer (a definite failure).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SendError {
    /// No metadata for the topic yet; a refresh was requested. (Kafka's send blocks up to
    /// max.block.ms for it; a sans-IO client refuses and lets the caller retry.)
    #[error("no metadata for topic {topic}")]
    NoMetadata { topic: String },
    #[error("partition {tp} does not exist")]
    UnknownPartition { tp: TopicPartition },
    #[error("record of about {bytes} bytes exceeds {limit}")]
    RecordTooLarge { bytes: usize, limit: usize },
    #[error("buffer full: {records} records waiting")]
    BufferFull { records: usize },
}

/// Why a send did not end with an ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The last attempt's error code from the broker.
    Broker(ErrorCode),
    /// The connection broke with the request in flight.
    Disconnected,
    /// The request got no response within request_timeout_ms.
    RequestTimeout,
    /// delivery_timeout_ms passed before an answer.
    DeliveryTimeout,
    /// acks=0: written, and the broker never answers.
    NoAcks,
    /// The broker answered success without an offset (a broker bug; never an ack).
    AckWithoutOffset,
    /// The producer id changed while the batch may already be in the log under the old
    /// one: resending it with new sequences could append it twice, so (as Kafka's
    /// producer does) it is completed instead.
    SessionReset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendResult {
    Acked {
        offset: Offset,
    },
    /// Definitely not in the log.
    Failed {
        reason: SendFailure,
    },
    /// May or may not be in the log: history `info`.
    Indeterminate {
        reason: SendFailure,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProducerAction {
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
    Completed {
        id: SendId,
        tp: TopicPartition,
        result: SendResult,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProducerIdState {
    /// Not idempotent: batches carry no producer id.
    Disabled,
    /// No usable id: ask for one at `retry_at` once nothing is in flight.
    Unset {
        retry_at: Millis,
    },
    Requesting {
        correlation_id: u32,
    },
    Ready {
        producer_id: i64,
        producer_epoch: i16,
    },
}

#[derive(Clone, Debug)]
enum RequestKind {
    Produce { batches: Vec<BatchId> },
    InitProducerId,
}

#[derive(Clone, Debug)]
struct InFlightRequest {
    node: NodeId,
    sent_at: Millis,
    kind: RequestKind,
}

/// Why an attempt of a batch ended without an ack.
#[derive(Clone, Copy, Debug)]
enum AttemptFailure {
    Broker(ErrorCode),
    Disconnected,
    RequestTimeout,
}

impl AttemptFailure {
    fn reason(self) -> SendFailure {
        match self {
            AttemptFailure::Broker(code) => SendFailure::Broker(code),
            AttemptFailure::Disconnected => SendFailure::Disconnected,
            AttemptFailure::RequestTimeout => SendFailure::RequestTimeout,
        }
    }
}

pub struct Producer {
    client_id: NodeId,
    config: ProducerConfig,
    partitioner: Box<dyn Partitioner>,
    metadata: MetadataCache,
    accumulator: Accumulator,
    in_flight: BTreeMap<u32, InFlightRequest>,
    producer_id: ProducerIdState,
    /// Next base sequence per partition (idempotence).
    next_sequence: BTreeMap<TopicPartition, i32>,
    next_correlation_id: u32,
    next_send_id: u64,
    /// Rotates which partition a drain starts from, so none starves under max_request_bytes.
    drain_turn: usize,
    /// Actions produced by inputs, handed out by the next `poll`.
    outbox: Vec<ProducerAction>,
    last_poll: Option<Millis>,
}

impl Producer {
    pub fn new(
        client_id: NodeId,
        config: ProducerConfig,
        partitioner: Box<dyn Partitioner>,
    ) -> Result<Producer, ConfigError> {
        config.validate()?;
        let producer_id = if config.idempotence {
            ProducerIdState::Unset { retry_at: Millis(0) }
        } else {
            ProducerIdState::Disabled
        };
        Ok(Producer {
            client_id,
            metadata: MetadataCache::new(config.retry_backoff_ms),
            accumulator: Accumulator::new(config.batch_size_bytes, config.linger_ms),
            config,
            partitioner,
            in_flight: BTreeMap::new(),
            producer_id,
            next_sequence: BTreeMap::new(),
            next_correlation_id: 0,
            next_send_id: 0,
            drain_turn: 0,
            outbox: Vec::new(),
            last_poll: None,
        })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    /// Records accepted and not yet completed.
    pub fn pending_records(&self) -> usize {
        self.accumulator.record_count()
    }

    /// Requests written and not yet answered, on `node`.
    pub fn in_flight_to(&self, node: NodeId) -> usize {
        self.in_flight.values().filter(|r| r.node == node).count()
    }

    /// The producer id and epoch in use, once idempotence has one.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        match self.producer_id {
            ProducerIdState::Ready { producer_id, producer_epoch } => {
                Some((producer_id, producer_epoch))
            }
            _ => None,
        }
    }

    /// Asks metadata for `topic` ahead of the first send.
    pub fn want_topic(&mut self, topic: &str) {
        self.metadata.want_topic(topic);
    }

    /// Partitions the record (keyed: murmur2; unkeyed: the partitioner's choice) and
    /// appends it.
    pub fn send(
        &mut self,
        now: Millis,
        topic: &str,
        key: Option<Bytes>,
        value: Bytes,
        rng: &mut impl RngCore,
    ) -> Result<SendId, SendError> {
        self.send_partitioned(now, topic, key, value, rng).map(|(id, _)| id)
    }

    /// As `send`, also saying which partition the record went to (a history names the
    /// topic-partition of every send when it is invoked).
    pub fn send_partitioned(
        &mut self,
        now: Millis,
        topic: &str,
        key: Option<Bytes>,
        value: Bytes,
        rng: &mut impl RngCore,
    ) -> Result<(SendId, TopicPartition), SendError> {
        self.metadata.want_topic(topic);
        let Some(num_partitions) = self.metadata.partition_count(topic) else {
            self.metadata.request_refresh();
            return Err(SendError::NoMetadata { topic: topic.to_string() });
        };
        let record_bytes = self.check_record(key.as_deref(), &value)?;
        let available = self.metadata.available_partitions(topic);
        let rng: &mut dyn RngCore = rng;
        let mut partition =
            self.partitioner.partition(topic, key.as_deref(), num_partitions, &available, rng);
        let tp = TopicPartition::new(topic, partition);
        if self.accumulator.would_open_new_batch(&tp, record_bytes)
            && self.partitioner.on_new_batch(topic, partition, num_partitions, &available, rng)
        {
            partition =
                self.partitioner.partition(topic, key.as_deref(), num_partitions, &available, rng);
        }
        assert!(
            partition < num_partitions,
            "partitioner chose {partition} for {topic} with {num_partitions} partitions"
        );
        let tp = TopicPartition::new(topic, partition);
        Ok((self.append(now, tp.clone(), key, value), tp))
    }

    /// Sends to an explicit partition, bypassing the partitioner.
    pub fn send_to(
        &mut self,
        now: Millis,
        tp: TopicPartition,
        key: Option<Bytes>,
        value: Bytes,
    ) -> Result<SendId, SendError> {
        self.metadata.want_topic(&tp.topic);
        let Some(num_partitions) = self.metadata.partition_count(&tp.topic) else {
            self.metadata.request_refresh();
            return Err(SendError::NoMetadata { topic: tp.topic });
        };
        if tp.partition >= num_partitions {
            return Err(SendError::UnknownPartition { tp });
        }
        self.check_record(key.as_deref(), &value)?;
        Ok(self.append(now, tp, key, value))
    }

    /// Seals every open batch, so `poll` sends them without waiting for linger.
    pub fn flush(&mut self) {
        self.accumulator.flush();
    }

    pub fn on_metadata(&mut self, metadata: &MetadataResponse) {
        self.metadata.update(metadata);
    }

    /// Drains ready batches, expires requests and batches, returns every pending action.
    pub fn poll(&mut self, now: Millis) -> Vec<ProducerAction> {
        self.last_poll = Some(now);
        let mut actions = std::mem::take(&mut self.outbox);
        self.expire_requests(now, &mut actions);
        self.expire_batches(now);
        self.maybe_init_producer_id(now, &mut actions);
        if self.may_drain() {
            self.drain(now, &mut actions);
        }
        if self.metadata.poll_refresh(now) {
            actions.push(ProducerAction::RefreshMetadata { topics: self.metadata.wanted_topics() });
        }
        actions.append(&mut self.outbox);
        actions
    }

    /// The earliest future time at which `poll` has something to do without any input.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let mut times: Vec<Millis> = Vec::new();
        for tp in self.accumulator.queued_partitions() {
            let front = self.accumulator.front(&tp).expect("queued partition has a front");
            times.push(self.accumulator.ready_at(front, self.accumulator.queue_len(&tp)));
        }
        times.extend(self.accumulator.batches().map(|b| self.delivery_deadline(b.created_at)));
        times.extend(
            self.in_flight.values().map(|r| r.sent_at.plus_ms(self.config.request_timeout_ms)),
        );
        times.extend(self.metadata.refresh_due_at());
        if let ProducerIdState::Unset { retry_at } = self.producer_id {
            times.push(retry_at);
        }
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
        let Some(request) = self.in_flight.get(&correlation_id) else {
            tracing::debug!(client = %self.client_id, correlation_id, "response to no request");
            return;
        };
        if request.node != from {
            tracing::warn!(client = %self.client_id, correlation_id, %from, "response from the wrong node");
            return;
        }
        let request = self.in_flight.remove(&correlation_id).expect("present above");
        self.metadata.on_answer(from);
        match (request.kind, response) {
            (RequestKind::Produce { batches }, Response::Produce(body)) => {
                for id in batches {
                    let tp = match self.accumulator.batch(id) {
                        Some(batch) => batch.tp.clone(),
                        None => continue, // completed meanwhile (delivery timeout)
                    };
                    match body.partitions.iter().find(|p| p.tp == tp) {
                        Some(part) => self.on_partition_response(now, id, part),
                        None => self.fail_attempt(now, id, AttemptFailure::Disconnected),
                    }
                }
            }
            (RequestKind::Produce { batches }, other) => {
                let failure = match other {
                    Response::Error(code) => AttemptFailure::Broker(code),
                    _ => AttemptFailure::Disconnected, // a mismatched answer: broker bug
                };
                for id in batches {
                    if self.accumulator.batch(id).is_some() {
                        self.fail_attempt(now, id, failure);
                    }
                }
            }
            (RequestKind::InitProducerId, Response::InitProducerId(body))
                if body.error == ErrorCode::None =>
            {
                self.on_new_producer_id(now, body.producer_id, body.producer_epoch);
            }
            (RequestKind::InitProducerId, _) => {
                self.producer_id =
                    ProducerIdState::Unset { retry_at: now.plus_ms(self.config.retry_backoff_ms) };
            }
        }
    }

    /// Where the shell sends the next metadata request (Kafka's leastLoadedNode): the
    /// broker with the fewest requests of ours in flight, avoiding brokers that failed us
    /// within the last request timeout, so a stalled leader does not hide its successor.
    pub fn least_loaded_node(&mut self, now: Millis, bootstrap: &[NodeId]) -> Option<NodeId> {
        let in_flight = &self.in_flight;
        let load = |node| in_flight.values().filter(|r| r.node == node).count();
        self.metadata.least_loaded_node(now, bootstrap, self.config.request_timeout_ms, load)
    }

    /// Every request in flight on `node` may or may not have been processed.
    pub fn on_disconnect(&mut self, now: Millis, node: NodeId) {
        self.fail_requests_on(now, node, AttemptFailure::Disconnected);
        self.metadata.on_disconnect(now, node);
    }

    fn check_record(&self, key: Option<&[u8]>, value: &[u8]) -> Result<usize, SendError> {
        let record_bytes = record_size_upper_bound(key, value);
        let limit = BATCH_BYTES_MAX.min(self.config.max_request_bytes);
        if BATCH_HEADER_BYTES + record_bytes > limit {
            return Err(SendError::RecordTooLarge {
                bytes: BATCH_HEADER_BYTES + record_bytes,
                limit,
            });
        }
        if self.accumulator.record_count() >= self.config.buffer_records_max {
            return Err(SendError::BufferFull { records: self.accumulator.record_count() });
        }
        Ok(record_bytes)
    }

    fn append(
        &mut self,
        now: Millis,
        tp: TopicPartition,
        key: Option<Bytes>,
        value: Bytes,
    ) -> SendId {
        let id = SendId(self.next_send_id);
        self.next_send_id += 1;
        let record = PendingRecord { id, timestamp_ms: now.0 as i64, key, value };
        self.accumulator.append(now, &tp, record);
        id
    }

    fn delivery_deadline(&self, created_at: Millis) -> Millis {
        created_at.plus_ms(self.config.delivery_timeout_ms)
    }

    fn next_correlation_id(&mut self) -> u32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    fn may_drain(&self) -> bool {
        matches!(self.producer_id, ProducerIdState::Disabled | ProducerIdState::Ready { .. })
    }

    /// Asks for a producer id once none is in use and nothing is in flight.
    fn maybe_init_producer_id(&mut self, now: Millis, actions: &mut Vec<ProducerAction>) {
        let ProducerIdState::Unset { retry_at } = self.producer_id else { return };
        if now < retry_at || !self.in_flight.is_empty() {
            return;
        }
        let Some(node) = self.metadata.any_broker(u64::from(self.next_correlation_id)) else {
            self.metadata.request_refresh();
            return;
        };
        let correlation_id = self.next_correlation_id();
        self.in_flight.insert(
            correlation_id,
            InFlightRequest { node, sent_at: now, kind: RequestKind::InitProducerId },
        );
        self.producer_id = ProducerIdState::Requesting { correlation_id };
        let frame = RequestFrame {
            correlation_id,
            client_id: self.client_id,
            body: Request::InitProducerId(InitProducerIdRequest {}),
        };
        actions.push(ProducerAction::Send { to: node, frame });
    }

    /// A new producer session: every partition's sequences restart at zero, and every
    /// batch not yet acked is stamped afresh when next drained — except one that may
    /// already be in the log under the old session, which completes as indeterminate
    /// (Kafka's producer does not retry a batch across a producer id change either).
    fn on_new_producer_id(&mut self, now: Millis, producer_id: i64, producer_epoch: i16) {
        assert!(producer_id >= 0, "broker granted invalid producer id {producer_id}");
        tracing::info!(client = %self.client_id, producer_id, producer_epoch, "new producer id");
        self.producer_id = ProducerIdState::Ready { producer_id, producer_epoch };
        self.next_sequence.clear();
        let stale: Vec<BatchId> = self
            .accumulator
            .batches_mut()
            .filter(|b| b.stamp.is_some() && b.maybe_appended && b.in_flight.is_none())
            .map(|b| b.id)
            .collect();
        for id in stale {
            // Unstamped first, so completing it does not reset the new session.
            self.accumulator.batch_mut(id).expect("listed").stamp = None;
            self.finish_failed(now, id, SendFailure::SessionReset);
        }
        for batch in self.accumulator.batches_mut() {
            assert!(
                batch.in_flight.is_none(),
                "batch {} in flight across a new producer id",
                batch.id
            );
            batch.stamp = None;
            batch.encoded = None;
        }
    }

    /// Forgets the producer id: later batches wait for a new one.
    fn reset_producer_id(&mut self, now: Millis) {
        if matches!(self.producer_id, ProducerIdState::Ready { .. }) {
            tracing::info!(client = %self.client_id, "producer id reset: a sequence is unknown");
            self.producer_id = ProducerIdState::Unset { retry_at: now };
        }
    }

    fn expire_requests(&mut self, now: Millis, actions: &mut Vec<ProducerAction>) {
        let timeout = self.config.request_timeout_ms;
        let mut expired: BTreeMap<NodeId, u32> = BTreeMap::new();
        for (&correlation_id, request) in &self.in_flight {
            if now >= request.sent_at.plus_ms(timeout) {
                expired.entry(request.node).or_insert(correlation_id);
            }
        }
        for (node, correlation_id) in expired {
            let reason = CloseReason::RequestTimeout { correlation_id };
            actions.push(ProducerAction::CloseConnection { node, reason });
            self.fail_requests_on(now, node, AttemptFailure::RequestTimeout);
            self.metadata.on_disconnect(now, node);
        }
    }

    fn fail_requests_on(&mut self, now: Millis, node: NodeId, failure: AttemptFailure) {
        let ids: Vec<u32> =
            self.in_flight.iter().filter(|(_, r)| r.node == node).map(|(&id, _)| id).collect();
        for correlation_id in ids {
            let request = self.in_flight.remove(&correlation_id).expect("listed above");
            match request.kind {
                RequestKind::Produce { batches } => {
                    for id in batches {
                        if self.accumulator.batch(id).is_some() {
                            self.fail_attempt(now, id, failure);
                        }
                    }
                }
                RequestKind::InitProducerId => {
                    self.producer_id = ProducerIdState::Unset {
                        retry_at: now.plus_ms(self.config.retry_backoff_ms),
                    };
                }
            }
        }
    }

    /// Completes every batch whose delivery timeout has passed, queued or in flight.
    fn expire_batches(&mut self, now: Millis) {
        let expired: Vec<BatchId> = self
            .accumulator
            .batches()
            .filter(|b| now >= self.delivery_deadline(b.created_at))
            .map(|b| b.id)
            .collect();
        for id in expired {
            let batch = self.accumulator.batch_mut(id).expect("listed above");
            // An attempt still in flight may yet be appended.
            if batch.in_flight.is_some() {
                batch.maybe_appended = true;
            }
            self.finish_failed(now, id, SendFailure::DeliveryTimeout);
        }
    }

    fn on_partition_response(&mut self, now: Millis, id: BatchId, part: &ProducePartitionResponse) {
        let batch = self.accumulator.batch_mut(id).expect("caller checked");
        batch.in_flight = None;
        match part.error.produce_outcome() {
            Outcome::Ok => match part.base_offset {
                Some(base) => self.finish_acked(id, base),
                None => {
                    self.accumulator.batch_mut(id).expect("present").maybe_appended = true;
                    self.finish_failed(now, id, SendFailure::AckWithoutOffset);
                }
            },
            _ => self.fail_attempt(now, id, AttemptFailure::Broker(part.error)),
        }
    }

    /// An attempt of batch `id` ended without an ack: retry it or complete it.
    fn fail_attempt(&mut self, now: Millis, id: BatchId, failure: AttemptFailure) {
        let idempotent = self.config.idempotence;
        let reset_pending = !matches!(self.producer_id, ProducerIdState::Ready { .. });
        let has_earlier = {
            let batch = self.accumulator.batch(id).expect("failing a known batch");
            self.accumulator.has_earlier_uncompleted(&batch.tp, id)
        };
        let batch = self.accumulator.batch_mut(id).expect("failing a known batch");
        batch.in_flight = None;
        let retriable = match failure {
            AttemptFailure::Broker(code) => {
                batch.maybe_appended |= code.produce_outcome() != Outcome::Failed;
                let sequence_error = matches!(
                    code,
                    ErrorCode::OutOfOrderSequenceNumber
                        | ErrorCode::UnknownProducerId
                        | ErrorCode::InvalidProducerEpoch
                );
                // An out-of-order sequence is expected behind an earlier batch that failed
                // (it will be resent first), or when the session is being replaced.
                code.is_retriable()
                    || (idempotent && sequence_error && (has_earlier || reset_pending))
            }
            AttemptFailure::Disconnected | AttemptFailure::RequestTimeout => {
                batch.maybe_appended = true;
                true
            }
        };
        if let AttemptFailure::Broker(code) = failure {
            let tp = batch.tp.clone();
            match code {
                ErrorCode::NotLeaderOrFollower
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::UnknownTopicOrPartition => self.metadata.invalidate_leader(&tp),
                _ => {}
            }
        }
        let batch = self.accumulator.batch_mut(id).expect("failing a known batch");
        let deadline = batch.created_at.plus_ms(self.config.delivery_timeout_ms);
        let can_retry = retriable && batch.attempts <= self.config.retries && now < deadline;
        if can_retry {
            batch.retry_at = now.plus_ms(self.config.retry_backoff_ms);
            self.accumulator.reenqueue(id);
        } else {
            self.finish_failed(now, id, failure.reason());
        }
    }

    fn finish_acked(&mut self, id: BatchId, base_offset: Offset) {
        let batch = self.accumulator.remove(id);
        for (i, record) in batch.records.iter().enumerate() {
            let result = SendResult::Acked { offset: base_offset.plus(i as u64) };
            self.outbox.push(ProducerAction::Completed {
                id: record.id,
                tp: batch.tp.clone(),
                result,
            });
        }
    }

    /// Completes a batch without an ack: Indeterminate once any attempt may be in the log.
    fn finish_failed(&mut self, now: Millis, id: BatchId, reason: SendFailure) {
        let batch = self.accumulator.remove(id);
        let result = if batch.maybe_appended {
            SendResult::Indeterminate { reason }
        } else {
            SendResult::Failed { reason }
        };
        if batch.stamp.is_some() {
            // Its sequence was consumed (or may have been): later sequences of this
            // session are unreliable, so start a new one.
            self.reset_producer_id(now);
        }
        for record in &batch.records {
            self.outbox.push(ProducerAction::Completed {
                id: record.id,
                tp: batch.tp.clone(),
                result,
            });
        }
    }

    /// Turns ready batches into produce requests, one batch per partition per request.
    fn drain(&mut self, now: Millis, actions: &mut Vec<ProducerAction>) {
        let partitions = self.accumulator.queued_partitions();
        if partitions.is_empty() {
            return;
        }
        let start = self.drain_turn % partitions.len();
        self.drain_turn = self.drain_turn.wrapping_add(1);
        let mut by_node: BTreeMap<NodeId, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions[start..].iter().chain(&partitions[..start]) {
            match self.metadata.leader(tp) {
                Some(node) => by_node.entry(node).or_default().push(tp.clone()),
                None => self.metadata.request_refresh(),
            }
        }
        for (node, tps) in by_node {
            while self.in_flight_to(node) < self.config.max_in_flight as usize {
                let batches = self.collect_request(now, &tps);
                if batches.is_empty() {
                    break;
                }
                self.write_request(now, node, batches, actions);
            }
        }
    }

    /// Picks at most one ready batch per partition of `tps`, up to max_request_bytes.
    fn collect_request(&mut self, now: Millis, tps: &[TopicPartition]) -> Vec<BatchId> {
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        for tp in tps {
            let Some(front) = self.accumulator.front(tp) else { continue };
            if now < self.accumulator.ready_at(front, self.accumulator.queue_len(tp)) {
                continue;
            }
            // Idempotence: a retry goes only as the oldest unacked batch of its partition,
            // so the broker sees sequences in order.
            if self.config.idempotence
                && front.stamp.is_some()
                && self.accumulator.first_uncompleted(tp) != Some(front.id)
            {
                continue;
            }
            if !chosen.is_empty() && bytes + front.size_bytes() > self.config.max_request_bytes {
                break;
            }
            bytes += front.size_bytes();
            let id = self.accumulator.pop_front(tp);
            self.stamp(id);
            chosen.push(id);
        }
        chosen
    }

    /// Gives a batch its producer id and sequence on first drain (idempotence).
    fn stamp(&mut self, id: BatchId) {
        let ProducerIdState::Ready { producer_id, producer_epoch } = self.producer_id else {
            return;
        };
        let batch = self.accumulator.batch_mut(id).expect("stamping a known batch");
        if batch.stamp.is_some() {
            return;
        }
        let sequence = self.next_sequence.entry(batch.tp.clone()).or_insert(0);
        batch.stamp = Some(SequenceStamp { producer_id, producer_epoch, base_sequence: *sequence });
        batch.encoded = None;
        *sequence = increment_sequence(*sequence, batch.record_count());
    }

    fn write_request(
        &mut self,
        now: Millis,
        node: NodeId,
        batches: Vec<BatchId>,
        actions: &mut Vec<ProducerAction>,
    ) {
        let correlation_id = self.next_correlation_id();
        let mut partitions = Vec::with_capacity(batches.len());
        for &id in &batches {
            let batch = self.accumulator.batch_mut(id).expect("writing a known batch");
            if batch.encoded.is_none() {
                batch.encoded = Some(batch.encode());
            }
            batch.attempts += 1;
            batch.in_flight = Some(correlation_id);
            let records = batch.encoded.clone().expect("encoded above");
            partitions.push(ProducePartition { tp: batch.tp.clone(), records });
        }
        let body = Request::Produce(ProduceRequest {
            acks: self.config.acks,
            timeout_ms: u32::try_from(self.config.request_timeout_ms).unwrap_or(u32::MAX),
            partitions,
        });
        let frame = RequestFrame { correlation_id, client_id: self.client_id, body };
        actions.push(ProducerAction::Send { to: node, frame });
        if self.config.acks == Acks::Zero {
            // No response will come: the send is done, outcome unknown.
            for id in batches {
                self.accumulator.batch_mut(id).expect("just written").maybe_appended = true;
                self.finish_failed(now, id, SendFailure::NoAcks);
            }
            return;
        }
        self.in_flight.insert(
            correlation_id,
            InFlightRequest { node, sent_at: now, kind: RequestKind::Produce { batches } },
        );
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap to 0 after i32::MAX.
fn increment_sequence(sequence: i32, increment: u32) -> i32 {
    let next = i64::from(sequence) + i64::from(increment);
    (next % (i64::from(i32::MAX) + 1)) as i32
}

/// Partitions that have a batch in a request in flight (for tests and the shell's logs).
impl Producer {
    pub fn in_flight_partitions(&self) -> BTreeSet<TopicPartition> {
        self.accumulator.batches().filter(|b| b.in_flight.is_some()).map(|b| b.tp.clone()).collect()
    }
}

#[cfg(test)]
#[path = "producer_tests.rs"]
mod tests;
