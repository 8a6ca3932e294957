//! The Engram desktop shell. Thin by rule: it starts the same runtime as
//! `engram run` on the same data directory, and each command takes the state,
//! calls one core function and maps the error to `{ code, message }`. Core
//! events are forwarded to the window as `engram://event`. No learning and no
//! SQL here.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use engram_core::runtime::Event;
use engram_core::runtime::{Runtime, RuntimeOptions, Settings, default_data_dir};
use engram_core::snapshot::{self, SnapshotFormat};
use engram_core::{BackupKind, BackupQuery, Error, view};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{Emitter, Manager, RunEvent};
use tauri_plugin_notification::NotificationExt;

/// Errors as the UI receives them: it branches on `code`.
#[derive(Debug, Serialize)]
struct CommandError {
    code: &'static str,
    message: String,
}

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

type CmdResult<T = Value> = Result<T, CommandError>;

/// The runtime, or why it could not start (shown by the UI on every call).
enum Engine {
    Running(Runtime),
    Failed(CommandError),
}

impl Engine {
    fn get(&self) -> Result<&Runtime, CommandError> {
        match self {
            Engine::Running(r) => Ok(r),
            Engine::Failed(e) => Err(CommandError {
                code: e.code,
                message: e.message.clone(),
            }),
        }
    }
}

fn json<T: Serialize>(v: T) -> CmdResult {
    serde_json::to_value(v).map_err(|e| Error::Encode(e.to_string()).into())
}

#[tauri::command]
async fn status(engine: tauri::State<'_, Engine>) -> CmdResult {
    let rt = engine.get()?;
    let saved_at = rt.with_store(|s| s.live_saved_at()).await?;
    let engines: serde_json::Map<String, Value> = rt
        .metrics()
        .into_iter()
        .map(|(k, m)| (k, serde_json::json!({ "metrics": m })))
        .collect();
    Ok(serde_json::json!({
        "engines": engines,
        "saved_at": saved_at.map(engram_core::rfc3339),
        "running": true,
        "startup": rt.startup_report(),
        "data_dir": rt.data_dir().display().to_string(),
    }))
}

/// The UI's listing query (kinds as names, keyset cursor).
#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    kinds: Vec<String>,
    engine: Option<String>,
    limit: Option<u32>,
    after: Option<engram_core::store::Cursor>,
}

#[tauri::command]
async fn list_backups(engine: tauri::State<'_, Engine>, query: ListQuery) -> CmdResult {
    let kinds = query
        .kinds
        .iter()
        .map(|k| k.parse::<BackupKind>())
        .collect::<engram_core::Result<Vec<_>>>()?;
    let q = BackupQuery {
        kinds,
        engine: query.engine,
        after: query.after,
        offset: 0,
        limit: query.limit.unwrap_or(50),
    };
    let page = engine
        .get()?
        .with_store(move |s| s.list_backups(&q))
        .await?;
    Ok(view::backup_page(&page))
}

#[tauri::command]
async fn get_backup(engine: tauri::State<'_, Engine>, id: i64) -> CmdResult {
    let b = engine.get()?.with_store(move |s| s.get_backup(id)).await?;
    Ok(view::backup(&b))
}

#[tauri::command]
async fn backup_now(engine: tauri::State<'_, Engine>, label: Option<String>) -> CmdResult {
    Ok(view::backup(&engine.get()?.backup_now(label).await?))
}

#[tauri::command]
async fn restore_backup(
    engine: tauri::State<'_, Engine>,
    id: i64,
    engine_name: Option<String>,
) -> CmdResult {
    json(engine.get()?.restore(id, engine_name).await?)
}

#[tauri::command]
async fn set_pinned(engine: tauri::State<'_, Engine>, id: i64, pinned: bool) -> CmdResult {
    let b = engine
        .get()?
        .with_store(move |s| {
            s.set_pinned(id, pinned)?;
            s.get_backup(id)
        })
        .await?;
    Ok(view::backup(&b))
}

#[tauri::command]
async fn delete_backup(engine: tauri::State<'_, Engine>, id: i64) -> CmdResult<()> {
    Ok(engine
        .get()?
        .with_store(move |s| s.delete_backup(id))
        .await?)
}

