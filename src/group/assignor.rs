//! Partition assignors the group leader runs in SyncGroup: range, round-robin and sticky,
//! with Kafka's semantics. Pure functions of the members' subscriptions and the topics'
//! partition counts; the coordinator never runs them (Kafka's leader member does).

use crate::types::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

/// The assignors Kafka ships for consumers (partition.assignment.strategy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AssignorKind {
    Range,
    RoundRobin,
    Sticky,
}

impl AssignorKind {
    /// Kafka's protocol names.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::Sticky => "sticky",
        }
    }

    pub fn from_name(name: &str) -> Option<AssignorKind> {
        [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub topics: Vec<String>,
    /// What the member owned in the previous generation (used by the sticky assignor).
    pub owned: Vec<TopicPartition>,
}

impl From<&crate::protocol::JoinGroupMember> for MemberSubscription {
    /// The subscription a JoinGroup response hands the leader for one member.
    fn from(m: &crate::protocol::JoinGroupMember) -> Self {
        MemberSubscription {
            member_id: m.member_id.clone(),
            topics: m.protocol.topics.clone(),
            owned: m.protocol.owned_partitions.clone(),
        }
    }
}

/// member id -> its partitions, sorted. Every member appears, possibly with nothing.
pub type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Assign the partitions of every subscribed topic that exists in `partitions_per_topic`.
pub fn assign(
    kind: AssignorKind,
    members: &[MemberSubscription],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> Assignment {
    let mut out: Assignment = members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect();
    match kind {
        AssignorKind::Range => range(members, partitions_per_topic, &mut out),
        AssignorKind::RoundRobin => round_robin(members, partitions_per_topic, &mut out),
        AssignorKind::Sticky => sticky(members, partitions_per_topic, &mut out),
    }
    for parts in out.values_mut() {
        parts.sort();
    }
    out
}

/// Per topic, members subscribed to it sorted by id; each gets n/m, the first n%m one more.
fn range(members: &[MemberSubscription], ppt: &BTreeMap<String, u32>, out: &mut Assignment) {
    for (topic, &count) in ppt {
        let subscribed: BTreeSet<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        let m = subscribed.len() as u32;
        let (per, extra) = (count / m, count % m);
        let mut next = 0u32;
        for (i, member) in subscribed.into_iter().enumerate() {
            let take = per + u32::from((i as u32) < extra);
            let parts = out.get_mut(member).expect("every member has an entry");
            parts.extend((next..next + take).map(|p| TopicPartition::new(topic.clone(), p)));
            next += take;
        }
        assert_eq!(next, count, "range assigned {next} of {count} partitions of {topic}");
    }
}

/// All partitions sorted by (topic, partition), dealt to the members sorted by id in turn,
/// skipping members not subscribed to the partition's topic.
fn round_robin(members: &[MemberSubscription], ppt: &BTreeMap<String, u32>, out: &mut Assignment) {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    if sorted.is_empty() {
        return;
    }
    let mut cursor = 0usize;
    for tp in all_partitions(members, ppt) {
        // At most one full turn: some member is subscribed, all_partitions guarantees it.
        for step in 0..sorted.len() {
            let member = sorted[(cursor + step) % sorted.len()];
            if member.topics.contains(&tp.topic) {
                out.get_mut(&member.member_id).expect("member entry").push(tp.clone());
                cursor = (cursor + step + 1) % sorted.len();
                break;
            }
        }
    }
}

/// Keep each member's previous partitions up to its fair share, then give the rest to the
/// least loaded subscribed member. With equal subscriptions the result is balanced within
/// one and only partitions above a member's share (or of departed members) move.
fn sticky(members: &[MemberSubscription], ppt: &BTreeMap<String, u32>, out: &mut Assignment) {
    let all = all_partitions(members, ppt);
    let active = members.iter().filter(|m| !m.topics.is_empty()).count();
    if active == 0 {
        return;
    }
    let floor = all.len() / active;
    let mut ceil_slots = all.len() % active;
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let valid: BTreeSet<&TopicPartition> = all.iter().collect();
    let mut claimed: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut keep: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
    for m in &sorted {
        let mut owned: Vec<TopicPartition> = m
            .owned
            .iter()
            .filter(|tp| valid.contains(tp) && m.topics.contains(&tp.topic))
            .filter(|tp| !claimed.contains(*tp))
            .cloned()
            .collect();
        owned.sort();
        owned.dedup();
        owned.truncate(floor + 1);
        for tp in &owned {
            claimed.insert(tp.clone());
        }
        keep.insert(m.member_id.as_str(), owned);
    }
    // Members holding floor+1 use up the ceiling slots in id order; the rest drop to floor.
    for m in &sorted {
        let kept = keep.get_mut(m.member_id.as_str()).expect("kept entry");
        if kept.len() > floor {
            if ceil_slots > 0 {
                ceil_slots -= 1;
            } else {
                for tp in kept.drain(floor..) {
                    claimed.remove(&tp);
                }
            }
        }
    }
    for (member, parts) in keep {
        out.get_mut(member).expect("member entry").extend(parts);
    }
    for tp in all.into_iter().filter(|tp| !claimed.contains(tp)) {
        let target = sorted
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .min_by_key(|m| (out[&m.member_id].len(), m.member_id.clone()))
            .expect("all_partitions only lists subscribed topics");
        out.get_mut(&target.member_id).expect("member entry").push(tp);
    }
}

/// Every partition of every topic some member subscribes to, sorted.
fn all_partitions(
    members: &[MemberSubscription],
    ppt: &BTreeMap<String, u32>,
) -> Vec<TopicPartition> {
    let subscribed: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    ppt.iter()
        .filter(|(t, _)| subscribed.contains(t))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: Vec::new(),
        }
    }

    fn tps(topic: &str, ps: &[u32]) -> Vec<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new(topic, p)).collect()
    }

    #[test]
    fn range_gives_leading_members_the_extra_partitions_per_topic() {
        let members = [member("c", &["t"]), member("a", &["t"]), member("b", &["t"])];
        let ppt = BTreeMap::from([("t".to_string(), 7)]);
        let a = assign(AssignorKind::Range, &members, &ppt);
        assert_eq!(a["a"], tps("t", &[0, 1, 2]));
        assert_eq!(a["b"], tps("t", &[3, 4]));
        assert_eq!(a["c"], tps("t", &[5, 6]));
    }

    #[test]
    fn round_robin_deals_sorted_partitions_in_turn() {
        let members = [member("b", &["t", "u"]), member("a", &["t", "u"])];
        let ppt = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 2)]);
        let a = assign(AssignorKind::RoundRobin, &members, &ppt);
        let mut expect_a = tps("t", &[0, 2]);
        expect_a.extend(tps("u", &[1]));
        assert_eq!(a["a"], expect_a);
        let mut expect_b = tps("t", &[1]);
        expect_b.extend(tps("u", &[0]));
        assert_eq!(a["b"], expect_b);
    }

    #[test]
    fn assignor_names_round_trip() {
        for k in [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky] {
            assert_eq!(AssignorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(AssignorKind::from_name("cooperative-sticky"), None);
    }

    fn owners(a: &Assignment) -> BTreeMap<TopicPartition, String> {
        let mut o = BTreeMap::new();
        for (m, parts) in a {
            for tp in parts {
                assert!(o.insert(tp.clone(), m.clone()).is_none(), "{tp} assigned twice");
            }
        }
        o
    }

    fn spread(a: &Assignment) -> usize {
        let max = a.values().map(Vec::len).max().unwrap_or(0);
        let min = a.values().map(Vec::len).min().unwrap_or(0);
        max - min
    }

    proptest! {
        #[test]
        fn every_partition_has_exactly_one_owner_and_balance_holds(
            n_members in 1usize..7,
            topics in proptest::collection::vec(0u32..9, 1..4),
        ) {
            let names: Vec<String> = (0..topics.len()).map(|i| format!("t{i}")).collect();
            let ppt: BTreeMap<String, u32> =
                names.iter().cloned().zip(topics.iter().copied()).collect();
            let total: u32 = topics.iter().sum();
            let topic_refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let members: Vec<MemberSubscription> =
                (0..n_members).map(|i| member(&format!("m{i}"), &topic_refs)).collect();
            for kind in [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky] {
                let a = assign(kind, &members, &ppt);
                let o = owners(&a);
                prop_assert_eq!(o.len() as u32, total, "{:?} lost partitions", kind);
                if kind != AssignorKind::Range {
                    prop_assert!(spread(&a) <= 1, "{:?} unbalanced: {:?}", kind, a);
                }
            }
        }

        #[test]
        fn sticky_moves_only_the_leavers_partitions(
            n_members in 2usize..7,
            partitions in 1u32..24,
            leaver in 0usize..7,
        ) {
            let ppt = BTreeMap::from([("t".to_string(), partitions)]);
            let mut members: Vec<MemberSubscription> =
                (0..n_members).map(|i| member(&format!("m{i}"), &["t"])).collect();
            let before = assign(AssignorKind::Sticky, &members, &ppt);
            let leaver_id = format!("m{}", leaver % n_members);
            members.retain(|m| m.member_id != leaver_id);
            for m in &mut members {
                m.owned = before[&m.member_id].clone();
            }
            let after = assign(AssignorKind::Sticky, &members, &ppt);
            prop_assert!(spread(&after) <= 1);
            prop_assert_eq!(owners(&after).len() as u32, partitions);
            let moved = owners(&after)
                .iter()
                .filter(|(tp, m)| owners(&before)[*tp] != **m)
                .count();
            prop_assert_eq!(moved, before[&leaver_id].len(), "before {:?} after {:?}", before, after);
        }
    }
}
