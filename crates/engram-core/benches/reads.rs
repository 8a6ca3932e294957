//! Reads beside the writer (`scripts/bench`, or `cargo bench -p engram-core
//! --bench reads`): the dashboard's first requests — a page of the backup
//! list, the timeline summary, one metric's series — asked while the
//! engines autosave every second and a backup is cut every 5 s, on a data
//! directory of 100,000 backups. The same three queries through the read
//! connections (what the API does) and through the writer's connection
//! (what it did before), alternated round by round in one run: p50/p99 of
//! each request, and of the three asked together as the page asks them.

use engram_core::api::Api;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{ListBackups, TimelineQuery};
use engram_core::{BackupQuery, Store};
use std::time::{Duration, Instant};

mod common;
use common::percentile_ms;

const BACKUPS: usize = 100_000;
const ROUNDS: usize = 200;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run());
}

async fn run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    seed(tmp.path());
    let mut o = RuntimeOptions::new(tmp.path());
    o.autosave = Duration::from_secs(1);
    o.backup_every = Duration::from_secs(5);
    o.options_win = true;
    // Retention keeps every periodic backup (the seeded week stays).
    o.retention.keep_last_periodic = 1_000_000;
    let api = Api::new(Runtime::start(o).await.expect("start"));
    let rt = api.runtime().expect("rt");
    println!(
        "seeded {BACKUPS} backups in {:.1} s; measuring {ROUNDS} rounds while the engines autosave every 1 s and cut a backup every 5 s",
        t.elapsed().as_secs_f64()
    );
    // [pool, writer] × [list, timeline, series, all three together]
    let mut times: [[Vec<Duration>; 4]; 2] = Default::default();
    for round in 0..ROUNDS {
        for way in 0..2 {
            // Alternate which goes first, so neither always meets the
            // writer in the same phase.
            let writer = (way + round) % 2 == 1;
            let all = Instant::now();
            let (a, b, c) = if writer {
                tokio::join!(
                    timed(rt.with_store(|s| s.list_backups(&page()).map(|_| ()))),
                    timed(rt.with_store(|s| s.timeline(&timeline()).map(|_| ()))),
                    timed(rt.with_store(|s| series(s))),
                )
            } else {
                tokio::join!(
                    timed(async {
                        api.list_backups(ListBackups::default())
                            .await
                            .map(|_| ())
                            .map_err(err)
                    }),
                    timed(async {
                        api.timeline(TimelineQuery::default())
                            .await
                            .map(|_| ())
                            .map_err(err)
                    }),
                    timed(rt.read(series)),
                )
            };
            let total = all.elapsed();
            let slot = &mut times[usize::from(writer)];
            slot[0].push(a);
            slot[1].push(b);
            slot[2].push(c);
            slot[3].push(total);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let names = ["list page", "timeline", "series", "all three together"];
    println!(
        "| request | read connections p50 / p99 | writer's connection p50 / p99 | p99 ratio |"
    );
    println!("|---|---:|---:|---:|");
    for (i, name) in names.iter().enumerate() {
        let p = |v: &Vec<Duration>, q| percentile_ms(v, q);
        let (a50, a99) = (p(&times[0][i], 0.5), p(&times[0][i], 0.99));
        let (b50, b99) = (p(&times[1][i], 0.5), p(&times[1][i], 0.99));
        println!(
            "| {name} | {a50:.2} / {a99:.2} ms | {b50:.2} / {b99:.2} ms | {:.2}× |",
            a99 / b99
        );
    }
    // One metric across every backup of the line (issue 26: ≤ 200 ms at
    // 100,000 backups), on the read connections: read from scratch (what
    // a first call, or one after a restore, costs) and through the API,
    // which keeps the line and reads only the backups cut since, side by
    // side, 40 calls 0.5 s apart (the engines cut a backup every 5 s).
    let ask = || engram_core::wire::MetricLineRequest {
        engine: "zap".into(),
        key: "success_rate".into(),
        other_lines: false,
    };
    let (mut scratch, mut kept) = (Vec::new(), Vec::new());
    let mut first = Duration::ZERO;
    let (mut held, mut held_first) = (0, 0);
    for i in 0..40 {
        let t = Instant::now();
        let l = api
            .metric_in_backups(ask())
            .await
            .map_err(err)
            .expect("line");
        let took = t.elapsed();
        if i == 0 {
            first = took;
            held_first = l.backups.len();
        } else {
            kept.push(took);
        }
        held = l.backups.len();
        let t = Instant::now();
        let fresh = rt
            .read(|s| s.metric_along_line(None, "zap", "success_rate"))
            .await
            .expect("line from scratch");
        scratch.push(t.elapsed());
        // Read after it: the same line, with any backup cut in between.
        assert_eq!(
            fresh.get(..l.backups.len()),
            Some(&l.backups[..]),
            "the kept line is the line"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "one metric across the backups of the line ({held_first} → {held} backups hold zap): \
         from scratch p50 {:.1} ms, p95 {:.1} ms; through the API: first call {:.1} ms, \
         then (kept, new backups read) p50 {:.2} ms, p95 {:.2} ms",
        percentile_ms(&scratch, 0.5),
        percentile_ms(&scratch, 0.95),
        first.as_secs_f64() * 1e3,
        percentile_ms(&kept, 0.5),
        percentile_ms(&kept, 0.95)
    );
    api.stop().await.expect("stop");
}

/// BACKUPS backups over the last week (real engine states, changing every
/// 50), as `examples/seed.rs` lays them out.
fn seed(dir: &std::path::Path) {
    use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
    use engram_core::{BackupKind, NewBackup};
    let mut store = Store::open(dir.join("engram.db")).expect("open");
    let mut engines = EngineSet::new(EnginesConfig::default(), 7);
    let mut clock = FakeClock { now: 0, step: 1000 };
    let mut states = engines.capture().expect("capture");
    let end = engram_core::now_ms() - 60_000;
    let step = 7 * 86_400_000 / BACKUPS as i64;
    for i in 0..BACKUPS {
        if i % 50 == 0 && i > 0 {
            engines.tick(&mut clock);
            states = engines.capture().expect("capture");
        }
        let t = end - (BACKUPS - i) as i64 * step;
        let kind = if i == 0 {
            BackupKind::Initial
        } else {
            BackupKind::Periodic
        };
        store
            .create_backup_as_live(
                &NewBackup {
                    kind,
                    created_at_ms: t,
                    label: None,
                    breakthrough: None,
                    states: &states,
                },
                t,
                &[],
            )
            .expect("backup");
    }
}

fn err(e: engram_core::wire::ApiError) -> engram_core::Error {
    engram_core::Error::Internal(e.message)
}

fn page() -> BackupQuery {
    ListBackups::default().into_query()
}

fn timeline() -> TimelineQuery {
    TimelineQuery::default()
}

fn series(s: &Store) -> engram_core::Result<()> {
    s.metric_series("zap", "success_rate", i64::MIN, i64::MAX, 500)
        .map(|_| ())
}

async fn timed(f: impl std::future::Future<Output = engram_core::Result<()>>) -> Duration {
    let t = Instant::now();
    f.await.expect("read");
    t.elapsed()
}
