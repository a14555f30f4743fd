//! A consumer process in assign mode: it assigns every partition, then polls. Each poll op
//! completes ok with the records it returned; a position reset inside the consumer
//! (auto.offset.reset) ends the current poll and is recorded as a seek, so the checker
//! knows the position moved on purpose. In the quiet phase it seeks every partition to the
//! start and reads to the end offsets it learned after the heal: the catch-up reads.
//! A truncation the consumer detects (KIP-320) is a `log-truncation` event; when it moves
//! the position back to the divergence point, it ends the poll and is recorded as a seek.
//! Metadata requests go to the consumer's least-loaded broker, not a fixed one, so a
//! paused leader does not hide its successor.

use super::connections::{Connections, Incoming, SHELL_CORRELATION_BASE};
use super::{consumer_client_id, decode_value};
use crate::history::{OpF, OpType, OpValue, PollMicro, Record};
use crate::scenario::{OffsetResetSetting, Scenario};
use crate::world::{node_name, Phase, Role, WorldRef};
use kafkasim::client::{
    Consumer, ConsumerAction, ConsumerConfig, ConsumerEvent, OffsetReset, TruncationOutcome,
};
use kafkasim::protocol::{
    Frame, ListOffsetsRequest, MetadataRequest, OffsetSpec, Request, RequestFrame, Response,
};
use kafkasim::types::{NodeId, Offset, TopicPartition};
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest the shell sleeps with nothing due (it notices phase changes this late at most).
const IDLE_MS: u64 = 200;
/// How long one poll op waits for records before completing empty.
const POLL_TIMEOUT_MS: u64 = 250;
/// How long to wait for the end offsets before asking again.
const ASK_RETRY_MS: u64 = 1_000;

/// The consumer's progress through the quiet phase.
enum CatchUp {
    NotStarted,
    /// Waiting for the end offsets (ListOffsets latest) after the heal; asked again if
    /// no answer came by `retry_at` (the broker may still be restarting).
    Asking {
        retry_at: u64,
    },
    Reading {
        targets: BTreeMap<TopicPartition, Offset>,
    },
    Done,
}

struct Shell {
    world: WorldRef,
    name: String,
    index: u32,
    process: u64,
    consumer: Consumer,
    conns: Connections,
    /// The open poll op's records so far.
    open_poll: Option<(u64, BTreeMap<String, Vec<Record>>)>,
    next_correlation: u32,
    /// Catch-up: end offsets answered so far.
    end_offsets: BTreeMap<TopicPartition, Offset>,
}

pub async fn consumer_main(world: WorldRef, index: u32) {
    if world.scenario.consumer.mode == crate::scenario::ConsumerMode::Subscribe {
        return super::member::member_main(world, index).await;
    }
    let name = node_name(Role::Consumer, index);
    let process = world.state().new_process(&name);
    let scenario = world.scenario.clone();
    let consumer = Consumer::new(consumer_client_id(index), consumer_config(&scenario))
        .expect("scenario validation checks the consumer config");
    let (conns, mut events) = Connections::new(world.clone(), name.clone());
    let mut shell = Shell {
        world: world.clone(),
        name,
        index,
        process,
        consumer,
        conns,
        open_poll: None,
        next_correlation: SHELL_CORRELATION_BASE,
        end_offsets: BTreeMap::new(),
    };
    let tps = scenario.partitions();
    let keys: Vec<String> = tps.iter().map(ToString::to_string).collect();
    world.state().instant(process, OpF::Assign, OpValue::Assign(keys));
    shell.consumer.assign(tps.clone());
    let mut catch_up = CatchUp::NotStarted;
    let mut next_poll_at = world.clock_ms(&shell.name);
    loop {
        let now = world.clock_ms(&shell.name);
        let phase = world.phase();
        let ask = match catch_up {
            // End offsets are taken once nothing is in flight and (with replication) the
            // cluster has converged: a new leader's HW lags records already committed.
            CatchUp::NotStarted => {
                let state = world.state();
                let clustered = world.scenario.cluster.controllers > 0;
                phase == Phase::Quiet
                    && state.sends_outstanding() == 0
                    && (!clustered || state.cluster.not_converged().is_empty())
            }
            CatchUp::Asking { retry_at } => now.0 >= retry_at,
            _ => false,
        };
        if ask {
            shell.complete_poll();
            shell.ask_end_offsets(&tps).await;
            catch_up = CatchUp::Asking { retry_at: now.0 + ASK_RETRY_MS };
        }
        if phase == Phase::Faulty {
            for (tp, offset) in world.workload.take_seeks(&shell.name) {
                shell.seek(&tp, offset);
            }
        }
        let polling = !matches!(catch_up, CatchUp::Asking { .. } | CatchUp::Done);
        if polling && shell.open_poll.is_none() && now >= next_poll_at && phase != Phase::Done {
            let poll = OpValue::Poll(vec![PollMicro::default()]);
            shell.world.state().invoke(process, OpF::Poll, poll);
            shell.open_poll = Some((now.0 + POLL_TIMEOUT_MS, BTreeMap::new()));
        }
        shell.drive().await;
        if let Some((deadline, records)) = &shell.open_poll {
            if !records.is_empty() || now.0 >= *deadline {
                shell.complete_poll();
                next_poll_at = now.plus_ms(scenario.consumer.poll_interval_ms);
            }
        }
        if let CatchUp::Reading { targets } = &catch_up {
            let done = targets
                .iter()
                .all(|(tp, end)| shell.consumer.position(tp).is_some_and(|p| p >= *end));
            if done {
                shell.complete_poll();
                world.state().caught_up.insert(shell.name.clone(), true);
                catch_up = CatchUp::Done;
            }
        }
        // Sleep until the next thing due: the consumer's own timer, the open poll's
        // deadline, the next poll, or the catch-up's retry.
        let mut due = [shell.consumer.next_wakeup().map(|at| at.0), None, None];
        due[1] = match &shell.open_poll {
            Some((deadline, _)) => Some(*deadline),
            None => Some(next_poll_at.0),
        };
        if let CatchUp::Asking { retry_at } = catch_up {
            due[2] = Some(retry_at);
        }
        let next = due.into_iter().flatten().min().unwrap_or(now.0 + IDLE_MS);
        let wake = next.saturating_sub(now.0).clamp(1, IDLE_MS);
        tokio::select! {
            biased;
            Some((id, event)) = events.recv() => {
                if let Some(targets) = shell.on_event(id, event) {
                    shell.complete_poll();
                    shell.seek_to_start(&tps);
                    catch_up = CatchUp::Reading { targets };
                }
            }
            _ = madsim::time::sleep(Duration::from_millis(wake)) => {}
        }
    }
}

