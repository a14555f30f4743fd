//! Workload steps: scripted changes to what the clients do, at chosen moments of the faulty
//! phase, written flat as `[[workload_steps]]` tables (`at_s`, `kind`, then the kind's own
//! fields): a producer's burst of writes, a producer pausing, an assign-mode consumer's seek.
//! The nemesis decides what the system suffers; these decide what it is asked to do while it
//! suffers it. Owns the shapes and their rules; the world carries them out (see
//! `world::workload`).

use super::model::{ConsumerMode, Scenario};
use super::validate::{target_problem, Problem};
use super::FieldPath;
use serde::{Deserialize, Serialize};

/// The most send ops per second a burst may ask of one producer.
pub const BURST_OPS_MAX: u32 = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadStep {
    /// Seconds into the faulty phase.
    pub at_s: f64,
    #[serde(flatten)]
    pub action: WorkloadAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WorkloadAction {
    Burst(Burst),
    PauseProducer(PauseProducer),
    Seek(Seek),
}

/// `producer` sends `ops_per_sec` send ops a second for `duration_s`, then its usual rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub producer: String,
    pub ops_per_sec: u32,
    pub duration_s: f64,
}

/// `producer` starts no send op for `duration_s` (those in flight finish).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseProducer {
    pub producer: String,
    pub duration_s: f64,
}

/// `consumer` (assign mode) moves its position on `topic`'s `partition` to `offset`; the
/// history records the seek, so the checker knows the move was asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seek {
    pub consumer: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

impl WorkloadAction {
    /// How long it lasts (zero: done at once).
    pub fn duration_s(&self) -> f64 {
        match self {
            WorkloadAction::Burst(burst) => burst.duration_s,
            WorkloadAction::PauseProducer(pause) => pause.duration_s,
            WorkloadAction::Seek(_) => 0.0,
        }
    }
}

/// The problems of the scenario's workload steps.
pub fn validate(scenario: &Scenario) -> Vec<Problem> {
    let mut problems = Vec::new();
    let faulty_s = scenario.phases.faulty_s as f64;
    for (i, step) in scenario.workload_steps.iter().enumerate() {
        let field = |name: &str| FieldPath::root().key("workload_steps").index(i).key(name);
        let mut problem = |name: &str, message: String| {
            problems.push(Problem { field: field(name), message });
        };
        if !(step.at_s.is_finite() && step.at_s >= 0.0 && step.at_s <= faulty_s) {
            problem(
                "at_s",
                format!("{} is outside the faulty phase (0..={faulty_s} s)", step.at_s),
            );
        }
        let duration = step.action.duration_s();
        if !(duration.is_finite() && duration >= 0.0) || (duration == 0.0 && !is_seek(step)) {
            problem("duration_s", format!("{duration} must be greater than 0"));
        }
        match &step.action {
            WorkloadAction::Burst(burst) => {
                client_problem(scenario, "producer-", &burst.producer, &mut problem);
                if !(1..=BURST_OPS_MAX).contains(&burst.ops_per_sec) {
                    let message = format!("{} is outside 1..={BURST_OPS_MAX}", burst.ops_per_sec);
                    problem("ops_per_sec", message);
                }
            }
            WorkloadAction::PauseProducer(pause) => {
                client_problem(scenario, "producer-", &pause.producer, &mut problem);
            }
            WorkloadAction::Seek(seek) => seek_problems(scenario, seek, &mut problem),
        }
    }
    problems
}

fn is_seek(step: &WorkloadStep) -> bool {
    matches!(step.action, WorkloadAction::Seek(_))
}

/// `name` must be one client of the kind `prefix` names (no roles: a step acts on one).
fn client_problem(
    scenario: &Scenario,
    prefix: &str,
    name: &str,
    problem: &mut impl FnMut(&str, String),
) {
    let field = prefix.trim_end_matches('-');
    if !name.starts_with(prefix) {
        return problem(field, format!("`{name}` is not a {field} name ({prefix}N)"));
    }
    if let Some(message) = target_problem(scenario, name) {
        problem(field, message);
    }
}

fn seek_problems(scenario: &Scenario, seek: &Seek, problem: &mut impl FnMut(&str, String)) {
    client_problem(scenario, "consumer-", &seek.consumer, problem);
    if scenario.consumer.mode != ConsumerMode::Assign {
        problem("kind", "a `seek` needs consumers in assign mode".to_string());
    }
    match scenario.topics.iter().find(|t| t.name == seek.topic) {
        None => problem("topic", format!("`{}` is not a topic of the scenario", seek.topic)),
        Some(topic) if seek.partition >= topic.partitions => problem(
            "partition",
            format!(
                "`{}` has {} partitions (0..{})",
                topic.name, topic.partitions, topic.partitions
            ),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::parse;

    const SHIPPED: &str = include_str!("../../../scenarios/workload-steps.toml");

    fn error_of(from: &str, to: &str) -> crate::scenario::ScenarioError {
        assert!(SHIPPED.contains(from), "the shipped file has `{from}`");
        parse(&SHIPPED.replacen(from, to, 1), "f").expect_err("the edit is refused")
    }

    #[test]
    fn the_shipped_steps_parse() {
        let scenario = parse(SHIPPED, "f").expect("valid");
        assert_eq!(scenario.workload_steps.len(), 4);
    }

    #[test]
    fn a_bad_step_is_refused_with_its_field() {
        let cases = [
            (
                "producer = \"producer-0\"",
                "producer = \"producer-7\"",
                "workload_steps[0].producer",
            ),
            (
                "producer = \"producer-0\"",
                "producer = \"any-producer\"",
                "workload_steps[0].producer",
            ),
            ("ops_per_sec = 400", "ops_per_sec = 0", "workload_steps[0].ops_per_sec"),
            ("partition = 0\n", "partition = 2\n", "workload_steps[2].partition"),
            (
                "topic = \"events\"\npartition = 0",
                "topic = \"other\"\npartition = 0",
                "workload_steps[2].topic",
            ),
            ("mode = \"assign\"", "mode = \"subscribe\"", "workload_steps[2].kind"),
            ("at_s = 22.0", "at_s = 99.0", "workload_steps[3].at_s"),
        ];
        for (from, to, field) in cases {
            let error = error_of(from, to);
            assert_eq!(error.field.as_deref(), Some(field), "{to}: {error}");
        }
        let error = error_of("ops_per_sec = 400", "ops_per_sec = 400\nfactor = 2");
        assert!(error.to_string().contains("factor"), "{error}");
        assert!(error.line.is_some(), "{error}");
    }
}
