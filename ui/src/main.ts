/** The Engram UI's entry point: builds the page, loads what there is, and
 * routes backend events to the views. Views live in `views/`, user actions
 * in `flows.ts`, shared state in `state.ts`; only `api.ts` talks to the
 * backend. */

import "./locale"; // first: see locale.ts
import { ApiError } from "./api";
import { $ } from "./dom";
import { backupNowFlow, importFlow, previewActions, setRefresh } from "./flows";
import { CHARTS, formatValue } from "./engines";
import { formatTimestamp } from "./format";
import type { EngramEvent } from "./generated/api";
import { attempt, explain, showError, toast } from "./notify";
import { api, onSelect, reselect, select, state } from "./state";
import { buildCards, updateCards } from "./views/cards";
import { buildCharts, renderCharts } from "./views/charts";
import { buildFilters, filters, loadList, markSelected as markRow, renderList } from "./views/list";
import { renderPreview, updatePreview } from "./views/preview";
import { buildSettingsForm, openSettings } from "./views/settings";
import { markSelected as markMark, renderLegend, renderTimeline } from "./views/timeline";

/** The timeline draws the newest 2,000 backups matching the filters, and
 * always the initial one (so the axis spans the whole history); when it
 * leaves some out it says how many. The list pages through all. */
async function loadTimeline() {
  const { kinds } = filters();
  const all = [];
  let after = null;
  let total = 0;
  for (let i = 0; i < 2; i += 1) {
    const page = await api.listBackups({ kinds, limit: 1000, after });
    all.push(...page.items);
    total = page.total;
    if (!page.next) break;
    after = page.next;
  }
  let extra = 0;
  if (all.length < total && (kinds.length === 0 || kinds.includes("initial")) && !all.some((b) => b.kind === "initial")) {
    const first = await api.listBackups({ kinds: ["initial"], limit: 1, after: null });
    all.push(...first.items);
    extra = first.items.length;
  }
  state.timeline = all;
  const note = $("timeline-note");
  const shown = all.length - extra;
  note.hidden = shown >= total;
  note.textContent = `Showing the newest ${shown.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} backups${extra ? " and the initial one" : ""}; filter by kind to see others.`;
  await loadHistory();
  renderTimeline();
  renderCharts();
}

/** The stored history of every charted metric (one downsampled series each). */
async function loadHistory() {
  const series = await Promise.all(CHARTS.map((c) => api.metricSeries({ engine: c.engine, key: c.key, from_ms: null, to_ms: null, points: 600 })));
  state.history = Object.fromEntries(series.map((s) => [`${s.engine}/${s.key}`, s]));
}

let refreshing = false;
async function refreshAll() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [, , outlook] = await Promise.all([loadList(true), loadTimeline(), api.retention().catch(() => [])]);
    state.retention = new Map(outlook.map((o) => [o.id, o]));
    reselect();
    renderPreview(previewActions);
  } catch (e) {
    showError(`Could not load backups. ${explain(e)}`);
  } finally {
    refreshing = false;
  }
}

function setLive(on: boolean, text: string) {
  const pill = $("live");
  pill.textContent = text;
  pill.classList.toggle("on", on && saveProblem === null);
  pill.classList.toggle("warn", on && saveProblem !== null);
  pill.classList.toggle("off", !on);
  if (on && saveProblem !== null) pill.textContent = `running — ${saveProblem}`;
}

/** Codes of failures that mean saves are not landing. */
const SAVE_CODES = new Set(["disk_full", "read_only", "storage_changed", "io", "database", "db_locked"]);
/** Why saves are failing (shown in the pill), or null when they land. */
let saveProblem: string | null = null;

