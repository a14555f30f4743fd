//! `slow-disk`: the node's disk latencies are multiplied by `factor` for `duration_s`.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowDisk {
    pub target: String,
    pub duration_s: f64,
    pub factor: u32,
}

impl Rule for SlowDisk {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        SlowDisk { target: draw.target, duration_s: draw.duration_s, factor: draw.factor }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        check.duration(self.duration_s);
        check.factor(self.factor);
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.disk().set_slow(nemesis.id_of(&plan.nodes[0]), self.factor.max(1));
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.disk().set_slow(nemesis.id_of(&plan.nodes[0]), 1);
    }
}
