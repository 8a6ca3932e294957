// Generated from the Rust API types by `engram_core::api::typescript`; do not edit.
// Regenerate: UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript

export type Metrics = Record<string, number>;

export type ErrorCode = "database" | "newer_schema" | "locked" | "db_locked" | "not_found" | "protected" | "corrupt_state" | "corrupt_database" | "invalid_snapshot" | "unsupported_format" | "too_large" | "disk_full" | "read_only" | "io" | "encode" | "invalid_input" | "runtime_stopped" | "internal" | "unauthorized" | "forbidden_host" | "storage_changed" | "clock_changed" | "stale_state" | "replica_unavailable" | "wrong_key" | "not_started" | "fleet_unavailable" | "fleet_refused" | "fleet_conflict";

export type ApiError = { code: ErrorCode, message: string, };

export type BackupKind = "initial" | "periodic" | "breakthrough" | "manual" | "pre-restore" | "imported";

export type Breakthrough = { engine: string, rule: string, metric: string, value: number, step: number, };

export type Cursor = { created_at_ms: number, id: number, };

export type Backup = { id: number, kind: BackupKind, 
/**
 * RFC 3339, UTC.
 */
created_at: string, created_at_ms: number, label: string | null, pinned: boolean, 
/**
 * The engines it holds, by name.
 */
engines: Array<string>, 
/**
 * The learners (engines in other processes) it holds, by name.
 */
learners: Array<string>, 
/**
 * The step of each learner's state in it (those that gave one).
 */
learner_steps: Record<string, number>, 
/**
 * Each engine's metrics at that instant.
 */
metrics: { [key in string]: Metrics }, 
/**
 * The metrics each learner saved with its state in it (those that
 * gave any).
 */
learner_metrics: { [key in string]: Metrics }, 
/**
 * Encoded size of all its states, bytes.
 */
size: number, breakthrough: Breakthrough | null, 
/**
 * For imported backups: the source file's manifest summary.
 */
origin: unknown, 
/**
 * Where it stands with the offsite replicas; null when none is set up.
 */
offsite: OffsiteMark | null, };

export type BackupPage = { items: Array<Backup>, 
/**
 * Pass as `after` for the next page; null on the last page.
 */
next: Cursor | null, 
/**
 * How many backups match the filters in all.
 */
total: number, };

export type ListBackups = { 
/**
 * Only these kinds (empty: all).
 */
kinds: Array<BackupKind>, 
/**
 * Only backups holding this engine.
 */
engine: string | null, 
/**
 * Page size (default 50, at most 1000).
 */
limit: number | null, 
/**
 * Skip this many (for jumping; prefer `after` for scrolling).
 */
offset: number | null, 
/**
 * Start after this position (keyset paging).
 */
after: Cursor | null, 
/**
 * Only backups whose label or milestone contains this text (ASCII
 * case ignored; at most 200 characters).
 */
text: string | null, 
/**
 * Only pinned backups.
 */
pinned: boolean, };

export type CreateBackup = { label: string | null, };

export type RestoreRequest = { engine: string | null, };

export type LabelRequest = { label: string | null, };

export type SnapshotFormat = "json" | "binary";

export type ExportRequest = { format: SnapshotFormat, };

export type Exported = { id: number, path: string, bytes: number, };

export type Deleted = { deleted: number, };

export type CompareRequest = { with: number, 
/**
 * Compare with the live state (as last saved) instead; `with` is then
 * not read.
 */
live: boolean, };

export type ComparedMetric = { key: string, from: number | null, to: number | null, change: number | null, };

export type ComparedState = { name: string, 
/**
 * Held by the first backup, by the second.
 */
in_from: boolean, in_to: boolean, 
/**
 * Whether its state differs (by checksum; null unless both hold it
 * and the checksums are known).
 */
changed: boolean | null, 
/**
 * A learner's step in each (null for engines, or none given).
 */
step_from: number | null, step_to: number | null, metrics: Array<ComparedMetric>, 
/**
 * What changed inside the state; null when it is unchanged or held by
 * one backup only.
 */
inside: Inside | null, };

export type Comparison = { from: number, 
/**
 * 0 when the second side is the live state.
 */
to: number, 
/**
 * The second side is the live state as last saved.
 */
to_live: boolean, engines: Array<ComparedState>, learners: Array<ComparedState>, };

export type Inside = { kind: string, 
/**
 * Figures read from the states themselves (not the reported metrics):
 * Q-table entries changed, replay-buffer size, calls by route, sizes.
 */
figures: Array<ComparedMetric>, 
/**
 * How many of something changed (Q-table entries, greedy actions,
 * arrays, bytes).
 */
counted: Array<Counted>, 
/**
 * Arrays in either state: the Q-table, ES parameters, ZAP's value
 * weights, every array of an `engram.pack` state.
 */
arrays: Array<ArrayChange>, 
/**
 * The largest changes among single entries (Q-table: state, action).
 */
largest: Array<EntryChange>, 
/**
 * The greedy policy of each, on a grid the UI can draw (grid worlds).
 */
policy: PolicyMaps | null, 
/**
 * Plain values (an `engram.pack` state's non-array entries) that differ.
 */
values_changed: Array<string>, 
/**
 * Why less could be said (a damaged state, a format not understood).
 */
note: string | null, };

export type Counted = { what: string, n: number, of: number | null, };

export type ArrayChange = { name: string, 
/**
 * Element type (numpy's, e.g. `<f8`) and shape in each; null where
 * that state has no such array.
 */
dtype_from: string | null, dtype_to: string | null, shape_from: Array<number> | null, shape_to: Array<number> | null, 
/**
 * Elements whose bits differ; null when the two cannot be compared
 * element by element (absent on one side, another shape or type).
 */
changed: number | null, 
/**
 * Largest and mean absolute difference over all elements (numbers
 * only; NaN and infinite differences are counted in `changed` but
 * left out of these).
 */
max_abs: number | null, mean_abs: number | null, };

