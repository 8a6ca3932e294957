//! JSON views shared by the two front doors — the HTTP API of `engram serve`
//! and the desktop app's IPC — so the UI sees one shape from both.

use crate::store::BackupInfo;
use serde_json::{Value, json};

/// A backup as the UI, `engram backups list --json` and the API show it.
pub fn backup(b: &BackupInfo) -> Value {
    json!({
        "id": b.id,
        "kind": b.kind,
        "created_at": crate::rfc3339(b.created_at_ms),
        "created_at_ms": b.created_at_ms,
        "label": b.label,
        "pinned": b.pinned,
        "engines": b.engines.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        "metrics": b.engines.iter().map(|e| (e.name.clone(), json!(e.metrics))).collect::<serde_json::Map<_, _>>(),
        "size": b.engines.iter().map(|e| e.size).sum::<u64>(),
        "breakthrough": b.breakthrough,
        "origin": b.origin.as_deref().and_then(|o| serde_json::from_str::<Value>(o).ok()),
    })
}

/// A page of backups.
pub fn backup_page(p: &crate::store::BackupPage) -> Value {
    json!({
        "items": p.items.iter().map(backup).collect::<Vec<_>>(),
        "next": p.next,
        "total": p.total,
    })
}
