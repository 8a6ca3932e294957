//! Metric history: every engine's metrics at every save, as time series that
//! survive restarts, downsampled as they age so the database stays bounded,
//! and split into branches (a restore starts a new line of history; the
//! abandoned one is kept and marked).
//!
//! Tiers, and why: the last hour at full resolution (every autosave, 5 s by
//! default) is what a user watching a run zooms into; the last day in
//! one-minute buckets, the last year in one-hour buckets and ten years in
//! one-day buckets keep the shape of a long run for a few hundred thousand
//! rows per metric at most. A bucket keeps the mean, min and max of what it
//! folded, so a downsampled curve still shows its spikes.
//!
//! Imports never enter the history: only saves of the running engines do.

use super::Store;
use crate::error::{Error, Result};
use crate::limits::MAX_SERIES_POINTS;
use crate::wire::{HistoryBranch, MetricSeries, NotRunning, SeriesPoint};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// How long each tier keeps its resolution before it is folded into the
/// next: (bucket size of the *next* tier, age at which rows move on).
const TIERS: [(i64, i64); 3] = [(MINUTE, HOUR), (HOUR, DAY), (DAY, 365 * DAY)];
/// One-day buckets older than this are dropped.
const KEEP_DAYS_FOR: i64 = 10 * 365 * DAY;

/// A learner's milestones count from when it was registered: one deleted
/// and attached again under its name starts afresh (`?1`: the engine;
/// built-in engines have no row).
const SINCE_REGISTERED: &str =
    "AND b.created_at >= coalesce((SELECT registered_at FROM learners WHERE name = ?1), 0)";

impl Store {
    /// The branch new points belong to: the newest, or a first one.
    pub fn current_branch(&mut self, now_ms: i64) -> Result<i64> {
        let newest: Option<i64> = self
            .conn
            .prepare_cached("SELECT max(id) FROM history_branches")?
            .query_row([], |r| r.get(0))?;
        match newest {
            Some(id) => Ok(id),
            None => self.start_branch(now_ms, None, "start"),
        }
    }

    /// Starts a new line of history (after a restore of `from_backup`).
    pub fn start_branch(
        &mut self,
        at_ms: i64,
        from_backup: Option<i64>,
        reason: &str,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let id = insert_branch(&tx, at_ms, from_backup, reason)?;
        tx.commit()?;
        Ok(id)
    }

