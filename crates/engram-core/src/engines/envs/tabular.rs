//! Tabular environments: FrozenLake-v1 (4x4, 8x8, custom maps; slippery or
//! not), Taxi-v4 and CliffWalking-v1, built exactly as Gymnasium builds `P`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// One outcome of taking an action.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub prob: f64,
    pub next: u32,
    pub reward: f64,
    pub terminated: bool,
}

/// Which tabular environment, with its options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "id")]
pub enum EnvSpec {
    #[serde(rename = "FrozenLake-v1")]
    FrozenLake { map: Vec<String>, slippery: bool },
    #[serde(rename = "Taxi-v4")]
    Taxi,
    #[serde(rename = "CliffWalking-v1")]
    CliffWalking,
}

const MAP_4X4: [&str; 4] = ["SFFF", "FHFH", "FFFH", "HFFG"];
const MAP_8X8: [&str; 8] = [
    "SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG",
];

impl EnvSpec {
    /// Parses an environment id with the CLI's options: `--map` is `4x4`,
    /// `8x8` or comma-separated rows of S/F/H/G; `slippery` defaults to
    /// Gymnasium's default (FrozenLake: true).
    pub fn parse(id: &str, map: Option<&str>, slippery: Option<bool>) -> Result<EnvSpec> {
        match id {
            "FrozenLake-v1" | "FrozenLake8x8-v1" => {
                let default = if id == "FrozenLake8x8-v1" {
                    "8x8"
                } else {
                    "4x4"
                };
                let rows: Vec<String> = match map.unwrap_or(default) {
                    "4x4" => MAP_4X4.iter().map(|s| s.to_string()).collect(),
                    "8x8" => MAP_8X8.iter().map(|s| s.to_string()).collect(),
                    custom => custom.split(',').map(|s| s.trim().to_string()).collect(),
                };
                validate_frozen_map(&rows)?;
                Ok(EnvSpec::FrozenLake {
                    map: rows,
                    slippery: slippery.unwrap_or(true),
                })
            }
            "Taxi-v4" | "CliffWalking-v1" => {
                if map.is_some() || slippery.is_some() {
                    return Err(Error::InvalidInput(format!(
                        "{id} takes no --map or --slippery option"
                    )));
                }
                Ok(if id == "Taxi-v4" {
                    EnvSpec::Taxi
                } else {
                    EnvSpec::CliffWalking
                })
            }
            other => Err(Error::InvalidInput(format!(
                "unknown environment {other:?} (tabular: FrozenLake-v1, Taxi-v4, CliffWalking-v1; continuous: CartPole-v1)"
            ))),
        }
    }

    /// FrozenLake 4x4, slippery: the default.
    pub fn frozen_lake_4x4() -> EnvSpec {
        EnvSpec::FrozenLake {
            map: MAP_4X4.iter().map(|s| s.to_string()).collect(),
            slippery: true,
        }
    }

    /// FrozenLake 8x8, slippery.
    pub fn frozen_lake_8x8() -> EnvSpec {
        EnvSpec::FrozenLake {
            map: MAP_8X8.iter().map(|s| s.to_string()).collect(),
            slippery: true,
        }
    }

    /// Gymnasium's id of the environment.
    pub fn id(&self) -> &'static str {
        match self {
            EnvSpec::FrozenLake { .. } => "FrozenLake-v1",
            EnvSpec::Taxi => "Taxi-v4",
            EnvSpec::CliffWalking => "CliffWalking-v1",
        }
    }

    /// Its actions' names, in its action order (Gymnasium's).
    pub fn action_names(&self) -> &'static [&'static str] {
        match self {
            EnvSpec::FrozenLake { .. } => &["left", "down", "right", "up"],
            EnvSpec::CliffWalking => &["up", "right", "down", "left"],
            EnvSpec::Taxi => &["south", "north", "east", "west", "pickup", "dropoff"],
        }
    }

    /// The grid it is played on: rows, columns and each cell's letter, row
    /// by row (S start, F frozen or free, H hole, G goal, C cliff); `None`
    /// for Taxi, whose states are not cells.
    pub fn grid(&self) -> Option<(u32, u32, Vec<String>)> {
        match self {
            EnvSpec::FrozenLake { map, .. } => {
                let cells = map
                    .iter()
                    .flat_map(|r| r.chars().map(String::from))
                    .collect();
                Some((map.len() as u32, map.first()?.len() as u32, cells))
            }
            EnvSpec::CliffWalking => {
                let cells = (0..48)
                    .map(|i| match i {
                        36 => "S",
                        37..=46 => "C",
                        47 => "G",
                        _ => "F",
                    })
                    .map(String::from)
                    .collect();
                Some((4, 12, cells))
            }
            EnvSpec::Taxi => None,
        }
    }

    /// Gymnasium's `max_episode_steps` for this environment (TimeLimit).
    pub fn max_episode_steps(&self) -> u32 {
        match self {
            EnvSpec::FrozenLake { map, .. } if map.len() >= 8 => 200,
            EnvSpec::FrozenLake { .. } => 100,
            EnvSpec::Taxi => 200,
            // Registered without a limit; bound episodes so learning progresses.
            EnvSpec::CliffWalking => 1000,
        }
    }

    /// Builds the transition table.
    pub fn build(&self) -> TabularModel {
        match self {
            EnvSpec::FrozenLake { map, slippery } => frozen_lake(map, *slippery),
            EnvSpec::Taxi => taxi(),
            EnvSpec::CliffWalking => cliff_walking(),
        }
    }
}

