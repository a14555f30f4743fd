//! `io-errors`: reads, writes and syncs fail with EIO at `rate` for `duration_s`.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::world::disk::IoErrorRates;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoErrors {
    pub target: String,
    pub duration_s: f64,
    pub rate: f64,
}

impl Rule for IoErrors {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        IoErrors { target: draw.target, duration_s: draw.duration_s, rate: draw.rate }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        check.duration(self.duration_s);
        check.rate(self.rate);
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let rate = self.rate.clamp(0.0, 1.0);
        let rates = IoErrorRates { read: rate, write: rate, sync: rate, metadata: 0.0 };
        nemesis.disk().set_io_errors(nemesis.id_of(&plan.nodes[0]), rates);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.disk().set_io_errors(nemesis.id_of(&plan.nodes[0]), IoErrorRates::default());
    }
}
