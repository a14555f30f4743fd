//! What a sweep leaves for machines: `sweep.json` (every seed's verdict, trace hash,
//! signature and wall time; the failures grouped by signature with their count and smallest
//! seed; the coverage table) and, on request, JUnit XML that CI systems render (one test
//! case per seed, one per must_find anomaly and per `expect.reaches` mark), and `merge`,
//! which joins the sweep.json files of `--shard K/N` runs into the verdict of the whole
//! range. Owns the file formats only: the sweep's judgement comes from `sweep`, signatures
//! from `triage`.

use crate::runner::RunOutcome;
use crate::sweep::{seed_met, SweepJudgement};
use crate::triage::{signature, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One seed of a sweep, as sweep.json lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedLine {
    pub seed: u64,
    pub verdict: String,
    pub met: bool,
    pub trace_hash: String,
    pub wall_secs: f64,
    /// Failing seeds only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// Failing seeds only: the command that replays the seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
}

impl SeedLine {
    pub fn of(outcome: &RunOutcome, reproduce: String) -> SeedLine {
        let met = seed_met(outcome.verdict, &outcome.judgement);
        SeedLine {
            seed: outcome.seed,
            verdict: crate::report::verdict_name(outcome.verdict),
            met,
            trace_hash: crate::report::trace_hash_hex(outcome.trace_hash),
            wall_secs: outcome.stats.wall_secs,
            signature: (!met).then(|| signature(outcome)),
            reproduce: (!met).then_some(reproduce),
        }
    }
}

/// The failing seeds of one signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureGroup {
    pub signature: Signature,
    pub seeds: u64,
    pub smallest_seed: u64,
    pub reproduce: String,
}

/// Failures grouped by signature: most seeds first, then by smallest seed.
pub fn group_failures(lines: &[SeedLine]) -> Vec<SignatureGroup> {
    let mut groups: BTreeMap<&Signature, SignatureGroup> = BTreeMap::new();
    for line in lines {
        let (Some(signature), Some(reproduce)) = (&line.signature, &line.reproduce) else {
            continue;
        };
        let group = groups.entry(signature).or_insert_with(|| SignatureGroup {
            signature: signature.clone(),
            seeds: 0,
            smallest_seed: line.seed,
            reproduce: reproduce.clone(),
        });
        group.seeds += 1;
        if line.seed < group.smallest_seed {
            group.smallest_seed = line.seed;
            group.reproduce = reproduce.clone();
        }
    }
    let mut groups: Vec<SignatureGroup> = groups.into_values().collect();
    groups.sort_by_key(|g| (std::cmp::Reverse(g.seeds), g.smallest_seed));
    groups
}

/// What a sweep was asked to do, for the files' headers.
pub struct SweepHeader<'a> {
    pub scenario: &'a str,
    pub variant: Option<&'a str>,
    pub seeds: String,
    pub shard: Option<String>,
    pub build: String,
    pub wall_secs: f64,
    pub stopped_early: bool,
}

/// sweep.json: what was run, the judgement, failures by signature, coverage, every seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub scenario: String,
    pub variant: Option<String>,
    pub seeds: String,
    /// `K/N` for one shard; the shards a merge joined, comma-separated.
    pub shard: Option<String>,
    pub build: String,
    pub met: bool,
    pub stopped_early: bool,
    /// Wall time of the sweep (a merge: summed over its shards).
    pub wall_secs: f64,
    pub seeds_run: u64,
    pub seeds_failed: u64,
    /// Each must_find anomaly and its first seed within the seed budget.
    pub first_found: BTreeMap<String, Option<u64>>,
    /// `expect.reaches` marks no seed reached.
    pub unreached: Vec<String>,
    pub signatures: Vec<SignatureGroup>,
    /// Mark name -> seeds that reached it.
    pub coverage: BTreeMap<String, u64>,
    /// Every seed, in seed order.
    pub runs: Vec<SeedLine>,
}

