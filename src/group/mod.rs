//! Consumer groups: the group coordinator state machine, the partition assignors a group
//! leader runs, the offsets-topic records the coordinator persists, and pure invariant
//! helpers for the simulator's checker.
//!
//! Sans-IO: the coordinator takes requests stamped with `now` and returns replies and
//! records to append to its partition of the offsets topic; the driver appends them,
//! replicates them and reports back (`on_offsets_appended`). A new coordinator rebuilds
//! its groups from that partition (`load`).
//!
//! This module does not own the consumer (joining, fetching, commit policy: `crate::client`),
//! the offsets topic's replication (`crate::replication`) nor request routing (`crate::broker`).

mod assignor;
mod coordinator;
mod invariants;
mod membership;
mod partitioner;
mod records;

pub use assignor::{assign, AssignorKind, MemberSubscription};
pub use coordinator::{
    CoordinatorConfig, CoordinatorOutput, GroupCoordinator, GroupEvent, GroupRequest,
    GroupResponse, ReplyTo,
};
pub use invariants::{check_commits_current_generation, check_single_owner, GroupViolation};
pub use membership::GroupState;
pub use partitioner::{find_coordinator, java_string_hash, partition_for_group};
pub use records::{GroupRecord, GroupRecordError, MemberRecord};
#[cfg(test)]
mod tests_coordinator;

/// The internal topic the coordinators keep group state and committed offsets in.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
