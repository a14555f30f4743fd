//! The simulated world and the testbed around the kafkasim system: node shells on madsim,
//! the simulated disk and network faults, the nemesis, workloads, histories, the checker,
//! scenarios, the runner and the CLI. The system under test lives in the root crate.

#![forbid(unsafe_code)]

#[cfg(not(madsim))]
compile_error!(
    "kafkasim's simulator only builds with --cfg madsim (set in .cargo/config.toml; a \
     RUSTFLAGS variable in the environment replaces it, so add --cfg madsim there too)"
);

pub mod bench;
pub mod check;
pub mod cli;
pub mod coverage;
pub mod edn;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod report_html;
pub mod runner;
pub mod scenario;
pub mod seed;
pub mod shrink;
pub mod sweep;
pub mod sweep_files;
pub mod triage;
pub mod world;
