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
pub mod faults;
pub mod links;
pub mod resolve;

use crate::check::cluster::ClusterEvent;
use crate::scenario::{FaultStep, NemesisSettings};
use crate::world::cluster::ClusterView;
use crate::world::disk::SimDisk;
use crate::world::{node_name, now_duration, Phase, Role, WorldRef};
use envelope::{Envelope, Impact};
use faults::{Draw, FaultSpec, Planner, Rule};
use links::{Holds, LinkClogs};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use resolve::is_server;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::warn;

/// Node names and ids, and hooks for client crashes (their in-flight ops become info).
pub struct Targets {
    pub nodes: BTreeMap<String, NodeId>,
    /// Called after a client node is killed, with its name.
    pub on_client_crash: Box<dyn Fn(&str) + Send + Sync>,
}

/// The nemesis as its rules' spawned tasks hold it.
pub type NemesisRef = Arc<Nemesis>;

pub struct Nemesis {
    pub(crate) world: WorldRef,
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
    /// Brokers in a controlled shutdown, until its repair (or the heal) starts them again.
    stopping: Mutex<std::collections::BTreeSet<String>>,
    /// When the faulty phase began, and every fault injected since, as a scripted step
    /// (a one-node target resolved to that node): the random nemesis's schedule made
    /// explicit, for `shrink`.
    realized: Mutex<(Duration, Vec<FaultStep>)>,
}

/// A fault resolved to nodes: what `apply` does and `repair` undoes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The nodes the fault is about; the first names the fault in the event log.
    pub nodes: Vec<String>,
    /// Directed links to cut (src, dst).
    pub links: Vec<(String, String)>,
    /// Extra event fields: the peer, the sides of a split or bridge, the nodes.
    pub fields: Vec<(&'static str, String)>,
    /// What it does to nodes while it lasts (for the envelope).
    pub impact: Impact,
}

impl Plan {
    /// A plan about one node.
    pub fn on(node: String) -> Plan {
        Plan { nodes: vec![node], ..Plan::default() }
    }
}

