//! KIP-101's two failures, reproduced at the state-machine level under the old
//! truncate-to-HW rule, and shown fixed under the leader-epoch rule (CORRECTNESS.md's
//! "HW truncation (KIP-101 #1)" and "divergence after power loss (KIP-101 #2)").

use super::invariants::{
    committed_prefix_kept, replicas_agree_below_hw, replicas_agree_where_both_have,
    InvariantViolation, ReplicaSnapshot,
};
use super::testkit::{node, values, Cluster};
use super::{ReplicationConfig, TruncationRule};
use crate::protocol::ErrorCode;
use crate::types::Offset;
use std::collections::BTreeMap;

fn cluster(rule: TruncationRule) -> Cluster {
    let config = ReplicationConfig {
        truncation: rule,
        min_insync_replicas: 1,
        ..ReplicationConfig::default()
    };
    let mut c = Cluster::new(2, config);
    // Before KIP-841, a restarted broker stayed in the ISR and could be elected.
    c.fence_restarted = false;
    c
}

/// KIP-101 #1 up to the follower's restart: m1 and m2 acked; the follower holds m2 but
/// learned only HW 1 (the response to the fetch that moved the HW carries the old one).
fn follower_holds_m2_with_a_lagging_hw(rule: TruncationRule) -> Cluster {
    let mut c = cluster(rule);
    let (m1, _) = c.produce("m1").expect("produce m1");
    c.replicate(2);
    let (m2, _) = c.produce("m2").expect("produce m2");
    c.step(node(2)).expect("fetch m2");
    c.step(node(2)).expect("fetch at 2 moves the leader's hw");
    for id in [m1, m2] {
        assert_eq!(c.completion(id).map(|d| d.error), Some(ErrorCode::None), "acked");
    }
    assert_eq!(c.leader().high_watermark(), Offset(2));
    assert_eq!(c.replicas[&node(2)].hw(), Offset(1), "the follower's hw lags");
    assert_eq!(c.log(node(2)).log_end_offset(), Offset(2), "but it has m2");
    c
}

fn acked_m1_m2() -> BTreeMap<Offset, Option<Vec<u8>>> {
    BTreeMap::from([(Offset(0), Some(b"m1".to_vec())), (Offset(1), Some(b"m2".to_vec()))])
}

/// The follower restarts (its disk kept everything), the leader dies for good before the
/// follower fetches again, and the follower is elected.
fn restart_then_leader_dies(c: &mut Cluster) {
    c.restart(node(2), u64::MAX / 2);
    c.power_loss(&[(node(1), 0)], node(2));
    assert_eq!(c.leader_node(), node(2));
}

#[test]
fn kip101_1_truncate_to_hw_loses_an_acked_record() {
    let mut c = follower_holds_m2_with_a_lagging_hw(TruncationRule::HighWatermark);
    restart_then_leader_dies(&mut c);
    let new_leader = ReplicaSnapshot::of(node(2), c.log(node(2)));
    assert_eq!(values(c.log(node(2))), vec![(0, "m1".to_string())], "acked m2 is gone");
    assert_eq!(
        committed_prefix_kept(&acked_m1_m2(), &new_leader),
        Err(InvariantViolation::CommittedLost { leader: node(2), offset: Offset(1) })
    );
}

#[test]
fn kip101_1_leader_epoch_truncation_keeps_the_acked_record() {
    let mut c = follower_holds_m2_with_a_lagging_hw(TruncationRule::LeaderEpoch);
    restart_then_leader_dies(&mut c);
    let new_leader = ReplicaSnapshot::of(node(2), c.log(node(2)));
    assert_eq!(committed_prefix_kept(&acked_m1_m2(), &new_leader), Ok(()));
    assert_eq!(values(c.log(node(2))), vec![(0, "m1".into()), (1, "m2".into())]);
}

#[test]
fn kip101_1_leader_epoch_truncation_asks_the_live_leader_and_keeps_m2() {
    let mut c = follower_holds_m2_with_a_lagging_hw(TruncationRule::LeaderEpoch);
    c.restart(node(2), u64::MAX / 2);
    assert!(c.step(node(2)).expect("OffsetsForLeaderEpoch answered"));
    assert_eq!(c.log(node(2)).log_end_offset(), Offset(2), "epoch 1 ends at 2 on the leader");
    c.power_loss(&[(node(1), 0)], node(2));
    let new_leader = ReplicaSnapshot::of(node(2), c.log(node(2)));
    assert_eq!(committed_prefix_kept(&acked_m1_m2(), &new_leader), Ok(()));
}

/// KIP-101 #2 up to the second replica's return: both held m1, m2 (HW 2 on both); a power
/// loss leaves node 1 with both and node 2 with m1 only; node 2 comes back first, leads
/// epoch 2 and takes m3 at offset 1; node 1 returns as follower.
fn diverged_tails_after_power_loss(rule: TruncationRule) -> Cluster {
    let mut c = cluster(rule);
    c.produce("m1").expect("m1");
    c.produce("m2").expect("m2");
    c.replicate(3);
    assert_eq!(c.replicas[&node(2)].hw(), Offset(2));
    c.power_loss(&[(node(1), 2), (node(2), 1)], node(2));
    c.produce("m3").expect("the new leader takes writes");
    c.replicate(4);
    c
}

#[test]
fn kip101_2_truncate_to_hw_lets_replicas_diverge() {
    let c = diverged_tails_after_power_loss(TruncationRule::HighWatermark);
    let (leader, other) = (
        ReplicaSnapshot::of(node(2), c.log(node(2))),
        ReplicaSnapshot::of(node(1), c.log(node(1))),
    );
    assert_eq!(values(c.log(node(2)))[1], (1, "m3".to_string()));
    assert_eq!(values(c.log(node(1)))[1], (1, "m2".to_string()), "same offset, other record");
    assert_eq!(c.leader().high_watermark(), Offset(2), "and the leader counts it committed");
    assert!(matches!(
        replicas_agree_below_hw(&leader, c.leader().high_watermark(), &[&other]),
        Err(InvariantViolation::ReplicaDiverged { offset: Offset(1), .. })
    ));
    assert!(replicas_agree_where_both_have(&leader, &other, Offset(2)).is_err());
}

#[test]
fn kip101_2_leader_epoch_truncation_converges() {
    let c = diverged_tails_after_power_loss(TruncationRule::LeaderEpoch);
    let (leader, other) = (
        ReplicaSnapshot::of(node(2), c.log(node(2))),
        ReplicaSnapshot::of(node(1), c.log(node(1))),
    );
    assert_eq!(values(c.log(node(1))), values(c.log(node(2))));
    assert_eq!(values(c.log(node(2)))[1], (1, "m3".to_string()));
    assert_eq!(c.leader().high_watermark(), Offset(2));
    assert_eq!(replicas_agree_below_hw(&leader, Offset(2), &[&other]), Ok(()));
}
