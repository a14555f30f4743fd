//! What a sweep leaves for machines: `sweep.json` (every seed's verdict, trace hash,
//! signature and wall time; the failures grouped by signature with their count and smallest
//! seed; the coverage table) and, on request, JUnit XML that CI systems render (one test
//! case per seed, one per must_find anomaly and per `expect.reaches` mark). Owns the file
//! formats only: the sweep's judgement comes from `sweep`, signatures from `triage`.

use crate::runner::RunOutcome;
use crate::sweep::{seed_met, SweepJudgement};
use crate::triage::{signature, Signature};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One seed of a sweep, as sweep.json lists it.
#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
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

#[derive(Serialize)]
struct SweepJson<'a> {
    scenario: &'a str,
    variant: Option<&'a str>,
    seeds: &'a str,
    shard: Option<&'a str>,
    build: &'a str,
    met: bool,
    stopped_early: bool,
    wall_secs: f64,
    seeds_run: u64,
    seeds_failed: usize,
    first_found: &'a BTreeMap<String, Option<u64>>,
    unreached: &'a [String],
    signatures: Vec<SignatureGroup>,
    coverage: BTreeMap<&'static str, u64>,
    runs: &'a [SeedLine],
}

/// sweep.json: the header, the judgement, failures by signature, coverage, every seed.
pub fn sweep_json(
    header: &SweepHeader<'_>,
    judgement: &SweepJudgement,
    lines: &[SeedLine],
) -> String {
    let mut runs: Vec<&SeedLine> = lines.iter().collect();
    runs.sort_by_key(|line| line.seed);
    let runs: Vec<SeedLine> = runs.into_iter().cloned().collect();
    let file = SweepJson {
        scenario: header.scenario,
        variant: header.variant,
        seeds: &header.seeds,
        shard: header.shard.as_deref(),
        build: &header.build,
        met: judgement.met,
        stopped_early: header.stopped_early,
        wall_secs: header.wall_secs,
        seeds_run: judgement.seeds_run,
        seeds_failed: judgement.failed.len(),
        first_found: &judgement.first_found,
        unreached: &judgement.unreached,
        signatures: group_failures(&runs),
        coverage: judgement.mark_seeds.iter().map(|(mark, seeds)| (mark.name(), *seeds)).collect(),
        runs: &runs,
    };
    let mut json = serde_json::to_string_pretty(&file).expect("sweep.json always serializes");
    json.push('\n');
    json
}

/// JUnit XML: a test case per seed (failing ones carry their signature and reproduce
/// command), per must_find anomaly and per `expect.reaches` mark left unreached.
pub fn junit_xml(
    header: &SweepHeader<'_>,
    judgement: &SweepJudgement,
    lines: &[SeedLine],
) -> String {
    let suite = match header.variant {
        Some(variant) => format!("{}-{variant}", header.scenario),
        None => header.scenario.to_string(),
    };
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
    for (name, first) in &judgement.first_found {
        let failure = first
            .is_none()
            .then(|| (format!("{name} was not found within the seed budget"), String::new()));
        failures += usize::from(failure.is_some());
        push_case(&mut cases, &suite, &format!("must find {name}"), 0.0, failure);
    }
    for name in &judgement.unreached {
        let failure = Some((format!("no seed reached the mark {name}"), String::new()));
        failures += 1;
        push_case(&mut cases, &suite, &format!("reaches {name}"), 0.0, failure);
    }
    let tests = sorted.len() + judgement.first_found.len() + judgement.unreached.len();
    let time = header.wall_secs;
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
        escape(&header.seeds),
        escape(&header.build)
    );
    xml.push_str(&cases);
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
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

/// Escapes text for XML attributes and character data; drops characters XML 1.0 forbids.
fn escape(text: &str) -> String {
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
        let xml = junit_xml(&header(), &judgement, &lines);
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
            serde_json::from_str(&sweep_json(&header(), &judgement, &lines)).expect("json");
        let seeds: Vec<u64> =
            json["runs"].as_array().unwrap().iter().map(|r| r["seed"].as_u64().unwrap()).collect();
        assert_eq!(seeds, [1, 2]);
        assert_eq!(json["signatures"][0]["smallest_seed"], 2);
        assert_eq!(json["seeds_failed"], 1);
        assert!(json["runs"][0].get("signature").is_none(), "passing seeds carry none");
    }
}
