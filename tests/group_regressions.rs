//! Consumer-group seeds the simulator once failed, each kept with what it showed. Every
//! one must pass now; long sweeps belong to `kafkasim sweep`, not here.

use sim::runner::{run_seed, Verdict};
use sim::scenario::load_variant;
use std::path::Path;

fn assert_passes(name: &str, variant: Option<&str>, seed: u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml"));
    let scenario = load_variant(&path, variant).unwrap_or_else(|error| panic!("{error}"));
    let outcome = run_seed(&scenario, variant, seed);
    assert_eq!(
        (outcome.verdict, outcome.judgement.met),
        (Verdict::Pass, true),
        "{name} {variant:?} seed {seed}: {:?}",
        outcome.judgement
    );
}

/// A commit that timed out in a cut link (info) landed seconds later, after the member's
/// newer commits: the group went back to it, as Kafka's last-writer-wins offsets do, and
/// the next owner resumed there. Not realtime-commit-order (see `check_commit_order`).
#[test]
fn a_late_unknown_commit_moves_the_group_back_as_in_kafka() {
    for seed in [674, 1404, 1487, 1834, 1858] {
        assert_passes("group-safe", None, seed);
    }
}

/// A coordinator broker paused through its partitions' elections woke up and answered
/// metadata with its old image; the member took the older leader epoch, fetched from the
/// deposed leader, got OffsetOutOfRange and reset to the earliest offset (nonmonotonic-poll
/// and a commit going back). The metadata cache now never takes an older leader epoch.
#[test]
fn a_deposed_leader_s_metadata_does_not_reset_a_member() {
    assert_passes("group-safe", None, 1626);
}
