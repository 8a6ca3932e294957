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

use crate::codec::{Checksum, EncodedState};
use crate::error::{Error, Result};
use crate::limits::MAX_STATE_BYTES;
use crate::limits::{MAX_METRICS, MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_STATE_BYTES};
use crate::store::blob::{compress, decompress_exact};
use crate::store::{EngineState, NewBackup, Store, validate_engine_name};
use crate::wire::SnapshotFormat;
use crate::wire::{BackupKind, Breakthrough, Metrics};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
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
const MAX_LEARNERS: usize = 64;
/// Magic bytes of the binary form.
pub const BINARY_MAGIC: [u8; 8] = *b"ENGRAMSN";
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
const MAX_ENGINES: usize = 64;
/// A stored (zstd) state may expand at most this much, plus
/// [`RATIO_SLACK`]: engine states are mostly floats and compress a few
/// times at best; a decompression bomb expands thousands of times.
const MAX_COMPRESSION_RATIO: u64 = 1024;
const RATIO_SLACK: u64 = 16 * 1024 * 1024;

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

/// The JSON form as written (import reads it as [`JsonImport`]).
#[derive(Serialize)]
struct JsonSnapshot {
    #[serde(flatten)]
    manifest: Manifest,
    states: BTreeMap<String, JsonState>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    learner_states: BTreeMap<String, JsonLearnerState>,
}

/// A learner's state in the JSON form: base64 of its exact bytes.
#[derive(Serialize, Deserialize)]
struct JsonLearnerState {
    data: String,
}

#[derive(Serialize)]
struct JsonState {
    /// base64 (standard, padded) of the encoded state: the exact value.
    data: String,
    /// A readable rendering; ignored on import.
    readable: serde_json::Value,
}

