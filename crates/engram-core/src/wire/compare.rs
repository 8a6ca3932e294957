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
}

/// Backup `from` against backup `to`: every engine, then every learner,
/// each by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Comparison {
    #[ts(type = "number")]
    pub from: i64,
    #[ts(type = "number")]
    pub to: i64,
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
