//! Generated fault schedules against the safe replicated configuration. Each case is a list
//! of scripted faults (kind, target, time, duration) within the safe envelope: no power loss
//! of every replica at once (at most two of three brokers, and the nemesis spares the last
//! in-sync replica), plus a seed. The scenario is replicated-safe with its random nemesis
//! silenced (it keeps the envelope guard); every case must pass. A failing case shrinks to
//! a minimal schedule, which is written as a scenario file under
//! target/fault-schedules/ and named in the panic message with its seed.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sim::runner::run_seed;
use sim::scenario::{load, FaultKind, FaultStep, Scenario};
use std::path::{Path, PathBuf};

fn base() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/replicated-safe.toml");
    let mut scenario = load(&path).unwrap_or_else(|error| panic!("{error}"));
    scenario.name = "fault-schedule".to_string();
    scenario.phases.faulty_s = 20;
    let nemesis = scenario.nemesis.as_mut().expect("replicated-safe has a nemesis");
    // Longer than the run: the random nemesis never fires, its envelope guard still holds.
    nemesis.interval_s = [3600.0, 3600.0];
    scenario
}

const TARGETS: &[&str] = &[
    "any-broker",
    "any-controller",
    "active-controller",
    "any-leader",
    "leader-of:events:0",
    "follower-of:events:1",
];

fn step() -> impl Strategy<Value = FaultStep> {
    let kinds = prop::sample::select(vec![
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Isolate,
        FaultKind::OneWayCut,
        FaultKind::Split,
        FaultKind::Bridge,
        FaultKind::CutBrokerLinks,
        FaultKind::PowerLoss,
        FaultKind::LatencySpike,
        FaultKind::ClockSkew,
        FaultKind::SlowDisk,
    ]);
    (kinds, prop::sample::select(TARGETS), 0u32..180, 5u32..80, 1u32..3).prop_map(
        |(kind, target, at_ds, duration_ds, count)| {
            let mut step = FaultStep {
                at_s: f64::from(at_ds) / 10.0,
                kind,
                target: Some(target.to_string()),
                duration_s: Some(f64::from(duration_ds) / 10.0),
                factor: None,
                rate: None,
                count: None,
                skew_ms: None,
                drift_ppm: None,
                peer: None,
                nodes: None,
            };
            match kind {
                FaultKind::PowerLoss => {
                    step.target = None;
                    step.count = Some(count);
                }
                FaultKind::OneWayCut => step.peer = Some("any-broker".to_string()),
                FaultKind::CutBrokerLinks => step.target = Some("any-leader".to_string()),
                FaultKind::SlowDisk | FaultKind::LatencySpike => step.factor = Some(10),
                FaultKind::ClockSkew => {
                    step.skew_ms = Some(1500);
                    step.drift_ppm = Some(20_000);
                }
                _ => {}
            }
            step
        },
    )
}

/// Writes the failing schedule as a scenario file; returns its path.
fn write_failure(scenario: &Scenario, seed: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fault-schedules");
    std::fs::create_dir_all(&dir).expect("target/ is writable");
    let path = dir.join(format!("fault-schedule-seed-{seed}.toml"));
    let text = sim::scenario::to_toml(scenario);
    std::fs::write(&path, text).expect("target/ is writable");
    path
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3,
        max_shrink_iters: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn safe_fault_schedules_pass(steps in prop::collection::vec(step(), 1..6), seed in 1u64..10_000) {
        let mut scenario = base();
        scenario.faults = steps;
        let outcome = run_seed(&scenario, None, seed);
        if !outcome.judgement.met {
            let path = write_failure(&scenario, seed);
            prop_assert!(
                false,
                "seed {seed} failed: {:?}; reproduce with `kafkasim run {} --seed {seed}`",
                outcome.judgement,
                path.display()
            );
        }
    }
}

/// The file a failure is written to loads back as the same scenario.
#[test]
fn a_written_schedule_loads_back_unchanged() {
    let mut scenario = base();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    scenario.faults = prop::collection::vec(step(), 3..4)
        .new_tree(&mut runner)
        .expect("a schedule generates")
        .current();
    let path = write_failure(&scenario, 0);
    let loaded = load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(loaded, scenario);
}
