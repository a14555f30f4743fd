//! Kafka's promises by configuration: whether an anomaly is a bug or "expected under this
//! config". Each rule cites the row of docs/CORRECTNESS.md's anomaly table ("never allowed
//! when") it implements. [`allowed`] decides from the configuration alone; [`Judge`] adds
//! what the event log showed (see `losses`): a lost record is allowed when the events
//! explain it, and offsets reused after an allowed loss come with it. Owns no checking: it
//! only judges anomalies the checker found.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::cluster::InvariantKind;
use super::losses::{LossCause, LossFinding, Observed};
use super::{Anomaly, AnomalyKind, Between};

/// Producer acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acks {
    Zero,
    One,
    All,
}

/// What a run's configuration and fault schedule promise, as far as the verdict cares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFacts {
    pub acks: Acks,
    pub min_insync_replicas: u32,
    pub replication_factor: u32,
    pub broker_count: u32,
    pub unclean_election: bool,
    pub idempotence: bool,
    pub retries: u32,
    pub max_in_flight: u32,
    /// Consumers use assign (not subscribe) and never seek on their own.
    pub assign_without_seek: bool,
    /// Brokers fsync every appended batch before acking it.
    pub flush_every_batch: bool,
    /// The fault schedule may destroy the unsynced data of every in-sync replica of a
    /// partition at once (power loss of the whole cluster), which Kafka does not promise
    /// to survive unless every batch is flushed.
    pub faults_destroy_all_replicas: bool,
    /// Consumers are a group that commits before processing is known to be done
    /// (commit = before-process without auto-commit): at-most-once.
    pub group_at_most_once: bool,
    /// The coordinator refuses commits from stale generations and unknown members.
    pub generation_check: bool,
}

impl ConfigFacts {
    /// CORRECTNESS.md: "Safe config = acks=all, min.insync.replicas >= 2 with RF >= 3,
    /// unclean leader election off, idempotence on, and a fault schedule that never destroys
    /// the data of every in-sync replica of a partition at once."
    pub fn is_safe(&self) -> bool {
        self.acks == Acks::All
            && self.min_insync_replicas >= 2
            && self.replication_factor >= 3
            && !self.unclean_election
            && self.idempotence
            && (!self.faults_destroy_all_replicas || self.flush_every_batch)
    }

    /// One broker, RF 1, every batch flushed before the ack: nothing to fail over to, and a
    /// crash loses nothing acked. Not the safe config, but it keeps acked writes.
    pub fn is_durable_single_broker(&self) -> bool {
        self.replication_factor == 1
            && self.broker_count == 1
            && self.flush_every_batch
            && self.acks != Acks::Zero
    }

    /// The replication half of the safe config: acks=all, min.insync.replicas >= 2 with
    /// RF >= 3, unclean leader election off. Under it an acked record is lost only when
    /// every in-sync replica holding it loses it (Kafka does not fsync), which the event log
    /// must show.
    pub fn is_replication_safe(&self) -> bool {
        self.acks == Acks::All
            && self.min_insync_replicas >= 2
            && self.replication_factor >= 3
            && !self.unclean_election
    }

    /// Whether acked records are promised to survive (and keep their offsets) unless the
    /// event log shows every in-sync copy lost to an unsynced crash. What the fault
    /// schedule might do does not enter: the judge decides from what happened.
    pub fn protects_acked_writes(&self) -> bool {
        self.is_replication_safe() || self.is_durable_single_broker()
    }

    /// The scenario's faults are meant to keep one in-sync replica's data (no correlated
    /// power loss of every replica, or every batch flushed): a loss to unsynced crashes
    /// of every in-sync replica is then outside the scenario's envelope.
    pub fn spares_a_replica(&self) -> bool {
        !self.faults_destroy_all_replicas || self.flush_every_batch
    }

    /// CORRECTNESS.md, duplicate row: "idempotence on, or retries = 0".
    pub fn prevents_duplicates(&self) -> bool {
        self.idempotence || self.retries == 0
    }

    /// CORRECTNESS.md, nonmonotonic-send row: "acks=all with idempotence on, or
    /// max.in.flight = 1, or retries = 0".
    pub fn keeps_send_order(&self) -> bool {
        (self.acks == Acks::All && self.idempotence) || self.max_in_flight == 1 || self.retries == 0
    }
}

