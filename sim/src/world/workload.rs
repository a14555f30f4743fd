//! Carries out the scenario's workload steps (`scenario::workload_steps`): a task started
//! with the faulty phase applies each at its time and undoes it after its duration; the
//! clients ask here before each op. Only that task writes; producers and consumers read.

use super::{Phase, WorldRef};
use crate::scenario::workload_steps::WorkloadAction;
use kafkasim::types::{Offset, TopicPartition};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
struct Control {
    /// Per producer: the send-op rates of its live bursts (the last started applies).
    bursts: BTreeMap<String, Vec<u32>>,
    /// Per producer: how many live pauses hold it.
    paused: BTreeMap<String, u32>,
    /// Per consumer: seeks not carried out yet, in order.
    seeks: BTreeMap<String, Vec<(TopicPartition, Offset)>>,
}

/// What the live workload steps ask of each client.
#[derive(Debug, Default)]
pub struct WorkloadControl {
    control: Mutex<Control>,
}

impl WorkloadControl {
    /// Milliseconds between `producer`'s send ops: its burst's rate, else `ops_per_sec`.
    pub fn send_interval_ms(&self, producer: &str, ops_per_sec: u32) -> u64 {
        let control = self.lock();
        let rate = control.bursts.get(producer).and_then(|r| r.last().copied());
        1_000 / u64::from(rate.unwrap_or(ops_per_sec).max(1))
    }

    /// Whether a pause holds `producer`.
    pub fn paused(&self, producer: &str) -> bool {
        self.lock().paused.get(producer).is_some_and(|n| *n > 0)
    }

    /// The seeks `consumer` has to carry out, oldest first.
    pub fn take_seeks(&self, consumer: &str) -> Vec<(TopicPartition, Offset)> {
        self.lock().seeks.remove(consumer).unwrap_or_default()
    }

    fn start(&self, action: &WorkloadAction) {
        let mut control = self.lock();
        match action {
            WorkloadAction::Burst(b) => {
                control.bursts.entry(b.producer.clone()).or_default().push(b.ops_per_sec);
            }
            WorkloadAction::PauseProducer(p) => {
                *control.paused.entry(p.producer.clone()).or_default() += 1;
            }
            WorkloadAction::Seek(s) => {
                let tp = TopicPartition::new(s.topic.clone(), s.partition);
                control.seeks.entry(s.consumer.clone()).or_default().push((tp, Offset(s.offset)));
            }
        }
    }

    fn end(&self, action: &WorkloadAction) {
        let mut control = self.lock();
        match action {
            WorkloadAction::Burst(b) => {
                let rates = control.bursts.entry(b.producer.clone()).or_default();
                if let Some(at) = rates.iter().position(|r| *r == b.ops_per_sec) {
                    rates.remove(at);
                }
            }
            WorkloadAction::PauseProducer(p) => {
                let held = control.paused.entry(p.producer.clone()).or_default();
                *held = held.saturating_sub(1);
            }
            WorkloadAction::Seek(_) => {}
        }
    }

    /// Ends every step (the heal: the quiet phase runs the usual workload).
    fn clear(&self) {
        let mut control = self.lock();
        control.bursts.clear();
        control.paused.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().expect("workload control lock is never poisoned: a panic ends the run")
    }
}

/// Applies the scenario's steps from `faulty_start` (the time the faulty phase began) until
/// the faulty phase ends; each step logs `workload-<kind>` in the event log.
pub async fn run_steps(world: WorldRef, faulty_start: Duration) {
    let mut steps = world.scenario.workload_steps.clone();
    steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    for step in steps {
        let at = faulty_start + crate::nemesis::faults::seconds(step.at_s);
        madsim::time::sleep(at.saturating_sub(super::now_duration())).await;
        if world.phase() != Phase::Faulty {
            break;
        }
        let (kind, fields) = describe(&step.action);
        world.event("runner", &format!("workload-{kind}"), &fields);
        world.workload.start(&step.action);
        let duration = crate::nemesis::faults::seconds(step.action.duration_s());
        if !duration.is_zero() {
            // Weak across the sleep: a step ending after the run must not keep the world.
            let (world, action) = (std::sync::Arc::downgrade(&world), step.action.clone());
            madsim::task::spawn(async move {
                madsim::time::sleep(duration).await;
                if let Some(world) = world.upgrade() {
                    world.workload.end(&action);
                }
            });
        }
    }
}

/// The heal ends every live step.
pub fn heal(world: &WorldRef) {
    world.workload.clear();
}

fn describe(action: &WorkloadAction) -> (&'static str, Vec<(&'static str, String)>) {
    match action {
        WorkloadAction::Burst(b) => (
            "burst",
            vec![("producer", b.producer.clone()), ("ops_per_sec", b.ops_per_sec.to_string())],
        ),
        WorkloadAction::PauseProducer(p) => {
            ("pause-producer", vec![("producer", p.producer.clone())])
        }
        WorkloadAction::Seek(s) => (
            "seek",
            vec![
                ("consumer", s.consumer.clone()),
                ("tp", format!("{}-{}", s.topic, s.partition)),
                ("offset", s.offset.to_string()),
            ],
        ),
    }
}
