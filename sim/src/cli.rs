//! The `kafkasim` command line: argument parsing, what each command prints, and exit codes
//! (DESIGN.md: 0 pass, 1 safety, 2 usage or scenario error, 3 liveness, 4 non-determinism,
//! 5 crash). Commands delegate: runs to `runner`, sweeps to `sweep`, reports to `report`,
//! the benchmark to `bench`. Every failure prints the command that reproduces it.

use crate::bench::{run_bench, BenchReport, Stopwatch};
use crate::report::{
    anomalies_of, events_jsonl, figure_lines, judgement_lines, reproduce_command,
    scenario_report_dir, trace_hash_hex, verdict_name, write_report_with,
};
use crate::runner::{run_seed, RunOutcome, Verdict, EXIT_USAGE};
use crate::scenario::{self, ExpectedVerdict, Scenario, ScenarioError};
use crate::sweep::{
    anomalies_shown, judge_sweep, run_sweep, seed_met, Flow, SeedRange, SeedResult, Shard,
    SweepJudgement,
};
use crate::sweep_files::{
    self, group_failures, junit_xml, sweep_file, SeedLine, SweepFile, SweepHeader,
};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The embedded default scenario of `kafkasim run`.
pub const QUICKSTART_TOML: &str = include_str!("../../scenarios/quickstart.toml");
/// The replicated benchmark scenario, embedded so `kafkasim bench` needs no files.
const REPLICATED_SAFE_TOML: &str = include_str!("../../scenarios/replicated-safe.toml");
/// The consumer-group benchmark scenario, embedded likewise.
const GROUP_SAFE_TOML: &str = include_str!("../../scenarios/group-safe.toml");
const QUICKSTART_ORIGIN: &str = "embedded scenarios/quickstart.toml";
/// A sweep larger than this is a typo, not a plan.
const SWEEP_SEEDS_MAX: u64 = 100_000_000;
/// Failing seeds listed one per line in a sweep summary; the rest are counted.
const SWEEP_FAILURES_LISTED_MAX: usize = 50;

#[derive(Debug, Parser)]
#[command(
    name = "kafkasim",
    version,
    about = "Deterministic simulation testbed for a Kafka-like event log"
)]
pub struct Cli {
    /// Log filter for stderr: error, warn (faults injected), info (state changes), debug
    /// (messages), trace, or a tracing EnvFilter directive. Default: warn for one run, error
    /// for sweeps and benchmarks (thousands of runs).
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Without a command: `run` (the embedded quickstart, seed 1).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one seed of a scenario (the embedded quickstart when none is given).
    Run(RunArgs),
    /// Run one seed and replay it in a second process: `run --check-determinism`.
    Replay(RunArgs),
    /// Run a range of seeds concurrently and judge them against the expectation.
    Sweep(SweepArgs),
    /// Join the sweep.json files of `sweep --shard K/N` runs into the verdict of the range.
    Merge(MergeArgs),
    /// Shrink a seed's finding to the smallest scenario that still shows it on that seed.
    Shrink(ShrinkArgs),
    /// Run the checker on a recorded history.jsonl.
    Check(CheckArgs),
    /// Write a recorded history.jsonl as EDN, for Jepsen's tools.
    Export(ExportArgs),
    /// List the scenario files of a directory with their intent and variants.
    Scenarios {
        /// Directory of scenario files.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Measure seeds per second against a raw madsim baseline.
    Bench(BenchArgs),
    /// Print the scenario one seed runs as a plain scenario file: a swarm's drawn point
    /// written in, the variant applied. Running it with the same seed replays that seed, even
    /// after the swarm's ranges change.
    Draw(DrawArgs),
    /// Internal: run one seed and write its digest (for --check-determinism).
    #[command(name = "__digest", hide = true)]
    Digest(DigestArgs),
}

#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Scenario file; the embedded quickstart when omitted.
    pub scenario: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A `[variants.<name>]` of the scenario file.
    #[arg(long)]
    pub variant: Option<String>,
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Replay the seed in a second process and compare trace hash, history and event log.
    #[arg(long)]
    pub check_determinism: bool,
}

#[derive(Clone, Debug, Args)]
pub struct SweepArgs {
    pub scenario: PathBuf,
    /// Seeds A..B, both ends included (also A..=B, or one seed N).
    #[arg(long)]
    pub seeds: SeedRange,
    /// Worker threads (default: the available parallelism).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only shard K of N (1-based): the seeds whose position in the range is K-1 mod N.
    #[arg(long)]
    pub shard: Option<Shard>,
    #[arg(long)]
    pub variant: Option<String>,
    /// Reports of failing seeds go under <dir>/<scenario>[-<variant>]/<seed>/, and the
    /// sweep's sweep.json (every seed's verdict, trace hash, signature, wall time) beside them.
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Stop at the first seed that fails (seeds already running still finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Also write JUnit XML to this file: a test case per seed, per must_find anomaly and
    /// per unreached `expect.reaches` mark.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct ShrinkArgs {
    pub scenario: PathBuf,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub variant: Option<String>,
    /// Where the shrunk scenario goes (default: <report-dir>/<scenario>[-<variant>]/<seed>/shrunk.toml).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// At most this many candidate runs.
    #[arg(long, default_value_t = 400)]
    pub max_runs: u32,
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
}

#[derive(Clone, Debug, Args)]
pub struct MergeArgs {
    /// The shards' sweep files (`sweep-K-of-N.json`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged sweep.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write JUnit XML of the merged sweep here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    pub history: PathBuf,
    /// EDN, one op map per line (the only format so far).
    #[arg(long)]
    pub edn: bool,
    /// Where the EDN goes (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    pub history: PathBuf,
    /// The scenario the history came from (what it allows).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Seeds per scenario (1..=N).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Benchmark scenario files (repeatable); the embedded quickstart, replicated-safe and
    /// group-safe when none.
    #[arg(long = "scenario")]
    pub scenarios: Vec<PathBuf>,
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
}

#[derive(Clone, Debug, Args)]
pub struct DrawArgs {
    pub scenario: PathBuf,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, Args)]
