//! A broker as a sans-IO state machine: it owns the partition logs it hosts and answers
//! Produce, Fetch, ListOffsets, Metadata and InitProducerId, and — with
//! `BrokerConfig::groups` — FindCoordinator and the group APIs, through the coordinators of
//! the offsets partitions it leads (see `groups`).
//!
//! The driver (the node shell in `sim/`) feeds it requests, disk completions and ticks,
//! and carries out what it returns: responses to send and disk operations to perform in
//! order. A partition's high watermark moves only when an append is complete — for a
//! log flushed on every batch that means after the fsync, as Kafka flushes inside the
//! append path — so a consumer never reads a record the broker could still lose to a crash
//! under that policy. A disk error takes the log directory offline, with every partition
//! on it, until the broker restarts (Kafka's log directory failure); requests for them
//! answer KafkaStorageError.
//!
//! Without a controller (single-broker mode) each partition has this one replica. With
//! one (`BrokerConfig::cluster`), partitions are replicated and led as the controller's
//! committed metadata says: see `cluster`. This module does not own the controller, the
//! replication state machines (`crate::replication`) or connections.

pub mod clean_shutdown;
mod cluster;
mod fetch;
mod groups;
pub mod meta;

pub use cluster::{parse_hw_checkpoint, ClusterSettings, Fact, HW_CHECKPOINT};
pub use groups::{GroupSettings, OFFSETS_TOPIC};

use crate::log::{DiskOp, LogConfig, LogError, PartitionLog};
use crate::protocol::*;
use crate::record::RecordBatch;
use crate::replication::{PartitionFollower, PartitionLeader, ProduceError, ProduceId};
use crate::types::{Epoch, Millis, NodeId, Offset, TopicPartition};
use bytes::Bytes;
use cluster::ControlSession;
use fetch::ParkedFetch;
use groups::GroupHost;
use std::collections::{BTreeMap, VecDeque};
use tracing::{info, warn};

/// Identifies one client connection at the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    pub log: LogConfig,
    pub replication_factor: u16,
    pub min_insync_replicas: usize,
    pub unclean_leader_election: bool,
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: NodeId,
    pub topics: Vec<TopicSpec>,
    /// Ceiling on how long a fetch may be parked waiting for data.
    pub fetch_max_wait_ms: u64,
    /// Some: replicated, led as a controller quorum decides (cluster mode).
    pub cluster: Option<ClusterSettings>,
    /// Some: this broker hosts the group coordinator of each partition of
    /// [`OFFSETS_TOPIC`] it leads (the topic must be among `topics`).
    pub groups: Option<GroupSettings>,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerOutput {
    Respond {
        conn: ConnId,
        frame: ResponseFrame,
    },
    /// Perform these operations in order, then report `on_disk_done(token, result)`.
    Disk {
        token: u64,
        ops: Vec<DiskOp>,
    },
    /// Send to controller `controller` (by index); the answer goes to
    /// `on_controller_response`.
    ToController {
        controller: u32,
        frame: RequestFrame,
    },
    /// Send to a peer broker; the answer goes to `on_broker_response`.
    ToBroker {
        broker: NodeId,
        frame: RequestFrame,
    },
    /// A request on this connection timed out: close it (the next send reconnects).
    CloseController {
        controller: u32,
    },
    CloseBroker {
        broker: NodeId,
    },
    /// For the inside-cluster checker.
    Fact(Fact),
    /// The controlled shutdown is granted: the driver flushes every log, writes the
    /// clean-shutdown marker naming `broker_epoch` (KIP-966), and stops the broker.
    ShutdownReady {
        broker_epoch: Option<crate::types::BrokerEpoch>,
    },
}

/// A produce waiting for its append to complete (the flush, under flush-every-batch).
#[derive(Debug)]
struct PendingProduce {
    conn: ConnId,
    correlation_id: u32,
    acks: Acks,
    waiting: Vec<(TopicPartition, Offset)>,
    /// acks=all produces waiting for the partition's HW (cluster mode).
    replicated: Vec<(TopicPartition, ProduceId)>,
    results: Vec<ProducePartitionResponse>,
}

