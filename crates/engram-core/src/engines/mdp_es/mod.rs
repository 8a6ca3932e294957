//! The MDP/ES optimizer: tabular Q-learning (ε-greedy with decay) on a
//! Gymnasium discrete environment, and an OpenAI-ES (antithetic sampling,
//! centred-rank fitness shaping) evolving a linear CartPole-v1 policy.
//!
//! It also answers "concepts": value estimates for grid-cell features, from a
//! linear model it fits to its own Q-values when its environment is a
//! FrozenLake map. The ZAP planner uses them as a prior.
//!
//! Rooms: this file (configuration, state, metrics, capture and restore),
//! `qlearn` (the Q-learning step and its exact evaluation), `es` (the
//! evolution strategy and its validation set).

mod es;
mod qlearn;
#[cfg(test)]
mod tests;

pub use es::cartpole_fitness;

use super::bounds::{Bounds, MAX_BUFFER, MAX_COUNTER};
use super::envs::{CartPole, EnvSpec, TabularModel};
use super::grid::{Features, GridTask, N_FEATURES};
use super::orchestrator::check_schema;
use super::rng::Rng;
use super::{Bounded, MilestoneLog};
use crate::error::{Error, Result};
use crate::wire::{Breakthrough, Metrics};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Engine name.
pub const NAME: &str = "mdp_es";
const SCHEMA: u32 = 1;
/// Parameters of the linear CartPole policy: 4 weights and a bias.
pub const POLICY_PARAMS: usize = 5;

/// Q-learning settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QConfig {
    pub env: EnvSpec,
    /// Learning rate, multiplied by `alpha_decay` after every episode down to `alpha_min`.
    pub alpha: f64,
    pub alpha_decay: f64,
    pub alpha_min: f64,
    pub gamma: f64,
    pub epsilon_start: f64,
    pub epsilon_min: f64,
    /// Multiplies ε after every episode.
    pub epsilon_decay: f64,
    /// Environment steps per tick.
    pub steps_per_tick: u32,
    /// Evaluate the greedy policy exactly every this many ticks.
    pub eval_every_ticks: u64,
}

impl Default for QConfig {
    fn default() -> Self {
        QConfig {
            env: EnvSpec::frozen_lake_4x4(),
            alpha: 0.1,
            alpha_decay: 0.9999,
            alpha_min: 0.02,
            gamma: 0.999,
            epsilon_start: 1.0,
            epsilon_min: 0.2,
            epsilon_decay: 0.999,
            steps_per_tick: 200,
            eval_every_ticks: 10,
        }
    }
}

/// Evolution-strategy settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EsConfig {
    /// Antithetic pairs per generation (population = 2 × pairs).
    pub pairs: usize,
    pub sigma: f64,
    pub learning_rate: f64,
    /// CartPole episodes per fitness evaluation.
    pub episodes_per_eval: usize,
    /// Run one generation every this many ticks.
    pub every_ticks: u64,
    /// CartPole starts in the fixed validation set every candidate for
    /// "best" is re-evaluated on (its own RNG stream, never trained on).
    pub validation_episodes: usize,
    /// Validate the search mean every this many generations.
    pub validate_mean_every: u64,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            pairs: 8,
            sigma: 0.1,
            learning_rate: 0.05,
            episodes_per_eval: 3,
            every_ticks: 5,
            validation_episodes: 100,
            validate_mean_every: 10,
        }
    }
}

/// Breakthrough rules: the validated best fitness at or above `min_fitness`
/// after at least `min_generations` generations; and the greedy Q policy at
/// or above `min_policy_quality` of the optimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MdpEsRule {
    pub min_fitness: f64,
    pub min_generations: u64,
    pub min_policy_quality: f64,
}

impl Default for MdpEsRule {
    fn default() -> Self {
        MdpEsRule {
            min_fitness: 0.95,
            min_generations: 5,
            min_policy_quality: 0.95,
        }
    }
}

