//! Sweeps: many seeds of one scenario, run concurrently, judged together against the
//! scenario's expectation. Owns seed ranges and shards, the worker pool and the sweep
//! judgement; each seed still runs alone in its own runtime (`runner::run_seed`). Printing
//! and report writing stay with the caller.

use crate::coverage::Mark;
use crate::runner::{run_seed, Judgement, RunOutcome, Verdict};
use crate::scenario::{Expectation, ExpectedVerdict, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Seeds `first..=last`, written `A..B` (both ends included, so `1..200` is 200 seeds),
/// `A..=B`, or a single seed `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

/// Shard `index` (1-based) of `count`: the seeds whose position in the range is
/// `index - 1` modulo `count`. Written `K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// What a sweep keeps of each seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedResult {
    pub seed: u64,
    pub verdict: Verdict,
    pub judgement: Judgement,
    /// The coverage marks the seed reached.
    pub marks: BTreeSet<Mark>,
}

/// The sweep judged against the scenario's expectation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepJudgement {
    /// The sweep met the expectation.
    pub met: bool,
    pub seeds_run: u64,
    pub passes: u64,
    /// Anomaly name -> number of seeds showing it.
    pub anomaly_seeds: BTreeMap<String, u64>,
    /// Seeds whose run did not meet the expectation, in seed order.
    pub failed: Vec<u64>,
    pub liveness: Vec<u64>,
    pub crashes: Vec<u64>,
    pub nondeterministic: Vec<u64>,
    /// For verdict = "find": each must_find anomaly and the first seed (within the seed
    /// budget) that showed it.
    pub first_found: BTreeMap<String, Option<u64>>,
    /// Every mark of the catalogue -> number of seeds that reached it (0: unreached).
    pub mark_seeds: BTreeMap<Mark, u64>,
    /// The scenario's `expect.reaches` marks no seed reached.
    pub unreached: Vec<String>,
}

