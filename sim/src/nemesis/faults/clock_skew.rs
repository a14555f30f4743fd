//! `clock-skew`: the node's clock jumps `skew_ms` ahead and runs `drift_ppm` fast for
//! `duration_s`; after that it keeps what it gained but runs at the normal rate again. Clocks
//! only move forward (state machines time out on them), so backward jumps are not modelled.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::envelope::Impact;

/// A day: far beyond any skew NTP leaves uncorrected, still within a run's arithmetic.
const SKEW_MS_MAX: u64 = 86_400_000;
/// A clock running twice as fast.
const DRIFT_PPM_MAX: u64 = 1_000_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSkew {
    pub target: String,
    pub duration_s: f64,
    /// How far the clock jumps ahead, in milliseconds.
    #[serde(default)]
    pub skew_ms: Option<u64>,
    /// How much faster the clock runs while skewed, in parts per million.
    #[serde(default)]
    pub drift_ppm: Option<u64>,
}

impl Rule for ClockSkew {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        ClockSkew {
            target: draw.target,
            duration_s: draw.duration_s,
            skew_ms: Some(draw.skew_ms),
            drift_ppm: Some(draw.drift_ppm),
        }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        check.duration(self.duration_s);
        if self.skew_ms.is_none() && self.drift_ppm.is_none() {
            check.problem("kind", "`clock-skew` needs `skew_ms` or `drift_ppm`");
        }
        if let Some(ms) = self.skew_ms.filter(|ms| *ms > SKEW_MS_MAX) {
            check.problem("skew_ms", format!("{ms} is above {SKEW_MS_MAX} ms"));
        }
        if let Some(ppm) = self.drift_ppm.filter(|ppm| *ppm > DRIFT_PPM_MAX) {
            check.problem("drift_ppm", format!("{ppm} is above {DRIFT_PPM_MAX} ppm"));
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn impact(&self, _plan: &Plan) -> Impact {
        Impact::default()
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let now = crate::world::now_ns();
        let mut state = nemesis.world.state();
        let clock = state.clocks.entry(plan.nodes[0].clone()).or_default();
        clock.skew(now, self.skew_ms.unwrap_or(0), self.drift_ppm.unwrap_or(0));
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        let now = crate::world::now_ns();
        if let Some(clock) = nemesis.world.state().clocks.get_mut(&plan.nodes[0]) {
            clock.settle(now);
        }
    }
}
