//! Run reports: what one run leaves on disk under `reports/<scenario>[-<variant>]/<seed>/`
//! so a person can read a failure without rerunning it. history.jsonl and events.jsonl are
//! the raw record; results.json the machine-readable verdict; summary.md the human one.
//! Deterministic: maps are ordered and nothing but `stats.wall_secs` depends on the wall
//! clock. Owns nothing about how a run is judged (that is the runner and the checker).

use crate::runner::{Event, Judgement, RunOutcome, RunStats, Verdict};
use crate::scenario::Scenario;
use anyhow::Context;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many node events summary.md shows before the first anomaly.
const SUMMARY_EVENTS_MAX: usize = 40;
/// Node events after the first anomaly's time that summary.md shows.
const SUMMARY_EVENTS_AFTER_MAX: usize = 10;
/// How many explanation lines summary.md shows per anomaly.
const SUMMARY_EXPLANATIONS_MAX: usize = 10;

/// results.json.
#[derive(Debug, Serialize)]
struct Results<'a> {
    scenario: &'a str,
    variant: Option<&'a str>,
    seed: u64,
    build: &'a str,
    verdict: Verdict,
    exit_code: i32,
    judgement: &'a Judgement,
    trace_hash: String,
    reproduce: &'a str,
    /// A swarm scenario's drawn point, first among the settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    swarm: Option<serde_json::Value>,
    stats: &'a RunStats,
    /// The coverage marks reached: name -> count and where first.
    marks: &'a crate::coverage::Tally,
    check_report: &'a serde_json::Value,
}

/// One anomaly of a check report, as summary.md and the CLI show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalySummary {
    pub name: String,
    pub explanations: Vec<String>,
}

/// The directory of one run's report: `<base>/<scenario>[-<variant>]/<seed>`.
pub fn report_dir(base: &Path, scenario: &str, variant: Option<&str>, seed: u64) -> PathBuf {
    scenario_report_dir(base, scenario, variant).join(seed.to_string())
}

/// The directory of a scenario's reports (and its sweeps' sweep.json):
/// `<base>/<scenario>[-<variant>]`.
pub fn scenario_report_dir(base: &Path, scenario: &str, variant: Option<&str>) -> PathBuf {
    match variant {
        Some(variant) => base.join(format!("{scenario}-{variant}")),
        None => base.join(scenario),
    }
}

/// The command that replays a run of the scenario file at `path` (None: the embedded
/// default scenario).
pub fn reproduce_command(path: Option<&Path>, seed: u64, variant: Option<&str>) -> String {
    let mut command = String::from("kafkasim run");
    if let Some(path) = path {
        let _ = write!(command, " {}", shell_word(&path.display().to_string()));
    }
    let _ = write!(command, " --seed {seed}");
    if let Some(variant) = variant {
        let _ = write!(command, " --variant {}", shell_word(variant));
    }
    command
}

/// The trace hash as reports and the CLI print it.
pub fn trace_hash_hex(trace_hash: u64) -> String {
    format!("{trace_hash:016x}")
}

/// Writes the report of `outcome` under `dir`, assuming the scenario file lives at
/// `scenarios/<name>.toml` for the reproduce command. Returns the report directory.
pub fn write_report(
    dir: &Path,
    outcome: &RunOutcome,
    scenario: &Scenario,
) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(format!("scenarios/{}.toml", scenario.name));
    let reproduce = reproduce_command(Some(&path), outcome.seed, outcome.variant.as_deref());
    write_report_with(dir, outcome, scenario, &reproduce)
}

