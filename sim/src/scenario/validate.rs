//! Semantic validation of a scenario: the rules a well-typed scenario file must still obey
//! (replication factor within the broker count, Kafka's producer rules, fault targets that
//! name real nodes, ...). Each problem names the field it is about; `parse` turns the field
//! into a file line. Owns the list of known anomaly names and node names.

use super::model::*;
use super::source_map::FieldPath;
use super::target::Target;
use crate::nemesis::faults::StepCheck;

/// One rule broken by a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: FieldPath,
    pub message: String,
}

/// Jepsen's Kafka anomaly names (jepsen.tests.kafka), the vocabulary of `must_find` and
/// `may_show`.
pub const KNOWN_ANOMALIES: &[&str] = &[
    "lost-write",
    "unseen",
    "inconsistent-offsets",
    "duplicate",
    "aborted-read",
    "poll-skip",
    "nonmonotonic-poll",
    "int-poll-skip",
    "int-nonmonotonic-poll",
    "nonmonotonic-send",
    "int-nonmonotonic-send",
    "realtime-send-order",
    "realtime-commit-order",
    // The inside-the-cluster invariants (CORRECTNESS.md 1-5, and Raft's own).
    "one-leader-per-epoch",
    "committed-prefix",
    "replicas-agree",
    "acked-means-replicated",
    "leader-in-isr",
    "raft",
    "hw-within-committed-isr",
    // Consumer groups (CORRECTNESS.md 7).
    "stale-commit",
    "two-owners",
    // Kafka-allowed outcomes read from the event log (check::fences).
    "static-member-fenced",
];

/// Kafka caps in-flight requests per connection at 5 when idempotence is on
/// (max.in.flight.requests.per.connection, KIP-679).
const IDEMPOTENT_IN_FLIGHT_MAX: u32 = 5;

/// Every rule the scenario breaks, in file order as far as practical.
pub fn validate(scenario: &Scenario) -> Vec<Problem> {
    let mut problems = Problems(Vec::new());
    if let Some(message) = name_problem(&scenario.name, NAME_CHARS_MAX) {
        problems.push(root().key("name"), message);
    }
    validate_cluster(scenario, &mut problems);
    validate_topics(scenario, &mut problems);
    validate_clients(scenario, &mut problems);
    validate_group(scenario, &mut problems);
    validate_io(scenario, &mut problems);
    validate_phases(scenario, &mut problems);
    validate_faults(scenario, &mut problems);
    validate_nemesis(scenario, &mut problems);
    validate_expectation(&scenario.expect, &mut problems);
    problems.0.extend(super::workload_steps::validate(scenario));
    problems.0
}

/// Scenario and variant names become directory names under the report directory.
pub const NAME_CHARS_MAX: usize = 100;
/// Kafka's limit on a topic name (`org.apache.kafka.common.internals.Topic`).
pub const TOPIC_CHARS_MAX: usize = 249;

/// Why a scenario, variant or topic name is refused, if it is: Kafka's topic-name rule
/// (ASCII letters, digits, `.`, `_`, `-`; not `.` or `..`), which also keeps a name one
/// path component that cannot leave the report directory (no separators, no NUL or
/// newline, no leading dot).
pub fn name_problem(name: &str, max: usize) -> Option<String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > max {
        Some(format!("is {} characters long; at most {max}", name.len()))
    } else if let Some(c) = name.chars().find(|&c| !legal(c)) {
        Some(format!(
            "`{}` may hold only ASCII letters, digits, `.`, `_` and `-`, not {c:?}",
            name.escape_debug()
        ))
    } else if name.starts_with('.') {
        Some(format!("`{name}` must not start with `.`"))
    } else {
        None
    }
}

