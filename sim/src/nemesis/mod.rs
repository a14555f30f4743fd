//! The nemesis: injects the scenario's scripted fault steps and, when configured, random
//! faults at random times, each undone after its duration; at the end of the faulty phase
//! it heals everything. Every injection and repair is an event in the node event log
//! (warn level in the logs). Targets are resolved with the nemesis's own sub-stream.

pub mod links;

use crate::scenario::{FaultKind, FaultStep, NemesisSettings};
use crate::world::disk::{IoErrorRates, SimDisk};
use crate::world::{now_duration, Phase, WorldRef};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::warn;

/// One fault to inject now.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: String,
    pub duration: Duration,
    pub factor: u32,
    pub rate: f64,
    pub count: u32,
    pub skew_ms: u64,
    pub drift_ppm: u64,
}

/// Node names and ids, and hooks for client crashes (their in-flight ops become info).
pub struct Targets {
    pub nodes: BTreeMap<String, NodeId>,
    /// Called after a client node is killed, with its name.
    pub on_client_crash: Box<dyn Fn(&str) + Send + Sync>,
}

pub struct Nemesis {
    world: WorldRef,
    targets: Arc<Targets>,
    rng: Mutex<ChaCha8Rng>,
}

impl Nemesis {
    pub fn new(world: WorldRef, targets: Targets) -> Arc<Nemesis> {
        let rng = crate::seed::substream(world.seed, "nemesis");
        Arc::new(Nemesis { world, targets: Arc::new(targets), rng: Mutex::new(rng) })
    }

    /// Runs the scripted steps and the random nemesis until the faulty phase ends.
    pub async fn run(self: Arc<Self>, faulty_start: Duration, faulty_end: Duration) {
        let mut steps: Vec<FaultStep> = self.world.scenario.faults.clone();
        steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let scripted = self.clone();
        madsim::task::spawn(async move {
            for step in steps {
                let at = faulty_start + Duration::from_secs_f64(step.at_s);
                sleep_until(at).await;
                if scripted.world.phase() != Phase::Faulty {
                    return;
                }
                let fault = scripted.scripted_fault(&step);
                scripted.clone().inject(fault);
            }
        });
        if let Some(settings) = self.world.scenario.nemesis.clone() {
            self.random_loop(&settings, faulty_end).await;
        }
    }

    async fn random_loop(self: &Arc<Self>, settings: &NemesisSettings, faulty_end: Duration) {
        loop {
            let (wait, fault) = {
                let mut rng = self.rng.lock().expect("nemesis rng");
                let wait = uniform(&mut rng, settings.interval_s);
                let kind = settings.kinds[rng.gen_range(0..settings.kinds.len())];
                let target = settings.targets[rng.gen_range(0..settings.targets.len())].clone();
                let duration = Duration::from_secs_f64(uniform(&mut rng, settings.duration_s));
                let fault = Fault {
                    kind,
                    target,
                    duration,
                    factor: rng.gen_range(5..50),
                    rate: rng.gen_range(0.05..0.5),
                    count: rng.gen_range(1..4),
                    // Up to 5 s ahead, running up to 10% fast.
                    skew_ms: rng.gen_range(0..5_000),
                    drift_ppm: rng.gen_range(0..100_000),
                };
                (wait, fault)
            };
            madsim::time::sleep(Duration::from_secs_f64(wait)).await;
            if self.world.phase() != Phase::Faulty || now_duration() >= faulty_end {
                return;
            }
            self.clone().inject(fault);
        }
    }

    fn scripted_fault(&self, step: &FaultStep) -> Fault {
        Fault {
            kind: step.kind,
            target: step.target.clone(),
            duration: Duration::from_secs_f64(step.duration_s.unwrap_or(0.0)),
            factor: step.factor.unwrap_or(10),
            rate: step.rate.unwrap_or(1.0),
            count: step.count.unwrap_or(1),
            skew_ms: step.skew_ms.unwrap_or(0),
            drift_ppm: step.drift_ppm.unwrap_or(0),
        }
    }

    /// Resolves a role ("any-broker") or a name to one node.
    fn resolve(&self, target: &str) -> Option<(String, NodeId)> {
        let prefix = match target {
            "any-broker" => "broker-",
            "any-producer" => "producer-",
            "any-consumer" => "consumer-",
            "any-node" => "",
            name => return self.targets.nodes.get(name).map(|id| (name.to_string(), *id)),
        };
        let candidates: Vec<(&String, &NodeId)> =
            self.targets.nodes.iter().filter(|(name, _)| name.starts_with(prefix)).collect();
        if candidates.is_empty() {
            return None;
        }
        let pick = self.rng.lock().expect("nemesis rng").gen_range(0..candidates.len());
        let (name, id) = candidates[pick];
        Some((name.clone(), *id))
    }

