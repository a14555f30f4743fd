//! `disk-wipe`: the node crashes and comes back after `duration_s` on an empty disk (a lost
//! volume replaced by a blank one): every file is gone, synced or not. Kafka's answer is
//! KIP-966's unclean-shutdown rule (a broker that registers without a clean-shutdown marker
//! leaves the ISR and the ELR) and, for the leader's view, KIP-903's broker epochs.
//!
//! Brokers and clients only: a controller is a Raft voter, and a voter that forgets its
//! term and vote may vote twice in one term and elect two leaders (replicated-safe with
//! every kind, seeds 115 and 252). KRaft's static quorum assumes durable voters; KIP-853
//! gives a replaced disk a new directory id so the voter is no longer taken for the old one.

use super::{Draw, Planner, Rule, StepCheck};
use crate::scenario::Target;
use crate::nemesis::envelope::Impact;
use crate::nemesis::{Applied, Nemesis, NemesisRef, Plan};
use crate::scenario::Scenario;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskWipe {
    pub target: String,
    pub duration_s: f64,
}

impl Rule for DiskWipe {
    fn drawn(draw: Draw, _rng: &mut ChaCha8Rng, _scenario: &Scenario) -> Self {
        DiskWipe { target: draw.target, duration_s: draw.duration_s }
    }

    fn validate(&self, check: &mut StepCheck<'_>) {
        check.duration(self.duration_s);
        let Some(target) = check.node("target", &self.target) else { return };
        let controller = match &target {
            Target::Node(name) => name.starts_with("controller-"),
            Target::AnyOf(prefix) => *prefix == "controller-",
            Target::ActiveController => true,
            _ => false,
        };
        if controller {
            let message = format!("`{target}`: `disk-wipe` cannot wipe a Raft voter's disk");
            check.problem("target", message);
        }
    }

    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let node = planner.one(&self.target)?;
        match node.starts_with("controller-") {
            true => Err(format!("`{node}` is a Raft voter: its disk is not wiped")),
            false => Ok(Plan::on(node)),
        }
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
        for node in &plan.nodes {
            let files = nemesis.disk().wipe(nemesis.id_of(node));
            nemesis.world.event(node, "disk-wiped", &[("files", files.to_string())]);
            nemesis.world.mark(node, crate::coverage::Mark::DiskWiped);
        }
        Applied::UntilRepair
    }

    fn repair(&self, nemesis: &Nemesis, plan: &Plan) {
        nemesis.restart(&plan.nodes);
    }
}
