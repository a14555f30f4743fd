//! `cut-broker-links`: the `target` broker cannot exchange packets with the other brokers
//! for `duration_s`; its links to controllers and clients stay up (Jepsen 2013's ISR-shrink
//! fault: the leader drops its followers from the ISR and keeps accepting writes).

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::resolve::links_across;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutBrokerLinks {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for CutBrokerLinks {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        CutBrokerLinks { target: draw.target, duration_s: draw.duration_s }
    }

    fn unfit(scenario: &Scenario) -> Option<String> {
        let brokers = scenario.cluster.brokers;
        (brokers < 2).then(|| {
            format!("`cut-broker-links` needs at least 2 brokers, the scenario has {brokers}")
        })
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.duration(self.duration_s);
        let Some(target) = check.node("target", &self.target) else { return };
        if !target.is_broker() {
            let message = format!("`{target}`: `cut-broker-links` needs a broker target");
            check.problem("target", message);
        } else if check.scenario.cluster.brokers < 2 {
            check.problem("target", "`cut-broker-links` needs at least 2 brokers");
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let broker = planner.one(&self.target)?;
        if !broker.starts_with("broker-") {
            return Err(format!("`{broker}` is not a broker"));
        }
        let others: Vec<String> = planner
            .names
            .iter()
            .filter(|n| n.starts_with("broker-") && **n != broker)
            .cloned()
            .collect();
        let mut plan = Plan::on(broker.clone());
        plan.links = links_across(std::slice::from_ref(&broker), &others);
        Ok(plan)
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.hold_links(&plan.links);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.release_links(&plan.links);
    }
}
