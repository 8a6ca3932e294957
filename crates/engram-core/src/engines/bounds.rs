//! Semantic bounds of engine states: every setting and every size a state
//! carries has a range, checked before the state is accepted anywhere
//! (import, restore, launch). A state that decodes is not yet a state the
//! engine can run: a wall density of 1 makes the task generator search
//! forever, a map of 10⁶ rows asks for terabytes, a simulation count of 2³²
//! makes one tick last days. Each engine's `check` names the first field
//! outside its range; the ranges are wide enough for any real experiment and
//! keep the worst tick to a bounded amount of work ([`WORK_BUDGET`]).

use crate::error::{Error, Result};
use std::fmt::Display;

/// Upper bound on the elementary steps (search expansions, environment
/// steps, table updates) one engine may do in one tick, as computed from its
/// settings in the worst case. The defaults use about 1 % of it.
pub const WORK_BUDGET: f64 = 1e8;

/// Collects the checks of one engine's state; the first failure names the
/// field (`zap: config.simulations = 4294967295 is outside 1..=256`).
pub(crate) struct Bounds {
    engine: &'static str,
}

impl Bounds {
    pub fn new(engine: &'static str) -> Self {
        Bounds { engine }
    }

    fn fail(&self, field: &str, detail: impl Display) -> Error {
        Error::corrupt(
            format!("{} state", self.engine),
            format!("{field} {detail}"),
        )
    }

    /// `lo <= v <= hi` (NaN fails).
    pub fn range<T: PartialOrd + Display>(&self, field: &str, v: T, lo: T, hi: T) -> Result<()> {
        if v >= lo && v <= hi {
            Ok(())
        } else {
            Err(self.fail(field, format!("= {v} is outside {lo}..={hi}")))
        }
    }

    /// A finite number in [0, 1].
    pub fn unit(&self, field: &str, v: f64) -> Result<()> {
        self.range(field, v, 0.0, 1.0)
    }

    /// A finite number (NaN and ±∞ fail).
    pub fn finite(&self, field: &str, v: f64) -> Result<()> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.fail(field, format!("= {v} is not a finite number")))
        }
    }

    /// A collection holding at most `cap` items.
    pub fn at_most(&self, field: &str, len: usize, cap: usize) -> Result<()> {
        if len <= cap {
            Ok(())
        } else {
            Err(self.fail(field, format!("holds {len} items, more than {cap}")))
        }
    }

    /// A collection holding exactly `n` items.
    pub fn exactly(&self, field: &str, len: usize, n: usize) -> Result<()> {
        if len == n {
            Ok(())
        } else {
            Err(self.fail(field, format!("holds {len} items, not {n}")))
        }
    }

    /// Any other condition, with what it means.
    pub fn holds(&self, field: &str, ok: bool, why: &str) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(field, why))
        }
    }

    /// The worst-case work of one tick stays within [`WORK_BUDGET`].
    pub fn work(&self, what: &str, units: f64) -> Result<()> {
        if units <= WORK_BUDGET {
            Ok(())
        } else {
            Err(self.fail(
                what,
                format!(
                    "allow up to {units:.3e} steps in one tick, more than the budget of {WORK_BUDGET:.0e}"
                ),
            ))
        }
    }

    /// The milestone log: a bounded number of rules of bounded length.
    pub fn milestones(&self, log: &super::MilestoneLog) -> Result<()> {
        self.at_most("milestones", log.len(), MAX_MILESTONES)?;
        self.holds(
            "milestones",
            log.rules().all(|r| r.chars().count() <= 200),
            "holds a rule longer than 200 characters",
        )
    }
}

