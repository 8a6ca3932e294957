//! Corruption tests, the way SQLite does them: flip bytes in the database
//! file and expect a typed error or a fallback to good data — never a panic,
//! never a state that differs from one that was written.

mod common;

use common::{ENGINES, WriterState};
use engram_core::{BackupKind, EngineState, Metrics, NewBackup, Store, codec};
use std::path::Path;

fn states(counter: u64) -> Vec<EngineState> {
    ENGINES
        .iter()
        .map(|e| EngineState {
            engine: e.to_string(),
            state: codec::encode(1, &WriterState::new(e, counter)).expect("encode"),
            metrics: Metrics::from([("counter".to_string(), counter as f64)]),
        })
        .collect()
}

/// A database with three backups (counters 1..=3) and live state at 4,
/// checkpointed so the main file holds everything.
fn build(path: &Path) {
    let mut store = Store::open(path).expect("open");
    for c in 1..=3 {
        store
            .create_backup(&NewBackup {
                kind: BackupKind::Manual,
                created_at_ms: c as i64,
                label: None,
                breakthrough: None,
                states: &states(c),
            })
            .expect("backup");
    }
    store.save_live(&states(4), 4).expect("live");
    drop(store); // last connection closed: WAL checkpointed and removed
    assert!(
        !path.with_extension("db-wal").exists()
            || std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len() == 0)
                .unwrap_or(true)
    );
}

/// Opens and loads; returns the counters loaded per engine, or the error code.
fn open_and_load(path: &Path) -> Result<(Vec<u64>, usize), String> {
    let store = Store::open(path).map_err(|e| e.code().to_string())?;
    let load = store
        .load_live(&ENGINES)
        .map_err(|e| e.code().to_string())?;
    let mut counters = Vec::new();
    for engine in ENGINES {
        if let Some(s) = load.states.get(engine) {
            let w: WriterState = s.state.decode().map_err(|e| e.code().to_string())?;
            assert!(
                w.is_consistent(),
                "a checked state decoded to different data"
            );
            assert_eq!(w.engine, engine);
            assert!(
                (1..=4).contains(&w.counter),
                "counter {} was never written",
                w.counter
            );
            counters.push(w.counter);
        }
    }
    // Verification must not panic either, whatever it finds.
    let _ = store.verify_all(true);
    let _ = store.list_backups(&Default::default());
    Ok((counters, load.skipped.len()))
}

const KNOWN_CODES: [&str; 6] = [
    "corrupt_database",
    "corrupt_state",
    "database",
    "invalid_input",
    "io",
    "newer_schema",
];

#[test]
fn random_byte_flips_in_the_database_give_typed_errors_or_good_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.db");
    build(&good);
    let original = std::fs::read(&good).expect("read");
    let mut rng = common::rng(0xC0FFEE);
    let (mut errors, mut fallbacks, mut clean) = (0, 0, 0);
    for i in 0..300 {
        let path = dir.path().join(format!("case{i}.db"));
        let mut bytes = original.clone();
        for _ in 0..1 + rng() % 8 {
            let at = (rng() as usize) % bytes.len();
            bytes[at] ^= 1 << (rng() % 8);
        }
        std::fs::write(&path, &bytes).expect("write");
        match open_and_load(&path) {
            Err(code) => {
                assert!(
                    KNOWN_CODES.contains(&code.as_str()),
                    "case {i}: untyped error {code}"
                );
                errors += 1;
            }
            Ok((_, skipped)) if skipped > 0 => fallbacks += 1,
            Ok(_) => clean += 1,
        }
        let _ = std::fs::remove_file(&path);
    }
    eprintln!(
        "300 damaged files: {errors} typed errors, {fallbacks} fallbacks, {clean} unaffected"
    );
    assert_eq!(errors + fallbacks + clean, 300);
    // Fixed seed and file layout: both outcomes must actually be exercised.
    assert!(
        errors > 0 && fallbacks > 0,
        "the damage never reached the checks"
    );
}

#[test]
fn damaged_live_state_falls_back_to_the_newest_good_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("engram.db");
    build(&path);
    // Find the stored (compressed) live state of each engine in the file and
    // damage it. A row may span overflow pages, so look for a 32-byte window
    // from its middle, which lies within one page.
    let live: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.prepare("SELECT data FROM live_states")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(live.len(), 2);
    let mut bytes = std::fs::read(&path).expect("read");
    for blob in &live {
        let at = (blob.len() / 2..blob.len() - 32)
            .step_by(8)
            .find_map(|o| find(&bytes, &blob[o..o + 32]))
            .expect("a window of the live state is in the file");
        bytes[at + 5] ^= 0xFF;
        bytes[at + 6] ^= 0xFF;
    }
    std::fs::write(&path, &bytes).expect("write");
    let (counters, skipped) = open_and_load(&path).expect("falls back, no error");
    assert_eq!(
        counters,
        vec![3, 3],
        "both engines restored from the newest backup (counter 3)"
    );
    assert_eq!(skipped, 2, "both damaged live states reported");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
