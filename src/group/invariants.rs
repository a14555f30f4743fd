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
            GroupEvent::GenerationStarted { group_id, generation_id, members, .. } => {
                current.insert(group_id, (*generation_id, !members.is_empty()));
            }
            GroupEvent::AssignmentSynced { group_id, generation_id, assignment } => {
                check_single_owner(group_id, *generation_id, assignment)?;
            }
            GroupEvent::MemberRemoved { .. } => {}
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
