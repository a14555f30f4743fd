//! The sparse offset index of one segment (Kafka's `.index` file): an entry every
//! `index_interval_bytes` of log data mapping a batch's base offset, relative to the
//! segment's base, to the batch's byte position in the segment. Reads start their scan at
//! the entry below the wanted offset instead of the segment's first byte.
//!
//! The index is derived data: it is rebuilt from the segment on every recovery and compared
//! with the file, which is rewritten when it differs. It owns no batches and no file I/O.

use bytes::{BufMut, Bytes};

/// Bytes per entry on disk: relative offset u32 + position u32, big-endian, as Kafka.
pub const INDEX_ENTRY_BYTES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<IndexEntry>,
}

impl OffsetIndex {
    pub fn new() -> Self {
        OffsetIndex::default()
    }

    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry; offsets and positions strictly grow.
    pub fn append(&mut self, entry: IndexEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.relative_offset > last.relative_offset && entry.position > last.position,
                "index entry {entry:?} does not follow {last:?}"
            );
        }
        self.entries.push(entry);
    }

    /// The byte position to start scanning from for `relative_offset`: the position of the
    /// last entry at or below it, or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let after = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        let position = after.checked_sub(1).map_or(0, |i| self.entries[i].position);
        debug_assert!(after == 0 || self.entries[after - 1].relative_offset <= relative_offset);
        position
    }

    /// Drops every entry at or past byte `position` (the segment was cut there).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|e| e.position < position);
        self.entries.truncate(keep);
    }

    pub fn encode_entry(entry: IndexEntry) -> Bytes {
        let mut out = Vec::with_capacity(INDEX_ENTRY_BYTES);
        out.put_u32(entry.relative_offset);
        out.put_u32(entry.position);
        Bytes::from(out)
    }

    /// The whole index file.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.entries.len() * INDEX_ENTRY_BYTES);
        for entry in &self.entries {
            out.put_u32(entry.relative_offset);
            out.put_u32(entry.position);
        }
        assert_eq!(out.len(), self.entries.len() * INDEX_ENTRY_BYTES, "index encoding size");
        Bytes::from(out)
    }

    /// Byte length of the file holding the first `entries` entries.
    pub fn file_len(entries: usize) -> u64 {
        (entries * INDEX_ENTRY_BYTES) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_entry_at_or_below() {
        let mut index = OffsetIndex::new();
        index.append(IndexEntry { relative_offset: 10, position: 1000 });
        index.append(IndexEntry { relative_offset: 20, position: 2000 });
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 0);
        assert_eq!(index.lookup(10), 1000);
        assert_eq!(index.lookup(19), 1000);
        assert_eq!(index.lookup(25), 2000);
        index.truncate_to_position(2000);
        assert_eq!(index.len(), 1);
        assert_eq!(index.encode().len(), INDEX_ENTRY_BYTES);
    }
}
