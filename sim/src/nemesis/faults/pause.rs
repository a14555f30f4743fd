//! `pause`: every task of the node stops for `duration_s` (a GC pause, a stopped VM);
//! overlapping pauses resume it when the last one ends.

use super::{Draw, Rule};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for Pause {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        Pause { target: draw.target, duration_s: draw.duration_s }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn on_process(&self) -> bool {
        true
    }

    fn silences(&self, _plan: &Plan) -> bool {
        true
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.pause(&plan.nodes[0]);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.resume(&plan.nodes[0]);
    }
}
