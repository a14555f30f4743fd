//! Seeds the nemesis's envelope once broke, kept as regressions. `replicated-safe --variant
//! long` overlaps faults for 120 s: seed 27 stacked latency spikes (each multiplied the
//! last, holding controller-to-controller packets for minutes after the heal) and the
//! controllers' Raft connections were never timed out, so the quorum never elected again
//! and the run ended in a liveness failure.

use sim::runner::{run_seed, Verdict};
use sim::scenario::load_variant;
use std::path::Path;

fn assert_passes(name: &str, variant: Option<&str>, seed: u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml"));
    let scenario = load_variant(&path, variant).unwrap_or_else(|error| panic!("{error}"));
    let outcome = run_seed(&scenario, variant, seed);
    assert_eq!(
        outcome.verdict,
        Verdict::Pass,
        "{name} {variant:?} seed {seed}: {:?}",
        outcome.judgement
    );
    assert!(outcome.stats.records_acked > 0, "{name} seed {seed} acked nothing: a vacuous pass");
}

#[test]
fn overlapping_spikes_and_stalled_raft_connections_recover_after_the_heal() {
    assert_passes("replicated-safe", Some("long"), 27);
}
