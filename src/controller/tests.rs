//! Controller tests on a single-voter quorum (Raft itself is tested in `raft/`), plus one
//! three-voter run where every node's committed image converges.

use super::raft::{PersistentState, RaftConfig};
use super::*;
use crate::types::{BrokerEpoch, Epoch, IsrMember, Millis, NodeId, PartitionEpoch, TopicPartition};

struct Harness {
    c: QuorumController,
    now: Millis,
    next_id: u64,
    checker: MetadataChecker,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(ControllerConfig::default())
    }

    fn with_config(config: ControllerConfig) -> Harness {
        let raft = RaftConfig::new(NodeId(100), vec![NodeId(100)]);
        let c = QuorumController::new(raft, config, PersistentState::default(), 1, Millis(0))
            .expect("valid config");
        let mut h = Harness { c, now: Millis(0), next_id: 0, checker: MetadataChecker::new() };
        h.advance(2500);
        assert!(h.c.is_active(), "single voter becomes active");
        h
    }

    /// Carries out every Ready (sync is instant) and returns the replies.
    fn drain(&mut self) -> Vec<ControllerReply> {
        let mut replies = Vec::new();
        while self.c.has_ready() {
            let ready = self.c.take_ready();
            assert!(ready.raft.messages.is_empty(), "a single voter sends nothing");
            self.c.on_persisted(ready.raft.number);
            replies.extend(ready.replies);
        }
        self.checker.observe(NodeId(100), self.c.committed_image()).expect("metadata invariants");
        replies
    }

    fn advance(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.now = self.now.plus_ms(100);
            self.c.tick(self.now);
            self.drain();
        }
    }

    fn request(&mut self, from: u32, request: ControllerRequest) -> ControllerResponse {
        self.next_id += 1;
        let id = self.next_id;
        self.c.handle(NodeId(from), id, request, self.now);
        let replies = self.drain();
        let reply =
            replies.into_iter().find(|r| r.request_id == id).expect("answered once committed");
        assert_eq!(reply.to, NodeId(from));
        reply.response
    }

    /// Registers after a crash: no clean-shutdown marker.
    fn register(&mut self, broker: u32) -> BrokerEpoch {
        self.register_after(broker, None)
    }

    /// Registers with the epoch a clean-shutdown marker recorded, if any.
    fn register_after(&mut self, broker: u32, marker: Option<BrokerEpoch>) -> BrokerEpoch {
        let req = ControllerRequest::BrokerRegistration {
            broker_id: NodeId(broker),
            previous_broker_epoch: marker,
        };
        match self.request(broker, req) {
            ControllerResponse::BrokerRegistration(Ok(epoch)) => epoch,
            other => panic!("registration failed: {other:?}"),
        }
    }

    fn heartbeat(&mut self, broker: u32, epoch: BrokerEpoch) -> ControllerResponse {
        let req = ControllerRequest::BrokerHeartbeat {
            broker_id: NodeId(broker),
            broker_epoch: epoch,
            metadata_offset: self.c.applied_index(),
            want_shut_down: false,
        };
        self.request(broker, req)
    }

    /// A heartbeat asking for a controlled shutdown.
    fn shut_down(&mut self, broker: u32, epoch: BrokerEpoch) -> ControllerResponse {
        let req = ControllerRequest::BrokerHeartbeat {
            broker_id: NodeId(broker),
            broker_epoch: epoch,
            metadata_offset: self.c.applied_index(),
            want_shut_down: true,
        };
        self.request(broker, req)
    }

    /// Registers and unfences brokers 1..=n; returns their epochs.
    fn brokers(&mut self, n: u32) -> Vec<BrokerEpoch> {
        let epochs: Vec<BrokerEpoch> = (1..=n).map(|b| self.register(b)).collect();
        for b in 1..=n {
            let r = self.heartbeat(b, epochs[b as usize - 1]);
            assert_eq!(r, ControllerResponse::BrokerHeartbeat(Ok(HeartbeatReply::fenced(false))));
        }
        epochs
    }

    fn create(
        &mut self,
        name: &str,
        partitions: u32,
        rf: u16,
        unclean: bool,
    ) -> ControllerResponse {
        let req = ControllerRequest::CreateTopics {
            name: name.into(),
            partitions,
            replication_factor: rf,
            unclean_leader_election: unclean,
            min_insync_replicas: 1,
        };
        self.request(1, req)
    }

    /// One partition on brokers 1..=3 with min.insync.replicas 2, unclean election off.
    fn create_rf3_min_insync2(&mut self, name: &str) {
        let req = ControllerRequest::CreateTopics {
            name: name.into(),
            partitions: 1,
            replication_factor: 3,
            unclean_leader_election: false,
            min_insync_replicas: 2,
        };
        self.request(1, req);
    }

    /// Heartbeats from `alive` every second for `ms`.
    fn keep_alive(&mut self, alive: &[(u32, BrokerEpoch)], ms: u64) {
        for _ in 0..ms / 1000 {
            for &(b, e) in alive {
                self.heartbeat(b, e);
            }
            self.advance(1000);
        }
    }

    fn partition(&self, topic: &str, p: u32) -> PartitionState {
        self.c.committed_image().partition(&TopicPartition::new(topic, p)).expect("exists").clone()
    }
}