    /// The breakthrough backup of `engine` for `rule` taken on `branch`
    /// (since it started), if there is one — for a learner, only since it
    /// was registered (a deleted learner attached again counts afresh).
    pub fn milestone_on_branch(
        &self,
        engine: &str,
        rule: &str,
        branch: i64,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT b.id FROM backups b, history_branches h
                     WHERE h.id = ?3 AND b.kind = 'breakthrough' AND b.bt_engine = ?1
                       AND b.bt_rule = ?2 AND b.created_at >= h.started_at {SINCE_REGISTERED}
                     ORDER BY b.id LIMIT 1"
                ),
                params![engine, rule, branch],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The label of a breakthrough backup on `branch`: none the first time a
    /// rule fires; when the same milestone was recorded before (on a line of
    /// history a restore left; for a learner, since it was registered), it
    /// says so.
    pub fn repeat_milestone_label(
        &self,
        bt: &crate::wire::Breakthrough,
        branch: i64,
    ) -> Result<Option<String>> {
        let before: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM backups b
                 WHERE kind = 'breakthrough' AND bt_engine = ?1 AND bt_rule = ?2 {SINCE_REGISTERED}"
            ),
            params![bt.engine, bt.rule],
            |r| r.get(0),
        )?;
        if before == 0 {
            return Ok(None);
        }
        let from: Option<i64> = self
            .conn
            .query_row(
                "SELECT from_backup FROM history_branches WHERE id = ?1",
                [branch],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(Some(match from {
            Some(b) => {
                format!("reached again on a new line of history (after restoring backup {b})")
            }
            None => "reached again on a new line of history".to_string(),
        }))
    }

    /// Every branch, oldest first.
    pub fn history_branches(&self) -> Result<Vec<HistoryBranch>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, started_at, parent, from_backup, reason FROM history_branches ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HistoryBranch {
                id: r.get(0)?,
                started_at: r.get(1)?,
                parent: r.get(2)?,
                from_backup: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Marks that these owners of history (built-in engines at a start of
    /// Engram, a learner at an attach) begin a run at `at_ms`: their charts
    /// break between the last point before it and the first after.
    pub fn start_run<'a>(
        &mut self,
        owners: impl IntoIterator<Item = &'a str>,
        at_ms: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for o in owners {
            insert_run(&tx, o, at_ms)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// When `engine`'s runs began, between `from_ms` and `to_ms`.
    fn run_starts(&self, engine: &str, from_ms: i64, to_ms: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT started_at FROM history_runs
             WHERE engine = ?1 AND started_at > ?2 AND started_at <= ?3 ORDER BY started_at",
        )?;
        let rows = stmt.query_map(params![engine, from_ms, to_ms], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<Vec<i64>, _>>()?)
    }

    /// Records every engine's metrics at `at_ms` on `branch` (one save).
    pub fn record_metrics(
        &mut self,
        at_ms: i64,
        branch: i64,
        metrics: &BTreeMap<String, crate::wire::Metrics>,
    ) -> Result<()> {
        self.record_metrics_batch(&[(at_ms, metrics)], branch)
    }

    /// Records several saves in one transaction (imports of history, benchmarks).
    pub fn record_metrics_batch(
        &mut self,
        saves: &[(i64, &BTreeMap<String, crate::wire::Metrics>)],
        branch: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (at_ms, metrics) in saves {
            record_points(&tx, *at_ms, branch, metrics.iter())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Folds aged points into coarser buckets and drops what is older than
    /// ten years. Returns how many rows it folded or dropped.
    pub fn compact_history(&mut self, now_ms: i64) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut changed = 0u64;
        for (tier, (bucket, keep)) in TIERS.iter().enumerate() {
            // Whole buckets only, so a bucket is never folded twice over.
            let cutoff = (now_ms - keep).div_euclid(*bucket) * bucket;
            tx.execute(
                "INSERT INTO metric_points (engine, key, tier, at_ms, branch, value, min, max, n)
                 SELECT engine, key, ?1 + 1, (at_ms / ?2) * ?2, branch,
                        sum(value * n) / nullif(sum(CASE WHEN value IS NULL THEN 0 ELSE n END), 0),
                        min(min), max(max), sum(n)
                 FROM metric_points WHERE tier = ?1 AND at_ms < ?3
                 GROUP BY engine, key, at_ms / ?2, branch
                 ON CONFLICT (engine, key, at_ms, tier, branch) DO UPDATE SET
                   value = CASE
                     WHEN metric_points.value IS NULL THEN excluded.value
                     WHEN excluded.value IS NULL THEN metric_points.value
                     ELSE (metric_points.value * metric_points.n + excluded.value * excluded.n)
                          / (metric_points.n + excluded.n) END,
                   min = coalesce(min(metric_points.min, excluded.min), metric_points.min, excluded.min),
                   max = coalesce(max(metric_points.max, excluded.max), metric_points.max, excluded.max),
                   n = metric_points.n + excluded.n",
                params![tier as i64, bucket, cutoff],
            )?;
            changed += tx.execute(
                "DELETE FROM metric_points WHERE tier = ?1 AND at_ms < ?2",
                params![tier as i64, cutoff],
            )? as u64;
        }
        changed += tx.execute(
            "DELETE FROM metric_points WHERE tier = 3 AND at_ms < ?1",
            params![now_ms - KEEP_DAYS_FOR],
        )? as u64;
        tx.commit()?;
        Ok(changed)
    }

    /// Stored points per tier (0: every save … 3: days), for tests and status.
    pub fn history_rows(&self) -> Result<[u64; 4]> {
        let mut out = [0u64; 4];
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tier, count(*) FROM metric_points GROUP BY tier")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (tier, n) = row?;
            if let Some(slot) = out.get_mut(tier as usize) {
                *slot = n.max(0) as u64;
            }
        }
        Ok(out)
    }

    /// `engine`'s `key` between `from_ms` and `to_ms`, at most `max_points`
    /// points: downsampled (largest-triangle-three-buckets, per branch) with
    /// the min and max of each bucket kept.
    pub fn metric_series(
        &self,
        engine: &str,
        key: &str,
        from_ms: i64,
        to_ms: i64,
        max_points: usize,
    ) -> Result<MetricSeries> {
        if !(2..=MAX_SERIES_POINTS).contains(&max_points) {
            return Err(Error::InvalidInput(format!(
                "points must be between 2 and {MAX_SERIES_POINTS}"
            )));
        }
        if from_ms > to_ms {
            return Err(Error::InvalidInput(
                "the range ends before it starts".into(),
            ));
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_ms, value, min, max, branch FROM metric_points
             WHERE engine = ?1 AND key = ?2 AND at_ms >= ?3 AND at_ms <= ?4
             ORDER BY at_ms, branch",
        )?;
        let rows = stmt.query_map(params![engine, key, from_ms, to_ms], row_point)?;
        let all = rows.collect::<std::result::Result<Vec<_>, _>>()?;
        let not_running = not_running(&all, &self.run_starts(engine, from_ms, to_ms)?);
        let points = downsample(&all, max_points, &not_running);
        Ok(MetricSeries {
            engine: engine.into(),
            key: key.into(),
            points,
            stored: all.len() as u64,
            branches: self.history_branches()?,
            not_running,
        })
    }
}

fn row_point(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeriesPoint> {
    Ok(SeriesPoint {
        at_ms: r.get(0)?,
        value: r.get(1)?,
        min: r.get(2)?,
        max: r.get(3)?,
        branch: r.get(4)?,
    })
}

/// Writes one save's points inside `tx`.
pub(super) fn record_points<'a>(
    tx: &rusqlite::Transaction<'_>,
    at_ms: i64,
    branch: i64,
    metrics: impl Iterator<Item = (&'a String, &'a crate::wire::Metrics)>,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO metric_points (engine, key, tier, at_ms, branch, value, min, max, n)
         VALUES (?1, ?2, 0, ?3, ?4, ?5, ?5, ?5, 1)
         ON CONFLICT (engine, key, at_ms, tier, branch) DO UPDATE SET
           value = excluded.value, min = excluded.value, max = excluded.value, n = 1",
    )?;
    for (engine, m) in metrics {
        for (key, v) in m {
            let v = v.is_finite().then_some(*v);
            stmt.execute(params![engine, key, at_ms, branch, v])?;
        }
    }
    Ok(())
}

