//! Client histories in Jepsen's op format, one JSON object per line:
//!
//! ```text
//! {"index":0,"time":1500000,"process":0,"type":"invoke","f":"send","value":[["send","events-0",5]]}
//! {"index":1,"time":2100000,"process":0,"type":"ok","f":"send","value":[["send","events-0",[12,5]]]}
//! ```
//!
//! Owns the op types, their exact JSON form, parsing with errors that name the line and the
//! field, the structural rules every history obeys (indexes 0,1,2,..., one outstanding op per
//! process, a crash ends a process, values unique per key) and the [`HistoryRecorder`] the
//! runner builds a history with. It does not judge a history: that is `check/`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A topic-partition name such as `events-0`; values are unique per key.
pub type Key = String;

/// Longest JSON snippet quoted in an error message, in characters.
const SNIPPET_CHARS_MAX: usize = 60;

/// `type`: an invocation or one of its three possible completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpType {
    Invoke,
    /// Definitely happened.
    Ok,
    /// Definitely did not happen.
    Fail,
    /// Indeterminate: may or may not have happened (timeouts, broken connections).
    Info,
}

/// `f`: what the op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpF {
    Send,
    Poll,
    Assign,
    Seek,
    /// Joins the consumer group for these topics: puts the process in subscribe mode.
    Subscribe,
    /// Commits the group's positions (key -> next offset to consume).
    Commit,
    /// The client process died; a later op from the same process is malformed.
    Crash,
}

/// One `["send", key, value]` or `["send", key, [offset, value]]` micro-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMicro {
    pub key: Key,
    pub value: u64,
    /// The offset the broker acked; only in completions, and never in a `fail` one.
    pub offset: Option<u64>,
}

/// One record a poll returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub offset: u64,
    pub value: u64,
}

/// One `["poll"]` (invocations, data-less completions) or `["poll", {key: [[offset, value],
/// ...]}]` micro-op. Records of a key keep the order the broker returned them in.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PollMicro {
    pub records: Option<BTreeMap<Key, Vec<Record>>>,
}

/// `value`, typed by `f`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpValue {
    Send(Vec<SendMicro>),
    Poll(Vec<PollMicro>),
    /// The keys the process consumes from now on.
    Assign(Vec<Key>),
    /// The position of each named key from now on.
    Seek(BTreeMap<Key, u64>),
    /// The topics a `subscribe` joins the group for.
    Subscribe(Vec<String>),
    /// A `commit`: key -> the next offset the group consumes from.
    Commit(BTreeMap<Key, u64>),
    /// `crash` (null): kept verbatim.
    Other(Value),
}

/// How a process's ownership of some keys changed in a rebalance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceKind {
    /// The keys became the process's (onPartitionsAssigned).
    Assigned,
    /// The keys were taken back in an orderly rebalance (onPartitionsRevoked).
    Revoked,
    /// The keys were lost without a chance to commit (onPartitionsLost: session expired,
    /// fenced by a newer generation).
    Lost,
}

/// One entry of a completion's `"rebalance-log"`:
/// `{"type": "assigned", "generation": 4, "keys": ["events-0"]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebalanceEntry {
    pub kind: RebalanceKind,
    /// The group generation the change belongs to.
    pub generation: i32,
    pub keys: Vec<Key>,
}

/// Extra field: the ownership changes since the process's previous completion, in order.
pub const EXTRA_REBALANCE_LOG: &str = "rebalance-log";
/// Extra field of a commit invocation: the member's generation when it committed.
pub const EXTRA_GENERATION: &str = "generation";
/// Extra field of a commit invocation: the member id it committed as.
pub const EXTRA_MEMBER: &str = "member";

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Position in the history: 0, 1, 2, ...
    pub index: u64,
    /// Simulated time, nanoseconds (JSON `time`).
    pub time_ns: u64,
    /// Logical client process; a crashed client comes back as a new process.
    pub process: u64,
    pub op_type: OpType,
    pub f: OpF,
    pub value: OpValue,
    /// Any other fields, kept verbatim; the known ones ([`EXTRA_REBALANCE_LOG`],
    /// [`EXTRA_GENERATION`], [`EXTRA_MEMBER`]) are validated and read through accessors.
    pub extra: BTreeMap<String, Value>,
}

/// A history that obeys the structural rules (see [`HistoryValidator`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Op>,
}

/// Why a history is malformed: the 1-based line (op index + 1), the field when one is to
/// blame, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct HistoryError {
    pub line: usize,
    pub field: Option<&'static str>,
    pub problem: String,
}

/// A problem inside one op, before it is placed on a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<&'static str>,
    pub problem: String,
}

/// Checks the structural rules op by op, so that the parser and the recorder share them.
#[derive(Clone, Debug, Default)]
pub struct HistoryValidator {
    next_index: u64,
    last_time_ns: u64,
    /// process -> its outstanding invocation.
    outstanding: BTreeMap<u64, Op>,
    /// process -> index of its crash op.
    crashed: BTreeMap<u64, u64>,
    /// (key, value) -> index of the send invocation that wrote it.
    sent: BTreeMap<(Key, u64), u64>,
}

