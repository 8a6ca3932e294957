//! The fleet sync against a real PostgreSQL (a throwaway, durable cluster
//! on 127.0.0.1): rows per second sent as one set-based upsert per batch
//! against one statement (and one commit) per row, side by side; and the
//! sync lag from a backup's commit here to its row in the catalog.
//! `cargo bench -p engram-core --bench fleet`; figures in BENCHMARKS.md.

use engram_core::api::Api;
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::store::FleetBackupRow;
use engram_core::wire::{CreateBackup, FleetJoin};
use std::time::{Duration, Instant};

mod common;
use common::{median, pct};

#[path = "../tests/support/pg.rs"]
mod pg;

fn rows(host_offset: i64, n: usize) -> Vec<FleetBackupRow> {
    (0..n as i64)
        .map(|i| FleetBackupRow {
            id: host_offset + i,
            kind: "periodic".into(),
            created_at_ms: 1_700_000_000_000 + i * 1000,
            label: None,
            pinned: false,
            milestone: None,
            origin: None,
            states: format!(
                r#"[{{"name":"zap","kind":"engine","checksum":"{:064x}","size":93659,"metrics":{{"score":0.5}}}}]"#,
                i
            ),
            names: vec!["zap".into()],
            bytes: 93_659,
            replica: "[]".into(),
        })
        .collect()
}

fn main() {
    let cluster = pg::Cluster::start(true);
    let url = cluster.url();
    let mut client = engram_core::fleet::connect(&url).expect("connect");
    engram_core::fleet::ensure_schema(&mut client, "bench").expect("schema");
    engram_core::fleet::claim(&mut client, "bench", "bench-host", "bench", "fp", false)
        .expect("claim");
    let n = 5_000;
    let (mut batched, mut single) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let base = round as i64 * 1_000_000;
        let set = rows(base, n);
        let t = Instant::now();
        for chunk in set.chunks(engram_core::fleet::BATCH) {
            let mut tx = client.transaction().expect("tx");
            engram_core::fleet::upsert_backups(&mut tx, "bench", "bench-host", chunk)
                .expect("upsert");
            tx.commit().expect("commit");
        }
        batched.push(n as f64 / t.elapsed().as_secs_f64());
        let set = rows(base + 500_000, n);
        let t = Instant::now();
        for r in &set {
            let mut tx = client.transaction().expect("tx");
            engram_core::fleet::insert_backup_alone(&mut tx, "bench", "bench-host", r)
                .expect("insert");
            tx.commit().expect("commit");
        }
        single.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let (b, s) = (median(batched), median(single));
    println!(
        "rows/s, {n} backup rows, median of 3: batched ({} per upsert) {b:.0}, one statement and commit per row {s:.0}, ratio {:.1}x",
        engram_core::fleet::BATCH,
        b / s
    );

    // Sync lag: a backup committed here, its row in the catalog.
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = RuntimeOptions::new(dir.path());
        o.pace = Duration::from_millis(10);
        let api = Api::new(Runtime::start(o).await.expect("start"));
        let s = api
            .fleet_join(FleetJoin {
                url: url.clone(),
                name: Some("lag".into()),
                ..Default::default()
            })
            .await
            .expect("join");
        let host = s.host_id;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut lags = Vec::new();
        for _ in 0..40 {
            let b = api
                .create_backup(CreateBackup { label: None })
                .await
                .expect("backup");
            let t = Instant::now();
            loop {
                // The blocking client may not run inside the async task.
                let found = tokio::task::block_in_place(|| {
                    client
                        .query_opt(
                            "SELECT 1 FROM backups WHERE host_id = $1 AND local_id = $2",
                            &[&host, &b.id],
                        )
                        .expect("poll")
                });
                if found.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            lags.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "sync lag after a backup commit, 40 backups: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            pct(lags.clone(), 0.5),
            pct(lags.clone(), 0.95),
            pct(lags, 1.0)
        );
        // The host's reads' connection is made by a read.
        api.fleet_hosts().await.expect("hosts");
        let conns = cluster.psql(
            "fleet",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'engram'",
        );
        println!(
            "PostgreSQL connections named engram while the host syncs and has read: {conns} (the bench's own poller + the host's worker + the host's reads)"
        );
        api.runtime().expect("rt").stop().await.expect("stop");
    });
    stalls(&url);
    scale(&cluster, &url);
    std::thread::spawn(move || drop(client)).join().ok();
}

