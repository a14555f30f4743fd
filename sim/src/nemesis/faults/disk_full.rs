//! `disk-full`: writes that add bytes fail with ENOSPC for `duration_s`.

use super::{Draw, Rule};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFull {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for DiskFull {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        DiskFull { target: draw.target, duration_s: draw.duration_s }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.disk().set_full(nemesis.id_of(&plan.nodes[0]), true);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.disk().set_full(nemesis.id_of(&plan.nodes[0]), false);
    }
}
