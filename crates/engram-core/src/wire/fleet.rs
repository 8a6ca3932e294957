//! The fleet catalog: joining one, how this host's sync stands, and what
//! the catalog shows of every host (read from PostgreSQL only).

use super::{BackupKind, DensityBucket, Metrics};
use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Joining a fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct FleetJoin {
    /// `postgresql://user:password@host:port/database` (`?sslmode=require`
    /// for TLS). Kept in `fleet.conf`, owner-only.
    pub url: String,
    /// This host's name in the fleet (default: the system's host name, or
    /// the name set before).
    pub name: Option<String>,
    /// This data directory moved to another machine: take its host id
    /// over from where it was.
    pub take_over: bool,
    /// This data directory is a copy of another member's: give it an id of
    /// its own.
    pub new_id: bool,
}

/// Renaming this host in the fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetName {
    pub name: String,
}

/// What went wrong with the fleet, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetProblem {
    pub code: ErrorCode,
    pub message: String,
    #[ts(type = "number")]
    pub at_ms: i64,
}

/// How this host's membership stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetStatus {
    pub joined: bool,
    /// The fleet's URL without its password.
    pub url: Option<String>,
    pub host_id: String,
    pub name: String,
    /// `not_joined`, `up_to_date`, `behind` (sending) or `failing`.
    pub state: String,
    /// One line for a person.
    pub summary: String,
    /// Changes waiting to be sent.
    #[ts(type = "number")]
    pub queued: u64,
    /// How long the oldest waiting change has waited.
    #[ts(type = "number | null")]
    pub lag_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub joined_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_success_at_ms: Option<i64>,
    /// Rows sent since joining.
    #[ts(type = "number")]
    pub pushed_rows: u64,
    /// Rows the fleet refused (left out of the catalog), and why for the
    /// newest.
    #[ts(type = "number")]
    pub refused_rows: u64,
    pub last_refused: Option<String>,
    pub problem: Option<FleetProblem>,
}

/// Leaving a fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetLeft {
    /// Whether this host was a member.
    pub was_member: bool,
    /// Whether its rows were removed from the catalog too (false when the
    /// fleet could not be reached: they stay, marked stale).
    pub removed_from_catalog: bool,
    pub message: String,
}

/// A host of the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetHost {
    pub host_id: String,
    pub name: String,
    #[ts(type = "number")]
    pub joined_at_ms: i64,
    #[ts(type = "number | null")]
    pub last_sync_at_ms: Option<i64>,
    /// How long since its last sync (as PostgreSQL's clock sees it).
    #[ts(type = "number | null")]
    pub lag_ms: Option<i64>,
    /// No sync for over a minute: down, offline or failing.
    pub stale: bool,
    pub engram_version: String,
    #[ts(type = "number")]
    pub backups: u64,
    #[ts(type = "number | null")]
    pub newest_backup_ms: Option<i64>,
    /// Its engines and learners (not deleted).
    pub units: Vec<String>,
    /// The host asking.
    pub this_host: bool,
}

/// Which backups of the fleet to list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct FleetBackupsQuery {
    /// Only this host (its id or its name).
    pub host: Option<String>,
    /// Only backups holding this learner's or engine's state.
    pub learner: Option<String>,
    /// Only this kind.
    pub kind: Option<BackupKind>,
    /// Page size (default 50, at most 1,000).
    pub limit: Option<u32>,
    /// Keyset paging: start after this backup (from the page's `next`).
    #[ts(type = "number | null")]
    pub after_created_at_ms: Option<i64>,
    pub after_host: Option<String>,
    #[ts(type = "number | null")]
    pub after_id: Option<i64>,
}

/// One state in a fleet backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetState {
    pub name: String,
    /// `engine` or `learner`.
    pub kind: String,
    /// blake3 of the state, hex.
    pub checksum: String,
    #[ts(type = "number")]
    pub size: u64,
    #[ts(type = "number | null")]
    pub step: Option<u64>,
    pub metrics: Metrics,
}

/// A backup of some host of the fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetBackup {
    pub host_id: String,
    pub host_name: String,
    #[ts(type = "number")]
    pub id: i64,
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    /// A breakthrough's milestone: `{engine, rule, metric, value, step}`.
    #[ts(type = "Record<string, unknown> | null")]
    pub milestone: Option<serde_json::Value>,
    pub states: Vec<FleetState>,
    #[ts(type = "number")]
    pub bytes: u64,
    /// The replica repositories (ids) that hold it: where another host can
    /// read it from.
    pub replicas: Vec<String>,
}

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetCursor {
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub host: String,
    #[ts(type = "number")]
    pub id: i64,
}

/// One page of the fleet's backups, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetBackupPage {
    pub backups: Vec<FleetBackup>,
    pub next: Option<FleetCursor>,
}

/// Restoring here a backup another host (or this one) made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct FleetRestore {
    /// The host that made it (its id or its name).
    pub host: String,
    /// Its id on that host.
    #[ts(type = "number")]
    pub backup: i64,
    /// Only this engine or learner (default: every state it holds).
    pub only: Option<String>,
}

/// What a restore across hosts did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetRestoreReport {
    /// The backup as it is now here (`imported`, its origin naming the
    /// host and backup it came from).
    #[ts(type = "number")]
    pub imported_as: i64,
    /// The restore of it (with the pre-restore backup that undoes it).
    pub restore: super::RestoreReport,
    /// The learners whose state was restored here.
    pub learners: Vec<String>,
    /// Every state's hash was checked against the fleet's record.
    pub verified: Vec<String>,
}

/// Which part of the all-hosts timeline to summarise.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct FleetTimelineQuery {
    /// Only this host (its name or id).
    pub host: Option<String>,
    /// Only these kinds, comma-separated (`breakthrough,manual`; empty: all).
    pub kinds: Option<String>,
    /// The range, inclusive (default: the oldest to the newest backup).
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub to_ms: Option<i64>,
    /// About how many buckets (default 200, at most 4,000); over a range
    /// of hours or more they are whole hours, so each may be a little wider.
    pub buckets: Option<u32>,
    /// Draw backups one by one when the range holds at most this many
    /// (default 1,000, at most 5,000).
    pub marks: Option<u32>,
}

/// A backup of some host drawn on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetMark {
    pub host_id: String,
    pub host_name: String,
    #[ts(type = "number")]
    pub id: i64,
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub pinned: bool,
    pub label: Option<String>,
}

/// The all-hosts timeline of a range (read from PostgreSQL).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetTimeline {
    #[ts(type = "number | null")]
    pub first_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_ms: Option<i64>,
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
    #[ts(type = "number")]
    pub in_range: u64,
    #[ts(type = "number")]
    pub total: u64,
    pub buckets: Vec<DensityBucket>,
    /// Backups drawn one by one, oldest first: every one of the range when
    /// `complete`, else initial, milestone and pinned ones (the newest, up
    /// to the limit).
    pub marks: Vec<FleetMark>,
    pub complete: bool,
}

/// One host's curve of a metric (see `fleet_series`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FleetSeries {
    pub host_id: String,
    pub host_name: String,
    /// Bucket means (weighted by the saves each stored point folds), with
    /// the bucket's min and max, oldest first.
    pub points: Vec<super::SeriesPoint>,
    /// Stored points the curve was made from.
    #[ts(type = "number")]
    pub stored: u64,
}