/// What this replica does for its partition.
#[derive(Debug)]
enum PartitionRole {
    /// Single-broker mode: the only replica.
    Standalone,
    /// Cluster mode, before the metadata names a role, or with no leader.
    Inactive,
    Leader(Box<PartitionLeader>),
    Follower(PartitionFollower),
}

struct Partition {
    log: PartitionLog,
    /// What consumers may read below: in cluster mode, the role's HW.
    high_watermark: Offset,
    offline: bool,
    /// Disk tokens in flight, in order, with the offset each makes durable (None for
    /// page-cache writes and metadata operations, which make nothing durable).
    flushes: VecDeque<(u64, Option<Offset>)>,
    role: PartitionRole,
}

impl Partition {
    fn new(log: PartitionLog, high_watermark: Offset, role: PartitionRole) -> Partition {
        let high_watermark = high_watermark.min(log.log_end_offset());
        Partition { log, high_watermark, offline: false, flushes: VecDeque::new(), role }
    }
}

pub struct Broker {
    config: BrokerConfig,
    partitions: BTreeMap<TopicPartition, Partition>,
    /// Producer ids are unique across restarts: the incarnation (bumped and synced at each
    /// start by the driver) fills the high bits.
    incarnation: u64,
    next_producer_seq: u64,
    next_token: u64,
    next_produce_id: u64,
    produces: Vec<PendingProduce>,
    cluster: Option<ControlSession>,
    groups: Option<GroupHost>,
    parked: Vec<ParkedFetch>,
    /// Re-entrancy guard of `wake_fetches`.
    waking: bool,
    wake_again: bool,
    outputs: Vec<BrokerOutput>,
}

impl Broker {
    /// Builds the broker from the partitions' recovered logs. In single-broker mode missing
    /// partitions are created empty; in cluster mode they are created when the metadata
    /// assigns them, and `high_watermarks` (the HW checkpoint) seeds each replica's HW.
    pub fn new(
        config: BrokerConfig,
        incarnation: u64,
        mut recovered: BTreeMap<TopicPartition, PartitionLog>,
        high_watermarks: &BTreeMap<TopicPartition, Offset>,
        now: Millis,
    ) -> Broker {
        assert!(
            incarnation <= meta::INCARNATION_MAX,
            "incarnation {incarnation} of {} overflows its producer ids",
            config.node_id
        );
        let mut partitions = BTreeMap::new();
        let cluster = config.cluster.clone().map(|settings| {
            let min_insync =
                config.topics.iter().map(|t| (t.name.clone(), t.min_insync_replicas)).collect();
            ControlSession::new(settings, min_insync)
        });
        if cluster.is_some() {
            for (tp, log) in std::mem::take(&mut recovered) {
                let hw = high_watermarks.get(&tp).copied().unwrap_or(Offset::ZERO);
                partitions.insert(tp, Partition::new(log, hw, PartitionRole::Inactive));
            }
        }
        for topic in config.topics.iter().filter(|_| cluster.is_none()) {
            for p in 0..topic.partitions {
                let tp = TopicPartition::new(topic.name.clone(), p);
                let log = recovered.remove(&tp).unwrap_or_else(|| {
                    PartitionLog::create(&partition_dir(&tp), topic.log.clone(), now)
                });
                // With one replica, everything recovered is committed.
                let high_watermark = log.log_end_offset();
                partitions
                    .insert(tp, Partition::new(log, high_watermark, PartitionRole::Standalone));
            }
        }
        let groups = config.groups.clone().map(|settings| GroupHost::new(settings, &config.topics));
        let mut broker = Broker {
            config,
            partitions,
            incarnation,
            next_producer_seq: 0,
            next_token: 0,
            next_produce_id: 0,
            produces: Vec::new(),
            groups,
            cluster,
            parked: Vec::new(),
            waking: false,
            wake_again: false,
            outputs: Vec::new(),
        };
        let tps: Vec<TopicPartition> = broker.partitions.keys().cloned().collect();
        for tp in tps {
            broker.drain_disk_ops(&tp);
        }
        broker.pump_groups(now);
        broker
    }

    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The topics this broker hosts, as configured (the internal offsets topic included).
    pub fn topics(&self) -> &[TopicSpec] {
        &self.config.topics
    }

