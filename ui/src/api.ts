/** The one module that talks to the backend. Inside the desktop app it uses
 * Tauri IPC; in a browser it uses the `engram serve` HTTP API and its event
 * stream. Nothing else in the UI knows which. */

import type {
  RetentionOutlook,
  Backup,
  Hold,
  LearnerInfo,
  LearnerStateExported,
  RemovedLearner,
  SetLearnerCommand,
  SetMetricInfo,
  SetMilestoneRules,
  StorageReport,
  TimelineQuery,
  TimelineView,
  BackupKind,
  BackupPage,
  Cursor,
  EngramEvent,
  ErrorCode,
  MetricInfo,
  MetricSeries,
  RestoreReport,
  SeriesRequest,
  SettingField,
  Settings,
  SnapshotFormat,
  Status,
  VerifyReport,
} from "./generated/api";

/** Codes the client itself reports: the server could not be reached, the IPC
 * bridge failed, or an HTTP error without an API body. */
export type ClientErrorCode = "unreachable" | "ipc" | `http_${number}`;

/** An error from the backend; branch on `code`, never on `message`. */
export class ApiError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  constructor(code: ErrorCode | ClientErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "ApiError";
  }
}

export type ExportFormat = SnapshotFormat;

/** The UI's listing query (all fields optional; the backend fills defaults). */
export interface BackupQuery {
  kinds?: BackupKind[];
  engine?: string;
  limit?: number;
  /** Skip this many (for pages); prefer `after` for scrolling. */
  offset?: number;
  after?: Cursor | null;
  /** Only backups whose label or milestone contains this text. */
  text?: string;
  /** Only pinned backups. */
  pinned?: boolean;
}

