//! Runtime benchmark (`scripts/bench`, or `cargo bench -p engram-core --bench runtime`).
//!
//! - The engines' stall per autosave: the capture is a clone taken on the
//!   engine thread; encoding and writing happen elsewhere. Measured (a) as the
//!   clone of the ≈1 MB reference state of the store benchmark and (b) inside
//!   a real runtime autosaving every 20 ms for 5 s.
//! - The same stall quiet, while a learner saves 256 MB states back to back
//!   through the learner API (streamed into a slot, hashed, fsynced,
//!   committed), and, as a control, while the same chunks are only produced
//!   (nothing saved), and while a learner writes them into a slot Engram
//!   lent (as the Python client does) and saves it (hashed, fsynced,
//!   committed): three rounds of the four, side by side, pooled.
//! - What a capture copies: the clone of the engine set (and of each engine)
//!   after 5,000 ticks, outside a runtime.
//! - Start to running: `Runtime::start` on a data directory with saved state
//!   (lock, open, migrate, load + verify, restore, spawn) until the first
//!   metrics event from the ticking engines.

use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::Event;
use std::time::{Duration, Instant};

mod common;

use common::{percentile_ms, reference_state};

fn pct(v: Vec<Duration>, p: f64) -> f64 {
    percentile_ms(&v, p)
}

