//! Disk corruption never panics: the `disk-faults` seeds (and its `bit-flips` variant) that
//! once crashed a node, served corrupt data or reused an offset a consumer had read, kept as
//! regressions. Each run must meet the scenario's expectation and show none of the
//! anomalies corruption must never cause.

mod common;

use sim::runner::{run_seed, Verdict};

/// What a corrupt disk may never cause, whatever it destroys.
const NEVER: [&str; 3] = ["inconsistent-offsets", "aborted-read", "duplicate"];

fn assert_never_corrupt(variant: Option<&str>, seeds: &[u64]) {
    let scenario = common::scenario("disk-faults", variant);
    for &seed in seeds {
        let outcome = run_seed(&scenario, variant, seed);
        assert_ne!(outcome.verdict, Verdict::Crash, "disk-faults {variant:?} seed {seed} crashed");
        assert!(
            outcome.judgement.met,
            "disk-faults {variant:?} seed {seed}: expectation not met: {:?}",
            outcome.judgement
        );
        for never in NEVER {
            let count = outcome.check_report["counts"][never].as_u64().unwrap_or(0);
            assert_eq!(count, 0, "disk-faults {variant:?} seed {seed} shows {never}");
        }
    }
}

/// 527, 4904: a flipped base offset (outside the batch CRC) put a batch below its segment's
/// base, and recovery subtracted with overflow.
#[test]
fn flipped_base_offset_is_cut_not_a_panic() {
    assert_never_corrupt(None, &[527, 4904]);
}

/// 8831: recovery's sync and checkpoint failed under injected I/O errors, the broker served
/// the recovered tail anyway, and the next recovery reused offsets 42-43 consumers had read.
#[test]
fn recovery_that_cannot_persist_refuses_to_start() {
    assert_never_corrupt(None, &[8831]);
}

/// `--variant bit-flips` 1883: the same flipped base offset, found by the variant.
/// 2835: a flipped `meta/incarnation` was shifted into an overflowing producer id.
/// 1993, 2840: a flip below the recovery point destroyed a producer's latest batches, and
/// its retry was appended again (a duplicate with idempotence on).
#[test]
fn bit_flips_variant_seeds() {
    assert_never_corrupt(Some("bit-flips"), &[1883, 2835, 1993, 2840]);
}
