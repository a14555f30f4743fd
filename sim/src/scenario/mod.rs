//! Scenarios: the model of a scenario file and its parsing and validation.

pub mod model;
pub mod parse;
pub mod source_map;
pub mod swarm;
pub mod target;
pub mod validate;
pub mod workload_steps;

pub use model::*;
pub use parse::{
    load, load_variant, parse, parse_variant, to_toml, variants, with_variant, ScenarioError,
};
pub use source_map::FieldPath;
pub use swarm::drawn_file;
pub use target::{Target, TARGET_ROLES};
pub use validate::{validate, Problem, KNOWN_ANOMALIES};
