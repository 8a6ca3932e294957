// Generated from the operations declared in `engram_core::api::operations`; do not edit.
// Regenerate: UPDATE_SNAPSHOTS=1 cargo test -p engram-core typescript

import type { AddReplica, AttachLearner, Backup, BackupPage, CompareRequest, Comparison, CreateBackup, Deleted, DrillRequest, Drills, FallFound, FindFall, FirstRun, FleetBackupPage, FleetBackupsQuery, FleetHost, FleetJoin, FleetLeft, FleetName, FleetRestore, FleetRestoreReport, FleetSeries, FleetStatus, FleetTimeline, FleetTimelineQuery, Hold, LabelRequest, LearnerDrill, LearnerInfo, LeasedSave, ListBackups, LogMetrics, Logged, MetricInfo, MetricLine, MetricLineRequest, MetricSeries, RecoverHere, RecoverReport, RemovedLearner, RemovedReplica, ReplicaAdded, ReplicaBackup, ReplicaKey, ReplicaPruneReport, ReplicaStatus, ReplicaVerifyReport, ReportMilestone, RestoreReport, RestoreRequest, RetentionOutlook, RetentionRequest, RetrieveBackup, SaveLeasedState, SeriesRequest, SetLearnerCommand, SetLearnerDrill, SetMetricInfo, SetMilestoneRules, SettingField, Settings, SlotLease, Status, StorageReport, TimelineQuery, TimelineView, VerifyReplica, VerifyReport } from "./api";

/** Every operation's name: its IPC command and its method below. */
export type OperationName =
  | "status"
  | "list_backups"
  | "create_backup"
  | "get_backup"
  | "compare_backups"
  | "metric_in_backups"
  | "find_fall"
  | "bisect_fall"
  | "drill_backup"
  | "backup_drills"
  | "delete_backup"
  | "restore_backup"
  | "pin_backup"
  | "unpin_backup"
  | "set_label"
  | "hold_backup"
  | "release_backup"
  | "timeline"
  | "storage"
  | "verify"
  | "retention"
  | "learners"
  | "attach_learner"
  | "learner"
  | "remove_learner"
  | "set_learner_command"
  | "remove_learner_command"
  | "report_learner_milestone"
  | "set_learner_drill"
  | "learner_drill"
  | "set_learner_milestone_rules"
  | "set_learner_metric_info"
  | "start_learner"
  | "stop_learner"
  | "lease_learner_slot"
  | "save_leased_learner_state"
  | "log_learner_metrics"
  | "settings"
  | "patch_settings"
  | "settings_schema"
  | "metric_catalog"
  | "metric_series"
  | "replicas"
  | "add_replica"
  | "replica_key"
  | "replica"
  | "remove_replica"
  | "verify_replica"
  | "prune_replica"
  | "replica_backups"
  | "retrieve_backup"
  | "fleet_status"
  | "fleet_join"
  | "fleet_leave"
  | "fleet_rename"
  | "fleet_hosts"
  | "fleet_backups"
  | "fleet_timeline"
  | "fleet_series"
  | "fleet_restore"
  | "first_run"
  | "start_fresh"
  | "recover_here";

/** How an operation travels: its HTTP method and path (under `/api`), the
 * key in the path (and its IPC argument), and where its request goes. */
export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  key: "id" | "name" | null;
  request: "nothing" | "query" | "body";
  /** The request is not flat: `QueryForms` encodes it. */
  query_form: boolean;
}

