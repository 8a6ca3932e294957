//! The ZAP planner (zero-shot augmented planning): every task is a new,
//! procedurally generated grid world. For each move it runs Monte Carlo tree
//! search (UCT) over the task's model, evaluating leaves with a learned linear
//! value function over features that transfer between maps (AlphaGo-style:
//! search + learned evaluation), optionally blended with "concepts" — value
//! estimates asked of the MDP/ES engine through the orchestrator. It executes
//! in the stochastic world, re-planning every step, records the outcome
//! (`record_plan_outcome`) and learns from a bounded replay buffer with
//! Monte Carlo targets.

use super::bounds::{Bounds, MAX_BUFFER, MAX_COUNTER};
use super::grid::{Features, GridTask, N_FEATURES, TaskGenConfig};
use super::mdp_es::MdpEs;
use super::orchestrator::check_schema;
use super::rng::Rng;
use super::{Bounded, Clock, FakeClock, MilestoneLog};
use crate::error::{Error, Result};
use crate::wire::{Breakthrough, Metrics};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Engine name.
pub const NAME: &str = "zap";
const SCHEMA: u32 = 1;

/// What the planner needs from outside: concepts (routed through the
/// orchestrator in the engine set) and the time, for planning-time metrics.
pub trait PlanContext {
    /// Value estimates in [0, 1] for each cell's features.
    fn request_concepts(&mut self, features: &[Features]) -> Result<Vec<f64>>;
    /// Monotonic nanoseconds.
    fn now_ns(&mut self) -> u64;
}

/// Planner settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZapConfig {
    pub tasks: TaskGenConfig,
    /// MCTS simulations per move.
    pub simulations: u32,
    /// Search depth before a leaf is evaluated.
    pub max_depth: u32,
    /// UCT exploration constant.
    pub exploration: f64,
    pub discount: f64,
    pub learning_rate: f64,
    pub replay_cap: usize,
    pub plan_history_cap: usize,
    pub batch_size: usize,
    pub updates_per_plan: usize,
    /// Ask the MDP/ES engine for concepts and blend them into leaf values.
    pub use_concepts: bool,
    /// Weight of the concept prior in leaf values, before any experience…
    pub concept_weight: f64,
    /// …fading as the planner learns: weight × k / (k + plans generated).
    pub concept_fade_plans: f64,
    /// Breakthrough: held-out success, as a share of the maps' optimum, at
    /// or above this…
    pub breakthrough_success_rate: f64,
    /// …with at least this many plans.
    pub breakthrough_min_plans: u64,
    /// Maps in the held-out set (seeded, never trained on).
    pub heldout_maps: usize,
    /// Evaluate on the held-out set every this many plans. Each evaluation
    /// plays every held-out map once, so the share of ZAP's time it takes is
    /// `heldout_maps / heldout_every_plans` (100 / 2000 = 5 %).
    pub heldout_every_plans: u64,
}

impl ZapConfig {
    /// The ranges of every setting, and the worst case of one tick (one
    /// plan, or one held-out evaluation) within [`WORK_BUDGET`].
    ///
    /// [`WORK_BUDGET`]: super::bounds::WORK_BUDGET
    pub(crate) fn check(&self, b: &Bounds) -> Result<()> {
        self.tasks.check(b)?;
        b.range("config.simulations", self.simulations, 1, 4096)?;
        b.range("config.max_depth", self.max_depth, 1, 1024)?;
        b.range("config.exploration", self.exploration, 0.0, 100.0)?;
        b.unit("config.discount", self.discount)?;
        b.unit("config.learning_rate", self.learning_rate)?;
        b.range("config.replay_cap", self.replay_cap, 1, MAX_BUFFER)?;
        b.range("config.plan_history_cap", self.plan_history_cap, 0, 100_000)?;
        b.range("config.batch_size", self.batch_size, 1, 4096)?;
        b.range("config.updates_per_plan", self.updates_per_plan, 0, 1024)?;
        b.unit("config.concept_weight", self.concept_weight)?;
        b.range(
            "config.concept_fade_plans",
            self.concept_fade_plans,
            0.0,
            1e12,
        )?;
        b.unit(
            "config.breakthrough_success_rate",
            self.breakthrough_success_rate,
        )?;
        b.range(
            "config.breakthrough_min_plans",
            self.breakthrough_min_plans,
            0,
            MAX_COUNTER,
        )?;
        b.range("config.heldout_maps", self.heldout_maps, 1, 1000)?;
        b.range(
            "config.heldout_every_plans",
            self.heldout_every_plans,
            1,
            MAX_COUNTER,
        )?;
        let (plan, optimum) = self.worst_plan();
        b.work(
            "config.simulations × max_depth × task size",
            plan + (self.updates_per_plan * self.batch_size * N_FEATURES) as f64,
        )?;
        b.work(
            "config.heldout_maps × task size",
            self.heldout_maps as f64 * (plan + optimum),
        )
    }