/// Whether `target` names a node of this scenario or a role it can resolve: the node
/// exists, the role has nodes to pick from, a `leader-of`/`follower-of` partition exists.
pub fn target_problem(scenario: &Scenario, target: &str) -> Option<String> {
    let parsed = match Target::parse(target) {
        Ok(parsed) => parsed,
        Err(message) => return Some(message),
    };
    match parsed {
        Target::Node(name) => node_problem(scenario, &name),
        Target::AnyOf(prefix) => {
            let count = role_count(scenario, prefix);
            (count == 0).then(|| format!("`{target}`: the scenario has no {}s", role_word(prefix)))
        }
        Target::ActiveController => (scenario.cluster.controllers == 0)
            .then(|| format!("`{target}`: the scenario has no controllers")),
        Target::AnyLeader => None,
        Target::Coordinator => (scenario.consumer.mode != ConsumerMode::Subscribe)
            .then(|| format!("`{target}`: only a subscribe-mode scenario has a group coordinator")),
        Target::LeaderOf { topic, partition } | Target::FollowerOf { topic, partition } => {
            let Some(config) = scenario.topics.iter().find(|t| t.name == topic) else {
                let names: Vec<&str> = scenario.topics.iter().map(|t| t.name.as_str()).collect();
                return Some(format!(
                    "`{target}`: no topic `{topic}` (topics: {})",
                    names.join(", ")
                ));
            };
            if partition >= config.partitions {
                return Some(format!(
                    "`{target}`: topic `{topic}` has {} partitions (0..={})",
                    config.partitions,
                    config.partitions.saturating_sub(1)
                ));
            }
            let follower = target.starts_with("follower-of:");
            (follower && config.replication_factor < 2).then(|| {
                format!("`{target}`: topic `{topic}` has replication_factor 1, so no followers")
            })
        }
    }
}

/// Brokers plus controllers: the nodes a split or bridge divides.
pub fn server_count(scenario: &Scenario) -> u32 {
    scenario.cluster.brokers + scenario.cluster.controllers
}

fn node_problem(scenario: &Scenario, name: &str) -> Option<String> {
    for prefix in ["broker-", "controller-", "producer-", "consumer-"] {
        let Some(number) = name.strip_prefix(prefix) else { continue };
        let count = role_count(scenario, prefix);
        let role = role_word(prefix);
        return match number.parse::<u32>() {
            Ok(n) if n < count => None,
            _ if count == 0 => Some(format!("`{name}`: the scenario has no {role}s")),
            _ => Some(format!(
                "`{name}` names no node: there are {count} {role}s ({prefix}0..{prefix}{})",
                count - 1
            )),
        };
    }
    Some(format!("`{name}` is not a node name"))
}

/// How many nodes have names starting with `prefix` ("" counts every node).
fn role_count(scenario: &Scenario, prefix: &str) -> u32 {
    match prefix {
        "broker-" => scenario.cluster.brokers,
        "controller-" => scenario.cluster.controllers,
        "producer-" => scenario.producer.count,
        "consumer-" => scenario.consumer.count,
        _ => server_count(scenario) + scenario.producer.count + scenario.consumer.count,
    }
}

fn role_word(prefix: &str) -> &str {
    match prefix.strip_suffix('-') {
        Some(word) => word,
        None => "node",
    }
}

/// Whether a target can only resolve to a broker or a controller.
pub fn is_server_target(target: &Target) -> bool {
    match target {
        Target::Node(name) => name.starts_with("broker-") || name.starts_with("controller-"),
        Target::AnyOf(prefix) => ["broker-", "controller-"].contains(prefix),
        _ => true,
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, field: FieldPath, message: impl Into<String>) {
        self.0.push(Problem { field, message: message.into() });
    }

    fn check(
        &mut self,
        ok: bool,
        field: impl FnOnce() -> FieldPath,
        message: impl FnOnce() -> String,
    ) {
        if !ok {
            self.push(field(), message());
        }
    }

    fn positive(&mut self, value: u64, field: FieldPath, what: &str) {
        if value == 0 {
            self.push(field, format!("must be greater than 0 ({what})"));
        }
    }

    fn range_us(&mut self, range: [u64; 2], field: FieldPath) {
        if range[0] > range[1] {
            self.push(field, format!("range [{}, {}] has lo > hi", range[0], range[1]));
        }
    }
}

fn root() -> FieldPath {
    FieldPath::root()
}

fn validate_cluster(scenario: &Scenario, problems: &mut Problems) {
    let cluster = &scenario.cluster;
    let field = || root().key("cluster");
    problems.check(cluster.brokers >= 1, || field().key("brokers"), || "must be at least 1".into());
    problems.check(
        [0, 1, 3, 5].contains(&cluster.controllers),
        || field().key("controllers"),
        || {
            format!(
                "{} is not a quorum size: use 0 (single-broker mode), 1, 3 or 5",
                cluster.controllers
            )
        },
    );
    problems.check(
        cluster.controllers != 0 || cluster.brokers <= 1,
        || field().key("controllers"),
        || {
            format!(
                "0 (single-broker mode) needs brokers = 1, not {}: use 1, 3 or 5 controllers",
                cluster.brokers
            )
        },
    );
}

