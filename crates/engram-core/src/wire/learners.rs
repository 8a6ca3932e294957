//! What a learner in another process sends and is answered: attach, save
//! (metadata; the bytes travel as the body), lease, log, milestones, its
//! rules and metric descriptions, and the learner as the store lists it.

use super::{Metrics, QueryForm};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Register a learner, or find it again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct AttachLearner {
    pub name: String,
    /// The learner's own name for its state format (e.g. `engram.pack/1`).
    /// Absent: the one it was registered with (`raw` for a new learner).
    #[serde(default)]
    pub format: Option<String>,
    /// What its metrics mean (label, unit, format, direction), for its
    /// curves; replaces what it said before. Absent or empty: unchanged.
    #[serde(default)]
    pub metrics: std::collections::BTreeMap<String, crate::wire::LearnerMetric>,
    /// Milestones Engram watches its saves for (replaces the ones declared
    /// before; absent or empty: unchanged).
    #[serde(default)]
    pub milestones: Vec<crate::wire::MilestoneRule>,
}

/// What a saved state says of itself (the bytes travel as the body).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct SaveLearnerState {
    #[ts(type = "number | null")]
    pub step: Option<u64>,
    pub metrics: Metrics,
    /// The learner's generation this state continues (from attach, resume
    /// or a restore): a save from before a restore it has not taken is
    /// refused (`stale_state`). Absent: not checked.
    #[ts(type = "number | null")]
    pub generation: Option<i64>,
}

/// [`SaveLearnerState`] as an HTTP query string: `step=…&metrics=<JSON object>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SaveLearnerStateQuery {
    pub step: Option<u64>,
    pub metrics: Option<String>,
    pub generation: Option<i64>,
}

/// A slot of the learner's own lent to it for its next save: it writes
/// its state into `path` (a file in the data directory, so only a learner
/// on this machine can) and saves it with [`Api::save_leased_learner_state`](crate::api::Api::save_leased_learner_state)
/// — its bytes copied once, into the page cache, instead of sent through
/// the loopback and written by Engram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct SlotLease {
    /// Names the lease when the state is saved.
    pub lease: String,
    /// The file to write the state into (absolute), replacing what it
    /// holds: write from its start and cut it to the state's length.
    pub path: String,
}

/// Save what the learner wrote into a leased slot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct SaveLeasedState {
    pub lease: String,
    pub state: SaveLearnerState,
    /// Lend the next slot with the answer (one round trip per save).
    pub next: bool,
}

/// [`SaveLeasedState`] as an HTTP query string:
/// `lease=…&step=…&metrics=<JSON object>&generation=…&next=true`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SaveLeasedStateQuery {
    pub lease: String,
    pub step: Option<u64>,
    pub metrics: Option<String>,
    pub generation: Option<i64>,
    #[serde(default)]
    pub next: bool,
}

/// What a leased save stored, and the slot lent for the next one (none
/// asked for, or none free: send the bytes instead).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LeasedSave {
    pub saved: LearnerState,
    pub next: Option<SlotLease>,
}

/// Which state to read: the live one, or the one a backup holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct ReadLearnerState {
    #[ts(type = "number | null")]
    pub backup: Option<i64>,
}

/// A learner's state written to a file the user chose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerStateExported {
    pub learner: String,
    /// The backup whose state it is; null: the live state.
    #[ts(type = "number | null")]
    pub backup: Option<i64>,
    pub path: String,
    #[ts(type = "number")]
    pub bytes: u64,
    /// blake3 of the bytes written (checked against the stored state's).
    pub checksum: String,
}

/// One logged point: metrics at a step (and an instant; default now).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LoggedPoint {
    #[serde(default)]
    #[ts(type = "number | null")]
    pub step: Option<u64>,
    #[serde(default)]
    #[ts(type = "number | null")]
    pub at_ms: Option<i64>,
    pub metrics: Metrics,
}

/// A batch of logged points.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct LogMetrics {
    pub points: Vec<LoggedPoint>,
}

/// What a `log` call stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct Logged {
    pub points: u32,
}

