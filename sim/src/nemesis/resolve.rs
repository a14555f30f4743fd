//! Turning fault targets into node names at the moment a fault fires: node names as they
//! are, roles picked at random from the nemesis's sub-stream, cluster roles (`leader-of`,
//! `active-controller`, ...) looked up in the cluster view the nodes keep. Also chooses the
//! sides of splits and bridges. Pure: no madsim calls, so every rule is unit-tested. A
//! target that cannot be resolved now is an `Err` with the reason, never a panic.

use crate::scenario::Target;
use crate::world::cluster::ClusterView;
use kafkasim::types::TopicPartition;
use rand::seq::SliceRandom;
use rand::Rng;

/// The node names of a run and what the cluster last reported.
pub struct Resolver<'a> {
    /// Every node's name, in name order.
    pub names: &'a [String],
    pub cluster: &'a ClusterView,
    /// The group's partition of the offsets topic, in subscribe mode.
    pub coordinator: Option<TopicPartition>,
}

impl Resolver<'_> {
    /// One node for a target's text.
    pub fn one(&self, text: &str, rng: &mut impl Rng) -> Result<String, String> {
        let target = Target::parse(text)?;
        let name = match &target {
            Target::Node(name) => name.clone(),
            Target::AnyOf(prefix) => {
                let candidates: Vec<&String> =
                    self.names.iter().filter(|name| name.starts_with(prefix)).collect();
                pick(&candidates, rng)
                    .map(|name| (*name).clone())
                    .ok_or_else(|| format!("no node matches `{target}`"))?
            }
            Target::ActiveController => match self.cluster.active_controller {
                Some((index, _term)) => format!("controller-{index}"),
                None => return Err("no active controller is known".to_string()),
            },
            Target::AnyLeader => {
                let leaders: Vec<u32> = self
                    .cluster
                    .partitions
                    .values()
                    .filter_map(|p| p.leader)
                    .map(|n| n.0)
                    .collect();
                let leader = pick(&leaders, rng).ok_or("no partition has a known leader")?;
                format!("broker-{leader}")
            }
            Target::LeaderOf { topic, partition } => {
                let tp = TopicPartition::new(topic.clone(), *partition);
                match self.cluster.leader_of(&tp) {
                    Some(leader) => format!("broker-{}", leader.0),
                    None => return Err(format!("{tp} has no known leader")),
                }
            }
            Target::Coordinator => {
                let tp = self.coordinator.as_ref().ok_or("the scenario has no consumer group")?;
                match self.cluster.leader_of(tp) {
                    Some(leader) => format!("broker-{}", leader.0),
                    None => return Err(format!("the coordinator's {tp} has no known leader")),
                }
            }
            Target::FollowerOf { topic, partition } => {
                let tp = TopicPartition::new(topic.clone(), *partition);
                let followers = self.cluster.followers_of(&tp);
                let follower =
                    pick(&followers, rng).ok_or_else(|| format!("{tp} has no known follower"))?;
                format!("broker-{}", follower.0)
            }
        };
        match self.names.contains(&name) {
            true => Ok(name),
            false => Err(format!("`{target}` resolved to `{name}`, which is not a node")),
        }
    }

    /// Several targets, each resolved once; a node named twice counts once (first place).
    pub fn many(&self, texts: &[String], rng: &mut impl Rng) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = Vec::with_capacity(texts.len());
        for text in texts {
            let name = self.one(text, rng)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Brokers and controllers, in name order.
    pub fn servers(&self) -> Vec<String> {
        self.names.iter().filter(|name| is_server(name)).cloned().collect()
    }

    /// `count` distinct random brokers, `first` among them when given.
    pub fn random_brokers(
        &self,
        first: Option<String>,
        count: usize,
        rng: &mut impl Rng,
    ) -> Vec<String> {
        let mut brokers: Vec<String> =
            self.names.iter().filter(|n| n.starts_with("broker-")).cloned().collect();
        brokers.shuffle(rng);
        let mut chosen: Vec<String> = first.into_iter().collect();
        for broker in brokers {
            if chosen.len() >= count {
                break;
            }
            if !chosen.contains(&broker) {
                chosen.push(broker);
            }
        }
        chosen
    }
}

/// Whether a node name is a broker or a controller.
pub fn is_server(name: &str) -> bool {
    name.starts_with("broker-") || name.starts_with("controller-")
}

/// A majority/minority split: (minority, majority). The minority is `given` when it is not
/// empty, else `seed` plus random servers up to floor(n/2).
pub fn split_sides(
    servers: &[String],
    given: &[String],
    seed: Option<&String>,
    rng: &mut impl Rng,
) -> (Vec<String>, Vec<String>) {
    let mut minority: Vec<String> = given.to_vec();
    if minority.is_empty() {
        let size = servers.len() / 2;
        minority.extend(seed.filter(|_| size > 0).cloned());
        let mut others: Vec<&String> = servers.iter().filter(|s| !minority.contains(s)).collect();
        others.shuffle(rng);
        let missing = size.saturating_sub(minority.len());
        minority.extend(others.into_iter().take(missing).cloned());
    }
    let majority = servers.iter().filter(|s| !minority.contains(s)).cloned().collect();
    (minority, majority)
}