/// Builds a history while a simulation runs. Time and process are arguments (no clocks);
/// misuse is a harness bug and panics with the offending op in the message.
#[derive(Clone, Debug, Default)]
pub struct HistoryRecorder {
    validator: HistoryValidator,
    ops: Vec<Op>,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    fn parse(text: &str) -> Option<OpType> {
        Some(match text {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

impl OpF {
    pub fn as_str(self) -> &'static str {
        match self {
            OpF::Send => "send",
            OpF::Poll => "poll",
            OpF::Assign => "assign",
            OpF::Seek => "seek",
            OpF::Subscribe => "subscribe",
            OpF::Commit => "commit",
            OpF::Crash => "crash",
        }
    }

    fn parse(text: &str) -> Option<OpF> {
        Some(match text {
            "send" => OpF::Send,
            "poll" => OpF::Poll,
            "assign" => OpF::Assign,
            "seek" => OpF::Seek,
            "subscribe" => OpF::Subscribe,
            "commit" => OpF::Commit,
            "crash" => OpF::Crash,
            _ => return None,
        })
    }
}

impl RebalanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RebalanceKind::Assigned => "assigned",
            RebalanceKind::Revoked => "revoked",
            RebalanceKind::Lost => "lost",
        }
    }

    fn parse(text: &str) -> Option<RebalanceKind> {
        Some(match text {
            "assigned" => RebalanceKind::Assigned,
            "revoked" => RebalanceKind::Revoked,
            "lost" => RebalanceKind::Lost,
            _ => return None,
        })
    }
}

impl RebalanceEntry {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "type": self.kind.as_str(),
            "generation": self.generation,
            "keys": self.keys,
        })
    }

    fn from_json(i: usize, json: &Value) -> Result<RebalanceEntry, FieldError> {
        let bad = |what: &str| {
            FieldError::new(
                EXTRA_REBALANCE_LOG,
                format!("entry {i}: {what}, got {}", snippet(json)),
            )
        };
        let Value::Object(fields) = json else {
            return Err(bad("expected {\"type\", \"generation\", \"keys\"}"));
        };
        if fields.len() != 3 {
            return Err(bad("expected exactly the fields type, generation, keys"));
        }
        let kind = fields
            .get("type")
            .and_then(Value::as_str)
            .and_then(RebalanceKind::parse)
            .ok_or_else(|| bad("type: expected one of assigned, revoked, lost"))?;
        let generation = fields
            .get("generation")
            .and_then(Value::as_i64)
            .and_then(|g| i32::try_from(g).ok())
            .ok_or_else(|| bad("generation: expected a 32-bit integer"))?;
        let keys = fields
            .get("keys")
            .and_then(Value::as_array)
            .and_then(|keys| keys.iter().map(key_text).collect::<Option<Vec<_>>>())
            .ok_or_else(|| bad("keys: expected a list of keys (strings)"))?;
        Ok(RebalanceEntry { kind, generation, keys })
    }
}

impl Op {
    /// The ownership changes this completion reports (empty when it carries none). Valid
    /// ops only: a malformed log was rejected when the op entered the history.
    pub fn rebalance_log(&self) -> Vec<RebalanceEntry> {
        rebalance_log_of(&self.extra).unwrap_or_default()
    }

    /// A commit invocation's `"generation"`.
    pub fn generation(&self) -> Option<i32> {
        self.extra.get(EXTRA_GENERATION).and_then(Value::as_i64).and_then(|g| i32::try_from(g).ok())
    }

    /// A commit invocation's `"member"`.
    pub fn member(&self) -> Option<&str> {
        self.extra.get(EXTRA_MEMBER).and_then(Value::as_str)
    }
}

/// The extras of a commit invocation: `{"generation": g, "member": id}`.
pub fn commit_extra(generation: i32, member: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        (EXTRA_GENERATION.to_owned(), Value::from(generation)),
        (EXTRA_MEMBER.to_owned(), Value::from(member)),
    ])
}

/// The extras of a completion carrying a rebalance log (none when `entries` is empty).
pub fn rebalance_extra(entries: &[RebalanceEntry]) -> BTreeMap<String, Value> {
    if entries.is_empty() {
        return BTreeMap::new();
    }
    let log = Value::Array(entries.iter().map(RebalanceEntry::to_json).collect());
    BTreeMap::from([(EXTRA_REBALANCE_LOG.to_owned(), log)])
}

