//! `split`: a majority/minority split of the server nodes (brokers and controllers) for
//! `duration_s`: the minority is `nodes`, or `target` plus random server nodes up to
//! floor(n/2); every link across the sides is cut both ways.

use super::{Draw, Planner, Rule, StepCheck};
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use rand_chacha::ChaCha8Rng;
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use crate::nemesis::resolve::{is_server, links_across, split_sides};
use crate::scenario::validate::server_count;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// A server the minority is built around.
    #[serde(default)]
    pub target: Option<String>,
    /// The minority, when given whole.
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
    pub duration_s: f64,
}

impl Rule for Split {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        Split { target: Some(draw.target), nodes: None, duration_s: draw.duration_s }
    }

    fn unfit(scenario: &Scenario) -> Option<String> {
        let servers = server_count(scenario);
        (servers < 2).then(|| {
            format!("`split` needs at least 2 brokers and controllers, the scenario has {servers}")
        })
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.duration(self.duration_s);
        match (&self.target, &self.nodes) {
            (Some(_), Some(_)) => check.problem("nodes", "`split` takes `target` or `nodes`, not both"),
            (None, None) => check.problem("kind", "`split` needs `target` or `nodes`"),
            (Some(target), None) => {
                check.server_target(target, "split");
                check.servers_at_least(2, "split");
            }
            (None, Some(nodes)) => {
                check.server_nodes(nodes, "split");
                let servers = server_count(check.scenario) as usize;
                if !nodes.is_empty() && nodes.len() >= servers {
                    let message = format!(
                        "{} nodes leave no other side: there are {servers} brokers and controllers",
                        nodes.len()
                    );
                    check.problem("nodes", message);
                }
            }
        }
    }

    fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let target = match &self.target {
            Some(text) => Some(planner.one(text)?),
            None => None,
        };
        let given = match &self.nodes {
            Some(texts) => planner.many(texts)?,
            None => Vec::new(),
        };
        if let Some(name) = target.iter().chain(&given).find(|name| !is_server(name)) {
            return Err(format!("`{name}` is not a broker or controller"));
        }
        let servers = planner.resolver().servers();
        let (minority, majority) = split_sides(&servers, &given, target.as_ref(), planner.rng);
        if minority.is_empty() || majority.is_empty() {
            return Err(format!("{} servers cannot be split", servers.len()));
        }
        let fields = vec![("minority", minority.join(",")), ("majority", majority.join(","))];
        Ok(Plan {
            links: links_across(&minority, &majority),
            nodes: minority,
            fields,
            ..Plan::default()
        })
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        nemesis.hold_links(&plan.links);
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.release_links(&plan.links);
    }
}