fn validate_topics(scenario: &Scenario, problems: &mut Problems) {
    let brokers = scenario.cluster.brokers;
    if scenario.topics.is_empty() {
        problems.push(root().key("topics"), "at least one topic is needed");
    }
    for (i, topic) in scenario.topics.iter().enumerate() {
        let field = |name: &str| root().key("topics").index(i).key(name);
        if let Some(message) = name_problem(&topic.name, TOPIC_CHARS_MAX) {
            problems.push(field("name"), message);
        }
        if scenario.topics[..i].iter().any(|other| other.name == topic.name) {
            problems.push(field("name"), format!("topic `{}` is declared twice", topic.name));
        }
        problems.check(
            topic.partitions >= 1,
            || field("partitions"),
            || "must be at least 1".into(),
        );
        let rf = topic.replication_factor;
        problems.check(rf >= 1, || field("replication_factor"), || "must be at least 1".into());
        problems.check(
            rf <= brokers,
            || field("replication_factor"),
            || format!("{rf} is larger than the broker count ({brokers})"),
        );
        let min_isr = topic.min_insync_replicas;
        problems.check(
            min_isr >= 1 && min_isr <= rf.max(1),
            || field("min_insync_replicas"),
            || format!("{min_isr} is outside 1..=replication_factor ({rf})"),
        );
        if let FlushSetting::Interval { interval_ms } = topic.flush {
            problems.positive(interval_ms, field("flush").key("interval_ms"), "a flush interval");
        }
        problems.positive(topic.segment_bytes, field("segment_bytes"), "a segment size");
        for (name, value) in [
            ("segment_ms", topic.segment_ms),
            ("retention_ms", topic.retention_ms),
            ("retention_bytes", topic.retention_bytes),
        ] {
            if let Some(value) = value {
                problems.positive(value, field(name), "omit the field for no limit");
            }
        }
    }
}

fn validate_clients(scenario: &Scenario, problems: &mut Problems) {
    let producer = &scenario.producer;
    let consumer = &scenario.consumer;
    let p = |name: &str| root().key("producer").key(name);
    let c = |name: &str| root().key("consumer").key(name);
    problems.check(
        u64::from(producer.count) + u64::from(consumer.count) >= 1,
        || p("count"),
        || "producer.count + consumer.count must be at least 1".into(),
    );
    problems.check(
        !producer.idempotence || producer.acks == AcksSetting::All,
        || p("idempotence"),
        || "idempotence requires acks = \"all\" (Kafka's rule): set acks = \"all\" or idempotence = false".into(),
    );
    let in_flight_max = if producer.idempotence { IDEMPOTENT_IN_FLIGHT_MAX } else { u32::MAX };
    problems.check(
        producer.max_in_flight >= 1 && producer.max_in_flight <= in_flight_max,
        || p("max_in_flight"),
        || match producer.idempotence {
            true => format!(
                "{} is outside 1..=5 (Kafka's limit with idempotence)",
                producer.max_in_flight
            ),
            false => "must be at least 1".into(),
        },
    );
    problems.positive(producer.batch_size_bytes as u64, p("batch_size_bytes"), "a batch size");
    problems.positive(producer.request_timeout_ms, p("request_timeout_ms"), "a timeout");
    problems.positive(producer.delivery_timeout_ms, p("delivery_timeout_ms"), "a timeout");
    let floor = producer.linger_ms.saturating_add(producer.request_timeout_ms);
    problems.check(
        producer.delivery_timeout_ms >= floor,
        || p("delivery_timeout_ms"),
        || {
            format!(
                "{} is below linger_ms + request_timeout_ms ({floor}) (Kafka's rule)",
                producer.delivery_timeout_ms
            )
        },
    );
    problems.check(
        ["default", "round-robin"].contains(&producer.partitioner.as_str()),
        || p("partitioner"),
        || {
            format!(
                "`{}` is not a partitioner: use \"default\" or \"round-robin\"",
                producer.partitioner
            )
        },
    );
    problems.positive(consumer.poll_interval_ms, c("poll_interval_ms"), "a poll interval");
    problems.check(
        !consumer.fetch_from_follower || scenario.cluster.controllers > 0,
        || c("fetch_from_follower"),
        || "needs replicas to read from: set cluster.controllers to 1, 3 or 5".into(),
    );
    problems.positive(consumer.request_timeout_ms, c("request_timeout_ms"), "a timeout");
    problems.positive(
        u64::from(consumer.max_poll_records),
        c("max_poll_records"),
        "records per poll",
    );
    let workload = &scenario.workload;
    let w = |name: &str| root().key("workload").key(name);
    problems.positive(
        u64::from(workload.sends_per_op_max),
        w("sends_per_op_max"),
        "records per send op",
    );
    problems.check(
        producer.count == 0 || workload.send_ops_per_sec >= 1,
        || w("send_ops_per_sec"),
        || "must be at least 1 when there are producers".into(),
    );
    let broker = &scenario.broker;
    let b = |name: &str| root().key("broker").key(name);
    problems.positive(broker.request_timeout_ms, b("request_timeout_ms"), "a timeout");
    problems.positive(broker.replica_lag_time_max_ms, b("replica_lag_time_max_ms"), "a lag bound");
}