export const OPERATIONS: Readonly<Record<OperationName, Route>> = {
  status: { method: "GET", path: "/status", key: null, request: "nothing", query_form: false },
  list_backups: { method: "GET", path: "/backups", key: null, request: "query", query_form: true },
  create_backup: { method: "POST", path: "/backups", key: null, request: "body", query_form: false },
  get_backup: { method: "GET", path: "/backups/{id}", key: "id", request: "nothing", query_form: false },
  compare_backups: { method: "GET", path: "/backups/{id}/compare", key: "id", request: "query", query_form: false },
  metric_in_backups: { method: "GET", path: "/backups/metric", key: null, request: "query", query_form: false },
  find_fall: { method: "GET", path: "/backups/find", key: null, request: "query", query_form: false },
  bisect_fall: { method: "POST", path: "/backups/bisect", key: null, request: "body", query_form: false },
  drill_backup: { method: "POST", path: "/backups/{id}/drill", key: "id", request: "body", query_form: false },
  backup_drills: { method: "GET", path: "/backups/{id}/drills", key: "id", request: "nothing", query_form: false },
  delete_backup: { method: "DELETE", path: "/backups/{id}", key: "id", request: "nothing", query_form: false },
  restore_backup: { method: "POST", path: "/backups/{id}/restore", key: "id", request: "body", query_form: false },
  pin_backup: { method: "POST", path: "/backups/{id}/pin", key: "id", request: "nothing", query_form: false },
  unpin_backup: { method: "POST", path: "/backups/{id}/unpin", key: "id", request: "nothing", query_form: false },
  set_label: { method: "PUT", path: "/backups/{id}/label", key: "id", request: "body", query_form: false },
  hold_backup: { method: "POST", path: "/backups/{id}/hold", key: "id", request: "nothing", query_form: false },
  release_backup: { method: "DELETE", path: "/backups/{id}/hold", key: "id", request: "nothing", query_form: false },
  timeline: { method: "GET", path: "/timeline", key: null, request: "query", query_form: true },
  storage: { method: "GET", path: "/storage", key: null, request: "nothing", query_form: false },
  verify: { method: "POST", path: "/verify", key: null, request: "nothing", query_form: false },
  retention: { method: "GET", path: "/retention", key: null, request: "query", query_form: true },
  learners: { method: "GET", path: "/learners", key: null, request: "nothing", query_form: false },
  attach_learner: { method: "POST", path: "/learners", key: null, request: "body", query_form: false },
  learner: { method: "GET", path: "/learners/{name}", key: "name", request: "nothing", query_form: false },
  remove_learner: { method: "DELETE", path: "/learners/{name}", key: "name", request: "nothing", query_form: false },
  set_learner_command: { method: "PUT", path: "/learners/{name}/command", key: "name", request: "body", query_form: false },
  remove_learner_command: { method: "DELETE", path: "/learners/{name}/command", key: "name", request: "nothing", query_form: false },
  report_learner_milestone: { method: "POST", path: "/learners/{name}/milestones", key: "name", request: "body", query_form: false },
  set_learner_drill: { method: "PUT", path: "/learners/{name}/drill", key: "name", request: "body", query_form: false },
  learner_drill: { method: "GET", path: "/learners/{name}/drill", key: "name", request: "nothing", query_form: false },
  set_learner_milestone_rules: { method: "PUT", path: "/learners/{name}/milestone-rules", key: "name", request: "body", query_form: false },
  set_learner_metric_info: { method: "PUT", path: "/learners/{name}/metric-info", key: "name", request: "body", query_form: false },
  start_learner: { method: "POST", path: "/learners/{name}/start", key: "name", request: "nothing", query_form: false },
  stop_learner: { method: "POST", path: "/learners/{name}/stop", key: "name", request: "nothing", query_form: false },
  lease_learner_slot: { method: "POST", path: "/learners/{name}/lease", key: "name", request: "nothing", query_form: false },
  save_leased_learner_state: { method: "POST", path: "/learners/{name}/state/leased", key: "name", request: "query", query_form: true },
  log_learner_metrics: { method: "POST", path: "/learners/{name}/metrics", key: "name", request: "body", query_form: false },
  settings: { method: "GET", path: "/settings", key: null, request: "nothing", query_form: false },
  patch_settings: { method: "PUT", path: "/settings", key: null, request: "body", query_form: false },
  settings_schema: { method: "GET", path: "/settings/schema", key: null, request: "nothing", query_form: false },
  metric_catalog: { method: "GET", path: "/metrics/catalog", key: null, request: "nothing", query_form: false },
  metric_series: { method: "GET", path: "/metrics/series", key: null, request: "query", query_form: false },
  replicas: { method: "GET", path: "/replicas", key: null, request: "nothing", query_form: false },
  add_replica: { method: "POST", path: "/replicas", key: null, request: "body", query_form: false },
  replica_key: { method: "GET", path: "/replica-key", key: null, request: "nothing", query_form: false },
  replica: { method: "GET", path: "/replicas/{name}", key: "name", request: "nothing", query_form: false },
  remove_replica: { method: "DELETE", path: "/replicas/{name}", key: "name", request: "nothing", query_form: false },
  verify_replica: { method: "POST", path: "/replicas/{name}/verify", key: "name", request: "body", query_form: false },
  prune_replica: { method: "POST", path: "/replicas/{name}/prune", key: "name", request: "nothing", query_form: false },
  replica_backups: { method: "GET", path: "/replicas/{name}/backups", key: "name", request: "nothing", query_form: false },
  retrieve_backup: { method: "POST", path: "/replicas/{name}/retrieve", key: "name", request: "body", query_form: false },
  fleet_status: { method: "GET", path: "/fleet", key: null, request: "nothing", query_form: false },
  fleet_join: { method: "POST", path: "/fleet", key: null, request: "body", query_form: false },
  fleet_leave: { method: "DELETE", path: "/fleet", key: null, request: "nothing", query_form: false },
  fleet_rename: { method: "PUT", path: "/fleet/name", key: null, request: "body", query_form: false },
  fleet_hosts: { method: "GET", path: "/fleet/hosts", key: null, request: "nothing", query_form: false },
  fleet_backups: { method: "GET", path: "/fleet/backups", key: null, request: "query", query_form: false },
  fleet_timeline: { method: "GET", path: "/fleet/timeline", key: null, request: "query", query_form: false },
  fleet_series: { method: "GET", path: "/fleet/series", key: null, request: "query", query_form: false },
  fleet_restore: { method: "POST", path: "/fleet/restore", key: null, request: "body", query_form: false },
  first_run: { method: "GET", path: "/first-run", key: null, request: "nothing", query_form: false },
  start_fresh: { method: "POST", path: "/first-run/fresh", key: null, request: "nothing", query_form: false },
  recover_here: { method: "POST", path: "/first-run/recover", key: null, request: "body", query_form: false },
};

