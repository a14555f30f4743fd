//! The final log: per key and offset, which record the log holds at the end of the run, as
//! far as the history proves it. Poll-skip judges consumers against it (Jepsen's version
//! order); a log that never reused an offset has one value per offset and needs none of this.
//!
//! An op shows its records at some instant between its invocation and its completion, so a
//! (offset, value) pair's sightings bound when it was in the log: at some instant at or
//! after the latest invocation (`after`), and at some instant at or before the earliest
//! completion (`before`); an acked record was appended after its send was invoked. Pair Q
//! is *seen after* pair P when `Q.after > P.before`: Q was in the log at an instant strictly
//! later than one at which P was. Offsets change value only by truncation and refill, and a
//! log appends in offset order, so a value at offset o is gone when
//! - another value at o was seen after it (the log was cut to o or below, then refilled),
//! - a value already gone at a lower offset was seen after it (the cut that removed that
//!   one removed o too), or
//! - a record at a lower offset was appended after it was seen (the log ended below o then),
//!
//! unless it was itself seen after that evidence (re-appended, or sightings too coarse to
//! tell), which leaves the offset ambiguous. Ordering by completion alone is wrong for a
//! send whose op waited for another key's ack: its record's late completion made an
//! offset's truncated value look like the last one (swarm seed 4408).

use std::collections::BTreeMap;

use super::facts::{Facts, Observation, Source};

/// What the final log holds at one offset. An offset with no slot had every value seen
/// there gone: it holds a record nobody saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Final(u64),
    /// Two values could each be the last one.
    Ambiguous,
}

pub(crate) type FinalLog<'f> = BTreeMap<&'f str, BTreeMap<u64, Slot>>;

/// When a pair was provably in the log: at some instant >= `after`, and at some
/// instant <= `before` (history indices); appended after `appended_after` if acked.
#[derive(Clone, Copy, Debug)]
struct Seen {
    after: u64,
    before: u64,
    appended_after: Option<u64>,
}

impl Seen {
    fn of(o: &Observation) -> Seen {
        let appended_after = (o.source == Source::Ack).then_some(o.invoke);
        Seen { after: o.invoke, before: o.op, appended_after }
    }

    fn merge(self, other: Seen) -> Seen {
        let appended_after = match (self.appended_after, other.appended_after) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Seen {
            after: self.after.max(other.after),
            before: self.before.min(other.before),
            appended_after,
        }
    }
}

/// Evidence from lower offsets, by the instant after which it was in the log: the largest
/// `before` among evidence with that `after`.
type Below = BTreeMap<u64, u64>;

enum Status {
    Alive,
    Gone,
    Unsure,
}

pub(crate) fn derive<'f>(facts: &'f Facts<'_>) -> FinalLog<'f> {
    facts.keys.iter().map(|(&key, k)| (key, of_key(&k.observations))).collect()
}

fn of_key(observations: &[Observation]) -> BTreeMap<u64, Slot> {
    let mut pairs: BTreeMap<u64, BTreeMap<u64, Seen>> = BTreeMap::new();
    for o in observations {
        let seen = Seen::of(o);
        pairs
            .entry(o.offset)
            .or_default()
            .entry(o.value)
            .and_modify(|s| *s = s.merge(seen))
            .or_insert(seen);
    }
    let mut below = Below::new();
    let mut log = BTreeMap::new();
    for (offset, values) in pairs {
        let mut alive = Vec::new();
        let mut unsure = false;
        let mut evidence = Vec::new();
        for (&value, &seen) in &values {
            let others =
                values.iter().filter(|&(&v, _)| v != value).map(|(_, &s)| (s.after, s.before));
            let lower = below.range(seen.before.saturating_add(1)..).map(|(&a, &b)| (a, b));
            match status(seen, others.chain(lower)) {
                Status::Alive => alive.push(value),
                Status::Unsure => unsure = true,
                Status::Gone => {
                    evidence.push((seen.after, seen.before));
                    continue;
                }
            }
            if let Some(appended) = seen.appended_after {
                evidence.push((appended, seen.before));
            }
        }
        match (alive.as_slice(), unsure) {
            ([], false) => {}
            ([value], false) => {
                log.insert(offset, Slot::Final(*value));
            }
            _ => {
                log.insert(offset, Slot::Ambiguous);
            }
        }
        for (after, before) in evidence {
            let max_before = below.entry(after).or_insert(before);
            *max_before = (*max_before).max(before);
        }
    }
    log
}

