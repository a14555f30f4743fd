//! "Safe means safe" (issue 9): the seeds on which a safe scenario once lost acknowledged
//! records or crashed, each kept as a regression with the cause it had, and the scenarios
//! of Kafka 4's safety protocols, each finding its historical bug with the switch off and
//! passing with it on. Fixed seed lists only; long sweeps belong to `kafkasim sweep`.

mod common;

use common::{assert_finds, assert_passes};

/// A leader kept proposing a fenced, just-restarted follower for the ISR, so the one
/// eligible follower never rejoined before the sole ISR member lost power.
#[test]
fn acks_all_failover_keeps_acked_records_on_the_seeds_that_lost_them() {
    assert_passes("acks1-failover", Some("acks-all"), &[218, 622, 674]);
}

/// Two ISR members lost power; before KIP-966 was complete one of them, emptied, was
/// elected and the replica holding the data truncated to it.
#[test]
fn follower_fetch_keeps_acked_records_after_a_power_loss_of_two_isr_members() {
    assert_passes("replicated-safe", Some("follower-fetch"), &[229]);
}

/// A consumer reading from followers asked a former leader for its end offsets after the
/// heal and, told NotLeaderOrFollower, asked it again for 40 s: nothing refreshed its
/// metadata, since its fetches from a follower still worked (a liveness failure).
#[test]
fn follower_fetch_catch_up_finds_the_new_leader() {
    assert_passes("replicated-safe", Some("follower-fetch"), &[1247]);
}

/// The last intact in-sync replica was fenced just after the nemesis let the others lose
/// power (its heartbeats had been cut off the controller moments before), and an emptied
/// replica led. The envelope no longer counts a broker impaired within a session timeout
/// as a spare; KIP-966 keeps the emptied ones from leading cleanly.
#[test]
fn replicated_safe_keeps_acked_records_on_the_seeds_that_lost_them() {
    assert_passes("replicated-safe", None, &[1147, 2103, 2901]);
}

/// A leader whose ISR expansion went unanswered (the controller had committed it) fell back
/// to the smaller ISR for its HW and acked records the added replica lacked; that replica
/// was then elected.
#[test]
fn an_unanswered_isr_expansion_keeps_the_maximal_isr() {
    assert_passes("replicated-safe", Some("long"), &[147]);
}

/// A late fetch from a follower's previous incarnation crashed its leader.
#[test]
fn a_late_fetch_from_a_previous_incarnation_is_refused() {
    assert_passes("group-safe", None, &[32, 98]);
}

/// replicated-safe 1359, group-safe 560 and 824 (invariant 8's first sweeps): a new leader
/// acked a retried batch it already held, committed under the previous leader, before any
/// follower fetched from it; the check had assumed every ack was for a record its
/// leadership appended.
#[test]
fn an_ack_of_a_record_committed_by_an_earlier_leader_is_not_held_to_new_fetches() {
    assert_passes("replicated-safe", None, &[1359]);
    assert_passes("group-safe", None, &[560, 824]);
}

/// A broker cut off the controller applied an old image late and led an epoch the
/// partition had moved past; the cluster checker held it to a prefix a newer epoch exposed.
#[test]
fn a_leader_of_an_older_epoch_is_not_held_to_a_newer_prefix() {
    assert_passes("group-safe", None, &[872]);
}

/// A rebalance revoked and re-assigned a partition with a fetch for it in flight; the late
/// answer passed as current and the consumer client panicked on a second one.
#[test]
fn a_fetch_answer_for_a_revoked_assignment_is_dropped() {
    assert_passes("group-safe", None, &[3790]);
}

/// Kafka's classic protocol stores a generation's member ids only at SyncGroup: a
/// coordinator failover in between fences every static member for good (swarm seed 6155).
#[test]
fn static_fenced_by_failover_finds_the_fence_kafka_answers() {
    assert_finds("static-fenced-by-failover", None, "static-member-fenced", &[20, 85, 98]);
}

/// A follower whose log directory a full disk took offline kept applying fetch answers in
/// memory and fetching on, so its leader counted it caught up over records its disk never
/// got; restarted at the heal, it came back short and KIP-966 recovery elected it.
#[test]
fn an_offline_follower_stops_fetching() {
    common::run_met("static-fenced-by-failover", None, 73);
}

/// KIP-966 off: the leader that shrank the ISR to itself loses power and leads again.
#[test]
fn last_replica_standing_finds_lost_write_without_elr() {
    assert_finds("last-replica-standing", None, "lost-write", &[1, 2, 3]);
}

#[test]
fn last_replica_standing_keeps_every_record_with_elr() {
    assert_passes("last-replica-standing", Some("elr"), &[1, 2, 3]);
}

/// KIP-903 off: a held ISR expansion re-admits a replica that restarted empty.
#[test]
fn stale_isr_expansion_finds_lost_write_without_broker_epochs() {
    assert_finds("stale-isr-expansion", None, "lost-write", &[1, 2, 3]);
}

#[test]
fn stale_isr_expansion_is_refused_with_broker_epochs() {
    assert_passes("stale-isr-expansion", Some("broker-epochs"), &[1, 2, 3]);
}