impl Shell {
    /// Carries out the consumer's actions and collects its records and events.
    async fn drive(&mut self) {
        let now = self.world.clock_ms(&self.name);
        for action in self.consumer.poll(now) {
            match action {
                ConsumerAction::Send { to, frame } => {
                    if !self.conns.send(to, frame).await {
                        self.consumer.on_disconnect(self.world.clock_ms(&self.name), to);
                    }
                }
                ConsumerAction::CloseConnection { node, .. } => {
                    self.conns.close(node);
                    self.consumer.on_disconnect(now, node);
                }
                ConsumerAction::RefreshMetadata { topics } => {
                    let bootstrap: Vec<NodeId> =
                        (0..self.world.scenario.cluster.brokers).map(NodeId).collect();
                    let node = self.consumer.least_loaded_node(now, &bootstrap);
                    let body = Request::Metadata(MetadataRequest { topics: Some(topics) });
                    self.shell_request(node.unwrap_or(NodeId(0)), body).await;
                }
            }
        }
        self.collect();
    }

    /// Moves delivered records into the open poll; a position reset ends the poll first.
    fn collect(&mut self) {
        for event in self.consumer.take_events() {
            if let Some(mark) = crate::coverage::derive::from_consumer_event(&event) {
                self.world.mark(&self.name, mark);
            }
            match event {
                ConsumerEvent::PositionReset { tp, to, .. } => self.record_seek(&tp, to),
                ConsumerEvent::LogTruncation { ref tp, outcome, .. } => {
                    let tp = tp.clone();
                    if let Some(fields) = truncation_fields(&event) {
                        self.world.event(&self.name, "log-truncation", &fields);
                    }
                    if outcome == TruncationOutcome::SeekedToDivergence {
                        let to = self.consumer.position(&tp).expect("seeked to the divergence");
                        self.record_seek(&tp, to);
                    }
                }
                _ => {}
            }
        }
        let Some((_, records)) = self.open_poll.as_mut() else { return };
        for record in self.consumer.take_records(usize::MAX) {
            let Some(value) = record.value.as_deref().and_then(decode_value) else { continue };
            let key = record.tp.to_string();
            records.entry(key).or_default().push(Record { offset: record.offset.0, value });
        }
    }

    /// A workload step's seek: the poll ends, the position moves, the history records it.
    fn seek(&mut self, tp: &TopicPartition, to: Offset) {
        self.consumer.seek(tp, to);
        self.record_seek(tp, to);
    }

    /// The consumer moved its position on its own: the poll ends and the move is a seek.
    fn record_seek(&mut self, tp: &TopicPartition, to: Offset) {
        self.complete_poll();
        let seek: BTreeMap<String, u64> = [(tp.to_string(), to.0)].into_iter().collect();
        self.world.state().instant(self.process, OpF::Seek, OpValue::Seek(seek));
    }

    fn complete_poll(&mut self) {
        let Some((_, records)) = self.open_poll.take() else { return };
        let count: usize = records.values().map(Vec::len).sum();
        let mut state = self.world.state();
        state.stats.records_polled += count as u64;
        let micro = PollMicro { records: Some(records) };
        state.complete(self.process, OpType::Ok, OpValue::Poll(vec![micro]));
    }

