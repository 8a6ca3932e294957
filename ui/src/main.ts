/** The Engram UI: dashboard, backup timeline, actions and settings. Talks to
 * the backend only through `api.ts`. */

import { ApiError, connect, type ExportFormat } from "./api";
import { formatBytes, formatTimestamp } from "./format";
import { layoutMarks, linePath, ticks, timeScale, type TimeScale } from "./timeline";
import { BACKUP_KINDS, ENGINES, type Backup, type BackupKind, type EngramEvent, type Metrics, type Settings } from "./types";

const api = connect();
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const SVG = "http://www.w3.org/2000/svg";

const ENGINE_TITLES: Record<string, string> = { zap: "ZAP planner", mdp_es: "MDP/ES optimizer", orchestrator: "Orchestrator" };
const CARD_METRICS: Record<string, [string, string, (v: number) => string][]> = {
  zap: [
    ["plans_generated", "Plans", int],
    ["success_rate_last_100", "Success (last 100)", pct],
    ["success_rate", "Success (all)", pct],
    ["mean_planning_ms", "Planning time", (v) => `${v.toFixed(2)} ms`],
    ["mean_confidence", "Confidence", pct],
  ],
  mdp_es: [
    ["episodes", "Episodes", int],
    ["generation", "ES generation", int],
    ["best_fitness", "Best fitness", (v) => v.toFixed(3)],
    ["success_rate_last_100", "Q success (last 100)", pct],
    ["epsilon", "ε", (v) => v.toFixed(3)],
  ],
  orchestrator: [
    ["cross_system_calls", "Cross-system calls", int],
    ["failures", "Failures", int],
    ["systems_registered", "Systems", int],
    ["mean_latency_ms", "Mean latency", (v) => `${(v * 1000).toFixed(1)} µs`],
  ],
};
const CHARTS: { engine: string; metric: string; title: string; range?: [number, number]; fmt: (v: number) => string }[] = [
  { engine: "zap", metric: "success_rate_last_100", title: "ZAP success (last 100)", range: [0, 1], fmt: pct },
  { engine: "zap", metric: "total_reward", title: "ZAP total reward", fmt: int },
  { engine: "mdp_es", metric: "best_fitness", title: "MDP/ES best fitness", range: [0, 1], fmt: (v) => v.toFixed(3) },
  { engine: "orchestrator", metric: "cross_system_calls", title: "Cross-system calls", fmt: int },
];

function int(v: number) {
  return Math.round(v).toLocaleString("en-US");
}
function pct(v: number) {
  return `${(v * 100).toFixed(1)}%`;
}

// ----- state -------------------------------------------------------------------

let now: Record<string, Metrics> = {};
const live: { t: number; engines: Record<string, Metrics> }[] = [];
let timelineBackups: Backup[] = [];
let listItems: Backup[] = [];
let listNext: Backup["created_at_ms"] | null = null;
let listCursor: { created_at_ms: number; id: number } | null = null;
let selected: Backup | null = null;
let connected = false;

// ----- small helpers -------------------------------------------------------------

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag: string, attrs: Record<string, string | number>) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

let toastTimer: number | undefined;
function toast(message: string) {
  const t = $("toast");
  t.textContent = message;
  t.classList.add("show");
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => t.classList.remove("show"), 3500);
}

function explain(e: unknown): string {
  if (e instanceof ApiError) {
    const hints: Record<string, string> = {
      disk_full: "The disk is full: free some space; Engram keeps running and retries.",
      read_only: "The data directory is read-only.",
      invalid_snapshot: "That file is not a valid Engram snapshot; nothing was imported.",
      unsupported_format: "That file was written by a newer Engram; nothing was imported.",
      protected: "This backup is protected.",
      unreachable: "Engram is not reachable.",
    };
    return `${hints[e.code] ?? "Something went wrong."} (${e.code}: ${e.message})`;
  }
  return String(e);
}

function showError(message: string) {
  const b = $("banner");
  b.textContent = message;
  b.hidden = false;
}

async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    showError(`${what} failed. ${explain(e)}`);
    return undefined;
  }
}

function kindLabel(kind: BackupKind) {
  const span = el("span", { class: `kind ${kind}` }, kind);
  // CSSOM, not a style attribute: the desktop app's CSP forbids inline styles.
  span.style.setProperty("--kc", `var(--k-${kind})`);
  return span;
}