#[test]
fn registration_assigns_growing_broker_epochs() {
    let mut h = Harness::new();
    let first = h.register(1);
    let other = h.register(2);
    assert!(other > first);
    assert!(
        h.c.committed_image().broker(NodeId(1)).expect("registered").fenced,
        "fenced until caught up"
    );
    // Catching up (metadata offset at or past the registration) unfences.
    assert_eq!(
        h.heartbeat(1, first),
        ControllerResponse::BrokerHeartbeat(Ok(HeartbeatReply::fenced(false)))
    );
    let again = h.register(1);
    assert!(again > first, "re-registration bumps the epoch: {first} -> {again}");
    let broker = h.c.committed_image().broker(NodeId(1)).expect("registered");
    assert_eq!(broker.broker_epoch, again);
    assert!(broker.fenced);
    // The old incarnation's heartbeats are refused.
    assert_eq!(
        h.heartbeat(1, first),
        ControllerResponse::BrokerHeartbeat(Err(ControllerError::StaleBrokerEpoch {
            broker_id: NodeId(1),
            current: again,
            got: first
        }))
    );
}

#[test]
fn create_topic_places_replicas_round_robin() {
    let mut h = Harness::new();
    h.brokers(3);
    let r = h.create("t", 3, 3, false);
    let n = |v: &[u32]| v.iter().copied().map(NodeId).collect::<Vec<_>>();
    let expected = vec![n(&[1, 2, 3]), n(&[2, 3, 1]), n(&[3, 1, 2])];
    assert_eq!(r, ControllerResponse::CreateTopics(Ok(expected.clone())));
    for p in 0..3 {
        let state = h.partition("t", p);
        assert_eq!(state.replicas, expected[p as usize]);
        assert_eq!(state.isr, expected[p as usize]);
        assert_eq!(state.leader, Some(expected[p as usize][0]));
        assert_eq!(state.leader_epoch, Epoch(0));
        assert_eq!(state.partition_epoch, PartitionEpoch(0));
    }
    assert!(matches!(
        h.create("t", 1, 1, false),
        ControllerResponse::CreateTopics(Err(ControllerError::TopicAlreadyExists { .. }))
    ));
    assert!(matches!(
        h.create("u", 1, 4, false),
        ControllerResponse::CreateTopics(Err(ControllerError::InvalidReplicationFactor {
            requested: 4,
            available: 3
        }))
    ));
}