pub struct DigestArgs {
    pub scenario: Option<PathBuf>,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub variant: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
}

/// What two executions of a seed must agree on, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDigest {
    pub trace_hash: u64,
    pub verdict: Verdict,
    pub history_jsonl: String,
    pub events_jsonl: String,
}

/// The first place two executions of a seed differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// "history.jsonl", "events.jsonl", "trace hash" or "verdict".
    pub what: String,
    /// 1-based line in `what` (0 for the trace hash and verdict).
    pub line: usize,
    pub first: String,
    pub second: String,
}

/// Parses the command line, runs the command and returns the process exit code. clap's own
/// errors exit 2 before this returns.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // `kafkasim` alone (and so `cargo run --release`) runs the embedded default scenario.
    let command = match cli.command {
        Some(command) => command,
        None => Cli::parse_from(["kafkasim", "run"]).command.expect("`run` parses as a command"),
    };
    let many_runs = matches!(command, Command::Sweep(_) | Command::Bench(_));
    let log = cli.log.clone().unwrap_or_else(|| if many_runs { "error" } else { "warn" }.into());
    if let Err(error) = init_logging(&log) {
        eprintln!("kafkasim: --log {log}: {error}");
        return EXIT_USAGE;
    }
    match command {
        Command::Run(args) => cmd_run(&args, args.check_determinism, &log),
        Command::Replay(args) => cmd_run(&args, true, &log),
        Command::Sweep(args) => cmd_sweep(&args),
        Command::Merge(args) => cmd_merge(&args),
        Command::Shrink(args) => cmd_shrink(&args),
        Command::Check(args) => cmd_check(&args),
        Command::Export(args) => cmd_export(&args),
        Command::Scenarios { dir } => cmd_scenarios(&dir),
        Command::Bench(args) => cmd_bench(&args),
        Command::Digest(args) => cmd_digest(&args),
        Command::Draw(args) => cmd_draw(&args),
    }
}

/// Logs to stderr through tracing-subscriber, filtered by `level`. No wall-clock stamps:
/// the runner stamps lines with simulated time.
pub fn init_logging(level: &str) -> Result<(), String> {
    check_log_filter(level)?;
    // madsim wraps every task poll in ERROR-level node/task spans; keeping them costs about a
    // tenth of a run. The node name comes from the runner's registry instead (below).
    let directives = format!("{level},madsim::sim::task=off");
    let filter =
        tracing_subscriber::EnvFilter::try_new(directives).map_err(|error| error.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .with_timer(SimulatedTime)
        .try_init()
        .map_err(|error| error.to_string())
}

/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The verdict word, green, red or yellow on a colour terminal.
fn painted(word: &str, verdict: Verdict) -> String {
    if !colour(std::io::stdout().is_terminal()) {
        return word.to_string();
    }
    let code = match verdict {
        Verdict::Pass => "32",
        Verdict::Liveness => "33",
        _ => "31",
    };
    format!("\x1b[1;{code}m{word}\x1b[0m")
}

/// Refuses a misspelt level: each comma-separated directive is a level, `target=level`, or
/// a target path (`kafkasim::broker`); a bare word that is no level (`wran`) would be read
/// by tracing as a target and silently log nothing.
fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in filter.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            None if directive.contains("::") => continue,
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("`{level}` is not a level (one of {})", LEVELS.join(", ")));
        }
    }
    Ok(())
}

/// Stamps log lines with simulated time (seconds since the run began) and the name of the
/// node the line comes from. Lines outside a simulation show dashes.
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match madsim::time::TimeHandle::try_current() {
            Some(time) => {
                let elapsed = time.elapsed();
                let node = crate::world::current_node_name();
                write!(w, "{:>4}.{:06}s {node:<12}", elapsed.as_secs(), elapsed.subsec_micros())
            }
            None => write!(w, "   -.------s {:<12}", "-"),
        }
    }
}

/// The build identity printed before every run.
pub fn build_id() -> String {
    crate::runner::build_id()
}

/// Runs the checker on a recorded history: the check report as JSON, or why the history
/// cannot be checked (naming the line and field). With the scenario, the report also says
/// which anomalies its configuration allows.
pub fn run_checker(text: &str, scenario: Option<&Scenario>) -> Result<serde_json::Value, String> {
    let history = crate::history::parse_jsonl(text).map_err(|error| error.to_string())?;
    let options = crate::check::CheckOptions::default();
    let report = crate::check::check(&history, &options);
    let mut value = serde_json::to_value(&report).map_err(|error| error.to_string())?;
    if let Some(scenario) = scenario {
        // With the scenario at hand, say which anomalies its configuration allows.
        let facts = crate::runner::config_facts(scenario);
        let mut allowed = serde_json::Map::new();
        for (kind, entries) in &report.anomalies {
            let reasons: Vec<Option<&str>> =
                entries.iter().map(|a| crate::check::promises::allowed(*kind, a, &facts)).collect();
            if let Some(Some(reason)) = reasons.first() {
                if reasons.iter().all(Option::is_some) {
                    allowed.insert(kind.name().to_string(), serde_json::Value::from(*reason));
                }
            }
        }
        value["allowed_under_config"] = serde_json::Value::Object(allowed);
    }
    Ok(value)
}

