//! The durable store: one SQLite file holding the live state of every engine,
//! the backup timeline and the content-addressed state blobs.
//!
//! All SQL in Engram lives under this module. It does no learning and knows
//! no engine types: states arrive already encoded ([`EncodedState`](crate::codec::EncodedState)).
//!
//! Durability: WAL mode with `synchronous = FULL`, so every method that
//! writes returns only after its transaction is on disk (see ARCHITECTURE.md).
//!
//! This file is the table of contents: [`Store`] and opening it. The rest:
//! - `types` — backup kinds (stored by name via `ToSql`/`FromSql`),
//!   breakthroughs, states to store, backups as listed, queries and pages,
//!   name and label rules.
//! - `blob` — how a state is stored and opened: compression, the checksum,
//!   bounded decompression, validation (snapshots use it too).
//! - `live` — the live states, overwritten by every autosave.
//! - `backups` — creating, restoring, pinning, labelling, deleting backups.
//! - `listing` — keyset-paged, filtered listing of the timeline.
//! - `retention` — which backups to keep and why, and deleting the rest.
//! - `integrity` — verification and loading with fallback to a good backup.
//! - `migrations` — numbered SQL migrations and the schema snapshot.
//! - `history` — metric time series across restarts, downsampled as they
//!   age, split into branches at restores.
//! - `timeline` — the timeline at any scale: counts by kind per time
//!   bucket, and the backups to draw one by one.
//! - `learners` — learners (engines in other processes): who they are, their
//!   newest durable state (an object in `objects/`), their states in backups.
//! - `fleet` — membership of a fleet catalog and the queue of what it has
//!   not taken yet (filled by triggers).
//! - `line` — one metric across the backups of the current line of
//!   history, and where it first fell.
//! - `admin` — the settings document, size caps, counts and the storage
//!   report.

mod admin;
mod backups;
pub(crate) mod blob;
mod drills;
mod fleet;
mod history;
mod integrity;
mod learner_bytes;
mod learners;
mod line;
mod listing;
mod live;
mod migrations;
mod replicas;
mod retention;
pub(crate) mod timeline;
mod types;

pub use backups::deletion_refusal;
pub use drills::DrillCommand;

pub use fleet::{FleetBackupRow, FleetMember, FleetPoint, FleetUnitRow, OutboxEntry, PointMark};
pub use integrity::{LiveLoad, LoadedState, StateSource};
pub use learner_bytes::{InlineState, StateBytes};
pub use learners::{
    BUILT_IN, ImportedLearner, LearnerRecord, NewLearnerState, validate_learner_name,
    validate_metric_info, validate_milestone_rules,
};
pub use line::{LineCache, first_fall};
pub use migrations::{SCHEMA_VERSION, schema_dump};
pub use replicas::{CATALOG_TABLES, NewReplicaTarget, ReplicaCopy, ReplicaCounts, ReplicaTarget};
pub use retention::{HOLD_FOR, KeepReason, Outlook, RetentionDecision, RetentionReport};

pub use types::{
    BackupInfo, BackupPage, BackupQuery, EngineState, EngineSummary, MAX_SEARCH_CHARS, NewBackup,
    is_unsafe_char, validate_engine_name,
};

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// The durable store. One per database file; not `Sync` — give each thread
/// its own, or guard one with a mutex.
/// The database file inside a data directory.
pub const DB_FILE: &str = "engram.db";

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// (device, inode) of the database and of its WAL once seen: a file
    /// replaced or removed under the open connection is detected
    /// ([`Store::check_files`]).
    files: FileIds,
    /// Backups a user is looking at or about to restore, and until when
    /// (monotonic): retention keeps them ([`Store::hold`]). In memory only —
    /// a hold is about a page that is open now.
    holds: std::collections::BTreeMap<i64, std::time::Instant>,
}

#[derive(Clone, Copy, Debug, Default)]
struct FileIds {
    db: Option<(u64, u64)>,
    wal: Option<(u64, u64)>,
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
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
        // Before anything writes: a foreign or newer file stays untouched.
        migrations::check_ownership(&conn, &path)?;
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
        let files = FileIds {
            db: file_id(&path),
            wal: file_id(&wal_path(&path)),
        };
        Ok(Store {
            conn,
            path,
            files,
            holds: Default::default(),
        })
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
        Ok(Store {
            conn,
            path,
            files: FileIds::default(),
            holds: Default::default(),
        })
    }

    /// Checks that the database and its WAL are still the files this
    /// connection writes through. A commit made after either was deleted
    /// or replaced went to a file nobody will read again, so the runtime
    /// calls this after each save and backup and acknowledges neither when
    /// it fails (`storage_changed`).
    pub fn check_files(&mut self) -> Result<()> {
        let changed = |what, path: PathBuf| Err(Error::StorageChanged { what, path });
        if self.files.db.is_some() && file_id(&self.path) != self.files.db {
            return changed("the database file", self.path.clone());
        }
        let wal = wal_path(&self.path);
        match (self.files.wal, file_id(&wal)) {
            (Some(seen), now) if now != Some(seen) => {
                return changed("the database's WAL file", wal);
            }
            (None, Some(now)) => self.files.wal = Some(now),
            _ => {}
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` inside one read transaction: every query in it sees the
    /// same commit (the newest when its first query ran).
    pub fn in_one_read<T>(&mut self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(self);
        // A read transaction changes nothing: ending it cannot lose work.
        let ended = self.conn.execute_batch("COMMIT");
        let out = out?;
        ended?;
        Ok(out)
    }

    /// Closes the database with everything in its main file (the WAL
    /// checkpointed and gone), so the file alone can be moved.
    pub fn close_into_main_file(self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })?;
        let path = self.path.clone();
        self.conn.close().map_err(|(_, e)| Error::from(e))?;
        match std::fs::metadata(wal_path(&path)) {
            Ok(m) if m.len() > 0 => Err(Error::Internal(format!(
                "{} kept a write-ahead log after its checkpoint",
                path.display()
            ))),
            _ => Ok(()),
        }
    }

    /// The learner state files of this database's data directory.
    pub fn objects(&self) -> crate::objects::Objects {
        crate::objects::Objects::new(self.path.parent().unwrap_or(Path::new(".")))
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // FULL: in WAL mode NORMAL may lose the last commits on power loss; a
    // save must be durable when it returns, so every commit syncs the WAL.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests;
