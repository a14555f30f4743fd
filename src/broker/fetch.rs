//! Fetch: read whole batches below the high watermark, parking a request that found no
//! data until data arrives or its max wait passes (Kafka's delayed fetch). In cluster mode
//! only a partition's leader serves it: a follower replica's fetch reads up to the leader's
//! LEO and reports the follower's progress. As in Kafka, a parked fetch completes on new
//! bytes only, not on a HW move: a follower learns the HW one fetch late, up to
//! replica.fetch.wait.max.ms late when no new records come (the window KIP-101 #1 needs).
//! With `ClusterSettings::follower_fetch` (KIP-392) a follower also serves consumers,
//! below its own HW, which trails the leader's.

use super::{Broker, ConnId, PartitionRole};
use crate::log::LogError;
use crate::protocol::*;
use crate::types::{Epoch, Millis, Offset, TopicPartition};
use bytes::Bytes;

#[derive(Debug)]
pub(super) struct ParkedFetch {
    pub conn: ConnId,
    pub correlation_id: u32,
    pub request: FetchRequest,
    pub deadline: Millis,
}

impl Broker {
    pub(super) fn fetch(
        &mut self,
        now: Millis,
        conn: ConnId,
        correlation_id: u32,
        request: FetchRequest,
    ) {
        let response = self.read_partitions(now, &request);
        let has_data =
            response.partitions.iter().any(|p| !p.records.is_empty() || p.error != ErrorCode::None);
        let max_wait_ms = u64::from(request.max_wait_ms).min(self.config.fetch_max_wait_ms);
        if has_data || max_wait_ms == 0 {
            self.respond(conn, correlation_id, Response::Fetch(response));
        } else {
            let deadline = now.plus_ms(max_wait_ms);
            self.parked.push(ParkedFetch { conn, correlation_id, request, deadline });
        }
        self.drain_leaders(now);
    }

    /// Answers parked fetches that now have data. Reading as a leader can complete
    /// produces and move the HW, which wakes fetches again: loop until nothing moves.
    pub(super) fn wake_fetches(&mut self, now: Millis) {
        if self.waking {
            self.wake_again = true;
            return;
        }
        self.waking = true;
        loop {
            self.wake_again = false;
            let parked = std::mem::take(&mut self.parked);
            for fetch in parked {
                let response = self.read_partitions(now, &fetch.request);
                let ready = response
                    .partitions
                    .iter()
                    .any(|p| !p.records.is_empty() || p.error != ErrorCode::None);
                if ready {
                    self.respond(fetch.conn, fetch.correlation_id, Response::Fetch(response));
                } else {
                    self.parked.push(fetch);
                }
            }
            self.drain_leaders(now);
            if !self.wake_again {
                break;
            }
        }
        self.waking = false;
    }

    pub(super) fn expire_fetches(&mut self, now: Millis) {
        let parked = std::mem::take(&mut self.parked);
        for fetch in parked {
            if fetch.deadline <= now {
                let response = self.read_partitions(now, &fetch.request);
                self.respond(fetch.conn, fetch.correlation_id, Response::Fetch(response));
            } else {
                self.parked.push(fetch);
            }
        }
        self.drain_leaders(now);
    }