// ----- dashboard -----------------------------------------------------------------

function renderCards() {
  const cards = $("cards");
  cards.replaceChildren(
    ...ENGINES.map((engine) => {
      const m = now[engine] ?? {};
      const card = el("article", { class: "card", "data-testid": `card-${engine}` });
      card.append(el("h3", {}, ENGINE_TITLES[engine] ?? engine));
      const dl = el("dl");
      for (const [key, label, fmt] of CARD_METRICS[engine] ?? []) {
        dl.append(el("dt", {}, label), el("dd", { "data-testid": `metric-${engine}-${key}` }, key in m ? fmt(m[key]!) : "—"));
      }
      card.append(dl);
      return card;
    }),
  );
}

function sharedScale(width: number): TimeScale {
  const times = timelineBackups.map((b) => b.created_at_ms).concat(live.map((p) => p.t));
  times.push(Date.now());
  return timeScale(times, width);
}

function renderCharts() {
  const host = $("charts");
  const width = 600;
  const height = 90;
  const scale = sharedScale(width);
  const milestones = timelineBackups.filter((b) => b.kind === "breakthrough");
  host.replaceChildren(
    ...CHARTS.map((c) => {
      const points = timelineBackups
        .filter((b) => b.metrics[c.engine]?.[c.metric] !== undefined)
        .map((b) => ({ t: b.created_at_ms, v: b.metrics[c.engine]![c.metric]! }))
        .concat(live.filter((p) => p.engines[c.engine]?.[c.metric] !== undefined).map((p) => ({ t: p.t, v: p.engines[c.engine]![c.metric]! })))
        .sort((a, b) => a.t - b.t);
      const values = points.map((p) => p.v);
      const [lo, hi] = c.range ?? [Math.min(0, ...values), Math.max(1, ...values)];
      const box = el("div", { class: "chart", "data-testid": `chart-${c.engine}-${c.metric}` });
      const header = el("header");
      const latest = now[c.engine]?.[c.metric];
      header.append(el("span", {}, c.title), el("b", {}, latest === undefined ? "—" : c.fmt(latest)));
      const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
      for (const m of milestones) {
        const x = ((m.created_at_ms - scale.start) / (scale.end - scale.start)) * width;
        const line = svg("line", { class: "milestone", x1: x, x2: x, y1: 0, y2: height });
        const title = svg("title", {});
        title.textContent = m.breakthrough ? `${m.breakthrough.rule}: ${m.breakthrough.value}` : "breakthrough";
        line.append(title);
        s.append(line);
      }
      s.append(svg("path", { class: "line", d: linePath(points, scale, height - 4, lo, hi), "vector-effect": "non-scaling-stroke" }));
      box.append(header, s);
      return box;
    }),
  );
}

// ----- timeline ----------------------------------------------------------------------

function renderLegend() {
  $("legend").replaceChildren(
    ...BACKUP_KINDS.map((k) => {
      const s = el("span");
      const swatch = el("i");
      swatch.style.setProperty("background", `var(--k-${k})`);
      s.append(swatch, document.createTextNode(k));
      return s;
    }),
  );
}

function renderTimeline() {
  const host = $<HTMLElement>("timeline") as unknown as SVGSVGElement;
  const width = 1200;
  const scale = sharedScale(width);
  host.setAttribute("viewBox", `0 0 ${width} 84`);
  host.setAttribute("preserveAspectRatio", "none");
  const nodes: Element[] = [svg("line", { class: "axis", x1: 0, x2: width, y1: 60, y2: 60 })];
  for (const t of ticks(scale, 6)) {
    const text = svg("text", { x: Math.min(Math.max(t.x, 30), width - 30), y: 78, "text-anchor": "middle" });
    text.textContent = t.label;
    nodes.push(text);
  }
  for (const m of layoutMarks(timelineBackups, scale)) {
    const y = 48 - m.row * 16;
    const color = `var(--k-${m.kind})`;
    const shape = m.milestone
      ? svg("rect", { x: m.x - 5, y: y - 5, width: 10, height: 10, transform: `rotate(45 ${m.x} ${y})`, fill: color })
      : svg("circle", { cx: m.x, cy: y, r: 4.5, fill: color });
    shape.classList.add("mark");
    if (selected?.id === m.id) shape.classList.add("selected");
    shape.setAttribute("data-id", String(m.id));
    const b = timelineBackups.find((x) => x.id === m.id);
    const title = svg("title", {});
    title.textContent = b ? `#${b.id} ${b.kind} ${formatTimestamp(b.created_at_ms)}${b.breakthrough ? ` — ${b.breakthrough.rule} = ${b.breakthrough.value}` : ""}` : "";
    shape.append(title);
    shape.addEventListener("click", () => b && select(b));
    nodes.push(shape);
  }
  host.replaceChildren(...nodes);
}

