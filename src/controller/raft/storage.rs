//! The persisted state of a Raft node as an append-only journal of CRC-checked records.
//!
//! A node never writes a file: `Ready::persist` hands the driver `PersistRecord`s, which the
//! driver encodes with `encode_records` and appends to its (simulated) disk. After a crash
//! the driver reads back whatever survived and calls `recover`, which replays the longest
//! valid prefix: the last `HardState` wins, `Truncate` removes a log suffix, `Entry` appends.
//! Any prefix of the journal is a state the node really had, so a lost or torn unsynced
//! tail recovers to an earlier (never an invented) state. Corruption (a torn or bit-flipped
//! record, a zero-filled hole) stops the replay there; `Recovery::valid_bytes` tells the
//! driver where to truncate the file before appending again.
//!
//! ```text
//! record: payload_len u32 LE | crc32c(payload) u32 LE | payload (postcard PersistRecord)
//! ```
//!
//! This module owns the byte layout and replay; it does not own when to sync (the node says
//! so in `Ready::must_sync`) nor log compaction (not modelled: the journal only grows;
//! `encode_state` gives the bytes of a fresh, compact journal for a driver that rewrites).

use super::message::{LogEntry, LogIndex};
use crate::types::{NodeId, Term};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Length and CRC fields before each payload.
pub const RECORD_HEADER_BYTES: usize = 8;
/// Larger payloads are treated as corruption (a flipped length must not look valid).
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Term and vote: Raft's persistent state besides the log (Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistRecord {
    HardState(HardState),
    /// Remove every entry with index >= `from_index` (a follower's conflict truncation).
    Truncate {
        from_index: LogIndex,
    },
    Entry(LogEntry),
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StorageError {
    #[error("torn record at byte {at}: {have} bytes left, record needs {need}")]
    Torn { at: usize, have: usize, need: usize },
    #[error("record at byte {at} declares {len} payload bytes (max {RECORD_PAYLOAD_BYTES_MAX})")]
    BadLength { at: usize, len: usize },
    #[error("crc mismatch at byte {at}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { at: usize, stored: u32, computed: u32 },
    #[error("undecodable record at byte {at}")]
    Malformed { at: usize },
    #[error("record at byte {at} breaks the log: {what}")]
    Inconsistent { at: usize, what: &'static str },
}

/// The state a node restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistentState {
    pub hard_state: HardState,
    /// Entries with indexes 1..=len, contiguous.
    pub entries: Vec<LogEntry>,
}

/// What `recover` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub state: PersistentState,
    /// Bytes of the valid prefix; the driver truncates its file here before appending.
    pub valid_bytes: usize,
    pub records: usize,
    /// Why the replay stopped before the end of the bytes, if it did.
    pub corruption: Option<StorageError>,
}

pub fn encode_record(record: &PersistRecord, out: &mut Vec<u8>) {
    let payload = postcard::to_allocvec(record).expect("persist records always serialize");
    assert!(
        !payload.is_empty() && payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "persist record of {} bytes out of bounds",
        payload.len()
    );
    let len = u32::try_from(payload.len()).expect("bounded by RECORD_PAYLOAD_BYTES_MAX");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

pub fn encode_records(records: &[PersistRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        encode_record(record, &mut out);
    }
    out
}

/// A compact journal holding exactly `state`.
pub fn encode_state(state: &PersistentState) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(&PersistRecord::HardState(state.hard_state), &mut out);
    for entry in &state.entries {
        encode_record(&PersistRecord::Entry(entry.clone()), &mut out);
    }
    out
}

/// Decodes one record at `at`; `Ok(None)` at the clean end of the bytes.
fn decode_record(bytes: &[u8], at: usize) -> Result<Option<(PersistRecord, usize)>, StorageError> {
    let rest = bytes.get(at..).unwrap_or(&[]);
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < RECORD_HEADER_BYTES {
        return Err(StorageError::Torn { at, have: rest.len(), need: RECORD_HEADER_BYTES });
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(StorageError::BadLength { at, len });
    }
    let need = RECORD_HEADER_BYTES + len;
    if rest.len() < need {
        return Err(StorageError::Torn { at, have: rest.len(), need });
    }
    let payload = &rest[RECORD_HEADER_BYTES..need];
    let computed = crc32c::crc32c(payload);
    if computed != stored {
        return Err(StorageError::CrcMismatch { at, stored, computed });
    }
    let record: PersistRecord =
        postcard::from_bytes(payload).map_err(|_| StorageError::Malformed { at })?;
    Ok(Some((record, at + need)))
}

/// Replays one record onto `state`, refusing records that would break the log's shape.
fn replay(
    state: &mut PersistentState,
    record: PersistRecord,
    at: usize,
) -> Result<(), StorageError> {
    match record {
        PersistRecord::HardState(hs) => {
            if hs.term < state.hard_state.term {
                return Err(StorageError::Inconsistent { at, what: "term went backwards" });
            }
            state.hard_state = hs;
        }
        PersistRecord::Truncate { from_index } => {
            if from_index == 0 {
                return Err(StorageError::Inconsistent { at, what: "truncate from index 0" });
            }
            let keep = usize::try_from(from_index - 1).unwrap_or(usize::MAX);
            state.entries.truncate(keep);
        }
        PersistRecord::Entry(entry) => {
            let expected = state.entries.len() as u64 + 1;
            if entry.index != expected {
                return Err(StorageError::Inconsistent { at, what: "entry index not contiguous" });
            }
            let prev_term = state.entries.last().map_or(Term(0), |e| e.term);
            if entry.term < prev_term || entry.term > state.hard_state.term {
                return Err(StorageError::Inconsistent { at, what: "entry term out of order" });
            }
            state.entries.push(entry);
        }
    }
    Ok(())
}

