//! One metric across the timeline: its value in every backup along the
//! current line of history (the branch the engines are on, then — back
//! through each restore — the line the restored backup was on, up to it),
//! and where along that line it first fell below a threshold.
//!
//! The line: branches start one after another in time, so the branch that
//! was current at an instant is the newest that started by then. The
//! current branch covers its own start to now; a branch a restore started
//! continues, before its start, with the branch current when the restored
//! backup was made, up to that backup; and so on back to the first start.

use super::Store;
use crate::error::Result;
use crate::wire::{BackupKind, BackupValue};
use std::sync::{Arc, Mutex};

/// One stretch of the current line of history: the backups made from
/// `from` to `to` (inclusive), but for the `pre-restore` backup made at
/// `from` by the restore that started it (that one holds the line the
/// restore left).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    from: i64,
    to: i64,
    /// `from` when a restore started this stretch; otherwise a time no
    /// backup has.
    pre_restore_at: i64,
}

impl Span {
    /// Every backup, on any line.
    const EVERYTHING: Span = Span {
        from: i64::MIN,
        to: i64::MAX,
        pre_restore_at: i64::MIN,
    };
}

/// The spans of the current line of history, newest first.
fn line_spans(store: &Store) -> Result<Vec<Span>> {
    let branches = store.history_branches()?;
    let Some(mut b) = branches.last().cloned() else {
        return Ok(vec![Span::EVERYTHING]);
    };
    let mut spans = Vec::new();
    let mut end = i64::MAX;
    // Each step goes to an earlier branch: at most one step per branch.
    for _ in 0..=branches.len() {
        spans.push(Span {
            from: b.started_at,
            to: end,
            pre_restore_at: if b.from_backup.is_some() {
                b.started_at
            } else {
                i64::MIN
            },
        });
        let Some(from) = b.from_backup else { break };
        let Some(at) = store
            .conn
            .prepare_cached("SELECT created_at FROM backups WHERE id = ?1")?
            .query_row([from], |r| r.get::<_, i64>(0))
            .ok()
        else {
            // The restored backup is gone: the line cannot be followed
            // further back than this branch's start.
            break;
        };
        end = at;
        // The branch current when the restored backup was made; one made
        // before the first branch started (the initial backup is cut a
        // moment before the first start is recorded, and an older database
        // has no branches) belongs to the first.
        let then = branches
            .iter()
            .filter(|x| x.started_at <= at && x.id != b.id)
            .max_by_key(|x| (x.started_at, x.id))
            .or_else(|| branches.first().filter(|f| f.id != b.id));
        match then {
            Some(next) if next.started_at < b.started_at => b = next.clone(),
            _ => break,
        }
    }
    // Backups from before the first branch (an older database) belong to it.
    if let Some(last) = spans.last_mut()
        && branches.first().is_some_and(|f| f.started_at == last.from)
    {
        last.from = i64::MIN;
    }
    Ok(spans)
}

impl Store {
    /// `key` of `engine` (a built-in engine or a learner) in every backup
    /// holding its state along the current line of history, oldest first
    /// (`value` is null where that state carries no such metric).
    ///
    /// Through `cache` when given: a line read before is read again only
    /// if something other than new backups at the end changed it since
    /// (`timeline_epoch`, kept by triggers); otherwise only the backups
    /// after its newest are read. Call inside one read transaction (the
    /// epoch and the rows from one commit).
    pub fn metric_along_line(
        &self,
        cache: Option<&LineCache>,
        engine: &str,
        key: &str,
    ) -> Result<Vec<BackupValue>> {
        self.metric_read(cache, engine, key, Along::Line)
    }

    /// `key` of `engine` in every backup holding its state, on any line
    /// of history, oldest first; through `cache` when given.
    pub fn metric_in_every_backup(
        &self,
        cache: Option<&LineCache>,
        engine: &str,
        key: &str,
    ) -> Result<Vec<BackupValue>> {
        self.metric_read(cache, engine, key, Along::Every)
    }

    fn metric_read(
        &self,
        cache: Option<&LineCache>,
        engine: &str,
        key: &str,
        along: Along,
    ) -> Result<Vec<BackupValue>> {
        match cache {
            Some(cache) => self.metric_cached(cache, engine, key, along),
            None => self.line_after(engine, key, along, None),
        }
    }

