//! The benchmark behind `kafkasim bench`: how many seeds the testbed can afford. Runs each
//! benchmark scenario for a few seeds and a raw madsim baseline (TCP ping-pong between two
//! nodes) in the same process, and reports wall time per seed, simulated seconds per wall
//! second, records and messages per wall second, peak memory, and messages/s as a ratio to
//! the baseline. A benchmark, never a timed test (DESIGN.md, "What fast means").
//!
//! Also owns `Stopwatch`, the one wall clock of the testbed: it measures the testbed, never
//! feeds a run.

use crate::runner::run_seed;
use crate::scenario::Scenario;
use serde::Serialize;
use std::time::Duration;

/// Round trips of the baseline: 200k messages, enough to dwarf runtime start-up.
pub const BASELINE_ROUND_TRIPS: u64 = 100_000;
/// Bytes of payload per baseline frame: a small Kafka request.
const BASELINE_FRAME_BYTES: usize = 64;
/// Connect attempts while the server node binds (each 1 ms of simulated time apart).
const BASELINE_CONNECT_ATTEMPTS_MAX: u32 = 1_000;

/// Wall-clock time for measuring the testbed itself (never inside a run).
pub struct Stopwatch {
    #[allow(clippy::disallowed_types)] // measures the testbed, never feeds a run
    started: std::time::Instant,
}

impl Stopwatch {
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)] // see Stopwatch
    pub fn start() -> Stopwatch {
        Stopwatch { started: std::time::Instant::now() }
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Figures of one benchmark scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioFigures {
    pub scenario: String,
    pub seeds: u64,
    pub wall_secs_per_seed: Vec<f64>,
    pub wall_secs_mean: f64,
    pub simulated_secs_per_wall_sec: f64,
    pub records_acked_per_sec: f64,
    pub messages_per_sec: f64,
    /// messages_per_sec / the baseline's messages_per_sec.
    pub messages_ratio_to_baseline: f64,
    /// Verdict names per seed: a benchmark of crashing runs measures little.
    pub verdicts: Vec<String>,
}

/// Figures of the raw madsim baseline.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineFigures {
    pub round_trips: u64,
    pub messages: u64,
    pub wall_secs: f64,
    pub simulated_secs: f64,
    pub messages_per_sec: f64,
}

/// Everything `kafkasim bench` measured (written to reports/bench.json).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub build: String,
    pub baseline: BaselineFigures,
    pub scenarios: Vec<ScenarioFigures>,
    /// Peak resident set of the process (VmHWM), KiB; None off Linux.
    pub peak_rss_kib: Option<u64>,
}

/// Runs the baseline, then `seeds` seeds (1..=seeds) of each scenario.
pub fn run_bench(scenarios: &[Scenario], seeds: u64, build: &str) -> BenchReport {
    let baseline = run_baseline(BASELINE_ROUND_TRIPS);
    let figures =
        scenarios.iter().map(|scenario| bench_scenario(scenario, seeds, &baseline)).collect();
    BenchReport {
        build: build.to_string(),
        baseline,
        scenarios: figures,
        peak_rss_kib: peak_rss_kib(),
    }
}

fn bench_scenario(scenario: &Scenario, seeds: u64, baseline: &BaselineFigures) -> ScenarioFigures {
    let mut wall_secs_per_seed = Vec::new();
    let mut verdicts = Vec::new();
    let (mut simulated, mut acked, mut messages) = (0.0, 0u64, 0u64);
    for seed in 1..=seeds {
        let stopwatch = Stopwatch::start();
        let outcome = run_seed(scenario, None, seed);
        wall_secs_per_seed.push(stopwatch.elapsed_secs());
        verdicts.push(crate::report::verdict_name(outcome.verdict));
        simulated += outcome.stats.simulated_secs;
        acked += outcome.stats.records_acked;
        messages += outcome.stats.messages;
    }
    let wall: f64 = wall_secs_per_seed.iter().sum();
    let per_wall = |x: f64| if wall > 0.0 { x / wall } else { 0.0 };
    let messages_per_sec = per_wall(messages as f64);
    ScenarioFigures {
        scenario: scenario.name.clone(),
        seeds,
        wall_secs_mean: if seeds > 0 { wall / seeds as f64 } else { 0.0 },
        wall_secs_per_seed,
        simulated_secs_per_wall_sec: per_wall(simulated),
        records_acked_per_sec: per_wall(acked as f64),
        messages_per_sec,
        messages_ratio_to_baseline: if baseline.messages_per_sec > 0.0 {
            messages_per_sec / baseline.messages_per_sec
        } else {
            0.0
        },
        verdicts,
    }
}

