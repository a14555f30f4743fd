//! One simulated file: durable bytes (what survived the last sync or crash) plus the ordered
//! pending writes a crash has yet to decide. Reads see the page-cache view, the durable bytes
//! with the pending writes applied in issue order.
//!
//! Owns: the byte-level model of one file and the sector arithmetic of torn writes. Does not
//! own: latency, randomness, capacity or error injection (the node disk decides those).

use bytes::Bytes;

/// Disk sector size: a torn write keeps a prefix ending on a multiple of this many bytes of
/// the file (512 bytes is the logical sector size that every disk still reports).
pub(super) const SECTOR_BYTES: u64 = 512;

/// A write that reached the page cache but not the disk.
#[derive(Clone, Debug)]
pub(super) struct PendingWrite {
    /// Issue order within the node: a sync makes durable the writes below its mark.
    pub(super) seq: u64,
    pub(super) offset: u64,
    pub(super) data: Bytes,
}

impl PendingWrite {
    pub(super) fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct SimFile {
    durable: Vec<u8>,
    /// In issue order: `seq` strictly increases along the list.
    pending: Vec<PendingWrite>,
    /// Page-cache length: the durable length or the end of the furthest pending write.
    len: u64,
}

impl SimFile {
    /// Page-cache length in bytes.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn durable(&self) -> &[u8] {
        &self.durable
    }

    pub(super) fn durable_mut(&mut self) -> &mut [u8] {
        &mut self.durable
    }

    #[cfg(test)]
    pub(super) fn pending(&self) -> &[PendingWrite] {
        &self.pending
    }

    pub(super) fn pending_bytes(&self) -> u64 {
        self.pending.iter().map(|w| w.data.len() as u64).sum()
    }

    /// Buffers a write in the page cache. The caller checked that `offset + len` fits.
    pub(super) fn write(&mut self, seq: u64, offset: u64, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if let Some(last) = self.pending.last() {
            assert!(last.seq < seq, "pending seq {} >= new seq {seq}", last.seq);
        }
        let write = PendingWrite { seq, offset, data };
        self.len = self.len.max(write.end());
        self.pending.push(write);
    }

    /// Makes durable, in order, every pending write issued before `seq_mark`; returns the
    /// number of bytes made durable. Later writes stay pending.
    pub(super) fn sync_before(&mut self, seq_mark: u64) -> u64 {
        let count = self.pending.partition_point(|w| w.seq < seq_mark);
        let synced: Vec<PendingWrite> = self.pending.drain(..count).collect();
        let mut bytes = 0;
        for write in &synced {
            self.apply_durable(write.offset, &write.data);
            bytes += write.data.len() as u64;
        }
        bytes
    }

    /// Removes every pending write, for a crash to decide each one.
    pub(super) fn take_pending(&mut self) -> Vec<PendingWrite> {
        std::mem::take(&mut self.pending)
    }

    /// Writes bytes straight to the durable image (a synced or crash-kept write), extending
    /// the file with zeros when it starts past the durable end.
    pub(super) fn apply_durable(&mut self, offset: u64, data: &[u8]) {
        let start = usize::try_from(offset).expect("offset checked against capacity on write");
        let end = start + data.len();
        if self.durable.len() < end {
            self.durable.resize(end, 0);
        }
        self.durable[start..end].copy_from_slice(data);
        self.len = self.len.max(end as u64);
    }

    /// Recomputes the page-cache length after the pending list was cleared by a crash.
    pub(super) fn settle_after_crash(&mut self) {
        assert!(self.pending.is_empty(), "settle with {} pending", self.pending.len());
        self.len = self.durable.len() as u64;
    }

    /// Sets the length, durably: the durable image is cut or zero-extended to `len` and
    /// pending data beyond `len` is dropped.
    pub(super) fn truncate(&mut self, len: u64) {
        let len_usize = usize::try_from(len).expect("length checked against capacity");
        self.durable.resize(len_usize, 0);
        self.pending.retain_mut(|write| {
            if write.offset >= len {
                return false;
            }
            if write.end() > len {
                write.data.truncate((len - write.offset) as usize);
            }
            true
        });
        self.len = len;
    }

    /// The page-cache view of `[offset, offset + len)`, cut short at the end of the file.
    pub(super) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.len {
            return Vec::new();
        }
        let end = self.len.min(offset.saturating_add(len as u64));
        let mut buf = vec![0u8; (end - offset) as usize];
        let durable_end = end.min(self.durable.len() as u64);
        if offset < durable_end {
            let count = (durable_end - offset) as usize;
            buf[..count].copy_from_slice(&self.durable[offset as usize..durable_end as usize]);
        }
        for write in &self.pending {
            let from = write.offset.max(offset);
            let to = write.end().min(end);
            if from < to {
                let src = &write.data[(from - write.offset) as usize..(to - write.offset) as usize];
                buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        }
        assert!(buf.len() <= len, "read {} bytes > asked {len}", buf.len());
        buf
    }
}

/// The sector boundaries a torn write of `len` bytes at `offset` may end on: every multiple
/// of [`SECTOR_BYTES`] that is `> offset` and `<= offset + len`, as (first, count).
pub(super) fn torn_boundaries(offset: u64, len: u64) -> (u64, u64) {
    let first = (offset / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let last = (offset + len) / SECTOR_BYTES * SECTOR_BYTES;
    if first > last {
        return (first, 0);
    }
    (first, (last - first) / SECTOR_BYTES + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_overlays_pending_writes_in_order() {
        let mut file = SimFile::default();
        file.apply_durable(0, b"aaaaaaaa");
        file.write(1, 2, Bytes::from_static(b"bbbb"));
        file.write(2, 4, Bytes::from_static(b"cccccc"));
        assert_eq!(file.len(), 10);
        assert_eq!(file.read(0, 100), b"aabbcccccc");
        assert_eq!(file.read(3, 2), b"bc");
        assert!(file.read(10, 5).is_empty());
        assert_eq!(file.durable(), b"aaaaaaaa");
    }

    #[test]
    fn sync_before_keeps_later_writes_pending() {
        let mut file = SimFile::default();
        file.write(1, 0, Bytes::from_static(b"xx"));
        file.write(5, 2, Bytes::from_static(b"yy"));
        assert_eq!(file.sync_before(5), 2);
        assert_eq!(file.durable(), b"xx");
        assert_eq!(file.pending().len(), 1);
        assert_eq!(file.read(0, 4), b"xxyy");
    }

    #[test]
    fn truncate_cuts_durable_and_pending() {
        let mut file = SimFile::default();
        file.apply_durable(0, b"0123456789");
        file.write(1, 6, Bytes::from_static(b"abcdef"));
        file.write(2, 20, Bytes::from_static(b"zz"));
        file.truncate(8);
        assert_eq!(file.len(), 8);
        assert_eq!(file.durable(), b"01234567");
        assert_eq!(file.read(0, 100), b"012345ab");
        assert_eq!(file.pending().len(), 1);
    }

    #[test]
    fn torn_boundaries_are_sector_multiples_inside_the_write() {
        assert_eq!(torn_boundaries(0, 100), (512, 0));
        assert_eq!(torn_boundaries(0, 512), (512, 1));
        assert_eq!(torn_boundaries(100, 1000), (512, 2));
        assert_eq!(torn_boundaries(512, 512), (1024, 1));
        assert_eq!(torn_boundaries(511, 1), (512, 1));
        assert_eq!(torn_boundaries(513, 1022), (1024, 1));
    }
}
