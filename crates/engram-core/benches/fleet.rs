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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
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
    std::thread::spawn(move || drop(client)).join().ok();
}