/// A milestone a learner reached with the state it saved last: Engram
/// keeps that state (and everything else as it is now) in a protected
/// `breakthrough` backup, marked on the timeline and the charts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ReportMilestone {
    /// What was reached, in the learner's words ("success >= 0.9").
    pub rule: String,
    /// The metric it is about, and its value.
    pub metric: String,
    pub value: f64,
    /// The step of the saved state that reached it: it must be the
    /// learner's live state (save first, then report).
    #[ts(type = "number")]
    pub step: u64,
}

/// Set a learner's milestone rules in Engram (they win over the ones it
/// declares), or with `rules` null go back to the learner's own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct SetMilestoneRules {
    /// The rules (an empty list: no milestones); null: the learner's own.
    pub rules: Option<Vec<crate::wire::MilestoneRule>>,
}

/// Describe a learner's metrics in Engram (each entry wins over what the
/// learner says of that metric), or with `metrics` null go back to the
/// learner's own descriptions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct SetMetricInfo {
    /// Metric name → its description (the whole of it: fields left null
    /// mean "none", not "the learner's"); null or empty: the learner's own.
    pub metrics: Option<std::collections::BTreeMap<String, crate::wire::LearnerMetric>>,
}

/// Supervise a learner: the command Engram starts it with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct SetLearnerCommand {
    /// The program and its arguments (no shell).
    pub argv: Vec<String>,
    /// The absolute directory it runs in; absent: the data directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Its state format, when the learner is new (as in [`AttachLearner`]).
    #[serde(default)]
    pub format: Option<String>,
}

/// A learner's state as stored: where it is and what it says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerState {
    /// blake3 of the state bytes, hex: its address in `objects/`.
    pub checksum: String,
    #[ts(type = "number")]
    pub size: u64,
    /// The learner's own step counter, if it gave one.
    #[ts(type = "number | null")]
    pub step: Option<u64>,
    pub metrics: Metrics,
    /// When it became durable (live), or the backup's instant (in a backup).
    #[ts(type = "number")]
    pub saved_at_ms: i64,
}

/// A learner and the state it resumes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct LearnerInfo {
    pub name: String,
    /// The learner's own name for its state format (Engram stores the bytes
    /// as they are; this tells a reader how to open them).
    pub format: String,
    #[ts(type = "number")]
    pub registered_at_ms: i64,
    /// Its newest durable state; null before its first save.
    pub live: Option<LearnerState>,
    /// One more after each restore of it: a client resumes at a generation
    /// and names it when it saves, so a save from before a restore the
    /// learner has not taken yet cannot overwrite the restored state.
    #[ts(type = "number")]
    pub generation: i64,
    /// The command Engram runs it with, if it supervises it.
    #[serde(default)]
    pub command: Option<LearnerCommand>,
    /// Its process, while Engram supervises it (filled in by the API).
    #[serde(default)]
    pub process: Option<crate::wire::ProcessStatus>,
    /// What its metrics mean: as described in Engram, where a metric was,
    /// else as the learner says.
    #[serde(default)]
    pub metric_info: std::collections::BTreeMap<String, LearnerMetric>,
    /// What the learner says its metrics mean (at its last attach).
    #[serde(default)]
    pub declared_metric_info: std::collections::BTreeMap<String, LearnerMetric>,
    /// The metrics described in Engram (the UI, the CLI or the API): their
    /// descriptions win over the learner's own.
    #[serde(default)]
    pub metric_info_set_here: Vec<String>,
    /// The milestones checked at each durable save: the ones set in
    /// Engram, if any were, else the ones the learner declared.
    #[serde(default)]
    pub milestone_rules: Vec<MilestoneRule>,
    /// The milestones the learner declared when it attached.
    #[serde(default)]
    pub declared_milestone_rules: Vec<MilestoneRule>,
    /// True when the rules were set in Engram (the UI, the CLI or the API)
    /// and win over the learner's own.
    #[serde(default)]
    pub milestone_rules_set_here: bool,
    /// When the user asked this learner to stop, if it runs outside Engram
    /// (no command) and has not attached again since; null otherwise.
    #[serde(default)]
    #[ts(type = "number | null")]
    pub stop_requested_at_ms: Option<i64>,
}

/// What deleting a learner left: the backups that still hold states of it
/// (restoring one of them, or attaching under the same name, brings the
/// learner back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct RemovedLearner {
    pub name: String,
    /// How many backups hold a state of it.
    #[ts(type = "number")]
    pub backups: i64,
    /// The newest of them (null: none — its state is gone for good).
    #[ts(type = "number | null")]
    pub newest_backup_id: Option<i64>,
}