/// About `max` points: each run of one branch gets a share of `max` in
/// proportion to its length (two at least, so a range with very many short
/// branches can return a little more) and is reduced by LTTB.
/// The spans in which nothing ran: from the last point before each run's
/// start to the first point of that run (none before the first point or
/// after the last: the range's edges are not spans between measurements).
fn not_running(points: &[SeriesPoint], starts: &[i64]) -> Vec<NotRunning> {
    let mut out: Vec<NotRunning> = Vec::new();
    for &s in starts {
        let i = points.partition_point(|p| p.at_ms < s);
        if i == 0 || i == points.len() {
            continue;
        }
        let span = NotRunning {
            from_ms: points[i - 1].at_ms,
            to_ms: points[i].at_ms,
        };
        // Two starts without a point between them are one span.
        if out.last() != Some(&span) {
            out.push(span);
        }
    }
    out
}

/// About `max` points: each run of one branch between two spans where
/// nothing ran gets a share of `max` in proportion to its length (two at
/// least, so a range with very many short runs can return a little more)
/// and is reduced by LTTB, which keeps each run's ends: a chart's line
/// stops and starts again exactly at the measurements.
fn downsample(points: &[SeriesPoint], max: usize, gaps: &[NotRunning]) -> Vec<SeriesPoint> {
    if points.len() <= max {
        return points.to_vec();
    }
    let starts_run = |i: usize| {
        points[i].branch != points[i - 1].branch
            || gaps
                .iter()
                .any(|g| g.to_ms == points[i].at_ms && g.from_ms == points[i - 1].at_ms)
    };
    let mut runs: Vec<&[SeriesPoint]> = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || starts_run(i) {
            runs.push(&points[start..i]);
            start = i;
        }
    }
    let total = points.len();
    let mut out = Vec::with_capacity(max);
    for run in runs {
        let share = ((run.len() * max) / total).max(2);
        out.extend(lttb(run, share));
    }
    out
}

