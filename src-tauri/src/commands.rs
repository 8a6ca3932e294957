//! The desktop app's IPC commands, from the core's declaration of
//! operations: [`handler`] dispatches every declared operation by name to
//! one generic call ([`run`]) — the key from its argument (`id`, `name`),
//! the request from `request` (absent: the default), the API's typed result
//! or its `{code, message}`. The few commands that move bytes (raw IPC
//! bodies, not JSON arrays of numbers) or write a file the user chose in a
//! native dialog are written out below.

use engram_core::Error;
use engram_core::api::{Api, Operation, op};
use engram_core::wire::{
    ApiError, ApiResult, Backup, ExportRequest, Exported, LearnerStateExported, ReadLearnerState,
};
use serde_json::Value;
use std::sync::Arc;
use tauri::ipc::{Invoke, InvokeBody, InvokeError, Request, Response};
use tauri::{Manager, Runtime, State};

/// The invoke handler: every declared operation, then the byte commands.
pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    let bytes: fn(Invoke<R>) -> bool = tauri::generate_handler![
        export_backup,
        export_backup_to,
        read_learner_state_to,
        import_snapshot,
    ];
    move |invoke: Invoke<R>| {
        let command = invoke.message.command().to_string();
        macro_rules! dispatch {
            ($($name:ident)*) => {
                match command.as_str() {
                    $(stringify!($name) => run::<op::$name, R>(invoke),)*
                    _ => return bytes(invoke),
                }
            };
        }
        engram_core::for_each_operation_name!(dispatch);
        true
    }
}

/// One declared operation: its arguments parsed, the API called, the
/// answer or the error sent back.
fn run<O: Operation, R: Runtime>(invoke: Invoke<R>) {
    let Some(api) = invoke
        .message
        .webview()
        .try_state::<Arc<Api>>()
        .map(|s| s.inner().clone())
    else {
        let e: ApiError = Error::Internal("the API is not managed by this app".into()).into();
        return invoke.resolver.reject(e);
    };
    match arguments::<O>(invoke.message.payload()) {
        Ok((key, request)) => invoke.resolver.respond_async(async move {
            O::call(&api, key, request).await.map_err(InvokeError::from)
        }),
        Err(e) => invoke.resolver.reject(e),
    }
}

/// `{ <key>: …, request: … }`; a missing request is the default one.
fn arguments<O: Operation>(body: &InvokeBody) -> ApiResult<(O::Key, O::Request)> {
    let empty = serde_json::Map::new();
    let args = match body {
        InvokeBody::Json(Value::Object(map)) => map,
        InvokeBody::Json(Value::Null) => &empty,
        _ => {
            return Err(Error::InvalidInput(format!(
                "{} expects its arguments as a JSON object",
                O::NAME
            ))
            .into());
        }
    };
    let bad = |what: &str, e: serde_json::Error| -> ApiError {
        Error::InvalidInput(format!("{}: {what}: {e}", O::NAME)).into()
    };
    let key = match O::KEY {
        None => serde_json::from_value(Value::Null).map_err(|e| bad("key", e))?,
        Some(k) => serde_json::from_value(args.get(k).cloned().unwrap_or(Value::Null))
            .map_err(|e| bad(k, e))?,
    };
    let request = match args.get("request") {
        None | Some(Value::Null) => O::Request::default(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad("request", e))?,
    };
    Ok((key, request))
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

fn not_raw() -> ApiError {
    Error::InvalidInput("import expects the snapshot file as raw bytes".into()).into()
}