/// What a learner says one of its metrics means (every field optional:
/// the metric's name, no unit, three decimals, no direction).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LearnerMetric {
    pub label: Option<String>,
    pub unit: Option<String>,
    pub format: Option<crate::wire::MetricFormat>,
    pub higher_is_better: Option<bool>,
}

/// A milestone a learner declares: Engram checks the metrics of each of
/// its durable saves, and the first saved state of a line of history that
/// meets it is kept in a protected `breakthrough` backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct MilestoneRule {
    pub metric: String,
    /// Reached when the metric is at least this…
    #[serde(default)]
    pub at_least: Option<f64>,
    /// …or at most this (exactly one of the two).
    #[serde(default)]
    pub at_most: Option<f64>,
}

/// How Engram starts a supervised learner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LearnerCommand {
    /// The program and its arguments (no shell: `["sh", "-c", "…"]` for one).
    pub argv: Vec<String>,
    /// The absolute directory it runs in.
    pub workdir: String,
    /// False after the user stopped it: Engram does not start it at launch.
    #[serde(default = "yes")]
    pub autostart: bool,
}

/// Where a supervised learner's process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ProcessPhase {
    /// Running; its pid is known.
    Running,
    /// It died; Engram starts it again at `next_start_at_ms`.
    Restarting,
    /// Asked to stop; waiting for it to exit.
    Stopping,
    /// Not running, and not started until someone starts it.
    Stopped,
    /// It exited with status 0: done, not restarted.
    Finished,
}

/// A supervised learner's process, as the UI and the CLI show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
pub struct ProcessStatus {
    pub phase: ProcessPhase,
    pub pid: Option<u32>,
    /// When the current (or last) process started.
    #[ts(type = "number | null")]
    pub started_at_ms: Option<i64>,
    /// How often it was started again after dying.
    pub restarts: u32,
    /// How the last process ended: "exit status 1", "killed by signal 9",
    /// "could not start: …".
    pub last_exit: Option<String>,
    #[ts(type = "number | null")]
    pub last_exit_at_ms: Option<i64>,
    /// When a restarting process starts again.
    #[ts(type = "number | null")]
    pub next_start_at_ms: Option<i64>,
    /// Its last lines of output (stdout and stderr, as they came), newest last.
    pub output: Vec<String>,
}

impl TryFrom<SaveLearnerStateQuery> for SaveLearnerState {
    type Error = Error;
    fn try_from(q: SaveLearnerStateQuery) -> Result<Self, Error> {
        let metrics = match q.metrics.as_deref() {
            None | Some("") => Metrics::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| {
                Error::InvalidInput(format!(
                    "metrics: a JSON object of names to numbers is expected ({e})"
                ))
            })?,
        };
        Ok(SaveLearnerState {
            step: q.step,
            metrics,
            generation: q.generation,
        })
    }
}

impl QueryForm<SaveLeasedState> for SaveLeasedStateQuery {
    fn into_request(self) -> crate::Result<SaveLeasedState> {
        self.try_into()
    }
    fn from_request(r: &SaveLeasedState) -> Self {
        let state = SaveLearnerStateQuery::from(&r.state);
        SaveLeasedStateQuery {
            lease: r.lease.clone(),
            step: state.step,
            metrics: state.metrics,
            generation: state.generation,
            next: r.next,
        }
    }
}

impl From<&SaveLearnerState> for SaveLearnerStateQuery {
    fn from(s: &SaveLearnerState) -> Self {
        SaveLearnerStateQuery {
            step: s.step,
            // A map of names to numbers always encodes.
            metrics: (!s.metrics.is_empty())
                .then(|| serde_json::to_string(&s.metrics).unwrap_or_default()),
            generation: s.generation,
        }
    }
}

impl TryFrom<SaveLeasedStateQuery> for SaveLeasedState {
    type Error = Error;
    fn try_from(q: SaveLeasedStateQuery) -> Result<Self, Error> {
        let state = SaveLearnerStateQuery {
            step: q.step,
            metrics: q.metrics,
            generation: q.generation,
        }
        .try_into()?;
        Ok(SaveLeasedState {
            lease: q.lease,
            state,
            next: q.next,
        })
    }
}

fn yes() -> bool {
    true
}
