//! Shrinking: from a seed that finds something to the smallest scenario that still finds
//! the same thing on that seed. A run's *finding* is its verdict, the anomalies that make
//! it a finding (the scenario's `must_find` ones it showed and the forbidden ones; if none,
//! every anomaly it showed) and the kinds of problem the judge wrote; a candidate counts
//! only if it shows exactly that finding. Anomalies a finding merely allows (the reuse of
//! offsets after a loss, say) may come and go as the run shrinks. Candidates, each run once on the same seed:
//! the random nemesis's realized schedule made explicit (every fault it injected, at its
//! instant, a one-node target resolved to that node); fewer fault steps (halves, then
//! smaller chunks, then single steps); a faulty phase ending after the last step; fewer
//! send ops per second and records per op; fewer producers, consumers, partitions and
//! brokers. Every candidate goes through the scenario's own validation and a TOML round
//! trip, so the file written is the scenario that was run. Deterministic: the same input
//! gives the same candidates in the same order, and so the same result.

use crate::runner::{run_seed, RunOutcome, Verdict};
use crate::scenario::{self, FaultStep, Scenario};
use crate::sweep::anomalies_shown;
use crate::triage::problem_category;
use std::collections::BTreeSet;
use std::fmt;

/// What a shrink preserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub anomalies: Vec<String>,
    pub problems: BTreeSet<String>,
}

impl Finding {
    pub fn of(outcome: &RunOutcome) -> Finding {
        Finding {
            verdict: outcome.verdict,
            anomalies: finding_anomalies(&outcome.judgement),
            problems: outcome.judgement.problems.iter().map(|p| problem_category(p)).collect(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = crate::report::verdict_name(self.verdict);
        write!(f, "{verdict}: {}", self.anomalies.join(", "))?;
        for problem in &self.problems {
            write!(f, "; {problem}")?;
        }
        Ok(())
    }
}

/// must_find anomalies shown and forbidden ones, sorted; every anomaly shown if none.
fn finding_anomalies(judgement: &crate::runner::Judgement) -> Vec<String> {
    let mut names: Vec<String> =
        judgement.found_expected.iter().chain(&judgement.forbidden).cloned().collect();
    if names.is_empty() {
        return anomalies_shown(judgement);
    }
    names.sort();
    names.dedup();
    names
}

/// The size of a scenario's run, before and after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Size {
    pub fault_steps: usize,
    pub random_nemesis: bool,
    pub records_sent: u64,
    pub faulty_s: u64,
    pub producers: u32,
    pub consumers: u32,
    pub partitions: u32,
    pub brokers: u32,
}

impl Size {
    fn of(scenario: &Scenario, outcome: &RunOutcome) -> Size {
        Size {
            fault_steps: match scenario.nemesis {
                Some(_) => outcome.realized_faults.len(),
                None => scenario.faults.len(),
            },
            random_nemesis: scenario.nemesis.is_some(),
            records_sent: outcome.stats.records_sent,
            faulty_s: scenario.phases.faulty_s,
            producers: scenario.producer.count,
            consumers: scenario.consumer.count,
            partitions: scenario.topics.iter().map(|t| t.partitions).sum(),
            brokers: scenario.cluster.brokers,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nemesis = if self.random_nemesis { " (random nemesis)" } else { "" };
        write!(
            f,
            "{} fault steps{nemesis}, {} records sent, faulty phase {} s, {} producers, {} \
             consumers, {} partitions, {} brokers",
            self.fault_steps,
            self.records_sent,
            self.faulty_s,
            self.producers,
            self.consumers,
            self.partitions,
            self.brokers
        )
    }
}

/// A finished shrink.
pub struct Shrunk {
    pub scenario: Scenario,
    pub finding: Finding,
    pub before: Size,
    pub after: Size,
    /// Candidate runs tried.
    pub runs: u32,
}

/// Shrinks `seed` of `scenario` (variant already applied; a swarm is drawn first) within
/// `max_runs` candidate runs. Err when the seed passes (nothing to shrink).
pub fn shrink(
    scenario: &Scenario,
    variant: Option<&str>,
    seed: u64,
    max_runs: u32,
) -> Result<Shrunk, String> {
    let (drawn, _) = scenario::swarm::resolve(scenario, seed)?;
    let start = drawn.into_owned();
    let first = run_seed(&start, variant, seed);
    if first.verdict == Verdict::Pass {
        return Err(format!("seed {seed} passes: there is nothing to shrink"));
    }
    let mut search = Search {
        variant,
        seed,
        finding: Finding::of(&first),
        best: (start.clone(), first),
        runs: 0,
        max_runs,
    };
    let before = Size::of(&start, &search.best.1);
    search.make_explicit();
    loop {
        let size = Size::of(&search.best.0, &search.best.1);
        search.drop_steps();
        search.shorten_faulty_phase();
        search.fewer_records();
        search.fewer_nodes();
        if Size::of(&search.best.0, &search.best.1) == size || search.spent() {
            break;
        }
    }
    let after = Size::of(&search.best.0, &search.best.1);
    Ok(Shrunk {
        scenario: search.best.0,
        finding: search.finding,
        before,
        after,
        runs: search.runs,
    })
}

struct Search<'a> {
    variant: Option<&'a str>,
    seed: u64,
    finding: Finding,
    /// The smallest scenario so far with its run.
    best: (Scenario, RunOutcome),
    runs: u32,
    max_runs: u32,
}

impl Search<'_> {
    fn spent(&self) -> bool {
        self.runs >= self.max_runs
    }

