//! Backups as they cross the wire: a backup and its pages, what asks for
//! them (listings, timelines, retention, exports, restores) and what the
//! store reports of them (storage, integrity).

use crate::error::{Error, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

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
    /// Where it stands with the offsite replicas; null when none is set up.
    #[serde(default)]
    pub offsite: Option<crate::wire::OffsiteMark>,
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

/// [`TimelineQuery`](crate::wire::TimelineQuery) as an HTTP query string:
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

impl super::QueryForm<crate::wire::TimelineQuery> for TimelineQueryForm {
    fn into_request(self) -> Result<crate::wire::TimelineQuery, Error> {
        self.try_into()
    }
    fn from_request(q: &crate::wire::TimelineQuery) -> Self {
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

impl TryFrom<TimelineQueryForm> for crate::wire::TimelineQuery {
    type Error = Error;
    fn try_from(q: TimelineQueryForm) -> Result<Self, Error> {
        Ok(crate::wire::TimelineQuery {
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

/// Metric name -> value; a small summary kept beside every stored state.
pub type Metrics = BTreeMap<String, f64>;

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

/// What an engine reported when a breakthrough rule fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Breakthrough {
    pub engine: String,
    pub rule: String,
    pub metric: String,
    #[serde(deserialize_with = "super::f64_nan_for_null")]
    pub value: f64,
    #[ts(type = "number")]
    pub step: u64,
}

/// Where a page of the backup list starts: just after this (created_at, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Cursor {
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number")]
    pub id: i64,
}

/// Which file form to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SnapshotFormat {
    /// Manifest + base64 states + a readable rendering; any tool can read it.
    #[default]
    Json,
    /// Manifest + zstd-compressed sections; compact.
    Binary,
}

/// What part of the timeline to summarise.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct TimelineQuery {
    /// Only these kinds (empty: all).
    pub kinds: Vec<BackupKind>,
    /// The range, inclusive (default: the oldest to the newest backup).
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub to_ms: Option<i64>,
    /// How many equal buckets to count in (default 200, at most 4,000).
    pub buckets: Option<u32>,
    /// Draw backups one by one when the range holds at most this many
    /// (default 1,000, at most 5,000).
    pub marks: Option<u32>,
}

/// One backup drawn on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineMark {
    #[ts(type = "number")]
    pub id: i64,
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub pinned: bool,
    pub label: Option<String>,
    pub breakthrough: Option<Breakthrough>,
}

/// How many backups of one kind a bucket holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct KindCount {
    pub kind: BackupKind,
    pub count: u32,
}

/// One time bucket with backups in it (empty buckets are left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct DensityBucket {
    #[ts(type = "number")]
    pub start_ms: i64,
    /// Exclusive.
    #[ts(type = "number")]
    pub end_ms: i64,
    pub counts: Vec<KindCount>,
}

/// The timeline of a range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineView {
    /// The oldest and newest backup of any kind: the whole history, which
    /// the axis always spans when not zoomed. Null when there are none.
    #[ts(type = "number | null")]
    pub first_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub last_ms: Option<i64>,
    /// The range summarised.
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
    /// Backups of the chosen kinds in the range, and in all.
    #[ts(type = "number")]
    pub in_range: u64,
    #[ts(type = "number")]
    pub total: u64,
    pub buckets: Vec<DensityBucket>,
    /// Backups drawn one by one, oldest first.
    pub marks: Vec<TimelineMark>,
    /// True when `marks` holds every backup of the range; false when the
    /// range holds more than the limit and `marks` holds only the initial
    /// backup, milestones and pinned backups (the initial one and the
    /// newest others, up to the limit).
    pub complete: bool,
}