    /// The worst-case steps of planning one task, and of computing one
    /// task's optimum (value iteration over its horizon).
    fn worst_plan(&self) -> (f64, f64) {
        let side = self.tasks.max_size as f64;
        let cells = side * side;
        let steps = (self.tasks.step_budget * 2.0 * side).ceil();
        let search = f64::from(self.simulations) * f64::from(self.max_depth);
        // Each step: a fresh search tree over the cells, then the search;
        // per task: features and concepts for every cell.
        let plan = steps * (cells + search) + cells * (N_FEATURES as f64 + 4.0);
        (plan, steps * cells * 12.0)
    }
}

impl Default for ZapConfig {
    fn default() -> Self {
        ZapConfig {
            tasks: TaskGenConfig::default(),
            simulations: 32,
            max_depth: 8,
            exploration: 1.0,
            discount: 0.95,
            learning_rate: 0.05,
            replay_cap: 1000,
            plan_history_cap: 100,
            batch_size: 32,
            updates_per_plan: 8,
            use_concepts: true,
            concept_weight: 0.3,
            concept_fade_plans: 25.0,
            breakthrough_success_rate: 0.9,
            breakthrough_min_plans: 10,
            heldout_maps: 100,
            heldout_every_plans: 2000,
        }
    }
}

/// One replay sample: a visited cell's features and its Monte Carlo return.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub features: Features,
    pub target: f64,
}

/// What happened to one plan (one task, start to end).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub task: u64,
    pub rows: u32,
    pub cols: u32,
    pub slip: f64,
    pub success: bool,
    pub steps: u32,
    pub reward: f64,
    pub planning_ns: u64,
    pub confidence: f64,
    pub used_concepts: bool,
}

/// The seed of the held-out maps: a stream the trainer never draws from.
pub const HELDOUT_SEED: u64 = 0x04E1_D0C7_C0DE;

/// The planner measured on the held-out maps, without learning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOutEval {
    /// Share of held-out maps solved (one seeded episode each).
    pub success: f64,
    /// Mean of each map's optimal success probability.
    pub optimal: f64,
    /// `success / optimal`: 1 = as good as possible on these maps.
    pub vs_optimal: f64,
    /// Plans generated when it was measured (0: not yet).
    pub at_plans: u64,
}

/// The planner's whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zap {
    pub config: ZapConfig,
    pub rng: Rng,
    /// Learned value function: linear in the cell features.
    pub weights: Vec<f64>,
    pub replay: Bounded<Sample>,
    pub plan_history: Bounded<PlanRecord>,
    pub plans_generated: u64,
    pub successful_plans: u64,
    pub failed_plans: u64,
    pub total_planning_ns: u64,
    pub confidence_sum: f64,
    /// Exponential moving average of plan returns (the RL score).
    pub score: f64,
    pub total_reward: f64,
    pub value_updates: u64,
    /// Success of the last 100 plans (independent of the history cap).
    pub recent: Bounded<bool>,
    /// The last evaluation on the held-out maps.
    #[serde(default)]
    pub heldout: HeldOutEval,
    #[serde(default)]
    pub milestones: MilestoneLog,
    /// Derived: the held-out maps and their mean optimum (rebuilt on demand).
    #[serde(skip)]
    /// Shared, so a capture does not copy the maps.
    heldout_set: Option<Arc<(Vec<GridTask>, f64)>>,
    #[serde(skip)]
    pending: Vec<Breakthrough>,
}

