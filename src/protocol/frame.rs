//! Length-prefixed frames: a 4-byte big-endian length, then a postcard-encoded `Frame`.
//! The decoder accepts bytes in any split, as they come off a stream, and turns garbage
//! into an error value: the connection owner closes the connection on any `FrameError`.

use super::Frame;
use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// The largest frame accepted (Kafka's socket.request.max.bytes is 100 MiB; the simulated
/// workloads stay far below this, so a larger length prefix is garbage).
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;
const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {bytes} bytes exceeds the limit of {FRAME_BYTES_MAX}")]
    TooLarge { bytes: usize },
    #[error("undecodable frame: {reason}")]
    Malformed { reason: String },
}

pub fn encode_frame(frame: &Frame) -> Bytes {
    // Serialize behind a placeholder prefix, then fill the length in: one buffer, no copy.
    let mut out = postcard::to_extend(frame, vec![0u8; LENGTH_PREFIX_BYTES])
        .expect("frames always serialize");
    let payload_len = out.len() - LENGTH_PREFIX_BYTES;
    assert!(payload_len <= FRAME_BYTES_MAX, "frame of {payload_len} bytes too large");
    out[..LENGTH_PREFIX_BYTES].copy_from_slice(&(payload_len as u32).to_be_bytes());
    Bytes::from(out)
}

/// Decodes one complete frame payload (without its length prefix).
pub fn decode_frame(payload: &[u8]) -> Result<Frame, FrameError> {
    let (frame, rest) = postcard::take_from_bytes::<Frame>(payload)
        .map_err(|error| FrameError::Malformed { reason: error.to_string() })?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed { reason: format!("{} trailing bytes", rest.len()) });
    }
    Ok(frame)
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> Self {
        FrameDecoder::default()
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buffer.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buffer[..4].try_into().expect("4 bytes")) as usize;
        if len > FRAME_BYTES_MAX {
            return Err(FrameError::TooLarge { bytes: len });
        }
        if self.buffer.len() < LENGTH_PREFIX_BYTES + len {
            return Ok(None);
        }
        self.buffer.advance(LENGTH_PREFIX_BYTES);
        let payload = self.buffer.split_to(len);
        decode_frame(&payload).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;
    use crate::types::{NodeId, Offset, TopicPartition};
    use proptest::prelude::*;

    fn sample() -> Frame {
        Frame::Request(RequestFrame {
            correlation_id: 9,
            client_id: NodeId(3),
            body: Request::Fetch(FetchRequest {
                replica_id: None,
                replica_epoch: None,
                max_wait_ms: 500,
                min_bytes: 1,
                max_bytes: 1 << 20,
                partitions: vec![FetchPartition {
                    tp: TopicPartition::new("events", 2),
                    fetch_offset: Offset(17),
                    partition_max_bytes: 1 << 16,
                    current_leader_epoch: None,
                }],
            }),
        })
    }

    #[test]
    fn round_trip_in_any_split() {
        let bytes = encode_frame(&sample());
        for split in 0..bytes.len() {
            let mut decoder = FrameDecoder::new();
            decoder.extend(&bytes[..split]);
            assert_eq!(decoder.next_frame().unwrap(), None);
            decoder.extend(&bytes[split..]);
            assert_eq!(decoder.next_frame().unwrap(), Some(sample()));
        }
    }

    #[test]
    fn oversized_length_is_an_error() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert!(matches!(decoder.next_frame(), Err(FrameError::TooLarge { .. })));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = FrameDecoder::new();
            decoder.extend(&bytes);
            for _ in 0..8 {
                match decoder.next_frame() {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }

        #[test]
        fn bodies_round_trip(id in any::<u32>(), offset in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let frame = Frame::Request(RequestFrame {
                correlation_id: id,
                client_id: NodeId(1),
                body: Request::Produce(ProduceRequest {
                    acks: Acks::All,
                    timeout_ms: 30_000,
                    partitions: vec![ProducePartition { tp: TopicPartition::new("t", 0), records: Bytes::from(payload) }],
                }),
            });
            let bytes = encode_frame(&frame);
            prop_assert_eq!(decode_frame(&bytes[4..]).unwrap(), frame);
            let _ = offset;
        }
    }
}
