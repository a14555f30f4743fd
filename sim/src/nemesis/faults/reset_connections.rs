//! `reset-connections`: without parameters, every open connection of the node is reset once
//! (in-flight responses are lost). With `rate` and `duration_s` on a broker: for that long,
//! each produce response is replaced by a connection reset with probability `rate` — the
//! broker appended, the client never hears of it.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::envelope::Impact;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConnections {
    pub target: String,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub duration_s: Option<f64>,
}

impl Rule for ResetConnections {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        ResetConnections {
            target: draw.target,
            rate: Some(draw.rate),
            duration_s: Some(draw.duration_s),
        }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        match (self.rate, self.duration_s) {
            (Some(rate), Some(duration_s)) => {
                check.rate(rate);
                check.duration(duration_s);
            }
            (None, None) => {}
            _ => check.problem("kind", "`reset-connections` takes `rate` and `duration_s` together"),
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s.unwrap_or(0.0)
    }

    fn on_process(&self) -> bool {
        true
    }

    fn impact(&self, _plan: &Plan) -> Impact {
        Impact::default()
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let name = &plan.nodes[0];
        let rate = self.rate.unwrap_or(1.0);
        if rate < 1.0 && name.starts_with("broker-") {
            nemesis.world.state().reset_after_append.insert(name.to_string(), rate);
        } else if let Some(resets) = nemesis.world.resets.get(name) {
            resets.raise();
        }
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.world.state().reset_after_append.remove(&plan.nodes[0]);
    }
}
