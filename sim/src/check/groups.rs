//! Consumer groups (CORRECTNESS.md invariant 7 and the "zombie commit" / "commit before
//! process" rows of the known-bugs table).
//!
//! Two sources, two halves:
//! - live, from the coordinators' [`GroupEvent`]s (fed through `ClusterEvent::Group`):
//!   [`GroupChecker`] reports `stale-commit` and `two-owners` the moment an event shows one,
//!   and counts generations, rebalances and removed members;
//! - from the history: `realtime-commit-order` (an ok commit below an earlier ok commit of
//!   the same key that completed before it was invoked), and the per-group figures that
//!   only the clients see (commits ok/fail/info, records processed twice).
//!
//! At-least-once for the group is the existing `unseen` anomaly (see `durability`), and
//! records processed twice are a figure, never an anomaly: that is at-least-once working.
//! The history names no group: every commit and subscribed poll is the scenario's one group.

use std::collections::{BTreeMap, BTreeSet};

use kafkasim::group::GroupEvent;
use kafkasim::types::Epoch;
use serde::{Deserialize, Serialize};

use super::cluster::{InvariantKind, Violation};
use super::{Anomaly, AnomalyKind, Collector};
use crate::history::{History, Key, OpF, OpType, OpValue};

/// How many removed members a group's figures list by name (all are counted by reason).
const REMOVED_LISTED_MAX: usize = 20;

/// One group's figures for the run summary (summary.md and results.json).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFigures {
    /// Distinct generations the coordinators started.
    pub generations: u64,
    /// Generation starts after the first.
    pub rebalances: u64,
    /// Members removed, per reason (session timeout, leave, ...).
    pub members_removed: BTreeMap<String, u64>,
    /// The first removed members, as "member (reason)".
    pub members_removed_first: Vec<String>,
    /// Commits the coordinators accepted, and of those the stale ones (generation check off).
    pub commits_accepted: u64,
    pub stale_commits_accepted: u64,
    /// Commit ops in the history by completion.
    pub commits_ok: u64,
    pub commits_fail: u64,
    pub commits_info: u64,
    /// Distinct (key, offset) returned by ok polls of subscribed processes more than once,
    /// and how many extra times in all (at-least-once redelivery; never an anomaly).
    pub duplicates_processed: u64,
    pub redeliveries: u64,
    /// After the quiet phase, per key: committed offset, end offset, lag (end - committed).
    pub final_lag: BTreeMap<Key, Lag>,
    /// Events from coordinators a newer one had replaced (zombie leaders of the offsets
    /// partition), which the checker ignored.
    #[serde(default)]
    pub deposed_coordinator_events: u64,
}

/// One key's lag after the quiet phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    pub committed: Option<u64>,
    pub end: u64,
    /// end - committed (end when nothing was committed).
    pub lag: u64,
}

/// The live group checker: folds every coordinator's [`GroupEvent`]s per group.
#[derive(Clone, Debug, Default)]
pub struct GroupChecker {
    groups: BTreeMap<String, GroupState>,
}

#[derive(Clone, Debug, Default)]
struct GroupState {
    generations: BTreeSet<i32>,
    /// generation -> its members (from GenerationStarted).
    members: BTreeMap<i32, BTreeSet<String>>,
    /// generation -> key -> owner (from AssignmentSynced).
    owners: BTreeMap<i32, BTreeMap<Key, String>>,
    /// (generation, old member id) -> the id that replaced it (static membership).
    replaced: BTreeMap<(i32, String), String>,
    removed: BTreeMap<String, u64>,
    removed_first: Vec<String>,
    commits_accepted: u64,
    stale_commits_accepted: u64,
    /// (generation, key, member) already reported as two-owners, so a zombie committing
    /// every second is one violation, not thousands.
    two_owners_reported: BTreeSet<(i32, Key, String)>,
    /// (commit generation, member) already reported as stale-commit.
    stale_reported: BTreeSet<(i32, String)>,
    final_lag: BTreeMap<Key, Lag>,
    /// The newest coordinator epoch whose events were seen.
    coordinator_epoch: Option<Epoch>,
    /// Events of deposed coordinators, ignored.
    deposed_events: u64,
}

