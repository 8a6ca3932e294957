//! Core events to the window: every event goes out as `engram://event`
//! (the same JSON as the HTTP event stream); a breakthrough also raises a
//! desktop notification, best effort.

use engram_core::api::Api;
use engram_core::wire::Event;
use std::sync::Arc;
use tauri::{AppHandle, Emitter, Runtime};
use tauri_plugin_notification::NotificationExt;
use tokio_stream::StreamExt;

/// The event name the UI listens to.
pub const EVENT: &str = "engram://event";

/// Forwards events from the time the runtime starts (at once, or after a
/// first run's choice) until it stops.
pub fn forward<R: Runtime>(api: Arc<Api>, app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        api.started().await;
        let Ok(mut events) = api.events() else {
            return;
        };
        while let Some(ev) = events.next().await {
            if let Event::Breakthrough {
                breakthrough: b,
                backup_id,
            } = &ev
            {
                // Best effort: a desktop without a notification service still works.
                let backup = backup_id
                    .map(|id| format!(" (backup #{id})"))
                    .unwrap_or_default();
                let _ = app
                    .notification()
                    .builder()
                    .title("Engram: breakthrough backed up")
                    .body(format!(
                        "{} {} = {:.3} at step {}{backup}",
                        b.engine, b.metric, b.value, b.step
                    ))
                    .show();
            }
            let _ = app.emit(EVENT, ev);
        }
    });
}
