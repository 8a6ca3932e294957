//! The one error type of the core library, and the closed set of codes that
//! every front door reports.
//!
//! Every variant has a stable machine-readable [`Error::code`], an
//! [`ErrorCode`]; the UI and the CLI branch on the code, never on the message
//! text. The HTTP status of each code is one exhaustive `match`
//! ([`ErrorCode::http_status`]), so a new code cannot silently become a 500.
//! Nothing here panics.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every code an error, a verification problem, a skip note or an error
/// event can carry. Serialized in `snake_case` (`"disk_full"`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// SQLite failed for a reason not classified below.
    Database,
    /// The database was written by a newer Engram.
    NewerSchema,
    /// Another Engram process holds the data directory.
    Locked,
    /// SQLite's own lock is held by another connection.
    DbLocked,
    /// Unknown backup, engine, blob or data directory.
    NotFound,
    /// The backup is protected (initial, breakthrough, pinned).
    Protected,
    /// A stored state failed its checksum or does not decode.
    CorruptState,
    /// The database file itself is damaged or not an Engram database.
    CorruptDatabase,
    /// A file that is not a valid Engram snapshot.
    InvalidSnapshot,
    /// A snapshot or state format newer than this build.
    UnsupportedFormat,
    /// Input beyond a size limit.
    TooLarge,
    /// No space left on the device (or the database's size cap).
    DiskFull,
    /// The data directory or database is read-only.
    ReadOnly,
    /// Another file-system error.
    Io,
    /// A value could not be encoded.
    Encode,
    /// Bad arguments from a caller.
    InvalidInput,
    /// The engines have stopped; the request cannot be served.
    RuntimeStopped,
    /// A fault inside Engram (a failed task, a poisoned lock): not the caller's fault.
    Internal,
    /// The HTTP request did not carry the right token.
    Unauthorized,
    /// The HTTP request addressed a host other than this loopback server.
    ForbiddenHost,
    /// The database, its WAL or the writer lock was removed or replaced
    /// while Engram ran: nothing more is acknowledged as saved.
    StorageChanged,
    /// The system clock went backwards while Engram ran (reported as an
    /// event; backups keep their order, nothing is deleted for it).
    ClockChanged,
    /// A learner saved a state of a line it was restored away from: it has
    /// not taken the restored state yet (the save is refused).
    StaleState,
    /// An offsite replica could not be reached or refused the write (the
    /// message says what to check); backups here go on and it catches up.
    ReplicaUnavailable,
    /// The key given does not open the replica's repository.
    WrongKey,
    /// The data directory holds no Engram data yet and the app waits for
    /// the user's first-run choice: start fresh or recover from a replica.
    NotStarted,
    /// The fleet's PostgreSQL could not be reached or went away (the
    /// message says what to check); nothing is lost here and the sync
    /// resumes by itself.
    FleetUnavailable,
    /// The fleet's PostgreSQL refused this host: its login, its database,
    /// its rights, or a row it would not take.
    FleetRefused,
    /// Another machine or data directory holds this host's id in the fleet.
    FleetConflict,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: [ErrorCode; 29] = [
        ErrorCode::Database,
        ErrorCode::NewerSchema,
        ErrorCode::Locked,
        ErrorCode::DbLocked,
        ErrorCode::NotFound,
        ErrorCode::Protected,
        ErrorCode::CorruptState,
        ErrorCode::CorruptDatabase,
        ErrorCode::InvalidSnapshot,
        ErrorCode::UnsupportedFormat,
        ErrorCode::TooLarge,
        ErrorCode::DiskFull,
        ErrorCode::ReadOnly,
        ErrorCode::Io,
        ErrorCode::Encode,
        ErrorCode::InvalidInput,
        ErrorCode::RuntimeStopped,
        ErrorCode::Internal,
        ErrorCode::Unauthorized,
        ErrorCode::ForbiddenHost,
        ErrorCode::StorageChanged,
        ErrorCode::ClockChanged,
        ErrorCode::StaleState,
        ErrorCode::ReplicaUnavailable,
        ErrorCode::WrongKey,
        ErrorCode::NotStarted,
        ErrorCode::FleetUnavailable,
        ErrorCode::FleetRefused,
        ErrorCode::FleetConflict,
    ];

    /// The stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Database => "database",
            ErrorCode::NewerSchema => "newer_schema",
            ErrorCode::Locked => "locked",
            ErrorCode::DbLocked => "db_locked",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Protected => "protected",
            ErrorCode::CorruptState => "corrupt_state",
            ErrorCode::CorruptDatabase => "corrupt_database",
            ErrorCode::InvalidSnapshot => "invalid_snapshot",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::Io => "io",
            ErrorCode::Encode => "encode",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::RuntimeStopped => "runtime_stopped",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ForbiddenHost => "forbidden_host",
            ErrorCode::StorageChanged => "storage_changed",
            ErrorCode::ClockChanged => "clock_changed",
            ErrorCode::StaleState => "stale_state",
            ErrorCode::ReplicaUnavailable => "replica_unavailable",
            ErrorCode::WrongKey => "wrong_key",
            ErrorCode::NotStarted => "not_started",
            ErrorCode::FleetUnavailable => "fleet_unavailable",
            ErrorCode::FleetRefused => "fleet_refused",
            ErrorCode::FleetConflict => "fleet_conflict",
        }
    }

    /// The code of a stable name (as [`ErrorCode::as_str`] prints it).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The HTTP status `engram serve` answers with. Exhaustive on purpose:
    /// adding a code does not compile until it has a status.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput | ErrorCode::InvalidSnapshot | ErrorCode::UnsupportedFormat => {
                400
            }
            ErrorCode::Unauthorized => 401,
            ErrorCode::ForbiddenHost | ErrorCode::WrongKey | ErrorCode::FleetRefused => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Protected
            | ErrorCode::Locked
            | ErrorCode::DbLocked
            | ErrorCode::StaleState
            | ErrorCode::FleetConflict => 409,
            ErrorCode::TooLarge => 413,
            // A stored state that cannot be used (damaged, or outside its
            // engine's bounds): the request was fine, its target is not.
            ErrorCode::NewerSchema | ErrorCode::CorruptState => 422,
            ErrorCode::DiskFull => 507,
            ErrorCode::ReadOnly
            | ErrorCode::RuntimeStopped
            | ErrorCode::NotStarted
            | ErrorCode::StorageChanged
            | ErrorCode::ReplicaUnavailable
            | ErrorCode::FleetUnavailable => 503,
            ErrorCode::Database
            | ErrorCode::CorruptDatabase
            | ErrorCode::Io
            | ErrorCode::Encode
            | ErrorCode::Internal
            | ErrorCode::ClockChanged => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and callers compare a code with its name: `e.code() == "not_found"`.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported an error; [`Error::code`] classifies the common causes
    /// (disk full, read-only, locked, corrupt).
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),

    /// The database was written by a newer Engram than this one.
    #[error(
        "the database at {path} was written by a newer Engram (schema version {found}; this build knows up to {supported}); upgrade Engram to open it"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// Another process holds the database for writing.
    #[error(
        "the data directory {path} is in use by another Engram process (pid {pid}); change backups through it (the app or `engram serve`) or stop it first"
    )]
    Locked { path: PathBuf, pid: String },

    /// A backup, blob or engine that does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    /// The action is refused because the item is protected.
    #[error("backup {id} is protected: {reason}")]
    Protected { id: i64, reason: String },

    /// A stored state failed its checksum or could not be decoded.
    #[error("corrupt state {what}: {detail}")]
    CorruptState { what: String, detail: String },

    /// A snapshot file that is not a valid Engram snapshot.
    #[error("not a valid Engram snapshot: {0}")]
    InvalidSnapshot(String),

    /// A state or snapshot written in a format this build does not know.
    #[error("unsupported {what} format version {found} (this build reads up to {supported})")]
    UnsupportedFormat {
        what: &'static str,
        found: u64,
        supported: u64,
    },

    /// Input beyond a size limit.
    #[error("{what} is too large: {size} bytes (limit {limit})")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },

    /// A file-system error outside SQLite.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A value could not be encoded.
    #[error("could not encode state: {0}")]
    Encode(String),

    /// Bad arguments from a caller (a user, the UI, the CLI).
    #[error("{0}")]
    InvalidInput(String),

    /// The runtime has stopped (or is stopping) and cannot serve the request.
    #[error("the engines have stopped: {0}")]
    RuntimeStopped(String),

    /// The data directory waits for the first-run choice (start fresh or
    /// recover from a replica); nothing runs yet.
    #[error("{0}")]
    NotStarted(String),

    /// A fault inside Engram, not caused by the caller's input.
    #[error("internal error: {0}")]
    Internal(String),

    /// An operation that failed now and is kept to be retried (its code is
    /// the failure's).
    #[error("{message}")]
    Pending { code: ErrorCode, message: String },

    /// The answer of a running Engram to a request made through its API
    /// (the CLI forwards changes to the process that holds the data
    /// directory).
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },

    /// An offsite replica failed (its repository, its key or the way to it).
    #[error("{message}")]
    Replica { code: ErrorCode, message: String },

    /// The fleet catalog failed (its PostgreSQL, its login, a conflict).
    #[error("{message}")]
    Fleet { code: ErrorCode, message: String },

    /// A learner's save from before a restore of it (see
    /// [`ErrorCode::StaleState`]).
    #[error(
        "learner {learner:?} was restored (it is at generation {current}, this save is from generation {sent}): take the restored state (resume, or on_restore) and continue from it; this save was not stored"
    )]
    StaleState {
        learner: String,
        sent: i64,
        current: i64,
    },

    /// A file Engram writes through was removed or replaced under it.
    #[error(
        "{what} was removed or replaced while Engram ran; nothing more is saved until Engram is restarted (the engines keep their state in memory until then): {path}"
    )]
    StorageChanged { what: &'static str, path: PathBuf },
}

