//! Pure checks of the group invariants of CORRECTNESS.md (7): in every generation each
//! partition has at most one owner; committed offsets move only by commits of the current
//! generation. The simulator feeds them the coordinator's `GroupEvent`s.

use super::coordinator::GroupEvent;
use crate::protocol::NO_GENERATION_ID;
use crate::types::TopicPartition;
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum GroupViolation {
    #[error("group {group_id} generation {generation_id}: {tp} owned by {first} and {second}")]
    TwoOwners {
        group_id: String,
        generation_id: i32,
        tp: TopicPartition,
        first: String,
        second: String,
    },
    #[error("group {group_id}: commit by {member_id} of generation {commit_generation_id} accepted in generation {current_generation_id}")]
    StaleCommit {
        group_id: String,
        member_id: String,
        commit_generation_id: i32,
        current_generation_id: i32,
    },
}

/// One generation's assignment gives each partition at most one owner.
pub fn check_single_owner(
    group_id: &str,
    generation_id: i32,
    assignment: &BTreeMap<String, Vec<TopicPartition>>,
) -> Result<(), GroupViolation> {
    let mut owner: BTreeMap<&TopicPartition, &String> = BTreeMap::new();
    for (member, parts) in assignment {
        for tp in parts {
            if let Some(first) = owner.insert(tp, member) {
                return Err(GroupViolation::TwoOwners {
                    group_id: group_id.to_string(),
                    generation_id,
                    tp: tp.clone(),
                    first: first.clone(),
                    second: member.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Walk the events in order: each accepted commit carries the generation of the group at
/// that moment (standalone commits, generation -1, only while the group has no members),
/// and every synced assignment has single owners.
pub fn check_commits_current_generation(events: &[GroupEvent]) -> Result<(), GroupViolation> {
    // group -> (generation, has members)
    let mut current: BTreeMap<&str, (i32, bool)> = BTreeMap::new();
    for event in events {
        match event {
            GroupEvent::GenerationStarted { group_id, generation_id, members, .. }
            | GroupEvent::GroupLoaded { group_id, generation_id, members } => {
                current.insert(group_id, (*generation_id, !members.is_empty()));
            }
            GroupEvent::AssignmentSynced { group_id, generation_id, assignment } => {
                check_single_owner(group_id, *generation_id, assignment)?;
            }
            GroupEvent::MemberRemoved { .. } | GroupEvent::StaticMemberReplaced { .. } => {}
            GroupEvent::CommitAccepted { group_id, member_id, commit_generation_id, .. } => {
                let (generation, has_members) =
                    current.get(group_id.as_str()).copied().unwrap_or((0, false));
                let standalone_ok = *commit_generation_id == NO_GENERATION_ID
                    && member_id.is_empty()
                    && !has_members;
                if !standalone_ok && *commit_generation_id != generation {
                    return Err(GroupViolation::StaleCommit {
                        group_id: group_id.clone(),
                        member_id: member_id.clone(),
                        commit_generation_id: *commit_generation_id,
                        current_generation_id: generation,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Offset;

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn started(generation_id: i32, members: &[&str]) -> GroupEvent {
        GroupEvent::GenerationStarted {
            group_id: "g".into(),
            generation_id,
            leader: members.first().map(|m| m.to_string()).unwrap_or_default(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn commit(member_id: &str, commit_generation_id: i32) -> GroupEvent {
        GroupEvent::CommitAccepted {
            group_id: "g".into(),
            member_id: member_id.into(),
            commit_generation_id,
            group_generation_id: commit_generation_id,
            offsets: vec![(tp(0), Offset(1))],
        }
    }

    #[test]
    fn a_planted_double_owner_is_caught() {
        let assignment =
            BTreeMap::from([("a".to_string(), vec![tp(0), tp(1)]), ("b".to_string(), vec![tp(1)])]);
        let err = check_single_owner("g", 3, &assignment).expect_err("t-1 has two owners");
        assert!(matches!(err, GroupViolation::TwoOwners { generation_id: 3, .. }));
        let events = vec![
            started(3, &["a", "b"]),
            GroupEvent::AssignmentSynced { group_id: "g".into(), generation_id: 3, assignment },
        ];
        assert!(check_commits_current_generation(&events).is_err());
    }

    #[test]
    fn commits_of_the_current_generation_pass_and_stale_ones_fail() {
        let ok = vec![
            commit("", NO_GENERATION_ID),
            started(1, &["a"]),
            commit("a", 1),
            started(2, &["a"]),
            commit("a", 2),
        ];
        assert_eq!(check_commits_current_generation(&ok), Ok(()));
        let stale = vec![started(1, &["a", "b"]), started(2, &["a"]), commit("b", 1)];
        assert!(matches!(
            check_commits_current_generation(&stale),
            Err(GroupViolation::StaleCommit {
                commit_generation_id: 1,
                current_generation_id: 2,
                ..
            })
        ));
        // A standalone commit while the group has members is not allowed either.
        let standalone = vec![started(1, &["a"]), commit("", NO_GENERATION_ID)];
        assert!(check_commits_current_generation(&standalone).is_err());
    }
}
