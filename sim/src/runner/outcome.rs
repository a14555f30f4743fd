//! What one run produces: the verdict and its exit code, the judgement against the
//! scenario's expectation, the trace hash, the history, the node event log and figures.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The verdict of one run, with DESIGN.md's exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No anomaly, and the healed cluster converged.
    Pass,
    /// The checker found at least one anomaly (expected under the config or not).
    Safety,
    /// The healed cluster did not converge in the quiet phase.
    Liveness,
    /// Two executions of the same seed differed.
    NonDeterminism,
    /// A panic in a node or the harness.
    Crash,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Safety => 1,
            Verdict::Liveness => 3,
            Verdict::NonDeterminism => 4,
            Verdict::Crash => 5,
        }
    }
}

/// Exit code for usage and scenario errors.
pub const EXIT_USAGE: i32 = 2;

/// One entry of the node event log: a state change inside the cluster or a fault injected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Simulated nanoseconds since the start of the run.
    pub time_ns: u64,
    /// The node name ("broker-0", "producer-1", "nemesis", ...).
    pub node: String,
    /// What happened, kebab-case ("leader-elected", "truncated", "fault-crash", ...).
    pub kind: String,
    pub fields: BTreeMap<String, String>,
}

/// How the run compares with what the scenario expects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// The run is consistent with the expectation (nothing forbidden appeared).
    pub met: bool,
    /// Anomaly names found that the scenario's `must_find` lists.
    pub found_expected: Vec<String>,
    /// Anomaly names found that are allowed (may_show, or Kafka does not promise their
    /// absence under this config), with the reason.
    pub allowed: Vec<(String, String)>,
    /// Anomaly names found that nothing allows: bugs.
    pub forbidden: Vec<String>,
    /// Human-readable reasons for a liveness failure or crash.
    pub problems: Vec<String>,
}

/// Figures for reports and the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    pub simulated_secs: f64,
    pub wall_secs: f64,
    pub ops: u64,
    pub records_sent: u64,
    pub records_acked: u64,
    pub records_polled: u64,
    /// Frames delivered between nodes.
    pub messages: u64,
    pub faults_injected: u64,
    pub crashes: u64,
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub scenario: String,
    pub variant: Option<String>,
    pub seed: u64,
    /// The build identity: crate version and the git commit when known.
    pub build: String,
    pub verdict: Verdict,
    pub judgement: Judgement,
    pub trace_hash: u64,
    /// The client history, one JSON op per line (history.jsonl).
    pub history_jsonl: String,
    /// The node event log.
    pub events: Vec<Event>,
    /// The checker's report, serialized (results.json embeds it).
    pub check_report: serde_json::Value,
    pub stats: RunStats,
    /// The coverage marks the run reached, with counts.
    pub marks: crate::coverage::Tally,
    /// A swarm scenario's drawn point (`scenario::swarm`), None for a plain scenario.
    pub swarm: Option<crate::scenario::swarm::Point>,
    /// Every fault the nemesis injected, as scripted steps (`shrink` starts from these).
    pub realized_faults: Vec<crate::scenario::FaultStep>,
}

impl RunOutcome {
    /// A run that has produced nothing yet: verdict Crash until the judge says otherwise.
    pub fn started(scenario: &str, variant: Option<&str>, seed: u64, build: String) -> Self {
        RunOutcome {
            scenario: scenario.to_string(),
            variant: variant.map(str::to_string),
            seed,
            build,
            verdict: Verdict::Crash,
            judgement: Judgement::default(),
            trace_hash: 0,
            history_jsonl: String::new(),
            events: Vec::new(),
            check_report: serde_json::Value::Null,
            stats: RunStats::default(),
            marks: crate::coverage::Tally::new(),
            swarm: None,
            realized_faults: Vec::new(),
        }
    }
}