export type EntryChange = { 
/**
 * What the entry is, e.g. `state 5, action 2 (right)`.
 */
entry: string, from: number, to: number, };

export type PolicyMaps = { env: string, rows: number, cols: number, cells: Array<string>, actions: Array<string>, from: Array<number>, to: Array<number>, 
/**
 * Cells (where an action applies) whose greedy action changed.
 */
changed: number, };

export type DrillRequest = { 
/**
 * Engines and learners to drill; empty: every one the backup holds
 * that can be drilled (the engines with an evaluation, the learners
 * with a drill command).
 */
units: Array<string>, };

export type DrillResult = { unit: string, 
/**
 * When it ended, and how long it took.
 */
at_ms: number, took_ms: number, 
/**
 * The figures measured now on the backup's state.
 */
metrics: Metrics, 
/**
 * What the backup itself reported for the same keys (measured when it
 * was made, or earlier: an evaluation runs every so many steps).
 */
reported: Metrics, 
/**
 * Why it failed (a damaged state, a command that failed or ran out of
 * time); `metrics` is then empty.
 */
error: string | null, };

export type Drills = { backup: number, 
/**
 * Newest first.
 */
results: Array<DrillResult>, };

export type SetLearnerDrill = { argv: Array<string>, 
/**
 * Default 60 000; at most one hour.
 */
timeout_ms: number | null, 
/**
 * Working directory; default the data directory.
 */
cwd: string | null, };

export type LearnerDrill = { learner: string, argv: Array<string> | null, timeout_ms: number | null, workdir: string | null, };

export type RetentionRequest = { ids: number[], };

export type RetentionOutlook = { id: number, 
/**
 * Each reason it is kept, in words; empty when the next run deletes it.
 */
kept_because: Array<string>, rolls_off_next: boolean, };

export type Hold = { id: number, seconds: number, };

export type AttachLearner = { name: string, 
/**
 * The learner's own name for its state format (e.g. `engram.pack/1`).
 * Absent: the one it was registered with (`raw` for a new learner).
 */
format: string | null, 
/**
 * What its metrics mean (label, unit, format, direction), for its
 * curves; replaces what it said before. Absent or empty: unchanged.
 */
metrics: { [key in string]: LearnerMetric }, 
/**
 * Milestones Engram watches its saves for (replaces the ones declared
 * before; absent or empty: unchanged).
 */
milestones: Array<MilestoneRule>, };

export type SaveLearnerState = { step: number | null, metrics: Metrics, 
/**
 * The learner's generation this state continues (from attach, resume
 * or a restore): a save from before a restore it has not taken is
 * refused (`stale_state`). Absent: not checked.
 */
generation: number | null, };

export type SlotLease = { 
/**
 * Names the lease when the state is saved.
 */
lease: string, 
/**
 * The file to write the state into (absolute), replacing what it
 * holds: write from its start and cut it to the state's length.
 */
path: string, };

export type SaveLeasedState = { lease: string, state: SaveLearnerState, 
/**
 * Lend the next slot with the answer (one round trip per save).
 */
next: boolean, };

export type LeasedSave = { saved: LearnerState, next: SlotLease | null, };

export type ReadLearnerState = { backup: number | null, };

export type LearnerStateExported = { learner: string, 
/**
 * The backup whose state it is; null: the live state.
 */
backup: number | null, path: string, bytes: number, 
/**
 * blake3 of the bytes written (checked against the stored state's).
 */
checksum: string, };

export type LoggedPoint = { step: number | null, at_ms: number | null, metrics: Metrics, };

export type LogMetrics = { points: Array<LoggedPoint>, };

export type Logged = { points: number, };

export type LearnerState = { 
/**
 * blake3 of the state bytes, hex: its address in `objects/`.
 */
checksum: string, size: number, 
/**
 * The learner's own step counter, if it gave one.
 */
step: number | null, metrics: Metrics, 
/**
 * When it became durable (live), or the backup's instant (in a backup).
 */
saved_at_ms: number, };

export type LearnerInfo = { name: string, 
/**
 * The learner's own name for its state format (Engram stores the bytes
 * as they are; this tells a reader how to open them).
 */
format: string, registered_at_ms: number, 
/**
 * Its newest durable state; null before its first save.
 */
live: LearnerState | null, 
/**
 * One more after each restore of it: a client resumes at a generation
 * and names it when it saves, so a save from before a restore the
 * learner has not taken yet cannot overwrite the restored state.
 */
generation: number, 
/**
 * The command Engram runs it with, if it supervises it.
 */
command: LearnerCommand | null, 
/**
 * Its process, while Engram supervises it (filled in by the API).
 */
process: ProcessStatus | null, 
/**
 * What its metrics mean: as described in Engram, where a metric was,
 * else as the learner says.
 */
metric_info: { [key in string]: LearnerMetric }, 
/**
 * What the learner says its metrics mean (at its last attach).
 */
declared_metric_info: { [key in string]: LearnerMetric }, 
/**
 * The metrics described in Engram (the UI, the CLI or the API): their
 * descriptions win over the learner's own.
 */
metric_info_set_here: Array<string>, 
/**
 * The milestones checked at each durable save: the ones set in
 * Engram, if any were, else the ones the learner declared.
 */
milestone_rules: Array<MilestoneRule>, 
/**
 * The milestones the learner declared when it attached.
 */
declared_milestone_rules: Array<MilestoneRule>, 
/**
 * True when the rules were set in Engram (the UI, the CLI or the API)
 * and win over the learner's own.
 */
milestone_rules_set_here: boolean, 
/**
 * When the user asked this learner to stop, if it runs outside Engram
 * (no command) and has not attached again since; null otherwise.
 */
stop_requested_at_ms: number | null, };

