//! Tests of the fault-target rules, through `parse`, so every error is checked with its
//! file line and field as a user sees it.

use crate::scenario::{parse, FaultKind, FaultSpec, ScenarioError};

/// Line numbers in the tests below refer to this text; extra faults go after line 21.
const BASE: &str = r#"name = "faults"
description = "Fault target rules."
[cluster]
brokers = 3
controllers = 3
[[topics]]
name = "events"
partitions = 2
replication_factor = 3
[[topics]]
name = "solo"
partitions = 1
[producer]
count = 1
acks = "all"
[consumer]
count = 1
[[faults]]
at_s = 1.0
kind = "crash"
target = "broker-1"
duration_s = 2.0
[nemesis]
interval_s = [1.0, 2.0]
duration_s = [1.0, 2.0]
kinds = ["split"]
[expect]
verdict = "pass"
"#;

/// The error when `target = "broker-1"` (line 21) becomes `target`.
fn with_target(target: &str) -> ScenarioError {
    let text = BASE.replace("target = \"broker-1\"", &format!("target = \"{target}\""));
    parse(&text, "scenarios/faults.toml").expect_err("the target must be rejected")
}

/// BASE with `step` appended as faults[1], whose `[[faults]]` header is line 23.
fn with_step(step: &str) -> Result<crate::scenario::Scenario, ScenarioError> {
    let text = BASE.replace("[nemesis]\n", &format!("[[faults]]\nat_s = 3.0\n{step}[nemesis]\n"));
    parse(&text, "scenarios/faults.toml")
}

fn rejected(step: &str) -> ScenarioError {
    with_step(step).expect_err("the step must be rejected")
}

fn assert_at(error: &ScenarioError, line: usize, field: &str, words: &str) {
    assert_eq!(error.line, Some(line), "wrong line in: {error}");
    assert_eq!(error.field.as_deref(), Some(field), "wrong field in: {error}");
    assert!(error.message.contains(words), "`{words}` missing in: {error}");
}

#[test]
fn cluster_role_targets_parse() {
    for target in [
        "controller-2",
        "any-controller",
        "active-controller",
        "any-leader",
        "leader-of:events:1",
        "follower-of:events:0",
        "leader-of:solo:0",
    ] {
        let text = BASE.replace("target = \"broker-1\"", &format!("target = \"{target}\""));
        let scenario = parse(&text, "f").unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(scenario.faults[0].fault.rule().target(), Some(target));
    }
}

#[test]
fn bad_role_targets_name_file_line_and_field() {
    let error = with_target("controller-3");
    assert_at(&error, 21, "faults[0].target", "there are 3 controllers");
    assert!(
        error.to_string().starts_with("scenarios/faults.toml:21: field `faults[0].target`: "),
        "{error}"
    );
    assert_at(&with_target("leader-of:nope:0"), 21, "faults[0].target", "no topic `nope`");
    assert_at(&with_target("leader-of:events:2"), 21, "faults[0].target", "has 2 partitions");
    assert_at(&with_target("follower-of:solo:0"), 21, "faults[0].target", "no followers");
    assert_at(&with_target("leader-of:events"), 21, "faults[0].target", "leader-of:<topic>");
    assert_at(&with_target("any-zookeeper"), 21, "faults[0].target", "nor a role");
    let none = BASE.replace("controllers = 3", "controllers = 1");
    let text = none.replace("target = \"broker-1\"", "target = \"controller-1\"");
    let error = parse(&text, "f").expect_err("controller-1 of 1");
    assert_at(&error, 21, "faults[0].target", "there are 1 controllers");
}

