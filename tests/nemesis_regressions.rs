//! Seeds the nemesis's envelope once broke, kept as regressions. `replicated-safe --variant
//! long` overlaps faults for 120 s: seed 27 stacked latency spikes (each multiplied the
//! last, holding controller-to-controller packets for minutes after the heal) and the
//! controllers' Raft connections were never timed out, so the quorum never elected again
//! and the run ended in a liveness failure. Seed 290 took a spare that was about to be
//! fenced.

mod common;

use common::assert_passes;

#[test]
fn overlapping_spikes_and_stalled_raft_connections_recover_after_the_heal() {
    assert_passes("replicated-safe", Some("long"), &[27]);
}

/// Seed 290: a power loss of brokers 0 and 1 was admitted with broker-2 as the spare half
/// a second after a split that had kept broker-2 from the active controller healed; its
/// session lapsed, the controller fenced it, and broker-0 led again with its emptied log.
/// A broker impaired lately is now no spare until a session timeout has passed.
#[test]
fn a_broker_whose_session_may_lapse_is_no_spare() {
    assert_passes("replicated-safe", Some("long"), &[290]);
}
