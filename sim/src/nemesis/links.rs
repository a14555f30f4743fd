//! Reference-counted network clogs. madsim's NetSim keeps clogged links and nodes as sets,
//! so two faults holding the same directed link would unclog it when the first ends. The
//! nemesis goes through `LinkClogs` instead: a link (or node) is clogged on its first hold
//! and unclogged on its last release. Owns the counts, not the choice of what to cut.

use madsim::net::NetSim;
use madsim::task::NodeId;
use std::collections::BTreeMap;

/// The clog switches of a network (NetSim in a run; a recorder in tests).
pub trait NetSwitch {
    fn clog_link(&self, src: NodeId, dst: NodeId);
    fn unclog_link(&self, src: NodeId, dst: NodeId);
    fn clog_node(&self, id: NodeId);
    fn unclog_node(&self, id: NodeId);
}

impl NetSwitch for NetSim {
    fn clog_link(&self, src: NodeId, dst: NodeId) {
        NetSim::clog_link(self, src, dst);
    }
    fn unclog_link(&self, src: NodeId, dst: NodeId) {
        NetSim::unclog_link(self, src, dst);
    }
    fn clog_node(&self, id: NodeId) {
        NetSim::clog_node(self, id);
    }
    fn unclog_node(&self, id: NodeId) {
        NetSim::unclog_node(self, id);
    }
}

/// How many live faults hold each key (a link, a node's clog, a pause): the effect starts
/// at the first hold and ends at the last release, so overlapping faults nest.
#[derive(Clone, Debug)]
pub struct Holds<K> {
    counts: BTreeMap<K, u32>,
}

impl<K> Default for Holds<K> {
    fn default() -> Self {
        Holds { counts: BTreeMap::new() }
    }
}

/// Holds are bounded by the faults alive at once; a count this high is a leak.
const HOLDS_MAX: u32 = 1_000_000;

impl<K: Ord + Clone + std::fmt::Debug> Holds<K> {
    /// One more hold on `key`; true when it is the first (start the effect).
    pub fn hold(&mut self, key: K) -> bool {
        let count = self.counts.entry(key.clone()).or_insert(0);
        *count += 1;
        assert!(*count <= HOLDS_MAX, "{key:?} held {count} times: a release leaks");
        *count == 1
    }

    /// One hold fewer on `key`; true when it was the last (end the effect). A release
    /// without a hold (the heal already cleared everything) does nothing.
    pub fn release(&mut self, key: &K) -> bool {
        let Some(count) = self.counts.get_mut(key) else { return false };
        *count -= 1;
        let last = *count == 0;
        if last {
            self.counts.remove(key);
        }
        last
    }

    /// Drops every hold on `key` (its node was killed: the effect is gone with it).
    pub fn forget(&mut self, key: &K) {
        self.counts.remove(key);
    }

    pub fn is_held(&self, key: &K) -> bool {
        self.counts.contains_key(key)
    }

    /// The largest held key (the factor of the strongest live latency spike).
    pub fn max_key(&self) -> Option<&K> {
        self.counts.keys().next_back()
    }

    /// Every held key, and no holds left (the heal).
    pub fn take_all(&mut self) -> Vec<K> {
        std::mem::take(&mut self.counts).into_keys().collect()
    }
}

/// How many live faults hold each directed link and each whole-node clog.
#[derive(Debug, Default)]
pub struct LinkClogs {
    links: Holds<(NodeId, NodeId)>,
    nodes: Holds<NodeId>,
}

impl LinkClogs {
    /// Drops packets from `src` to `dst` until every hold on the link is released.
    pub fn hold_link(&mut self, net: &impl NetSwitch, src: NodeId, dst: NodeId) {
        if self.links.hold((src, dst)) {
            net.clog_link(src, dst);
        }
    }

    /// Releases one hold; the last one unclogs the link.
    pub fn release_link(&mut self, net: &impl NetSwitch, src: NodeId, dst: NodeId) {
        if self.links.release(&(src, dst)) {
            net.unclog_link(src, dst);
        }
    }

    /// Cuts the node off the network (both directions) until every hold is released.
    pub fn hold_node(&mut self, net: &impl NetSwitch, id: NodeId) {
        if self.nodes.hold(id) {
            net.clog_node(id);
        }
    }

    pub fn release_node(&mut self, net: &impl NetSwitch, id: NodeId) {
        if self.nodes.release(&id) {
            net.unclog_node(id);
        }
    }

    /// Unclogs everything held, whatever the counts (the heal).
    pub fn clear(&mut self, net: &impl NetSwitch) {
        for (src, dst) in self.links.take_all() {
            net.unclog_link(src, dst);
        }
        for id in self.nodes.take_all() {
            net.unclog_node(id);
        }
    }