/// What a capture copies: the engine set after 5,000 ticks (full replay
/// and histories), cloned as a whole and engine by engine (medians of 500).
fn engine_set_clones() {
    use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
    let mut set = EngineSet::new(EnginesConfig::default(), 3);
    let mut clock = FakeClock { now: 0, step: 1000 };
    for _ in 0..5000 {
        std::hint::black_box(set.tick(&mut clock));
    }
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..500 {
        let t = Instant::now();
        drop(std::hint::black_box(set.clone()));
        times[0].push(t.elapsed());
        let t = Instant::now();
        drop(std::hint::black_box(set.zap.clone()));
        times[1].push(t.elapsed());
        let t = Instant::now();
        drop(std::hint::black_box(set.mdp_es.clone()));
        times[2].push(t.elapsed());
        let t = Instant::now();
        drop(std::hint::black_box(set.orchestrator.clone()));
        times[3].push(t.elapsed());
    }
    let [all, zap, mdp, orch] = times.map(|t| pct(t, 0.5));
    println!(
        "capture (clone) of the engine set after 5000 ticks ({} replay samples, {} routed calls kept): median {all:.4} ms (zap {zap:.4}, mdp_es {mdp:.4}, orchestrator {orch:.4})",
        set.zap.replay.len(),
        set.orchestrator.history.len(),
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Long by design: a benchmark's runs in sequence, each printing its
    // figures.
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

    engine_set_clones();

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
        let stalls: Vec<Duration> = runtime.capture_stalls().iter().map(|s| s.wall).collect();
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
        // Then three conditions side by side, in rounds (quiet, a learner
        // saving 256 MB states back to back, and — the control — the same
        // 1 MiB chunks only produced at normal priority, nothing saved: how
        // much of any rise is the load of bytes arriving at all, on two
        // cores), pooled over the rounds.
        let api = std::sync::Arc::new(engram_core::api::Api::new(runtime));
        api.attach_learner(engram_core::wire::AttachLearner {
            name: "big".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.message)?;
        let labels = [
            "quiet",
            "while a learner saves 256 MB states back to back",
            "while a task only produces the same chunks (control, nothing saved)",
            "while a learner writes 256 MB states into lent slots and saves them",
        ];
        let mut pooled: [Vec<engram_core::runtime::CaptureStall>; 4] = Default::default();
        let mut round_p99: [Vec<String>; 4] = Default::default();
        let mut lent_times = Vec::new();
        let mut save_times = Vec::new();
        for _round in 0..3 {
            for (which, pool) in pooled.iter_mut().enumerate() {
                let before = api.runtime().map_err(|e| e.message)?.capture_stalls().len();
                let api2 = api.clone();
                let saves = tokio::spawn(async move {
                    let mut saves = Vec::new();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(4) {
                        if which == 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        n += 1;
                        // 256 MB in 1 MiB chunks, different each time.
                        let chunks = (0..256u64).map(move |i| {
                            let mut c = vec![(i as u8) ^ (n as u8); 1 << 20];
                            c[..8].copy_from_slice(&n.to_le_bytes());
                            Ok::<Vec<u8>, std::io::Error>(c)
                        });
                        let t = Instant::now();
                        if which == 3 {
                            // The learner's part (another process's, in
                            // life): the chunks written into the lent file.
                            let lease = api2
                                .lease_learner_slot("big".into())
                                .await
                                .map_err(|e| e.message)?
                                .ok_or("no slot to lend")?;
                            let path = lease.path.clone();
                            tokio::task::spawn_blocking(move || {
                                use std::io::{Seek, Write};
                                let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
                                // Its writeback started every 16 MiB as it
                                // writes (the Python client's
                                // sync_file_range; here, without `unsafe`,
                                // an fdatasync on a duplicate handle in a
                                // helper thread, one at a time).
                                let mut flushing: Option<std::thread::JoinHandle<std::io::Result<()>>> = None;
                                for (i, c) in chunks.enumerate() {
                                    f.write_all(&c?)?;
                                    if i % 16 == 15 && flushing.as_ref().is_none_or(|h| h.is_finished()) {
                                        let dup = f.try_clone()?;
                                        flushing = Some(std::thread::spawn(move || dup.sync_data()));
                                    }
                                }
                                let len = f.stream_position()?;
                                f.set_len(len)
                            })
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                            api2.save_leased_learner_state(
                                "big".into(),
                                engram_core::wire::SaveLeasedState {
                                    lease: lease.lease,
                                    state: Default::default(),
                                    next: false,
                                },
                            )
                            .await
                            .map_err(|e| e.message)?;
                            saves.push(t.elapsed());
                        } else if which == 1 {
                            api2.save_learner_state(
                                "big".into(),
                                Default::default(),
                                tokio_stream::iter(chunks),
                            )
                            .await
                            .map_err(|e| e.message)?;
                            saves.push(t.elapsed());
                        } else {
                            for c in chunks {
                                std::hint::black_box(&c);
                                tokio::task::yield_now().await;
                            }
                        }
                    }
                    Ok::<Vec<Duration>, String>(saves)
                })
                .await??;
                if which == 3 {
                    lent_times.extend(saves);
                } else {
                    save_times.extend(saves);
                }
                let during = api.runtime().map_err(|e| e.message)?.capture_stalls()[before..].to_vec();
                round_p99[which].push(format!(
                    "{:.3}",
                    pct(during.iter().map(|s| s.wall).collect(), 0.99)
                ));
                pool.extend(during);
            }
        }
        for (which, pool) in pooled.into_iter().enumerate() {
            let wall: Vec<Duration> = pool.iter().map(|s| s.wall).collect();
            let cpu: Vec<Duration> = pool.iter().map(|s| s.on_cpu).collect();
            println!(
                "engine stall per autosave, {} (3 rounds of 4 s, {} autosaves): p50 {:.3} ms, p99 {:.3} ms (each round's p99: {} ms); the capture's own CPU time p50 {:.3} ms, p99 {:.3} ms",
                labels[which],
                pool.len(),
                pct(wall.clone(), 0.5),
                pct(wall, 0.99),
                round_p99[which].join(" / "),
                pct(cpu.clone(), 0.5),
                pct(cpu, 0.99),
            );
        }
        println!(
            "  (the learner's 256 MB saves meanwhile: {} sent, median {:.0} ms each; {} lent, median {:.0} ms each with the writing)",
            save_times.len(),
            pct(save_times, 0.5),
            lent_times.len(),
            pct(lent_times, 0.5)
        );
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
