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

    let index = std::fs::read_to_string(reports.join("hw-truncation").join("index.html"))
        .expect("index.html beside sweep.json");
    assert!(index.contains("<a href=\"2/report.html\">2</a>"), "{index}");
    assert!(reports.join("hw-truncation").join("2").join("report.html").exists());

    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    let suite =
        format!("<testsuite name=\"hw-truncation\" tests=\"{}\" failures=\"1\"", seeds.len());
    assert!(xml.contains(&suite), "{xml}");
    assert!(xml.contains("name=\"seed 2\""), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn kafkasim(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(args)
        .arg("--report-dir")
        .arg(dir.join("reports"))
        .env("CI", "true")
        .output()
        .expect("runs the binary")
}

fn sweep_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("parses");
    // Wall times differ from run to run; everything else must agree.
    json["wall_secs"] = serde_json::Value::Null;
    for run in json["runs"].as_array_mut().expect("runs") {
        run["wall_secs"] = serde_json::Value::Null;
    }
    json
}

/// Three shard processes, merged, give the single sweep's verdict, seeds, trace hashes,
/// first finds and coverage (a "find" scenario: unsynced-loss must find lost-write).
#[test]
fn merged_shards_equal_the_single_sweep() {
    let dir = std::env::temp_dir().join(format!("kafkasim-merge-{}", std::process::id()));
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/unsynced-loss.toml");
    let single = kafkasim(&["sweep", scenario, "--seeds", "1..6", "--jobs", "2"], &dir);
    assert_eq!(single.status.code(), Some(0), "{}", String::from_utf8_lossy(&single.stdout));
    let out = dir.join("reports").join("unsynced-loss");
    let mut files = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let run = kafkasim(
            &["sweep", scenario, "--seeds", "1..6", "--jobs", "1", "--shard", &shard],
            &dir,
        );
        assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
        files.push(out.join(format!("sweep-{k}-of-3.json")));
    }
    let merged_path = dir.join("merged.json");
    let mut args = vec!["merge".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let merge = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(&args)
        .arg("--out")
        .arg(&merged_path)
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&merge.stdout);
    assert_eq!(merge.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("expectation met"), "{stdout}");

    let single = sweep_json(&out.join("sweep.json"));
    let merged = sweep_json(&merged_path);
    for field in
        ["met", "seeds_run", "seeds_failed", "first_found", "unreached", "coverage", "runs"]
    {
        assert_eq!(merged[field], single[field], "{field}");
    }
    assert_eq!(merged["shard"], "1/3,2/3,3/3");

    // Two shards of three are not the range: the merge says so.
    let partial = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .arg("merge")
        .args(&files[..2])
        .output()
        .expect("runs the binary");
    assert_eq!(partial.status.code(), Some(1), "{}", String::from_utf8_lossy(&partial.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
