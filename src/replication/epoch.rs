//! Leader epochs on the wire: fencing a request by the epoch it believes current (KIP-320),
//! the leader's answer to OffsetsForLeaderEpoch, and the follower's reading of that answer
//! (KIP-101, with KIP-279's repeat-until-agree). Pure functions over a log's epoch cache;
//! the follower's state machine drives the rounds.

use crate::log::PartitionLog;
use crate::protocol::{EpochEndOffset, ErrorCode};
use crate::types::{Epoch, Offset, TopicPartition};
use thiserror::Error;

/// A request's leader epoch does not match the replica's.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FenceError {
    /// The asker is behind: it must refresh its metadata.
    #[error("fenced: request epoch {request} < current {current}")]
    FencedLeaderEpoch { request: Epoch, current: Epoch },
    /// This replica is behind: the asker knows a newer epoch; it retries.
    #[error("unknown epoch: request epoch {request} > current {current}")]
    UnknownLeaderEpoch { request: Epoch, current: Epoch },
    /// The asker is not a replica of this partition, or this replica is not the leader.
    #[error("not leader or follower")]
    NotLeaderOrFollower,
}

impl FenceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FenceError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            FenceError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            FenceError::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
        }
    }
}

/// KIP-320: a request naming an older epoch is fenced, a newer one is unknown; a request
/// naming none (an old client) passes.
pub fn check_leader_epoch(request: Option<Epoch>, current: Epoch) -> Result<(), FenceError> {
    match request {
        Some(request) if request < current => {
            Err(FenceError::FencedLeaderEpoch { request, current })
        }
        Some(request) if request > current => {
            Err(FenceError::UnknownLeaderEpoch { request, current })
        }
        _ => Ok(()),
    }
}

/// The leader's side of OffsetsForLeaderEpoch: the largest epoch at or below `requested`
/// in its log and the offset where it ends (the next epoch's start offset, or the LEO for
/// the latest). Undefined (None, None) when the log holds no epoch that old.
pub fn answer_offsets_for_leader_epoch(
    log: &PartitionLog,
    tp: &TopicPartition,
    requested: Epoch,
) -> EpochEndOffset {
    let answer = log.end_offset_for_epoch(requested);
    if let Some((epoch, end_offset)) = answer {
        assert!(epoch <= requested, "{tp}: answered {epoch} for {requested}");
        assert!(end_offset <= log.log_end_offset(), "{tp}: epoch {epoch} ends past the leo");
    }
    EpochEndOffset {
        tp: tp.clone(),
        error: ErrorCode::None,
        leader_epoch: answer.map(|(epoch, _)| epoch),
        end_offset: answer.map(|(_, end)| end),
    }
}

/// Where a follower truncates after one OffsetsForLeaderEpoch answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationPoint {
    /// The logs agree below this offset: truncate there and start fetching.
    Final(Offset),
    /// The leader answered an epoch the follower does not hold: truncate to where the
    /// follower's largest epoch below it ends, then ask again for the new latest epoch.
    Intermediate(Offset),
}

impl TruncationPoint {
    pub fn offset(self) -> Offset {
        match self {
            TruncationPoint::Final(offset) | TruncationPoint::Intermediate(offset) => offset,
        }
    }
}

/// Kafka's AbstractFetcherThread.getOffsetTruncationState, except that an answer naming
/// no epoch the follower holds cuts the follower's whole log: every record it has is then
/// in an epoch the leader never wrote at those offsets.
pub fn truncation_point(
    follower_log: &PartitionLog,
    leader_epoch: Option<Epoch>,
    leader_end_offset: Option<Offset>,
) -> TruncationPoint {
    let leo = follower_log.log_end_offset();
    let start = follower_log.log_start_offset();
    let (Some(leader_epoch), Some(leader_end)) = (leader_epoch, leader_end_offset) else {
        return TruncationPoint::Final(start);
    };
    let point = match follower_log.end_offset_for_epoch(leader_epoch) {
        None => TruncationPoint::Final(start),
        Some((epoch, end)) if epoch == leader_epoch => {
            TruncationPoint::Final(end.min(leader_end).min(leo))
        }
        Some((epoch, end)) => {
            assert!(epoch < leader_epoch, "own epoch {epoch} above {leader_epoch}");
            TruncationPoint::Intermediate(end.min(leo))
        }
    };
    assert!(point.offset() <= leo, "truncation point {:?} past leo {leo}", point);
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::testkit::{append_epochs, new_log};

    #[test]
    fn fencing_by_epoch() {
        assert_eq!(check_leader_epoch(None, Epoch(3)), Ok(()));
        assert_eq!(check_leader_epoch(Some(Epoch(3)), Epoch(3)), Ok(()));
        assert_eq!(
            check_leader_epoch(Some(Epoch(2)), Epoch(3)).map_err(|e| e.code()),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(
            check_leader_epoch(Some(Epoch(4)), Epoch(3)).map_err(|e| e.code()),
            Err(ErrorCode::UnknownLeaderEpoch)
        );
    }

    #[test]
    fn leader_answers_end_of_epoch_from_its_cache() {
        let tp = TopicPartition::new("t", 0);
        let mut log = new_log("l");
        append_epochs(&mut log, &[1, 1, 3, 3, 3]);
        let answer = |e| {
            let a = answer_offsets_for_leader_epoch(&log, &tp, Epoch(e));
            (a.leader_epoch.map(|e| e.0), a.end_offset.map(|o| o.0))
        };
        assert_eq!(answer(0), (None, None));
        assert_eq!(answer(1), (Some(1), Some(2)), "ends where epoch 3 starts");
        assert_eq!(answer(2), (Some(1), Some(2)), "largest epoch at or below");
        assert_eq!(answer(3), (Some(3), Some(5)), "latest epoch ends at the leo");
    }

    #[test]
    fn follower_truncation_points() {
        let mut log = new_log("f");
        append_epochs(&mut log, &[1, 1, 2, 2, 4]);
        let point =
            |e: Option<u32>, o: Option<u64>| truncation_point(&log, e.map(Epoch), o.map(Offset));
        assert_eq!(point(Some(4), Some(9)), TruncationPoint::Final(Offset(5)), "prefix: nothing");
        assert_eq!(point(Some(4), Some(4)), TruncationPoint::Final(Offset(4)));
        assert_eq!(point(Some(3), Some(7)), TruncationPoint::Intermediate(Offset(4)));
        assert_eq!(point(Some(1), Some(1)), TruncationPoint::Final(Offset(1)));
        assert_eq!(point(None, None), TruncationPoint::Final(Offset(0)));
    }
}
