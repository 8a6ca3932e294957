//! The request and response types of the API: what crosses every front door
//! (HTTP, desktop IPC, CLI `--json`). Serialized with serde; the UI's
//! TypeScript types are generated from these definitions (`ts-rs`, see
//! `api::typescript`), never written by hand.

use crate::error::{Error, ErrorCode};
use crate::runtime::StartupReport;
use crate::snapshot::SnapshotFormat;
use crate::store::{BackupInfo, BackupKind, Breakthrough, Cursor, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// An error as every front door reports it. Clients branch on `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// What every API call returns.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// A backup as the UI, `engram backups list --json` and the API show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Backup {
    #[ts(type = "number")]
    pub id: i64,
    pub kind: BackupKind,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    /// The engines it holds, by name.
    pub engines: Vec<String>,
    /// The learners (engines in other processes) it holds, by name.
    pub learners: Vec<String>,
    /// The step of each learner's state in it (those that gave one).
    #[ts(type = "Record<string, number>")]
    pub learner_steps: BTreeMap<String, u64>,
    /// Each engine's metrics at that instant.
    pub metrics: BTreeMap<String, Metrics>,
    /// The metrics each learner saved with its state in it (those that
    /// gave any).
    pub learner_metrics: BTreeMap<String, Metrics>,
    /// Encoded size of all its states, bytes.
    #[ts(type = "number")]
    pub size: u64,
    pub breakthrough: Option<Breakthrough>,
    /// For imported backups: the source file's manifest summary.
    #[ts(type = "unknown")]
    pub origin: Option<serde_json::Value>,
}

impl From<&BackupInfo> for Backup {
    fn from(b: &BackupInfo) -> Self {
        Backup {
            id: b.id,
            kind: b.kind,
            created_at: crate::rfc3339(b.created_at_ms),
            created_at_ms: b.created_at_ms,
            label: b.label.clone(),
            pinned: b.pinned,
            engines: b.engines.iter().map(|e| e.name.clone()).collect(),
            learners: b.learners.clone(),
            learner_steps: b.learner_steps.clone(),
            learner_metrics: b.learner_metrics.clone(),
            metrics: b
                .engines
                .iter()
                .map(|e| (e.name.clone(), e.metrics.clone()))
                .collect(),
            size: b.engines.iter().map(|e| e.size).sum(),
            breakthrough: b.breakthrough.clone(),
            origin: b
                .origin
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok()),
        }
    }
}

/// One page of backups, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct BackupPage {
    pub items: Vec<Backup>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<Cursor>,
    /// How many backups match the filters in all.
    #[ts(type = "number")]
    pub total: u64,
}

/// Which backups to list (the desktop IPC form; HTTP sends [`ListBackupsQuery`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct ListBackups {
    /// Only these kinds (empty: all).
    pub kinds: Vec<BackupKind>,
    /// Only backups holding this engine.
    pub engine: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many (for jumping; prefer `after` for scrolling).
    #[ts(type = "number | null")]
    pub offset: Option<u64>,
    /// Start after this position (keyset paging).
    pub after: Option<Cursor>,
    /// Only backups whose label or milestone contains this text (ASCII
    /// case ignored; at most 200 characters).
    pub text: Option<String>,
    /// Only pinned backups.
    pub pinned: bool,
}

/// [`ListBackups`] as an HTTP query string: `kind=a,b&engine=…&limit=…&offset=…&after_created_at_ms=…&after_id=…&q=…&pinned=true`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ListBackupsQuery {
    pub kind: Option<String>,
    pub engine: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    pub after_created_at_ms: Option<i64>,
    pub after_id: Option<i64>,
    pub q: Option<String>,
    pub pinned: Option<bool>,
}

/// Backup kinds as a query string gives them: `a,b` (absent or empty: all).
fn parse_kinds(kinds: Option<&str>) -> Result<Vec<BackupKind>, Error> {
    match kinds {
        Some(k) if !k.is_empty() => k.split(',').map(str::parse).collect(),
        _ => Ok(Vec::new()),
    }
}