/// Milestone rules one engine may have recorded.
pub const MAX_MILESTONES: usize = 10_000;
/// Largest value of any counter in a state (ticks, plans, calls): far
/// beyond any real run, far below overflow.
pub const MAX_COUNTER: u64 = 1 << 62;
/// Largest replay/history buffer any engine may keep.
pub const MAX_BUFFER: usize = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::envs::EnvSpec;
    use crate::engines::mdp_es::{MdpEs, MdpEsConfig};
    use crate::engines::orchestrator::{Orchestrator, OrchestratorConfig};
    use crate::engines::rng::Rng;
    use crate::engines::zap::{Zap, ZapConfig};
    use crate::engines::{EngineSet, EnginesConfig, check_state};

    fn zero_rng() -> Rng {
        serde_json::from_str(r#"{"s":[0,0,0,0]}"#).expect("rng")
    }

    /// Each case: the engine, what was changed, the field the refusal must
    /// name, and the crafted state. The first cases are the states that
    /// hung or aborted the app before the bounds existed.
    fn hostile_states() -> Vec<(
        &'static str,
        &'static str,
        &'static str,
        crate::EncodedState,
    )> {
        let zap = |f: &dyn Fn(&mut Zap)| {
            let mut z = Zap::new(ZapConfig::default(), 1);
            f(&mut z);
            z.capture().expect("capture")
        };
        let mdp = |f: &dyn Fn(&mut MdpEs)| {
            let mut e = MdpEs::new(MdpEsConfig::default(), 1);
            f(&mut e);
            e.capture().expect("capture")
        };
        let orch = |f: &dyn Fn(&mut Orchestrator)| {
            let mut o = Orchestrator::new(OrchestratorConfig::default());
            f(&mut o);
            o.capture().expect("capture")
        };
        vec![
            (
                "zap",
                "walls at 100 %",
                "wall_density",
                zap(&|z| z.config.tasks.wall_density = 1.0),
            ),
            (
                "zap",
                "2^32-1 simulations",
                "config.simulations",
                zap(&|z| z.config.simulations = u32::MAX),
            ),
            (
                "zap",
                "a 10^6-cell side",
                "config.tasks.max_size",
                zap(&|z| z.config.tasks.max_size = 1_000_000),
            ),
            (
                "zap",
                "2x2 maps (no start 3 steps from a goal)",
                "config.tasks.min_size",
                zap(&|z| z.config.tasks.min_size = 2),
            ),
            (
                "zap",
                "NaN slip",
                "config.tasks.slip_min",
                zap(&|z| z.config.tasks.slip_min = f64::NAN),
            ),
            (
                "zap",
                "search within limits but over budget",
                "config.simulations × max_depth",
                zap(&|z| {
                    z.config.simulations = 4096;
                    z.config.max_depth = 1024;
                }),
            ),
            (
                "zap",
                "10^6 held-out maps",
                "config.heldout_maps",
                zap(&|z| z.config.heldout_maps = 1_000_000),
            ),
            (
                "zap",
                "a replay buffer over its cap",
                "replay",
                zap(&|z| {
                    z.config.replay_cap = 1;
                    z.replay.extend((0..2).map(|_| crate::engines::zap::Sample {
                        features: [0.0; 6],
                        target: 0.0,
                    }));
                }),
            ),
            (
                "zap",
                "the counter at its limit",
                "plans_generated",
                zap(&|z| z.plans_generated = u64::MAX),
            ),
            (
                "zap",
                "a generator stuck at zero",
                "rng",
                zap(&|z| z.rng = zero_rng()),
            ),
            (
                "zap",
                "seven value weights",
                "weights",
                zap(&|z| z.weights.push(0.0)),
            ),
            (
                "mdp_es",
                "10^6 steps per tick × 10^3",
                "config.q.steps_per_tick",
                mdp(&|e| e.config.q.steps_per_tick = u32::MAX),
            ),
            (
                "mdp_es",
                "2^40 ES pairs",
                "config.es.pairs",
                mdp(&|e| e.config.es.pairs = 1 << 40),
            ),
            (
                "mdp_es",
                "ε of 7",
                "config.q.epsilon_start",
                mdp(&|e| e.config.q.epsilon_start = 7.0),
            ),
            (
                "mdp_es",
                "a 1000 × 1000 FrozenLake map",
                "config.q.env",
                mdp(&|e| {
                    e.config.q.env = EnvSpec::FrozenLake {
                        map: vec!["S".repeat(1_000); 1_000],
                        slippery: true,
                    };
                }),
            ),
            (
                "mdp_es",
                "ES work over budget",
                "config.es",
                mdp(&|e| {
                    e.config.es.pairs = 1024;
                    e.config.es.episodes_per_eval = 1000;
                }),
            ),
            (
                "mdp_es",
                "a current state beyond the map",
                "state",
                mdp(&|e| e.state = Some(16)),
            ),
            (
                "mdp_es",
                "an ES individual of 9 parameters",
                "es.population",
                mdp(&|e| e.es.population = vec![vec![0.0; 9]]),
            ),
            (
                "mdp_es",
                "a Q table for another map",
                "q",
                mdp(&|e| e.q.push(0.0)),
            ),
            (
                "orchestrator",
                "a milestone at 0 calls (fires on every call)",
                "next_breakthrough",
                orch(&|o| o.next_breakthrough = 0),
            ),
            (
                "orchestrator",
                "a first milestone at 2^64-1",
                "config.breakthrough_every",
                orch(&|o| o.config.breakthrough_every = u64::MAX),
            ),
            (
                "orchestrator",
                "calls at 2^64-1",
                "calls",
                orch(&|o| o.calls = u64::MAX),
            ),
            (
                "orchestrator",
                "10^5 systems",
                "registry",
                orch(&|o| {
                    for i in 0..100_000 {
                        o.register(&format!("s{i}"), &[]);
                    }
                }),
            ),
        ]
    }

    #[test]
    fn hostile_engine_states_are_refused_naming_the_field() {
        for (engine, what, field, state) in hostile_states() {
            let err = check_state(engine, &state)
                .expect_err(&format!("{engine} with {what} must be refused"));
            assert_eq!(err.code(), "corrupt_state", "{engine} {what}: {err}");
            assert!(
                err.to_string().contains(field),
                "{engine} {what}: {err} should name {field}"
            );
            let mut set = EngineSet::new(EnginesConfig::default(), 1);
            let before = set.clone();
            assert!(set.restore_engine(engine, &state).is_err());
            assert_eq!(
                set, before,
                "{engine} {what}: a refused restore changed the engines"
            );
        }
    }

    #[test]
    fn every_state_the_engines_write_passes_and_the_defaults_use_a_fraction_of_the_budget() {
        assert!(EnginesConfig::default().check().is_ok());
        let mut set = EngineSet::new(EnginesConfig::default(), 9);
        let mut clock = crate::engines::FakeClock { now: 0, step: 1000 };
        for _ in 0..300 {
            set.tick(&mut clock);
        }
        for s in set.capture().expect("capture") {
            check_state(&s.engine, &s.state).unwrap_or_else(|e| panic!("{}: {e}", s.engine));
        }
        // Well inside the budget: a user may raise any one setting several
        // times before the budget refuses it.
        let mut cfg = EnginesConfig::default();
        cfg.zap.simulations *= 8;
        cfg.mdp_es.es.pairs *= 8;
        cfg.mdp_es.q.steps_per_tick *= 8;
        assert!(cfg.check().is_ok(), "{:?}", cfg.check());
    }

    #[test]
    fn the_task_generator_ends_even_when_no_map_has_a_reachable_goal() {
        let cfg = crate::engines::grid::TaskGenConfig {
            wall_density: 1.0,
            hole_density: 0.0,
            ..Default::default()
        };
        let task = crate::engines::grid::GridTask::generate(&cfg, &mut Rng::new(3));
        assert!(task.optimal_success() > 0.0, "the fallback map is solvable");
    }

    #[test]
    fn each_check_names_the_field_and_refuses_nan() {
        let b = Bounds::new("zap");
        assert!(b.range("config.x", 3u32, 1, 5).is_ok());
        let e = b.range("config.x", 9u32, 1, 5).expect_err("out of range");
        assert_eq!(e.code(), "corrupt_state");
        assert!(
            e.to_string().contains("config.x = 9 is outside 1..=5"),
            "{e}"
        );
        assert!(b.unit("config.p", f64::NAN).is_err());
        assert!(b.unit("config.p", 1.0).is_ok());
        assert!(b.finite("w", f64::INFINITY).is_err());
        assert!(b.at_most("replay", 11, 10).is_err());
        assert!(b.exactly("weights", 5, 6).is_err());
        assert!(b.work("search", WORK_BUDGET * 2.0).is_err());
        assert!(b.work("search", WORK_BUDGET).is_ok());
    }
}