impl History {
    /// Validates `ops` as a whole history.
    pub fn from_ops(ops: Vec<Op>) -> Result<History, HistoryError> {
        let mut validator = HistoryValidator::default();
        for op in &ops {
            validator.push(op).map_err(|e| e.at_line(line_of(op.index)))?;
        }
        Ok(History { ops })
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "line {}: field `{field}`: {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

impl FieldError {
    fn new(field: &'static str, problem: impl Into<String>) -> FieldError {
        FieldError { field: Some(field), problem: problem.into() }
    }

    fn op(problem: impl Into<String>) -> FieldError {
        FieldError { field: None, problem: problem.into() }
    }

    fn at_line(self, line: usize) -> HistoryError {
        HistoryError { line, field: self.field, problem: self.problem }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl HistoryValidator {
    /// Accepts `op` as the next op of the history, or says which rule it breaks.
    pub fn push(&mut self, op: &Op) -> Result<(), FieldError> {
        if op.index != self.next_index {
            return Err(FieldError::new(
                "index",
                format!(
                    "expected {} (ops are numbered 0, 1, 2, ...), got {}",
                    self.next_index, op.index
                ),
            ));
        }
        if op.time_ns < self.last_time_ns {
            return Err(FieldError::new(
                "time",
                format!("went backwards: {} after {}", op.time_ns, self.last_time_ns),
            ));
        }
        if let Some(crash_index) = self.crashed.get(&op.process) {
            return Err(FieldError::new(
                "process",
                format!(
                    "process {} crashed at op {crash_index}; a restarted client is a new process",
                    op.process
                ),
            ));
        }
        check_value_shape(op)?;
        check_extras(op)?;
        match (op.f, op.op_type) {
            (OpF::Crash, OpType::Info) => {
                // A crash may cut an outstanding op short: it stays without completion.
                self.outstanding.remove(&op.process);
                self.crashed.insert(op.process, op.index);
            }
            (OpF::Crash, other) => {
                return Err(FieldError::new(
                    "type",
                    format!("a crash is recorded as info, got {:?}", other.as_str()),
                ))
            }
            (_, OpType::Invoke) => self.push_invoke(op)?,
            (_, _) => self.push_completion(op)?,
        }
        self.next_index = op.index.checked_add(1).expect("op index below u64::MAX");
        self.last_time_ns = op.time_ns;
        Ok(())
    }

    fn push_invoke(&mut self, op: &Op) -> Result<(), FieldError> {
        if let Some(previous) = self.outstanding.get(&op.process) {
            return Err(FieldError::op(format!(
                "process {} invokes {} while its {} invoked at op {} has not completed",
                op.process,
                op.f.as_str(),
                previous.f.as_str(),
                previous.index
            )));
        }
        if let OpValue::Send(micros) = &op.value {
            for micro in micros {
                let entry = (micro.key.clone(), micro.value);
                if let Some(first) = self.sent.get(&entry) {
                    return Err(FieldError::new(
                        "value",
                        format!(
                            "value {} already sent to key {:?} at op {first}; values are unique per key",
                            micro.value, micro.key
                        ),
                    ));
                }
                self.sent.insert(entry, op.index);
            }
        }
        self.outstanding.insert(op.process, op.clone());
        Ok(())
    }

    fn push_completion(&mut self, op: &Op) -> Result<(), FieldError> {
        let Some(invoke) = self.outstanding.remove(&op.process) else {
            return Err(FieldError::op(format!(
                "process {} completes a {} it never invoked",
                op.process,
                op.f.as_str()
            )));
        };
        if invoke.f != op.f {
            return Err(FieldError::new(
                "f",
                format!(
                    "completes the {} invoked at op {}, got {:?}",
                    invoke.f.as_str(),
                    invoke.index,
                    op.f.as_str()
                ),
            ));
        }
        if let (OpValue::Send(invoked), OpValue::Send(completed)) = (&invoke.value, &op.value) {
            check_send_completion(invoke.index, invoked, completed, op.op_type)?;
        }
        if let (OpValue::Commit(invoked), OpValue::Commit(completed)) = (&invoke.value, &op.value) {
            if invoked != completed {
                return Err(value_error(format!(
                    "commits {completed:?}, but the invocation at op {} committed {invoked:?}",
                    invoke.index
                )));
            }
        }
        Ok(())
    }
}

impl HistoryRecorder {
    pub fn new() -> HistoryRecorder {
        HistoryRecorder::default()
    }

    /// Records an invocation; returns its index.
    pub fn invoke(&mut self, time_ns: u64, process: u64, f: OpF, value: OpValue) -> u64 {
        self.invoke_with(time_ns, process, f, value, BTreeMap::new())
    }

    /// Records an invocation with extra fields (a commit's [`commit_extra`]).
    pub fn invoke_with(
        &mut self,
        time_ns: u64,
        process: u64,
        f: OpF,
        value: OpValue,
        extra: BTreeMap<String, Value>,
    ) -> u64 {
        self.push(Op { index: 0, time_ns, process, op_type: OpType::Invoke, f, value, extra })
    }

    /// Records the completion of `process`'s outstanding op; returns its index.
    pub fn complete(&mut self, time_ns: u64, process: u64, op_type: OpType, value: OpValue) -> u64 {
        self.complete_with(time_ns, process, op_type, value, BTreeMap::new())
    }

    /// Records a completion with extra fields (a [`rebalance_extra`]).
    pub fn complete_with(
        &mut self,
        time_ns: u64,
        process: u64,
        op_type: OpType,
        value: OpValue,
        extra: BTreeMap<String, Value>,
    ) -> u64 {
        assert!(op_type != OpType::Invoke, "complete() called with invoke for process {process}");
        let f = self
            .validator
            .outstanding
            .get(&process)
            .map(|op| op.f)
            .unwrap_or_else(|| panic!("process {process} completes an op it never invoked"));
        self.push(Op { index: 0, time_ns, process, op_type, f, value, extra })
    }

    /// Records that `process` crashed; it must never be used again.
    pub fn crash(&mut self, time_ns: u64, process: u64) -> u64 {
        let value = OpValue::Other(Value::Null);
        let extra = BTreeMap::new();
        self.push(Op {
            index: 0,
            time_ns,
            process,
            op_type: OpType::Info,
            f: OpF::Crash,
            value,
            extra,
        })
    }

    /// Whether `process` has an invocation without completion.
    pub fn is_outstanding(&self, process: u64) -> bool {
        self.validator.outstanding.contains_key(&process)
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn finish(self) -> History {
        History { ops: self.ops }
    }

    /// Numbers `op` and appends it; `op.index` is overwritten.
    fn push(&mut self, mut op: Op) -> u64 {
        let index = self.ops.len() as u64;
        op.index = index;
        if let Err(e) = self.validator.push(&op) {
            panic!(
                "recorder: op {index} ({} {} of process {}) is malformed: {e}",
                op.op_type.as_str(),
                op.f.as_str(),
                op.process
            );
        }
        self.ops.push(op);
        index
    }
}

/// Parses a JSONL history (blank lines are skipped) and validates it.
pub fn parse_jsonl(text: &str) -> Result<History, HistoryError> {
    let mut validator = HistoryValidator::default();
    let mut ops = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        let line_number = line_index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let json: Value = serde_json::from_str(line).map_err(|e| HistoryError {
            line: line_number,
            field: None,
            problem: format!("not a JSON object: {e}"),
        })?;
        let op = op_from_json(json).map_err(|e| e.at_line(line_number))?;
        validator.push(&op).map_err(|e| e.at_line(line_number))?;
        ops.push(op);
    }
    Ok(History { ops })
}

/// Writes one line per op, each ending in `\n`.
pub fn to_jsonl(history: &History) -> String {
    let mut out = String::new();
    for op in history.ops() {
        out.push_str(&serde_json::to_string(op).expect("an op always serializes to JSON"));
        out.push('\n');
    }
    out
}

/// Converts one parsed JSON line to an op, checking every field's shape.
pub fn op_from_json(json: Value) -> Result<Op, FieldError> {
    let Value::Object(mut fields) = json else {
        return Err(FieldError::op(format!("expected a JSON object, got {}", snippet(&json))));
    };
    let index = take_u64(&mut fields, "index")?;
    let time_ns = take_u64(&mut fields, "time")?;
    let process = take_u64(&mut fields, "process")?;
    let op_type = take_enum(&mut fields, "type", "invoke, ok, fail, info", OpType::parse)?;
    let f = take_enum(
        &mut fields,
        "f",
        "send, poll, assign, seek, subscribe, commit, crash",
        OpF::parse,
    )?;
    let value = fields.remove("value").unwrap_or(Value::Null);
    let value = value_from_json(f, op_type, &value)?;
    let extra = fields.into_iter().collect();
    Ok(Op { index, time_ns, process, op_type, f, value, extra })
}

/// The JSON form of an op's `value`.
pub fn value_to_json(value: &OpValue) -> Value {
    match value {
        OpValue::Send(micros) => Value::Array(
            micros
                .iter()
                .map(|m| {
                    let payload = match m.offset {
                        Some(offset) => Value::from(vec![offset, m.value]),
                        None => Value::from(m.value),
                    };
                    Value::Array(vec!["send".into(), m.key.clone().into(), payload])
                })
                .collect(),
        ),
        OpValue::Poll(micros) => Value::Array(
            micros
                .iter()
                .map(|m| {
                    let mut micro = vec![Value::from("poll")];
                    if let Some(records) = &m.records {
                        let map = records
                            .iter()
                            .map(|(key, records)| {
                                let pairs = records
                                    .iter()
                                    .map(|r| Value::from(vec![r.offset, r.value]))
                                    .collect();
                                (key.clone(), Value::Array(pairs))
                            })
                            .collect();
                        micro.push(Value::Object(map));
                    }
                    Value::Array(micro)
                })
                .collect(),
        ),
        OpValue::Assign(keys) => Value::from(keys.clone()),
        OpValue::Seek(positions) => {
            Value::Object(positions.iter().map(|(k, o)| (k.clone(), Value::from(*o))).collect())
        }
        OpValue::Subscribe(topics) => Value::from(topics.clone()),
        OpValue::Commit(offsets) => {
            Value::Object(offsets.iter().map(|(k, o)| (k.clone(), Value::from(*o))).collect())
        }
        OpValue::Other(json) => json.clone(),
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6 + self.extra.len()))?;
        map.serialize_entry("index", &self.index)?;
        map.serialize_entry("time", &self.time_ns)?;
        map.serialize_entry("process", &self.process)?;
        map.serialize_entry("type", self.op_type.as_str())?;
        map.serialize_entry("f", self.f.as_str())?;
        map.serialize_entry("value", &value_to_json(&self.value))?;
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
        let json = Value::deserialize(deserializer)?;
        op_from_json(json).map_err(D::Error::custom)
    }
}

// ---- private helpers -------------------------------------------------------------------

fn line_of(index: u64) -> usize {
    usize::try_from(index).unwrap_or(usize::MAX).saturating_add(1)
}

/// A short rendering of a JSON value for error messages.
fn snippet(json: &Value) -> String {
    let text = json.to_string();
    if text.chars().count() <= SNIPPET_CHARS_MAX {
        return text;
    }
    let mut short: String = text.chars().take(SNIPPET_CHARS_MAX).collect();
    short.push_str("...");
    short
}

fn take_u64(
    fields: &mut serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<u64, FieldError> {
    match fields.remove(name) {
        None => Err(FieldError::new(name, "missing")),
        Some(json) => json.as_u64().ok_or_else(|| {
            FieldError::new(
                name,
                format!("expected a non-negative integer, got {}", snippet(&json)),
            )
        }),
    }
}

fn take_enum<T>(
    fields: &mut serde_json::Map<String, Value>,
    name: &'static str,
    expected: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, FieldError> {
    let json = fields.remove(name).ok_or_else(|| FieldError::new(name, "missing"))?;
    json.as_str().and_then(parse).ok_or_else(|| {
        FieldError::new(name, format!("expected one of {expected}, got {}", snippet(&json)))
    })
}

fn value_error(problem: String) -> FieldError {
    FieldError::new("value", problem)
}

fn value_from_json(f: OpF, op_type: OpType, json: &Value) -> Result<OpValue, FieldError> {
    match f {
        OpF::Send => send_from_json(op_type, json),
        OpF::Poll => poll_from_json(op_type, json),
        OpF::Assign => Ok(OpValue::Assign(names_from_json(json, "key")?)),
        OpF::Subscribe => Ok(OpValue::Subscribe(names_from_json(json, "topic")?)),
        OpF::Seek => Ok(OpValue::Seek(offsets_from_json(json)?)),
        OpF::Commit => Ok(OpValue::Commit(offsets_from_json(json)?)),
        OpF::Crash => Ok(OpValue::Other(json.clone())),
    }
}

/// A list of names: assign's keys, subscribe's topics.
fn names_from_json(json: &Value, what: &str) -> Result<Vec<String>, FieldError> {
    let items = json
        .as_array()
        .ok_or_else(|| value_error(format!("expected a list of {what}s, got {}", snippet(json))))?;
    items
        .iter()
        .map(|k| {
            // Keys may be integers (Jepsen's); topics are names.
            let text = if what == "key" { key_text(k) } else { k.as_str().map(str::to_owned) };
            text.ok_or_else(|| {
                value_error(format!("expected a {what} (string), got {}", snippet(k)))
            })
        })
        .collect()
}

/// A key as text: a string, or an integer as Jepsen's Kafka workload writes its keys.
fn key_text(json: &Value) -> Option<String> {
    match json {
        Value::String(key) => Some(key.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// `{key: offset}`: seek's positions, commit's next offsets.
fn offsets_from_json(json: &Value) -> Result<BTreeMap<Key, u64>, FieldError> {
    let map = json
        .as_object()
        .ok_or_else(|| value_error(format!("expected {{key: offset}}, got {}", snippet(json))))?;
    map.iter()
        .map(|(k, o)| {
            o.as_u64().map(|o| (k.clone(), o)).ok_or_else(|| {
                value_error(format!("offset of key {k:?}: expected an integer, got {}", snippet(o)))
            })
        })
        .collect()
}

/// The rebalance log in `extra`, if any, checked entry by entry.
fn rebalance_log_of(extra: &BTreeMap<String, Value>) -> Result<Vec<RebalanceEntry>, FieldError> {
    let Some(json) = extra.get(EXTRA_REBALANCE_LOG) else { return Ok(Vec::new()) };
    let entries = json.as_array().ok_or_else(|| {
        FieldError::new(EXTRA_REBALANCE_LOG, format!("expected a list, got {}", snippet(json)))
    })?;
    entries.iter().enumerate().map(|(i, e)| RebalanceEntry::from_json(i, e)).collect()
}

/// The known extras have the right shape and sit on the right ops: a rebalance log on
/// completions only, generation and member on commit invocations only.
fn check_extras(op: &Op) -> Result<(), FieldError> {
    if op.extra.contains_key(EXTRA_REBALANCE_LOG) && op.op_type == OpType::Invoke {
        return Err(FieldError::new(EXTRA_REBALANCE_LOG, "only completions carry one"));
    }
    rebalance_log_of(&op.extra)?;
    let commit_invoke = op.f == OpF::Commit && op.op_type == OpType::Invoke;
    if let Some(json) = op.extra.get(EXTRA_GENERATION) {
        if !commit_invoke {
            return Err(FieldError::new(EXTRA_GENERATION, "only commit invocations carry one"));
        }
        if json.as_i64().and_then(|g| i32::try_from(g).ok()).is_none() {
            let problem = format!("expected a 32-bit integer, got {}", snippet(json));
            return Err(FieldError::new(EXTRA_GENERATION, problem));
        }
    }
    if let Some(json) = op.extra.get(EXTRA_MEMBER) {
        if !commit_invoke {
            return Err(FieldError::new(EXTRA_MEMBER, "only commit invocations carry one"));
        }
        if !json.is_string() {
            let problem = format!("expected a member id (string), got {}", snippet(json));
            return Err(FieldError::new(EXTRA_MEMBER, problem));
        }
    }
    Ok(())
}

fn micro_ops<'j>(json: &'j Value, name: &str) -> Result<&'j [Value], FieldError> {
    json.as_array().map(Vec::as_slice).ok_or_else(|| {
        value_error(format!(
            "expected a list of [\"{name}\", ...] micro-ops, got {}",
            snippet(json)
        ))
    })
}

fn send_from_json(op_type: OpType, json: &Value) -> Result<OpValue, FieldError> {
    let mut micros = Vec::new();
    for (i, micro) in micro_ops(json, "send")?.iter().enumerate() {
        let bad = || {
            value_error(format!("micro-op {i}: expected [\"send\", key, value] or [\"send\", key, [offset, value]], got {}", snippet(micro)))
        };
        let parts = micro.as_array().ok_or_else(bad)?;
        let [tag, key, payload] = parts.as_slice() else { return Err(bad()) };
        if tag.as_str() != Some("send") {
            return Err(bad());
        }
        let key = key_text(key).ok_or_else(bad)?;
        let (offset, value) = match payload {
            Value::Array(pair) => match pair.as_slice() {
                [offset, value] => {
                    (Some(offset.as_u64().ok_or_else(bad)?), value.as_u64().ok_or_else(bad)?)
                }
                _ => return Err(bad()),
            },
            other => (None, other.as_u64().ok_or_else(bad)?),
        };
        if offset.is_some() && matches!(op_type, OpType::Invoke | OpType::Fail) {
            return Err(value_error(format!(
                "micro-op {i}: an offset in a {} send; only ok and info completions carry offsets",
                op_type.as_str()
            )));
        }
        micros.push(SendMicro { key, value, offset });
    }
    Ok(OpValue::Send(micros))
}

fn poll_from_json(op_type: OpType, json: &Value) -> Result<OpValue, FieldError> {
    let mut micros = Vec::new();
    for (i, micro) in micro_ops(json, "poll")?.iter().enumerate() {
        let bad = || {
            value_error(format!("micro-op {i}: expected [\"poll\"] or [\"poll\", {{key: [[offset, value], ...]}}], got {}", snippet(micro)))
        };
        let parts = micro.as_array().ok_or_else(bad)?;
        let records = match parts.as_slice() {
            [tag] if tag.as_str() == Some("poll") => None,
            [tag, data] if tag.as_str() == Some("poll") => {
                let map = data.as_object().ok_or_else(bad)?;
                let mut records = BTreeMap::new();
                for (key, pairs) in map {
                    let pairs = pairs.as_array().ok_or_else(bad)?;
                    let run = pairs
                        .iter()
                        .map(|pair| match pair.as_array().map(Vec::as_slice) {
                            Some([o, v]) => match (o.as_u64(), v.as_u64()) {
                                (Some(offset), Some(value)) => Ok(Record { offset, value }),
                                _ => Err(bad()),
                            },
                            _ => Err(bad()),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    records.insert(key.clone(), run);
                }
                Some(records)
            }
            _ => return Err(bad()),
        };
        if records.is_some() && op_type == OpType::Invoke {
            return Err(value_error(format!("micro-op {i}: a poll invocation carries no records")));
        }
        micros.push(PollMicro { records });
    }
    Ok(OpValue::Poll(micros))
}

/// Shape rules that need the op's `f` and `type` together, for ops built in code.
fn check_value_shape(op: &Op) -> Result<(), FieldError> {
    let matches_f = matches!(
        (&op.value, op.f),
        (OpValue::Send(_), OpF::Send)
            | (OpValue::Poll(_), OpF::Poll)
            | (OpValue::Assign(_), OpF::Assign)
            | (OpValue::Seek(_), OpF::Seek)
            | (OpValue::Subscribe(_), OpF::Subscribe)
            | (OpValue::Commit(_), OpF::Commit)
            | (OpValue::Other(_), OpF::Crash)
    );
    if !matches_f {
        return Err(value_error(format!("does not fit f = {}", op.f.as_str())));
    }
    match &op.value {
        OpValue::Send(micros)
            if matches!(op.op_type, OpType::Invoke | OpType::Fail)
                && micros.iter().any(|m| m.offset.is_some()) =>
        {
            Err(value_error(format!("an offset in a {} send", op.op_type.as_str())))
        }
        OpValue::Poll(micros)
            if op.op_type == OpType::Invoke && micros.iter().any(|m| m.records.is_some()) =>
        {
            Err(value_error("a poll invocation carries no records".to_owned()))
        }
        _ => Ok(()),
    }
}

/// A send's completion lists the invocation's micro-ops, in order, with offsets added.
fn check_send_completion(
    invoke_index: u64,
    invoked: &[SendMicro],
    completed: &[SendMicro],
    op_type: OpType,
) -> Result<(), FieldError> {
    if invoked.len() != completed.len() {
        return Err(value_error(format!(
            "{} micro-ops, but the invocation at op {invoke_index} had {}",
            completed.len(),
            invoked.len()
        )));
    }
    for (i, (a, b)) in invoked.iter().zip(completed).enumerate() {
        if a.key != b.key || a.value != b.value {
            return Err(value_error(format!(
                "micro-op {i}: sends {} to {:?}, but the invocation at op {invoke_index} sent {} to {:?}",
                b.value, b.key, a.value, a.key
            )));
        }
    }
    debug_assert!(op_type != OpType::Fail || completed.iter().all(|m| m.offset.is_none()));
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn integer_keys_as_jepsen_writes_them_read_as_text() {
        let text = concat!(
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":[[\"send\",3,5]]}\n",
            "{\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"value\":[[\"send\",3,[0,5]]]}\n",
        );
        let history = parse_jsonl(text).expect("integer keys parse");
        let OpValue::Send(micros) = &history.ops()[1].value else { panic!("a send") };
        assert_eq!(micros[0].key, "3");
    }
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"{"index":0,"time":1500000,"process":0,"type":"invoke","f":"send","value":[["send","events-0",5],["send","events-1",6]]}
{"index":1,"time":2100000,"process":0,"type":"ok","f":"send","value":[["send","events-0",[12,5]],["send","events-1",[3,6]]]}
{"index":2,"time":2200000,"process":1,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":3,"time":2900000,"process":1,"type":"ok","f":"poll","value":[["poll",{"events-0":[[10,3],[11,4],[12,5]]}]]}
{"index":4,"time":3000000,"process":1,"type":"invoke","f":"assign","value":["events-0","events-1"]}
{"index":5,"time":3000000,"process":1,"type":"ok","f":"assign","value":["events-0","events-1"]}
{"index":6,"time":3100000,"process":1,"type":"invoke","f":"seek","value":{"events-0":0}}
{"index":7,"time":3100000,"process":1,"type":"ok","f":"seek","value":{"events-0":0}}
{"index":8,"time":4000000,"process":0,"type":"info","f":"crash","value":null}
"#;

    fn err(text: &str) -> HistoryError {
        parse_jsonl(text).expect_err("history must be rejected")
    }

    #[test]
    fn example_parses_and_round_trips_byte_for_byte() {
        let history = parse_jsonl(EXAMPLE).expect("example is valid");
        assert_eq!(history.len(), 9);
        let op = &history.ops()[1];
        assert_eq!(op.op_type, OpType::Ok);
        assert_eq!(
            op.value,
            OpValue::Send(vec![
                SendMicro { key: "events-0".into(), value: 5, offset: Some(12) },
                SendMicro { key: "events-1".into(), value: 6, offset: Some(3) },
            ])
        );
        assert_eq!(to_jsonl(&history), EXAMPLE);
    }

    #[test]
    fn extra_fields_and_other_fs_are_kept() {
        let text = concat!(
            r#"{"index":0,"time":1,"process":2,"type":"invoke","f":"subscribe","value":["events"]}"#,
            "\n",
            r#"{"index":1,"time":2,"process":2,"type":"ok","f":"subscribe","value":["events"],"rebalance":{"assigned":["events-0"]}}"#,
            "\n",
            r#"{"index":2,"time":3,"process":2,"type":"invoke","f":"commit","value":{"events-0":4}}"#,
            "\n",
        );
        let history = parse_jsonl(text).expect("valid");
        assert_eq!(history.ops()[1].extra.len(), 1);
        assert_eq!(to_jsonl(&history), text);
    }

    #[test]
    fn parse_errors_name_line_and_field() {
        let bad_type =
            EXAMPLE.replacen(r#""type":"ok","f":"assign""#, r#""type":"okay","f":"assign""#, 1);
        assert_eq!(
            err(&bad_type).to_string(),
            "line 6: field `type`: expected one of invoke, ok, fail, info, got \"okay\""
        );
        let e = err(
            r#"{"index":0,"time":-1,"process":0,"type":"invoke","f":"poll","value":[["poll"]]}"#,
        );
        assert_eq!((e.line, e.field), (1, Some("time")));
        let e = err("\n{\"index\":0,\n");
        assert_eq!((e.line, e.field), (2, None));
        assert!(e.problem.starts_with("not a JSON object"), "{e}");
        let e = err(r#"{"index":0,"time":0,"type":"invoke","f":"poll","value":[["poll"]]}"#);
        assert_eq!(e.to_string(), "line 1: field `process`: missing");
        let e = err(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"send","value":[["send","k"]]}"#,
        );
        assert_eq!((e.line, e.field), (1, Some("value")));
        let e = err(r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"produce","value":[]}"#);
        assert_eq!((e.line, e.field), (1, Some("f")));
    }

    #[test]
    fn structural_rules_are_enforced() {
        let line = |i: u64, p: u64, t: &str, f: &str, v: &str| {
            format!(
                r#"{{"index":{i},"time":{i},"process":{p},"type":"{t}","f":"{f}","value":{v}}}"#
            )
        };
        let poll = r#"[["poll"]]"#;
        // Index gap.
        let e =
            err(&[line(0, 0, "invoke", "poll", poll), line(2, 0, "ok", "poll", poll)].join("\n"));
        assert_eq!((e.line, e.field), (2, Some("index")));
        // Two outstanding ops.
        let e =
            err(&[line(0, 0, "invoke", "poll", poll), line(1, 0, "invoke", "poll", poll)]
                .join("\n"));
        assert_eq!(e.line, 2);
        assert!(e.problem.contains("has not completed"), "{e}");
        // Completion of another f.
        let e =
            err(&[line(0, 0, "invoke", "poll", poll), line(1, 0, "ok", "assign", "[]")].join("\n"));
        assert_eq!((e.line, e.field), (2, Some("f")));
        // Completion without invocation.
        let e = err(&line(0, 0, "ok", "poll", poll));
        assert!(e.problem.contains("never invoked"), "{e}");
        // Op after crash.
        let e =
            err(&[line(0, 3, "info", "crash", "null"), line(1, 3, "invoke", "poll", poll)]
                .join("\n"));
        assert_eq!((e.line, e.field), (2, Some("process")));
        // Value sent twice to one key.
        let send = r#"[["send","k",1]]"#;
        let e = err(&[
            line(0, 0, "invoke", "send", send),
            line(1, 0, "fail", "send", send),
            line(2, 0, "invoke", "send", send),
        ]
        .join("\n"));
        assert_eq!((e.line, e.field), (3, Some("value")));
        // Completion naming other values than the invocation.
        let e = err(&[
            line(0, 0, "invoke", "send", send),
            line(1, 0, "ok", "send", r#"[["send","k",[0,2]]]"#),
        ]
        .join("\n"));
        assert_eq!((e.line, e.field), (2, Some("value")));
        // Offsets in a failed send.
        let e = err(&[
            line(0, 0, "invoke", "send", send),
            line(1, 0, "fail", "send", r#"[["send","k",[0,1]]]"#),
        ]
        .join("\n"));
        assert_eq!((e.line, e.field), (2, Some("value")));
        // A crash may cut an outstanding op short.
        parse_jsonl(
            &[line(0, 0, "invoke", "send", send), line(1, 0, "info", "crash", "null")].join("\n"),
        )
        .expect("crash with an outstanding op is valid");
    }

    #[test]
    fn recorder_builds_a_valid_history() {
        let mut recorder = HistoryRecorder::new();
        let send = |offset| OpValue::Send(vec![SendMicro { key: "k".into(), value: 1, offset }]);
        assert_eq!(recorder.invoke(10, 0, OpF::Send, send(None)), 0);
        assert!(recorder.is_outstanding(0));
        assert_eq!(recorder.complete(20, 0, OpType::Ok, send(Some(0))), 1);
        assert_eq!(recorder.crash(30, 0), 2);
        let history = recorder.finish();
        let reparsed = parse_jsonl(&to_jsonl(&history)).expect("recorded history is valid");
        assert_eq!(reparsed, history);
        assert_eq!(History::from_ops(history.ops().to_vec()), Ok(history));
    }

    const GROUP: &str = r#"{"index":0,"time":1,"process":2,"type":"invoke","f":"subscribe","value":["events"]}
{"index":1,"time":1,"process":2,"type":"ok","f":"subscribe","value":["events"]}
{"index":2,"time":2,"process":2,"type":"invoke","f":"poll","value":[["poll"]]}
{"index":3,"time":3,"process":2,"type":"ok","f":"poll","value":[["poll",{"events-0":[[0,1]]}]],"rebalance-log":[{"generation":4,"keys":["events-0","events-1"],"type":"assigned"}]}
{"index":4,"time":4,"process":2,"type":"invoke","f":"commit","value":{"events-0":1,"events-1":7},"generation":4,"member":"m-1"}
{"index":5,"time":5,"process":2,"type":"info","f":"commit","value":{"events-0":1,"events-1":7},"rebalance-log":[{"generation":4,"keys":["events-1"],"type":"revoked"},{"generation":5,"keys":[],"type":"lost"}]}
"#;

    #[test]
    fn group_ops_are_typed_and_round_trip() {
        let history = parse_jsonl(GROUP).expect("valid");
        let ops = history.ops();
        assert_eq!(ops[0].value, OpValue::Subscribe(vec!["events".into()]));
        let offsets: BTreeMap<Key, u64> = [("events-0".into(), 1), ("events-1".into(), 7)].into();
        assert_eq!(ops[4].value, OpValue::Commit(offsets.clone()));
        assert_eq!((ops[4].generation(), ops[4].member()), (Some(4), Some("m-1")));
        let assigned = RebalanceEntry {
            kind: RebalanceKind::Assigned,
            generation: 4,
            keys: vec!["events-0".into(), "events-1".into()],
        };
        assert_eq!(ops[3].rebalance_log(), vec![assigned]);
        let log = ops[5].rebalance_log();
        assert_eq!(
            log.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [RebalanceKind::Revoked, RebalanceKind::Lost]
        );
        assert!(ops[2].rebalance_log().is_empty());
        assert_eq!(to_jsonl(&history), GROUP);

        // The recorder writes the same thing.
        let mut r = HistoryRecorder::new();
        r.invoke(1, 2, OpF::Subscribe, ops[0].value.clone());
        r.complete(1, 2, OpType::Ok, ops[0].value.clone());
        r.invoke(2, 2, OpF::Poll, ops[2].value.clone());
        r.complete_with(
            3,
            2,
            OpType::Ok,
            ops[3].value.clone(),
            rebalance_extra(&ops[3].rebalance_log()),
        );
        r.invoke_with(4, 2, OpF::Commit, OpValue::Commit(offsets.clone()), commit_extra(4, "m-1"));
        r.complete_with(5, 2, OpType::Info, OpValue::Commit(offsets), rebalance_extra(&log));
        assert_eq!(r.finish(), history);
    }

    #[test]
    fn malformed_group_values_and_extras_name_line_and_field() {
        let lines: Vec<&str> = GROUP.lines().collect();
        let with = |i: usize, from: &str, to: &str| {
            let mut ls = lines.clone();
            let changed = ls[i].replacen(from, to, 1);
            assert_ne!(changed, ls[i], "{from} not in line {i}");
            ls[i] = &changed;
            parse_jsonl(&ls.join("\n")).expect_err("must be rejected")
        };
        let cases = [
            (0, r#"["events"]"#, r#"[7]"#, "value"),
            (4, r#""events-1":7}"#, r#""events-1":-7}"#, "value"),
            (4, r#""generation":4"#, r#""generation":"4""#, "generation"),
            (4, r#""generation":4"#, r#""generation":4294967296"#, "generation"),
            (4, r#""member":"m-1""#, r#""member":1"#, "member"),
            (3, r#""type":"assigned""#, r#""type":"stolen""#, "rebalance-log"),
            (3, r#""generation":4,"#, r#""generation":null,"#, "rebalance-log"),
            (3, r#""keys":["events-0","events-1"]"#, r#""keys":"events-0""#, "rebalance-log"),
            (3, r#""rebalance-log":["#, r#""rebalance-log":{"a":1},"x":["#, "rebalance-log"),
            (5, r#""events-1":7}"#, r#""events-1":8}"#, "value"),
            (
                2,
                r#""value":[["poll"]]"#,
                r#""value":[["poll"]],"rebalance-log":[]"#,
                "rebalance-log",
            ),
            (3, r#""type":"ok""#, r#""type":"ok","generation":1"#, "generation"),
        ];
        for (i, from, to, field) in cases {
            let e = with(i, from, to);
            assert_eq!((e.line, e.field), (i + 1, Some(field)), "{from} -> {to}: {e}");
        }
    }

    #[test]
    #[should_panic(expected = "never invoked")]
    fn recorder_panics_on_completion_without_invocation() {
        HistoryRecorder::new().complete(0, 0, OpType::Ok, OpValue::Poll(vec![]));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_jsonl(&text);
        }

        #[test]
        fn mutated_histories_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6)
        ) {
            let mut chars: Vec<char> = EXAMPLE.chars().collect();
            for (at, action, c) in edits {
                let i = at.index(chars.len().max(1));
                match action {
                    0 if i < chars.len() => { chars.remove(i); }
                    1 => chars.insert(i.min(chars.len()), c),
                    _ if i < chars.len() => chars[i] = c,
                    _ => {}
                }
            }
            let text: String = chars.into_iter().collect();
            if let Ok(history) = parse_jsonl(&text) {
                let again = parse_jsonl(&to_jsonl(&history)).expect("a parsed history re-parses");
                prop_assert_eq!(again, history);
            }
        }
    }
}