/// The group an event is about.
fn group_of(event: &GroupEvent) -> &str {
    match event {
        GroupEvent::GenerationStarted { group_id, .. }
        | GroupEvent::AssignmentSynced { group_id, .. }
        | GroupEvent::MemberRemoved { group_id, .. }
        | GroupEvent::StaticMemberReplaced { group_id, .. }
        | GroupEvent::GroupLoaded { group_id, .. }
        | GroupEvent::CommitAccepted { group_id, .. } => group_id,
    }
}

impl GroupState {
    /// The new id inherits the old one's membership and partitions. A coordinator that took
    /// over may replace an id the checker saw replaced already: its predecessor's later
    /// replacement never reached the log it loaded (`swarm --variant commit-before-process`
    /// seed 126: 0.3 -> 0.4 on broker-1, then 0.3 -> 1.0 on broker-2), so the id that stands
    /// for `old` now is the end of that chain.
    fn static_member_replaced(&mut self, generation: i32, old: &str, new: &str) {
        let mut current = old.to_string();
        let mut hops = 0;
        while let Some(next) = self.replaced.get(&(generation, current.clone())) {
            if self.members.get(&generation).is_some_and(|m| m.contains(&current)) {
                break;
            }
            current = next.clone();
            hops += 1;
            if hops > self.replaced.len() {
                break; // a cycle: no event sequence may panic the checker
            }
        }
        self.replaced.insert((generation, old.to_string()), new.to_string());
        if let Some(members) = self.members.get_mut(&generation) {
            if members.remove(&current) {
                members.insert(new.to_string());
            }
        }
        if let Some(owners) = self.owners.get_mut(&generation) {
            for owner in owners.values_mut().filter(|o| **o == current) {
                *owner = new.to_string();
            }
        }
    }
}

impl GroupChecker {
    pub fn new() -> GroupChecker {
        GroupChecker::default()
    }

    /// `observe` for an event of the coordinator at `coordinator_epoch`. A coordinator
    /// deposed by a newer one (a zombie leader of the offsets partition that has not heard
    /// yet) still expires members and starts generations in its memory, but none of it can
    /// become durable: its events are counted and otherwise ignored.
    pub fn observe_from(&mut self, coordinator_epoch: Epoch, event: &GroupEvent) -> Vec<Violation> {
        let group = self.group(group_of(event));
        if group.coordinator_epoch.is_some_and(|newest| coordinator_epoch < newest) {
            group.deposed_events += 1;
            return Vec::new();
        }
        group.coordinator_epoch = Some(coordinator_epoch);
        self.observe(event)
    }

    /// The violations `event` shows (empty when it breaks nothing).
    pub fn observe(&mut self, event: &GroupEvent) -> Vec<Violation> {
        match event {
            GroupEvent::GenerationStarted { group_id, generation_id, leader: _, members } => {
                let group = self.group(group_id);
                group.generations.insert(*generation_id);
                group.members.insert(*generation_id, members.iter().cloned().collect());
                Vec::new()
            }
            GroupEvent::AssignmentSynced { group_id, generation_id, assignment } => {
                self.assignment_synced(group_id, *generation_id, assignment)
            }
            // What a new coordinator knows is what an earlier one stored, each member id
            // the end of a replacement chain the checker already follows (adding the loaded
            // ids as members would cut those chains: swarm seed 2870).
            GroupEvent::GroupLoaded { .. } => Vec::new(),
            GroupEvent::MemberRemoved { group_id, member_id, reason } => {
                let group = self.group(group_id);
                *group.removed.entry((*reason).to_owned()).or_insert(0) += 1;
                if group.removed_first.len() < REMOVED_LISTED_MAX {
                    group.removed_first.push(format!("{member_id} ({reason})"));
                }
                Vec::new()
            }
            GroupEvent::StaticMemberReplaced {
                group_id,
                generation_id,
                old_member_id,
                new_member_id,
            } => {
                let group = self.group(group_id);
                group.static_member_replaced(*generation_id, old_member_id, new_member_id);
                Vec::new()
            }
            GroupEvent::CommitAccepted {
                group_id,
                member_id,
                commit_generation_id,
                group_generation_id,
                offsets,
            } => {
                let keys: Vec<Key> = offsets.iter().map(|(tp, _)| tp.to_string()).collect();
                let commit = Commit {
                    member: member_id,
                    commit_generation: *commit_generation_id,
                    group_generation: *group_generation_id,
                    keys: &keys,
                };
                self.commit_accepted(group_id, &commit)
            }
        }
    }

