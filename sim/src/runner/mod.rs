//! The runner: one (scenario, seed) on a fresh OS thread in its own madsim runtime, through
//! the phases setup, faulty, heal, quiet, verdict.

pub mod outcome;

pub use outcome::*;

use crate::scenario::Scenario;

/// Runs one seed of a scenario to its outcome. Never panics: a panic inside the simulation
/// becomes a `Verdict::Crash` outcome.
pub fn run_seed(scenario: &Scenario, variant: Option<&str>, seed: u64) -> RunOutcome {
    // Placeholder until the world lands: the CLI and report code are built against this.
    RunOutcome {
        scenario: scenario.name.clone(),
        variant: variant.map(str::to_string),
        seed,
        build: env!("CARGO_PKG_VERSION").to_string(),
        verdict: Verdict::Crash,
        judgement: Judgement {
            problems: vec!["runner not implemented yet".to_string()],
            ..Judgement::default()
        },
        trace_hash: 0,
        history_jsonl: String::new(),
        events: Vec::new(),
        check_report: serde_json::Value::Null,
        stats: RunStats::default(),
    }
}
