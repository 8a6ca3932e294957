//! The types that cross the wire — every request and answer of the API, the
//! runtime's events, and the rows of the store a front door shows — with
//! serde and their TypeScript form (`ts-rs`, rendered by
//! `api::typescript`). The bottom of the core: it imports nothing of it but
//! `error`, so the store, the runtime and the API all build on it and none
//! of them on each other for a type.
//!
//! Must not: hold logic beyond parsing and printing its own forms; read or
//! write anything.

mod backups;
mod compare;
mod drill;
mod fleet;
mod learners;
mod replica;
mod status;

pub use backups::{
    Backup, BackupKind, BackupPage, BackupValue, Breakthrough, CreateBackup, Cursor, Deleted,
    DensityBucket, ExportFile, ExportRequest, Exported, FallFound, FindFall, Hold, IntegrityReport,
    KindCount, KindStorage, LabelRequest, ListBackups, ListBackupsQuery, MetricLine,
    MetricLineRequest, Metrics, RestoreReport, RestoreRequest, RetentionOutlook, RetentionPolicy,
    RetentionQuery, RetentionRequest, SkipNote, SnapshotFormat, StorageDay, StorageReport,
    TimelineMark, TimelineQuery, TimelineQueryForm, TimelineView, VerifyProblem,
};
pub use compare::{
    ArrayChange, CompareRequest, ComparedMetric, ComparedState, Comparison, Counted, EntryChange,
    Inside, PolicyMaps, compare_metrics,
};
pub use drill::{DrillRequest, DrillResult, Drills, LearnerDrill, SetLearnerDrill};
pub use fleet::{
    FleetBackup, FleetBackupPage, FleetBackupsQuery, FleetCursor, FleetHost, FleetJoin, FleetLeft,
    FleetMark, FleetName, FleetProblem, FleetRestore, FleetRestoreReport, FleetSeries, FleetState,
    FleetStatus, FleetTimeline, FleetTimelineQuery,
};
pub use learners::{
    AttachLearner, LearnerCommand, LearnerInfo, LearnerMetric, LearnerState, LearnerStateExported,
    LeasedSave, LogMetrics, Logged, LoggedPoint, MilestoneRule, ProcessPhase, ProcessStatus,
    ReadLearnerState, RemovedLearner, ReportMilestone, SaveLearnerState, SaveLearnerStateQuery,
    SaveLeasedState, SaveLeasedStateQuery, SetLearnerCommand, SetMetricInfo, SetMilestoneRules,
    SlotLease,
};
pub use replica::{
    AddReplica, FirstRun, FirstRunState, OffsiteMark, RecoverHere, RecoverReport, RemovedReplica,
    ReplicaAdded, ReplicaBackup, ReplicaKey, ReplicaKind, ReplicaProblem, ReplicaPruneReport,
    ReplicaStatus, ReplicaVerifyReport, RetrieveBackup, VerifyReplica,
};
pub use status::{
    EngineStatus, Event, HistoryBranch, MetricFormat, MetricInfo, MetricSeries, NotRunning,
    SeriesPoint, SeriesRequest, SettingField, SettingKind, Settings, StartupReport, Status,
};

use crate::error::{Error, ErrorCode};
use serde::de::DeserializeOwned;
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

/// A request's form in a query string, when the request itself is not
/// flat (lists, nested cursors): converted both ways, checked on the way in.
pub trait QueryForm<R>: Serialize + DeserializeOwned + Sized {
    fn into_request(self) -> crate::Result<R>;
    fn from_request(request: &R) -> Self;
}

/// A flat request is its own query form.
impl<R: Serialize + DeserializeOwned + Clone> QueryForm<R> for R {
    fn into_request(self) -> crate::Result<R> {
        Ok(self)
    }
    fn from_request(request: &R) -> Self {
        request.clone()
    }
}

/// Reads metrics written as JSON, where a NaN or infinity was written as
/// `null` (JSON has no such numbers): `null` comes back as NaN.
pub fn metrics_nan_for_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Metrics, D::Error> {
    let raw: BTreeMap<String, Option<f64>> = Deserialize::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// An `f64` written as JSON: `null` (a NaN or infinity) comes back as NaN.
pub fn f64_nan_for_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<f64, D::Error> {
    let v: Option<f64> = Deserialize::deserialize(d)?;
    Ok(v.unwrap_or(f64::NAN))
}
