//! The nemesis's safe envelope: which nodes each live fault holds down or impairs, and
//! whether a new fault may join them. With `spare_last_replica`, a fault is admitted only if,
//! alongside every fault it overlaps, each partition keeps a spare: a replica in the ISR the
//! controllers last committed, not fenced, holding the partition's records (see `holders`),
//! and neither down, paused, cut off nor under a disk fault. Checked whenever a kill (crash, power loss)
//! of a broker is among the overlapping faults: a kill is what loses an unsynced log, and
//! once every holder of the records is killed or impaired nothing can bring them back. A
//! fault's consequences outlive it: a broker cut off or paused may have let its session
//! lapse and is fenced when the controller notices, so it is no spare until a grace (the
//! broker session timeout) has passed since its last impairment ended. The same holds for
//! every broker while the active controller is paused or cut off (`with_controller_fencing`):
//! back in charge, it fences the brokers whose heartbeats it missed.
//! Since live faults only end, a fault admitted against every fault live at its start keeps
//! its spares for its whole duration. Pure: no madsim calls, so every rule is unit-tested.

use crate::world::cluster::ClusterView;
use kafkasim::types::{NodeId, Offset, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// What one fault does to nodes while it lasts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impact {
    /// Nodes it kills (down until its repair restarts them).
    pub kills: Vec<String>,
    /// Nodes it pauses, cuts off or puts under a disk fault (the killed ones are implied).
    pub impairs: Vec<String>,
}

impl Impact {
    fn kills_a_broker(&self) -> bool {
        self.kills.iter().any(|node| is_broker(node))
    }

    fn touches(&self, node: &str) -> bool {
        self.kills.iter().chain(&self.impairs).any(|n| n == node)
    }
}

/// Per partition, the brokers that could keep its records, by node name.
pub type Holders = BTreeMap<TopicPartition, Vec<String>>;

/// The live faults, each under the id its repair releases, and the brokers they killed.
#[derive(Debug, Default)]
pub struct Envelope {
    live: BTreeMap<u64, Impact>,
    next_id: u64,
    /// How long a node stays no spare after its last impairment ended, in ms.
    grace_ms: u64,
    /// Per node whose impairment ended: until when (simulated ms) it is no spare.
    recovering: BTreeMap<String, u64>,
    /// Brokers killed (their unsynced tails may be gone), each with the partitions whose
    /// HW it has been seen to reach again since.
    killed: BTreeMap<String, BTreeSet<TopicPartition>>,
}

impl Envelope {
    pub fn new(grace_ms: u64) -> Envelope {
        Envelope { grace_ms, ..Envelope::default() }
    }

    /// Whether a live fault holds `node` down.
    pub fn is_down(&self, node: &str) -> bool {
        self.live.values().any(|impact| impact.kills.iter().any(|n| n == node))
    }

    /// Err with the reason when `impact`, joined to the live faults, would leave a partition
    /// without a spare among `holders` while a broker is killed.
    pub fn check_spares(
        &self,
        impact: &Impact,
        holders: &Holders,
        now_ms: u64,
    ) -> Result<(), String> {
        let kill_overlaps =
            impact.kills_a_broker() || self.live.values().any(Impact::kills_a_broker);
        let touches_a_broker = impact.kills.iter().chain(&impact.impairs).any(|n| is_broker(n));
        if !kill_overlaps || !touches_a_broker {
            return Ok(());
        }
        let spared = |node: &String| {
            !impact.touches(node)
                && !self.live.values().any(|live| live.touches(node))
                && self.recovering.get(node).is_none_or(|until| *until <= now_ms)
        };
        for (tp, brokers) in holders {
            if !brokers.iter().any(spared) {
                return Err(format!(
                    "it would leave {tp} without an unimpaired in-sync replica holding its records (holders {brokers:?}) while a broker is killed"
                ));
            }
        }
        Ok(())
    }

