/** The learning curves, drawn with uPlot (small, canvas, fast with hundreds
 * of thousands of points): each charted metric's stored history (across
 * restarts, downsampled by the core) plus what this page saw live since.
 *
 * - Time axis, and a y axis in the metric's own format and unit.
 * - Hover: a crosshair synced across every chart, with each chart's value
 *   at that instant in its legend.
 * - Drag to zoom; the zoom applies to every chart and to the backup
 *   timeline; double-click resets it.
 * - Smoothing (TensorBoard's debiased EMA) and a log scale, for all charts.
 * - A restore starts a new line: the current line of history is drawn
 *   solid, the lines a restore left behind are faded; restores and
 *   milestones are vertical marks whose text shows on hover.
 * - Per-engine visibility.
 * - No line crosses a span in which nothing ran (Engram stopped, a
 *   learner's process gone): the span is shaded, "not running" on hover.
 * - The legend row (time and values under the cursor) shows only while
 *   the cursor is over a chart.
 *
 * The plots are built once; a metrics event only gives them new data. */

import uPlot from "uplot";
import { chartData, spanAt, widenFlat, type Span } from "../model/chartdata";
import { loneInstant, recordSpan, TIME_SPACE, TIME_STAMPS, utc } from "./timeaxis";
import { $, el } from "../dom";
import { CHARTS, ENGINE_TITLES, formatMetric, formatValue, setLearnerMetrics } from "../model/engines";
import { formatTimestamp } from "../model/format";
import type { MetricInfo } from "../generated/api";
import { state, views } from "../state";
import { timeScale, type ChartPoint, type TimeScale } from "../model/timeline";

/** This module's state, in the one store. */
const my = views.charts;

export interface Plot {
  info: MetricInfo;
  u: uPlot;
  box: HTMLElement;
  latest: HTMLElement;
  marks: HTMLElement;
}


/** The time axis the timeline shares with the charts: the zoomed range if
 * there is one, else the whole history. */
export function sharedScale(width: number): TimeScale {
  if (my.zoom) return timeScale([my.zoom.min, my.zoom.max], width);
  const v = state.timelineView;
  const times = [v?.first_ms ?? NaN, v?.last_ms ?? NaN].concat(state.live.map((p) => p.t));
  for (const series of Object.values(state.history)) {
    const first = series.points[0];
    if (first) times.push(first.at_ms);
  }
  times.push(Date.now());
  return timeScale(times, width);
}

/** Every charted metric: the built-in engines', then the learners'. */
export function charted(): MetricInfo[] {
  return [...CHARTS, ...state.learnerCharts];
}

/** Takes the learners' charted metrics; when they changed, the plots are
 * made again (with a show/hide box per learner). True if they changed. */
export function setLearnerCharts(list: MetricInfo[]): boolean {
  setLearnerMetrics(list);
  const id = (l: MetricInfo[]) => l.map((m) => `${m.engine}/${m.key}/${m.label}/${m.format}`).join("|");
  if (id(list) === id(state.learnerCharts)) return false;
  state.learnerCharts = list;
  const host = $("charts");
  for (const p of my.plots) {
    resizer.unobserve(p.box);
    p.u.destroy();
  }
  my.plots.length = 0;
  renderToggles();
  createPlots(host);
  return true;
}

/** The show/hide box of each learner with charts. */
function renderToggles() {
  const learners = [...new Set(state.learnerCharts.map((c) => c.engine))];
  learnerToggles.replaceChildren(...learners.map((name) => toggle(name, `${name} (learner)`)));
}

/** A box that shows or hides one engine's (or learner's) charts. */
function toggle(engine: string, title: string): HTMLElement {
  const l = el("label", {});
  const box = el("input", { type: "checkbox", "data-testid": `show-${engine}` }) as HTMLInputElement;
  box.checked = !my.hidden.has(engine);
  box.addEventListener("change", () => {
    if (box.checked) my.hidden.delete(engine);
    else my.hidden.add(engine);
    for (const p of my.plots) p.box.hidden = my.hidden.has(p.info.engine);
  });
  l.append(box, document.createTextNode(` ${title}`));
  return l;
}

const learnerToggles = el("span", { class: "learner-toggles" });

/** Builds the controls and one plot per charted metric (once). `zoomed` is
 * called when the shared zoom changes (the timeline redraws). */
