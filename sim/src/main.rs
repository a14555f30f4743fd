//! The `kafkasim` binary: everything lives in `sim::cli`.

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(sim::cli::main());
}