/// `kafkasim check` on a history's text: prints the anomalies to `out` and returns the exit
/// code (0 none, 1 anomalies, 2 the history cannot be checked).
pub fn check_history(text: &str, scenario: Option<&Scenario>, out: &mut dyn Write) -> i32 {
    if text.trim().is_empty() {
        let _ = writeln!(out, "cannot check the history: it is empty (no ops)");
        return EXIT_USAGE;
    }
    let report = match run_checker(text, scenario) {
        Ok(report) => report,
        Err(error) => {
            let _ = writeln!(out, "cannot check the history: {error}");
            return EXIT_USAGE;
        }
    };
    let anomalies = anomalies_of(&report);
    if anomalies.is_empty() {
        let _ = writeln!(out, "no anomalies");
        return 0;
    }
    for anomaly in &anomalies {
        // The report lists a bounded number of cases; `counts` has the true totals.
        let shown = anomaly.explanations.len() as u64;
        let total = report["counts"][&anomaly.name].as_u64().unwrap_or(shown).max(shown);
        let listed = match total > shown {
            true => format!("{total} cases, the first {shown} listed"),
            false => format!("{total} cases"),
        };
        let _ = writeln!(out, "{} ({listed})", anomaly.name);
        for line in &anomaly.explanations {
            let _ = writeln!(out, "  {line}");
        }
    }
    1
}

/// The digest of an outcome, for the determinism check.
pub fn digest_of(outcome: &RunOutcome) -> RunDigest {
    RunDigest {
        trace_hash: outcome.trace_hash,
        verdict: outcome.verdict,
        history_jsonl: outcome.history_jsonl.clone(),
        events_jsonl: events_jsonl(&outcome.events),
    }
}

/// The first difference between two executions: history first (what a user sees), then
/// the event log, then the trace hash and verdict.
pub fn first_divergence(first: &RunDigest, second: &RunDigest) -> Option<Divergence> {
    let texts = [
        ("history.jsonl", &first.history_jsonl, &second.history_jsonl),
        ("events.jsonl", &first.events_jsonl, &second.events_jsonl),
    ];
    for (what, a, b) in texts {
        let (mut a_lines, mut b_lines) = (a.lines(), b.lines());
        for line in 1.. {
            match (a_lines.next(), b_lines.next()) {
                (None, None) => break,
                (x, y) if x == y => continue,
                (x, y) => {
                    let shown = |l: Option<&str>| l.unwrap_or("<end of file>").to_string();
                    return Some(Divergence {
                        what: what.to_string(),
                        line,
                        first: shown(x),
                        second: shown(y),
                    });
                }
            }
        }
    }
    if first.trace_hash != second.trace_hash {
        return Some(Divergence {
            what: "trace hash".to_string(),
            line: 0,
            first: trace_hash_hex(first.trace_hash),
            second: trace_hash_hex(second.trace_hash),
        });
    }
    (first.verdict != second.verdict).then(|| Divergence {
        what: "verdict".to_string(),
        line: 0,
        first: verdict_name(first.verdict),
        second: verdict_name(second.verdict),
    })
}

fn load_scenario(path: Option<&Path>, variant: Option<&str>) -> Result<Scenario, ScenarioError> {
    match path {
        None => scenario::parse_variant(QUICKSTART_TOML, QUICKSTART_ORIGIN, variant),
        Some(path) => scenario::load_variant(path, variant),
    }
}

fn cmd_run(args: &RunArgs, check_determinism: bool, log: &str) -> i32 {
    let variant = args.variant.as_deref();
    let scenario = match load_scenario(args.scenario.as_deref(), variant) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    let origin =
        args.scenario.as_ref().map_or(QUICKSTART_ORIGIN.to_string(), |p| p.display().to_string());
    println!("scenario   {} ({origin})", scenario.name);
    if let Some(variant) = variant {
        let description = scenario::variants(&scenario_text(args.scenario.as_deref()))
            .into_iter()
            .find(|(name, _)| name == variant)
            .map(|(_, description)| description)
            .unwrap_or_default();
        println!("variant    {variant}: {description}");
    }
    println!("seed       {}", args.seed);
    println!("build      {}", build_id());
    if let Err(error) = print_swarm_point(&scenario, args.seed) {
        eprintln!("kafkasim: {origin}: {error}");
        return EXIT_USAGE;
    }
    let _ = std::io::stdout().flush();
    let mut outcome = run_seed(&scenario, variant, args.seed);
    let reproduce = reproduce_command(args.scenario.as_deref(), args.seed, variant);
    if check_determinism {
        check_against_second_process(args, log, &mut outcome);
    }
    println!();
    print_outcome(&outcome);
    let written = write_report_with(&args.report_dir, &outcome, &scenario, &reproduce);
    if outcome.verdict != Verdict::Pass {
        println!("reproduce  {reproduce}");
    }
    match written {
        Ok(dir) => {
            println!("report     {}", dir.join("summary.md").display());
            outcome.verdict.exit_code()
        }
        // A run whose report is lost cannot be read later: the command fails.
        Err(error) => {
            eprintln!("kafkasim: the report could not be written: {error:#}");
            EXIT_USAGE
        }
    }
}

