//! CartPole-v1 exactly as Gymnasium 1.4: same constants, Euler integration,
//! termination thresholds, reward 1 per step, truncation at 500 steps.

use super::super::rng::Rng;
use serde::{Deserialize, Serialize};

const GRAVITY: f64 = 9.8;
const MASSCART: f64 = 1.0;
const MASSPOLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASSPOLE + MASSCART;
const LENGTH: f64 = 0.5;
const POLEMASS_LENGTH: f64 = MASSPOLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;
/// CartPole-v1's TimeLimit.
pub const MAX_EPISODE_STEPS: u32 = 500;

/// One CartPole episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CartPole {
    /// x, x_dot, theta, theta_dot (float64, as `env.unwrapped.state`).
    pub state: [f64; 4],
    pub steps: u32,
}

/// What one step returned.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CartPoleStep {
    pub state: [f64; 4],
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

impl CartPole {
    /// Starts from a given state.
    pub fn from_state(state: [f64; 4]) -> Self {
        CartPole { state, steps: 0 }
    }

    /// Starts like Gymnasium's reset: each component uniform in [-0.05, 0.05).
    pub fn reset(rng: &mut Rng) -> Self {
        CartPole::from_state(std::array::from_fn(|_| rng.range(-0.05, 0.05)))
    }

    /// Applies action 0 (push left) or 1 (push right).
    pub fn step(&mut self, action: u32) -> CartPoleStep {
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
        let (sintheta, costheta) = theta.sin_cos();
        let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
        let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
        let x = x + TAU * x_dot;
        let x_dot = x_dot + TAU * xacc;
        let theta = theta + TAU * theta_dot;
        let theta_dot = theta_dot + TAU * thetaacc;
        self.state = [x, x_dot, theta, theta_dot];
        self.steps += 1;
        // Written as Gymnasium writes it: a NaN state does not terminate,
        // which `!range.contains()` would get wrong.
        #[allow(clippy::manual_range_contains)]
        let terminated = x < -X_THRESHOLD
            || x > X_THRESHOLD
            || theta < -THETA_THRESHOLD
            || theta > THETA_THRESHOLD;
        CartPoleStep {
            state: self.state,
            reward: 1.0,
            terminated,
            // TimeLimit sets truncated at the limit whether or not terminated.
            truncated: self.steps >= MAX_EPISODE_STEPS,
        }
    }
}
