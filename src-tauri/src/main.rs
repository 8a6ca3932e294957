//! The Engram desktop shell. Thin by rule: commands take state, call one core
//! function and map errors to `{ code, message }`. No learning, no SQL here.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use serde::Serialize;

/// What the UI shows about this build.
#[derive(Serialize)]
struct AppInfo {
    version: &'static str,
    schema_version: i64,
}

/// Errors as the UI receives them: it branches on `code`.
#[derive(Serialize)]
struct CommandError {
    code: &'static str,
    message: String,
}

impl From<engram_core::Error> for CommandError {
    fn from(e: engram_core::Error) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

#[tauri::command]
fn app_info() -> Result<AppInfo, CommandError> {
    Ok(AppInfo {
        version: engram_core::APP_VERSION,
        schema_version: engram_core::store::SCHEMA_VERSION,
    })
}

fn main() {
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![app_info])
        .run(tauri::generate_context!("../tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("engram-desktop: {e}");
        std::process::exit(1);
    }
}