/// A swarm scenario's drawn point, one `swarm` line per knob, before the run starts.
fn print_swarm_point(scenario: &Scenario, seed: u64) -> Result<(), String> {
    let (_, point) = scenario::swarm::resolve(scenario, seed)?;
    for (i, line) in point.iter().flat_map(scenario::swarm::point_lines).enumerate() {
        println!("{} {line}", if i == 0 { "swarm     " } else { "          " });
    }
    Ok(())
}

fn scenario_text(path: Option<&Path>) -> String {
    match path {
        None => QUICKSTART_TOML.to_string(),
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
    }
}

fn print_outcome(outcome: &RunOutcome) {
    let verdict = painted(&verdict_name(outcome.verdict), outcome.verdict);
    println!("verdict    {verdict} (exit {})", outcome.verdict.exit_code());
    let met = if outcome.judgement.met { "met" } else { "NOT met" };
    println!("judgement  expectation {met}");
    for line in judgement_lines(&outcome.judgement) {
        println!("             {line}");
    }
    for anomaly in anomalies_of(&outcome.check_report) {
        println!(
            "anomaly    {}: {}",
            anomaly.name,
            anomaly.explanations.first().map_or("", String::as_str)
        );
    }
    println!("trace hash {}", trace_hash_hex(outcome.trace_hash));
    for (i, line) in figure_lines(&outcome.stats).into_iter().enumerate() {
        println!("{} {line}", if i == 0 { "figures   " } else { "          " });
    }
}

/// Replays the seed in a child process and marks the outcome non-deterministic on any
/// difference.
fn check_against_second_process(args: &RunArgs, log: &str, outcome: &mut RunOutcome) {
    let mine = digest_of(outcome);
    let problem = match replay_in_child(args, log) {
        Ok(theirs) => match first_divergence(&mine, &theirs) {
            None => {
                println!(
                    "determinism a second process reproduced trace hash {}",
                    trace_hash_hex(theirs.trace_hash)
                );
                return;
            }
            Some(divergence) => {
                println!("determinism DIVERGED: {} line {}", divergence.what, divergence.line);
                println!("  this process:   {}", divergence.first);
                println!("  second process: {}", divergence.second);
                format!(
                    "non-deterministic: {} differs at line {} between two processes",
                    divergence.what, divergence.line
                )
            }
        },
        Err(error) => {
            eprintln!("kafkasim: the determinism check could not replay the seed: {error:#}");
            format!("the second process failed: {error:#}")
        }
    };
    outcome.verdict = Verdict::NonDeterminism;
    outcome.judgement.met = false;
    outcome.judgement.problems.push(problem);
}

fn replay_in_child(args: &RunArgs, log: &str) -> anyhow::Result<RunDigest> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("locating the kafkasim executable")?;
    let out = std::env::temp_dir().join(format!(
        "kafkasim-digest-{}-{}.json",
        std::process::id(),
        args.seed
    ));
    let mut command = std::process::Command::new(exe);
    command.arg("--log").arg(log).arg("__digest");
    if let Some(path) = &args.scenario {
        command.arg(path);
    }
    command.arg("--seed").arg(args.seed.to_string()).arg("--out").arg(&out);
    if let Some(variant) = &args.variant {
        command.arg("--variant").arg(variant);
    }
    let status = command
        .stdout(std::process::Stdio::null())
        .status()
        .context("starting the second process")?;
    anyhow::ensure!(status.success(), "the second process exited with {status}");
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&text).context("parsing the second process's digest")
}

fn cmd_draw(args: &DrawArgs) -> i32 {
    let variant = args.variant.as_deref();
    let origin = args.scenario.display().to_string();
    let text = load_scenario(Some(&args.scenario), variant)
        .map_err(|error| error.to_string())
        .and_then(|scenario| scenario::drawn_file(&scenario, &origin, variant, args.seed));
    match text {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(error) => {
            eprintln!("kafkasim: {error}");
            EXIT_USAGE
        }
    }
}

fn cmd_digest(args: &DigestArgs) -> i32 {
    let scenario = match load_scenario(args.scenario.as_deref(), args.variant.as_deref()) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    let outcome = run_seed(&scenario, args.variant.as_deref(), args.seed);
    let json = serde_json::to_string(&digest_of(&outcome)).expect("a digest always serializes");
    match std::fs::write(&args.out, json) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("kafkasim: writing {}: {error}", args.out.display());
            Verdict::Crash.exit_code()
        }
    }
}