    /// Records the world's end-of-run reading for `group_id`: per key, the committed offset
    /// (None if never committed) and the end offset (the HW) after the quiet phase.
    pub fn set_final_lag(&mut self, group_id: &str, lag: BTreeMap<Key, (Option<u64>, u64)>) {
        self.group(group_id).final_lag = lag
            .into_iter()
            .map(|(key, (committed, end))| {
                let lag = end.saturating_sub(committed.unwrap_or(0));
                (key, Lag { committed, end, lag })
            })
            .collect();
    }

    /// The live half of every group's figures.
    pub fn figures(&self) -> BTreeMap<String, GroupFigures> {
        self.groups
            .iter()
            .map(|(id, g)| {
                let figures = GroupFigures {
                    generations: g.generations.len() as u64,
                    rebalances: (g.generations.len() as u64).saturating_sub(1),
                    members_removed: g.removed.clone(),
                    members_removed_first: g.removed_first.clone(),
                    commits_accepted: g.commits_accepted,
                    stale_commits_accepted: g.stale_commits_accepted,
                    final_lag: g.final_lag.clone(),
                    deposed_coordinator_events: g.deposed_events,
                    ..GroupFigures::default()
                };
                (id.clone(), figures)
            })
            .collect()
    }

    fn group(&mut self, group_id: &str) -> &mut GroupState {
        self.groups.entry(group_id.to_owned()).or_default()
    }

    /// two-owners: a key handed to two members in one generation's assignment.
    fn assignment_synced(
        &mut self,
        group_id: &str,
        generation: i32,
        assignment: &BTreeMap<String, Vec<kafkasim::types::TopicPartition>>,
    ) -> Vec<Violation> {
        let mut owners: BTreeMap<Key, String> = BTreeMap::new();
        let mut violations = Vec::new();
        for (member, tps) in assignment {
            for tp in tps {
                let key = tp.to_string();
                match owners.get(&key) {
                    Some(first) if first != member => violations.push(Violation {
                        kind: InvariantKind::TwoOwners,
                        detail: format!(
                            "group {group_id} generation {generation}: {key} assigned to both \
                             {first} and {member}"
                        ),
                    }),
                    Some(_) => {}
                    None => {
                        owners.insert(key, member.clone());
                    }
                }
            }
        }
        self.group(group_id).owners.insert(generation, owners);
        violations
    }

    fn commit_accepted(&mut self, group_id: &str, commit: &Commit<'_>) -> Vec<Violation> {
        let group = self.group(group_id);
        group.commits_accepted += 1;
        let mut violations = Vec::new();
        let Commit { member, commit_generation, group_generation, keys } = *commit;
        // Membership is judged only for a generation whose start was seen (a coordinator
        // that took over mid-run may not have reported it).
        let unknown_member =
            group.members.get(&group_generation).is_some_and(|members| !members.contains(member));
        if commit_generation != group_generation || unknown_member {
            group.stale_commits_accepted += 1;
            if group.stale_reported.insert((commit_generation, member.to_owned())) {
                let why = if commit_generation != group_generation {
                    format!("its generation {commit_generation} is not the group's")
                } else {
                    "the member is not in the group".to_owned()
                };
                violations.push(Violation {
                    kind: InvariantKind::StaleCommit,
                    detail: format!(
                        "group {group_id}: commit of {} by {member} (generation \
                         {commit_generation}) accepted in generation {group_generation}: {why}",
                        keys.join(", ")
                    ),
                });
            }
        }
        // The commit lands as an owner of its keys in the group's generation.
        let Some(owners) = group.owners.get(&group_generation) else { return violations };
        for key in keys {
            let Some(owner) = owners.get(key) else { continue };
            if owner == member {
                continue;
            }
            if group.two_owners_reported.insert((group_generation, key.clone(), member.to_owned()))
            {
                violations.push(Violation {
                    kind: InvariantKind::TwoOwners,
                    detail: format!(
                        "group {group_id} generation {group_generation}: {key} is owned by \
                         {owner}, yet a commit for it by {member} (generation \
                         {commit_generation}) was accepted"
                    ),
                });
            }
        }
        violations
    }
}

/// A CommitAccepted event, borrowed.
#[derive(Clone, Copy)]
struct Commit<'a> {
    member: &'a str,
    commit_generation: i32,
    group_generation: i32,
    keys: &'a [Key],
}

