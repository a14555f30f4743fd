//! A swarm seed replays byte for byte in a second process, draw included: `kafkasim run
//! scenarios/swarm.toml --seed N --check-determinism` prints the drawn point first and
//! compares trace hash, history and event log with a child process.

use std::process::Command;

#[test]
fn a_swarm_seed_replays_across_processes() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/swarm.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(["run", scenario, "--seed", "2", "--check-determinism", "--report-dir"])
        .arg(std::env::temp_dir().join("kafkasim-swarm-determinism-test"))
        .env("CI", "true")
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("a second process reproduced"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let swarm_line = stdout.lines().position(|l| l.starts_with("swarm "));
    let verdict_line = stdout.lines().position(|l| l.starts_with("verdict "));
    assert!(swarm_line.is_some() && swarm_line < verdict_line, "the point prints first:\n{stdout}");
}
