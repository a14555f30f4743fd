//! The nemesis: injects the scenario's scripted fault steps and, when configured, random
//! faults at random times, each undone after its duration; at the end of the faulty phase
//! it heals everything. Every injection and repair is an event in the node event log
//! (warn level in the logs). Targets are resolved when a fault fires, with the nemesis's
//! own sub-stream (`resolve`); network cuts go through reference-counted clogs (`links`).
//! Every fault is vetted against the faults still live (`envelope`): none hits a node that
//! is down, and with `spare_last_replica` every partition keeps an unimpaired in-sync
//! replica for as long as a broker is killed. Latency spikes do not compound: the largest
//! live factor applies to the base latency. Owns what is faulty and for how long; the
//! world owns what a fault does to a node.

pub mod envelope;
pub mod links;
pub mod resolve;

use crate::check::cluster::ClusterEvent;
use crate::scenario::validate::kebab;
use crate::scenario::{FaultKind, FaultStep, NemesisSettings};
use crate::world::cluster::ClusterView;
use crate::world::disk::{IoErrorRates, SimDisk};
use crate::world::{now_duration, Phase, WorldRef};
use envelope::{Envelope, Impact};
use links::{Holds, LinkClogs};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use resolve::{bridge_sides, is_server, links_across, split_sides, Resolver};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::warn;

/// One fault to inject now.
#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    /// A node name or role (see `scenario::Target`); None for power-loss and split by nodes.
    pub target: Option<String>,
    /// one-way-cut: who stops hearing from the target (None: a random other node).
    pub peer: Option<String>,
    /// split: the minority; power-loss: the nodes that lose power.
    pub nodes: Option<Vec<String>>,
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
    clogs: Mutex<LinkClogs>,
    /// The live faults: who is down, who is impaired, whether a new fault may join them.
    envelope: Mutex<Envelope>,
    /// Pause faults holding each node: overlapping pauses resume the node when the last
    /// one ends, not the first.
    paused: Mutex<Holds<NodeId>>,
    /// The factors of the live latency spikes: the largest one applies.
    spikes: Mutex<Holds<u32>>,
}

/// A fault resolved to nodes: what `apply` does and `repair` undoes.
#[derive(Clone, Debug, Default)]
struct Plan {
    /// The nodes the fault is about; the first names the fault in the event log.
    nodes: Vec<String>,
    /// Directed links to cut (src, dst).
    links: Vec<(String, String)>,
    /// Extra event fields: the peer, the sides of a split or bridge, the nodes.
    fields: Vec<(&'static str, String)>,
    /// What it does to nodes while it lasts (for the envelope).
    impact: Impact,
}

/// Whether a fault lasts until its repair or is done at once (bit flips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applied {
    UntilRepair,
    Once,
}

