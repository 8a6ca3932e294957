//! Replica benchmark (`scripts/bench`, or `cargo bench -p engram-core --bench
//! replica`): Engram's restic repository beside Debian's stock `restic`
//! doing the same work on the same bytes, in one run.
//!
//! - Upload of a backup holding a 256 MiB learner state (pseudo-random
//!   bytes: neither side can compress or deduplicate them) beside `restic
//!   backup` of the same bytes from a file; MiB/s.
//! - What a second backup adds when the learner's state did not change.
//! - `verify --read-data` beside `restic check --read-data` on Engram's
//!   repository; seconds per GiB.
//! - Recovery of the timeline into a new data directory beside `restic
//!   restore` of restic's own snapshot; seconds per GiB.
//! - Replication lag: from a backup's commit until its copy is recorded
//!   (20 backups, a local replica, the worker woken by the commit); p50/p95.
//! - The engines' stall per autosave (every 20 ms) for 4 s quiet, then 4 s
//!   while the worker uploads 256 MiB backups; p50/p99.
//!
//! Repositories are made before the clock starts (restic's `init` and
//! Engram's alike); restic's times include its process start and its key's
//! scrypt, Engram's include opening the repository.

use engram_core::Store;
use engram_core::api::{self, Api};
use engram_core::replica::{self, Place};
use engram_core::runtime::{Runtime, RuntimeOptions};
use engram_core::wire::{AddReplica, ReplicaKind, VerifyReplica};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::percentile_ms;
#[path = "../tests/support/learner.rs"]
mod support_learner;
use support_learner::save_learner;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
const BIG: usize = 256 << 20;

fn options(dir: &Path) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.pace = Duration::from_millis(1);
    o.autosave = Duration::from_millis(20);
    o
}

/// `len` bytes no compressor or chunker finds anything in.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn restic(repo: &Path, key: &str, cache: &Path, args: &[&str]) -> Res<f64> {
    let t = Instant::now();
    let out = Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", key)
        .env("RESTIC_CACHE_DIR", cache)
        .output()?;
    let s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("restic {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(s)
}

fn main() -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(side_by_side())?;
    rt.block_on(lag_and_stall())?;
    Ok(())
}

async fn side_by_side() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let cache = tmp.path().join("cache");
    let key = "bench-key-0123456789";
    let bytes = noise(BIG, 7);
    let runtime = Runtime::start(options(&dir)).await?;
    save_learner(&runtime, "big", bytes.clone(), 1).await?;
    let b1 = runtime.backup_now(Some("big".into())).await?.id;
    let b2 = runtime.backup_now(Some("unchanged".into())).await?.id;
    runtime.shutdown().await?;

    // Engram: the backup's snapshot (manifest, engines, the 256 MiB state).
    let repo = tmp.path().join("engram-repo");
    let place = Place::parse(ReplicaKind::Local, &repo.display().to_string(), None, None)?;
    replica::open_or_init(&place, key, || Ok(()))?;
    let reader = Store::open_read_only(dir.join("engram.db"))?;
    let t = Instant::now();
    let first = replica::upload_backup(&place, key, &reader, "bench-host", b1)?;
    let engram_up = t.elapsed().as_secs_f64();
    let second = replica::upload_backup(&place, key, &reader, "bench-host", b2)?;

    // restic: the same bytes from a file.
    let file_dir = tmp.path().join("files");
    std::fs::create_dir_all(&file_dir)?;
    std::fs::write(file_dir.join("big.state"), &bytes)?;
    let restic_repo = tmp.path().join("restic-repo");
    restic(&restic_repo, key, &cache, &["init"])?;
    let restic_up = restic(
        &restic_repo,
        key,
        &cache,
        &["backup", "--quiet", file_dir.to_str().ok_or("path")?],
    )?;
    let mib = BIG as f64 / MIB;
    println!(
        "upload of a 256 MiB learner state: Engram {engram_up:.2} s ({:.0} MiB/s; {} bytes in the backup, {} added) | restic backup {restic_up:.2} s ({:.0} MiB/s) | ratio {:.2}x",
        mib / engram_up,
        first.bytes,
        first.bytes_added,
        mib / restic_up,
        engram_up / restic_up
    );
    println!(
        "a second backup, learner state unchanged: {} bytes in it, {} added to the repository (the engines' states, which tick on)",
        second.bytes, second.bytes_added
    );

    // Verify every pack: Engram beside restic, on Engram's repository.
    let repo_bytes = dir_size(&repo) as f64;
    let t = Instant::now();
    let report = replica::verify(
        &place,
        key,
        &VerifyReplica {
            read_data: true,
            subset: None,
        },
    )?;
    let engram_check = t.elapsed().as_secs_f64();
    assert!(report.ok, "{:?}", report.problems);
    let restic_check = restic(&repo, key, &cache, &["check", "--read-data", "--no-lock"])?;
    println!(
        "verify --read-data of {:.0} MiB: Engram {engram_check:.2} s ({:.1} s/GiB) | restic check --read-data {restic_check:.2} s ({:.1} s/GiB) | ratio {:.2}x",
        repo_bytes / MIB,
        engram_check / (repo_bytes / GIB),
        restic_check / (repo_bytes / GIB),
        engram_check / restic_check
    );

    // Recovery: the whole timeline into a new data directory, beside
    // restic restoring its snapshot of the same bytes.
    let new = tmp.path().join("new");
    let t = Instant::now();
    let rec = api::recover(
        api::Recover {
            place: place.clone(),
            key_file: None,
            key: Some(key.into()),
            data_dir: new.clone(),
            host: None,
            name: None,
        },
        &|_, _| {},
    )?;
    let engram_rec = t.elapsed().as_secs_f64();
    let restic_rec = restic(
        &restic_repo,
        key,
        &cache,
        &[
            "restore",
            "latest",
            "--target",
            tmp.path().join("restored").to_str().ok_or("path")?,
        ],
    )?;
    let gib = rec.bytes as f64 / GIB;
    println!(
        "recovery of {} backups ({:.0} MiB of states): Engram {engram_rec:.2} s ({:.1} s/GiB) | restic restore of 256 MiB {restic_rec:.2} s ({:.1} s/GiB) | ratio per GiB {:.2}x",
        rec.recovered.len(),
        rec.bytes as f64 / MIB,
        engram_rec / gib,
        restic_rec / (BIG as f64 / GIB),
        (engram_rec / gib) / (restic_rec / (BIG as f64 / GIB))
    );
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            n += dir_size(&path);
        } else if let Ok(m) = e.metadata() {
            n += m.len();
        }
    }
    n
}

