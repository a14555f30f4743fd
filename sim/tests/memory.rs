//! A finished run frees its world: every task of every node is ended before the runtime
//! goes, so the logs, disks and history they hold are dropped. Before, tasks waiting on each
//! other outlived the runtime and a sweep grew by about 2 MB a seed (20 GB over
//! replicated-safe 1..10000). One test in its own process, so no other run is alive.
//!
//! Known gap: some runs still keep their world alive, about 0.7 MB a seed: subscribe-mode
//! runs whose consumers were paused (group-safe seeds 2, 6, 7, 8; every zombie-commit seed)
//! and disk-faults seed 1. What holds it is not found yet, so they are not asserted here.

use sim::runner::run_seed;
use sim::scenario::load;
use sim::world::live_worlds;
use std::path::Path;

#[test]
fn finished_runs_leave_no_world_alive() {
    for name in ["quickstart", "replicated-safe", "static-membership"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
        let scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
        for seed in 1..=2 {
            let outcome = run_seed(&scenario, None, seed);
            assert!(outcome.judgement.met, "{name} seed {seed}: {:?}", outcome.judgement);
            assert_eq!(live_worlds(), 0, "{name} seed {seed} left its world alive");
        }
    }
}
