//! Runtime benchmark (`scripts/bench`, or `cargo bench -p engram-core --bench runtime`).
//!
//! - The engines' stall per autosave: the capture is a clone taken on the
//!   engine thread; encoding and writing happen elsewhere. Measured (a) as the
//!   clone of the ≈1 MB reference state of the store benchmark and (b) inside
//!   a real runtime autosaving every 20 ms for 5 s.
//! - The same stall while a learner saves 256 MB states back to back through
//!   the learner API (streamed into an object, hashed, fsynced, committed),
//!   measured right after the quiet window, side by side; then, as a
//!   control, while the same chunks are only produced (nothing saved).
//! - Start to running: `Runtime::start` on a data directory with saved state
//!   (lock, open, migrate, load + verify, restore, spawn) until the first
//!   metrics event from the ticking engines.

use engram_core::runtime::{Event, Runtime, RuntimeOptions};
use std::time::{Duration, Instant};

mod common;

use common::{percentile_ms, reference_state};

fn pct(v: Vec<Duration>, p: f64) -> f64 {
    percentile_ms(&v, p)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reference = reference_state(1);
    let mut clones = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        let c = std::hint::black_box(reference.clone());
        clones.push(t.elapsed());
        drop(c);
    }
    println!(
        "capture (clone) of the ≈1 MB reference state: p50 {:.3} ms, p99 {:.3} ms (2000 clones)",
        pct(clones.clone(), 0.5),
        pct(clones, 0.99)
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let mut o = RuntimeOptions::new(dir.path());
        o.autosave = Duration::from_millis(20);
        o.pace = Duration::from_millis(1);
        let runtime = Runtime::start(o.clone()).await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stalls = runtime.capture_stalls();
        let size: usize = runtime
            .with_store(|s| Ok(s.live_metrics()?.len()))
            .await
            .unwrap_or(0);
        let bytes = runtime
            .with_store(|s| s.stored_bytes())
            .await
            .unwrap_or(0);
        println!(
            "engine stall per autosave in a live runtime ({} engines, {} autosaves in 5 s, {} bytes stored): p50 {:.3} ms, p99 {:.3} ms",
            size,
            stalls.len(),
            bytes,
            pct(stalls.clone(), 0.5),
            pct(stalls, 0.99)
        );
        // The same, while a learner saves 256 MB states back to back.
        let api = std::sync::Arc::new(engram_core::api::Api::new(runtime));
        api.attach_learner(engram_core::api::AttachLearner {
            name: "big".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.message)?;
        // Then, as a control, the same producer of 1 MiB chunks at normal
        // priority with nothing saved: how much of the rise is the load of
        // bytes arriving at all, on two cores.
        for save in [true, false] {
            let before = api.runtime().map_err(|e| e.message)?.capture_stalls().len();
            let saver = {
                let api = api.clone();
                tokio::spawn(async move {
                    let mut saves = Vec::new();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(5) {
                        n += 1;
                        // 256 MB in 1 MiB chunks, different each time.
                        let chunks = (0..256u64).map(move |i| {
                            let mut c = vec![(i as u8) ^ (n as u8); 1 << 20];
                            c[..8].copy_from_slice(&n.to_le_bytes());
                            Ok::<Vec<u8>, std::io::Error>(c)
                        });
                        let t = Instant::now();
                        if save {
                            api.save_learner_state(
                                "big".into(),
                                Default::default(),
                                tokio_stream::iter(chunks),
                            )
                            .await
                            .map_err(|e| e.message)?;
                        } else {
                            for c in chunks {
                                std::hint::black_box(&c);
                                tokio::task::yield_now().await;
                            }
                        }
                        saves.push(t.elapsed());
                    }
                    Ok::<Vec<Duration>, String>(saves)
                })
            };
            let saves = saver.await??;
            let during: Vec<Duration> =
                api.runtime().map_err(|e| e.message)?.capture_stalls()[before..].to_vec();
            println!(
                "engine stall per autosave {} ({} rounds, median {:.0} ms each; {} autosaves): p50 {:.3} ms, p99 {:.3} ms",
                if save {
                    "while a learner saves 256 MB states back to back"
                } else {
                    "while a task at normal priority only produces the same chunks (control, nothing saved)"
                },
                saves.len(),
                pct(saves.clone(), 0.5),
                during.len(),
                pct(during.clone(), 0.5),
                pct(during, 0.99)
            );
        }
        api.stop().await.map_err(|e| e.message)?;
        // The data directory's lock goes with the runtime (and its tasks).
        drop(api);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let mut starts = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let runtime = Runtime::start(o.clone()).await?;
            let mut events = runtime.subscribe();
            loop {
                if let Ok(Event::Metrics { .. }) = events.recv().await {
                    break;
                }
            }
            starts.push(t.elapsed());
            runtime.shutdown().await?;
        }
        println!(
            "start to engines running on restored state: median {:.1} ms, p90 {:.1} ms (20 starts)",
            pct(starts.clone(), 0.5),
            pct(starts, 0.9)
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
