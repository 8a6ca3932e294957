//! Fuzzes snapshot parsing (both forms): it must never panic, and anything it
//! accepts must re-validate. Run: `cargo fuzz run import` in crates/engram-core.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = engram_core::snapshot::parse(data) {
        for s in &snap.states {
            assert!(engram_core::codec::validate(s.state.as_bytes()).is_ok());
        }
    }
});
