//! The inside-the-cluster invariants of CORRECTNESS.md that replication answers for, as
//! pure functions over replica snapshots, for the simulator to call after every step:
//! replicas agree below the HW (3), acked means replicated (4), leader in ISR (5),
//! leader epochs only grow (1, per replica), the committed prefix never shrinks (2), and
//! no producer batch appended twice (6). Each returns the first violation found.

use crate::log::PartitionLog;
use crate::record::{scan_batches, RecordBatch};
use crate::types::{Epoch, NodeId, Offset};
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvariantViolation {
    #[error("replica {replica} differs from leader {leader} at offset {offset} below hw {hw}")]
    ReplicaDiverged { leader: NodeId, replica: NodeId, offset: Offset, hw: Offset },
    #[error("in-sync replica {replica} lacks offset {offset} below leader {leader}'s hw {hw}")]
    ReplicaMissing { leader: NodeId, replica: NodeId, offset: Offset, hw: Offset },
    #[error("ack of offset {offset} with hw {hw}, isr {isr} (min.insync {min_insync})")]
    AckNotReplicated { offset: Offset, hw: Offset, isr: usize, min_insync: usize },
    #[error("leader epoch went from {from} to {to}")]
    EpochWentBackwards { from: Epoch, to: Epoch },
    #[error("committed offset {offset} lost or changed on leader {leader}")]
    CommittedLost { leader: NodeId, offset: Offset },
    #[error("leader {leader} not in isr {isr:?}")]
    LeaderNotInIsr { leader: NodeId, isr: Vec<NodeId> },
    #[error(
        "producer {producer_id} epoch {epoch} seq {sequence} appended at {first} and {second}"
    )]
    DuplicateProducerBatch {
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        first: Offset,
        second: Offset,
    },
}

/// One replica's log as whole batches, verbatim (offsets and leader epochs stamped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    pub node: NodeId,
    pub batches: Vec<RecordBatch>,
}

impl ReplicaSnapshot {
    pub fn of(node: NodeId, log: &PartitionLog) -> ReplicaSnapshot {
        let data = log
            .read(log.log_start_offset(), usize::MAX, Offset(u64::MAX))
            .expect("a log reads from its own start");
        let (batches, stop) = scan_batches(&data.records);
        assert!(stop.is_none(), "{node}: log {} served bad bytes: {stop:?}", log.dir());
        ReplicaSnapshot { node, batches }
    }

    /// The batch holding `offset`, if any.
    pub fn batch_at(&self, offset: Offset) -> Option<&RecordBatch> {
        let at = self.batches.partition_point(|b| b.last_offset() < offset);
        self.batches.get(at).filter(|b| b.base_offset() <= offset)
    }

    pub fn log_end_offset(&self) -> Option<Offset> {
        self.batches.last().map(RecordBatch::next_offset)
    }
}

