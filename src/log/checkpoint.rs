//! The recovery-point checkpoint: the offset below which every byte of the partition was
//! synced (Kafka's recovery-point-offset-checkpoint), with its own CRC-32C.
//!
//! The file holds two 512-byte slots. Each checkpoint is written to both, one after the
//! other with a sync in between: a write torn at a sector boundary or lost in a crash never
//! destroys the last good value, and a silent bit flip in one slot leaves the same value in
//! the other. Recovery takes the valid slot with the highest generation.
//! Both slots invalid means "no recovery point" (0), which recovery reports.

use crate::types::Offset;
use bytes::{BufMut, Bytes};

pub const CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// One disk sector per slot: the simulated disk tears writes only at 512-byte boundaries.
pub const SLOT_BYTES: usize = 512;
const MAGIC: u32 = 0x4b53_5250; // "KSRP"
const PAYLOAD_BYTES: usize = 4 + 8 + 8;
const RECORD_BYTES: usize = PAYLOAD_BYTES + 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub generation: u64,
    pub recovery_point: Offset,
}

impl Checkpoint {
    /// Where the two copies go, in the order they are written.
    pub fn slot_offsets(&self) -> [u64; 2] {
        let first = (self.generation % 2) * SLOT_BYTES as u64;
        [first, SLOT_BYTES as u64 - first]
    }

    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(RECORD_BYTES);
        out.put_u32(MAGIC);
        out.put_u64(self.generation);
        out.put_u64(self.recovery_point.0);
        let crc = crc32c::crc32c(&out);
        out.put_u32(crc);
        assert_eq!(out.len(), RECORD_BYTES, "checkpoint record size");
        Bytes::from(out)
    }

    fn decode_slot(slot: &[u8]) -> Option<Checkpoint> {
        if slot.len() < RECORD_BYTES {
            return None;
        }
        let u32_at = |at: usize| u32::from_be_bytes(slot[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_be_bytes(slot[at..at + 8].try_into().expect("8"));
        if u32_at(0) != MAGIC || crc32c::crc32c(&slot[..PAYLOAD_BYTES]) != u32_at(PAYLOAD_BYTES) {
            return None;
        }
        Some(Checkpoint { generation: u64_at(4), recovery_point: Offset(u64_at(12)) })
    }

    /// The newest valid slot of a checkpoint file, if any.
    pub fn decode(file: &[u8]) -> Option<Checkpoint> {
        let mut best: Option<Checkpoint> = None;
        for slot in 0..2 {
            let start = slot * SLOT_BYTES;
            if file.len() <= start {
                break;
            }
            let end = (start + SLOT_BYTES).min(file.len());
            let Some(found) = Checkpoint::decode_slot(&file[start..end]) else { continue };
            if best.is_none_or(|b| found.generation > b.generation) {
                best = Some(found);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file after these checkpoints were written, the last one only to its first
    /// `last_copies` slots (a crash between the two copies).
    fn file_with(checkpoints: &[Checkpoint], last_copies: usize) -> Vec<u8> {
        let mut file = vec![0u8; 2 * SLOT_BYTES];
        for (i, c) in checkpoints.iter().enumerate() {
            let copies = if i + 1 == checkpoints.len() { last_copies } else { 2 };
            for at in c.slot_offsets().into_iter().take(copies) {
                let bytes = c.encode();
                file[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
            }
        }
        file
    }

    #[test]
    fn a_bit_flip_in_either_slot_keeps_the_newest_value() {
        let old = Checkpoint { generation: 4, recovery_point: Offset(10) };
        let new = Checkpoint { generation: 5, recovery_point: Offset(20) };
        for slot in 0..2 {
            let mut file = file_with(&[old, new], 2);
            file[slot * SLOT_BYTES + 9] ^= 0x10;
            assert_eq!(Checkpoint::decode(&file), Some(new), "flip in slot {slot}");
        }
    }

    #[test]
    fn a_crash_between_or_during_the_copies_keeps_a_whole_value() {
        let old = Checkpoint { generation: 4, recovery_point: Offset(10) };
        let new = Checkpoint { generation: 5, recovery_point: Offset(20) };
        assert_eq!(Checkpoint::decode(&file_with(&[old, new], 1)), Some(new));
        assert_eq!(Checkpoint::decode(&file_with(&[old, new], 0)), Some(old));
        let mut torn_first = file_with(&[old, new], 1);
        let first = new.slot_offsets()[0] as usize;
        torn_first[first + 3] ^= 1;
        assert_eq!(Checkpoint::decode(&torn_first), Some(old));
        let mut both = file_with(&[old, new], 2);
        both[3] ^= 1;
        both[SLOT_BYTES + 3] ^= 1;
        assert_eq!(Checkpoint::decode(&both), None);
        assert_eq!(Checkpoint::decode(&[]), None);
    }
}
