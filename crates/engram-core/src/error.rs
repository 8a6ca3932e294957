//! The one error type of the core library.
//!
//! Every variant has a stable machine-readable [`Error::code`]; the UI and the
//! CLI branch on the code, never on the message text. Nothing here panics.

use std::path::PathBuf;

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
    #[error("the data directory {path} is in use by another Engram process (pid {pid})")]
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
}

impl Error {
    /// A stable code for this error, for the UI and scripts to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Database(e) => database_code(e),
            Error::NewerSchema { .. } => "newer_schema",
            Error::Locked { .. } => "locked",
            Error::NotFound { .. } => "not_found",
            Error::Protected { .. } => "protected",
            Error::CorruptState { .. } => "corrupt_state",
            Error::InvalidSnapshot(_) => "invalid_snapshot",
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::TooLarge { .. } => "too_large",
            Error::Io { source, .. } => io_code(source),
            Error::Encode(_) => "encode",
            Error::InvalidInput(_) => "invalid_input",
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::CorruptState {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

fn database_code(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode as C;
    if matches!(
        e,
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..)
    ) {
        // A value of the wrong type where the schema promises another: damage.
        return "corrupt_database";
    }
    match e.sqlite_error_code() {
        Some(C::DiskFull) => "disk_full",
        Some(C::ReadOnly) | Some(C::CannotOpen) | Some(C::PermissionDenied) => "read_only",
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => "db_locked",
        Some(C::DatabaseCorrupt) | Some(C::NotADatabase) => "corrupt_database",
        Some(C::SystemIoFailure) => "io",
        _ => "database",
    }
}

fn io_code(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull => "disk_full",
        K::PermissionDenied | K::ReadOnlyFilesystem => "read_only",
        K::NotFound => "not_found",
        _ => "io",
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
