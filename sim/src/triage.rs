//! Triage: what kind of failure a run is, so a sweep can group a thousand failing seeds into
//! the few bugs behind them. A run's signature is its verdict, the anomalies nothing allowed,
//! the kinds of problem the judge wrote (numbers left out, so runs differing only in counts
//! or times agree), and the fault kinds active when the first forbidden anomaly became
//! visible (its latest op), or, with no timed anomaly, every fault kind the run injected.
//! Pure: reads a finished outcome, writes nothing.

use crate::report::verdict_name;
use crate::runner::{Event, RunOutcome};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Problem categories keep at most this many characters.
const PROBLEM_CHARS_MAX: usize = 80;

/// What kind of failure a run is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Signature {
    pub verdict: String,
    /// Forbidden anomaly names, sorted.
    pub anomalies: Vec<String>,
    /// The judge's problems with digits folded to `N`, up to their first colon.
    pub problems: Vec<String>,
    /// Fault kinds active at the first forbidden anomaly (or injected at all), sorted.
    pub faults: Vec<String>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[String]| match items.is_empty() {
            true => "-".to_string(),
            false => items.join(","),
        };
        write!(
            f,
            "{} | anomalies {} | problems {} | faults {}",
            self.verdict,
            list(&self.anomalies),
            list(&self.problems),
            list(&self.faults)
        )
    }
}

/// The signature of a finished run.
pub fn signature(outcome: &RunOutcome) -> Signature {
    let mut anomalies = outcome.judgement.forbidden.clone();
    anomalies.sort();
    anomalies.dedup();
    let problems: BTreeSet<String> =
        outcome.judgement.problems.iter().map(|p| problem_category(p)).collect();
    let faults = match first_forbidden_ns(outcome) {
        Some(at_ns) => active_faults(&outcome.events, at_ns),
        None => injected_faults(&outcome.events),
    };
    Signature {
        verdict: verdict_name(outcome.verdict),
        anomalies,
        problems: problems.into_iter().collect(),
        faults: faults.into_iter().collect(),
    }
}

/// A problem's kind: the text before its first colon, digits folded to `N`.
pub fn problem_category(problem: &str) -> String {
    let head = problem.split(':').next().unwrap_or_default().trim();
    let mut out = String::new();
    let mut in_number = false;
    for c in head.chars().take(PROBLEM_CHARS_MAX) {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// The simulated time at which the earliest forbidden anomaly of the check report became
/// visible.
fn first_forbidden_ns(outcome: &RunOutcome) -> Option<u64> {
    let forbidden: BTreeSet<&str> =
        outcome.judgement.forbidden.iter().map(String::as_str).collect();
    first_anomaly_ns(&outcome.check_report, &outcome.history_jsonl, |name| forbidden.contains(name))
}

/// The simulated time at which the earliest anomaly (of the kinds `wanted` accepts) became
/// visible: per anomaly, its own `time` if it has one, else the latest time among its ops.
pub fn first_anomaly_ns(
    check_report: &serde_json::Value,
    history_jsonl: &str,
    wanted: impl Fn(&str) -> bool,
) -> Option<u64> {
    let anomalies = check_report.get("anomalies")?.as_object()?;
    let times = op_times(history_jsonl);
    anomalies
        .iter()
        .filter(|(name, _)| wanted(name))
        .flat_map(|(_, entries)| entries.as_array().into_iter().flatten())
        .filter_map(|entry| {
            if let Some(time) = entry.get("time").and_then(|t| t.as_u64()) {
                return Some(time);
            }
            let ops = entry.get("ops")?.as_array()?;
            ops.iter().filter_map(|op| times.get(&op.as_u64()?).copied()).max()
        })
        .min()
}

/// Op index -> simulated time, from the history's JSON lines (lines that do not parse are
/// skipped: triage never fails a sweep).
fn op_times(history_jsonl: &str) -> BTreeMap<u64, u64> {
    history_jsonl
        .lines()
        .filter_map(|line| {
            let op: serde_json::Value = serde_json::from_str(line).ok()?;
            Some((op.get("index")?.as_u64()?, op.get("time")?.as_u64()?))
        })
        .collect()
}

/// Fault kinds injected (`fault-<kind>` events on a node) and not healed (`heal-<kind>` on
/// that node, or the nemesis's final `healed`) by `at_ns`.
pub fn active_faults(events: &[Event], at_ns: u64) -> BTreeSet<String> {
    let mut active: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for event in events.iter().take_while(|e| e.time_ns <= at_ns) {
        if event.kind == "healed" {
            active.clear();
        } else if let Some(kind) = fault_kind(event) {
            *active.entry((event.node.as_str(), kind)).or_insert(0) += 1;
        } else if let Some(kind) = event.kind.strip_prefix("heal-") {
            if let Some(count) = active.get_mut(&(event.node.as_str(), kind)) {
                *count = count.saturating_sub(1);
            }
        }
    }
    active.into_iter().filter(|(_, count)| *count > 0).map(|((_, kind), _)| kind.into()).collect()
}

fn injected_faults(events: &[Event]) -> BTreeSet<String> {
    events.iter().filter_map(fault_kind).map(str::to_string).collect()
}

/// The fault kind of an injection event (`fault-skipped` is the nemesis declining one).
fn fault_kind(event: &Event) -> Option<&str> {
    event.kind.strip_prefix("fault-").filter(|kind| *kind != "skipped")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_ns: u64, node: &str, kind: &str) -> Event {
        Event { time_ns, node: node.into(), kind: kind.into(), fields: BTreeMap::new() }
    }

    #[test]
    fn problems_fold_numbers_and_stop_at_the_colon() {
        assert_eq!(
            problem_category("not converged 20.5 s after the heal: broker-2 is fenced"),
            "not converged N s after the heal"
        );
        assert_eq!(problem_category("3 send ops never completed"), "N send ops never completed");
    }

    #[test]
    fn a_fault_is_active_from_its_injection_to_its_heal_on_that_node() {
        let events = [
            event(10, "broker-0", "fault-pause"),
            event(20, "broker-1", "fault-crash"),
            event(30, "broker-0", "heal-pause"),
            event(40, "nemesis", "fault-skipped"),
            event(50, "nemesis", "healed"),
        ];
        let at = |t| active_faults(&events, t).into_iter().collect::<Vec<_>>();
        assert_eq!(at(5), Vec::<String>::new());
        assert_eq!(at(25), ["crash", "pause"]);
        assert_eq!(at(35), ["crash"]);
        assert_eq!(at(55), Vec::<String>::new());
        assert_eq!(injected_faults(&events).into_iter().collect::<Vec<_>>(), ["crash", "pause"]);
    }
}