/// Subscribe mode's member settings and the coordinator's `[group]` table.
fn validate_group(scenario: &Scenario, problems: &mut Problems) {
    let consumer = &scenario.consumer;
    let group = &scenario.group;
    let c = |name: &str| root().key("consumer").key(name);
    let g = |name: &str| root().key("group").key(name);
    problems.positive(u64::from(group.offsets_partitions), g("offsets_partitions"), "partitions");
    problems.check(
        group.min_session_timeout_ms <= group.max_session_timeout_ms,
        || g("min_session_timeout_ms"),
        || {
            format!(
                "{} is above max_session_timeout_ms ({})",
                group.min_session_timeout_ms, group.max_session_timeout_ms
            )
        },
    );
    if consumer.mode != ConsumerMode::Subscribe {
        return;
    }
    problems.check(
        scenario.cluster.controllers > 0,
        || root().key("consumer").key("mode"),
        || {
            "subscribe mode needs the group coordinator, which lives on the replicated offsets \
             topic: set cluster.controllers to 1, 3 or 5"
                .into()
        },
    );
    problems.check(
        !consumer.group_id.is_empty() && consumer.group_id.len() <= 249,
        || c("group_id"),
        || "must be 1 to 249 bytes".into(),
    );
    problems.check(
        kafkasim::group::AssignorKind::from_name(&consumer.assignor).is_some(),
        || c("assignor"),
        || {
            format!(
                "`{}` is not an assignor: use \"range\", \"roundrobin\" or \"sticky\"",
                consumer.assignor
            )
        },
    );
    problems.positive(consumer.heartbeat_interval_ms, c("heartbeat_interval_ms"), "an interval");
    problems.positive(consumer.max_poll_interval_ms, c("max_poll_interval_ms"), "a timeout");
    problems.check(
        consumer.session_timeout_ms > consumer.heartbeat_interval_ms,
        || c("session_timeout_ms"),
        || {
            format!(
                "{} ms is not longer than heartbeat_interval_ms ({} ms): every session would expire",
                consumer.session_timeout_ms, consumer.heartbeat_interval_ms
            )
        },
    );
    problems.check(
        (group.min_session_timeout_ms..=group.max_session_timeout_ms)
            .contains(&consumer.session_timeout_ms),
        || c("session_timeout_ms"),
        || {
            format!(
                "{} ms is outside the coordinator's [{}, {}] ms (group.min/max_session_timeout_ms)",
                consumer.session_timeout_ms,
                group.min_session_timeout_ms,
                group.max_session_timeout_ms
            )
        },
    );
    problems.check(
        consumer.process_ms + consumer.poll_interval_ms < consumer.max_poll_interval_ms,
        || c("process_ms"),
        || {
            format!(
                "{} ms of processing plus the {} ms poll interval reach max_poll_interval_ms ({} ms): \
                 every member would leave the group after each poll",
                consumer.process_ms, consumer.poll_interval_ms, consumer.max_poll_interval_ms
            )
        },
    );
    problems.check(
        !consumer.auto_commit || consumer.auto_commit_interval_ms > 0,
        || c("auto_commit_interval_ms"),
        || "must be greater than 0 when auto_commit is on".into(),
    );
    problems.check(
        !(consumer.auto_commit && consumer.commit == CommitSetting::BeforeProcess),
        || c("auto_commit"),
        || "auto_commit commits on its own schedule; it cannot be combined with commit = \"before-process\"".into(),
    );
}

