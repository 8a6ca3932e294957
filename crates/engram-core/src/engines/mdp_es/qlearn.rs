//! Q-learning on the tabular environment: one step of behaviour (ε-greedy,
//! the TD update, bounded history) and the exact evaluation of the greedy
//! policy beside the optimum, separate from behaviour.

use super::*;

impl MdpEs {
    /// Evaluates the greedy policy exactly (no sampling, no learning) and
    /// checks the policy-quality rule.
    pub fn evaluate_q(&mut self) {
        let policy = self.greedy_policy();
        let cfg = &self.config.q;
        let model = self.model.get_or_insert_with(|| Arc::new(cfg.env.build()));
        let horizon = cfg.env.max_episode_steps();
        let optimal = *self
            .optimal
            .get_or_insert_with(|| model.horizon_return(None, horizon));
        let greedy = model.horizon_return(Some(&policy), horizon);
        let quality = policy_quality(greedy, optimal);
        self.q_eval = QEval {
            greedy,
            optimal,
            quality,
            at_episode: Some(self.episodes),
        };
        let min = self.config.rule.min_policy_quality;
        let rule = format!("policy_quality >= {min}");
        if self.milestones.once(&rule, quality >= min) {
            self.pending.push(Breakthrough {
                engine: NAME.into(),
                rule,
                metric: "policy_quality".into(),
                value: quality,
                step: self.episodes,
            });
        }
    }

    /// One Q-learning environment step.
    pub fn q_step(&mut self) {
        // Field-by-field borrows: the model is derived state, rebuilt on demand.
        let cfg = &self.config.q;
        let model = self.model.get_or_insert_with(|| Arc::new(cfg.env.build()));
        let rng = &mut self.rng;
        let n_a = self.n_actions as usize;
        let s = match self.state {
            Some(s) => s,
            None => model.sample_initial(rng),
        };
        let row = s as usize * n_a;
        let a = if rng.uniform() < self.epsilon {
            rng.below(n_a)
        } else {
            argmax_random_ties(&self.q[row..row + n_a], rng)
        };
        let t = model.sample_step(s, a as u32, rng);
        let next_row = t.next as usize * n_a;
        let future = if t.terminated {
            0.0
        } else {
            self.q[next_row..next_row + n_a]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let q = &mut self.q[row + a];
        *q += self.alpha * (t.reward + cfg.gamma * future - *q);
        self.policy_updates += 1;
        self.total_reward += t.reward;
        self.history.push(
            self.config.history_cap,
            HistoryEntry {
                s,
                a: a as u32,
                r: t.reward,
                s2: t.next,
            },
        );
        self.episode_steps += 1;
        if t.terminated || self.episode_steps >= cfg.env.max_episode_steps() {
            self.episodes += 1;
            self.recent_outcomes
                .push(100, if t.reward > 0.0 { 1.0 } else { 0.0 });
            self.epsilon = (self.epsilon * cfg.epsilon_decay).max(cfg.epsilon_min);
            self.alpha = (self.alpha * cfg.alpha_decay).max(cfg.alpha_min);
            self.state = None;
            self.episode_steps = 0;
        } else {
            self.state = Some(t.next);
        }
    }
}

pub(super) fn argmax_random_ties(row: &[f64], rng: &mut Rng) -> usize {
    let best = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ties = row.iter().filter(|&&v| v == best).count();
    let mut pick = if ties > 1 { rng.below(ties) } else { 0 };
    for (i, &v) in row.iter().enumerate() {
        if v == best {
            if pick == 0 {
                return i;
            }
            pick -= 1;
        }
    }
    0
}
