//! The controller node shell: drives one `QuorumController` (Raft plus the metadata state
//! machine). At every start it replays its Raft journal from its disk, cutting a torn or
//! corrupt tail. It persists each Ready's records (and syncs when Raft says so) before
//! acting on them, sends Raft messages to its peers over outgoing connections, answers
//! brokers' controller requests and metadata long-polls on their incoming connections, and
//! reports terms, commits and partition changes to the inside-cluster checker.
//!
//! Raft messages travel one way (a reply goes back over the replier's own connection), so
//! a peer's silence is the request timeout: a peer not heard from within
//! `RAFT_REQUEST_TIMEOUT_MS` of a message sent to it has its connections in both directions
//! dropped, and the next message reconnects. A connection stalled by a fault (a clog's
//! retransmission backoff, a packet held by a latency spike) is thus replaced once the fault
//! heals, and Raft's heartbeats and elections retry what was lost.

use super::conn::{spawn_connection, ConnEvent, FrameSender};
use super::disk::SimDisk;
use super::outbound::{Outbound, OutboundEvent};
use super::{node_name, Role, WorldRef, CONTROLLER_PORT};
use crate::check::cluster::ClusterEvent;
use crate::seed::fnv1a;
use bytes::Bytes;
use kafkasim::controller::raft::storage::{encode_records, recover};
use kafkasim::controller::raft::{EntryPayload, RaftConfig};
use kafkasim::controller::records::decode_batch;
use kafkasim::controller::{ControllerError, MetadataImage, MetadataRecord, QuorumController};
use kafkasim::protocol::{
    encode_frame, ErrorCode, Frame, MetadataFetchResponse, Request, RequestFrame, Response,
    ResponseFrame,
};
use kafkasim::types::{Epoch, Millis, NodeId, PartitionEpoch, TopicPartition};
use madsim::net::TcpListener;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

const JOURNAL: &str = "raft/journal";
/// Longest the loop sleeps without ticking (broker session timeouts, Raft timers).
const TICK_MS: u64 = 50;
const READ_ATTEMPTS: u32 = 20;
/// How long a peer may stay silent after a Raft message was sent to it before its
/// connections are replaced (KRaft's `controller.quorum.request.timeout.ms`, 2000 ms).
const RAFT_REQUEST_TIMEOUT_MS: u64 = 2_000;

/// A broker's metadata long-poll, parked until something newer commits.
struct ParkedFetch {
    conn: u64,
    correlation_id: u32,
    known_index: u64,
    deadline: Millis,
}