async fn lag_and_stall() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let api = Api::new(Runtime::start(options(&dir)).await?);
    let runtime = api.runtime().map_err(|e| e.message)?;
    api.add_replica(AddReplica {
        kind: ReplicaKind::Local,
        location: tmp.path().join("repo").display().to_string(),
        name: Some("r".into()),
        ..Default::default()
    })
    .await
    .map_err(|e| e.message)?;
    let caught_up = || async {
        loop {
            let s = api.replica("r".into()).await.map_err(|e| e.message)?;
            if s.behind == 0 {
                return Ok::<_, String>(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    caught_up().await?;
    let mut lags = Vec::new();
    for i in 0..20 {
        runtime.backup_now(Some(format!("lag {i}"))).await?;
        let t = Instant::now();
        caught_up().await?;
        lags.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "replication lag, backup commit to copy recorded (20 backups, ~1 MB of engine states each, local replica): p50 {:.0} ms, p95 {:.0} ms",
        percentile_ms(&lags, 0.5),
        percentile_ms(&lags, 0.95)
    );

    // The engines' stall per autosave: quiet, then while 256 MiB backups go up.
    let quiet_from = runtime.capture_stalls().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let quiet: Vec<Duration> = runtime.capture_stalls()[quiet_from..]
        .iter()
        .map(|s| s.wall)
        .collect();
    save_learner(runtime, "big", noise(BIG, 11), 2).await?;
    runtime.backup_now(Some("big 1".into())).await?;
    save_learner(runtime, "big", noise(BIG, 13), 3).await?;
    runtime.backup_now(Some("big 2".into())).await?;
    let busy_from = runtime.capture_stalls().len();
    let behind_at_start = api.replica("r".into()).await.map_err(|e| e.message)?.behind;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let busy: Vec<Duration> = runtime.capture_stalls()[busy_from..]
        .iter()
        .map(|s| s.wall)
        .collect();
    let behind_at_end = api.replica("r".into()).await.map_err(|e| e.message)?.behind;
    println!(
        "engine stall per autosave (every 20 ms): quiet 4 s ({} autosaves) p50 {:.3} ms, p99 {:.3} ms | while uploading 256 MiB backups 4 s ({} autosaves; behind {behind_at_start} at its start, {behind_at_end} at its end) p50 {:.3} ms, p99 {:.3} ms",
        quiet.len(),
        percentile_ms(&quiet, 0.5),
        percentile_ms(&quiet, 0.99),
        busy.len(),
        percentile_ms(&busy, 0.5),
        percentile_ms(&busy, 0.99)
    );
    api.runtime().map_err(|e| e.message)?.stop().await?;
    Ok(())
}