    fn on_event(
        &mut self,
        id: u64,
        event: crate::world::conn::ConnEvent,
    ) -> Option<BTreeMap<TopicPartition, Offset>> {
        let now = self.world.clock_ms(&self.name);
        match self.conns.resolve(id, event)? {
            Incoming::Frame { from, frame: Frame::Response(response) } => {
                if response.correlation_id < SHELL_CORRELATION_BASE {
                    self.consumer.on_response(now, from, response.correlation_id, response.body);
                    return None;
                }
                match response.body {
                    Response::Metadata(metadata) => self.consumer.on_metadata(&metadata),
                    Response::ListOffsets(offsets) => {
                        // Each leader answers for its partitions; the rest are asked again.
                        for p in offsets.partitions {
                            tracing::info!(node = %self.name, broker = %from, tp = %p.tp, offset = %p.offset, error = ?p.error, "end offset");
                            if p.error == kafkasim::protocol::ErrorCode::None {
                                self.end_offsets.insert(p.tp, p.offset);
                            } else {
                                // Not the leader any more: ask who is, as Kafka's offset
                                // lookups do on a retriable error (replicated-safe
                                // follower-fetch seed 1247: the consumer read from a
                                // follower, so nothing else told it the leader moved).
                                self.consumer.request_metadata_refresh();
                            }
                        }
                        if self.end_offsets.len() == self.consumer.assignment().len() {
                            return Some(std::mem::take(&mut self.end_offsets));
                        }
                    }
                    _ => {}
                }
                None
            }
            Incoming::Closed { node } => {
                self.consumer.on_disconnect(now, node);
                None
            }
            Incoming::Frame { .. } => None,
        }
    }

    /// Asks each partition's leader (broker 0 while none is known) for the end offsets
    /// of the partitions not answered yet.
    async fn ask_end_offsets(&mut self, tps: &[TopicPartition]) {
        let mut by_leader: BTreeMap<NodeId, Vec<(TopicPartition, OffsetSpec)>> = BTreeMap::new();
        for tp in tps.iter().filter(|tp| !self.end_offsets.contains_key(tp)) {
            let leader = self.consumer.metadata().leader(tp).unwrap_or(NodeId(0));
            by_leader.entry(leader).or_default().push((tp.clone(), OffsetSpec::Latest));
        }
        for (leader, partitions) in by_leader {
            self.shell_request(leader, Request::ListOffsets(ListOffsetsRequest { partitions }))
                .await;
        }
    }

    /// Catch-up reads start from the beginning of every partition.
    fn seek_to_start(&mut self, tps: &[TopicPartition]) {
        let seek: BTreeMap<String, u64> = tps.iter().map(|tp| (tp.to_string(), 0)).collect();
        for tp in tps {
            self.consumer.seek(tp, Offset::ZERO);
        }
        self.world.state().instant(self.process, OpF::Seek, OpValue::Seek(seek));
    }

    async fn shell_request(&mut self, to: NodeId, body: Request) -> u32 {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(SHELL_CORRELATION_BASE);
        let frame =
            RequestFrame { correlation_id, client_id: consumer_client_id(self.index), body };
        if !self.conns.send(to, frame).await {
            self.consumer.on_disconnect(self.world.clock_ms(&self.name), to);
        }
        correlation_id
    }
}

pub(super) fn consumer_config(scenario: &Scenario) -> ConsumerConfig {
    let settings = &scenario.consumer;
    ConsumerConfig {
        auto_offset_reset: match settings.auto_offset_reset {
            OffsetResetSetting::Earliest => OffsetReset::Earliest,
            OffsetResetSetting::Latest => OffsetReset::Latest,
            OffsetResetSetting::None => OffsetReset::None,
        },
        fetch_max_wait_ms: u32::try_from(settings.fetch_max_wait_ms).unwrap_or(u32::MAX),
        request_timeout_ms: settings.request_timeout_ms,
        max_poll_records: settings.max_poll_records as usize,
        fetch_from_follower: settings.fetch_from_follower,
        validate_positions: settings.validate_positions,
        ..ConsumerConfig::default()
    }
}

/// The fields of a `log-truncation` event, for a consumer's KIP-320 truncation (assign-mode
/// consumers and group members alike).
pub(super) fn truncation_fields(event: &ConsumerEvent) -> Option<[(&'static str, String); 5]> {
    let ConsumerEvent::LogTruncation { tp, position, epoch, divergent, outcome } = event else {
        return None;
    };
    let divergent = divergent.map_or("unknown".into(), |(e, o)| format!("{o}@{e}"));
    Some([
        ("tp", tp.to_string()),
        ("position", position.to_string()),
        ("epoch", epoch.to_string()),
        ("divergent", divergent),
        ("outcome", format!("{outcome:?}")),
    ])
}
