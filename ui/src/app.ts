/** The Engram UI's page (loaded by `main.ts` once it has asked for the
 * first view's data): builds the page, loads what there is, and routes
 * backend events to the views. Views live in `views/`, user actions
 * in `flows.ts`, shared state in `state.ts`; only `api.ts` talks to the
 * backend. */

import { ApiError } from "./api";
import { $ } from "./dom";
import { backupNowFlow, importFlow, learnerFlow, previewActions, setRefresh } from "./flows";
import { CHARTS, formatValue } from "./model/engines";
import { formatTimestamp } from "./model/format";
import type { EngramEvent, MetricInfo } from "./generated/api";
import { clearErrors, errorKey, explain, SAVE_CODES, showError, toast } from "./notify";
import { onSelect, reselect, select, selectionMark, state, views } from "./state";
import { api } from "./backend";
import { BUCKETS, MARKS, POINTS } from "./firstload";
import { buildCards, updateCards } from "./views/cards";
import { buildCharts, charted, renderCharts, setLearnerCharts, zoomRange } from "./views/charts";
import { buildFilters, filters, loadList, markRollsOff, markSelected as markRow, renderList } from "./views/list";
import { buildFollow } from "./views/follow";
import { renderPreview, updatePreview, updateRetentionNote } from "./views/preview";
import { buildSettingsForm, openSettings } from "./views/settings";
import { loadLearners } from "./views/learners";
import { buildStorage, refreshStorage } from "./views/storage";
import { buildOffsite, refreshOffsite } from "./views/offsite";
import { buildFleet } from "./views/fleet";
import { firstRun, waitsForChoice } from "./views/firstrun";
import { buildTimeline, markSelected as markMark, renderLegend, renderTimeline } from "./views/timeline";

/** This module's state, in the one store. */
const my = views.main;

async function loadTimeline(draw = true) {
  const mine = ++my.timelineLoads;
  const z = zoomRange();
  const view = await api.timeline({ kinds: filters().kinds, from_ms: z?.min ?? null, to_ms: z?.max ?? null, buckets: BUCKETS, marks: MARKS });
  if (mine !== my.timelineLoads) return;
  state.timelineView = view;
  state.timeline = view.marks;
  if (draw) renderTimeline();
}

async function loadHistory() {
  const mine = ++my.historyLoads;
  const series = await loadSeries(charted());
  if (mine !== my.historyLoads) return;
  state.history = Object.fromEntries(series.map((s) => [`${s.engine}/${s.key}`, s]));
}

/** The series of these metrics over the zoomed range (else all of it). */
function loadSeries(list: MetricInfo[]) {
  const z = zoomRange();
  return Promise.all(list.map((c) => api.metric_series({ engine: c.engine, key: c.key, from_ms: z?.min ?? null, to_ms: z?.max ?? null, points: POINTS })));
}

function refreshAll(): Promise<void> {
  if (!my.current) {
    my.current = refreshOnce().finally(() => (my.current = null));
    return my.current;
  }
  my.queued ??= my.current.then(() => {
    my.queued = null;
    return refreshAll();
  });
  return my.queued;
}

/** The learners' series only (the built-in engines' come with events). */
async function loadLearnerHistory() {
  for (const s of await loadSeries(state.learnerCharts)) state.history[`${s.engine}/${s.key}`] = s;
}

/** The learners' metrics to chart (new ones appear as they log). */
async function loadLearnerCharts() {
  const catalog = await api.metric_catalog().catch(() => null);
  if (catalog === null) return;
  const builtIn = new Set(CHARTS.map((c) => c.engine));
  setLearnerCharts(catalog.filter((m) => m.chart && !builtIn.has(m.engine)));
}

async function refreshOnce() {
  const mark = selectionMark();
  try {
    await loadLearnerCharts();
    await Promise.all([loadList("same"), loadTimeline(false), loadHistory()]);
    await reselect(mark, (id) => api.get_backup(id));
    renderPreview(previewActions);
    // Drawn once both are in: the axis spans the backups and the history.
    renderTimeline();
    renderCharts();
    void refreshStorage();
    void refreshOffsite();
    void loadLearners();
  } catch (e) {
    // Before the first run's choice there is nothing to load yet.
    if (e instanceof ApiError && e.code === "not_started") return;
    showError(`Could not load backups. ${explain(e)}`);
  } finally {
    // What was asked ahead serves the first load only.
    api.forgetAhead();
  }
}

function holdSelection() {
  const id = state.selected?.id ?? null;
  if (my.held !== null && my.held !== id) void api.release_backup(my.held).catch(() => undefined);
  my.held = id;
  if (id === null) return;
  // Then say so in the preview ("open in the UI").
  void api
    .hold_backup(id)
    .then(() => api.retention({ ids: [id] }))
    .then((o) => {
      for (const x of o) state.retention.set(x.id, x);
      if (state.selected?.id === id) updateRetentionNote(id);
      markRollsOff();
    })
    .catch(() => undefined);
}

