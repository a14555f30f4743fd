//! One pass over a history collecting, per key, what every check needs: each sent value's
//! fate, each read, every (offset, value) observation, the known offsets, and the committed
//! values. Owns the definition of "acked" and "committed"; judges nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{History, OpF, OpType, OpValue, Record};

use super::Stats;

/// How a send micro-op ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Info,
    Fail,
    /// Never completed: the history ended or the client crashed first.
    Incomplete,
}

/// One sent value.
#[derive(Clone, Debug)]
pub(crate) struct SendFact {
    pub process: u64,
    pub invoke_index: u64,
    pub completion_index: Option<u64>,
    pub outcome: Outcome,
    /// The ack offset, from an ok or info completion.
    pub offset: Option<u64>,
}

/// The first poll (in completion order) that read a value.
#[derive(Clone, Debug)]
pub(crate) struct ReadFact {
    pub first_offset: u64,
    pub first_poll_completion: u64,
}

/// A committed value: acked, or indeterminate and read by some poll.
#[derive(Clone, Debug)]
pub(crate) struct Committed {
    /// The ack offset, else the offset it was first read at; None only for an ok send
    /// without offset (acks=0) that nobody read.
    pub offset: Option<u64>,
    /// Index of the op after which it is known committed: the send's completion if acked,
    /// else the completion of the first poll that read it.
    pub commit_index: u64,
    pub acked: bool,
}

/// Where an (offset, value) association was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    Ack,
    Poll,
}

/// One (offset, value) association and the op that showed it: completed at `op`, invoked
/// at `invoke`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Observation {
    pub offset: u64,
    pub value: u64,
    pub source: Source,
    pub op: u64,
    pub invoke: u64,
}

/// One key's records of one ok poll micro-op.
#[derive(Clone, Debug)]
pub(crate) struct OkRun<'h> {
    pub invoke_index: u64,
    pub completion_index: u64,
    pub records: &'h [Record],
}

#[derive(Clone, Debug, Default)]
pub(crate) struct KeyFacts<'h> {
    pub sends: BTreeMap<u64, SendFact>,
    pub reads: BTreeMap<u64, ReadFact>,
    /// Values processed: read by an ok poll, or by any poll of a process that never
    /// subscribed (assign mode keeps its old rule; a subscribed poll cut short by a crash
    /// completes info and processed nothing).
    pub processed: BTreeSet<u64>,
    pub observations: Vec<Observation>,
    pub known_offsets: BTreeSet<u64>,
    pub max_ok_read_offset: Option<u64>,
    pub ok_runs: Vec<OkRun<'h>>,
    pub committed: BTreeMap<u64, Committed>,
    /// (offset, value) of every committed value with an offset.
    pub committed_by_offset: BTreeSet<(u64, u64)>,
}

pub(crate) struct Facts<'h> {
    pub keys: BTreeMap<&'h str, KeyFacts<'h>>,
    pub stats: Stats,
}

