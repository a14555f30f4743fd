//! Which partition of the offsets topic (and so which broker) owns a group: Kafka's
//! `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`, with Java's
//! `String.hashCode` over UTF-16 code units so group placement matches Kafka's.

use crate::protocol::{ErrorCode, FindCoordinatorResponse};
use crate::types::NodeId;

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, in
/// wrapping 32-bit arithmetic.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The offsets-topic partition that owns `group_id` (Kafka's GroupMetadataManager.partitionFor).
pub fn partition_for_group(group_id: &str, num_offsets_partitions: u32) -> u32 {
    assert!(num_offsets_partitions > 0, "offsets topic has no partitions (group {group_id})");
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.unsigned_abs() };
    abs % num_offsets_partitions
}

/// FindCoordinator: the leader of the group's offsets partition, as `leader_of` reports it.
pub fn find_coordinator(
    group_id: &str,
    num_offsets_partitions: u32,
    leader_of: impl Fn(u32) -> Option<NodeId>,
) -> FindCoordinatorResponse {
    if group_id.is_empty() {
        return FindCoordinatorResponse { error: ErrorCode::InvalidGroupId, node_id: None };
    }
    if num_offsets_partitions == 0 {
        return FindCoordinatorResponse {
            error: ErrorCode::CoordinatorNotAvailable,
            node_id: None,
        };
    }
    match leader_of(partition_for_group(group_id, num_offsets_partitions)) {
        Some(node) => FindCoordinatorResponse { error: ErrorCode::None, node_id: Some(node) },
        None => {
            FindCoordinatorResponse { error: ErrorCode::CoordinatorNotAvailable, node_id: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_hand_computed_values() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        // 'a'*31 + 'b' = 97*31 + 98
        assert_eq!(java_string_hash("ab"), 3105);
        // Widely quoted: "hello".hashCode() == 99162322.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // Known to hash to Integer.MIN_VALUE, which Utils.abs maps to 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
    }

    #[test]
    fn partition_for_group_is_abs_hash_mod_n() {
        assert_eq!(partition_for_group("a", 50), 97 % 50);
        assert_eq!(partition_for_group("ab", 50), 3105 % 50);
        assert_eq!(partition_for_group("hello", 50), 99_162_322 % 50);
        // A negative hash: "zzzzzzz" overflows; the partition is |hash| % n.
        let h = java_string_hash("zzzzzzz");
        assert_eq!(partition_for_group("zzzzzzz", 7), h.unsigned_abs() % 7);
    }

    #[test]
    fn find_coordinator_rejects_empty_group_and_reports_missing_leader() {
        let r = find_coordinator("", 3, |_| Some(NodeId(1)));
        assert_eq!(r.error, ErrorCode::InvalidGroupId);
        let r = find_coordinator("g", 3, |_| None);
        assert_eq!(r.error, ErrorCode::CoordinatorNotAvailable);
        let r = find_coordinator("g", 3, |p| Some(NodeId(p)));
        assert_eq!(r.node_id, Some(NodeId(partition_for_group("g", 3))));
    }
}
