//! The simulated world the system runs in, beyond what madsim gives: the per-node disk
//! (`disk`), framed connections (`conn`), the node shells that drive the sans-IO state
//! machines (`broker_node`, `client_node`), and the shared run state (`World`): node names,
//! addresses, the history being recorded, the node event log and the trace hash.

pub mod broker_node;
pub mod client_node;
pub mod cluster;
pub mod conn;
pub mod controller_node;
pub mod disk;
pub mod message_rules;
pub mod outbound;
pub mod signal;
pub mod workload;

use crate::history::HistoryRecorder;
use crate::runner::{Event, RunStats};
use crate::scenario::Scenario;
use crate::seed::{fnv1a, fnv1a_continue as fold};
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The port every simulated broker listens on.
pub const BROKER_PORT: u16 = 9092;
/// The port every simulated controller listens on.
pub const CONTROLLER_PORT: u16 = 9093;

/// Which part of the run the world is in; clients read it to know what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Setup,
    Faulty,
    Quiet,
    Done,
}

/// A node's role and index, e.g. broker 0 or consumer 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Broker,
    Producer,
    Consumer,
    Controller,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Controller => "controller",
        }
    }
}

/// Mutable run state shared by every node task (madsim runs them on one thread; the mutex
/// is uncontended and only satisfies `Send`).
pub struct WorldState {
    pub phase: Phase,
    pub history: HistoryRecorder,
    pub events: Vec<Event>,
    pub trace_hash: u64,
    pub stats: RunStats,
    /// Next unique record value (values are unique per key because they are unique).
    pub next_value: u64,
    /// Next logical client process id; a restarted client takes a new one.
    pub next_process: u64,
    /// Consumers that finished their catch-up reads in the quiet phase.
    pub caught_up: BTreeMap<String, bool>,
    /// Per broker: probability that a produce response is replaced by a connection reset
    /// (the "reset after append" fault).
    pub reset_after_append: BTreeMap<String, f64>,
    /// Per node: how its clock differs from simulated time (clock-skew faults).
    pub clocks: BTreeMap<String, NodeClock>,
    /// Per client node: its current logical process.
    pub processes: BTreeMap<String, u64>,
    /// Per process: the value of its outstanding invocation (completed as info on a crash).
    pub open_ops: BTreeMap<u64, crate::history::OpValue>,
    /// Who leads what, as the nodes last reported (nemesis role targets, liveness).
    pub cluster: cluster::ClusterView,
    /// The inside-cluster invariants, fed by every node's reports.
    pub cluster_checker: crate::check::cluster::ClusterChecker,
    /// Brokers whose disk failed (a partition offline until restart) and controllers halted
    /// by a failed journal write: the heal restarts them as a process restart (write-back,
    /// kill, restart), in cluster mode too.
    pub storage_failed: std::collections::BTreeSet<String>,
    /// Brokers that finished a controlled shutdown and wait to be stopped.
    pub shut_down: std::collections::BTreeSet<String>,
    /// Invariant violations seen so far, in order.
    pub violations: Vec<crate::check::cluster::Violation>,
    /// Subscribe mode: the highest offset per partition a commit of the group was
    /// acknowledged for (the quiet phase ends when it reaches every end offset).
    pub group_committed: BTreeMap<kafkasim::types::TopicPartition, kafkasim::types::Offset>,
    /// Per key: one past the highest offset a send was acked at (the group's lag is zero
    /// only once its commits pass it, whatever the HW reports lag behind), with the
    /// simulated time of that ack (a leader whose log still ends below it long after lost it).
    pub acked_end: BTreeMap<crate::history::Key, (u64, u64)>,
    /// The coverage marks reached so far, and what deriving them remembers.
    pub marks: crate::coverage::Tally,
    pub watch: crate::coverage::derive::Watch,
}

impl WorldState {
    /// A client node (re)starts: it gets a fresh logical process.
    pub fn new_process(&mut self, node: &str) -> u64 {
        let process = self.next_process;
        self.next_process += 1;
        self.processes.insert(node.to_string(), process);
        process
    }

