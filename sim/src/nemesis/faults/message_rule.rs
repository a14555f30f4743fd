//! `message-rule`: for `duration_s`, the messages `target` sends to `peer` whose kind is
//! listed in `messages` (all of them when empty) are dropped while the connection stays
//! open, delivered late (`delay_ms`, overtaken by the messages behind them), or delivered
//! twice. It says what a link-wide fault cannot: hold one broker's AlterPartition, lose the
//! Fetch responses to one follower, answer a produce the client has given up on, deliver a
//! Raft vote after a newer one.

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use crate::scenario::{Scenario, Target};
use crate::world::message_rules::MessageAction;
use kafkasim::protocol::MESSAGE_KINDS;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest delay a rule may hold a message for.
pub const DELAY_MS_MAX: u64 = 120_000;

/// What a random rule may hold on a link, by the roles of its ends (sender, receiver): the
/// messages Kafka's safety protocols hinge on. A producer's requests are never repeated: a
/// network that delivered one twice would break the "retries = 0" promise real TCP keeps.
fn drawn_kinds(from: &str, to: &str, action: RuleAction) -> &'static [&'static str] {
    match (role(from), role(to)) {
        ("broker", "broker") => {
            &["fetch", "fetch-response", "offsets-for-leader-epoch", "offsets-for-leader-epoch-response"]
        }
        ("broker", "controller") => &["alter-partition", "broker-heartbeat", "metadata-fetch"],
        ("controller", "broker") => {
            &["alter-partition-response", "broker-heartbeat-response", "metadata-fetch-response"]
        }
        ("controller", _) => {
            &["append-entries", "append-entries-response", "request-vote", "request-vote-response", "pre-vote"]
        }
        ("producer", _) if action == RuleAction::Duplicate => &["metadata", "init-producer-id"],
        ("producer", _) => &["produce", "init-producer-id"],
        ("consumer", _) => {
            &["fetch", "offset-commit", "heartbeat", "join-group", "sync-group", "list-offsets", "offsets-for-leader-epoch"]
        }
        (_, "producer") => &["produce-response", "init-producer-id-response"],
        _ => &["fetch-response", "offset-commit-response", "heartbeat-response", "join-group-response", "sync-group-response", "offset-fetch-response"],
    }
}

/// "broker", "controller", "producer" or "consumer", from a node's name.
fn role(node: &str) -> &str {
    node.split('-').next().unwrap_or(node)
}

/// Who `from` talks to, for a random rule's peer: clients and controllers talk to brokers
/// (controllers to each other too); brokers to everyone.
fn talks_to(from: &str, to: &str) -> bool {
    from != to
        && match role(from) {
            "broker" => true,
            "controller" => matches!(role(to), "controller" | "broker"),
            _ => role(to) == "broker",
        }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    Drop,
    Delay,
    Duplicate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRule {
    /// The sender (name or role).
    pub target: String,
    /// The receiver (name or role); None: a random other node.
    #[serde(default)]
    pub peer: Option<String>,
    /// Message kinds (`produce`, `fetch-response`, `alter-partition`, ...); empty: all.
    #[serde(default)]
    pub messages: Vec<String>,
    pub action: RuleAction,
    /// How late a `delay` delivers.
    #[serde(default)]
    pub delay_ms: u64,
    pub duration_s: f64,
    /// A random injection: the plan picks a peer the target talks to and one kind of
    /// message that goes that way.
    #[serde(skip)]
    pub drawn: bool,
}

impl MessageRule {
    fn action(&self) -> MessageAction {
        match self.action {
            RuleAction::Drop => MessageAction::Drop,
            RuleAction::Delay => MessageAction::Delay(Duration::from_millis(self.delay_ms)),
            RuleAction::Duplicate => MessageAction::Duplicate,
        }
    }

    /// The link and the kinds the plan chose.
    fn planned(plan: &Plan) -> (&str, &str, Vec<String>) {
        let (from, to) = &plan.links[0];
        let kinds = plan.fields.iter().find(|(name, _)| *name == "messages");
        let kinds = kinds.map_or("", |(_, text)| text.as_str());
        let kinds = kinds.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect();
        (from, to, kinds)
    }
}

impl Rule for MessageRule {
    fn drawn(draw: Draw, rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        let action = [RuleAction::Drop, RuleAction::Delay, RuleAction::Duplicate][rng.gen_range(0..3)];
        let delay_ms = match action {
            RuleAction::Delay => rng.gen_range(100..5_000),
            _ => 0,
        };
        MessageRule {
            target: draw.target,
            peer: None,
            messages: Vec::new(),
            action,
            delay_ms,
            duration_s: draw.duration_s,
            drawn: true,
        }
    }

    fn unfit(scenario: &Scenario) -> Option<String> {
        let nodes = crate::scenario::validate::node_count(scenario);
        (nodes < 2).then(|| format!("`message-rule` needs at least 2 nodes, the scenario has {nodes}"))
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        check.duration(self.duration_s);
        if let Some(peer) = &self.peer {
            let named = check.node("peer", peer);
            if *peer == self.target && matches!(named, Some(Target::Node(_))) {
                check.problem("peer", format!("`{peer}` is also the target"));
            }
        }
        for kind in self.messages.iter().filter(|k| !MESSAGE_KINDS.contains(&k.as_str())) {
            check.problem("messages", format!("`{kind}` is not a message kind; one of: {}", MESSAGE_KINDS.join(", ")));
        }
        match (self.action, self.delay_ms) {
            (RuleAction::Delay, 0) => check.problem("delay_ms", "`delay` needs `delay_ms` above 0"),
            (RuleAction::Delay, ms) if ms > DELAY_MS_MAX => {
                check.problem("delay_ms", format!("{ms} is above {DELAY_MS_MAX}"))
            }
            (RuleAction::Drop | RuleAction::Duplicate, ms) if ms > 0 => {
                check.problem("delay_ms", "only a `delay` takes `delay_ms`")
            }
            _ => {}
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let mut plan = planner.link(&self.target, self.peer.as_deref(), talks_to)?;
        let messages = match self.drawn {
            true => {
                let kinds = drawn_kinds(&plan.nodes[0], &plan.nodes[1], self.action);
                vec![kinds[planner.rng.gen_range(0..kinds.len())].to_string()]
            }
            false => self.messages.clone(),
        };
        plan.fields.push(("messages", messages.join(",")));
        plan.fields.push(("action", format!("{:?}", self.action).to_lowercase()));
        Ok(plan)
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let (from, to, kinds) = MessageRule::planned(plan);
        nemesis.world.messages.add(from, to, &kinds, self.action());
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        let (from, to, kinds) = MessageRule::planned(plan);
        nemesis.world.messages.remove(from, to, &kinds, self.action());
    }
}
