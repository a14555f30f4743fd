//! A consumer process in subscribe mode: one member of the scenario's consumer group. It
//! polls the records of the partitions the group gives it, processes them for
//! `process_ms` and commits, in the order the scenario names:
//!
//! - `commit = "after-process"`: poll op (open while processing) then a commit op;
//! - `commit = "before-process"`: commit op first, then the poll op;
//! - `auto_commit = true`: poll ops only; the member commits on its own timer.
//!
//! A poll op completes `ok` only when its records are processed, so a crash in the middle
//! of processing leaves it `info` with no records: the checker then asks whether some
//! member processed them later (at-least-once) or nobody did (at-most-once). Every
//! ownership change (assigned, revoked, lost) goes into the rebalance log of the process's
//! next completion. Acknowledged commits move the group's committed offsets, which the
//! runner compares with the end offsets to decide that the group caught up.

use super::connections::{Connections, Incoming};
use super::consumer::consumer_config;
use super::{consumer_client_id, decode_value};
use crate::history::{
    commit_extra, rebalance_extra, OpF, OpType, OpValue, PollMicro, RebalanceEntry, RebalanceKind,
    Record,
};
use crate::scenario::{CommitSetting, Scenario};
use crate::world::{node_name, Phase, Role, WorldRef};
use kafkasim::client::{
    CommitOffset, CommitResult, ConsumedRecord, ConsumerAction, GroupMember, GroupMemberConfig,
    MemberEvent,
};
use kafkasim::group::AssignorKind;
use kafkasim::protocol::{
    Frame, MetadataRequest, Request, RequestFrame, Response, NO_GENERATION_ID,
};
use kafkasim::types::{Epoch, NodeId, Offset, TopicPartition};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest the shell sleeps with nothing due.
const IDLE_MS: u64 = 200;
/// Correlation ids of the shell's own metadata requests (the member's group requests
/// count up from 2^31, its fetches from 0).
const METADATA_CORRELATION_BASE: u32 = 3 << 30;

/// Where the process is in its poll → process → commit cycle.
enum Stage {
    /// Asking the member for records at `at`.
    Fetching { at: u64 },
    /// before-process: the commit op for `batch` is open.
    CommitFirst { id: u64, batch: Batch },
    /// The poll op is open while `batch` is processed, until `until`.
    Processing { until: u64, batch: Batch },
    /// after-process: the commit op for the processed batch is open.
    CommitAfter { id: u64 },
    /// Fenced or refused by the coordinator for good: the process stops consuming.
    Stopped,
}

/// A commit op in flight: its id at the member, what it commits, and its outcome once the
/// member reported it.
struct OpenCommit {
    id: u64,
    offsets: Vec<CommitOffset>,
    result: Option<CommitResult>,
}

/// Records taken in one poll: what the history shows and what to commit.
struct Batch {
    records: BTreeMap<String, Vec<Record>>,
    offsets: Vec<CommitOffset>,
}

struct Shell {
    world: WorldRef,
    name: String,
    index: u32,
    process: u64,
    member: GroupMember,
    conns: Connections,
    rng: rand_chacha::ChaCha8Rng,
    /// Ownership changes since the last completion.
    rebalance_log: Vec<RebalanceEntry>,
    /// The open commit op (one at a time, as ops of one process are).
    open_commit: Option<OpenCommit>,
    /// Fenced or refused for good.
    stopped: bool,
    /// What this process's acknowledged commits set, per partition: an idle member
    /// whose positions differ (a commit failed, or a partition just came with an older
    /// commit) commits its positions again, as applications retry a failed commitSync.
    acked: BTreeMap<TopicPartition, Offset>,
    next_correlation: u32,
    brokers: u32,
}

