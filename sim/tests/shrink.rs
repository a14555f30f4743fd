//! `shrink` keeps the finding and loses the rest: unsynced-loss seed 3 (acks=1, no fsync,
//! the random nemesis crashes the lone broker) shrinks to at most a quarter of the fault
//! steps and records, the file written replays the same finding, and a second shrink gives
//! the same file.

use sim::runner::run_seed;
use sim::scenario::{load_variant, parse};
use sim::shrink::{shrink, shrunk_file, Finding};
use std::path::Path;

#[test]
fn unsynced_loss_seed_3_shrinks_to_a_quarter_and_replays() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/unsynced-loss.toml");
    let scenario = load_variant(&path, None).expect("loads");
    let shrunk = shrink(&scenario, None, 3, 200).expect("seed 3 finds lost-write");
    assert_eq!(shrunk.finding.anomalies, ["lost-write"]);
    let (before, after) = (&shrunk.before, &shrunk.after);
    assert!(before.random_nemesis && !after.random_nemesis, "{before} -> {after}");
    assert!(after.fault_steps * 4 <= before.fault_steps, "{before} -> {after}");
    assert!(after.records_sent * 4 <= before.records_sent, "{before} -> {after}");

    let text = shrunk_file(&shrunk, "scenarios/unsynced-loss.toml", None, 3);
    let replayed = run_seed(&parse(&text, "shrunk.toml").expect("the file parses"), None, 3);
    assert_eq!(Finding::of(&replayed), shrunk.finding);

    let again = shrink(&scenario, None, 3, 200).expect("shrinks again");
    assert_eq!(shrunk_file(&again, "scenarios/unsynced-loss.toml", None, 3), text, "deterministic");
}

#[test]
fn a_passing_seed_has_nothing_to_shrink() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/unsynced-loss.toml");
    let flushed = load_variant(&path, Some("flushed")).expect("loads");
    let error = shrink(&flushed, Some("flushed"), 3, 10).err().expect("seed 3 passes flushed");
    assert!(error.contains("nothing to shrink"), "{error}");
}
