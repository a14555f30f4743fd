//! Consumer-group seeds the simulator once failed, each kept with what it showed. Every
//! one must pass now; long sweeps belong to `kafkasim sweep`, not here.

mod common;

use common::assert_passes;

/// A commit that timed out in a cut link (info) landed seconds later, after the member's
/// newer commits: the group went back to it, as Kafka's last-writer-wins offsets do, and
/// the next owner resumed there. Not realtime-commit-order (see `check_commit_order`).
#[test]
fn a_late_unknown_commit_moves_the_group_back_as_in_kafka() {
    assert_passes("group-safe", None, &[674, 1404, 1487, 1834, 1858]);
}

/// A coordinator broker paused through its partitions' elections woke up and answered
/// metadata with its old image; the member took the older leader epoch, fetched from the
/// deposed leader, got OffsetOutOfRange and reset to the earliest offset (nonmonotonic-poll
/// and a commit going back). The metadata cache now never takes an older leader epoch.
#[test]
fn a_deposed_leader_s_metadata_does_not_reset_a_member() {
    assert_passes("group-safe", None, &[1626]);
}
