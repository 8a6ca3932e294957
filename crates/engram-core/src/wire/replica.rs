//! Offsite replicas: restic repositories that hold every backup, what a
//! user asks of them and what they answer.

use super::BackupKind;
use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Where a backup stands with the offsite replicas (on each backup row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum OffsiteMark {
    /// Every replica holds it.
    Replicated,
    /// A replica has yet to take it (its status says why, if it is failing).
    Queued,
    /// A replica could not take it (a state here failed its checksum).
    Failed,
}

/// Where a replica lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaKind {
    /// A directory (another disk, a mounted share).
    #[default]
    Local,
    /// `user@host:path` over SFTP (libssh2; the host key must be known).
    Sftp,
}

impl ReplicaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaKind::Local => "local",
            ReplicaKind::Sftp => "sftp",
        }
    }
}

/// A new replica target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct AddReplica {
    pub kind: ReplicaKind,
    /// local: a directory path; sftp: `user@host:path`.
    pub location: String,
    /// What to call it (default: derived from the location).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// sftp: the private key file.
    #[serde(default)]
    pub identity: Option<String>,
    /// Engram never deletes anything there (prune is refused).
    #[serde(default)]
    pub append_only: bool,
}

/// A replica added: its status and, the first time a key is made, the key
/// itself — shown this once (`engram replicas key` prints it again).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaAdded {
    pub replica: ReplicaStatus,
    /// Whether the repository was created now (else an existing one,
    /// written with the same key, was joined).
    pub created: bool,
    /// The repository key, when this call created it.
    pub new_key: Option<String>,
    /// The owner-only file that holds the key.
    pub key_file: String,
}

/// The repository key and where it is kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaKey {
    pub key: String,
    pub key_file: String,
}

/// Why the replica is behind: the last failure, as a person can act on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaProblem {
    pub code: ErrorCode,
    pub message: String,
    #[ts(type = "number")]
    pub at_ms: i64,
}

/// How a replica stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaStatus {
    pub name: String,
    pub kind: ReplicaKind,
    pub location: String,
    pub port: Option<u16>,
    pub identity: Option<String>,
    pub append_only: bool,
    #[ts(type = "number")]
    pub added_at_ms: i64,
    /// This data directory's id: the hostname of its snapshots.
    pub host_id: String,
    /// Backups the replica holds (including ones deleted here since).
    #[ts(type = "number")]
    pub replicated: u64,
    /// Backups here it does not hold yet.
    #[ts(type = "number")]
    pub behind: u64,
    /// Backups it will not get, with why (see `skipped_reasons`).
    #[ts(type = "number")]
    pub skipped: u64,
    /// How long the oldest backup still to go has waited (null: none waits).
    #[ts(type = "number | null")]
    pub lag_ms: Option<i64>,
    /// `up_to_date`, `behind` (uploading) or `failing` (the last attempt failed).
    pub state: String,
    /// One line: "up to date", or "behind 3, " and the reason.
    pub summary: String,
    pub problem: Option<ReplicaProblem>,
    #[ts(type = "number | null")]
    pub last_success_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub history_at_ms: Option<i64>,
    /// The states' bytes the replica holds, and what uploading them added
    /// to it after deduplication (before compression).
    #[ts(type = "number")]
    pub bytes_replicated: u64,
    #[ts(type = "number")]
    pub bytes_added: u64,
    pub last_verify: Option<ReplicaVerifyReport>,
}

/// A replica forgotten (nothing there was deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RemovedReplica {
    pub name: String,
    pub location: String,
}

/// What to verify: structure always; `read_data` reads and decrypts every
/// pack (or the `subset`, restic's form: `n/m`, `25%`, a size).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct VerifyReplica {
    pub read_data: bool,
    pub subset: Option<String>,
}

/// What a verify found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaVerifyReport {
    pub ok: bool,
    pub read_data: bool,
    #[ts(type = "number")]
    pub checked_at_ms: i64,
    pub seconds: f64,
    /// Engram's snapshots in the repository.
    #[ts(type = "number")]
    pub snapshots: u64,
    /// Distinct state chunks read and decrypted (read-data only).
    #[ts(type = "number")]
    pub blobs_read: u64,
    #[ts(type = "number")]
    pub bytes_read: u64,
    /// Each problem, as restic's check or the read found it.
    pub problems: Vec<String>,
    /// The Engram backups a damaged pack or tree affects.
    #[ts(type = "Array<number>")]
    pub affected_backups: Vec<i64>,
}

/// What a prune forgot and freed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaPruneReport {
    /// Backups whose snapshots were forgotten (deleted here by retention,
    /// neither pinned nor breakthrough).
    #[ts(type = "Array<number>")]
    pub forgotten: Vec<i64>,
    #[ts(type = "number")]
    pub kept: u64,
    #[ts(type = "number")]
    pub packs_removed: u64,
    #[ts(type = "number")]
    pub bytes_freed: u64,
}

/// One backup a replica holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ReplicaBackup {
    #[ts(type = "number")]
    pub backup_id: i64,
    pub snapshot_id: String,
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    /// Whether this data directory still has it.
    pub here: bool,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// A backup to bring back from a replica into the timeline here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct RetrieveBackup {
    #[ts(type = "number")]
    pub backup_id: i64,
}

/// A recovery of a whole timeline from a replica into a new data directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RecoverReport {
    pub data_dir: String,
    pub host_id: String,
    #[ts(type = "Array<number>")]
    pub recovered: Vec<i64>,
    /// Backups left out, each with why (a damaged pack, a failed checksum).
    pub skipped: Vec<String>,
    /// The backup the engines and learners resume from.
    #[ts(type = "number | null")]
    pub resumed_from: Option<i64>,
    #[ts(type = "number")]
    pub history_points: u64,
    #[ts(type = "number")]
    pub bytes: u64,
    pub seconds: f64,
}

/// Where an Engram started on a data directory without Engram data
/// stands: it waits for the user's first-run choice, recovers, or runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FirstRunState {
    /// Nothing runs yet: start fresh or recover from a replica.
    Waiting,
    /// A recovery from a replica is under way (`done` of `total`).
    Recovering,
    /// The engines run (started fresh, recovered, or never waited).
    Running,
}

/// The first-run screen's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FirstRun {
    pub state: FirstRunState,
    pub data_dir: String,
    /// Backups recovered so far, of `total` (0 of 0 until the replica has
    /// answered with its list).
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
    /// Why the last recovery failed (the data directory was left empty).
    pub failed: Option<super::ApiError>,
}

/// Recover the whole timeline from a replica into this (empty) data
/// directory, then start the engines from its newest backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct RecoverHere {
    pub kind: ReplicaKind,
    /// local: a directory path; sftp: `user@host:path`.
    pub location: String,
    #[serde(default)]
    pub port: Option<u16>,
    /// sftp: the private key file.
    #[serde(default)]
    pub identity: Option<String>,
    /// The replicas' key (shown when the replica was added; `engram
    /// replicas key` prints it).
    pub key: String,
    /// The host whose timeline to take, when the replica holds several.
    #[serde(default)]
    pub host: Option<String>,
}
