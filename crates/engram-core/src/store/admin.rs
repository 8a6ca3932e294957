//! Database-wide odds and ends: the saved settings document, a size cap (for
//! tests and operators), counts of what is stored, and the storage report
//! (sizes, deduplication, growth).

use super::Store;
use crate::error::Result;
use crate::wire::BackupKind;
use crate::wire::{KindStorage, StorageDay, StorageReport};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

impl Store {
    /// The saved settings document (JSON), if any.
    pub fn settings_json(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Saves the settings document (JSON), replacing the previous one.
    pub fn save_settings_json(&mut self, json: &str, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (id, value, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![json, now_ms],
        )?;
        Ok(())
    }

    /// Caps the database at `pages` pages (`PRAGMA max_page_count`); writes
    /// beyond it fail as a full disk would (`disk_full`). For tests and for
    /// operators who want a hard size limit. Returns the cap in force.
    pub fn set_max_pages(&mut self, pages: u64) -> Result<u64> {
        let n: i64 =
            self.conn
                .pragma_update_and_check(None, "max_page_count", pages as i64, |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Pages the database uses now.
    pub fn page_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Total bytes stored for blobs and live states (compressed).
    pub fn stored_bytes(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT (SELECT coalesce(sum(length(data)), 0) FROM blobs)
                  + (SELECT coalesce(sum(length(data)), 0) FROM live_states)",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// How many distinct state blobs are stored.
    pub fn blob_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

const DAY_MS: i64 = 86_400_000;

/// The (key, count) rows of a two-column query.
fn pairs<K: rusqlite::types::FromSql>(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Result<Vec<(K, u64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, K>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// A day's entry of the growth table, made when first needed.
fn day_entry(days: &mut BTreeMap<i64, StorageDay>, d: i64) -> &mut StorageDay {
    days.entry(d).or_insert_with(|| StorageDay {
        day_ms: d.saturating_mul(DAY_MS),
        backups: 0,
        added_bytes: 0,
    })
}

impl Store {
    /// Sizes, deduplication and growth of what is stored.
    pub fn storage_report(&self) -> Result<StorageReport> {
        // Long by design: one report, a query per section of it.
        let pragma = |name: &str| -> Result<u64> {
            let n: i64 = self.conn.pragma_query_value(None, name, |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        let page = pragma("page_size")?;
        let one = |sql: &str| -> Result<u64> {
            let n: i64 = self.conn.query_row(sql, [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        let wal = std::fs::metadata(super::wal_path(&self.path)).map_or(0, |m| m.len());
        // UTC day of a timestamp column, rounding down also before 1970.
        let day = |col: &str| format!("{col} / {DAY_MS} - ({col} < 0 AND {col} % {DAY_MS} != 0)");
        let mut by_kind: BTreeMap<BackupKind, KindStorage> = BTreeMap::new();
        let mut days: BTreeMap<i64, StorageDay> = BTreeMap::new();
        for (kind, n) in pairs::<BackupKind>(
            &self.conn,
            "SELECT kind, count(*) FROM backups GROUP BY kind",
        )? {
            by_kind.insert(
                kind,
                KindStorage {
                    kind,
                    backups: n,
                    added_bytes: 0,
                },
            );
        }
        for (d, n) in pairs::<i64>(
            &self.conn,
            &format!(
                "SELECT {}, count(*) FROM backups GROUP BY 1",
                day("created_at")
            ),
        )? {
            day_entry(&mut days, d).backups = n;
        }
        // Each blob goes to the oldest backup holding it (SQLite takes the
        // bare columns of a min() aggregate from the row with the minimum):
        // one pass, summed by that backup's kind and by its day.
        let mut stmt = self.conn.prepare(&format!(
            "SELECT f.kind, {}, sum(length(bl.data))
             FROM (SELECT s.blob_id AS blob, b.kind AS kind, min(b.created_at) AS at
                   FROM backup_states s JOIN backups b ON b.id = s.backup_id
                   GROUP BY s.blob_id) f
             JOIN blobs bl ON bl.id = f.blob GROUP BY 1, 2",
            day("f.at")
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, BackupKind>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?;
        for row in rows {
            let (kind, d, bytes) = row?;
            if let Some(k) = by_kind.get_mut(&kind) {
                k.added_bytes += bytes;
            }
            day_entry(&mut days, d).added_bytes += bytes;
        }
        // Learner states: each distinct one counted once, by where it is kept.
        let named = "SELECT object, size FROM learner_live
                     UNION ALL SELECT object, size FROM backup_learner_states";
        let (learner_states, learner_inline_bytes, learner_file_bytes): (i64, i64, i64) =
            self.conn.query_row(
                &format!(
                    "SELECT count(*),
                            coalesce(sum(CASE WHEN i.checksum IS NULL THEN 0 ELSE o.size END), 0),
                            coalesce(sum(CASE WHEN i.checksum IS NULL THEN o.size ELSE 0 END), 0)
                     FROM (SELECT object, max(size) AS size FROM ({named}) GROUP BY object) o
                     LEFT JOIN learner_inline_states i ON i.checksum = o.object"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        Ok(StorageReport {
            db_bytes: pragma("page_count")? * page,
            free_bytes: pragma("freelist_count")? * page,
            wal_bytes: wal,
            backups: one("SELECT count(*) FROM backups")?,
            blobs: one("SELECT count(*) FROM blobs")?,
            referenced_bytes: one(
                "SELECT coalesce(sum(bl.raw_len), 0) FROM backup_states s JOIN blobs bl ON bl.id = s.blob_id",
            )?,
            unique_bytes: one("SELECT coalesce(sum(raw_len), 0) FROM blobs")?,
            stored_bytes: one("SELECT coalesce(sum(length(data)), 0) FROM blobs")?,
            live_bytes: one("SELECT coalesce(sum(length(data)), 0) FROM live_states")?,
            history_points: one("SELECT count(*) FROM metric_points")?,
            learner_states: learner_states.max(0) as u64,
            learner_referenced_bytes: one(&format!(
                "SELECT coalesce(sum(size), 0) FROM ({named})"
            ))?,
            learner_inline_bytes: learner_inline_bytes.max(0) as u64,
            learner_file_bytes: learner_file_bytes.max(0) as u64,
            learner_slot_bytes: self.objects().slot_bytes(),
            by_kind: by_kind.into_values().collect(),
            growth: days.into_values().collect(),
        })
    }
}