/// The exact evaluation of the greedy Q policy, separate from behaviour
/// (ε-greedy): expected return within Gymnasium's time limit from its start
/// distribution, beside the best any policy can expect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QEval {
    pub greedy: f64,
    pub optimal: f64,
    /// 1 = optimal; toward 0 = far from it (see [`policy_quality`]).
    pub quality: f64,
    /// Q episodes when it was measured (`None`: not yet, or a state written
    /// before this was kept — then a measured optimum says it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_episode: Option<u64>,
}

impl QEval {
    /// Whether the policy has been evaluated at all.
    pub fn measured(&self) -> bool {
        self.at_episode.is_some() || self.optimal != 0.0 || self.greedy != 0.0
    }
}

/// How close a return is to the optimum, in [0, 1]: `greedy / optimal` for
/// positive optima, `optimal / greedy` for negative ones (costs), 1 when both
/// are the same.
pub fn policy_quality(greedy: f64, optimal: f64) -> f64 {
    let q = if greedy >= optimal {
        1.0
    } else if optimal > 0.0 {
        greedy / optimal
    } else if greedy < 0.0 {
        optimal / greedy
    } else {
        0.0
    };
    q.clamp(0.0, 1.0)
}

impl MdpEsConfig {
    /// The ranges of every setting, and the worst case of one tick (its
    /// Q-learning steps, an exact evaluation, an ES generation with its
    /// validations) within [`WORK_BUDGET`](super::bounds::WORK_BUDGET).
    pub(crate) fn check(&self, b: &Bounds) -> Result<()> {
        let q = &self.q;
        if let EnvSpec::FrozenLake { map, .. } = &q.env {
            super::envs::validate_frozen_map(map).map_err(|e| {
                Error::corrupt(format!("{NAME} state"), format!("config.q.env {e}"))
            })?;
        }
        b.unit("config.q.alpha", q.alpha)?;
        b.unit("config.q.alpha_decay", q.alpha_decay)?;
        b.unit("config.q.alpha_min", q.alpha_min)?;
        b.unit("config.q.gamma", q.gamma)?;
        b.unit("config.q.epsilon_start", q.epsilon_start)?;
        b.unit("config.q.epsilon_min", q.epsilon_min)?;
        b.unit("config.q.epsilon_decay", q.epsilon_decay)?;
        b.range("config.q.steps_per_tick", q.steps_per_tick, 1, 1_000_000)?;
        b.range(
            "config.q.eval_every_ticks",
            q.eval_every_ticks,
            1,
            MAX_COUNTER,
        )?;
        let es = &self.es;
        b.range("config.es.pairs", es.pairs, 1, 1024)?;
        b.range("config.es.sigma", es.sigma, 1e-9, 100.0)?;
        b.range("config.es.learning_rate", es.learning_rate, 0.0, 100.0)?;
        b.range("config.es.episodes_per_eval", es.episodes_per_eval, 1, 1000)?;
        b.range("config.es.every_ticks", es.every_ticks, 1, MAX_COUNTER)?;
        b.range(
            "config.es.validation_episodes",
            es.validation_episodes,
            1,
            10_000,
        )?;
        b.range(
            "config.es.validate_mean_every",
            es.validate_mean_every,
            1,
            MAX_COUNTER,
        )?;
        b.range("config.rule.min_fitness", self.rule.min_fitness, 0.0, 1.0)?;
        b.range(
            "config.rule.min_generations",
            self.rule.min_generations,
            0,
            MAX_COUNTER,
        )?;
        b.unit(
            "config.rule.min_policy_quality",
            self.rule.min_policy_quality,
        )?;
        b.range("config.history_cap", self.history_cap, 0, MAX_BUFFER)?;
        b.range(
            "config.fitness_history_cap",
            self.fitness_history_cap,
            0,
            MAX_BUFFER,
        )?;
        // CartPole-v1 episodes last at most 500 steps; an evaluation sweeps
        // every (state, action, outcome) once per step of the horizon.
        let n_states = match &q.env {
            EnvSpec::FrozenLake { map, .. } => (map.len() * map[0].len()) as f64,
            EnvSpec::Taxi => 500.0,
            EnvSpec::CliffWalking => 48.0,
        };
        let eval = 2.0 * f64::from(q.env.max_episode_steps()) * n_states * 4.0 * 3.0;
        let generation = 500.0
            * (2.0 * es.pairs as f64 * es.episodes_per_eval as f64
                + 3.0 * es.validation_episodes as f64);
        b.work(
            "config.q.steps_per_tick + evaluation + config.es (one generation)",
            f64::from(q.steps_per_tick) + eval + generation + 4.0 * n_states * N_FEATURES as f64,
        )
    }
}

