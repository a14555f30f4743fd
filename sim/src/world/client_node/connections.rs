//! A client's connections to brokers: connect on first use, queue frames, close on a
//! request timeout, and report every close so the state machine can retry.

use crate::world::conn::{spawn_connection, ConnEvent, ConnEvents, FrameSender};
use crate::world::{node_name, Role, World, WorldRef};
use kafkasim::protocol::{encode_frame, Frame, RequestFrame};
use kafkasim::types::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a connect may take before it counts as failed.
const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Correlation ids at or above this belong to the shell's own requests.
pub const SHELL_CORRELATION_BASE: u32 = 1 << 31;

pub struct Connections {
    world: WorldRef,
    local: String,
    /// broker -> (connection id, sender)
    open: BTreeMap<NodeId, (u64, FrameSender)>,
    next_id: u64,
    events: ConnEvents,
}

/// What the shell learns from its connections.
pub enum Incoming {
    Frame { from: NodeId, frame: Frame },
    Closed { node: NodeId },
}

impl Connections {
    pub fn new(
        world: WorldRef,
        local: String,
    ) -> (Connections, mpsc::UnboundedReceiver<(u64, ConnEvent)>) {
        let (events, receiver) = mpsc::unbounded_channel();
        (Connections { world, local, open: BTreeMap::new(), next_id: 0, events }, receiver)
    }

    /// Sends a request, connecting first if needed. Returns false when the broker could
    /// not be reached (the caller treats it as a disconnect).
    pub async fn send(&mut self, to: NodeId, frame: RequestFrame) -> bool {
        if !self.open.contains_key(&to) && !self.connect(to).await {
            return false;
        }
        let (_, sender) = self.open.get(&to).expect("connected above");
        if sender.send(encode_frame(&Frame::Request(frame))).is_err() {
            self.open.remove(&to);
            return false;
        }
        true
    }

    pub fn close(&mut self, node: NodeId) {
        // Dropping the sender ends the connection task, which closes the stream.
        self.open.remove(&node);
    }

    /// Maps a connection event to its broker; stale events of replaced connections are
    /// dropped (None).
    pub fn resolve(&mut self, id: u64, event: ConnEvent) -> Option<Incoming> {
        let node = self.open.iter().find(|(_, (conn, _))| *conn == id).map(|(node, _)| *node)?;
        match event {
            ConnEvent::Frame(frame) => Some(Incoming::Frame { from: node, frame }),
            ConnEvent::Closed(_) => {
                self.open.remove(&node);
                Some(Incoming::Closed { node })
            }
        }
    }

    async fn connect(&mut self, to: NodeId) -> bool {
        let addr = World::broker_addr(to.0);
        let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
        let stream =
            match madsim::time::timeout(timeout, madsim::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => stream,
                _ => return false,
            };
        let id = self.next_id;
        self.next_id += 1;
        let peer = node_name(Role::Broker, to.0);
        let sender = spawn_connection(
            self.world.clone(),
            stream,
            self.local.clone(),
            peer,
            id,
            self.events.clone(),
        );
        self.open.insert(to, (id, sender));
        true
    }
}
