//! The same seed in two separate processes gives the same run: `kafkasim run
//! --check-determinism` runs the seed here and in a child process and compares the trace
//! hash, the history and the event log.

use std::process::Command;

#[test]
fn check_determinism_across_processes_agrees() {
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasim"))
        .args(["run", "--seed", "5", "--check-determinism", "--report-dir"])
        .arg(std::env::temp_dir().join("kafkasim-determinism-test"))
        .env("CI", "true")
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("trace hash"), "{stdout}");
}