#[test]
fn one_way_cut_needs_a_peer_that_exists() {
    let ok = with_step(
        "kind = \"one-way-cut\"\ntarget = \"leader-of:events:0\"\npeer = \"active-controller\"\nduration_s = 1.0\n",
    )
    .expect("valid one-way cut");
    let FaultSpec::OneWayCut(cut) = &ok.faults[1].fault else { panic!("{:?}", ok.faults[1]) };
    assert_eq!(cut.peer.as_deref(), Some("active-controller"));
    let error = rejected("kind = \"one-way-cut\"\ntarget = \"broker-0\"\nduration_s = 1.0\n");
    assert_at(&error, 25, "faults[1].kind", "needs `peer`");
    let error = rejected(
        "kind = \"one-way-cut\"\ntarget = \"broker-0\"\npeer = \"broker-7\"\nduration_s = 1.0\n",
    );
    assert_at(&error, 27, "faults[1].peer", "there are 3 brokers");
    let error = rejected(
        "kind = \"one-way-cut\"\ntarget = \"broker-0\"\npeer = \"broker-0\"\nduration_s = 1.0\n",
    );
    assert_at(&error, 27, "faults[1].peer", "also the target");
    let error = rejected(
        "kind = \"pause\"\ntarget = \"broker-0\"\npeer = \"broker-1\"\nduration_s = 1.0\n",
    );
    assert_at(&error, 27, "faults[1].peer", "unknown field `peer`");
    let error = rejected("kind = \"one-way-cut\"\npeer = \"broker-0\"\nduration_s = 1.0\n");
    assert_at(&error, 23, "faults[1]", "missing field `target`");
}

#[test]
fn split_takes_a_target_or_a_minority() {
    let ok =
        with_step("kind = \"split\"\nnodes = [\"broker-0\", \"controller-0\"]\nduration_s = 1.0\n")
            .expect("valid split");
    let FaultSpec::Split(split) = &ok.faults[1].fault else { panic!("{:?}", ok.faults[1]) };
    assert_eq!(split.nodes.as_ref().map(Vec::len), Some(2));
    with_step("kind = \"split\"\ntarget = \"active-controller\"\nduration_s = 1.0\n")
        .expect("split around the active controller");
    let error = rejected(
        "kind = \"split\"\ntarget = \"broker-0\"\nnodes = [\"broker-1\"]\nduration_s = 1.0\n",
    );
    assert_at(&error, 27, "faults[1].nodes", "not both");
    let error = rejected("kind = \"split\"\nduration_s = 1.0\n");
    assert_at(&error, 25, "faults[1].kind", "`target` or `nodes`");
    let error =
        rejected("kind = \"split\"\nnodes = [\"broker-0\", \"consumer-0\"]\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].nodes[1]", "brokers and controllers only");
    let all = "[\"broker-0\", \"broker-1\", \"broker-2\", \"controller-0\", \"controller-1\", \"controller-2\"]";
    let error = rejected(&format!("kind = \"split\"\nnodes = {all}\nduration_s = 1.0\n"));
    assert_at(&error, 26, "faults[1].nodes", "no other side");
    let error = rejected("kind = \"split\"\nnodes = []\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].nodes", "at least one");
    let error = rejected("kind = \"split\"\ntarget = \"producer-0\"\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].target", "a broker or a controller");
    let error = rejected(
        "kind = \"isolate\"\ntarget = \"broker-0\"\nnodes = [\"broker-1\"]\nduration_s = 1.0\n",
    );
    assert_at(&error, 27, "faults[1].nodes", "unknown field `nodes`");
}

#[test]
fn bridge_and_broker_link_cuts() {
    with_step("kind = \"bridge\"\ntarget = \"any-leader\"\nduration_s = 1.0\n").expect("bridge");
    with_step("kind = \"cut-broker-links\"\ntarget = \"leader-of:events:0\"\nduration_s = 1.0\n")
        .expect("the Jepsen 2013 fault");
    let error =
        rejected("kind = \"cut-broker-links\"\ntarget = \"controller-0\"\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].target", "needs a broker target");
    let error = rejected("kind = \"bridge\"\ntarget = \"broker-0\"\n");
    assert_at(&error, 23, "faults[1]", "missing field `duration_s`");
}