function setLive(on: boolean, text: string) {
  const pill = $("live");
  pill.textContent = text;
  pill.classList.toggle("on", on && my.saveProblem === null);
  pill.classList.toggle("warn", on && my.saveProblem !== null);
  pill.classList.toggle("off", !on);
  if (on && my.saveProblem !== null) pill.textContent = `running — ${my.saveProblem}`;
}


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
      void loadLearners();
      if (state.learnerCharts.length > 0) void loadLearnerCharts().then(loadLearnerHistory).then(renderCharts);
      if (my.saveProblem !== null) {
        // Saves land again: the warning is over.
        my.saveProblem = null;
        clearErrors("save");
        setLive(true, "running");
      }
      break;
    case "backup_created":
    case "backups_deleted":
    case "restored":
    case "learner_removed":
      void refreshAll();
      break;
    case "learner_process":
    case "learner_stop_requested":
      void loadLearners();
      break;
    case "breakthrough":
      toast(`Breakthrough: ${e.breakthrough.engine} ${e.breakthrough.metric} = ${formatValue(e.breakthrough.engine, e.breakthrough.metric, e.breakthrough.value)}${e.backup_id === null ? " — its backup is pending: it could not be written yet and is retried at every autosave." : ` — backed up as #${e.backup_id}.`}`);
      break;
    case "error":
      if (SAVE_CODES.has(e.code)) {
        my.saveProblem = e.code === "disk_full" ? "saving failed: disk full" : e.code === "read_only" ? "saving failed: read-only" : "saving failed";
        setLive(true, "running");
      }
      showError(explain(new ApiError(e.code, e.message)), SAVE_CODES.has(e.code) ? "save" : undefined);
      break;
  }
}

async function start() {
  // Long by design: the page's start-up in order (the first run's choice,
  // connect, build every view, wire the events, load), each step a few lines.
  // Ask at once: the answers travel while the page is built and laid out
  // (the load's first step waits for the metric catalog; nothing it does
  // touches the page before that answer, by when the page is built).
  const statusAsked = api.status().then(
    (s) => ({ s }),
    (e: unknown) => ({ e }),
  );
  let loaded = refreshAll();
  setRefresh(refreshAll);
  renderLegend();
  buildFilters(() => void loadTimeline());
  buildFollow(renderList);
  buildTimeline();
  buildStorage();
  buildOffsite(refreshAll);
  buildFleet(refreshAll);
  buildSettingsForm();
  buildCards();
  try {
    buildCharts(() => {
      // The zoom changed: redraw at once, then with the range's own data.
      renderTimeline();
      void Promise.all([loadTimeline(), loadHistory()])
        .then(renderCharts)
        .catch((e: unknown) => showError(`Could not load the zoomed range. ${explain(e)}`));
    });
  } catch (e) {
    // The rest of the page works without charts: say why they are missing.
    showError(`The charts could not be drawn: ${String(e)}`);
  }
  onSelect(() => {
    holdSelection();
    markRow();
    markMark();
    renderPreview(previewActions);
  });
  window.setInterval(() => {
    if (my.held !== null) void api.hold_backup(my.held).catch(() => undefined);
  }, 60_000);
  $("backup-now").addEventListener("click", () => void backupNowFlow());
  $("backup-label").addEventListener("keydown", (ev) => {
    if ((ev as KeyboardEvent).key === "Enter") void backupNowFlow();
  });
  $("open-settings").addEventListener("click", () => void openSettings());
  $("add-learner").addEventListener("click", () => void learnerFlow().then(loadLearners));
  // A real button (a label on a hidden input is not reachable by keyboard).
  $("import-button").addEventListener("click", () => $<HTMLInputElement>("import-file").click());
  $<HTMLInputElement>("import-file").addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (file) void importFlow(file);
  });
  // Escape closes the preview (the drawer, on a narrow window).
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.selected && !document.querySelector("dialog[open]")) select(null);
  });
  // An Engram without data waits for the first run's choice (shown
  // instead of the page); then it runs and the page loads.
  let asked = await statusAsked;
  if ("e" in asked && asked.e instanceof ApiError && asked.e.code === "not_started") {
    const waiting = await waitsForChoice();
    if (waiting !== null) await firstRun(waiting);
    asked = await api.status().then(
      (s) => ({ s }),
      (e: unknown) => ({ e }),
    );
    loaded = refreshAll();
  }
  if ("e" in asked) showError(`Connecting to Engram failed. ${explain(asked.e)}`, errorKey(asked.e));
  const status = "s" in asked ? asked.s : undefined;
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
  await loaded;
  // Everything is drawn: the browser benchmark reads this (User Timing).
  performance.mark("engram:ready");
}

void start();
