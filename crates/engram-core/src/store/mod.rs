//! The durable store: one SQLite file holding the live state of every engine,
//! the backup timeline and the content-addressed state blobs.
//!
//! All SQL in Engram lives under this module. It does no learning and knows
//! no engine types: states arrive already encoded ([`EncodedState`]).
//!
//! Durability: WAL mode with `synchronous = FULL`, so every method that
//! writes returns only after its transaction is on disk (see ARCHITECTURE.md).

mod integrity;
mod migrations;
mod retention;

pub use integrity::{IntegrityReport, LiveLoad, LoadedState, SkipNote, StateSource, VerifyProblem};
pub use migrations::{SCHEMA_VERSION, schema_dump};
pub use retention::{KeepReason, RetentionDecision, RetentionPolicy, RetentionReport};

use crate::codec::{Checksum, EncodedState};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// engine, checksum, raw_len, data, metrics of a `live_states` row.
type LiveRow = (String, Vec<u8>, i64, Vec<u8>, String);

/// Metric name -> value; a small summary kept beside every stored state.
pub type Metrics = BTreeMap<String, f64>;

/// zstd level for backup blobs. Level 1: engine states are mostly floats,
/// which higher levels barely shrink further. Live states are not compressed
/// at all: saving them is the hot path, and compression was most of its cost.
const ZSTD_LEVEL: i32 = 1;
/// `blobs.codec`: stored as is.
const CODEC_RAW: i64 = 0;
/// `blobs.codec`: zstd.
const CODEC_ZSTD: i64 = 1;
/// No single encoded state may exceed this (checked before decompressing).
pub const MAX_STATE_BYTES: u64 = 512 * 1024 * 1024;

/// The kinds of backup on the timeline.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// Taken on the very first launch; kept forever.
    Initial,
    /// Taken on a schedule; rolling retention.
    Periodic,
    /// Taken when an engine reports a breakthrough; kept forever.
    Breakthrough,
    /// Asked for by the user; kept until the user deletes it.
    Manual,
    /// Taken automatically before every restore, so a restore can be undone.
    PreRestore,
    /// Brought in from an export file.
    Imported,
}

impl BackupKind {
    /// All kinds, in timeline-legend order.
    pub const ALL: [BackupKind; 6] = [
        BackupKind::Initial,
        BackupKind::Periodic,
        BackupKind::Breakthrough,
        BackupKind::Manual,
        BackupKind::PreRestore,
        BackupKind::Imported,
    ];

    /// The stable name used in the database, exports, the CLI and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Initial => "initial",
            BackupKind::Periodic => "periodic",
            BackupKind::Breakthrough => "breakthrough",
            BackupKind::Manual => "manual",
            BackupKind::PreRestore => "pre-restore",
            BackupKind::Imported => "imported",
        }
    }
}

impl std::str::FromStr for BackupKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackupKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown backup kind {s:?} (expected one of: initial, periodic, breakthrough, manual, pre-restore, imported)"
                ))
            })
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an engine reported when a breakthrough rule fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Breakthrough {
    pub engine: String,
    pub rule: String,
    pub metric: String,
    pub value: f64,
    #[ts(type = "number")]
    pub step: u64,
}

/// One engine's state, ready to store.
#[derive(Clone, Debug)]
pub struct EngineState {
    pub engine: String,
    pub state: EncodedState,
    pub metrics: Metrics,
}

/// A backup to write.
#[derive(Clone, Debug)]
pub struct NewBackup<'a> {
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub breakthrough: Option<Breakthrough>,
    pub states: &'a [EngineState],
}

/// One engine inside a backup, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineSummary {
    pub name: String,
    pub metrics: Metrics,
    /// blake3 of the encoded state, hex.
    pub checksum: String,
    /// Encoded size in bytes.
    pub size: u64,
    /// Compressed size as stored.
    pub stored_size: u64,
}

/// A backup as listed on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub id: i64,
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    pub engines: Vec<EngineSummary>,
    pub breakthrough: Option<Breakthrough>,
    /// For imported backups: JSON describing the source file's manifest.
    pub origin: Option<String>,
}