/// The outcome of executing one task.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub success: bool,
    pub steps: u32,
    pub reward: f64,
    pub planning_ns: u64,
    pub confidence: f64,
    pub visited: Vec<usize>,
}

impl Zap {
    pub fn new(config: ZapConfig, seed: u64) -> Self {
        Zap {
            config,
            rng: Rng::new(seed),
            weights: vec![0.0; N_FEATURES],
            replay: Bounded::new(),
            plan_history: Bounded::new(),
            plans_generated: 0,
            successful_plans: 0,
            failed_plans: 0,
            total_planning_ns: 0,
            confidence_sum: 0.0,
            score: 0.0,
            total_reward: 0.0,
            value_updates: 0,
            recent: Bounded::new(),
            heldout: HeldOutEval::default(),
            milestones: MilestoneLog::default(),
            heldout_set: None,
            pending: Vec::new(),
        }
    }

    /// Every cell's features and, when concepts are on, the prior for them.
    /// A failed concept call (recorded by the orchestrator) means no prior.
    fn features_and_prior(
        &self,
        task: &GridTask,
        ctx: &mut dyn PlanContext,
    ) -> (Vec<Features>, Option<Vec<f64>>) {
        let features: Vec<Features> = (0..task.n_cells()).map(|p| task.features(p)).collect();
        let prior = if self.config.use_concepts {
            ctx.request_concepts(&features)
                .ok()
                .filter(|v| v.len() == features.len())
        } else {
            None
        };
        (features, prior)
    }

    /// Generates a new task, plans and executes it, records the outcome and learns.
    pub fn plan_once(&mut self, ctx: &mut dyn PlanContext) -> Outcome {
        let task = GridTask::generate(&self.config.tasks, &mut self.rng);
        let (features, prior) = self.features_and_prior(&task, ctx);
        let mut rng = self.rng.clone();
        let outcome = self.execute(&task, &features, prior.as_deref(), &mut rng, ctx);
        self.rng = rng;
        self.record_plan_outcome(&task, &features, &outcome, prior.is_some());
        self.learn();
        if self
            .plans_generated
            .is_multiple_of(self.config.heldout_every_plans.max(1))
        {
            self.evaluate_heldout(ctx);
        }
        outcome
    }

    /// Plays every held-out map once (seeded, no learning), beside each
    /// map's optimum, and checks the milestone rule.
    pub fn evaluate_heldout(&mut self, ctx: &mut dyn PlanContext) {
        let (n, cfg) = (self.config.heldout_maps.max(1), self.config.tasks.clone());
        let set = self
            .heldout_set
            .get_or_insert_with(|| {
                let tasks = held_out_tasks(&cfg, n, HELDOUT_SEED);
                let optimal = tasks.iter().map(GridTask::optimal_success).sum::<f64>() / n as f64;
                Arc::new((tasks, optimal))
            })
            .clone();
        let (tasks, optimal) = (&set.0, set.1);
        let success = self.evaluate(tasks, HELDOUT_SEED ^ 1, ctx);
        let vs_optimal = if optimal > 0.0 {
            (success / optimal).min(1.0)
        } else {
            0.0
        };
        self.heldout = HeldOutEval {
            success,
            optimal,
            vs_optimal,
            at_plans: self.plans_generated,
        };
        let (rate, min_plans) = (
            self.config.breakthrough_success_rate,
            self.config.breakthrough_min_plans,
        );
        let rule = format!("heldout_vs_optimal >= {rate} with >= {min_plans} plans");
        let condition = self.plans_generated >= min_plans && vs_optimal >= rate;
        if self.milestones.once(&rule, condition) {
            self.pending.push(Breakthrough {
                engine: NAME.into(),
                rule,
                metric: "heldout_vs_optimal".into(),
                value: vs_optimal,
                step: self.plans_generated,
            });
        }
    }

