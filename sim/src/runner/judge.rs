//! From a finished simulation to a verdict: run the checker over the history, then judge
//! each anomaly found against the scenario (must find, may show) and against what Kafka
//! promises under the scenario's configuration and what the node event log shows (a lost
//! record is allowed only with the events that explain it, and the reuse of its offsets
//! with it). A loss Kafka allows in a scenario whose faults are meant to spare a replica is
//! a problem of the run (outside its envelope), never a pass.

use std::collections::BTreeMap;

use super::{Judgement, RunOutcome, Verdict};
use crate::check::fences;
use crate::check::groups::{add_history_figures, GroupFigures};
use crate::check::losses::{self, LossSettings};
use crate::check::promises::{allowed_violation, Acks, ConfigFacts, Judge, Ruling};
use crate::check::{check, AnomalyKind, CheckOptions, CheckReport};
use crate::history::History;
use crate::scenario::{
    AcksSetting, CommitSetting, ConsumerMode, FaultKind, FaultSpec, FlushSetting, Scenario,
    TruncationSetting,
};

/// Anomaly entries kept per kind in reports.
const ENTRIES_PER_KIND_MAX: usize = 50;

pub(super) struct Input<'a> {
    pub history: History,
    pub problems: Vec<String>,
    /// Inside-the-cluster invariant violations, judged like anomalies by their names.
    pub violations: Vec<crate::check::cluster::Violation>,
    /// The live half of the consumer-group figures, per group.
    pub groups: std::collections::BTreeMap<String, GroupFigures>,
    pub outcome: &'a mut RunOutcome,
}

/// Generations started once the faulty phase began (the group's first generations form
/// during setup).
fn rebalances_after_setup(events: &[super::outcome::Event]) -> u64 {
    let Some(start) = events.iter().find(|e| e.kind == "phase-faulty").map(|e| e.time_ns) else {
        return 0;
    };
    events.iter().filter(|e| e.kind == "generation-started" && e.time_ns >= start).count() as u64
}

