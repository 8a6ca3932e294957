//! Fills a data directory with a long history, for the browser tests and
//! the browser benchmark: `cargo run -p engram-core --example seed -- DIR
//! --backups N --days D [--history-days H]`.
//!
//! - N backups spread evenly over the last D days (ending ten minutes ago):
//!   the initial one first, then periodic ones with a manual (labelled)
//!   backup every 97th, a milestone every 500th and a pin every 1,000th.
//!   Real engine states (the engines run between captures, so states
//!   differ and deduplicate as they do in use).
//! - Settings that keep every periodic backup, so retention does not thin
//!   the seeded timeline when `engram serve` starts on it.
//! - H days of metric history at one save per 10 minutes, compacted like
//!   the runtime compacts it.
//! - The live state, so a launch resumes from the newest backup.
//!
//! Refuses a directory that already holds a database.

use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
use engram_core::wire::Settings;
use engram_core::wire::{Breakthrough, RetentionPolicy};
use engram_core::{BackupKind, NewBackup, Store};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Long by design: the seeded data directory, step by step.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(
        args.first()
            .ok_or("usage: seed DIR --backups N --days D [--history-days H]")?,
    );
    let backups = arg(&args, "--backups", 1000.0) as i64;
    let days = arg(&args, "--days", 7.0);
    let history_days = arg(&args, "--history-days", 0.0);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("engram.db");
    if db.exists() {
        return Err(format!("{} already exists", db.display()).into());
    }
    let started = std::time::Instant::now();
    let mut store = Store::open(&db)?;
    let settings = Settings {
        retention: RetentionPolicy {
            keep_last_periodic: 1_000_000,
            keep_last_pre_restore: 1_000_000,
            ..RetentionPolicy::default()
        },
        ..Settings::default()
    };
    store.save_settings_json(&serde_json::to_string(&settings)?, engram_core::now_ms())?;
    let end = engram_core::now_ms() - 10 * 60_000;
    let start = end - (days * DAY_MS as f64) as i64;
    let mut engines = EngineSet::new(EnginesConfig::default(), 7);
    let mut clock = FakeClock { now: 0, step: 1000 };
    let mut states = engines.capture()?;
    let step = (end - start) / backups.max(1);
    for i in 0..backups {
        if i % 50 == 0 && i > 0 {
            engines.tick(&mut clock);
            states = engines.capture()?;
        }
        let t = start + i * step;
        let (kind, label, breakthrough) = if i == 0 {
            (BackupKind::Initial, Some("first launch".to_string()), None)
        } else if i % 500 == 0 {
            let bt = Breakthrough {
                engine: "zap".into(),
                rule: format!("seeded milestone {i}"),
                metric: "heldout_vs_optimal".into(),
                value: 0.9,
                step: i as u64,
            };
            (BackupKind::Breakthrough, None, Some(bt))
        } else if i % 97 == 0 {
            (BackupKind::Manual, Some(format!("manual {i}")), None)
        } else {
            (BackupKind::Periodic, None, None)
        };
        let id = store.create_backup_as_live(
            &NewBackup {
                kind,
                created_at_ms: t,
                label,
                breakthrough,
                states: &states,
            },
            t,
            &[],
        )?;
        if i % 1000 == 999 {
            store.set_pinned(id, true)?;
        }
    }
    if history_days > 0.0 {
        let branch = store.current_branch(end - (history_days * DAY_MS as f64) as i64)?;
        let from = end - (history_days * DAY_MS as f64) as i64;
        let every = 10 * 60_000;
        let mut batch: Vec<(i64, BTreeMap<String, engram_core::Metrics>)> = Vec::new();
        let mut t = from;
        let mut n = 0u64;
        while t <= end {
            let x = (t - from) as f64 / (end - from).max(1) as f64;
            let mut m = BTreeMap::new();
            for s in &states {
                let mut metrics = s.metrics.clone();
                for (k, v) in metrics.iter_mut() {
                    // A learning curve with noise: rises, wobbles, never NaN.
                    *v = v.abs().max(1.0) * (x + 0.05 * ((n as f64) * 0.7 + k.len() as f64).sin());
                }
                m.insert(s.engine.clone(), metrics);
            }
            batch.push((t, m));
            t += every;
            n += 1;
            if batch.len() == 5000 {
                let refs: Vec<(i64, &BTreeMap<_, _>)> =
                    batch.iter().map(|(t, m)| (*t, m)).collect();
                store.record_metrics_batch(&refs, branch)?;
                batch.clear();
            }
        }
        let refs: Vec<(i64, &BTreeMap<_, _>)> = batch.iter().map(|(t, m)| (*t, m)).collect();
        store.record_metrics_batch(&refs, branch)?;
        store.compact_history(engram_core::now_ms())?;
        eprintln!("history: {n} saves over {history_days} days");
    }
    eprintln!(
        "seeded {backups} backups over {days} days in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
