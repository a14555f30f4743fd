//! Kafka's promises by configuration: whether an anomaly is a bug or "expected under this
//! config". Each rule cites the row of CORRECTNESS.md's anomaly table ("never allowed
//! when") it implements. Owns no checking: it only judges anomalies the checker found.

use serde::{Deserialize, Serialize};

use super::cluster::InvariantKind;
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

    /// Whether acked records are promised to survive (and keep their offsets).
    pub fn protects_acked_writes(&self) -> bool {
        self.is_safe() || self.is_durable_single_broker()
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
        AnomalyKind::NonmonotonicSend | AnomalyKind::IntNonmonotonicSend => {
            if config.keeps_send_order() {
                None
            } else {
                Some("retries with more than one request in flight can reorder sends")
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
    } else if config.replication_factor < 3 || config.min_insync_replicas < 2 {
        "fewer than 2 in-sync replicas may ack a record alone"
    } else if config.faults_destroy_all_replicas && !config.flush_every_batch {
        "the faults destroy the unsynced data of every replica at once"
    } else {
        "idempotence off: retried batches may be reordered or duplicated"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe() -> ConfigFacts {
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
    fn min_insync_one_or_whole_cluster_power_loss_is_not_safe() {
        let config = ConfigFacts { min_insync_replicas: 1, ..safe() };
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &config).is_some());
        let config = ConfigFacts { faults_destroy_all_replicas: true, ..safe() };
        assert!(allowed(AnomalyKind::LostWrite, &anomaly(), &config).is_some());
        let config =
            ConfigFacts { faults_destroy_all_replicas: true, flush_every_batch: true, ..safe() };
        assert_eq!(allowed(AnomalyKind::LostWrite, &anomaly(), &config), None);
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
