//! The desktop app's IPC commands. Each takes the API from Tauri's state,
//! calls one `engram_core::api` function and returns its typed result or
//! `ApiError` (`{code, message}`) — nothing else. Bytes cross as raw IPC
//! bodies (`tauri::ipc::Request` / `Response`), not JSON arrays of numbers.

use engram_core::Error;
use engram_core::api::{
    Api, ApiError, ApiResult, Backup, BackupPage, CreateBackup, Deleted, ExportRequest, Exported,
    Hold, LabelRequest, LearnerStateExported, ListBackups, ReadLearnerState, RestoreReport,
    RestoreRequest, RetentionOutlook, RetentionRequest, SeriesRequest, SetLearnerCommand,
    SetMetricInfo, SetMilestoneRules, SettingField, Status, VerifyReport,
};
use engram_core::engines::catalog::MetricInfo;
use engram_core::runtime::Settings;
use engram_core::store::{
    LearnerInfo, MetricSeries, RemovedLearner, StorageReport, TimelineQuery, TimelineView,
};
use std::sync::Arc;
use tauri::State;
use tauri::ipc::{InvokeBody, Request, Response};

#[tauri::command]
pub async fn status(api: State<'_, Arc<Api>>) -> ApiResult<Status> {
    api.status().await
}

#[tauri::command]
pub async fn list_backups(api: State<'_, Arc<Api>>, query: ListBackups) -> ApiResult<BackupPage> {
    api.list_backups(query).await
}

#[tauri::command]
pub async fn get_backup(api: State<'_, Arc<Api>>, id: i64) -> ApiResult<Backup> {
    api.get_backup(id).await
}

#[tauri::command]
pub async fn create_backup(api: State<'_, Arc<Api>>, request: CreateBackup) -> ApiResult<Backup> {
    api.create_backup(request).await
}

#[tauri::command]
pub async fn restore_backup(
    api: State<'_, Arc<Api>>,
    id: i64,
    request: RestoreRequest,
) -> ApiResult<RestoreReport> {
    api.restore_backup(id, request).await
}

#[tauri::command]
pub async fn set_pinned(api: State<'_, Arc<Api>>, id: i64, pinned: bool) -> ApiResult<Backup> {
    api.set_pinned(id, pinned).await
}

#[tauri::command]
pub async fn set_label(
    api: State<'_, Arc<Api>>,
    id: i64,
    request: LabelRequest,
) -> ApiResult<Backup> {
    api.set_label(id, request).await
}

#[tauri::command]
pub async fn hold_backup(api: State<'_, Arc<Api>>, id: i64) -> ApiResult<Hold> {
    api.hold_backup(id).await
}

#[tauri::command]
pub async fn release_backup(api: State<'_, Arc<Api>>, id: i64) -> ApiResult<Hold> {
    api.release_backup(id).await
}

#[tauri::command]
pub async fn timeline(api: State<'_, Arc<Api>>, query: TimelineQuery) -> ApiResult<TimelineView> {
    api.timeline(query).await
}

#[tauri::command]
pub async fn learners(api: State<'_, Arc<Api>>) -> ApiResult<Vec<LearnerInfo>> {
    api.learners().await
}

#[tauri::command]
pub async fn learner(api: State<'_, Arc<Api>>, name: String) -> ApiResult<LearnerInfo> {
    api.learner(name).await
}

#[tauri::command]
pub async fn set_learner_command(
    api: State<'_, Arc<Api>>,
    name: String,
    request: SetLearnerCommand,
) -> ApiResult<LearnerInfo> {
    api.set_learner_command(name, request).await
}

#[tauri::command]
pub async fn remove_learner_command(
    api: State<'_, Arc<Api>>,
    name: String,
) -> ApiResult<LearnerInfo> {
    api.remove_learner_command(name).await
}

#[tauri::command]
pub async fn set_learner_milestone_rules(
    api: State<'_, Arc<Api>>,
    name: String,
    request: SetMilestoneRules,
) -> ApiResult<LearnerInfo> {
    api.set_learner_milestone_rules(name, request).await
}