export type RemovedLearner = { name: string, 
/**
 * How many backups hold a state of it.
 */
backups: number, 
/**
 * The newest of them (null: none — its state is gone for good).
 */
newest_backup_id: number | null, };

export type LearnerCommand = { 
/**
 * The program and its arguments (no shell: `["sh", "-c", "…"]` for one).
 */
argv: Array<string>, 
/**
 * The absolute directory it runs in.
 */
workdir: string, 
/**
 * False after the user stopped it: Engram does not start it at launch.
 */
autostart: boolean, };

export type SetLearnerCommand = { 
/**
 * The program and its arguments (no shell).
 */
argv: Array<string>, 
/**
 * The absolute directory it runs in; absent: the data directory.
 */
workdir: string | null, 
/**
 * Its state format, when the learner is new (as in [`AttachLearner`]).
 */
format: string | null, };

export type SetMilestoneRules = { 
/**
 * The rules (an empty list: no milestones); null: the learner's own.
 */
rules: Array<MilestoneRule> | null, };

export type SetMetricInfo = { 
/**
 * Metric name → its description (the whole of it: fields left null
 * mean "none", not "the learner's"); null or empty: the learner's own.
 */
metrics: { [key in string]: LearnerMetric } | null, };

export type ReportMilestone = { 
/**
 * What was reached, in the learner's words ("success >= 0.9").
 */
rule: string, 
/**
 * The metric it is about, and its value.
 */
metric: string, value: number, 
/**
 * The step of the saved state that reached it: it must be the
 * learner's live state (save first, then report).
 */
step: number, };

export type LearnerMetric = { label: string | null, unit: string | null, format: MetricFormat | null, higher_is_better: boolean | null, };

export type MilestoneRule = { metric: string, 
/**
 * Reached when the metric is at least this…
 */
at_least: number | null, 
/**
 * …or at most this (exactly one of the two).
 */
at_most: number | null, };

export type ProcessPhase = "running" | "restarting" | "stopping" | "stopped" | "finished";

export type ProcessStatus = { phase: ProcessPhase, pid: number | null, 
/**
 * When the current (or last) process started.
 */
started_at_ms: number | null, 
/**
 * How often it was started again after dying.
 */
restarts: number, 
/**
 * How the last process ended: "exit status 1", "killed by signal 9",
 * "could not start: …".
 */
last_exit: string | null, last_exit_at_ms: number | null, 
/**
 * When a restarting process starts again.
 */
next_start_at_ms: number | null, 
/**
 * Its last lines of output (stdout and stderr, as they came), newest last.
 */
output: Array<string>, };

export type TimelineQuery = { 
/**
 * Only these kinds (empty: all).
 */
kinds: Array<BackupKind>, 
/**
 * The range, inclusive (default: the oldest to the newest backup).
 */
from_ms: number | null, to_ms: number | null, 
/**
 * How many equal buckets to count in (default 200, at most 4,000).
 */
buckets: number | null, 
/**
 * Draw backups one by one when the range holds at most this many
 * (default 1,000, at most 5,000).
 */
marks: number | null, };

export type TimelineMark = { id: number, kind: BackupKind, created_at_ms: number, pinned: boolean, label: string | null, breakthrough: Breakthrough | null, };

export type KindCount = { kind: BackupKind, count: number, };

export type DensityBucket = { start_ms: number, 
/**
 * Exclusive.
 */
end_ms: number, counts: Array<KindCount>, };

export type TimelineView = { 
/**
 * The oldest and newest backup of any kind: the whole history, which
 * the axis always spans when not zoomed. Null when there are none.
 */
first_ms: number | null, last_ms: number | null, 
/**
 * The range summarised.
 */
from_ms: number, to_ms: number, 
/**
 * Backups of the chosen kinds in the range, and in all.
 */
in_range: number, total: number, buckets: Array<DensityBucket>, 
/**
 * Backups drawn one by one, oldest first.
 */
marks: Array<TimelineMark>, 
/**
 * True when `marks` holds every backup of the range; false when the
 * range holds more than the limit and `marks` holds only the initial
 * backup, milestones and pinned backups (the initial one and the
 * newest others, up to the limit).
 */
complete: boolean, };

export type KindStorage = { kind: BackupKind, backups: number, added_bytes: number, };

export type StorageDay = { 
/**
 * The day's start, unix milliseconds (UTC).
 */
day_ms: number, backups: number, added_bytes: number, };

export type StorageReport = { 
/**
 * The database file's pages, and the pages free for reuse inside it.
 */
db_bytes: number, free_bytes: number, 
/**
 * The write-ahead log on disk now (checkpoints fold it back).
 */
wal_bytes: number, backups: number, 
/**
 * Distinct state contents kept for backups (each stored once).
 */
blobs: number, 
/**
 * What every backup's states add up to, encoded, as if each were
 * stored separately.
 */
referenced_bytes: number, 
/**
 * The distinct contents among them, encoded.
 */
unique_bytes: number, 
/**
 * The distinct contents as stored (compressed).
 */
stored_bytes: number, 
/**
 * The engines' live states (overwritten by every autosave).
 */
live_bytes: number, 
/**
 * Stored metric history points (all resolutions).
 */
history_points: number, 
/**
 * Distinct learner states that learners' live states and backups name.
 */
learner_states: number, 
/**
 * What those names add up to, as if each were stored separately.
 */
learner_referenced_bytes: number, 
/**
 * The distinct learner states kept inside the database (small ones)...
 */
learner_inline_bytes: number, 
/**
 * ...and those kept as files (under `objects/`, or a learner's slot).
 */
learner_file_bytes: number, 
/**
 * What learners' slot files take on disk (`slots/`): each learner's
 * live state and the slots its saves overwrite in place (up to four).
 */
learner_slot_bytes: number, 
/**
 * Per backup kind: how many, and the stored bytes its backups added
 * (each content counted once, for the oldest backup that holds it).
 */
by_kind: Array<KindStorage>, 
/**
 * Per UTC day that kept backups were taken on: how many, and the stored
 * bytes they added (as in `by_kind`), oldest first.
 */
growth: Array<StorageDay>, };