impl Nemesis {
    pub fn new(world: WorldRef, targets: Targets) -> Arc<Nemesis> {
        let rng = crate::seed::substream(world.seed, "nemesis");
        // A broker cut off or paused may be fenced up to a session timeout later.
        let grace_ms = world.scenario.broker.session_timeout_ms;
        Arc::new(Nemesis {
            world,
            targets: Arc::new(targets),
            rng: Mutex::new(rng),
            clogs: Mutex::new(LinkClogs::default()),
            envelope: Mutex::new(Envelope::new(grace_ms)),
            paused: Mutex::new(Holds::default()),
            spikes: Mutex::new(Holds::default()),
        })
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
                let mut fault = Fault {
                    kind,
                    target: Some(target),
                    peer: None,
                    nodes: None,
                    duration,
                    factor: rng.gen_range(5..50),
                    rate: rng.gen_range(0.05..0.5),
                    count: rng.gen_range(1..4),
                    // Up to 5 s ahead, running up to 10% fast.
                    skew_ms: rng.gen_range(0..5_000),
                    drift_ppm: rng.gen_range(0..100_000),
                };
                if kind == FaultKind::PowerLoss {
                    // Drawn only for power losses, so the other kinds keep their streams.
                    let max =
                        settings.power_loss_max_or_default(self.world.scenario.cluster.brokers);
                    fault.count = rng.gen_range(1..=max.max(1));
                }
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
            peer: step.peer.clone(),
            nodes: step.nodes.clone(),
            duration: Duration::from_secs_f64(step.duration_s.unwrap_or(0.0)),
            factor: step.factor.unwrap_or(10),
            rate: step.rate.unwrap_or(1.0),
            count: step.count.unwrap_or(1),
            skew_ms: step.skew_ms.unwrap_or(0),
            drift_ppm: step.drift_ppm.unwrap_or(0),
        }
    }

    /// Resolves the fault's nodes (and links) now, against the cluster as last reported.
    fn plan(&self, fault: &Fault) -> Result<Plan, String> {
        let names: Vec<String> = self.targets.nodes.keys().cloned().collect();
        let live: Vec<String> =
            names.iter().filter(|name| !self.envelope().is_down(name)).cloned().collect();
        let cluster = self.world.state().cluster.clone();
        let coordinator = self.world.scenario.coordinator_partition();
        let resolver = Resolver { names: &names, cluster: &cluster, coordinator };
        let mut rng = self.rng.lock().expect("nemesis rng");
        let target = match &fault.target {
            Some(text) => Some(resolver.one(text, &mut *rng)?),
            None => None,
        };
        let mut plan = Plan::default();
        match fault.kind {
            FaultKind::OneWayCut => {
                let from = target.ok_or("one-way-cut needs a target")?;
                let to = match &fault.peer {
                    Some(text) => resolver.one(text, &mut *rng)?,
                    None => {
                        let others: Vec<String> =
                            names.iter().filter(|n| **n != from).cloned().collect();
                        let sub = Resolver { names: &others, cluster: &cluster, coordinator: None };
                        sub.one("any-node", &mut *rng)?
                    }
                };
                if from == to {
                    return Err(format!("the target and the peer are both `{from}`"));
                }
                plan.fields.push(("peer", to.clone()));
                plan.links.push((from.clone(), to.clone()));
                plan.nodes = vec![from, to];
            }
            FaultKind::Split => {
                plan = plan_split(&resolver, fault.nodes.as_deref(), target, &mut rng)?;
            }
            FaultKind::Bridge => {
                let bridge = target.ok_or("bridge needs a target")?;
                plan = plan_bridge(&resolver, bridge, &mut rng)?;
            }
            FaultKind::CutBrokerLinks => {
                let broker = target.ok_or("cut-broker-links needs a target")?;
                if !broker.starts_with("broker-") {
                    return Err(format!("`{broker}` is not a broker"));
                }
                let others: Vec<String> = names
                    .iter()
                    .filter(|n| n.starts_with("broker-") && **n != broker)
                    .cloned()
                    .collect();
                plan.links = links_across(std::slice::from_ref(&broker), &others);
                plan.nodes = vec![broker];
            }
            FaultKind::PowerLoss => {
                plan.nodes = match &fault.nodes {
                    Some(texts) => resolver.many(texts, &mut *rng)?,
                    None => {
                        let first = target.filter(|name| is_server(name));
                        let count = fault.count.max(1) as usize;
                        let up = Resolver { names: &live, cluster: &cluster, coordinator: None };
                        up.random_brokers(first, count, &mut *rng)
                    }
                };
                plan.fields.push(("nodes", plan.nodes.join(",")));
            }
            _ => plan.nodes = vec![target.ok_or("the fault has no target")?],
        }
        if plan.nodes.is_empty() {
            return Err("the fault resolved to no node".to_string());
        }
        plan.impact = impact_of(fault.kind, &plan);
        self.vet(fault.kind, &plan, &cluster)?;
        Ok(plan)
    }

    /// Err when the fault acts on a process that is down (a kill would be repaired by a
    /// restart no fault vetted), or, with `spare_last_replica`, when it would leave a
    /// partition without a spare while a broker is killed (see `envelope`).
    fn vet(&self, kind: FaultKind, plan: &Plan, cluster: &ClusterView) -> Result<(), String> {
        let mut envelope = self.envelope();
        let on_process = matches!(
            kind,
            FaultKind::Crash
                | FaultKind::PowerLoss
                | FaultKind::Pause
                | FaultKind::ResetConnections
        );
        if let Some(node) = plan.nodes.iter().find(|node| on_process && envelope.is_down(node)) {
            return Err(format!("`{node}` is already down"));
        }
        let spare = self.world.scenario.nemesis.as_ref().is_some_and(|n| n.spare_last_replica);
        match spare {
            true => {
                let holders = envelope.holders(cluster);
                envelope.check_spares(&plan.impact, &holders, now_ms())
            }
            false => Ok(()),
        }
    }

    fn id_of(&self, name: &str) -> NodeId {
        *self.targets.nodes.get(name).expect("plans name only nodes of the run")
    }

    /// Injects a fault and schedules its repair. A target that cannot be resolved now (no
    /// active controller known, a partition without a leader) skips the fault.
    pub fn inject(self: Arc<Self>, fault: Fault) {
        let kind = kebab(fault.kind);
        let plan = match self.plan(&fault) {
            Ok(plan) => plan,
            Err(reason) => {
                let target = fault.target.clone().unwrap_or_default();
                warn!(fault = %kind, %target, %reason, "fault skipped");
                let fields = [("kind", kind), ("target", target), ("reason", reason)];
                self.world.event("nemesis", "fault-skipped", &fields);
                return;
            }
        };
        let name = plan.nodes[0].clone();
        let id = self.id_of(&name);
        let duration_ms = fault.duration.as_millis() as u64;
        let nodes = plan.nodes.join(",");
        warn!(node = %name, fault = %kind, nodes = %nodes, duration_ms, "fault injected");
        let mut fields = vec![("duration_ms", duration_ms.to_string())];
        fields.extend(plan.fields.iter().cloned());
        self.world.event(&name, &format!("fault-{kind}"), &fields);
        self.world.state().stats.faults_injected += 1;
        if self.apply(&fault, &plan, &name, id) == Applied::Once {
            return;
        }
        let live = self.envelope().hold(plan.impact.clone());
        let nemesis = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(fault.duration).await;
            nemesis.repair(&fault, &plan, &name, id, live);
        });
    }

    /// Carries out a planned fault.
    fn apply(&self, fault: &Fault, plan: &Plan, name: &str, id: NodeId) -> Applied {
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        match fault.kind {
            FaultKind::Crash | FaultKind::PowerLoss => {
                // Every node goes down at the same simulated instant.
                for node in &plan.nodes {
                    handle.kill(self.id_of(node));
                    // A killed node comes back running: its pauses are over.
                    self.paused.lock().expect("nemesis paused set").forget(&self.id_of(node));
                    self.world.state().stats.crashes += 1;
                    if node.starts_with("broker-") {
                        // Its last report describes the log it just lost.
                        self.world
                            .state()
                            .cluster
                            .replicas
                            .retain(|(b, _), _| format!("broker-{}", b.0) != *node);
                    }
                    if !is_server(node) {
                        (self.targets.on_client_crash)(node);
                    }
                    if let Some(index) = node.strip_prefix("broker-").and_then(|i| i.parse().ok()) {
                        let broker = kafkasim::types::NodeId(index);
                        self.world.report(node, ClusterEvent::BrokerStopped { broker });
                    }
                }
            }
            FaultKind::Pause => {
                if self.paused.lock().expect("nemesis paused set").hold(id) {
                    handle.pause(id);
                }
            }
            FaultKind::Isolate => self.clogs().hold_node(&*NetSim::current(), id),
            FaultKind::OneWayCut
            | FaultKind::Split
            | FaultKind::Bridge
            | FaultKind::CutBrokerLinks => {
                let net = NetSim::current();
                let mut clogs = self.clogs();
                for (src, dst) in &plan.links {
                    clogs.hold_link(&*net, self.id_of(src), self.id_of(dst));
                }
            }
            FaultKind::ResetConnections => {
                if fault.rate < 1.0 && name.starts_with("broker-") {
                    self.world.state().reset_after_append.insert(name.to_string(), fault.rate);
                } else if let Some(resets) = self.world.resets.get(name) {
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
                self.world.event(name, "bit-flips", &[("flips", detail)]);
                return Applied::Once;
            }
            FaultKind::LatencySpike => {
                self.spikes.lock().expect("nemesis spikes").hold(fault.factor.max(1));
                self.set_latency();
            }
            FaultKind::ClockSkew => {
                let now = crate::world::now_ns();
                let mut state = self.world.state();
                let clock = state.clocks.entry(name.to_string()).or_default();
                clock.skew(now, fault.skew_ms, fault.drift_ppm);
            }
        }
        Applied::UntilRepair
    }

    /// Undoes a fault; `live` is its hold in the envelope.
    fn repair(&self, fault: &Fault, plan: &Plan, name: &str, id: NodeId, live: u64) {
        if self.world.phase() != Phase::Faulty {
            // The heal already undid every fault (and restarted every node).
            return;
        }
        let released = self.envelope().release(live, now_ms());
        assert!(released.is_some(), "fault {live} ({name}) released twice or never held");
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        match fault.kind {
            FaultKind::Crash | FaultKind::PowerLoss => {
                for node in &plan.nodes {
                    assert!(!self.envelope().is_down(node), "{node} killed by two live faults");
                    // Kill first: a restart alone keeps the old sockets bound.
                    let node_id = self.id_of(node);
                    handle.kill(node_id);
                    handle.restart(node_id);
                }
            }
            FaultKind::Pause => {
                if self.paused.lock().expect("nemesis paused set").release(&id) {
                    handle.resume(id);
                }
            }
            FaultKind::Isolate => self.clogs().release_node(&*NetSim::current(), id),
            FaultKind::OneWayCut
            | FaultKind::Split
            | FaultKind::Bridge
            | FaultKind::CutBrokerLinks => {
                let net = NetSim::current();
                let mut clogs = self.clogs();
                for (src, dst) in &plan.links {
                    clogs.release_link(&*net, self.id_of(src), self.id_of(dst));
                }
            }
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
                self.spikes.lock().expect("nemesis spikes").release(&fault.factor.max(1));
                self.set_latency();
            }
        }
        let kind = kebab(fault.kind);
        warn!(node = %name, fault = %kind, nodes = %plan.nodes.join(","), "fault healed");
        self.world.event(name, &format!("heal-{kind}"), &plan.fields);
    }

    fn clogs(&self) -> std::sync::MutexGuard<'_, LinkClogs> {
        self.clogs.lock().expect("link clogs lock is never poisoned: a panic ends the run")
    }

    fn envelope(&self) -> std::sync::MutexGuard<'_, Envelope> {
        self.envelope.lock().expect("envelope lock is never poisoned: a panic ends the run")
    }

    /// The base latency scaled by the largest live spike: spikes never compound, and the
    /// last one to end restores the base exactly.
    fn set_latency(&self) {
        let base = crate::runner::config::send_latency(&self.world.scenario.network);
        let latency = spiked(&base, &self.spikes.lock().expect("nemesis spikes"));
        NetSim::current().update_config(|config| config.send_latency = latency);
    }

    /// Ends every fault: network whole, disks healthy, nothing paused, every broker
    /// restarted (kill, then restart, so unsynced writes meet their fate), every crashed
    /// controller and client back.
    pub fn heal(&self) {
        let handle = Handle::current();
        let disk = madsim::plugin::simulator::<SimDisk>();
        let net = NetSim::current();
        let base = crate::runner::config::send_latency(&self.world.scenario.network);
        net.update_config(|config| config.send_latency = base);
        self.clogs().clear(&*net);
        self.world.state().reset_after_append.clear();
        let now = crate::world::now_ns();
        for clock in self.world.state().clocks.values_mut() {
            clock.settle(now);
        }
        // A lone broker restarts so partitions a disk fault took offline come back. A
        // cluster keeps its live brokers: restarting every replica at once would be a power
        // loss of the whole cluster, outside what Kafka promises.
        let clustered = self.world.scenario.cluster.controllers > 0;
        self.envelope().clear();
        self.spikes.lock().expect("nemesis spikes").take_all();
        self.paused.lock().expect("nemesis paused set").take_all();
        for (name, id) in &self.targets.nodes {
            net.unclog_node(*id);
            disk.heal(*id);
            handle.resume(*id);
            let storage_failed = self.world.state().storage_failed.contains(name);
            if clustered && storage_failed {
                // A process restart, not a power loss: the page cache is written back.
                disk.write_back(*id);
                handle.kill(*id);
                handle.restart(*id);
                self.world.event(name, "restart-after-disk-failure", &[]);
            } else if name.starts_with("broker-") && !clustered {
                handle.kill(*id);
                handle.restart(*id);
            } else if handle.is_exit(*id) {
                // A crashed controller or client: its kill already closed its sockets.
                handle.restart(*id);
            }
        }
        self.world.event("nemesis", "healed", &[]);
    }
}