/// TCP ping-pong between two madsim nodes: `round_trips` length-prefixed frames each way,
/// in its own runtime on a fresh thread (as every seed runs).
pub fn run_baseline(round_trips: u64) -> BaselineFigures {
    #[allow(clippy::disallowed_methods)]
    // the baseline runs in its own runtime on a fresh thread, like a seed
    let worker = std::thread::spawn(move || {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        let stopwatch = Stopwatch::start();
        let simulated = runtime.block_on(ping_pong(round_trips));
        (stopwatch.elapsed_secs(), simulated)
    });
    let (wall_secs, simulated) = worker.join().expect("the baseline ping-pong panicked");
    let messages = round_trips * 2;
    BaselineFigures {
        round_trips,
        messages,
        wall_secs,
        simulated_secs: simulated.as_secs_f64(),
        messages_per_sec: if wall_secs > 0.0 { messages as f64 / wall_secs } else { 0.0 },
    }
}

async fn ping_pong(round_trips: u64) -> Duration {
    use madsim::net::{TcpListener, TcpStream};
    const SERVER: &str = "10.0.0.1:9092";
    let handle = madsim::runtime::Handle::current();
    let server = handle.create_node().name("server").ip([10, 0, 0, 1].into()).build();
    let client = handle.create_node().name("client").ip([10, 0, 0, 2].into()).build();
    server.spawn(async move {
        let listener = TcpListener::bind(SERVER).await.expect("the baseline server binds");
        let (mut stream, _) = listener.accept().await.expect("the baseline client connects");
        let mut frame = Vec::new();
        while read_frame(&mut stream, &mut frame).await.is_ok() {
            write_frame(&mut stream, &frame).await.expect("the baseline echo is written");
        }
    });
    let started = madsim::time::TimeHandle::current().elapsed();
    client
        .spawn(async move {
            let mut stream = None;
            for _ in 0..BASELINE_CONNECT_ATTEMPTS_MAX {
                match TcpStream::connect(SERVER).await {
                    Ok(connected) => {
                        stream = Some(connected);
                        break;
                    }
                    Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
                }
            }
            let mut stream =
                stream.expect("the baseline server listens within the connect attempts");
            let request = vec![7u8; BASELINE_FRAME_BYTES];
            let mut reply = Vec::new();
            for round_trip in 0..round_trips {
                write_frame(&mut stream, &request).await.expect("the baseline request is written");
                read_frame(&mut stream, &mut reply).await.expect("the baseline reply arrives");
                assert_eq!(reply, request, "echo mismatch on round trip {round_trip}");
            }
        })
        .await
        .expect("the baseline client finishes");
    madsim::time::TimeHandle::current().elapsed() - started
}

async fn write_frame(stream: &mut madsim::net::TcpStream, payload: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let length = u32::try_from(payload.len()).expect("baseline frames are small");
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(payload).await?;
    stream.flush().await
}

async fn read_frame(
    stream: &mut madsim::net::TcpStream,
    frame: &mut Vec<u8>,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    frame.resize(u32::from_be_bytes(length) as usize, 0);
    stream.read_exact(frame).await?;
    Ok(())
}

/// Peak resident set size of this process in KiB (VmHWM in /proc/self/status).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A small baseline proves the ping-pong works; its speed is the benchmark's business.
    #[test]
    fn baseline_ping_pong_completes() {
        let figures = run_baseline(50);
        assert_eq!(figures.messages, 100);
        assert!(figures.simulated_secs > 0.0, "messages take simulated time");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().is_some_and(|kib| kib > 0));
        }
    }
}
