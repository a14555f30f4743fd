//! Generated fault schedules against the safe replicated configuration. Each case is a list
//! of scripted faults of every kind (kind, target, time, duration) within the safe envelope: no power loss
//! of every replica at once (at most two of three brokers, and the nemesis spares the last
//! in-sync replica), plus a seed. The scenario is replicated-safe with its random nemesis
//! silenced (it keeps the envelope guard); every case must pass. A failing case shrinks to
//! a minimal schedule, which is written as a scenario file under
//! target/fault-schedules/ and named in the panic message with its seed.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sim::nemesis::faults::{
    bit_flips, bridge, clean_shutdown, clock_skew, crash, cut_broker_links, disk_full, disk_wipe,
    io_errors, isolate, latency_spike, message_rule, one_way_cut, pause, power_loss,
    reset_connections, slow_disk, split,
};
use sim::runner::run_seed;
use sim::scenario::{load, FaultKind, FaultSpec, FaultStep, Scenario};
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
    let kinds = prop::sample::select(FaultKind::ALL);
    (kinds, prop::sample::select(TARGETS), 0u32..180, 5u32..80, 1u32..3).prop_map(
        |(kind, target, at_ds, duration_ds, count)| FaultStep {
            at_s: f64::from(at_ds) / 10.0,
            fault: fault_of(kind, target, f64::from(duration_ds) / 10.0, count),
        },
    )
}

/// Safe parameters for each kind: an exhaustive match, so a kind added to the catalogue
/// does not compile here until the generator knows it (and `FaultKind::ALL` feeds the
/// strategy, so every kind is drawn).
fn fault_of(kind: FaultKind, target: &str, duration_s: f64, count: u32) -> FaultSpec {
    let target = target.to_string();
    match kind {
        FaultKind::Crash => FaultSpec::Crash(crash::Crash { target, duration_s }),
        FaultKind::Pause => FaultSpec::Pause(pause::Pause { target, duration_s }),
        FaultKind::Isolate => FaultSpec::Isolate(isolate::Isolate { target, duration_s }),
        FaultKind::ResetConnections => {
            let (rate, duration_s) = (Some(0.3), Some(duration_s));
            FaultSpec::ResetConnections(reset_connections::ResetConnections {
                target,
                rate,
                duration_s,
            })
        }
        FaultKind::SlowDisk => {
            FaultSpec::SlowDisk(slow_disk::SlowDisk { target, duration_s, factor: 10 })
        }
        FaultKind::DiskFull => FaultSpec::DiskFull(disk_full::DiskFull { target, duration_s }),
        FaultKind::IoErrors => {
            FaultSpec::IoErrors(io_errors::IoErrors { target, duration_s, rate: 0.2 })
        }
        FaultKind::BitFlips => FaultSpec::BitFlips(bit_flips::BitFlips { target, count }),
        FaultKind::LatencySpike => {
            FaultSpec::LatencySpike(latency_spike::LatencySpike { target, duration_s, factor: 10 })
        }
        FaultKind::ClockSkew => FaultSpec::ClockSkew(clock_skew::ClockSkew {
            target,
            duration_s,
            skew_ms: Some(1500),
            drift_ppm: Some(20_000),
        }),
        FaultKind::OneWayCut => FaultSpec::OneWayCut(one_way_cut::OneWayCut {
            target,
            peer: Some("any-broker".to_string()),
            duration_s,
        }),
        FaultKind::Split => {
            FaultSpec::Split(split::Split { target: Some(target), nodes: None, duration_s })
        }
        FaultKind::Bridge => FaultSpec::Bridge(bridge::Bridge { target, duration_s }),
        FaultKind::CutBrokerLinks => FaultSpec::CutBrokerLinks(cut_broker_links::CutBrokerLinks {
            target: "any-leader".to_string(),
            duration_s,
        }),
        FaultKind::PowerLoss => FaultSpec::PowerLoss(power_loss::PowerLoss {
            nodes: None,
            count: Some(count),
            duration_s,
            first: None,
        }),
        FaultKind::DiskWipe => FaultSpec::DiskWipe(disk_wipe::DiskWipe { target, duration_s }),
        FaultKind::CleanShutdown => FaultSpec::CleanShutdown(clean_shutdown::CleanShutdown {
            target: "any-leader".to_string(),
            duration_s,
        }),
        FaultKind::MessageRule => FaultSpec::MessageRule(message_rule_of(target, duration_s)),
    }
}

/// A message rule, its action picked by the duration: lose the leader's fetch answers to a
/// follower, hold a broker's AlterPartition, or deliver its heartbeats twice.
fn message_rule_of(target: String, duration_s: f64) -> message_rule::MessageRule {
    use message_rule::{MessageRule, RuleAction};
    let (messages, action, delay_ms, peer) = match (duration_s * 10.0) as u32 % 3 {
        0 => ("fetch-response", RuleAction::Drop, 0, "any-broker"),
        1 => ("alter-partition", RuleAction::Delay, 1_500, "active-controller"),
        _ => ("broker-heartbeat", RuleAction::Duplicate, 0, "active-controller"),
    };
    let (messages, peer) = (vec![messages.to_string()], Some(peer.to_string()));
    MessageRule { target, peer, messages, action, delay_ms, duration_s, drawn: false }
}

#[test]
fn the_generator_draws_every_fault_kind() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut drawn = std::collections::BTreeSet::new();
    for _ in 0..2_000 {
        let step = step().new_tree(&mut runner).expect("a step generates").current();
        drawn.insert(step.fault.kind());
    }
    let missing: Vec<&FaultKind> = FaultKind::ALL.iter().filter(|k| !drawn.contains(k)).collect();
    assert!(missing.is_empty(), "kinds the schedules never draw: {missing:?}");
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

