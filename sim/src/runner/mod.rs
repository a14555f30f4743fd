//! The runner: one (scenario, seed) on a fresh OS thread in its own madsim runtime, through
//! the phases setup, faulty (workload + nemesis), heal, quiet (catch-up reads) and verdict.

pub mod config;
mod judge;

pub use judge::config_facts;
pub mod outcome;

pub use outcome::*;

use crate::nemesis::{Nemesis, Targets};
use crate::scenario::Scenario;
use crate::world::disk::SimDisk;
use crate::world::signal::Signal;
use crate::world::{
    broker_node, client_node, node_ip, node_name, now_duration, Phase, Role, World, WorldRef,
};
use kafkasim::types::Offset;
use madsim::runtime::{Handle, Runtime};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What the simulation thread hands back.
struct Simulated {
    history_jsonl: String,
    history: crate::history::History,
    events: Vec<Event>,
    trace_hash: u64,
    stats: RunStats,
    problems: Vec<String>,
    violations: Vec<crate::check::cluster::Violation>,
    groups: BTreeMap<String, crate::check::groups::GroupFigures>,
    marks: crate::coverage::Tally,
    realized_faults: Vec<crate::scenario::FaultStep>,
}

/// The build identity printed with every run.
pub fn build_id() -> String {
    format!(
        "kafkasim {} ({})",
        env!("CARGO_PKG_VERSION"),
        option_env!("KAFKASIM_COMMIT").unwrap_or("dev")
    )
}

/// Runs one seed of a scenario to its outcome. Never panics: a panic inside the simulation
/// becomes a `Verdict::Crash` outcome.
/// A swarm scenario runs, and is judged as, the point its seed draws.
pub fn run_seed(scenario: &Scenario, variant: Option<&str>, seed: u64) -> RunOutcome {
    let (scenario, point) = match crate::scenario::swarm::resolve(scenario, seed) {
        Ok(drawn) => drawn,
        Err(problem) => {
            let mut outcome = RunOutcome::started(&scenario.name, variant, seed, build_id());
            outcome.judgement.problems.push(problem);
            return outcome;
        }
    };
    let scenario = scenario.as_ref();
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    let wall_start = std::time::Instant::now(); // wall time for the figures only
    let owned = scenario.clone();
    #[allow(clippy::disallowed_methods)] // one fresh OS thread per seed: statics start clean
    let joined = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .stack_size(64 << 20)
        .spawn(move || simulate(owned, seed))
        .expect("spawning the seed thread")
        .join();
    let wall_secs = wall_start.elapsed().as_secs_f64();
    let mut outcome = RunOutcome::started(&scenario.name, variant, seed, build_id());
    match joined {
        Ok(simulated) => judge::judge(scenario, simulated_parts(simulated, &mut outcome)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic with a non-string payload".to_string());
            outcome.judgement.problems.push(format!("panic: {message}"));
            outcome.judgement.met = false;
        }
    }
    outcome.stats.wall_secs = wall_secs;
    outcome.swarm = point;
    outcome
}

fn simulated_parts(simulated: Simulated, outcome: &mut RunOutcome) -> judge::Input<'_> {
    outcome.history_jsonl = simulated.history_jsonl;
    outcome.events = simulated.events;
    outcome.trace_hash = simulated.trace_hash;
    outcome.stats = simulated.stats;
    outcome.marks = simulated.marks;
    outcome.realized_faults = simulated.realized_faults;
    judge::Input {
        history: simulated.history,
        problems: simulated.problems,
        violations: simulated.violations,
        groups: simulated.groups,
        outcome,
    }
}

fn simulate(scenario: Scenario, seed: u64) -> Simulated {
    let mut config = madsim::Config::default();
    config.net.send_latency = config::send_latency(&scenario.network);
    let mut runtime = Runtime::with_seed_and_config(seed, config);
    runtime.add_simulator::<SimDisk>();
    let phases = &scenario.phases;
    // A hang guard: the run must end well within its phases; madsim panics past the limit.
    let limit = phases.setup_s + phases.faulty_s + phases.quiet_s + 120;
    runtime.set_time_limit(Duration::from_secs(limit));
    runtime.block_on(supervise(scenario, seed))
}