export function buildCharts(zoomed: () => void) {
  my.onZoom = zoomed;
  const host = $("charts");
  const controls = el("div", { class: "chart-controls", "data-testid": "chart-controls" });
  const smoothLabel = el("label", {}, "Smoothing ");
  const smoothInput = el("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0", "data-testid": "smoothing" }) as HTMLInputElement;
  const smoothValue = el("output", {}, "0");
  smoothInput.addEventListener("input", () => {
    my.smoothing = Number(smoothInput.value);
    smoothValue.textContent = smoothInput.value;
    renderCharts();
  });
  smoothLabel.append(smoothInput, smoothValue);
  const logLabel = el("label", {});
  const logInput = el("input", { type: "checkbox", "data-testid": "log-scale" }) as HTMLInputElement;
  logInput.addEventListener("change", () => {
    my.logScale = logInput.checked;
    for (const p of my.plots) {
      resizer.unobserve(p.box);
      p.u.destroy();
    }
    my.plots.length = 0;
    createPlots(host);
    renderCharts();
  });
  logLabel.append(logInput, document.createTextNode(" Log scale"));
  controls.append(smoothLabel, logLabel);
  for (const engine of new Set(CHARTS.map((c) => c.engine))) controls.append(toggle(engine, ENGINE_TITLES[engine] ?? engine));
  controls.append(learnerToggles);
  const reset = el("button", { type: "button", "data-testid": "zoom-reset" }, "Reset zoom");
  reset.addEventListener("click", () => setZoom(null));
  controls.append(reset);
  host.before(controls);
  createPlots(host);
}

/** Follows each chart's box: the grid decides the width, the plot fits it. */
const resizer = new ResizeObserver((entries) => {
  for (const e of entries) {
    const p = my.plots.find((q) => q.box === e.target);
    if (p) p.u.setSize(size(p.box));
  }
});

function size(box: HTMLElement) {
  const style = getComputedStyle(box);
  const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return { width: Math.max(Math.floor(inner), 160), height: 150 };
}

function createPlots(host: HTMLElement) {
  // Every box first, then their sizes in one layout (the grid gives each
  // its width only once all are in), then the plots.
  const boxes = charted().map((info) => {
    const box = el("div", { class: "chart", "data-testid": `chart-${info.engine}-${info.key}` });
    box.hidden = my.hidden.has(info.engine);
    const header = el("header");
    const latest = el("b", {}, "—");
    const who = ENGINE_TITLES[info.engine] ?? `${info.engine} (learner)`;
    header.append(el("span", {}, `${who}: ${info.label}`), latest);
    const plotHost = el("div", { class: "plot" });
    box.append(header, plotHost);
    return { info, box, latest, plotHost };
  });
  host.replaceChildren(...boxes.map((b) => b.box));
  const sizes = boxes.map((b) => size(b.box));
  boxes.forEach(({ info, box, latest, plotHost }, n) => {
    const fmt = (v: number | null | undefined) => (v === null || v === undefined ? "—" : formatMetric(info.format, v));
    const unit = info.unit ? ` (${info.unit})` : "";
    const u = new uPlot(
      {
        ...sizes[n]!,
        cursor: { sync: { key: "engram-charts" }, drag: { x: true, y: false } },
        tzDate: utc,
        scales: {
          // One instant alone (a learner's first save): a minute either side.
          x: { time: true, range: loneInstant(60) },
          // A flat line (0.0 % from the start) gets an axis its labels can
          // tell apart; otherwise uPlot's own padded range.
          // Nothing yet: 0 to 1 (uPlot's own 0–100 printed "10000.0 %").
          y: my.logScale
            ? { distr: 3 }
            : {
                distr: 1,
                range: (_u, min, max) =>
                  min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max) ? [0, 1] : (widenFlat(info.format, min, max) ?? uPlot.rangeNum(min, max, 0.1, true)),
              },
        },
        legend: { live: true },
        axes: [
          // UTC and 24-hour, as every other time in the UI.
          { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" }, values: TIME_STAMPS, space: TIME_SPACE },
          {
            stroke: "currentColor",
            grid: { stroke: "rgba(128,128,128,0.15)" },
            size: 64,
            // The header names the metric; the axis says its unit, if any.
            label: unit.trim() === "" ? undefined : info.unit,
            labelSize: unit.trim() === "" ? 0 : 16,
            values: (_u, splits) => splits.map((v) => fmt(v)),
          },
        ],
        series: [
          { label: "time", value: (_u, ts) => (ts === null ? "—" : `${formatTimestamp(ts * 1000)} UTC`) },
          { label: "now", stroke: "#2f6fde", width: 1.75, value: (u, v, _s, i) => valueAt(u, v, i), spanGaps: false, points: { show: fewPoints } },
          { label: "before a restore", stroke: "rgba(128,128,128,0.55)", width: 1.25, dash: [4, 3], value: (u, v, _s, i) => valueAt(u, v, i), spanGaps: false, points: { show: fewPoints } },
        ],
        hooks: {
          setScale: [recordSpan(box), (self, key) => key === "x" && zoomFrom(self)],
          draw: [(self) => placeMarks(my.plots.find((p) => p.u === self))],
          // The legend row says something only while the cursor is on a chart.
          setCursor: [(self) => box.classList.toggle("hovered", self.cursor.idx !== null && self.cursor.idx !== undefined)],
        },
      },
      [[], [], []],
      plotHost,
    );
    // Under the cursor: the value, or "not running" inside such a span.
    const valueAt = (self: uPlot, v: number | null, i: number | null) => {
      const t = i === null ? undefined : self.data[0][i];
      if ((v === null || v === undefined) && t !== undefined && spanAt(spansOf(info), t * 1000)) return "not running";
      return fmt(v);
    };
    u.over.addEventListener("dblclick", () => setZoom(null));
    resizer.observe(box);
    const marks = el("div", { class: "marks" });
    u.over.append(marks);
    my.plots.push({ info, u, box, latest, marks });
  });
}