/// All settings of the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MdpEsConfig {
    pub q: QConfig,
    pub es: EsConfig,
    pub rule: MdpEsRule,
    /// Recent (s, a, r, s') kept.
    pub history_cap: usize,
    /// Fitness values kept (one per generation).
    pub fitness_history_cap: usize,
}

impl Default for MdpEsConfig {
    fn default() -> Self {
        MdpEsConfig {
            q: QConfig::default(),
            es: EsConfig::default(),
            rule: MdpEsRule::default(),
            history_cap: 1000,
            fitness_history_cap: 1000,
        }
    }
}

/// One Q-learning transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub s: u32,
    pub a: u32,
    pub r: f64,
    pub s2: u32,
}

/// The evolution strategy's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EsState {
    /// The search distribution's mean.
    pub theta: Vec<f64>,
    /// The last generation's individuals.
    pub population: Vec<Vec<f64>>,
    pub generation: u64,
    pub best_individual: Vec<f64>,
    /// The best individual's fitness on the validation set (mean return /
    /// 500, in [0, 1]). It only changes when a candidate validates higher.
    pub best_fitness: f64,
    /// Mean training fitness of each generation (bounded).
    pub fitness_history: Bounded<f64>,
    /// Seed of the validation set's own RNG stream.
    #[serde(default)]
    pub validation_seed: u64,
    /// `best_fitness` is a validated figure (false in states written before
    /// validation existed: re-validated at the next generation).
    #[serde(default)]
    pub validated: bool,
    /// The search mean's fitness on the validation set, last measured.
    #[serde(default)]
    pub mean_validated_fitness: f64,
}

/// The engine's whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MdpEs {
    pub config: MdpEsConfig,
    pub rng: Rng,
    pub q: Vec<f64>,
    pub n_states: u32,
    pub n_actions: u32,
    /// Current state, None between episodes.
    pub state: Option<u32>,
    pub episode_steps: u32,
    pub epsilon: f64,
    pub alpha: f64,
    pub history: Bounded<HistoryEntry>,
    pub es: EsState,
    pub ticks: u64,
    pub episodes: u64,
    pub policy_updates: u64,
    pub total_reward: f64,
    /// 1.0 / 0.0 per recent episode (reward > 0), last 100.
    pub recent_outcomes: Bounded<f64>,
    /// Linear concept model: features -> value.
    pub concept_weights: Vec<f64>,
    /// The greedy policy's exact evaluation, last computed.
    #[serde(default)]
    pub q_eval: QEval,
    #[serde(default)]
    pub milestones: MilestoneLog,
    /// Derived: the environment's model (shared, so a capture does not copy
    /// its tables).
    #[serde(skip)]
    model: Option<Arc<TabularModel>>,
    /// Derived: the optimal return under the time limit (computed once).
    #[serde(skip)]
    optimal: Option<f64>,
    /// Derived: the validation set's starts (rebuilt from `validation_seed`).
    #[serde(skip)]
    validation: Option<Arc<[CartPole]>>,
    #[serde(skip)]
    pending: Vec<Breakthrough>,
}