#[test]
fn heartbeat_timeout_fences_and_moves_leadership_within_the_isr() {
    let mut h = Harness::new();
    let epochs = h.brokers(3);
    h.create("t", 3, 3, false);
    h.keep_alive(&[(2, epochs[1]), (3, epochs[2])], 11_000);
    assert!(h.c.committed_image().broker(NodeId(1)).expect("registered").fenced);
    for p in 0..3 {
        let state = h.partition("t", p);
        assert!(!state.isr.contains(&NodeId(1)), "fenced broker left the isr of t-{p}");
        assert_ne!(state.leader, Some(NodeId(1)));
        assert!(state.leader.is_some_and(|l| state.isr.contains(&l)));
        assert!(!state.unclean);
        assert_eq!(state.partition_epoch, PartitionEpoch(1));
    }
    // t-0 was led by broker 1: new leader 2 (next replica in the isr), leader epoch bumped.
    let p0 = h.partition("t", 0);
    assert_eq!((p0.leader, p0.leader_epoch), (Some(NodeId(2)), Epoch(1)));
    // t-1 was led by 2: same leader, same leader epoch, smaller isr.
    let p1 = h.partition("t", 1);
    assert_eq!((p1.leader, p1.leader_epoch), (Some(NodeId(2)), Epoch(0)));
    // The fenced broker comes back: a new epoch, unfenced once caught up, not in any isr.
    let e1 = h.register(1);
    assert!(e1 > epochs[0]);
    h.heartbeat(1, e1);
    assert!(!h.c.committed_image().broker(NodeId(1)).expect("registered").fenced);
    assert!(
        !h.partition("t", 0).isr.contains(&NodeId(1)),
        "rejoining the isr is replication's job"
    );
}

/// A controlled shutdown moves leadership and ISR places away before the broker may stop;
/// its clean restart (marker = that epoch) keeps its ELR place, and it is unfenced again.
#[test]
fn controlled_shutdown_moves_leadership_then_lets_the_broker_stop() {
    let mut h = Harness::new();
    let epochs = h.brokers(3);
    h.create("t", 3, 3, false);
    let led_by_1: Vec<u32> =
        (0..3).filter(|p| h.partition("t", *p).leader == Some(NodeId(1))).collect();
    assert!(!led_by_1.is_empty(), "round-robin placement gives broker 1 a leadership");
    let reply = h.shut_down(1, epochs[0]);
    let done = HeartbeatReply { is_fenced: true, should_shut_down: true };
    assert_eq!(reply, ControllerResponse::BrokerHeartbeat(Ok(done)));
    for p in 0..3 {
        let state = h.partition("t", p);
        assert_ne!(state.leader, Some(NodeId(1)), "t-{p} still led by the stopping broker");
        assert!(!state.isr.contains(&NodeId(1)), "t-{p}: the stopping broker left the ISR");
        assert!(!state.unclean, "t-{p}: a controlled shutdown is clean");
    }
    assert_eq!(h.shut_down(1, epochs[0]), ControllerResponse::BrokerHeartbeat(Ok(done)));
    let e1 = h.register_after(1, Some(epochs[0]));
    assert_eq!(
        h.heartbeat(1, e1),
        ControllerResponse::BrokerHeartbeat(Ok(HeartbeatReply::fenced(false)))
    );
}

fn members(ids: &[u32]) -> Vec<IsrMember> {
    ids.iter().map(|&b| IsrMember { broker: NodeId(b), broker_epoch: None }).collect()
}

/// Shrinks t-0's ISR to its leader (broker 1), then lets broker 1's session expire.
fn lose_the_only_in_sync_replica(unclean: bool) -> (Harness, Vec<BrokerEpoch>) {
    lose_the_only_in_sync_replica_with(unclean, ControllerConfig::default())
}

fn lose_the_only_in_sync_replica_with(
    unclean: bool,
    config: ControllerConfig,
) -> (Harness, Vec<BrokerEpoch>) {
    let mut h = Harness::with_config(config);
    let epochs = h.brokers(2);
    h.create("t", 1, 2, unclean);
    let req = ControllerRequest::AlterPartition {
        tp: TopicPartition::new("t", 0),
        leader_id: NodeId(1),
        leader_epoch: Epoch(0),
        partition_epoch: PartitionEpoch(0),
        new_isr: members(&[1]),
    };
    assert!(matches!(h.request(1, req), ControllerResponse::AlterPartition(Ok(_))));
    h.keep_alive(&[(2, epochs[1])], 11_000);
    (h, epochs)
}

/// Kafka before KIP-966: the last ISR member stays in the ISR and leads again after any
/// restart, whatever its restart lost.
#[test]
fn pre_kip966_no_live_isr_member_leaves_the_partition_offline_until_it_returns() {
    let config =
        ControllerConfig { eligible_leader_replicas: false, ..ControllerConfig::default() };
    let (mut h, _) = lose_the_only_in_sync_replica_with(false, config);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, None);
    assert_eq!(p.isr, vec![NodeId(1)], "the last in-sync replica stays in the isr");
    assert_eq!(p.leader_epoch, Epoch(1));
    assert!(!p.unclean);
    // When broker 1 returns and catches up, it leads again, cleanly.
    let e1 = h.register(1);
    h.heartbeat(1, e1);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.leader_epoch, p.unclean), (Some(NodeId(1)), Epoch(2), false));
}