    /// Registers a fault as live; its repair passes the id to `release`.
    pub fn hold(&mut self, impact: Impact) -> u64 {
        for broker in impact.kills.iter().filter(|n| is_broker(n)) {
            self.killed.insert(broker.clone(), BTreeSet::new());
        }
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id, impact);
        id
    }

    /// The fault ended at `now_ms`: its nodes recover for the grace. None if the heal
    /// already cleared it.
    pub fn release(&mut self, id: u64, now_ms: u64) -> Option<Impact> {
        let impact = self.live.remove(&id)?;
        for node in impact.kills.iter().chain(&impact.impairs) {
            let until = self.recovering.entry(node.clone()).or_insert(0);
            *until = (*until).max(now_ms + self.grace_ms);
        }
        Some(impact)
    }

    /// Every fault ended (the heal).
    pub fn clear(&mut self) {
        self.live.clear();
        self.recovering.clear();
    }

    /// The spares each partition has now: brokers in the ISR of the newest committed
    /// metadata, not fenced, that reported since their last restart. An in-sync replica
    /// holds every record below the HW (its leader advances the HW only past what every
    /// ISR member fetched), whatever its last report, which lags a tick. A broker the
    /// nemesis killed may have lost its unsynced tail yet stay listed until the controller
    /// hears of its restart: it counts again, per partition, once its reported log end
    /// reaches the highest HW any replica reported. Empty until a controller has committed
    /// metadata (nothing to protect yet).
    pub fn holders(&mut self, cluster: &ClusterView) -> Holders {
        let Some((_, image)) = &cluster.committed else { return Holders::new() };
        let mut holders = Holders::new();
        for (tp, partition) in image.partitions() {
            let reported = |broker: &NodeId| cluster.replicas.get(&(*broker, tp.clone()));
            let hw = partition
                .replicas
                .iter()
                .filter_map(reported)
                .map(|r| r.high_watermark)
                .max()
                .unwrap_or(Offset(0));
            let mut brokers = Vec::new();
            for broker in partition.isr.iter().filter(|b| image.is_live(**b)) {
                let Some(replica) = reported(broker) else { continue };
                let name = format!("broker-{}", broker.0);
                if let Some(caught_up) = self.killed.get_mut(&name) {
                    if !caught_up.contains(&tp) && replica.log_end_offset < hw {
                        continue;
                    }
                    caught_up.insert(tp.clone());
                }
                brokers.push(name);
            }
            holders.insert(tp, brokers);
        }
        holders
    }
}

/// `impact` widened for the controller it may impair: an active controller paused or cut
/// off misses every broker's heartbeats, and on its return (still active: no quorum elected
/// another) fences each broker whose session it saw lapse, in-sync spares included, which
/// KIP-966 then does not keep electable while the ISR stays at `min.insync.replicas` (swarm
/// seed 9563: the active controller paused for 6 s fenced all three brokers on resuming).
/// Every broker of `brokers` is impaired with it. The nemesis widens only faults that
/// silence (`Rule::silences`): a controller whose disk fails halts, and its successor starts
/// fresh sessions.
pub fn with_controller_fencing(
    mut impact: Impact,
    active: Option<&str>,
    brokers: &[String],
) -> Impact {
    let Some(active) = active else { return impact };
    if impact.impairs.iter().any(|node| node == active) {
        for broker in brokers.iter().filter(|b| is_broker(b)) {
            if !impact.touches(broker) {
                impact.impairs.push(broker.clone());
            }
        }
    }
    impact
}

