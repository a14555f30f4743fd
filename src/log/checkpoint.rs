//! The recovery-point checkpoint: the offset below which every byte of the partition was
//! synced (Kafka's recovery-point-offset-checkpoint), with its own CRC-32C.
//!
//! The file holds two 512-byte slots and each write goes to the slot the previous one did
//! not use, so a write torn at a sector boundary (or lost) never destroys the last good
//! value: recovery takes the valid slot with the highest generation. Both slots invalid
//! means "no recovery point" (0), which recovery reports.

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
    /// The byte offset in the file this generation's slot starts at.
    pub fn slot_offset(&self) -> u64 {
        (self.generation % 2) * SLOT_BYTES as u64
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
            // A valid record sits in the slot its generation selects; anything else is stale.
            if found.generation % 2 != slot as u64 {
                continue;
            }
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

    fn file_with(checkpoints: &[Checkpoint]) -> Vec<u8> {
        let mut file = vec![0u8; 2 * SLOT_BYTES];
        for c in checkpoints {
            let at = c.slot_offset() as usize;
            let bytes = c.encode();
            file[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        file
    }

    #[test]
    fn newest_valid_slot_wins_and_a_torn_slot_falls_back() {
        let old = Checkpoint { generation: 4, recovery_point: Offset(10) };
        let new = Checkpoint { generation: 5, recovery_point: Offset(20) };
        let mut file = file_with(&[old, new]);
        assert_eq!(Checkpoint::decode(&file), Some(new));
        file[SLOT_BYTES + 9] ^= 0x10;
        assert_eq!(Checkpoint::decode(&file), Some(old));
        file[3] ^= 1;
        assert_eq!(Checkpoint::decode(&file), None);
        assert_eq!(Checkpoint::decode(&[]), None);
    }
}
