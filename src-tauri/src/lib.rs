//! The Engram desktop shell. Thin by rule: it starts the same runtime as
//! `engram run` on the same data directory and hands it to the core's API;
//! [`commands`] are one API call each, [`events`] forwards the runtime's
//! events to the window. No learning, no SQL and no JSON built by hand here.

pub mod commands;
pub mod events;

use engram_core::api::Api;
use engram_core::runtime::{RuntimeOptions, default_data_dir};
use std::sync::Arc;
use tauri::{Manager, RunEvent};

/// Registers every command (shared by the app and its mock-runtime test).
pub fn with_commands<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(commands::handler())
}

/// Starts the API on the data directory (`$ENGRAM_DATA_DIR`, else the
/// default). A runtime that cannot start (say, `locked`) is kept as the API's
/// error: the window opens and shows it. A data directory without Engram
/// data starts nothing: the window asks whether to start fresh or recover
/// from a replica (`not_started` until then).
pub fn start_api() -> Arc<Api> {
    let api =
        tauri::async_runtime::block_on(Api::start_or_wait(RuntimeOptions::new(default_data_dir())));
    if let Err(e) = api.runtime() {
        eprintln!("engram-desktop: {e}");
    }
    Arc::new(api)
}

/// Serves the loopback API beside the window, for learners of other
/// processes (they find it through the data directory) and supervised
/// ones (started once it listens). The window itself uses IPC.
/// It starts with the engines (after a first run's choice).
pub fn serve_learner_api(api: Arc<Api>) {
    tauri::async_runtime::spawn(async move {
        let dir = api.started().await.data_dir().to_path_buf();
        match engram_http::start(api, &dir, Default::default()).await {
            Ok(serving) => {
                eprintln!("engram-desktop: learner API on http://{}", serving.addr);
                serving.serve.await;
            }
            Err(e) => eprintln!("engram-desktop: the learner API could not listen: {e}"),
        }
    });
}

/// Runs the desktop app until its window closes; the engines save a final time.
pub fn run() {
    let app = with_commands(tauri::Builder::default())
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
            let api = start_api();
            events::forward(api.clone(), app.handle().clone());
            serve_learner_api(api.clone());
            app.manage(api);
            Ok(())
        })
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
            && let Some(api) = handle.try_state::<Arc<Api>>()
            && api.runtime().is_ok()
            && let Err(e) = tauri::async_runtime::block_on(api.stop_within(Api::STOP_LIMIT))
        {
            eprintln!("engram-desktop: final save failed: {e}");
        }
    });
}
