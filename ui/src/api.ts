/** The one module that talks to the backend. Inside the desktop app it uses
 * Tauri IPC; in a browser it uses the `engram serve` HTTP API and its event
 * stream. Nothing else in the UI knows which.
 *
 * Every operation, its route and its types come from the core's
 * declaration (`generated/operations.ts`): each transport moves any call
 * the same way (`Transport`), so neither lists operations by hand. The
 * `Backend` methods below are the UI's names for them (a listing query
 * with defaults, pin as a flag); only byte transfers, native dialogs and
 * the event stream are written per transport. */

import { BYTE_OPERATIONS, OPERATIONS, operations, type OperationName, type Operations, type QueryForms, type Transport } from "./generated/operations";
import type {
  CreateBackup,
  ListBackups,
  RestoreRequest,
  Backup,
  LearnerStateExported,
  TimelineQuery,
  BackupKind,
  BackupPage,
  Cursor,
  EngramEvent,
  ErrorCode,
  RestoreReport,
  SnapshotFormat,
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

/** Everything the UI asks of the backend: every declared operation under
 * its own name (generated), a few of them in the UI's terms, and what moves
 * bytes or listens. */
export interface Backend extends Operations {
  readonly kind: "http" | "tauri";
  /** Makes the calls `ask` makes now and hands each answer to the first
   * identical call made later (once); `forgetAhead` drops those not taken. */
  askAhead(ask: (b: this) => void): void;
  forgetAhead(): void;
  /** A page of backups, the query's absent fields at their defaults. */
  listBackups(q: BackupQuery): Promise<BackupPage>;
  /** A manual backup now. */
  backupNow(label?: string): Promise<Backup>;
  /** Restores a backup (every engine, or `engine`). */
  restore(id: number, engine?: string): Promise<RestoreReport>;
  setPinned(id: number, pinned: boolean): Promise<Backup>;
  exportBackup(id: number, format: ExportFormat): Promise<Blob>;
  /** Exports to a file the user picks (a download in a browser, a native
   * save dialog in the app). Resolves to where it went, or null if cancelled. */
  saveExport(id: number, format: ExportFormat): Promise<string | null>;
  /** Saves a learner's state in a backup (its own bytes, checked) to a file
   * the user picks, as `saveExport` does. Resolves to where it went, or null. */
  saveLearnerState(name: string, backup: number): Promise<string | null>;
  importSnapshot(file: Blob): Promise<Backup>;
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
export function backupQueryString(q: BackupQuery | ListBackups): string {
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

/** The query strings of the requests that are not flat (the Rust side's
 * `*Query` forms read them). */
export const QUERY_FORMS: QueryForms = {
  list_backups: backupQueryString,
  timeline: timelineQueryString,
  retention: (r) => (r.ids.length > 0 ? `ids=${r.ids.join(",")}` : ""),
  save_leased_learner_state: (r) => {
    const p = new URLSearchParams({ lease: r.lease });
    if (r.state.step !== null) p.set("step", String(r.state.step));
    if (Object.keys(r.state.metrics).length > 0) p.set("metrics", JSON.stringify(r.state.metrics));
    if (r.state.generation !== null) p.set("generation", String(r.state.generation));
    if (r.next) p.set("next", "true");
    return p.toString();
  },
};

/** A flat request as a query string: its non-null fields, in order. */
function flatQuery(request: unknown): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries((request ?? {}) as Record<string, unknown>)) {
    if (v !== null && v !== undefined) p.set(k, String(v));
  }
  return p.toString();
}

/** One call's identity: its operation, key and request (object keys in
 * order, so the same request built in another order is the same call). */
export function callId(op: OperationName, key: number | string | null, request: unknown): string {
  const sorted = (v: unknown): unknown =>
    v === null || typeof v !== "object" || Array.isArray(v)
      ? Array.isArray(v)
        ? v.map(sorted)
        : v
      : Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
        );
  return `${op} ${String(key)} ${JSON.stringify(sorted(request)) ?? ""}`;
}