impl SeedRange {
    pub fn len(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// Never true: a range holds at least its first seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seeds of this range in shard `shard` (all of them without a shard), ascending.
    pub fn seeds(&self, shard: Option<Shard>) -> Vec<u64> {
        (self.first..=self.last)
            .filter(|seed| shard.is_none_or(|s| (seed - self.first) % s.count == s.index - 1))
            .collect()
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let number = |part: &str| {
            part.trim().parse::<u64>().map_err(|_| format!("`{part}` is not a seed (a u64)"))
        };
        let (first, last) = match text.split_once("..") {
            Some((first, last)) => {
                (number(first)?, number(last.strip_prefix('=').unwrap_or(last))?)
            }
            None => {
                let seed = number(text)?;
                (seed, seed)
            }
        };
        if first > last {
            return Err(format!(
                "`{text}`: the first seed is after the last (A..B includes both ends)"
            ));
        }
        Ok(SeedRange { first, last })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').ok_or_else(|| format!("`{text}` is not K/N"))?;
        let parse = |part: &str| {
            part.trim().parse::<u64>().map_err(|_| format!("`{text}`: `{part}` is not a number"))
        };
        let shard = Shard { index: parse(index)?, count: parse(count)? };
        if shard.count == 0 || shard.index == 0 || shard.index > shard.count {
            return Err(format!("`{text}`: K/N needs 1 <= K <= N"));
        }
        Ok(shard)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Whether one seed's run is consistent with the expectation on its own.
pub fn seed_met(verdict: Verdict, judgement: &Judgement) -> bool {
    // A liveness verdict without a problem is an outcome Kafka allows (members it fenced
    // for good: `check::fences`).
    let allowed_stop = verdict == Verdict::Liveness && judgement.problems.is_empty();
    judgement.met
        && judgement.forbidden.is_empty()
        && (matches!(verdict, Verdict::Pass | Verdict::Safety) || allowed_stop)
}

/// The anomaly names one run showed (expected, allowed or forbidden), sorted and unique.
pub fn anomalies_shown(judgement: &Judgement) -> Vec<String> {
    let mut names: Vec<String> = judgement
        .found_expected
        .iter()
        .chain(judgement.allowed.iter().map(|(name, _)| name))
        .chain(judgement.forbidden.iter())
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Judges a sweep over seeds of the range starting at `range_first`. For "pass", every seed
/// must meet the expectation; for "find", every seed must too, and each must_find anomaly
/// must show on a seed below `range_first + seed_budget`.
pub fn judge_sweep(
    results: &[SeedResult],
    expect: &Expectation,
    range_first: u64,
) -> SweepJudgement {
    let mut sorted: Vec<&SeedResult> = results.iter().collect();
    sorted.sort_by_key(|result| result.seed);
    let mut judgement =
        SweepJudgement { seeds_run: sorted.len() as u64, ..SweepJudgement::default() };
    let budget_end = range_first.saturating_add(expect.seed_budget);
    if expect.verdict == ExpectedVerdict::Find {
        for name in &expect.must_find {
            judgement.first_found.insert(name.clone(), None);
        }
    }
    judgement.mark_seeds = Mark::ALL.iter().map(|&mark| (mark, 0)).collect();
    for result in sorted {
        for mark in &result.marks {
            *judgement.mark_seeds.entry(*mark).or_insert(0) += 1;
        }
        match result.verdict {
            Verdict::Pass => judgement.passes += 1,
            Verdict::Liveness => judgement.liveness.push(result.seed),
            Verdict::Crash => judgement.crashes.push(result.seed),
            Verdict::NonDeterminism => judgement.nondeterministic.push(result.seed),
            Verdict::Safety => {}
        }
        if !seed_met(result.verdict, &result.judgement) {
            judgement.failed.push(result.seed);
        }
        for name in anomalies_shown(&result.judgement) {
            *judgement.anomaly_seeds.entry(name.clone()).or_insert(0) += 1;
            if let Some(first @ None) = judgement.first_found.get_mut(&name) {
                if result.seed < budget_end {
                    *first = Some(result.seed);
                }
            }
        }
    }
    judgement.unreached = expect
        .reaches
        .iter()
        .filter(|name| {
            Mark::from_name(name).is_none_or(|mark| judgement.mark_seeds.get(&mark) == Some(&0))
        })
        .cloned()
        .collect();
    judgement.met = judgement.seeds_run > 0
        && judgement.failed.is_empty()
        && judgement.first_found.values().all(Option::is_some)
        && judgement.unreached.is_empty();
    judgement
}

/// The coverage table of a sweep: every mark of the catalogue with the number of seeds that
/// reached it, unreached ones flagged, and the scenario's `expect.reaches` marked.
pub fn coverage_lines(judgement: &SweepJudgement, expect: &Expectation) -> Vec<String> {
    let reached = judgement.mark_seeds.values().filter(|&&seeds| seeds > 0).count();
    let mut lines = vec![format!(
        "coverage   {reached} of {} marks reached over {} seeds",
        judgement.mark_seeds.len(),
        judgement.seeds_run
    )];
    let width = Mark::ALL.iter().map(|mark| mark.name().len()).max().unwrap_or(0);
    for (mark, seeds) in &judgement.mark_seeds {
        let expected = expect.reaches.iter().any(|name| name == mark.name());
        let note = match (*seeds, expected) {
            (0, true) => "  UNREACHED (expect.reaches)",
            (0, false) => "  unreached",
            (_, true) => "  (expect.reaches)",
            (_, false) => "",
        };
        lines.push(format!("  {:<width$} {seeds:>6}{note}", mark.name()));
    }
    for name in &judgement.unreached {
        lines.push(format!("reaches    {name}: NOT reached on any seed"));
    }
    lines
}

/// Runs `seeds` of the scenario on `jobs` worker threads and hands each outcome to
/// `on_outcome` on the calling thread, in completion order. When `on_outcome` answers
/// `Flow::Stop`, workers take no further seed (those already running, at most one per
/// worker, still report).
pub fn run_sweep(
    scenario: &Scenario,
    variant: Option<&str>,
    seeds: &[u64],
    jobs: usize,
    mut on_outcome: impl FnMut(RunOutcome) -> Flow,
) {
    let jobs = jobs.clamp(1, seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<RunOutcome>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, stop) = (&next, &stop);
            #[allow(clippy::disallowed_methods)]
            // sweep workers: each seed still runs in its own runtime
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let position = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(position) else { break };
                if sender.send(run_seed(scenario, variant, seed)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for outcome in receiver {
            if on_outcome(outcome) == Flow::Stop {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
}

/// Whether a sweep goes on after an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(verdict: ExpectedVerdict, must_find: &[&str], seed_budget: u64) -> Expectation {
        Expectation {
            verdict,
            must_find: must_find.iter().map(|s| s.to_string()).collect(),
            seed_budget,
            may_show: Vec::new(),
            known_seeds: Vec::new(),
            max_rebalances: None,
            reaches: Vec::new(),
        }
    }

    fn pass(seed: u64) -> SeedResult {
        SeedResult {
            seed,
            verdict: Verdict::Pass,
            judgement: Judgement { met: true, ..Judgement::default() },
            marks: BTreeSet::new(),
        }
    }

    fn found(seed: u64, name: &str) -> SeedResult {
        SeedResult {
            seed,
            verdict: Verdict::Safety,
            judgement: Judgement {
                met: true,
                found_expected: vec![name.to_string()],
                ..Judgement::default()
            },
            marks: BTreeSet::new(),
        }
    }

    fn forbidden(seed: u64, name: &str) -> SeedResult {
        SeedResult {
            seed,
            verdict: Verdict::Safety,
            judgement: Judgement {
                met: false,
                forbidden: vec![name.to_string()],
                ..Judgement::default()
            },
            marks: BTreeSet::new(),
        }
    }

    #[test]
    fn seed_ranges_include_both_ends() {
        assert_eq!("1..200".parse::<SeedRange>(), Ok(SeedRange { first: 1, last: 200 }));
        assert_eq!("1..200".parse::<SeedRange>().map(|r| r.len()), Ok(200));
        assert_eq!("5..=6".parse::<SeedRange>(), Ok(SeedRange { first: 5, last: 6 }));
        assert_eq!("9".parse::<SeedRange>(), Ok(SeedRange { first: 9, last: 9 }));
        assert!("7..3".parse::<SeedRange>().is_err());
        assert!("a..3".parse::<SeedRange>().is_err());
        assert!("1..".parse::<SeedRange>().is_err());
    }

    #[test]
    fn shards_partition_the_range() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let range = SeedRange { first: 10, last: 20 };
        assert_eq!(range.seeds(Some(Shard { index: 2, count: 4 })), vec![11, 15, 19]);
        let mut all: Vec<u64> =
            (1..=4).flat_map(|index| range.seeds(Some(Shard { index, count: 4 }))).collect();
        all.sort();
        assert_eq!(all, range.seeds(None));
    }

    #[test]
    fn pass_sweeps_need_every_seed_met() {
        let expect = expectation(ExpectedVerdict::Pass, &[], 20);
        let good = judge_sweep(&[pass(1), pass(2)], &expect, 1);
        assert!(good.met);
        assert_eq!(good.passes, 2);
        let liveness = SeedResult {
            seed: 3,
            verdict: Verdict::Liveness,
            judgement: Judgement::default(),
            marks: BTreeSet::new(),
        };
        let bad = judge_sweep(&[pass(1), forbidden(2, "lost-write"), liveness], &expect, 1);
        assert!(!bad.met);
        assert_eq!(bad.failed, vec![2, 3]);
        assert_eq!(bad.liveness, vec![3]);
        assert_eq!(bad.anomaly_seeds.get("lost-write"), Some(&1));
        assert!(!judge_sweep(&[], &expect, 1).met, "an empty sweep proves nothing");
    }

    #[test]
    fn find_sweeps_need_each_anomaly_within_the_budget() {
        let expect = expectation(ExpectedVerdict::Find, &["lost-write", "duplicate"], 5);
        let results =
            [pass(1), found(3, "lost-write"), found(2, "duplicate"), found(4, "lost-write")];
        let judgement = judge_sweep(&results, &expect, 1);
        assert!(judgement.met);
        assert_eq!(judgement.first_found.get("lost-write"), Some(&Some(3)));
        assert_eq!(judgement.first_found.get("duplicate"), Some(&Some(2)));
        assert_eq!(judgement.anomaly_seeds.get("lost-write"), Some(&2));
        let late =
            judge_sweep(&[pass(1), found(2, "lost-write"), found(9, "duplicate")], &expect, 1);
        assert!(!late.met, "seed 9 is outside the budget of 5 seeds from 1");
        assert_eq!(late.first_found.get("duplicate"), Some(&None));
        let with_bug = [found(1, "lost-write"), found(2, "duplicate"), forbidden(3, "poll-skip")];
        assert!(!judge_sweep(&with_bug, &expect, 1).met);
    }

    fn reaching(seed: u64, marks: &[Mark]) -> SeedResult {
        SeedResult { marks: marks.iter().copied().collect(), ..pass(seed) }
    }

    #[test]
    fn a_sweep_fails_when_a_listed_mark_is_never_reached() {
        let mut expect = expectation(ExpectedVerdict::Pass, &[], 20);
        expect.reaches = vec!["unclean-election".into(), "elr-election".into()];
        let results = [
            reaching(1, &[Mark::UncleanElection, Mark::Rebalance]),
            reaching(2, &[Mark::UncleanElection]),
            pass(3),
        ];
        let judgement = judge_sweep(&results, &expect, 1);
        assert!(!judgement.met, "elr-election was never reached");
        assert_eq!(judgement.unreached, vec!["elr-election".to_string()]);
        assert!(judgement.failed.is_empty(), "every seed on its own met the expectation");
        assert_eq!(judgement.mark_seeds.get(&Mark::UncleanElection), Some(&2));
        assert_eq!(judgement.mark_seeds.get(&Mark::ElrElection), Some(&0));
        assert_eq!(judgement.mark_seeds.len(), Mark::ALL.len(), "every mark has a row");
        let lines = coverage_lines(&judgement, &expect).join("\n");
        assert!(lines.contains("2 of"), "{lines}");
        assert!(lines.contains("UNREACHED (expect.reaches)"), "{lines}");
        assert!(lines.contains("reaches    elr-election: NOT reached on any seed"), "{lines}");
        let reached = [reaching(4, &[Mark::UncleanElection, Mark::ElrElection])];
        assert!(judge_sweep(&reached, &expect, 4).met);
    }

    #[test]
    fn sweeps_run_every_seed_once() {
        let scenario = crate::scenario::parse(include_str!("../../scenarios/quickstart.toml"), "q")
            .expect("valid");
        let mut seen = Vec::new();
        run_sweep(&scenario, None, &[3, 1, 2, 5], 3, |outcome| {
            seen.push(outcome.seed);
            Flow::Continue
        });
        seen.sort();
        assert_eq!(seen, vec![1, 2, 3, 5]);
    }

    #[test]
    fn a_stopped_sweep_takes_no_further_seed() {
        let scenario = crate::scenario::parse(include_str!("../../scenarios/quickstart.toml"), "q")
            .expect("valid");
        let mut seen = Vec::new();
        run_sweep(&scenario, None, &[1, 2, 3, 4, 5, 6], 1, |outcome| {
            seen.push(outcome.seed);
            if outcome.seed == 2 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        // The worker may have taken seed 3 before the stop reached it; nothing after that.
        assert!(seen.starts_with(&[1, 2]) && seen.len() <= 3, "{seen:?}");
    }
}