export interface Backend {
  readonly kind: "http" | "tauri";
  status(): Promise<Status>;
  listBackups(q: BackupQuery): Promise<BackupPage>;
  getBackup(id: number): Promise<Backup>;
  backupNow(label?: string): Promise<Backup>;
  restore(id: number, engine?: string): Promise<RestoreReport>;
  setPinned(id: number, pinned: boolean): Promise<Backup>;
  setLabel(id: number, label: string | null): Promise<Backup>;
  deleteBackup(id: number): Promise<void>;
  exportBackup(id: number, format: ExportFormat): Promise<Blob>;
  /** Exports to a file the user picks (a download in a browser, a native
   * save dialog in the app). Resolves to where it went, or null if cancelled. */
  saveExport(id: number, format: ExportFormat): Promise<string | null>;
  /** Saves a learner's state in a backup (its own bytes, checked) to a file
   * the user picks, as `saveExport` does. Resolves to where it went, or null. */
  saveLearnerState(name: string, backup: number): Promise<string | null>;
  importSnapshot(file: Blob): Promise<Backup>;
  verify(): Promise<VerifyReport>;
  /** Why each of these backups is kept, and whether the next periodic
   * backup rolls it off (no ids: every backup). */
  retention(ids?: number[]): Promise<RetentionOutlook[]>;
  /** Keeps a backup from retention while it is selected (renew within `seconds`). */
  hold(id: number): Promise<Hold>;
  release(id: number): Promise<Hold>;
  /** The timeline of a range: counts by kind per bucket, and marks when few. */
  timeline(q: TimelineQuery): Promise<TimelineView>;
  /** Sizes, deduplication and growth of the database. */
  storage(): Promise<StorageReport>;
  /** Learners (training processes elsewhere), their live states and, for
   * supervised ones, their processes. */
  learners(): Promise<LearnerInfo[]>;
  /** Supervise a learner: Engram runs the command now and at every launch. */
  setLearnerCommand(name: string, req: SetLearnerCommand): Promise<LearnerInfo>;
  /** Stop supervising (the process stops; the states stay). */
  removeLearnerCommand(name: string): Promise<LearnerInfo>;
  /** Set a learner's milestone rules in Engram (they win over its own), or
   * with `rules` null go back to the learner's own. */
  setLearnerMilestoneRules(name: string, req: SetMilestoneRules): Promise<LearnerInfo>;
  /** Describe a learner's metrics in Engram (each wins over its own), or
   * with `metrics` null go back to the learner's own descriptions. */
  setLearnerMetricInfo(name: string, req: SetMetricInfo): Promise<LearnerInfo>;
  /** Delete a learner: its process stops; its live state, curves and
   * command go; backups keep its states (a restore brings it back). */
  removeLearner(name: string): Promise<RemovedLearner>;
  startLearner(name: string): Promise<LearnerInfo>;
  /** Resolves once the process has exited. */
  stopLearner(name: string): Promise<LearnerInfo>;
  getSettings(): Promise<Settings>;
  putSettings(s: Settings): Promise<Settings>;
  settingsSchema(): Promise<SettingField[]>;
  /** One metric's history across restarts, downsampled, with its branches. */
  metricSeries(req: SeriesRequest): Promise<MetricSeries>;
  /** What every metric means: the built-in engines', then each learner's. */
  metricCatalog(): Promise<MetricInfo[]>;
  /** Calls `on` for every event; `onError` when the stream breaks (it is
   * reopened with backoff), `onOpen` each time it is (re)established.
   * Returns a function that stops listening. */
  subscribe(on: (e: EngramEvent) => void, onError?: (e: unknown) => void, onOpen?: () => void): () => void;
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

/** The wait before the next reconnection attempt: doubling, capped. */
export function nextDelay(ms: number): number {
  return Math.min(Math.max(ms, RECONNECT_MIN_MS) * 2, RECONNECT_MAX_MS);
}

/** Builds the query string of a backup listing. */
export function backupQueryString(q: BackupQuery): string {
  const p = new URLSearchParams();
  if (q.kinds && q.kinds.length > 0) p.set("kind", q.kinds.join(","));
  if (q.engine) p.set("engine", q.engine);
  p.set("limit", String(q.limit ?? 50));
  if (q.offset) p.set("offset", String(q.offset));
  if (q.text) p.set("q", q.text);
  if (q.pinned) p.set("pinned", "true");
  if (q.after) {
    p.set("after_created_at_ms", String(q.after.created_at_ms));
    p.set("after_id", String(q.after.id));
  }
  return p.toString();
}

/** Builds the query string of a timeline request. */
export function timelineQueryString(q: TimelineQuery): string {
  const p = new URLSearchParams();
  if (q.kinds.length > 0) p.set("kind", q.kinds.join(","));
  for (const k of ["from_ms", "to_ms", "buckets", "marks"] as const) {
    const v = q[k];
    if (v !== null) p.set(k, String(Math.round(v)));
  }
  return p.toString();
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** The `engram serve` API: every request carries the token. */
export class HttpBackend implements Backend {
  readonly kind = "http" as const;
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly fetchImpl: FetchLike = (i, init) => fetch(i, init),
  ) {}

  private async request(method: string, path: string, body?: BodyInit, json = true): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined && json) headers["Content-Type"] = "application/json";
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.base}${path}`, { method, headers, body });
    } catch (e) {
      throw new ApiError("unreachable", `Engram is not reachable: ${String(e)}`);
    }
    if (!res.ok) {
      let code: ErrorCode | ClientErrorCode = `http_${res.status}`;
      let message = res.statusText || `request failed (${res.status})`;
      try {
        const j = (await res.json()) as { code?: ErrorCode; message?: string };
        if (j.code) code = j.code;
        if (j.message) message = j.message;
      } catch {
        /* not JSON: keep the HTTP status */
      }
      throw new ApiError(code, message);
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body === undefined ? undefined : JSON.stringify(body));
    return (await res.json()) as T;
  }

  status() {
    return this.json<Status>("GET", "/api/status");
  }
  listBackups(q: BackupQuery) {
    return this.json<BackupPage>("GET", `/api/backups?${backupQueryString(q)}`);
  }
  getBackup(id: number) {
    return this.json<Backup>("GET", `/api/backups/${id}`);
  }
  backupNow(label?: string) {
    return this.json<Backup>("POST", "/api/backups", label ? { label } : {});
  }
  restore(id: number, engine?: string) {
    return this.json<RestoreReport>("POST", `/api/backups/${id}/restore`, engine ? { engine } : {});
  }
  setPinned(id: number, pinned: boolean) {
    return this.json<Backup>("POST", `/api/backups/${id}/${pinned ? "pin" : "unpin"}`);
  }
  setLabel(id: number, label: string | null) {
    return this.json<Backup>("PUT", `/api/backups/${id}/label`, { label });
  }
  async deleteBackup(id: number) {
    await this.request("DELETE", `/api/backups/${id}`);
  }
  async exportBackup(id: number, format: ExportFormat) {
    const res = await this.request("GET", `/api/backups/${id}/export?format=${format}`);
    return await res.blob();
  }
  async saveExport(id: number, format: ExportFormat) {
    return download(await this.exportBackup(id, format), exportFileName(id, format));
  }
  async saveLearnerState(name: string, backup: number) {
    const res = await this.request("GET", `/api/learners/${encodeURIComponent(name)}/state?backup=${backup}`);
    return download(await res.blob(), learnerStateFileName(name, backup));
  }
  async importSnapshot(file: Blob) {
    const res = await this.request("POST", "/api/import", file, false);
    return (await res.json()) as Backup;
  }
  verify() {
    return this.json<VerifyReport>("POST", "/api/verify");
  }
  retention(ids?: number[]) {
    return this.json<RetentionOutlook[]>("GET", `/api/retention${ids ? `?ids=${ids.join(",")}` : ""}`);
  }
  hold(id: number) {
    return this.json<Hold>("POST", `/api/backups/${id}/hold`);
  }
  release(id: number) {
    return this.json<Hold>("DELETE", `/api/backups/${id}/hold`);
  }
  timeline(q: TimelineQuery) {
    return this.json<TimelineView>("GET", `/api/timeline?${timelineQueryString(q)}`);
  }
  storage() {
    return this.json<StorageReport>("GET", "/api/storage");
  }
  learners() {
    return this.json<LearnerInfo[]>("GET", "/api/learners");
  }
  setLearnerCommand(name: string, req: SetLearnerCommand) {
    return this.json<LearnerInfo>("PUT", `/api/learners/${encodeURIComponent(name)}/command`, req);
  }
  removeLearnerCommand(name: string) {
    return this.json<LearnerInfo>("DELETE", `/api/learners/${encodeURIComponent(name)}/command`);
  }
  removeLearner(name: string) {
    return this.json<RemovedLearner>("DELETE", `/api/learners/${encodeURIComponent(name)}`);
  }
  setLearnerMilestoneRules(name: string, req: SetMilestoneRules) {
    return this.json<LearnerInfo>("PUT", `/api/learners/${encodeURIComponent(name)}/milestone-rules`, req);
  }
  setLearnerMetricInfo(name: string, req: SetMetricInfo) {
    return this.json<LearnerInfo>("PUT", `/api/learners/${encodeURIComponent(name)}/metric-info`, req);
  }
  startLearner(name: string) {
    return this.json<LearnerInfo>("POST", `/api/learners/${encodeURIComponent(name)}/start`);
  }
  stopLearner(name: string) {
    return this.json<LearnerInfo>("POST", `/api/learners/${encodeURIComponent(name)}/stop`);
  }
  getSettings() {
    return this.json<Settings>("GET", "/api/settings");
  }
  putSettings(s: Settings) {
    return this.json<Settings>("PUT", "/api/settings", s);
  }
  settingsSchema() {
    return this.json<SettingField[]>("GET", "/api/settings/schema");
  }
  metricSeries(req: SeriesRequest) {
    const p = new URLSearchParams({ engine: req.engine, key: req.key });
    if (req.from_ms !== null) p.set("from_ms", String(req.from_ms));
    if (req.to_ms !== null) p.set("to_ms", String(req.to_ms));
    if (req.points !== null) p.set("points", String(req.points));
    return this.json<MetricSeries>("GET", `/api/metrics/series?${p.toString()}`);
  }  metricCatalog() {
    return this.json<MetricInfo[]>("GET", "/api/metrics/catalog");
  }

  subscribe(on: (e: EngramEvent) => void, onError?: (e: unknown) => void, onOpen?: () => void) {
    // Our own reconnection, with exponential backoff (0.5 s … 30 s): the
    // browser's gives up for good on an HTTP error such as a 401 during a
    // restart, and retries a dead server at a fixed pace.
    const url = `${this.base}/api/events?token=${encodeURIComponent(this.token)}`;
    let source: EventSource | undefined;
    let timer: number | undefined;
    let delay = RECONNECT_MIN_MS;
    let stopped = false;
    const open = () => {
      source = new EventSource(url);
      source.onopen = () => {
        delay = RECONNECT_MIN_MS;
        onOpen?.();
      };
      source.onmessage = (m) => {
        try {
          on(JSON.parse(String(m.data)) as EngramEvent);
        } catch (e) {
          onError?.(e);
        }
      };
      source.onerror = (e) => {
        source?.close();
        onError?.(e);
        if (stopped) return;
        timer = window.setTimeout(open, delay);
        delay = nextDelay(delay);
      };
    };
    open();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      source?.close();
    };
  }
}

/** Inside the desktop app: Tauri commands and events. Bytes cross as raw
 * IPC bodies, never as JSON arrays of numbers. */
export class TauriBackend implements Backend {
  readonly kind = "tauri" as const;
  private async call<T>(cmd: string, args?: Record<string, unknown> | Uint8Array): Promise<T> {
    const { invoke } = await import("@tauri-apps/api/core");
    try {
      return await invoke<T>(cmd, args);
    } catch (e) {
      const err = e as { code?: ErrorCode; message?: string };
      throw new ApiError(err.code ?? "ipc", err.message ?? String(e));
    }
  }
  status() {
    return this.call<Status>("status");
  }
  listBackups(q: BackupQuery) {
    return this.call<BackupPage>("list_backups", {
      query: { kinds: q.kinds ?? [], engine: q.engine ?? null, limit: q.limit ?? 50, offset: q.offset ?? null, after: q.after ?? null, text: q.text ?? null, pinned: q.pinned ?? false },
    });
  }
  getBackup(id: number) {
    return this.call<Backup>("get_backup", { id });
  }
  backupNow(label?: string) {
    return this.call<Backup>("create_backup", { request: { label: label ?? null } });
  }
  restore(id: number, engine?: string) {
    return this.call<RestoreReport>("restore_backup", { id, request: { engine: engine ?? null } });
  }
  setPinned(id: number, pinned: boolean) {
    return this.call<Backup>("set_pinned", { id, pinned });
  }
  setLabel(id: number, label: string | null) {
    return this.call<Backup>("set_label", { id, request: { label } });
  }
  async deleteBackup(id: number) {
    await this.call<unknown>("delete_backup", { id });
  }
  async exportBackup(id: number, format: ExportFormat) {
    const bytes = await this.call<ArrayBuffer>("export_backup", { id, request: { format } });
    return new Blob([bytes]);
  }
  async saveExport(id: number, format: ExportFormat) {
    const { save } = await import("@tauri-apps/plugin-dialog");
    const path = await save({
      defaultPath: exportFileName(id, format),
      filters: [{ name: format === "json" ? "Engram snapshot (JSON)" : "Engram snapshot", extensions: [format === "json" ? "json" : "engram"] }],
    });
    if (!path) return null;
    const done = await this.call<{ path: string; bytes: number }>("export_backup_to", { id, request: { format }, path });
    return `${done.path} (${done.bytes} bytes)`;
  }
  async saveLearnerState(name: string, backup: number) {
    const { save } = await import("@tauri-apps/plugin-dialog");
    const path = await save({ defaultPath: learnerStateFileName(name, backup) });
    if (!path) return null;
    const done = await this.call<LearnerStateExported>("read_learner_state_to", { name, request: { backup }, path });
    return `${done.path} (${done.bytes} bytes)`;
  }
  async importSnapshot(file: Blob) {
    return this.call<Backup>("import_snapshot", new Uint8Array(await file.arrayBuffer()));
  }
  verify() {
    return this.call<VerifyReport>("verify");
  }
  retention(ids?: number[]) {
    return this.call<RetentionOutlook[]>("retention", { request: { ids: ids ?? [] } });
  }
  hold(id: number) {
    return this.call<Hold>("hold_backup", { id });
  }
  release(id: number) {
    return this.call<Hold>("release_backup", { id });
  }
  timeline(q: TimelineQuery) {
    return this.call<TimelineView>("timeline", { query: q });
  }
  storage() {
    return this.call<StorageReport>("storage");
  }
  learners() {
    return this.call<LearnerInfo[]>("learners");
  }
  setLearnerCommand(name: string, req: SetLearnerCommand) {
    return this.call<LearnerInfo>("set_learner_command", { name, request: req });
  }
  removeLearnerCommand(name: string) {
    return this.call<LearnerInfo>("remove_learner_command", { name });
  }
  removeLearner(name: string) {
    return this.call<RemovedLearner>("remove_learner", { name });
  }
  setLearnerMilestoneRules(name: string, req: SetMilestoneRules) {
    return this.call<LearnerInfo>("set_learner_milestone_rules", { name, request: req });
  }
  setLearnerMetricInfo(name: string, req: SetMetricInfo) {
    return this.call<LearnerInfo>("set_learner_metric_info", { name, request: req });
  }
  startLearner(name: string) {
    return this.call<LearnerInfo>("start_learner", { name });
  }
  stopLearner(name: string) {
    return this.call<LearnerInfo>("stop_learner", { name });
  }
  getSettings() {
    return this.call<Settings>("get_settings");
  }
  putSettings(s: Settings) {
    return this.call<Settings>("put_settings", { settings: s });
  }
  settingsSchema() {
    return this.call<SettingField[]>("settings_schema");
  }
  metricSeries(req: SeriesRequest) {
    return this.call<MetricSeries>("metric_series", { request: req });
  }
  metricCatalog() {
    return this.call<MetricInfo[]>("metric_catalog");
  }
  subscribe(on: (e: EngramEvent) => void, onError?: (e: unknown) => void, onOpen?: () => void) {
    let stop: (() => void) | undefined;
    let stopped = false;
    void import("@tauri-apps/api/event")
      .then(({ listen }) => listen<EngramEvent>("engram://event", (e) => on(e.payload)))
      .then((un) => {
        if (stopped) un();
        else {
          stop = un;
          onOpen?.();
        }
      })
      .catch((e: unknown) => onError?.(e));
    return () => {
      stopped = true;
      stop?.();
    };
  }
}

/** Offers bytes as a download in a browser; says what was offered. */
function download(blob: Blob, name: string): string {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  return `${name} (${blob.size} bytes)`;
}

/** The file name a learner's state in a backup is offered under (the name
 * made safe for a file: anything but letters, digits, `.`, `_`, `-` is `_`). */
export function learnerStateFileName(name: string, backup: number): string {
  return `${name.replace(/[^A-Za-z0-9._-]/g, "_")}-backup-${backup}.state`;
}

/** The file name an export is offered under. */
export function exportFileName(id: number, format: ExportFormat): string {
  return `engram-backup-${id}.${format === "json" ? "json" : "engram"}`;
}

/** Picks the backend: Tauri inside the app, else HTTP with the URL's token. */
export function connect(win: { location: { origin: string; search: string } } & Record<string, unknown> = window as never): Backend {
  if ("__TAURI_INTERNALS__" in win) return new TauriBackend();
  const token = new URLSearchParams(win.location.search).get("token") ?? "";
  return new HttpBackend(win.location.origin, token);
}