    pub fn take_outputs(&mut self) -> Vec<BrokerOutput> {
        std::mem::take(&mut self.outputs)
    }

    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<Offset> {
        self.partitions.get(tp).map(|p| p.high_watermark)
    }

    pub fn log_end_offset(&self, tp: &TopicPartition) -> Option<Offset> {
        self.partitions.get(tp).map(|p| p.log.log_end_offset())
    }

    pub fn is_offline(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|p| p.offline)
    }

    /// A disk error took some partition offline (until a restart).
    pub fn has_offline_partitions(&self) -> bool {
        self.partitions.values().any(|p| p.offline)
    }

    pub fn on_request(&mut self, now: Millis, conn: ConnId, frame: RequestFrame) {
        self.dispatch(now, conn, frame);
        // A fetch or a produce can move an offsets partition's HW and complete a commit.
        self.pump_groups(now);
    }

    fn dispatch(&mut self, now: Millis, conn: ConnId, frame: RequestFrame) {
        let correlation_id = frame.correlation_id;
        let body = match frame.body {
            Request::Produce(request) => {
                self.produce(now, conn, correlation_id, request);
                return;
            }
            Request::Fetch(request) => {
                self.fetch(now, conn, correlation_id, request);
                return;
            }
            Request::ListOffsets(request) => Response::ListOffsets(self.list_offsets(request)),
            Request::Metadata(request) => Response::Metadata(self.metadata(request)),
            Request::InitProducerId(_) => Response::InitProducerId(self.init_producer_id()),
            Request::OffsetsForLeaderEpoch(request) => {
                Response::OffsetsForLeaderEpoch(self.offsets_for_leader_epoch(request))
            }
            Request::Controller(_) | Request::MetadataFetch(_) | Request::Raft(_) => {
                warn!(node = %self.node_id(), "controller request sent to a broker");
                Response::Error(ErrorCode::InvalidRequest)
            }
            Request::FindCoordinator(request) => {
                Response::FindCoordinator(self.find_coordinator(&request.key))
            }
            request @ (Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::OffsetFetch(_)) => {
                self.group_request(now, conn, correlation_id, request);
                return;
            }
        };
        self.respond(conn, correlation_id, body);
    }

    /// The driver finished (or failed) the disk operations of `token`. The broker has one
    /// log directory: an error takes it offline with every partition on it, whichever job
    /// failed (Kafka's log directory failure), so no later write lands past the failed one
    /// and the broker stops heartbeating until a restart.
    pub fn on_disk_done(&mut self, now: Millis, token: u64, result: Result<(), String>) {
        if let Err(error) = result {
            let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
            for tp in &tps {
                let partition = self.partitions.get_mut(tp).expect("listed");
                if !partition.offline {
                    warn!(tp = %tp, token, %error, "disk error: partition offline until restart");
                    partition.offline = true;
                }
                partition.flushes.clear();
                self.fail_waiting_produces(tp);
            }
            self.pump_groups(now);
            return;
        }
        let Some(tp) = self.partition_of_token(token) else { return };
        let partition = self.partitions.get_mut(&tp).expect("token maps to a partition");
        while let Some(&(done, offset)) = partition.flushes.front() {
            if done > token {
                break;
            }
            partition.flushes.pop_front();
            if let Some(offset) = offset {
                partition.log.mark_flushed(offset);
                let standalone = matches!(partition.role, PartitionRole::Standalone);
                if standalone && offset > partition.high_watermark {
                    partition.high_watermark = offset;
                }
            }
        }
        self.complete_produces(&tp);
        if self.cluster.is_some() {
            // A follower fetches on once its last append is on disk (`poll_follower` waits
            // for the partition's disk tokens).
            self.poll_follower(now, &tp);
        }
        self.wake_fetches(now);
        self.pump_groups(now);
    }

    /// Timers: parked fetches expire, logs roll segments and apply retention and flush
    /// intervals.
    pub fn tick(&mut self, now: Millis) {
        let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for tp in tps {
            let partition = self.partitions.get_mut(&tp).expect("listed");
            if partition.offline {
                continue;
            }
            partition.log.tick(now);
            if partition.log.needs_flush(now) {
                self.flush(&tp, now);
            }
            self.drain_disk_ops(&tp);
        }
        if self.cluster.is_some() {
            self.replication_tick(now);
            self.control_tick(now);
        }
        self.expire_fetches(now);
        self.tick_groups(now);
    }

    /// When the broker next needs a tick.
    pub fn next_wakeup(&self) -> Option<Millis> {
        let fetches = self.parked.iter().map(|f| f.deadline).min();
        [fetches, self.groups_next_deadline()].into_iter().flatten().min()
    }

    fn produce(&mut self, now: Millis, conn: ConnId, correlation_id: u32, request: ProduceRequest) {
        let mut pending = PendingProduce {
            conn,
            correlation_id,
            acks: request.acks,
            waiting: Vec::new(),
            replicated: Vec::new(),
            results: Vec::new(),
        };
        for part in request.partitions {
            let tp = part.tp.clone();
            if self.cluster.is_some() {
                let timeout_ms = u64::from(request.timeout_ms);
                match self.append_replicated(now, &tp, part.records, request.acks, timeout_ms) {
                    Ok((base_offset, id)) => {
                        pending.results.push(produce_result(
                            &tp,
                            ErrorCode::None,
                            Some(base_offset),
                        ));
                        if let Some(id) = id {
                            pending.replicated.push((tp, id));
                        }
                    }
                    Err(error) => pending.results.push(produce_result(&tp, error, None)),
                }
                continue;
            }
            match self.append(now, &tp, part.records) {
                Ok(Appended::Now { base_offset }) => {
                    pending.results.push(produce_result(&tp, ErrorCode::None, Some(base_offset)))
                }
                Ok(Appended::AfterFlush { base_offset, durable_at }) => {
                    pending.results.push(produce_result(&tp, ErrorCode::None, Some(base_offset)));
                    pending.waiting.push((tp, durable_at));
                }
                Err(error) => pending.results.push(produce_result(&tp, error, None)),
            }
        }
        // Queue the produce before anything can complete it (waking fetches drains the
        // leaders' acks=all completions).
        if pending.waiting.is_empty() && pending.replicated.is_empty() {
            self.finish_produce(pending);
        } else {
            self.produces.push(pending);
        }
        self.wake_fetches(now);
        if self.cluster.is_some() {
            let tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
            for tp in tps {
                self.drain_leader(now, &tp);
            }
        }
    }

    /// Cluster mode: appends as the partition's leader. acks=all returns the id its
    /// completion will carry.
    fn append_replicated(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        records: Bytes,
        acks: Acks,
        timeout_ms: u64,
    ) -> Result<(Offset, Option<ProduceId>), ErrorCode> {
        let id = ProduceId(self.next_produce_id);
        self.next_produce_id += 1;
        let partition = self.partitions.get_mut(tp).ok_or(ErrorCode::NotLeaderOrFollower)?;
        if partition.offline {
            return Err(ErrorCode::KafkaStorageError);
        }
        let PartitionRole::Leader(leader) = &mut partition.role else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        let batch = RecordBatch::parse(records).map_err(|_| ErrorCode::CorruptMessage)?;
        let crc = batch.header().crc;
        let appended = leader
            .produce(now, &mut partition.log, batch, acks, id, timeout_ms)
            .map_err(|e: ProduceError| e.code())?;
        if appended.duplicate {
            let base = appended.base_offset;
            self.outputs.push(BrokerOutput::Fact(Fact::DuplicateBatch { tp: tp.clone(), base }));
        } else {
            let epoch = Some(leader.leader_epoch());
            let (base, last) = (appended.base_offset, appended.last_offset);
            self.outputs.push(BrokerOutput::Fact(Fact::Appended {
                tp: tp.clone(),
                base,
                last,
                epoch,
                crc,
            }));
        }
        if self.partitions[tp].log.needs_flush(now) {
            self.flush(tp, now);
        }
        self.drain_disk_ops(tp);
        Ok((appended.base_offset, (acks == Acks::All).then_some(id)))
    }

    /// An acks=all produce finished at the leader (acked, or failed indeterminately).
    fn complete_replicated(&mut self, tp: &TopicPartition, id: ProduceId, error: ErrorCode) {
        if self.complete_offsets_append(tp, id, error) {
            return;
        }
        let Some(at) = self.produces.iter().position(|p| p.replicated.contains(&(tp.clone(), id)))
        else {
            return;
        };
        let pending = &mut self.produces[at];
        pending.replicated.retain(|(t, i)| !(t == tp && *i == id));
        if error != ErrorCode::None {
            for result in pending.results.iter_mut().filter(|r| &r.tp == tp) {
                result.error = error;
                result.base_offset = None;
            }
        }
        if pending.replicated.is_empty() && pending.waiting.is_empty() {
            let pending = self.produces.remove(at);
            self.finish_produce(pending);
        }
    }

    fn append(
        &mut self,
        now: Millis,
        tp: &TopicPartition,
        records: Bytes,
    ) -> Result<Appended, ErrorCode> {
        let partition = self.partitions.get_mut(tp).ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if partition.offline {
            return Err(ErrorCode::KafkaStorageError);
        }
        let batch = RecordBatch::parse(records).map_err(|_| ErrorCode::CorruptMessage)?;
        let info = match partition.log.append_as_leader(batch, Epoch(0), now) {
            Ok(info) => info,
            Err(LogError::DuplicateSequence { original, .. }) => {
                let fact = Fact::DuplicateBatch { tp: tp.clone(), base: original };
                self.outputs.push(BrokerOutput::Fact(fact));
                return Ok(Appended::Now { base_offset: original });
            }
            Err(error) => return Err(log_error_code(&error)),
        };
        let base_offset = info.first_offset;
        let end = info.last_offset.next();
        if partition.log.needs_flush(now) {
            self.flush(tp, now);
            self.drain_disk_ops(tp);
            return Ok(Appended::AfterFlush { base_offset, durable_at: end });
        }
        let partition = self.partitions.get_mut(tp).expect("present");
        partition.high_watermark = end;
        self.drain_disk_ops(tp);
        Ok(Appended::Now { base_offset })
    }

    fn flush(&mut self, tp: &TopicPartition, now: Millis) {
        let partition = self.partitions.get_mut(tp).expect("present");
        let durable_at = partition.log.flush(now);
        let ops = partition.log.take_disk_ops();
        let token = self.next_token;
        self.next_token += 1;
        let partition = self.partitions.get_mut(tp).expect("present");
        partition.flushes.push_back((token, Some(durable_at)));
        self.outputs.push(BrokerOutput::Disk { token, ops });
    }

    /// Page-cache writes, truncations and deletes that need no completion tracking still
    /// go through a token, so a failure takes the partition offline.
    fn drain_disk_ops(&mut self, tp: &TopicPartition) {
        let partition = self.partitions.get_mut(tp).expect("present");
        let ops = partition.log.take_disk_ops();
        if ops.is_empty() {
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        partition.flushes.push_back((token, None));
        self.outputs.push(BrokerOutput::Disk { token, ops });
    }

    fn partition_of_token(&self, token: u64) -> Option<TopicPartition> {
        self.partitions
            .iter()
            .find(|(_, p)| p.flushes.iter().any(|(t, _)| *t == token))
            .map(|(tp, _)| tp.clone())
    }

    fn complete_produces(&mut self, tp: &TopicPartition) {
        let high_watermark = self.partitions[tp].high_watermark;
        let mut still = Vec::new();
        for mut pending in std::mem::take(&mut self.produces) {
            pending.waiting.retain(|(waiting_tp, end)| waiting_tp != tp || *end > high_watermark);
            if pending.waiting.is_empty() && pending.replicated.is_empty() {
                self.finish_produce(pending);
            } else {
                still.push(pending);
            }
        }
        self.produces = still;
    }

    fn fail_waiting_produces(&mut self, tp: &TopicPartition) {
        for pending in &mut self.produces {
            if pending.waiting.iter().any(|(waiting_tp, _)| waiting_tp == tp) {
                pending.waiting.retain(|(waiting_tp, _)| waiting_tp != tp);
                for result in &mut pending.results {
                    if &result.tp == tp {
                        result.error = ErrorCode::KafkaStorageError;
                        result.base_offset = None;
                    }
                }
            }
        }
        let (done, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.produces)
            .into_iter()
            .partition(|p| p.waiting.is_empty() && p.replicated.is_empty());
        self.produces = still;
        for pending in done {
            self.finish_produce(pending);
        }
    }

    fn finish_produce(&mut self, pending: PendingProduce) {
        tracing::debug!(node = %self.node_id(), acks = ?pending.acks, results = ?pending.results, "produce answered");
        if pending.acks == Acks::Zero {
            return;
        }
        let body = Response::Produce(ProduceResponse { partitions: pending.results });
        self.respond(pending.conn, pending.correlation_id, body);
    }

    fn list_offsets(&self, request: ListOffsetsRequest) -> ListOffsetsResponse {
        let partitions = request
            .partitions
            .into_iter()
            .map(|(tp, spec)| {
                let (error, offset) = match self.partitions.get(&tp) {
                    None if self.cluster.is_some() => {
                        (ErrorCode::NotLeaderOrFollower, Offset::ZERO)
                    }
                    None => (ErrorCode::UnknownTopicOrPartition, Offset::ZERO),
                    Some(p) if p.offline => (ErrorCode::KafkaStorageError, Offset::ZERO),
                    Some(p)
                        if !matches!(
                            p.role,
                            PartitionRole::Standalone | PartitionRole::Leader(_)
                        ) =>
                    {
                        (ErrorCode::NotLeaderOrFollower, Offset::ZERO)
                    }
                    Some(p) => match spec {
                        OffsetSpec::Earliest => (ErrorCode::None, p.log.log_start_offset()),
                        OffsetSpec::Latest => (ErrorCode::None, p.high_watermark),
                    },
                };
                ListOffsetsPartitionResponse { tp, error, offset }
            })
            .collect();
        ListOffsetsResponse { partitions }
    }

    fn metadata(&self, request: MetadataRequest) -> MetadataResponse {
        if let Some((_, image)) = self.metadata_image() {
            return cluster_metadata(image, &request);
        }
        let me = self.config.node_id;
        let wanted =
            |name: &str| request.topics.as_ref().is_none_or(|t| t.iter().any(|n| n == name));
        let mut topics = Vec::new();
        for spec in self.config.topics.iter().filter(|t| wanted(&t.name)) {
            let partitions = (0..spec.partitions)
                .map(|p| PartitionMetadata {
                    partition: p,
                    error: ErrorCode::None,
                    leader: Some(me),
                    leader_epoch: Epoch(0),
                    replicas: vec![me],
                    isr: vec![me],
                })
                .collect();
            topics.push(TopicMetadata {
                name: spec.name.clone(),
                error: ErrorCode::None,
                partitions,
            });
        }
        for name in request.topics.iter().flatten() {
            if !self.config.topics.iter().any(|t| &t.name == name) {
                let error = ErrorCode::UnknownTopicOrPartition;
                topics.push(TopicMetadata { name: name.clone(), error, partitions: Vec::new() });
            }
        }
        MetadataResponse { brokers: vec![me], topics }
    }

    fn init_producer_id(&mut self) -> InitProducerIdResponse {
        // 2^20 producer ids per incarnation is far beyond any simulated run's needs.
        assert!(self.next_producer_seq < 1 << 20, "producer ids exhausted on {}", self.node_id());
        let mut producer_id = ((self.incarnation << 20) | self.next_producer_seq) as i64;
        if self.cluster.is_some() {
            // Unique across brokers too: the broker id fills the low byte.
            producer_id = (producer_id << 8) | i64::from(self.node_id().0 & 0xff);
        }
        self.next_producer_seq += 1;
        info!(node = %self.node_id(), producer_id, "producer id assigned");
        InitProducerIdResponse { error: ErrorCode::None, producer_id, producer_epoch: 0 }
    }

    fn offsets_for_leader_epoch(
        &self,
        request: OffsetsForLeaderEpochRequest,
    ) -> OffsetsForLeaderEpochResponse {
        let partitions = request
            .partitions
            .iter()
            .map(|wanted| match self.partitions.get(&wanted.tp) {
                Some(p) if !p.offline => match &p.role {
                    PartitionRole::Leader(leader) => {
                        leader.on_offsets_for_leader_epoch(&p.log, wanted)
                    }
                    _ => epoch_error(&wanted.tp, ErrorCode::NotLeaderOrFollower),
                },
                Some(_) => epoch_error(&wanted.tp, ErrorCode::KafkaStorageError),
                None => epoch_error(&wanted.tp, ErrorCode::NotLeaderOrFollower),
            })
            .collect();
        OffsetsForLeaderEpochResponse { partitions }
    }

    fn respond(&mut self, conn: ConnId, correlation_id: u32, body: Response) {
        self.outputs
            .push(BrokerOutput::Respond { conn, frame: ResponseFrame { correlation_id, body } });
    }
}