/// Invariant 3: every ISR member holds exactly the leader's batches below the leader's HW.
pub fn replicas_agree_below_hw(
    leader: &ReplicaSnapshot,
    hw: Offset,
    isr: &[&ReplicaSnapshot],
) -> Result<(), InvariantViolation> {
    for member in isr.iter().filter(|m| m.node != leader.node) {
        for batch in leader.batches.iter().take_while(|b| b.base_offset() < hw) {
            let offset = batch.base_offset();
            let (leader_node, replica) = (leader.node, member.node);
            match member.batch_at(offset) {
                None => {
                    return Err(InvariantViolation::ReplicaMissing {
                        leader: leader_node,
                        replica,
                        offset,
                        hw,
                    })
                }
                Some(theirs) if theirs.as_bytes() != batch.as_bytes() => {
                    return Err(InvariantViolation::ReplicaDiverged {
                        leader: leader_node,
                        replica,
                        offset,
                        hw,
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// The end-of-run form of invariant 3, and the divergence check of KIP-101 #2: where two
/// replicas both hold an offset below `below`, they hold the same batch.
pub fn replicas_agree_where_both_have(
    a: &ReplicaSnapshot,
    b: &ReplicaSnapshot,
    below: Offset,
) -> Result<(), InvariantViolation> {
    for batch in a.batches.iter().take_while(|x| x.base_offset() < below) {
        for offset in [batch.base_offset(), batch.last_offset()] {
            if offset >= below {
                continue;
            }
            if let Some(theirs) = b.batch_at(offset) {
                if theirs.as_bytes() != batch.as_bytes() {
                    let (leader, replica, hw) = (a.node, b.node, below);
                    return Err(InvariantViolation::ReplicaDiverged {
                        leader,
                        replica,
                        offset,
                        hw,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Invariant 4, at the moment an acks=all ack for `last_offset` is sent.
pub fn ack_is_replicated(
    last_offset: Offset,
    hw: Offset,
    isr: usize,
    min_insync: usize,
) -> Result<(), InvariantViolation> {
    if last_offset < hw && isr >= min_insync {
        return Ok(());
    }
    Err(InvariantViolation::AckNotReplicated { offset: last_offset, hw, isr, min_insync })
}

/// Invariant 1, per replica: the leader epoch it acts in never goes back.
pub fn leader_epoch_grows(previous: Option<Epoch>, next: Epoch) -> Result<(), InvariantViolation> {
    match previous {
        Some(from) if next < from => Err(InvariantViolation::EpochWentBackwards { from, to: next }),
        _ => Ok(()),
    }
}

/// Invariant 5.
pub fn leader_in_isr(leader: NodeId, isr: &[NodeId]) -> Result<(), InvariantViolation> {
    if isr.contains(&leader) {
        return Ok(());
    }
    Err(InvariantViolation::LeaderNotInIsr { leader, isr: isr.to_vec() })
}

/// Invariant 2: `committed` holds the records below the highest HW ever exposed (offset to
/// value bytes, as a consumer read them); every later leader keeps each of them unchanged.
pub fn committed_prefix_kept(
    committed: &BTreeMap<Offset, Option<Vec<u8>>>,
    leader: &ReplicaSnapshot,
) -> Result<(), InvariantViolation> {
    let mut records = BTreeMap::new();
    for batch in &leader.batches {
        for record in batch.records().expect("snapshot batches are valid") {
            records.insert(record.offset, record.value.map(|v| v.to_vec()));
        }
    }
    for (offset, value) in committed {
        if records.get(offset) != Some(value) {
            return Err(InvariantViolation::CommittedLost { leader: leader.node, offset: *offset });
        }
    }
    Ok(())
}

/// Invariant 6: no (producer id, epoch, first sequence) batch appears twice in one log.
pub fn producer_batches_unique(replica: &ReplicaSnapshot) -> Result<(), InvariantViolation> {
    let mut seen: BTreeMap<(i64, i16, i32), Offset> = BTreeMap::new();
    for batch in replica.batches.iter().filter(|b| b.header().has_producer_id()) {
        let h = batch.header();
        let key = (h.producer_id, h.producer_epoch, h.base_sequence);
        if let Some(first) = seen.insert(key, batch.base_offset()) {
            return Err(InvariantViolation::DuplicateProducerBatch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                sequence: h.base_sequence,
                first,
                second: batch.base_offset(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::testkit::{append_epochs, batch, new_log};

    #[test]
    fn agreement_catches_divergence_and_missing_records() {
        let mut leader = new_log("a");
        let mut same = new_log("b");
        let mut other = new_log("c");
        append_epochs(&mut leader, &[1, 1, 2]);
        append_epochs(&mut same, &[1, 1]);
        append_epochs(&mut other, &[1, 3]);
        let (l, s, o) = (
            ReplicaSnapshot::of(NodeId(1), &leader),
            ReplicaSnapshot::of(NodeId(2), &same),
            ReplicaSnapshot::of(NodeId(3), &other),
        );
        assert_eq!(replicas_agree_below_hw(&l, Offset(2), &[&s]), Ok(()));
        assert!(matches!(
            replicas_agree_below_hw(&l, Offset(3), &[&s]),
            Err(InvariantViolation::ReplicaMissing { offset: Offset(2), .. })
        ));
        assert!(matches!(
            replicas_agree_below_hw(&l, Offset(2), &[&o]),
            Err(InvariantViolation::ReplicaDiverged { offset: Offset(1), .. })
        ));
        assert_eq!(replicas_agree_where_both_have(&l, &s, Offset(9)), Ok(()));
        assert!(replicas_agree_where_both_have(&l, &o, Offset(9)).is_err());
        assert_eq!(replicas_agree_where_both_have(&l, &o, Offset(1)), Ok(()));
    }

    #[test]
    fn acks_epochs_isr_prefix_and_dedup() {
        assert!(ack_is_replicated(Offset(4), Offset(5), 2, 2).is_ok());
        assert!(ack_is_replicated(Offset(5), Offset(5), 2, 2).is_err());
        assert!(ack_is_replicated(Offset(4), Offset(5), 1, 2).is_err());
        assert!(leader_epoch_grows(Some(Epoch(2)), Epoch(2)).is_ok());
        assert!(leader_epoch_grows(Some(Epoch(2)), Epoch(1)).is_err());
        assert!(leader_in_isr(NodeId(1), &[NodeId(2)]).is_err());
        let mut log = new_log("p");
        log.append_as_leader(batch(&["x"]), Epoch(1), crate::types::Millis(0)).unwrap();
        let snap = ReplicaSnapshot::of(NodeId(1), &log);
        let committed = BTreeMap::from([(Offset(0), Some(b"x".to_vec()))]);
        assert!(committed_prefix_kept(&committed, &snap).is_ok());
        let changed = BTreeMap::from([(Offset(0), Some(b"y".to_vec()))]);
        assert!(committed_prefix_kept(&changed, &snap).is_err());
        assert!(producer_batches_unique(&snap).is_ok());
    }
}