export type RestoreReport = { from_backup: number, engines: Array<string>, 
/**
 * The backup that undoes this restore (null when nothing was live before).
 */
pre_restore_backup: number | null, };

export type SkipNote = { engine: string, 
/**
 * "live" or `"backup <id>"`.
 */
what: string, code: ErrorCode, detail: string, };

export type StartupReport = { 
/**
 * True when this data directory had no state: an `initial` backup was taken.
 */
first_start: boolean, 
/**
 * Engines restored from the live state or a backup, and from where.
 */
restored_from: { [key in string]: string }, 
/**
 * Damaged states passed over.
 */
skipped: Array<SkipNote>, };

export type EngineStatus = { metrics: Metrics, 
/**
 * When its live state was last saved (RFC 3339), if ever.
 */
saved_at: string | null, 
/**
 * Why the engine is paused: it failed (panicked) in a tick and is not
 * run or saved until a restore replaces its state. None: running.
 */
paused: string | null, };

export type Status = { 
/**
 * Latest metrics per engine: live from the running engines, else as saved.
 */
engines: { [key in string]: EngineStatus }, 
/**
 * Newest live save (RFC 3339), if ever.
 */
saved_at: string | null, saved_at_ms: number | null, 
/**
 * Engines are running on this data directory (this process or another).
 */
running: boolean, 
/**
 * The process that runs them, when known.
 */
pid: string | null, backups: number, data_dir: string, 
/**
 * What happened at start-up (only from the process running the engines).
 */
startup: StartupReport | null, };

export type VerifyProblem = { 
/**
 * The backup (None for a live state or the database as a whole).
 */
backup_id: number | null, engine: string | null, 
/**
 * Stable error code, as in [`Error::code`].
 */
code: ErrorCode, detail: string, };

export type VerifyReport = { backups_checked: number, states_checked: number, 
/**
 * `PRAGMA quick_check` / `integrity_check` said "ok".
 */
database_ok: boolean, problems: Array<VerifyProblem>, };

export type RetentionPolicy = { 
/**
 * Keep the newest N periodic backups.
 */
keep_last_periodic: number, 
/**
 * Also keep the newest periodic backup of each of the last N hours that have one.
 */
keep_hourly: number, 
/**
 * … of each of the last N days (UTC) that have one.
 */
keep_daily: number, 
/**
 * … of each of the last N weeks (ISO, Monday first) that have one.
 */
keep_weekly: number, 
/**
 * Keep the newest N pre-restore backups (the undo history of restores).
 */
keep_last_pre_restore: number, };

export type Settings = { 
/**
 * Autosave interval, seconds (0.05 – 3600).
 */
autosave_secs: number, 
/**
 * Periodic backup interval, seconds (1 – 30 days).
 */
backup_every_secs: number, retention: RetentionPolicy, 
/**
 * ZAP: breakthrough when the success rate over the last 100 plans reaches this…
 */
zap_success_rate: number, 
/**
 * …with at least this many plans.
 */
zap_min_plans: number, 
/**
 * MDP/ES: breakthrough when best fitness reaches this…
 */
mdp_min_fitness: number, 
/**
 * …after at least this many generations.
 */
mdp_min_generations: number, 
/**
 * MDP/ES: breakthrough when the greedy Q policy reaches this share of the optimum.
 */
mdp_min_policy_quality: number, 
/**
 * Orchestrator: the first milestone at this many cross-system calls…
 */
orchestrator_every: number, 
/**
 * …then the threshold is multiplied by this.
 */
orchestrator_growth: number, 
/**
 * Check each offsite replica's structure every this many hours (0: never).
 */
replica_verify_hours: number, };

export type SettingKind = "integer" | "number";

export type SettingField = { 
/**
 * Path in the settings object, e.g. `retention.keep_daily`.
 */
key: string, 
/**
 * The fieldset it belongs to.
 */
group: string, label: string, help: string, kind: SettingKind, min: number, max: number, };

export type SeriesRequest = { engine: string, key: string, from_ms: number | null, to_ms: number | null, points: number | null, };

export type HistoryBranch = { id: number, started_at: number, parent: number | null, 
/**
 * The backup whose restore started it.
 */
from_backup: number | null, 
/**
 * `start` (first launch) or `restore`.
 */
reason: string, };

export type SeriesPoint = { at_ms: number, value: number | null, min: number | null, max: number | null, branch: number, };

export type NotRunning = { from_ms: number, to_ms: number, };

export type MetricSeries = { engine: string, key: string, points: Array<SeriesPoint>, 
/**
 * How many stored points the range held before downsampling.
 */
stored: number, 
/**
 * Every branch, so a chart can break its line where one starts.
 */
branches: Array<HistoryBranch>, 
/**
 * The spans in the range in which the series' owner did not run (Engram
 * stopped, a learner's process gone): a chart draws no line across them.
 */
not_running: Array<NotRunning>, };

export type MetricFormat = "integer" | "percent" | "decimal" | "milliseconds" | "time";