/// Whether a fault lasts until its repair or is done at once (bit flips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
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
            stopping: Mutex::new(std::collections::BTreeSet::new()),
            realized: Mutex::new((Duration::ZERO, Vec::new())),
        })
    }

    /// Runs the scripted steps and the random nemesis until the faulty phase ends. Tasks
    /// hold the nemesis weakly across their sleeps: one still sleeping when the run ends
    /// (the quiet phase can end early) must not keep the world alive past the runtime.
    pub async fn run(self: Arc<Self>, faulty_start: Duration, faulty_end: Duration) {
        self.realized.lock().expect("nemesis realized steps").0 = faulty_start;
        let mut steps: Vec<FaultStep> = self.world.scenario.faults.clone();
        steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let scripted = Arc::downgrade(&self);
        madsim::task::spawn(async move {
            for step in steps {
                let at = faulty_start + Duration::from_secs_f64(step.at_s);
                sleep_until(at).await;
                let Some(nemesis) = scripted.upgrade() else { return };
                if nemesis.world.phase() != Phase::Faulty {
                    return;
                }
                nemesis.inject(step.fault);
            }
        });
        let settings = self.world.scenario.nemesis.clone();
        let nemesis = Arc::downgrade(&self);
        drop(self);
        if let Some(settings) = settings {
            Self::random_loop(nemesis, &settings, faulty_end).await;
        }
    }

    async fn random_loop(nemesis: Weak<Self>, settings: &NemesisSettings, faulty_end: Duration) {
        loop {
            let (wait, fault) = {
                let Some(nemesis) = nemesis.upgrade() else { return };
                let mut rng = nemesis.rng.lock().expect("nemesis rng");
                let wait = faults::draw::uniform(&mut rng, settings.interval_s);
                let kind = settings.kinds[rng.gen_range(0..settings.kinds.len())];
                let draw = Draw::new(&mut rng, settings);
                (wait, kind.drawn(draw, &mut rng, &nemesis.world.scenario))
            };
            madsim::time::sleep(Duration::from_secs_f64(wait)).await;
            let Some(nemesis) = nemesis.upgrade() else { return };
            if nemesis.world.phase() != Phase::Faulty || now_duration() >= faulty_end {
                return;
            }
            nemesis.inject(fault);
        }
    }

    /// Resolves the fault's nodes (and links) now, against the cluster as last reported.
    fn plan(&self, rule: &dyn Rule) -> Result<Plan, String> {
        let names: Vec<String> = self.targets.nodes.keys().cloned().collect();
        let live: Vec<String> =
            names.iter().filter(|name| !self.envelope().is_down(name)).cloned().collect();
        let cluster = self.world.state().cluster.clone();
        let mut rng = self.rng.lock().expect("nemesis rng");
        let mut planner = Planner {
            names: &names,
            live: &live,
            cluster: &cluster,
            coordinator: self.world.scenario.coordinator_partition(),
            rng: &mut rng,
        };
        let mut plan = rule.plan(&mut planner)?;
        drop(rng);
        if plan.nodes.is_empty() {
            return Err("the fault resolved to no node".to_string());
        }
        let active = cluster.active_controller.map(|(i, _)| node_name(Role::Controller, i));
        let impact = rule.impact(&plan);
        plan.impact = match rule.silences(&plan) {
            true => envelope::with_controller_fencing(impact, active.as_deref(), &names),
            false => impact,
        };
        self.vet(rule, &plan, &cluster)?;
        Ok(plan)
    }

    /// Err when the fault acts on a process that is down (a kill would be repaired by a
    /// restart no fault vetted), or, with `spare_last_replica`, when it would leave a
    /// partition without a spare while a broker is killed (see `envelope`).
    fn vet(&self, rule: &dyn Rule, plan: &Plan, cluster: &ClusterView) -> Result<(), String> {
        let mut envelope = self.envelope();
        let on_process = rule.on_process();
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
    pub fn inject(self: Arc<Self>, fault: FaultSpec) {
        let kind = fault.kind().name();
        let rule = fault.rule();
        let plan = match self.plan(rule) {
            Ok(plan) => plan,
            Err(reason) => {
                let target = rule.target().unwrap_or_default().to_string();
                warn!(fault = %kind, %target, %reason, "fault skipped");
                let fields = [("kind", kind), ("target", target), ("reason", reason)];
                self.world.event("nemesis", "fault-skipped", &fields);
                return;
            }
        };
        let name = plan.nodes[0].clone();
        let duration_ms = rule.duration().as_millis() as u64;
        let nodes = plan.nodes.join(",");
        warn!(node = %name, fault = %kind, nodes = %nodes, duration_ms, "fault injected");
        let mut fields = vec![("duration_ms", duration_ms.to_string())];
        fields.extend(plan.fields.iter().cloned());
        self.world.event(&name, &format!("fault-{kind}"), &fields);
        self.world.state().stats.faults_injected += 1;
        self.realize(&fault, &plan);
        if rule.apply(&self, &plan) == Applied::Once {
            return;
        }
        let live = self.envelope().hold(plan.impact.clone());
        // Weak: a repair still sleeping when the run ends (the quiet phase ended early)
        // must not keep the world alive past the runtime (zombie-commit seed 1 leaked its
        // world through a pause repair).
        let nemesis = Arc::downgrade(&self);
        madsim::task::spawn(async move {
            madsim::time::sleep(fault.rule().duration()).await;
            if let Some(nemesis) = nemesis.upgrade() {
                nemesis.repair(&fault, &plan, live);
            }
        });
    }

    /// Keeps the injected fault as a step at this instant of the faulty phase.
    fn realize(&self, fault: &FaultSpec, plan: &Plan) {
        let mut realized = self.realized.lock().expect("nemesis realized steps");
        let at = now_duration().saturating_sub(realized.0);
        let fault = match plan.nodes.as_slice() {
            [node] => faults::with_target(fault, node),
            _ => fault.clone(),
        };
        realized.1.push(FaultStep { at_s: at.as_secs_f64(), fault });
    }

    /// Every fault injected so far, in injection order, as scripted steps.
    pub fn realized_steps(&self) -> Vec<FaultStep> {
        self.realized.lock().expect("nemesis realized steps").1.clone()
    }

    /// Undoes a fault; `live` is its hold in the envelope.
    fn repair(&self, fault: &FaultSpec, plan: &Plan, live: u64) {
        let name = &plan.nodes[0];
        if self.world.phase() != Phase::Faulty {
            // The heal already undid every fault (and restarted every node).
            return;
        }
        let released = self.envelope().release(live, now_ms());
        assert!(released.is_some(), "fault {live} ({name}) released twice or never held");
        fault.rule().repair(self, plan);
        let kind = fault.kind().name();
        warn!(node = %name, fault = %kind, nodes = %plan.nodes.join(","), "fault healed");
        self.world.event(name, &format!("heal-{kind}"), &plan.fields);
    }

    /// Kills `nodes` at the same simulated instant: their unsynced writes meet their fate,
    /// their pauses end, a client's in-flight operations become indeterminate.
    fn kill(&self, nodes: &[String]) {
        for node in nodes {
            self.world.state().stats.crashes += 1;
            self.stop(node);
        }
    }

    /// Stops a node's process (a kill, whatever state its disk was left in).
    fn stop(&self, node: &str) {
        let id = self.id_of(node);
        Handle::current().kill(id);
        // A killed node comes back running: its pauses are over.
        self.paused.lock().expect("nemesis paused set").forget(&id);
        if node.starts_with("broker-") {
            // Its last report describes the log it just lost.
            let mut state = self.world.state();
            state.cluster.replicas.retain(|(b, _), _| format!("broker-{}", b.0) != *node);
        }
        if !is_server(node) {
            (self.targets.on_client_crash)(node);
        }
        if let Some(index) = node.strip_prefix("broker-").and_then(|i| i.parse().ok()) {
            let broker = kafkasim::types::NodeId(index);
            self.world.report(node, ClusterEvent::BrokerStopped { broker });
        }
    }

    /// Restarts killed nodes (killed again first: a restart alone keeps the old sockets).
    fn restart(&self, nodes: &[String]) {
        let handle = Handle::current();
        for node in nodes {
            assert!(!self.envelope().is_down(node), "{node} killed by two live faults");
            let id = self.id_of(node);
            handle.kill(id);
            handle.restart(id);
        }
    }

    /// Pauses a node; overlapping pauses resume it when the last one ends.
    fn pause(&self, node: &str) {
        let id = self.id_of(node);
        if self.paused.lock().expect("nemesis paused set").hold(id) {
            Handle::current().pause(id);
        }
    }

    fn resume(&self, node: &str) {
        let id = self.id_of(node);
        if self.paused.lock().expect("nemesis paused set").release(&id) {
            Handle::current().resume(id);
        }
    }

    /// Cuts directed links (reference-counted: overlapping cuts heal with the last).
    fn hold_links(&self, links: &[(String, String)]) {
        let net = NetSim::current();
        let mut clogs = self.clogs();
        for (src, dst) in links {
            clogs.hold_link(&*net, self.id_of(src), self.id_of(dst));
        }
    }

    fn release_links(&self, links: &[(String, String)]) {
        let net = NetSim::current();
        let mut clogs = self.clogs();
        for (src, dst) in links {
            clogs.release_link(&*net, self.id_of(src), self.id_of(dst));
        }
    }

    fn disk(&self) -> Arc<SimDisk> {
        madsim::plugin::simulator::<SimDisk>()
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
        self.world.messages.clear();
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
        // A broker in a controlled shutdown starts again, whether it got to stop or not, on a
        // healed disk and network like every other node (swarm seed 2041: its disk stayed
        // full, and the restarted broker took its log directory offline for good).
        let stopping = std::mem::take(&mut *self.stopping.lock().expect("nemesis stopping set"));
        for (name, id) in &self.targets.nodes {
            net.unclog_node(*id);
            disk.heal(*id);
            handle.resume(*id);
            if stopping.contains(name) {
                handle.kill(*id);
                handle.restart(*id);
                continue;
            }
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

/// The base latency under the live spikes: scaled by the largest factor, never by their
/// product; the base itself when none is live.
fn spiked(base: &std::ops::Range<Duration>, spikes: &Holds<u32>) -> std::ops::Range<Duration> {
    let factor = spikes.max_key().copied().unwrap_or(1);
    base.start * factor..base.end * factor
}

/// Simulated milliseconds since the start of the run.
pub fn now_ms() -> u64 {
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