/// The engines' stall per autosave with and without a fleet to sync to,
/// in turns (3 rounds of 4 s each, autosave every 20 ms, a periodic backup
/// every 200 ms so the sync always has work): the push runs on its own
/// thread and connection and must not show in the stall.
fn stalls(url: &str) {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let (mut quiet, mut syncing) = (Vec::new(), Vec::new());
        for round in 0..3 {
            for joined in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut o = RuntimeOptions::new(dir.path());
                o.autosave = Duration::from_millis(20);
                o.backup_every = Duration::from_millis(200);
                let api = Api::new(Runtime::start(o).await.expect("start"));
                if joined {
                    api.fleet_join(FleetJoin {
                        url: url.to_string(),
                        name: Some(format!("stall-{round}")),
                        ..Default::default()
                    })
                    .await
                    .expect("join");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let rt = api.runtime().expect("rt");
                let before = rt.capture_stalls().len();
                tokio::time::sleep(Duration::from_secs(4)).await;
                let during: Vec<f64> = rt.capture_stalls()[before..]
                    .iter()
                    .map(|s| s.wall.as_secs_f64() * 1000.0)
                    .collect();
                if joined {
                    let s = api.fleet_status().await.expect("status");
                    assert!(s.pushed_rows > 0, "the sync ran: {s:?}");
                    syncing.extend(during);
                } else {
                    quiet.extend(during);
                }
                rt.stop().await.expect("stop");
            }
        }
        println!(
            "engine stall per autosave (every 20 ms, backup every 200 ms), 3 rounds of 4 s in turns: not in a fleet p50 {:.3} ms, p99 {:.3} ms ({} autosaves); syncing to the fleet p50 {:.3} ms, p99 {:.3} ms ({} autosaves)",
            pct(quiet.clone(), 0.5),
            pct(quiet.clone(), 0.99),
            quiet.len(),
            pct(syncing.clone(), 0.5),
            pct(syncing.clone(), 0.99),
            syncing.len()
        );
    });
}