export type MetricInfo = { engine: string, key: string, label: string, 
/**
 * What it counts or measures, for axes and tooltips ("plans", "calls", "").
 */
unit: string, format: MetricFormat, 
/**
 * True when higher is better, false when lower is, null when neither.
 */
higher_is_better: boolean | null, 
/**
 * Shown on the engine's dashboard card (in catalog order).
 */
card: boolean, 
/**
 * Drawn as a learning curve.
 */
chart: boolean, 
/**
 * An evaluation's figure: the metric holding the step it was measured
 * at (absent before the first evaluation: "not evaluated yet").
 */
measured_at: string | null, 
/**
 * An evaluation's figure: the metric holding when it was measured
 * (unix ms; absent where the time is not known — an evaluation made
 * before times were kept).
 */
measured_when: string | null, };

export type EngramEvent = { "type": "metrics", at_ms: number, engines: { [key in string]: Metrics }, } | { "type": "saved", at_ms: number, } | { "type": "backup_created", backup: Backup, } | { "type": "backups_deleted", ids: number[], } | { "type": "breakthrough", breakthrough: Breakthrough, backup_id: number | null, } | { "type": "restored", from_backup: number, engines: Array<string>, pre_restore_backup: number, } | { "type": "error", code: ErrorCode, message: string, } | { "type": "learner_process", learner: string, phase: ProcessPhase, } | { "type": "learner_stop_requested", learner: string, } | { "type": "learner_removed", learner: string, };

export type ReplicaKind = "local" | "sftp";

export type OffsiteMark = "replicated" | "queued" | "failed";

export type AddReplica = { kind: ReplicaKind, 
/**
 * local: a directory path; sftp: `user@host:path`.
 */
location: string, 
/**
 * What to call it (default: derived from the location).
 */
name: string | null, port: number | null, 
/**
 * sftp: the private key file.
 */
identity: string | null, 
/**
 * Engram never deletes anything there (prune is refused).
 */
append_only: boolean, };

export type ReplicaProblem = { code: ErrorCode, message: string, at_ms: number, };

export type ReplicaVerifyReport = { ok: boolean, read_data: boolean, checked_at_ms: number, seconds: number, 
/**
 * Engram's snapshots in the repository.
 */
snapshots: number, 
/**
 * Distinct state chunks read and decrypted (read-data only).
 */
blobs_read: number, bytes_read: number, 
/**
 * Each problem, as restic's check or the read found it.
 */
problems: Array<string>, 
/**
 * The Engram backups a damaged pack or tree affects.
 */
affected_backups: Array<number>, };

export type ReplicaStatus = { name: string, kind: ReplicaKind, location: string, port: number | null, identity: string | null, append_only: boolean, added_at_ms: number, 
/**
 * This data directory's id: the hostname of its snapshots.
 */
host_id: string, 
/**
 * Backups the replica holds (including ones deleted here since).
 */
replicated: number, 
/**
 * Backups here it does not hold yet.
 */
behind: number, 
/**
 * Backups it will not get, with why (see `skipped_reasons`).
 */
skipped: number, 
/**
 * How long the oldest backup still to go has waited (null: none waits).
 */
lag_ms: number | null, 
/**
 * `up_to_date`, `behind` (uploading) or `failing` (the last attempt failed).
 */
state: string, 
/**
 * One line: "up to date", or "behind 3, " and the reason.
 */
summary: string, problem: ReplicaProblem | null, last_success_at_ms: number | null, history_at_ms: number | null, 
/**
 * The states' bytes the replica holds, and what uploading them added
 * to it after deduplication (before compression).
 */
bytes_replicated: number, bytes_added: number, last_verify: ReplicaVerifyReport | null, };

export type ReplicaAdded = { replica: ReplicaStatus, 
/**
 * Whether the repository was created now (else an existing one,
 * written with the same key, was joined).
 */
created: boolean, 
/**
 * The repository key, when this call created it.
 */
new_key: string | null, 
/**
 * The owner-only file that holds the key.
 */
key_file: string, };

export type ReplicaKey = { key: string, key_file: string, };

export type RemovedReplica = { name: string, location: string, };

export type VerifyReplica = { read_data: boolean, subset: string | null, };

export type ReplicaPruneReport = { 
/**
 * Backups whose snapshots were forgotten (deleted here by retention,
 * neither pinned nor breakthrough).
 */
forgotten: Array<number>, kept: number, packs_removed: number, bytes_freed: number, };

export type ReplicaBackup = { backup_id: number, snapshot_id: string, kind: BackupKind, created_at_ms: number, label: string | null, pinned: boolean, 
/**
 * Whether this data directory still has it.
 */
here: boolean, bytes: number, };

export type RetrieveBackup = { backup_id: number, };

export type RecoverReport = { data_dir: string, host_id: string, recovered: Array<number>, 
/**
 * Backups left out, each with why (a damaged pack, a failed checksum).
 */
skipped: Array<string>, 
/**
 * The backup the engines and learners resume from.
 */
resumed_from: number | null, history_points: number, bytes: number, seconds: number, };

export type FirstRunState = "waiting" | "recovering" | "running";

export type FirstRun = { state: FirstRunState, data_dir: string, 
/**
 * Backups recovered so far, of `total` (0 of 0 until the replica has
 * answered with its list).
 */
done: number, total: number, 
/**
 * Why the last recovery failed (the data directory was left empty).
 */
failed: ApiError | null, };

export type RecoverHere = { kind: ReplicaKind, 
/**
 * local: a directory path; sftp: `user@host:path`.
 */
location: string, port: number | null, 
/**
 * sftp: the private key file.
 */
identity: string | null, 
/**
 * The replicas' key (shown when the replica was added; `engram
 * replicas key` prints it).
 */
key: string, 
/**
 * The host whose timeline to take, when the replica holds several.
 */
host: string | null, };

export type BackupValue = { id: number, created_at_ms: number, kind: BackupKind, 
/**
 * Null where that backup's state carries no such metric.
 */
value: number | null, };

export type MetricLineRequest = { 
/**
 * A built-in engine or a learner.
 */
engine: string, key: string, 
/**
 * Also its value in the backups on other lines of history (those a
 * restore left), in `elsewhere`.
 */
other_lines: boolean, };