impl MdpEs {
    pub fn new(config: MdpEsConfig, seed: u64) -> Self {
        let model = config.q.env.build();
        let (n_states, n_actions) = (model.n_states, model.n_actions);
        MdpEs {
            epsilon: config.q.epsilon_start,
            alpha: config.q.alpha,
            config,
            rng: Rng::new(seed),
            q: vec![0.0; (n_states * n_actions) as usize],
            n_states,
            n_actions,
            state: None,
            episode_steps: 0,
            history: Bounded::new(),
            es: EsState {
                theta: vec![0.0; POLICY_PARAMS],
                population: Vec::new(),
                generation: 0,
                best_individual: vec![0.0; POLICY_PARAMS],
                best_fitness: 0.0,
                fitness_history: Bounded::new(),
                // Its own stream: validation never draws from training's.
                validation_seed: seed ^ 0x7A11_DA7E_5EED_0001,
                validated: true,
                mean_validated_fitness: 0.0,
            },
            ticks: 0,
            episodes: 0,
            policy_updates: 0,
            total_reward: 0.0,
            recent_outcomes: Bounded::new(),
            concept_weights: vec![0.0; N_FEATURES],
            q_eval: QEval::default(),
            milestones: MilestoneLog::default(),
            model: Some(Arc::new(model)),
            optimal: None,
            validation: None,
            pending: Vec::new(),
        }
    }

    /// One tick: `steps_per_tick` Q-learning steps, an ES generation every
    /// `every_ticks` ticks, and a refit of the concept model.
    pub fn tick(&mut self) {
        for _ in 0..self.config.q.steps_per_tick {
            self.q_step();
        }
        self.ticks += 1;
        if self
            .ticks
            .is_multiple_of(self.config.q.eval_every_ticks.max(1))
        {
            self.evaluate_q();
        }
        if self.ticks.is_multiple_of(self.config.es.every_ticks.max(1)) {
            self.es_generation();
        }
        self.fit_concepts();
    }

    /// Refits the linear concept model to max_a Q(s, a) on FrozenLake maps.
    fn fit_concepts(&mut self) {
        let EnvSpec::FrozenLake { map, slippery } = &self.config.q.env else {
            return;
        };
        let grid = GridTask::from_frozen_lake(map, *slippery);
        let n_a = self.n_actions as usize;
        for _ in 0..4 {
            for s in 0..grid.n_cells() {
                if grid.is_terminal(s) {
                    continue;
                }
                let v = self.q[s * n_a..(s + 1) * n_a]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                let f = grid.features(s);
                let pred: f64 = f
                    .iter()
                    .zip(&self.concept_weights)
                    .map(|(a, b)| a * b)
                    .sum();
                for (w, x) in self.concept_weights.iter_mut().zip(f) {
                    *w += 0.05 * (v - pred) * x;
                }
            }
        }
    }

    /// Value estimates ("concepts") for cell features, in [0, 1].
    pub fn request_concepts(&self, features: &[Features]) -> Result<Vec<f64>> {
        if features.len() > 100_000 {
            return Err(Error::InvalidInput(
                "too many cells in one concept request".into(),
            ));
        }
        Ok(features
            .iter()
            .map(|f| {
                f.iter()
                    .zip(&self.concept_weights)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    .clamp(0.0, 1.0)
            })
            .collect())
    }

