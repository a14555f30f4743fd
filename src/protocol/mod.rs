//! The wire protocol between clients and brokers: request and response messages, error
//! codes with their client-side meaning, and the length-prefixed frame codec.
//!
//! Control fields travel in a compact serde encoding (postcard); record batches travel as
//! raw bytes inside them, CRC and all, so a consumer can verify what a broker served. This
//! module owns the message shapes and the framing; it does not own what a broker or a
//! client does with a message.

mod error;
mod frame;
mod messages;

pub use error::{ErrorCode, Outcome};
pub use frame::{decode_frame, encode_frame, FrameDecoder, FrameError, FRAME_BYTES_MAX};
pub use messages::*;
