//! The producer's record accumulator: per-partition queues of batches waiting to be sent,
//! as Kafka's RecordAccumulator. A batch is open for appends until it is full
//! (batch_size_bytes) or first drained; it is ready to send once it is full, its linger
//! has passed, a flush was asked, or it is a retry whose backoff has passed.
//!
//! Every batch that has not completed lives in `batches`; a batch that is not in flight
//! also sits in its partition's queue, kept in creation order (a retry goes back in front
//! of the newer batches, as Kafka's `reenqueue`). For an idempotent producer creation
//! order is sequence order, so the queue order is the order the broker must see. This
//! module owns the queues and batch bookkeeping; the producer decides what to drain,
//! stamps sequences and classifies outcomes.

use super::producer::SendId;
use crate::record::{BatchBuilder, BATCH_HEADER_BYTES};
use crate::types::{Millis, TopicPartition};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Identifies a batch within one producer; grows with creation order.
pub type BatchId = u64;

/// One record waiting in a batch.
#[derive(Clone, Debug)]
pub struct PendingRecord {
    pub id: SendId,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// Producer id, epoch and base sequence written into an idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

#[derive(Clone, Debug)]
pub struct ProducerBatch {
    pub id: BatchId,
    pub tp: TopicPartition,
    pub records: Vec<PendingRecord>,
    pub created_at: Millis,
    /// No more appends: full, or already drained once.
    pub sealed: bool,
    /// How many times a request carrying this batch was written.
    pub attempts: u32,
    /// Not before this time (retry backoff).
    pub retry_at: Millis,
    /// Some attempt may have been appended: sent, and not definitely refused. Once set, a
    /// final failure is Indeterminate, never Failed.
    pub maybe_appended: bool,
    pub stamp: Option<SequenceStamp>,
    /// The bytes of the last attempt; a retry resends them unchanged (same sequence).
    pub encoded: Option<Bytes>,
    /// The correlation id of the request carrying it, while in flight.
    pub in_flight: Option<u32>,
    size_bytes: usize,
}

impl ProducerBatch {
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    pub fn record_count(&self) -> u32 {
        self.records.len() as u32
    }

    /// Encodes the batch, with the stamp when idempotent.
    pub fn encode(&self) -> Bytes {
        let mut builder = match self.stamp {
            Some(s) => BatchBuilder::idempotent(s.producer_id, s.producer_epoch, s.base_sequence),
            None => BatchBuilder::new(),
        };
        for r in &self.records {
            builder.push(r.timestamp_ms, r.key.as_deref(), Some(&r.value), &[]);
        }
        let batch = builder.build();
        assert!(
            batch.len_bytes() <= self.size_bytes,
            "batch {} for {} encoded to {} bytes, above its estimate {}",
            self.id,
            self.tp,
            batch.len_bytes(),
            self.size_bytes
        );
        batch.into_bytes()
    }
}

/// An upper bound on the bytes a record adds to a batch (Kafka's
/// `estimateSizeInBytesUpperBound`): the length varint (5), attributes (1), timestamp
/// delta varlong (10), offset delta (5), key and value lengths (5 each), header count (1).
pub fn record_size_upper_bound(key: Option<&[u8]>, value: &[u8]) -> usize {
    32 + key.map_or(0, <[u8]>::len) + value.len()
}

#[derive(Debug)]
pub struct Accumulator {
    batch_size_bytes: usize,
    linger_ms: u64,
    batches: BTreeMap<BatchId, ProducerBatch>,
    queues: BTreeMap<TopicPartition, VecDeque<BatchId>>,
    /// Uncompleted batches per partition (queued or in flight), in creation order.
    uncompleted: BTreeMap<TopicPartition, BTreeSet<BatchId>>,
    next_batch_id: BatchId,
    records: usize,
}

impl Accumulator {
    pub fn new(batch_size_bytes: usize, linger_ms: u64) -> Self {
        Accumulator {
            batch_size_bytes,
            linger_ms,
            batches: BTreeMap::new(),
            queues: BTreeMap::new(),
            uncompleted: BTreeMap::new(),
            next_batch_id: 0,
            records: 0,
        }
    }

