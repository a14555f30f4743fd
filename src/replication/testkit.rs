//! Test helpers: batches, logs, and a hand-driven cluster of replicas of one partition with
//! a minimal controller (commits AlterPartition by the shared validation, elects leaders,
//! and — when asked — removes a restarted replica from the ISR, as broker-epoch fencing
//! does, KIP-841). Requests are delivered synchronously, one at a time, in the order the
//! test asks for them.

use super::*;
use crate::log::{LogConfig, PartitionLog};
use crate::protocol::{Acks, ErrorCode, FetchPartitionResponse};
use crate::record::{scan_batches, BatchBuilder, RecordBatch};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use std::collections::BTreeMap;

pub(super) const PRODUCE_TIMEOUT_MS: u64 = 30_000;

pub(super) fn new_log(name: &str) -> PartitionLog {
    PartitionLog::create(&format!("data/{name}/t-0"), LogConfig::default(), Millis(0))
}

pub(super) fn batch(values: &[&str]) -> RecordBatch {
    let mut builder = BatchBuilder::new();
    for value in values {
        builder.push(0, None, Some(value.as_bytes()), &[]);
    }
    builder.build()
}

/// One single-record batch per entry, stamped with that epoch; the value names the
/// position and epoch, so two logs built alike hold identical bytes.
pub(super) fn append_epochs(log: &mut PartitionLog, epochs: &[u32]) {
    for epoch in epochs {
        let value = format!("e{epoch}-o{}", log.log_end_offset());
        log.append_as_leader(batch(&[&value]), Epoch(*epoch), Millis(0)).expect("append");
    }
}

/// Every (offset, value) in the log.
pub(super) fn values(log: &PartitionLog) -> Vec<(u64, String)> {
    let data = log.read(log.log_start_offset(), usize::MAX, Offset(u64::MAX)).expect("read");
    let (batches, stop) = scan_batches(&data.records);
    assert!(stop.is_none(), "bad bytes in {}", log.dir());
    batches
        .iter()
        .flat_map(|b| b.records().expect("valid"))
        .map(|r| {
            let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            (r.offset.0, value.unwrap_or_default())
        })
        .collect()
}

pub(super) fn node(n: u32) -> NodeId {
    NodeId(n)
}

#[derive(Debug)]
pub(super) enum Role {
    Leader(PartitionLeader),
    Follower(PartitionFollower),
}

#[derive(Debug)]
pub(super) struct Replica {
    pub log: PartitionLog,
    pub role: Role,
}

impl Replica {
    pub fn hw(&self) -> Offset {
        match &self.role {
            Role::Leader(l) => l.high_watermark(),
            Role::Follower(f) => f.high_watermark(),
        }
    }

    pub fn follower(&mut self) -> &mut PartitionFollower {
        match &mut self.role {
            Role::Follower(f) => f,
            Role::Leader(_) => panic!("not a follower"),
        }
    }
}

/// A produce's end as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Completion {
    pub id: ProduceId,
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub error: ErrorCode,
}

#[derive(Debug)]
pub(super) struct Cluster {
    pub tp: TopicPartition,
    pub config: ReplicationConfig,
    pub now: Millis,
    /// The controller's committed state.
    pub state: PartitionState,
    pub replicas: BTreeMap<NodeId, Replica>,
    pub alter_queue: Vec<AlterPartitionRequest>,
    pub completions: Vec<Completion>,
    /// Remove a restarted replica from the ISR (broker-epoch fencing).
    pub fence_restarted: bool,
    next_id: u64,
}

