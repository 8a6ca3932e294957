//! Store benchmark (`scripts/bench`, or `cargo bench -p engram-core --bench store`).
//!
//! Reference state ≈ 1 MB: 50,000 Q-values, an ES population of 200 × 256
//! f32, 1,000 replay transitions and metrics. Measured side by side in one
//! run: the raw floor (write + fsync of the same bytes), a durable save
//! (encode + compress + commit), a warm restore (read + decompress + verify +
//! decode), and the Python path (`bench/python_store.py`: pickle + sqlite3).
//! Prints medians and p90s; no assertions — BENCHMARKS.md records the numbers.

use engram_core::{EngineState, Store, codec};
use std::io::{Seek, Write};
use std::time::{Duration, Instant};

mod common;

use common::{ReferenceState, percentile_ms, reference_state};

fn stats(v: Vec<Duration>) -> (f64, f64) {
    (percentile_ms(&v, 0.5), percentile_ms(&v, 0.9))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Long by design: a benchmark's runs in sequence, each printing its
    // figures.
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir()?;
    let state = reference_state(1);
    let encoded = codec::encode(1, &state)?;
    let zstd_len = zstd::bulk::compress(encoded.as_bytes(), 1)?.len();
    println!(
        "reference state: {} bytes encoded (live saves store it as is; zstd level 1 would give {zstd_len}); {iters} iterations each, interleaved",
        encoded.len(),
    );

    let mut store = Store::open(dir.path().join("engram.db"))?;
    let floor_path = dir.path().join("floor.bin");
    let mut floor_file = std::fs::File::create(&floor_path)?;
    let floor_bytes = vec![0xA5u8; encoded.len()];

    let (mut floor, mut save, mut restore) = (Vec::new(), Vec::new(), Vec::new());
    let mut restore_check = 0.0;
    for i in 0..iters {
        // Raw floor: the same number of bytes, overwritten in place and fsynced.
        let t = Instant::now();
        floor_file.seek(std::io::SeekFrom::Start(0))?;
        floor_file.write_all(&floor_bytes)?;
        floor_file.sync_data()?;
        floor.push(t.elapsed());

        // Durable save: encode + compress + commit (synchronous=FULL).
        let mut st = reference_state(1);
        st.generation = i as u64; // a real change each time
        let t = Instant::now();
        let enc = codec::encode(1, &st)?;
        store.save_live(
            &[EngineState {
                engine: "mdp_es".into(),
                state: enc,
                metrics: st.metrics.clone(),
            }],
            i as i64,
        )?;
        save.push(t.elapsed());

        // Warm restore: read + decompress + checksum + validate + decode.
        let t = Instant::now();
        let load = store.load_live(&["mdp_es"])?;
        let back: ReferenceState = load.states["mdp_es"].state.decode()?;
        restore.push(t.elapsed());
        restore_check += back.q_values[7];
    }
    std::hint::black_box(restore_check);

    let (floor_p50, floor_p90) = stats(floor);
    let (save_p50, save_p90) = stats(save);
    let (restore_p50, restore_p90) = stats(restore);
    println!("fsync floor       median {floor_p50:8.3} ms   p90 {floor_p90:8.3} ms");
    println!(
        "durable save      median {save_p50:8.3} ms   p90 {save_p90:8.3} ms   = {:.2}x the floor",
        save_p50 / floor_p50
    );
    println!("warm restore      median {restore_p50:8.3} ms   p90 {restore_p90:8.3} ms");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/python_store.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--iters")
        .arg(iters.to_string())
        .arg("--dir")
        .arg(dir.path())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let v: serde_json::Value = serde_json::from_str(text.trim())?;
            let py_save = v["save_median_ms"].as_f64().unwrap_or(f64::NAN);
            let py_restore = v["restore_median_ms"].as_f64().unwrap_or(f64::NAN);
            println!(
                "python save       median {py_save:8.3} ms   ({} bytes pickled)   Rust is {:.1}x faster",
                v["bytes"],
                py_save / save_p50
            );
            println!(
                "python restore    median {py_restore:8.3} ms   Rust is {:.1}x faster",
                py_restore / restore_p50
            );
        }
        Ok(o) => println!(
            "python path failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => println!("python path not run: {e}"),
    }
    Ok(())
}
