//! Fuzzes engine-state validation and restore: the first byte picks the
//! engine (low 7 bits) and whether to tick (high bit), the rest is the MessagePack body of its state. Nothing may panic;
//! a state that passes its checks must restore, capture and pass again, and
//! the restored engines must tick once without panicking when its worst
//! case is cheap (expensive but valid states are only restored, so the run
//! keeps its pace). Seeds: `cargo run --bin seeds` (see scripts/fuzz).
#![no_main]

use engram_core::engines::{ENGINE_NAMES, EngineSet, EnginesConfig, FakeClock, check_state};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let engine = ENGINE_NAMES[(pick & 0x7f) as usize % ENGINE_NAMES.len()];
    let mut bytes = b"EGST".to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(body);
    let Ok(state) = engram_core::EncodedState::from_bytes(bytes) else {
        return;
    };
    if check_state(engine, &state).is_err() {
        return;
    }
    let mut set = EngineSet::new(EnginesConfig::default(), 1);
    set.restore_engine(engine, &state)
        .expect("a state that passed its checks restores");
    for s in set.capture().expect("capture") {
        check_state(&s.engine, &s.state).expect("a captured state passes again");
    }
    if pick & 0x80 != 0 && cheap(&set) {
        set.tick(&mut FakeClock { now: 0, step: 1 });
        assert!(set.failed().is_empty(), "a tick panicked: {:?}", set.failed());
    }
});

/// Settings whose one tick stays small (the fuzzer must keep its pace).
fn cheap(set: &EngineSet) -> bool {
    let z = &set.zap.config;
    let m = &set.mdp_es.config;
    z.tasks.max_size <= 12
        && z.simulations <= 64
        && z.max_depth <= 16
        && z.heldout_maps <= 10
        && z.updates_per_plan * z.batch_size <= 4096
        && m.q.steps_per_tick <= 2000
        && m.es.pairs * m.es.episodes_per_eval <= 64
        && m.es.validation_episodes <= 20
}
