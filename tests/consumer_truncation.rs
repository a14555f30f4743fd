//! scenarios/consumer-truncation.toml on fixed seeds: an unclean election truncates the
//! log below a paused consumer's position and producers refill those offsets. Without
//! KIP-320 validation the consumer continues at its old offset and the checker reports
//! the skipped refill (poll-skip); with it, the consumer logs a `log-truncation` event,
//! moves back to the divergence point and meets the scenario's expectation.

mod common;

use sim::runner::RunOutcome;

fn run(variant: Option<&str>, seed: u64) -> RunOutcome {
    common::run_met("consumer-truncation", variant, seed)
}

fn truncations(outcome: &RunOutcome) -> Vec<&sim::runner::Event> {
    outcome.events.iter().filter(|e| e.kind == "log-truncation").collect()
}

#[test]
fn without_validation_the_consumer_skips_the_refilled_offsets() {
    for seed in [1, 2] {
        let outcome = run(None, seed);
        let found = &outcome.judgement.found_expected;
        assert!(found.iter().any(|k| k == "poll-skip"), "seed {seed}: {:?}", outcome.judgement);
        assert!(truncations(&outcome).is_empty(), "seed {seed}: nothing validates positions");
    }
}

#[test]
fn with_validation_the_consumer_detects_the_truncation_and_reads_the_refill() {
    for seed in [1, 2] {
        let outcome = run(Some("validated"), seed);
        let report = &outcome.check_report["counts"];
        for never in ["poll-skip", "nonmonotonic-poll", "int-poll-skip"] {
            assert_eq!(report[never].as_u64().unwrap_or(0), 0, "seed {seed} shows {never}");
        }
        let events = truncations(&outcome);
        assert_eq!(events.len(), 1, "seed {seed}: {events:?}");
        assert_eq!(events[0].fields["outcome"], "SeekedToDivergence", "seed {seed}");
        assert_eq!(events[0].node, "consumer-0");
    }
}
