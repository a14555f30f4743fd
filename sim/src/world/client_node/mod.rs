//! Client node shells: each producer and consumer node runs one logical client process
//! that drives a sans-IO client state machine, generates the workload and records every
//! operation in the history. A crash ends the process (its open op completes as `info`,
//! then a crash op); the restarted node is a new process.

mod connections;
mod consumer;
mod member;
mod producer;

pub use consumer::consumer_main;
pub use producer::producer_main;

use super::{now_ns, WorldRef};
use crate::history::OpType;
use kafkasim::types::NodeId;

/// Client ids on the wire: producers from 1000, consumers from 2000 (brokers use 0..).
pub fn producer_client_id(index: u32) -> NodeId {
    NodeId(1_000 + index)
}

pub fn consumer_client_id(index: u32) -> NodeId {
    NodeId(2_000 + index)
}

/// Called by the nemesis right after it killed client node `name`.
pub fn on_crash(world: &WorldRef, name: &str) {
    let mut state = world.state();
    let Some(process) = state.processes.get(name).copied() else { return };
    if let Some(value) = state.open_ops.remove(&process) {
        state.history.complete(now_ns(), process, OpType::Info, value);
    }
    if !state.history.is_outstanding(process) {
        state.history.crash(now_ns(), process);
    }
    state.processes.remove(name);
}

/// Encodes a record value: the history value (unique per key) then padding.
pub fn encode_value(value: u64, padding: usize) -> bytes::Bytes {
    let mut bytes = Vec::with_capacity(8 + padding);
    bytes.extend_from_slice(&value.to_be_bytes());
    bytes.resize(8 + padding, b'.');
    bytes::Bytes::from(bytes)
}

/// The history value of a record, if its bytes are one of ours.
pub fn decode_value(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}
