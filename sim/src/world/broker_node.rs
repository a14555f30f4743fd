//! The broker node shell: rebuilds the broker from its disk at every start, accepts
//! connections, feeds requests, disk completions and ticks to the sans-IO `Broker`, and
//! carries out its outputs. Disk operations run in order on one worker task, so a crash
//! can cut the sequence anywhere, as a real page cache would. In cluster mode it also
//! carries the broker's requests to controllers and peer brokers over outgoing
//! connections, reports the broker's facts to the inside-cluster checker, and keeps the
//! world's view of who leads what.

use super::cluster::{PartitionView, ReplicaView};
use super::conn::{spawn_connection, ConnEvent, FrameSender};
use super::disk::SimDisk;
use super::outbound::{Outbound, OutboundEvent};
use super::{node_name, now_duration, Role, WorldRef, BROKER_PORT, CONTROLLER_PORT};
use crate::check::cluster::{BatchDigest, ClusterEvent};
use crate::coverage::{self, Mark};
use crate::world::signal::{Signal, Subscriber};
use bytes::Bytes;
use kafkasim::broker::clean_shutdown::{
    decode_clean_shutdown, encode_clean_shutdown, CLEAN_SHUTDOWN_FILE,
};
use kafkasim::broker::meta::{
    decode_incarnation, encode_incarnation, next_incarnation, INCARNATION_FILE,
};
use kafkasim::broker::{
    parse_hw_checkpoint, partition_dir, Broker, BrokerConfig, BrokerOutput, ClusterSettings,
    ConnId, Fact, TopicSpec, HW_CHECKPOINT,
};
use kafkasim::log::{DiskOp, PartitionLog};
use kafkasim::protocol::{encode_frame, Frame, Request, Response};
use kafkasim::record::scan_batches;
use kafkasim::replication::TruncationRule;
use kafkasim::types::{BrokerEpoch, NodeId, TopicPartition};
use madsim::net::TcpListener;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// How often the broker ticks when nothing else wakes it (retention, flush intervals).
const TICK_MS: u64 = 50;
/// Attempts at each disk read or write during recovery before the broker gives up starting.
const RECOVERY_IO_ATTEMPTS: u32 = 20;

type DiskJob = (u64, Vec<DiskOp>);

