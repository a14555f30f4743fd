//! `latency-spike`: the network's latency is multiplied by `factor` for `duration_s`.
//! Spikes do not compound: the largest live factor applies to the base latency.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::envelope::Impact;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpike {
    pub target: String,
    pub duration_s: f64,
    pub factor: u32,
}

impl Rule for LatencySpike {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        LatencySpike { target: draw.target, duration_s: draw.duration_s, factor: draw.factor }
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

    fn impact(&self, _plan: &Plan) -> Impact {
        Impact::default()
    }

    fn apply(&self, nemesis: &NemesisRef, _plan: &Plan) -> Applied {
        nemesis.spikes.lock().expect("nemesis spikes").hold(self.factor.max(1));
        nemesis.set_latency();
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, _plan: &Plan) {
        nemesis.spikes.lock().expect("nemesis spikes").release(&self.factor.max(1));
        nemesis.set_latency();
    }
}