/// Writes the report of `outcome` under `dir` with the given reproduce command.
pub fn write_report_with(
    dir: &Path,
    outcome: &RunOutcome,
    scenario: &Scenario,
    reproduce: &str,
) -> anyhow::Result<PathBuf> {
    let out = report_dir(dir, &scenario.name, outcome.variant.as_deref(), outcome.seed);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let write = |file: &str, contents: &str| {
        let path = out.join(file);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write("history.jsonl", &outcome.history_jsonl)?;
    write("events.jsonl", &events_jsonl(&outcome.events))?;
    let results = Results {
        scenario: &scenario.name,
        variant: outcome.variant.as_deref(),
        seed: outcome.seed,
        build: &outcome.build,
        verdict: outcome.verdict,
        exit_code: outcome.verdict.exit_code(),
        judgement: &outcome.judgement,
        trace_hash: trace_hash_hex(outcome.trace_hash),
        reproduce,
        swarm: outcome.swarm.as_ref().map(crate::scenario::swarm::point_json),
        stats: &outcome.stats,
        marks: &outcome.marks,
        check_report: &outcome.check_report,
    };
    let mut json = serde_json::to_string_pretty(&results).context("serializing results.json")?;
    json.push('\n');
    write("results.json", &json)?;
    write("summary.md", &summary_markdown(outcome, scenario, reproduce))?;
    write("report.html", &crate::report_html::render(outcome, scenario, reproduce))?;
    Ok(out)
}

/// The node event log, one JSON object per line.
pub fn events_jsonl(events: &[Event]) -> String {
    let mut out = String::new();
    for event in events {
        let line = serde_json::to_string(event).expect("an Event always serializes");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The anomalies of a check report. The checker's schema is read loosely: `anomalies` may
/// be an object keyed by anomaly name or an array of objects with a `name` (or `kind`,
/// `type`); each explanation is a string, an object's `explanation`/`message`/
/// `description`, or the compact JSON of the case.
pub fn anomalies_of(check_report: &serde_json::Value) -> Vec<AnomalySummary> {
    use serde_json::Value;
    let Some(anomalies) = check_report.get("anomalies") else { return Vec::new() };
    let cases = |value: &Value| -> Vec<String> {
        match value {
            Value::Array(items) => items.iter().map(explanation).collect(),
            Value::Null => Vec::new(),
            other => vec![explanation(other)],
        }
    };
    match anomalies {
        Value::Object(map) => map
            .iter()
            .filter(|(_, value)| !matches!(value, Value::Array(items) if items.is_empty()))
            .map(|(name, value)| AnomalySummary { name: name.clone(), explanations: cases(value) })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let name = ["name", "kind", "type"]
                    .iter()
                    .find_map(|key| item.get(*key).and_then(Value::as_str))
                    .unwrap_or("anomaly")
                    .to_string();
                AnomalySummary { name, explanations: vec![explanation(item)] }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// When the first anomaly became visible (simulated nanoseconds): an anomaly's own `time`,
/// else the latest time among the ops it names.
pub fn first_anomaly_time(outcome: &RunOutcome) -> Option<u64> {
    crate::triage::first_anomaly_ns(&outcome.check_report, &outcome.history_jsonl, |_| true)
}

fn summary_markdown(outcome: &RunOutcome, scenario: &Scenario, reproduce: &str) -> String {
    let mut md = String::new();
    let variant =
        outcome.variant.as_deref().map(|v| format!(" (variant `{v}`)")).unwrap_or_default();
    let _ = writeln!(md, "# {}{variant}, seed {}\n", scenario.name, outcome.seed);
    let _ = writeln!(md, "{}\n", scenario.description);
    let _ = writeln!(md, "Reproduce: `{reproduce}`\n");
    if let Some(point) = &outcome.swarm {
        md.push_str("## Drawn configuration (swarm)\n\n");
        for line in crate::scenario::swarm::point_lines(point) {
            let _ = writeln!(md, "- `{line}`");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "- verdict: **{}** (exit {})",
        verdict_name(outcome.verdict),
        outcome.verdict.exit_code()
    );
    let _ = writeln!(md, "- expectation met: {}", if outcome.judgement.met { "yes" } else { "no" });
    let _ = writeln!(md, "- build: {}", outcome.build);
    let _ = writeln!(md, "- trace hash: `{}`\n", trace_hash_hex(outcome.trace_hash));
    md.push_str("## Judgement\n\n");
    for line in judgement_lines(&outcome.judgement) {
        let _ = writeln!(md, "- {line}");
    }
    let anomalies = anomalies_of(&outcome.check_report);
    if !anomalies.is_empty() {
        md.push_str("\n## Anomalies\n");
        for anomaly in &anomalies {
            let _ = writeln!(md, "\n### {}\n", anomaly.name);
            for line in anomaly.explanations.iter().take(SUMMARY_EXPLANATIONS_MAX) {
                let _ = writeln!(md, "- {line}");
            }
            if anomaly.explanations.len() > SUMMARY_EXPLANATIONS_MAX {
                let _ = writeln!(
                    md,
                    "- ... {} more in results.json",
                    anomaly.explanations.len() - SUMMARY_EXPLANATIONS_MAX
                );
            }
        }
    }
    md.push_str("\n## Figures\n\n");
    for line in figure_lines(&outcome.stats) {
        let _ = writeln!(md, "- {line}");
    }
    for (group, lines) in group_lines(&outcome.check_report) {
        let _ = writeln!(md, "\n### Consumer group `{group}`\n");
        for line in lines {
            let _ = writeln!(md, "- {line}");
        }
    }
    let _ = writeln!(md, "\n## Coverage marks reached ({})\n", outcome.marks.len());
    for line in mark_lines(&outcome.marks) {
        let _ = writeln!(md, "- {line}");
    }
    let cutoff = first_anomaly_time(outcome);
    let split =
        cutoff.map_or(outcome.events.len(), |t| outcome.events.partition_point(|e| e.time_ns <= t));
    let before = &outcome.events[split.saturating_sub(SUMMARY_EVENTS_MAX)..split];
    let after_end = split.saturating_add(SUMMARY_EVENTS_AFTER_MAX).min(outcome.events.len());
    let after = match cutoff {
        Some(_) => &outcome.events[split..after_end],
        None => &[],
    };
    match cutoff {
        Some(time) => {
            let _ = writeln!(
                md,
                "\n## Node events around the first anomaly ({}): {} before, {} after\n",
                format_sim_time(time),
                before.len(),
                after.len()
            );
        }
        None => {
            let _ = writeln!(md, "\n## Last {} node events\n", before.len());
        }
    }
    if !before.is_empty() || !after.is_empty() {
        md.push_str("```\n");
        for event in before {
            let _ = writeln!(md, "{}", event_line(event));
        }
        if let Some(time) = cutoff.filter(|_| !after.is_empty()) {
            let _ = writeln!(md, "---- {} first anomaly visible ----", format_sim_time(time));
        }
        for event in after {
            let _ = writeln!(md, "{}", event_line(event));
        }
        md.push_str("```\n");
    }
    md
}

/// The judgement as lines: expected, allowed (with reasons), forbidden, problems.
pub fn judgement_lines(judgement: &Judgement) -> Vec<String> {
    let list =
        |names: &[String]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
    let mut lines = vec![format!("expected anomalies found: {}", list(&judgement.found_expected))];
    if judgement.allowed.is_empty() {
        lines.push("allowed anomalies: none".to_string());
    }
    for (name, reason) in &judgement.allowed {
        lines.push(format!("allowed anomaly: {name} ({reason})"));
    }
    lines.push(format!("forbidden anomalies: {}", list(&judgement.forbidden)));
    for problem in &judgement.problems {
        lines.push(format!("problem: {problem}"));
    }
    lines
}

/// The coverage marks one run reached, as lines: name, count, and where first.
pub fn mark_lines(marks: &crate::coverage::Tally) -> Vec<String> {
    if marks.is_empty() {
        return vec!["none".to_string()];
    }
    marks
        .iter()
        .map(|(mark, reach)| {
            let first = format_sim_time(reach.first_ns);
            format!("`{}` x{} (first at {first} on {})", mark.name(), reach.count, reach.first_node)
        })
        .collect()
}

/// The run's figures as lines.
pub fn figure_lines(stats: &RunStats) -> Vec<String> {
    let per_wall = |n: u64| if stats.wall_secs > 0.0 { n as f64 / stats.wall_secs } else { 0.0 };
    vec![
        format!("simulated {:.3} s in {:.3} s wall", stats.simulated_secs, stats.wall_secs),
        format!(
            "ops {}; records sent {}, acked {}, polled {}",
            stats.ops, stats.records_sent, stats.records_acked, stats.records_polled
        ),
        format!("messages {} ({:.0}/s wall)", stats.messages, per_wall(stats.messages)),
        format!("faults injected {}, crashes {}", stats.faults_injected, stats.crashes),
    ]
}

/// Per consumer group, its figures as lines (from the check report's `groups`, see
/// `check::groups::GroupFigures`); empty when the run had no group.
pub fn group_lines(check_report: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let Some(groups) = check_report.get("groups").cloned() else { return Vec::new() };
    let Ok(groups) = serde_json::from_value::<
        std::collections::BTreeMap<String, crate::check::groups::GroupFigures>,
    >(groups) else {
        return Vec::new();
    };
    groups
        .into_iter()
        .map(|(id, g)| {
            let removed = if g.members_removed.is_empty() {
                "none".to_string()
            } else {
                let by_reason: Vec<String> =
                    g.members_removed.iter().map(|(why, n)| format!("{n} {why}")).collect();
                by_reason.join(", ")
            };
            let mut lines = vec![
                format!("generations {}, rebalances {}", g.generations, g.rebalances),
                format!("members removed: {removed}"),
                format!(
                    "commits ok {}, fail {}, info {}; accepted by the coordinator {} ({} stale)",
                    g.commits_ok,
                    g.commits_fail,
                    g.commits_info,
                    g.commits_accepted,
                    g.stale_commits_accepted
                ),
                format!(
                    "records processed more than once {} ({} redeliveries; at-least-once)",
                    g.duplicates_processed, g.redeliveries
                ),
            ];
            if !g.final_lag.is_empty() {
                let total: u64 = g.final_lag.values().map(|l| l.lag).sum();
                let keys: Vec<String> = g
                    .final_lag
                    .iter()
                    .filter(|(_, l)| l.lag > 0)
                    .map(|(key, l)| format!("{key} {}", l.lag))
                    .collect();
                let detail =
                    if keys.is_empty() { String::new() } else { format!(" ({})", keys.join(", ")) };
                lines.push(format!("final lag {total}{detail}"));
            }
            (id, lines)
        })
        .collect()
}

/// The kebab-case name of a verdict.
pub fn verdict_name(verdict: Verdict) -> String {
    serde_json::to_value(verdict)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .expect("Verdict serializes to a kebab-case string")
}

fn event_line(event: &Event) -> String {
    let mut line = format!("{} {} {}", format_sim_time(event.time_ns), event.node, event.kind);
    for (key, value) in &event.fields {
        let _ = write!(line, " {key}={value}");
    }
    line
}

pub fn format_sim_time(time_ns: u64) -> String {
    format!("{}.{:06}s", time_ns / 1_000_000_000, (time_ns % 1_000_000_000) / 1_000)
}

fn explanation(value: &serde_json::Value) -> String {
    if let Some(text) = value.as_str() {
        return text.to_string();
    }
    ["explanation", "message", "description"]
        .iter()
        .find_map(|key| value.get(*key).and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| value.to_string())
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:+,@".contains(&b));
    match plain {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', "'\\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn outcome() -> RunOutcome {
        let event = |time_ns, kind: &str| Event {
            time_ns,
            node: "broker-0".into(),
            kind: kind.into(),
            fields: BTreeMap::from([("epoch".to_string(), "3".to_string())]),
        };
        RunOutcome {
            scenario: "quickstart".into(),
            variant: Some("acks1".into()),
            seed: 7,
            build: "test".into(),
            verdict: Verdict::Safety,
            judgement: Judgement {
                met: false,
                forbidden: vec!["lost-write".into()],
                ..Judgement::default()
            },
            trace_hash: 0xabc,
            history_jsonl: "{\"index\":0}\n".into(),
            events: vec![event(1_000, "leader-elected"), event(5_000_000_000, "truncated")],
            check_report: serde_json::json!({
                "anomalies": {"lost-write": [{"explanation": "offset 4 of events-0 acked, never read", "time": 2_000_000}]},
                "groups": {"g": crate::check::groups::GroupFigures {
                    generations: 3,
                    rebalances: 2,
                    final_lag: BTreeMap::from([("events-0".to_string(), crate::check::groups::Lag {
                        committed: Some(4), end: 6, lag: 2,
                    })]),
                    ..Default::default()
                }},
            }),
            stats: RunStats::default(),
            marks: {
                let mut marks = crate::coverage::Tally::new();
                crate::coverage::reach(&mut marks, crate::coverage::Mark::CleanElection, "c", 9);
                marks
            },
            swarm: None,
            realized_faults: Vec::new(),
        }
    }

    #[test]
    fn reproduce_commands() {
        assert_eq!(reproduce_command(None, 3, None), "kafkasim run --seed 3");
        assert_eq!(
            reproduce_command(Some(Path::new("scenarios/a b.toml")), 3, Some("v")),
            "kafkasim run 'scenarios/a b.toml' --seed 3 --variant v"
        );
    }

    #[test]
    fn anomalies_are_read_from_either_shape() {
        let summaries = anomalies_of(&outcome().check_report);
        assert_eq!(summaries[0].name, "lost-write");
        assert_eq!(summaries[0].explanations, vec!["offset 4 of events-0 acked, never read"]);
        let array = serde_json::json!({"anomalies": [{"kind": "duplicate", "message": "twice"}]});
        assert_eq!(
            anomalies_of(&array),
            vec![AnomalySummary { name: "duplicate".into(), explanations: vec!["twice".into()] }]
        );
        assert_eq!(first_anomaly_time(&outcome()), Some(2_000_000));
    }

    #[test]
    fn writes_a_deterministic_report() {
        let base =
            std::env::temp_dir().join(format!("kafkasim-report-test-{}", std::process::id()));
        let scenario = crate::scenario::parse(include_str!("../../scenarios/quickstart.toml"), "q")
            .expect("valid");
        let dir = write_report(&base, &outcome(), &scenario).expect("written");
        assert_eq!(dir, base.join("quickstart-acks1").join("7"));
        let first = std::fs::read_to_string(dir.join("results.json")).expect("results");
        write_report(&base, &outcome(), &scenario).expect("rewritten");
        assert_eq!(first, std::fs::read_to_string(dir.join("results.json")).expect("results"));
        assert!(first.contains("\"trace_hash\": \"0000000000000abc\""), "{first}");
        let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary");
        assert!(
            summary.contains("kafkasim run scenarios/quickstart.toml --seed 7 --variant acks1"),
            "{summary}"
        );
        // Events before the first anomaly (2 ms), the marker, then the ones after it.
        let marker = summary.find("first anomaly visible").expect("the marker line");
        assert!(summary[..marker].contains("leader-elected"), "{summary}");
        assert!(summary[marker..].contains("truncated"), "{summary}");
        assert!(summary.contains("### Consumer group `g`"), "{summary}");
        assert!(summary.contains("- generations 3, rebalances 2"), "{summary}");
        assert!(summary.contains("- final lag 2 (events-0 2)"), "{summary}");
        assert!(first.contains("\"rebalances\": 2"), "{first}");
        assert!(first.contains("\"clean-election\": {"), "{first}");
        assert!(summary.contains("## Coverage marks reached (1)"), "{summary}");
        assert!(summary.contains("`clean-election` x1 (first at 0.000000s on c)"), "{summary}");
        assert_eq!(
            std::fs::read_to_string(dir.join("events.jsonl")).expect("events").lines().count(),
            2
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
