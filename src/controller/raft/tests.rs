//! One test per rule: elections, stale terms, persist-before-send, replication and commit,
//! conflict truncation, check-quorum, §5.4.2 and recovery from a persisted prefix.

use super::storage::{encode_records, recover};
use super::*;
use crate::types::{Millis, NodeId, Term};
use std::collections::VecDeque;

fn ids(n: u32) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

fn config(id: u32, n: u32) -> RaftConfig {
    RaftConfig::new(NodeId(id), ids(n))
}

/// A lossless, synchronous cluster: every Ready is persisted and synced at once.
struct Cluster {
    nodes: Vec<RaftNode>,
    disks: Vec<Vec<u8>>,
    applied: Vec<Vec<LogEntry>>,
    queue: VecDeque<RaftMessage>,
    /// Nodes whose links are cut both ways.
    isolated: Vec<NodeId>,
    now: Millis,
}

impl Cluster {
    fn new(n: u32, pre_vote: bool) -> Cluster {
        let nodes = (1..=n)
            .map(|i| {
                let mut c = config(i, n);
                c.pre_vote = pre_vote;
                RaftNode::new(c, PersistentState::default(), 1000 + u64::from(i), Millis(0))
                    .expect("valid config")
            })
            .collect();
        Cluster {
            nodes,
            disks: vec![Vec::new(); n as usize],
            applied: vec![Vec::new(); n as usize],
            queue: VecDeque::new(),
            isolated: Vec::new(),
            now: Millis(0),
        }
    }

    fn node(&mut self, id: NodeId) -> &mut RaftNode {
        &mut self.nodes[id.0 as usize - 1]
    }

    fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            while self.nodes[i].has_ready() {
                let ready = self.nodes[i].take_ready();
                self.disks[i].extend(encode_records(&ready.persist));
                self.nodes[i].on_persisted(ready.number);
                self.queue.extend(ready.messages);
                self.applied[i].extend(ready.committed);
            }
        }
    }

    /// Delivers until quiet (messages to or from isolated nodes are dropped).
    fn deliver_all(&mut self) {
        self.drain();
        let mut budget = 10_000;
        while let Some(msg) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.isolated.contains(&msg.from) || self.isolated.contains(&msg.to) {
                continue;
            }
            let now = self.now;
            let _ = self.node(msg.to).step(msg, now);
            self.drain();
        }
    }

    /// Advances time in 10 ms ticks, delivering everything after each.
    fn run_for(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now = self.now.plus_ms(10);
            let now = self.now;
            for node in &mut self.nodes {
                node.tick(now);
            }
            self.deliver_all();
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes.iter().filter(|n| n.is_leader()).map(|n| n.id()).collect()
    }
}

fn elects_one_leader(n: u32) {
    for pre_vote in [false, true] {
        let mut c = Cluster::new(n, pre_vote);
        c.run_for(3000);
        let leaders = c.leaders();
        assert_eq!(leaders.len(), 1, "leaders {leaders:?}");
        let leader = leaders[0];
        let term = c.node(leader).term();
        for node in &c.nodes {
            assert_eq!(node.term(), term);
            assert_eq!(node.leader_id(), Some(leader), "{} disagrees", node.id());
            // The LeaderChange entry is committed and applied everywhere.
            assert_eq!(node.commit_index(), 1);
        }
        assert!(c.applied.iter().all(|a| a.len() == 1));
    }
}

#[test]
fn elects_a_single_leader_among_3() {
    elects_one_leader(3);
}

#[test]
fn elects_a_single_leader_among_5() {
    elects_one_leader(5);
}

#[test]
fn single_voter_leads_and_commits_alone() {
    let mut c = Cluster::new(1, true);
    c.run_for(2100);
    assert_eq!(c.leaders(), vec![NodeId(1)]);
    let now = c.now;
    let index = c.node(NodeId(1)).propose(b"x".to_vec(), now).expect("leader");
    c.deliver_all();
    assert_eq!(c.node(NodeId(1)).commit_index(), index);
}

#[test]
fn rejects_bad_configs() {
    assert!(matches!(
        RaftNode::new(config(1, 2), PersistentState::default(), 0, Millis(0)),
        Err(ConfigError::QuorumSize { voters: 2 })
    ));
    assert!(matches!(
        RaftNode::new(config(4, 3), PersistentState::default(), 0, Millis(0)),
        Err(ConfigError::NotAVoter { .. })
    ));
}