    pub fn invoke(&mut self, process: u64, f: crate::history::OpF, value: crate::history::OpValue) {
        self.invoke_with(process, f, value, BTreeMap::new());
    }

    /// An invocation with extra fields (a commit's `history::commit_extra`).
    pub fn invoke_with(
        &mut self,
        process: u64,
        f: crate::history::OpF,
        value: crate::history::OpValue,
        extra: BTreeMap<String, serde_json::Value>,
    ) {
        self.history.invoke_with(now_ns(), process, f, value.clone(), extra);
        self.open_ops.insert(process, value);
    }

    /// An op that completes the moment it is invoked (assign, seek).
    pub fn instant(
        &mut self,
        process: u64,
        f: crate::history::OpF,
        value: crate::history::OpValue,
    ) {
        self.invoke(process, f, value.clone());
        self.complete(process, crate::history::OpType::Ok, value);
    }

    /// Send ops invoked and not yet completed (catch-up reads wait for them: an ack that
    /// lands after the end offsets were taken would look unseen).
    pub fn sends_outstanding(&self) -> usize {
        self.open_ops.values().filter(|v| matches!(v, crate::history::OpValue::Send(_))).count()
    }

    pub fn complete(
        &mut self,
        process: u64,
        op_type: crate::history::OpType,
        value: crate::history::OpValue,
    ) {
        self.complete_with(process, op_type, value, BTreeMap::new());
    }

    /// A completion with extra fields (a `history::rebalance_extra`).
    pub fn complete_with(
        &mut self,
        process: u64,
        op_type: crate::history::OpType,
        value: crate::history::OpValue,
        extra: BTreeMap<String, serde_json::Value>,
    ) {
        self.history.complete_with(now_ns(), process, op_type, value, extra);
        self.open_ops.remove(&process);
    }
}

/// A node clock that runs ahead of simulated time: a jump plus an optional drift. It only
/// ever moves forward, so the state machines' timeouts stay sound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// Gained so far, in nanoseconds (jumps, and drift already folded in).
    pub ahead_ns: u64,
    /// While drifting: parts per million faster, and since when (simulated ns).
    pub drift: Option<(u64, u64)>,
}

impl NodeClock {
    pub fn ahead_ns(&self, now_ns: u64) -> u64 {
        let drifted = self.drift.map_or(0, |(ppm, since)| {
            (u128::from(now_ns.saturating_sub(since)) * u128::from(ppm) / 1_000_000) as u64
        });
        self.ahead_ns + drifted
    }

    /// Jumps ahead and starts drifting.
    pub fn skew(&mut self, now_ns: u64, jump_ms: u64, drift_ppm: u64) {
        self.settle(now_ns);
        self.ahead_ns += jump_ms * 1_000_000;
        self.drift = (drift_ppm > 0).then_some((drift_ppm, now_ns));
    }

    /// Keeps what drift gained and runs at the normal rate again.
    pub fn settle(&mut self, now_ns: u64) {
        self.ahead_ns = self.ahead_ns(now_ns);
        self.drift = None;
    }
}

/// The world: immutable facts of the run plus the shared state.
pub struct World {
    pub scenario: Scenario,
    pub seed: u64,
    pub nodes: BTreeMap<String, NodeId>,
    /// Per node: bumping the value makes the node drop every open connection.
    pub resets: BTreeMap<String, signal::Signal>,
    /// Per broker: bumping the value starts a controlled shutdown.
    pub shutdowns: BTreeMap<String, signal::Signal>,
    /// The live `message-rule` faults, asked by the receiving end of every connection.
    pub messages: message_rules::MessageRules,
    /// What the live workload steps ask of the clients.
    pub workload: workload::WorkloadControl,
    state: Mutex<WorldState>,
}

/// Worlds not yet dropped, in this process: a finished run must free its world (and with it
/// the logs, disks and history its tasks hold).
static LIVE_WORLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many worlds are alive in this process now.
pub fn live_worlds() -> usize {
    LIVE_WORLDS.load(std::sync::atomic::Ordering::SeqCst)
}

