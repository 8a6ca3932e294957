//! The three engines together: advanced one tick at a time, with ZAP's
//! concept requests routed to the MDP/ES engine through the orchestrator.

use super::Clock;
use super::grid::Features;
use super::mdp_es::{self, MdpEs, MdpEsConfig};
use super::orchestrator::{self, Orchestrator, OrchestratorConfig};
use super::zap::{self, PlanContext, Zap, ZapConfig};
use crate::error::{Error, Result};
use crate::store::{Breakthrough, EngineState, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The engines' names, as stored.
pub const ENGINE_NAMES: [&str; 3] = [zap::NAME, mdp_es::NAME, orchestrator::NAME];

/// Settings of all three engines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnginesConfig {
    pub zap: ZapConfig,
    pub mdp_es: MdpEsConfig,
    pub orchestrator: OrchestratorConfig,
}

/// The engines.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineSet {
    pub zap: Zap,
    pub mdp_es: MdpEs,
    pub orchestrator: Orchestrator,
}

struct Router<'a> {
    orchestrator: &'a mut Orchestrator,
    mdp_es: &'a MdpEs,
    clock: &'a mut dyn Clock,
}

impl PlanContext for Router<'_> {
    fn request_concepts(&mut self, features: &[Features]) -> Result<Vec<f64>> {
        let mdp = self.mdp_es;
        self.orchestrator.route(
            zap::NAME,
            mdp_es::NAME,
            "request_concepts",
            self.clock,
            || mdp.request_concepts(features),
        )
    }

    fn now_ns(&mut self) -> u64 {
        self.clock.now_ns()
    }
}

impl EngineSet {
    /// Fresh engines; each gets its own stream derived from `seed`.
    pub fn new(config: EnginesConfig, seed: u64) -> Self {
        let mut orchestrator = Orchestrator::new(config.orchestrator);
        orchestrator.register(zap::NAME, &["plan"]);
        orchestrator.register(mdp_es::NAME, &["request_concepts"]);
        EngineSet {
            zap: Zap::new(config.zap, seed ^ 0x5A50),
            mdp_es: MdpEs::new(config.mdp_es, seed ^ 0x4D44),
            orchestrator,
        }
    }

    /// One tick: the MDP/ES engine learns, then ZAP plans one task.
    pub fn tick(&mut self, clock: &mut dyn Clock) -> Vec<Breakthrough> {
        self.mdp_es.tick();
        let mut router = Router {
            orchestrator: &mut self.orchestrator,
            mdp_es: &self.mdp_es,
            clock,
        };
        self.zap.plan_once(&mut router);
        let mut out = self.mdp_es.take_breakthroughs();
        out.extend(self.zap.take_breakthroughs());
        out.extend(self.orchestrator.take_breakthroughs());
        out
    }

    /// Metrics of each engine, by name.
    pub fn metrics(&self) -> BTreeMap<String, Metrics> {
        BTreeMap::from([
            (zap::NAME.to_string(), self.zap.metrics()),
            (mdp_es::NAME.to_string(), self.mdp_es.metrics()),
            (orchestrator::NAME.to_string(), self.orchestrator.metrics()),
        ])
    }

    /// Every engine's full state, encoded, with its metrics.
    pub fn capture(&self) -> Result<Vec<EngineState>> {
        let m = self.metrics();
        Ok(vec![
            EngineState {
                engine: zap::NAME.into(),
                state: self.zap.capture()?,
                metrics: m[zap::NAME].clone(),
            },
            EngineState {
                engine: mdp_es::NAME.into(),
                state: self.mdp_es.capture()?,
                metrics: m[mdp_es::NAME].clone(),
            },
            EngineState {
                engine: orchestrator::NAME.into(),
                state: self.orchestrator.capture()?,
                metrics: m[orchestrator::NAME].clone(),
            },
        ])
    }

    /// Replaces one engine's state with a captured one.
    pub fn restore_engine(&mut self, engine: &str, state: &crate::EncodedState) -> Result<()> {
        match engine {
            zap::NAME => self.zap = Zap::restore(state)?,
            mdp_es::NAME => self.mdp_es = MdpEs::restore(state)?,
            orchestrator::NAME => self.orchestrator = Orchestrator::restore(state)?,
            other => {
                return Err(Error::NotFound {
                    what: "engine",
                    id: other.to_string(),
                });
            }
        }
        Ok(())
    }
}