/// What the data directory's database holds and how well it is packed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct StorageReport {
    /// The database file's pages, and the pages free for reuse inside it.
    #[ts(type = "number")]
    pub db_bytes: u64,
    #[ts(type = "number")]
    pub free_bytes: u64,
    /// The write-ahead log on disk now (checkpoints fold it back).
    #[ts(type = "number")]
    pub wal_bytes: u64,
    #[ts(type = "number")]
    pub backups: u64,
    /// Distinct state contents kept for backups (each stored once).
    #[ts(type = "number")]
    pub blobs: u64,
    /// What every backup's states add up to, encoded, as if each were
    /// stored separately.
    #[ts(type = "number")]
    pub referenced_bytes: u64,
    /// The distinct contents among them, encoded.
    #[ts(type = "number")]
    pub unique_bytes: u64,
    /// The distinct contents as stored (compressed).
    #[ts(type = "number")]
    pub stored_bytes: u64,
    /// The engines' live states (overwritten by every autosave).
    #[ts(type = "number")]
    pub live_bytes: u64,
    /// Stored metric history points (all resolutions).
    #[ts(type = "number")]
    pub history_points: u64,
    /// Distinct learner states that learners' live states and backups name.
    #[ts(type = "number")]
    pub learner_states: u64,
    /// What those names add up to, as if each were stored separately.
    #[ts(type = "number")]
    pub learner_referenced_bytes: u64,
    /// The distinct learner states kept inside the database (small ones)...
    #[ts(type = "number")]
    pub learner_inline_bytes: u64,
    /// ...and those kept as files (under `objects/`, or a learner's slot).
    #[ts(type = "number")]
    pub learner_file_bytes: u64,
    /// What learners' slot files take on disk (`slots/`): each learner's
    /// live state and the slots its saves overwrite in place (up to four).
    #[ts(type = "number")]
    pub learner_slot_bytes: u64,
    /// Per backup kind: how many, and the stored bytes its backups added
    /// (each content counted once, for the oldest backup that holds it).
    pub by_kind: Vec<KindStorage>,
    /// Per UTC day that kept backups were taken on: how many, and the stored
    /// bytes they added (as in `by_kind`), oldest first.
    pub growth: Vec<StorageDay>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct KindStorage {
    pub kind: BackupKind,
    #[ts(type = "number")]
    pub backups: u64,
    #[ts(type = "number")]
    pub added_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct StorageDay {
    /// The day's start, unix milliseconds (UTC).
    #[ts(type = "number")]
    pub day_ms: i64,
    #[ts(type = "number")]
    pub backups: u64,
    #[ts(type = "number")]
    pub added_bytes: u64,
}

/// One thing found wrong by a verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct VerifyProblem {
    /// The backup (None for a live state or the database as a whole).
    #[ts(type = "number | null")]
    pub backup_id: Option<i64>,
    pub engine: Option<String>,
    /// Stable error code, as in [`Error::code`].
    pub code: ErrorCode,
    pub detail: String,
}

/// The result of verifying backups and the database.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "VerifyReport")]
pub struct IntegrityReport {
    #[ts(type = "number")]
    pub backups_checked: u64,
    #[ts(type = "number")]
    pub states_checked: u64,
    /// `PRAGMA quick_check` / `integrity_check` said "ok".
    pub database_ok: bool,
    pub problems: Vec<VerifyProblem>,
}

/// Something skipped while loading, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SkipNote {
    pub engine: String,
    /// "live" or `"backup <id>"`.
    pub what: String,
    pub code: ErrorCode,
    pub detail: String,
}

/// How many rolling backups to keep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct RetentionPolicy {
    /// Keep the newest N periodic backups.
    pub keep_last_periodic: u32,
    /// Also keep the newest periodic backup of each of the last N hours that have one.
    pub keep_hourly: u32,
    /// … of each of the last N days (UTC) that have one.
    pub keep_daily: u32,
    /// … of each of the last N weeks (ISO, Monday first) that have one.
    pub keep_weekly: u32,
    /// Keep the newest N pre-restore backups (the undo history of restores).
    pub keep_last_pre_restore: u32,
}

/// One backup's value of a metric (see `metric_in_backups`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct BackupValue {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    pub kind: BackupKind,
    /// Null where that backup's state carries no such metric.
    pub value: Option<f64>,
}

/// Which metric to follow across the backups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct MetricLineRequest {
    /// A built-in engine or a learner.
    pub engine: String,
    pub key: String,
    /// Also its value in the backups on other lines of history (those a
    /// restore left), in `elsewhere`.
    pub other_lines: bool,
}

/// A metric's value in every backup along the current line of history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct MetricLine {
    pub engine: String,
    pub key: String,
    /// Along the current line of history, oldest first.
    pub backups: Vec<BackupValue>,
    /// The backups holding its state on other lines of history, oldest
    /// first (asked with `other_lines`; empty otherwise).
    pub elsewhere: Vec<BackupValue>,
}

/// Where along the current line of history a metric first fell below a
/// threshold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct FindFall {
    pub engine: String,
    pub key: String,
    pub below: f64,
}

/// The answer of `find_fall`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct FallFound {
    /// The last backup at or above the threshold before the fall, and the
    /// first below it (both null when it never fell).
    pub last_good: Option<BackupValue>,
    pub fell_at: Option<BackupValue>,
    /// Backups along the line holding that state, and how many of them
    /// carry no value of the metric.
    #[ts(type = "number")]
    pub checked: u64,
    #[ts(type = "number")]
    pub without_value: u64,
    /// Backups drilled to find it (`bisect_fall`), in the order they were.
    #[serde(default)]
    #[ts(type = "Array<number>")]
    pub drilled: Vec<i64>,
}