#[test]
fn unclean_election_only_when_enabled_and_flagged() {
    let (h, _) = lose_the_only_in_sync_replica(true);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, Some(NodeId(2)));
    assert_eq!(p.isr, vec![NodeId(2)]);
    assert!(p.unclean, "an election outside the isr is flagged");
    assert_eq!(p.leader_epoch, Epoch(1));
}

#[test]
fn alter_partition_validates_epochs_and_eligibility() {
    let mut h = Harness::new();
    let epochs = h.brokers(3);
    h.create("t", 1, 3, false);
    let tp = TopicPartition::new("t", 0);
    let alter = |le: u32, pe: u32, isr: &[u32]| ControllerRequest::AlterPartition {
        tp: tp.clone(),
        leader_id: NodeId(1),
        leader_epoch: Epoch(le),
        partition_epoch: PartitionEpoch(pe),
        new_isr: members(isr),
    };
    let ok = h.request(1, alter(0, 0, &[1, 2]));
    let ControllerResponse::AlterPartition(Ok(state)) = ok else { panic!("accepted: {ok:?}") };
    assert_eq!(state.partition_epoch, PartitionEpoch(1));
    assert_eq!(h.partition("t", 0).isr, vec![NodeId(1), NodeId(2)]);
    // Built on the old partition epoch.
    assert!(matches!(
        h.request(1, alter(0, 0, &[1, 2, 3])),
        ControllerResponse::AlterPartition(Err(ControllerError::InvalidUpdateVersion { .. }))
    ));
    // Broker 3 is fenced: it may not join.
    h.keep_alive(&[(1, epochs[0]), (2, epochs[1])], 11_000);
    assert!(matches!(
        h.request(1, alter(0, 1, &[1, 2, 3])),
        ControllerResponse::AlterPartition(Err(ControllerError::IneligibleReplica {
            broker: NodeId(3),
            ..
        }))
    ));
    // Leadership moves when broker 1 is fenced; the old leader's epoch is then stale.
    h.keep_alive(&[(2, epochs[1])], 11_000);
    assert_eq!(h.partition("t", 0).leader, Some(NodeId(2)));
    assert!(matches!(
        h.request(1, alter(0, 2, &[1, 2])),
        ControllerResponse::AlterPartition(Err(ControllerError::FencedLeaderEpoch { .. }))
    ));
}

#[test]
fn a_follower_controller_refuses_requests() {
    let raft = RaftConfig::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let mut c = QuorumController::new(
        raft,
        ControllerConfig::default(),
        PersistentState::default(),
        1,
        Millis(0),
    )
    .expect("valid");
    c.handle(
        NodeId(7),
        9,
        ControllerRequest::BrokerRegistration { broker_id: NodeId(7), previous_broker_epoch: None },
        Millis(1),
    );
    let ready = c.take_ready();
    assert_eq!(
        ready.replies,
        vec![ControllerReply {
            to: NodeId(7),
            request_id: 9,
            response: ControllerResponse::BrokerRegistration(Err(ControllerError::NotController {
                leader_hint: None
            })),
        }]
    );
}