#[tauri::command]
async fn export_backup(
    engine: tauri::State<'_, Engine>,
    id: i64,
    format: String,
) -> CmdResult<Vec<u8>> {
    let format: SnapshotFormat = format.parse()?;
    Ok(engine
        .get()?
        .with_store(move |s| snapshot::export_backup(s, id, format))
        .await?)
}

/// Writes an export to the path the user chose in the native save dialog.
#[tauri::command]
async fn export_backup_to(
    engine: tauri::State<'_, Engine>,
    id: i64,
    format: String,
    path: String,
) -> CmdResult<u64> {
    let format: SnapshotFormat = format.parse()?;
    let path = std::path::PathBuf::from(path);
    Ok(engine
        .get()?
        .with_store(move |s| snapshot::export_to_file(s, id, format, &path))
        .await?)
}

#[tauri::command]
async fn import_snapshot(engine: tauri::State<'_, Engine>, bytes: Vec<u8>) -> CmdResult {
    let snap = snapshot::parse(&bytes)?;
    let b = engine
        .get()?
        .with_store(move |s| {
            let id = s.import_snapshot(&snap, engram_core::now_ms())?;
            s.get_backup(id)
        })
        .await?;
    Ok(view::backup(&b))
}

#[tauri::command]
async fn verify(engine: tauri::State<'_, Engine>) -> CmdResult {
    json(engine.get()?.with_store(|s| s.verify_all(true)).await?)
}

#[tauri::command]
async fn get_settings(engine: tauri::State<'_, Engine>) -> CmdResult {
    json(engine.get()?.settings().await?)
}

#[tauri::command]
async fn put_settings(engine: tauri::State<'_, Engine>, settings: Settings) -> CmdResult {
    json(engine.get()?.update_settings(settings).await?)
}

fn main() {
    let app = tauri::Builder::default()
        // A second launch hands over to the first and focuses its window.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            let dir = std::env::var_os("ENGRAM_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from)
                .unwrap_or_else(default_data_dir);
            let started = tauri::async_runtime::block_on(Runtime::start(RuntimeOptions::new(dir)));
            let engine = match started {
                Ok(rt) => {
                    let mut events = rt.subscribe();
                    let handle = app.handle().clone();
                    tauri::async_runtime::spawn(async move {
                        loop {
                            match events.recv().await {
                                Ok(ev) => {
                                    if let Event::Breakthrough {
                                        breakthrough: b,
                                        backup_id,
                                    } = &ev
                                    {
                                        // Best effort: a desktop without a notification service still works.
                                        let _ = handle
                                            .notification()
                                            .builder()
                                            .title("Engram: breakthrough backed up")
                                            .body(format!(
                                                "{} {} = {:.3} at step {}{}",
                                                b.engine,
                                                b.metric,
                                                b.value,
                                                b.step,
                                                backup_id
                                                    .map(|id| format!(" (backup #{id})"))
                                                    .unwrap_or_default()
                                            ))
                                            .show();
                                    }
                                    let _ = handle.emit("engram://event", ev);
                                }
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                    continue;
                                }
                                Err(_) => break,
                            }
                        }
                    });
                    Engine::Running(rt)
                }
                Err(e) => {
                    eprintln!("engram-desktop: {e}");
                    Engine::Failed(e.into())
                }
            };
            app.manage(engine);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            status,
            list_backups,
            get_backup,
            backup_now,
            restore_backup,
            set_pinned,
            delete_backup,
            export_backup,
            export_backup_to,
            import_snapshot,
            verify,
            get_settings,
            put_settings
        ])
        .build(tauri::generate_context!("../tauri.conf.json"));
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("engram-desktop: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        // Closing the window saves the engines' state first.
        if let RunEvent::Exit = event
            && let Some(engine) = handle.try_state::<Engine>()
            && let Ok(rt) = engine.get()
            && let Err(e) = tauri::async_runtime::block_on(rt.stop())
        {
            eprintln!("engram-desktop: final save failed: {e}");
        }
    });
}
