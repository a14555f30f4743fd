//! One replica's log as the cluster checker sees it: batch digests by base offset and a log
//! end offset, changed only by what the broker reports (append, truncate, restart). Also the
//! committed prefix the checker keeps per partition. Owns the batch-by-batch comparisons
//! over an offset range; does not decide what a difference means.

use std::collections::BTreeMap;

use kafkasim::types::Offset;

use super::BatchDigest;

#[derive(Clone, Debug, Default)]
pub(super) struct ReplicaLog {
    batches: BTreeMap<Offset, BatchDigest>,
    leo: Offset,
    /// The last change was a truncation: an append below the leo right after one is the
    /// broker overwriting its own suffix, not a bug.
    just_truncated: bool,
}

/// What an append did to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Append {
    /// At the leo (or past it: a gap, which the comparisons show if it matters).
    AtEnd,
    /// Below the leo: everything from the batch's base was replaced.
    Overwrote { leo_before: Offset, after_truncation: bool },
    /// last < base: ignored.
    Malformed,
}

/// The first place two batch sequences differ over a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Difference {
    pub ours: Option<BatchDigest>,
    pub theirs: Option<BatchDigest>,
}

impl ReplicaLog {
    pub(super) fn leo(&self) -> Offset {
        self.leo
    }

    pub(super) fn get(&self, base: Offset) -> Option<&BatchDigest> {
        self.batches.get(&base)
    }

    pub(super) fn append(&mut self, batch: BatchDigest) -> Append {
        if batch.last < batch.base {
            return Append::Malformed;
        }
        let after_truncation = std::mem::take(&mut self.just_truncated);
        let outcome = if batch.base < self.leo {
            let leo_before = self.leo;
            self.cut(batch.base);
            Append::Overwrote { leo_before, after_truncation }
        } else {
            Append::AtEnd
        };
        self.batches.insert(batch.base, batch);
        self.leo = Offset(batch.last.0.saturating_add(1));
        outcome
    }

    /// Drops every offset >= `to` (a batch straddling `to` goes whole). Returns the lowest
    /// offset whose content changed, if anything did.
    pub(super) fn truncate(&mut self, to: Offset) -> Option<Offset> {
        self.just_truncated = true;
        self.cut(to)
    }

    fn cut(&mut self, to: Offset) -> Option<Offset> {
        let straddling = self
            .batches
            .range(..to)
            .next_back()
            .filter(|(_, b)| b.last >= to)
            .map(|(&base, _)| base);
        let cut = straddling.unwrap_or(to);
        if cut >= self.leo {
            return None;
        }
        // BTreeMap::split_off keeps [.., cut) here and hands back [cut, ..).
        let _dropped = self.batches.split_off(&cut);
        self.leo = cut;
        Some(cut)
    }

    /// The batches holding any offset in [from, to), in offset order.
    pub(super) fn overlapping(
        &self,
        from: Offset,
        to: Offset,
    ) -> impl Iterator<Item = &BatchDigest> + '_ {
        let straddling =
            self.batches.range(..from).next_back().map(|(_, b)| b).filter(|b| b.last >= from);
        let rest =
            if from < to { Some(self.batches.range(from..to).map(|(_, b)| b)) } else { None };
        straddling.filter(move |_| from < to).into_iter().chain(rest.into_iter().flatten())
    }

    /// The first batch over [from, to) where the two logs differ (base, last or crc).
    pub(super) fn first_difference(
        &self,
        theirs: &ReplicaLog,
        from: Offset,
        to: Offset,
    ) -> Option<Difference> {
        let mut a = self.overlapping(from, to);
        let mut b = theirs.overlapping(from, to);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return None,
                (x, y) if !same(x, y) => {
                    return Some(Difference { ours: x.copied(), theirs: y.copied() });
                }
                _ => {}
            }
        }
    }

    /// The batches of `self` over [from, to) that `theirs` lacks or holds changed: how
    /// many, and the first with what `theirs` holds at its base.
    pub(super) fn missing_from(
        &self,
        theirs: &ReplicaLog,
        from: Offset,
        to: Offset,
    ) -> (usize, Option<Difference>) {
        let mut count = 0;
        let mut first = None;
        for batch in self.overlapping(from, to) {
            let found = theirs.get(batch.base);
            if !same(Some(batch), found) {
                count += 1;
                first.get_or_insert(Difference { ours: Some(*batch), theirs: found.copied() });
            }
        }
        (count, first)
    }
}

