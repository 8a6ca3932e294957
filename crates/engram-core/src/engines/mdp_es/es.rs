//! The evolution strategy (OpenAI-ES) for CartPole: one generation, and
//! the fixed validation set that alone may change the best individual.

use super::*;

impl MdpEs {
    /// The fixed validation set (derived from its seed).
    pub(super) fn validation_set(&mut self) -> &[CartPole] {
        let n = self.config.es.validation_episodes.max(1);
        let seed = self.es.validation_seed;
        self.validation.get_or_insert_with(|| {
            let mut rng = Rng::new(seed);
            (0..n).map(|_| CartPole::reset(&mut rng)).collect()
        })
    }

    /// A policy's fitness on the validation set.
    pub fn validated_fitness(&mut self, params: &[f64]) -> f64 {
        cartpole_fitness(params, self.validation_set())
    }

    /// One OpenAI-ES generation on CartPole-v1.
    pub fn es_generation(&mut self) {
        // Long by design: one generation of the strategy in the algorithm's
        // order (sample, evaluate, rank, update, validate).
        let cfg = self.config.es.clone();
        let dim = self.es.theta.len();
        let starts: Vec<CartPole> = (0..cfg.episodes_per_eval.max(1))
            .map(|_| CartPole::reset(&mut self.rng))
            .collect();
        let noise: Vec<Vec<f64>> = (0..cfg.pairs.max(1))
            .map(|_| (0..dim).map(|_| self.rng.normal()).collect())
            .collect();
        let mut population = Vec::with_capacity(noise.len() * 2);
        for eps in &noise {
            for sign in [1.0, -1.0] {
                population.push(
                    self.es
                        .theta
                        .iter()
                        .zip(eps)
                        .map(|(t, e)| t + sign * cfg.sigma * e)
                        .collect::<Vec<f64>>(),
                );
            }
        }
        let fitness: Vec<f64> = population
            .iter()
            .map(|p| cartpole_fitness(p, &starts))
            .collect();
        if !self.es.validated {
            let best = self.es.best_individual.clone();
            self.es.best_fitness = self.validated_fitness(&best);
            self.es.validated = true;
        }
        // The generation's top individual is a candidate for best; a high
        // score on three noisy episodes is not enough (the winner's curse):
        // it becomes best only if it validates higher.
        let top = (0..fitness.len()).fold(0, |b, i| if fitness[i] > fitness[b] { i } else { b });
        if fitness[top] >= self.es.best_fitness {
            let validated = self.validated_fitness(&population[top]);
            if validated > self.es.best_fitness {
                self.es.best_fitness = validated;
                self.es.best_individual = population[top].clone();
            }
        }
        let shaped = centred_ranks(&fitness);
        let n = population.len() as f64;
        for (i, eps) in noise.iter().enumerate() {
            let w = shaped[2 * i] - shaped[2 * i + 1];
            for (t, e) in self.es.theta.iter_mut().zip(eps) {
                *t += cfg.learning_rate * w * e / (n * cfg.sigma);
            }
        }
        let mean = fitness.iter().sum::<f64>() / n;
        self.es
            .fitness_history
            .push(self.config.fitness_history_cap, mean);
        self.es.population = population;
        self.es.generation += 1;
        self.policy_updates += 1;
        if self
            .es
            .generation
            .is_multiple_of(self.config.es.validate_mean_every.max(1))
        {
            let theta = self.es.theta.clone();
            let validated = self.validated_fitness(&theta);
            self.es.mean_validated_fitness = validated;
            if validated > self.es.best_fitness {
                self.es.best_fitness = validated;
                self.es.best_individual = theta;
            }
        }
        let rule = &self.config.rule;
        let condition =
            self.es.best_fitness >= rule.min_fitness && self.es.generation >= rule.min_generations;
        let text = format!(
            "validated best_fitness >= {} after >= {} generations",
            rule.min_fitness, rule.min_generations
        );
        if self.milestones.once(&text, condition) {
            self.pending.push(Breakthrough {
                engine: NAME.into(),
                rule: text,
                metric: "best_fitness".into(),
                value: self.es.best_fitness,
                step: self.es.generation,
            });
        }
    }
}

/// Fitness of a linear policy: mean return over the given starts, / 500.
pub fn cartpole_fitness(params: &[f64], starts: &[CartPole]) -> f64 {
    let mut total = 0.0;
    for start in starts {
        let mut env = start.clone();
        loop {
            let s = env.state;
            let z = params[0] * s[0]
                + params[1] * s[1]
                + params[2] * s[2]
                + params[3] * s[3]
                + params[4];
            let step = env.step(u32::from(z > 0.0));
            total += step.reward;
            if step.terminated || step.truncated {
                break;
            }
        }
    }
    total / starts.len() as f64 / 500.0
}

/// Centred ranks in [-0.5, 0.5] (ties broken by index, deterministically).
pub(super) fn centred_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b)));
    let mut out = vec![0.0; x.len()];
    let denom = (x.len().max(2) - 1) as f64;
    for (rank, &i) in idx.iter().enumerate() {
        out[i] = rank as f64 / denom - 0.5;
    }
    out
}
