//! Writing a backup as a snapshot file: either form, to memory or to a file
//! the user chose (never inside the data directory, atomically).

use super::*;
use crate::codec::Checksum;
use crate::error::{Error, Result};
use crate::limits::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_STATE_BYTES};
use crate::store::Store;
use crate::store::blob::compress;
use crate::wire::SnapshotFormat;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Writes backup `id` as a snapshot in memory.
pub fn export_backup(store: &Store, id: i64, format: SnapshotFormat) -> Result<Vec<u8>> {
    // Long by design: the file in the order it is laid out (limits checked,
    // manifest, each engine's and learner's state, then the form's framing).
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
    let mut manifest = manifest_of(store, &info, &states, &learners)?;
    let binary = format == SnapshotFormat::Binary;
    let mut bodies = Vec::new();
    for (e, s) in manifest.engines.iter_mut().zip(&states) {
        if binary {
            let body = compress(s.state.as_bytes())?;
            e.stored_size = Some(body.len() as u64);
            bodies.push(body);
        }
    }
    let mut learner_bytes = Vec::with_capacity(learners.len());
    for l in manifest.learners.iter_mut() {
        let sum = Checksum::from_hex(&l.checksum)?;
        // Checked against its checksum as it is read.
        let bytes = store.read_learner_bytes(&sum, crate::limits::MAX_LEARNER_STATE_BYTES)?;
        if binary {
            let body = compress(&bytes)?;
            l.stored_size = Some(body.len() as u64);
            bodies.push(body);
        }
        learner_bytes.push(bytes);
    }
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