impl Cluster {
    /// `n` replicas, node 1 leading epoch 1, all in sync, empty logs.
    pub fn new(n: u32, config: ReplicationConfig) -> Cluster {
        let tp = TopicPartition::new("t", 0);
        let nodes: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let state = PartitionState {
            leader: Some(node(1)),
            leader_epoch: Epoch(1),
            partition_epoch: PartitionEpoch(1),
            replicas: nodes.clone(),
            isr: nodes.clone(),
        };
        let mut replicas = BTreeMap::new();
        for id in nodes {
            let mut log = new_log(&format!("n{}", id.0));
            let role = if id == node(1) {
                let leader = PartitionLeader::new(
                    tp.clone(),
                    id,
                    &state,
                    config.clone(),
                    &log,
                    Offset::ZERO,
                    Millis(0),
                );
                Role::Leader(leader)
            } else {
                let (follower, _) = PartitionFollower::start(
                    tp.clone(),
                    id,
                    node(1),
                    Epoch(1),
                    config.clone(),
                    &mut log,
                    Offset::ZERO,
                    Millis(0),
                );
                Role::Follower(follower)
            };
            replicas.insert(id, Replica { log, role });
        }
        Cluster {
            tp,
            config,
            now: Millis(0),
            state,
            replicas,
            alter_queue: Vec::new(),
            completions: Vec::new(),
            fence_restarted: true,
            next_id: 0,
        }
    }

    pub fn leader_node(&self) -> NodeId {
        self.state.leader.expect("the partition has a leader")
    }

    pub fn leader(&self) -> &PartitionLeader {
        match &self.replicas[&self.leader_node()].role {
            Role::Leader(l) => l,
            Role::Follower(_) => panic!("controller's leader does not lead"),
        }
    }

    pub fn leader_mut(&mut self) -> &mut PartitionLeader {
        let node = self.leader_node();
        match &mut self.replicas.get_mut(&node).expect("the leader is a replica").role {
            Role::Leader(l) => l,
            Role::Follower(_) => panic!("controller's leader does not lead"),
        }
    }

    pub fn log(&self, n: NodeId) -> &PartitionLog {
        &self.replicas[&n].log
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
    }

    /// An acks=all produce of one record to the current leader.
    pub fn produce(&mut self, value: &str) -> Result<(ProduceId, Appended), ProduceError> {
        self.next_id += 1;
        let id = ProduceId(self.next_id);
        let now = self.now;
        let leader_node = self.leader_node();
        let replica = self.replicas.get_mut(&leader_node).expect("leader replica");
        let Role::Leader(leader) = &mut replica.role else { panic!("leader does not lead") };
        let appended = leader.produce(
            now,
            &mut replica.log,
            batch(&[value]),
            Acks::All,
            id,
            PRODUCE_TIMEOUT_MS,
        );
        self.collect();
        appended.map(|a| (id, a))
    }

    pub fn completion(&self, id: ProduceId) -> Option<Completion> {
        self.completions.iter().find(|c| c.id == id).copied()
    }

    /// One request of `follower` to its leader and the answer back. Returns the follower's
    /// error, if any; false-y Ok(false) when nothing was sent.
    pub fn step(&mut self, follower: NodeId) -> Result<bool, FollowerError> {
        let now = self.now;
        let replica = self.replicas.get_mut(&follower).expect("replica");
        let Role::Follower(f) = &mut replica.role else { return Ok(false) };
        let Some(request) = f.poll(&replica.log) else { return Ok(false) };
        let result = match request {
            FollowerRequest::Fetch { leader, partition } => {
                let response = match self.replicas.get_mut(&leader) {
                    Some(Replica { log, role: Role::Leader(l) }) => {
                        l.on_fetch(now, log, Some(follower), &partition)
                    }
                    _ => FetchPartitionResponse {
                        tp: partition.tp.clone(),
                        error: ErrorCode::NotLeaderOrFollower,
                        high_watermark: Offset::ZERO,
                        log_start_offset: Offset::ZERO,
                        records: Bytes::new(),
                    },
                };
                let replica = self.replicas.get_mut(&follower).expect("replica");
                let log = &mut replica.log;
                replica_follower(&mut replica.role)
                    .on_fetch_response(now, log, &response)
                    .map(|_| ())
            }
            FollowerRequest::OffsetsForLeaderEpoch { leader, partition } => {
                let answer = match self.replicas.get(&leader) {
                    Some(Replica { log, role: Role::Leader(l) }) => {
                        l.on_offsets_for_leader_epoch(log, &partition)
                    }
                    _ => crate::protocol::EpochEndOffset {
                        tp: partition.tp.clone(),
                        error: ErrorCode::NotLeaderOrFollower,
                        leader_epoch: None,
                        end_offset: None,
                    },
                };
                let replica = self.replicas.get_mut(&follower).expect("replica");
                let log = &mut replica.log;
                replica_follower(&mut replica.role)
                    .on_offsets_for_leader_epoch_response(log, &answer)
                    .map(|_| ())
            }
        };
        self.collect();
        result.map(|()| true)
    }

