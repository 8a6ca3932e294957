//! The timeline at any scale: for a time range, how many backups of each
//! kind fall in each of N equal buckets, and the backups themselves when the
//! range holds few enough of them to draw one by one (otherwise only the
//! ones a user looks for: the initial backup, milestones and pinned ones).
//! One `GROUP BY` over the `created_at` index; a year of backups every few
//! seconds still answers in tens of milliseconds (BENCHMARKS.md).

use super::Store;
use super::listing::breakthrough_at;
use super::types::{BackupKind, Breakthrough};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Buckets when the caller names none, and at most.
pub const DEFAULT_BUCKETS: u32 = 200;
pub const MAX_BUCKETS: u32 = 4000;
/// Backups drawn one by one when the caller names no limit, and at most.
pub const DEFAULT_MARKS: u32 = 1000;
pub const MAX_MARKS: u32 = 5000;

/// What part of the timeline to summarise.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct TimelineQuery {
    /// Only these kinds (empty: all).
    pub kinds: Vec<BackupKind>,
    /// The range, inclusive (default: the oldest to the newest backup).
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub to_ms: Option<i64>,
    /// How many equal buckets to count in (default 200, at most 4,000).
    pub buckets: Option<u32>,
    /// Draw backups one by one when the range holds at most this many
    /// (default 1,000, at most 5,000).
    pub marks: Option<u32>,
}

/// One backup drawn on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineMark {
    #[ts(type = "number")]
    pub id: i64,
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub pinned: bool,
    pub label: Option<String>,
    pub breakthrough: Option<Breakthrough>,
}

/// How many backups of one kind a bucket holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct KindCount {
    pub kind: BackupKind,
    pub count: u32,
}

/// One time bucket with backups in it (empty buckets are left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct DensityBucket {
    #[ts(type = "number")]
    pub start_ms: i64,
    /// Exclusive.
    #[ts(type = "number")]
    pub end_ms: i64,
    pub counts: Vec<KindCount>,
}

/// The timeline of a range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineView {
    /// The oldest and newest backup of any kind: the whole history, which
    /// the axis always spans when not zoomed. Null when there are none.
    #[ts(type = "number | null")]
    pub first_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_ms: Option<i64>,
    /// The range summarised.
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
    /// Backups of the chosen kinds in the range, and in all.
    #[ts(type = "number")]
    pub in_range: u64,
    #[ts(type = "number")]
    pub total: u64,
    pub buckets: Vec<DensityBucket>,
    /// Backups drawn one by one, oldest first.
    pub marks: Vec<TimelineMark>,
    /// True when `marks` holds every backup of the range; false when the
    /// range holds more than the limit and `marks` holds only the initial
    /// backup, milestones and pinned backups (the initial one and the
    /// newest others, up to the limit).
    pub complete: bool,
}

impl Store {
    /// Counts by kind per bucket over a range, and the backups to draw.
    pub fn timeline(&self, q: &TimelineQuery) -> Result<TimelineView> {
        let (first, last): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT min(created_at), max(created_at) FROM backups",
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
        let kinds = if q.kinds.is_empty() {
            String::from("1")
        } else {
            let names: Vec<String> = q
                .kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            format!("kind IN ({})", names.join(","))
        };
        // Float widths: any i64 range splits without overflow.
        let width = ((to as f64 - from as f64) + 1.0) / f64::from(n);
        let mut counts: Vec<Vec<KindCount>> = vec![Vec::new(); n as usize];
        let mut in_range = 0u64;
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT CAST((created_at - ?1) / ?3 AS INTEGER) AS bucket, kind, count(*)
                 FROM backups WHERE created_at BETWEEN ?1 AND ?2 AND {kinds}
                 GROUP BY bucket, kind ORDER BY bucket"
            ))?;
            let rows = stmt.query_map(rusqlite::params![from, to, width], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, BackupKind>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (bucket, kind, count) = row?;
                let i = bucket.clamp(0, i64::from(n) - 1) as usize;
                let count = count.max(0) as u64;
                in_range += count;
                let slot = &mut counts[i];
                match slot.iter_mut().find(|c| c.kind == kind) {
                    Some(c) => c.count = c.count.saturating_add(count as u32),
                    None => slot.push(KindCount {
                        kind,
                        count: count.min(u64::from(u32::MAX)) as u32,
                    }),
                }
            }
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
        let notable = if complete {
            ""
        } else {
            " AND (kind IN ('initial', 'breakthrough') OR pinned = 1)"
        };
        let mut marks = {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT id, kind, created_at, label, pinned, bt_engine, bt_rule, bt_metric, bt_value, bt_step
                 FROM backups WHERE created_at BETWEEN ?1 AND ?2 AND {kinds}{notable}
                 ORDER BY kind = 'initial' DESC, created_at DESC, id DESC LIMIT ?3"
            ))?;
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
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM backups WHERE {kinds}"),
            [],
            |r| r.get(0),
        )?;
        Ok(TimelineView {
            first_ms: first,
            last_ms: last,
            from_ms: from,
            to_ms: to,
            in_range,
            total: total.max(0) as u64,
            buckets,
            marks,
            complete,
        })
    }
}