/** A declared path with its key put in. */
function fill(path: string, key: "id" | "name" | null, value: number | string | null): string {
  return key === null ? path : path.replace(`{${key}}`, encodeURIComponent(String(value)));
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Every declared operation over a transport (generated, assigned onto the
 * instance), and the UI's few adaptations of them. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface OperationsBackend extends Operations {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
abstract class OperationsBackend {
  /** Answers asked ahead (`askAhead`), by call, each handed out once. */
  private readonly ahead = new Map<string, Promise<unknown>>();
  private askingAhead = false;
  constructor(transport: Transport) {
    Object.assign(
      this,
      operations((op, key, request) => {
        const id = callId(op, key, request);
        const early = this.ahead.get(id);
        if (early !== undefined) {
          this.ahead.delete(id);
          return early;
        }
        const answer = transport(op, key, request);
        if (this.askingAhead) {
          // Nobody may be waiting for it yet: a failure is the caller's to see.
          answer.catch(() => undefined);
          this.ahead.set(id, answer);
        }
        return answer;
      }),
    );
  }
  /** Makes the calls `ask` makes now, and keeps their answers for the first
   * identical call made later (same operation, key and request), each
   * once: the page asks for its first view before its code is loaded
   * (`firstload.ts`). Answers nobody took are dropped by `forgetAhead`. */
  askAhead(ask: (b: this) => void) {
    this.askingAhead = true;
    try {
      ask(this);
    } finally {
      this.askingAhead = false;
    }
  }
  /** Drops the answers asked ahead that no call took. */
  forgetAhead() {
    this.ahead.clear();
  }
  listBackups(q: BackupQuery) {
    const request: ListBackups = {
      kinds: q.kinds ?? [],
      engine: q.engine ?? null,
      limit: q.limit ?? 50,
      offset: q.offset ?? null,
      after: q.after ?? null,
      text: q.text ?? null,
      pinned: q.pinned ?? false,
    };
    return this.list_backups(request);
  }
  backupNow(label?: string) {
    // An absent field is the request's default (the Rust side's `serde(default)`).
    return this.create_backup((label ? { label } : {}) as CreateBackup);
  }
  restore(id: number, engine?: string) {
    return this.restore_backup(id, (engine ? { engine } : {}) as RestoreRequest);
  }
  setPinned(id: number, pinned: boolean) {
    return pinned ? this.pin_backup(id) : this.unpin_backup(id);
  }
}

/** The `engram serve` API: every request carries the token. */
export class HttpBackend extends OperationsBackend implements Backend {
  readonly kind = "http" as const;
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly fetchImpl: FetchLike = (i, init) => fetch(i, init),
  ) {
    super((op, key, request) => this.send(op, key, request));
  }

  /** One declared operation: its path, its request in the query or the body. */
  private async send(op: OperationName, key: number | string | null, request: unknown): Promise<unknown> {
    const route = OPERATIONS[op];
    let path = fill(route.path, route.key, key);
    let body: string | undefined;
    if (route.request === "query") {
      const forms = QUERY_FORMS as unknown as Record<string, (r: unknown) => string>;
      const query = route.query_form ? forms[op]!(request) : flatQuery(request);
      if (query) path += `?${query}`;
    } else if (route.request === "body") {
      body = JSON.stringify(request);
    }
    const res = await this.request(route.method, `/api${path}`, body);
    return (await res.json()) as unknown;
  }

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

  async exportBackup(id: number, format: ExportFormat) {
    const { method, path, key } = BYTE_OPERATIONS.export_backup;
    const res = await this.request(method, `/api${fill(path, key, id)}?format=${format}`);
    return await res.blob();
  }
  async saveExport(id: number, format: ExportFormat) {
    return download(await this.exportBackup(id, format), exportFileName(id, format));
  }
  async saveLearnerState(name: string, backup: number) {
    const { method, path, key } = BYTE_OPERATIONS.read_learner_state;
    const res = await this.request(method, `/api${fill(path, key, name)}?backup=${backup}`);
    return download(await res.blob(), learnerStateFileName(name, backup));
  }
  async importSnapshot(file: Blob) {
    const { method, path } = BYTE_OPERATIONS.import_snapshot;
    const res = await this.request(method, `/api${path}`, file, false);
    return (await res.json()) as Backup;
  }

  subscribe(on: (e: EngramEvent) => void, onError?: (e: unknown) => void, onOpen?: () => void) {
    // Our own reconnection, with exponential backoff (0.5 s … 30 s): the
    // browser's gives up for good on an HTTP error such as a 401 during a
    // restart, and retries a dead server at a fixed pace.
    const url = `${this.base}/api${BYTE_OPERATIONS.events.path}?token=${encodeURIComponent(this.token)}`;
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
export class TauriBackend extends OperationsBackend implements Backend {
  readonly kind = "tauri" as const;
  constructor() {
    // One declared operation: its key under its own name, its request as `request`.
    super((op, key, request) => {
      const route = OPERATIONS[op];
      const args: Record<string, unknown> = {};
      if (route.key !== null) args[route.key] = key;
      if (route.request !== "nothing") args.request = request;
      return this.call<unknown>(op, args);
    });
  }
  private async call<T>(cmd: string, args?: Record<string, unknown> | Uint8Array): Promise<T> {
    const { invoke } = await import("@tauri-apps/api/core");
    try {
      return await invoke<T>(cmd, args);
    } catch (e) {
      const err = e as { code?: ErrorCode; message?: string };
      throw new ApiError(err.code ?? "ipc", err.message ?? String(e));
    }
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
