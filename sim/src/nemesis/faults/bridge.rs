//! `bridge`: Jepsen's bridge for `duration_s`: `target` talks to everyone; the other
//! server nodes form two random halves that cannot talk to each other.

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::resolve::{bridge_sides, is_server, links_across};
use crate::scenario::validate::server_count;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for Bridge {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        Bridge { target: draw.target, duration_s: draw.duration_s }
    }

    fn unfit(scenario: &Scenario) -> Option<String> {
        let servers = server_count(scenario);
        (servers < 3).then(|| {
            format!("`bridge` needs at least 3 brokers and controllers, the scenario has {servers}")
        })
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.server_target(&self.target, "bridge");
        check.servers_at_least(3, "bridge");
        check.duration(self.duration_s);
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let bridge = planner.one(&self.target)?;
        if !is_server(&bridge) {
            return Err(format!("`{bridge}` is not a broker or controller"));
        }
        let servers = planner.resolver().servers();
        let (left, right) = bridge_sides(&servers, &bridge, planner.rng);
        if left.is_empty() || right.is_empty() {
            return Err("too few servers for a bridge".to_string());
        }
        let fields = vec![("left", left.join(",")), ("right", right.join(","))];
        Ok(Plan { links: links_across(&left, &right), nodes: vec![bridge], fields, ..Plan::default() })
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.hold_links(&plan.links);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.release_links(&plan.links);
    }
}
