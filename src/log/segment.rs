//! One log segment as the page cache holds it: the bytes of its `.log` file (concatenated,
//! already validated record batches), its sparse offset index, and the facts retention and
//! rolling need (next offset, newest timestamp, first append time).
//!
//! A segment trusts its in-memory bytes: they were validated when appended or recovered.
//! It does not queue disk operations; the partition log does that for it.

use super::index::{IndexEntry, OffsetIndex};
use crate::record::RecordBatch;
use crate::types::{Millis, Offset};
use bytes::Bytes;

/// Fixed header fields read straight from trusted bytes (layout in `crate::record`).
const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LAST_OFFSET_DELTA_AT: usize = 23;
const LOG_OVERHEAD: usize = crate::record::LOG_OVERHEAD_BYTES;

/// Position and offsets of one batch inside a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLocation {
    pub position: usize,
    pub len: usize,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Clone, Debug)]
pub struct Segment {
    base_offset: Offset,
    data: Vec<u8>,
    index: OffsetIndex,
    next_offset: Offset,
    max_timestamp_ms: i64,
    first_append_ms: Option<Millis>,
    bytes_since_index_entry: u32,
}

impl Segment {
    pub fn new(base_offset: Offset) -> Segment {
        Segment {
            base_offset,
            data: Vec::new(),
            index: OffsetIndex::new(),
            next_offset: base_offset,
            max_timestamp_ms: -1,
            first_append_ms: None,
            bytes_since_index_entry: 0,
        }
    }

    /// Rebuilds a segment (and its index) from validated batches, e.g. during recovery.
    pub fn from_batches(
        base_offset: Offset,
        batches: &[RecordBatch],
        index_interval_bytes: u32,
        now: Millis,
    ) -> Segment {
        let mut segment = Segment::new(base_offset);
        for batch in batches {
            segment.append(batch, index_interval_bytes, now);
        }
        segment
    }

    pub fn base_offset(&self) -> Offset {
        self.base_offset
    }

    /// The offset after the last batch, or the base offset when empty.
    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn index(&self) -> &OffsetIndex {
        &self.index
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms
    }

    pub fn first_append_ms(&self) -> Option<Millis> {
        self.first_append_ms
    }

    /// Appends a batch whose base offset is at or past `next_offset`. Returns its byte
    /// position and the index entry added for it, if any (Kafka's rule: an entry once more
    /// than `index_interval_bytes` were appended since the last one).
    pub fn append(
        &mut self,
        batch: &RecordBatch,
        index_interval_bytes: u32,
        now: Millis,
    ) -> (usize, Option<IndexEntry>) {
        assert!(
            batch.base_offset() >= self.next_offset,
            "batch {} below segment {} next offset {}",
            batch.base_offset(),
            self.base_offset,
            self.next_offset
        );
        let relative = batch.last_offset().0 - self.base_offset.0;
        assert!(relative <= u64::from(u32::MAX), "segment {} overflows u32", self.base_offset);
        let position = self.data.len();
        let mut entry = None;
        if self.bytes_since_index_entry > index_interval_bytes {
            let relative_offset = (batch.base_offset().0 - self.base_offset.0) as u32;
            let indexed = IndexEntry { relative_offset, position: position as u32 };
            self.index.append(indexed);
            self.bytes_since_index_entry = 0;
            entry = Some(indexed);
        }
        self.bytes_since_index_entry =
            self.bytes_since_index_entry.saturating_add(batch.len_bytes() as u32);
        self.data.extend_from_slice(batch.as_bytes());
        self.next_offset = batch.next_offset();
        self.max_timestamp_ms = self.max_timestamp_ms.max(batch.header().max_timestamp);
        self.first_append_ms.get_or_insert(now);
        (position, entry)
    }

    /// The batch starting at byte `position` (trusted bytes).
    pub fn location_at(&self, position: usize) -> BatchLocation {
        let data = &self.data[position..];
        assert!(
            data.len() >= LAST_OFFSET_DELTA_AT + 4,
            "segment {} position {position}",
            self.base_offset
        );
        let be_i64 = |at: usize| i64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let be_i32 = |at: usize| i32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        let base_offset = Offset(be_i64(BASE_OFFSET_AT) as u64);
        let len = be_i32(BATCH_LENGTH_AT) as usize + LOG_OVERHEAD;
        let last_offset = base_offset.plus(be_i32(LAST_OFFSET_DELTA_AT) as u64);
        assert!(
            position + len <= self.data.len(),
            "segment {} batch at {position} overruns",
            self.base_offset
        );
        BatchLocation { position, len, base_offset, last_offset }
    }