/// The sweep.json of a finished sweep.
pub fn sweep_file(
    header: &SweepHeader<'_>,
    judgement: &SweepJudgement,
    lines: &[SeedLine],
) -> SweepFile {
    let mut runs = lines.to_vec();
    runs.sort_by_key(|line| line.seed);
    SweepFile {
        scenario: header.scenario.to_string(),
        variant: header.variant.map(str::to_string),
        seeds: header.seeds.clone(),
        shard: header.shard.clone(),
        build: header.build.clone(),
        met: judgement.met,
        stopped_early: header.stopped_early,
        wall_secs: header.wall_secs,
        seeds_run: judgement.seeds_run,
        seeds_failed: judgement.failed.len() as u64,
        first_found: judgement.first_found.clone(),
        unreached: judgement.unreached.clone(),
        signatures: group_failures(&runs),
        coverage: judgement
            .mark_seeds
            .iter()
            .map(|(m, seeds)| (m.name().to_string(), *seeds))
            .collect(),
        runs,
    }
}

/// The file's JSON text.
pub fn to_json(file: &SweepFile) -> String {
    let mut json = serde_json::to_string_pretty(file).expect("sweep.json always serializes");
    json.push('\n');
    json
}

/// JUnit XML: a test case per seed (failing ones carry their signature and reproduce
/// command), per must_find anomaly and per `expect.reaches` mark left unreached.
pub fn junit_xml(file: &SweepFile) -> String {
    let suite = match &file.variant {
        Some(variant) => format!("{}-{variant}", file.scenario),
        None => file.scenario.clone(),
    };
    let lines = &file.runs;
    let mut cases = String::new();
    let mut failures = 0;
    let mut sorted: Vec<&SeedLine> = lines.iter().collect();
    sorted.sort_by_key(|line| line.seed);
    for line in &sorted {
        let failure = line
            .signature
            .as_ref()
            .map(|s| (s.to_string(), line.reproduce.clone().unwrap_or_default()));
        failures += usize::from(failure.is_some());
        push_case(&mut cases, &suite, &format!("seed {}", line.seed), line.wall_secs, failure);
    }
    for (name, first) in &file.first_found {
        let failure = first
            .is_none()
            .then(|| (format!("{name} was not found within the seed budget"), String::new()));
        failures += usize::from(failure.is_some());
        push_case(&mut cases, &suite, &format!("must find {name}"), 0.0, failure);
    }
    for name in &file.unreached {
        let failure = Some((format!("no seed reached the mark {name}"), String::new()));
        failures += 1;
        push_case(&mut cases, &suite, &format!("reaches {name}"), 0.0, failure);
    }
    let tests = sorted.len() + file.first_found.len() + file.unreached.len();
    let time = file.wall_secs;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"kafkasim sweep\" tests=\"{tests}\" failures=\"{failures}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{time:.3}\">",
        escape(&suite)
    );
    let _ = writeln!(
        xml,
        "    <properties><property name=\"seeds\" value=\"{}\"/><property name=\"build\" value=\"{}\"/></properties>",
        escape(&file.seeds),
        escape(&file.build)
    );
    xml.push_str(&cases);
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Joins the sweep.json files of shards of one sweep (same scenario, variant, seed range
/// and build; no seed twice) into the sweep of their union: each must_find anomaly's first
/// seed over all shards, a mark unreached only if no shard reached it, failures regrouped.
/// Met only when every shard `1..=N` is there and the union meets the expectation.
pub fn merge(files: &[(String, SweepFile)]) -> Result<SweepFile, String> {
    let Some((_, first)) = files.first() else { return Err("no sweep files to merge".into()) };
    let mut shards: Vec<(u64, u64)> = Vec::new();
    for (name, file) in files {
        let same = [
            ("scenario", file.scenario == first.scenario),
            ("variant", file.variant == first.variant),
            ("seeds", file.seeds == first.seeds),
            ("build", file.build == first.build),
        ];
        if let Some((field, _)) = same.iter().find(|(_, same)| !same) {
            return Err(format!("{name}: {field} differs from the first file's"));
        }
        if let Some(shard) = &file.shard {
            let parsed: crate::sweep::Shard =
                shard.parse().map_err(|e| format!("{name}: shard {shard:?}: {e}"))?;
            shards.push((parsed.index, parsed.count));
        }
    }
    let mut runs: Vec<SeedLine> = files.iter().flat_map(|(_, f)| f.runs.iter().cloned()).collect();
    runs.sort_by_key(|line| line.seed);
    if let Some(pair) = runs.windows(2).find(|pair| pair[0].seed == pair[1].seed) {
        return Err(format!("seed {} is in more than one file", pair[0].seed));
    }
    let complete = shard_set_complete(&shards, files.len());
    let mut first_found = first.first_found.clone();
    for (_, file) in files {
        for (name, seed) in &file.first_found {
            let held = first_found.entry(name.clone()).or_insert(None);
            *held = match (*held, *seed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let mut coverage: BTreeMap<String, u64> = BTreeMap::new();
    for (_, file) in files {
        for (mark, seeds) in &file.coverage {
            *coverage.entry(mark.clone()).or_insert(0) += seeds;
        }
    }
    let unreached: Vec<String> = first
        .unreached
        .iter()
        .filter(|mark| files.iter().all(|(_, f)| f.unreached.contains(mark)))
        .cloned()
        .collect();
    let seeds_failed = runs.iter().filter(|line| !line.met).count() as u64;
    let stopped_early = files.iter().any(|(_, f)| f.stopped_early);
    let met = complete
        && !stopped_early
        && seeds_failed == 0
        && !runs.is_empty()
        && first_found.values().all(Option::is_some)
        && unreached.is_empty();
    let shard_names: Vec<String> = files.iter().filter_map(|(_, f)| f.shard.clone()).collect();
    Ok(SweepFile {
        scenario: first.scenario.clone(),
        variant: first.variant.clone(),
        seeds: first.seeds.clone(),
        shard: (!shard_names.is_empty()).then(|| shard_names.join(",")),
        build: first.build.clone(),
        met,
        stopped_early,
        wall_secs: files.iter().map(|(_, f)| f.wall_secs).sum(),
        seeds_run: runs.len() as u64,
        seeds_failed,
        first_found,
        unreached,
        signatures: group_failures(&runs),
        coverage,
        runs,
    })
}

/// Every shard `1..=N` of one N once, or a single unsharded file.
fn shard_set_complete(shards: &[(u64, u64)], files: usize) -> bool {
    if shards.is_empty() {
        return files == 1;
    }
    let count = shards[0].1;
    let mut indices: Vec<u64> = shards.iter().map(|&(index, _)| index).collect();
    indices.sort_unstable();
    shards.len() == files
        && shards.iter().all(|&(_, n)| n == count)
        && indices == (1..=count).collect::<Vec<u64>>()
}

fn push_case(
    out: &mut String,
    suite: &str,
    name: &str,
    secs: f64,
    failure: Option<(String, String)>,
) {
    let open = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{secs:.3}\"",
        escape(suite),
        escape(name)
    );
    match failure {
        None => {
            let _ = writeln!(out, "{open}/>");
        }
        Some((message, body)) => {
            let _ = writeln!(out, "{open}>");
            let _ = writeln!(
                out,
                "      <failure message=\"{}\">{}</failure>",
                escape(&message),
                escape(&body)
            );
            out.push_str("    </testcase>\n");
        }
    }
}

/// Escapes text for XML attributes and character data (and HTML); drops characters XML 1.0
/// forbids.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seed: u64, signature: Option<&str>) -> SeedLine {
        SeedLine {
            seed,
            verdict: if signature.is_some() { "safety" } else { "pass" }.into(),
            met: signature.is_none(),
            trace_hash: format!("{seed:016x}"),
            wall_secs: 0.5,
            signature: signature.map(|anomaly| Signature {
                verdict: "safety".into(),
                anomalies: vec![anomaly.into()],
                problems: Vec::new(),
                faults: vec!["pause".into()],
            }),
            reproduce: signature.map(|_| format!("kafkasim run s.toml --seed {seed}")),
        }
    }

    fn header() -> SweepHeader<'static> {
        SweepHeader {
            scenario: "s",
            variant: None,
            seeds: "1..4".into(),
            shard: None,
            build: "test".into(),
            wall_secs: 2.0,
            stopped_early: false,
        }
    }

    #[test]
    fn failures_group_by_signature_with_their_smallest_seed() {
        let lines = [
            line(4, Some("lost-write")),
            line(1, None),
            line(3, Some("lost-write")),
            line(2, Some("duplicate")),
        ];
        let groups = group_failures(&lines);
        let summary: Vec<(String, u64, u64)> = groups
            .iter()
            .map(|g| (g.signature.anomalies.join(","), g.seeds, g.smallest_seed))
            .collect();
        assert_eq!(summary, [("lost-write".into(), 2, 3), ("duplicate".into(), 1, 2)]);
        assert_eq!(groups[0].reproduce, "kafkasim run s.toml --seed 3");
    }

    #[test]
    fn junit_has_a_case_per_seed_and_escapes_its_text() {
        let lines = [line(1, None), line(2, Some("lost<write>&"))];
        let mut judgement = SweepJudgement::default();
        judgement.first_found.insert("poll-skip".into(), None);
        let xml = junit_xml(&sweep_file(&header(), &judgement, &lines));
        assert!(xml.contains("tests=\"3\" failures=\"2\""), "{xml}");
        assert!(xml.contains("name=\"seed 1\" time=\"0.500\"/>"), "{xml}");
        assert!(xml.contains("anomalies lost&lt;write&gt;&amp;"), "{xml}");
        assert!(xml.contains("name=\"must find poll-skip\""), "{xml}");
        assert_eq!(xml.matches("<testcase").count(), 3);
    }

    #[test]
    fn sweep_json_lists_every_seed_in_order_and_the_groups() {
        let lines = [line(2, Some("duplicate")), line(1, None)];
        let judgement = SweepJudgement { seeds_run: 2, failed: vec![2], ..Default::default() };
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&sweep_file(&header(), &judgement, &lines)))
                .expect("json");
        let seeds: Vec<u64> =
            json["runs"].as_array().unwrap().iter().map(|r| r["seed"].as_u64().unwrap()).collect();
        assert_eq!(seeds, [1, 2]);
        assert_eq!(json["signatures"][0]["smallest_seed"], 2);
        assert_eq!(json["seeds_failed"], 1);
        assert!(json["runs"][0].get("signature").is_none(), "passing seeds carry none");
    }

    fn shard(index: u64, lines: &[SeedLine], found: Option<u64>) -> (String, SweepFile) {
        let mut judgement = SweepJudgement::default();
        judgement.first_found.insert("lost-write".into(), found);
        let mut header = header();
        header.shard = Some(format!("{index}/2"));
        (format!("shard {index}"), sweep_file(&header, &judgement, lines))
    }

    #[test]
    fn a_merge_joins_shards_and_finds_what_any_shard_found() {
        let a = shard(1, &[line(1, None), line(3, None)], None);
        let b = shard(2, &[line(2, None), line(4, None)], Some(4));
        let merged = merge(&[a.clone(), b.clone()]).expect("merges");
        assert_eq!(merged.seeds_run, 4);
        assert_eq!(merged.first_found["lost-write"], Some(4));
        assert!(merged.met);
        assert!(!merge(std::slice::from_ref(&a)).expect("merges").met, "shard 2 of 2 missing");
        assert!(merge(&[a.clone(), a.clone()]).is_err(), "seed 1 twice");
        let mut other = b;
        other.1.build = "another".into();
        assert_eq!(merge(&[a, other]).unwrap_err(), "shard 2: build differs from the first file's");
    }
}