#[test]
fn stale_term_message_is_rejected_and_not_applied() {
    let state = PersistentState {
        hard_state: HardState { term: Term(3), voted_for: None },
        entries: Vec::new(),
    };
    let mut node = RaftNode::new(config(2, 3), state, 7, Millis(0)).expect("valid");
    let stale = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(2),
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: Term(0),
            entries: vec![LogEntry {
                index: 1,
                term: Term(2),
                payload: EntryPayload::Data(vec![9]),
            }],
            leader_commit: 1,
        },
    };
    let err = node.step(stale, Millis(5)).expect_err("stale term");
    assert_eq!(
        err,
        RaftError::StaleTerm {
            from: NodeId(1),
            kind: "AppendEntries",
            msg_term: Term(2),
            current_term: Term(3)
        }
    );
    assert_eq!(node.last_index(), 0);
    assert_eq!(node.commit_index(), 0);
    assert_eq!(node.leader_id(), None);
    let ready = node.take_ready();
    assert!(ready.persist.is_empty() && ready.committed.is_empty());
    // The stale sender hears the current term, so it can step down.
    assert_eq!(ready.messages.len(), 1);
    assert_eq!(ready.messages[0].term, Term(3));
    assert!(matches!(
        ready.messages[0].body,
        MessageBody::AppendEntriesResponse { success: false, .. }
    ));
}

#[test]
fn vote_is_persisted_before_it_is_sent() {
    let mut node =
        RaftNode::new(config(2, 3), PersistentState::default(), 7, Millis(0)).expect("valid");
    let request = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::RequestVote {
            last_log_index: 0,
            last_log_term: Term(0),
            pre_vote: false,
        },
    };
    node.step(request, Millis(1)).expect("current term");
    let ready = node.take_ready();
    let voted = HardState { term: Term(1), voted_for: Some(NodeId(1)) };
    assert_eq!(ready.persist, vec![PersistRecord::HardState(voted)]);
    assert!(ready.must_sync, "a vote must be synced before the grant is sent");
    assert_eq!(
        ready.messages,
        vec![RaftMessage {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(1),
            body: MessageBody::RequestVoteResponse { granted: true, pre_vote: false },
        }]
    );
    // After a restart from the synced vote, a second candidate of the same term is refused.
    let state = recover(&encode_records(&ready.persist)).state;
    let mut node = RaftNode::new(config(2, 3), state, 8, Millis(2)).expect("valid");
    let rival = RaftMessage {
        from: NodeId(3),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::RequestVote {
            last_log_index: 0,
            last_log_term: Term(0),
            pre_vote: false,
        },
    };
    node.step(rival, Millis(3)).expect("current term");
    let ready = node.take_ready();
    assert!(ready.persist.is_empty());
    assert!(matches!(
        ready.messages[0].body,
        MessageBody::RequestVoteResponse { granted: false, .. }
    ));
}

#[test]
fn entries_acknowledged_only_with_their_persistence() {
    let mut node =
        RaftNode::new(config(2, 3), PersistentState::default(), 7, Millis(0)).expect("valid");
    let entry = LogEntry { index: 1, term: Term(1), payload: EntryPayload::Data(vec![1]) };
    let append = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: Term(0),
            entries: vec![entry.clone()],
            leader_commit: 0,
        },
    };
    node.step(append, Millis(1)).expect("current term");
    let ready = node.take_ready();
    assert!(ready.must_sync);
    assert_eq!(ready.persist.last(), Some(&PersistRecord::Entry(entry)));
    assert!(matches!(
        ready.messages[0].body,
        MessageBody::AppendEntriesResponse { success: true, index: 1, .. }
    ));
}

#[test]
fn replicates_and_commits_in_order_everywhere() {
    let mut c = Cluster::new(3, true);
    c.run_for(3000);
    let leader = c.leaders()[0];
    for i in 0..5u8 {
        let now = c.now;
        c.node(leader).propose(vec![i], now).expect("leader");
    }
    c.deliver_all();
    c.run_for(400); // a heartbeat carries the leader's commit index to the followers
    let expected: Vec<EntryPayload> = std::iter::once(EntryPayload::LeaderChange { leader })
        .chain((0..5u8).map(|i| EntryPayload::Data(vec![i])))
        .collect();
    for (i, applied) in c.applied.iter().enumerate() {
        let payloads: Vec<EntryPayload> = applied.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, expected, "node {}", i + 1);
        assert_eq!(c.nodes[i].commit_index(), 6);
    }
    // Replay the disk of every node: the same log comes back.
    for i in 0..3 {
        let rec = recover(&c.disks[i]);
        assert_eq!(rec.corruption, None);
        assert_eq!(rec.state.entries, c.nodes[i].entries());
    }
}