    /// Every batch location in order.
    pub fn locations(&self) -> Vec<BatchLocation> {
        self.locations_from(0)
    }

    fn locations_from(&self, mut position: usize) -> Vec<BatchLocation> {
        let mut out = Vec::new();
        while position < self.data.len() {
            let location = self.location_at(position);
            position += location.len;
            out.push(location);
        }
        out
    }

    /// The first batch whose last offset is at or past `offset`, found through the index.
    pub fn find(&self, offset: Offset) -> Option<BatchLocation> {
        let relative = offset.0.saturating_sub(self.base_offset.0).min(u64::from(u32::MAX));
        let mut position = self.index.lookup(relative as u32) as usize;
        while position < self.data.len() {
            let location = self.location_at(position);
            if location.last_offset >= offset {
                return Some(location);
            }
            position += location.len;
        }
        None
    }

    pub fn slice(&self, from: usize, to: usize) -> Bytes {
        Bytes::copy_from_slice(&self.data[from..to])
    }

    /// Parsed batches (for rebuilding producer state, epochs and compaction).
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.locations()
            .into_iter()
            .map(|l| {
                RecordBatch::parse(self.slice(l.position, l.position + l.len))
                    .expect("segment bytes were validated when appended")
            })
            .collect()
    }

    /// Cuts the segment before the first batch holding `offset` or anything later.
    /// Returns the new byte length. The caller keeps batches whole.
    pub fn truncate_to(&mut self, offset: Offset) -> usize {
        let Some(cut) = self.find(offset) else { return self.data.len() };
        self.data.truncate(cut.position);
        self.index.truncate_to_position(cut.position as u32);
        let kept = self.locations();
        self.next_offset = kept.last().map_or(self.base_offset, |l| l.last_offset.next());
        // Rebuild the derived facts from what is left.
        self.bytes_since_index_entry = recount_since_index(&kept, &self.index);
        self.max_timestamp_ms =
            self.batches().iter().map(|b| b.header().max_timestamp).max().unwrap_or(-1);
        assert!(
            self.next_offset <= offset.max(self.base_offset),
            "segment {} cut at {offset}",
            self.base_offset
        );
        cut.position
    }
}

fn recount_since_index(locations: &[super::segment::BatchLocation], index: &OffsetIndex) -> u32 {
    let from = index.entries().last().map_or(0, |e| e.position as usize);
    locations.iter().filter(|l| l.position >= from).map(|l| l.len as u32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::BatchBuilder;
    use crate::types::Epoch;

    fn batch(base: u64, records: u32, value_bytes: usize) -> RecordBatch {
        let mut builder = BatchBuilder::new();
        for i in 0..records {
            builder.push(i64::from(i), None, Some(&vec![b'v'; value_bytes]), &[]);
        }
        builder.build().with_position(Offset(base), Epoch(0))
    }

    #[test]
    fn find_uses_the_index_from_the_middle() {
        let mut segment = Segment::new(Offset(100));
        let mut next = 100;
        for _ in 0..50 {
            let b = batch(next, 3, 100);
            next = b.next_offset().0;
            segment.append(&b, 1000, Millis(0));
        }
        assert!(segment.index().len() > 3, "sparse index has entries");
        for offset in 100..next {
            let location = segment.find(Offset(offset)).expect("found");
            assert!(location.base_offset.0 <= offset && offset <= location.last_offset.0);
        }
        assert!(segment.find(Offset(next)).is_none());
    }

    #[test]
    fn truncate_keeps_whole_batches() {
        let mut segment = Segment::new(Offset(0));
        for base in [0, 3, 6] {
            segment.append(&batch(base, 3, 10), 0, Millis(0));
        }
        let position = segment.truncate_to(Offset(4));
        assert_eq!(segment.next_offset(), Offset(3));
        assert_eq!(segment.size_bytes(), position as u64);
        assert_eq!(segment.batches().len(), 1);
    }
}
