//! Grid worlds for the ZAP planner: the task model, a generator of new random
//! maps (every task unseen), and the cell features that transfer between maps
//! (the planner's value function and the MDP engine's "concepts" use them).

use super::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Number of features per cell.
pub const N_FEATURES: usize = 6;
/// Cell features (see [`GridTask::features`]).
pub type Features = [f64; N_FEATURES];

/// Maps the generator draws before it gives up on the settings' densities.
pub const MAX_ATTEMPTS: usize = 1000;

/// Cell kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    Free,
    Wall,
    Hole,
    Goal,
}

/// One planning task: a map, a start, and the probability that a move slips
/// to one of the two perpendicular directions (half each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridTask {
    pub rows: usize,
    pub cols: usize,
    pub cells: Vec<Cell>,
    pub start: usize,
    pub goal: usize,
    pub slip: f64,
    /// Steps allowed before the task counts as failed.
    pub max_steps: u32,
    /// BFS distance to the goal through free cells (u32::MAX: unreachable).
    #[serde(skip)]
    dist: Vec<u32>,
}

/// What the generator produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskGenConfig {
    pub min_size: usize,
    pub max_size: usize,
    pub wall_density: f64,
    pub hole_density: f64,
    pub slip_min: f64,
    pub slip_max: f64,
    /// Steps allowed per task = this × (rows + cols).
    pub step_budget: f64,
}

impl TaskGenConfig {
    /// Map sizes, densities (open enough that a reachable goal is likely),
    /// slip and step budget within their ranges.
    pub(crate) fn check(&self, b: &super::bounds::Bounds) -> crate::error::Result<()> {
        b.range("config.tasks.min_size", self.min_size, 3, 64)?;
        b.range("config.tasks.max_size", self.max_size, self.min_size, 64)?;
        b.range("config.tasks.wall_density", self.wall_density, 0.0, 0.45)?;
        b.range("config.tasks.hole_density", self.hole_density, 0.0, 0.45)?;
        b.range(
            "config.tasks.wall_density + hole_density",
            self.wall_density + self.hole_density,
            0.0,
            0.6,
        )?;
        b.unit("config.tasks.slip_min", self.slip_min)?;
        b.range("config.tasks.slip_max", self.slip_max, self.slip_min, 1.0)?;
        b.range("config.tasks.step_budget", self.step_budget, 0.5, 20.0)
    }
}

impl Default for TaskGenConfig {
    fn default() -> Self {
        TaskGenConfig {
            min_size: 6,
            max_size: 9,
            wall_density: 0.12,
            hole_density: 0.14,
            slip_min: 0.0,
            slip_max: 0.2,
            step_budget: 2.0,
        }
    }
}

/// Moves: LEFT, DOWN, RIGHT, UP (FrozenLake's order).
const MOVES: [(isize, isize); 4] = [(0, -1), (1, 0), (0, 1), (-1, 0)];

impl GridTask {
    /// Builds a task and its distance map.
    pub fn new(
        rows: usize,
        cols: usize,
        cells: Vec<Cell>,
        start: usize,
        goal: usize,
        slip: f64,
        max_steps: u32,
    ) -> Self {
        let mut t = GridTask {
            rows,
            cols,
            cells,
            start,
            goal,
            slip,
            max_steps,
            dist: Vec::new(),
        };
        t.dist = t.distances();
        t
    }