pub(super) fn judge(scenario: &Scenario, input: Input<'_>) {
    let Input { history, problems, violations, mut groups, outcome } = input;
    add_history_figures(&history, &scenario.consumer.group_id, &mut groups);
    let facts = config_facts(scenario);
    let (report, rulings) = judge_history(scenario, &facts, &history, outcome);
    let judgement = &mut outcome.judgement;
    let mut by_invariant: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
        std::collections::BTreeMap::new();
    let mut invariant_allowed: std::collections::BTreeMap<String, Option<&'static str>> =
        std::collections::BTreeMap::new();
    for violation in &violations {
        let name = serde_json::to_value(violation.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", violation.kind));
        // Allowed only if every violation of the kind is expected under the config.
        let reason = allowed_violation(violation.kind, &facts);
        let kept = invariant_allowed.entry(name.clone()).or_insert(reason);
        *kept = kept.and(reason);
        let entries = by_invariant.entry(name).or_default();
        if entries.len() < ENTRIES_PER_KIND_MAX {
            entries.push(serde_json::json!({ "explanation": violation.detail }));
        }
    }
    for name in by_invariant.keys() {
        if scenario.expect.must_find.contains(name) {
            judgement.found_expected.push(name.clone());
        } else if scenario.expect.may_show.contains(name) {
            let reason = "the scenario lists it under may_show".to_string();
            judgement.allowed.push((name.clone(), reason));
        } else if let Some(Some(reason)) = invariant_allowed.get(name) {
            let reason = format!("expected under this config: {reason}");
            judgement.allowed.push((name.clone(), reason));
        } else {
            judgement.forbidden.push(name.clone());
        }
    }
    let (problems, fenced) =
        judge_fences(scenario, &outcome.events, problems, &mut outcome.judgement);
    let judgement = &mut outcome.judgement;
    judgement.problems.extend(problems);
    if let Some(max) = scenario.expect.max_rebalances {
        let rebalances = rebalances_after_setup(&outcome.events);
        if rebalances > u64::from(max) {
            judgement.problems.push(format!(
                "the group rebalanced {rebalances} times after setup (generation-started events \
                 after phase-faulty); the scenario allows {max}"
            ));
        }
    }
    // Safety means a finding: a forbidden anomaly, or one the scenario must find (a stopped
    // group is a liveness finding). Anomalies the scenario only allows are listed in the
    // judgement and leave the verdict alone, so exit 1 never means "expectation met, all
    // allowed".
    let findings = !judgement.forbidden.is_empty()
        || judgement.found_expected.iter().any(|name| name != fences::NAME);
    outcome.stats.ops = report.stats.ops;
    outcome.stats.records_acked = report.stats.acked_values;
    outcome.stats.records_polled = report.stats.records_read;
    outcome.verdict = if findings {
        Verdict::Safety
    } else if !judgement.problems.is_empty() || fenced {
        Verdict::Liveness
    } else {
        Verdict::Pass
    };
    // Allowed anomalies (may_show, or not promised away by Kafka) keep the expectation met;
    // whether a "find" scenario found what it must is judged over a sweep.
    // A "find" scenario that found its bug may also fail to converge because of it (a
    // diverged replica cannot fetch again): that is the bug's consequence, reported but
    // not held against the expectation.
    let stalled_by_the_bug = scenario.expect.verdict == crate::scenario::ExpectedVerdict::Find
        && !judgement.found_expected.is_empty();
    judgement.met =
        judgement.forbidden.is_empty() && (judgement.problems.is_empty() || stalled_by_the_bug);
    outcome.check_report = serde_json::to_value(&report).expect("check reports serialize");
    attach_rulings(&mut outcome.check_report, &rulings);
    if let Some(serde_json::Value::Object(anomalies)) = outcome.check_report.get_mut("anomalies") {
        for (name, entries) in by_invariant {
            anomalies.insert(name, serde_json::Value::Array(entries));
        }
    }
    if !groups.is_empty() {
        if let serde_json::Value::Object(report) = &mut outcome.check_report {
            let groups = serde_json::to_value(&groups).expect("group figures serialize");
            report.insert("groups".to_string(), groups);
        }
    }
}

/// Judges the static members fenced by FENCED_INSTANCE_ID (`check::fences`): expected
/// when the scenario must find them, allowed when the events explain every one; when every
/// consumer stopped so, the group's lag is that consequence and not a problem. Returns the
/// problems left, and whether a member was fenced (a liveness verdict: members stopped).
fn judge_fences(
    scenario: &Scenario,
    events: &[super::outcome::Event],
    mut problems: Vec<String>,
    judgement: &mut Judgement,
) -> (Vec<String>, bool) {
    let found = fences::fences(events, &scenario.consumer.group_id);
    if found.is_empty() {
        return (problems, false);
    }
    let name = fences::NAME.to_string();
    let consumers: Vec<String> = (0..scenario.consumer.count)
        .map(|i| crate::world::node_name(crate::world::Role::Consumer, i))
        .collect();
    if let Some(reason) = fences::all_explained(&found) {
        if fences::group_stopped(&found, &consumers) {
            problems.retain(|p| !p.starts_with(super::GROUP_LAG));
        }
        judgement.allowed.push((name.clone(), format!("expected under this config: {reason}")));
    }
    if scenario.expect.must_find.contains(&name) {
        judgement.allowed.retain(|(n, _)| *n != name);
        judgement.found_expected.push(name);
    }
    (problems, true)
}

/// Checks the history and rules on every anomaly instance (the report keeps the first few
/// of each kind), with the lost records explained from the event log.
fn judge_history(
    scenario: &Scenario,
    facts: &ConfigFacts,
    history: &History,
    outcome: &mut RunOutcome,
) -> (CheckReport, BTreeMap<AnomalyKind, Vec<Ruling>>) {
    let mut report = check(history, &CheckOptions { entries_per_kind_max: usize::MAX });
    let lost = losses::lost_records(history, &report);
    let settings = loss_settings(scenario);
    let findings = losses::explain(&outcome.events, settings, &lost);
    let displaced = losses::displaced_records(history, &report, &lost);
    let displaced = losses::explain(&outcome.events, settings, &displaced);
    let observed = losses::Observed::from_history(history);
    let promises = Judge::new(facts, &findings, &displaced, observed);
    let mut rulings: BTreeMap<AnomalyKind, Vec<Ruling>> = BTreeMap::new();
    for kind in AnomalyKind::ALL {
        if report.count(kind) == 0 {
            continue;
        }
        let ruled: Vec<Ruling> =
            report.entries(kind).iter().map(|anomaly| promises.rule(kind, anomaly)).collect();
        judge_kind(scenario, kind, &ruled, &mut outcome.judgement);
        rulings.insert(kind, ruled);
    }
    for entries in report.anomalies.values_mut() {
        entries.truncate(ENTRIES_PER_KIND_MAX);
    }
    (report, rulings)
}

/// Judges the instances of one anomaly kind found: expected (must_find), listed under
/// may_show, allowed when every instance is (the first reason shown, the others in
/// results.json), else forbidden. An instance outside the scenario's envelope is allowed
/// by Kafka but fails the run as a problem.
fn judge_kind(scenario: &Scenario, kind: AnomalyKind, ruled: &[Ruling], judgement: &mut Judgement) {
    let name = kind.name().to_string();
    let outside: Vec<&String> = ruled
        .iter()
        .filter_map(|r| match r {
            Ruling::OutsideEnvelope(reason) => Some(reason),
            _ => None,
        })
        .collect();
    if let Some(first) = outside.first() {
        judgement.problems.push(format!(
            "outside the scenario's envelope: {name}: {first} ({} such record(s)), though \
             the scenario's faults are meant to spare an in-sync replica (the nemesis guard \
             let it through)",
            outside.len()
        ));
    }
    if scenario.expect.must_find.contains(&name) {
        judgement.found_expected.push(name);
        return;
    }
    if scenario.expect.may_show.contains(&name) {
        judgement.allowed.push((name, "the scenario lists it under may_show".to_string()));
        return;
    }
    if ruled.contains(&Ruling::Forbidden) {
        judgement.forbidden.push(name);
        return;
    }
    let first = ruled.iter().find_map(|r| match r {
        Ruling::Allowed(reason) => Some(reason.as_str()),
        _ => None,
    });
    let mut reason = match (outside.first(), first) {
        (Some(outside), _) => format!(
            "Kafka allows it, but the run left the scenario's envelope (see the problem): {outside}"
        ),
        (None, first) => {
            format!("expected under this config: {}", first.unwrap_or("allowed by config"))
        }
    };
    if ruled.len() > 1 {
        let more = ruled.len() - 1;
        reason.push_str(&format!("; {more} more, each with its reason in results.json"));
    }
    judgement.allowed.push((name, reason));
}

/// Adds each kept entry's ruling to the serialized report: `"judged": "allowed: ..."`.
fn attach_rulings(
    check_report: &mut serde_json::Value,
    rulings: &BTreeMap<AnomalyKind, Vec<Ruling>>,
) {
    for (kind, ruled) in rulings {
        let Some(serde_json::Value::Array(entries)) =
            check_report.get_mut("anomalies").and_then(|a| a.get_mut(kind.name()))
        else {
            continue;
        };
        for (entry, ruling) in entries.iter_mut().zip(ruled) {
            let text = match ruling {
                Ruling::Forbidden => "forbidden".to_string(),
                Ruling::Allowed(reason) => format!("allowed: {reason}"),
                Ruling::OutsideEnvelope(reason) => {
                    format!("outside the scenario's envelope: {reason}")
                }
            };
            if let serde_json::Value::Object(entry) = entry {
                entry.insert("judged".to_string(), serde_json::Value::String(text));
            }
        }
    }
}

/// What the event-log replay of lost records needs from the scenario.
fn loss_settings(scenario: &Scenario) -> LossSettings {
    LossSettings {
        flush_every_batch: scenario.topics.iter().all(|t| t.flush == FlushSetting::EveryBatch),
        acks_all: scenario.producer.acks == AcksSetting::All,
        lone_broker: scenario.cluster.controllers == 0,
        truncation_to_hw: scenario.broker.truncation == TruncationSetting::HighWatermark,
        no_elr: !scenario.broker.eligible_leader_replicas,
    }
}

/// What the scenario's configuration promises, for `promises::allowed`.
pub fn config_facts(scenario: &Scenario) -> ConfigFacts {
    let topic = scenario.topics.first().expect("validated: at least one topic");
    ConfigFacts {
        acks: match scenario.producer.acks {
            AcksSetting::Zero => Acks::Zero,
            AcksSetting::One => Acks::One,
            AcksSetting::All => Acks::All,
        },
        min_insync_replicas: scenario
            .topics
            .iter()
            .map(|t| t.min_insync_replicas)
            .min()
            .unwrap_or(1),
        replication_factor: scenario.topics.iter().map(|t| t.replication_factor).min().unwrap_or(1),
        broker_count: scenario.cluster.brokers,
        unclean_election: scenario.topics.iter().any(|t| t.unclean_leader_election),
        idempotence: scenario.producer.idempotence,
        retries: scenario.producer.retries,
        max_in_flight: scenario.producer.max_in_flight,
        assign_without_seek: true,
        flush_every_batch: scenario.topics.iter().all(|t| t.flush == FlushSetting::EveryBatch),
        faults_destroy_all_replicas: destroys_all_replicas(scenario, topic.replication_factor),
        // Auto-commit commits, in the application's poll, what earlier polls returned:
        // at-least-once for an application that processes before polling again.
        group_at_most_once: scenario.consumer.mode == ConsumerMode::Subscribe
            && scenario.consumer.commit == CommitSetting::BeforeProcess
            && !scenario.consumer.auto_commit,
        generation_check: scenario.group.generation_check,
    }
}

/// Whether the fault schedule can take down every replica of a partition at once (losing
/// every replica's unsynced tail), which Kafka does not promise to survive. A lone broker
/// is restarted by the heal, so with one replica that is always so. With more, only
/// correlated crashes can: a power loss of at least RF nodes, random crashes without the
/// nemesis's spare guard, or scripted crashes of at least RF brokers at the same instant.
fn destroys_all_replicas(scenario: &Scenario, replication_factor: u32) -> bool {
    if replication_factor <= 1 {
        return true;
    }
    let rf = replication_factor as usize;
    let random = scenario.nemesis.as_ref().is_some_and(|n| {
        let power_loss = n.kinds.contains(&FaultKind::PowerLoss)
            && n.power_loss_max_or_default(scenario.cluster.brokers) as usize >= rf;
        // Without the spare guard, crashes one after another can take the unsynced tail
        // of every in-sync replica too (each rejoined the ISR before the next went down).
        let crashes_brokers = n.kinds.contains(&FaultKind::PowerLoss)
            || (n.kinds.contains(&FaultKind::Crash) && n.targets.iter().any(|t| may_be_broker(t)));
        power_loss || (crashes_brokers && !n.spare_last_replica)
    });
    let scripted_power_loss = scenario.faults.iter().any(|f| match &f.fault {
        FaultSpec::PowerLoss(p) => {
            p.nodes.as_ref().map_or(0, Vec::len) >= rf || p.count.unwrap_or(0) as usize >= rf
        }
        _ => false,
    });
    let mut crashes_at: std::collections::BTreeMap<u64, std::collections::BTreeSet<&str>> =
        std::collections::BTreeMap::new();
    for f in &scenario.faults {
        if let FaultSpec::Crash(crash) = &f.fault {
            crashes_at.entry((f.at_s * 1000.0) as u64).or_default().insert(&crash.target);
        }
    }
    let simultaneous = crashes_at.values().any(|targets| targets.len() >= rf);
    random || scripted_power_loss || simultaneous
}

/// Whether a nemesis target (a name or a role) can resolve to a broker.
fn may_be_broker(target: &str) -> bool {
    const NOT_BROKERS: &[&str] =
        &["any-consumer", "any-producer", "any-controller", "active-controller"];
    let named_other =
        ["consumer-", "producer-", "controller-"].iter().any(|p| target.starts_with(p));
    !named_other && !NOT_BROKERS.contains(&target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::cluster::{InvariantKind, Violation};
    use crate::check::testkit::Builder;
    use crate::history::OpType;

    fn outcome() -> RunOutcome {
        RunOutcome::started("q", None, 1, "test".into())
    }

    fn scenario(generation_check: bool, commit: CommitSetting) -> Scenario {
        let mut s = crate::scenario::parse(include_str!("../../../scenarios/quickstart.toml"), "q")
            .expect("valid");
        s.consumer.mode = ConsumerMode::Subscribe;
        s.consumer.commit = commit;
        s.group.generation_check = generation_check;
        s
    }

    /// A subscribed consumer that never processed acked value 1: unseen.
    fn judge_zombie_run(scenario: &Scenario) -> RunOutcome {
        let mut b = Builder::new();
        b.send_ok(0, "events-0", 1, 0);
        b.subscribe(1);
        b.commit(1, OpType::Ok, &[("events-0", 1)]);
        let violation =
            Violation { kind: InvariantKind::StaleCommit, detail: "zombie".to_string() };
        let mut outcome = outcome();
        let input = Input {
            history: b.finish(),
            problems: Vec::new(),
            violations: vec![violation],
            groups: std::collections::BTreeMap::new(),
            outcome: &mut outcome,
        };
        judge(scenario, input);
        outcome
    }

    #[test]
    fn group_anomalies_are_expected_only_under_their_config() {
        let safe = judge_zombie_run(&scenario(true, CommitSetting::AfterProcess));
        assert_eq!(safe.judgement.forbidden, vec!["unseen".to_string(), "stale-commit".into()]);
        let group = &safe.check_report["groups"]
            [&scenario(true, CommitSetting::AfterProcess).consumer.group_id];
        assert_eq!(group["commits_ok"], 1);

        let unsafe_run = judge_zombie_run(&scenario(false, CommitSetting::BeforeProcess));
        assert!(unsafe_run.judgement.forbidden.is_empty(), "{:?}", unsafe_run.judgement);
        let allowed: Vec<&str> =
            unsafe_run.judgement.allowed.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(allowed, ["unseen", "stale-commit"]);
    }
}
