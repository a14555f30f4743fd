//! Framed connections over madsim's simulated TCP: one task per connection reads
//! length-prefixed frames and writes queued ones. Garbage on the wire closes the
//! connection with a logged, typed error, as does a reset injected by the nemesis; the
//! owner learns of every frame and of the close through its event channel.

use super::message_rules::MessageAction;
use super::WorldRef;
use crate::coverage::Mark;
use crate::world::signal::{Signal, Subscriber};
use bytes::Bytes;
use kafkasim::protocol::{Frame, FrameDecoder, FrameError};
use madsim::net::TcpStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// What a connection task reports to its owner.
#[derive(Debug)]
pub enum ConnEvent {
    Frame(Frame),
    Closed(CloseReason),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    PeerClosed,
    LocalClose,
    Reset,
    Io(String),
    Malformed(FrameError),
}

/// The owner's handle: queue encoded frames; dropping it closes the connection.
pub type FrameSender = mpsc::UnboundedSender<Bytes>;

/// Events from all of an owner's connections, tagged with the connection id.
pub type ConnEvents = mpsc::UnboundedSender<(u64, ConnEvent)>;

struct Link {
    world: WorldRef,
    local: String,
    peer: String,
    id: u64,
    events: ConnEvents,
}

/// Starts the task for an established connection. `id` tags every event it sends.
pub fn spawn_connection(
    world: WorldRef,
    stream: TcpStream,
    local: String,
    peer: String,
    id: u64,
    events: ConnEvents,
) -> FrameSender {
    let (tx, rx) = mpsc::unbounded_channel();
    let resets = world.resets.get(&local).map(Signal::subscribe);
    let link = Link { world, local, peer, id, events };
    madsim::task::spawn(async move {
        let reason = link.run(stream, rx, resets).await;
        debug!(node = %link.local, peer = %link.peer, ?reason, "connection closed");
        let _ = link.events.send((link.id, ConnEvent::Closed(reason)));
    });
    tx
}

impl Link {
    async fn run(
        &self,
        mut stream: TcpStream,
        mut outgoing: mpsc::UnboundedReceiver<Bytes>,
        mut resets: Option<Subscriber>,
    ) -> CloseReason {
        let mut decoder = FrameDecoder::new();
        loop {
            tokio::select! {
                biased;
                () = wait_reset(&mut resets) => return CloseReason::Reset,
                out = outgoing.recv() => {
                    let Some(bytes) = out else { return CloseReason::LocalClose };
                    let written = match stream.write_all(&bytes).await {
                        Ok(()) => stream.flush().await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = written {
                        return CloseReason::Io(error.to_string());
                    }
                }
                read = read_chunk(&mut stream, &mut decoder) => {
                    match read {
                        Ok(None) => return CloseReason::PeerClosed,
                        Ok(Some(from)) => {
                            let chunk = &decoder.buffer_mut()[from..];
                            self.world.delivered(&self.peer, &self.local, chunk);
                        }
                        Err(error) => return CloseReason::Io(error.to_string()),
                    }
                    if let Err(reason) = self.drain(&mut decoder) {
                        return reason;
                    }
                }
            }
        }
    }

    fn drain(&self, decoder: &mut FrameDecoder) -> Result<(), CloseReason> {
        loop {
            match decoder.next_frame() {
                Ok(None) => return Ok(()),
                Ok(Some(frame)) => self.deliver(frame)?,
                Err(error) => {
                    warn!(node = %self.local, peer = %self.peer, %error, "malformed frame: closing connection");
                    let fields = [("peer", self.peer.clone()), ("error", error.to_string())];
                    self.world.event(&self.local, "malformed-frame", &fields);
                    return Err(CloseReason::Malformed(error));
                }
            }
        }
    }
}

impl Link {
    /// Hands a frame to the owner, as the live message rules say: at once, never, twice, or
    /// after a delay (the frames behind it overtake it).
    fn deliver(&self, frame: Frame) -> Result<(), CloseReason> {
        let kind = frame.kind_name();
        tracing::trace!(node = %self.local, peer = %self.peer, kind, "message received");
        let action = self.world.messages.action(&self.peer, &self.local, kind);
        // Whether the owner still listens.
        let send = |frame: Frame| self.events.send((self.id, ConnEvent::Frame(frame))).is_ok();
        let listening = match action {
            None => send(frame),
            Some(MessageAction::Drop) => {
                debug!(node = %self.local, peer = %self.peer, kind, "message rule: dropped");
                self.world.mark(&self.local, Mark::MessageDropped);
                true
            }
            Some(MessageAction::Duplicate) => {
                debug!(node = %self.local, peer = %self.peer, kind, "message rule: delivered twice");
                self.world.mark(&self.local, Mark::MessageDuplicated);
                send(frame.clone()) && send(frame)
            }
            Some(MessageAction::Delay(delay)) => {
                debug!(node = %self.local, peer = %self.peer, kind, ?delay, "message rule: held");
                self.world.mark(&self.local, Mark::MessageDelayed);
                let (events, id) = (self.events.clone(), self.id);
                madsim::task::spawn(async move {
                    madsim::time::sleep(delay).await;
                    let _ = events.send((id, ConnEvent::Frame(frame)));
                });
                true
            }
        };
        listening.then_some(()).ok_or(CloseReason::LocalClose)
    }
}

/// Reads what arrived into the decoder; returns where the new bytes start in its buffer
/// (for the trace hash), None at EOF.
async fn read_chunk(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
) -> std::io::Result<Option<usize>> {
    let before = decoder.buffer_mut().len();
    let read = stream.read_buf(decoder.buffer_mut()).await?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(before))
}

/// Resolves when the node's connections are reset; never for a node without the signal.
async fn wait_reset(resets: &mut Option<Subscriber>) {
    match resets {
        Some(subscriber) => subscriber.raised().await,
        None => std::future::pending().await,
    }
}