fn is_broker(node: &str) -> bool {
    node.starts_with("broker-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::cluster::ReplicaView;
    use kafkasim::controller::{BrokerState, MetadataImage, PartitionState, TopicState};
    use kafkasim::types::{BrokerEpoch, Epoch, PartitionEpoch};

    fn names(nodes: &[&str]) -> Vec<String> {
        nodes.iter().map(|n| n.to_string()).collect()
    }

    fn kill(nodes: &[&str]) -> Impact {
        Impact { kills: names(nodes), impairs: Vec::new() }
    }

    fn impair(nodes: &[&str]) -> Impact {
        Impact { kills: Vec::new(), impairs: names(nodes) }
    }

    /// One partition replicated on brokers 0..3 whose holders are `brokers`.
    fn holding(brokers: &[&str]) -> Holders {
        Holders::from([(TopicPartition::new("events", 0), names(brokers))])
    }

    #[test]
    fn impairing_the_active_controller_impairs_every_broker() {
        let brokers = names(&["broker-0", "broker-1", "controller-0"]);
        let paused =
            with_controller_fencing(impair(&["controller-1"]), Some("controller-1"), &brokers);
        assert_eq!(paused.impairs, names(&["controller-1", "broker-0", "broker-1"]));
        let follower =
            with_controller_fencing(impair(&["controller-0"]), Some("controller-1"), &brokers);
        assert_eq!(follower, impair(&["controller-0"]), "a follower controller fences no one");
        let crashed =
            with_controller_fencing(kill(&["controller-1"]), Some("controller-1"), &brokers);
        assert_eq!(
            crashed,
            kill(&["controller-1"]),
            "a restarted controller starts fresh sessions"
        );
        // With a power loss live, no broker is a spare while the active controller is paused.
        let mut envelope = Envelope::default();
        envelope.hold(paused);
        let holders = holding(&["broker-0", "broker-1"]);
        assert!(envelope.check_spares(&kill(&["broker-1"]), &holders, 0).is_err());
    }

    #[test]
    fn a_kill_that_leaves_no_unimpaired_holder_is_refused() {
        let envelope = Envelope::default();
        let holders = holding(&["broker-0", "broker-1"]);
        assert!(envelope.check_spares(&kill(&["broker-0", "broker-1"]), &holders, 0).is_err());
        assert_eq!(envelope.check_spares(&kill(&["broker-0", "broker-2"]), &holders, 0), Ok(()));
    }

    #[test]
    fn impaired_holders_are_no_spares_while_a_broker_is_down() {
        let mut envelope = Envelope::default();
        let holders = holding(&["broker-0", "broker-1", "broker-2"]);
        let paused = envelope.hold(impair(&["broker-2"]));
        assert_eq!(envelope.check_spares(&kill(&["broker-0"]), &holders, 0), Ok(()));
        let power_loss = envelope.hold(kill(&["broker-0"]));
        let refused = envelope.check_spares(&impair(&["broker-1"]), &holders, 0);
        assert!(refused.is_err(), "broker-1 is the last unimpaired holder: {refused:?}");
        envelope.release(paused, 0);
        assert_eq!(envelope.check_spares(&impair(&["broker-1"]), &holders, 0), Ok(()));
        envelope.release(power_loss, 0);
        let both = impair(&["broker-1", "broker-2"]);
        assert_eq!(envelope.check_spares(&both, &holders, 0), Ok(()), "no broker is killed");
    }

    #[test]
    fn the_refusal_holds_while_the_earlier_kill_is_live() {
        let mut envelope = Envelope::default();
        let holders = holding(&["broker-0", "broker-1"]);
        let crash = envelope.hold(kill(&["broker-0"]));
        assert!(envelope.is_down("broker-0"));
        for _ in 0..3 {
            assert!(envelope.check_spares(&impair(&["broker-1"]), &holders, 0).is_err());
            assert!(envelope.check_spares(&kill(&["broker-1"]), &holders, 0).is_err());
        }
        assert_eq!(envelope.check_spares(&impair(&["broker-2"]), &holders, 0), Ok(()));
        assert_eq!(envelope.check_spares(&impair(&["controller-0"]), &holders, 0), Ok(()));
        assert_eq!(envelope.release(crash, 0), Some(kill(&["broker-0"])));
        assert!(!envelope.is_down("broker-0"));
        assert_eq!(envelope.check_spares(&kill(&["broker-1"]), &holders, 0), Ok(()));
        envelope.hold(kill(&["broker-1"]));
        envelope.clear();
        assert_eq!(envelope.check_spares(&impair(&["broker-0"]), &holders, 0), Ok(()));
    }

    #[test]
    fn a_broker_impaired_lately_is_no_spare_until_its_grace_passed() {
        let mut envelope = Envelope::new(9_000);
        let holders = holding(&["broker-1", "broker-2"]);
        let cut = envelope.hold(impair(&["broker-1", "broker-2"]));
        envelope.release(cut, 10_000);
        let refused = envelope.check_spares(&kill(&["broker-1"]), &holders, 12_000);
        assert!(refused.is_err(), "broker-2's session may lapse until 19 s: {refused:?}");
        assert_eq!(envelope.check_spares(&kill(&["broker-1"]), &holders, 19_000), Ok(()));
        assert_eq!(envelope.check_spares(&impair(&["broker-1"]), &holders, 12_000), Ok(()));
    }

    fn cluster(isr: &[u32], fenced: &[u32], leos: &[(u32, u64, u64)]) -> ClusterView {
        let brokers = (0..3)
            .map(|b| {
                (
                    NodeId(b),
                    BrokerState { broker_epoch: BrokerEpoch(1), fenced: fenced.contains(&b) },
                )
            })
            .collect();
        let partition = PartitionState {
            replicas: vec![NodeId(0), NodeId(1), NodeId(2)],
            isr: isr.iter().map(|b| NodeId(*b)).collect(),
            elr: Vec::new(),
            last_known_leader: None,
            leader: isr.first().map(|b| NodeId(*b)),
            leader_epoch: Epoch(1),
            partition_epoch: PartitionEpoch(1),
            unclean: false,
        };
        let topic = TopicState {
            unclean_leader_election: false,
            min_insync_replicas: 2,
            partitions: vec![partition],
        };
        let image =
            MetadataImage { brokers, topics: BTreeMap::from([("events".to_string(), topic)]) };
        let mut view = ClusterView { committed: Some((7, image)), ..Default::default() };
        for (broker, hw, leo) in leos {
            let replica = ReplicaView {
                high_watermark: Offset(*hw),
                log_end_offset: Offset(*leo),
                leads: false,
            };
            view.replicas.insert((NodeId(*broker), TopicPartition::new("events", 0)), replica);
        }
        view
    }

    #[test]
    fn holders_are_unfenced_isr_members_that_reported() {
        let mut envelope = Envelope::default();
        let tp = TopicPartition::new("events", 0);
        let view = cluster(&[0, 1, 2], &[2], &[(0, 10, 12), (1, 9, 9), (2, 10, 12)]);
        let both = names(&["broker-0", "broker-1"]);
        assert_eq!(envelope.holders(&view)[&tp], both, "2 is fenced; 1's report lags a tick");
        let view = cluster(&[0, 1], &[], &[(0, 10, 12), (1, 10, 10), (2, 10, 12)]);
        assert_eq!(envelope.holders(&view)[&tp], both, "2 is not in the isr");
        let view = cluster(&[0, 1], &[], &[(0, 10, 12)]);
        assert_eq!(envelope.holders(&view)[&tp], names(&["broker-0"]), "1 has not reported");
        assert!(envelope.holders(&ClusterView::default()).is_empty());
    }

    #[test]
    fn a_killed_broker_holds_the_records_again_once_it_reached_the_hw() {
        let mut envelope = Envelope::default();
        let tp = TopicPartition::new("events", 0);
        let crash = envelope.hold(kill(&["broker-1"]));
        envelope.release(crash, 0);
        let emptied = cluster(&[0, 1], &[], &[(0, 10, 12), (1, 3, 3)]);
        assert_eq!(envelope.holders(&emptied)[&tp], names(&["broker-0"]), "1 lost its tail");
        let caught_up = cluster(&[0, 1], &[], &[(0, 10, 12), (1, 10, 11)]);
        let both = names(&["broker-0", "broker-1"]);
        assert_eq!(envelope.holders(&caught_up)[&tp], both);
        let lagging_a_tick = cluster(&[0, 1], &[], &[(0, 14, 15), (1, 12, 13)]);
        assert_eq!(envelope.holders(&lagging_a_tick)[&tp], both, "caught up once is enough");
        envelope.hold(kill(&["broker-1"]));
        assert_eq!(envelope.holders(&lagging_a_tick)[&tp], names(&["broker-0"]), "killed again");
    }
}