/// `Some(reason)` when Kafka does not promise the absence of `anomaly` (of `kind`) under
/// `config`; `None` when its presence is a bug.
pub fn allowed(kind: AnomalyKind, anomaly: &Anomaly, config: &ConfigFacts) -> Option<&'static str> {
    match kind {
        // lost-write row: "never allowed when: safe config". Extended by the brief: RF 1 +
        // flush every batch + a single broker also keeps acked writes.
        AnomalyKind::LostWrite | AnomalyKind::Unseen => {
            // unseen row: "safe config (given the cluster healed and had time)"; for a group,
            // "committing before processing gives at-most-once (a crash loses records)". A
            // record the group skipped that way sits below later processed ones, which is
            // lost-write's shape, so the same promise covers both.
            if config.group_at_most_once {
                Some("the group commits before processing (before-process): at-most-once")
            } else if config.protects_acked_writes() {
                None
            } else {
                Some(unsafe_durability_reason(config))
            }
        }
        AnomalyKind::InconsistentOffsets => match anomaly.between {
            // "poll vs poll: never with unclean election off".
            Some(Between::PollPoll) | None => {
                if config.unclean_election {
                    Some("unclean leader election may elect a replica whose log diverges")
                } else {
                    None
                }
            }
            // "ack vs poll: safe config (legal with acks=1 or unclean election)"; two acks
            // for one offset come from the same failover, so they follow the same rule.
            Some(Between::AckPoll | Between::AckAck) => {
                if config.protects_acked_writes() {
                    None
                } else {
                    Some(unsafe_durability_reason(config))
                }
            }
        },
        // duplicate row: "idempotence on, or retries = 0 (legal otherwise: at-least-once)".
        AnomalyKind::Duplicate => {
            if config.prevents_duplicates() {
                None
            } else {
                Some("retries without idempotence give at-least-once delivery")
            }
        }
        // aborted-read row: "always, when errors are classified right".
        AnomalyKind::AbortedRead => None,
        // poll-skip / nonmonotonic-poll rows: "assign mode without seek; allowed across a
        // rebalance in subscribe mode". The checker already drops keys whose ownership
        // changed between the polls (rebalance log), so what is left in subscribe mode
        // moved without a rebalance: held to the assign-mode rule.
        AnomalyKind::PollSkip | AnomalyKind::NonmonotonicPoll => {
            if config.assign_without_seek {
                None
            } else {
                Some("consumers reposition themselves (not assign-without-seek)")
            }
        }
        // int-poll rows: "always (except keys rebalanced during the op)": the checker drops
        // keys a rebalance log names, so whatever is left is never allowed.
        AnomalyKind::IntPollSkip | AnomalyKind::IntNonmonotonicPoll => None,
        // nonmonotonic-send and int- rows: "acks=all with idempotence on, or
        // max.in.flight = 1, or retries = 0".
        AnomalyKind::IntNonmonotonicSend => {
            if config.keeps_send_order() {
                None
            } else {
                Some("retries with more than one request in flight can reorder sends")
            }
        }
        // The order promise is over the records the log keeps: where acked records may be
        // lost, their offsets are reused by later sends (swarm seed 219: with acks=1 a
        // deposed leader acked a send at offset 618 moments before it learnt of the new
        // leader and truncated to 351, where the producer's next send landed), as
        // realtime-send-order and ack-vs-poll inconsistent-offsets are allowed there too.
        AnomalyKind::NonmonotonicSend => {
            if !config.keeps_send_order() {
                Some("retries with more than one request in flight can reorder sends")
            } else if !config.protects_acked_writes() {
                Some(unsafe_durability_reason(config))
            } else {
                None
            }
        }
        // Invariant 7: "committed offsets move only by commits of the current generation";
        // a zombie's commit (generation check off) can move them back.
        AnomalyKind::RealtimeCommitOrder => {
            if config.generation_check {
                None
            } else {
                Some("the coordinator's generation check is off: a zombie's commit lands")
            }
        }
        // realtime-send-order row: "safe config". A durable single broker never reorders
        // acked records either, so it is held to the same promise.
        AnomalyKind::RealtimeSendOrder => {
            if config.protects_acked_writes() {
                None
            } else {
                Some(unsafe_durability_reason(config))
            }
        }
    }
}

/// `Some(reason)` when an inside-the-cluster violation of `kind` is expected under `config`.
/// Invariant 7 (stale-commit, two-owners) is promised only by the generation check: the
/// "zombie commit" row of the known-bugs table switches it off.
pub fn allowed_violation(kind: InvariantKind, config: &ConfigFacts) -> Option<&'static str> {
    match kind {
        InvariantKind::StaleCommit | InvariantKind::TwoOwners if !config.generation_check => {
            Some("the coordinator's generation check is off: a zombie's commit lands")
        }
        _ => None,
    }
}

