//! What the engines are doing and how they are set: the status, the
//! settings and their descriptions, metric histories and descriptions, and
//! the events of the runtime.

use crate::error::ErrorCode;
use crate::wire::{Breakthrough, Metrics, RetentionPolicy, SkipNote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// One engine in [`Status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct EngineStatus {
    pub metrics: Metrics,
    /// When its live state was last saved (RFC 3339), if ever.
    pub saved_at: Option<String>,
    /// Why the engine is paused: it failed (panicked) in a tick and is not
    /// run or saved until a restore replaces its state. None: running.
    pub paused: Option<String>,
}

/// The state of a data directory and its engines: one shape from the HTTP
/// API, the desktop app and `engram status --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Status {
    /// Latest metrics per engine: live from the running engines, else as saved.
    pub engines: BTreeMap<String, EngineStatus>,
    /// Newest live save (RFC 3339), if ever.
    pub saved_at: Option<String>,
    #[ts(type = "number | null")]
    pub saved_at_ms: Option<i64>,
    /// Engines are running on this data directory (this process or another).
    pub running: bool,
    /// The process that runs them, when known.
    pub pid: Option<String>,
    #[ts(type = "number")]
    pub backups: u64,
    pub data_dir: String,
    /// What happened at start-up (only from the process running the engines).
    pub startup: Option<StartupReport>,
}

/// A setting's type in the settings form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    /// A whole number.
    Integer,
    /// Any number in range.
    Number,
}

/// One field of [`crate::wire::Settings`]: the single description the
/// validation, the API and the UI's settings form all use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct SettingField {
    /// Path in the settings object, e.g. `retention.keep_daily`.
    pub key: String,
    /// The fieldset it belongs to.
    pub group: String,
    pub label: String,
    pub help: String,
    pub kind: SettingKind,
    pub min: f64,
    pub max: f64,
}

/// One metric's history: `engine`/`key` over `from_ms`–`to_ms` (default:
/// everything up to now), at most `points` points (default 500).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct SeriesRequest {
    pub engine: String,
    pub key: String,
    #[ts(type = "number | null")]
    pub from_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub to_ms: Option<i64>,
    pub points: Option<u32>,
}

/// What happened at start-up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct StartupReport {
    /// True when this data directory had no state: an `initial` backup was taken.
    pub first_start: bool,
    /// Engines restored from the live state or a backup, and from where.
    pub restored_from: BTreeMap<String, String>,
    /// Damaged states passed over.
    pub skipped: Vec<SkipNote>,
}

/// What the runtime reports to its listeners (the UI's event stream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(rename = "EngramEvent")]
pub enum Event {
    Metrics {
        #[ts(type = "number")]
        at_ms: i64,
        engines: BTreeMap<String, Metrics>,
    },
    Saved {
        #[ts(type = "number")]
        at_ms: i64,
    },
    BackupCreated {
        // Boxed: the largest payload, kept out of every other event's size.
        backup: Box<crate::wire::Backup>,
    },
    BackupsDeleted {
        #[ts(type = "number[]")]
        ids: Vec<i64>,
    },
    Breakthrough {
        breakthrough: Breakthrough,
        #[ts(type = "number | null")]
        backup_id: Option<i64>,
    },
    Restored {
        #[ts(type = "number")]
        from_backup: i64,
        engines: Vec<String>,
        #[ts(type = "number")]
        pre_restore_backup: i64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// A supervised learner's process changed phase (started, died,
    /// stopped, finished).
    LearnerProcess {
        learner: String,
        phase: crate::wire::ProcessPhase,
    },
    /// The user asked a learner that runs outside Engram to stop (its
    /// client's `stop_requested` turns true).
    LearnerStopRequested {
        learner: String,
    },
    /// The user deleted a learner (its client's `stop_requested` turns
    /// true; its saves are refused from now on).
    LearnerRemoved {
        learner: String,
    },
}

/// The user's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct Settings {
    /// Autosave interval, seconds (0.05 – 3600).
    pub autosave_secs: f64,
    /// Periodic backup interval, seconds (1 – 30 days).
    pub backup_every_secs: f64,
    pub retention: RetentionPolicy,
    /// ZAP: breakthrough when the success rate over the last 100 plans reaches this…
    pub zap_success_rate: f64,
    /// …with at least this many plans.
    #[ts(type = "number")]
    pub zap_min_plans: u64,
    /// MDP/ES: breakthrough when best fitness reaches this…
    pub mdp_min_fitness: f64,
    /// …after at least this many generations.
    #[ts(type = "number")]
    pub mdp_min_generations: u64,
    /// MDP/ES: breakthrough when the greedy Q policy reaches this share of the optimum.
    pub mdp_min_policy_quality: f64,
    /// Orchestrator: the first milestone at this many cross-system calls…
    #[ts(type = "number")]
    pub orchestrator_every: u64,
    /// …then the threshold is multiplied by this.
    #[ts(type = "number")]
    pub orchestrator_growth: u64,
    /// Check each offsite replica's structure every this many hours (0: never).
    pub replica_verify_hours: f64,
}