/// A pair's status given evidence (in the log after .0, and at some instant before .1)
/// that could prove it gone.
fn status(seen: Seen, evidence: impl Iterator<Item = (u64, u64)>) -> Status {
    let mut later = evidence.filter(|&(after, _)| after > seen.before).peekable();
    if later.peek().is_none() {
        return Status::Alive;
    }
    // Gone unless it was itself seen after every piece of evidence.
    if later.any(|(_, before)| seen.after <= before) {
        Status::Gone
    } else {
        Status::Unsure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(offset: u64, value: u64, invoke: u64, op: u64) -> Observation {
        Observation { offset, value, source: Source::Poll, op, invoke }
    }

    fn ack(offset: u64, value: u64, invoke: u64, op: u64) -> Observation {
        Observation { source: Source::Ack, ..obs(offset, value, invoke, op) }
    }

    #[test]
    fn a_refilled_offset_holds_the_value_seen_after_the_old_one() {
        let log = of_key(&[obs(0, 10, 1, 2), obs(1, 11, 1, 2), obs(1, 21, 5, 6)]);
        assert_eq!(log.get(&0), Some(&Slot::Final(10)));
        assert_eq!(log.get(&1), Some(&Slot::Final(21)));
    }

    #[test]
    fn a_late_completion_does_not_make_a_truncated_value_last() {
        // Value 13 at offset 2 was read at [3, 4]; its send completed only at 20 (it waited
        // for another key). The refill's 26 was seen at [10, 12]: 26 is final.
        let log = of_key(&[obs(2, 13, 1, 20), obs(2, 13, 3, 4), obs(2, 26, 10, 12)]);
        assert_eq!(log.get(&2), Some(&Slot::Final(26)));
        // Without the early read, 13's only sighting spans 26's: nobody can tell.
        let log = of_key(&[obs(2, 13, 1, 20), obs(2, 26, 10, 12)]);
        assert_eq!(log.get(&2), Some(&Slot::Ambiguous));
    }

    #[test]
    fn a_cut_below_removes_what_was_seen_before_it() {
        // 11 at offset 1 gone (21 seen after it); 12 at offset 2 was seen before 11's last
        // sighting, so the cut removed it too, and its refill was never seen.
        let log =
            of_key(&[obs(1, 11, 3, 4), obs(2, 12, 1, 2), obs(1, 21, 8, 9), obs(3, 33, 10, 11)]);
        assert_eq!(log.get(&1), Some(&Slot::Final(21)));
        assert_eq!(log.get(&2), None);
        assert_eq!(log.get(&3), Some(&Slot::Final(33)));
    }

    #[test]
    fn a_record_appended_below_after_a_sighting_proves_the_log_ended_below_it() {
        // 21 at offset 5 was acked at [1, 4] and read at [6, 9]; the log was cut to 3 (14 at
        // offset 3 read at [2, 5]) and the refill's 33 at offset 3 sent at [20, 22]: the log
        // then ended at 3, so 21 is gone although nothing was seen at offset 5 since.
        let log = of_key(&[
            ack(3, 14, 1, 2),
            obs(3, 14, 2, 5),
            ack(5, 21, 1, 4),
            obs(5, 21, 6, 9),
            ack(3, 33, 20, 22),
        ]);
        assert_eq!(log.get(&3), Some(&Slot::Final(33)));
        assert_eq!(log.get(&5), None);
    }
}
