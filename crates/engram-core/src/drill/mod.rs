//! Restore drills: a backup's states evaluated again, in a sandbox — the
//! same evaluations the engines report, run on decoded copies that nothing
//! else sees (the live engines, the stored rows and bytes are never
//! touched) — and a learner's own drill command run in a child process
//! ([`command`]).
//!
//! - MDP/ES: the greedy Q policy's exact return within the environment's
//!   time limit, beside the optimum (`greedy_success`/`greedy_return`,
//!   `policy_quality`), and the best ES individual on its fixed validation
//!   set (`best_fitness`).
//! - ZAP: the planner on its held-out maps (`heldout_success`,
//!   `heldout_vs_optimal`), its concept requests answered by the MDP/ES
//!   state of the same backup.
//! - The orchestrator has no evaluation: it is not drilled.
//!
//! Rooms: this file (engines), `command` (a learner's child process).
//!
//! Must not: know SQL; write anything (callers record the results).

pub mod bisect;
pub mod command;

use crate::EncodedState;
use crate::engines::grid::Features;
use crate::engines::mdp_es::{self, MdpEs};
use crate::engines::zap::{self, PlanContext, Zap};
use crate::engines::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::wire::{DrillResult, Metrics};
use std::time::Instant;

/// Whether engine `name` can be drilled (it has an evaluation).
pub fn drills_engine(name: &str) -> bool {
    name == mdp_es::NAME || name == zap::NAME
}

/// The figures of one engine's drill, by name.
fn figures(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The figures of the greedy-Q evaluation, as the engine reports them
/// (success on FrozenLake, return elsewhere).
const Q_FIGURES: [&str; 5] = [
    "policy_quality",
    "greedy_success",
    "optimal_success",
    "greedy_return",
    "optimal_return",
];

/// The MDP/ES engine's evaluations on a copy of `state`.
pub fn drill_mdp_es(state: &EncodedState) -> Result<Metrics> {
    let mut e = MdpEs::restore(state)?;
    e.evaluate_q();
    let best = e.es.best_individual.clone();
    let fitness = e.validated_fitness(&best);
    let mut out: Metrics = e
        .metrics()
        .into_iter()
        .filter(|(k, _)| Q_FIGURES.contains(&k.as_str()))
        .collect();
    out.insert("best_fitness".into(), fitness);
    Ok(out)
}

/// Concept requests in a drill: answered by the same backup's MDP/ES state.
struct Sandbox<'a> {
    mdp_es: Option<&'a MdpEs>,
    clock: SystemClock,
}

impl PlanContext for Sandbox<'_> {
    fn request_concepts(&mut self, features: &[Features]) -> Result<Vec<f64>> {
        match self.mdp_es {
            Some(m) => m.request_concepts(features),
            None => Err(Error::InvalidInput(
                "this backup holds no MDP/ES state to answer concept requests".into(),
            )),
        }
    }

    fn now_ns(&mut self) -> u64 {
        self.clock.now_ns()
    }
}

/// ZAP's held-out evaluation on a copy of `state`.
pub fn drill_zap(state: &EncodedState, mdp_es: Option<&EncodedState>) -> Result<Metrics> {
    let mut z = Zap::restore(state)?;
    // A damaged MDP/ES state only takes the concepts away.
    let concepts = mdp_es.and_then(|s| MdpEs::restore(s).ok());
    let mut ctx = Sandbox {
        mdp_es: concepts.as_ref(),
        clock: SystemClock::default(),
    };
    z.evaluate_heldout(&mut ctx);
    Ok(figures(&[
        ("heldout_success", z.heldout.success),
        ("heldout_optimal", z.heldout.optimal),
        ("heldout_vs_optimal", z.heldout.vs_optimal),
    ]))
}

/// One engine's state as a backup holds it (or why it could not be read).
pub struct HeldState {
    pub engine: String,
    pub state: Result<EncodedState>,
    /// What the backup reported.
    pub metrics: Metrics,
}