/** The operations whose bodies are bytes or a stream: their routes (each
 * transport moves their bytes its own way). */
export const BYTE_OPERATIONS = {
  export_backup: { method: "GET", path: "/backups/{id}/export", key: "id" },
  import_snapshot: { method: "POST", path: "/import", key: null },
  read_learner_state: { method: "GET", path: "/learners/{name}/state", key: "name" },
  save_learner_state: { method: "PUT", path: "/learners/{name}/state", key: "name" },
  events: { method: "GET", path: "/events", key: null },
} as const;

/** Query-string encoders of the requests that are not flat (their Rust
 * forms are `*Query`/`*Form` structs). */
export interface QueryForms {
  list_backups(request: ListBackups): string;
  timeline(request: TimelineQuery): string;
  retention(request: RetentionRequest): string;
  save_leased_learner_state(request: SaveLeasedState): string;
}

/** Moves one call: the operation, its key (or null) and its request (or
 * null); resolves to the answer, rejects with the API's error. */
export type Transport = (op: OperationName, key: number | string | null, request: unknown) => Promise<unknown>;

/** Every operation, typed. */
export interface Operations {
  /** The engines, their latest metrics and saves, and what start-up found. */
  status(): Promise<Status>;
  /** One page of backups, newest first. */
  list_backups(request: ListBackups): Promise<BackupPage>;
  /** A `manual` backup of the engines as they are now. */
  create_backup(request: CreateBackup): Promise<Backup>;
  /** One backup. */
  get_backup(id: number): Promise<Backup>;
  /** Two backups side by side: metrics in each and the change, and which states changed. */
  compare_backups(id: number, request: CompareRequest): Promise<Comparison>;
  /** One metric's value in every backup along the current line of history, oldest first. */
  metric_in_backups(request: MetricLineRequest): Promise<MetricLine>;
  /** Where along the current line of history a metric first fell below a threshold: the last good backup and the first after it. */
  find_fall(request: FindFall): Promise<FallFound>;
  /** The same, drilling the backups that carry no value of the metric (bisecting); the drills are kept with them. */
  bisect_fall(request: FindFall): Promise<FallFound>;
  /** Re-evaluates a backup's states in a sandbox (engines' evaluations, learners' drill commands); the results are kept with it. */
  drill_backup(id: number, request: DrillRequest): Promise<Drills>;
  /** A backup's drills, newest first. */
  backup_drills(id: number): Promise<Drills>;
  /** Deletes a backup; protected ones are refused with the reason. */
  delete_backup(id: number): Promise<Deleted>;
  /** Restores a backup (all engines or one) after a `pre-restore` backup. */
  restore_backup(id: number, request: RestoreRequest): Promise<RestoreReport>;
  /** Pins a backup: retention never deletes it. */
  pin_backup(id: number): Promise<Backup>;
  /** Unpins a backup. */
  unpin_backup(id: number): Promise<Backup>;
  /** Sets or clears a backup's label. */
  set_label(id: number, request: LabelRequest): Promise<Backup>;
  /** Keeps a backup from retention while a user has it selected. */
  hold_backup(id: number): Promise<Hold>;
  /** Ends a hold. */
  release_backup(id: number): Promise<Hold>;
  /** The timeline of a range: counts by kind per bucket, and marks. */
  timeline(request: TimelineQuery): Promise<TimelineView>;
  /** Sizes, deduplication and growth of the database. */
  storage(): Promise<StorageReport>;
  /** Verifies the database and every stored state. */
  verify(): Promise<VerifyReport>;
  /** Why each backup asked about is kept, and whether the next periodic backup rolls it off. */
  retention(request: RetentionRequest): Promise<Array<RetentionOutlook>>;
  /** Every learner, its live state, command and process. */
  learners(): Promise<Array<LearnerInfo>>;
  /** Registers a learner, or finds it again. */
  attach_learner(request: AttachLearner): Promise<LearnerInfo>;
  /** One learner. */
  learner(name: string): Promise<LearnerInfo>;
  /** Deletes a learner (backups keep its states). */
  remove_learner(name: string): Promise<RemovedLearner>;
  /** Supervises a learner: Engram runs its command. */
  set_learner_command(name: string, request: SetLearnerCommand): Promise<LearnerInfo>;
  /** Stops supervising a learner (its states stay). */
  remove_learner_command(name: string): Promise<LearnerInfo>;
  /** A milestone the learner reports: a `breakthrough` backup. */
  report_learner_milestone(name: string, request: ReportMilestone): Promise<Backup>;
  /** Sets a learner's drill command (an empty one removes it). */
  set_learner_drill(name: string, request: SetLearnerDrill): Promise<LearnerDrill>;
  /** A learner's drill command. */
  learner_drill(name: string): Promise<LearnerDrill>;
  /** Sets a learner's milestone rules in Engram, or goes back to its own. */
  set_learner_milestone_rules(name: string, request: SetMilestoneRules): Promise<LearnerInfo>;
  /** Describes a learner's metrics in Engram, or goes back to its own. */
  set_learner_metric_info(name: string, request: SetMetricInfo): Promise<LearnerInfo>;
  /** Starts a supervised learner (now, and at every launch). */
  start_learner(name: string): Promise<LearnerInfo>;
  /** Stops a learner (or asks one that runs elsewhere to stop). */
  stop_learner(name: string): Promise<LearnerInfo>;
  /** Lends a learner a slot for its next save. */
  lease_learner_slot(name: string): Promise<SlotLease | null>;
  /** Saves what a learner wrote into a leased slot. */
  save_leased_learner_state(name: string, request: SaveLeasedState): Promise<LeasedSave>;
  /** Logs a learner's metrics into the history. */
  log_learner_metrics(name: string, request: LogMetrics): Promise<Logged>;
  /** The settings in force. */
  settings(): Promise<Settings>;
  /** Changes only the settings the patch names. */
  patch_settings(request: Record<string, unknown>): Promise<Settings>;
  /** What each setting is, its range and help text. */
  settings_schema(): Promise<Array<SettingField>>;
  /** What every metric means and how to print it. */
  metric_catalog(): Promise<Array<MetricInfo>>;
  /** One metric's history across restarts, downsampled, with its branches. */
  metric_series(request: SeriesRequest): Promise<MetricSeries>;
  /** Every offsite replica and how far it is. */
  replicas(): Promise<Array<ReplicaStatus>>;
  /** Adds an offsite replica (makes its repository, or joins one made with this key). */
  add_replica(request: AddReplica): Promise<ReplicaAdded>;
  /** The replicas' repository key, to recover on another machine. */
  replica_key(): Promise<ReplicaKey>;
  /** One replica. */
  replica(name: string): Promise<ReplicaStatus>;
  /** Forgets a replica (deletes nothing there). */
  remove_replica(name: string): Promise<RemovedReplica>;
  /** Checks a replica: its structure, and with read_data every pack; names the backups damage reaches. */
  verify_replica(name: string, request: VerifyReplica): Promise<ReplicaVerifyReport>;
  /** Forgets on a replica what retention deleted here (never pinned, breakthrough or initial backups), then prunes. */
  prune_replica(name: string): Promise<ReplicaPruneReport>;
  /** The backups a replica holds, and whether each is still here. */
  replica_backups(name: string): Promise<Array<ReplicaBackup>>;
  /** Brings a backup deleted here back from a replica, as it was. */
  retrieve_backup(name: string, request: RetrieveBackup): Promise<Backup>;
  /** How this host's fleet membership and sync stand. */
  fleet_status(): Promise<FleetStatus>;
  /** Joins a fleet catalog on PostgreSQL (checked by connecting before anything is kept). */
  fleet_join(request: FleetJoin): Promise<FleetStatus>;
  /** Leaves the fleet: this host's rows leave the catalog when it can be reached. */
  fleet_leave(): Promise<FleetLeft>;
  /** Renames this host in the fleet. */
  fleet_rename(request: FleetName): Promise<FleetStatus>;
  /** Every host of the fleet with its last sync, lag and health (read from PostgreSQL). */
  fleet_hosts(): Promise<Array<FleetHost>>;
  /** One page of every host's backups, newest first (read from PostgreSQL). */
  fleet_backups(request: FleetBackupsQuery): Promise<FleetBackupPage>;
  /** The all-hosts timeline of a range: counts by kind per bucket, and marks (read from PostgreSQL). */
  fleet_timeline(request: FleetTimelineQuery): Promise<FleetTimeline>;
  /** One metric of an engine or learner on every host that has it, one curve per host (read from PostgreSQL). */
  fleet_series(request: SeriesRequest): Promise<Array<FleetSeries>>;
  /** Restores here a backup any host made: from a shared replica, checked against the fleet's hashes, then a normal restore. */
  fleet_restore(request: FleetRestore): Promise<FleetRestoreReport>;
  /** Whether this Engram waits for its first-run choice (a data directory without Engram data), and how far a recovery is. */
  first_run(): Promise<FirstRun>;
  /** First run: starts the engines fresh on the empty data directory. */
  start_fresh(): Promise<Status>;
  /** First run: rebuilds the whole timeline from a replica into the empty data directory, then starts from its newest backup. */
  recover_here(request: RecoverHere): Promise<RecoverReport>;
}