#[tauri::command]
pub async fn set_learner_metric_info(
    api: State<'_, Arc<Api>>,
    name: String,
    request: SetMetricInfo,
) -> ApiResult<LearnerInfo> {
    api.set_learner_metric_info(name, request).await
}

#[tauri::command]
pub async fn remove_learner(api: State<'_, Arc<Api>>, name: String) -> ApiResult<RemovedLearner> {
    api.remove_learner(name).await
}

#[tauri::command]
pub async fn start_learner(api: State<'_, Arc<Api>>, name: String) -> ApiResult<LearnerInfo> {
    api.start_learner(name).await
}

#[tauri::command]
pub async fn stop_learner(api: State<'_, Arc<Api>>, name: String) -> ApiResult<LearnerInfo> {
    api.stop_learner(name).await
}

#[tauri::command]
pub async fn storage(api: State<'_, Arc<Api>>) -> ApiResult<StorageReport> {
    api.storage().await
}

#[tauri::command]
pub async fn delete_backup(api: State<'_, Arc<Api>>, id: i64) -> ApiResult<Deleted> {
    api.delete_backup(id).await
}

/// The export's bytes as a raw IPC response (an `ArrayBuffer` in the page).
#[tauri::command]
pub async fn export_backup(
    api: State<'_, Arc<Api>>,
    id: i64,
    request: ExportRequest,
) -> ApiResult<Response> {
    Ok(Response::new(api.export_backup(id, request).await?.bytes))
}

/// Writes an export to the path the user chose in the native save dialog.
#[tauri::command]
pub async fn export_backup_to(
    api: State<'_, Arc<Api>>,
    id: i64,
    request: ExportRequest,
    path: std::path::PathBuf,
) -> ApiResult<Exported> {
    api.export_backup_to(id, request, path).await
}

/// Writes a learner's state (in a backup, or live) to the path the user
/// chose in the native save dialog.
#[tauri::command]
pub async fn read_learner_state_to(
    api: State<'_, Arc<Api>>,
    name: String,
    request: ReadLearnerState,
    path: std::path::PathBuf,
) -> ApiResult<LearnerStateExported> {
    api.read_learner_state_to(name, request, path).await
}

/// The snapshot file arrives as the raw IPC body.
#[tauri::command]
pub async fn import_snapshot(api: State<'_, Arc<Api>>, body: Request<'_>) -> ApiResult<Backup> {
    match body.body() {
        InvokeBody::Raw(bytes) => api.import_snapshot(bytes).await,
        InvokeBody::Json(_) => Err(not_raw()),
    }
}

#[tauri::command]
pub async fn verify(api: State<'_, Arc<Api>>) -> ApiResult<VerifyReport> {
    api.verify().await
}

#[tauri::command]
pub async fn retention(
    api: State<'_, Arc<Api>>,
    request: Option<RetentionRequest>,
) -> ApiResult<Vec<RetentionOutlook>> {
    api.retention(request.unwrap_or_default()).await
}

#[tauri::command]
pub async fn get_settings(api: State<'_, Arc<Api>>) -> ApiResult<Settings> {
    api.settings().await
}

/// Changes only the settings it names.
#[tauri::command]
pub async fn put_settings(
    api: State<'_, Arc<Api>>,
    settings: serde_json::Value,
) -> ApiResult<Settings> {
    api.patch_settings(settings).await
}

#[tauri::command]
pub fn settings_schema(api: State<'_, Arc<Api>>) -> Vec<SettingField> {
    api.settings_schema()
}

#[tauri::command]
pub async fn metric_series(
    api: State<'_, Arc<Api>>,
    request: SeriesRequest,
) -> ApiResult<MetricSeries> {
    api.metric_series(request).await
}

#[tauri::command]
pub async fn metric_catalog(api: State<'_, Arc<Api>>) -> ApiResult<Vec<MetricInfo>> {
    api.metric_catalog().await
}

fn not_raw() -> ApiError {
    Error::InvalidInput("import expects the snapshot file as raw bytes".into()).into()
}