/// Why acked writes are not promised, naming the first unsafe setting.
fn unsafe_durability_reason(config: &ConfigFacts) -> &'static str {
    if config.acks == Acks::Zero {
        "acks=0 promises nothing"
    } else if config.unclean_election {
        "unclean leader election may lose acked records"
    } else if config.acks == Acks::One {
        "acks=1 loses records the leader acked before followers copied them"
    } else if config.replication_factor == 1 && !config.flush_every_batch {
        "RF 1 without flushing every batch loses the unsynced tail on a crash"
    } else {
        "fewer than 2 in-sync replicas may ack a record alone"
    }
}

/// How the judge rules on one anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ruling {
    /// Kafka promises its absence: a bug.
    Forbidden,
    /// Expected under this config, for this reason.
    Allowed(String),
    /// Kafka allows it (every in-sync copy was lost to unsynced crashes), but the scenario's
    /// faults promise to spare a replica: the run left its envelope (a testbed problem,
    /// never a pass).
    OutsideEnvelope(String),
}

/// Offsets reused after one allowed loss on a key: [from, below) was truncated at `time_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reuse {
    from: u64,
    below: u64,
    time_ns: u64,
    because: String,
    /// The loss behind it is outside the scenario's envelope: so is what it explains.
    outside: bool,
    /// The lost records' values.
    values: BTreeSet<u64>,
}

/// The judge of one run: the configuration plus what the event log explained.
pub struct Judge<'a> {
    config: &'a ConfigFacts,
    /// (key, value) of each lost record -> its ruling.
    losses: BTreeMap<(String, u64), Ruling>,
    reuses: BTreeMap<String, Vec<Reuse>>,
    observed: Observed,
}

