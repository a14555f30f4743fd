//! `clean-shutdown`: the broker is asked to stop as an operator would (SIGTERM): a
//! controlled shutdown moves its leaderships and ISR places away, it flushes every log and
//! writes its clean-shutdown marker, and it stops; after `duration_s` it starts again and
//! registers with the marker (KIP-966), keeping its ELR places. If the shutdown has not
//! finished by then (no controller answered), the restart kills it first: an unclean
//! shutdown, as when an operator's patience runs out.

use super::{Draw, Rule, StepCheck};
use crate::nemesis::envelope::Impact;
use crate::nemesis::{now_ms, Applied, Nemesis, NemesisRef, Plan};
use crate::scenario::Scenario;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often the nemesis looks whether the broker has finished shutting down.
const POLL_MS: u64 = 5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanShutdown {
    /// A broker (name or role).
    pub target: String,
    pub duration_s: f64,
}

impl Rule for CleanShutdown {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        CleanShutdown { target: draw.target, duration_s: draw.duration_s }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.duration(self.duration_s);
        let Some(target) = check.node("target", &self.target) else { return };
        if !target.is_broker() {
            let message = format!("`{target}`: `clean-shutdown` needs a broker target");
            check.problem("target", message);
        }
    }

    fn target(&self) -> Option<&str> {
        Some(&self.target)
    }

    fn duration_s(&self) -> f64 {
        self.duration_s
    }

    fn plan(&self, planner: &mut super::Planner<'_>) -> Result<Plan, String> {
        let broker = planner.one(&self.target)?;
        match broker.starts_with("broker-") {
            true => Ok(Plan::on(broker)),
            false => Err(format!("`{broker}` is not a broker")),
        }
    }

    fn on_process(&self) -> bool {
        true
    }

    /// Down for the fault's duration; counted as a kill, since a shutdown the controller
    /// never granted ends in one.
    fn impact(&self, plan: &Plan) -> Impact {
        Impact { kills: plan.nodes.clone(), impairs: Vec::new() }
    }

    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied {
        let name = plan.nodes[0].clone();
        nemesis.stopping.lock().expect("nemesis stopping set").insert(name.clone());
        if let Some(signal) = nemesis.world.shutdowns.get(&name) {
            signal.raise();
        }
        let deadline = now_ms() + self.duration().as_millis() as u64;
        let nemesis = std::sync::Arc::downgrade(nemesis);
        madsim::task::spawn(async move { stop_when_shut_down(nemesis, name, deadline).await });
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.stopping.lock().expect("nemesis stopping set").remove(&plan.nodes[0]);
        nemesis.restart(&plan.nodes);
    }
}

/// Stops the broker's process once it reports its shutdown finished, until the repair.
/// Holds the nemesis weakly across its sleeps (see `Nemesis::run`).
async fn stop_when_shut_down(
    nemesis: std::sync::Weak<crate::nemesis::Nemesis>,
    name: String,
    deadline: u64,
) {
    while now_ms() < deadline {
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
        let Some(nemesis) = nemesis.upgrade() else { return };
        if !nemesis.stopping.lock().expect("nemesis stopping set").contains(&name) {
            return;
        }
        if nemesis.world.state().shut_down.remove(&name) {
            nemesis.stop(&name);
            return;
        }
    }
}