pub(crate) fn validate_frozen_map(rows: &[String]) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidInput(format!("invalid FrozenLake map: {m}")));
    if rows.is_empty() || rows[0].is_empty() {
        return bad("no rows".into());
    }
    if rows.len() > 64 || rows[0].len() > 64 {
        return bad("at most 64x64".into());
    }
    if rows.iter().any(|r| r.len() != rows[0].len()) {
        return bad("rows differ in length".into());
    }
    if let Some(c) = rows
        .iter()
        .flat_map(|r| r.chars())
        .find(|c| !"SFHG".contains(*c))
    {
        return bad(format!("unexpected cell {c:?} (use S, F, H, G)"));
    }
    let starts = rows
        .iter()
        .flat_map(|r| r.chars())
        .filter(|&c| c == 'S')
        .count();
    if starts == 0 {
        return bad("no start cell S".into());
    }
    Ok(())
}

/// A tabular MDP: `p[s][a]` lists the outcomes in Gymnasium's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabularModel {
    pub n_states: u32,
    pub n_actions: u32,
    pub p: Vec<Vec<Vec<Transition>>>,
    /// Gymnasium's initial-state distribution (`initial_state_distrib`).
    pub initial: Vec<f64>,
}

impl TabularModel {
    /// Samples a start state as Gymnasium's reset does (categorical over `initial`).
    pub fn sample_initial(&self, rng: &mut super::super::rng::Rng) -> u32 {
        rng.categorical(self.initial.iter().copied()) as u32
    }

    /// Samples one step from state `s` with action `a`.
    pub fn sample_step(&self, s: u32, a: u32, rng: &mut super::super::rng::Rng) -> Transition {
        let outcomes = &self.p[s as usize][a as usize];
        if outcomes.len() == 1 {
            return outcomes[0];
        }
        outcomes[rng.categorical(outcomes.iter().map(|t| t.prob))]
    }

    /// Optimal state values by value iteration (to `tol`).
    pub fn value_iteration(&self, gamma: f64, tol: f64) -> Vec<f64> {
        let mut v = vec![0.0; self.n_states as usize];
        loop {
            let mut delta: f64 = 0.0;
            for s in 0..v.len() {
                let best = (0..self.n_actions as usize)
                    .map(|a| self.q_value(&v, s, a, gamma))
                    .fold(f64::NEG_INFINITY, f64::max);
                delta = delta.max((best - v[s]).abs());
                v[s] = best;
            }
            if delta < tol {
                return v;
            }
        }
    }

    /// Exact values of a deterministic policy (iterative evaluation to `tol`).
    pub fn evaluate_policy(&self, policy: &[u32], gamma: f64, tol: f64) -> Vec<f64> {
        let mut v = vec![0.0; self.n_states as usize];
        loop {
            let mut delta: f64 = 0.0;
            for s in 0..v.len() {
                let new = self.q_value(&v, s, policy[s] as usize, gamma);
                delta = delta.max((new - v[s]).abs());
                v[s] = new;
            }
            if delta < tol {
                return v;
            }
        }
    }

    /// The expected undiscounted return of an episode from Gymnasium's start
    /// distribution when it is cut at `horizon` steps (Gymnasium's
    /// `TimeLimit`): exactly, by backward induction over the steps left.
    /// `policy` gives the action per state; `None` acts optimally, which
    /// gives the best return any policy can expect under the same limit.
    pub fn horizon_return(&self, policy: Option<&[u32]>, horizon: u32) -> f64 {
        let mut v = vec![0.0; self.n_states as usize];
        let mut next = v.clone();
        for _ in 0..horizon {
            for (s, out) in next.iter_mut().enumerate() {
                *out = match policy {
                    Some(p) => self.q_value(&v, s, p[s] as usize, 1.0),
                    None => (0..self.n_actions as usize)
                        .map(|a| self.q_value(&v, s, a, 1.0))
                        .fold(f64::NEG_INFINITY, f64::max),
                };
            }
            std::mem::swap(&mut v, &mut next);
        }
        self.initial.iter().zip(&v).map(|(p, v)| p * v).sum()
    }

