//! Seeds that scenario files promise, replayed from the files themselves: every
//! `expect.known_seeds` seed of every shipped scenario (and variant) meets its expectation
//! and finds what the scenario must find. And `scenario_sweep`: every shipped scenario and
//! variant over the seeds in `KAFKASIM_SEEDS` (`A..B`, `A..=B` or `N`; seed 1 when unset),
//! each meeting its expectation, so a deeper run needs no code change:
//! `KAFKASIM_SEEDS=1..500 cargo test --release --test known_seeds -- scenario_sweep`.

use sim::runner::run_seed;
use sim::scenario::{load_variant, variants, Scenario};
use sim::sweep::SeedRange;
use std::path::{Path, PathBuf};

/// Every shipped scenario file with its variants (None: the file as written).
fn shipped() -> Vec<(PathBuf, Option<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        runs.push((path.clone(), None));
        runs.extend(variants(&text).into_iter().map(|(name, _)| (path.clone(), Some(name))));
    }
    runs
}

fn load(path: &Path, variant: Option<&str>) -> Scenario {
    load_variant(path, variant).unwrap_or_else(|error| panic!("{error}"))
}

fn label(path: &Path, variant: Option<&str>) -> String {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    match variant {
        Some(variant) => format!("{name} --variant {variant}"),
        None => name.to_string(),
    }
}

#[test]
fn known_seeds_find_what_their_scenario_must_find() {
    let mut replayed = 0;
    for (path, variant) in shipped() {
        let variant = variant.as_deref();
        let scenario = load(&path, variant);
        // A safe twin inherits its file's known seeds but must find nothing.
        if scenario.expect.must_find.is_empty() {
            continue;
        }
        for &seed in &scenario.expect.known_seeds {
            let outcome = run_seed(&scenario, variant, seed);
            let run = format!("{} --seed {seed}", label(&path, variant));
            assert!(outcome.judgement.met, "{run}: not met: {:?}", outcome.judgement);
            assert!(
                !outcome.judgement.found_expected.is_empty(),
                "{run}: a known seed found none of {:?}: {:?}",
                scenario.expect.must_find,
                outcome.judgement
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 30, "only {replayed} known seeds: did the scenario files lose them?");
}

#[test]
fn scenario_sweep() {
    let seeds: SeedRange = match std::env::var("KAFKASIM_SEEDS") {
        Ok(text) => text.parse().unwrap_or_else(|error| panic!("KAFKASIM_SEEDS: {error}")),
        Err(_) => "1".parse().expect("a seed"),
    };
    for (path, variant) in shipped() {
        let variant = variant.as_deref();
        let scenario = load(&path, variant);
        for seed in seeds.seeds(None) {
            let outcome = run_seed(&scenario, variant, seed);
            assert!(
                outcome.judgement.met,
                "{} --seed {seed}: not met: {:?}",
                label(&path, variant),
                outcome.judgement
            );
        }
    }
}