async fn supervise(scenario: Scenario, seed: u64) -> Simulated {
    let handle = Handle::current();
    let disk = madsim::plugin::simulator::<SimDisk>();
    disk.seed(seed);
    let mut world = World::new(scenario.clone(), seed);
    let roles = [
        (Role::Broker, scenario.cluster.brokers),
        (Role::Producer, scenario.producer.count),
        (Role::Consumer, scenario.consumer.count),
        (Role::Controller, scenario.cluster.controllers),
    ];
    for (role, count) in roles {
        for index in 0..count {
            world.resets.insert(node_name(role, index), Signal::new());
            if role == Role::Broker {
                world.shutdowns.insert(node_name(role, index), Signal::new());
            }
        }
    }
    let world: WorldRef = Arc::new(world);
    let disk_config = config::disk_config(&scenario.disk);
    let mut nodes = BTreeMap::new();
    for (role, count) in roles {
        for index in 0..count {
            let name = node_name(role, index);
            let w = world.clone();
            let builder = handle.create_node().name(name.clone()).ip(node_ip(role, index));
            let node = match role {
                Role::Broker => builder.init(move || broker_node::broker_main(w.clone(), index)),
                Role::Producer => {
                    builder.init(move || client_node::producer_main(w.clone(), index))
                }
                Role::Consumer => {
                    builder.init(move || client_node::consumer_main(w.clone(), index))
                }
                Role::Controller => builder
                    .init(move || crate::world::controller_node::controller_main(w.clone(), index)),
            }
            .build();
            disk.configure(node.id(), disk_config.clone());
            crate::world::register_node_name(node.id(), &name);
            nodes.insert(name, node.id());
        }
    }
    let node_ids: Vec<madsim::task::NodeId> = nodes.values().copied().collect();
    let crash_world = world.clone();
    let targets = Targets {
        nodes,
        on_client_crash: Box::new(move |name| client_node::on_crash(&crash_world, name)),
    };
    let nemesis = Nemesis::new(world.clone(), targets);

    madsim::time::sleep(Duration::from_secs(scenario.phases.setup_s)).await;
    world.state().phase = Phase::Faulty;
    world.event("runner", "phase-faulty", &[]);
    let faulty_start = now_duration();
    let faulty_end = faulty_start + Duration::from_secs(scenario.phases.faulty_s);
    let runner = nemesis.clone();
    madsim::task::spawn(async move { runner.run(faulty_start, faulty_end).await });
    if !scenario.workload_steps.is_empty() {
        let steps = world.clone();
        madsim::task::spawn(crate::world::workload::run_steps(steps, faulty_start));
    }
    madsim::time::sleep(faulty_end - now_duration()).await;

    world.state().phase = Phase::Quiet;
    nemesis.heal();
    crate::world::workload::heal(&world);
    world.event("runner", "phase-quiet", &[]);
    let problems = wait_for_catch_up(&world, scenario.phases.quiet_s).await;
    world.state().phase = Phase::Done;
    world.event("runner", "done", &[]);

    let mut simulated = collect(&world, problems);
    simulated.realized_faults = nemesis.realized_steps();
    release(&node_ids).await;
    simulated
}

/// The run's results, taken out of the world.
fn collect(world: &WorldRef, problems: Vec<String>) -> Simulated {
    let mut state = world.state();
    if let Some(lag) = final_group_lag(&world.scenario, &state) {
        let group_id = world.scenario.consumer.group_id.clone();
        state.cluster_checker.groups_mut().set_final_lag(&group_id, lag);
    }
    state.stats.simulated_secs = now_duration().as_secs_f64();
    let history = std::mem::take(&mut state.history).finish();
    let mut violations = std::mem::take(&mut state.violations);
    violations.extend(state.cluster_checker.finish());
    Simulated {
        history_jsonl: crate::history::to_jsonl(&history),
        history,
        events: std::mem::take(&mut state.events),
        trace_hash: state.trace_hash,
        stats: state.stats.clone(),
        problems,
        violations,
        groups: state.cluster_checker.groups().figures(),
        marks: std::mem::take(&mut state.marks),
        realized_faults: Vec::new(),
    }
}

/// Ends every node's tasks before the runtime goes. madsim drops a pending task's future
/// only when its node is killed; tasks waiting on channels they hold between them would
/// otherwise outlive the runtime, and with them the world, the logs and the disks: a sweep
/// grew by about 2 MB a seed (20 GB over replicated-safe 1..10000).
async fn release(nodes: &[madsim::task::NodeId]) {
    let handle = madsim::runtime::Handle::current();
    for id in nodes {
        handle.kill(*id);
    }
    // The cancelled tasks run once more, to drop their futures.
    madsim::time::sleep(Duration::from_millis(1)).await;
}