    /// Carries out what serving fetches made the leaders queue (HW moves, acks).
    fn drain_leaders(&mut self, now: Millis) {
        if self.cluster.is_none() {
            return;
        }
        let tps: Vec<_> = self
            .partitions
            .iter()
            .filter(|(_, p)| matches!(p.role, PartitionRole::Leader(_)))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            self.drain_leader(now, &tp);
        }
    }

    /// Drops parked fetches of a closed connection.
    pub fn on_connection_closed(&mut self, conn: ConnId) {
        self.parked.retain(|f| f.conn != conn);
        self.produces.retain(|p| p.conn != conn);
        self.forget_group_replies(conn);
    }

    fn read_partitions(&mut self, now: Millis, request: &FetchRequest) -> FetchResponse {
        if self.cluster.is_some() {
            return self.read_as_leader(now, request);
        }
        let mut budget = request.max_bytes as usize;
        let mut partitions = Vec::with_capacity(request.partitions.len());
        for wanted in &request.partitions {
            let out = match self.partitions.get(&wanted.tp) {
                None => fetch_error(&wanted.tp, ErrorCode::UnknownTopicOrPartition),
                Some(p) => read_below_hw(p, wanted, &mut budget),
            };
            partitions.push(out);
        }
        FetchResponse { partitions }
    }

    /// Cluster mode: each partition answered by its leader state (epoch checks, follower
    /// progress, consumers below the HW), or NotLeaderOrFollower.
    fn read_as_leader(&mut self, now: Millis, request: &FetchRequest) -> FetchResponse {
        let mut budget = request.max_bytes as usize;
        // A replica's fetch from an incarnation older than the one the metadata knows.
        let stale = match (request.replica_id, request.replica_epoch, self.metadata_image()) {
            (Some(replica), Some(epoch), Some((_, image))) => {
                image.broker(replica).is_some_and(|b| b.broker_epoch > epoch)
            }
            (Some(_), None, _) => true,
            _ => false,
        };
        let follower_fetch = self.cluster.as_ref().is_some_and(|s| s.settings.follower_fetch);
        let mut partitions = Vec::with_capacity(request.partitions.len());
        for wanted in &request.partitions {
            let refuse = |error| fetch_error(&wanted.tp, error);
            let out = match self.partitions.get_mut(&wanted.tp) {
                _ if stale => refuse(ErrorCode::StaleBrokerEpoch),
                None => refuse(ErrorCode::NotLeaderOrFollower),
                Some(p) if p.offline => refuse(ErrorCode::KafkaStorageError),
                Some(p) => match &mut p.role {
                    PartitionRole::Leader(leader) => {
                        if let Some((replica, epoch)) =
                            request.replica_id.zip(request.replica_epoch)
                        {
                            if !leader.record_broker_epoch(replica, epoch) {
                                partitions.push(refuse(ErrorCode::StaleBrokerEpoch));
                                continue;
                            }
                        }
                        let mut bounded = wanted.clone();
                        let max_bytes = budget.min(wanted.partition_max_bytes as usize).max(1);
                        bounded.partition_max_bytes = max_bytes as u32;
                        if budget == 0 {
                            bounded.partition_max_bytes = 1;
                        }
                        let out = leader.on_fetch(now, &p.log, request.replica_id, &bounded);
                        budget = budget.saturating_sub(out.records.len());
                        out
                    }
                    PartitionRole::Follower(follower)
                        if request.replica_id.is_none() && follower_fetch =>
                    {
                        match check_consumer_epoch(follower.leader_epoch(), wanted) {
                            Ok(()) => read_below_hw(p, wanted, &mut budget),
                            Err(error) => refuse(error),
                        }
                    }
                    _ => refuse(ErrorCode::NotLeaderOrFollower),
                },
            };
            partitions.push(out);
        }
        FetchResponse { partitions }
    }
}

fn fetch_error(tp: &TopicPartition, error: ErrorCode) -> FetchPartitionResponse {
    FetchPartitionResponse {
        tp: tp.clone(),
        error,
        high_watermark: Offset::ZERO,
        log_start_offset: Offset::ZERO,
        records: Bytes::new(),
    }
}

/// A consumer's read of `p` below its HW (the only replica's, or a follower's under
/// KIP-392), within `budget` bytes across the request.
fn read_below_hw(
    p: &super::Partition,
    wanted: &FetchPartition,
    budget: &mut usize,
) -> FetchPartitionResponse {
    let mut out = FetchPartitionResponse {
        tp: wanted.tp.clone(),
        error: ErrorCode::None,
        high_watermark: p.high_watermark,
        log_start_offset: p.log.log_start_offset(),
        records: Bytes::new(),
    };
    if p.offline {
        out.error = ErrorCode::KafkaStorageError;
        return out;
    }
    let caught_up =
        wanted.fetch_offset >= p.high_watermark && wanted.fetch_offset <= p.log.log_end_offset();
    if caught_up || *budget == 0 {
        // Caught up (or out of budget): nothing to send, not an error.
        return out;
    }
    let max_bytes = (*budget).min(wanted.partition_max_bytes as usize).max(1);
    match p.log.read(wanted.fetch_offset, max_bytes, p.high_watermark) {
        Ok(data) => {
            *budget = budget.saturating_sub(data.records.len());
            out.records = data.records;
        }
        Err(LogError::OffsetOutOfRange { .. }) => out.error = ErrorCode::OffsetOutOfRange,
        Err(_) => out.error = ErrorCode::KafkaStorageError,
    }
    out
}

/// KIP-320 fencing of a consumer reading from a follower: its view of the leader epoch
/// must match the follower's.
fn check_consumer_epoch(ours: Epoch, wanted: &FetchPartition) -> Result<(), ErrorCode> {
    match wanted.current_leader_epoch {
        Some(theirs) if theirs < ours => Err(ErrorCode::FencedLeaderEpoch),
        Some(theirs) if theirs > ours => Err(ErrorCode::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}