    /// A new random task whose goal is reachable from its start.
    ///
    /// Terminates for any settings: after [`MAX_ATTEMPTS`] maps without a
    /// usable start/goal pair (walls so dense that none is reachable), it
    /// returns an open map with start and goal in opposite corners.
    pub fn generate(cfg: &TaskGenConfig, rng: &mut Rng) -> GridTask {
        for _ in 0..MAX_ATTEMPTS {
            let span = cfg.max_size.saturating_sub(cfg.min_size) + 1;
            let rows = cfg.min_size.max(2) + rng.below(span);
            let cols = cfg.min_size.max(2) + rng.below(span);
            let n = rows * cols;
            let mut cells: Vec<Cell> = (0..n)
                .map(|_| {
                    let u = rng.uniform();
                    if u < cfg.wall_density {
                        Cell::Wall
                    } else if u < cfg.wall_density + cfg.hole_density {
                        Cell::Hole
                    } else {
                        Cell::Free
                    }
                })
                .collect();
            let start = rng.below(n);
            let mut goal = rng.below(n);
            while goal == start {
                goal = rng.below(n);
            }
            cells[start] = Cell::Free;
            cells[goal] = Cell::Goal;
            let slip = rng.range(cfg.slip_min, cfg.slip_max.max(cfg.slip_min));
            let max_steps = (cfg.step_budget * (rows + cols) as f64).ceil() as u32;
            let task = GridTask::new(rows, cols, cells, start, goal, slip, max_steps);
            // Keep tasks that need some planning: reachable, and not adjacent.
            if let Some(&d) = task.dist.get(start)
                && d != u32::MAX
                && d >= 3
            {
                return task;
            }
        }
        let side = cfg.max_size.clamp(3, 64);
        let n = side * side;
        let mut cells = vec![Cell::Free; n];
        cells[n - 1] = Cell::Goal;
        let max_steps = (cfg.step_budget.max(1.0) * (2 * side) as f64).ceil() as u32;
        GridTask::new(
            side,
            side,
            cells,
            0,
            n - 1,
            cfg.slip_min.clamp(0.0, 1.0),
            max_steps,
        )
    }

    /// A FrozenLake map as a grid task (slippery: 2/3 of moves slip).
    pub fn from_frozen_lake(map: &[String], slippery: bool) -> GridTask {
        let rows = map.len();
        let cols = map.first().map(|r| r.len()).unwrap_or(0);
        let mut start = 0;
        let mut goal = 0;
        let cells = map
            .iter()
            .flat_map(|r| r.bytes())
            .enumerate()
            .map(|(i, b)| match b {
                b'H' => Cell::Hole,
                b'G' => {
                    goal = i;
                    Cell::Goal
                }
                b'S' => {
                    start = i;
                    Cell::Free
                }
                _ => Cell::Free,
            })
            .collect();
        let slip = if slippery { 2.0 / 3.0 } else { 0.0 };
        GridTask::new(rows, cols, cells, start, goal, slip, 100)
    }

    pub fn n_cells(&self) -> usize {
        self.cells.len()
    }

    /// Whether a cell ends the episode.
    pub fn is_terminal(&self, pos: usize) -> bool {
        matches!(self.cells[pos], Cell::Hole | Cell::Goal)
    }

    fn shift(&self, pos: usize, dir: usize) -> usize {
        let (r, c) = ((pos / self.cols) as isize, (pos % self.cols) as isize);
        let (dr, dc) = MOVES[dir];
        let (nr, nc) = (r + dr, c + dc);
        if nr < 0 || nc < 0 || nr >= self.rows as isize || nc >= self.cols as isize {
            return pos;
        }
        let next = nr as usize * self.cols + nc as usize;
        if self.cells[next] == Cell::Wall {
            pos
        } else {
            next
        }
    }

    /// The outcomes of moving `dir` from `pos`: (probability, next cell).
    pub fn outcomes(&self, pos: usize, dir: usize) -> [(f64, usize); 3] {
        let side = self.slip / 2.0;
        [
            (1.0 - self.slip, self.shift(pos, dir)),
            (side, self.shift(pos, (dir + 3) % 4)),
            (side, self.shift(pos, (dir + 1) % 4)),
        ]
    }

    /// Samples one move; returns the next cell.
    pub fn step(&self, pos: usize, dir: usize, rng: &mut Rng) -> usize {
        let o = self.outcomes(pos, dir);
        o[rng.categorical(o.iter().map(|x| x.0))].1
    }

    /// The best probability any policy has of reaching the goal within
    /// `max_steps` (finite-horizon value iteration over the slip model): what
    /// a planner's success on this map is measured against.
    pub fn optimal_success(&self) -> f64 {
        let n = self.n_cells();
        let mut v = vec![0.0; n];
        let mut next = v.clone();
        for _ in 0..self.max_steps {
            for (p, out) in next.iter_mut().enumerate() {
                *out = if self.is_terminal(p) {
                    0.0
                } else {
                    (0..4)
                        .map(|d| {
                            self.outcomes(p, d)
                                .iter()
                                .map(|&(pr, q)| {
                                    let later = if self.is_terminal(q) { 0.0 } else { v[q] };
                                    pr * (self.reward(q) + later)
                                })
                                .sum::<f64>()
                        })
                        .fold(f64::NEG_INFINITY, f64::max)
                };
            }
            std::mem::swap(&mut v, &mut next);
        }
        v.get(self.start).copied().unwrap_or(0.0)
    }