fn cmd_sweep(args: &SweepArgs) -> i32 {
    let variant = args.variant.as_deref();
    let scenario = match load_scenario(Some(&args.scenario), variant) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    if args.seeds.len() > SWEEP_SEEDS_MAX {
        eprintln!("kafkasim: --seeds {}: more than {SWEEP_SEEDS_MAX} seeds", args.seeds);
        return EXIT_USAGE;
    }
    let seeds = args.seeds.seeds(args.shard);
    if seeds.is_empty() {
        let shard = args.shard.map(|s| format!(" --shard {s}")).unwrap_or_default();
        eprintln!("kafkasim: --seeds {}{shard} selects no seed", args.seeds);
        return EXIT_USAGE;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let shard = args.shard.map(|s| format!(", shard {s}")).unwrap_or_default();
    println!(
        "scenario   {} ({}){}",
        scenario.name,
        args.scenario.display(),
        variant.map(|v| format!(" variant {v}")).unwrap_or_default()
    );
    println!("seeds      {}{shard}: {} seeds on {jobs} workers", args.seeds, seeds.len());
    println!("build      {}", build_id());
    let _ = std::io::stdout().flush();

    let budget_end = args.seeds.first.saturating_add(scenario.expect.seed_budget);
    let must_find = match scenario.expect.verdict {
        ExpectedVerdict::Find => scenario.expect.must_find.clone(),
        ExpectedVerdict::Pass => Vec::new(),
    };
    let stopwatch = Stopwatch::start();
    let mut progress = Progress::new(seeds.len(), progress_enabled());
    let mut results = Vec::new();
    let mut failures: Vec<(u64, String, String)> = Vec::new();
    let mut finders: BTreeMap<String, RunOutcome> = BTreeMap::new();
    let mut drawn = scenario::swarm::DrawTally::default();
    let mut lines: Vec<SeedLine> = Vec::new();
    let mut stopped_early = false;
    run_sweep(&scenario, variant, &seeds, jobs, |outcome| {
        if let (Some(swarm), Some(point)) = (&scenario.swarm, &outcome.swarm) {
            drawn.add(swarm, point, !seed_met(outcome.verdict, &outcome.judgement));
        }
        let reproduce = reproduce_command(Some(&args.scenario), outcome.seed, variant);
        if !seed_met(outcome.verdict, &outcome.judgement) {
            let report = match write_report_with(&args.report_dir, &outcome, &scenario, &reproduce)
            {
                Ok(dir) => dir.display().to_string(),
                Err(error) => format!("report not written: {error:#}"),
            };
            failures.push((
                outcome.seed,
                failure_reason(&outcome),
                format!("{reproduce}  ({report})"),
            ));
        }
        for name in anomalies_shown(&outcome.judgement) {
            let first_so_far = finders.get(&name).is_none_or(|held| held.seed > outcome.seed);
            if must_find.contains(&name) && outcome.seed < budget_end && first_so_far {
                finders.insert(name, outcome.clone());
            }
        }
        let line = SeedLine::of(&outcome, reproduce);
        let failed = !line.met;
        lines.push(line);
        results.push(SeedResult {
            seed: outcome.seed,
            verdict: outcome.verdict,
            judgement: outcome.judgement,
            marks: outcome.marks.keys().copied().collect(),
        });
        progress.update(results.len(), failures.len());
        if failed && args.fail_fast {
            stopped_early = true;
            return Flow::Stop;
        }
        Flow::Continue
    });
    progress.finish();
    for outcome in finders.values() {
        let reproduce = reproduce_command(Some(&args.scenario), outcome.seed, variant);
        if let Err(error) = write_report_with(&args.report_dir, outcome, &scenario, &reproduce) {
            eprintln!(
                "kafkasim: the report of seed {} could not be written: {error:#}",
                outcome.seed
            );
        }
    }
    let mut judgement = judge_sweep(&results, &scenario.expect, args.seeds.first);
    if stopped_early {
        judgement.met = false;
    }
    failures.sort();
    let wall_secs = stopwatch.elapsed_secs();
    print_sweep_summary(&judgement, &failures, wall_secs, &scenario);
    print_signatures(&lines);
    for (i, line) in drawn.lines().into_iter().enumerate() {
        println!("{} {line}", if i == 0 { "drawn     " } else { "          " });
    }
    if stopped_early {
        println!("stopped    --fail-fast: {} of {} seeds run", results.len(), seeds.len());
    }
    let header = SweepHeader {
        scenario: &scenario.name,
        variant,
        seeds: args.seeds.to_string(),
        shard: args.shard.map(|s| s.to_string()),
        build: build_id(),
        wall_secs,
        stopped_early,
    };
    if let Err(error) = write_sweep_files(args, &header, &judgement, &lines) {
        eprintln!("kafkasim: {error:#}");
        return EXIT_USAGE;
    }
    if judgement.met {
        0
    } else {
        Verdict::Safety.exit_code()
    }
}

/// Failing seeds grouped by signature, most seeds first.
fn print_signatures(lines: &[SeedLine]) {
    let groups = group_failures(lines);
    if groups.is_empty() {
        return;
    }
    println!("signatures {} kinds of failure", groups.len());
    for group in groups.iter().take(SWEEP_FAILURES_LISTED_MAX) {
        println!("  {} seeds (smallest {}): {}", group.seeds, group.smallest_seed, group.signature);
        println!("    {}", group.reproduce);
    }
}

/// sweep.json beside the reports (`sweep-<K>-of-<N>.json` for a shard), and the JUnit XML
/// when asked for.
fn write_sweep_files(
    args: &SweepArgs,
    header: &SweepHeader<'_>,
    judgement: &SweepJudgement,
    lines: &[SeedLine],
) -> anyhow::Result<()> {
    let dir = scenario_report_dir(&args.report_dir, header.scenario, header.variant);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = match args.shard {
        Some(shard) => format!("sweep-{}-of-{}.json", shard.index, shard.count),
        None => "sweep.json".to_string(),
    };
    let file = sweep_file(header, judgement, lines);
    write_file(&dir.join(name), &sweep_files::to_json(&file), "sweep.json")?;
    if args.shard.is_none() {
        let index = crate::report_html::sweep_index(&file);
        std::fs::write(dir.join("index.html"), index)
            .with_context(|| format!("writing {}", dir.join("index.html").display()))?;
    }
    if let Some(junit) = &args.junit {
        write_file(junit, &junit_xml(&file), "junit")?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, label: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("{label:<10} {}", path.display());
    Ok(())
}

fn cmd_shrink(args: &ShrinkArgs) -> i32 {
    let variant = args.variant.as_deref();
    let scenario = match load_scenario(Some(&args.scenario), variant) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    let shrunk = match crate::shrink::shrink(&scenario, variant, args.seed, args.max_runs) {
        Ok(shrunk) => shrunk,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    let origin = args.scenario.display().to_string();
    let text = crate::shrink::shrunk_file(&shrunk, &origin, variant, args.seed);
    let out = args.out.clone().unwrap_or_else(|| {
        crate::report::report_dir(&args.report_dir, &scenario.name, variant, args.seed)
            .join("shrunk.toml")
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(error) = std::fs::create_dir_all(dir) {
            eprintln!("kafkasim: creating {}: {error}", dir.display());
            return EXIT_USAGE;
        }
    }
    println!("finding    {}", shrunk.finding);
    println!("before     {}", shrunk.before);
    println!("after      {}", shrunk.after);
    println!("runs       {} candidates", shrunk.runs);
    if let Err(error) = write_file(&out, &text, "shrunk") {
        eprintln!("kafkasim: {error:#}");
        return EXIT_USAGE;
    }
    println!("reproduce  {}", reproduce_command(Some(&out), args.seed, None));
    0
}

fn cmd_merge(args: &MergeArgs) -> i32 {
    let mut files = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let parsed = std::fs::read_to_string(path)
            .map_err(|error| error.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|error| error.to_string()));
        match parsed {
            Ok(file) => files.push((name, file)),
            Err(error) => {
                eprintln!("kafkasim: {name}: {error}");
                return EXIT_USAGE;
            }
        }
    }
    let merged = match sweep_files::merge(&files) {
        Ok(merged) => merged,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    print_merged(&merged);
    let written = [(&args.out, "sweep.json"), (&args.junit, "junit")].into_iter().try_for_each(
        |(path, label)| match (path, label) {
            (Some(path), "junit") => write_file(path, &junit_xml(&merged), label),
            (Some(path), _) => write_file(path, &sweep_files::to_json(&merged), label),
            (None, _) => Ok(()),
        },
    );
    if let Err(error) = written {
        eprintln!("kafkasim: {error:#}");
        return EXIT_USAGE;
    }
    if merged.met {
        0
    } else {
        Verdict::Safety.exit_code()
    }
}

fn print_merged(merged: &SweepFile) {
    println!(
        "scenario   {}{}",
        merged.scenario,
        merged.variant.as_ref().map(|v| format!(" variant {v}")).unwrap_or_default()
    );
    println!("seeds      {}: shards {}", merged.seeds, merged.shard.as_deref().unwrap_or("none"));
    println!("build      {}", merged.build);
    println!("seeds      {} run, {} failed", merged.seeds_run, merged.seeds_failed);
    for (name, first) in &merged.first_found {
        match first {
            Some(seed) => println!("must find  {name}: first on seed {seed}"),
            None => println!("must find  {name}: NOT found within the seed budget"),
        }
    }
    for name in &merged.unreached {
        println!("reaches    {name}: NOT reached on any seed");
    }
    print_signatures(&merged.runs);
    println!("time       {:.2} s wall, summed over the shards", merged.wall_secs);
    println!("expectation {}", if merged.met { "met" } else { "NOT met" });
}

fn failure_reason(outcome: &RunOutcome) -> String {
    let judgement = &outcome.judgement;
    let mut reasons = Vec::new();
    if !judgement.forbidden.is_empty() {
        reasons.push(format!("forbidden {}", judgement.forbidden.join(", ")));
    }
    reasons.extend(judgement.problems.iter().cloned());
    format!(
        "{}: {}",
        verdict_name(outcome.verdict),
        if reasons.is_empty() { "expectation not met".into() } else { reasons.join("; ") }
    )
}

fn print_sweep_summary(
    judgement: &SweepJudgement,
    failures: &[(u64, String, String)],
    wall_secs: f64,
    scenario: &Scenario,
) {
    let seeds_list = |seeds: &[u64]| match seeds.is_empty() {
        true => "none".to_string(),
        false => seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
    };
    println!();
    println!("seeds      {} run, {} passed", judgement.seeds_run, judgement.passes);
    if judgement.anomaly_seeds.is_empty() {
        println!("anomalies  none");
    }
    for (name, count) in &judgement.anomaly_seeds {
        println!("anomaly    {name}: {count} seeds");
    }
    for (name, first) in &judgement.first_found {
        match first {
            Some(seed) => println!("must find  {name}: first on seed {seed}"),
            None => println!(
                "must find  {name}: NOT found within the first {} seeds",
                scenario.expect.seed_budget
            ),
        }
    }
    println!("failed     {} seeds did not meet the expectation", judgement.failed.len());
    for (seed, reason, reproduce) in failures.iter().take(SWEEP_FAILURES_LISTED_MAX) {
        println!("  seed {seed}: {reason}");
        println!("    {reproduce}");
    }
    if failures.len() > SWEEP_FAILURES_LISTED_MAX {
        println!("  ... and {} more", failures.len() - SWEEP_FAILURES_LISTED_MAX);
    }
    println!("liveness   {}", seeds_list(&judgement.liveness));
    println!("crashes    {}", seeds_list(&judgement.crashes));
    if !judgement.nondeterministic.is_empty() {
        println!("nondeterm. {}", seeds_list(&judgement.nondeterministic));
    }
    let rate = if wall_secs > 0.0 { judgement.seeds_run as f64 / wall_secs } else { 0.0 };
    println!("time       {wall_secs:.2} s wall, {rate:.2} seeds/s");
    for line in crate::sweep::coverage_lines(judgement, &scenario.expect) {
        println!("{line}");
    }
    println!("expectation {}", if judgement.met { "met" } else { "NOT met" });
}

/// Progress on stderr when it is a terminal and not in CI.
fn progress_enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A one-line progress bar, redrawn at most ten times a second.
struct Progress {
    enabled: bool,
    total: usize,
    stopwatch: Stopwatch,
    drawn_at_secs: f64,
}

impl Progress {
    const BAR_WIDTH: usize = 30;
    const REDRAW_SECS: f64 = 0.1;

    fn new(total: usize, enabled: bool) -> Progress {
        Progress { enabled, total, stopwatch: Stopwatch::start(), drawn_at_secs: f64::NEG_INFINITY }
    }

    fn update(&mut self, done: usize, failed: usize) {
        let now = self.stopwatch.elapsed_secs();
        if !self.enabled || (done < self.total && now - self.drawn_at_secs < Self::REDRAW_SECS) {
            return;
        }
        self.drawn_at_secs = now;
        let filled = (done * Self::BAR_WIDTH).checked_div(self.total).unwrap_or(Self::BAR_WIDTH);
        let rate = if now > 0.0 { done as f64 / now } else { 0.0 };
        let eta = if rate > 0.0 { (self.total - done) as f64 / rate } else { 0.0 };
        eprint!(
            "\r[{}{}] {done}/{} seeds, {failed} failed, {rate:.1} seeds/s, eta {eta:.0} s ",
            "#".repeat(filled),
            "-".repeat(Self::BAR_WIDTH - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

fn cmd_check(args: &CheckArgs) -> i32 {
    let text = match std::fs::read_to_string(&args.history) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("kafkasim: reading {}: {error}", args.history.display());
            return EXIT_USAGE;
        }
    };
    let scenario = match args.scenario.as_deref().map(scenario::load).transpose() {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    print!("{}: ", args.history.display());
    check_history(&text, scenario.as_ref(), &mut std::io::stdout())
}

fn cmd_export(args: &ExportArgs) -> i32 {
    if !args.edn {
        eprintln!("kafkasim: export: name the format (--edn)");
        return EXIT_USAGE;
    }
    let edn = std::fs::read_to_string(&args.history)
        .map_err(|error| format!("reading {}: {error}", args.history.display()))
        .and_then(|text| {
            crate::edn::history_to_edn(&text)
                .map_err(|error| format!("{}: {error}", args.history.display()))
        });
    let written = edn.and_then(|edn| match &args.out {
        Some(path) => std::fs::write(path, edn)
            .map_err(|error| format!("writing {}: {error}", path.display())),
        None => {
            print!("{edn}");
            Ok(())
        }
    });
    match written {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            EXIT_USAGE
        }
    }
}

fn cmd_scenarios(dir: &Path) -> i32 {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            eprintln!("kafkasim: reading {}: {error}", dir.display());
            return EXIT_USAGE;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    let mut invalid = false;
    for path in &paths {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        match scenario::parse(&text, &origin) {
            Ok(scenario) => {
                let variants = scenario::variants(&text);
                let names: Vec<&str> = variants.iter().map(|(name, _)| name.as_str()).collect();
                let listed = if names.is_empty() {
                    String::new()
                } else {
                    format!(" [variants: {}]", names.join(", "))
                };
                println!("{:<20} {}{listed}", scenario.name, scenario.description);
                for (name, _) in &variants {
                    if let Err(error) = scenario::with_variant(&text, &origin, name) {
                        println!("  ! {error}");
                        invalid = true;
                    }
                }
            }
            Err(error) => {
                println!("! {error}");
                invalid = true;
            }
        }
    }
    if invalid {
        EXIT_USAGE
    } else {
        0
    }
}

fn cmd_bench(args: &BenchArgs) -> i32 {
    let loaded: Result<Vec<Scenario>, ScenarioError> = match args.scenarios.is_empty() {
        true => load_scenario(None, None).and_then(|quickstart| {
            let replicated =
                scenario::parse(REPLICATED_SAFE_TOML, "scenarios/replicated-safe.toml")?;
            let group = scenario::parse(GROUP_SAFE_TOML, "scenarios/group-safe.toml")?;
            Ok(vec![quickstart, replicated, group])
        }),
        false => args.scenarios.iter().map(|path| scenario::load(path)).collect(),
    };
    let scenarios = match loaded {
        Ok(scenarios) => scenarios,
        Err(error) => {
            eprintln!("kafkasim: {error}");
            return EXIT_USAGE;
        }
    };
    println!("build      {}", build_id());
    println!(
        "bench      {} scenarios x {} seeds, and a madsim TCP ping-pong baseline",
        scenarios.len(),
        args.seeds
    );
    let _ = std::io::stdout().flush();
    let report = run_bench(&scenarios, args.seeds, &build_id());
    print_bench(&report);
    let path = args.report_dir.join("bench.json");
    let written = std::fs::create_dir_all(&args.report_dir).and_then(|()| {
        let json = serde_json::to_string_pretty(&report).expect("bench figures serialize");
        std::fs::write(&path, json + "\n")
    });
    match written {
        Ok(()) => println!("figures    {}", path.display()),
        Err(error) => eprintln!("kafkasim: writing {}: {error}", path.display()),
    }
    0
}

fn print_bench(report: &BenchReport) {
    let b = &report.baseline;
    println!(
        "baseline   {} messages in {:.3} s wall ({:.0} msg/s), {:.1} s simulated",
        b.messages, b.wall_secs, b.messages_per_sec, b.simulated_secs
    );
    for s in &report.scenarios {
        let per_seed: Vec<String> =
            s.wall_secs_per_seed.iter().map(|w| format!("{w:.3}")).collect();
        println!(
            "{:<10} {} seeds, wall s/seed {} (mean {:.3})",
            s.scenario,
            s.seeds,
            per_seed.join(" "),
            s.wall_secs_mean
        );
        println!(
            "           {:.1} sim s/wall s, {:.0} records/s, {:.0} msg/s ({:.3}x baseline); verdicts {}",
            s.simulated_secs_per_wall_sec,
            s.records_acked_per_sec,
            s.messages_per_sec,
            s.messages_ratio_to_baseline,
            s.verdicts.join(",")
        );
    }
    match report.peak_rss_kib {
        Some(kib) => println!("peak RSS   {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS   unknown"),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn log_filters_refuse_words_that_are_no_level() {
        assert!(check_log_filter("warn").is_ok());
        assert!(check_log_filter("info,kafkasim::broker=debug").is_ok());
        assert!(check_log_filter("kafkasim::broker").is_ok());
        assert!(check_log_filter("wran").unwrap_err().contains("`wran` is not a level"));
        assert!(check_log_filter("kafkasim=loud").is_err());
    }
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "kafkasim", "sweep", "s.toml", "--seeds", "1..200", "--shard", "2/4", "--jobs", "3",
        ])
        .expect("valid sweep");
        let Some(Command::Sweep(args)) = cli.command else { panic!("not a sweep") };
        assert_eq!(args.seeds, SeedRange { first: 1, last: 200 });
        assert_eq!(args.shard, Some(Shard { index: 2, count: 4 }));
        let error = Cli::try_parse_from(["kafkasim", "sweep", "s.toml", "--seeds", "9..1"])
            .expect_err("reversed");
        assert_eq!(error.exit_code(), EXIT_USAGE);
        let cli = Cli::try_parse_from(["kafkasim", "run"]).expect("run without a scenario");
        let Some(Command::Run(args)) = cli.command else { panic!("not a run") };
        assert_eq!((args.scenario, args.seed), (None, 1));
        // `cargo run --release` passes no command: main runs the embedded quickstart.
        let bare = Cli::try_parse_from(["kafkasim"]).expect("no command is valid");
        assert!(bare.command.is_none());
    }

    #[test]
    fn malformed_histories_name_line_and_field() {
        let history = concat!(
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":[]}\n",
            "{\"index\":1,\"time\":2,\"process\":0,\"type\":\"done\",\"f\":\"send\",\"value\":[]}\n",
        );
        let mut out = Vec::new();
        assert_eq!(check_history(history, None, &mut out), EXIT_USAGE);
        let printed = String::from_utf8(out).expect("utf-8");
        assert!(printed.contains("line 2: field `type`"), "{printed}");
        let mut out = Vec::new();
        assert_eq!(check_history("{\"index\":0}\nnot json\n", None, &mut out), EXIT_USAGE);
        assert!(String::from_utf8(out).expect("utf-8").contains("line 1: field `time`: missing"));
        let mut out = Vec::new();
        assert_eq!(check_history("\n", None, &mut out), EXIT_USAGE, "an empty history");
        assert!(String::from_utf8(out).expect("utf-8").contains("it is empty"));
    }

    #[test]
    fn divergence_names_the_first_differing_line() {
        let digest = |history: &str, events: &str, trace_hash| RunDigest {
            trace_hash,
            verdict: Verdict::Pass,
            history_jsonl: history.into(),
            events_jsonl: events.into(),
        };
        let a = digest("a\nb\nc\n", "e\n", 1);
        assert_eq!(first_divergence(&a, &a.clone()), None);
        let history = first_divergence(&a, &digest("a\nB\nc\n", "e\n", 2)).expect("differs");
        assert_eq!(
            (history.what.as_str(), history.line, history.second.as_str()),
            ("history.jsonl", 2, "B")
        );
        let events = first_divergence(&a, &digest("a\nb\nc\n", "e\nf\n", 1)).expect("differs");
        assert_eq!(
            (events.what.as_str(), events.line, events.first.as_str()),
            ("events.jsonl", 2, "<end of file>")
        );
        let hash = first_divergence(&a, &digest("a\nb\nc\n", "e\n", 3)).expect("differs");
        assert_eq!(hash.what, "trace hash");
    }

    #[test]
    fn the_embedded_scenario_loads() {
        let scenario = load_scenario(None, None).expect("quickstart is valid");
        assert_eq!(scenario.name, "quickstart");
    }
}