/// A Raft voter's disk is not wiped: it could vote twice in a term (every fault kind on
/// replicated-safe, seeds 115 and 252: two controller leaders in one term).
#[test]
fn disk_wipe_takes_brokers_and_clients_only() {
    with_step("kind = \"disk-wipe\"\ntarget = \"any-broker\"\nduration_s = 1.0\n")
        .expect("a broker");
    for target in ["controller-0", "any-controller", "active-controller"] {
        let error =
            rejected(&format!("kind = \"disk-wipe\"\ntarget = \"{target}\"\nduration_s = 1.0\n"));
        assert_at(&error, 26, "faults[1].target", "Raft voter");
    }
}

#[test]
fn power_loss_takes_nodes_or_a_count() {
    let ok = with_step(
        "kind = \"power-loss\"\nnodes = [\"broker-0\", \"leader-of:events:0\"]\nduration_s = 1.0\n",
    )
    .expect("valid power loss");
    assert_eq!(ok.faults[1].fault.kind(), FaultKind::PowerLoss);
    with_step("kind = \"power-loss\"\ncount = 3\nduration_s = 1.0\n").expect("all brokers");
    let error = rejected("kind = \"power-loss\"\ncount = 4\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].count", "outside 1..=3");
    let error = rejected("kind = \"power-loss\"\nduration_s = 1.0\n");
    assert_at(&error, 25, "faults[1].kind", "`nodes` or `count`");
    let error =
        rejected("kind = \"power-loss\"\nnodes = [\"broker-0\"]\ncount = 1\nduration_s = 1.0\n");
    assert_at(&error, 27, "faults[1].count", "not both");
    let error =
        rejected("kind = \"power-loss\"\ntarget = \"broker-0\"\ncount = 1\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].target", "unknown field `target`");
    let error =
        rejected("kind = \"power-loss\"\nnodes = [\"broker-0\", \"broker-0\"]\nduration_s = 1.0\n");
    assert_at(&error, 26, "faults[1].nodes[1]", "listed twice");
    let error = rejected(
        "kind = \"power-loss\"\nnodes = [\"broker-0\", \"leader-of:x:0\"]\nduration_s = 1.0\n",
    );
    assert_at(&error, 26, "faults[1].nodes[1]", "no topic `x`");
}

#[test]
fn nemesis_power_loss_max_and_kinds() {
    let with = |from: &str, to: &str| parse(&BASE.replace(from, to), "f");
    let ok = with("kinds = [\"split\"]", "kinds = [\"split\", \"power-loss\"]\npower_loss_max = 2")
        .expect("valid nemesis");
    let nemesis = ok.nemesis.expect("nemesis");
    assert_eq!(nemesis.power_loss_max, Some(2));
    let default = parse(BASE, "f").expect("base").nemesis.expect("nemesis");
    assert_eq!(default.power_loss_max_or_default(3), 2, "one less than the brokers");
    assert_eq!(default.power_loss_max_or_default(1), 1, "at least one");
    let error =
        with("kinds = [\"split\"]", "kinds = [\"split\"]\npower_loss_max = 0").expect_err("zero");
    assert_at(&error, 27, "nemesis.power_loss_max", "outside 1..=6");
    let error =
        with("kinds = [\"split\"]", "kinds = [\"split\"]\ntargets = [\"leader-of:events:9\"]")
            .expect_err("partition 9");
    assert_at(&error, 27, "nemesis.targets[0]", "has 2 partitions");
    let small = BASE
        .replace("brokers = 3", "brokers = 1")
        .replace("replication_factor = 3", "replication_factor = 1")
        .replace("target = \"broker-1\"", "target = \"broker-0\"");
    let error = parse(&small.replace("[\"split\"]", "[\"split\", \"cut-broker-links\"]"), "f")
        .expect_err("one broker");
    assert_at(&error, 26, "nemesis.kinds[1]", "at least 2 brokers");
}

