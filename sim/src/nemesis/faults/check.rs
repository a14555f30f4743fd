//! The checks a fault step's rule draws on: each names the step's field, so `parse` can
//! turn it into a file line. Shared by every kind; the kind decides which apply.

use crate::scenario::validate::{is_server_target, server_count, target_problem};
use crate::scenario::{FieldPath, Problem, Scenario, Target};

/// The most a slow-down factor may be.
pub const FACTOR_MAX: u32 = 10_000;
/// The most bits one bit-flips fault may flip.
pub const BIT_FLIPS_MAX: u32 = 1_000_000;

/// The checks of step `index` of the scenario's faults.
pub struct StepCheck<'a> {
    pub scenario: &'a Scenario,
    index: usize,
    problems: &'a mut Vec<Problem>,
}

impl<'a> StepCheck<'a> {
    pub fn new(scenario: &'a Scenario, index: usize, problems: &'a mut Vec<Problem>) -> Self {
        StepCheck { scenario, index, problems }
    }

    /// The path of one of the step's fields.
    pub fn field(&self, name: &str) -> FieldPath {
        FieldPath::root().key("faults").index(self.index).key(name)
    }

    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let field = self.field(field);
        self.problems.push(Problem { field, message: message.into() });
    }

    /// A duration that is finite and positive.
    pub fn duration(&mut self, seconds: f64) {
        if !(seconds.is_finite() && seconds > 0.0) {
            self.problem("duration_s", format!("{seconds} must be greater than 0"));
        }
    }

    pub fn factor(&mut self, factor: u32) {
        if !(2..=FACTOR_MAX).contains(&factor) {
            self.problem("factor", format!("{factor} is outside 2..={FACTOR_MAX}"));
        }
    }

    /// A probability in (0, 1].
    pub fn rate(&mut self, rate: f64) {
        if !(rate > 0.0 && rate <= 1.0) {
            self.problem("rate", format!("{rate} is outside (0, 1]"));
        }
    }

    /// A node name or role this scenario can resolve, parsed; None after a problem.
    pub fn node(&mut self, field: &str, text: &str) -> Option<Target> {
        match target_problem(self.scenario, text) {
            Some(message) => {
                self.problem(field, message);
                None
            }
            None => Target::parse(text).ok(),
        }
    }

    /// The target, which must resolve to a broker or a controller (splits and bridges).
    pub fn server_target(&mut self, text: &str, kind: &str) {
        if let Some(target) = self.node("target", text) {
            if !is_server_target(&target) {
                let message = format!("`{target}`: `{kind}` takes a broker or a controller");
                self.problem("target", message);
            }
        }
    }

    /// At least `need` brokers and controllers, for a kind that divides them.
    pub fn servers_at_least(&mut self, need: u32, kind: &str) {
        if server_count(self.scenario) < need {
            let message = format!("`{kind}` needs at least {need} brokers and controllers");
            self.problem("target", message);
        }
    }

    /// A list of brokers and controllers (a split's minority, the nodes losing power).
    pub fn server_nodes(&mut self, nodes: &[String], kind: &str) {
        let field = self.field("nodes");
        if nodes.is_empty() {
            self.problems.push(Problem { field, message: "at least one node is needed".into() });
            return;
        }
        for (j, text) in nodes.iter().enumerate() {
            let at = field.clone().index(j);
            let message = match target_problem(self.scenario, text) {
                Some(message) => message,
                None if nodes[..j].contains(text)
                    && matches!(Target::parse(text), Ok(Target::Node(_))) =>
                {
                    format!("`{text}` is listed twice")
                }
                None if Target::parse(text).is_ok_and(|t| !is_server_target(&t)) => {
                    format!("`{text}`: `{kind}` takes brokers and controllers only")
                }
                None => continue,
            };
            self.problems.push(Problem { field: at, message });
        }
    }
}