    /// Runs one task to its end without learning.
    pub fn execute(
        &self,
        task: &GridTask,
        features: &[Features],
        prior: Option<&[f64]>,
        rng: &mut Rng,
        ctx: &mut dyn PlanContext,
    ) -> Outcome {
        let mut pos = task.start;
        let mut visited = Vec::new();
        let mut planning_ns = 0u64;
        let mut confidence = 0.0;
        let mut steps = 0u32;
        let values: Vec<f64> = features
            .iter()
            .enumerate()
            .map(|(i, f)| self.leaf_value(f, prior.map(|p| p[i])))
            .collect();
        while steps < task.max_steps {
            let t0 = ctx.now_ns();
            let (action, conf) = self.search(task, &values, pos, rng);
            planning_ns += ctx.now_ns().saturating_sub(t0);
            confidence += conf;
            visited.push(pos);
            pos = task.step(pos, action, rng);
            steps += 1;
            if task.is_terminal(pos) {
                break;
            }
        }
        let reward = task.reward(pos);
        Outcome {
            success: reward > 0.0,
            steps,
            reward,
            planning_ns,
            confidence: if steps > 0 {
                confidence / steps as f64
            } else {
                0.0
            },
            visited,
        }
    }

    /// The weight of the concept prior now: it fades as own experience grows.
    pub fn concept_weight(&self) -> f64 {
        let k = self.config.concept_fade_plans.max(0.0);
        if k == 0.0 {
            return self.config.concept_weight;
        }
        self.config.concept_weight * k / (k + self.plans_generated as f64)
    }

    fn leaf_value(&self, f: &Features, prior: Option<f64>) -> f64 {
        let own = f
            .iter()
            .zip(&self.weights)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            .clamp(0.0, 1.0);
        match prior {
            Some(p) => {
                let w = self.concept_weight();
                (1.0 - w) * own + w * p
            }
            None => own,
        }
    }

    /// UCT from `root`; returns the most visited action and its visit share.
    fn search(&self, task: &GridTask, values: &[f64], root: usize, rng: &mut Rng) -> (usize, f64) {
        #[derive(Clone, Default)]
        struct Node {
            n: u32,
            n_a: [u32; 4],
            w_a: [f64; 4],
        }
        let cfg = &self.config;
        let mut nodes = vec![Node::default(); task.n_cells()];
        let mut path: Vec<(usize, usize, f64)> = Vec::with_capacity(cfg.max_depth as usize);
        for _ in 0..cfg.simulations.max(1) {
            path.clear();
            let mut s = root;
            let mut depth = 0;
            let leaf_value = loop {
                if task.is_terminal(s) {
                    break 0.0;
                }
                if depth >= cfg.max_depth || nodes[s].n == 0 {
                    break values[s];
                }
                let node = &nodes[s];
                let ln_n = f64::from(node.n).ln();
                let mut best = 0;
                let mut best_score = f64::NEG_INFINITY;
                for a in 0..4 {
                    let score = if node.n_a[a] == 0 {
                        f64::INFINITY
                    } else {
                        node.w_a[a] / f64::from(node.n_a[a])
                            + cfg.exploration * (ln_n / f64::from(node.n_a[a])).sqrt()
                    };
                    if score > best_score {
                        best = a;
                        best_score = score;
                    }
                }
                let next = task.step(s, best, rng);
                path.push((s, best, task.reward(next)));
                s = next;
                depth += 1;
            };
            if !task.is_terminal(s) {
                nodes[s].n += 1;
            }
            let mut g = leaf_value;
            for &(s, a, r) in path.iter().rev() {
                g = r + cfg.discount * g;
                let node = &mut nodes[s];
                node.n += 1;
                node.n_a[a] += 1;
                node.w_a[a] += g;
            }
        }
        let root = &nodes[root];
        let total: u32 = root.n_a.iter().sum();
        let mut best = 0;
        for a in 1..4 {
            let (n, bn) = (root.n_a[a], root.n_a[best]);
            let mean = |i: usize| {
                if root.n_a[i] == 0 {
                    0.0
                } else {
                    root.w_a[i] / f64::from(root.n_a[i])
                }
            };
            if n > bn || (n == bn && mean(a) > mean(best)) {
                best = a;
            }
        }
        let confidence = if total == 0 {
            0.0
        } else {
            f64::from(root.n_a[best]) / f64::from(total)
        };
        (best, confidence)
    }

