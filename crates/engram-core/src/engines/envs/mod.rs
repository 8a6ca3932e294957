//! Environments identical to Gymnasium 1.4: the tabular ones as explicit
//! transition tables (`P[s][a]` = list of (probability, next state, reward,
//! terminated), in Gymnasium's order), and CartPole-v1's physics.
//! Golden tests compare them with tables written by Gymnasium itself.

mod cartpole;
mod tabular;

pub use cartpole::{CartPole, CartPoleStep, MAX_EPISODE_STEPS as CARTPOLE_MAX_STEPS};
pub(crate) use tabular::validate_frozen_map;
pub use tabular::{EnvSpec, TabularModel, Transition};