/// Largest-triangle-three-buckets over (time, value), keeping each bucket's
/// min and max. Missing values count as 0 for the choice only.
fn lttb(points: &[SeriesPoint], n: usize) -> Vec<SeriesPoint> {
    if points.len() <= n || n < 3 {
        return if points.len() <= n {
            points.to_vec()
        } else {
            vec![points[0].clone(), points[points.len() - 1].clone()]
        };
    }
    let y = |p: &SeriesPoint| p.value.unwrap_or(0.0);
    let x = |p: &SeriesPoint| p.at_ms as f64;
    let width = (points.len() - 2) as f64 / (n - 2) as f64;
    let mut out = Vec::with_capacity(n);
    out.push(points[0].clone());
    let mut a = 0usize;
    for i in 0..n - 2 {
        let start = (i as f64 * width) as usize + 1;
        let end = (((i + 1) as f64 * width) as usize + 1).min(points.len() - 1);
        let next_end = (((i + 2) as f64 * width) as usize + 1).min(points.len());
        let next = &points[end..next_end.max(end + 1).min(points.len())];
        let (ax, ay) = (x(&points[a]), y(&points[a]));
        let cx = next.iter().map(x).sum::<f64>() / next.len() as f64;
        let cy = next.iter().map(y).sum::<f64>() / next.len() as f64;
        let bucket = &points[start..end.max(start + 1)];
        let mut best = start;
        let mut best_area = -1.0;
        for (j, p) in bucket.iter().enumerate() {
            let area = ((ax - cx) * (y(p) - ay) - (ax - x(p)) * (cy - ay)).abs();
            if area > best_area {
                best_area = area;
                best = start + j;
            }
        }
        let mut chosen = points[best].clone();
        chosen.min = bucket.iter().filter_map(|p| p.min).reduce(f64::min);
        chosen.max = bucket.iter().filter_map(|p| p.max).reduce(f64::max);
        out.push(chosen);
        a = best;
    }
    out.push(points[points.len() - 1].clone());
    out
}

/// Marks that `owner` begins a run at `at_ms`, inside the caller's
/// transaction (see [`Store::start_run`]).
pub(super) fn insert_run(tx: &rusqlite::Transaction<'_>, owner: &str, at_ms: i64) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO history_runs (engine, started_at) VALUES (?1, ?2)")?
        .execute(params![owner, at_ms])?;
    Ok(())
}

