//! Why a static member was fenced, read from the node event log.
//!
//! Kafka's classic group protocol stores a generation's member ids only with the leader's
//! SyncGroup (`storeGroup` in `GroupCoordinator.doSyncGroup`; Kafka 4's
//! `GroupMetadataManager`). A coordinator that loses its offsets partition between the
//! join and that store leaves its successor with the previous generation, whose member ids
//! the static members no longer hold. A member rejoining with its newer id is then a
//! "fenced" instance to the successor (`ClassicGroup.isStaticMemberFenced`: the stored id
//! for its `group.instance.id` differs), which answers FENCED_INSTANCE_ID, and the Java
//! client stops on it (`AbstractCoordinator`'s JoinGroup handler treats it as fatal). No
//! configuration promises otherwise: a group of static members may stop for good after a
//! coordinator failover. The run's `group lag` is that consequence when every member of
//! the group stopped so; a fence this does not explain is left to the other checks.

use std::collections::BTreeSet;

use crate::runner::Event;

/// The name of the outcome in judgements (`must_find`, allowed reasons, reports).
pub const NAME: &str = "static-member-fenced";

/// One member fenced by FENCED_INSTANCE_ID, with what the events say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub consumer: String,
    pub time_ns: u64,
    /// Why Kafka fences it (None: the events do not say).
    pub explained: Option<String>,
}

/// Every `member-fenced` event, each explained when a coordinator loaded the group, after
/// the member last joined, at an older generation that does not hold the member's id.
pub fn fences(events: &[Event], group: &str) -> Vec<Fence> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == "member-fenced")
        .map(|(i, fenced)| Fence {
            consumer: fenced.node.clone(),
            time_ns: fenced.time_ns,
            explained: explain(&events[..i], &fenced.node, group),
        })
        .collect()
}

/// The explanation of a fence of `consumer`, from the events before it.
fn explain(before: &[Event], consumer: &str, group: &str) -> Option<String> {
    let joined = before.iter().rposition(|e| e.kind == "joined-group" && e.node == consumer)?;
    let field = |e: &Event, name: &str| e.fields.get(name).cloned().unwrap_or_default();
    let generation = field(&before[joined], "generation").parse::<i64>().ok()?;
    let member = field(&before[joined], "member");
    before[joined + 1..].iter().rev().find_map(|e| {
        let loaded = e.kind == "group-loaded" && field(e, "group") == group;
        let loaded_generation = field(e, "generation").parse::<i64>().ok()?;
        let members: BTreeSet<String> =
            field(e, "members").split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
        (loaded && loaded_generation < generation && !members.contains(&member)).then(|| {
            format!(
                "{consumer} joined generation {generation} as {member}, which no coordinator \
                 stored: {} took over at {:.3} s with generation {loaded_generation} and fenced \
                 its newer member id (Kafka's classic protocol stores member ids only at \
                 SyncGroup and answers FENCED_INSTANCE_ID, fatal to the client)",
                e.node,
                e.time_ns as f64 / 1e9
            )
        })
    })
}

/// The reason of the first fence when the events explain every one, else None.
pub fn all_explained(fences: &[Fence]) -> Option<String> {
    let every_fence = fences.iter().all(|f| f.explained.is_some());
    every_fence.then(|| fences.first().and_then(|f| f.explained.clone())).flatten()
}

/// Whether every consumer of `consumers` was fenced (so the group cannot catch up).
pub fn group_stopped(fences: &[Fence], consumers: &[String]) -> bool {
    let fenced: BTreeSet<&str> = fences.iter().map(|f| f.consumer.as_str()).collect();
    !consumers.is_empty() && consumers.iter().all(|c| fenced.contains(c.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_ns: u64, node: &str, kind: &str, fields: &[(&str, &str)]) -> Event {
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Event { time_ns, node: node.to_string(), kind: kind.to_string(), fields }
    }

    fn joined(time_ns: u64, consumer: &str, generation: &str, member: &str) -> Event {
        let fields = [("generation", generation), ("member", member), ("leader", "false")];
        event(time_ns, consumer, "joined-group", &fields)
    }

    fn loaded(time_ns: u64, generation: &str, members: &str) -> Event {
        let fields = [("group", "workers"), ("generation", generation), ("members", members)];
        event(time_ns, "broker-2", "group-loaded", &fields)
    }

    /// Swarm seed 6155: generation 3 was never stored, the successor loaded generation 1.
    #[test]
    fn a_fence_after_a_load_of_an_older_generation_is_explained() {
        let events = vec![
            joined(1, "consumer-0", "1", "c0-a"),
            joined(2, "consumer-0", "3", "c0-b"),
            loaded(3, "1", "c0-a"),
            event(4, "consumer-0", "member-fenced", &[]),
        ];
        let found = fences(&events, "workers");
        assert_eq!(found.len(), 1);
        let reason = found[0].explained.as_deref().expect("explained");
        assert!(reason.contains("generation 3 as c0-b"), "{reason}");
        let all = ["consumer-0".to_string()];
        assert!(all_explained(&found).is_some() && group_stopped(&found, &all));
        let more = ["consumer-0".to_string(), "consumer-1".to_string()];
        assert!(!group_stopped(&found, &more), "consumer-1 still consumes");
    }

    /// A load before the member's join, of the member's own generation, or of another
    /// group, says nothing about the fence.
    #[test]
    fn a_fence_no_load_explains_stays_unexplained() {
        let cases = [
            vec![loaded(1, "1", "c0-a"), joined(2, "consumer-0", "3", "c0-b")],
            vec![joined(1, "consumer-0", "3", "c0-b"), loaded(2, "3", "c0-b")],
            vec![
                joined(1, "consumer-0", "3", "c0-b"),
                event(2, "broker-2", "group-loaded", &[("group", "other"), ("generation", "1")]),
            ],
        ];
        for mut events in cases {
            events.push(event(9, "consumer-0", "member-fenced", &[]));
            let found = fences(&events, "workers");
            assert_eq!(found[0].explained, None, "{events:?}");
            assert_eq!(all_explained(&found), None);
        }
    }
}
