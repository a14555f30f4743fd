//! `crash`: kill the node (unsynced writes are dropped, kept or torn, as the disk decides)
//! and restart it after `duration_s`.

use super::{Draw, Rule};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::envelope::Impact;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// A node name or role (see `scenario::Target`).
    pub target: String,
    pub duration_s: f64,
}

impl Rule for Crash {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        Crash { target: draw.target, duration_s: draw.duration_s }
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

    fn impact(&self, plan: &Plan) -> Impact {
        Impact { kills: plan.nodes.clone(), impairs: Vec::new() }
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.kill(&plan.nodes);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.restart(&plan.nodes);
    }
}