/// [`TimelineQuery`](crate::store::TimelineQuery) as an HTTP query string:
/// `kind=a,b&from_ms=…&to_ms=…&buckets=…&marks=…`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TimelineQueryForm {
    pub kind: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub buckets: Option<u32>,
    pub marks: Option<u32>,
}

/// Backup kinds as a query string gives them: `a,b` (none: absent).
fn join_kinds(kinds: &[BackupKind]) -> Option<String> {
    (!kinds.is_empty()).then(|| {
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

impl super::QueryForm<crate::store::TimelineQuery> for TimelineQueryForm {
    fn into_request(self) -> Result<crate::store::TimelineQuery, Error> {
        self.try_into()
    }
    fn from_request(q: &crate::store::TimelineQuery) -> Self {
        TimelineQueryForm {
            kind: join_kinds(&q.kinds),
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            buckets: q.buckets,
            marks: q.marks,
        }
    }
}

impl super::QueryForm<ListBackups> for ListBackupsQuery {
    fn into_request(self) -> Result<ListBackups, Error> {
        self.try_into()
    }
    fn from_request(q: &ListBackups) -> Self {
        ListBackupsQuery {
            kind: join_kinds(&q.kinds),
            engine: q.engine.clone(),
            limit: q.limit,
            offset: q.offset,
            after_created_at_ms: q.after.map(|c| c.created_at_ms),
            after_id: q.after.map(|c| c.id),
            q: q.text.clone(),
            pinned: q.pinned.then_some(true),
        }
    }
}

impl super::QueryForm<RetentionRequest> for RetentionQuery {
    fn into_request(self) -> Result<RetentionRequest, Error> {
        self.try_into()
    }
    fn from_request(r: &RetentionRequest) -> Self {
        RetentionQuery {
            ids: (!r.ids.is_empty()).then(|| {
                r.ids
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        }
    }
}

impl TryFrom<TimelineQueryForm> for crate::store::TimelineQuery {
    type Error = Error;
    fn try_from(q: TimelineQueryForm) -> Result<Self, Error> {
        Ok(crate::store::TimelineQuery {
            kinds: parse_kinds(q.kind.as_deref())?,
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            buckets: q.buckets,
            marks: q.marks,
        })
    }
}

impl TryFrom<ListBackupsQuery> for ListBackups {
    type Error = Error;
    fn try_from(q: ListBackupsQuery) -> Result<Self, Error> {
        let kinds = parse_kinds(q.kind.as_deref())?;
        let after = match (q.after_created_at_ms, q.after_id) {
            (Some(created_at_ms), Some(id)) => Some(Cursor { created_at_ms, id }),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidInput(
                    "after_created_at_ms and after_id go together".into(),
                ));
            }
        };
        Ok(ListBackups {
            kinds,
            engine: q.engine,
            limit: q.limit,
            offset: q.offset,
            after,
            text: q.q,
            pinned: q.pinned.unwrap_or(false),
        })
    }
}

/// Take a manual backup now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct CreateBackup {
    pub label: Option<String>,
}

/// Restore a backup: all engines, or only `engine`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct RestoreRequest {
    pub engine: Option<String>,
}

/// Set (or, with null, clear) a backup's label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LabelRequest {
    pub label: Option<String>,
}

/// Which export to make (HTTP: `?format=json|binary`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct ExportRequest {
    pub format: SnapshotFormat,
}

/// An export made in memory: the bytes and how to offer them.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportFile {
    pub file_name: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

/// An export written to a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Exported {
    #[ts(type = "number")]
    pub id: i64,
    pub path: String,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// A backup that was deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Deleted {
    #[ts(type = "number")]
    pub deleted: i64,
}