export type MetricLine = { engine: string, key: string, 
/**
 * Along the current line of history, oldest first.
 */
backups: Array<BackupValue>, 
/**
 * The backups holding its state on other lines of history, oldest
 * first (asked with `other_lines`; empty otherwise).
 */
elsewhere: Array<BackupValue>, };

export type FindFall = { engine: string, key: string, below: number, };

export type FallFound = { 
/**
 * The last backup at or above the threshold before the fall, and the
 * first below it (both null when it never fell).
 */
last_good: BackupValue | null, fell_at: BackupValue | null, 
/**
 * Backups along the line holding that state, and how many of them
 * carry no value of the metric.
 */
checked: number, without_value: number, 
/**
 * Backups drilled to find it (`bisect_fall`), in the order they were.
 */
drilled: Array<number>, };

export type FleetJoin = { 
/**
 * `postgresql://user:password@host:port/database` (`?sslmode=require`
 * for TLS). Kept in `fleet.conf`, owner-only.
 */
url: string, 
/**
 * This host's name in the fleet (default: the system's host name, or
 * the name set before).
 */
name: string | null, 
/**
 * This data directory moved to another machine: take its host id
 * over from where it was.
 */
take_over: boolean, 
/**
 * This data directory is a copy of another member's: give it an id of
 * its own.
 */
new_id: boolean, };

export type FleetName = { name: string, };

export type FleetProblem = { code: ErrorCode, message: string, at_ms: number, };

export type FleetStatus = { joined: boolean, 
/**
 * The fleet's URL without its password.
 */
url: string | null, host_id: string, name: string, 
/**
 * `not_joined`, `up_to_date`, `behind` (sending) or `failing`.
 */
state: string, 
/**
 * One line for a person.
 */
summary: string, 
/**
 * Changes waiting to be sent.
 */
queued: number, 
/**
 * How long the oldest waiting change has waited.
 */
lag_ms: number | null, joined_at_ms: number | null, last_success_at_ms: number | null, 
/**
 * Rows sent since joining.
 */
pushed_rows: number, 
/**
 * Rows the fleet refused (left out of the catalog), and why for the
 * newest.
 */
refused_rows: number, last_refused: string | null, problem: FleetProblem | null, };

export type FleetLeft = { 
/**
 * Whether this host was a member.
 */
was_member: boolean, 
/**
 * Whether its rows were removed from the catalog too (false when the
 * fleet could not be reached: they stay, marked stale).
 */
removed_from_catalog: boolean, message: string, };

export type FleetHost = { host_id: string, name: string, joined_at_ms: number, last_sync_at_ms: number | null, 
/**
 * How long since its last sync (as PostgreSQL's clock sees it).
 */
lag_ms: number | null, 
/**
 * No sync for over a minute: down, offline or failing.
 */
stale: boolean, engram_version: string, backups: number, newest_backup_ms: number | null, 
/**
 * Its engines and learners (not deleted).
 */
units: Array<string>, 
/**
 * The host asking.
 */
this_host: boolean, };

export type FleetBackupsQuery = { 
/**
 * Only this host (its id or its name).
 */
host: string | null, 
/**
 * Only backups holding this learner's or engine's state.
 */
learner: string | null, 
/**
 * Only this kind.
 */
kind: BackupKind | null, 
/**
 * Page size (default 50, at most 1,000).
 */
limit: number | null, 
/**
 * Keyset paging: start after this backup (from the page's `next`).
 */
after_created_at_ms: number | null, after_host: string | null, after_id: number | null, };

export type FleetState = { name: string, 
/**
 * `engine` or `learner`.
 */
kind: string, 
/**
 * blake3 of the state, hex.
 */
checksum: string, size: number, step: number | null, metrics: Metrics, };

export type FleetBackup = { host_id: string, host_name: string, id: number, kind: BackupKind, created_at_ms: number, label: string | null, pinned: boolean, 
/**
 * A breakthrough's milestone: `{engine, rule, metric, value, step}`.
 */
milestone: Record<string, unknown> | null, states: Array<FleetState>, bytes: number, 
/**
 * The replica repositories (ids) that hold it: where another host can
 * read it from.
 */
replicas: Array<string>, };

export type FleetCursor = { created_at_ms: number, host: string, id: number, };

export type FleetBackupPage = { backups: Array<FleetBackup>, next: FleetCursor | null, };

export type FleetRestore = { 
/**
 * The host that made it (its id or its name).
 */
host: string, 
/**
 * Its id on that host.
 */
backup: number, 
/**
 * Only this engine or learner (default: every state it holds).
 */
only: string | null, };

export type FleetRestoreReport = { 
/**
 * The backup as it is now here (`imported`, its origin naming the
 * host and backup it came from).
 */
imported_as: number, 
/**
 * The restore of it (with the pre-restore backup that undoes it).
 */
restore: RestoreReport, 
/**
 * The learners whose state was restored here.
 */
learners: Array<string>, 
/**
 * Every state's hash was checked against the fleet's record.
 */
verified: Array<string>, };

export type FleetTimelineQuery = { 
/**
 * Only this host (its name or id).
 */
host: string | null, 
/**
 * Only these kinds, comma-separated (`breakthrough,manual`; empty: all).
 */
kinds: string | null, 
/**
 * The range, inclusive (default: the oldest to the newest backup).
 */
from_ms: number | null, to_ms: number | null, 
/**
 * About how many buckets (default 200, at most 4,000); over a range
 * of hours or more they are whole hours, so each may be a little wider.
 */
buckets: number | null, 
/**
 * Draw backups one by one when the range holds at most this many
 * (default 1,000, at most 5,000).
 */
marks: number | null, };

