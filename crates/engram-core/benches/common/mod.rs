//! What the store and runtime benchmarks share: the ≈1 MB reference state
//! (50,000 Q-values, an ES population of 200 × 256 f32, 1,000 replay
//! transitions, metrics) and percentiles of timings.

#![allow(dead_code)] // each bench uses its part

use engram_core::Metrics;
use engram_core::engines::rng::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize)]
pub struct Transition {
    pub state: [f32; 8],
    pub action: u32,
    pub reward: f64,
    pub next_state: [f32; 8],
    pub done: bool,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ReferenceState {
    pub q_values: Vec<f64>,
    pub population: Vec<Vec<f32>>,
    pub replay: Vec<Transition>,
    pub metrics: Metrics,
    pub generation: u64,
}

/// The reference state, filled with values in [-1, 1) from the core's `Rng`.
pub fn reference_state(seed: u64) -> ReferenceState {
    let mut rng = Rng::new(seed);
    let mut unit = move || rng.range(-1.0, 1.0);
    ReferenceState {
        q_values: (0..50_000).map(|_| unit()).collect(),
        population: (0..200)
            .map(|_| (0..256).map(|_| unit() as f32).collect())
            .collect(),
        replay: (0..1000)
            .map(|i| Transition {
                state: std::array::from_fn(|_| unit() as f32),
                action: i % 4,
                reward: unit(),
                next_state: std::array::from_fn(|_| unit() as f32),
                done: i % 50 == 0,
            })
            .collect(),
        metrics: (0..20).map(|i| (format!("metric_{i}"), unit())).collect(),
        generation: 1234,
    }
}

/// The `p` quantile (0–1) of the timings, in milliseconds.
pub fn percentile_ms(v: &[Duration], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

/// The median of some figures.
pub fn median(v: Vec<f64>) -> f64 {
    pct(v, 0.5)
}

/// The `p` quantile (0–1) of some figures (nearest rank).
pub fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