#[test]
fn three_controllers_converge_on_one_image() {
    let voters = vec![NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes: Vec<QuorumController> = voters
        .iter()
        .map(|&id| {
            QuorumController::new(
                RaftConfig::new(id, voters.clone()),
                ControllerConfig::default(),
                PersistentState::default(),
                u64::from(id.0),
                Millis(0),
            )
            .expect("valid")
        })
        .collect();
    let mut now = Millis(0);
    let mut replies = Vec::new();
    let step =
        |nodes: &mut Vec<QuorumController>, now: Millis, replies: &mut Vec<ControllerReply>| {
            let mut queue = Vec::new();
            for n in nodes.iter_mut() {
                n.tick(now);
            }
            loop {
                for n in nodes.iter_mut() {
                    while n.has_ready() {
                        let ready = n.take_ready();
                        n.on_persisted(ready.raft.number);
                        queue.extend(ready.raft.messages);
                        replies.extend(ready.replies);
                    }
                }
                if queue.is_empty() {
                    break;
                }
                for msg in std::mem::take(&mut queue) {
                    let to = msg.to.0 as usize - 1;
                    let _ = nodes[to].step(msg, now);
                }
            }
        };
    for _ in 0..40 {
        now = now.plus_ms(100);
        step(&mut nodes, now, &mut replies);
    }
    let active: Vec<usize> = (0..3).filter(|&i| nodes[i].is_active()).collect();
    assert_eq!(active.len(), 1);
    let a = active[0];
    nodes[a].handle(
        NodeId(10),
        1,
        ControllerRequest::BrokerRegistration {
            broker_id: NodeId(10),
            previous_broker_epoch: None,
        },
        now,
    );
    for _ in 0..5 {
        now = now.plus_ms(100);
        step(&mut nodes, now, &mut replies);
    }
    assert!(replies.iter().any(|r| r.request_id == 1
        && matches!(r.response, ControllerResponse::BrokerRegistration(Ok(_)))));
    for n in &nodes {
        assert_eq!(n.committed_image(), nodes[a].committed_image());
        assert!(n.committed_image().broker(NodeId(10)).is_some());
    }
}

/// KIP-966, as seen by replicated-safe seed 134: the ISR shrinks by fencing to a broker
/// that then restarts with its unsynced tail gone. The broker fenced out of the ISR below
/// min.insync is an eligible leader replica and leads once back; the restarted one does not.
#[test]
fn an_eligible_leader_replica_leads_instead_of_the_last_isr_member_after_its_restart() {
    let mut h = Harness::new();
    let epochs = h.brokers(3);
    h.create_rf3_min_insync2("t");
    // Broker 3 stops heartbeating first, then broker 2: the ISR shrinks to {1}; 2 left it
    // below min.insync with every committed record, so it is eligible.
    h.keep_alive(&[(1, epochs[0]), (2, epochs[1])], 11_000);
    h.keep_alive(&[(1, epochs[0])], 11_000);
    let p = h.partition("t", 0);
    assert_eq!(p.isr, vec![NodeId(1)]);
    assert_eq!(p.elr, vec![NodeId(2)], "fenced out below min.insync: eligible");
    // Broker 1 loses power; its session expires: the ISR empties into the ELR.
    h.advance(11_000);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (None, vec![]), "last member fenced, offline");
    assert_eq!(p.elr, vec![NodeId(1), NodeId(2)]);
    assert_eq!(p.last_known_leader, Some(NodeId(1)));
    // It registers again after an unclean shutdown: it leaves the ELR.
    let e1 = h.register(1);
    let p = h.partition("t", 0);
    assert_eq!(p.elr, vec![NodeId(2)], "a restarted member is not trusted: {p:?}");
    h.heartbeat(1, e1);
    assert_eq!(h.partition("t", 0).leader, None, "the restarted broker does not lead");
    // Broker 2 comes back and catches up: elected cleanly from the ELR.
    h.heartbeat(2, epochs[1]);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, Some(NodeId(2)));
    assert_eq!(p.isr, vec![NodeId(2)]);
    assert!(p.elr.is_empty() && !p.unclean);
}

/// KIP-966 with `unclean.recovery.strategy` none: the last ISR member fenced moves to the
/// ELR; its restart after an unclean shutdown takes it out; the partition then waits.
#[test]
fn kip966_an_unclean_restart_of_the_last_member_leaves_the_partition_offline() {
    let config =
        ControllerConfig { unclean_recovery: UncleanRecovery::None, ..ControllerConfig::default() };
    let (mut h, _) = lose_the_only_in_sync_replica_with(false, config);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone(), p.elr.clone()), (None, vec![], vec![NodeId(1)]));
    let e1 = h.register(1);
    assert!(h.partition("t", 0).elr.is_empty(), "an unclean shutdown leaves the elr");
    h.heartbeat(1, e1);
    let p = h.partition("t", 0);
    assert_eq!(p.leader, None, "no isr, no elr, no recovery: offline: {p:?}");
}