    /// Records a finished plan: metrics, plan history and replay samples.
    pub fn record_plan_outcome(
        &mut self,
        task: &GridTask,
        features: &[Features],
        o: &Outcome,
        used_concepts: bool,
    ) {
        self.plans_generated += 1;
        if o.success {
            self.successful_plans += 1;
        } else {
            self.failed_plans += 1;
        }
        self.total_planning_ns += o.planning_ns;
        self.confidence_sum += o.confidence;
        self.total_reward += o.reward;
        self.score += 0.05 * (o.reward - self.score);
        self.recent.push(100, o.success);
        self.plan_history.push(
            self.config.plan_history_cap,
            PlanRecord {
                task: self.plans_generated,
                rows: task.rows as u32,
                cols: task.cols as u32,
                slip: task.slip,
                success: o.success,
                steps: o.steps,
                reward: o.reward,
                planning_ns: o.planning_ns,
                confidence: o.confidence,
                used_concepts,
            },
        );
        let n = o.visited.len();
        for (k, &pos) in o.visited.iter().enumerate() {
            let target = if o.success {
                self.config.discount.powi((n - 1 - k) as i32)
            } else {
                0.0
            };
            self.replay.push(
                self.config.replay_cap,
                Sample {
                    features: features[pos],
                    target,
                },
            );
        }
    }

    /// SGD on minibatches from the replay buffer.
    fn learn(&mut self) {
        if self.replay.is_empty() {
            return;
        }
        let lr = self.config.learning_rate;
        for _ in 0..self.config.updates_per_plan {
            for _ in 0..self.config.batch_size {
                let s = &self.replay[self.rng.below(self.replay.len())];
                let pred: f64 = s
                    .features
                    .iter()
                    .zip(&self.weights)
                    .map(|(a, b)| a * b)
                    .sum();
                let err = s.target - pred;
                for (w, x) in self.weights.iter_mut().zip(&s.features) {
                    *w += lr * err * x;
                }
            }
            self.value_updates += 1;
        }
    }

    fn recent_success_rate(&self) -> f64 {
        if self.recent.is_empty() {
            0.0
        } else {
            self.recent.iter().filter(|&&s| s).count() as f64 / self.recent.len() as f64
        }
    }

    /// Success rate on fixed tasks, without learning or changing the planner.
    /// Concepts are used when `use_concepts` is set and `ctx` provides them.
    pub fn evaluate(&self, tasks: &[GridTask], seed: u64, ctx: &mut dyn PlanContext) -> f64 {
        let mut rng = Rng::new(seed);
        let mut wins = 0;
        for task in tasks {
            let (features, prior) = self.features_and_prior(task, ctx);
            if self
                .execute(task, &features, prior.as_deref(), &mut rng, ctx)
                .success
            {
                wins += 1;
            }
        }
        wins as f64 / tasks.len().max(1) as f64
    }

    pub fn take_breakthroughs(&mut self) -> Vec<Breakthrough> {
        std::mem::take(&mut self.pending)
    }