    /// `rounds` requests from every follower in node order.
    pub fn replicate(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let followers: Vec<NodeId> = self.replicas.keys().copied().collect();
            for f in followers {
                let _ = self.step(f);
            }
        }
    }

    pub fn tick(&mut self) {
        let now = self.now;
        let leader_node = self.leader_node();
        let replica = self.replicas.get_mut(&leader_node).expect("leader replica");
        let Role::Leader(leader) = &mut replica.role else { panic!("leader does not lead") };
        leader.tick(now, &replica.log);
        self.collect();
    }

    /// The controller answers every queued AlterPartition.
    pub fn controller_step(&mut self) {
        for request in std::mem::take(&mut self.alter_queue) {
            let result = validate_alter_partition(&self.state, &request);
            if let Ok(next) = &result {
                invariants::leader_in_isr(request.leader, &next.isr).expect("leader in isr");
                self.state = next.clone();
            }
            let now = self.now;
            if let Some(Replica { log, role: Role::Leader(l) }) =
                self.replicas.get_mut(&request.leader)
            {
                if l.leader_epoch() == request.leader_epoch {
                    l.on_alter_partition_response(now, log, result).expect("same leader");
                }
            }
            self.collect();
        }
    }

    /// A clean leader change to `new_leader` (in the ISR): epochs bump, the old leader
    /// resigns and follows, the others start following the new one.
    pub fn elect(&mut self, new_leader: NodeId) {
        assert!(self.state.isr.contains(&new_leader), "unclean election of {new_leader}");
        self.state.leader = Some(new_leader);
        self.state.leader_epoch = Epoch(self.state.leader_epoch.0 + 1);
        self.state.partition_epoch = self.state.partition_epoch.next();
        let nodes: Vec<NodeId> = self.replicas.keys().copied().collect();
        for n in nodes {
            self.restart_role(n, None);
        }
        self.alter_queue.clear();
    }

    /// A crash and restart of follower `n`: its log keeps the flushed prefix and `keep`
    /// more offsets of the unsynced tail (batches stay whole); it starts following again
    /// with the HW it had (the freshest checkpoint it could have written).
    pub fn restart(&mut self, n: NodeId, keep: u64) {
        assert_ne!(n, self.leader_node(), "restart of the leader: use crash_leader");
        let hw_checkpoint = self.crash(n, keep);
        if self.fence_restarted {
            self.state.isr.retain(|r| *r != n);
            self.state.partition_epoch = self.state.partition_epoch.next();
            self.publish();
        }
        self.restart_role(n, Some(hw_checkpoint));
    }

    /// The leader crashes (losing its unsynced tail beyond `keep`) and `new_leader` from the
    /// ISR takes over; the old leader restarts as a follower.
    pub fn crash_leader(&mut self, new_leader: NodeId, keep: u64) {
        let old = self.leader_node();
        self.power_loss(&[(old, keep)], new_leader);
    }

    /// Several replicas crash at once, each keeping `keep` offsets of its unsynced tail;
    /// then `new_leader` is elected and everyone restarts in its role.
    pub fn power_loss(&mut self, crashed: &[(NodeId, u64)], new_leader: NodeId) {
        let old = self.leader_node();
        let outputs = match &mut self.replicas.get_mut(&old).expect("leader").role {
            Role::Leader(l) => l.resign(),
            Role::Follower(_) => Vec::new(),
        };
        self.record(outputs);
        for (n, keep) in crashed {
            self.crash(*n, *keep);
            if self.fence_restarted && *n != new_leader {
                self.state.isr.retain(|r| r != n);
            }
        }
        self.elect(new_leader);
    }

    /// Cuts `n`'s log as a crash would; returns its HW before the crash.
    fn crash(&mut self, n: NodeId, keep: u64) -> Offset {
        let replica = self.replicas.get_mut(&n).expect("replica");
        let hw = replica.hw();
        let log = &mut replica.log;
        let cut = log.flushed_offset().plus(keep).min(log.log_end_offset());
        log.truncate_to(cut);
        hw
    }

    /// Flushes `n`'s log and reports the flush done.
    pub fn flush(&mut self, n: NodeId) {
        let now = self.now;
        let log = &mut self.replicas.get_mut(&n).expect("replica").log;
        let offset = log.flush(now);
        log.take_disk_ops();
        log.mark_flushed(offset);
    }

    /// Rebuilds `n`'s role from the controller state; `hw` overrides the in-memory HW.
    fn restart_role(&mut self, n: NodeId, hw: Option<Offset>) {
        let (now, tp, config, state) =
            (self.now, self.tp.clone(), self.config.clone(), self.state.clone());
        let replica = self.replicas.get_mut(&n).expect("replica");
        let hw = hw.unwrap_or_else(|| replica.hw());
        if let Role::Leader(l) = &mut replica.role {
            if l.leader_epoch() < state.leader_epoch {
                let outputs = l.resign();
                self.completions.extend(outputs.into_iter().filter_map(as_completion));
            }
        }
        let replica = self.replicas.get_mut(&n).expect("replica");
        let log = &mut replica.log;
        let leader = state.leader.expect("leader");
        replica.role = if leader == n {
            Role::Leader(PartitionLeader::new(tp, n, &state, config, log, hw, now))
        } else {
            let epoch = state.leader_epoch;
            Role::Follower(PartitionFollower::start(tp, n, leader, epoch, config, log, hw, now).0)
        };
    }

    /// The controller's committed state goes to the leader (metadata propagation).
    fn publish(&mut self) {
        let (now, state) = (self.now, self.state.clone());
        if let Some(Replica { log, role: Role::Leader(l) }) =
            self.replicas.get_mut(&self.leader_node())
        {
            if l.leader_epoch() == state.leader_epoch {
                l.apply_partition_state(now, log, &state).expect("newer state");
            }
        }
        self.collect();
    }

    /// Drains the leader's outputs: AlterPartition to the controller's queue, completions
    /// recorded (each ack checked against invariant 4).
    fn collect(&mut self) {
        let leader_node = self.leader_node();
        let Some(Replica { role: Role::Leader(l), .. }) = self.replicas.get_mut(&leader_node)
        else {
            return;
        };
        let (hw, isr) = (l.high_watermark(), l.isr().len());
        let outputs = l.take_outputs();
        for output in &outputs {
            if let LeaderOutput::ProduceCompleted { last_offset, error: ErrorCode::None, .. } =
                output
            {
                let min = self.config.min_insync_replicas;
                invariants::ack_is_replicated(*last_offset, hw, isr, min).expect("invariant 4");
            }
        }
        self.record(outputs);
    }

    fn record(&mut self, outputs: Vec<LeaderOutput>) {
        for output in outputs {
            match output {
                LeaderOutput::AlterPartition(request) => self.alter_queue.push(request),
                other => self.completions.extend(as_completion(other)),
            }
        }
    }
}

fn replica_follower(role: &mut Role) -> &mut PartitionFollower {
    match role {
        Role::Follower(f) => f,
        Role::Leader(_) => panic!("not a follower"),
    }
}

fn as_completion(output: LeaderOutput) -> Option<Completion> {
    match output {
        LeaderOutput::ProduceCompleted { id, base_offset, last_offset, error } => {
            Some(Completion { id, base_offset, last_offset, error })
        }
        _ => None,
    }
}
