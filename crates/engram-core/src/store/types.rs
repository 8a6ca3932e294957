//! The store's vocabulary: backup kinds, breakthroughs, states to store,
//! backups as listed, queries and pages, and the rules for names and labels.
//! Plain data; no SQL except how a kind is written into a column.

use crate::codec::EncodedState;
use crate::error::{Error, Result};
use crate::wire::{BackupKind, Breakthrough, Cursor, Metrics};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

impl BackupKind {
    /// All kinds, in timeline-legend order.
    pub const ALL: [BackupKind; 6] = [
        BackupKind::Initial,
        BackupKind::Periodic,
        BackupKind::Breakthrough,
        BackupKind::Manual,
        BackupKind::PreRestore,
        BackupKind::Imported,
    ];

    /// The stable name used in the database, exports, the CLI and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Initial => "initial",
            BackupKind::Periodic => "periodic",
            BackupKind::Breakthrough => "breakthrough",
            BackupKind::Manual => "manual",
            BackupKind::PreRestore => "pre-restore",
            BackupKind::Imported => "imported",
        }
    }
}

impl std::str::FromStr for BackupKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackupKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown backup kind {s:?} (expected one of: initial, periodic, breakthrough, manual, pre-restore, imported)"
                ))
            })
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One engine's state, ready to store.
#[derive(Clone, Debug)]
pub struct EngineState {
    pub engine: String,
    pub state: EncodedState,
    pub metrics: Metrics,
}

/// A backup to write.
#[derive(Clone, Debug)]
pub struct NewBackup<'a> {
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub breakthrough: Option<Breakthrough>,
    pub states: &'a [EngineState],
}

/// One engine inside a backup, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineSummary {
    pub name: String,
    pub metrics: Metrics,
    /// blake3 of the encoded state, hex.
    pub checksum: String,
    /// Encoded size in bytes.
    pub size: u64,
    /// Compressed size as stored.
    pub stored_size: u64,
}

/// A backup as listed on the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub id: i64,
    pub kind: BackupKind,
    pub created_at_ms: i64,
    pub label: Option<String>,
    pub pinned: bool,
    pub engines: Vec<EngineSummary>,
    /// The learners (engines in other processes) whose state it holds.
    pub learners: Vec<String>,
    /// The step of each learner's state in it (learners that gave one).
    pub learner_steps: BTreeMap<String, u64>,
    /// The metrics each learner saved with its state in it (learners that
    /// gave any).
    #[serde(default)]
    pub learner_metrics: BTreeMap<String, Metrics>,
    pub breakthrough: Option<Breakthrough>,
    /// For imported backups: JSON describing the source file's manifest.
    pub origin: Option<String>,
    /// Where it stands with the offsite replicas (none set up: `None`).
    #[serde(default)]
    pub offsite: Option<crate::wire::OffsiteMark>,
}

impl BackupInfo {
    /// Sets the learners it holds, with their steps and metrics.
    pub(crate) fn set_learners(&mut self, learners: Vec<(String, Option<u64>, Metrics)>) {
        self.learners = Vec::with_capacity(learners.len());
        self.learner_steps.clear();
        self.learner_metrics.clear();
        for (name, step, metrics) in learners {
            if let Some(step) = step {
                self.learner_steps.insert(name.clone(), step);
            }
            if !metrics.is_empty() {
                self.learner_metrics.insert(name.clone(), metrics);
            }
            self.learners.push(name);
        }
    }
}

/// Filters and paging for [`Store::list_backups`](super::Store::list_backups).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BackupQuery {
    /// Only these kinds (empty: all).
    #[serde(default)]
    pub kinds: Vec<BackupKind>,
    /// Only backups that contain this engine.
    #[serde(default)]
    pub engine: Option<String>,
    /// Start after this position (keyset paging, fast at any depth).
    #[serde(default)]
    pub after: Option<Cursor>,
    /// Skip this many rows (for jumping; prefer `after` for scrolling).
    #[serde(default)]
    pub offset: u64,
    /// Page size; 0 means 50. Capped at 1000.
    #[serde(default)]
    pub limit: u32,
    /// Only backups whose label or milestone (engine, rule, metric) contains
    /// this text, ignoring ASCII case.
    #[serde(default)]
    pub text: Option<String>,
    /// Only pinned backups.
    #[serde(default)]
    pub pinned_only: bool,
}

/// The longest search text a listing accepts.
pub const MAX_SEARCH_CHARS: usize = 200;

/// One page of backups, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupPage {
    pub items: Vec<BackupInfo>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<Cursor>,
    /// How many backups match the filters in all.
    pub total: u64,
}

/// A kind is stored as its stable name.
impl ToSql for BackupKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// An unknown name in the column is damage, reported as a conversion failure.
impl FromSql for BackupKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = value.as_str()?;
        name.parse()
            .map_err(|_| FromSqlError::Other(format!("unknown backup kind {name:?}").into()))
    }
}

/// Engine names: 1–64 characters of `a-z0-9_-`.
pub fn validate_engine_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid engine name {name:?}: use 1-64 characters of a-z, 0-9, _ and -"
        )))
    }
}

/// Control characters, and text-direction overrides and isolates (which
/// make a text display as something other than what it says).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub(super) fn validate_label(l: &str) -> Result<()> {
    if l.chars().count() > 200 || l.chars().any(is_unsafe_char) {
        return Err(Error::InvalidInput(
            "a label is at most 200 characters, without control or text-direction characters"
                .into(),
        ));
    }
    Ok(())
}

pub(super) fn check_new_backup(b: &NewBackup<'_>) -> Result<()> {
    if let Some(l) = &b.label {
        validate_label(l)?;
    }
    if (b.kind == BackupKind::Breakthrough) != b.breakthrough.is_some() {
        return Err(Error::InvalidInput(
            "a breakthrough backup needs its breakthrough details, and only it may have them"
                .into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in b.states {
        validate_engine_name(&s.engine)?;
        if !seen.insert(s.engine.as_str()) {
            return Err(Error::InvalidInput(format!(
                "engine {} appears twice",
                s.engine
            )));
        }
    }
    Ok(())
}