pub async fn member_main(world: WorldRef, index: u32) {
    let name = node_name(Role::Consumer, index);
    let process = world.state().new_process(&name);
    let scenario = world.scenario.clone();
    let member = GroupMember::new(consumer_client_id(index), member_config(&scenario, &name))
        .expect("scenario validation checks the group member config");
    let (conns, mut events) = Connections::new(world.clone(), name.clone());
    let rng = crate::seed::substream(world.seed, &format!("{name}/process-{process}"));
    let topics: Vec<String> = scenario.topics.iter().map(|t| t.name.clone()).collect();
    world.state().instant(process, OpF::Subscribe, OpValue::Subscribe(topics));
    let mut shell = Shell {
        world: world.clone(),
        name,
        index,
        process,
        member,
        conns,
        rng,
        rebalance_log: Vec::new(),
        open_commit: None,
        stopped: false,
        acked: BTreeMap::new(),
        next_correlation: METADATA_CORRELATION_BASE,
        brokers: scenario.cluster.brokers,
    };
    let mut stage = Stage::Fetching { at: world.clock_ms(&shell.name).0 };
    loop {
        // The stage moves first: a member that wakes from a pause finishes the processing
        // it was in and commits before it hears that its session expired, as Kafka's
        // application thread does.
        stage = shell.advance(stage, &scenario);
        shell.drive().await;
        stage = shell.advance(stage, &scenario);
        let now = world.clock_ms(&shell.name).0;
        let stage_due = match &stage {
            Stage::Fetching { at } => Some(*at),
            Stage::Processing { until, .. } => Some(*until),
            _ => None,
        };
        let next = [shell.member.next_wakeup().map(|at| at.0), stage_due]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + IDLE_MS);
        let wake = next.saturating_sub(now).clamp(1, IDLE_MS);
        tokio::select! {
            biased;
            Some((id, event)) = events.recv() => shell.on_event(id, event),
            _ = madsim::time::sleep(Duration::from_millis(wake)) => {}
        }
    }
}

impl Shell {
    /// Moves the poll → process → commit cycle as far as it can go now.
    fn advance(&mut self, mut stage: Stage, scenario: &Scenario) -> Stage {
        let settings = &scenario.consumer;
        let commit_first = settings.commit == CommitSetting::BeforeProcess && !settings.auto_commit;
        let commit_after = settings.commit == CommitSetting::AfterProcess && !settings.auto_commit;
        loop {
            let now = self.world.clock_ms(&self.name);
            stage = match stage {
                Stage::Fetching { at }
                    if now.0 >= at && !self.stopped && self.world.phase() != Phase::Done =>
                {
                    let max = settings.max_poll_records as usize;
                    let records = self.member.take_records(now, max);
                    self.collect_events();
                    if records.is_empty() {
                        if !settings.auto_commit && self.member.generation().is_some() {
                            let offsets = self.member.consumed_offsets();
                            let behind = offsets
                                .iter()
                                .any(|(tp, offset, _)| self.acked.get(tp) != Some(offset));
                            if behind {
                                return Stage::CommitAfter { id: self.start_commit(offsets) };
                            }
                        }
                        return Stage::Fetching { at: now.0 + settings.poll_interval_ms };
                    }
                    let batch = batch_of(records);
                    match commit_first {
                        true => {
                            let id = self.start_commit(batch.offsets.clone());
                            Stage::CommitFirst { id, batch }
                        }
                        false => self.start_processing(batch, settings.process_ms),
                    }
                }
                Stage::CommitFirst { id, batch } => match self.finish_commit(id) {
                    true => self.start_processing(batch, settings.process_ms),
                    false => return Stage::CommitFirst { id, batch },
                },
                Stage::Processing { until, batch } if now.0 >= until => {
                    let offsets = batch.offsets.clone();
                    self.complete_poll(batch);
                    match commit_after {
                        true => Stage::CommitAfter { id: self.start_commit(offsets) },
                        false => Stage::Fetching { at: now.0 + settings.poll_interval_ms },
                    }
                }
                Stage::CommitAfter { id } => match self.finish_commit(id) {
                    true => Stage::Fetching { at: now.0 + settings.poll_interval_ms },
                    false => return Stage::CommitAfter { id },
                },
                Stage::Fetching { .. } if self.stopped => Stage::Stopped,
                other => return other,
            };
        }
    }

    /// Opens the poll op: the batch is being processed until `process_ms` from now.
    fn start_processing(&mut self, batch: Batch, process_ms: u64) -> Stage {
        let until = self.world.clock_ms(&self.name).0 + process_ms;
        let value = OpValue::Poll(vec![PollMicro::default()]);
        self.world.state().invoke(self.process, OpF::Poll, value);
        Stage::Processing { until, batch }
    }

    /// Completes the poll op: its records are processed.
    fn complete_poll(&mut self, batch: Batch) {
        let count: usize = batch.records.values().map(Vec::len).sum();
        let value = OpValue::Poll(vec![PollMicro { records: Some(batch.records) }]);
        let extra = rebalance_extra(&std::mem::take(&mut self.rebalance_log));
        let mut state = self.world.state();
        state.stats.records_polled += count as u64;
        state.complete_with(self.process, OpType::Ok, value, extra);
    }