/// The catalog at 50 hosts × 100,000 backups (5 M rows, generated: a
/// year of backups every ~5 minutes per host, 1 % milestones, 0.1 %
/// pinned): p50/p95 of the reads the UI and CLI make, and their plans.
fn scale(cluster: &pg::Cluster, url: &str) {
    if std::env::var_os("FLEET_SCALE_SKIP").is_some() {
        return;
    }
    let t = Instant::now();
    cluster.psql(
        "fleet",
        "INSERT INTO hosts (host_id, name, fingerprint, joined_at, engram_version)
         SELECT 'host-' || lpad(i::text, 2, '0'), 'box ' || i, 'fp', 0, 'bench'
         FROM generate_series(1, 50) i",
    );
    for h in 1..=50 {
        cluster.psql(
            "fleet",
            &format!(
                "INSERT INTO backups (host_id, local_id, kind, created_at, label, pinned, milestone,
                                      states, names, bytes, replica)
                 SELECT 'host-{h:02}', j,
                        CASE WHEN j = 1 THEN 'initial' WHEN j % 100 = 0 THEN 'breakthrough'
                             WHEN j % 37 = 0 THEN 'manual' ELSE 'periodic' END,
                        1700000000000 + j::int8 * 315360 + {h} * 1000,
                        NULL, j % 1000 = 0, NULL,
                        '[{{\"name\":\"zap\",\"kind\":\"engine\",\"checksum\":\"00\",\"size\":93659,\"metrics\":{{}}}}]',
                        CASE WHEN j % 3 = 0 THEN ARRAY['zap', 'ppo-{h}'] ELSE ARRAY['zap'] END,
                        93659, '[]'
                 FROM generate_series(1, 100000) j"
            ),
        );
    }
    cluster.psql("fleet", "VACUUM ANALYZE");
    let rows = cluster.psql("fleet", "SELECT count(*) FROM backups");
    println!(
        "scale: {rows} backup rows of 50 hosts generated and analysed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let off = engram_core::api::Offline::new(dir.path());
    off.fleet_join(FleetJoin {
        url: url.to_string(),
        name: Some("viewer".into()),
        ..Default::default()
    })
    .expect("join");
    let reader = engram_core::fleet::Reader::default();
    let year = 100_000i64 * 315_360;
    let t0 = 1_700_000_000_000i64;
    let first_page = engram_core::wire::FleetBackupsQuery::default();
    let timeline = |from: Option<i64>, to: Option<i64>, host: Option<&str>| {
        engram_core::wire::FleetTimelineQuery {
            from_ms: from,
            to_ms: to,
            host: host.map(str::to_string),
            ..Default::default()
        }
    };
    type Read<'a> = Box<dyn Fn(&mut postgres::Client) -> engram_core::Result<()> + 'a>;
    let reads: Vec<(&str, Read)> = vec![
        (
            "all hosts, first page of 50",
            Box::new(|c: &mut postgres::Client| {
                engram_core::fleet::read::backups(c, "bench", &first_page).map(drop)
            }),
        ),
        (
            "all hosts, page 200 (keyset)",
            Box::new(|c: &mut postgres::Client| {
                let q = engram_core::wire::FleetBackupsQuery {
                    after_created_at_ms: Some(t0 + year / 2),
                    after_host: Some("host-25".into()),
                    after_id: Some(50_000),
                    ..Default::default()
                };
                engram_core::fleet::read::backups(c, "bench", &q).map(drop)
            }),
        ),
        (
            "one host's first page",
            Box::new(|c: &mut postgres::Client| {
                let q = engram_core::wire::FleetBackupsQuery {
                    host: Some("box 7".into()),
                    ..Default::default()
                };
                engram_core::fleet::read::backups(c, "bench", &q).map(drop)
            }),
        ),
        (
            "one learner's first page (every host)",
            Box::new(|c: &mut postgres::Client| {
                let q = engram_core::wire::FleetBackupsQuery {
                    learner: Some("ppo-7".into()),
                    ..Default::default()
                };
                engram_core::fleet::read::backups(c, "bench", &q).map(drop)
            }),
        ),
        (
            "timeline, whole year, 200 buckets",
            Box::new(|c: &mut postgres::Client| {
                engram_core::fleet::read::timeline(c, "bench", &timeline(None, None, None))
                    .map(drop)
            }),
        ),
        (
            "timeline, zoomed to one week",
            Box::new(|c: &mut postgres::Client| {
                let from = t0 + year / 3;
                engram_core::fleet::read::timeline(
                    c,
                    "bench",
                    &timeline(Some(from), Some(from + 7 * 86_400_000), None),
                )
                .map(drop)
            }),
        ),
        (
            "timeline, zoomed to one hour",
            Box::new(|c: &mut postgres::Client| {
                let from = t0 + year / 3 + 1_234_567;
                engram_core::fleet::read::timeline(
                    c,
                    "bench",
                    &timeline(Some(from), Some(from + 3_600_000), None),
                )
                .map(drop)
            }),
        ),
        (
            "timeline of one host, whole year",
            Box::new(|c: &mut postgres::Client| {
                engram_core::fleet::read::timeline(c, "bench", &timeline(None, None, Some("box 7")))
                    .map(drop)
            }),
        ),
        (
            "hosts list",
            Box::new(|c: &mut postgres::Client| {
                engram_core::fleet::read::hosts(c, "bench", "none").map(drop)
            }),
        ),
    ];
    for (name, read) in &reads {
        let mut ms = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            reader.with(url, |c, _| read(c)).expect(name);
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "scale: {name}: p50 {:.1} ms, p95 {:.1} ms",
            pct(ms.clone(), 0.5),
            pct(ms, 0.95)
        );
    }
    // The plans, for BENCHMARKS.md.
    let plans = [
        "SELECT b.local_id FROM backups b JOIN hosts h ON h.host_id = b.host_id ORDER BY b.created_at DESC, b.host_id DESC, b.local_id DESC LIMIT 51",
        "SELECT kind, hour, n FROM backup_hours WHERE hour >= 472222 AND hour < 481000 AND n > 0",
        "SELECT kind, (created_at - 1710512000000) / 3025 AS b, count(*) FROM backups WHERE created_at >= 1710512000000 AND created_at <= 1710515600000 GROUP BY 1, 2",
        "SELECT local_id FROM backups WHERE (kind IN ('initial', 'breakthrough') OR pinned) AND created_at >= 1700000000000 AND created_at <= 1731536000000 ORDER BY created_at DESC LIMIT 1000",
        "SELECT local_id FROM backups WHERE names @> ARRAY['ppo-7'] ORDER BY created_at DESC, host_id DESC, local_id DESC LIMIT 51",
    ];
    for p in plans {
        println!(
            "plan: {p}\n{}",
            cluster.psql(
                "fleet",
                &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {p}")
            )
        );
    }
}
