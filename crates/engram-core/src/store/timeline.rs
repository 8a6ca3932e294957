//! The timeline at any scale: for a time range, how many backups of each
//! kind fall in each of N equal buckets, and the backups themselves when the
//! range holds few enough of them to draw one by one (otherwise only the
//! ones a user looks for: the initial backup, milestones and pinned ones).
//! Counting reads only the `(kind, created_at, id)` index, one kind at a
//! time (BENCHMARKS.md has the figures at 100,000 backups).

use super::Store;
use super::listing::breakthrough_at;
use crate::wire::BackupKind;
use crate::wire::{DensityBucket, KindCount, TimelineMark, TimelineQuery, TimelineView};

use crate::error::{Error, Result};

/// Buckets when the caller names none, and at most.
pub const DEFAULT_BUCKETS: u32 = 200;
pub const MAX_BUCKETS: u32 = 4000;
/// Backups drawn one by one when the caller names no limit, and at most.
pub const DEFAULT_MARKS: u32 = 1000;
pub const MAX_MARKS: u32 = 5000;

/// How many of one kind's backups fall in `[?2, ?3)` (its index covers it:
/// SQLite counts the index entries, no row reaches Rust).
pub(super) const COUNT_SQL: &str =
    "SELECT count(*) FROM backups WHERE kind = ?1 AND created_at >= ?2 AND created_at < ?3";

/// Whether one kind has a backup in `[?2, ?3]` (one step of its index).
const ANY_SQL: &str =
    "SELECT 1 FROM backups WHERE kind = ?1 AND created_at BETWEEN ?2 AND ?3 LIMIT 1";

/// The bucket of time `t`: `width`-wide buckets from `from`, the last one
/// taking whatever float rounding leaves past it.
fn bucket_of(t: i64, from: i64, width: f64, n: u32) -> i64 {
    (((t as f64 - from as f64) / width) as i64).clamp(0, i64::from(n) - 1)
}

/// The first instant of bucket `i` (`from` for the first): the least `t`
/// that `bucket_of` puts in bucket `i` or later, so counting between two
/// of them counts exactly what `bucket_of` would put in each bucket.
fn bucket_start(i: u32, from: i64, width: f64, n: u32) -> i64 {
    if i == 0 {
        return from;
    }
    let i = i64::from(i);
    let mut t = (from as f64 + i as f64 * width).ceil() as i64;
    while t > from && bucket_of(t - 1, from, width, n) >= i {
        t -= 1;
    }
    while bucket_of(t, from, width, n) < i {
        t += 1;
    }
    t
}