    /// Opens a commit op and hands the commit to the member; returns the commit id.
    fn start_commit(&mut self, offsets: Vec<CommitOffset>) -> u64 {
        let now = self.world.clock_ms(&self.name);
        let (generation, member) =
            self.member.generation().unwrap_or((NO_GENERATION_ID, String::new()));
        let value = OpValue::Commit(commit_value(&offsets));
        let extra = commit_extra(generation, &member);
        self.world.state().invoke_with(self.process, OpF::Commit, value, extra);
        let id = self.member.commit(now, offsets.clone());
        self.open_commit = Some(OpenCommit { id, offsets, result: None });
        self.collect_events();
        id
    }

    /// Completes the commit op `id` if its outcome is known; returns whether it was.
    fn finish_commit(&mut self, id: u64) -> bool {
        let finished = |c: &mut OpenCommit| c.id == id && c.result.is_some();
        let Some(OpenCommit { offsets, result, .. }) = self.open_commit.take_if(finished) else {
            return false;
        };
        let result = result.expect("take_if checked the outcome is in");
        let op_type = match &result {
            CommitResult::Ok => OpType::Ok,
            CommitResult::Err(_) => OpType::Fail,
            CommitResult::Indeterminate => OpType::Info,
        };
        let value = OpValue::Commit(commit_value(&offsets));
        let extra = rebalance_extra(&std::mem::take(&mut self.rebalance_log));
        let mut state = self.world.state();
        if result == CommitResult::Ok {
            for (tp, offset, _) in &offsets {
                self.acked.insert(tp.clone(), *offset);
            }
            advance_group_committed(&mut state, &offsets);
        }
        state.complete_with(self.process, op_type, value, extra);
        true
    }

    /// Carries out the member's actions and collects its events.
    async fn drive(&mut self) {
        let now = self.world.clock_ms(&self.name);
        for action in self.member.poll(now) {
            match action {
                ConsumerAction::Send { to, frame } => {
                    if !self.conns.send(to, frame).await {
                        self.member.on_disconnect(self.world.clock_ms(&self.name), to);
                    }
                }
                ConsumerAction::CloseConnection { node, .. } => {
                    self.conns.close(node);
                    self.member.on_disconnect(now, node);
                }
                ConsumerAction::RefreshMetadata { topics } => {
                    let broker = NodeId(self.rng.gen_range(0..self.brokers));
                    let correlation_id = self.next_correlation;
                    self.next_correlation =
                        self.next_correlation.wrapping_add(1).max(METADATA_CORRELATION_BASE);
                    let frame = RequestFrame {
                        correlation_id,
                        client_id: consumer_client_id(self.index),
                        body: Request::Metadata(MetadataRequest { topics: Some(topics) }),
                    };
                    if !self.conns.send(broker, frame).await {
                        self.member.on_disconnect(self.world.clock_ms(&self.name), broker);
                    }
                }
            }
        }
        self.collect_events();
    }

    /// Ownership changes into the rebalance log, commit outcomes to the stage machine,
    /// the rest into the node event log.
    fn collect_events(&mut self) {
        for event in self.member.take_events() {
            if let Some(mark) = crate::coverage::derive::from_member_event(&event) {
                self.world.mark(&self.name, mark);
            }
            let (kind, generation, partitions) = match event {
                MemberEvent::Assigned { generation, partitions } => {
                    (RebalanceKind::Assigned, generation, partitions)
                }
                MemberEvent::Revoked { generation, partitions } => {
                    (RebalanceKind::Revoked, generation, partitions)
                }
                MemberEvent::Lost { generation, partitions, .. } => {
                    (RebalanceKind::Lost, generation, partitions)
                }
                MemberEvent::CommitCompleted { id, offsets, result } => {
                    match self.open_commit.as_mut().filter(|c| c.id == id) {
                        Some(open) => open.result = Some(result),
                        // An auto-commit (or the commit before a revoke): not an op of the
                        // history, but it moves the group's committed offsets all the same.
                        None if result == CommitResult::Ok => {
                            advance_group_committed(&mut self.world.state(), &offsets)
                        }
                        None => {}
                    }
                    continue;
                }
                MemberEvent::Joined { generation, member_id, leader } => {
                    self.world.event(
                        &self.name,
                        "joined-group",
                        &[
                            ("generation", generation.to_string()),
                            ("member", member_id),
                            ("leader", leader.to_string()),
                        ],
                    );
                    continue;
                }
                MemberEvent::Fenced => {
                    self.world.event(&self.name, "member-fenced", &[]);
                    self.stopped = true;
                    continue;
                }
                MemberEvent::Fatal { error } => {
                    self.world.event(
                        &self.name,
                        "member-failed",
                        &[("error", format!("{error:?}"))],
                    );
                    self.stopped = true;
                    continue;
                }
                MemberEvent::LeftGroup { reason } => {
                    self.world.event(
                        &self.name,
                        "left-group",
                        &[("reason", format!("{reason:?}"))],
                    );
                    continue;
                }
                MemberEvent::Consumer(event) => {
                    tracing::debug!(node = %self.name, ?event, "consumer event");
                    if let Some(fields) = super::consumer::truncation_fields(&event) {
                        self.world.event(&self.name, "log-truncation", &fields);
                    }
                    continue;
                }
            };
            if partitions.is_empty() {
                continue;
            }
            let mut keys: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            keys.sort();
            let word = match kind {
                RebalanceKind::Assigned => "partitions-assigned",
                RebalanceKind::Revoked => "partitions-revoked",
                RebalanceKind::Lost => "partitions-lost",
            };
            self.world.event(
                &self.name,
                word,
                &[("generation", generation.to_string()), ("keys", keys.join(","))],
            );
            self.rebalance_log.push(RebalanceEntry { kind, generation, keys });
        }
    }

