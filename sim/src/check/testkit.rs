//! Hand-built histories for the checker's tests: one call per op pair, time ticking by one
//! per op, op indexes returned so tests can assert what an anomaly names.

use std::collections::BTreeMap;

use crate::history::{
    commit_extra, rebalance_extra, History, HistoryRecorder, OpF, OpType, OpValue, PollMicro,
    RebalanceEntry, RebalanceKind, Record, SendMicro,
};

use super::{check, AnomalyKind, CheckOptions, CheckReport};

pub(crate) struct Builder {
    recorder: HistoryRecorder,
    time_ns: u64,
}

/// (key, [(offset, value)]) for one key of a poll.
pub(crate) type Run<'a> = (&'a str, &'a [(u64, u64)]);

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder { recorder: HistoryRecorder::new(), time_ns: 0 }
    }

    fn tick(&mut self) -> u64 {
        self.time_ns += 1;
        self.time_ns
    }

    pub(crate) fn invoke_send(&mut self, p: u64, micros: &[(&str, u64)]) -> u64 {
        let value = OpValue::Send(
            micros
                .iter()
                .map(|(k, v)| SendMicro { key: (*k).into(), value: *v, offset: None })
                .collect(),
        );
        let t = self.tick();
        self.recorder.invoke(t, p, OpF::Send, value)
    }

    pub(crate) fn complete_send(
        &mut self,
        p: u64,
        op_type: OpType,
        micros: &[(&str, u64, Option<u64>)],
    ) -> u64 {
        let value = OpValue::Send(
            micros
                .iter()
                .map(|(k, v, o)| SendMicro { key: (*k).into(), value: *v, offset: *o })
                .collect(),
        );
        let t = self.tick();
        self.recorder.complete(t, p, op_type, value)
    }

    /// One acked send; returns (invoke index, completion index).
    pub(crate) fn send_ok(&mut self, p: u64, key: &str, value: u64, offset: u64) -> (u64, u64) {
        let i = self.invoke_send(p, &[(key, value)]);
        let c = self.complete_send(p, OpType::Ok, &[(key, value, Some(offset))]);
        (i, c)
    }

    /// One send completing `op_type` without an offset; returns (invoke, completion).
    pub(crate) fn send_without_offset(
        &mut self,
        p: u64,
        op_type: OpType,
        key: &str,
        value: u64,
    ) -> (u64, u64) {
        let i = self.invoke_send(p, &[(key, value)]);
        let c = self.complete_send(p, op_type, &[(key, value, None)]);
        (i, c)
    }

    pub(crate) fn invoke_poll(&mut self, p: u64) -> u64 {
        let t = self.tick();
        self.recorder.invoke(t, p, OpF::Poll, OpValue::Poll(vec![PollMicro::default()]))
    }

    pub(crate) fn complete_poll(&mut self, p: u64, op_type: OpType, runs: &[Run<'_>]) -> u64 {
        let records: BTreeMap<String, Vec<Record>> = runs
            .iter()
            .map(|(k, rs)| {
                (
                    (*k).to_owned(),
                    rs.iter().map(|&(offset, value)| Record { offset, value }).collect(),
                )
            })
            .collect();
        let t = self.tick();
        self.recorder.complete(
            t,
            p,
            op_type,
            OpValue::Poll(vec![PollMicro { records: Some(records) }]),
        )
    }

    /// One poll; returns (invoke index, completion index).
    pub(crate) fn poll(&mut self, p: u64, op_type: OpType, runs: &[Run<'_>]) -> (u64, u64) {
        let i = self.invoke_poll(p);
        let c = self.complete_poll(p, op_type, runs);
        (i, c)
    }

    pub(crate) fn poll_ok(&mut self, p: u64, runs: &[Run<'_>]) -> (u64, u64) {
        self.poll(p, OpType::Ok, runs)
    }

    pub(crate) fn assign(&mut self, p: u64, keys: &[&str]) {
        let value = OpValue::Assign(keys.iter().map(|k| (*k).to_owned()).collect());
        let t = self.tick();
        self.recorder.invoke(t, p, OpF::Assign, value.clone());
        let t = self.tick();
        self.recorder.complete(t, p, OpType::Ok, value);
    }

    pub(crate) fn seek(&mut self, p: u64, key: &str, offset: u64) {
        let value = OpValue::Seek([(key.to_owned(), offset)].into_iter().collect());
        let t = self.tick();
        self.recorder.invoke(t, p, OpF::Seek, value.clone());
        let t = self.tick();
        self.recorder.complete(t, p, OpType::Ok, value);
    }

    pub(crate) fn subscribe(&mut self, p: u64) {
        let value = OpValue::Subscribe(vec!["events".to_owned()]);
        let t = self.tick();
        self.recorder.invoke(t, p, OpF::Subscribe, value.clone());
        let t = self.tick();
        self.recorder.complete(t, p, OpType::Ok, value);
    }

    /// One ok poll whose completion carries a rebalance log; returns (invoke, completion).
    pub(crate) fn poll_ok_rebalanced(
        &mut self,
        p: u64,
        runs: &[Run<'_>],
        log: &[(RebalanceKind, i32, &[&str])],
    ) -> (u64, u64) {
        let i = self.invoke_poll(p);
        let records = runs
            .iter()
            .map(|(k, rs)| {
                let rs = rs.iter().map(|&(offset, value)| Record { offset, value }).collect();
                ((*k).to_owned(), rs)
            })
            .collect();
        let entries: Vec<RebalanceEntry> = log
            .iter()
            .map(|&(kind, generation, keys)| RebalanceEntry {
                kind,
                generation,
                keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            })
            .collect();
        let t = self.tick();
        let value = OpValue::Poll(vec![PollMicro { records: Some(records) }]);
        let c = self.recorder.complete_with(t, p, OpType::Ok, value, rebalance_extra(&entries));
        (i, c)
    }

    /// Invokes a commit of `offsets` as `member` in `generation`; returns its index.
    pub(crate) fn invoke_commit(
        &mut self,
        p: u64,
        offsets: &[(&str, u64)],
        generation: i32,
        member: &str,
    ) -> u64 {
        let t = self.tick();
        let value = commit_value(offsets);
        self.recorder.invoke_with(t, p, OpF::Commit, value, commit_extra(generation, member))
    }

    pub(crate) fn complete_commit(
        &mut self,
        p: u64,
        op_type: OpType,
        offsets: &[(&str, u64)],
    ) -> u64 {
        let t = self.tick();
        self.recorder.complete(t, p, op_type, commit_value(offsets))
    }

    /// One commit by member `m{p}` in generation 1; returns (invoke, completion).
    pub(crate) fn commit(
        &mut self,
        p: u64,
        op_type: OpType,
        offsets: &[(&str, u64)],
    ) -> (u64, u64) {
        let i = self.invoke_commit(p, offsets, 1, &format!("m{p}"));
        let c = self.complete_commit(p, op_type, offsets);
        (i, c)
    }

    pub(crate) fn crash(&mut self, p: u64) -> u64 {
        let t = self.tick();
        self.recorder.crash(t, p)
    }

    pub(crate) fn finish(self) -> History {
        self.recorder.finish()
    }

    /// Checks the history built so far.
    pub(crate) fn check(self) -> CheckReport {
        check(&self.finish(), &CheckOptions::default())
    }
}

fn commit_value(offsets: &[(&str, u64)]) -> OpValue {
    OpValue::Commit(offsets.iter().map(|&(k, o)| (k.to_owned(), o)).collect())
}

/// The only anomaly kinds the report holds.
pub(crate) fn kinds(report: &CheckReport) -> Vec<AnomalyKind> {
    report.counts.keys().copied().collect()
}