/// Where a page of the backup list starts: just after this (created_at, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Cursor {
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number")]
    pub id: i64,
}

/// Filters and paging for [`Store::list_backups`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BackupQuery {
    /// Only these kinds (empty: all).
    #[serde(default)]
    pub kinds: Vec<BackupKind>,
    /// Only backups that contain this engine.
    #[serde(default)]
    pub engine: Option<String>,
    /// Start after this position (keyset paging, fast at any depth).
    #[serde(default)]
    pub after: Option<Cursor>,
    /// Skip this many rows (for jumping; prefer `after` for scrolling).
    #[serde(default)]
    pub offset: u64,
    /// Page size; 0 means 50. Capped at 1000.
    #[serde(default)]
    pub limit: u32,
}

/// One page of backups, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupPage {
    pub items: Vec<BackupInfo>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<Cursor>,
    /// How many backups match the filters in all.
    pub total: u64,
}

/// The durable store. One per database file; not `Sync` — give each thread
/// its own, or guard one with a mutex.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` for reading and writing,
    /// applying migrations. Refuses databases from newer builds and foreign files.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        // WAL persists in the file; setting it needs a write, so do it once here.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::InvalidInput(format!(
                "{} cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        migrations::migrate(&mut conn, &path)?;
        Ok(Store { conn, path })
    }

    /// Opens an existing database without writing to it (for read-only
    /// commands while another process runs the engines).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(Error::NotFound {
                what: "database",
                id: path.display().to_string(),
            });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // ----- live state -------------------------------------------------------

    /// Overwrites the live state of each given engine, in one transaction.
    /// Durable when it returns.
    pub fn save_live(&mut self, states: &[EngineState], saved_at_ms: i64) -> Result<()> {
        let prepared = states
            .iter()
            .map(|s| Ok((s, s.state.as_bytes(), metrics_json(&s.metrics)?)))
            .collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO live_states (engine, checksum, raw_len, data, metrics, saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (engine) DO UPDATE SET checksum = excluded.checksum,
                   raw_len = excluded.raw_len, data = excluded.data,
                   metrics = excluded.metrics, saved_at = excluded.saved_at",
            )?;
            for (s, data, metrics) in &prepared {
                validate_engine_name(&s.engine)?;
                stmt.execute(params![
                    s.engine,
                    &s.state.checksum().0[..],
                    s.state.len() as i64,
                    data,
                    metrics,
                    saved_at_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the live state was last saved (newest engine), if ever.
    pub fn live_saved_at(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(saved_at) FROM live_states", [], |r| r.get(0))?)
    }

    /// Metrics of the live states, without decoding them.
    pub fn live_metrics(&self) -> Result<BTreeMap<String, (Metrics, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT engine, metrics, saved_at FROM live_states ORDER BY engine")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (engine, metrics, at) = row?;
            out.insert(engine, (parse_metrics(&metrics), at));
        }
        Ok(out)
    }

    // ----- backups ----------------------------------------------------------

    /// Writes one backup — all of its engine states — in one transaction.
    /// States already stored (same checksum) are not stored again.
    pub fn create_backup(&mut self, b: &NewBackup<'_>) -> Result<i64> {
        check_new_backup(b)?;
        // Compress outside the transaction, only what is not stored yet.
        let mut compressed: Vec<Option<(i64, Vec<u8>)>> = Vec::with_capacity(b.states.len());
        for s in b.states {
            let known = self.blob_id(&s.state.checksum())?.is_some();
            compressed.push(if known {
                None
            } else {
                Some(pack(s.state.as_bytes())?)
            });
        }
        let tx = self.conn.transaction()?;
        let id = insert_backup_row(&tx, b, None)?;
        for (s, data) in b.states.iter().zip(compressed) {
            let sum = s.state.checksum();
            let blob_id = match data {
                Some(data) => upsert_blob(&tx, &sum, s.state.len() as u64, &data)?,
                None => match blob_id_in(&tx, &sum)? {
                    Some(id) => id,
                    // Removed between the check and the transaction: store it now.
                    None => {
                        upsert_blob(&tx, &sum, s.state.len() as u64, &pack(s.state.as_bytes())?)?
                    }
                },
            };
            insert_backup_state(&tx, id, &s.engine, blob_id, &s.metrics)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Writes a backup of the current live states (all engines, or the given
    /// ones) without decoding or recompressing them.
    pub fn backup_live(
        &mut self,
        kind: BackupKind,
        created_at_ms: i64,
        label: Option<String>,
        breakthrough: Option<Breakthrough>,
    ) -> Result<i64> {
        let b = NewBackup {
            kind,
            created_at_ms,
            label,
            breakthrough,
            states: &[],
        };
        check_new_backup(&b)?;
        // IMMEDIATE: read the live cut and write the backup under one write lock.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<LiveRow> = tx
            .prepare(
                "SELECT engine, checksum, raw_len, data, metrics FROM live_states ORDER BY engine",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    blob_col(r, 1)?,
                    r.get(2)?,
                    blob_col(r, 3)?,
                    r.get(4)?,
                ))
            })?
            .collect::<std::result::Result<_, _>>()?;
        if rows.is_empty() {
            return Err(Error::NotFound {
                what: "live state",
                id: "(none saved yet)".into(),
            });
        }
        let id = insert_backup_row(&tx, &b, None)?;
        for (engine, sum, raw_len, data, metrics) in rows {
            // Never copy a damaged live state into the timeline.
            let state = open_live(&engine, &sum, raw_len, &data)?;
            let checksum = state.checksum();
            let blob = match blob_id_in(&tx, &checksum)? {
                Some(blob) => blob,
                None => upsert_blob(&tx, &checksum, state.len() as u64, &pack(state.as_bytes())?)?,
            };
            insert_backup_state(&tx, id, &engine, blob, &parse_metrics(&metrics))?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Restores a backup (all engines, or one) into the live state, offline:
    /// first a `pre-restore` backup of the current live state (so the restore
    /// can be undone), then the backup's checked states become live.
    /// Returns the pre-restore backup's id (None when nothing was live yet).
    pub fn restore_to_live(
        &mut self,
        id: i64,
        engine: Option<&str>,
        now_ms: i64,
    ) -> Result<(Option<i64>, Vec<String>)> {
        let mut states = self.backup_states(id)?; // checked before anything changes
        if let Some(e) = engine {
            states.retain(|s| s.engine == e);
            if states.is_empty() {
                return Err(Error::NotFound {
                    what: "engine",
                    id: format!("{e} in backup {id}"),
                });
            }
        }
        let has_live = !self.live_metrics()?.is_empty();
        let pre = if has_live {
            match self.backup_live(
                BackupKind::PreRestore,
                now_ms,
                Some(format!("before restoring backup {id}")),
                None,
            ) {
                Ok(id) => Some(id),
                // A damaged live state is what one restores away from: it
                // cannot be kept, and must not block the restore.
                Err(Error::CorruptState { .. }) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        self.save_live(&states, now_ms)?;
        Ok((pre, states.into_iter().map(|s| s.engine).collect()))
    }

    /// One backup with its engine summaries.
    pub fn get_backup(&self, id: i64) -> Result<BackupInfo> {
        let mut items = self.backups_where("b.id = ?1", &[&id], 1)?;
        let mut b = items.pop().ok_or_else(|| not_found_backup(id))?;
        b.engines = self
            .engine_summaries(&[id])?
            .remove(&id)
            .unwrap_or_default();
        Ok(b)
    }

    /// The encoded states of a backup (checked: decompressed, checksum
    /// verified, header validated), in engine-name order.
    pub fn backup_states(&self, id: i64) -> Result<Vec<EngineState>> {
        self.get_backup(id)?; // NotFound for an unknown id
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.engine, s.metrics, b.checksum, b.raw_len, b.data, b.codec
             FROM backup_states s JOIN blobs b ON b.id = s.blob_id
             WHERE s.backup_id = ?1 ORDER BY s.engine",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                blob_col(r, 2)?,
                r.get::<_, i64>(3)?,
                blob_col(r, 4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (engine, metrics, sum, raw_len, data, codec) = row?;
            let what = format!("{engine} in backup {id}");
            let state = open_blob(&what, &sum, raw_len, codec, &data)?;
            out.push(EngineState {
                engine,
                state,
                metrics: parse_metrics(&metrics),
            });
        }
        Ok(out)
    }

    /// Lists backups newest first, filtered and paged.
    pub fn list_backups(&self, q: &BackupQuery) -> Result<BackupPage> {
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
        for b in &mut items {
            b.engines = summaries.remove(&b.id).unwrap_or_default();
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

    /// How many backups there are.
    pub fn count_backups(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM backups", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Deletes a backup the user no longer wants. Initial, breakthrough and
    /// pinned backups are refused with the reason. Unreferenced blobs go too.
    pub fn delete_backup(&mut self, id: i64) -> Result<()> {
        let b = self.get_backup(id)?;
        if let Some(reason) = deletion_refusal(&b) {
            return Err(Error::Protected { id, reason });
        }
        self.delete_backups_unchecked(&[id])?;
        Ok(())
    }

    /// Pins (`true`) or unpins a backup. Pinned backups are never deleted.
    pub fn set_pinned(&mut self, id: i64, pinned: bool) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE backups SET pinned = ?2 WHERE id = ?1",
            params![id, pinned],
        )?;
        if n == 0 {
            return Err(not_found_backup(id));
        }
        Ok(())
    }

    /// Sets or clears a backup's label.
    pub fn set_label(&mut self, id: i64, label: Option<&str>) -> Result<()> {
        if let Some(l) = label {
            validate_label(l)?;
        }
        let n = self.conn.execute(
            "UPDATE backups SET label = ?2 WHERE id = ?1",
            params![id, label],
        )?;
        if n == 0 {
            return Err(not_found_backup(id));
        }
        Ok(())
    }

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

    // ----- internals shared by the submodules ------------------------------

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Inserts an imported backup (states already validated) in one transaction.
    pub(crate) fn insert_imported(&mut self, b: &NewBackup<'_>, origin: &str) -> Result<i64> {
        check_new_backup(b)?;
        let compressed = b
            .states
            .iter()
            .map(|s| pack(s.state.as_bytes()))
            .collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        let id = insert_backup_row(&tx, b, Some(origin))?;
        for (s, packed) in b.states.iter().zip(compressed) {
            let blob = upsert_blob(&tx, &s.state.checksum(), s.state.len() as u64, &packed)?;
            insert_backup_state(&tx, id, &s.engine, blob, &s.metrics)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Deletes backups and then the blobs only they referenced, in one transaction.
    pub(crate) fn delete_backups_unchecked(&mut self, ids: &[i64]) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut blobs: Vec<i64> = Vec::new();
        {
            let mut q =
                tx.prepare_cached("SELECT blob_id FROM backup_states WHERE backup_id = ?1")?;
            let mut del = tx.prepare_cached("DELETE FROM backups WHERE id = ?1")?;
            for id in ids {
                let ids: Vec<i64> = q
                    .query_map([id], |r| r.get(0))?
                    .collect::<std::result::Result<_, _>>()?;
                blobs.extend(ids);
                del.execute([id])?;
            }
        }
        blobs.sort_unstable();
        blobs.dedup();
        let mut removed = 0u64;
        {
            let mut gc = tx.prepare_cached(
                "DELETE FROM blobs WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM backup_states WHERE blob_id = ?1)",
            )?;
            for b in blobs {
                removed += gc.execute([b])? as u64;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    fn blob_id(&self, sum: &Checksum) -> Result<Option<i64>> {
        blob_id_in(&self.conn, sum)
    }

    fn backups_where(
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
             ORDER BY b.created_at DESC, b.id DESC LIMIT {limit} OFFSET {offset}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            let kind: String = r.get(1)?;
            let rule: Option<String> = r.get(6)?;
            Ok((
                kind,
                BackupInfo {
                    id: r.get(0)?,
                    kind: BackupKind::Manual, // replaced below
                    created_at_ms: r.get(2)?,
                    label: r.get(3)?,
                    pinned: r.get(4)?,
                    engines: Vec::new(),
                    breakthrough: match rule {
                        Some(rule) => Some(Breakthrough {
                            engine: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                            rule,
                            metric: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                            value: r.get::<_, Option<f64>>(8)?.unwrap_or(f64::NAN),
                            step: r.get::<_, Option<i64>>(9)?.unwrap_or(0).max(0) as u64,
                        }),
                        None => None,
                    },
                    origin: r.get(10)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, mut info) = row?;
            info.kind = kind.parse().map_err(|_| {
                Error::corrupt(
                    format!("backup {}", info.id),
                    format!("unknown kind {kind:?}"),
                )
            })?;
            out.push(info);
        }
        Ok(out)
    }

    fn engine_summaries(&self, ids: &[i64]) -> Result<BTreeMap<i64, Vec<EngineSummary>>> {
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

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // FULL: in WAL mode NORMAL may lose the last commits on power loss; a
    // save must be durable when it returns, so every commit syncs the WAL.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Why the user may not delete this backup, if they may not.
pub fn deletion_refusal(b: &BackupInfo) -> Option<String> {
    if b.pinned {
        return Some("it is pinned; unpin it first".into());
    }
    match b.kind {
        BackupKind::Initial => Some("the initial backup is kept forever".into()),
        BackupKind::Breakthrough => Some("breakthrough backups are permanent".into()),
        _ => None,
    }
}

pub(crate) fn not_found_backup(id: i64) -> Error {
    Error::NotFound {
        what: "backup",
        id: id.to_string(),
    }
}

/// Reads a BLOB column; a damaged row holding TEXT there is read as its bytes
/// (its checksum then fails) instead of failing with a type error.
pub(crate) fn blob_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Ok(b.to_vec()),
        _ => Ok(Vec::new()),
    }
}

/// Chooses how to store a blob: zstd when it makes it smaller, else as is.
fn pack(bytes: &[u8]) -> Result<(i64, Vec<u8>)> {
    let c = compress(bytes)?;
    Ok(if c.len() < bytes.len() {
        (CODEC_ZSTD, c)
    } else {
        (CODEC_RAW, bytes.to_vec())
    })
}

pub(crate) fn compress(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(bytes, ZSTD_LEVEL).map_err(|e| Error::Encode(format!("zstd: {e}")))
}

/// Checks and opens a `live_states` row (stored uncompressed).
pub(crate) fn open_live(
    engine: &str,
    sum: &[u8],
    raw_len: i64,
    data: &[u8],
) -> Result<EncodedState> {
    open_blob(
        &format!("live state of {engine}"),
        sum,
        raw_len,
        CODEC_RAW,
        data,
    )
}

/// Decompresses, checks the checksum and validates a stored state.
pub(crate) fn open_blob(
    what: &str,
    sum: &[u8],
    raw_len: i64,
    codec: i64,
    data: &[u8],
) -> Result<EncodedState> {
    let expected = Checksum::from_slice(sum)
        .map_err(|_| Error::corrupt(what, "stored checksum is malformed"))?;
    if raw_len < 0 || raw_len as u64 > MAX_STATE_BYTES {
        return Err(Error::corrupt(
            what,
            format!("implausible length {raw_len}"),
        ));
    }
    let bytes = match codec {
        CODEC_RAW => data.to_vec(),
        CODEC_ZSTD => {
            decompress_exact(data, raw_len as u64).map_err(|e| Error::corrupt(what, e))?
        }
        other => {
            return Err(Error::corrupt(
                what,
                format!("unknown storage codec {other}"),
            ));
        }
    };
    if bytes.len() as i64 != raw_len {
        return Err(Error::corrupt(
            what,
            format!("length {} != recorded {raw_len}", bytes.len()),
        ));
    }
    let actual = Checksum::of(&bytes);
    if actual != expected {
        return Err(Error::corrupt(
            what,
            format!("checksum mismatch: stored {expected}, computed {actual}"),
        ));
    }
    EncodedState::from_bytes(bytes).map_err(|e| Error::corrupt(what, e))
}

/// Decompresses `data`, which must expand to exactly `len` bytes. Memory
/// grows with the actual output, never with a claimed length.
pub(crate) fn decompress_exact(data: &[u8], len: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(len.min(1 << 20) as usize);
    let decoder =
        zstd::stream::read::Decoder::new(data).map_err(|e| format!("cannot decompress: {e}"))?;
    decoder
        .take(len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() as u64 != len {
        return Err(format!(
            "decompressed to {} bytes, expected {len}",
            out.len()
        ));
    }
    Ok(out)
}

pub(crate) fn metrics_json(m: &Metrics) -> Result<String> {
    // Non-finite values become null in JSON; they are display data only.
    serde_json::to_string(m).map_err(|e| Error::Encode(e.to_string()))
}

pub(crate) fn parse_metrics(s: &str) -> Metrics {
    let raw: BTreeMap<String, Option<f64>> = serde_json::from_str(s).unwrap_or_default();
    raw.into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect()
}

/// Engine names: 1–64 characters of `a-z0-9_-`.
pub fn validate_engine_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid engine name {name:?}: use 1-64 characters of a-z, 0-9, _ and -"
        )))
    }
}

fn validate_label(l: &str) -> Result<()> {
    if l.chars().count() > 200 || l.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a label is at most 200 characters, without control characters".into(),
        ));
    }
    Ok(())
}

fn check_new_backup(b: &NewBackup<'_>) -> Result<()> {
    if let Some(l) = &b.label {
        validate_label(l)?;
    }
    if (b.kind == BackupKind::Breakthrough) != b.breakthrough.is_some() {
        return Err(Error::InvalidInput(
            "a breakthrough backup needs its breakthrough details, and only it may have them"
                .into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in b.states {
        validate_engine_name(&s.engine)?;
        if !seen.insert(s.engine.as_str()) {
            return Err(Error::InvalidInput(format!(
                "engine {} appears twice",
                s.engine
            )));
        }
    }
    Ok(())
}

fn insert_backup_row(
    tx: &rusqlite::Transaction<'_>,
    b: &NewBackup<'_>,
    origin: Option<&str>,
) -> Result<i64> {
    let bt = b.breakthrough.as_ref();
    tx.execute(
        "INSERT INTO backups (kind, created_at, label, pinned, bt_engine, bt_rule, bt_metric, bt_value, bt_step, origin)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            b.kind.as_str(),
            b.created_at_ms,
            b.label,
            bt.map(|t| t.engine.as_str()),
            bt.map(|t| t.rule.as_str()),
            bt.map(|t| t.metric.as_str()),
            bt.map(|t| t.value),
            bt.map(|t| t.step.min(i64::MAX as u64) as i64),
            origin
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn insert_backup_state(
    tx: &rusqlite::Transaction<'_>,
    backup: i64,
    engine: &str,
    blob: i64,
    metrics: &Metrics,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO backup_states (backup_id, engine, blob_id, metrics) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![backup, engine, blob, metrics_json(metrics)?])?;
    Ok(())
}

fn blob_id_in(conn: &Connection, sum: &Checksum) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM blobs WHERE checksum = ?1")?
        .query_row([&sum.0[..]], |r| r.get(0))
        .optional()?)
}

fn upsert_blob(
    tx: &rusqlite::Transaction<'_>,
    sum: &Checksum,
    raw_len: u64,
    (codec, data): &(i64, Vec<u8>),
) -> Result<i64> {
    if let Some(id) = blob_id_in(tx, sum)? {
        return Ok(id);
    }
    tx.prepare_cached(
        "INSERT INTO blobs (checksum, raw_len, codec, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![&sum.0[..], raw_len as i64, codec, data])?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests;
