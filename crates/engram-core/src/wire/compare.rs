//! Two backups side by side: what each engine and learner measured in
//! each, and whether its state changed between them.

use super::Metrics;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which backup to compare with (`?with=ID`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct CompareRequest {
    #[ts(type = "number")]
    pub with: i64,
    /// Compare with the live state (as last saved) instead; `with` is then
    /// not read.
    pub live: bool,
}

impl CompareRequest {
    /// The other backup, or None for the live state.
    pub fn target(&self) -> Option<i64> {
        (!self.live).then_some(self.with)
    }
}

/// One metric in both backups: absent where that backup's state did not
/// report it; `change` only when both did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ComparedMetric {
    pub key: String,
    pub from: Option<f64>,
    pub to: Option<f64>,
    pub change: Option<f64>,
}

/// One engine or learner in both backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ComparedState {
    pub name: String,
    /// Held by the first backup, by the second.
    pub in_from: bool,
    pub in_to: bool,
    /// Whether its state differs (by checksum; null unless both hold it
    /// and the checksums are known).
    pub changed: Option<bool>,
    /// A learner's step in each (null for engines, or none given).
    #[ts(type = "number | null")]
    pub step_from: Option<u64>,
    #[ts(type = "number | null")]
    pub step_to: Option<u64>,
    pub metrics: Vec<ComparedMetric>,
    /// What changed inside the state; null when it is unchanged or held by
    /// one backup only.
    pub inside: Option<Inside>,
}

/// Backup `from` against backup `to`: every engine, then every learner,
/// each by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Comparison {
    #[ts(type = "number")]
    pub from: i64,
    /// 0 when the second side is the live state.
    #[ts(type = "number")]
    pub to: i64,
    /// The second side is the live state as last saved.
    #[serde(default)]
    pub to_live: bool,
    pub engines: Vec<ComparedState>,
    pub learners: Vec<ComparedState>,
}

/// Every metric of `a` and `b`, by name.
pub fn compare_metrics(a: Option<&Metrics>, b: Option<&Metrics>) -> Vec<ComparedMetric> {
    let mut keys: Vec<&String> = a.iter().chain(b.iter()).flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let from = a.and_then(|m| m.get(k)).copied();
            let to = b.and_then(|m| m.get(k)).copied();
            ComparedMetric {
                key: k.clone(),
                from,
                to,
                change: from.zip(to).map(|(f, t)| t - f),
            }
        })
        .collect()
}

/// What changed inside one engine's or learner's state between the two
/// backups, by what the state is (`kind`): `q_learning` (the MDP/ES
/// engine: Q-table and evolution strategy), `zap`, `orchestrator`,
/// `engram.pack` (a learner packed with the Python client's `engram.pack`)
/// or `bytes` (any other learner format: bytes only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct Inside {
    pub kind: String,
    /// Figures read from the states themselves (not the reported metrics):
    /// Q-table entries changed, replay-buffer size, calls by route, sizes.
    pub figures: Vec<ComparedMetric>,
    /// How many of something changed (Q-table entries, greedy actions,
    /// arrays, bytes).
    pub counted: Vec<Counted>,
    /// Arrays in either state: the Q-table, ES parameters, ZAP's value
    /// weights, every array of an `engram.pack` state.
    pub arrays: Vec<ArrayChange>,
    /// The largest changes among single entries (Q-table: state, action).
    pub largest: Vec<EntryChange>,
    /// The greedy policy of each, on a grid the UI can draw (grid worlds).
    pub policy: Option<PolicyMaps>,
    /// Plain values (an `engram.pack` state's non-array entries) that differ.
    pub values_changed: Vec<String>,
    /// Why less could be said (a damaged state, a format not understood).
    pub note: Option<String>,
}

/// `n` of `of` changed (e.g. "Q-table entries changed": 12 of 64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Counted {
    pub what: String,
    #[ts(type = "number")]
    pub n: u64,
    #[ts(type = "number | null")]
    pub of: Option<u64>,
}

/// One array in both states.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ArrayChange {
    pub name: String,
    /// Element type (numpy's, e.g. `<f8`) and shape in each; null where
    /// that state has no such array.
    pub dtype_from: Option<String>,
    pub dtype_to: Option<String>,
    #[ts(type = "Array<number> | null")]
    pub shape_from: Option<Vec<u64>>,
    #[ts(type = "Array<number> | null")]
    pub shape_to: Option<Vec<u64>>,
    /// Elements whose bits differ; null when the two cannot be compared
    /// element by element (absent on one side, another shape or type).
    #[ts(type = "number | null")]
    pub changed: Option<u64>,
    /// Largest and mean absolute difference over all elements (numbers
    /// only; NaN and infinite differences are counted in `changed` but
    /// left out of these).
    pub max_abs: Option<f64>,
    pub mean_abs: Option<f64>,
}

/// One entry of a table that changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct EntryChange {
    /// What the entry is, e.g. `state 5, action 2 (right)`.
    pub entry: String,
    pub from: f64,
    pub to: f64,
}

/// A grid world's greedy policy in each state: one action per cell, row by
/// row (`actions[i]` names action `i`), beside the map's letters (S start,
/// F frozen, H hole, G goal; C cliff) where no action applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct PolicyMaps {
    pub env: String,
    pub rows: u32,
    pub cols: u32,
    pub cells: Vec<String>,
    pub actions: Vec<String>,
    pub from: Vec<u32>,
    pub to: Vec<u32>,
    /// Cells (where an action applies) whose greedy action changed.
    #[ts(type = "number")]
    pub changed: u64,
}
