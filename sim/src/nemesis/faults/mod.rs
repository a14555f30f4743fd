//! The fault kinds, one module each. A module owns everything about its kind: the
//! parameters a scenario step writes (a serde struct that refuses unknown fields, so a wrong
//! parameter is a parse error with file, line and field), the rules serde cannot check
//! (`validate`), the parameters of a random injection (`drawn`), which nodes and links it
//! acts on (`plan`), what it does to them while it lasts (`impact`, for the envelope), and
//! how it is applied and repaired. Adding a kind is one new module and one line in
//! `fault_kinds!` below.

mod check;
pub mod draw;

pub use check::StepCheck;
pub use draw::Draw;

use super::envelope::Impact;
use super::resolve::Resolver;
use super::{Applied, Nemesis, NemesisRef, Plan};
use crate::scenario::Scenario;
use crate::world::cluster::ClusterView;
use kafkasim::types::TopicPartition;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One fault kind's rules; implemented by its parameter type.
pub trait Rule {
    /// The parameters of a random injection, from the nemesis's common draw (and `rng` for
    /// what only this kind draws, after the common draw).
    fn drawn(draw: Draw, rng: &mut ChaCha8Rng, scenario: &Scenario) -> Self
    where
        Self: Sized;

    /// Why the nemesis cannot inject this kind in `scenario` at all (too few nodes).
    fn unfit(_scenario: &Scenario) -> Option<String>
    where
        Self: Sized,
    {
        None
    }

    /// The node or role written as the target (for a kind that takes one).
    fn target(&self) -> Option<&str>;

    /// How long the fault lasts before its repair, in seconds (zero: done at once).
    fn duration_s(&self) -> f64;

    fn duration(&self) -> Duration {
        seconds(self.duration_s())
    }

    /// The rules of a scripted step that its types do not already enforce; by default, a
    /// target this scenario can resolve and a positive duration.
    fn validate(&self, check: &mut StepCheck<'_>) {
        if let Some(target) = self.target() {
            check.node("target", target);
        }
        check.duration(self.duration_s());
    }

    /// The nodes (the first names the fault) and links it acts on, resolved now; by
    /// default, the one node its target resolves to.
    fn plan(&self, planner: &mut Planner<'_>) -> Result<Plan, String> {
        let target = self.target().ok_or("the fault has no target")?;
        Ok(Plan::on(planner.one(target)?))
    }

    /// Whether it acts on a process, so a node already down cannot take it.
    fn on_process(&self) -> bool {
        false
    }

    /// What it does to nodes while it lasts; by default a network fault impairs every end
    /// of the links it cuts, any other fault its first node.
    fn impact(&self, plan: &Plan) -> Impact {
        match plan.links.is_empty() {
            true => {
                Impact { kills: Vec::new(), impairs: plan.nodes.iter().take(1).cloned().collect() }
            }
            false => link_ends(plan),
        }
    }

    /// Whether it keeps the nodes it impairs from hearing others while it lasts (a pause, a
    /// cut link; not a disk fault): an active controller it holds misses every broker's
    /// heartbeats (`envelope::with_controller_fencing`).
    fn silences(&self, plan: &Plan) -> bool {
        !plan.links.is_empty()
    }

    /// Carries the fault out.
    fn apply(&self, nemesis: &NemesisRef, plan: &Plan) -> Applied;

    /// Undoes it (called once, after `duration`, unless the heal came first).
    fn repair(&self, nemesis: &Nemesis, plan: &Plan);
}

/// What `plan` resolves names against: the cluster as last reported, the nodes not held down
/// by a live fault, and the nemesis's own sub-stream.
pub struct Planner<'a> {
    /// Every node of the run, by name.
    pub names: &'a [String],
    /// The nodes no live fault holds down.
    pub live: &'a [String],
    pub cluster: &'a ClusterView,
    /// The group coordinator's partition, for the `coordinator` role.
    pub coordinator: Option<TopicPartition>,
    pub rng: &'a mut ChaCha8Rng,
}

impl Planner<'_> {
    /// Resolves names and roles among every node of the run.
    pub fn resolver(&self) -> Resolver<'_> {
        Resolver { names: self.names, cluster: self.cluster, coordinator: self.coordinator.clone() }
    }

    /// One node for a name or role.
    pub fn one(&mut self, text: &str) -> Result<String, String> {
        let resolver = Resolver {
            names: self.names,
            cluster: self.cluster,
            coordinator: self.coordinator.clone(),
        };
        resolver.one(text, &mut *self.rng)
    }

    /// Nodes for a list of names and roles.
    pub fn many(&mut self, texts: &[String]) -> Result<Vec<String>, String> {
        let resolver = Resolver {
            names: self.names,
            cluster: self.cluster,
            coordinator: self.coordinator.clone(),
        };
        resolver.many(texts, &mut *self.rng)
    }
}

