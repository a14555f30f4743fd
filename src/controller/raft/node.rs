//! One Raft voter as a sans-IO state machine, in raft-rs's shape.
//!
//! The driver feeds it `step(message, now)`, `tick(now)` and `propose(data, now)`, then
//! drains `take_ready()` and carries the `Ready` out in this order:
//!
//! 1. append `persist` to the journal (`storage::encode_records`) and, when `must_sync`,
//!    sync it; nothing below may happen before the sync completes, because a granted vote
//!    or an acknowledged entry must be durable before anyone hears of it;
//! 2. send `messages`;
//! 3. apply `committed` (entries in index order, each exactly once per incarnation);
//! 4. once the sync of step 1 completed, call `on_persisted(ready.number)`: a leader counts
//!    its own copy of an entry towards a quorum only when it knows the copy is durable
//!    (a single voter commits nothing until then).
//!
//! Readies are a FIFO: the driver may call `step`/`tick` while a sync is in flight, but the
//! outputs of a later Ready never overtake an earlier one. On restart the driver builds a
//! new node from `storage::recover` of whatever the disk kept; commit and applied indexes
//! are not persisted, so the state machine above is rebuilt by re-applying from index 1.
//!
//! Implemented: randomized election timeouts from a seed, pre-vote (optional), check-quorum
//! with leader stickiness (a voter that heard from a live leader within the minimum election
//! timeout ignores disruptive vote requests), AppendEntries consistency check and conflict
//! truncation, commit by counting only entries of the leader's own term (§5.4.2), a
//! LeaderChange entry at the start of every term. Not implemented: snapshots and log
//! compaction, membership changes, leadership transfer, read index.

use super::message::{EntryPayload, LogEntry, LogIndex, MessageBody, RaftMessage};
use super::storage::{HardState, PersistRecord, PersistentState};
use crate::types::{Millis, NodeId, Term};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use thiserror::Error;

/// Timing and limits. KRaft's defaults are controller.quorum.election.timeout.ms = 1000
/// (jittered up to 2x) and a fetch every 500 ms or so; heartbeats must be well below the
/// minimum election timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    pub id: NodeId,
    /// Every voter, this node included. 1, 3 or 5 voters.
    pub voters: Vec<NodeId>,
    pub election_timeout_min_ms: u64,
    /// Exclusive upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub entries_per_append_max: usize,
    pub check_quorum: bool,
    pub pre_vote: bool,
}

impl RaftConfig {
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> RaftConfig {
        RaftConfig {
            id,
            voters,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            heartbeat_interval_ms: 200,
            entries_per_append_max: 64,
            check_quorum: true,
            pre_vote: true,
        }
    }

    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let unique: BTreeSet<NodeId> = self.voters.iter().copied().collect();
        if unique.len() != self.voters.len() {
            return Err(ConfigError::DuplicateVoter);
        }
        if ![1, 3, 5].contains(&self.voters.len()) {
            return Err(ConfigError::QuorumSize { voters: self.voters.len() });
        }
        if !unique.contains(&self.id) {
            return Err(ConfigError::NotAVoter { id: self.id });
        }
        if self.election_timeout_min_ms == 0
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
            || self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_min_ms
        {
            return Err(ConfigError::Timeouts);
        }
        if self.entries_per_append_max == 0 {
            return Err(ConfigError::EntriesPerAppend);
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("a quorum has 1, 3 or 5 voters, not {voters}")]
    QuorumSize { voters: usize },
    #[error("voter listed twice")]
    DuplicateVoter,
    #[error("{id} is not among the voters")]
    NotAVoter { id: NodeId },
    #[error("need 0 < heartbeat < election_timeout_min < election_timeout_max")]
    Timeouts,
    #[error("entries_per_append_max must be positive")]
    EntriesPerAppend,
    #[error("recovered log is not contiguous from index 1 with growing terms <= the term")]
    InvalidState,
}

