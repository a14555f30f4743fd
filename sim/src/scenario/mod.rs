//! Scenarios: the model of a scenario file and its parsing and validation.

pub mod model;

pub use model::*;