/// Replays the longest valid prefix of a journal. Never panics, whatever the bytes.
pub fn recover(bytes: &[u8]) -> Recovery {
    let mut recovery = Recovery::default();
    let mut at = 0;
    loop {
        match decode_record(bytes, at) {
            Ok(None) => break,
            Ok(Some((record, next))) => {
                // `replay` checks before it mutates, so on error the state is the prefix's.
                if let Err(err) = replay(&mut recovery.state, record, at) {
                    recovery.corruption = Some(err);
                    break;
                }
                at = next;
                recovery.records += 1;
            }
            Err(err) => {
                recovery.corruption = Some(err);
                break;
            }
        }
    }
    recovery.valid_bytes = at;
    debug_assert!(recovery.valid_bytes <= bytes.len());
    recovery
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::raft::message::EntryPayload;
    use proptest::prelude::*;

    fn entry(index: LogIndex, term: u64) -> LogEntry {
        LogEntry { index, term: Term(term), payload: EntryPayload::Data(vec![index as u8; 5]) }
    }

    fn sample_journal() -> (Vec<PersistRecord>, Vec<u8>) {
        let records = vec![
            PersistRecord::HardState(HardState { term: Term(1), voted_for: Some(NodeId(1)) }),
            PersistRecord::Entry(entry(1, 1)),
            PersistRecord::Entry(entry(2, 1)),
            PersistRecord::HardState(HardState { term: Term(2), voted_for: None }),
            PersistRecord::Truncate { from_index: 2 },
            PersistRecord::Entry(entry(2, 2)),
            PersistRecord::Entry(entry(3, 2)),
        ];
        let bytes = encode_records(&records);
        (records, bytes)
    }

    /// Replays records without the byte layout: the model `recover` must agree with.
    fn model(records: &[PersistRecord]) -> PersistentState {
        let mut state = PersistentState::default();
        for (i, r) in records.iter().enumerate() {
            replay(&mut state, r.clone(), i).expect("model records are consistent");
        }
        state
    }

    #[test]
    fn replays_truncation_and_last_hard_state() {
        let (records, bytes) = sample_journal();
        let rec = recover(&bytes);
        assert_eq!(rec.corruption, None);
        assert_eq!(rec.valid_bytes, bytes.len());
        assert_eq!(rec.records, records.len());
        assert_eq!(rec.state.hard_state, HardState { term: Term(2), voted_for: None });
        assert_eq!(rec.state.entries, vec![entry(1, 1), entry(2, 2), entry(3, 2)]);
    }

    #[test]
    fn torn_tail_recovers_the_previous_records() {
        let (records, bytes) = sample_journal();
        let whole = encode_records(&records[..4]).len();
        let rec = recover(&bytes[..whole + 3]);
        assert_eq!(rec.valid_bytes, whole);
        assert!(matches!(rec.corruption, Some(StorageError::Torn { .. })));
        assert_eq!(rec.state, model(&records[..4]));
    }

    #[test]
    fn bit_flip_stops_replay_at_the_flipped_record() {
        let (records, mut bytes) = sample_journal();
        let two = encode_records(&records[..2]).len();
        bytes[two + RECORD_HEADER_BYTES + 1] ^= 0x10;
        let rec = recover(&bytes);
        assert_eq!(rec.valid_bytes, two);
        assert!(matches!(rec.corruption, Some(StorageError::CrcMismatch { .. })));
        assert_eq!(rec.state, model(&records[..2]));
    }

    #[test]
    fn zero_filled_hole_is_corruption_not_an_empty_record() {
        let (_, mut bytes) = sample_journal();
        let len = bytes.len();
        bytes.extend(std::iter::repeat_n(0, 512));
        let rec = recover(&bytes);
        assert_eq!(rec.valid_bytes, len);
        assert!(matches!(rec.corruption, Some(StorageError::BadLength { len: 0, .. })));
    }

    #[test]
    fn encode_state_round_trips() {
        let (_, bytes) = sample_journal();
        let state = recover(&bytes).state;
        assert_eq!(recover(&encode_state(&state)).state, state);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let rec = recover(&bytes);
            prop_assert!(rec.valid_bytes <= bytes.len());
            // The valid prefix re-decodes to the same state, cleanly.
            let again = recover(&bytes[..rec.valid_bytes]);
            prop_assert_eq!(again.corruption, None);
            prop_assert_eq!(again.state, rec.state);
        }

        #[test]
        fn any_cut_or_flip_yields_a_record_prefix(
            cut in 0usize..400,
            flip in proptest::option::of((0usize..400, 0u8..8)),
        ) {
            let (records, mut bytes) = sample_journal();
            if let Some((at, bit)) = flip {
                let at = at % bytes.len();
                bytes[at] ^= 1 << bit;
            }
            let cut = cut.min(bytes.len());
            let rec = recover(&bytes[..cut]);
            // The recovered state equals the replay of some prefix of the records.
            prop_assert!(rec.records <= records.len());
            prop_assert_eq!(rec.state, model(&records[..rec.records]));
            prop_assert_eq!(rec.valid_bytes, encode_records(&records[..rec.records]).len());
        }
    }
}