impl Error {
    /// A stable code for this error, for the UI and scripts to branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Database(e) => database_code(e),
            Error::NewerSchema { .. } => ErrorCode::NewerSchema,
            Error::Locked { .. } => ErrorCode::Locked,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Protected { .. } => ErrorCode::Protected,
            Error::CorruptState { .. } => ErrorCode::CorruptState,
            Error::InvalidSnapshot(_) => ErrorCode::InvalidSnapshot,
            Error::UnsupportedFormat { .. } => ErrorCode::UnsupportedFormat,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::Io { source, .. } => io_code(source),
            Error::Encode(_) => ErrorCode::Encode,
            Error::InvalidInput(_) => ErrorCode::InvalidInput,
            Error::RuntimeStopped(_) => ErrorCode::RuntimeStopped,
            Error::NotStarted(_) => ErrorCode::NotStarted,
            Error::Internal(_) => ErrorCode::Internal,
            Error::StorageChanged { .. } => ErrorCode::StorageChanged,
            Error::Pending { code, .. }
            | Error::Remote { code, .. }
            | Error::Replica { code, .. }
            | Error::Fleet { code, .. } => *code,
            Error::StaleState { .. } => ErrorCode::StaleState,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// `e`, with what happens next added to its message; the code stays.
    pub(crate) fn pending(e: Error, next: &str) -> Self {
        Error::Pending {
            code: e.code(),
            message: format!("{e}; {next}"),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::CorruptState {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

fn database_code(e: &rusqlite::Error) -> ErrorCode {
    use rusqlite::ErrorCode as C;
    if matches!(
        e,
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..)
    ) {
        // A value of the wrong type where the schema promises another: damage.
        return ErrorCode::CorruptDatabase;
    }
    match e.sqlite_error_code() {
        Some(C::DiskFull) => ErrorCode::DiskFull,
        Some(C::ReadOnly) | Some(C::CannotOpen) | Some(C::PermissionDenied) => ErrorCode::ReadOnly,
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => ErrorCode::DbLocked,
        Some(C::DatabaseCorrupt) | Some(C::NotADatabase) => ErrorCode::CorruptDatabase,
        Some(C::SystemIoFailure) => ErrorCode::Io,
        _ => ErrorCode::Database,
    }
}

fn io_code(e: &std::io::Error) -> ErrorCode {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull => ErrorCode::DiskFull,
        K::PermissionDenied | K::ReadOnlyFilesystem => ErrorCode::ReadOnly,
        K::NotFound => ErrorCode::NotFound,
        _ => ErrorCode::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify_sqlite_failures() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(Error::from(full).code(), "disk_full");
        let ro = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        );
        assert_eq!(Error::from(ro).code(), "read_only");
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        assert_eq!(Error::from(corrupt).code(), "corrupt_database");
    }

    #[test]
    fn every_code_serializes_as_its_name_and_has_a_deliberate_status() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).expect("serialize");
            assert_eq!(json, serde_json::Value::from(code.as_str()));
            let back: ErrorCode = serde_json::from_value(json).expect("deserialize");
            assert_eq!(back, code);
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
        // The caller's mistakes are 4xx, Engram's own faults 5xx.
        assert_eq!(ErrorCode::InvalidInput.http_status(), 400);
        assert_eq!(ErrorCode::Locked.http_status(), 409);
        assert_eq!(ErrorCode::RuntimeStopped.http_status(), 503);
        assert_eq!(ErrorCode::Internal.http_status(), 500);
        assert_eq!(
            Error::RuntimeStopped("x".into()).code(),
            ErrorCode::RuntimeStopped
        );
    }

    #[test]
    fn io_codes_classify_storage_full() {
        let e = Error::io(
            "write",
            "/x",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert_eq!(e.code(), "disk_full");
        assert!(e.to_string().contains("/x"));
    }
}