/// The JSON form as read on import: the manifest's fields spelled out (no
/// `flatten`, which would buffer the whole document as generic values) and
/// the readable rendering skipped without building it.
#[derive(Deserialize)]
struct JsonImport {
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
struct JsonImportState {
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

/// Writes backup `id` as a snapshot in memory.
pub fn export_backup(store: &Store, id: i64, format: SnapshotFormat) -> Result<Vec<u8>> {
    let info = store.get_backup(id)?;
    // A file the importer would refuse is not written (checked before the
    // states are read).
    let learners = store.backup_learners(id)?;
    let total: u64 = info.engines.iter().map(|e| e.size).sum::<u64>()
        + learners.iter().map(|(_, l)| l.size).sum::<u64>();
    if total > MAX_SNAPSHOT_STATE_BYTES {
        return Err(Error::TooLarge {
            what: "engine and learner states to export (the importer's limit)",
            size: total,
            limit: MAX_SNAPSHOT_STATE_BYTES,
        });
    }
    let states = store.backup_states(id)?;
    let mut engines = Vec::with_capacity(states.len());
    let mut bodies = Vec::with_capacity(states.len());
    for s in &states {
        let header = s.state.header();
        let body = match format {
            SnapshotFormat::Binary => compress(s.state.as_bytes())?,
            SnapshotFormat::Json => Vec::new(),
        };
        engines.push(ManifestEngine {
            name: s.engine.clone(),
            metrics: s.metrics.clone(),
            checksum: s.state.checksum().to_hex(),
            size: s.state.len() as u64,
            stored_size: (format == SnapshotFormat::Binary).then_some(body.len() as u64),
            state_format: header.format,
            schema: header.schema,
        });
        bodies.push(body);
    }
    let mut learner_entries = Vec::with_capacity(learners.len());
    let mut learner_bytes = Vec::with_capacity(learners.len());
    for (name, l) in &learners {
        let sum = Checksum::from_hex(&l.checksum)?;
        // Checked against its checksum as it is read.
        let bytes = store.read_learner_bytes(&sum, crate::limits::MAX_LEARNER_STATE_BYTES)?;
        let stored = match format {
            SnapshotFormat::Binary => {
                let c = compress(&bytes)?;
                let n = c.len() as u64;
                bodies.push(c);
                Some(n)
            }
            SnapshotFormat::Json => None,
        };
        learner_entries.push(ManifestLearner {
            name: name.clone(),
            format: store.learner_record(name)?.format,
            checksum: l.checksum.clone(),
            size: l.size,
            stored_size: stored,
            step: l.step,
            metrics: l.metrics.clone(),
        });
        learner_bytes.push(bytes);
    }
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: if learner_entries.is_empty() {
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
        learners: learner_entries,
    };
    let out = match format {
        SnapshotFormat::Json => {
            let mut out = BTreeMap::new();
            for s in &states {
                out.insert(
                    s.engine.clone(),
                    JsonState {
                        data: base64::engine::general_purpose::STANDARD.encode(s.state.as_bytes()),
                        readable: s.state.to_readable_json()?,
                    },
                );
            }
            let learner_states = manifest
                .learners
                .iter()
                .zip(&learner_bytes)
                .map(|(l, b)| {
                    (
                        l.name.clone(),
                        JsonLearnerState {
                            data: base64::engine::general_purpose::STANDARD.encode(b),
                        },
                    )
                })
                .collect();
            serde_json::to_vec_pretty(&JsonSnapshot {
                manifest,
                states: out,
                learner_states,
            })
            .map_err(|e| Error::Encode(e.to_string()))
        }
        SnapshotFormat::Binary => {
            let manifest_json =
                serde_json::to_vec(&manifest).map_err(|e| Error::Encode(e.to_string()))?;
            let mut out = Vec::with_capacity(
                manifest_json.len() + bodies.iter().map(Vec::len).sum::<usize>() + 64,
            );
            out.extend_from_slice(&BINARY_MAGIC);
            out.extend_from_slice(&(manifest.format_version as u16).to_le_bytes());
            out.extend_from_slice(&(manifest_json.len() as u32).to_le_bytes());
            out.extend_from_slice(&manifest_json);
            for b in &bodies {
                out.extend_from_slice(b);
            }
            let sum = Checksum::of(&out);
            out.extend_from_slice(&sum.0);
            Ok(out)
        }
    }?;
    if out.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(Error::TooLarge {
            what: "snapshot file (the importer's limit)",
            size: out.len() as u64,
            limit: MAX_SNAPSHOT_BYTES,
        });
    }
    Ok(out)
}

/// Writes backup `id` to `path` atomically (temporary file, fsync, rename).
/// Refuses, before exporting anything, a target that the rename would
/// destroy: anything inside the data directory (the database, its WAL and
/// SHM, the lock, the logs), a symlink, or anything but a regular file.
pub fn export_to_file(store: &Store, id: i64, format: SnapshotFormat, path: &Path) -> Result<u64> {
    check_export_target(store.path().parent().unwrap_or(Path::new(".")), path)?;
    let bytes = export_backup(store, id, format)?;
    write_atomically(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Writes exported bytes (a learner's state, say) to a file the user chose,
/// with the same rules as a backup's export: never into the data
/// directory or through a symbolic link, and atomically (the file is either
/// its old self or the whole new content). Needs no store: written outside
/// its lock.
pub fn write_export(data_dir: &Path, path: &Path, bytes: &[u8]) -> Result<u64> {
    check_export_target(data_dir, path)?;
    write_atomically(path, bytes)?;
    Ok(bytes.len() as u64)
}

fn check_export_target(data_dir: &Path, path: &Path) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidInput(format!(
            "will not export to {}: {why}",
            path.display()
        )))
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return refuse("it is a symbolic link"),
        Ok(m) if !m.is_file() => return refuse("it is not a regular file"),
        _ => {}
    }
    // Compare real directories: `..`, symlinked parents and relative paths
    // must not sneak a target into the data directory.
    let data_dir = std::fs::canonicalize(data_dir).ok();
    let target_dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::canonicalize(d),
        _ => std::env::current_dir(),
    };
    if let (Some(data), Ok(target)) = (data_dir, target_dir)
        && target.starts_with(&data)
    {
        return refuse("it is inside Engram's data directory");
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Parses and checks a snapshot in either form. Nothing is written.
pub fn parse(bytes: &[u8]) -> Result<Snapshot> {
    if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(Error::TooLarge {
            what: "snapshot file",
            size: bytes.len() as u64,
            limit: MAX_SNAPSHOT_BYTES,
        });
    }
    if bytes.starts_with(&BINARY_MAGIC) {
        parse_binary(bytes)
    } else if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        parse_json(bytes)
    } else if bytes.is_empty() {
        Err(Error::InvalidSnapshot("the file is empty".into()))
    } else {
        Err(Error::InvalidSnapshot(
            "the file is neither the JSON nor the binary form of an Engram snapshot".into(),
        ))
    }
}