impl<'a> Judge<'a> {
    /// Rules on every finding of `losses` and derives the offsets their allowed losses free;
    /// `displaced` (acked records no read found lost, see `losses::displaced_records`) free
    /// theirs too where the event log shows the partition went on without them.
    pub fn new(
        config: &'a ConfigFacts,
        findings: &[LossFinding],
        displaced: &[LossFinding],
        observed: Observed,
    ) -> Judge<'a> {
        let mut judge =
            Judge { config, losses: BTreeMap::new(), reuses: BTreeMap::new(), observed };
        for finding in findings {
            let ruling = judge.rule_on_loss(finding);
            let record = &finding.record;
            judge.losses.insert((record.key.clone(), record.value), ruling.clone());
            // The record's own anomaly carries an envelope problem; what its reused offsets
            // explain is the loss's consequence, not a second problem.
            let for_reuse = match ruling {
                Ruling::OutsideEnvelope(reason) => Ruling::Allowed(reason),
                other => other,
            };
            judge.add_reuse(finding, &for_reuse);
        }
        // A displaced record has no anomaly of its own: its consequences carry its ruling.
        for finding in displaced.iter().filter(|f| f.point.is_some()) {
            let ruling = judge.rule_on_loss(finding);
            judge.add_reuse(finding, &ruling);
        }
        judge
    }

    /// Rules on one anomaly of `kind`.
    pub fn rule(&self, kind: AnomalyKind, anomaly: &Anomaly) -> Ruling {
        let by_config = allowed(kind, anomaly, self.config);
        match kind {
            AnomalyKind::LostWrite | AnomalyKind::Unseen if !self.config.group_at_most_once => {
                let value = anomaly.values.first().copied().unwrap_or(u64::MAX);
                let found = self.losses.get(&(anomaly.key.clone(), value)).cloned();
                found.unwrap_or_else(|| {
                    by_config.map_or(Ruling::Forbidden, |r| Ruling::Allowed(r.into()))
                })
            }
            AnomalyKind::InconsistentOffsets
            | AnomalyKind::NonmonotonicSend
            | AnomalyKind::IntNonmonotonicSend
            | AnomalyKind::RealtimeSendOrder
            | AnomalyKind::NonmonotonicPoll
            | AnomalyKind::PollSkip
            | AnomalyKind::Duplicate
            | AnomalyKind::RealtimeCommitOrder => match self.reuse_behind(kind, anomaly) {
                Some(reuse) => {
                    let reason = format!(
                        "offsets {}..{} of {} were reused after an allowed loss there: {}",
                        reuse.from, reuse.below, anomaly.key, reuse.because
                    );
                    match reuse.outside {
                        true => Ruling::OutsideEnvelope(reason),
                        false => Ruling::Allowed(reason),
                    }
                }
                None => by_config.map_or(Ruling::Forbidden, |r| Ruling::Allowed(r.into())),
            },
            _ => by_config.map_or(Ruling::Forbidden, |r| Ruling::Allowed(r.into())),
        }
    }

    /// A lost record: allowed when the events explain it (unclean election only where the
    /// topic allows it), else when the config does not promise it.
    fn rule_on_loss(&self, finding: &LossFinding) -> Ruling {
        let config = self.config;
        let cause = finding.cause.as_ref().filter(|cause| {
            !matches!(cause, LossCause::UncleanElection { .. }) || config.unclean_election
        });
        if let Some(cause) = cause {
            let reason = cause.describe(&finding.record);
            // KIP-966 recovery elects the last known leader only once every in-sync and
            // eligible replica shut down uncleanly: the same loss as an unsynced crash of
            // every holder, which a spare-keeping nemesis must never cause.
            let unsynced = matches!(
                cause,
                LossCause::UnsyncedCrash { .. } | LossCause::UncleanRecovery { .. }
            );
            if unsynced && config.protects_acked_writes() && config.spares_a_replica() {
                return Ruling::OutsideEnvelope(reason);
            }
            return Ruling::Allowed(reason);
        }
        if config.protects_acked_writes() {
            return Ruling::Forbidden;
        }
        let reason = unsafe_durability_reason(config);
        match &finding.point {
            Some(point) => Ruling::Allowed(format!("{reason}: {}", point.describe())),
            None => Ruling::Allowed(reason.to_string()),
        }
    }

    /// Records the offsets a loss ruled `ruling` frees, unless it is forbidden: from its
    /// truncation point (else its own offset) up to past the highest offset acked or polled
    /// on the key before the loss.
    fn add_reuse(&mut self, finding: &LossFinding, ruling: &Ruling) {
        let (because, outside) = match ruling {
            Ruling::Forbidden => return,
            Ruling::Allowed(reason) => (reason.clone(), false),
            Ruling::OutsideEnvelope(reason) => (reason.clone(), true),
        };
        let record = &finding.record;
        let (from, time_ns) = finding
            .point
            .as_ref()
            .map_or((record.offset, record.committed_ns), |p| (p.truncation_point, p.time_ns));
        let reached = self.observed.reached_before(&record.key, time_ns).unwrap_or(record.offset);
        let below = reached.max(record.offset) + 1;
        let reuses = self.reuses.entry(record.key.clone()).or_default();
        match reuses.iter_mut().find(|r| (r.from, r.time_ns) == (from, time_ns)) {
            // The same loss (one point) as one already ruled on keeps that ruling.
            Some(reuse) => {
                reuse.below = reuse.below.max(below);
                reuse.values.insert(record.value);
            }
            None => {
                let values = BTreeSet::from([record.value]);
                reuses.push(Reuse { from, below, time_ns, because, outside, values });
            }
        }
    }

    /// The allowed loss whose reused offsets explain `anomaly`: every offset it names lies
    /// in the freed range (a duplicate: one of its offsets; a poll-skip: the first offset
    /// it skipped), and it spans the loss (an op before it; for the send-order kinds
    /// and a consumer's poll also one after it). A consumer that read the lost records
    /// and learns of the truncation (KIP-320) reads and commits those offsets again: its
    /// commits inside the freed range (a commit names the next offset, so the range's end
    /// counts) may go back once a commit completes after the loss, even if the commit it
    /// undoes was sent after the loss by a consumer that had not learnt of it yet.
    fn reuse_behind(&self, kind: AnomalyKind, anomaly: &Anomaly) -> Option<&Reuse> {
        let reuses = self.reuses.get(&anomaly.key)?;
        let time = |op: &u64| self.observed.time_of(*op);
        let first_ns = anomaly.ops.iter().filter_map(time).min()?;
        let last_ns = anomaly.ops.iter().filter_map(time).max()?;
        let commits = kind == AnomalyKind::RealtimeCommitOrder;
        reuses.iter().find(|reuse| {
            let freed = |o: &u64| match commits {
                true => (reuse.from..=reuse.below).contains(o),
                false => (reuse.from..reuse.below).contains(o),
            };
            let inside = match kind {
                // A value seen at two offsets, one of them in a log the loss cut away (swarm
                // --variant unclean-election seed 98: read at offset 54 of a leader that
                // lost it, re-sent, appended at 0 by the unclean leader whose log started
                // there): not two copies in one log.
                AnomalyKind::Duplicate => anomaly.offsets.iter().any(freed),
                // Offsets skipped where the loss put other records (swarm --variant acks1
                // seed 102: a deposed acks=1 leader acked a record at offset 176, which its
                // successor had already filled with the records the consumer read).
                AnomalyKind::PollSkip => anomaly.skipped_offset.is_some_and(|o| freed(&o)),
                _ => !anomaly.offsets.is_empty() && anomaly.offsets.iter().all(freed),
            };
            if commits {
                return inside && last_ns >= reuse.time_ns;
            }
            // An offset read by many polls lists only its first ops: only the start counts.
            let after = kind == AnomalyKind::InconsistentOffsets || last_ns >= reuse.time_ns;
            // A consumer may return records it fetched before the loss in a poll that ends
            // after it (swarm seed 466): naming a record the loss took is as good as an op
            // before it.
            let before = first_ns <= reuse.time_ns
                || anomaly.values.iter().any(|v| reuse.values.contains(v));
            inside && before && after
        })
    }
}