/// What a planned fault does to nodes while it lasts: the nodes a kill takes down; the
/// paused or isolated node, the node under a disk fault, every end of a cut link.
fn impact_of(kind: FaultKind, plan: &Plan) -> Impact {
    let first = || plan.nodes.iter().take(1).cloned().collect();
    match kind {
        FaultKind::Crash | FaultKind::PowerLoss => {
            Impact { kills: plan.nodes.clone(), impairs: Vec::new() }
        }
        FaultKind::Pause
        | FaultKind::Isolate
        | FaultKind::SlowDisk
        | FaultKind::DiskFull
        | FaultKind::IoErrors
        | FaultKind::BitFlips => Impact { kills: Vec::new(), impairs: first() },
        FaultKind::OneWayCut | FaultKind::Split | FaultKind::Bridge | FaultKind::CutBrokerLinks => {
            let mut nodes: Vec<String> =
                plan.links.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
            nodes.sort();
            nodes.dedup();
            Impact { kills: Vec::new(), impairs: nodes }
        }
        FaultKind::ResetConnections | FaultKind::LatencySpike | FaultKind::ClockSkew => {
            Impact::default()
        }
    }
}

/// A majority/minority split around `target`, or with `nodes` as the minority.
fn plan_split(
    resolver: &Resolver<'_>,
    nodes: Option<&[String]>,
    target: Option<String>,
    rng: &mut ChaCha8Rng,
) -> Result<Plan, String> {
    let given = match nodes {
        Some(texts) => resolver.many(texts, rng)?,
        None => Vec::new(),
    };
    if let Some(name) = target.iter().chain(&given).find(|name| !is_server(name)) {
        return Err(format!("`{name}` is not a broker or controller"));
    }
    let servers = resolver.servers();
    let (minority, majority) = split_sides(&servers, &given, target.as_ref(), rng);
    if minority.is_empty() || majority.is_empty() {
        return Err(format!("{} servers cannot be split", servers.len()));
    }
    let fields = vec![("minority", minority.join(",")), ("majority", majority.join(","))];
    Ok(Plan {
        links: links_across(&minority, &majority),
        nodes: minority,
        fields,
        ..Plan::default()
    })
}

