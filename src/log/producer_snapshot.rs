//! Producer state snapshots (Kafka's `<offset>.snapshot` files): the idempotent producer
//! state as of one offset, with a CRC-32C over the whole file.
//!
//! The log writes one with every recovery-point checkpoint, at the checkpoint's offset and
//! before it, so that whatever checkpoint recovery finds has its snapshot. Recovery rebuilds
//! producer state from the surviving batches, as Kafka does; the snapshot matters only when
//! a flipped bit destroyed batches below the recovery point: their producers' last
//! sequences are gone from the log, and without the snapshot a retry of a batch that was
//! appended (and read) before the crash would be appended again, a duplicate with
//! idempotence on (disk-faults `--variant bit-flips` seeds 1993 and 2840).
//!
//! Decoding validates everything and never panics: a snapshot that fails any check is
//! ignored, like a corrupt Kafka snapshot, and recovery falls back to the log alone.

use super::producer_state::{
    BatchMetadata, ProducerEntry, ProducerStateManager, PRODUCER_BATCHES_MAX,
};
use crate::types::{Offset, ProducerId};
use bytes::{Buf, BufMut, Bytes};

pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";
const MAGIC: u32 = 0x4b53_5053; // "KSPS"
/// magic, offset, producer count; then the CRC at the end.
const HEADER_BYTES: usize = 4 + 8 + 4;
const BATCH_BYTES: usize = 2 + 4 + 4 + 8 + 8;

/// The snapshot file of `state` as of `offset`.
pub(crate) fn encode(state: &ProducerStateManager, offset: Offset) -> Bytes {
    let mut out = Vec::with_capacity(HEADER_BYTES + state.len() * (9 + 5 * BATCH_BYTES) + 4);
    out.put_u32(MAGIC);
    out.put_u64(offset.0);
    out.put_u32(u32::try_from(state.len()).expect("producer count fits u32"));
    for (producer_id, entry) in state.entries() {
        assert!(!entry.batches.is_empty(), "{producer_id} stored without batches at {offset}");
        out.put_u64(producer_id.0);
        out.put_u8(entry.batches.len() as u8);
        for batch in &entry.batches {
            assert!(batch.last_offset < offset, "{producer_id} batch past snapshot {offset}");
            out.put_i16(batch.producer_epoch);
            out.put_i32(batch.first_sequence);
            out.put_i32(batch.last_sequence);
            out.put_u64(batch.first_offset.0);
            out.put_u64(batch.last_offset.0);
        }
    }
    let crc = crc32c::crc32c(&out);
    out.put_u32(crc);
    Bytes::from(out)
}

/// The state a snapshot file holds and its offset, if every check passes.
pub(crate) fn decode(file: &[u8]) -> Option<(Offset, ProducerStateManager)> {
    let body_len = file.len().checked_sub(4)?;
    let (body, crc) = file.split_at(body_len);
    if body.len() < HEADER_BYTES || crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?)
    {
        return None;
    }
    let mut buf = body;
    if buf.get_u32() != MAGIC {
        return None;
    }
    let offset = Offset(buf.get_u64());
    let count = buf.get_u32();
    let mut state = ProducerStateManager::new();
    for _ in 0..count {
        let (producer_id, entry) = decode_entry(&mut buf, offset)?;
        if state.get(producer_id).is_some() {
            return None;
        }
        state.insert(producer_id, entry);
    }
    buf.is_empty().then_some((offset, state))
}

fn decode_entry(buf: &mut &[u8], offset: Offset) -> Option<(ProducerId, ProducerEntry)> {
    if buf.remaining() < 9 {
        return None;
    }
    let producer_id = ProducerId(buf.get_u64());
    let batches = usize::from(buf.get_u8());
    if batches == 0 || batches > PRODUCER_BATCHES_MAX || buf.remaining() < batches * BATCH_BYTES {
        return None;
    }
    let mut entry = ProducerEntry::default();
    for _ in 0..batches {
        let batch = BatchMetadata {
            producer_epoch: buf.get_i16(),
            first_sequence: buf.get_i32(),
            last_sequence: buf.get_i32(),
            first_offset: Offset(buf.get_u64()),
            last_offset: Offset(buf.get_u64()),
        };
        let after_previous = entry.batches.back().is_none_or(|last| {
            last.last_offset < batch.first_offset && last.producer_epoch == batch.producer_epoch
        });
        let sane = batch.first_offset <= batch.last_offset && batch.last_offset < offset;
        if !after_previous || !sane {
            return None;
        }
        entry.batches.push_back(batch);
    }
    Some((producer_id, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::BatchBuilder;
    use crate::types::Epoch;
    use proptest::prelude::*;

    fn state_of(producers: u64, batches: u64) -> ProducerStateManager {
        let mut state = ProducerStateManager::new();
        for i in 0..producers * batches {
            let mut builder =
                BatchBuilder::idempotent((i % producers) as i64, 2, (i / producers) as i32);
            builder.push(0, None, Some(b"v"), &[]);
            state.update(builder.build().with_position(Offset(i), Epoch(0)).header());
        }
        state
    }

    #[test]
    fn round_trip() {
        let state = state_of(3, 7);
        assert_eq!(decode(&encode(&state, Offset(21))), Some((Offset(21), state)));
        let empty = ProducerStateManager::new();
        assert_eq!(decode(&encode(&empty, Offset(0))), Some((Offset(0), empty)));
    }

    proptest! {
        #[test]
        fn any_damage_decodes_to_the_state_or_nothing(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let state = state_of(3, 7);
            let mut file = encode(&state, Offset(21)).to_vec();
            let flipped = !flips.is_empty();
            for (at, bit) in flips {
                let at = at.index(file.len());
                file[at] ^= 1 << bit;
            }
            if truncate {
                file.truncate(cut.index(file.len()));
            }
            match decode(&file) {
                Some(found) => prop_assert_eq!(found, (Offset(21), state)),
                None => prop_assert!(flipped || truncate),
            }
        }
    }
}
