//! `isolate`: the node is cut off the network, both directions, for `duration_s`.

use super::{Draw, Rule};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use madsim::net::NetSim;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolate {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for Isolate {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        Isolate { target: draw.target, duration_s: draw.duration_s }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let id = nemesis.id_of(&plan.nodes[0]);
        nemesis.clogs().hold_node(&*NetSim::current(), id);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        let id = nemesis.id_of(&plan.nodes[0]);
        nemesis.clogs().release_node(&*NetSim::current(), id);
    }
}
