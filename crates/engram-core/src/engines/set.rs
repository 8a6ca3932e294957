//! The three engines together: advanced one tick at a time, with ZAP's
//! concept requests routed to the MDP/ES engine through the orchestrator.

use super::Clock;
use super::grid::Features;
use super::mdp_es::{self, MdpEs, MdpEsConfig};
use super::orchestrator::{self, Orchestrator, OrchestratorConfig};
use super::zap::{self, PlanContext, Zap, ZapConfig};
use crate::error::{Error, Result};
use crate::store::EngineState;
use crate::wire::{Breakthrough, Metrics};
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

impl EnginesConfig {
    /// Every engine's settings within their ranges (see [`super::bounds`]).
    pub fn check(&self) -> Result<()> {
        use super::bounds::Bounds;
        self.zap.check(&Bounds::new(zap::NAME))?;
        self.mdp_es.check(&Bounds::new(mdp_es::NAME))?;
        self.orchestrator.check(&Bounds::new(orchestrator::NAME))
    }
}

/// Whether `engine` is one of the built-in engines.
pub fn is_builtin(engine: &str) -> bool {
    ENGINE_NAMES.contains(&engine)
}

/// Checks that `state` is one the built-in `engine` can run: it decodes and
/// every setting and size is within its bounds. Nothing runs it.
pub fn check_state(engine: &str, state: &crate::EncodedState) -> Result<()> {
    match engine {
        zap::NAME => Zap::restore(state).map(drop),
        mdp_es::NAME => MdpEs::restore(state).map(drop),
        orchestrator::NAME => Orchestrator::restore(state).map(drop),
        other => Err(Error::NotFound {
            what: "engine",
            id: other.to_string(),
        }),
    }
}

/// Checks every built-in engine's state among `states` ([`check_state`]);
/// other names (learners of other processes) are not the engines' to judge.
pub fn check_states(states: &[EngineState]) -> Result<()> {
    states
        .iter()
        .filter(|s| is_builtin(&s.engine))
        .try_for_each(|s| check_state(&s.engine, &s.state))
}

/// The engines.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineSet {
    pub zap: Zap,
    pub mdp_es: MdpEs,
    pub orchestrator: Orchestrator,
    /// Engines that panicked in a tick, with the panic message: paused
    /// (not ticked, not captured) until a restore replaces their state.
    failed: BTreeMap<String, String>,
    /// Failures not yet taken by [`EngineSet::take_failures`].
    new_failures: Vec<(String, String)>,
    /// When each evaluation was made, as the running Engram saw it.
    evaluated: EvaluatedAt,
    /// Tests: the engine whose next tick panics.
    #[cfg(test)]
    pub(crate) panic_next: Option<&'static str>,
}

/// One of the engines' evaluations: its engine, the metric holding the
/// step it was made at, and the metric holding when (unix ms; see
/// [`EngineSet::stamp_evaluations`]).
pub struct Evaluation {
    pub engine: &'static str,
    pub step: &'static str,
    pub when: &'static str,
}

/// The engines' evaluations, in the order of
/// [`EngineSet::evaluation_steps`].
pub const EVALUATIONS: [Evaluation; 2] = [
    Evaluation {
        engine: zap::NAME,
        step: "heldout_at_plans",
        when: "heldout_at_ms",
    },
    Evaluation {
        engine: mdp_es::NAME,
        step: "q_evaluated_at_episode",
        when: "q_evaluated_at_ms",
    },
];

/// When each evaluation of [`EVALUATIONS`] was made, in its order: the
/// step it was stamped for and the time (None: made before this run knew,
/// so not known). Wall time is not part of an engine's state (the engines
/// are deterministic given a seed and never read it), so it lives beside
/// them: two sets equal in their engines are equal whatever these say.
#[derive(Clone, Debug, Default)]
struct EvaluatedAt([Option<(u64, Option<i64>)>; 2]);

