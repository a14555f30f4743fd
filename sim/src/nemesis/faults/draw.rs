//! The random nemesis's common draw: the same values, in the same order, whatever kind was
//! picked, so the seeds of a scenario keep their faults when a kind joins the catalogue and a
//! kind's rule only chooses which of the values it uses.

use crate::scenario::NemesisSettings;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The values drawn for one random fault.
#[derive(Clone, Debug)]
pub struct Draw {
    /// A node name or role from the nemesis's `targets`.
    pub target: String,
    /// From the nemesis's `duration_s` range.
    pub duration_s: f64,
    /// A slow-down factor, 5..50.
    pub factor: u32,
    /// A probability, 0.05..0.5.
    pub rate: f64,
    /// A small count, 1..4.
    pub count: u32,
    /// A clock jump up to 5 s ahead.
    pub skew_ms: u64,
    /// A clock running up to 10% fast.
    pub drift_ppm: u64,
}

impl Draw {
    /// Draws the common values from the nemesis's sub-stream.
    pub fn new(rng: &mut ChaCha8Rng, settings: &NemesisSettings) -> Draw {
        let target = settings.targets[rng.gen_range(0..settings.targets.len())].clone();
        let duration_s = uniform(rng, settings.duration_s);
        Draw {
            target,
            duration_s,
            factor: rng.gen_range(5..50),
            rate: rng.gen_range(0.05..0.5),
            count: rng.gen_range(1..4),
            skew_ms: rng.gen_range(0..5_000),
            drift_ppm: rng.gen_range(0..100_000),
        }
    }
}

/// Uniform in `range`, or its low end when the range is empty.
pub fn uniform(rng: &mut ChaCha8Rng, range: [f64; 2]) -> f64 {
    if range[1] > range[0] {
        rng.gen_range(range[0]..range[1])
    } else {
        range[0]
    }
}