#[test]
fn follower_truncates_conflicting_entries() {
    let e = |index, term: u64, b: u8| LogEntry {
        index,
        term: Term(term),
        payload: EntryPayload::Data(vec![b]),
    };
    let state = PersistentState {
        hard_state: HardState { term: Term(2), voted_for: None },
        entries: vec![e(1, 1, 1), e(2, 1, 2), e(3, 2, 3), e(4, 2, 4)],
    };
    let mut node = RaftNode::new(config(2, 3), state, 7, Millis(0)).expect("valid");
    let append = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body: MessageBody::AppendEntries {
            prev_log_index: 2,
            prev_log_term: Term(1),
            entries: vec![e(3, 3, 30)],
            leader_commit: 3,
        },
    };
    node.step(append.clone(), Millis(1)).expect("newer term");
    assert_eq!(node.entries(), &[e(1, 1, 1), e(2, 1, 2), e(3, 3, 30)]);
    assert_eq!(node.commit_index(), 3);
    let ready = node.take_ready();
    assert_eq!(
        ready.persist,
        vec![
            PersistRecord::HardState(HardState { term: Term(3), voted_for: None }),
            PersistRecord::Truncate { from_index: 3 },
            PersistRecord::Entry(e(3, 3, 30)),
        ]
    );
    // A duplicate of the same request changes nothing (no truncation of matching entries).
    node.step(append, Millis(2)).expect("same term");
    assert!(node.take_ready().persist.is_empty());
    assert_eq!(node.last_index(), 3);
}

#[test]
fn mismatched_prev_entry_is_refused_with_a_hint() {
    let mut node =
        RaftNode::new(config(2, 3), PersistentState::default(), 7, Millis(0)).expect("valid");
    let append = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::AppendEntries {
            prev_log_index: 5,
            prev_log_term: Term(1),
            entries: Vec::new(),
            leader_commit: 5,
        },
    };
    node.step(append, Millis(1)).expect("current term");
    assert_eq!(node.commit_index(), 0);
    let ready = node.take_ready();
    assert!(matches!(
        ready.messages[0].body,
        MessageBody::AppendEntriesResponse { success: false, index: 5, last_index_hint: 0 }
    ));
}

#[test]
fn leader_without_a_quorum_steps_down() {
    let mut c = Cluster::new(3, true);
    c.run_for(3000);
    let leader = c.leaders()[0];
    c.isolated.push(leader);
    c.run_for(2100);
    assert!(!c.node(leader).is_leader(), "isolated leader kept leading");
    // The other two elect a new leader of a higher term.
    let others: Vec<NodeId> = c.leaders();
    assert_eq!(others.len(), 1);
    assert_ne!(others[0], leader);
    // Healing: the old leader follows the new one.
    c.isolated.clear();
    c.run_for(3000);
    assert_eq!(c.leaders(), others);
    assert_eq!(c.node(leader).leader_id(), Some(others[0]));
}

