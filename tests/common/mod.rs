//! What the scenario test files share: load a shipped scenario, run one seed, and assert
//! what it must show. Each test binary uses a part of it.
#![allow(dead_code)]

use sim::runner::{run_seed, RunOutcome, Verdict};
use sim::scenario::{load_variant, Scenario};
use std::path::Path;

/// `scenarios/<name>.toml`, with `variant` applied.
pub fn scenario(name: &str, variant: Option<&str>) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml"));
    load_variant(&path, variant).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs one seed and asserts it met the scenario's expectation.
pub fn run_met(name: &str, variant: Option<&str>, seed: u64) -> RunOutcome {
    let outcome = run_seed(&scenario(name, variant), variant, seed);
    assert!(
        outcome.judgement.met,
        "{name} {variant:?} seed {seed}: expectation not met: {:?}",
        outcome.judgement
    );
    outcome
}

/// Runs one seed and asserts it passed, having acked something (no vacuous pass).
pub fn run_passed(name: &str, variant: Option<&str>, seed: u64) -> RunOutcome {
    let outcome = run_met(name, variant, seed);
    assert_eq!(
        outcome.verdict,
        Verdict::Pass,
        "{name} {variant:?} seed {seed}: {:?}",
        outcome.judgement
    );
    assert!(outcome.stats.records_acked > 0, "{name} seed {seed} acked nothing: a vacuous pass");
    outcome
}

/// Each seed passes, having acked something (no vacuous pass).
pub fn assert_passes(name: &str, variant: Option<&str>, seeds: &[u64]) {
    for &seed in seeds {
        run_passed(name, variant, seed);
    }
}

/// Each seed meets its expectation by finding `anomaly`.
pub fn assert_finds(name: &str, variant: Option<&str>, anomaly: &str, seeds: &[u64]) {
    for &seed in seeds {
        let outcome = run_met(name, variant, seed);
        // A stopped group is a liveness finding; the others are safety findings.
        let verdict = match anomaly {
            "static-member-fenced" => Verdict::Liveness,
            _ => Verdict::Safety,
        };
        assert_eq!(outcome.verdict, verdict, "{name} {variant:?} seed {seed}");
        assert!(
            outcome.judgement.found_expected.iter().any(|found| found == anomaly),
            "{name} {variant:?} seed {seed} did not find {anomaly}: {:?}",
            outcome.judgement
        );
    }
}
