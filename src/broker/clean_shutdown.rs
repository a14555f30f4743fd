//! The clean-shutdown marker (`meta/clean-shutdown`, KIP-966's clean shutdown file): written
//! and synced after every log is flushed at the end of a controlled shutdown, naming the
//! broker epoch of the incarnation that stopped. At the next start the broker reads it,
//! deletes it (durably, before registering), and registers with that epoch as
//! PreviousBrokerEpoch; the controller then knows the replica's log is whole and keeps it
//! in the ELR. A missing marker means the last incarnation crashed; a marker that fails its
//! CRC counts as missing (an unclean shutdown: the safe reading).
//!
//! Does not own the disk I/O (the node shell reads, writes, syncs and deletes the bytes).

use super::meta::MetaError;
use crate::types::BrokerEpoch;
use bytes::{BufMut, Bytes};

pub const CLEAN_SHUTDOWN_FILE: &str = "meta/clean-shutdown";
const MAGIC: u32 = 0x4b53_4353; // "KSCS"
const LEN: usize = 4 + 8 + 4;

/// The marker for the incarnation registered as `epoch`.
pub fn encode_clean_shutdown(epoch: BrokerEpoch) -> Bytes {
    let mut out = Vec::with_capacity(LEN);
    out.put_u32(MAGIC);
    out.put_u64(epoch.0);
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    Bytes::from(out)
}

/// The epoch a marker names; `Corrupt` when its length, magic or CRC is wrong.
pub fn decode_clean_shutdown(file: &[u8]) -> Result<BrokerEpoch, MetaError> {
    let corrupt = |reason: String| MetaError::Corrupt { path: CLEAN_SHUTDOWN_FILE, reason };
    if file.len() != LEN {
        return Err(corrupt(format!("{} bytes, not {LEN}", file.len())));
    }
    let magic = u32::from_be_bytes(file[..4].try_into().expect("4 bytes"));
    let epoch = u64::from_be_bytes(file[4..12].try_into().expect("8 bytes"));
    let crc = u32::from_be_bytes(file[12..].try_into().expect("4 bytes"));
    if magic != MAGIC || crc != crc32c::crc32c(&file[..12]) {
        return Err(corrupt("magic or CRC mismatch".to_string()));
    }
    Ok(BrokerEpoch(epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_any_flipped_bit_is_refused() {
        let file = encode_clean_shutdown(BrokerEpoch(4_242));
        assert_eq!(decode_clean_shutdown(&file), Ok(BrokerEpoch(4_242)));
        for bit in 0..file.len() * 8 {
            let mut flipped = file.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_clean_shutdown(&flipped).is_err(), "bit {bit} flipped was trusted");
        }
        assert!(decode_clean_shutdown(&file[..LEN - 1]).is_err(), "a torn marker");
        assert!(decode_clean_shutdown(&[]).is_err(), "an empty marker");
    }
}