/// Why a message was not applied. Stale terms are expected under faults; the driver logs
/// them and moves on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RaftError {
    #[error("{kind} from {from} at stale {msg_term} (current {current_term})")]
    StaleTerm { from: NodeId, kind: &'static str, msg_term: Term, current_term: Term },
    #[error("message for {to} delivered to {me}")]
    Misaddressed { to: NodeId, me: NodeId },
    #[error("message from {from}, which is not another voter")]
    UnknownSender { from: NodeId },
    #[error("malformed {kind} from {from}: {what}")]
    Malformed { from: NodeId, kind: &'static str, what: &'static str },
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("not the leader (term {term}, leader hint {leader_hint:?})")]
    NotLeader { term: Term, leader_hint: Option<NodeId> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// Outputs for the driver; see the module header for the order they must be carried out in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Give it back to `RaftNode::on_persisted` once `persist` is synced.
    pub number: u64,
    pub persist: Vec<PersistRecord>,
    /// The persist records must be synced before `messages` are sent.
    pub must_sync: bool,
    pub messages: Vec<RaftMessage>,
    pub committed: Vec<LogEntry>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.messages.is_empty() && self.committed.is_empty()
    }
}

#[derive(Clone, Debug)]
struct Progress {
    next_index: LogIndex,
    match_index: LogIndex,
    /// Heard from since the last check-quorum round.
    recent_active: bool,
}

pub struct RaftNode {
    config: RaftConfig,
    term: Term,
    voted_for: Option<NodeId>,
    log: Vec<LogEntry>,
    role: Role,
    leader_id: Option<NodeId>,
    commit_index: LogIndex,
    applied_index: LogIndex,
    now: Millis,
    election_deadline: Millis,
    /// When this node last heard from the leader of its term (followers), or last confirmed
    /// a quorum (leaders): the lease that lets it ignore disruptive vote requests.
    lease_from: Option<Millis>,
    heartbeat_due: Millis,
    check_quorum_due: Millis,
    votes: BTreeSet<NodeId>,
    progress: BTreeMap<NodeId, Progress>,
    rng: SplitMix64,
    out_persist: Vec<PersistRecord>,
    out_messages: Vec<RaftMessage>,
    ready_number: u64,
    /// Readies handed out with persist records not yet reported synced: (number, the last
    /// index they make durable, lowered by any truncation since).
    unsynced: VecDeque<(u64, LogIndex)>,
    /// Entries 1..=durable_index are known to be on this node's disk as they are in `log`.
    durable_index: LogIndex,
}