impl Drop for World {
    fn drop(&mut self) {
        LIVE_WORLDS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl World {
    pub fn new(scenario: Scenario, seed: u64) -> World {
        LIVE_WORLDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let state = WorldState {
            phase: Phase::Setup,
            history: HistoryRecorder::new(),
            events: Vec::new(),
            trace_hash: fnv1a(&seed.to_le_bytes()),
            stats: RunStats::default(),
            next_value: 0,
            next_process: 0,
            caught_up: BTreeMap::new(),
            reset_after_append: BTreeMap::new(),
            clocks: BTreeMap::new(),
            processes: BTreeMap::new(),
            open_ops: BTreeMap::new(),
            cluster: cluster::ClusterView::default(),
            cluster_checker: crate::check::cluster::ClusterChecker::with_compacted_topics(
                compacted_topics(&scenario),
            ),
            violations: Vec::new(),
            storage_failed: std::collections::BTreeSet::new(),
            shut_down: std::collections::BTreeSet::new(),
            group_committed: BTreeMap::new(),
            acked_end: BTreeMap::new(),
            marks: crate::coverage::Tally::new(),
            watch: crate::coverage::derive::Watch::default(),
        };
        World {
            scenario,
            seed,
            nodes: BTreeMap::new(),
            resets: BTreeMap::new(),
            shutdowns: BTreeMap::new(),
            messages: message_rules::MessageRules::default(),
            workload: workload::WorkloadControl::default(),
            state: Mutex::new(state),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, WorldState> {
        self.state.lock().expect("world state lock is never poisoned: a panic ends the run")
    }

    pub fn phase(&self) -> Phase {
        self.state().phase
    }

    /// Records an event in the node event log and folds it into the trace hash.
    pub fn event(&self, node: &str, kind: &str, fields: &[(&str, String)]) {
        let time_ns = now_ns();
        let fields: BTreeMap<String, String> =
            fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let mut state = self.state();
        let line = format!("{time_ns} {node} {kind} {fields:?}");
        state.trace_hash = fold(state.trace_hash, line.as_bytes());
        if let Some(mark) = crate::coverage::derive::from_event(kind, &fields) {
            crate::coverage::reach(&mut state.marks, mark, node, time_ns);
        }
        state.events.push(Event {
            time_ns,
            node: node.to_string(),
            kind: kind.to_string(),
            fields,
        });
    }

    /// Counts a coverage mark reached on `node` now (kept out of the trace hash).
    pub fn mark(&self, node: &str, mark: crate::coverage::Mark) {
        let time_ns = now_ns();
        crate::coverage::reach(&mut self.state().marks, mark, node, time_ns);
    }

    /// Counts each of `marks` reached on `node` now.
    pub fn mark_all(&self, node: &str, marks: impl IntoIterator<Item = crate::coverage::Mark>) {
        for mark in marks {
            self.mark(node, mark);
        }
    }

    /// Folds a delivered frame into the trace hash.
    pub fn delivered(&self, from: &str, to: &str, frame: &[u8]) {
        let mut state = self.state();
        state.stats.messages += 1;
        let hash = fold(state.trace_hash, from.as_bytes());
        let hash = fold(hash, to.as_bytes());
        state.trace_hash = fold(hash, frame);
    }

    /// This node's clock, in milliseconds, including any injected skew and drift.
    pub fn clock_ms(&self, node: &str) -> kafkasim::types::Millis {
        let now = now_ns();
        let ahead_ns = self.state().clocks.get(node).map_or(0, |clock| clock.ahead_ns(now));
        kafkasim::types::Millis((now + ahead_ns) / 1_000_000)
    }

    pub fn broker_addr(index: u32) -> SocketAddr {
        SocketAddr::new(node_ip(Role::Broker, index), BROKER_PORT)
    }

    pub fn controller_addr(index: u32) -> SocketAddr {
        SocketAddr::new(node_ip(Role::Controller, index), CONTROLLER_PORT)
    }

    /// A node reports a fact to the inside-cluster checker; every violation it causes is
    /// kept and logged as an `invariant-violated` event.
    pub fn report(&self, node: &str, event: crate::check::cluster::ClusterEvent) {
        let violations = self.state().cluster_checker.observe(&event);
        for violation in violations {
            tracing::error!(node, kind = ?violation.kind, detail = %violation.detail, "invariant violated");
            let name = serde_json::to_value(violation.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", violation.kind));
            let fields = [("invariant", name), ("detail", violation.detail.clone())];
            self.event(node, "invariant-violated", &fields);
            self.state().violations.push(violation);
        }
    }
}

/// Simulated nanoseconds since the start of the run.
pub fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
}

pub fn now_duration() -> Duration {
    madsim::time::TimeHandle::current().elapsed()
}

/// Each role gets its own /24: brokers 10.0.0.x, producers 10.0.1.x, consumers 10.0.2.x,
/// controllers 10.0.3.x.
pub fn node_ip(role: Role, index: u32) -> IpAddr {
    let subnet = match role {
        Role::Broker => 0,
        Role::Producer => 1,
        Role::Consumer => 2,
        Role::Controller => 3,
    };
    assert!(index < 250, "node index {index} out of the /24");
    IpAddr::V4(Ipv4Addr::new(10, 0, subnet, index as u8 + 1))
}

pub fn node_name(role: Role, index: u32) -> String {
    format!("{}-{}", role.name(), index)
}

std::thread_local! {
    /// madsim node id -> node name, for log lines (each seed runs on its own thread).
    static NODE_NAMES: std::cell::RefCell<BTreeMap<String, String>> =
        const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Records a node's name for log lines on this (seed) thread.
pub fn register_node_name(id: NodeId, name: &str) {
    NODE_NAMES.with(|names| names.borrow_mut().insert(id.to_string(), name.to_string()));
}

/// The name of the node the current task runs on ("runner" for the supervisor).
pub fn current_node_name() -> String {
    if madsim::runtime::Handle::try_current().is_err() {
        return "-".to_string();
    }
    let id = madsim::plugin::node().to_string();
    NODE_NAMES
        .with(|names| names.borrow().get(&id).cloned())
        .unwrap_or_else(|| "runner".to_string())
}

/// A shared handle to the world for node tasks.
pub type WorldRef = Arc<World>;

/// The node name behind a simulated address (see `node_ip`).
pub fn name_of_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [_, _, subnet, host] = v4.octets();
            let role = match subnet {
                0 => Role::Broker,
                1 => Role::Producer,
                2 => Role::Consumer,
                _ => Role::Controller,
            };
            node_name(role, u32::from(host.saturating_sub(1)))
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// Topics whose logs the cleaner compacts: the scenario's compacted topics, and the
/// offsets topic in subscribe mode.
fn compacted_topics(scenario: &crate::scenario::Scenario) -> Vec<String> {
    let mut topics: Vec<String> = scenario
        .topics
        .iter()
        .filter(|t| t.cleanup == crate::scenario::CleanupSetting::Compact)
        .map(|t| t.name.clone())
        .collect();
    if scenario.coordinator_partition().is_some() {
        topics.push(kafkasim::group::OFFSETS_TOPIC.to_string());
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::NodeClock;

    #[test]
    fn a_skewed_clock_jumps_drifts_and_never_goes_back() {
        let mut clock = NodeClock::default();
        assert_eq!(clock.ahead_ns(5_000), 0);
        clock.skew(1_000_000_000, 2_000, 100_000); // 2 s ahead, 10% fast from t = 1 s
        assert_eq!(clock.ahead_ns(1_000_000_000), 2_000_000_000);
        assert_eq!(clock.ahead_ns(2_000_000_000), 2_100_000_000);
        clock.settle(3_000_000_000);
        assert_eq!(clock.ahead_ns(3_000_000_000), 2_200_000_000, "the gain is kept");
        assert_eq!(clock.ahead_ns(9_000_000_000), 2_200_000_000, "normal rate again");
        let mut last = 0;
        for now in (0..10_000_000_000u64).step_by(250_000_000) {
            let reading = now + clock.ahead_ns(now);
            assert!(reading >= last, "clock went back at {now}");
            last = reading;
        }
    }
}