/// Drills `engine` among a backup's `states`, timed; a state that cannot
/// be read or run is a failed drill saying why.
pub fn drill_engine(engine: &str, states: &[HeldState], now_ms: impl Fn() -> i64) -> DrillResult {
    let t0 = Instant::now();
    let held = states.iter().find(|s| s.engine == engine);
    let ran = match held.map(|h| h.state.as_ref()) {
        None => Err(format!("the backup holds no {engine} state")),
        Some(Err(e)) => Err(format!("its {engine} state is damaged: {e}")),
        Some(Ok(state)) => {
            let mdp = states
                .iter()
                .find(|s| s.engine == mdp_es::NAME)
                .and_then(|s| s.state.as_ref().ok());
            let r = match engine {
                mdp_es::NAME => drill_mdp_es(state),
                zap::NAME => drill_zap(state, mdp),
                other => Err(Error::InvalidInput(format!(
                    "{other} has no evaluation to drill"
                ))),
            };
            r.map_err(|e| format!("its {engine} state could not be drilled: {e}"))
        }
    };
    finish(engine, t0, now_ms(), held.map(|h| &h.metrics), ran)
}

/// A drill's result: the figures, beside what the backup reported for the
/// same keys.
pub fn finish(
    unit: &str,
    t0: Instant,
    at_ms: i64,
    reported_all: Option<&Metrics>,
    ran: std::result::Result<Metrics, String>,
) -> DrillResult {
    let took_ms = t0.elapsed().as_millis() as u64;
    let (metrics, error) = match ran {
        Ok(m) => (m, None),
        Err(e) => (Metrics::new(), Some(e)),
    };
    let reported = reported_all
        .map(|r| {
            r.iter()
                .filter(|(k, _)| metrics.contains_key(*k))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        })
        .unwrap_or_default();
    DrillResult {
        unit: unit.to_string(),
        at_ms,
        took_ms,
        metrics,
        reported,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{EngineSet, EnginesConfig};

    fn held(set: &EngineSet) -> Vec<HeldState> {
        set.capture()
            .expect("capture")
            .into_iter()
            .map(|s| HeldState {
                engine: s.engine,
                state: Ok(s.state),
                metrics: s.metrics,
            })
            .collect()
    }

    #[test]
    fn a_drill_measures_what_the_engines_measure_without_changing_them() {
        let mut set = EngineSet::new(EnginesConfig::default(), 11);
        let mut clock = crate::engines::FakeClock { now: 0, step: 1000 };
        for _ in 0..200 {
            set.tick(&mut clock);
        }
        let states = held(&set);
        let before: Vec<Vec<u8>> = states
            .iter()
            .map(|s| s.state.as_ref().expect("state").as_bytes().to_vec())
            .collect();
        let r = drill_engine(mdp_es::NAME, &states, || 7);
        assert_eq!(r.error, None);
        // The exact evaluation, done by the engine itself on the same table.
        let mut own = set.mdp_es.clone();
        own.evaluate_q();
        assert_eq!(r.metrics["policy_quality"], own.q_eval.quality);
        assert_eq!(r.metrics["greedy_success"], own.q_eval.greedy);
        let best = own.es.best_individual.clone();
        assert_eq!(r.metrics["best_fitness"], own.validated_fitness(&best));
        assert_eq!(
            r.reported["policy_quality"],
            set.mdp_es.metrics()["policy_quality"]
        );
        assert!(
            !r.reported.contains_key("episodes"),
            "only the drilled keys"
        );
        let z = drill_engine(zap::NAME, &states, || 7);
        assert_eq!(z.error, None);
        let mut own = set.zap.clone();
        let mdp = set.mdp_es.clone();
        own.evaluate_heldout(&mut Sandbox {
            mdp_es: Some(&mdp),
            clock: SystemClock::default(),
        });
        assert_eq!(z.metrics["heldout_success"], own.heldout.success);
        // Nothing it read changed.
        let after: Vec<Vec<u8>> = states
            .iter()
            .map(|s| s.state.as_ref().expect("state").as_bytes().to_vec())
            .collect();
        assert_eq!(before, after);
        // The orchestrator has nothing to drill; a damaged state says so.
        let o = drill_engine("orchestrator", &states, || 7);
        assert!(o.error.expect("no evaluation").contains("no evaluation"));
        let mut broken = held(&set);
        broken[0].state = Err(Error::corrupt(
            "zap in backup 3",
            "does not match its checksum",
        ));
        let b = drill_engine(&broken[0].engine.clone(), &broken, || 7);
        let e = b.error.expect("damaged");
        assert!(e.contains("damaged") && e.contains("checksum"), "{e}");
        assert!(b.metrics.is_empty());
    }
}