    /// The greedy policy of the (discounted) optimal values: what value
    /// iteration says to do in each state (first of equal actions).
    pub fn optimal_policy(&self, gamma: f64) -> Vec<u32> {
        let v = self.value_iteration(gamma, 1e-12);
        (0..self.n_states as usize)
            .map(|s| {
                (0..self.n_actions as usize).fold(0, |best, a| {
                    if self.q_value(&v, s, a, gamma) > self.q_value(&v, s, best, gamma) {
                        a
                    } else {
                        best
                    }
                }) as u32
            })
            .collect()
    }

    fn q_value(&self, v: &[f64], s: usize, a: usize, gamma: f64) -> f64 {
        self.p[s][a]
            .iter()
            .map(|t| {
                t.prob
                    * (t.reward
                        + if t.terminated {
                            0.0
                        } else {
                            gamma * v[t.next as usize]
                        })
            })
            .sum()
    }
}

// Index loops on purpose: they mirror Gymnasium's construction line by line.
#[allow(clippy::needless_range_loop)]
fn frozen_lake(map: &[String], slippery: bool) -> TabularModel {
    let desc: Vec<Vec<u8>> = map.iter().map(|r| r.as_bytes().to_vec()).collect();
    let (nrow, ncol) = (desc.len(), desc[0].len());
    let success_rate = 1.0 / 3.0;
    let fail_rate = (1.0 - success_rate) / 2.0;
    let to_s = |r: usize, c: usize| (r * ncol + c) as u32;
    // LEFT=0, DOWN=1, RIGHT=2, UP=3
    let inc = |r: usize, c: usize, a: usize| match a {
        0 => (r, c.saturating_sub(1)),
        1 => ((r + 1).min(nrow - 1), c),
        2 => (r, (c + 1).min(ncol - 1)),
        _ => (r.saturating_sub(1), c),
    };
    let outcome = |r: usize, c: usize, a: usize, prob: f64| {
        let (nr, nc) = inc(r, c, a);
        let letter = desc[nr][nc];
        Transition {
            prob,
            next: to_s(nr, nc),
            reward: if letter == b'G' { 1.0 } else { 0.0 },
            terminated: letter == b'G' || letter == b'H',
        }
    };
    let mut p = Vec::with_capacity(nrow * ncol);
    for r in 0..nrow {
        for c in 0..ncol {
            let s = to_s(r, c);
            let letter = desc[r][c];
            p.push(
                (0..4)
                    .map(|a| {
                        if letter == b'G' || letter == b'H' {
                            vec![Transition {
                                prob: 1.0,
                                next: s,
                                reward: 0.0,
                                terminated: true,
                            }]
                        } else if slippery {
                            [(a + 3) % 4, a, (a + 1) % 4]
                                .into_iter()
                                .map(|b| {
                                    outcome(r, c, b, if b == a { success_rate } else { fail_rate })
                                })
                                .collect()
                        } else {
                            vec![outcome(r, c, a, 1.0)]
                        }
                    })
                    .collect(),
            );
        }
    }
    let starts = desc.iter().flatten().filter(|&&l| l == b'S').count() as f64;
    let initial = desc
        .iter()
        .flatten()
        .map(|&l| if l == b'S' { 1.0 / starts } else { 0.0 })
        .collect();
    TabularModel {
        n_states: (nrow * ncol) as u32,
        n_actions: 4,
        p,
        initial,
    }
}

const TAXI_MAP: [&str; 7] = [
    "+---------+",
    "|R: | : :G|",
    "| : | : : |",
    "| : : : : |",
    "| | : | : |",
    "|Y| : |B: |",
    "+---------+",
];
const TAXI_LOCS: [(usize, usize); 4] = [(0, 0), (0, 4), (4, 0), (4, 3)];

fn taxi_encode(row: usize, col: usize, pass: usize, dest: usize) -> u32 {
    (((row * 5 + col) * 5 + pass) * 4 + dest) as u32
}