/** The operations over a transport. */
export function operations(t: Transport): Operations {
  return {
    status: () => t("status", null, null) as Promise<Status>,
    list_backups: (request: ListBackups) => t("list_backups", null, request) as Promise<BackupPage>,
    create_backup: (request: CreateBackup) => t("create_backup", null, request) as Promise<Backup>,
    get_backup: (id: number) => t("get_backup", id, null) as Promise<Backup>,
    compare_backups: (id: number, request: CompareRequest) => t("compare_backups", id, request) as Promise<Comparison>,
    metric_in_backups: (request: MetricLineRequest) => t("metric_in_backups", null, request) as Promise<MetricLine>,
    find_fall: (request: FindFall) => t("find_fall", null, request) as Promise<FallFound>,
    bisect_fall: (request: FindFall) => t("bisect_fall", null, request) as Promise<FallFound>,
    drill_backup: (id: number, request: DrillRequest) => t("drill_backup", id, request) as Promise<Drills>,
    backup_drills: (id: number) => t("backup_drills", id, null) as Promise<Drills>,
    delete_backup: (id: number) => t("delete_backup", id, null) as Promise<Deleted>,
    restore_backup: (id: number, request: RestoreRequest) => t("restore_backup", id, request) as Promise<RestoreReport>,
    pin_backup: (id: number) => t("pin_backup", id, null) as Promise<Backup>,
    unpin_backup: (id: number) => t("unpin_backup", id, null) as Promise<Backup>,
    set_label: (id: number, request: LabelRequest) => t("set_label", id, request) as Promise<Backup>,
    hold_backup: (id: number) => t("hold_backup", id, null) as Promise<Hold>,
    release_backup: (id: number) => t("release_backup", id, null) as Promise<Hold>,
    timeline: (request: TimelineQuery) => t("timeline", null, request) as Promise<TimelineView>,
    storage: () => t("storage", null, null) as Promise<StorageReport>,
    verify: () => t("verify", null, null) as Promise<VerifyReport>,
    retention: (request: RetentionRequest) => t("retention", null, request) as Promise<Array<RetentionOutlook>>,
    learners: () => t("learners", null, null) as Promise<Array<LearnerInfo>>,
    attach_learner: (request: AttachLearner) => t("attach_learner", null, request) as Promise<LearnerInfo>,
    learner: (name: string) => t("learner", name, null) as Promise<LearnerInfo>,
    remove_learner: (name: string) => t("remove_learner", name, null) as Promise<RemovedLearner>,
    set_learner_command: (name: string, request: SetLearnerCommand) => t("set_learner_command", name, request) as Promise<LearnerInfo>,
    remove_learner_command: (name: string) => t("remove_learner_command", name, null) as Promise<LearnerInfo>,
    report_learner_milestone: (name: string, request: ReportMilestone) => t("report_learner_milestone", name, request) as Promise<Backup>,
    set_learner_drill: (name: string, request: SetLearnerDrill) => t("set_learner_drill", name, request) as Promise<LearnerDrill>,
    learner_drill: (name: string) => t("learner_drill", name, null) as Promise<LearnerDrill>,
    set_learner_milestone_rules: (name: string, request: SetMilestoneRules) => t("set_learner_milestone_rules", name, request) as Promise<LearnerInfo>,
    set_learner_metric_info: (name: string, request: SetMetricInfo) => t("set_learner_metric_info", name, request) as Promise<LearnerInfo>,
    start_learner: (name: string) => t("start_learner", name, null) as Promise<LearnerInfo>,
    stop_learner: (name: string) => t("stop_learner", name, null) as Promise<LearnerInfo>,
    lease_learner_slot: (name: string) => t("lease_learner_slot", name, null) as Promise<SlotLease | null>,
    save_leased_learner_state: (name: string, request: SaveLeasedState) => t("save_leased_learner_state", name, request) as Promise<LeasedSave>,
    log_learner_metrics: (name: string, request: LogMetrics) => t("log_learner_metrics", name, request) as Promise<Logged>,
    settings: () => t("settings", null, null) as Promise<Settings>,
    patch_settings: (request: Record<string, unknown>) => t("patch_settings", null, request) as Promise<Settings>,
    settings_schema: () => t("settings_schema", null, null) as Promise<Array<SettingField>>,
    metric_catalog: () => t("metric_catalog", null, null) as Promise<Array<MetricInfo>>,
    metric_series: (request: SeriesRequest) => t("metric_series", null, request) as Promise<MetricSeries>,
    replicas: () => t("replicas", null, null) as Promise<Array<ReplicaStatus>>,
    add_replica: (request: AddReplica) => t("add_replica", null, request) as Promise<ReplicaAdded>,
    replica_key: () => t("replica_key", null, null) as Promise<ReplicaKey>,
    replica: (name: string) => t("replica", name, null) as Promise<ReplicaStatus>,
    remove_replica: (name: string) => t("remove_replica", name, null) as Promise<RemovedReplica>,
    verify_replica: (name: string, request: VerifyReplica) => t("verify_replica", name, request) as Promise<ReplicaVerifyReport>,
    prune_replica: (name: string) => t("prune_replica", name, null) as Promise<ReplicaPruneReport>,
    replica_backups: (name: string) => t("replica_backups", name, null) as Promise<Array<ReplicaBackup>>,
    retrieve_backup: (name: string, request: RetrieveBackup) => t("retrieve_backup", name, request) as Promise<Backup>,
    fleet_status: () => t("fleet_status", null, null) as Promise<FleetStatus>,
    fleet_join: (request: FleetJoin) => t("fleet_join", null, request) as Promise<FleetStatus>,
    fleet_leave: () => t("fleet_leave", null, null) as Promise<FleetLeft>,
    fleet_rename: (request: FleetName) => t("fleet_rename", null, request) as Promise<FleetStatus>,
    fleet_hosts: () => t("fleet_hosts", null, null) as Promise<Array<FleetHost>>,
    fleet_backups: (request: FleetBackupsQuery) => t("fleet_backups", null, request) as Promise<FleetBackupPage>,
    fleet_timeline: (request: FleetTimelineQuery) => t("fleet_timeline", null, request) as Promise<FleetTimeline>,
    fleet_series: (request: SeriesRequest) => t("fleet_series", null, request) as Promise<Array<FleetSeries>>,
    fleet_restore: (request: FleetRestore) => t("fleet_restore", null, request) as Promise<FleetRestoreReport>,
    first_run: () => t("first_run", null, null) as Promise<FirstRun>,
    start_fresh: () => t("start_fresh", null, null) as Promise<Status>,
    recover_here: (request: RecoverHere) => t("recover_here", null, request) as Promise<RecoverReport>,
  };
}