/// A line of history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct HistoryBranch {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub started_at: i64,
    #[ts(type = "number | null")]
    pub parent: Option<i64>,
    /// The backup whose restore started it.
    #[ts(type = "number | null")]
    pub from_backup: Option<i64>,
    /// `start` (first launch) or `restore`.
    pub reason: String,
}

/// One point of a series: the value (a bucket's mean once downsampled) and
/// the min and max of what it stands for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SeriesPoint {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[ts(type = "number")]
    pub branch: i64,
}

/// A metric over a time range, at most the requested number of points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct MetricSeries {
    pub engine: String,
    pub key: String,
    pub points: Vec<SeriesPoint>,
    /// How many stored points the range held before downsampling.
    #[ts(type = "number")]
    pub stored: u64,
    /// Every branch, so a chart can break its line where one starts.
    pub branches: Vec<HistoryBranch>,
    /// The spans in the range in which the series' owner did not run (Engram
    /// stopped, a learner's process gone): a chart draws no line across them.
    pub not_running: Vec<NotRunning>,
}

/// A span between two measurements in which nothing ran: from the last
/// point before a stop to the first point after the next start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct NotRunning {
    #[ts(type = "number")]
    pub from_ms: i64,
    #[ts(type = "number")]
    pub to_ms: i64,
}

/// One metric of one engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct MetricInfo {
    pub engine: String,
    pub key: String,
    pub label: String,
    /// What it counts or measures, for axes and tooltips ("plans", "calls", "").
    pub unit: String,
    pub format: MetricFormat,
    /// True when higher is better, false when lower is, null when neither.
    pub higher_is_better: Option<bool>,
    /// Shown on the engine's dashboard card (in catalog order).
    pub card: bool,
    /// Drawn as a learning curve.
    pub chart: bool,
    /// An evaluation's figure: the metric holding the step it was measured
    /// at (absent before the first evaluation: "not evaluated yet").
    #[serde(default)]
    pub measured_at: Option<String>,
    /// An evaluation's figure: the metric holding when it was measured
    /// (unix ms; absent where the time is not known — an evaluation made
    /// before times were kept).
    #[serde(default)]
    pub measured_when: Option<String>,
}

/// How a metric's value is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum MetricFormat {
    /// A count: `12,345`.
    Integer,
    /// A share in [0, 1], printed as a percentage: `73.5 %`.
    Percent,
    /// A plain number with three decimals: `0.953`.
    Decimal,
    /// Milliseconds: `1.25 ms`; below 0.1 ms in microseconds, `3.2 µs`.
    Milliseconds,
    /// A moment, in unix milliseconds: printed as a date and time (UTC).
    Time,
}