impl RaftNode {
    /// A node restarting from `state` (use `PersistentState::default()` for a fresh disk).
    /// `seed` drives the election-timeout jitter: derive it from the node's sub-stream.
    pub fn new(
        config: RaftConfig,
        state: PersistentState,
        seed: u64,
        now: Millis,
    ) -> Result<RaftNode, ConfigError> {
        config.validate()?;
        let mut prev_term = Term(0);
        for (i, entry) in state.entries.iter().enumerate() {
            if entry.index != i as u64 + 1
                || entry.term < prev_term
                || entry.term > state.hard_state.term
            {
                return Err(ConfigError::InvalidState);
            }
            prev_term = entry.term;
        }
        let durable_index = state.entries.len() as u64;
        let mut node = RaftNode {
            config,
            term: state.hard_state.term,
            voted_for: state.hard_state.voted_for,
            log: state.entries,
            role: Role::Follower,
            leader_id: None,
            commit_index: 0,
            applied_index: 0,
            now,
            election_deadline: now,
            lease_from: None,
            heartbeat_due: now,
            check_quorum_due: now,
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            rng: SplitMix64(seed),
            out_persist: Vec::new(),
            out_messages: Vec::new(),
            ready_number: 0,
            unsynced: VecDeque::new(),
            durable_index,
        };
        node.reset_election_deadline();
        tracing::info!(node = %node.id(), term = %node.term, last_index = node.last_index(),
            "raft node started");
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn config(&self) -> &RaftConfig {
        &self.config
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }
    pub fn last_index(&self) -> LogIndex {
        self.log.len() as u64
    }
    pub fn last_term(&self) -> Term {
        self.log.last().map_or(Term(0), |e| e.term)
    }
    pub fn entries(&self) -> &[LogEntry] {
        &self.log
    }
    pub fn entry(&self, index: LogIndex) -> Option<&LogEntry> {
        if index == 0 {
            return None;
        }
        self.log.get(usize::try_from(index - 1).ok()?)
    }
    /// Term of the entry at `index`; 0 for index 0; None beyond the log.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == 0 {
            Some(Term(0))
        } else {
            self.entry(index).map(|e| e.term)
        }
    }
    /// The earliest time at which `tick` has something to do.
    pub fn next_deadline(&self) -> Millis {
        match self.role {
            Role::Leader => self.heartbeat_due.min(self.check_quorum_due),
            _ => self.election_deadline,
        }
    }
    /// The index of this leader's LeaderChange entry: once committed, every entry of
    /// earlier terms is committed too.
    pub fn leader_term_start(&self) -> Option<LogIndex> {
        if self.role != Role::Leader {
            return None;
        }
        self.log.iter().rev().take_while(|e| e.term == self.term).last().map(|e| e.index)
    }

    pub fn has_ready(&self) -> bool {
        !self.out_persist.is_empty()
            || !self.out_messages.is_empty()
            || self.commit_index > self.applied_index
    }

    pub fn take_ready(&mut self) -> Ready {
        assert!(
            self.commit_index <= self.last_index(),
            "commit {} beyond last index {} on {}",
            self.commit_index,
            self.last_index(),
            self.id()
        );
        let committed: Vec<LogEntry> =
            self.log[self.applied_index as usize..self.commit_index as usize].to_vec();
        self.applied_index = self.commit_index;
        let persist = std::mem::take(&mut self.out_persist);
        self.ready_number += 1;
        if !persist.is_empty() {
            self.unsynced.push_back((self.ready_number, self.last_index()));
        }
        Ready {
            number: self.ready_number,
            must_sync: !persist.is_empty(),
            persist,
            messages: std::mem::take(&mut self.out_messages),
            committed,
        }
    }

    /// The driver synced the persist records of every Ready up to `number`.
    pub fn on_persisted(&mut self, number: u64) {
        assert!(number <= self.ready_number, "ready {number} was never handed out");
        while let Some(&(n, last)) = self.unsynced.front() {
            if n > number {
                break;
            }
            self.unsynced.pop_front();
            self.durable_index = self.durable_index.max(last);
        }
        assert!(self.durable_index <= self.last_index(), "durable beyond the log");
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    pub fn durable_index(&self) -> LogIndex {
        self.durable_index
    }

    /// Appends `data` as a new entry if this node leads; returns its index. The entry is
    /// committed once a quorum holds it (it shows up in `Ready::committed`), or lost if
    /// leadership is lost first.
    pub fn propose(&mut self, data: Vec<u8>, now: Millis) -> Result<LogIndex, ProposeError> {
        self.observe_time(now);
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { term: self.term, leader_hint: self.leader_id });
        }
        let index = self.append_own(EntryPayload::Data(data));
        self.maybe_commit();
        self.broadcast_append();
        Ok(index)
    }

    /// Advances timers: elections on followers and candidates, heartbeats and check-quorum
    /// on leaders.
    pub fn tick(&mut self, now: Millis) {
        self.observe_time(now);
        if self.role == Role::Leader {
            if self.config.check_quorum && now >= self.check_quorum_due {
                self.check_quorum();
                if self.role != Role::Leader {
                    return;
                }
            }
            if now >= self.heartbeat_due {
                self.heartbeat_due = now.plus_ms(self.config.heartbeat_interval_ms);
                self.broadcast_append();
            }
        } else if now >= self.election_deadline {
            if self.config.pre_vote {
                self.pre_campaign();
            } else {
                self.campaign();
            }
        }
    }

    pub fn step(&mut self, msg: RaftMessage, now: Millis) -> Result<(), RaftError> {
        self.observe_time(now);
        if msg.to != self.id() {
            return Err(RaftError::Misaddressed { to: msg.to, me: self.id() });
        }
        if msg.from == self.id() || !self.config.voters.contains(&msg.from) {
            return Err(RaftError::UnknownSender { from: msg.from });
        }
        if msg.term < self.term {
            return Err(self.reject_stale(&msg));
        }
        if msg.term > self.term {
            match msg.body {
                // A pre-vote never changes anyone's term.
                MessageBody::RequestVote { pre_vote: true, .. }
                | MessageBody::RequestVoteResponse { pre_vote: true, granted: true } => {}
                MessageBody::RequestVote { pre_vote: false, .. } if self.in_lease() => {
                    tracing::debug!(node = %self.id(), from = %msg.from, term = %msg.term,
                        "ignoring vote request: a leader is live");
                    return Ok(());
                }
                MessageBody::AppendEntries { .. } => self.become_follower(msg.term, Some(msg.from)),
                _ => self.become_follower(msg.term, None),
            }
        }
        match msg.body {
            MessageBody::RequestVote { last_log_index, last_log_term, pre_vote } => {
                self.on_request_vote(msg.from, msg.term, last_log_index, last_log_term, pre_vote);
            }
            MessageBody::RequestVoteResponse { granted, pre_vote } => {
                self.on_vote_response(msg.from, msg.term, granted, pre_vote);
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.on_append(msg.from, prev_log_index, prev_log_term, entries, leader_commit)?;
            }
            MessageBody::AppendEntriesResponse { success, index, last_index_hint } => {
                self.on_append_response(msg.from, success, index, last_index_hint);
            }
        }
        Ok(())
    }

    fn observe_time(&mut self, now: Millis) {
        // The driver's clock may not go backwards for one node; a skewed clock is fine.
        assert!(now >= self.now, "time went backwards on {}: {} < {}", self.id(), now, self.now);
        self.now = now;
    }

    fn reject_stale(&mut self, msg: &RaftMessage) -> RaftError {
        let kind = msg.body.kind();
        tracing::debug!(node = %self.id(), from = %msg.from, kind, msg_term = %msg.term,
            term = %self.term, "rejected message from a stale term");
        // Requests get an answer carrying our term, so a stale leader or candidate learns.
        match msg.body {
            MessageBody::AppendEntries { prev_log_index, .. } => {
                let body = MessageBody::AppendEntriesResponse {
                    success: false,
                    index: prev_log_index,
                    last_index_hint: self.last_index(),
                };
                self.send(msg.from, self.term, body);
            }
            MessageBody::RequestVote { pre_vote, .. } => {
                self.send(
                    msg.from,
                    self.term,
                    MessageBody::RequestVoteResponse { granted: false, pre_vote },
                );
            }
            _ => {}
        }
        RaftError::StaleTerm { from: msg.from, kind, msg_term: msg.term, current_term: self.term }
    }

    fn in_lease(&self) -> bool {
        self.config.check_quorum
            && self.leader_id.is_some()
            && self
                .lease_from
                .is_some_and(|t| self.now.since(t) < self.config.election_timeout_min_ms)
    }

    fn log_up_to_date(&self, last_log_index: LogIndex, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.last_term(), self.last_index())
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        msg_term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let up_to_date = self.log_up_to_date(last_log_index, last_log_term);
        if pre_vote {
            // Would we vote for it in the term it wants? Nothing changes here.
            let granted = msg_term > self.term && up_to_date && !self.in_lease();
            let term = if granted { msg_term } else { self.term };
            self.send(from, term, MessageBody::RequestVoteResponse { granted, pre_vote });
            return;
        }
        assert_eq!(msg_term, self.term, "vote request term not reconciled on {}", self.id());
        // Candidates and leaders voted for themselves in this term, so this refuses them too.
        let granted = self.voted_for.is_none_or(|v| v == from) && up_to_date;
        debug_assert!(!granted || matches!(self.role, Role::Follower | Role::PreCandidate));
        if granted {
            self.voted_for = Some(from);
            self.persist_hard_state();
            self.reset_election_deadline();
            tracing::debug!(node = %self.id(), candidate = %from, term = %self.term, "vote granted");
        }
        self.send(from, self.term, MessageBody::RequestVoteResponse { granted, pre_vote });
    }

    fn on_vote_response(&mut self, from: NodeId, msg_term: Term, granted: bool, pre_vote: bool) {
        if !granted {
            return;
        }
        if pre_vote {
            if self.role == Role::PreCandidate && msg_term == self.term.next() {
                self.votes.insert(from);
                if self.votes.len() >= self.config.quorum() {
                    self.campaign();
                }
            }
        } else if self.role == Role::Candidate && msg_term == self.term {
            self.votes.insert(from);
            if self.votes.len() >= self.config.quorum() {
                self.become_leader();
            }
        }
    }

    fn on_append(
        &mut self,
        from: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<LogEntry>,
        leader_commit: LogIndex,
    ) -> Result<(), RaftError> {
        assert!(
            self.role != Role::Leader,
            "two leaders in {}: {} and {}",
            self.term,
            self.id(),
            from
        );
        let mut prev_term = prev_log_term;
        let mut well_formed = prev_log_term <= self.term;
        for (i, e) in entries.iter().enumerate() {
            well_formed &= e.index == prev_log_index + 1 + i as u64;
            well_formed &= e.term >= prev_term && e.term <= self.term;
            prev_term = e.term;
        }
        if !well_formed {
            return Err(RaftError::Malformed { from, kind: "AppendEntries", what: "entries" });
        }
        if self.role != Role::Follower || self.leader_id != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.lease_from = Some(self.now);
        self.reset_election_deadline();

        if self.term_at(prev_log_index) != Some(prev_log_term) {
            let body = MessageBody::AppendEntriesResponse {
                success: false,
                index: prev_log_index,
                last_index_hint: self.last_index(),
            };
            self.send(from, self.term, body);
            return Ok(());
        }
        let last_new = prev_log_index + entries.len() as u64;
        for entry in entries {
            match self.term_at(entry.index) {
                Some(t) if t == entry.term => continue,
                Some(_) => self.truncate_from(entry.index),
                None => {}
            }
            self.append_entry(entry);
        }
        let commit = leader_commit.min(last_new);
        if commit > self.commit_index {
            self.commit_index = commit;
        }
        let body = MessageBody::AppendEntriesResponse {
            success: true,
            index: last_new,
            last_index_hint: 0,
        };
        self.send(from, self.term, body);
        Ok(())
    }

    fn on_append_response(&mut self, from: NodeId, success: bool, index: LogIndex, hint: LogIndex) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.last_index();
        let progress = self.progress.get_mut(&from).expect("leader tracks every voter");
        progress.recent_active = true;
        if success {
            assert!(index <= last_index, "{from} acked {index} beyond leader's {last_index}");
            progress.match_index = progress.match_index.max(index);
            progress.next_index = progress.next_index.max(index + 1);
            let more = progress.next_index <= last_index;
            self.maybe_commit();
            if more {
                self.send_append(from);
            }
        } else {
            if index < progress.match_index {
                return; // a late rejection of an older probe
            }
            progress.next_index = index.min(hint + 1).max(progress.match_index + 1);
            self.send_append(from);
        }
    }

    fn pre_campaign(&mut self) {
        if self.config.voters.len() == 1 {
            self.campaign();
            return;
        }
        self.role = Role::PreCandidate;
        self.leader_id = None;
        self.lease_from = None;
        self.votes = BTreeSet::from([self.id()]);
        self.reset_election_deadline();
        tracing::debug!(node = %self.id(), term = %self.term, "pre-vote started");
        self.request_votes(self.term.next(), true);
    }

    fn campaign(&mut self) {
        self.term = self.term.next();
        self.voted_for = Some(self.id());
        self.persist_hard_state();
        self.role = Role::Candidate;
        self.leader_id = None;
        self.lease_from = None;
        self.votes = BTreeSet::from([self.id()]);
        self.reset_election_deadline();
        tracing::info!(node = %self.id(), term = %self.term, "election started");
        if self.votes.len() >= self.config.quorum() {
            self.become_leader();
        } else {
            self.request_votes(self.term, false);
        }
    }

    fn request_votes(&mut self, term: Term, pre_vote: bool) {
        let body = MessageBody::RequestVote {
            last_log_index: self.last_index(),
            last_log_term: self.last_term(),
            pre_vote,
        };
        for peer in self.peers() {
            self.send(peer, term, body.clone());
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "term would go back on {}: {term} < {}", self.id(), self.term);
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        if self.role == Role::Leader {
            tracing::info!(node = %self.id(), term = %self.term, "leader stepped down");
        }
        self.role = Role::Follower;
        self.leader_id = leader;
        self.lease_from = leader.map(|_| self.now);
        self.votes.clear();
        self.progress.clear();
        self.reset_election_deadline();
    }

    fn become_leader(&mut self) {
        assert_eq!(self.voted_for, Some(self.id()), "leader without its own vote");
        self.role = Role::Leader;
        self.leader_id = Some(self.id());
        self.lease_from = Some(self.now);
        let next_index = self.last_index() + 1;
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress { next_index, match_index: 0, recent_active: true }))
            .collect();
        self.heartbeat_due = self.now.plus_ms(self.config.heartbeat_interval_ms);
        self.check_quorum_due = self.now.plus_ms(self.config.election_timeout_min_ms);
        tracing::info!(node = %self.id(), term = %self.term, votes = ?self.votes, "became leader");
        self.append_own(EntryPayload::LeaderChange { leader: self.id() });
        self.maybe_commit();
        self.broadcast_append();
    }

    fn check_quorum(&mut self) {
        let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
        if active >= self.config.quorum() {
            self.lease_from = Some(self.now);
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
            self.check_quorum_due = self.now.plus_ms(self.config.election_timeout_min_ms);
        } else {
            tracing::info!(node = %self.id(), term = %self.term, active,
                "check-quorum failed: stepping down");
            self.become_follower(self.term, None);
        }
    }

    fn maybe_commit(&mut self) {
        let mut matched: Vec<LogIndex> = self.progress.values().map(|p| p.match_index).collect();
        // Our own copy counts only once durable (§10.2.1 of Ongaro's thesis allows the
        // leader to write in parallel with sending, but not to count what it has not synced).
        matched.push(self.durable_index);
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.config.quorum() - 1];
        // §5.4.2: only an entry of the current term is committed by counting replicas.
        if candidate > self.commit_index && self.term_at(candidate) == Some(self.term) {
            self.commit_index = candidate;
        }
    }

    fn broadcast_append(&mut self) {
        for peer in self.peers() {
            self.send_append(peer);
        }
    }

    fn send_append(&mut self, peer: NodeId) {
        let next_index = self.progress.get(&peer).expect("leader tracks every voter").next_index;
        assert!(next_index >= 1 && next_index <= self.last_index() + 1, "next {next_index}");
        let prev_log_index = next_index - 1;
        let prev_log_term = self.term_at(prev_log_index).expect("prev is within the log");
        let end = (self.last_index() as usize)
            .min(prev_log_index as usize + self.config.entries_per_append_max);
        let entries = self.log[prev_log_index as usize..end].to_vec();
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
        };
        self.send(peer, self.term, body);
    }

    fn append_own(&mut self, payload: EntryPayload) -> LogIndex {
        let index = self.last_index() + 1;
        self.append_entry(LogEntry { index, term: self.term, payload });
        index
    }

    fn append_entry(&mut self, entry: LogEntry) {
        assert_eq!(entry.index, self.last_index() + 1, "gap in the log of {}", self.id());
        assert!(entry.term >= self.last_term() && entry.term <= self.term, "entry term order");
        self.out_persist.push(PersistRecord::Entry(entry.clone()));
        self.log.push(entry);
    }

    fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.commit_index,
            "{} would truncate committed entry {index} (commit {})",
            self.id(),
            self.commit_index
        );
        tracing::info!(node = %self.id(), from_index = index, last_index = self.last_index(),
            "truncating conflicting entries");
        self.log.truncate(index as usize - 1);
        self.durable_index = self.durable_index.min(index - 1);
        for (_, last) in &mut self.unsynced {
            *last = (*last).min(index - 1);
        }
        self.out_persist.push(PersistRecord::Truncate { from_index: index });
    }

    fn persist_hard_state(&mut self) {
        let hs = PersistRecord::HardState(HardState { term: self.term, voted_for: self.voted_for });
        // Back-to-back hard states replay as the last one alone: keep only that.
        match self.out_persist.last_mut() {
            Some(last @ PersistRecord::HardState(_)) => *last = hs,
            _ => self.out_persist.push(hs),
        }
    }

    fn reset_election_deadline(&mut self) {
        let span = self.config.election_timeout_max_ms - self.config.election_timeout_min_ms;
        let jitter = self.rng.next_u64() % span;
        self.election_deadline = self.now.plus_ms(self.config.election_timeout_min_ms + jitter);
    }

    fn peers(&self) -> Vec<NodeId> {
        self.config.voters.iter().copied().filter(|&v| v != self.id()).collect()
    }

    fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.out_messages.push(RaftMessage { from: self.id(), to, term, body });
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator for timeout jitter, so the
/// core needs no RNG crate. The seed comes from the driver's ChaCha8 sub-stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
