//! Portable snapshot files: one backup in a versioned, self-describing file.
//!
//! Two forms share one manifest (see `docs/snapshot-format.md`):
//! - **JSON**: the manifest's fields at the top level plus `states`, each with
//!   the exact encoded bytes in base64 (`data`, authoritative) and a readable
//!   rendering (`readable`, informational).
//! - **Binary**: magic `ENGRAMSN`, format version (u16 LE), manifest length
//!   (u32 LE), the manifest as JSON, each state zstd-compressed in manifest
//!   order, and a blake3 of everything before it.
//!
//! Parsing checks the form, version, sizes and every checksum and decodes every
//! state before anything is written; it never panics on any input.
//!
//! Rooms: this file (the format: its constants, manifest and forms, and
//! taking a checked snapshot into the store), `export` (writing one),
//! `import` (reading and checking one).

mod export;
mod import;
#[cfg(test)]
mod tests;

pub use export::{export_backup, export_to_file, write_export};
pub use import::{from_parts, parse, read_file};

use crate::error::{Error, Result};
use crate::store::{EngineState, NewBackup, Store};
use crate::wire::SnapshotFormat;
use crate::wire::{BackupKind, Breakthrough, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The `format` field of every snapshot.
pub const FORMAT_NAME: &str = "engram-snapshot";
/// The snapshot format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;
/// The version written when a snapshot holds no learner states: readers of
/// version 1 still read it. A snapshot with learners is version 2, so an
/// older reader refuses it instead of dropping the learners silently.
pub const FORMAT_VERSION_WITHOUT_LEARNERS: u32 = 1;
/// The most learners one snapshot may hold.
pub(super) const MAX_LEARNERS: usize = 64;
/// Magic bytes of the binary form.
pub const BINARY_MAGIC: [u8; 8] = *b"ENGRAMSN";
pub(super) const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
pub(super) const MAX_ENGINES: usize = 64;
/// A stored (zstd) state may expand at most this much, plus
/// [`RATIO_SLACK`]: engine states are mostly floats and compress a few
/// times at best; a decompression bomb expands thousands of times.
pub(super) const MAX_COMPRESSION_RATIO: u64 = 1024;
pub(super) const RATIO_SLACK: u64 = 16 * 1024 * 1024;

impl SnapshotFormat {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            SnapshotFormat::Json => "json",
            SnapshotFormat::Binary => "engram",
        }
    }

    /// The media type of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            SnapshotFormat::Json => "application/json",
            SnapshotFormat::Binary => "application/octet-stream",
        }
    }
}

impl std::str::FromStr for SnapshotFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(SnapshotFormat::Json),
            "binary" => Ok(SnapshotFormat::Binary),
            _ => Err(Error::InvalidInput(format!(
                "unknown export format {s:?} (expected json or binary)"
            ))),
        }
    }
}

/// Describes the backup a snapshot holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The Engram version that wrote the file.
    pub app_version: String,
    pub exported_at: String,
    pub backup: ManifestBackup,
    pub engines: Vec<ManifestEngine>,
    /// Learners' states (version 2): raw bytes in each learner's own format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<ManifestLearner>,
}

/// One learner's state in the snapshot (its bytes as the learner saved them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestLearner {
    pub name: String,
    /// The learner's own name for its state format (e.g. `engram.pack/1`).
    pub format: String,
    /// blake3 of the state bytes, hex.
    pub checksum: String,
    pub size: u64,
    /// Compressed size in the binary form (absent in the JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_size: Option<u64>,
    /// The learner's step, if it gave one.
    pub step: Option<u64>,
    #[serde(deserialize_with = "crate::wire::metrics_nan_for_null")]
    pub metrics: Metrics,
}

/// The backup the snapshot was taken from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestBackup {
    pub id: i64,
    pub kind: BackupKind,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub breakthrough: Option<Breakthrough>,
}

/// One engine's state in the snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEngine {
    pub name: String,
    /// Metrics summary at the time of the backup (NaN/±inf written as `null`).
    #[serde(deserialize_with = "crate::wire::metrics_nan_for_null")]
    pub metrics: Metrics,
    /// blake3 of the encoded state, hex.
    pub checksum: String,
    /// Encoded state size in bytes.
    pub size: u64,
    /// Compressed size in the binary form (absent in the JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_size: Option<u64>,
    /// The state's codec format and the engine's schema version.
    pub state_format: u16,
    pub schema: u32,
}

