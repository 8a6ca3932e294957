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

/// The spans (from, to) of the current line of history, newest first.
fn line_spans(store: &Store) -> Result<Vec<(i64, i64)>> {
    let branches = store.history_branches()?;
    let Some(mut b) = branches.last().cloned() else {
        return Ok(vec![(i64::MIN, i64::MAX)]);
    };
    let mut spans = Vec::new();
    let mut end = i64::MAX;
    // Each step goes to an earlier branch: at most one step per branch.
    for _ in 0..=branches.len() {
        spans.push((b.started_at, end));
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
        match branches
            .iter()
            .filter(|x| x.started_at <= at && x.id != b.id)
            .max_by_key(|x| (x.started_at, x.id))
        {
            Some(next) if next.started_at < b.started_at => b = next.clone(),
            _ => break,
        }
    }
    // Backups from before the first branch (an older database) belong to it.
    if let Some(last) = spans.last_mut()
        && branches.first().is_some_and(|f| f.started_at == last.0)
    {
        last.0 = i64::MIN;
    }
    Ok(spans)
}

impl Store {
    /// `key` of `engine` (a built-in engine or a learner) in every backup
    /// holding its state along the current line of history, oldest first
    /// (`value` is null where that state carries no such metric).
    pub fn metric_along_line(&self, engine: &str, key: &str) -> Result<Vec<BackupValue>> {
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
             WHERE b.created_at >= ?3 AND b.created_at <= ?4
             ORDER BY b.created_at DESC, b.id DESC"
        ))?;
        let mut out = Vec::new();
        for (from, to) in line_spans(self)? {
            let rows = stmt.query_map(rusqlite::params![engine, path, from, to], |r| {
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
