//! Every coverage mark of the catalogue is reached by the shipped scenarios: a fixed list of
//! (scenario, variant, seeds) runs, and the union of the marks they reach must be the whole
//! catalogue except `KNOWN_UNREACHED`, each with the reason no shipped scenario reaches it.
//! A new mark without a scenario that reaches it fails here, and so does a mark listed as
//! unreached that some run now reaches (the list stays honest). Seeds were picked from a
//! survey of every shipped scenario and variant (see docs/COVERAGE.md); the list is the
//! smallest that reaches each mark, with a second seed where a mark is rare.

use sim::coverage::Mark;
use sim::runner::run_seed;
use sim::scenario::load_variant;
use std::collections::BTreeMap;
use std::path::Path;

/// (scenario, variant, seeds): each chosen for the marks it is there to reach.
const RUNS: &[(&str, Option<&str>, &[u64])] = &[
    // Unclean recovery, HW truncation, offline partitions, an emptied ISR, KIP-320 fencing,
    // a consumer's truncation detection and its reset.
    ("power-loss-divergence", None, &[1]),
    // Unclean election, leader-epoch truncation, out-of-order sequences, producer resets.
    ("consumer-truncation", Some("validated"), &[1]),
    // ELR: grown, shrunk, elected from; acks=all below min.insync.
    ("isr-shrink-to-one", Some("safe"), &[1]),
    // KIP-903: the controller refuses a stale broker epoch; a stale AlterPartition.
    ("stale-isr-expansion", Some("broker-epochs"), &[1]),
    ("stale-isr-expansion", None, &[1]),
    // Groups under a failing coordinator, and reads from followers (KIP-392).
    // (14: a heartbeat from a broker's previous registration, a stale broker epoch.)
    ("group-safe", Some("follower-fetch"), &[2, 3, 14, 50]),
    ("zombie-commit", Some("generation-check"), &[1]),
    ("static-membership", None, &[1]),
    // Static members fenced by a coordinator that loaded an older generation.
    ("static-fenced-by-failover", None, &[20]),
    // Raft truncation, the envelope skipping faults, stale broker epochs (KIP-903).
    ("replicated-safe", Some("long"), &[1, 33, 56]),
    // Disk full, I/O errors, offline log directories, every kind of recovery cut.
    ("disk-faults", None, &[1, 2, 3]),
    ("no-idempotence-duplicates", Some("idempotent"), &[1]),
    ("unsynced-loss", None, &[1]),
    // Messages dropped, held back and repeated by message rules.
    ("message-rules", None, &[2]),
    // A controlled shutdown with its clean-shutdown marker; a broker on an empty disk.
    ("broker-lifecycle", None, &[1]),
];

/// Marks no shipped scenario reaches, and why.
const KNOWN_UNREACHED: &[(&str, &str)] = &[
    (
        "raft-journal-cut",
        "controllers sync each Raft record before acting on it and no shipped scenario flips \
         bits on a controller, so a restart finds no torn or corrupt journal tail",
    ),
    ("controller-halted", "no shipped scenario injects disk faults on a controller"),
    (
        "producer-fenced",
        "producers take a new producer id instead of bumping the epoch, and no two producers \
         share one (no transactional.id), so no batch of an older epoch reaches a broker",
    ),
    (
        "consumer-corrupt-record",
        "brokers serve reads from memory and recovery validates every batch's CRC, so bit \
         flips on disk never reach a consumer",
    ),
    (
        "meta-corrupt",
        "bit flips land in proportion to file size and meta/incarnation is a few bytes: \
         disk-faults --variant bit-flips 1..600 never flips it",
    ),
    (
        "malformed-frame",
        "no shipped scenario corrupts frames on the wire (sim/tests/garbage_frames.rs sends \
         garbage directly)",
    ),
];

fn reached_by_runs() -> BTreeMap<Mark, Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scenarios");
    let mut reached: BTreeMap<Mark, Vec<String>> = BTreeMap::new();
    for &(name, variant, seeds) in RUNS {
        let path = root.join(format!("{name}.toml"));
        let scenario = load_variant(&path, variant).unwrap_or_else(|error| panic!("{error}"));
        for &seed in seeds {
            let outcome = run_seed(&scenario, variant, seed);
            assert!(outcome.judgement.met, "{name} {variant:?} seed {seed}: expectation not met");
            for mark in outcome.marks.keys() {
                let run = format!("{name} {} {seed}", variant.unwrap_or("-"));
                reached.entry(*mark).or_default().push(run);
            }
        }
    }
    reached
}

#[test]
fn every_mark_is_reached_by_the_shipped_scenarios_or_known_unreached() {
    for (name, reason) in KNOWN_UNREACHED {
        assert!(Mark::from_name(name).is_some(), "known_unreached names no mark: {name}");
        assert!(!reason.is_empty(), "{name}: say why it is unreached");
    }
    let reached = reached_by_runs();
    let known = |mark: Mark| KNOWN_UNREACHED.iter().any(|(name, _)| *name == mark.name());
    let missing: Vec<&str> = Mark::ALL
        .iter()
        .filter(|&&m| !reached.contains_key(&m) && !known(m))
        .map(|m| m.name())
        .collect();
    assert!(
        missing.is_empty(),
        "marks no listed run reaches (add a run that reaches them, or list them in \
         KNOWN_UNREACHED with the reason): {missing:?}"
    );
    let now_reached: Vec<String> = Mark::ALL
        .iter()
        .filter(|&&m| known(m))
        .filter_map(|m| reached.get(m).map(|runs| format!("{} by {runs:?}", m.name())))
        .collect();
    assert!(
        now_reached.is_empty(),
        "marks listed as known_unreached are reached now; take them off: {now_reached:?}"
    );
}

#[test]
fn docs_coverage_lists_every_mark() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("docs").join("COVERAGE.md");
    let doc = std::fs::read_to_string(&path).expect("docs/COVERAGE.md exists");
    let missing: Vec<&str> = Mark::ALL
        .iter()
        .map(|mark| mark.name())
        .filter(|name| !doc.contains(&format!("| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "docs/COVERAGE.md has no row for {missing:?}");
    for (name, _) in KNOWN_UNREACHED {
        assert!(doc.contains(&format!("| `{name}` | ")), "docs/COVERAGE.md: explain {name}");
    }
}