/// The safe config of the tests: RF 3 on 3 brokers, min.insync 2, acks=all, idempotence,
/// unclean election off, no flush, faults that spare a replica.
#[cfg(test)]
pub(crate) fn safe_for_tests() -> ConfigFacts {
    ConfigFacts {
        acks: Acks::All,
        min_insync_replicas: 2,
        replication_factor: 3,
        broker_count: 3,
        unclean_election: false,
        idempotence: true,
        retries: 5,
        max_in_flight: 5,
        assign_without_seek: true,
        flush_every_batch: false,
        faults_destroy_all_replicas: false,
        group_at_most_once: false,
        generation_check: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe() -> ConfigFacts {
        safe_for_tests()
    }

    fn anomaly() -> Anomaly {
        Anomaly::new("events-0", String::new())
    }

    fn between(b: Between) -> Anomaly {
        let mut a = anomaly();
        a.between = Some(b);
        a
    }

    #[test]
    fn safe_config_allows_nothing() {
        for kind in AnomalyKind::ALL {
            for b in [Between::PollPoll, Between::AckPoll, Between::AckAck] {
                assert_eq!(allowed(kind, &between(b), &safe()), None, "{kind:?} {b:?}");
            }
        }
    }

    #[test]
    fn acks_one_allows_loss_but_not_divergence() {
        let config = ConfigFacts { acks: Acks::One, ..safe() };
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &config).is_some());
        assert!(allowed(AnomalyKind::Unseen, &anomaly(), &config).is_some());
        assert!(allowed(AnomalyKind::InconsistentOffsets, &between(Between::AckPoll), &config)
            .is_some());
        assert_eq!(
            allowed(AnomalyKind::InconsistentOffsets, &between(Between::PollPoll), &config),
            None
        );
        assert_eq!(allowed(AnomalyKind::AbortedRead, &anomaly(), &config), None);
    }

    #[test]
    fn unclean_election_allows_divergence() {
        let config = ConfigFacts { unclean_election: true, ..safe() };
        assert!(allowed(AnomalyKind::InconsistentOffsets, &between(Between::PollPoll), &config)
            .is_some());
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &config).is_some());
        assert_eq!(allowed(AnomalyKind::IntPollSkip, &anomaly(), &config), None);
    }

    #[test]
    fn min_insync_one_is_not_safe_but_a_whole_cluster_power_loss_must_show_itself() {
        let config = ConfigFacts { min_insync_replicas: 1, ..safe() };
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &config).is_some());
        // Faults that may take every replica down do not allow a loss by themselves: the
        // event log must show every in-sync copy gone (see `losses`).
        let config = ConfigFacts { faults_destroy_all_replicas: true, ..safe() };
        assert_eq!(allowed(AnomalyKind::LostWrite, &anomaly(), &config), None);
        assert!(!config.spares_a_replica() && !config.is_safe());
        let config =
            ConfigFacts { faults_destroy_all_replicas: true, flush_every_batch: true, ..safe() };
        assert_eq!(allowed(AnomalyKind::LostWrite, &anomaly(), &config), None);
        assert!(config.spares_a_replica());
    }

    #[test]
    fn single_flushed_broker_keeps_acked_writes() {
        let single = ConfigFacts {
            acks: Acks::One,
            min_insync_replicas: 1,
            replication_factor: 1,
            broker_count: 1,
            flush_every_batch: true,
            ..safe()
        };
        for kind in [AnomalyKind::LostWrite, AnomalyKind::Unseen, AnomalyKind::InconsistentOffsets]
        {
            assert_eq!(allowed(kind, &between(Between::AckPoll), &single), None, "{kind:?}");
        }
        let unflushed = ConfigFacts { flush_every_batch: false, ..single };
        assert_eq!(
            allowed(AnomalyKind::LostWrite, &anomaly(), &unflushed),
            Some("acks=1 loses records the leader acked before followers copied them")
        );
    }

    #[test]
    fn duplicates_and_reordering_follow_retries_and_idempotence() {
        let at_least_once = ConfigFacts { idempotence: false, ..safe() };
        assert!(allowed(AnomalyKind::Duplicate, &anomaly(), &at_least_once).is_some());
        assert!(allowed(AnomalyKind::NonmonotonicSend, &anomaly(), &at_least_once).is_some());
        assert!(allowed(AnomalyKind::IntNonmonotonicSend, &anomaly(), &at_least_once).is_some());
        let no_retries = ConfigFacts { retries: 0, ..at_least_once.clone() };
        assert_eq!(allowed(AnomalyKind::Duplicate, &anomaly(), &no_retries), None);
        assert_eq!(allowed(AnomalyKind::NonmonotonicSend, &anomaly(), &no_retries), None);
        let one_in_flight = ConfigFacts { max_in_flight: 1, ..at_least_once };
        assert_eq!(allowed(AnomalyKind::NonmonotonicSend, &anomaly(), &one_in_flight), None);
        assert!(allowed(AnomalyKind::Duplicate, &anomaly(), &one_in_flight).is_some());
        // One request in flight keeps the order of what the log keeps; with acks=1 an acked
        // record may go, and a later send takes its offset (swarm seed 219).
        let acks_one = ConfigFacts { acks: Acks::One, ..one_in_flight };
        assert_eq!(
            allowed(AnomalyKind::NonmonotonicSend, &anomaly(), &acks_one),
            Some("acks=1 loses records the leader acked before followers copied them")
        );
        assert_eq!(allowed(AnomalyKind::IntNonmonotonicSend, &anomaly(), &acks_one), None);
    }

    #[test]
    fn consumer_position_anomalies_depend_on_mode() {
        let mut subscribed = anomaly();
        subscribed.subscribe_mode = true;
        // Rebalanced keys never reach the verdict: a subscribed skip left is a bug.
        assert_eq!(allowed(AnomalyKind::PollSkip, &subscribed, &safe()), None);
        assert_eq!(allowed(AnomalyKind::PollSkip, &anomaly(), &safe()), None);
        assert_eq!(allowed(AnomalyKind::IntPollSkip, &subscribed, &safe()), None);
        let seeking = ConfigFacts { assign_without_seek: false, ..safe() };
        assert!(allowed(AnomalyKind::NonmonotonicPoll, &anomaly(), &seeking).is_some());
    }

    #[test]
    fn group_promises_follow_commit_timing_and_the_generation_check() {
        let at_most_once = ConfigFacts { group_at_most_once: true, ..safe() };
        assert!(allowed(AnomalyKind::Unseen, &anomaly(), &at_most_once).is_some());
        // A record skipped by at-most-once sits below later processed ones: lost-write.
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &at_most_once).is_some());
        assert_eq!(allowed(AnomalyKind::LostWrite, &anomaly(), &safe()), None);
        assert_eq!(allowed(AnomalyKind::Unseen, &anomaly(), &safe()), None);
        for kind in [InvariantKind::StaleCommit, InvariantKind::TwoOwners] {
            assert_eq!(allowed_violation(kind, &safe()), None);
            let off = ConfigFacts { generation_check: false, ..safe() };
            assert!(allowed_violation(kind, &off).is_some());
        }
        let off = ConfigFacts { generation_check: false, ..safe() };
        assert_eq!(allowed_violation(InvariantKind::ReplicasAgree, &off), None);
        assert_eq!(allowed(AnomalyKind::RealtimeCommitOrder, &anomaly(), &safe()), None);
        assert!(allowed(AnomalyKind::RealtimeCommitOrder, &anomaly(), &off).is_some());
    }
}