/** Points are drawn only where a line cannot show the values: two or
 * fewer in view (a line needs two, and one alone draws nothing). */
function fewPoints(u: uPlot, seriesIdx: number, i0: number, i1: number): boolean {
  const values = u.data[seriesIdx] ?? [];
  let n = 0;
  for (let i = i0; i <= i1 && n < 3; i++) if (values[i] !== null && values[i] !== undefined) n++;
  return n < 3;
}

/** A chart was zoomed (dragged): every chart and the timeline follow. */
function zoomFrom(u: uPlot) {
  if (my.syncing) return;
  const x = u.scales.x;
  if (!x) return;
  const { min, max } = x;
  if (min === undefined || max === undefined || min === null || max === null) return;
  const data = u.data[0];
  const full = data.length > 0 && min <= data[0]! && max >= data[data.length - 1]!;
  // A plot fitting its data again after a reset fires this hook (later,
  // not synchronously): that is no new zoom, and answering it with one
  // would loop.
  if (full && my.zoom === null) return;
  setZoom(full ? null : { min: min * 1000, max: max * 1000 }, u);
}

/** The zoomed range (ms), or null when the whole history is shown. */
export function zoomRange(): { min: number; max: number } | null {
  return my.zoom;
}

/** Zooms every chart and the timeline to a range (null: everything). */
export function zoomTo(z: { min: number; max: number } | null) {
  setZoom(z && z.max > z.min ? z : null);
}

function setZoom(z: { min: number; max: number } | null, from?: uPlot) {
  // Whole milliseconds: the API takes integers.
  my.zoom = z && { min: Math.floor(z.min), max: Math.ceil(z.max) };
  $("charts").setAttribute("data-zoomed", String(z !== null));
  $("timeline").setAttribute("data-zoomed", String(z !== null));
  my.syncing = true;
  try {
    for (const p of my.plots) {
      if (p.u === from) continue;
      if (z) p.u.setScale("x", { min: z.min / 1000, max: z.max / 1000 });
      else p.u.setData(p.u.data, true);
    }
    if (!z && from) from.setData(from.data, true);
  } finally {
    my.syncing = false;
  }
  my.onZoom();
}