/// Jepsen's bridge: two random halves of the servers other than `bridge`.
pub fn bridge_sides(
    servers: &[String],
    bridge: &str,
    rng: &mut impl Rng,
) -> (Vec<String>, Vec<String>) {
    let mut others: Vec<String> = servers.iter().filter(|s| *s != bridge).cloned().collect();
    others.shuffle(rng);
    let right = others.split_off(others.len() / 2);
    (others, right)
}

/// Every directed link between the two sides, both ways, in a fixed order.
pub fn links_across(left: &[String], right: &[String]) -> Vec<(String, String)> {
    let mut links = Vec::with_capacity(left.len() * right.len() * 2);
    for a in left {
        for b in right {
            if a != b {
                links.push((a.clone(), b.clone()));
                links.push((b.clone(), a.clone()));
            }
        }
    }
    links
}

fn pick<'a, T>(items: &'a [T], rng: &mut impl Rng) -> Option<&'a T> {
    match items.len() {
        0 => None,
        len => items.get(rng.gen_range(0..len)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::cluster::PartitionView;
    use kafkasim::types::{Epoch, NodeId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names() -> Vec<String> {
        ["broker-0", "broker-1", "broker-2", "consumer-0", "controller-0", "controller-1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn cluster() -> ClusterView {
        let mut cluster = ClusterView { active_controller: Some((1, 4)), ..Default::default() };
        let view = PartitionView {
            leader: Some(NodeId(2)),
            leader_epoch: Epoch(3),
            partition_epoch: kafkasim::types::PartitionEpoch(5),
            replicas: vec![NodeId(0), NodeId(1), NodeId(2)],
            isr: vec![NodeId(0), NodeId(2)],
        };
        cluster.update_partition(&TopicPartition::new("events", 0), view);
        cluster
    }

    #[test]
    fn cluster_roles_resolve_against_the_view() {
        let (names, cluster) = (names(), cluster());
        let resolver = Resolver { names: &names, cluster: &cluster, coordinator: None };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        assert_eq!(resolver.one("active-controller", &mut rng), Ok("controller-1".into()));
        assert_eq!(resolver.one("leader-of:events:0", &mut rng), Ok("broker-2".into()));
        assert_eq!(resolver.one("any-leader", &mut rng), Ok("broker-2".into()));
        for _ in 0..20 {
            let follower = resolver.one("follower-of:events:0", &mut rng).expect("has followers");
            assert!(["broker-0", "broker-1"].contains(&follower.as_str()), "{follower}");
            let controller = resolver.one("any-controller", &mut rng).expect("two controllers");
            assert!(controller.starts_with("controller-"));
        }
    }

    #[test]
    fn unresolvable_roles_are_errors_not_panics() {
        let names = names();
        let empty = ClusterView::default();
        let resolver = Resolver { names: &names, cluster: &empty, coordinator: None };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for text in [
            "active-controller",
            "any-leader",
            "leader-of:events:0",
            "follower-of:events:0",
            "any-producer",
            "broker-9",
            "nonsense",
        ] {
            assert!(resolver.one(text, &mut rng).is_err(), "`{text}` must not resolve");
        }
    }

    #[test]
    fn many_dedupes_and_random_brokers_are_distinct() {
        let (names, cluster) = (names(), cluster());
        let resolver = Resolver { names: &names, cluster: &cluster, coordinator: None };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let texts = ["broker-2".to_string(), "leader-of:events:0".to_string()];
        assert_eq!(resolver.many(&texts, &mut rng), Ok(vec!["broker-2".to_string()]));
        let picked = resolver.random_brokers(Some("broker-1".into()), 2, &mut rng);
        assert_eq!(picked.len(), 2);
        assert_eq!(picked[0], "broker-1");
        assert_ne!(picked[0], picked[1]);
        assert_eq!(resolver.random_brokers(None, 10, &mut rng).len(), 3, "only 3 brokers");
        assert_eq!(resolver.servers().len(), 5);
    }

    #[test]
    fn split_minority_holds_the_seed_and_is_floor_half() {
        let servers: Vec<String> = (0..5).map(|i| format!("broker-{i}")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20 {
            let seed = "broker-3".to_string();
            let (minority, majority) = split_sides(&servers, &[], Some(&seed), &mut rng);
            assert_eq!((minority.len(), majority.len()), (2, 3));
            assert!(minority.contains(&seed));
            assert!(minority.iter().all(|m| !majority.contains(m)));
        }
        let given = vec!["broker-0".to_string()];
        let (minority, majority) = split_sides(&servers, &given, None, &mut rng);
        assert_eq!(minority, given);
        assert_eq!(majority.len(), 4);
    }

    #[test]
    fn bridge_halves_exclude_the_bridge_and_links_go_both_ways() {
        let servers: Vec<String> = (0..5).map(|i| format!("broker-{i}")).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (left, right) = bridge_sides(&servers, "broker-2", &mut rng);
        assert_eq!((left.len(), right.len()), (2, 2));
        assert!(!left.contains(&"broker-2".to_string()) && !right.contains(&"broker-2".into()));
        let links = links_across(&left, &right);
        assert_eq!(links.len(), 8);
        assert!(links.contains(&(left[0].clone(), right[0].clone())));
        assert!(links.contains(&(right[0].clone(), left[0].clone())));
        assert!(links.iter().all(|(a, b)| a != "broker-2" && b != "broker-2"));
    }
}
