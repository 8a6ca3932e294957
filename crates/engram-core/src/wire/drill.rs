//! Restore drills: a backup's states evaluated again in a sandbox, the
//! figures recorded with the backup.

use super::Metrics;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What to drill (`POST /backups/{id}/drill`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct DrillRequest {
    /// Engines and learners to drill; empty: every one the backup holds
    /// that can be drilled (the engines with an evaluation, the learners
    /// with a drill command).
    pub units: Vec<String>,
}

/// One engine's or learner's drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct DrillResult {
    pub unit: String,
    /// When it ended, and how long it took.
    #[ts(type = "number")]
    pub at_ms: i64,
    #[ts(type = "number")]
    pub took_ms: u64,
    /// The figures measured now on the backup's state.
    pub metrics: Metrics,
    /// What the backup itself reported for the same keys (measured when it
    /// was made, or earlier: an evaluation runs every so many steps).
    pub reported: Metrics,
    /// Why it failed (a damaged state, a command that failed or ran out of
    /// time); `metrics` is then empty.
    pub error: Option<String>,
}

/// A backup's drills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Drills {
    #[ts(type = "number")]
    pub backup: i64,
    /// Newest first.
    pub results: Vec<DrillResult>,
}

/// A learner's drill command: run with the state's bytes on its standard
/// input, it prints one JSON object of metrics (name → number) on its
/// standard output and exits 0 within `timeout_ms`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct SetLearnerDrill {
    pub argv: Vec<String>,
    /// Default 60 000; at most one hour.
    #[ts(type = "number | null")]
    pub timeout_ms: Option<u64>,
    /// Working directory; default the data directory.
    pub cwd: Option<String>,
}

/// A learner's drill command as kept (null: it has none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerDrill {
    pub learner: String,
    pub argv: Option<Vec<String>>,
    #[ts(type = "number | null")]
    pub timeout_ms: Option<u64>,
    pub workdir: Option<String>,
}
