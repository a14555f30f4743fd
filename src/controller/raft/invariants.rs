//! Raft's safety properties (Figure 3 of the paper) as a checker a simulator calls after
//! every step, over every live node it can see.
//!
//! - Election safety: at most one leader per term, ever.
//! - Terms only grow within one incarnation of a node (a restart may fall back to the
//!   durable term; `storage::recover` refuses a journal whose terms go backwards).
//! - Log matching: two logs holding an entry with the same index and term are identical up
//!   to it.
//! - Committed entries never change: every node's entries up to its commit index agree with
//!   one global committed prefix, which only grows.
//! - Leader completeness: a leader of a term later than the one an entry was committed in
//!   holds that entry.
//!
//! This module owns the checks; the driver decides when to call them and what a violation
//! does (the simulator ends the run with a safety verdict).

use super::message::{LogEntry, LogIndex};
use super::node::RaftNode;
use crate::types::{NodeId, Term};
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvariantViolation {
    #[error("two leaders in {term}: {first} and {second}")]
    TwoLeaders { term: Term, first: NodeId, second: NodeId },
    #[error("term went back on {node}: {from} -> {to}")]
    TermDecreased { node: NodeId, from: Term, to: Term },
    #[error("{node} commit index {commit} beyond its last index {last}")]
    CommitBeyondLog { node: NodeId, commit: LogIndex, last: LogIndex },
    #[error("committed entry {index} differs on {node}: {found:?}, committed {committed:?}")]
    CommittedChanged { node: NodeId, index: LogIndex, found: Option<LogEntry>, committed: LogEntry },
    #[error("leader {node} of {term} lacks entry {index} committed by {committed_by}")]
    LeaderIncomplete { node: NodeId, term: Term, index: LogIndex, committed_by: Term },
    #[error("logs of {a} and {b} share index {index} term {term} but differ at {at}")]
    LogMismatch { a: NodeId, b: NodeId, index: LogIndex, term: Term, at: LogIndex },
}

#[derive(Clone, Debug, Default)]
pub struct RaftSafetyChecker {
    leaders: BTreeMap<Term, NodeId>,
    /// The committed prefix as first observed, with an upper bound on the term it was
    /// committed in (the observing node's term: commit happens no later than it hears of it).
    committed: Vec<(LogEntry, Term)>,
    terms: BTreeMap<NodeId, Term>,
}

impl RaftSafetyChecker {
    pub fn new() -> RaftSafetyChecker {
        RaftSafetyChecker::default()
    }

    /// The global committed prefix observed so far.
    pub fn committed(&self) -> impl Iterator<Item = &LogEntry> {
        self.committed.iter().map(|(e, _)| e)
    }

    pub fn leader_of(&self, term: Term) -> Option<NodeId> {
        self.leaders.get(&term).copied()
    }

    /// A node crashed: its next incarnation may start from an older (durable) term.
    pub fn node_restarted(&mut self, node: NodeId) {
        self.terms.remove(&node);
    }

    /// Checks every property over the live nodes, updating what it has seen.
    pub fn observe(&mut self, nodes: &[&RaftNode]) -> Result<(), InvariantViolation> {
        for node in nodes {
            self.observe_node(node)?;
        }
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                check_log_matching(a, b)?;
            }
        }
        Ok(())
    }

    fn observe_node(&mut self, node: &RaftNode) -> Result<(), InvariantViolation> {
        let id = node.id();
        let term = node.term();
        if let Some(&seen) = self.terms.get(&id) {
            if term < seen {
                return Err(InvariantViolation::TermDecreased { node: id, from: seen, to: term });
            }
        }
        self.terms.insert(id, term);
        if node.is_leader() {
            let first = *self.leaders.entry(term).or_insert(id);
            if first != id {
                return Err(InvariantViolation::TwoLeaders { term, first, second: id });
            }
        }
        let commit = node.commit_index();
        if commit > node.last_index() {
            return Err(InvariantViolation::CommitBeyondLog {
                node: id,
                commit,
                last: node.last_index(),
            });
        }
        for index in 1..=commit {
            let found = node.entry(index).expect("index <= commit <= last");
            match self.committed.get(index as usize - 1) {
                Some((committed, _)) if committed != found => {
                    return Err(InvariantViolation::CommittedChanged {
                        node: id,
                        index,
                        found: Some(found.clone()),
                        committed: committed.clone(),
                    });
                }
                Some(_) => {}
                None => self.committed.push((found.clone(), term)),
            }
        }
        if node.is_leader() {
            for (committed, committed_by) in &self.committed {
                if *committed_by < term && node.entry(committed.index) != Some(committed) {
                    return Err(InvariantViolation::LeaderIncomplete {
                        node: id,
                        term,
                        index: committed.index,
                        committed_by: *committed_by,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Log matching between two nodes: find the highest index at which both hold an entry of
/// the same term; everything up to it must be identical.
pub fn check_log_matching(a: &RaftNode, b: &RaftNode) -> Result<(), InvariantViolation> {
    let top = a.last_index().min(b.last_index());
    let Some(index) = (1..=top).rev().find(|&i| a.term_at(i) == b.term_at(i)) else {
        return Ok(());
    };
    let (la, lb) = (&a.entries()[..index as usize], &b.entries()[..index as usize]);
    if let Some(at) = la.iter().zip(lb).position(|(x, y)| x != y) {
        return Err(InvariantViolation::LogMismatch {
            a: a.id(),
            b: b.id(),
            index,
            term: a.term_at(index).expect("index <= top"),
            at: at as u64 + 1,
        });
    }
    Ok(())
}
