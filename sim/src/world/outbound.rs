//! Outgoing connections of a server node (broker to broker, broker to controller,
//! controller to controller) that never block the node's loop: the first send to a peer
//! starts a connect task and queues the frame; the task reports back, the queue is flushed
//! or, if the connect failed, the owner hears the peer is unreachable. A connect gives up
//! after `CONNECT_TIMEOUT_MS`, as a clogged link would otherwise hold it forever.
//!
//! Owners whose peers answer over the peers' own connections (controllers' Raft messages)
//! track silence instead of request deadlines: `sent_to` starts a wait, `heard_from` ends it,
//! and `silent_peers` closes the connection to every peer that stayed silent past a
//! timeout, so a stalled connection is replaced by the next send.

use super::conn::{spawn_connection, ConnEvent, FrameSender};
use super::{node_ip, node_name, Role, WorldRef};
use bytes::Bytes;
use kafkasim::protocol::{encode_frame, Frame};
use kafkasim::types::Millis;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

const CONNECT_TIMEOUT_MS: u64 = 1_000;

enum Link {
    Connecting { id: u64, queue: Vec<Bytes> },
    Open { id: u64, sender: FrameSender },
}

/// What the owner learns from its outgoing connections.
pub enum OutboundEvent {
    Frame {
        from: u32,
        frame: Frame,
    },
    /// The connection broke or could not be made; queued and in-flight frames are lost.
    Closed {
        peer: u32,
    },
}

/// The channels an owner selects on; hand each item back to `Outbound`.
pub struct OutboundReceivers {
    pub events: mpsc::UnboundedReceiver<(u64, ConnEvent)>,
    pub connected: mpsc::UnboundedReceiver<(u32, u64, Option<FrameSender>)>,
}

pub struct Outbound {
    world: WorldRef,
    local: String,
    role: Role,
    port: u16,
    links: BTreeMap<u32, Link>,
    /// Per peer: when the oldest message sent to it since it was last heard from went out.
    waiting: BTreeMap<u32, Millis>,
    next_id: u64,
    events: mpsc::UnboundedSender<(u64, ConnEvent)>,
    connected: mpsc::UnboundedSender<(u32, u64, Option<FrameSender>)>,
}

impl Outbound {
    /// Connections from `local` to the nodes of `role` listening on `port`.
    pub fn new(
        world: WorldRef,
        local: String,
        role: Role,
        port: u16,
    ) -> (Outbound, OutboundReceivers) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (connected, connected_rx) = mpsc::unbounded_channel();
        let outbound = Outbound {
            world,
            local,
            role,
            port,
            links: BTreeMap::new(),
            waiting: BTreeMap::new(),
            next_id: 0,
            events,
            connected,
        };
        (outbound, OutboundReceivers { events: events_rx, connected: connected_rx })
    }

    /// Queues a frame to `to`, connecting first if needed. Returns false if the open
    /// connection had just died (the owner treats it as a close).
    pub fn send(&mut self, to: u32, frame: &Frame) -> bool {
        let bytes = encode_frame(frame);
        match self.links.get_mut(&to) {
            Some(Link::Open { sender, .. }) => {
                if sender.send(bytes).is_err() {
                    self.links.remove(&to);
                    return false;
                }
            }
            Some(Link::Connecting { queue, .. }) => queue.push(bytes),
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.spawn_connect(to, id);
                self.links.insert(to, Link::Connecting { id, queue: vec![bytes] });
            }
        }
        true
    }

    /// Drops the connection to `to` (the next send reconnects).
    pub fn close(&mut self, to: u32) {
        self.links.remove(&to);
    }

    /// A message went to `to` at `now` that the peer should answer, over any connection.
    pub fn sent_to(&mut self, to: u32, now: Millis) {
        self.waiting.entry(to).or_insert(now);
    }

    /// Something arrived from `peer`: it is not silent.
    pub fn heard_from(&mut self, peer: u32) {
        self.waiting.remove(&peer);
    }

    /// Peers silent for `timeout_ms` since a message was sent to them: their connections
    /// are closed (the next send reconnects) and their waits end.
    pub fn silent_peers(&mut self, now: Millis, timeout_ms: u64) -> Vec<u32> {
        let silent: Vec<u32> = self
            .waiting
            .iter()
            .filter(|(_, since)| now.since(**since) >= timeout_ms)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &silent {
            self.waiting.remove(peer);
            self.links.remove(peer);
        }
        silent
    }

    /// A connect task finished.
    pub fn on_connected(
        &mut self,
        to: u32,
        id: u64,
        sender: Option<FrameSender>,
    ) -> Option<OutboundEvent> {
        let Some(Link::Connecting { id: current, .. }) = self.links.get(&to) else { return None };
        if *current != id {
            return None;
        }
        let Some(Link::Connecting { queue, .. }) = self.links.remove(&to) else { return None };
        let sender = match sender {
            Some(sender) => sender,
            None => return Some(OutboundEvent::Closed { peer: to }),
        };
        for bytes in queue {
            if sender.send(bytes).is_err() {
                return Some(OutboundEvent::Closed { peer: to });
            }
        }
        self.links.insert(to, Link::Open { id, sender });
        None
    }

    /// Maps a connection event to its peer; events of replaced connections are dropped.
    pub fn resolve(&mut self, id: u64, event: ConnEvent) -> Option<OutboundEvent> {
        let peer = self
            .links
            .iter()
            .find(|(_, link)| matches!(link, Link::Open { id: open, .. } if *open == id))
            .map(|(peer, _)| *peer)?;
        match event {
            ConnEvent::Frame(frame) => Some(OutboundEvent::Frame { from: peer, frame }),
            ConnEvent::Closed(_) => {
                self.links.remove(&peer);
                Some(OutboundEvent::Closed { peer })
            }
        }
    }

    fn spawn_connect(&self, to: u32, id: u64) {
        let addr = SocketAddr::new(node_ip(self.role, to), self.port);
        let world = self.world.clone();
        let local = self.local.clone();
        let peer = node_name(self.role, to);
        let events = self.events.clone();
        let connected = self.connected.clone();
        madsim::task::spawn(async move {
            let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
            let sender = match madsim::time::timeout(timeout, madsim::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(stream)) => Some(spawn_connection(world, stream, local, peer, id, events)),
                _ => None,
            };
            let _ = connected.send((to, id, sender));
        });
    }
}
