//! Soak: the store driven the way the runtime drives it, over simulated
//! weeks — autosaves with metric history, hourly periodic backups, retention
//! and history compaction with the default settings — with real engine
//! states from engines that keep learning. Backup counts, database size and
//! the process's memory must stay bounded. Time is simulated (timestamps
//! are given to the store), the writes are real (a real SQLite file, every
//! commit fsynced).
//!
//! CI runs a week; `cargo test -p engram-core --test soak -- --ignored`
//! runs a month (figures in BENCHMARKS.md).

use engram_core::engines::{EngineSet, EnginesConfig, FakeClock};
use engram_core::wire::RetentionPolicy;
use engram_core::{BackupKind, NewBackup, Store};

const HOUR_MS: i64 = 3_600_000;
/// Autosaves per simulated hour (the runtime's default is one per 5 s, 720
/// an hour; fewer keep the run short, the pattern is the same).
const SAVES_PER_HOUR: i64 = 12;

struct Figures {
    hours: i64,
    max_backups: u64,
    final_backups: u64,
    /// Database + WAL bytes: the largest seen in the first and last thirds.
    db_early: u64,
    db_late: u64,
    rss_start: u64,
    rss_end: u64,
    history_points: u64,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    ["engram.db", "engram.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn soak(days: i64) -> Figures {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path().join("engram.db")).expect("open");
    let mut engines = EngineSet::new(EnginesConfig::default(), 11);
    let mut clock = FakeClock { now: 0, step: 1000 };
    let policy = RetentionPolicy::default();
    let hours = days * 24;
    // The run ends a few minutes before the real now, so no backup is
    // young enough for retention's grace minute.
    let start = engram_core::now_ms() - hours * HOUR_MS - 10 * 60_000;
    let states = engines.capture().expect("capture");
    store
        .create_backup(&NewBackup {
            kind: BackupKind::Initial,
            created_at_ms: start,
            label: None,
            breakthrough: None,
            states: &states,
        })
        .expect("initial");
    let branch = store.current_branch(start).expect("branch");
    let rss_start = rss_bytes();
    let mut f = Figures {
        hours,
        max_backups: 0,
        final_backups: 0,
        db_early: 0,
        db_late: 0,
        rss_start,
        rss_end: 0,
        history_points: 0,
    };
    for hour in 0..hours {
        for k in 0..SAVES_PER_HOUR {
            engines.tick(&mut clock);
            let t = start + hour * HOUR_MS + k * HOUR_MS / SAVES_PER_HOUR;
            let states = engines.capture().expect("capture");
            store
                .save_live_with_history(&states, t, branch)
                .expect("autosave");
        }
        let t = start + (hour + 1) * HOUR_MS;
        let states = engines.capture().expect("capture");
        store
            .create_backup_as_live(
                &NewBackup {
                    kind: BackupKind::Periodic,
                    created_at_ms: t,
                    label: None,
                    breakthrough: None,
                    states: &states,
                },
                t,
                &[],
            )
            .expect("periodic backup");
        store.apply_retention(&policy).expect("retention");
        store.compact_history(t).expect("compaction");
        let n = store.count_backups().expect("count");
        f.max_backups = f.max_backups.max(n);
        let size = disk_bytes(dir.path());
        if hour < hours / 3 {
            f.db_early = f.db_early.max(size);
        } else if hour >= hours * 2 / 3 {
            f.db_late = f.db_late.max(size);
        }
    }
    f.final_backups = store.count_backups().expect("count");
    f.rss_end = rss_bytes();
    f.history_points = store
        .metric_series("zap", "plans_generated", 0, i64::MAX, 10_000)
        .expect("series")
        .stored;
    assert!(store.verify_all(true).expect("verify").problems.is_empty());
    f
}

fn check(f: &Figures) {
    let days = f.hours / 24;
    eprintln!(
        "soak {days} days ({} h): backups max {} final {}; db+wal early {:.1} MB late {:.1} MB; rss {:.1} -> {:.1} MB; zap history points {}",
        f.hours,
        f.max_backups,
        f.final_backups,
        f.db_early as f64 / 1e6,
        f.db_late as f64 / 1e6,
        f.rss_start as f64 / 1e6,
        f.rss_end as f64 / 1e6,
        f.history_points
    );
    let p = RetentionPolicy::default();
    // Initial + the newest periodic ones + one per day + one per week
    // (+ the one just taken before retention ran).
    let bound = 1 + u64::from(p.keep_last_periodic + p.keep_daily + p.keep_weekly) + 1;
    assert!(
        f.max_backups <= bound,
        "{} backups > {bound}",
        f.max_backups
    );
    assert!(f.final_backups <= bound);
    // Bounded, not growing with the hours: the last third of the run is
    // not much larger on disk than the first.
    assert!(
        f.db_late <= f.db_early * 2 + (4 << 20),
        "database grows with time: {} -> {}",
        f.db_early,
        f.db_late
    );
    assert!(
        f.rss_end <= f.rss_start + (64 << 20),
        "memory grows: {} -> {}",
        f.rss_start,
        f.rss_end
    );
    // An hour at full resolution, then buckets: far fewer points than saves.
    assert!(
        (f.history_points as i64) < f.hours * SAVES_PER_HOUR / 2,
        "history points {}",
        f.history_points
    );
}

#[test]
fn a_simulated_week_of_autosaves_backups_and_retention_stays_bounded() {
    check(&soak(7));
}

#[test]
#[ignore = "a simulated month, ~minutes: run with --ignored (figures in BENCHMARKS.md)"]
fn a_simulated_month_of_autosaves_backups_and_retention_stays_bounded() {
    check(&soak(30));
}
