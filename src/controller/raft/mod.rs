//! Raft for the controller quorum (KRaft's metadata log), sans-IO.
//!
//! `node` is the state machine (`RaftNode`: `step`, `tick`, `propose`, `take_ready`),
//! `message` the wire types, `storage` the CRC-checked persistence journal and its
//! recovery, `invariants` the safety checker a simulator runs after every step. The
//! randomized safety test (a small lossy network of nodes that crash and lose unsynced
//! writes) lives in `tests_sim`; hand-written tests of each rule in `tests`.

pub mod invariants;
pub mod message;
pub mod node;
pub mod storage;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sim;

pub use invariants::{InvariantViolation, RaftSafetyChecker};
pub use message::{EntryPayload, LogEntry, LogIndex, MessageBody, RaftMessage};
pub use node::{ConfigError, ProposeError, RaftConfig, RaftError, RaftNode, Ready, Role};
pub use storage::{HardState, PersistRecord, PersistentState, Recovery, StorageError};