    fn on_event(&mut self, id: u64, event: crate::world::conn::ConnEvent) {
        let now = self.world.clock_ms(&self.name);
        match self.conns.resolve(id, event) {
            Some(Incoming::Frame { from, frame: Frame::Response(response) }) => {
                match response.body {
                    Response::Metadata(metadata) => self.member.on_metadata(&metadata),
                    _ => self.member.on_response(now, from, response),
                }
            }
            Some(Incoming::Closed { node }) => self.member.on_disconnect(now, node),
            Some(Incoming::Frame { .. }) | None => {}
        }
        self.collect_events();
    }
}

/// The records of one poll, by key, and the offsets that commit them (the next offset of
/// each partition).
fn batch_of(records: Vec<ConsumedRecord>) -> Batch {
    let mut by_key: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut next: BTreeMap<TopicPartition, (Offset, Option<Epoch>)> = BTreeMap::new();
    for record in records {
        let after = (Offset(record.offset.0 + 1), record.leader_epoch);
        let end = next.entry(record.tp.clone()).or_insert(after);
        *end = (*end).max(after);
        let Some(value) = record.value.as_deref().and_then(decode_value) else { continue };
        by_key
            .entry(record.tp.to_string())
            .or_default()
            .push(Record { offset: record.offset.0, value });
    }
    let offsets = next.into_iter().map(|(tp, (offset, epoch))| (tp, offset, epoch)).collect();
    Batch { records: by_key, offsets }
}

/// An acknowledged commit moves the group's committed offsets (never back: the highest
/// acknowledged one is what the quiet phase compares with the end offsets).
fn advance_group_committed(state: &mut crate::world::WorldState, offsets: &[CommitOffset]) {
    for (tp, offset, _) in offsets {
        let committed = state.group_committed.entry(tp.clone()).or_insert(*offset);
        *committed = (*committed).max(*offset);
    }
}

fn commit_value(offsets: &[CommitOffset]) -> BTreeMap<String, u64> {
    offsets.iter().map(|(tp, offset, _)| (tp.to_string(), offset.0)).collect()
}

fn member_config(scenario: &Scenario, name: &str) -> GroupMemberConfig {
    let settings = &scenario.consumer;
    let to_u32 = |ms: u64| u32::try_from(ms).unwrap_or(u32::MAX);
    GroupMemberConfig {
        group_id: settings.group_id.clone(),
        topics: scenario.topics.iter().map(|t| t.name.clone()).collect(),
        assignors: AssignorKind::from_name(&settings.assignor).into_iter().collect(),
        session_timeout_ms: to_u32(settings.session_timeout_ms),
        heartbeat_interval_ms: to_u32(settings.heartbeat_interval_ms),
        max_poll_interval_ms: to_u32(settings.max_poll_interval_ms),
        group_instance_id: settings.static_membership.then(|| name.to_string()),
        enable_auto_commit: settings.auto_commit,
        auto_commit_interval_ms: settings.auto_commit_interval_ms,
        retry_backoff_ms: 100,
        request_timeout_ms: settings.request_timeout_ms,
        consumer: consumer_config(scenario),
    }
}
