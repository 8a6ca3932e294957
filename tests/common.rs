//! Shared by the crash writer and the tests: the state the writer saves, so
//! the parent can check that what it reads back is exactly what was written.

#![allow(dead_code)]

use serde::{Deserialize, Serialize};

/// What the crash writer saves for each engine.
#[derive(Serialize, Deserialize, Debug)]
pub struct WriterState {
    pub engine: String,
    pub counter: u64,
    pub payload: Vec<f64>,
}

impl WriterState {
    /// The state for `engine` at `counter`; its size varies with the counter.
    pub fn new(engine: &str, counter: u64) -> Self {
        let n = 200 + (counter % 7) as usize * 300;
        WriterState {
            engine: engine.to_string(),
            counter,
            payload: (0..n).map(|i| expected_value(counter, i)).collect(),
        }
    }

    /// True when the payload is exactly what `new` wrote for this counter.
    pub fn is_consistent(&self) -> bool {
        // Compare bits: the payload holds NaNs, which `==` never equates.
        let want = WriterState::new(&self.engine, self.counter);
        self.payload.len() == want.payload.len()
            && self
                .payload
                .iter()
                .zip(&want.payload)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

fn expected_value(counter: u64, i: usize) -> f64 {
    // Awkward bits on purpose: subnormals, -0.0 and NaN payloads must survive.
    match i % 5 {
        0 => -0.0,
        1 => f64::from_bits(counter.wrapping_mul(0x9E37_79B9) & 0x000f_ffff_ffff_ffff),
        2 => f64::from_bits(0x7ff8_0000_0000_0000 | (counter & 0xffff)),
        _ => (counter as f64) * 1.000_000_1 + i as f64,
    }
}

/// Engines the writer saves.
pub const ENGINES: [&str; 2] = ["zap", "mdp_es"];
/// Retention the writer applies: the newest this many periodic backups stay.
pub const KEEP_LAST_PERIODIC: u32 = 5;

/// A deterministic generator for the tests: the core's own `Rng`, as a closure.
pub fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = engram_core::engines::rng::Rng::new(seed);
    move || rng.next_u64()
}