/** Gives every plot its current data (history + live), keeping the zoom. */
export function renderCharts() {
  const started = performance.now();
  for (const p of my.plots) {
    const series = state.history[`${p.info.engine}/${p.info.key}`];
    const points = chartPoints(p.info.engine, p.info.key);
    const current = series?.branches[series.branches.length - 1]?.id ?? points[points.length - 1]?.branch ?? 0;
    my.syncing = true;
    try {
      const data = chartData(points, current, my.smoothing, my.logScale, spansOf(p.info));
      p.u.setData(data, my.zoom === null);
      if (my.zoom) p.u.setScale("x", { min: my.zoom.min / 1000, max: my.zoom.max / 1000 });
      // For tests and tools: how many unbroken pieces of line it draws.
      p.box.dataset.segments = String(data[0].filter((_x, i) => (data[1][i] ?? data[2][i]) !== null && (i === 0 || (data[1][i - 1] ?? data[2][i - 1]) === null)).length);
    } finally {
      my.syncing = false;
    }
    // For tests and tools: how many lines of history the chart draws.
    p.box.dataset.lines = String(new Set(points.map((q) => q.branch)).size);
    // A learner's latest value is its last point on the current line of
    // history: after a restore, none until it logs again (the values of
    // the line restored away from are not its value now).
    let latest = state.now[p.info.engine]?.[p.info.key];
    for (let i = points.length - 1; latest === undefined && i >= 0; i--) if (points[i]!.branch === current) latest = points[i]!.v;
    p.latest.textContent = latest === undefined ? "—" : formatMetric(p.info.format, latest);
    // Nothing measured yet: said over the empty plot (an evaluation's
    // chart draws only what was measured, never a 0 before it).
    const empty = points.length === 0;
    p.box.classList.toggle("no-data", empty);
    p.box.dataset.empty = empty ? (p.info.measured_at ? "not evaluated yet" : "no values yet") : "";
    if (empty && p.info.measured_at) p.latest.textContent = "not evaluated yet";
  }
  // Only the latest is kept (User Timing entries are never dropped otherwise).
  performance.clearMeasures("engram:charts-render");
  performance.measure("engram:charts-render", { start: started });
}

/** Restores and milestones as marks over the plot, their text on hover. */
function placeMarks(p: Plot | undefined) {
  if (!p) return;
  const marks: HTMLElement[] = [];
  // The plot area's width as uPlot laid it out (asking the element would
  // lay the page out again, at every draw of every chart).
  const width = p.u.bbox.width / uPlot.pxRatio;
  const at = (ms: number, cls: string, text: string) => {
    const x = p.u.valToPos(ms / 1000, "x");
    if (!Number.isFinite(x) || x < 0 || x > width) return;
    const m = el("div", { class: `mark-line ${cls}`, title: text });
    m.style.left = `${x}px`;
    marks.push(m);
  };
  for (const b of state.timeline) {
    if (b.kind !== "breakthrough" || !b.breakthrough) continue;
    const bt = b.breakthrough;
    at(b.created_at_ms, "milestone", `Milestone (#${b.id}): ${bt.rule} — ${formatValue(bt.engine, bt.metric, bt.value)}`);
  }
  for (const br of state.history[`${p.info.engine}/${p.info.key}`]?.branches ?? []) {
    if (br.reason !== "restore") continue;
    at(br.started_at, "restore", br.from_backup === null ? "Restore: a new line of history" : `Restored backup #${br.from_backup}: a new line of history`);
  }
  const learner = ENGINE_TITLES[p.info.engine] === undefined;
  for (const s of spansOf(p.info)) {
    const x0 = Math.max(0, p.u.valToPos(s.from_ms / 1000, "x"));
    const x1 = Math.min(width, p.u.valToPos(s.to_ms / 1000, "x"));
    if (!Number.isFinite(x0) || !Number.isFinite(x1) || x1 <= x0) continue;
    const shade = el("div", {
      class: "not-running",
      "data-testid": "not-running",
      title: `Not running from ${formatTimestamp(s.from_ms)} to ${formatTimestamp(s.to_ms)} UTC (${learner ? "the learner was not running" : "Engram was stopped"}): nothing was measured.`,
    });
    shade.style.left = `${x0}px`;
    shade.style.width = `${x1 - x0}px`;
    marks.push(shade);
  }
  p.marks.replaceChildren(...marks);
}

/** The spans in which a chart's owner did not run (from its stored history). */
function spansOf(info: MetricInfo): Span[] {
  return state.history[`${info.engine}/${info.key}`]?.not_running ?? [];
}

/** The stored history of a metric, then the live points this page saw after it. */
function chartPoints(engine: string, key: string): ChartPoint[] {
  const series = state.history[`${engine}/${key}`];
  const stored: ChartPoint[] = (series?.points ?? []).flatMap((p) => (p.value === null ? [] : [{ t: p.at_ms, v: p.value, branch: p.branch }]));
  const last = stored[stored.length - 1];
  const branch = series?.branches[series.branches.length - 1]?.id ?? last?.branch ?? 0;
  const live = state.live
    .filter((p) => (last === undefined || p.t > last.t) && p.engines[engine]?.[key] !== undefined)
    .map((p) => ({ t: p.t, v: p.engines[engine]![key]!, branch }));
  return stored.concat(live);
}