pub async fn controller_main(world: WorldRef, index: u32) {
    let name = node_name(Role::Controller, index);
    let disk = madsim::plugin::simulator::<SimDisk>();
    let Some((state, mut journal_len)) = replay_journal(&disk, &world, &name).await else {
        return;
    };
    let voters = (0..world.scenario.cluster.controllers).map(NodeId).collect();
    let raft_config = RaftConfig::new(NodeId(index), voters);
    let config = crate::runner::config::controller_config(&world.scenario);
    let now = world.clock_ms(&name);
    // A fresh election-timer stream per start, still a function of the root seed.
    let seed = crate::seed::substream(world.seed, &format!("{name}/raft"))
        .gen::<u64>()
        .wrapping_add(super::now_ns());
    let mut controller = match QuorumController::new(raft_config, config, state, seed, now) {
        Ok(controller) => controller,
        Err(error) => {
            error!(node = %name, %error, "controller configuration refused");
            world.event(&name, "controller-start-failed", &[("reason", error.to_string())]);
            return;
        }
    };
    world.event(&name, "controller-started", &[("term", controller.raft().term().to_string())]);
    world.state().storage_failed.remove(&name);

    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel::<(u64, ConnEvent)>();
    let (accept_tx, mut accept_rx) = mpsc::unbounded_channel::<(u64, FrameSender)>();
    madsim::task::spawn(accept_loop(world.clone(), name.clone(), conn_tx, accept_tx));
    let (mut peers, mut peer_rx) =
        Outbound::new(world.clone(), name.clone(), Role::Controller, CONTROLLER_PORT);
    let mut conns: BTreeMap<u64, FrameSender> = BTreeMap::new();
    // Incoming connections Raft messages arrived on, with the peer controller's index.
    let mut raft_conns: BTreeMap<u64, u32> = BTreeMap::new();
    // (broker, request id) -> the connection its reply goes back on.
    let mut reply_routes: BTreeMap<(NodeId, u64), u64> = BTreeMap::new();
    let mut parked: Vec<ParkedFetch> = Vec::new();
    let mut role = (controller.raft().term(), controller.raft().is_leader());
    let mut active = false;
    let mut last_tick = world.clock_ms(&name);

    loop {
        // Ticks are due by the clock, so a controller busy with requests still ticks.
        let due = controller.raft().next_deadline().min(last_tick.plus_ms(TICK_MS));
        let wake_ms = due.since(world.clock_ms(&name)).max(1);
        let sleep = madsim::time::sleep(Duration::from_millis(wake_ms));
        tokio::select! {
            biased;
            Some((id, sender)) = accept_rx.recv() => { conns.insert(id, sender); }
            Some((id, event)) = conn_rx.recv() => match event {
                ConnEvent::Frame(Frame::Request(frame)) => {
                    let now = world.clock_ms(&name);
                    match frame.body {
                        Request::Raft(message) => {
                            peers.heard_from(message.from.0);
                            raft_conns.insert(id, message.from.0);
                            if let Err(error) = controller.step(message, now) {
                                warn!(node = %name, %error, "raft message refused");
                            }
                        }
                        Request::Controller(request) => {
                            let to = frame.client_id;
                            let request_id = u64::from(frame.correlation_id);
                            reply_routes.insert((to, request_id), id);
                            controller.handle(to, request_id, request, now);
                        }
                        Request::MetadataFetch(request) => {
                            let deadline = now.plus_ms(u64::from(request.max_wait_ms));
                            parked.push(ParkedFetch {
                                conn: id,
                                correlation_id: frame.correlation_id,
                                known_index: request.known_index,
                                deadline,
                            });
                        }
                        other => {
                            warn!(node = %name, request = ?other, "not a controller request");
                            let body = Response::Error(ErrorCode::InvalidRequest);
                            respond(&conns, id, frame.correlation_id, body);
                        }
                    }
                }
                ConnEvent::Frame(Frame::Response(_)) => {
                    warn!(node = %name, conn = id, "response frame sent to a controller: closing");
                    conns.remove(&id);
                }
                ConnEvent::Closed(_) => {
                    conns.remove(&id);
                    raft_conns.remove(&id);
                    parked.retain(|p| p.conn != id);
                    reply_routes.retain(|_, conn| *conn != id);
                }
            },
            Some((to, id, sender)) = peer_rx.connected.recv() => {
                let _ = peers.on_connected(to, id, sender);
            }
            Some((id, event)) = peer_rx.events.recv() => {
                if let Some(OutboundEvent::Frame { from, .. }) = peers.resolve(id, event) {
                    warn!(node = %name, peer = from, "controllers do not answer raft messages: closing");
                    peers.close(from);
                }
            }
            _ = sleep => {}
        }
        let now = world.clock_ms(&name);
        if now >= due {
            controller.tick(now);
            last_tick = now;
            for peer in peers.silent_peers(now, RAFT_REQUEST_TIMEOUT_MS) {
                drop_connections_from(&world, &name, peer, &mut conns, &mut raft_conns);
            }
        }

        while controller.has_ready() {
            let ready = controller.take_ready();
            if !ready.raft.persist.is_empty() {
                let bytes = Bytes::from(encode_records(&ready.raft.persist));
                let len = bytes.len() as u64;
                let mut written = disk.write(JOURNAL, journal_len, bytes).await;
                if written.is_ok() && ready.raft.must_sync {
                    written = disk.sync(JOURNAL).await;
                }
                if let Err(error) = written {
                    // Raft may not act on state it could not persist: stop, as a real
                    // controller halts on a failed log write. The heal restarts it.
                    error!(node = %name, %error, "raft journal write failed: halting");
                    world.event(&name, "controller-halted", &[("reason", error.to_string())]);
                    // Its accept loop still holds the port: the heal must kill, then restart.
                    world.state().storage_failed.insert(name.clone());
                    return;
                }
                journal_len += len;
            }
            let now = world.clock_ms(&name);
            for message in &ready.raft.messages {
                peers.sent_to(message.to.0, now);
                let frame = RequestFrame {
                    correlation_id: 0,
                    client_id: NodeId(index),
                    body: Request::Raft(message.clone()),
                };
                peers.send(message.to.0, &Frame::Request(frame));
            }
            controller.on_persisted(ready.raft.number);
            for entry in &ready.raft.committed {
                let digest = match &entry.payload {
                    EntryPayload::Data(bytes) => fnv1a(bytes),
                    _ => fnv1a(format!("{:?}", entry.payload).as_bytes()),
                };
                let event = ClusterEvent::RaftCommitted {
                    controller: NodeId(index),
                    index: entry.index,
                    term: entry.term,
                    digest,
                };
                world.report(&name, event);
                if let EntryPayload::Data(bytes) = &entry.payload {
                    let image = controller.committed_image();
                    let active = controller.is_active();
                    report_records(&world, &name, index, image, bytes, active);
                }
            }
            if let Some(last) = ready.raft.committed.last() {
                world.state().cluster.observe_committed(last.index, controller.committed_image());
            }
            for reply in ready.replies {
                let Some(conn) = reply_routes.remove(&(reply.to, reply.request_id)) else {
                    continue;
                };
                let body = Response::Controller(reply.response);
                respond(&conns, conn, reply.request_id as u32, body);
            }
        }

        let now_role = (controller.raft().term(), controller.raft().is_leader());
        if now_role != role {
            role = now_role;
            let (term, leader) = role;
            world.report(&name, ClusterEvent::RaftTerm { controller: NodeId(index), term, leader });
        }
        if controller.is_active() != active {
            active = controller.is_active();
            let term = controller.raft().term();
            let kind = if active { "controller-active" } else { "controller-inactive" };
            world.event(&name, kind, &[("term", term.to_string())]);
            if active {
                world.state().cluster.active_controller = Some((index, term.0));
            }
        }
        answer_metadata_fetches(&world, &name, &controller, &conns, &mut parked);
    }
}

