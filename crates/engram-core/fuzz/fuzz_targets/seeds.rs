//! Writes the seed corpus of the `engine_state` target: each engine's state,
//! fresh and after some ticks, as the target reads it (engine byte + body).
//! Usage: `cargo run --bin seeds -- <corpus dir>`.

use engram_core::engines::{ENGINE_NAMES, EngineSet, EnginesConfig, FakeClock};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let mut set = EngineSet::new(EnginesConfig::default(), 7);
    let mut clock = FakeClock { now: 0, step: 1000 };
    for round in 0..3 {
        for s in set.capture().expect("capture") {
            let pick = ENGINE_NAMES.iter().position(|n| *n == s.engine).expect("known") as u8;
            // Both halves of the engine byte: restore only, and restore + tick.
            for high in [0u8, 128] {
                let mut out = vec![pick + high];
                out.extend_from_slice(&s.state.as_bytes()[10..]);
                let path = format!("{dir}/{}-{round}-{high}", s.engine);
                std::fs::write(&path, out).expect("write a seed");
            }
        }
        for _ in 0..20 {
            set.tick(&mut clock);
        }
    }
}