/// Starts a new line of history inside the caller's transaction.
pub(super) fn insert_branch(
    tx: &rusqlite::Transaction<'_>,
    at_ms: i64,
    from_backup: Option<i64>,
    reason: &str,
) -> Result<i64> {
    let parent: Option<i64> =
        tx.query_row("SELECT max(id) FROM history_branches", [], |r| r.get(0))?;
    tx.execute(
        "INSERT INTO history_branches (started_at, parent, from_backup, reason) VALUES (?1, ?2, ?3, ?4)",
        params![at_ms, parent, from_backup, reason],
    )?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(v: f64) -> BTreeMap<String, crate::wire::Metrics> {
        BTreeMap::from([(
            "zap".to_string(),
            crate::wire::Metrics::from([
                ("success".to_string(), v),
                ("plans".to_string(), v * 10.0),
            ]),
        )])
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("engram.db")).expect("open");
        (dir, store)
    }

    #[test]
    fn a_simulated_month_stays_bounded_and_keeps_its_shape() {
        let (_dir, mut store) = open();
        let branch = store.current_branch(0).expect("branch");
        // A month of saves every 5 s, recorded a day at a time and compacted
        // after each day as the runtime does continuously.
        let start = 1_800_000_000_000i64;
        let step = 5_000;
        let per_day = (DAY / step) as usize;
        let mut t = start;
        let mut peak_rows = 0u64;
        for _day in 0..30 {
            let saves: Vec<(i64, BTreeMap<String, crate::wire::Metrics>)> = (0..per_day)
                .map(|i| {
                    let at = t + i as i64 * step;
                    // A slow rise with a spike every hour.
                    let v = ((at - start) as f64 / (30.0 * DAY as f64))
                        + if (at - start) % HOUR == 0 { 5.0 } else { 0.0 };
                    (at, metrics(v))
                })
                .collect();
            let refs: Vec<(i64, &BTreeMap<String, crate::wire::Metrics>)> =
                saves.iter().map(|(a, m)| (*a, m)).collect();
            store.record_metrics_batch(&refs, branch).expect("record");
            t += DAY;
            store.compact_history(t).expect("compact");
            peak_rows = peak_rows.max(store.history_rows().expect("rows").iter().sum());
        }
        let rows = store.history_rows().expect("rows");
        // 2 metrics: an hour of saves, a day of minutes, the rest in hours.
        assert!(rows[0] <= 2 * (HOUR / step) as u64, "{rows:?}");
        assert!(rows[1] <= 2 * (DAY / MINUTE) as u64 + 2, "{rows:?}");
        assert!(rows[2] <= 2 * 30 * 24, "{rows:?}");
        assert!(
            peak_rows < 2 * per_day as u64 + 4 * 24 * 30 + 3000,
            "bounded: {peak_rows}"
        );
        // Nothing was lost in the folding: the spikes survive as bucket maxima.
        let series = store
            .metric_series("zap", "success", start, t, 500)
            .expect("series");
        assert!(series.points.len() <= 500);
        assert!(series.points.iter().filter_map(|p| p.max).any(|m| m > 5.0));
        // Every save is counted exactly once across the tiers.
        let n: i64 = store
            .conn
            .query_row(
                "SELECT sum(n) FROM metric_points WHERE key = 'success'",
                [],
                |r| r.get(0),
            )
            .expect("sum");
        assert_eq!(n as usize, 30 * per_day);
    }

    #[test]
    fn a_restore_starts_a_branch_and_both_lines_are_kept() {
        let (_dir, mut store) = open();
        let first = store.current_branch(1_000).expect("branch");
        for i in 0..10 {
            store
                .record_metrics(1_000 + i * 1_000, first, &metrics(i as f64))
                .expect("record");
        }
        let second = store
            .start_branch(11_000, Some(7), "restore")
            .expect("branch");
        assert_ne!(first, second);
        assert_eq!(store.current_branch(12_000).expect("current"), second);
        for i in 0..10 {
            store
                .record_metrics(11_000 + i * 1_000, second, &metrics(2.0))
                .expect("record");
        }
        let s = store
            .metric_series("zap", "success", 0, 100_000, 6)
            .expect("series");
        assert_eq!(s.stored, 20);
        assert!(s.points.len() <= 6);
        assert!(s.points.iter().any(|p| p.branch == first));
        assert!(s.points.iter().any(|p| p.branch == second));
        let b = &s.branches[1];
        assert_eq!(
            (b.parent, b.from_backup, b.reason.as_str()),
            (Some(first), Some(7), "restore")
        );
        // A full-resolution query returns every point, in time order.
        let all = store
            .metric_series("zap", "success", 0, 100_000, 100)
            .expect("series");
        assert_eq!(all.points.len(), 20);
        assert!(all.points.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(
            store
                .metric_series("zap", "success", 5, 1, 10)
                .expect_err("range")
                .code(),
            "invalid_input"
        );
    }

    #[test]
    fn a_stop_between_two_runs_is_a_span_where_nothing_ran_and_no_line_crosses_it() {
        let (_d, mut store) = open();
        let branch = store.current_branch(0).expect("branch");
        store.start_run(["zap"], 0).expect("run");
        let m = |v: f64| metrics(v);
        for i in 0..100 {
            store
                .record_metrics(i * 1000, branch, &m(i as f64))
                .expect("save");
        }
        // Stopped at 99 s; runs again from 300 s.
        store.start_run(["zap"], 300_000).expect("run");
        for i in 0..100 {
            store
                .record_metrics(300_000 + i * 1000, branch, &m(i as f64))
                .expect("save");
        }
        let s = store
            .metric_series("zap", "success", 0, i64::MAX, 500)
            .expect("series");
        assert_eq!(
            s.not_running,
            vec![NotRunning {
                from_ms: 99_000,
                to_ms: 300_000
            }]
        );
        // Downsampled, both ends of the stop are still measurements.
        let few = store
            .metric_series("zap", "success", 0, i64::MAX, 10)
            .expect("series");
        assert!(few.points.len() <= 12, "{}", few.points.len());
        let at: Vec<i64> = few.points.iter().map(|p| p.at_ms).collect();
        assert!(at.contains(&99_000) && at.contains(&300_000), "{at:?}");
        assert_eq!(few.not_running, s.not_running);
        // A range that starts inside the second run has no span; another
        // owner's runs are not this one's.
        let later = store
            .metric_series("zap", "success", 310_000, i64::MAX, 500)
            .expect("series");
        assert!(later.not_running.is_empty());
        store.start_run(["other"], 150_000).expect("run");
        let s2 = store
            .metric_series("zap", "success", 0, i64::MAX, 500)
            .expect("series");
        assert_eq!(s2.not_running, s.not_running);
        // A learner's attach starts its run.
        store.attach_learner("desk", None, 500_000).expect("attach");
        assert_eq!(
            store.run_starts("desk", 0, i64::MAX).expect("runs"),
            vec![500_000]
        );
    }

    #[test]
    fn long_ranges_are_downsampled_with_their_extremes() {
        let (_dir, mut store) = open();
        let branch = store.current_branch(0).expect("branch");
        let saves: Vec<(i64, BTreeMap<String, crate::wire::Metrics>)> = (0..5000)
            .map(|i| (i * 1000, metrics(if i == 2500 { 9.0 } else { 1.0 })))
            .collect();
        let refs: Vec<(i64, &BTreeMap<String, crate::wire::Metrics>)> =
            saves.iter().map(|(a, m)| (*a, m)).collect();
        store.record_metrics_batch(&refs, branch).expect("record");
        let s = store
            .metric_series("zap", "success", 0, i64::MAX, 100)
            .expect("series");
        assert_eq!(s.stored, 5000);
        assert_eq!(s.points.len(), 100);
        assert!(s.points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert!(
            s.points.iter().any(|p| p.max == Some(9.0)),
            "the spike survives"
        );
        assert!(s.points.iter().all(|p| p.min == Some(1.0)));
    }

    #[test]
    fn lttb_keeps_the_ends_and_the_extremes() {
        let pts: Vec<SeriesPoint> = (0..1000)
            .map(|i| SeriesPoint {
                at_ms: i,
                value: Some(if i == 500 { 100.0 } else { 0.0 }),
                min: Some(if i == 500 { 100.0 } else { 0.0 }),
                max: Some(if i == 500 { 100.0 } else { 0.0 }),
                branch: 1,
            })
            .collect();
        let out = lttb(&pts, 20);
        assert_eq!(out.len(), 20);
        assert_eq!((out[0].at_ms, out[19].at_ms), (0, 999));
        assert!(
            out.iter().any(|p| p.value == Some(100.0)),
            "the spike is chosen"
        );
    }
}