    /// Whether any fault holds the directed link.
    pub fn is_link_held(&self, src: NodeId, dst: NodeId) -> bool {
        self.links.is_held(&(src, dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A network that records which links and nodes are clogged, as NetSim's sets do.
    #[derive(Default)]
    struct Recorder {
        links: RefCell<BTreeSet<(NodeId, NodeId)>>,
        nodes: RefCell<BTreeSet<NodeId>>,
        calls: RefCell<u32>,
    }

    impl NetSwitch for Recorder {
        fn clog_link(&self, src: NodeId, dst: NodeId) {
            *self.calls.borrow_mut() += 1;
            self.links.borrow_mut().insert((src, dst));
        }
        fn unclog_link(&self, src: NodeId, dst: NodeId) {
            *self.calls.borrow_mut() += 1;
            self.links.borrow_mut().remove(&(src, dst));
        }
        fn clog_node(&self, id: NodeId) {
            *self.calls.borrow_mut() += 1;
            self.nodes.borrow_mut().insert(id);
        }
        fn unclog_node(&self, id: NodeId) {
            *self.calls.borrow_mut() += 1;
            self.nodes.borrow_mut().remove(&id);
        }
    }

    fn ids() -> (NodeId, NodeId, NodeId) {
        // madsim's NodeId has no public constructor; the runtime hands them out.
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        runtime.block_on(async {
            let handle = madsim::runtime::Handle::current();
            let a = handle.create_node().build().id();
            let b = handle.create_node().build().id();
            let c = handle.create_node().build().id();
            (a, b, c)
        })
    }

    #[test]
    fn nested_holds_on_a_link_unclog_only_at_the_last_release() {
        let (a, b, _) = ids();
        let net = Recorder::default();
        let mut clogs = LinkClogs::default();
        clogs.hold_link(&net, a, b);
        clogs.hold_link(&net, a, b);
        assert!(net.links.borrow().contains(&(a, b)));
        assert!(!net.links.borrow().contains(&(b, a)), "the reverse direction stays up");
        clogs.release_link(&net, a, b);
        assert!(net.links.borrow().contains(&(a, b)), "one fault still holds it");
        clogs.release_link(&net, a, b);
        assert!(net.links.borrow().is_empty());
        assert!(!clogs.is_link_held(a, b));
        assert_eq!(*net.calls.borrow(), 2, "one clog, one unclog");
    }

    #[test]
    fn stray_releases_do_nothing_and_clear_unclogs_everything() {
        let (a, b, c) = ids();
        let net = Recorder::default();
        let mut clogs = LinkClogs::default();
        clogs.release_link(&net, a, b);
        clogs.release_node(&net, c);
        assert_eq!(*net.calls.borrow(), 0);
        clogs.hold_link(&net, a, b);
        clogs.hold_link(&net, b, c);
        clogs.hold_link(&net, b, c);
        clogs.hold_node(&net, c);
        clogs.hold_node(&net, c);
        clogs.release_node(&net, c);
        assert!(net.nodes.borrow().contains(&c), "nested isolates hold the node");
        clogs.clear(&net);
        assert!(net.links.borrow().is_empty() && net.nodes.borrow().is_empty());
        // A repair that fires after the heal releases nothing.
        clogs.release_link(&net, b, c);
        clogs.release_node(&net, c);
        assert!(net.links.borrow().is_empty());
        clogs.hold_link(&net, b, c);
        assert!(net.links.borrow().contains(&(b, c)), "counts start afresh after a clear");
    }

    #[test]
    fn holds_nest_and_a_forgotten_key_starts_afresh() {
        let mut holds = Holds::default();
        assert!(holds.hold("consumer-1"), "the first hold starts the effect");
        assert!(!holds.hold("consumer-1"));
        assert!(!holds.release(&"consumer-1"), "one fault still holds it");
        assert!(holds.release(&"consumer-1"), "the last release ends it");
        assert!(!holds.release(&"consumer-1"), "a stray release does nothing");
        holds.hold("consumer-1");
        holds.hold("consumer-1");
        holds.forget(&"consumer-1");
        assert!(!holds.is_held(&"consumer-1"));
        assert!(holds.hold("consumer-1"), "counts start afresh after a kill");
    }

    /// One byte over `stream`, or None if none arrives within `wait`.
    async fn read_byte(stream: &mut madsim::net::TcpStream, wait: Duration) -> Option<u8> {
        let mut byte = [0u8; 1];
        match madsim::time::timeout(wait, stream.read_exact(&mut byte)).await {
            Ok(Ok(_)) => Some(byte[0]),
            _ => None,
        }
    }

    async fn write_byte(stream: &mut madsim::net::TcpStream, byte: u8) {
        stream.write_all(&[byte]).await.expect("write to a simulated stream");
        stream.flush().await.expect("flush a simulated stream");
    }

    #[test]
    fn a_one_way_cut_stalls_one_direction_of_a_live_connection() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        runtime.block_on(async {
            let handle = madsim::runtime::Handle::current();
            let a = handle.create_node().ip("10.9.0.1".parse().expect("ip")).build();
            let b = handle.create_node().ip("10.9.0.2".parse().expect("ip")).build();
            let accepted = b.spawn(async {
                let listener = madsim::net::TcpListener::bind("10.9.0.2:9000").await?;
                listener.accept().await.map(|(stream, _)| stream)
            });
            madsim::time::sleep(Duration::from_millis(10)).await;
            let connected =
                a.spawn(async { madsim::net::TcpStream::connect("10.9.0.2:9000").await });
            let mut at_a = connected.await.expect("task").expect("connect");
            let mut at_b = accepted.await.expect("task").expect("accept");
            let wait = Duration::from_secs(2);
            write_byte(&mut at_a, 1).await;
            assert_eq!(read_byte(&mut at_b, wait).await, Some(1), "the link works before");

            let net = NetSim::current();
            let mut clogs = LinkClogs::default();
            clogs.hold_link(&*net, a.id(), b.id());
            clogs.hold_link(&*net, a.id(), b.id());
            write_byte(&mut at_a, 2).await;
            assert_eq!(read_byte(&mut at_b, wait).await, None, "a -> b is cut");
            write_byte(&mut at_b, 3).await;
            assert_eq!(read_byte(&mut at_a, wait).await, Some(3), "b -> a still works");
            clogs.release_link(&*net, a.id(), b.id());
            assert_eq!(read_byte(&mut at_b, wait).await, None, "the second cut still holds");
            clogs.release_link(&*net, a.id(), b.id());
            // The stalled byte is retried with a backoff that has grown to seconds.
            let late = read_byte(&mut at_b, Duration::from_secs(30)).await;
            assert_eq!(late, Some(2), "the stalled byte arrives once the last cut ends");
        });
    }
}
