//! The client-side metadata cache shared by producer and consumer: the brokers, the
//! partition count of each topic, and the leader (with its epoch) of each partition.
//!
//! The cache is only a belief. It goes stale when a broker answers NotLeaderOrFollower or
//! UnknownTopicOrPartition, or a connection breaks; the owner then marks it and emits a
//! `RefreshMetadata` action, at most once per `refresh_backoff_ms` (Kafka's
//! retry.backoff.ms), until a `MetadataResponse` comes back through `update`. The cache
//! does not send the metadata request itself: the node shell does, to the node
//! `least_loaded_node` names (Kafka's NetworkClient.leastLoadedNode), so a paused or
//! unreachable leader does not also hold up the rediscovery of its successor. With a
//! `max_age_ms` (Kafka's metadata.max.age.ms) the cache also asks again that long after
//! its last request, stale or not.
//!
//! Leader epochs never go back (KIP-320; Kafka's `Metadata.updateLatestMetadata`): a
//! broker that missed a leader change (paused, cut off) still answers with its old image,
//! and a partition whose epoch there is older than one already seen keeps what the cache
//! knew, and the cache stays stale until a broker names the newer leader again.

use crate::protocol::{ErrorCode, MetadataResponse};
use crate::types::{Epoch, Millis, NodeId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
struct PartitionInfo {
    leader: Option<NodeId>,
    leader_epoch: Epoch,
    /// The in-sync replicas, sorted: where a consumer may read (KIP-392).
    isr: Vec<NodeId>,
}

#[derive(Clone, Debug)]
pub struct MetadataCache {
    brokers: Vec<NodeId>,
    /// Partitions by topic, indexed by partition number.
    topics: BTreeMap<String, Vec<PartitionInfo>>,
    /// Topics the owner wants metadata for (every refresh asks for these).
    wanted: BTreeSet<String>,
    refresh_needed: bool,
    last_refresh_request: Option<Millis>,
    refresh_backoff_ms: u64,
    /// metadata.max.age.ms: refresh this long after the last request even when nothing
    /// looks stale. None: only on demand.
    max_age_ms: Option<u64>,
    /// When each broker last failed the owner (disconnect, request timeout), until it
    /// answers again: metadata requests avoid it meanwhile.
    failed_at: BTreeMap<NodeId, Millis>,
    /// Rotates ties in `least_loaded_node`.
    turn: u64,
    /// Number of responses applied; lets tests and owners see that an update happened.
    version: u64,
    /// The highest leader epoch seen per partition, kept across topic invalidations.
    last_seen_epochs: BTreeMap<TopicPartition, Epoch>,
}

impl MetadataCache {
    pub fn new(refresh_backoff_ms: u64) -> Self {
        MetadataCache {
            brokers: Vec::new(),
            topics: BTreeMap::new(),
            wanted: BTreeSet::new(),
            refresh_needed: true,
            last_refresh_request: None,
            refresh_backoff_ms,
            max_age_ms: None,
            failed_at: BTreeMap::new(),
            turn: 0,
            version: 0,
            last_seen_epochs: BTreeMap::new(),
        }
    }

    /// Kafka's metadata.max.age.ms: a periodic refresh even when nothing looks stale.
    pub fn set_max_age(&mut self, max_age_ms: u64) {
        self.max_age_ms = Some(max_age_ms);
    }

    /// Where to send a metadata request (Kafka's leastLoadedNode): among the known brokers
    /// and `bootstrap`, one with the fewest requests in flight (`in_flight`) that has not
    /// failed within the last `avoid_ms`; ties go round, so retries spread over the
    /// cluster. All failed: one of them anyway.
    pub fn least_loaded_node(
        &mut self,
        now: Millis,
        bootstrap: &[NodeId],
        avoid_ms: u64,
        in_flight: impl Fn(NodeId) -> usize,
    ) -> Option<NodeId> {
        self.turn = self.turn.wrapping_add(1);
        let failed = &self.failed_at;
        let unreachable = |n| failed.get(&n).is_some_and(|&at| now < at.plus_ms(avoid_ms));
        pick_least_loaded(&self.brokers, bootstrap, self.turn, in_flight, unreachable)
    }

    /// `node` answered: it is reachable again.
    pub fn on_answer(&mut self, node: NodeId) {
        self.failed_at.remove(&node);
    }

    /// Asks for metadata of `topic` from now on; a topic not yet known triggers a refresh.
    pub fn want_topic(&mut self, topic: &str) {
        if self.wanted.insert(topic.to_string()) && !self.topics.contains_key(topic) {
            self.refresh_needed = true;
        }
    }

    pub fn wanted_topics(&self) -> Vec<String> {
        self.wanted.iter().cloned().collect()
    }

    /// Applies a response. Topics or partitions answered with an error keep (for
    /// partitions: lose) their leader and keep the cache marked stale.
    pub fn update(&mut self, response: &MetadataResponse) {
        self.brokers = response.brokers.clone();
        self.brokers.sort();
        self.brokers.dedup();
        self.refresh_needed = false;
        for topic in &response.topics {
            if topic.error != ErrorCode::None {
                if self.wanted.contains(&topic.name) {
                    self.refresh_needed = true;
                }
                continue;
            }
            let count = topic.partitions.iter().map(|p| p.partition + 1).max().unwrap_or(0);
            let mut partitions =
                vec![
                    PartitionInfo { leader: None, leader_epoch: Epoch(0), isr: Vec::new() };
                    count as usize
                ];
            for p in &topic.partitions {
                let leader = if p.error == ErrorCode::None { p.leader } else { None };
                let fresh =
                    PartitionInfo { leader, leader_epoch: p.leader_epoch, isr: sorted(&p.isr) };
                let tp = TopicPartition::new(&topic.name, p.partition);
                partitions[p.partition as usize] = self.newest(&tp, fresh);
            }
            if partitions.iter().any(|p| p.leader.is_none()) && self.wanted.contains(&topic.name) {
                self.refresh_needed = true;
            }
            self.topics.insert(topic.name.clone(), partitions);
        }
        if self.wanted.iter().any(|t| !self.topics.contains_key(t)) {
            self.refresh_needed = true;
        }
        self.version += 1;
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn brokers(&self) -> &[NodeId] {
        &self.brokers
    }

    /// Any known broker, rotating with `turn` so retries spread over the cluster.
    pub fn any_broker(&self, turn: u64) -> Option<NodeId> {
        if self.brokers.is_empty() {
            return None;
        }
        Some(self.brokers[(turn % self.brokers.len() as u64) as usize])
    }

    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.get(topic).map(|p| p.len() as u32).filter(|&n| n > 0)
    }

    /// Partitions of `topic` with a known leader, ascending.
    pub fn available_partitions(&self, topic: &str) -> Vec<u32> {
        let Some(partitions) = self.topics.get(topic) else { return Vec::new() };
        (0..partitions.len() as u32).filter(|&p| partitions[p as usize].leader.is_some()).collect()
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<NodeId> {
        self.info(tp).and_then(|p| p.leader)
    }

    /// The replica `client` reads `tp` from when it may read from followers: one in-sync
    /// replica picked by the client's id (a stand-in for Kafka's rack-aware
    /// replica.selector), the leader when the ISR is unknown.
    pub fn read_replica(&self, tp: &TopicPartition, client: NodeId) -> Option<NodeId> {
        let info = self.info(tp)?;
        info.leader?;
        match info.isr.len() {
            0 => info.leader,
            n => Some(info.isr[client.0 as usize % n]),
        }
    }

    pub fn leader_epoch(&self, tp: &TopicPartition) -> Option<Epoch> {
        self.info(tp).map(|p| p.leader_epoch)
    }

    /// The leader of `tp` is no longer trusted (NotLeaderOrFollower and friends): forget
    /// it, so nothing is sent to it until a refresh names the leader again.
    pub fn invalidate_leader(&mut self, tp: &TopicPartition) {
        if let Some(partitions) = self.topics.get_mut(&tp.topic) {
            if let Some(p) = partitions.get_mut(tp.partition as usize) {
                p.leader = None;
            }
        }
        self.refresh_needed = true;
    }

    /// The topic is unknown to a broker (UnknownTopicOrPartition): forget what we know.
    pub fn invalidate_topic(&mut self, topic: &str) {
        self.topics.remove(topic);
        self.refresh_needed = true;
    }

    /// A connection to `node` broke or a request to it timed out: its leaderships may
    /// have moved, and metadata requests avoid it until it answers again.
    pub fn on_disconnect(&mut self, now: Millis, node: NodeId) {
        self.failed_at.insert(node, now);
        if self.topics.values().flatten().any(|p| p.leader == Some(node)) {
            self.refresh_needed = true;
        }
    }

    pub fn request_refresh(&mut self) {
        self.refresh_needed = true;
    }

    pub fn refresh_needed(&self) -> bool {
        self.refresh_needed
    }

    /// True when the owner should emit a `RefreshMetadata` action now; records the time.
    pub fn poll_refresh(&mut self, now: Millis) -> bool {
        if self.refresh_due_at().is_none_or(|at| now < at) {
            return false;
        }
        self.last_refresh_request = Some(now);
        true
    }

    /// When the next refresh may be requested: after the backoff if one is needed, else
    /// when the metadata reaches its max age (if it has one).
    pub fn refresh_due_at(&self) -> Option<Millis> {
        let last = self.last_refresh_request;
        if !self.refresh_needed {
            return Some(last?.plus_ms(self.max_age_ms?));
        }
        Some(last.map_or(Millis(0), |t| t.plus_ms(self.refresh_backoff_ms)))
    }

    /// `fresh`, unless its leader epoch is older than one seen before for `tp`: then what
    /// the cache knew (no leader if it knew nothing of that epoch).
    fn newest(&mut self, tp: &TopicPartition, fresh: PartitionInfo) -> PartitionInfo {
        let seen = self.last_seen_epochs.get(tp).copied();
        if seen.is_none_or(|seen| fresh.leader_epoch >= seen) {
            self.last_seen_epochs.insert(tp.clone(), fresh.leader_epoch);
            return fresh;
        }
        let known = self.info(tp).filter(|p| Some(p.leader_epoch) == seen).cloned();
        known.unwrap_or(PartitionInfo {
            leader: None,
            leader_epoch: seen.expect("an older epoch was compared to one seen"),
            isr: Vec::new(),
        })
    }

    fn info(&self, tp: &TopicPartition) -> Option<&PartitionInfo> {
        self.topics.get(&tp.topic).and_then(|p| p.get(tp.partition as usize))
    }
}

/// Kafka's leastLoadedNode over `brokers` and `bootstrap`: the reachable node with the
/// fewest requests in flight, starting the search at `turn`.
fn pick_least_loaded(
    brokers: &[NodeId],
    bootstrap: &[NodeId],
    turn: u64,
    in_flight: impl Fn(NodeId) -> usize,
    unreachable: impl Fn(NodeId) -> bool,
) -> Option<NodeId> {
    let mut nodes: Vec<NodeId> = brokers.iter().chain(bootstrap).copied().collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return None;
    }
    let start = (turn % nodes.len() as u64) as usize;
    let rotated = nodes[start..].iter().chain(&nodes[..start]).copied();
    let reachable: Vec<NodeId> = rotated.clone().filter(|&n| !unreachable(n)).collect();
    let candidates = if reachable.is_empty() { rotated.collect() } else { reachable };
    candidates.into_iter().min_by_key(|&n| in_flight(n))
}

fn sorted(nodes: &[NodeId]) -> Vec<NodeId> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    nodes.dedup();
    nodes
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::{PartitionMetadata, TopicMetadata};

    /// A metadata response: `leaders[i]` leads partition i of `topic`.
    pub(crate) fn metadata(
        topic: &str,
        leaders: &[Option<u32>],
        brokers: &[u32],
    ) -> MetadataResponse {
        MetadataResponse {
            brokers: brokers.iter().map(|&b| NodeId(b)).collect(),
            topics: vec![TopicMetadata {
                name: topic.to_string(),
                error: ErrorCode::None,
                partitions: leaders
                    .iter()
                    .enumerate()
                    .map(|(i, leader)| PartitionMetadata {
                        partition: i as u32,
                        error: if leader.is_some() {
                            ErrorCode::None
                        } else {
                            ErrorCode::LeaderNotAvailable
                        },
                        leader: leader.map(NodeId),
                        leader_epoch: Epoch(1),
                        replicas: brokers.iter().map(|&b| NodeId(b)).collect(),
                        isr: brokers.iter().map(|&b| NodeId(b)).collect(),
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn update_then_invalidate_then_refresh_is_rate_limited() {
        let mut cache = MetadataCache::new(100);
        cache.want_topic("t");
        assert!(cache.poll_refresh(Millis(0)));
        assert!(!cache.poll_refresh(Millis(50)), "backoff between refresh requests");
        cache.update(&metadata("t", &[Some(1), Some(2)], &[1, 2]));
        assert!(!cache.refresh_needed());
        assert_eq!(cache.partition_count("t"), Some(2));
        assert_eq!(cache.leader(&TopicPartition::new("t", 1)), Some(NodeId(2)));
        cache.invalidate_leader(&TopicPartition::new("t", 1));
        assert_eq!(cache.leader(&TopicPartition::new("t", 1)), None);
        assert_eq!(cache.available_partitions("t"), vec![0]);
        assert!(!cache.poll_refresh(Millis(99)));
        assert!(cache.poll_refresh(Millis(100)));
    }

    #[test]
    fn an_older_leader_epoch_never_replaces_a_newer_one() {
        // group-safe seed 1626: broker 1, paused through the election of broker 0 in epoch
        // 2, wakes up and answers with its old image (itself, epoch 1).
        let tp = TopicPartition::new("t", 0);
        let mut cache = MetadataCache::new(10);
        cache.want_topic("t");
        let mut newer = metadata("t", &[Some(0)], &[0, 1]);
        newer.topics[0].partitions[0].leader_epoch = Epoch(2);
        cache.update(&newer);
        cache.update(&metadata("t", &[Some(1)], &[0, 1]));
        assert_eq!((cache.leader(&tp), cache.leader_epoch(&tp)), (Some(NodeId(0)), Some(Epoch(2))));
        // Once the leader is distrusted, the stale answer does not bring broker 1 back.
        cache.invalidate_leader(&tp);
        cache.update(&metadata("t", &[Some(1)], &[0, 1]));
        assert_eq!(cache.leader(&tp), None);
        assert!(cache.refresh_needed(), "still waiting for a broker that knows epoch 2");
        cache.invalidate_topic("t");
        cache.update(&metadata("t", &[Some(1)], &[0, 1]));
        assert_eq!((cache.leader(&tp), cache.leader_epoch(&tp)), (None, Some(Epoch(2))));
        cache.update(&newer);
        assert_eq!(cache.leader(&tp), Some(NodeId(0)));
    }

    #[test]
    fn max_age_refreshes_a_fresh_cache() {
        let mut cache = MetadataCache::new(100);
        cache.want_topic("t");
        cache.set_max_age(5_000);
        assert!(cache.poll_refresh(Millis(0)));
        cache.update(&metadata("t", &[Some(1)], &[1]));
        assert_eq!(cache.refresh_due_at(), Some(Millis(5_000)));
        assert!(!cache.poll_refresh(Millis(4_999)));
        assert!(cache.poll_refresh(Millis(5_000)), "metadata.max.age.ms passed");
    }

    #[test]
    fn least_loaded_node_skips_busy_and_failed_brokers() {
        let mut cache = MetadataCache::new(100);
        let bootstrap = [NodeId(0), NodeId(1), NodeId(2)];
        let busy = |n: NodeId| usize::from(n == NodeId(0));
        cache.on_disconnect(Millis(0), NodeId(1));
        let pick =
            |cache: &mut MetadataCache, now| cache.least_loaded_node(now, &bootstrap, 50, busy);
        assert_eq!(pick(&mut cache, Millis(10)), Some(NodeId(2)), "0 is busy, 1 failed");
        assert_eq!(pick(&mut cache, Millis(10)), Some(NodeId(2)));
        let later: Vec<_> = (0..3).map(|_| pick(&mut cache, Millis(50))).collect();
        assert!(later.contains(&Some(NodeId(1))), "ties go round once 1 may be tried again");
        cache.on_disconnect(Millis(60), NodeId(1));
        cache.on_answer(NodeId(1));
        let answered: Vec<_> = (0..3).map(|_| pick(&mut cache, Millis(61))).collect();
        assert!(answered.contains(&Some(NodeId(1))), "1 answered: reachable again");
        let all_failed = [NodeId(3)];
        cache.on_disconnect(Millis(61), NodeId(3));
        let mut lone = MetadataCache::new(100);
        lone.on_disconnect(Millis(61), NodeId(3));
        assert_eq!(lone.least_loaded_node(Millis(62), &all_failed, 50, |_| 0), Some(NodeId(3)));
    }

    #[test]
    fn a_partition_without_leader_keeps_the_cache_stale() {
        let mut cache = MetadataCache::new(10);
        cache.want_topic("t");
        cache.update(&metadata("t", &[Some(1), None], &[1]));
        assert!(cache.refresh_needed());
        assert_eq!(cache.available_partitions("t"), vec![0]);
        cache.on_disconnect(Millis(0), NodeId(7));
        cache.update(&metadata("t", &[Some(1), Some(1)], &[1]));
        assert!(!cache.refresh_needed());
        cache.on_disconnect(Millis(0), NodeId(1));
        assert!(cache.refresh_needed());
    }
}