/// The node's `init`: runs until the node is killed.
pub async fn broker_main(world: WorldRef, index: u32) {
    let name = node_name(Role::Broker, index);
    let disk = madsim::plugin::simulator::<SimDisk>();
    let Some(incarnation) = bump_incarnation(&disk, &world, &name).await else { return };
    let config = broker_config(&world, index);
    let Some(recovered) = recover_logs(&disk, &world, &name, &config.topics).await else { return };
    let clustered = config.cluster.is_some();
    let high_watermarks = match disk.read_all(HW_CHECKPOINT).await {
        Ok(bytes) if clustered => parse_hw_checkpoint(&bytes),
        _ => BTreeMap::new(),
    };
    if clustered {
        let logs = recovered.iter().map(|(tp, log)| (tp.clone(), digests(log))).collect();
        world.report(&name, ClusterEvent::BrokerStarted { broker: NodeId(index), logs });
    }
    let now = world.clock_ms(&name);
    let Some(marker) = take_clean_shutdown_marker(&disk, &world, &name).await else { return };
    let mut broker = Broker::new(config, incarnation, recovered, &high_watermarks, now);
    broker.set_clean_shutdown_marker(marker);
    let clean = marker.is_some().to_string();
    world.event(
        &name,
        "broker-started",
        &[("incarnation", incarnation.to_string()), ("clean", clean)],
    );
    world.state().storage_failed.remove(&name);
    world.state().shut_down.remove(&name);
    let (mut peers, mut peer_rx) =
        Outbound::new(world.clone(), name.clone(), Role::Broker, BROKER_PORT);
    let (mut controllers, mut controller_rx) =
        Outbound::new(world.clone(), name.clone(), Role::Controller, CONTROLLER_PORT);

    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<(u64, ConnEvent)>();
    let (accept_tx, mut accept_rx) = mpsc::unbounded_channel::<(u64, FrameSender)>();
    let (disk_tx, disk_rx) = mpsc::unbounded_channel::<DiskJob>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, Result<(), String>)>();
    madsim::task::spawn(accept_loop(world.clone(), name.clone(), conn_tx, accept_tx));
    madsim::task::spawn(disk_worker(world.clone(), name.clone(), disk_rx, done_tx));

    let mut conns: BTreeMap<u64, FrameSender> = BTreeMap::new();
    let mut rng = crate::seed::substream(world.seed, &format!("{name}/resets"));
    let mut last_tick = world.clock_ms(&name);
    let mut shutdown = world.shutdowns.get(&name).map(Signal::subscribe);
    let mut stopping: Option<Option<BrokerEpoch>> = None;
    let stopped_as = loop {
        if let Some(epoch) = stopping {
            break epoch;
        }
        // Ticks are due by the clock, not by an idle moment: a busy broker still ticks.
        let due = last_tick.plus_ms(TICK_MS);
        let due = broker.next_wakeup().map_or(due, |at| at.min(due));
        let wake_ms = due.since(world.clock_ms(&name)).max(1);
        let sleep = madsim::time::sleep(Duration::from_millis(wake_ms));
        tokio::select! {
            biased;
            Some((id, sender)) = accept_rx.recv() => { conns.insert(id, sender); }
            Some((token, result)) = done_rx.recv() => {
                broker.on_disk_done(world.clock_ms(&name), token, result);
                if broker.has_offline_partitions()
                    && world.state().storage_failed.insert(name.clone())
                {
                    world.mark(&name, Mark::LogDirOffline);
                }
            }
            Some((id, event)) = conn_rx.recv() => match event {
                ConnEvent::Frame(Frame::Request(request)) => {
                    report_follower_fetch(&world, &name, index, &request.body);
                    broker.on_request(world.clock_ms(&name), ConnId(id), request);
                }
                ConnEvent::Frame(Frame::Response(_)) => {
                    warn!(node = %name, conn = id, "response frame sent to a broker: closing");
                    conns.remove(&id);
                    broker.on_connection_closed(ConnId(id));
                }
                ConnEvent::Closed(_) => {
                    conns.remove(&id);
                    broker.on_connection_closed(ConnId(id));
                }
            },
            Some((to, id, sender)) = peer_rx.connected.recv() => {
                if let Some(OutboundEvent::Closed { peer }) = peers.on_connected(to, id, sender) {
                    broker.on_broker_disconnected(world.clock_ms(&name), NodeId(peer));
                }
            }
            Some((id, event)) = peer_rx.events.recv() => match peers.resolve(id, event) {
                Some(OutboundEvent::Frame { from, frame: Frame::Response(frame) }) => {
                    broker.on_broker_response(world.clock_ms(&name), NodeId(from), frame);
                }
                Some(OutboundEvent::Frame { from, .. }) => {
                    warn!(node = %name, peer = from, "request frame on an outgoing connection: closing");
                    peers.close(from);
                    broker.on_broker_disconnected(world.clock_ms(&name), NodeId(from));
                }
                Some(OutboundEvent::Closed { peer }) => {
                    broker.on_broker_disconnected(world.clock_ms(&name), NodeId(peer));
                }
                None => {}
            },
            Some((to, id, sender)) = controller_rx.connected.recv() => {
                if let Some(OutboundEvent::Closed { peer }) = controllers.on_connected(to, id, sender) {
                    broker.on_controller_disconnected(world.clock_ms(&name), peer);
                }
            }
            Some((id, event)) = controller_rx.events.recv() => match controllers.resolve(id, event) {
                Some(OutboundEvent::Frame { from, frame: Frame::Response(frame) }) => {
                    broker.on_controller_response(world.clock_ms(&name), from, frame);
                }
                Some(OutboundEvent::Frame { from, .. }) => {
                    warn!(node = %name, controller = from, "request frame from a controller: closing");
                    controllers.close(from);
                    broker.on_controller_disconnected(world.clock_ms(&name), from);
                }
                Some(OutboundEvent::Closed { peer }) => {
                    broker.on_controller_disconnected(world.clock_ms(&name), peer);
                }
                None => {}
            },
            () = signalled(&mut shutdown) => {
                world.event(&name, "controlled-shutdown-requested", &[]);
                broker.begin_controlled_shutdown(world.clock_ms(&name));
            }
            _ = sleep => {}
        }
        let now = world.clock_ms(&name);
        if now >= due {
            broker.tick(now);
            last_tick = now;
            if clustered {
                let mut state = world.state();
                for (tp, hw, leo, leads) in broker.replica_status() {
                    let view = ReplicaView { high_watermark: hw, log_end_offset: leo, leads };
                    state.cluster.replicas.insert((NodeId(index), tp), view);
                }
            }
        }
        for output in broker.take_outputs() {
            match output {
                BrokerOutput::Disk { token, ops } => {
                    let _ = disk_tx.send((token, ops));
                }
                BrokerOutput::Respond { conn, frame } => {
                    mark_response(&world, &name, &broker, &frame.body);
                    let is_produce = matches!(frame.body, Response::Produce(_));
                    let rate = world.state().reset_after_append.get(&name).copied().unwrap_or(0.0);
                    if is_produce && rate > 0.0 && rng.gen_bool(rate.min(1.0)) {
                        world.event(
                            &name,
                            "fault-reset-after-append",
                            &[("conn", conn.0.to_string())],
                        );
                        conns.remove(&conn.0);
                        broker.on_connection_closed(conn);
                        continue;
                    }
                    if let Some(sender) = conns.get(&conn.0) {
                        let _ = sender.send(encode_frame(&Frame::Response(frame)));
                    }
                }
                BrokerOutput::ToBroker { broker: to, frame } => {
                    if !peers.send(to.0, &Frame::Request(frame)) {
                        broker.on_broker_disconnected(world.clock_ms(&name), to);
                    }
                }
                BrokerOutput::ToController { controller, frame } => {
                    if !controllers.send(controller, &Frame::Request(frame)) {
                        broker.on_controller_disconnected(world.clock_ms(&name), controller);
                    }
                }
                BrokerOutput::CloseBroker { broker: to } => peers.close(to.0),
                BrokerOutput::CloseController { controller } => controllers.close(controller),
                BrokerOutput::Fact(fact) => report_fact(&world, &name, index, &broker, fact),
                BrokerOutput::ShutdownReady { broker_epoch } => stopping = Some(broker_epoch),
            }
        }
    };
    drop(disk_tx);
    // The disk worker finishes the queued jobs, then closes its completions.
    while done_rx.recv().await.is_some() {}
    finish_clean_shutdown(&disk, &world, &name, stopped_as).await;
}

