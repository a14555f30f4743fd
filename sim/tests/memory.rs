//! A finished run frees its world: every task of every node is ended before the runtime
//! goes, so the logs, disks and history they hold are dropped. Before, tasks waiting on each
//! other outlived the runtime and a sweep grew by about 2 MB a seed (20 GB over
//! replicated-safe 1..10000). Then the runner's own tasks (a fault's repair, the random
//! nemesis's next draw, a workload step's end) still held the world when they were asleep
//! as the quiet phase ended early: about 1.7 MB a seed of every zombie-commit run (3.5 GB
//! over 2,000 seeds) and of some group-safe and disk-faults runs; they hold it weakly now.
//! One test in its own process, so no other run is alive.

use sim::runner::run_seed;
use sim::scenario::load;
use sim::world::live_worlds;
use std::path::Path;

#[test]
fn finished_runs_leave_no_world_alive() {
    let runs: [(&str, &[u64]); 6] = [
        ("quickstart", &[1, 2]),
        ("replicated-safe", &[1, 2]),
        ("static-membership", &[1, 2]),
        ("zombie-commit", &[1, 2]),
        ("group-safe", &[6, 7]),
        ("disk-faults", &[1, 3]),
    ];
    for (name, seeds) in runs {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
        let scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
        for &seed in seeds {
            let outcome = run_seed(&scenario, None, seed);
            assert!(outcome.judgement.met, "{name} seed {seed}: {:?}", outcome.judgement);
            assert_eq!(live_worlds(), 0, "{name} seed {seed} left its world alive");
        }
    }
}