/// Answers parked metadata fetches that something newer (or an error, or their deadline)
/// lets answer now.
fn answer_metadata_fetches(
    world: &WorldRef,
    name: &str,
    controller: &QuorumController,
    conns: &BTreeMap<u64, FrameSender>,
    parked: &mut Vec<ParkedFetch>,
) {
    let now = world.clock_ms(name);
    let applied = controller.applied_index();
    for fetch in std::mem::take(parked) {
        let response = if !controller.is_active() {
            let leader_hint = controller.raft().leader_id();
            MetadataFetchResponse {
                error: Some(ControllerError::NotController { leader_hint }),
                index: applied,
                image: None,
            }
        } else if applied > fetch.known_index {
            let image: MetadataImage = controller.committed_image().clone();
            MetadataFetchResponse { error: None, index: applied, image: Some(image) }
        } else if fetch.deadline <= now {
            MetadataFetchResponse { error: None, index: applied, image: None }
        } else {
            parked.push(fetch);
            continue;
        };
        respond(conns, fetch.conn, fetch.correlation_id, Response::MetadataFetch(response));
    }
}

/// Reports the partition changes of one committed batch (after it was applied).
/// The active controller also logs each change as an event (the others only report it to
/// the checker), so the event log shows every leader and ISR change once.
fn report_records(
    world: &WorldRef,
    name: &str,
    index: u32,
    image: &MetadataImage,
    bytes: &[u8],
    active: bool,
) {
    let Ok(records) = decode_batch(bytes) else {
        warn!(node = %name, "committed batch does not decode");
        return;
    };
    let me = NodeId(index);
    for record in records {
        match record {
            MetadataRecord::PartitionChange {
                tp,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
                elr,
                unclean,
                ..
            } => {
                let topic_allows =
                    image.topic(&tp.topic).is_some_and(|t| t.unclean_leader_election);
                // KIP-966 unclean recovery elects the last known leader without the topic's
                // unclean.leader.election.enable; the event says which rule chose it.
                let recovery_allows = crate::runner::config::unclean_recovery_on(&world.scenario);
                let unclean_allowed = topic_allows || recovery_allows;
                if unclean && active {
                    let kind = if topic_allows { "unclean-election" } else { "unclean-recovery" };
                    let fields = [("tp", tp.to_string()), ("leader", format!("{leader:?}"))];
                    world.event(name, kind, &fields);
                }
                if active {
                    let fields = [
                        ("tp", tp.to_string()),
                        ("leader", leader.map_or("none".to_string(), |l| l.to_string())),
                        ("epoch", leader_epoch.to_string()),
                        ("partition_epoch", partition_epoch.to_string()),
                        ("isr", format!("{isr:?}")),
                        ("elr", format!("{elr:?}")),
                    ];
                    world.event(name, "partition-changed", &fields);
                }
                world.report(
                    name,
                    ClusterEvent::PartitionChanged {
                        controller: me,
                        tp,
                        leader,
                        leader_epoch,
                        partition_epoch,
                        isr,
                        unclean,
                        unclean_allowed,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id, broker_epoch } if active => {
                let fields =
                    [("broker", broker_id.to_string()), ("epoch", broker_epoch.to_string())];
                world.event(name, "broker-fenced", &fields);
            }
            MetadataRecord::UnfenceBroker { broker_id, broker_epoch } if active => {
                let fields =
                    [("broker", broker_id.to_string()), ("epoch", broker_epoch.to_string())];
                world.event(name, "broker-unfenced", &fields);
            }
            MetadataRecord::CreateTopic {
                name: topic,
                assignments,
                unclean_leader_election,
                ..
            } => {
                for (p, replicas) in assignments.into_iter().enumerate() {
                    world.report(
                        name,
                        ClusterEvent::PartitionChanged {
                            controller: me,
                            tp: TopicPartition::new(topic.clone(), p as u32),
                            leader: replicas.first().copied(),
                            leader_epoch: Epoch(0),
                            partition_epoch: PartitionEpoch(0),
                            isr: replicas,
                            unclean: false,
                            unclean_allowed: unclean_leader_election,
                        },
                    );
                }
            }
            _ => {}
        }
    }
}

/// Drops the incoming connections from a silent peer controller (its end sees the reset at
/// its next write and reconnects); the outgoing one was closed already.
fn drop_connections_from(
    world: &WorldRef,
    name: &str,
    peer: u32,
    conns: &mut BTreeMap<u64, FrameSender>,
    raft_conns: &mut BTreeMap<u64, u32>,
) {
    let silent: Vec<u64> =
        raft_conns.iter().filter(|(_, from)| **from == peer).map(|(id, _)| *id).collect();
    for id in silent {
        raft_conns.remove(&id);
        conns.remove(&id);
    }
    info!(node = %name, peer, "raft peer silent past the request timeout: reconnecting");
    let fields = [("peer", node_name(Role::Controller, peer))];
    world.event(name, "raft-request-timeout", &fields);
}

fn respond(conns: &BTreeMap<u64, FrameSender>, conn: u64, correlation_id: u32, body: Response) {
    if let Some(sender) = conns.get(&conn) {
        let _ = sender.send(encode_frame(&Frame::Response(ResponseFrame { correlation_id, body })));
    }
}

/// Reads the journal, replays its valid prefix and cuts the rest off the file.
async fn replay_journal(
    disk: &Arc<SimDisk>,
    world: &WorldRef,
    name: &str,
) -> Option<(kafkasim::controller::raft::PersistentState, u64)> {
    for attempt in 0..READ_ATTEMPTS {
        let bytes = match disk.read_all(JOURNAL).await {
            Ok(bytes) => bytes,
            Err(super::disk::DiskError::NotFound { .. }) => Bytes::new(),
            Err(error) => {
                warn!(node = %name, attempt, %error, "reading the raft journal failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let recovery = recover(&bytes);
        if let Some(corruption) = &recovery.corruption {
            info!(node = %name, %corruption, valid = recovery.valid_bytes, "raft journal cut");
            let fields = [
                ("valid_bytes", recovery.valid_bytes.to_string()),
                ("reason", corruption.to_string()),
            ];
            world.event(name, "raft-journal-cut", &fields);
            let cut = disk.truncate(JOURNAL, recovery.valid_bytes as u64).await;
            if let Err(error) = cut.and(disk.sync(JOURNAL).await) {
                warn!(node = %name, %error, "cutting the raft journal failed");
                madsim::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        return Some((recovery.state, recovery.valid_bytes as u64));
    }
    world.event(name, "controller-start-failed", &[("reason", "disk unusable".to_string())]);
    None
}

async fn accept_loop(
    world: WorldRef,
    name: String,
    events: super::conn::ConnEvents,
    accepted: mpsc::UnboundedSender<(u64, FrameSender)>,
) {
    let listener = TcpListener::bind(("0.0.0.0", CONTROLLER_PORT))
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