function onEvent(e: EngramEvent) {
  state.connected = true;
  switch (e.type) {
    case "metrics":
      state.now = e.engines;
      state.live.push({ t: e.at_ms, engines: e.engines });
      if (state.live.length > 2000) state.live.splice(0, state.live.length - 2000);
      setLive(true, "running");
      updateCards();
      renderCharts();
      updatePreview();
      break;
    case "saved":
      $("saved").textContent = `saved ${formatTimestamp(e.at_ms)} UTC`;
      if (saveProblem !== null) {
        // Saves land again: the warning is over.
        saveProblem = null;
        $("banner").hidden = true;
        setLive(true, "running");
      }
      break;
    case "backup_created":
    case "backups_deleted":
    case "restored":
      void refreshAll();
      break;
    case "breakthrough":
      toast(`Breakthrough: ${e.breakthrough.engine} ${e.breakthrough.metric} = ${formatValue(e.breakthrough.engine, e.breakthrough.metric, e.breakthrough.value)}${e.backup_id === null ? " — its backup is pending: it could not be written yet and is retried at every autosave." : ` — backed up as #${e.backup_id}.`}`);
      break;
    case "error":
      if (SAVE_CODES.has(e.code)) {
        saveProblem = e.code === "disk_full" ? "saving failed: disk full" : e.code === "read_only" ? "saving failed: read-only" : "saving failed";
        setLive(true, "running");
      }
      showError(explain(new ApiError(e.code, e.message)));
      break;
  }
}

async function start() {
  setRefresh(refreshAll);
  renderLegend();
  buildFilters(() => {
    void loadList(true);
    void loadTimeline();
  });
  buildSettingsForm();
  buildCards();
  try {
    buildCharts(() => renderTimeline());
  } catch (e) {
    // The rest of the page works without charts: say why they are missing.
    showError(`The charts could not be drawn: ${String(e)}`);
  }
  onSelect(() => {
    markRow();
    markMark();
    renderPreview(previewActions);
  });
  $("more").addEventListener("click", () => void loadList(false));
  $("backup-now").addEventListener("click", () => void backupNowFlow());
  $("backup-label").addEventListener("keydown", (ev) => {
    if ((ev as KeyboardEvent).key === "Enter") void backupNowFlow();
  });
  $("open-settings").addEventListener("click", () => void openSettings());
  // A real button (a label on a hidden input is not reachable by keyboard).
  $("import-button").addEventListener("click", () => $<HTMLInputElement>("import-file").click());
  $<HTMLInputElement>("import-file").addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (file) void importFlow(file);
  });
  $("banner").addEventListener("click", () => ($("banner").hidden = true));
  // Escape closes the preview (the drawer, on a narrow window).
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.selected && !document.querySelector("dialog[open]")) select(null);
  });
  const status = await attempt("Connecting to Engram", () => api.status());
  if (status) {
    state.now = Object.fromEntries(Object.entries(status.engines).map(([k, v]) => [k, v.metrics]));
    if (status.saved_at_ms !== null) $("saved").textContent = `saved ${formatTimestamp(status.saved_at_ms)} UTC`;
    const skipped = status.startup?.skipped ?? [];
    if (skipped.length > 0) {
      showError(`At launch, damaged saved state was skipped and the newest good state used: ${skipped.map((s) => `${s.engine} (${s.what}: ${s.code})`).join("; ")}.`);
    }
    const paused = Object.entries(status.engines).filter(([, v]) => v.paused !== null);
    if (paused.length > 0) {
      showError(`Paused after a failure (restore a backup to resume): ${paused.map(([k, v]) => `${k}: ${v.paused}`).join("; ")}.`);
    }
    setLive(true, "running");
    updateCards();
  } else {
    setLive(false, "offline");
  }
  let lost = false;
  api.subscribe(
    onEvent,
    () => {
      // Numbers stop updating: say so, and grey them out.
      lost = true;
      document.body.classList.add("stale");
      setLive(false, "reconnecting…");
    },
    () => {
      document.body.classList.remove("stale");
      if (!lost) return;
      // Back after a break (e.g. `engram serve` restarted): catch up on
      // everything that happened meanwhile.
      lost = false;
      setLive(true, "running");
      void refreshAll();
    },
  );
  renderList();
  await refreshAll();
}

void start();