/// Subscribe mode: per partition, the group's committed offset and its leader's HW (the
/// end offset) after the quiet phase.
fn final_group_lag(
    scenario: &Scenario,
    state: &crate::world::WorldState,
) -> Option<BTreeMap<String, (Option<u64>, u64)>> {
    scenario.coordinator_partition()?;
    let mut lag = BTreeMap::new();
    for tp in scenario.partitions() {
        let committed = state.group_committed.get(&tp).map(|o| o.0);
        let end = state.cluster.leader_high_watermark(&tp).map_or(0, |o| o.0);
        lag.insert(tp.to_string(), (committed, end));
    }
    Some(lag)
}

/// Subscribe mode: each partition whose committed offset is below its leader's HW (or
/// whose HW is unknown), as "tp committed c of hw".
fn group_lag(world: &WorldRef) -> Vec<String> {
    let state = world.state();
    let now_ns = crate::world::now_ns();
    let mut lag = Vec::new();
    for tp in world.scenario.partitions() {
        let committed = state.group_committed.get(&tp).copied();
        // The HW the leader last reported may trail an ack that just arrived.
        let acked = match state.acked_end.get(&tp.to_string()) {
            Some(&(end, acked_ns))
                if state.cluster.may_hold_acked(&tp, Offset(end), acked_ns, now_ns) =>
            {
                Offset(end)
            }
            _ => Offset::ZERO,
        };
        match state.cluster.leader_high_watermark(&tp).map(|hw| hw.max(acked)) {
            Some(hw) if committed.unwrap_or(Offset::ZERO) >= hw => {}
            Some(hw) => lag.push(match committed {
                Some(c) => format!("{tp} committed {c} of hw {hw}"),
                None => format!("{tp} has no commit (hw {hw})"),
            }),
            None => lag.push(format!("{tp} has no known leader HW")),
        }
    }
    lag
}

/// How a group-lag problem starts (the judge drops them when a fence explains them).
pub(crate) const GROUP_LAG: &str = "group lag ";

/// Waits until every consumer has read every partition to its end, or the quiet phase
/// runs out; returns the liveness problems.
async fn wait_for_catch_up(world: &WorldRef, quiet_s: u64) -> Vec<String> {
    let deadline = now_duration() + Duration::from_secs(quiet_s);
    let consumers = world.scenario.consumer.count as usize;
    let clustered = world.scenario.cluster.controllers > 0;
    let subscribe = world.scenario.consumer.mode == crate::scenario::ConsumerMode::Subscribe;
    loop {
        let done = world.state().caught_up.values().filter(|done| **done).count();
        let converged = !clustered || world.state().cluster.not_converged().is_empty();
        let group_lag = match subscribe {
            true => group_lag(world),
            false => Vec::new(),
        };
        let caught_up = match subscribe {
            true => {
                let state = world.state();
                // No member is still processing a batch (committed before it, possibly).
                let idle = state
                    .processes
                    .iter()
                    .filter(|(name, _)| name.starts_with("consumer-"))
                    .all(|(_, process)| !state.open_ops.contains_key(process));
                group_lag.is_empty() && state.sends_outstanding() == 0 && idle
            }
            false => done >= consumers,
        };
        if caught_up && converged {
            return Vec::new();
        }
        if now_duration() >= deadline {
            if subscribe {
                let mut problems: Vec<String> = group_lag
                    .iter()
                    .map(|lag| format!("{GROUP_LAG}{quiet_s} s after the heal: {lag}"))
                    .collect();
                let state = world.state();
                let outstanding = state.sends_outstanding();
                if outstanding > 0 {
                    problems.push(format!("{outstanding} send ops never completed after the heal"));
                }
                for problem in state.cluster.not_converged() {
                    problems.push(format!("not converged {quiet_s} s after the heal: {problem}"));
                }
                return problems;
            }
            let state = world.state();
            let behind: Vec<String> = (0..world.scenario.consumer.count)
                .map(|i| node_name(Role::Consumer, i))
                .filter(|name| !state.caught_up.get(name).copied().unwrap_or(false))
                .collect();
            let mut problems = vec![format!(
                "after the heal, {} did not read every partition to its end within {quiet_s} s",
                behind.join(", ")
            )];
            if behind.is_empty() {
                problems.clear();
            }
            let outstanding = state.sends_outstanding();
            if outstanding > 0 {
                problems.push(format!("{outstanding} send ops never completed after the heal"));
            }
            if clustered {
                for problem in state.cluster.not_converged() {
                    problems.push(format!("not converged {quiet_s} s after the heal: {problem}"));
                }
            }
            return problems;
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}