    /// Runs the candidate (after validation and a TOML round trip); keeps it if it shows
    /// the same finding.
    fn try_candidate(&mut self, candidate: Scenario) -> bool {
        if self.spent() || candidate == self.best.0 {
            return false;
        }
        if !scenario::validate(&candidate).is_empty() {
            return false;
        }
        let Ok(candidate) = scenario::parse(&scenario::to_toml(&candidate), "shrink candidate")
        else {
            return false;
        };
        self.runs += 1;
        let outcome = run_seed(&candidate, self.variant, self.seed);
        let same = Finding::of(&outcome) == self.finding;
        if same {
            self.best = (candidate, outcome);
        }
        same
    }

    /// The random nemesis replaced by the faults it injected, as scripted steps.
    fn make_explicit(&mut self) {
        if self.best.0.nemesis.is_none() {
            return;
        }
        let mut candidate = self.best.0.clone();
        candidate.faults = self.best.1.realized_faults.clone();
        candidate.nemesis = None;
        self.try_candidate(candidate);
    }

    /// Delta debugging over the fault steps: remove chunks of halving size.
    fn drop_steps(&mut self) {
        if self.best.0.nemesis.is_some() {
            return;
        }
        let mut chunk = self.best.0.faults.len().div_ceil(2);
        while chunk >= 1 && !self.spent() {
            let mut start = 0;
            while start < self.best.0.faults.len() && !self.spent() {
                let mut candidate = self.best.0.clone();
                let end = (start + chunk).min(candidate.faults.len());
                candidate.faults.drain(start..end);
                if !self.try_candidate(candidate) {
                    start += chunk;
                }
            }
            chunk /= 2;
        }
    }

    /// The faulty phase: down to a second after the last scripted fault's end, or to 1 s
    /// under a random nemesis.
    fn shorten_faulty_phase(&mut self) {
        let floor = match self.best.0.nemesis {
            Some(_) => 1,
            None => {
                let end = self.best.0.faults.iter().map(step_end_s).fold(0.0, f64::max);
                (end.ceil() as u64).saturating_add(1).max(1)
            }
        };
        self.bisect(floor, |s| &mut s.phases.faulty_s);
    }

    fn fewer_records(&mut self) {
        self.bisect(1, |s| &mut s.workload.send_ops_per_sec);
        self.bisect(1, |s| &mut s.workload.sends_per_op_max);
    }

    fn fewer_nodes(&mut self) {
        self.bisect(1, |s| &mut s.producer.count);
        self.bisect(1, |s| &mut s.consumer.count);
        for topic in 0..self.best.0.topics.len() {
            self.bisect(1, |s| &mut s.topics[topic].partitions);
        }
        self.bisect(1, |s| &mut s.cluster.brokers);
    }

    /// The smallest value of a number, between `floor` and its current value, that keeps
    /// the finding: `floor` first, then bisection (findings are not always monotonic in a
    /// number; bisection settles for a value that keeps it).
    fn bisect<T: Number>(&mut self, floor: T, field: impl Fn(&mut Scenario) -> &mut T) {
        let with = |search: &Self, value: T| {
            let mut candidate = search.best.0.clone();
            *field(&mut candidate) = value;
            candidate
        };
        let mut high = *field(&mut self.best.0.clone());
        if floor >= high || self.try_candidate(with(self, floor)) {
            return;
        }
        let mut low = floor;
        while let Some(mid) = T::between(low, high) {
            if self.spent() {
                return;
            }
            if self.try_candidate(with(self, mid)) {
                high = mid;
            } else {
                low = mid;
            }
        }
    }
}

/// A step's last instant, in seconds into the faulty phase.
fn step_end_s(step: &FaultStep) -> f64 {
    step.at_s + step.fault.rule().duration().as_secs_f64()
}

/// The integer fields a shrink bisects.
trait Number: Copy + PartialOrd {
    /// A value strictly between `low` and `high`, if any.
    fn between(low: Self, high: Self) -> Option<Self>;
}

impl Number for u32 {
    fn between(low: u32, high: u32) -> Option<u32> {
        (high > low.saturating_add(1)).then(|| low + (high - low) / 2)
    }
}

impl Number for u64 {
    fn between(low: u64, high: u64) -> Option<u64> {
        (high > low.saturating_add(1)).then(|| low + (high - low) / 2)
    }
}

/// The shrunk scenario as a file, with a header saying what it came from.
pub fn shrunk_file(shrunk: &Shrunk, origin: &str, variant: Option<&str>, seed: u64) -> String {
    let from = match variant {
        Some(variant) => format!("{origin} --variant {variant} --seed {seed}"),
        None => format!("{origin} --seed {seed}"),
    };
    let mut text = format!(
        "# Shrunk by `kafkasim shrink` from {from} ({}), in {} candidate runs.\n\
         # Run it with --seed {seed}; it shows the same finding: {}.\n\
         # before: {}\n\
         # after:  {}\n\n",
        crate::runner::build_id(),
        shrunk.runs,
        shrunk.finding,
        shrunk.before,
        shrunk.after,
    );
    text.push_str(&scenario::to_toml(&shrunk.scenario));
    text
}