#[allow(clippy::needless_range_loop)]
fn taxi() -> TabularModel {
    let desc: Vec<&[u8]> = TAXI_MAP.iter().map(|r| r.as_bytes()).collect();
    let mut p = vec![Vec::new(); 500];
    let mut initial = vec![0.0; 500];
    for row in 0..5 {
        for col in 0..5 {
            for pass in 0..5 {
                for dest in 0..4 {
                    let s = taxi_encode(row, col, pass, dest);
                    if pass < 4 && pass != dest {
                        initial[s as usize] += 1.0;
                    }
                    let actions = (0..6)
                        .map(|action| {
                            let (mut nr, mut nc, mut np) = (row, col, pass);
                            let mut reward = -1.0;
                            let mut terminated = false;
                            let here = (row, col);
                            match action {
                                0 => nr = (row + 1).min(4),
                                1 => nr = row.saturating_sub(1),
                                2 if desc[1 + row][2 * col + 2] == b':' => nc = (col + 1).min(4),
                                3 if desc[1 + row][2 * col] == b':' => nc = col.saturating_sub(1),
                                4 => {
                                    if pass < 4 && here == TAXI_LOCS[pass] {
                                        np = 4;
                                    } else {
                                        reward = -10.0;
                                    }
                                }
                                5 => {
                                    if here == TAXI_LOCS[dest] && pass == 4 {
                                        np = dest;
                                        terminated = true;
                                        reward = 20.0;
                                    } else if let (Some(i), 4) =
                                        (TAXI_LOCS.iter().position(|&l| l == here), pass)
                                    {
                                        np = i;
                                    } else {
                                        reward = -10.0;
                                    }
                                }
                                _ => {}
                            }
                            vec![Transition {
                                prob: 1.0,
                                next: taxi_encode(nr, nc, np, dest),
                                reward,
                                terminated,
                            }]
                        })
                        .collect();
                    p[s as usize] = actions;
                }
            }
        }
    }
    let total: f64 = initial.iter().sum();
    initial.iter_mut().for_each(|x| *x /= total);
    TabularModel {
        n_states: 500,
        n_actions: 6,
        p,
        initial,
    }
}

fn cliff_walking() -> TabularModel {
    let (rows, cols) = (4usize, 12usize);
    let start = (3 * cols) as u32;
    // UP=0, RIGHT=1, DOWN=2, LEFT=3
    let delta = |a: usize| -> (isize, isize) {
        match a {
            0 => (-1, 0),
            1 => (0, 1),
            2 => (1, 0),
            _ => (0, -1),
        }
    };
    let mut p = Vec::with_capacity(rows * cols);
    for s in 0..rows * cols {
        let (r, c) = ((s / cols) as isize, (s % cols) as isize);
        p.push(
            (0..4)
                .map(|a| {
                    let (dr, dc) = delta(a);
                    let nr = (r + dr).clamp(0, rows as isize - 1) as usize;
                    let nc = (c + dc).clamp(0, cols as isize - 1) as usize;
                    let cliff = nr == 3 && (1..cols - 1).contains(&nc);
                    vec![if cliff {
                        Transition {
                            prob: 1.0,
                            next: start,
                            reward: -100.0,
                            terminated: false,
                        }
                    } else {
                        Transition {
                            prob: 1.0,
                            next: (nr * cols + nc) as u32,
                            reward: -1.0,
                            terminated: nr == rows - 1 && nc == cols - 1,
                        }
                    }]
                })
                .collect(),
        );
    }
    let mut initial = vec![0.0; rows * cols];
    initial[start as usize] = 1.0;
    TabularModel {
        n_states: (rows * cols) as u32,
        n_actions: 4,
        p,
        initial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_are_refused_clearly() {
        for (id, map) in [
            ("FrozenLake-v1", "SFX"),
            ("FrozenLake-v1", "FFF,FFFF"),
            ("FrozenLake-v1", "FFF"),
        ] {
            let err = EnvSpec::parse(id, Some(map), None).expect_err(map);
            assert_eq!(err.code(), "invalid_input");
        }
        assert!(EnvSpec::parse("Pong-v5", None, None).is_err());
        assert!(EnvSpec::parse("Taxi-v4", Some("4x4"), None).is_err());
    }

    #[test]
    fn probabilities_sum_to_one_everywhere() {
        for spec in [
            EnvSpec::frozen_lake_8x8(),
            EnvSpec::Taxi,
            EnvSpec::CliffWalking,
        ] {
            let m = spec.build();
            for s in &m.p {
                for a in s {
                    let total: f64 = a.iter().map(|t| t.prob).sum();
                    assert!((total - 1.0).abs() < 1e-12, "{spec:?}");
                }
            }
            assert!((m.initial.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn frozen_lake_4x4_optimum_matches_gymnasium_note() {
        // Gymnasium's registration notes "optimum = 0.74" for the time-limited
        // task; without a limit the best success probability from S is ~0.82.
        let m = EnvSpec::frozen_lake_4x4().build();
        let v = m.value_iteration(1.0, 1e-12);
        assert!((v[0] - 0.8235).abs() < 1e-3, "{}", v[0]);
    }
}