/// Adds the history's half of the figures to `group_id`'s (creating it if the coordinators
/// reported nothing): commits by completion and records processed twice.
pub fn add_history_figures(
    history: &History,
    group_id: &str,
    figures: &mut BTreeMap<String, GroupFigures>,
) {
    let mut subscribed: BTreeSet<u64> = BTreeSet::new();
    let mut commits = [0u64; 3];
    let mut reads: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    for op in history.ops() {
        match (op.f, op.op_type, &op.value) {
            (OpF::Subscribe, OpType::Invoke, _) => {
                subscribed.insert(op.process);
            }
            (OpF::Commit, OpType::Ok, _) => commits[0] += 1,
            (OpF::Commit, OpType::Fail, _) => commits[1] += 1,
            (OpF::Commit, OpType::Info, _) => commits[2] += 1,
            (OpF::Poll, OpType::Ok, OpValue::Poll(micros)) if subscribed.contains(&op.process) => {
                for records in micros.iter().filter_map(|m| m.records.as_ref()) {
                    for (key, run) in records {
                        for r in run {
                            *reads.entry((key.as_str(), r.offset)).or_insert(0) += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if subscribed.is_empty() && commits == [0; 3] && !figures.contains_key(group_id) {
        return;
    }
    let group = figures.entry(group_id.to_owned()).or_default();
    [group.commits_ok, group.commits_fail, group.commits_info] = commits;
    group.duplicates_processed = reads.values().filter(|&&n| n > 1).count() as u64;
    group.redeliveries = reads.values().map(|n| n.saturating_sub(1)).sum();
}

/// realtime-commit-order: per key, an ok commit B of offset b, invoked after an ok commit A
/// of offset a > b had completed. The group's committed position went back in real time,
/// so records between b and a are processed again (or, if A's member was a zombie, A had
/// claimed records nobody processed). Commits that overlap in time are not ordered.
///
/// One backwards move is Kafka's own: a commit whose outcome its member never learned
/// (info) may land any time later, its request still in flight after the member timed it
/// out. The coordinator checks only the member and its generation
/// (`OffsetMetadataManager.commitOffset` → `validateOffsetCommit`), and offsets are
/// last-writer-wins (`OffsetMetadataManager.replay` → `updateOffset`), so such a commit C
/// landing after A puts the group back to c, and the next owner resumes from there. B is
/// excused only when an unknown commit C of the key can be that landing: invoked before B,
/// c <= b, and of a generation that was current after A landed and before B's member
/// resumed (A's generation <= C's <= B's): the coordinator refuses C in any other
/// generation (group-safe seeds 674, 1404, 1487, 1834, 1858).
pub(crate) fn check_commit_order(history: &History, out: &mut Collector) {
    let unknown = UnknownCommits::of(history);
    // key -> the highest ok commit completed so far.
    let mut highest: BTreeMap<&str, OkCommit> = BTreeMap::new();
    // process -> (invoke, the highest ok commits of its keys when it was invoked).
    let mut open: BTreeMap<u64, (Invoked, BTreeMap<&str, OkCommit>)> = BTreeMap::new();
    for op in history.ops() {
        let OpValue::Commit(offsets) = &op.value else {
            if op.f == OpF::Crash {
                open.remove(&op.process);
            }
            continue;
        };
        if op.op_type == OpType::Invoke {
            let before = offsets
                .keys()
                .filter_map(|k| highest.get(k.as_str()).map(|h| (k.as_str(), *h)))
                .collect();
            open.insert(
                op.process,
                (Invoked { index: op.index, generation: op.generation() }, before),
            );
            continue;
        }
        let Some((invoked, before)) = open.remove(&op.process) else { continue };
        if op.op_type != OpType::Ok {
            continue;
        }
        let this = |offset| OkCommit { offset, invoked, completion: op.index, process: op.process };
        for (key, &offset) in offsets {
            let went_back = before.get(key.as_str()).filter(|a| offset < a.offset);
            if let Some(earlier) = went_back.filter(|a| !unknown.excuses(key, a, &this(offset))) {
                push_went_back(out, key, earlier, &this(offset));
            }
            let entry = highest.entry(key.as_str()).or_insert(this(offset));
            if offset > entry.offset {
                *entry = this(offset);
            }
        }
    }
}

fn push_went_back(out: &mut Collector, key: &str, earlier: &OkCommit, later: &OkCommit) {
    out.push(AnomalyKind::RealtimeCommitOrder, || {
        Anomaly::new(
            key,
            format!(
                "process {} committed {key} at {} (ops {}-{}), invoked after process {}'s \
                 commit at {} completed (op {})",
                later.process,
                later.offset,
                later.invoked.index,
                later.completion,
                earlier.process,
                earlier.offset,
                earlier.completion
            ),
        )
        .offsets(vec![earlier.offset, later.offset])
        .ops([earlier.invoked.index, earlier.completion, later.invoked.index, later.completion])
        .process(later.process)
    });
}

/// A commit invocation: its op index and the member's generation.
#[derive(Clone, Copy, Debug)]
struct Invoked {
    index: u64,
    generation: Option<i32>,
}

/// An ok commit of one key.
#[derive(Clone, Copy, Debug)]
struct OkCommit {
    offset: u64,
    invoked: Invoked,
    completion: u64,
    process: u64,
}

/// Per key, the commits whose outcome their member never learned (info, or never
/// completed): each may have landed at any time after its invocation.
struct UnknownCommits<'h> {
    by_key: BTreeMap<&'h str, Vec<(Invoked, u64)>>,
}

impl<'h> UnknownCommits<'h> {
    fn of(history: &'h History) -> UnknownCommits<'h> {
        let mut open: BTreeMap<u64, (Invoked, &BTreeMap<Key, u64>)> = BTreeMap::new();
        let mut unknown = Vec::new();
        for op in history.ops() {
            match (&op.value, op.op_type) {
                (OpValue::Commit(offsets), OpType::Invoke) => {
                    let invoked = Invoked { index: op.index, generation: op.generation() };
                    if let Some(left) = open.insert(op.process, (invoked, offsets)) {
                        unknown.push(left);
                    }
                }
                (OpValue::Commit(_), OpType::Info) => unknown.extend(open.remove(&op.process)),
                (OpValue::Commit(_), _) => {
                    open.remove(&op.process);
                }
                _ if op.f == OpF::Crash => unknown.extend(open.remove(&op.process)),
                _ => {}
            }
        }
        unknown.extend(open.into_values());
        let mut by_key: BTreeMap<&str, Vec<(Invoked, u64)>> = BTreeMap::new();
        for (invoked, offsets) in unknown {
            for (key, &offset) in offsets {
                by_key.entry(key.as_str()).or_default().push((invoked, offset));
            }
        }
        UnknownCommits { by_key }
    }

    /// Whether some unknown commit C of `key` can explain `later` going below `earlier`:
    /// invoked before `later`, c <= its offset, generation between the two.
    fn excuses(&self, key: &str, earlier: &OkCommit, later: &OkCommit) -> bool {
        let Some(commits) = self.by_key.get(key) else { return false };
        let (Some(from), Some(to)) = (earlier.invoked.generation, later.invoked.generation) else {
            return false;
        };
        commits.iter().any(|(c, offset)| {
            c.index < later.invoked.index
                && *offset <= later.offset
                && c.generation.is_some_and(|g| (from..=to).contains(&g))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::{kinds, Builder};
    use crate::history::RebalanceKind::Assigned;
    use kafkasim::types::TopicPartition;

    const G: &str = "g";

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("events", p)
    }

    fn started(generation: i32, members: &[&str]) -> GroupEvent {
        GroupEvent::GenerationStarted {
            group_id: G.into(),
            generation_id: generation,
            leader: members[0].into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn synced(generation: i32, assignment: &[(&str, &[u32])]) -> GroupEvent {
        GroupEvent::AssignmentSynced {
            group_id: G.into(),
            generation_id: generation,
            assignment: assignment
                .iter()
                .map(|(m, ps)| ((*m).to_owned(), ps.iter().map(|p| tp(*p)).collect()))
                .collect(),
        }
    }

    fn accepted(member: &str, commit_generation: i32, group_generation: i32, p: u32) -> GroupEvent {
        GroupEvent::CommitAccepted {
            group_id: G.into(),
            member_id: member.into(),
            commit_generation_id: commit_generation,
            group_generation_id: group_generation,
            offsets: vec![(tp(p), kafkasim::types::Offset(5))],
        }
    }

    fn run(events: &[GroupEvent]) -> (GroupChecker, Vec<InvariantKind>) {
        let mut checker = GroupChecker::new();
        let kinds = events.iter().flat_map(|e| checker.observe(e)).map(|v| v.kind).collect();
        (checker, kinds)
    }

    /// Generation 1: a owns 0, b owns 1. b is removed; generation 2: a owns both.
    fn rebalance() -> Vec<GroupEvent> {
        vec![
            started(1, &["a", "b"]),
            synced(1, &[("a", &[0]), ("b", &[1])]),
            accepted("a", 1, 1, 0),
            accepted("b", 1, 1, 1),
            GroupEvent::MemberRemoved {
                group_id: G.into(),
                member_id: "b".into(),
                reason: "session timeout",
            },
            started(2, &["a"]),
            synced(2, &[("a", &[0, 1])]),
            accepted("a", 2, 2, 1),
        ]
    }

    #[test]
    fn a_clean_rebalance_is_no_violation_and_is_counted() {
        let (checker, kinds) = run(&rebalance());
        assert!(kinds.is_empty(), "{kinds:?}");
        let figures = &checker.figures()[G];
        assert_eq!((figures.generations, figures.rebalances), (2, 1));
        assert_eq!(figures.members_removed, BTreeMap::from([("session timeout".into(), 1)]));
        assert_eq!(figures.members_removed_first, vec!["b (session timeout)".to_owned()]);
        assert_eq!((figures.commits_accepted, figures.stale_commits_accepted), (3, 0));
    }

    #[test]
    fn a_zombie_commit_accepted_is_stale_and_a_second_owner() {
        let mut events = rebalance();
        // b wakes up and commits with its old generation; the check is off, so it lands.
        events.push(accepted("b", 1, 2, 1));
        events.push(accepted("b", 1, 2, 1));
        let (checker, kinds) = run(&events);
        assert_eq!(kinds, vec![InvariantKind::StaleCommit, InvariantKind::TwoOwners]);
        assert_eq!(checker.figures()[G].stale_commits_accepted, 2);
    }

    #[test]
    fn a_zombie_commit_refused_leaves_no_event_and_no_violation() {
        // With the generation check on the coordinator answers IllegalGeneration: no
        // CommitAccepted, and the history shows the commit failed.
        let (_, kinds) = run(&rebalance());
        assert!(kinds.is_empty());
        let mut b = Builder::new();
        b.subscribe(1);
        b.invoke_commit(1, &[("events-1", 9)], 1, "b");
        b.complete_commit(1, OpType::Fail, &[("events-1", 9)]);
        assert!(b.check().valid);
    }

    fn replaced(generation: i32, old: &str, new: &str) -> GroupEvent {
        GroupEvent::StaticMemberReplaced {
            group_id: G.into(),
            generation_id: generation,
            old_member_id: old.into(),
            new_member_id: new.into(),
        }
    }

    /// swarm --variant commit-before-process seed 126: broker-1 replaced s1 by s2, then
    /// broker-2 took over from a log without that replacement and replaced s1 by s3.
    #[test]
    fn a_replacement_the_next_coordinator_never_loaded_is_superseded() {
        let history = |committer: &str| {
            run(&[
                started(1, &["a", "s0"]),
                synced(1, &[("a", &[0]), ("s0", &[1])]),
                replaced(1, "s0", "s1"),
                replaced(1, "s1", "s2"),
                replaced(1, "s1", "s3"),
                accepted(committer, 1, 1, 1),
            ])
            .1
        };
        assert!(history("s3").is_empty(), "{:?}", history("s3"));
        let gone = vec![InvariantKind::StaleCommit, InvariantKind::TwoOwners];
        assert_eq!(history("s2"), gone, "s2 was replaced by s3");
        let cycle = [replaced(1, "x", "y"), replaced(1, "y", "x"), replaced(1, "x", "z")];
        run(&[&[started(1, &["a"])][..], &cycle].concat()); // ends, without a panic
    }

    #[test]
    fn a_deposed_coordinator_s_events_are_ignored() {
        // group-safe --variant follower-fetch seed 183: the old coordinator, cut off, expired
        // every member and started an empty generation 2 in memory after the new one (a
        // later epoch) had started generation 2 with a and b.
        let mut checker = GroupChecker::new();
        let mut kinds = Vec::new();
        let mut feed = |epoch: u32, event: GroupEvent| {
            let violations = checker.observe_from(Epoch(epoch), &event);
            kinds.extend(violations.into_iter().map(|v| v.kind));
        };
        feed(1, started(1, &["a", "b"]));
        feed(2, started(2, &["a", "b"]));
        feed(1, started(2, &[""]));
        feed(2, accepted("a", 2, 2, 0));
        assert!(kinds.is_empty(), "{kinds:?}");
        assert_eq!(checker.figures()[G].deposed_coordinator_events, 1);
    }

    #[test]
    fn group_events_reach_the_checker_through_cluster_events() {
        use crate::check::cluster::{ClusterChecker, ClusterEvent};
        let mut cluster = ClusterChecker::new();
        let mut kinds = Vec::new();
        for event in rebalance().into_iter().chain([accepted("b", 1, 2, 1)]) {
            let event = ClusterEvent::Group { coordinator_epoch: Epoch(1), event };
            let json = serde_json::to_value(&event).expect("group events serialize");
            assert!(json.get("Group").is_some(), "{json}");
            kinds.extend(cluster.observe(&event).into_iter().map(|v| v.kind));
        }
        assert_eq!(kinds, vec![InvariantKind::StaleCommit, InvariantKind::TwoOwners]);
        assert_eq!(cluster.groups().figures()[G].rebalances, 1);
        cluster.groups_mut().set_final_lag(G, BTreeMap::from([("events-0".into(), (Some(3), 3))]));
        assert_eq!(cluster.groups().figures()[G].final_lag["events-0"].lag, 0);
        let name = serde_json::to_value(InvariantKind::TwoOwners).expect("serializes");
        assert_eq!(name, "two-owners");
    }

    #[test]
    fn an_unknown_member_in_the_right_generation_is_stale() {
        let mut events = rebalance();
        events.push(accepted("c", 2, 2, 7));
        let (_, kinds) = run(&events);
        assert_eq!(kinds, vec![InvariantKind::StaleCommit]);
    }

    #[test]
    fn one_partition_assigned_twice_is_two_owners() {
        let (_, kinds) = run(&[started(1, &["a", "b"]), synced(1, &[("a", &[0, 1]), ("b", &[1])])]);
        assert_eq!(kinds, vec![InvariantKind::TwoOwners]);
    }

    #[test]
    fn lag_and_history_figures_fill_the_group() {
        let (mut checker, _) = run(&rebalance());
        checker.set_final_lag(
            G,
            BTreeMap::from([("events-0".into(), (Some(4), 6)), ("events-1".into(), (None, 2))]),
        );
        let mut b = Builder::new();
        b.send_ok(0, "events-0", 1, 0);
        b.send_ok(0, "events-0", 2, 1);
        b.subscribe(1);
        b.poll_ok(1, &[("events-0", &[(0, 1), (1, 2)])]);
        b.commit(1, OpType::Info, &[("events-0", 2)]);
        b.crash(1);
        b.subscribe(2);
        b.poll_ok(2, &[("events-0", &[(0, 1), (1, 2)])]);
        b.commit(2, OpType::Ok, &[("events-0", 2)]);
        b.commit(2, OpType::Fail, &[("events-0", 2)]);
        let mut figures = checker.figures();
        add_history_figures(&b.finish(), G, &mut figures);
        let g = &figures[G];
        assert_eq!((g.commits_ok, g.commits_fail, g.commits_info), (1, 1, 1));
        assert_eq!((g.duplicates_processed, g.redeliveries), (2, 2));
        assert_eq!(g.final_lag["events-0"], Lag { committed: Some(4), end: 6, lag: 2 });
        assert_eq!(g.final_lag["events-1"].lag, 2);
    }

    #[test]
    fn in_subscribe_mode_only_ok_polls_process_records() {
        // A subscribed poll cut short (info) read value 1, then the process crashed and the
        // group moved on past it: never processed, so unseen.
        let mut b = Builder::new();
        b.send_ok(0, "events-0", 1, 0);
        b.send_ok(0, "events-0", 2, 1);
        b.subscribe(1);
        b.poll(1, OpType::Info, &[("events-0", &[(0, 1)])]);
        b.crash(1);
        b.subscribe(2);
        b.poll_ok_rebalanced(2, &[("events-0", &[(1, 2)])], &[(Assigned, 2, &["events-0"])]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::Unseen]);
        assert_eq!(report.entries(AnomalyKind::Unseen)[0].values, vec![1]);
        // Assign mode keeps its rule: any poll's read counts.
        let mut b = Builder::new();
        b.send_ok(0, "events-0", 1, 0);
        b.assign(1, &["events-0"]);
        b.poll(1, OpType::Info, &[("events-0", &[(0, 1)])]);
        assert!(b.check().valid);
    }

    #[test]
    fn a_commit_below_an_earlier_completed_one_goes_back() {
        let mut b = Builder::new();
        b.subscribe(1);
        b.subscribe(2);
        let (ai, ac) = b.commit(1, OpType::Ok, &[("events-0", 10)]);
        let (bi, bc) = b.commit(2, OpType::Ok, &[("events-0", 7)]);
        let report = b.check();
        assert_eq!(kinds(&report), vec![AnomalyKind::RealtimeCommitOrder]);
        let e = &report.entries(AnomalyKind::RealtimeCommitOrder)[0];
        assert_eq!((e.offsets.clone(), e.ops.clone()), (vec![10, 7], vec![ai, ac, bi, bc]));
    }

    /// group-safe seed 674: member 1 commits 4 (its request stuck in a cut link, the commit
    /// ends info), then 10 (ok); the stuck request lands after 10, so the group's offset is
    /// 4 again and the next owner, resuming there, commits 6 in generation `b_generation`.
    fn late_unknown_commit(
        c: u64,
        c_generation: i32,
        b_generation: i32,
    ) -> crate::check::CheckReport {
        let mut b = Builder::new();
        b.subscribe(1);
        b.subscribe(2);
        b.invoke_commit(1, &[("events-0", c)], c_generation, "m1");
        b.complete_commit(1, OpType::Info, &[("events-0", c)]);
        b.invoke_commit(1, &[("events-0", 10)], 1, "m1");
        b.complete_commit(1, OpType::Ok, &[("events-0", 10)]);
        b.invoke_commit(2, &[("events-0", 6)], b_generation, "m2");
        b.complete_commit(2, OpType::Ok, &[("events-0", 6)]);
        b.check()
    }

    #[test]
    fn an_unknown_commit_landing_late_explains_a_move_back_to_it_and_no_other() {
        assert!(late_unknown_commit(4, 1, 2).valid);
        assert!(late_unknown_commit(6, 1, 2).valid);
        // Above B's offset: the group never went back to where B resumed.
        assert_eq!(kinds(&late_unknown_commit(7, 1, 2)), vec![AnomalyKind::RealtimeCommitOrder]);
        // Generation 0 was over before A (generation 1) landed: the coordinator refuses C.
        assert_eq!(kinds(&late_unknown_commit(4, 0, 2)), vec![AnomalyKind::RealtimeCommitOrder]);
        // Generation 3 started after B's member resumed in generation 2.
        assert_eq!(kinds(&late_unknown_commit(4, 3, 2)), vec![AnomalyKind::RealtimeCommitOrder]);
    }

    #[test]
    fn an_unknown_commit_invoked_after_the_lower_one_explains_nothing() {
        let mut b = Builder::new();
        b.subscribe(1);
        b.subscribe(2);
        b.commit(1, OpType::Ok, &[("events-0", 10)]);
        b.commit(2, OpType::Ok, &[("events-0", 7)]);
        b.commit(1, OpType::Info, &[("events-0", 4)]);
        assert_eq!(kinds(&b.check()), vec![AnomalyKind::RealtimeCommitOrder]);
    }

    #[test]
    fn concurrent_failed_or_unknown_commits_are_not_ordered() {
        let mut b = Builder::new();
        b.subscribe(1);
        b.subscribe(2);
        // Overlapping: 2 invoked before 1 completed.
        b.invoke_commit(2, &[("events-0", 7)], 1, "m2");
        b.commit(1, OpType::Ok, &[("events-0", 10)]);
        b.complete_commit(2, OpType::Ok, &[("events-0", 7)]);
        // Later lower commits that failed or are unknown moved nothing for sure.
        b.commit(2, OpType::Fail, &[("events-0", 3)]);
        b.commit(2, OpType::Info, &[("events-0", 4)]);
        // Equal is not lower.
        b.commit(2, OpType::Ok, &[("events-0", 10)]);
        assert!(b.check().valid);
    }
}