    fn metric_cached(
        &self,
        cache: &LineCache,
        engine: &str,
        key: &str,
        along: Along,
    ) -> Result<Vec<BackupValue>> {
        let (rewritten, newest): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT rewritten FROM timeline_epoch),
                    (SELECT coalesce(max(id), 0) FROM backups)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let known = cache
            .get(engine, key, along)
            .filter(|c| c.rewritten == rewritten);
        let backups = match known {
            Some(c) if c.newest == newest => return Ok(c.backups.to_vec()),
            Some(c) => {
                // Only new backups at the end since: their times are at
                // or after every older backup's (or the epoch moved).
                let since = c.backups.last().map_or(i64::MIN, |b| b.created_at_ms);
                let after = (c.newest, since);
                let mut all = c.backups.to_vec();
                all.extend(self.line_after(engine, key, along, Some(after))?);
                all
            }
            None => self.line_after(engine, key, along, None)?,
        };
        cache.put(CachedLine {
            engine: engine.to_string(),
            key: key.to_string(),
            along,
            rewritten,
            newest,
            backups: backups.clone().into(),
        });
        Ok(backups)
    }

    /// The line (or every backup), or only its backups with an id above
    /// `after.0` and a time at or after `after.1`.
    fn line_after(
        &self,
        engine: &str,
        key: &str,
        along: Along,
        after: Option<(i64, i64)>,
    ) -> Result<Vec<BackupValue>> {
        let path = format!("$.\"{}\"", key.replace('"', "\\\""));
        // A built-in engine's states are in `backup_states`, a learner's in
        // `backup_learner_states`: one table, probed by its primary key for
        // each backup walked in time order on the backups' time index (no
        // union, no sort). CROSS JOIN fixes that order: SQLite 3.40 put the
        // states outside and searched the time index for each (n², minutes
        // at 100,000 backups).
        let table = if crate::engines::is_builtin(engine) {
            "backup_states s ON s.backup_id = b.id AND s.engine = ?1"
        } else {
            "backup_learner_states s ON s.backup_id = b.id AND s.learner = ?1"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT b.id, b.created_at, b.kind, json_extract(s.metrics, ?2)
             FROM backups b INDEXED BY backups_by_time CROSS JOIN {table}
             WHERE b.created_at >= ?3 AND b.created_at <= ?4 AND b.id > ?5
               AND NOT (b.created_at = ?6 AND b.kind = 'pre-restore')
             ORDER BY b.created_at DESC, b.id DESC"
        ))?;
        let (above, since) = after.unwrap_or((i64::MIN, i64::MIN));
        let mut out = Vec::new();
        let spans = match along {
            Along::Line => line_spans(self)?,
            Along::Every => vec![Span::EVERYTHING],
        };
        for span in spans {
            if span.to < since {
                continue;
            }
            let from = span.from.max(since);
            let params = rusqlite::params![engine, path, from, span.to, above, span.pre_restore_at];
            let rows = stmt.query_map(params, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, BackupKind>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })?;
            for row in rows {
                let (id, created_at_ms, kind, value) = row?;
                out.push(BackupValue {
                    id,
                    created_at_ms,
                    kind,
                    value: value.filter(|v| v.is_finite()),
                });
            }
        }
        // Gathered newest first (span by span, newest span first).
        out.reverse();
        Ok(out)
    }
}

/// Lines of one metric read before, kept between reads by the running
/// Engram (a few, the most recently asked: a follow view asks the same
/// line again after every backup).
#[derive(Default)]
pub struct LineCache {
    lines: Mutex<Vec<CachedLine>>,
}

/// How many lines [`LineCache`] keeps (~40 bytes a backup each).
const LINES_KEPT: usize = 4;

/// Which backups a read follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Along {
    /// The current line of history.
    Line,
    /// Every backup, on any line.
    Every,
}

#[derive(Clone)]
struct CachedLine {
    engine: String,
    key: String,
    along: Along,
    /// `timeline_epoch.rewritten` when it was read.
    rewritten: i64,
    /// The largest backup id then (whether or not on the line).
    newest: i64,
    backups: Arc<[BackupValue]>,
}

impl CachedLine {
    fn is(&self, engine: &str, key: &str, along: Along) -> bool {
        self.engine == engine && self.key == key && self.along == along
    }
}

impl LineCache {
    fn get(&self, engine: &str, key: &str, along: Along) -> Option<CachedLine> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find(|c| c.is(engine, key, along)).cloned()
    }

    fn put(&self, line: CachedLine) {
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        lines.retain(|c| !c.is(&line.engine, &line.key, line.along));
        lines.push(line);
        if lines.len() > LINES_KEPT {
            lines.remove(0);
        }
    }
}

/// Where a metric first fell below `below` along `line` (oldest first):
/// the first backup whose value is below it after one that was not, and
/// that one (the last good backup). None when it never fell.
pub fn first_fall(line: &[BackupValue], below: f64) -> Option<(BackupValue, BackupValue)> {
    let mut last_good: Option<&BackupValue> = None;
    for b in line {
        let Some(v) = b.value else { continue };
        if v >= below {
            last_good = Some(b);
        } else if let Some(good) = last_good {
            return Some((good.clone(), b.clone()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: i64, value: Option<f64>) -> BackupValue {
        BackupValue {
            id,
            created_at_ms: id * 1000,
            kind: BackupKind::Periodic,
            value,
        }
    }

    #[test]
    fn a_fall_is_the_first_value_below_after_one_that_was_not() {
        let line = [
            v(1, Some(0.1)),
            v(2, Some(0.8)),
            v(3, None),
            v(4, Some(0.9)),
            v(5, Some(0.4)),
            v(6, Some(0.95)),
            v(7, Some(0.2)),
        ];
        let (good, fell) = first_fall(&line, 0.5).expect("a fall");
        assert_eq!((good.id, fell.id), (4, 5));
        // Below from the start, never above: no fall.
        assert!(first_fall(&line[..1], 0.5).is_none());
        assert!(first_fall(&line, 0.05).is_none());
    }
}