/// Jepsen's bridge: `bridge` talks to two random halves that cannot talk to each other.
fn plan_bridge(
    resolver: &Resolver<'_>,
    bridge: String,
    rng: &mut ChaCha8Rng,
) -> Result<Plan, String> {
    if !is_server(&bridge) {
        return Err(format!("`{bridge}` is not a broker or controller"));
    }
    let (left, right) = bridge_sides(&resolver.servers(), &bridge, rng);
    if left.is_empty() || right.is_empty() {
        return Err("too few servers for a bridge".to_string());
    }
    let fields = vec![("left", left.join(",")), ("right", right.join(","))];
    Ok(Plan { links: links_across(&left, &right), nodes: vec![bridge], fields, ..Plan::default() })
}

fn uniform(rng: &mut ChaCha8Rng, range: [f64; 2]) -> f64 {
    if range[1] > range[0] {
        rng.gen_range(range[0]..range[1])
    } else {
        range[0]
    }
}

/// The base latency under the live spikes: scaled by the largest factor, never by their
/// product; the base itself when none is live.
fn spiked(base: &std::ops::Range<Duration>, spikes: &Holds<u32>) -> std::ops::Range<Duration> {
    let factor = spikes.max_key().copied().unwrap_or(1);
    base.start * factor..base.end * factor
}

/// Simulated milliseconds since the start of the run.
fn now_ms() -> u64 {
    now_duration().as_millis() as u64
}

async fn sleep_until(at: Duration) {
    let now = now_duration();
    if at > now {
        madsim::time::sleep(at - now).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_spikes_take_the_largest_factor_and_the_last_restores_the_base() {
        let base = Duration::from_micros(500)..Duration::from_micros(3_000);
        let mut spikes = Holds::default();
        assert_eq!(spiked(&base, &spikes), base);
        spikes.hold(10);
        spikes.hold(50);
        spikes.hold(50);
        let worst = Duration::from_millis(25)..Duration::from_millis(150);
        assert_eq!(spiked(&base, &spikes), worst, "the largest factor, not 10 x 50 x 50");
        spikes.release(&50);
        assert_eq!(spiked(&base, &spikes), worst, "another 50x spike is still live");
        spikes.release(&50);
        assert_eq!(spiked(&base, &spikes), base.start * 10..base.end * 10);
        spikes.release(&10);
        assert_eq!(spiked(&base, &spikes), base, "the base, exactly");
    }
}
