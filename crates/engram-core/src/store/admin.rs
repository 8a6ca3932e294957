//! Database-wide odds and ends: the saved settings document, a size cap (for
//! tests and operators), and counts of what is stored.

use super::Store;
use crate::error::Result;
use rusqlite::{OptionalExtension, params};

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