async function loadTimeline() {
  // The newest 2,000 backups are drawn; the list pages through all of them.
  const all: Backup[] = [];
  let after: { created_at_ms: number; id: number } | null = null;
  for (let i = 0; i < 2; i += 1) {
    const page = await api.listBackups({ limit: 1000, after });
    all.push(...page.items);
    if (!page.next) break;
    after = page.next;
  }
  timelineBackups = all;
  renderTimeline();
  renderCharts();
}

// ----- list and preview ----------------------------------------------------------------

function currentFilters() {
  const kind = $<HTMLSelectElement>("filter-kind").value as BackupKind | "";
  const engine = $<HTMLSelectElement>("filter-engine").value;
  return { kinds: kind ? [kind] : [], engine: engine || undefined };
}

async function loadList(reset: boolean) {
  if (reset) {
    listItems = [];
    listCursor = null;
  }
  const page = await api.listBackups({ ...currentFilters(), limit: 50, after: listCursor });
  listItems = listItems.concat(page.items);
  listCursor = page.next;
  listNext = page.next ? page.next.created_at_ms : null;
  $("total").textContent = `${page.total.toLocaleString("en-US")} backups`;
  $("more").hidden = listNext === null;
  renderList();
}

function renderList() {
  $("rows").replaceChildren(
    ...listItems.map((b) => {
      const tr = el("tr", { "data-id": String(b.id), "data-kind": b.kind, "data-testid": "backup-row" });
      if (selected?.id === b.id) tr.classList.add("selected");
      const kind = el("td");
      kind.append(kindLabel(b.kind));
      const what = b.breakthrough ? `${b.breakthrough.engine}: ${b.breakthrough.metric} = ${b.breakthrough.value.toFixed(3)} at step ${b.breakthrough.step}` : (b.label ?? "");
      tr.append(el("td", {}, String(b.id)), kind, el("td", {}, formatTimestamp(b.created_at_ms)), el("td", {}, what), el("td", {}, b.pinned ? "📌" : ""));
      tr.addEventListener("click", () => select(b));
      return tr;
    }),
  );
}

function select(b: Backup) {
  selected = b;
  renderList();
  renderTimeline();
  renderPreview();
}

function renderPreview() {
  const p = $("preview");
  const b = selected;
  if (!b) {
    p.replaceChildren(el("p", { class: "muted" }, "Select a backup to see what it holds."));
    return;
  }
  const head = el("h3");
  head.append(el("span", {}, `Backup #${b.id}`), kindLabel(b.kind));
  const meta = el("p", { class: "muted" }, `${formatTimestamp(b.created_at_ms)} UTC · ${formatBytes(b.size)}${b.label ? ` · “${b.label}”` : ""}${b.pinned ? " · pinned" : ""}`);
  const nodes: Node[] = [head, meta];
  if (b.breakthrough) {
    nodes.push(el("p", {}, `Milestone: ${b.breakthrough.rule} — ${b.breakthrough.metric} = ${b.breakthrough.value} at step ${b.breakthrough.step}`));
  }
  for (const engine of b.engines) {
    const t = el("table", { "data-testid": `preview-${engine}` });
    const cap = el("tr");
    cap.append(el("th", {}, ENGINE_TITLES[engine] ?? engine), el("th", {}, "then"), el("th", {}, "now"), el("th", {}, "change"));
    t.append(cap);
    for (const [key, label, fmt] of CARD_METRICS[engine] ?? []) {
      const then = b.metrics[engine]?.[key];
      const current = now[engine]?.[key];
      const row = el("tr");
      const delta = then !== undefined && current !== undefined ? current - then : undefined;
      const cls = delta === undefined || delta === 0 ? "" : delta > 0 ? "up" : "down";
      row.append(
        el("td", {}, label),
        el("td", {}, then === undefined ? "—" : fmt(then)),
        el("td", {}, current === undefined ? "—" : fmt(current)),
        el("td", { class: cls }, delta === undefined ? "" : `${delta > 0 ? "+" : ""}${fmt(delta)}`),
      );
      t.append(row);
    }
    nodes.push(t);
  }
  const buttons = el("div", { class: "buttons" });
  const restore = el("button", { class: "primary", "data-testid": "restore" }, "Restore…");
  restore.addEventListener("click", () => void restoreFlow(b));
  const exportBtn = el("button", { "data-testid": "export" }, "Export…");
  exportBtn.addEventListener("click", () => void exportFlow(b));
  const pin = el("button", { "data-testid": "pin" }, b.pinned ? "Unpin" : "Pin");
  pin.addEventListener("click", () => void pinFlow(b));
  const del = el("button", { class: "danger", "data-testid": "delete" }, "Delete…");
  del.addEventListener("click", () => void deleteFlow(b));
  buttons.append(restore, exportBtn, pin, del);
  nodes.push(buttons);
  p.replaceChildren(...nodes);
}

