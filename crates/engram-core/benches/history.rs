//! Metric history query benchmark (`scripts/bench`, or
//! `cargo bench -p engram-core --bench history`).
//!
//! One series downsampled to 2,000 points (LTTB, min/max per bucket) from:
//! (a) 1,000,000 points of that very metric at full resolution — the worst
//!     case, as if nothing had ever been compacted;
//! (b) 1,000,000 points stored in all: 50 metrics with 20,000 points each
//!     over a year (about what a year of compacted history holds per metric).
//! Medians of 20 queries each; no assertions — BENCHMARKS.md records them.

mod common;

use common::percentile_ms;
use engram_core::{Metrics, Store};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;

    // (a) one metric, 1,000,000 raw points.
    let mut store = Store::open(dir.path().join("a.db"))?;
    let branch = store.current_branch(0)?;
    let start = 1_700_000_000_000i64;
    let saves: Vec<(i64, BTreeMap<String, Metrics>)> = (0..1_000_000i64)
        .map(|i| {
            let m = Metrics::from([("plans".to_string(), (i as f64 * 0.001).sin())]);
            (start + i * 5_000, BTreeMap::from([("zap".to_string(), m)]))
        })
        .collect();
    let refs: Vec<(i64, &BTreeMap<String, Metrics>)> = saves.iter().map(|(a, m)| (*a, m)).collect();
    let t = Instant::now();
    store.record_metrics_batch(&refs, branch)?;
    println!(
        "(a) stored 1,000,000 points of one metric in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let s = store.metric_series("zap", "plans", i64::MIN, i64::MAX, 2000)?;
        times.push(t.elapsed());
        n = s.points.len();
        assert_eq!(s.stored, 1_000_000);
    }
    println!(
        "(a) 2,000 points from 1,000,000 of that metric: median {:.1} ms, p90 {:.1} ms ({n} points)",
        percentile_ms(&times, 0.5),
        percentile_ms(&times, 0.9)
    );
    drop(store);

    // (b) 1,000,000 points in all: 50 metrics × 20,000 points over a year.
    let mut store = Store::open(dir.path().join("b.db"))?;
    let branch = store.current_branch(0)?;
    let every = 365 * 86_400_000i64 / 20_000;
    let saves: Vec<(i64, BTreeMap<String, Metrics>)> = (0..20_000i64)
        .map(|i| {
            let at = start + i * every;
            let m: Metrics = (0..50)
                .map(|k| (format!("m{k}"), (i as f64 * 1e-3 + k as f64).sin()))
                .collect();
            (at, BTreeMap::from([("zap".to_string(), m)]))
        })
        .collect();
    let refs: Vec<(i64, &BTreeMap<String, Metrics>)> = saves.iter().map(|(a, m)| (*a, m)).collect();
    store.record_metrics_batch(&refs, branch)?;
    println!(
        "(b) stored {} points: 50 metrics x 20,000 over a year",
        store.history_rows()?.iter().sum::<u64>()
    );
    let mut times = Vec::new();
    let mut stored = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let s = store.metric_series("zap", "m7", i64::MIN, i64::MAX, 2000)?;
        times.push(t.elapsed());
        stored = s.stored;
    }
    println!(
        "(b) 2,000 points of one metric over the year ({stored} of its own): median {:.2} ms, p90 {:.2} ms",
        percentile_ms(&times, 0.5),
        percentile_ms(&times, 0.9)
    );
    Ok(())
}