    pub fn metrics(&self) -> Metrics {
        let plans = self.plans_generated.max(1) as f64;
        let mut m = Metrics::from([
            ("plans_generated".into(), self.plans_generated as f64),
            ("successful_plans".into(), self.successful_plans as f64),
            ("failed_plans".into(), self.failed_plans as f64),
            (
                "success_rate".into(),
                if self.plans_generated == 0 {
                    0.0
                } else {
                    self.successful_plans as f64 / plans
                },
            ),
            ("success_rate_last_100".into(), self.recent_success_rate()),
            (
                "mean_planning_ms".into(),
                self.total_planning_ns as f64 / plans / 1e6,
            ),
            ("mean_confidence".into(), self.confidence_sum / plans),
            ("score".into(), self.score),
            ("episodes".into(), self.plans_generated as f64),
            ("total_reward".into(), self.total_reward),
            ("replay_size".into(), self.replay.len() as f64),
        ]);
        // Before the first held-out evaluation there is no figure: left out
        // ("not evaluated yet"), never a 0 that reads as measured.
        if self.heldout.at_plans > 0 {
            m.extend([
                ("heldout_success".into(), self.heldout.success),
                ("heldout_optimal".into(), self.heldout.optimal),
                ("heldout_vs_optimal".into(), self.heldout.vs_optimal),
                ("heldout_at_plans".into(), self.heldout.at_plans as f64),
            ]);
        }
        m
    }

    /// The plans made when the held-out maps were last evaluated (None:
    /// not yet).
    pub fn heldout_at_plans(&self) -> Option<u64> {
        (self.heldout.at_plans > 0).then_some(self.heldout.at_plans)
    }

    pub fn capture(&self) -> Result<crate::EncodedState> {
        crate::codec::encode(SCHEMA, self)
    }

    /// Decodes a captured state and checks it ([`Zap::check`]) before
    /// anything runs it.
    pub fn restore(state: &crate::EncodedState) -> Result<Self> {
        check_schema(state, SCHEMA)?;
        let z: Zap = state.decode()?;
        z.check()?;
        Ok(z)
    }

    /// Every setting in its range, every buffer within its cap, counters
    /// that cannot overflow, a generator that can move: a state that passes
    /// runs each tick in bounded work.
    pub fn check(&self) -> Result<()> {
        let b = Bounds::new(NAME);
        self.config.check(&b)?;
        b.holds("rng", self.rng.is_valid(), "is the all-zero state")?;
        b.exactly("weights", self.weights.len(), N_FEATURES)?;
        for w in &self.weights {
            b.finite("weights", *w)?;
        }
        b.at_most("replay", self.replay.len(), self.config.replay_cap)?;
        b.at_most(
            "plan_history",
            self.plan_history.len(),
            self.config.plan_history_cap,
        )?;
        b.at_most("recent", self.recent.len(), 100)?;
        for (field, v) in [
            ("plans_generated", self.plans_generated),
            ("successful_plans", self.successful_plans),
            ("failed_plans", self.failed_plans),
            ("total_planning_ns", self.total_planning_ns),
            ("value_updates", self.value_updates),
            ("heldout.at_plans", self.heldout.at_plans),
        ] {
            b.range(field, v, 0, MAX_COUNTER)?;
        }
        b.milestones(&self.milestones)
    }
}

/// A fixed set of held-out tasks (a seed the trainer never uses).
pub fn held_out_tasks(cfg: &TaskGenConfig, n: usize, seed: u64) -> Vec<GridTask> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| GridTask::generate(cfg, &mut rng)).collect()
}

/// A context outside the engine set: concepts straight from an MDP/ES
/// engine (or none) and a fake clock. For evaluation, tests and benchmarks.
pub struct LocalContext<'a> {
    pub mdp_es: Option<&'a MdpEs>,
    pub clock: FakeClock,
}

impl<'a> LocalContext<'a> {
    pub fn new(mdp_es: Option<&'a MdpEs>) -> Self {
        LocalContext {
            mdp_es,
            clock: FakeClock { now: 0, step: 1000 },
        }
    }
}

impl PlanContext for LocalContext<'_> {
    fn request_concepts(&mut self, features: &[Features]) -> Result<Vec<f64>> {
        match self.mdp_es {
            Some(m) => m.request_concepts(features),
            None => Err(Error::NotFound {
                what: "system",
                id: "mdp_es".into(),
            }),
        }
    }

    fn now_ns(&mut self) -> u64 {
        self.clock.now_ns()
    }
}
