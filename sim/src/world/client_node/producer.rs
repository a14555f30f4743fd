//! A producer process: each op sends 1..=sends_per_op_max records to random keys and
//! completes when every record has an outcome: ok when all were acked (with offsets),
//! fail when all definitely failed, info otherwise (acked ones keep their offsets).
//! Metadata requests go to the producer's least-loaded broker (Kafka's leastLoadedNode).

use super::connections::{Connections, Incoming, SHELL_CORRELATION_BASE};
use super::{encode_value, producer_client_id};
use crate::history::{OpF, OpType, OpValue, SendMicro};
use crate::scenario::{AcksSetting, Scenario};
use crate::world::{node_name, Phase, Role, WorldRef};
use bytes::Bytes;
use kafkasim::client::{
    DefaultPartitioner, Partitioner, Producer, ProducerAction, ProducerConfig,
    RoundRobinPartitioner, SendId, SendResult,
};
use kafkasim::protocol::{Acks, MetadataRequest, Request, RequestFrame, Response};
use kafkasim::types::{Millis, NodeId};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest the shell sleeps with nothing due (it notices phase changes this late at most).
const IDLE_MS: u64 = 200;

/// One send op in flight: its micro-ops and their outcomes so far.
struct OpenSend {
    micro: Vec<SendMicro>,
    results: Vec<Option<MicroOutcome>>,
    by_id: BTreeMap<SendId, usize>,
}

/// The outcome of one record of a send op.
#[derive(Clone, Copy, Debug)]
enum MicroOutcome {
    Acked(u64),
    /// Definitely not written: refused by the broker before appending, or by the producer
    /// before anything was sent.
    Failed,
    Indeterminate,
}

impl From<SendResult> for MicroOutcome {
    fn from(result: SendResult) -> MicroOutcome {
        match result {
            SendResult::Acked { offset } => MicroOutcome::Acked(offset.0),
            SendResult::Failed { .. } => MicroOutcome::Failed,
            SendResult::Indeterminate { .. } => MicroOutcome::Indeterminate,
        }
    }
}

pub async fn producer_main(world: WorldRef, index: u32) {
    let name = node_name(Role::Producer, index);
    let process = world.state().new_process(&name);
    let scenario = world.scenario.clone();
    let mut rng = crate::seed::substream(world.seed, &format!("{name}/process-{process}"));
    let mut producer = Producer::new(
        producer_client_id(index),
        producer_config(&scenario),
        partitioner(&scenario),
    )
    .expect("scenario validation checks the producer config");
    for topic in &scenario.topics {
        producer.want_topic(&topic.name);
    }
    let (mut conns, mut events) = Connections::new(world.clone(), name.clone());
    let mut next_op_at = world.clock_ms(&name);
    let mut open: Option<OpenSend> = None;
    let mut shell_correlation = SHELL_CORRELATION_BASE;
    loop {
        let now = world.clock_ms(&name);
        if open.is_none()
            && world.phase() == Phase::Faulty
            && now >= next_op_at
            && has_metadata(&producer, &scenario)
            && !world.workload.paused(&name)
        {
            open = Some(start_op(&world, process, &scenario, &mut producer, &mut rng, now));
            let rate = scenario.workload.send_ops_per_sec;
            next_op_at = now.plus_ms(world.workload.send_interval_ms(&name, rate));
        }
        for action in producer.poll(now) {
            match action {
                ProducerAction::Send { to, frame } => {
                    if !conns.send(to, frame).await {
                        producer.on_disconnect(world.clock_ms(&name), to);
                    }
                }
                ProducerAction::CloseConnection { node, .. } => {
                    conns.close(node);
                    producer.on_disconnect(now, node);
                }
                ProducerAction::RefreshMetadata { topics } => {
                    let frame = RequestFrame {
                        correlation_id: shell_correlation,
                        client_id: producer_client_id(index),
                        body: Request::Metadata(MetadataRequest { topics: Some(topics) }),
                    };
                    shell_correlation =
                        shell_correlation.wrapping_add(1).max(SHELL_CORRELATION_BASE);
                    let bootstrap: Vec<NodeId> =
                        (0..scenario.cluster.brokers).map(NodeId).collect();
                    let broker = producer.least_loaded_node(now, &bootstrap).unwrap_or(NodeId(0));
                    if !conns.send(broker, frame).await {
                        producer.on_disconnect(now, broker);
                    }
                }
                ProducerAction::Completed { id, result, .. } => {
                    if let Some(op) = open.as_mut() {
                        if let Some(&slot) = op.by_id.get(&id) {
                            op.results[slot] = Some(result.into());
                        }
                    }
                }
            }
        }
        if open.as_ref().is_some_and(|op| op.results.iter().all(Option::is_some)) {
            finish_op(&world, process, open.take().expect("checked"));
        }
        // Sleep until the producer's own timer or the next op, whichever is first.
        let next_op = (open.is_none() && world.phase() == Phase::Faulty).then_some(next_op_at.0);
        let next = [producer.next_wakeup().map(|at| at.0), next_op].into_iter().flatten().min();
        let wake = next.map_or(IDLE_MS, |at| at.saturating_sub(now.0)).clamp(1, IDLE_MS);
        tokio::select! {
            biased;
            Some((id, event)) = events.recv() => match conns.resolve(id, event) {
                Some(Incoming::Frame { from, frame: kafkasim::protocol::Frame::Response(response) }) => {
                    let now = world.clock_ms(&name);
                    if response.correlation_id >= SHELL_CORRELATION_BASE {
                        if let Response::Metadata(metadata) = &response.body {
                            producer.on_metadata(metadata);
                        }
                    } else {
                        producer.on_response(now, from, response.correlation_id, response.body);
                        mark_session_reset(&world, &name, process, &producer);
                    }
                }
                Some(Incoming::Closed { node }) => producer.on_disconnect(world.clock_ms(&name), node),
                _ => {}
            },
            _ = madsim::time::sleep(Duration::from_millis(wake)) => {}
        }
    }
}