/// Equal offsets and CRC mean equal records; the epoch is carried inside the CRC'd bytes.
fn same(a: Option<&BatchDigest>, b: Option<&BatchDigest>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.base == b.base && a.last == b.last && a.crc == b.crc,
        (None, None) => true,
        _ => false,
    }
}

/// "[30..=34] e4 crc 0x1a2b3c4d", or "nothing" when absent.
pub(super) fn describe(batch: Option<&BatchDigest>) -> String {
    match batch {
        None => "nothing".to_string(),
        Some(b) => {
            let epoch = b.epoch.map(|e| format!(" {e}")).unwrap_or_default();
            format!("[{}..={}]{epoch} crc {:#010x}", b.base, b.last, b.crc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: u64, last: u64, crc: u32) -> BatchDigest {
        BatchDigest { base: Offset(base), last: Offset(last), epoch: None, crc }
    }

    fn log(batches: &[BatchDigest]) -> ReplicaLog {
        let mut log = ReplicaLog::default();
        for b in batches {
            log.append(*b);
        }
        log
    }

    #[test]
    fn truncate_drops_a_straddling_batch_whole() {
        let mut l = log(&[batch(0, 4, 1), batch(5, 9, 2)]);
        assert_eq!(l.truncate(Offset(7)), Some(Offset(5)));
        assert_eq!(l.leo(), Offset(5));
        assert_eq!(l.truncate(Offset(5)), None);
        assert_eq!(l.truncate(Offset(0)), Some(Offset(0)));
        assert_eq!(l.leo(), Offset(0));
    }

    #[test]
    fn append_below_leo_overwrites_and_says_whether_a_truncation_came_first() {
        let mut l = log(&[batch(0, 4, 1), batch(5, 9, 2)]);
        let outcome = l.append(batch(5, 6, 3));
        assert_eq!(outcome, Append::Overwrote { leo_before: Offset(10), after_truncation: false });
        assert_eq!(l.leo(), Offset(7));
        l.truncate(Offset(10));
        assert_eq!(
            l.append(batch(0, 1, 4)),
            Append::Overwrote { leo_before: Offset(7), after_truncation: true }
        );
        assert_eq!(l.append(batch(3, 2, 0)), Append::Malformed);
        assert_eq!(l.append(batch(2, 2, 5)), Append::AtEnd);
    }

    #[test]
    fn overlapping_includes_the_batch_straddling_from() {
        let l = log(&[batch(0, 4, 1), batch(5, 9, 2), batch(10, 10, 3)]);
        let bases = |from, to| -> Vec<u64> {
            l.overlapping(Offset(from), Offset(to)).map(|b| b.base.0).collect()
        };
        assert_eq!(bases(3, 6), vec![0, 5]);
        assert_eq!(bases(5, 10), vec![5]);
        assert_eq!(bases(6, 6), Vec::<u64>::new());
        assert_eq!(bases(9, 11), vec![5, 10]);
    }

    #[test]
    fn first_difference_compares_base_last_and_crc() {
        let a = log(&[batch(0, 4, 1), batch(5, 9, 2)]);
        let b = log(&[batch(0, 4, 1), batch(5, 9, 7)]);
        assert_eq!(a.first_difference(&b, Offset(0), Offset(5)), None);
        let diff = a.first_difference(&b, Offset(0), Offset(6)).expect("crc differs");
        assert_eq!(diff.ours.map(|d| d.crc), Some(2));
        assert_eq!(diff.theirs.map(|d| d.crc), Some(7));
        let short = log(&[batch(0, 4, 1)]);
        let diff = a.first_difference(&short, Offset(0), Offset(10)).expect("short");
        assert_eq!(diff.theirs, None);
        assert_eq!(a.missing_from(&short, Offset(0), Offset(10)).0, 1);
        assert_eq!(short.missing_from(&a, Offset(0), Offset(10)), (0, None));
        assert_eq!(a.missing_from(&b, Offset(0), Offset(10)).0, 1);
    }
}
