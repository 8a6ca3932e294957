//! Choosing what to restore: comparing two 256 MB `engram.pack` learner
//! states (checked against their checksums, then streamed array by array)
//! and two backups' engine sets; each engine's drill; and the engines'
//! stall per autosave while drills run beside them, against none, in turns.
//! `cargo bench -p engram-core --bench choose`; figures in BENCHMARKS.md.
//! (A metric across 100,000 backups is in the `reads` bench.)

use engram_core::api::{Api, Offline};
use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::store::Store;
use engram_core::wire::{CompareRequest, CreateBackup, DrillRequest};
use std::time::{Duration, Instant};

mod common;
use common::{median, pct};

/// The process's peak resident set so far, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Writes an `engram.pack` state of one f64 array of `n` elements (value
/// `i / 7`, with `changed` elements moved by `delta`) and a small one,
/// streamed into a stored object; its checksum.
fn write_pack(
    store: &Store,
    n: usize,
    changed: &[usize],
    delta: f64,
) -> engram_core::codec::Checksum {
    let nbytes = n * 8;
    let header = format!(
        r#"{{"values":{{"epoch":{}}},"arrays":{{"weights":{{"dtype":"<f8","shape":[{n}],"offset":0,"nbytes":{nbytes}}},"bias":{{"dtype":"<f4","shape":[16],"offset":{nbytes},"nbytes":64}}}}}}"#,
        changed.len()
    );
    let mut w = store.objects().writer(u64::MAX).expect("writer");
    let mut head = b"ENGRAMPK".to_vec();
    head.extend(1u16.to_le_bytes());
    head.extend((header.len() as u32).to_le_bytes());
    head.extend(header.as_bytes());
    w.write(&head).expect("write");
    let chunk = 1 << 17;
    let mut buf = Vec::with_capacity(chunk * 8);
    for start in (0..n).step_by(chunk) {
        buf.clear();
        for i in start..(start + chunk).min(n) {
            let mut v = i as f64 / 7.0;
            if changed.binary_search(&i).is_ok() {
                v += delta;
            }
            buf.extend(v.to_le_bytes());
        }
        w.write(&buf).expect("write");
    }
    w.write(&[0u8; 64]).expect("write");
    w.finish().expect("finish").checksum
}

fn compare_packs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("engram.db")).expect("store");
    let n = 256 * 1024 * 1024 / 8; // 256 MB of f64
    let changed: Vec<usize> = (0..1000).map(|i| i * 33_331).collect();
    let a = write_pack(&store, n, &[], 0.0);
    let b = write_pack(&store, n, &changed, 0.5);
    let rss_before = peak_rss_mb();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        let (x, y) = (
            store.learner_bytes_at(&a).expect("a"),
            store.learner_bytes_at(&b).expect("b"),
        );
        let d = engram_core::diff::compare_learner("engram.pack/1", &x, &y).expect("compare");
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        last = Some(d);
    }
    let d = last.expect("ran");
    let w = d
        .arrays
        .iter()
        .find(|a| a.name == "weights")
        .expect("weights");
    assert_eq!((w.changed, w.max_abs), (Some(1000), Some(0.5)));
    println!(
        "compare two 256 MB engram.pack states (both checked by blake3, then streamed): median {:.0} ms, min {:.0}, max {:.0} (5 runs); peak RSS {:.0} MB before, {:.0} MB after",
        median(times.clone()),
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0.0, f64::max),
        rss_before,
        peak_rss_mb()
    );
}

fn drills_and_engine_compare() {
    // Engines after 2,000 ticks of the default configuration.
    let mut set = EngineSet::new(EnginesConfig::default(), 5);
    let mut clock = FakeClock { now: 0, step: 1000 };
    for _ in 0..2000 {
        set.tick(&mut clock);
    }
    let states = set.capture().expect("capture");
    let by = |name: &str| {
        states
            .iter()
            .find(|s| s.engine == name)
            .expect("state")
            .state
            .clone()
    };
    let (q, z) = (by("mdp_es"), by("zap"));
    let (mut tq, mut tz) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t0 = Instant::now();
        engram_core::drill::drill_mdp_es(&q).expect("mdp_es");
        tq.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t0 = Instant::now();
        engram_core::drill::drill_zap(&z, Some(&q)).expect("zap");
        tz.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "drill per engine (default settings, after 2,000 ticks; 7 runs): mdp_es median {:.1} ms (max {:.1}); zap median {:.1} ms (max {:.1})",
        median(tq.clone()),
        pct(tq, 1.0),
        median(tz.clone()),
        pct(tz, 1.0)
    );
}

/// Two backups of running engines compared (metrics and inside), offline.
fn compare_engine_sets(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = rt.block_on(async {
        let api = Api::new(
            Runtime::start(RuntimeOptions::new(dir.path()))
                .await
                .expect("start"),
        );
        let a = api
            .create_backup(CreateBackup::default())
            .await
            .expect("a")
            .id;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let b = api
            .create_backup(CreateBackup::default())
            .await
            .expect("b")
            .id;
        api.runtime().expect("rt").stop().await.expect("stop");
        (a, b)
    });
    let off = Offline::new(dir.path());
    let mut times = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        let c = off
            .compare_backups(
                a,
                CompareRequest {
                    with: b,
                    live: false,
                },
            )
            .expect("compare");
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(c.engines.iter().any(|e| e.inside.is_some()));
    }
    println!(
        "compare two backups' engine sets (metrics and inside, offline; 7 runs): median {:.1} ms, max {:.1} ms",
        median(times.clone()),
        pct(times, 1.0)
    );
}

/// The engines' stall per autosave (every 20 ms) with drills running back
/// to back beside them, against none, in turns (3 rounds of 4 s each).
fn stall_during_drills(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let (mut quiet, mut drilling, mut drills) = (Vec::new(), Vec::new(), 0u32);
        for _round in 0..3 {
            for drill in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut o = RuntimeOptions::new(dir.path());
                o.autosave = Duration::from_millis(20);
                let api = Api::new(Runtime::start(o).await.expect("start"));
                let id = api.create_backup(CreateBackup::default()).await.expect("backup").id;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let r = api.runtime().expect("rt");
                let before = r.capture_stalls().len();
                let end = Instant::now() + Duration::from_secs(4);
                if drill {
                    while Instant::now() < end {
                        api.drill_backup(id, DrillRequest::default()).await.expect("drill");
                        drills += 1;
                    }
                } else {
                    tokio::time::sleep(Duration::from_secs(4)).await;
                }
                let during: Vec<f64> = r.capture_stalls()[before..]
                    .iter()
                    .map(|s| s.wall.as_secs_f64() * 1000.0)
                    .collect();
                if drill {
                    drilling.extend(during);
                } else {
                    quiet.extend(during);
                }
                r.stop().await.expect("stop");
            }
        }
        println!(
            "engine stall per autosave (every 20 ms), 3 rounds of 4 s in turns: no drill p50 {:.3} ms, p99 {:.3} ms ({} autosaves); drills back to back ({} drills) p50 {:.3} ms, p99 {:.3} ms ({} autosaves)",
            pct(quiet.clone(), 0.5),
            pct(quiet.clone(), 0.99),
            quiet.len(),
            drills,
            pct(drilling.clone(), 0.5),
            pct(drilling.clone(), 0.99),
            drilling.len()
        );
    });
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    compare_packs();
    drills_and_engine_compare();
    compare_engine_sets(&rt);
    stall_during_drills(&rt);
}