fn validate_io(scenario: &Scenario, problems: &mut Problems) {
    let disk = &scenario.disk;
    let d = |name: &str| root().key("disk").key(name);
    problems.range_us(disk.write_latency_us, d("write_latency_us"));
    problems.range_us(disk.sync_latency_us, d("sync_latency_us"));
    problems.range_us(disk.read_latency_us, d("read_latency_us"));
    problems.positive(disk.capacity_bytes, d("capacity_bytes"), "a disk size");
    let sum = u32::from(disk.crash_drop_pct)
        + u32::from(disk.crash_keep_pct)
        + u32::from(disk.crash_torn_pct);
    problems.check(
        sum == 100,
        || d("crash_drop_pct"),
        || format!("crash_drop_pct + crash_keep_pct + crash_torn_pct is {sum}, not 100"),
    );
    problems.range_us(scenario.network.latency_us, root().key("network").key("latency_us"));
}

fn validate_phases(scenario: &Scenario, problems: &mut Problems) {
    let phases = &scenario.phases;
    let field = |name: &str| root().key("phases").key(name);
    problems.check(phases.faulty_s >= 1, || field("faulty_s"), || "must be at least 1".into());
    problems.check(phases.quiet_s >= 1, || field("quiet_s"), || "must be at least 1".into());
}

fn validate_faults(scenario: &Scenario, problems: &mut Problems) {
    let faulty_s = scenario.phases.faulty_s as f64;
    for (i, step) in scenario.faults.iter().enumerate() {
        problems.check(
            step.at_s.is_finite() && step.at_s >= 0.0 && step.at_s <= faulty_s,
            || root().key("faults").index(i).key("at_s"),
            || format!("{} is outside the faulty phase (0..={faulty_s} s)", step.at_s),
        );
        step.fault.rule().validate(&mut StepCheck::new(scenario, i, &mut problems.0));
    }
}

fn validate_nemesis(scenario: &Scenario, problems: &mut Problems) {
    let Some(nemesis) = &scenario.nemesis else { return };
    let field = |name: &str| root().key("nemesis").key(name);
    for (name, range) in [("interval_s", nemesis.interval_s), ("duration_s", nemesis.duration_s)] {
        problems.check(
            range.iter().all(|s| s.is_finite() && *s > 0.0) && range[0] <= range[1],
            || field(name),
            || format!("range [{}, {}] needs 0 < lo <= hi", range[0], range[1]),
        );
    }
    problems.check(
        !nemesis.kinds.is_empty(),
        || field("kinds"),
        || "at least one fault kind is needed".into(),
    );
    problems.check(
        !nemesis.targets.is_empty(),
        || field("targets"),
        || "at least one target is needed".into(),
    );
    for (i, target) in nemesis.targets.iter().enumerate() {
        if let Some(message) = target_problem(scenario, target) {
            problems.push(field("targets").index(i), message);
        }
    }
    for (i, kind) in nemesis.kinds.iter().enumerate() {
        if let Some(message) = kind.unfit(scenario) {
            problems.push(field("kinds").index(i), message);
        }
    }
    let servers = server_count(scenario);
    if let Some(max) = nemesis.power_loss_max {
        problems.check(
            (1..=servers).contains(&max),
            || field("power_loss_max"),
            || format!("{max} is outside 1..={servers} (brokers and controllers)"),
        );
    }
}

fn validate_expectation(expect: &Expectation, problems: &mut Problems) {
    let field = |name: &str| root().key("expect").key(name);
    problems.check(
        expect.verdict != ExpectedVerdict::Find || !expect.must_find.is_empty(),
        || field("must_find"),
        || "verdict = \"find\" needs at least one anomaly in must_find".into(),
    );
    problems.positive(expect.seed_budget, field("seed_budget"), "seeds");
    for (list_name, list) in [("must_find", &expect.must_find), ("may_show", &expect.may_show)] {
        for (i, name) in list.iter().enumerate() {
            problems.check(
                KNOWN_ANOMALIES.contains(&name.as_str()),
                || field(list_name).index(i),
                || format!("`{name}` is not a known anomaly ({})", KNOWN_ANOMALIES.join(", ")),
            );
        }
    }
    for (i, name) in expect.reaches.iter().enumerate() {
        problems.check(
            crate::coverage::Mark::from_name(name).is_some(),
            || field("reaches").index(i),
            || format!("`{name}` is not a coverage mark ({})", crate::coverage::Mark::names()),
        );
    }
}

/// Every node of the scenario: brokers, controllers and clients.
pub fn node_count(scenario: &Scenario) -> u32 {
    role_count(scenario, "")
}

#[cfg(test)]
mod tests;
