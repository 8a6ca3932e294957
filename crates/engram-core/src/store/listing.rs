//! Listing the timeline: keyset-paged, filtered by kind, engine, text and
//! pin, newest first, on the indexes `(created_at DESC, id DESC)` and
//! `(kind, created_at DESC, id DESC)`; engine summaries in one query per page.
//! And the timeline at any scale: counts by kind per time bucket, with the
//! backups themselves once a range holds few enough of them.

use super::Store;
use super::blob::{blob_col, parse_metrics};
use super::types::{BackupInfo, BackupPage, BackupQuery, EngineSummary, MAX_SEARCH_CHARS};
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::wire::{Breakthrough, Cursor};
use std::collections::BTreeMap;

/// A learner in a backup, and the step of its state there.
/// A learner a backup holds: its name, and its state's step and metrics.
pub(super) type LearnerStep = (String, Option<u64>, crate::wire::Metrics);

impl Store {
    /// Lists backups newest first, filtered and paged.
    pub fn list_backups(&self, q: &BackupQuery) -> Result<BackupPage> {
        // Long by design: one keyset-paged query built from every filter, and
        // its page.
        let limit = match q.limit {
            0 => 50,
            n => n.min(1000),
        };
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if !q.kinds.is_empty() {
            let marks: Vec<String> = q
                .kinds
                .iter()
                .map(|k| {
                    args.push(Box::new(k.as_str()));
                    format!("?{}", args.len())
                })
                .collect();
            conds.push(format!("b.kind IN ({})", marks.join(",")));
        }
        if let Some(engine) = &q.engine {
            args.push(Box::new(engine.clone()));
            conds.push(format!(
                "EXISTS (SELECT 1 FROM backup_states s WHERE s.backup_id = b.id AND s.engine = ?{})",
                args.len()
            ));
        }
        if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
            if text.chars().count() > MAX_SEARCH_CHARS {
                return Err(Error::InvalidInput(format!(
                    "the search text is longer than {MAX_SEARCH_CHARS} characters"
                )));
            }
            // instr, not LIKE: the user's % and _ are plain characters.
            args.push(Box::new(text.to_ascii_lowercase()));
            let n = args.len();
            conds.push(format!(
                "(instr(lower(coalesce(b.label, '')), ?{n}) > 0
                  OR instr(lower(coalesce(b.bt_rule, '') || ' ' || coalesce(b.bt_metric, '') || ' ' || coalesce(b.bt_engine, '')), ?{n}) > 0)"
            ));
        }
        if q.pinned_only {
            conds.push("b.pinned = 1".into());
        }
        let filter = if conds.is_empty() {
            "1".to_string()
        } else {
            conds.join(" AND ")
        };
        let total: i64 = {
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
            self.conn.query_row(
                &format!("SELECT count(*) FROM backups b WHERE {filter}"),
                refs.as_slice(),
                |r| r.get(0),
            )?
        };
        let mut page_cond = filter.clone();
        if let Some(c) = q.after {
            args.push(Box::new(c.created_at_ms));
            args.push(Box::new(c.id));
            page_cond.push_str(&format!(
                " AND (b.created_at, b.id) < (?{}, ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let mut items = self.backups_where_paged(&page_cond, &refs, limit, q.offset)?;
        let ids: Vec<i64> = items.iter().map(|b| b.id).collect();
        let mut summaries = self.engine_summaries(&ids)?;
        let mut learners = self.learner_names(&ids)?;
        let mut offsite = self.offsite_marks(&ids)?;
        for b in &mut items {
            b.engines = summaries.remove(&b.id).unwrap_or_default();
            b.set_learners(learners.remove(&b.id).unwrap_or_default());
            b.offsite = offsite.remove(&b.id);
        }
        let next = if items.len() == limit as usize {
            items.last().map(|b| Cursor {
                created_at_ms: b.created_at_ms,
                id: b.id,
            })
        } else {
            None
        };
        Ok(BackupPage {
            items,
            next,
            total: total as u64,
        })
    }

    pub(super) fn backups_where(
        &self,
        cond: &str,
        args: &[&dyn rusqlite::ToSql],
        limit: u32,
    ) -> Result<Vec<BackupInfo>> {
        self.backups_where_paged(cond, args, limit, 0)
    }

    fn backups_where_paged(
        &self,
        cond: &str,
        args: &[&dyn rusqlite::ToSql],
        limit: u32,
        offset: u64,
    ) -> Result<Vec<BackupInfo>> {
        let sql = format!(
            "SELECT b.id, b.kind, b.created_at, b.label, b.pinned, b.bt_engine, b.bt_rule,
                    b.bt_metric, b.bt_value, b.bt_step, b.origin
             FROM backups b WHERE {cond}
             ORDER BY b.created_at DESC, b.id DESC LIMIT {limit} OFFSET {}",
            // SQLite's OFFSET is signed; past i64::MAX there is nothing anyway.
            offset.min(i64::MAX as u64)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(BackupInfo {
                id: r.get(0)?,
                kind: r.get(1)?,
                created_at_ms: r.get(2)?,
                label: r.get(3)?,
                pinned: r.get(4)?,
                engines: Vec::new(),
                learners: Vec::new(),
                learner_steps: BTreeMap::new(),
                learner_metrics: BTreeMap::new(),
                breakthrough: breakthrough_at(r, 5)?,
                origin: r.get(10)?,
                offsite: None,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The learners each backup holds (with their steps), by backup id.
    pub(super) fn learner_names(&self, ids: &[i64]) -> Result<BTreeMap<i64, Vec<LearnerStep>>> {
        let mut out: BTreeMap<i64, Vec<LearnerStep>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT backup_id, learner, step, metrics FROM backup_learner_states
             WHERE backup_id IN ({list}) ORDER BY backup_id, learner"
        ))?;
        for row in stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?.map(|s| s.max(0) as u64),
                // Written by this build from checked metrics; anything
                // else reads as none rather than failing the listing.
                serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
            ))
        })? {
            let (id, name, step, metrics) = row?;
            out.entry(id).or_default().push((name, step, metrics));
        }
        Ok(out)
    }

    pub(super) fn engine_summaries(
        &self,
        ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<EngineSummary>>> {
        let mut out: BTreeMap<i64, Vec<EngineSummary>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT s.backup_id, s.engine, s.metrics, b.checksum, b.raw_len, length(b.data)
             FROM backup_states s JOIN blobs b ON b.id = s.blob_id
             WHERE s.backup_id IN ({list}) ORDER BY s.backup_id, s.engine"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                EngineSummary {
                    name: r.get(1)?,
                    metrics: parse_metrics(&r.get::<_, String>(2)?),
                    checksum: Checksum::from_slice(&blob_col(r, 3)?)
                        .map(|c| c.to_hex())
                        .unwrap_or_else(|_| "invalid".into()),
                    size: r.get::<_, i64>(4)?.max(0) as u64,
                    stored_size: r.get::<_, i64>(5)?.max(0) as u64,
                },
            ))
        })?;
        for row in rows {
            let (id, s) = row?;
            out.entry(id).or_default().push(s);
        }
        Ok(out)
    }
}

/// The breakthrough in a row whose columns from `at` on are `bt_engine,
/// bt_rule, bt_metric, bt_value, bt_step` (none when `bt_rule` is null).
pub(super) fn breakthrough_at(
    r: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Option<Breakthrough>> {
    let Some(rule) = r.get::<_, Option<String>>(at + 1)? else {
        return Ok(None);
    };
    Ok(Some(Breakthrough {
        engine: r.get::<_, Option<String>>(at)?.unwrap_or_default(),
        rule,
        metric: r.get::<_, Option<String>>(at + 2)?.unwrap_or_default(),
        value: r.get::<_, Option<f64>>(at + 3)?.unwrap_or(f64::NAN),
        step: r.get::<_, Option<i64>>(at + 4)?.unwrap_or(0).max(0) as u64,
    }))
}