    /// Records in uncompleted batches.
    pub fn record_count(&self) -> usize {
        self.records
    }

    pub fn batch(&self, id: BatchId) -> Option<&ProducerBatch> {
        self.batches.get(&id)
    }

    pub fn batch_mut(&mut self, id: BatchId) -> Option<&mut ProducerBatch> {
        self.batches.get_mut(&id)
    }

    pub fn batch_ids(&self) -> Vec<BatchId> {
        self.batches.keys().copied().collect()
    }

    pub fn batches(&self) -> impl Iterator<Item = &ProducerBatch> {
        self.batches.values()
    }

    pub fn batches_mut(&mut self) -> impl Iterator<Item = &mut ProducerBatch> {
        self.batches.values_mut()
    }

    /// The open batch a record for `tp` would join, if it fits.
    fn open_batch(&self, tp: &TopicPartition, record_bytes: usize) -> Option<BatchId> {
        let id = *self.queues.get(tp)?.back()?;
        let batch = &self.batches[&id];
        let fits = batch.size_bytes + record_bytes <= self.batch_size_bytes;
        (!batch.sealed && fits).then_some(id)
    }

    /// Whether appending this record to `tp` would open a new batch (KIP-480's trigger).
    pub fn would_open_new_batch(&self, tp: &TopicPartition, record_bytes: usize) -> bool {
        self.open_batch(tp, record_bytes).is_none()
    }

    pub fn append(&mut self, now: Millis, tp: &TopicPartition, record: PendingRecord) -> BatchId {
        let record_bytes = record_size_upper_bound(record.key.as_deref(), &record.value);
        let id = match self.open_batch(tp, record_bytes) {
            Some(id) => id,
            None => {
                if let Some(&last) = self.queues.get(tp).and_then(VecDeque::back) {
                    self.batches.get_mut(&last).expect("queued batch exists").sealed = true;
                }
                self.new_batch(now, tp)
            }
        };
        let batch = self.batches.get_mut(&id).expect("open batch exists");
        batch.size_bytes += record_bytes;
        batch.records.push(record);
        // A batch that cannot take even a tiny record more is full: ready now.
        if batch.size_bytes + record_size_upper_bound(None, &[]) > self.batch_size_bytes {
            batch.sealed = true;
        }
        self.records += 1;
        id
    }

    fn new_batch(&mut self, now: Millis, tp: &TopicPartition) -> BatchId {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let batch = ProducerBatch {
            id,
            tp: tp.clone(),
            records: Vec::new(),
            created_at: now,
            sealed: false,
            attempts: 0,
            retry_at: now,
            maybe_appended: false,
            stamp: None,
            encoded: None,
            in_flight: None,
            size_bytes: BATCH_HEADER_BYTES,
        };
        self.batches.insert(id, batch);
        self.queues.entry(tp.clone()).or_default().push_back(id);
        self.uncompleted.entry(tp.clone()).or_default().insert(id);
        id
    }

    /// Seals every open batch so it is sent without waiting for its linger.
    pub fn flush(&mut self) {
        for batch in self.batches.values_mut() {
            batch.sealed = true;
        }
    }

    /// Partitions with at least one queued batch, in order.
    pub fn queued_partitions(&self) -> Vec<TopicPartition> {
        self.queues.iter().filter(|(_, q)| !q.is_empty()).map(|(tp, _)| tp.clone()).collect()
    }

    pub fn front(&self, tp: &TopicPartition) -> Option<&ProducerBatch> {
        let id = self.queues.get(tp)?.front()?;
        Some(&self.batches[id])
    }