/// The manifest of backup `info` whose states and learners' states are
/// given (no stored sizes: only the binary form has them). Export files
/// and replicas describe a backup with it.
pub fn manifest_of(
    store: &Store,
    info: &crate::store::BackupInfo,
    states: &[EngineState],
    learners: &[(String, crate::wire::LearnerState)],
) -> Result<Manifest> {
    let engines = states
        .iter()
        .map(|s| {
            let header = s.state.header();
            ManifestEngine {
                name: s.engine.clone(),
                metrics: s.metrics.clone(),
                checksum: s.state.checksum().to_hex(),
                size: s.state.len() as u64,
                stored_size: None,
                state_format: header.format,
                schema: header.schema,
            }
        })
        .collect();
    let learners = learners
        .iter()
        .map(|(name, l)| {
            Ok(ManifestLearner {
                name: name.clone(),
                format: store.learner_record(name)?.format,
                checksum: l.checksum.clone(),
                size: l.size,
                stored_size: None,
                step: l.step,
                metrics: l.metrics.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Manifest {
        format: FORMAT_NAME.into(),
        format_version: if learners.is_empty() {
            FORMAT_VERSION_WITHOUT_LEARNERS
        } else {
            FORMAT_VERSION
        },
        app_version: crate::APP_VERSION.into(),
        exported_at: crate::rfc3339(crate::now_ms()),
        backup: ManifestBackup {
            id: info.id,
            kind: info.kind,
            created_at: crate::rfc3339(info.created_at_ms),
            created_at_ms: info.created_at_ms,
            label: info.label.clone(),
            breakthrough: info.breakthrough.clone(),
        },
        engines,
        learners,
    })
}

/// The JSON form as written (import reads it as [`JsonImport`]).
#[derive(Serialize)]
pub(super) struct JsonSnapshot {
    #[serde(flatten)]
    manifest: Manifest,
    states: BTreeMap<String, JsonState>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    learner_states: BTreeMap<String, JsonLearnerState>,
}

/// A learner's state in the JSON form: base64 of its exact bytes.
#[derive(Serialize, Deserialize)]
pub(super) struct JsonLearnerState {
    data: String,
}

#[derive(Serialize)]
pub(super) struct JsonState {
    /// base64 (standard, padded) of the encoded state: the exact value.
    data: String,
    /// A readable rendering; ignored on import.
    readable: serde_json::Value,
}

/// The JSON form as read on import: the manifest's fields spelled out (no
/// `flatten`, which would buffer the whole document as generic values) and
/// the readable rendering skipped without building it.
#[derive(Deserialize)]
pub(super) struct JsonImport {
    format: String,
    format_version: u32,
    app_version: String,
    exported_at: String,
    backup: ManifestBackup,
    engines: Vec<ManifestEngine>,
    states: BTreeMap<String, JsonImportState>,
    #[serde(default)]
    learners: Vec<ManifestLearner>,
    #[serde(default)]
    learner_states: BTreeMap<String, JsonLearnerState>,
}

#[derive(Deserialize)]
pub(super) struct JsonImportState {
    data: String,
    #[serde(default)]
    #[allow(dead_code)] // read past, never kept
    readable: serde::de::IgnoredAny,
}

/// A fully checked snapshot, ready to import.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub states: Vec<EngineState>,
    /// Each learner's state bytes (checked), in manifest order.
    pub learner_states: Vec<Vec<u8>>,
}

impl Store {
    /// Adds a checked snapshot to the timeline as an `imported` backup.
    pub fn import_snapshot(&mut self, snap: &Snapshot, now_ms: i64) -> Result<i64> {
        self.import_snapshot_from(snap, now_ms, None)
    }

    /// [`Store::import_snapshot`], its origin also naming the fleet host
    /// and backup it came from (`from`, kept as the origin's `fleet`).
    pub fn import_snapshot_from(
        &mut self,
        snap: &Snapshot,
        now_ms: i64,
        from: Option<(serde_json::Value, String)>,
    ) -> Result<i64> {
        let b = &snap.manifest.backup;
        let mut origin = serde_json::json!({
            "kind": b.kind,
            "created_at": b.created_at,
            "created_at_ms": b.created_at_ms,
            "source_id": b.id,
            "app_version": snap.manifest.app_version,
            "breakthrough": b.breakthrough,
        });
        let mut label = b
            .label
            .clone()
            .or_else(|| Some(format!("{} backup from {}", b.kind, b.created_at)));
        if let Some((fleet, said)) = from {
            origin["fleet"] = fleet;
            label = Some(said);
        }
        let origin = origin.to_string();
        // A learner here that keeps its states in another format is refused
        // before anything is written.
        for l in &snap.manifest.learners {
            if let Ok(known) = self.learner_record(&l.name)
                && known.format != l.format
            {
                return Err(Error::InvalidSnapshot(format!(
                    "learner {} keeps its states in format {:?} here, the file has {:?}",
                    l.name, known.format, l.format
                )));
            }
        }
        // A small learner state goes inside the database in the import's
        // transaction; a larger one becomes an object (durable) before any
        // row names it.
        let learners = snap
            .manifest
            .learners
            .iter()
            .zip(&snap.learner_states)
            .map(|(l, bytes)| self.learner_to_take_in(l, bytes))
            .collect::<Result<Vec<_>>>()?;
        self.insert_imported(
            &NewBackup {
                kind: BackupKind::Imported,
                created_at_ms: now_ms,
                label,
                breakthrough: None,
                states: &snap.states,
            },
            &origin,
            &learners,
        )
    }

    /// A learner's state from a snapshot or a replica, ready to go in with
    /// its backup: a small one inside the database (in the backup's
    /// transaction), a larger one an object (durable) before any row names it.
    pub fn learner_to_take_in(
        &self,
        l: &ManifestLearner,
        bytes: &[u8],
    ) -> Result<crate::store::ImportedLearner> {
        let inline = (bytes.len() <= crate::limits::INLINE_STATE_BYTES)
            .then(|| crate::store::InlineState::new(bytes.to_vec()))
            .flatten();
        let (object, size) = match &inline {
            Some(i) => (i.checksum(), i.len()),
            None => {
                let info = self.objects().put(bytes)?;
                (info.checksum, info.size)
            }
        };
        Ok(crate::store::ImportedLearner {
            name: l.name.clone(),
            format: l.format.clone(),
            state: crate::store::NewLearnerState {
                generation: None,
                object,
                size,
                step: l.step,
                metrics: l.metrics.clone(),
            },
            inline,
        })
    }

    /// Reads, checks and imports a snapshot file. A bad file changes nothing.
    pub fn import_file(&mut self, path: &Path, now_ms: i64) -> Result<i64> {
        let snap = read_file(path)?;
        self.import_snapshot(&snap, now_ms)
    }
}