#[test]
fn the_readme_example_of_replication_faults_parses() {
    let readme = include_str!("../../../../scenarios/README.md");
    let start = readme.find("```toml\n").expect("the README has a toml example") + 8;
    let end = start + readme[start..].find("```").expect("the example ends");
    let base = BASE.split("[[faults]]").next().expect("BASE has faults");
    let text = format!(
        "{base}[phases]\nfaulty_s = 20\n{}[expect]\nverdict = \"pass\"\n",
        &readme[start..end]
    );
    let scenario = parse(&text, "README.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.faults.len(), 6);
    assert_eq!(scenario.nemesis.and_then(|n| n.power_loss_max), Some(1));
}

/// BASE as a subscribe-mode scenario: `member` lines go after `count = 1` (line 17), so the
/// first of them is line 18.
fn with_member(member: &str) -> Result<crate::scenario::Scenario, ScenarioError> {
    let text = BASE.replace("[consumer]\ncount = 1\n", &format!("[consumer]\ncount = 1\n{member}"));
    parse(&text, "scenarios/faults.toml")
}

#[test]
fn group_settings_name_their_line_and_field() {
    let ok = with_member("mode = \"subscribe\"\nassignor = \"sticky\"\n").expect("valid group");
    assert_eq!(ok.consumer.assignor, "sticky");
    let error = with_member("mode = \"subscribe\"\nassignor = \"fastest\"\n").unwrap_err();
    assert_at(&error, 19, "consumer.assignor", "not an assignor");
    let error = with_member(
        "mode = \"subscribe\"\nsession_timeout_ms = 7000\nheartbeat_interval_ms = 7000\n",
    )
    .unwrap_err();
    assert_at(&error, 19, "consumer.session_timeout_ms", "not longer than heartbeat_interval_ms");
    let error = with_member(
        "mode = \"subscribe\"\nsession_timeout_ms = 1000\nheartbeat_interval_ms = 500\n",
    )
    .unwrap_err();
    assert_at(&error, 19, "consumer.session_timeout_ms", "outside the coordinator's");
    let error = with_member("mode = \"subscribe\"\nsession_timeout_ms = -5\n").unwrap_err();
    assert_eq!(error.line, Some(19), "{error}");
    let error = with_member("mode = \"subscribe\"\ngroup_id = \"\"\n").unwrap_err();
    assert_at(&error, 19, "consumer.group_id", "1 to 249 bytes");
    let error =
        with_member("mode = \"subscribe\"\ncommit = \"before-process\"\nauto_commit = true\n")
            .unwrap_err();
    assert_at(&error, 20, "consumer.auto_commit", "cannot be combined");
}

#[test]
fn the_coordinator_target_needs_a_group() {
    assert_at(&with_target("coordinator"), 21, "faults[0].target", "only a subscribe-mode");
    let text = BASE
        .replace("target = \"broker-1\"", "target = \"coordinator\"")
        .replace("[consumer]\ncount = 1\n", "[consumer]\ncount = 1\nmode = \"subscribe\"\n");
    parse(&text, "scenarios/faults.toml").expect("a group has a coordinator");
}

#[test]
fn names_that_could_leave_the_report_directory_are_refused() {
    for (bad, why) in [
        ("../../escape", "not '/'"),
        ("a/b", "not '/'"),
        (".hidden", "must not start with `.`"),
        ("nul\\u0000", "not '\\0'"),
        ("new\\nline", "not '\\n'"),
        ("", "must not be empty"),
    ] {
        let text = BASE.replace("name = \"faults\"", &format!("name = \"{bad}\""));
        let error = parse(&text, "scenarios/faults.toml").expect_err(bad);
        assert_at(&error, 1, "name", why);
    }
    let long = "t".repeat(250);
    let text = BASE.replace("name = \"events\"", &format!("name = \"{long}\""));
    let error = parse(&text, "scenarios/faults.toml").expect_err("a 250-character topic");
    assert_at(&error, 7, "topics[0].name", "at most 249");
    let text = format!("{BASE}[variants.\"../up\"]\ndescription = \"escapes\"\n");
    let error = parse(&text, "scenarios/faults.toml").expect_err("a variant name with a slash");
    assert!(error.to_string().contains("variant name"), "{error}");
}
