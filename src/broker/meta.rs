//! The broker's incarnation file (`meta/incarnation`): a counter bumped and synced at every
//! start, whose value fills the high bits of the producer ids the broker grants, so that
//! ids stay unique across restarts (the role of the producer-id blocks Kafka's controller
//! hands out).
//!
//! Like Kafka's checkpoint files the file is validated before it is trusted: it holds two
//! copies of the value, each with its own CRC-32C, and a value must fit the bits producer
//! ids give it. A copy that fails either check is ignored; a file with no good copy is
//! [`MetaError::Corrupt`], and the caller derives a fresh incarnation from the clock (the
//! same rule that chose every earlier one, so it still grows) instead of trusting garbage
//! that could collide with, or overflow into, an earlier producer id (disk-faults
//! `--variant bit-flips` seed 2835).
//!
//! Does not own the disk I/O (the node shell reads, writes and syncs the bytes) nor the
//! producer id layout beyond the bound it imposes ([`INCARNATION_MAX`]).

use bytes::{BufMut, Bytes};
use thiserror::Error;

pub const INCARNATION_FILE: &str = "meta/incarnation";
/// Producer ids are `incarnation << 20 | seq`, shifted 8 more bits in cluster mode, and must
/// stay positive i64s: 63 - 28 bits are left for the incarnation.
pub const INCARNATION_MAX: u64 = (1 << 35) - 1;
const MAGIC: u32 = 0x4b53_494e; // "KSIN"
const COPY_BYTES: usize = 4 + 8 + 4;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MetaError {
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: &'static str, reason: String },
}

/// Both copies of `incarnation`, each with its CRC: one 32-byte write, inside one sector.
pub fn encode_incarnation(incarnation: u64) -> Bytes {
    assert!(incarnation <= INCARNATION_MAX, "incarnation {incarnation} beyond {INCARNATION_MAX}");
    let mut out = Vec::with_capacity(2 * COPY_BYTES);
    for _ in 0..2 {
        let start = out.len();
        out.put_u32(MAGIC);
        out.put_u64(incarnation);
        let crc = crc32c::crc32c(&out[start..]);
        out.put_u32(crc);
    }
    Bytes::from(out)
}

/// The incarnation a file holds: `Ok(0)` for an empty file (a start before any was
/// written), the larger good copy otherwise, `Corrupt` when no copy is good.
pub fn decode_incarnation(file: &[u8]) -> Result<u64, MetaError> {
    if file.is_empty() {
        return Ok(0);
    }
    let good = file.chunks(COPY_BYTES).take(2).filter_map(decode_copy).max();
    good.ok_or_else(|| MetaError::Corrupt {
        path: INCARNATION_FILE,
        reason: format!("no copy of {} bytes passed its CRC and range checks", file.len()),
    })
}

/// The incarnation of this start: above the previous one and above the clock, so that a
/// value derived after a corrupt file still exceeds every earlier one (each earlier start
/// took `max(previous, its clock) + 1`, and starts are more than a millisecond apart).
pub fn next_incarnation(previous: Result<u64, &MetaError>, now_ms: u64) -> u64 {
    let previous = previous.unwrap_or(0);
    let next = previous.max(now_ms) + 1;
    assert!(next <= INCARNATION_MAX, "incarnation {next} beyond {INCARNATION_MAX} at {now_ms} ms");
    next
}

fn decode_copy(copy: &[u8]) -> Option<u64> {
    if copy.len() != COPY_BYTES {
        return None;
    }
    let magic = u32::from_be_bytes(copy[..4].try_into().expect("4 bytes"));
    let value = u64::from_be_bytes(copy[4..12].try_into().expect("8 bytes"));
    let crc = u32::from_be_bytes(copy[12..].try_into().expect("4 bytes"));
    let valid = magic == MAGIC && crc == crc32c::crc32c(&copy[..12]) && value <= INCARNATION_MAX;
    valid.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_survives_a_flip_in_one_copy() {
        let file = encode_incarnation(4727);
        assert_eq!(decode_incarnation(&file), Ok(4727));
        for copy in 0..2 {
            let mut flipped = file.to_vec();
            flipped[copy * COPY_BYTES + 5] ^= 0x80;
            assert_eq!(decode_incarnation(&flipped), Ok(4727), "flip in copy {copy}");
        }
    }

    #[test]
    fn both_copies_flipped_is_corrupt_and_the_clock_takes_over() {
        let mut file = encode_incarnation(4727).to_vec();
        file[4] ^= 0x80; // the top bit: once shifted into an overflowing producer id
        file[COPY_BYTES + 11] ^= 1;
        let previous = decode_incarnation(&file);
        assert!(matches!(previous, Err(MetaError::Corrupt { .. })), "{previous:?}");
        assert_eq!(next_incarnation(previous.as_ref().copied(), 21_000), 21_001);
        assert_eq!(decode_incarnation(&[]), Ok(0));
    }

    proptest! {
        #[test]
        fn any_damage_decodes_to_the_value_or_an_error(
            value in 0..=INCARNATION_MAX,
            flips in proptest::collection::vec((0usize..2 * COPY_BYTES, 0u8..8), 0..4),
            cut in 0usize..=2 * COPY_BYTES,
        ) {
            let mut file = encode_incarnation(value).to_vec();
            for (at, bit) in flips {
                file[at] ^= 1 << bit;
            }
            file.truncate(cut);
            match decode_incarnation(&file) {
                Ok(0) => prop_assert!(file.is_empty() || value == 0),
                Ok(found) => prop_assert_eq!(found, value),
                Err(MetaError::Corrupt { .. }) => prop_assert!(!file.is_empty()),
            }
        }
    }
}