impl Planner<'_> {
    /// A directed link from `target` to `peer` (None: a random node `may_pick` allows):
    /// the plan about `target`, naming the peer, with the link and both ends.
    pub fn link(
        &mut self,
        target: &str,
        peer: Option<&str>,
        may_pick: impl Fn(&str, &str) -> bool,
    ) -> Result<Plan, String> {
        let from = self.one(target)?;
        let to = match peer {
            Some(text) => self.one(text)?,
            None => {
                let others: Vec<String> =
                    self.names.iter().filter(|n| may_pick(&from, n)).cloned().collect();
                let sub = Resolver { names: &others, cluster: self.cluster, coordinator: None };
                sub.one("any-node", &mut *self.rng)?
            }
        };
        if from == to {
            return Err(format!("the target and the peer are both `{from}`"));
        }
        let mut plan = Plan::on(from.clone());
        plan.fields.push(("peer", to.clone()));
        plan.links.push((from, to.clone()));
        plan.nodes.push(to);
        Ok(plan)
    }
}

/// Generates the catalogue from one line per kind: the module, and the type that holds the
/// kind's parameters (its enum variant has the same name; its scenario name is kebab-case).
macro_rules! fault_kinds {
    ($($module:ident :: $Kind:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// The kinds of fault a step or the nemesis can inject.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum FaultKind {
            $($Kind,)*
        }

        /// A fault with its parameters, tagged by `kind` as written in scenario files.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum FaultSpec {
            $($Kind($module::$Kind),)*
        }

        impl FaultKind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [FaultKind] = &[$(FaultKind::$Kind,)*];

            /// A random injection of this kind.
            pub fn drawn(self, draw: Draw, rng: &mut ChaCha8Rng, scenario: &Scenario) -> FaultSpec {
                match self {
                    $(FaultKind::$Kind => FaultSpec::$Kind(<$module::$Kind as Rule>::drawn(draw, rng, scenario)),)*
                }
            }

            /// Why the nemesis cannot inject this kind in `scenario`.
            pub fn unfit(self, scenario: &Scenario) -> Option<String> {
                match self {
                    $(FaultKind::$Kind => <$module::$Kind as Rule>::unfit(scenario),)*
                }
            }
        }

        impl FaultSpec {
            pub fn kind(&self) -> FaultKind {
                match self {
                    $(FaultSpec::$Kind(_) => FaultKind::$Kind,)*
                }
            }

            /// The kind's rules, on these parameters.
            pub fn rule(&self) -> &dyn Rule {
                match self {
                    $(FaultSpec::$Kind(params) => params,)*
                }
            }
        }
    };
}

fault_kinds! {
    crash::Crash,
    pause::Pause,
    isolate::Isolate,
    reset_connections::ResetConnections,
    slow_disk::SlowDisk,
    disk_full::DiskFull,
    io_errors::IoErrors,
    bit_flips::BitFlips,
    latency_spike::LatencySpike,
    clock_skew::ClockSkew,
    one_way_cut::OneWayCut,
    split::Split,
    bridge::Bridge,
    cut_broker_links::CutBrokerLinks,
    power_loss::PowerLoss,
    disk_wipe::DiskWipe,
    clean_shutdown::CleanShutdown,
    message_rule::MessageRule,
}

impl FaultKind {
    /// The kebab-case name, as written in scenario files and event kinds.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .expect("FaultKind serializes to a kebab-case string")
    }
}

/// A network fault's impact: every end of a cut link is impaired.
fn link_ends(plan: &Plan) -> Impact {
    let mut nodes: Vec<String> =
        plan.links.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    nodes.sort();
    nodes.dedup();
    Impact { kills: Vec::new(), impairs: nodes }
}

/// Seconds as a duration; validation keeps them finite and positive, and a stray value
/// (a mutated scenario) becomes zero rather than a panic.
/// The fault with its `target` (if it has one) set to `node`; unchanged if the kind has
/// no target field.
pub fn with_target(fault: &FaultSpec, node: &str) -> FaultSpec {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(fault) else {
        return fault.clone();
    };
    if !fields.contains_key("target") {
        return fault.clone();
    }
    fields.insert("target".into(), serde_json::Value::String(node.into()));
    serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_else(|_| fault.clone())
}

pub fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_kebab_name_that_parses_back() {
        let mut names: Vec<String> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
        for (kind, name) in FaultKind::ALL.iter().zip(&names) {
            let back: FaultKind = serde_json::from_value(serde_json::Value::String(name.clone()))
                .expect("a kind's name parses back");
            assert_eq!(back, *kind, "{name}");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{name}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FaultKind::ALL.len(), "kind names must be unique");
    }
}
