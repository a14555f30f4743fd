//! kafkasim: a Kafka-like event log built as synchronous, sans-IO state machines.
//!
//! Every component takes inputs stamped with the current simulated time and returns the
//! outputs (messages to send, bytes to persist, timers, replies) for a driver to carry out.
//! Nothing here touches a clock, a socket, a file or a thread; the simulated world in the
//! `sim` crate is the only driver. See DESIGN.md for the split.

#![forbid(unsafe_code)]

#[cfg(not(madsim))]
compile_error!(
    "kafkasim only builds simulated: compile with --cfg madsim (set in .cargo/config.toml; \
     a RUSTFLAGS variable in the environment replaces it, so add --cfg madsim there too)"
);

pub mod broker;
pub mod client;
pub mod controller;
pub mod group;
pub mod log;
pub mod protocol;
pub mod record;
pub mod replication;
pub mod types;
