//! Reading a snapshot file: the form, the version, every size and checksum,
//! the manifest's fields and every state decoded and checked against its
//! engine's bounds — before anything is written; never a panic.

use super::*;
use crate::codec::{Checksum, EncodedState};
use crate::error::{Error, Result};
use crate::limits::MAX_STATE_BYTES;
use crate::limits::{MAX_METRICS, MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_STATE_BYTES};
use crate::store::blob::decompress_exact;
use crate::store::{EngineState, validate_engine_name};
use crate::wire::BackupKind;
use base64::Engine as _;
use serde::Deserialize;
use std::path::Path;

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

/// A snapshot from its parts — a manifest and each state's bytes, as a
/// replica holds them — checked as a file's would be. Nothing is written.
pub fn from_parts(
    manifest: Manifest,
    engines: Vec<Vec<u8>>,
    learners: Vec<Vec<u8>>,
) -> Result<Snapshot> {
    check_manifest(&manifest)?;
    if engines.len() != manifest.engines.len() || learners.len() != manifest.learners.len() {
        return Err(Error::InvalidSnapshot(
            "the states do not match the manifest".into(),
        ));
    }
    let states = manifest
        .engines
        .iter()
        .zip(engines)
        .map(|(e, raw)| check_state(e, raw))
        .collect::<Result<Vec<_>>>()?;
    let learner_states = manifest
        .learners
        .iter()
        .zip(learners)
        .map(|(l, raw)| check_learner_state(l, raw))
        .collect::<Result<Vec<_>>>()?;
    Ok(Snapshot {
        manifest,
        states,
        learner_states,
    })
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

pub(super) fn parse_binary(bytes: &[u8]) -> Result<Snapshot> {
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

pub(super) fn parse_json(bytes: &[u8]) -> Result<Snapshot> {
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
pub(super) fn take_section(
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
pub(super) fn decode_base64(data: &str, size: u64, state_of: &str) -> Result<Vec<u8>> {
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

pub(super) fn check_learner_state(l: &ManifestLearner, raw: Vec<u8>) -> Result<Vec<u8>> {
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

pub(super) fn check_version(found: u32) -> Result<()> {
    if found == 0 || found > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what: "snapshot",
            found: found.into(),
            supported: FORMAT_VERSION.into(),
        });
    }
    Ok(())
}

pub(super) fn check_manifest(m: &Manifest) -> Result<()> {
    // Long by design: one check after another over the manifest's fields, in
    // their order; each refusal names its field.
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
pub(super) fn check_text(field: &str, text: &str, max: usize) -> Result<()> {
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

pub(super) fn check_state(e: &ManifestEngine, raw: Vec<u8>) -> Result<EngineState> {
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
