//! `bit-flips`: `count` random bits of the node's durable bytes flip, at once (silent
//! corruption: a bad sector, a firmware bug). Nothing to repair.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use super::check::BIT_FLIPS_MAX;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitFlips {
    pub target: String,
    pub count: u32,
}

impl Rule for BitFlips {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        BitFlips { target: draw.target, count: draw.count }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        if !(1..=BIT_FLIPS_MAX).contains(&self.count) {
            check.problem("count", format!("{} is outside 1..={BIT_FLIPS_MAX}", self.count));
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        0.0
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let name = &plan.nodes[0];
        let flips = nemesis.disk().flip_bits(nemesis.id_of(name), self.count);
        nemesis.world.event(name, "bit-flips", &[("flips", format!("{flips:?}"))]);
        Applied::Once
    }

    fn repair(&self, _nemesis: &Nemesis, _plan: &Plan) {}
}