    /// The greedy policy of the Q-table.
    pub fn greedy_policy(&self) -> Vec<u32> {
        let n_a = self.n_actions as usize;
        self.q
            .chunks(n_a)
            .map(|row| {
                let mut best = 0;
                for (i, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = i;
                    }
                }
                best as u32
            })
            .collect()
    }

    pub fn take_breakthroughs(&mut self) -> Vec<Breakthrough> {
        std::mem::take(&mut self.pending)
    }

    pub fn metrics(&self) -> Metrics {
        let recent = if self.recent_outcomes.is_empty() {
            0.0
        } else {
            self.recent_outcomes.iter().sum::<f64>() / self.recent_outcomes.len() as f64
        };
        // FrozenLake's return is the probability of reaching the goal.
        let (greedy, optimal) = match self.config.q.env {
            EnvSpec::FrozenLake { .. } => ("greedy_success", "optimal_success"),
            _ => ("greedy_return", "optimal_return"),
        };
        let mut m = Metrics::from([
            ("episodes".into(), self.episodes as f64),
            ("policy_updates".into(), self.policy_updates as f64),
            ("total_reward".into(), self.total_reward),
            ("generation".into(), self.es.generation as f64),
            ("best_fitness".into(), self.es.best_fitness),
            (
                "mean_validated_fitness".into(),
                self.es.mean_validated_fitness,
            ),
            (
                "mean_fitness".into(),
                self.es.fitness_history.back().copied().unwrap_or(0.0),
            ),
            ("epsilon".into(), self.epsilon),
            ("alpha".into(), self.alpha),
            ("behaviour_success_last_100".into(), recent),
        ]);
        // Before the first evaluation: left out ("not evaluated yet").
        if self.q_eval.measured() {
            m.extend([
                (greedy.into(), self.q_eval.greedy),
                (optimal.into(), self.q_eval.optimal),
                ("policy_quality".into(), self.q_eval.quality),
            ]);
        }
        if let Some(at) = self.q_eval.at_episode {
            m.insert("q_evaluated_at_episode".into(), at as f64);
        }
        m
    }

    pub fn capture(&self) -> Result<crate::EncodedState> {
        crate::codec::encode(SCHEMA, self)
    }

    /// Restores a captured state, checking it is internally consistent.
    /// Decodes a captured state and checks it before anything runs it: the
    /// settings first, then — with the environment built only from checked
    /// settings — everything else.
    pub fn restore(state: &crate::EncodedState) -> Result<Self> {
        check_schema(state, SCHEMA)?;
        let mut e: MdpEs = state.decode()?;
        e.config.check(&Bounds::new(NAME))?;
        let model = e.config.q.env.build();
        e.check_with(&model)?;
        e.model = Some(Arc::new(model));
        Ok(e)
    }

    /// Dimensions that match the environment `model` (built from checked
    /// settings), buffers within their caps, counters that cannot overflow.
    fn check_with(&self, model: &TabularModel) -> Result<()> {
        let b = Bounds::new(NAME);
        let dims = "does not match the environment's dimensions";
        b.holds("n_states", model.n_states == self.n_states, dims)?;
        b.holds("n_actions", model.n_actions == self.n_actions, dims)?;
        b.exactly(
            "q",
            self.q.len(),
            model.n_states as usize * model.n_actions as usize,
        )?;
        if let Some(s) = self.state {
            b.range("state", s, 0, self.n_states.saturating_sub(1))?;
        }
        b.range(
            "episode_steps",
            self.episode_steps,
            0,
            self.config.q.env.max_episode_steps(),
        )?;
        b.unit("epsilon", self.epsilon)?;
        b.unit("alpha", self.alpha)?;
        b.holds("rng", self.rng.is_valid(), "is the all-zero state")?;
        b.at_most("history", self.history.len(), self.config.history_cap)?;
        b.at_most("recent_outcomes", self.recent_outcomes.len(), 100)?;
        b.exactly("concept_weights", self.concept_weights.len(), N_FEATURES)?;
        b.exactly("es.theta", self.es.theta.len(), POLICY_PARAMS)?;
        b.exactly(
            "es.best_individual",
            self.es.best_individual.len(),
            POLICY_PARAMS,
        )?;
        b.at_most(
            "es.population",
            self.es.population.len(),
            2 * self.config.es.pairs,
        )?;
        b.holds(
            "es.population",
            self.es.population.iter().all(|p| p.len() == POLICY_PARAMS),
            "holds an individual of the wrong size",
        )?;
        b.at_most(
            "es.fitness_history",
            self.es.fitness_history.len(),
            self.config.fitness_history_cap,
        )?;
        for (field, v) in [
            ("ticks", self.ticks),
            ("episodes", self.episodes),
            ("policy_updates", self.policy_updates),
            ("es.generation", self.es.generation),
        ] {
            b.range(field, v, 0, MAX_COUNTER)?;
        }
        b.milestones(&self.milestones)
    }
}