/// Reads and checks a snapshot file (size-limited before reading).
pub fn read_file(path: &Path) -> Result<Snapshot> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_SNAPSHOT_BYTES {
        return Err(Error::TooLarge {
            what: "snapshot file",
            size: meta.len(),
            limit: MAX_SNAPSHOT_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse(&bytes)
}

fn parse_binary(bytes: &[u8]) -> Result<Snapshot> {
    let bad = |m: &str| Error::InvalidSnapshot(m.to_string());
    if bytes.len() < BINARY_MAGIC.len() + 6 + 32 {
        return Err(bad(
            "binary snapshot is truncated (shorter than its header)",
        ));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    check_version(u32::from(version))?;
    let (body, trailer) = bytes.split_at(bytes.len() - 32);
    if Checksum::of(body).0 != trailer {
        return Err(bad(
            "file checksum mismatch: the file is truncated or damaged",
        ));
    }
    let mlen = u64::from(u32::from_le_bytes([
        bytes[10], bytes[11], bytes[12], bytes[13],
    ]));
    if mlen > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge {
            what: "snapshot manifest",
            size: mlen,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let start = 14usize;
    let end = start
        .checked_add(mlen as usize)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| bad("manifest runs past the end of the file"))?;
    let manifest: Manifest = serde_json::from_slice(&body[start..end])
        .map_err(|e| Error::InvalidSnapshot(format!("manifest is not valid: {e}")))?;
    check_manifest(&manifest)?;
    let mut pos = end;
    let mut states = Vec::with_capacity(manifest.engines.len());
    for e in &manifest.engines {
        let raw = take_section(
            body,
            &mut pos,
            e.stored_size,
            e.size,
            &format!("engine {}", e.name),
            &e.name,
        )?;
        states.push(check_state(e, raw)?);
    }
    let mut learner_states = Vec::with_capacity(manifest.learners.len());
    for l in &manifest.learners {
        let name = format!("learner {}", l.name);
        let raw = take_section(body, &mut pos, l.stored_size, l.size, &name, &name)?;
        learner_states.push(check_learner_state(l, raw)?);
    }
    if pos != body.len() {
        return Err(bad(&format!(
            "{} unexpected bytes after the last state",
            body.len() - pos
        )));
    }
    Ok(Snapshot {
        manifest,
        states,
        learner_states,
    })
}

fn parse_json(bytes: &[u8]) -> Result<Snapshot> {
    // Read the version first so a newer file gets the right message.
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        format_version: Option<u32>,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidSnapshot(format!("not valid JSON: {e}")))?;
    if head.format.as_deref() != Some(FORMAT_NAME) {
        return Err(Error::InvalidSnapshot(format!(
            "the JSON has no \"format\": \"{FORMAT_NAME}\" field"
        )));
    }
    check_version(head.format_version.unwrap_or(0))?;
    let json: JsonImport = serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidSnapshot(format!("JSON snapshot is malformed: {e}")))?;
    let manifest = Manifest {
        format: json.format,
        format_version: json.format_version,
        app_version: json.app_version,
        exported_at: json.exported_at,
        backup: json.backup,
        engines: json.engines,
        learners: json.learners,
    };
    check_manifest(&manifest)?;
    // The same bound on the manifest as in the binary form.
    let manifest_len = serde_json::to_vec(&manifest)
        .map(|v| v.len() as u64)
        .unwrap_or(u64::MAX);
    if manifest_len > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge {
            what: "snapshot manifest",
            size: manifest_len,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    if json.states.len() != manifest.engines.len() {
        return Err(Error::InvalidSnapshot(
            "the states do not match the engines listed in the manifest".into(),
        ));
    }
    let mut states = Vec::with_capacity(json.states.len());
    for e in &manifest.engines {
        let s = json
            .states
            .get(&e.name)
            .ok_or_else(|| Error::InvalidSnapshot(format!("no state for engine {}", e.name)))?;
        states.push(check_state(e, decode_base64(&s.data, e.size, &e.name)?)?);
    }
    if json.learner_states.len() != manifest.learners.len() {
        return Err(Error::InvalidSnapshot(
            "the learner states do not match the learners listed in the manifest".into(),
        ));
    }
    let mut learner_states = Vec::with_capacity(manifest.learners.len());
    for l in &manifest.learners {
        let s = json
            .learner_states
            .get(&l.name)
            .ok_or_else(|| Error::InvalidSnapshot(format!("no state for learner {}", l.name)))?;
        let raw = decode_base64(&s.data, l.size, &format!("learner {}", l.name))?;
        learner_states.push(check_learner_state(l, raw)?);
    }
    Ok(Snapshot {
        manifest,
        states,
        learner_states,
    })
}

/// The next stored section of a binary snapshot (`what` names its owner in
/// errors, `state_of` its state), decompressed to exactly `size` bytes.
fn take_section(
    body: &[u8],
    pos: &mut usize,
    stored: Option<u64>,
    size: u64,
    what: &str,
    state_of: &str,
) -> Result<Vec<u8>> {
    let bad = |m: String| Error::InvalidSnapshot(m);
    let stored = stored.ok_or_else(|| bad(format!("{what} has no stored_size")))?;
    let stop = (*pos as u64)
        .checked_add(stored)
        .filter(|&s| s <= body.len() as u64)
        .ok_or_else(|| bad(format!("state of {state_of} runs past the end of the file")))?
        as usize;
    let raw = decompress_exact(&body[*pos..stop], size)
        .map_err(|err| bad(format!("state of {state_of}: {err}")))?;
    *pos = stop;
    Ok(raw)
}

/// A JSON snapshot's base64 state of (at most) `size` bytes; `state_of`
/// names it in errors.
fn decode_base64(data: &str, size: u64, state_of: &str) -> Result<Vec<u8>> {
    if data.len() as u64 > size.saturating_mul(4) / 3 + 8 {
        return Err(Error::InvalidSnapshot(format!(
            "state of {state_of} is larger than its recorded size"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|err| {
            Error::InvalidSnapshot(format!("state of {state_of} is not valid base64: {err}"))
        })
}

fn check_learner_state(l: &ManifestLearner, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.len() as u64 != l.size {
        return Err(Error::InvalidSnapshot(format!(
            "state of learner {} is {} bytes, the manifest says {}",
            l.name,
            raw.len(),
            l.size
        )));
    }
    let sum = Checksum::of(&raw);
    if sum.to_hex() != l.checksum.to_ascii_lowercase() {
        return Err(Error::InvalidSnapshot(format!(
            "checksum mismatch for learner {}: the manifest says {}, the data hashes to {sum}",
            l.name, l.checksum
        )));
    }
    Ok(raw)
}

fn check_version(found: u32) -> Result<()> {
    if found == 0 || found > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what: "snapshot",
            found: found.into(),
            supported: FORMAT_VERSION.into(),
        });
    }
    Ok(())
}

fn check_manifest(m: &Manifest) -> Result<()> {
    if m.format != FORMAT_NAME {
        return Err(Error::InvalidSnapshot(format!(
            "format is {:?}, not {FORMAT_NAME:?}",
            m.format
        )));
    }
    check_version(m.format_version)?;
    if m.engines.is_empty() {
        return Err(Error::InvalidSnapshot(
            "the snapshot holds no engine states".into(),
        ));
    }
    if m.engines.len() > MAX_ENGINES {
        return Err(Error::TooLarge {
            what: "engine list",
            size: m.engines.len() as u64,
            limit: MAX_ENGINES as u64,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &m.engines {
        validate_engine_name(&e.name).map_err(|err| Error::InvalidSnapshot(err.to_string()))?;
        if !seen.insert(&e.name) {
            return Err(Error::InvalidSnapshot(format!(
                "engine {} is listed twice",
                e.name
            )));
        }
        if e.size > MAX_STATE_BYTES {
            return Err(Error::TooLarge {
                what: "engine state",
                size: e.size,
                limit: MAX_STATE_BYTES,
            });
        }
        Checksum::from_hex(&e.checksum).map_err(|_| {
            Error::InvalidSnapshot(format!("engine {} has a malformed checksum", e.name))
        })?;
    }
    if !m.learners.is_empty() && m.format_version < 2 {
        return Err(Error::InvalidSnapshot(
            "learner states need snapshot format version 2".into(),
        ));
    }
    if m.learners.len() > MAX_LEARNERS {
        return Err(Error::TooLarge {
            what: "learner list",
            size: m.learners.len() as u64,
            limit: MAX_LEARNERS as u64,
        });
    }
    let mut seen_learners = std::collections::BTreeSet::new();
    for l in &m.learners {
        crate::store::validate_learner_name(&l.name)
            .map_err(|err| Error::InvalidSnapshot(err.to_string()))?;
        if seen.contains(&l.name) || !seen_learners.insert(&l.name) {
            return Err(Error::InvalidSnapshot(format!(
                "learner {} is listed twice",
                l.name
            )));
        }
        check_text(
            &format!("state format of learner {}", l.name),
            &l.format,
            64,
        )?;
        if l.format.is_empty() || !l.format.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::InvalidSnapshot(format!(
                "learner {} has a malformed state format",
                l.name
            )));
        }
        if l.size > crate::limits::MAX_LEARNER_STATE_BYTES {
            return Err(Error::TooLarge {
                what: "learner state",
                size: l.size,
                limit: crate::limits::MAX_LEARNER_STATE_BYTES,
            });
        }
        Checksum::from_hex(&l.checksum).map_err(|_| {
            Error::InvalidSnapshot(format!("learner {} has a malformed checksum", l.name))
        })?;
        if l.metrics.len() > MAX_METRICS {
            return Err(Error::InvalidSnapshot(format!(
                "learner {} has more than {MAX_METRICS} metrics",
                l.name
            )));
        }
        for key in l.metrics.keys() {
            check_text(&format!("metric name of learner {}", l.name), key, 128)?;
        }
    }
    if (m.backup.kind == BackupKind::Breakthrough) != m.backup.breakthrough.is_some() {
        return Err(Error::InvalidSnapshot(
            "breakthrough details do not match the backup kind".into(),
        ));
    }
    if let Some(l) = &m.backup.label {
        check_text("backup.label", l, 200)?;
    }
    for (field, text, max) in [
        ("app_version", m.app_version.as_str(), 64),
        ("exported_at", m.exported_at.as_str(), 64),
        ("backup.created_at", m.backup.created_at.as_str(), 64),
    ] {
        check_text(field, text, max)?;
    }
    if let Some(bt) = &m.backup.breakthrough {
        check_text("backup.breakthrough.engine", &bt.engine, 64)?;
        check_text("backup.breakthrough.rule", &bt.rule, 200)?;
        check_text("backup.breakthrough.metric", &bt.metric, 128)?;
    }
    let mut total: u64 = 0;
    for e in &m.engines {
        if e.metrics.len() > MAX_METRICS {
            return Err(Error::InvalidSnapshot(format!(
                "engine {} has {} metrics, more than {MAX_METRICS}",
                e.name,
                e.metrics.len()
            )));
        }
        for key in e.metrics.keys() {
            check_text(&format!("metric name of {}", e.name), key, 128)?;
        }
        // Checked before anything is decompressed: a small file cannot
        // ask for more memory than this in all.
        total = total.saturating_add(e.size);
        if let Some(stored) = e.stored_size
            && e.size > stored.saturating_mul(MAX_COMPRESSION_RATIO) + RATIO_SLACK
        {
            return Err(Error::InvalidSnapshot(format!(
                "state of {} claims {} bytes from {stored} compressed: not a plausible engine state (a decompression bomb?)",
                e.name, e.size
            )));
        }
    }
    for l in &m.learners {
        total = total.saturating_add(l.size);
        if let Some(stored) = l.stored_size
            && l.size > stored.saturating_mul(MAX_COMPRESSION_RATIO) + RATIO_SLACK
        {
            return Err(Error::InvalidSnapshot(format!(
                "state of learner {} claims {} bytes from {stored} compressed (a decompression bomb?)",
                l.name, l.size
            )));
        }
    }
    if total > MAX_SNAPSHOT_STATE_BYTES {
        return Err(Error::TooLarge {
            what: "engine and learner states in one snapshot",
            size: total,
            limit: MAX_SNAPSHOT_STATE_BYTES,
        });
    }
    Ok(())
}

/// A manifest text field: bounded, no control or text-direction characters.
fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
    if text.chars().count() > max {
        return Err(Error::InvalidSnapshot(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if let Some(c) = text.chars().find(|&c| crate::store::is_unsafe_char(c)) {
        return Err(Error::InvalidSnapshot(format!(
            "{field} holds the control or text-direction character U+{:04X}",
            u32::from(c)
        )));
    }
    Ok(())
}

fn check_state(e: &ManifestEngine, raw: Vec<u8>) -> Result<EngineState> {
    if raw.len() as u64 != e.size {
        return Err(Error::InvalidSnapshot(format!(
            "state of {} is {} bytes, the manifest says {}",
            e.name,
            raw.len(),
            e.size
        )));
    }
    let sum = Checksum::of(&raw);
    if sum.to_hex() != e.checksum.to_ascii_lowercase() {
        return Err(Error::InvalidSnapshot(format!(
            "checksum mismatch for {}: the manifest says {}, the data hashes to {sum}",
            e.name, e.checksum
        )));
    }
    let state = EncodedState::from_bytes(raw).map_err(|err| {
        Error::InvalidSnapshot(format!("state of {} does not decode: {err}", e.name))
    })?;
    if crate::engines::is_builtin(&e.name) {
        crate::engines::check_state(&e.name, &state).map_err(|err| match err {
            Error::UnsupportedFormat { .. } => err,
            _ => Error::InvalidSnapshot(format!(
                "state of {} is not one the engine can run: {err}",
                e.name
            )),
        })?;
    }
    Ok(EngineState {
        engine: e.name.clone(),
        state,
        metrics: e.metrics.clone(),
    })
}

impl Store {
    /// Adds a checked snapshot to the timeline as an `imported` backup.
    pub fn import_snapshot(&mut self, snap: &Snapshot, now_ms: i64) -> Result<i64> {
        let b = &snap.manifest.backup;
        let origin = serde_json::json!({
            "kind": b.kind,
            "created_at": b.created_at,
            "created_at_ms": b.created_at_ms,
            "source_id": b.id,
            "app_version": snap.manifest.app_version,
            "breakthrough": b.breakthrough,
        })
        .to_string();
        let label = b
            .label
            .clone()
            .or_else(|| Some(format!("{} backup from {}", b.kind, b.created_at)));
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
        let mut learners = Vec::with_capacity(snap.learner_states.len());
        for (l, bytes) in snap.manifest.learners.iter().zip(&snap.learner_states) {
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
            learners.push(crate::store::ImportedLearner {
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
            });
        }
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

    /// Reads, checks and imports a snapshot file. A bad file changes nothing.
    pub fn import_file(&mut self, path: &Path, now_ms: i64) -> Result<i64> {
        let snap = read_file(path)?;
        self.import_snapshot(&snap, now_ms)
    }
}

#[cfg(test)]
mod tests;
