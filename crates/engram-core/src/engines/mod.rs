//! The learning engines and their environments. Pure: no IO, no clocks of
//! their own (time comes in through [`Clock`]), deterministic given a seed.

pub mod envs;
pub mod rng;