export type FleetMark = { host_id: string, host_name: string, id: number, kind: BackupKind, created_at_ms: number, pinned: boolean, label: string | null, };

export type FleetTimeline = { first_ms: number | null, last_ms: number | null, from_ms: number, to_ms: number, in_range: number, total: number, buckets: Array<DensityBucket>, 
/**
 * Backups drawn one by one, oldest first: every one of the range when
 * `complete`, else initial, milestone and pinned ones (the newest, up
 * to the limit).
 */
marks: Array<FleetMark>, complete: boolean, };

export type FleetSeries = { host_id: string, host_name: string, 
/**
 * Bucket means (weighted by the saves each stored point folds), with
 * the bucket's min and max, oldest first.
 */
points: Array<SeriesPoint>, 
/**
 * Stored points the curve was made from.
 */
stored: number, };

/** Every backup kind, in timeline-legend order. */
export const BACKUP_KINDS: readonly BackupKind[] = [
  "initial",
  "periodic",
  "breakthrough",
  "manual",
  "pre-restore",
  "imported"
];

/** Every error code the backend sends. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "database",
  "newer_schema",
  "locked",
  "db_locked",
  "not_found",
  "protected",
  "corrupt_state",
  "corrupt_database",
  "invalid_snapshot",
  "unsupported_format",
  "too_large",
  "disk_full",
  "read_only",
  "io",
  "encode",
  "invalid_input",
  "runtime_stopped",
  "internal",
  "unauthorized",
  "forbidden_host",
  "storage_changed",
  "clock_changed",
  "stale_state",
  "replica_unavailable",
  "wrong_key",
  "not_started",
  "fleet_unavailable",
  "fleet_refused",
  "fleet_conflict"
];

/** The settings form: one entry per field, in order. */
export const SETTING_FIELDS: readonly SettingField[] = [
  {
    "key": "autosave_secs",
    "group": "Saving",
    "label": "Autosave every (seconds)",
    "help": "How often the live state is saved; a crash loses at most this much.",
    "kind": "number",
    "min": 0.05,
    "max": 3600.0
  },
  {
    "key": "backup_every_secs",
    "group": "Saving",
    "label": "Periodic backup every (seconds)",
    "help": "How often a periodic backup is added to the timeline (at most 30 days).",
    "kind": "number",
    "min": 1.0,
    "max": 2592000.0
  },
  {
    "key": "retention.keep_last_periodic",
    "group": "Retention",
    "label": "Keep last periodic",
    "help": "The newest this many periodic backups are kept.",
    "kind": "integer",
    "min": 0.0,
    "max": 1000000.0
  },
  {
    "key": "retention.keep_hourly",
    "group": "Retention",
    "label": "Keep hourly",
    "help": "Also keep the newest periodic backup of each of the last this many hours.",
    "kind": "integer",
    "min": 0.0,
    "max": 1000000.0
  },
  {
    "key": "retention.keep_daily",
    "group": "Retention",
    "label": "Keep daily",
    "help": "… of each of the last this many days (UTC).",
    "kind": "integer",
    "min": 0.0,
    "max": 1000000.0
  },
  {
    "key": "retention.keep_weekly",
    "group": "Retention",
    "label": "Keep weekly",
    "help": "… of each of the last this many weeks.",
    "kind": "integer",
    "min": 0.0,
    "max": 1000000.0
  },
  {
    "key": "retention.keep_last_pre_restore",
    "group": "Retention",
    "label": "Keep last pre-restore",
    "help": "The newest this many pre-restore backups (the undo history of restores).",
    "kind": "integer",
    "min": 0.0,
    "max": 1000000.0
  },
  {
    "key": "zap_success_rate",
    "group": "Breakthrough thresholds",
    "label": "ZAP held-out success (share of optimum)",
    "help": "A ZAP milestone when its success on the held-out maps, as a share of each map's optimum, reaches this (0–1).",
    "kind": "number",
    "min": 0.0,
    "max": 1.0
  },
  {
    "key": "zap_min_plans",
    "group": "Breakthrough thresholds",
    "label": "ZAP minimum plans",
    "help": "…after at least this many plans.",
    "kind": "integer",
    "min": 0.0,
    "max": 9007199254740991.0
  },
  {
    "key": "mdp_min_fitness",
    "group": "Breakthrough thresholds",
    "label": "ES validated best fitness",
    "help": "An MDP/ES milestone when the best policy's fitness on the 100-episode validation set reaches this (0–1).",
    "kind": "number",
    "min": 0.0,
    "max": 1.0
  },
  {
    "key": "mdp_min_generations",
    "group": "Breakthrough thresholds",
    "label": "ES minimum generations",
    "help": "…after at least this many ES generations.",
    "kind": "integer",
    "min": 0.0,
    "max": 9007199254740991.0
  },
  {
    "key": "mdp_min_policy_quality",
    "group": "Breakthrough thresholds",
    "label": "Q policy quality",
    "help": "An MDP/ES milestone when the greedy Q policy's exact expected return reaches this share of the optimum (0–1).",
    "kind": "number",
    "min": 0.0,
    "max": 1.0
  },
  {
    "key": "orchestrator_every",
    "group": "Breakthrough thresholds",
    "label": "Orchestrator first milestone (calls)",
    "help": "The first orchestrator milestone at this many cross-system calls.",
    "kind": "integer",
    "min": 1.0,
    "max": 1000000000000.0
  },
  {
    "key": "orchestrator_growth",
    "group": "Breakthrough thresholds",
    "label": "Orchestrator threshold growth (×)",
    "help": "Each later milestone needs this many times more calls (10: 1k, 10k, 100k…); 1 means every N calls.",
    "kind": "integer",
    "min": 1.0,
    "max": 1000.0
  },
  {
    "key": "replica_verify_hours",
    "group": "Offsite replicas",
    "label": "Verify replicas every (hours)",
    "help": "How often each replica's structure is checked by itself (restic's check, no pack read); 0 never. Reading every pack is `Verify every pack`.",
    "kind": "number",
    "min": 0.0,
    "max": 8760.0
  }
];