impl Store {
    /// Counts by kind per bucket over a range, and the backups to draw.
    pub fn timeline(&self, q: &TimelineQuery) -> Result<TimelineView> {
        // Long by design: one range, its buckets and its marks, each a query
        // built from the same filters.
        // Two subqueries: each is one step of the time index (min and max
        // in one SELECT would scan all of it).
        let (first, last): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT (SELECT min(created_at) FROM backups), (SELECT max(created_at) FROM backups)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let from = q.from_ms.or(first).unwrap_or(0);
        let to = q.to_ms.or(last).unwrap_or(0);
        if from > to {
            return Err(Error::InvalidInput(format!(
                "the range starts ({from}) after it ends ({to})"
            )));
        }
        let n = q.buckets.unwrap_or(DEFAULT_BUCKETS).clamp(1, MAX_BUCKETS);
        let limit = q.marks.unwrap_or(DEFAULT_MARKS).min(MAX_MARKS);
        // Each kind once, however often it was asked for.
        let kinds: std::collections::BTreeSet<BackupKind> = if q.kinds.is_empty() {
            BackupKind::ALL.into_iter().collect()
        } else {
            q.kinds.iter().copied().collect()
        };
        // Float widths: any i64 range splits without overflow.
        let width = ((to as f64 - from as f64) + 1.0) / f64::from(n);
        let mut counts: Vec<Vec<KindCount>> = vec![Vec::new(); n as usize];
        let mut in_range = 0u64;
        let mut total = 0u64;
        // Where each bucket starts, and where the range ends.
        let bounds: Vec<i64> = (0..n)
            .map(|i| bucket_start(i, from, width, n))
            .chain([to.saturating_add(1)])
            .collect();
        let mut stmt = self.conn.prepare_cached(COUNT_SQL)?;
        let mut count = |kind: &BackupKind, lo: i64, hi: i64| -> Result<u64> {
            let c: i64 = stmt.query_row(rusqlite::params![kind, lo, hi], |r| r.get(0))?;
            Ok(c.max(0) as u64)
        };
        let mut any = self.conn.prepare_cached(ANY_SQL)?;
        for kind in &kinds {
            // One kind at a time on the (kind, created_at, id) index, which
            // covers the query: SQLite counts index entries between two
            // bucket starts, no table row is read and no row reaches Rust
            // (stepping each backup's time through Rust cost ~40 ms at
            // 100,000). A kind absent from the range costs one count.
            let mut per_bucket = vec![0u32; n as usize];
            let mut per_kind = 0u64;
            if any.exists(rusqlite::params![kind, from, to])? {
                for (i, slot) in per_bucket.iter_mut().enumerate() {
                    let c = count(kind, bounds[i], bounds[i + 1])?;
                    *slot = u32::try_from(c).unwrap_or(u32::MAX);
                    per_kind += c;
                }
            }
            in_range += per_kind;
            for (slot, count) in counts.iter_mut().zip(per_bucket) {
                if count > 0 {
                    slot.push(KindCount { kind: *kind, count });
                }
            }
            total += if first.is_some_and(|f| from <= f) && last.is_some_and(|l| to >= l) {
                // The range holds the whole history: what was counted is all.
                per_kind
            } else {
                let all: i64 = self.conn.query_row(
                    "SELECT count(*) FROM backups WHERE kind = ?1",
                    [kind],
                    |r| r.get(0),
                )?;
                all.max(0) as u64
            };
        }
        let buckets = counts
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, counts)| DensityBucket {
                start_ms: (from as f64 + i as f64 * width) as i64,
                end_ms: (from as f64 + (i + 1) as f64 * width) as i64,
                counts,
            })
            .collect();
        let complete = in_range <= u64::from(limit);
        let kinds = format!(
            "kind IN ({})",
            kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let columns =
            "id, kind, created_at, label, pinned, bt_engine, bt_rule, bt_metric, bt_value, bt_step";
        // All of the range's backups, or only the notable ones: the initial
        // backup and milestones (by the kind index) and pinned ones (by
        // their partial index, named: with every kind asked for, SQLite's
        // planner would walk the kind index through all 100,000 and read
        // each row for `pinned`, 23 ms) — never a read of every row of the
        // range.
        let sql = if complete {
            format!(
                "SELECT {columns} FROM backups WHERE created_at BETWEEN ?1 AND ?2 AND {kinds}
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            )
        } else {
            format!(
                "SELECT * FROM (
                   SELECT {columns} FROM backups
                     WHERE kind IN ('initial', 'breakthrough') AND {kinds} AND created_at BETWEEN ?1 AND ?2
                   UNION
                   SELECT {columns} FROM backups INDEXED BY backups_pinned_by_time
                     WHERE pinned = 1 AND created_at BETWEEN ?1 AND ?2 AND {kinds})
                 ORDER BY kind = 'initial' DESC, created_at DESC, id DESC LIMIT ?3"
            )
        };
        let mut marks = {
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params![from, to, limit], |r| {
                Ok(TimelineMark {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    created_at_ms: r.get(2)?,
                    label: r.get(3)?,
                    pinned: r.get(4)?,
                    breakthrough: breakthrough_at(r, 5)?,
                })
            })?;
            rows.collect::<std::result::Result<Vec<_>, _>>()?
        };
        marks.sort_by_key(|m| (m.created_at_ms, m.id));
        Ok(TimelineView {
            first_ms: first,
            last_ms: last,
            from_ms: from,
            to_ms: to,
            in_range,
            total,
            buckets,
            marks,
            complete,
        })
    }
}