    /// When the batch becomes sendable (linger or backoff), ignoring leaders and limits.
    pub fn ready_at(&self, batch: &ProducerBatch, queue_len: usize) -> Millis {
        let full = batch.sealed || queue_len > 1 || batch.attempts > 0;
        let linger_done =
            if full { batch.created_at } else { batch.created_at.plus_ms(self.linger_ms) };
        linger_done.max(batch.retry_at)
    }

    pub fn queue_len(&self, tp: &TopicPartition) -> usize {
        self.queues.get(tp).map_or(0, VecDeque::len)
    }

    /// Takes the front batch of `tp` out of its queue (it goes in flight).
    pub fn pop_front(&mut self, tp: &TopicPartition) -> BatchId {
        let id = self.queues.get_mut(tp).and_then(VecDeque::pop_front).expect("a queued batch");
        self.batches.get_mut(&id).expect("queued batch exists").sealed = true;
        id
    }

    /// Puts a batch back for a retry, ahead of every newer batch of its partition.
    pub fn reenqueue(&mut self, id: BatchId) {
        let tp = self.batches[&id].tp.clone();
        let queue = self.queues.entry(tp).or_default();
        assert!(!queue.contains(&id), "batch {id} queued twice");
        let at = queue.iter().position(|&other| other > id).unwrap_or(queue.len());
        queue.insert(at, id);
    }

    /// The oldest uncompleted batch of `tp`.
    pub fn first_uncompleted(&self, tp: &TopicPartition) -> Option<BatchId> {
        self.uncompleted.get(tp).and_then(|s| s.first().copied())
    }

    /// Whether `tp` has an uncompleted batch older than `id`.
    pub fn has_earlier_uncompleted(&self, tp: &TopicPartition, id: BatchId) -> bool {
        self.first_uncompleted(tp).is_some_and(|first| first < id)
    }

    /// Removes a completed batch from every structure; returns it.
    pub fn remove(&mut self, id: BatchId) -> ProducerBatch {
        let batch = self.batches.remove(&id).expect("completing a known batch");
        if let Some(queue) = self.queues.get_mut(&batch.tp) {
            queue.retain(|&other| other != id);
        }
        if let Some(set) = self.uncompleted.get_mut(&batch.tp) {
            set.remove(&id);
        }
        self.records -= batch.records.len();
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64, bytes: usize) -> PendingRecord {
        PendingRecord {
            id: SendId(i),
            timestamp_ms: 0,
            key: None,
            value: Bytes::from(vec![7u8; bytes]),
        }
    }

    #[test]
    fn batches_close_by_size() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = Accumulator::new(
            BATCH_HEADER_BYTES + 2 * record_size_upper_bound(None, &[0; 10]),
            1000,
        );
        let a = acc.append(Millis(0), &tp, record(0, 10));
        let b = acc.append(Millis(0), &tp, record(1, 10));
        assert_eq!(a, b);
        assert!(acc.batch(a).unwrap().sealed, "full after two records");
        let c = acc.append(Millis(0), &tp, record(2, 10));
        assert_ne!(a, c);
        assert_eq!(acc.queue_len(&tp), 2);
        let front = acc.front(&tp).unwrap();
        assert_eq!(acc.ready_at(front, 2), Millis(0));
        let bytes = front.encode();
        assert!(bytes.len() <= front.size_bytes());
    }

    #[test]
    fn reenqueue_goes_ahead_of_newer_batches() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = Accumulator::new(100, 0);
        let a = acc.append(Millis(0), &tp, record(0, 50));
        let first = acc.pop_front(&tp);
        assert_eq!(first, a);
        let b = acc.append(Millis(0), &tp, record(1, 50));
        assert_ne!(a, b);
        acc.reenqueue(a);
        assert_eq!(acc.front(&tp).unwrap().id, a);
        assert!(acc.has_earlier_uncompleted(&tp, b));
        acc.remove(a);
        assert!(!acc.has_earlier_uncompleted(&tp, b));
        assert_eq!(acc.record_count(), 1);
    }
}