impl<'h> Facts<'h> {
    pub(crate) fn collect(history: &'h History) -> Facts<'h> {
        let mut facts = Facts { keys: BTreeMap::new(), stats: Stats::default() };
        // process -> (index, f) of its outstanding invocation.
        let mut outstanding: BTreeMap<u64, (u64, OpF)> = BTreeMap::new();
        let mut subscribed: BTreeSet<u64> = BTreeSet::new();
        for op in history.ops() {
            if op.f == OpF::Subscribe {
                subscribed.insert(op.process);
            }
            facts.stats.ops += 1;
            match (op.op_type, &op.value) {
                (OpType::Invoke, value) => {
                    outstanding.insert(op.process, (op.index, op.f));
                    if let OpValue::Send(micros) = value {
                        for m in micros {
                            facts.key(&m.key).sends.entry(m.value).or_insert(SendFact {
                                process: op.process,
                                invoke_index: op.index,
                                completion_index: None,
                                outcome: Outcome::Incomplete,
                                offset: None,
                            });
                        }
                    }
                }
                (_, _) if op.f == OpF::Crash => {
                    if let Some((_, OpF::Send)) = outstanding.remove(&op.process) {
                        facts.stats.sends_incomplete += 1;
                    }
                }
                (op_type, OpValue::Send(micros)) => {
                    let invoke_index = outstanding.remove(&op.process).map_or(op.index, |(i, _)| i);
                    facts.send_completed((invoke_index, op.index), op_type, micros);
                }
                (op_type, OpValue::Poll(micros)) => {
                    let invoke_index = outstanding.remove(&op.process).map_or(op.index, |(i, _)| i);
                    facts.stats.polls += 1;
                    let processes = op_type == OpType::Ok || !subscribed.contains(&op.process);
                    for records in micros.iter().filter_map(|m| m.records.as_ref()) {
                        for (key, run) in records {
                            let ids = (invoke_index, op.index);
                            facts.poll_run(key, ids, op_type, processes, run);
                        }
                    }
                }
                (_, _) => {
                    outstanding.remove(&op.process);
                }
            }
        }
        facts.stats.sends_incomplete +=
            outstanding.values().filter(|(_, f)| *f == OpF::Send).count() as u64;
        facts.derive_committed();
        facts.stats.keys = facts.keys.len() as u64;
        facts
    }

    fn key(&mut self, key: &'h str) -> &mut KeyFacts<'h> {
        self.keys.entry(key).or_default()
    }

    fn send_completed(
        &mut self,
        (invoke_index, index): (u64, u64),
        op_type: OpType,
        micros: &'h [crate::history::SendMicro],
    ) {
        let (outcome, counter) = match op_type {
            OpType::Ok => (Outcome::Ok, &mut self.stats.sends_ok),
            OpType::Info => (Outcome::Info, &mut self.stats.sends_info),
            OpType::Fail | OpType::Invoke => (Outcome::Fail, &mut self.stats.sends_fail),
        };
        *counter += 1;
        for m in micros {
            let key = self.key(&m.key);
            if let Some(offset) = m.offset {
                key.known_offsets.insert(offset);
                key.observations.push(Observation {
                    offset,
                    value: m.value,
                    source: Source::Ack,
                    op: index,
                    invoke: invoke_index,
                });
            }
            if let Some(send) = key.sends.get_mut(&m.value) {
                send.completion_index = Some(index);
                send.outcome = outcome;
                send.offset = m.offset;
            }
        }
    }

    fn poll_run(
        &mut self,
        key: &'h str,
        (invoke_index, index): (u64, u64),
        op_type: OpType,
        processes: bool,
        run: &'h [Record],
    ) {
        self.stats.records_read += run.len() as u64;
        let facts = self.key(key);
        for r in run {
            if processes {
                facts.processed.insert(r.value);
            }
            facts.known_offsets.insert(r.offset);
            facts.observations.push(Observation {
                offset: r.offset,
                value: r.value,
                source: Source::Poll,
                op: index,
                invoke: invoke_index,
            });
            facts
                .reads
                .entry(r.value)
                .or_insert(ReadFact { first_offset: r.offset, first_poll_completion: index });
            if op_type == OpType::Ok {
                facts.max_ok_read_offset = facts.max_ok_read_offset.max(Some(r.offset));
            }
        }
        if op_type == OpType::Ok && !run.is_empty() {
            facts.ok_runs.push(OkRun { invoke_index, completion_index: index, records: run });
        }
    }

    /// committed value: acked (an ok completion, or an ack offset in an info one), or any
    /// value of an info or incomplete send that some poll (of any type) read. Its offset:
    /// the ack offset, else the offset at which it was first read.
    fn derive_committed(&mut self) {
        let stats = &mut self.stats;
        for facts in self.keys.values_mut() {
            stats.values_read += facts.reads.len() as u64;
            stats.values_read_never_sent +=
                facts.reads.keys().filter(|v| !facts.sends.contains_key(v)).count() as u64;
            for (&value, send) in &facts.sends {
                let read = facts.reads.get(&value);
                let acked = send.offset.is_some() || send.outcome == Outcome::Ok;
                let committed = match (acked, read, send.completion_index) {
                    _ if send.outcome == Outcome::Fail => None,
                    (true, _, Some(completion)) => Some(Committed {
                        offset: send.offset.or(read.map(|r| r.first_offset)),
                        commit_index: completion,
                        acked: true,
                    }),
                    (_, Some(read), _) => Some(Committed {
                        offset: Some(read.first_offset),
                        commit_index: read.first_poll_completion,
                        acked: false,
                    }),
                    _ => None,
                };
                if let Some(c) = committed {
                    stats.acked_values += u64::from(c.acked);
                    stats.committed_values += 1;
                    if let Some(offset) = c.offset {
                        facts.committed_by_offset.insert((offset, value));
                    }
                    facts.committed.insert(value, c);
                }
            }
        }
    }
}