/** What every engine metric means and how to print it, in display order. */
export const METRICS: readonly MetricInfo[] = [
  {
    "engine": "zap",
    "key": "plans_generated",
    "label": "Plans",
    "unit": "plans",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "heldout_vs_optimal",
    "label": "Held-out success vs optimum",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": true,
    "chart": true,
    "measured_at": "heldout_at_plans",
    "measured_when": "heldout_at_ms"
  },
  {
    "engine": "zap",
    "key": "heldout_success",
    "label": "Held-out success",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": true,
    "chart": false,
    "measured_at": "heldout_at_plans",
    "measured_when": "heldout_at_ms"
  },
  {
    "engine": "zap",
    "key": "heldout_optimal",
    "label": "Held-out optimum",
    "unit": "",
    "format": "percent",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": "heldout_at_plans",
    "measured_when": "heldout_at_ms"
  },
  {
    "engine": "zap",
    "key": "heldout_at_plans",
    "label": "Held-out evaluation at",
    "unit": "plans",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "heldout_at_ms",
    "label": "Held-out evaluation time",
    "unit": "",
    "format": "time",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "success_rate_last_100",
    "label": "Success (last 100 plans)",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": true,
    "chart": true,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "success_rate",
    "label": "Success (all plans)",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "mean_planning_ms",
    "label": "Planning time",
    "unit": "ms",
    "format": "milliseconds",
    "higher_is_better": false,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "mean_confidence",
    "label": "Confidence",
    "unit": "",
    "format": "percent",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "successful_plans",
    "label": "Successful plans",
    "unit": "plans",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "failed_plans",
    "label": "Failed plans",
    "unit": "plans",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "score",
    "label": "Score (moving average of returns)",
    "unit": "",
    "format": "decimal",
    "higher_is_better": true,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "episodes",
    "label": "Episodes",
    "unit": "episodes",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "total_reward",
    "label": "Total reward",
    "unit": "",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "zap",
    "key": "replay_size",
    "label": "Replay buffer",
    "unit": "samples",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "episodes",
    "label": "Q episodes",
    "unit": "episodes",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "policy_quality",
    "label": "Q policy vs optimum",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": true,
    "chart": true,
    "measured_at": "q_evaluated_at_episode",
    "measured_when": "q_evaluated_at_ms"
  },
  {
    "engine": "mdp_es",
    "key": "greedy_success",
    "label": "Q greedy success",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": true,
    "chart": false,
    "measured_at": "q_evaluated_at_episode",
    "measured_when": "q_evaluated_at_ms"
  },
  {
    "engine": "mdp_es",
    "key": "optimal_success",
    "label": "Q optimal success",
    "unit": "",
    "format": "percent",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": "q_evaluated_at_episode",
    "measured_when": "q_evaluated_at_ms"
  },
  {
    "engine": "mdp_es",
    "key": "greedy_return",
    "label": "Q greedy return",
    "unit": "",
    "format": "decimal",
    "higher_is_better": true,
    "card": true,
    "chart": false,
    "measured_at": "q_evaluated_at_episode",
    "measured_when": "q_evaluated_at_ms"
  },
  {
    "engine": "mdp_es",
    "key": "optimal_return",
    "label": "Q optimal return",
    "unit": "",
    "format": "decimal",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": "q_evaluated_at_episode",
    "measured_when": "q_evaluated_at_ms"
  },
  {
    "engine": "mdp_es",
    "key": "q_evaluated_at_episode",
    "label": "Q evaluation at",
    "unit": "episodes",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "q_evaluated_at_ms",
    "label": "Q evaluation time",
    "unit": "",
    "format": "time",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "behaviour_success_last_100",
    "label": "Q behaviour success (ε-greedy, last 100)",
    "unit": "",
    "format": "percent",
    "higher_is_better": true,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "generation",
    "label": "ES generation",
    "unit": "generations",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "best_fitness",
    "label": "ES best fitness (validated)",
    "unit": "",
    "format": "decimal",
    "higher_is_better": true,
    "card": true,
    "chart": true,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "mean_validated_fitness",
    "label": "ES mean policy fitness (validated)",
    "unit": "",
    "format": "decimal",
    "higher_is_better": true,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "mean_fitness",
    "label": "ES population fitness (training)",
    "unit": "",
    "format": "decimal",
    "higher_is_better": true,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "epsilon",
    "label": "ε",
    "unit": "",
    "format": "decimal",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "alpha",
    "label": "α",
    "unit": "",
    "format": "decimal",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "policy_updates",
    "label": "Policy updates",
    "unit": "updates",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "mdp_es",
    "key": "total_reward",
    "label": "Q total reward",
    "unit": "",
    "format": "integer",
    "higher_is_better": null,
    "card": false,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "orchestrator",
    "key": "cross_system_calls",
    "label": "Cross-system calls",
    "unit": "calls",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": true,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "orchestrator",
    "key": "failures",
    "label": "Failures",
    "unit": "calls",
    "format": "integer",
    "higher_is_better": false,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "orchestrator",
    "key": "mean_latency_ms",
    "label": "Mean latency",
    "unit": "ms",
    "format": "milliseconds",
    "higher_is_better": false,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "orchestrator",
    "key": "next_breakthrough_at",
    "label": "Next milestone at",
    "unit": "calls",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  },
  {
    "engine": "orchestrator",
    "key": "systems_registered",
    "label": "Systems",
    "unit": "systems",
    "format": "integer",
    "higher_is_better": null,
    "card": true,
    "chart": false,
    "measured_at": null,
    "measured_when": null
  }
];