/// KIP-966 balanced recovery, as Kafka 4's controller does it: the last known leader is
/// elected once back, flagged unclean (it may have lost its unsynced tail).
#[test]
fn kip966_balanced_recovery_elects_the_last_known_leader_flagged_unclean() {
    let (mut h, _) = lose_the_only_in_sync_replica(false);
    let e1 = h.register(1);
    h.heartbeat(1, e1);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone()), (Some(NodeId(1)), vec![NodeId(1)]));
    assert!(p.unclean, "recovery outside any isr or elr is unclean: {p:?}");
    assert_eq!(p.last_known_leader, None, "a leader clears the last known leader");
}

/// KIP-966: a broker whose clean-shutdown marker names its registered epoch kept its log,
/// so it stays in the ELR and is elected cleanly.
#[test]
fn kip966_a_clean_shutdown_keeps_the_replica_eligible() {
    let (mut h, epochs) = lose_the_only_in_sync_replica(false);
    let e1 = h.register_after(1, Some(epochs[0]));
    assert_eq!(h.partition("t", 0).elr, vec![NodeId(1)], "clean shutdown: still eligible");
    h.heartbeat(1, e1);
    let p = h.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone(), p.unclean), (Some(NodeId(1)), vec![NodeId(1)], false));
    assert!(p.elr.is_empty());
}

/// KIP-966: the ELR follows every change, AlterPartition included: shrinking below
/// min.insync moves the removed members into it, growing back to min.insync clears it.
#[test]
fn kip966_alter_partition_maintains_the_elr() {
    let mut h = Harness::new();
    h.brokers(3);
    h.create_rf3_min_insync2("t");
    let alter = |pe: u32, isr: &[u32]| ControllerRequest::AlterPartition {
        tp: TopicPartition::new("t", 0),
        leader_id: NodeId(1),
        leader_epoch: Epoch(0),
        partition_epoch: PartitionEpoch(pe),
        new_isr: members(isr),
    };
    h.request(1, alter(0, &[1]));
    let p = h.partition("t", 0);
    assert_eq!((p.isr.clone(), p.elr.clone()), (vec![NodeId(1)], vec![NodeId(2), NodeId(3)]));
    h.request(1, alter(1, &[1, 3]));
    let p = h.partition("t", 0);
    assert_eq!((p.isr.clone(), p.elr.clone()), (vec![NodeId(1), NodeId(3)], vec![]));
}

/// KIP-903: an ISR expansion naming a broker epoch the broker no longer has (it restarted
/// since the leader saw it catch up) is refused; without epochs (before KIP-903) it is not.
#[test]
fn kip903_an_expansion_with_a_stale_broker_epoch_is_refused() {
    let mut h = Harness::new();
    let epochs = h.brokers(2);
    h.create("t", 1, 2, false);
    let alter = |pe: u32, isr: Vec<IsrMember>| ControllerRequest::AlterPartition {
        tp: TopicPartition::new("t", 0),
        leader_id: NodeId(1),
        leader_epoch: Epoch(0),
        partition_epoch: PartitionEpoch(pe),
        new_isr: isr,
    };
    h.request(1, alter(0, members(&[1])));
    // Broker 2 restarts: a new broker epoch, and it catches up (unfenced).
    let restarted = h.register(2);
    assert!(restarted > epochs[1]);
    h.heartbeat(2, restarted);
    let stale = vec![
        IsrMember { broker: NodeId(1), broker_epoch: Some(epochs[0]) },
        IsrMember { broker: NodeId(2), broker_epoch: Some(epochs[1]) },
    ];
    assert!(matches!(
        h.request(1, alter(1, stale)),
        ControllerResponse::AlterPartition(Err(ControllerError::IneligibleReplica {
            broker: NodeId(2),
            ..
        }))
    ));
    let current = vec![
        IsrMember { broker: NodeId(1), broker_epoch: Some(epochs[0]) },
        IsrMember { broker: NodeId(2), broker_epoch: Some(restarted) },
    ];
    assert!(matches!(h.request(1, alter(1, current)), ControllerResponse::AlterPartition(Ok(_))));
    // Without epochs the controller cannot tell (the pre-KIP-903 request).
    h.request(1, alter(2, members(&[1])));
    assert!(matches!(
        h.request(1, alter(3, members(&[1, 2]))),
        ControllerResponse::AlterPartition(Ok(_))
    ));
}