#[test]
fn commits_only_entries_of_its_own_term_by_counting() {
    let e = |index, term: u64| LogEntry {
        index,
        term: Term(term),
        payload: EntryPayload::Data(vec![index as u8]),
    };
    let state = PersistentState {
        hard_state: HardState { term: Term(2), voted_for: None },
        entries: vec![e(1, 1), e(2, 2)],
    };
    let mut cfg = config(1, 3);
    cfg.pre_vote = false;
    let mut leader = RaftNode::new(cfg, state, 7, Millis(0)).expect("valid");
    leader.tick(Millis(2000));
    assert_eq!(leader.role(), Role::Candidate);
    let term = leader.term();
    let vote = RaftMessage {
        from: NodeId(2),
        to: NodeId(1),
        term,
        body: MessageBody::RequestVoteResponse { granted: true, pre_vote: false },
    };
    leader.step(vote, Millis(2001)).expect("current term");
    assert!(leader.is_leader());
    assert_eq!(leader.last_index(), 3, "LeaderChange appended at 3");
    let ready = leader.take_ready();
    // Acks of index 3 alone do not commit it while the leader's own copy is not durable.
    leader.on_persisted(ready.number);
    assert_eq!(leader.durable_index(), 3);
    let ack = |index| RaftMessage {
        from: NodeId(2),
        to: NodeId(1),
        term,
        body: MessageBody::AppendEntriesResponse { success: true, index, last_index_hint: 0 },
    };
    // A majority holds index 2 (of term 2), but that does not commit it.
    leader.step(ack(2), Millis(2002)).expect("current term");
    assert_eq!(leader.commit_index(), 0);
    leader.step(ack(3), Millis(2003)).expect("current term");
    assert_eq!(leader.commit_index(), 3);
    assert_eq!(leader.leader_term_start(), Some(3));
}

#[test]
fn restarts_from_any_persisted_prefix() {
    let mut c = Cluster::new(3, true);
    c.run_for(3000);
    let leader = c.leaders()[0];
    for i in 0..4u8 {
        let now = c.now;
        c.node(leader).propose(vec![i], now).expect("leader");
    }
    c.run_for(400);
    let disk = c.disks[leader.0 as usize - 1].clone();
    let full = recover(&disk);
    for cut in 0..=disk.len() {
        let rec = recover(&disk[..cut]);
        assert!(rec.valid_bytes <= cut);
        // The recovered log is a prefix of the full one and the term no newer.
        assert!(full.state.entries.starts_with(&rec.state.entries));
        assert!(rec.state.hard_state.term <= full.state.hard_state.term);
        let node = RaftNode::new(config(leader.0, 3), rec.state.clone(), 3, c.now)
            .expect("every valid prefix is a valid state");
        assert_eq!(node.term(), rec.state.hard_state.term);
        assert_eq!(node.commit_index(), 0, "commit index is relearned, not persisted");
    }
    // Restart the leader from a prefix that lost its last two entries: it catches up.
    let lost = c.nodes[leader.0 as usize - 1].entries().len() - 2;
    let mut state = full.state.clone();
    state.entries.truncate(lost);
    let idx = leader.0 as usize - 1;
    c.nodes[idx] = RaftNode::new(config(leader.0, 3), state, 4, c.now).expect("valid");
    c.applied[idx].clear();
    c.run_for(4000);
    let new_leader = c.leaders()[0];
    let expected = c.node(new_leader).entries().to_vec();
    assert_eq!(c.nodes[idx].entries(), &expected[..]);
}

#[test]
fn leader_counts_its_own_entry_only_once_durable() {
    let mut node =
        RaftNode::new(config(1, 1), PersistentState::default(), 7, Millis(0)).expect("valid");
    node.tick(Millis(2000));
    assert!(node.is_leader());
    assert_eq!(node.commit_index(), 0, "LeaderChange not yet synced");
    let first = node.take_ready();
    assert!(first.committed.is_empty());
    let index = node.propose(vec![1], Millis(2001)).expect("leader");
    let second = node.take_ready();
    // Syncing the first Ready makes only the LeaderChange durable.
    node.on_persisted(first.number);
    assert_eq!(node.commit_index(), 1);
    node.on_persisted(second.number);
    assert_eq!(node.commit_index(), index);
    let ready = node.take_ready();
    assert_eq!(ready.committed.len(), 2);
}

#[test]
fn follower_commits_only_what_the_leader_verified() {
    let e = |index, term: u64| LogEntry {
        index,
        term: Term(term),
        payload: EntryPayload::Data(vec![index as u8]),
    };
    // Entry 3 is a stale, uncommitted tail the new leader has not checked yet.
    let state = PersistentState {
        hard_state: HardState { term: Term(1), voted_for: None },
        entries: vec![e(1, 1), e(2, 1), e(3, 1)],
    };
    let mut node = RaftNode::new(config(2, 3), state, 7, Millis(0)).expect("valid");
    let heartbeat = RaftMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(2),
        body: MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: Term(1),
            entries: Vec::new(),
            leader_commit: 3,
        },
    };
    node.step(heartbeat, Millis(1)).expect("newer term");
    assert_eq!(node.commit_index(), 1, "commit limited to the verified prefix");
}
