//! `one-way-cut`: packets from `target` to `peer` are dropped for `duration_s`; the
//! reverse direction still works (an asymmetric partition).

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::scenario::Target;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneWayCut {
    pub target: String,
    /// The node (name or role) that stops hearing from `target`; a random injection leaves
    /// it to chance (None: a random other node).
    #[serde(default)]
    pub peer: Option<String>,
    pub duration_s: f64,
}

impl Rule for OneWayCut {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        OneWayCut { target: draw.target, peer: None, duration_s: draw.duration_s }
    }

    fn unfit(scenario: &Scenario) -> Option<String> {
        let nodes = crate::scenario::validate::node_count(scenario);
        (nodes < 2).then(|| format!("`one-way-cut` needs at least 2 nodes, the scenario has {nodes}"))
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.node("target", &self.target);
        check.duration(self.duration_s);
        let Some(peer) = &self.peer else {
            return check.problem("kind", "`one-way-cut` needs `peer`");
        };
        let named = check.node("peer", peer);
        if *peer == self.target && matches!(named, Some(Target::Node(_))) {
            check.problem("peer", format!("`{peer}` is also the target"));
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        planner.link(&self.target, self.peer.as_deref(), |from, node| node != from)
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.hold_links(&plan.links);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.release_links(&plan.links);
    }
}