impl PartialEq for EvaluatedAt {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Runs one engine's part of a tick; a panic becomes its message.
fn guarded(f: impl FnOnce()) -> std::result::Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
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
            failed: BTreeMap::new(),
            new_failures: Vec::new(),
            evaluated: EvaluatedAt::default(),
            #[cfg(test)]
            panic_next: None,
        }
    }

    /// The step each evaluation was last made at (None: not yet), in the
    /// order of [`EVALUATIONS`].
    fn evaluation_steps(&self) -> [Option<u64>; 2] {
        [self.zap.heldout_at_plans(), self.mdp_es.q_eval.at_episode]
    }

    /// Notes `now_ms()` as the time of every evaluation made since the
    /// last call (its step moved). Called by the running Engram after
    /// each tick: the time is when the tick that made it ended.
    pub fn stamp_evaluations(&mut self, now_ms: impl Fn() -> i64) {
        let steps = self.evaluation_steps();
        for (stamp, step) in self.evaluated.0.iter_mut().zip(steps) {
            if let Some(step) = step
                && stamp.is_none_or(|(s, _)| s != step)
            {
                *stamp = Some((step, Some(now_ms())));
            }
        }
    }

    /// Takes the evaluation times of `engine` from metrics it was saved
    /// with (a live state or a backup being loaded), where they are of the
    /// same evaluation as its state now holds. Without them an evaluation
    /// already made has no time (it was made before times were kept): it
    /// is not given the time of loading.
    pub fn take_evaluation_times(&mut self, engine: &str, saved: &Metrics) {
        let steps = self.evaluation_steps();
        for ((e, stamp), step) in EVALUATIONS.iter().zip(&mut self.evaluated.0).zip(steps) {
            if e.engine != engine {
                continue;
            }
            *stamp = step.map(|step| {
                let same = saved.get(e.step) == Some(&(step as f64));
                let when = saved.get(e.when).filter(|t| same && t.is_finite());
                (step, when.map(|t| *t as i64))
            });
        }
    }

    /// One tick: the MDP/ES engine learns, then ZAP plans one task (its
    /// concept requests routed through the orchestrator).
    ///
    /// A panic in one engine's part pauses that engine — it is not ticked
    /// or captured again until a restore replaces its state, so its last
    /// saved state is never overwritten by a half-updated one — and the
    /// others run on. [`EngineSet::take_failures`] reports it once.
    pub fn tick(&mut self, clock: &mut dyn Clock) -> Vec<Breakthrough> {
        #[cfg(test)]
        let inject = self.panic_next.take();
        #[cfg(not(test))]
        let inject: Option<&str> = None;
        if !self.failed.contains_key(mdp_es::NAME) {
            let mdp = &mut self.mdp_es;
            let r = guarded(|| {
                if inject == Some(mdp_es::NAME) {
                    panic!("injected failure");
                }
                mdp.tick()
            });
            self.note_failure(mdp_es::NAME, r);
        }
        if !self.failed.contains_key(zap::NAME) {
            let (zap, orchestrator, mdp) = (&mut self.zap, &mut self.orchestrator, &self.mdp_es);
            let r = guarded(|| {
                if inject == Some(zap::NAME) {
                    panic!("injected failure");
                }
                let mut router = Router {
                    orchestrator,
                    mdp_es: mdp,
                    clock,
                };
                zap.plan_once(&mut router);
            });
            self.note_failure(zap::NAME, r);
        }
        let mut out = self.mdp_es.take_breakthroughs();
        out.extend(self.zap.take_breakthroughs());
        out.extend(self.orchestrator.take_breakthroughs());
        out
    }

    fn note_failure(&mut self, engine: &str, r: std::result::Result<(), String>) {
        if let Err(why) = r {
            self.failed.insert(engine.to_string(), why.clone());
            self.new_failures.push((engine.to_string(), why));
        }
    }

    /// Engines paused by a failure, with why.
    pub fn failed(&self) -> &BTreeMap<String, String> {
        &self.failed
    }

    /// Failures since the last call: (engine, panic message).
    pub fn take_failures(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.new_failures)
    }

    /// Metrics of each engine, by name.
    pub fn metrics(&self) -> BTreeMap<String, Metrics> {
        let mut m = BTreeMap::from([
            (zap::NAME.to_string(), self.zap.metrics()),
            (mdp_es::NAME.to_string(), self.mdp_es.metrics()),
            (orchestrator::NAME.to_string(), self.orchestrator.metrics()),
        ]);
        // Each evaluation's time, where it is known for the step held now.
        let known = EVALUATIONS
            .iter()
            .zip(&self.evaluated.0)
            .zip(self.evaluation_steps());
        for ((e, stamp), step) in known {
            if let (Some(step), Some((s, Some(t)))) = (step, stamp)
                && *s == step
                && let Some(metrics) = m.get_mut(e.engine)
            {
                metrics.insert(e.when.to_string(), *t as f64);
            }
        }
        m
    }

    /// Every running engine's full state, encoded, with its metrics. A
    /// paused engine (see [`EngineSet::tick`]) is left out: its last saved
    /// state stays as it was.
    pub fn capture(&self) -> Result<Vec<EngineState>> {
        let mut m = self.metrics();
        let mut out = Vec::with_capacity(ENGINE_NAMES.len());
        for name in ENGINE_NAMES {
            if self.failed.contains_key(name) {
                continue;
            }
            let state = match name {
                zap::NAME => self.zap.capture()?,
                mdp_es::NAME => self.mdp_es.capture()?,
                _ => self.orchestrator.capture()?,
            };
            out.push(EngineState {
                engine: name.into(),
                state,
                metrics: m.remove(name).unwrap_or_default(),
            });
        }
        Ok(out)
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
        // A restored state runs again, even if the engine had failed.
        self.failed.remove(engine);
        // Its evaluations were made before now, when is not known here
        // (see `take_evaluation_times`).
        self.take_evaluation_times(engine, &Metrics::new());
        Ok(())
    }
}
