//! `power-loss`: a correlated power loss: `nodes` (or `count` random brokers) crash at
//! the same instant, each losing unsynced writes as a crash does; all restart after
//! `duration_s`.

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::envelope::Impact;
use crate::nemesis::resolve::{is_server, Resolver};
use rand::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLoss {
    /// The nodes that lose power (names or roles).
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    /// Or how many random live brokers do.
    #[serde(default)]
    pub count: Option<u32>,
    pub duration_s: f64,
    /// A random injection's drawn target: a server among the random brokers.
    #[serde(skip)]
    pub first: Option<String>,
}

impl Rule for PowerLoss {
    fn drawn(draw: Draw, rng: &mut ChaCha8Rng, scenario: &Scenario) -> Self {
        let settings = scenario.nemesis.as_ref().expect("only the random nemesis draws");
        let max = settings.power_loss_max_or_default(scenario.cluster.brokers);
        let count = rng.gen_range(1..=max.max(1));
        PowerLoss {
            nodes: None,
            count: Some(count),
            duration_s: draw.duration_s,
            first: Some(draw.target),
        }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.duration(self.duration_s);
        let brokers = check.scenario.cluster.brokers;
        match (&self.nodes, self.count) {
            (Some(_), Some(_)) => {
                check.problem("count", "`power-loss` takes `nodes` or `count`, not both")
            }
            (None, None) => check.problem("kind", "`power-loss` needs `nodes` or `count`"),
            (Some(nodes), None) => check.server_nodes(nodes, "power-loss"),
            (None, Some(n)) if !(1..=brokers).contains(&n) => {
                check.problem("count", format!("{n} is outside 1..={brokers} (random brokers)"))
            }
            (None, Some(_)) => {}
        }
    }

    fn target(&self) -> Option<&str> {
        self.first.as_deref()
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let first = match &self.first {
            Some(text) => Some(planner.one(text)?).filter(|name| is_server(name)),
            None => None,
        };
        let nodes = match &self.nodes {
            Some(texts) => planner.many(texts)?,
            None => {
                let count = self.count.unwrap_or(1).max(1) as usize;
                let up = Resolver { names: planner.live, cluster: planner.cluster, coordinator: None };
                up.random_brokers(first, count, &mut *planner.rng)
            }
        };
        let fields = vec![("nodes", nodes.join(","))];
        Ok(Plan { nodes, fields, ..Plan::default() })
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
