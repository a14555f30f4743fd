//! What a sweep leaves for machines, end to end through the binary: a sweep of a scenario
//! whose bug (truncation to the high watermark, pre-KIP-101) is judged against a "pass"
//! expectation fails on seed 2; `--fail-fast` stops there, sweep.json groups the failure
//! by signature with its smallest seed, and `--junit` writes a failing test case for it.
//! (The one worker may already have taken seed 3 when the stop comes: seeds in flight
//! finish.)

use std::path::PathBuf;
use std::process::Command;

/// hw-truncation with its expectation replaced by "pass": what it finds is forbidden.
fn failing_scenario(dir: &std::path::Path) -> PathBuf {
    let source = include_str!("../../scenarios/hw-truncation.toml");
    let start = source.find("[expect]").expect("hw-truncation has [expect]");
    let end = source[start..].find("\n[variants").map_or(source.len(), |i| start + i);
    let text = format!("{}[expect]\nverdict = \"pass\"\n{}", &source[..start], &source[end..]);
    let path = dir.join("hw-truncation-as-pass.toml");
    std::fs::write(&path, text).expect("writes the scenario");
    path
}

#[test]
fn a_failing_sweep_stops_early_and_leaves_json_and_junit() {
    let dir = std::env::temp_dir().join(format!("kafkasim-sweep-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = failing_scenario(&dir);
    let junit = dir.join("sweep.xml");
    let reports = dir.join("reports");
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .arg("sweep")
        .arg(&scenario)
        .args(["--seeds", "1..5", "--jobs", "1", "--fail-fast", "--junit"])
        .arg(&junit)
        .arg("--report-dir")
        .arg(&reports)
        .env("CI", "true")
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("stopped    --fail-fast: "), "{stdout}");

    let json = std::fs::read_to_string(reports.join("hw-truncation").join("sweep.json"))
        .expect("sweep.json beside the reports");
    let json: serde_json::Value = serde_json::from_str(&json).expect("sweep.json parses");
    assert_eq!((json["met"].as_bool(), json["stopped_early"].as_bool()), (Some(false), Some(true)));
    let seeds: Vec<u64> = json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| run["seed"].as_u64().expect("seed"))
        .collect();
    assert!(seeds.starts_with(&[1, 2]) && seeds.len() <= 3, "{seeds:?}");
    let group = &json["signatures"][0];
    assert_eq!(group["smallest_seed"].as_u64(), Some(2), "{json}");
    assert_eq!(group["signature"]["verdict"].as_str(), Some("safety"));
    assert!(json["runs"][1]["trace_hash"].as_str().is_some_and(|h| h.len() == 16));

    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    let suite =
        format!("<testsuite name=\"hw-truncation\" tests=\"{}\" failures=\"1\"", seeds.len());
    assert!(xml.contains(&suite), "{xml}");
    assert!(xml.contains("name=\"seed 2\""), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}