enum Appended {
    Now { base_offset: Offset },
    AfterFlush { base_offset: Offset, durable_at: Offset },
}

fn produce_result(
    tp: &TopicPartition,
    error: ErrorCode,
    base_offset: Option<Offset>,
) -> ProducePartitionResponse {
    ProducePartitionResponse { tp: tp.clone(), error, base_offset, log_start_offset: Offset::ZERO }
}

fn log_error_code(error: &LogError) -> ErrorCode {
    match error {
        LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        LogError::RecordTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::CorruptRecord { .. } => ErrorCode::CorruptMessage,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        _ => ErrorCode::InvalidRecord,
    }
}

fn epoch_error(tp: &TopicPartition, error: ErrorCode) -> EpochEndOffset {
    EpochEndOffset { tp: tp.clone(), error, leader_epoch: None, end_offset: None }
}

/// A Metadata answer from the committed image: every registered broker, and per partition
/// its leader (None while offline), leader epoch, replicas and ISR.
fn cluster_metadata(
    image: &crate::controller::MetadataImage,
    request: &MetadataRequest,
) -> MetadataResponse {
    let wanted = |name: &str| request.topics.as_ref().is_none_or(|t| t.iter().any(|n| n == name));
    let mut topics: Vec<TopicMetadata> = image
        .topics
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, topic)| TopicMetadata {
            name: name.clone(),
            error: ErrorCode::None,
            partitions: topic
                .partitions
                .iter()
                .enumerate()
                .map(|(p, state)| PartitionMetadata {
                    partition: p as u32,
                    error: if state.leader.is_some() {
                        ErrorCode::None
                    } else {
                        ErrorCode::LeaderNotAvailable
                    },
                    leader: state.leader,
                    leader_epoch: state.leader_epoch,
                    replicas: state.replicas.clone(),
                    isr: state.isr.clone(),
                })
                .collect(),
        })
        .collect();
    for name in request.topics.iter().flatten() {
        if !image.topics.contains_key(name) {
            let error = ErrorCode::UnknownTopicOrPartition;
            topics.push(TopicMetadata { name: name.clone(), error, partitions: Vec::new() });
        }
    }
    let brokers = image.brokers.keys().copied().collect();
    MetadataResponse { brokers, topics }
}

/// The directory of a partition's files on the broker's disk.
pub fn partition_dir(tp: &TopicPartition) -> String {
    format!("data/{}-{}", tp.topic, tp.partition)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_groups;