/// Resolves when the node's shutdown signal is raised; never without a signal.
async fn signalled(signal: &mut Option<Subscriber>) {
    match signal {
        Some(subscriber) => subscriber.raised().await,
        None => std::future::pending().await,
    }
}

/// The clean-shutdown marker of the last incarnation (KIP-966), deleted before this one
/// registers so that a later crash is not taken for a clean shutdown. `Some(None)`: no
/// usable marker (a crash, or a corrupt marker: unclean, the safe reading). None: the
/// disk would not let it be deleted, and the broker does not start.
async fn take_clean_shutdown_marker(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
) -> Option<Option<BrokerEpoch>> {
    for attempt in 0..RECOVERY_IO_ATTEMPTS {
        let marker = match disk.read_all(CLEAN_SHUTDOWN_FILE).await {
            Err(super::disk::DiskError::NotFound { .. }) => return Some(None),
            Err(error) => {
                warn!(node = %name, attempt, %error, "reading the clean-shutdown marker failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok(bytes) => decode_clean_shutdown(&bytes),
        };
        if let Err(error) = &marker {
            world.event(name, "meta-corrupt", &[("reason", error.to_string())]);
        }
        match disk.delete(CLEAN_SHUTDOWN_FILE).await {
            Ok(()) => return Some(marker.ok()),
            Err(error) => warn!(node = %name, attempt, %error, "deleting the marker failed"),
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    world.event(name, "broker-start-failed", &[("reason", "disk unusable".to_string())]);
    None
}

/// The end of a controlled shutdown: every file synced (Kafka flushes every log), then the
/// clean-shutdown marker written and synced. A failed write leaves no marker: the next
/// start is unclean. The node then waits to be stopped.
async fn finish_clean_shutdown(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
    broker_epoch: Option<BrokerEpoch>,
) {
    let mut flushed = Ok(());
    for path in disk.list("") {
        flushed = flushed.and(disk.sync(&path).await);
    }
    let written = match (flushed, broker_epoch) {
        (Ok(()), Some(epoch)) => {
            match disk.write(CLEAN_SHUTDOWN_FILE, 0, encode_clean_shutdown(epoch)).await {
                Ok(()) => disk.sync(CLEAN_SHUTDOWN_FILE).await.map(|()| true),
                Err(error) => Err(error),
            }
        }
        (Ok(()), None) => Ok(false),
        (Err(error), _) => Err(error),
    };
    if written == Ok(true) {
        world.mark(name, crate::coverage::Mark::ControlledShutdown);
    }
    let marker = match written {
        Ok(marker) => marker.to_string(),
        Err(error) => {
            warn!(node = %name, %error, "clean shutdown: flush or marker failed");
            "false".to_string()
        }
    };
    info!(node = %name, %marker, "broker shut down");
    world.event(name, "broker-shut-down", &[("marker", marker)]);
    world.state().shut_down.insert(name.to_string());
}

/// A follower's fetch as it arrived, for the checker's invariant 8: what each replica
/// reported to this broker, whatever the broker then makes of it.
fn report_follower_fetch(world: &WorldRef, name: &str, index: u32, body: &Request) {
    let Request::Fetch(fetch) = body else { return };
    let Some(follower) = fetch.replica_id else { return };
    for partition in &fetch.partitions {
        let event = ClusterEvent::FollowerFetched {
            leader: NodeId(index),
            follower,
            tp: partition.tp.clone(),
            epoch: partition.current_leader_epoch,
            fetch_offset: partition.fetch_offset,
        };
        world.report(name, event);
    }
}

/// Passes a broker fact to the checker, the event log and the world's cluster view.
fn report_fact(world: &WorldRef, name: &str, index: u32, broker: &Broker, fact: Fact) {
    mark_fact(world, name, broker, &fact);
    let me = NodeId(index);
    let event = match fact {
        Fact::BecameLeader { tp, epoch, leo } => {
            let fields =
                [("tp", tp.to_string()), ("epoch", epoch.to_string()), ("leo", leo.to_string())];
            world.event(name, "became-leader", &fields);
            ClusterEvent::BecameLeader { broker: me, tp, epoch, leo }
        }
        Fact::BecameFollower { tp, leader, epoch } => {
            let fields = [
                ("tp", tp.to_string()),
                ("leader", leader.to_string()),
                ("epoch", epoch.to_string()),
            ];
            world.event(name, "became-follower", &fields);
            ClusterEvent::BecameFollower { broker: me, tp, leader, epoch }
        }
        Fact::BecameInactive { tp } => {
            world.event(name, "became-inactive", &[("tp", tp.to_string())]);
            return;
        }
        Fact::Appended { tp, base, last, epoch, crc } => {
            let batch = BatchDigest { base, last, epoch, crc };
            ClusterEvent::Appended { broker: me, tp, batch }
        }
        Fact::DuplicateBatch { .. } | Fact::AcksAllFailed { .. } => return,
        Fact::Truncated { tp, to, .. } => {
            world.event(name, "truncated", &[("tp", tp.to_string()), ("to", to.to_string())]);
            ClusterEvent::Truncated { broker: me, tp, to }
        }
        Fact::HighWatermark { tp, epoch, hw } => {
            ClusterEvent::HighWatermark { broker: me, tp, epoch, hw }
        }
        Fact::AckedAll { tp, last_offset, hw, isr } => {
            let spec = broker.topics().iter().find(|t| t.name == tp.topic);
            let min_insync = spec.map_or(1, |t| t.min_insync_replicas);
            ClusterEvent::AckedAll { broker: me, tp, last_offset, hw, isr, min_insync }
        }
        Fact::Group { coordinator_epoch, event } => {
            log_group_event(world, name, &event);
            ClusterEvent::Group { coordinator_epoch, event }
        }
        Fact::Registered { broker_epoch } => {
            world.event(name, "broker-registered", &[("broker_epoch", broker_epoch.to_string())]);
            return;
        }
        Fact::MetadataApplied { index: applied } => {
            let Some((_, image)) = broker.metadata_image() else { return };
            let mut state = world.state();
            state.cluster.broker_metadata_index.insert(me, applied);
            for (tp, p) in image.partitions() {
                let view = PartitionView {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                };
                state.cluster.update_partition(&tp, view);
            }
            return;
        }
    };
    world.report(name, event);
}

/// Counts the coverage mark a fact proves (an acks=all ack is judged against its topic's
/// min.insync.replicas and replication factor).
fn mark_fact(world: &WorldRef, name: &str, broker: &Broker, fact: &Fact) {
    let topic = match fact {
        Fact::AckedAll { tp, .. } => Some(&tp.topic),
        _ => None,
    };
    let spec = topic.and_then(|topic| broker.topics().iter().find(|t| &t.name == topic));
    let (min_insync, replication_factor) =
        spec.map_or((1, 1), |t| (t.min_insync_replicas, usize::from(t.replication_factor)));
    if let Some(mark) = coverage::derive::from_fact(fact, min_insync, replication_factor) {
        world.mark(name, mark);
    }
}

/// Counts the marks of a response to a client or a follower: its error codes, and a
/// consumer's read served by this broker as a follower (KIP-392).
fn mark_response(world: &WorldRef, name: &str, broker: &Broker, body: &Response) {
    world.mark_all(name, coverage::derive::from_response(body));
    let Response::Fetch(fetch) = body else { return };
    if !world.scenario.consumer.fetch_from_follower {
        return;
    }
    let served: Vec<&TopicPartition> =
        fetch.partitions.iter().filter(|p| !p.records.is_empty()).map(|p| &p.tp).collect();
    if served.is_empty() {
        return;
    }
    let followed = broker
        .replica_status()
        .into_iter()
        .any(|(tp, _, _, leads)| !leads && served.contains(&&tp));
    if followed {
        world.mark(name, Mark::FollowerFetch);
    }
}

/// Counts the mark of a failed disk operation (no space, or an injected I/O error).
fn mark_disk_error(world: &WorldRef, name: &str, error: &super::disk::DiskError) {
    match error {
        super::disk::DiskError::NoSpace { .. } => world.mark(name, Mark::DiskFull),
        super::disk::DiskError::Io { .. } => world.mark(name, Mark::DiskIoError),
        _ => {}
    }
}

/// The batches of a recovered log, as the checker compares them.
fn digests(log: &PartitionLog) -> Vec<BatchDigest> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let Ok(data) = log.read(start, usize::MAX, end) else { return Vec::new() };
    let (batches, _) = scan_batches(&data.records);
    batches
        .iter()
        .map(|b| BatchDigest {
            base: b.base_offset(),
            last: b.last_offset(),
            epoch: b.header().leader_epoch(),
            crc: b.header().crc,
        })
        .collect()
}

fn broker_config(world: &WorldRef, index: u32) -> BrokerConfig {
    let scenario = &world.scenario;
    let mut topics: Vec<TopicSpec> = scenario
        .topics
        .iter()
        .map(|topic| TopicSpec {
            name: topic.name.clone(),
            partitions: topic.partitions,
            log: crate::runner::config::log_config(topic),
            replication_factor: topic.replication_factor as u16,
            min_insync_replicas: topic.min_insync_replicas as usize,
            unclean_leader_election: topic.unclean_leader_election,
        })
        .collect();
    let groups = crate::runner::config::group_settings(scenario).map(|(settings, topic)| {
        topics.push(topic);
        settings
    });
    let settings = &scenario.broker;
    let cluster = (scenario.cluster.controllers > 0).then(|| ClusterSettings {
        controllers: scenario.cluster.controllers,
        heartbeat_interval_ms: settings.heartbeat_interval_ms,
        replica_fetch_wait_max_ms: settings.replica_fetch_wait_max_ms,
        replica_lag_time_max_ms: settings.replica_lag_time_max_ms,
        truncation: match settings.truncation {
            crate::scenario::TruncationSetting::LeaderEpoch => TruncationRule::LeaderEpoch,
            crate::scenario::TruncationSetting::HighWatermark => TruncationRule::HighWatermark,
        },
        follower_fetch: scenario.consumer.fetch_from_follower,
        isr_broker_epochs: settings.isr_broker_epochs,
        ..ClusterSettings::default()
    });
    BrokerConfig {
        node_id: NodeId(index),
        topics,
        fetch_max_wait_ms: scenario.broker.fetch_max_wait_ms,
        cluster,
        groups,
    }
}

/// Reads, increments, writes and syncs the incarnation counter: producer ids stay unique
/// across restarts. A corrupt file is a logged event and the clock decides (see
/// `kafkasim::broker::meta`). Retries through injected I/O errors; None if the disk never
/// recovers.
async fn bump_incarnation(disk: &Arc<SimDisk>, world: &WorldRef, name: &str) -> Option<u64> {
    for attempt in 0..RECOVERY_IO_ATTEMPTS {
        let previous = match disk.read_all(INCARNATION_FILE).await {
            Ok(bytes) => decode_incarnation(&bytes),
            Err(super::disk::DiskError::NotFound { .. }) => Ok(0),
            Err(error) => {
                warn!(node = %name, attempt, %error, "reading incarnation failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(error) = &previous {
            warn!(node = %name, %error, "incarnation derived from the clock");
            world.event(name, "meta-corrupt", &[("reason", error.to_string())]);
        }
        let next = next_incarnation(previous.as_ref().copied(), now_duration().as_millis() as u64);
        let written = match disk.write(INCARNATION_FILE, 0, encode_incarnation(next)).await {
            Ok(()) => disk.sync(INCARNATION_FILE).await,
            Err(error) => Err(error),
        };
        match written {
            Ok(()) => return Some(next),
            Err(error) => {
                warn!(node = %name, attempt, %error, "writing incarnation failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    world.event(name, "broker-start-failed", &[("reason", "disk unusable".to_string())]);
    None
}

/// Reads the files of every partition of `topics` (the internal offsets topic included)
/// and recovers its log, applying recovery's truncations.
async fn recover_logs(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
    topics: &[TopicSpec],
) -> Option<BTreeMap<TopicPartition, PartitionLog>> {
    let mut logs = BTreeMap::new();
    for topic in topics {
        for partition in 0..topic.partitions {
            let tp = TopicPartition::new(topic.name.clone(), partition);
            let dir = partition_dir(&tp);
            let mut files = BTreeMap::new();
            for path in disk.list(&format!("{dir}/")) {
                files.insert(path.clone(), read_with_retries(disk, world, name, &path).await?);
            }
            let now = world.clock_ms(name);
            let (mut log, report) = PartitionLog::recover(&dir, topic.log.clone(), &files, now);
            world.mark_all(name, coverage::derive::from_recovery(&report));
            if !report.cuts.is_empty() || report.skipped_offsets.is_some() {
                info!(node = %name, tp = %tp, ?report, "log recovery cut data");
                world.event(
                    name,
                    "log-recovery",
                    &[("tp", tp.to_string()), ("report", format!("{report:?}"))],
                );
            }
            // Recovery's syncs and checkpoint vouch for the data the broker is about to
            // serve: if they cannot be made durable the broker must not start, or a later
            // crash reuses offsets consumers read (disk-faults seed 8831).
            for op in log.take_disk_ops() {
                apply_with_retries(disk, world, name, op).await?;
            }
            logs.insert(tp, log);
        }
    }
    Some(logs)
}

/// Carries out one recovery op, retrying through injected I/O errors (every op is
/// idempotent); None, with the start refused, if the disk never takes it.
async fn apply_with_retries(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
    op: DiskOp,
) -> Option<()> {
    for attempt in 0..RECOVERY_IO_ATTEMPTS {
        match apply(disk, op.clone()).await {
            Ok(()) => return Some(()),
            Err(error) => {
                mark_disk_error(world, name, &error);
                warn!(node = %name, path = op.path(), attempt, %error, "recovery write failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let reason = format!("cannot write {}", op.path());
    world.event(name, "broker-start-failed", &[("reason", reason)]);
    None
}

async fn read_with_retries(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
    path: &str,
) -> Option<Bytes> {
    for attempt in 0..RECOVERY_IO_ATTEMPTS {
        match disk.read_all(path).await {
            Ok(bytes) => return Some(bytes),
            Err(error) => {
                warn!(node = %name, path, attempt, %error, "recovery read failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    world.event(name, "broker-start-failed", &[("reason", format!("cannot read {path}"))]);
    None
}

async fn accept_loop(
    world: WorldRef,
    name: String,
    events: super::conn::ConnEvents,
    accepted: mpsc::UnboundedSender<(u64, FrameSender)>,
) {
    let listener = TcpListener::bind(("0.0.0.0", BROKER_PORT))
        .await
        .expect("a freshly (re)started node can bind its port");
    let mut next_id = 0u64;
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        let peer_name = super::name_of_ip(peer.ip());
        let sender = spawn_connection(
            world.clone(),
            stream,
            name.clone(),
            peer_name,
            next_id,
            events.clone(),
        );
        if accepted.send((next_id, sender)).is_err() {
            return;
        }
        next_id += 1;
    }
}

async fn disk_worker(
    world: WorldRef,
    name: String,
    mut jobs: mpsc::UnboundedReceiver<DiskJob>,
    done: mpsc::UnboundedSender<(u64, Result<(), String>)>,
) {
    let disk = madsim::plugin::simulator::<SimDisk>();
    // After one failed operation the log directory is offline, as Kafka takes it offline
    // on an IOException: the jobs the broker queued before it heard of the failure must not
    // reach the disk, or a later write (or a checkpoint vouching for it) lands past a
    // failed one, leaving a hole below the recovery point (swarm seed 2130: a follower kept
    // a gap marker where the leader had a record, replicas-agree).
    let mut offline: Option<String> = None;
    while let Some((token, ops)) = jobs.recv().await {
        let mut result = match &offline {
            Some(first) => Err(format!("log directory offline since: {first}")),
            None => Ok(()),
        };
        for op in ops.into_iter().take_while(|_| offline.is_none()) {
            if let Err(error) = apply(&disk, op).await {
                mark_disk_error(&world, &name, &error);
                offline = Some(error.to_string());
                result = Err(error.to_string());
                break;
            }
        }
        if done.send((token, result)).is_err() {
            return;
        }
    }
}

async fn apply(disk: &Arc<SimDisk>, op: DiskOp) -> Result<(), super::disk::DiskError> {
    match op {
        DiskOp::Write { path, offset, data } => disk.write(&path, offset, data).await,
        DiskOp::Sync { path } => disk.sync(&path).await,
        // An index the log never wrote has nothing to cut.
        DiskOp::Truncate { path, len } => match disk.truncate(&path, len).await {
            Err(super::disk::DiskError::NotFound { .. }) => Ok(()),
            other => other,
        },
        DiskOp::Delete { path } => match disk.delete(&path).await {
            Err(super::disk::DiskError::NotFound { .. }) => Ok(()),
            other => other,
        },
    }
}

/// Generation starts and member removals go into the node event log, where a reader of a
/// group failure (and the judge's `max_rebalances`) finds them.
fn log_group_event(world: &WorldRef, name: &str, event: &kafkasim::group::GroupEvent) {
    use kafkasim::group::GroupEvent;
    match event {
        GroupEvent::GenerationStarted { group_id, generation_id, leader, members } => {
            let fields = [
                ("group", group_id.clone()),
                ("generation", generation_id.to_string()),
                ("leader", leader.clone()),
                ("members", members.join(",")),
            ];
            world.event(name, "generation-started", &fields);
        }
        GroupEvent::MemberRemoved { group_id, member_id, reason } => {
            let fields = [
                ("group", group_id.clone()),
                ("member", member_id.clone()),
                ("reason", reason.to_string()),
            ];
            world.event(name, "member-removed", &fields);
        }
        GroupEvent::StaticMemberReplaced {
            group_id,
            generation_id,
            old_member_id,
            new_member_id,
        } => {
            let fields = [
                ("group", group_id.clone()),
                ("generation", generation_id.to_string()),
                ("old", old_member_id.clone()),
                ("new", new_member_id.clone()),
            ];
            world.event(name, "static-member-replaced", &fields);
        }
        GroupEvent::GroupLoaded { group_id, generation_id, members } => {
            let fields = [
                ("group", group_id.clone()),
                ("generation", generation_id.to_string()),
                ("members", members.join(",")),
            ];
            world.event(name, "group-loaded", &fields);
        }
        GroupEvent::AssignmentSynced { .. } | GroupEvent::CommitAccepted { .. } => {}
    }
}