    /// Injects a fault and schedules its repair.
    pub fn inject(self: Arc<Self>, fault: Fault) {
        let Some((name, id)) = self.resolve(&fault.target) else {
            warn!(target = %fault.target, "fault target matches no node");
            return;
        };
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        let kind = format!("{:?}", fault.kind).to_lowercase();
        warn!(node = %name, fault = %kind, duration_ms = fault.duration.as_millis() as u64, "fault injected");
        self.world.event(
            &name,
            &format!("fault-{kind}"),
            &[("duration_ms", fault.duration.as_millis().to_string())],
        );
        self.world.state().stats.faults_injected += 1;
        match fault.kind {
            FaultKind::Crash => {
                handle.kill(id);
                self.world.state().stats.crashes += 1;
                if !name.starts_with("broker-") {
                    (self.targets.on_client_crash)(&name);
                }
            }
            FaultKind::Pause => handle.pause(id),
            FaultKind::Isolate => NetSim::current().clog_node(id),
            FaultKind::ResetConnections => {
                if fault.rate < 1.0 && name.starts_with("broker-") {
                    self.world.state().reset_after_append.insert(name.clone(), fault.rate);
                } else if let Some(resets) = self.world.resets.get(&name) {
                    resets.send_modify(|generation| *generation += 1);
                }
            }
            FaultKind::SlowDisk => disk.set_slow(id, fault.factor.max(1)),
            FaultKind::DiskFull => disk.set_full(id, true),
            FaultKind::IoErrors => {
                let rate = fault.rate.clamp(0.0, 1.0);
                disk.set_io_errors(
                    id,
                    IoErrorRates { read: rate, write: rate, sync: rate, metadata: 0.0 },
                );
            }
            FaultKind::BitFlips => {
                let flips = disk.flip_bits(id, fault.count);
                let detail = format!("{flips:?}");
                self.world.event(&name, "bit-flips", &[("flips", detail)]);
                return;
            }
            FaultKind::LatencySpike => {
                NetSim::current().update_config(|config| {
                    config.send_latency = scale(&config.send_latency, fault.factor.max(1));
                });
            }
            FaultKind::ClockSkew => {
                let now = crate::world::now_ns();
                let mut state = self.world.state();
                let clock = state.clocks.entry(name.clone()).or_default();
                clock.skew(now, fault.skew_ms, fault.drift_ppm);
            }
        }
        let nemesis = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(fault.duration).await;
            nemesis.repair(&fault, &name, id);
        });
    }

    fn repair(&self, fault: &Fault, name: &str, id: NodeId) {
        if self.world.phase() != Phase::Faulty {
            // The heal already undid every fault (and restarted every node).
            return;
        }
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        match fault.kind {
            FaultKind::Crash => {
                // Kill first: a restart alone keeps the old sockets bound.
                handle.kill(id);
                handle.restart(id);
            }
            FaultKind::Pause => handle.resume(id),
            FaultKind::Isolate => NetSim::current().unclog_node(id),
            FaultKind::ResetConnections => {
                self.world.state().reset_after_append.remove(name);
            }
            FaultKind::SlowDisk => disk.set_slow(id, 1),
            FaultKind::DiskFull => disk.set_full(id, false),
            FaultKind::IoErrors => disk.set_io_errors(id, IoErrorRates::default()),
            FaultKind::BitFlips => return,
            FaultKind::ClockSkew => {
                let now = crate::world::now_ns();
                if let Some(clock) = self.world.state().clocks.get_mut(name) {
                    clock.settle(now);
                }
            }
            FaultKind::LatencySpike => {
                let base = crate::runner::config::send_latency(&self.world.scenario.network);
                NetSim::current().update_config(|config| config.send_latency = base);
            }
        }
        let kind = format!("{:?}", fault.kind).to_lowercase();
        self.world.event(name, &format!("repair-{kind}"), &[]);
    }

    /// Ends every fault: network whole, disks healthy, nothing paused, every broker
    /// restarted (kill, then restart, so unsynced writes meet their fate) and every
    /// crashed client back.
    pub fn heal(&self) {
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        let net = NetSim::current();
        let base = crate::runner::config::send_latency(&self.world.scenario.network);
        net.update_config(|config| config.send_latency = base);
        self.world.state().reset_after_append.clear();
        let now = crate::world::now_ns();
        for clock in self.world.state().clocks.values_mut() {
            clock.settle(now);
        }
        for (name, id) in &self.targets.nodes {
            net.unclog_node(*id);
            disk.heal(*id);
            handle.resume(*id);
            if name.starts_with("broker-") {
                handle.kill(*id);
                handle.restart(*id);
            } else if handle.is_exit(*id) {
                handle.restart(*id);
            }
        }
        self.world.event("nemesis", "healed", &[]);
    }
}

fn uniform(rng: &mut ChaCha8Rng, range: [f64; 2]) -> f64 {
    if range[1] > range[0] {
        rng.gen_range(range[0]..range[1])
    } else {
        range[0]
    }
}

fn scale(range: &std::ops::Range<Duration>, factor: u32) -> std::ops::Range<Duration> {
    range.start * factor..range.end * factor
}

async fn sleep_until(at: Duration) {
    let now = now_duration();
    if at > now {
        madsim::time::sleep(at - now).await;
    }
}