/// Which backups to ask retention about (empty: every backup).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct RetentionRequest {
    #[ts(type = "number[]")]
    pub ids: Vec<i64>,
}

/// [`RetentionRequest`] as an HTTP query string: `ids=1,2,3`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RetentionQuery {
    pub ids: Option<String>,
}

impl TryFrom<RetentionQuery> for RetentionRequest {
    type Error = Error;
    fn try_from(q: RetentionQuery) -> Result<Self, Error> {
        let ids = match q.ids.as_deref() {
            Some(s) if !s.is_empty() => s
                .split(',')
                .map(|id| {
                    id.trim()
                        .parse::<i64>()
                        .map_err(|_| Error::InvalidInput(format!("ids: {id:?} is not a backup id")))
                })
                .collect::<Result<Vec<i64>, Error>>()?,
            _ => Vec::new(),
        };
        Ok(RetentionRequest { ids })
    }
}

/// What retention says of one backup: why it is kept, and whether the next
/// periodic backup rolls it off (pin it to keep it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RetentionOutlook {
    #[ts(type = "number")]
    pub id: i64,
    /// Each reason it is kept, in words; empty when the next run deletes it.
    pub kept_because: Vec<String>,
    pub rolls_off_next: bool,
}

impl From<crate::store::Outlook> for RetentionOutlook {
    fn from(o: crate::store::Outlook) -> Self {
        RetentionOutlook {
            id: o.id,
            kept_because: o
                .kept_because
                .iter()
                .map(crate::store::KeepReason::describe)
                .collect(),
            rolls_off_next: o.rolls_off_next,
        }
    }
}

/// A hold on a backup: retention keeps it for `seconds` more (0: released).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Hold {
    #[ts(type = "number")]
    pub id: i64,
    pub seconds: u32,
}

/// The result of a restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RestoreReport {
    #[ts(type = "number")]
    pub from_backup: i64,
    pub engines: Vec<String>,
    /// The backup that undoes this restore (null when nothing was live before).
    #[ts(type = "number | null")]
    pub pre_restore_backup: Option<i64>,
}

/// One engine in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct EngineStatus {
    pub metrics: Metrics,
    /// When its live state was last saved (RFC 3339), if ever.
    pub saved_at: Option<String>,
    /// Why the engine is paused: it failed (panicked) in a tick and is not
    /// run or saved until a restore replaces its state. None: running.
    pub paused: Option<String>,
}

/// The state of a data directory and its engines: one shape from the HTTP
/// API, the desktop app and `engram status --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Status {
    /// Latest metrics per engine: live from the running engines, else as saved.
    pub engines: BTreeMap<String, EngineStatus>,
    /// Newest live save (RFC 3339), if ever.
    pub saved_at: Option<String>,
    #[ts(type = "number | null")]
    pub saved_at_ms: Option<i64>,
    /// Engines are running on this data directory (this process or another).
    pub running: bool,
    /// The process that runs them, when known.
    pub pid: Option<String>,
    #[ts(type = "number")]
    pub backups: u64,
    pub data_dir: String,
    /// What happened at start-up (only from the process running the engines).
    pub startup: Option<StartupReport>,
}

/// A setting's type in the settings form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    /// A whole number.
    Integer,
    /// Any number in range.
    Number,
}

/// One field of [`crate::runtime::Settings`]: the single description the
/// validation, the API and the UI's settings form all use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct SettingField {
    /// Path in the settings object, e.g. `retention.keep_daily`.
    pub key: String,
    /// The fieldset it belongs to.
    pub group: String,
    pub label: String,
    pub help: String,
    pub kind: SettingKind,
    pub min: f64,
    pub max: f64,
}

/// One metric's history: `engine`/`key` over `from_ms`–`to_ms` (default:
/// everything up to now), at most `points` points (default 500).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct SeriesRequest {
    pub engine: String,
    pub key: String,
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub to_ms: Option<i64>,
    pub points: Option<u32>,
}