// ----- actions ---------------------------------------------------------------------------

function ask(title: string, text: string, extra?: HTMLElement): Promise<boolean> {
  const d = $<HTMLDialogElement>("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-extra").replaceChildren(...(extra ? [extra] : []));
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

async function restoreFlow(b: Backup) {
  const choice = el("select", { "data-testid": "restore-engine", "aria-label": "What to restore" });
  choice.append(el("option", { value: "" }, "All engines"));
  for (const e of b.engines) choice.append(el("option", { value: e }, `Only ${ENGINE_TITLES[e] ?? e}`));
  const ok = await ask(
    `Restore backup #${b.id}?`,
    "The engines continue from this backup. A pre-restore backup of the current state is taken first, so you can undo this by restoring it.",
    choice,
  );
  if (!ok) return;
  const r = await attempt("Restore", () => api.restore(b.id, choice.value || undefined));
  if (r) toast(`Restored ${r.engines.join(", ")}. Undo: restore pre-restore backup #${r.pre_restore_backup}.`);
  await refreshAll();
}

async function exportFlow(b: Backup) {
  const choice = el("select", { "data-testid": "export-format", "aria-label": "Format" });
  choice.append(el("option", { value: "json" }, "JSON (readable by any tool)"), el("option", { value: "binary" }, "Binary (compact)"));
  if (!(await ask(`Export backup #${b.id}`, "Save it as a portable, self-describing file you can import elsewhere.", choice))) return;
  const format = choice.value as ExportFormat;
  toast("Exporting…");
  const where = await attempt("Export", () => api.saveExport(b.id, format));
  if (where) toast(`Exported backup #${b.id} to ${where}.`);
}

async function pinFlow(b: Backup) {
  const updated = await attempt(b.pinned ? "Unpin" : "Pin", () => api.setPinned(b.id, !b.pinned));
  if (updated) {
    selected = updated;
    await refreshAll();
  }
}

async function deleteFlow(b: Backup) {
  if (!(await ask(`Delete backup #${b.id}?`, "This cannot be undone."))) return;
  try {
    await api.deleteBackup(b.id);
    selected = null;
    toast(`Deleted backup #${b.id}.`);
  } catch (e) {
    showError(e instanceof ApiError && e.code === "protected" ? `Not deleted: ${e.message}.` : `Delete failed. ${explain(e)}`);
  }
  await refreshAll();
}

async function backupNow() {
  const b = await attempt("Back up now", () => api.backupNow());
  if (b) {
    toast(`Backup #${b.id} taken.`);
    selected = b;
    await refreshAll();
  }
}

async function importFlow(file: File) {
  try {
    const b = await api.importSnapshot(file);
    toast(`Imported ${file.name} as backup #${b.id}.`);
    selected = b;
    await refreshAll();
  } catch (e) {
    showError(`Import of ${file.name} refused. ${explain(e)}`);
  }
}

// ----- settings -----------------------------------------------------------------------------

const RETENTION_KEYS = ["keep_last_periodic", "keep_hourly", "keep_daily", "keep_weekly", "keep_last_pre_restore"] as const;
const TOP_KEYS = ["autosave_secs", "backup_every_secs", "zap_success_rate", "zap_min_plans", "mdp_min_fitness", "mdp_min_generations", "orchestrator_every"] as const;

async function openSettings() {
  const s = await attempt("Loading settings", () => api.getSettings());
  if (!s) return;
  const form = $<HTMLFormElement>("settings-form");
  const input = (name: string) => form.elements.namedItem(name) as HTMLInputElement;
  for (const k of TOP_KEYS) input(k).value = String(s[k]);
  for (const k of RETENTION_KEYS) input(k).value = String(s.retention[k]);
  $("settings-error").hidden = true;
  const d = $<HTMLDialogElement>("settings");
  d.returnValue = "";
  d.showModal();
  d.addEventListener(
    "close",
    () => {
      if (d.returnValue !== "save") return;
      const next: Settings = {
        ...s,
        retention: { ...s.retention },
      };
      for (const k of TOP_KEYS) next[k] = Number(input(k).value);
      for (const k of RETENTION_KEYS) next.retention[k] = Number(input(k).value);
      void api
        .putSettings(next)
        .then(() => toast("Settings saved and applied."))
        .catch((e: unknown) => showError(`Settings not saved. ${explain(e)}`));
    },
    { once: true },
  );
}

// ----- events and start-up -------------------------------------------------------------------

let refreshQueued = false;
async function refreshAll() {
  if (refreshQueued) return;
  refreshQueued = true;
  try {
    await Promise.all([loadList(true), loadTimeline()]);
    if (selected) {
      const id = selected.id;
      selected = listItems.find((b) => b.id === id) ?? timelineBackups.find((b) => b.id === id) ?? null;
    }
    renderPreview();
  } catch (e) {
    showError(`Could not load backups. ${explain(e)}`);
  } finally {
    refreshQueued = false;
  }
}

function setLive(on: boolean, text: string) {
  const pill = $("live");
  pill.textContent = text;
  pill.classList.toggle("on", on);
  pill.classList.toggle("off", !on);
}

function onEvent(e: EngramEvent) {
  connected = true;
  switch (e.type) {
    case "metrics":
      now = e.engines;
      live.push({ t: e.at_ms, engines: e.engines });
      if (live.length > 2000) live.splice(0, live.length - 2000);
      setLive(true, "running");
      renderCards();
      renderCharts();
      if (selected) renderPreview();
      break;
    case "saved":
      $("saved").textContent = `saved ${formatTimestamp(e.at_ms)} UTC`;
      break;
    case "backup_created":
    case "backups_deleted":
    case "restored":
      void refreshAll();
      break;
    case "breakthrough":
      toast(`Breakthrough: ${e.breakthrough.engine} ${e.breakthrough.metric} = ${e.breakthrough.value.toFixed(3)} — backed up.`);
      break;
    case "error":
      showError(`${explain(new ApiError(e.code, e.message))}`);
      break;
  }
}

async function start() {
  renderLegend();
  for (const k of BACKUP_KINDS) $("filter-kind").append(el("option", { value: k }, k));
  for (const e of ENGINES) $("filter-engine").append(el("option", { value: e }, ENGINE_TITLES[e] ?? e));
  $("filter-kind").addEventListener("change", () => void loadList(true));
  $("filter-engine").addEventListener("change", () => void loadList(true));
  $("more").addEventListener("click", () => void loadList(false));
  $("backup-now").addEventListener("click", () => void backupNow());
  $("open-settings").addEventListener("click", () => void openSettings());
  $<HTMLInputElement>("import-file").addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (file) void importFlow(file);
  });
  $("banner").addEventListener("click", () => ($("banner").hidden = true));
  renderCards();
  const status = await attempt("Connecting to Engram", () => api.status());
  if (status) {
    now = Object.fromEntries(Object.entries(status.engines).map(([k, v]) => [k, v.metrics]));
    if (status.saved_at) $("saved").textContent = `saved ${status.saved_at.slice(0, 19).replace("T", " ")} UTC`;
    const skipped = status.startup?.skipped ?? [];
    if (skipped.length > 0) {
      showError(`At launch, damaged saved state was skipped and the newest good state used: ${skipped.map((s) => `${s.engine} (${s.what}: ${s.code})`).join("; ")}.`);
    }
    setLive(true, "running");
    renderCards();
  } else {
    setLive(false, "offline");
  }
  api.subscribe(onEvent, () => {
    if (connected) setLive(false, "reconnecting…");
  });
  await refreshAll();
}

void start();