/// A scripted fault at `at_s` into the faulty phase, on `target` for `duration_s`.
fn scripted(at_s: f64, kind: FaultKind, target: &str, duration_s: f64) -> FaultStep {
    FaultStep { at_s, fault: fault_of(kind, target, duration_s, 1) }
}

/// The reasons of the run's skipped faults of `kind`.
fn skipped(outcome: &sim::runner::RunOutcome, kind: &str) -> Vec<String> {
    outcome
        .events
        .iter()
        .filter(|e| {
            e.kind == "fault-skipped" && e.fields.get("kind").map(String::as_str) == Some(kind)
        })
        .map(|e| e.fields.get("reason").cloned().unwrap_or_default())
        .collect()
}

fn injected(outcome: &sim::runner::RunOutcome, node: &str, kind: &str) -> usize {
    let kind = format!("fault-{kind}");
    outcome.events.iter().filter(|e| e.node == node && e.kind == kind).count()
}

#[test]
fn a_crash_of_a_node_already_down_is_skipped_and_the_run_passes() {
    let mut scenario = base();
    scenario.faults = vec![
        scripted(1.0, FaultKind::Crash, "broker-0", 4.0),
        scripted(2.0, FaultKind::Crash, "broker-0", 1.0),
        scripted(2.5, FaultKind::Pause, "broker-0", 1.0),
    ];
    let outcome = run_seed(&scenario, None, 1);
    assert!(outcome.judgement.met, "{:?}", outcome.judgement);
    assert_eq!(injected(&outcome, "broker-0", "crash"), 1, "the second crash is skipped");
    assert_eq!(injected(&outcome, "broker-0", "pause"), 0, "a down node is not paused");
    let reasons = [skipped(&outcome, "crash"), skipped(&outcome, "pause")].concat();
    assert!(reasons.iter().all(|r| r.contains("already down")), "{reasons:?}");
}

#[test]
fn the_last_spare_is_not_impaired_while_the_other_replicas_are_down() {
    let mut scenario = base();
    let nodes = Some(vec!["broker-0".to_string(), "broker-1".to_string()]);
    let power_loss = power_loss::PowerLoss { nodes, count: None, duration_s: 5.0, first: None };
    scenario.faults = vec![
        FaultStep { at_s: 1.0, fault: FaultSpec::PowerLoss(power_loss) },
        scripted(2.0, FaultKind::Pause, "broker-2", 1.0),
        scripted(2.5, FaultKind::Isolate, "broker-2", 1.0),
        scripted(3.0, FaultKind::SlowDisk, "broker-2", 1.0),
        scripted(3.5, FaultKind::Crash, "broker-2", 1.0),
    ];
    let outcome = run_seed(&scenario, None, 1);
    assert!(outcome.judgement.met, "{:?}", outcome.judgement);
    let refused = skipped(&outcome, "power-loss");
    assert_eq!(injected(&outcome, "broker-0", "power-loss"), 1, "broker-2 is a spare: {refused:?}");
    for kind in ["pause", "isolate", "slow-disk", "crash"] {
        assert_eq!(injected(&outcome, "broker-2", kind), 0, "{kind} of the last spare");
        let reasons = skipped(&outcome, kind);
        assert!(
            reasons.len() == 1 && reasons[0].contains("unimpaired in-sync replica"),
            "{kind}: {reasons:?}"
        );
    }
}

/// A controller whose journal write fails halts, and the heal restarts it as a process
/// restart: it used to keep its port through its listener task, and the restart panicked
/// with AddrInUse (every fault kind on replicated-safe, seed 11).
#[test]
fn a_controller_halted_by_a_full_disk_is_restarted_by_the_heal() {
    let mut scenario = base();
    scenario.faults = vec![
        scripted(1.0, FaultKind::DiskFull, "active-controller", 8.0),
        scripted(2.0, FaultKind::Crash, "broker-0", 1.0),
        scripted(4.0, FaultKind::Crash, "broker-1", 1.0),
    ];
    let outcome = run_seed(&scenario, None, 11);
    assert!(outcome.judgement.met, "{:?}", outcome.judgement);
    let halted = outcome.events.iter().position(|e| e.kind == "controller-halted");
    let halted = halted.expect("the full disk halts the active controller");
    let node = &outcome.events[halted].node;
    let restarted =
        outcome.events[halted..].iter().any(|e| e.node == *node && e.kind == "controller-started");
    assert!(restarted, "{node} is started again after the heal");
}

/// A clean shutdown of a leader: leadership moves away, the broker flushes and writes its
/// marker, stops, and registers with the marker when it starts again (KIP-966).
#[test]
fn a_clean_shutdown_hands_leadership_over_and_restarts_clean() {
    let mut scenario = base();
    let step = |at_s: f64| FaultStep {
        at_s,
        fault: FaultSpec::CleanShutdown(clean_shutdown::CleanShutdown {
            target: "leader-of:events:0".to_string(),
            duration_s: 3.0,
        }),
    };
    scenario.faults = vec![step(1.0), step(8.0)];
    let outcome = run_seed(&scenario, None, 3);
    assert!(outcome.judgement.met, "{:?}", outcome.judgement);
    let shut: Vec<&sim::runner::outcome::Event> =
        outcome.events.iter().filter(|e| e.kind == "broker-shut-down").collect();
    assert_eq!(shut.len(), 2, "both shutdowns finish");
    for event in shut {
        assert_eq!(event.fields.get("marker").map(String::as_str), Some("true"), "{event:?}");
        let restarted = outcome.events.iter().find(|e| {
            e.node == event.node && e.kind == "broker-started" && e.time_ns > event.time_ns
        });
        let restarted = restarted.expect("the broker starts again");
        assert_eq!(restarted.fields.get("clean").map(String::as_str), Some("true"));
    }
}