    /// Reward for entering `pos`.
    pub fn reward(&self, pos: usize) -> f64 {
        if self.cells[pos] == Cell::Goal {
            1.0
        } else {
            0.0
        }
    }

    /// Distance to the goal from `pos` (None: unreachable).
    pub fn distance(&self, pos: usize) -> Option<u32> {
        self.dist.get(pos).copied().filter(|&d| d != u32::MAX)
    }

    fn distances(&self) -> Vec<u32> {
        let mut dist = vec![u32::MAX; self.n_cells()];
        if self.goal >= dist.len() {
            return dist;
        }
        dist[self.goal] = 0;
        let mut queue = VecDeque::from([self.goal]);
        while let Some(p) = queue.pop_front() {
            for dir in 0..4 {
                let q = self.shift(p, dir);
                if q != p && dist[q] == u32::MAX && self.cells[q] == Cell::Free {
                    dist[q] = dist[p] + 1;
                    queue.push_back(q);
                }
            }
        }
        dist
    }

    /// Features of a cell that mean the same on every map: bias, closeness
    /// to the goal (0.9^distance), reachability, the share of neighbouring
    /// holes, slip, and slip × holes.
    pub fn features(&self, pos: usize) -> Features {
        let closeness = self
            .distance(pos)
            .map(|d| 0.9f64.powi(d as i32))
            .unwrap_or(0.0);
        let reachable = if self.distance(pos).is_some() {
            1.0
        } else {
            0.0
        };
        let holes = (0..4)
            .filter(|&d| {
                let q = self.shift(pos, d);
                q != pos && self.cells[q] == Cell::Hole
            })
            .count() as f64
            / 4.0;
        [
            1.0,
            closeness,
            reachable,
            holes,
            self.slip,
            self.slip * holes,
        ]
    }

    /// If the distance map was skipped by deserialization, rebuild it.
    pub fn rebuild(&mut self) {
        self.dist = self.distances();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tasks_are_new_solvable_and_well_formed() {
        let mut rng = Rng::new(5);
        let cfg = TaskGenConfig::default();
        let tasks: Vec<GridTask> = (0..50)
            .map(|_| GridTask::generate(&cfg, &mut rng))
            .collect();
        for t in &tasks {
            assert!(t.distance(t.start).is_some_and(|d| d >= 3));
            assert_eq!(t.cells[t.goal], Cell::Goal);
            assert!((cfg.min_size..=cfg.max_size).contains(&t.rows));
            assert!(t.slip >= 0.0 && t.slip <= cfg.slip_max);
        }
        let distinct: std::collections::BTreeSet<String> =
            tasks.iter().map(|t| format!("{:?}", t.cells)).collect();
        assert_eq!(distinct.len(), 50, "every task is a new map");
    }

    #[test]
    fn moves_respect_walls_edges_and_slip() {
        let cells = vec![Cell::Free, Cell::Wall, Cell::Free, Cell::Goal];
        let t = GridTask::new(2, 2, cells, 0, 3, 0.2, 10);
        assert_eq!(t.outcomes(0, 2)[0], (0.8, 0)); // right is a wall: stay
        assert_eq!(t.outcomes(0, 1)[0].1, 2); // down
        assert_eq!(t.outcomes(0, 0)[0].1, 0); // left edge
        assert_eq!(t.distance(0), Some(2));
        let f = t.features(2);
        assert_eq!(f[1], 0.9);
    }

    #[test]
    fn frozen_lake_maps_convert() {
        let map: Vec<String> = ["SFFF", "FHFH", "FFFH", "HFFG"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = GridTask::from_frozen_lake(&map, true);
        assert_eq!((t.start, t.goal, t.slip), (0, 15, 2.0 / 3.0));
        assert_eq!(t.distance(0), Some(6));
    }
}