/// Counts a producer session reset: a new producer id within the same process.
fn mark_session_reset(world: &WorldRef, name: &str, process: u64, producer: &Producer) {
    let Some((producer_id, _)) = producer.producer_id() else { return };
    let mark = world.state().watch.producer_id(process, producer_id);
    world.mark_all(name, mark);
}

fn has_metadata(producer: &Producer, scenario: &Scenario) -> bool {
    scenario.topics.iter().all(|t| producer.metadata().partition_count(&t.name).is_some())
}

fn start_op(
    world: &WorldRef,
    process: u64,
    scenario: &Scenario,
    producer: &mut Producer,
    rng: &mut rand_chacha::ChaCha8Rng,
    now: Millis,
) -> OpenSend {
    let count = rng.gen_range(1..=scenario.workload.sends_per_op_max.max(1));
    let mut op = OpenSend { micro: Vec::new(), results: Vec::new(), by_id: BTreeMap::new() };
    let mut state = world.state();
    for _ in 0..count {
        let topic = &scenario.topics[rng.gen_range(0..scenario.topics.len())].name;
        let key = match scenario.workload.record_keys {
            0 => None,
            keys => Some(Bytes::from(format!("k{}", rng.gen_range(0..keys)))),
        };
        let value = state.next_value;
        state.next_value += 1;
        let bytes = encode_value(value, scenario.workload.value_bytes as usize);
        let (tp, result) = match producer.send_partitioned(now, topic, key, bytes, rng) {
            Ok((id, tp)) => {
                op.by_id.insert(id, op.results.len());
                (tp, None)
            }
            Err(error) => {
                // Refused before it reached any partition: recorded against partition 0
                // as a definite failure (its value is never written anywhere).
                tracing::debug!(%error, "send refused by the producer");
                (kafkasim::types::TopicPartition::new(topic.clone(), 0), Some(MicroOutcome::Failed))
            }
        };
        op.micro.push(SendMicro { key: tp.to_string(), value, offset: None });
        op.results.push(result);
    }
    state.stats.records_sent += u64::from(count);
    state.invoke(process, OpF::Send, OpValue::Send(op.micro.clone()));
    op
}

fn finish_op(world: &WorldRef, process: u64, op: OpenSend) {
    let mut micro = op.micro;
    let (mut acked, mut failed) = (0, 0);
    for (send, result) in micro.iter_mut().zip(op.results) {
        match result.expect("finish_op only runs when every result is in") {
            MicroOutcome::Acked(offset) => {
                send.offset = Some(offset);
                acked += 1;
            }
            MicroOutcome::Failed => failed += 1,
            MicroOutcome::Indeterminate => {}
        }
    }
    let op_type = match (acked, failed) {
        (a, _) if a == micro.len() => OpType::Ok,
        (_, f) if f == micro.len() => OpType::Fail,
        _ => OpType::Info,
    };
    let mut state = world.state();
    for send in &micro {
        if let Some(offset) = send.offset {
            let now_ns = crate::world::now_ns();
            let end = state.acked_end.entry(send.key.clone()).or_insert((0, now_ns));
            if offset + 1 > end.0 {
                *end = (offset + 1, now_ns);
            }
        }
    }
    state.complete(process, op_type, OpValue::Send(micro));
}

fn producer_config(scenario: &Scenario) -> ProducerConfig {
    let settings = &scenario.producer;
    ProducerConfig {
        acks: match settings.acks {
            AcksSetting::Zero => Acks::Zero,
            AcksSetting::One => Acks::One,
            AcksSetting::All => Acks::All,
        },
        linger_ms: settings.linger_ms,
        batch_size_bytes: settings.batch_size_bytes,
        retries: settings.retries,
        retry_backoff_ms: settings.retry_backoff_ms,
        delivery_timeout_ms: settings.delivery_timeout_ms,
        request_timeout_ms: settings.request_timeout_ms,
        max_in_flight: settings.max_in_flight,
        idempotence: settings.idempotence,
        ..ProducerConfig::default()
    }
}

fn partitioner(scenario: &Scenario) -> Box<dyn Partitioner> {
    match scenario.producer.partitioner.as_str() {
        "round-robin" => Box::new(RoundRobinPartitioner::new()),
        _ => Box::new(DefaultPartitioner::new()),
    }
}
