//! The grammar of fault targets: a node name (`broker-0`), a role picked by seed
//! (`any-broker`), or a cluster role resolved against what the nodes report when the fault
//! fires (`active-controller`, `leader-of:events:0`). Owns the parsing of that grammar only;
//! `validate` checks a target against the scenario, the nemesis resolves it at injection.

use std::fmt;

/// Roles a fault may target instead of a node name; the runner picks the node by seed (or,
/// for the cluster roles, by what the nodes last reported).
pub const TARGET_ROLES: &[&str] = &[
    "any-broker",
    "any-controller",
    "any-producer",
    "any-consumer",
    "any-node",
    "active-controller",
    "any-leader",
    "leader-of:<topic>:<partition>",
    "follower-of:<topic>:<partition>",
    "coordinator",
];

/// A parsed target: what a `target`, `peer` or `nodes` entry names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A node name: `broker-N`, `controller-N`, `producer-N`, `consumer-N`.
    Node(String),
    /// A random node whose name starts with the prefix ("" for any node).
    AnyOf(&'static str),
    /// The controller that last reported becoming active.
    ActiveController,
    /// The leader of a random partition that has one.
    AnyLeader,
    /// The leader of one partition.
    LeaderOf { topic: String, partition: u32 },
    /// A random follower (replica other than the leader) of one partition.
    FollowerOf { topic: String, partition: u32 },
    /// The coordinator of the scenario's consumer group: the leader of the group's
    /// partition of the offsets topic.
    Coordinator,
}

impl Target {
    /// Parses a target's text. Node names are only checked for shape here (a prefix and a
    /// number); whether the node exists is `validate`'s question.
    pub fn parse(text: &str) -> Result<Target, String> {
        let any = match text {
            "any-broker" => Some("broker-"),
            "any-controller" => Some("controller-"),
            "any-producer" => Some("producer-"),
            "any-consumer" => Some("consumer-"),
            "any-node" => Some(""),
            _ => None,
        };
        if let Some(prefix) = any {
            return Ok(Target::AnyOf(prefix));
        }
        match text {
            "active-controller" => return Ok(Target::ActiveController),
            "any-leader" => return Ok(Target::AnyLeader),
            "coordinator" => return Ok(Target::Coordinator),
            _ => {}
        }
        for (role, leader) in [("leader-of:", true), ("follower-of:", false)] {
            if let Some(rest) = text.strip_prefix(role) {
                let (topic, partition) = parse_partition(rest).ok_or_else(|| {
                    format!("`{text}` is not `{role}<topic>:<partition>` (like `{role}events:0`)")
                })?;
                return Ok(match leader {
                    true => Target::LeaderOf { topic, partition },
                    false => Target::FollowerOf { topic, partition },
                });
            }
        }
        const PREFIXES: [&str; 4] = ["broker-", "controller-", "producer-", "consumer-"];
        for prefix in PREFIXES {
            if let Some(number) = text.strip_prefix(prefix) {
                return match number.parse::<u32>() {
                    Ok(n) if number == n.to_string() => Ok(Target::Node(text.to_string())),
                    _ => Err(format!("`{text}` is not a node name (like {prefix}0)")),
                };
            }
        }
        Err(format!(
            "`{text}` is neither a node name (broker-N, controller-N, producer-N, consumer-N) nor a role ({})",
            TARGET_ROLES.join(", ")
        ))
    }

    /// Whether the target can only ever resolve to a broker.
    pub fn is_broker(&self) -> bool {
        match self {
            Target::Node(name) => name.starts_with("broker-"),
            Target::AnyOf(prefix) => *prefix == "broker-",
            Target::ActiveController => false,
            Target::AnyLeader
            | Target::LeaderOf { .. }
            | Target::FollowerOf { .. }
            | Target::Coordinator => true,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(name) => write!(f, "{name}"),
            Target::AnyOf("") => write!(f, "any-node"),
            Target::AnyOf(prefix) => write!(f, "any-{}", prefix.trim_end_matches('-')),
            Target::ActiveController => write!(f, "active-controller"),
            Target::AnyLeader => write!(f, "any-leader"),
            Target::LeaderOf { topic, partition } => write!(f, "leader-of:{topic}:{partition}"),
            Target::FollowerOf { topic, partition } => {
                write!(f, "follower-of:{topic}:{partition}")
            }
            Target::Coordinator => write!(f, "coordinator"),
        }
    }
}

/// `<topic>:<partition>`, split at the last colon (topic names may not contain one in
/// Kafka, but the partition is the unambiguous part).
fn parse_partition(rest: &str) -> Option<(String, u32)> {
    let (topic, partition) = rest.rsplit_once(':')?;
    let number = partition.parse::<u32>().ok()?;
    (!topic.is_empty() && partition == number.to_string()).then(|| (topic.to_string(), number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_roles_and_cluster_roles() {
        assert_eq!(Target::parse("broker-2"), Ok(Target::Node("broker-2".into())));
        assert_eq!(Target::parse("controller-0"), Ok(Target::Node("controller-0".into())));
        assert_eq!(Target::parse("any-controller"), Ok(Target::AnyOf("controller-")));
        assert_eq!(Target::parse("any-node"), Ok(Target::AnyOf("")));
        assert_eq!(Target::parse("active-controller"), Ok(Target::ActiveController));
        assert_eq!(Target::parse("any-leader"), Ok(Target::AnyLeader));
        assert_eq!(
            Target::parse("leader-of:events:3"),
            Ok(Target::LeaderOf { topic: "events".into(), partition: 3 })
        );
        assert_eq!(
            Target::parse("follower-of:a.b-c:0"),
            Ok(Target::FollowerOf { topic: "a.b-c".into(), partition: 0 })
        );
    }

    #[test]
    fn rejects_malformed_targets_without_panicking() {
        for bad in [
            "broker-",
            "broker-01",
            "broker--1",
            "leader-of:",
            "leader-of:events",
            "leader-of::0",
            "leader-of:events:x",
            "follower-of:events:-1",
            "zookeeper",
            "",
        ] {
            assert!(Target::parse(bad).is_err(), "`{bad}` must be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "broker-0",
            "any-broker",
            "any-node",
            "any-controller",
            "active-controller",
            "any-leader",
            "leader-of:events:1",
            "follower-of:audit:0",
        ] {
            let target = Target::parse(text).expect("valid");
            assert_eq!(target.to_string(), text);
        }
    }

    #[test]
    fn broker_only_targets() {
        assert!(Target::parse("leader-of:events:0").expect("valid").is_broker());
        assert!(Target::parse("any-broker").expect("valid").is_broker());
        assert!(!Target::parse("any-node").expect("valid").is_broker());
        assert!(!Target::parse("controller-1").expect("valid").is_broker());
    }
}
